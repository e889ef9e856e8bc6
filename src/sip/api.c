/*
 * api.c: tally-sip's client API: HTTP/1.1 + JSON under /api/v1, with a
 * bearer token on every request (the WebSocket upgrade included).
 *
 *   GET /api/v1/calls         {"calls":[<call>,...]}
 *   GET /api/v1/calls/{id}    <call> (404 if unknown)
 *   GET /api/v1/health        {"status":"ok","calls":N,...counters}
 *   GET /api/v1/events        WebSocket: one JSON event per text frame
 *                             (events.c)
 *   POST /api/v1/recordings   start: {"call":"<id>"} or {"dn":"<user>"},
 *                             "media":"audio"|"audio+video", optional
 *                             "recorder":"sip:...", "mode":"both" (one
 *                             SIPREC session) | "per-party" (one per
 *                             party: 201 is the caller's, "twin" names
 *                             the callee's; DELETE, pause, resume and
 *                             media act on both) -> 201 <recording>;
 *                             the call records already: same media 200
 *                             <recording>, other media 409 (error +
 *                             "recording"); no call 404, several calls
 *                             for the DN 409, bad input 400
 *   GET /api/v1/recordings    {"recordings":[<recording>,...]} (active)
 *   GET /api/v1/recordings/{id}     <recording> (active or recently ended)
 *   DELETE /api/v1/recordings/{id}  stop -> 200 <recording>
 *   POST /api/v1/recordings/{id}/pause    re-INVITE a=inactive -> 200
 *   POST /api/v1/recordings/{id}/resume   re-INVITE a=sendonly -> 200
 *   POST /api/v1/recordings/{id}/media    {"media":"audio"|"audio+video"}:
 *                             drop or add video in the same session
 *                             -> 200 <recording> ("change" says what is
 *                             in flight; the events follow); not
 *                             possible now (ended, not started yet,
 *                             another change in flight, paused already)
 *                             409 with the recording; unknown 404
 * <call> is bcall_json() (calljson.c), <recording> rec_json() (rec.c).
 *
 * Every error is JSON too: {"error":"<what>","status":<code>}. The checks
 * run in this order, so an unauthenticated client learns nothing about
 * which paths exist:
 *   token missing or wrong        -> 401 (+ WWW-Authenticate: Bearer)
 *   path not under /api/v1/ known -> 404
 *   method not allowed there      -> 405 (+ Allow: GET[, POST|DELETE])
 *   bad request (e.g. /events without a WebSocket upgrade) -> 400
 * Bytes that do not parse as HTTP make libre close the connection; they
 * never reach this file.
 *
 * Worked example:
 *   GET /api/v1/calls/c1-3f2a1b HTTP/1.1
 *   Host: 127.0.0.1:8080
 *   Authorization: Bearer s3cret
 *
 *   HTTP/1.1 200 OK
 *   Content-Type: application/json
 *   Cache-Control: no-store
 *   Content-Length: 512
 *
 *   {"id":"c1-3f2a1b","call_id":"...","state":"answered",...}
 *
 * Every request is logged at DEBUG with its status, and counted
 * (struct api_stats, shown by /health).
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include "log.h"
#include "api.h"
#include "rec.h"

/* The api the B2BUA's events go to when api_call_event() gets no ARG
 * (main.c registers the handler before the api exists). */
static struct api *api_cur;

struct api *api_active(void)
{
	return api_cur;
}

/* ---- replies ---- */

struct jerr {
	uint16_t scode;
	const char *what;
};

static int jerr_print(struct re_printf *pf, void *arg)
{
	const struct jerr *e = arg;

	return re_hprintf(pf, "{\"error\":%H,\"status\":%u}", api_jstr,
			  e->what, (unsigned)e->scode);
}

/* Send a JSON reply whose body is printed by H(ARG); XHDRS are extra header
 * lines (each ending in CRLF) or NULL. Returns SCODE, for the log. */
