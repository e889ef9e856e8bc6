/*
 * test_multipart.c: unit tests for the multipart body parser (multipart.c).
 *
 * Every .sip message in tests/data/siprec is split into SIP headers and
 * body here (its Content-Type found by name or compact form), and its body
 * parsed: the parts must match what the raw text says (one part per
 * delimiter line, each part's Content-Type and Content-Disposition, the SDP
 * starting at "v=0" and ending with its own CRLF, no delimiter bytes in a
 * body). Each body is then re-parsed in the sloppy forms SRCs send (bare
 * LFs, quoted boundary with blanks, no final CRLF, preamble and epilogue,
 * header names in odd case with blanks before the colon) and must give the
 * same parts; cut before its close delimiter it must be refused. Hand-made
 * bodies cover the rejections and the limits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <re.h>
#include "multipart.h"

#define DATA TALLY_TEST_DATA "/siprec"

static struct pl pl_of(const char *s)
{
	struct pl pl = {s, strlen(s)};

	return pl;
}

static bool pl_is(const struct pl *pl, const char *s)
{
	return pl->l == strlen(s) && !memcmp(pl->p, s, pl->l);
}

static bool pl_within(const struct pl *pl, const char *buf, size_t len)
{
	return pl->p >= buf && pl->p + pl->l <= buf + len;
}

static char *load(const char *rel, size_t *lenp)
{
	char path[512];
	char *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", DATA, rel);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(n, fread(buf, 1, (size_t)n, f));
	buf[n] = '\0';
	fclose(f);

	*lenp = (size_t)n;
	return buf;
}

/* A SIP message split into its Content-Type value and body. */
struct sipmsg {
	char *buf;
	struct pl ctype;
	struct pl body;
	char boundary[128];
};

static void sip_split(struct sipmsg *m, const char *rel)
{
	size_t len;
	const char *sep, *p, *end;

	memset(m, 0, sizeof(*m));
	m->buf = load(rel, &len);

	sep = strstr(m->buf, "\r\n\r\n");
	assert_non_null(sep);
	m->body.p = sep + 4;
	m->body.l = len - (size_t)(m->body.p - m->buf);

	for (p = m->buf, end = sep; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *colon = memchr(p, ':', (size_t)(le - p));

		if (colon && ((colon - p == 12 &&
			       !strncasecmp(p, "Content-Type", 12)) ||
			      (colon - p == 1 && (*p == 'c' || *p == 'C')))) {
			m->ctype.p = colon + 1;
			while (*m->ctype.p == ' ')
				m->ctype.p++;
			m->ctype.l = (size_t)(le - m->ctype.p);
			if (m->ctype.l && m->ctype.p[m->ctype.l - 1] == '\r')
				m->ctype.l--;
		}
		p = nl ? nl + 1 : end;
	}
	assert_non_null(m->ctype.p);

	p = strstr(m->buf, "boundary=");
	if (p && p < sep) {
		size_t n = strcspn(p + 9, "\r\n;");

		assert_true(n < sizeof(m->boundary));
		memcpy(m->boundary, p + 9, n);
	}
}

/* How many lines of TEXT start with "--" BOUNDARY and are not the close
 * delimiter: what the parser should find, counted naively. */
static size_t count_delims(const struct pl *body, const char *boundary)
{
	size_t n = 0, bl = strlen(boundary);
	const char *p = body->p, *end = body->p + body->l;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if ((size_t)(end - p) >= bl + 2 && !strncmp(p, "--", 2) &&
		    !strncmp(p + 2, boundary, bl) &&
		    strncmp(p + 2 + bl, "--", 2))
			n++;
		p = nl ? nl + 1 : end;
	}

	return n;
}

static void expect_ok(struct multipart *mp, const char *ctype,
		      const struct pl *body)
{
	struct pl ct = pl_of(ctype);
	const char *why = "x";
	int err;

	err = multipart_parse(mp, &ct, body, &why);
	if (err)
		fail_msg("multipart_parse: %d (%s)", err, why ? why : "-");
	assert_null(why);
}

