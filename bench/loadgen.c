/*
 * loadgen: RTP load generator for the tally media bench.
 *
 * One process, one thread, one epoll loop. It owns every UDP socket the
 * "phones" of the bench use: the harness (bench/run.py) asks for sockets,
 * puts their ports into the SDP it hands to the relay under test, then
 * tells loadgen which "legs" exist (send from socket S to the relay's
 * address, expect the packet back at socket R) and runs timed loads over a
 * range of those legs. Packets are real RTP (V=2, a payload type, SSRC,
 * sequence number, timestamp) whose payload starts with a bench header:
 *
 *   magic 'TLYB' | run id | leg index | flags | send time (CLOCK_MONOTONIC ns)
 *
 * so any socket can attribute what it receives without per-packet state:
 * latency goes into a log-linear histogram (32 buckets per octave, ~3%),
 * counts go into per-run counters. Sockets marked as recorders only count
 * (replicated copies), they do not feed the latency histogram.
 *
 * Control protocol: one command per line on stdin, replies (one JSON line)
 * on stdout. Only `sock`, `sync`, `run` and `stats` reply; `leg`, `rec`
 * and `clear` are silent so the harness can stream thousands of lines
 * without reading (a reply per leg would fill the pipe and deadlock).
 *
 *   sock N                           -> {"ports":[p1,...]}  (new sockets on
 *                                       127.0.0.1, ephemeral ports; socket
 *                                       indices continue across calls)
 *   leg SRC DST_IP DST_PORT RX PT    add a leg (SRC/RX are socket indices)
 *   rec SOCK                         mark a socket as a recorder
 *   clear                            forget all legs
 *   sync                             -> {"ok":true,"legs":N,"socks":M,"errors":E}
 *   run FIRST COUNT PPS SIZE DUR_MS WARM_MS DRAIN_MS [BURST [SPIN]]
 *                                    -> one JSON result line (see run_load);
 *                                       BURST packets per slot (default 1),
 *                                       SPIN 1 busy-polls, 0 (default) sleeps
 *   quit
 *
 * Worked example (one audio call through a relay at 127.0.0.1:30000/30002):
 *   sock 2          -> {"ports":[41000,41001]}
 *   leg 0 127.0.0.1 30000 1 0       (A sends to relay port for A, B receives)
 *   leg 1 127.0.0.1 30002 0 0       (and back)
 *   run 0 2 50 172 2000 300 300     -> {"sent":200,"recv":200,...}
 *
 * Pacing: all legs in a run share one rate, so the schedule is a single
 * sequence: slot g (BURST packets) goes on leg FIRST + g % COUNT at
 * t0 + g * BURST / (COUNT*PPS). The loop sends everything due, then polls
 * its sockets until the next slot: spinning with SPIN 1 (see poll_once),
 * as run.py asks by default, or sleeping in epoll_pwait2 (>= 50 us).
 * One packet per stream per 20 ms leaves nothing to batch per socket, so
 * sends are plain sendto(); receives use recvmmsg (batch 32).
 *
 * Warm-up packets (first WARM_MS) and everything still arriving during the
 * DRAIN_MS after the last send are counted in the *_all totals (the harness
 * divides relay CPU by those) but only packets sent after the warm-up are
 * used for loss and latency. A packet arriving after the drain is lost.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
	BATCH     = 32,
	MAXPKT    = 2048,
	HDR_MAGIC = 0x54594c42,      /* 'TLYB' */
	SUBBITS   = 5,
	NBUCKET   = 64 * (1 << SUBBITS),
	FLAG_MEAS = 1,
};

struct bench_hdr {                   /* follows the 12-byte RTP header */
	uint32_t magic;
	uint32_t run;
	uint32_t leg;
	uint32_t flags;
	uint64_t ts_ns;
} __attribute__((packed));

enum sock_role { ROLE_PHONE = 0, ROLE_REC = 1, ROLE_CTL = 2 };

struct sock {
	int fd;
	uint16_t port;
	uint8_t role;
};

struct leg {
	uint32_t src;                /* socket index */
	uint32_t rx;                 /* socket index expected to receive */
	struct sockaddr_in dst;
	uint8_t pt;
	uint16_t seq;
	uint32_t ts;
	uint32_t ssrc;
};

struct counters {
	uint64_t sent, sent_all, recv, recv_all, rec, rec_all;
	uint64_t misrouted, foreign, stale, send_err;
	uint64_t hist[NBUCKET];
	uint64_t lat_max;
};

