/*
 * avout.c: one output file of the finalizer through libavformat, and the
 * one place where FFmpeg's error codes become errno values (fin_averr).
 *
 * A file is written as NAME.tmp in the session folder and renamed to NAME
 * only after the trailer is written and the data is fsynced, so a crash
 * (or a failed finalize) never leaves a NAME that looks finished but is
 * not. Freeing a fin_out that did not finish removes its NAME.tmp.
 *
 * Life of one file:
 *   fin_out_alloc()   muxer by short name ("mp4", "webm", "matroska")
 *   fin_out_add()     one stream per track, codec parameters copied
 *   fin_out_begin()   opens NAME.tmp, writes the header
 *   fin_out_write()   packets, timestamps in 1/tb_den (interleaved)
 *   fin_out_finish()  trailer, close, fsync, rename, size and sha256
 *
 * mp4 gets +faststart (the index in front, so a browser can start playing
 * before the download ends); that rewrites the file at the end, which is
 * fine because it is the temporary file.
 *
 * Timing: every file of a recording shows a party's audio and video at the
 * same distance (a player applies the container's offsets). Opus packets
 * come from the encoder with pts = first sample - pre-skip (its
 * initial_padding, 312 samples); mp4 keeps them so and skips the pre-skip
 * with an edit list, Matroska/WebM wants block timestamps shifted by the
 * pre-skip (CodecDelay, which readers subtract). Where libavformat does
 * not shift them itself (avcompat.h) fin_out_write does.
 *
 * Names: each stream carries a title ("Alice (sip:alice@example.com)
 * audio") as Matroska/WebM track name ("title") or mp4 hdlr name
 * ("handler_name": mp4 has no per-track title), and language "und" (the
 * recorder cannot know it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <libavformat/avformat.h>
#include <libavutil/sha.h>
#include <libavutil/mem.h>
#include <re.h>
#include "avcompat.h"
#include "fin_priv.h"

enum { FIN_PATH_MAX = 1024 };

struct fin_out {
	AVFormatContext *fc;
	char name[SF_ID_MAX];
	char path[FIN_PATH_MAX];
	char tmp[FIN_PATH_MAX];
	bool mp4;
	bool mkv;                       /* matroska or webm */
	bool done;
	int64_t shift[SF_STREAMS_MAX];  /* added to pts/dts, in 1/tb_den */
};

int fin_averr(int averr)
{
	if (averr >= 0)
		return 0;

	/* AVERROR(e) is -e on every system FFmpeg runs on */
	if (averr > -4096)
		return -averr;

	switch (averr) {

	case AVERROR_EOF:               return ENODATA;
	case AVERROR_INVALIDDATA:       return EBADMSG;
	case AVERROR_BUFFER_TOO_SMALL:  return ENOBUFS;
	case AVERROR_DECODER_NOT_FOUND:
	case AVERROR_ENCODER_NOT_FOUND:
	case AVERROR_MUXER_NOT_FOUND:
	case AVERROR_PROTOCOL_NOT_FOUND:
	case AVERROR_FILTER_NOT_FOUND:  return ENOSYS;
	case AVERROR_PATCHWELCOME:
	case AVERROR_EXPERIMENTAL:      return ENOTSUP;
	default:                        return EIO;
	}
}

static void destructor(void *arg)
{
	struct fin_out *out = arg;

	if (out->fc) {
		if (out->fc->pb)
			(void)avio_closep(&out->fc->pb);
		avformat_free_context(out->fc);
	}
	if (!out->done && out->tmp[0])
		(void)unlink(out->tmp);
}

int fin_out_alloc(struct fin_out **outp, const char *dir, const char *name,
		  const char *format)
{
	struct fin_out *out;
	int err = 0;

	out = mem_zalloc(sizeof(*out), destructor);
	if (!out)
		return ENOMEM;

	if ((size_t)snprintf(out->path, sizeof(out->path), "%s/%s", dir,
			     name) >= sizeof(out->path) ||
	    (size_t)snprintf(out->tmp, sizeof(out->tmp), "%s/%s.tmp", dir,
			     name) >= sizeof(out->tmp)) {
		out->tmp[0] = '\0';
		err = ENAMETOOLONG;
		goto out;
	}
	(void)snprintf(out->name, sizeof(out->name), "%s", name);
	out->mp4 = !strcmp(format, "mp4");
	out->mkv = !strcmp(format, "matroska") || !strcmp(format, "webm");

	err = fin_averr(avformat_alloc_output_context2(&out->fc, NULL, format,
						       out->tmp));
	if (!err && !out->fc)
		err = ENOSYS;

 out:
	if (err)
		mem_deref(out);
	else
		*outp = out;

	return err;
}

