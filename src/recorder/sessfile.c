/*
 * sessfile.c: session.json (docs/recording-format.md) to and from struct
 * sessfile. Written atomically (tmp, fsync, rename, fsync of the folder) so
 * a reader, or a crash, sees the old or the new document, never half.
 * Read with libre's JSON decoder into an odict; unknown keys are ignored,
 * missing ones stay zero, strings longer than their field are cut.
 *
 * Strings come from the network (SIP headers, metadata XML), so the writer
 * never trusts them: quotes, backslashes and control characters are
 * escaped, and bytes that are not valid UTF-8 become U+FFFD, so every JSON
 * reader (libre, Python, the browser) accepts the document.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <re.h>
#include "sessfile.h"

enum { SF_JSON_MAX = 1 << 20 };

static const char *const state_names[] = {
	"recording", "finalizing", "complete", "failed"
};

const char *sf_state_name(enum sf_state st)
{
	return (unsigned)st < 4 ? state_names[st] : "failed";
}

int sf_state_parse(const char *name)
{
	int i;

	for (i = 0; i < 4; i++)
		if (name && !strcmp(name, state_names[i]))
			return i;
	return -1;
}

const struct sf_stream *sessfile_stream(const struct sessfile *sf,
					const char *label)
{
	size_t i;

	for (i = 0; label && i < sf->nstreams; i++)
		if (!strcmp(sf->streams[i].label, label))
			return &sf->streams[i];
	return NULL;
}

/* --- writing --- */

/* Length of the valid UTF-8 sequence at P (1-4), 0 if it is not one. */
static size_t utf8_len(const unsigned char *p)
{
	size_t n, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	else if ((p[0] & 0xe0) == 0xc0)
		n = 2, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;

	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)   /* also stops at the NUL */
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}

	/* overlong forms, surrogates and values past U+10FFFF */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;

	return n;
}

static void jstr(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	fputc('"', f);
	while (*p) {
		n = utf8_len(p);
		if (!n) {
			fputs("\\ufffd", f);
			++p;
		}
		else if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p++);
		}
		else if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p++);
		}
		else {
			(void)fwrite(p, 1, n, f);
			p += n;
		}
	}
	fputc('"', f);
}

/* Times: unix seconds with milliseconds; never "nan" or "inf". */
static void jtime(FILE *f, const char *key, double t)
{
	fprintf(f, "\"%s\":%.3f", key, isfinite(t) ? t : 0.0);
}

static void write_codec(FILE *f, const struct sf_codec *c)
{
	fprintf(f, "{\"pt\":%d,\"name\":", c->pt);
	jstr(f, c->name);
	fprintf(f, ",\"clock\":%u,\"channels\":%d,\"fmtp\":", c->clock,
		c->channels);
	jstr(f, c->fmtp);
	fputc('}', f);
}

static void write_stream(FILE *f, const struct sf_stream *s)
{
	size_t i;

	fprintf(f, "    {\"index\":%d,\"label\":", s->index);
	jstr(f, s->label);
	fputs(",\"media\":", f);
	jstr(f, s->media);
	fprintf(f, ",\"accepted\":%s,\"refused\":", s->accepted ? "true" : "false");
	jstr(f, s->refused);
	fprintf(f, ",\"port\":%u,\"rtcp_port\":%u,\"codecs\":[", s->port,
		s->rtcp_port);
	for (i = 0; i < s->ncodecs; i++) {
		if (i)
			fputc(',', f);
		write_codec(f, &s->codecs[i]);
	}
	fputs("],", f);
	jtime(f, "opened", s->opened);
	fputc(',', f);
	jtime(f, "closed", s->closed);
	fputc('}', f);
}

static void write_list(FILE *f, char list[][SF_ID_MAX], size_t n)
{
	size_t i;

	fputc('[', f);
	for (i = 0; i < n; i++) {
		if (i)
			fputc(',', f);
		jstr(f, list[i]);
	}
	fputc(']', f);
}

