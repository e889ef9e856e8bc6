/*
 * tallyctl.c: the command-line client of tally-sip's and tally-recorder's
 * APIs.
 *
 *   tallyctl [--api URL] [--token T] calls [--json]   table of the calls
 *   tallyctl [--api URL] [--token T] call ID          one call, indented JSON
 *   tallyctl [--api URL] [--token T] events [--json]  follow the event stream
 *   tallyctl [--api URL] [--token T] health           server status, JSON
 *   tallyctl [--api URL] [--token T] record start CALL|--dn DN
 *            --media audio|audio+video [--per-party] [--recorder URI]
 *   tallyctl [--api URL] [--token T] record pause|resume|stop RID
 *   tallyctl [--api URL] [--token T] record media RID audio|audio+video
 *   tallyctl [--api URL] [--token T] recordings --active [--json]
 *   tallyctl [--recorder URL] [--token T] recordings [--participant X]
 *            [--call-id X] [--from T] [--to T] [--media audio|video]
 *            [--state S] [--limit N] [--offset N] [--json]
 *   tallyctl [--recorder URL] [--token T] recording ID
 *            [--download DIR | --delete]
 *   tallyctl [--recorder URL] [--token T] recorder-status
 *
 * URL defaults to $TALLY_API, then http://127.0.0.1:8080; the recorder's
 * to $TALLY_RECORDER_URL, then http://127.0.0.1:8090. The token: --token,
 * else $TALLY_TOKEN; for the recorder's commands --token, else
 * $TALLY_RECORDER_TOKEN, else $TALLY_TOKEN. "events" prints one readable
 * line per event (events.c), with --json one JSON object per line, and
 * flushes each, so `tallyctl events --json | jq` or a test harness sees
 * every event as it happens; it ends with status 0 when the server closes
 * the stream. tally-sip's recording commands ("record", "recordings
 * --active") are in record.c, the recorder's in recordings.c. After
 * "record", --media and --recorder are the recording's (its media, the
 * recorder's SIP URI), not the search filter and the recorder's API URL.
 *
 * Exit status: 0 success; 1 the server refused (401, 404, ...) or could not
 * be reached; 2 usage error. Messages go to stderr and say which: e.g.
 *   tallyctl: http://127.0.0.1:8080: connection refused (is tally-sip
 *             running with --api-listen?)
 *   tallyctl: 401 Unauthorized: missing or wrong bearer token (set
 *             --token or TALLY_TOKEN)
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <re.h>
#include "ctl.h"

enum {
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
};

struct opts {
	const char *api;
	const char *recorder;
	const char *token;            /* tally-sip's */
	const char *rtoken;           /* tally-recorder's */
	bool json;
	const char *cmd;
	const char *arg;
	const char *arg2, *arg3;      /* record VERB ARG [ARG] */
	struct ctl_rstart rs;         /* record start */
	bool rs_set;                  /* a record-only option was given */
	bool active;                  /* recordings --active */
	struct ctl_recq recq;         /* recordings filters */
	bool recq_set;
	const char *download;
	bool del;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tallyctl [--api URL] [--recorder URL] [--token TOKEN] "
		"COMMAND\n"
		"tally-sip commands:\n"
		"  calls [--json]   list the calls (a table, or the JSON)\n"
		"  call ID          show one call as JSON\n"
		"  events [--json]  follow the event stream, one line per "
		"event (--json: its JSON)\n"
		"  health           the server's status and counters\n"
		"  record start CALL|--dn DN --media audio|audio+video "
		"[--per-party] [--recorder URI]\n"
		"                   record a call (by tally's call id, or a "
		"party's user)\n"
		"  record pause|resume|stop RID\n"
		"  record media RID audio|audio+video\n"
		"                   control a recording (RID: its id); --json "
		"prints the reply\n"
		"  recordings --active [--json]\n"
		"                   the recordings tally-sip makes now\n"
		"tally-recorder commands:\n"
		"  recordings [--participant X] [--call-id X] [--from T] "
		"[--to T]\n"
		"             [--media audio|video] [--state S] [--limit N] "
		"[--offset N] [--json]\n"
		"                   search the recordings, newest first\n"
		"  recording ID     show one recording as JSON\n"
		"  recording ID --download DIR\n"
		"                   fetch its files into DIR, checking size "
		"and SHA-256\n"
		"  recording ID --delete\n"
		"                   delete it (row and folder; not while "
		"recording)\n"
		"  recorder-status  the recorder's status and counters\n"
		"T is unix seconds or a UTC time: 2026-11-25T22:30:00Z, "
		"2026-11-25 22:30, 2026-11-25\n"
		"(a date alone: --from its start, --to its end). S: recording, "
		"finalizing, complete, failed.\n"
		"defaults: --api $TALLY_API or http://127.0.0.1:8080, "
		"--recorder $TALLY_RECORDER_URL or\n"
		"http://127.0.0.1:8090, --token $TALLY_TOKEN "
		"(recorder: $TALLY_RECORDER_TOKEN, then $TALLY_TOKEN)\n");
}

