/*
 * mediapool.c: the media servers tally-sip anchors calls on (tally-media or
 * rtpengine, ng protocol), their health, and the SDP requests sent to them.
 *
 * Health, per server, a small state machine driven by ng pings:
 *
 *   UNKNOWN --pong--> UP --2 missed pings--> DOWN --pong--> UP
 *      \                 \--ETIMEDOUT on offer/answer/delete--^ (DOWN)
 *       \--2 missed pings--> DOWN
 *
 * A server starts UNKNOWN and is pinged at once, then every ping_ms. A ping
 * still unanswered when the next one is due, or one that failed (ETIMEDOUT,
 * an undecodable reply), is a miss; any decodable reply is an answer (a
 * server that says "error" to a ping is alive). Example with ping_ms = 1000
 * and the daemon killed at t = 10.2 s: the pings at 11 s and 12 s go
 * unanswered, at 13 s the second miss is counted and the log says
 * "media: 127.0.0.1:2223 is down: no answer to 2 pings"; the first pong after
 * a restart logs "media: 127.0.0.1:2223 is up".
 *
 * Choice (mediapool_pick): the UP server with the fewest calls; only while no
 * server is UP yet, an UNKNOWN one (the first pong takes a round trip after
 * start-up, and refusing the calls of that moment helps nobody); never a DOWN
 * one. Ties go to the server listed first.
 *
 * SDP requests are built as Kamailio's rtpengine module builds them for
 * rtpengine_offer("replace-origin replace-session-connection ICE=remove"),
 * keys in bencode's sorted order:
 *   d3:ICE6:remove7:call-id..7:command5:offer8:from-tag..
 *    7:replacel6:origin18:session-connectione3:sdp..[6:to-tag..]e
 *
 * Ownership: the pool owns its servers; each server owns its ngc, its ping
 * timer and a context (struct msreq) per SDP or delete request in flight.
 * The context holds one reference to its ngc request; the caller of
 * mediasrv_offer/answer gets another through *reqp. When the reply comes and
 * the context holds the only reference left, the caller has cancelled: the
 * handler is not called. A context lives at most until its request completes
 * (2.5 s) or its server is freed.
 */
#include <errno.h>
#include <string.h>
#include "log.h"
#include "sipd.h"

enum { MS_MISSES_DOWN = 2, MS_NAME_MAX = 64, MS_WHY_MAX = 256 };

enum ms_state { MS_UNKNOWN = 0, MS_UP, MS_DOWN };

struct mediapool {
	struct list srvs;          /* struct mediasrv, in configured order */
	unsigned n;
	uint32_t ping_ms;
};

struct mediasrv {
	struct le le;              /* in mediapool.srvs */
	struct mediapool *mp;      /* borrowed: the owner */
	struct ngc *ngc;
	struct sa addr;
	char name[MS_NAME_MAX];    /* "127.0.0.1:2223", "[::1]:2223" */
	enum ms_state state;
	unsigned missed;           /* consecutive pings without answer */
	unsigned calls;
	struct tmr tmr;            /* next ping */
	struct ngc_req *ping;      /* outstanding ping, ours */
	struct list reqs;          /* struct msreq in flight */
};

struct msreq {                     /* one offer/answer/delete in flight */
	struct le le;              /* in mediasrv.reqs */
	struct mediasrv *ms;       /* borrowed: the owner */
	struct ngc_req *req;       /* our reference */
	const char *cmd;           /* "offer", "answer", "delete" (static) */
	char callid[128];          /* for the log */
	bool shared;               /* the caller got a reference too */
	media_sdp_h *h;            /* NULL for delete */
	void *arg;
};

static void ms_set_down(struct mediasrv *ms, const char *why)
{
	if (ms->state == MS_DOWN)
		return;
	ms->state = MS_DOWN;
	log_info("media: %s is down: %s", ms->name, why);
}

static void ms_set_up(struct mediasrv *ms)
{
	ms->missed = 0;
	if (ms->state == MS_UP)
		return;
	ms->state = MS_UP;
	log_info("media: %s is up", ms->name);
}

static void ms_missed(struct mediasrv *ms)
{
	char why[64];

	++ms->missed;
	if (ms->missed < MS_MISSES_DOWN || ms->state == MS_DOWN)
		return;
	re_snprintf(why, sizeof(why), "no answer to %u pings", ms->missed);
	ms_set_down(ms, why);
}

