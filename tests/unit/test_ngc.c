/*
 * test_ngc.c: the ng client (ngc.c) and the media server pool (mediapool.c)
 * against real tally-media daemons on loopback, plus fake UDP servers in
 * this process that never answer or answer garbage.
 *
 * Everything runs on one libre main loop; run_until() spins it until a
 * condition holds or a deadline passes. tally-media is $TALLY_MEDIA or
 * <build>/src/media/tally-media found from this binary's path
 * (<build>/tests/unit/test_ngc). Daemons get free ports chosen at run time
 * and are stopped by the PID this test started.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libgen.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include "log.h"
#include "sipd.h"

/* ---- tally-media daemons ---- */

struct daemon {
	pid_t pid;
	uint16_t ng_port;
	uint16_t port_min, port_max;
};

static struct daemon dA, dB, dC;
static char media_bin[1024];

static bool udp_port_free(uint16_t port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	bool ok;

	if (fd < 0)
		return false;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static uint16_t free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* A block of N free UDP ports for media, away from the ephemeral range. */
static uint16_t free_block(unsigned n)
{
	for (unsigned tries = 0; tries < 200; tries++) {
		uint16_t base = (uint16_t)(20000 + 2 * (rand_u32() % 10000));
		unsigned i;

		for (i = 0; i < n && udp_port_free((uint16_t)(base + i)); i++)
			;
		if (i == n)
			return base;
	}
	fail_msg("no free port block");
	return 0;
}

static bool find_media_bin(void)
{
	const char *env = getenv("TALLY_MEDIA");
	char self[1024];
	ssize_t n;

	if (env && *env) {
		snprintf(media_bin, sizeof(media_bin), "%s", env);
		return access(media_bin, X_OK) == 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return false;
	self[n] = '\0';
	snprintf(media_bin, sizeof(media_bin), "%s/../../src/media/tally-media",
		 dirname(self));
	return access(media_bin, X_OK) == 0;
}

static void daemon_stop(struct daemon *d)
{
	int st;

	if (d->pid <= 0)
		return;
	kill(d->pid, SIGTERM);
	for (int i = 0; i < 300; i++) {
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			return;
		}
		usleep(10000);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	d->pid = 0;
}

/* ---- main loop helpers ---- */

typedef bool (cond_h)(void *arg);

struct waiter {
	struct tmr poll, deadline;
	cond_h *cond;
	void *arg;
	bool expired;
};

static void waiter_poll(void *arg)
{
	struct waiter *w = arg;

	if (w->cond && w->cond(w->arg)) {
		re_cancel();
		return;
	}
	tmr_start(&w->poll, 5, waiter_poll, w);
}

static void waiter_deadline(void *arg)
{
	struct waiter *w = arg;

	w->expired = true;
	re_cancel();
}

/* Run the loop until COND(ARG) (NULL: never) or MS pass; true if COND held. */
static bool run_until(cond_h *cond, void *arg, unsigned ms)
{
	struct waiter w;

	memset(&w, 0, sizeof(w));
	tmr_init(&w.poll);
	tmr_init(&w.deadline);
	w.cond = cond;
	w.arg = arg;
	if (cond && cond(arg))
		return true;
	tmr_start(&w.poll, 5, waiter_poll, &w);
	tmr_start(&w.deadline, ms, waiter_deadline, &w);
	(void)re_main(NULL);
	tmr_cancel(&w.poll);
	tmr_cancel(&w.deadline);
	return cond ? cond(arg) : false;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- response capture ---- */

struct resp {
	unsigned n;            /* handler calls */
	int err;
	char result[32];
	char reason[256];      /* error-reason (ngc) or WHY (sdp) */
	char sdp[4096];
	uint64_t t;
};

static bool resp_done(void *arg)
{
	return ((struct resp *)arg)->n > 0;
}

static void ngc_resp(int err, const struct benc_node *reply, void *arg)
{
	struct resp *r = arg;
	struct pl pl;

	++r->n;
	r->err = err;
	r->t = now_ms();
	if (err) {
		assert_null(reply);
		return;
	}
	assert_non_null(reply);
	if (!benc_dict_pl(reply, "result", &pl))
		pl_strcpy(&pl, r->result, sizeof(r->result));
	if (!benc_dict_pl(reply, "error-reason", &pl))
		pl_strcpy(&pl, r->reason, sizeof(r->reason));
	if (!benc_dict_pl(reply, "sdp", &pl))
		pl_strcpy(&pl, r->sdp, sizeof(r->sdp));
}

static void sdp_resp(int err, const char *why, const struct pl *sdp,
		     void *arg)
{
	struct resp *r = arg;

	++r->n;
	r->err = err;
	r->t = now_ms();
	if (err) {
		assert_non_null(why);
		assert_null(sdp);
		snprintf(r->reason, sizeof(r->reason), "%s", why);
		return;
	}
	assert_null(why);
	assert_non_null(sdp);
	pl_strcpy(sdp, r->sdp, sizeof(r->sdp));
}

static struct mbuf *ng_body(const char *cmd, const char *callid)
{
	struct mbuf *mb = mbuf_alloc(128);

	assert_non_null(mb);
	assert_int_equal(benc_dict_begin(mb), 0);
	if (callid)
		assert_int_equal(benc_kv_str(mb, "call-id", callid), 0);
	assert_int_equal(benc_kv_str(mb, "command", cmd), 0);
	assert_int_equal(benc_end(mb), 0);
	return mb;
}

static struct ngc *ngc_to(uint16_t port)
{
	struct ngc *ngc = NULL;
	struct sa sa;

	assert_int_equal(sa_set_str(&sa, "127.0.0.1", port), 0);
	assert_int_equal(ngc_alloc(&ngc, &sa), 0);
	return ngc;
}

/* One ng request, waited for (up to MS). */
static void ng_call(uint16_t port, const char *cmd, const char *callid,
		    struct resp *r, unsigned ms)
{
	struct ngc *ngc = ngc_to(port);
	struct mbuf *mb = ng_body(cmd, callid);

	memset(r, 0, sizeof(*r));
	assert_int_equal(ngc_request(ngc, NULL, mb, ngc_resp, r), 0);
	mem_deref(mb);
	(void)run_until(resp_done, r, ms);
	mem_deref(ngc);
}

static void daemon_start(struct daemon *d, uint16_t ng_port)
{
	char a_ng[64], a_min[32], a_max[32];
	uint64_t deadline;
	struct resp r;
	int st;

	d->ng_port = ng_port ? ng_port : free_port();
	d->port_min = free_block(40);
	d->port_max = (uint16_t)(d->port_min + 39);
	snprintf(a_ng, sizeof(a_ng), "--listen-ng=127.0.0.1:%u", d->ng_port);
	snprintf(a_min, sizeof(a_min), "--port-min=%u", d->port_min);
	snprintf(a_max, sizeof(a_max), "--port-max=%u", d->port_max);

	d->pid = fork();
	assert_true(d->pid >= 0);
	if (d->pid == 0) {
		int fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
		}
		execl(media_bin, media_bin, "--config-file=none",
		      "--interface=127.0.0.1", a_ng, a_min, a_max,
		      "--foreground", "--log-level=4", "--workers=1",
		      (char *)NULL);
		_exit(127);
	}

	deadline = now_ms() + 10000;
	while (now_ms() < deadline) {
		assert_int_equal(waitpid(d->pid, &st, WNOHANG), 0);
		ng_call(d->ng_port, "ping", NULL, &r, 200);
		if (r.n && !r.err && !strcmp(r.result, "pong"))
			return;
	}
	daemon_stop(d);
	fail_msg("%s did not answer ping", media_bin);
}

/* ---- fake ng servers in this process ---- */

enum fake_mode {
	FAKE_SILENT,      /* count, never answer */
	FAKE_JUNK_OK,     /* junk, wrong cookie, then the right reply twice */
	FAKE_JUNK_BAD,    /* right cookie, broken bencode */
	FAKE_NOT_DICT,    /* right cookie, a bencoded integer */
};

struct fake {
	struct udp_sock *us;
	uint16_t port;
	enum fake_mode mode;
	unsigned rx;
	char first[256];       /* the first datagram */
	bool all_same;         /* every datagram equal to the first */
};

static void fake_send(struct fake *f, const struct sa *to, const char *s)
{
	struct mbuf *mb = mbuf_alloc(strlen(s) + 1);

	assert_non_null(mb);
	assert_int_equal(mbuf_write_str(mb, s), 0);
	mb->pos = 0;
	(void)udp_send(f->us, to, mb);
	mem_deref(mb);
}

static void fake_recv(const struct sa *src, struct mbuf *mb, void *arg)
{
	struct fake *f = arg;
	char buf[256], cookie[64], out[320];
	size_t n = mbuf_get_left(mb);
	const char *sp;

	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, mbuf_buf(mb), n);
	buf[n] = '\0';
	if (!f->rx++) {
		snprintf(f->first, sizeof(f->first), "%s", buf);
		f->all_same = true;
	}
	else if (strcmp(buf, f->first)) {
		f->all_same = false;
	}
	sp = strchr(buf, ' ');
	assert_non_null(sp);
	snprintf(cookie, sizeof(cookie), "%.*s", (int)(sp - buf), buf);

	switch (f->mode) {
	case FAKE_SILENT:
		break;
	case FAKE_JUNK_OK:
		fake_send(f, src, "garbage-without-any-space");
		fake_send(f, src, "");
		fake_send(f, src, "deadbeef_1 d6:result4:ponge");
		snprintf(out, sizeof(out), "%sX d6:result4:ponge", cookie);
		fake_send(f, src, out);
		snprintf(out, sizeof(out), "%s d6:result4:ponge", cookie);
		fake_send(f, src, out);
		fake_send(f, src, out);   /* duplicate: must be ignored */
		break;
	case FAKE_JUNK_BAD:
		snprintf(out, sizeof(out), "%s d6:result4:pon", cookie);
		fake_send(f, src, out);
		break;
	case FAKE_NOT_DICT:
		snprintf(out, sizeof(out), "%s i42e", cookie);
		fake_send(f, src, out);
		break;
	}
}

static void fake_destructor(void *arg)
{
	struct fake *f = arg;

	mem_deref(f->us);
}

static struct fake *fake_alloc(enum fake_mode mode)
{
	struct fake *f = mem_zalloc(sizeof(*f), fake_destructor);
	struct sa sa;

	assert_non_null(f);
	f->mode = mode;
	assert_int_equal(sa_set_str(&sa, "127.0.0.1", 0), 0);
	assert_int_equal(udp_listen(&f->us, &sa, fake_recv, f), 0);
	assert_int_equal(udp_local_get(f->us, &sa), 0);
	f->port = sa_port(&sa);
	return f;
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
	(void)state;
	if (libre_init())
		return -1;
	log_init("test", getenv("TEST_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (!find_media_bin()) {
		fprintf(stderr, "test_ngc: tally-media not found (%s); "
			"set TALLY_MEDIA\n", media_bin);
		return -1;
	}
	daemon_start(&dA, 0);
	daemon_start(&dB, 0);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	daemon_stop(&dA);
	daemon_stop(&dB);
	daemon_stop(&dC);
	libre_close();
	return 0;
}

static struct mediapool *pool_of(const char *fmt, unsigned a, unsigned b,
				 uint32_t ping_ms)
{
	struct mediapool *mp = NULL;
	char list[128];

	snprintf(list, sizeof(list), fmt, a, b);
	assert_int_equal(mediapool_alloc(&mp, list, ping_ms), 0);
	return mp;
}

static bool all_healthy(void *arg)
{
	struct mediapool *mp = arg;

	for (unsigned i = 0; i < mediapool_count(mp); i++) {
		if (!mediasrv_healthy(mediapool_get(mp, i)))
			return false;
	}
	return true;
}

static bool srv_healthy(void *arg)
{
	return mediasrv_healthy(arg);
}

static bool none_pickable(void *arg)
{
	return mediapool_pick(arg) == NULL;
}

/* ---- tests ---- */

static void test_pool_parse(void **state)
{
	struct mediapool *mp = NULL;
	char name[64];
	(void)state;

	assert_int_equal(mediapool_alloc(&mp, "", 1000), EINVAL);
	assert_int_equal(mediapool_alloc(&mp, " , ", 1000), EINVAL);
	assert_int_equal(mediapool_alloc(&mp, "localhost:2223", 1000), EINVAL);
	assert_int_equal(mediapool_alloc(&mp, "127.0.0.1", 1000), EINVAL);
	assert_int_equal(mediapool_alloc(&mp, "127.0.0.1:2223,x", 1000),
			 EINVAL);
	assert_null(mp);

	mp = pool_of(" 127.0.0.1:%u , 127.0.0.1:%u ", dA.ng_port, dB.ng_port,
		     1000);
	assert_int_equal(mediapool_count(mp), 2);
	snprintf(name, sizeof(name), "127.0.0.1:%u", dA.ng_port);
	assert_string_equal(mediasrv_name(mediapool_get(mp, 0)), name);
	snprintf(name, sizeof(name), "127.0.0.1:%u", dB.ng_port);
	assert_string_equal(mediasrv_name(mediapool_get(mp, 1)), name);
	assert_null(mediapool_get(mp, 2));
	mem_deref(mp);

	/* IPv6 form: parsing and naming; the socket may be unavailable in
	 * an IPv4-only sandbox, so only a parse error would be a failure. */
	if (!mediapool_alloc(&mp, "[::1]:2223", 60000)) {
		assert_string_equal(mediasrv_name(mediapool_get(mp, 0)),
				    "[::1]:2223");
		mp = mem_deref(mp);
	}
}

static void test_ping_health_up(void **state)
{
	struct mediapool *mp;
	struct mediasrv *ms;
	uint64_t t0 = now_ms();
	(void)state;

	mp = pool_of("127.0.0.1:%u", dA.ng_port, 0, 100);
	ms = mediapool_get(mp, 0);
	assert_false(mediasrv_healthy(ms));      /* unknown at first */
	assert_ptr_equal(mediapool_pick(mp), ms); /* unknown is a fallback */
	assert_true(run_until(all_healthy, mp, 2000));
	assert_true(now_ms() - t0 < 500);        /* pinged at once */
	assert_ptr_equal(mediapool_pick(mp), ms);
	/* stays up across several ping periods */
	(void)run_until(NULL, NULL, 350);
	assert_true(mediasrv_healthy(ms));
	mem_deref(mp);
}

static const char offer_sdp[] =
	"v=0\r\n"
	"o=alice 2890844526 2890844526 IN IP4 10.9.8.7\r\n"
	"s=-\r\n"
	"c=IN IP4 10.9.8.7\r\n"
	"t=0 0\r\n"
	"m=audio 4000 RTP/AVP 0 101\r\n"
	"a=rtpmap:0 PCMU/8000\r\n"
	"a=rtpmap:101 telephone-event/8000\r\n"
	"a=candidate:1 1 UDP 2130706431 10.9.8.7 4000 typ host\r\n"
	"a=ice-ufrag:abcd\r\n"
	"a=sendrecv\r\n"
	"m=video 4002 RTP/AVP 96\r\n"
	"a=rtpmap:96 H264/90000\r\n"
	"a=fmtp:96 profile-level-id=42e01f\r\n"
	"a=sendrecv\r\n";

static const char answer_sdp[] =
	"v=0\r\n"
	"o=bob 1 1 IN IP4 10.5.5.5\r\n"
	"s=-\r\n"
	"c=IN IP4 10.5.5.5\r\n"
	"t=0 0\r\n"
	"m=audio 5000 RTP/AVP 0 101\r\n"
	"a=rtpmap:0 PCMU/8000\r\n"
	"a=rtpmap:101 telephone-event/8000\r\n"
	"a=sendrecv\r\n"
	"m=video 5002 RTP/AVP 96\r\n"
	"a=rtpmap:96 H264/90000\r\n"
	"a=sendrecv\r\n";

static unsigned m_port(const char *sdp, const char *media)
{
	char key[16];
	const char *p;

	snprintf(key, sizeof(key), "m=%s ", media);
	p = strstr(sdp, key);
	assert_non_null(p);
	return (unsigned)strtoul(p + strlen(key), NULL, 10);
}

static void check_rewritten(const char *sdp, const struct daemon *d,
			    unsigned old_audio, unsigned old_video)
{
	unsigned pa = m_port(sdp, "audio"), pv = m_port(sdp, "video");

	assert_non_null(strstr(sdp, "c=IN IP4 127.0.0.1\r\n"));
	assert_non_null(strstr(sdp, " IN IP4 127.0.0.1\r\n"));  /* o= too */
	assert_null(strstr(sdp, "10.9.8.7"));
	assert_null(strstr(sdp, "10.5.5.5"));
	assert_null(strstr(sdp, "a=candidate"));
	assert_null(strstr(sdp, "a=ice-ufrag"));
	assert_non_null(strstr(sdp, "a=rtpmap:96 H264/90000"));
	assert_true(pa != old_audio && pv != old_video && pa != pv);
	assert_true(pa >= d->port_min && pa <= d->port_max);
	assert_true(pv >= d->port_min && pv <= d->port_max);
}

static bool query_gone(void *arg)
{
	struct resp r;
	ng_call(dA.ng_port, "query", arg, &r, 1000);
	return r.n && !r.err && !strcmp(r.result, "error");
}

static void test_offer_answer_delete(void **state)
{
	struct mediapool *mp;
	struct mediasrv *ms;
	struct pl sdp;
	struct media_sdp_params p;
	struct ngc_req *req = NULL;
	char callid[64];
	struct resp r;
	(void)state;

	mp = pool_of("127.0.0.1:%u", dA.ng_port, 0, 1000);
	assert_true(run_until(all_healthy, mp, 2000));
	ms = mediapool_pick(mp);
	assert_non_null(ms);
	snprintf(callid, sizeof(callid), "ngc-test-%08x", rand_u32());

	memset(&p, 0, sizeof(p));
	p.callid = callid;
	p.from_tag = "ftag-1";
	pl_set_str(&sdp, offer_sdp);
	p.sdp = &sdp;
	memset(&r, 0, sizeof(r));
	assert_int_equal(mediasrv_offer(ms, &req, &p, sdp_resp, &r), 0);
	assert_non_null(req);
	assert_true(run_until(resp_done, &r, 3000));
	req = mem_deref(req);
	assert_int_equal(r.err, 0);
	check_rewritten(r.sdp, &dA, 4000, 4002);

	/* answer without a to-tag is a programmer error */
	assert_int_equal(mediasrv_answer(ms, NULL, &p, sdp_resp, &r), EINVAL);
	p.to_tag = "ttag-1";
	pl_set_str(&sdp, answer_sdp);
	memset(&r, 0, sizeof(r));
	assert_int_equal(mediasrv_answer(ms, NULL, &p, sdp_resp, &r), 0);
	assert_true(run_until(resp_done, &r, 3000));
	assert_int_equal(r.err, 0);
	check_rewritten(r.sdp, &dA, 5000, 5002);

	/* the call exists until deleted */
	ng_call(dA.ng_port, "query", callid, &r, 2000);
	assert_string_equal(r.result, "ok");
	assert_int_equal(mediasrv_delete(ms, callid), 0);
	assert_true(run_until(query_gone, callid, 2000));
	assert_true(mediasrv_healthy(ms));
	mem_deref(mp);
}

static void test_error_reason(void **state)
{
	struct mediapool *mp;
	struct media_sdp_params p;
	struct pl sdp;
	struct resp r;
	(void)state;

	mp = pool_of("127.0.0.1:%u", dA.ng_port, 0, 1000);
	memset(&p, 0, sizeof(p));
	p.callid = "ngc-test-no-such-call";
	p.from_tag = "f";
	p.to_tag = "t";
	pl_set_str(&sdp, answer_sdp);
	p.sdp = &sdp;
	memset(&r, 0, sizeof(r));
	assert_int_equal(mediasrv_answer(mediapool_get(mp, 0), NULL, &p,
					 sdp_resp, &r), 0);
	assert_true(run_until(resp_done, &r, 3000));
	assert_int_equal(r.n, 1);
	assert_int_equal(r.err, EPROTO);
	assert_string_equal(r.reason, "Unknown call-id");
	/* an error reply is still an answer: the server is fine */
	assert_true(run_until(all_healthy, mp, 2000));

	/* bad arguments */
	p.sdp = NULL;
	assert_int_equal(mediasrv_offer(mediapool_get(mp, 0), NULL, &p,
					sdp_resp, &r), EINVAL);
	assert_int_equal(mediasrv_delete(mediapool_get(mp, 0), ""), EINVAL);
	mem_deref(mp);
}

/* No answer: 5 identical sends 500 ms apart, ETIMEDOUT at 2.5 s; a real
 * request timing out marks its server down. */
static void test_timeout(void **state)
{
	struct fake *f1 = fake_alloc(FAKE_SILENT), *f2 = fake_alloc(FAKE_SILENT);
	struct ngc *ngc = ngc_to(f1->port);
	struct mbuf *mb = ng_body("ping", NULL);
	struct mediapool *mp;
	struct media_sdp_params p;
	struct ngc_req *req = NULL;
	struct resp r1, r2;
	struct pl sdp;
	uint64_t t0 = now_ms();
	(void)state;

	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	assert_int_equal(ngc_request(ngc, &req, mb, ngc_resp, &r1), 0);

	mp = pool_of("127.0.0.1:%u", f2->port, 0, 60000);
	memset(&p, 0, sizeof(p));
	p.callid = "ngc-test-timeout";
	p.from_tag = "f";
	pl_set_str(&sdp, offer_sdp);
	p.sdp = &sdp;
	assert_int_equal(mediasrv_offer(mediapool_get(mp, 0), NULL, &p,
					sdp_resp, &r2), 0);
	assert_ptr_equal(mediapool_pick(mp), mediapool_get(mp, 0));

	assert_true(run_until(resp_done, &r1, 3500));
	assert_true(run_until(resp_done, &r2, 1000));
	assert_int_equal(r1.n, 1);
	assert_int_equal(r1.err, ETIMEDOUT);
	assert_true(r1.t - t0 >= 2300 && r1.t - t0 <= 3200);
	assert_int_equal(f1->rx, 5);
	assert_true(f1->all_same);      /* same cookie every time */
	assert_int_equal(r2.err, ETIMEDOUT);
	assert_non_null(strstr(r2.reason, "no answer"));
	assert_false(mediasrv_healthy(mediapool_get(mp, 0)));
	assert_null(mediapool_pick(mp));  /* down: never picked */

	/* completed: still a mem object, deref is harmless */
	mem_deref(req);
	mem_deref(mb);
	mem_deref(ngc);
	mem_deref(mp);
	mem_deref(f1);
	mem_deref(f2);
}

static void test_cancel(void **state)
{
	struct fake *f = fake_alloc(FAKE_SILENT);
	struct ngc *ngc = ngc_to(f->port);
	struct mbuf *mb = ng_body("ping", NULL);
	struct ngc_req *req = NULL, *req2 = NULL;
	struct mediapool *mp;
	struct media_sdp_params p;
	struct pl sdp;
	struct resp r1, r2, r3;
	(void)state;

	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	memset(&r3, 0, sizeof(r3));

	/* deref cancels: no callback, no more retransmissions */
	assert_int_equal(ngc_request(ngc, &req, mb, ngc_resp, &r1), 0);
	(void)run_until(NULL, NULL, 200);
	req = mem_deref(req);
	(void)run_until(NULL, NULL, 900);
	assert_int_equal(r1.n, 0);
	assert_int_equal(f->rx, 1);

	/* freeing the ngc cancels what is pending, owned or not */
	assert_int_equal(ngc_request(ngc, &req2, mb, ngc_resp, &r1), 0);
	assert_int_equal(ngc_request(ngc, NULL, mb, ngc_resp, &r1), 0);
	ngc = mem_deref(ngc);
	(void)run_until(NULL, NULL, 600);
	assert_int_equal(r1.n, 0);
	req2 = mem_deref(req2);       /* detached handle: harmless */

	/* a cancelled offer against a real daemon: the reply comes, the
	 * handler does not run */
	mp = pool_of("127.0.0.1:%u", dA.ng_port, 0, 1000);
	memset(&p, 0, sizeof(p));
	p.callid = "ngc-test-cancel";
	p.from_tag = "f";
	pl_set_str(&sdp, offer_sdp);
	p.sdp = &sdp;
	assert_int_equal(mediasrv_offer(mediapool_get(mp, 0), &req, &p,
					sdp_resp, &r2), 0);
	req = mem_deref(req);
	/* and one that is not cancelled, sent after it, proves the first
	 * reply had time to arrive */
	p.callid = "ngc-test-cancel-2";
	assert_int_equal(mediasrv_offer(mediapool_get(mp, 0), NULL, &p,
					sdp_resp, &r3), 0);
	assert_true(run_until(resp_done, &r3, 3000));
	(void)run_until(NULL, NULL, 100);
	assert_int_equal(r2.n, 0);
	assert_int_equal(r3.err, 0);

	/* freeing the pool with a request in flight: no callback */
	memset(&r3, 0, sizeof(r3));
	assert_int_equal(mediasrv_offer(mediapool_get(mp, 0), &req, &p,
					sdp_resp, &r3), 0);
	mp = mem_deref(mp);
	(void)run_until(NULL, NULL, 200);
	assert_int_equal(r3.n, 0);
	req = mem_deref(req);

	mediasrv_delete(NULL, "x");
	mem_deref(mb);
	mem_deref(f);
}

static void test_busy(void **state)
{
	struct fake *f = fake_alloc(FAKE_SILENT);
	struct ngc *ngc = ngc_to(f->port);
	struct mbuf *mb = ng_body("ping", NULL);
	struct ngc_req *last = NULL;
	struct resp r;
	unsigned i;
	int err = 0;
	(void)state;

	memset(&r, 0, sizeof(r));
	for (i = 0; i < 10000; i++) {
		err = ngc_request(ngc, NULL, mb, ngc_resp, &r);
		if (err)
			break;
	}
	assert_int_equal(err, EBUSY);
	assert_int_equal(i, 4096);
	assert_int_equal(ngc_request(ngc, &last, mb, ngc_resp, &r), EBUSY);
	assert_null(last);
	assert_int_equal(ngc_request(ngc, NULL, NULL, ngc_resp, &r), EINVAL);
	mem_deref(ngc);
	assert_int_equal(r.n, 0);
	mem_deref(mb);
	mem_deref(f);
}

static void test_garbage(void **state)
{
	static const enum fake_mode modes[] = {
		FAKE_JUNK_OK, FAKE_JUNK_BAD, FAKE_NOT_DICT
	};
	(void)state;

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct fake *f = fake_alloc(modes[i]);
		struct ngc *ngc = ngc_to(f->port);
		struct mbuf *mb = ng_body("ping", NULL);
		struct resp r;

		memset(&r, 0, sizeof(r));
		assert_int_equal(ngc_request(ngc, NULL, mb, ngc_resp, &r), 0);
		assert_true(run_until(resp_done, &r, 3000));
		(void)run_until(NULL, NULL, 100);   /* late duplicates */
		assert_int_equal(r.n, 1);
		if (modes[i] == FAKE_JUNK_OK) {
			assert_int_equal(r.err, 0);
			assert_string_equal(r.result, "pong");
		}
		else {
			assert_int_equal(r.err, EBADMSG);
		}
		assert_int_equal(f->rx, 1);
		mem_deref(mb);
		mem_deref(ngc);
		mem_deref(f);
	}
}

/* A dead server is down, never picked, and up again once it answers. */
static void test_down_then_up(void **state)
{
	struct mediapool *mp;
	struct mediasrv *dead, *live;
	uint16_t port = free_port();
	(void)state;

	mp = pool_of("127.0.0.1:%u,127.0.0.1:%u", port, dA.ng_port, 100);
	dead = mediapool_get(mp, 0);
	live = mediapool_get(mp, 1);
	mediasrv_calls_add(live, 10);    /* even when busier */
	assert_true(run_until(srv_healthy, live, 1000));
	(void)run_until(NULL, NULL, 400);  /* >= 2 missed pings */
	assert_false(mediasrv_healthy(dead));
	assert_true(mediasrv_healthy(live));
	for (int i = 0; i < 5; i++)
		assert_ptr_equal(mediapool_pick(mp), live);
	mem_deref(mp);

	/* alone and dead: nothing to pick; started: up and picked */
	mp = pool_of("127.0.0.1:%u", port, 0, 100);
	dead = mediapool_get(mp, 0);
	assert_true(run_until(none_pickable, mp, 1000));
	daemon_start(&dC, port);
	assert_true(run_until(all_healthy, mp, 2000));
	assert_ptr_equal(mediapool_pick(mp), dead);

	/* and down again when it stops */
	daemon_stop(&dC);
	assert_true(run_until(none_pickable, mp, 1000));
	mem_deref(mp);
}

static void test_least_loaded(void **state)
{
	struct mediapool *mp;
	struct mediasrv *a, *b;
	(void)state;

	mp = pool_of("127.0.0.1:%u,127.0.0.1:%u", dA.ng_port, dB.ng_port, 100);
	a = mediapool_get(mp, 0);
	b = mediapool_get(mp, 1);
	assert_true(run_until(all_healthy, mp, 2000));
	assert_ptr_equal(mediapool_pick(mp), a);     /* tie: first listed */
	mediasrv_calls_add(a, 1);
	assert_ptr_equal(mediapool_pick(mp), b);
	mediasrv_calls_add(b, 2);
	assert_ptr_equal(mediapool_pick(mp), a);
	mediasrv_calls_add(a, 2);
	assert_ptr_equal(mediapool_pick(mp), b);
	assert_int_equal(mediasrv_calls(a), 3);
	mediasrv_calls_add(a, -100);                 /* clamps at 0 */
	assert_int_equal(mediasrv_calls(a), 0);
	assert_ptr_equal(mediapool_pick(mp), a);
	mem_deref(mp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_parse),
		cmocka_unit_test(test_ping_health_up),
		cmocka_unit_test(test_offer_answer_delete),
		cmocka_unit_test(test_error_reason),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_busy),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_down_then_up),
		cmocka_unit_test(test_least_loaded),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
