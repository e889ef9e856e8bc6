/*
 * test_sdp.c: unit tests for tally-media's transparent SDP model.
 *
 * The inputs are real SDPs captured from baresip, linphonec and sipp on
 * loopback plus hand-made edge cases (tests/data/sdp/README.md says which is
 * which). Every file is parsed, rewritten and re-parsed; the rewrite must
 * change only the lines it owns (o=, c=, m=, a=rtcp, a=rtcp-mux, direction,
 * ICE) and keep every other line byte for byte and in order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>
#include "sdp.h"

static const char *data_files[] = {
	"baresip-h264-offer.sdp", "baresip-h264-answer.sdp",
	"baresip-h264-mux-offer.sdp", "baresip-h264-mux-answer.sdp",
	"baresip-vp8-offer.sdp", "baresip-vp8-answer.sdp",
	"baresip-vp8-mux-offer.sdp", "baresip-vp8-mux-answer.sdp",
	"baresip-ice-vp8-offer.sdp", "baresip-ice-vp8-answer.sdp",
	"linphone-audio-offer.sdp", "linphone-av-offer.sdp",
	"linphone-video-rejected-answer.sdp",
	"sipp-uac-av-offer.sdp", "sipp-uas-answer.sdp",
	"hand-ipv6.sdp", "hand-port0-video.sdp", "hand-four-media.sdp",
	"hand-sess-dir-no-sess-c.sdp", "hand-ice-webrtc.sdp",
	"hand-lf-only.sdp",
};

static char *load(const char *name, struct pl *pl)
{
	char path[512];
	char *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/sdp/%s", TALLY_TEST_DATA, name);
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

	pl->p = buf;
	pl->l = (size_t)n;
	return buf;
}

static struct msdp *parse_file(const char *name)
{
	struct msdp *sdp = NULL;
	const char *why = NULL;
	struct pl pl;
	char *buf = load(name, &pl);
	int err;

	err = msdp_parse(&sdp, &pl, &why);
	if (err)
		fail_msg("%s: %d (%s)", name, err, why ? why : "-");
	free(buf);   /* the model keeps its own copy */
	return sdp;
}

static struct msdp *parse_str(const char *s)
{
	struct msdp *sdp = NULL;
	const char *why = NULL;
	struct pl pl;
	int err;

	pl_set_str(&pl, s);
	err = msdp_parse(&sdp, &pl, &why);
	if (err)
		fail_msg("parse: %d (%s)", err, why ? why : "-");
	return sdp;
}

static bool starts(const struct pl *l, const char *s)
{
	size_t n = strlen(s);

	return l->l >= n && !memcmp(l->p, s, n);
}

static bool is_dir_line(const struct pl *l)
{
	return !pl_strcmp(l, "a=sendrecv") || !pl_strcmp(l, "a=sendonly") ||
		!pl_strcmp(l, "a=recvonly") || !pl_strcmp(l, "a=inactive");
}

static bool is_ice_line(const struct pl *l)
{
	static const char *p[] = {
		"a=candidate:", "a=ice-ufrag:", "a=ice-pwd:", "a=ice-options:",
		"a=ice-lite", "a=ice-mismatch", "a=end-of-candidates",
		"a=remote-candidates:",
	};
	size_t i;

	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
		if (starts(l, p[i]))
			return true;
	}
	return false;
}

/* Lines the rewrite may change with RW; everything else must be identical. */
static bool owned(const struct pl *l, const struct msdp_rw *rw, bool mux)
{
	if (starts(l, "c=") || starts(l, "m=") || starts(l, "a=rtcp:"))
		return true;
	if (rw->replace_origin && starts(l, "o="))
		return true;
	if (rw->ice_remove && is_ice_line(l))
		return true;
	if (!mux && !pl_strcmp(l, "a=rtcp-mux"))
		return true;
	return is_dir_line(l);
}

