/*
 * test_recapi.c: the recorder's HTTP API and page (src/recorder/recapi.c,
 * recweb.c) over a real catalog (catalog.c) and real session folders in a
 * temporary storage root, all in one process: the API server and raw-socket
 * clients share one libre main loop, which runs only until the client has
 * its complete answer (no sleeps).
 *
 * The storage holds:
 *   rec-done     complete: alice.mp4 (8 MiB of pattern bytes, more than
 *                libre's 512 KiB send queue), media.pcap, metadata-001.xml,
 *                a symlink to a file outside (link.mp4), a sub-folder
 *   rec-live     recording
 *   rec-fin      finalizing
 *   rec-outside  complete, but its folder is outside the storage root
 *
 * Covered: 401 (no token, wrong token, token as a query parameter on an API
 * path), the page with ?token= and with the header, 404/405 routing with
 * Allow, search JSON and its filters through percent-decoding, 400 for bad
 * queries (not a number, unknown media or parameter, limit out of range,
 * bad escapes, repeats), details and 404 for an unknown id, downloads
 * (bytes, Content-Type, Content-Disposition), Range (first-last, first-,
 * suffix, 416, several ranges ignored, positions of 19 to 40 digits:
 * 416 past the end, 206 to the end), traversal (400 for '/', '..',
 * encoded or not; 404 through a symlink, a folder outside the root, a
 * directory), DELETE (409 while recording or finalizing, 200 and the
 * folder gone, 404 after; 409 for the outside folder and for a folder
 * replaced by a symlink out of the storage, both left alone), the status
 * counters with the daemon's part, a client that hangs up mid-download,
 * and an API without a token.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <cmocka.h>
#include "recapi.h"

static const char TOKEN[] = "s3cret-token";
#define AUTH "Authorization: Bearer s3cret-token\r\n"

/* bigger than what loopback TCP buffers hold (4 MiB send buffer at most
 * here), so a client that stops reading stops the download midway */
enum { BIG = 8 * 1024 * 1024 + 123 };

struct fix {
	char root[64];
	char storage[96];
	struct catalog *cat;
	struct recapi *api;
	struct sa addr;
	uint8_t *big;                 /* the content of alice.mp4 */
};

/* ---- storage ---- */

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static void make_session(struct fix *f, const char *id, const char *dir,
			 enum sf_state st, const char *aor, const char *name,
			 double started, bool video)
{
	struct sessfile *sf = calloc(1, sizeof(*sf));
	struct sf_participant *p;
	struct sf_stream *s;

	assert_non_null(sf);
	sf->version = 1;
	strcpy(sf->id, id);
	snprintf(sf->call_id, sizeof(sf->call_id), "call-%s", id);
	strcpy(sf->src, "sip:src@example.com");
	sf->state = st;
	sf->started = started;
	sf->stopped = st == SF_RECORDING ? 0 : started + 42;
	s = &sf->streams[sf->nstreams++];
	strcpy(s->label, "1");
	strcpy(s->media, "audio");
	s->accepted = true;
	s = &sf->streams[sf->nstreams++];
	s->index = 1;
	strcpy(s->label, "2");
	strcpy(s->media, "video");
	s->accepted = video;
	p = &sf->parts[sf->nparts++];
	strcpy(p->id, "p1");
	strcpy(p->aor, aor);
	strcpy(p->name, name);
	strcpy(p->send[p->nsend++], "1");
	if (st == SF_COMPLETE) {
		struct sf_file *fl = &sf->files[sf->nfiles++];

		strcpy(fl->name, "alice.mp4");
		strcpy(fl->kind, "participant");
		strcpy(fl->participant, "p1");
		fl->size = BIG;
	}
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(catalog_sync(f->cat, sf, dir), 0);
	free(sf);
}

