/*
 * finq.c: the finalize thread. Making the playable files of a session
 * decodes and muxes seconds to minutes of media; it must not stall SIP or
 * the receive thread, so jobs queue here and run one at a time in their own
 * thread (one is enough: finalize runs far faster than real time, and a
 * second would compete with the receive thread for the CPU). Results go
 * back to the main thread through a libre mqueue.
 *
 * A job owns a copy of the session (struct sessfile) and its folder name;
 * the finalizer fills in the files, the main thread gets it back in doneh.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "finalize.h"
#include "recd.h"

struct job {
	struct job *next;
	char dir[512];
	struct sessfile sf;
	finq_done_h *doneh;
	void *arg;
	int err;
	char reason[SF_TEXT_MAX];
	struct fin_stats st;
};

struct finq {
	pthread_t thr;
	bool started, stop;
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	struct job *q, **qtail;
	struct job *done;            /* finished, newest first, for main */
	unsigned pending;            /* queued + running; main thread */
	struct mqueue *mq;
};

static void *thread_main(void *arg)
{
	struct finq *fq = arg;

	for (;;) {
		struct job *j;

		pthread_mutex_lock(&fq->mtx);
		while (!fq->q && !fq->stop)
			pthread_cond_wait(&fq->cond, &fq->mtx);
		if (fq->stop) {
			pthread_mutex_unlock(&fq->mtx);
			break;
		}
		j = fq->q;
		fq->q = j->next;
		if (!fq->q)
			fq->qtail = &fq->q;
		pthread_mutex_unlock(&fq->mtx);

		j->err = finalize_session(j->dir, &j->sf, &j->st, j->reason,
					  sizeof(j->reason));
		if (j->err && !j->reason[0])
			(void)snprintf(j->reason, sizeof(j->reason),
				       "finalize: %s", strerror(j->err));
		/* the result waits in a list, not in the mqueue's pipe: a
		 * result not taken before shutdown is still ours to free */
		pthread_mutex_lock(&fq->mtx);
		j->next = fq->done;
		fq->done = j;
		pthread_mutex_unlock(&fq->mtx);
		if (mqueue_push(fq->mq, 1, NULL))
			log_err("finalize: [%s] cannot wake the main thread",
				j->sf.id);
	}
	return NULL;
}

static void job_done(struct finq *fq, struct job *j)
{
	--fq->pending;
	if (!j->err)
		log_info("finalize: [%s] %zu files, %.1f s of media in %.2f s "
			 "(%llu packets, %llu reordered, %llu duplicates, "
			 "%llu bad)", j->sf.id, j->sf.nfiles,
			 j->st.media_seconds, j->st.wall_seconds,
			 (unsigned long long)j->st.packets,
			 (unsigned long long)j->st.reordered,
			 (unsigned long long)j->st.duplicates,
			 (unsigned long long)j->st.bad);
	if (j->doneh)
		j->doneh(j->err, &j->sf, j->reason, j->arg);
	free(j);
}

static void mq_handler(int id, void *data, void *arg)
{
	struct finq *fq = arg;
	struct job *j, *next, *rev = NULL;
	(void)id;
	(void)data;

	pthread_mutex_lock(&fq->mtx);
	j = fq->done;
	fq->done = NULL;
	pthread_mutex_unlock(&fq->mtx);
	for (; j; j = next) {          /* oldest first */
		next = j->next;
		j->next = rev;
		rev = j;
	}
	for (j = rev; j; j = next) {
		next = j->next;
		job_done(fq, j);
	}
}

static void destructor(void *arg)
{
	struct finq *fq = arg;

	if (fq->started) {
		pthread_mutex_lock(&fq->mtx);
		fq->stop = true;
		pthread_cond_signal(&fq->cond);
		pthread_mutex_unlock(&fq->mtx);
		pthread_join(fq->thr, NULL);
	}
	while (fq->q) {
		struct job *j = fq->q;
		fq->q = j->next;
		free(j);
	}
	while (fq->done) {
		struct job *j = fq->done;
		fq->done = j->next;
		free(j);
	}
	pthread_cond_destroy(&fq->cond);
	pthread_mutex_destroy(&fq->mtx);
	mem_deref(fq->mq);
}

int finq_alloc(struct finq **fqp)
{
	struct finq *fq;
	int err;

	fq = mem_zalloc(sizeof(*fq), destructor);
	if (!fq)
		return ENOMEM;
	fq->qtail = &fq->q;
	pthread_mutex_init(&fq->mtx, NULL);
	pthread_cond_init(&fq->cond, NULL);
	err = mqueue_alloc(&fq->mq, mq_handler, fq);
	if (!err)
		err = pthread_create(&fq->thr, NULL, thread_main, fq);
	if (err) {
		mem_deref(fq);
		return err;
	}
	fq->started = true;
	*fqp = fq;
	return 0;
}

int finq_push(struct finq *fq, const char *dir, const struct sessfile *sf,
	      finq_done_h *doneh, void *arg)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return ENOMEM;
	(void)snprintf(j->dir, sizeof(j->dir), "%s", dir);
	j->sf = *sf;
	j->doneh = doneh;
	j->arg = arg;
	pthread_mutex_lock(&fq->mtx);
	*fq->qtail = j;
	fq->qtail = &j->next;
	pthread_cond_signal(&fq->cond);
	pthread_mutex_unlock(&fq->mtx);
	++fq->pending;
	return 0;
}

unsigned finq_pending(const struct finq *fq)
{
	return fq->pending;
}
