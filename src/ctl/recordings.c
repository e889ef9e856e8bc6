/*
 * recordings.c: tallyctl's tally-recorder commands, against the recorder's
 * API (src/recorder/recapi.c).
 *
 *   tallyctl recordings --participant alice --from 2026-11-25 --media video
 *     GET /api/v1/recordings?participant=alice&from=1764028800.000
 *         &media=video
 *     -> the table (jsonout.c), or with --json the reply, indented
 *
 *   tallyctl recording 20261125T223000Z-3fa2b9c1 --download ./out
 *     GET /api/v1/recordings/ID                 the file list
 *     GET /api/v1/recordings/ID/files/NAME      each file, streamed to
 *         ./out/.NAME.part while SHA-256 is computed, then checked against
 *         the listed size and sha256 and renamed to ./out/NAME
 *     A file that does not match is removed and reported; the exit status
 *     is 1 if any file failed. Names come from the server, so a name that
 *     is not one plain file name ('/', leading '.', control bytes) is
 *     refused instead of written.
 *
 *   tallyctl recording ID --delete
 *     DELETE /api/v1/recordings/ID   (409 while recording or finalizing)
 *
 * Filter values are percent-encoded into the query string; --from/--to
 * are turned into unix seconds here (ctl_parse_time), so the API only ever
 * sees numbers.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <re.h>
#include "ctl.h"

/* Append S percent-encoded (all but RFC 3986 unreserved bytes) to OUT
 * (SIZE bytes, NUL-terminated). false if it does not fit. */
static bool pct_append(char *out, size_t size, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(out);

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~", c)) {
			if (n + 1 >= size)
				return false;
			out[n++] = (char)c;
		}
		else {
			if (n + 3 >= size)
				return false;
			out[n++] = '%';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
	}
	out[n] = '\0';
	return true;
}

/* Append "?NAME=VALUE" or "&NAME=VALUE" to the query Q. */
static bool query_add(char *q, size_t size, const char *name,
		      const char *val)
{
	size_t n = strlen(q);
	int k = snprintf(q + n, size - n, "%c%s=", n ? '&' : '?', name);

	if (k < 0 || (size_t)k >= size - n)
		return false;
	return pct_append(q, size, val);
}

int ctl_parse_time(const char *s, bool end, double *t)
{
	static const char *const fmts[] = {
		"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
		"%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d",
	};
	struct tm tm;
	char *e;
	size_t i;

	if (!s || !s[0])
		return EINVAL;
	*t = strtod(s, &e);
	if (!*e && isfinite(*t) && *t >= 0 && s[0] != '-')
		return 0;                  /* unix seconds */
	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		const char *rest;
		time_t u;

		memset(&tm, 0, sizeof(tm));
		rest = strptime(s, fmts[i], &tm);
		if (!rest || (rest[0] && strcmp(rest, "Z")))
			continue;
		u = timegm(&tm);
		if (u == (time_t)-1)
			return EINVAL;
		*t = (double)u;
		/* a date alone: --to means up to its end */
		if (end && i == 4)
			*t += 86400 - 0.001;
		return 0;
	}
	return EINVAL;
}

static int add_time(char *q, size_t size, const char *name, const char *v,
		    bool end)
{
	char num[48];
	double t;

	if (!v)
		return 0;
	if (ctl_parse_time(v, end, &t)) {
		fprintf(stderr, "tallyctl: --%s '%s': want unix seconds or "
			"2026-11-25T22:30:00Z, 2026-11-25 22:30, 2026-11-25 "
			"(UTC)\n", name, v);
		return EINVAL;
	}
	snprintf(num, sizeof(num), "%.3f", t);
	return query_add(q, size, name, num) ? 0 : ENAMETOOLONG;
}

int ctl_cmd_recordings(const struct ctl_target *t, const struct ctl_recq *rq,
		       bool json)
{
	char q[2048] = "", path[2200];
	struct odict *od = NULL;
	bool ok = true;
	int rc, err;

	/* the server checks the values (400 with a reason) */
	if (rq->participant)
		ok = ok && query_add(q, sizeof(q), "participant",
				     rq->participant);
	if (rq->call_id)
		ok = ok && query_add(q, sizeof(q), "call_id", rq->call_id);
	if (rq->media)
		ok = ok && query_add(q, sizeof(q), "media", rq->media);
	if (rq->state)
		ok = ok && query_add(q, sizeof(q), "state", rq->state);
	if (rq->limit)
		ok = ok && query_add(q, sizeof(q), "limit", rq->limit);
	if (rq->offset)
		ok = ok && query_add(q, sizeof(q), "offset", rq->offset);
	if (!ok) {
		fprintf(stderr, "tallyctl: the search is too long\n");
		return CTL_EXIT_USAGE;
	}
	err = add_time(q, sizeof(q), "from", rq->from, false);
	if (!err)
		err = add_time(q, sizeof(q), "to", rq->to, true);
	if (err)
		return CTL_EXIT_USAGE;
	snprintf(path, sizeof(path), "/api/v1/recordings%s", q);

	rc = ctl_get_json(t, path, &od);
	if (rc)
		return rc;
	if (json)
		rc = ctl_json_pretty(stdout, od, false) ? CTL_EXIT_FAIL : 0;
	else if (ctl_recordings_table(stdout, od)) {
		fprintf(stderr, "tallyctl: the reply has no \"recordings\" "
			"list\n");
		rc = CTL_EXIT_FAIL;
	}
	mem_deref(od);
	return rc;
}

/* A recording id as the recorder makes them. */
bool ctl_id_ok(const char *id)
{
	size_t i, n = strlen(id);

	if (!n || n >= 64 || strstr(id, ".."))
		return false;
	for (i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return false;
	}
	return true;
}

