/*
 * recover.c: start-up recovery. Every folder under the storage root with a
 * session.json still in "recording" or "finalizing" belongs to a session
 * the previous process never finished (crash, kill -9, power cut): its
 * capture holds everything received, so it is finalized now like any
 * other, and its catalog row ends complete or failed. Folders the catalog
 * does not know (a lost or new catalog) get their row back.
 *
 * The scan runs in the main loop, in slices, after SIP and the API are up.
 * Measured reason (issue 10): reading every session.json before serving
 * kept a recorder with 44,600 folders deaf to SIP and HTTP for 77-88 s
 * (Debug/ASan); a slice reads folders for at most RCV_SLICE_MS and then
 * yields to the loop with a 0 ms timer, so requests wait one slice at most.
 * The catalog is only ever touched from the main thread, so a slice needs
 * no lock and a search made during the scan sees each row either as it
 * was (an unfinished session still "recording") or already queued
 * ("finalizing"). The status counters say whether the scan runs and how far
 * it got (recover_status_print).
 *
 * A folder made by this process during the scan (readdir may return it)
 * is "recording" too, but it is live: it is skipped when a session of ours
 * has its id (recd.all holds every session until it is finalized).
 *
 * Worked example, 50,000 folders of which 200 unfinished: start() calls
 * recover_start(); SIP and HTTP answer at once; each slice of ~10 ms reads
 * a few hundred session.json files; 200 of them are stored "finalizing"
 * and pushed to the finalize thread as they are found; the last slice logs
 * "recover: scan of 50000 folders done in 4.1 s: 200 unfinished queued".
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "log.h"
#include "catalog.h"
#include "recd.h"

enum {
	RCV_SLICE_MS = 10,      /* main-loop time one slice may take */
};

struct recovery {
	struct recd *rd;        /* borrowed: owns us */
	DIR *dir;
	struct tmr tmr;
	struct sessfile *sf;    /* scratch, one folder at a time */
	uint64_t t0, t_end;     /* tmr_jiffies() at start / at the end */
	unsigned scanned;       /* folder entries looked at */
	unsigned queued;        /* unfinished: finalizing now */
	unsigned synced;        /* catalog rows given back */
	unsigned live;          /* skipped: our own live sessions */
	bool running;
	struct list jobs;       /* struct rjob queued to finalize */
};

/* A recovered folder in the finalize queue. Owned by the recovery's job
 * list, not by the queue: at shutdown finq drops the jobs it did not run
 * without calling back (the folder stays "finalizing" for the next start),
 * and the recovery, freed before finq, frees what they pointed to. */
struct rjob {
	struct le le;
	struct recd *rd;        /* borrowed */
	char dir[600];
};

static void rjob_destructor(void *arg)
{
	struct rjob *j = arg;

	list_unlink(&j->le);
}

static void done(int err, const struct sessfile *sf, const char *reason,
		 void *arg)
{
	struct rjob *j = arg;
	struct sessfile out = *sf;

	recd_finalized(j->rd, j->dir, &out, err, reason);
	mem_deref(j);
}

