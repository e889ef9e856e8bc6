/*
 * relay.c: the packet path. Runs on a worker thread only.
 *
 * For every datagram on a party's socket:
 *   1. runt or not RTP version 2      -> errors++, dropped
 *   2. RTCP on the RTP port (mux)?     -> RFC 5761 payload-type test
 *   3. source latching: the first source is learned; a different source is
 *      dropped and counted as unexpected, unless the learned one has been
 *      silent for --relatch-ms (the phone moved, e.g. a NAT rebinding)
 *   4. counters, RTP sequence tracking (loss), last-packet time
 *   5. queued for the peer: from the peer's socket to the peer's learned
 *      address, else the address its SDP gave
 *   6. queued for each accepted sink (recorder copy): same bytes, no copy
 * Steps 1-6 are relay_packet(), shared with the io_uring loop (uring.c): it
 * returns the destinations and the caller sends. On the epoll path
 * (relay_recv) queues are flushed with one sendmmsg per destination socket
 * after each recvmmsg batch. Datagrams on a sink's socket are the recorder's RTCP: a
 * PLI/FIR there is passed to the original sender, the rest is consumed.
 *
 * Buffers are per thread and reused, so the path allocates nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include "log.h"
#include "rtpx.h"
#include "sysio.h"
#include "media.h"

enum {
	BATCH = 32,
	ROUNDS = 2,            /* batches per socket per wake-up: fairness */
	PKTMAX = 2048,
	NOUTQ = 8,
	TALLY_SSRC = 0x7a11e000,
};

/*
 * Sends wait in one queue per sending socket until the batch is done. A run
 * of datagrams in a queue to the same destination, all of one size but the
 * last (a video frame: the packetizer cuts it into equal pieces), leaves as
 * one message with UDP_SEGMENT (generic segmentation offload, Linux 4.18):
 * one trip through the stack for the whole run, split into the original
 * datagrams at the device (or by the NIC). Where the kernel refuses it
 * (EINVAL: too large for the route's MTU, EIO: no checksum offload) the run
 * goes out datagram by datagram, and after GSO_GIVEUP refusals in a row
 * the thread stops trying.
 */
enum {
	GSO_MAXSEG = 64,       /* UDP_MAX_SEGMENTS is 64 before Linux 6.9 */
	GSO_MAXBYTES = 65000,  /* UDP payload of one GSO send */
	GSO_GIVEUP = 16,
};

struct outq {
	int fd;
	unsigned n;
	struct iovec iov[BATCH];
	const struct sa *to[BATCH];
};

struct scratch {
	uint8_t buf[BATCH][PKTMAX];
	struct iovec iov[BATCH];
	struct mmsghdr m[BATCH];
	struct sockaddr_storage src[BATCH];
	uint8_t ctl[CMSG_SPACE(sizeof(uint32_t))]
		__attribute__((aligned(sizeof(size_t))));
	struct outq q[NOUTQ];
	unsigned nq;
	/* outq_flush: the messages of one queue */
	struct mmsghdr sm[BATCH];
	uint8_t sctl[BATCH][CMSG_SPACE(sizeof(uint16_t))]
		__attribute__((aligned(sizeof(size_t))));
	unsigned gso_refused;   /* refusals in a row; GSO_GIVEUP: off */
	struct relay_gso gso;
};

static __thread struct scratch *tls;

static struct scratch *scratch_get(void)
{
	if (!tls) {
		/* once per thread: lives as long as the worker */
		tls = calloc(1, sizeof(*tls));
	}
	return tls;
}

void relay_thread_end(void)
{
	if (tls && (tls->gso.sends || tls->gso.refused))
		log_info("relay: GSO: %llu sends carried %llu datagrams, "
			 "%llu refused%s",
			 (unsigned long long)tls->gso.sends,
			 (unsigned long long)tls->gso.datagrams,
			 (unsigned long long)tls->gso.refused,
			 tls->gso_refused >= GSO_GIVEUP ? " (gave up)" : "");
	free(tls);
	tls = NULL;
}