static int statush(struct re_printf *pf, void *arg)
{
	(void)arg;
	return re_hprintf(pf, "{\"sessions\":3,\"name\":\"test\"}");
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct recapi_params prm;
	char p[256];
	struct sa laddr;
	size_t i;

	assert_non_null(f);
	strcpy(f->root, "/tmp/tally-recapi-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->storage, sizeof(f->storage), "%s/storage", f->root);
	assert_int_equal(mkdir(f->storage, 0755), 0);
	snprintf(p, sizeof(p), "%s/catalog.sqlite", f->root);
	assert_int_equal(catalog_open(&f->cat, p), 0);

	snprintf(p, sizeof(p), "%s/rec-done", f->storage);
	make_session(f, "rec-done", p, SF_COMPLETE, "sip:alice@atlanta.com",
		     "Alice Liddell", 1764064800, false);
	f->big = malloc(BIG);
	assert_non_null(f->big);
	for (i = 0; i < BIG; i++)
		f->big[i] = (uint8_t)(i * 7 + i / 251);
	snprintf(p, sizeof(p), "%s/rec-done/alice.mp4", f->storage);
	write_file(p, f->big, BIG);
	snprintf(p, sizeof(p), "%s/rec-done/media.pcap", f->storage);
	write_file(p, "\xd4\xc3\xb2\xa1pcap", 8);
	snprintf(p, sizeof(p), "%s/rec-done/metadata-001.xml", f->storage);
	write_file(p, "<recording/>", 12);
	snprintf(p, sizeof(p), "%s/rec-done/link.mp4", f->storage);
	assert_int_equal(symlink("/etc/hostname", p), 0);
	snprintf(p, sizeof(p), "%s/rec-done/sub", f->storage);
	assert_int_equal(mkdir(p, 0755), 0);

	snprintf(p, sizeof(p), "%s/rec-live", f->storage);
	make_session(f, "rec-live", p, SF_RECORDING, "sip:bob@biloxi.com",
		     "Bob", 1764068400, true);
	snprintf(p, sizeof(p), "%s/rec-fin", f->storage);
	make_session(f, "rec-fin", p, SF_FINALIZING, "sip:carol@chicago.com",
		     "Carol", 1764070000, false);
	snprintf(p, sizeof(p), "%s/outside", f->root);
	make_session(f, "rec-outside", p, SF_COMPLETE, "sip:eve@evil.com",
		     "Eve", 1764000000, false);
	snprintf(p, sizeof(p), "%s/outside/alice.mp4", f->root);
	write_file(p, "secret", 6);

	assert_int_equal(sa_set_str(&laddr, "127.0.0.1", 0), 0);
	memset(&prm, 0, sizeof(prm));
	prm.laddr = &laddr;
	prm.token = TOKEN;
	prm.cat = f->cat;
	prm.storage = f->storage;
	prm.statush = statush;
	assert_int_equal(recapi_alloc(&f->api, &prm), 0);
	assert_int_equal(recapi_laddr(f->api, &f->addr), 0);
	assert_int_not_equal(sa_port(&f->addr), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char cmd[160];

	mem_deref(f->api);
	mem_deref(f->cat);
	free(f->big);
	/* the folder holds only what setup made */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* ---- a raw client on the main loop ---- */

struct cli {
	int fd;
	char *buf;
	size_t len, cap;
	size_t hlen;                  /* head length, once complete */
	size_t clen;                  /* Content-Length, SIZE_MAX if none */
	unsigned sc;
	bool head_only;               /* done once the head is in */
	bool closed, timeout;
	struct tmr tmr;
};

static void parse_head(struct cli *c)
{
	const char *end, *cl;

	if (c->hlen)
		return;
	end = memmem(c->buf, c->len, "\r\n\r\n", 4);
	if (!end)
		return;
	c->hlen = (size_t)(end - c->buf) + 4;
	c->clen = SIZE_MAX;
	cl = strcasestr(c->buf, "\r\nContent-Length:");
	if (cl && cl < end)
		c->clen = strtoul(cl + 17, NULL, 10);
	if (c->len > 12)
		sscanf(c->buf + 9, "%3u", &c->sc);
}

static bool complete(struct cli *c)
{
	parse_head(c);
	if (!c->hlen)
		return false;
	if (c->head_only)
		return true;
	return c->clen != SIZE_MAX && c->len - c->hlen >= c->clen;
}

static void cli_read(int flags, void *arg)
{
	struct cli *c = arg;
	ssize_t n;
	(void)flags;

	if (c->cap - c->len < 65536 + 1) {
		c->cap = c->cap * 2 + 65536 + 1;
		c->buf = realloc(c->buf, c->cap);
		assert_non_null(c->buf);
	}
	n = recv(c->fd, c->buf + c->len, c->cap - 1 - c->len, 0);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		c->closed = true;
		parse_head(c);
		re_cancel();
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	if (complete(c))
		re_cancel();
}

static void cli_timeout(void *arg)
{
	struct cli *c = arg;

	c->timeout = true;
	re_cancel();
}

/* RCVBUF: the socket's receive buffer, 0 for the default. */
static void cli_open(struct cli *c, const struct fix *f, int rcvbuf)
{
	struct sockaddr_in sin;

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	if (rcvbuf)
		assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF,
					    &rcvbuf, sizeof(rcvbuf)), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(sa_port(&f->addr));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)),
			 0);
	(void)fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	c->cap = 65536;
	c->buf = malloc(c->cap);
	assert_non_null(c->buf);
	c->buf[0] = '\0';
	tmr_init(&c->tmr);
}

