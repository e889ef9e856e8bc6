/*
 * vidtrack.c: one video stream, from its frames (frames.c) to packets for
 * the muxers. Never transcoded: the depacketized access units are the
 * packets (H.264 in Annex B, VP8 as is).
 *
 * The track reads one frame ahead: the first frame (a keyframe, depack.h
 * waits for one) gives the codec parameters the muxers need before their
 * header (picture size; for H.264 the SPS and PPS as extradata, from which
 * mp4 and Matroska build their avcC), and each packet's duration is the
 * distance to the next frame, so a pause (no packets) is one long frame:
 * the picture holds, the timeline does not jump.
 *
 * A resolution change needs nothing here: the new SPS/PPS (H.264) or the
 * key frame header (VP8) travel in-band in the packets, decoders follow
 * them, and the containers do not care.
 *
 * Timestamps: 1/90000 from the origin; decode order = presentation order
 * (what WebRTC and SIP endpoints send: no B-frames), so dts = pts, kept
 * strictly increasing (two frames that land on one tick after a
 * re-anchored timeline are pushed apart by one tick).
 */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <libavcodec/avcodec.h>
#include <re.h>
#include "fin_priv.h"

struct fin_vtrack {
	struct fin_src *src;
	struct fin_stream *fs;       /* borrowed */
	double origin;
	AVCodecParameters *par;
	AVPacket *ahead;             /* the next packet, read ahead */
	bool have;                   /* ahead holds one */
	int64_t last_pts;            /* of the last packet handed out */
	int64_t last_dur;
	uint64_t frames;
};

static void destructor(void *arg)
{
	struct fin_vtrack *vt = arg;

	mem_deref(vt->src);
	avcodec_parameters_free(&vt->par);
	av_packet_free(&vt->ahead);
}

/* Annex B NAL units: the next start code at or after P; its length in
 * *SC (3 or 4), or NULL. */
static const uint8_t *next_sc(const uint8_t *p, const uint8_t *end,
			      size_t *sc)
{
	for (; p + 3 <= end; p++) {
		if (p[0] || p[1])
			continue;
		if (p[2] == 1) {
			*sc = 3;
			return p;
		}
		if (p + 4 <= end && !p[2] && p[3] == 1) {
			*sc = 4;
			return p;
		}
	}

	return NULL;
}

/* Extradata for H.264: the first SPS and PPS of the keyframe, Annex B. */
static int h264_extradata(AVCodecParameters *par, const uint8_t *d,
			  size_t len)
{
	const uint8_t *end = d + len, *p, *sps = NULL, *pps = NULL;
	size_t sps_len = 0, pps_len = 0, sc;
	uint8_t *x;

	p = next_sc(d, end, &sc);
	while (p) {
		const uint8_t *nal = p + sc, *q;
		size_t n, sc2;

		q = next_sc(nal, end, &sc2);
		n = (size_t)((q ? q : end) - nal);
		/* trailing zero bytes belong to the next start code */
		while (n && !nal[n - 1])
			--n;
		if (n && (nal[0] & 0x1f) == 7 && !sps) {
			sps = nal;
			sps_len = n;
		}
		else if (n && (nal[0] & 0x1f) == 8 && !pps) {
			pps = nal;
			pps_len = n;
		}
		p = q;
		sc = sc2;
	}
	if (!sps || !pps)
		return 0;    /* the muxers will take it from the packets */

	x = av_mallocz(8 + sps_len + pps_len + AV_INPUT_BUFFER_PADDING_SIZE);
	if (!x)
		return ENOMEM;
	memcpy(x, "\0\0\0\1", 4);
	memcpy(x + 4, sps, sps_len);
	memcpy(x + 4 + sps_len, "\0\0\0\1", 4);
	memcpy(x + 8 + sps_len, pps, pps_len);
	par->extradata = x;
	par->extradata_size = (int)(8 + sps_len + pps_len);
	return 0;
}

/* Read the next frame into vt->ahead; ENOENT at the end. */
static int read_ahead(struct fin_vtrack *vt)
{
	struct fin_frame f;
	int64_t pts;
	int err;

	vt->have = false;
	do {
		err = fin_src_next(vt->src, &f);
		if (err)
			return err;
		/* the SRC switched to another video codec: a track is one
		 * codec, the frames of the other are left out */
		if (f.codec != vt->fs->codec)
			++vt->fs->decode_errors;
	} while (f.codec != vt->fs->codec);

	av_packet_unref(vt->ahead);
	err = fin_averr(av_new_packet(vt->ahead, (int)f.len));
	if (err)
		return err;
	memcpy(vt->ahead->data, f.data, f.len);

	pts = llround((f.pts - vt->origin) * FIN_VIDEO_TB);
	vt->ahead->pts = vt->ahead->dts = pts;
	if (f.keyframe)
		vt->ahead->flags |= AV_PKT_FLAG_KEY;

	if (!vt->par->width && f.width > 0) {
		vt->par->width = f.width;
		vt->par->height = f.height;
	}
	if (f.codec == DP_H264 && !vt->par->extradata && f.keyframe) {
		err = h264_extradata(vt->par, f.data, f.len);
		if (err)
			return err;
	}

	vt->have = true;
	return 0;
}

int fin_vtrack_alloc(struct fin_vtrack **vtp, struct fin_stream *fs,
		     double origin)
{
	struct fin_vtrack *vt;
	int err;

	if (fs->codec != DP_H264 && fs->codec != DP_VP8)
		return EINVAL;

	vt = mem_zalloc(sizeof(*vt), destructor);
	if (!vt)
		return ENOMEM;

	vt->fs = fs;
	vt->origin = origin;
	vt->last_pts = INT64_MIN;
	vt->last_dur = FIN_VIDEO_TB / 25;

	err = fin_src_alloc(&vt->src, fs);
	if (err)
		goto out;

	vt->par = avcodec_parameters_alloc();
	vt->ahead = av_packet_alloc();
	if (!vt->par || !vt->ahead) {
		err = ENOMEM;
		goto out;
	}
	vt->par->codec_type = AVMEDIA_TYPE_VIDEO;
	vt->par->codec_id = fs->codec == DP_H264 ? AV_CODEC_ID_H264 :
		AV_CODEC_ID_VP8;
	vt->par->format = AV_PIX_FMT_YUV420P;

	/* the first frame: no frame at all (no keyframe ever came) means
	 * the stream has nothing to show: ENODATA */
	err = read_ahead(vt);
	if (err == ENOENT)
		err = ENODATA;

 out:
	if (err)
		mem_deref(vt);
	else
		*vtp = vt;

	return err;
}

const struct AVCodecParameters *fin_vtrack_par(const struct fin_vtrack *vt)
{
	return vt->par;
}

uint64_t fin_vtrack_frames(const struct fin_vtrack *vt)
{
	return vt->frames;
}

int fin_vtrack_next(struct fin_vtrack *vt, struct AVPacket *pkt)
{
	int64_t pts;
	int err;

	if (!vt->have)
		return ENOENT;

	av_packet_move_ref(pkt, vt->ahead);
	pts = pkt->pts;
	if (pts <= vt->last_pts)
		pts = vt->last_pts + 1;
	pkt->pts = pkt->dts = pts;

	err = read_ahead(vt);
	if (err && err != ENOENT) {
		av_packet_unref(pkt);
		return err;
	}

	if (vt->have && vt->ahead->pts > pts)
		vt->last_dur = vt->ahead->pts - pts;
	pkt->duration = vt->last_dur;

	vt->last_pts = pts;
	++vt->frames;
	return 0;
}
