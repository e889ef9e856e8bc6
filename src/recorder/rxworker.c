/*
 * rxworker.c: the receive thread. Every accepted stream's RTP and RTCP
 * sockets live in one epoll set; each readable socket is drained with
 * recvmmsg, every datagram is appended to its session's capture buffer as a
 * pcap record, and at the end of each epoll round every touched capture is
 * written with one write(2). Nothing is held in user space across a round,
 * so a SIGKILL loses only what the kernel had not handed over yet.
 *
 * Ownership: the main thread creates a struct rxfile / rxstream (opening
 * the descriptors, so errors are reported where the SIP answer is made)
 * and hands it over by message; from then on only this thread touches it,
 * until a close message makes it give the file back (drained, all written),
 * which the main thread frees. Counters the main thread reads are updated
 * with relaxed atomics. No lock on the packet path.
 *
 * Paused streams (a=inactive) are still written: dropping what arrives
 * around the re-INVITE would cut the last words before a pause.
 *
 * Keyframes: when a video stream's first packet (or a new SSRC) arrives,
 * and when a sequence gap says a picture broke (at most once a second),
 * the sender gets RTCP RR + PLI + FIR (RFC 4585, RFC 5104) on the address
 * its RTCP came from (its RTP address + 1 until it sent any; the RTP
 * address itself with rtcp-mux).
 *
 * Worked example, one round: epoll says ports 40000 (RTP) and 40003 (RTCP)
 * are readable; recvmmsg returns 3 RTP and 1 RTCP datagrams; 4 records go
 * into session S's buffer; the round ends; write(S.fd, 4 records).
 *
 * Streams die at the end of a round, never inside it. One epoll_wait can
 * return the eventfd (a close or remove command) and, after it in the same
 * events array, a socket of the stream that command closes: the array holds
 * a pointer into the stream, not a descriptor. So stream_close() closes the
 * sockets (fd = -1: sock_read skips them) and moves the stream to a
 * "dead" list; reap_dead() frees that list once the round's events are all
 * handled. Measured reason: with BYE landing while RTP flooded the session,
 * the earlier free-at-once crashed an ASan build within 6-15 sessions
 * (issue 10, defect 2; tests/integration/rec_byeflood.py). Generation ids
 * in epoll's data would also work, but would need a lookup table; a dead
 * stream costs one list link for at most one round. The rxfile needs no
 * such care: only a stream's sockets are in the epoll set, and a dead
 * stream's skipped sockets never reach its file.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include "log.h"
#include "rtpx.h"
#include "recd.h"

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

enum {
	RX_BATCH = 32,
	RX_PKT_MAX = 2048,
	RX_FILE_BUF = 256 * 1024,
	RX_EVENTS = 256,
	RX_PLI_GAP_MS = 1000,
};

struct rxworker;

struct rxsock {
	int fd;
	bool rtcp;
	uint32_t drops;              /* last SO_RXQ_OVFL value */
	struct rxstream *st;
	struct sa local;
};

struct rxstream {
	struct rxstream *next;       /* in its file's list */
	struct rxstream *dead_next;  /* in rxworker.dead once closed */
	struct rxfile *f;
	uint16_t port;
	bool video;
	bool paused;
	struct rxsock s[2];          /* RTP, RTCP */
	struct sa rtp_peer, rtcp_peer;
	bool have_rtp, have_rtcp, have_ssrc;
	uint32_t ssrc;
	uint16_t last_seq;
	uint64_t last_pli_ms;
	uint8_t fir_seq;
};

struct rxfile {
	int fd;
	uint8_t *buf;
	size_t used;
	bool dirty;
	struct rxfile *dirty_next;
	struct rxstream *streams;
	uint64_t packets;            /* atomic: read by main */
	int64_t last_rx_ms;          /* atomic: monotonic ms */
	rx_drained_h *drainedh;
	void *arg;
};

enum cmd_type { CMD_ADD, CMD_PAUSE, CMD_RESUME, CMD_REMOVE, CMD_CLOSE, CMD_STOP };

struct cmd {
	struct cmd *next;
	enum cmd_type type;
	struct rxstream *st;
	struct rxfile *f;
	uint16_t port;
};

