/*
 * main.c: tally-sip's process: configuration, the libre SIP stack (UDP and
 * TCP on sip-listen), the media server pool, registrar, routes, the B2BUA,
 * the client API, and the request dispatcher in front of them.
 *
 * Dispatch of a request that no transaction claimed:
 *   rate limit per source address (503 once, then silence)
 *   in-dialog (To-tag)         -> b2bua (481 if no such dialog)
 *   INVITE                     -> b2bua (new call)
 *   REGISTER                   -> registrar
 *   OPTIONS                    -> 200 with Allow/Accept
 *   ACK without dialog         -> dropped
 *   anything else              -> 405 Method Not Allowed
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "b2bua.h"

#define ALLOW "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REGISTER, MESSAGE, NOTIFY"

struct ratelimit;
int  ratelimit_alloc(struct ratelimit **rlp, uint32_t rate, uint32_t burst);
/* 0: allowed; EAGAIN: over the limit, first time this second (answer 503);
 * EBUSY: over the limit again (drop silently). */
int  ratelimit_check(struct ratelimit *rl, const struct sa *src);
void sipmsg_init(struct sip *sip, const struct sa *laddr);
int  b2bua_alloc(struct b2bua **bp, struct sip *sip, struct mediapool *pool,
		 struct registrar *reg, struct routes *routes,
		 const struct sipd_conf *cf, bcall_event_h *eh, void *arg);
bool b2bua_request(struct b2bua *b, const struct sip_msg *msg);

static struct {
	struct sipd_conf conf;
	struct sip *sip;
	struct sip_lsnr *lsnr;
	struct mediapool *pool;
	struct registrar *reg;
	struct routes *routes;
	struct b2bua *b2bua;
	struct api *api;
	struct ratelimit *rl;
	uint64_t limited;
} d;

static bool request_h(const struct sip_msg *msg, void *arg)
{
	int rl;
	(void)arg;

	if (!pl_isset(&msg->to.tag) && d.rl &&
	    (rl = ratelimit_check(d.rl, &msg->src))) {
		++d.limited;
		if (rl == EAGAIN && pl_strcmp(&msg->met, "ACK"))
			(void)sip_replyf(d.sip, msg, 503, "Rate Limit Exceeded",
					 "Retry-After: 5\r\n"
					 "Content-Length: 0\r\n\r\n");
		return true;
	}
	if (b2bua_request(d.b2bua, msg))
		return true;
	if (!pl_strcmp(&msg->met, "REGISTER")) {
		if (d.reg && registrar_handle(d.reg, msg))
			return true;
		(void)sip_reply(d.sip, msg, 403, "Forbidden (no registrar)");
		return true;
	}
	if (!pl_strcmp(&msg->met, "OPTIONS")) {
		(void)sip_replyf(d.sip, msg, 200, "OK",
				 "Allow: " ALLOW "\r\n"
				 "Accept: application/sdp\r\n"
				 "Supported: timer\r\n"
				 "Content-Length: 0\r\n\r\n");
		return true;
	}
	if (!pl_strcmp(&msg->met, "ACK"))
		return true;
	if (!pl_strcmp(&msg->met, "CANCEL")) {
		(void)sip_reply(d.sip, msg, 481, "Call/Transaction Does Not Exist");
		return true;
	}
	(void)sip_replyf(d.sip, msg, 405, "Method Not Allowed",
			 "Allow: " ALLOW "\r\nContent-Length: 0\r\n\r\n");
	return true;
}

static void on_signal(int sig)
{
	log_notice("sip: signal %d, shutting down", sig);
	re_cancel();
}

