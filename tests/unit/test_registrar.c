/*
 * test_registrar.c: the registrar in-process, against real SIP clients.
 *
 * One libre main loop holds two SIP stacks on loopback: the server stack
 * hosts the registrar behind a sip_listen handler (as tally-sip's main does),
 * the client stack carries libre's own sipreg client, a small scripted
 * REGISTER client (sip_requestf + sip_auth, so every header is under the
 * test's control) and, for requests no real client would send, a raw UDP
 * socket. Nothing sleeps: each step runs the loop until the awaited event
 * (a response, or a registrar state polled every 10 ms) or a bounded
 * timeout, which fails the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "log.h"
#include "sipd.h"

#define REALM "tally"
#define USERS "alice secret-a\nbob secret-b\ndave secret-d\n"

struct fixture {
	struct sip *srv, *cli;
	struct sip_lsnr *lsnr;
	struct registrar *reg;
	struct sa srv_addr;
	char srv_uri[64];          /* "sip:127.0.0.1:<port>" */
	unsigned cli_port;
};

/* ---- the loop: run until re_cancel() or the guard fires ---- */

static bool timed_out;

static void guard_h(void *arg)
{
	(void)arg;
	timed_out = true;
	re_cancel();
}

static void loop_run(unsigned timeout_ms)
{
	struct tmr guard;

	tmr_init(&guard);
	timed_out = false;
	tmr_start(&guard, timeout_ms, guard_h, NULL);
	(void)re_main(NULL);
	tmr_cancel(&guard);
	assert_false(timed_out);
}

typedef bool (cond_h)(struct fixture *f, void *arg);

struct poll_ctx {
	struct tmr tmr;
	struct fixture *f;
	cond_h *cond;
	void *arg;
};

static void poll_h(void *arg)
{
	struct poll_ctx *pc = arg;

	if (pc->cond(pc->f, pc->arg))
		re_cancel();
	else
		tmr_start(&pc->tmr, 10, poll_h, pc);
}

/* Registrar state has no event to wait for: re-check every 10 ms. */
static void wait_until(struct fixture *f, cond_h *cond, void *arg,
		       unsigned timeout_ms)
{
	struct poll_ctx pc = {.f = f, .cond = cond, .arg = arg};

	if (cond(f, arg))
		return;
	tmr_init(&pc.tmr);
	tmr_start(&pc.tmr, 10, poll_h, &pc);
	loop_run(timeout_ms);
	tmr_cancel(&pc.tmr);
}

/* ---- fixture ---- */

static bool srv_request_h(const struct sip_msg *msg, void *arg)
{
	struct fixture *f = arg;

	return registrar_handle(f->reg, msg);
}

static struct sip *stack_alloc(struct sa *laddr)
{
	struct sip *sip = NULL;

	assert_int_equal(sip_alloc(&sip, NULL, 32, 32, 32, "tally-test",
				   NULL, NULL), 0);
	assert_int_equal(sa_set_str(laddr, "127.0.0.1", 0), 0);
	assert_int_equal(sip_transp_add(sip, SIP_TRANSP_UDP, laddr), 0);
	assert_int_equal(sip_transp_laddr(sip, laddr, SIP_TRANSP_UDP, NULL), 0);
	assert_true(sa_port(laddr) != 0);
	return sip;
}

static void fixture_init(struct fixture *f, uint32_t min, uint32_t max)
{
	struct sa cli_addr;

	memset(f, 0, sizeof(*f));
	f->srv = stack_alloc(&f->srv_addr);
	f->cli = stack_alloc(&cli_addr);
	f->cli_port = sa_port(&cli_addr);
	re_snprintf(f->srv_uri, sizeof(f->srv_uri), "sip:%J", &f->srv_addr);
	assert_int_equal(registrar_alloc(&f->reg, f->srv, REALM, USERS, min,
					 max), 0);
	assert_int_equal(sip_listen(&f->lsnr, f->srv, true, srv_request_h, f),
			 0);
}

static void fixture_close(struct fixture *f)
{
	f->lsnr = mem_deref(f->lsnr);
	f->reg = mem_deref(f->reg);
	sip_close(f->cli, true);
	sip_close(f->srv, true);
	f->cli = mem_deref(f->cli);
	f->srv = mem_deref(f->srv);
}