static void finalize_dir(struct recovery *r, const char *dir,
			 const struct sessfile *sf)
{
	struct recd *rd = r->rd;
	struct rjob *j = mem_zalloc(sizeof(*j), rjob_destructor);
	struct sessfile tmp = *sf;

	if (!j)
		return;
	j->rd = rd;
	list_append(&r->jobs, &j->le, j);
	(void)snprintf(j->dir, sizeof(j->dir), "%s", dir);
	tmp.state = SF_FINALIZING;
	if (!tmp.stopped) {
		/* the capture was last written when the last packet came:
		 * the session stopped then, not when we came back */
		char path[700];
		struct stat st;

		(void)snprintf(path, sizeof(path), "%s/media.pcap", dir);
		tmp.stopped = stat(path, &st) ? recd_now() :
			(double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
		if (tmp.stopped < tmp.started)
			tmp.stopped = tmp.started;
	}
	(void)recd_store(rd, dir, &tmp);
	if (finq_push(rd->fq, dir, &tmp, done, j)) {
		recd_finalized(rd, dir, &tmp, ENOMEM,
			       "out of memory queueing finalize");
		mem_deref(j);
	}
}

/* Is ID one of this process's sessions (live, draining or finalizing)? */
static bool ours(const struct recd *rd, const char *id)
{
	struct le *le;

	for (le = list_head(&rd->all); le; le = le->next) {
		const struct rsess *rs = le->data;

		if (!strcmp(rs->sf.id, id))
			return true;
	}
	return false;
}

/* One folder entry NAME. */
static void scan_one(struct recovery *r, const char *name)
{
	struct recd *rd = r->rd;
	struct sessfile *sf = r->sf;
	char dir[600], cdir[600];
	enum sf_state st;

	(void)snprintf(dir, sizeof(dir), "%s/%s", rd->conf.storage, name);
	if (sessfile_load(dir, sf))
		return;
	if (sf->state == SF_RECORDING || sf->state == SF_FINALIZING) {
		if (ours(rd, sf->id)) {
			++r->live;
			return;
		}
		log_notice("recover: [%s] unfinished session (%s): "
			   "finalizing", sf->id, sf_state_name(sf->state));
		++rd->st.recovered;
		++r->queued;
		finalize_dir(r, dir, sf);
	}
	else if (rd->cat &&
		 catalog_dir(rd->cat, sf->id, cdir, sizeof(cdir), &st) ==
		 ENOENT) {
		if (!catalog_sync(rd->cat, sf, dir))
			++r->synced;
	}
}

static void finish(struct recovery *r)
{
	r->running = false;
	r->t_end = tmr_jiffies();
	if (r->dir)
		closedir(r->dir);
	r->dir = NULL;
	r->sf = mem_deref(r->sf);
	log_notice("recover: scan of %u folders done in %.1f s: %u "
		   "unfinished queued, %u catalog rows restored",
		   r->scanned, (double)(r->t_end - r->t0) / 1000.0, r->queued,
		   r->synced);
}

static void slice_h(void *arg)
{
	struct recovery *r = arg;
	uint64_t until = tmr_jiffies() + RCV_SLICE_MS;
	unsigned n = 0;

	for (;;) {
		struct dirent *e;

		/* the clock is read every 16 entries: a few µs each */
		if (!(++n & 15) && tmr_jiffies() >= until)
			break;
		errno = 0;
		e = readdir(r->dir);
		if (!e) {
			if (errno)
				log_warn("recover: reading %s: %s",
					 r->rd->conf.storage, strerror(errno));
			finish(r);
			return;
		}
		if (e->d_name[0] == '.')
			continue;
		++r->scanned;
		scan_one(r, e->d_name);
	}
	tmr_start(&r->tmr, 0, slice_h, r);
}

static void destructor(void *arg)
{
	struct recovery *r = arg;

	tmr_cancel(&r->tmr);
	if (r->dir)
		closedir(r->dir);
	mem_deref(r->sf);
	list_flush(&r->jobs);
}

int recover_start(struct recovery **rp, struct recd *rd)
{
	struct recovery *r;
	int err;

	r = mem_zalloc(sizeof(*r), destructor);
	if (!r)
		return ENOMEM;
	r->rd = rd;
	r->t0 = tmr_jiffies();
	r->sf = mem_zalloc(sizeof(*r->sf), NULL);
	r->dir = opendir(rd->conf.storage);
	if (!r->sf || !r->dir) {
		err = r->sf ? errno : ENOMEM;
		mem_deref(r);
		return err;
	}
	r->running = true;
	tmr_init(&r->tmr);
	tmr_start(&r->tmr, 0, slice_h, r);
	*rp = r;
	return 0;
}

int recover_status_print(struct re_printf *pf, const struct recovery *r)
{
	uint64_t end;

	if (!r)
		return re_hprintf(pf, "{\"running\":false}");
	end = r->running ? tmr_jiffies() : r->t_end;
	return re_hprintf(pf, "{\"running\":%s,\"scanned\":%u,\"queued\":%u,"
			  "\"catalog_restored\":%u,\"seconds\":%.3f}",
			  r->running ? "true" : "false", r->scanned,
			  r->queued, r->synced, (double)(end - r->t0) / 1000.0);
}

bool recover_running(const struct recovery *r)
{
	return r && r->running;
}
