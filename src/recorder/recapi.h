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
 *   GET    /                                   web page: search and play
 * Errors are JSON: {"error":"..."} with 400/401/404/405/409/500.
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

#endif
