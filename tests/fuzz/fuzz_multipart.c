/*
 * fuzz_multipart.c: libFuzzer harness for the multipart body parser.
 *
 * Input: the Content-Type value on the first line (a CR before its LF is
 * dropped), the body after it. The kept corpus holds the SIPREC messages
 * of tests/data/siprec in this form, plus sloppy and broken variants.
 *
 * A refusal must be EBADMSG or E2BIG, name its reason ("multipart: ...")
 * and leave no parts. An accepted body must give 1..MPART_MAX parts whose
 * fields all lie inside the body (zero-copy), in order and without
 * overlap, types and dispositions without ';' or surrounding blanks, and
 * multipart_find must return the first part of a type it holds. Parsing
 * the same body again gives the same result.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <re.h>
#include "multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(const struct pl *pl, const struct pl *body)
{
	if (!pl->l)
		return !pl->p || (pl->p >= body->p &&
				  pl->p <= body->p + body->l);

	return pl->p >= body->p && pl->p + pl->l <= body->p + body->l;
}

static bool clean(const struct pl *pl)
{
	size_t i;

	if (!pl->l)
		return true;
	if (pl->p[0] == ' ' || pl->p[0] == '\t' || pl->p[0] == '\r' ||
	    pl->p[0] == '\n')
		return false;
	for (i = 0; i < pl->l; i++) {
		if (pl->p[i] == ';')
			return false;
	}

	return pl->p[pl->l - 1] != ' ' && pl->p[pl->l - 1] != '\t' &&
		pl->p[pl->l - 1] != '\r' && pl->p[pl->l - 1] != '\n';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *nl = memchr(p, '\n', size);
	struct multipart mp, again;
	struct pl ctype, body;
	const char *why = NULL, *why2 = NULL;
	const char *prev_end;
	size_t i;
	int err;

	ctype.p = p;
	ctype.l = nl ? (size_t)(nl - p) : size;
	if (ctype.l && ctype.p[ctype.l - 1] == '\r')
		ctype.l--;
	body.p = nl ? nl + 1 : p + size;
	body.l = nl ? size - (size_t)(nl + 1 - p) : 0;

	err = multipart_parse(&mp, &ctype, &body, &why);
	if (multipart_parse(&again, &ctype, &body, &why2) != err ||
	    memcmp(&mp, &again, sizeof(mp)) || why != why2)
		abort();

	if (err) {
		if (err != EBADMSG && err != E2BIG)
			abort();
		if (!why || strncmp(why, "multipart: ", 11) || mp.n)
			abort();
		return 0;
	}

	if (why || mp.n < 1 || mp.n > MPART_MAX)
		abort();

	prev_end = body.p;
	for (i = 0; i < mp.n; i++) {
		const struct mpart *part = &mp.parts[i];
		const struct mpart *found;
		char type[128];

		if (!inside(&part->ctype, &body) ||
		    !inside(&part->disp, &body) ||
		    !inside(&part->body, &body))
			abort();
		if (!clean(&part->ctype) || !clean(&part->disp))
			abort();

		/* parts come in order and do not overlap */
		if (part->body.p < prev_end)
			abort();
		prev_end = part->body.p + part->body.l;

		if (part->ctype.l && part->ctype.l < sizeof(type) &&
		    !memchr(part->ctype.p, '\0', part->ctype.l)) {
			memcpy(type, part->ctype.p, part->ctype.l);
			type[part->ctype.l] = '\0';
			found = multipart_find(&mp, type);
			if (!found || found > part)
				abort();
		}
	}

	return 0;
}