static void cli_close(struct cli *c)
{
	if (c->fd >= 0) {
		fd_close(c->fd);
		close(c->fd);
	}
	c->fd = -1;
	tmr_cancel(&c->tmr);
	free(c->buf);
	c->buf = NULL;
}

static void cli_run(struct cli *c)
{
	assert_int_equal(fd_listen(c->fd, FD_READ, cli_read, c), 0);
	tmr_start(&c->tmr, 10000, cli_timeout, c);
	(void)re_main(NULL);
	tmr_cancel(&c->tmr);
	fd_close(c->fd);
	assert_false(c->timeout);
}

/* METHOD PATH with header lines HDRS (each ending CRLF, or NULL); returns
 * the status. */
static unsigned request(const struct fix *f, struct cli *c, const char *met,
			const char *path, const char *hdrs)
{
	char req[2048];
	int n;

	cli_open(c, f, 0);
	n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n",
		     met, path, hdrs ? hdrs : "");
	assert_int_equal(send(c->fd, req, (size_t)n, MSG_NOSIGNAL), n);
	cli_run(c);
	return c->sc;
}

static const char *body(const struct cli *c)
{
	assert_true(c->hlen > 0);
	return c->buf + c->hlen;
}

static size_t body_len(const struct cli *c)
{
	return c->len - c->hlen;
}

/* Header NAME's value in the head of C ("" if absent). */
static const char *hdr(const struct cli *c, const char *name)
{
	static char v[256];
	char pat[64];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\r\n%s:", name);
	v[0] = '\0';
	p = strcasestr(c->buf, pat);
	if (!p || p > c->buf + c->hlen)
		return v;
	p += strlen(pat);
	while (*p == ' ')
		++p;
	e = strstr(p, "\r\n");
	snprintf(v, sizeof(v), "%.*s", (int)(e - p), p);
	return v;
}

static struct odict *json_of(const struct cli *c)
{
	struct odict *od = NULL;

	assert_int_equal(json_decode_odict(&od, 16, body(c), body_len(c),
					   16), 0);
	return od;
}

static void assert_error(const struct cli *c, unsigned status)
{
	struct odict *od;
	uint64_t st = 0;

	assert_int_equal(c->sc, status);
	assert_string_equal(hdr(c, "Content-Type"), "application/json");
	od = json_of(c);
	assert_non_null(odict_string(od, "error"));
	assert_true(odict_get_number(od, &st, "status"));
	assert_int_equal(st, status);
	mem_deref(od);
}

static unsigned get(const struct fix *f, const char *path)
{
	struct cli c;
	unsigned sc = request(f, &c, "GET", path, AUTH);

	cli_close(&c);
	return sc;
}

/* The ids a search answers, "a b c". */
static unsigned search(const struct fix *f, const char *query, char *ids,
		       size_t size)
{
	char path[512];
	struct cli c;
	struct odict *od;
	const struct odict_entry *e;
	struct le *le;
	unsigned sc;

	snprintf(path, sizeof(path), "/api/v1/recordings%s", query);
	sc = request(f, &c, "GET", path, AUTH);
	ids[0] = '\0';
	if (sc != 200) {
		assert_error(&c, sc);
		cli_close(&c);
		return sc;
	}
	od = json_of(&c);
	e = odict_get_type(od, ODICT_ARRAY, "recordings");
	assert_non_null(e);
	for (le = list_head(&e->u.odict->lst); le; le = le->next) {
		const struct odict_entry *r = le->data;

		if (ids[0])
			strncat(ids, " ", size - strlen(ids) - 1);
		strncat(ids, odict_string(r->u.odict, "id"),
			size - strlen(ids) - 1);
	}
	mem_deref(od);
	cli_close(&c);
	return sc;
}

/* ---- tests ---- */

