/*
 * invite.c: a call's first INVITE, from the caller's request to the
 * callee's final answer.
 *
 *   caller INVITE ─► 100 Trying, route (registrar, then static routes)
 *                 ─► ng offer (caller's SDP)      ─► INVITE to callee
 *   callee 18x    ─► ng answer if it has SDP      ─► 18x to caller (early media)
 *   callee 2xx    ─► ACK to callee, ng answer     ─► 2xx to caller (retransmitted
 *                                                    until the caller's ACK)
 *   callee 3xx-6xx ─► the same status to the caller, call ends
 *   caller CANCEL ─► 487 to the caller, CANCEL to the callee, call ends
 *   no final answer within no-answer-secs ─► 408 to the caller, CANCEL
 *
 * Late offer (the caller's INVITE has no SDP, RFC 3261 13.2.1): the INVITE
 * goes on without SDP; the callee's 2xx carries the offer: ng offer (callee
 * as offerer) ─► 2xx to the caller; the caller's ACK carries the answer: ng
 * answer ─► only then the ACK, with the rewritten answer, to the callee.
 *
 * Responses from the callee that arrive while an ng step is still pending
 * wait in cp->pending and are handled in order afterwards, so a 200 can
 * never overtake the 183 before it.
 */
#include <errno.h>
#include <string.h>
#include "log.h"
#include "b2bua.h"

struct pmsg {
	struct le le;
	const struct sip_msg *msg;
};

static void pmsg_destructor(void *arg)
{
	struct pmsg *pm = arg;

	list_unlink(&pm->le);
	mem_deref((void *)pm->msg);
}

static void callee_response(struct bcall_priv *cp, const struct sip_msg *msg);

static void pending_next(struct bcall_priv *cp)
{
	struct pmsg *pm;

	mem_ref(cp);      /* a response may end the call: stay valid here */
	while (!cp->ng && !cp->ending && (pm = list_ledata(list_head(&cp->pending)))) {
		const struct sip_msg *msg = mem_ref((void *)pm->msg);
		mem_deref(pm);
		callee_response(cp, msg);
		mem_deref((void *)msg);
	}
	mem_deref(cp);
}

/* A display name we may put between quotes in our own From: printable,
 * no quote, no backslash, no line break; anything else is dropped. */
static void safe_name(const struct pl *dname, char *buf, size_t size)
{
	size_t i, n = 0;
	struct pl d = *dname;

	buf[0] = '\0';
	if (!pl_isset(&d) || d.l >= size)
		return;
	if (d.l >= 2 && d.p[0] == '"' && d.p[d.l - 1] == '"') {
		++d.p;
		d.l -= 2;
	}
	for (i = 0; i < d.l; i++) {
		unsigned char c = (unsigned char)d.p[i];
		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
			buf[0] = '\0';
			return;
		}
		buf[n++] = (char)c;
	}
	buf[n] = '\0';
}

static bool has_crlf(const struct pl *pl)
{
	return pl->l && (memchr(pl->p, '\r', pl->l) || memchr(pl->p, '\n', pl->l));
}

static void fill_party(struct bparty *p, const struct sip_taddr *ta,
		       const struct pl *user)
{
	pl_strcpy(&ta->auri, p->uri, sizeof(p->uri));
	pl_strcpy(user ? user : &ta->uri.user, p->user, sizeof(p->user));
	safe_name(&ta->dname, p->name, sizeof(p->name));
	pl_strcpy(&ta->tag, p->tag, sizeof(p->tag));
}

static void no_answer(void *arg)
{
	struct bcall_priv *cp = arg;

	cp->pub->final_status = 408;
	bcall_end(cp, "no answer");
}

/* Reply to the caller's INVITE. */
static int reply_caller(struct bcall_priv *cp, uint16_t scode,
			const char *reason, const struct pl *sdp,
			const struct sip_msg *resp)
{
	struct reply_params rp = {scode, reason, sdp, resp,
				  scode >= 200 && scode < 300 ? &cp->a : NULL};

	if (!cp->inv_st)
		return EALREADY;
	if (scode >= 200)
		cp->pub->final_status = scode;
	return sipmsg_reply(cp->b, &cp->inv_st, cp->inv, &rp);
}

