/*
 * depack_priv.h: what depack.c (the frame state machine shared by all
 * codecs) and the codec files (depack_h264.c, depack_vp8.c) share. Not for
 * users of depack.h.
 *
 * Division of work: depack.c decides WHEN a frame ends (marker, timestamp
 * change, flush), what a loss or a malformed payload breaks, and when video
 * waits for a keyframe. A codec file only says what one payload adds to the
 * frame being built (struct dp_codec_ops).
 */
#ifndef TALLY_REC_DEPACK_PRIV_H
#define TALLY_REC_DEPACK_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "depack.h"

enum {
	DP_MAX_FRAME = 4 << 20,    /* an access unit larger than this is bad */
	DP_MAX_PS    = 1024,       /* largest SPS / PPS kept for prepending */
	DP_BUF_INIT  = 64 << 10,   /* first buffer size; grows by doubling */
};

/* A growing byte buffer (libre mem object); never shrinks. */
struct dp_buf {
	uint8_t *p;
	size_t len;
	size_t size;
};

/* H.264 parameter sets seen last (sprop-parameter-sets, then in-band). */
struct dp_h264_ps {
	uint8_t sps[DP_MAX_PS];
	size_t sps_len;
	uint8_t pps[DP_MAX_PS];
	size_t pps_len;
	int width, height;         /* from sps, 0 if it did not parse */
};

/* The frame being built. */
struct dp_cur {
	bool active;               /* holds payloads of timestamp ts */
	bool ready;                /* complete (marker), not returned yet */
	uint32_t ts;
	uint32_t npkt;             /* payloads in it */
	bool pic;                  /* H.264: has a slice; VP8: frame start */
	bool key;
	int width, height;
	/* H.264 only */
	bool fu_open;              /* an FU-A NAL unit is being reassembled */
	uint8_t fu_type;
	size_t fu_off;             /* offset of its start code */
	bool has_sps, has_pps;
	size_t pps_off;            /* offset of the first PPS's start code */
	size_t pic_off;            /* offset of the first slice's start code */
	/* VP8 only */
	uint8_t pid;               /* partition index of the last payload */
};

struct depack {
	enum dp_codec codec;
	const struct dp_codec_ops *ops;   /* NULL for audio */
	struct dp_stats stats;
	struct dp_buf cur;         /* frame being built */
	struct dp_buf out;         /* frame last returned (dp_frame.data) */
	struct dp_cur f;
	struct dp_frame done;      /* what the last emit returned */
	bool have_last;
	uint32_t last_ts;          /* timestamp of the last frame returned */
	bool wait_key;             /* video: drop frames until a keyframe */
	bool skip;                 /* drop every payload of timestamp skip_ts */
	uint32_t skip_ts;
	struct dp_h264_ps ps;
};

struct dp_codec_ops {
	/*
	 * Add one payload (len > 0) of timestamp TS to the frame dp->f, which
	 * is either inactive or has timestamp TS. Starts the frame if needed
	 * (dp_frame_start). Validates the whole payload before adding any of
	 * it. Returns EAGAIN (taken; sets dp->f.ready on MARKER if the frame
	 * is whole), ENOENT (the frame is not a keyframe while waiting for
	 * one: the caller drops it), EBADMSG or EFBIG (the caller counts it
	 * and drops the frame), ENOMEM.
	 */
	int (*payload)(struct depack *dp, const uint8_t *p, size_t len,
		       uint32_t ts, bool marker);
	/* After a loss: could P be the first payload of a frame, so that
	 * nothing of ITS frame was lost? */
	bool (*clean_start)(const uint8_t *p, size_t len);
	/* The frame has everything a marker would have ended it with. */
	bool (*whole)(const struct depack *dp);
	/* Called once before a frame (with a picture) is returned: last
	 * touches (H.264 parameter sets, VP8 picture size); 0, or an errno
	 * and the frame is dropped. */
	int (*finish)(struct depack *dp);
};

extern const struct dp_codec_ops dp_h264_ops;
extern const struct dp_codec_ops dp_vp8_ops;

/* Begin a new frame of timestamp TS (the frame buffer is emptied). */
void dp_frame_start(struct depack *dp, uint32_t ts);
/* Append LEN bytes to a frame buffer: 0, EFBIG (the frame would pass
 * DP_MAX_FRAME) or ENOMEM. */
int dp_buf_append(struct dp_buf *b, const uint8_t *p, size_t len);
/* Room for EXTRA more bytes without the frame cap (for the few bytes of
 * parameter sets put in front of an IDR): 0, EFBIG or ENOMEM. */
int dp_buf_reserve(struct dp_buf *b, size_t extra);

/* H.264 sprop-parameter-sets from an fmtp line into dp->ps; malformed
 * entries are ignored. */
void dp_h264_fmtp(struct depack *dp, const char *fmtp);

/* H.264 SPS NAL unit (header byte included, emulation prevention bytes in
 * place) to picture size; 0 or EBADMSG. */
int dp_h264_sps_size(const uint8_t *nal, size_t len, int *width,
		     int *height);

#endif