static void test_auth(void **state)
{
	struct fix *f = *state;
	struct cli c;

	assert_int_equal(request(f, &c, "GET", "/api/v1/recordings", NULL),
			 401);
	assert_error(&c, 401);
	assert_non_null(strstr(hdr(&c, "WWW-Authenticate"), "Bearer"));
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/api/v1/recordings",
				 "Authorization: Bearer s3cret-toke\r\n"),
			 401);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/api/v1/recordings",
				 "Authorization: Basic czNjcmV0\r\n"), 401);
	cli_close(&c);
	/* unknown paths and the page do not answer without it either */
	assert_int_equal(request(f, &c, "GET", "/nope", NULL), 401);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/", NULL), 401);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/?token=wrong", NULL), 401);
	cli_close(&c);
	/* the query token works on / only */
	assert_int_equal(request(f, &c, "GET",
				 "/api/v1/recordings?token=s3cret-token",
				 NULL), 401);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET",
			 "/api/v1/recordings/rec-done/files/alice.mp4"
			 "?token=s3cret-token", NULL), 401);
	cli_close(&c);
	assert_int_equal(request(f, &c, "POST", "/?token=s3cret-token",
				 NULL), 401);
	cli_close(&c);

	/* the page */
	assert_int_equal(request(f, &c, "GET", "/?token=s3cret-token", NULL),
			 200);
	assert_string_equal(hdr(&c, "Content-Type"),
			    "text/html; charset=utf-8");
	assert_non_null(strstr(hdr(&c, "Content-Security-Policy"),
			       "default-src 'none'"));
	assert_string_equal(hdr(&c, "Referrer-Policy"), "no-referrer");
	assert_non_null(strstr(body(&c), "<!DOCTYPE html>"));
	assert_non_null(strstr(body(&c), "Authorization"));
	assert_null(strstr(body(&c), "s3cret-token"));   /* not echoed */
	assert_null(strstr(body(&c), "http://"));        /* no external */
	assert_null(strstr(body(&c), "https://"));
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/?foo=1&token=s3cret%2Dtoken",
				 NULL), 200);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/", AUTH), 200);
	cli_close(&c);
}

static void test_routes(void **state)
{
	struct fix *f = *state;
	struct cli c;

	assert_int_equal(request(f, &c, "GET", "/nope", AUTH), 404);
	assert_error(&c, 404);
	cli_close(&c);
	assert_int_equal(get(f, "/api/v1/"), 404);
	assert_int_equal(get(f, "/api/v1/recordingsx"), 404);
	assert_int_equal(get(f, "/api/v1/recordings/rec-done/x"), 404);
	assert_int_equal(get(f, "/api/v1/recordings/rec-done/files/"), 404);
	assert_int_equal(get(f, "/api/v1/recordings//files/a"), 404);

	assert_int_equal(request(f, &c, "POST", "/api/v1/recordings", AUTH),
			 405);
	assert_error(&c, 405);
	assert_string_equal(hdr(&c, "Allow"), "GET");
	cli_close(&c);
	assert_int_equal(request(f, &c, "PUT", "/api/v1/recordings/rec-done",
				 AUTH), 405);
	assert_string_equal(hdr(&c, "Allow"), "GET, DELETE");
	cli_close(&c);
	assert_int_equal(request(f, &c, "DELETE", "/api/v1/status", AUTH),
			 405);
	cli_close(&c);
	assert_int_equal(request(f, &c, "DELETE",
				 "/api/v1/recordings/rec-done/files/alice.mp4",
				 AUTH), 405);
	cli_close(&c);
	/* 405 comes before 400: a bad id with a bad method */
	assert_int_equal(request(f, &c, "POST", "/api/v1/recordings/..",
				 AUTH), 405);
	cli_close(&c);
	/* parameters where none are taken */
	assert_int_equal(get(f, "/api/v1/status?x=1"), 400);
	assert_int_equal(get(f, "/api/v1/recordings/rec-done?x=1"), 400);
}

static void test_search(void **state)
{
	struct fix *f = *state;
	char ids[256];

	assert_int_equal(search(f, "", ids, sizeof(ids)), 200);
	assert_string_equal(ids, "rec-fin rec-live rec-done rec-outside");
	assert_int_equal(search(f, "/", ids, sizeof(ids)), 200);
	assert_int_equal(search(f, "?participant=alice", ids, sizeof(ids)),
			 200);
	assert_string_equal(ids, "rec-done");
	/* percent-decoding and '+' */
	assert_int_equal(search(f, "?participant=sip%3Abob%40BILOXI", ids,
				sizeof(ids)), 200);
	assert_string_equal(ids, "rec-live");
	assert_int_equal(search(f, "?participant=Alice+Liddell", ids,
				sizeof(ids)), 200);
	assert_string_equal(ids, "rec-done");
	assert_int_equal(search(f, "?call_id=call-rec-fin", ids,
				sizeof(ids)), 200);
	assert_string_equal(ids, "rec-fin");
	assert_int_equal(search(f, "?media=video", ids, sizeof(ids)), 200);
	assert_string_equal(ids, "rec-live");
	assert_int_equal(search(f, "?state=complete&limit=1", ids,
				sizeof(ids)), 200);
	assert_string_equal(ids, "rec-done");
	assert_int_equal(search(f, "?state=complete&limit=1&offset=1", ids,
				sizeof(ids)), 200);
	assert_string_equal(ids, "rec-outside");
	assert_int_equal(search(f, "?from=1764064800&to=1764068400.5", ids,
				sizeof(ids)), 200);
	assert_string_equal(ids, "rec-live rec-done");
	/* empty values are no filter */
	assert_int_equal(search(f, "?participant=&state=&media=", ids,
				sizeof(ids)), 200);
	assert_string_equal(ids, "rec-fin rec-live rec-done rec-outside");
	assert_int_equal(search(f, "?participant=nobody", ids, sizeof(ids)),
			 200);
	assert_string_equal(ids, "");
}