/* --name VALUE or --name=VALUE at ARGV[*I]; true if it was NAME. */
static bool opt_value(int argc, char *argv[], int *i, const char *name,
		      const char **val, bool *bad)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n))
		return false;
	if (a[n] == '=') {
		*val = a + n + 1;
		return true;
	}
	if (a[n])
		return false;
	if (*i + 1 >= argc) {
		fprintf(stderr, "tallyctl: %s needs a value\n", name);
		*bad = true;
		return true;
	}
	*val = argv[++*i];
	return true;
}

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v && v[0] ? v : dflt;
}

/* The options of "record", given after it. */
static bool record_value(int argc, char *argv[], int *i, struct opts *o,
			 bool *bad)
{
	struct ctl_rstart *p = &o->rs;

	if (!o->cmd || strcmp(o->cmd, "record"))
		return false;
	if (!strcmp(argv[*i], "--per-party")) {
		p->per_party = true;
		o->rs_set = true;
		return true;
	}
	if (opt_value(argc, argv, i, "--dn", &p->dn, bad) ||
	    opt_value(argc, argv, i, "--media", &p->media, bad) ||
	    opt_value(argc, argv, i, "--recorder", &p->recorder, bad)) {
		o->rs_set = true;
		return true;
	}
	return false;
}

static bool recq_value(int argc, char *argv[], int *i, struct opts *o,
		       bool *bad)
{
	struct ctl_recq *q = &o->recq;

	if (opt_value(argc, argv, i, "--participant", &q->participant, bad) ||
	    opt_value(argc, argv, i, "--call-id", &q->call_id, bad) ||
	    opt_value(argc, argv, i, "--from", &q->from, bad) ||
	    opt_value(argc, argv, i, "--to", &q->to, bad) ||
	    opt_value(argc, argv, i, "--media", &q->media, bad) ||
	    opt_value(argc, argv, i, "--state", &q->state, bad) ||
	    opt_value(argc, argv, i, "--limit", &q->limit, bad) ||
	    opt_value(argc, argv, i, "--offset", &q->offset, bad)) {
		o->recq_set = true;
		return true;
	}
	return false;
}

/* Options that belong to one command only. */
static int check_cmd_opts(const struct opts *o)
{
	bool rec = !strcmp(o->cmd, "recording");
	bool record = !strcmp(o->cmd, "record");

	if (!record && (o->rs_set || o->arg2)) {
		fprintf(stderr, "tallyctl: unexpected argument%s\n",
			o->rs_set ? " (--dn, --per-party are for 'record')" :
			"");
		return EINVAL;
	}
	if (o->active && strcmp(o->cmd, "recordings")) {
		fprintf(stderr, "tallyctl: --active is for 'recordings'\n");
		return EINVAL;
	}
	if (o->active && o->recq_set) {
		fprintf(stderr, "tallyctl: --active lists tally-sip's "
			"recordings: the search options are for the "
			"recorder's\n");
		return EINVAL;
	}
	if (o->arg && strcmp(o->cmd, "call") && !rec && !record) {
		fprintf(stderr, "tallyctl: %s takes no argument ('%s')\n",
			o->cmd, o->arg);
		return EINVAL;
	}
	if (o->recq_set && strcmp(o->cmd, "recordings")) {
		fprintf(stderr, "tallyctl: the search options are for "
			"'recordings'\n");
		return EINVAL;
	}
	if ((o->download || o->del) && !rec) {
		fprintf(stderr, "tallyctl: --download and --delete are for "
			"'recording ID'\n");
		return EINVAL;
	}
	if (o->download && o->del) {
		fprintf(stderr, "tallyctl: --download or --delete, not "
			"both\n");
		return EINVAL;
	}
	return 0;
}

