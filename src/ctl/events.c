/*
 * events.c: tallyctl events: tally-sip's event stream (GET /api/v1/events,
 * a WebSocket; src/sip/events.c) as one readable line per event, or with
 * --json each event's JSON on one line, as the server sent it.
 *
 * The readable line is "TIME EVENT key=value ...", values with blanks or
 * quotes in double quotes, so it reads well and still greps and splits:
 *
 *   {"event":"recording.video.rejected","time":"2026-12-10T10:00:01.234Z",
 *    "call_id":"c1-ab","recording_id":"r1-9f","medium":"video",
 *    "recorder":"sip:srs@127.0.0.1:5090","reason":"policy: audio only",
 *    "recording":{...}}
 *   -> 2026-12-10T10:00:01.234Z recording.video.rejected call=c1-ab
 *      recording=r1-9f medium=video recorder=sip:srs@127.0.0.1:5090
 *      reason="policy: audio only"                        (one line)
 *
 *   {"event":"call.ended","time":"...","call":{"id":"c1-ab","caller":
 *    {"user":"alice",...},"callee":{"user":"bob",...},"cause":"caller
 *    hangup",...}}
 *   -> ... call.ended call=c1-ab caller=alice callee=bob media=audio+video
 *      cause="caller hangup"
 *
 * Members a recording event may carry beyond the first slice (the party of
 * a per-party session) are shown when present; an event of a type this
 * file does not know shows its time and name and then its JSON, so nothing
 * the server says is lost. Every line is flushed at once (pipes, tests).
 */
#include <errno.h>
#include <string.h>
#include <re.h>
#include "ctl.h"

/* " KEY=VALUE", VALUE quoted (JSON-style escapes) when it has blanks,
 * quotes, '=' or control bytes, or is empty; nothing for NULL. */
static void kv(FILE *out, const char *key, const char *val)
{
	const char *p;
	bool quote = false;

	if (!val)
		return;
	for (p = val; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '"' || *p == '=' ||
		    *p == '\\')
			quote = true;
	if (!val[0])
		quote = true;
	if (!quote) {
		fprintf(out, " %s=%s", key, val);
		return;
	}
	(void)re_fprintf(out, " %s=\"%H\"", key, utf8_encode, val);
}

/* A string member, NULL when absent, null or empty. */
static const char *str(const struct odict *o, const char *key)
{
	const char *s = o ? odict_string(o, key) : NULL;

	return s && s[0] ? s : NULL;
}

static const struct odict *obj(const struct odict *o, const char *key)
{
	const struct odict_entry *e = o ? odict_get_type(o, ODICT_OBJECT,
							 key) : NULL;

	return e ? e->u.odict : NULL;
}

static void rec_line(FILE *out, const struct odict *ev)
{
	const struct odict *rec = obj(ev, "recording");

	kv(out, "call", str(ev, "call_id"));
	kv(out, "recording", str(ev, "recording_id"));
	kv(out, "medium", str(ev, "medium"));
	kv(out, "party", str(ev, "party"));
	kv(out, "recorder", str(ev, "recorder"));
	kv(out, "mode", str(rec, "mode"));
	kv(out, "reason", str(ev, "reason"));
}

static void call_line(FILE *out, const struct odict *ev)
{
	const struct odict *c = obj(ev, "call");
	const struct odict *caller = obj(c, "caller"), *callee = obj(c, "callee");
	char media[64];

	ctl_media_of(caller, media, sizeof(media));
	kv(out, "call", str(c, "id"));
	kv(out, "caller", str(caller, "user") ? str(caller, "user") :
	   str(caller, "uri"));
	kv(out, "callee", str(callee, "user") ? str(callee, "user") :
	   str(callee, "uri"));
	kv(out, "media", media);
	kv(out, "cause", str(c, "cause"));
}

void ctl_event_line(FILE *out, const char *p, size_t n)
{
	struct odict *ev = NULL;
	const char *type, *t;

	while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		--n;
	if (json_decode_odict(&ev, 16, p, n, 16) ||
	    !(type = str(ev, "event"))) {
		fwrite(p, 1, n, out);
		fputc('\n', out);
		goto out;
	}
	t = str(ev, "time");
	fprintf(out, "%s %s", t ? t : "-", type);
	if (!strncmp(type, "recording.", 10))
		rec_line(out, ev);
	else if (!strncmp(type, "call.", 5) && obj(ev, "call"))
		call_line(out, ev);
	else {
		fputc(' ', out);
		fwrite(p, 1, n, out);
	}
	fputc('\n', out);
 out:
	fflush(out);
	mem_deref(ev);
}

static void line_h(const char *p, size_t n, void *arg)
{
	ctl_event_line(arg, p, n);
}

static void json_h(const char *p, size_t n, void *arg)
{
	FILE *out = arg;

	while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		--n;
	fwrite(p, 1, n, out);
	fputc('\n', out);
	fflush(out);
}

int ctl_cmd_events(const struct ctl_target *t, bool json)
{
	struct ctl_resp r;
	int err, rc = 0;

	err = ctl_ws_follow(&t->url, t->token, "/api/v1/events",
			    json ? json_h : line_h, stdout, &r);
	if (err)
		rc = ctl_report(t, err, &r);
	ctl_resp_reset(&r);
	return rc;
}
