/*
 * test_bencode.c: unit tests for the ng protocol's bencode decoder and writer.
 *
 * Decoding is checked on real rtpengine-shaped messages (what Kamailio's
 * rtpengine module sends), on every class of malformed input the header names
 * (each must be EBADMSG, never a crash), on the depth and node limits (E2BIG),
 * and the writer is checked by a decode round trip.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "bencode.h"

static int decode_str(struct benc **docp, const char *s, size_t *used)
{
	return benc_decode(docp, (const uint8_t *)s, strlen(s), used);
}

static void test_ping(void **state)
{
	struct benc *doc = NULL;
	const struct benc_node *root, *k;
	size_t used = 0;
	(void)state;

	assert_int_equal(0, decode_str(&doc, "d7:command4:pinge", &used));
	assert_int_equal(17, used);

	root = benc_root(doc);
	assert_non_null(root);
	assert_int_equal(BENC_DICT, root->type);
	assert_int_equal(1, root->count);

	k = root->child;
	assert_true(benc_str_eq(k, "command"));
	assert_true(benc_str_eq(k->next, "ping"));
	assert_null(k->next->next);
	assert_true(benc_str_eq(benc_dict_get(root, "command"), "ping"));
	assert_null(benc_dict_get(root, "ping"));

	mem_deref(doc);
}

/* An offer as Kamailio's rtpengine module sends it (after the cookie). */
static const char kamailio_offer[] =
	"d3:sdp23:v=0\r\no=- 1 1 IN IP4 x\r\n"
	"5:flagsl10:trust-addr"
	"e7:replacel6:origin18:session-connectione"
	"3:ICE6:remove"
	"7:call-id9:abc@hostx"
	"13:received-froml3:IP49:127.0.0.1e"
	"8:from-tag5:tag-1"
	"7:command5:offer"
	"5:portsi30000e"
	"5:delayi-12e"
	"e";

static void test_offer_dict(void **state)
{
	struct benc *doc = NULL;
	const struct benc_node *root, *l;
	struct pl pl;
	int64_t v;
	uint8_t *copy;
	size_t len = strlen(kamailio_offer);
	(void)state;

	/* the document must not depend on the caller's buffer */
	copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, kamailio_offer, len);
	assert_int_equal(0, benc_decode(&doc, copy, len, NULL));
	memset(copy, 'X', len);
	free(copy);

	root = benc_root(doc);
	assert_int_equal(10, root->count);

	assert_int_equal(0, benc_dict_pl(root, "call-id", &pl));
	assert_int_equal(0, pl_strcmp(&pl, "abc@hostx"));
	assert_int_equal(0, benc_dict_pl(root, "sdp", &pl));
	assert_int_equal(23, pl.l);
	assert_int_equal(ENOENT, benc_dict_pl(root, "to-tag", &pl));
	assert_int_equal(EPROTO, benc_dict_pl(root, "flags", &pl));

	assert_int_equal(0, benc_dict_int(root, "ports", &v));
	assert_int_equal(30000, v);
	assert_int_equal(0, benc_dict_int(root, "delay", &v));
	assert_int_equal(-12, v);
	assert_int_equal(EPROTO, benc_dict_int(root, "call-id", &v));
	assert_int_equal(EPROTO, benc_dict_int(root, "flags", &v));
	assert_int_equal(ENOENT, benc_dict_int(root, "nope", &v));

	l = benc_dict_get(root, "flags");
	assert_int_equal(BENC_LIST, l->type);
	assert_int_equal(1, l->count);
	assert_true(benc_list_has(l, "trust-addr"));
	assert_true(benc_list_has(l, "Trust Addr"));
	assert_true(benc_list_has(l, "TRUST-ADDR"));
	assert_false(benc_list_has(l, "trust-add"));
	assert_false(benc_list_has(l, "trust_addr"));
	assert_false(benc_list_has(root, "trust-addr"));  /* not a list */

	l = benc_dict_get(root, "replace");
	assert_int_equal(2, l->count);
	assert_true(benc_list_has(l, "session connection"));
	assert_true(benc_list_has(l, "origin"));

	l = benc_dict_get(root, "received-from");
	assert_true(benc_str_eq(l->child, "IP4"));
	assert_true(benc_str_eq(l->child->next, "127.0.0.1"));

	/* lookups on the wrong node types fail cleanly */
	assert_null(benc_dict_get(l, "IP4"));
	assert_null(benc_dict_get(NULL, "x"));
	assert_false(benc_str_eq(root, "x"));
	assert_false(benc_str_eq(NULL, "x"));

	mem_deref(doc);
}

