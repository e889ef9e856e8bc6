/*
 * rec.h: tally-sip as the recording client (SRC, RFC 7866): recordings of
 * calls, their SIPREC sessions to a recorder (SRS), and the ng
 * subscriptions on the call's media server that feed them.
 *
 *   struct recs (one per process, main.c)
 *     +- struct recording (active, then a bounded list of ended ones)
 *          +- struct ngc_req     pending ng step (subscribe request/answer)
 *          +- struct srcsess     the SIPREC dialog with the recorder
 *          +- struct bcall       borrowed while the call lives (the
 *                                b2bua's end hook clears it)
 *          +- struct mediasrv    borrowed (the pool outlives recs)
 *
 * One recording is one SIPREC session for both parties of a call: up to
 * four m= lines (each party's audio, and with audio+video each party's
 * video). Mode "per-party" starts two recordings, twins, each with one
 * party's send streams (ng from-tags [that party]); the API acts on both
 * for DELETE, pause, resume and media. The signalling path, worked
 * example (call c1-ab, alice -> bob):
 *
 *   POST /api/v1/recordings {"call":"c1-ab","media":"audio+video"}
 *   ng "subscribe request" call-id, from-tags [alice's, bob's], media
 *      -> offer SDP (4 m= lines, a=label 1..4, sendonly), to-tag, streams
 *   INVITE sip:srs@rec  Require: siprec, Contact ...;+sip.src,
 *      multipart/mixed: the offer + rs-metadata (rsmw.c) naming alice and
 *      bob, every label mapped to its sender (send) and the other (recv)
 *   200 OK (the recorder's SDP)  -> ACK
 *   ng "subscribe answer" to-tag, the recorder's SDP
 *      -> accepted [1,3], rejected [2,4]
 *   events recording.audio.started, recording.video.rejected
 *   ... the call ends (bcall_end -> recs_call_end): BYE, ng "unsubscribe",
 *   recording.audio.stopped.
 *
 * Per medium (audio, video) a recording has its own state:
 *   requested -> offered -> started <-> paused
 *                        \-> rejected (every stream of it answered port 0)
 *   started, paused -> stopped; any state before stopped -> failed
 *   (recorder unreachable or refusing, media server error, the recorder
 *   ended the session)
 * Every transition into started, rejected, stopped or failed is one event,
 * "recording.<medium>.<state>"; started -> paused is ".paused", paused ->
 * started ".resumed". Audio's before video's, in order per recording. A
 * medium that was not requested has no state and no events. Video added
 * to a running recording (rec_media) goes offered -> started (or
 * rejected, failed) again; dropped, it is stopped.
 *
 * Changes of a running recording (recmod.c) are re-INVITEs of the same
 * SIPREC session, one at a time (rec->mod): pause and resume (every m=
 * line a=inactive, then a=sendonly again), video added (ng "subscribe
 * request" with flag add first: new m= lines after the old ones) or
 * dropped (port 0 on its lines: RFC 3264 never removes a line). Each
 * carries partial metadata (the same ids); the recorder's answer goes to
 * the media server ("subscribe answer" again), whose reply says what is
 * copied now, and only then come the events.
 */
#ifndef TALLY_SIP_REC_H
#define TALLY_SIP_REC_H

#include "sipd.h"

enum {
	REC_MAX_STREAMS = 8,
	REC_MAX_RECORDERS = 8,
	REC_URI_MAX = 256,
	REC_REASON_MAX = 160,
	REC_ENDED_KEEP = 100,         /* ended recordings GET can still show */
};

enum rec_medium { REC_AUDIO = 0, REC_VIDEO, REC_NMEDIA };

enum rec_mstate {
	RM_NONE = 0,                  /* not requested */
	RM_REQUESTED,
	RM_OFFERED,
	RM_STARTED,
	RM_PAUSED,                    /* started, paused by the API */
	RM_REJECTED,
	RM_STOPPED,
	RM_FAILED,
};

