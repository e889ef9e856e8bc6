/*
 * uring.c: the io_uring packet loop of a worker (--io-uring=yes).
 *
 * Why: audio streams carry 50 packets/s each, so with epoll most wake-ups
 * find one datagram per socket and pay epoll_wait + recvmmsg + sendmmsg for
 * it. Here one io_uring_enter per loop iteration submits every send and
 * receive re-arm of the previous iteration and waits for the next
 * completions; receiving costs no syscall at all.
 *
 * One ring per worker, made on the worker's thread (single issuer, deferred
 * task work: completions are posted only while this thread waits).
 *
 *   receive  each socket has one multishot IORING_OP_RECVMSG drawing its
 *            buffers from the worker's provided-buffer ring (NBUF buffers of
 *            BUFSZ); a completion carries io_uring_recvmsg_out, the source
 *            address, the SO_RXQ_OVFL cmsg and the datagram.
 *   decide   relay_packet() (relay.c): the same checks, latching, counters
 *            and destinations as the epoll path.
 *   send     one IORING_OP_SENDMSG per destination (MSG_DONTWAIT: a full
 *            send buffer fails it at once, as sendmmsg does). Its msghdr,
 *            iovec and a copy of the address live in a send slot until its
 *            completion; the buffer has a reference per send and goes back
 *            to the buffer ring when the last one completes.
 *   wait     one io_uring_enter (submit + wait, 1 s timeout) with wait_nr =
 *            sends in flight + 1: sends complete inline during the submit,
 *            so the wait returns for the next receive (or control message),
 *            not for our own sends - one syscall per wake-up.
 *   control  the worker's eventfd has a multishot poll in the ring; its
 *            completion makes uring_poll() return true and the worker runs
 *            the messages (after everything prepared is submitted).
 *
 * Worked example, A -> tally -> B with one recorder sink:
 *   CQE recv(slot 7, gen 3, bid 12, F_MORE)  -> relay_packet: 2 destinations
 *   SQE sendmsg(B's socket, buf 12) ref 1, SQE sendmsg(sink socket) ref 2
 *   next enter: both sends submitted and complete, CQEs -> ref 0 -> buf 12
 *   back to the buffer ring.
 *
 * Sockets are named in user_data by slot index + generation, never by
 * pointer: uring_sock_del() cancels the receive and bumps the generation,
 * so completions still in the CQ for the old socket are recognised and only
 * their buffer is returned; the msock can be freed at once. A send holds its
 * own reference to the socket file inside the kernel once submitted, and
 * everything is submitted before control messages (which close sockets) run.
 *
 * Overload: a multishot receive ends when the buffer ring runs dry
 * (-ENOBUFS) or on any other terminal completion; it is re-armed in the
 * same iteration after the buffers of completed sends went back, so no
 * socket is ever given up on. A datagram that finds no buffer stays in the
 * socket's queue; what overflows that queue is dropped by the kernel and
 * counted per stream from SO_RXQ_OVFL, as on the epoll path. The kernel
 * retries a busy multishot receive a bounded number of times before it
 * serves other sockets, so one flooded socket does not starve the rest.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <liburing.h>
#include "log.h"
#include "media.h"

enum {
	NBUF = 1024,                   /* provided buffers per worker (2^n) */
	NAMELEN = 32,                  /* >= sockaddr_in6, keeps cmsg aligned */
	CTLLEN = CMSG_SPACE(sizeof(uint32_t)),
	PAYLOAD = 2048,                /* = relay.c's PKTMAX */
	BUFSZ = sizeof(struct io_uring_recvmsg_out) + NAMELEN + CTLLEN +
		PAYLOAD,
	NSEND = NBUF * RELAY_MAXDST,   /* enough for every buffer's sends */
	SQ_ENTRIES = 1024,
	CQ_ENTRIES = 8192,
	BGID = 0,
	WAIT_MAX = CQ_ENTRIES / 2,
};

