/*
 * timeline.c: one stream's RTP packets, from the capture to a presentation
 * time per packet.
 *
 * 1. Collect (fin_stream_add_rtp/_rtcp), in arrival order. Each SSRC is a
 *    group of its own: an SSRC change is the same party going on (a
 *    re-INVITE, an SBC failover), so the groups share the timeline
 *    (frames.c merges them by time). Sequence numbers and timestamps are
 *    extended to 64 bits per group as they arrive (RFC 3550 A.1 style:
 *    the 16/32-bit difference to the last value tells the direction). A
 *    sequence number more than FIN_SEQ_BACK behind the highest one is a
 *    sender that started over without a new SSRC: a new group too.
 * 2. Order (fin_stream_order): sort by group and extended sequence number,
 *    drop duplicates (same group and sequence number: the first copy wins).
 * 3. Timing (fin_stream_timing): the wall clock is the truth, the RTP clock
 *    only fills in between. For every packet, its offset
 *        o = arrival - ext_ts / clock
 *    is constant while the sender's RTP clock runs with ours, plus network
 *    jitter (which only ever makes o larger). So:
 *      - the offset used for a packet is the smallest o in a window of
 *        blocks around it (2-second blocks, the block before and after):
 *        the least delayed packets say where the stream really is, and a
 *        slow drift between the clocks is followed;
 *      - when o jumps by more than FIN_JUMP and stays there for the next
 *        second of packets, a new segment starts with its own offsets:
 *        upwards, the sender paused without its RTP clock running
 *        (a=inactive, hold) and the pause becomes silence or a held
 *        frame; downwards, the RTP clock jumped ahead. A single late
 *        burst (a network stall) does not start a segment because the
 *        packets after it are back at the old offset.
 *    Worked example (PCMU, 8 kHz): packets every 20 ms, ts += 160, arrival
 *    += 0.020 s: o stays at, say, 10.000. The sender pauses 3 s and
 *    resumes with ts += 160 only: the next packet arrives 3.02 s later, o
 *    is 13.000: segment 2 starts, its packets play 3 s later than ts says.
 *    Had the sender kept its RTP clock running (ts += 24160), o would stay
 *    10.000 and the 3-s hole in the timestamps becomes the silence.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <re.h>
#include "rtpx.h"
#include "fin_priv.h"

enum {
	FIN_GRPS_MAX = 64,       /* SSRCs per stream: more is garbage */
	FIN_LOOK_MIN = 8,        /* packets a jump must hold for, at least */
	FIN_LOOK_MAX = 64,       /* ... and at most */
	FIN_SEQ_BACK = 100,      /* this far back is a restart, not a late
				  * packet (2 s of audio: no jitter buffer
				  * would have waited) */
};

static const double FIN_JUMP  = 0.25;   /* s: offset change = new segment */
static const double FIN_LOOK  = 1.0;    /* s of RTP time a jump must hold */
static const double FIN_BLOCK = 2.0;    /* s: offset estimation block */

/* Static payload types (RFC 3551) a sloppy SDP may not list. */
uint32_t fin_clock_of(const struct fin_stream *fs, uint8_t pt,
		      enum dp_codec *codec)
{
	const struct sf_stream *s = fs->sfs;
	size_t i;

	for (i = 0; i < s->ncodecs; i++) {
		if (s->codecs[i].pt != pt)
			continue;
		*codec = dp_codec_from_name(s->codecs[i].name);
		if (*codec == DP_G722)
			return 8000;    /* RFC 3551: 8000 though 16 kHz audio */
		return s->codecs[i].clock ? s->codecs[i].clock :
			(dp_codec_is_video(*codec) ? 90000 : 8000);
	}

	switch (pt) {

	case 0:  *codec = DP_PCMU; return 8000;
	case 8:  *codec = DP_PCMA; return 8000;
	case 9:  *codec = DP_G722; return 8000;
	default: *codec = DP_UNKNOWN; return 0;
	}
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;

	ncap = *cap ? *cap * 2 : 1024;
	/* libre's mem_realloc() does not take NULL */
	p = *arr ? mem_realloc(*arr, ncap * elem) : mem_alloc(ncap * elem, NULL);
	if (!p)
		return ENOMEM;

	*arr = p;
	*cap = ncap;
	return 0;
}

/* The group of SSRC; a new one for a new SSRC, and for a sender that
 * started its sequence numbers over (RESTART). */
