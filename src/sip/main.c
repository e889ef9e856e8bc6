/*
 * main.c: tally-sip's process: configuration, the libre SIP stack (UDP and
 * TCP on sip-listen), the media server pool, registrar, routes, the B2BUA,
 * the client API, and the request dispatcher in front of them.
 *
 * Dispatch of a request that no transaction claimed:
 *   rate limit per source address (503 once, then silence)
 *   in-dialog of a recording   -> the recording's SIPREC session (rec.c)
 *   in-dialog (To-tag)         -> b2bua (481 if no such dialog)
 *   INVITE                     -> b2bua (new call)
 *   REGISTER                   -> registrar
 *   OPTIONS                    -> 200 with Allow/Accept
 *   ACK without dialog         -> dropped
 *   anything else              -> 405 Method Not Allowed
 * A response no client transaction took (a 2xx to the callee's INVITE
 * after libre ended the transaction: a retransmission, or another UA
 * behind a forking proxy) goes to the b2bua too.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "proc.h"
#include "b2bua.h"
#include "rec.h"
#include "sipcheck.h"

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
bool b2bua_response(struct b2bua *b, const struct sip_msg *msg);

static struct {
	struct sipd_conf conf;
	struct sip *sip;
	struct sip_lsnr *lsnr;
	struct sip_lsnr *rlsnr;       /* responses no transaction took */
	struct mediapool *pool;
	struct registrar *reg;
	struct routes *routes;
	struct b2bua *b2bua;
	struct recs *recs;
	struct api *api;
	struct ratelimit *rl;
	uint64_t limited;
	uint64_t rejected;
	struct udp_helper *uh;
	struct udp_sock *probe;
} d;

/* The UDP socket libre's SIP stack reads is learnt from the first UDP
 * request (start() sends one to itself), and sipdecode.c's helper put on
 * it: a datagram whose Content-Length overshoots it is then answered. */
static void probe_recv(const struct sa *src, struct mbuf *mb, void *arg)
{
	(void)src; (void)mb; (void)arg;
}

static int self_probe(const struct sa *laddr)
{
	struct sa local;
	struct mbuf *mb;
	int err;

	sa_init(&local, sa_af(laddr));
	(void)sa_set_str(&local, sa_af(laddr) == AF_INET6 ? "::1" : "127.0.0.1", 0);
	if (sa_isset(laddr, SA_ADDR))
		sa_cpy(&local, laddr), sa_set_port(&local, 0);
	err = udp_listen(&d.probe, &local, probe_recv, NULL);
	if (err)
		return err;
	(void)udp_local_get(d.probe, &local);
	mb = mbuf_alloc(512);
	if (!mb)
		return ENOMEM;
	(void)mbuf_printf(mb, "OPTIONS sip:tally@%J SIP/2.0\r\n"
			  "Via: SIP/2.0/UDP %J;branch=z9hG4bKprobe%08x;rport\r\n"
			  "Max-Forwards: 70\r\nTo: <sip:tally@%J>\r\n"
			  "From: <sip:probe@%J>;tag=probe\r\n"
			  "Call-ID: tally-probe-%08x\r\nCSeq: 1 OPTIONS\r\n"
			  "Content-Length: 0\r\n\r\n", laddr, &local,
			  rand_u32(), laddr, &local, rand_u32());
	mb->pos = 0;
	err = udp_send(d.probe, laddr, mb);
	mem_deref(mb);
	return err;
}

static bool request_h(const struct sip_msg *msg, void *arg)
{
	char unsup[256];
	const char *reason = NULL;
	uint16_t scode;
	int rl;
	(void)arg;

	if (sipdecode_standin(d.sip, msg))
		return true;
	sipdecode_udp_attach(&d.uh, msg);
	scode = sipcheck_request(msg, unsup, sizeof(unsup), &reason);
	if (scode) {
		++d.rejected;
		log_info("sip: [%.*s] %.*s refused: %u %s",
			 (int)msg->callid.l, msg->callid.p, (int)msg->met.l,
			 msg->met.p, scode, reason);
		sipcheck_refuse(d.sip, msg, scode, reason, unsup);
		return true;
	}

	if (!pl_isset(&msg->to.tag) && d.rl &&
	    (rl = ratelimit_check(d.rl, &msg->src))) {
		++d.limited;
		if (rl == EAGAIN && pl_strcmp(&msg->met, "ACK"))
			(void)sip_replyf(d.sip, msg, 503, "Rate Limit Exceeded",
					 "Retry-After: 5\r\n"
					 "Content-Length: 0\r\n\r\n");
		return true;
	}
	if (recs_request(d.recs, msg))
		return true;
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
	sipcheck_unhandled(d.sip, msg, ALLOW);
	return true;
}