static void expect_bad(const char *ctype, const char *body, int want,
		       const char *want_why)
{
	struct multipart mp;
	struct pl ct = pl_of(ctype), b = pl_of(body);
	const char *why = NULL;
	int err;

	err = multipart_parse(&mp, &ct, &b, &why);
	if (err != want)
		fail_msg("expected %d (%s), got %d (%s) for %s", want,
			 want_why, err, why ? why : "-", body);
	assert_non_null(why);
	assert_string_equal(why, want_why);
	assert_int_equal(0, mp.n);
}

/* Same parts: the same types and dispositions, bodies equal once bare
 * CRs are ignored (LF-only variants). */
static bool same_text(const struct pl *a, const struct pl *b)
{
	size_t i = 0, j = 0;

	for (;;) {
		while (i < a->l && a->p[i] == '\r')
			i++;
		while (j < b->l && b->p[j] == '\r')
			j++;
		if (i == a->l || j == b->l)
			return i == a->l && j == b->l;
		if (a->p[i++] != b->p[j++])
			return false;
	}
}

static void assert_same(const char *what, const struct multipart *a,
			const struct multipart *b)
{
	size_t i;

	if (a->n != b->n)
		fail_msg("%s: %zu parts, expected %zu", what, b->n, a->n);
	for (i = 0; i < a->n; i++) {
		const struct mpart *x = &a->parts[i], *y = &b->parts[i];

		if (x->ctype.l != y->ctype.l || (x->ctype.l &&
		    strncasecmp(x->ctype.p, y->ctype.p, x->ctype.l)))
			fail_msg("%s: part %zu type %.*s, expected %.*s", what,
				 i, (int)y->ctype.l, y->ctype.p,
				 (int)x->ctype.l, x->ctype.p);
		if (x->disp.l != y->disp.l || (x->disp.l &&
		    strncasecmp(x->disp.p, y->disp.p, x->disp.l)))
			fail_msg("%s: part %zu disposition", what, i);
		if (!same_text(&x->body, &y->body))
			fail_msg("%s: part %zu body differs", what, i);
	}
}

/* Replace every FROM in TEXT by TO (a new buffer). */
static char *replace(const struct pl *text, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to), n = 0, i;
	char *out = malloc(text->l * (tl > fl ? tl : 1) + 1);

	assert_non_null(out);
	for (i = 0; i < text->l;) {
		if (text->l - i >= fl && !memcmp(text->p + i, from, fl)) {
			memcpy(out + n, to, tl);
			n += tl;
			i += fl;
		}
		else {
			out[n++] = text->p[i++];
		}
	}
	out[n] = '\0';
	return out;
}

