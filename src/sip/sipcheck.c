/*
 * sipcheck.c: what a request must satisfy before tally-sip acts on it, on
 * top of what libre's parser already refused (RFC 3261 8.2, RFC 4475).
 *
 * libre's decoder is liberal by design; a B2BUA must still refuse what it
 * cannot process unambiguously, with the status the RFCs name:
 *   505  SIP version other than 2.0                     (badvers)
 *   400  a required header missing or given twice,
 *        CSeq not a 32-bit number or naming another method,
 *        a negative or non-numeric Content-Length      (insuf, multi01,
 *                                                        mcl01, scalar02,
 *                                                        mismatch01, ncl)
 *   416  Request-URI scheme other than sip/sips/tel     (unkscm, novelsc)
 *   420  Require naming an extension we lack           (bext01)
 *   406  initial INVITE whose Accept excludes application/sdp (sdp01)
 * Everything returns a reason phrase that says what was wrong.
 */
#include <ctype.h>
#include <string.h>
#include "sipcheck.h"

static const char *const single_hdrs[] = {
	"To", "From", "Call-ID", "CSeq", "Max-Forwards", "Content-Length",
	"Content-Type", NULL
};

static const enum sip_hdrid single_ids[] = {
	SIP_HDR_TO, SIP_HDR_FROM, SIP_HDR_CALL_ID, SIP_HDR_CSEQ,
	SIP_HDR_MAX_FORWARDS, SIP_HDR_CONTENT_LENGTH, SIP_HDR_CONTENT_TYPE,
};

static bool is_uint32(const struct pl *pl)
{
	uint64_t v = 0;
	size_t i;

	if (!pl->l || pl->l > 10)
		return false;
	for (i = 0; i < pl->l; i++) {
		if (!isdigit((unsigned char)pl->p[i]))
			return false;
		v = v * 10 + (uint64_t)(pl->p[i] - '0');
	}
	return v <= 0xffffffffull;
}

static bool cseq_ok(const struct sip_msg *msg)
{
	const struct sip_hdr *h = sip_msg_hdr(msg, SIP_HDR_CSEQ);
	struct pl num;

	if (!h || re_regex(h->val.p, h->val.l, "[0-9]+", &num))
		return false;
	if (num.p != h->val.p)       /* leading garbage (e.g. "-1") */
		return false;
	return is_uint32(&num);
}

static bool clen_ok(const struct sip_msg *msg)
{
	const struct sip_hdr *h = sip_msg_hdr(msg, SIP_HDR_CONTENT_LENGTH);
	struct pl v;

	if (!h)
		return true;
	v = h->val;
	while (v.l && isspace((unsigned char)v.p[v.l - 1]))
		--v.l;
	return is_uint32(&v);
}

struct unsup {
	char *buf;
	size_t size;
	bool any;
};

/* option tags the program implements (sipcheck_set_supported) */
static const char *const *supported_tags;

void sipcheck_set_supported(const char *const *tags)
{
	supported_tags = tags;
}

static bool tag_supported(const struct pl *tag)
{
	const char *const *t;

	if (!supported_tags)
		return !pl_strcasecmp(tag, "timer");
	for (t = supported_tags; *t; t++)
		if (!pl_strcasecmp(tag, *t))
			return true;
	return false;
}

static bool require_h(const struct sip_hdr *hdr, const struct sip_msg *msg,
		      void *arg)
{
	struct unsup *u = arg;
	struct pl v = hdr->val, tag;
	(void)msg;

	while (!re_regex(v.p, v.l, "[^, \t]+", &tag)) {
		if (!tag_supported(&tag)) {
			size_t n = strlen(u->buf);
			if (n + tag.l + 3 < u->size) {
				re_snprintf(u->buf + n, u->size - n, "%s%r",
					    u->any ? ", " : "", &tag);
				u->any = true;
			}
		}
		v.l -= (size_t)(tag.p + tag.l - v.p);
		v.p = tag.p + tag.l;
	}
	return false;
}

static bool accept_has_sdp(const struct sip_msg *msg)
{
	const struct sip_hdr *h = sip_msg_hdr(msg, SIP_HDR_ACCEPT);
	char v[256];
	size_t i;

	if (!h || !h->val.l)
		return true;
	pl_strcpy(&h->val, v, sizeof(v));
	for (i = 0; v[i]; i++)
		v[i] = (char)tolower((unsigned char)v[i]);
	return strstr(v, "application/sdp") || strstr(v, "application/*") ||
	       strstr(v, "*/*");
}

/* Quotes in a name-addr must balance (RFC 4475 3.1.2.6, quotbal). */
static bool quotes_ok(const struct sip_msg *msg, enum sip_hdrid id)
{
	const struct sip_hdr *h = sip_msg_hdr(msg, id);
	bool in = false;
	size_t i;

	if (!h)
		return true;
	for (i = 0; i < h->val.l; i++) {
		char c = h->val.p[i];
		if (in && c == '\\') {
			++i;
			continue;
		}
		if (c == '"')
			in = !in;
	}
	return !in;
}

/* Over UDP the datagram is the message: a Content-Length beyond it is a
 * lie (RFC 3261 18.3, RFC 4475 3.1.2.2 clerr). */
