/*
 * multipart.c: splits a multipart body (RFC 2046 s5.1) into its parts without
 * copying (see multipart.h for the contract). SIPREC INVITEs carry two parts,
 * the SDP offer and the recording metadata (RFC 7866 s9).
 *
 * A delimiter is "--" + boundary at the start of a line (at the start of the
 * body or after an LF). The line ending before it belongs to the delimiter,
 * not to the part before it, and whatever follows the boundary on its line
 * is transport padding and ignored (RFC 2046: the boundary only has to
 * appear in its entirety after the line break). "--" + boundary + "--" is
 * the close delimiter. Text before the first delimiter (preamble) and after
 * the close delimiter (epilogue) is ignored.
 *
 * Worked example, boundary "foobar" (CRLF shown as \r\n):
 *
 *   this is a preamble\r\n              ignored
 *   --foobar\r\n                        delimiter 1
 *   Content-Type: application/sdp\r\n   part 1 header
 *   \r\n                                end of part 1 headers
 *   v=0\r\n ... a=label:1\r\n           part 1 body (ends with its CRLF)
 *   \r\n--foobar\r\n                    CRLF + delimiter 2
 *   content-type : application/rs-metadata ; x=y\r\n
 *   Content-Disposition: recording-session\r\n
 *   \r\n
 *   <?xml ...?>...</recording>\r\n     part 2 body
 *   \r\n--foobar--                      close delimiter (final CRLF optional)
 *
 * gives parts[0] = {ctype "application/sdp", disp "", body "v=0...:1\r\n"}
 * and parts[1] = {"application/rs-metadata", "recording-session", "<?xml
 * ...</recording>\r\n"}. The same with bare LFs gives the same parts (with
 * bare LFs in the bodies).
 *
 * Tolerated: LF-only lines, a quoted boundary, spaces around ';' and '=',
 * header names in any case and with blanks before the colon, folded header
 * lines, the compact form "c" of Content-Type, a blank-only line ending the
 * headers, a part whose headers run up to the next delimiter with no body.
 * Rejected (EBADMSG): no boundary parameter, a body without any delimiter
 * or without the close delimiter (truncated), a header line with no colon
 * (which is what a part without the blank line after its headers looks
 * like: "v=0" is not a header), no parts at all.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <re.h>
#include "multipart.h"

enum { BOUNDARY_MAX = 200 };  /* RFC 2046 says 70; some SRCs go further */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void trim(struct pl *pl)
{
	while (pl->l && is_lws(pl->p[0])) {
		pl->p++;
		pl->l--;
	}
	while (pl->l && is_lws(pl->p[pl->l - 1]))
		pl->l--;
}

static bool pl_eq_ci(const struct pl *pl, const char *s)
{
	size_t n = strlen(s);

	return pl->l == n && strncasecmp(pl->p, s, n) == 0;
}

/* The value of a header up to its first ';', trimmed: "application/sdp". */
static struct pl first_item(const struct pl *val)
{
	struct pl v = *val;
	const char *semi = memchr(v.p, ';', v.l);

	if (semi)
		v.l = (size_t)(semi - v.p);
	trim(&v);
	return v;
}

/* The boundary parameter of a Content-Type value. */
static int ctype_boundary(const struct pl *ctype, struct pl *bnd,
			  const char **why)
{
	const char *p = ctype->p, *end = ctype->p + ctype->l;
	struct pl mtype = first_item(ctype);
	static const char mp[] = "multipart/";

	if (mtype.l <= sizeof(mp) - 1 ||
	    strncasecmp(mtype.p, mp, sizeof(mp) - 1)) {
		*why = "multipart: not a multipart type";
		return EBADMSG;
	}

	while ((p = memchr(p, ';', (size_t)(end - p))) != NULL) {
		struct pl name, val;

		p++;
		while (p < end && is_lws(*p))
			p++;
		name.p = p;
		while (p < end && *p != '=' && *p != ';' && !is_lws(*p))
			p++;
		name.l = (size_t)(p - name.p);
		while (p < end && is_lws(*p))
			p++;
		if (p >= end || *p != '=')
			continue;   /* a parameter without a value */
		p++;
		while (p < end && is_lws(*p))
			p++;

		if (p < end && *p == '"') {
			const char *q = memchr(p + 1, '"',
					       (size_t)(end - p - 1));

			if (!q) {
				if (pl_eq_ci(&name, "boundary")) {
					*why = "multipart: bad boundary "
						"parameter";
					return EBADMSG;
				}
				break;
			}
			val.p = p + 1;
			val.l = (size_t)(q - p - 1);
			p = q + 1;
		}
		else {
			val.p = p;
			while (p < end && *p != ';' && !is_lws(*p))
				p++;
			val.l = (size_t)(p - val.p);
		}

		if (!pl_eq_ci(&name, "boundary"))
			continue;

		/* boundary characters never need quoting escapes (RFC
		 * 2046 bchars), so a backslash means something is off */
		if (!val.l || val.l > BOUNDARY_MAX ||
		    memchr(val.p, '\\', val.l) || memchr(val.p, '\n', val.l)) {
			*why = "multipart: bad boundary parameter";
			return EBADMSG;
		}
		*bnd = val;
		return 0;
	}

	*why = "multipart: no boundary parameter";
	return EBADMSG;
}

