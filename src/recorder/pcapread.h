/*
 * pcapread.h: read UDP datagrams back out of a classic pcap file (the
 * session's media.pcap, or any capture from tcpdump/dumpcap/mkrtp.py).
 *
 * Classic pcap only (not pcapng), either byte order, microsecond or
 * nanosecond timestamps. Link types: Ethernet (1, with 802.1Q tags), raw IP
 * (101, and the BSD values 12/14), Linux cooked v1 (113) and v2 (276), BSD
 * loopback (0). IPv4 and IPv6 (extension headers skipped), UDP only; IP
 * fragments and everything else are skipped and counted. A truncated last
 * record (the writer crashed mid-write) ends the file quietly.
 *
 * The file is mapped read-only; payload pointers stay valid until the
 * reader is freed. Not thread-safe per object; no globals.
 */
#ifndef TALLY_REC_PCAPREAD_H
#define TALLY_REC_PCAPREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pcapr;

/* One UDP datagram. Addresses are raw network-order bytes: 4 used for
 * IPv4, 16 for IPv6. */
struct pcapr_pkt {
	int64_t time_us;          /* record timestamp, unix microseconds */
	int family;               /* AF_INET or AF_INET6 */
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	const uint8_t *data;      /* UDP payload, inside the mapping */
	size_t len;
};

struct pcapr_stats {
	uint64_t records;         /* records read (whole ones) */
	uint64_t udp;             /* UDP datagrams returned */
	uint64_t skipped;         /* not IP/UDP, fragments, malformed */
	bool truncated;           /* the last record was cut short */
	bool corrupt;             /* a record header made no sense: stopped */
};

/*
 * Open PATH. 0, ENOENT, EBADMSG (not a classic pcap, or a link type we do
 * not read), or another errno. A file shorter than the 24-byte header
 * (created, nothing written yet) opens as an empty capture.
 * Free with pcapr_free().
 */
int pcapr_open(struct pcapr **rp, const char *path);
void pcapr_free(struct pcapr *r);

/* The next UDP datagram: 0, or ENOENT at the end of the capture. */
int pcapr_next(struct pcapr *r, struct pcapr_pkt *pkt);

/* Back to the first record (a second pass over the capture). */
void pcapr_rewind(struct pcapr *r);

int pcapr_linktype(const struct pcapr *r);
const struct pcapr_stats *pcapr_stats(const struct pcapr *r);

#endif