/* Rewrite SDP with our ports 30000 + 10*i, check the result and return it. */
static struct msdp *rewrite_check(const struct msdp *sdp, const char *addr,
				  int af, bool mux, enum msdp_dir dir)
{
	struct msdp_rw_media rwm[MSDP_MAX_MEDIA];
	struct msdp_rw rw = {
		.addr = addr, .af = af, .ice_remove = true,
		.replace_origin = true, .media = rwm, .nmedia = sdp->nmedia,
	};
	struct mbuf *mb = mbuf_alloc(1024);
	struct msdp *out = NULL;
	const char *why = NULL;
	struct pl text;
	size_t i, j;

	for (i = 0; i < sdp->nmedia; i++) {
		rwm[i].port = (uint16_t)(30000 + 10 * i);
		rwm[i].rtcp_port = (uint16_t)(30001 + 10 * i);
		rwm[i].mux = mux;
		rwm[i].dir = dir;
		rwm[i].add_mux = false;
	}

	assert_int_equal(0, msdp_rewrite(mb, sdp, &rw));
	text.p = (const char *)mb->buf;
	text.l = mb->end;

	/* CRLF everywhere, no bare LF */
	for (i = 0; i < text.l; i++) {
		if (text.p[i] == '\n')
			assert_true(i > 0 && text.p[i - 1] == '\r');
	}

	if (msdp_parse(&out, &text, &why))
		fail_msg("rewritten SDP does not parse: %s\n%.*s", why,
			 (int)text.l, text.p);

	assert_int_equal(sdp->nmedia, out->nmedia);
	assert_int_equal(0, pl_strcmp(&out->origin_addr, addr));
	assert_int_equal(sdp->sess_version, out->sess_version);

	for (i = 0; i < sdp->nmedia; i++) {
		const struct msdp_media *a = &sdp->media[i], *b = &out->media[i];

		assert_int_equal(a->kind, b->kind);
		assert_int_equal(0, pl_cmp(&a->fmts, &b->fmts));
		assert_int_equal(0, pl_cmp(&a->label, &b->label));
		assert_int_equal(0, pl_cmp(&a->mid, &b->mid));

		if (!msdp_media_relayed(a)) {
			assert_int_equal(a->port, b->port);
			if (a->port)
				assert_int_equal(0, pl_cmp(&a->addr, &b->addr));
			continue;
		}

		assert_int_equal(rwm[i].port, b->port);
		assert_int_equal(1, b->nports);
		assert_int_equal(rwm[i].rtcp_port, b->rtcp_port);
		assert_int_equal(0, pl_strcmp(&b->addr, addr));
		assert_int_equal(af, b->af);
		assert_int_equal(mux && a->rtcp_mux, b->rtcp_mux);
		assert_int_equal(dir == MSDP_DIR_NONE ? a->dir : dir, b->dir);
	}

	/* all other lines identical and in the same order */
	for (i = 0, j = 0;; i++, j++) {
		while (i < sdp->nlines && owned(&sdp->lines[i], &rw, mux))
			++i;
		while (j < out->nlines && owned(&out->lines[j], &rw, mux))
			++j;
		if (i >= sdp->nlines || j >= out->nlines)
			break;
		if (pl_cmp(&sdp->lines[i], &out->lines[j]))
			fail_msg("line %zu '%.*s' became '%.*s'", i,
				 (int)sdp->lines[i].l, sdp->lines[i].p,
				 (int)out->lines[j].l, out->lines[j].p);
	}
	assert_true(i >= sdp->nlines && j >= out->nlines);

	for (j = 0; j < out->nlines; j++)
		assert_false(is_ice_line(&out->lines[j]));

	mem_deref(mb);
	return out;
}

static void test_all_files(void **state)
{
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(data_files) / sizeof(data_files[0]); i++) {
		struct msdp *sdp = parse_file(data_files[i]);

		assert_true(sdp->nmedia >= 1);
		mem_deref(rewrite_check(sdp, "192.0.2.1", AF_INET, true,
					MSDP_DIR_NONE));
		mem_deref(rewrite_check(sdp, "2001:db8::1", AF_INET6, false,
					MSDP_DIR_SENDONLY));
		mem_deref(rewrite_check(sdp, "127.0.0.1", AF_INET, false,
					MSDP_DIR_INACTIVE));
		mem_deref(sdp);
	}
}

