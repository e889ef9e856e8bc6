/*
 * worker.c: a packet thread. Each worker runs one epoll loop over the sockets
 * of the calls placed on it and a message queue from the control thread.
 *
 * The message queue is how control changes packet-path state without locks:
 * worker_exec(w, h, arg) appends a message, wakes the worker through an
 * eventfd and sleeps until the worker has run h(w, arg) between two batches
 * of socket events. While h runs, no packet of this worker is in flight, so h
 * may add, change or free anything the worker owns. The queue mutex is taken
 * once per control command, never per packet.
 *
 * Two loops, chosen per worker when its thread starts:
 *
 * epoll (default), one iteration:
 *   epoll_wait (<= 64 ready sockets, 1 s timeout)
 *   for each ready socket: relay_recv() reads <= 2 batches of 32 datagrams,
 *     so one flooded socket cannot starve the others (level-triggered epoll
 *     brings it back next iteration: a socket is never given up on)
 *   run queued messages
 *
 * io_uring (--io-uring=yes, uring.c): one io_uring_enter per iteration
 * submits the sends and receive re-arms and waits for completions; the
 * eventfd is polled in the ring. If the ring cannot be set up (old kernel,
 * io_uring disabled) the worker logs a warning and runs the epoll loop.
 * Sockets are added to whichever the worker runs (worker_sock_add).
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include "log.h"
#include "media.h"
#include "sysio.h"

struct wmsg {
	struct wmsg *next;
	worker_exec_h *h;
	void *arg;
	bool done;
};

struct worker {
	unsigned id;
	int epfd;
	int evfd;
	pthread_t thread;
	bool running;
	bool stop;
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	struct wmsg *head, *tail;
	uint64_t now_ns;
	uint64_t now_unix;
	int load;                 /* sockets on this worker (control) */
	struct uring *ring;       /* owned by the thread; NULL: epoll loop */
	uint64_t coalesce_ns;     /* --coalesce-us, read once at start */
};

static void worker_destructor(void *arg)
{
	struct worker *w = arg;

	worker_stop(w);
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->evfd >= 0)
		close(w->evfd);
	pthread_mutex_destroy(&w->mtx);
	pthread_cond_destroy(&w->cond);
}

int worker_alloc(struct worker **wp, unsigned id)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct worker *w;
	int err = 0;

	w = mem_zalloc(sizeof(*w), worker_destructor);
	if (!w)
		return ENOMEM;
	w->id = id;
	w->epfd = w->evfd = -1;
	pthread_mutex_init(&w->mtx, NULL);
	pthread_cond_init(&w->cond, NULL);

	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->epfd < 0 || w->evfd < 0) {
		err = errno;
		goto out;
	}
	ev.data.ptr = NULL;     /* NULL marks the message eventfd */
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) < 0) {
		err = errno;
		goto out;
	}
 out:
	if (err)
		mem_deref(w);
	else
		*wp = w;
	return err;
}

static void run_messages(struct worker *w)
{
	uint64_t v;
	struct wmsg *m;

	(void)!read(w->evfd, &v, sizeof(v));
	pthread_mutex_lock(&w->mtx);
	while ((m = w->head)) {
		w->head = m->next;
		if (!w->head)
			w->tail = NULL;
		pthread_mutex_unlock(&w->mtx);
		m->h(w, m->arg);
		pthread_mutex_lock(&w->mtx);
		m->done = true;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->mtx);
}

void worker_tick(struct worker *w)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	w->now_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	w->now_unix = (uint64_t)time(NULL);
}

/* One epoll iteration; true when messages wait (or on the 1 s timeout). */
enum { COALESCE_MIN_READY = 4 };

