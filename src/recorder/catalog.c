/*
 * catalog.c: the recordings catalog, one SQLite database in WAL mode.
 *
 * A row is a projection of a session's session.json (sessfile.h): the
 * daemon calls catalog_sync() after every sessfile_save(), and the API
 * (recapi.c) reads rows back as JSON. If the catalog is lost it can be
 * rebuilt from the folders; the folders are the truth.
 *
 * Schema (version 1, PRAGMA user_version):
 *
 *   recordings  id PK, call_id, session_id, src, state, reason, started,
 *               stopped, media_recorded ("audio,video": media of the
 *               accepted streams), media_refused (of the refused ones), dir,
 *               detail (JSON: has_metadata, streams, participants with their
 *               send/recv labels, files), updated (unix time of the sync)
 *   participants rec_id -> recordings(id) ON DELETE CASCADE,
 *               participant_id, aor, name          (search by participant)
 *   files       rec_id -> recordings(id) ON DELETE CASCADE,
 *               name, kind, participant, size, sha256
 *   indexes     recordings(started), recordings(call_id), participants(aor),
 *               participants(rec_id), files(rec_id)
 *
 * Worked example: a session that records audio and refuses video,
 *   catalog_sync(cat, sf, "/var/lib/tally/recordings/20261125T223000Z-3fa2b9c1")
 * runs, in one IMMEDIATE transaction,
 *   INSERT INTO recordings(...) VALUES(?1, ...) ON CONFLICT(id) DO UPDATE ...
 *                   with media_recorded = "audio", media_refused = "video"
 *   DELETE FROM participants WHERE rec_id = ?1;  INSERT ... per participant
 *   DELETE FROM files WHERE rec_id = ?1;         INSERT ... per file
 * and catalog_search() with participant "alice" then prints
 *   {"recordings":[{"id":"20261125T223000Z-3fa2b9c1", ..., "media_recorded":
 *    ["audio"],"media_refused":["video"],"participants":[{"id":...,"aor":
 *    "sip:alice@atlanta.com","name":"Alice"}],"files":[...]}]}
 *
 * Every value reaches SQLite through sqlite3_bind_*; no text is ever
 * formatted into SQL. The search statements are built from fixed fragments
 * (one per filter that is set) and prepared once per combination, so each
 * combination can use its index. SQLite result codes become errno values in
 * cat_errno() and nowhere else.
 *
 * Wall-clock note: SQLite's lower() folds ASCII only, so the participant
 * search is case-insensitive for ASCII letters and exact for the rest.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sqlite3.h>
#include "log.h"
#include "catalog.h"

enum {
	CAT_SCHEMA     = 1,       /* PRAGMA user_version */
	CAT_BUSY_MS    = 2000,    /* wait for another writer (sqlite3 CLI) */
	CAT_LIMIT_DFLT = 100,
	CAT_LIMIT_MAX  = 1000,
};

/* The search filters; a statement is prepared per combination. */
enum {
	QF_PART  = 1 << 0,
	QF_CALL  = 1 << 1,
	QF_FROM  = 1 << 2,
	QF_TO    = 1 << 3,
	QF_MEDIA = 1 << 4,
	QF_STATE = 1 << 5,
	QF_COMBOS = 1 << 6,
};

struct catalog {
	sqlite3 *db;
	char path[256];
	sqlite3_stmt *begin, *begin_ro, *commit, *rollback;
	sqlite3_stmt *upsert;
	sqlite3_stmt *del_parts, *ins_part, *del_files, *ins_file;
	sqlite3_stmt *parts, *files;
	sqlite3_stmt *get, *dir, *del;
	sqlite3_stmt *search[QF_COMBOS];      /* prepared on first use */
};

static const char *const state_names[] = {
	[SF_RECORDING]  = "recording",
	[SF_FINALIZING] = "finalizing",
	[SF_COMPLETE]   = "complete",
	[SF_FAILED]     = "failed",
};

/* The catalog keeps its own name table instead of calling sf_state_name()
 * so it links without sessfile.c (the API tests build it alone). */
static const char *state_name(enum sf_state st)
{
	if ((unsigned)st >= ARRAY_SIZE(state_names))
		return NULL;
	return state_names[st];
}

static int state_parse(const char *s)
{
	size_t i;

	for (i = 0; s && i < ARRAY_SIZE(state_names); i++)
		if (!strcmp(s, state_names[i]))
			return (int)i;
	return -1;
}

bool catalog_state_valid(const char *name)
{
	return state_parse(name) >= 0;
}

/* ---- SQLite -> errno, the one boundary ---- */

