/*
 * sipdecode.c: a message libre cannot decode gets an answer, over TCP as
 * over UDP, instead of silence or a closed connection.
 *
 * libre 1.1.0's SIP transport decodes what arrives with sip_msg_decode();
 * on an error it drops a datagram, and on a stream it closes the connection
 * without a word, so a sender of a malformed request (RFC 4475 3.1.2:
 * extraneous separators, <> around the Request-URI, a SIP/7.0 request line)
 * never learns why. libre calls sip_msg_decode() through the PLT, so this
 * file defines it in the executable (linked into tally-sip and
 * tally-recorder, not into the libraries) and wraps libre's own:
 *
 *   - what decodes is libre's message, untouched;
 *   - what does not is framed (a whole datagram; on a stream: header end
 *     and Content-Length, leniently read); if it cannot be framed the error
 *     stands (a stream without framing is lost: libre closes it, as
 *     RFC 3261 18.3 expects); if it is incomplete, more bytes are awaited;
 *   - a framed message is consumed and replaced by a decodable stand-in
 *     request (method TALLY-MALFORMED, a per-process secret header) whose
 *     body is the stateless answer sipbad.c builds from the raw text: 400
 *     or 505 with the request's Via, From, To, Call-ID and CSeq, or nothing
 *     for a response or an unreadable text.
 *
 * libre then hands the stand-in to the request handler like any request,
 * with the transport, source and connection it came on; the handler calls
 * sipdecode_standin() first, which sends the answer there and counts it.
 * The UDP receive helper shows each datagram to sipdecode_datagram(): one
 * that starts like a SIP message but cannot be framed by itself (its
 * Content-Length overshoots it, or is not a number) is marked, so it is
 * answered rather than awaited or dropped. Only such a datagram is marked (libre decodes it next, which
 * clears the mark; keepalives and STUN, which libre does not decode, are
 * never marked), and the mark holds the buffer's address, position and
 * length, so a stream buffer reusing freed memory cannot pass for it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <re.h>
#include "log.h"
#include "sipcheck.h"

enum { HDR_MAX = 65536, BODY_MAX = 65536 };

#define STANDIN "TALLY-MALFORMED"

typedef int (decode_f)(struct sip_msg **msgp, struct mbuf *mb);

static struct {
	decode_f *libre;             /* libre's sip_msg_decode() */
	struct {                     /* the UDP datagram about to be decoded */
		const struct mbuf *mb;
		const uint8_t *p;
		size_t len;
	} dgram;
	struct mbuf *hdrbuf;         /* the last stand-in's header text */
	char secret[17];
	uint32_t seq;
	uint64_t answered, dropped;
} sd;


static int frame(const char *p, size_t len, size_t *lenp);

void sipdecode_datagram(const struct mbuf *mb)
{
	const uint8_t *p = mbuf_buf(mb);
	size_t len = mbuf_get_left(mb), flen;

	sd.dgram.mb = NULL;
	if (len < 4 || !((p[0] >= 'A' && p[0] <= 'Z') ||
			 (p[0] >= 'a' && p[0] <= 'z')) ||
	    !frame((const char *)p, len, &flen))
		return;
	sd.dgram.mb = mb;
	sd.dgram.p = p;
	sd.dgram.len = len;
}


static bool udp_peek(struct sa *src, struct mbuf *mb, void *arg)
{
	(void)src;
	(void)arg;
	sipdecode_datagram(mb);
	return false;           /* libre goes on with it */
}


void sipdecode_udp_attach(struct udp_helper **uhp, const struct sip_msg *msg)
{
	if (*uhp || msg->tp != SIP_TRANSP_UDP || !msg->sock)
		return;
	(void)udp_register_helper(uhp, msg->sock, 0, NULL, udp_peek, NULL);
	/* bursts of hundreds of requests per second overflow the default
	 * receive buffer: the kernel would drop them before libre reads */
	(void)udp_sockbuf_set(msg->sock, 4 << 20);
}


uint64_t sipdecode_count(void)
{
	return sd.answered + sd.dropped;
}


/* Content-Length (or "l") of the header block P..END: 0 with *clp (0 when
 * absent), EBADMSG when it is not a number or appears twice, differing. */
static int content_length(const char *p, const char *end, size_t *clp)
{
	bool found = false;
	size_t cl = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol ? eol : end;
		const char *line = p, *v;
		size_t val = 0, digits = 0;

		p = eol ? eol + 1 : end;
		if (!sipbad_hdr_is(line, (size_t)(le - line), "Content-Length",
				   'l', &v))
			continue;
		for (; v < le && (*v == ' ' || *v == '\t'); v++)
			;
		for (; v < le && *v >= '0' && *v <= '9' && digits < 9; v++) {
			val = val * 10 + (size_t)(*v - '0');
			++digits;
		}
		while (v < le && (*v == ' ' || *v == '\t' || *v == '\r'))
			++v;
		if (!digits || v != le || (found && val != cl))
			return EBADMSG;
		cl = val;
		found = true;
	}
	*clp = cl;
	return 0;
}


/* The length of the message at P on a stream (LEN bytes buffered): 0 and
 * *lenp; ENODATA: more bytes are needed; EBADMSG: it cannot be framed. */
