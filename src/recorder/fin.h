/*
 * fin.h: the finalizer's private structs (fin_capture.c, fin_audio.c,
 * fin_out.c, fin_session.c). The public entry is finalize.h.
 *
 *   capture (media.pcap, mmap'd)
 *     -> fin_capture: packets per stream, sorted per SSRC run, duplicates
 *        dropped, each run's RTP clock anchored on the session timeline
 *     -> fin_audio: frames decoded, resampled and laid on a PCM timeline
 *        (silence where nothing came), then Opus-encoded once per stream
 *     -> fin_out: video frames (depack.h) and Opus packets muxed into the
 *        per-participant file, tracks.mkv; the PCM timelines into
 *        stereo.wav
 */
#ifndef TALLY_REC_FIN_H
#define TALLY_REC_FIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sessfile.h"
#include "finalize.h"

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

struct fin_pkt {
	double arrival;          /* s since the timeline origin */
	const uint8_t *payload;  /* into the mapped capture */
	uint32_t len;
	uint32_t ts;
	uint32_t ssrc;
	uint64_t xseq;           /* extended sequence number */
	uint8_t pt;
	bool marker;
	bool lost_before;        /* gap in xseq before it (after sorting) */
	double t;                /* presentation time, s on the timeline */
};

struct fin_sr {                  /* RTCP sender report */
	uint32_t ssrc;
	double ntp;              /* s */
	uint32_t rtp;
};

struct fin_stream {
	const struct sf_stream *sf;
	size_t index;
	bool video;
	struct fin_pkt *pkts;    /* after assembly: presentation order */
	size_t npkts, cap;
	struct fin_sr *srs;
	size_t nsrs, srcap;
	double first, last;      /* timeline s of first/last packet */
	/* audio: the decoded timeline, mono s16 at fin_capture.rate */
	int16_t *pcm;
	size_t nsamples;
	/* audio: Opus packets (encoded once, muxed into every file) */
	struct fin_apkt *apkts;
	size_t napkts;
	int opus_delay;          /* encoder pre-skip, samples at 48 kHz */
	uint8_t *opus_extradata;
	int opus_extradata_len;
};

struct fin_apkt {
	uint8_t *data;
	int size;
	int64_t pts;             /* samples at 48 kHz */
	int duration;
};

struct fin_capture {
	const struct sessfile *sf;
	uint8_t *map;            /* the capture file */
	size_t maplen;
	double origin;           /* unix time of the first packet */
	double length;           /* s: timeline length */
	int rate;                /* audio timeline rate, Hz */
	struct fin_stream st[SF_STREAMS_MAX];
	size_t nst;
	struct fin_stats *stats;
};

/* fin_capture.c */
int  fin_capture_read(struct fin_capture *c, const char *dir,
		      const struct sessfile *sf, struct fin_stats *stats,
		      char *reason, size_t rsize);
void fin_capture_free(struct fin_capture *c);
const struct sf_codec *fin_codec(const struct fin_stream *s, uint8_t pt);

/* fin_audio.c */
int  fin_audio_timeline(struct fin_capture *c, struct fin_stream *s);
int  fin_audio_encode(struct fin_capture *c, struct fin_stream *s);

/* fin_out.c */
struct fin_track {               /* what one output file holds */
	struct fin_stream *audio;    /* may be NULL */
	struct fin_stream *video;    /* may be NULL */
};
int fin_out_av(struct fin_capture *c, const char *path, const char *format,
	       const struct fin_track *tracks, size_t ntracks,
	       char *reason, size_t rsize);
int fin_out_wav(struct fin_capture *c, const char *path,
		struct fin_stream *left, struct fin_stream *right);
int fin_sha256_file(const char *path, char hex[65], uint64_t *size);

#endif
