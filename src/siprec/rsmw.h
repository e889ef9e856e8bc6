/*
 * rsmw.h: writing SIPREC recording metadata (RFC 7865), the recording
 * client's side of what src/recorder/rsmeta.c reads.
 *
 * The SRC keeps one struct rsmw_doc per recording session for the life of
 * the session and writes it whole (datamode complete: the INVITE) or as a
 * partial update (a re-INVITE: pause, resume, a participant replaced, a
 * stream added). IDs are base64 of 16 random bytes (RFC 7865 s6: unique,
 * xs:base64Binary), made once by rsmw_newid() and kept: a partial update
 * refers to the same participants and streams by the same ids.
 *
 * Worked example (a call alice -> bob, recorded audio+video, one session):
 *   session S, participants P1 (sip:alice@tally, "Alice", DN 1001) and P2,
 *   streams T1..T4 with labels 1..4 (the SDP's a=label), P1 sends T1, T2
 *   and receives T3, T4; P2 the other way round. rsmw_write() gives
 *     <recording xmlns='urn:ietf:params:xml:ns:recording:1'>
 *       <datamode>complete</datamode>
 *       <group group_id="G"><associate-time>...</associate-time></group>
 *       <session session_id="S"><sipSessionID>...</sipSessionID>
 *         <group-ref>G</group-ref><start-time>...</start-time>
 *         <tally:callid xmlns:tally="urn:x-tally:recording:1">the
 *           recorded call's Call-ID</tally:callid></session>
 *       <participant participant_id="P1"><nameID aor="sip:alice@tally">
 *         <name>Alice</name></nameID><tally:dn>1001</tally:dn></participant>
 *       ... <stream stream_id="T1" session_id="S"><label>1</label></stream>
 *       ... <sessionrecordingassoc>, <participantsessionassoc>,
 *       <participantstreamassoc participant_id="P1"><send>T1</send>...
 *     </recording>
 * which validates against RFC 7865's schema (tests/unit/test_rsmw.c).
 */
#ifndef TALLY_SIPREC_RSMW_H
#define TALLY_SIPREC_RSMW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <re.h>

enum {
	RSMW_ID_LEN = 25,        /* base64 of 16 bytes + NUL */
	RSMW_MAX_PARTS = 8,
	RSMW_MAX_STREAMS = 16,
};

/* The namespace of tally's extension elements (DN, recorded Call-ID). */
#define RSMW_TALLY_NS "urn:x-tally:recording:1"

struct rsmw_stream {
	char id[RSMW_ID_LEN];
	char label[16];              /* the a=label of its m= line */
};

struct rsmw_party {
	char id[RSMW_ID_LEN];
	char aor[256];               /* required: a URI (sip:, sips:, tel:) */
	char name[128];              /* display name, "" for none */
	char dn[64];                 /* directory number / extension, "" */
	uint8_t send[RSMW_MAX_STREAMS];   /* indexes into doc.streams */
	size_t nsend;
	uint8_t recv[RSMW_MAX_STREAMS];
	size_t nrecv;
	uint64_t assoc;              /* unix s it joined the session, 0: none */
	uint64_t disassoc;           /* unix s it left, 0: still there */
};

struct rsmw_doc {
	bool partial;                /* datamode partial (a re-INVITE) */
	char group_id[RSMW_ID_LEN];  /* "" for no <group> */
	char session_id[RSMW_ID_LEN];
	char sip_session_id[160];    /* RFC 7989 Session-ID of the CS, "" */
	char callid[256];            /* the recorded call's Call-ID, "" */
	uint64_t start;              /* unix s, 0: not written */
	uint64_t stop;               /* unix s the CS ended, 0: not yet */
	struct rsmw_party parts[RSMW_MAX_PARTS];
	size_t nparts;
	struct rsmw_stream streams[RSMW_MAX_STREAMS];
	size_t nstreams;
};

/* A new id: 16 random bytes (libre's rand_bytes), base64. */
void rsmw_newid(char id[RSMW_ID_LEN]);

/*
 * Append DOC as an XML document to MB. Returns 0; EINVAL if DOC breaks the
 * schema (no session id, a participant without AOR, a send/recv index out
 * of range, a field that is not UTF-8); ENOMEM. MB is unchanged on error.
 */
int rsmw_write(struct mbuf *mb, const struct rsmw_doc *doc);

#endif