enum rec_state {
	REC_SUBSCRIBING = 0,          /* ng subscribe request in flight */
	REC_INVITING,                 /* INVITE to the recorder, no answer yet */
	REC_ANSWERING,                /* 2xx ACKed, ng subscribe answer in flight */
	REC_ACTIVE,
	REC_ENDED,
};

/* One m= line of the subscription's offer (ng reply "streams"). */
struct rec_stream {
	unsigned label;
	char from_tag[64];
	char type[16];                /* "audio", "video" */
	unsigned index;               /* 1-based m= line of that party's SDP */
	bool caller;                  /* sent by the caller (else the callee) */
	enum { RS_OFFERED = 0, RS_ACCEPTED, RS_REJECTED } st;
};

/* Whose streams a SIPREC session carries. Mode "per-party" makes two
 * recordings, one per party, each the other's twin: one session with the
 * caller's send streams (metadata: the caller sends them, the callee
 * receives them), one with the callee's. */
enum rec_party { REC_BOTH = 0, REC_CALLER, REC_CALLEE };

/* What a start asks for (API, static policy). */
struct rec_req {
	bool video;                   /* audio+video, else audio */
	bool per_party;               /* two sessions, else one for both */
	const char *recorder;         /* NULL: the configured list */
};

/* The change of a running recording in flight (one at a time). */
enum rec_mod {
	RMOD_NONE = 0,
	RMOD_PAUSE,
	RMOD_RESUME,
	RMOD_VIDEO_ADD,               /* ng subscribe request (add),
				       * then the re-INVITE */
	RMOD_VIDEO_DROP,
};

struct recs;
struct srcsess;
struct rsmw_doc;

struct recording {
	struct le le;                 /* in recs.active or recs.ended */
	struct recs *recs;            /* borrowed: owner */
	char id[40];                  /* "r3-1a2b3c" (API) */
	char call[40];                /* tally's call id */
	char callid[256];             /* the recorded call's Call-ID */
	struct bcall *bc;             /* borrowed while the call lives */
	struct mediasrv *ms;          /* borrowed */
	bool video;                   /* audio+video requested */
	enum rec_party party;
	struct recording *twin;       /* borrowed: the other party's session
				       * (per-party); each clears the other's
				       * pointer when it goes */
	enum rec_state state;
	enum rec_mstate mst[REC_NMEDIA];
	char mreason[REC_NMEDIA][REC_REASON_MAX];
	/* recorders to try, in order; cur is the one in use */
	char recorders[REC_MAX_RECORDERS][REC_URI_MAX];
	unsigned nrecorders, cur;
	uint32_t timeout_ms;          /* for the recorder's answers */
	char siprec_callid[128];      /* the SIPREC dialog's Call-ID */
	char to_tag[64];              /* the subscription on the media server */
	struct rec_stream streams[REC_MAX_STREAMS];
	size_t nstreams;
	struct mbuf *body;            /* the last (re-)INVITE's body */
	char boundary[48];
	struct mbuf *offer;           /* the media server's latest offer */
	char origin[96];              /* "<user> <sess-id>" of our first o= */
	uint32_t sdp_ver;             /* o= version of the last offer */
	struct rsmw_doc *doc;         /* the session's metadata (same ids in
				       * every partial update) */
	bool paused;                  /* every line a=inactive */
	enum rec_mod mod;             /* change in flight */
	char moderr[REC_REASON_MAX];  /* why the last change failed, "" */
	char reason[REC_REASON_MAX];  /* why it ended */
	uint64_t created, answered, ended;   /* unix ms */
	struct ngc_req *ng;
	struct srcsess *ss;           /* owned */
};

/* Events: TYPE "recording.audio.started" etc.; REASON NULL or a sentence;
 * REC valid only during the call. */
typedef void (rec_event_h)(const char *type, const struct recording *rec,
			   enum rec_medium m, const char *reason, void *arg);

struct recs_params {
	struct sip *sip;              /* borrowed */
	struct b2bua *b2bua;          /* borrowed */
	const char *recorders;        /* "sip:a,sip:b" (config), may be "" */
	uint32_t timeout_ms;          /* INVITE without final answer */
	const char *record;           /* the record policy lines, may be "" */
	uint32_t probe_ms;            /* OPTIONS to the recorders, 0: never */
};