static void fail(struct bcall_priv *cp, uint16_t scode, const char *reason,
		 const char *cause)
{
	(void)reply_caller(cp, scode, reason, NULL, NULL);
	bcall_end(cp, cause);
}

/* ---- callee responses ---- */

struct answer_ctx {
	struct bcall_priv *cp;
	const struct sip_msg *msg;   /* the callee's response (ref) */
};

static void answer_done(int err, const char *why, const struct pl *sdp,
			void *arg)
{
	struct bcall_priv *cp = arg;
	struct pmsg *pm = list_ledata(list_head(&cp->pending));
	const struct sip_msg *msg;

	cp->ng = mem_deref(cp->ng);
	/* the response being answered is parked at the head of pending */
	if (!pm) {
		pending_next(cp);
		return;
	}
	msg = mem_ref((void *)pm->msg);
	mem_deref(pm);

	if (err) {
		log_warn("b2bua: [%s] media answer failed: %s", bcall_logid(cp),
			 why ? why : "no reason");
		++cp->b->n_media_err;
		if (msg->scode >= 200) {
			cp->pub->final_status = 488;
			(void)reply_caller(cp, 488, "Not Acceptable Here", NULL,
					   NULL);
			mem_deref((void *)msg);
			bcall_end(cp, "media answer failed");
			return;
		}
		/* an early answer the media server refused: relay it bare */
		(void)reply_caller(cp, msg->scode, "Session Progress", NULL, msg);
	}
	else {
		bparty_media(&cp->pub->callee, sdp);
		(void)reply_caller(cp, msg->scode,
				   msg->scode >= 200 ? "OK" : "Session Progress",
				   sdp, msg);
		if (msg->scode >= 200 && msg->scode < 300) {
			cp->a.confirmed = true;
			cp->pub->state = BCALL_ANSWERED;
			cp->pub->answered = sipd_now_ms();
			++cp->b->n_answered;
			session_timer_update(cp, msg);
			bcall_event(cp, "call.answered");
		}
	}
	mem_deref((void *)msg);
	pending_next(cp);
}

/* Take the callee's response MSG through the media server: it is parked
 * at the head of cp->pending until H runs (offer: the callee offers, late
 * offer; else the callee answers the caller's offer). */
static int media_step(struct bcall_priv *cp, const struct sip_msg *msg,
		      const struct pl *sdp, bool offer, media_sdp_h *h)
{
	struct media_sdp_params p = {cp->pub->callid,
				     offer ? cp->b_.tag : cp->a.tag,
				     offer ? cp->a.tag : cp->b_.tag, sdp};
	struct pmsg *pm = mem_zalloc(sizeof(*pm), pmsg_destructor);
	int err;

	if (!pm)
		return ENOMEM;
	pm->msg = mem_ref((void *)msg);
	list_prepend(&cp->pending, &pm->le, pm);
	err = offer ? mediasrv_offer(cp->ms, &cp->ng, &p, h, cp) :
		      mediasrv_answer(cp->ms, &cp->ng, &p, h, cp);
	if (err) {
		cp->ng = NULL;
		mem_deref(pm);
	}
	return err;
}

static int media_answer(struct bcall_priv *cp, const struct sip_msg *msg,
			const struct pl *sdp)
{
	return media_step(cp, msg, sdp, false, answer_done);
}

/* ACK the callee's 2xx to our INVITE on dialog DLG (SDP: the answer, in a
 * late-offer call, or NULL) */
