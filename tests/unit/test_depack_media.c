/*
 * test_depack_media.c: the depacketizers (depack.h) on real media: RTP
 * captured from ffmpeg (libx264, libvpx; tests/data/rtp/README.md) is
 * depacketized and every frame decoded with libavcodec, which must report
 * no error at all, also after a loss and with the marker bits removed,
 * and across a resolution change. Hand-built payloads: test_depack.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>
#include <libavcodec/avcodec.h>
#include <libavutil/log.h>
#include "depack.h"

static struct depack *alloc(enum dp_codec c, const char *fmtp)
{
	struct depack *dp = NULL;

	assert_int_equal(0, depack_alloc(&dp, c, fmtp));
	assert_non_null(dp);
	return dp;
}

/* ---- real media --------------------------------------------------------- */

struct clip {
	uint8_t *buf;
	size_t len;
	size_t off;
};

struct rtp {
	const uint8_t *pl;
	size_t len;
	uint32_t ts;
	bool marker;
};

static void clip_load(struct clip *c, const char *name)
{
	char path[512];
	FILE *fp;
	long n;

	snprintf(path, sizeof(path), "%s/rtp/%s", TALLY_TEST_DATA, name);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(0, fseek(fp, 0, SEEK_END));
	n = ftell(fp);
	assert_true(n > 0);
	rewind(fp);
	c->buf = malloc((size_t)n);
	assert_non_null(c->buf);
	assert_int_equal(1, fread(c->buf, (size_t)n, 1, fp));
	fclose(fp);
	c->len = (size_t)n;
	c->off = 0;
}

/* Next [u16 len][RTP packet] record, RTP header stripped. */
static bool clip_next(struct clip *c, struct rtp *r)
{
	const uint8_t *p;
	size_t len, h;

	if (c->off + 2 > c->len)
		return false;
	len = (size_t)c->buf[c->off] << 8 | c->buf[c->off + 1];
	assert_true(c->off + 2 + len <= c->len);
	p = c->buf + c->off + 2;
	c->off += 2 + len;

	assert_true(len >= 12);
	assert_int_equal(2, p[0] >> 6);
	h = 12 + 4 * (p[0] & 0x0f);
	if (p[0] & 0x10)
		h += 4 + 4 * ((size_t)p[h + 2] << 8 | p[h + 3]);
	if (p[0] & 0x20)
		len -= p[len - 1];
	assert_true(h <= len);

	r->pl = p + h;
	r->len = len - h;
	r->ts = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
		(uint32_t)p[6] << 8 | p[7];
	r->marker = p[1] & 0x80;
	return true;
}

static int av_errors;

static void av_log_count(void *avcl, int level, const char *fmt, va_list vl)
{
	(void)avcl;

	if (level <= AV_LOG_ERROR) {
		++av_errors;
		vfprintf(stderr, fmt, vl);
	}
}

struct dec {
	AVCodecContext *ctx;
	AVPacket *pkt;
	AVFrame *frm;
	int decoded;
	int w, h;                  /* size the depacketizer last said */
};

static void dec_open(struct dec *d, enum dp_codec codec)
{
	const AVCodec *c = avcodec_find_decoder(codec == DP_H264 ?
						AV_CODEC_ID_H264 :
						AV_CODEC_ID_VP8);

	memset(d, 0, sizeof(*d));
	assert_non_null(c);
	d->ctx = avcodec_alloc_context3(c);
	assert_non_null(d->ctx);
	d->ctx->thread_count = 1;
	d->ctx->err_recognition = AV_EF_EXPLODE | AV_EF_CRCCHECK |
		AV_EF_BITSTREAM | AV_EF_BUFFER;
	assert_int_equal(0, avcodec_open2(d->ctx, c, NULL));
	d->pkt = av_packet_alloc();
	d->frm = av_frame_alloc();
	assert_non_null(d->pkt);
	assert_non_null(d->frm);
	av_errors = 0;
	av_log_set_callback(av_log_count);
}

