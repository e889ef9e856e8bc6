/*
 * pcapw.c: pcap records for the session capture (docs/recording-format.md):
 * classic pcap, microsecond timestamps, Ethernet linktype, with made-up
 * zero MAC addresses and real IPv4/IPv6 + UDP headers, so Wireshark, tshark
 * and sipp's pcap play read it as it is.
 */
#include <string.h>
#include <netinet/in.h>
#include <sys/time.h>
#include "recd.h"

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

static void le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

void pcapw_file_header(uint8_t hdr[PCAPW_HDR])
{
	le32(hdr, 0xa1b2c3d4);
	hdr[4] = 2; hdr[5] = 0;      /* version 2.4, little endian */
	hdr[6] = 4; hdr[7] = 0;
	le32(hdr + 8, 0);            /* thiszone */
	le32(hdr + 12, 0);           /* sigfigs */
	le32(hdr + 16, 65535);       /* snaplen */
	le32(hdr + 20, 1);           /* LINKTYPE_ETHERNET */
}

static uint16_t ip4_csum(const uint8_t *p)
{
	uint32_t s = 0;
	int i;

	for (i = 0; i < 20; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

size_t pcapw_rec_header(uint8_t *buf, const struct sa *src,
			const struct sa *dst, size_t len,
			const struct timeval *tv)
{
	bool v6 = sa_af(src) == AF_INET6;
	size_t iphl = v6 ? 40 : 20;
	size_t caplen = 14 + iphl + 8 + len;
	uint8_t *e = buf + 16, *ip = e + 14, *udp = ip + iphl;

	le32(buf, (uint32_t)tv->tv_sec);
	le32(buf + 4, (uint32_t)tv->tv_usec);
	le32(buf + 8, (uint32_t)caplen);
	le32(buf + 12, (uint32_t)caplen);

	memset(e, 0, 12);
	put16(e + 12, v6 ? 0x86dd : 0x0800);
	if (v6) {
		memset(ip, 0, 40);
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)(8 + len));
		ip[6] = 17;
		ip[7] = 64;
		memcpy(ip + 8, &src->u.in6.sin6_addr, 16);
		memcpy(ip + 24, &dst->u.in6.sin6_addr, 16);
	}
	else {
		memset(ip, 0, 20);
		ip[0] = 0x45;
		put16(ip + 2, (uint16_t)(20 + 8 + len));
		ip[8] = 64;
		ip[9] = 17;
		memcpy(ip + 12, &src->u.in.sin_addr, 4);
		memcpy(ip + 16, &dst->u.in.sin_addr, 4);
		put16(ip + 10, ip4_csum(ip));
	}
	put16(udp, sa_port(src));
	put16(udp + 2, sa_port(dst));
	put16(udp + 4, (uint16_t)(8 + len));
	put16(udp + 6, 0);           /* no checksum: allowed over IPv4; the
				      * capture is not re-sent as is */
	return 16 + 14 + iphl + 8;
}