/* Is the line at P (before E) empty or blanks only? */
static bool blank_line(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
		p++;

	return p >= e || *p == '\n';
}

/* Headers and body of the part text [s, e). */
static int part_parse(struct mpart *part, const char *s, const char *e,
		      const char **why)
{
	const char *p = s;

	memset(part, 0, sizeof(*part));

	while (p < e) {
		const char *le, *next, *colon;
		struct pl name, val;

		/* a blank (or blank-only) line ends the headers */
		if (blank_line(p, e)) {
			le = memchr(p, '\n', (size_t)(e - p));
			le = le ? le + 1 : e;
			part->body.p = le;
			part->body.l = (size_t)(e - le);
			return 0;
		}

		/* one logical header line, continuation lines included (a
		 * blank-only line is not one: it ends the headers) */
		le = memchr(p, '\n', (size_t)(e - p));
		next = le ? le + 1 : e;
		while (next < e && is_blank(*next) && !blank_line(next, e)) {
			le = memchr(next, '\n', (size_t)(e - next));
			next = le ? le + 1 : e;
		}
		if (!le)
			le = e;

		colon = memchr(p, ':', (size_t)(le - p));
		if (!colon || is_lws(*p)) {
			*why = "multipart: malformed part header";
			return EBADMSG;
		}
		name.p = p;
		name.l = (size_t)(colon - p);
		trim(&name);
		if (!name.l || memchr(name.p, ' ', name.l) ||
		    memchr(name.p, '\t', name.l)) {
			*why = "multipart: malformed part header";
			return EBADMSG;
		}
		val.p = colon + 1;
		val.l = (size_t)(le - colon - 1);

		if (pl_eq_ci(&name, "Content-Type") || pl_eq_ci(&name, "c"))
			part->ctype = first_item(&val);
		else if (pl_eq_ci(&name, "Content-Disposition"))
			part->disp = first_item(&val);

		p = next;
	}

	/* the headers ran up to the next delimiter: an empty body */
	part->body.p = e;
	part->body.l = 0;
	return 0;
}

int multipart_parse(struct multipart *mp, const struct pl *ctype,
		    const struct pl *body, const char **why)
{
	const char *dummy = NULL;
	struct pl bnd;
	const char *b, *part_start = NULL;
	size_t len, pos = 0;
	bool closed = false, seen = false;
	int err;

	if (!why)
		why = &dummy;
	*why = NULL;

	if (!mp || !ctype || !body || (!body->p && body->l))
		return EINVAL;

	memset(mp, 0, sizeof(*mp));

	if (!ctype->p || !ctype->l) {
		*why = "multipart: not a multipart type";
		return EBADMSG;
	}

	err = ctype_boundary(ctype, &bnd, why);
	if (err)
		return err;

	b = body->p;
	len = body->l;

	while (pos < len) {
		const char *nl = memchr(b + pos, '\n', len - pos);
		size_t after = nl ? (size_t)(nl - b) + 1 : len;
		size_t eol;

		if (len - pos < 2 + bnd.l || b[pos] != '-' ||
		    b[pos + 1] != '-' || memcmp(b + pos + 2, bnd.p, bnd.l)) {
			pos = after;
			continue;
		}

		/* a delimiter; the line end before it is part of it */
		eol = pos;
		if (eol > 0 && b[eol - 1] == '\n') {
			eol--;
			if (eol > 0 && b[eol - 1] == '\r')
				eol--;
		}

		if (seen) {
			const char *e = b + eol;

			if (e < part_start)
				e = part_start;  /* empty part */
			if (mp->n >= MPART_MAX) {
				memset(mp, 0, sizeof(*mp));
				*why = "multipart: too many parts";
				return E2BIG;
			}
			err = part_parse(&mp->parts[mp->n], part_start, e,
					 why);
			if (err) {
				memset(mp, 0, sizeof(*mp));
				return err;
			}
			mp->n++;
		}
		seen = true;

		if (len - pos >= 4 + bnd.l && b[pos + 2 + bnd.l] == '-' &&
		    b[pos + 3 + bnd.l] == '-') {
			closed = true;
			break;   /* the rest is epilogue */
		}

		part_start = b + after;
		pos = after;
	}

	if (!seen) {
		*why = "multipart: no boundary delimiter in body";
		return EBADMSG;
	}
	if (!closed) {
		memset(mp, 0, sizeof(*mp));
		*why = "multipart: no closing delimiter";
		return EBADMSG;
	}
	if (!mp->n) {
		*why = "multipart: no body parts";
		return EBADMSG;
	}

	return 0;
}