static int cat_errno(const struct catalog *cat, int rc, const char *what)
{
	int err;

	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_NOMEM:     err = ENOMEM; break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:    err = EBUSY; break;
	case SQLITE_READONLY:  err = EROFS; break;
	case SQLITE_PERM:
	case SQLITE_AUTH:      err = EACCES; break;
	case SQLITE_FULL:      err = ENOSPC; break;
	case SQLITE_CANTOPEN:  err = ENOENT; break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:    err = EBADMSG; break;
	case SQLITE_TOOBIG:    err = EFBIG; break;
	case SQLITE_CONSTRAINT: err = EEXIST; break;
	case SQLITE_INTERRUPT: err = EINTR; break;
	case SQLITE_MISUSE:
	case SQLITE_RANGE:
	case SQLITE_MISMATCH:  err = EINVAL; break;
	case SQLITE_PROTOCOL:  err = EPROTO; break;
	default:               err = EIO; break;
	}
	log_warn("catalog: %s: %s: %s (sqlite %d)", cat->path, what,
		 cat->db ? sqlite3_errmsg(cat->db) : sqlite3_errstr(rc), rc);
	return err;
}

/* ---- JSON strings ---- */

/* Length of the valid UTF-8 sequence at P (N bytes left), 0 if invalid
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

int catalog_jpl(struct re_printf *pf, const struct pl *pl)
{
	const unsigned char *p, *run;
	size_t n;
	int err;

	if (!pl || !pl->p)
		return re_hprintf(pf, "null");
	p = (const unsigned char *)pl->p;
	n = pl->l;
	err = re_hprintf(pf, "\"");
	run = p;
	while (n && !err) {
		size_t sl = utf8_seq(p, n);
		const char *esc = NULL;
		char u[8];

		if (sl == 1 && *p >= 0x20 && *p != '"' && *p != '\\') {
			++p;
			--n;
			continue;
		}
		if (sl > 1) {
			p += sl;
			n -= sl;
			continue;
		}
		/* flush the clean run, then the escape for *p */
		if (p > run)
			err = re_hprintf(pf, "%b", run, (size_t)(p - run));
		if (sl == 0)
			esc = "\\ufffd";           /* invalid byte */
		else if (*p == '"')
			esc = "\\\"";
		else if (*p == '\\')
			esc = "\\\\";
		else if (*p == '\n')
			esc = "\\n";
		else if (*p == '\r')
			esc = "\\r";
		else if (*p == '\t')
			esc = "\\t";
		else {
			(void)re_snprintf(u, sizeof(u), "\\u%04x", *p);
			esc = u;
		}
		if (!err)
			err = re_hprintf(pf, "%s", esc);
		++p;
		--n;
		run = p;
	}
	if (!err && p > run)
		err = re_hprintf(pf, "%b", run, (size_t)(p - run));
	if (!err)
		err = re_hprintf(pf, "\"");
	return err;
}

int catalog_jstr(struct re_printf *pf, const char *s)
{
	struct pl pl;

	if (!s)
		return re_hprintf(pf, "null");
	pl_set_str(&pl, s);
	return catalog_jpl(pf, &pl);
}

/* A fixed-size field of a struct sessfile, which may fill its array. */
static struct pl fpl(const char *s, size_t size)
{
	struct pl pl;

	pl.p = s;
	pl.l = strnlen(s, size);
	return pl;
}

#define FPL(field) fpl((field), sizeof(field))

/* A JSON number for a time or duration: 0.001 s resolution; a value JSON
 * cannot carry (NaN, inf) prints as 0. libc formats it: libre's %f cuts
 * digits instead of rounding (1764109800.1 would print as .099). */
static int jtime(struct mbuf *mb, double t)
{
	char buf[48];

	if (!isfinite(t))
		t = 0;
	(void)snprintf(buf, sizeof(buf), "%.3f", t);
	return mbuf_write_str(mb, buf);
}

/* ---- opening ---- */

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS recordings ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" call_id TEXT NOT NULL DEFAULT '',"
	" session_id TEXT NOT NULL DEFAULT '',"
	" src TEXT NOT NULL DEFAULT '',"
	" state TEXT NOT NULL,"
	" reason TEXT NOT NULL DEFAULT '',"
	" started REAL NOT NULL DEFAULT 0,"
	" stopped REAL NOT NULL DEFAULT 0,"
	" media_recorded TEXT NOT NULL DEFAULT '',"
	" media_refused TEXT NOT NULL DEFAULT '',"
	" dir TEXT NOT NULL,"
	" detail TEXT NOT NULL DEFAULT '{}',"
	" updated REAL NOT NULL DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS recordings_started ON recordings(started);"
	"CREATE INDEX IF NOT EXISTS recordings_call_id ON recordings(call_id);"
	"CREATE TABLE IF NOT EXISTS participants ("
	" rec_id TEXT NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
	" participant_id TEXT NOT NULL DEFAULT '',"
	" aor TEXT NOT NULL DEFAULT '',"
	" name TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX IF NOT EXISTS participants_rec ON participants(rec_id);"
	"CREATE INDEX IF NOT EXISTS participants_aor ON participants(aor);"
	"CREATE TABLE IF NOT EXISTS files ("
	" rec_id TEXT NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
	" name TEXT NOT NULL,"
	" kind TEXT NOT NULL DEFAULT '',"
	" participant TEXT NOT NULL DEFAULT '',"
	" size INTEGER NOT NULL DEFAULT 0,"
	" sha256 TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX IF NOT EXISTS files_rec ON files(rec_id);"
	"PRAGMA user_version = 1;";