static int lookup(struct fixture *f, const char *user, char *uri, size_t sz)
{
	struct pl pl;

	pl_set_str(&pl, user);
	return registrar_lookup(f->reg, &pl, uri, sz);
}

static bool gone(struct fixture *f, void *arg)
{
	char uri[256];

	return lookup(f, arg, uri, sizeof(uri)) == ENOENT;
}

static bool alice_is(struct fixture *f, void *arg)
{
	char uri[256];

	return !lookup(f, "alice", uri, sizeof(uri)) && !strcmp(uri, arg);
}

/* ---- libre's sipreg client ---- */

struct ua {
	struct sipreg *reg;
	const char *user, *pass;
	uint16_t scode;            /* last final status */
	unsigned ncontacts;        /* Contact headers in the last 200 */
	unsigned *pending;         /* counts down to 0 on a final answer */
};

static int ua_auth_h(char **user, char **pass, const char *realm, void *arg)
{
	struct ua *ua = arg;

	assert_string_equal(realm, REALM);
	return str_dup(user, ua->user) | str_dup(pass, ua->pass);
}

static void ua_resp_h(int err, const struct sip_msg *msg, void *arg)
{
	struct ua *ua = arg;

	if (err || !msg)
		return;
	ua->scode = msg->scode;
	ua->ncontacts = sip_msg_hdr_count(msg, SIP_HDR_CONTACT);
	if (ua->pending && *ua->pending && !--*ua->pending)
		re_cancel();
}

static void ua_start(struct fixture *f, struct ua *ua, const char *aor_user,
		     const char *cuser, const char *params)
{
	char aor[64];

	re_snprintf(aor, sizeof(aor), "sip:%s@127.0.0.1", aor_user);
	assert_int_equal(sipreg_register(&ua->reg, f->cli, f->srv_uri, aor,
					 NULL, aor, 3600, cuser, NULL, 0, 0,
					 ua_auth_h, ua, false, ua_resp_h, ua,
					 params, NULL), 0);
}

static void test_sipreg_clients(void **state)
{
	struct ua desk = {.user = "alice", .pass = "secret-a"};
	struct ua soft = {.user = "alice", .pass = "secret-a"};
	struct ua bobp = {.user = "bob", .pass = "secret-b"};
	char uri[256], want[128];
	struct fixture f;
	unsigned pending = 3;
	struct pl pl;
	(void)state;

	fixture_init(&f, 60, 3600);
	desk.pending = soft.pending = bobp.pending = &pending;
	ua_start(&f, &desk, "alice", "alice-desk", "q=0.5");
	ua_start(&f, &soft, "alice", "alice-soft", "q=0.9");
	ua_start(&f, &bobp, "bob", "bob-phone", NULL);
	loop_run(5000);
	assert_int_equal(desk.scode, 200);
	assert_int_equal(soft.scode, 200);
	assert_int_equal(bobp.scode, 200);
	assert_true(sipreg_registered(desk.reg));
	/* the second alice device to finish saw both contacts */
	assert_int_equal(desk.ncontacts > soft.ncontacts ? desk.ncontacts :
			 soft.ncontacts, 2);
	assert_int_equal(bobp.ncontacts, 1);

	/* the higher q wins */
	assert_int_equal(lookup(&f, "alice", uri, sizeof(uri)), 0);
	re_snprintf(want, sizeof(want), "sip:alice-soft@127.0.0.1:%u",
		    f.cli_port);
	assert_string_equal(uri, want);
	assert_int_equal(lookup(&f, "bob", uri, sizeof(uri)), 0);
	re_snprintf(want, sizeof(want), "sip:bob-phone@127.0.0.1:%u",
		    f.cli_port);
	assert_string_equal(uri, want);
	assert_int_equal(lookup(&f, "bob", uri, 8), ENOBUFS);

	/* known but unregistered, unknown */
	assert_int_equal(lookup(&f, "dave", uri, sizeof(uri)), ENOENT);
	assert_int_equal(lookup(&f, "carol", uri, sizeof(uri)), ENOENT);
	pl_set_str(&pl, "dave");
	assert_true(registrar_known(f.reg, &pl));
	pl_set_str(&pl, "carol");
	assert_false(registrar_known(f.reg, &pl));
	pl_set_str(&pl, "alic");
	assert_false(registrar_known(f.reg, &pl));

	/* dropping a sipreg unregisters (expires=0): soft goes, desk stays */
	soft.reg = mem_deref(soft.reg);
	re_snprintf(want, sizeof(want), "sip:alice-desk@127.0.0.1:%u",
		    f.cli_port);
	wait_until(&f, alice_is, want, 2000);
	desk.reg = mem_deref(desk.reg);
	bobp.reg = mem_deref(bobp.reg);
	wait_until(&f, gone, "alice", 2000);
	wait_until(&f, gone, "bob", 2000);
	fixture_close(&f);
}

