/*
 * recdl.c: one file download of the recorder's API (recapi.c), streamed.
 *
 * libre 1.1.0's HTTP server answers with one http_reply() whose whole body
 * sits in memory and in libre's send queue (512 KiB at most by default).
 * A recording can be gigabytes, so recapi.c sends only the response head
 * with http_reply() and hands the connection to a struct recdl, which
 * takes the TCP connection over from the HTTP server the way libre's own
 * WebSocket server does (mem_ref the tcp_conn, set our handlers,
 * http_conn_close the HTTP side) and then:
 *
 *   socket writable, libre's queue empty  -> dl_send_h: pread up to 16
 *        chunks of 64 KiB and tcp_send each, until the kernel takes no more
 *        (libre queues the rest of the last one; we wait for it to drain)
 *   every byte queued and drained         -> dl_drained: shutdown(SHUT_WR)
 *        and wait up to 5 s for the client's FIN, so bytes it may still
 *        send cannot turn our close into a reset that destroys the tail
 *        of the file in its receive buffer
 *   client closed / reset, no progress for 60 s, file shrank, linger over
 *                                         -> dl_finish: freed from a 0 ms
 *        timer, never inside a handler libre is running for the socket
 *
 * Memory per download: one 64 KiB chunk plus at most one queued chunk.
 * The connection is closed after the download ("Connection: close" in the
 * head), so a pipelined request behind it is read and dropped.
 *
 * Range (RFC 9110 14.2): recdl_range() accepts one "bytes=" range:
 * first-last, first- and -suffix. Several ranges or a malformed header are
 * ignored (the whole file is sent, which the RFC allows); a range that
 * starts past the end is 416. Positions have no length limit in the RFC:
 * one too large for 64 bits saturates, so it is past every end, as it
 * would be in any file: bytes=<20 digits>- is 416, bytes=0-<20 digits> is
 * 206 to the end, bytes=-<20 digits> is 206 for the whole file.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include "log.h"
#include "recapi.h"

enum {
	DL_CHUNK     = 64 * 1024,    /* bytes read and sent per step */
	DL_BURST     = 16,           /* chunks per writable event at most */
	DL_STALL_MS  = 60000,        /* no progress for this long: give up */
	DL_LINGER_MS = 5000,         /* after the last byte: wait for FIN */
};

struct recdl {
	struct le le;                /* the api's list of downloads */
	struct recdl_counters *cnt;  /* borrowed: the api's */
	struct tcp_conn *tc;
	struct mbuf *mb;             /* the chunk buffer, reused */
	struct tmr tmr;              /* stall check, linger, deferred free */
	int fd;
	uint64_t pos, end;           /* next byte to send, one past the last */
	uint64_t seen;               /* bytes out of libre at the last check */
	bool done;                   /* every byte sent, waiting for FIN */
	bool finishing;              /* dl_finish ran: free pending */
	struct sa peer;
};

/* Digits only, at least one; a value past UINT64_MAX saturates to it. */
static bool parse_u64(const char *p, size_t n, uint64_t *v)
{
	uint64_t x = 0;
	size_t i;

	if (!n)
		return false;
	for (i = 0; i < n; i++) {
		uint64_t d;

		if (p[i] < '0' || p[i] > '9')
			return false;
		d = (uint64_t)(p[i] - '0');
		x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
	}
	*v = x;
	return true;
}

int recdl_range(const struct pl *v, uint64_t size, uint64_t *first,
		uint64_t *last)
{
	static const char unit[] = "bytes=";
	const char *p, *dash;
	size_t n;
	uint64_t a, b;

	if (v->l < sizeof(unit) || strncasecmp(v->p, unit, sizeof(unit) - 1))
		return ENOENT;
	p = v->p + sizeof(unit) - 1;
	n = v->l - (sizeof(unit) - 1);
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		--n;
	if (memchr(p, ',', n))
		return ENOENT;
	dash = memchr(p, '-', n);
	if (!dash)
		return ENOENT;
	if (dash == p) {                               /* -suffix */
		if (!parse_u64(p + 1, n - 1, &b))
			return ENOENT;
		if (!b || !size)
			return ERANGE;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return 0;
	}
	if (!parse_u64(p, (size_t)(dash - p), &a))
		return ENOENT;
	if ((size_t)(dash - p) + 1 == n) {             /* first- */
		b = UINT64_MAX;
	}
	else if (!parse_u64(dash + 1, n - (size_t)(dash - p) - 1, &b) ||
		 b < a) {
		return ENOENT;
	}
	if (a >= size)
		return ERANGE;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return 0;
}

static void dl_destructor(void *arg)
{
	struct recdl *dl = arg;

	list_unlink(&dl->le);
	tmr_cancel(&dl->tmr);
	if (dl->tc) {
		tcp_set_send(dl->tc, NULL);
		tcp_set_handlers(dl->tc, NULL, NULL, NULL, NULL);
	}
	mem_deref(dl->tc);
	mem_deref(dl->mb);
	if (dl->fd >= 0)
		close(dl->fd);
}