#define ROW_COLS "id, call_id, session_id, src, state, reason, started, " \
	"stopped, media_recorded, media_refused, updated"

enum row_col {
	C_ID = 0, C_CALL_ID, C_SESSION_ID, C_SRC, C_STATE, C_REASON,
	C_STARTED, C_STOPPED, C_MEDIA_REC, C_MEDIA_REF, C_UPDATED,
	C_DETAIL,                        /* catalog_get only */
};

static void cat_destructor(void *arg)
{
	struct catalog *cat = arg;
	size_t i;

	/* finalize every statement, or sqlite3_close() refuses to close */
	sqlite3_finalize(cat->begin);
	sqlite3_finalize(cat->begin_ro);
	sqlite3_finalize(cat->commit);
	sqlite3_finalize(cat->rollback);
	sqlite3_finalize(cat->upsert);
	sqlite3_finalize(cat->del_parts);
	sqlite3_finalize(cat->ins_part);
	sqlite3_finalize(cat->del_files);
	sqlite3_finalize(cat->ins_file);
	sqlite3_finalize(cat->parts);
	sqlite3_finalize(cat->files);
	sqlite3_finalize(cat->get);
	sqlite3_finalize(cat->dir);
	sqlite3_finalize(cat->del);
	for (i = 0; i < ARRAY_SIZE(cat->search); i++)
		sqlite3_finalize(cat->search[i]);
	if (cat->db && sqlite3_close(cat->db) != SQLITE_OK)
		log_warn("catalog: %s: close: %s", cat->path,
			 sqlite3_errmsg(cat->db));
}

static int prepare(struct catalog *cat, sqlite3_stmt **stp, const char *sql)
{
	int rc = sqlite3_prepare_v3(cat->db, sql, -1,
				    SQLITE_PREPARE_PERSISTENT, stp, NULL);

	return rc == SQLITE_OK ? 0 : cat_errno(cat, rc, "prepare");
}

/* Run a statement that returns no rows we need, then reset it. */
static int run(struct catalog *cat, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	return cat_errno(cat, rc, what);
}

/* A one-value PRAGMA whose answer we want to check. */
static int pragma_text(struct catalog *cat, const char *sql, char *out,
		       size_t size)
{
	sqlite3_stmt *st = NULL;
	int rc, err;

	err = prepare(cat, &st, sql);
	if (err)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);

		str_ncpy(out, v ? (const char *)v : "", size);
		err = 0;
	}
	else if (rc == SQLITE_DONE) {
		out[0] = '\0';
		err = 0;
	}
	else {
		err = cat_errno(cat, rc, sql);
	}
	sqlite3_finalize(st);
	return err;
}

static int exec(struct catalog *cat, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(cat->db, sql, NULL, NULL, &msg);

	sqlite3_free(msg);
	return rc == SQLITE_OK ? 0 : cat_errno(cat, rc, "schema");
}

static int schema(struct catalog *cat)
{
	char v[32];
	int err;

	err = pragma_text(cat, "PRAGMA user_version", v, sizeof(v));
	if (err)
		return err;
	if (atoi(v) > CAT_SCHEMA) {
		log_err("catalog: %s: schema version %s is newer than this "
			"program's (%d)", cat->path, v, CAT_SCHEMA);
		return EPROTO;
	}
	err = exec(cat, "BEGIN IMMEDIATE");
	if (err)
		return err;
	err = exec(cat, schema_sql);
	if (err) {
		(void)exec(cat, "ROLLBACK");
		return err;
	}
	return exec(cat, "COMMIT");
}

