/*
 * record.c: tallyctl's commands for tally-sip's recordings: tally-sip is
 * the recording client (SRC) and these ask it to record a call, pause,
 * resume, stop, change the media, and list what records now
 * (src/sip/api.c; the recorder's own catalog is recordings.c).
 *
 *   tallyctl record start c1-ab --media audio+video [--recorder URI]
 *     POST /api/v1/recordings {"call":"c1-ab","media":"audio+video"}
 *   tallyctl record start --dn 2000 --media audio --per-party
 *     POST /api/v1/recordings {"dn":"2000","media":"audio",
 *                              "mode":"per-party"}
 *     201 (new) or 200 (the call records already with these media): one
 *     line, the recording's id first, so `| cut -d' ' -f1` gives it:
 *       r3-1a2b call=c1-ab state=subscribing media=audio+video
 *       audio=requested video=requested recorder=sip:srs@10.0.0.9:5090
 *   tallyctl record pause|resume r3-1a2b
 *     POST /api/v1/recordings/r3-1a2b/pause (resp. /resume), no body
 *   tallyctl record media r3-1a2b audio+video
 *     POST /api/v1/recordings/r3-1a2b/media {"media":"audio+video"}
 *   tallyctl record stop r3-1a2b
 *     DELETE /api/v1/recordings/r3-1a2b
 *   tallyctl recordings --active
 *     GET /api/v1/recordings -> the table below (--json: the reply)
 *
 * Every command prints the recording as the server returned it (the line
 * above, or with --json the indented JSON). The server decides what is
 * valid (media names, recorder URIs): tallyctl passes them on, and a
 * refusal is its JSON error on stderr with exit status 1, e.g.
 *   tallyctl: 404 Not Found: no such call
 *   tallyctl: 409 Conflict: the call is being recorded with other media
 *   tallyctl: the call's recording: r3-1a2b call=c1-ab ... media=audio
 * Only a recording id is checked here, because it becomes part of a path.
 */
#include <errno.h>
#include <string.h>
#include <re.h>
#include "ctl.h"

static const char *str(const struct odict *o, const char *key)
{
	const char *s = o ? odict_string(o, key) : NULL;

	return s && s[0] ? s : NULL;
}

static const struct odict *sub(const struct odict *o, enum odict_type t,
			       const char *key)
{
	const struct odict_entry *e = o ? odict_get_type(o, t, key) : NULL;

	return e ? e->u.odict : NULL;
}

/* A medium's state ("started"), "-" when the medium was not requested. */
static const char *mstate(const struct odict *r, const char *medium)
{
	const char *s = str(sub(r, ODICT_OBJECT, medium), "state");

	return s ? s : "-";
}

static const char *or_dash(const char *s)
{
	return s ? s : "-";
}

static const char *or_both(const char *mode)
{
	return mode ? mode : "both";
}

void ctl_active_line(FILE *out, const struct odict *r)
{
	const char *reason = str(r, "reason"), *mode = str(r, "mode");

	fprintf(out, "%s call=%s state=%s media=%s", or_dash(str(r, "id")),
		or_dash(str(r, "call")), or_dash(str(r, "state")),
		or_dash(str(r, "media")));
	if (mode)
		fprintf(out, " mode=%s", mode);
	fprintf(out, " audio=%s video=%s recorder=%s", mstate(r, "audio"),
		mstate(r, "video"), or_dash(str(r, "recorder")));
	if (reason)
		(void)re_fprintf(out, " reason=\"%H\"", utf8_encode, reason);
	fputc('\n', out);
}

int ctl_active_table(FILE *out, const struct odict *reply)
{
	const struct odict *recs = sub(reply, ODICT_ARRAY, "recordings");
	struct le *le;

	if (!recs)
		return EPROTO;
	fprintf(out, "%-16s %-16s %-11s %-11s %-9s %-9s %-9s %-24s %s\n",
		"ID", "CALL", "STATE", "MEDIA", "MODE", "AUDIO", "VIDEO",
		"CREATED", "RECORDER");
	for (le = list_head(&recs->lst); le; le = le->next) {
		const struct odict_entry *e = le->data;
		const struct odict *r;

		if (e->type != ODICT_OBJECT)
			continue;
		r = e->u.odict;
		fprintf(out, "%-16s %-16s %-11s %-11s %-9s %-9s %-9s %-24s %s\n",
			or_dash(str(r, "id")), or_dash(str(r, "call")),
			or_dash(str(r, "state")), or_dash(str(r, "media")),
			or_both(str(r, "mode")),
			mstate(r, "audio"), mstate(r, "video"),
			or_dash(str(r, "created")), or_dash(str(r, "recorder")));
	}
	if (!list_head(&recs->lst))
		fprintf(out, "(no active recordings)\n");
	return 0;
}