/* rec.c */
int  recs_alloc(struct recs **rsp, const struct recs_params *p);
void recs_events(struct recs *rs, rec_event_h *eh, void *arg);
/* End every recording (BYE, unsubscribe, events): before the API goes. */
void recs_shutdown(struct recs *rs);
/* Start recording CALL (answered) as REQ says. 0 and *RECP (borrowed;
 * per-party: the caller's session, rec->twin the callee's); EEXIST with
 * *RECP the call's active recording; ENOENT: no recorder configured;
 * EINVAL: bad recorder URI; EAGAIN: call not answered; ENOMEM. */
int  rec_start(struct recs *rs, struct bcall *call, const struct rec_req *req,
	       struct recording **recp);
const char *rec_party_name(enum rec_party party);
/* Stop REC (API): BYE, unsubscribe, .stopped events. */
void rec_stop(struct recording *rec, const char *reason);
/* recmod.c: changes of a running recording (see the banner). 0: the
 * re-INVITE is on its way (events follow), or nothing to change (media
 * as it is); ESRCH: REC has ended; EBUSY: not started yet or another
 * change in flight; EALREADY: paused already (pause), not paused
 * (resume); ENOMEM or a SIP errno. */
int  rec_pause(struct recording *rec);
int  rec_resume(struct recording *rec);
int  rec_media(struct recording *rec, bool video);
const char *rec_mod_name(enum rec_mod mod);
struct recording *recs_find(const struct recs *rs, const char *id);
struct recording *recs_find_call(const struct recs *rs, const char *call);
const struct list *recs_active(const struct recs *rs);
/* The b2bua's end hook: every recording of CALL stops ("call ended"). */
void recs_call_end(struct bcall *call, void *arg);
/* The b2bua's answer hook: the record policy may start a recording. */
void recs_call_answered(struct bcall *call, void *arg);
/* In-dialog requests and stray 2xx from recorders (main.c): true if MSG
 * belonged to a recording. */
bool recs_request(struct recs *rs, const struct sip_msg *msg);
bool recs_response(struct recs *rs, const struct sip_msg *msg);
const char *rec_mstate_name(enum rec_mstate st);
const char *rec_state_name(enum rec_state st);
/* The JSON of REC (re_printf handler), for the API and events. */
int  rec_json(struct re_printf *pf, const struct recording *rec);
/* Is URI usable as a recorder ("sip:" or "sips:", no blanks, <, >, ")? */
bool rec_uri_valid(const char *uri);

/* rec.c, for recmod.c: an event-emitting state change of medium M
 * (EVENT: the event's last word, NULL: the state's name); the end of REC
 * after a failure (BYE, .failed for every live medium); the session's
 * body (offer rewritten as rec->paused and rec->video say, metadata
 * complete or partial) into rec->body; the recorder's reasons for port-0
 * lines into rec->mreason. */
void rec_mset(struct recording *rec, enum rec_medium m, enum rec_mstate st,
	      const char *event, const char *reason);
void rec_fail(struct recording *rec, const char *reason);
bool rec_mlive(enum rec_mstate st);
int  rec_body(struct recording *rec, bool partial);
void rec_reject_reasons(struct recording *rec, const struct pl *sdp,
			const struct sip_msg *msg);
int  rec_streams_take(struct recording *rec, const struct rec_stream *st,
		      size_t n);

/* ngsub.c: the ng subscription client (docs/ng.md) */
struct ngsub_offer {
	struct pl sdp;                /* the offer for the recorder */
	struct pl to_tag;
	struct rec_stream streams[REC_MAX_STREAMS];
	size_t nstreams;
};
/* Labels the media server accepted / rejected. */
struct ngsub_result {
	unsigned accepted[REC_MAX_STREAMS], rejected[REC_MAX_STREAMS];
	unsigned inactive[REC_MAX_STREAMS];   /* accepted, paused */
	size_t naccepted, nrejected, ninactive;
};
struct ngsub_req_params {
	const char *callid;
	const char *const *from_tags;
	size_t ntags;
	const char *media;            /* "audio", "audio+video" */
	const char *to_tag;           /* NULL, or extend that subscription
				       * (flag add) */
};
int  ngsub_request(struct mediasrv *ms, struct ngc_req **reqp,
		   const struct ngsub_req_params *p, ngc_resp_h *h, void *arg);