static uint16_t reply_json(struct api *api, struct http_conn *conn,
			   uint16_t scode, const char *reason,
			   const char *xhdrs, re_printf_h *h, void *arg)
{
	struct mbuf *mb = mbuf_alloc(1024);
	int err;

	if (scode >= 400)
		++api->st.errors;
	if (!mb) {
		http_conn_close(conn);
		return scode;
	}
	err = mbuf_printf(mb, "%H\n", h, arg);
	if (!err)
		err = http_reply(conn, scode, reason,
				 "Content-Type: application/json\r\n"
				 "Cache-Control: no-store\r\n"
				 "%s"
				 "Content-Length: %zu\r\n"
				 "\r\n"
				 "%b",
				 xhdrs ? xhdrs : "", mb->end, mb->buf, mb->end);
	if (err) {
		log_re(LOG_LVL_WARN, "api: reply %u to %J failed: %m", scode,
			 http_conn_peer(conn), err);
		http_conn_close(conn);
	}
	mem_deref(mb);
	return scode;
}

static uint16_t reply_error(struct api *api, struct http_conn *conn,
			    uint16_t scode, const char *reason,
			    const char *xhdrs, const char *what);

static int rec_print(struct re_printf *pf, void *arg)
{
	return rec_json(pf, arg);
}

struct jerr_rec {
	uint16_t scode;
	const char *what;
	const struct recording *rec;
};

static int jerr_rec_print(struct re_printf *pf, void *arg)
{
	const struct jerr_rec *e = arg;

	return re_hprintf(pf, "{\"error\":%H,\"status\":%u,\"recording\":%H}",
			  api_jstr, e->what, (unsigned)e->scode, rec_json,
			  e->rec);
}

static uint16_t reply_error(struct api *api, struct http_conn *conn,
			    uint16_t scode, const char *reason,
			    const char *xhdrs, const char *what)
{
	struct jerr e = {scode, what};

	return reply_json(api, conn, scode, reason, xhdrs, jerr_print, &e);
}

/* ---- authorisation ---- */

/* Does MSG carry "Authorization: Bearer <our token>"? The comparison takes
 * the same time wherever the first difference is. */
static bool authorized(const struct api *api, const struct http_msg *msg)
{
	const struct http_hdr *hdr = http_msg_hdr(msg, HTTP_HDR_AUTHORIZATION);
	static const char scheme[] = "Bearer";
	const size_t slen = sizeof(scheme) - 1;
	size_t tlen = strlen(api->token), i;
	struct pl v;
	unsigned char diff = 0;

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
	if (v.l != tlen || !tlen)
		return false;
	for (i = 0; i < tlen; i++)
		diff |= (unsigned char)(v.p[i] ^ api->token[i]);
	return diff == 0;
}

/* ---- resources ---- */

static int calls_print(struct re_printf *pf, void *arg)
{
	const struct api *api = arg;
	const struct list *calls = b2bua_calls(api->b2bua);
	struct le *le;
	int err = 0;

	err |= re_hprintf(pf, "{\"calls\":[");
	for (le = calls ? list_head(calls) : NULL; le && !err; le = le->next)
		err |= re_hprintf(pf, "%s%H", le == list_head(calls) ? "" : ",",
				  bcall_json, le->data);
	err |= re_hprintf(pf, "]}");
	return err;
}

static int call_print(struct re_printf *pf, void *arg)
{
	return bcall_json(pf, arg);
}

static int health_print(struct re_printf *pf, void *arg)
{
	const struct api *api = arg;
	const struct api_stats *st = &api->st;
	const struct list *calls = b2bua_calls(api->b2bua);

	return re_hprintf(pf, "{\"status\":\"ok\",\"calls\":%u,"
			  "\"event_clients\":%u,"
			  "\"counters\":{\"requests\":%llu,\"errors\":%llu,"
			  "\"unauthorized\":%llu,\"events\":%llu,"
			  "\"event_frames\":%llu,\"event_clients_accepted\":%llu,"
			  "\"event_clients_dropped\":%llu,"
			  "\"event_frames_refused\":%llu}}",
			  calls ? list_count(calls) : 0u,
			  api_events_count(api),
			  (unsigned long long)st->requests,
			  (unsigned long long)st->errors,
			  (unsigned long long)st->unauthorized,
			  (unsigned long long)st->events,
			  (unsigned long long)st->frames,
			  (unsigned long long)st->ws_accepted,
			  (unsigned long long)st->ws_dropped,
			  (unsigned long long)st->ws_refused);
}

/* A call id as tally makes them ("c12-3f2a1b"): short, [A-Za-z0-9._-]. */
static bool id_valid(const struct pl *id, char *buf, size_t size)
{
	size_t i;

	if (!id->l || id->l >= size)
		return false;
	for (i = 0; i < id->l; i++) {
		char c = id->p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return false;
	}
	(void)pl_strcpy(id, buf, size);
	return true;
}