static int start(void)
{
	struct sa laddr;
	int err;

	err = sa_decode(&laddr, d.conf.sip_listen, strlen(d.conf.sip_listen));
	if (err) {
		log_err("sip: sip-listen '%s' is not ADDR:PORT", d.conf.sip_listen);
		return EINVAL;
	}
	err = sip_alloc(&d.sip, NULL, 32, 32, 32, "tally-sip/" TALLY_VERSION,
			NULL, NULL);
	if (err)
		return err;
	err = sip_transp_add(d.sip, SIP_TRANSP_UDP, &laddr);
	if (!err)
		err = sip_transp_add(d.sip, SIP_TRANSP_TCP, &laddr);
	if (err) {
		log_err("sip: cannot listen on %s: %s", d.conf.sip_listen,
			strerror(err));
		return err;
	}
	sipmsg_init(d.sip, &laddr);
	err = sip_listen(&d.lsnr, d.sip, true, request_h, NULL);
	if (err)
		return err;

	err = mediapool_alloc(&d.pool, d.conf.media_servers,
			      d.conf.media_ping_ms);
	if (err) {
		log_err("sip: media-servers '%s': %s", d.conf.media_servers,
			strerror(err));
		return err;
	}
	err = registrar_alloc(&d.reg, d.sip, d.conf.realm, d.conf.users,
			      d.conf.reg_min_expires, d.conf.reg_max_expires);
	if (err) {
		log_err("sip: registrar: %s", strerror(err));
		return err;
	}
	if (d.conf.routes[0] && (err = routes_alloc(&d.routes, d.conf.routes))) {
		log_err("sip: bad route configuration");
		return err;
	}
	err = b2bua_alloc(&d.b2bua, d.sip, d.pool, d.reg, d.routes, &d.conf,
			  d.conf.api_listen[0] ? api_call_event : NULL, NULL);
	if (err)
		return err;
	if (d.conf.api_listen[0]) {
		err = api_alloc(&d.api, d.conf.api_listen, d.conf.api_token,
				d.b2bua);
		if (err) {
			log_err("sip: api on %s: %s", d.conf.api_listen,
				strerror(err));
			return err;
		}
	}
	if (d.conf.rate_limit &&
	    (err = ratelimit_alloc(&d.rl, d.conf.rate_limit, d.conf.rate_burst)))
		return err;
	log_notice("sip: tally-sip %s ready: SIP on %s (udp, tcp), media %s, "
		   "api %s", TALLY_VERSION, d.conf.sip_listen,
		   d.conf.media_servers,
		   d.conf.api_listen[0] ? d.conf.api_listen : "off");
	return 0;
}

static void stop(void)
{
	d.api = mem_deref(d.api);
	d.b2bua = mem_deref(d.b2bua);
	d.lsnr = mem_deref(d.lsnr);
	if (d.sip)
		sip_close(d.sip, true);
	d.sip = mem_deref(d.sip);
	d.reg = mem_deref(d.reg);
	d.routes = mem_deref(d.routes);
	d.pool = mem_deref(d.pool);
	d.rl = mem_deref(d.rl);
}

int main(int argc, char *argv[])
{
	bool exit_now = false;
	int err;

	log_init("sip", LOG_LVL_INFO);
	err = sipd_conf_load(&d.conf, argc, argv, &exit_now);
	if (err)
		return 2;
	if (exit_now)
		return 0;
	log_level_set((int)d.conf.log_level);
	if (d.conf.log_file[0] && (err = log_open_file(d.conf.log_file))) {
		fprintf(stderr, "tally-sip: cannot open log %s: %s\n",
			d.conf.log_file, strerror(err));
		return 2;
	}
	if (!d.conf.foreground && daemon(1, d.conf.log_file[0] ? 0 : 1)) {
		perror("tally-sip: daemon");
		return 1;
	}
	if (d.conf.pidfile[0]) {
		FILE *f = fopen(d.conf.pidfile, "w");
		if (f) {
			fprintf(f, "%d\n", (int)getpid());
			fclose(f);
		}
	}
	signal(SIGPIPE, SIG_IGN);
	err = libre_init();
	if (err)
		return 1;
	log_route_libre();

	err = start();
	if (!err)
		err = re_main(on_signal);
	stop();
	libre_close();
	if (d.conf.pidfile[0])
		unlink(d.conf.pidfile);
	return err ? 1 : 0;
}
