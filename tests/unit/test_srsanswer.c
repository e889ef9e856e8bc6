/*
 * test_srsanswer.c: the recorder's decisions before any media flows:
 * policy rules (policy.c), port blocks (rxports.c) and the SDP answer
 * (answer.c) for RFC 7866's Figure 5 offer, under each policy, and for a
 * re-offer that pauses, resumes and adds a stream.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <cmocka.h>
#include "sdp.h"
#include "recd.h"

static void test_policy_rules(void **state)
{
	struct policy *p = NULL;
	const char *aors[] = {"sip:alice@support.example.com",
			      "sip:+4930555123@example.com"};
	const char *rule = NULL;
	(void)state;

	assert_int_equal(policy_alloc(&p, "sip:*@support.example.com=audio\n"
				      "+4930555*=none\n", "audio+video"), 0);
	assert_int_equal(policy_decide(p, aors, 2, NULL, &rule), REC_AUDIO);
	assert_string_equal(rule, "sip:*@support.example.com");
	assert_int_equal(policy_decide(p, aors + 1, 1, NULL, &rule), REC_NONE);
	assert_int_equal(policy_decide(p, NULL, 0, "sip:bob@example.org",
				       &rule), REC_AUDIO_VIDEO);
	assert_string_equal(rule, "default");
	/* case-insensitive, From URI too */
	assert_int_equal(policy_decide(p, NULL, 0,
				       "SIP:Carol@SUPPORT.example.com", &rule),
			 REC_AUDIO);
	mem_deref(p);

	/* participants before the SRC: an AOR rule wins over an earlier
	 * rule that only the From URI matches */
	assert_int_equal(policy_alloc(&p, "sip:src@*=none\n"
				      "*@support.example.com=audio\n",
				      "audio+video"), 0);
	assert_int_equal(policy_decide(p, aors, 1, "sip:src@10.0.0.1",
				       &rule), REC_AUDIO);
	assert_int_equal(policy_decide(p, aors + 1, 1, "sip:src@10.0.0.1",
				       &rule), REC_NONE);
	assert_string_equal(rule, "sip:src@*");
	mem_deref(p);

	assert_int_equal(policy_alloc(&p, "nomedia\n", "audio"), EINVAL);
	assert_int_equal(policy_alloc(&p, "x=video\n", "audio"), EINVAL);
	assert_int_equal(policy_alloc(&p, "", "sometimes"), EINVAL);
}

static void test_port_blocks(void **state)
{
	struct rxports *p = NULL;
	uint16_t a, b, c;
	(void)state;

	assert_int_equal(rxports_alloc(&p, 40001, 40020), 0);
	assert_int_equal(rxports_free(p), 9);     /* 40002..40019 */
	assert_int_equal(rxports_get(p, 4, &a), 0);
	assert_int_equal(a, 40002);
	assert_int_equal(rxports_get(p, 4, &b), 0);
	assert_int_equal(b, 40010);
	assert_int_equal(rxports_get(p, 2, &c), ENOSPC);
	rxports_put(p, a, 4);
	/* first fit from the cursor: the freed block is found again */
	assert_int_equal(rxports_get(p, 3, &c), 0);
	assert_int_equal(c, 40002);
	assert_int_equal(rxports_free(p), 2);
	mem_deref(p);
}

/* A port of the range held by another program: the block holding it is
 * passed over, not handed out (the stream's bind would fail: a 500). */
static void test_port_blocks_busy(void **state)
{
	struct rxports *p = NULL;
	struct sa lo, taken;
	uint16_t first, b;
	int fd;
	(void)state;

	/* an even/odd pair from the kernel, then a range around it */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	sa_set_str(&lo, "127.0.0.1", 0);
	assert_int_equal(bind(fd, &lo.u.sa, lo.len), 0);
	taken.len = sizeof(taken.u);
	assert_int_equal(getsockname(fd, &taken.u.sa, &taken.len), 0);
	first = (uint16_t)(sa_port(&taken) & ~1u);
	assert_true(first > 1024 && first < 65000);

	assert_int_equal(rxports_alloc(&p, first, (uint16_t)(first + 9)), 0);
	rxports_probe(p, &lo);
	/* the first block would be first..first+3: it holds the taken port */
	assert_int_equal(rxports_get(p, 2, &b), 0);
	assert_true(b > sa_port(&taken));
	assert_true(rxports_busy(p) >= 1);   /* others may hold more */
	close(fd);
	mem_deref(p);
}