static void ping_resp(int err, const struct benc_node *reply, void *arg)
{
	struct mediasrv *ms = arg;
	(void)reply;

	ms->ping = mem_deref(ms->ping);
	if (err) {
		log_debug("media: %s: ping failed: %s", ms->name,
			  strerror(err));
		ms_missed(ms);
		return;
	}
	ms_set_up(ms);
}

static void ping_send(void *arg)
{
	struct mediasrv *ms = arg;
	struct mbuf *mb;
	int err;

	tmr_start(&ms->tmr, ms->mp->ping_ms, ping_send, ms);
	if (ms->ping) {            /* the last one is still unanswered */
		ms->ping = mem_deref(ms->ping);
		ms_missed(ms);
	}
	mb = mbuf_alloc(32);
	if (!mb)
		return;
	err = benc_dict_begin(mb) || benc_kv_str(mb, "command", "ping") ||
	      benc_end(mb) ? ENOMEM : 0;
	if (!err)
		err = ngc_request(ms->ngc, &ms->ping, mb, ping_resp, ms);
	if (err) {
		log_debug("media: %s: ping not sent: %s", ms->name,
			  strerror(err));
		ms_missed(ms);
	}
	mem_deref(mb);
}

static void msreq_destructor(void *arg)
{
	struct msreq *q = arg;

	list_unlink(&q->le);
	mem_deref(q->req);
}

static void msreq_resp(int err, const struct benc_node *reply, void *arg)
{
	struct msreq *q = arg;
	struct mediasrv *ms = q->ms;
	char why[MS_WHY_MAX] = "", down[64];
	struct pl result, reason, sdp = PL_INIT;
	bool cancelled = q->shared && mem_nrefs(q->req) <= 1;
	media_sdp_h *h = cancelled ? NULL : q->h;
	void *harg = q->arg;

	if (err == ETIMEDOUT) {
		re_snprintf(why, sizeof(why), "no answer from media server %s",
			    ms->name);
		re_snprintf(down, sizeof(down), "no answer to %s", q->cmd);
		ms_set_down(ms, down);
	}
	else if (err) {
		re_snprintf(why, sizeof(why), "bad reply from media server %s",
			    ms->name);
	}
	else if (benc_dict_pl(reply, "result", &result)) {
		err = EBADMSG;
		re_snprintf(why, sizeof(why), "reply from media server %s "
			    "without result", ms->name);
	}
	else if (!pl_strcmp(&result, "error")) {
		err = EPROTO;
		if (benc_dict_pl(reply, "error-reason", &reason))
			pl_set_str(&reason, "error without reason");
		re_snprintf(why, sizeof(why), "%r", &reason);
	}
	else if (h && benc_dict_pl(reply, "sdp", &sdp)) {
		err = EBADMSG;
		re_snprintf(why, sizeof(why), "reply from media server %s "
			    "without sdp", ms->name);
	}

	if (err)
		log_warn("media: [%s] %s on %s failed: %s%s", q->callid,
			 q->cmd, ms->name, why,
			 cancelled ? " (cancelled)" : "");
	else
		log_debug("media: [%s] %s on %s ok", q->callid, q->cmd,
			  ms->name);

	/* The handler may free the pool: nothing of it is used after. */
	mem_deref(q);
	if (h)
		h(err, err ? why : NULL, err ? NULL : &sdp, harg);
}

static int msreq_send(struct mediasrv *ms, struct ngc_req **reqp,
		      const char *cmd, const char *callid, struct mbuf *body,
		      media_sdp_h *h, void *arg)
{
	struct msreq *q;
	int err;

	q = mem_zalloc(sizeof(*q), msreq_destructor);
	if (!q)
		return ENOMEM;
	q->ms = ms;
	q->cmd = cmd;
	str_ncpy(q->callid, callid, sizeof(q->callid));
	q->h = h;
	q->arg = arg;
	q->shared = reqp != NULL;
	err = ngc_request(ms->ngc, &q->req, body, msreq_resp, q);
	if (err) {
		log_warn("media: [%s] %s to %s not sent: %s", callid, cmd,
			 ms->name, strerror(err));
		mem_deref(q);
		return err;
	}
	list_append(&ms->reqs, &q->le, q);
	if (reqp)
		*reqp = mem_ref(q->req);
	return 0;
}