/* The parse of one data file and its variants. */
static void check_message(const char *rel)
{
	struct sipmsg m;
	struct multipart mp, v;
	const struct mpart *sdp, *meta;
	char ctype[256];
	struct pl vb;
	char *buf;
	size_t i, ndelim;

	sip_split(&m, rel);

	if (m.ctype.l < 10 || strncasecmp(m.ctype.p, "multipart/", 10)) {
		/* a single-part body: not ours to split */
		const char *why = NULL;

		assert_int_equal(EBADMSG, multipart_parse(&mp, &m.ctype,
							  &m.body, &why));
		assert_string_equal(why, "multipart: not a multipart type");
		free(m.buf);
		return;
	}

	snprintf(ctype, sizeof(ctype), "%.*s", (int)m.ctype.l, m.ctype.p);
	expect_ok(&mp, ctype, &m.body);
	assert_true(m.boundary[0]);

	ndelim = count_delims(&m.body, m.boundary);
	if (mp.n != ndelim)
		fail_msg("%s: %zu parts for %zu delimiters", rel, mp.n, ndelim);

	for (i = 0; i < mp.n; i++) {
		const struct mpart *p = &mp.parts[i];
		char hdr[256];

		assert_true(pl_within(&p->body, m.body.p, m.body.l));
		assert_true(pl_within(&p->ctype, m.body.p, m.body.l));
		assert_true(p->ctype.l > 0);
		snprintf(hdr, sizeof(hdr), "\n--%s", m.boundary);
		assert_null(memmem(p->body.p, p->body.l, hdr, strlen(hdr)));
		assert_int_not_equal(0, strncmp(p->body.p, hdr + 1,
						strlen(hdr + 1)));

		/* the disposition is there iff the part's headers say so */
		snprintf(hdr, sizeof(hdr), "Content-Disposition: %.*s",
			 (int)p->disp.l, p->disp.p);
		if (p->disp.l)
			assert_non_null(memmem(p->ctype.p,
					       (size_t)(p->body.p - p->ctype.p),
					       hdr, strlen(hdr)));
		else
			assert_null(memmem(p->ctype.p,
					   (size_t)(p->body.p - p->ctype.p),
					   "Content-Disposition", 19));
		assert_true(p->body.l >= 2);
		assert_true(p->body.p[p->body.l - 2] == '\r' &&
			    p->body.p[p->body.l - 1] == '\n');
		assert_false(p->body.l >= 4 &&
			     !memcmp(p->body.p + p->body.l - 4, "\r\n\r\n", 4));
	}

	sdp = multipart_find(&mp, "application/sdp");
	if (sdp)
		assert_int_equal(0, strncmp(sdp->body.p, "v=0\r\n", 5));
	meta = multipart_find(&mp, "application/rs-metadata");
	assert_non_null(meta);
	assert_true(!strncmp(meta->body.p, "<?xml", 5) ||
		    !strncmp(meta->body.p, "[metadata content]", 18));

	/* bare LFs */
	buf = replace(&m.body, "\r\n", "\n");
	vb = pl_of(buf);
	expect_ok(&v, ctype, &vb);
	assert_same("LF-only", &mp, &v);
	assert_int_equal('\n', v.parts[0].body.p[v.parts[0].body.l - 1]);
	assert_int_not_equal('\n', v.parts[0].body.p[v.parts[0].body.l - 2]);
	free(buf);

	/* quoted boundary, blanks around ';' and '=' */
	snprintf(ctype, sizeof(ctype), "Multipart/Mixed ; charset=x;"
		 " boundary = \"%s\" ; y=z", m.boundary);
	expect_ok(&v, ctype, &m.body);
	assert_same("quoted", &mp, &v);
	assert_memory_equal(&mp, &v, sizeof(mp));   /* the same pointers */
	snprintf(ctype, sizeof(ctype), "%.*s", (int)m.ctype.l, m.ctype.p);

	/* no final CRLF after the close delimiter */
	vb = m.body;
	assert_int_equal(0, memcmp(vb.p + vb.l - 2, "\r\n", 2));
	vb.l -= 2;
	expect_ok(&v, ctype, &vb);
	assert_memory_equal(&mp, &v, sizeof(mp));

	/* preamble and epilogue */
	{
		size_t n = m.body.l + 200;
		char *pe = malloc(n + 1);
		int k;

		assert_non_null(pe);
		k = snprintf(pe, n, "This is a preamble. --%s is not at the "
			     "start of a line.\r\n", m.boundary);
		memcpy(pe + k, m.body.p, m.body.l);
		snprintf(pe + k + m.body.l, n - (size_t)k - m.body.l,
			 "epilogue\r\n--%s\r\nContent-Type: x/y\r\n\r\n",
			 m.boundary);
		vb = pl_of(pe);
		expect_ok(&v, ctype, &vb);
		assert_same("preamble", &mp, &v);
		free(pe);
	}

	/* header names in odd case, blanks before the colon */
	buf = replace(&m.body, "Content-Type:", "cONTENT-tYPE \t:");
	vb = pl_of(buf);
	expect_ok(&v, ctype, &vb);
	assert_same("header case", &mp, &v);
	free(buf);
	buf = replace(&m.body, "Content-Type:", "c:");
	vb = pl_of(buf);
	expect_ok(&v, ctype, &vb);
	assert_same("compact", &mp, &v);
	free(buf);

	/* truncated before the close delimiter */
	vb = m.body;
	vb.l -= strlen(m.boundary) + 4 + 2;
	{
		const char *why = NULL;

		assert_int_equal(EBADMSG, multipart_parse(&v, &m.ctype, &vb,
							  &why));
		assert_string_equal(why, "multipart: no closing delimiter");
	}

	free(m.buf);
}

