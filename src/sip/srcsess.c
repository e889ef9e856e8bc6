/*
 * srcsess.c: one SIPREC recording session (RFC 7866) seen from the SRC:
 * the INVITE to the recorder, its ACK, the BYE, and the requests the
 * recorder sends inside the dialog (its BYE). Nothing here knows about
 * calls or media: rec.c gives the body and gets the answer.
 *
 *   tally-sip                                        recorder (SRS)
 *   INVITE sip:srs@10.0.0.9:5070;transport=tcp  ---->
 *     Contact: <sip:tally@10.0.0.1:5060;transport=tcp>;+sip.src
 *     Require: siprec
 *     Accept: application/sdp, application/rs-metadata+xml
 *     Content-Type: multipart/mixed;boundary=tally-...
 *                                              <---- 200 OK (SDP answer)
 *   ACK                                         ---->
 *   INVITE (re-INVITE: pause = every m= line     ---->
 *     a=inactive, resume = a=sendonly again, a
 *     medium added or dropped = port 0; metadata
 *     datamode partial)
 *                                              <---- 200 OK (SDP answer)
 *   ACK                                         ---->
 *   ...                                         <---- BYE (then 200 from us)
 *   BYE (Reason: SIP;cause=200;text="...")     ---->
 *
 * Why tally-sip's own dialog handling and not libre's sipsess: every
 * request tally-sip receives goes through one dispatcher (main.c), which
 * routes in-dialog requests by Call-ID to legs or, now, to recordings;
 * sipsess would add a second listener competing for the same requests and
 * its own offer/answer model where the body is multipart. The B2BUA's
 * callee leg (invite.c) already does the same with sip_dialog and
 * sip_drequestf.
 *
 * Transport: libre takes the URI's transport parameter, else UDP (it never
 * switches by size; src/sip/request.c in libre 1.1.0). RFC 3261 18.1.1 asks
 * for a congestion-controlled transport for requests over 1300 bytes, and
 * an audio+video SIPREC INVITE is 3-4 kB: without a transport parameter the
 * request goes over TCP once it would exceed SRCSESS_UDP_MAX. An explicit
 * ";transport=udp" is honoured (logged).
 *
 * Timeout: libre gives up on an unanswered INVITE after 64*T1 = 32 s; a
 * recording that has not started after timeout_ms is not worth waiting
 * for (and failover should move on), so the request is dropped (libre
 * CANCELs it when a provisional answer came) and ETIMEDOUT reported.
 */
#include <errno.h>
#include <string.h>
#include "log.h"
#include "multipart.h"
#include "b2bua.h"
#include "rec.h"

enum {
	SRCSESS_UDP_MAX = 1300,
	SRCSESS_HDR_ESTIMATE = 700,   /* our headers, Via and Contact */
};

struct srcsess {
	struct sip *sip;              /* borrowed */
	struct sip_dialog *dlg;
	struct sip_request *req;      /* the INVITE while unanswered */
	struct tmr tmr;
	enum sip_transp tp;
	uint32_t inv_cseq;
	struct sip_request *mreq;     /* a re-INVITE while unanswered */
	uint32_t mod_cseq;
	srcsess_answer_h *mh;         /* its answer handler */
	bool established;             /* 2xx received and ACKed */
	bool byed;                    /* BYE sent or received */
	char uri[REC_URI_MAX + 16];
	char logid[40];
	srcsess_answer_h *ah;
	srcsess_close_h *ch;
	void *arg;
};

static void destructor(void *arg)
{
	struct srcsess *ss = arg;

	tmr_cancel(&ss->tmr);
	/* an INVITE still pending: libre CANCELs it once it got a
	 * provisional answer, and absorbs the rest */
	ss->req = mem_deref(ss->req);
	ss->mreq = mem_deref(ss->mreq);
	mem_deref(ss->dlg);
}

static int contact_src(struct re_printf *pf, const enum sip_transp *tp)
{
	return re_hprintf(pf, "Contact: <sip:tally@%J%s>;+sip.src\r\n",
			  sipmsg_laddr(),
			  *tp == SIP_TRANSP_TCP ? ";transport=tcp" : "");
}

static void ack_send(struct srcsess *ss, uint32_t cseq)
{
	(void)sip_drequestf(NULL, ss->sip, false, "ACK", ss->dlg,
			    cseq, NULL, NULL, NULL, NULL,
			    "%HContent-Length: 0\r\n\r\n", contact_src,
			    &ss->tp);
}

