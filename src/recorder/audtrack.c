/*
 * audtrack.c: one audio stream, from its frames (frames.c) to Opus packets
 * for the muxers and 16-bit samples for stereo.wav.
 *
 *   frame (PCMU/PCMA/G722/Opus, pts) -> decoder (libavcodec, chosen per
 *   frame: the SRC may switch codecs) -> placed on the timeline ->
 *   resampler (libswresample) -> 48 kHz mono float -> FIFO -> libopus,
 *   20-ms packets, pts in 1/48000 from the origin
 *                                  \-> resampler -> 16 kHz s16 -> WAV
 *
 * Placing: the track is one continuous run of samples from its start (the
 * pts of its first packet) on. Before a frame goes in, its pts is compared
 * with the time the next sample would have:
 *   later by more than FIN_AUD_TOL:   silence fills the hole (loss, a
 *                                     pause, a sender that stopped);
 *   earlier by more than FIN_AUD_TOL: the overlap is cut from the frame
 *                                     (a re-anchored timeline, a second
 *                                     SSRC overlapping the first);
 *   otherwise it goes on seamlessly (jitter in the offsets must not
 *   click). So the audio never drifts more than FIN_AUD_TOL from the wall
 *   clock, and a lost 20-ms packet is 20 ms of silence, not a jump.
 * Telephone events never get here (frames.c skips them).
 *
 * Work is done in small steps (one frame, or 100 ms of silence, at a
 * time), each step only when the muxers have taken what the last one
 * made, so an hour-long hole costs no memory.
 */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <libavcodec/avcodec.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <re.h>
#include "fin_priv.h"

static const double FIN_AUD_TOL = 0.010;   /* s: jitter that is not a hole */

enum {
	OPUS_FRAME = 960,        /* 20 ms at 48 kHz */
	OPUS_BITRATE = 32000,
	QUEUE = 32,              /* encoded packets waiting for the muxers */
};

struct fin_atrack {
	struct fin_src *src;
	struct fin_stream *fs;           /* borrowed */
	double origin;                   /* session s of the timeline's 0 */
	double start;                    /* s from the origin */
	int64_t start48;                 /* start in 48-kHz samples */

	AVCodecContext *dec;
	enum dp_codec dec_codec;
	AVFrame *frame;                  /* decoded */
	AVPacket *in;                    /* to the decoder */
	double dec_pts;                  /* pts of the next decoded sample */

	/* a decoded frame waiting to be placed: first GAP samples of
	 * silence, then the frame without its first SKIP samples */
	bool have;
	int64_t gap;
	int skip;

	SwrContext *swr;                 /* decoded -> 48 kHz float */
	int swr_rate;
	enum AVSampleFormat swr_fmt;
	int swr_channels;
	int64_t placed48;                /* 48-kHz samples out of swr */

	float *buf;                      /* swr output */
	int bufcap;
	uint8_t *sil;                    /* silence in the decoder's format */
	int silcap;

	AVAudioFifo *fifo;               /* 48 kHz, waiting for the encoder */
	AVCodecContext *enc;
	AVCodecParameters *par;          /* the encoder's, for the muxers */
	AVFrame *eframe;
	int64_t encoded;                 /* samples sent to the encoder */
	AVPacket *queue[QUEUE];
	unsigned qhead, qlen;
	enum { AT_RUN, AT_FLUSH, AT_DONE } state;
	bool enc_flushed;

	struct fin_wav *wav;             /* borrowed, may be NULL */
	int chan;
	SwrContext *wswr;                /* 48 kHz float -> WAV rate s16 */
	int16_t *wbuf;
	int wcap;
};

static void destructor(void *arg)
{
	struct fin_atrack *at = arg;
	unsigned i;

	mem_deref(at->src);
	avcodec_free_context(&at->dec);
	av_frame_free(&at->frame);
	av_packet_free(&at->in);
	swr_free(&at->swr);
	av_freep(&at->buf);
	av_freep(&at->sil);
	if (at->fifo)
		av_audio_fifo_free(at->fifo);
	avcodec_free_context(&at->enc);
	avcodec_parameters_free(&at->par);
	av_frame_free(&at->eframe);
	for (i = 0; i < QUEUE; i++)
		av_packet_free(&at->queue[i]);
	swr_free(&at->wswr);
	av_freep(&at->wbuf);
}

