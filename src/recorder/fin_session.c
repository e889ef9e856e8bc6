/*
 * fin_session.c: finalize_session(), the order of the work, and which
 * stream goes into which file.
 *
 *   1. read and time the capture (fin_capture.c)
 *   2. every audio stream: PCM timeline, Opus packets (fin_audio.c)
 *   3. parties: a participant's first audio and first video stream among
 *      the labels it sends (metadata); without metadata, audio n and video
 *      n make party n
 *   4. files (fin_out.c), each written as .<name>.part and renamed:
 *        <party>.mp4 (H.264) | <party>.webm (VP8, or audio only)
 *        tracks.mkv   every stream that carried media
 *        stereo.wav   party 1 left, party 2 right
 *   5. size and SHA-256 of each into SF->files
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "depack.h"
#include "fin.h"

struct party {
	const struct sf_participant *p;   /* NULL without metadata */
	struct fin_stream *audio, *video;
	char base[48];
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct fin_stream *by_label(struct fin_capture *c, const char *label,
				   bool video)
{
	size_t i;

	for (i = 0; i < c->nst; i++)
		if (c->st[i].npkts && c->st[i].video == video &&
		    !strcmp(c->st[i].sf->label, label))
			return &c->st[i];
	return NULL;
}

/* A file name from a participant: "Alice" -> "alice", AOR user part if no
 * name, "party-N" if neither gives anything usable. */
static void base_name(struct party *pt, size_t n, struct party *all,
		      size_t nall)
{
	const char *src = pt->p ? (pt->p->name[0] ? pt->p->name : pt->p->aor)
		: "";
	size_t k = 0, i;

	if (!strncmp(src, "sip:", 4) || !strncmp(src, "tel:", 4))
		src += 4;
	else if (!strncmp(src, "sips:", 5))
		src += 5;
	for (; *src && *src != '@' && k < 32; src++) {
		char ch = *src;

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '+')
			pt->base[k++] = ch;
		else if (k && pt->base[k - 1] != '_')
			pt->base[k++] = '_';
	}
	pt->base[k] = '\0';
	if (!k || !strcmp(pt->base, "tracks") || !strcmp(pt->base, "stereo"))
		(void)snprintf(pt->base, sizeof(pt->base), "party-%zu", n + 1);
	for (i = 0; i < nall; i++) {
		if (&all[i] != pt && !strcmp(all[i].base, pt->base)) {
			size_t l = strlen(pt->base);

			(void)snprintf(pt->base + MIN(l, 40), 8, "-%zu", n + 1);
			break;
		}
	}
}

static size_t parties(struct fin_capture *c, struct party *out)
{
	const struct sessfile *sf = c->sf;
	size_t n = 0, i, j;

	for (i = 0; i < sf->nparts && n < SF_PARTS_MAX; i++) {
		struct party *pt = &out[n];

		memset(pt, 0, sizeof(*pt));
		pt->p = &sf->parts[i];
		for (j = 0; j < pt->p->nsend; j++) {
			if (!pt->audio)
				pt->audio = by_label(c, pt->p->send[j], false);
			if (!pt->video)
				pt->video = by_label(c, pt->p->send[j], true);
		}
		if (pt->audio || pt->video)
			++n;
	}
	if (n)
		return n;
	/* no mapping: audio n and video n are party n */
	for (i = 0; i < c->nst; i++) {
		struct fin_stream *s = &c->st[i];

		if (!s->npkts)
			continue;
		for (j = 0; j < n; j++)
			if (s->video ? !out[j].video : !out[j].audio)
				break;
		if (j == n) {
			if (n == SF_PARTS_MAX)
				continue;
			memset(&out[n++], 0, sizeof(out[0]));
		}
		if (s->video)
			out[j].video = s;
		else
			out[j].audio = s;
	}
	return n;
}

static int add_file(struct sessfile *sf, const char *dir, const char *name,
		    const char *kind, const char *participant)
{
	struct sf_file *f;
	char path[1024];
	int err;

	if (sf->nfiles >= SF_STREAMS_MAX)
		return E2BIG;
	f = &sf->files[sf->nfiles];
	memset(f, 0, sizeof(*f));
	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	err = fin_sha256_file(path, f->sha256, &f->size);
	if (err)
		return err;
	(void)snprintf(f->name, sizeof(f->name), "%s", name);
	(void)snprintf(f->kind, sizeof(f->kind), "%s", kind);
	(void)snprintf(f->participant, sizeof(f->participant), "%s",
		       participant ? participant : "");
	++sf->nfiles;
	return 0;
}

