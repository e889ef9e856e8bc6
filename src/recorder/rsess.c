/*
 * rsess.c: one recording session (RS) from its INVITE to its catalog row
 * saying complete or failed.
 *
 *   recording   --BYE / media timeout-->  (receive thread drains)
 *               --drained-->  finalizing  --finq-->  complete | failed
 *
 * Every state change is written to session.json (atomically) and mirrored
 * into the catalog, so the row exists from the first 200 OK on and always
 * ends complete or failed. The rsess lives until the finalizer reports
 * back; the SIP dialog is gone (BYE answered) long before that.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include "log.h"
#include "catalog.h"
#include "recd.h"

const char *rsess_new_id(char *buf, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	(void)snprintf(buf, size, "%04d%02d%02dT%02d%02d%02dZ-%08x",
		       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		       tm.tm_hour, tm.tm_min, tm.tm_sec, rand_u32());
	return buf;
}

static void destructor(void *arg)
{
	struct rsess *rs = arg;
	size_t i;

	hash_unlink(&rs->he);
	list_unlink(&rs->le);
	for (i = 0; i < rs->nblocks; i++)
		rxports_put(rs->rd->ports, rs->blocks[i].base, rs->blocks[i].n);
	mem_deref(rs->dlg);
	mem_deref(rs->answer);
	mem_deref(rs->ok_mb);
	mem_deref(rs->ok_sock);
	mem_deref(rs->meta);
}

int rsess_alloc(struct rsess **rsp, struct recd *rd, const struct sip_msg *msg)
{
	struct rsess *rs;
	char path[600];
	int err;

	rs = mem_zalloc(sizeof(*rs), destructor);
	if (!rs)
		return ENOMEM;
	rs->rd = rd;
	rs->meta = mem_zalloc(sizeof(*rs->meta), NULL);
	rs->answer = mbuf_alloc(1024);
	if (!rs->meta || !rs->answer) {
		err = ENOMEM;
		goto out;
	}
	rs->sdp_id = rand_u32();
	rs->sf.version = 1;
	rsess_new_id(rs->sf.id, sizeof(rs->sf.id));
	(void)pl_strcpy(&msg->callid, rs->sf.call_id, sizeof(rs->sf.call_id));
	(void)pl_strcpy(&msg->from.auri, rs->sf.src, sizeof(rs->sf.src));
	(void)pl_strcpy(&msg->from.tag, rs->ftag, sizeof(rs->ftag));
	rs->inv_cseq = msg->cseq.num;
	rs->sf.state = SF_RECORDING;
	rs->sf.started = recd_now();
	(void)snprintf(rs->dir, sizeof(rs->dir), "%s/%s", rd->conf.storage,
		       rs->sf.id);
	if (mkdir(rs->dir, 0750)) {
		err = errno;
		log_err("rsess: [%s] cannot create %s: %s", rs->sf.id, rs->dir,
			strerror(err));
		goto out;
	}
	err = sip_dialog_accept(&rs->dlg, msg);
	if (err)
		goto out;
	(void)snprintf(path, sizeof(path), "%s/media.pcap", rs->dir);
	err = rxworker_file_open(rd->rx, path, &rs->rxf);
	if (err) {
		log_err("rsess: [%s] cannot open %s: %s", rs->sf.id, path,
			strerror(err));
		goto out;
	}
	hash_append(rd->sessions, hash_joaat_pl(&msg->callid), &rs->he, rs);
	list_append(&rd->all, &rs->le, rs);
	++rd->nsess;
 out:
	if (err)
		mem_deref(rs);
	else
		*rsp = rs;
	return err;
}

struct rsess *rsess_find(struct recd *rd, const struct sip_msg *msg)
{
	struct le *le = list_head(hash_list(rd->sessions,
					    hash_joaat_pl(&msg->callid)));

	for (; le; le = le->next) {
		struct rsess *rs = le->data;

		if (rs->dlg && sip_dialog_cmp(rs->dlg, msg))
			return rs;
	}
	return NULL;
}

struct rsess *rsess_find_initial(struct recd *rd, const struct sip_msg *msg)
{
	struct le *le = list_head(hash_list(rd->sessions,
					    hash_joaat_pl(&msg->callid)));

	for (; le; le = le->next) {
		struct rsess *rs = le->data;

		if (!pl_strcmp(&msg->from.tag, rs->ftag) &&
		    !pl_strcmp(&msg->callid, rs->sf.call_id) &&
		    msg->cseq.num == rs->inv_cseq)
			return rs;
	}
	return NULL;
}

int recd_store(struct recd *rd, const char *dir, const struct sessfile *sf)
{
	int err = sessfile_save(dir, sf);

	if (err)
		log_err("rsess: [%s] cannot write session.json: %s",
			sf->id, strerror(err));
	if (rd->cat && catalog_sync(rd->cat, sf, dir))
		log_err("rsess: [%s] catalog update failed", sf->id);
	return err;
}

void recd_finalized(struct recd *rd, const char *dir, struct sessfile *sf,
		    int err, const char *reason)
{
	if (err) {
		sf->state = SF_FAILED;
		(void)snprintf(sf->reason, sizeof(sf->reason), "%s", reason);
		++rd->st.failed;
		log_warn("rsess: [%s] failed: %s", sf->id, reason);
	}
	else {
		sf->state = SF_COMPLETE;
		++rd->st.finalized;
		log_info("rsess: [%s] complete: %zu files", sf->id,
			 sf->nfiles);
	}
	(void)recd_store(rd, dir, sf);
}

int rsess_save(struct rsess *rs)
{
	return recd_store(rs->rd, rs->dir, &rs->sf);
}

void rsess_keep(struct rsess *rs, const char *prefix, const char *ext,
		unsigned *n, const struct pl *body)
{
	char path[600];
	FILE *f;

	++*n;
	(void)snprintf(path, sizeof(path), "%s/%s-%03u.%s", rs->dir, prefix,
		       *n, ext);
	f = fopen(path, "w");
	if (!f) {
		log_warn("rsess: [%s] cannot keep %s: %s", rs->sf.id, path,
			 strerror(errno));
		return;
	}
	if (body->l && fwrite(body->p, 1, body->l, f) != body->l)
		log_warn("rsess: [%s] short write on %s", rs->sf.id, path);
	fclose(f);
}

/* Make the receive thread follow RS->rs[] (what answer_make decided),
 * given what it had before (OLD, NOLD streams). */