static void test_bad_query(void **state)
{
	static const char *const bad[] = {
		"?from=abc", "?to=12x", "?from=-5", "?from=1e999",
		"?media=audio2", "?media=AUDIO", "?state=done",
		"?limit=1001", "?limit=0", "?limit=-1", "?limit=ten",
		"?offset=-1", "?offset=99999999999", "?unknown=1",
		"?participant=%zz", "?participant=%4", "?participant=a%00b",
		"?state=complete&state=failed", "?from=20&to=10",
		"?token=s3cret-token",
	};
	struct fix *f = *state;
	char ids[64];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		if (search(f, bad[i], ids, sizeof(ids)) != 400)
			fail_msg("%s was not a 400", bad[i]);
	}
}

static void test_details(void **state)
{
	struct fix *f = *state;
	struct cli c;
	struct odict *od;
	const struct odict_entry *e;

	assert_int_equal(request(f, &c, "GET", "/api/v1/recordings/rec-done",
				 AUTH), 200);
	od = json_of(&c);
	assert_string_equal(odict_string(od, "id"), "rec-done");
	assert_string_equal(odict_string(od, "state"), "complete");
	e = odict_get_type(od, ODICT_ARRAY, "streams");
	assert_non_null(e);
	assert_int_equal(odict_count(e->u.odict, false), 2);
	e = odict_get_type(od, ODICT_ARRAY, "files");
	assert_non_null(e);
	assert_int_equal(odict_count(e->u.odict, false), 1);
	mem_deref(od);
	cli_close(&c);

	assert_int_equal(request(f, &c, "GET", "/api/v1/recordings/nope",
				 AUTH), 404);
	assert_error(&c, 404);
	cli_close(&c);
	assert_int_equal(get(f, "/api/v1/recordings/.."), 400);
	assert_int_equal(get(f, "/api/v1/recordings/a%2Fb"), 400);
	assert_int_equal(get(f, "/api/v1/recordings/a%20b"), 400);
	assert_int_equal(get(f, "/api/v1/recordings/rec%2Ddone"), 200);
}

static void test_download(void **state)
{
	struct fix *f = *state;
	struct cli c;

	assert_int_equal(request(f, &c, "GET",
				 "/api/v1/recordings/rec-done/files/alice.mp4",
				 AUTH), 200);
	assert_string_equal(hdr(&c, "Content-Type"), "video/mp4");
	assert_string_equal(hdr(&c, "Content-Disposition"),
			    "attachment; filename=\"alice.mp4\"");
	assert_string_equal(hdr(&c, "Accept-Ranges"), "bytes");
	assert_int_equal(c.clen, BIG);
	assert_int_equal(body_len(&c), BIG);
	assert_memory_equal(body(&c), f->big, BIG);
	cli_close(&c);

	assert_int_equal(request(f, &c, "GET",
				 "/api/v1/recordings/rec-done/files/media.pcap",
				 AUTH), 200);
	assert_string_equal(hdr(&c, "Content-Type"),
			    "application/vnd.tcpdump.pcap");
	assert_int_equal(body_len(&c), 8);
	assert_memory_equal(body(&c), "\xd4\xc3\xb2\xa1pcap", 8);
	cli_close(&c);

	assert_int_equal(request(f, &c, "GET", "/api/v1/recordings/rec-done/"
				 "files/metadata-001.xml", AUTH), 200);
	assert_string_equal(hdr(&c, "Content-Type"), "application/xml");
	assert_string_equal(body(&c), "<recording/>");
	cli_close(&c);

	assert_int_equal(get(f, "/api/v1/recordings/rec-live/files/x.mp4"),
			 404);
	assert_int_equal(get(f, "/api/v1/recordings/nope/files/alice.mp4"),
			 404);
}