/* The SDP of MSG: the body if application/sdp, or the application/sdp
 * part of a multipart body. */
static bool answer_sdp(const struct sip_msg *msg, struct pl *sdp)
{
	struct multipart mp;
	const struct mpart *part;
	const struct sip_hdr *ct;
	struct pl body;
	const char *why;

	if (sipmsg_sdp(msg, sdp))
		return true;
	if (!msg->mb || !mbuf_get_left(msg->mb) ||
	    msg_ctype_cmp(&msg->ctyp, "multipart", "mixed"))
		return false;
	body.p = (const char *)mbuf_buf(msg->mb);
	body.l = mbuf_get_left(msg->mb);
	ct = sip_msg_hdr(msg, SIP_HDR_CONTENT_TYPE);
	if (!ct || multipart_parse(&mp, &ct->val, &body, &why))
		return false;
	part = multipart_find(&mp, "application/sdp");
	if (!part)
		return false;
	*sdp = part->body;
	return true;
}

/*
 * The part of a (re-)INVITE's answer both share (WHAT names it in logs):
 * provisional answers are waited out; an error or a non-2xx goes to H as
 * it is. True for a 2xx: the caller ACKs it (ack_answer()) once its
 * dialog is usable.
 */
static bool final_2xx(struct srcsess *ss, int err, const struct sip_msg *msg,
		      srcsess_answer_h *h, const char *what)
{
	if (!err && msg && msg->scode < 200)
		return false;
	tmr_cancel(&ss->tmr);
	/* libre has cleared the request pointer for a final answer */
	if (err || !msg) {
		log_info("rec: [%s] %s to %s failed: %s", ss->logid, what,
			 ss->uri, strerror(err ? err : EPROTO));
		h(err ? err : EPROTO, NULL, NULL, ss->arg);
		return false;
	}
	if (msg->scode >= 300) {
		log_info("rec: [%s] recorder %s answered the %s %u %.*s",
			 ss->logid, ss->uri, what, msg->scode,
			 (int)msg->reason.l, msg->reason.p);
		h(0, msg, NULL, ss->arg);
		return false;
	}
	return true;
}

/* ACK the 2xx MSG to the INVITE with CSEQ, then H with its SDP. */
static void ack_answer(struct srcsess *ss, uint32_t cseq,
		       const struct sip_msg *msg, srcsess_answer_h *h)
{
	struct pl sdp;
	bool has_sdp;

	ack_send(ss, cseq);
	has_sdp = answer_sdp(msg, &sdp);
	h(0, msg, has_sdp ? &sdp : NULL, ss->arg);
}

static void invite_resp(int err, const struct sip_msg *msg, void *arg)
{
	struct srcsess *ss = arg;

	if (!final_2xx(ss, err, msg, ss->ah, "INVITE"))
		return;
	if (!ss->established) {
		if (sip_dialog_create(ss->dlg, msg)) {
			/* no usable dialog (a 2xx without Contact...):
			 * nothing to ACK or BYE on */
			log_warn("rec: [%s] unusable 2xx from %s", ss->logid,
				 ss->uri);
			ss->ah(EBADMSG, NULL, NULL, ss->arg);
			return;
		}
		ss->established = true;
	}
	ack_answer(ss, ss->inv_cseq, msg, ss->ah);
}

static void timeout_h(void *arg)
{
	struct srcsess *ss = arg;

	log_info("rec: [%s] no final answer from %s: giving up", ss->logid,
		 ss->uri);
	if (ss->mreq) {
		ss->mreq = mem_deref(ss->mreq);
		ss->mh(ETIMEDOUT, NULL, NULL, ss->arg);
		return;
	}
	ss->req = mem_deref(ss->req);
	ss->ah(ETIMEDOUT, NULL, NULL, ss->arg);
}

/* Does URI carry a transport parameter (before any header part)? */
static bool uri_has_transport(const char *uri, enum sip_transp *tp)
{
	struct pl pl, val;
	struct uri u;

	pl_set_str(&pl, uri);
	if (uri_decode(&u, &pl))
		return false;
	if (msg_param_decode(&u.params, "transport", &val))
		return false;
	*tp = !pl_strcasecmp(&val, "udp") ? SIP_TRANSP_UDP :
	      !pl_strcasecmp(&val, "tcp") ? SIP_TRANSP_TCP : SIP_TRANSP_NONE;
	return true;
}

