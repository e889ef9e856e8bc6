/*
 * test_depack.c: unit tests for the RTP payload depacketizers (depack.h).
 *
 * Hand-built payloads cover every packetization the depacketizers take
 * (H.264 single NAL unit, STAP-A, FU-A; VP8 with and without descriptor
 * extensions, partitions across packets), every refusal (STAP-B, MTAP,
 * FU-B, broken sizes, truncated descriptors), frame ends by marker,
 * timestamp change and flush, loss and the wait for a keyframe, SPS
 * parsing (high profiles, scaling lists, cropping, interlace) and
 * sprop-parameter-sets. Real captured media: test_depack_media.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>
#include "depack.h"

/* ---- helpers ----------------------------------------------------------- */

#define PUSH(dp, arr, ts, m, lost, fr) \
	depack_push(dp, arr, sizeof(arr), ts, m, lost, fr)

static struct depack *alloc(enum dp_codec c, const char *fmtp)
{
	struct depack *dp = NULL;

	assert_int_equal(0, depack_alloc(&dp, c, fmtp));
	assert_non_null(dp);
	return dp;
}

/* Annex B of NAL units given as (pointer, length) pairs, NULL-ended. */
static size_t annexb(uint8_t *out, ...)
{
	const uint8_t *nal;
	size_t n = 0, len;
	va_list ap;

	va_start(ap, out);
	while ((nal = va_arg(ap, const uint8_t *)) != NULL) {
		len = va_arg(ap, size_t);
		memcpy(out + n, "\0\0\0\1", 4);
		memcpy(out + n + 4, nal, len);
		n += 4 + len;
	}
	va_end(ap);
	return n;
}

static void assert_frame(const struct dp_frame *f, const uint8_t *data,
			 size_t len)
{
	assert_int_equal(len, f->len);
	assert_memory_equal(data, f->data, len);
}

/* Bit writer for hand-built SPS, with emulation prevention. */
struct bw {
	uint8_t b[128];
	size_t pos;
};

static void bw_u(struct bw *w, unsigned n, uint32_t v)
{
	while (n--) {
		if ((v >> n) & 1)
			w->b[w->pos >> 3] |= (uint8_t)(0x80 >> (w->pos & 7));
		++w->pos;
	}
}

static void bw_ue(struct bw *w, uint32_t v)
{
	uint64_t x = (uint64_t)v + 1;
	unsigned k = 0;

	while ((x >> k) > 1)
		++k;
	bw_u(w, k, 0);
	bw_u(w, k + 1, (uint32_t)x);
}

static void bw_se(struct bw *w, int32_t v)
{
	bw_ue(w, v > 0 ? (uint32_t)(2 * v - 1) : (uint32_t)(-2 * (int64_t)v));
}

/* rbsp_trailing_bits, then escape into OUT; returns the NAL length. */
static size_t bw_nal(struct bw *w, uint8_t *out)
{
	size_t i, n = 0, zeros = 0, len;

	bw_u(w, 1, 1);
	len = (w->pos + 7) / 8;
	for (i = 0; i < len; i++) {
		if (zeros >= 2 && w->b[i] <= 3) {
			out[n++] = 3;
			zeros = 0;
		}
		zeros = w->b[i] ? 0 : zeros + 1;
		out[n++] = w->b[i];
	}
	return n;
}

struct sps_def {
	uint8_t profile;
	uint32_t chroma;           /* high profiles only */
	bool sep_planes;
	bool scaling;
	uint32_t poc_type;
	int32_t poc_offset;        /* poc type 1 */
	uint32_t w_mbs, h_units;
	bool frame_mbs_only;
	uint32_t crop[4];          /* left right top bottom */
};

static void scaling_list(struct bw *w, int size, int variant)
{
	int j;

	/* variant 0: all deltas 0 (flat 8); 1: ramp, then next=0 early
	 * (use the default list from there) */
	for (j = 0; j < size; j++) {
		if (variant == 0) {
			bw_se(w, 0);
		}
		else if (j < 3) {
			bw_se(w, 5);
		}
		else {
			bw_se(w, -23);      /* 8+15-23 = 0: stop */
			break;
		}
	}
}

static size_t build_sps(const struct sps_def *d, uint8_t *out)
{
	struct bw w;
	int i, n;
	bool any_crop = d->crop[0] || d->crop[1] || d->crop[2] || d->crop[3];

	memset(&w, 0, sizeof(w));
	bw_u(&w, 8, 0x67);                    /* NAL header: SPS, NRI 3 */
	bw_u(&w, 8, d->profile);
	bw_u(&w, 8, 0);                       /* constraints */
	bw_u(&w, 8, 40);                      /* level 4.0 */
	bw_ue(&w, 0);                         /* sps id */
	if (d->profile == 100 || d->profile == 244 || d->profile == 122) {
		bw_ue(&w, d->chroma);
		if (d->chroma == 3)
			bw_u(&w, 1, d->sep_planes);
		bw_ue(&w, 0);
		bw_ue(&w, 0);
		bw_u(&w, 1, 0);
		bw_u(&w, 1, d->scaling);
		if (d->scaling) {
			n = d->chroma != 3 ? 8 : 12;
			for (i = 0; i < n; i++) {
				bw_u(&w, 1, i % 3 != 2);
				if (i % 3 != 2)
					scaling_list(&w, i < 6 ? 16 : 64, i & 1);
			}
		}
	}
	bw_ue(&w, 0);                         /* log2_max_frame_num - 4 */
	bw_ue(&w, d->poc_type);
	if (d->poc_type == 0) {
		bw_ue(&w, 2);
	}
	else if (d->poc_type == 1) {
		bw_u(&w, 1, 0);
		bw_se(&w, d->poc_offset);
		bw_se(&w, -3);
		bw_ue(&w, 2);
		bw_se(&w, 1);
		bw_se(&w, d->poc_offset);
	}
	bw_ue(&w, 1);                         /* max_num_ref_frames */
	bw_u(&w, 1, 0);
	bw_ue(&w, d->w_mbs - 1);
	bw_ue(&w, d->h_units - 1);
	bw_u(&w, 1, d->frame_mbs_only);
	if (!d->frame_mbs_only)
		bw_u(&w, 1, 1);
	bw_u(&w, 1, 1);                       /* direct_8x8_inference */
	bw_u(&w, 1, any_crop);
	if (any_crop) {
		for (i = 0; i < 4; i++)
			bw_ue(&w, d->crop[i]);
	}
	bw_u(&w, 1, 0);                       /* no VUI */
	return bw_nal(&w, out);
}

