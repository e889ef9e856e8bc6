/*
 * depack.c: RTP payloads in, whole frames out (see depack.h). This file is
 * the frame state machine all codecs share; what one payload means is in
 * depack_h264.c and depack_vp8.c, audio needs nothing (payload = frame).
 *
 * A video frame is every payload of one RTP timestamp. It ends
 *   - on the marker bit: returned by that push;
 *   - when a payload with another timestamp comes: the old frame is returned
 *     and the new payload starts the next one;
 *   - at depack_flush(), if nothing of it is missing.
 * One push returns at most one frame. When it would return two (a frame
 * ended by a timestamp change, then a one-packet frame with the marker),
 * the second is held, complete, and returned by the next push or flush.
 *
 * What breaks a frame: a loss (the caller's LOST flag), a malformed payload,
 * an oversized frame (DP_MAX_FRAME), a frame that ends with a fragment open.
 * The broken frame is dropped (stats.lost_frames), every later payload of its
 * timestamp is skipped, and the stream waits for a keyframe: frames that are
 * not keyframes are skipped whole (stats.waiting counts their payloads, the
 * push returns ENOENT) because they would predict from a picture the decoder
 * never got. A stream starts out waiting too: recording may begin mid-GOP.
 *
 * Worked example (H.264, a loss; test_depack.c's test_worked_example):
 *   push ts=100 FU-A middle  LOST   frame 100 lost its head: skip 100
 *                                   -> ENOENT
 *   push ts=100 FU-A end  M         -> ENOENT (timestamp 100 is skipped)
 *   push ts=200 slice(P)  M         not a keyframe -> ENOENT
 *   push ts=300 STAP-A SPS PPS      -> EAGAIN
 *   push ts=300 IDR       M         -> 0, frame 300, keyframe, 320x240
 *   push ts=400 slice(P)            -> EAGAIN (no marker)
 *   push ts=500 slice(P)  M         -> 0, frame 400 (timestamp changed);
 *                                      frame 500 is held, complete
 *   depack_flush()                  -> 0, frame 500
 * A lost packet is not always this costly: if the payload after the gap is
 * visibly the first of its frame (an H.264 parameter set or a slice with
 * first_mb_in_slice 0, a VP8 partition 0 start) only the frame before the
 * gap is dropped, and the new one is kept if it is a keyframe.
 *
 * Memory: two buffers per stream, the frame being built and the frame last
 * returned; returning a frame swaps them, so after the first frames of a
 * stream no push allocates.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <re.h>
#include "depack_priv.h"

static const struct {
	const char *name;
	enum dp_codec codec;
} codec_names[] = {
	{"PCMU", DP_PCMU},
	{"PCMA", DP_PCMA},
	{"G722", DP_G722},
	{"opus", DP_OPUS},
	{"telephone-event", DP_TELEVENT},
	{"H264", DP_H264},
	{"H.264", DP_H264},     /* RFC 8068's examples spell it so */
	{"VP8", DP_VP8},
};

enum dp_codec dp_codec_from_name(const char *name)
{
	size_t i;

	if (!name)
		return DP_UNKNOWN;

	for (i = 0; i < sizeof(codec_names) / sizeof(codec_names[0]); i++) {
		if (!strcasecmp(name, codec_names[i].name))
			return codec_names[i].codec;
	}

	return DP_UNKNOWN;
}

const char *dp_codec_name(enum dp_codec c)
{
	switch (c) {

	case DP_PCMU:     return "PCMU";
	case DP_PCMA:     return "PCMA";
	case DP_G722:     return "G722";
	case DP_OPUS:     return "opus";
	case DP_TELEVENT: return "telephone-event";
	case DP_H264:     return "H264";
	case DP_VP8:      return "VP8";
	default:          return "unknown";
	}
}

bool dp_codec_is_video(enum dp_codec c)
{
	return c == DP_H264 || c == DP_VP8;
}