static void walk(const char *sub, size_t *nsip)
{
	char path[1024];
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/%s", DATA, sub);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char rel[384];
		struct stat st;
		size_t n = strlen(de->d_name);

		if (de->d_name[0] == '.')
			continue;
		(void)snprintf(rel, sizeof(rel), "%s%s%s", sub, *sub ? "/" : "",
			 de->d_name);
		snprintf(path, sizeof(path), "%s/%s", DATA, rel);
		assert_int_equal(0, stat(path, &st));
		if (S_ISDIR(st.st_mode)) {
			walk(rel, nsip);
		}
		else if (n > 4 && !strcmp(de->d_name + n - 4, ".sip")) {
			check_message(rel);
			(*nsip)++;
		}
	}
	closedir(d);
}

static void test_data_files(void **state)
{
	size_t nsip = 0;
	(void)state;

	walk("", &nsip);
	assert_true(nsip >= 16);
}

/* RFC 7866 s9.1 Figure 12, parsed field by field. */
static void test_fig12(void **state)
{
	struct sipmsg m;
	struct multipart mp;
	const char *why = NULL;
	(void)state;

	sip_split(&m, "rfc7866/fig12-initial-invite-asgiven-placeholder-"
		  "metadata.sip");
	assert_int_equal(0, multipart_parse(&mp, &m.ctype, &m.body, &why));
	assert_int_equal(2, mp.n);
	assert_true(pl_is(&mp.parts[0].ctype, "application/sdp"));
	assert_int_equal(0, mp.parts[0].disp.l);
	assert_true(pl_is(&mp.parts[0].body,
			  "v=0\r\no=SRS 2890844526 2890844526 IN IP4 "
			  "198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\n"
			  "t=0 0\r\nm=audio 12240 RTP/AVP 0 4 8\r\n"
			  "a=sendonly\r\na=label:1\r\n"));
	assert_true(pl_is(&mp.parts[1].ctype, "application/rs-metadata"));
	assert_true(pl_is(&mp.parts[1].disp, "recording-session"));
	assert_true(pl_is(&mp.parts[1].body, "[metadata content]\r\n"));
	assert_ptr_equal(multipart_find(&mp, "APPLICATION/SDP"),
			 &mp.parts[0]);
	assert_null(multipart_find(&mp, "application/rs-metadata+xml"));
	assert_null(multipart_find(&mp, NULL));
	assert_null(multipart_find(NULL, "application/sdp"));
	free(m.buf);
}

static void test_rejections(void **state)
{
	static const char good[] =
		"--b\r\nContent-Type: a/b\r\n\r\nbody\r\n--b--\r\n";
	(void)state;

	expect_bad("application/sdp", good, EBADMSG,
		   "multipart: not a multipart type");
	expect_bad("multipart", good, EBADMSG,
		   "multipart: not a multipart type");
	expect_bad("multipart/", good, EBADMSG,
		   "multipart: not a multipart type");
	expect_bad("", good, EBADMSG, "multipart: not a multipart type");
	expect_bad("multipart/mixed", good, EBADMSG,
		   "multipart: no boundary parameter");
	expect_bad("multipart/mixed;charset=x", good, EBADMSG,
		   "multipart: no boundary parameter");
	expect_bad("multipart/mixed;boundary", good, EBADMSG,
		   "multipart: no boundary parameter");
	expect_bad("multipart/mixed;boundary=", good, EBADMSG,
		   "multipart: bad boundary parameter");
	expect_bad("multipart/mixed;boundary=\"\"", good, EBADMSG,
		   "multipart: bad boundary parameter");
	expect_bad("multipart/mixed;boundary=\"b", good, EBADMSG,
		   "multipart: bad boundary parameter");
	expect_bad("multipart/mixed;boundary=\"b\\\"\"", good, EBADMSG,
		   "multipart: bad boundary parameter");
	expect_bad("multipart/mixed;boundary=b", "", EBADMSG,
		   "multipart: no boundary delimiter in body");
	expect_bad("multipart/mixed;boundary=b", "just text\r\n", EBADMSG,
		   "multipart: no boundary delimiter in body");
	expect_bad("multipart/mixed;boundary=b",
		   "text --b in the middle\r\n", EBADMSG,
		   "multipart: no boundary delimiter in body");
	expect_bad("multipart/mixed;boundary=b",
		   "--b\r\nContent-Type: a/b\r\n\r\nbody\r\n", EBADMSG,
		   "multipart: no closing delimiter");
	expect_bad("multipart/mixed;boundary=b", "--b", EBADMSG,
		   "multipart: no closing delimiter");
	expect_bad("multipart/mixed;boundary=b", "--b--\r\n", EBADMSG,
		   "multipart: no body parts");
	/* content right after the delimiter: no headers, no blank line */
	expect_bad("multipart/mixed;boundary=b",
		   "--b\r\nv=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n--b--\r\n",
		   EBADMSG, "multipart: malformed part header");
	expect_bad("multipart/mixed;boundary=b",
		   "--b\r\n: no name\r\n\r\nx\r\n--b--", EBADMSG,
		   "multipart: malformed part header");
	expect_bad("multipart/mixed;boundary=b",
		   "--b\r\nContent Type: a/b\r\n\r\nx\r\n--b--", EBADMSG,
		   "multipart: malformed part header");
	expect_bad("multipart/mixed;boundary=b",
		   "--b\r\n folded: first\r\n\r\nx\r\n--b--", EBADMSG,
		   "multipart: malformed part header");
}

