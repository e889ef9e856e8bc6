/*
 * main.c: tally-recorder's process: configuration, the storage folder and
 * catalog, the receive and finalize threads, the libre SIP stack (UDP and
 * TCP on listen-sip), the HTTP API, recovery of unfinished sessions, and
 * the dispatcher in front of srs.c.
 *
 * Dispatch of a request no transaction claimed:
 *   sanity checks (sipcheck.c)  -> 400/416/420/505... with a reason
 *   in-dialog, INVITE           -> srs.c
 *   OPTIONS                     -> 200 (Allow, Accept, Supported: siprec)
 *   ACK without dialog          -> dropped
 *   CANCEL                      -> 481 (INVITEs are answered at once)
 *   other methods               -> 405 (RFC 3261 and extensions) / 501
 *
 * `tally-recorder --finalize DIR` makes one folder's files and exits.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <libxml/parser.h>
#include <libavutil/log.h>
#include "log.h"
#include "proc.h"
#include "sipcheck.h"
#include "catalog.h"
#include "recapi.h"
#include "finalize.h"
#include "recd.h"

#define ALLOW "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"

static struct recd d;
static struct udp_helper *uh;
static unsigned ticks;

static bool request_h(const struct sip_msg *msg, void *arg)
{
	char unsup[256];
	const char *reason = NULL;
	uint16_t scode;
	(void)arg;

	if (sipdecode_standin(d.sip, msg))
		return true;
	sipdecode_udp_attach(&uh, msg);
	scode = sipcheck_request(msg, unsup, sizeof(unsup), &reason);
	if (scode) {
		++d.st.bad_requests;
		log_info("srs: [%.*s] %.*s refused: %u %s",
			 (int)msg->callid.l, msg->callid.p, (int)msg->met.l,
			 msg->met.p, scode, reason);
		sipcheck_refuse(d.sip, msg, scode, reason, unsup);
		return true;
	}
	if (srs_request(&d, msg))
		return true;
	if (!pl_strcmp(&msg->met, "OPTIONS")) {
		(void)sip_replyf(d.sip, msg, 200, "OK",
				 "Allow: " ALLOW "\r\n"
				 "Accept: application/sdp, "
				 "application/rs-metadata, "
				 "application/rs-metadata+xml, "
				 "multipart/mixed\r\n"
				 "Supported: siprec\r\n"
				 "Content-Length: 0\r\n\r\n");
		return true;
	}
	sipcheck_unhandled(d.sip, msg, ALLOW);
	return true;
}

static int status_print(struct re_printf *pf, void *arg)
{
	struct rx_stats rx;
	(void)arg;

	rxworker_stats(d.rx, &rx);
	return re_hprintf(pf,
		"{\"sessions\":%u,\"max_sessions\":%u,\"ports_free\":%u,"
		"\"ports_busy\":%llu,\"finalize_pending\":%u,"
		"\"sip\":{\"invites\":%llu,\"accepted\":%llu,\"rejected\":%llu,"
		"\"reinvites\":%llu,\"byes\":%llu,\"bad_requests\":%llu,"
		"\"undecodable\":%llu,\"no_require_siprec\":%llu},"
		"\"recordings\":{\"complete\":%llu,\"failed\":%llu,"
		"\"recovered\":%llu},\"recovery\":%H,"
		"\"media\":{\"packets\":%llu,\"bytes\":%llu,\"rtcp\":%llu,"
		"\"written\":%llu,\"write_errors\":%llu,\"kernel_drops\":%llu,"
		"\"paused\":%llu,\"garbage\":%llu,\"pli_sent\":%llu,"
		"\"streams\":%llu,\"captures\":%llu}}",
		d.nsess, d.conf.max_sessions, rxports_free(d.ports),
		(unsigned long long)rxports_busy(d.ports), finq_pending(d.fq),
		(unsigned long long)d.st.invites,
		(unsigned long long)d.st.accepted,
		(unsigned long long)d.st.rejected,
		(unsigned long long)d.st.reinvites,
		(unsigned long long)d.st.byes,
		(unsigned long long)d.st.bad_requests,
		(unsigned long long)sipdecode_count(),
		(unsigned long long)d.st.no_require,
		(unsigned long long)d.st.finalized,
		(unsigned long long)d.st.failed,
		(unsigned long long)d.st.recovered,
		recover_status_print, d.rcv,
		(unsigned long long)rx.packets, (unsigned long long)rx.bytes,
		(unsigned long long)rx.rtcp, (unsigned long long)rx.written,
		(unsigned long long)rx.write_errors,
		(unsigned long long)rx.kernel_drops,
		(unsigned long long)rx.paused, (unsigned long long)rx.garbage,
		(unsigned long long)rx.pli_sent,
		(unsigned long long)rx.streams, (unsigned long long)rx.files);
}

static void tick(void *arg)
{
	(void)arg;
	srs_ok_tick(&d);
	if (++ticks % 10 == 0)
		rsess_tick(&d);
	tmr_start(&d.tick, 100, tick, NULL);
}

static void on_signal(int sig)
{
	log_notice("recorder: signal %d, shutting down", sig);
	re_cancel();
}

static int start(void)
{
	static const char *const tags[] = {"siprec", NULL};
	char path[600];
	int err;

	sipcheck_set_supported(tags);
	if (mkdir(d.conf.storage, 0750) && errno != EEXIST) {
		log_err("recorder: cannot create storage %s: %s",
			d.conf.storage, strerror(errno));
		return errno;
	}
	err = sa_set_str(&d.media_addr, d.conf.interface, 0);
	if (err) {
		log_err("recorder: interface '%s' is not an IP address",
			d.conf.interface);
		return EINVAL;
	}
	err = sa_decode(&d.sip_laddr, d.conf.sip_listen,
			strlen(d.conf.sip_listen));
	if (err) {
		log_err("recorder: listen-sip '%s' is not ADDR:PORT",
			d.conf.sip_listen);
		return EINVAL;
	}
	err = policy_alloc(&d.policy, d.conf.policies, d.conf.default_media);
	if (err) {
		log_err("recorder: bad policy line (want 'pattern=media', "
			"media audio+video, audio or none)");
		return err;
	}
	err = rxports_alloc(&d.ports, (uint16_t)d.conf.port_min,
			    (uint16_t)d.conf.port_max);
	if (err)
		return err;
	rxports_probe(d.ports, &d.media_addr);
	err = hash_alloc(&d.sessions, 1024);
	if (err)
		return err;

	if (d.conf.catalog[0])
		(void)snprintf(path, sizeof(path), "%s", d.conf.catalog);
	else
		(void)snprintf(path, sizeof(path), "%s/catalog.sqlite",
			       d.conf.storage);
	err = catalog_open(&d.cat, path);
	if (err) {
		log_err("recorder: catalog %s: %s", path, strerror(err));
		return err;
	}
	err = rxworker_alloc(&d.rx);
	if (!err)
		err = finq_alloc(&d.fq);
	if (err) {
		log_err("recorder: threads: %s", strerror(err));
		return err;
	}

	err = sip_alloc(&d.sip, NULL, 1024, 1024, 256,
			"tally-recorder/" TALLY_VERSION, NULL, NULL);
	if (err)
		return err;
	err = sip_transp_add(d.sip, SIP_TRANSP_UDP, &d.sip_laddr);
	if (!err)
		err = sip_transp_add(d.sip, SIP_TRANSP_TCP, &d.sip_laddr);
	if (err) {
		log_err("recorder: cannot listen on %s: %s", d.conf.sip_listen,
			strerror(err));
		return err;
	}
	if (!sipdecode_active())
		log_warn("srs: libre's decoder is not wrapped: malformed TCP "
			 "requests will close their connection unanswered");
	err = sip_listen(&d.lsnr, d.sip, true, request_h, NULL);
	if (err)
		return err;

	if (d.conf.listen_http[0]) {
		struct sa haddr;
		struct recapi_params prm = {0};

		err = sa_decode(&haddr, d.conf.listen_http,
				strlen(d.conf.listen_http));
		if (err) {
			log_err("recorder: listen-http '%s' is not ADDR:PORT",
				d.conf.listen_http);
			return EINVAL;
		}
		prm.laddr = &haddr;
		prm.token = d.conf.api_token;
		prm.cat = d.cat;
		prm.storage = d.conf.storage;
		prm.statush = status_print;
		err = recapi_alloc(&d.api, &prm);
		if (err) {
			log_err("recorder: api on %s: %s", d.conf.listen_http,
				strerror(err));
			return err;
		}
	}
	/* serving first: the scan runs in slices of the main loop */
	err = recover_start(&d.rcv, &d);
	if (err)
		log_warn("recorder: recovery scan of %s: %s", d.conf.storage,
			 strerror(err));
	tmr_start(&d.tick, 100, tick, NULL);
	log_notice("recorder: tally-recorder %s ready: SIP on %s (udp, tcp), "
		   "media %s:%u-%u, storage %s, api %s, default media %s",
		   TALLY_VERSION, d.conf.sip_listen, d.conf.interface,
		   d.conf.port_min, d.conf.port_max, d.conf.storage,
		   d.conf.listen_http[0] ? d.conf.listen_http : "off",
		   d.conf.default_media);
	return 0;
}