static const uint8_t pps[] = {0x68, 0xce, 0x3c, 0x80};
static const uint8_t idr[] = {0x65, 0x88, 0x84, 0x00, 0x33, 0xff, 0x10};
static const uint8_t pslice[] = {0x41, 0x9a, 0x21, 0x6c, 0x42};
static const uint8_t pslice2[] = {0x41, 0x9a, 0x42, 0x11};  /* 2nd frame */
static const uint8_t aud[] = {0x09, 0xf0};
static const uint8_t sei[] = {0x06, 0x05, 0x01, 0xaa, 0x80};

/* A baseline SPS for 320x240 (made once). */
static uint8_t sps320[64];
static size_t sps320_len;

static void make_sps320(void)
{
	const struct sps_def d = {
		.profile = 66, .w_mbs = 20, .h_units = 15,
		.frame_mbs_only = true,
	};

	sps320_len = build_sps(&d, sps320);
}

static size_t stap(uint8_t *out, ...)
{
	const uint8_t *nal;
	size_t n = 1, len;
	va_list ap;

	out[0] = 0x78;                        /* NRI 3, type 24 */
	va_start(ap, out);
	while ((nal = va_arg(ap, const uint8_t *)) != NULL) {
		len = va_arg(ap, size_t);
		out[n] = (uint8_t)(len >> 8);
		out[n + 1] = (uint8_t)len;
		memcpy(out + n + 2, nal, len);
		n += 2 + len;
	}
	va_end(ap);
	return n;
}

/* Push SPS+PPS+IDR as one STAP-A with the marker: the stream's first
 * keyframe, which ends the initial wait. */
static void h264_key(struct depack *dp, uint32_t ts)
{
	uint8_t pkt[256];
	struct dp_frame f;
	size_t n;

	n = stap(pkt, sps320, sps320_len, pps, sizeof(pps), idr, sizeof(idr),
		 NULL);
	assert_int_equal(0, depack_push(dp, pkt, n, ts, true, false, &f));
	assert_true(f.keyframe);
	assert_int_equal(ts, f.rtp_ts);
}

/* ---- names and audio --------------------------------------------------- */

static void test_codec_names(void **state)
{
	(void)state;

	assert_int_equal(DP_H264, dp_codec_from_name("H264"));
	assert_int_equal(DP_H264, dp_codec_from_name("h264"));
	assert_int_equal(DP_H264, dp_codec_from_name("H.264"));
	assert_int_equal(DP_VP8, dp_codec_from_name("VP8"));
	assert_int_equal(DP_VP8, dp_codec_from_name("vp8"));
	assert_int_equal(DP_PCMU, dp_codec_from_name("PCMU"));
	assert_int_equal(DP_PCMA, dp_codec_from_name("pcma"));
	assert_int_equal(DP_G722, dp_codec_from_name("G722"));
	assert_int_equal(DP_OPUS, dp_codec_from_name("opus"));
	assert_int_equal(DP_OPUS, dp_codec_from_name("OPUS"));
	assert_int_equal(DP_TELEVENT, dp_codec_from_name("telephone-event"));
	assert_int_equal(DP_UNKNOWN, dp_codec_from_name("H265"));
	assert_int_equal(DP_UNKNOWN, dp_codec_from_name("H26"));
	assert_int_equal(DP_UNKNOWN, dp_codec_from_name(""));
	assert_int_equal(DP_UNKNOWN, dp_codec_from_name(NULL));

	assert_string_equal("H264", dp_codec_name(DP_H264));
	assert_string_equal("telephone-event", dp_codec_name(DP_TELEVENT));
	assert_int_equal(DP_OPUS, dp_codec_from_name(dp_codec_name(DP_OPUS)));
	assert_true(dp_codec_is_video(DP_VP8));
	assert_true(dp_codec_is_video(DP_H264));
	assert_false(dp_codec_is_video(DP_PCMA));
	assert_false(dp_codec_is_video(DP_UNKNOWN));
}

static void test_alloc_args(void **state)
{
	struct depack *dp = NULL;
	struct dp_frame f;
	(void)state;

	assert_int_equal(EINVAL, depack_alloc(&dp, DP_UNKNOWN, NULL));
	assert_null(dp);
	assert_int_equal(EINVAL, depack_alloc(&dp, (enum dp_codec)99, NULL));
	assert_int_equal(EINVAL, depack_alloc(NULL, DP_PCMU, NULL));

	dp = alloc(DP_H264, "packetization-mode=1");
	assert_int_equal(EINVAL, depack_push(dp, idr, sizeof(idr), 0, true,
					     false, NULL));
	assert_int_equal(EINVAL, depack_push(dp, NULL, 3, 0, true, false,
					     &f));
	assert_int_equal(EINVAL, depack_flush(dp, NULL));
	assert_null(depack_stats(NULL));
	depack_free(dp);
	depack_free(NULL);
}

static void test_audio(void **state)
{
	static const enum dp_codec codecs[] = {
		DP_PCMU, DP_PCMA, DP_G722, DP_OPUS, DP_TELEVENT,
	};
	uint8_t pl[160];
	struct dp_frame f;
	struct depack *dp;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(pl); i++)
		pl[i] = (uint8_t)(i * 7);

	for (i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
		dp = alloc(codecs[i], NULL);

		assert_int_equal(0, PUSH(dp, pl, 8000, false, false, &f));
		assert_frame(&f, pl, sizeof(pl));
		assert_true(f.keyframe);
		assert_int_equal(8000, f.rtp_ts);
		assert_int_equal(0, f.width);

		/* loss means nothing to a frame that is one payload */
		assert_int_equal(0, depack_push(dp, pl, 20, 8320, true, true,
						&f));
		assert_frame(&f, pl, 20);

		/* a larger payload grows the buffer */
		{
			static uint8_t big[5000];

			memset(big, 0x55, sizeof(big));
			assert_int_equal(0, PUSH(dp, big, 9000, false, false,
						 &f));
			assert_frame(&f, big, sizeof(big));
		}

		assert_int_equal(EAGAIN, depack_push(dp, pl, 0, 9160, false,
						     false, &f));
		assert_int_equal(EAGAIN, depack_flush(dp, &f));

		assert_int_equal(4, depack_stats(dp)->packets);
		assert_int_equal(3, depack_stats(dp)->frames);
		assert_int_equal(3, depack_stats(dp)->keyframes);
		assert_int_equal(0, depack_stats(dp)->bad);
		depack_free(dp);
	}
}

/* ---- H.264 -------------------------------------------------------------- */

