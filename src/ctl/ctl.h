/*
 * ctl.h: tallyctl's parts: a small blocking HTTP/1.1 client (httpc.c), a
 * WebSocket reader on top of it (wsc.c), JSON output (jsonout.c), the
 * commands (tallyctl.c; the event stream in events.c, tally-sip's
 * recordings in record.c, the recorder's in recordings.c) and SHA-256 for
 * checking downloads (sha256.c).
 *
 * tallyctl is a one-shot command-line program, so plain blocking sockets
 * with poll() timeouts are used instead of an event loop: the code reads
 * top to bottom and every failure has one place where it becomes a message.
 * Only plain http:// is supported (the API listens on loopback or behind a
 * TLS-terminating proxy).
 */
#ifndef TALLY_CTL_H
#define TALLY_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct odict;

enum {
	CTL_CONNECT_MS = 5000,        /* connect timeout */
	CTL_READ_MS    = 15000,       /* reply timeout of a plain request */
	CTL_HEAD_MAX   = 65536,       /* response head limit */
	CTL_BODY_MAX   = 64 << 20,    /* response body limit */
};

/* http://HOST[:PORT][/BASE] */
struct ctl_url {
	char host[256];
	char port[8];
	char base[256];               /* "" or "/prefix" without trailing '/' */
};

/* Parse URL. 0 or EINVAL (not http://, empty host, bad port, too long). */
int  ctl_url_parse(struct ctl_url *u, const char *url);

/* A connected blocking socket. */
struct ctl_conn {
	int fd;
	char buf[8192];               /* bytes read but not consumed */
	size_t len;
};

/* Connect to U. 0, or the errno (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH,
 * ENOENT for an unknown host name). C->fd must be closed with
 * ctl_close(). */
int  ctl_connect(struct ctl_conn *c, const struct ctl_url *u);
void ctl_close(struct ctl_conn *c);
/* Write all of P. 0 or errno. */
int  ctl_write(struct ctl_conn *c, const void *p, size_t n);
/* Read at least one byte into c->buf (appending); TIMEOUT_MS < 0 waits
 * forever. 0, ENODATA (orderly EOF), ETIMEDOUT, ENOBUFS (buffer full) or
 * the read errno. */
int  ctl_fill(struct ctl_conn *c, int timeout_ms);
/* Drop the first N buffered bytes. */
void ctl_consume(struct ctl_conn *c, size_t n);

struct ctl_resp {
	uint16_t scode;
	char reason[64];
	char upgrade[32];             /* Upgrade header value, if any */
	int64_t clen;                 /* Content-Length, -1 if none */
	bool chunked;                 /* a Transfer-Encoding we do not read */
	char *body;                   /* malloc'd, NUL-terminated, or NULL */
	size_t blen;
};

/* Send "METHOD BASE+PATH" (METHOD NULL: GET) with the bearer TOKEN (may
 * be "" for none) and EXTRA header lines (each ending CRLF, or NULL), then
 * read the response head. With BODY true the body is read too
 * (Content-Length or until close); for a 101 it never is. 0 or errno
 * (EPROTO: not HTTP). Free R with ctl_resp_reset(). */
struct ctl_req {
	const struct ctl_url *url;
	const char *token;
	const char *path;
	const char *extra;
	bool body;
	int timeout_ms;
	const char *method;
	const char *content;          /* JSON request body, or NULL */
};
int  ctl_http(struct ctl_conn *c, const struct ctl_req *rq,
	      struct ctl_resp *r);
void ctl_resp_reset(struct ctl_resp *r);

/* METHOD PATH with the JSON body JSON (NULL: none; a POST then says
 * "Content-Length: 0") on a fresh connection; the reply's body is read.
 * 0 or errno. Free R with ctl_resp_reset(). */
int  ctl_send_json(const struct ctl_url *u, const char *token,
		   const char *method, const char *path, const char *json,
		   struct ctl_resp *r);
/* One GET on a fresh connection, body read, connection closed. */
int  ctl_get(const struct ctl_url *u, const char *token, const char *path,
	     struct ctl_resp *r);
/* The same with METHOD ("DELETE", ...). */
int  ctl_request(const struct ctl_url *u, const char *token,
		 const char *method, const char *path, struct ctl_resp *r);

/* SHA-256 (sha256.c). */
struct ctl_sha256 {
	uint32_t h[8];
	uint64_t len;                 /* bytes hashed */
	uint8_t buf[64];
	size_t n;                     /* bytes in buf */
};
void ctl_sha256_init(struct ctl_sha256 *s);
void ctl_sha256_update(struct ctl_sha256 *s, const void *p, size_t n);
void ctl_sha256_final(struct ctl_sha256 *s, uint8_t out[32]);
void ctl_sha256_hex(const uint8_t d[32], char hex[65]);

/* GET PATH and write a 200's body to FD as it arrives (any size; the
 * reply must have a Content-Length), feeding SHA (may be NULL); *NP is the
 * number of bytes written. Any other status: EACCES, with R holding that
 * response and its (JSON error) body. 0 or errno (ECONNRESET: the body
 * ended short; EPROTO: no Content-Length). Free R with ctl_resp_reset(). */
