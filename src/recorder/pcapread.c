/*
 * pcapread.c: UDP datagrams out of a classic pcap (see pcapread.h).
 *
 * Layout of the file (all fields in the writer's byte order, which the
 * magic number tells):
 *
 *   global header, 24 bytes:
 *     magic      a1b2c3d4 (us timestamps) or a1b23c4d (ns timestamps)
 *     version    2.4
 *     thiszone, sigfigs (ignored), snaplen
 *     network    link type (the low 16 bits; the rest is FCS info)
 *   then records:
 *     ts_sec, ts_frac (us or ns), incl_len (bytes that follow), orig_len
 *     incl_len bytes of frame
 *
 * Worked example, one media.pcap record (Ethernet, IPv4, UDP, RTP):
 *   16-byte record header, then 14 bytes of Ethernet (zero MACs, type
 *   0800), 20 bytes of IPv4 (IHL 5, protocol 17), 8 bytes of UDP (ports,
 *   length = 8 + payload), then the RTP packet: pcapr_next() returns the
 *   addresses, the ports and a pointer to the RTP packet.
 *
 * Robustness: every length is checked against the bytes that are really
 * there. A record whose header promises more than the file holds is the
 * half-written last record of a crashed writer: the capture ends there. A
 * record header with an absurd length (past 256 KiB) means the file is
 * damaged: reading stops and stats.corrupt says so, what came before is
 * kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <re.h>
#include "pcapread.h"

enum {
	PCAP_GLOBAL_HDR = 24,
	PCAP_REC_HDR    = 16,
	PCAP_REC_MAX    = 256 << 10,    /* no link carries more */

	LT_NULL   = 0,
	LT_EN10MB = 1,
	LT_RAW_BSD1 = 12,
	LT_RAW_BSD2 = 14,
	LT_RAW    = 101,
	LT_SLL    = 113,
	LT_SLL2   = 276,

	ETH_IPV4 = 0x0800,
	ETH_IPV6 = 0x86dd,
	ETH_VLAN = 0x8100,
	ETH_QINQ = 0x88a8,
};

struct pcapr {
	const uint8_t *map;       /* whole file, read-only */
	size_t size;
	size_t pos;               /* next record header */
	bool swap;                /* file byte order is not ours */
	bool nsec;                /* ts_frac is nanoseconds */
	int linktype;
	struct pcapr_stats stats;
};

static uint32_t rd32(const struct pcapr *r, const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return r->swap ? __builtin_bswap32(v) : v;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void destructor(void *arg)
{
	struct pcapr *r = arg;

	if (r->map && r->size)
		(void)munmap((void *)r->map, r->size);
}

int pcapr_open(struct pcapr **rp, const char *path)
{
	struct pcapr *r;
	struct stat sb;
	uint32_t magic;
	void *map;
	int fd, err = 0;

	if (!rp || !path)
		return EINVAL;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;

	r = mem_zalloc(sizeof(*r), destructor);
	if (!r) {
		err = ENOMEM;
		goto out;
	}

	if (fstat(fd, &sb) < 0) {
		err = errno;
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		err = EBADMSG;
		goto out;
	}

	/* created but nothing written yet: an empty capture */
	if (sb.st_size < PCAP_GLOBAL_HDR) {
		r->linktype = LT_EN10MB;
		goto out;
	}

	map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		err = errno;
		goto out;
	}
	r->map = map;
	r->size = (size_t)sb.st_size;
	(void)madvise(map, r->size, MADV_SEQUENTIAL);

	memcpy(&magic, r->map, 4);
	switch (magic) {

	case 0xa1b2c3d4: break;
	case 0xa1b23c4d: r->nsec = true; break;
	case 0xd4c3b2a1: r->swap = true; break;
	case 0x4d3cb2a1: r->swap = r->nsec = true; break;
	default:
		err = EBADMSG;
		goto out;
	}

	r->linktype = (int)(rd32(r, r->map + 20) & 0xffff);
	switch (r->linktype) {

	case LT_NULL:
	case LT_EN10MB:
	case LT_RAW_BSD1:
	case LT_RAW_BSD2:
	case LT_RAW:
	case LT_SLL:
	case LT_SLL2:
		break;

	default:
		err = EBADMSG;
		goto out;
	}

	r->pos = PCAP_GLOBAL_HDR;

 out:
	(void)close(fd);
	if (err)
		mem_deref(r);
	else
		*rp = r;

	return err;
}

void pcapr_free(struct pcapr *r)
{
	mem_deref(r);
}

void pcapr_rewind(struct pcapr *r)
{
	if (!r)
		return;

	r->pos = r->map ? PCAP_GLOBAL_HDR : 0;
	memset(&r->stats, 0, sizeof(r->stats));
}

int pcapr_linktype(const struct pcapr *r)
{
	return r ? r->linktype : -1;
}

const struct pcapr_stats *pcapr_stats(const struct pcapr *r)
{
	return r ? &r->stats : NULL;
}