/* user_data: type in bits 0-1, index in 2-31, generation in 32-63 */
enum ud_type { UD_CANCEL = 0, UD_RECV = 1, UD_SEND = 2, UD_POLL = 3 };

struct uslot {
	struct msock *ms;              /* borrowed; NULL: free */
	uint32_t gen;
	uint32_t next_free;
	bool armed;                    /* a multishot receive is in the kernel */
};

struct usend {
	struct msghdr mh;
	struct iovec iov;
	struct sa to;                  /* copy: the stream may change meanwhile */
	uint16_t bid;
};

struct uring {
	struct io_uring ring;
	bool ring_ok;
	bool draining;
	struct worker *w;              /* borrowed: the owner */
	struct io_uring_buf_ring *br;  /* mmap, registered as group BGID */
	uint8_t *bufs;                 /* mmap, NBUF * BUFSZ */
	uint8_t ref[NBUF];             /* sends in flight per buffer */
	unsigned nret;                 /* buffers added, not yet published */
	struct msghdr rmh;             /* receive template: name/cmsg sizes */
	struct usend sends[NSEND];
	uint32_t sfree[NSEND];
	unsigned nsfree;
	struct uslot *slots;
	uint32_t nslots, cap, free_head;
	uint32_t *rearm;               /* slots to re-arm this iteration */
	uint32_t nrearm;
	unsigned nrecv;                /* receives the kernel holds */
	unsigned ncancel;
	bool poll_armed;
	bool msgs;
	uint64_t nobufs;               /* receives ended by a dry buffer ring */
	uint64_t send_fail;
};

static inline uint64_t ud_make(enum ud_type t, uint32_t idx, uint32_t gen)
{
	return (uint64_t)t | (uint64_t)idx << 2 | (uint64_t)gen << 32;
}

static struct io_uring_sqe *sqe_get(struct uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe) {                    /* SQ full: hand it to the kernel now */
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

static void buf_put(struct uring *u, unsigned bid)
{
	io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * BUFSZ, BUFSZ,
			      (unsigned short)bid, io_uring_buf_ring_mask(NBUF),
			      (int)u->nret++);
}

static void buf_publish(struct uring *u)
{
	if (u->nret) {
		io_uring_buf_ring_advance(u->br, (int)u->nret);
		u->nret = 0;
	}
}

static int recv_arm(struct uring *u, uint32_t idx)
{
	struct uslot *sl = &u->slots[idx];
	struct io_uring_sqe *sqe = sqe_get(u);

	if (!sqe)
		return EBUSY;
	io_uring_prep_recvmsg_multishot(sqe, sl->ms->fd, &u->rmh, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, ud_make(UD_RECV, idx, sl->gen));
	sl->armed = true;
	++u->nrecv;
	return 0;
}

static int poll_arm(struct uring *u)
{
	struct io_uring_sqe *sqe = sqe_get(u);

	if (!sqe)
		return EBUSY;
	io_uring_prep_poll_multishot(sqe, worker_evfd(u->w), POLLIN);
	io_uring_sqe_set_data64(sqe, ud_make(UD_POLL, 0, 0));
	u->poll_armed = true;
	return 0;
}

static void send_prep(struct uring *u, unsigned bid, uint8_t *p, size_t len,
		      const struct relay_dst *d)
{
	struct io_uring_sqe *sqe;
	struct usend *us;
	uint32_t idx;

	if (!u->nsfree) {              /* cannot happen: NSEND covers all */
		++u->send_fail;
		return;
	}
	idx = u->sfree[u->nsfree - 1];
	us = &u->sends[idx];
	us->to = *d->to;
	us->iov.iov_base = p;
	us->iov.iov_len = len;
	memset(&us->mh, 0, sizeof(us->mh));
	us->mh.msg_name = &us->to.u;
	us->mh.msg_namelen = us->to.len;
	us->mh.msg_iov = &us->iov;
	us->mh.msg_iovlen = 1;
	us->bid = (uint16_t)bid;
	sqe = sqe_get(u);
	if (!sqe) {
		++u->send_fail;
		return;
	}
	--u->nsfree;
	io_uring_prep_sendmsg(sqe, d->fd, &us->mh, MSG_DONTWAIT);
	io_uring_sqe_set_data64(sqe, ud_make(UD_SEND, idx, 0));
	++u->ref[bid];
}

