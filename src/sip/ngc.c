/*
 * ngc.c: an ng protocol client: one rtpengine-compatible control endpoint
 * (tally-media or rtpengine) reached over UDP from the libre main loop.
 *
 * Wire format, worked example (see docs/ng.md):
 *   request  "3f2a91c0_17 d7:command4:pinge"
 *   reply    "3f2a91c0_17 d6:result4:ponge"
 * The cookie is "<random 32-bit prefix of this ngc>_<sequence number>", so it
 * is unique per request and a restarted tally-sip does not collide with the
 * server's 30 s reply cache. The server answers with the same cookie; that is
 * how a reply finds its request.
 *
 * Retransmission: UDP may drop either datagram, and the server executes a
 * request once and replays its cached reply for a retransmission, so resending
 * the same bytes is always safe. A request is sent at t = 0 and resent every
 * NGC_RETRANS_MS while unanswered, NGC_TRIES sends in all (0, 500, ... 2000
 * ms); NGC_RETRANS_MS after the last send it fails with ETIMEDOUT (t = 2.5 s).
 *
 * Ownership: the ngc owns its socket and the table of pending requests. A
 * request handed out through *reqp belongs to the caller (one reference);
 * the ngc only links it into its table. Dereferencing it cancels: it is
 * unlinked, its timer stopped, and its handler is never called. After the
 * handler ran the request is inert, and the caller still derefs it (doing so
 * inside the handler is fine). Without reqp the ngc holds the reference and
 * drops it when the request completes. Freeing the ngc detaches every pending
 * request without calling any handler.
 *
 * Network input is never trusted: a datagram without a cookie, from another
 * address, or with a cookie nobody waits for (a late duplicate, a cancelled
 * request) is counted and dropped; a matching reply that is not a bencoded
 * dictionary fails its request with EBADMSG.
 */
#include <errno.h>
#include <string.h>
#include "log.h"
#include "sipd.h"

enum {
	NGC_RETRANS_MS = 500,
	NGC_TRIES = 5,
	NGC_MAX_PENDING = 4096,
	NGC_COOKIE_MAX = 32,
	NGC_HASH_BUCKETS = 256,
	NGC_TICK_MS = 100,
};

struct ngc {
	struct udp_sock *us;
	struct sa server;
	char name[64];              /* "127.0.0.1:2223", for the log */
	struct hash *pending;       /* struct ngc_req by cookie */
	unsigned npending;
	uint32_t prefix;            /* random cookie prefix */
	uint64_t seq;
	/* counters (dropped input), logged at DEBUG */
	uint64_t n_garbage;         /* no cookie, or from a foreign address */
	uint64_t n_stray;           /* cookie of no pending request */
	/* Retransmission runs on one ticking timer for all requests, not a
	 * timer per request: with libre's own sorted timer list every short
	 * timer walked past thousands of transaction timers (tally-sip now
	 * replaces that list, tmrq.c; the tick is still the cheaper). */
	struct list waitq;          /* pending requests, oldest first */
	struct tmr tick;
};

struct ngc_req {
	struct le he;               /* in ngc.pending */
	struct ngc *ngc;            /* borrowed; NULL once completed/detached */
	char cookie[NGC_COOKIE_MAX];
	size_t cookie_len;
	struct mbuf *mb;            /* "<cookie> <body>", resent as is */
	struct le qe;               /* in ngc.waitq */
	uint64_t next_ms;           /* when to resend or give up (tmr_jiffies) */
	unsigned sent;
	bool ngc_owned;             /* no reqp: the ngc holds the reference */
	ngc_resp_h *resph;
	void *arg;
};

/* Take R out of its ngc: no timer, no handler, not findable. */
static void req_detach(struct ngc_req *r)
{
	list_unlink(&r->qe);
	if (r->ngc) {
		hash_unlink(&r->he);
		--r->ngc->npending;
		r->ngc = NULL;
	}
	r->resph = NULL;
}

static void req_destructor(void *arg)
{
	struct ngc_req *r = arg;

	req_detach(r);
	mem_deref(r->mb);
}

/* Finish R and call its handler. Nothing of R or the ngc is touched after
 * the handler: it may free either. */