static int frame(const char *p, size_t len, size_t *lenp)
{
	const char *hend;
	size_t skip = 0, hlen, cl;

	while (skip < len && (p[skip] == '\r' || p[skip] == '\n'))
		++skip;
	hend = memmem(p + skip, len - skip, "\r\n\r\n", 4);
	if (!hend)
		return len - skip > HDR_MAX ? EBADMSG : ENODATA;
	hlen = (size_t)(hend - p) + 4;
	if (content_length(p + skip, hend + 2, &cl) || cl > BODY_MAX)
		return EBADMSG;
	if (hlen + cl > len)
		return ENODATA;
	*lenp = hlen + cl;
	return 0;
}


/* A decodable request standing in for the undecodable LEN bytes at MB's
 * position: its headers are this file's, its body is those bytes, in MB
 * itself, so libre's stream transport (which ends the message at the body's
 * end and keeps what follows) sees one message of the right length. */
static int standin(struct sip_msg **msgp, struct mbuf *mb, size_t len)
{
	struct sip_msg *msg = NULL;
	struct mbuf *hb;
	int err;

	if (!sd.secret[0])
		(void)re_snprintf(sd.secret, sizeof(sd.secret), "%08x%08x",
				  rand_u32(), rand_u32());
	hb = mbuf_alloc(512);
	if (!hb)
		return ENOMEM;
	++sd.seq;
	err = mbuf_printf(hb, STANDIN " sip:malformed.invalid SIP/2.0\r\n"
			  "Via: SIP/2.0/UDP malformed.invalid"
			  ";branch=z9hG4bK-malformed-%s-%u\r\n"
			  "Max-Forwards: 0\r\n"
			  "From: <sip:malformed.invalid>;tag=%u\r\n"
			  "To: <sip:malformed.invalid>\r\n"
			  "Call-ID: malformed-%u-%s\r\n"
			  "CSeq: 1 " STANDIN "\r\n"
			  "X-Tally-Malformed: %s\r\n"
			  "Content-Length: %zu\r\n\r\n",
			  sd.secret, sd.seq, sd.seq, sd.seq, sd.secret,
			  sd.secret, len);
	if (!err) {
		hb->pos = 0;
		err = sd.libre(&msg, hb);
	}
	if (err) {
		mem_deref(hb);
		return err;
	}
	/* the message's header fields point into HB: it lives until the
	 * next stand-in (libre is done with a message when sip_recv returns) */
	mem_deref(sd.hdrbuf);
	sd.hdrbuf = hb;
	mem_deref(msg->mb);
	msg->mb = mem_ref(mb);
	*msgp = msg;
	return 0;
}


bool sipdecode_active(void)
{
	void *global = dlsym(RTLD_DEFAULT, "sip_msg_decode");

	return global == (void *)(uintptr_t)sip_msg_decode;
}


/* libre's decoder, wrapped: see the banner. */
int sip_msg_decode(struct sip_msg **msgp, struct mbuf *mb)
{
	const bool dgram = mb && mb == sd.dgram.mb &&
		mbuf_buf(mb) == sd.dgram.p && mbuf_get_left(mb) == sd.dgram.len;
	size_t pos, len;
	int err, ferr;

	if (!sd.libre)
		sd.libre = (decode_f *)dlsym(RTLD_NEXT, "sip_msg_decode");
	if (!sd.libre)
		return ENOSYS;
	sd.dgram.mb = NULL;
	if (!msgp || !mb)
		return sd.libre(msgp, mb);

	pos = mb->pos;
	err = sd.libre(msgp, mb);
	if (!err)
		return 0;

	mb->pos = pos;
	if (dgram) {
		len = mbuf_get_left(mb);
	}
	else {
		ferr = frame((const char *)mbuf_buf(mb), mbuf_get_left(mb),
			     &len);
		if (ferr == ENODATA)
			return ENODATA;
		if (ferr)
			return err;
		/* libre says ENODATA for a start line it cannot read, too */
	}
	if (len < 4 || standin(msgp, mb, len))
		return err;
	return 0;
}


bool sipdecode_standin(struct sip *sip, const struct sip_msg *msg)
{
	const struct sip_hdr *h;
	struct mbuf *ans = NULL;

	if (!msg || pl_strcmp(&msg->met, STANDIN))
		return false;
	h = sip_msg_xhdr(msg, "X-Tally-Malformed");
	if (!h || !sd.secret[0] || pl_strcmp(&h->val, sd.secret))
		return false;                   /* from outside: a method */

	if (sipbad_reply(&ans, mbuf_buf(msg->mb), mbuf_get_left(msg->mb))) {
		++sd.dropped;
		log_re(LOG_LVL_DEBUG, "sip: undecodable %s message from %J"
		       " dropped", sip_transp_name(msg->tp), &msg->src);
		return true;
	}
	/* the connection or socket it came on, to its source: its Via may be
	 * what could not be read */
	(void)sip_send(sip, msg->sock, msg->tp, &msg->src, ans);
	++sd.answered;
	log_re(LOG_LVL_INFO, "sip: malformed %s request from %J answered %b",
	       sip_transp_name(msg->tp), &msg->src, mbuf_buf(ans) + 8,
	       (size_t)3);
	mem_deref(ans);
	return true;
}