struct rxworker {
	pthread_t thr;
	bool started;
	int ep;
	int evfd;
	pthread_mutex_t mtx;
	struct cmd *q, **qtail;
	struct mqueue *mq;           /* drained files back to main */
	struct rxstream *byport[65536];
	struct rxfile *dirty;
	struct rxstream *dead;       /* closed this round, freed at its end */
	struct rxfile *drained;      /* closed files for main (mtx) */
	struct rx_stats st;          /* atomic adds */
	uint32_t our_ssrc;
	/* receive arrays */
	struct mmsghdr msgs[RX_BATCH];
	struct iovec iov[RX_BATCH];
	struct sockaddr_storage from[RX_BATCH];
	uint8_t ctl[RX_BATCH][CMSG_SPACE(sizeof(uint32_t))];
	uint8_t (*pkts)[RX_PKT_MAX];
};

#define ADD(field, n) __atomic_fetch_add(&w->st.field, (n), __ATOMIC_RELAXED)

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void post(struct rxworker *w, struct cmd *c)
{
	uint64_t one = 1;

	pthread_mutex_lock(&w->mtx);
	c->next = NULL;
	*w->qtail = c;
	w->qtail = &c->next;
	pthread_mutex_unlock(&w->mtx);
	if (write(w->evfd, &one, sizeof(one)) < 0)
		log_warn("rx: cannot wake the receive thread: %s",
			 strerror(errno));
}

static int post_new(struct rxworker *w, enum cmd_type type,
		    struct rxstream *st, struct rxfile *f, uint16_t port)
{
	struct cmd *c = calloc(1, sizeof(*c));

	if (!c)
		return ENOMEM;
	c->type = type;
	c->st = st;
	c->f = f;
	c->port = port;
	post(w, c);
	return 0;
}

/* --- the thread's side --- */

static void file_flush(struct rxworker *w, struct rxfile *f)
{
	size_t off = 0;

	while (off < f->used) {
		ssize_t n = write(f->fd, f->buf + off, f->used - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* disk full or I/O error: the packets are lost, and
			 * counted; the session goes on (space may come back) */
			ADD(write_errors, 1);
			break;
		}
		off += (size_t)n;
	}
	f->used = 0;
}

static void file_mark(struct rxworker *w, struct rxfile *f)
{
	if (!f->dirty) {
		f->dirty = true;
		f->dirty_next = w->dirty;
		w->dirty = f;
	}
}

static void flush_dirty(struct rxworker *w)
{
	while (w->dirty) {
		struct rxfile *f = w->dirty;

		w->dirty = f->dirty_next;
		f->dirty = false;
		file_flush(w, f);
	}
}

static void send_keyframe_req(struct rxworker *w, struct rxstream *st)
{
	uint8_t pkt[RTPX_RR_LEN + RTPX_PLI_LEN + RTPX_FIR_LEN];
	struct sa dst;
	size_t n = 0;
	int fd;

	if (!st->have_ssrc || !st->have_rtp)
		return;
	n += rtpx_build_rr(pkt, w->our_ssrc);
	n += rtpx_build_pli(pkt + n, w->our_ssrc, st->ssrc);
	n += rtpx_build_fir(pkt + n, w->our_ssrc, st->ssrc, st->fir_seq++);
	if (st->have_rtcp) {
		dst = st->rtcp_peer;
		fd = st->s[1].fd;
	}
	else {
		dst = st->rtp_peer;
		sa_set_port(&dst, (uint16_t)(sa_port(&dst) + 1));
		fd = st->s[1].fd;
	}
	if (sendto(fd, pkt, n, MSG_DONTWAIT, &dst.u.sa, dst.len) > 0)
		ADD(pli_sent, 1);
	st->last_pli_ms = (uint64_t)mono_ms();
}

