/*
 * call.c: calls, parties and their streams: creation, lookup, teardown and
 * the inactivity sweep. Control thread, except where a contract says
 * "worker": those run inside mcall_exec() on the call's worker while the
 * control thread waits, so one thread at a time touches a live call.
 *
 * Lifetime: a call is created by the first offer (or nothing else), lives in
 * media.calls until delete, the --timeout sweep or shutdown; mcall_delete()
 * frees it on its worker, where the destructors unregister every socket from
 * epoll before closing it, so no event can point at freed memory.
 *
 * Pairing: two parties in dialogue point at each other (party.other), and
 * so do their streams of the same m= line (mstream.peer). Both relations are
 * kept symmetric, one partner each, never oneself, by party_pair() and
 * mstream_pair() alone:
 *   a->other == b  <=>  b->other == a
 *   st->peer == pt  <=>  pt->peer == st, and then st->party->other == pt->party
 * A destructor clears exactly its partner's back pointer, so whatever the
 * order in which a call's parties go, nothing points at a freed one. A
 * controller that pairs a party anew (a third tag, an answer naming a tag
 * that was in dialogue with someone else) takes it away from its old
 * partner, which is left unpaired: its media is dropped, not sent to a
 * stream that has gone.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include "log.h"
#include "media.h"

uint64_t media_unixtime(void)
{
	return (uint64_t)time(NULL);
}

static void msock_drop(struct msock **msp)
{
	struct msock *ms = *msp;

	if (!ms)
		return;
	if (ms->registered) {
		worker_load_add(ms->w, -1);
		worker_sock_del(ms->w, ms);
	}
	*msp = mem_deref(ms);
}

int msock_register(struct mcall *call, struct msock *ms)
{
	int err;

	if (!ms || ms->registered)
		return 0;
	err = worker_sock_add(call->w, ms);
	if (!err)
		worker_load_add(call->w, 1);
	return err;
}

/* worker: every sink made from ST, attached or not, loses it (the stream
 * closes or goes away): sk->src is never left pointing at a freed stream. */
static void stream_unsink(struct mstream *st)
{
	struct mcall *call = st->party ? st->party->call : NULL;
	struct le *le, *le2;

	while (st->nsinks) {
		struct sink *sk = st->sinks[--st->nsinks];
		sk->active = false;
		sk->src = NULL;
	}
	if (!call)
		return;
	for (le = list_head(&call->subscrs); le; le = le->next) {
		struct subscr *sub = le->data;
		for (le2 = list_head(&sub->sinks); le2; le2 = le2->next) {
			struct sink *sk = le2->data;
			if (sk->src == st)
				sk->src = NULL;
		}
	}
}

void sink_detach(struct sink *sk)
{
	struct mstream *src = sk->src;
	unsigned i;

	if (!src || !sk->active)
		return;
	for (i = 0; i < src->nsinks; i++) {
		if (src->sinks[i] == sk) {
			src->sinks[i] = src->sinks[--src->nsinks];
			break;
		}
	}
	sk->active = false;
}

static void mstream_destructor(void *arg)
{
	struct mstream *st = arg;

	mstream_close(st);
	list_unlink(&st->le);
}

int mstream_alloc(struct mstream **stp, struct party *p, unsigned index)
{
	struct mstream *st = mem_zalloc(sizeof(*st), mstream_destructor);

	if (!st)
		return ENOMEM;
	st->party = p;
	st->index = index;
	st->disabled = true;
	list_append(&p->streams, &st->le, st);
	*stp = st;
	return 0;
}

int mstream_open(struct mstream *st)
{
	struct mcall *call = st->party->call;
	int err;

	st->disabled = false;
	if (st->rtp)
		return 0;
	err = portpool_pair(g_media->ports, &st->rtp, &st->rtcp);
	if (err)
		return err;
	st->rtp->st = st;
	st->rtcp->st = st;
	err = msock_register(call, st->rtp);
	err |= msock_register(call, st->rtcp);
	call->nsockets += 2;
	return err ? EIO : 0;
}

/* worker: ST has no peer any more, nor does its old peer. */
static void mstream_unpair(struct mstream *st)
{
	if (st->peer && st->peer->peer == st)
		st->peer->peer = NULL;
	st->peer = NULL;
}