static void test_int_as_string(void **state)
{
	struct benc *doc = NULL;
	int64_t v = 0;
	(void)state;

	assert_int_equal(0, decode_str(&doc,
		"d1:a5:123451:b2:-71:c0:1:d3:1x21:e20:99999999999999999999"
		"1:f20:-9223372036854775808e", NULL));
	assert_int_equal(0, benc_dict_int(benc_root(doc), "a", &v));
	assert_int_equal(12345, v);
	assert_int_equal(0, benc_dict_int(benc_root(doc), "b", &v));
	assert_int_equal(-7, v);
	assert_int_equal(EPROTO, benc_dict_int(benc_root(doc), "c", &v));
	assert_int_equal(EPROTO, benc_dict_int(benc_root(doc), "d", &v));
	assert_int_equal(EPROTO, benc_dict_int(benc_root(doc), "e", &v));
	assert_int_equal(0, benc_dict_int(benc_root(doc), "f", &v));
	assert_true(v == INT64_MIN);
	mem_deref(doc);
}

static void test_ints(void **state)
{
	static const struct {
		const char *in;
		int64_t v;
	} good[] = {
		{"i0e", 0},
		{"i-1e", -1},
		{"i42e", 42},
		{"i9223372036854775807e", INT64_MAX},
		{"i-9223372036854775808e", INT64_MIN},
	};
	struct benc *doc;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		doc = NULL;
		assert_int_equal(0, decode_str(&doc, good[i].in, NULL));
		assert_int_equal(BENC_INT, benc_root(doc)->type);
		assert_true(benc_root(doc)->i == good[i].v);
		mem_deref(doc);
	}
}

static void test_malformed(void **state)
{
	static const char *bad[] = {
		"", "e", "x", "i", "ie", "i-e", "i-0e", "i01e", "i-01e", "i00e",
		"i1", "i1x", "i+1e", "i 1e", "i9223372036854775808e",
		"i-9223372036854775809e", "i99999999999999999999999e",
		"5:abc", "01:a", "-1:a", "1a", ":", "4", "99999999999999999999:x",
		"18446744073709551616:x",
		"l", "li1e", "lx", "d", "d1:a", "d1:ai1e", "di1ei2ee",
		"dl1:ae1:be", "d1:a1:b1:ce", "dd1:ae1:be", "d1:ae", "l1:a",
		"d3:key", "lle",
	};
	struct benc *doc;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		doc = NULL;
		if (EBADMSG != decode_str(&doc, bad[i], NULL))
			fail_msg("'%s' not rejected with EBADMSG", bad[i]);
		assert_null(doc);
	}
}

static void test_trailing_and_empty(void **state)
{
	struct benc *doc = NULL;
	size_t used = 0;
	(void)state;

	assert_int_equal(0, decode_str(&doc, "lei5e", &used));
	assert_int_equal(2, used);
	assert_int_equal(BENC_LIST, benc_root(doc)->type);
	assert_int_equal(0, benc_root(doc)->count);
	assert_null(benc_root(doc)->child);
	mem_deref(doc);

	doc = NULL;
	assert_int_equal(0, decode_str(&doc, "0:", &used));
	assert_int_equal(BENC_STR, benc_root(doc)->type);
	assert_int_equal(0, benc_root(doc)->s.l);
	assert_true(benc_str_eq(benc_root(doc), ""));
	mem_deref(doc);

	doc = NULL;
	assert_int_equal(0, decode_str(&doc, "de", &used));
	assert_int_equal(0, benc_root(doc)->count);
	mem_deref(doc);

	/* binary bytes inside strings are data, not syntax */
	doc = NULL;
	assert_int_equal(0, benc_decode(&doc,
		(const uint8_t *)"3:\0e:", 5, &used));
	assert_int_equal(3, benc_root(doc)->s.l);
	mem_deref(doc);
}

static void test_args(void **state)
{
	struct benc *doc = NULL;
	(void)state;

	assert_int_equal(EINVAL, benc_decode(NULL, (const uint8_t *)"i1e",
					     3, NULL));
	assert_int_equal(EINVAL, benc_decode(&doc, NULL, 3, NULL));
	assert_int_equal(EBADMSG, benc_decode(&doc, NULL, 0, NULL));
	assert_null(benc_root(NULL));
}

static void nest(char *buf, size_t depth)
{
	memset(buf, 'l', depth);
	memset(buf + depth, 'e', depth);
	buf[2 * depth] = '\0';
}

