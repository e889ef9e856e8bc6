/*
 * sessfile.h: session.json, the description of one recording session that
 * lives in the session's folder beside media.pcap (format:
 * docs/recording-format.md). The daemon writes it (atomically: tmp + fsync +
 * rename) on every change; the finalizer, the catalog and recovery read it.
 *
 * Plain C structs with fixed-size strings, no libre mem objects, so any
 * thread may use them (the finalizer runs in its own thread).
 */
#ifndef TALLY_REC_SESSFILE_H
#define TALLY_REC_SESSFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	SF_ID_MAX      = 64,     /* ids, labels, codec names */
	SF_TEXT_MAX    = 256,    /* AORs, names, call ids, reasons */
	SF_FMTP_MAX    = 512,
	SF_STREAMS_MAX = 16,     /* m= lines per session (more: 488) */
	SF_CODECS_MAX  = 8,      /* payload types kept per stream */
	SF_PARTS_MAX   = 16,     /* participants per session */
	SF_REFS_MAX    = 16,     /* send/recv labels per participant */
};

enum sf_state {
	SF_RECORDING = 0,        /* media may still arrive */
	SF_FINALIZING,           /* session over, files being made */
	SF_COMPLETE,             /* files made, listed in "files" */
	SF_FAILED,               /* see reason */
};

struct sf_codec {
	int pt;                          /* RTP payload type */
	char name[SF_ID_MAX];            /* "PCMU", "H264", "telephone-event" */
	uint32_t clock;                  /* RTP clock rate, Hz */
	int channels;                    /* 1 unless the rtpmap says more */
	char fmtp[SF_FMTP_MAX];          /* a=fmtp parameters, "" if none */
};

struct sf_stream {
	int index;                       /* m= line position, 0-based */
	char label[SF_ID_MAX];           /* a=label, "" if the SDP had none */
	char media[SF_ID_MAX];           /* "audio" or "video" */
	bool accepted;                   /* false: answered with port 0 */
	char refused[SF_TEXT_MAX];       /* why not accepted ("policy", ...) */
	uint16_t port;                   /* our RTP port (0 if refused) */
	uint16_t rtcp_port;              /* our RTCP port (== port if rtcp-mux) */
	struct sf_codec codecs[SF_CODECS_MAX];
	size_t ncodecs;
	double opened;                   /* unix time, s */
	double closed;                   /* unix time, 0 while open */
};

struct sf_participant {
	char id[SF_ID_MAX];              /* metadata participant_id */
	char aor[SF_TEXT_MAX];           /* nameID aor, "" if none */
	char name[SF_TEXT_MAX];          /* display name, "" if none */
	char send[SF_REFS_MAX][SF_ID_MAX];  /* labels of streams it sends */
	size_t nsend;
	char recv[SF_REFS_MAX][SF_ID_MAX];  /* labels of streams it receives */
	size_t nrecv;
	bool left;                       /* disassociated (RFC 7865) */
	char left_time[SF_ID_MAX];       /* its disassociate-time, "" if none */
};

struct sf_file {
	char name[SF_ID_MAX];            /* file name inside the folder */
	char kind[SF_ID_MAX];            /* "participant", "tracks", "stereo" */
	char participant[SF_ID_MAX];     /* participant id, "" if not one */
	uint64_t size;                   /* bytes */
	char sha256[65];                 /* lowercase hex */
};

struct sessfile {
	int version;                     /* 1 */
	char id[SF_ID_MAX];              /* recording id == folder name */
	char call_id[SF_TEXT_MAX];       /* SIP Call-ID of the recording session */
	char session_id[SF_TEXT_MAX];    /* metadata session_id or Session-ID */
	char src[SF_TEXT_MAX];           /* From URI of the SRC */
	enum sf_state state;
	char reason[SF_TEXT_MAX];        /* why failed, "" otherwise */
	double started;                  /* unix time of the first 200 OK */
	double stopped;                  /* unix time of BYE/timeout, 0 before */
	bool has_metadata;               /* false: mapping unknown */
	struct sf_stream streams[SF_STREAMS_MAX];
	size_t nstreams;
	struct sf_participant parts[SF_PARTS_MAX];
	size_t nparts;
	struct sf_file files[SF_STREAMS_MAX];
	size_t nfiles;
};

/* Read DIR/session.json into SF (zeroed first). 0, ENOENT if missing,
 * EBADMSG if it does not parse, or another errno. */
int sessfile_load(const char *dir, struct sessfile *sf);

/* Write SF to DIR/session.json atomically (DIR/session.json.tmp, fsync,
 * rename), so a reader or a crash sees the old or the new file, never half. */
int sessfile_save(const char *dir, const struct sessfile *sf);

const char *sf_state_name(enum sf_state st);
/* "recording" etc. -> state; -1 if unknown */
int sf_state_parse(const char *name);

/* The stream with LABEL, or NULL. */
const struct sf_stream *sessfile_stream(const struct sessfile *sf,
					const char *label);

#endif