/* Print a 2xx reply R holding one recording: the line or the JSON. */
static int show_rec(const struct ctl_resp *r, const char *what, bool json)
{
	struct odict *od = NULL;
	int rc = 0;

	if (!r->body || json_decode_odict(&od, 32, r->body, r->blen, 32)) {
		fprintf(stderr, "tallyctl: %s: the reply is not JSON\n", what);
		return CTL_EXIT_FAIL;
	}
	if (json)
		rc = ctl_json_pretty(stdout, od, false) ? CTL_EXIT_FAIL : 0;
	else
		ctl_active_line(stdout, od);
	mem_deref(od);
	return rc;
}

/* After ctl_report(): a refusal that names a recording (409 on start)
 * shows it too. */
static void report_rec(const struct ctl_resp *r)
{
	struct odict *od = NULL;
	const struct odict *rec;

	if (!r->body || json_decode_odict(&od, 32, r->body, r->blen, 32))
		return;
	rec = sub(od, ODICT_OBJECT, "recording");
	if (rec) {
		fprintf(stderr, "tallyctl: the call's recording: ");
		ctl_active_line(stderr, rec);
	}
	mem_deref(od);
}

/* METHOD PATH with BODY (may be NULL) to tally-sip; a 2xx is shown.
 * START: the request was a start (its 200 means "already recording"). */
static int exchange(const struct ctl_target *t, const char *method,
		    const char *path, const char *body, bool start, bool json)
{
	struct ctl_resp r;
	int err, rc;

	err = ctl_send_json(&t->url, t->token, method, path, body, &r);
	if (err || r.scode < 200 || r.scode > 299) {
		rc = ctl_report(t, err, &r);
		if (!err)
			report_rec(&r);
	}
	else {
		if (start && r.scode == 200)
			fprintf(stderr, "tallyctl: the call is being recorded "
				"with these media already\n");
		rc = show_rec(&r, path, json);
	}
	ctl_resp_reset(&r);
	return rc;
}

int ctl_cmd_record_start(const struct ctl_target *t,
			 const struct ctl_rstart *p, bool json)
{
	char *body = NULL;
	int err, rc;

	if (!p->call == !p->dn) {
		fprintf(stderr, "tallyctl: record start needs a call id or "
			"--dn DN (one of them)\n");
		return CTL_EXIT_USAGE;
	}
	if (!p->media) {
		fprintf(stderr, "tallyctl: record start needs --media audio "
			"or --media audio+video\n");
		return CTL_EXIT_USAGE;
	}
	err = re_sdprintf(&body, "{\"%s\":\"%H\",\"media\":\"%H\"%s%H%s%s}",
			  p->call ? "call" : "dn", utf8_encode,
			  p->call ? p->call : p->dn, utf8_encode, p->media,
			  p->recorder ? ",\"recorder\":\"" : "", utf8_encode,
			  p->recorder ? p->recorder : "",
			  p->recorder ? "\"" : "",
			  p->per_party ? ",\"mode\":\"per-party\"" : "");
	if (err) {
		fprintf(stderr, "tallyctl: %s\n", strerror(err));
		return CTL_EXIT_FAIL;
	}
	rc = exchange(t, "POST", "/api/v1/recordings", body, true, json);
	mem_deref(body);
	return rc;
}

int ctl_cmd_record(const struct ctl_target *t, const char *verb,
		   const char *rid, const char *media, bool json)
{
	char path[128];
	char *body = NULL;
	bool is_media = !strcmp(verb, "media");
	int rc;

	if (!rid) {
		fprintf(stderr, "tallyctl: record %s needs a recording id%s\n",
			verb, is_media ? " and the media" : "");
		return CTL_EXIT_USAGE;
	}
	if (!ctl_id_ok(rid)) {
		fprintf(stderr, "tallyctl: bad recording id '%s'\n", rid);
		return CTL_EXIT_USAGE;
	}
	if (is_media != !!media) {
		fprintf(stderr, is_media ? "tallyctl: record media needs the "
			"media: audio or audio+video\n" : "tallyctl: record %s "
			"takes only the recording id\n", verb);
		return CTL_EXIT_USAGE;
	}
	if (!strcmp(verb, "stop")) {
		snprintf(path, sizeof(path), "/api/v1/recordings/%s", rid);
		return exchange(t, "DELETE", path, NULL, false, json);
	}
	snprintf(path, sizeof(path), "/api/v1/recordings/%s/%s", rid, verb);
	if (is_media && re_sdprintf(&body, "{\"media\":\"%H\"}", utf8_encode,
				    media)) {
		fprintf(stderr, "tallyctl: out of memory\n");
		return CTL_EXIT_FAIL;
	}
	rc = exchange(t, "POST", path, body, false, json);
	mem_deref(body);
	return rc;
}

int ctl_cmd_recordings_active(const struct ctl_target *t, bool json)
{
	struct odict *od = NULL;
	int rc;

	rc = ctl_get_json(t, "/api/v1/recordings", &od);
	if (rc)
		return rc;
	if (json)
		rc = ctl_json_pretty(stdout, od, false) ? CTL_EXIT_FAIL : 0;
	else if (ctl_active_table(stdout, od)) {
		fprintf(stderr, "tallyctl: the reply has no \"recordings\" "
			"list\n");
		rc = CTL_EXIT_FAIL;
	}
	mem_deref(od);
	return rc;
}
