/*
 * fin_audio.c: a stream's audio, decoded and laid on the session timeline
 * as mono 16-bit PCM at one rate (16 kHz, or 48 kHz when any stream is
 * Opus), then encoded once to Opus for every file that carries it.
 *
 * Each RTP payload is decoded on its own and written at the sample its
 * presentation time names (fin_capture.c), so a pause, lost packets or a
 * late start are silence exactly where the wall clock says, and nothing
 * drifts: positions come from timestamps, not from counting samples.
 * telephone-event payloads carry no sound and are skipped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include "depack.h"
#include "fin.h"

enum { OPUS_BITRATE = 32000, DEC_MAX = SF_CODECS_MAX };

struct dec {
	int pt;
	AVCodecContext *ctx;
	SwrContext *swr;
	int in_rate;
};

static enum AVCodecID codec_id(enum dp_codec dc)
{
	switch (dc) {
	case DP_PCMU: return AV_CODEC_ID_PCM_MULAW;
	case DP_PCMA: return AV_CODEC_ID_PCM_ALAW;
	case DP_G722: return AV_CODEC_ID_ADPCM_G722;
	case DP_OPUS: return AV_CODEC_ID_OPUS;
	default:      return AV_CODEC_ID_NONE;
	}
}

static int dec_open(struct dec *d, const struct sf_codec *cd, int out_rate)
{
	enum dp_codec dc = dp_codec_from_name(cd->name);
	const AVCodec *codec = avcodec_find_decoder(codec_id(dc));
	AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
	int ch = dc == DP_OPUS ? 2 : 1;

	if (!codec)
		return ENOTSUP;
	d->pt = cd->pt;
	d->ctx = avcodec_alloc_context3(codec);
	if (!d->ctx)
		return ENOMEM;
	d->in_rate = dc == DP_G722 ? 16000 : dc == DP_OPUS ? 48000 :
		(int)cd->clock;
	d->ctx->sample_rate = d->in_rate;
	av_channel_layout_default(&d->ctx->ch_layout, ch);
	if (avcodec_open2(d->ctx, codec, NULL) < 0)
		return EINVAL;
	if (swr_alloc_set_opts2(&d->swr, &mono, AV_SAMPLE_FMT_S16, out_rate,
				&d->ctx->ch_layout, d->ctx->sample_fmt,
				d->ctx->sample_rate, 0, NULL) < 0 ||
	    swr_init(d->swr) < 0)
		return EINVAL;
	return 0;
}

static void dec_close(struct dec *d)
{
	avcodec_free_context(&d->ctx);
	swr_free(&d->swr);
}

static struct dec *dec_get(struct dec *decs, size_t *n,
			   const struct fin_stream *s, uint8_t pt, int rate)
{
	const struct sf_codec *cd = fin_codec(s, pt);
	size_t i;

	for (i = 0; i < *n; i++)
		if (decs[i].pt == pt)
			return decs[i].ctx ? &decs[i] : NULL;
	if (!cd || *n >= DEC_MAX)
		return NULL;
	memset(&decs[*n], 0, sizeof(decs[*n]));
	if (dec_open(&decs[*n], cd, rate)) {
		dec_close(&decs[*n]);
		decs[*n].pt = pt;     /* remembered as unusable */
		++*n;
		return NULL;
	}
	return &decs[(*n)++];
}

/* Decode P and write it at the sample T names. */
static void put(struct fin_capture *c, struct fin_stream *s, struct dec *d,
		const struct fin_pkt *p, AVPacket *pkt, AVFrame *fr)
{
	int64_t pos = (int64_t)(p->t * c->rate + 0.5);
	int16_t tmp[48000 / 5];     /* 200 ms */

	pkt->data = (uint8_t *)p->payload;
	pkt->size = (int)p->len;
	if (avcodec_send_packet(d->ctx, pkt) < 0) {
		++c->stats->bad;
		return;
	}
	while (avcodec_receive_frame(d->ctx, fr) == 0) {
		uint8_t *out = (uint8_t *)tmp;
		int n = swr_convert(d->swr, &out, (int)(sizeof(tmp) / 2),
				    (const uint8_t **)fr->extended_data,
				    fr->nb_samples);
		int i;

		for (i = 0; i < n; i++, pos++)
			if (pos >= 0 && (size_t)pos < s->nsamples)
				s->pcm[pos] = tmp[i];
		av_frame_unref(fr);
	}
}

