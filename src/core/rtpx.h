/*
 * rtpx.h: the few RTP/RTCP facts the packet path needs, as inline checks on
 * raw bytes (no parsing into structs, no allocation), plus builders for the
 * RTCP feedback messages tally sends itself.
 *
 * RFC 3550 fixed header: byte 0 = V(2) P X CC(4), byte 1 = M PT(7),
 * bytes 2-3 sequence, 4-7 timestamp, 8-11 SSRC.
 * RFC 5761 demultiplexing on one port: RTCP packet types 192-223 occupy the
 * second byte, i.e. (byte1 & 0x7f) in 64..95; RTP payload types never do.
 * RFC 4585 PSFB (PT 206): FMT 1 = PLI, FMT 4 = FIR (RFC 5104).
 */
#ifndef TALLY_RTPX_H
#define TALLY_RTPX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { RTPX_HDR = 12, RTCPX_HDR = 8, RTPX_RR_LEN = 8, RTPX_PLI_LEN = 12,
       RTPX_FIR_LEN = 20 };

static inline uint16_t rtpx_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t rtpx_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

/* Version 2 and long enough to carry an RTP or RTCP header. */
static inline bool rtpx_valid(const uint8_t *p, size_t len)
{
	return len >= RTCPX_HDR && (p[0] >> 6) == 2;
}

/* On a muxed port: is this RTCP? (RFC 5761 section 4) */
static inline bool rtpx_is_rtcp(const uint8_t *p, size_t len)
{
	uint8_t pt = p[1] & 0x7f;
	return len >= RTCPX_HDR && pt >= 64 && pt <= 95;
}

static inline uint16_t rtpx_seq(const uint8_t *p)  { return rtpx_be16(p + 2); }
static inline uint32_t rtpx_ssrc(const uint8_t *p) { return rtpx_be32(p + 8); }

/* Walk a compound RTCP packet: true if it holds a PLI or FIR. */
bool rtpx_rtcp_has_keyframe_req(const uint8_t *p, size_t len);
/* First SSRC of a compound RTCP packet's sender (the first packet's SSRC). */
bool rtpx_rtcp_sender(const uint8_t *p, size_t len, uint32_t *ssrc);

/* Write an empty receiver report (8 bytes): the head RFC 3550 6.1 requires
 * of a compound packet that carries feedback. Returns length. */
size_t rtpx_build_rr(uint8_t *buf, uint32_t sender_ssrc);
/* Write a PLI (12 bytes) asking MEDIA_SSRC for a keyframe; returns length. */
size_t rtpx_build_pli(uint8_t *buf, uint32_t sender_ssrc, uint32_t media_ssrc);
/* Write a FIR (20 bytes) with command sequence number SEQ; returns length. */
size_t rtpx_build_fir(uint8_t *buf, uint32_t sender_ssrc, uint32_t media_ssrc,
		      uint8_t seq);

#endif