static int enc_open(struct fin_atrack *at)
{
	const AVCodec *c = avcodec_find_encoder_by_name("libopus");
	AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
	int err;

	if (!c)
		return ENOSYS;

	at->enc = avcodec_alloc_context3(c);
	if (!at->enc)
		return ENOMEM;

	at->enc->sample_rate = FIN_OPUS_RATE;
	at->enc->sample_fmt = AV_SAMPLE_FMT_FLT;
	at->enc->bit_rate = OPUS_BITRATE;
	at->enc->time_base = (AVRational){1, FIN_OPUS_RATE};
	/* no more bandwidth than the source has: a narrowband source
	 * encoded as narrowband costs a third of the CPU (measured) */
	switch (at->fs->codec) {

	case DP_PCMU:
	case DP_PCMA: at->enc->cutoff = 4000; break;
	case DP_G722: at->enc->cutoff = 8000; break;
	default:      break;
	}
	err = fin_averr(av_channel_layout_copy(&at->enc->ch_layout, &mono));
	if (err)
		return err;
	(void)av_opt_set(at->enc->priv_data, "application", "voip", 0);

	err = fin_averr(avcodec_open2(at->enc, c, NULL));
	if (err)
		return err;

	at->par = avcodec_parameters_alloc();
	if (!at->par)
		return ENOMEM;
	err = fin_averr(avcodec_parameters_from_context(at->par, at->enc));
	if (err)
		return err;

	at->eframe = av_frame_alloc();
	if (!at->eframe)
		return ENOMEM;
	at->eframe->nb_samples = OPUS_FRAME;
	at->eframe->format = AV_SAMPLE_FMT_FLT;
	at->eframe->sample_rate = FIN_OPUS_RATE;
	err = fin_averr(av_channel_layout_copy(&at->eframe->ch_layout, &mono));
	if (!err)
		err = fin_averr(av_frame_get_buffer(at->eframe, 0));

	return err;
}

int fin_atrack_alloc(struct fin_atrack **atp, struct fin_stream *fs,
		     double origin)
{
	struct fin_atrack *at;
	unsigned i;
	int err;

	at = mem_zalloc(sizeof(*at), destructor);
	if (!at)
		return ENOMEM;

	at->fs = fs;
	at->origin = origin;
	at->start = fs->first_pts - origin;
	at->start48 = llround(at->start * FIN_OPUS_RATE);

	err = fin_src_alloc(&at->src, fs);
	if (err)
		goto out;

	at->frame = av_frame_alloc();
	at->in = av_packet_alloc();
	at->fifo = av_audio_fifo_alloc(AV_SAMPLE_FMT_FLT, 1, 4 * OPUS_FRAME);
	if (!at->frame || !at->in || !at->fifo) {
		err = ENOMEM;
		goto out;
	}
	for (i = 0; i < QUEUE; i++) {
		at->queue[i] = av_packet_alloc();
		if (!at->queue[i]) {
			err = ENOMEM;
			goto out;
		}
	}

	err = enc_open(at);

 out:
	if (err)
		mem_deref(at);
	else
		*atp = at;

	return err;
}

const struct AVCodecParameters *fin_atrack_par(const struct fin_atrack *at)
{
	return at->par;
}

void fin_atrack_wav(struct fin_atrack *at, struct fin_wav *wav, int chan)
{
	at->wav = wav;
	at->chan = chan;
	fin_wav_start(wav, chan, llround(at->start * FIN_WAV_RATE));
}

/* --- decoding --- */

