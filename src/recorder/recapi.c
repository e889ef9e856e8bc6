/*
 * recapi.c: tally-recorder's HTTP/JSON API and web page (libre's HTTP/1.1
 * server), with the conventions of tally-sip's api.c:
 *
 *   GET    /api/v1/recordings?participant=&call_id=&from=&to=&media=
 *                             &state=&limit=&offset=     search
 *   GET    /api/v1/recordings/ID                         details
 *   GET    /api/v1/recordings/ID/files/NAME              one file (Range)
 *   DELETE /api/v1/recordings/ID                         row and folder
 *   GET    /api/v1/status                                counters
 *   GET    /?token=T                                     the web page
 *
 * Authorisation: "Authorization: Bearer <token>" on every request. The one
 * exception is the page: a browser cannot add a header to a typed URL, so
 * GET / also accepts ?token=<token> (and only GET / does). The page's
 * script reads the token from its own address and sends it as a Bearer
 * header on every API call; it never travels in an API URL, so it does not
 * end up in access logs of the API paths. An empty configured token turns
 * the check off (tests, a loopback-only setup).
 *
 * Every error is JSON, {"error":"<what>","status":<code>}, decided in this
 * order, so a client without the token learns nothing about the paths:
 *   token missing or wrong                  -> 401 (+ WWW-Authenticate)
 *   path is none of the above               -> 404
 *   method not allowed on the path          -> 405 (+ Allow)
 *   bad query, id or file name              -> 400
 *   no such recording / file                -> 404
 *   DELETE while recording or finalizing    -> 409
 *   DELETE of a folder that is a symlink,   -> 409 (row and files kept)
 *   not a folder, or outside the storage
 *   Range outside the file                  -> 416
 *
 * Query strings are URL-decoded ('+' is a space, %XX a byte; %00 and a bad
 * escape are 400). Search parameters: participant (substring of an AOR or
 * display name), call_id (exact), from/to (unix seconds, decimals allowed),
 * media (audio|video: recorded it), state (recording|finalizing|complete|
 * failed), limit (1..1000, default 100), offset. Unknown or repeated
 * parameters are 400, so a typo does not silently widen a search.
 *
 * Downloads: the id and the file name are checked (no '/', no "..", no
 * control bytes: 400), the session folder must resolve (realpath) inside
 * the storage root, and the file is opened with openat(O_NOFOLLOW) from
 * that folder, so neither a crafted name nor a symlink in the folder leads
 * outside it. The reply is streamed (recdl.c): after the head, the TCP
 * connection is taken over from libre's HTTP server (as libre's own
 * WebSocket server does) and 64 KiB chunks go out each time the socket
 * drains, so a 2 GB recording costs 64 KiB of memory. One "bytes=" range
 * (first-last, first-, -suffix) is honoured with 206; several ranges, or a
 * malformed header, get the whole file (RFC 9110 allows ignoring Range).
 * The connection closes after a download ("Connection: close").
 *
 * Worked example:
 *   GET /api/v1/recordings/20261125T223000Z-3fa2b9c1/files/alice.mp4 HTTP/1.1
 *   Authorization: Bearer s3cret
 *   Range: bytes=0-1023
 *
 *   HTTP/1.1 206 Partial Content
 *   Content-Type: video/mp4
 *   Content-Disposition: attachment; filename="alice.mp4"
 *   Accept-Ranges: bytes
 *   Content-Range: bytes 0-1023/123456
 *   Content-Length: 1024
 *   Connection: close
 *
 *   <1024 bytes>
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>
#include "log.h"
#include "recapi.h"

enum {
	RECAPI_TOKEN_MAX = 128,
	TXQ_DEFAULT = 524288,        /* libre's send queue limit */
	OFFSET_MAX  = 1000000000,
};

struct recapi_stats {
	uint64_t requests;           /* HTTP requests received */
	uint64_t errors;             /* answered 4xx/5xx */
	uint64_t unauthorized;       /* ... of which 401 */
	uint64_t searches;
	uint64_t downloads;          /* file downloads started */
	struct recdl_counters dl;    /* their bytes and aborts (recdl.c) */
	uint64_t deleted;            /* recordings deleted */
};

struct recapi {
	struct http_sock *hs;
	struct catalog *cat;         /* borrowed: owned by the daemon */
	char token[RECAPI_TOKEN_MAX];
	char root[PATH_MAX];         /* realpath of the storage root */
	recapi_status_h *statush;
	void *arg;
	struct list dls;             /* struct recdl: downloads in flight */
	struct recapi_stats st;
};

/* ---- replies ---- */

