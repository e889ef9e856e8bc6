/*
 * depack_h264.c: RFC 6184 H.264 payloads to Annex B access units.
 *
 * Payload structures taken (packetization-mode 0 and 1; mode 1's types are
 * taken in mode 0 too: a sender that says 0 and fragments anyway still gets
 * recorded):
 *   1-23  single NAL unit        the payload is the NAL unit
 *   24    STAP-A                 [hdr] ([u16 size] [NAL unit])+
 *   28    FU-A                   [indicator F|NRI|28] [S|E|R|type] fragment
 * Refused (EBADMSG): 0, STAP-B 25, MTAP16 26, MTAP24 27, FU-B 29, 30, 31
 * (interleaved mode is not supported), the forbidden bit set, an STAP-A
 * whose sizes do not add up, an FU-A with S and E both set, an FU-A that
 * continues a NAL unit nobody started.
 *
 * Each NAL unit goes out behind a 00 00 00 01 start code; an FU-A's NAL
 * header is rebuilt from the indicator's F|NRI and the header's type:
 *   7c 85 <a..>   (FU-A, S=1, type 5)   ->  00 00 00 01 65 <a..>
 *   7c 05 <b..>   (middle)              ->  <b..>
 *   7c 45 <c..>   (E=1)                 ->  <c..>
 *
 * Keyframe: the access unit has an IDR slice (type 5). An IDR that came
 * without SPS or PPS gets the last ones seen (sprop-parameter-sets from the
 * fmtp, replaced by every in-band SPS / PPS, so a resolution change is
 * followed) inserted in front of its first slice. The picture size is read
 * from the access unit's SPS (width/height stay 0 without one).
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include "depack_priv.h"

enum {
	NAL_SLICE = 1, NAL_IDR = 5, NAL_SEI = 6, NAL_SPS = 7, NAL_PPS = 8,
	NAL_AUD = 9, NAL_STAP_A = 24, NAL_FU_A = 28,
	SPS_MAX_RBSP = 512,        /* SPS bytes parsed (scaling lists fit) */
	PIC_MAX = 16384,           /* larger width / height: not believed */
};

static const uint8_t start_code[4] = {0, 0, 0, 1};

/* ---- bit reader and SPS ------------------------------------------------ */

struct bits {
	const uint8_t *p;
	size_t nbits;
	size_t pos;
	bool err;
};

static uint32_t bits_u(struct bits *b, unsigned n)
{
	uint32_t v = 0;

	while (n--) {
		if (b->pos >= b->nbits) {
			b->err = true;
			return 0;
		}
		v = (v << 1) | ((b->p[b->pos >> 3] >> (7 - (b->pos & 7))) & 1);
		++b->pos;
	}

	return v;
}

/* Exp-Golomb ue(v); values above 2^32 - 2 are errors. */
static uint32_t bits_ue(struct bits *b)
{
	unsigned zeros = 0;

	while (bits_u(b, 1) == 0) {
		if (b->err || ++zeros > 31) {
			b->err = true;
			return 0;
		}
	}

	return (uint32_t)(((uint64_t)1 << zeros) - 1 + bits_u(b, zeros));
}

static int64_t bits_se(struct bits *b)
{
	uint32_t k = bits_ue(b);

	return (k & 1) ? (int64_t)(k / 2 + 1) : -(int64_t)(k / 2);
}

/* scaling_list() of H.264 7.3.2.1.1.1: parsed only to be skipped. */
static void skip_scaling_list(struct bits *b, int size)
{
	int64_t last = 8, next = 8, delta;
	int j;

	for (j = 0; j < size && !b->err; j++) {
		if (next != 0) {
			delta = bits_se(b);
			if (delta < -128 || delta > 127) {
				b->err = true;
				return;
			}
			next = (last + delta + 256) % 256;
		}
		if (next != 0)
			last = next;
	}
}

static bool high_profile(uint32_t profile)
{
	switch (profile) {

	case 100: case 110: case 122: case 244: case 44: case 83: case 86:
	case 118: case 128: case 138: case 139: case 134: case 135:
		return true;
	default:
		return false;
	}
}

