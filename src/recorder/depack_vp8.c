/*
 * depack_vp8.c: RFC 7741 VP8 payloads to VP8 frames.
 *
 * Payload descriptor (RFC 7741 4.2), then VP8 bytes:
 *
 *        0 1 2 3 4 5 6 7
 *       |X|R|N|S|R| PID |     S: start of a partition, PID: its index
 *   X:  |I|L|T|K| RSV   |
 *   I:  |M| PictureID   |     M=1: PictureID is 15 bits (one more byte)
 *   L:  |  TL0PICIDX    |
 *   T/K:|TID|Y| KEYIDX  |
 *
 * A frame starts with S=1, PID=0; its first byte is the VP8 payload header
 * whose low bit P is 0 for a key frame. A key frame's header goes on
 * (RFC 6386 9.1): 3 bytes frame tag, start code 9d 01 2a, then 14-bit width
 * and height, little-endian, two scale bits on top of each.
 *
 * Example, the first packet ffmpeg sends for a 320x240 stream:
 *   90 80 00 | b0 5f 00 9d 01 2a 40 01 f0 00 ...
 *   X=1 S=1 PID=0 | I=1 | 7-bit picture id 0 | P=0 (key frame), start
 *   code, width 0x0140 = 320, height 0x00f0 = 240.
 *
 * Refused (EBADMSG): a descriptor longer than the payload, nothing after
 * it, a packet that continues a frame whose start was not seen, a second
 * frame start within one timestamp, partition indices going backwards.
 */
#include <errno.h>
#include <string.h>
#include "depack_priv.h"

struct vp8_desc {
	size_t hlen;               /* descriptor bytes */
	bool start;                /* S=1 and PID=0: first packet of a frame */
	uint8_t pid;
};

static int vp8_desc(const uint8_t *p, size_t len, struct vp8_desc *d)
{
	size_t i = 1;
	uint8_t x;

	d->start = (p[0] & 0x10) && (p[0] & 0x07) == 0;
	d->pid = p[0] & 0x07;

	if (p[0] & 0x80) {
		if (len < 2)
			return EBADMSG;
		x = p[1];
		i = 2;
		if (x & 0x80) {                  /* I: PictureID */
			if (i >= len)
				return EBADMSG;
			i += (p[i] & 0x80) ? 2 : 1;
		}
		if (x & 0x40)                    /* L: TL0PICIDX */
			++i;
		if (x & 0x30)                    /* T or K: TID/Y/KEYIDX */
			++i;
	}

	/* the descriptor and at least one byte of VP8 data */
	if (i >= len)
		return EBADMSG;

	d->hlen = i;
	return 0;
}

static int vp8_payload(struct depack *dp, const uint8_t *p, size_t len,
		       uint32_t ts, bool marker)
{
	struct dp_cur *f = &dp->f;
	struct vp8_desc d;
	int err;

	if (vp8_desc(p, len, &d))
		return EBADMSG;

	if (!f->active) {
		if (!d.start)
			return EBADMSG;
		dp_frame_start(dp, ts);
		f->pic = true;
		f->key = !(p[d.hlen] & 0x01);
		++f->npkt;
		if (dp->wait_key && !f->key)
			return ENOENT;
	}
	else {
		if (d.start || d.pid < f->pid)
			return EBADMSG;
		++f->npkt;
	}
	f->pid = d.pid;

	err = dp_buf_append(&dp->cur, p + d.hlen, len - d.hlen);
	if (err)
		return err;

	if (marker)
		f->ready = true;

	return EAGAIN;
}

static bool vp8_clean_start(const uint8_t *p, size_t len)
{
	struct vp8_desc d;

	return !vp8_desc(p, len, &d) && d.start;
}

static bool vp8_whole(const struct depack *dp)
{
	return dp->f.pic;
}

/* A key frame says its size (RFC 6386 9.1). */
static int vp8_finish(struct depack *dp)
{
	const uint8_t *b = dp->cur.p;
	int w, h;

	if (!dp->f.key || dp->cur.len < 10 ||
	    b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a)
		return 0;

	w = (b[6] | b[7] << 8) & 0x3fff;
	h = (b[8] | b[9] << 8) & 0x3fff;
	if (w && h) {
		dp->f.width = w;
		dp->f.height = h;
	}

	return 0;
}

const struct dp_codec_ops dp_vp8_ops = {
	.payload = vp8_payload,
	.clean_start = vp8_clean_start,
	.whole = vp8_whole,
	.finish = vp8_finish,
};
