/*
 * test_pcapread.c: the capture reader (src/recorder/pcapread.c) on pcap
 * files built byte by byte in a temporary folder.
 *
 * Covered: both byte orders, microsecond and nanosecond magic; link types
 * Ethernet (with an 802.1Q tag), raw IP (101 and BSD's 12), Linux cooked
 * v1 (113) and v2 (276), BSD loopback (0); IPv4 and IPv6 (with a
 * hop-by-hop header) UDP, addresses, ports, payload and time; what is
 * skipped and counted (TCP, ARP, IPv4 fragments, an IPv6 fragment header,
 * a UDP length past the packet, frames cut by the snap length); a
 * truncated last record (in its header and in its data) ends the capture
 * quietly; a damaged record header stops reading (corrupt) keeping what
 * came before; an empty or header-only file is an empty capture; not a
 * pcap, pcapng, an unknown link type: EBADMSG; a missing file: ENOENT;
 * rewind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <cmocka.h>
#include "pcapread.h"

struct fix {
	char dir[64];
	char path[128];
	uint8_t buf[1 << 16];
	size_t len;
	bool swap;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/tally-pcapread-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/media.pcap", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	unlink(f->path);
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* --- building captures --- */

static void put(struct fix *f, const void *p, size_t n)
{
	assert_true(f->len + n <= sizeof(f->buf));
	memcpy(f->buf + f->len, p, n);
	f->len += n;
}

static void put32(struct fix *f, uint32_t v)
{
	if (f->swap)
		v = __builtin_bswap32(v);
	put(f, &v, 4);
}

static void put16(struct fix *f, uint16_t v)
{
	if (f->swap)
		v = __builtin_bswap16(v);
	put(f, &v, 2);
}

static void ghdr(struct fix *f, uint32_t magic, bool swap, uint32_t lt)
{
	f->len = 0;
	f->swap = swap;
	put32(f, magic);
	put16(f, 2);
	put16(f, 4);
	put32(f, 0);
	put32(f, 0);
	put32(f, 65535);
	put32(f, lt);
}

static void record(struct fix *f, uint32_t sec, uint32_t frac,
		   const uint8_t *frame, size_t n)
{
	put32(f, sec);
	put32(f, frac);
	put32(f, (uint32_t)n);
	put32(f, (uint32_t)n);
	put(f, frame, n);
}

static void save(const struct fix *f)
{
	FILE *fp = fopen(f->path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(f->buf, 1, f->len, fp), f->len);
	assert_int_equal(fclose(fp), 0);
}

static size_t udp(uint8_t *p, uint16_t sp, uint16_t dp, const char *data)
{
	size_t n = strlen(data);
	uint16_t v;

	v = htons(sp);
	memcpy(p, &v, 2);
	v = htons(dp);
	memcpy(p + 2, &v, 2);
	v = htons((uint16_t)(8 + n));
	memcpy(p + 4, &v, 2);
	memset(p + 6, 0, 2);
	memcpy(p + 8, data, n);
	return 8 + n;
}

/* IPv4 + UDP at P; PROTO 17 normally; FRAG the flags/offset field. */
static size_t ip4(uint8_t *p, uint8_t proto, uint16_t frag, uint16_t sp,
		  uint16_t dp, const char *data)
{
	size_t n = udp(p + 20, sp, dp, data);
	uint16_t v;

	memset(p, 0, 20);
	p[0] = 0x45;
	v = htons((uint16_t)(20 + n));
	memcpy(p + 2, &v, 2);
	v = htons(frag);
	memcpy(p + 6, &v, 2);
	p[8] = 64;
	p[9] = proto;
	p[12] = 192; p[13] = 0; p[14] = 2; p[15] = 1;
	p[16] = 127; p[17] = 0; p[18] = 0; p[19] = 1;
	return 20 + n;
}

/* IPv6 + UDP, with a hop-by-hop header if HBH; NH overrides the first
 * next header (44: a fragment header). */
