/*
 * test_api.c: tally-sip's client API (src/sip/api.c, events.c, calljson.c)
 * in one process: the API server and raw-socket clients share one libre
 * main loop, which runs only until the client has its complete answer (no
 * sleeps). The calls come from a test-only B2BUA: the four registry
 * functions of sipd.h over a plain list, defined below, so this test does
 * not depend on the real B2BUA being linkable.
 *
 * Covered: token check (missing, wrong, scheme case), routing (404, 405,
 * 400 for /events without upgrade), list/get/health JSON (decoded back with
 * libre's JSON parser), JSON escaping of hostile strings, garbage bytes,
 * the WebSocket upgrade (needs the token too) and event frames, and the
 * back-pressure rule: a client that never reads is dropped, the server
 * stays up and keeps serving.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <cmocka.h>
#include "log.h"
#include "api.h"
#include "rec.h"

/* ---- test-only B2BUA ---- */

struct b2bua {
	struct list calls;
};

const struct list *b2bua_calls(const struct b2bua *b)
{
	return b ? &b->calls : NULL;
}

struct bcall *b2bua_call_find(const struct b2bua *b, const char *id)
{
	struct le *le;

	for (le = list_head(&b->calls); le; le = le->next) {
		struct bcall *c = le->data;
		if (!strcmp(c->id, id))
			return c;
	}
	return NULL;
}

const char *bcall_state_name(enum bcall_state st)
{
	return st == BCALL_ANSWERED ? "answered" :
	       st == BCALL_ENDED ? "ended" : "init";
}

uint64_t sipd_now_ms(void)
{
	return 1700000000123ULL;
}

/* ---- test-only recordings (rec.c is not linked: api->recs stays NULL,
 * so POST /recordings answers 503 and the list is empty) ---- */

int rec_json(struct re_printf *pf, const struct recording *rec)
{
	(void)rec;
	return re_hprintf(pf, "{}");
}

bool rec_uri_valid(const char *uri)
{
	return uri && !strncmp(uri, "sip:", 4);
}

const struct list *recs_active(const struct recs *rs)
{
	(void)rs;
	return NULL;
}

struct recording *recs_find(const struct recs *rs, const char *id)
{
	(void)rs; (void)id;
	return NULL;
}

int rec_start(struct recs *rs, struct bcall *call, const struct rec_req *req,
	      struct recording **recp)
{
	(void)rs; (void)call; (void)req; (void)recp;
	return ENOSYS;
}

void rec_stop(struct recording *rec, const char *reason)
{
	(void)rec; (void)reason;
}

const char *rec_party_name(enum rec_party party)
{
	return party == REC_CALLER ? "caller" : party == REC_CALLEE ?
		"callee" : "both";
}

int rec_pause(struct recording *rec)
{
	(void)rec;
	return ENOSYS;
}

int rec_resume(struct recording *rec)
{
	(void)rec;
	return ENOSYS;
}

int rec_media(struct recording *rec, bool video)
{
	(void)rec; (void)video;
	return ENOSYS;
}

/* ---- fixture ---- */

static const char TOKEN[] = "t0ken-xyz";

struct fix {
	struct b2bua b;
	struct bcall c1, c2;
	struct api *api;
	struct sa addr;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct bmedia *m;

	assert_non_null(f);
	list_init(&f->b.calls);

	strcpy(f->c1.id, "c1-abc");
	strcpy(f->c1.callid, "1-2345@127.0.0.1");
	f->c1.state = BCALL_ANSWERED;
	f->c1.created = 1700000000000ULL;
	f->c1.answered = 1700000001500ULL;
	strcpy(f->c1.caller.uri, "sip:alice@127.0.0.1");
	strcpy(f->c1.caller.user, "alice");
	strcpy(f->c1.caller.tag, "tagA");
	m = &f->c1.caller.media[f->c1.caller.nmedia++];
	strcpy(m->type, "audio");
	strcpy(m->dir, "sendrecv");
	m->active = true;
	m = &f->c1.caller.media[f->c1.caller.nmedia++];
	strcpy(m->type, "video");
	strcpy(m->dir, "inactive");
	m->active = false;
	strcpy(f->c1.callee.uri, "sip:1234@127.0.0.1");
	strcpy(f->c1.callee.user, "1234");
	strcpy(f->c1.mediasrv, "127.0.0.1:2223");
	f->c1.final_status = 200;
	list_append(&f->b.calls, &f->c1.le, &f->c1);