static void ack_dialog(struct bcall_priv *cp, struct sip_dialog *dlg,
		       enum sip_transp tp, const struct pl *sdp)
{
	if (sdp)
		(void)sip_drequestf(NULL, cp->b->sip, false, "ACK", dlg,
				    cp->inv_cseq, NULL, NULL, NULL, NULL,
				    "%HContent-Type: application/sdp\r\n"
				    "Content-Length: %zu\r\n\r\n%r",
				    sipmsg_contact, &tp, sdp->l, sdp);
	else
		(void)sip_drequestf(NULL, cp->b->sip, false, "ACK", dlg,
				    cp->inv_cseq, NULL, NULL, NULL, NULL,
				    "%HContent-Length: 0\r\n\r\n",
				    sipmsg_contact, &tp);
}

static void ack_callee_sdp(struct bcall_priv *cp, const struct pl *sdp)
{
	ack_dialog(cp, cp->b_.dlg, cp->b_.tp, sdp);
}

static void ack_callee(struct bcall_priv *cp)
{
	ack_callee_sdp(cp, NULL);
}

/* ---- late offer ---- */

static void late_offer_done(int err, const char *why, const struct pl *sdp,
			    void *arg)
{
	struct bcall_priv *cp = arg;
	struct pmsg *pm = list_ledata(list_head(&cp->pending));
	const struct sip_msg *msg;

	cp->ng = mem_deref(cp->ng);
	if (!pm)
		return;
	msg = mem_ref((void *)pm->msg);
	mem_deref(pm);
	mem_ref(cp);
	if (err) {
		log_warn("b2bua: [%s] media offer (late) failed: %s",
			 bcall_logid(cp), why ? why : "no reason");
		++cp->b->n_media_err;
		ack_callee(cp);
		cp->pub->final_status = 488;
		(void)reply_caller(cp, 488, "Not Acceptable Here", NULL, NULL);
		bcall_end(cp, "callee's offer not acceptable");
	}
	else {
		cp->media_created = true;
		cp->late_ack_wait = true;
		bparty_media(&cp->pub->callee, sdp);
		(void)reply_caller(cp, msg->scode, "OK", sdp, msg);
		cp->a.confirmed = true;
		cp->pub->state = BCALL_ANSWERED;
		cp->pub->answered = sipd_now_ms();
		++cp->b->n_answered;
		session_timer_update(cp, msg);
		bcall_event(cp, "call.answered");
		pending_next(cp);
	}
	mem_deref((void *)msg);
	mem_deref(cp);
}

static void late_answer_done(int err, const char *why, const struct pl *sdp,
			     void *arg)
{
	struct bcall_priv *cp = arg;

	cp->ng = mem_deref(cp->ng);
	if (err) {
		log_warn("b2bua: [%s] media answer (late) failed: %s",
			 bcall_logid(cp), why ? why : "no reason");
		++cp->b->n_media_err;
		ack_callee(cp);
		bcall_end(cp, "caller's answer not acceptable");
		return;
	}
	ack_callee_sdp(cp, sdp);
	cp->late_answer = mem_deref(cp->late_answer);
	cp->late_answer = mbuf_alloc(sdp->l);
	if (cp->late_answer)
		(void)mbuf_write_pl(cp->late_answer, sdp);
	bcall_event(cp, "call.updated");
}

void invite_late_abort(struct bcall_priv *cp)
{
	/* the callee's 2xx must be ACKed even when the call ends first */
	if (!cp->late_ack_wait)
		return;
	cp->late_ack_wait = false;
	ack_callee(cp);
}

void invite_late_ack(struct bcall_priv *cp, const struct sip_msg *ack)
{
	struct media_sdp_params p = {cp->pub->callid, cp->b_.tag, cp->a.tag,
				     NULL};
	struct pl sdp;

	if (!cp->late_ack_wait)
		return;
	cp->late_ack_wait = false;
	if (!sipmsg_sdp(ack, &sdp)) {
		ack_callee(cp);
		bcall_end(cp, "caller's ACK without the answer");
		return;
	}
	bparty_media(&cp->pub->caller, &sdp);
	p.sdp = &sdp;
	if (mediasrv_answer(cp->ms, &cp->ng, &p, late_answer_done, cp)) {
		cp->ng = NULL;
		ack_callee(cp);
		bcall_end(cp, "media server unavailable");
	}
}