static int prepare_all(struct catalog *cat)
{
	int err = 0;

	err |= prepare(cat, &cat->begin, "BEGIN IMMEDIATE");
	err |= prepare(cat, &cat->begin_ro, "BEGIN");
	err |= prepare(cat, &cat->commit, "COMMIT");
	err |= prepare(cat, &cat->rollback, "ROLLBACK");
	err |= prepare(cat, &cat->upsert,
		"INSERT INTO recordings(id, call_id, session_id, src, state,"
		" reason, started, stopped, media_recorded, media_refused, dir,"
		" detail, updated)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
		" ON CONFLICT(id) DO UPDATE SET call_id = excluded.call_id,"
		" session_id = excluded.session_id, src = excluded.src,"
		" state = excluded.state, reason = excluded.reason,"
		" started = excluded.started, stopped = excluded.stopped,"
		" media_recorded = excluded.media_recorded,"
		" media_refused = excluded.media_refused, dir = excluded.dir,"
		" detail = excluded.detail, updated = excluded.updated");
	err |= prepare(cat, &cat->del_parts,
		       "DELETE FROM participants WHERE rec_id = ?1");
	err |= prepare(cat, &cat->ins_part,
		       "INSERT INTO participants(rec_id, participant_id, aor,"
		       " name) VALUES(?1, ?2, ?3, ?4)");
	err |= prepare(cat, &cat->del_files,
		       "DELETE FROM files WHERE rec_id = ?1");
	err |= prepare(cat, &cat->ins_file,
		       "INSERT INTO files(rec_id, name, kind, participant,"
		       " size, sha256) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
	err |= prepare(cat, &cat->parts,
		       "SELECT participant_id, aor, name FROM participants"
		       " WHERE rec_id = ?1 ORDER BY rowid");
	err |= prepare(cat, &cat->files,
		       "SELECT name, kind, participant, size, sha256 FROM files"
		       " WHERE rec_id = ?1 ORDER BY rowid");
	err |= prepare(cat, &cat->get,
		       "SELECT " ROW_COLS ", detail FROM recordings"
		       " WHERE id = ?1");
	err |= prepare(cat, &cat->dir,
		       "SELECT dir, state FROM recordings WHERE id = ?1");
	err |= prepare(cat, &cat->del, "DELETE FROM recordings WHERE id = ?1");
	/* the errno values were logged one by one; any of them will do */
	return err ? EIO : 0;
}

int catalog_open(struct catalog **catp, const char *path)
{
	struct catalog *cat;
	char mode[16];
	int rc, err;

	if (!catp || !path || !path[0])
		return EINVAL;
	cat = mem_zalloc(sizeof(*cat), cat_destructor);
	if (!cat)
		return ENOMEM;
	str_ncpy(cat->path, path, sizeof(cat->path));

	rc = sqlite3_open_v2(path, &cat->db, SQLITE_OPEN_READWRITE |
			     SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		err = cat_errno(cat, rc, "open");
		goto out;
	}
	(void)sqlite3_extended_result_codes(cat->db, 1);
	(void)sqlite3_busy_timeout(cat->db, CAT_BUSY_MS);

	/* WAL: readers (the sqlite3 CLI, a backup) never block the daemon's
	 * writes; NORMAL: a commit is durable at the next checkpoint, which
	 * is enough for a catalog the folders can rebuild. */
	err = pragma_text(cat, "PRAGMA journal_mode = WAL", mode,
			  sizeof(mode));
	if (err)
		goto out;
	if (strcmp(mode, "wal"))
		log_warn("catalog: %s: journal mode is '%s', not wal", path,
			 mode);
	err = exec(cat, "PRAGMA synchronous = NORMAL;"
		   "PRAGMA foreign_keys = ON;");
	if (err)
		goto out;
	err = schema(cat);
	if (err)
		goto out;
	err = prepare_all(cat);
 out:
	if (err)
		mem_deref(cat);
	else
		*catp = cat;
	return err;
}

/* ---- sync ---- */

static int bind_field(sqlite3_stmt *st, int idx, const char *s, size_t size)
{
	return sqlite3_bind_text(st, idx, s, (int)strnlen(s, size),
				 SQLITE_TRANSIENT);
}

#define BIND_FIELD(st, idx, field) bind_field((st), (idx), (field), \
					      sizeof(field))

/* Append MEDIA to the comma list OUT unless it is there already; names
 * that cannot sit in the list (empty, with a comma) are left out. */
static void media_add(char *out, size_t size, const char *media, size_t mmax)
{
	size_t ml = strnlen(media, mmax), ol = strlen(out);
	const char *p = out;

	if (!ml || memchr(media, ',', ml))
		return;
	while (p && *p) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == ml && !memcmp(p, media, ml))
			return;
		p = e ? e + 1 : NULL;
	}
	if (ol + (ol ? 1 : 0) + ml + 1 > size)
		return;
	if (ol)
		out[ol++] = ',';
	memcpy(out + ol, media, ml);
	out[ol + ml] = '\0';
}

static int refs_print(struct mbuf *mb, const char refs[][SF_ID_MAX],
		      size_t n)
{
	size_t i;
	int err = mbuf_write_str(mb, "[");

	if (n > SF_REFS_MAX)
		n = SF_REFS_MAX;
	for (i = 0; i < n && !err; i++) {
		struct pl pl = fpl(refs[i], SF_ID_MAX);

		err = mbuf_printf(mb, "%s%H", i ? "," : "", catalog_jpl, &pl);
	}
	return err ? err : mbuf_write_str(mb, "]");
}