static size_t ip6(uint8_t *p, bool hbh, uint8_t nh, uint16_t sp,
		  uint16_t dp, const char *data)
{
	size_t off = hbh ? 48 : 40, n;
	uint16_t v;

	memset(p, 0, off);
	p[0] = 0x60;
	p[6] = nh ? nh : hbh ? 0 : 17;
	p[7] = 64;
	p[23] = 1;                     /* ::1 */
	p[24] = 0x20; p[25] = 0x01; p[26] = 0x0d; p[27] = 0xb8;
	p[39] = 7;                     /* 2001:db8::7 */
	if (hbh) {
		p[40] = nh == 44 ? 44 : 17;
		p[41] = 0;
	}
	n = udp(p + off, sp, dp, data);
	v = htons((uint16_t)(off - 40 + n));
	memcpy(p + 4, &v, 2);
	return off + n;
}

static size_t eth(uint8_t *p, uint16_t type, bool vlan)
{
	uint16_t v;

	memset(p, 0, 12);
	if (vlan) {
		v = htons(0x8100);
		memcpy(p + 12, &v, 2);
		v = htons(42);
		memcpy(p + 14, &v, 2);
		v = htons(type);
		memcpy(p + 16, &v, 2);
		return 18;
	}
	v = htons(type);
	memcpy(p + 12, &v, 2);
	return 14;
}

static void expect(struct pcapr *r, int64_t t, int fam, uint16_t sp,
		   uint16_t dp, const char *data)
{
	struct pcapr_pkt pk;

	assert_int_equal(pcapr_next(r, &pk), 0);
	assert_true(pk.time_us == t);
	assert_int_equal(pk.family, fam);
	assert_int_equal(pk.sport, sp);
	assert_int_equal(pk.dport, dp);
	assert_int_equal(pk.len, strlen(data));
	assert_memory_equal(pk.data, data, pk.len);
	if (fam == AF_INET) {
		assert_memory_equal(pk.src, "\xc0\x00\x02\x01", 4);
		assert_memory_equal(pk.dst, "\x7f\x00\x00\x01", 4);
	}
	else {
		assert_int_equal(pk.src[15], 1);
		assert_int_equal(pk.dst[0], 0x20);
		assert_int_equal(pk.dst[15], 7);
	}
}

static void expect_end(struct pcapr *r)
{
	struct pcapr_pkt pk;

	assert_int_equal(pcapr_next(r, &pk), ENOENT);
	assert_int_equal(pcapr_next(r, &pk), ENOENT);
}

/* --- tests --- */

static void test_ethernet_both_orders(void **state)
{
	struct fix *f = *state;
	uint8_t fr[256];
	struct pcapr *r;
	size_t n;
	int sw;

	for (sw = 0; sw < 2; sw++) {
		ghdr(f, 0xa1b2c3d4, sw, 1);
		n = eth(fr, 0x0800, false);
		n += ip4(fr + n, 17, 0x4000, 5004, 40000, "rtp-one");
		record(f, 1764109800, 123456, fr, n);
		n = eth(fr, 0x86dd, true);
		n += ip6(fr + n, false, 0, 5006, 40002, "rtp-two");
		record(f, 1764109800, 999999, fr, n);
		save(f);

		assert_int_equal(pcapr_open(&r, f->path), 0);
		assert_int_equal(pcapr_linktype(r), 1);
		expect(r, 1764109800123456LL, AF_INET, 5004, 40000, "rtp-one");
		expect(r, 1764109800999999LL, AF_INET6, 5006, 40002,
		       "rtp-two");
		expect_end(r);
		assert_int_equal(pcapr_stats(r)->records, 2);
		assert_int_equal(pcapr_stats(r)->udp, 2);
		assert_false(pcapr_stats(r)->truncated);

		/* a second pass */
		pcapr_rewind(r);
		expect(r, 1764109800123456LL, AF_INET, 5004, 40000, "rtp-one");
		pcapr_free(r);
	}
}

static void test_nanoseconds(void **state)
{
	struct fix *f = *state;
	uint8_t fr[256];
	struct pcapr *r;
	size_t n;

	ghdr(f, 0xa1b23c4d, true, 101);
	n = ip4(fr, 17, 0, 1, 2, "ns");
	record(f, 10, 123456789, fr, n);
	save(f);
	assert_int_equal(pcapr_open(&r, f->path), 0);
	expect(r, 10123456LL, AF_INET, 1, 2, "ns");
	expect_end(r);
	pcapr_free(r);
}

