/*
 * options.c: tally-sip's configuration: one key table drives the config
 * file (etc/tally-sip.conf), the command line, --dump-config and --help.
 */
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include "tconf.h"
#include "sipd.h"

#define K(name, type, field, def, help) \
	TCONF_KEY(sipd_conf, name, type, field, def, help)

static const struct tconf_key sipd_keys[] = {
	K("sip-listen", TCONF_STR, sip_listen, "127.0.0.1:5060",
	  "SIP address:port, UDP and TCP"),
	K("media-servers", TCONF_STR, media_servers, "127.0.0.1:2223",
	  "ng endpoints of tally-media (or rtpengine), comma separated"),
	K("media-ping-ms", TCONF_U32, media_ping_ms, "1000",
	  "health check period of each media server"),
	K("realm", TCONF_STR, realm, "tally", "digest authentication realm"),
	K("user", TCONF_MULTI, users, NULL,
	  "an account that may REGISTER: 'name password' (repeat the key)"),
	K("route", TCONF_MULTI, routes, NULL,
	  "static route: 'pattern sip:uri' (x any digit, N 2-9, trailing . or * the rest, ${user} in the URI; repeat the key)"),
	K("routes-need-auth", TCONF_BOOL, routes_need_auth, "no",
	  "only callers that authenticated as an account may use static routes (trunks); set yes on any network you do not control"),
	K("reg-min-expires", TCONF_U32, reg_min_expires, "60",
	  "shortest registration accepted (423 below)"),
	K("reg-max-expires", TCONF_U32, reg_max_expires, "3600",
	  "longest registration granted"),
	K("no-answer-secs", TCONF_U32, no_answer_secs, "60",
	  "an INVITE without a final answer is cancelled after this long"),
	K("session-expires", TCONF_U32, session_expires, "1800",
	  "RFC 4028 session interval when the caller asks for none"),
	K("recorders", TCONF_STR, recorders, NULL,
	  "SIPREC recorders (SRS) for recordings started through the API: SIP URIs, comma separated, tried in order (the next on timeout, 408 or 5xx); e.g. sip:srs@127.0.0.1:5090;transport=tcp"),
	K("record", TCONF_MULTI, record, NULL,
	  "static record policy: 'pattern audio|audio+video [both|per-party]', the pattern (as for route) on the caller's or callee's user; every answered call that matches is recorded to the recorders (repeat the key; the first match wins)"),
	K("recorder-options-secs", TCONF_U32, recorder_options_secs, "10",
	  "OPTIONS health check of each configured recorder this often; one that answers 503 (for its Retry-After), 408 or nothing is passed over until it answers again; 0 = never"),
	K("recorder-timeout-ms", TCONF_U32, recorder_timeout_ms, "5000",
	  "a recording INVITE without a final answer after this long fails over to the next recorder"),
	K("api-listen", TCONF_STR, api_listen, "127.0.0.1:8080",
	  "HTTP/JSON + WebSocket client API; empty disables"),
	K("api-token", TCONF_STR, api_token, NULL,
	  "bearer token the API requires (required when the API is on)"),
	K("rate-limit", TCONF_U32, rate_limit, "50",
	  "new requests per second accepted from one source address"),
	K("rate-burst", TCONF_U32, rate_burst, "200",
	  "requests one source may send at once before the rate applies"),
	K("log-level", TCONF_U32, log_level, "6",
	  "3 error, 4 warning, 5 notice, 6 info, 7 debug"),
	K("log-file", TCONF_STR, log_file, NULL, "append the log here instead of stderr"),
	K("pidfile", TCONF_STR, pidfile, NULL, "write the process id here"),
	K("foreground", TCONF_BOOL, foreground, "no", "stay in the foreground"),
	K("config-file", TCONF_STR, config_file, "/etc/tally/tally-sip.conf",
	  "config file to read; 'none' reads nothing"),
	{NULL, TCONF_STR, 0, 0, NULL, NULL},
};

static const char *const ignore_flags[] = {"dump-config", "help", NULL};

int sipd_conf_load(struct sipd_conf *cf, int argc, char *argv[], bool *exitp)
{
	static const struct tconf_load how = {
		"tally-sip", "tally-sip", "config-file", ignore_flags
	};
	int err;

	err = tconf_load(cf, sipd_keys, &how, argc, argv, exitp);
	if (err || *exitp)
		return err;
	if (cf->api_listen[0] && !cf->api_token[0]) {
		fprintf(stderr, "tally-sip: api-token is required when "
			"api-listen is set\n");
		return EINVAL;
	}
	tconf_dump_asked(cf, sipd_keys, argc, argv, exitp);
	return 0;
}

bool sipd_list_next(struct pl *rest, struct pl *item)
{
	while (rest->l) {
		const char *comma = pl_strchr(rest, ',');

		item->p = rest->p;
		item->l = comma ? (size_t)(comma - rest->p) : rest->l;
		pl_advance(rest, item->l + (comma ? 1 : 0));
		while (item->l && (*item->p == ' ' || *item->p == '\t'))
			pl_advance(item, 1);
		while (item->l && (item->p[item->l - 1] == ' ' ||
				   item->p[item->l - 1] == '\t'))
			--item->l;
		if (item->l)
			return true;
	}
	return false;
}

bool sipd_field_next(const struct pl *line, size_t *pos, struct pl *f)
{
	size_t i = *pos;

	while (i < line->l && (line->p[i] == ' ' || line->p[i] == '\t'))
		++i;
	if (i == line->l)
		return false;
	f->p = line->p + i;
	while (i < line->l && line->p[i] != ' ' && line->p[i] != '\t')
		++i;
	f->l = (size_t)(line->p + i - f->p);
	*pos = i;
	return true;
}
