/*
 * test_rsmeta.c: unit tests for the SIPREC metadata model (rsmeta.c).
 *
 * The conformance data in tests/data/siprec drives most of it:
 * - index.tsv (RFC 7866/7865 examples): every .sip and .xml row is applied
 *   and its expected_participant_stream_mapping asserted, in one of the
 *   forms the column uses: "Bob send=[97,96] recv=[98,99]; Paul ...",
 *   "as above", "after applying: X disassociated ... (disassociate-time T);
 *   Y unchanged" (on top of the document the kind column names), and the
 *   negative rows (placeholder body, snapshot requests) must be EBADMSG.
 * - rfc8068-expected.tsv (RFC 8068 call flows): each row is applied on top
 *   of the state its applies_after row leaves, from the .sip (through the
 *   multipart parser) and from the .metadata.xml beside it, which must give
 *   the same model; then the mapping, "left" marks and apply/check results
 *   are asserted. rsmeta_check runs against the a=label values of the
 *   message's SDP, or of the flow's last SDP when the message has none.
 * - every .sip/.xml file under tests/data/siprec (schema/ aside) must be
 *   named by one of the two tables, so new data cannot go untested.
 * Hand-made documents cover the rest: namespaces, datamode, DTDs, limits,
 * unchanged model on error, association rules, rsmeta_check and
 * rsmeta_to_sessfile, and an allocation-failure sweep through libxml2.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <libxml/parser.h>
#include <libxml/xmlmemory.h>
#include <re.h>
#include "multipart.h"
#include "rsmeta.h"

#define DATA TALLY_TEST_DATA "/siprec"

enum { MAX_ROWS = 64, MAX_LABELS = 32 };

static const char ns_open[] =
	"<recording xmlns='urn:ietf:params:xml:ns:recording:1'>";

/* ---- files ------------------------------------------------------------ */

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

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

/* A TSV file: rows of tab-separated cells (the strings live in the
 * returned buffer). The header row is skipped. */
struct row {
	char *cell[10];
	size_t ncell;
};

static char *tsv_load(const char *rel, struct row *rows, size_t *nrows)
{
	size_t len;
	char *buf = load(rel, &len), *line, *save = NULL;
	bool header = true;

	*nrows = 0;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		struct row *r;
		char *c;

		if (header) {
			header = false;
			continue;
		}
		assert_true(*nrows < MAX_ROWS);
		r = &rows[(*nrows)++];
		r->ncell = 0;
		for (c = line; c && r->ncell < 10;) {
			char *tab = strchr(c, '\t');

			if (tab)
				*tab = '\0';
			r->cell[r->ncell++] = c;
			c = tab ? tab + 1 : NULL;
		}
	}

	return buf;
}

/* ---- messages: metadata and SDP labels from .sip and .xml files -------- */

struct msg {
	char *buf;
	const char *xml;          /* the metadata, NULL if none */
	size_t xml_len;
	char labels[MAX_LABELS][SF_ID_MAX];
	size_t nlabels;
	bool has_sdp;
};

static void sdp_labels(struct msg *m, const struct pl *sdp)
{
	const char *p = sdp->p, *end = sdp->p + sdp->l;

	m->has_sdp = true;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;

		if (le - p > 8 && !strncmp(p, "a=label:", 8)) {
			size_t n = (size_t)(le - p - 8);

			if (n && p[8 + n - 1] == '\r')
				n--;
			assert_true(n < SF_ID_MAX && m->nlabels < MAX_LABELS);
			memcpy(m->labels[m->nlabels], p + 8, n);
			m->labels[m->nlabels++][n] = '\0';
		}
		p = nl ? nl + 1 : end;
	}
}

/* The value of header NAME (or its compact form) in a SIP header block. */
static bool sip_header(const char *hdr, size_t len, const char *name,
		       const char *compact, struct pl *val)
{
	const char *p = hdr, *end = hdr + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *colon = memchr(p, ':', (size_t)(le - p));

		if (colon) {
			size_t n = (size_t)(colon - p);

			while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
				n--;
			if ((n == strlen(name) && !strncasecmp(p, name, n)) ||
			    (n == strlen(compact) &&
			     !strncasecmp(p, compact, n))) {
				val->p = colon + 1;
				val->l = (size_t)(le - colon - 1);
				while (val->l && (val->p[0] == ' ' ||
						  val->p[0] == '\t')) {
					val->p++;
					val->l--;
				}
				while (val->l &&
				       (val->p[val->l - 1] == '\r' ||
					val->p[val->l - 1] == ' '))
					val->l--;
				return true;
			}
		}
		p = nl ? nl + 1 : end;
	}

	return false;
}

static bool is_meta_type(const struct pl *t)
{
	return (t->l == 23 && !strncasecmp(t->p, "application/rs-metadata",
					     23)) ||
		(t->l == 27 && !strncasecmp(t->p,
					   "application/rs-metadata+xml", 27));
}

static void msg_load(struct msg *m, const char *rel)
{
	size_t len;
	const char *sep;
	struct pl ctype, body;

	memset(m, 0, sizeof(*m));
	m->buf = load(rel, &len);

	if (ends_with(rel, ".xml")) {
		m->xml = m->buf;
		m->xml_len = len;
		return;
	}

	assert_true(ends_with(rel, ".sip"));
	sep = strstr(m->buf, "\r\n\r\n");
	if (sep) {
		body.p = sep + 4;
	}
	else {
		sep = strstr(m->buf, "\n\n");
		assert_non_null(sep);
		body.p = sep + 2;
	}
	body.l = len - (size_t)(body.p - m->buf);

	if (!sip_header(m->buf, (size_t)(sep - m->buf), "Content-Type", "c",
			&ctype))
		return;

	if (ctype.l > 10 && !strncasecmp(ctype.p, "multipart/", 10)) {
		struct multipart mp;
		const char *why = NULL;
		const struct mpart *sdp;
		size_t i;

		if (multipart_parse(&mp, &ctype, &body, &why))
			fail_msg("%s: multipart: %s", rel, why);
		sdp = multipart_find(&mp, "application/sdp");
		if (sdp)
			sdp_labels(m, &sdp->body);
		for (i = 0; i < mp.n; i++) {
			if (is_meta_type(&mp.parts[i].ctype)) {
				m->xml = mp.parts[i].body.p;
				m->xml_len = mp.parts[i].body.l;
				break;
			}
		}
		return;
	}

	if (is_meta_type(&ctype)) {
		m->xml = body.p;
		m->xml_len = body.l;
	}
}

static void msg_free(struct msg *m)
{
	free(m->buf);
	m->buf = NULL;
}

static int msg_check(const struct rsmeta *r, const struct msg *m,
		     const char **why)
{
	const char *labels[MAX_LABELS];
	size_t i;

	for (i = 0; i < m->nlabels; i++)
		labels[i] = m->labels[i];

	return rsmeta_check(r, labels, m->nlabels, why);
}

/* ---- expected mappings ------------------------------------------------ */

