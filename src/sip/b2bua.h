/*
 * b2bua.h: the B2BUA's private state: a call is two legs, each a SIP dialog
 * in which tally-sip is the far end.
 *
 *   caller ──INVITE──► leg a (we are UAS) │ leg b (we are UAC) ──INVITE──► callee
 *
 * Every request or response with a body crosses the media server on its way
 * (ng offer for a request's SDP, ng answer for a response's), so both legs
 * only ever see tally-media's addresses. A transaction crossing the B2BUA is
 * a struct xfer: the server transaction on one leg and the client request
 * on the other, with the ng step between them.
 */
#ifndef TALLY_SIP_B2BUA_H
#define TALLY_SIP_B2BUA_H

#include "sipd.h"

struct bcall_priv;

struct b2bua {
	struct sip *sip;              /* borrowed */
	struct mediapool *pool;       /* borrowed */
	struct registrar *reg;        /* borrowed (may be NULL) */
	struct routes *routes;        /* borrowed (may be NULL) */
	struct list calls;            /* struct bcall */
	struct hash *legs;            /* struct bleg by its dialog's Call-ID */
	/* our 2xx retransmissions, one ticking timer for all (cheaper than
	 * a timer per call; with libre's sorted timer list, before tmrq.c,
	 * a timer per call walked the whole list every time) */
	struct list okq;
	struct tmr oktick;
	bcall_event_h *eventh;
	void *arg;
	/* told first thing in bcall_end (rec.c: the call's recordings stop) */
	void (*endh)(struct bcall *call, void *arg);
	void *endarg;
	/* told right after call.answered (rec.c: the static record policy) */
	void (*answerh)(struct bcall *call, void *arg);
	void *answerarg;
	uint32_t no_answer_ms;
	uint32_t session_expires;
	bool routes_need_auth;
	uint64_t seq;                 /* call id counter */
	/* counters */
	uint64_t n_calls, n_answered, n_failed, n_481, n_media_err;
	uint64_t n_bad_status;        /* responses with a status outside
				       * 100-699, answered 502 */
};

/* One leg: a dialog with one party. */
struct bleg {
	struct le he;                 /* in b2bua.legs, keyed by Call-ID */
	struct bcall_priv *cp;        /* borrowed: owner */
	bool uas;                     /* leg a: we answered their INVITE */
	struct sip_dialog *dlg;
	/* leg b: the INVITE's dialog before any answer; every callee dialog
	 * is forked from it (libre forks only from an unanswered dialog), so
	 * answers from a forking proxy's other UAs can be followed */
	struct sip_dialog *dlg0;
	enum sip_transp tp;
	char tag[64];                 /* the party's tag (From on a, To on b) */
	/* 2xx (re)transmission to this leg until its ACK */
	struct mbuf *ok_mb;
	struct sa ok_dst;
	void *ok_sock;
	struct le okle;               /* in b2bua.okq while the 2xx awaits ACK */
	uint64_t ok_next;             /* next retransmission (tmr_jiffies) */
	uint32_t ok_txc;
	uint32_t ok_cseq;             /* CSeq of the INVITE the 2xx answers */
	bool gone;                    /* sent us BYE: no BYE back */
	bool confirmed;               /* a 2xx passed on this leg: BYE ends it */
};

/* A request crossing the B2BUA: received on one leg, sent on the other. */
struct xfer {
	struct le le;                 /* in cp->xfers */
	struct bcall_priv *cp;        /* borrowed */
	struct bleg *from, *to;       /* borrowed */
	const struct sip_msg *req;    /* the request received (ref) */
	struct sip_strans *st;        /* its server transaction */
	struct sip_request *out;      /* the request sent on the other leg */
	struct ngc_req *ng;           /* pending media step */
	uint32_t out_cseq;            /* CSeq used on the other leg (ACK) */
	bool invite;
	bool has_sdp;
};

struct bcall_priv {
	struct bcall *pub;            /* owned: the API view (struct bcall) */
	struct b2bua *b;              /* borrowed */
	struct bleg a, b_;            /* caller leg, callee leg */
	const struct sip_msg *inv;    /* caller's INVITE (ref) */
	struct sip_strans *inv_st;    /* its server transaction */
	struct sip_request *inv_out;  /* INVITE to the callee */
	uint32_t inv_cseq;
	char fork_byed[64];           /* To-tag of the last extra fork we BYEd */
	struct ngc_req *ng;           /* pending ng step of the initial INVITE */
	struct mediasrv *ms;          /* borrowed, for the call's life */
	char target[256];             /* where the callee leg goes */
	struct tmr tmr_noanswer;
	struct tmr tmr_session;       /* RFC 4028 session timer */
	uint32_t session_secs;
	struct list xfers;            /* in-dialog transactions in flight */
	struct list pending;          /* callee responses waiting for ng (struct pmsg) */
	bool media_created;           /* ng offer succeeded: delete at the end */
	bool late;                    /* INVITE without SDP: the callee offers */
	bool late_ack_wait;           /* callee's 2xx taken, its ACK waits for
					 the caller's ACK with the answer */
	struct mbuf *late_answer;     /* the SDP our ACK carried (resent with
					 each 2xx retransmission) */
	bool cancelled;
	bool ending;
};