static int dec_open(struct fin_atrack *at, enum dp_codec codec)
{
	AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
	enum AVCodecID id;
	const AVCodec *c;
	int rate, err;

	avcodec_free_context(&at->dec);
	at->dec_codec = DP_UNKNOWN;

	switch (codec) {

	case DP_PCMU: id = AV_CODEC_ID_PCM_MULAW;  rate = 8000;  break;
	case DP_PCMA: id = AV_CODEC_ID_PCM_ALAW;   rate = 8000;  break;
	case DP_G722: id = AV_CODEC_ID_ADPCM_G722; rate = 16000; break;
	case DP_OPUS: id = AV_CODEC_ID_OPUS;       rate = 48000; break;
	default:      return EINVAL;
	}

	c = avcodec_find_decoder(id);
	if (!c)
		return ENOSYS;

	at->dec = avcodec_alloc_context3(c);
	if (!at->dec)
		return ENOMEM;

	at->dec->sample_rate = rate;
	at->dec->thread_count = 1;
	/* Opus is decoded to mono even from a stereo stream (RFC 7587:
	 * a receiver may always do that) */
	err = fin_averr(av_channel_layout_copy(&at->dec->ch_layout, &mono));
	if (!err)
		err = fin_averr(avcodec_open2(at->dec, c, NULL));
	if (err) {
		avcodec_free_context(&at->dec);
		return err;
	}

	at->dec_codec = codec;
	return 0;
}

/* --- the 48-kHz stream: FIFO for the encoder, and the WAV --- */

static int wav_feed(struct fin_atrack *at, const float *s, int n)
{
	AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
	const uint8_t *in[1] = {(const uint8_t *)s};
	uint8_t *out[1];
	int cap, got, err;

	if (!at->wav)
		return 0;

	if (!at->wswr) {
		err = fin_averr(swr_alloc_set_opts2(&at->wswr, &mono,
			AV_SAMPLE_FMT_S16, FIN_WAV_RATE, &mono,
			AV_SAMPLE_FMT_FLT, FIN_OPUS_RATE, 0, NULL));
		if (!err)
			err = fin_averr(swr_init(at->wswr));
		if (err)
			return err;
	}

	cap = swr_get_out_samples(at->wswr, n);
	if (cap > at->wcap) {
		av_freep(&at->wbuf);
		at->wbuf = av_malloc_array((size_t)cap, sizeof(*at->wbuf));
		if (!at->wbuf) {
			at->wcap = 0;
			return ENOMEM;
		}
		at->wcap = cap;
	}
	out[0] = (uint8_t *)at->wbuf;
	got = swr_convert(at->wswr, out, at->wcap, s ? in : NULL, n);
	if (got < 0)
		return fin_averr(got);

	return fin_wav_put(at->wav, at->chan, at->wbuf, (size_t)got);
}

static int receive_packets(struct fin_atrack *at)
{
	int err;

	while (at->qlen < QUEUE) {
		AVPacket *p = at->queue[(at->qhead + at->qlen) % QUEUE];

		err = avcodec_receive_packet(at->enc, p);
		if (err == AVERROR(EAGAIN))
			return 0;
		if (err == AVERROR_EOF)
			return ENODATA;
		if (err < 0)
			return fin_averr(err);
		++at->qlen;
	}

	return 0;
}

/* Whole 20-ms frames from the FIFO to libopus (LAST: the rest too,
 * padded), while the packet queue has room. */
static int encode(struct fin_atrack *at, bool last)
{
	int err;

	while (at->qlen < QUEUE / 2) {
		int n = av_audio_fifo_size(at->fifo);
		AVFrame *f = at->eframe;

		if (n < OPUS_FRAME && !(last && n > 0))
			break;

		err = fin_averr(av_frame_make_writable(f));
		if (err)
			return err;
		if (n < OPUS_FRAME)
			memset(f->data[0], 0, OPUS_FRAME * sizeof(float));
		if (av_audio_fifo_read(at->fifo, (void **)f->data,
				       OPUS_FRAME) < 0)
			return EIO;
		f->pts = at->start48 + at->encoded;
		at->encoded += OPUS_FRAME;

		err = fin_averr(avcodec_send_frame(at->enc, f));
		if (err)
			return err;
		err = receive_packets(at);
		if (err)
			return err;
	}

	return 0;
}

/* Resample N input samples (IN NULL: flush the resampler) into the FIFO
 * and the WAV. */
