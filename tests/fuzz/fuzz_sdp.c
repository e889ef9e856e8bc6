/*
 * fuzz_sdp.c: libFuzzer harness for tally-media's SDP model.
 *
 * Parses the input; on success rewrites it (IPv4 and IPv6, mux kept and
 * dropped, with and without a forced direction) and composes a recorder
 * offer from every m= section. A rewritten SDP must parse again with the
 * same number of m= sections, and so must the composed offer.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void reparse(const struct mbuf *mb, size_t nmedia)
{
	struct msdp *sdp = NULL;
	const char *why = NULL;
	struct pl pl;

	pl.p = (const char *)mb->buf;
	pl.l = mb->end;

	if (pl.l > MSDP_MAX_SIZE)
		return;   /* growth by rewriting may pass the input limit */

	if (msdp_parse(&sdp, &pl, &why)) {
		if (why && (strstr(why, "MAX_LINES")))
			return;
		abort();
	}

	if (sdp->nmedia != nmedia)
		abort();

	mem_deref(sdp);
}

static void rewrite(const struct msdp *sdp, int variant)
{
	struct msdp_rw_media rwm[MSDP_MAX_MEDIA];
	struct msdp_rw rw = {
		.addr = variant & 1 ? "2001:db8::1" : "192.0.2.1",
		.af = variant & 1 ? AF_INET6 : AF_INET,
		.ice_remove = variant & 2,
		.replace_origin = variant & 4,
		.media = rwm,
		.nmedia = sdp->nmedia,
	};
	struct mbuf *mb = mbuf_alloc(1024);
	size_t i;

	if (!mb)
		return;

	for (i = 0; i < sdp->nmedia; i++) {
		rwm[i].port = (uint16_t)(30000 + 2 * i);
		rwm[i].rtcp_port = variant & 8 ? 0 : (uint16_t)(30001 + 2 * i);
		rwm[i].mux = variant & 2;
		rwm[i].dir = (enum msdp_dir)((variant + i) % 5);
		rwm[i].add_mux = (variant & 6) == 6;
	}

	if (msdp_rewrite(mb, sdp, &rw))
		abort();

	reparse(mb, sdp->nmedia);
	mem_deref(mb);
}

static void compose(const struct msdp *sdp)
{
	struct msdp_pick picks[MSDP_MAX_MEDIA];
	struct msdp_offer offer = {
		.addr = "127.0.0.1", .af = AF_INET, .sess_id = 1,
		.sess_version = 2, .picks = picks, .npicks = sdp->nmedia,
	};
	struct mbuf *mb;
	size_t i;

	if (!sdp->nmedia)
		return;

	mb = mbuf_alloc(1024);
	if (!mb)
		return;

	for (i = 0; i < sdp->nmedia; i++) {
		picks[i].sdp = sdp;
		picks[i].index = i;
		picks[i].port = (uint16_t)(40000 + 2 * i);
		picks[i].label = i % 2 ? "x" : NULL;
	}

	if (msdp_compose_offer(mb, &offer))
		abort();

	reparse(mb, sdp->nmedia);
	mem_deref(mb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msdp *sdp = NULL;
	const char *why = NULL;
	struct pl pl = {(const char *)data, size};
	int variant;

	if (msdp_parse(&sdp, &pl, &why)) {
		if (!why)
			abort();   /* every rejection names its reason */
		return 0;
	}

	for (variant = 0; variant < 16; variant += 3)
		rewrite(sdp, variant);

	compose(sdp);
	mem_deref(sdp);
	return 0;
}
