/*
 * parties.c: who is who in a session, for the finalizer: a party is a
 * participant with the streams it sends (its audio and video go into one
 * file), and the name of that file.
 *
 * With metadata (RFC 7865, resolved to SDP labels by the daemon), each
 * participant is a party and sends the streams its "send" labels name; a
 * stream claimed twice stays with the first. Without metadata (or with no
 * participants in it) the pairing is by order, as docs/recording-format.md
 * says: the n-th audio and the n-th video m= line are party n, counted
 * over every m= line of their kind, accepted or not, so a refused video
 * does not shift the pairs. Streams without media leave their party;
 * a party left with nothing gets no file.
 *
 * File names: the display name, else the AOR's user part, else "partyN";
 * lower case letters, digits, '.', '-', '_' only (the rest becomes '_'),
 * at most FIN_NAME_MAX characters, "-2", "-3" ... against clashes and
 * never "tracks", "stereo", "media" or "session".
 * Example: "Alice" <sip:alice@atlanta.com> -> alice; sip:+1-555@x -> _1-555.
 *
 * Each party's video is then put on its audio's clock (avsync.c).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "fin_priv.h"

static struct fin_stream *stream_of(struct fin_run *run, size_t sidx)
{
	size_t i;

	for (i = 0; i < run->nst; i++)
		if (run->st[i].sidx == sidx)
			return &run->st[i];
	return NULL;
}

bool fin_claimed(const struct fin_run *run, const struct fin_stream *fs)
{
	size_t i, j;

	for (i = 0; i < run->nparty; i++)
		for (j = 0; j < run->party[i].nst; j++)
			if (run->party[i].st[j] == fs)
				return true;
	return false;
}

/* A file name from a display name or an AOR's user part: lower case
 * letters, digits, '.', '-', '_'; "" if nothing usable. */
static void name_base(char *out, size_t size, const char *name,
		      const char *aor)
{
	const char *s = name;
	size_t n = 0;

	if (!s || !*s) {
		s = aor ? strchr(aor, ':') : NULL;
		s = s ? s + 1 : aor;
	}
	for (; s && *s && *s != '@' && *s != ';' && n + 1 < size &&
		     n < FIN_NAME_MAX; s++) {
		char c = *s;

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || (c == '.' && n)))
			c = '_';
		out[n++] = c;
	}
	out[n] = '\0';

	/* nothing but replacement characters is no name */
	if (strspn(out, "_") == n)
		out[0] = '\0';
}

static bool base_taken(const struct fin_run *run, size_t upto, const char *b)
{
	size_t i;

	if (!strcmp(b, "tracks") || !strcmp(b, "stereo") ||
	    !strcmp(b, "media") || !strcmp(b, "session"))
		return true;
	for (i = 0; i < upto; i++)
		if (!strcmp(run->party[i].base, b))
			return true;
	return false;
}

static void party_add(struct fin_run *run, const char *id, const char *name,
		      const char *aor)
{
	struct fin_party *p = &run->party[run->nparty];
	char b[FIN_NAME_MAX + 1];
	unsigned k;

	memset(p, 0, sizeof(*p));
	p->id = id;
	name_base(b, sizeof(b), name, aor);
	if (!b[0])
		(void)snprintf(b, sizeof(b), "party%zu", run->nparty + 1);

	(void)snprintf(p->base, sizeof(p->base), "%s", b);
	for (k = 2; base_taken(run, run->nparty, p->base); k++)
		(void)snprintf(p->base, sizeof(p->base), "%s-%u", b, k);

	++run->nparty;
}

static void parties_by_metadata(struct fin_run *run)
{
	const struct sessfile *sf = run->sf;
	size_t i, j, k;

	for (i = 0; i < sf->nparts; i++) {
		const struct sf_participant *sp = &sf->parts[i];
		struct fin_party *p;

		party_add(run, sp->id, sp->name, sp->aor);
		p = &run->party[run->nparty - 1];

		for (j = 0; j < sp->nsend; j++) {
			for (k = 0; k < sf->nstreams; k++) {
				struct fin_stream *fs;

				if (strcmp(sf->streams[k].label, sp->send[j]) ||
				    !sf->streams[k].label[0])
					continue;
				fs = stream_of(run, k);
				if (fs && !fin_claimed(run, fs) &&
				    p->nst < SF_STREAMS_MAX)
					p->st[p->nst++] = fs;
			}
		}
	}
}

/* Without metadata: the n-th audio and the n-th video m= line (accepted
 * or not, so a refused video does not shift the pairs) are party n. */
static void parties_by_order(struct fin_run *run)
{
	const struct sessfile *sf = run->sf;
	size_t n, i, na, nv;

	for (n = 0; n < SF_STREAMS_MAX; n++) {
		struct fin_stream *a = NULL, *v = NULL;
		struct fin_party *p;

		for (i = na = nv = 0; i < sf->nstreams; i++) {
			bool video = !strcmp(sf->streams[i].media, "video");

			if (!video && strcmp(sf->streams[i].media, "audio"))
				continue;
			if (!video && na++ == n)
				a = stream_of(run, i);
			if (video && nv++ == n)
				v = stream_of(run, i);
		}
		if (n >= na && n >= nv)
			break;

		party_add(run, "", NULL, NULL);
		p = &run->party[run->nparty - 1];
		if (a)
			p->st[p->nst++] = a;
		if (v)
			p->st[p->nst++] = v;
	}
}

/* Party members without media go; so do parties left with nothing. */
static void parties_prune(struct fin_run *run)
{
	size_t i, j, n;

	for (i = 0; i < run->nparty; i++) {
		struct fin_party *p = &run->party[i];

		for (j = n = 0; j < p->nst; j++)
			if (p->st[j]->nmedia)
				p->st[n++] = p->st[j];
		p->nst = n;
	}
}

static void parties_sync(struct fin_run *run)
{
	size_t i, j;

	for (i = 0; i < run->nparty; i++) {
		struct fin_party *p = &run->party[i];
		struct fin_stream *audio = NULL, *video[SF_STREAMS_MAX];
		size_t nv = 0;

		for (j = 0; j < p->nst; j++) {
			if (p->st[j]->video)
				video[nv++] = p->st[j];
			else if (!audio || (!audio->nsrs && p->st[j]->nsrs))
				audio = p->st[j];
		}
		fin_avsync(audio, video, nv, run->sf->id);
	}
}

void fin_parties(struct fin_run *run)
{
	if (run->sf->has_metadata && run->sf->nparts)
		parties_by_metadata(run);
	else
		parties_by_order(run);
	parties_prune(run);
	parties_sync(run);
}