static void test_h264_single_nal(void **state)
{
	uint8_t exp[256];
	struct dp_frame f;
	struct depack *dp = alloc(DP_H264, "packetization-mode=0");
	size_t n;
	(void)state;

	/* mid-GOP start: a P picture cannot be decoded yet */
	assert_int_equal(ENOENT, PUSH(dp, pslice, 1000, true, false, &f));
	assert_int_equal(1, depack_stats(dp)->waiting);

	/* packetization-mode 0: SPS, PPS, IDR as single NAL unit packets */
	assert_int_equal(EAGAIN, depack_push(dp, sps320, sps320_len, 4000,
					     false, false, &f));
	assert_int_equal(EAGAIN, PUSH(dp, pps, 4000, false, false, &f));
	assert_int_equal(0, PUSH(dp, idr, 4000, true, false, &f));
	n = annexb(exp, sps320, sps320_len, pps, sizeof(pps), idr,
		   sizeof(idr), NULL);
	assert_frame(&f, exp, n);
	assert_true(f.keyframe);
	assert_int_equal(4000, f.rtp_ts);
	assert_int_equal(320, f.width);
	assert_int_equal(240, f.height);

	/* a P picture in two slices: second slice's first_mb != 0 */
	assert_int_equal(EAGAIN, PUSH(dp, pslice, 7000, false, false, &f));
	assert_int_equal(0, PUSH(dp, pslice2, 7000, true, false, &f));
	n = annexb(exp, pslice, sizeof(pslice), pslice2, sizeof(pslice2),
		   NULL);
	assert_frame(&f, exp, n);
	assert_false(f.keyframe);
	assert_int_equal(0, f.width);
	assert_int_equal(0, f.height);

	assert_int_equal(EAGAIN, depack_flush(dp, &f));
	assert_int_equal(6, depack_stats(dp)->packets);
	assert_int_equal(2, depack_stats(dp)->frames);
	assert_int_equal(1, depack_stats(dp)->keyframes);
	depack_free(dp);
}

static void test_h264_stap_a(void **state)
{
	uint8_t pkt[256], exp[256];
	struct dp_frame f;
	struct depack *dp = alloc(DP_H264, NULL);
	size_t n, e;
	(void)state;

	n = stap(pkt, aud, sizeof(aud), sps320, sps320_len, pps, sizeof(pps),
		 sei, sizeof(sei), idr, sizeof(idr), NULL);
	assert_int_equal(0, depack_push(dp, pkt, n, 90000, true, false, &f));
	e = annexb(exp, aud, sizeof(aud), sps320, sps320_len, pps,
		   sizeof(pps), sei, sizeof(sei), idr, sizeof(idr), NULL);
	assert_frame(&f, exp, e);
	assert_true(f.keyframe);
	assert_int_equal(320, f.width);
	assert_int_equal(240, f.height);

	/* two slices of a P picture aggregated */
	n = stap(pkt, pslice, sizeof(pslice), pslice2, sizeof(pslice2), NULL);
	assert_int_equal(0, depack_push(dp, pkt, n, 93600, true, false, &f));
	e = annexb(exp, pslice, sizeof(pslice), pslice2, sizeof(pslice2),
		   NULL);
	assert_frame(&f, exp, e);
	assert_false(f.keyframe);
	depack_free(dp);
}

/* IDR of 3000 bytes, cut into FU-A fragments of at most MAX bytes. */
static uint8_t big_idr[3000];

static void make_big_idr(void)
{
	size_t i;

	big_idr[0] = 0x45;                    /* NRI 2, type 5 */
	big_idr[1] = 0x88;
	for (i = 2; i < sizeof(big_idr); i++)
		big_idr[i] = (uint8_t)(i * 31 + 7);
}

static size_t fu(uint8_t *out, const uint8_t *nal, size_t len, size_t off,
		 size_t n)
{
	out[0] = (uint8_t)((nal[0] & 0xe0) | 28);
	out[1] = (uint8_t)(nal[0] & 0x1f);
	if (off == 1)
		out[1] |= 0x80;
	if (off + n == len)
		out[1] |= 0x40;
	memcpy(out + 2, nal + off, n);
	return n + 2;
}

static void test_h264_fu_a(void **state)
{
	uint8_t pkt[1200], exp[4000];
	struct dp_frame f;
	struct depack *dp = alloc(DP_H264, NULL);
	size_t n, e;
	(void)state;

	assert_int_equal(EAGAIN, depack_push(dp, sps320, sps320_len, 5, false,
					     false, &f));
	assert_int_equal(EAGAIN, PUSH(dp, pps, 5, false, false, &f));

	/* start, middle, end: the NAL header comes back from indicator
	 * F|NRI (0x40) and header type (5) */
	n = fu(pkt, big_idr, sizeof(big_idr), 1, 1000);
	assert_int_equal(0x5c, pkt[0]);
	assert_int_equal(0x85, pkt[1]);
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 5, false, false,
					     &f));
	n = fu(pkt, big_idr, sizeof(big_idr), 1001, 1000);
	assert_int_equal(0x05, pkt[1]);
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 5, false, false,
					     &f));
	n = fu(pkt, big_idr, sizeof(big_idr), 2001, 999);
	assert_int_equal(0x45, pkt[1]);
	assert_int_equal(0, depack_push(dp, pkt, n, 5, true, false, &f));

	e = annexb(exp, sps320, sps320_len, pps, sizeof(pps), big_idr,
		   sizeof(big_idr), NULL);
	assert_frame(&f, exp, e);
	assert_true(f.keyframe);
	assert_int_equal(320, f.width);
	assert_int_equal(0, depack_stats(dp)->bad);
	depack_free(dp);
}

static void test_h264_fu_a_loss(void **state)
{
	uint8_t pkt[1200];
	struct dp_frame f;
	struct depack *dp = alloc(DP_H264, NULL);
	size_t n;
	(void)state;

	h264_key(dp, 0);

	/* start, (middle lost), end flagged lost: the IDR is dropped and
	 * the rest of its timestamp skipped */
	n = fu(pkt, big_idr, sizeof(big_idr), 1, 1000);
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 3600, false, false,
					     &f));
	n = fu(pkt, big_idr, sizeof(big_idr), 2001, 999);
	assert_int_equal(ENOENT, depack_push(dp, pkt, n, 3600, true, true,
					     &f));
	assert_int_equal(1, depack_stats(dp)->lost_frames);

	/* P pictures predict from the lost one: skipped */
	assert_int_equal(ENOENT, PUSH(dp, pslice, 7200, true, false, &f));
	assert_int_equal(ENOENT, PUSH(dp, pslice, 10800, false, false, &f));
	assert_int_equal(ENOENT, PUSH(dp, pslice2, 10800, true, false, &f));
	assert_int_equal(4, depack_stats(dp)->waiting);

	/* the next keyframe: back in business */
	h264_key(dp, 14400);
	assert_int_equal(0, PUSH(dp, pslice, 18000, true, false, &f));
	assert_false(f.keyframe);

	/* a missing FU-A end (no loss flagged) breaks the frame at the
	 * next timestamp */
	n = fu(pkt, big_idr, sizeof(big_idr), 1, 1000);
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 21600, false, false,
					     &f));
	assert_int_equal(ENOENT, PUSH(dp, pslice, 25200, true, false, &f));
	assert_int_equal(2, depack_stats(dp)->lost_frames);

	/* FU-A start while one is open: bad, frame dropped */
	h264_key(dp, 28800);
	n = fu(pkt, big_idr, sizeof(big_idr), 1, 1000);
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 32400, false, false,
					     &f));
	assert_int_equal(EBADMSG, depack_push(dp, pkt, n, 32400, false,
					      false, &f));
	assert_int_equal(1, depack_stats(dp)->bad);
	assert_int_equal(3, depack_stats(dp)->lost_frames);

	/* marker on a fragment that is not the end */
	h264_key(dp, 36000);
	n = fu(pkt, big_idr, sizeof(big_idr), 1, 1000);
	assert_int_equal(EBADMSG, depack_push(dp, pkt, n, 39600, true, false,
					      &f));

	/* flush with an FU-A open: nothing */
	h264_key(dp, 43200);
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 46800, false, false,
					     &f));
	assert_int_equal(EAGAIN, depack_flush(dp, &f));
	depack_free(dp);
}