static uint16_t get_call(struct api *api, struct http_conn *conn,
			 const struct pl *idpl)
{
	char id[sizeof(((struct bcall *)0)->id)];
	struct bcall *call;

	if (!id_valid(idpl, id, sizeof(id)) || !api->b2bua ||
	    !(call = b2bua_call_find(api->b2bua, id)))
		return reply_error(api, conn, 404, "Not Found", NULL,
				   "no such call");
	return reply_json(api, conn, 200, "OK", NULL, call_print, call);
}

static uint16_t get_events(struct api *api, struct http_conn *conn,
			   const struct http_msg *msg)
{
	int err = api_events_accept(api, conn, msg);

	switch (err) {
	case 0:
		return 101;
	case EBADMSG:
		return reply_error(api, conn, 400, "Bad Request", NULL,
				   "a WebSocket upgrade (version 13) is "
				   "required");
	case EMFILE:
		return reply_error(api, conn, 503, "Service Unavailable",
				   "Retry-After: 10\r\n",
				   "too many event clients");
	default:
		log_re(LOG_LVL_WARN, "api: event stream for %J: %m", http_conn_peer(conn),
			 err);
		return reply_error(api, conn, 500, "Internal Server Error",
				   NULL, "cannot open the event stream");
	}
}

/* ---- recordings ---- */

static int recs_print(struct re_printf *pf, void *arg)
{
	const struct api *api = arg;
	const struct list *l = recs_active(api->recs);
	struct le *le;
	int err = re_hprintf(pf, "{\"recordings\":[");

	for (le = l ? list_head(l) : NULL; le && !err; le = le->next)
		err |= re_hprintf(pf, "%s%H", le == list_head(l) ? "" : ",",
				  rec_json, le->data);
	return err | re_hprintf(pf, "]}");
}

/* The one live call where caller or callee user is DN: 0 and *CALLP,
 * ENOENT (none) or EEXIST (several). */
static int call_by_dn(const struct api *api, const char *dn,
		      struct bcall **callp)
{
	const struct list *calls = b2bua_calls(api->b2bua);
	struct bcall *found = NULL;
	struct le *le;

	for (le = calls ? list_head(calls) : NULL; le; le = le->next) {
		struct bcall *c = le->data;

		if (c->state == BCALL_ENDED)
			continue;
		if (strcmp(c->caller.user, dn) && strcmp(c->callee.user, dn))
			continue;
		if (found)
			return EEXIST;
		found = c;
	}
	if (!found)
		return ENOENT;
	*callp = found;
	return 0;
}

static const char *jstring(const struct odict *o, const char *key,
			   bool *bad)
{
	const struct odict_entry *e = odict_lookup(o, key);

	if (!e)
		return NULL;
	if (e->type != ODICT_STRING) {
		*bad = true;
		return NULL;
	}
	return e->u.str;
}