static bool udp_length_ok(const struct sip_msg *msg)
{
	if (msg->tp != SIP_TRANSP_UDP || !pl_isset(&msg->clen))
		return true;
	return pl_u32(&msg->clen) <= (msg->mb ? mbuf_get_left(msg->mb) : 0);
}

uint16_t sipcheck_request(const struct sip_msg *msg, char *unsupported,
			  size_t size, const char **reason)
{
	struct unsup u = {unsupported, size, false};
	size_t i;

	if (unsupported && size)
		unsupported[0] = '\0';
	if (pl_strcasecmp(&msg->ver, "SIP/2.0")) {
		*reason = "Version Not Supported";
		return 505;
	}
	if (!sip_msg_hdr(msg, SIP_HDR_VIA)) {
		*reason = "Bad Request (missing Via)";
		return 400;
	}
	if (!sip_msg_hdr(msg, SIP_HDR_TO) || !pl_isset(&msg->to.auri)) {
		*reason = "Bad Request (missing To)";
		return 400;
	}
	if (!sip_msg_hdr(msg, SIP_HDR_FROM) || !pl_isset(&msg->from.auri)) {
		*reason = "Bad Request (missing From)";
		return 400;
	}
	if (!pl_isset(&msg->callid)) {
		*reason = "Bad Request (missing Call-ID)";
		return 400;
	}
	if (!cseq_ok(msg)) {
		*reason = "Bad Request (CSeq is not a 32-bit number)";
		return 400;
	}
	for (i = 0; single_hdrs[i]; i++) {
		if (sip_msg_hdr_count(msg, single_ids[i]) > 1) {
			static char why[64];
			re_snprintf(why, sizeof(why), "Bad Request (more than "
				    "one %s)", single_hdrs[i]);
			*reason = why;
			return 400;
		}
	}
	if (!udp_length_ok(msg)) {
		*reason = "Bad Request (Content-Length beyond the datagram)";
		return 400;
	}
	if (!quotes_ok(msg, SIP_HDR_FROM) || !quotes_ok(msg, SIP_HDR_TO) ||
	    !quotes_ok(msg, SIP_HDR_CONTACT)) {
		*reason = "Bad Request (unterminated quoted string)";
		return 400;
	}
	if (!clen_ok(msg)) {
		*reason = "Bad Request (bad Content-Length)";
		return 400;
	}
	if (pl_casecmp(&msg->met, &msg->cseq.met)) {
		*reason = "Bad Request (CSeq method does not match the request)";
		return 400;
	}
	if (pl_strcasecmp(&msg->uri.scheme, "sip") &&
	    pl_strcasecmp(&msg->uri.scheme, "sips") &&
	    pl_strcasecmp(&msg->uri.scheme, "tel")) {
		*reason = "Unsupported URI Scheme";
		return 416;
	}
	if (pl_strcmp(&msg->met, "ACK") && pl_strcmp(&msg->met, "CANCEL") &&
	    unsupported) {
		(void)sip_msg_hdr_apply(msg, true, SIP_HDR_REQUIRE, require_h, &u);
		if (u.any) {
			*reason = "Bad Extension";
			return 420;
		}
	}
	/* only a new session needs an SDP answer the client must take; in a
	 * dialog the session exists (RFC 8068's persistent-RS re-INVITE
	 * accepts metadata only, and gets our SDP anyway) */
	if (!pl_strcmp(&msg->met, "INVITE") && !pl_isset(&msg->to.tag) &&
	    !accept_has_sdp(msg)) {
		*reason = "Not Acceptable (Accept lacks application/sdp)";
		return 406;
	}
	return 0;
}

void sipcheck_refuse(struct sip *sip, const struct sip_msg *msg,
		     uint16_t scode, const char *reason,
		     const char *unsupported)
{
	if (!pl_strcmp(&msg->met, "ACK"))
		return;
	if (scode == 420)
		(void)sip_replyf(sip, msg, scode, reason,
				 "Unsupported: %s\r\n"
				 "Content-Length: 0\r\n\r\n", unsupported);
	else if (scode == 406)
		(void)sip_replyf(sip, msg, scode, "Not Acceptable",
				 "Warning: 399 tally \"%s\"\r\n"
				 "Content-Length: 0\r\n\r\n", reason);
	else
		(void)sip_reply(sip, msg, scode, reason);
}

/* RFC 3261 methods and their extensions */
static bool known_method(const struct pl *met)
{
	static const char *const known[] = {
		"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "UPDATE",
		"REGISTER", "MESSAGE", "NOTIFY", "SUBSCRIBE", "PUBLISH",
		"REFER", "PRACK", NULL
	};
	const char *const *k;

	for (k = known; *k; k++)
		if (!pl_strcmp(met, *k))
			return true;
	return false;
}

void sipcheck_unhandled(struct sip *sip, const struct sip_msg *msg,
			const char *allow)
{
	if (!pl_strcmp(&msg->met, "ACK"))
		return;
	if (!pl_strcmp(&msg->met, "CANCEL"))
		(void)sip_reply(sip, msg, 481, "Call/Transaction Does Not Exist");
	else if (known_method(&msg->met))
		(void)sip_replyf(sip, msg, 405, "Method Not Allowed",
				 "Allow: %s\r\nContent-Length: 0\r\n\r\n",
				 allow);
	else
		(void)sip_replyf(sip, msg, 501, "Not Implemented",
				 "Allow: %s\r\nContent-Length: 0\r\n\r\n",
				 allow);
}
