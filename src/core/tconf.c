/*
 * tconf.c: the key-table configuration (see tconf.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include "tconf.h"

static const struct tconf_key *key_find(const struct tconf_key *keys,
					const char *name, size_t len)
{
	for (; keys->name; keys++) {
		if (strlen(keys->name) == len && !strncmp(keys->name, name, len))
			return keys;
	}
	return NULL;
}

static int key_set(void *cfg, const struct tconf_key *k, const char *val)
{
	char *field = (char *)cfg + k->offset;

	switch (k->type) {
	case TCONF_STR:
		if (strlen(val) >= k->size)
			return E2BIG;
		strcpy(field, val);
		return 0;
	case TCONF_MULTI: {
		size_t used = strlen(field);
		if (used + strlen(val) + 2 > k->size)
			return E2BIG;
		strcpy(field + used, val);
		strcat(field + used, "\n");
		return 0;
	}
	case TCONF_U32: {
		char *end;
		unsigned long v;
		if (!*val || *val == '-')
			return EINVAL;
		errno = 0;
		v = strtoul(val, &end, 10);
		if (errno || *end || v > UINT32_MAX)
			return EINVAL;
		*(uint32_t *)(void *)field = (uint32_t)v;
		return 0;
	}
	case TCONF_BOOL:
		if (!strcasecmp(val, "yes") || !strcasecmp(val, "true") ||
		    !strcmp(val, "1") || !strcasecmp(val, "on"))
			*(bool *)field = true;
		else if (!strcasecmp(val, "no") || !strcasecmp(val, "false") ||
			 !strcmp(val, "0") || !strcasecmp(val, "off"))
			*(bool *)field = false;
		else
			return EINVAL;
		return 0;
	}
	return EINVAL;
}

int tconf_defaults(void *cfg, const struct tconf_key *keys)
{
	int err;

	for (; keys->name; keys++) {
		memset((char *)cfg + keys->offset, 0, keys->size);
		if (keys->def && (err = key_set(cfg, keys, keys->def)))
			return err;
	}
	return 0;
}

int tconf_set(void *cfg, const struct tconf_key *keys, const char *name,
	      const char *val)
{
	const struct tconf_key *k = key_find(keys, name, strlen(name));

	if (!k)
		return ENOENT;
	return key_set(cfg, k, val);
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int tconf_load_file(void *cfg, const struct tconf_key *keys, const char *path,
		    const char *section, unsigned *line)
{
	char buf[1024];
	bool mine = true;
	unsigned n = 0;
	FILE *f;
	int err = 0;

	f = fopen(path, "r");
	if (!f)
		return errno;
	while (fgets(buf, sizeof(buf), f)) {
		char *s = trim(buf), *eq, *name, *val;

		++n;
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');
			if (!end) {
				err = EINVAL;
				break;
			}
			*end = '\0';
			mine = !strcmp(s + 1, section);
			continue;
		}
		if (!mine)
			continue;
		eq = strchr(s, '=');
		if (!eq) {          /* "key value" (redis style) */
			eq = s + strcspn(s, " \t");
			if (!*eq) {
				err = EINVAL;
				break;
			}
		}
		*eq = '\0';
		name = trim(s);
		val = trim(eq + 1);
		if (strlen(val) >= 2 && val[0] == '"' && val[strlen(val) - 1] == '"') {
			val[strlen(val) - 1] = '\0';
			val++;
		}
		err = tconf_set(cfg, keys, name, val);
		if (err)
			break;
	}
	fclose(f);
	if (err && line)
		*line = n;
	return err;
}

const char *tconf_arg_peek(int argc, char *argv[], const char *name)
{
	size_t len = strlen(name);
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) || strncmp(a + 2, name, len))
			continue;
		if (a[2 + len] == '=')
			return a + 3 + len;
		if (!a[2 + len] && i + 1 < argc)
			return argv[i + 1];
	}
	return NULL;
}

static bool ignored(const char *name, size_t len, const char *const *ignore)
{
	for (; ignore && *ignore; ignore++) {
		if (strlen(*ignore) == len && !strncmp(*ignore, name, len))
			return true;
	}
	return false;
}