static int media_offer_late(struct bcall_priv *cp, const struct sip_msg *msg,
			    const struct pl *sdp)
{
	return media_step(cp, msg, sdp, true, late_offer_done);
}

/* The callee leg's dialog is now DLG (owned), with the UA that sent MSG. */
static void callee_dialog_set(struct bcall_priv *cp, struct sip_dialog *dlg,
			      const struct sip_msg *msg)
{
	mem_deref(cp->b_.dlg);
	cp->b_.dlg = dlg;
	pl_strcpy(&msg->to.tag, cp->b_.tag, sizeof(cp->b_.tag));
	pl_strcpy(&msg->to.tag, cp->pub->callee.tag,
		  sizeof(cp->pub->callee.tag));
	cp->b_.tp = msg->tp;
}

/* A 2xx from another callee UA than the one whose answer made the dialog:
 * a forking proxy downstream (RFC 3261 13.2.2.4). Until the call is
 * answered the dialog moves to this UA (the caller saw one early dialog:
 * the B2BUA's); once it is, the extra UA gets ACK and BYE. 0: go on with
 * MSG as the callee's answer; EALREADY: done with it. */
static int callee_fork(struct bcall_priv *cp, const struct sip_msg *msg)
{
	struct sip_dialog *dlg = NULL;
	enum sip_transp tp = msg->tp;
	int err;

	err = sip_dialog_fork(&dlg, cp->b_.dlg0, msg);
	if (err) {
		log_warn("b2bua: [%s] cannot follow a forked 2xx: %s",
			 bcall_logid(cp), strerror(err));
		return 0;
	}
	if (!cp->b_.confirmed) {
		log_re(LOG_LVL_INFO, "b2bua: [%s] answered by another fork "
		       "(to-tag %r, early dialog was %s)", bcall_logid(cp),
		       &msg->to.tag, cp->b_.tag);
		callee_dialog_set(cp, dlg, msg);
		return 0;
	}
	ack_dialog(cp, dlg, tp, NULL);
	if (pl_strcmp(&msg->to.tag, cp->fork_byed)) {     /* once per fork */
		log_re(LOG_LVL_INFO, "b2bua: [%s] 2xx from another fork "
		       "(to-tag %r) after the answer: ACK and BYE",
		       bcall_logid(cp), &msg->to.tag);
		pl_strcpy(&msg->to.tag, cp->fork_byed, sizeof(cp->fork_byed));
		(void)sip_drequestf(NULL, cp->b->sip, true, "BYE", dlg, 0,
				    NULL, NULL, NULL, NULL,
				    "%HContent-Length: 0\r\n\r\n",
				    sipmsg_contact, &tp);
	}
	mem_deref(dlg);
	return EALREADY;
}

/* A 2xx we will not take: ACK it (RFC 3261 13.2.2.4), then BYE, on a
 * dialog of its own. */
static void callee_refuse_2xx(struct bcall_priv *cp, const struct sip_msg *msg)
{
	struct sip_dialog *dlg = NULL;
	enum sip_transp tp = msg->tp;

	if (sip_dialog_fork(&dlg, cp->b_.dlg0 ? cp->b_.dlg0 : cp->b_.dlg, msg))
		return;
	ack_dialog(cp, dlg, tp, NULL);
	(void)sip_drequestf(NULL, cp->b->sip, true, "BYE", dlg, 0, NULL, NULL,
			    NULL, NULL, "%HContent-Length: 0\r\n\r\n",
			    sipmsg_contact, &tp);
	mem_deref(dlg);
}

