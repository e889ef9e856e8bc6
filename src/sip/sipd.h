/*
 * sipd.h: tally-sip's private object model and the interfaces between its
 * parts.
 *
 *   struct sipd (one per process)
 *     +- struct sip            libre SIP stack: UDP + TCP transports
 *     +- struct mediapool      ng endpoints (tally-media or rtpengine), health
 *     +- struct registrar      REGISTER, digest auth, location (AOR -> contacts)
 *     +- struct routes         static routes: number pattern -> SIP URI
 *     +- struct b2bua          calls: struct bcall, each two legs
 *     +- struct recs           recordings: SIPREC sessions to recorders
 *                              (rec.h)
 *     +- struct api            HTTP/JSON + WebSocket events
 *
 * Everything runs on the one libre main loop thread.
 */
#ifndef TALLY_SIPD_H
#define TALLY_SIPD_H

#include <stdbool.h>
#include <stdint.h>
#include <re.h>
#include "bencode.h"

/* ---- configuration (options.c) ---- */
struct sipd_conf {
	char sip_listen[64];        /* "127.0.0.1:5060": UDP and TCP */
	char media_servers[1024];   /* ng endpoints, comma separated */
	uint32_t media_ping_ms;     /* health check period */
	char realm[64];             /* digest realm */
	char users[8192];           /* MULTI: "name password" lines */
	char routes[8192];          /* MULTI: "pattern uri" lines */
	uint32_t reg_min_expires, reg_max_expires;
	uint32_t no_answer_secs;    /* INVITE without final answer -> 408 */
	bool routes_need_auth;      /* static routes only for authenticated callers */
	uint32_t session_expires;   /* RFC 4028 default interval offered, s */
	char record[4096];          /* MULTI: "pattern media [mode]" lines */
	uint32_t recorder_options_secs; /* OPTIONS health check period */
	char recorders[2048];       /* SIPREC recorders (SRS), comma separated,
				     * tried in order */
	uint32_t recorder_timeout_ms; /* recording INVITE without final answer */
	char api_listen[64];        /* "127.0.0.1:8080" */
	char api_token[128];        /* bearer token */
	uint32_t rate_limit;        /* new requests per second per source IP */
	uint32_t rate_burst;
	uint32_t log_level;
	char log_file[256];
	char pidfile[256];
	bool foreground;
	char config_file[256];
};

int  sipd_conf_load(struct sipd_conf *cf, int argc, char *argv[], bool *exitp);
/* The next item of the comma-separated list in *REST (a config value such
 * as media-servers or recorders), blanks around it cut, empty items
 * skipped: true and *ITEM, with *REST advanced past it; false at the end. */
bool sipd_list_next(struct pl *rest, struct pl *item);
/* The next blank-separated field of LINE from *POS (a "routes" or
 * "record" config line): true and *F with *POS past it; false at the end. */
bool sipd_field_next(const struct pl *line, size_t *pos, struct pl *f);

/* ---- ng client and media server pool (ngc.c, mediapool.c) ---- */
struct ngc;
struct ngc_req;
struct mediapool;
struct mediasrv;

/* REPLY is the decoded reply dict (valid only during the call), NULL if ERR
 * (ETIMEDOUT: no answer after retransmissions; EBADMSG: undecodable). */
typedef void (ngc_resp_h)(int err, const struct benc_node *reply, void *arg);

/* One ng endpoint. Requests are retransmitted (same cookie) every 500 ms,
 * 5 times, then fail with ETIMEDOUT. */
int  ngc_alloc(struct ngc **ngcp, const struct sa *server);
/* Send BODY (a bencoded dict). *reqp (optional) is a mem object: deref it to
 * cancel (the handler is then never called). */
int  ngc_request(struct ngc *ngc, struct ngc_req **reqp,
		 const struct mbuf *body, ngc_resp_h *resph, void *arg);

/* LIST: "127.0.0.1:2223,127.0.0.1:2224". Each is pinged every PING_MS;
 * two missed pings mark it down, one answer marks it up. */
int  mediapool_alloc(struct mediapool **mpp, const char *list,
		     uint32_t ping_ms);
/* A healthy server with the fewest calls, or NULL. */
struct mediasrv *mediapool_pick(struct mediapool *mp);
unsigned mediapool_count(const struct mediapool *mp);
struct mediasrv *mediapool_get(struct mediapool *mp, unsigned i);
void mediasrv_calls_add(struct mediasrv *ms, int delta);
unsigned mediasrv_calls(const struct mediasrv *ms);
bool mediasrv_healthy(const struct mediasrv *ms);
const char *mediasrv_name(const struct mediasrv *ms);   /* "127.0.0.1:2223" */
/* MS's ng client, for requests built elsewhere (ngsub.c). */
struct ngc *mediasrv_ngc(struct mediasrv *ms);

/* SDP through the media server. H gets 0 and the rewritten SDP (valid only
 * during the call), or an errno and WHY (the ng error-reason, or a sentence).
 * *reqp as for ngc_request. */
typedef void (media_sdp_h)(int err, const char *why, const struct pl *sdp,
			   void *arg);
struct media_sdp_params {
	const char *callid;
	const char *from_tag;
	const char *to_tag;         /* answer: required; offer: optional */
	const struct pl *sdp;
};
int  mediasrv_offer(struct mediasrv *ms, struct ngc_req **reqp,
		    const struct media_sdp_params *p, media_sdp_h *h, void *arg);