static void write_doc(FILE *f, const struct sessfile *sf)
{
	size_t i;

	fprintf(f, "{\n  \"version\": %d,\n  \"id\": ", sf->version ? sf->version : 1);
	jstr(f, sf->id);
	fputs(",\n  \"call_id\": ", f);
	jstr(f, sf->call_id);
	fputs(",\n  \"session_id\": ", f);
	jstr(f, sf->session_id);
	fputs(",\n  \"src\": ", f);
	jstr(f, sf->src);
	fputs(",\n  \"state\": ", f);
	jstr(f, sf_state_name(sf->state));
	fputs(",\n  \"reason\": ", f);
	jstr(f, sf->reason);
	fputs(",\n  ", f);
	jtime(f, "started", sf->started);
	fputs(",\n  ", f);
	jtime(f, "stopped", sf->stopped);
	fprintf(f, ",\n  \"has_metadata\": %s,\n  \"streams\": [\n",
		sf->has_metadata ? "true" : "false");
	for (i = 0; i < sf->nstreams; i++) {
		write_stream(f, &sf->streams[i]);
		fputs(i + 1 < sf->nstreams ? ",\n" : "\n", f);
	}
	fputs("  ],\n  \"participants\": [\n", f);
	for (i = 0; i < sf->nparts; i++) {
		const struct sf_participant *p = &sf->parts[i];

		fputs("    {\"id\":", f);
		jstr(f, p->id);
		fputs(",\"aor\":", f);
		jstr(f, p->aor);
		fputs(",\"name\":", f);
		jstr(f, p->name);
		fputs(",\"send\":", f);
		write_list(f, (char (*)[SF_ID_MAX])p->send, p->nsend);
		fputs(",\"recv\":", f);
		write_list(f, (char (*)[SF_ID_MAX])p->recv, p->nrecv);
		if (p->left) {
			fputs(",\"left\":true,\"left_time\":", f);
			jstr(f, p->left_time);
		}
		fputs(i + 1 < sf->nparts ? "},\n" : "}\n", f);
	}
	fputs("  ],\n  \"files\": [\n", f);
	for (i = 0; i < sf->nfiles; i++) {
		const struct sf_file *fl = &sf->files[i];

		fputs("    {\"name\":", f);
		jstr(f, fl->name);
		fputs(",\"kind\":", f);
		jstr(f, fl->kind);
		fputs(",\"participant\":", f);
		jstr(f, fl->participant);
		fprintf(f, ",\"size\":%llu,\"sha256\":",
			(unsigned long long)fl->size);
		jstr(f, fl->sha256);
		fputs(i + 1 < sf->nfiles ? "},\n" : "}\n", f);
	}
	fputs("  ]\n}\n", f);
}

