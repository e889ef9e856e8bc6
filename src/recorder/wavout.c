/*
 * wavout.c: stereo.wav, two parties' audio side by side (left = the first
 * participant, right = the second), 16-bit PCM, on the session timeline:
 * sample 0 is the origin, silence wherever a side sent nothing, as long as
 * the timeline.
 *
 * The two sides arrive separately (each audio track hands over its samples
 * as it makes them) and at slightly different paces, so each channel
 * buffers what the other has not caught up with; frames are written as
 * soon as both sides are known up to them. A side is known:
 *   - before its start: silence (fin_wav_start tells where it starts);
 *   - after fin_wav_end: silence to the end;
 *   - in between: what was put.
 * A channel nobody feeds is ended from the start.
 *
 * Canonical 44-byte RIFF/WAVE header; the two sizes in it are written at
 * the end (the file is NAME.tmp until then, renamed when complete).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <re.h>
#include "fin_priv.h"

enum {
	WAV_HDR = 44,
	WAV_CHUNK = 4096,            /* frames per write */
	WAV_PATH_MAX = 1024,
};

struct wav_chan {
	int16_t *buf;                /* samples from pos0 on */
	size_t n, cap;
	int64_t pos0;                /* timeline sample of buf[0] */
	int64_t start;               /* silence before this sample */
	bool ended;                  /* silence after the buffered ones */
};

struct fin_wav {
	FILE *f;
	int rate;
	int64_t written;             /* frames in the file */
	struct wav_chan ch[2];
	char path[WAV_PATH_MAX];
	char tmp[WAV_PATH_MAX];
	bool done;
};

static void destructor(void *arg)
{
	struct fin_wav *w = arg;

	if (w->f)
		(void)fclose(w->f);
	if (!w->done && w->tmp[0])
		(void)unlink(w->tmp);
	mem_deref(w->ch[0].buf);
	mem_deref(w->ch[1].buf);
}

static void le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *p, uint32_t v)
{
	le16(p, (uint16_t)v);
	le16(p + 2, (uint16_t)(v >> 16));
}

static void header(uint8_t *h, int rate, uint32_t data)
{
	memcpy(h, "RIFF", 4);
	le32(h + 4, 36 + data);
	memcpy(h + 8, "WAVEfmt ", 8);
	le32(h + 16, 16);
	le16(h + 20, 1);                     /* PCM */
	le16(h + 22, 2);                     /* channels */
	le32(h + 24, (uint32_t)rate);
	le32(h + 28, (uint32_t)rate * 4);    /* bytes per second */
	le16(h + 32, 4);                     /* bytes per frame */
	le16(h + 34, 16);                    /* bits */
	memcpy(h + 36, "data", 4);
	le32(h + 40, data);
}

int fin_wav_alloc(struct fin_wav **wp, const char *dir, const char *name,
		  int rate)
{
	uint8_t h[WAV_HDR];
	struct fin_wav *w;
	int err = 0;

	w = mem_zalloc(sizeof(*w), destructor);
	if (!w)
		return ENOMEM;

	w->rate = rate;
	if ((size_t)snprintf(w->path, sizeof(w->path), "%s/%s", dir, name) >=
	    sizeof(w->path) ||
	    (size_t)snprintf(w->tmp, sizeof(w->tmp), "%s/%s.tmp", dir, name) >=
	    sizeof(w->tmp)) {
		w->tmp[0] = '\0';
		err = ENAMETOOLONG;
		goto out;
	}

	w->f = fopen(w->tmp, "we");
	if (!w->f) {
		err = errno;
		goto out;
	}

	header(h, rate, 0);
	if (fwrite(h, 1, sizeof(h), w->f) != sizeof(h))
		err = errno ? errno : EIO;

 out:
	if (err)
		mem_deref(w);
	else
		*wp = w;

	return err;
}

void fin_wav_start(struct fin_wav *w, int chan, int64_t pos)
{
	struct wav_chan *c = &w->ch[chan];

	c->start = c->pos0 = pos > 0 ? pos : 0;
}