int  ngsub_request_reply(int err, const struct benc_node *reply,
			 struct ngsub_offer *o, char *why, size_t size);
int  ngsub_answer(struct mediasrv *ms, struct ngc_req **reqp,
		  const char *callid, const char *to_tag, const struct pl *sdp,
		  ngc_resp_h *h, void *arg);
int  ngsub_answer_reply(int err, const struct benc_node *reply,
			struct ngsub_result *r, char *why, size_t size);
int  ngsub_unsubscribe(struct mediasrv *ms, const char *callid,
		       const char *to_tag);

/* srcsess.c: the SIPREC dialog with one recorder */
/* The recorder's final answer: ERR (ETIMEDOUT, ECONNREFUSED, ...) and no
 * MSG, or ERR 0 and MSG (2xx: ACKed already; SDP its SDP, else NULL). */
typedef void (srcsess_answer_h)(int err, const struct sip_msg *msg,
				const struct pl *sdp, void *arg);
/* The recorder ended the session (BYE, answered 200 already). */
typedef void (srcsess_close_h)(const char *reason, void *arg);
struct srcsess_params {
	struct sip *sip;
	const char *uri;              /* the recorder */
	const char *boundary;
	const struct mbuf *body;      /* multipart/mixed */
	uint32_t timeout_ms;          /* 0: libre's own (32 s) */
	const char *logid;            /* the recording's id, for the log */
};
int  srcsess_connect(struct srcsess **ssp, const struct srcsess_params *p,
		     srcsess_answer_h *ah, srcsess_close_h *ch, void *arg);
/* BYE if the dialog is up (the session stays until derefed). */
void srcsess_bye(struct srcsess *ss, const char *reason);
const char *srcsess_callid(const struct srcsess *ss);
bool srcsess_match(const struct srcsess *ss, const struct sip_msg *msg);
void srcsess_request(struct srcsess *ss, const struct sip_msg *msg);
void srcsess_response(struct srcsess *ss, const struct sip_msg *msg);
bool srcsess_is_tcp(const struct srcsess *ss);
int  srcsess_modify(struct srcsess *ss, const char *boundary,
		    const struct mbuf *body, uint32_t timeout_ms,
		    srcsess_answer_h *mh);

/* events.c */
void api_rec_event(const char *type, const struct recording *rec,
		   enum rec_medium m, const char *reason, void *arg);

/* b2bua.c: what the recording needs of a call */
struct mediasrv *bcall_mediasrv(const struct bcall *call);
typedef void (bcall_end_h)(struct bcall *call, void *arg);
/* Called by bcall_end() first, while the call and its media still exist. */
void b2bua_end_hook(struct b2bua *b, bcall_end_h *h, void *arg);
/* Called after every call.answered event. */
void b2bua_answer_hook(struct b2bua *b, bcall_end_h *h, void *arg);

/* recprobe.c: OPTIONS health checks of the configured recorders */
struct recprobe;
int  recprobe_alloc(struct recprobe **rpp, struct sip *sip,
		    const char (*uris)[REC_URI_MAX], unsigned n,
		    uint32_t period_ms, uint32_t timeout_ms);
bool recprobe_down(const struct recprobe *rp, const char *uri);
void recprobe_failed(struct recprobe *rp, const char *uri, int err,
		     const struct sip_msg *msg);

/* recpolicy.c: the static record policy (config key "record") */
struct recpolicy;
int  recpolicy_alloc(struct recpolicy **rpp, const char *lines);
/* The first rule matching CALL's caller or callee user: true and *REQ
 * (recorder NULL: the configured list). */
bool recpolicy_match(const struct recpolicy *rp, const struct bcall *call,
		     struct rec_req *req);
unsigned recpolicy_count(const struct recpolicy *rp);


#endif
