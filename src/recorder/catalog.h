/*
 * catalog.h: the recordings catalog, SQLite in WAL mode, one row per
 * recording session from its first 200 OK on, ending complete or failed.
 * Only the main (libre) thread uses a struct catalog.
 *
 * The row is a projection of the session's session.json (sessfile.h), so
 * the daemon has one call to keep it true: catalog_sync() after every
 * sessfile_save(). Search and details come back as JSON for the API.
 */
#ifndef TALLY_REC_CATALOG_H
#define TALLY_REC_CATALOG_H

#include <re.h>
#include "sessfile.h"

struct catalog;

/* Open or create the catalog at PATH (schema, WAL, busy timeout).
 * *CATP is a mem object; mem_deref closes the database. */
int catalog_open(struct catalog **catp, const char *path);

/* Insert or update the row of SF (keyed by SF->id): participants, times,
 * media recorded and refused, state and reason, files, and DIR (the
 * session folder). 0 or an errno (SQLite errors mapped at one place). */
int catalog_sync(struct catalog *cat, const struct sessfile *sf,
		 const char *dir);

struct cat_query {
	const char *participant;   /* substring of an AOR or name, or NULL */
	const char *call_id;       /* exact, or NULL */
	double from, to;           /* started within [from, to]; 0 = open */
	const char *media;         /* "audio" / "video": recorded it; NULL */
	const char *state;         /* exact state name, or NULL */
	unsigned limit;            /* 0 = 100; more than 1000: EINVAL */
	unsigned offset;
};

/* Print {"recordings":[...]} for Q into MB (newest first). */
int catalog_search(struct catalog *cat, const struct cat_query *q,
		   struct mbuf *mb);

/* Print one recording's details (the row plus its streams, participants
 * with their send/recv labels, and files) into MB. ENOENT if no such id. */
int catalog_get(struct catalog *cat, const char *id, struct mbuf *mb);

/* The folder of recording ID into DIR (SIZE bytes) and its state.
 * ENOENT if no such id. */
int catalog_dir(struct catalog *cat, const char *id, char *dir, size_t size,
		enum sf_state *state);

/* Delete the row of ID (the caller removes the folder). ENOENT if none. */
int catalog_delete(struct catalog *cat, const char *id);

/* Is NAME one of the state names ("recording", "finalizing", "complete",
 * "failed")? */
bool catalog_state_valid(const char *name);

/* JSON string printers for %H: S (or PL) quoted and escaped; bytes that
 * are not valid UTF-8 become U+FFFD, so the output is always valid JSON.
 * NULL prints null. */
int catalog_jstr(struct re_printf *pf, const char *s);
int catalog_jpl(struct re_printf *pf, const struct pl *pl);

#endif