static int resample(struct fin_atrack *at, const uint8_t **in, int n)
{
	uint8_t *out[1];
	int cap, got, err;

	cap = swr_get_out_samples(at->swr, in ? n : 0);
	if (cap <= 0)
		return 0;
	if (cap > at->bufcap) {
		av_freep(&at->buf);
		at->buf = av_malloc_array((size_t)cap, sizeof(float));
		if (!at->buf) {
			at->bufcap = 0;
			return ENOMEM;
		}
		at->bufcap = cap;
	}
	out[0] = (uint8_t *)at->buf;
	got = swr_convert(at->swr, out, at->bufcap, in, in ? n : 0);
	if (got < 0)
		return fin_averr(got);
	if (!got)
		return 0;

	at->placed48 += got;
	if (av_audio_fifo_write(at->fifo, (void **)out, got) < got)
		return ENOMEM;

	err = wav_feed(at, at->buf, got);
	if (err)
		return err;

	return encode(at, false);
}

/* The resampler for the decoder's current output; a new one (after
 * flushing the old) when it changes. */
static int swr_for(struct fin_atrack *at, const AVFrame *fr)
{
	AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO, in = {0};
	int err;

	if (at->swr && at->swr_rate == fr->sample_rate &&
	    at->swr_fmt == fr->format &&
	    at->swr_channels == fr->ch_layout.nb_channels)
		return 0;

	if (at->swr) {
		err = resample(at, NULL, 0);
		if (err)
			return err;
		swr_free(&at->swr);
	}

	/* swr_alloc_set_opts2() wants its layouts writable */
	err = fin_averr(av_channel_layout_copy(&in, &fr->ch_layout));
	if (err)
		return err;
	err = fin_averr(swr_alloc_set_opts2(&at->swr, &mono,
		AV_SAMPLE_FMT_FLT, FIN_OPUS_RATE, &in,
		(enum AVSampleFormat)fr->format, fr->sample_rate, 0, NULL));
	av_channel_layout_uninit(&in);
	if (!err)
		err = fin_averr(swr_init(at->swr));
	if (err)
		return err;

	at->swr_rate = fr->sample_rate;
	at->swr_fmt = (enum AVSampleFormat)fr->format;
	at->swr_channels = fr->ch_layout.nb_channels;
	return 0;
}

/* Up to 100 ms of the pending silence, in the format of FR. */
static int silence_step(struct fin_atrack *at, const AVFrame *fr)
{
	enum AVSampleFormat fmt = (enum AVSampleFormat)fr->format;
	int ch = fr->ch_layout.nb_channels;
	int planar = av_sample_fmt_is_planar(fmt);
	int chunk = fr->sample_rate / 10, size, i, k;
	const uint8_t *in[8];

	if (ch < 1 || ch > 8)
		return EINVAL;

	/* one silent buffer, big enough for every plane's use */
	size = av_samples_get_buffer_size(NULL, planar ? 1 : ch, chunk, fmt, 1);
	if (size < 0)
		return fin_averr(size);
	if (size > at->silcap) {
		uint8_t *p[1];

		av_freep(&at->sil);
		at->sil = av_malloc((size_t)size);
		if (!at->sil) {
			at->silcap = 0;
			return ENOMEM;
		}
		at->silcap = size;
		p[0] = at->sil;
		(void)av_samples_set_silence(p, 0, chunk, planar ? 1 : ch,
					     fmt);
	}
	for (i = 0; i < 8; i++)
		in[i] = at->sil;

	k = at->gap > chunk ? chunk : (int)at->gap;
	at->gap -= k;
	return resample(at, in, k);
}

/* A decoded frame is waiting: its silence first, then the frame. */
static int pending_step(struct fin_atrack *at)
{
	const AVFrame *fr = at->frame;
	enum AVSampleFormat fmt = (enum AVSampleFormat)fr->format;
	int ch = fr->ch_layout.nb_channels, i, err = 0;
	int bps = av_get_bytes_per_sample(fmt);
	const uint8_t *in[8];

	if (at->gap > 0)
		return silence_step(at, fr);

	at->have = false;
	if (at->skip >= fr->nb_samples)
		goto out;

	if (av_sample_fmt_is_planar(fmt)) {
		if (ch < 1 || ch > 8) {
			err = EINVAL;
			goto out;
		}
		for (i = 0; i < ch; i++)
			in[i] = fr->extended_data[i] + (size_t)at->skip * bps;
	}
	else {
		in[0] = fr->extended_data[0] + (size_t)at->skip * bps * ch;
	}
	err = resample(at, in, fr->nb_samples - at->skip);

 out:
	av_frame_unref(at->frame);
	return err;
}

