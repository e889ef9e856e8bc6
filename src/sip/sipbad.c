/*
 * sipbad.c: the answer to a request libre cannot decode.
 *
 * sipdecode.c hands over the raw text of every message libre's decoder
 * refuses (RFC 4475 3.1.2: extraneous separators, <> around the
 * Request-URI, unterminated quotes, another SIP version, ...). If it starts
 * like a request and carries Via, From, To, Call-ID and CSeq lines, the
 * answer is a stateless 400 (505 for another version) copying those lines
 * as RFC 3261 8.2.6 asks. Responses and anything less readable get nothing.
 */
#include <string.h>
#include <re.h>
#include "log.h"

#include "sipcheck.h"

bool sipbad_hdr_is(const char *line, size_t len, const char *name, char c,
		   const char **valp)
{
	const char *colon = memchr(line, ':', len);
	size_t nlen = strlen(name), hl;

	if (!colon)
		return false;
	hl = (size_t)(colon - line);
	while (hl && (line[hl - 1] == ' ' || line[hl - 1] == '\t'))
		--hl;
	if (!((hl == nlen && !strncasecmp(line, name, nlen)) ||
	      (c && hl == 1 && (line[0] | 0x20) == c)))
		return false;
	if (valp)
		*valp = colon + 1;
	return true;
}

/* Copy every header line named NAME (or its compact form C) to MB. */
static int copy_lines(struct mbuf *mb, const struct pl *msg, const char *name,
		      char c, bool first_only)
{
	const char *p = msg->p, *end = msg->p + msg->l;
	int n = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t l = eol ? (size_t)(eol - p) : (size_t)(end - p);

		if (l == 0 || (l == 1 && p[0] == '\r'))
			break;                      /* end of headers */
		if (sipbad_hdr_is(p, l, name, c, NULL)) {
			size_t vl = l;
			if (vl && p[vl - 1] == '\r')
				--vl;
			(void)mbuf_write_mem(mb, (const uint8_t *)p, vl);
			(void)mbuf_write_str(mb, "\r\n");
			++n;
			if (first_only)
				break;
		}
		if (!eol)
			break;
		p = eol + 1;
	}
	return n;
}

/*
 * The stateless answer to an undecodable request PKT: *mbp gets a new
 * "400 Bad Request" (or "505" for another SIP version) with the request's
 * Via, From, To, Call-ID and CSeq lines. ENOENT: nothing can be answered
 * (a response, no request line, a required line missing). ENOMEM.
 */
int sipbad_reply(struct mbuf **mbp, const uint8_t *pkt, size_t len)
{
	struct pl text = {(const char *)pkt, len}, m1, m2, m3, sp1, sp2;
	struct mbuf *mb;

	if (!re_regex(text.p, MIN(len, 8), "SIP/") ||
	    re_regex(text.p, MIN(len, 256), "[A-Za-z!-~]+[ ]+[^ \r\n]+[ ]+[^ \r\n]+",
		     &m1, &sp1, &m2, &sp2, &m3) || m1.p != text.p)
		return ENOENT;     /* (re_regex: every [...] is a capture) */
	mb = mbuf_alloc(1024);
	if (!mb)
		return ENOMEM;
	if (pl_strcasecmp(&m3, "SIP/2.0"))
		(void)mbuf_write_str(mb, "SIP/2.0 505 Version Not Supported\r\n");
	else
		(void)mbuf_write_str(mb, "SIP/2.0 400 Bad Request "
				     "(malformed message)\r\n");
	if (!copy_lines(mb, &text, "Via", 'v', false) ||
	    !copy_lines(mb, &text, "From", 'f', true) ||
	    !copy_lines(mb, &text, "To", 't', true) ||
	    !copy_lines(mb, &text, "Call-ID", 'i', true) ||
	    !copy_lines(mb, &text, "CSeq", '\0', true)) {
		mem_deref(mb);
		return ENOENT;
	}
	(void)mbuf_write_str(mb, "Content-Length: 0\r\n\r\n");
	mb->pos = 0;
	*mbp = mb;
	return 0;
}
