/*
 * recapi.h: the recorder's HTTP/JSON API and web page (libre http server,
 * bearer token on /api/v1/, same conventions as tally-sip api.c):
 *   GET    /api/v1/recordings?participant=&call_id=&from=&to=&media=&state=
 *          &limit=&offset=                     search (catalog_search)
 *   GET    /api/v1/recordings/ID                  details (catalog_get)
 *   GET    /api/v1/recordings/ID/files/NAME       download one file
 *   DELETE /api/v1/recordings/ID                  delete row and folder
 *                                              (409 while recording)
 *   GET    /api/v1/status                         counters (the daemon's)
 *   GET    /?token=T                           web page: search and play
 *          (the only path that takes the token as a query parameter; the
 *          page's script then sends it as a Bearer header)
 * Errors are JSON: {"error":"...","status":N} with 400/401/404/405/409/
 * 416/500. Details and the check order: recapi.c.
 */
#ifndef TALLY_REC_RECAPI_H
#define TALLY_REC_RECAPI_H

#include <re.h>
#include "catalog.h"

struct recapi;

/* The daemon's status JSON (one object), printed on GET /api/v1/status. */
typedef int (recapi_status_h)(struct re_printf *pf, void *arg);

struct recapi_params {
	const struct sa *laddr;        /* listen address */
	const char *token;             /* bearer token; "" = no auth */
	struct catalog *cat;           /* borrowed */
	const char *storage;           /* storage root, for path checks */
	recapi_status_h *statush;      /* may be NULL */
	void *arg;
};

int recapi_alloc(struct recapi **apip, const struct recapi_params *prm);

/* The address the api listens on (the port, when laddr had port 0).
 * 0 or errno. */
int recapi_laddr(const struct recapi *api, struct sa *laddr);

/* recweb.c: the web page served on GET / (one self-contained HTML
 * document, NUL-terminated, static). */
const char *recweb_html(void);

/* recdl.c: file downloads streamed on a connection taken over from the
 * HTTP server (used by recapi.c only). */
struct recdl;

struct recdl_counters {
	uint64_t bytes;                /* file bytes handed to TCP */
	uint64_t aborted;              /* cut: client gone, stalled, short */
};

/* The Range header value V for a file of SIZE bytes: 0 and [*FIRST,
 * *LAST] (206), ENOENT when it is to be ignored (malformed, several
 * ranges: send all), ERANGE when it cannot be satisfied (416). */
int  recdl_range(const struct pl *v, uint64_t size, uint64_t *first,
		 uint64_t *last);
/* A download of bytes [FIRST, END) of FD, counted in CNT (borrowed; must
 * outlive the download). On success *DLP owns FD; deref it (before
 * recdl_start) to close FD. 0, EINVAL or ENOMEM. */
int  recdl_alloc(struct recdl **dlp, int fd, uint64_t first, uint64_t end,
		 struct recdl_counters *cnt);
/* Once the response head is sent on CONN: take CONN's TCP connection
 * over and stream. CONN must not be used afterwards. DL goes into DLS,
 * whose owner derefs it to cut it short; it removes itself when done. */
void recdl_start(struct recdl *dl, struct http_conn *conn,
		 struct list *dls);

#endif