static void test_h264_loss_clean_start(void **state)
{
	uint8_t pkt[256];
	struct dp_frame f;
	struct depack *dp = alloc(DP_H264, NULL);
	size_t n;
	(void)state;

	h264_key(dp, 0);

	/* frame 3600 loses its tail; the payload after the gap plainly
	 * starts frame 7200 (SPS): only 3600 is dropped, 7200 is a
	 * keyframe and comes out */
	assert_int_equal(EAGAIN, PUSH(dp, pslice, 3600, false, false, &f));
	n = stap(pkt, sps320, sps320_len, pps, sizeof(pps), idr, sizeof(idr),
		 NULL);
	assert_int_equal(0, depack_push(dp, pkt, n, 7200, true, true, &f));
	assert_int_equal(7200, f.rtp_ts);
	assert_true(f.keyframe);
	assert_int_equal(1, depack_stats(dp)->lost_frames);

	/* after a gap a slice with first_mb_in_slice != 0 is not a start:
	 * its timestamp is skipped even if it is an IDR */
	{
		static const uint8_t idr2[] = {0x65, 0x4a, 0x11};

		assert_int_equal(ENOENT, PUSH(dp, idr2, 10800, true, true,
					      &f));
	}

	/* after a gap a P slice with first_mb 0 is a start but no key */
	assert_int_equal(ENOENT, PUSH(dp, pslice, 14400, true, true, &f));
	/* a lone IDR with first_mb 0 after a gap: taken */
	assert_int_equal(0, PUSH(dp, idr, 18000, true, true, &f));
	assert_true(f.keyframe);
	depack_free(dp);
}

static void test_h264_ts_change(void **state)
{
	uint8_t pkt[256], exp[256];
	struct dp_frame f;
	struct depack *dp = alloc(DP_H264, NULL);
	size_t n, e;
	(void)state;

	/* no marker bits at all: frames end when the timestamp moves */
	n = stap(pkt, sps320, sps320_len, pps, sizeof(pps), idr, sizeof(idr),
		 NULL);
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 1000, false, false,
					     &f));
	assert_int_equal(0, PUSH(dp, pslice, 2000, false, false, &f));
	assert_int_equal(1000, f.rtp_ts);
	assert_true(f.keyframe);
	e = annexb(exp, sps320, sps320_len, pps, sizeof(pps), idr,
		   sizeof(idr), NULL);
	assert_frame(&f, exp, e);

	assert_int_equal(EAGAIN, PUSH(dp, pslice2, 2000, false, false, &f));
	assert_int_equal(0, PUSH(dp, pslice, 3000, false, false, &f));
	assert_int_equal(2000, f.rtp_ts);
	e = annexb(exp, pslice, sizeof(pslice), pslice2, sizeof(pslice2),
		   NULL);
	assert_frame(&f, exp, e);

	/* a timestamp change AND a one-packet frame with the marker: the
	 * second frame is held and comes with the next push */
	assert_int_equal(0, PUSH(dp, pslice, 4000, true, false, &f));
	assert_int_equal(3000, f.rtp_ts);
	assert_int_equal(0, PUSH(dp, pslice, 5000, false, false, &f));
	assert_int_equal(4000, f.rtp_ts);

	/* the last frame, marker-less, at the end of the stream */
	assert_int_equal(0, depack_flush(dp, &f));
	assert_int_equal(5000, f.rtp_ts);
	e = annexb(exp, pslice, sizeof(pslice), NULL);
	assert_frame(&f, exp, e);
	assert_int_equal(EAGAIN, depack_flush(dp, &f));

	/* held frame returned by flush */
	assert_int_equal(EAGAIN, PUSH(dp, pslice, 6000, false, false, &f));
	assert_int_equal(0, PUSH(dp, pslice, 7000, true, false, &f));
	assert_int_equal(6000, f.rtp_ts);
	assert_int_equal(0, depack_flush(dp, &f));
	assert_int_equal(7000, f.rtp_ts);

	assert_int_equal(7, depack_stats(dp)->frames);
	assert_int_equal(0, depack_stats(dp)->lost_frames);
	depack_free(dp);
}