static void req_complete(struct ngc_req *r, int err,
			 const struct benc_node *reply)
{
	ngc_resp_h *h = r->resph;
	void *arg = r->arg;
	bool owned = r->ngc_owned;

	req_detach(r);
	if (owned)
		mem_deref(r);
	if (h)
		h(err, reply, arg);
}

static void tick_h(void *arg);

static void tick_arm(struct ngc *ngc, uint64_t ms)
{
	if (!list_isempty(&ngc->waitq))
		tmr_start(&ngc->tick, ms, tick_h, ngc);
}

/* Every NGC_TICK_MS while requests wait: resend what is due; give up on at
 * most one request per tick, because its handler may free the ngc. */
static void tick_h(void *arg)
{
	struct ngc *ngc = arg;
	uint64_t now = tmr_jiffies();
	struct le *le = list_head(&ngc->waitq);

	while (le) {
		struct ngc_req *r = le->data;
		int err;

		le = le->next;
		if (now < r->next_ms)
			continue;
		if (r->sent >= NGC_TRIES) {
			log_debug("ngc: %s: request %s: no answer after %u sends",
				  ngc->name, r->cookie, r->sent);
			tmr_start(&ngc->tick, 0, tick_h, ngc);
			req_complete(r, ETIMEDOUT, NULL);
			return;
		}
		r->mb->pos = 0;
		err = udp_send(ngc->us, &ngc->server, r->mb);
		if (err)
			log_debug("ngc: %s: resend of %s failed: %s",
				  ngc->name, r->cookie, strerror(err));
		++r->sent;
		r->next_ms = now + NGC_RETRANS_MS;
	}
	tick_arm(ngc, NGC_TICK_MS);
}

static bool cookie_cmp(struct le *le, void *arg)
{
	const struct ngc_req *r = le->data;
	const struct pl *cookie = arg;

	return r->cookie_len == cookie->l &&
	       0 == memcmp(r->cookie, cookie->p, cookie->l);
}

static void ngc_recv(const struct sa *src, struct mbuf *mb, void *arg)
{
	struct ngc *ngc = arg;
	const uint8_t *p = mbuf_buf(mb);
	size_t len = mbuf_get_left(mb), i;
	const struct benc_node *root;
	struct benc *doc = NULL;
	struct ngc_req *r;
	struct pl cookie;
	struct le *le;
	int err;

	if (!sa_cmp(src, &ngc->server, SA_ALL)) {
		++ngc->n_garbage;
		log_debug("ngc: %s: datagram from a foreign address "
			  "dropped", ngc->name);
		return;
	}
	for (i = 0; i < len && i < NGC_COOKIE_MAX && p[i] != ' '; i++)
		;
	if (i == 0 || i >= len || p[i] != ' ') {
		++ngc->n_garbage;
		log_debug("ngc: %s: reply without cookie dropped (%llu so far)",
			  ngc->name, (unsigned long long)ngc->n_garbage);
		return;
	}
	cookie.p = (const char *)p;
	cookie.l = i;
	le = hash_lookup(ngc->pending, hash_joaat_pl(&cookie), cookie_cmp,
			 &cookie);
	if (!le) {
		++ngc->n_stray;
		log_debug("ngc: %s: reply for unknown cookie %.*s dropped "
			  "(%llu so far)", ngc->name, (int)cookie.l, cookie.p,
			  (unsigned long long)ngc->n_stray);
		return;
	}
	r = le->data;

	err = benc_decode(&doc, p + i + 1, len - i - 1, NULL);
	if (err || benc_root(doc)->type != BENC_DICT) {
		log_debug("ngc: %s: undecodable reply to %s", ngc->name,
			  r->cookie);
		mem_deref(doc);
		req_complete(r, EBADMSG, NULL);
		return;
	}
	root = benc_root(doc);
	req_complete(r, 0, root);
	mem_deref(doc);
}

static bool req_flush(struct le *le, void *arg)
{
	struct ngc_req *r = le->data;
	bool owned = r->ngc_owned;
	(void)arg;

	req_detach(r);
	if (owned)
		mem_deref(r);
	return false;
}

static void ngc_destructor(void *arg)
{
	struct ngc *ngc = arg;

	tmr_cancel(&ngc->tick);
	hash_apply(ngc->pending, req_flush, NULL);
	mem_deref(ngc->pending);
	mem_deref(ngc->us);
}