static int stream_print(struct mbuf *mb, const struct sf_stream *s)
{
	struct pl label = FPL(s->label), media = FPL(s->media);
	struct pl refused = FPL(s->refused);
	size_t i, n = s->ncodecs > SF_CODECS_MAX ? SF_CODECS_MAX : s->ncodecs;
	int err;

	err = mbuf_printf(mb, "{\"index\":%d,\"label\":%H,\"media\":%H,"
			  "\"accepted\":%s,\"refused\":%H,\"port\":%u,"
			  "\"rtcp_port\":%u,\"opened\":", s->index,
			  catalog_jpl, &label, catalog_jpl, &media,
			  s->accepted ? "true" : "false", catalog_jpl,
			  &refused, (unsigned)s->port,
			  (unsigned)s->rtcp_port);
	err |= jtime(mb, s->opened);
	err |= mbuf_write_str(mb, ",\"closed\":");
	err |= jtime(mb, s->closed);
	err |= mbuf_write_str(mb, ",\"codecs\":[");
	for (i = 0; i < n && !err; i++) {
		const struct sf_codec *c = &s->codecs[i];
		struct pl name = FPL(c->name), fmtp = FPL(c->fmtp);

		err = mbuf_printf(mb, "%s{\"pt\":%d,\"name\":%H,\"clock\":%u,"
				  "\"channels\":%d,\"fmtp\":%H}",
				  i ? "," : "", c->pt, catalog_jpl, &name,
				  (unsigned)c->clock, c->channels, catalog_jpl,
				  &fmtp);
	}
	return err ? err : mbuf_write_str(mb, "]}");
}

static int file_print(struct mbuf *mb, const struct sf_file *f)
{
	struct pl name = FPL(f->name), kind = FPL(f->kind);
	struct pl part = FPL(f->participant), sha = FPL(f->sha256);

	return mbuf_printf(mb, "{\"name\":%H,\"kind\":%H,\"participant\":%H,"
			   "\"size\":%llu,\"sha256\":%H}", catalog_jpl, &name,
			   catalog_jpl, &kind, catalog_jpl, &part,
			   (unsigned long long)f->size, catalog_jpl, &sha);
}

/* The detail column: everything of SF the row's own columns do not hold. */
static int detail_print(struct mbuf *mb, const struct sessfile *sf)
{
	size_t i, ns, np, nf;
	int err;

	ns = sf->nstreams > SF_STREAMS_MAX ? SF_STREAMS_MAX : sf->nstreams;
	np = sf->nparts > SF_PARTS_MAX ? SF_PARTS_MAX : sf->nparts;
	nf = sf->nfiles > SF_STREAMS_MAX ? SF_STREAMS_MAX : sf->nfiles;

	err = mbuf_printf(mb, "{\"has_metadata\":%s,\"participants\":[",
			  sf->has_metadata ? "true" : "false");
	for (i = 0; i < np && !err; i++) {
		const struct sf_participant *p = &sf->parts[i];
		struct pl id = FPL(p->id), aor = FPL(p->aor);
		struct pl name = FPL(p->name);

		err = mbuf_printf(mb, "%s{\"id\":%H,\"aor\":%H,\"name\":%H,"
				  "\"send\":", i ? "," : "", catalog_jpl, &id,
				  catalog_jpl, &aor, catalog_jpl, &name);
		err |= refs_print(mb, p->send, p->nsend);
		err |= mbuf_write_str(mb, ",\"recv\":");
		err |= refs_print(mb, p->recv, p->nrecv);
		if (p->left) {
			struct pl lt = FPL(p->left_time);

			err |= mbuf_printf(mb, ",\"left\":true,\"left_time\":%H",
					   catalog_jpl, &lt);
		}
		err |= mbuf_write_str(mb, "}");
	}
	err |= mbuf_write_str(mb, "],\"streams\":[");
	for (i = 0; i < ns && !err; i++) {
		err = mbuf_write_str(mb, i ? "," : "");
		err |= stream_print(mb, &sf->streams[i]);
	}
	err |= mbuf_write_str(mb, "],\"files\":[");
	for (i = 0; i < nf && !err; i++) {
		err = mbuf_write_str(mb, i ? "," : "");
		err |= file_print(mb, &sf->files[i]);
	}
	err |= mbuf_write_str(mb, "]}");
	return err;
}