/* A name the server listed, safe to create in the target folder: one
 * plain component, not hidden, no control bytes. */
static bool fname_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (!n || n > 200 || name[0] == '.')
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
			return false;
	}
	return true;
}

/* Fetch one listed file F into DFD; prints one line. 0 or 1. */
static int download_one(const struct ctl_target *t, const char *id,
			int dfd, const char *dir, const struct odict *f)
{
	const char *name = odict_string(f, "name");
	const char *want_sha = odict_string(f, "sha256");
	const struct odict_entry *se = odict_lookup(f, "size");
	char path[900], tmp[260], hex[65];
	struct ctl_sha256 sha;
	struct ctl_resp r;
	uint8_t d[32];
	uint64_t n = 0, want;
	int fd, err, rc = 1;

	if (!name || !fname_ok(name)) {
		fprintf(stderr, "tallyctl: refusing the file name '%s'\n",
			name ? name : "(none)");
		return 1;
	}
	if (!se || se->type != ODICT_INT || se->u.integer < 0) {
		fprintf(stderr, "tallyctl: %s: no size listed\n", name);
		return 1;
	}
	want = (uint64_t)se->u.integer;
	/* the name, percent-encoded as a path segment */
	snprintf(path, sizeof(path), "/api/v1/recordings/%s/files/", id);
	if (!pct_append(path, sizeof(path), name)) {
		fprintf(stderr, "tallyctl: %s: name too long\n", name);
		return 1;
	}
	snprintf(tmp, sizeof(tmp), ".%s.part", name);

	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		    O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "tallyctl: %s/%s: %s\n", dir, tmp,
			strerror(errno));
		return 1;
	}
	ctl_sha256_init(&sha);
	err = ctl_get_file(&t->url, t->token, path, fd, &sha, &n, &r);
	if (err) {
		(void)ctl_report(t, err, &r);
		goto out;
	}
	ctl_sha256_final(&sha, d);
	ctl_sha256_hex(d, hex);
	if (n != want) {
		fprintf(stderr, "tallyctl: %s: %llu bytes, the recorder lists "
			"%llu\n", name, (unsigned long long)n,
			(unsigned long long)want);
		goto out;
	}
	if (want_sha && want_sha[0] && strcasecmp(want_sha, hex)) {
		fprintf(stderr, "tallyctl: %s: sha256 %s, the recorder lists "
			"%s\n", name, hex, want_sha);
		goto out;
	}
	if (fsync(fd) || close(fd)) {
		fd = -1;
		fprintf(stderr, "tallyctl: %s/%s: %s\n", dir, tmp,
			strerror(errno));
		goto out;
	}
	fd = -1;
	if (renameat(dfd, tmp, dfd, name)) {
		fprintf(stderr, "tallyctl: %s/%s: %s\n", dir, name,
			strerror(errno));
		goto out;
	}
	printf("%-28s %12llu bytes  sha256 %s\n", name,
	       (unsigned long long)n, want_sha && want_sha[0] ?
	       "ok" : "not listed, not checked");
	rc = 0;
 out:
	if (fd >= 0)
		close(fd);
	if (rc)
		(void)unlinkat(dfd, tmp, 0);
	ctl_resp_reset(&r);
	return rc;
}

static int download_all(const struct ctl_target *t, const char *id,
			const struct odict *rec, const char *dir)
{
	const struct odict_entry *fe = odict_get_type(rec, ODICT_ARRAY,
						      "files");
	unsigned ok = 0, bad = 0;
	struct le *le;
	int dfd;

	if (!fe) {
		fprintf(stderr, "tallyctl: the reply has no \"files\" list\n");
		return CTL_EXIT_FAIL;
	}
	if (mkdir(dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "tallyctl: %s: %s\n", dir, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		fprintf(stderr, "tallyctl: %s: %s\n", dir, strerror(errno));
		return CTL_EXIT_FAIL;
	}
	for (le = list_head(&fe->u.odict->lst); le; le = le->next) {
		const struct odict_entry *e = le->data;

		if (e->type != ODICT_OBJECT)
			continue;
		if (download_one(t, id, dfd, dir, e->u.odict))
			++bad;
		else
			++ok;
	}
	close(dfd);
	if (!ok && !bad)
		printf("(%s lists no files yet; state %s)\n", id,
		       odict_string(rec, "state") ?
		       odict_string(rec, "state") : "?");
	else
		printf("%u of %u files into %s\n", ok, ok + bad, dir);
	return bad ? CTL_EXIT_FAIL : 0;
}

int ctl_cmd_recording(const struct ctl_target *t, const char *id,
		      const char *download, bool del)
{
	struct odict *od = NULL;
	char path[160];
	int rc;

	if (!id) {
		fprintf(stderr, "tallyctl: recording needs an ID\n");
		return CTL_EXIT_USAGE;
	}
	if (!ctl_id_ok(id)) {
		fprintf(stderr, "tallyctl: bad recording id '%s'\n", id);
		return CTL_EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/api/v1/recordings/%s", id);

	if (del) {
		struct ctl_resp r;
		int err = ctl_request(&t->url, t->token, "DELETE", path, &r);

		if (err || r.scode != 200)
			rc = ctl_report(t, err, &r);
		else {
			printf("deleted %s\n", id);
			rc = 0;
		}
		ctl_resp_reset(&r);
		return rc;
	}
	rc = ctl_get_json(t, path, &od);
	if (rc)
		return rc;
	if (download)
		rc = download_all(t, id, od, download);
	else
		rc = ctl_json_pretty(stdout, od, false) ? CTL_EXIT_FAIL : 0;
	mem_deref(od);
	return rc;
}
