/*
 * recover.c: start-up recovery. Every folder under the storage root with a
 * session.json still in "recording" or "finalizing" belongs to a session
 * the previous process never finished (crash, kill -9, power cut): its
 * capture holds everything received, so it is finalized now like any
 * other, and its catalog row ends complete or failed. Folders the catalog
 * does not know (a lost or new catalog) get their row back.
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

struct rjob {
	struct recd *rd;
	char dir[600];
};

static void done(int err, const struct sessfile *sf, const char *reason,
		 void *arg)
{
	struct rjob *j = arg;
	struct sessfile out = *sf;

	recd_finalized(j->rd, j->dir, &out, err, reason);
	free(j);
}

void recd_finalize_dir(struct recd *rd, const char *dir,
		       const struct sessfile *sf)
{
	struct rjob *j = calloc(1, sizeof(*j));
	struct sessfile tmp = *sf;

	if (!j)
		return;
	j->rd = rd;
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
		free(j);
	}
}

int recover_storage(struct recd *rd)
{
	DIR *d = opendir(rd->conf.storage);
	struct dirent *e;
	unsigned found = 0;

	if (!d)
		return errno;
	while ((e = readdir(d))) {
		struct sessfile *sf;
		char dir[600], cdir[600];
		enum sf_state st;

		if (e->d_name[0] == '.')
			continue;
		(void)snprintf(dir, sizeof(dir), "%s/%s", rd->conf.storage,
			       e->d_name);
		sf = calloc(1, sizeof(*sf));
		if (!sf)
			break;
		if (sessfile_load(dir, sf)) {
			free(sf);
			continue;
		}
		if (sf->state == SF_RECORDING || sf->state == SF_FINALIZING) {
			log_notice("recover: [%s] unfinished session (%s): "
				   "finalizing", sf->id,
				   sf_state_name(sf->state));
			++rd->st.recovered;
			++found;
			recd_finalize_dir(rd, dir, sf);
		}
		else if (rd->cat &&
			 catalog_dir(rd->cat, sf->id, cdir, sizeof(cdir), &st) == ENOENT) {
			(void)catalog_sync(rd->cat, sf, dir);
		}
		free(sf);
	}
	closedir(d);
	if (found)
		log_notice("recover: %u unfinished sessions queued", found);
	return 0;
}