	/* hostile strings: quote, backslash, control, invalid UTF-8, and
	 * a field that fills its array without a terminator */
	strcpy(f->c2.id, "c2-def");
	strcpy(f->c2.callid, "x\"y\\z");
	f->c2.created = 1700000000000ULL;
	strcpy(f->c2.caller.name, "A\x01" "B\xff" "C\xc3\xa9");
	memset(f->c2.caller.user, 'u', sizeof(f->c2.caller.user));
	f->c2.caller.nmedia = 99;       /* clamped to the array */
	list_append(&f->b.calls, &f->c2.le, &f->c2);

	assert_int_equal(api_alloc(&f->api, "127.0.0.1:0", TOKEN, &f->b), 0);
	assert_int_equal(tcp_sock_local_get(http_sock_tcp(f->api->hs),
					    &f->addr), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	mem_deref(f->api);
	free(f);
	return 0;
}

/* ---- a raw client on the main loop ---- */

struct cli {
	int fd;
	char buf[65536];
	size_t len;
	bool want_ws;                 /* done after the 101 head */
	bool closed;
	bool timeout;
	struct tmr tmr;
};

static bool http_complete(const struct cli *c)
{
	const char *end, *cl;
	size_t hl;

	end = memmem(c->buf, c->len, "\r\n\r\n", 4);
	if (!end)
		return false;
	hl = (size_t)(end - c->buf) + 4;
	if (c->want_ws && !strncmp(c->buf, "HTTP/1.1 101", 12))
		return true;
	cl = strcasestr(c->buf, "Content-Length:");
	if (!cl || cl > end)
		return true;
	return c->len >= hl + strtoul(cl + 15, NULL, 10);
}

static void cli_read(int flags, void *arg)
{
	struct cli *c = arg;
	ssize_t n;
	(void)flags;

	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		c->closed = true;
		re_cancel();
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	if (http_complete(c))
		re_cancel();
}

static void cli_timeout(void *arg)
{
	struct cli *c = arg;

	c->timeout = true;
	re_cancel();
}

static void cli_open(struct cli *c, const struct fix *f)
{
	struct sockaddr_in sin;

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(sa_port(&f->addr));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* the kernel completes the handshake from the listen backlog */
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)),
			 0);
	(void)fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	tmr_init(&c->tmr);
}

static void cli_close(struct cli *c)
{
	fd_close(c->fd);
	close(c->fd);
	tmr_cancel(&c->tmr);
}

/* Send REQ and run the loop until the answer is complete or the server
 * closes. */
static void cli_exchange(struct cli *c, const char *req, size_t n)
{
	assert_int_equal(send(c->fd, req, n, MSG_NOSIGNAL), (ssize_t)n);
	assert_int_equal(fd_listen(c->fd, FD_READ, cli_read, c), 0);
	tmr_start(&c->tmr, 5000, cli_timeout, c);
	(void)re_main(NULL);
	tmr_cancel(&c->tmr);
	fd_close(c->fd);
	assert_false(c->timeout);
}

/* One GET (or METHOD) with optional auth; returns the status. */
static unsigned request(const struct fix *f, struct cli *c, const char *met,
			const char *path, const char *auth)
{
	char req[1024];
	int n;
	unsigned sc = 0;

	cli_open(c, f);
	n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: x\r\n"
		     "%s%s%s\r\n", met, path,
		     auth ? "Authorization: " : "", auth ? auth : "",
		     auth ? "\r\n" : "");
	cli_exchange(c, req, (size_t)n);
	if (c->len > 12)
		sscanf(c->buf + 9, "%3u", &sc);
	return sc;
}

static const char *body_of(const struct cli *c)
{
	const char *end = strstr(c->buf, "\r\n\r\n");

	assert_non_null(end);
	return end + 4;
}

static struct odict *json_of(const struct cli *c)
{
	struct odict *od = NULL;
	const char *b = body_of(c);

	assert_int_equal(json_decode_odict(&od, 16, b, strlen(b), 16), 0);
	return od;
}

