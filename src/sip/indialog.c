/*
 * indialog.c: requests inside a call, from either party, relayed to the
 * other party (RFC 3261 section 14 and 15, RFC 3311, RFC 4028).
 *
 *   BYE            200 to the sender, BYE to the other party, call ends
 *   ACK            stops our 2xx retransmission to that party
 *   re-INVITE/UPDATE with SDP: ng offer (sender's SDP) -> the same request
 *                  to the other party -> its 2xx: ACK it (INVITE), ng answer
 *                  -> 2xx with the rewritten answer to the sender
 *   anything else  (INFO, OPTIONS, MESSAGE, NOTIFY, ...) relayed with its
 *                  body; the final status relayed back
 * One INVITE or UPDATE at a time per call: a second one gets 491 (glare).
 *
 * Ownership: a struct xfer belongs to its call (cp->xfers) and owns what it
 * started: the request on the other leg (x->out) and the ng step (x->ng).
 * Freeing the xfer frees those, and freeing them is what stops their
 * callbacks (libre clears the handler of a request its owner lets go of,
 * and CANCELs it; ngc drops the reply). So x->out is given up only when
 * libre has ended the request itself: on a final response or an error,
 * never on a provisional one. (Issue 10, defect 3: it was cleared on the
 * 100 too; when the call ended the xfer was freed but its request lived
 * on, and the callee's late 200 ran xfer_resp on freed memory.)
 * A call that ends answers each request still crossing it with 487
 * (indialog_end, RFC 3261 15.1.2), then frees them.
 */
#include <errno.h>
#include <string.h>
#include "log.h"
#include "b2bua.h"

static void xfer_destructor(void *arg)
{
	struct xfer *x = arg;

	list_unlink(&x->le);
	/* letting go of a pending request cancels it without a callback */
	mem_deref(x->out);
	mem_deref(x->ng);
	/* unanswered here only if the reply could not be sent: the sender
	 * retransmits and learns from the 481 that follows */
	mem_deref(x->st);
	mem_deref((void *)x->req);
}

static void session_expired(void *arg)
{
	struct bcall_priv *cp = arg;

	bcall_end(cp, "session timer expired");
}

bool session_expires(const struct sip_msg *msg, uint32_t *secs)
{
	const struct sip_hdr *h = sip_msg_xhdr(msg, "Session-Expires");
	struct pl num;

	if (!h)
		h = sip_msg_xhdr(msg, "x");      /* compact form */
	/* delta-seconds, then parameters (";refresher=uac") */
	if (!h || re_regex(h->val.p, h->val.l, "[0-9]+", &num) ||
	    num.p != h->val.p)
		return false;
	*secs = pl_u32(&num);
	return true;
}

void session_timer_update(struct bcall_priv *cp, const struct sip_msg *resp)
{
	uint32_t secs;

	if (!session_expires(resp, &secs) || secs < SESSION_MIN_SE)
		return;
	cp->session_secs = secs;
	/* RFC 4028 10: without a refresh the session ends at the interval
	 * less min(32, interval/3) */
	tmr_start(&cp->tmr_session,
		  (uint64_t)(secs - MIN(32u, secs / 3)) * 1000,
		  session_expired, cp);
}

static bool has_ctype(const struct sip_msg *msg, struct pl *ctype)
{
	const struct sip_hdr *h = sip_msg_hdr(msg, SIP_HDR_CONTENT_TYPE);

	if (!h || !msg->mb || !mbuf_get_left(msg->mb))
		return false;
	*ctype = h->val;
	return true;
}

static void reply_sender(struct xfer *x, uint16_t scode, const char *reason,
			 const struct pl *sdp, const struct sip_msg *resp)
{
	struct reply_params rp = {scode, reason, sdp, resp,
				  x->invite && scode >= 200 && scode < 300 ?
				  x->from : NULL};

	if (!x->st)
		return;
	(void)sipmsg_reply(x->cp->b, &x->st, x->req, &rp);
}

static void xfer_answer_done(int err, const char *why, const struct pl *sdp,
			     void *arg)
{
	struct xfer *x = arg;
	struct bcall_priv *cp = x->cp;
	const struct sip_msg *resp = x->req;   /* placeholder for headers */

	x->ng = mem_deref(x->ng);
	(void)resp;
	if (err) {
		log_warn("b2bua: [%s] media answer failed: %s", bcall_logid(cp),
			 why ? why : "no reason");
		++cp->b->n_media_err;
		reply_sender(x, 488, "Not Acceptable Here", NULL, NULL);
	}
	else {
		bparty_media(x->to == &cp->a ? &cp->pub->caller :
			     &cp->pub->callee, sdp);
		reply_sender(x, 200, "OK", sdp, NULL);
		bcall_event(cp, "call.updated");
	}
	mem_deref(x);
}