static void test_depth(void **state)
{
	char buf[2 * (BENC_MAX_DEPTH + 2) + 1];
	struct benc *doc = NULL;
	const struct benc_node *n;
	size_t d;
	(void)state;

	nest(buf, BENC_MAX_DEPTH);
	assert_int_equal(0, decode_str(&doc, buf, NULL));
	for (d = 1, n = benc_root(doc); n->child; n = n->child)
		++d;
	assert_int_equal(BENC_MAX_DEPTH, d);
	mem_deref(doc);

	doc = NULL;
	nest(buf, BENC_MAX_DEPTH + 1);
	assert_int_equal(E2BIG, decode_str(&doc, buf, NULL));
	assert_null(doc);

	/* a truncated deep document is still too deep first */
	buf[BENC_MAX_DEPTH + 1] = '\0';
	assert_int_equal(E2BIG, decode_str(&doc, buf, NULL));
}

static void test_nodes(void **state)
{
	const size_t n = BENC_MAX_NODES;
	struct benc *doc = NULL;
	char *buf;
	size_t i, used = 0;
	(void)state;

	/* list + (n-1) "i1e" = n nodes: fits exactly */
	buf = malloc(2 + 3 * n + 1);
	assert_non_null(buf);
	buf[0] = 'l';
	for (i = 0; i < n - 1; i++)
		memcpy(buf + 1 + 3 * i, "i1e", 3);
	buf[1 + 3 * (n - 1)] = 'e';
	buf[2 + 3 * (n - 1)] = '\0';
	assert_int_equal(0, decode_str(&doc, buf, &used));
	assert_int_equal(n - 1, benc_root(doc)->count);
	mem_deref(doc);

	/* one more node is too many */
	doc = NULL;
	memcpy(buf + 1 + 3 * (n - 1), "i1ee", 5);
	assert_int_equal(E2BIG, decode_str(&doc, buf, NULL));
	assert_null(doc);
	free(buf);
}

static void test_writer_roundtrip(void **state)
{
	struct mbuf *mb = mbuf_alloc(64);
	struct benc *doc = NULL;
	const struct benc_node *root, *l;
	struct pl pl = PL("127.0.0.1");
	int64_t v;
	int err = 0;
	(void)state;

	assert_non_null(mb);
	err |= benc_dict_begin(mb);
	err |= benc_kv_str(mb, "result", "ok");
	err |= benc_kv_pl(mb, "address", &pl);
	err |= benc_kv_int(mb, "min", INT64_MIN);
	err |= benc_kv_int(mb, "max", INT64_MAX);
	err |= benc_str(mb, "list");
	err |= benc_list_begin(mb);
	err |= benc_str(mb, "");
	err |= benc_strn(mb, "a\0b", 3);
	err |= benc_int(mb, 0);
	err |= benc_int(mb, -5);
	err |= benc_end(mb);
	err |= benc_str(mb, "empty");
	err |= benc_str(mb, NULL);
	err |= benc_end(mb);
	assert_int_equal(0, err);

	assert_int_equal(0, benc_decode(&doc, mb->buf, mb->end, NULL));
	root = benc_root(doc);
	assert_int_equal(6, root->count);
	assert_true(benc_str_eq(benc_dict_get(root, "result"), "ok"));
	assert_true(benc_str_eq(benc_dict_get(root, "address"), "127.0.0.1"));
	assert_int_equal(0, benc_dict_int(root, "min", &v));
	assert_true(v == INT64_MIN);
	assert_int_equal(0, benc_dict_int(root, "max", &v));
	assert_true(v == INT64_MAX);
	assert_true(benc_str_eq(benc_dict_get(root, "empty"), ""));

	l = benc_dict_get(root, "list");
	assert_int_equal(4, l->count);
	assert_int_equal(3, l->child->next->s.l);
	assert_int_equal(0, memcmp(l->child->next->s.p, "a\0b", 3));
	assert_int_equal(-5, l->child->next->next->next->i);

	mem_deref(doc);
	mem_deref(mb);

	assert_int_equal(EINVAL, benc_int(NULL, 1));
	assert_int_equal(EINVAL, benc_str(NULL, "x"));
}

static void test_writer_exact(void **state)
{
	struct mbuf *mb = mbuf_alloc(64);
	int err = 0;
	(void)state;

	err |= benc_dict_begin(mb);
	err |= benc_kv_str(mb, "result", "pong");
	err |= benc_end(mb);
	assert_int_equal(0, err);
	assert_int_equal(strlen("d6:result4:ponge"), mb->end);
	assert_memory_equal("d6:result4:ponge", mb->buf, mb->end);
	mem_deref(mb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping),
		cmocka_unit_test(test_offer_dict),
		cmocka_unit_test(test_int_as_string),
		cmocka_unit_test(test_ints),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_trailing_and_empty),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_nodes),
		cmocka_unit_test(test_writer_roundtrip),
		cmocka_unit_test(test_writer_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