static void assert_error(const struct cli *c, unsigned status)
{
	struct odict *od = json_of(c);
	uint64_t st = 0;

	assert_non_null(strcasestr(c->buf, "Content-Type: application/json"));
	assert_non_null(odict_string(od, "error"));
	assert_true(odict_get_number(od, &st, "status"));
	assert_int_equal(st, status);
	mem_deref(od);
}

#define AUTH "Bearer t0ken-xyz"

/* ---- tests ---- */

static void test_auth(void **state)
{
	struct fix *f = *state;
	struct cli c;

	assert_int_equal(request(f, &c, "GET", "/api/v1/calls", NULL), 401);
	assert_error(&c, 401);
	assert_non_null(strstr(c.buf, "WWW-Authenticate: Bearer"));
	cli_close(&c);

	assert_int_equal(request(f, &c, "GET", "/api/v1/calls",
				 "Bearer t0ken-xy"), 401);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/api/v1/calls",
				 "Bearer t0ken-xyzz"), 401);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/api/v1/calls",
				 "Basic dDBrZW4teHl6"), 401);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/api/v1/calls", "Bearer"),
			 401);
	cli_close(&c);
	/* unknown paths do not leak without the token either */
	assert_int_equal(request(f, &c, "GET", "/secret", NULL), 401);
	cli_close(&c);
	/* the scheme is case-insensitive */
	assert_int_equal(request(f, &c, "GET", "/api/v1/health",
				 "bearer  t0ken-xyz "), 200);
	cli_close(&c);
	assert_true(f->api->st.unauthorized >= 6);
}

static void test_routes(void **state)
{
	struct fix *f = *state;
	struct cli c;

	assert_int_equal(request(f, &c, "GET", "/nope", AUTH), 404);
	assert_error(&c, 404);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/api/v1/", AUTH), 404);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/api/v1/callsx", AUTH), 404);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/api/v1/calls/nope", AUTH),
			 404);
	assert_error(&c, 404);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/api/v1/calls/c1-abc/x",
				 AUTH), 404);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/api/v1/calls/..%2f", AUTH),
			 404);
	cli_close(&c);
	assert_int_equal(request(f, &c, "POST", "/api/v1/calls", AUTH), 405);
	assert_error(&c, 405);
	assert_non_null(strstr(c.buf, "Allow: GET"));
	cli_close(&c);
	assert_int_equal(request(f, &c, "DELETE", "/api/v1/calls/c1-abc",
				 AUTH), 405);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/api/v1/events", AUTH), 400);
	assert_error(&c, 400);
	cli_close(&c);
}

static void test_calls(void **state)
{
	struct fix *f = *state;
	const struct odict_entry *e;
	const struct odict *call, *caller, *media;
	struct odict *od;
	struct cli c;
	uint64_t n = 0;

	assert_int_equal(request(f, &c, "GET", "/api/v1/calls", AUTH), 200);
	od = json_of(&c);
	e = odict_get_type(od, ODICT_ARRAY, "calls");
	assert_non_null(e);
	assert_int_equal(odict_count(e->u.odict, false), 2);
	mem_deref(od);
	cli_close(&c);

	assert_int_equal(request(f, &c, "GET", "/api/v1/calls/c1-abc", AUTH),
			 200);
	od = json_of(&c);
	call = od;
	assert_string_equal(odict_string(call, "id"), "c1-abc");
	assert_string_equal(odict_string(call, "state"), "answered");
	assert_string_equal(odict_string(call, "created"),
			    "2023-11-14T22:13:20.000Z");
	assert_string_equal(odict_string(call, "answered"),
			    "2023-11-14T22:13:21.500Z");
	assert_int_equal(odict_get_type(call, ODICT_NULL, "ended") != NULL, 1);
	assert_int_equal(odict_get_type(call, ODICT_NULL, "cause") != NULL, 1);
	assert_true(odict_get_number(call, &n, "final_status"));
	assert_int_equal(n, 200);
	assert_string_equal(odict_string(call, "media_server"),
			    "127.0.0.1:2223");
	caller = odict_get_type(call, ODICT_OBJECT, "caller")->u.odict;
	assert_string_equal(odict_string(caller, "user"), "alice");
	assert_string_equal(odict_string(caller, "tag"), "tagA");
	media = odict_get_type(caller, ODICT_ARRAY, "media")->u.odict;
	assert_int_equal(odict_count(media, false), 2);
	assert_non_null(odict_get_type(call, ODICT_OBJECT, "callee"));
	mem_deref(od);
	cli_close(&c);

	assert_int_equal(request(f, &c, "GET", "/api/v1/health", AUTH), 200);
	od = json_of(&c);
	assert_string_equal(odict_string(od, "status"), "ok");
	assert_true(odict_get_number(od, &n, "calls"));
	assert_int_equal(n, 2);
	mem_deref(od);
	cli_close(&c);
}

