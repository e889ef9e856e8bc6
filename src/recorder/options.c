/*
 * options.c: tally-recorder's configuration: one key table drives the
 * config file (etc/tally-recorder.conf), the command line, --dump-config
 * and --help. Option names follow tally-media/rtpengine where they mean the
 * same (interface, port-min, port-max, foreground, log-level, pidfile).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "tconf.h"
#include "recd.h"

#define K(name, type, field, def, help) \
	TCONF_KEY(recd_conf, name, type, field, def, help)

static const struct tconf_key recd_keys[] = {
	K("listen-sip", TCONF_STR, sip_listen, "127.0.0.1:5090",
	  "SIP address:port, UDP and TCP"),
	K("interface", TCONF_STR, interface, "127.0.0.1",
	  "address the media (RTP/RTCP) is received on"),
	K("port-min", TCONF_U32, port_min, "40000", "lowest media port"),
	K("port-max", TCONF_U32, port_max, "49999", "highest media port"),
	K("storage", TCONF_STR, storage, "/var/lib/tally/recordings",
	  "folder holding one folder per recording session"),
	K("catalog", TCONF_STR, catalog, NULL,
	  "SQLite catalog file; empty = <storage>/catalog.sqlite"),
	K("listen-http", TCONF_STR, listen_http, "127.0.0.1:8090",
	  "HTTP/JSON API and web page; empty disables"),
	K("api-token", TCONF_STR, api_token, NULL,
	  "bearer token the API requires (required when the API is on)"),
	K("policy", TCONF_MULTI, policies, NULL,
	  "'pattern=media': sessions with a participant AOR (or an SRC From URI) matching the glob pattern record media = audio+video, audio or none; first match wins (repeat the key)"),
	K("default-media", TCONF_STR, default_media, "audio+video",
	  "what to record when no policy matches: audio+video, audio or none"),
	K("max-sessions", TCONF_U32, max_sessions, "1000",
	  "concurrent recording sessions; more are answered 503"),
	K("min-free-mb", TCONF_U32, min_free_mb, "512",
	  "refuse new sessions (503) when the storage has less free space"),
	K("media-timeout", TCONF_U32, media_timeout, "300",
	  "end a session that received no packet for this many seconds (paused sessions excepted); 0 = never"),
	K("inactive-timeout", TCONF_U32, inactive_timeout, "14400",
	  "end a session whose streams have all been paused (a=inactive), or that has no accepted stream, for this many seconds; 0 = never"),
	K("strict-siprec", TCONF_BOOL, strict_siprec, "no",
	  "answer 421 to every INVITE without Require: siprec (RFC 7866 s6.1.1); no = also record one whose Contact has +sip.src and whose body has metadata (AudioCodes Mediant), with a warning per source"),
	K("log-level", TCONF_U32, log_level, "6",
	  "3 error, 4 warning, 5 notice, 6 info, 7 debug"),
	K("log-file", TCONF_STR, log_file, NULL, "append the log here instead of stderr"),
	K("pidfile", TCONF_STR, pidfile, NULL, "write the process id here"),
	K("foreground", TCONF_BOOL, foreground, "no", "stay in the foreground"),
	K("config-file", TCONF_STR, config_file, "/etc/tally/tally-recorder.conf",
	  "config file to read; 'none' reads nothing"),
	{NULL, TCONF_STR, 0, 0, NULL, NULL},
};

static const char *const ignore_flags[] = {"dump-config", "help", NULL};

int recd_conf_load(struct recd_conf *cf, int argc, char *argv[], bool *exitp)
{
	static const struct tconf_load how = {
		"tally-recorder", "tally-recorder", "config-file", ignore_flags
	};
	int err;

	err = tconf_load(cf, recd_keys, &how, argc, argv, exitp);
	if (err || *exitp)
		return err;
	if (cf->listen_http[0] && !cf->api_token[0]) {
		fprintf(stderr, "tally-recorder: api-token is required when "
			"listen-http is set\n");
		return EINVAL;
	}
	if (cf->port_min < 1024 || cf->port_max > 65534 ||
	    cf->port_min + 16 > cf->port_max) {
		fprintf(stderr, "tally-recorder: port range %u-%u is too small "
			"or out of bounds\n", cf->port_min, cf->port_max);
		return EINVAL;
	}
	if (strcmp(cf->default_media, "audio+video") &&
	    strcmp(cf->default_media, "audio") &&
	    strcmp(cf->default_media, "none")) {
		fprintf(stderr, "tally-recorder: default-media must be "
			"audio+video, audio or none\n");
		return EINVAL;
	}
	tconf_dump_asked(cf, recd_keys, argc, argv, exitp);
	return 0;
}