static void test_baresip_h264(void **state)
{
	struct msdp *sdp = parse_file("baresip-h264-offer.sdp");
	const struct msdp_media *a = &sdp->media[0], *v = &sdp->media[1];
	(void)state;

	assert_int_equal(2, sdp->nmedia);
	assert_int_equal(6, sdp->session_count);
	assert_int_equal(0, pl_strcmp(&sdp->origin_addr, "127.0.0.1"));
	assert_int_equal(0, pl_strcmp(&sdp->sess_addr, "127.0.0.1"));
	assert_true(sdp->sess_version == 613451905);
	assert_int_equal(MSDP_DIR_NONE, sdp->sess_dir);

	assert_int_equal(MSDP_AUDIO, a->kind);
	assert_int_equal(42242, a->port);
	assert_int_equal(1, a->nports);
	assert_int_equal(0, pl_strcmp(&a->proto, "RTP/AVP"));
	assert_int_equal(0, pl_strcmp(&a->fmts, "0 101"));
	assert_int_equal(AF_INET, a->af);
	assert_int_equal(0, a->rtcp_port);
	assert_false(a->rtcp_mux);
	assert_int_equal(MSDP_DIR_SENDRECV, a->dir);
	assert_int_equal(0, pl_strcmp(&a->label, "1"));
	assert_int_equal(0, a->mid.l);
	assert_int_equal(6, a->line_first);
	assert_int_equal(10, a->line_count);

	assert_int_equal(MSDP_VIDEO, v->kind);
	assert_int_equal(42232, v->port);
	assert_int_equal(0, pl_strcmp(&v->fmts, "96"));
	assert_int_equal(0, pl_strcmp(&v->label, "2"));
	assert_int_equal(16, v->line_first);
	assert_int_equal(sdp->nlines, v->line_first + v->line_count);
	mem_deref(sdp);

	sdp = parse_file("baresip-vp8-mux-answer.sdp");
	assert_true(sdp->media[0].rtcp_mux && sdp->media[1].rtcp_mux);
	mem_deref(sdp);
}

static void test_rewrite_exact(void **state)
{
	static const char in[] =
		"v=0\r\n"
		"o=- 1 2 IN IP4 10.0.0.5\r\n"
		"s=-\r\n"
		"t=0 0\r\n"
		"a=ice-ufrag:abcd\r\n"
		"m=audio 4000 RTP/AVP 0\r\n"
		"i=voice\r\n"
		"a=rtpmap:0 PCMU/8000\r\n"
		"a=rtcp-mux\r\n"
		"a=candidate:1 1 UDP 1 10.0.0.5 4000 typ host\r\n"
		"a=rtcp:4001 IN IP4 10.0.0.5\r\n"
		"a=sendrecv\r\n"
		"c=IN IP4 10.0.0.5\r\n"
		"m=video 4002/2 RTP/AVP 96\r\n"
		"c=IN IP4 10.0.0.6\r\n"
		"a=rtpmap:96 VP8/90000\r\n";
	static const char want[] =
		"v=0\r\n"
		"o=- 1 2 IN IP4 192.0.2.1\r\n"
		"s=-\r\n"
		"t=0 0\r\n"
		"m=audio 30000 RTP/AVP 0\r\n"
		"i=voice\r\n"
		"a=rtpmap:0 PCMU/8000\r\n"
		"a=rtcp:30001\r\n"
		"a=sendonly\r\n"
		"c=IN IP4 192.0.2.1\r\n"
		"m=video 30002 RTP/AVP 96\r\n"
		"c=IN IP4 192.0.2.1\r\n"
		"a=rtpmap:96 VP8/90000\r\n"
		"a=rtcp:30003\r\n";
	struct msdp_rw_media rwm[2] = {
		{30000, 30001, false, MSDP_DIR_SENDONLY, false},
		{30002, 30003, false, MSDP_DIR_NONE, false},
	};
	struct msdp_rw rw = {"192.0.2.1", AF_INET, true, true, rwm, 2};
	struct msdp *sdp = parse_str(in);
	struct mbuf *mb = mbuf_alloc(512);
	(void)state;

	assert_int_equal(4001, sdp->media[0].rtcp_port);
	assert_int_equal(2, sdp->media[1].nports);
	assert_int_equal(0, msdp_rewrite(mb, sdp, &rw));
	assert_int_equal(strlen(want), mb->end);
	assert_memory_equal(want, mb->buf, mb->end);

	mem_deref(sdp);

	/* rtcp_port 0 drops a=rtcp; mux kept */
	sdp = parse_str("v=0\no=- 1 2 IN IP6 ::5\ns=-\nc=IN IP6 ::5\nt=0 0\n"
			"m=audio 4000 RTP/AVP 0\na=rtcp:4000\na=rtcp-mux\n");
	rwm[0].rtcp_port = 0;
	rwm[0].mux = true;
	rwm[0].dir = MSDP_DIR_NONE;
	rw.nmedia = 1;
	rw.addr = "::1";
	rw.af = AF_INET6;
	rw.replace_origin = false;
	mbuf_rewind(mb);
	assert_int_equal(0, msdp_rewrite(mb, sdp, &rw));
	assert_int_equal(0, memcmp(mb->buf,
		"v=0\r\no=- 1 2 IN IP6 ::5\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\n"
		"m=audio 30000 RTP/AVP 0\r\na=rtcp-mux\r\n", mb->end));

	/* nmedia mismatch and bad arguments */
	rw.nmedia = 2;
	assert_int_equal(EINVAL, msdp_rewrite(mb, sdp, &rw));
	rw.nmedia = 1;
	rw.af = 0;
	assert_int_equal(EINVAL, msdp_rewrite(mb, sdp, &rw));
	rw.af = AF_INET;
	rw.addr = NULL;
	assert_int_equal(EINVAL, msdp_rewrite(mb, sdp, &rw));
	assert_int_equal(EINVAL, msdp_rewrite(NULL, sdp, &rw));

	mem_deref(mb);
	mem_deref(sdp);
}