static int parse_args(struct opts *o, int argc, char *argv[])
{
	const char *token = NULL;
	bool bad = false;
	int i;

	o->api = env_or("TALLY_API", "http://127.0.0.1:8080");
	o->recorder = env_or("TALLY_RECORDER_URL", "http://127.0.0.1:8090");

	for (i = 1; i < argc && !bad; i++) {
		const char *a = argv[i];

		if (opt_value(argc, argv, &i, "--api", &o->api, &bad) ||
		    opt_value(argc, argv, &i, "--token", &token, &bad) ||
		    opt_value(argc, argv, &i, "--download", &o->download,
			      &bad) ||
		    record_value(argc, argv, &i, o, &bad) ||
		    opt_value(argc, argv, &i, "--recorder", &o->recorder,
			      &bad) ||
		    recq_value(argc, argv, &i, o, &bad))
			continue;
		if (!strcmp(a, "--json")) {
			o->json = true;
		}
		else if (!strcmp(a, "--delete")) {
			o->del = true;
		}
		else if (!strcmp(a, "--active")) {
			o->active = true;
		}
		else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		}
		else if (!strcmp(a, "--version")) {
			printf("tallyctl %s\n", TALLY_VERSION);
			exit(0);
		}
		else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "tallyctl: unknown option %s\n", a);
			bad = true;
		}
		else if (!o->cmd) {
			o->cmd = a;
		}
		else if (!o->arg) {
			o->arg = a;
		}
		else if (!o->arg2) {
			o->arg2 = a;
		}
		else if (!o->arg3 && !strcmp(o->cmd, "record")) {
			o->arg3 = a;
		}
		else {
			fprintf(stderr, "tallyctl: unexpected argument %s\n",
				a);
			bad = true;
		}
	}
	if (bad)
		return EINVAL;
	if (!o->cmd) {
		usage(stderr);
		return EINVAL;
	}
	o->token = token ? token : env_or("TALLY_TOKEN", "");
	o->rtoken = token ? token : env_or("TALLY_RECORDER_TOKEN",
					   env_or("TALLY_TOKEN", ""));
	return check_cmd_opts(o);
}

static const char *neterr(const struct ctl_target *t, int err)
{
	static char buf[160];

	switch (err) {
	case ECONNREFUSED:
		snprintf(buf, sizeof(buf), "connection refused (%s)",
			 t->refused_hint);
		return buf;
	case ENOENT:
		return "unknown host";
	case ETIMEDOUT:
		return "timed out";
	case EPROTO:
		return "the server's answer is not HTTP";
	case ECONNRESET:
		return "the server closed the connection";
	default:
		return strerror(err);
	}
}

int ctl_report(const struct ctl_target *t, int err, const struct ctl_resp *r)
{
	struct odict *od = NULL;
	const char *what = NULL;

	if (err && err != EACCES) {
		fprintf(stderr, "tallyctl: %s: %s\n", t->api, neterr(t, err));
		return EXIT_FAIL;
	}
	if (r->body && !json_decode_odict(&od, 8, r->body, r->blen, 4))
		what = odict_string(od, "error");
	fprintf(stderr, "tallyctl: %u %s%s%s%s%s%s\n", r->scode, r->reason,
		what ? ": " : "", what ? what : "",
		r->scode == 401 ? " (" : "",
		r->scode == 401 ? t->token_hint : "",
		r->scode == 401 ? ")" : "");
	mem_deref(od);
	return EXIT_FAIL;
}

int ctl_get_json(const struct ctl_target *t, const char *path,
		 struct odict **odp)
{
	struct ctl_resp r;
	int err, rc = 0;

	err = ctl_get(&t->url, t->token, path, &r);
	if (err || r.scode != 200) {
		rc = ctl_report(t, err, &r);
		goto out;
	}
	if (!r.body ||
	    json_decode_odict(odp, 32, r.body, r.blen, 32)) {
		fprintf(stderr, "tallyctl: %s%s: the reply is not JSON\n",
			t->api, path);
		rc = EXIT_FAIL;
	}
 out:
	ctl_resp_reset(&r);
	return rc;
}

static int cmd_calls(const struct opts *o, const struct ctl_target *t)
{
	struct odict *od = NULL;
	int rc;

	rc = ctl_get_json(t, "/api/v1/calls", &od);
	if (rc)
		return rc;
	if (o->json)
		rc = ctl_json_pretty(stdout, od, false) ? EXIT_FAIL : 0;
	else if (ctl_calls_table(stdout, od)) {
		fprintf(stderr, "tallyctl: the reply has no \"calls\" list\n");
		rc = EXIT_FAIL;
	}
	mem_deref(od);
	return rc;
}

static int cmd_call(const struct opts *o, const struct ctl_target *t)
{
	struct odict *od = NULL;
	char path[512];
	size_t i;
	int rc;

	if (!o->arg) {
		fprintf(stderr, "tallyctl: call needs an ID\n");
		return EXIT_USAGE;
	}
	/* ids are plain tokens; refuse anything that would change the path */
	for (i = 0; o->arg[i]; i++) {
		if (strchr("/?#% \t\r\n", o->arg[i])) {
			fprintf(stderr, "tallyctl: bad call id '%s'\n", o->arg);
			return EXIT_USAGE;
		}
	}
	if (snprintf(path, sizeof(path), "/api/v1/calls/%s", o->arg) >=
	    (int)sizeof(path)) {
		fprintf(stderr, "tallyctl: call id too long\n");
		return EXIT_USAGE;
	}
	rc = ctl_get_json(t, path, &od);
	if (rc)
		return rc;
	rc = ctl_json_pretty(stdout, od, false) ? EXIT_FAIL : 0;
	mem_deref(od);
	return rc;
}