static void test_h264_reject(void **state)
{
	static const uint8_t stap_b[] = {0x79, 0x00, 0x01, 0x00, 0x04, 0x65,
					 0x88, 0x84, 0x00};
	static const uint8_t mtap16[] = {0x7a, 0x00, 0x01, 0x00, 0x04, 0x00,
					 0x00, 0x00, 0x65, 0x88, 0x84, 0x00};
	static const uint8_t mtap24[] = {0x7b, 0x00, 0x01, 0x00, 0x04, 0x00,
					 0x00, 0x00, 0x00, 0x65, 0x88, 0x84};
	static const uint8_t fu_b[] = {0x7d, 0x85, 0x00, 0x01, 0x88, 0x84};
	static const uint8_t type0[] = {0x60, 0x11};
	static const uint8_t type30[] = {0x7e, 0x11};
	static const uint8_t type31[] = {0x7f, 0x11};
	static const uint8_t forbidden[] = {0xe5, 0x88, 0x84};
	static const uint8_t stap_zero[] = {0x78, 0x00, 0x00, 0x00, 0x02, 0x41,
					    0x9a};
	static const uint8_t stap_over[] = {0x78, 0x00, 0x09, 0x41, 0x9a};
	static const uint8_t stap_tail[] = {0x78, 0x00, 0x02, 0x41, 0x9a,
					    0x00};
	static const uint8_t stap_empty[] = {0x78};
	static const uint8_t stap_nested[] = {0x78, 0x00, 0x03, 0x78, 0x00,
					      0x00};
	static const uint8_t stap_forb[] = {0x78, 0x00, 0x02, 0xc1, 0x9a};
	static const uint8_t fu_se[] = {0x7c, 0xc5, 0x88};
	static const uint8_t fu_short[] = {0x7c, 0x85};
	static const uint8_t fu_mid[] = {0x7c, 0x05, 0x88, 0x99};
	static const uint8_t fu_end[] = {0x7c, 0x45, 0x88, 0x99};
	static const uint8_t fu_type28[] = {0x7c, 0x9c, 0x88, 0x99};
	static const uint8_t fu_type0[] = {0x7c, 0x80, 0x88, 0x99};
	static const struct {
		const uint8_t *p;
		size_t len;
	} bad[] = {
		{stap_b, sizeof(stap_b)}, {mtap16, sizeof(mtap16)},
		{mtap24, sizeof(mtap24)}, {fu_b, sizeof(fu_b)},
		{type0, sizeof(type0)}, {type30, sizeof(type30)},
		{type31, sizeof(type31)}, {forbidden, sizeof(forbidden)},
		{stap_zero, sizeof(stap_zero)}, {stap_over, sizeof(stap_over)},
		{stap_tail, sizeof(stap_tail)},
		{stap_empty, sizeof(stap_empty)},
		{stap_nested, sizeof(stap_nested)},
		{stap_forb, sizeof(stap_forb)},
		{fu_se, sizeof(fu_se)}, {fu_short, sizeof(fu_short)},
		{fu_mid, sizeof(fu_mid)}, {fu_end, sizeof(fu_end)},
		{fu_type28, sizeof(fu_type28)}, {fu_type0, sizeof(fu_type0)},
	};
	struct dp_frame f;
	struct depack *dp = alloc(DP_H264, NULL);
	uint32_t ts = 0;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		h264_key(dp, ts);
		ts += 3600;

		/* a bad payload in the middle of a frame drops the frame */
		assert_int_equal(EAGAIN, PUSH(dp, pslice, ts, false, false,
					      &f));
		assert_int_equal(EBADMSG, depack_push(dp, bad[i].p,
						      bad[i].len, ts, false,
						      false, &f));
		assert_int_equal(i + 1, depack_stats(dp)->bad);
		assert_int_equal(i + 1, depack_stats(dp)->lost_frames);

		/* ... skips the rest of its timestamp ... */
		assert_int_equal(ENOENT, PUSH(dp, pslice2, ts, true, false,
					      &f));
		ts += 3600;
		/* ... and waits for a keyframe */
		assert_int_equal(ENOENT, PUSH(dp, pslice, ts, true, false,
					      &f));
		ts += 3600;
	}

	/* a payload for a frame already returned */
	h264_key(dp, ts);
	assert_int_equal(EBADMSG, PUSH(dp, pslice2, ts, true, false, &f));
	assert_int_equal(0, PUSH(dp, pslice, ts + 3600, true, false, &f));
	depack_free(dp);
}

static void test_h264_padding_and_params(void **state)
{
	uint8_t pkt[256], exp[256];
	struct dp_frame f;
	struct depack *dp = alloc(DP_H264, NULL);
	size_t n, e;
	(void)state;

	/* parameter sets on a timestamp of their own (some cameras): they
	 * are no frame, and go in front of the next */
	n = stap(pkt, sps320, sps320_len, pps, sizeof(pps), NULL);
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 100, true, false,
					     &f));
	/* an empty payload (padding only) neither ends nor starts */
	assert_int_equal(EAGAIN, depack_push(dp, pkt, 0, 50, true, false,
					     &f));
	assert_int_equal(0, PUSH(dp, idr, 200, true, false, &f));
	assert_int_equal(200, f.rtp_ts);
	e = annexb(exp, sps320, sps320_len, pps, sizeof(pps), idr,
		   sizeof(idr), NULL);
	assert_frame(&f, exp, e);
	assert_int_equal(320, f.width);

	/* same, ended by timestamp change instead of the marker */
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 300, false, false,
					     &f));
	assert_int_equal(EAGAIN, PUSH(dp, idr, 400, false, false, &f));
	assert_int_equal(0, PUSH(dp, pslice, 500, true, false, &f));
	assert_int_equal(400, f.rtp_ts);
	assert_frame(&f, exp, e);

	/* parameter sets alone at the end of the stream are no frame */
	assert_int_equal(0, depack_push(dp, pkt, n, 600, false, false, &f));
	assert_int_equal(500, f.rtp_ts);
	assert_int_equal(EAGAIN, depack_flush(dp, &f));

	/* an empty payload flagged lost still breaks the frame */
	assert_int_equal(EAGAIN, PUSH(dp, pslice, 700, false, false, &f));
	assert_int_equal(EAGAIN, depack_push(dp, pkt, 0, 700, false, true,
					     &f));
	assert_int_equal(1, depack_stats(dp)->lost_frames);
	assert_int_equal(ENOENT, PUSH(dp, pslice, 800, true, false, &f));
	depack_free(dp);
}

