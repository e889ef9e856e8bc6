/*
 * fin_out.c: the files. One muxer run per file (libavformat): video frames
 * come straight from the depacketizer (never decoded, never re-encoded),
 * audio is the stream's Opus packets (fin_audio.c); both are written in
 * timeline order, so the muxer never buffers more than a few packets.
 * stereo.wav is written by hand: 44 bytes of header and interleaved PCM.
 *
 * H.264 goes into MP4 as Annex B access units: libavformat's MP4 muxer
 * builds the avcC box from the first keyframe's SPS/PPS and converts every
 * frame to length-prefixed NAL units, keeping in-band SPS/PPS, which is
 * how a resolution change survives. VP8 goes into WebM/Matroska as is.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libavformat/avformat.h>
#include <libavutil/sha.h>
#include "depack.h"
#include "fin.h"

/* A video stream's frames, one at a time, with their timeline times. */
struct vsrc {
	struct fin_stream *s;
	struct depack *dp;
	size_t next;                 /* next packet */
	struct dp_frame fr;
	double t;                    /* of fr */
	bool have;
	bool done;
	/* timestamp -> time of the last two frames started */
	uint32_t ts[2];
	double tt[2];
	int64_t last_ms;
	uint8_t x[2048];             /* H.264 SPS + PPS, Annex B */
	size_t xlen;
};

static double ts_time(struct vsrc *v, uint32_t ts)
{
	return v->ts[0] == ts ? v->tt[0] : v->tt[1];
}

static void note_ts(struct vsrc *v, uint32_t ts, double t)
{
	if (v->ts[0] == ts)
		return;
	v->ts[1] = v->ts[0];
	v->tt[1] = v->tt[0];
	v->ts[0] = ts;
	v->tt[0] = t;
}

/* Advance V to its next whole frame; false at the end. */
static bool vsrc_next(struct vsrc *v, struct fin_stats *st)
{
	v->have = false;
	while (!v->done) {
		int r;

		if (v->next < v->s->npkts) {
			const struct fin_pkt *p = &v->s->pkts[v->next++];

			if (fin_codec(v->s, p->pt) == NULL)
				continue;
			note_ts(v, p->ts, p->t);
			r = depack_push(v->dp, p->payload, p->len, p->ts,
					p->marker, p->lost_before, &v->fr);
		}
		else {
			v->done = true;
			r = depack_flush(v->dp, &v->fr);
		}
		if (r == EBADMSG)
			++st->bad;
		if (r == 0) {
			v->t = ts_time(v, v->fr.rtp_ts);
			v->have = true;
			return true;
		}
	}
	return false;
}

/* The SPS and PPS NAL units of an Annex B access unit, as Annex B
 * extradata (muxers turn it into avcC). */
static void keep_params(struct vsrc *v, const uint8_t *p, size_t len)
{
	size_t i = 0, start = SIZE_MAX;

	v->xlen = 0;
	for (;;) {
		bool sc = i + 3 <= len && !p[i] && !p[i + 1] && p[i + 2] == 1;

		if (sc || i >= len) {
			if (start != SIZE_MAX) {
				size_t end = i >= len ? len : i;
				uint8_t type = p[start] & 0x1f;

				while (end > start && !p[end - 1])
					--end;
				if ((type == 7 || type == 8) &&
				    v->xlen + 4 + end - start <= sizeof(v->x)) {
					memcpy(v->x + v->xlen, "\0\0\0\1", 4);
					memcpy(v->x + v->xlen + 4, p + start,
					       end - start);
					v->xlen += 4 + end - start;
				}
			}
			if (i >= len)
				break;
			i += 3;
			start = i;
			continue;
		}
		++i;
	}
}

static int vsrc_open(struct vsrc *v, struct fin_stream *s, int *w, int *h)
{
	const struct sf_codec *cd = s->sf->ncodecs ? &s->sf->codecs[0] : NULL;
	struct fin_stats dummy;
	int err;

	memset(v, 0, sizeof(*v));
	v->s = s;
	v->last_ms = -1;
	if (!cd)
		return EINVAL;
	/* a first pass to the first keyframe tells the picture size */
	err = depack_alloc(&v->dp, dp_codec_from_name(cd->name), cd->fmtp);
	if (err)
		return err;
	memset(&dummy, 0, sizeof(dummy));
	*w = *h = 0;
	while (vsrc_next(v, &dummy))
		if (v->fr.keyframe) {
			*w = v->fr.width;
			*h = v->fr.height;
			if (dp_codec_from_name(cd->name) == DP_H264)
				keep_params(v, v->fr.data, v->fr.len);
			break;
		}
	depack_free(v->dp);
	v->next = 0;
	v->done = false;
	v->have = false;
	return depack_alloc(&v->dp, dp_codec_from_name(cd->name), cd->fmtp);
}