int tconf_args(void *cfg, const struct tconf_key *keys, int argc,
	       char *argv[], const char *const *ignore, const char **bad)
{
	int i, err;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *name, *eq, *val = NULL;
		const struct tconf_key *k;
		size_t len;

		*bad = a;
		if (strncmp(a, "--", 2))
			return EINVAL;
		name = a + 2;
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		if (ignored(name, len, ignore))
			continue;
		k = key_find(keys, name, len);
		if (!k)
			return ENOENT;
		if (eq)
			val = eq + 1;
		else if (k->type == TCONF_BOOL)
			val = "yes";
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return EINVAL;
		err = key_set(cfg, k, val);
		if (err)
			return err;
	}
	*bad = NULL;
	return 0;
}

void tconf_dump(FILE *f, const void *cfg, const struct tconf_key *keys)
{
	for (; keys->name; keys++) {
		const char *field = (const char *)cfg + keys->offset;
		fprintf(f, "# %s\n", keys->help);
		switch (keys->type) {
		case TCONF_STR:
			fprintf(f, "%s = %s\n", keys->name, field);
			break;
		case TCONF_U32:
			fprintf(f, "%s = %u\n", keys->name,
				*(const uint32_t *)(const void *)field);
			break;
		case TCONF_BOOL:
			fprintf(f, "%s = %s\n", keys->name,
				*(const bool *)field ? "yes" : "no");
			break;
		case TCONF_MULTI: {
			const char *p = field, *nl;
			if (!*p)
				fprintf(f, "# %s =\n", keys->name);
			for (; *p && (nl = strchr(p, '\n')); p = nl + 1)
				fprintf(f, "%s = %.*s\n", keys->name,
					(int)(nl - p), p);
			break;
		}
		}
	}
}

void tconf_usage(FILE *f, const char *prog, const struct tconf_key *keys)
{
	fprintf(f, "usage: %s [--option=value ...]\n", prog);
	for (; keys->name; keys++)
		fprintf(f, "  --%-16s %s%s%s%s\n", keys->name, keys->help,
			keys->def ? " (default " : "",
			keys->def ? keys->def : "", keys->def ? ")" : "");
}

int tconf_load(void *cfg, const struct tconf_key *keys,
	       const struct tconf_load *p, int argc, char *argv[],
	       bool *exitp)
{
	const struct tconf_key *fk;
	const char *file, *bad = NULL;
	char dflt[256] = "";
	unsigned line = 0;
	int i, err;

	*exitp = false;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			tconf_usage(stdout, p->prog, keys);
			*exitp = true;
			return 0;
		}
	}
	err = tconf_defaults(cfg, keys);
	if (err)
		return err;

	fk = key_find(keys, p->config_key, strlen(p->config_key));
	if (fk && fk->type == TCONF_STR)
		snprintf(dflt, sizeof(dflt), "%s", (char *)cfg + fk->offset);
	file = tconf_arg_peek(argc, argv, p->config_key);
	if (!file)
		file = dflt;
	if (*file && strcmp(file, "none")) {
		err = tconf_load_file(cfg, keys, file, p->section, &line);
		if (err == ENOENT && !tconf_arg_peek(argc, argv, p->config_key))
			err = 0;        /* the default file is optional */
		if (err) {
			fprintf(stderr, "%s: config file %s%s%u: %s\n", p->prog,
				file, line ? " line " : "", line, strerror(err));
			return err;
		}
	}
	err = tconf_args(cfg, keys, argc, argv, p->ignore, &bad);
	if (err)
		fprintf(stderr, "%s: %s option '%s' (see --help)\n", p->prog,
			err == ENOENT ? "unknown" : "bad value for", bad);
	return err;
}

void tconf_dump_asked(const void *cfg, const struct tconf_key *keys,
		      int argc, char *argv[], bool *exitp)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dump-config")) {
			tconf_dump(stdout, cfg, keys);
			*exitp = true;
			return;
		}
	}
}
