/*
 * api.h: the client API's private state, shared by api.c (HTTP/JSON
 * requests), events.c (the WebSocket event stream) and calljson.c (the JSON
 * of a call). The public entry points are in sipd.h ("client API").
 *
 *   struct api
 *     +- struct http_sock      HTTP/1.1 listener (libre), api.c
 *     +- struct websock        WebSocket server side (libre), events.c
 *     +- list of struct evclient, one per connected event stream
 *     +- struct b2bua          borrowed: the calls are read from it
 *     +- struct recs           borrowed: recordings (rec.c), or NULL
 */
#ifndef TALLY_SIP_API_H
#define TALLY_SIP_API_H

#include "sipd.h"

enum {
	API_TOKEN_MAX   = 128,
	API_WS_CLIENTS_MAX = 64,          /* more event streams -> 503 */
	API_WS_TXQ_MAX  = 256 * 1024,     /* queued bytes before we give up on
					   * a slow event client */
	API_WS_KEEPALIVE_MS = 30000,      /* ping interval on event streams */
	/* longest frame an event client may send (it has nothing to say
	 * but pings and close): longer gets close 1009 (wsguard.c) */
	API_WS_FRAME_MAX = 64 * 1024,
};

struct api_stats {
	uint64_t requests;        /* HTTP requests received */
	uint64_t errors;          /* answered with 4xx/5xx */
	uint64_t unauthorized;    /* ... of which 401 */
	uint64_t events;          /* events published */
	uint64_t frames;          /* event frames sent (events x clients) */
	uint64_t ws_accepted;     /* event streams opened */
	uint64_t ws_dropped;      /* event clients cut off (slow or broken) */
	uint64_t ws_refused;      /* ... cut off for a malformed or too long
				   * frame (wsguard.c) */
};

struct api {
	struct http_sock *hs;
	struct websock *ws;
	struct b2bua *b2bua;          /* borrowed: owned by main.c */
	struct recs *recs;            /* borrowed: owned by main.c, or NULL */
	char token[API_TOKEN_MAX];
	struct list clients;          /* struct evclient (events.c) */
	struct api_stats st;
};

/* api.c: the api that receives api_call_event()s without ARG, or NULL. */
struct api *api_active(void);

/* events.c: take over the HTTP connection of an authorised GET
 * /api/v1/events as a WebSocket event stream. 0, or an errno after which
 * the caller still owns CONN and answers it (EBADMSG: not a valid upgrade
 * request; EMFILE: too many event clients). */
int  api_events_accept(struct api *api, struct http_conn *conn,
		       const struct http_msg *msg);
/* events.c: close every event stream (api destructor). */
void api_events_close(struct api *api);
unsigned api_events_count(const struct api *api);

/* wsguard.c: WebSocket frame headers checked before libre decodes them.
 * CODE is the close code (1002 or 1009), WHY a sentence (static). */
struct wsguard;
typedef void (wsguard_refuse_h)(uint16_t code, const char *why, void *arg);
int  wsguard_attach(struct wsguard **gp, struct tcp_conn *tc,
		    size_t frame_max, wsguard_refuse_h *refuseh, void *arg);

/* calljson.c: JSON pieces, as re_printf handlers. */
/* A quoted JSON string (escaped; invalid UTF-8 -> U+FFFD), or null if S
 * is NULL. */
int  api_jstr(struct re_printf *pf, const char *s);
/* Unix milliseconds as a quoted ISO 8601 UTC string with ms, or null if 0. */
int  api_jtime(struct re_printf *pf, const uint64_t *ms);

#endif