static void test_edge_files(void **state)
{
	struct msdp *sdp;
	const struct msdp_media *m;
	(void)state;

	sdp = parse_file("hand-ipv6.sdp");
	assert_int_equal(AF_INET6, sdp->media[0].af);
	assert_int_equal(0, pl_strcmp(&sdp->media[0].addr, "2001:db8::10"));
	assert_int_equal(49171, sdp->media[0].rtcp_port);
	assert_int_equal(0, pl_strcmp(&sdp->media[0].rtcp_addr,
				      "2001:db8::11"));
	assert_int_equal(0, sdp->media[1].rtcp_addr.l);
	assert_int_equal(0, pl_strcmp(&sdp->media[1].addr, "2001:db8::12"));
	assert_int_equal(MSDP_DIR_RECVONLY, sdp->media[1].dir);
	mem_deref(sdp);

	sdp = parse_file("hand-port0-video.sdp");
	assert_int_equal(0, sdp->media[1].port);
	assert_false(msdp_media_relayed(&sdp->media[1]));
	mem_deref(sdp);

	sdp = parse_file("hand-four-media.sdp");
	assert_int_equal(4, sdp->nmedia);
	m = sdp->media;
	assert_int_equal(2, m[0].nports);
	assert_int_equal(0, pl_strcmp(&m[0].mid, "1"));
	assert_int_equal(0, pl_strcmp(&m[0].label, "caller-audio"));
	assert_int_equal(0, pl_strcmp(&m[1].addr, "198.51.100.2"));
	assert_int_equal(4011, m[1].rtcp_port);
	assert_int_equal(0, pl_strcmp(&m[1].rtcp_addr, "198.51.100.3"));
	assert_int_equal(MSDP_DIR_SENDONLY, m[1].dir);
	assert_int_equal(MSDP_OTHER, m[2].kind);
	assert_int_equal(0, pl_strcmp(&m[2].media, "application"));
	assert_int_equal(0, pl_strcmp(&m[2].fmts, "*"));
	assert_false(msdp_media_relayed(&m[2]));
	assert_true(msdp_media_relayed(&m[1]));
	assert_int_equal(0, m[3].port);
	mem_deref(sdp);

	sdp = parse_file("hand-sess-dir-no-sess-c.sdp");
	assert_int_equal(MSDP_DIR_SENDONLY, sdp->sess_dir);
	assert_int_equal(0, sdp->sess_addr.l);
	assert_int_equal(MSDP_DIR_SENDONLY, sdp->media[0].dir);
	assert_int_equal(MSDP_DIR_INACTIVE, sdp->media[1].dir);
	assert_int_equal(0, pl_strcmp(&sdp->media[2].addr, "203.0.113.9"));
	mem_deref(sdp);

	sdp = parse_file("baresip-ice-vp8-offer.sdp");
	assert_int_equal(0, pl_strcmp(&sdp->media[0].addr, "192.0.2.2"));
	assert_true(sdp->media[0].rtcp_mux);
	mem_deref(sdp);

	sdp = parse_file("linphone-video-rejected-answer.sdp");
	assert_int_equal(0, sdp->media[1].port);
	assert_int_equal(MSDP_DIR_INACTIVE, sdp->media[1].dir);
	mem_deref(sdp);
}