static void xfer_resp(int err, const struct sip_msg *msg, void *arg)
{
	struct xfer *x = arg;
	struct bcall_priv *cp = x->cp;
	struct pl sdp;
	char reason[64], code[16];

	/* a final response or an error ended the request, and libre cleared
	 * our pointer before calling; after a provisional one the request
	 * is still ours to cancel (see the banner) */
	if (err || !msg || msg->scode >= 200)
		x->out = NULL;
	if (err || !msg) {
		reply_sender(x, 408, "Request Timeout", NULL, NULL);
		mem_deref(x);
		return;
	}
	if (!sipmsg_scode_valid(msg, code, sizeof(code))) {
		log_warn("b2bua: [%s] invalid status %s to %.*s from the %s: "
			 "502 to the sender", bcall_logid(cp), code,
			 (int)x->req->met.l, x->req->met.p,
			 x->to == &cp->a ? "caller" : "callee");
		++cp->b->n_bad_status;
		reply_sender(x, 502, "Bad Gateway (invalid status code)", NULL,
			     NULL);
		mem_deref(x);          /* cancels what libre still holds */
		return;
	}
	if (msg->scode < 200)
		return;
	pl_strcpy(&msg->reason, reason, sizeof(reason));

	if (msg->scode >= 300) {
		reply_sender(x, msg->scode, reason, NULL, msg);
		mem_deref(x);
		return;
	}
	if (x->invite) {
		enum sip_transp tp = x->to->tp;
		(void)sip_drequestf(NULL, cp->b->sip, false, "ACK", x->to->dlg,
				    x->out_cseq, NULL, NULL, NULL, NULL,
				    "%HContent-Length: 0\r\n\r\n",
				    sipmsg_contact, &tp);
		(void)sip_dialog_update(x->to->dlg, msg);
	}
	session_timer_update(cp, msg);
	if (x->has_sdp && sipmsg_sdp(msg, &sdp)) {
		struct media_sdp_params p = {cp->pub->callid, x->from->tag,
					     x->to->tag, &sdp};
		if (!mediasrv_answer(cp->ms, &x->ng, &p, xfer_answer_done, x))
			return;
		reply_sender(x, 500, "Media Server Unavailable", NULL, NULL);
		mem_deref(x);
		return;
	}
	reply_sender(x, msg->scode, reason, NULL, msg);
	mem_deref(x);
}

static int forward(struct xfer *x, const struct pl *sdp)
{
	struct bcall_priv *cp = x->cp;
	struct hdr_copy hc = {x->req, sipmsg_req_hdrs};
	enum sip_transp tp = x->to->tp;
	char met[32];
	struct pl ctype;
	const struct pl *body = sdp;
	struct pl raw;
	bool contact = x->invite || !pl_strcmp(&x->req->met, "UPDATE");

	pl_strcpy(&x->req->met, met, sizeof(met));
	if (x->invite)
		x->out_cseq = sip_dialog_lseq(x->to->dlg);

	if (!body && has_ctype(x->req, &ctype)) {
		raw.p = (const char *)mbuf_buf(x->req->mb);
		raw.l = mbuf_get_left(x->req->mb);
		return sip_drequestf(&x->out, cp->b->sip, true, met, x->to->dlg,
				     0, NULL, NULL, xfer_resp, x,
				     "%H%H"
				     "Content-Type: %r\r\n"
				     "Content-Length: %zu\r\n\r\n%r",
				     contact ? sipmsg_contact : NULL, &tp,
				     sipmsg_copy_hdrs, &hc, &ctype, raw.l, &raw);
	}
	if (body)
		return sip_drequestf(&x->out, cp->b->sip, true, met, x->to->dlg,
				     0, NULL, NULL, xfer_resp, x,
				     "%H%H"
				     "Content-Type: application/sdp\r\n"
				     "Content-Length: %zu\r\n\r\n%r",
				     contact ? sipmsg_contact : NULL, &tp,
				     sipmsg_copy_hdrs, &hc, body->l, body);
	return sip_drequestf(&x->out, cp->b->sip, true, met, x->to->dlg, 0,
			     NULL, NULL, xfer_resp, x,
			     "%H%H"
			     "Content-Length: 0\r\n\r\n",
			     contact ? sipmsg_contact : NULL, &tp,
			     sipmsg_copy_hdrs, &hc);
}

