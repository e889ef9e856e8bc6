/*
 * outputs.c: the files of one finalize run and what goes into which.
 *
 *   <party>.mp4   a party whose video is H.264 (with its Opus audio)
 *   <party>.webm  a party whose video is VP8, or a party without video
 *   <party>.mkv   a party that sends both H.264 and VP8 (no browser format
 *                 takes both)
 *   tracks.mkv    every track, in stream order
 *   stereo.wav    the first audio track of the first two parties that
 *                 have one (left, right); short of two parties, audio
 *                 tracks of no party fill in; none at all: no stereo.wav
 * A track goes into at most two files (its party's and tracks.mkv): it is
 * encoded once and its packets are written to both.
 *
 * Every track is named after its participant and medium, the same in each
 * file: "Alice (sip:alice@example.com) audio" (display name, AOR), or
 * "alice (sip:alice@example.com) video" without a display name, "party2
 * audio" without metadata, "stream 3 (label 7) audio" for a stream no
 * party sends.
 *
 * fin_outputs_finish() lists each finished file in sf->files (name, kind,
 * participant, size, sha256) and fsyncs the folder for the renames.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <libavcodec/avcodec.h>
#include <re.h>
#include "log.h"
#include "fin_priv.h"

struct fin_track *fin_track_of(struct fin_run *run,
			       const struct fin_stream *fs)
{
	size_t i;

	for (i = 0; i < run->ntr; i++)
		if (run->tr[i].fs == fs)
			return &run->tr[i];
	return NULL;
}

static const AVCodecParameters *track_par(const struct fin_track *t)
{
	return t->vt ? fin_vtrack_par(t->vt) : fin_atrack_par(t->at);
}

/* The participant of party P, NULL without metadata. */
static const struct sf_participant *party_part(const struct fin_run *run,
					       const struct fin_party *p)
{
	size_t i;

	if (!p->id || !p->id[0])
		return NULL;
	for (i = 0; i < run->sf->nparts; i++)
		if (!strcmp(run->sf->parts[i].id, p->id))
			return &run->sf->parts[i];
	return NULL;
}

static void track_title(const struct fin_run *run, const struct fin_track *t,
			char *buf, size_t size)
{
	const char *medium = t->vt ? "video" : "audio";
	const struct sf_participant *sp;
	const struct fin_party *p = NULL;
	size_t i, j;

	for (i = 0; i < run->nparty && !p; i++)
		for (j = 0; j < run->party[i].nst; j++)
			if (run->party[i].st[j] == t->fs)
				p = &run->party[i];
	if (!p) {
		(void)snprintf(buf, size, "stream %zu (label %s) %s",
			       t->fs->sidx + 1, t->fs->sfs->label, medium);
		return;
	}
	sp = party_part(run, p);
	if (sp && sp->aor[0])
		(void)snprintf(buf, size, "%s (%s) %s",
			       sp->name[0] ? sp->name : p->base, sp->aor,
			       medium);
	else
		(void)snprintf(buf, size, "%s %s",
			       sp && sp->name[0] ? sp->name : p->base, medium);
}

static int track_to(struct fin_run *run, struct fin_track *t,
		    struct fin_out *out)
{
	char title[2 * SF_TEXT_MAX + 32];
	int err;

	track_title(run, t, title, sizeof(title));
	err = fin_out_add(out, track_par(t), t->tb, title,
			  &t->dst[t->ndst].index);
	if (err)
		return err;
	t->dst[t->ndst++].out = out;
	return 0;
}

static int party_output(struct fin_run *run, struct fin_party *p)
{
	bool h264 = false, vp8 = false;
	const char *fmt, *ext;
	char name[SF_ID_MAX];
	size_t j;
	int err;

	for (j = 0; j < p->nst; j++) {
		struct fin_track *t = fin_track_of(run, p->st[j]);

		if (t && t->vt && p->st[j]->codec == DP_H264)
			h264 = true;
		else if (t && t->vt)
			vp8 = true;
	}
	if (h264 && vp8)
		fmt = "matroska", ext = "mkv";
	else if (h264)
		fmt = "mp4", ext = "mp4";
	else
		fmt = "webm", ext = "webm";

	(void)snprintf(name, sizeof(name), "%s.%s", p->base, ext);
	err = fin_out_alloc(&p->out, run->dir, name, fmt);
	if (err)
		return err;

	for (j = 0; j < p->nst; j++) {
		struct fin_track *t = fin_track_of(run, p->st[j]);

		if (t) {
			err = track_to(run, t, p->out);
			if (err)
				return err;
		}
	}

	return 0;
}

/* stereo.wav: the first audio track of the first two parties that have
 * one; short of two, audio tracks of no party, in stream order. */