static void test_linktypes(void **state)
{
	struct fix *f = *state;
	uint8_t fr[256];
	struct pcapr *r;
	uint16_t v;
	uint32_t fam;
	size_t n;

	/* raw IP, both numbers; IPv6 with a hop-by-hop header */
	ghdr(f, 0xa1b2c3d4, false, 12);
	n = ip6(fr, true, 0, 7, 8, "raw6");
	record(f, 1, 0, fr, n);
	n = ip4(fr, 17, 0, 9, 10, "raw4");
	record(f, 1, 1, fr, n);
	save(f);
	assert_int_equal(pcapr_open(&r, f->path), 0);
	expect(r, 1000000, AF_INET6, 7, 8, "raw6");
	expect(r, 1000001, AF_INET, 9, 10, "raw4");
	expect_end(r);
	pcapr_free(r);

	/* Linux cooked v1: protocol at 14 */
	ghdr(f, 0xa1b2c3d4, false, 113);
	memset(fr, 0, 16);
	v = htons(0x0800);
	memcpy(fr + 14, &v, 2);
	n = 16 + ip4(fr + 16, 17, 0, 11, 12, "sll");
	record(f, 2, 0, fr, n);
	save(f);
	assert_int_equal(pcapr_open(&r, f->path), 0);
	expect(r, 2000000, AF_INET, 11, 12, "sll");
	expect_end(r);
	pcapr_free(r);

	/* Linux cooked v2: protocol at 0 */
	ghdr(f, 0xa1b2c3d4, true, 276);
	memset(fr, 0, 20);
	v = htons(0x86dd);
	memcpy(fr, &v, 2);
	n = 20 + ip6(fr + 20, false, 0, 13, 14, "sll2");
	record(f, 3, 0, fr, n);
	save(f);
	assert_int_equal(pcapr_open(&r, f->path), 0);
	expect(r, 3000000, AF_INET6, 13, 14, "sll2");
	expect_end(r);
	pcapr_free(r);

	/* BSD loopback: the family in host order */
	ghdr(f, 0xa1b2c3d4, false, 0);
	fam = 2;
	memcpy(fr, &fam, 4);
	n = 4 + ip4(fr + 4, 17, 0, 15, 16, "null");
	record(f, 4, 0, fr, n);
	save(f);
	assert_int_equal(pcapr_open(&r, f->path), 0);
	expect(r, 4000000, AF_INET, 15, 16, "null");
	expect_end(r);
	pcapr_free(r);
}

static void test_skipped(void **state)
{
	struct fix *f = *state;
	uint8_t fr[256];
	struct pcapr *r;
	size_t n, e;

	ghdr(f, 0xa1b2c3d4, false, 1);
	e = eth(fr, 0x0800, false);
	n = e + ip4(fr + e, 6, 0, 1, 2, "tcp");               /* TCP */
	record(f, 1, 0, fr, n);
	n = e + ip4(fr + e, 17, 0x2000, 1, 2, "frag-first");  /* MF */
	record(f, 1, 1, fr, n);
	n = e + ip4(fr + e, 17, 0x0010, 1, 2, "frag-later");  /* offset */
	record(f, 1, 2, fr, n);
	n = e + ip4(fr + e, 17, 0, 1, 2, "udp-len");
	fr[e + 20 + 5] = 200;                           /* UDP length */
	record(f, 1, 3, fr, n);
	n = e + ip4(fr + e, 17, 0, 1, 2, "snapped");
	record(f, 1, 4, fr, n - 3);                     /* cut short */
	e = eth(fr, 0x0806, false);                     /* ARP */
	record(f, 1, 5, fr, e + 28);
	e = eth(fr, 0x86dd, false);
	n = e + ip6(fr + e, true, 44, 1, 2, "v6-frag");
	record(f, 1, 6, fr, n);
	e = eth(fr, 0x0800, false);
	n = e + ip4(fr + e, 17, 0x4000, 3, 4, "good");  /* DF is fine */
	record(f, 1, 7, fr, n);
	save(f);

	assert_int_equal(pcapr_open(&r, f->path), 0);
	expect(r, 1000007, AF_INET, 3, 4, "good");
	expect_end(r);
	assert_int_equal(pcapr_stats(r)->records, 8);
	assert_int_equal(pcapr_stats(r)->skipped, 7);
	assert_int_equal(pcapr_stats(r)->udp, 1);
	pcapr_free(r);
}