static void test_sipreg_refused(void **state)
{
	struct ua wrong = {.user = "alice", .pass = "nope"};
	struct ua carol = {.user = "carol", .pass = "x"};
	struct fixture f;
	unsigned pending = 2;
	char uri[256];
	(void)state;

	fixture_init(&f, 60, 3600);
	wrong.pending = carol.pending = &pending;
	ua_start(&f, &wrong, "alice", "alice-x", NULL);
	ua_start(&f, &carol, "carol", "carol", NULL);
	loop_run(5000);
	assert_int_equal(wrong.scode, 403);
	assert_int_equal(carol.scode, 404);
	assert_int_equal(lookup(&f, "alice", uri, sizeof(uri)), ENOENT);
	mem_deref(wrong.reg);
	mem_deref(carol.reg);
	fixture_close(&f);
}

/* ---- a scripted client: exact headers, CSeq under control ---- */

struct treg {
	struct fixture *f;
	struct sip_auth *auth;
	const char *user, *pass;   /* credentials offered */
	const char *to;            /* AOR user */
	char callid[32];
	uint32_t cseq;
	const char *hdrs;          /* Contact/Expires lines of this request */
	unsigned challenges;
	/* the final answer */
	uint16_t scode;
	char reason[64];
	char contacts[1024];       /* "<uri>;expires=N\n" per Contact */
	unsigned ncontacts;
	uint32_t min_expires;
};

static int treg_auth_h(char **user, char **pass, const char *realm,
		       void *arg)
{
	struct treg *t = arg;
	(void)realm;

	return str_dup(user, t->user) | str_dup(pass, t->pass);
}

static void treg_resp_h(int err, const struct sip_msg *msg, void *arg);

static void treg_request(struct treg *t)
{
	assert_int_equal(sip_requestf(NULL, t->f->cli, true, "REGISTER",
				      t->f->srv_uri, NULL, t->auth, NULL,
				      treg_resp_h, t,
				      "To: <sip:%s@127.0.0.1>\r\n"
				      "From: <sip:%s@127.0.0.1>;tag=t%s\r\n"
				      "Call-ID: %s\r\n"
				      "CSeq: %u REGISTER\r\n"
				      "Max-Forwards: 70\r\n"
				      "%s"
				      "Content-Length: 0\r\n\r\n",
				      t->to, t->to, t->callid, t->callid,
				      t->cseq, t->hdrs), 0);
}

static bool contact_collect(const struct sip_hdr *hdr,
			    const struct sip_msg *msg, void *arg)
{
	struct treg *t = arg;
	(void)msg;

	++t->ncontacts;
	re_snprintf(t->contacts + strlen(t->contacts),
		    sizeof(t->contacts) - strlen(t->contacts), "%r\n",
		    &hdr->val);
	return false;
}

static void treg_resp_h(int err, const struct sip_msg *msg, void *arg)
{
	struct treg *t = arg;
	const struct sip_hdr *me;

	if (err || !msg) {
		re_cancel();
		return;
	}
	if (msg->scode < 200)
		return;
	if (msg->scode == 401 && t->challenges++ < 2 &&
	    !sip_auth_authenticate(t->auth, msg)) {
		++t->cseq;
		treg_request(t);
		return;
	}
	t->scode = msg->scode;
	pl_strcpy(&msg->reason, t->reason, sizeof(t->reason));
	t->contacts[0] = '\0';
	t->ncontacts = 0;
	(void)sip_msg_hdr_apply(msg, true, SIP_HDR_CONTACT, contact_collect, t);
	me = sip_msg_hdr(msg, SIP_HDR_MIN_EXPIRES);
	t->min_expires = me ? pl_u32(&me->val) : 0;
	re_cancel();
}