static struct fin_grp *group(struct fin_stream *fs, uint32_t ssrc,
			     uint16_t seq, double arr, uint16_t *gi)
{
	struct fin_grp *g;
	size_t i;

	/* the newest group of the SSRC is the one that goes on */
	for (i = fs->ngrps; i-- > 0;) {
		int16_t d;

		if (fs->grps[i].ssrc != ssrc)
			continue;
		d = (int16_t)(uint16_t)(seq - (uint16_t)fs->grps[i].max_seq);
		if (d < -FIN_SEQ_BACK)
			break;
		*gi = (uint16_t)i;
		return &fs->grps[i];
	}

	if (fs->ngrps >= FIN_GRPS_MAX)
		return NULL;

	if (!fs->grps) {
		fs->grps = mem_zalloc(FIN_GRPS_MAX * sizeof(*fs->grps), NULL);
		if (!fs->grps)
			return NULL;
	}

	g = &fs->grps[fs->ngrps];
	memset(g, 0, sizeof(*g));
	g->ssrc = ssrc;
	g->first_arr = arr;
	g->max_seq = -1;
	*gi = (uint16_t)fs->ngrps++;
	return g;
}

int fin_stream_add_rtp(struct fin_stream *fs, const uint8_t *p, size_t len,
		       double arr)
{
	struct fin_grp *g;
	struct fin_pkt *k;
	enum dp_codec codec;
	size_t hl;
	uint16_t gi, seq;
	uint32_t ts;
	int err;

	/* RFC 3550 5.1: fixed header, CSRCs, extension, padding */
	if (len < RTPX_HDR || (p[0] >> 6) != 2)
		goto bad;
	hl = RTPX_HDR + 4u * (p[0] & 0x0f);
	if (len < hl)
		goto bad;
	if (p[0] & 0x10) {
		if (len < hl + 4)
			goto bad;
		hl += 4 + 4u * rtpx_be16(p + hl + 2);
		if (len < hl)
			goto bad;
	}
	if (p[0] & 0x20) {
		uint8_t pad = p[len - 1];

		if (!pad || pad > len - hl)
			goto bad;
		len -= pad;
	}

	err = grow((void **)&fs->pkts, &fs->cap, fs->npkts, sizeof(*fs->pkts));
	if (err)
		return err;

	g = group(fs, rtpx_ssrc(p), rtpx_seq(p), arr, &gi);
	if (!g)
		goto bad;

	k = &fs->pkts[fs->npkts];
	memset(k, 0, sizeof(*k));
	k->payload = p + hl;
	k->len = (uint32_t)(len - hl);
	k->pt = p[1] & 0x7f;
	k->marker = (p[1] & 0x80) != 0;
	k->arr = arr;
	k->order = (uint32_t)fs->npkts;
	k->grp = gi;

	seq = rtpx_seq(p);
	ts = rtpx_be32(p + 4);
	k->ts = ts;
	if (g->max_seq < 0) {
		/* far from 0, so early reordered packets stay positive */
		k->ext_seq = (int64_t)seq + (1 << 20);
		k->ext_ts = ts;
		g->max_seq = k->ext_seq;
	}
	else {
		k->ext_seq = g->max_seq +
			(int16_t)(uint16_t)(seq - (uint16_t)g->max_seq);
		k->ext_ts = g->last_ts +
			(int32_t)(ts - (uint32_t)g->last_ts);
		if (k->ext_seq > g->max_seq)
			g->max_seq = k->ext_seq;
		else if (k->ext_seq < g->max_seq)
			++fs->reordered;
	}
	g->last_ts = k->ext_ts;

	k->clock = fin_clock_of(fs, k->pt, &codec);
	if (codec == DP_TELEVENT)
		k->kind = FIN_TELEVENT;
	else if (codec == DP_UNKNOWN || !k->clock ||
		 dp_codec_is_video(codec) != fs->video)
		k->kind = FIN_OTHER;
	else
		k->kind = FIN_MEDIA;

	if (!k->clock)
		k->clock = fs->video ? 90000 : 8000;

	++fs->npkts;
	return 0;

 bad:
	++fs->malformed;
	return 0;
}

