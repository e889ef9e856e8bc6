/*
 * wsguard.c: every WebSocket frame header a client sends is checked here,
 * before libre's frame decoder sees a byte of it.
 *
 * Why: libre 1.1.0's websock_decode() tests a masked frame's length with
 * `mbuf_get_left(mb) < 4 + hdr->len`; a 64-bit length of 2^64-4 .. 2^64-1
 * wraps that sum to 0..3, the test passes, and the unmask loop writes
 * len bytes past the buffer (heap overflow, reached by any client holding
 * the API token; issue 10, defect 6). Upstream fixed the test in baresip/re
 * commit 718b926 (#1584, release v4.8.1), which Debian's libre 1.1.0 does
 * not have; even fixed, libre would buffer up to 128 KiB waiting for a
 * frame that claims to be larger. So tally frames the stream itself, in a
 * TCP helper (tcp_register_helper) that runs before the receive handler
 * libre's websock set on the connection, and refuses what RFC 6455 5.2
 * forbids and what is bigger than the events API needs.
 *
 * The helper follows the frame boundaries through the byte stream: it
 * collects a header (2 to 14 bytes, possibly split across reads), checks
 * it, then counts the payload bytes off without looking at them:
 *
 *   82 fe 00 10 <mask 4> <16 bytes>    binary, 16 bytes, masked: passed on
 *   82 ff ff..ff <mask 4> ...          length 2^64-1: 1009, connection cut
 *   82 ff 00 00 00 00 00 01 18 00 ...  70 KiB > WSGUARD frame_max: 1009
 *   02 10 ...                          unmasked client frame: 1002
 *   89 fe 00 80 ...                    ping with 128 bytes (> 125): 1002
 *
 * Refused: RSV bits set (no extension is negotiated), an unknown opcode, a
 * client frame without a mask (RFC 6455 5.1), a 64-bit length with its top
 * bit set, a control frame that is fragmented or longer than 125 bytes
 * (1002 Protocol Error), and a payload longer than frame_max (1009 Message
 * Too Big). The owner's refuse handler runs first (to count, log and send
 * the close frame), then the helper fails the read, and libre closes the
 * TCP connection at once: websock's close handler runs with the errno.
 *
 * Ownership: the guard holds the helper and a reference to the TCP
 * connection, so the helper is always taken off a live connection (libre
 * frees a connection's helpers with it). When the guard goes, the
 * connection's receive handler is replaced by one that drops everything:
 * a websock connection its owner let go of lingers up to 10 s in libre
 * (closing handshake) and would otherwise decode frames unguarded.
 */
#include <errno.h>
#include <string.h>
#include "log.h"
#include "api.h"

/* Above a TLS helper (libre's http uses layer 0), so it would see
 * plaintext should the API ever be served over TLS. */
enum { WSGUARD_LAYER = 100, HDR_MAX = 14 };

struct wsguard {
	struct tcp_helper *th;        /* ours, on tc */
	struct tcp_conn *tc;          /* reference: outlives th */
	uint8_t hdr[HDR_MAX];         /* the header being collected */
	size_t hlen;
	uint64_t skip;                /* payload bytes still to pass */
	size_t frame_max;
	bool refused;
	wsguard_refuse_h *refuseh;
	void *arg;
};

static void drop_recv(struct mbuf *mb, void *arg)
{
	(void)mb;
	(void)arg;
}

static void drop_close(int err, void *arg)
{
	(void)err;
	(void)arg;
}

static void guard_destructor(void *arg)
{
	struct wsguard *g = arg;

	g->th = mem_deref(g->th);
	if (g->tc)
		tcp_set_handlers(g->tc, NULL, drop_recv, drop_close, NULL);
	g->tc = mem_deref(g->tc);
}

/* Header length once its first two bytes are in. */
static size_t hdr_need(const uint8_t *h)
{
	size_t n = 2;
	uint8_t len7 = h[1] & 0x7f;

	if (len7 == 126)
		n += 2;
	else if (len7 == 127)
		n += 8;
	if (h[1] & 0x80)
		n += 4;
	return n;
}

