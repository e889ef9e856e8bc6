/*
 * options.c: tally-media's configuration: one key table drives the config
 * file, the command line (rtpengine's option names, so a Kamailio deployment
 * can swap the binary), --dump-config and --help.
 */
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include "log.h"
#include "tconf.h"
#include "media.h"

#define K(name, type, field, def, help) \
	TCONF_KEY(media_conf, name, type, field, def, help)

static const struct tconf_key media_keys[] = {
	K("interface", TCONF_STR, interface, "127.0.0.1",
	  "address media is bound to and advertised in SDP (rtpengine's NAME/ADDR and ADDR!ADV forms accepted; the last --interface given is used)"),
	K("listen-ng", TCONF_STR, listen_ng, "127.0.0.1:2223",
	  "ng control socket, ADDR:PORT or PORT (loopback)"),
	K("port-min", TCONF_U32, port_min, "30000", "lowest media port"),
	K("port-max", TCONF_U32, port_max, "40000", "highest media port"),
	K("foreground", TCONF_BOOL, foreground, "no",
	  "stay in the foreground (no daemonizing)"),
	K("config-file", TCONF_STR, config_file, "/etc/tally/tally-media.conf",
	  "config file to read; 'none' reads nothing"),
	K("timeout", TCONF_U32, timeout, "60",
	  "seconds without media (and signalling) before a call is deleted; 0 = never"),
	K("log-level", TCONF_U32, log_level, "6",
	  "3 error, 4 warning, 5 notice, 6 info, 7 debug"),
	K("log-file", TCONF_STR, log_file, NULL, "append the log here instead of stderr"),
	K("pidfile", TCONF_STR, pidfile, NULL, "write the process id here"),
	K("workers", TCONF_U32, workers, "0",
	  "packet threads; 0 = one per CPU core"),
	K("num-threads", TCONF_U32, workers, NULL,
	  "rtpengine's name for 'workers'"),
	K("max-sessions", TCONF_U32, max_sessions, "0",
	  "refuse offers for new calls beyond this many; 0 = no limit"),
	K("rcvbuf-kb", TCONF_U32, rcvbuf_kb, "256",
	  "receive buffer of each media socket, KiB (absorbs bursts)"),
	K("coalesce-us", TCONF_U32, coalesce_us, "0",
	  "under load (4+ sockets ready at once), wait this long before the next look so one wake-up serves more packets; adds at most this much latency; 0 = off, at most 999999"),
	K("relatch-ms", TCONF_U32, relatch_ms, "3000",
	  "a new source address is accepted after the learned one was silent this long"),
	K("gso", TCONF_BOOL, gso, "yes",
	  "send a run of equal-sized datagrams to one destination (a video frame) as one UDP_SEGMENT send (epoll path); captures on lo, and on NICs with UDP segmentation offload, then show one large datagram: set no while capturing there"),
	K("io-uring", TCONF_BOOL, io_uring, "no",
	  "packet workers use io_uring (multishot receive, batched sends: fewer syscalls per packet); falls back to epoll with a warning where the kernel cannot"),
	{NULL, TCONF_STR, 0, 0, NULL, NULL},
};

/* rtpengine options tally accepts and ignores: flags, then options with a value */
static const char *const ignore_flags[] = {
	"log-stderr", "no-fallback", "dump-config", "help", NULL
};

static const char *const ignore_vals[] = {
	"table", "delete-delay", "listen-cli", "listen-http", "listen-tcp",
	"listen-udp", "log-facility", "tos", "recording-dir", "recording-method",
	"recording-format", NULL
};

static int strip_ignored(int argc, char *argv[], char **out)
{
	int i, n = 0;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *const *ig;
		bool skip = false;

		for (ig = ignore_vals; i > 0 && *ig && !strncmp(a, "--", 2); ig++) {
			size_t len = strlen(*ig);
			if (strncmp(a + 2, *ig, len))
				continue;
			if (a[2 + len] == '=') {
				skip = true;
			}
			else if (!a[2 + len]) {
				skip = true;
				++i;      /* its value */
			}
			break;
		}
		if (!skip)
			out[n++] = argv[i < argc ? i : argc - 1];
	}
	return n;
}

/* "internal/10.0.0.1!1.2.3.4" -> "10.0.0.1" */
static void iface_clean(char *s)
{
	char *slash = strchr(s, '/'), *bang;

	if (slash)
		memmove(s, slash + 1, strlen(slash + 1) + 1);
	bang = strchr(s, '!');
	if (bang)
		*bang = '\0';
	if (s[0] == '[') {
		size_t l = strlen(s);
		if (l > 2 && s[l - 1] == ']') {
			memmove(s, s + 1, l - 2);
			s[l - 2] = '\0';
		}
	}
}

int media_conf_load(struct media_conf *cf, int argc, char *argv[],
		    bool *exitp)
{
	static const struct tconf_load how = {
		"tally-media", "tally-media", "config-file", ignore_flags
	};
	char **args;
	int n, err;

	/* rtpengine options tally ignores take a value: drop them first */
	args = calloc((size_t)argc + 1, sizeof(*args));
	if (!args)
		return ENOMEM;
	n = strip_ignored(argc, argv, args);
	err = tconf_load(cf, media_keys, &how, n, args, exitp);
	free(args);
	if (err || *exitp)
		return err;

	iface_clean(cf->interface);
	if (cf->coalesce_us > 999999) {
		fprintf(stderr, "tally-media: coalesce-us %u is above 999999\n",
			cf->coalesce_us);
		return EINVAL;
	}
	if (cf->port_min < 1024 || cf->port_max > 65535 ||
	    cf->port_min + 3 > cf->port_max) {
		fprintf(stderr, "tally-media: port range %u-%u is not usable\n",
			cf->port_min, cf->port_max);
		return EINVAL;
	}
	tconf_dump_asked(cf, media_keys, argc, argv, exitp);
	return 0;
}

void media_conf_dump(const struct media_conf *cf)
{
	tconf_dump(stdout, cf, media_keys);
}