static uint16_t post_recording(struct api *api, struct http_conn *conn,
			       const struct http_msg *msg)
{
	const char *callid = NULL, *dn = NULL, *media = NULL, *recorder = NULL;
	const char *mode = NULL;
	struct rec_req req;
	struct odict *o = NULL;
	struct bcall *call = NULL;
	struct recording *rec = NULL;
	bool bad = false, video;
	uint16_t sc;
	int err;

	if (!api->recs)
		return reply_error(api, conn, 503, "Service Unavailable",
				   NULL, "recording is not available");
	if (!msg->mb || !mbuf_get_left(msg->mb) ||
	    json_decode_odict(&o, 16, (const char *)mbuf_buf(msg->mb),
			      mbuf_get_left(msg->mb), 4))
		sc = reply_error(api, conn, 400, "Bad Request", NULL,
				 "the body must be a JSON object");
	else if ((callid = jstring(o, "call", &bad)),
		 (dn = jstring(o, "dn", &bad)),
		 (media = jstring(o, "media", &bad)),
		 (recorder = jstring(o, "recorder", &bad)),
		 (mode = jstring(o, "mode", &bad)), bad)
		sc = reply_error(api, conn, 400, "Bad Request", NULL,
				 "call, dn, media, mode and recorder are "
				 "strings");
	else if (!callid == !dn)
		sc = reply_error(api, conn, 400, "Bad Request", NULL,
				 "give either \"call\" or \"dn\"");
	else if (!media || (strcmp(media, "audio") &&
			    strcmp(media, "audio+video")))
		sc = reply_error(api, conn, 400, "Bad Request", NULL,
				 "media must be \"audio\" or \"audio+video\"");
	else if (mode && strcmp(mode, "both") && strcmp(mode, "per-party"))
		sc = reply_error(api, conn, 400, "Bad Request", NULL,
				 "mode must be \"both\" or \"per-party\"");
	else if (recorder && !rec_uri_valid(recorder))
		sc = reply_error(api, conn, 400, "Bad Request", NULL,
				 "recorder must be a sip: URI");
	else if (callid && !(call = b2bua_call_find(api->b2bua, callid)))
		sc = reply_error(api, conn, 404, "Not Found", NULL,
				 "no such call");
	else if (dn && (err = call_by_dn(api, dn, &call)))
		sc = reply_error(api, conn, err == ENOENT ? 404 : 409,
				 err == ENOENT ? "Not Found" : "Conflict",
				 NULL, err == ENOENT ? "no call for that dn" :
				 "several calls for that dn: give the call");
	else
		sc = 0;
	if (sc)
		goto out;

	video = !strcmp(media, "audio+video");
	req.video = video;
	req.per_party = mode && !strcmp(mode, "per-party");
	req.recorder = recorder;
	err = rec_start(api->recs, call, &req, &rec);
	switch (err) {
	case 0:
		sc = reply_json(api, conn, 201, "Created", NULL, rec_print,
				rec);
		break;
	case EEXIST:
		if (rec->video == video &&
		    (rec->party != REC_BOTH) == req.per_party) {
			sc = reply_json(api, conn, 200, "OK", NULL, rec_print,
					rec);
		}
		else {
			struct jerr_rec e = {409, "the call is being recorded "
					     "with other media or mode", rec};
			sc = reply_json(api, conn, 409, "Conflict", NULL,
					jerr_rec_print, &e);
		}
		break;
	case EAGAIN:
		sc = reply_error(api, conn, 409, "Conflict", NULL,
				 "the call is not answered");
		break;
	case ENOENT:
		sc = reply_error(api, conn, 503, "Service Unavailable", NULL,
				 "no recorder configured: give \"recorder\"");
		break;
	case EINVAL:
		sc = reply_error(api, conn, 400, "Bad Request", NULL,
				 "bad recorder");
		break;
	default:
		log_re(LOG_LVL_WARN, "api: recording start: %m", err);
		sc = reply_error(api, conn, 500, "Internal Server Error",
				 NULL, "cannot start the recording");
		break;
	}
 out:
	mem_deref(o);
	return sc;
}

static uint16_t one_recording(struct api *api, struct http_conn *conn,
			      const struct pl *idpl, bool stop)
{
	char id[40];
	struct recording *rec;

	if (!id_valid(idpl, id, sizeof(id)) ||
	    !(rec = recs_find(api->recs, id)))
		return reply_error(api, conn, 404, "Not Found", NULL,
				   "no such recording");
	if (stop) {
		/* per-party: the recording is both sessions */
		if (rec->twin)
			rec_stop(rec->twin, "stopped by the API");
		rec_stop(rec, "stopped by the API");
	}
	return reply_json(api, conn, 200, "OK", NULL, rec_print, rec);
}