static void b64(const uint8_t *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;
	uint32_t v;

	for (i = 0; i < n; i += 3) {
		v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = i + 1 < n ? a[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? a[v & 63] : '=';
	}
	out[o] = '\0';
}

static void test_h264_sprop(void **state)
{
	const struct sps_def d = {
		.profile = 66, .w_mbs = 40, .h_units = 23,
		.frame_mbs_only = true, .crop = {0, 0, 0, 4},
	};
	uint8_t sps640[64], pkt[256], exp[512];
	char s64[128], p64[16], fmtp[512];
	struct dp_frame f;
	struct depack *dp;
	size_t sl, n, e;
	(void)state;

	sl = build_sps(&d, sps640);
	b64(sps640, sl, s64);
	b64(pps, sizeof(pps), p64);
	snprintf(fmtp, sizeof(fmtp),
		 "profile-level-id=42e01f; packetization-mode=1 ;"
		 "SPROP-parameter-sets=%s, %s;level-asymmetry-allowed=1",
		 s64, p64);

	dp = alloc(DP_H264, fmtp);

	/* an IDR alone gets SPS and PPS in front of it, after the AUD */
	n = stap(pkt, aud, sizeof(aud), idr, sizeof(idr), NULL);
	assert_int_equal(0, depack_push(dp, pkt, n, 0, true, false, &f));
	e = annexb(exp, aud, sizeof(aud), sps640, sl, pps, sizeof(pps), idr,
		   sizeof(idr), NULL);
	assert_frame(&f, exp, e);
	assert_true(f.keyframe);
	assert_int_equal(640, f.width);
	assert_int_equal(360, f.height);

	/* P frames get nothing */
	assert_int_equal(0, PUSH(dp, pslice, 3600, true, false, &f));
	e = annexb(exp, pslice, sizeof(pslice), NULL);
	assert_frame(&f, exp, e);

	/* an IDR with its own PPS only: the SPS goes before that PPS */
	n = stap(pkt, pps, sizeof(pps), idr, sizeof(idr), NULL);
	assert_int_equal(0, depack_push(dp, pkt, n, 7200, true, false, &f));
	e = annexb(exp, sps640, sl, pps, sizeof(pps), idr, sizeof(idr), NULL);
	assert_frame(&f, exp, e);

	/* in-band SPS (resolution change) replaces sprop's for later IDRs */
	h264_key(dp, 10800);
	assert_int_equal(0, PUSH(dp, idr, 14400, true, false, &f));
	e = annexb(exp, sps320, sps320_len, pps, sizeof(pps), idr,
		   sizeof(idr), NULL);
	assert_frame(&f, exp, e);
	assert_int_equal(320, f.width);
	assert_int_equal(240, f.height);
	depack_free(dp);

	/* a broken sprop is ignored, not fatal */
	dp = alloc(DP_H264, "sprop-parameter-sets=%%%,Z0,;sprop-parameter-sets");
	assert_int_equal(0, PUSH(dp, idr, 0, true, false, &f));
	e = annexb(exp, idr, sizeof(idr), NULL);
	assert_frame(&f, exp, e);
	assert_int_equal(0, f.width);
	depack_free(dp);
}

static void check_sps(const struct sps_def *d, int w, int h)
{
	uint8_t sps[128], pkt[256];
	struct dp_frame f;
	struct depack *dp = alloc(DP_H264, NULL);
	size_t sl, n;

	sl = build_sps(d, sps);
	n = stap(pkt, sps, sl, pps, sizeof(pps), idr, sizeof(idr), NULL);
	assert_int_equal(0, depack_push(dp, pkt, n, 0, true, false, &f));
	assert_int_equal(w, f.width);
	assert_int_equal(h, f.height);
	depack_free(dp);
}

static void test_h264_sps(void **state)
{
	/* high profile, 4:2:0, scaling lists, 1080p by cropping 1088 */
	const struct sps_def hp = {
		.profile = 100, .chroma = 1, .scaling = true, .w_mbs = 120,
		.h_units = 68, .frame_mbs_only = true, .crop = {0, 0, 0, 4},
	};
	/* High 4:4:4, 12 scaling lists, crop unit 1 */
	const struct sps_def h444 = {
		.profile = 244, .chroma = 3, .scaling = true, .w_mbs = 20,
		.h_units = 15, .frame_mbs_only = true, .crop = {2, 2, 1, 0},
	};
	/* 4:4:4 with separate colour planes: ChromaArrayType 0 */
	const struct sps_def sep = {
		.profile = 244, .chroma = 3, .sep_planes = true, .w_mbs = 20,
		.h_units = 15, .frame_mbs_only = true, .crop = {1, 0, 0, 3},
	};
	/* monochrome */
	const struct sps_def mono = {
		.profile = 100, .chroma = 0, .w_mbs = 20, .h_units = 15,
		.frame_mbs_only = true, .crop = {0, 3, 0, 1},
	};
	/* interlaced 1080i: 34 map units of 32 lines, crop unit 4 */
	const struct sps_def field = {
		.profile = 100, .chroma = 1, .w_mbs = 120, .h_units = 34,
		.frame_mbs_only = false, .crop = {0, 0, 0, 2},
	};
	/* 4:2:2, poc type 1 with big offsets (long zero runs: the NAL
	 * needs emulation prevention bytes) */
	const struct sps_def poc1 = {
		.profile = 122, .chroma = 2, .poc_type = 1,
		.poc_offset = 1 << 22, .w_mbs = 11, .h_units = 9,
		.frame_mbs_only = true, .crop = {1, 1, 1, 1},
	};
	uint8_t sps[128];
	size_t n, i;
	bool epb = false;
	(void)state;

	check_sps(&hp, 1920, 1080);
	check_sps(&h444, 316, 239);
	check_sps(&sep, 319, 237);
	check_sps(&mono, 317, 239);
	check_sps(&field, 1920, 1080);
	check_sps(&poc1, 176 - 4, 144 - 2);

	n = build_sps(&poc1, sps);
	for (i = 0; i + 2 < n; i++)
		epb |= !sps[i] && !sps[i + 1] && sps[i + 2] == 3;
	assert_true(epb);

	/* an SPS that does not parse: picture size unknown, frame kept */
	{
		static const uint8_t bad_sps[] = {0x67, 0x64, 0x00, 0x28,
						  0x00, 0x00};
		uint8_t pkt[64];
		struct dp_frame f;
		struct depack *dp = alloc(DP_H264, NULL);

		n = stap(pkt, bad_sps, sizeof(bad_sps), pps, sizeof(pps), idr,
			 sizeof(idr), NULL);
		assert_int_equal(0, depack_push(dp, pkt, n, 0, true, false,
						&f));
		assert_int_equal(0, f.width);
		assert_true(f.keyframe);
		depack_free(dp);
	}
}

static void test_h264_cap(void **state)
{
	static uint8_t pkt[1402];
	struct dp_frame f;
	struct depack *dp = alloc(DP_H264, NULL);
	size_t i;
	int err = EAGAIN;
	(void)state;

	h264_key(dp, 0);

	/* a 5 MB IDR: refused at 4 MiB, never taking more memory */
	memset(pkt, 0x5a, sizeof(pkt));
	pkt[0] = 0x7c;
	pkt[1] = 0x85;
	assert_int_equal(EAGAIN, PUSH(dp, pkt, 3600, false, false, &f));
	pkt[1] = 0x05;
	for (i = 1; i < 5000000 / 1400 && err == EAGAIN; i++)
		err = PUSH(dp, pkt, 3600, false, false, &f);
	assert_int_equal(EBADMSG, err);
	assert_true(i * 1400 > (4 << 20) && i * 1400 < (4 << 20) + 1500);
	assert_int_equal(1, depack_stats(dp)->bad);
	assert_int_equal(ENOENT, PUSH(dp, pkt, 3600, false, false, &f));

	/* next keyframe is fine */
	h264_key(dp, 7200);
	depack_free(dp);
}

/* The example at the top of depack.c, step by step. */
static void test_worked_example(void **state)
{
	uint8_t pkt[1200];
	struct dp_frame f;
	struct depack *dp = alloc(DP_H264, NULL);
	size_t n;
	(void)state;

	n = fu(pkt, big_idr, sizeof(big_idr), 1001, 1000);
	assert_int_equal(ENOENT, depack_push(dp, pkt, n, 100, false, true,
					     &f));
	n = fu(pkt, big_idr, sizeof(big_idr), 2001, 999);
	assert_int_equal(ENOENT, depack_push(dp, pkt, n, 100, true, false,
					     &f));
	assert_int_equal(ENOENT, PUSH(dp, pslice, 200, true, false, &f));
	n = stap(pkt, sps320, sps320_len, pps, sizeof(pps), NULL);
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 300, false, false,
					     &f));
	assert_int_equal(0, PUSH(dp, idr, 300, true, false, &f));
	assert_int_equal(300, f.rtp_ts);
	assert_true(f.keyframe);
	assert_int_equal(320, f.width);
	assert_int_equal(240, f.height);
	assert_int_equal(EAGAIN, PUSH(dp, pslice, 400, false, false, &f));
	assert_int_equal(0, PUSH(dp, pslice, 500, true, false, &f));
	assert_int_equal(400, f.rtp_ts);
	assert_int_equal(0, depack_flush(dp, &f));
	assert_int_equal(500, f.rtp_ts);
	assert_int_equal(3, depack_stats(dp)->waiting);
	depack_free(dp);
}

