/*
 * tconf.h: typed configuration driven by one key table per daemon.
 *
 * The same table parses the config file ("key = value" lines, '#' comments,
 * [section] headers: only the daemon's own section and keys before any
 * section are read, so an rtpengine.conf's [rtpengine] section can be
 * pointed at too), the command line ("--key=value", "--key value", "--flag"
 * for booleans), prints --dump-config, and documents the keys (help text).
 * Command-line values override the file's.
 */
#ifndef TALLY_TCONF_H
#define TALLY_TCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* TCONF_MULTI: a key that may be given many times (routes, users); each
 * value is appended to a char buffer as its own '\n'-terminated line. */
enum tconf_type { TCONF_STR, TCONF_U32, TCONF_BOOL, TCONF_MULTI };

struct tconf_key {
	const char *name;        /* "port-min" */
	enum tconf_type type;
	size_t offset;           /* offsetof(struct cfg, field) */
	size_t size;             /* sizeof the field (strings: buffer size) */
	const char *def;         /* default as text, NULL = zero/empty */
	const char *help;
};

#define TCONF_KEY(st, name, type, field, def, help) \
	{ name, type, offsetof(struct st, field), \
	  sizeof(((struct st *)0)->field), def, help }

/* Set every key to its default. Returns 0 or EINVAL (bad default). */
int tconf_defaults(void *cfg, const struct tconf_key *keys);
/* Set NAME to VAL. 0, ENOENT (unknown key), EINVAL (bad value), E2BIG. */
int tconf_set(void *cfg, const struct tconf_key *keys, const char *name,
	      const char *val);
/* Read PATH; SECTION is the daemon's section name. On error *line says where.
 * 0, errno from fopen, or the tconf_set error of the first bad line. */
int tconf_load_file(void *cfg, const struct tconf_key *keys, const char *path,
		    const char *section, unsigned *line);
/* Find the value of option NAME in argv without applying anything
 * (e.g. --config-file before the file is read). NULL if absent. */
const char *tconf_arg_peek(int argc, char *argv[], const char *name);
/* Apply argv[1..] (skipping names listed in IGNORE, NULL-terminated, which
 * take no value). *bad receives the offending argument on error. */
int tconf_args(void *cfg, const struct tconf_key *keys, int argc,
	       char *argv[], const char *const *ignore, const char **bad);
void tconf_dump(FILE *f, const void *cfg, const struct tconf_key *keys);

/* How a daemon loads its configuration (tconf_load). */
struct tconf_load {
	const char *prog;             /* "tally-media": messages, usage */
	const char *section;          /* its [section] in the file */
	const char *config_key;       /* key naming the file ("config-file") */
	const char *const *ignore;    /* flags accepted and ignored, or NULL */
};

/*
 * The whole sequence every daemon follows: --help/-h prints usage and sets
 * *exitp; defaults; the config file (the key CONFIG_KEY's value, "none"
 * reads nothing; a missing default file is fine, a missing named one is
 * not); then ARGV (ARGC entries, argv[0] skipped), which wins. Errors are
 * printed to stderr with the file line or the offending option.
 * Returns 0 or the errno of the first problem. --dump-config is the
 * caller's (tconf_dump_asked), after it has validated the result.
 */
int  tconf_load(void *cfg, const struct tconf_key *keys,
		const struct tconf_load *p, int argc, char *argv[],
		bool *exitp);
/* If --dump-config is in ARGV: print the configuration, set *exitp. */
void tconf_dump_asked(const void *cfg, const struct tconf_key *keys,
		      int argc, char *argv[], bool *exitp);
void tconf_usage(FILE *f, const char *prog, const struct tconf_key *keys);

#endif