static void on_rtp(struct rxworker *w, struct rxstream *st,
		   const uint8_t *p, size_t len, const struct sa *src)
{
	uint32_t ssrc = rtpx_ssrc(p);
	uint16_t seq = rtpx_seq(p);
	bool ask = false;

	if (!st->have_rtp || !sa_cmp(&st->rtp_peer, src, SA_ALL)) {
		st->rtp_peer = *src;
		st->have_rtp = true;
	}
	if (!st->have_ssrc || ssrc != st->ssrc) {
		st->ssrc = ssrc;
		st->have_ssrc = true;
		ask = st->video;         /* stream (re)starts: need a picture */
	}
	else if (st->video && seq != (uint16_t)(st->last_seq + 1) &&
		 (uint16_t)(seq - st->last_seq) < 0x8000) {
		/* forward gap: a picture broke */
		ask = (uint64_t)mono_ms() - st->last_pli_ms >= RX_PLI_GAP_MS;
	}
	if ((uint16_t)(seq - st->last_seq) < 0x8000 || ask)
		st->last_seq = seq;
	(void)len;
	if (ask)
		send_keyframe_req(w, st);
}

static void on_packet(struct rxworker *w, struct rxsock *s, uint8_t *p,
		      size_t len, const struct sa *src,
		      const struct timeval *tv)
{
	struct rxstream *st = s->st;
	struct rxfile *f = st->f;
	uint8_t hdr[PCAPW_REC_MAX];
	size_t hl;
	bool rtcp;

	if (len < RTCPX_HDR || (p[0] >> 6) != 2) {
		ADD(garbage, 1);
		return;
	}
	/* a=inactive: the SRC stops sending. What still comes (in flight
	 * around the re-INVITE, or an SRC that keeps going) is kept: the
	 * recorder never throws away media it was offered */
	if (st->paused)
		ADD(paused, 1);
	rtcp = s->rtcp || rtpx_is_rtcp(p, len);
	if (rtcp) {
		ADD(rtcp, 1);
		if (!st->have_rtcp || !sa_cmp(&st->rtcp_peer, src, SA_ALL)) {
			st->rtcp_peer = *src;
			st->have_rtcp = true;
		}
	}
	else if (len < RTPX_HDR) {
		ADD(garbage, 1);
		return;
	}
	else {
		on_rtp(w, st, p, len, src);
	}
	ADD(packets, 1);
	ADD(bytes, len);

	hl = pcapw_rec_header(hdr, src, &s->local, len, tv);
	if (f->used + hl + len > RX_FILE_BUF)
		file_flush(w, f);
	memcpy(f->buf + f->used, hdr, hl);
	memcpy(f->buf + f->used + hl, p, len);
	f->used += hl + len;
	file_mark(w, f);
	__atomic_fetch_add(&f->packets, 1, __ATOMIC_RELAXED);
	ADD(written, 1);
}

static void sock_read(struct rxworker *w, struct rxsock *s)
{
	int round;

	if (s->fd < 0)
		return;              /* its stream was closed earlier this round */
	/* bounded: one busy socket must not starve the others */
	for (round = 0; round < 4; round++) {
		struct timespec ts;
		struct timeval tv;
		int n, i;

		for (i = 0; i < RX_BATCH; i++) {
			w->iov[i].iov_base = w->pkts[i];
			w->iov[i].iov_len = RX_PKT_MAX;
			w->msgs[i].msg_hdr.msg_iov = &w->iov[i];
			w->msgs[i].msg_hdr.msg_iovlen = 1;
			w->msgs[i].msg_hdr.msg_name = &w->from[i];
			w->msgs[i].msg_hdr.msg_namelen = sizeof(w->from[i]);
			w->msgs[i].msg_hdr.msg_control = w->ctl[i];
			w->msgs[i].msg_hdr.msg_controllen = sizeof(w->ctl[i]);
			w->msgs[i].msg_hdr.msg_flags = 0;
		}
		n = recvmmsg(s->fd, w->msgs, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		clock_gettime(CLOCK_REALTIME, &ts);
		tv.tv_sec = ts.tv_sec;
		tv.tv_usec = ts.tv_nsec / 1000;
		__atomic_store_n(&s->st->f->last_rx_ms, mono_ms(),
				 __ATOMIC_RELAXED);
		for (i = 0; i < n; i++) {
			struct msghdr *mh = &w->msgs[i].msg_hdr;
			struct cmsghdr *cm;
			struct sa src;

			for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
				if (cm->cmsg_level == SOL_SOCKET &&
				    cm->cmsg_type == SO_RXQ_OVFL) {
					uint32_t d;

					memcpy(&d, CMSG_DATA(cm), sizeof(d));
					if (d != s->drops)
						ADD(kernel_drops, d - s->drops);
					s->drops = d;
				}
			}
			if (mh->msg_flags & MSG_TRUNC) {
				ADD(garbage, 1);
				continue;
			}
			sa_init(&src, AF_UNSPEC);
			memcpy(&src.u, &w->from[i], mh->msg_namelen);
			src.len = mh->msg_namelen;
			on_packet(w, s, w->pkts[i], w->msgs[i].msg_len, &src,
				  &tv);
		}
		if (n < RX_BATCH)
			return;
	}
}