/* A frame came out of the decoder: where does it go? */
static int place(struct fin_atrack *at)
{
	const AVFrame *fr = at->frame;
	double next, diff;
	int err;

	err = swr_for(at, fr);
	if (err)
		return err;

	next = at->start + (double)(at->placed48 +
		swr_get_delay(at->swr, FIN_OPUS_RATE)) / FIN_OPUS_RATE;
	diff = at->dec_pts - next;
	at->dec_pts += (double)fr->nb_samples / fr->sample_rate;

	at->gap = 0;
	at->skip = 0;
	if (diff > FIN_AUD_TOL)
		at->gap = llround(diff * fr->sample_rate);
	else if (diff < -FIN_AUD_TOL)
		at->skip = (int)fmin(llround(-diff * fr->sample_rate),
				     fr->nb_samples);
	at->have = true;
	return 0;
}

/* Next frame of the stream into the decoder. ENOENT at the end. */
static int decode_next(struct fin_atrack *at)
{
	struct fin_frame f;
	int err;

	err = fin_src_next(at->src, &f);
	if (err)
		return err;

	if (!at->dec || at->dec_codec != f.codec) {
		err = dec_open(at, f.codec);
		if (err == EINVAL || err == ENOSYS) {
			++at->fs->decode_errors;
			return 0;
		}
		if (err)
			return err;
	}

	at->in->data = (uint8_t *)f.data;
	at->in->size = (int)f.len;
	err = avcodec_send_packet(at->dec, at->in);
	at->in->data = NULL;
	at->in->size = 0;
	if (err < 0)
		++at->fs->decode_errors;
	else
		at->dec_pts = f.pts - at->origin;

	return 0;
}

/* The end: flush the resamplers, encode the rest, drain libopus. */
static int flush_step(struct fin_atrack *at)
{
	int err;

	if (av_audio_fifo_size(at->fifo) > 0)
		return encode(at, true);

	if (!at->enc_flushed) {
		at->enc_flushed = true;
		err = fin_averr(avcodec_send_frame(at->enc, NULL));
		if (err)
			return err;
	}

	err = receive_packets(at);
	if (err == ENODATA) {
		at->state = AT_DONE;
		return 0;
	}

	return err;
}

static int flush_begin(struct fin_atrack *at)
{
	int err;

	at->state = AT_FLUSH;

	if (at->swr) {
		err = resample(at, NULL, 0);
		if (err)
			return err;
	}

	if (at->wav) {
		if (at->wswr) {
			err = wav_feed(at, NULL, 0);
			if (err)
				return err;
		}
		fin_wav_end(at->wav, at->chan);
	}

	return 0;
}

int fin_atrack_next(struct fin_atrack *at, struct AVPacket *pkt)
{
	int err = 0;

	while (!at->qlen && !err) {

		if (at->state == AT_DONE)
			return ENOENT;

		if (at->state == AT_FLUSH) {
			err = flush_step(at);
			continue;
		}

		if (at->have) {
			err = pending_step(at);
			continue;
		}

		/* more output of the last packet? */
		if (at->dec) {
			err = avcodec_receive_frame(at->dec, at->frame);
			if (err >= 0) {
				if (at->frame->nb_samples > 0 &&
				    at->frame->sample_rate > 0)
					err = place(at);
				else
					av_frame_unref(at->frame);
				continue;
			}
			if (err != AVERROR(EAGAIN) && err != AVERROR_EOF)
				++at->fs->decode_errors;
			err = 0;
		}

		err = decode_next(at);
		if (err == ENOENT)
			err = flush_begin(at);
	}

	if (err)
		return err;

	av_packet_move_ref(pkt, at->queue[at->qhead]);
	at->qhead = (at->qhead + 1) % QUEUE;
	--at->qlen;
	return 0;
}