/* The non-relayed BFCP section keeps flowing to its original address. */
static void test_other_pinned(void **state)
{
	struct msdp *sdp = parse_file("hand-four-media.sdp");
	struct msdp *out = rewrite_check(sdp, "192.0.2.1", AF_INET, true,
					 MSDP_DIR_NONE);
	(void)state;

	assert_int_equal(5000, out->media[2].port);
	assert_int_equal(0, pl_strcmp(&out->media[2].addr, "198.51.100.1"));
	assert_int_equal(0, pl_strcmp(&out->media[0].addr, "192.0.2.1"));
	assert_int_equal(0, pl_strcmp(&out->media[3].addr, "192.0.2.1"));
	mem_deref(out);
	mem_deref(sdp);
}

static bool has_line(const struct msdp *sdp, size_t mi, const char *s)
{
	const struct msdp_media *m = &sdp->media[mi];
	size_t i;

	for (i = m->line_first; i < m->line_first + m->line_count; i++) {
		if (!pl_strcmp(&sdp->lines[i], s))
			return true;
	}
	return false;
}

static void test_compose_offer(void **state)
{
	struct msdp *a = parse_file("baresip-h264-offer.sdp");
	struct msdp *b = parse_file("hand-ice-webrtc.sdp");
	struct msdp_pick picks[3] = {
		{a, 0, 40000, "a-audio"},
		{a, 1, 40002, "a-video"},
		{b, 1, 40004, "b-video"},
	};
	struct msdp_offer offer = {"192.0.2.1", AF_INET, 77, 3, picks, 3};
	struct mbuf *mb = mbuf_alloc(1024);
	struct msdp *out = NULL;
	const char *why;
	struct pl text;
	size_t i;
	(void)state;

	assert_int_equal(0, msdp_compose_offer(mb, &offer));
	text.p = (const char *)mb->buf;
	text.l = mb->end;
	assert_int_equal(0, msdp_parse(&out, &text, &why));

	assert_int_equal(3, out->nmedia);
	assert_true(out->sess_version == 3);
	assert_int_equal(0, pl_strcmp(&out->origin_addr, "192.0.2.1"));
	for (i = 0; i < 3; i++) {
		const struct msdp_media *m = &out->media[i];

		assert_int_equal(picks[i].port, m->port);
		assert_int_equal(picks[i].port + 1, m->rtcp_port);
		assert_int_equal(0, pl_strcmp(&m->label, picks[i].label));
		assert_int_equal(MSDP_DIR_SENDONLY, m->dir);
		assert_int_equal(0, pl_strcmp(&m->addr, "192.0.2.1"));
		assert_false(m->rtcp_mux);
		assert_int_equal(0, m->mid.l);
	}
	assert_int_equal(MSDP_AUDIO, out->media[0].kind);
	assert_int_equal(0, pl_strcmp(&out->media[0].fmts, "0 101"));
	assert_true(has_line(out, 0, "a=rtpmap:101 telephone-event/8000"));
	assert_true(has_line(out, 0, "a=fmtp:101 0-15"));
	assert_true(has_line(out, 0, "a=ptime:20"));
	assert_false(has_line(out, 0, "a=sendrecv"));
	assert_false(has_line(out, 0, "a=label:1"));
	assert_false(has_line(out, 0, "a=rtcp-rsize"));
	assert_true(has_line(out, 1, "a=fmtp:96 packetization-mode=0;"
			     "profile-level-id=42e01f"));
	assert_true(has_line(out, 1, "a=rtcp-fb:* nack pli"));
	assert_true(has_line(out, 1, "a=framerate:25.00"));
	/* WebRTC source: plain feedback profile, no ICE/DTLS */
	assert_int_equal(0, pl_strcmp(&out->media[2].proto, "RTP/AVPF"));
	assert_true(has_line(out, 2, "a=imageattr:120 send * recv *"));
	for (i = 0; i < out->nlines; i++) {
		assert_false(is_ice_line(&out->lines[i]));
		assert_false(starts(&out->lines[i], "a=setup"));
		assert_false(starts(&out->lines[i], "a=fingerprint"));
	}
	mem_deref(out);

	picks[1].index = 2;
	assert_int_equal(EINVAL, msdp_compose_offer(mb, &offer));
	picks[1].index = 1;
	picks[1].port = 65535;
	assert_int_equal(EINVAL, msdp_compose_offer(mb, &offer));
	offer.npicks = 0;
	assert_int_equal(EINVAL, msdp_compose_offer(mb, &offer));
	assert_int_equal(EINVAL, msdp_compose_offer(mb, NULL));

	mem_deref(mb);
	mem_deref(a);
	mem_deref(b);
}