const struct mpart *multipart_find(const struct multipart *mp,
				   const char *ctype)
{
	size_t i;

	if (!mp || !ctype)
		return NULL;

	for (i = 0; i < mp->n && i < MPART_MAX; i++) {
		if (pl_eq_ci(&mp->parts[i].ctype, ctype))
			return &mp->parts[i];
	}

	return NULL;
}

/* ---- writing ---- */

void multipart_boundary(char *buf, size_t size)
{
	uint8_t raw[12];
	size_t i, o;

	if (!size)
		return;
	rand_bytes(raw, sizeof(raw));
	o = (size_t)snprintf(buf, size, "tally-");
	for (i = 0; i < sizeof(raw) && o + 2 < size; i++, o += 2)
		snprintf(buf + o, size - o, "%02x", raw[i]);
}

/* RFC 2046 5.1.1 bchars (the boundary is also written unquoted in the
 * Content-Type, so the space is left out as well) */
static bool boundary_ok(const char *b)
{
	static const char extra[] = "'()+_,-./:=?";
	size_t n = strlen(b);

	if (!n || n > 70)
		return false;
	for (; *b; b++) {
		if (!((*b >= '0' && *b <= '9') || (*b >= 'a' && *b <= 'z') ||
		      (*b >= 'A' && *b <= 'Z') || strchr(extra, *b)))
			return false;
	}
	return true;
}

/* does BODY hold "--BOUNDARY" at the start of a line? */
static bool holds_delimiter(const struct pl *body, const char *boundary)
{
	size_t bl = strlen(boundary);
	const char *p = body->p, *e = body->p + body->l;

	while (p < e) {
		if ((size_t)(e - p) >= bl + 2 && p[0] == '-' && p[1] == '-' &&
		    !memcmp(p + 2, boundary, bl))
			return true;
		p = memchr(p, '\n', (size_t)(e - p));
		if (!p)
			break;
		++p;
	}
	return false;
}

int multipart_write(struct mbuf *mb, const char *boundary,
		    const struct mpart_out *parts, size_t n)
{
	size_t start, end, i;
	int err = 0;

	if (!mb || !boundary || !boundary_ok(boundary) || (!parts && n))
		return EINVAL;
	for (i = 0; i < n; i++) {
		if (!parts[i].ctype || !parts[i].body ||
		    holds_delimiter(parts[i].body, boundary))
			return EINVAL;
	}
	start = mb->pos;
	end = mb->end;
	for (i = 0; i < n && !err; i++) {
		/* the CRLF before a delimiter is the delimiter's (see the
		 * top of this file): the content goes out whole */
		err = mbuf_printf(mb, "--%s\r\nContent-Type: %s\r\n", boundary,
				  parts[i].ctype);
		if (!err && parts[i].disp)
			err = mbuf_printf(mb, "Content-Disposition: %s\r\n",
					  parts[i].disp);
		if (!err)
			err = mbuf_printf(mb, "\r\n%r\r\n", parts[i].body);
	}
	if (!err)
		err = mbuf_printf(mb, "--%s--\r\n", boundary);
	if (err) {
		mb->pos = start;
		mb->end = end;
		return ENOMEM;
	}
	return 0;
}
