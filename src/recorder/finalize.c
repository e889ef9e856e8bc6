/*
 * finalize.c: one session folder (session.json + media.pcap) into playable
 * files (see finalize.h for the contract, fin_priv.h for the parts).
 *
 * The run, in order:
 *   1. the accepted streams of the session, and every packet of the
 *      capture sorted to its stream by UDP destination port (RTCP by its
 *      port, or by its packet type on an rtcp-mux port);
 *   2. per stream: SSRC groups, sequence order, duplicates, timing
 *      (timeline.c); streams without media packets are left out;
 *   3. the parties (parties.c): from the metadata (participants and the
 *      labels they send), or without metadata audio n + video n = party
 *      n; per party the video is aligned to the audio by sender reports
 *      (avsync.c);
 *   4. the origin (the earliest presentation time) and the length of the
 *      timeline;
 *   5. one track per stream (audtrack.c: Opus; vidtrack.c: copied), and
 *      the files (outputs.c): one per party (.mp4 for H.264, .webm for
 *      VP8 or audio only), tracks.mkv with every track, stereo.wav with
 *      the first two parties' audio;
 *   6. the merge loop: always the track whose next packet is earliest,
 *      written to every output that has the track, so each file is
 *      interleaved in time and nothing piles up in memory;
 *   7. trailers, fsync, rename from NAME.tmp, size and sha256 into
 *      sf->files (outputs.c).
 * Any error ends the run; the destructors remove every NAME.tmp, so a
 * failed run leaves no half files (finished ones of an earlier run stay).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <libavcodec/avcodec.h>
#include <re.h>
#include "log.h"
#include "rtpx.h"
#include "pcapread.h"
#include "finalize.h"
#include "fin_priv.h"

static void destructor(void *arg)
{
	struct fin_run *run = arg;
	size_t i;

	for (i = 0; i < run->ntr; i++) {
		mem_deref(run->tr[i].at);
		mem_deref(run->tr[i].vt);
		av_packet_free(&run->tr[i].pkt);
	}
	for (i = 0; i < run->nparty; i++)
		mem_deref(run->party[i].out);
	mem_deref(run->mkv);
	mem_deref(run->wav);
	for (i = 0; i < run->nst; i++)
		fin_stream_reset(&run->st[i]);
	mem_deref(run->cap);
}

static double now(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --- 1, 2: streams and packets --- */

static void streams_init(struct fin_run *run)
{
	size_t i;

	for (i = 0; i < run->sf->nstreams && run->nst < SF_STREAMS_MAX; i++) {
		const struct sf_stream *s = &run->sf->streams[i];
		struct fin_stream *fs;

		if (!s->accepted || !s->port)
			continue;
		if (strcmp(s->media, "audio") && strcmp(s->media, "video"))
			continue;

		fs = &run->st[run->nst++];
		fs->sfs = s;
		fs->sidx = i;
		fs->video = !strcmp(s->media, "video");
	}
}

static int read_capture(struct fin_run *run)
{
	const struct pcapr_stats *ps;
	struct pcapr_pkt pk;
	int64_t epoch = 0;
	bool first = true;
	size_t i;
	int err;

	while (pcapr_next(run->cap, &pk) == 0) {
		double arr;

		if (first) {
			epoch = pk.time_us;
			first = false;
		}
		arr = (double)(pk.time_us - epoch) / 1e6;

		for (i = 0; i < run->nst; i++) {
			struct fin_stream *fs = &run->st[i];
			bool rtcp;

			if (pk.dport == fs->sfs->port)
				rtcp = rtpx_is_rtcp(pk.data, pk.len);
			else if (pk.dport == fs->sfs->rtcp_port)
				rtcp = true;
			else
				continue;

			if (rtcp) {
				++run->rtcp;
				err = fin_stream_add_rtcp(fs, pk.data, pk.len,
							  arr);
			}
			else {
				++run->packets;
				err = fin_stream_add_rtp(fs, pk.data, pk.len,
							 arr);
			}
			if (err)
				return err;
			break;
		}
	}

	ps = pcapr_stats(run->cap);
	if (ps->truncated || ps->corrupt || ps->skipped)
		log_info("finalize: [%s] media.pcap: %llu records, %llu not "
			 "UDP/IP%s%s", run->sf->id,
			 (unsigned long long)ps->records,
			 (unsigned long long)ps->skipped,
			 ps->truncated ? ", last record cut short" : "",
			 ps->corrupt ? ", damaged record: read up to it" : "");

	return 0;
}