int dp_buf_reserve(struct dp_buf *b, size_t extra)
{
	size_t size = b->size;
	uint8_t *p;

	if (extra <= b->size - b->len)
		return 0;

	if (extra > DP_MAX_FRAME + 2 * (DP_MAX_PS + 4))
		return EFBIG;

	while (size - b->len < extra)
		size *= 2;

	p = mem_realloc(b->p, size);
	if (!p)
		return ENOMEM;

	b->p = p;
	b->size = size;
	return 0;
}

/* Append to a frame; a frame never grows past DP_MAX_FRAME (EFBIG). */
int dp_buf_append(struct dp_buf *b, const uint8_t *p, size_t len)
{
	int err;

	if (len > DP_MAX_FRAME - b->len)
		return EFBIG;

	err = dp_buf_reserve(b, len);
	if (err)
		return err;

	memcpy(b->p + b->len, p, len);
	b->len += len;
	return 0;
}

static void frame_reset(struct depack *dp)
{
	memset(&dp->f, 0, sizeof(dp->f));
	dp->cur.len = 0;
}

void dp_frame_start(struct depack *dp, uint32_t ts)
{
	frame_reset(dp);
	dp->f.active = true;
	dp->f.ts = ts;
}

/* The frame in progress is broken: drop it and wait for a keyframe. */
static void frame_drop(struct depack *dp)
{
	if (dp->f.active)
		++dp->stats.lost_frames;

	frame_reset(dp);
	dp->wait_key = true;
}

static void skip_ts(struct depack *dp, uint32_t ts)
{
	dp->skip = true;
	dp->skip_ts = ts;
}

/* Hand the frame in progress back: it becomes dp->done / dp->out. */
static bool frame_emit(struct depack *dp)
{
	struct dp_buf t;

	/* the codecs refuse a non-key picture while waiting as soon as they
	 * see it (ENOENT); this only keeps that promise if one forgets */
	if (dp->wait_key && !dp->f.key) {
		dp->stats.waiting += dp->f.npkt;
		frame_reset(dp);
		return false;
	}

	if (dp->ops->finish(dp)) {
		frame_drop(dp);
		return false;
	}

	t = dp->out;
	dp->out = dp->cur;
	dp->cur = t;

	memset(&dp->done, 0, sizeof(dp->done));
	dp->done.data = dp->out.p;
	dp->done.len = dp->out.len;
	dp->done.rtp_ts = dp->f.ts;
	dp->done.keyframe = dp->f.key;
	dp->done.width = dp->f.width;
	dp->done.height = dp->f.height;

	++dp->stats.frames;
	if (dp->f.key) {
		++dp->stats.keyframes;
		dp->wait_key = false;
	}
	dp->have_last = true;
	dp->last_ts = dp->f.ts;

	frame_reset(dp);
	return true;
}

/* The timestamp moved on to TS while the frame had no marker. */
static bool frame_end(struct depack *dp, uint32_t ts)
{
	if (!dp->ops->whole(dp)) {
		frame_drop(dp);
		return false;
	}

	if (!dp->f.pic) {
		/* H.264 parameter sets only: they go in front of frame TS */
		dp->f.ts = ts;
		return false;
	}

	return frame_emit(dp);
}

static void depack_destructor(void *arg)
{
	struct depack *dp = arg;

	mem_deref(dp->cur.p);
	mem_deref(dp->out.p);
}

int depack_alloc(struct depack **dpp, enum dp_codec codec, const char *fmtp)
{
	const struct dp_codec_ops *ops = NULL;
	struct depack *dp;
	size_t size;

	if (!dpp)
		return EINVAL;

	switch (codec) {

	case DP_PCMU:
	case DP_PCMA:
	case DP_G722:
	case DP_OPUS:
	case DP_TELEVENT:
		size = 2048;    /* grows if a payload is larger */
		break;

	case DP_H264:
		ops = &dp_h264_ops;
		size = DP_BUF_INIT;
		break;

	case DP_VP8:
		ops = &dp_vp8_ops;
		size = DP_BUF_INIT;
		break;

	default:
		return EINVAL;
	}

	dp = mem_zalloc(sizeof(*dp), depack_destructor);
	if (!dp)
		return ENOMEM;

	dp->codec = codec;
	dp->ops = ops;
	dp->wait_key = ops != NULL;
	dp->cur.p = mem_alloc(size, NULL);
	dp->out.p = mem_alloc(size, NULL);
	if (!dp->cur.p || !dp->out.p) {
		mem_deref(dp);
		return ENOMEM;
	}
	dp->cur.size = dp->out.size = size;

	if (codec == DP_H264)
		dp_h264_fmtp(dp, fmtp);

	*dpp = dp;
	return 0;
}