struct exp_part {
	char key[SF_TEXT_MAX];
	char send[SF_REFS_MAX][SF_ID_MAX];
	size_t nsend;
	char recv[SF_REFS_MAX][SF_ID_MAX];
	size_t nrecv;
	bool left;
};

struct exp_map {
	struct exp_part parts[SF_PARTS_MAX];
	size_t n;
};

/* "[97,96]" or "[1/audio]" (the media type after '/' is dropped) */
static const char *parse_list(const char *p, char (*out)[SF_ID_MAX],
			      size_t *n)
{
	*n = 0;
	if (*p != '[')
		fail_msg("mapping: '[' expected at \"%s\"", p);
	p++;
	while (*p && *p != ']') {
		size_t k = strcspn(p, ",]/");

		assert_true(k > 0 && k < SF_ID_MAX && *n < SF_REFS_MAX);
		memcpy(out[*n], p, k);
		out[(*n)++][k] = '\0';
		p += k;
		if (*p == '/')
			p += strcspn(p, ",]");
		if (*p == ',')
			p++;
	}
	if (*p != ']')
		fail_msg("mapping: unterminated list");

	return p + 1;
}

/* "Bob send=[97,96] recv=[98,99] [left]; Paul ..." with "(...)"
 * comments ignored. */
static void parse_mapping(const char *text, struct exp_map *map)
{
	char buf[2048];
	char *in, *out, *entry, *save = NULL;
	int depth = 0;

	memset(map, 0, sizeof(*map));
	assert_true(strlen(text) < sizeof(buf));
	for (in = (char *)text, out = buf; *in; in++) {
		if (*in == '(')
			depth++;
		else if (*in == ')' && depth)
			depth--;
		else if (!depth)
			*out++ = *in;
	}
	*out = '\0';

	for (entry = strtok_r(buf, ";", &save); entry;
	     entry = strtok_r(NULL, ";", &save)) {
		struct exp_part *e;
		const char *p = entry;
		size_t k;

		while (*p == ' ')
			p++;
		if (!*p)
			continue;
		assert_true(map->n < SF_PARTS_MAX);
		e = &map->parts[map->n++];
		k = strcspn(p, " ");
		assert_true(k < sizeof(e->key));
		memcpy(e->key, p, k);
		e->key[k] = '\0';
		p += k;
		while (*p == ' ')
			p++;
		if (strncmp(p, "send=", 5))
			fail_msg("mapping: send= expected in \"%s\"", entry);
		p = parse_list(p + 5, e->send, &e->nsend);
		while (*p == ' ')
			p++;
		if (strncmp(p, "recv=", 5))
			fail_msg("mapping: recv= expected in \"%s\"", entry);
		p = parse_list(p + 5, e->recv, &e->nrecv);
		while (*p == ' ')
			p++;
		if (!strncmp(p, "left", 4)) {
			e->left = true;
			p += 4;
		}
		while (*p == ' ')
			p++;
		if (*p)
			fail_msg("mapping: trailing \"%s\"", p);
	}
}

static const char *part_key(const struct rsm_participant *p)
{
	return p->name[0] ? p->name : p->aor;
}

static void assert_list(const char *what, const char *key,
			char (*got)[SF_ID_MAX], size_t ngot,
			char (*want)[SF_ID_MAX], size_t nwant)
{
	size_t i;

	if (ngot != nwant)
		fail_msg("%s: %s: %zu labels, expected %zu", what, key, ngot,
			 nwant);
	for (i = 0; i < ngot; i++) {
		if (strcmp(got[i], want[i]))
			fail_msg("%s: %s[%zu] = %s, expected %s", what, key, i,
				 got[i], want[i]);
	}
}

/* The model's participants, as labels, must be exactly MAP. */
static void assert_mapping(const char *what, const struct rsmeta *r,
			   const struct exp_map *map)
{
	struct sessfile *sf = calloc(1, sizeof(*sf));
	size_t i, j;

	assert_non_null(sf);
	rsmeta_to_sessfile(r, sf);
	assert_true(sf->has_metadata);
	if (sf->nparts != map->n || r->nparts != map->n)
		fail_msg("%s: %zu participants, expected %zu", what,
			 sf->nparts, map->n);

	for (i = 0; i < map->n; i++) {
		const struct exp_part *e = &map->parts[i];
		bool found = false;

		for (j = 0; j < r->nparts && !found; j++) {
			struct sf_participant *sp = &sf->parts[j];

			if (strcmp(part_key(&r->parts[j]), e->key))
				continue;
			found = true;
			assert_string_equal(sp->id, r->parts[j].id);
			assert_list(what, e->key, sp->send, sp->nsend,
				    (char (*)[SF_ID_MAX])e->send, e->nsend);
			assert_list(what, e->key, sp->recv, sp->nrecv,
				    (char (*)[SF_ID_MAX])e->recv, e->nrecv);
			if (r->parts[j].left != e->left)
				fail_msg("%s: %s left=%d, expected %d", what,
					 e->key, r->parts[j].left, e->left);
		}
		if (!found)
			fail_msg("%s: no participant %s", what, e->key);
	}

	free(sf);
}

/* ---- index.tsv (RFC 7866 / 7865) -------------------------------------- */

enum { I_FILE = 0, I_KIND = 3, I_MAP = 6, I_BEHAV = 7 };

static bool has_metadata_file(const char *f)
{
	return (ends_with(f, ".sip") || ends_with(f, ".xml")) &&
		strncmp(f, "schema/", 7);
}

static void apply_file(struct rsmeta *r, const char *rel, int want_err,
		       const char *want_why)
{
	struct msg m;
	const char *why = NULL;
	struct rsmeta before = *r;
	int err;

	msg_load(&m, rel);
	if (!m.xml)
		fail_msg("%s: no metadata found", rel);
	err = rsmeta_apply(r, m.xml, m.xml_len, &why);
	if (err != want_err)
		fail_msg("%s: rsmeta_apply %d (%s), expected %d", rel, err,
			 why ? why : "-", want_err);
	if (want_why)
		assert_string_equal(why, want_why);
	if (err)
		assert_memory_equal(&before, r, sizeof(before));
	else if (m.has_sdp)
		assert_int_equal(0, msg_check(r, &m, &why));
	msg_free(&m);
}

/* "after applying: Bob disassociated from session X (disassociate-time
 * T); Paul unchanged" on top of BASE. */