static void callee_response(struct bcall_priv *cp, const struct sip_msg *msg)
{
	struct pl sdp;
	bool has_sdp = sipmsg_sdp(msg, &sdp);
	char reason[64];

	if (msg->scode == 100)
		return;

	/* the media server tells a call's parties apart by tag: a callee
	 * answering with the caller's From-tag as its To-tag would make them
	 * one party there (issue 10, defect 1 reached through tally-sip) */
	if (msg->scode < 300 && !pl_strcmp(&msg->to.tag, cp->a.tag)) {
		log_warn("b2bua: [%s] callee's To-tag %.*s equals the "
			 "caller's From-tag: 502 to the caller",
			 bcall_logid(cp), (int)msg->to.tag.l, msg->to.tag.p);
		if (msg->scode >= 200)
			callee_refuse_2xx(cp, msg);
		cp->pub->final_status = 502;
		fail(cp, 502, "Bad Gateway (the callee's tag equals the "
		     "caller's)", "callee tag equals caller tag");
		return;
	}

	if (msg->scode >= 200 && msg->scode < 300 && cp->b_.tag[0] &&
	    pl_isset(&msg->to.tag) && pl_strcmp(&msg->to.tag, cp->b_.tag) &&
	    callee_fork(cp, msg))
		return;

	/* a dialog (early or confirmed) exists from the first tagged answer */
	if (pl_isset(&msg->to.tag) && msg->scode < 300 && !cp->b_.dlg0) {
		struct sip_dialog *dlg = NULL;

		if (sip_dialog_fork(&dlg, cp->b_.dlg, msg) == 0) {
			cp->b_.dlg0 = mem_ref(cp->b_.dlg);
			callee_dialog_set(cp, dlg, msg);
		}
	}
	else if (msg->scode >= 200 && msg->scode < 300 && cp->b_.dlg) {
		(void)sip_dialog_update(cp->b_.dlg, msg);
	}

	if (msg->scode < 200) {
		if (cp->pub->state < BCALL_EARLY) {
			cp->pub->state = BCALL_EARLY;
			bcall_event(cp, "call.updated");
		}
		/* in a late-offer call an unreliable 18x cannot carry an offer */
		if (has_sdp && !cp->late && !media_answer(cp, msg, &sdp))
			return;
		pl_strcpy(&msg->reason, reason, sizeof(reason));
		(void)reply_caller(cp, msg->scode, reason, NULL, msg);
		return;
	}

	if (msg->scode < 300 && cp->pub->state == BCALL_ANSWERED) {
		/* a retransmitted 2xx: our ACK was lost, send it again
		 * (late offer: once the caller's answer is in) */
		if (cp->late && cp->late_ack_wait)
			return;
		if (cp->late && cp->late_answer) {
			struct pl a = {(const char *)cp->late_answer->buf,
				       cp->late_answer->end};
			ack_callee_sdp(cp, &a);
		}
		else {
			ack_callee(cp);
		}
		return;
	}

	if (msg->scode < 300) {
		tmr_cancel(&cp->tmr_noanswer);
		cp->b_.confirmed = true;
		if (cp->late) {
			/* the callee's ACK waits for the caller's answer */
			if (has_sdp && !media_offer_late(cp, msg, &sdp))
				return;
			ack_callee(cp);
			cp->pub->final_status = 502;
			(void)reply_caller(cp, 502, "Bad Gateway (no offer in "
					   "the answer to an INVITE without SDP)",
					   NULL, NULL);
			bcall_end(cp, "callee sent no offer");
			return;
		}
		ack_callee(cp);
		if (has_sdp && !media_answer(cp, msg, &sdp))
			return;
		/* late offer is not supported: a 2xx without SDP to an INVITE
		 * with SDP is a protocol error of the callee */
		cp->pub->final_status = 502;
		(void)reply_caller(cp, 502, "Bad Gateway (answer without SDP)",
				   NULL, NULL);
		bcall_end(cp, "callee answered without SDP");
		return;
	}

	/* 3xx-6xx: the caller gets the same answer */
	pl_strcpy(&msg->reason, reason, sizeof(reason));
	(void)reply_caller(cp, msg->scode, reason, NULL, msg);
	{
		char cause[96];
		snprintf(cause, sizeof(cause), "rejected %u %s", msg->scode, reason);
		bcall_end(cp, cause);
	}
}

/* A response whose status is not 100-699 is malformed (RFC 3261 7.2):
 * never relayed. Before the answer the caller gets 502 and the call ends
 * (libre ends a "final" one itself; a "provisional" one below 100 is
 * CANCELled as the call ends); after it, it is dropped. */