/* RFC 3550 6.4.1: only the sender reports matter here. */
int fin_stream_add_rtcp(struct fin_stream *fs, const uint8_t *p, size_t len,
			double arr)
{
	size_t off = 0;
	int err;

	++fs->rtcp;

	while (off + RTCPX_HDR <= len) {
		const uint8_t *h = p + off;
		size_t plen = 4u * (rtpx_be16(h + 2) + 1u);
		struct fin_sr *sr;
		uint32_t sec, frac;

		if ((h[0] >> 6) != 2 || plen > len - off)
			break;
		off += plen;

		if (h[1] != 200 || plen < 28)
			continue;

		err = grow((void **)&fs->srs, &fs->srcap, fs->nsrs,
			   sizeof(*fs->srs));
		if (err)
			return err;

		sec = rtpx_be32(h + 8);
		frac = rtpx_be32(h + 12);
		if (!sec)
			continue;    /* no wall clock at the sender */

		sr = &fs->srs[fs->nsrs++];
		sr->ssrc = rtpx_be32(h + 4);
		sr->arr = arr;
		/* NTP era 0 (until 2036), then era 1 */
		sr->ntp = (sec >= 0x80000000u ? (double)sec - 2208988800.0 :
			   (double)sec + 2085978496.0) + frac / 4294967296.0;
		sr->rtp_ts = rtpx_be32(h + 16);
	}

	return 0;
}

static int pkt_cmp(const void *a, const void *b)
{
	const struct fin_pkt *x = a, *y = b;

	if (x->grp != y->grp)
		return x->grp < y->grp ? -1 : 1;
	if (x->ext_seq != y->ext_seq)
		return x->ext_seq < y->ext_seq ? -1 : 1;
	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return 0;
}

int fin_stream_order(struct fin_stream *fs)
{
	size_t i, n = 0;

	if (!fs->npkts)
		return 0;

	qsort(fs->pkts, fs->npkts, sizeof(*fs->pkts), pkt_cmp);

	for (i = 0; i < fs->npkts; i++) {
		if (n && fs->pkts[n - 1].grp == fs->pkts[i].grp &&
		    fs->pkts[n - 1].ext_seq == fs->pkts[i].ext_seq) {
			++fs->duplicates;
			continue;
		}
		if (n != i)
			fs->pkts[n] = fs->pkts[i];
		++n;
	}
	fs->npkts = n;

	for (i = 0; i < fs->ngrps; i++)
		fs->grps[i].n = 0;
	for (i = n; i-- > 0;) {
		fs->grps[fs->pkts[i].grp].first = i;
		++fs->grps[fs->pkts[i].grp].n;
	}

	fs->nmedia = 0;
	for (i = 0; i < n; i++) {
		if (fs->pkts[i].kind == FIN_MEDIA)
			++fs->nmedia;
		else if (fs->pkts[i].kind == FIN_TELEVENT)
			++fs->televent;
		else
			++fs->other;
	}

	return 0;
}

static double offset_of(const struct fin_pkt *k)
{
	return k->arr - (double)k->ext_ts / k->clock;
}

/*
 * Does a jump at media packet IDX[i] hold? It does if every media packet
 * in the next FIN_LOOK seconds of RTP time (at least FIN_LOOK_MIN of them)
 * is past REF by FIN_JUMP on the same side. *LOW gets the smallest offset
 * seen (the new segment's first estimate).
 */
static bool jump_holds(const struct fin_pkt *pk, const size_t *idx,
		       size_t i, size_t n, double ref, bool up, double *low)
{
	const struct fin_pkt *k0 = &pk[idx[i]];
	size_t j;

	*low = INFINITY;
	for (j = i; j < n && j - i < FIN_LOOK_MAX; j++) {
		const struct fin_pkt *k = &pk[idx[j]];
		double o = offset_of(k);

		if (j - i >= FIN_LOOK_MIN &&
		    fabs((double)(k->ext_ts - k0->ext_ts) / k->clock) >
		    FIN_LOOK)
			break;
		if (up ? o <= ref + FIN_JUMP : o >= ref - FIN_JUMP)
			return false;
		if (o < *low)
			*low = o;
	}

	return true;
}

/* Offsets of one segment: idx[0..n-1], media packets in sequence order. */
static void segment_offsets(struct fin_pkt *pk, const size_t *idx, size_t n)
{
	double prev = INFINITY, cur = INFINITY, next;
	size_t b0 = 0, b1, j, b2;

	/* blocks [b0, b1): FIN_BLOCK seconds of arrivals each */
	while (b0 < n) {
		for (b1 = b0; b1 < n && pk[idx[b1]].arr - pk[idx[b0]].arr <
			     FIN_BLOCK; b1++)
			;
		if (b1 == b0)
			b1 = b0 + 1;
		if (cur == INFINITY)
			for (j = b0; j < b1; j++)
				cur = fmin(cur, offset_of(&pk[idx[j]]));

		next = INFINITY;
		for (b2 = b1; b2 < n && pk[idx[b2]].arr - pk[idx[b1]].arr <
			     FIN_BLOCK; b2++)
			next = fmin(next, offset_of(&pk[idx[b2]]));

		for (j = b0; j < b1; j++)
			pk[idx[j]].off = fmin(prev, fmin(cur, next));

		prev = cur;
		cur = next;
		b0 = b1;
	}
}