int dp_h264_sps_size(const uint8_t *nal, size_t len, int *width,
		     int *height)
{
	uint8_t rbsp[SPS_MAX_RBSP];
	uint32_t chroma = 1, sep = 0, n, i, frame_mbs_only;
	uint32_t crop_l = 0, crop_r = 0, crop_t = 0, crop_b = 0;
	int64_t w, h, unit_x, unit_y;
	struct bits b;
	size_t rl = 0, zeros = 0, k;

	if (len < 2 || (nal[0] & 0x1f) != NAL_SPS)
		return EBADMSG;

	/* drop emulation prevention bytes: 00 00 03 -> 00 00 */
	for (k = 1; k < len && rl < sizeof(rbsp); k++) {
		if (zeros >= 2 && nal[k] == 3) {
			zeros = 0;
			continue;
		}
		zeros = nal[k] ? 0 : zeros + 1;
		rbsp[rl++] = nal[k];
	}

	memset(&b, 0, sizeof(b));
	b.p = rbsp;
	b.nbits = rl * 8;

	n = bits_u(&b, 8);                       /* profile_idc */
	bits_u(&b, 16);                          /* constraints, level_idc */
	if (bits_ue(&b) > 31)                    /* seq_parameter_set_id */
		return EBADMSG;

	if (high_profile(n)) {
		chroma = bits_ue(&b);            /* chroma_format_idc */
		if (chroma > 3)
			return EBADMSG;
		if (chroma == 3)
			sep = bits_u(&b, 1);     /* separate_colour_plane */
		if (bits_ue(&b) > 6 || bits_ue(&b) > 6)   /* bit depths */
			return EBADMSG;
		bits_u(&b, 1);                   /* qpprime_y_zero_bypass */
		if (bits_u(&b, 1)) {             /* seq_scaling_matrix */
			for (i = 0; i < (chroma != 3 ? 8u : 12u); i++) {
				if (bits_u(&b, 1))
					skip_scaling_list(&b, i < 6 ? 16 : 64);
			}
		}
	}

	if (bits_ue(&b) > 12)                    /* log2_max_frame_num - 4 */
		return EBADMSG;

	n = bits_ue(&b);                         /* pic_order_cnt_type */
	if (n == 0) {
		if (bits_ue(&b) > 12)            /* log2_max_poc_lsb - 4 */
			return EBADMSG;
	}
	else if (n == 1) {
		bits_u(&b, 1);                   /* delta_pic_order_always_0 */
		bits_se(&b);                     /* offset_for_non_ref_pic */
		bits_se(&b);                     /* offset_for_top_to_bottom */
		n = bits_ue(&b);                 /* num_ref_frames_in_cycle */
		if (n > 255)
			return EBADMSG;
		for (i = 0; i < n && !b.err; i++)
			bits_se(&b);
	}
	else if (n > 2) {
		return EBADMSG;
	}

	bits_ue(&b);                             /* max_num_ref_frames */
	bits_u(&b, 1);                           /* gaps_in_frame_num */
	w = (int64_t)bits_ue(&b) + 1;            /* in macroblocks */
	h = (int64_t)bits_ue(&b) + 1;            /* in map units */
	frame_mbs_only = bits_u(&b, 1);
	if (!frame_mbs_only)
		bits_u(&b, 1);                   /* mb_adaptive_frame_field */
	bits_u(&b, 1);                           /* direct_8x8_inference */
	if (bits_u(&b, 1)) {                     /* frame_cropping_flag */
		crop_l = bits_ue(&b);
		crop_r = bits_ue(&b);
		crop_t = bits_ue(&b);
		crop_b = bits_ue(&b);
	}

	if (b.err)
		return EBADMSG;

	/* H.264 7.4.2.1.1: crop units from ChromaArrayType */
	if (sep || chroma == 0) {
		unit_x = 1;
		unit_y = 2 - frame_mbs_only;
	}
	else {
		unit_x = chroma == 3 ? 1 : 2;
		unit_y = (chroma == 1 ? 2 : 1) * (2 - (int64_t)frame_mbs_only);
	}

	w = w * 16 - unit_x * ((int64_t)crop_l + crop_r);
	h = h * 16 * (2 - (int64_t)frame_mbs_only) -
		unit_y * ((int64_t)crop_t + crop_b);
	if (w <= 0 || h <= 0 || w > PIC_MAX || h > PIC_MAX)
		return EBADMSG;

	*width = (int)w;
	*height = (int)h;
	return 0;
}

/* ---- parameter sets ---------------------------------------------------- */

/* Remember an SPS or PPS for IDRs that come without; an SPS that does not
 * parse is not kept. The SPS's picture size goes to *W, *H if given. */
static void ps_keep(struct dp_h264_ps *ps, const uint8_t *nal, size_t len,
		    int *wp, int *hp)
{
	int w, h;

	switch (nal[0] & 0x1f) {

	case NAL_SPS:
		if (dp_h264_sps_size(nal, len, &w, &h))
			return;
		if (wp && hp) {
			*wp = w;
			*hp = h;
		}
		if (len > DP_MAX_PS)
			return;
		memcpy(ps->sps, nal, len);
		ps->sps_len = len;
		ps->width = w;
		ps->height = h;
		break;

	case NAL_PPS:
		if (len > DP_MAX_PS)
			return;
		memcpy(ps->pps, nal, len);
		ps->pps_len = len;
		break;

	default:
		break;
	}
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict base64 (padding optional); decoded length, 0 if malformed. */
static size_t b64_decode(const char *s, size_t n, uint8_t *out, size_t size)
{
	uint32_t acc = 0;
	size_t i, o = 0, bits = 0;
	int v;

	while (n && s[n - 1] == '=')
		--n;

	for (i = 0; i < n; i++) {
		v = b64_val(s[i]);
		if (v < 0)
			return 0;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= size)
				return 0;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}

	return bits >= 6 ? 0 : o;       /* a lone 6-bit tail is malformed */
}

