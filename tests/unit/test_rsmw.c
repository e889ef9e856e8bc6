/*
 * test_rsmw.c: the recording client's RFC 7865 metadata writer.
 *
 * What a recorder sees is what counts: every document written here is
 * validated against RFC 7865's schema (tests/data/siprec/schema) with
 * libxml2 and read back with the recorder's own reader (rsmeta.c), which
 * must find the same participants, names, labels and send/recv sets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
#include <re.h>
#include "rsmw.h"
#include "rsmeta.h"

static xmlSchemaPtr g_schema;

static int setup(void **state)
{
	xmlSchemaParserCtxtPtr pc;

	(void)state;
	pc = xmlSchemaNewParserCtxt(TALLY_TEST_DATA
				    "/siprec/schema/rfc7865-recording.xsd");
	if (!pc)
		return -1;
	g_schema = xmlSchemaParse(pc);
	xmlSchemaFreeParserCtxt(pc);
	return g_schema ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	xmlSchemaFree(g_schema);
	return 0;
}

static bool valid(const struct mbuf *mb)
{
	xmlDocPtr doc = xmlReadMemory((const char *)mb->buf, (int)mb->end,
				      "rsmw.xml", NULL, XML_PARSE_NONET);
	xmlSchemaValidCtxtPtr vc;
	int rc;

	if (!doc)
		return false;
	vc = xmlSchemaNewValidCtxt(g_schema);
	rc = xmlSchemaValidateDoc(vc, doc);
	xmlSchemaFreeValidCtxt(vc);
	xmlFreeDoc(doc);
	return rc == 0;
}

/* alice (DN 1001) calls bob, audio+video, one session: labels 1..4 */
static void two_party(struct rsmw_doc *d)
{
	size_t i;

	memset(d, 0, sizeof(*d));
	rsmw_newid(d->group_id);
	rsmw_newid(d->session_id);
	str_ncpy(d->callid, "a84b4c76e66710@pc33.tally", sizeof(d->callid));
	d->start = 1796706000;
	for (i = 0; i < 4; i++) {
		rsmw_newid(d->streams[i].id);
		snprintf(d->streams[i].label, sizeof(d->streams[i].label),
			 "%zu", i + 1);
	}
	d->nstreams = 4;
	rsmw_newid(d->parts[0].id);
	str_ncpy(d->parts[0].aor, "sip:alice@tally", sizeof(d->parts[0].aor));
	str_ncpy(d->parts[0].name, "Alice", sizeof(d->parts[0].name));
	str_ncpy(d->parts[0].dn, "1001", sizeof(d->parts[0].dn));
	d->parts[0].send[0] = 0;
	d->parts[0].send[1] = 1;
	d->parts[0].nsend = 2;
	d->parts[0].recv[0] = 2;
	d->parts[0].recv[1] = 3;
	d->parts[0].nrecv = 2;
	d->parts[0].assoc = d->start;
	rsmw_newid(d->parts[1].id);
	str_ncpy(d->parts[1].aor, "sip:bob@tally", sizeof(d->parts[1].aor));
	d->parts[1].send[0] = 2;
	d->parts[1].send[1] = 3;
	d->parts[1].nsend = 2;
	d->parts[1].recv[0] = 0;
	d->parts[1].recv[1] = 1;
	d->parts[1].nrecv = 2;
	d->parts[1].assoc = d->start;
	d->nparts = 2;
}

/* the written bytes contain S (an mbuf is not NUL-terminated) */
static bool has(const struct mbuf *mb, const char *s)
{
	return memmem(mb->buf, mb->end, s, strlen(s)) != NULL;
}

static const struct rsm_participant *find_part(const struct rsmeta *m,
					       const char *aor)
{
	size_t i;

	for (i = 0; i < m->nparts; i++)
		if (!strcmp(m->parts[i].aor, aor))
			return &m->parts[i];
	return NULL;
}

static void test_complete_valid_and_read_back(void **state)
{
	static struct rsmw_doc d;
	static struct rsmeta m;
	const struct rsm_participant *a, *b;
	const char *why = NULL;
	struct mbuf *mb = mbuf_alloc(1024);

	(void)state;
	two_party(&d);
	assert_int_equal(rsmw_write(mb, &d), 0);
	assert_true(valid(mb));
	assert_true(has(mb, "<datamode>complete</datamode>"));
	assert_true(has(mb, "a84b4c76e66710@pc33.tally"));

	memset(&m, 0, sizeof(m));
	assert_int_equal(rsmeta_apply(&m, (char *)mb->buf, mb->end, &why), 0);
	assert_string_equal(m.session_id, d.session_id);
	assert_int_equal(m.nparts, 2);
	assert_int_equal(m.nstreams, 4);
	a = find_part(&m, "sip:alice@tally");
	b = find_part(&m, "sip:bob@tally");
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a->name, "Alice");
	assert_int_equal(a->nsend, 2);
	assert_string_equal(rsmeta_label(&m, a->send[0]), "1");
	assert_string_equal(rsmeta_label(&m, a->send[1]), "2");
	assert_int_equal(a->nrecv, 2);
	assert_string_equal(rsmeta_label(&m, a->recv[0]), "3");
	assert_string_equal(rsmeta_label(&m, b->send[1]), "4");
	{
		const char *labels[] = {"1", "2", "3", "4"};
		assert_int_equal(rsmeta_check(&m, labels, 4, &why), 0);
	}
	mem_deref(mb);
}