static bool bad_status(struct bcall_priv *cp, const struct sip_msg *msg)
{
	char code[16], cause[64];

	if (sipmsg_scode_valid(msg, code, sizeof(code)))
		return false;
	++cp->b->n_bad_status;
	if (cp->pub->state == BCALL_ANSWERED) {
		log_warn("b2bua: [%s] invalid status %s from the callee after "
			 "the answer: dropped", bcall_logid(cp), code);
		return true;
	}
	log_warn("b2bua: [%s] invalid status %s from the callee: 502 to the "
		 "caller", bcall_logid(cp), code);
	snprintf(cause, sizeof(cause), "invalid status %s from callee", code);
	cp->pub->final_status = 502;
	fail(cp, 502, "Bad Gateway (invalid status code from the callee)",
	     cause);
	return true;
}

static void invite_resp(int err, const struct sip_msg *msg, void *arg)
{
	struct bcall_priv *cp = arg;

	if (cp->ending)
		return;
	if (err || !msg) {
		cp->pub->final_status = err == ETIMEDOUT ? 408 : 503;
		fail(cp, cp->pub->final_status,
		     err == ETIMEDOUT ? "Request Timeout" : "Service Unavailable",
		     "callee unreachable");
		return;
	}
	if (bad_status(cp, msg))
		return;
	if (cp->ng || !list_isempty(&cp->pending)) {
		struct pmsg *pm = mem_zalloc(sizeof(*pm), pmsg_destructor);
		if (pm) {
			pm->msg = mem_ref((void *)msg);
			list_append(&cp->pending, &pm->le, pm);
		}
		return;
	}
	callee_response(cp, msg);
}

void invite_stray_2xx(struct bcall_priv *cp, const struct sip_msg *msg)
{
	if (msg->cseq.num == cp->inv_cseq && cp->b_.dlg0)
		invite_resp(0, msg, cp);
}

/* ---- towards the callee ---- */

static int send_invite(struct bcall_priv *cp, const struct pl *sdp)
{
	const struct sip_msg *inv = cp->inv;
	struct hdr_copy hc = {inv, sipmsg_req_hdrs};
	char from_uri[256], to_uri[256], from_name[64];
	enum sip_transp tp;
	int err;

	pl_strcpy(&inv->from.auri, from_uri, sizeof(from_uri));
	pl_strcpy(&inv->to.auri, to_uri, sizeof(to_uri));
	safe_name(&inv->from.dname, from_name, sizeof(from_name));

	err = sip_dialog_alloc(&cp->b_.dlg, cp->target, to_uri,
			       from_name[0] ? from_name : NULL, from_uri,
			       NULL, 0);
	if (err)
		return err;
	b2bua_leg_index(cp->b, &cp->b_, sip_dialog_callid(cp->b_.dlg));
	cp->inv_cseq = sip_dialog_lseq(cp->b_.dlg);
	tp = SIP_TRANSP_UDP;
	if (strstr(cp->target, "transport=tcp"))
		tp = SIP_TRANSP_TCP;
	cp->b_.tp = tp;

	if (sdp)
		err = sip_drequestf(&cp->inv_out, cp->b->sip, true, "INVITE",
				    cp->b_.dlg, 0, NULL, NULL, invite_resp, cp,
				    "%H%H"
				    "Content-Type: application/sdp\r\n"
				    "Content-Length: %zu\r\n\r\n%r",
				    sipmsg_contact, &tp, sipmsg_copy_hdrs, &hc,
				    sdp->l, sdp);
	else
		err = sip_drequestf(&cp->inv_out, cp->b->sip, true, "INVITE",
				    cp->b_.dlg, 0, NULL, NULL, invite_resp, cp,
				    "%H%H"
				    "Content-Length: 0\r\n\r\n",
				    sipmsg_contact, &tp, sipmsg_copy_hdrs, &hc);
	if (!err) {
		cp->pub->state = BCALL_CALLING;
		log_info("b2bua: [%s] %s -> %s", bcall_logid(cp),
			 cp->pub->caller.uri, cp->target);
	}
	return err;
}