static void check_prose(const char *rel, const char *prose,
			const struct rsmeta *base, const struct rsmeta *r)
{
	char buf[1024], *clause, *save = NULL;
	size_t nclauses = 0, i;

	assert_true(strlen(prose) < sizeof(buf));
	strcpy(buf, prose + strlen("after applying:"));
	for (clause = strtok_r(buf, ";", &save); clause;
	     clause = strtok_r(NULL, ";", &save)) {
		const struct rsm_participant *p = NULL, *b = NULL;
		char name[SF_TEXT_MAX];
		const char *t;

		while (*clause == ' ')
			clause++;
		assert_int_equal(1, sscanf(clause, "%255s", name));
		for (i = 0; i < r->nparts; i++) {
			if (!strcmp(r->parts[i].name, name))
				p = &r->parts[i];
		}
		for (i = 0; i < base->nparts; i++) {
			if (!strcmp(base->parts[i].name, name))
				b = &base->parts[i];
		}
		if (!p || !b)
			fail_msg("%s: no participant %s", rel, name);

		if (strstr(clause, " unchanged")) {
			assert_memory_equal(p, b, sizeof(*p));
		}
		else if (strstr(clause, " disassociated")) {
			assert_true(p->left);
			assert_false(b->left);
			t = strstr(clause, "disassociate-time ");
			if (t) {
				t += strlen("disassociate-time ");
				assert_int_equal(0, strncmp(p->left_time, t,
							    strlen(p->left_time)));
				assert_int_equal(20, strlen(p->left_time));
			}
			/* leaving does not touch the stream lists */
			assert_memory_equal(p->send, b->send,
					    sizeof(p->send));
			assert_memory_equal(p->recv, b->recv,
					    sizeof(p->recv));
		}
		else {
			fail_msg("%s: cannot read \"%s\"", rel, clause);
		}
		nclauses++;
	}

	/* every participant is accounted for */
	assert_int_equal(nclauses, r->nparts);
	assert_int_equal(base->nparts, r->nparts);
	assert_int_equal(base->nstreams, r->nstreams);
}

static void test_index(void **state)
{
	struct row rows[MAX_ROWS];
	size_t nrows, i, ndone = 0;
	char *buf = tsv_load("index.tsv", rows, &nrows);
	const char *prev_map = NULL;
	(void)state;

	for (i = 0; i < nrows; i++) {
		struct row *row = &rows[i];
		const char *f, *kind, *map, *behav;
		struct rsmeta *r;
		struct exp_map exp;

		assert_true(row->ncell >= 8);
		f = row->cell[I_FILE];
		kind = row->cell[I_KIND];
		map = row->cell[I_MAP];
		behav = row->cell[I_BEHAV];
		if (!has_metadata_file(f))
			continue;

		r = calloc(1, sizeof(*r));
		assert_non_null(r);

		if (strstr(kind, "requestsnapshot") ||
		    strstr(kind, "snapshot request")) {
			/* SRS->SRC, not metadata an SRS applies */
			apply_file(r, f, EBADMSG,
				   "metadata: root is not <recording>");
		}
		else if (strstr(behav, "NEGATIVE")) {
			apply_file(r, f, EBADMSG,
				   "metadata: not well-formed XML");
			assert_int_equal(0, r->updates);
		}
		else if (!strncmp(map, "after applying:", 15)) {
			/* "metadata (partial), apply on top of s8.1" */
			const char *on = strstr(kind, "apply on top of ");
			char base_rel[512], prefix[64];
			struct rsmeta *base = calloc(1, sizeof(*base));
			const char *slash = strrchr(f, '/');
			DIR *d;
			struct dirent *de;

			assert_non_null(on);
			assert_non_null(base);
			assert_int_equal(1, sscanf(on + 16, "%63s", prefix));
			base_rel[0] = '\0';
			snprintf(base_rel, sizeof(base_rel), "%s/%.*s",
				 DATA, (int)(slash - f), f);
			d = opendir(base_rel);
			assert_non_null(d);
			base_rel[0] = '\0';
			while ((de = readdir(d)) != NULL) {
				if (!strncmp(de->d_name, prefix,
					     strlen(prefix)) &&
				    de->d_name[strlen(prefix)] == '-')
					snprintf(base_rel, sizeof(base_rel),
						 "%.*s/%s", (int)(slash - f),
						 f, de->d_name);
			}
			closedir(d);
			assert_true(base_rel[0]);

			apply_file(base, base_rel, 0, NULL);
			*r = *base;
			apply_file(r, f, 0, NULL);
			check_prose(f, map, base, r);
			assert_int_equal(2, r->updates);
			free(base);
		}
		else {
			if (!strcmp(map, "as above")) {
				assert_non_null(prev_map);
				map = prev_map;
			}
			parse_mapping(map, &exp);
			assert_true(exp.n > 0);
			apply_file(r, f, 0, NULL);
			assert_mapping(f, r, &exp);
			prev_map = map;
		}

		free(r);
		ndone++;
	}

	assert_true(ndone >= 8);
	free(buf);
}

/* Extra facts of RFC 7865 s8.1 the table does not spell out. */
static void test_rfc7865_s81_details(void **state)
{
	struct rsmeta *r = calloc(1, sizeof(*r));
	(void)state;

	assert_non_null(r);
	apply_file(r, "rfc7865/s8.1-complete-metadata.xml", 0, NULL);
	assert_string_equal(r->session_id, "hVpd7YQgRW2nD22h7q60JQ==");
	assert_string_equal(r->sip_session_id,
			    "ab30317f1a784dc48ff824d0d3715d86;"
			    "remote=47755a9de7794ba387653f2099600ef2");
	assert_int_equal(2, r->nparts);
	assert_string_equal(r->parts[0].id, "srfBElmCRp2QB23b7Mpk0w==");
	assert_string_equal(r->parts[0].aor, "sip:bob@biloxi.com");
	assert_string_equal(r->parts[0].name, "Bob");
	assert_string_equal(r->parts[1].aor, "sip:Paul@biloxi.com");
	assert_int_equal(4, r->nstreams);
	assert_string_equal(r->streams[0].session, "hVpd7YQgRW2nD22h7q60JQ==");
	assert_string_equal(rsmeta_label(r, "EiXGlc+4TruqqoDaNE76ag=="),
			    "99");
	assert_null(rsmeta_label(r, "nope"));
	assert_false(r->parts[0].left);
	assert_int_equal(1, r->parts[0].nsessions);
	assert_int_equal(1, r->updates);
	free(r);
}

/* ---- rfc8068-expected.tsv --------------------------------------------- */

enum { E_FILE = 0, E_AFTER, E_MAP, E_BEHAV, E_NOTE };

struct flow {
	struct row rows[MAX_ROWS];
	size_t n;
	char *buf;
};

static int parse_err(const char *behav, const char *key)
{
	const char *p = strstr(behav, key);

	if (!p)
		fail_msg("behaviour \"%s\" has no %s", behav, key);
	p += strlen(key);
	if (!strncmp(p, "0", 1))
		return 0;
	if (!strncmp(p, "EBADMSG", 7))
		return EBADMSG;
	fail_msg("behaviour \"%s\": cannot read %s", behav, key);
	return -1;
}

static const struct row *flow_row(const struct flow *fl, const char *file)
{
	size_t i;

	for (i = 0; i < fl->n; i++) {
		if (!strcmp(fl->rows[i].cell[E_FILE], file))
			return &fl->rows[i];
	}

	fail_msg("rfc8068-expected.tsv: no row for %s", file);
	return NULL;
}

/* Apply ROW's chain up to and including ROW to R (from .sip if SIP,
 * else from .metadata.xml); LAST gets the labels of the flow's last
 * SDP. Depth-limited against a cycle in applies_after. */