#define HDR "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n"

static void test_malformed(void **state)
{
	static const struct {
		const char *sdp;
		const char *why;
	} bad[] = {
		{"", "empty"},
		{"\r\n\n", "empty"},
		{"o=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n", "v="},
		{"v=0\r\ns=-\r\n", "o="},
		{"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n", "s="},
		{HDR "garbage\r\n", "letter"},
		{HDR "=x\r\n", "letter"},
		{HDR "a\r\n", "letter"},
		{HDR "1=x\r\n", "letter"},
		{"v=0\r\no=- 1 IN IP4 1.2.3.4\r\ns=-\r\n", "o="},
		{"v=0\r\no=- 1 x IN IP4 1.2.3.4\r\ns=-\r\n", "o="},
		{"v=0\r\no=- 1 1 IN IP4 a b\r\ns=-\r\n", "o="},
		{HDR "o=- 1 1 IN IP4 1.2.3.4\r\n", "o="},
		{HDR "c=IN IP4\r\n", "c="},
		{HDR "c=IN IP4 1.2.3.4 x\r\n", "c="},
		{HDR "c=XX IP4 1.2.3.4\r\n", "c="},
		{HDR "c=IN IP5 1.2.3.4\r\n", "c="},
		{HDR "c=IN IP4 /12\r\n", "c="},
		{HDR "c=\r\n", "c="},
		{HDR "m=\r\n", "m="},
		{HDR "m=audio\r\n", "without port"},
		{HDR "c=IN IP4 1.1.1.1\r\nm=audio x RTP/AVP 0\r\n", "port"},
		{HDR "c=IN IP4 1.1.1.1\r\nm=audio -1 RTP/AVP 0\r\n", "port"},
		{HDR "c=IN IP4 1.1.1.1\r\nm=audio 65536 RTP/AVP 0\r\n",
		 "65535"},
		{HDR "c=IN IP4 1.1.1.1\r\nm=audio 99999999999999999999 RTP/AVP 0"
		 "\r\n", "port"},
		{HDR "c=IN IP4 1.1.1.1\r\nm=audio 4000/0 RTP/AVP 0\r\n", "count"},
		{HDR "c=IN IP4 1.1.1.1\r\nm=audio 4000/ RTP/AVP 0\r\n", "count"},
		{HDR "c=IN IP4 1.1.1.1\r\nm=audio 4000\r\n", "proto"},
		{HDR "m=audio 4000 RTP/AVP 0\r\n", "connection address"},
		{HDR "m=audio 4000 RTP/AVP 0\r\nm=video 0 RTP/AVP 0\r\n"
		 "c=IN IP4 1.1.1.1\r\n", "connection address"},
		{HDR "c=IN IP4 1.1.1.1\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:\r\n",
		 "rtcp"},
		{HDR "c=IN IP4 1.1.1.1\r\nm=audio 4000 RTP/AVP 0\r\n"
		 "a=rtcp:70000\r\n", "65535"},
		{HDR "c=IN IP4 1.1.1.1\r\nm=audio 4000 RTP/AVP 0\r\n"
		 "a=rtcp:x IN IP4 1.1.1.1\r\n", "rtcp"},
		{HDR "c=IN IP4 1.1.1.1\r\nm=audio 4000 RTP/AVP 0\r\n"
		 "c=IN IP4\r\n", "c="},
	};
	struct msdp *sdp;
	const char *why;
	struct pl pl;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sdp = NULL;
		why = NULL;
		pl_set_str(&pl, bad[i].sdp);
		if (EBADMSG != msdp_parse(&sdp, &pl, &why))
			fail_msg("case %zu not rejected: %s", i, bad[i].sdp);
		assert_null(sdp);
		assert_non_null(why);
		if (!strstr(why, bad[i].why))
			fail_msg("case %zu: reason '%s', want '%s'", i, why,
				 bad[i].why);
	}

	/* NULL why is allowed */
	pl_set_str(&pl, "x");
	assert_int_equal(EBADMSG, msdp_parse(&sdp, &pl, NULL));
	assert_int_equal(EINVAL, msdp_parse(NULL, &pl, &why));
	assert_int_equal(EINVAL, msdp_parse(&sdp, NULL, &why));
}