/* ---- VP8 --------------------------------------------------------------- */

/* VP8 key frame data: frame tag (P=0), start code, 320x240 */
static const uint8_t vp8_key[] = {0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a,
				  0x40, 0x01, 0xf0, 0x00, 0x11, 0x22, 0x33};
/* inter frame data: P=1 */
static const uint8_t vp8_inter[] = {0x31, 0x02, 0x00, 0x44, 0x55};

static size_t vp8_pkt(uint8_t *out, const uint8_t *desc, size_t dl,
		      const uint8_t *data, size_t len)
{
	memcpy(out, desc, dl);
	memcpy(out + dl, data, len);
	return dl + len;
}

static void test_vp8_basic(void **state)
{
	static const uint8_t d_start[] = {0x10};         /* S=1 PID=0 */
	uint8_t pkt[64];
	struct dp_frame f;
	struct depack *dp = alloc(DP_VP8, NULL);
	size_t n;
	(void)state;

	/* waiting for the first key frame */
	n = vp8_pkt(pkt, d_start, 1, vp8_inter, sizeof(vp8_inter));
	assert_int_equal(ENOENT, depack_push(dp, pkt, n, 0, true, false, &f));

	n = vp8_pkt(pkt, d_start, 1, vp8_key, sizeof(vp8_key));
	assert_int_equal(0, depack_push(dp, pkt, n, 3000, true, false, &f));
	assert_frame(&f, vp8_key, sizeof(vp8_key));
	assert_true(f.keyframe);
	assert_int_equal(320, f.width);
	assert_int_equal(240, f.height);
	assert_int_equal(3000, f.rtp_ts);

	n = vp8_pkt(pkt, d_start, 1, vp8_inter, sizeof(vp8_inter));
	assert_int_equal(0, depack_push(dp, pkt, n, 6000, true, false, &f));
	assert_frame(&f, vp8_inter, sizeof(vp8_inter));
	assert_false(f.keyframe);
	assert_int_equal(0, f.width);

	/* marker-less: the timestamp change ends it, flush the last */
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 9000, false, false,
					     &f));
	assert_int_equal(0, depack_push(dp, pkt, n, 12000, false, false, &f));
	assert_int_equal(9000, f.rtp_ts);
	assert_int_equal(0, depack_flush(dp, &f));
	assert_int_equal(12000, f.rtp_ts);
	assert_int_equal(EAGAIN, depack_flush(dp, &f));

	/* a key frame whose header lies (no start code): no size */
	{
		uint8_t k[sizeof(vp8_key)];

		memcpy(k, vp8_key, sizeof(k));
		k[4] = 0x02;
		n = vp8_pkt(pkt, d_start, 1, k, sizeof(k));
		assert_int_equal(0, depack_push(dp, pkt, n, 15000, true,
						false, &f));
		assert_true(f.keyframe);
		assert_int_equal(0, f.width);
	}
	assert_int_equal(5, depack_stats(dp)->frames);
	assert_int_equal(2, depack_stats(dp)->keyframes);
	assert_int_equal(1, depack_stats(dp)->waiting);
	depack_free(dp);
}

static void test_vp8_extensions(void **state)
{
	static const struct {
		uint8_t d[6];
		size_t len;
	} descs[] = {
		{{0x10}, 1},                              /* none */
		{{0x90, 0x00}, 2},                        /* X, nothing */
		{{0x90, 0x80, 0x05}, 3},                  /* I, 7-bit */
		{{0x90, 0x80, 0x81, 0x23}, 4},            /* I, 15-bit */
		{{0xb0, 0xc0, 0xff, 0xff, 0x07}, 5},      /* N; I 15, L */
		{{0x90, 0x40, 0x07}, 3},                  /* L */
		{{0x90, 0x20, 0x40}, 3},                  /* T */
		{{0x90, 0x10, 0x1f}, 3},                  /* K */
		{{0x90, 0xf0, 0xfa, 0xce, 0x07, 0x5f}, 6},/* I 15, L, T/K */
		{{0xd0, 0xe0, 0x12, 0x07, 0x80}, 5},      /* R set: ignored */
	};
	uint8_t pkt[64];
	struct dp_frame f;
	struct depack *dp = alloc(DP_VP8, NULL);
	size_t i, n;
	(void)state;

	for (i = 0; i < sizeof(descs) / sizeof(descs[0]); i++) {
		n = vp8_pkt(pkt, descs[i].d, descs[i].len, vp8_key,
			    sizeof(vp8_key));
		assert_int_equal(0, depack_push(dp, pkt, n, (uint32_t)i * 10,
						true, false, &f));
		assert_frame(&f, vp8_key, sizeof(vp8_key));
		assert_int_equal(320, f.width);
	}
	assert_int_equal(0, depack_stats(dp)->bad);
	depack_free(dp);
}