void relay_gso_add(struct relay_gso *g)
{
	if (!tls)
		return;
	g->sends += tls->gso.sends;
	g->datagrams += tls->gso.datagrams;
	g->refused += tls->gso.refused;
}

static void msg_set(struct mmsghdr *m, const struct sa *to, struct iovec *iov,
		    size_t niov)
{
	memset(&m->msg_hdr, 0, sizeof(m->msg_hdr));
	m->msg_hdr.msg_name = (void *)&to->u.sa;
	m->msg_hdr.msg_namelen = to->len;
	m->msg_hdr.msg_iov = iov;
	m->msg_hdr.msg_iovlen = niov;
}

static void msg_gso(struct mmsghdr *m, uint8_t *ctl, uint16_t segsz)
{
	struct cmsghdr *c = (struct cmsghdr *)(void *)ctl;

	m->msg_hdr.msg_control = ctl;
	m->msg_hdr.msg_controllen = CMSG_SPACE(sizeof(segsz));
	c->cmsg_level = SOL_UDP;
	c->cmsg_type = UDP_SEGMENT;
	c->cmsg_len = CMSG_LEN(sizeof(segsz));
	memcpy(CMSG_DATA(c), &segsz, sizeof(segsz));
}

/* Length of the GSO run starting at queue entry I (1: no run). */
static unsigned gso_run(const struct outq *q, unsigned i)
{
	size_t seg = q->iov[i].iov_len, total = seg;
	unsigned k = i + 1;

	while (k < q->n && k - i < GSO_MAXSEG && q->to[k] == q->to[i] &&
	       q->iov[k].iov_len <= seg && total + q->iov[k].iov_len <=
	       GSO_MAXBYTES) {
		total += q->iov[k].iov_len;
		if (q->iov[k++].iov_len < seg)
			break;          /* a shorter one ends the run */
	}
	return k - i;
}

/* Send the datagrams of one refused GSO message one by one. */
static void send_each(int fd, struct mmsghdr *m)
{
	struct mmsghdr one[GSO_MAXSEG];
	size_t i, n = m->msg_hdr.msg_iovlen;

	for (i = 0; i < n; i++) {
		memset(&one[i].msg_hdr, 0, sizeof(one[i].msg_hdr));
		one[i].msg_hdr.msg_name = m->msg_hdr.msg_name;
		one[i].msg_hdr.msg_namelen = m->msg_hdr.msg_namelen;
		one[i].msg_hdr.msg_iov = &m->msg_hdr.msg_iov[i];
		one[i].msg_hdr.msg_iovlen = 1;
	}
	(void)sys_sendmmsg(fd, one, (unsigned)n, MSG_DONTWAIT);
}

static void outq_flush(struct scratch *s, struct outq *q)
{
	unsigned nm = 0, i = 0, done = 0;
	bool gso = (!g_media || g_media->conf.gso) &&
		   s->gso_refused < GSO_GIVEUP;
	bool any = false, refused = false;

	while (i < q->n) {
		unsigned run = gso ? gso_run(q, i) : 1;

		msg_set(&s->sm[nm], q->to[i], &q->iov[i], run);
		if (run > 1) {
			msg_gso(&s->sm[nm], s->sctl[nm],
				(uint16_t)q->iov[i].iov_len);
			++s->gso.sends;
			s->gso.datagrams += run;
			any = true;
		}
		++nm;
		i += run;
	}
	while (done < nm) {
		int r = sys_sendmmsg(q->fd, s->sm + done, nm - done,
				     MSG_DONTWAIT);
		if (r > 0) {
			done += (unsigned)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EINVAL || errno == EIO) &&
		    s->sm[done].msg_hdr.msg_controllen) {
			/* GSO refused for this message: send it plainly */
			++s->gso_refused;
			++s->gso.refused;
			refused = true;
			send_each(q->fd, &s->sm[done++]);
			continue;
		}
		break;          /* send buffer full: the rest is lost */
	}
	if (any && !refused && s->gso_refused < GSO_GIVEUP)
		s->gso_refused = 0;     /* only refusals in a row give up */
	q->n = 0;
}