static void test_truncated(void **state)
{
	struct fix *f = *state;
	uint8_t fr[256];
	struct pcapr *r;
	size_t n, full, cut;

	ghdr(f, 0xa1b2c3d4, false, 1);
	n = eth(fr, 0x0800, false);
	n += ip4(fr + n, 17, 0, 1, 2, "first");
	record(f, 1, 0, fr, n);
	full = f->len + 16 + n;
	record(f, 2, 0, fr, n);

	/* cut in the data, then in the record header */
	for (cut = full - 1; cut > full - 16 - n; cut -= n) {
		f->len = cut;
		save(f);
		assert_int_equal(pcapr_open(&r, f->path), 0);
		expect(r, 1000000, AF_INET, 1, 2, "first");
		expect_end(r);
		assert_true(pcapr_stats(r)->truncated);
		assert_false(pcapr_stats(r)->corrupt);
		assert_int_equal(pcapr_stats(r)->records, 1);
		pcapr_free(r);
	}
}

static void test_corrupt(void **state)
{
	struct fix *f = *state;
	uint8_t fr[256];
	struct pcapr *r;
	size_t n;

	ghdr(f, 0xa1b2c3d4, false, 1);
	n = eth(fr, 0x0800, false);
	n += ip4(fr + n, 17, 0, 1, 2, "kept");
	record(f, 1, 0, fr, n);
	put32(f, 2);
	put32(f, 0);
	put32(f, 0x7fffffff);      /* absurd length */
	put32(f, 0x7fffffff);
	put(f, fr, n);
	save(f);

	assert_int_equal(pcapr_open(&r, f->path), 0);
	expect(r, 1000000, AF_INET, 1, 2, "kept");
	expect_end(r);
	assert_true(pcapr_stats(r)->corrupt);
	pcapr_free(r);

	/* microseconds past a second */
	ghdr(f, 0xa1b2c3d4, false, 1);
	record(f, 1, 1000000, fr, n);
	save(f);
	assert_int_equal(pcapr_open(&r, f->path), 0);
	expect_end(r);
	assert_true(pcapr_stats(r)->corrupt);
	pcapr_free(r);
}

static void test_bad_files(void **state)
{
	struct fix *f = *state;
	struct pcapr *r = NULL;
	struct pcapr_pkt pk;
	static const uint8_t ng[] = {0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0};

	assert_int_equal(pcapr_open(&r, f->path), ENOENT);

	/* empty, and a header only: empty captures */
	f->len = 0;
	save(f);
	assert_int_equal(pcapr_open(&r, f->path), 0);
	assert_int_equal(pcapr_next(r, &pk), ENOENT);
	pcapr_free(r);
	ghdr(f, 0xa1b2c3d4, false, 1);
	save(f);
	assert_int_equal(pcapr_open(&r, f->path), 0);
	assert_int_equal(pcapr_next(r, &pk), ENOENT);
	assert_int_equal(pcapr_stats(r)->records, 0);
	pcapr_free(r);

	/* pcapng, garbage, a link type we do not read */
	f->len = 0;
	put(f, ng, sizeof(ng));
	put(f, "0123456789abcdef0123456789", 26);
	save(f);
	assert_int_equal(pcapr_open(&r, f->path), EBADMSG);
	ghdr(f, 0xa1b2c3d4, false, 105);      /* 802.11 */
	save(f);
	assert_int_equal(pcapr_open(&r, f->path), EBADMSG);

	assert_int_equal(pcapr_open(&r, f->dir), EBADMSG);   /* a folder */
	assert_int_equal(pcapr_open(NULL, f->path), EINVAL);
	assert_int_equal(pcapr_next(NULL, &pk), EINVAL);
	pcapr_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ethernet_both_orders,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_nanoseconds, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_linktypes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_files, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