static void flow_apply(const struct flow *fl, const struct row *row,
		       struct rsmeta *r, bool sip, struct msg *last,
		       int depth)
{
	const char *after = row->cell[E_AFTER];
	char rel[256];
	struct msg m;
	const char *why = NULL;
	struct rsmeta before;
	int err, want;

	assert_true(depth < 16);
	if (strcmp(after, "-"))
		flow_apply(fl, flow_row(fl, after), r, sip, last, depth + 1);

	snprintf(rel, sizeof(rel), "%s", row->cell[E_FILE]);
	if (!sip) {
		assert_true(ends_with(rel, ".sip"));
		strcpy(rel + strlen(rel) - 4, ".metadata.xml");
	}

	/* the labels always come from the .sip */
	msg_load(&m, row->cell[E_FILE]);
	if (m.has_sdp) {
		memcpy(last->labels, m.labels, sizeof(m.labels));
		last->nlabels = m.nlabels;
		last->has_sdp = true;
	}
	assert_non_null(m.xml);
	if (!sip) {
		msg_free(&m);
		msg_load(&m, rel);
	}

	before = *r;
	want = parse_err(row->cell[E_BEHAV], "apply=");
	err = rsmeta_apply(r, m.xml, m.xml_len, &why);
	if (err != want)
		fail_msg("%s: rsmeta_apply %d (%s), expected %d", rel, err,
			 why ? why : "-", want);
	if (err)
		assert_memory_equal(&before, r, sizeof(before));
	else
		assert_int_equal(before.updates + 1, r->updates);
	msg_free(&m);
}

static void test_rfc8068_flows(void **state)
{
	struct flow fl;
	size_t i;
	(void)state;

	fl.buf = tsv_load("rfc8068-expected.tsv", fl.rows, &fl.n);
	assert_true(fl.n >= 10);

	for (i = 0; i < fl.n; i++) {
		const struct row *row = &fl.rows[i];
		struct rsmeta *a = calloc(1, sizeof(*a));
		struct rsmeta *b = calloc(1, sizeof(*b));
		struct msg last_a, last_b;
		struct exp_map exp;
		const char *why = NULL;
		int want_check;

		assert_true(row->ncell >= 5);
		assert_non_null(a);
		assert_non_null(b);
		memset(&last_a, 0, sizeof(last_a));
		memset(&last_b, 0, sizeof(last_b));

		flow_apply(&fl, row, a, true, &last_a, 0);
		flow_apply(&fl, row, b, false, &last_b, 0);

		/* the body of the .sip and the .xml beside it agree */
		assert_memory_equal(a, b, sizeof(*a));

		parse_mapping(row->cell[E_MAP], &exp);
		assert_mapping(row->cell[E_FILE], a, &exp);

		assert_true(last_a.has_sdp);
		want_check = parse_err(row->cell[E_BEHAV], "check=");
		if (msg_check(a, &last_a, &why) != want_check)
			fail_msg("%s: rsmeta_check %s, expected %d",
				 row->cell[E_FILE], why ? why : "0",
				 want_check);
		if (want_check)
			assert_non_null(strstr(why, "metadata: "));

		free(a);
		free(b);
	}

	free(fl.buf);
}

/* Details of the flows the mapping column does not show. */
static void test_rfc8068_details(void **state)
{
	struct flow fl;
	struct rsmeta *r = calloc(1, sizeof(*r));
	struct msg last;
	(void)state;

	assert_non_null(r);
	fl.buf = tsv_load("rfc8068-expected.tsv", fl.rows, &fl.n);

	/* Carol joins then Alice drops: the CS dialog list follows */
	memset(&last, 0, sizeof(last));
	flow_apply(&fl, flow_row(&fl, "rfc8068/s3.3.3-mixing-drop-alice-"
				 "reinvite.sip"), r, true, &last, 0);
	assert_int_equal(5, r->updates);
	assert_string_equal(r->sip_session_id,
			    "ca718e1430474b5485a53aa5d0bea45e;"
			    "remote=68caf509b9284b7ea45f84a049febf0a");
	assert_string_equal(r->parts[0].left_time, "2010-12-16T23:41:07Z");

	/* REFER transfer: the new complete snapshot names the new CS */
	memset(r, 0, sizeof(*r));
	flow_apply(&fl, flow_row(&fl, "rfc8068/s3.2.3-transfer-refer-based-"
				 "new-cs-reinvite.sip"), r, true, &last, 0);
	assert_string_equal(r->session_id, "bfLZ+NTFEeCNxQTuRyQBmw==");
	assert_string_equal(r->streams[0].session, "bfLZ+NTFEeCNxQTuRyQBmw==");
	assert_int_equal(2, r->nparts);

	/* turret: Bob is in two CSs; the first one is the model's */
	memset(r, 0, sizeof(*r));
	flow_apply(&fl, flow_row(&fl, "rfc8068/s3.5-turret-two-cs-one-rs-"
				 "initial-invite.sip"), r, true, &last, 0);
	assert_string_equal(r->session_id, "hVpd7YQgRW2nD22h7q60JQ==");
	assert_int_equal(2, r->parts[1].nsessions);

	free(r);
	free(fl.buf);
}

/* ---- every data file is covered ---------------------------------------- */

static bool named(char (*names)[256], size_t n, const char *rel)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!strcmp(names[i], rel))
			return true;
	}

	return false;
}

static void walk_check(const char *sub, char (*names)[256], size_t n,
		       size_t *nfiles)
{
	char path[512];
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/%s", DATA, sub);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char rel[256];
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(rel, sizeof(rel), "%s%s%s", sub, *sub ? "/" : "",
			 de->d_name);
		snprintf(path, sizeof(path), "%s/%s", DATA, rel);
		assert_int_equal(0, stat(path, &st));
		if (S_ISDIR(st.st_mode)) {
			walk_check(rel, names, n, nfiles);
			continue;
		}
		if (!has_metadata_file(rel))
			continue;
		if (!named(names, n, rel))
			fail_msg("%s carries metadata but no table names it",
				 rel);
		(*nfiles)++;
	}
	closedir(d);
}

static void test_all_files_covered(void **state)
{
	static char names[2 * MAX_ROWS + MAX_ROWS][256];
	struct row rows[MAX_ROWS];
	size_t nrows, n = 0, i, nfiles = 0;
	char *buf;
	(void)state;

	buf = tsv_load("index.tsv", rows, &nrows);
	for (i = 0; i < nrows; i++)
		snprintf(names[n++], 256, "%s", rows[i].cell[0]);
	free(buf);

	buf = tsv_load("rfc8068-expected.tsv", rows, &nrows);
	for (i = 0; i < nrows; i++) {
		const char *f = rows[i].cell[0];

		snprintf(names[n++], 256, "%s", f);
		snprintf(names[n++], 256, "%.*s.metadata.xml",
			 (int)(strlen(f) - 4), f);
	}
	free(buf);

	walk_check("", names, n, &nfiles);
	assert_true(nfiles >= 30);
}