/* The stream's codec: that of its first media packet. */
static void stream_codec(struct fin_stream *fs)
{
	size_t i;

	for (i = 0; i < fs->npkts; i++) {
		if (fs->pkts[i].kind == FIN_MEDIA) {
			(void)fin_clock_of(fs, fs->pkts[i].pt, &fs->codec);
			return;
		}
	}
}

/* --- 4, 5: timeline, tracks, outputs --- */

/* The longest timeline SF can have: its span (first 200 OK to BYE) plus
 * five minutes, or a day when the span is unknown. */
static double max_length(const struct sessfile *sf)
{
	if (sf->started > 0 && sf->stopped > sf->started)
		return sf->stopped - sf->started + 300.0;
	return 86400.0;
}

static void timeline(struct fin_run *run)
{
	double first = INFINITY, end = -INFINITY;
	size_t i;

	for (i = 0; i < run->nst; i++) {
		struct fin_stream *fs = &run->st[i];

		if (!fs->nmedia)
			continue;
		fin_stream_span(fs);
		first = fmin(first, fs->first_pts);
		end = fmax(end, fs->end_pts);
	}

	run->origin = first;
	run->length = end > first ? end - first : 0;
}

static int tracks_make(struct fin_run *run)
{
	size_t i;
	int err;

	for (i = 0; i < run->nst; i++) {
		struct fin_stream *fs = &run->st[i];
		struct fin_track *t = &run->tr[run->ntr];

		if (!fs->nmedia)
			continue;

		memset(t, 0, sizeof(*t));
		t->fs = fs;
		t->pkt = av_packet_alloc();
		if (!t->pkt)
			return ENOMEM;
		++run->ntr;

		if (fs->video) {
			t->tb = FIN_VIDEO_TB;
			err = fin_vtrack_alloc(&t->vt, fs, run->origin);
			if (err == ENODATA || err == EINVAL) {
				log_info("finalize: [%s] stream %zu: no "
					 "keyframe, no picture: left out",
					 run->sf->id, fs->sidx);
				av_packet_free(&t->pkt);
				--run->ntr;
				fs->nmedia = 0;
				continue;
			}
		}
		else {
			t->tb = FIN_OPUS_RATE;
			err = fin_atrack_alloc(&t->at, fs, run->origin);
		}
		if (err)
			return err;
	}

	return 0;
}

/* --- 6, 7: the merge loop, and finishing --- */

static int track_pull(struct fin_track *t)
{
	int err;

	err = t->vt ? fin_vtrack_next(t->vt, t->pkt) :
		fin_atrack_next(t->at, t->pkt);
	t->have = !err;
	return err == ENOENT ? 0 : err;
}

static int track_push(struct fin_track *t)
{
	AVPacket *copy = NULL;
	size_t i;
	int err = 0;

	for (i = 0; i < t->ndst && !err; i++) {
		AVPacket *p = t->pkt;

		if (i + 1 < t->ndst) {
			copy = av_packet_clone(t->pkt);
			if (!copy)
				return ENOMEM;
			p = copy;
		}
		err = fin_out_write(t->dst[i].out, t->dst[i].index, p, t->tb);
		av_packet_free(&copy);
	}
	av_packet_unref(t->pkt);
	return err;
}

static int merge(struct fin_run *run)
{
	size_t i;
	int err;

	for (i = 0; i < run->ntr; i++) {
		err = track_pull(&run->tr[i]);
		if (err)
			return err;
	}

	for (;;) {
		struct fin_track *best = NULL;
		double bt = 0;

		for (i = 0; i < run->ntr; i++) {
			struct fin_track *t = &run->tr[i];
			double tt;

			if (!t->have)
				continue;
			tt = (double)t->pkt->dts / t->tb;
			if (!best || tt < bt) {
				best = t;
				bt = tt;
			}
		}
		if (!best)
			return 0;

		err = track_push(best);
		if (!err)
			err = track_pull(best);
		if (err)
			return err;
	}
}

static void stats_fill(const struct fin_run *run, struct fin_stats *st)
{
	size_t i;

	st->packets = run->packets;
	st->rtcp = run->rtcp;
	for (i = 0; i < run->nst; i++) {
		const struct fin_stream *fs = &run->st[i];

		st->duplicates += fs->duplicates;
		st->reordered += fs->reordered;
		st->bad += fs->malformed + fs->dp_bad;
	}
	for (i = 0; i < run->ntr; i++)
		if (run->tr[i].vt)
			st->frames_video += fin_vtrack_frames(run->tr[i].vt);
	st->media_seconds = run->length;
}

/* One line per stream: INFO if something was out of the ordinary, else
 * DEBUG. */