/* sprop-parameter-sets=<b64>,<b64>,... among ';'-separated parameters */
void dp_h264_fmtp(struct depack *dp, const char *fmtp)
{
	static const char key[] = "sprop-parameter-sets=";
	const size_t klen = sizeof(key) - 1;
	const char *p = fmtp, *end, *item, *stop, *next;
	uint8_t nal[DP_MAX_PS];
	size_t n;

	while (p && *p) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			++p;

		end = strchr(p, ';');
		if (!end)
			end = p + strlen(p);

		if ((size_t)(end - p) < klen || strncasecmp(p, key, klen)) {
			p = end;
			continue;
		}

		for (item = p + klen; item < end; item = next) {
			stop = memchr(item, ',', (size_t)(end - item));
			next = stop ? stop + 1 : end;
			if (!stop)
				stop = end;
			while (item < stop && *item == ' ')
				++item;
			while (stop > item && stop[-1] == ' ')
				--stop;

			n = b64_decode(item, (size_t)(stop - item), nal,
				       sizeof(nal));
			if (n && !(nal[0] & 0x80))
				ps_keep(&dp->ps, nal, n, NULL, NULL);
		}

		p = end;
	}
}

/* ---- access unit assembly ---------------------------------------------- */

/* A NAL unit of TYPE starts at offset AT of the frame (its start code). */
static int nal_begin(struct depack *dp, uint8_t type, size_t at)
{
	struct dp_cur *f = &dp->f;

	if (type >= NAL_SLICE && type <= NAL_IDR) {
		if (!f->pic) {
			f->pic = true;
			f->pic_off = at;
			/* after a loss only an IDR picture can be decoded */
			if (dp->wait_key && type != NAL_IDR)
				return ENOENT;
		}
		if (type == NAL_IDR)
			f->key = true;
	}
	else if (type == NAL_PPS && !f->has_pps) {
		f->has_pps = true;
		f->pps_off = at;
	}

	return 0;
}

/* The NAL unit at offset AT (its start code) is complete. */
static void nal_end(struct depack *dp, size_t at)
{
	const uint8_t *nal = dp->cur.p + at + sizeof(start_code);
	size_t len = dp->cur.len - at - sizeof(start_code);
	uint8_t type = nal[0] & 0x1f;

	if (type == NAL_SPS)
		dp->f.has_sps = true;
	if (type == NAL_SPS || type == NAL_PPS)
		ps_keep(&dp->ps, nal, len, &dp->f.width, &dp->f.height);
}

/* One whole NAL unit (single NAL unit packet or STAP-A member). */
static int nal_add(struct depack *dp, const uint8_t *nal, size_t len)
{
	size_t at = dp->cur.len;
	int err;

	err = nal_begin(dp, nal[0] & 0x1f, at);
	if (err)
		return err;

	err = dp_buf_append(&dp->cur, start_code, sizeof(start_code));
	if (!err)
		err = dp_buf_append(&dp->cur, nal, len);
	if (err)
		return err;

	nal_end(dp, at);
	return 0;
}

static bool nal_type_ok(uint8_t type)
{
	return type >= 1 && type <= 23;
}

static int stap_a(struct depack *dp, const uint8_t *p, size_t len)
{
	size_t i, n, count = 0;
	int err;

	/* validate first: nothing of a malformed STAP-A goes in */
	for (i = 1; i < len; i += 2 + n) {
		if (len - i < 2)
			return EBADMSG;
		n = (size_t)p[i] << 8 | p[i + 1];
		if (n == 0 || n > len - i - 2)
			return EBADMSG;
		if ((p[i + 2] & 0x80) || !nal_type_ok(p[i + 2] & 0x1f))
			return EBADMSG;
		++count;
	}
	if (!count)
		return EBADMSG;

	for (i = 1; i < len; i += 2 + n) {
		n = (size_t)p[i] << 8 | p[i + 1];
		err = nal_add(dp, p + i + 2, n);
		if (err)
			return err;
	}

	return 0;
}