static void treg_init(struct treg *t, struct fixture *f, const char *to,
		      const char *user, const char *pass)
{
	memset(t, 0, sizeof(*t));
	t->f = f;
	t->to = to;
	t->user = user;
	t->pass = pass;
	t->cseq = 1;
	rand_str(t->callid, 16);
	assert_int_equal(sip_auth_alloc(&t->auth, treg_auth_h, t, false), 0);
}

/* Send one REGISTER with HDRS (answering a challenge); the final status. */
static uint16_t treg_send(struct treg *t, const char *hdrs)
{
	t->hdrs = hdrs;
	t->scode = 0;
	t->challenges = 0;
	treg_request(t);
	loop_run(3000);
	++t->cseq;
	return t->scode;
}

static void test_contact_list(void **state)
{
	struct fixture f;
	struct treg t;
	char uri[256];
	(void)state;

	fixture_init(&f, 60, 3600);
	treg_init(&t, &f, "alice", "alice", "secret-a");

	/* two contacts at once: own ;expires= and the Expires header */
	assert_int_equal(treg_send(&t, "Contact: <sip:c1@10.0.0.1>;expires=120,"
				   " <sip:c2@10.0.0.2>\r\nExpires: 300\r\n"),
			 200);
	assert_int_equal(t.ncontacts, 2);
	assert_non_null(strstr(t.contacts, "<sip:c1@10.0.0.1>;expires=120\n"));
	assert_non_null(strstr(t.contacts, "<sip:c2@10.0.0.2>;expires=300\n"));

	/* a query lists without changing */
	assert_int_equal(treg_send(&t, ""), 200);
	assert_int_equal(t.ncontacts, 2);

	/* clamped to the maximum; the default is 3600 */
	assert_int_equal(treg_send(&t, "Contact: <sip:c3@10.0.0.3>"
				   ";expires=999999\r\n"), 200);
	assert_non_null(strstr(t.contacts, "<sip:c3@10.0.0.3>;expires=3600\n"));
	assert_int_equal(treg_send(&t, "Contact: <sip:c4@10.0.0.4>\r\n"), 200);
	assert_non_null(strstr(t.contacts, "<sip:c4@10.0.0.4>;expires=3600\n"));
	assert_int_equal(t.ncontacts, 4);

	/* too brief: 423 with Min-Expires, and nothing changes */
	assert_int_equal(treg_send(&t, "Contact: <sip:c5@10.0.0.5>"
				   ";expires=10\r\n"), 423);
	assert_int_equal(t.min_expires, 60);
	assert_int_equal(treg_send(&t, ""), 200);
	assert_int_equal(t.ncontacts, 4);

	/* the same URI twice in one request: one binding, last one wins */
	assert_int_equal(treg_send(&t, "Contact: <sip:c6@10.0.0.6>;expires=0, "
				   "<sip:c6@10.0.0.6>;expires=100, "
				   "<sip:c6@10.0.0.6>;expires=200\r\n"), 200);
	assert_int_equal(t.ncontacts, 5);
	assert_non_null(strstr(t.contacts, "<sip:c6@10.0.0.6>;expires=200\n"));
	assert_int_equal(treg_send(&t, "Contact: <sip:c6@10.0.0.6>;expires=100, "
				   "<sip:c6@10.0.0.6>;expires=0\r\n"), 200);
	assert_int_equal(t.ncontacts, 4);

	/* expires=0 removes one */
	assert_int_equal(treg_send(&t, "Contact: <sip:c1@10.0.0.1>;expires=0\r\n"),
			 200);
	assert_int_equal(t.ncontacts, 3);
	assert_null(strstr(t.contacts, "c1@"));

	/* "*" only alone and with Expires: 0 */
	assert_int_equal(treg_send(&t, "Contact: *\r\nExpires: 30\r\n"), 400);
	assert_string_equal(t.reason, "Contact * needs Expires: 0");
	assert_int_equal(treg_send(&t, "Contact: *\r\n"), 400);
	assert_int_equal(treg_send(&t, "Contact: *, <sip:c9@10.0.0.9>\r\n"
				   "Expires: 0\r\n"), 400);
	assert_string_equal(t.reason, "Contact * combined with other contacts");
	assert_int_equal(treg_send(&t, ""), 200);
	assert_int_equal(t.ncontacts, 3);
	assert_int_equal(treg_send(&t, "Contact: *\r\nExpires: 0\r\n"), 200);
	assert_int_equal(t.ncontacts, 0);
	assert_int_equal(lookup(&f, "alice", uri, sizeof(uri)), ENOENT);

	mem_deref(t.auth);
	fixture_close(&f);
}

