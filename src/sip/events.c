/*
 * events.c: the WebSocket event stream, GET /api/v1/events.
 *
 * A client that passed the token check (api.c) is upgraded to a WebSocket
 * and then only listens: every call event the B2BUA reports is sent to every
 * client as one text frame holding one JSON object:
 *
 *   {"event":"call.created","time":"2025-01-02T03:04:05.678Z",
 *    "call":{"id":"c1-3f2a1b","state":"init",...}}
 *   {"event":"call.answered",...}
 *   {"event":"call.ended",...,"call":{...,"cause":"caller hangup"}}
 *
 * Types: call.created, call.answered, call.updated, call.ended (see sipd.h),
 * and the recording events recording.<audio|video>.<started|rejected|
 * stopped|failed> (rec.h; api_rec_event below has an example).
 * The event text is printed once and the same bytes go to every client.
 *
 * Back pressure: a client that does not read makes its TCP send queue grow;
 * once libre holds API_WS_TXQ_MAX bytes for it (on top of what the kernel
 * buffers) the send fails and the client is cut off, counted in
 * ws_dropped. Memory per client is thus bounded and one stuck client never
 * slows the others. Frames a client sends us are ignored; pings are
 * answered by libre, which also pings every API_WS_KEEPALIVE_MS.
 *
 * Every frame header a client sends is checked by wsguard.c before libre's
 * decoder sees it (libre 1.1.0 overflows its buffer on a 64-bit length
 * near 2^64): a malformed frame gets close 1002, one longer than
 * API_WS_FRAME_MAX close 1009, and the connection is cut, counted in
 * ws_refused and logged.
 */
#include <errno.h>
#include <string.h>
#include "log.h"
#include "api.h"
#include "rec.h"

struct evclient {
	struct le le;                 /* in api->clients */
	struct api *api;              /* borrowed: owner */
	struct websock_conn *wc;
	struct wsguard *guard;        /* frame checks on wc's connection */
	struct sa peer;
	uint64_t frames;
};

static void evclient_destructor(void *arg)
{
	struct evclient *c = arg;

	list_unlink(&c->le);
	/* the guard first: it leaves the connection deaf, so the websock
	 * libre keeps for its closing handshake decodes nothing more */
	mem_deref(c->guard);
	/* an open stream gets a close frame (1001 Going Away) from libre */
	mem_deref(c->wc);
}

static void recv_h(const struct websock_hdr *hdr, struct mbuf *mb, void *arg)
{
	(void)hdr;
	(void)mb;
	(void)arg;
	/* listeners have nothing to say; their frames are ignored */
}

static void refuse_h(uint16_t code, const char *why, void *arg)
{
	struct evclient *c = arg;

	++c->api->st.ws_refused;
	log_re(LOG_LVL_WARN, "api: event client %J cut off: %s (close %u)",
	       &c->peer, why, (unsigned)code);
	(void)websock_close(c->wc, (enum websock_scode)code, "%s", why);
}

static void close_h(int err, void *arg)
{
	struct evclient *c = arg;

	log_re(LOG_LVL_DEBUG, "api: event client %J closed after %llu "
		"frames (%m)", &c->peer, (unsigned long long)c->frames, err);
	mem_deref(c);
}

/*
 * api_events_accept: see api.h. On success the WebSocket connection owns
 * the TCP connection (libre detaches it from CONN) and the client is in
 * api->clients until it closes or is dropped.
 */
int api_events_accept(struct api *api, struct http_conn *conn,
		      const struct http_msg *msg)
{
	struct evclient *c;
	int err;

	if (list_count(&api->clients) >= API_WS_CLIENTS_MAX)
		return EMFILE;
	c = mem_zalloc(sizeof(*c), evclient_destructor);
	if (!c)
		return ENOMEM;
	c->api = api;
	sa_cpy(&c->peer, http_conn_peer(conn));

	err = websock_accept(&c->wc, api->ws, conn, msg, API_WS_KEEPALIVE_MS,
			     recv_h, close_h, c);
	if (err) {
		mem_deref(c);
		return err;
	}
	err = wsguard_attach(&c->guard, websock_tcp(c->wc), API_WS_FRAME_MAX,
			     refuse_h, c);
	if (err) {
		mem_deref(c);
		return err;
	}
	tcp_conn_txqsz_set(websock_tcp(c->wc), API_WS_TXQ_MAX);
	list_append(&api->clients, &c->le, c);
	++api->st.ws_accepted;
	log_re(LOG_LVL_DEBUG, "api: event client %J connected (%u now)",
		&c->peer, list_count(&api->clients));
	return 0;
}

