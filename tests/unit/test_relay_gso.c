/*
 * test_relay_gso.c: the send queues of the epoll packet path (relay.c):
 * which runs become one UDP_SEGMENT message, and that what a real socket
 * on 127.0.0.1 receives is exactly the datagrams that were queued, with
 * GSO on and off. Includes relay.c for its static functions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <cmocka.h>
#include "../../src/media/relay.c"

struct media *g_media;          /* main.c's, not in the library */

static uint8_t pkt[80][PKTMAX];

/* Queue entries of LENS (0-terminated) to DSTS[i] (NULL: all to d0). */
static void fill(struct outq *q, const struct sa *d0, const struct sa *d1,
		 const size_t *lens, const int *dsts)
{
	q->n = 0;
	for (; *lens; lens++, q->n++) {
		q->iov[q->n].iov_base = pkt[q->n];
		q->iov[q->n].iov_len = *lens;
		q->to[q->n] = (dsts && dsts[q->n]) ? d1 : d0;
	}
}

static void test_runs(void **state)
{
	struct outq *q = calloc(1, sizeof(*q));
	struct sa a, b;
	const size_t frame[] = {1200, 1200, 1200, 1200, 400, 0};
	const size_t growing[] = {1200, 1300, 1300, 0};
	const size_t mid_short[] = {1200, 500, 1200, 1200, 0};
	const size_t big[] = {1400, 1400, 1400, 0};
	const int split[] = {0, 0, 1, 1, 0};
	size_t many[BATCH + 1];
	unsigned i;
	(void)state;

	assert_non_null(q);
	sa_set_str(&a, "127.0.0.1", 5000);
	sa_set_str(&b, "127.0.0.1", 5002);

	fill(q, &a, &b, frame, NULL);          /* a frame: one run */
	assert_int_equal(gso_run(q, 0), 5);
	fill(q, &a, &b, frame, split);         /* two destinations */
	assert_int_equal(gso_run(q, 0), 2);
	assert_int_equal(gso_run(q, 2), 2);
	assert_int_equal(gso_run(q, 4), 1);
	fill(q, &a, &b, growing, NULL);        /* a larger one ends the run */
	assert_int_equal(gso_run(q, 0), 1);
	assert_int_equal(gso_run(q, 1), 2);
	fill(q, &a, &b, mid_short, NULL);      /* a shorter one is its last */
	assert_int_equal(gso_run(q, 0), 2);
	assert_int_equal(gso_run(q, 2), 2);
	fill(q, &a, &b, big, NULL);
	assert_int_equal(gso_run(q, 0), 3);

	/* a full queue of 1400 B is one run (44800 B); of 2040 B it would
	 * be 65280 B: the byte limit ends the run at 31 (63240 B) */
	for (i = 0; i < BATCH; i++)
		many[i] = 1400;
	many[BATCH] = 0;
	fill(q, &a, &b, many, NULL);
	assert_int_equal(gso_run(q, 0), BATCH);
	for (i = 0; i < BATCH; i++)
		many[i] = 2040;
	fill(q, &a, &b, many, NULL);
	assert_int_equal(gso_run(q, 0), GSO_MAXBYTES / 2040);
	assert_int_equal(gso_run(q, GSO_MAXBYTES / 2040), 1);
	free(q);
}

static int udp_bound(struct sa *sa)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	socklen_t len = sizeof(in);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	int buf = 1 << 20;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &len), 0);
	if (sa)
		sa_set_sa(sa, (struct sockaddr *)&in);
	return fd;
}

/* Read what arrived on FD; check it is exactly datagrams FIRST..FIRST+N-1
 * as queued (sizes and bytes), in order. */
static void expect(int fd, unsigned first, const size_t *lens, unsigned n)
{
	uint8_t buf[2048];
	unsigned i;

	for (i = 0; i < n; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;

		assert_int_equal(poll(&p, 1, 1000), 1);
		r = recv(fd, buf, sizeof(buf), 0);
		assert_int_equal(r, (ssize_t)lens[first + i]);
		assert_memory_equal(buf, pkt[first + i], (size_t)r);
	}
	assert_true(recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0);
}

/* 12 datagrams: a frame of 10 (9 x 1200 + 700) to A, 2 x 300 to B. */
static void send_frame(bool gso, uint64_t *sends, uint64_t *dgrams)
{
	static const size_t lens[] = {1200, 1200, 1200, 1200, 1200, 1200,
				      1200, 1200, 1200, 700, 300, 300};
	static struct media m;
	struct scratch *s;
	struct sa da, db;
	int ra = udp_bound(&da), rb = udp_bound(&db), tx = udp_bound(NULL);
	unsigned i;

	m.conf.gso = gso;
	g_media = &m;
	s = scratch_get();
	assert_non_null(s);
	memset(&s->gso, 0, sizeof(s->gso));
	for (i = 0; i < 12; i++) {
		memset(pkt[i], 0x40 + (int)i, lens[i]);
		pkt[i][0] = 0x80;
		enqueue(s, tx, i < 10 ? &da : &db, pkt[i], lens[i]);
	}
	flush_all(s);
	expect(ra, 0, lens, 10);
	expect(rb, 10, lens, 2);
	*sends = s->gso.sends;
	*dgrams = s->gso.datagrams;
	close(ra);
	close(rb);
	close(tx);
	g_media = NULL;
}

static void test_send_gso(void **state)
{
	uint64_t sends, dgrams;
	(void)state;

	send_frame(true, &sends, &dgrams);
	assert_int_equal(sends, 2);            /* the frame, the pair to B */
	assert_int_equal(dgrams, 12);
	send_frame(false, &sends, &dgrams);
	assert_int_equal(sends, 0);
	assert_int_equal(dgrams, 0);
	relay_thread_end();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_send_gso),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