const char *fin_out_name(const struct fin_out *out)
{
	return out->name;
}

int fin_out_add(struct fin_out *out, const struct AVCodecParameters *par,
		int tb_den, const char *title, int *index)
{
	AVStream *st;
	int err;

	st = avformat_new_stream(out->fc, NULL);
	if (!st)
		return ENOMEM;
	if (st->index >= SF_STREAMS_MAX)
		return E2BIG;

	err = fin_averr(avcodec_parameters_copy(st->codecpar, par));
	if (err)
		return err;

	st->codecpar->codec_tag = 0;    /* let the muxer pick its own */
	st->time_base = (AVRational){1, tb_den};
	if (title && title[0]) {
		(void)av_dict_set(&st->metadata, out->mp4 ? "handler_name" :
				  "title", title, 0);
	}
	(void)av_dict_set(&st->metadata, "language", "und", 0);

	/* the pre-skip is 48-kHz samples whatever the track's rate */
	if (AVC_MKV_OPUS_DELAY_BUG && out->mkv &&
	    par->codec_id == AV_CODEC_ID_OPUS && par->initial_padding > 0)
		out->shift[st->index] = av_rescale(par->initial_padding,
						   tb_den, 48000);
	*index = st->index;
	return 0;
}

int fin_out_begin(struct fin_out *out)
{
	AVDictionary *opts = NULL;
	int err;

	err = fin_averr(avio_open(&out->fc->pb, out->tmp, AVIO_FLAG_WRITE));
	if (err)
		return err;

	if (out->mp4)
		(void)av_dict_set(&opts, "movflags", "+faststart", 0);

	err = fin_averr(avformat_write_header(out->fc, &opts));
	av_dict_free(&opts);
	return err;
}

int fin_out_write(struct fin_out *out, int index, struct AVPacket *pkt,
		  int tb_den)
{
	AVStream *st = out->fc->streams[index];

	pkt->stream_index = index;
	pkt->pos = -1;
	if (out->shift[index]) {
		if (pkt->pts != AV_NOPTS_VALUE)
			pkt->pts += out->shift[index];
		if (pkt->dts != AV_NOPTS_VALUE)
			pkt->dts += out->shift[index];
	}
	av_packet_rescale_ts(pkt, (AVRational){1, tb_den}, st->time_base);
	return fin_averr(av_interleaved_write_frame(out->fc, pkt));
}

int fin_fsync_path(const char *path)
{
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (fsync(fd) < 0 && errno != EINVAL)   /* EINVAL: dirs on some fs */
		err = errno;
	(void)close(fd);
	return err;
}

int fin_file_sha256(const char *path, uint64_t *size, char *hex)
{
	struct AVSHA *sha;
	uint8_t buf[1 << 16], dig[32];
	uint64_t total = 0;
	ssize_t n;
	int fd, err = 0, i;

	sha = av_sha_alloc();
	if (!sha)
		return ENOMEM;
	if (av_sha_init(sha, 256) < 0) {
		av_free(sha);
		return EINVAL;
	}

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		goto out;
	}
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			break;
		}
		if (n == 0)
			break;
		av_sha_update(sha, buf, (size_t)n);
		total += (uint64_t)n;
	}
	(void)close(fd);
	if (err)
		goto out;

	av_sha_final(sha, dig);
	for (i = 0; i < 32; i++)
		(void)snprintf(hex + 2 * i, 3, "%02x", dig[i]);
	*size = total;

 out:
	av_free(sha);
	return err;
}

int fin_out_finish(struct fin_out *out, uint64_t *size, char *sha256)
{
	int err;

	err = fin_averr(av_write_trailer(out->fc));
	if (err)
		return err;

	err = fin_averr(avio_closep(&out->fc->pb));
	if (err)
		return err;

	err = fin_fsync_path(out->tmp);
	if (err)
		return err;

	if (rename(out->tmp, out->path) < 0)
		return errno;
	out->done = true;

	return fin_file_sha256(out->path, size, sha256);
}