/* Write NAME through WRITE into a hidden .part file, then rename. */
static int make(struct fin_capture *c, const char *dir, const char *name,
		const char *format, const struct fin_track *tr, size_t ntr,
		char *reason, size_t rsize)
{
	char tmp[1024], path[1024];
	int err;

	(void)snprintf(tmp, sizeof(tmp), "%s/.%s.part", dir, name);
	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	err = fin_out_av(c, tmp, format, tr, ntr, reason, rsize);
	if (!err && rename(tmp, path))
		err = errno;
	if (err)
		(void)unlink(tmp);
	return err;
}

int finalize_session(const char *dir, struct sessfile *sf,
		     struct fin_stats *st, char *reason, size_t reason_size)
{
	struct fin_capture *c = calloc(1, sizeof(*c));
	struct party pts[SF_PARTS_MAX];
	struct fin_track tr[SF_STREAMS_MAX];
	double t0 = mono_now();
	size_t np, i, ntr = 0;
	int err;

	if (!c)
		return ENOMEM;
	memset(st, 0, sizeof(*st));
	reason[0] = '\0';
	sf->nfiles = 0;
	err = fin_capture_read(c, dir, sf, st, reason, reason_size);
	if (err)
		goto out;
	for (i = 0; i < c->nst; i++) {
		struct fin_stream *s = &c->st[i];

		if (s->video || !s->npkts)
			continue;
		err = fin_audio_timeline(c, s);
		if (!err)
			err = fin_audio_encode(c, s);
		if (err) {
			(void)snprintf(reason, reason_size, "audio of stream "
				       "%s: %s", s->sf->label, strerror(err));
			goto out;
		}
	}

	np = parties(c, pts);
	for (i = 0; i < np; i++)
		base_name(&pts[i], i, pts, np);
	for (i = 0; i < np; i++) {
		struct fin_track t = {pts[i].audio, pts[i].video};
		bool h264 = t.video && t.video->sf->ncodecs &&
			dp_codec_from_name(t.video->sf->codecs[0].name) == DP_H264;
		char name[64];

		(void)snprintf(name, sizeof(name), "%s.%s", pts[i].base,
			       h264 ? "mp4" : "webm");
		err = make(c, dir, name, h264 ? "mp4" : "webm", &t, 1, reason,
			   reason_size);
		if (!err)
			err = add_file(sf, dir, name, "participant",
				       pts[i].p ? pts[i].p->id : "");
		if (err)
			goto out;
	}
	for (i = 0; i < c->nst; i++) {
		if (!c->st[i].npkts)
			continue;
		tr[ntr].audio = c->st[i].video ? NULL : &c->st[i];
		tr[ntr].video = c->st[i].video ? &c->st[i] : NULL;
		++ntr;
	}
	err = make(c, dir, "tracks.mkv", "matroska", tr, ntr, reason,
		   reason_size);
	if (!err)
		err = add_file(sf, dir, "tracks.mkv", "tracks", NULL);
	if (err)
		goto out;
	{
		struct fin_stream *l = np > 0 ? pts[0].audio : NULL;
		struct fin_stream *r = np > 1 ? pts[1].audio : NULL;
		char tmp[1024], path[1024];

		(void)snprintf(tmp, sizeof(tmp), "%s/.stereo.wav.part", dir);
		(void)snprintf(path, sizeof(path), "%s/stereo.wav", dir);
		err = fin_out_wav(c, tmp, l, r);
		if (!err && rename(tmp, path))
			err = errno;
		if (!err)
			err = add_file(sf, dir, "stereo.wav", "stereo", NULL);
		if (err) {
			(void)snprintf(reason, reason_size, "stereo.wav: %s",
				       strerror(err));
			goto out;
		}
	}
 out:
	if (err && !reason[0])
		(void)snprintf(reason, reason_size, "%s", strerror(err));
	st->wall_seconds = mono_now() - t0;
	fin_capture_free(c);
	free(c);
	return err;
}
