/*
 * test_tmrq.c: tally-sip's timer queue (src/sip/tmrq.c) in place of libre's,
 * driven through libre's own re_main(): libre's internal timers land in it,
 * timers fire in (expiry, start order), cancel and restart from handlers,
 * 100k long timers plus short ones, and no timer lost when the heap cannot
 * grow. tmrq.c is included so its realloc can be made to fail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static int fail_realloc;        /* > 0: that many reallocs fail */

static void *flaky_realloc(void *p, size_t n)
{
	if (fail_realloc > 0) {
		--fail_realloc;
		return NULL;
	}
	return realloc(p, n);
}

#define realloc flaky_realloc
#include "../../src/sip/tmrq.c"
#undef realloc

struct list *tmrl_get(void);    /* libre's own list (exported, no header) */

enum { NT = 2000 };

struct fired {
	unsigned order[NT];
	unsigned n;
	unsigned expect;        /* re_main() returns after this many */
};

struct ttmr {
	struct tmr tmr;
	unsigned id;
	uint64_t due;
	struct fired *log;
};

static size_t queued(void)
{
	return q.n + list_count(&q.spill);
}

static void on_fire(void *arg)
{
	struct ttmr *t = arg;

	t->log->order[t->log->n++] = t->id;
	if (t->log->n == t->log->expect)
		re_cancel();
}

static void on_stop(void *arg)
{
	(void)arg;
	re_cancel();
}

static int setup(void **state)
{
	(void)state;
	return libre_init();
}

static int teardown(void **state)
{
	(void)state;
	libre_close();
	return 0;
}

/* libre's internal timers (a DNS query's retransmission) are queued here */
static void test_libre_uses_this_queue(void **state)
{
	struct dnsc *dnsc = NULL;
	struct dns_query *dq = NULL;
	struct udp_sock *us = NULL;
	struct sa laddr, srv;
	(void)state;

	/* a server nobody answers on */
	sa_set_str(&laddr, "127.0.0.1", 0);
	assert_int_equal(udp_listen(&us, &laddr, NULL, NULL), 0);
	assert_int_equal(udp_local_get(us, &srv), 0);

	assert_int_equal(dnsc_alloc(&dnsc, NULL, &srv, 1), 0);
	assert_int_equal(queued(), 0);
	assert_int_equal(dnsc_query(&dq, dnsc, "tally.invalid", DNS_TYPE_A,
				    DNS_CLASS_IN, true, NULL, NULL), 0);
	assert_true(queued() >= 1);
	assert_int_equal(list_count(tmrl_get()), 0);

	mem_deref(dq);
	mem_deref(dnsc);
	mem_deref(us);
	assert_int_equal(queued(), 0);
}

/* random expiries, some cancelled, some restarted: (expiry, order) kept */
static void test_order_cancel_restart(void **state)
{
	static struct ttmr t[NT];
	static struct fired log;
	struct tmr stop;
	unsigned i, fired_n = 0;
	(void)state;

	memset(&log, 0, sizeof(log));
	srand(7);
	for (i = 0; i < NT; i++) {
		tmr_init(&t[i].tmr);
		t[i].id = i;
		t[i].log = &log;
		tmr_start(&t[i].tmr, (uint64_t)(rand() % 40), on_fire, &t[i]);
	}
	for (i = 0; i < NT; i += 7)             /* cancelled */
		tmr_cancel(&t[i].tmr);
	for (i = 3; i < NT; i += 11)            /* restarted later */
		if (i % 7)
			tmr_start(&t[i].tmr, 40 + (uint64_t)(rand() % 20),
				  on_fire, &t[i]);
	for (i = 0; i < NT; i++) {
		t[i].due = t[i].tmr.jfs;
		fired_n += tmr_isrunning(&t[i].tmr);
	}
	assert_int_equal(queued(), fired_n);
	log.expect = fired_n;

	tmr_init(&stop);
	tmr_start(&stop, 2000, on_stop, NULL);  /* bound the run */
	assert_int_equal(re_main(NULL), 0);
	tmr_cancel(&stop);

	assert_int_equal(log.n, fired_n);
	for (i = 0; i < log.n; i++) {
		assert_true(log.order[i] % 7 != 0);
		assert_false(tmr_isrunning(&t[log.order[i]].tmr));
		if (i == 0)
			continue;
		/* non-decreasing expiry */
		assert_true(t[log.order[i - 1]].due <= t[log.order[i]].due);
	}
	assert_int_equal(queued(), 0);
}

/* equal delays fire in start order, as with libre's list (a plain heap
   is not stable: 64 equal keys come out shuffled) */
static void test_equal_delay_fifo(void **state)
{
	static struct ttmr t[64];
	static struct fired log;
	struct tmr stop;
	unsigned i;
	(void)state;

	memset(&log, 0, sizeof(log));
	log.expect = 64;
	for (i = 0; i < 64; i++) {
		unsigned k = (i * 37) % 64;

		tmr_init(&t[k].tmr);
		t[k].id = k;
		t[k].log = &log;
		tmr_start(&t[k].tmr, 5, on_fire, &t[k]);
	}
	tmr_init(&stop);
	tmr_start(&stop, 2000, on_stop, NULL);
	assert_int_equal(re_main(NULL), 0);
	tmr_cancel(&stop);

	assert_int_equal(log.n, 64);
	for (i = 0; i < 64; i++)
		assert_int_equal(log.order[i], (i * 37) % 64);
}