static void stream_close(struct rxworker *w, struct rxstream *st)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (st->s[i].fd >= 0) {
			(void)epoll_ctl(w->ep, EPOLL_CTL_DEL, st->s[i].fd, NULL);
			/* what is still queued in the socket belongs to the
			 * session: take it before closing */
			sock_read(w, &st->s[i]);
			close(st->s[i].fd);
			st->s[i].fd = -1;
		}
	}
	if (w->byport[st->port] == st)
		w->byport[st->port] = NULL;
	ADD(streams, (uint64_t)-1);
	/* this round's events may still point at st->s[]: free it after */
	st->dead_next = w->dead;
	w->dead = st;
}

/* End of a round: free the streams closed during it. */
static void reap_dead(struct rxworker *w)
{
	while (w->dead) {
		struct rxstream *st = w->dead;

		w->dead = st->dead_next;
		free(st);
	}
}

static void stream_unlink(struct rxstream *st)
{
	struct rxstream **pp;

	for (pp = &st->f->streams; *pp; pp = &(*pp)->next) {
		if (*pp == st) {
			*pp = st->next;
			break;
		}
	}
}

static void do_cmd(struct rxworker *w, struct cmd *c)
{
	struct rxstream *st;
	int i;

	switch (c->type) {

	case CMD_ADD:
		st = c->st;
		w->byport[st->port] = st;
		st->next = st->f->streams;
		st->f->streams = st;
		for (i = 0; i < 2; i++) {
			struct epoll_event ev = {.events = EPOLLIN,
						 .data.ptr = &st->s[i]};
			(void)epoll_ctl(w->ep, EPOLL_CTL_ADD, st->s[i].fd, &ev);
		}
		ADD(streams, 1);
		break;

	case CMD_PAUSE:
	case CMD_RESUME:
		st = w->byport[c->port];
		if (st) {
			st->paused = c->type == CMD_PAUSE;
			if (!st->paused)
				st->have_ssrc = false;  /* ask for a picture */
		}
		break;

	case CMD_REMOVE:
		st = w->byport[c->port];
		if (st) {
			stream_unlink(st);
			stream_close(w, st);
			flush_dirty(w);
		}
		break;

	case CMD_CLOSE:
		while (c->f->streams) {
			st = c->f->streams;
			c->f->streams = st->next;
			stream_close(w, st);
		}
		flush_dirty(w);
		file_flush(w, c->f);
		if (c->f->dirty) {
			/* unlink from the dirty list */
			struct rxfile **pp;
			for (pp = &w->dirty; *pp; pp = &(*pp)->dirty_next)
				if (*pp == c->f) {
					*pp = c->f->dirty_next;
					break;
				}
		}
		(void)fdatasync(c->f->fd);
		close(c->f->fd);
		c->f->fd = -1;
		ADD(files, (uint64_t)-1);
		pthread_mutex_lock(&w->mtx);
		c->f->dirty_next = w->drained;      /* the list main takes */
		w->drained = c->f;
		pthread_mutex_unlock(&w->mtx);
		(void)mqueue_push(w->mq, 1, NULL);
		break;

	case CMD_STOP:
		break;
	}
}