static void test_range(void **state)
{
	struct fix *f = *state;
	const char *path = "/api/v1/recordings/rec-done/files/alice.mp4";
	char want[64];
	struct cli c;

	assert_int_equal(request(f, &c, "GET", path,
				 AUTH "Range: bytes=100-199\r\n"), 206);
	snprintf(want, sizeof(want), "bytes 100-199/%d", BIG);
	assert_string_equal(hdr(&c, "Content-Range"), want);
	assert_int_equal(body_len(&c), 100);
	assert_memory_equal(body(&c), f->big + 100, 100);
	cli_close(&c);

	/* open end, past the 512 KiB mark */
	assert_int_equal(request(f, &c, "GET", path,
				 AUTH "Range: bytes=1000000-\r\n"), 206);
	assert_int_equal(body_len(&c), BIG - 1000000);
	assert_memory_equal(body(&c), f->big + 1000000, BIG - 1000000);
	cli_close(&c);

	/* the last 10 bytes */
	assert_int_equal(request(f, &c, "GET", path,
				 AUTH "Range: bytes=-10\r\n"), 206);
	snprintf(want, sizeof(want), "bytes %d-%d/%d", BIG - 10, BIG - 1, BIG);
	assert_string_equal(hdr(&c, "Content-Range"), want);
	assert_memory_equal(body(&c), f->big + BIG - 10, 10);
	cli_close(&c);

	/* an end past the file is cut to it */
	assert_int_equal(request(f, &c, "GET", path,
				 AUTH "Range: bytes=5-99999999999\r\n"), 206);
	assert_int_equal(body_len(&c), BIG - 5);
	cli_close(&c);

	/* outside the file */
	assert_int_equal(request(f, &c, "GET", path,
				 AUTH "Range: bytes=99999999-\r\n"), 416);
	assert_error(&c, 416);
	snprintf(want, sizeof(want), "bytes */%d", BIG);
	assert_string_equal(hdr(&c, "Content-Range"), want);
	cli_close(&c);

	/* positions too long for 64 bits (issue 10): past every end */
	assert_int_equal(request(f, &c, "GET", path, AUTH
				 "Range: bytes=0-99999999999999999999\r\n"), 206);
	snprintf(want, sizeof(want), "bytes 0-%d/%d", BIG - 1, BIG);
	assert_string_equal(hdr(&c, "Content-Range"), want);
	assert_int_equal(body_len(&c), BIG);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", path, AUTH "Range: bytes=7-"
				 "1234567890123456789012345678901234567890\r\n"),
			 206);
	snprintf(want, sizeof(want), "bytes 7-%d/%d", BIG - 1, BIG);
	assert_string_equal(hdr(&c, "Content-Range"), want);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", path, AUTH
				 "Range: bytes=1000000000000000000-\r\n"), 416);
	assert_error(&c, 416);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", path, AUTH
				 "Range: bytes=99999999999999999999-\r\n"), 416);
	assert_error(&c, 416);
	snprintf(want, sizeof(want), "bytes */%d", BIG);
	assert_string_equal(hdr(&c, "Content-Range"), want);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", path, AUTH "Range: bytes="
				 "18446744073709551616-18446744073709551617\r\n"),
			 416);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", path, AUTH
				 "Range: bytes=-99999999999999999999\r\n"), 206);
	snprintf(want, sizeof(want), "bytes 0-%d/%d", BIG - 1, BIG);
	assert_string_equal(hdr(&c, "Content-Range"), want);
	cli_close(&c);

	/* several ranges, or nonsense: the whole file */
	assert_int_equal(request(f, &c, "GET",
				 "/api/v1/recordings/rec-done/files/media.pcap",
				 AUTH "Range: bytes=0-1,4-5\r\n"), 200);
	assert_int_equal(body_len(&c), 8);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET",
				 "/api/v1/recordings/rec-done/files/media.pcap",
				 AUTH "Range: pages=1-2\r\n"), 200);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET",
				 "/api/v1/recordings/rec-done/files/media.pcap",
				 AUTH "Range: bytes=5-2\r\n"), 200);
	cli_close(&c);
}

static void test_traversal(void **state)
{
	static const char *const bad[] = {
		"/api/v1/recordings/rec-done/files/../../catalog.sqlite",
		"/api/v1/recordings/rec-done/files/..%2F..%2Fcatalog.sqlite",
		"/api/v1/recordings/rec-done/files/%2e%2e",
		"/api/v1/recordings/rec-done/files/..",
		"/api/v1/recordings/rec-done/files/.",
		"/api/v1/recordings/rec-done/files/sub/x",
		"/api/v1/recordings/rec-done/files/a%2Fb",
		"/api/v1/recordings/rec-done/files/a%5Cb",
		"/api/v1/recordings/rec-done/files/a%00b",
		"/api/v1/recordings/rec-done/files/%2Fetc%2Fpasswd",
		"/api/v1/recordings/..%2Fstorage/files/x",
		"/api/v1/recordings/../files/catalog.sqlite",
	};
	struct fix *f = *state;
	struct cli c;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		unsigned sc = request(f, &c, "GET", bad[i], AUTH);

		if (sc != 400)
			fail_msg("%s: %u, not 400", bad[i], sc);
		assert_error(&c, 400);
		cli_close(&c);
	}
	/* no way out through a symlink, a folder outside, a directory */
	assert_int_equal(get(f, "/api/v1/recordings/rec-done/files/link.mp4"),
			 404);
	assert_int_equal(get(f, "/api/v1/recordings/rec-outside/files/"
			     "alice.mp4"), 404);
	assert_int_equal(get(f, "/api/v1/recordings/rec-done/files/sub"),
			 404);
}