/* 0 and *LENP, or the close code to refuse the frame with and *WHY. */
static uint16_t hdr_check(const struct wsguard *g, uint64_t *lenp,
			  const char **why)
{
	const uint8_t *h = g->hdr;
	uint8_t op = h[0] & 0x0f, len7 = h[1] & 0x7f;
	uint64_t len = len7;
	size_t i;

	if (h[0] & 0x70) {
		*why = "reserved bits set";
		return WEBSOCK_PROTOCOL_ERROR;
	}
	if (!(op <= WEBSOCK_BIN || (op >= WEBSOCK_CLOSE && op <= WEBSOCK_PONG))) {
		*why = "unknown opcode";
		return WEBSOCK_PROTOCOL_ERROR;
	}
	if (!(h[1] & 0x80)) {
		*why = "client frame not masked";
		return WEBSOCK_PROTOCOL_ERROR;
	}
	if (len7 == 126) {
		len = (uint64_t)h[2] << 8 | h[3];
	}
	else if (len7 == 127) {
		for (len = 0, i = 2; i < 10; i++)
			len = len << 8 | h[i];
		if (len >> 63) {
			*why = "64-bit length with the top bit set";
			return WEBSOCK_PROTOCOL_ERROR;
		}
	}
	if (op >= WEBSOCK_CLOSE && (len > 125 || !(h[0] & 0x80))) {
		*why = "control frame too long or fragmented";
		return WEBSOCK_PROTOCOL_ERROR;
	}
	if (len > g->frame_max) {
		*why = "frame too big";
		return WEBSOCK_MESSAGE_TOO_BIG;
	}
	*lenp = len;
	return 0;
}

static bool guard_recv(int *err, struct mbuf *mb, bool *estab, void *arg)
{
	struct wsguard *g = arg;
	const uint8_t *p = mbuf_buf(mb);
	size_t left = mbuf_get_left(mb), n;
	const char *why = NULL;
	uint64_t len = 0;
	uint16_t code;
	(void)estab;

	if (g->refused) {
		*err = EPROTO;
		return true;
	}
	while (left) {
		if (g->skip) {
			n = g->skip < left ? (size_t)g->skip : left;
			g->skip -= n;
			p += n;
			left -= n;
			continue;
		}
		g->hdr[g->hlen++] = *p++;
		--left;
		if (g->hlen < 2 || g->hlen < hdr_need(g->hdr))
			continue;
		code = hdr_check(g, &len, &why);
		if (code) {
			g->refused = true;
			if (g->refuseh)
				g->refuseh(code, why, g->arg);
			*err = code == WEBSOCK_MESSAGE_TOO_BIG ? EOVERFLOW : EPROTO;
			return true;      /* nothing of this read reaches libre */
		}
		g->hlen = 0;
		g->skip = len;
	}
	return false;
}

/*
 * wsguard_attach: check every frame header arriving on TC (a server-side
 * WebSocket connection, just accepted) before libre's websock decoder;
 * frames longer than FRAME_MAX bytes are refused with 1009, malformed
 * ones with 1002. REFUSEH(code, why, ARG) runs once, on the first refused
 * frame, before libre closes the connection with an errno (EOVERFLOW or
 * EPROTO) through its close handler; it may send a close frame, and must
 * not free the guard (the close handler may).
 * Returns 0 and *GP (owned by the caller; deref it when done with the
 * connection, see the banner), EINVAL or ENOMEM.
 */
int wsguard_attach(struct wsguard **gp, struct tcp_conn *tc, size_t frame_max,
		   wsguard_refuse_h *refuseh, void *arg)
{
	struct wsguard *g;
	int err;

	if (!gp || !tc || !frame_max)
		return EINVAL;
	g = mem_zalloc(sizeof(*g), guard_destructor);
	if (!g)
		return ENOMEM;
	g->frame_max = frame_max;
	g->refuseh = refuseh;
	g->arg = arg;
	err = tcp_register_helper(&g->th, tc, WSGUARD_LAYER, NULL, NULL,
				  guard_recv, g);
	if (err) {
		mem_deref(g);
		return err;
	}
	g->tc = mem_ref(tc);
	*gp = g;
	return 0;
}