static void test_escaping_and_utf8(void **state)
{
	static struct rsmw_doc d;
	static struct rsmeta m;
	const char *why = NULL;
	struct mbuf *mb = mbuf_alloc(1024);
	const char *name = "J\xc3\xbcrgen <ops> & \"co\" 'x'";

	(void)state;
	two_party(&d);
	str_ncpy(d.parts[0].name, name, sizeof(d.parts[0].name));
	str_ncpy(d.parts[0].aor, "sip:j%C3%BCrgen@tally;x=<&>",
		 sizeof(d.parts[0].aor));
	assert_int_equal(rsmw_write(mb, &d), 0);
	assert_true(valid(mb));
	assert_false(has(mb, "<ops>"));
	memset(&m, 0, sizeof(m));
	assert_int_equal(rsmeta_apply(&m, (char *)mb->buf, mb->end, &why), 0);
	assert_non_null(find_part(&m, "sip:j%C3%BCrgen@tally;x=<&>"));
	assert_string_equal(find_part(&m, "sip:j%C3%BCrgen@tally;x=<&>")->name,
			    name);
	mem_deref(mb);
}

static void test_refused(void **state)
{
	static struct rsmw_doc d;
	struct mbuf *mb = mbuf_alloc(64);

	(void)state;
	two_party(&d);
	d.session_id[0] = '\0';
	assert_int_equal(rsmw_write(mb, &d), EINVAL);
	two_party(&d);
	d.parts[1].aor[0] = '\0';
	assert_int_equal(rsmw_write(mb, &d), EINVAL);
	two_party(&d);
	d.parts[0].recv[1] = 4;          /* no stream 4 (0-based) */
	assert_int_equal(rsmw_write(mb, &d), EINVAL);
	two_party(&d);
	str_ncpy(d.parts[0].name, "bad \xff\xfe utf-8", sizeof(d.parts[0].name));
	assert_int_equal(rsmw_write(mb, &d), EINVAL);
	two_party(&d);
	d.nparts = RSMW_MAX_PARTS + 1;
	assert_int_equal(rsmw_write(mb, &d), EINVAL);
	assert_int_equal(mb->end, 0);    /* nothing written on error */
	mem_deref(mb);
}

/* A pause, then a party replaced: partial documents with the same ids
 * update what the recorder knows. */
static void test_partial_update(void **state)
{
	static struct rsmw_doc d;
	static struct rsmeta m;
	const char *why = NULL;
	struct mbuf *mb = mbuf_alloc(1024);

	(void)state;
	two_party(&d);
	assert_int_equal(rsmw_write(mb, &d), 0);
	memset(&m, 0, sizeof(m));
	assert_int_equal(rsmeta_apply(&m, (char *)mb->buf, mb->end, &why), 0);

	/* bob leaves, carol takes his streams */
	d.partial = true;
	d.parts[1].disassoc = d.start + 30;
	d.parts[1].nsend = d.parts[1].nrecv = 0;
	rsmw_newid(d.parts[2].id);
	str_ncpy(d.parts[2].aor, "sip:carol@tally", sizeof(d.parts[2].aor));
	str_ncpy(d.parts[2].name, "Carol", sizeof(d.parts[2].name));
	d.parts[2].send[0] = 2;
	d.parts[2].send[1] = 3;
	d.parts[2].nsend = 2;
	d.parts[2].assoc = d.start + 30;
	d.nparts = 3;
	mbuf_reset(mb);
	assert_int_equal(rsmw_write(mb, &d), 0);
	assert_true(valid(mb));
	assert_true(has(mb, "<datamode>partial</datamode>"));
	assert_int_equal(rsmeta_apply(&m, (char *)mb->buf, mb->end, &why), 0);
	assert_int_equal(m.nparts, 3);
	assert_true(find_part(&m, "sip:bob@tally")->left);
	assert_string_equal(find_part(&m, "sip:carol@tally")->name, "Carol");
	assert_string_equal(rsmeta_label(&m,
			    find_part(&m, "sip:carol@tally")->send[0]), "3");
	mem_deref(mb);
}

/* the schema check above can fail: a document in the wrong order does */
static void test_validator_bites(void **state)
{
	static const char bad[] =
		"<?xml version=\"1.0\"?><recording xmlns="
		"'urn:ietf:params:xml:ns:recording:1'><participant "
		"participant_id=\"srfBElmCRp2QB23b7Mpk0w==\"><nameID "
		"aor=\"sip:a@b\"/></participant><datamode>complete</datamode>"
		"</recording>";
	struct mbuf *mb = mbuf_alloc(256);

	(void)state;
	assert_int_equal(mbuf_write_str(mb, bad), 0);
	assert_false(valid(mb));
	mem_deref(mb);
}

static void test_newid(void **state)
{
	char a[RSMW_ID_LEN], b[RSMW_ID_LEN];
	uint8_t raw[32];
	size_t len = sizeof(raw);

	(void)state;
	rsmw_newid(a);
	rsmw_newid(b);
	assert_int_equal(strlen(a), 24);
	assert_string_not_equal(a, b);
	assert_int_equal(base64_decode(a, strlen(a), raw, &len), 0);
	assert_int_equal(len, 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_complete_valid_and_read_back),
		cmocka_unit_test(test_escaping_and_utf8),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_partial_update),
		cmocka_unit_test(test_validator_bites),
		cmocka_unit_test(test_newid),
	};
	int rc;

	xmlInitParser();
	rc = cmocka_run_group_tests(tests, setup, teardown);
	xmlCleanupParser();
	return rc;
}
