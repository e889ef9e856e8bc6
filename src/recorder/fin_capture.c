/*
 * fin_capture.c: read a session capture (media.pcap) into per-stream packet
 * lists with presentation times on one session timeline.
 *
 * Reading: classic pcap, either byte order, microsecond or nanosecond
 * stamps; linktypes Ethernet (1), raw IP (101, 228/229) and Linux cooked
 * (113); IPv4/IPv6 + UDP. A truncated last record (a crash mid-write) ends
 * the read quietly. A datagram belongs to the stream whose port (RTP) or
 * rtcp_port (RTCP) is its destination; with rtcp-mux the payload type
 * byte tells (RFC 5761).
 *
 * Timing, per stream:
 *   1. Packets are split into runs of one SSRC (a new SSRC is the same
 *      party going on: an SRC restart, a transfer).
 *   2. In a run: sequence numbers are extended, packets sorted by them,
 *      duplicates dropped; a hole marks the next packet "lost before".
 *   3. RTP timestamps are extended, and the run is cut where arrival time
 *      and RTP time disagree by more than a second (a pause the SRC did not
 *      reflect in its timestamps, or a timestamp jump).
 *   4. Each piece is anchored on the wall clock: anchor = min over its
 *      packets of (arrival - rtp_time), the least-delayed packet's view,
 *      which jitter cannot pull early; t = anchor + rtp_time.
 * So silence and pauses stay where the wall clock put them, and audio and
 * video of one party line up as their packets' best-case arrivals did.
 *
 * Worked example: audio packets ts 0,160,320 arriving at 10.000, 10.031,
 * 10.040 s (clock 8000): rtp times 0, 0.02, 0.04; arrival - rtp = 10.000,
 * 10.011, 10.000 -> anchor 10.000 -> t = 10.00, 10.02, 10.04.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "depack.h"
#include "fin.h"

enum { RUN_CUT_S = 1 };

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

struct pcap_fmt {
	bool swap, nano;
	uint32_t linktype;
};

static uint32_t rd32(const struct pcap_fmt *f, const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return f->swap ? __builtin_bswap32(v) : v;
}

const struct sf_codec *fin_codec(const struct fin_stream *s, uint8_t pt)
{
	size_t i;

	for (i = 0; i < s->sf->ncodecs; i++)
		if (s->sf->codecs[i].pt == pt)
			return &s->sf->codecs[i];
	return NULL;
}

/* The UDP payload of a link-layer frame, with its destination port. */
static const uint8_t *udp_payload(const struct pcap_fmt *f, const uint8_t *p,
				  size_t len, uint16_t *dport, size_t *plen)
{
	uint16_t etype = 0;
	size_t off = 0, iphl;

	switch (f->linktype) {
	case 1:
		if (len < 14)
			return NULL;
		etype = be16(p + 12);
		off = 14;
		if (etype == 0x8100 && len >= 18) {     /* VLAN */
			etype = be16(p + 16);
			off = 18;
		}
		break;
	case 113:
		if (len < 16)
			return NULL;
		etype = be16(p + 14);
		off = 16;
		break;
	case 101: case 228: case 229:
		if (len < 1)
			return NULL;
		etype = (p[0] >> 4) == 6 ? 0x86dd : 0x0800;
		break;
	default:
		return NULL;
	}
	p += off;
	len -= off;
	if (etype == 0x0800) {
		if (len < 20 || (p[0] >> 4) != 4 || p[9] != 17)
			return NULL;
		iphl = (size_t)(p[0] & 0x0f) * 4;
		if ((be16(p + 6) & 0x3fff) != 0)   /* fragment */
			return NULL;
	}
	else if (etype == 0x86dd) {
		if (len < 40 || p[6] != 17)
			return NULL;
		iphl = 40;
	}
	else {
		return NULL;
	}
	if (len < iphl + 8)
		return NULL;
	p += iphl;
	len -= iphl;
	*dport = be16(p + 2);
	if (be16(p + 4) < 8)
		return NULL;
	*plen = MIN((size_t)be16(p + 4) - 8, len - 8);
	return p + 8;
}

static int push_pkt(struct fin_stream *s, const struct fin_pkt *pk)
{
	if (s->npkts == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		struct fin_pkt *n = realloc(s->pkts, cap * sizeof(*n));

		if (!n)
			return ENOMEM;
		s->pkts = n;
		s->cap = cap;
	}
	s->pkts[s->npkts++] = *pk;
	return 0;
}

static int push_sr(struct fin_stream *s, const uint8_t *p, size_t len)
{
	/* walk the compound packet for SRs */
	while (len >= 8) {
		size_t plen = ((size_t)be16(p + 2) + 1) * 4;

		if (plen > len)
			break;
		if (p[1] == 200 && plen >= 28) {
			struct fin_sr sr;

			if (s->nsrs == s->srcap) {
				size_t cap = s->srcap ? s->srcap * 2 : 64;
				struct fin_sr *n = realloc(s->srs,
							   cap * sizeof(*n));
				if (!n)
					return ENOMEM;
				s->srs = n;
				s->srcap = cap;
			}
			sr.ssrc = be32(p + 4);
			sr.ntp = (double)be32(p + 8) +
				(double)be32(p + 12) / 4294967296.0;
			sr.rtp = be32(p + 16);
			s->srs[s->nsrs++] = sr;
		}
		p += plen;
		len -= plen;
	}
	return 0;
}