/* Take the queued commands; true if told to stop. */
static bool drain_cmds(struct rxworker *w)
{
	struct cmd *c, *next;
	uint64_t v;
	bool stop = false;

	if (read(w->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("rx: eventfd: %s", strerror(errno));
	pthread_mutex_lock(&w->mtx);
	c = w->q;
	w->q = NULL;
	w->qtail = &w->q;
	pthread_mutex_unlock(&w->mtx);
	for (; c; c = next) {
		next = c->next;
		if (c->type == CMD_STOP)
			stop = true;
		do_cmd(w, c);
		free(c);
	}
	return stop;
}

static void *thread_main(void *arg)
{
	struct rxworker *w = arg;
	struct epoll_event evs[RX_EVENTS];

	for (;;) {
		int n = epoll_wait(w->ep, evs, RX_EVENTS, 200);
		bool stop = false;
		int i;

		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == w)
				stop |= drain_cmds(w);
			else
				sock_read(w, evs[i].data.ptr);
		}
		flush_dirty(w);
		reap_dead(w);
		if (stop)
			break;
	}
	return NULL;
}

/* --- the main thread's side --- */

static void mq_handler(int id, void *data, void *arg)
{
	struct rxworker *w = arg;
	struct rxfile *f, *next;
	(void)id;
	(void)data;

	pthread_mutex_lock(&w->mtx);
	f = w->drained;
	w->drained = NULL;
	pthread_mutex_unlock(&w->mtx);
	for (; f; f = next) {
		next = f->dirty_next;
		if (f->drainedh)
			f->drainedh(f->arg);
		free(f->buf);
		free(f);
	}
}

/* Stop the thread; the streams it still held are closed and freed. Files
 * of sessions still recording stay with their owners: rxworker_file_free.
 * Only at shutdown: no command may follow. */
void rxworker_shutdown(struct rxworker *w)
{
	struct cmd *c, *next;
	size_t port;

	if (!w->started)
		return;
	(void)post_new(w, CMD_STOP, NULL, NULL, 0);
	pthread_join(w->thr, NULL);
	w->started = false;
	flush_dirty(w);
	for (port = 0; port < 65536; port++)
		if (w->byport[port])
			stream_close(w, w->byport[port]);
	flush_dirty(w);                    /* what those sockets still held */
	reap_dead(w);
	for (c = w->q; c; c = next) {      /* queued after the stop */
		next = c->next;
		if (c->type == CMD_ADD) {
			close(c->st->s[0].fd);
			close(c->st->s[1].fd);
			free(c->st);
		}
		else if (c->type == CMD_CLOSE) {
			/* its owner let go of it (rsess_end): nobody else
			 * would close the capture */
			rxworker_file_free(c->f);
		}
		free(c);
	}
	w->q = NULL;
	w->qtail = &w->q;
	while (w->drained) {              /* closed, never taken by main */
		struct rxfile *f = w->drained;

		w->drained = f->dirty_next;
		rxworker_file_free(f);
	}
}

void rxworker_file_free(struct rxfile *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	free(f->buf);
	free(f);
}

static void destructor(void *arg)
{
	struct rxworker *w = arg;

	rxworker_shutdown(w);
	if (w->ep >= 0)
		close(w->ep);
	if (w->evfd >= 0)
		close(w->evfd);
	pthread_mutex_destroy(&w->mtx);
	mem_deref(w->mq);
	free(w->pkts);
}

int rxworker_alloc(struct rxworker **wp)
{
	struct rxworker *w;
	struct epoll_event ev = {.events = EPOLLIN};
	int err;

	w = mem_zalloc(sizeof(*w), destructor);
	if (!w)
		return ENOMEM;
	w->ep = -1;
	w->evfd = -1;
	w->qtail = &w->q;
	pthread_mutex_init(&w->mtx, NULL);
	w->our_ssrc = rand_u32();
	w->pkts = malloc((size_t)RX_BATCH * RX_PKT_MAX);
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!w->pkts || w->ep < 0 || w->evfd < 0) {
		err = w->pkts ? errno : ENOMEM;
		goto out;
	}
	ev.data.ptr = w;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->evfd, &ev)) {
		err = errno;
		goto out;
	}
	err = mqueue_alloc(&w->mq, mq_handler, w);
	if (err)
		goto out;
	err = pthread_create(&w->thr, NULL, thread_main, w);
	if (err)
		goto out;
	w->started = true;
 out:
	if (err)
		mem_deref(w);
	else
		*wp = w;
	return err;
}