struct mux_in {
	AVStream *st;
	struct fin_stream *audio;    /* or */
	struct vsrc v;
	bool video;
	size_t anext;
	int rate;
};

static int add_stream(AVFormatContext *oc, struct mux_in *in,
		      struct fin_capture *c)
{
	AVCodecParameters *par;

	in->st = avformat_new_stream(oc, NULL);
	if (!in->st)
		return ENOMEM;
	par = in->st->codecpar;
	if (in->video) {
		const struct sf_codec *cd = &in->v.s->sf->codecs[0];
		int w = 0, h = 0, err = vsrc_open(&in->v, in->v.s, &w, &h);

		if (err)
			return err;
		par->codec_type = AVMEDIA_TYPE_VIDEO;
		par->codec_id = dp_codec_from_name(cd->name) == DP_H264 ?
			AV_CODEC_ID_H264 : AV_CODEC_ID_VP8;
		par->width = w ? w : 320;
		par->height = h ? h : 240;
		if (in->v.xlen) {
			par->extradata = av_mallocz(in->v.xlen +
						    AV_INPUT_BUFFER_PADDING_SIZE);
			if (!par->extradata)
				return ENOMEM;
			memcpy(par->extradata, in->v.x, in->v.xlen);
			par->extradata_size = (int)in->v.xlen;
		}
		in->st->time_base = (AVRational){1, 1000};
		(void)vsrc_next(&in->v, c->stats);
	}
	else {
		struct fin_stream *s = in->audio;

		par->codec_type = AVMEDIA_TYPE_AUDIO;
		par->codec_id = AV_CODEC_ID_OPUS;
		par->sample_rate = 48000;
		par->frame_size = 960;          /* 20 ms */
		av_channel_layout_default(&par->ch_layout, 1);
		par->initial_padding = s->opus_delay;
		if (s->opus_extradata_len) {
			par->extradata = av_mallocz((size_t)s->opus_extradata_len +
						    AV_INPUT_BUFFER_PADDING_SIZE);
			if (!par->extradata)
				return ENOMEM;
			memcpy(par->extradata, s->opus_extradata,
			       (size_t)s->opus_extradata_len);
			par->extradata_size = s->opus_extradata_len;
		}
		in->rate = c->rate;
		in->st->time_base = (AVRational){1, 48000};
	}
	return 0;
}

/* The next packet time of IN in seconds, or a big number at its end. */
static double next_time(const struct mux_in *in)
{
	if (in->video)
		return in->v.have ? in->v.t : 1e18;
	if (in->anext < in->audio->napkts)
		return (double)in->audio->apkts[in->anext].pts / in->rate;
	return 1e18;
}

static int write_next(AVFormatContext *oc, struct mux_in *in,
		      struct fin_capture *c, AVPacket *pkt)
{
	int r;

	av_packet_unref(pkt);
	if (in->video) {
		int64_t ms = (int64_t)(in->v.t * 1000 + 0.5);

		if (ms <= in->v.last_ms)
			ms = in->v.last_ms + 1;     /* strictly increasing */
		in->v.last_ms = ms;
		pkt->data = (uint8_t *)in->v.fr.data;
		pkt->size = (int)in->v.fr.len;
		pkt->pts = pkt->dts = ms;
		pkt->flags = in->v.fr.keyframe ? AV_PKT_FLAG_KEY : 0;
		av_packet_rescale_ts(pkt, (AVRational){1, 1000},
				     in->st->time_base);
		pkt->stream_index = in->st->index;
		r = av_write_frame(oc, pkt);
		pkt->data = NULL;
		pkt->size = 0;
		++c->stats->frames_video;
		(void)vsrc_next(&in->v, c->stats);
	}
	else {
		struct fin_apkt *a = &in->audio->apkts[in->anext++];

		pkt->data = a->data;
		pkt->size = a->size;
		pkt->pts = pkt->dts = a->pts;
		pkt->duration = a->duration;
		pkt->flags = AV_PKT_FLAG_KEY;
		av_packet_rescale_ts(pkt, (AVRational){1, in->rate},
				     in->st->time_base);
		pkt->stream_index = in->st->index;
		r = av_write_frame(oc, pkt);
		pkt->data = NULL;
		pkt->size = 0;
	}
	return r < 0 ? EIO : 0;
}