int rsess_apply(struct rsess *rs, const struct rstream *old,
		const bool *old_on, size_t nold)
{
	struct recd *rd = rs->rd;
	size_t i;
	int err = 0;

	for (i = 0; i < rs->sf.nstreams; i++) {
		const struct sf_stream *st = &rs->sf.streams[i];
		bool was = i < nold && old_on[i];

		if (st->accepted && !was) {
			err = rxworker_stream_add(rd->rx, rs->rxf,
						  &rd->media_addr,
						  rs->rs[i].port,
						  rs->rs[i].video);
			if (err) {
				log_err("rsess: [%s] cannot receive on port "
					"%u: %s", rs->sf.id, rs->rs[i].port,
					strerror(err));
				return err;
			}
			if (rs->rs[i].paused)
				rxworker_stream_pause(rd->rx, rs->rs[i].port,
						      true);
		}
		else if (!st->accepted && was) {
			rxworker_stream_remove(rd->rx, rs->rs[i].port);
		}
		else if (st->accepted && old[i].paused != rs->rs[i].paused) {
			rxworker_stream_pause(rd->rx, rs->rs[i].port,
					      rs->rs[i].paused);
			log_info("rsess: [%s] stream %s %s", rs->sf.id,
				 st->label, rs->rs[i].paused ? "paused" :
				 "resumed");
		}
	}
	return 0;
}

/* The finalizer is done with the session (in the main thread). */
static void fin_done(int err, const struct sessfile *sf, const char *reason,
		     void *arg)
{
	struct rsess *rs = arg;

	rs->sf.nfiles = sf->nfiles;
	memcpy(rs->sf.files, sf->files, sizeof(rs->sf.files));
	recd_finalized(rs->rd, rs->dir, &rs->sf, err, reason);
	mem_deref(rs);
}

static void drained(void *arg)
{
	struct rsess *rs = arg;
	struct recd *rd = rs->rd;

	rs->rxf = NULL;
	rs->sf.state = SF_FINALIZING;
	(void)rsess_save(rs);
	if (finq_push(rd->fq, rs->dir, &rs->sf, fin_done, rs)) {
		recd_finalized(rd, rs->dir, &rs->sf, ENOMEM,
			       "out of memory queueing finalize");
		mem_deref(rs);
	}
}

void rsess_end(struct rsess *rs, const char *why)
{
	double now = recd_now();
	size_t i;

	if (rs->ending)
		return;
	rs->ending = true;
	--rs->rd->nsess;
	rs->sf.stopped = now;
	for (i = 0; i < rs->sf.nstreams; i++)
		if (rs->sf.streams[i].accepted && !rs->sf.streams[i].closed)
			rs->sf.streams[i].closed = now;
	log_info("rsess: [%s] ends (%s): %llu packets", rs->sf.id, why,
		 rs->rxf ? (unsigned long long)rxworker_file_packets(
			 rs->rd->rx, rs->rxf) : 0ULL);
	/* the dialog is over: in-dialog requests now get 481 */
	hash_unlink(&rs->he);
	rs->dlg = mem_deref(rs->dlg);
	srs_acked(rs);
	if (rs->rxf) {
		struct rxfile *f = rs->rxf;

		rs->rxf = NULL;          /* the receive thread's until drained */
		rxworker_file_close(rs->rd->rx, f, drained, rs);
	}
	else {
		drained(rs);
	}
}

/* Once a second: sessions whose media stopped without a BYE
 * (media-timeout), and sessions paused, or without any accepted stream, for
 * longer than inactive-timeout. A paused SRC sends nothing by design, so
 * silence cannot end it; but an SRC that never resumes nor sends BYE
 * would keep the capture descriptor, the stream sockets and the port
 * block for ever (issue 10: descriptors grew 16 -> 1196 under fuzzing). */
void rsess_tick(struct recd *rd)
{
	struct le *le = list_head(&rd->all);
	uint64_t now = tmr_jiffies();

	while (le) {
		struct rsess *rs = le->data;
		bool all_paused = true;
		size_t i;

		le = le->next;
		if (rs->ending || !rs->rxf)
			continue;
		for (i = 0; i < rs->sf.nstreams; i++)
			if (rs->sf.streams[i].accepted && !rs->rs[i].paused)
				all_paused = false;
		if (all_paused) {
			if (!rs->inactive_since)
				rs->inactive_since = now;
			if (rd->conf.inactive_timeout &&
			    now - rs->inactive_since >=
			    (uint64_t)rd->conf.inactive_timeout * 1000)
				rsess_end(rs, "inactive timeout");
			continue;
		}
		rs->inactive_since = 0;
		if (rd->conf.media_timeout &&
		    rxworker_file_idle(rd->rx, rs->rxf) >
		    (double)rd->conf.media_timeout)
			rsess_end(rs, "media timeout");
	}
}
