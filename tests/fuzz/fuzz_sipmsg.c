/*
 * fuzz_sipmsg.c: tally-sip's message path before any state is touched:
 * libre's decoder, then tally's request checks (sipcheck.c) on what decoded,
 * or the stateless 400 builder (sipbad.c) on what did not. Nothing may crash,
 * and every check must return a status with a reason or 0.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <re.h>
#include "sipcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int sipbad_reply(struct mbuf **mbp, const uint8_t *pkt, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sip_msg *msg = NULL;
	struct mbuf *mb;
	char unsup[128];
	const char *reason = NULL;

	if (size > 65536)
		return 0;
	mb = mbuf_alloc(size + 1);
	if (!mb)
		return 0;
	(void)mbuf_write_mem(mb, data, size);
	mb->pos = 0;
	if (!sip_msg_decode(&msg, mb)) {
		if (msg->req) {
			uint16_t sc = sipcheck_request(msg, unsup, sizeof(unsup),
						       &reason);
			if (sc && !reason)
				abort();
			if (sc && (sc < 400 || sc > 599))
				abort();
		}
	}
	else {
		struct mbuf *rep = NULL;
		if (!sipbad_reply(&rep, data, size)) {
			struct sip_msg *back = NULL;
			/* what we answer must itself be a decodable response */
			if (sip_msg_decode(&back, rep) == 0 && back->req)
				abort();
			mem_deref(back);
		}
		mem_deref(rep);
	}
	mem_deref(msg);
	mem_deref(mb);
	return 0;
}