static void test_q_and_order(void **state)
{
	struct fixture f;
	struct treg t, t2;
	char uri[256];
	(void)state;

	fixture_init(&f, 60, 3600);
	treg_init(&t, &f, "alice", "alice", "secret-a");
	treg_init(&t2, &f, "alice", "alice", "secret-a");

	assert_int_equal(treg_send(&t, "Contact: <sip:a@10.0.0.1>;q=0.3\r\n"),
			 200);
	assert_non_null(strstr(t.contacts, ";q=0.300"));
	assert_int_equal(treg_send(&t, "Contact: <sip:b@10.0.0.2>;q=0.3\r\n"),
			 200);
	assert_int_equal(lookup(&f, "alice", uri, sizeof(uri)), 0);
	assert_string_equal(uri, "sip:b@10.0.0.2");     /* same q: newest */
	assert_int_equal(treg_send(&t, "Contact: <sip:a@10.0.0.1>;q=0.3\r\n"),
			 200);
	assert_int_equal(lookup(&f, "alice", uri, sizeof(uri)), 0);
	assert_string_equal(uri, "sip:a@10.0.0.1");     /* refreshed */
	assert_int_equal(treg_send(&t, "Contact: <sip:c@10.0.0.3>;q=0.8\r\n"),
			 200);
	assert_int_equal(treg_send(&t, "Contact: <sip:a@10.0.0.1>;q=0.3\r\n"),
			 200);
	assert_int_equal(lookup(&f, "alice", uri, sizeof(uri)), 0);
	assert_string_equal(uri, "sip:c@10.0.0.3");     /* higher q */
	assert_int_equal(treg_send(&t, "Contact: <sip:d@10.0.0.4>\r\n"), 200);
	assert_int_equal(lookup(&f, "alice", uri, sizeof(uri)), 0);
	assert_string_equal(uri, "sip:d@10.0.0.4");     /* no q: 1.0 */

	/* bad q values */
	assert_int_equal(treg_send(&t, "Contact: <sip:e@10.0.0.5>;q=1.5\r\n"),
			 400);
	assert_string_equal(t.reason, "Bad q parameter in Contact");
	assert_int_equal(treg_send(&t, "Contact: <sip:e@10.0.0.5>;q=0.1234\r\n"),
			 400);

	/* an older CSeq of the same Call-ID may not touch the binding (an
	 * unused number: a reused one would be a merged request, 482) ... */
	t.cseq += 100;
	assert_int_equal(treg_send(&t, "Contact: <sip:d@10.0.0.4>\r\n"), 200);
	t.cseq -= 50;
	assert_int_equal(treg_send(&t, "Contact: <sip:d@10.0.0.4>;expires=0\r\n"),
			 500);
	assert_string_equal(t.reason, "Out of order CSeq");
	assert_int_equal(lookup(&f, "alice", uri, sizeof(uri)), 0);
	assert_string_equal(uri, "sip:d@10.0.0.4");
	/* ... another Call-ID may, whatever its CSeq */
	assert_int_equal(treg_send(&t2, "Contact: <sip:d@10.0.0.4>;expires=0\r\n"),
			 200);
	assert_int_equal(lookup(&f, "alice", uri, sizeof(uri)), 0);
	assert_string_equal(uri, "sip:c@10.0.0.3");

	/* authenticating as bob for alice's AOR */
	mem_deref(t2.auth);
	treg_init(&t2, &f, "alice", "bob", "secret-b");
	assert_int_equal(treg_send(&t2, "Contact: <sip:x@10.0.0.6>\r\n"), 403);
	assert_string_equal(t2.reason, "Username does not match To user");

	mem_deref(t.auth);
	mem_deref(t2.auth);
	fixture_close(&f);
}