static void offer_done(int err, const char *why, const struct pl *sdp,
		       void *arg)
{
	struct bcall_priv *cp = arg;

	cp->ng = mem_deref(cp->ng);
	if (cp->ending)
		return;
	if (err) {
		log_warn("b2bua: [%s] media offer failed: %s", bcall_logid(cp),
			 why ? why : "no reason");
		++cp->b->n_media_err;
		if (err == ETIMEDOUT)
			fail(cp, 503, "Media Server Unavailable",
			     "media server unavailable");
		else
			fail(cp, 488, "Not Acceptable Here", "SDP not acceptable");
		return;
	}
	cp->media_created = true;
	if (send_invite(cp, sdp))
		fail(cp, 503, "Service Unavailable", "cannot reach callee");
}

static void caller_cancel(void *arg)
{
	struct bcall_priv *cp = arg;

	cp->cancelled = true;
	cp->pub->final_status = 487;
	(void)reply_caller(cp, 487, "Request Terminated", NULL, NULL);
	bcall_end(cp, "caller cancelled");
}

/* The user a call is routed by: a sip(s) URI's user part, a tel URI's
 * number (libre puts it where the host goes); empty for sip:host. */
static const struct pl *call_user(const struct sip_msg *msg)
{
	return pl_strcasecmp(&msg->uri.scheme, "tel") ? &msg->uri.user :
		&msg->uri.host;
}

/* Where does the INVITE go? 0 and TARGET, or the status to answer.
 * A Request-URI without a user part (sip:host) is routed only by a
 * static route whose target names no ${user}; otherwise it gets 484 (the
 * address is incomplete: no number to put in the target). */
static uint16_t route_call(struct b2bua *b, const struct sip_msg *msg,
			   bool authed, char *target, size_t size,
			   const char **reason)
{
	const struct pl *user = call_user(msg);

	if (pl_isset(user) && b->reg &&
	    !registrar_lookup(b->reg, user, target, size))
		return 0;
	if (b->routes && !routes_match(b->routes, user, target, size)) {
		if (b->routes_need_auth && !authed) {
			*reason = "Forbidden (routes need authentication)";
			return 403;
		}
		return 0;
	}
	if (!pl_isset(user)) {
		*reason = "Address Incomplete (no user part in the Request-URI)";
		return 484;
	}
	if (b->reg && registrar_known(b->reg, user)) {
		*reason = "Temporarily Unavailable";
		return 480;
	}
	*reason = "Not Found";
	return 404;
}