static double now_unix(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* The statements of one sync, inside the caller's transaction. */
static int sync_rows(struct catalog *cat, const struct sessfile *sf,
		     const char *dir, const char *detail, size_t dlen)
{
	char rec[SF_STREAMS_MAX * 8] = "", ref[SF_STREAMS_MAX * 8] = "";
	sqlite3_stmt *st = cat->upsert;
	size_t i, n;
	int err;

	n = sf->nstreams > SF_STREAMS_MAX ? SF_STREAMS_MAX : sf->nstreams;
	for (i = 0; i < n; i++) {
		const struct sf_stream *s = &sf->streams[i];

		media_add(s->accepted ? rec : ref, sizeof(rec), s->media,
			  sizeof(s->media));
	}

	BIND_FIELD(st, 1, sf->id);
	BIND_FIELD(st, 2, sf->call_id);
	BIND_FIELD(st, 3, sf->session_id);
	BIND_FIELD(st, 4, sf->src);
	sqlite3_bind_text(st, 5, state_name(sf->state), -1, SQLITE_STATIC);
	BIND_FIELD(st, 6, sf->reason);
	sqlite3_bind_double(st, 7, isfinite(sf->started) ? sf->started : 0);
	sqlite3_bind_double(st, 8, isfinite(sf->stopped) ? sf->stopped : 0);
	sqlite3_bind_text(st, 9, rec, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 10, ref, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 11, dir, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 12, detail, (int)dlen, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 13, now_unix());
	err = run(cat, st, "upsert");
	if (err)
		return err;

	BIND_FIELD(cat->del_parts, 1, sf->id);
	err = run(cat, cat->del_parts, "delete participants");
	n = sf->nparts > SF_PARTS_MAX ? SF_PARTS_MAX : sf->nparts;
	for (i = 0; i < n && !err; i++) {
		const struct sf_participant *p = &sf->parts[i];

		st = cat->ins_part;
		BIND_FIELD(st, 1, sf->id);
		BIND_FIELD(st, 2, p->id);
		BIND_FIELD(st, 3, p->aor);
		BIND_FIELD(st, 4, p->name);
		err = run(cat, st, "insert participant");
	}
	if (err)
		return err;

	BIND_FIELD(cat->del_files, 1, sf->id);
	err = run(cat, cat->del_files, "delete files");
	n = sf->nfiles > SF_STREAMS_MAX ? SF_STREAMS_MAX : sf->nfiles;
	for (i = 0; i < n && !err; i++) {
		const struct sf_file *f = &sf->files[i];

		st = cat->ins_file;
		BIND_FIELD(st, 1, sf->id);
		BIND_FIELD(st, 2, f->name);
		BIND_FIELD(st, 3, f->kind);
		BIND_FIELD(st, 4, f->participant);
		sqlite3_bind_int64(st, 5, f->size > INT64_MAX ? INT64_MAX :
				   (sqlite3_int64)f->size);
		BIND_FIELD(st, 6, f->sha256);
		err = run(cat, st, "insert file");
	}
	return err;
}

int catalog_sync(struct catalog *cat, const struct sessfile *sf,
		 const char *dir)
{
	struct mbuf *detail;
	int err;

	if (!cat || !sf || !dir || !sf->id[0] ||
	    strnlen(sf->id, sizeof(sf->id)) == sizeof(sf->id) ||
	    !state_name(sf->state))
		return EINVAL;
	detail = mbuf_alloc(2048);
	if (!detail)
		return ENOMEM;
	err = detail_print(detail, sf);
	if (err)
		goto out;

	err = run(cat, cat->begin, "begin");
	if (err)
		goto out;
	err = sync_rows(cat, sf, dir, (const char *)detail->buf, detail->end);
	if (!err)
		err = run(cat, cat->commit, "commit");
	if (err)
		(void)run(cat, cat->rollback, "rollback");
 out:
	mem_deref(detail);
	return err;
}

/* ---- reading rows back ---- */

static const char *col_text(sqlite3_stmt *st, int col)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	return v ? (const char *)v : "";
}

/* "audio,video" as ["audio","video"]. */
static int media_list(struct mbuf *mb, const char *list)
{
	const char *p = list;
	bool first = true;
	int err = mbuf_write_str(mb, "[");

	while (p && *p && !err) {
		const char *e = strchr(p, ',');
		struct pl pl;

		pl.p = p;
		pl.l = e ? (size_t)(e - p) : strlen(p);
		if (pl.l) {
			err = mbuf_printf(mb, "%s%H", first ? "" : ",",
					  catalog_jpl, &pl);
			first = false;
		}
		p = e ? e + 1 : NULL;
	}
	return err ? err : mbuf_write_str(mb, "]");
}

/* The columns every answer has, from a statement selecting ROW_COLS, as
 * the first members of an object (no braces). */
static int row_scalars(struct mbuf *mb, sqlite3_stmt *st)
{
	double started = sqlite3_column_double(st, C_STARTED);
	double stopped = sqlite3_column_double(st, C_STOPPED);
	int err;

	err = mbuf_printf(mb, "\"id\":%H,\"call_id\":%H,\"session_id\":%H,"
			  "\"src\":%H,\"state\":%H,\"reason\":%H,\"started\":",
			  catalog_jstr, col_text(st, C_ID),
			  catalog_jstr, col_text(st, C_CALL_ID),
			  catalog_jstr, col_text(st, C_SESSION_ID),
			  catalog_jstr, col_text(st, C_SRC),
			  catalog_jstr, col_text(st, C_STATE),
			  catalog_jstr, col_text(st, C_REASON));
	err |= jtime(mb, started);
	err |= mbuf_write_str(mb, ",\"stopped\":");
	if (stopped > 0)
		err |= jtime(mb, stopped);
	else
		err |= mbuf_write_str(mb, "null");
	err |= mbuf_write_str(mb, ",\"duration\":");
	if (stopped > 0 && started > 0 && stopped >= started)
		err |= jtime(mb, stopped - started);
	else
		err |= mbuf_write_str(mb, "null");
	err |= mbuf_write_str(mb, ",\"media_recorded\":");
	err |= media_list(mb, col_text(st, C_MEDIA_REC));
	err |= mbuf_write_str(mb, ",\"media_refused\":");
	err |= media_list(mb, col_text(st, C_MEDIA_REF));
	err |= mbuf_write_str(mb, ",\"updated\":");
	err |= jtime(mb, sqlite3_column_double(st, C_UPDATED));
	return err;
}