static void ovfl_read(struct uring *u, struct msock *ms,
		      struct io_uring_recvmsg_out *o)
{
	struct cmsghdr *c;

	for (c = io_uring_recvmsg_cmsg_firsthdr(o, &u->rmh); c;
	     c = io_uring_recvmsg_cmsg_nexthdr(o, &u->rmh, c)) {
		uint32_t v;
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL)
			continue;
		memcpy(&v, CMSG_DATA(c), sizeof(v));
		relay_ovfl(ms, v);
	}
}

static void on_packet(struct uring *u, struct msock *ms, unsigned bid,
		      int res)
{
	struct relay_dst dst[RELAY_MAXDST];
	struct io_uring_recvmsg_out *o;
	uint8_t *buf = u->bufs + (size_t)bid * BUFSZ;
	unsigned nd, k, len;
	uint8_t *p;

	o = io_uring_recvmsg_validate(buf, res, &u->rmh);
	if (!o || o->namelen > NAMELEN)
		return;
	ovfl_read(u, ms, o);
	p = io_uring_recvmsg_payload(o, &u->rmh);
	len = io_uring_recvmsg_payload_length(o, res, &u->rmh);
	nd = relay_packet(u->w, ms, p, len,
			  (const struct sockaddr *)io_uring_recvmsg_name(o),
			  o->namelen, dst);
	relay_touch(u->w, ms);
	for (k = 0; k < nd; k++)
		send_prep(u, bid, p, len, &dst[k]);
}

static void on_recv(struct uring *u, const struct io_uring_cqe *cqe)
{
	uint32_t idx = (uint32_t)(cqe->user_data >> 2) & 0x3fffffff;
	uint32_t gen = (uint32_t)(cqe->user_data >> 32);
	struct uslot *sl = idx < u->nslots ? &u->slots[idx] : NULL;
	bool live = sl && sl->ms && sl->gen == gen;
	unsigned bid;

	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		--u->nrecv;
		if (live && sl->armed) {
			sl->armed = false;
			u->rearm[u->nrearm++] = idx;
		}
	}
	if (cqe->res == -ENOBUFS)
		++u->nobufs;
	else if (cqe->res < 0 && cqe->res != -ECANCELED && live)
		log_debug("uring: port %u: receive: %s", sl->ms->port,
			  strerror(-cqe->res));
	if (!(cqe->flags & IORING_CQE_F_BUFFER))
		return;
	bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	if (bid >= NBUF)
		return;
	if (live && cqe->res >= 0 && !u->draining)
		on_packet(u, sl->ms, bid, cqe->res);
	if (!u->ref[bid])
		buf_put(u, bid);
}

static void on_send(struct uring *u, const struct io_uring_cqe *cqe)
{
	uint32_t idx = (uint32_t)(cqe->user_data >> 2) & 0x3fffffff;
	unsigned bid;

	if (idx >= NSEND)
		return;
	if (cqe->res < 0)
		++u->send_fail;        /* send buffer full: lost, as sendmmsg */
	bid = u->sends[idx].bid;
	u->sfree[u->nsfree++] = idx;
	if (u->ref[bid] && !--u->ref[bid])
		buf_put(u, bid);
}

static void on_cqe(struct uring *u, const struct io_uring_cqe *cqe)
{
	switch ((enum ud_type)(cqe->user_data & 3)) {
	case UD_RECV:
		on_recv(u, cqe);
		break;
	case UD_SEND:
		on_send(u, cqe);
		break;
	case UD_POLL:
		if (!(cqe->flags & IORING_CQE_F_MORE))
			u->poll_armed = false;
		u->msgs = true;
		break;
	case UD_CANCEL:
		if (u->ncancel)
			--u->ncancel;
		break;
	}
}