void mstream_pair(struct mstream *a, struct mstream *b)
{
	if (a->peer != b)
		mstream_unpair(a);
	if (b->peer != a)
		mstream_unpair(b);
	if (a == b)
		return;
	a->peer = b;
	b->peer = a;
}

void mstream_close(struct mstream *st)
{
	struct mcall *call = st->party ? st->party->call : NULL;

	stream_unsink(st);
	mstream_unpair(st);
	if (st->rtp && call)
		call->nsockets -= 2;
	msock_drop(&st->rtp);
	msock_drop(&st->rtcp);
	st->disabled = true;
	st->latched_rtp = st->latched_rtcp = false;
}

static void party_unpair(struct party *p)
{
	struct le *le;

	for (le = list_head(&p->streams); le; le = le->next)
		mstream_unpair(le->data);
	if (p->other && p->other->other == p)
		p->other->other = NULL;
	p->other = NULL;
}

int party_pair(struct party *a, struct party *b)
{
	if (!a || !b || a == b)
		return EINVAL;
	if (a->other == b && b->other == a)
		return 0;
	party_unpair(a);
	party_unpair(b);
	a->other = b;
	b->other = a;
	return 0;
}

static void party_destructor(void *arg)
{
	struct party *p = arg;

	party_unpair(p);
	list_flush(&p->streams);
	list_unlink(&p->le);
	mem_deref(p->sdp);
}

int party_add(struct party **pp, struct mcall *call, const struct pl *tag)
{
	struct party *p = mem_zalloc(sizeof(*p), party_destructor);

	if (!p)
		return ENOMEM;
	p->call = call;
	p->created = media_unixtime();
	if (tag)
		pl_strcpy(tag, p->tag, sizeof(p->tag));
	list_append(&call->parties, &p->le, p);
	*pp = p;
	return 0;
}

struct party *party_find(struct mcall *call, const struct pl *tag)
{
	struct le *le;

	for (le = list_head(&call->parties); le; le = le->next) {
		struct party *p = le->data;
		if (!pl_strcmp(tag, p->tag))
			return p;
	}
	return NULL;
}

struct mstream *party_stream(struct party *p, unsigned index)
{
	struct le *le;

	for (le = list_head(&p->streams); le; le = le->next) {
		struct mstream *st = le->data;
		if (st->index == index)
			return st;
	}
	return NULL;
}

static void call_destructor(void *arg)
{
	struct mcall *call = arg;

	/* subscriptions first: their sinks point at the party streams */
	list_flush(&call->subscrs);
	list_flush(&call->parties);
	hash_unlink(&call->he);
	list_unlink(&call->le);
	--g_media->ncalls;
}

static bool callid_cmp(struct le *le, void *arg)
{
	const struct mcall *call = le->data;
	return 0 == pl_strcmp(arg, call->callid);
}

static struct worker *least_loaded(void)
{
	struct worker *best = NULL;
	unsigned i;

	for (i = 0; i < g_media->nworkers; i++) {
		struct worker *w = g_media->workers[i];
		if (!best || worker_load(w) < worker_load(best))
			best = w;
	}
	return best;
}

int mcall_get(struct mcall **callp, const struct pl *callid, bool create)
{
	struct mcall *call;
	struct le *le;

	if (!callp || !pl_isset(callid))
		return EINVAL;
	le = hash_lookup(g_media->calls, hash_joaat_pl(callid), callid_cmp,
			 (void *)callid);
	if (le) {
		*callp = le->data;
		return 0;
	}
	if (!create)
		return ENOENT;
	if (g_media->conf.max_sessions &&
	    g_media->ncalls >= g_media->conf.max_sessions)
		return EBUSY;
	if (callid->l >= sizeof(call->callid))
		return E2BIG;

	call = mem_zalloc(sizeof(*call), call_destructor);
	if (!call)
		return ENOMEM;
	pl_strcpy(callid, call->callid, sizeof(call->callid));
	call->created = call->last_signal = media_unixtime();
	call->w = least_loaded();
	hash_append(g_media->calls, hash_joaat_pl(callid), &call->he, call);
	list_append(&g_media->callq, &call->le, call);
	++g_media->ncalls;
	++g_media->calls_total;
	*callp = call;
	return 0;
}