static void log_streams(const struct fin_run *run)
{
	size_t i;

	for (i = 0; i < run->nst; i++) {
		const struct fin_stream *fs = &run->st[i];
		bool odd = fs->duplicates || fs->reordered || fs->malformed ||
			fs->other || fs->dp_bad || fs->dp_lost_frames ||
			fs->decode_errors || fs->ngrps > 1 || fs->nsegs > 1;

		LOG(odd ? LOG_LVL_INFO : LOG_LVL_DEBUG,
		    "finalize: [%s] stream %zu (%s %s): %zu packets, %zu "
		    "SSRC(s), %u segment(s), %llu duplicates, %llu reordered, "
		    "%llu events, %llu other, %llu malformed, %llu bad "
		    "payloads, %llu frames lost, %llu decode errors, %zu "
		    "sender reports", run->sf->id, fs->sidx, fs->sfs->media,
		    dp_codec_name(fs->codec), fs->npkts, fs->ngrps, fs->nsegs,
		    (unsigned long long)fs->duplicates,
		    (unsigned long long)fs->reordered,
		    (unsigned long long)fs->televent,
		    (unsigned long long)fs->other,
		    (unsigned long long)fs->malformed,
		    (unsigned long long)fs->dp_bad,
		    (unsigned long long)fs->dp_lost_frames,
		    (unsigned long long)fs->decode_errors, fs->nsrs);
	}
}

int finalize_session(const char *dir, struct sessfile *sf,
		     struct fin_stats *st, char *reason, size_t reason_size)
{
	struct fin_stats dummy;
	char path[1024], what[256] = "";
	double t0 = now();
	struct fin_run *run;
	bool media = false;
	size_t i;
	int err;

	if (!st)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	if (reason && reason_size)
		reason[0] = '\0';
	if (!dir || !sf)
		return EINVAL;

	sf->nfiles = 0;

	run = mem_zalloc(sizeof(*run), destructor);
	if (!run)
		return ENOMEM;
	run->dir = dir;
	run->sf = sf;

	streams_init(run);

	if ((size_t)snprintf(path, sizeof(path), "%s/media.pcap", dir) >=
	    sizeof(path)) {
		err = ENAMETOOLONG;
		(void)snprintf(what, sizeof(what), "media.pcap");
		goto out;
	}
	err = pcapr_open(&run->cap, path);
	if (err == ENOENT) {
		err = ENODATA;
		goto out;
	}
	if (err) {
		(void)snprintf(what, sizeof(what), "media.pcap");
		goto out;
	}

	err = read_capture(run);
	if (err) {
		(void)snprintf(what, sizeof(what), "media.pcap");
		goto out;
	}

	for (i = 0; i < run->nst; i++) {
		struct fin_stream *fs = &run->st[i];

		err = fin_stream_order(fs);
		if (err)
			goto out;
		fin_stream_timing(fs);
		stream_codec(fs);
		if (fs->video && fs->codec != DP_H264 && fs->codec != DP_VP8)
			fs->nmedia = 0;
		if (fs->nmedia)
			media = true;
	}
	if (!media) {
		err = ENODATA;
		goto out;
	}

	fin_parties(run);
	timeline(run);
	if (run->length > max_length(sf)) {
		/* a wall-clock step while recording, or a damaged capture:
		 * hours of silence to encode would stall the finalize thread.
		 * The capture stays, the session fails with this reason. */
		(void)snprintf(what, sizeof(what), "timeline of %.0f s "
			       "for a session of %.0f s (clock jump?)",
			       run->length, sf->stopped - sf->started);
		err = EFBIG;
		goto out;
	}

	err = tracks_make(run);
	if (err)
		goto out;
	if (!run->ntr) {
		err = ENODATA;
		goto out;
	}

	err = fin_outputs_make(run);
	if (!err)
		err = fin_outputs_begin(run, what, sizeof(what));
	if (!err) {
		err = merge(run);
		if (err)
			(void)snprintf(what, sizeof(what), "writing");
	}
	if (!err)
		err = fin_outputs_finish(run, what, sizeof(what));

 out:
	stats_fill(run, st);
	log_streams(run);
	if (err) {
		sf->nfiles = 0;
		if (reason && reason_size) {
			if (err == ENODATA)
				(void)snprintf(reason, reason_size,
					       "no media received");
			else
				(void)snprintf(reason, reason_size,
					       "finalize: %s%s%s", what,
					       what[0] ? ": " : "",
					       strerror(err));
		}
	}
	mem_deref(run);
	st->wall_seconds = now() - t0;
	return err;
}
