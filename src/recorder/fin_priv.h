/*
 * fin_priv.h: what the parts of the finalizer share (finalize.h is the
 * public face). Not for users of finalize.h.
 *
 *   finalize.c  reads the capture, builds the timeline, runs the merge loop
 *   parties.c   who sends what: participants, their streams, file names
 *   outputs.c   the files of a run: made, begun, finished, listed
 *   timeline.c  one stream's RTP packets: SSRCs, order, loss, timing
 *   avsync.c    RTCP sender reports: audio and video of a party on one clock
 *   frames.c    a stream's packets through depack.h: frames with times
 *   audtrack.c  audio frames -> decoded, placed, resampled -> Opus + WAV
 *   vidtrack.c  video frames -> packets for the muxers (never transcoded)
 *   avout.c     one output file through libavformat (tmp, rename, sha256)
 *   wavout.c    stereo.wav
 *
 * Times: "session seconds" are seconds since the first packet of the
 * capture (double). A packet's presentation time is
 *     pts = ext_ts / clock + off
 * where off is the packet's offset (timeline.c, corrected by avsync.c).
 * The output timeline starts at the session's origin (the earliest pts).
 */
#ifndef TALLY_REC_FIN_PRIV_H
#define TALLY_REC_FIN_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sessfile.h"
#include "depack.h"

struct AVPacket;
struct AVCodecParameters;

enum {
	FIN_WAV_RATE  = 16000,   /* stereo.wav sample rate */
	FIN_OPUS_RATE = 48000,
	FIN_VIDEO_TB  = 90000,   /* video packet time base, 1/Hz */
};

enum fin_kind {
	FIN_MEDIA = 0,           /* a payload type of the stream's codec */
	FIN_TELEVENT,            /* RFC 4733 events: ignored, counted */
	FIN_OTHER,               /* CN, unknown or unusable payload type */
};

/* One RTP packet of a stream. */
struct fin_pkt {
	const uint8_t *payload;  /* inside the pcap mapping */
	uint32_t len;
	uint32_t ts;             /* RTP timestamp as sent */
	int64_t ext_ts;          /* extended (unwrapped) timestamp */
	int64_t ext_seq;         /* extended sequence number */
	double arr;              /* arrival, session seconds */
	double off;              /* pts = ext_ts / clock + off */
	uint32_t order;          /* arrival order in the stream */
	uint32_t seg;            /* timing segment (stream-wide number) */
	uint32_t clock;          /* RTP clock of its payload type */
	uint16_t grp;            /* SSRC group */
	uint8_t pt;
	uint8_t kind;            /* enum fin_kind */
	bool marker;
};

/* An RTCP sender report. */
struct fin_sr {
	uint32_t ssrc;
	double arr;              /* arrival, session seconds */
	double ntp;              /* sender's NTP time, unix seconds */
	uint32_t rtp_ts;
};

/* All packets of one SSRC: pkts[first .. first + n - 1], sequence order
 * (after fin_stream_order()). */
struct fin_grp {
	uint32_t ssrc;
	size_t first, n;
	double first_arr;
	int64_t max_seq;         /* while adding: highest extended seq */
	int64_t last_ts;         /* while adding: last extended timestamp */
};

struct fin_stream {
	const struct sf_stream *sfs;   /* borrowed from the session */
	size_t sidx;                   /* index in sf->streams */
	bool video;
	enum dp_codec codec;           /* main codec (the first usable) */

	struct fin_pkt *pkts;          /* after timeline: by group, seq */
	size_t npkts, cap;
	struct fin_grp *grps;
	size_t ngrps;
	struct fin_sr *srs;
	size_t nsrs, srcap;
	uint32_t nsegs;

	size_t nmedia;                 /* packets of kind FIN_MEDIA */
	double first_pts, end_pts;     /* session seconds */
	double sync_shift;             /* applied by avsync, s (for logs) */

	/* counters */
	uint64_t rtcp, duplicates, reordered, televent, other, malformed;
	uint64_t dp_bad, dp_lost_frames, decode_errors;
};

/* timeline.c */
int  fin_stream_add_rtp(struct fin_stream *fs, const uint8_t *p, size_t len,
			double arr);
int  fin_stream_add_rtcp(struct fin_stream *fs, const uint8_t *p, size_t len,
			 double arr);
int  fin_stream_order(struct fin_stream *fs);
void fin_stream_timing(struct fin_stream *fs);
void fin_stream_span(struct fin_stream *fs);
void fin_stream_reset(struct fin_stream *fs);
uint32_t fin_clock_of(const struct fin_stream *fs, uint8_t pt,
		      enum dp_codec *codec);

/* avsync.c: align the video streams of one party to its audio stream */
void fin_avsync(struct fin_stream *audio, struct fin_stream **video,
		size_t nvideo, const char *id);