static void xfer_offer_done(int err, const char *why, const struct pl *sdp,
			    void *arg)
{
	struct xfer *x = arg;
	struct bcall_priv *cp = x->cp;

	x->ng = mem_deref(x->ng);
	if (err) {
		log_warn("b2bua: [%s] media offer failed: %s", bcall_logid(cp),
			 why ? why : "no reason");
		++cp->b->n_media_err;
		reply_sender(x, 488, "Not Acceptable Here", NULL, NULL);
		mem_deref(x);
		return;
	}
	if (forward(x, sdp)) {
		reply_sender(x, 503, "Service Unavailable", NULL, NULL);
		mem_deref(x);
	}
}

static bool offer_in_progress(const struct bcall_priv *cp)
{
	struct le *le;

	for (le = list_head(&cp->xfers); le; le = le->next) {
		const struct xfer *x = le->data;
		if (x->invite || !pl_strcmp(&x->req->met, "UPDATE"))
			return true;
	}
	return false;
}

void indialog_handle(struct bleg *leg, const struct sip_msg *msg)
{
	struct bcall_priv *cp = leg->cp;
	struct b2bua *b = cp->b;
	struct bleg *other = bleg_other(leg);
	struct xfer *x;
	struct pl sdp;
	bool is_inv = !pl_strcmp(&msg->met, "INVITE");
	bool is_upd = !pl_strcmp(&msg->met, "UPDATE");
	int err;

	if (!pl_strcmp(&msg->met, "ACK")) {
		if (leg->ok_mb && msg->cseq.num == leg->ok_cseq)
			bleg_acked(leg);
		if (leg == &cp->a && cp->late_ack_wait)
			invite_late_ack(cp, msg);
		return;
	}
	if (!sip_dialog_rseq_valid(leg->dlg, msg)) {
		(void)sip_reply(b->sip, msg, 500, "Server Internal Error (CSeq out of order)");
		return;
	}
	if (!pl_strcmp(&msg->met, "BYE")) {
		(void)sip_reply(b->sip, msg, 200, "OK");
		leg->gone = true;
		bcall_end(cp, leg == &cp->a ? "caller hangup" : "callee hangup");
		return;
	}
	if (!other->dlg || !sip_dialog_established(other->dlg)) {
		(void)sip_reply(b->sip, msg, 491, "Request Pending");
		return;
	}
	if ((is_inv || is_upd) && offer_in_progress(cp)) {
		(void)sip_replyf(b->sip, msg, 491, "Request Pending",
				 "Retry-After: 1\r\nContent-Length: 0\r\n\r\n");
		return;
	}

	x = mem_zalloc(sizeof(*x), xfer_destructor);
	if (!x) {
		(void)sip_reply(b->sip, msg, 500, "Server Internal Error");
		return;
	}
	x->cp = cp;
	x->from = leg;
	x->to = other;
	x->req = mem_ref((void *)msg);
	x->invite = is_inv;
	list_append(&cp->xfers, &x->le, x);
	err = sip_strans_alloc(&x->st, b->sip, msg, NULL, NULL);
	if (err) {
		x->st = NULL;
		mem_deref(x);
		return;
	}
	if (is_inv)
		(void)sip_treply(&x->st, b->sip, msg, 100, "Trying");
	if ((is_inv || is_upd) && is_inv)
		(void)sip_dialog_update(leg->dlg, msg);

	if ((is_inv || is_upd) && sipmsg_sdp(msg, &sdp)) {
		struct media_sdp_params p = {cp->pub->callid, leg->tag,
					     other->tag, &sdp};
		x->has_sdp = true;
		bparty_media(leg == &cp->a ? &cp->pub->caller :
			     &cp->pub->callee, &sdp);
		if (!mediasrv_offer(cp->ms, &x->ng, &p, xfer_offer_done, x))
			return;
		reply_sender(x, 503, "Media Server Unavailable", NULL, NULL);
		mem_deref(x);
		return;
	}
	if (forward(x, NULL)) {
		reply_sender(x, 503, "Service Unavailable", NULL, NULL);
		mem_deref(x);
	}
}

void indialog_end(struct bcall_priv *cp)
{
	struct le *le;

	while ((le = list_head(&cp->xfers))) {
		struct xfer *x = le->data;

		reply_sender(x, 487, "Request Terminated", NULL, NULL);
		mem_deref(x);
	}
}