/* b2bua.c */
int  bcall_alloc(struct bcall_priv **cpp, struct b2bua *b);
void bcall_event(struct bcall_priv *cp, const char *type);
/* End the call: BYE/CANCEL/final response as needed on both legs, ng
 * delete, event call.ended with CAUSE, then free. */
void bcall_end(struct bcall_priv *cp, const char *cause);
/* Which leg of which call does in-dialog MSG belong to? */
struct bleg *b2bua_leg_find(struct b2bua *b, const struct sip_msg *msg);
/* A 2xx to the callee leg's INVITE that came after libre ended the client
 * transaction (a retransmission, or another UA behind a forking proxy):
 * handled as the callee's answer (invite.c). */
void invite_stray_2xx(struct bcall_priv *cp, const struct sip_msg *msg);
/* Index LEG by CALLID so in-dialog requests find it in O(1). */
void b2bua_leg_index(struct b2bua *b, struct bleg *leg, const char *callid);

/* invite.c: the initial INVITE */
int  invite_handle(struct b2bua *b, const struct sip_msg *msg);
void invite_cancel(struct bcall_priv *cp);
/* Late offer: the caller's ACK carries the answer to the callee's offer. */
void invite_late_ack(struct bcall_priv *cp, const struct sip_msg *ack);
/* Late offer, call ending before the caller's ACK: ACK the callee bare. */
void invite_late_abort(struct bcall_priv *cp);

/* indialog.c: requests inside an established call */
void indialog_handle(struct bleg *leg, const struct sip_msg *msg);
/* The call ends: each request still crossing it gets 487 and is freed
 * with what it started on the other leg (no callback runs after). */
void indialog_end(struct bcall_priv *cp);
/* RFC 4028 4: the lowest session interval allowed (Min-SE), seconds. */
enum { SESSION_MIN_SE = 90 };
/* MSG's Session-Expires (or compact "x"): true with its delta-seconds in
 * *SECS; false when it has none or it does not start with a number. */
bool session_expires(const struct sip_msg *msg, uint32_t *secs);
/* (Re)start the RFC 4028 session timer from a 2xx's Session-Expires (an
 * interval below SESSION_MIN_SE is ignored). */
void session_timer_update(struct bcall_priv *cp, const struct sip_msg *resp);

/* sipmsg.c: message helpers */
struct bleg *bleg_other(struct bleg *leg);
/* The SDP body of MSG, or false. */
bool sipmsg_sdp(const struct sip_msg *msg, struct pl *sdp);
/* Our Contact header line for transport TP (ends with CRLF). */
int  sipmsg_contact(struct re_printf *pf, const enum sip_transp *tp);
/* The address the SIP transports listen on (sip-listen). */
const struct sa *sipmsg_laddr(void);
/* Copy the headers named in the NULL-terminated list NAMES (print handler). */
struct hdr_copy {
	const struct sip_msg *msg;
	const char *const *names;
};
int  sipmsg_copy_hdrs(struct re_printf *pf, const struct hdr_copy *hc);
extern const char *const sipmsg_req_hdrs[];
extern const char *const sipmsg_resp_hdrs[];
/* Reply to REQ on ST (final or provisional), with an optional SDP body, our
 * Contact, and the response headers of RESP (may be NULL) copied. For a 2xx
 * to an INVITE on LEG, the reply is retransmitted until bleg_acked(). */
struct reply_params {
	uint16_t scode;
	const char *reason;
	const struct pl *sdp;         /* NULL: no body */
	const struct sip_msg *resp;   /* headers to copy, NULL for none */
	struct bleg *leg;             /* leg the reply goes to */
};
int  sipmsg_reply(struct b2bua *b, struct sip_strans **stp,
		  const struct sip_msg *req, const struct reply_params *p);
void bleg_acked(struct bleg *leg);
void bleg_reset(struct bleg *leg);
/* Update the API view of PARTY's media from an SDP body. */
void bparty_media(struct bparty *party, const struct pl *sdp);
/* Is MSG's status code three digits, 100-699 (RFC 3261 7.2, 21)? libre
 * reads any run of digits into 16 bits (65736 becomes 200), so the text is
 * checked, not msg->scode. TEXT gets the code as sent (cut to SIZE). */
bool sipmsg_scode_valid(const struct sip_msg *msg, char *text, size_t size);
/* Log helper: "[callid]" */
const char *bcall_logid(const struct bcall_priv *cp);

#endif