static void test_vp8_partitions(void **state)
{
	static const uint8_t d0[] = {0x90, 0x80, 0x81, 0x00};  /* S, PID 0 */
	static const uint8_t dc[] = {0x80, 0x80, 0x81, 0x00};  /* cont. */
	static const uint8_t d1[] = {0x91, 0x80, 0x81, 0x00};  /* S, PID 1 */
	static const uint8_t d2[] = {0x12};                    /* S, PID 2 */
	static const uint8_t part1[] = {0xa1, 0xa2, 0xa3};
	static const uint8_t part2[] = {0xb1};
	uint8_t pkt[64], exp[64];
	struct dp_frame f;
	struct depack *dp = alloc(DP_VP8, NULL);
	size_t n;
	(void)state;

	/* key frame: first partition across two packets, then partitions
	 * 1 and 2 each in their own */
	n = vp8_pkt(pkt, d0, sizeof(d0), vp8_key, 8);
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 0, false, false,
					     &f));
	n = vp8_pkt(pkt, dc, sizeof(dc), vp8_key + 8, sizeof(vp8_key) - 8);
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 0, false, false,
					     &f));
	n = vp8_pkt(pkt, d1, sizeof(d1), part1, sizeof(part1));
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 0, false, false,
					     &f));
	n = vp8_pkt(pkt, d2, sizeof(d2), part2, sizeof(part2));
	assert_int_equal(0, depack_push(dp, pkt, n, 0, true, false, &f));

	memcpy(exp, vp8_key, sizeof(vp8_key));
	memcpy(exp + sizeof(vp8_key), part1, sizeof(part1));
	memcpy(exp + sizeof(vp8_key) + sizeof(part1), part2, sizeof(part2));
	assert_frame(&f, exp, sizeof(vp8_key) + sizeof(part1) +
		     sizeof(part2));
	assert_int_equal(320, f.width);   /* header split across packets */

	/* partition index going backwards: bad */
	n = vp8_pkt(pkt, d0, sizeof(d0), vp8_inter, sizeof(vp8_inter));
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 10, false, false,
					     &f));
	n = vp8_pkt(pkt, d2, sizeof(d2), part2, sizeof(part2));
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 10, false, false,
					     &f));
	n = vp8_pkt(pkt, d1, sizeof(d1), part1, sizeof(part1));
	assert_int_equal(EBADMSG, depack_push(dp, pkt, n, 10, true, false,
					      &f));

	/* two frame starts in one timestamp: bad */
	n = vp8_pkt(pkt, d0, sizeof(d0), vp8_key, sizeof(vp8_key));
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 20, false, false,
					     &f));
	assert_int_equal(EBADMSG, depack_push(dp, pkt, n, 20, true, false,
					      &f));

	/* continuation without a start: bad */
	n = vp8_pkt(pkt, dc, sizeof(dc), part1, sizeof(part1));
	assert_int_equal(EBADMSG, depack_push(dp, pkt, n, 30, true, false,
					      &f));
	assert_int_equal(3, depack_stats(dp)->bad);
	depack_free(dp);
}

static void test_vp8_truncated(void **state)
{
	static const struct {
		uint8_t d[5];
		size_t len;
	} bad[] = {
		{{0x90}, 1},                      /* X, no extension byte */
		{{0x90, 0x80}, 2},                /* I, no picture id */
		{{0x90, 0x80, 0x81}, 3},          /* 15-bit id, 1 byte */
		{{0x90, 0x40}, 2},                /* L, no TL0PICIDX */
		{{0x90, 0x20}, 2},                /* T, no TID byte */
		{{0x90, 0x10}, 2},                /* K, no KEYIDX byte */
		{{0x90, 0xf0, 0x81, 0x01, 0x02}, 5},  /* T/K byte missing */
		{{0x90, 0x80, 0x05}, 3},          /* descriptor, no data */
		{{0x10}, 1},                      /* no data */
	};
	struct dp_frame f;
	struct depack *dp = alloc(DP_VP8, NULL);
	uint8_t pkt[64];
	size_t i, n;
	(void)state;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(EBADMSG, depack_push(dp, bad[i].d, bad[i].len,
						      (uint32_t)i, true, false,
						      &f));
	}
	assert_int_equal(i, depack_stats(dp)->bad);

	/* still works */
	n = vp8_pkt(pkt, (const uint8_t[]){0x90, 0x80, 0x01}, 3, vp8_key,
		    sizeof(vp8_key));
	assert_int_equal(0, depack_push(dp, pkt, n, 100, true, false, &f));
	depack_free(dp);
}

static void test_vp8_loss(void **state)
{
	static const uint8_t ds[] = {0x10}, dc[] = {0x00};
	uint8_t pkt[64];
	struct dp_frame f;
	struct depack *dp = alloc(DP_VP8, NULL);
	size_t n;
	(void)state;

	n = vp8_pkt(pkt, ds, 1, vp8_key, sizeof(vp8_key));
	assert_int_equal(0, depack_push(dp, pkt, n, 0, true, false, &f));

	/* frame 10 loses its tail; frame 20's start comes flagged lost:
	 * 10 is dropped, 20 is an inter frame: skipped, and its rest */
	n = vp8_pkt(pkt, ds, 1, vp8_inter, sizeof(vp8_inter));
	assert_int_equal(EAGAIN, depack_push(dp, pkt, n, 10, false, false,
					     &f));
	assert_int_equal(ENOENT, depack_push(dp, pkt, n, 20, false, true,
					     &f));
	n = vp8_pkt(pkt, dc, 1, vp8_inter, sizeof(vp8_inter));
	assert_int_equal(ENOENT, depack_push(dp, pkt, n, 20, true, false,
					     &f));

	/* loss inside a frame: skip the rest of it */
	assert_int_equal(ENOENT, depack_push(dp, pkt, n, 30, true, true, &f));

	/* a key frame after a gap that starts cleanly is taken */
	n = vp8_pkt(pkt, ds, 1, vp8_key, sizeof(vp8_key));
	assert_int_equal(0, depack_push(dp, pkt, n, 40, true, true, &f));
	assert_true(f.keyframe);

	assert_int_equal(1, depack_stats(dp)->lost_frames);
	assert_int_equal(3, depack_stats(dp)->waiting);
	depack_free(dp);
}

static int setup(void **state)
{
	(void)state;
	make_sps320();
	make_big_idr();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec_names),
		cmocka_unit_test(test_alloc_args),
		cmocka_unit_test(test_audio),
		cmocka_unit_test(test_h264_single_nal),
		cmocka_unit_test(test_h264_stap_a),
		cmocka_unit_test(test_h264_fu_a),
		cmocka_unit_test(test_h264_fu_a_loss),
		cmocka_unit_test(test_h264_loss_clean_start),
		cmocka_unit_test(test_h264_ts_change),
		cmocka_unit_test(test_h264_reject),
		cmocka_unit_test(test_h264_padding_and_params),
		cmocka_unit_test(test_h264_sprop),
		cmocka_unit_test(test_h264_sps),
		cmocka_unit_test(test_h264_cap),
		cmocka_unit_test(test_worked_example),
		cmocka_unit_test(test_vp8_basic),
		cmocka_unit_test(test_vp8_extensions),
		cmocka_unit_test(test_vp8_partitions),
		cmocka_unit_test(test_vp8_truncated),
		cmocka_unit_test(test_vp8_loss),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