/* POST /api/v1/recordings/{id}/pause|resume|media */
static uint16_t rec_change(struct api *api, struct http_conn *conn,
			   const struct http_msg *msg, const struct pl *idpl,
			   const struct pl *action)
{
	char id[40];
	struct recording *rec;
	struct odict *o = NULL;
	const char *media = NULL;
	bool bad = false;
	uint16_t sc;
	int err;

	if (!id_valid(idpl, id, sizeof(id)) ||
	    !(rec = recs_find(api->recs, id)))
		return reply_error(api, conn, 404, "Not Found", NULL,
				   "no such recording");
	if (!pl_strcmp(action, "pause")) {
		err = rec_pause(rec);
		if (!err && rec->twin)
			(void)rec_pause(rec->twin);
	}
	else if (!pl_strcmp(action, "resume")) {
		err = rec_resume(rec);
		if (!err && rec->twin)
			(void)rec_resume(rec->twin);
	}
	else {
		if (!msg->mb || !mbuf_get_left(msg->mb) ||
		    json_decode_odict(&o, 16, (const char *)mbuf_buf(msg->mb),
				      mbuf_get_left(msg->mb), 4) ||
		    !(media = jstring(o, "media", &bad)) || bad ||
		    (strcmp(media, "audio") && strcmp(media, "audio+video"))) {
			mem_deref(o);
			return reply_error(api, conn, 400, "Bad Request", NULL,
					   "the body must be {\"media\": "
					   "\"audio\" or \"audio+video\"}");
		}
		err = rec_media(rec, !strcmp(media, "audio+video"));
		if (!err && rec->twin)
			(void)rec_media(rec->twin, !strcmp(media,
							   "audio+video"));
		mem_deref(o);
	}
	if (!err)
		return reply_json(api, conn, 200, "OK", NULL, rec_print, rec);
	if (err == ESRCH || err == EBUSY || err == EALREADY) {
		struct jerr_rec e = {409, err == ESRCH ?
				     "the recording has ended" :
				     err == EALREADY ? (rec->paused ?
				     "the recording is paused already" :
				     "the recording is not paused") :
				     rec->mod ? "another change is in flight" :
				     "the recording has not started yet", rec};
		return reply_json(api, conn, 409, "Conflict", NULL,
				  jerr_rec_print, &e);
	}
	log_re(LOG_LVL_WARN, "api: recording %s %r: %m", id, action, err);
	sc = reply_error(api, conn, 500, "Internal Server Error", NULL,
			 "cannot change the recording");
	return sc;
}

enum route {
	R_NONE = 0,
	R_CALLS,
	R_CALL,
	R_HEALTH,
	R_EVENTS,
	R_RECS,
	R_REC,
	R_REC_ACT,                    /* recordings/{id}/pause|resume|media */
};

/* Which resource is PATH? For R_CALL and R_REC*, *ID is the id part,
 * for R_REC_ACT *ACT the action. */
static enum route route_of(const struct pl *path, struct pl *id,
			   struct pl *act)
{
	static const char prefix[] = "/api/v1/";
	struct pl rest = *path;

	if (rest.l < sizeof(prefix) - 1 ||
	    memcmp(rest.p, prefix, sizeof(prefix) - 1))
		return R_NONE;
	pl_advance(&rest, sizeof(prefix) - 1);
	if (!pl_strcmp(&rest, "calls") || !pl_strcmp(&rest, "calls/"))
		return R_CALLS;
	if (!pl_strcmp(&rest, "health"))
		return R_HEALTH;
	if (!pl_strcmp(&rest, "events"))
		return R_EVENTS;
	if (!pl_strcmp(&rest, "recordings") || !pl_strcmp(&rest, "recordings/"))
		return R_RECS;
	if (rest.l > 11 && !memcmp(rest.p, "recordings/", 11)) {
		const char *slash;

		*id = rest;
		pl_advance(id, 11);
		slash = pl_strchr(id, '/');
		if (!slash)
			return R_REC;
		act->p = slash + 1;
		act->l = id->l - (size_t)(slash + 1 - id->p);
		id->l = (size_t)(slash - id->p);
		if (!pl_strcmp(act, "pause") || !pl_strcmp(act, "resume") ||
		    !pl_strcmp(act, "media"))
			return R_REC_ACT;
		return R_NONE;
	}
	if (rest.l > 6 && !memcmp(rest.p, "calls/", 6)) {
		*id = rest;
		pl_advance(id, 6);
		return R_CALL;
	}
	return R_NONE;
}

