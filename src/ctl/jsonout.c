/*
 * jsonout.c: how tallyctl shows API answers: indented JSON (tallyctl call
 * ID, tallyctl calls --json) and the calls table (tallyctl calls).
 *
 * Input is libre's ordered dictionary (json_decode_odict), so members come
 * out in the order the server sent them. Strings are re-escaped with
 * libre's utf8_encode, so the output is valid JSON again.
 *
 *   ID            STATE     CREATED                   CALLER   CALLEE   MEDIA        CAUSE
 *   c1-3f2a1b     answered  2025-01-02T03:04:05.678Z  sipp     1234     audio        -
 */
#include <errno.h>
#include <string.h>
#include <re.h>
#include "ctl.h"

static void indent(FILE *out, unsigned depth)
{
	unsigned i;

	for (i = 0; i < depth; i++)
		fputs("  ", out);
}

static int value(FILE *out, const struct odict_entry *e, unsigned depth);

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
		fprintf(out, "%.17g", e->u.dbl);
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

/* "audio+video": the active m= lines of a party. */
static void media_of(const struct odict *party, char *buf, size_t size)
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
		media_of(sub(c, ODICT_OBJECT, "caller"), media, sizeof(media));
		fprintf(out, "%-18s %-9s %-24s %-20s %-20s %-12s %s\n",
			str_or(c, "id", "-"), str_or(c, "state", "-"),
			str_or(c, "created", "-"), caller, callee, media,
			str_or(c, "cause", "-"));
	}
	if (!list_head(&calls->lst))
		fprintf(out, "(no calls)\n");
	return 0;
}