/* GET PATH and print it as indented JSON (health, recorder-status). */
static int cmd_show(const struct ctl_target *t, const char *path)
{
	struct odict *od = NULL;
	int rc;

	rc = ctl_get_json(t, path, &od);
	if (rc)
		return rc;
	rc = ctl_json_pretty(stdout, od, false) ? EXIT_FAIL : 0;
	mem_deref(od);
	return rc;
}

/* tallyctl record VERB ...: which verb, which arguments. */
static int cmd_record(struct opts *o, const struct ctl_target *t)
{
	static const char *const verbs[] = {"pause", "resume", "stop",
					    "media"};
	const char *verb = o->arg;
	size_t i;

	if (!verb) {
		fprintf(stderr, "tallyctl: record needs start, pause, resume, "
			"stop or media\n");
		return EXIT_USAGE;
	}
	if (!strcmp(verb, "start")) {
		if (o->arg3) {
			fprintf(stderr, "tallyctl: unexpected argument %s\n",
				o->arg3);
			return EXIT_USAGE;
		}
		o->rs.call = o->arg2;
		return ctl_cmd_record_start(t, &o->rs, o->json);
	}
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(verb, verbs[i]))
			continue;
		if (o->rs_set) {
			fprintf(stderr, "tallyctl: --dn, --media, --recorder "
				"and --per-party are for 'record start'\n");
			return EXIT_USAGE;
		}
		return ctl_cmd_record(t, verb, o->arg2, o->arg3, o->json);
	}
	fprintf(stderr, "tallyctl: unknown record command '%s' (start, "
		"pause, resume, stop, media)\n", verb);
	return EXIT_USAGE;
}

static bool recorder_cmd(const struct opts *o)
{
	return (!strcmp(o->cmd, "recordings") && !o->active) ||
	       !strcmp(o->cmd, "recording") ||
	       !strcmp(o->cmd, "recorder-status");
}

int main(int argc, char *argv[])
{
	struct opts o;
	struct ctl_target t;
	bool rec;
	int rc;

	memset(&o, 0, sizeof(o));
	if (parse_args(&o, argc, argv))
		return EXIT_USAGE;
	memset(&t, 0, sizeof(t));
	rec = recorder_cmd(&o);
	if (rec) {
		t.api = o.recorder;
		t.token = o.rtoken;
		t.refused_hint = "is tally-recorder running with listen-http?";
		t.token_hint = "set --token, TALLY_RECORDER_TOKEN or "
			       "TALLY_TOKEN";
	}
	else {
		t.api = o.api;
		t.token = o.token;
		t.refused_hint = "is tally-sip running with --api-listen?";
		t.token_hint = "set --token or TALLY_TOKEN";
	}
	if (ctl_url_parse(&t.url, t.api)) {
		fprintf(stderr, "tallyctl: bad %s URL '%s' (want "
			"http://HOST[:PORT])\n", rec ? "recorder" : "API",
			t.api);
		return EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	if (libre_init())
		return EXIT_FAIL;

	if (!strcmp(o.cmd, "calls"))
		rc = cmd_calls(&o, &t);
	else if (!strcmp(o.cmd, "call"))
		rc = cmd_call(&o, &t);
	else if (!strcmp(o.cmd, "events"))
		rc = ctl_cmd_events(&t, o.json);
	else if (!strcmp(o.cmd, "health"))
		rc = cmd_show(&t, "/api/v1/health");
	else if (!strcmp(o.cmd, "record"))
		rc = cmd_record(&o, &t);
	else if (!strcmp(o.cmd, "recordings") && o.active)
		rc = ctl_cmd_recordings_active(&t, o.json);
	else if (!strcmp(o.cmd, "recordings"))
		rc = ctl_cmd_recordings(&t, &o.recq, o.json);
	else if (!strcmp(o.cmd, "recording"))
		rc = ctl_cmd_recording(&t, o.arg, o.download, o.del);
	else if (!strcmp(o.cmd, "recorder-status"))
		rc = cmd_show(&t, "/api/v1/status");
	else {
		fprintf(stderr, "tallyctl: unknown command '%s'\n", o.cmd);
		usage(stderr);
		rc = EXIT_USAGE;
	}
	libre_close();
	return rc;
}
