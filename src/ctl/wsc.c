/*
 * wsc.c: tallyctl's WebSocket reader (RFC 6455, client side, receive only).
 *
 * The handshake is a GET with "Upgrade: websocket" on a connection of
 * httpc.c; a 101 answer turns the connection into frames:
 *
 *   byte 0: FIN | opcode (1 text, 2 binary, 0 continuation, 8 close,
 *           9 ping, 10 pong)
 *   byte 1: MASK | length (0-125, 126: 16-bit length follows, 127: 64-bit)
 *   [4-byte mask key if MASK] payload
 *
 * Server frames are unmasked; every frame we send (pong, close) is masked,
 * as the RFC requires of clients. Text messages (reassembled if
 * fragmented) go to the caller's handler as each one completes (events.c
 * prints and flushes it at once, so a pipe reader sees each event as it
 * happens). A close frame is echoed and ends
 * the stream with success; so does the server closing TCP after the
 * handshake.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <re.h>
#include "ctl.h"

enum {
	WS_MSG_MAX = 16 << 20,        /* reassembled message limit */
};

static int send_frame(struct ctl_conn *c, unsigned opcode, const uint8_t *p,
		      size_t n)
{
	uint8_t f[6 + 125];
	uint8_t key[4];
	size_t i;

	if (n > 125)
		n = 125;            /* control frames only: <= 125 bytes */
	rand_bytes(key, sizeof(key));
	f[0] = (uint8_t)(0x80 | (opcode & 0x0f));
	f[1] = (uint8_t)(0x80 | n);
	memcpy(f + 2, key, 4);
	for (i = 0; i < n; i++)
		f[6 + i] = p[i] ^ key[i % 4];
	return ctl_write(c, f, 6 + n);
}

struct wsmsg {
	uint8_t *p;
	size_t len, cap;
};

static int msg_append(struct wsmsg *m, const uint8_t *p, size_t n)
{
	if (m->len + n > WS_MSG_MAX)
		return EFBIG;
	if (m->len + n > m->cap) {
		size_t cap = (m->len + n) * 2;
		uint8_t *np = realloc(m->p, cap);

		if (!np)
			return ENOMEM;
		m->p = np;
		m->cap = cap;
	}
	memcpy(m->p + m->len, p, n);
	m->len += n;
	return 0;
}

/* Bytes of the frame head starting at B (HAVE bytes buffered so far). */
static size_t head_need(const uint8_t *b, size_t have)
{
	size_t n = 2;

	if (have < 2)
		return 2;
	if ((b[1] & 0x7f) == 126)
		n += 2;
	else if ((b[1] & 0x7f) == 127)
		n += 8;
	if (b[1] & 0x80)
		n += 4;
	return n;
}

/* Read frames until close. PAYLOAD of one frame is first gathered in M
 * (frames may be larger than the connection buffer). */
static int frames(struct ctl_conn *c, ctl_ws_msg_h *mh, void *arg)
{
	struct wsmsg msg = {NULL, 0, 0}, fr = {NULL, 0, 0};
	unsigned msg_op = 0;
	int err = 0;

	for (;;) {
		const uint8_t *b = (const uint8_t *)c->buf;
		uint64_t len;
		size_t hl = 2, i;
		unsigned op;
		bool fin, masked;
		uint8_t key[4] = {0, 0, 0, 0};

		while (c->len < head_need(b, c->len)) {
			err = ctl_fill(c, -1);
			if (err)
				goto out;
		}
		fin = b[0] & 0x80;
		op = b[0] & 0x0f;
		masked = b[1] & 0x80;
		len = b[1] & 0x7f;
		if (len == 126) {
			len = (uint64_t)b[2] << 8 | b[3];
			hl = 4;
		}
		else if (len == 127) {
			len = 0;
			for (i = 0; i < 8; i++)
				len = len << 8 | b[2 + i];
			hl = 10;
		}
		if (masked) {
			memcpy(key, b + hl, 4);
			hl += 4;
		}
		if (b[0] & 0x70 || len > WS_MSG_MAX ||
		    (op >= 8 && (len > 125 || !fin))) {
			err = EPROTO;
			goto out;
		}
		ctl_consume(c, hl);

		/* the payload, possibly across many reads */
		fr.len = 0;
		while (fr.len < len) {
			size_t n;

			if (!c->len && (err = ctl_fill(c, -1)))
				goto out;
			n = c->len;
			if (n > len - fr.len)
				n = (size_t)(len - fr.len);
			if ((err = msg_append(&fr, (const uint8_t *)c->buf, n)))
				goto out;
			ctl_consume(c, n);
		}
		if (masked)
			for (i = 0; i < fr.len; i++)
				fr.p[i] ^= key[i % 4];

		switch (op) {
		case 0x0:      /* continuation */
		case 0x1:      /* text */
		case 0x2:      /* binary */
			if (op && msg_op) {
				err = EPROTO;   /* new message inside one */
				goto out;
			}
			if (op)
				msg_op = op;
			else if (!msg_op) {
				err = EPROTO;
				goto out;
			}
			if ((err = msg_append(&msg, fr.p, fr.len)))
				goto out;
			if (fin) {
				if (msg_op == 0x1)
					mh((const char *)msg.p, msg.len, arg);
				msg.len = 0;
				msg_op = 0;
			}
			break;
		case 0x8:      /* close: echo the status, done */
			(void)send_frame(c, 0x8, fr.p, fr.len < 2 ? fr.len : 2);
			err = 0;
			goto out;
		case 0x9:      /* ping */
			if ((err = send_frame(c, 0xa, fr.p, fr.len)))
				goto out;
			break;
		case 0xa:      /* pong */
			break;
		default:
			err = EPROTO;
			goto out;
		}
	}
 out:
	free(msg.p);
	free(fr.p);
	if (err == ENODATA)       /* server closed TCP: the stream ended */
		err = 0;
	return err;
}

int ctl_ws_follow(const struct ctl_url *u, const char *token,
		  const char *path, ctl_ws_msg_h *mh, void *arg,
		  struct ctl_resp *r)
{
	uint8_t nonce[16];
	char key[32], extra[256];
	size_t klen = sizeof(key) - 1;
	struct ctl_req rq = {u, token, path, extra, true, CTL_READ_MS, "GET",
			     NULL};
	struct ctl_conn c;
	int err;

	memset(r, 0, sizeof(*r));
	rand_bytes(nonce, sizeof(nonce));
	if (base64_encode(nonce, sizeof(nonce), key, &klen))
		return EINVAL;
	key[klen] = '\0';
	snprintf(extra, sizeof(extra),
		 "Upgrade: websocket\r\n"
		 "Connection: Upgrade\r\n"
		 "Sec-WebSocket-Key: %s\r\n"
		 "Sec-WebSocket-Version: 13\r\n", key);

	err = ctl_connect(&c, u);
	if (err)
		return err;
	err = ctl_http(&c, &rq, r);
	if (err)
		goto out;
	if (r->scode != 101 || strcasecmp(r->upgrade, "websocket")) {
		/* refused; R holds the status and the (JSON) error body */
		if (r->scode == 101)
			r->scode = 502;     /* 101 to something else */
		err = EACCES;
		goto out;
	}
	err = frames(&c, mh, arg);
 out:
	ctl_close(&c);
	return err;
}
