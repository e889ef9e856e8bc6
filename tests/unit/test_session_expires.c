/*
 * test_session_expires.c: reading RFC 4028's Session-Expires (indialog.c),
 * which both the 422 check on a new INVITE and the session timer armed
 * from a 2xx rely on: delta-seconds with or without parameters, the
 * compact form, and what counts as no interval.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "b2bua.h"

/* A decoded 200 OK carrying HDR (a full header line, or ""). */
static struct sip_msg *msg_with(const char *hdr)
{
	struct sip_msg *msg = NULL;
	struct mbuf *mb = mbuf_alloc(512);

	assert_non_null(mb);
	assert_int_equal(mbuf_printf(mb, "SIP/2.0 200 OK\r\n"
				     "Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n"
				     "From: <sip:a@127.0.0.1>;tag=1\r\n"
				     "To: <sip:b@127.0.0.1>;tag=2\r\n"
				     "Call-ID: se\r\nCSeq: 1 INVITE\r\n"
				     "%s"
				     "Content-Length: 0\r\n\r\n", hdr), 0);
	mb->pos = 0;
	assert_int_equal(sip_msg_decode(&msg, mb), 0);
	mem_deref(mb);
	return msg;
}

static void expect(const char *hdr, bool found, uint32_t secs)
{
	struct sip_msg *msg = msg_with(hdr);
	uint32_t got = 12345;

	assert_int_equal(session_expires(msg, &got), found);
	if (found)
		assert_int_equal(got, secs);
	mem_deref(msg);
}

static void test_forms(void **state)
{
	(void)state;
	expect("Session-Expires: 1800\r\n", true, 1800);
	/* the usual form carries the refresher: the interval still counts */
	expect("Session-Expires: 1800;refresher=uac\r\n", true, 1800);
	expect("Session-Expires: 90 ; refresher=uas\r\n", true, 90);
	expect("x: 120\r\n", true, 120);
	expect("Session-Expires: 30\r\n", true, 30);   /* below Min-SE: 422 */
	expect("Session-Expires: 0\r\n", true, 0);
}

static void test_no_interval(void **state)
{
	(void)state;
	expect("", false, 0);
	expect("Session-Expires: soon\r\n", false, 0);
	expect("Session-Expires: ;refresher=uac\r\n", false, 0);
	expect("Min-SE: 90\r\n", false, 0);
}

static int setup(void **state)
{
	(void)state;
	return libre_init();
}

static int teardown(void **state)
{
	(void)state;
	libre_close();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_no_interval),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