/* "participants":[{id,aor,name}] and "files":[...] of recording ID, from
 * their tables. */
static int row_lists(struct catalog *cat, struct mbuf *mb, const char *id)
{
	sqlite3_stmt *st = cat->parts;
	bool first = true;
	int rc = SQLITE_DONE, err;

	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	err = mbuf_write_str(mb, ",\"participants\":[");
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		err = mbuf_printf(mb, "%s{\"id\":%H,\"aor\":%H,\"name\":%H}",
				  first ? "" : ",",
				  catalog_jstr, col_text(st, 0),
				  catalog_jstr, col_text(st, 1),
				  catalog_jstr, col_text(st, 2));
		first = false;
	}
	if (!err && rc != SQLITE_DONE)
		err = cat_errno(cat, rc, "participants");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (err)
		return err;

	st = cat->files;
	first = true;
	rc = SQLITE_DONE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	err = mbuf_write_str(mb, "],\"files\":[");
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		err = mbuf_printf(mb, "%s{\"name\":%H,\"kind\":%H,"
				  "\"participant\":%H,\"size\":%lli,"
				  "\"sha256\":%H}", first ? "" : ",",
				  catalog_jstr, col_text(st, 0),
				  catalog_jstr, col_text(st, 1),
				  catalog_jstr, col_text(st, 2),
				  (long long)sqlite3_column_int64(st, 3),
				  catalog_jstr, col_text(st, 4));
		first = false;
	}
	if (!err && rc != SQLITE_DONE)
		err = cat_errno(cat, rc, "files");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return err ? err : mbuf_write_str(mb, "]");
}

/* Append the fixed fragment FRAG to SQL (SIZE bytes); false if full. */
static bool sql_add(char *sql, size_t size, const char *frag)
{
	size_t l = strlen(sql), fl = strlen(frag);

	if (l + fl >= size)
		return false;
	memcpy(sql + l, frag, fl + 1);
	return true;
}

/* The search statement for filter set MASK, prepared on first use. */
static int search_stmt(struct catalog *cat, unsigned mask,
		       sqlite3_stmt **stp)
{
	static const struct {
		unsigned flag;
		const char *sql;
	} frags[] = {
		{QF_PART, " AND EXISTS (SELECT 1 FROM participants AS p"
			  " WHERE p.rec_id = r.id AND"
			  " (instr(lower(p.aor), lower(:part)) > 0 OR"
			  " instr(lower(p.name), lower(:part)) > 0))"},
		{QF_CALL, " AND r.call_id = :call"},
		{QF_FROM, " AND r.started >= :from"},
		{QF_TO, " AND r.started <= :to"},
		{QF_MEDIA, " AND instr(',' || r.media_recorded || ',',"
			   " ',' || :media || ',') > 0"},
		{QF_STATE, " AND r.state = :state"},
	};
	char sql[1024] = "";
	bool ok;
	size_t i;
	int err;

	if (cat->search[mask]) {
		*stp = cat->search[mask];
		return 0;
	}
	/* fixed fragments only: no input ever becomes SQL text */
	ok = sql_add(sql, sizeof(sql), "SELECT " ROW_COLS
		     " FROM recordings AS r WHERE 1");
	for (i = 0; i < ARRAY_SIZE(frags); i++)
		if (mask & frags[i].flag)
			ok = ok && sql_add(sql, sizeof(sql), frags[i].sql);
	ok = ok && sql_add(sql, sizeof(sql), " ORDER BY r.started DESC,"
			   " r.id DESC LIMIT :limit OFFSET :offset");
	if (!ok)
		return ENOBUFS;          /* the fragments outgrew sql[] */
	err = prepare(cat, &cat->search[mask], sql);
	if (!err)
		*stp = cat->search[mask];
	return err;
}

static void bind_named_text(sqlite3_stmt *st, const char *name,
			    const char *v)
{
	int idx = sqlite3_bind_parameter_index(st, name);

	if (idx)
		sqlite3_bind_text(st, idx, v, -1, SQLITE_TRANSIENT);
}

static void bind_named_double(sqlite3_stmt *st, const char *name, double v)
{
	int idx = sqlite3_bind_parameter_index(st, name);

	if (idx)
		sqlite3_bind_double(st, idx, v);
}

static bool set(const char *s)
{
	return s && s[0];
}