static void request_h(struct http_conn *conn, const struct http_msg *msg,
		      void *arg)
{
	struct api *api = arg;
	struct pl id = PL_INIT, act = PL_INIT;
	enum route r;
	uint16_t scode;
	struct sa peer;

	++api->st.requests;
	/* the connection may be gone once a reply failed or an upgrade
	 * took it over: keep the peer for the log line */
	sa_cpy(&peer, http_conn_peer(conn));

	if (!authorized(api, msg)) {
		++api->st.unauthorized;
		scode = reply_error(api, conn, 401, "Unauthorized",
				    "WWW-Authenticate: Bearer realm=\"tally\""
				    "\r\n", "missing or wrong bearer token");
		goto out;
	}
	r = route_of(&msg->path, &id, &act);
	if (r == R_NONE) {
		scode = reply_error(api, conn, 404, "Not Found", NULL,
				    "no such resource");
		goto out;
	}
	if (r == R_REC_ACT ? pl_strcmp(&msg->met, "POST") != 0 :
	    (pl_strcmp(&msg->met, "GET") &&
	     !(r == R_RECS && !pl_strcmp(&msg->met, "POST")) &&
	     !(r == R_REC && !pl_strcmp(&msg->met, "DELETE")))) {
		scode = reply_error(api, conn, 405, "Method Not Allowed",
				    r == R_RECS ? "Allow: GET, POST\r\n" :
				    r == R_REC ? "Allow: GET, DELETE\r\n" :
				    r == R_REC_ACT ? "Allow: POST\r\n" :
				    "Allow: GET\r\n", "method not allowed");
		goto out;
	}

	switch (r) {
	case R_CALLS:
		scode = reply_json(api, conn, 200, "OK", NULL, calls_print,
				   api);
		break;
	case R_CALL:
		scode = get_call(api, conn, &id);
		break;
	case R_HEALTH:
		scode = reply_json(api, conn, 200, "OK", NULL, health_print,
				   api);
		break;
	case R_EVENTS:
		scode = get_events(api, conn, msg);
		break;
	case R_RECS:
		if (!pl_strcmp(&msg->met, "POST"))
			scode = post_recording(api, conn, msg);
		else
			scode = reply_json(api, conn, 200, "OK", NULL,
					   recs_print, api);
		break;
	case R_REC:
		scode = one_recording(api, conn, &id,
				      !pl_strcmp(&msg->met, "DELETE"));
		break;
	case R_REC_ACT:
		if (!api->recs)
			scode = reply_error(api, conn, 503,
					    "Service Unavailable", NULL,
					    "recording is not available");
		else
			scode = rec_change(api, conn, msg, &id, &act);
		break;
	default:
		scode = reply_error(api, conn, 404, "Not Found", NULL,
				    "no such resource");
		break;
	}
 out:
	log_re(LOG_LVL_DEBUG, "api: %J %H %H -> %u", &peer, log_safe,
		&msg->met, log_safe, &msg->path, scode);
}

/* ---- lifetime ---- */

/* Recordings for POST/GET/DELETE /api/v1/recordings (NULL: none); RS is
 * borrowed: set NULL before it goes. */
void api_recs(struct api *api, struct recs *rs)
{
	if (api)
		api->recs = rs;
}

static void api_destructor(void *arg)
{
	struct api *api = arg;

	if (api_cur == api)
		api_cur = NULL;
	api_events_close(api);
	mem_deref(api->hs);
	mem_deref(api->ws);
}

/*
 * api_alloc: serve the API on LISTEN ("127.0.0.1:8080") with bearer TOKEN
 * (required, shorter than API_TOKEN_MAX; port 0 picks a free port, see
 * http_sock_tcp()); calls are read from B (borrowed;
 * it must outlive the api, or be NULL for an API without calls). The new
 * api also receives api_call_event()s that carry no ARG.
 * Returns 0 and *AP (owned by the caller; deref to stop serving), EINVAL
 * (bad LISTEN or TOKEN), or the errno of the listen (EADDRINUSE, ...).
 */
int api_alloc(struct api **ap, const char *listen, const char *token,
	      struct b2bua *b)
{
	struct api *api;
	struct sa laddr;
	int err;

	if (!ap || !listen || !token || !token[0] ||
	    strlen(token) >= API_TOKEN_MAX)
		return EINVAL;
	if (sa_decode(&laddr, listen, strlen(listen)))
		return EINVAL;

	api = mem_zalloc(sizeof(*api), api_destructor);
	if (!api)
		return ENOMEM;
	str_ncpy(api->token, token, sizeof(api->token));
	api->b2bua = b;
	list_init(&api->clients);

	err = websock_alloc(&api->ws, NULL, NULL);
	if (err)
		goto out;
	err = http_listen(&api->hs, &laddr, request_h, api);
	if (err)
		goto out;
	api_cur = api;
	log_re(LOG_LVL_INFO, "api: listening on %J", &laddr);
 out:
	if (err)
		mem_deref(api);
	else
		*ap = api;
	return err;
}