static void dec_receive(struct dec *d)
{
	int err;

	for (;;) {
		err = avcodec_receive_frame(d->ctx, d->frm);
		if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
			return;
		assert_int_equal(0, err);
		assert_int_equal(0, d->frm->decode_error_flags);
		assert_false(d->frm->flags & AV_FRAME_FLAG_CORRUPT);
		assert_int_equal(d->w, d->frm->width);
		assert_int_equal(d->h, d->frm->height);
		++d->decoded;
		av_frame_unref(d->frm);
	}
}

static void dec_frame(struct dec *d, const struct dp_frame *f)
{
	if (f->width) {
		d->w = f->width;
		d->h = f->height;
	}
	assert_int_equal(0, av_new_packet(d->pkt, (int)f->len));
	memcpy(d->pkt->data, f->data, f->len);
	assert_int_equal(0, avcodec_send_packet(d->ctx, d->pkt));
	av_packet_unref(d->pkt);
	dec_receive(d);
}

static void dec_close(struct dec *d)
{
	assert_int_equal(0, avcodec_send_packet(d->ctx, NULL));
	dec_receive(d);
	assert_int_equal(0, av_errors);
	av_log_set_callback(av_log_default_callback);
	av_frame_free(&d->frm);
	av_packet_free(&d->pkt);
	avcodec_free_context(&d->ctx);
}

enum { MAX_FRAMES = 64 };

struct run {
	/* in */
	bool strip_marker;         /* pretend the sender sets no marker */
	int drop;                  /* packet index lost in transit, or -1 */
	/* out */
	int frames;
	int keys;
	bool key[MAX_FRAMES];
	int width[MAX_FRAMES], height[MAX_FRAMES];
	uint32_t ts[MAX_FRAMES];
};

static void take(struct run *r, struct dec *d, const struct dp_frame *f)
{
	assert_true(r->frames < MAX_FRAMES);
	if (r->frames)
		assert_true(f->rtp_ts != r->ts[r->frames - 1]);
	r->key[r->frames] = f->keyframe;
	r->width[r->frames] = f->width;
	r->height[r->frames] = f->height;
	r->ts[r->frames] = f->rtp_ts;
	r->keys += f->keyframe;
	++r->frames;
	/* a frame says its size exactly when it is a keyframe here */
	assert_true(!f->keyframe == !f->width);
	dec_frame(d, f);
}

static void run_clip(const char *name, enum dp_codec codec, struct run *r)
{
	struct depack *dp = alloc(codec, NULL);
	struct dp_frame f;
	struct clip c;
	struct rtp p;
	struct dec d;
	bool lost = false;
	int i = 0, err;

	clip_load(&c, name);
	dec_open(&d, codec);

	while (clip_next(&c, &p)) {
		if (i++ == r->drop) {
			lost = true;
			continue;
		}
		err = depack_push(dp, p.pl, p.len, p.ts,
				  p.marker && !r->strip_marker, lost, &f);
		lost = false;
		if (err == 0)
			take(r, &d, &f);
		else
			assert_true(err == EAGAIN || err == ENOENT);
	}
	if (depack_flush(dp, &f) == 0)
		take(r, &d, &f);

	dec_close(&d);
	assert_int_equal(r->frames, d.decoded);
	assert_int_equal(0, depack_stats(dp)->bad);
	assert_int_equal(r->frames, depack_stats(dp)->frames);
	assert_int_equal(r->keys, depack_stats(dp)->keyframes);
	depack_free(dp);
	free(c.buf);
}

static void check_gop10(const struct run *r, int first, int w, int h)
{
	int i;

	for (i = 0; i < r->frames; i++) {
		bool key = (first + i) % 10 == 0;

		assert_int_equal(key, r->key[i]);
		assert_int_equal(key ? w : 0, r->width[i]);
		assert_int_equal(key ? h : 0, r->height[i]);
	}
}