/* Send BODY (LEN bytes, JSON) with status SCODE and extra header lines
 * XHDRS (each ending CRLF, or NULL). Returns SCODE, for the log line. */
static uint16_t reply_body(struct recapi *api, struct http_conn *conn,
			   uint16_t scode, const char *reason,
			   const char *ctype, const char *xhdrs,
			   const uint8_t *body, size_t len)
{
	struct tcp_conn *tc = http_conn_tcp(conn);
	int err;

	if (scode >= 400)
		++api->st.errors;
	/* libre queues what the socket does not take at once, but refuses
	 * more than 512 KiB: a big search result needs a bigger queue */
	if (tc && len + 4096 > TXQ_DEFAULT)
		tcp_conn_txqsz_set(tc, len + 65536);
	err = http_reply(conn, scode, reason,
			 "Content-Type: %s\r\n"
			 "Cache-Control: no-store\r\n"
			 "X-Content-Type-Options: nosniff\r\n"
			 "%s"
			 "Content-Length: %zu\r\n"
			 "\r\n"
			 "%b",
			 ctype, xhdrs ? xhdrs : "", len, body, len);
	if (err) {
		log_re(LOG_LVL_WARN, "recapi: reply %u to %J failed: %m", scode,
		     http_conn_peer(conn), err);
		http_conn_close(conn);
	}
	return scode;
}

static uint16_t reply_mb(struct recapi *api, struct http_conn *conn,
			 uint16_t scode, const char *reason,
			 const char *xhdrs, struct mbuf *mb)
{
	return reply_body(api, conn, scode, reason, "application/json", xhdrs,
			  mb->buf, mb->end);
}

static uint16_t reply_error(struct recapi *api, struct http_conn *conn,
			    uint16_t scode, const char *reason,
			    const char *xhdrs, const char *what)
{
	char body[512];
	int n;

	n = re_snprintf(body, sizeof(body), "{\"error\":%H,\"status\":%u}\n",
			catalog_jstr, what, (unsigned)scode);
	if (n < 0)
		n = 0;
	return reply_body(api, conn, scode, reason, "application/json", xhdrs,
			  (const uint8_t *)body, (size_t)n);
}

static uint16_t reply_oom(struct recapi *api, struct http_conn *conn)
{
	return reply_error(api, conn, 500, "Internal Server Error", NULL,
			   "out of memory");
}

/* ---- authorisation ---- */

/* Compare V with our token in time independent of where they differ. */
static bool token_equal(const struct recapi *api, const struct pl *v)
{
	size_t tlen = strlen(api->token), i;
	unsigned char diff = 0;

	if (v->l != tlen)
		return false;
	for (i = 0; i < tlen; i++)
		diff |= (unsigned char)(v->p[i] ^ api->token[i]);
	return diff == 0;
}

static bool bearer_ok(const struct recapi *api, const struct http_msg *msg)
{
	const struct http_hdr *hdr = http_msg_hdr(msg, HTTP_HDR_AUTHORIZATION);
	static const char scheme[] = "Bearer";
	const size_t slen = sizeof(scheme) - 1;
	struct pl v;

	if (!hdr)
		return false;
	v = hdr->val;
	if (v.l <= slen || strncasecmp(v.p, scheme, slen) ||
	    (v.p[slen] != ' ' && v.p[slen] != '\t'))
		return false;
	pl_advance(&v, slen);
	while (v.l && (v.p[0] == ' ' || v.p[0] == '\t'))
		pl_advance(&v, 1);
	while (v.l && (v.p[v.l - 1] == ' ' || v.p[v.l - 1] == '\t'))
		--v.l;
	return v.l && token_equal(api, &v);
}

/* ---- URL decoding and the query string ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode IN into OUT (SIZE bytes, NUL-terminated); PLUS: '+' is a space
 * (query strings, not paths). 0, EINVAL (bad %XX, or a NUL byte) or
 * ENAMETOOLONG. */
