/*
 * test_recpolicy.c: the static record policy (config key "record"): rule
 * lines, the pattern on the caller's or the callee's user, first match
 * wins, media and mode, and lines refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "rec.h"

static struct recpolicy *mk(const char *lines)
{
	struct recpolicy *rp = NULL;

	assert_int_equal(recpolicy_alloc(&rp, lines), 0);
	assert_non_null(rp);
	return rp;
}

/* Does a call CALLER -> CALLEE match; media and mode into *REQ. */
static bool match(const struct recpolicy *rp, const char *caller,
		  const char *callee, struct rec_req *req)
{
	struct bcall c;

	memset(&c, 0, sizeof(c));
	strcpy(c.id, "c1-test");
	strcpy(c.caller.user, caller);
	strcpy(c.callee.user, callee);
	return recpolicy_match(rp, &c, req);
}

static void test_worked_example(void **state)
{
	struct recpolicy *rp = mk("sup*  audio+video  per-party\n"
				  "1001 audio\n"
				  "  9xxx\taudio   both  \r\n"
				  "\n");
	struct rec_req req;

	(void)state;
	assert_int_equal(recpolicy_count(rp), 3);
	/* the callee's user matches rule 1 */
	assert_true(match(rp, "1001", "support", &req));
	assert_true(req.video);
	assert_true(req.per_party);
	assert_null(req.recorder);
	/* rule 2 on the caller */
	assert_true(match(rp, "1001", "2000", &req));
	assert_false(req.video);
	assert_false(req.per_party);
	/* rule 3 on the callee, mode both */
	assert_true(match(rp, "2000", "9123", &req));
	assert_false(req.video);
	assert_false(req.per_party);
	/* nothing: "9xxx" wants exactly four characters, sup* one more */
	assert_false(match(rp, "2000", "91234", &req));
	assert_false(match(rp, "2000", "sup", &req));
	assert_false(match(rp, "", "", &req));
	mem_deref(rp);
}

static void test_empty(void **state)
{
	struct recpolicy *rp = mk("");
	struct rec_req req;

	(void)state;
	assert_int_equal(recpolicy_count(rp), 0);
	assert_false(match(rp, "1001", "2000", &req));
	mem_deref(rp);
	rp = mk(NULL);
	assert_int_equal(recpolicy_count(rp), 0);
	mem_deref(rp);
	assert_false(recpolicy_match(NULL, NULL, &req));
}

static void test_bad_lines(void **state)
{
	static const char *const bad[] = {
		"1001",                          /* no media */
		"1001 video",                    /* bad media */
		"1001 audio solo",               /* bad mode */
		"1001 audio both extra",         /* a field too many */
		"10(1 audio",                    /* bad pattern */
		"good audio\n1001 Audio",        /* second line bad */
	};
	struct recpolicy *rp = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(recpolicy_alloc(&rp, bad[i]), EINVAL);
		assert_null(rp);
	}
	assert_int_equal(recpolicy_alloc(NULL, "1001 audio"), EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worked_example),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_bad_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