/* UDP header at P (LEN bytes of IP payload): fill ports and payload. */
static bool parse_udp(const uint8_t *p, size_t len, struct pcapr_pkt *pkt)
{
	size_t ulen;

	if (len < 8)
		return false;

	ulen = be16(p + 4);
	/* a UDP length of 0 is legal only in IPv6 jumbograms: use what
	 * the IP layer says then */
	if (ulen == 0)
		ulen = len;
	if (ulen < 8 || ulen > len)
		return false;

	pkt->sport = be16(p);
	pkt->dport = be16(p + 2);
	pkt->data = p + 8;
	pkt->len = ulen - 8;
	return true;
}

static bool parse_ipv4(const uint8_t *p, size_t len, struct pcapr_pkt *pkt)
{
	size_t ihl, tot;
	uint16_t frag;

	if (len < 20 || (p[0] >> 4) != 4)
		return false;

	ihl = (size_t)(p[0] & 0x0f) * 4;
	tot = be16(p + 2);
	if (ihl < 20 || tot < ihl)
		return false;

	/* a capture may pad the frame (Ethernet minimum) or have cut it */
	if (tot > len)
		return false;

	frag = be16(p + 6);
	if ((frag & 0x2000) || (frag & 0x1fff))   /* MF or an offset */
		return false;

	if (p[9] != 17)
		return false;

	pkt->family = AF_INET;
	memcpy(pkt->src, p + 12, 4);
	memcpy(pkt->dst, p + 16, 4);
	return parse_udp(p + ihl, tot - ihl, pkt);
}

static bool parse_ipv6(const uint8_t *p, size_t len, struct pcapr_pkt *pkt)
{
	size_t plen, off = 40;
	uint8_t nh;
	int hops;

	if (len < 40 || (p[0] >> 4) != 6)
		return false;

	plen = be16(p + 4);
	if (plen == 0 || 40 + plen > len)   /* jumbograms not supported */
		return false;
	len = 40 + plen;
	nh = p[6];

	/* hop-by-hop, routing, destination options: skip; a fragment
	 * header: not reassembled */
	for (hops = 0; hops < 8; hops++) {
		if (nh == 17)
			break;
		if (nh != 0 && nh != 43 && nh != 60)
			return false;
		if (off + 8 > len)
			return false;
		nh = p[off];
		off += ((size_t)p[off + 1] + 1) * 8;
		if (off > len)
			return false;
	}
	if (nh != 17)
		return false;

	pkt->family = AF_INET6;
	memcpy(pkt->src, p + 8, 16);
	memcpy(pkt->dst, p + 24, 16);
	return parse_udp(p + off, len - off, pkt);
}

/* The frame of one record, by link type, down to IP. */
static bool parse_frame(const struct pcapr *r, const uint8_t *p, size_t len,
			struct pcapr_pkt *pkt)
{
	uint32_t fam;
	uint16_t et;
	size_t off;

	switch (r->linktype) {

	case LT_EN10MB:
		if (len < 14)
			return false;
		et = be16(p + 12);
		off = 14;
		while ((et == ETH_VLAN || et == ETH_QINQ) && off + 4 <= len) {
			et = be16(p + off + 2);
			off += 4;
		}
		break;

	case LT_SLL:
		if (len < 16)
			return false;
		et = be16(p + 14);
		off = 16;
		break;

	case LT_SLL2:
		if (len < 20)
			return false;
		et = be16(p);
		off = 20;
		break;

	case LT_NULL:
		/* the address family in the capturing host's byte order */
		if (len < 4)
			return false;
		memcpy(&fam, p, 4);
		if (fam > 0xffff)
			fam = __builtin_bswap32(fam);
		et = fam == 2 ? ETH_IPV4 : ETH_IPV6;
		off = 4;
		break;

	default:   /* raw IP: the version nibble tells */
		if (len < 1)
			return false;
		et = (p[0] >> 4) == 6 ? ETH_IPV6 : ETH_IPV4;
		off = 0;
		break;
	}

	if (off > len)
		return false;

	if (et == ETH_IPV4)
		return parse_ipv4(p + off, len - off, pkt);
	if (et == ETH_IPV6)
		return parse_ipv6(p + off, len - off, pkt);

	return false;
}

int pcapr_next(struct pcapr *r, struct pcapr_pkt *pkt)
{
	if (!r || !pkt)
		return EINVAL;

	while (r->map && !r->stats.corrupt && r->pos < r->size) {
		const uint8_t *h = r->map + r->pos;
		uint32_t sec, frac, incl;

		if (r->size - r->pos < PCAP_REC_HDR) {
			r->stats.truncated = true;
			r->pos = r->size;
			break;
		}

		sec = rd32(r, h);
		frac = rd32(r, h + 4);
		incl = rd32(r, h + 8);

		if (incl > PCAP_REC_MAX ||
		    frac >= (r->nsec ? 1000000000u : 1000000u)) {
			r->stats.corrupt = true;
			break;
		}
		if (r->size - r->pos - PCAP_REC_HDR < incl) {
			r->stats.truncated = true;
			r->pos = r->size;
			break;
		}

		r->pos += PCAP_REC_HDR + incl;
		++r->stats.records;

		memset(pkt, 0, sizeof(*pkt));
		if (!parse_frame(r, h + PCAP_REC_HDR, incl, pkt)) {
			++r->stats.skipped;
			continue;
		}

		pkt->time_us = (int64_t)sec * 1000000 +
			(r->nsec ? frac / 1000 : frac);
		++r->stats.udp;
		return 0;
	}

	return ENOENT;
}
