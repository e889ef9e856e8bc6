/*
 * jsonout.c: how tallyctl shows API answers: indented JSON (tallyctl call
 * ID, tallyctl calls --json), the calls table (tallyctl calls) and the
 * recordings table (tallyctl recordings).
 *
 * Input is libre's ordered dictionary (json_decode_odict), so members come
 * out in the order the server sent them. Strings are re-escaped with
 * libre's utf8_encode, so the output is valid JSON again.
 *
 *   ID            STATE     CREATED                   CALLER   CALLEE   MEDIA        CAUSE
 *   c1-3f2a1b     answered  2025-01-02T03:04:05.678Z  sipp     1234     audio        -
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <re.h>
#include "ctl.h"

static void indent(FILE *out, unsigned depth)
{
	unsigned i;

	for (i = 0; i < depth; i++)
		fputs("  ", out);
}

static int value(FILE *out, const struct odict_entry *e, unsigned depth);

/* The shortest decimal that reads back as D: 75.4, not
 * 75.400000000000006. */
static void print_double(FILE *out, double d)
{
	char buf[40];
	int prec;

	for (prec = 15; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	if (prec == 17)
		snprintf(buf, sizeof(buf), "%.17g", d);
	fputs(buf, out);
}

static int container(FILE *out, const struct odict *o, bool array,
		     unsigned depth)
{
	struct le *le;
	int err = 0;

	if (!o || !list_head(&o->lst)) {
		fputs(array ? "[]" : "{}", out);
		return 0;
	}
	fputs(array ? "[\n" : "{\n", out);
	for (le = list_head(&o->lst); le && !err; le = le->next) {
		const struct odict_entry *e = le->data;

		indent(out, depth + 1);
		if (!array)
			(void)re_fprintf(out, "\"%H\": ", utf8_encode, e->key);
		err = value(out, e, depth + 1);
		fputs(le->next ? ",\n" : "\n", out);
	}
	indent(out, depth);
	fputs(array ? "]" : "}", out);
	return err;
}

static int value(FILE *out, const struct odict_entry *e, unsigned depth)
{
	switch (e->type) {
	case ODICT_OBJECT:
		return container(out, e->u.odict, false, depth);
	case ODICT_ARRAY:
		return container(out, e->u.odict, true, depth);
	case ODICT_STRING:
		(void)re_fprintf(out, "\"%H\"", utf8_encode, e->u.str);
		return 0;
	case ODICT_INT:
		fprintf(out, "%lld", (long long)e->u.integer);
		return 0;
	case ODICT_DOUBLE:
		print_double(out, e->u.dbl);
		return 0;
	case ODICT_BOOL:
		fputs(e->u.boolean ? "true" : "false", out);
		return 0;
	case ODICT_NULL:
		fputs("null", out);
		return 0;
	}
	return EPROTO;
}

/*
 * ctl_json_pretty: print O (an object, or an array if ARRAY) indented by
 * two spaces, with a final newline. 0 or EPROTO (unknown entry type).
 */
int ctl_json_pretty(FILE *out, const struct odict *o, bool array)
{
	int err = container(out, o, array, 0);

	fputc('\n', out);
	return err;
}

static const struct odict *sub(const struct odict *o, enum odict_type t,
			       const char *key)
{
	const struct odict_entry *e = o ? odict_get_type(o, t, key) : NULL;

	return e ? e->u.odict : NULL;
}

static const char *str_or(const struct odict *o, const char *key,
			  const char *dflt)
{
	const char *s = o ? odict_string(o, key) : NULL;

	return s && s[0] ? s : dflt;
}

/* "audio+video": the active m= lines of a party (ctl.h). */
void ctl_media_of(const struct odict *party, char *buf, size_t size)
{
	const struct odict *m = sub(party, ODICT_ARRAY, "media");
	struct le *le;
	size_t n = 0;

	buf[0] = '\0';
	for (le = m ? list_head(&m->lst) : NULL; le; le = le->next) {
		const struct odict_entry *e = le->data;
		const char *type;
		bool active = true;

		if (e->type != ODICT_OBJECT)
			continue;
		type = odict_string(e->u.odict, "type");
		(void)odict_get_boolean(e->u.odict, &active, "active");
		if (!type || !active)
			continue;
		n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s",
				      n ? "+" : "", type);
		if (n >= size)
			break;
	}
	if (!buf[0])
		snprintf(buf, size, "-");
}

/* Caller/callee as "name <user>" or the user or the URI. */
static void party_of(const struct odict *party, char *buf, size_t size)
{
	const char *user = str_or(party, "user", NULL);
	const char *uri = str_or(party, "uri", "-");

	snprintf(buf, size, "%s", user ? user : uri);
}

int ctl_calls_table(FILE *out, const struct odict *reply)
{
	const struct odict *calls = sub(reply, ODICT_ARRAY, "calls");
	struct le *le;

	if (!calls)
		return EPROTO;
	fprintf(out, "%-18s %-9s %-24s %-20s %-20s %-12s %s\n", "ID", "STATE",
		"CREATED", "CALLER", "CALLEE", "MEDIA", "CAUSE");
	for (le = list_head(&calls->lst); le; le = le->next) {
		const struct odict_entry *e = le->data;
		const struct odict *c;
		char caller[128], callee[128], media[64];

		if (e->type != ODICT_OBJECT)
			continue;
		c = e->u.odict;
		party_of(sub(c, ODICT_OBJECT, "caller"), caller, sizeof(caller));
		party_of(sub(c, ODICT_OBJECT, "callee"), callee, sizeof(callee));
		ctl_media_of(sub(c, ODICT_OBJECT, "caller"), media,
			     sizeof(media));
		fprintf(out, "%-18s %-9s %-24s %-20s %-20s %-12s %s\n",
			str_or(c, "id", "-"), str_or(c, "state", "-"),
			str_or(c, "created", "-"), caller, callee, media,
			str_or(c, "cause", "-"));
	}
	if (!list_head(&calls->lst))
		fprintf(out, "(no calls)\n");
	return 0;
}