static void test_delete(void **state)
{
	struct fix *f = *state;
	char p[256];
	struct stat st;
	struct cli c;

	assert_int_equal(request(f, &c, "DELETE",
				 "/api/v1/recordings/rec-live", AUTH), 409);
	assert_error(&c, 409);
	cli_close(&c);
	assert_int_equal(request(f, &c, "DELETE",
				 "/api/v1/recordings/rec-fin", AUTH), 409);
	cli_close(&c);
	snprintf(p, sizeof(p), "%s/rec-live", f->storage);
	assert_int_equal(stat(p, &st), 0);

	/* without the token: 401, nothing happens */
	assert_int_equal(request(f, &c, "DELETE",
				 "/api/v1/recordings/rec-done", NULL), 401);
	cli_close(&c);

	assert_int_equal(request(f, &c, "DELETE",
				 "/api/v1/recordings/rec-done", AUTH), 200);
	assert_non_null(strstr(body(&c), "\"deleted\":true"));
	cli_close(&c);
	snprintf(p, sizeof(p), "%s/rec-done", f->storage);
	assert_int_equal(stat(p, &st), -1);
	assert_int_equal(errno, ENOENT);
	/* the symlink's target is untouched */
	assert_int_equal(stat("/etc/hostname", &st), 0);
	assert_int_equal(get(f, "/api/v1/recordings/rec-done"), 404);
	assert_int_equal(request(f, &c, "DELETE",
				 "/api/v1/recordings/rec-done", AUTH), 404);
	cli_close(&c);
	assert_int_equal(request(f, &c, "DELETE", "/api/v1/recordings/..",
				 AUTH), 400);
	cli_close(&c);

	/* a row whose folder lies outside the storage root: a conflict,
	 * refused, kept */
	assert_int_equal(request(f, &c, "DELETE",
				 "/api/v1/recordings/rec-outside", AUTH), 409);
	assert_error(&c, 409);
	cli_close(&c);
	snprintf(p, sizeof(p), "%s/outside/alice.mp4", f->root);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(get(f, "/api/v1/recordings/rec-outside"), 200);

	/* a session folder replaced by a symlink out of the storage (issue
	 * 10): 409, the link, its target and the row stay */
	{
		char lnk[256], vic[256], vf[300];

		snprintf(lnk, sizeof(lnk), "%s/rec-link", f->storage);
		make_session(f, "rec-link", lnk, SF_COMPLETE,
			     "sip:mallory@example.com", "M", 1764000100, false);
		assert_int_equal(rmdir(lnk), 0);
		snprintf(vic, sizeof(vic), "%s/victim", f->root);
		assert_int_equal(mkdir(vic, 0755), 0);
		snprintf(vf, sizeof(vf), "%s/keep.txt", vic);
		write_file(vf, "keep", 4);
		assert_int_equal(symlink(vic, lnk), 0);
		assert_int_equal(request(f, &c, "DELETE",
					 "/api/v1/recordings/rec-link", AUTH),
				 409);
		assert_error(&c, 409);
		assert_non_null(strstr(body(&c), "symbolic link"));
		cli_close(&c);
		assert_int_equal(stat(vf, &st), 0);
		assert_int_equal(lstat(lnk, &st), 0);
		assert_true(S_ISLNK(st.st_mode));
		assert_int_equal(get(f, "/api/v1/recordings/rec-link"), 200);
		/* even one pointing inside the storage: another recording's
		 * folder is not this one's to remove */
		assert_int_equal(unlink(lnk), 0);
		snprintf(vic, sizeof(vic), "%s/rec-live", f->storage);
		assert_int_equal(symlink(vic, lnk), 0);
		assert_int_equal(request(f, &c, "DELETE",
					 "/api/v1/recordings/rec-link", AUTH),
				 409);
		cli_close(&c);
		assert_int_equal(stat(vic, &st), 0);
	}

	/* a row whose folder is gone already: the row goes */
	snprintf(p, sizeof(p), "%s/rec-fin", f->storage);
	assert_int_equal(rmdir(p), 0);
	{
		struct sessfile *sf = calloc(1, sizeof(*sf));

		assert_non_null(sf);
		strcpy(sf->id, "rec-fin");
		sf->state = SF_FAILED;
		assert_int_equal(catalog_sync(f->cat, sf, p), 0);
		free(sf);
	}
	assert_int_equal(request(f, &c, "DELETE",
				 "/api/v1/recordings/rec-fin", AUTH), 200);
	cli_close(&c);
}

