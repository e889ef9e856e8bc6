/*
 * policy.c: what a recording session may record, from configuration.
 *
 * Rules are "pattern=media" lines, tried in order; the first rule whose glob
 * pattern (fnmatch, case-insensitive) matches any participant's AOR
 * decides; if none does, the first rule matching the SRC's From URI (the
 * participants are who the recording is about, the SRC only carries it).
 * No match: default-media.
 *
 *   policy = sip:*@support.example.com=audio       agents: audio only
 *   policy = sip:+4930*=audio+video                a DN range: everything
 *   policy = *=none ... would refuse all sessions
 *
 * A bare pattern without "sip:" also matches the user part or host of an
 * AOR (e.g. "2000" or "*@example.com"), as operators write DNs.
 */
#include <errno.h>
#include <fnmatch.h>
#include <string.h>
#include "recd.h"

enum { POLICY_MAX = 64, PAT_MAX = 256 };

struct rule {
	char pat[PAT_MAX];
	enum rec_media media;
};

struct policy {
	struct rule rules[POLICY_MAX];
	size_t n;
	enum rec_media def;
};

static int media_parse(const char *s, size_t len, enum rec_media *m)
{
	if (len == 11 && !strncmp(s, "audio+video", 11))
		*m = REC_AUDIO_VIDEO;
	else if (len == 5 && !strncmp(s, "audio", 5))
		*m = REC_AUDIO;
	else if (len == 4 && !strncmp(s, "none", 4))
		*m = REC_NONE;
	else
		return EINVAL;
	return 0;
}

const char *rec_media_name(enum rec_media m)
{
	switch (m) {
	case REC_AUDIO_VIDEO: return "audio+video";
	case REC_AUDIO:       return "audio";
	default:              return "none";
	}
}

/* LINES: '\n'-separated "pattern=media"; the last '=' splits, so a
 * pattern may hold '=' (URI parameters). */
int policy_alloc(struct policy **pp, const char *lines, const char *def)
{
	struct policy *p;
	const char *s = lines ? lines : "";
	int err = 0;

	p = mem_zalloc(sizeof(*p), NULL);
	if (!p)
		return ENOMEM;
	err = media_parse(def, strlen(def), &p->def);
	while (!err && *s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		const char *eq = NULL;
		size_t i;

		for (i = 0; i < len; i++)
			if (s[i] == '=')
				eq = s + i;
		if (len) {
			struct rule *r = &p->rules[p->n];

			if (!eq || eq == s || p->n >= POLICY_MAX ||
			    (size_t)(eq - s) >= PAT_MAX)
				err = EINVAL;
			else
				err = media_parse(eq + 1,
						  len - (size_t)(eq + 1 - s),
						  &r->media);
			if (!err) {
				memcpy(r->pat, s, (size_t)(eq - s));
				r->pat[eq - s] = '\0';
				++p->n;
			}
		}
		s += len + (nl ? 1 : 0);
	}
	if (err)
		mem_deref(p);
	else
		*pp = p;
	return err;
}

static bool match(const char *pat, const char *uri)
{
	const char *u;

	if (!uri || !*uri)
		return false;
	if (!fnmatch(pat, uri, FNM_CASEFOLD))
		return true;
	/* "2000" / "*@example.com" against "sip:2000@example.com" */
	u = strchr(uri, ':');
	if (u && !fnmatch(pat, u + 1, FNM_CASEFOLD))
		return true;
	if (u) {
		char user[PAT_MAX];
		const char *at = strchr(u + 1, '@');
		size_t n = at ? (size_t)(at - u - 1) : 0;

		if (at && n < sizeof(user)) {
			memcpy(user, u + 1, n);
			user[n] = '\0';
			return !fnmatch(pat, user, FNM_CASEFOLD);
		}
	}
	return false;
}

enum rec_media policy_decide(const struct policy *p, const char *const *aors,
			     size_t n, const char *from, const char **rule)
{
	size_t i, j;

	for (i = 0; i < p->n; i++) {
		for (j = 0; j < n; j++) {
			if (match(p->rules[i].pat, aors[j])) {
				if (rule)
					*rule = p->rules[i].pat;
				return p->rules[i].media;
			}
		}
	}
	for (i = 0; i < p->n; i++) {
		if (match(p->rules[i].pat, from)) {
			if (rule)
				*rule = p->rules[i].pat;
			return p->rules[i].media;
		}
	}
	if (rule)
		*rule = "default";
	return p->def;
}