int fin_audio_timeline(struct fin_capture *c, struct fin_stream *s)
{
	struct dec decs[DEC_MAX];
	size_t ndec = 0, i;
	AVPacket *pkt = av_packet_alloc();
	AVFrame *fr = av_frame_alloc();
	int err = 0;

	s->nsamples = (size_t)(c->length * c->rate) + 1;
	s->pcm = calloc(s->nsamples, sizeof(int16_t));
	if (!s->pcm || !pkt || !fr) {
		err = ENOMEM;
		goto out;
	}
	for (i = 0; i < s->npkts; i++) {
		const struct fin_pkt *p = &s->pkts[i];
		struct dec *d;

		if (!p->len)
			continue;
		d = dec_get(decs, &ndec, s, p->pt, c->rate);
		if (!d) {
			++c->stats->bad;      /* telephone-event, unknown pt */
			continue;
		}
		put(c, s, d, p, pkt, fr);
	}
 out:
	for (i = 0; i < ndec; i++)
		dec_close(&decs[i]);
	av_packet_free(&pkt);
	av_frame_free(&fr);
	return err;
}

static int keep(struct fin_stream *s, const AVPacket *pkt, size_t *cap)
{
	struct fin_apkt *a;

	if (s->napkts == *cap) {
		size_t nc = *cap ? *cap * 2 : 1024;
		struct fin_apkt *n = realloc(s->apkts, nc * sizeof(*n));

		if (!n)
			return ENOMEM;
		s->apkts = n;
		*cap = nc;
	}
	a = &s->apkts[s->napkts];
	a->data = malloc((size_t)pkt->size);
	if (!a->data)
		return ENOMEM;
	memcpy(a->data, pkt->data, (size_t)pkt->size);
	a->size = pkt->size;
	a->pts = pkt->pts;
	a->duration = (int)pkt->duration;
	++s->napkts;
	return 0;
}

int fin_audio_encode(struct fin_capture *c, struct fin_stream *s)
{
	const AVCodec *codec = avcodec_find_encoder_by_name("libopus");
	AVCodecContext *ctx = NULL;
	AVPacket *pkt = av_packet_alloc();
	AVFrame *fr = av_frame_alloc();
	size_t pos = 0, cap = 0;
	int frame, err = 0, r;

	if (!codec || !pkt || !fr) {
		err = codec ? ENOMEM : ENOTSUP;
		goto out;
	}
	ctx = avcodec_alloc_context3(codec);
	if (!ctx) {
		err = ENOMEM;
		goto out;
	}
	ctx->sample_rate = c->rate;
	ctx->sample_fmt = AV_SAMPLE_FMT_S16;
	ctx->bit_rate = OPUS_BITRATE;
	ctx->time_base = (AVRational){1, c->rate};
	av_channel_layout_default(&ctx->ch_layout, 1);
	(void)av_opt_set(ctx->priv_data, "application", "voip", 0);
	if (avcodec_open2(ctx, codec, NULL) < 0) {
		err = EINVAL;
		goto out;
	}
	frame = ctx->frame_size ? ctx->frame_size : c->rate / 50;
	s->opus_delay = ctx->initial_padding;
	if (ctx->extradata_size) {
		s->opus_extradata = malloc((size_t)ctx->extradata_size +
					   AV_INPUT_BUFFER_PADDING_SIZE);
		if (!s->opus_extradata) {
			err = ENOMEM;
			goto out;
		}
		memset(s->opus_extradata, 0, (size_t)ctx->extradata_size +
		       AV_INPUT_BUFFER_PADDING_SIZE);
		memcpy(s->opus_extradata, ctx->extradata,
		       (size_t)ctx->extradata_size);
		s->opus_extradata_len = ctx->extradata_size;
	}
	fr->format = AV_SAMPLE_FMT_S16;
	fr->sample_rate = c->rate;
	fr->nb_samples = frame;
	av_channel_layout_default(&fr->ch_layout, 1);
	if (av_frame_get_buffer(fr, 0) < 0) {
		err = ENOMEM;
		goto out;
	}
	for (;;) {
		bool last = pos >= s->nsamples;

		if (!last) {
			size_t n = MIN((size_t)frame, s->nsamples - pos);

			if (av_frame_make_writable(fr) < 0) {
				err = ENOMEM;
				break;
			}
			memset(fr->data[0], 0, (size_t)frame * 2);
			memcpy(fr->data[0], s->pcm + pos, n * 2);
			fr->pts = (int64_t)pos;
			pos += (size_t)frame;
			r = avcodec_send_frame(ctx, fr);
		}
		else {
			r = avcodec_send_frame(ctx, NULL);
		}
		if (r < 0 && r != AVERROR_EOF) {
			err = EIO;
			break;
		}
		while ((r = avcodec_receive_packet(ctx, pkt)) == 0) {
			err = keep(s, pkt, &cap);
			av_packet_unref(pkt);
			if (err)
				goto out;
		}
		if (last)
			break;
	}
 out:
	avcodec_free_context(&ctx);
	av_packet_free(&pkt);
	av_frame_free(&fr);
	return err;
}
