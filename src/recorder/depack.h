/*
 * depack.h: RTP payload depacketizers (RFC 6184 H.264, RFC 7741 VP8, and the
 * audio codecs, whose payload is the frame). One struct depack per stream and
 * SSRC, fed payloads in sequence order; it hands back whole frames (access
 * units). Used by the finalizer; thread-safe per object (no globals).
 *
 * Loss: the caller says when packets are missing before this one; the
 * depacketizer drops the broken frame and, for video, waits for the next
 * keyframe (ENOENT) so that the decoder never sees a half picture.
 */
#ifndef TALLY_REC_DEPACK_H
#define TALLY_REC_DEPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dp_codec {
	DP_UNKNOWN = 0,
	DP_PCMU, DP_PCMA, DP_G722, DP_OPUS, DP_TELEVENT,
	DP_H264, DP_VP8,
};

/* Codec from an rtpmap encoding name, case-insensitive; "H.264" (seen in
 * RFC 8068's examples) is H264. DP_UNKNOWN if not supported. */
enum dp_codec dp_codec_from_name(const char *name);
const char *dp_codec_name(enum dp_codec c);
bool dp_codec_is_video(enum dp_codec c);

struct dp_frame {
	const uint8_t *data;   /* valid until the next depack_* call */
	size_t len;
	uint32_t rtp_ts;       /* RTP timestamp of the frame */
	bool keyframe;         /* H.264 IDR (with SPS/PPS) / VP8 key frame;
				* always true for audio */
	int width, height;     /* picture size if this frame says it
				* (H.264 SPS, VP8 key frame header), else 0 */
};

/* H.264 frames are Annex B (00 00 00 01 start codes). If FMTP carries
 * sprop-parameter-sets, they are put in front of an IDR that arrived
 * without SPS/PPS. Frames of other codecs are the codec's own bytes. */
struct dp_stats {
	uint64_t packets;      /* payloads pushed */
	uint64_t frames;       /* frames returned */
	uint64_t keyframes;
	uint64_t bad;          /* payloads that failed to depacketize (skipped) */
	uint64_t lost_frames;  /* frames dropped because of loss */
	uint64_t waiting;      /* payloads skipped while waiting for a keyframe */
};

struct depack;

/* 0, EINVAL (codec unknown) or ENOMEM. FMTP may be NULL. Free with
 * depack_free(). */
int depack_alloc(struct depack **dpp, enum dp_codec codec, const char *fmtp);
void depack_free(struct depack *dp);

/*
 * Push one RTP payload (the bytes after the RTP header, padding removed).
 * LOST: one or more packets before this one never came.
 * Returns:
 *   0       a frame completed: *FRAME is set. The frame that completed may
 *           be the previous one (timestamp changed without a marker); the
 *           current payload is kept for the next frame.
 *   EAGAIN  payload taken, no frame complete yet
 *   ENOENT  video after loss: skipped until the next keyframe
 *   EBADMSG payload malformed: counted in stats.bad, skipped
 */
int depack_push(struct depack *dp, const uint8_t *payload, size_t len,
		uint32_t ts, bool marker, bool lost, struct dp_frame *frame);

/* At the end of the stream: the last, incomplete-by-marker frame if it is
 * whole, 0 with *FRAME set, else EAGAIN. */
int depack_flush(struct depack *dp, struct dp_frame *frame);

const struct dp_stats *depack_stats(const struct depack *dp);

#endif