/* ---- hand-made documents ---------------------------------------------- */

static int apply_str(struct rsmeta *r, const char *xml, const char **why)
{
	return rsmeta_apply(r, xml, strlen(xml), why);
}

/* Apply XML expecting EBADMSG with reason WANT and M unchanged. */
static void expect_bad(struct rsmeta *r, const char *xml, const char *want)
{
	struct rsmeta *before = malloc(sizeof(*before));
	const char *why = NULL;
	int err;

	assert_non_null(before);
	*before = *r;
	err = apply_str(r, xml, &why);
	if (err != EBADMSG)
		fail_msg("expected EBADMSG (%s), got %d for %.60s", want, err,
			 xml);
	assert_non_null(why);
	assert_string_equal(why, want);
	assert_memory_equal(before, r, sizeof(*before));
	free(before);
}

static const char two_party[] =
	"<recording xmlns='urn:ietf:params:xml:ns:recording:1'>"
	"<datamode>complete</datamode>"
	"<session session_id='S'/>"
	"<participant participant_id='A'><nameID aor='sip:a@x'>"
	"<name>A</name></nameID></participant>"
	"<participant participant_id='B'><nameID aor='sip:b@x'/>"
	"</participant>"
	"<stream stream_id='s1' session_id='S'><label>1</label></stream>"
	"<stream stream_id='s2' session_id='S'><label>2</label></stream>"
	"<participantsessionassoc participant_id='A' session_id='S'>"
	"<associate-time>2020-01-01T00:00:00Z</associate-time>"
	"</participantsessionassoc>"
	"<participantstreamassoc participant_id='A'>"
	"<send>s1</send><recv>s2</recv></participantstreamassoc>"
	"<participantstreamassoc participant_id='B'>"
	"<send>s2</send><recv>s1</recv></participantstreamassoc>"
	"</recording>";

static void test_namespaces(void **state)
{
	struct rsmeta *r = calloc(1, sizeof(*r));
	const char *why = "x";
	(void)state;

	assert_non_null(r);

	/* no namespace at all (sloppy SRC), no datamode: complete */
	assert_int_equal(0, apply_str(r,
		"<recording><participant participant_id='p'>"
		"<nameID aor='sip:p@x'><name>P</name></nameID></participant>"
		"<stream stream_id='s'><label>7</label></stream>"
		"<participantstreamassoc participant_id='p'><send>s</send>"
		"</participantstreamassoc></recording>", &why));
	assert_null(why);
	assert_int_equal(1, r->nparts);
	assert_string_equal(r->parts[0].name, "P");
	assert_int_equal(1, r->parts[0].nsend);

	/* prefixed recording namespace; foreign elements ignored even
	 * when they share a local name */
	assert_int_equal(0, apply_str(r,
		"<r:recording xmlns:r='urn:ietf:params:xml:ns:recording:1'"
		" xmlns:v='http://example.com/v'>"
		"<r:datamode>complete</r:datamode>"
		"<v:participant participant_id='evil'/>"
		"<r:participant participant_id='q'><r:nameID aor='sip:q@x'>"
		"<v:name>not this</v:name><r:name>Q</r:name></r:nameID>"
		"</r:participant>"
		"<r:stream stream_id='s'><v:label>9</v:label>"
		"<r:label><![CDATA[ 8 ]]></r:label></r:stream>"
		"</r:recording>", &why));
	assert_int_equal(1, r->nparts);
	assert_string_equal(r->parts[0].id, "q");
	assert_string_equal(r->parts[0].name, "Q");
	assert_string_equal(rsmeta_label(r, "s"), "8");

	/* a recording element in another namespace is not ours */
	expect_bad(r, "<recording xmlns='urn:example:other'/>",
		   "metadata: root is not <recording>");
	expect_bad(r, "<requestsnapshot xmlns='urn:ietf:params:xml:ns:"
		   "recording:1'/>", "metadata: root is not <recording>");
	free(r);
}

/* The draft form (pre-RFC 7865) real SBCs still send: AudioCodes Mediant
 * 7.40A (ids in `id`, the draft namespace, send/recv inside participant),
 * BroadWorks (send/recv holding an <id> child, urn:uuid ids). */
static void test_draft_form(void **state)
{
	struct rsmeta *r = calloc(1, sizeof(*r));
	const char *why = "x";
	const char *labels[] = {"1", "2"};
	(void)state;

	assert_non_null(r);
	assert_int_equal(0, apply_str(r,
		"<?xml version='1.0' encoding='UTF-8'?>"
		"<recording xmlns='urn:ietf:params:xml:ns:recording'"
		" xmlns:ac='http://AudioCodes'>"
		"<datamode>complete</datamode>"
		"<group id='00000000-0000-00d7-2bb4-1f0000134ba8'>"
		"<associate-time>2023-12-27T03:44:59</associate-time></group>"
		"<session id='0000-0000-0000-0000-f5be9a848c0c5be5'>"
		"<group-ref>00000000-0000-00d7-2bb4-1f0000134ba8</group-ref>"
		"<associate-time>2023-12-27T03:44:59</associate-time></session>"
		"<participant id='+14158536006'"
		" session='0000-0000-0000-0000-f5be9a848c0c5be5'>"
		"<nameID aor='+14158536006@10.0.0.1'><name>+14158536006</name>"
		"</nameID><associate-time>2023-12-27T03:44:59</associate-time>"
		"<send>1000000000000001</send><recv>1000000000000002</recv>"
		"<ac:role>caller</ac:role></participant>"
		"<participant id='+14155550100'"
		" session='0000-0000-0000-0000-f5be9a848c0c5be5'>"
		"<nameID aor='+14155550100@10.0.0.1'/>"
		"<send>1000000000000002</send><recv>1000000000000001</recv>"
		"</participant>"
		"<stream id='1000000000000001'"
		" session='0000-0000-0000-0000-f5be9a848c0c5be5'>"
		"<label>1</label><mode>separate</mode></stream>"
		"<stream id='1000000000000002'"
		" session='0000-0000-0000-0000-f5be9a848c0c5be5'>"
		"<label>2</label><mode>separate</mode></stream>"
		"</recording>", &why));
	assert_null(why);
	assert_string_equal(r->session_id, "0000-0000-0000-0000-f5be9a848c0c5be5");
	assert_int_equal(2, r->nparts);
	assert_string_equal(r->parts[0].id, "+14158536006");
	assert_string_equal(r->parts[0].aor, "+14158536006@10.0.0.1");
	assert_string_equal(r->parts[0].name, "+14158536006");
	assert_int_equal(1, r->parts[0].nsessions);
	assert_false(r->parts[0].left);
	assert_int_equal(1, r->parts[0].nsend);
	assert_string_equal(rsmeta_label(r, r->parts[0].send[0]), "1");
	assert_string_equal(rsmeta_label(r, r->parts[0].recv[0]), "2");
	assert_string_equal(rsmeta_label(r, r->parts[1].send[0]), "2");
	assert_string_equal(r->streams[0].session,
			    "0000-0000-0000-0000-f5be9a848c0c5be5");
	assert_int_equal(0, rsmeta_check(r, labels, 2, &why));

	/* BroadWorks: the stream id in an <id> child of send/recv */
	memset(r, 0, sizeof(*r));
	assert_int_equal(0, apply_str(r,
		"<recording xmlns='urn:ietf:params:xml:ns:recording'>"
		"<datamode>complete</datamode>"
		"<session id='urn:uuid:a25b7cce-418a-48c9-ad2c-1837820a1882'/>"
		"<participant id='urn:uuid:p1'"
		" session='urn:uuid:a25b7cce-418a-48c9-ad2c-1837820a1882'>"
		"<nameID aor='sip:+33123456788@11.abc'/>"
		"<send><id>urn:uuid:2eef2741-4b79-4542-ba22-3fcbc8b88ec3</id></send>"
		"</participant>"
		"<stream id='urn:uuid:2eef2741-4b79-4542-ba22-3fcbc8b88ec3'"
		" session='urn:uuid:a25b7cce-418a-48c9-ad2c-1837820a1882'>"
		"<label>1</label><mode>separate</mode></stream>"
		"</recording>", &why));
	assert_int_equal(1, r->parts[0].nsend);
	assert_string_equal(rsmeta_label(r, r->parts[0].send[0]), "1");

	/* the RFC name wins where a document gives both */
	memset(r, 0, sizeof(*r));
	assert_int_equal(0, apply_str(r,
		"<recording xmlns='urn:ietf:params:xml:ns:recording:1'>"
		"<participant participant_id='rfc' id='draft'/></recording>",
		&why));
	assert_string_equal(r->parts[0].id, "rfc");

	/* a draft-form participant with a bad session reference */
	expect_bad(r, "<recording xmlns='urn:ietf:params:xml:ns:recording'>"
		   "<participant id='p' session='has space'/></recording>",
		   "metadata: bad id");
	free(r);
}