/*
 * Send the recording INVITE to P->uri with P->body (multipart/mixed, parts
 * delimited by P->boundary). AH runs once with the final answer (2xx
 * ACKed already) or an error; after a 2xx, CH runs if the recorder ends
 * the session. Deref *SSP to drop the session (an unanswered INVITE is
 * then CANCELled; an established one is left without BYE: call
 * srcsess_bye() first). Returns 0, EINVAL (bad URI), ENOMEM or a SIP
 * errno (no handler call then).
 */
int srcsess_connect(struct srcsess **ssp, const struct srcsess_params *p,
		    srcsess_answer_h *ah, srcsess_close_h *ch, void *arg)
{
	struct srcsess *ss;
	enum sip_transp tp = SIP_TRANSP_UDP;
	char from[96];
	size_t size;
	int err;

	if (!ssp || !p || !p->sip || !p->uri || !p->body || !p->boundary ||
	    !ah || !ch || !rec_uri_valid(p->uri))
		return EINVAL;
	ss = mem_zalloc(sizeof(*ss), destructor);
	if (!ss)
		return ENOMEM;
	tmr_init(&ss->tmr);
	ss->sip = p->sip;
	ss->ah = ah;
	ss->ch = ch;
	ss->arg = arg;
	str_ncpy(ss->logid, p->logid ? p->logid : "", sizeof(ss->logid));

	size = p->body->end + SRCSESS_HDR_ESTIMATE + 2 * strlen(p->uri);
	if (uri_has_transport(p->uri, &tp)) {
		str_ncpy(ss->uri, p->uri, sizeof(ss->uri));
		if (tp == SIP_TRANSP_UDP && size > SRCSESS_UDP_MAX)
			log_info("rec: [%s] %s says transport=udp: the "
				 "%zu-byte INVITE goes over UDP", ss->logid,
				 p->uri, size);
	}
	else if (size > SRCSESS_UDP_MAX) {
		tp = SIP_TRANSP_TCP;
		re_snprintf(ss->uri, sizeof(ss->uri), "%s;transport=tcp",
			    p->uri);
	}
	else {
		str_ncpy(ss->uri, p->uri, sizeof(ss->uri));
	}
	if (tp != SIP_TRANSP_UDP && tp != SIP_TRANSP_TCP) {
		err = EPROTONOSUPPORT;
		goto out;
	}
	ss->tp = tp;

	re_snprintf(from, sizeof(from), "sip:tally@%J", sipmsg_laddr());
	err = sip_dialog_alloc(&ss->dlg, ss->uri, p->uri, "tally SRC", from,
			       NULL, 0);
	if (err)
		goto out;
	ss->inv_cseq = sip_dialog_lseq(ss->dlg);
	err = sip_drequestf(&ss->req, ss->sip, true, "INVITE", ss->dlg, 0,
			    NULL, NULL, invite_resp, ss,
			    "%H"
			    "Require: siprec\r\n"
			    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
			    "Accept: application/sdp, "
			    "application/rs-metadata+xml\r\n"
			    "Content-Type: multipart/mixed;boundary=%s\r\n"
			    "Content-Length: %zu\r\n\r\n%b",
			    contact_src, &ss->tp, p->boundary, p->body->end,
			    p->body->buf, p->body->end);
	if (err)
		goto out;
	if (p->timeout_ms)
		tmr_start(&ss->tmr, p->timeout_ms, timeout_h, ss);
	log_info("rec: [%s] INVITE to %s (%s, %zu-byte body, Call-ID %s)",
		 ss->logid, ss->uri, sip_transp_name(tp), p->body->end,
		 sip_dialog_callid(ss->dlg));
 out:
	if (err)
		mem_deref(ss);
	else
		*ssp = ss;
	return err;
}

static void modify_resp(int err, const struct sip_msg *msg, void *arg)
{
	struct srcsess *ss = arg;

	if (final_2xx(ss, err, msg, ss->mh, "re-INVITE"))
		ack_answer(ss, ss->mod_cseq, msg, ss->mh);
}

/*
 * A re-INVITE in the established session (RFC 7866 s8: pause, resume,
 * media added or dropped, metadata updated) with BODY (multipart/mixed,
 * BOUNDARY). MH runs once with the final answer (a 2xx ACKed already,
 * SDP its SDP) or an error (ETIMEDOUT after TIMEOUT_MS, 0: libre's);
 * not after the session is derefed. Returns 0, EINVAL (no dialog yet or
 * BYE sent), EALREADY (a re-INVITE is pending), or a SIP errno (MH is
 * then not called).
 */
