/*
 * rtpx.c: RTCP walking and feedback builders (see rtpx.h).
 */
#include <string.h>
#include "rtpx.h"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

bool rtpx_rtcp_has_keyframe_req(const uint8_t *p, size_t len)
{
	while (len >= 4) {
		size_t plen = ((size_t)rtpx_be16(p + 2) + 1) * 4;
		uint8_t fmt = p[0] & 0x1f, pt = p[1];

		if ((p[0] >> 6) != 2 || plen > len)
			return false;
		if (pt == 206 && (fmt == 1 || fmt == 4))
			return true;
		p += plen;
		len -= plen;
	}
	return false;
}

bool rtpx_rtcp_sender(const uint8_t *p, size_t len, uint32_t *ssrc)
{
	if (len < 8 || (p[0] >> 6) != 2)
		return false;
	*ssrc = rtpx_be32(p + 4);
	return true;
}

size_t rtpx_build_rr(uint8_t *buf, uint32_t sender_ssrc)
{
	buf[0] = 0x80;          /* V=2, no report blocks */
	buf[1] = 201;           /* RR */
	buf[2] = 0;
	buf[3] = 1;
	put32(buf + 4, sender_ssrc);
	return RTPX_RR_LEN;
}

size_t rtpx_build_pli(uint8_t *buf, uint32_t sender_ssrc, uint32_t media_ssrc)
{
	buf[0] = 0x80 | 1;      /* V=2, FMT=1 */
	buf[1] = 206;           /* PSFB */
	buf[2] = 0;
	buf[3] = 2;             /* length in words - 1 */
	put32(buf + 4, sender_ssrc);
	put32(buf + 8, media_ssrc);
	return RTPX_PLI_LEN;
}

size_t rtpx_build_fir(uint8_t *buf, uint32_t sender_ssrc, uint32_t media_ssrc,
		      uint8_t seq)
{
	buf[0] = 0x80 | 4;      /* V=2, FMT=4 */
	buf[1] = 206;
	buf[2] = 0;
	buf[3] = 4;
	put32(buf + 4, sender_ssrc);
	put32(buf + 8, 0);      /* media source SSRC unused in FIR */
	put32(buf + 12, media_ssrc);
	buf[16] = seq;
	memset(buf + 17, 0, 3);
	return RTPX_FIR_LEN;
}