static int wav_output(struct fin_run *run)
{
	struct fin_track *ch[2] = {NULL, NULL};
	size_t i, j, n = 0;
	int err;

	for (i = 0; i < run->nparty && n < 2; i++) {
		for (j = 0; j < run->party[i].nst; j++) {
			struct fin_track *t = fin_track_of(run, run->party[i].st[j]);

			if (t && t->at) {
				ch[n++] = t;
				break;
			}
		}
	}
	for (i = 0; i < run->ntr && n < 2; i++)
		if (run->tr[i].at && !fin_claimed(run, run->tr[i].fs))
			ch[n++] = &run->tr[i];
	if (!n)
		return 0;

	err = fin_wav_alloc(&run->wav, run->dir, "stereo.wav", FIN_WAV_RATE);
	if (err)
		return err;

	for (i = 0; i < 2; i++) {
		if (ch[i])
			fin_atrack_wav(ch[i]->at, run->wav, (int)i);
		else
			fin_wav_end(run->wav, (int)i);
	}

	return 0;
}

int fin_outputs_make(struct fin_run *run)
{
	size_t i, nfiles = 0;
	int err;

	for (i = 0; i < run->nparty; i++) {
		struct fin_party *p = &run->party[i];
		size_t j, n = 0;

		for (j = 0; j < p->nst; j++)
			n += fin_track_of(run, p->st[j]) != NULL;
		if (!n)
			continue;
		if (nfiles == FIN_PARTY_FILES) {
			log_warn("finalize: [%s] more than %d parties: no "
				 "file for %s", run->sf->id, FIN_PARTY_FILES,
				 p->base);
			continue;
		}
		err = party_output(run, p);
		if (err)
			return err;
		++nfiles;
	}

	err = fin_out_alloc(&run->mkv, run->dir, "tracks.mkv", "matroska");
	if (err)
		return err;
	for (i = 0; i < run->ntr; i++) {
		err = track_to(run, &run->tr[i], run->mkv);
		if (err)
			return err;
	}

	return wav_output(run);
}

static int file_add(struct fin_run *run, const char *name, const char *kind,
		    const char *participant, uint64_t size, const char *sha)
{
	struct sf_file *f;

	if (run->sf->nfiles >= SF_STREAMS_MAX)
		return ENOSPC;

	f = &run->sf->files[run->sf->nfiles++];
	memset(f, 0, sizeof(*f));
	(void)snprintf(f->name, sizeof(f->name), "%s", name);
	(void)snprintf(f->kind, sizeof(f->kind), "%s", kind);
	(void)snprintf(f->participant, sizeof(f->participant), "%s",
		       participant);
	f->size = size;
	(void)snprintf(f->sha256, sizeof(f->sha256), "%s", sha);
	return 0;
}

int fin_outputs_begin(struct fin_run *run, char *what, size_t size)
{
	size_t i;
	int err;

	for (i = 0; i < run->nparty; i++) {
		if (!run->party[i].out)
			continue;
		err = fin_out_begin(run->party[i].out);
		if (err) {
			(void)snprintf(what, size, "%s",
				       fin_out_name(run->party[i].out));
			return err;
		}
	}

	err = fin_out_begin(run->mkv);
	if (err)
		(void)snprintf(what, size, "tracks.mkv");

	return err;
}

int fin_outputs_finish(struct fin_run *run, char *what, size_t size)
{
	char sha[65];
	uint64_t bytes;
	size_t i;
	int err;

	for (i = 0; i < run->nparty; i++) {
		struct fin_party *p = &run->party[i];

		if (!p->out)
			continue;
		(void)snprintf(what, size, "%s", fin_out_name(p->out));
		err = fin_out_finish(p->out, &bytes, sha);
		if (!err)
			err = file_add(run, fin_out_name(p->out), "participant",
				       p->id, bytes, sha);
		if (err)
			return err;
	}

	(void)snprintf(what, size, "tracks.mkv");
	err = fin_out_finish(run->mkv, &bytes, sha);
	if (!err)
		err = file_add(run, "tracks.mkv", "tracks", "", bytes, sha);
	if (err)
		return err;

	if (run->wav) {
		(void)snprintf(what, size, "stereo.wav");
		err = fin_wav_finish(run->wav,
				     llround(run->length * FIN_WAV_RATE),
				     &bytes, sha);
		if (!err)
			err = file_add(run, "stereo.wav", "stereo", "", bytes,
				       sha);
		if (err)
			return err;
	}

	/* the renames themselves */
	(void)snprintf(what, size, "%s", run->dir);
	return fin_fsync_path(run->dir);
}