static void on_datagram(struct fin_capture *c, double t, uint16_t dport,
			const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < c->nst; i++) {
		struct fin_stream *s = &c->st[i];
		bool rtcp;

		if (dport != s->sf->port && dport != s->sf->rtcp_port)
			continue;
		if (len < 8 || (p[0] >> 6) != 2)
			return;
		rtcp = (dport == s->sf->rtcp_port && s->sf->rtcp_port !=
			s->sf->port) || ((p[1] & 0x7f) >= 64 &&
					 (p[1] & 0x7f) <= 95);
		if (rtcp) {
			++c->stats->rtcp;
			(void)push_sr(s, p, len);
			return;
		}
		if (len >= 12) {
			struct fin_pkt pk;
			size_t hl = 12 + (size_t)(p[0] & 0x0f) * 4;
			size_t plen = len;

			if (p[0] & 0x10) {              /* extension */
				if (hl + 4 > len)
					return;
				hl += 4 + (size_t)be16(p + hl + 2) * 4;
			}
			if (p[0] & 0x20) {              /* padding */
				if (!p[len - 1] || p[len - 1] > len)
					return;
				plen -= p[len - 1];
			}
			if (hl > plen)
				return;
			memset(&pk, 0, sizeof(pk));
			pk.arrival = t;
			pk.payload = p + hl;
			pk.len = (uint32_t)(plen - hl);
			pk.ts = be32(p + 4);
			pk.ssrc = be32(p + 8);
			pk.xseq = be16(p + 2);
			pk.pt = p[1] & 0x7f;
			pk.marker = p[1] & 0x80;
			if (push_pkt(s, &pk) == 0)
				++c->stats->packets;
		}
		return;
	}
}

static int read_pcap(struct fin_capture *c)
{
	const uint8_t *p = c->map, *end = c->map + c->maplen;
	struct pcap_fmt f;
	uint32_t magic;
	bool have_origin = false;

	if (c->maplen < 24)
		return ENODATA;
	memcpy(&magic, p, 4);
	memset(&f, 0, sizeof(f));
	switch (magic) {
	case 0xa1b2c3d4: break;
	case 0xd4c3b2a1: f.swap = true; break;
	case 0xa1b23c4d: f.nano = true; break;
	case 0x4d3cb2a1: f.swap = f.nano = true; break;
	default: return EBADMSG;
	}
	f.linktype = rd32(&f, p + 20) & 0x0fffffff;
	p += 24;
	while (p + 16 <= end) {
		uint32_t caplen = rd32(&f, p + 8);
		double t = (double)rd32(&f, p) +
			(double)rd32(&f, p + 4) / (f.nano ? 1e9 : 1e6);
		const uint8_t *pl;
		uint16_t dport;
		size_t plen;

		if (caplen > 262144 || p + 16 + caplen > end)
			break;                 /* truncated tail: a crash */
		pl = udp_payload(&f, p + 16, caplen, &dport, &plen);
		if (pl) {
			if (!have_origin) {
				c->origin = t;
				have_origin = true;
			}
			on_datagram(c, t - c->origin, dport, pl, plen);
		}
		p += 16 + caplen;
	}
	return have_origin ? 0 : ENODATA;
}

static int cmp_xseq(const void *a, const void *b)
{
	const struct fin_pkt *x = a, *y = b;

	if (x->xseq != y->xseq)
		return x->xseq < y->xseq ? -1 : 1;
	return x->arrival < y->arrival ? -1 : x->arrival > y->arrival;
}

/* Step 4: t (RTP time since the piece's start) -> timeline time. */
static void anchor(struct fin_pkt *pk, size_t n)
{
	double a = 1e18;
	size_t j;

	for (j = 0; j < n; j++)
		a = MIN(a, pk[j].arrival - pk[j].t);
	for (j = 0; j < n; j++)
		pk[j].t += a;
}

/* Steps 2-4 of the banner for one SSRC run PK[0..N); returns the count
 * kept (duplicates removed in place). */
static size_t run_assemble(struct fin_capture *c, struct fin_stream *s,
			   struct fin_pkt *pk, size_t n, uint32_t clock)
{
	uint64_t prev;
	size_t i, k, piece;
	int64_t xts = 0;

	/* extend sequence numbers in arrival order */
	pk[0].xseq = 65536ULL * 16 + pk[0].xseq;
	prev = pk[0].xseq;
	for (i = 1; i < n; i++) {
		uint16_t s16 = (uint16_t)pk[i].xseq;
		int16_t d = (int16_t)(s16 - (uint16_t)prev);

		pk[i].xseq = (uint64_t)((int64_t)prev + d);
		if (pk[i].xseq < prev)
			++c->stats->reordered;
		else
			prev = pk[i].xseq;
	}
	qsort(pk, n, sizeof(*pk), cmp_xseq);
	for (i = 1, k = 1; i < n; i++) {
		if (pk[i].xseq == pk[k - 1].xseq) {
			++c->stats->duplicates;
			continue;
		}
		pk[k++] = pk[i];
	}
	n = k;
	for (i = 0; i < n; i++)
		pk[i].lost_before = i > 0 && pk[i].xseq != pk[i - 1].xseq + 1;
	pk[0].lost_before = true;     /* a new SSRC: video waits for a key */