/* Known up to (exclusive); INT64_MAX once ended. */
static int64_t known(const struct wav_chan *c)
{
	return c->ended ? INT64_MAX : c->pos0 + (int64_t)c->n;
}

static int16_t sample(const struct wav_chan *c, int64_t pos)
{
	if (pos < c->start || pos < c->pos0 || pos - c->pos0 >= (int64_t)c->n)
		return 0;

	return c->buf[pos - c->pos0];
}

/* Drop what is written from a channel's buffer. */
static void consume(struct wav_chan *c, int64_t upto)
{
	size_t k;

	if (upto <= c->pos0)
		return;

	k = upto - c->pos0 >= (int64_t)c->n ? c->n : (size_t)(upto - c->pos0);
	if (!k)
		return;
	if (c->n > k)
		memmove(c->buf, c->buf + k, (c->n - k) * sizeof(*c->buf));
	c->n -= k;
	c->pos0 += (int64_t)k;
}

static int write_upto(struct fin_wav *w, int64_t end)
{
	uint8_t out[WAV_CHUNK * 4];

	while (w->written < end) {
		size_t n = end - w->written > WAV_CHUNK ? WAV_CHUNK :
			(size_t)(end - w->written);
		size_t i;

		for (i = 0; i < n; i++) {
			int64_t pos = w->written + (int64_t)i;

			le16(out + 4 * i, (uint16_t)sample(&w->ch[0], pos));
			le16(out + 4 * i + 2, (uint16_t)sample(&w->ch[1], pos));
		}
		if (fwrite(out, 4, n, w->f) != n)
			return errno ? errno : EIO;
		w->written += (int64_t)n;
	}

	consume(&w->ch[0], w->written);
	consume(&w->ch[1], w->written);
	return 0;
}

static int flush_known(struct fin_wav *w)
{
	int64_t a = known(&w->ch[0]), b = known(&w->ch[1]);
	int64_t end = a < b ? a : b;

	if (end == INT64_MAX || end <= w->written)
		return 0;

	return write_upto(w, end);
}

int fin_wav_put(struct fin_wav *w, int chan, const int16_t *s, size_t n)
{
	struct wav_chan *c = &w->ch[chan];

	if (c->ended || !n)
		return 0;

	if (c->n + n > c->cap) {
		size_t cap = c->cap ? c->cap : 8192;
		int16_t *p;

		while (cap < c->n + n)
			cap *= 2;
		p = c->buf ? mem_realloc(c->buf, cap * sizeof(*p)) :
			mem_alloc(cap * sizeof(*p), NULL);
		if (!p)
			return ENOMEM;
		c->buf = p;
		c->cap = cap;
	}
	memcpy(c->buf + c->n, s, n * sizeof(*s));
	c->n += n;

	return flush_known(w);
}

void fin_wav_end(struct fin_wav *w, int chan)
{
	w->ch[chan].ended = true;
	(void)flush_known(w);
}

int fin_wav_finish(struct fin_wav *w, int64_t length, uint64_t *size,
		   char *sha256)
{
	uint8_t h[WAV_HDR];
	int64_t end = length, i;
	uint64_t data;
	int err;

	for (i = 0; i < 2; i++)
		if (w->ch[i].pos0 + (int64_t)w->ch[i].n > end)
			end = w->ch[i].pos0 + (int64_t)w->ch[i].n;

	err = write_upto(w, end);
	if (err)
		return err;

	data = (uint64_t)w->written * 4;
	if (data > UINT32_MAX - 36)
		return EFBIG;

	header(h, w->rate, (uint32_t)data);
	if (fflush(w->f) || fseek(w->f, 0, SEEK_SET) ||
	    fwrite(h, 1, sizeof(h), w->f) != sizeof(h) || fflush(w->f) ||
	    fsync(fileno(w->f)))
		return errno ? errno : EIO;

	err = fclose(w->f) ? (errno ? errno : EIO) : 0;
	w->f = NULL;
	if (err)
		return err;

	if (rename(w->tmp, w->path) < 0)
		return errno;
	w->done = true;

	return fin_file_sha256(w->path, size, sha256);
}
