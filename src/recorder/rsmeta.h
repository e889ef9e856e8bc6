/*
 * rsmeta.h: SIPREC recording metadata (RFC 7865), parsed with libxml2, kept
 * for the life of a recording session. A "complete" document replaces what
 * is known; a "partial" one is applied on top (RFC 7865 s6: elements with
 * the same id are updated, new ones added, disassociations recorded).
 *
 * The model is what the recorder needs: participants (id, AOR, name), the
 * streams (id -> SDP label), which streams each participant sends and
 * receives, and when participants leave. Unknown elements and other
 * namespaces (call-center, vendor data) are tolerated and ignored.
 */
#ifndef TALLY_REC_RSMETA_H
#define TALLY_REC_RSMETA_H

#include <stdbool.h>
#include <stddef.h>
#include "sessfile.h"

struct rsm_stream {
	char id[SF_ID_MAX];          /* stream_id */
	char label[SF_ID_MAX];       /* SDP a=label it refers to */
	char session[SF_ID_MAX];     /* session_id, "" if not given */
};

struct rsm_participant {
	char id[SF_ID_MAX];          /* participant_id */
	char aor[SF_TEXT_MAX];       /* nameID aor */
	char name[SF_TEXT_MAX];      /* nameID/name text */
	char send[SF_REFS_MAX][SF_ID_MAX];   /* stream_ids it sends */
	size_t nsend;
	char recv[SF_REFS_MAX][SF_ID_MAX];   /* stream_ids it receives */
	size_t nrecv;
	bool left;                   /* disassociated from the session */
	char left_time[SF_ID_MAX];   /* disassociate-time, "" if none */
	/* session_ids it is associated with (participantsessionassoc);
	 * left becomes true when the last one is disassociated */
	char sessions[SF_REFS_MAX][SF_ID_MAX];
	size_t nsessions;
};

struct rsmeta {
	char session_id[SF_ID_MAX];  /* the CS session_id, "" if none */
	char sip_session_id[SF_TEXT_MAX];  /* sipSessionID text */
	struct rsm_participant parts[SF_PARTS_MAX];
	size_t nparts;
	struct rsm_stream streams[SF_STREAMS_MAX * 2];
	size_t nstreams;
	unsigned updates;            /* documents applied */
};

/*
 * Apply the metadata document XML (LEN bytes) to M (zeroed by the caller
 * before the first document). Returns 0, or EBADMSG with *WHY a static
 * phrase for a SIP reason: "metadata: not well-formed XML", "metadata: root
 * is not <recording>", "metadata: partial update before any complete
 * document" (tolerated: applied as complete, returns 0), ... On error M is
 * unchanged. On success *WHY is NULL, or a warning like the one above.
 * No network access, no DTD loading, entity expansion off (a document
 * with a DTD is refused). Call from one thread at a time per M.
 */
int rsmeta_apply(struct rsmeta *m, const char *xml, size_t len,
		 const char **why);

/* The label of stream id SID, or NULL. */
const char *rsmeta_label(const struct rsmeta *m, const char *sid);

/*
 * Check the metadata against the offered SDP labels (LABELS, N of them):
 * every stream's label must be in the SDP. 0, or EBADMSG with *WHY
 * ("metadata: stream label not in SDP"). A participant's send/recv that
 * names an unknown stream_id is also EBADMSG.
 */
int rsmeta_check(const struct rsmeta *m, const char *const *labels, size_t n,
		 const char **why);

/* Fill SF's participants from M, send/recv as SDP labels (what
 * session.json stores), and set SF's has_metadata. Stream ids that name no
 * known stream are left out (rsmeta_check reports them). */
void rsmeta_to_sessfile(const struct rsmeta *m, struct sessfile *sf);

#endif