	/* extend timestamps, cut where they and arrival disagree */
	piece = 0;
	pk[0].t = 0;
	for (i = 1; i < n; i++) {
		int32_t d = (int32_t)(pk[i].ts - pk[i - 1].ts);
		double dt_rtp = (double)d / clock;
		double dt_arr = pk[i].arrival - pk[i - 1].arrival;

		if (dt_rtp - dt_arr >= RUN_CUT_S || dt_arr - dt_rtp >= RUN_CUT_S) {
			anchor(pk + piece, i - piece);
			piece = i;
			xts = 0;
			pk[i].t = 0;
			continue;
		}
		xts += d;
		pk[i].t = (double)xts / clock;
	}
	anchor(pk + piece, n - piece);
	(void)s;
	return n;
}

static int assemble(struct fin_capture *c, struct fin_stream *s)
{
	const struct sf_codec *cd = s->sf->ncodecs ? &s->sf->codecs[0] : NULL;
	uint32_t clock = cd && cd->clock ? cd->clock : (s->video ? 90000 : 8000);
	size_t i, start = 0, out = 0;

	if (!s->npkts)
		return 0;
	for (i = 1; i <= s->npkts; i++) {
		size_t kept;

		if (i < s->npkts && s->pkts[i].ssrc == s->pkts[start].ssrc)
			continue;
		kept = run_assemble(c, s, s->pkts + start, i - start, clock);
		memmove(s->pkts + out, s->pkts + start, kept * sizeof(*s->pkts));
		out += kept;
		start = i;
	}
	s->npkts = out;
	s->first = 1e18;
	s->last = 0;
	for (i = 0; i < s->npkts; i++) {
		s->first = MIN(s->first, s->pkts[i].t);
		s->last = MAX(s->last, s->pkts[i].t);
	}
	return 0;
}

int fin_capture_read(struct fin_capture *c, const char *dir,
		     const struct sessfile *sf, struct fin_stats *stats,
		     char *reason, size_t rsize)
{
	char path[1024];
	struct stat stt;
	size_t i;
	int fd, err;
	bool any_opus = false;

	memset(c, 0, sizeof(*c));
	c->sf = sf;
	c->stats = stats;
	for (i = 0; i < sf->nstreams && c->nst < SF_STREAMS_MAX; i++) {
		const struct sf_stream *ss = &sf->streams[i];
		struct fin_stream *s;

		if (!ss->accepted || !ss->port)
			continue;
		s = &c->st[c->nst++];
		s->sf = ss;
		s->index = i;
		s->video = !strcmp(ss->media, "video");
		if (ss->ncodecs && dp_codec_from_name(ss->codecs[0].name) ==
		    DP_OPUS)
			any_opus = true;
	}
	c->rate = any_opus ? 48000 : 16000;

	(void)snprintf(path, sizeof(path), "%s/media.pcap", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		(void)snprintf(reason, rsize, "no capture (%s)", strerror(errno));
		return errno;
	}
	if (fstat(fd, &stt) || stt.st_size < 24) {
		close(fd);
		(void)snprintf(reason, rsize, "no media received");
		return ENODATA;
	}
	c->maplen = (size_t)stt.st_size;
	c->map = mmap(NULL, c->maplen, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (c->map == MAP_FAILED) {
		c->map = NULL;
		(void)snprintf(reason, rsize, "cannot map the capture");
		return errno;
	}
	(void)madvise(c->map, c->maplen, MADV_SEQUENTIAL);
	err = read_pcap(c);
	if (err == EBADMSG) {
		(void)snprintf(reason, rsize, "capture is not a pcap file");
		return err;
	}
	if (err || !stats->packets) {
		(void)snprintf(reason, rsize, "no media received");
		return ENODATA;
	}
	for (i = 0; i < c->nst; i++) {
		err = assemble(c, &c->st[i]);
		if (err) {
			(void)snprintf(reason, rsize, "out of memory");
			return err;
		}
		if (c->st[i].npkts)
			c->length = MAX(c->length, c->st[i].last + 0.02);
	}
	stats->media_seconds = c->length;
	return 0;
}

void fin_capture_free(struct fin_capture *c)
{
	size_t i, j;

	for (i = 0; i < c->nst; i++) {
		struct fin_stream *s = &c->st[i];

		free(s->pkts);
		free(s->srs);
		free(s->pcm);
		for (j = 0; j < s->napkts; j++)
			free(s->apkts[j].data);
		free(s->apkts);
		free(s->opus_extradata);
	}
	if (c->map)
		munmap(c->map, c->maplen);
	memset(c, 0, sizeof(*c));
}
