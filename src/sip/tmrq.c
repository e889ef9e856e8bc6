/*
 * tmrq.c: tally-sip's timer queue, put in place of libre's at link time.
 *
 * libre 1.1.0 keeps every timer of a thread in one sorted linked list and
 * inserts by walking it from the tail. A SIP server under load keeps tens of
 * thousands of 32 s transaction timers in that list (RFC 6026 Timers L and M,
 * RFC 3261 Timer J: 64*T1 each, per call), and every short timer libre starts
 * (T1 retransmissions, 2xx resends) walks past all of them: at 600 calls/s
 * more than half of tally-sip's CPU went there (bench/sipbench.py, perf).
 *
 * This file defines libre's timer API (re_tmr.h) in the tally-sip executable.
 * libre.so calls its timer functions through the PLT, so the dynamic linker
 * binds libre's own calls to these definitions too, and every timer of the
 * process lives here: a binary min-heap ordered by (expiry, start order), so
 * start and cancel cost O(log n) and timers with the same expiry still fire
 * in the order they were started, as with libre's list.
 *
 * Contract kept from libre's tmr.c:
 *   - tmr->th != NULL exactly while the timer is pending (tmr_isrunning() is
 *     inline in re_tmr.h and reads it);
 *   - tmr_poll() fires, in order, every timer due at the time it was called,
 *     clearing th before calling the handler, which may restart or cancel
 *     any timer, itself included;
 *   - tmr_next_timeout() is 0 with no timer, else the ms to the first (>= 1);
 *   - one queue per thread, as libre's re context is per thread.
 * The struct tmr fields libre reserves for its list are used here: le.data
 * holds the heap slot + 1 (NULL: not in the heap) while le.list is NULL;
 * le.list points at the spill list when the heap could not grow (no memory): such timers are kept
 * sorted there, the old way, so no timer is ever lost.
 *
 * tests/unit/test_tmrq.c drives it through libre's own re_main().
 */
#include <stdint.h>
#include <stdlib.h>
#include <re.h>

struct tmrq_slot {
	uint64_t jfs;
	uint64_t seq;           /* start order, for equal expiries */
	struct tmr *tmr;
};

struct tmrq {
	struct tmrq_slot *v;
	size_t n, cap;
	uint64_t seq;
	struct list spill;      /* sorted; used only when the heap cannot grow */
};

static __thread struct tmrq q;

static bool slot_before(const struct tmrq_slot *a, const struct tmrq_slot *b)
{
	return a->jfs < b->jfs || (a->jfs == b->jfs && a->seq < b->seq);
}

static void slot_set(size_t i, const struct tmrq_slot *s)
{
	q.v[i] = *s;
	s->tmr->le.data = (void *)(uintptr_t)(i + 1);
}

static void sift_up(size_t i, struct tmrq_slot s)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!slot_before(&s, &q.v[parent]))
			break;
		slot_set(i, &q.v[parent]);
		i = parent;
	}
	slot_set(i, &s);
}

static void sift_down(size_t i, struct tmrq_slot s)
{
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= q.n)
			break;
		if (c + 1 < q.n && slot_before(&q.v[c + 1], &q.v[c]))
			++c;
		if (!slot_before(&q.v[c], &s))
			break;
		slot_set(i, &q.v[c]);
		i = c;
	}
	slot_set(i, &s);
}

static void heap_remove(struct tmr *tmr)
{
	size_t i = (size_t)(uintptr_t)tmr->le.data - 1;
	struct tmrq_slot last;

	tmr->le.data = NULL;
	last = q.v[--q.n];
	if (i == q.n)
		goto out;

	if (i > 0 && slot_before(&last, &q.v[(i - 1) / 2]))
		sift_up(i, last);
	else
		sift_down(i, last);
 out:
	if (q.n == 0) {
		free(q.v);
		q.v = NULL;
		q.cap = 0;
	}
}