static void group_timing(struct fin_stream *fs, const struct fin_grp *g,
			 size_t *idx)
{
	struct fin_pkt *pk = fs->pkts;
	size_t i, n = 0, s0 = 0;
	double ref, bstart, bprev, bcur, low;
	bool up;

	for (i = g->first; i < g->first + g->n; i++)
		if (pk[i].kind == FIN_MEDIA)
			idx[n++] = i;
	if (!n)
		goto others;

	(void)jump_holds(pk, idx, 0, n, -INFINITY, true, &low);
	bprev = INFINITY;
	bcur = low;
	bstart = pk[idx[0]].arr;
	pk[idx[0]].seg = fs->nsegs;

	for (i = 1; i < n; i++) {
		struct fin_pkt *k = &pk[idx[i]];
		double o = offset_of(k);

		ref = fmin(bprev, bcur);
		up = o > ref + FIN_JUMP;
		if ((up || o < ref - FIN_JUMP) &&
		    jump_holds(pk, idx, i, n, ref, up, &low)) {
			segment_offsets(pk, idx + s0, i - s0);
			s0 = i;
			++fs->nsegs;
			bprev = INFINITY;
			bcur = low;
			bstart = k->arr;
		}
		else if (k->arr - bstart > FIN_BLOCK) {
			bprev = bcur;
			bcur = o;
			bstart = k->arr;
		}
		else {
			bcur = fmin(bcur, o);
		}
		k->seg = fs->nsegs;
	}
	segment_offsets(pk, idx + s0, n - s0);
	++fs->nsegs;

 others:
	/* events and unknown payloads: the offset of the packet before */
	low = n ? pk[idx[0]].off : offset_of(&pk[g->first]);
	for (i = g->first; i < g->first + g->n; i++) {
		if (pk[i].kind == FIN_MEDIA)
			low = pk[i].off;
		else
			pk[i].off = low;
	}
}

void fin_stream_timing(struct fin_stream *fs)
{
	size_t *idx, i;

	fs->nsegs = 0;
	if (!fs->npkts)
		return;

	idx = mem_alloc(fs->npkts * sizeof(*idx), NULL);
	if (!idx) {
		/* no memory for the index: arrival offsets as they are */
		for (i = 0; i < fs->npkts; i++)
			fs->pkts[i].off = offset_of(&fs->pkts[i]);
		return;
	}

	for (i = 0; i < fs->ngrps; i++)
		group_timing(fs, &fs->grps[i], idx);

	mem_deref(idx);
}

/* First and last presentation time of the stream's media. The last frame
 * lasts as long as the one before it (20 ms / 40 ms if unknown). */
void fin_stream_span(struct fin_stream *fs)
{
	size_t i;

	fs->first_pts = INFINITY;
	fs->end_pts = -INFINITY;

	for (i = 0; i < fs->npkts; i++) {
		const struct fin_pkt *k = &fs->pkts[i];
		double pts, dur = fs->video ? 0.040 : 0.020;
		size_t j;

		if (k->kind != FIN_MEDIA)
			continue;

		pts = (double)k->ext_ts / k->clock + k->off;
		if (pts < fs->first_pts)
			fs->first_pts = pts;

		/* the frame duration from the previous frame of the group */
		for (j = i; j-- > 0 && fs->pkts[j].grp == k->grp;) {
			if (fs->pkts[j].kind != FIN_MEDIA ||
			    fs->pkts[j].ext_ts == k->ext_ts)
				continue;
			if (k->ext_ts > fs->pkts[j].ext_ts &&
			    (double)(k->ext_ts - fs->pkts[j].ext_ts) /
			    k->clock < 0.2)
				dur = (double)(k->ext_ts - fs->pkts[j].ext_ts) /
					k->clock;
			break;
		}
		if (pts + dur > fs->end_pts)
			fs->end_pts = pts + dur;
	}
}

void fin_stream_reset(struct fin_stream *fs)
{
	mem_deref(fs->pkts);
	mem_deref(fs->grps);
	mem_deref(fs->srs);
	memset(fs, 0, sizeof(*fs));
}