int  mediasrv_answer(struct mediasrv *ms, struct ngc_req **reqp,
		     const struct media_sdp_params *p, media_sdp_h *h, void *arg);
/* Fire and forget; failures are logged. */
int  mediasrv_delete(struct mediasrv *ms, const char *callid);

/* ---- registrar and location (registrar.c) ---- */
struct registrar;
struct sip;

/* USERS: "name password\n" lines (sipd_conf.users). */
int  registrar_alloc(struct registrar **rp, struct sip *sip, const char *realm,
		     const char *users, uint32_t min_expires, uint32_t max_expires);
/* Handle MSG if it is a REGISTER (challenge, 200 with the contact list,
 * 4xx); returns true if it was one. */
bool registrar_handle(struct registrar *r, const struct sip_msg *msg);
/* The best current contact (highest q, then newest) for USER, copied to URI.
 * 0, ENOENT (no such user or nothing registered). */
int  registrar_lookup(const struct registrar *r, const struct pl *user,
		      char *uri, size_t size);
/* A request (INVITE) claiming to come from account USER must carry that
 * account's digest in Proxy-Authorization: 0 if it does; otherwise a 407
 * challenge, 403 or 400 has been sent and an errno is returned (ENOENT: no
 * such account, nothing sent). */
int  registrar_authorize(struct registrar *r, const struct sip_msg *msg,
			 const struct pl *user);
/* Is USER a configured account (registered or not)? */
bool registrar_known(const struct registrar *r, const struct pl *user);

/* ---- static routes (routes.c) ---- */
struct routes;
/* LINES: "pattern uri\n". Pattern: digits and letters match themselves,
 * 'x'/'X' any digit, 'N' 2-9, 'Z' 1-9, a final '.' or '*' the rest (one or
 * more characters); "*" alone matches anything. URI may hold ${user}.
 * First match wins. 0, EINVAL (with the bad line in the log). */
int  routes_alloc(struct routes **rp, const char *lines);
/* The pattern language of routes.c's banner (also the record policy's). */
bool routes_pattern_valid(const struct pl *pat);
bool routes_pattern_match(const char *pat, const struct pl *user);
/* The target URI for USER written to URI; 0 or ENOENT. */
int  routes_match(const struct routes *r, const struct pl *user, char *uri,
		  size_t size);

/* ---- calls (b2bua.c and friends) ---- */
enum bcall_state {
	BCALL_INIT = 0,     /* INVITE received, routing / media offer */
	BCALL_CALLING,      /* INVITE sent to the callee */
	BCALL_EARLY,        /* 18x received */
	BCALL_ANSWERED,     /* 2xx */
	BCALL_ENDED,
};

struct bmedia {             /* one m= line as a party offered it */
	char type[16];      /* "audio", "video" */
	char dir[12];       /* "sendrecv", ... ; "inactive" also for port 0 */
	bool active;        /* port != 0 */
};

struct bparty {
	char uri[256];      /* From (caller) / To (callee) URI */
	char user[64];      /* DN / user part */
	char name[64];      /* display name */
	char contact[256];  /* where the leg's requests go */
	char tag[64];       /* dialog tag of this party */
	struct bmedia media[8];
	unsigned nmedia;
};

struct bcall {
	struct le le;                 /* in b2bua.calls */
	char id[40];                  /* tally's call id (API) */
	char callid[256];             /* the caller leg's Call-ID */
	enum bcall_state state;
	uint64_t created, answered, ended;   /* unix ms; 0 = not yet */
	struct bparty caller, callee;
	char mediasrv[64];            /* name of the media server used */
	uint16_t final_status;        /* final response on the caller leg */
	char cause[96];               /* why it ended: "caller hangup", ... */
	void *priv;                   /* b2bua's own state (struct bleg etc.) */
};

struct b2bua;
/* Events: TYPE is "call.created", "call.answered", "call.updated",
 * "call.ended"; CALL valid only during the call. */
typedef void (bcall_event_h)(const char *type, const struct bcall *call,
			     void *arg);
const struct list *b2bua_calls(const struct b2bua *b);   /* of struct bcall */
/* End every call, events included (b2bua.c has the contract). */
void b2bua_shutdown(struct b2bua *b);
/* Where call events go (NULL: nowhere); ARG borrowed. */
void b2bua_events(struct b2bua *b, bcall_event_h *eh, void *arg);
struct bcall *b2bua_call_find(const struct b2bua *b, const char *id);
const char *bcall_state_name(enum bcall_state st);

/* ---- client API (api.c, events.c) ---- */
struct api;
/* Serve HTTP/JSON and the WebSocket event stream on LISTEN with bearer
 * TOKEN; calls are read from B. */
int  api_alloc(struct api **ap, const char *listen, const char *token,
	       struct b2bua *b);
struct recs;
/* Recordings the API starts, lists and stops (borrowed; NULL: none). */
void api_recs(struct api *api, struct recs *rs);
/* Push an event to every WebSocket client (a bcall_event_h). */
void api_call_event(const char *type, const struct bcall *call, void *arg);
/* The JSON object of one call (used by the API and by events). */
int  bcall_json(struct re_printf *pf, const struct bcall *call);

uint64_t sipd_now_ms(void);

#endif