static struct sock *socks;
static size_t nsock, capsock;
static struct leg *legs;
static size_t nleg, capleg;
static int epfd;
static uint32_t run_id;
static unsigned errors;
static struct counters c;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Histogram index of a latency in ns: exact below 32, then 32 per octave. */
static unsigned hist_idx(uint64_t v)
{
	unsigned e;

	if (v < (1u << SUBBITS))
		return (unsigned)v;
	e = 63 - (unsigned)__builtin_clzll(v);
	return (e - SUBBITS) * (1u << SUBBITS) + (unsigned)(v >> (e - SUBBITS));
}

/* Midpoint value (ns) of a histogram bucket. */
static double hist_val(unsigned idx)
{
	unsigned e, m;

	if (idx < (1u << SUBBITS))
		return idx;
	e = idx / (1u << SUBBITS) + SUBBITS - 1;
	m = idx % (1u << SUBBITS) + (1u << SUBBITS);
	return ((double)m + 0.5) * (double)(1ull << (e - SUBBITS));
}

static double hist_pct(double p)
{
	uint64_t n = 0, want, acc = 0;
	unsigned i;

	for (i = 0; i < NBUCKET; i++)
		n += c.hist[i];
	if (!n)
		return -1;
	want = (uint64_t)(p * (double)n);
	if (want >= n)
		want = n - 1;
	for (i = 0; i < NBUCKET; i++) {
		acc += c.hist[i];
		if (acc > want)
			return hist_val(i);
	}
	return -1;
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return p;
	while (n < need)
		n *= 2;
	q = realloc(p, n * elem);
	if (!q) {
		fprintf(stderr, "loadgen: out of memory\n");
		exit(1);
	}
	*cap = n;
	return q;
}

/*
 * Open one UDP socket on 127.0.0.1 with an ephemeral port and add it to
 * the epoll set. Returns 0 or an errno value.
 */
static int sock_open(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct epoll_event ev = { .events = EPOLLIN };
	int fd, err, buf = 1 << 20;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl)) {
		err = errno;
		goto out;
	}
	socks = grow(socks, &capsock, nsock + 1, sizeof(*socks));
	socks[nsock].fd = fd;
	socks[nsock].port = ntohs(sa.sin_port);
	socks[nsock].role = ROLE_PHONE;
	ev.data.u64 = nsock;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)) {
		err = errno;
		goto out;
	}
	nsock++;
	return 0;
 out:
	close(fd);
	return err;
}