static void test_escaping(void **state)
{
	struct fix *f = *state;
	const struct odict *caller;
	struct odict *od;
	struct cli c;
	char user[80];

	assert_int_equal(request(f, &c, "GET", "/api/v1/calls/c2-def", AUTH),
			 200);
	od = json_of(&c);
	assert_string_equal(odict_string(od, "call_id"), "x\"y\\z");
	assert_string_equal(odict_string(od, "state"), "init");
	assert_int_equal(odict_get_type(od, ODICT_NULL, "final_status") !=
			 NULL, 1);
	caller = odict_get_type(od, ODICT_OBJECT, "caller")->u.odict;
	assert_string_equal(odict_string(caller, "name"),
			    "A\x01" "B\xef\xbf\xbd" "C\xc3\xa9");
	memset(user, 'u', sizeof(f->c2.caller.user));
	user[sizeof(f->c2.caller.user)] = '\0';
	assert_string_equal(odict_string(caller, "user"), user);
	assert_int_equal(odict_count(odict_get_type(caller, ODICT_ARRAY,
				      "media")->u.odict, false), 8);
	mem_deref(od);
	cli_close(&c);
}

static void test_garbage(void **state)
{
	struct fix *f = *state;
	static const char junk[] = "\x16\x03\x01\x02\x00 NOT HTTP\r\n\r\n";
	struct cli c;

	cli_open(&c, f);
	cli_exchange(&c, junk, sizeof(junk) - 1);
	assert_true(c.closed || !strncmp(c.buf, "HTTP/1.1 400", 12));
	cli_close(&c);

	/* still serving */
	assert_int_equal(request(f, &c, "GET", "/api/v1/health", AUTH), 200);
	cli_close(&c);
}

static const char WS_REQ[] =
	"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n"
	"Upgrade: websocket\r\nConnection: Upgrade\r\n"
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	"Sec-WebSocket-Version: 13\r\n"
	"%s\r\n";

static void ws_open(struct fix *f, struct cli *c, const char *auth)
{
	char req[512];
	int n;

	cli_open(c, f);
	c->want_ws = true;
	n = snprintf(req, sizeof(req), WS_REQ, auth);
	cli_exchange(c, req, (size_t)n);
}

/* Read one unmasked server text frame (blocking a little). */
static size_t ws_frame(struct cli *c, char *out, size_t size)
{
	uint8_t h[10];
	size_t len, hl = 2, got = 0;
	struct pollfd p = {c->fd, POLLIN, 0};

	while (got < hl) {
		ssize_t n;

		assert_true(poll(&p, 1, 2000) == 1);
		n = recv(c->fd, h + got, hl - got, 0);
		assert_true(n > 0);
		got += (size_t)n;
		if (got == 2 && (h[1] & 0x7f) == 126)
			hl = 4;
	}
	assert_int_equal(h[0], 0x81);           /* FIN, text */
	len = h[1] & 0x7f;
	if (len == 126)
		len = (size_t)h[2] << 8 | h[3];
	assert_true(len < size);
	got = 0;
	while (got < len) {
		ssize_t n;

		assert_true(poll(&p, 1, 2000) == 1);
		n = recv(c->fd, out + got, len - got, 0);
		assert_true(n > 0);
		got += (size_t)n;
	}
	out[len] = '\0';
	return len;
}

struct waiter {
	const struct api *api;
	struct tmr tmr;
	unsigned turns;
};

static void wait_tick(void *arg)
{
	struct waiter *w = arg;

	if (!api_events_count(w->api) || ++w->turns > 2000) {
		re_cancel();
		return;
	}
	tmr_start(&w->tmr, 1, wait_tick, w);
}