static int url_decode(const struct pl *in, char *out, size_t size, bool plus)
{
	size_t i, o = 0;

	for (i = 0; i < in->l; i++) {
		char c = in->p[i];

		if (c == '%') {
			int h, l;

			if (i + 2 >= in->l)
				return EINVAL;
			h = hexval(in->p[i + 1]);
			l = hexval(in->p[i + 2]);
			if (h < 0 || l < 0)
				return EINVAL;
			c = (char)(h << 4 | l);
			i += 2;
		}
		else if (c == '+' && plus) {
			c = ' ';
		}
		if (c == '\0')
			return EINVAL;
		if (o + 1 >= size)
			return ENAMETOOLONG;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

typedef int (param_h)(const char *name, const struct pl *val, void *arg);

/* Call PH for each name=value of the query PRM ('?' first or not); stops
 * at the first error PH returns. Names are decoded before PH sees them;
 * a name that does not decode or is too long is passed as "?". */
static int query_apply(const struct pl *prm, param_h *ph, void *arg)
{
	struct pl rest = *prm;
	int err = 0;

	if (rest.l && rest.p[0] == '?')
		pl_advance(&rest, 1);
	while (rest.l && !err) {
		const char *amp = pl_strchr(&rest, '&');
		struct pl item, name, val = PL_INIT;
		const char *eq;
		char nbuf[32];

		item.p = rest.p;
		item.l = amp ? (size_t)(amp - rest.p) : rest.l;
		pl_advance(&rest, item.l + (amp ? 1 : 0));
		if (!item.l)
			continue;
		eq = pl_strchr(&item, '=');
		name.p = item.p;
		name.l = eq ? (size_t)(eq - item.p) : item.l;
		if (eq) {
			val.p = eq + 1;
			val.l = item.l - name.l - 1;
		}
		if (url_decode(&name, nbuf, sizeof(nbuf), true))
			str_ncpy(nbuf, "?", sizeof(nbuf));
		err = ph(nbuf, &val, arg);
	}
	return err;
}

/* The search query, its strings kept here. */
struct squery {
	struct cat_query q;
	char participant[SF_TEXT_MAX];
	char call_id[SF_TEXT_MAX];
	char media[16];
	char state[16];
	unsigned seen;
	char what[160];              /* why it is a 400 */
};

static bool parse_double(const char *s, double *v)
{
	char *e;

	if (!s[0] || s[0] == '-' || s[0] == '+' || s[0] == ' ')
		return false;
	errno = 0;
	*v = strtod(s, &e);
	return !*e && !errno && isfinite(*v) && *v >= 0;
}

static bool parse_uint(const char *s, unsigned long max, unsigned *v)
{
	unsigned long n = 0;
	size_t i;

	if (!s[0] || strlen(s) > 10)
		return false;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	if (n > max)
		return false;
	*v = (unsigned)n;
	return true;
}

static int search_param(const char *name, const struct pl *val, void *arg)
{
	static const char *const names[] = {
		"participant", "call_id", "from", "to", "media", "state",
		"limit", "offset",
	};
	struct squery *sq = arg;
	char v[SF_TEXT_MAX];
	unsigned i, bit;
	int err;

	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcmp(name, names[i]))
			break;
	if (i == ARRAY_SIZE(names)) {
		re_snprintf(sq->what, sizeof(sq->what),
			    "unknown parameter '%s' (known: participant, "
			    "call_id, from, to, media, state, limit, offset)",
			    name);
		return EINVAL;
	}
	bit = 1u << i;
	if (sq->seen & bit) {
		re_snprintf(sq->what, sizeof(sq->what),
			    "parameter '%s' given twice", name);
		return EINVAL;
	}
	sq->seen |= bit;
	err = url_decode(val, v, sizeof(v), true);
	if (err) {
		re_snprintf(sq->what, sizeof(sq->what), "%s: %s", name,
			    err == ENAMETOOLONG ? "too long" :
			    "bad percent-encoding");
		return EINVAL;
	}
	if (!v[0])
		return 0;                  /* name= : no filter */

	switch (i) {
	case 0:
		str_ncpy(sq->participant, v, sizeof(sq->participant));
		sq->q.participant = sq->participant;
		return 0;
	case 1:
		str_ncpy(sq->call_id, v, sizeof(sq->call_id));
		sq->q.call_id = sq->call_id;
		return 0;
	case 2:
	case 3:
		if (parse_double(v, i == 2 ? &sq->q.from : &sq->q.to))
			return 0;
		re_snprintf(sq->what, sizeof(sq->what), "%s: not a number of "
			    "unix seconds", name);
		return EINVAL;
	case 4:
		if (strcmp(v, "audio") && strcmp(v, "video")) {
			re_snprintf(sq->what, sizeof(sq->what),
				    "media: must be audio or video");
			return EINVAL;
		}
		str_ncpy(sq->media, v, sizeof(sq->media));
		sq->q.media = sq->media;
		return 0;
	case 5:
		if (!catalog_state_valid(v)) {
			re_snprintf(sq->what, sizeof(sq->what), "state: must "
				    "be recording, finalizing, complete or "
				    "failed");
			return EINVAL;
		}
		str_ncpy(sq->state, v, sizeof(sq->state));
		sq->q.state = sq->state;
		return 0;
	case 6:
		if (parse_uint(v, 1000, &sq->q.limit) && sq->q.limit > 0)
			return 0;
		re_snprintf(sq->what, sizeof(sq->what),
			    "limit: must be 1 to 1000");
		return EINVAL;
	default:
		if (parse_uint(v, OFFSET_MAX, &sq->q.offset))
			return 0;
		re_snprintf(sq->what, sizeof(sq->what),
			    "offset: must be 0 to %u", (unsigned)OFFSET_MAX);
		return EINVAL;
	}
}

struct tokq {
	const struct recapi *api;
	bool ok;
};

static int token_param(const char *name, const struct pl *val, void *arg)
{
	struct tokq *tq = arg;
	char v[RECAPI_TOKEN_MAX];
	struct pl pl;

	if (strcmp(name, "token") || url_decode(val, v, sizeof(v), true))
		return 0;
	pl_set_str(&pl, v);
	tq->ok = pl.l && token_equal(tq->api, &pl);
	return 0;
}

/* ---- the resources ---- */

enum route {
	R_NONE = 0,
	R_PAGE,
	R_LIST,
	R_REC,
	R_FILE,
	R_STATUS,
};

/* Which resource is PATH? R_REC and R_FILE set *ID, R_FILE *NAME (raw,
 * still URL-encoded). */
static enum route route_of(const struct pl *path, struct pl *id,
			   struct pl *name)
{
	static const char prefix[] = "/api/v1/";
	static const char recs[] = "recordings/";
	struct pl rest = *path;
	const char *slash;

	if (!pl_strcmp(path, "/") || !pl_strcmp(path, "/index.html"))
		return R_PAGE;
	if (rest.l < sizeof(prefix) - 1 ||
	    memcmp(rest.p, prefix, sizeof(prefix) - 1))
		return R_NONE;
	pl_advance(&rest, sizeof(prefix) - 1);
	if (!pl_strcmp(&rest, "recordings") ||
	    !pl_strcmp(&rest, "recordings/"))
		return R_LIST;
	if (!pl_strcmp(&rest, "status"))
		return R_STATUS;
	if (rest.l <= sizeof(recs) - 1 ||
	    memcmp(rest.p, recs, sizeof(recs) - 1))
		return R_NONE;
	pl_advance(&rest, sizeof(recs) - 1);
	slash = pl_strchr(&rest, '/');
	id->p = rest.p;
	id->l = slash ? (size_t)(slash - rest.p) : rest.l;
	if (!id->l)
		return R_NONE;
	if (!slash)
		return R_REC;
	pl_advance(&rest, id->l + 1);
	if (rest.l <= 6 || memcmp(rest.p, "files/", 6))
		return R_NONE;
	pl_advance(&rest, 6);
	*name = rest;
	return R_FILE;
}

static const char *allow_of(enum route r)
{
	return r == R_REC ? "Allow: GET, DELETE\r\n" : "Allow: GET\r\n";
}

/* A recording id as the daemon makes them: [A-Za-z0-9._-], not "." or
 * "..", shorter than SF_ID_MAX. Decoded into BUF. */
static bool id_decode(const struct pl *raw, char *buf, size_t size)
{
	size_t i;

	if (url_decode(raw, buf, size, false) || !buf[0] ||
	    !strcmp(buf, ".") || strstr(buf, ".."))
		return false;
	for (i = 0; buf[i]; i++) {
		char c = buf[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return false;
	}
	return true;
}

/* A file name inside a session folder: one path component, no "..",
 * no control bytes or backslash. Decoded into BUF. */
static bool name_decode(const struct pl *raw, char *buf, size_t size)
{
	size_t i;

	if (url_decode(raw, buf, size, false) || !buf[0] ||
	    !strcmp(buf, ".") || strstr(buf, ".."))
		return false;
	for (i = 0; buf[i]; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
			return false;
	}
	return true;
}

static uint16_t get_list(struct recapi *api, struct http_conn *conn,
			 const struct http_msg *msg)
{
	struct squery sq;
	struct mbuf *mb;
	uint16_t sc;
	int err;

	memset(&sq, 0, sizeof(sq));
	if (query_apply(&msg->prm, search_param, &sq))
		return reply_error(api, conn, 400, "Bad Request", NULL,
				   sq.what);
	if (sq.q.from > 0 && sq.q.to > 0 && sq.q.from > sq.q.to)
		return reply_error(api, conn, 400, "Bad Request", NULL,
				   "from is after to");
	mb = mbuf_alloc(8192);
	if (!mb)
		return reply_oom(api, conn);
	++api->st.searches;
	err = catalog_search(api->cat, &sq.q, mb);
	if (!err)
		err = mbuf_write_str(mb, "\n");
	if (err) {
		log_re(LOG_LVL_WARN, "recapi: search: %m", err);
		sc = reply_error(api, conn, err == EBUSY ? 503 : 500,
				 err == EBUSY ? "Service Unavailable" :
				 "Internal Server Error",
				 NULL, "the catalog failed");
	}
	else {
		sc = reply_mb(api, conn, 200, "OK", NULL, mb);
	}
	mem_deref(mb);
	return sc;
}

static uint16_t get_rec(struct recapi *api, struct http_conn *conn,
			const char *id)
{
	struct mbuf *mb = mbuf_alloc(4096);
	uint16_t sc;
	int err;

	if (!mb)
		return reply_oom(api, conn);
	err = catalog_get(api->cat, id, mb);
	if (!err)
		err = mbuf_write_str(mb, "\n");
	if (err == ENOENT)
		sc = reply_error(api, conn, 404, "Not Found", NULL,
				 "no such recording");
	else if (err)
		sc = reply_error(api, conn, 500, "Internal Server Error",
				 NULL, "the catalog failed");
	else
		sc = reply_mb(api, conn, 200, "OK", NULL, mb);
	mem_deref(mb);
	return sc;
}

static int status_print(struct re_printf *pf, const struct recapi *api)
{
	const struct recapi_stats *st = &api->st;
	int err;

	err = re_hprintf(pf, "{\"status\":\"ok\",\"api\":{\"requests\":%llu,"
			 "\"errors\":%llu,\"unauthorized\":%llu,"
			 "\"searches\":%llu,\"downloads\":%llu,"
			 "\"downloads_active\":%u,\"download_bytes\":%llu,"
			 "\"downloads_aborted\":%llu,\"deleted\":%llu},"
			 "\"daemon\":",
			 (unsigned long long)st->requests,
			 (unsigned long long)st->errors,
			 (unsigned long long)st->unauthorized,
			 (unsigned long long)st->searches,
			 (unsigned long long)st->downloads,
			 list_count(&api->dls),
			 (unsigned long long)st->dl.bytes,
			 (unsigned long long)st->dl.aborted,
			 (unsigned long long)st->deleted);
	if (err)
		return err;
	if (api->statush)
		err = api->statush(pf, api->arg);
	else
		err = re_hprintf(pf, "null");
	return err ? err : re_hprintf(pf, "}\n");
}

static uint16_t get_status(struct recapi *api, struct http_conn *conn)
{
	struct mbuf *mb = mbuf_alloc(2048);
	uint16_t sc;

	if (!mb)
		return reply_oom(api, conn);
	if (mbuf_printf(mb, "%H", status_print, api))
		sc = reply_error(api, conn, 500, "Internal Server Error", NULL,
				 "the status could not be printed");
	else
		sc = reply_mb(api, conn, 200, "OK", NULL, mb);
	mem_deref(mb);
	return sc;
}

static uint16_t get_page(struct recapi *api, struct http_conn *conn)
{
	const char *html = recweb_html();

	/* the page may only talk to us, and is never framed */
	return reply_body(api, conn, 200, "OK", "text/html; charset=utf-8",
			  "Content-Security-Policy: default-src 'none'; "
			  "script-src 'unsafe-inline'; style-src "
			  "'unsafe-inline'; connect-src 'self'; media-src "
			  "blob:; base-uri 'none'; form-action 'none'; "
			  "frame-ancestors 'none'\r\n"
			  "Referrer-Policy: no-referrer\r\n"
			  "X-Frame-Options: DENY\r\n",
			  (const uint8_t *)html, strlen(html));
}

/* ---- folders ---- */

/* Is the resolved path RP strictly inside the storage root? */
static bool under_root(const struct recapi *api, const char *rp)
{
	size_t rl = strlen(api->root);

	if (rl == 1)                   /* the root is "/" */
		rl = 0;
	return !strncmp(rp, api->root, rl) && rp[rl] == '/' && rp[rl + 1];
}

/* The session folder DIR, resolved into RP (PATH_MAX bytes) and checked:
 * 0, ENOENT (gone), EPERM (outside the storage root) or another errno. */
static int folder_resolve(const struct recapi *api, const char *dir,
			  char *rp)
{
	if (!realpath(dir, rp))
		return errno;
	if (!under_root(api, rp)) {
		log_re(LOG_LVL_WARN, "recapi: folder %s resolves to %s, outside "
		     "the storage root %s", dir, rp, api->root);
		return EPERM;
	}
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	if (remove(path) && errno != ENOENT)
		return errno;
	return 0;
}

/* Remove the session folder DIR and all in it: 0 (also if it was gone
 * already), ELOOP (DIR itself is a symlink: the daemon never makes one, so
 * someone replaced the folder; neither the link nor its target is ours to
 * remove), ENOTDIR (not a folder), EPERM (resolves outside the storage
 * root) or the errno of the first entry that could not be removed.
 * Symlinks inside are removed, never followed, and the walk stays on
 * DIR's file system. */
static int folder_remove(const struct recapi *api, const char *dir)
{
	char rp[PATH_MAX];
	struct stat st;
	int err;

	if (lstat(dir, &st))
		return errno == ENOENT ? 0 : errno;
	if (S_ISLNK(st.st_mode))
		return ELOOP;
	if (!S_ISDIR(st.st_mode))
		return ENOTDIR;
	err = folder_resolve(api, dir, rp);
	if (err == ENOENT)
		return 0;
	if (err)
		return err;
	err = nftw(rp, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (err < 0)
		err = errno;
	return err;
}

static uint16_t delete_rec(struct recapi *api, struct http_conn *conn,
			   const char *id)
{
	char dir[PATH_MAX], body[128];
	enum sf_state state = SF_FAILED;
	int err, n;

	err = catalog_dir(api->cat, id, dir, sizeof(dir), &state);
	if (err == ENOENT)
		return reply_error(api, conn, 404, "Not Found", NULL,
				   "no such recording");
	if (err)
		return reply_error(api, conn, 500, "Internal Server Error",
				   NULL, "the catalog failed");
	if (state == SF_RECORDING || state == SF_FINALIZING)
		return reply_error(api, conn, 409, "Conflict", NULL,
				   state == SF_RECORDING ?
				   "the recording is still running" :
				   "the recording is being finalized");
	err = folder_remove(api, dir);
	if (err == ELOOP || err == ENOTDIR || err == EPERM) {
		/* the storage was changed under us: a conflict for an
		 * operator to look at, not a server fault; nothing touched */
		log_re(LOG_LVL_WARN, "recapi: [%s] delete %s refused: %s", id,
		       dir, err == ELOOP ? "a symbolic link" : err == ENOTDIR ?
		       "not a folder" : "outside the storage root");
		return reply_error(api, conn, 409, "Conflict", NULL,
				   err == ELOOP ?
				   "the session folder is a symbolic link" :
				   err == ENOTDIR ?
				   "the session folder is not a folder" :
				   "the folder is outside the storage root");
	}
	if (err) {
		log_re(LOG_LVL_ERROR, "recapi: [%s] delete %s: %m", id, dir,
		     err);
		return reply_error(api, conn, 500, "Internal Server Error",
				   NULL, "the folder could not be removed");
	}
	err = catalog_delete(api->cat, id);
	if (err && err != ENOENT)
		return reply_error(api, conn, 500, "Internal Server Error",
				   NULL, "the catalog failed");
	++api->st.deleted;
	log_re(LOG_LVL_INFO, "recapi: [%s] deleted (%s)", id, dir);
	n = re_snprintf(body, sizeof(body), "{\"id\":%H,\"deleted\":true}\n",
			catalog_jstr, id);
	return reply_body(api, conn, 200, "OK", "application/json", NULL,
			  (const uint8_t *)body, n > 0 ? (size_t)n : 0);
}

/* ---- downloads ---- */

static const char *ctype_of(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{".mp4",  "video/mp4"},
		{".webm", "video/webm"},
		{".wav",  "audio/wav"},
		{".mkv",  "video/x-matroska"},
		{".pcap", "application/vnd.tcpdump.pcap"},
		{".json", "application/json"},
		{".xml",  "application/xml"},
		{".sdp",  "application/sdp"},
	};
	const char *dot = strrchr(name, '.');
	size_t i;

	for (i = 0; dot && i < ARRAY_SIZE(types); i++)
		if (!strcasecmp(dot, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

/* filename="..." for Content-Disposition: the name with anything but
 * [A-Za-z0-9._-] replaced, so it needs no quoting rules. */
static void disp_name(const char *name, char *out, size_t size)
{
	size_t i;

	for (i = 0; name[i] && i + 1 < size; i++) {
		char c = name[i];

		out[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '-' ||
			  c == '_') ? c : '_';
	}
	out[i] = '\0';
}

/* Open NAME in the folder of recording ID: 0 and *FDP, or the status to
 * answer (404, 500). */
static uint16_t file_open(struct recapi *api, const char *id,
			  const char *name, int *fdp, struct stat *st,
			  const char **what)
{
	char dir[PATH_MAX], rp[PATH_MAX];
	int err, dfd, fd;

	err = catalog_dir(api->cat, id, dir, sizeof(dir), NULL);
	if (err) {
		*what = err == ENOENT ? "no such recording" :
			"the catalog failed";
		return err == ENOENT ? 404 : 500;
	}
	err = folder_resolve(api, dir, rp);
	if (err) {
		*what = "no such file";
		return 404;
	}
	dfd = open(rp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		*what = "no such file";
		return 404;
	}
	/* one component (checked), no symlink: cannot leave the folder */
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
		    O_NONBLOCK);
	err = errno;
	close(dfd);
	if (fd < 0) {
		if (err != ENOENT && err != ELOOP && err != ENOTDIR)
			log_re(LOG_LVL_WARN, "recapi: [%s] open %s: %m", id,
			     name, err);
		*what = "no such file";
		return 404;
	}
	if (fstat(fd, st) || !S_ISREG(st->st_mode)) {
		close(fd);
		*what = "no such file";
		return 404;
	}
	*fdp = fd;
	return 0;
}

static uint16_t get_file(struct recapi *api, struct http_conn *conn,
			 const struct http_msg *msg, const char *id,
			 const char *name)
{
	const struct http_hdr *rh = http_msg_hdr(msg, HTTP_HDR_RANGE);
	uint64_t size, first = 0, last = 0;
	const char *what = NULL;
	char dname[SF_ID_MAX * 2], crange[96] = "";
	struct recdl *dl = NULL;
	struct stat st;
	uint16_t sc;
	bool partial = false;
	int fd = -1, err;

	sc = file_open(api, id, name, &fd, &st, &what);
	if (sc)
		return reply_error(api, conn, sc, sc == 404 ? "Not Found" :
				   "Internal Server Error", NULL, what);
	size = (uint64_t)st.st_size;
	if (rh) {
		err = recdl_range(&rh->val, size, &first, &last);
		if (err == ERANGE) {
			close(fd);
			re_snprintf(crange, sizeof(crange),
				    "Content-Range: bytes */%llu\r\n",
				    (unsigned long long)size);
			return reply_error(api, conn, 416,
					   "Range Not Satisfiable", crange,
					   "the range is outside the file");
		}
		partial = !err;
	}
	if (partial)
		re_snprintf(crange, sizeof(crange),
			    "Content-Range: bytes %llu-%llu/%llu\r\n",
			    (unsigned long long)first,
			    (unsigned long long)last,
			    (unsigned long long)size);
	else if (size)
		last = size - 1;

	err = recdl_alloc(&dl, fd, first, size ? last + 1 : 0, &api->st.dl);
	if (err) {
		close(fd);
		return reply_oom(api, conn);
	}
	disp_name(name, dname, sizeof(dname));
	err = http_reply(conn, partial ? 206 : 200,
			 partial ? "Partial Content" : "OK",
			 "Content-Type: %s\r\n"
			 "Content-Disposition: attachment; filename=\"%s\"\r\n"
			 "Accept-Ranges: bytes\r\n"
			 "%s"
			 "Content-Length: %llu\r\n"
			 "Cache-Control: no-store\r\n"
			 "X-Content-Type-Options: nosniff\r\n"
			 "Connection: close\r\n"
			 "\r\n",
			 ctype_of(name), dname, crange,
			 (unsigned long long)(size ? last + 1 - first : 0));
	if (err) {
		mem_deref(dl);
		http_conn_close(conn);
		++api->st.errors;
		return 500;
	}

	++api->st.downloads;
	recdl_start(dl, conn, &api->dls);
	return partial ? 206 : 200;
}

/* ---- dispatch ---- */

static bool method_ok(enum route r, const struct pl *met)
{
	if (!pl_strcmp(met, "GET"))
		return true;
	return r == R_REC && !pl_strcmp(met, "DELETE");
}

static uint16_t handle(struct recapi *api, struct http_conn *conn,
		       const struct http_msg *msg)
{
	struct pl idraw = PL_INIT, nameraw = PL_INIT;
	char id[SF_ID_MAX], name[SF_ID_MAX * 2];
	enum route r = route_of(&msg->path, &idraw, &nameraw);
	bool ok = !api->token[0] || bearer_ok(api, msg);

	if (!ok && r == R_PAGE && !pl_strcmp(&msg->met, "GET")) {
		struct tokq tq = {api, false};

		(void)query_apply(&msg->prm, token_param, &tq);
		ok = tq.ok;
	}
	if (!ok) {
		++api->st.unauthorized;
		return reply_error(api, conn, 401, "Unauthorized",
				   "WWW-Authenticate: Bearer realm=\"tally\""
				   "\r\n", "missing or wrong bearer token");
	}
	if (r == R_NONE)
		return reply_error(api, conn, 404, "Not Found", NULL,
				   "no such resource");
	if (!method_ok(r, &msg->met))
		return reply_error(api, conn, 405, "Method Not Allowed",
				   allow_of(r), "method not allowed");
	if ((r == R_REC || r == R_FILE) && !id_decode(&idraw, id, sizeof(id)))
		return reply_error(api, conn, 400, "Bad Request", NULL,
				   "bad recording id");
	if (r == R_FILE && !name_decode(&nameraw, name, sizeof(name)))
		return reply_error(api, conn, 400, "Bad Request", NULL,
				   "bad file name");
	if (r != R_LIST && r != R_PAGE && pl_isset(&msg->prm) &&
	    msg->prm.l > 1)
		return reply_error(api, conn, 400, "Bad Request", NULL,
				   "this resource takes no parameters");

	switch (r) {
	case R_PAGE:
		return get_page(api, conn);
	case R_LIST:
		return get_list(api, conn, msg);
	case R_REC:
		if (!pl_strcmp(&msg->met, "DELETE"))
			return delete_rec(api, conn, id);
		return get_rec(api, conn, id);
	case R_FILE:
		return get_file(api, conn, msg, id, name);
	case R_STATUS:
		return get_status(api, conn);
	default:
		return reply_error(api, conn, 404, "Not Found", NULL,
				   "no such resource");
	}
}

static void request_h(struct http_conn *conn, const struct http_msg *msg,
		      void *arg)
{
	struct recapi *api = arg;
	uint16_t scode;
	struct sa peer;

	++api->st.requests;
	/* a download takes the connection over: keep the peer for the log */
	sa_cpy(&peer, http_conn_peer(conn));
	scode = handle(api, conn, msg);
	log_re(LOG_LVL_DEBUG, "recapi: %J %H %H -> %u", &peer, log_safe,
	     &msg->met, log_safe, &msg->path, scode);
}

/* ---- lifetime ---- */

static void recapi_destructor(void *arg)
{
	struct recapi *api = arg;

	list_flush(&api->dls);
	mem_deref(api->hs);
}

/*
 * recapi_alloc: serve the API on PRM->laddr (port 0 picks a free port; see
 * recapi_laddr()). PRM->token "" turns authorisation off; it must be
 * shorter than 128 bytes. PRM->storage must exist (its realpath is the
 * root every folder is checked against). PRM->cat is borrowed and must
 * outlive the api; PRM->statush (may be NULL) prints the daemon's part of
 * /api/v1/status. Returns 0 and *APIP (deref to stop serving; downloads in
 * flight are cut), EINVAL, or the errno of realpath or the listen.
 */
int recapi_alloc(struct recapi **apip, const struct recapi_params *prm)
{
	struct recapi *api;
	int err;

	if (!apip || !prm || !prm->laddr || !prm->cat || !prm->storage ||
	    !prm->token || strlen(prm->token) >= RECAPI_TOKEN_MAX)
		return EINVAL;
	api = mem_zalloc(sizeof(*api), recapi_destructor);
	if (!api)
		return ENOMEM;
	list_init(&api->dls);
	api->cat = prm->cat;
	api->statush = prm->statush;
	api->arg = prm->arg;
	str_ncpy(api->token, prm->token, sizeof(api->token));
	if (!realpath(prm->storage, api->root)) {
		err = errno;
		log_re(LOG_LVL_ERROR, "recapi: storage %s: %m", prm->storage,
		     err);
		goto out;
	}
	err = http_listen(&api->hs, prm->laddr, request_h, api);
	if (err) {
		log_re(LOG_LVL_ERROR, "recapi: listen on %J: %m", prm->laddr,
		     err);
		goto out;
	}
	{
		struct sa local;

		if (recapi_laddr(api, &local))
			sa_cpy(&local, prm->laddr);
		log_re(LOG_LVL_INFO, "recapi: listening on %J%s", &local,
		     api->token[0] ? "" : " (no token: open to anyone who "
		     "can connect)");
	}
 out:
	if (err)
		mem_deref(api);
	else
		*apip = api;
	return err;
}

int recapi_laddr(const struct recapi *api, struct sa *laddr)
{
	if (!api || !laddr)
		return EINVAL;
	return tcp_sock_local_get(http_sock_tcp(api->hs), laddr);
}