/* Handle every completion there is; then buffers back, receives re-armed. */
static void reap(struct uring *u)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0, i;

	io_uring_for_each_cqe(&u->ring, head, cqe) {
		on_cqe(u, cqe);
		++n;
	}
	io_uring_cq_advance(&u->ring, n);
	buf_publish(u);
	if (u->draining)
		return;
	for (i = 0; i < u->nrearm; i++) {
		struct uslot *sl = &u->slots[u->rearm[i]];
		if (sl->ms && !sl->armed)
			recv_arm(u, u->rearm[i]);
	}
	u->nrearm = 0;
	if (!u->poll_armed)
		poll_arm(u);
}

bool uring_poll(struct uring *u)
{
	struct __kernel_timespec ts = {.tv_sec = 1, .tv_nsec = 0};
	struct io_uring_cqe *cqe;
	unsigned wait = NSEND - u->nsfree + 1;
	int r;

	/* our own sends complete during the submit: wait for one more */
	if (wait > WAIT_MAX)
		wait = WAIT_MAX;
	u->msgs = false;
	r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, wait, &ts, NULL);
	worker_tick(u->w);
	if (r == -ETIME)
		u->msgs = true;        /* the 1 s tick, as the epoll loop */
	reap(u);
	/* a message may close sockets: SQEs naming their fds go in first */
	if (u->msgs && io_uring_sq_ready(&u->ring))
		io_uring_submit(&u->ring);
	return u->msgs;
}

static int slot_new(struct uring *u, uint32_t *idxp)
{
	uint32_t idx;

	if (u->free_head != UINT32_MAX) {
		idx = u->free_head;
		u->free_head = u->slots[idx].next_free;
	}
	else {
		if (u->nslots == u->cap) {
			uint32_t cap = u->cap ? u->cap * 2 : 256;
			struct uslot *s;
			uint32_t *r;

			if (cap > 0x3fffffff)
				return ENOSPC;
			s = realloc(u->slots, cap * sizeof(*s));
			if (!s)
				return ENOMEM;
			u->slots = s;
			r = realloc(u->rearm, cap * sizeof(*r));
			if (!r)
				return ENOMEM;
			u->rearm = r;
			u->cap = cap;
		}
		idx = u->nslots++;
		u->slots[idx].gen = 0;
	}
	u->slots[idx].next_free = UINT32_MAX;
	*idxp = idx;
	return 0;
}

static void slot_free(struct uring *u, uint32_t idx)
{
	struct uslot *sl = &u->slots[idx];

	sl->ms = NULL;
	sl->armed = false;
	++sl->gen;                     /* late completions: not ours any more */
	sl->next_free = u->free_head;
	u->free_head = idx;
}

int uring_sock_add(struct uring *u, struct msock *ms)
{
	uint32_t idx;
	int err;

	err = slot_new(u, &idx);
	if (err)
		return err;
	u->slots[idx].ms = ms;
	++u->slots[idx].gen;
	u->slots[idx].armed = false;
	ms->uslot = idx;
	err = recv_arm(u, idx);
	if (err) {
		slot_free(u, idx);
		return err;
	}
	/* now, while the fd surely names this socket */
	io_uring_submit(&u->ring);
	return 0;
}

void uring_sock_del(struct uring *u, struct msock *ms)
{
	uint32_t idx = ms->uslot;
	struct uslot *sl;

	if (idx >= u->nslots || u->slots[idx].ms != ms)
		return;
	sl = &u->slots[idx];
	if (sl->armed) {
		struct io_uring_sqe *sqe = sqe_get(u);
		if (sqe) {
			io_uring_prep_cancel64(sqe, ud_make(UD_RECV, idx,
							    sl->gen), 0);
			io_uring_sqe_set_data64(sqe, ud_make(UD_CANCEL, 0, 0));
			++u->ncancel;
			io_uring_submit(&u->ring);
		}
	}
	slot_free(u, idx);
}