int sessfile_save(const char *dir, const struct sessfile *sf)
{
	char tmp[1024], path[1024];
	FILE *f;
	int err = 0, dfd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/session.json.tmp", dir) >=
	    sizeof(tmp))
		return ENAMETOOLONG;
	(void)snprintf(path, sizeof(path), "%s/session.json", dir);
	f = fopen(tmp, "we");
	if (!f)
		return errno;
	write_doc(f, sf);
	errno = 0;
	if (ferror(f))
		err = EIO;
	else if (fflush(f) || fsync(fileno(f)))
		err = errno ? errno : EIO;
	if (fclose(f) && !err)
		err = errno ? errno : EIO;
	if (!err && rename(tmp, path))
		err = errno;
	if (err) {
		(void)unlink(tmp);
		return err;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* --- reading --- */

static void get_str(const struct odict *o, const char *key, char *buf,
		    size_t size)
{
	const char *s = odict_string(o, key);

	if (s)
		(void)snprintf(buf, size, "%s", s);
}

static double get_num(const struct odict *o, const char *key)
{
	const struct odict_entry *e = odict_lookup(o, key);

	if (!e)
		return 0;
	if (e->type == ODICT_DOUBLE)
		return e->u.dbl;
	if (e->type == ODICT_INT)
		return (double)e->u.integer;
	return 0;
}

static bool get_bool(const struct odict *o, const char *key)
{
	bool v = false;

	(void)odict_get_boolean(o, &v, key);
	return v;
}

static const struct odict *get_obj(const struct odict *o, const char *key,
				   enum odict_type type)
{
	const struct odict_entry *e = odict_lookup(o, key);

	return e && e->type == type ? e->u.odict : NULL;
}

static size_t read_list(const struct odict *arr, char list[][SF_ID_MAX],
			size_t max)
{
	struct le *le;
	size_t n = 0;

	for (le = arr ? list_head(&arr->lst) : NULL; le && n < max;
	     le = le->next) {
		const struct odict_entry *e = le->data;

		if (e->type == ODICT_STRING)
			(void)snprintf(list[n++], SF_ID_MAX, "%s", e->u.str);
	}
	return n;
}

static void read_stream(const struct odict *o, struct sf_stream *s)
{
	const struct odict *codecs = get_obj(o, "codecs", ODICT_ARRAY);
	struct le *le;

	s->index = (int)get_num(o, "index");
	get_str(o, "label", s->label, sizeof(s->label));
	get_str(o, "media", s->media, sizeof(s->media));
	s->accepted = get_bool(o, "accepted");
	get_str(o, "refused", s->refused, sizeof(s->refused));
	s->port = (uint16_t)get_num(o, "port");
	s->rtcp_port = (uint16_t)get_num(o, "rtcp_port");
	s->opened = get_num(o, "opened");
	s->closed = get_num(o, "closed");
	for (le = codecs ? list_head(&codecs->lst) : NULL;
	     le && s->ncodecs < SF_CODECS_MAX; le = le->next) {
		const struct odict_entry *e = le->data;
		struct sf_codec *c = &s->codecs[s->ncodecs];

		if (e->type != ODICT_OBJECT)
			continue;
		c->pt = (int)get_num(e->u.odict, "pt");
		get_str(e->u.odict, "name", c->name, sizeof(c->name));
		c->clock = (uint32_t)get_num(e->u.odict, "clock");
		c->channels = (int)get_num(e->u.odict, "channels");
		if (!c->channels)
			c->channels = 1;
		get_str(e->u.odict, "fmtp", c->fmtp, sizeof(c->fmtp));
		++s->ncodecs;
	}
}

static void read_doc(const struct odict *o, struct sessfile *sf)
{
	const struct odict *arr;
	struct le *le;
	char state[32] = "";
	int st;

	sf->version = (int)get_num(o, "version");
	get_str(o, "id", sf->id, sizeof(sf->id));
	get_str(o, "call_id", sf->call_id, sizeof(sf->call_id));
	get_str(o, "session_id", sf->session_id, sizeof(sf->session_id));
	get_str(o, "src", sf->src, sizeof(sf->src));
	get_str(o, "state", state, sizeof(state));
	st = sf_state_parse(state);
	sf->state = st < 0 ? SF_FAILED : (enum sf_state)st;
	get_str(o, "reason", sf->reason, sizeof(sf->reason));
	sf->started = get_num(o, "started");
	sf->stopped = get_num(o, "stopped");
	sf->has_metadata = get_bool(o, "has_metadata");

	arr = get_obj(o, "streams", ODICT_ARRAY);
	for (le = arr ? list_head(&arr->lst) : NULL;
	     le && sf->nstreams < SF_STREAMS_MAX; le = le->next) {
		const struct odict_entry *e = le->data;

		if (e->type == ODICT_OBJECT)
			read_stream(e->u.odict, &sf->streams[sf->nstreams++]);
	}
	arr = get_obj(o, "participants", ODICT_ARRAY);
	for (le = arr ? list_head(&arr->lst) : NULL;
	     le && sf->nparts < SF_PARTS_MAX; le = le->next) {
		const struct odict_entry *e = le->data;
		struct sf_participant *p = &sf->parts[sf->nparts];

		if (e->type != ODICT_OBJECT)
			continue;
		get_str(e->u.odict, "id", p->id, sizeof(p->id));
		get_str(e->u.odict, "aor", p->aor, sizeof(p->aor));
		get_str(e->u.odict, "name", p->name, sizeof(p->name));
		p->nsend = read_list(get_obj(e->u.odict, "send", ODICT_ARRAY),
				     p->send, SF_REFS_MAX);
		p->nrecv = read_list(get_obj(e->u.odict, "recv", ODICT_ARRAY),
				     p->recv, SF_REFS_MAX);
		p->left = get_bool(e->u.odict, "left");
		get_str(e->u.odict, "left_time", p->left_time,
			sizeof(p->left_time));
		++sf->nparts;
	}
	arr = get_obj(o, "files", ODICT_ARRAY);
	for (le = arr ? list_head(&arr->lst) : NULL;
	     le && sf->nfiles < SF_STREAMS_MAX; le = le->next) {
		const struct odict_entry *e = le->data;
		struct sf_file *fl = &sf->files[sf->nfiles];

		if (e->type != ODICT_OBJECT)
			continue;
		get_str(e->u.odict, "name", fl->name, sizeof(fl->name));
		get_str(e->u.odict, "kind", fl->kind, sizeof(fl->kind));
		get_str(e->u.odict, "participant", fl->participant,
			sizeof(fl->participant));
		fl->size = (uint64_t)get_num(e->u.odict, "size");
		get_str(e->u.odict, "sha256", fl->sha256, sizeof(fl->sha256));
		++sf->nfiles;
	}
}

int sessfile_load(const char *dir, struct sessfile *sf)
{
	char path[1024];
	struct odict *o = NULL;
	char *buf;
	FILE *f;
	size_t n;
	int err;

	memset(sf, 0, sizeof(*sf));
	if ((size_t)snprintf(path, sizeof(path), "%s/session.json", dir) >=
	    sizeof(path))
		return ENAMETOOLONG;
	f = fopen(path, "re");
	if (!f)
		return errno;
	buf = malloc(SF_JSON_MAX);
	if (!buf) {
		fclose(f);
		return ENOMEM;
	}
	n = fread(buf, 1, SF_JSON_MAX, f);
	fclose(f);
	if (n == SF_JSON_MAX) {
		free(buf);
		return EFBIG;
	}
	/* nesting: document > streams > stream > codecs > codec */
	err = json_decode_odict(&o, 32, buf, n, 8);
	free(buf);
	if (err || !o) {
		mem_deref(o);
		return EBADMSG;
	}
	read_doc(o, sf);
	mem_deref(o);
	return sf->id[0] ? 0 : EBADMSG;
}