int recdl_alloc(struct recdl **dlp, int fd, uint64_t first, uint64_t end,
		struct recdl_counters *cnt)
{
	struct recdl *dl;

	if (!dlp || fd < 0 || end < first || !cnt)
		return EINVAL;
	dl = mem_zalloc(sizeof(*dl), dl_destructor);
	if (!dl)
		return ENOMEM;
	dl->fd = -1;
	dl->mb = mbuf_alloc(DL_CHUNK);
	if (!dl->mb) {
		mem_deref(dl);
		return ENOMEM;
	}
	dl->fd = fd;
	dl->cnt = cnt;
	dl->pos = dl->seen = first;
	dl->end = end;
	*dlp = dl;
	return 0;
}

static void dl_free_h(void *arg)
{
	mem_deref(arg);
}

static void dl_finish(struct recdl *dl, int err)
{
	if (dl->finishing)
		return;
	dl->finishing = true;
	if (err || !dl->done) {
		char peer[64];

		++dl->cnt->aborted;
		(void)re_snprintf(peer, sizeof(peer), "%J", &dl->peer);
		log_info("recapi: download to %s cut after %llu of %llu "
			 "bytes: %s", peer, (unsigned long long)dl->pos,
			 (unsigned long long)dl->end,
			 strerror(err ? err : ECONNRESET));
	}
	if (dl->tc) {
		tcp_set_send(dl->tc, NULL);
		tcp_set_handlers(dl->tc, NULL, NULL, NULL, NULL);
	}
	tmr_start(&dl->tmr, 0, dl_free_h, dl);
}

static void dl_linger_h(void *arg)
{
	/* the client has not closed its side; we are done anyway */
	dl_finish(arg, 0);
}

static void dl_drained(struct recdl *dl)
{
	dl->done = true;
	tcp_set_send(dl->tc, NULL);
	(void)shutdown(tcp_conn_fd(dl->tc), SHUT_WR);
	tmr_start(&dl->tmr, DL_LINGER_MS, dl_linger_h, dl);
}

static void dl_send_h(void *arg)
{
	struct recdl *dl = arg;
	unsigned i;

	if (dl->done || dl->finishing)
		return;
	for (i = 0; i < DL_BURST && dl->pos < dl->end; i++) {
		uint64_t left = dl->end - dl->pos;
		size_t want = left > DL_CHUNK ? DL_CHUNK : (size_t)left;
		ssize_t n;
		int err;

		if (tcp_conn_txqsz(dl->tc))
			return;            /* called again once it drained */
		n = pread(dl->fd, dl->mb->buf, want, (off_t)dl->pos);
		if (n <= 0) {
			/* the file shrank under us: the length promised in
			 * the head cannot be kept; the client sees a short
			 * body and the closed connection */
			dl_finish(dl, n < 0 ? errno : EIO);
			return;
		}
		dl->mb->pos = 0;
		dl->mb->end = (size_t)n;
		err = tcp_send(dl->tc, dl->mb);
		if (err) {
			dl_finish(dl, err);
			return;
		}
		dl->pos += (uint64_t)n;
		dl->cnt->bytes += (uint64_t)n;
	}
	if (dl->pos >= dl->end && !tcp_conn_txqsz(dl->tc))
		dl_drained(dl);
}

static void dl_recv_h(struct mbuf *mb, void *arg)
{
	(void)mb;
	(void)arg;
	/* whatever the client sends now (a pipelined request) is dropped:
	 * the connection closes after the download */
}

static void dl_close_h(int err, void *arg)
{
	struct recdl *dl = arg;

	dl_finish(dl, dl->done ? 0 : (err ? err : ECONNRESET));
}

static void dl_stall_h(void *arg)
{
	struct recdl *dl = arg;
	uint64_t sent = dl->pos - tcp_conn_txqsz(dl->tc);

	if (sent == dl->seen) {
		dl_finish(dl, ETIMEDOUT);
		return;
	}
	dl->seen = sent;
	tmr_start(&dl->tmr, DL_STALL_MS, dl_stall_h, dl);
}

void recdl_start(struct recdl *dl, struct http_conn *conn, struct list *dls)
{
	int err;

	sa_cpy(&dl->peer, http_conn_peer(conn));
	list_append(dls, &dl->le, dl);
	dl->tc = mem_ref(http_conn_tcp(conn));
	if (!dl->tc) {
		dl_finish(dl, ENOTCONN);
		return;
	}
	/* from here the socket is ours: libre's HTTP server sees its
	 * connection closed when the request handler returns and lets go */
	tcp_set_handlers(dl->tc, NULL, dl_recv_h, dl_close_h, dl);
	http_conn_close(conn);
	/* dl_send_h runs whenever the socket is writable and libre's queue
	 * is empty (an empty body goes straight to dl_drained) */
	err = tcp_set_send(dl->tc, dl_send_h);
	if (err) {
		dl_finish(dl, err);
		return;
	}
	tmr_start(&dl->tmr, DL_STALL_MS, dl_stall_h, dl);
}
