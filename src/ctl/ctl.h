/*
 * ctl.h: tallyctl's parts: a small blocking HTTP/1.1 client (httpc.c), a
 * WebSocket reader on top of it (wsc.c), JSON output (jsonout.c) and the
 * commands (tallyctl.c).
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
	char *body;                   /* malloc'd, NUL-terminated, or NULL */
	size_t blen;
};

/* Send "GET BASE+PATH" with the bearer TOKEN (may be "" for none) and
 * EXTRA header lines (each ending CRLF, or NULL), then read the response
 * head. With BODY true the body is read too (Content-Length or until
 * close); for a 101 it never is. 0 or errno (EPROTO: not HTTP). Free R
 * with ctl_resp_reset(). */
struct ctl_req {
	const struct ctl_url *url;
	const char *token;
	const char *path;
	const char *extra;
	bool body;
	int timeout_ms;
};
int  ctl_http(struct ctl_conn *c, const struct ctl_req *rq,
	      struct ctl_resp *r);
void ctl_resp_reset(struct ctl_resp *r);

/* One GET on a fresh connection, body read, connection closed. */
int  ctl_get(const struct ctl_url *u, const char *token, const char *path,
	     struct ctl_resp *r);

/* Follow the WebSocket at PATH: every text message is written to OUT as one
 * line and flushed. Returns 0 when the server closes the stream, or errno:
 * EACCES when the upgrade was refused, with R holding that response (its
 * status and JSON error body); R is reset by the caller. */
int  ctl_ws_follow(const struct ctl_url *u, const char *token,
		   const char *path, FILE *out, struct ctl_resp *r);

/* JSON output. */
int  ctl_json_pretty(FILE *out, const struct odict *o, bool array);
/* The calls table of REPLY, {"calls":[...]}. 0 or EPROTO (no array). */
int  ctl_calls_table(FILE *out, const struct odict *reply);

#endif