static int search_rows(struct catalog *cat, const struct cat_query *q,
		       struct mbuf *mb)
{
	sqlite3_stmt *st;
	unsigned mask = 0;
	bool first = true;
	int rc = SQLITE_DONE, err;

	mask |= set(q->participant) ? QF_PART : 0;
	mask |= set(q->call_id) ? QF_CALL : 0;
	mask |= q->from > 0 ? QF_FROM : 0;
	mask |= q->to > 0 ? QF_TO : 0;
	mask |= set(q->media) ? QF_MEDIA : 0;
	mask |= set(q->state) ? QF_STATE : 0;
	err = search_stmt(cat, mask, &st);
	if (err)
		return err;

	bind_named_text(st, ":part", q->participant);
	bind_named_text(st, ":call", q->call_id);
	bind_named_double(st, ":from", q->from);
	bind_named_double(st, ":to", q->to);
	bind_named_text(st, ":media", q->media);
	bind_named_text(st, ":state", q->state);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":limit"),
			   q->limit ? q->limit : CAT_LIMIT_DFLT);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":offset"),
			   q->offset);

	err = mbuf_write_str(mb, "{\"recordings\":[");
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* the id is copied: row_lists() runs other statements */
		char id[SF_ID_MAX];

		str_ncpy(id, col_text(st, C_ID), sizeof(id));
		err = mbuf_write_str(mb, first ? "{" : ",{");
		err |= row_scalars(mb, st);
		if (!err)
			err = row_lists(cat, mb, id);
		err |= mbuf_write_str(mb, "}");
		first = false;
	}
	if (!err && rc != SQLITE_DONE)
		err = cat_errno(cat, rc, "search");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return err ? err : mbuf_write_str(mb, "]}");
}

int catalog_search(struct catalog *cat, const struct cat_query *q,
		   struct mbuf *mb)
{
	size_t start;
	int err;

	if (!cat || !q || !mb || q->limit > CAT_LIMIT_MAX || q->from < 0 ||
	    q->to < 0 || !isfinite(q->from) || !isfinite(q->to) ||
	    (set(q->state) && state_parse(q->state) < 0))
		return EINVAL;
	start = mb->end;
	/* one read transaction: the rows and their lists agree */
	err = run(cat, cat->begin_ro, "begin");
	if (err)
		return err;
	err = search_rows(cat, q, mb);
	(void)run(cat, cat->commit, "commit");
	if (err) {
		mb->end = mb->pos = start;
	}
	return err;
}

int catalog_get(struct catalog *cat, const char *id, struct mbuf *mb)
{
	sqlite3_stmt *st;
	size_t start;
	int rc, err;

	if (!cat || !id || !mb)
		return EINVAL;
	start = mb->end;
	st = cat->get;
	err = run(cat, cat->begin_ro, "begin");
	if (err)
		return err;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *detail = col_text(st, C_DETAIL);
		size_t dl = strlen(detail);

		err = mbuf_write_str(mb, "{");
		err |= row_scalars(mb, st);
		/* detail is our own object from detail_print(): its members
		 * (participants with send/recv, streams, files) follow the
		 * row's */
		if (dl >= 2 && detail[0] == '{' && detail[dl - 1] == '}') {
			if (dl > 2)
				err |= mbuf_printf(mb, ",%b", detail + 1,
						   dl - 2);
			err |= mbuf_write_str(mb, "}");
		}
		else {
			log_warn("catalog: %s: the detail of %s is not an "
				 "object", cat->path, id);
			err = EBADMSG;
		}
	}
	else if (rc == SQLITE_DONE) {
		err = ENOENT;
	}
	else {
		err = cat_errno(cat, rc, "get");
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	(void)run(cat, cat->commit, "commit");
	if (err)
		mb->end = mb->pos = start;
	return err;
}

int catalog_dir(struct catalog *cat, const char *id, char *dir, size_t size,
		enum sf_state *state)
{
	sqlite3_stmt *st;
	int rc, err = 0;

	if (!cat || !id || !dir || !size)
		return EINVAL;
	st = cat->dir;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *d = col_text(st, 0);
		int s = state_parse(col_text(st, 1));

		if (strlen(d) >= size) {
			err = ENAMETOOLONG;
		}
		else {
			str_ncpy(dir, d, size);
			if (state)
				*state = s < 0 ? SF_FAILED : (enum sf_state)s;
		}
	}
	else if (rc == SQLITE_DONE) {
		err = ENOENT;
	}
	else {
		err = cat_errno(cat, rc, "dir");
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return err;
}

int catalog_delete(struct catalog *cat, const char *id)
{
	int err;

	if (!cat || !id)
		return EINVAL;
	sqlite3_bind_text(cat->del, 1, id, -1, SQLITE_TRANSIENT);
	err = run(cat, cat->del, "delete");
	if (!err && sqlite3_changes(cat->db) == 0)
		err = ENOENT;
	return err;
}