/* Shutdown: captures are closed as they are; the sessions stay
 * "recording" on disk and the next start finalizes them (recover.c). */
static void stop(void)
{
	struct le *le;

	tmr_cancel(&d.tick);
	/* a scan cut short resumes next start; its jobs still queued are
	 * dropped by finq below without a callback */
	d.rcv = mem_deref(d.rcv);
	uh = mem_deref(uh);
	d.api = mem_deref(d.api);
	d.lsnr = mem_deref(d.lsnr);
	if (d.sip)
		sip_close(d.sip, true);
	d.sip = mem_deref(d.sip);
	d.fq = mem_deref(d.fq);      /* joins: a running finalize completes */
	if (d.rx)
		rxworker_shutdown(d.rx);  /* joins: what was read is written */
	for (le = list_head(&d.all); le; le = le->next) {
		struct rsess *rs = le->data;

		rxworker_file_free(rs->rxf);
		rs->rxf = NULL;
	}
	d.rx = mem_deref(d.rx);
	while ((le = list_head(&d.all)))
		mem_deref(le->data);
	d.sessions = mem_deref(d.sessions);
	d.cat = mem_deref(d.cat);
	d.ports = mem_deref(d.ports);
	d.policy = mem_deref(d.policy);
}

/* tally-recorder --finalize DIR: make (or remake) the files of one
 * session folder in the foreground, print what was made, and exit; the
 * catalog is not touched. For operators and for bench/recbench.py. */