int fin_out_av(struct fin_capture *c, const char *path, const char *format,
	       const struct fin_track *tracks, size_t ntracks,
	       char *reason, size_t rsize)
{
	struct mux_in in[SF_STREAMS_MAX];
	AVFormatContext *oc = NULL;
	AVPacket *pkt = av_packet_alloc();
	size_t n = 0, i;
	int err = 0, r;

	memset(in, 0, sizeof(in));
	if (!pkt)
		return ENOMEM;
	if (avformat_alloc_output_context2(&oc, NULL, format, path) < 0) {
		err = EINVAL;
		goto out;
	}
	for (i = 0; i < ntracks && n + 2 <= SF_STREAMS_MAX; i++) {
		if (tracks[i].video) {
			in[n].video = true;
			in[n].v.s = tracks[i].video;
			err = add_stream(oc, &in[n++], c);
			if (err)
				goto out;
		}
		if (tracks[i].audio) {
			in[n].audio = tracks[i].audio;
			err = add_stream(oc, &in[n++], c);
			if (err)
				goto out;
		}
	}
	if (avio_open(&oc->pb, path, AVIO_FLAG_WRITE) < 0) {
		err = EIO;
		(void)snprintf(reason, rsize, "cannot write %s", path);
		goto out;
	}
	r = avformat_write_header(oc, NULL);
	if (r < 0) {
		char e[64];

		av_strerror(r, e, sizeof(e));
		(void)snprintf(reason, rsize, "%s muxer: %s", format, e);
		err = EINVAL;
		goto out;
	}
	for (;;) {
		size_t best = n;
		double bt = 1e17;

		for (i = 0; i < n; i++) {
			double t = next_time(&in[i]);

			if (t < bt) {
				bt = t;
				best = i;
			}
		}
		if (best == n)
			break;
		err = write_next(oc, &in[best], c, pkt);
		if (err) {
			(void)snprintf(reason, rsize, "writing %s failed", path);
			goto out;
		}
	}
	if (av_write_trailer(oc) < 0) {
		err = EIO;
		(void)snprintf(reason, rsize, "finishing %s failed", path);
	}
 out:
	for (i = 0; i < n; i++)
		if (in[i].video && in[i].v.dp)
			depack_free(in[i].v.dp);
	if (oc) {
		if (oc->pb)
			avio_closep(&oc->pb);
		avformat_free_context(oc);
	}
	av_packet_free(&pkt);
	return err;
}

static void le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

int fin_out_wav(struct fin_capture *c, const char *path,
		struct fin_stream *left, struct fin_stream *right)
{
	size_t n = (size_t)(c->length * c->rate), i;
	uint8_t hdr[44];
	int16_t buf[2 * 4096];
	FILE *f = fopen(path, "wb");
	uint32_t bytes = (uint32_t)(n * 4);
	int err = 0;

	if (!f)
		return errno;
	memcpy(hdr, "RIFF", 4);
	le32(hdr + 4, 36 + bytes);
	memcpy(hdr + 8, "WAVEfmt ", 8);
	le32(hdr + 16, 16);
	hdr[20] = 1; hdr[21] = 0;            /* PCM */
	hdr[22] = 2; hdr[23] = 0;            /* channels */
	le32(hdr + 24, (uint32_t)c->rate);
	le32(hdr + 28, (uint32_t)c->rate * 4);
	hdr[32] = 4; hdr[33] = 0;            /* block align */
	hdr[34] = 16; hdr[35] = 0;           /* bits */
	memcpy(hdr + 36, "data", 4);
	le32(hdr + 40, bytes);
	if (fwrite(hdr, 1, sizeof(hdr), f) != sizeof(hdr))
		err = EIO;
	for (i = 0; i < n && !err; ) {
		size_t k, m = MIN(n - i, (size_t)4096);

		for (k = 0; k < m; k++) {
			size_t j = i + k;

			buf[2 * k] = left && j < left->nsamples ?
				left->pcm[j] : 0;
			buf[2 * k + 1] = right && j < right->nsamples ?
				right->pcm[j] : 0;
		}
		if (fwrite(buf, 4, m, f) != m)
			err = EIO;
		i += m;
	}
	if (fclose(f) && !err)
		err = EIO;
	return err;
}

int fin_sha256_file(const char *path, char hex[65], uint64_t *size)
{
	struct AVSHA *sha = av_sha_alloc();
	uint8_t buf[65536], dig[32];
	FILE *f = fopen(path, "rb");
	size_t n;
	int i;

	*size = 0;
	if (!sha || !f) {
		av_free(sha);
		if (f)
			fclose(f);
		return f ? ENOMEM : errno;
	}
	av_sha_init(sha, 256);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		av_sha_update(sha, buf, n);
		*size += n;
	}
	fclose(f);
	av_sha_final(sha, dig);
	av_free(sha);
	for (i = 0; i < 32; i++)
		(void)snprintf(hex + 2 * i, 3, "%02x", dig[i]);
	return 0;
}