int invite_handle(struct b2bua *b, const struct sip_msg *msg)
{
	uint32_t se;
	struct bcall_priv *cp = NULL;
	const char *reason = NULL;
	char target[256];
	struct mediasrv *ms;
	struct pl sdp;
	uint16_t scode;
	bool authed;
	int err;

	if (!sip_msg_hdr(msg, SIP_HDR_CONTACT)) {
		(void)sip_reply(b->sip, msg, 400, "Bad Request (missing Contact)");
		return EBADMSG;
	}
	if (has_crlf(&msg->from.auri) || has_crlf(&msg->to.auri) ||
	    !pl_isset(&msg->from.auri) || !pl_isset(&msg->to.auri)) {
		(void)sip_reply(b->sip, msg, 400, "Bad Request (bad From or To)");
		return EBADMSG;
	}
	if (pl_isset(&msg->maxfwd) && pl_u32(&msg->maxfwd) == 0) {
		(void)sip_reply(b->sip, msg, 483, "Too Many Hops");
		return ELOOP;
	}
	if (session_expires(msg, &se) && se < SESSION_MIN_SE) {
		/* RFC 4028 8.1: we keep session timers, so a too short
		 * interval is refused with the one we accept */
		(void)sip_replyf(b->sip, msg, 422, "Session Interval Too Small",
				 "Min-SE: %u\r\nContent-Length: 0\r\n\r\n",
				 (unsigned)SESSION_MIN_SE);
		return EINVAL;
	}
	if (msg->mb && mbuf_get_left(msg->mb) && !sipmsg_sdp(msg, &sdp)) {
		(void)sip_replyf(b->sip, msg, 415, "Unsupported Media Type",
				 "Accept: application/sdp\r\n"
				 "Content-Length: 0\r\n\r\n");
		return EPROTO;
	}
	/* a caller claiming to be one of our accounts must prove it (407) */
	authed = false;
	if (b->reg && registrar_known(b->reg, &msg->from.uri.user)) {
		err = registrar_authorize(b->reg, msg, &msg->from.uri.user);
		if (err)
			return err;     /* challenged or refused */
		authed = true;
	}
	scode = route_call(b, msg, authed, target, sizeof(target), &reason);
	if (scode) {
		(void)sip_reply(b->sip, msg, scode, reason);
		return ENOENT;
	}
	ms = mediapool_pick(b->pool);
	if (!ms) {
		(void)sip_replyf(b->sip, msg, 503, "No Media Server Available",
				 "Retry-After: 10\r\nContent-Length: 0\r\n\r\n");
		return EAGAIN;
	}

	err = bcall_alloc(&cp, b);
	if (err) {
		(void)sip_reply(b->sip, msg, 500, "Server Internal Error");
		return err;
	}
	cp->inv = mem_ref((void *)msg);
	snprintf(cp->target, sizeof(cp->target), "%s", target);
	pl_strcpy(&msg->callid, cp->pub->callid, sizeof(cp->pub->callid));
	fill_party(&cp->pub->caller, &msg->from, NULL);
	fill_party(&cp->pub->callee, &msg->to, call_user(msg));
	cp->pub->callee.tag[0] = '\0';
	snprintf(cp->pub->callee.contact, sizeof(cp->pub->callee.contact),
		 "%s", target);
	pl_strcpy(&msg->from.tag, cp->a.tag, sizeof(cp->a.tag));
	{
		const struct sip_hdr *c = sip_msg_hdr(msg, SIP_HDR_CONTACT);
		struct sip_addr addr;
		if (c && !sip_addr_decode(&addr, &c->val))
			pl_strcpy(&addr.auri, cp->pub->caller.contact,
				  sizeof(cp->pub->caller.contact));
	}
	cp->a.tp = msg->tp;
	cp->ms = ms;
	mediasrv_calls_add(ms, 1);
	snprintf(cp->pub->mediasrv, sizeof(cp->pub->mediasrv), "%s",
		 mediasrv_name(ms));

	err = sip_strans_alloc(&cp->inv_st, b->sip, msg, caller_cancel, cp);
	if (!err)
		err = sip_treply(&cp->inv_st, b->sip, msg, 100, "Trying");
	if (!err)
		err = sip_dialog_accept(&cp->a.dlg, msg);
	if (err) {
		fail(cp, 400, "Bad Request", "cannot accept dialog");
		return err;
	}
	b2bua_leg_index(b, &cp->a, cp->pub->callid);
	bcall_event(cp, "call.created");

	if (b->no_answer_ms)
		tmr_start(&cp->tmr_noanswer, b->no_answer_ms, no_answer, cp);

	if (sipmsg_sdp(msg, &sdp)) {
		struct media_sdp_params p = {cp->pub->callid, cp->a.tag, NULL, &sdp};
		bparty_media(&cp->pub->caller, &sdp);
		err = mediasrv_offer(ms, &cp->ng, &p, offer_done, cp);
		if (err) {
			fail(cp, 503, "Media Server Unavailable",
			     "media server unavailable");
			return err;
		}
		return 0;
	}
	/* no SDP in the INVITE: late offer, the callee will offer */
	cp->late = true;
	if (send_invite(cp, NULL)) {
		fail(cp, 503, "Service Unavailable", "cannot reach callee");
		return EIO;
	}
	return 0;
}

void invite_cancel(struct bcall_priv *cp)
{
	cp->inv_out = mem_deref(cp->inv_out);
}