static int finalize_cli(const char *dir)
{
	struct sessfile *sf = calloc(1, sizeof(*sf));
	struct fin_stats st;
	char reason[256] = "";
	size_t i;
	int err;

	if (!sf)
		return 1;
	err = sessfile_load(dir, sf);
	if (err) {
		fprintf(stderr, "tally-recorder: %s/session.json: %s\n", dir,
			strerror(err));
		free(sf);
		return 1;
	}
	memset(&st, 0, sizeof(st));
	err = finalize_session(dir, sf, &st, reason, sizeof(reason));
	if (err) {
		fprintf(stderr, "tally-recorder: finalize %s: %s\n", dir,
			reason[0] ? reason : strerror(err));
		free(sf);
		return 1;
	}
	printf("{\"id\":\"%s\",\"media_seconds\":%.3f,"
	       "\"wall_seconds\":%.3f,\"packets\":%llu,\"files\":[",
	       sf->id, st.media_seconds, st.wall_seconds,
	       (unsigned long long)st.packets);
	for (i = 0; i < sf->nfiles; i++)
		printf("%s{\"name\":\"%s\",\"size\":%llu}", i ? "," : "",
		       sf->files[i].name,
		       (unsigned long long)sf->files[i].size);
	printf("]}\n");
	free(sf);
	return 0;
}

/* Every stream holds two sockets, so a few hundred sessions pass the
 * usual soft limit of 1024 descriptors; and libre's loop, by default, only
 * takes descriptors below 1024, so SIP over TCP and the API would stop
 * accepting long before the media did. Raise both to the hard limit. */
static void fd_limits(void)
{
	struct rlimit rl;
	rlim_t want;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	want = rl.rlim_max == RLIM_INFINITY ? 65536 : rl.rlim_max;
	if (want > 65536)
		want = 65536;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			log_warn("recorder: cannot raise the descriptor limit "
				 "to %llu", (unsigned long long)want);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    fd_setsize((int)(rl.rlim_cur > 65536 ? 65536 : rl.rlim_cur)))
		log_warn("recorder: libre keeps its 1024-descriptor limit");
}

int main(int argc, char *argv[])
{
	struct proc_opts po = {.prog = "tally-recorder"};
	bool exit_now = false;
	int err;

	if (argc == 3 && !strcmp(argv[1], "--finalize"))
		return finalize_cli(argv[2]);

	log_init("recorder", LOG_LVL_INFO);
	err = recd_conf_load(&d.conf, argc, argv, &exit_now);
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
	fd_limits();
	av_log_set_level(AV_LOG_ERROR);   /* muxer chatter is not news */
	xmlInitParser();        /* not thread-safe on first use: do it here */
	list_init(&d.all);
	err = start();
	if (!err)
		err = re_main(on_signal);
	stop();
	libre_close();
	xmlCleanupParser();
	proc_stop(&po);
	return err ? 1 : 0;
}