int mcall_exec(struct mcall *call, worker_exec_h *h, void *arg)
{
	return worker_exec(call->w, h, arg);
}

static void free_h(struct worker *w, void *arg)
{
	(void)w;
	mem_deref(arg);
}

void mcall_release(struct mcall *call, void *obj)
{
	mcall_exec(call, free_h, obj);
}

void mcall_delete(struct mcall *call, const char *why)
{
	if (!call)
		return;
	log_info("call: [%s] deleted: %s", call->callid, why);
	mcall_sync_stats(call);
	mstats_add_call(&g_media->gone, call);
	mcall_exec(call, free_h, call);
}

void mstats_add(struct mstats *to, const struct mstats *s)
{
	to->rtp.packets += s->rtp.packets;
	to->rtp.bytes += s->rtp.bytes;
	to->rtp.errors += s->rtp.errors;
	to->rtcp.packets += s->rtcp.packets;
	to->rtcp.bytes += s->rtcp.bytes;
	to->rtcp.errors += s->rtcp.errors;
	to->lost += s->lost;
	to->dropped += s->dropped;
	to->unexpected += s->unexpected;
	to->forwarded += s->forwarded;
	to->replicated += s->replicated;
	to->send_errors += s->send_errors;
}

void mstats_add_call(struct mstats *to, const struct mcall *call)
{
	struct le *le, *le2;

	for (le = list_head(&call->parties); le; le = le->next) {
		const struct party *p = le->data;
		for (le2 = list_head(&p->streams); le2; le2 = le2->next) {
			const struct mstream *st = le2->data;
			mstats_add(to, &st->snap);
		}
	}
}

static void snap_h(struct worker *w, void *arg)
{
	struct mcall *call = arg;
	struct le *le, *le2;

	(void)w;
	for (le = list_head(&call->parties); le; le = le->next) {
		struct party *p = le->data;
		for (le2 = list_head(&p->streams); le2; le2 = le2->next) {
			struct mstream *st = le2->data;
			st->snap = st->st;
			st->snap.lost = relay_lost(st);
			if (st->latched_rtp)
				st->snap_ep_rtp = st->lrtp;
			else
				sa_init(&st->snap_ep_rtp, AF_UNSPEC);
			if (st->latched_rtcp)
				st->snap_ep_rtcp = st->lrtcp;
			else
				sa_init(&st->snap_ep_rtcp, AF_UNSPEC);
		}
	}
	for (le = list_head(&call->subscrs); le; le = le->next) {
		struct subscr *sub = le->data;
		for (le2 = list_head(&sub->sinks); le2; le2 = le2->next) {
			struct sink *sk = le2->data;
			sk->sent_snap = sk->sent;
		}
	}
}

void mcall_sync_stats(struct mcall *call)
{
	mcall_exec(call, snap_h, call);
}

static uint64_t call_last_activity(const struct mcall *call)
{
	uint64_t last = call->last_signal;
	struct le *le, *le2;

	for (le = list_head(&call->parties); le; le = le->next) {
		const struct party *p = le->data;
		for (le2 = list_head(&p->streams); le2; le2 = le2->next) {
			const struct mstream *st = le2->data;
			uint64_t t = __atomic_load_n(&st->last_rx,
						     __ATOMIC_RELAXED);
			if (t > last)
				last = t;
		}
	}
	return last;
}

void mcall_sweep(uint64_t now, uint32_t timeout)
{
	struct le *le = list_head(&g_media->callq);

	if (!timeout)
		return;
	while (le) {
		struct mcall *call = le->data;
		uint64_t last = call_last_activity(call);

		le = le->next;
		if (now > last && now - last >= timeout) {
			char why[64];
			snprintf(why, sizeof(why), "no media for %u s (timeout)",
				 (unsigned)(now - last));
			log_notice("call: [%s] timed out: no media for %u s",
				   call->callid, (unsigned)(now - last));
			++g_media->calls_timeout;
			mcall_delete(call, why);
		}
	}
}