void depack_free(struct depack *dp)
{
	mem_deref(dp);
}

/* Audio: every payload is one frame of its own. */
static int audio_push(struct depack *dp, const uint8_t *p, size_t len,
		      uint32_t ts, struct dp_frame *frame)
{
	int err;

	if (!len)
		return EAGAIN;

	dp->out.len = 0;
	err = dp_buf_append(&dp->out, p, len);
	if (err)
		return err;

	memset(frame, 0, sizeof(*frame));
	frame->data = dp->out.p;
	frame->len = dp->out.len;
	frame->rtp_ts = ts;
	frame->keyframe = true;
	++dp->stats.frames;
	++dp->stats.keyframes;
	return 0;
}

int depack_push(struct depack *dp, const uint8_t *payload, size_t len,
		uint32_t ts, bool marker, bool lost, struct dp_frame *frame)
{
	bool have = false;
	int err = EAGAIN;

	if (!dp || !frame || (!payload && len))
		return EINVAL;

	++dp->stats.packets;

	if (!dp->ops)
		return audio_push(dp, payload, len, ts, frame);

	if (dp->f.ready)
		have = frame_emit(dp);

	if (lost) {
		bool same = dp->f.active && dp->f.ts == ts;

		frame_drop(dp);
		if (len && (same || !dp->ops->clean_start(payload, len)))
			skip_ts(dp, ts);
	}

	/* padding-only packets (bandwidth probes) carry no frame data and
	 * often an old timestamp: they neither start nor end a frame */
	if (!len)
		goto out;

	if (dp->f.active && ts != dp->f.ts)
		have = frame_end(dp, ts);

	if (dp->skip) {
		if (ts == dp->skip_ts) {
			++dp->stats.waiting;
			err = ENOENT;
			goto out;
		}
		dp->skip = false;
	}

	/* more of a frame already returned (sender set the marker early,
	 * or a stray duplicate): too late to be part of it */
	if (!dp->f.active && dp->have_last && ts == dp->last_ts) {
		++dp->stats.bad;
		err = EBADMSG;
		goto out;
	}

	err = dp->ops->payload(dp, payload, len, ts, marker);
	switch (err) {

	case EAGAIN:
		break;

	case ENOENT:
		dp->stats.waiting += dp->f.npkt;
		frame_reset(dp);
		skip_ts(dp, ts);
		break;

	case ENOMEM:
		frame_drop(dp);
		skip_ts(dp, ts);
		break;

	default:
		++dp->stats.bad;
		frame_drop(dp);
		skip_ts(dp, ts);
		err = EBADMSG;
		break;
	}

	if (dp->f.ready && !have)
		have = frame_emit(dp);

 out:
	if (have) {
		*frame = dp->done;
		return 0;
	}

	return err;
}

int depack_flush(struct depack *dp, struct dp_frame *frame)
{
	bool have = false;

	if (!dp || !frame)
		return EINVAL;

	if (!dp->ops)
		return EAGAIN;

	if (dp->f.ready) {
		have = frame_emit(dp);
	}
	else if (dp->f.active && dp->f.pic && dp->ops->whole(dp)) {
		have = frame_emit(dp);
	}
	else if (dp->f.active && dp->f.pic) {
		frame_drop(dp);
	}

	frame_reset(dp);

	if (!have)
		return EAGAIN;

	*frame = dp->done;
	return 0;
}

const struct dp_stats *depack_stats(const struct depack *dp)
{
	return dp ? &dp->stats : NULL;
}