/* Run the loop until the server has no event client left (max ~2 s). */
static void wait_no_clients(const struct api *api)
{
	struct waiter w;

	memset(&w, 0, sizeof(w));
	w.api = api;
	tmr_init(&w.tmr);
	tmr_start(&w.tmr, 0, wait_tick, &w);
	(void)re_main(NULL);
	tmr_cancel(&w.tmr);
}

static void test_events(void **state)
{
	struct fix *f = *state;
	struct odict *od;
	struct cli c, bad;
	char text[8192];
	const struct odict *call;

	/* the upgrade needs the token too */
	ws_open(f, &bad, "Authorization: Bearer wrong\r\n");
	assert_int_equal(strncmp(bad.buf, "HTTP/1.1 401", 12), 0);
	cli_close(&bad);

	ws_open(f, &c, "Authorization: " AUTH "\r\n");
	assert_int_equal(strncmp(c.buf, "HTTP/1.1 101", 12), 0);
	assert_int_equal(api_events_count(f->api), 1);

	api_call_event("call.created", &f->c1, NULL);    /* the active api */
	ws_frame(&c, text, sizeof(text));
	assert_int_equal(json_decode_odict(&od, 16, text, strlen(text), 16),
			 0);
	assert_string_equal(odict_string(od, "event"), "call.created");
	assert_string_equal(odict_string(od, "time"),
			    "2023-11-14T22:13:20.123Z");
	call = odict_get_type(od, ODICT_OBJECT, "call")->u.odict;
	assert_string_equal(odict_string(call, "id"), "c1-abc");
	mem_deref(od);

	strcpy(f->c1.cause, "caller hangup");
	api_call_event("call.ended", &f->c1, f->api);
	ws_frame(&c, text, sizeof(text));
	assert_non_null(strstr(text, "\"event\":\"call.ended\""));
	assert_non_null(strstr(text, "\"cause\":\"caller hangup\""));
	f->c1.cause[0] = '\0';

	/* the client leaves: the server notices and forgets it */
	cli_close(&c);
	wait_no_clients(f->api);
	assert_int_equal(api_events_count(f->api), 0);
}

static void test_slow_client(void **state)
{
	struct fix *f = *state;
	struct cli c, fast;
	unsigned i;
	uint64_t dropped = f->api->st.ws_dropped;

	ws_open(f, &c, "Authorization: " AUTH "\r\n");
	assert_int_equal(strncmp(c.buf, "HTTP/1.1 101", 12), 0);
	/* a small receive buffer: the backlog builds up at once */
	{
		int sz = 4096;
		(void)setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	/* c never reads again; publish until the server gives up on it */
	for (i = 0; i < 200000 && api_events_count(f->api); i++)
		api_call_event("call.updated", &f->c1, f->api);
	assert_int_equal(api_events_count(f->api), 0);
	assert_int_equal(f->api->st.ws_dropped, dropped + 1);

	/* the server is fine and takes new clients */
	ws_open(f, &fast, "Authorization: " AUTH "\r\n");
	assert_int_equal(strncmp(fast.buf, "HTTP/1.1 101", 12), 0);
	assert_int_equal(api_events_count(f->api), 1);
	cli_close(&fast);
	cli_close(&c);
	wait_no_clients(f->api);
	assert_int_equal(api_events_count(f->api), 0);
}

static void test_alloc_args(void **state)
{
	struct api *a = NULL;
	char big[API_TOKEN_MAX + 8];
	(void)state;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(api_alloc(&a, "127.0.0.1:0", "", NULL), EINVAL);
	assert_int_equal(api_alloc(&a, "127.0.0.1:0", big, NULL), EINVAL);
	assert_int_equal(api_alloc(&a, "nonsense", "t", NULL), EINVAL);
	assert_int_equal(api_alloc(&a, NULL, "t", NULL), EINVAL);
	assert_null(a);
	/* no api at all: events go nowhere, quietly */
	api_call_event("call.created", NULL, NULL);
}

static int group_setup(void **state)
{
	(void)state;
	log_init("test", LOG_LVL_WARN);
	return libre_init();
}

static int group_teardown(void **state)
{
	(void)state;
	libre_close();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_args),
		cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_escaping, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_client, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