int  ctl_get_file(const struct ctl_url *u, const char *token,
		  const char *path, int fd, struct ctl_sha256 *sha,
		  uint64_t *np, struct ctl_resp *r);

/* One text message of a WebSocket: P (N bytes, not NUL-terminated). */
typedef void (ctl_ws_msg_h)(const char *p, size_t n, void *arg);

/* Follow the WebSocket at PATH: every text message (reassembled) goes to
 * MH(ARG) as it arrives. Returns 0 when the server closes the stream, or
 * errno: EACCES when the upgrade was refused, with R holding that response
 * (its status and JSON error body); R is reset by the caller. */
int  ctl_ws_follow(const struct ctl_url *u, const char *token,
		   const char *path, ctl_ws_msg_h *mh, void *arg,
		   struct ctl_resp *r);

/* tallyctl's exit statuses: 0 success. */
enum {
	CTL_EXIT_FAIL  = 1,           /* refused, unreachable, check failed */
	CTL_EXIT_USAGE = 2,
};

/* A server a command talks to (tallyctl.c): its URL and token, and the
 * hints its messages give. */
struct ctl_target {
	struct ctl_url url;
	const char *api;              /* the URL as given, for messages */
	const char *token;
	const char *refused_hint;     /* after "connection refused" */
	const char *token_hint;       /* after a 401 */
};

/* Say on stderr why a request failed: the network ERR, or (ERR 0 or
 * EACCES) the status and JSON error of R. Returns the exit status (1). */
int  ctl_report(const struct ctl_target *t, int err,
		const struct ctl_resp *r);
/* GET PATH from T and decode its JSON body into *ODP. 0 or the exit
 * status after ctl_report(). */
int  ctl_get_json(const struct ctl_target *t, const char *path,
		  struct odict **odp);

/* The recorder's commands (recordings.c). */
struct ctl_recq {
	const char *participant, *call_id, *from, *to, *media, *state;
	const char *limit, *offset;
};
/* tallyctl recordings [filters] [--json]: the table, or the JSON. */
int  ctl_cmd_recordings(const struct ctl_target *t,
			const struct ctl_recq *q, bool json);
/* tallyctl recording ID [--download DIR | --delete]. */
int  ctl_cmd_recording(const struct ctl_target *t, const char *id,
		       const char *download, bool del);
/* Is ID one plain id ([A-Za-z0-9._-], no "..", < 64 bytes), safe in a
 * path? */
bool ctl_id_ok(const char *id);
/* "2026-11-25T22:30:00Z", "2026-11-25 22:30", "2026-11-25" (UTC) or unix
 * seconds into *T; a date alone is the start of the day, or its last
 * moment with END. 0 or EINVAL. */
int  ctl_parse_time(const char *s, bool end, double *t);

/* tally-sip's event stream (events.c): tallyctl events [--json]. Readable
 * one-line events, or each event's JSON on one line. */
int  ctl_cmd_events(const struct ctl_target *t, bool json);
/* One event (JSON text P, N bytes) as one readable line on OUT, e.g.
 *   2026-12-10T10:00:01.234Z recording.video.rejected call=c1-ab
 *   recording=r1-9f medium=video reason="policy: audio only"
 * Text that is not a JSON event is printed as it came. */
void ctl_event_line(FILE *out, const char *p, size_t n);

/* tally-sip's recordings (record.c). */
struct ctl_rstart {
	const char *call;             /* tally's call id, or NULL */
	const char *dn;               /* a party's user, or NULL */
	const char *media;            /* "audio", "audio+video" */
	const char *recorder;         /* SIP URI, or NULL: configured ones */
	bool per_party;               /* one SIPREC session per party */
};
/* tallyctl record start CALL|--dn DN --media M [--per-party]
 * [--recorder URI] [--json]. */
int  ctl_cmd_record_start(const struct ctl_target *t,
			  const struct ctl_rstart *p, bool json);
/* tallyctl record pause|resume|stop RID, record media RID MEDIA [--json]:
 * VERB "pause", "resume", "stop" or "media" (then MEDIA). */
int  ctl_cmd_record(const struct ctl_target *t, const char *verb,
		    const char *rid, const char *media, bool json);
/* tallyctl recordings --active [--json]: tally-sip's active recordings. */
int  ctl_cmd_recordings_active(const struct ctl_target *t, bool json);
/* The table of REPLY, {"recordings":[<tally-sip recording>...]}. 0 or
 * EPROTO. */
int  ctl_active_table(FILE *out, const struct odict *reply);
/* One line for a tally-sip recording object R (record commands). */
void ctl_active_line(FILE *out, const struct odict *r);

/* JSON output. */
int  ctl_json_pretty(FILE *out, const struct odict *o, bool array);
/* The calls table of REPLY, {"calls":[...]}. 0 or EPROTO (no array). */
int  ctl_calls_table(FILE *out, const struct odict *reply);
/* "audio+video": the active media of a call's party object ("-": none). */
void ctl_media_of(const struct odict *party, char *buf, size_t size);
/* The recordings table of REPLY, {"recordings":[...]}. 0 or EPROTO. */
int  ctl_recordings_table(FILE *out, const struct odict *reply);

#endif