static void test_expiry(void **state)
{
	struct fixture f;
	struct treg t;
	char uri[256];
	uint64_t t0;
	(void)state;

	fixture_init(&f, 1, 10);
	treg_init(&t, &f, "bob", "bob", "secret-b");
	assert_int_equal(treg_send(&t, "Contact: <sip:b1@10.0.0.1>;expires=1\r\n"
				   "Contact: <sip:b2@10.0.0.2>;expires=60\r\n"),
			 200);
	assert_non_null(strstr(t.contacts, "<sip:b2@10.0.0.2>;expires=10\n"));
	t0 = tmr_jiffies();
	assert_int_equal(treg_send(&t, "Contact: <sip:b2@10.0.0.2>;expires=0\r\n"),
			 200);
	assert_int_equal(lookup(&f, "bob", uri, sizeof(uri)), 0);
	assert_string_equal(uri, "sip:b1@10.0.0.1");
	wait_until(&f, gone, "bob", 3000);
	assert_true(tmr_jiffies() - t0 >= 800);
	assert_int_equal(treg_send(&t, ""), 200);
	assert_int_equal(t.ncontacts, 0);

	mem_deref(t.auth);
	fixture_close(&f);
}

/* ---- raw UDP: requests no client library would send ---- */

struct raw {
	struct udp_sock *us;
	struct sa laddr;
	char reply[2048];
	unsigned n;
};

static void raw_recv_h(const struct sa *src, struct mbuf *mb, void *arg)
{
	struct raw *rw = arg;
	size_t n = mbuf_get_left(mb);
	(void)src;

	if (n >= sizeof(rw->reply))
		n = sizeof(rw->reply) - 1;
	memcpy(rw->reply, mbuf_buf(mb), n);
	rw->reply[n] = '\0';
	re_cancel();
}

/* Send a REGISTER with HDRS (after Via and a fresh Call-ID); the reply. */
static const char *raw_send(struct fixture *f, struct raw *rw,
			    const char *hdrs)
{
	struct mbuf *mb = mbuf_alloc(1024);

	assert_non_null(mb);
	assert_int_equal(mbuf_printf(mb, "REGISTER %s SIP/2.0\r\n"
				     "Via: SIP/2.0/UDP %J;branch=z9hG4bK%08x"
				     ";rport\r\n"
				     "Call-ID: raw-%u-%08x\r\n"
				     "Max-Forwards: 70\r\n"
				     "%s"
				     "Content-Length: 0\r\n\r\n",
				     f->srv_uri, &rw->laddr, rand_u32(),
				     ++rw->n, rand_u32(), hdrs), 0);
	mb->pos = 0;
	rw->reply[0] = '\0';
	assert_int_equal(udp_send(rw->us, &f->srv_addr, mb), 0);
	mem_deref(mb);
	loop_run(2000);
	return rw->reply;
}

static bool starts(const char *s, const char *prefix)
{
	if (strncmp(s, prefix, strlen(prefix))) {
		print_message("got: %.60s\n", s);
		return false;
	}
	return true;
}

#define TF "To: <sip:alice@127.0.0.1>\r\n" \
	   "From: <sip:alice@127.0.0.1>;tag=1\r\n" \
	   "CSeq: 1 REGISTER\r\n"