static int sdp_request(struct mediasrv *ms, struct ngc_req **reqp,
		       const char *cmd, const struct media_sdp_params *p,
		       media_sdp_h *h, void *arg)
{
	struct mbuf *mb;
	int err = 0;

	if (!ms || !p || !p->callid || !*p->callid || !p->from_tag ||
	    !*p->from_tag || !p->sdp || !pl_isset(p->sdp) || !h)
		return EINVAL;
	if (!strcmp(cmd, "answer") && (!p->to_tag || !*p->to_tag))
		return EINVAL;
	mb = mbuf_alloc(256 + p->sdp->l);
	if (!mb)
		return ENOMEM;
	err |= benc_dict_begin(mb);
	err |= benc_kv_str(mb, "ICE", "remove");
	err |= benc_kv_str(mb, "call-id", p->callid);
	err |= benc_kv_str(mb, "command", cmd);
	err |= benc_kv_str(mb, "from-tag", p->from_tag);
	err |= benc_str(mb, "replace");
	err |= benc_list_begin(mb);
	err |= benc_str(mb, "origin");
	err |= benc_str(mb, "session-connection");
	err |= benc_end(mb);
	err |= benc_kv_pl(mb, "sdp", p->sdp);
	if (p->to_tag && *p->to_tag)
		err |= benc_kv_str(mb, "to-tag", p->to_tag);
	err |= benc_end(mb);
	if (err)
		err = ENOMEM;
	else
		err = msreq_send(ms, reqp, cmd, p->callid, mb, h, arg);
	mem_deref(mb);
	return err;
}

/*
 * Send the caller's SDP offer (P->sdp, P->callid, P->from_tag; P->to_tag
 * when known, e.g. on a re-INVITE) to MS. H gets one call (unless cancelled
 * through *reqp, see ngc_request): 0 and the rewritten SDP; or EPROTO and the
 * server's error-reason, ETIMEDOUT (MS is then marked down) or EBADMSG, with
 * a sentence. P and its strings are copied.
 * Returns 0, EINVAL, EBUSY, ENOMEM or a socket errno (H is then not called).
 */
int mediasrv_offer(struct mediasrv *ms, struct ngc_req **reqp,
		   const struct media_sdp_params *p, media_sdp_h *h, void *arg)
{
	return sdp_request(ms, reqp, "offer", p, h, arg);
}

/* The callee's SDP answer; as mediasrv_offer, P->to_tag required. */
int mediasrv_answer(struct mediasrv *ms, struct ngc_req **reqp,
		    const struct media_sdp_params *p, media_sdp_h *h, void *arg)
{
	return sdp_request(ms, reqp, "answer", p, h, arg);
}

/*
 * Delete CALLID (the whole call) on MS. Fire and forget: a failure is logged
 * (and ETIMEDOUT marks MS down). Returns 0, EINVAL, EBUSY, ENOMEM.
 */
int mediasrv_delete(struct mediasrv *ms, const char *callid)
{
	struct mbuf *mb;
	int err;

	if (!ms || !callid || !*callid)
		return EINVAL;
	mb = mbuf_alloc(64 + strlen(callid));
	if (!mb)
		return ENOMEM;
	err = benc_dict_begin(mb) || benc_kv_str(mb, "call-id", callid) ||
	      benc_kv_str(mb, "command", "delete") || benc_end(mb) ?
	      ENOMEM : 0;
	if (!err)
		err = msreq_send(ms, NULL, "delete", callid, mb, NULL, NULL);
	mem_deref(mb);
	return err;
}

static void ms_destructor(void *arg)
{
	struct mediasrv *ms = arg;

	tmr_cancel(&ms->tmr);
	list_unlink(&ms->le);
	ms->ping = mem_deref(ms->ping);
	/* The ngc first: it detaches every request still pending, so no
	 * handler runs while the contexts go. */
	ms->ngc = mem_deref(ms->ngc);
	list_flush(&ms->reqs);
}

