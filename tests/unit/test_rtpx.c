/*
 * test_rtpx.c: RTP/RTCP byte checks and the feedback messages tally sends.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "rtpx.h"

static void test_valid_and_demux(void **state)
{
	uint8_t rtp[12] = {0x80, 0x60, 0x12, 0x34, 0, 0, 0, 1, 0xca, 0xfe, 0xba, 0xbe};
	uint8_t sr[8] = {0x80, 200, 0, 6, 1, 2, 3, 4};
	uint8_t rr[8] = {0x81, 201, 0, 1, 1, 2, 3, 4};
	uint8_t v1[12] = {0x40, 0x00};
	(void)state;

	assert_true(rtpx_valid(rtp, sizeof(rtp)));
	assert_false(rtpx_valid(rtp, 7));           /* runt */
	assert_false(rtpx_valid(v1, sizeof(v1)));   /* version 1 */
	assert_false(rtpx_is_rtcp(rtp, sizeof(rtp)));
	assert_true(rtpx_is_rtcp(sr, sizeof(sr)));
	assert_true(rtpx_is_rtcp(rr, sizeof(rr)));
	/* marker bit set on PT 96 is still RTP (byte1 = 0xe0) */
	rtp[1] = 0xe0;
	assert_false(rtpx_is_rtcp(rtp, sizeof(rtp)));
	/* PT 72 with marker = 0xc8 looks like SR (200): RFC 5761 says avoid */
	assert_int_equal(rtpx_seq(rtp), 0x1234);
	assert_int_equal(rtpx_ssrc(rtp), 0xcafebabe);
}

static void test_pli(void **state)
{
	uint8_t b[RTPX_PLI_LEN];
	uint32_t ssrc = 0;
	(void)state;

	assert_int_equal(rtpx_build_pli(b, 0x11111111, 0x22222222), 12);
	assert_int_equal(b[0], 0x81);
	assert_int_equal(b[1], 206);
	assert_int_equal(rtpx_be16(b + 2), 2);
	assert_int_equal(rtpx_be32(b + 4), 0x11111111);
	assert_int_equal(rtpx_be32(b + 8), 0x22222222);
	assert_true(rtpx_rtcp_has_keyframe_req(b, sizeof(b)));
	assert_true(rtpx_rtcp_sender(b, sizeof(b), &ssrc));
	assert_int_equal(ssrc, 0x11111111);
}

static void test_fir_in_compound(void **state)
{
	uint8_t b[8 + RTPX_FIR_LEN];
	uint8_t rr[8] = {0x80, 201, 0, 1, 9, 9, 9, 9};
	(void)state;

	memcpy(b, rr, 8);
	assert_int_equal(rtpx_build_fir(b + 8, 1, 0x33333333, 7), 20);
	assert_int_equal(b[8] & 0x1f, 4);
	assert_int_equal(rtpx_be32(b + 8 + 12), 0x33333333);
	assert_int_equal(b[8 + 16], 7);
	assert_true(rtpx_rtcp_has_keyframe_req(b, sizeof(b)));
	/* the receiver report alone is no request */
	assert_false(rtpx_rtcp_has_keyframe_req(rr, sizeof(rr)));
}

static void test_rr_pli_fir_compound(void **state)
{
	uint8_t b[RTPX_RR_LEN + RTPX_PLI_LEN + RTPX_FIR_LEN];
	size_t n;
	(void)state;

	n = rtpx_build_rr(b, 0x44444444);
	assert_int_equal(n, 8);
	assert_int_equal(b[1], 201);
	assert_false(rtpx_rtcp_has_keyframe_req(b, n));
	n += rtpx_build_pli(b + n, 0x44444444, 0x55555555);
	n += rtpx_build_fir(b + n, 0x44444444, 0x55555555, 1);
	assert_int_equal(n, sizeof(b));
	assert_true(rtpx_is_rtcp(b, n));
	assert_true(rtpx_rtcp_has_keyframe_req(b, n));
}

static void test_compound_garbage(void **state)
{
	uint8_t b[16] = {0x80, 201, 0xff, 0xff};   /* length beyond the buffer */
	uint8_t z[4] = {0x80, 201, 0, 0};           /* zero-length words: 4 bytes */
	(void)state;

	assert_false(rtpx_rtcp_has_keyframe_req(b, sizeof(b)));
	assert_false(rtpx_rtcp_has_keyframe_req(z, sizeof(z)));
	assert_false(rtpx_rtcp_has_keyframe_req(b, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_and_demux),
		cmocka_unit_test(test_pli),
		cmocka_unit_test(test_fir_in_compound),
		cmocka_unit_test(test_rr_pli_fir_compound),
		cmocka_unit_test(test_compound_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