static void test_limits(void **state)
{
	struct mbuf *mb = mbuf_alloc(MSDP_MAX_SIZE + 64);
	struct msdp *sdp = NULL;
	const char *why = NULL;
	struct pl pl;
	size_t i;
	(void)state;

	/* MSDP_MAX_MEDIA m= lines parse, one more does not */
	mbuf_write_str(mb, HDR "c=IN IP4 1.1.1.1\r\n");
	for (i = 0; i < MSDP_MAX_MEDIA; i++)
		mbuf_printf(mb, "m=audio %zu RTP/AVP 0\r\n", 2000 + 2 * i);
	pl.p = (const char *)mb->buf;
	pl.l = mb->end;
	assert_int_equal(0, msdp_parse(&sdp, &pl, &why));
	assert_int_equal(MSDP_MAX_MEDIA, sdp->nmedia);
	sdp = mem_deref(sdp);
	mbuf_write_str(mb, "m=audio 0 RTP/AVP 0\r\n");
	pl.l = mb->end;
	assert_int_equal(EBADMSG, msdp_parse(&sdp, &pl, &why));
	assert_non_null(strstr(why, "more than 16 m= lines"));

	/* too many lines */
	mbuf_rewind(mb);
	mbuf_write_str(mb, HDR);
	for (i = 0; i < MSDP_MAX_LINES; i++)
		mbuf_write_str(mb, "a=x\n");
	pl.p = (const char *)mb->buf;
	pl.l = mb->end;
	assert_int_equal(EBADMSG, msdp_parse(&sdp, &pl, &why));
	assert_non_null(strstr(why, "MAX_LINES"));

	/* too big */
	mbuf_rewind(mb);
	mbuf_write_str(mb, HDR);
	while (mb->end <= MSDP_MAX_SIZE)
		mbuf_write_str(mb, "a=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
	pl.p = (const char *)mb->buf;
	pl.l = mb->end;
	assert_int_equal(EBADMSG, msdp_parse(&sdp, &pl, &why));
	assert_non_null(strstr(why, "MAX_SIZE"));

	mem_deref(mb);
}

static void test_dir_name(void **state)
{
	(void)state;

	assert_null(msdp_dir_name(MSDP_DIR_NONE));
	assert_string_equal("sendrecv", msdp_dir_name(MSDP_DIR_SENDRECV));
	assert_string_equal("sendonly", msdp_dir_name(MSDP_DIR_SENDONLY));
	assert_string_equal("recvonly", msdp_dir_name(MSDP_DIR_RECVONLY));
	assert_string_equal("inactive", msdp_dir_name(MSDP_DIR_INACTIVE));
	assert_null(msdp_dir_name((enum msdp_dir)99));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_files),
		cmocka_unit_test(test_baresip_h264),
		cmocka_unit_test(test_rewrite_exact),
		cmocka_unit_test(test_edge_files),
		cmocka_unit_test(test_other_pinned),
		cmocka_unit_test(test_compose_offer),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_dir_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