/* frames.c: the frames of one stream, in group and sequence order */
struct fin_frame {
	const uint8_t *data;     /* valid until the next fin_src_next() */
	size_t len;
	double pts;              /* session seconds */
	enum dp_codec codec;
	uint32_t clock;
	int64_t ext_ts;
	bool keyframe;
	int width, height;
};
struct fin_src;
int  fin_src_alloc(struct fin_src **srcp, struct fin_stream *fs);
int  fin_src_next(struct fin_src *src, struct fin_frame *f);

/* audtrack.c */
struct fin_atrack;
struct fin_wav;
int  fin_atrack_alloc(struct fin_atrack **atp, struct fin_stream *fs,
		      double origin);
void fin_atrack_wav(struct fin_atrack *at, struct fin_wav *wav, int chan);
const struct AVCodecParameters *fin_atrack_par(const struct fin_atrack *at);
int  fin_atrack_next(struct fin_atrack *at, struct AVPacket *pkt);

/* vidtrack.c */
struct fin_vtrack;
int  fin_vtrack_alloc(struct fin_vtrack **vtp, struct fin_stream *fs,
		      double origin);
const struct AVCodecParameters *fin_vtrack_par(const struct fin_vtrack *vt);
int  fin_vtrack_next(struct fin_vtrack *vt, struct AVPacket *pkt);
uint64_t fin_vtrack_frames(const struct fin_vtrack *vt);

/* avout.c */
struct fin_out;
int  fin_averr(int averr);
int  fin_out_alloc(struct fin_out **outp, const char *dir, const char *name,
		   const char *format);
int  fin_out_add(struct fin_out *out, const struct AVCodecParameters *par,
		 int tb_den, const char *title, int *index);
int  fin_out_begin(struct fin_out *out);
int  fin_out_write(struct fin_out *out, int index, struct AVPacket *pkt,
		   int tb_den);
int  fin_out_finish(struct fin_out *out, uint64_t *size, char *sha256);
const char *fin_out_name(const struct fin_out *out);
int  fin_file_sha256(const char *path, uint64_t *size, char *hex);
int  fin_fsync_path(const char *path);

/* wavout.c */
int  fin_wav_alloc(struct fin_wav **wp, const char *dir, const char *name,
		   int rate);
void fin_wav_start(struct fin_wav *w, int chan, int64_t pos);
int  fin_wav_put(struct fin_wav *w, int chan, const int16_t *s, size_t n);
void fin_wav_end(struct fin_wav *w, int chan);
int  fin_wav_finish(struct fin_wav *w, int64_t length, uint64_t *size,
		    char *sha256);

/* --- one finalize run (finalize.c, parties.c, outputs.c) --- */

enum {
	FIN_NAME_MAX = 40,                        /* file name base */
	FIN_PARTY_FILES = SF_STREAMS_MAX - 2,     /* + tracks + stereo */
};

/* A party: a participant and the streams it sends; its file. */
struct fin_party {
	const char *id;                  /* participant id, "" without */
	char base[FIN_NAME_MAX + 8];    /* file name without extension */
	struct fin_stream *st[SF_STREAMS_MAX];
	size_t nst;
	struct fin_out *out;
};

/* A track: one stream on its way to the files; its next packet. */
struct fin_track {
	struct fin_stream *fs;
	struct fin_atrack *at;           /* audio, or */
	struct fin_vtrack *vt;           /* video */
	int tb;                          /* packet time base 1/tb */
	struct AVPacket *pkt;            /* next packet */
	bool have;
	struct {
		struct fin_out *out;
		int index;
	} dst[2];
	size_t ndst;
};

/* The run: owns everything (a mem object, see finalize.c). */
struct fin_run {
	const char *dir;
	struct sessfile *sf;
	struct pcapr *cap;
	struct fin_stream st[SF_STREAMS_MAX];
	size_t nst;
	struct fin_party party[SF_PARTS_MAX + SF_STREAMS_MAX];
	size_t nparty;
	struct fin_track tr[SF_STREAMS_MAX];
	size_t ntr;
	struct fin_out *mkv;             /* tracks.mkv */
	struct fin_wav *wav;             /* stereo.wav, NULL if no audio */
	double origin, length;           /* session s; s */
	uint64_t packets, rtcp;
};

/* parties.c */
void fin_parties(struct fin_run *run);
bool fin_claimed(const struct fin_run *run, const struct fin_stream *fs);

/* outputs.c */
struct fin_track *fin_track_of(struct fin_run *run,
			       const struct fin_stream *fs);
int  fin_outputs_make(struct fin_run *run);
int  fin_outputs_begin(struct fin_run *run, char *what, size_t size);
int  fin_outputs_finish(struct fin_run *run, char *what, size_t size);

#endif