static void test_raw_bad_requests(void **state)
{
	struct httpauth_digest_chall ch;
	struct fixture f;
	struct raw rw;
	char hdrs[1024], nonce[64];
	const char *rep, *wa;
	struct pl hv;
	(void)state;

	fixture_init(&f, 60, 3600);
	memset(&rw, 0, sizeof(rw));
	assert_int_equal(sa_set_str(&rw.laddr, "127.0.0.1", 0), 0);
	assert_int_equal(udp_listen(&rw.us, &rw.laddr, raw_recv_h, &rw), 0);
	assert_int_equal(udp_local_get(rw.us, &rw.laddr), 0);

	assert_true(starts(raw_send(&f, &rw,
		"From: <sip:alice@127.0.0.1>;tag=1\r\nCSeq: 1 REGISTER\r\n"),
		"SIP/2.0 400 Missing To header\r\n"));
	assert_true(starts(raw_send(&f, &rw,
		"To: <sip:alice@127.0.0.1>\r\nCSeq: 1 REGISTER\r\n"),
		"SIP/2.0 400 Missing From header\r\n"));
	assert_true(starts(raw_send(&f, &rw,
		"To: <sip:alice@127.0.0.1>\r\n"
		"From: <sip:alice@127.0.0.1>;tag=1\r\nCSeq: 1 INVITE\r\n"),
		"SIP/2.0 400 Missing or bad CSeq header\r\n"));
	assert_true(starts(raw_send(&f, &rw, TF "Expires: soon\r\n"),
		"SIP/2.0 400 Bad Expires header\r\n"));
	assert_true(starts(raw_send(&f, &rw, TF "Expires: 60\r\n"
				    "Expires: 70\r\n"),
		"SIP/2.0 400 More than one Expires header\r\n"));
	assert_true(starts(raw_send(&f, &rw, TF "Contact: garbage\r\n"),
		"SIP/2.0 400 Bad Contact header\r\n"));
	assert_true(starts(raw_send(&f, &rw, TF
				    "Contact: <sip:a@1.2.3.4>;expires=x1\r\n"),
		"SIP/2.0 400 Bad expires parameter in Contact\r\n"));
	assert_true(starts(raw_send(&f, &rw, TF
				    "Contact: <sip:a@1.2.3.4>;q=2\r\n"),
		"SIP/2.0 400 Bad q parameter in Contact\r\n"));
	assert_true(starts(raw_send(&f, &rw,
		"To: <sip:mallory@127.0.0.1>\r\n"
		"From: <sip:mallory@127.0.0.1>;tag=1\r\nCSeq: 1 REGISTER\r\n"),
		"SIP/2.0 404 Not Found\r\n"));
	assert_true(starts(raw_send(&f, &rw,
		"To: <sip:127.0.0.1>\r\n"
		"From: <sip:127.0.0.1>;tag=1\r\nCSeq: 1 REGISTER\r\n"),
		"SIP/2.0 404 Not Found\r\n"));
	assert_true(starts(raw_send(&f, &rw, TF
				    "Authorization: Digest bogus\r\n"),
		"SIP/2.0 400 Bad Authorization header\r\n"));

	/* the challenge */
	rep = raw_send(&f, &rw, TF "Contact: <sip:a@1.2.3.4>\r\n");
	assert_true(starts(rep, "SIP/2.0 401 Unauthorized\r\n"));
	wa = strstr(rep, "WWW-Authenticate: ");
	assert_non_null(wa);
	wa += strlen("WWW-Authenticate: ");
	hv.p = wa;
	hv.l = (size_t)(strstr(wa, "\r\n") - wa);
	assert_int_equal(httpauth_digest_challenge_decode(&ch, &hv), 0);
	assert_int_equal(pl_strcmp(&ch.realm, REALM), 0);
	assert_int_equal(pl_strcmp(&ch.qop, "auth"), 0);
	assert_int_equal(pl_strcasecmp(&ch.algorithm, "MD5"), 0);
	assert_false(pl_isset(&ch.stale));
	assert_int_equal(pl_strcpy(&ch.nonce, nonce, sizeof(nonce)), 0);

	/* a nonce we never issued: challenged again, not stale */
	rep = raw_send(&f, &rw, TF
		"Authorization: Digest username=\"alice\", realm=\"tally\", "
		"nonce=\"6500000000000000000000000000000000000000\", "
		"uri=\"sip:127.0.0.1\", "
		"response=\"00000000000000000000000000000000\"\r\n");
	assert_true(starts(rep, "SIP/2.0 401 Unauthorized\r\n"));
	assert_null(strstr(rep, "stale=true"));

	/* the right digest over a nonce we do not accept (another process
	 * issued it): stale=true, so clients retry silently */
	{
		static const char fnonce[] =
			"65000000000000000000000000000000000000ff";
		uint8_t ha1[16], ha2[16], resp[16];

		assert_int_equal(md5_printf(ha1, "alice:" REALM ":secret-a"), 0);
		assert_int_equal(md5_printf(ha2, "REGISTER:sip:127.0.0.1"), 0);
		assert_int_equal(md5_printf(resp, "%w:%s:%w", ha1, sizeof(ha1),
					    fnonce, ha2, sizeof(ha2)), 0);
		re_snprintf(hdrs, sizeof(hdrs), TF
			"Authorization: Digest username=\"alice\", "
			"realm=\"tally\", nonce=\"%s\", "
			"uri=\"sip:127.0.0.1\", response=\"%w\"\r\n",
			fnonce, resp, sizeof(resp));
		rep = raw_send(&f, &rw, hdrs);
		assert_true(starts(rep, "SIP/2.0 401 Unauthorized\r\n"));
		assert_non_null(strstr(rep, "stale=true"));

		/* and over our nonce it is accepted */
		assert_int_equal(md5_printf(resp, "%w:%s:%w", ha1, sizeof(ha1),
					    nonce, ha2, sizeof(ha2)), 0);
		re_snprintf(hdrs, sizeof(hdrs), TF
			"Contact: <sip:raw@10.9.9.9>;expires=77\r\n"
			"Authorization: Digest username=\"alice\", "
			"realm=\"tally\", nonce=\"%s\", "
			"uri=\"sip:127.0.0.1\", response=\"%w\"\r\n",
			nonce, resp, sizeof(resp));
		rep = raw_send(&f, &rw, hdrs);
		assert_true(starts(rep, "SIP/2.0 200 OK\r\n"));
		assert_non_null(strstr(rep, "Contact: <sip:raw@10.9.9.9>;"
				       "expires=77\r\n"));
	}

	/* our nonce, a wrong digest */
	re_snprintf(hdrs, sizeof(hdrs), TF
		"Authorization: Digest username=\"alice\", realm=\"tally\", "
		"nonce=\"%s\", uri=\"sip:127.0.0.1\", "
		"response=\"00000000000000000000000000000000\"\r\n", nonce);
	assert_true(starts(raw_send(&f, &rw, hdrs),
			   "SIP/2.0 403 Wrong credentials\r\n"));
	/* qop=auth without nc/cnonce */
	re_snprintf(hdrs, sizeof(hdrs), TF
		"Authorization: Digest username=\"alice\", realm=\"tally\", "
		"nonce=\"%s\", uri=\"sip:127.0.0.1\", qop=auth, "
		"response=\"00000000000000000000000000000000\"\r\n", nonce);
	assert_true(starts(raw_send(&f, &rw, hdrs),
			   "SIP/2.0 400 Bad qop, nc or cnonce\r\n"));
	/* credentials for another realm are ignored: challenged */
	assert_true(starts(raw_send(&f, &rw, TF
		"Authorization: Digest username=\"alice\", realm=\"other\", "
		"nonce=\"x\", uri=\"sip:127.0.0.1\", "
		"response=\"00000000000000000000000000000000\"\r\n"),
		"SIP/2.0 401 Unauthorized\r\n"));

	mem_deref(rw.us);
	fixture_close(&f);
}