static bool response_h(const struct sip_msg *msg, void *arg)
{
	(void)arg;
	if (recs_response(d.recs, msg))
		return true;
	return d.b2bua && b2bua_response(d.b2bua, msg);
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
	/* transaction tables: finished transactions linger up to 32 s, so at
	 * hundreds of calls per second a small table turns every lookup into
	 * a long walk (client, server, TCP connection buckets) */
	err = sip_alloc(&d.sip, NULL, 4096, 4096, 256, "tally-sip/" TALLY_VERSION,
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

	if (!sipdecode_active())
		log_warn("sip: libre's decoder is not wrapped: malformed TCP "
			 "requests will close their connection unanswered");
	err = sip_listen(&d.lsnr, d.sip, true, request_h, NULL);
	if (!err)
		err = sip_listen(&d.rlsnr, d.sip, false, response_h, NULL);
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
			  NULL, NULL);
	if (err)
		return err;
	{
		struct recs_params rp = {d.sip, d.b2bua, d.conf.recorders,
					 d.conf.recorder_timeout_ms,
					 d.conf.record,
					 d.conf.recorder_options_secs * 1000};
		err = recs_alloc(&d.recs, &rp);
		if (err) {
			log_err("sip: recorders '%s': %s", d.conf.recorders,
				strerror(err));
			return err;
		}
		b2bua_end_hook(d.b2bua, recs_call_end, d.recs);
		b2bua_answer_hook(d.b2bua, recs_call_answered, d.recs);
	}
	if (d.conf.api_listen[0]) {
		err = api_alloc(&d.api, d.conf.api_listen, d.conf.api_token,
				d.b2bua);
		if (err) {
			log_err("sip: api on %s: %s", d.conf.api_listen,
				strerror(err));
			return err;
		}
		/* events go to this API's clients; stop() detaches them
		 * before the API goes */
		b2bua_events(d.b2bua, api_call_event, d.api);
		recs_events(d.recs, api_rec_event, d.api);
		api_recs(d.api, d.recs);
	}
	if (d.conf.rate_limit &&
	    (err = ratelimit_alloc(&d.rl, d.conf.rate_limit, d.conf.rate_burst)))
		return err;
	if (self_probe(&laddr))
		log_warn("sip: no UDP self-probe: malformed UDP requests whose"
			 " Content-Length overshoots will not be answered");
	log_notice("sip: tally-sip %s ready: SIP on %s (udp, tcp), media %s, "
		   "api %s, recorders %s", TALLY_VERSION, d.conf.sip_listen,
		   d.conf.media_servers,
		   d.conf.api_listen[0] ? d.conf.api_listen : "off",
		   d.conf.recorders[0] ? d.conf.recorders : "none");
	return 0;
}

/*
 * Shutdown order: what a call's end reaches must still be there when the
 * calls end. So the calls end first (each call's recordings first of all:
 * BYE to the recorder, ng unsubscribe, .stopped events; then BYE/CANCEL
 * on both legs, ng delete, call.ended to the API's event clients), then
 * any recording left, then the API goes (after the event handlers are
 * detached: the b2bua, the recordings and the API only borrow each
 * other), then the recordings, the b2bua, the SIP stack and the rest.
 */
static void stop(void)
{
	d.uh = mem_deref(d.uh);
	d.probe = mem_deref(d.probe);
	/* no recording starts from here on */
	if (d.b2bua)
		b2bua_answer_hook(d.b2bua, NULL, NULL);
	b2bua_shutdown(d.b2bua);
	recs_shutdown(d.recs);
	recs_events(d.recs, NULL, NULL);
	if (d.b2bua) {
		b2bua_events(d.b2bua, NULL, NULL);
		b2bua_end_hook(d.b2bua, NULL, NULL);
	}
	api_recs(d.api, NULL);
	d.api = mem_deref(d.api);
	d.recs = mem_deref(d.recs);
	d.b2bua = mem_deref(d.b2bua);
	d.lsnr = mem_deref(d.lsnr);
	d.rlsnr = mem_deref(d.rlsnr);
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
	struct proc_opts po = {.prog = "tally-sip"};
	bool exit_now = false;
	int err;

	log_init("sip", LOG_LVL_INFO);
	err = sipd_conf_load(&d.conf, argc, argv, &exit_now);
	if (err)
		return 2;
	if (exit_now)
		return 0;
	po.log_level = (int)d.conf.log_level;
	po.log_file = d.conf.log_file;
	po.foreground = d.conf.foreground;
	po.pidfile = d.conf.pidfile;
	err = proc_start(&po);
	if (err)
		return err;

	err = start();
	if (!err)
		err = re_main(on_signal);
	stop();
	libre_close();
	proc_stop(&po);
	return err ? 1 : 0;
}