void api_events_close(struct api *api)
{
	struct le *le;

	while ((le = list_head(&api->clients)))
		mem_deref(le->data);
}

unsigned api_events_count(const struct api *api)
{
	return api ? list_count(&api->clients) : 0;
}

/* Send the text in MB to every client; a client whose send fails is cut. */
static void broadcast(struct api *api, const struct mbuf *mb)
{
	struct le *le;
	int err;

	for (le = list_head(&api->clients); le;) {
		struct evclient *c = le->data;

		le = le->next;
		err = websock_send(c->wc, WEBSOCK_TEXT, "%b", mb->buf,
				   mb->end);
		if (err) {
			++api->st.ws_dropped;
			log_re(LOG_LVL_WARN, "api: event client %J dropped "
				"(%s): %m", &c->peer,
				err == ENOSPC ? "not reading" : "send failed",
				err);
			mem_deref(c);
			continue;
		}
		++c->frames;
		++api->st.frames;
	}
}

struct event_text {
	const char *type;
	const struct bcall *call;
	uint64_t now;
};

static int event_print(struct re_printf *pf, void *arg)
{
	const struct event_text *ev = arg;

	return re_hprintf(pf, "{\"event\":%H,\"time\":%H,\"call\":%H}",
			  api_jstr, ev->type, api_jtime, &ev->now,
			  bcall_json, ev->call);
}

/* One event to every client of API (none: the event is only counted):
 * PH(pf, EV) prints its JSON; LOGID and TYPE name it in a log line. */
static void event_send(struct api *api, re_printf_h *ph, void *ev,
		       const char *logid, const char *type)
{
	struct mbuf *mb;
	int err;

	if (!api)
		return;
	++api->st.events;
	if (!list_head(&api->clients))
		return;
	mb = mbuf_alloc(2048);
	if (!mb)
		return;
	err = mbuf_printf(mb, "%H", ph, ev);
	if (err)
		log_re(LOG_LVL_WARN, "api: [%s] cannot print event %s: %m",
		       logid, type, err);
	else
		broadcast(api, mb);
	mem_deref(mb);
}

/*
 * api_call_event: a bcall_event_h. ARG is the struct api, or NULL for the
 * api most recently allocated (none: the event is dropped). CALL is only
 * read during the call. Sends synchronously; a client whose send fails
 * (slow: ENOSPC, or broken) is disconnected.
 */
void api_call_event(const char *type, const struct bcall *call, void *arg)
{
	struct event_text ev = {type, call, sipd_now_ms()};

	if (type && call)
		event_send(arg ? arg : api_active(), event_print, &ev,
			   call->callid, type);
}

struct rec_event_text {
	const char *type;
	const struct recording *rec;
	const char *medium;
	const char *reason;
	uint64_t now;
};

static int rec_event_print(struct re_printf *pf, void *arg)
{
	const struct rec_event_text *ev = arg;
	const struct recording *rec = ev->rec;

	return re_hprintf(pf, "{\"event\":%H,\"time\":%H,\"time_ms\":%llu,"
			  "\"call_id\":%H,\"recording_id\":%H,\"medium\":%H,"
			  "\"party\":\"%s\",\"recorder\":%H,\"reason\":%H,"
			  "\"recording\":%H}",
			  api_jstr, ev->type, api_jtime, &ev->now,
			  (unsigned long long)ev->now, api_jstr, rec->call,
			  api_jstr, rec->id, api_jstr, ev->medium,
			  rec_party_name(rec->party), api_jstr,
			  rec->recorders[rec->cur], api_jstr, ev->reason,
			  rec_json, rec);
}

/*
 * api_rec_event: a rec_event_h (rec.h). ARG is the struct api (NULL: the
 * active one). One text frame per event, e.g.
 *   {"event":"recording.video.rejected","time":"2026-...Z",
 *    "time_ms":1798000000123,"call_id":"c1-3f2a1b",
 *    "recording_id":"r1-9f3a2c","medium":"video","party":"both",
 *    "recorder":"sip:srs@127.0.0.1:5090","reason":"policy: audio only",
 *    "recording":{...rec_json...}}
 * "call_id" is tally's call id (the "id" of the call's events).
 */
void api_rec_event(const char *type, const struct recording *rec,
		   enum rec_medium m, const char *reason, void *arg)
{
	struct rec_event_text ev = {type, rec, m == REC_VIDEO ? "video" :
				    "audio", reason, sipd_now_ms()};

	if (type && rec)
		event_send(arg ? arg : api_active(), rec_event_print, &ev,
			   rec->id, type);
}