static void test_real_h264(void **state)
{
	struct run r;
	(void)state;

	/* 25 frames, GOP 10, two slices per picture (x264 sliced threads),
	 * IDRs in FU-A after an STAP-A of SPS+PPS(+SEI), P in STAP-A */
	memset(&r, 0, sizeof(r));
	r.drop = -1;
	run_clip("h264_320x240.rtp", DP_H264, &r);
	assert_int_equal(25, r.frames);
	assert_int_equal(3, r.keys);
	check_gop10(&r, 0, 320, 240);

	/* without marker bits: same frames, from timestamp changes */
	memset(&r, 0, sizeof(r));
	r.drop = -1;
	r.strip_marker = true;
	run_clip("h264_320x240.rtp", DP_H264, &r);
	assert_int_equal(25, r.frames);
	assert_int_equal(3, r.keys);
	check_gop10(&r, 0, 320, 240);

	/* packet 6 (frame 1, a P picture) lost: frames 1-9 skipped, the
	 * decoder still sees no error */
	memset(&r, 0, sizeof(r));
	r.drop = 6;
	run_clip("h264_320x240.rtp", DP_H264, &r);
	assert_int_equal(1 + 15, r.frames);
	assert_int_equal(3, r.keys);
	assert_true(r.key[1]);

	/* packet 16 (frame 10's first IDR fragment) lost: 10-19 skipped */
	memset(&r, 0, sizeof(r));
	r.drop = 16;
	run_clip("h264_320x240.rtp", DP_H264, &r);
	assert_int_equal(10 + 5, r.frames);
	assert_int_equal(2, r.keys);
	check_gop10(&r, 0, 320, 240);
	assert_true(r.key[10]);
}

static void test_real_h264_resize(void **state)
{
	struct run r;
	int i;
	(void)state;

	/* 12 frames 320x240 baseline, then 12 frames 640x360 high profile
	 * with scaling matrices and cropping, one RTP stream */
	memset(&r, 0, sizeof(r));
	r.drop = -1;
	run_clip("h264_resize.rtp", DP_H264, &r);
	assert_int_equal(24, r.frames);
	assert_int_equal(4, r.keys);
	for (i = 0; i < 24; i++) {
		bool key = i == 0 || i == 10 || i == 12 || i == 22;

		assert_int_equal(key, r.key[i]);
		if (key) {
			assert_int_equal(i < 12 ? 320 : 640, r.width[i]);
			assert_int_equal(i < 12 ? 240 : 360, r.height[i]);
		}
	}
}

static void test_real_vp8(void **state)
{
	struct run r;
	(void)state;

	memset(&r, 0, sizeof(r));
	r.drop = -1;
	run_clip("vp8_320x240.rtp", DP_VP8, &r);
	assert_int_equal(25, r.frames);
	assert_int_equal(3, r.keys);
	check_gop10(&r, 0, 320, 240);

	memset(&r, 0, sizeof(r));
	r.drop = -1;
	r.strip_marker = true;
	run_clip("vp8_320x240.rtp", DP_VP8, &r);
	assert_int_equal(25, r.frames);
	check_gop10(&r, 0, 320, 240);

	/* packet 2 (middle of the first key frame) lost: 0-9 gone */
	memset(&r, 0, sizeof(r));
	r.drop = 2;
	run_clip("vp8_320x240.rtp", DP_VP8, &r);
	assert_int_equal(15, r.frames);
	check_gop10(&r, 10, 320, 240);
}

static void test_real_vp8_resize(void **state)
{
	struct run r;
	int i;
	(void)state;

	memset(&r, 0, sizeof(r));
	r.drop = -1;
	run_clip("vp8_resize.rtp", DP_VP8, &r);
	assert_int_equal(24, r.frames);
	assert_int_equal(4, r.keys);
	for (i = 0; i < 24; i++) {
		bool key = i == 0 || i == 10 || i == 12 || i == 22;

		assert_int_equal(key, r.key[i]);
		if (key) {
			assert_int_equal(i < 12 ? 320 : 640, r.width[i]);
			assert_int_equal(i < 12 ? 240 : 360, r.height[i]);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_h264),
		cmocka_unit_test(test_real_h264_resize),
		cmocka_unit_test(test_real_vp8),
		cmocka_unit_test(test_real_vp8_resize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