static bool heap_grow(void)
{
	size_t cap = q.cap ? 2 * q.cap : 256;
	struct tmrq_slot *v = realloc(q.v, cap * sizeof(*v));

	if (!v)
		return false;
	q.v = v;
	q.cap = cap;
	return true;
}

static bool spill_inspos(struct le *le, void *arg)
{
	const struct tmr *t = le->data;

	return t->jfs <= *(uint64_t *)arg;
}

static void spill_insert(struct tmr *tmr)
{
	struct le *le = list_apply(&q.spill, false, spill_inspos, &tmr->jfs);

	if (le)
		list_insert_after(&q.spill, le, &tmr->le, tmr);
	else
		list_prepend(&q.spill, &tmr->le, tmr);
}

static void unqueue(struct tmr *tmr)
{
	if (tmr->le.list)
		list_unlink(&tmr->le);
	else if (tmr->le.data)
		heap_remove(tmr);
}

/* the first pending timer, or NULL */
static struct tmr *first(void)
{
	struct tmr *h = q.n ? q.v[0].tmr : NULL;
	struct tmr *s = list_head(&q.spill) ? list_head(&q.spill)->data : NULL;

	if (!s)
		return h;
	if (!h)
		return s;
	return s->jfs < h->jfs ? s : h;
}


void tmr_init(struct tmr *tmr)
{
	if (!tmr)
		return;
	tmr->le.prev = tmr->le.next = NULL;
	tmr->le.list = NULL;
	tmr->le.data = NULL;
	tmr->th = NULL;
	tmr->arg = NULL;
	tmr->jfs = 0;
}


void tmr_start(struct tmr *tmr, uint64_t delay, tmr_h *th, void *arg)
{
	struct tmrq_slot s;

	if (!tmr)
		return;

	if (tmr->th)
		unqueue(tmr);

	tmr->th  = th;
	tmr->arg = arg;
	if (!th)
		return;

	tmr->jfs = tmr_jiffies() + delay;

	if (q.n == q.cap && !heap_grow()) {
		spill_insert(tmr);
		return;
	}

	s.jfs = tmr->jfs;
	s.seq = q.seq++;
	s.tmr = tmr;
	++q.n;
	sift_up(q.n - 1, s);
}


void tmr_cancel(struct tmr *tmr)
{
	tmr_start(tmr, 0, NULL, NULL);
}


uint64_t tmr_get_expire(const struct tmr *tmr)
{
	uint64_t now;

	if (!tmr || !tmr->th)
		return 0;
	now = tmr_jiffies();
	return tmr->jfs > now ? tmr->jfs - now : 0;
}


/* tmrl: libre's list for this thread; unused, the queue is this file's */
void tmr_poll(struct list *tmrl)
{
	const uint64_t now = tmr_jiffies();
	struct tmr *tmr;
	(void)tmrl;

	while ((tmr = first()) && tmr->jfs <= now) {
		tmr_h *th = tmr->th;
		void *arg = tmr->arg;

		unqueue(tmr);
		tmr->th = NULL;
		if (th)
			th(arg);
	}
}


uint64_t tmr_next_timeout(struct list *tmrl)
{
	const uint64_t now = tmr_jiffies();
	const struct tmr *tmr = first();
	(void)tmrl;

	if (!tmr)
		return 0;
	return tmr->jfs > now ? tmr->jfs - now : 1;
}


int tmr_status(struct re_printf *pf, void *unused)
{
	const struct tmr *t = first();
	(void)unused;

	return re_hprintf(pf, "Timers (%zu, heap of %zu, %u spilled):"
			  " next in %lu ms\n",
			  q.n + list_count(&q.spill), q.cap,
			  list_count(&q.spill),
			  t ? (unsigned long)tmr_get_expire(t) : 0UL);
}


void tmr_debug(void)
{
	if (q.n || !list_isempty(&q.spill))
		re_fprintf(stderr, "%H", tmr_status, NULL);
}