static void test_alloc_errors(void **state)
{
	struct sip *sip;
	struct registrar *r = NULL;
	struct sa a;
	char uri[64];
	struct pl pl;
	(void)state;

	sip = stack_alloc(&a);
	assert_int_equal(registrar_alloc(&r, sip, REALM, "alice\n", 60, 3600),
			 EINVAL);
	assert_int_equal(registrar_alloc(&r, sip, REALM, "a x\nb y\na z\n", 60,
					 3600), EINVAL);
	assert_int_equal(registrar_alloc(&r, sip, REALM, "", 600, 60), EINVAL);
	assert_int_equal(registrar_alloc(&r, sip, REALM, "", 0, 60), EINVAL);
	assert_int_equal(registrar_alloc(&r, sip, "", "", 60, 60), EINVAL);
	assert_int_equal(registrar_alloc(&r, sip, "a\"b", "", 60, 60), EINVAL);
	assert_null(r);

	/* no users at all is fine: every REGISTER gets 404 */
	assert_int_equal(registrar_alloc(&r, sip, REALM, "", 60, 3600), 0);
	pl_set_str(&pl, "alice");
	assert_false(registrar_known(r, &pl));
	assert_int_equal(registrar_lookup(r, &pl, uri, sizeof(uri)), ENOENT);
	mem_deref(r);

	/* a password may hold blanks; trailing blanks are not part of it */
	assert_int_equal(registrar_alloc(&r, sip, REALM,
					 "  alice  pass with blanks  \n\n",
					 60, 3600), 0);
	assert_true(registrar_known(r, &pl));
	mem_deref(r);
	sip_close(sip, true);
	mem_deref(sip);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_errors),
		cmocka_unit_test(test_sipreg_clients),
		cmocka_unit_test(test_sipreg_refused),
		cmocka_unit_test(test_contact_list),
		cmocka_unit_test(test_q_and_order),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_raw_bad_requests),
	};
	int n;

	if (libre_init())
		return 1;
	log_init("test", LOG_LVL_WARN);
	n = cmocka_run_group_tests(tests, NULL, NULL);
	libre_close();
	return n;
}
