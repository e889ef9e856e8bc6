/*
 * tallyctl.c: the command-line client of tally-sip's API.
 *
 *   tallyctl [--api URL] [--token T] calls [--json]   table of the calls
 *   tallyctl [--api URL] [--token T] call ID          one call, indented JSON
 *   tallyctl [--api URL] [--token T] events           follow the event stream
 *   tallyctl [--api URL] [--token T] health           server status, JSON
 *
 * URL defaults to $TALLY_API, then http://127.0.0.1:8080; the token to
 * $TALLY_TOKEN. "events" prints one JSON object per line and flushes each,
 * so `tallyctl events | jq` or a test harness sees every event as it
 * happens; it ends with status 0 when the server closes the stream.
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
	const char *token;
	bool json;
	const char *cmd;
	const char *arg;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tallyctl [--api URL] [--token TOKEN] COMMAND\n"
		"commands:\n"
		"  calls [--json]   list the calls (a table, or the JSON)\n"
		"  call ID          show one call as JSON\n"
		"  events           follow the event stream, one JSON object "
		"per line\n"
		"  health           the server's status and counters\n"
		"defaults: --api $TALLY_API or http://127.0.0.1:8080, "
		"--token $TALLY_TOKEN\n");
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

static int parse_args(struct opts *o, int argc, char *argv[])
{
	bool bad = false;
	int i;

	o->api = getenv("TALLY_API");
	if (!o->api || !o->api[0])
		o->api = "http://127.0.0.1:8080";
	o->token = getenv("TALLY_TOKEN");
	if (!o->token)
		o->token = "";

	for (i = 1; i < argc && !bad; i++) {
		const char *a = argv[i];

		if (opt_value(argc, argv, &i, "--api", &o->api, &bad) ||
		    opt_value(argc, argv, &i, "--token", &o->token, &bad))
			continue;
		if (!strcmp(a, "--json")) {
			o->json = true;
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
	return 0;
}

static const char *neterr(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return "connection refused (is tally-sip running with "
		       "--api-listen?)";
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

/* Report a failed request; returns the exit status. */
static int report(const struct opts *o, int err, const struct ctl_resp *r)
{
	struct odict *od = NULL;
	const char *what = NULL;

	if (err && err != EACCES) {
		fprintf(stderr, "tallyctl: %s: %s\n", o->api, neterr(err));
		return EXIT_FAIL;
	}
	if (r->body && !json_decode_odict(&od, 8, r->body, r->blen, 4))
		what = odict_string(od, "error");
	fprintf(stderr, "tallyctl: %u %s%s%s%s\n", r->scode, r->reason,
		what ? ": " : "", what ? what : "",
		r->scode == 401 ? " (set --token or TALLY_TOKEN)" : "");
	mem_deref(od);
	return EXIT_FAIL;
}

/* GET PATH and decode its JSON body into *ODP. 0 or the exit status. */
static int get_json(const struct opts *o, const struct ctl_url *u,
		    const char *path, struct odict **odp)
{
	struct ctl_resp r;
	int err, rc = 0;

	err = ctl_get(u, o->token, path, &r);
	if (err || r.scode != 200) {
		rc = report(o, err, &r);
		goto out;
	}
	if (!r.body ||
	    json_decode_odict(odp, 32, r.body, r.blen, 32)) {
		fprintf(stderr, "tallyctl: %s%s: the reply is not JSON\n",
			o->api, path);
		rc = EXIT_FAIL;
	}
 out:
	ctl_resp_reset(&r);
	return rc;
}

static int cmd_calls(const struct opts *o, const struct ctl_url *u)
{
	struct odict *od = NULL;
	int rc;

	rc = get_json(o, u, "/api/v1/calls", &od);
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

static int cmd_call(const struct opts *o, const struct ctl_url *u)
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
	rc = get_json(o, u, path, &od);
	if (rc)
		return rc;
	rc = ctl_json_pretty(stdout, od, false) ? EXIT_FAIL : 0;
	mem_deref(od);
	return rc;
}

static int cmd_health(const struct opts *o, const struct ctl_url *u)
{
	struct odict *od = NULL;
	int rc;

	rc = get_json(o, u, "/api/v1/health", &od);
	if (rc)
		return rc;
	rc = ctl_json_pretty(stdout, od, false) ? EXIT_FAIL : 0;
	mem_deref(od);
	return rc;
}

static int cmd_events(const struct opts *o, const struct ctl_url *u)
{
	struct ctl_resp r;
	int err, rc = 0;

	err = ctl_ws_follow(u, o->token, "/api/v1/events", stdout, &r);
	if (err)
		rc = report(o, err, &r);
	ctl_resp_reset(&r);
	return rc;
}

int main(int argc, char *argv[])
{
	struct opts o;
	struct ctl_url u;
	int rc;

	memset(&o, 0, sizeof(o));
	if (parse_args(&o, argc, argv))
		return EXIT_USAGE;
	if (ctl_url_parse(&u, o.api)) {
		fprintf(stderr, "tallyctl: bad API URL '%s' (want "
			"http://HOST[:PORT])\n", o.api);
		return EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	if (libre_init())
		return EXIT_FAIL;

	if (!strcmp(o.cmd, "calls"))
		rc = cmd_calls(&o, &u);
	else if (!strcmp(o.cmd, "call"))
		rc = cmd_call(&o, &u);
	else if (!strcmp(o.cmd, "events"))
		rc = cmd_events(&o, &u);
	else if (!strcmp(o.cmd, "health"))
		rc = cmd_health(&o, &u);
	else {
		fprintf(stderr, "tallyctl: unknown command '%s'\n", o.cmd);
		usage(stderr);
		rc = EXIT_USAGE;
	}
	libre_close();
	return rc;
}