/* Worker thread, at its end: cancel everything, wait for it to finish. */
static void uring_destructor(void *arg)
{
	struct uring *u = arg;

	if (u->ring_ok) {
		struct io_uring_sqe *sqe;
		unsigned i;

		u->draining = true;
		sqe = sqe_get(u);
		if (sqe) {
			io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
			io_uring_sqe_set_data64(sqe, ud_make(UD_CANCEL, 0, 0));
			++u->ncancel;
		}
		for (i = 0; i < 200 && (u->nrecv || u->poll_armed ||
					u->ncancel || u->nsfree < NSEND); i++) {
			struct __kernel_timespec ts = {.tv_nsec = 10000000};
			struct io_uring_cqe *cqe;

			io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1,
							 &ts, NULL);
			reap(u);
		}
		if (u->nobufs || u->send_fail)
			log_info("uring: w%u: %llu receives re-armed after the "
				 "buffer ring ran dry, %llu sends failed",
				 worker_id(u->w),
				 (unsigned long long)u->nobufs,
				 (unsigned long long)u->send_fail);
		io_uring_queue_exit(&u->ring);
	}
	if (u->br && u->br != MAP_FAILED)
		munmap(u->br, NBUF * sizeof(struct io_uring_buf));
	if (u->bufs && u->bufs != MAP_FAILED)
		munmap(u->bufs, (size_t)NBUF * BUFSZ);
	free(u->slots);
	free(u->rearm);
}

static int ring_init(struct uring *u)
{
	/* SINGLE_ISSUER (6.0) also says multishot recvmsg (6.0) is there */
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
	};
	unsigned i;
	int r = -EINVAL;

	for (i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = tries[i] | IORING_SETUP_CQSIZE |
			  IORING_SETUP_SUBMIT_ALL;
		p.cq_entries = CQ_ENTRIES;
		r = io_uring_queue_init_params(SQ_ENTRIES, &u->ring, &p);
		if (r == 0)
			return 0;
		if (r != -EINVAL)
			break;
	}
	return -r;
}

int uring_alloc(struct uring **up, struct worker *w)
{
	struct io_uring_buf_reg reg;
	struct uring *u;
	unsigned i;
	int err, r;

	if (!up || !w)
		return EINVAL;
	u = mem_zalloc(sizeof(*u), uring_destructor);
	if (!u)
		return ENOMEM;
	u->w = w;
	u->free_head = UINT32_MAX;
	for (i = 0; i < NSEND; i++)
		u->sfree[i] = NSEND - 1 - i;
	u->nsfree = NSEND;
	u->rmh.msg_namelen = NAMELEN;
	u->rmh.msg_controllen = CTLLEN;

	err = ring_init(u);
	if (err)
		goto out;
	u->ring_ok = true;
	(void)io_uring_register_ring_fd(&u->ring);   /* optional: saves fget */

	u->br = mmap(NULL, NBUF * sizeof(struct io_uring_buf),
		     PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	u->bufs = mmap(NULL, (size_t)NBUF * BUFSZ, PROT_READ | PROT_WRITE,
		       MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (u->br == MAP_FAILED || u->bufs == MAP_FAILED) {
		err = ENOMEM;
		goto out;
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)u->br;
	reg.ring_entries = NBUF;
	reg.bgid = BGID;
	r = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (r < 0) {
		err = -r;
		goto out;
	}
	io_uring_buf_ring_init(u->br);
	for (i = 0; i < NBUF; i++)
		buf_put(u, i);
	buf_publish(u);

	err = poll_arm(u);
	if (!err) {
		r = io_uring_submit(&u->ring);
		if (r < 0)
			err = -r;
	}
 out:
	if (err)
		mem_deref(u);
	else
		*up = u;
	return err;
}