int srcsess_modify(struct srcsess *ss, const char *boundary,
		   const struct mbuf *body, uint32_t timeout_ms,
		   srcsess_answer_h *mh)
{
	int err;

	if (!ss || !boundary || !body || !mh || !ss->established ||
	    ss->byed)
		return EINVAL;
	if (ss->mreq || ss->req)
		return EALREADY;
	ss->mh = mh;
	ss->mod_cseq = sip_dialog_lseq(ss->dlg);
	err = sip_drequestf(&ss->mreq, ss->sip, true, "INVITE", ss->dlg, 0,
			    NULL, NULL, modify_resp, ss,
			    "%H"
			    "Require: siprec\r\n"
			    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
			    "Accept: application/sdp, "
			    "application/rs-metadata+xml\r\n"
			    "Content-Type: multipart/mixed;boundary=%s\r\n"
			    "Content-Length: %zu\r\n\r\n%b",
			    contact_src, &ss->tp, boundary, body->end,
			    body->buf, body->end);
	if (err)
		return err;
	if (timeout_ms)
		tmr_start(&ss->tmr, timeout_ms, timeout_h, ss);
	log_info("rec: [%s] re-INVITE to %s (%zu-byte body)", ss->logid,
		 ss->uri, body->end);
	return 0;
}

/* End the session with BYE (REASON in a Reason header) if its dialog is
 * up and nobody sent BYE yet. No answer is waited for. */
void srcsess_bye(struct srcsess *ss, const char *reason)
{
	if (!ss || !ss->established || ss->byed)
		return;
	ss->byed = true;
	(void)sip_drequestf(NULL, ss->sip, true, "BYE", ss->dlg, 0, NULL,
			    NULL, NULL, NULL,
			    "%H"
			    "Reason: SIP;cause=200;text=\"%s\"\r\n"
			    "Content-Length: 0\r\n\r\n",
			    contact_src, &ss->tp, reason ? reason : "");
}

const char *srcsess_callid(const struct srcsess *ss)
{
	return ss && ss->dlg ? sip_dialog_callid(ss->dlg) : "";
}

bool srcsess_is_tcp(const struct srcsess *ss)
{
	return ss && ss->tp == SIP_TRANSP_TCP;
}

/* Is MSG (a request with a To-tag) in this session's dialog? */
bool srcsess_match(const struct srcsess *ss, const struct sip_msg *msg)
{
	if (!ss || !ss->established || !ss->dlg ||
	    pl_strcmp(&msg->callid, sip_dialog_callid(ss->dlg)))
		return false;
	return sip_dialog_cmp(ss->dlg, msg);
}

/* A request from the recorder inside the session (srcsess_match). */
void srcsess_request(struct srcsess *ss, const struct sip_msg *msg)
{
	if (!pl_strcmp(&msg->met, "ACK"))
		return;
	if (!pl_strcmp(&msg->met, "BYE")) {
		(void)sip_reply(ss->sip, msg, 200, "OK");
		if (ss->byed)
			return;
		ss->byed = true;
		log_info("rec: [%s] BYE from the recorder %s", ss->logid,
			 ss->uri);
		ss->ch("session ended by the recorder", ss->arg);
		return;
	}
	if (!pl_strcmp(&msg->met, "OPTIONS") || !pl_strcmp(&msg->met, "INFO")) {
		(void)sip_reply(ss->sip, msg, 200, "OK");
		return;
	}
	if (!pl_strcmp(&msg->met, "INVITE") || !pl_strcmp(&msg->met, "UPDATE")) {
		/* a session refresh or a change by the SRS: not supported in
		 * this slice; the session goes on as it is */
		(void)sip_reply(ss->sip, msg, 488, "Not Acceptable Here");
		return;
	}
	(void)sip_replyf(ss->sip, msg, 405, "Method Not Allowed",
			 "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
			 "Content-Length: 0\r\n\r\n");
}

/* A 2xx to our INVITE after libre ended its transaction: our ACK was
 * lost (UDP), send it again. */
void srcsess_response(struct srcsess *ss, const struct sip_msg *msg)
{
	if (!ss->established || (msg->cseq.num != ss->inv_cseq &&
				 msg->cseq.num != ss->mod_cseq) ||
	    msg->scode < 200 || msg->scode >= 300 ||
	    pl_strcmp(&msg->callid, sip_dialog_callid(ss->dlg)))
		return;
	ack_send(ss, msg->cseq.num);
}