/*
 * Create a client for the ng endpoint SERVER. Its socket is bound to an
 * ephemeral port: on the loopback address if SERVER is loopback, else on the
 * wildcard address of SERVER's family.
 * Returns 0 (*ngcp: a new mem object, the caller's), EINVAL, ENOMEM or the
 * socket's errno.
 */
int ngc_alloc(struct ngc **ngcp, const struct sa *server)
{
	struct ngc *ngc;
	struct sa local;
	int err;

	if (!ngcp || !server || !sa_isset(server, SA_ALL))
		return EINVAL;
	ngc = mem_zalloc(sizeof(*ngc), ngc_destructor);
	if (ngc)
		tmr_init(&ngc->tick);
	if (!ngc)
		return ENOMEM;
	ngc->server = *server;
	re_snprintf(ngc->name, sizeof(ngc->name), "%J", server);
	ngc->prefix = rand_u32();

	if (sa_is_loopback(server))
		err = sa_set_str(&local, sa_af(server) == AF_INET6 ?
				 "::1" : "127.0.0.1", 0);
	else
		err = sa_set_str(&local, sa_af(server) == AF_INET6 ?
				 "::" : "0.0.0.0", 0);
	if (err)
		goto out;
	err = hash_alloc(&ngc->pending, NGC_HASH_BUCKETS);
	if (err)
		goto out;
	err = udp_listen(&ngc->us, &local, ngc_recv, ngc);
	if (err)
		goto out;
	/* replies to a burst of offers arrive together */
	(void)udp_sockbuf_set(ngc->us, 1 << 20);

 out:
	if (err)
		mem_deref(ngc);
	else
		*ngcp = ngc;
	return err;
}

/*
 * Send BODY (a bencoded dict, copied) to the server. RESPH gets exactly one
 * call (0 and the reply dict, ETIMEDOUT or EBADMSG) unless the request is
 * cancelled by dereferencing *reqp, or the ngc is freed first.
 * reqp: optional; receives the request, a mem object owned by the caller.
 * Returns 0, EINVAL, EBUSY (NGC_MAX_PENDING requests outstanding), ENOMEM or
 * the socket's errno (then nothing is pending and *reqp is untouched).
 */
int ngc_request(struct ngc *ngc, struct ngc_req **reqp,
		const struct mbuf *body, ngc_resp_h *resph, void *arg)
{
	struct ngc_req *r;
	int n, err;

	if (!ngc || !body || !resph)
		return EINVAL;
	if (ngc->npending >= NGC_MAX_PENDING)
		return EBUSY;

	r = mem_zalloc(sizeof(*r), req_destructor);
	if (!r)
		return ENOMEM;
	n = re_snprintf(r->cookie, sizeof(r->cookie), "%08x_%llu",
			ngc->prefix, (unsigned long long)++ngc->seq);
	if (n <= 0) {
		err = ENOMEM;
		goto out;
	}
	r->cookie_len = (size_t)n;
	r->mb = mbuf_alloc(r->cookie_len + 1 + body->end);
	if (!r->mb) {
		err = ENOMEM;
		goto out;
	}
	err  = mbuf_write_mem(r->mb, (const uint8_t *)r->cookie,
			      r->cookie_len);
	err |= mbuf_write_u8(r->mb, ' ');
	err |= mbuf_write_mem(r->mb, body->buf, body->end);
	if (err) {
		err = ENOMEM;
		goto out;
	}
	r->mb->pos = 0;
	err = udp_send(ngc->us, &ngc->server, r->mb);
	if (err) {
		log_debug("ngc: %s: send failed: %s", ngc->name,
			  strerror(err));
		goto out;
	}
	r->sent = 1;
	r->resph = resph;
	r->arg = arg;
	r->ngc = ngc;
	r->ngc_owned = !reqp;
	hash_append(ngc->pending, hash_joaat((const uint8_t *)r->cookie,
					     r->cookie_len), &r->he, r);
	++ngc->npending;
	r->next_ms = tmr_jiffies() + NGC_RETRANS_MS;
	list_append(&ngc->waitq, &r->qe, r);
	if (!tmr_isrunning(&ngc->tick))
		tick_arm(ngc, NGC_TICK_MS);
	if (reqp)
		*reqp = r;

 out:
	if (err)
		mem_deref(r);
	return err;
}