static void flush_all(struct scratch *s)
{
	unsigned i;

	for (i = 0; i < s->nq; i++)
		outq_flush(s, &s->q[i]);
	s->nq = 0;
}

/* Queue LEN bytes at DATA for sending from FD to DST. */
static bool enqueue(struct scratch *s, int fd, const struct sa *dst,
		    uint8_t *data, size_t len)
{
	struct outq *q = NULL;
	unsigned i;

	for (i = 0; i < s->nq; i++) {
		if (s->q[i].fd == fd) {
			q = &s->q[i];
			break;
		}
	}
	if (!q) {
		if (s->nq == NOUTQ)
			flush_all(s);
		q = &s->q[s->nq++];
		q->fd = fd;
		q->n = 0;
	}
	if (q->n == BATCH)
		outq_flush(s, q);

	q->iov[q->n].iov_base = data;
	q->iov[q->n].iov_len = len;
	q->to[q->n] = dst;
	++q->n;
	return true;
}

/* Same address and port? (IPv4/IPv6, no function call on the hot path) */
static inline bool addr_eq(const struct sa *a, const struct sockaddr *b)
{
	if (a->u.sa.sa_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET) {
		const struct sockaddr_in *x = &a->u.in, *y = (const void *)b;
		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (b->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = &a->u.in6, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
	}
	return false;
}

static void addr_set(struct sa *a, const struct sockaddr *b,
		     socklen_t len)
{
	memset(a, 0, sizeof(*a));
	memcpy(&a->u, b, len < sizeof(a->u) ? len : sizeof(a->u));
	a->len = len;
}

static const struct sa *rtp_dst(const struct mstream *st)
{
	if (st->latched_rtp)
		return &st->lrtp;
	return sa_isset(&st->adv_rtp, SA_ALL) ? &st->adv_rtp : NULL;
}

static const struct sa *rtcp_dst(const struct mstream *st)
{
	if (st->mux)
		return rtp_dst(st);
	if (st->latched_rtcp)
		return &st->lrtcp;
	return sa_isset(&st->adv_rtcp, SA_ALL) ? &st->adv_rtcp : NULL;
}

static int rtcp_fd(const struct mstream *st)
{
	return (st->mux || !st->rtcp) ? st->rtp->fd : st->rtcp->fd;
}

/* RFC 3550 A.1, reduced: extended highest sequence and packets received. */
static void seq_update(struct mstream *st, const uint8_t *p)
{
	uint16_t seq = rtpx_seq(p);
	uint32_t ssrc = rtpx_ssrc(p);
	uint16_t delta;

	if (!st->have_seq || ssrc != st->ssrc) {
		st->lost_prev = relay_lost(st);
		st->have_seq = true;
		st->ssrc = ssrc;
		st->base_seq = seq;
		st->max_seq = seq;
		st->cycles = 0;
		st->received = 1;
		return;
	}
	delta = (uint16_t)(seq - st->max_seq);
	if (delta < 3000) {
		if (seq < st->max_seq)
			st->cycles += 65536;
		st->max_seq = seq;
	}
	else if (delta <= 65536 - 100) {
		/* a jump: the sender restarted; count from here */
		st->lost_prev = relay_lost(st);
		st->base_seq = seq;
		st->max_seq = seq;
		st->cycles = 0;
		st->received = 0;
	}
	/* else: duplicate or reordered, already counted in expected */
	++st->received;
}

uint64_t relay_lost(const struct mstream *st)
{
	uint64_t expected;

	if (!st->have_seq)
		return st->lost_prev;
	expected = (uint64_t)st->cycles + st->max_seq - st->base_seq + 1;
	return st->lost_prev +
		(expected > st->received ? expected - st->received : 0);
}

void relay_keyframe_request(struct worker *w, struct mstream *st)
{
	uint8_t buf[RTPX_RR_LEN + RTPX_PLI_LEN + RTPX_FIR_LEN];
	const struct sa *dst;
	size_t n;

	if (!st->rtp || st->kind != MSDP_VIDEO)
		return;
	dst = rtcp_dst(st);
	if (!st->have_seq || !dst) {
		st->kf_pending = true;   /* sent when the first packet arrives */
		return;
	}
	st->kf_pending = false;
	/* a compound packet: empty RR, then PLI and FIR (RFC 4585, 5104) */
	n = rtpx_build_rr(buf, TALLY_SSRC | st->index);
	n += rtpx_build_pli(buf + n, TALLY_SSRC | st->index, st->ssrc);
	n += rtpx_build_fir(buf + n, TALLY_SSRC | st->index, st->ssrc,
			    (uint8_t)st->fir_seq++);
	if (sendto(rtcp_fd(st), buf, n, MSG_DONTWAIT, &dst->u.sa, dst->len) < 0)
		++st->st.send_errors;
	(void)w;
}

/* The recorder's RTCP on a sink socket: pass keyframe requests on. */
static void sink_feedback(struct sink *sk, uint8_t *p, size_t len)
{
	struct mstream *src = sk->src;
	const struct sa *dst;

	if (!src || !src->rtp || !rtpx_valid(p, len))
		return;
	if (!rtpx_rtcp_has_keyframe_req(p, len))
		return;
	dst = rtcp_dst(src);
	if (!dst)
		return;
	++sk->feedback;
	if (sendto(rtcp_fd(src), p, len, MSG_DONTWAIT, &dst->u.sa, dst->len) < 0)
		++src->st.send_errors;
}

static bool latch(struct mstream *st, bool rtcp,
		  const struct sockaddr *src, socklen_t slen,
		  uint64_t now, uint64_t relatch_ns)
{
	struct sa *l = rtcp ? &st->lrtcp : &st->lrtp;
	bool *latched = rtcp ? &st->latched_rtcp : &st->latched_rtp;
	uint64_t last = rtcp ? st->last_rtcp_ns : st->last_rtp_ns;

	if (*latched && addr_eq(l, src))
		return true;
	if (*latched && now - last < relatch_ns) {
		++st->st.unexpected;
		return false;
	}
	addr_set(l, src, slen);
	*latched = true;
	return true;
}

unsigned relay_packet(struct worker *w, struct msock *ms, uint8_t *p,
		      size_t len, const struct sockaddr *src, socklen_t slen,
		      struct relay_dst *out)
{
	struct mstream *st = ms->st, *peer;
	uint64_t now = worker_now_ns(w);
	uint64_t relatch_ns = (uint64_t)g_media->conf.relatch_ms * 1000000ull;
	unsigned k, n = 0;
	bool is_rtcp;

	if (ms->sink) {
		sink_feedback(ms->sink, p, len);
		return 0;
	}
	if (!st)
		return 0;
	if (!rtpx_valid(p, len)) {
		if (ms->role == MSOCK_RTCP)
			++st->st.rtcp.errors;
		else
			++st->st.rtp.errors;
		return 0;
	}
	is_rtcp = ms->role == MSOCK_RTCP || rtpx_is_rtcp(p, len);
	if (!is_rtcp && len < RTPX_HDR) {
		++st->st.rtp.errors;
		return 0;
	}
	/* RTCP muxed on the RTP port shares the RTP source */
	if (!latch(st, ms->role == MSOCK_RTCP, src, slen, now, relatch_ns))
		return 0;

	if (is_rtcp) {
		++st->st.rtcp.packets;
		st->st.rtcp.bytes += len;
		if (ms->role == MSOCK_RTCP)
			st->last_rtcp_ns = now;
		else
			st->last_rtp_ns = now;
	}
	else {
		++st->st.rtp.packets;
		st->st.rtp.bytes += len;
		st->last_rtp_ns = now;
		seq_update(st, p);
		if (st->kf_pending)
			relay_keyframe_request(w, st);
	}

	peer = st->peer;
	if (peer && peer->rtp && !peer->disabled) {
		const struct sa *dst = is_rtcp ? rtcp_dst(peer) : rtp_dst(peer);
		if (dst) {
			out[n].fd = is_rtcp ? rtcp_fd(peer) : peer->rtp->fd;
			out[n++].to = dst;
			++st->st.forwarded;
		}
	}
	for (k = 0; k < st->nsinks; k++) {
		struct sink *sk = st->sinks[k];
		if (is_rtcp) {
			out[n].fd = sk->mux ? sk->rtp->fd : sk->rtcp->fd;
			out[n++].to = &sk->dst_rtcp;
		}
		else {
			out[n].fd = sk->rtp->fd;
			out[n++].to = &sk->dst_rtp;
		}
		++sk->sent.packets;
		sk->sent.bytes += len;
		++st->st.replicated;
	}
	return n;
}

void relay_touch(struct worker *w, struct msock *ms)
{
	uint64_t sec;

	if (!ms->st)
		return;
	sec = worker_now_unix(w);
	if (__atomic_load_n(&ms->st->last_rx, __ATOMIC_RELAXED) != sec)
		__atomic_store_n(&ms->st->last_rx, sec, __ATOMIC_RELAXED);
}

void relay_ovfl(struct msock *ms, uint32_t v)
{
	if (v == ms->ovfl)
		return;
	if (ms->st)
		ms->st->st.dropped += (uint32_t)(v - ms->ovfl);
	ms->ovfl = v;
}

static void overflow_update(struct msock *ms, struct msghdr *h)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
		uint32_t v;
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL)
			continue;
		memcpy(&v, CMSG_DATA(c), sizeof(v));
		relay_ovfl(ms, v);
	}
}