static int ms_add(struct mediapool *mp, const struct pl *addr)
{
	struct mediasrv *ms;
	int err;

	ms = mem_zalloc(sizeof(*ms), ms_destructor);
	if (!ms)
		return ENOMEM;
	tmr_init(&ms->tmr);
	list_init(&ms->reqs);
	ms->mp = mp;
	list_append(&mp->srvs, &ms->le, ms);
	++mp->n;

	err = sa_decode(&ms->addr, addr->p, addr->l);
	if (err || !sa_port(&ms->addr)) {
		log_err("media: bad media server address '%.*s' "
			"(ADDR:PORT or [ADDR6]:PORT)", (int)addr->l, addr->p);
		return EINVAL;
	}
	re_snprintf(ms->name, sizeof(ms->name), "%J", &ms->addr);
	err = ngc_alloc(&ms->ngc, &ms->addr);
	if (err) {
		log_err("media: %s: no socket for the ng client: %s",
			ms->name, strerror(err));
		return err;
	}
	ping_send(ms);
	return 0;
}

static void pool_destructor(void *arg)
{
	struct mediapool *mp = arg;

	list_flush(&mp->srvs);
}

/*
 * Create the pool for LIST ("127.0.0.1:2223,[::1]:2224"; blanks around the
 * commas allowed) and ping every server now and every PING_MS (0: 1000).
 * Returns 0 (*mpp: a new mem object, the caller's), EINVAL (empty list or a
 * bad entry, logged), ENOMEM or a socket errno.
 */
int mediapool_alloc(struct mediapool **mpp, const char *list,
		    uint32_t ping_ms)
{
	struct mediapool *mp;
	struct pl rest, item;
	int err = 0;

	if (!mpp || !list)
		return EINVAL;
	mp = mem_zalloc(sizeof(*mp), pool_destructor);
	if (!mp)
		return ENOMEM;
	list_init(&mp->srvs);
	mp->ping_ms = ping_ms ? ping_ms : 1000;

	pl_set_str(&rest, list);
	while (sipd_list_next(&rest, &item)) {
		err = ms_add(mp, &item);
		if (err)
			goto out;
	}
	if (!mp->n) {
		log_err("media: no media server configured");
		err = EINVAL;
	}

 out:
	if (err)
		mem_deref(mp);
	else
		*mpp = mp;
	return err;
}

/* A healthy server with the fewest calls (see the banner for UNKNOWN), or
 * NULL if every server is down. The server stays the pool's. */
struct mediasrv *mediapool_pick(struct mediapool *mp)
{
	struct mediasrv *best = NULL;
	struct le *le;

	if (!mp)
		return NULL;
	LIST_FOREACH(&mp->srvs, le) {
		struct mediasrv *ms = le->data;

		if (ms->state == MS_DOWN)
			continue;
		if (!best ||
		    (ms->state == MS_UP && best->state != MS_UP) ||
		    (ms->state == best->state && ms->calls < best->calls))
			best = ms;
	}
	return best;
}

unsigned mediapool_count(const struct mediapool *mp)
{
	return mp ? mp->n : 0;
}

/* The I-th configured server (0-based), or NULL. */
struct mediasrv *mediapool_get(struct mediapool *mp, unsigned i)
{
	struct le *le;

	if (!mp)
		return NULL;
	for (le = list_head(&mp->srvs); le && i; le = le->next, i--)
		;
	return le ? le->data : NULL;
}

/* Count calls anchored on MS (+1 when a call takes it, -1 when it ends);
 * never below 0. */
void mediasrv_calls_add(struct mediasrv *ms, int delta)
{
	if (!ms)
		return;
	if (delta < 0 && (unsigned)-delta > ms->calls)
		ms->calls = 0;
	else
		ms->calls = (unsigned)((int)ms->calls + delta);
}

unsigned mediasrv_calls(const struct mediasrv *ms)
{
	return ms ? ms->calls : 0;
}

/* True once MS answered its last ping (UP); false while UNKNOWN or DOWN. */
bool mediasrv_healthy(const struct mediasrv *ms)
{
	return ms && ms->state == MS_UP;
}

const char *mediasrv_name(const struct mediasrv *ms)
{
	return ms ? ms->name : "";
}

/* MS's ng client, for requests built elsewhere (ngsub.c); NULL if MS is. */
struct ngc *mediasrv_ngc(struct mediasrv *ms)
{
	return ms ? ms->ngc : NULL;
}