static void test_limits(void **state)
{
	char body[2048];
	struct multipart mp;
	struct pl ct = pl_of("multipart/mixed;boundary=b"), b;
	const char *why = NULL;
	size_t n = 0, i;
	(void)state;

	for (i = 0; i < MPART_MAX; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n,
				      "--b\r\nContent-Type: t/%zu\r\n\r\n%zu"
				      "\r\n", i, i);
	snprintf(body + n, sizeof(body) - n, "--b--\r\n");
	b = pl_of(body);
	assert_int_equal(0, multipart_parse(&mp, &ct, &b, &why));
	assert_int_equal(MPART_MAX, mp.n);
	/* the CRLF before a delimiter is the delimiter's */
	assert_true(pl_is(&mp.parts[MPART_MAX - 1].body, "7"));

	snprintf(body + n, sizeof(body) - n, "--b\r\n\r\nx\r\n--b--\r\n");
	b = pl_of(body);
	assert_int_equal(E2BIG, multipart_parse(&mp, &ct, &b, &why));
	assert_string_equal(why, "multipart: too many parts");
	assert_int_equal(0, mp.n);

	/* boundary length */
	memset(body, 'x', 201);
	memcpy(body, "multipart/mixed;boundary=", 25);
	body[25 + 201] = '\0';
	memset(body + 25, 'k', 201);
	ct = pl_of(body);
	b = pl_of("--k\r\n\r\nx\r\n--k--");
	assert_int_equal(EBADMSG, multipart_parse(&mp, &ct, &b, &why));
	assert_string_equal(why, "multipart: bad boundary parameter");

	ct = pl_of("multipart/mixed;boundary=b");
	assert_int_equal(EINVAL, multipart_parse(NULL, &ct, &b, &why));
	assert_int_equal(EINVAL, multipart_parse(&mp, NULL, &b, &why));
	assert_int_equal(EINVAL, multipart_parse(&mp, &ct, NULL, NULL));
}

static void test_tolerance(void **state)
{
	struct multipart mp;
	struct pl ct = pl_of("multipart/mixed;boundary=\"simple boundary\""),
		b;
	const char *why = NULL;
	(void)state;

	/* RFC 2046 s5.1.1 example, bare LFs, padding after delimiters,
	 * a part with no headers (text/plain) and one with no body */
	b = pl_of("This is the preamble.\n"
		  "--simple boundary  \n"
		  "\n"
		  "plain text, no headers\n"
		  "--simple boundary\n"
		  "Content-type: text/plain; charset=us-ascii\n"
		  "\n"
		  "explicitly typed\n"
		  "--simple boundary\n"
		  "Content-Type:\n"
		  "  application/rs-metadata+xml\n"
		  "   ;x=y\n"
		  "Content-Disposition:recording-session;handling=required\n"
		  "--simple boundary\n"
		  "--simple boundary-- trailing padding\n"
		  "This is the epilogue.\n");
	assert_int_equal(0, multipart_parse(&mp, &ct, &b, &why));
	assert_null(why);
	assert_int_equal(4, mp.n);
	assert_int_equal(0, mp.parts[0].ctype.l);
	assert_true(pl_is(&mp.parts[0].body, "plain text, no headers"));
	assert_true(pl_is(&mp.parts[1].ctype, "text/plain"));
	assert_true(pl_is(&mp.parts[1].body, "explicitly typed"));
	assert_true(pl_is(&mp.parts[2].ctype, "application/rs-metadata+xml"));
	assert_true(pl_is(&mp.parts[2].disp, "recording-session"));
	assert_int_equal(0, mp.parts[2].body.l);
	assert_int_equal(0, mp.parts[3].ctype.l);
	assert_int_equal(0, mp.parts[3].body.l);

	/* a blank-only line ends the headers; the close delimiter may be
	 * the last bytes; the empty line before a delimiter belongs to it */
	ct = pl_of("multipart/related; type=\"application/sdp\"; "
		   "boundary=unique-boundary-1");
	b = pl_of("--unique-boundary-1\r\n"
		  "Content-Type: application/sdp\r\n"
		  "  \t\r\n"
		  "v=0\r\n"
		  "\r\n"
		  "\r\n"
		  "--unique-boundary-1--");
	assert_int_equal(0, multipart_parse(&mp, &ct, &b, &why));
	assert_int_equal(1, mp.n);
	assert_true(pl_is(&mp.parts[0].body, "v=0\r\n\r\n"));
}