static char *load(const char *rel)
{
	char path[512];
	FILE *f;
	long n;
	char *buf;

	(void)snprintf(path, sizeof(path), "%s/%s", TALLY_TEST_DATA, rel);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

struct fixture {
	struct recd rd;
	struct rsess rs;
	struct mbuf *out;
};

static void fixture_init(struct fixture *fx)
{
	memset(fx, 0, sizeof(*fx));
	assert_int_equal(rxports_alloc(&fx->rd.ports, 40000, 40100), 0);
	assert_int_equal(sa_set_str(&fx->rd.media_addr, "127.0.0.1", 0), 0);
	fx->rs.rd = &fx->rd;
	fx->out = mbuf_alloc(2048);
}

static void fixture_close(struct fixture *fx)
{
	mem_deref(fx->out);
	mem_deref(fx->rd.ports);
}

/* The answer's text, NUL-terminated. */
static const char *text(struct fixture *fx)
{
	mbuf_write_u8(fx->out, 0);
	fx->out->end--;
	return (const char *)fx->out->buf;
}

static struct msdp *parse(const char *s)
{
	struct msdp *sdp = NULL;
	struct pl pl;
	const char *why = NULL;

	pl_set_str(&pl, s);
	assert_int_equal(msdp_parse(&sdp, &pl, &why), 0);
	return sdp;
}

static void test_answer_fig05_all(void **state)
{
	struct fixture fx;
	char *offer = load("siprec/rfc7866/fig05-src-sdp-offer-audio-video.sdp");
	struct msdp *sdp = parse(offer), *ans;
	const char *t;
	size_t i;
	(void)state;

	fixture_init(&fx);
	assert_int_equal(answer_make(&fx.rs, sdp, REC_AUDIO_VIDEO, fx.out), 0);
	t = text(&fx);
	ans = parse(t);
	/* RFC 7866 Figure 6: 4 m= lines, same order, recvonly, labels */
	assert_int_equal(ans->nmedia, 4);
	for (i = 0; i < 4; i++) {
		char label[4];

		assert_int_equal(ans->media[i].kind, sdp->media[i].kind);
		assert_int_equal(ans->media[i].dir, MSDP_DIR_RECVONLY);
		assert_int_equal(ans->media[i].port, 40000 + 2 * i);
		(void)snprintf(label, sizeof(label), "%zu", i + 1);
		assert_int_equal(pl_strcmp(&ans->media[i].label, label), 0);
		assert_true(fx.rs.sf.streams[i].accepted);
	}
	/* G.723 (pt 4) is not stored: only 0 and 8 answered */
	assert_int_equal(pl_strcmp(&ans->media[0].fmts, "0 8"), 0);
	assert_non_null(strstr(t, "a=fmtp:98 profile-level-id=42A01E;"
			       "sprop-parameter-sets=Z0IACpZTBYmI,aMljiA=="));
	assert_string_equal(fx.rs.sf.streams[1].codecs[0].name, "H264");
	assert_int_equal(fx.rs.sf.streams[1].codecs[0].clock, 90000);
	mem_deref(ans);
	mem_deref(sdp);
	free(offer);
	fixture_close(&fx);
}

static void test_answer_audio_only(void **state)
{
	struct fixture fx;
	char *offer = load("siprec/rfc7866/fig05-src-sdp-offer-audio-video.sdp");
	struct msdp *sdp = parse(offer), *ans;
	(void)state;

	fixture_init(&fx);
	assert_int_equal(answer_make(&fx.rs, sdp, REC_AUDIO, fx.out), 0);
	ans = parse(text(&fx));
	assert_int_equal(ans->nmedia, 4);
	assert_int_not_equal(ans->media[0].port, 0);
	assert_int_equal(ans->media[1].port, 0);
	assert_int_not_equal(ans->media[2].port, 0);
	assert_int_equal(ans->media[3].port, 0);
	assert_false(fx.rs.sf.streams[1].accepted);
	assert_string_equal(fx.rs.sf.streams[1].refused, "policy: audio only");
	mem_deref(ans);
	mem_deref(sdp);
	free(offer);
	fixture_close(&fx);
}

static void test_answer_reoffer(void **state)
{
	static const char *o1 =
		"v=0\r\no=SRC 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"
		"c=IN IP4 127.0.0.1\r\nt=0 0\r\n"
		"m=audio 5000 RTP/AVP 0\r\na=label:a\r\na=sendonly\r\n"
		"m=video 5002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
		"a=label:v\r\na=sendonly\r\n";
	static const char *o2 =     /* pause audio, video kept, new stream */
		"v=0\r\no=SRC 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"
		"c=IN IP4 127.0.0.1\r\nt=0 0\r\n"
		"m=audio 5000 RTP/AVP 0\r\na=label:a\r\na=inactive\r\n"
		"m=video 5002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
		"a=label:v\r\na=sendonly\r\n"
		"m=audio 5004 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
		"a=label:b\r\na=sendonly\r\n";
	struct fixture fx;
	struct msdp *sdp = parse(o1), *ans;
	uint16_t p0, p1;
	(void)state;

	fixture_init(&fx);
	assert_int_equal(answer_make(&fx.rs, sdp, REC_AUDIO_VIDEO, fx.out), 0);
	p0 = fx.rs.sf.streams[0].port;
	p1 = fx.rs.sf.streams[1].port;
	mem_deref(sdp);
	mbuf_reset(fx.out);

	sdp = parse(o2);
	assert_int_equal(answer_make(&fx.rs, sdp, REC_AUDIO_VIDEO, fx.out), 0);
	ans = parse(text(&fx));
	assert_int_equal(ans->nmedia, 3);
	assert_int_equal(ans->media[0].port, p0);     /* ports kept */
	assert_int_equal(ans->media[1].port, p1);
	assert_int_equal(ans->media[0].dir, MSDP_DIR_INACTIVE);
	assert_true(fx.rs.rs[0].paused);
	assert_false(fx.rs.rs[1].paused);
	assert_int_not_equal(ans->media[2].port, 0);  /* from a new block */
	assert_int_equal(fx.rs.nblocks, 2);
	assert_int_equal(fx.rs.sf.streams[2].ncodecs, 2);
	assert_string_equal(fx.rs.sf.streams[2].codecs[1].name,
			    "telephone-event");
	assert_int_equal(fx.rs.sdp_version, 2);
	mem_deref(ans);
	mem_deref(sdp);
	fixture_close(&fx);
}

static void test_answer_unsupported(void **state)
{
	static const char *o =
		"v=0\r\no=SRC 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"
		"c=IN IP4 127.0.0.1\r\nt=0 0\r\n"
		"m=audio 5000 RTP/AVP 18\r\na=label:g729\r\na=sendonly\r\n"
		"m=video 5002 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n"
		"a=fmtp:97 packetization-mode=2\r\na=label:v\r\na=sendonly\r\n"
		"m=application 5004 UDP/BFCP *\r\na=label:x\r\n"
		"m=audio 0 RTP/AVP 0\r\na=label:gone\r\n";
	struct fixture fx;
	struct msdp *sdp = parse(o), *ans;
	size_t i;
	(void)state;

	fixture_init(&fx);
	assert_int_equal(answer_make(&fx.rs, sdp, REC_AUDIO_VIDEO, fx.out), 0);
	ans = parse(text(&fx));
	assert_int_equal(ans->nmedia, 4);
	for (i = 0; i < 4; i++)
		assert_int_equal(ans->media[i].port, 0);
	assert_string_equal(fx.rs.sf.streams[0].refused, "no supported codec");
	assert_string_equal(fx.rs.sf.streams[1].refused, "no supported codec");
	assert_string_equal(fx.rs.sf.streams[2].refused, "not audio or video");
	assert_string_equal(fx.rs.sf.streams[3].refused, "offered with port 0");
	mem_deref(ans);
	mem_deref(sdp);
	fixture_close(&fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_rules),
		cmocka_unit_test(test_port_blocks),
		cmocka_unit_test(test_port_blocks_busy),
		cmocka_unit_test(test_answer_fig05_all),
		cmocka_unit_test(test_answer_audio_only),
		cmocka_unit_test(test_answer_reoffer),
		cmocka_unit_test(test_answer_unsupported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
