/*
 * fuzz_sipdecode.c: sipdecode.c's wrapper around libre's SIP decoder, fed
 * as libre's transports feed it: the first byte picks a datagram (marked
 * as the UDP helper marks it) or a stream, which is decoded message after
 * message the way libre's TCP transport does (Content-Length ends the
 * body, what follows is kept). Nothing may crash, a stand-in's body must
 * lie inside the buffer and be as long as its Content-Length, and a stream
 * must always move forward.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <re.h>
#include "sipcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_standin(const struct sip_msg *msg, const struct mbuf *mb)
{
	if (pl_strcmp(&msg->met, "TALLY-MALFORMED"))
		return;
	if (msg->mb != mb || !msg->clen.p)
		abort();
	if (mb->pos + pl_u32(&msg->clen) > mb->end)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbuf *mb;
	bool dgram;
	int rounds = 0;

	if (size < 1 || size > 70000)
		return 0;
	dgram = data[0] & 1;
	mb = mbuf_alloc(size);
	if (!mb)
		return 0;
	(void)mbuf_write_mem(mb, data + 1, size - 1);
	mb->pos = 0;

	while (mbuf_get_left(mb) >= 2 && rounds++ < 64) {
		struct sip_msg *msg = NULL;
		size_t pos = mb->pos, end = mb->end;
		uint32_t clen;

		if (dgram)
			sipdecode_datagram(mb);
		if (sip_msg_decode(&msg, mb))
			break;
		check_standin(msg, mb);
		if (dgram || !msg->clen.p) {
			mem_deref(msg);
			break;
		}
		clen = pl_u32(&msg->clen);
		if (mbuf_get_left(mb) < clen) {
			mem_deref(msg);
			break;                  /* libre would wait for more */
		}
		msg->mb->end = msg->mb->pos + clen;  /* as libre does */
		mem_deref(msg);
		if (mb->end <= pos)
			abort();                /* no progress */
		/* what follows this message */
		mb->pos = mb->end;
		mb->end = end;
	}
	mem_deref(mb);
	return 0;
}