struct chain {
	struct tmr a, b, c;
	unsigned a_n, b_n, c_n;
};

static void chain_c(void *arg)
{
	struct chain *ch = arg;

	++ch->c_n;
	re_cancel();
}

static void chain_b(void *arg)
{
	struct chain *ch = arg;

	++ch->b_n;
}

/* A's handler cancels B (due in the same poll) and restarts itself */
static void chain_a(void *arg)
{
	struct chain *ch = arg;

	assert_false(tmr_isrunning(&ch->a));
	tmr_cancel(&ch->b);
	if (++ch->a_n < 3)
		tmr_start(&ch->a, 0, chain_a, ch);
	else
		tmr_start(&ch->c, 1, chain_c, ch);
}

static void test_handler_cancels_and_restarts(void **state)
{
	struct chain ch;
	(void)state;

	memset(&ch, 0, sizeof(ch));
	tmr_start(&ch.a, 1, chain_a, &ch);
	tmr_start(&ch.b, 1, chain_b, &ch);
	assert_true(tmr_get_expire(&ch.a) <= 1);
	assert_int_equal(tmr_next_timeout(NULL) >= 1, 1);
	assert_int_equal(re_main(NULL), 0);

	assert_int_equal(ch.a_n, 3);
	assert_int_equal(ch.b_n, 0);
	assert_int_equal(ch.c_n, 1);
	assert_int_equal(queued(), 0);
	assert_int_equal(tmr_next_timeout(NULL), 0);
	assert_int_equal(tmr_get_expire(&ch.a), 0);
}

/* the load that made libre's list slow: 100k long timers, short ones
   started and cancelled among them, then all cancelled out of order */
static void test_many_long_timers(void **state)
{
	enum { NL = 100000 };
	struct tmr *l = calloc(NL, sizeof(*l));
	struct ttmr s[100];
	struct fired log;
	struct tmr stop;
	unsigned i;
	(void)state;

	assert_non_null(l);
	memset(&log, 0, sizeof(log));
	log.expect = 100;
	for (i = 0; i < NL; i++)
		tmr_start(&l[i], 32000 + i % 1000, on_stop, NULL);
	for (i = 0; i < 100; i++) {
		tmr_init(&s[i].tmr);
		s[i].id = i;
		s[i].log = &log;
		tmr_start(&s[i].tmr, 1 + i % 3, on_fire, &s[i]);
	}
	assert_int_equal(queued(), NL + 100);
	tmr_init(&stop);
	tmr_start(&stop, 2000, on_stop, NULL);
	assert_int_equal(re_main(NULL), 0);
	assert_int_equal(log.n, 100);
	tmr_cancel(&stop);
	assert_int_equal(queued(), NL);
	assert_int_equal(tmr_next_timeout(NULL) > 30000, 1);

	for (i = 0; i < NL; i += 2)
		tmr_cancel(&l[i]);
	for (i = 1; i < NL; i += 2)
		tmr_cancel(&l[i]);
	assert_int_equal(queued(), 0);
	assert_null(q.v);
	free(l);
}

/* the heap cannot grow: timers go to the spill list and still fire */
static void test_no_memory_spills(void **state)
{
	static struct ttmr t[600];
	static struct fired log;
	struct tmr stop;
	char *status = NULL;
	unsigned i;
	(void)state;

	memset(&log, 0, sizeof(log));
	log.expect = 599;
	for (i = 0; i < 600; i++) {
		tmr_init(&t[i].tmr);
		t[i].id = i;
		t[i].log = &log;
		if (i == 256)
			fail_realloc = 1;     /* the 257th does not fit */
		if (i == 400)
			fail_realloc = 0;
		tmr_start(&t[i].tmr, (uint64_t)(600 - i) / 20, on_fire, &t[i]);
	}
	assert_true(list_count(&q.spill) > 0);
	assert_int_equal(queued(), 600);
	assert_int_equal(re_sdprintf(&status, "%H", tmr_status, NULL), 0);
	assert_non_null(strstr(status, "spilled"));
	mem_deref(status);

	tmr_cancel(&t[256].tmr);                 /* one spilled, cancelled */
	tmr_init(&stop);
	tmr_start(&stop, 2000, on_stop, NULL);
	assert_int_equal(re_main(NULL), 0);
	tmr_cancel(&stop);

	assert_int_equal(log.n, 599);
	for (i = 1; i < log.n; i++)
		assert_true(t[log.order[i - 1]].tmr.jfs <=
			    t[log.order[i]].tmr.jfs);
	assert_int_equal(queued(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_libre_uses_this_queue),
		cmocka_unit_test(test_order_cancel_restart),
		cmocka_unit_test(test_equal_delay_fifo),
		cmocka_unit_test(test_handler_cancels_and_restarts),
		cmocka_unit_test(test_many_long_timers),
		cmocka_unit_test(test_no_memory_spills),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