static double status_num(const struct fix *f, const char *obj,
			 const char *key)
{
	struct cli c;
	struct odict *od;
	const struct odict_entry *e, *v;
	double n = -1;

	assert_int_equal(request(f, &c, "GET", "/api/v1/status", AUTH), 200);
	od = json_of(&c);
	e = odict_get_type(od, ODICT_OBJECT, obj);
	assert_non_null(e);
	v = odict_lookup(e->u.odict, key);
	assert_non_null(v);
	if (v->type == ODICT_INT)
		n = (double)v->u.integer;
	mem_deref(od);
	cli_close(&c);
	return n;
}

static void test_status(void **state)
{
	struct fix *f = *state;
	struct cli c;
	struct odict *od;

	assert_int_equal(get(f, "/nope"), 404);
	assert_int_equal(request(f, &c, "GET", "/api/v1/status", NULL), 401);
	cli_close(&c);
	assert_int_equal(request(f, &c, "GET", "/api/v1/status", AUTH), 200);
	od = json_of(&c);
	assert_string_equal(odict_string(od, "status"), "ok");
	mem_deref(od);
	cli_close(&c);
	assert_true(status_num(f, "api", "requests") >= 4);
	assert_true(status_num(f, "api", "errors") >= 2);
	assert_true(status_num(f, "api", "unauthorized") >= 1);
	assert_true(status_num(f, "daemon", "sessions") == 3);
}

/* A client that reads the head of a big download and hangs up: the
 * download is dropped and counted, and the server keeps serving. */
static void test_hangup(void **state)
{
	struct fix *f = *state;
	const char *req = "GET /api/v1/recordings/rec-done/files/alice.mp4 "
			  "HTTP/1.1\r\nHost: x\r\n" AUTH "\r\n";
	struct cli c;
	int i;

	cli_open(&c, f, 4096);
	c.head_only = true;
	assert_int_equal(send(c.fd, req, strlen(req), MSG_NOSIGNAL),
			 (ssize_t)strlen(req));
	cli_run(&c);
	assert_int_equal(c.sc, 200);
	assert_true(status_num(f, "api", "downloads_active") == 1);
	cli_close(&c);             /* unread data: the kernel sends RST */

	for (i = 0; i < 50; i++) {
		if (status_num(f, "api", "downloads_active") == 0)
			break;
	}
	assert_true(status_num(f, "api", "downloads_active") == 0);
	assert_true(status_num(f, "api", "downloads_aborted") == 1);
	assert_int_equal(get(f, "/api/v1/recordings/rec-done/files/"
			     "media.pcap"), 200);
}

static void test_no_token(void **state)
{
	struct fix *f = *state;
	struct recapi_params prm;
	struct recapi *api = NULL;
	struct sa laddr, keep = f->addr;

	assert_int_equal(sa_set_str(&laddr, "127.0.0.1", 0), 0);
	memset(&prm, 0, sizeof(prm));
	prm.laddr = &laddr;
	prm.token = "";
	prm.cat = f->cat;
	prm.storage = f->storage;
	assert_int_equal(recapi_alloc(&api, &prm), 0);
	assert_int_equal(recapi_laddr(api, &f->addr), 0);
	{
		struct cli c;

		assert_int_equal(request(f, &c, "GET", "/api/v1/status",
					 NULL), 200);
		assert_non_null(strstr(body(&c), "\"daemon\":null"));
		cli_close(&c);
	}
	mem_deref(api);
	f->addr = keep;

	/* argument checks */
	prm.storage = "/nonexistent/storage";
	assert_int_equal(recapi_alloc(&api, &prm), ENOENT);
	prm.storage = f->storage;
	prm.cat = NULL;
	assert_int_equal(recapi_alloc(&api, &prm), EINVAL);
}

static int group_setup(void **state)
{
	(void)state;
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
		cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_search, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_query, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_details, setup, teardown),
		cmocka_unit_test_setup_teardown(test_download, setup, teardown),
		cmocka_unit_test_setup_teardown(test_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_traversal, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hangup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_token, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
