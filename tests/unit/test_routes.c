/*
 * test_routes.c: static routes: the pattern language, first-match
 * precedence, ${user} substitution, and configuration lines refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "sipd.h"

/* Route USER through R: the URI, or "" for ENOENT. */
static const char *route(const struct routes *r, const char *user)
{
	static char uri[256];
	struct pl pl;
	int err;

	pl_set_str(&pl, user);
	err = routes_match(r, &pl, uri, sizeof(uri));
	if (err == ENOENT)
		return "";
	assert_int_equal(err, 0);
	return uri;
}

static struct routes *mk(const char *lines)
{
	struct routes *r = NULL;

	assert_int_equal(routes_alloc(&r, lines), 0);
	assert_non_null(r);
	return r;
}

static void test_literal_and_classes(void **state)
{
	struct routes *r = mk("100 sip:reception@10.0.0.1\n"
			      "9xxx sip:x@10.0.0.2\n"
			      "2NZ sip:nz@10.0.0.3\n"
			      "alice sip:alice@10.0.0.4\n"
			      "+49X sip:de@10.0.0.5\n");
	(void)state;

	assert_string_equal(route(r, "100"), "sip:reception@10.0.0.1");
	assert_string_equal(route(r, "10"), "");       /* too short */
	assert_string_equal(route(r, "1000"), "");     /* too long */
	assert_string_equal(route(r, "9000"), "sip:x@10.0.0.2");
	assert_string_equal(route(r, "9999"), "sip:x@10.0.0.2");
	assert_string_equal(route(r, "99a9"), "");     /* x is a digit */
	assert_string_equal(route(r, "991"), "");
	assert_string_equal(route(r, "221"), "sip:nz@10.0.0.3");
	assert_string_equal(route(r, "291"), "sip:nz@10.0.0.3");
	assert_string_equal(route(r, "211"), "");      /* N is 2-9 */
	assert_string_equal(route(r, "220"), "");      /* Z is 1-9 */
	assert_string_equal(route(r, "alice"), "sip:alice@10.0.0.4");
	assert_string_equal(route(r, "Alice"), "");    /* case-sensitive */
	assert_string_equal(route(r, "+497"), "sip:de@10.0.0.5");
	assert_string_equal(route(r, ""), "");
	mem_deref(r);
}

static void test_rest_wildcards(void **state)
{
	struct routes *r = mk("0049. sip:de@trunk\n"
			      "*97 sip:vm@10.0.0.7\n"
			      "8* sip:eight@10.0.0.8\n");
	(void)state;

	assert_string_equal(route(r, "00493012345"), "sip:de@trunk");
	assert_string_equal(route(r, "00491"), "sip:de@trunk");
	assert_string_equal(route(r, "0049"), "");     /* one or more */
	assert_string_equal(route(r, "*97"), "sip:vm@10.0.0.7"); /* literal */
	assert_string_equal(route(r, "*98"), "");
	assert_string_equal(route(r, "8abc"), "sip:eight@10.0.0.8");
	assert_string_equal(route(r, "8"), "");
	mem_deref(r);
}

static void test_first_match_wins(void **state)
{
	struct routes *r = mk("\n   \n"
			      "1234 sip:exact@a\n"
			      "12xx sip:block@b\n"
			      "1. sip:prefix@c\n"
			      "* sip:${user}@default\n");
	(void)state;

	assert_string_equal(route(r, "1234"), "sip:exact@a");
	assert_string_equal(route(r, "1299"), "sip:block@b");
	assert_string_equal(route(r, "1"), "sip:1@default");
	assert_string_equal(route(r, "15"), "sip:prefix@c");
	assert_string_equal(route(r, "bob"), "sip:bob@default");
	/* no user, and the only "*" line needs one: no route (was
	 * "sip:@default", no address; see test_empty_user) */
	assert_string_equal(route(r, ""), "");
	mem_deref(r);

	/* the catch-all first shadows the rest */
	r = mk("* sip:all@x\n1234 sip:never@y");
	assert_string_equal(route(r, "1234"), "sip:all@x");
	mem_deref(r);
}

static void test_substitution(void **state)
{
	struct routes *r = mk("\t9xxx\t sip:${user}@10.0.0.9:5090;transport=tcp"
			      "  \n"
			      "8xx sips:pre-${user}-${user}@h\n");
	char small[16];
	struct pl u;
	(void)state;

	assert_string_equal(route(r, "9123"),
			    "sip:9123@10.0.0.9:5090;transport=tcp");
	assert_string_equal(route(r, "812"), "sips:pre-812-812@h");

	/* the URI does not fit: an error, not a truncated target */
	pl_set_str(&u, "9123");
	assert_int_equal(routes_match(r, &u, small, sizeof(small)), ENOBUFS);
	mem_deref(r);
}

static void test_empty_table(void **state)
{
	struct routes *r = mk("");
	(void)state;

	assert_string_equal(route(r, "100"), "");
	mem_deref(r);
}

static void test_bad_lines(void **state)
{
	static const char *const bad[] = {
		"100\n",                            /* no URI */
		"100 sip:a@b extra\n",              /* a third field */
		"1 0 sip:a@b\n",
		"100 http://example.com\n",         /* not sip: */
		"100 sip:${usr}@b\n",               /* unknown variable */
		"100 sip:${user@b\n",
		"100 sip:$@b\n",
		"10<0 sip:a@b\n",                   /* bad pattern char */
		"1%0 sip:a@b\n",
		"100 sip:\n",                       /* no host */
		"ok sip:a@b\nbad\n",                /* the second line */
		NULL,
	};
	struct routes *r;
	unsigned i;
	(void)state;

	for (i = 0; bad[i]; i++) {
		r = NULL;
		assert_int_equal(routes_alloc(&r, bad[i]), EINVAL);
		assert_null(r);
	}
	assert_int_equal(routes_alloc(&r, NULL), EINVAL);
	assert_int_equal(routes_alloc(NULL, "1 sip:a@b"), EINVAL);
}

/* A Request-URI without a user part (sip:host, issue 10 defect 5): the
 * user is an empty pl whose p is NULL. Only "*" can match it, and a line
 * whose target needs ${user} is passed over; with no other line: ENOENT. */
static void test_empty_user(void **state)
{
	struct routes *r = mk("x. sip:${user}@10.0.0.1\n"
			      "* sip:${user}@10.0.0.2\n"
			      "* sip:operator@10.0.0.3\n");
	struct routes *r2 = mk("* sip:${user}@10.0.0.2\n");
	struct pl empty = PL_INIT;
	char uri[64];
	(void)state;

	assert_null(empty.p);
	assert_int_equal(routes_match(r, &empty, uri, sizeof(uri)), 0);
	assert_string_equal(uri, "sip:operator@10.0.0.3");
	assert_int_equal(routes_match(r, NULL, uri, sizeof(uri)), 0);
	assert_string_equal(uri, "sip:operator@10.0.0.3");
	assert_int_equal(routes_match(r2, &empty, uri, sizeof(uri)), ENOENT);
	/* a user still gets the first line that matches */
	assert_string_equal(route(r, "12"), "sip:12@10.0.0.1");
	assert_string_equal(route(r, "bob"), "sip:bob@10.0.0.2");
	assert_string_equal(route(r2, "+1"), "sip:+1@10.0.0.2");
	mem_deref(r);
	mem_deref(r2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal_and_classes),
		cmocka_unit_test(test_rest_wildcards),
		cmocka_unit_test(test_first_match_wins),
		cmocka_unit_test(test_substitution),
		cmocka_unit_test(test_empty_table),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_empty_user),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