void relay_recv(struct worker *w, struct msock *ms)
{
	struct scratch *s = scratch_get();
	struct relay_dst dst[RELAY_MAXDST];
	unsigned round, i, k;

	if (!s)
		return;
	for (round = 0; round < ROUNDS; round++) {
		int n;

		for (i = 0; i < BATCH; i++) {
			struct msghdr *h = &s->m[i].msg_hdr;
			s->iov[i].iov_base = s->buf[i];
			s->iov[i].iov_len = PKTMAX;
			h->msg_name = &s->src[i];
			h->msg_namelen = sizeof(s->src[i]);
			h->msg_iov = &s->iov[i];
			h->msg_iovlen = 1;
			/* SO_RXQ_OVFL is a running count: reading it once
			 * per batch is enough, and a control buffer on every
			 * message costs a cmsg per datagram */
			h->msg_control = i ? NULL : s->ctl;
			h->msg_controllen = i ? 0 : sizeof(s->ctl);
			h->msg_flags = 0;
		}
		n = sys_recvmmsg(ms->fd, s->m, BATCH, MSG_DONTWAIT);
		if (n <= 0)
			break;
		overflow_update(ms, &s->m[0].msg_hdr);
		for (i = 0; i < (unsigned)n; i++) {
			unsigned nd = relay_packet(w, ms, s->buf[i],
						   s->m[i].msg_len,
						   (struct sockaddr *)&s->src[i],
						   s->m[i].msg_hdr.msg_namelen,
						   dst);
			for (k = 0; k < nd; k++)
				enqueue(s, dst[k].fd, dst[k].to, s->buf[i],
					s->m[i].msg_len);
		}
		flush_all(s);
		relay_touch(w, ms);
		if (n < BATCH)
			break;
	}
}