static int fu_a(struct depack *dp, const uint8_t *p, size_t len)
{
	struct dp_cur *f = &dp->f;
	uint8_t type, hdr;
	bool s, e;
	int err;

	if (len < 3)
		return EBADMSG;

	s = p[1] & 0x80;
	e = p[1] & 0x40;
	type = p[1] & 0x1f;
	if ((s && e) || !nal_type_ok(type))
		return EBADMSG;

	if (s) {
		if (f->fu_open)
			return EBADMSG;      /* the previous one never ended */
		hdr = (uint8_t)((p[0] & 0xe0) | type);
		f->fu_off = dp->cur.len;
		err = nal_begin(dp, type, f->fu_off);
		if (!err)
			err = dp_buf_append(&dp->cur, start_code,
					    sizeof(start_code));
		if (!err)
			err = dp_buf_append(&dp->cur, &hdr, 1);
		if (err)
			return err;
		f->fu_open = true;
		f->fu_type = type;
	}
	else if (!f->fu_open || type != f->fu_type) {
		return EBADMSG;
	}

	err = dp_buf_append(&dp->cur, p + 2, len - 2);
	if (err)
		return err;

	if (e) {
		f->fu_open = false;
		nal_end(dp, f->fu_off);
	}

	return 0;
}

static int h264_payload(struct depack *dp, const uint8_t *p, size_t len,
			uint32_t ts, bool marker)
{
	uint8_t type = p[0] & 0x1f;
	int err;

	if (p[0] & 0x80)                         /* forbidden_zero_bit */
		return EBADMSG;
	if (type != NAL_FU_A && dp->f.fu_open)   /* FU-A end missing */
		return EBADMSG;

	if (!dp->f.active)
		dp_frame_start(dp, ts);
	++dp->f.npkt;

	if (nal_type_ok(type))
		err = nal_add(dp, p, len);
	else if (type == NAL_STAP_A)
		err = stap_a(dp, p, len);
	else if (type == NAL_FU_A)
		err = fu_a(dp, p, len);
	else
		err = EBADMSG;
	if (err)
		return err;

	if (marker) {
		if (dp->f.fu_open)
			return EBADMSG;
		/* parameter sets alone are no picture: kept for the next */
		if (dp->f.pic)
			dp->f.ready = true;
	}

	return EAGAIN;
}

/* Could P begin an access unit? Yes for parameter sets, SEI and AUD, and
 * for a slice whose first_mb_in_slice is 0 (ue(v) 0 is a single 1 bit). */
static bool h264_clean_start(const uint8_t *p, size_t len)
{
	const uint8_t *body;
	size_t blen;
	uint8_t type = p[0] & 0x1f;

	if (type == NAL_STAP_A) {
		if (len < 4)
			return false;
		type = p[3] & 0x1f;
		body = p + 4;
		blen = len - 4;
	}
	else if (type == NAL_FU_A) {
		if (len < 3 || !(p[1] & 0x80))
			return false;
		type = p[1] & 0x1f;
		body = p + 2;
		blen = len - 2;
	}
	else {
		body = p + 1;
		blen = len - 1;
	}

	if (type >= NAL_SLICE && type <= NAL_IDR)
		return blen > 0 && (body[0] & 0x80);

	return type >= NAL_SEI && type <= NAL_AUD;
}

static bool h264_whole(const struct depack *dp)
{
	return !dp->f.fu_open;
}

/* An IDR without SPS / PPS: insert the last ones known before its first
 * slice (the SPS before an in-band PPS, if the AU has one). */
static int h264_finish(struct depack *dp)
{
	struct dp_cur *f = &dp->f;
	struct dp_h264_ps *ps = &dp->ps;
	bool add_sps, add_pps;
	size_t at, n = 0;
	uint8_t *q;
	int err;

	add_sps = f->key && !f->has_sps && ps->sps_len;
	add_pps = f->key && !f->has_pps && ps->pps_len;
	if (!add_sps && !add_pps)
		return 0;

	if (add_sps)
		n += sizeof(start_code) + ps->sps_len;
	if (add_pps)
		n += sizeof(start_code) + ps->pps_len;

	err = dp_buf_reserve(&dp->cur, n);
	if (err)
		return err;

	at = add_sps && f->has_pps && f->pps_off < f->pic_off ?
		f->pps_off : f->pic_off;
	q = dp->cur.p + at;
	memmove(q + n, q, dp->cur.len - at);
	dp->cur.len += n;

	if (add_sps) {
		memcpy(q, start_code, sizeof(start_code));
		memcpy(q + sizeof(start_code), ps->sps, ps->sps_len);
		q += sizeof(start_code) + ps->sps_len;
		f->width = ps->width;
		f->height = ps->height;
	}
	if (add_pps) {
		memcpy(q, start_code, sizeof(start_code));
		memcpy(q + sizeof(start_code), ps->pps, ps->pps_len);
	}

	return 0;
}

const struct dp_codec_ops dp_h264_ops = {
	.payload = h264_payload,
	.clean_start = h264_clean_start,
	.whole = h264_whole,
	.finish = h264_finish,
};