/* Drain one socket: attribute every datagram to its leg and run. */
static void sock_read(size_t si)
{
	static uint8_t bufs[BATCH][MAXPKT];
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	struct sock *s = &socks[si];
	int n, i;

	for (;;) {
		uint64_t t;

		for (i = 0; i < BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = MAXPKT;
			memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(s->fd, mm, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		t = now_ns();
		for (i = 0; i < n; i++) {
			struct bench_hdr h;

			if (mm[i].msg_len < 12 + sizeof(h)) {
				c.foreign++;
				continue;
			}
			memcpy(&h, bufs[i] + 12, sizeof(h));
			if (h.magic != HDR_MAGIC) {
				c.foreign++;
				continue;
			}
			if (h.run != run_id) {
				c.stale++;
				continue;
			}
			if (s->role == ROLE_REC) {
				c.rec_all++;
				if (h.flags & FLAG_MEAS)
					c.rec++;
				continue;
			}
			if (h.leg >= nleg || legs[h.leg].rx != si)
				c.misrouted++;
			c.recv_all++;
			if (h.flags & FLAG_MEAS) {
				uint64_t d = t > h.ts_ns ? t - h.ts_ns : 0;

				c.recv++;
				c.hist[hist_idx(d)]++;
				if (d > c.lat_max)
					c.lat_max = d;
			}
		}
		if (n < BATCH)
			return;
	}
}

static void leg_send(uint32_t li, uint8_t *buf, size_t size, bool meas)
{
	struct leg *l = &legs[li];
	struct bench_hdr h = {
		.magic = HDR_MAGIC, .run = run_id, .leg = li,
		.flags = meas ? FLAG_MEAS : 0,
	};
	uint16_t seq = htons(l->seq);
	uint32_t ts = htonl(l->ts), ssrc = htonl(l->ssrc);

	buf[0] = 0x80;
	buf[1] = l->pt & 0x7f;
	memcpy(buf + 2, &seq, 2);
	memcpy(buf + 4, &ts, 4);
	memcpy(buf + 8, &ssrc, 4);
	h.ts_ns = now_ns();
	memcpy(buf + 12, &h, sizeof(h));
	l->seq++;
	l->ts += l->pt < 96 ? 160 : 3000;
	if (sendto(socks[l->src].fd, buf, size, 0,
		   (struct sockaddr *)&l->dst, sizeof(l->dst)) < 0) {
		c.send_err++;
		return;
	}
	c.sent_all++;
	if (meas)
		c.sent++;
}

/*
 * Wait up to TIMEOUT_NS for datagrams and read them. Spinning (`run ...
 * SPIN` = 1, run.py's default): never sleep, poll until the time is up, so a
 * relay sending to us never has a sleeping task to wake. On loopback the
 * sender pays the receiver's wake-up (an IPI into this VM's other vCPU,
 * about half of a relay's CPU per packet at 40k pps, measured with perf):
 * across a network no relay pays that, so the bench must not charge it.
 * Time spent in polls that found nothing is counted as idle, which gives
 * loadgen's real headroom.
 */
static bool spin;
static uint64_t idle_ns;

/* One epoll round (TS: how long to wait) and the reads it asks for. */
static int poll_ready(const struct timespec *ts)
{
	struct epoll_event ev[256];
	int n, i;

	n = epoll_pwait2(epfd, ev, 256, ts, NULL);
	for (i = 0; i < n; i++) {
		if (ev[i].data.u64 < nsock)
			sock_read(ev[i].data.u64);
	}
	return n;
}

static void poll_once(int64_t timeout_ns)
{
	static const struct timespec now = {0, 0};
	struct timespec ts;
	uint64_t t0, t1, end;

	if (timeout_ns < 0)
		timeout_ns = 0;
	if (!spin) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		(void)poll_ready(&ts);
		return;
	}
	t0 = now_ns();
	end = t0 + (uint64_t)timeout_ns;
	do {
		int n = poll_ready(&now);

		t1 = now_ns();
		if (n <= 0)
			idle_ns += t1 - t0;
		t0 = t1;
	} while (t1 < end);
}

/*
 * One timed load over legs [first, first+count): the whole schedule, then
 * the drain, then one JSON line on stdout. BURST packets go out back to back
 * on one leg per schedule slot (a video frame: an encoder hands its packets
 * to the network at once), so a slot comes every BURST/rate seconds. Returns
 * 0 or EINVAL.
 */
static int run_load(size_t first, size_t count, double pps, size_t size,
		    double dur_ms, double warm_ms, double drain_ms,
		    unsigned burst)
{
	static uint8_t buf[MAXPKT];
	double rate, srate, total_s;
	uint64_t total, warm_n, g = 0, t0, t_end, t_last = 0, lag_max = 0;
	uint64_t t_done;

	if (!count || first + count > nleg || pps <= 0 || !burst ||
	    size < 12 + sizeof(struct bench_hdr) || size > MAXPKT)
		return EINVAL;
	memset(&c, 0, sizeof(c));
	idle_ns = 0;
	run_id++;
	memset(buf, 0xa5, sizeof(buf));
	rate = (double)count * pps;
	srate = rate / burst;                  /* schedule slots per second */
	total_s = (warm_ms + dur_ms) / 1000.0;
	total = (uint64_t)(srate * total_s);
	warm_n = (uint64_t)(srate * warm_ms / 1000.0);

	t0 = now_ns();
	while (g < total) {
		uint64_t now = now_ns();
		uint64_t due = (uint64_t)((double)(now - t0) * srate / 1e9) + 1;
		int64_t next_ns;

		if (due > total)
			due = total;
		if (due > g) {
			uint64_t sched = t0 + (uint64_t)((double)g * 1e9 / srate);

			if (now > sched && now - sched > lag_max)
				lag_max = now - sched;
		}
		while (g < due) {
			unsigned k;

			for (k = 0; k < burst; k++)
				leg_send((uint32_t)(first + g % count), buf,
					 size, g >= warm_n);
			g++;
		}
		next_ns = (int64_t)(t0 + (uint64_t)((double)g * 1e9 / srate))
			  - (int64_t)now_ns();
		if (!spin && next_ns < 50000)
			next_ns = 50000;
		poll_once(next_ns);
	}
	t_last = now_ns();
	t_end = t_last + (uint64_t)(drain_ms * 1e6);
	while (now_ns() < t_end)
		poll_once(1000000);
	t_done = now_ns();

	{
		double meas_s = (double)(t_last - t0) / 1e9 - warm_ms / 1000.0;
		double loss = c.sent ? 100.0 * (double)(c.sent > c.recv ?
				c.sent - c.recv : 0) / (double)c.sent : 0;

		printf("{\"run\":%u,\"legs\":%zu,\"pps_per_leg\":%.3f,"
		       "\"size\":%zu,\"offered_pps\":%.1f,\"sent_pps\":%.1f,"
		       "\"sent\":%" PRIu64 ",\"recv\":%" PRIu64 ","
		       "\"loss_pct\":%.4f,\"p50_us\":%.2f,\"p99_us\":%.2f,"
		       "\"max_us\":%.2f,\"rec\":%" PRIu64 ","
		       "\"sent_all\":%" PRIu64 ",\"recv_all\":%" PRIu64 ","
		       "\"rec_all\":%" PRIu64 ",\"misrouted\":%" PRIu64 ","
		       "\"foreign\":%" PRIu64 ",\"stale\":%" PRIu64 ","
		       "\"send_err\":%" PRIu64 ",\"send_lag_max_us\":%.1f,"
		       "\"elapsed_s\":%.3f,\"burst\":%u,\"spin\":%d,"
		       "\"busy_pct\":%.1f}\n",
		       run_id, count, pps, size, rate,
		       meas_s > 0 ? (double)c.sent / meas_s : 0,
		       c.sent, c.recv, loss, hist_pct(0.50) / 1e3,
		       hist_pct(0.99) / 1e3, (double)c.lat_max / 1e3,
		       c.rec, c.sent_all, c.recv_all, c.rec_all, c.misrouted,
		       c.foreign, c.stale, c.send_err, (double)lag_max / 1e3,
		       (double)(t_done - t0) / 1e9, burst, spin,
		       spin ? 100.0 * (1.0 - (double)idle_ns /
				       (double)(t_done - t0)) : -1.0);
		fflush(stdout);
	}
	return 0;
}

static void reply_err(const char *what, int err)
{
	printf("{\"ok\":false,\"error\":\"%s: %s\"}\n", what, strerror(err));
	fflush(stdout);
}

static void cmd_line(char *line)
{
	char ip[64];
	unsigned a, b, pt, port;
	size_t first, count, size;
	double pps, dur, warm, drain;
	unsigned burst = 1;
	int n, err, sp = 0;

	if (sscanf(line, "sock %d", &n) == 1) {
		int i;

		for (i = 0; i < n; i++) {
			err = sock_open();
			if (err) {
				reply_err("sock", err);
				return;
			}
		}
		printf("{\"ports\":[");
		for (i = 0; i < n; i++)
			printf("%s%u", i ? "," : "",
			       socks[nsock - (size_t)n + (size_t)i].port);
		printf("]}\n");
		fflush(stdout);
	}
	else if (sscanf(line, "leg %u %63s %u %u %u", &a, ip, &port, &b,
			&pt) == 5) {
		struct leg *l;

		if (a >= nsock || b >= nsock || port > 65535) {
			errors++;
			return;
		}
		legs = grow(legs, &capleg, nleg + 1, sizeof(*legs));
		l = &legs[nleg];
		memset(l, 0, sizeof(*l));
		l->src = a;
		l->rx = b;
		l->pt = (uint8_t)pt;
		l->ssrc = 0x10000000u + (uint32_t)nleg;
		l->seq = (uint16_t)(nleg * 7);
		l->dst.sin_family = AF_INET;
		l->dst.sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, ip, &l->dst.sin_addr) != 1) {
			errors++;
			return;
		}
		nleg++;
	}
	else if (sscanf(line, "rec %u", &a) == 1) {
		if (a < nsock)
			socks[a].role = ROLE_REC;
		else
			errors++;
	}
	else if (!strncmp(line, "clear", 5)) {
		nleg = 0;
	}
	else if (!strncmp(line, "sync", 4)) {
		printf("{\"ok\":true,\"legs\":%zu,\"socks\":%zu,\"errors\":%u}\n",
		       nleg, nsock, errors);
		fflush(stdout);
	}
	else if ((n = sscanf(line, "run %zu %zu %lf %zu %lf %lf %lf %u %d",
			     &first, &count, &pps, &size, &dur, &warm, &drain,
			     &burst, &sp)) >= 7) {
		spin = n >= 9 && sp;
		err = run_load(first, count, pps, size, dur, warm, drain,
			       n >= 8 ? burst : 1);
		if (err)
			reply_err("run", err);
	}
	else if (!strncmp(line, "quit", 4)) {
		exit(0);
	}
	else if (line[0] && line[0] != '\n') {
		reply_err("unknown command", EINVAL);
	}
}

int main(void)
{
	struct rlimit rl;
	char line[512];

	/* thousands of sockets: lift the soft fd limit to the hard one */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		perror("loadgen: epoll_create1");
		return 1;
	}
	/*
	 * Between runs stale datagrams may still arrive; they are read and
	 * dropped (stale run id) at the start of the next run's first poll.
	 */
	while (fgets(line, sizeof(line), stdin))
		cmd_line(line);
	return 0;
}