/* ---- the writer: what it writes, the reader reads back as the same parts */

static void test_write_roundtrip(void **state)
{
	static const char sdp[] = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"
		"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
		"a=label:1\r\n";
	static const char xml[] = "<?xml version=\"1.0\"?>\n<recording "
		"xmlns='urn:ietf:params:xml:ns:recording:1'/>";  /* no final LF */
	struct pl psdp = PL(sdp), pxml = PL(xml), ctype, body;
	struct mpart_out out[2] = {
		{"application/sdp", NULL, &psdp},
		{"application/rs-metadata+xml", "recording-session", &pxml},
	};
	struct multipart mp;
	struct mbuf *mb = mbuf_alloc(512);
	char bnd[40], ct[80];
	const char *why = NULL;

	(void)state;
	multipart_boundary(bnd, sizeof(bnd));
	assert_int_equal(strlen(bnd), 30);
	assert_int_equal(multipart_write(mb, bnd, out, 2), 0);
	snprintf(ct, sizeof(ct), "multipart/mixed;boundary=%s", bnd);
	pl_set_str(&ctype, ct);
	body.p = (const char *)mb->buf;
	body.l = mb->end;
	assert_int_equal(multipart_parse(&mp, &ctype, &body, &why), 0);
	assert_int_equal(mp.n, 2);
	assert_int_equal(pl_strcmp(&mp.parts[0].ctype, "application/sdp"), 0);
	assert_int_equal(mp.parts[0].disp.l, 0);
	assert_int_equal(pl_cmp(&mp.parts[0].body, &psdp), 0);
	assert_int_equal(pl_strcmp(&mp.parts[1].ctype,
				   "application/rs-metadata+xml"), 0);
	assert_int_equal(pl_strcmp(&mp.parts[1].disp, "recording-session"), 0);
	assert_int_equal(pl_cmp(&mp.parts[1].body, &pxml), 0);
	mem_deref(mb);
}

static void test_write_refused(void **state)
{
	static const char evil[] = "v=0\r\n--tally-x\r\nmore\r\n";
	static const char fine[] = "v=0\r\n";
	struct pl pevil = PL(evil), pfine = PL(fine);
	struct mpart_out bad = {"application/sdp", NULL, &pevil};
	struct mpart_out good = {"application/sdp", NULL, &pfine};
	struct mbuf *mb = mbuf_alloc(64);

	(void)state;
	/* a part holding the delimiter would be cut short by any reader */
	assert_int_equal(multipart_write(mb, "tally-x", &bad, 1), EINVAL);
	assert_int_equal(multipart_write(mb, "", &good, 1), EINVAL);
	assert_int_equal(multipart_write(mb, "has space", &good, 1), EINVAL);
	assert_int_equal(multipart_write(mb, "semi;colon", &good, 1), EINVAL);
	assert_int_equal(mb->end, 0);
	assert_int_equal(multipart_write(mb, "tally-y", &bad, 1), 0);
	mem_deref(mb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_files),
		cmocka_unit_test(test_fig12),
		cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_tolerance),
		cmocka_unit_test(test_write_roundtrip),
		cmocka_unit_test(test_write_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