static void test_malformed(void **state)
{
	struct rsmeta *r = calloc(1, sizeof(*r));
	char *big;
	const char *why = NULL;
	char id[100];
	char doc[2048];
	(void)state;

	assert_non_null(r);
	assert_int_equal(0, apply_str(r, two_party, &why));

	expect_bad(r, "[metadata content]", "metadata: not well-formed XML");
	expect_bad(r, "<recording>", "metadata: not well-formed XML");
	expect_bad(r, "<recording></recordin>",
		   "metadata: not well-formed XML");
	expect_bad(r, "<recording>&undefined;</recording>",
		   "metadata: not well-formed XML");
	expect_bad(r, "<recording><datamode>sometimes</datamode>"
		   "</recording>", "metadata: unknown datamode");
	expect_bad(r, "<recording><participant/></recording>",
		   "metadata: participant without participant_id");
	expect_bad(r, "<recording><participant participant_id='  '/>"
		   "</recording>",
		   "metadata: participant without participant_id");
	expect_bad(r, "<recording><participant participant_id='a b'/>"
		   "</recording>", "metadata: bad id");
	expect_bad(r, "<recording><stream><label>1</label></stream>"
		   "</recording>", "metadata: stream without stream_id");
	expect_bad(r, "<recording><session/></recording>",
		   "metadata: session without session_id");
	expect_bad(r, "<recording><participantstreamassoc/></recording>",
		   "metadata: participantstreamassoc without "
		   "participant_id");
	expect_bad(r, "<recording><participantsessionassoc session_id='S'/>"
		   "</recording>", "metadata: participantsessionassoc "
		   "without participant_id");
	expect_bad(r, "<recording><participantstreamassoc participant_id="
		   "'A'><send> </send></participantstreamassoc></recording>",
		   "metadata: bad stream reference");

	memset(id, 'x', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	snprintf(doc, sizeof(doc), "<recording><participant participant_id="
		 "'%s'/></recording>", id);
	expect_bad(r, doc, "metadata: id too long");
	snprintf(doc, sizeof(doc), "<recording><stream stream_id='s'>"
		 "<label>%s</label></stream></recording>", id);
	expect_bad(r, doc, "metadata: label too long");

	/* size limit, and empty */
	big = malloc(300 * 1024);
	assert_non_null(big);
	memset(big, ' ', 300 * 1024);
	memcpy(big, "<recording>", 11);
	memcpy(big + 300 * 1024 - 13, "</recording>", 13);
	expect_bad(r, big, "metadata: document too large");
	free(big);
	assert_int_equal(EBADMSG, rsmeta_apply(r, "", 0, &why));
	assert_string_equal(why, "metadata: empty document");
	assert_int_equal(EINVAL, rsmeta_apply(NULL, "x", 1, &why));
	assert_int_equal(EINVAL, rsmeta_apply(r, NULL, 1, NULL));

	assert_int_equal(1, r->updates);
	free(r);
}

static void test_dtd_refused(void **state)
{
	struct rsmeta *r = calloc(1, sizeof(*r));
	const char *why = NULL;
	(void)state;

	assert_non_null(r);
	assert_int_equal(0, apply_str(r, two_party, &why));

	/* billion laughs */
	expect_bad(r, "<?xml version='1.0'?><!DOCTYPE recording ["
		   "<!ENTITY a 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'>"
		   "<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>"
		   "<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>"
		   "<!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'>"
		   "]><recording><participant participant_id='&d;'/>"
		   "</recording>", "metadata: DTD not allowed");
	/* external entity (XXE) and external DTD */
	expect_bad(r, "<!DOCTYPE recording [<!ENTITY x SYSTEM "
		   "'file:///etc/passwd'>]><recording><session session_id="
		   "'&x;'/></recording>", "metadata: DTD not allowed");
	expect_bad(r, "<!DOCTYPE recording SYSTEM 'http://127.0.0.1:9/x.dtd'>"
		   "<recording/>", "metadata: DTD not allowed");
	/* an innocent DTD is refused as well */
	expect_bad(r, "<!DOCTYPE recording><recording/>",
		   "metadata: DTD not allowed");

	/* a later good document still parses */
	assert_int_equal(0, apply_str(r, two_party, &why));
	assert_int_equal(2, r->updates);
	free(r);
}

static void test_datamode(void **state)
{
	struct rsmeta *r = calloc(1, sizeof(*r));
	const char *why = NULL;
	(void)state;

	assert_non_null(r);

	/* partial first: applied as complete, with a warning */
	assert_int_equal(0, apply_str(r,
		"<recording><datamode>partial</datamode>"
		"<participant participant_id='A'/></recording>", &why));
	assert_string_equal(why, "metadata: partial update before any "
			    "complete document");
	assert_int_equal(1, r->nparts);

	/* complete replaces: A's placeholder gone, two_party's A back */
	assert_int_equal(0, apply_str(r, two_party, &why));
	assert_null(why);
	assert_int_equal(2, r->nparts);
	assert_string_equal(r->parts[0].aor, "sip:a@x");

	/* partial, case-insensitive: C added, A renamed, B untouched */
	assert_int_equal(0, apply_str(r,
		"<recording><datamode> Partial </datamode>"
		"<participant participant_id='C'><nameID aor='sip:c@x'/>"
		"</participant>"
		"<participant participant_id='A'><nameID aor='sip:a2@x'>"
		"<name>A2</name></nameID></participant></recording>", &why));
	assert_null(why);
	assert_int_equal(3, r->nparts);
	assert_string_equal(r->parts[0].aor, "sip:a2@x");
	assert_string_equal(r->parts[0].name, "A2");
	assert_int_equal(1, r->parts[0].nsend);
	assert_string_equal(r->parts[1].aor, "sip:b@x");
	assert_string_equal(r->parts[2].id, "C");

	/* a complete document replaces everything again */
	assert_int_equal(0, apply_str(r,
		"<recording><datamode>complete</datamode>"
		"<participant participant_id='Z'/></recording>", &why));
	assert_int_equal(1, r->nparts);
	assert_int_equal(0, r->nstreams);
	assert_string_equal(r->session_id, "");
	assert_int_equal(4, r->updates);
	free(r);
}

static void test_assoc_rules(void **state)
{
	struct rsmeta *r = calloc(1, sizeof(*r));
	const char *why = NULL;
	(void)state;

	assert_non_null(r);
	assert_int_equal(0, apply_str(r, two_party, &why));

	/* disassociate-time in a stream association removes streams */
	assert_int_equal(0, apply_str(r,
		"<recording><datamode>partial</datamode>"
		"<participantstreamassoc participant_id='A'><recv>s2</recv>"
		"<disassociate-time>2020-01-01T00:01:00Z</disassociate-time>"
		"</participantstreamassoc></recording>", &why));
	assert_int_equal(1, r->parts[0].nsend);
	assert_int_equal(0, r->parts[0].nrecv);

	/* without it, the element replaces both lists; duplicates once */
	assert_int_equal(0, apply_str(r,
		"<recording><datamode>partial</datamode>"
		"<participantstreamassoc participant_id='A'><recv>s2</recv>"
		"<recv>s2</recv></participantstreamassoc></recording>", &why));
	assert_int_equal(0, r->parts[0].nsend);
	assert_int_equal(1, r->parts[0].nrecv);
	assert_int_equal(1, r->parts[1].nsend);   /* B untouched */

	/* association before the participant it names, out of order:
	 * the participant is created and later filled in */
	assert_int_equal(0, apply_str(r,
		"<recording><datamode>partial</datamode>"
		"<participantstreamassoc participant_id='N'><send>s1</send>"
		"</participantstreamassoc>"
		"<participant participant_id='N'><nameID aor='sip:n@x'/>"
		"</participant></recording>", &why));
	assert_int_equal(3, r->nparts);
	assert_string_equal(r->parts[2].aor, "sip:n@x");
	assert_int_equal(1, r->parts[2].nsend);

	/* two sessions: leaving one is not leaving */
	assert_int_equal(0, apply_str(r,
		"<recording><datamode>partial</datamode>"
		"<participantsessionassoc participant_id='A' session_id='T'>"
		"<associate-time>2020-01-01T00:02:00Z</associate-time>"
		"</participantsessionassoc>"
		"<participantsessionassoc participant_id='A' session_id='S'>"
		"<disassociate-time>2020-01-01T00:03:00Z</disassociate-time>"
		"</participantsessionassoc></recording>", &why));
	assert_false(r->parts[0].left);
	assert_int_equal(1, r->parts[0].nsessions);
	assert_string_equal(r->parts[0].sessions[0], "T");

	assert_int_equal(0, apply_str(r,
		"<recording><datamode>partial</datamode>"
		"<participantsessionassoc participant_id='A' session_id='T'>"
		"<disassociate-time> 2020-01-01T00:04:00Z </disassociate-time>"
		"</participantsessionassoc></recording>", &why));
	assert_true(r->parts[0].left);
	assert_string_equal(r->parts[0].left_time, "2020-01-01T00:04:00Z");

	/* coming back clears left */
	assert_int_equal(0, apply_str(r,
		"<recording><datamode>partial</datamode>"
		"<participantsessionassoc participant_id='A' session_id='S'>"
		"<associate-time>2020-01-01T00:05:00Z</associate-time>"
		"</participantsessionassoc></recording>", &why));
	assert_false(r->parts[0].left);
	assert_string_equal(r->parts[0].left_time, "");

	/* B was never associated with a session: leaving still counts */
	assert_int_equal(0, apply_str(r,
		"<recording><datamode>partial</datamode>"
		"<participantsessionassoc participant_id='B' session_id='S'>"
		"<disassociate-time>2020-01-01T00:06:00Z</disassociate-time>"
		"</participantsessionassoc></recording>", &why));
	assert_true(r->parts[1].left);
	free(r);
}

static void test_limits(void **state)
{
	struct rsmeta *r = calloc(1, sizeof(*r));
	char doc[8192];
	size_t i, n;
	const char *why = NULL;
	(void)state;

	assert_non_null(r);

	/* exactly SF_PARTS_MAX participants is fine, one more is not */
	n = (size_t)snprintf(doc, sizeof(doc), "%s", ns_open);
	for (i = 0; i < SF_PARTS_MAX; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n,
				      "<participant participant_id='p%zu'/>",
				      i);
	snprintf(doc + n, sizeof(doc) - n, "</recording>");
	assert_int_equal(0, apply_str(r, doc, &why));
	assert_int_equal(SF_PARTS_MAX, r->nparts);
	snprintf(doc + n, sizeof(doc) - n,
		 "<participant participant_id='one-more'/></recording>");
	expect_bad(r, doc, "metadata: too many participants");

	/* streams */
	n = (size_t)snprintf(doc, sizeof(doc), "%s", ns_open);
	for (i = 0; i <= SF_STREAMS_MAX * 2; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n,
				      "<stream stream_id='s%zu'/>", i);
	snprintf(doc + n, sizeof(doc) - n, "</recording>");
	expect_bad(r, doc, "metadata: too many streams");

	/* references per participant */
	n = (size_t)snprintf(doc, sizeof(doc), "%s<participantstreamassoc "
			     "participant_id='p0'>", ns_open);
	for (i = 0; i <= SF_REFS_MAX; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n,
				      "<send>s%zu</send>", i);
	snprintf(doc + n, sizeof(doc) - n,
		 "</participantstreamassoc></recording>");
	expect_bad(r, doc, "metadata: too many streams for a participant");

	/* sessions per participant */
	n = (size_t)snprintf(doc, sizeof(doc), "%s", ns_open);
	for (i = 0; i <= SF_REFS_MAX; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n,
				      "<participantsessionassoc "
				      "participant_id='p0' session_id='S%zu'/>",
				      i);
	snprintf(doc + n, sizeof(doc) - n, "</recording>");
	expect_bad(r, doc, "metadata: too many sessions for a participant");

	/* long free text is cut on a UTF-8 character, controls blanked */
	n = (size_t)snprintf(doc, sizeof(doc), "%s<participant "
			     "participant_id='u'><nameID aor='sip:u@x'><name>"
			     "a\tb", ns_open);
	for (i = 0; i < 200; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "\xc3\xa9");
	snprintf(doc + n, sizeof(doc) - n,
		 "</name></nameID></participant></recording>");
	assert_int_equal(0, apply_str(r, doc, &why));
	assert_string_equal(r->parts[0].id, "u");
	assert_int_equal(0, strncmp(r->parts[0].name, "a b\xc3\xa9", 5));
	n = strlen(r->parts[0].name);
	assert_true(n <= SF_TEXT_MAX - 1 && n >= SF_TEXT_MAX - 3);
	assert_int_equal(1, n % 2);  /* "a b" + whole 2-byte characters */
	free(r);
}

static void test_check(void **state)
{
	struct rsmeta *r = calloc(1, sizeof(*r));
	const char *ok[] = {"2", "1", "3"};
	const char *few[] = {"1"};
	const char *why = NULL;
	(void)state;

	assert_non_null(r);
	assert_int_equal(0, rsmeta_check(r, NULL, 0, &why));
	assert_int_equal(0, apply_str(r, two_party, &why));

	assert_int_equal(0, rsmeta_check(r, ok, 3, &why));
	assert_null(why);
	assert_int_equal(EBADMSG, rsmeta_check(r, few, 1, &why));
	assert_string_equal(why, "metadata: stream label not in SDP");
	assert_int_equal(EINVAL, rsmeta_check(r, NULL, 2, &why));

	/* a reference to a stream nobody declared */
	assert_int_equal(0, apply_str(r,
		"<recording><datamode>partial</datamode>"
		"<participantstreamassoc participant_id='B'><send>s2</send>"
		"<recv>ghost</recv></participantstreamassoc></recording>",
		&why));
	assert_int_equal(EBADMSG, rsmeta_check(r, ok, 3, &why));
	assert_string_equal(why, "metadata: unknown stream_id in "
			    "participantstreamassoc");

	/* a stream without a label cannot be in the SDP */
	assert_int_equal(0, apply_str(r,
		"<recording><datamode>partial</datamode>"
		"<stream stream_id='ghost'/></recording>", &why));
	assert_int_equal(EBADMSG, rsmeta_check(r, ok, 3, &why));
	assert_string_equal(why, "metadata: stream label not in SDP");
	assert_null(rsmeta_label(r, "ghost"));
	free(r);
}

static void test_to_sessfile(void **state)
{
	struct rsmeta *r = calloc(1, sizeof(*r));
	struct sessfile *sf = calloc(1, sizeof(*sf));
	const char *why = NULL;
	(void)state;

	assert_non_null(r);
	assert_non_null(sf);

	/* two stream ids with one label give the label once; an
	 * unresolved id is left out */
	assert_int_equal(0, apply_str(r,
		"<recording><participant participant_id='A'>"
		"<nameID aor='sip:a@x'><name>Ann</name></nameID></participant>"
		"<stream stream_id='s1'><label>L</label></stream>"
		"<stream stream_id='s2'><label>L</label></stream>"
		"<stream stream_id='s3'><label>M</label></stream>"
		"<participantstreamassoc participant_id='A'><send>s1</send>"
		"<send>s2</send><send>nope</send><send>s3</send>"
		"<recv>s3</recv></participantstreamassoc></recording>", &why));

	sf->nparts = 5;
	rsmeta_to_sessfile(r, sf);
	assert_true(sf->has_metadata);
	assert_int_equal(1, sf->nparts);
	assert_string_equal(sf->parts[0].id, "A");
	assert_string_equal(sf->parts[0].aor, "sip:a@x");
	assert_string_equal(sf->parts[0].name, "Ann");
	assert_int_equal(2, sf->parts[0].nsend);
	assert_string_equal(sf->parts[0].send[0], "L");
	assert_string_equal(sf->parts[0].send[1], "M");
	assert_int_equal(1, sf->parts[0].nrecv);

	rsmeta_to_sessfile(NULL, sf);   /* no crash */
	rsmeta_to_sessfile(r, NULL);
	free(sf);
	free(r);
}

/* ---- allocation failures inside libxml2 -------------------------------- */

static long alloc_budget = -1;   /* allocations left; -1: unlimited */
static unsigned alloc_failed;

static bool alloc_ok(void)
{
	if (alloc_budget < 0)
		return true;
	if (alloc_budget == 0) {
		alloc_failed++;
		return false;
	}
	alloc_budget--;
	return true;
}

static void *t_malloc(size_t n)
{
	return alloc_ok() ? malloc(n) : NULL;
}

static void *t_realloc(void *p, size_t n)
{
	return alloc_ok() ? realloc(p, n) : NULL;
}

static char *t_strdup(const char *s)
{
	return alloc_ok() ? strdup(s) : NULL;
}

static void quiet(void *ctx, const char *fmt, ...)
{
	(void)ctx;
	(void)fmt;
}

/* Every failing allocation N leaves the model unchanged (error) or
 * gives the right model (libxml2 sometimes recovers). */
static void test_alloc_sweep(void **state)
{
	struct rsmeta *want = calloc(1, sizeof(*want));
	struct rsmeta *r = calloc(1, sizeof(*r));
	size_t len;
	char *xml = load("rfc7865/s8.1-complete-metadata.xml", &len);
	const char *why = NULL;
	long n;
	int err;
	(void)state;

	assert_non_null(want);
	assert_non_null(r);
	assert_int_equal(0, apply_str(want, two_party, &why));
	*r = *want;
	assert_int_equal(0, rsmeta_apply(want, xml, len, &why));

	xmlSetGenericErrorFunc(NULL, quiet);   /* "out of memory" */
	assert_int_equal(0, xmlMemSetup(free, t_malloc, t_realloc,
					t_strdup));
	for (n = 0; n < 100000; n++) {
		struct rsmeta before = *r;

		alloc_budget = n;
		alloc_failed = 0;
		err = rsmeta_apply(r, xml, len, &why);
		alloc_budget = -1;
		if (!alloc_failed) {
			assert_int_equal(0, err);
			break;
		}
		if (err)
			assert_memory_equal(&before, r, sizeof(before));
		else
			assert_memory_equal(want, r, sizeof(*r));
		*r = before;
	}
	xmlMemSetup(free, malloc, realloc, strdup);
	xmlSetGenericErrorFunc(NULL, NULL);

	assert_true(n > 10);   /* the sweep went through the parse */
	assert_memory_equal(want, r, sizeof(*r));
	free(xml);
	free(r);
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index),
		cmocka_unit_test(test_rfc7865_s81_details),
		cmocka_unit_test(test_rfc8068_flows),
		cmocka_unit_test(test_rfc8068_details),
		cmocka_unit_test(test_all_files_covered),
		cmocka_unit_test(test_namespaces),
		cmocka_unit_test(test_draft_form),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_dtd_refused),
		cmocka_unit_test(test_datamode),
		cmocka_unit_test(test_assoc_rules),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_to_sessfile),
		cmocka_unit_test(test_alloc_sweep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