/* A number member (int or double); false if absent, null or not one. */
static bool number_of(const struct odict *o, const char *key, double *v)
{
	const struct odict_entry *e = o ? odict_lookup(o, key) : NULL;

	if (!e)
		return false;
	if (e->type == ODICT_INT)
		*v = (double)e->u.integer;
	else if (e->type == ODICT_DOUBLE)
		*v = e->u.dbl;
	else
		return false;
	return isfinite(*v);
}

/* Unix seconds as "2026-11-25T22:30:00Z". */
static void utc_of(double t, char *buf, size_t size)
{
	time_t s = (time_t)t;
	struct tm tm;

	if (t <= 0 || !gmtime_r(&s, &tm) ||
	    !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "-");
}

/* Seconds as "m:ss" or "h:mm:ss". */
static void duration_of(const struct odict *r, char *buf, size_t size)
{
	double d;
	unsigned long s;

	if (!number_of(r, "duration", &d) || d < 0) {
		snprintf(buf, size, "-");
		return;
	}
	s = (unsigned long)(d + 0.5);
	if (s >= 3600)
		snprintf(buf, size, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60,
			 s % 60);
	else
		snprintf(buf, size, "%lu:%02lu", s / 60, s % 60);
}

/* Append the strings of array KEY to BUF joined by SEP. */
static size_t join_of(const struct odict *o, const char *key,
		      const char *sep, char *buf, size_t size, size_t n)
{
	const struct odict *a = sub(o, ODICT_ARRAY, key);
	struct le *le;
	bool first = true;

	for (le = a ? list_head(&a->lst) : NULL; le; le = le->next) {
		const struct odict_entry *e = le->data;

		if (e->type != ODICT_STRING || n >= size)
			continue;
		n += (size_t)snprintf(buf + n, size - n, "%s%s",
				      first ? "" : sep, e->u.str);
		first = false;
	}
	return n < size ? n : size - 1;
}

/* "audio+video", with "(no video)" for what was refused. */
static void rec_media_of(const struct odict *r, char *buf, size_t size)
{
	size_t n;

	buf[0] = '\0';
	n = join_of(r, "media_recorded", "+", buf, size, 0);
	if (!n)
		n = (size_t)snprintf(buf, size, "none");
	if (n < size && sub(r, ODICT_ARRAY, "media_refused") &&
	    list_head(&sub(r, ODICT_ARRAY, "media_refused")->lst)) {
		n += (size_t)snprintf(buf + n, size - n, " (no ");
		if (n < size)
			n = join_of(r, "media_refused", "+", buf, size, n);
		if (n < size)
			snprintf(buf + n, size - n, ")");
	}
}

/* "Alice <sip:alice@atlanta.com>, Bob" (cut at SIZE). */
static void parts_of(const struct odict *r, char *buf, size_t size)
{
	const struct odict *a = sub(r, ODICT_ARRAY, "participants");
	struct le *le;
	size_t n = 0;

	buf[0] = '\0';
	for (le = a ? list_head(&a->lst) : NULL; le && n < size;
	     le = le->next) {
		const struct odict_entry *e = le->data;
		const char *name, *aor;

		if (e->type != ODICT_OBJECT)
			continue;
		name = str_or(e->u.odict, "name", NULL);
		aor = str_or(e->u.odict, "aor", NULL);
		if (name && aor)
			n += (size_t)snprintf(buf + n, size - n, "%s%s <%s>",
					      n ? ", " : "", name, aor);
		else
			n += (size_t)snprintf(buf + n, size - n, "%s%s",
					      n ? ", " : "", name ? name :
					      aor ? aor :
					      str_or(e->u.odict, "id", "?"));
	}
	if (!buf[0])
		snprintf(buf, size, "%s", str_or(r, "src", "-"));
}

int ctl_recordings_table(FILE *out, const struct odict *reply)
{
	const struct odict *recs = sub(reply, ODICT_ARRAY, "recordings");
	struct le *le;

	if (!recs)
		return EPROTO;
	fprintf(out, "%-25s %-10s %-20s %8s %-18s %5s %s\n", "ID", "STATE",
		"STARTED", "DURATION", "MEDIA", "FILES", "PARTICIPANTS");
	for (le = list_head(&recs->lst); le; le = le->next) {
		const struct odict_entry *e = le->data;
		const struct odict *r, *files;
		char started[32], dur[24], media[64], parts[160];
		double t = 0;

		if (e->type != ODICT_OBJECT)
			continue;
		r = e->u.odict;
		(void)number_of(r, "started", &t);
		utc_of(t, started, sizeof(started));
		duration_of(r, dur, sizeof(dur));
		rec_media_of(r, media, sizeof(media));
		parts_of(r, parts, sizeof(parts));
		files = sub(r, ODICT_ARRAY, "files");
		fprintf(out, "%-25s %-10s %-20s %8s %-18s %5u %s\n",
			str_or(r, "id", "-"), str_or(r, "state", "-"),
			started, dur, media,
			files ? (unsigned)list_count(&files->lst) : 0u, parts);
	}
	if (!list_head(&recs->lst))
		fprintf(out, "(no recordings)\n");
	return 0;
}