static bool epoll_poll(struct worker *w)
{
	struct epoll_event evs[64];
	bool msgs = false;
	int i, n;

	n = sys_epoll_wait(w->epfd, evs, 64, 1000);
	worker_tick(w);
	for (i = 0; i < n; i++) {
		if (!evs[i].data.ptr) {
			msgs = true;
			continue;
		}
		relay_recv(w, evs[i].data.ptr);
	}
	/* Under load a wake-up, not a packet, is what costs most: after one
	 * that found several sockets ready, let packets gather for
	 * --coalesce-us before looking again, so the next wake-up serves
	 * more of them. Light load never waits. */
	if (w->coalesce_ns && n >= COALESCE_MIN_READY) {
		struct timespec ts = {0, (long)w->coalesce_ns};
		(void)nanosleep(&ts, NULL);
	}
	return msgs || n == 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[16];

	snprintf(name, sizeof(name), "media-w%u", w->id);
	pthread_setname_np(pthread_self(), name);
	if (g_media)
		w->coalesce_ns = (uint64_t)g_media->conf.coalesce_us * 1000;

	/* the ring belongs to this thread (single issuer): made here */
	if (g_media && g_media->conf.io_uring) {
		int err = uring_alloc(&w->ring, w);
		if (err)
			log_warn("worker: w%u: io_uring not available (%s): "
				 "using epoll", w->id, strerror(err));
	}
	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		bool msgs = w->ring ? uring_poll(w->ring) : epoll_poll(w);

		if (msgs)
			run_messages(w);
	}
	run_messages(w);
	/* drains what is still in flight before the buffers go */
	w->ring = mem_deref(w->ring);
	relay_thread_end();
	return NULL;
}

int worker_start(struct worker *w)
{
	int err;

	err = pthread_create(&w->thread, NULL, worker_main, w);
	if (err)
		return err;
	w->running = true;
	return 0;
}

void worker_stop(struct worker *w)
{
	uint64_t one = 1;

	if (!w->running)
		return;
	__atomic_store_n(&w->stop, true, __ATOMIC_RELEASE);
	(void)!write(w->evfd, &one, sizeof(one));
	pthread_join(w->thread, NULL);
	w->running = false;
}

int worker_exec(struct worker *w, worker_exec_h *h, void *arg)
{
	struct wmsg m = {.h = h, .arg = arg};
	uint64_t one = 1;

	if (!w || !h)
		return EINVAL;
	if (!w->running) {      /* not started (tests, shutdown): run inline */
		h(w, arg);
		return 0;
	}
	pthread_mutex_lock(&w->mtx);
	if (w->tail)
		w->tail->next = &m;
	else
		w->head = &m;
	w->tail = &m;
	pthread_mutex_unlock(&w->mtx);
	(void)!write(w->evfd, &one, sizeof(one));

	pthread_mutex_lock(&w->mtx);
	while (!m.done)
		pthread_cond_wait(&w->cond, &w->mtx);
	pthread_mutex_unlock(&w->mtx);
	return 0;
}

int worker_sock_add(struct worker *w, struct msock *ms)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ms};

	if (ms->registered)
		return 0;
	if (w->ring) {
		int err = uring_sock_add(w->ring, ms);
		if (err)
			return err;
	}
	else if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, ms->fd, &ev) < 0) {
		return errno;
	}
	ms->w = w;
	ms->registered = true;
	return 0;
}

void worker_sock_del(struct worker *w, struct msock *ms)
{
	if (!ms->registered)
		return;
	if (w->ring)
		uring_sock_del(w->ring, ms);
	else
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, ms->fd, NULL);
	ms->registered = false;
	ms->w = NULL;
}

unsigned worker_id(const struct worker *w)
{
	return w->id;
}

unsigned worker_load(const struct worker *w)
{
	return (unsigned)w->load;
}

void worker_load_add(struct worker *w, int delta)
{
	w->load += delta;
}

uint64_t worker_now_ns(const struct worker *w)
{
	return w->now_ns;
}

uint64_t worker_now_unix(const struct worker *w)
{
	return w->now_unix;
}

int worker_evfd(const struct worker *w)
{
	return w->evfd;
}