int rxworker_file_open(struct rxworker *w, const char *path,
		       struct rxfile **fp)
{
	struct rxfile *f;
	off_t end;
	int err = 0;

	f = calloc(1, sizeof(*f));
	if (!f)
		return ENOMEM;
	f->buf = malloc(RX_FILE_BUF);
	f->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (!f->buf || f->fd < 0) {
		err = f->buf ? errno : ENOMEM;
		goto out;
	}
	/* a capture reopened after a restart already has its header */
	end = lseek(f->fd, 0, SEEK_END);
	if (end == 0) {
		uint8_t hdr[PCAPW_HDR];

		pcapw_file_header(hdr);
		if (write(f->fd, hdr, sizeof(hdr)) != sizeof(hdr)) {
			err = errno ? errno : EIO;
			goto out;
		}
	}
	f->last_rx_ms = mono_ms();
	ADD(files, 1);
	*fp = f;
	return 0;
 out:
	if (f->fd >= 0)
		close(f->fd);
	free(f->buf);
	free(f);
	return err;
}

static int sock_open(struct rxsock *s, const struct sa *addr, uint16_t port)
{
	int one = 1, rcvbuf = 1 << 20;

	s->local = *addr;
	sa_set_port(&s->local, port);
	s->fd = socket(sa_af(addr), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return errno;
	(void)setsockopt(s->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
	(void)setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(s->fd, &s->local.u.sa, s->local.len)) {
		int err = errno;
		close(s->fd);
		s->fd = -1;
		return err;
	}
	return 0;
}

int rxworker_stream_add(struct rxworker *w, struct rxfile *f,
			const struct sa *addr, uint16_t port, bool video)
{
	struct rxstream *st;
	int err;

	st = calloc(1, sizeof(*st));
	if (!st)
		return ENOMEM;
	st->f = f;
	st->port = port;
	st->video = video;
	st->s[0].fd = st->s[1].fd = -1;
	st->s[0].st = st->s[1].st = st;
	st->s[1].rtcp = true;
	err = sock_open(&st->s[0], addr, port);
	if (!err)
		err = sock_open(&st->s[1], addr, (uint16_t)(port + 1));
	if (!err)
		err = post_new(w, CMD_ADD, st, f, port);
	if (err) {
		if (st->s[0].fd >= 0)
			close(st->s[0].fd);
		if (st->s[1].fd >= 0)
			close(st->s[1].fd);
		free(st);
	}
	return err;
}

void rxworker_stream_pause(struct rxworker *w, uint16_t port, bool paused)
{
	(void)post_new(w, paused ? CMD_PAUSE : CMD_RESUME, NULL, NULL, port);
}

void rxworker_stream_remove(struct rxworker *w, uint16_t port)
{
	(void)post_new(w, CMD_REMOVE, NULL, NULL, port);
}

void rxworker_file_close(struct rxworker *w, struct rxfile *f,
			 rx_drained_h *drainedh, void *arg)
{
	f->drainedh = drainedh;
	f->arg = arg;
	if (post_new(w, CMD_CLOSE, NULL, f, 0)) {
		/* cannot even queue: the thread keeps the streams until
		 * shutdown; say drained so the session can move on */
		log_err("rx: out of memory closing a capture");
		if (drainedh)
			drainedh(arg);
	}
}

double rxworker_file_idle(struct rxworker *w, struct rxfile *f)
{
	(void)w;
	return (double)(mono_ms() -
			__atomic_load_n(&f->last_rx_ms, __ATOMIC_RELAXED)) / 1000.0;
}

uint64_t rxworker_file_packets(struct rxworker *w, struct rxfile *f)
{
	(void)w;
	return __atomic_load_n(&f->packets, __ATOMIC_RELAXED);
}

void rxworker_stats(struct rxworker *w, struct rx_stats *st)
{
	uint64_t *dst = (uint64_t *)st, *src = (uint64_t *)&w->st;
	size_t i;

	for (i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}
