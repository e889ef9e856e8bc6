/*
 * fuzz_depack.c: libFuzzer harness for the RTP payload depacketizers.
 *
 * Input:
 *   byte 0      codec (low 3 bits: 1 PCMU ... 6 H264, 7 VP8, 0 VP8 too);
 *               bit 3: the first record's payload is the fmtp line
 *   records     [u16 BE len][flags][len bytes of RTP payload]...
 *   flags       bit 0 marker, bit 1 lost, bit 2 timestamp += 3000,
 *               bit 3 timestamp -= 3000 (both: += 1)
 * A short last record is cut to what is there. Every payload is pushed,
 * then the stream is flushed. Checked on every frame: its bytes are all
 * readable (ASan), H.264 frames are Annex B, sizes are sane, only the
 * documented return codes come back, and the stats add up.
 */
#include <errno.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "depack_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum dp_codec codecs[8] = {
	DP_VP8, DP_PCMU, DP_PCMA, DP_G722, DP_OPUS, DP_TELEVENT, DP_H264,
	DP_VP8,
};

static volatile uint8_t sink;

static void check_frame(enum dp_codec codec, const struct dp_frame *f)
{
	uint8_t x = 0;
	size_t i;

	if (!f->data || !f->len || f->len > DP_MAX_FRAME + 2 * DP_MAX_PS + 8)
		abort();
	for (i = 0; i < f->len; i++)
		x ^= f->data[i];
	sink = x;

	if (f->width < 0 || f->height < 0 || f->width > 16384 ||
	    f->height > 16384 || !f->width != !f->height)
		abort();

	if (!dp_codec_is_video(codec) && !f->keyframe)
		abort();

	if (codec == DP_H264 &&
	    (f->len < 5 || memcmp(f->data, "\0\0\0\1", 4)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct dp_stats *st;
	struct depack *dp = NULL;
	enum dp_codec codec;
	struct dp_frame f;
	char fmtp[512] = "";
	uint64_t pushes = 0, frames = 0;
	uint32_t ts = 0x7ffff000;
	size_t off = 1, len;
	uint8_t flags;
	int err;

	if (size < 1)
		return 0;

	codec = codecs[data[0] & 7];

	if ((data[0] & 8) && size >= 3) {
		len = (size_t)data[1] << 8 | data[2];
		if (len > size - 3)
			len = size - 3;
		if (len > sizeof(fmtp) - 1)
			len = sizeof(fmtp) - 1;
		memcpy(fmtp, data + 3, len);
		fmtp[len] = '\0';
		off = 3 + len;
	}

	if (depack_alloc(&dp, codec, fmtp))
		abort();

	while (off + 3 <= size) {
		len = (size_t)data[off] << 8 | data[off + 1];
		flags = data[off + 2];
		off += 3;
		if (len > size - off)
			len = size - off;

		if ((flags & 0x0c) == 0x0c)
			ts += 1;
		else if (flags & 0x04)
			ts += 3000;
		else if (flags & 0x08)
			ts -= 3000;

		err = depack_push(dp, data + off, len, ts, flags & 1,
				  flags & 2, &f);
		++pushes;
		off += len;

		switch (err) {

		case 0:
			check_frame(codec, &f);
			++frames;
			break;

		case EAGAIN:
		case ENOENT:
		case EBADMSG:
			break;

		default:
			abort();
		}
	}

	err = depack_flush(dp, &f);
	if (err == 0) {
		check_frame(codec, &f);
		++frames;
	}
	else if (err != EAGAIN) {
		abort();
	}
	if (depack_flush(dp, &f) != EAGAIN)
		abort();

	st = depack_stats(dp);
	if (st->packets != pushes || st->frames != frames ||
	    st->keyframes > st->frames)
		abort();

	depack_free(dp);
	return 0;
}
