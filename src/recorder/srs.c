/*
 * srs.c: the SIP side of the Session Recording Server (RFC 7866 s6): a UAS
 * that accepts recording sessions, follows their re-INVITEs and UPDATEs,
 * and ends them on BYE.
 *
 * An initial INVITE is checked in this order; the first failure answers:
 *   Require without siprec          421 Extension Required (Require: siprec)
 *     unless it is a SIPREC INVITE all the same: a Contact with +sip.src
 *     and a body with a metadata part (AudioCodes Mediant SBCs, 7.40A,
 *     send no Require). That one is recorded, counted (status
 *     sip.no_require_siprec) and warned about once per source address;
 *     strict-siprec = yes restores RFC 7866 s6.1.1's 421 for it too.
 *   sessions at max-sessions        503 Service Unavailable (session limit)
 *   free space under min-free-mb    503 Service Unavailable (disk space low)
 *   no body / not multipart or SDP  400 / 415
 *   multipart that does not parse   400 <what multipart.c said>
 *   SDP that does not parse         400 SDP: <what sdp.c said>
 *   more than 16 m= lines           488 (SDP: more than 16 m= lines)
 *   metadata that does not parse,   400 <what rsmeta.c said>
 *   or names labels not in the SDP
 *   policy "none"                   488 Not Acceptable Here (policy: ...)
 *   no ports left                   503 (no media ports)
 * then the session is made (folder, session.json, catalog row) and answered
 * 200 OK with Contact ...;+sip.srs and one m= line per offered one.
 * Metadata is optional: without it the session is recorded anyway and the
 * participant mapping is unknown (RFC 7866 s9.2 lets the SRS ask for a
 * snapshot; we record what we get).
 *
 * In the dialog: re-INVITE and UPDATE may carry a new offer (pause with
 * a=inactive, resume, new or removed streams) and/or metadata (complete or
 * partial); both are answered 200 with the new answer. BYE ends the
 * session. ACK stops our 2xx retransmissions (UDP).
 *
 * Worked example:
 *   INVITE sip:srs@127.0.0.1:5090 SIP/2.0
 *   Require: siprec
 *   Contact: <sip:src@127.0.0.1:5060>;+sip.src
 *   Content-Type: multipart/mixed;boundary=foobar
 *   (SDP with 4 m= lines, labels 1-4; metadata: 2 participants)
 *
 *   SIP/2.0 200 OK
 *   Contact: <sip:srs@127.0.0.1:5090>;+sip.srs
 *   Content-Type: application/sdp
 *   m=audio 40000 ... a=label:1 a=recvonly, m=video 40002 ..., ...
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>
#include "log.h"
#include "sdp.h"
#include "multipart.h"
#include "recd.h"

enum { OK_TRIES = 10, BODY_MAX = 256 * 1024 };

struct body {
	struct pl sdp;          /* empty: none */
	struct pl meta;         /* empty: none */
};

static bool require_siprec_h(const struct sip_hdr *hdr,
			     const struct sip_msg *msg, void *arg)
{
	struct pl v = hdr->val, tag;
	(void)msg;
	(void)arg;

	while (!re_regex(v.p, v.l, "[^, \t]+", &tag)) {
		if (!pl_strcasecmp(&tag, "siprec"))
			return true;
		v.l -= (size_t)(tag.p + tag.l - v.p);
		v.p = tag.p + tag.l;
	}
	return false;
}

static bool has_siprec(const struct sip_msg *msg)
{
	return NULL != sip_msg_hdr_apply(msg, true, SIP_HDR_REQUIRE,
					 require_siprec_h, NULL);
}

/* Contact: <...>;+sip.src (RFC 7866 s6.1.1: the SRC's feature tag). */
static bool src_contact(const struct sip_msg *msg)
{
	const struct sip_hdr *h = sip_msg_hdr(msg, SIP_HDR_CONTACT);
	struct sip_addr addr;
	struct pl v;

	if (!h || sip_addr_decode(&addr, &h->val))
		return false;
	return 0 == msg_param_exists(&addr.params, "+sip.src", &v);
}

static bool lax_warned(struct recd *rd, const struct sa *src)
{
	unsigned i, n = MIN(rd->nlax_warned, ARRAY_SIZE(rd->lax_warned));

	for (i = 0; i < n; i++)
		if (sa_cmp(&rd->lax_warned[i], src, SA_ADDR))
			return true;
	/* a ring: past 32 SRCs the oldest may be warned about again */
	rd->lax_warned[rd->nlax_warned++ % ARRAY_SIZE(rd->lax_warned)] =
		*src;
	return false;
}

static int contact_print(struct re_printf *pf, const struct sip_msg *msg)
{
	if (msg->tp == SIP_TRANSP_TCP)
		return re_hprintf(pf, "Contact: <sip:srs@%J;transport=tcp>"
				  ";+sip.srs\r\n", &msg->dst);
	return re_hprintf(pf, "Contact: <sip:srs@%J>;+sip.srs\r\n", &msg->dst);
}

/* Split the body into SDP and metadata. 0, or a SIP status with *WHY. */
static uint16_t body_split(const struct sip_msg *msg, struct body *b,
			   const char **why)
{
	const struct sip_hdr *ct = sip_msg_hdr(msg, SIP_HDR_CONTENT_TYPE);
	struct pl body;

	memset(b, 0, sizeof(*b));
	body.p = (const char *)mbuf_buf(msg->mb);
	body.l = mbuf_get_left(msg->mb);
	if (!body.l)
		return 0;
	if (body.l > BODY_MAX) {
		*why = "Bad Request (body too large)";
		return 413;
	}
	if (!ct) {
		*why = "Bad Request (body without Content-Type)";
		return 400;
	}
	if (msg_ctype_cmp(&msg->ctyp, "application", "sdp")) {
		b->sdp = body;
		return 0;
	}
	if (msg_ctype_cmp(&msg->ctyp, "application", "rs-metadata") ||
	    msg_ctype_cmp(&msg->ctyp, "application", "rs-metadata+xml")) {
		b->meta = body;
		return 0;
	}
	if (msg_ctype_cmp(&msg->ctyp, "multipart", "mixed")) {
		struct multipart mp;
		const struct mpart *p;

		static char buf[160];   /* main thread only */

		if (multipart_parse(&mp, &ct->val, &body, why)) {
			(void)snprintf(buf, sizeof(buf), "Bad Request (%s)",
				       *why ? *why : "multipart");
			*why = buf;
			return 400;
		}
		p = multipart_find(&mp, "application/sdp");
		if (p)
			b->sdp = p->body;
		p = multipart_find(&mp, "application/rs-metadata+xml");
		if (!p)
			p = multipart_find(&mp, "application/rs-metadata");
		if (p)
			b->meta = p->body;
		if (!pl_isset(&b->sdp) && !pl_isset(&b->meta)) {
			*why = "Unsupported Media Type (no SDP or metadata part)";
			return 415;
		}
		return 0;
	}
	*why = "Unsupported Media Type";
	return 415;
}

static uint16_t meta_apply(struct rsmeta *m, const struct body *b,
			   const struct msdp *sdp, const char **why)
{
	const char *labels[MSDP_MAX_MEDIA];
	char lbuf[MSDP_MAX_MEDIA][SF_ID_MAX];
	struct rsmeta *tmp;
	size_t i, n = 0;
	int err;

	if (!pl_isset(&b->meta))
		return 0;
	tmp = mem_alloc(sizeof(*tmp), NULL);
	if (!tmp) {
		*why = "Server Internal Error (out of memory)";
		return 500;
	}
	*tmp = *m;
	err = rsmeta_apply(tmp, b->meta.p, b->meta.l, why);
	if (!err && sdp) {
		for (i = 0; i < sdp->nmedia; i++) {
			if (!pl_isset(&sdp->media[i].label))
				continue;
			(void)pl_strcpy(&sdp->media[i].label, lbuf[n],
					sizeof(lbuf[n]));
			labels[n] = lbuf[n];
			++n;
		}
		err = rsmeta_check(tmp, labels, n, why);
	}
	if (!err)
		*m = *tmp;
	mem_deref(tmp);
	return err ? 400 : 0;
}

static bool disk_low(const struct recd *rd)
{
	struct statvfs vfs;

	if (!rd->conf.min_free_mb || statvfs(rd->conf.storage, &vfs))
		return false;
	return (uint64_t)vfs.f_bavail * vfs.f_frsize / (1024 * 1024) <
		rd->conf.min_free_mb;
}

/* 200 OK with our SDP answer; a 2xx to an INVITE over UDP is resent until
 * its ACK (RFC 3261 13.3.1.4). */
static int reply_ok(struct rsess *rs, const struct sip_msg *msg)
{
	struct recd *rd = rs->rd;
	bool inv = !pl_strcmp(&msg->met, "INVITE");
	struct mbuf *mb = NULL;
	int err;

	err = sip_treplyf(NULL, inv ? &mb : NULL, rd->sip, msg, false, 200,
			  "OK", "%H"
			  "Supported: siprec\r\n"
			  "Content-Type: application/sdp\r\n"
			  "Content-Length: %zu\r\n\r\n%b",
			  contact_print, msg, rs->answer->end,
			  rs->answer->buf, rs->answer->end);
	if (err || !mb)
		return err;
	if (msg->tp != SIP_TRANSP_UDP) {
		mem_deref(mb);
		return 0;
	}
	mem_deref(rs->ok_mb);
	rs->ok_mb = mb;
	sip_reply_addr(&rs->ok_dst, msg, 0 == msg_param_exists(
			       &msg->via.params, "rport", &(struct pl){0}));
	mem_deref(rs->ok_sock);
	rs->ok_sock = mem_ref(msg->sock);
	rs->ok_tp = msg->tp;
	rs->ok_txc = 0;
	rs->ok_cseq = msg->cseq.num;
	rs->ok_next = tmr_jiffies() + 500;
	return 0;
}

void srs_acked(struct rsess *rs)
{
	rs->ok_mb = mem_deref(rs->ok_mb);
	rs->ok_sock = mem_deref(rs->ok_sock);
	rs->ok_txc = 0;
}

/* Every 100 ms from main.c: 2xx retransmissions, T1 doubling to T2. */
void srs_ok_tick(struct recd *rd)
{
	uint64_t now = tmr_jiffies();
	struct le *le = list_head(&rd->all);

	while (le) {
		struct rsess *rs = le->data;

		le = le->next;
		if (!rs->ok_mb || now < rs->ok_next)
			continue;
		if (++rs->ok_txc > OK_TRIES) {
			log_warn("srs: [%s] no ACK for our 200: ending",
				 rs->sf.id);
			srs_acked(rs);
			rsess_end(rs, "no ACK");
			continue;
		}
		rs->ok_mb->pos = 0;
		(void)sip_send(rd->sip, rs->ok_sock, rs->ok_tp, &rs->ok_dst,
			       rs->ok_mb);
		rs->ok_next = now + MIN(500u << rs->ok_txc, 4000u);
	}
}

static void policy_aors(const struct rsmeta *m, const char **aors, size_t *n)
{
	size_t i;

	*n = 0;
	for (i = 0; i < m->nparts && *n < SF_PARTS_MAX; i++)
		if (m->parts[i].aor[0])
			aors[(*n)++] = m->parts[i].aor;
}

static void refuse(struct recd *rd, const struct sip_msg *msg,
		   uint16_t scode, const char *reason)
{
	++rd->st.rejected;
	log_info("srs: [%.*s] %.*s refused: %u %s", (int)msg->callid.l,
		 msg->callid.p, (int)msg->met.l, msg->met.p, scode, reason);
	if (scode == 421)
		(void)sip_treplyf(NULL, NULL, rd->sip, msg, false, scode,
				  reason, "Require: siprec\r\n"
				  "Content-Length: 0\r\n\r\n");
	else if (scode == 503)
		(void)sip_treplyf(NULL, NULL, rd->sip, msg, false, scode,
				  reason, "Retry-After: 30\r\n"
				  "Content-Length: 0\r\n\r\n");
	else if (scode == 415)
		(void)sip_treplyf(NULL, NULL, rd->sip, msg, false, scode,
				  reason, "Accept: application/sdp, "
				  "application/rs-metadata, "
				  "application/rs-metadata+xml, "
				  "multipart/mixed\r\n"
				  "Content-Length: 0\r\n\r\n");
	else
		(void)sip_reply(rd->sip, msg, scode, reason);
}

static void new_invite(struct recd *rd, const struct sip_msg *msg)
{
	char reason[160];
	const char *why = NULL, *rule = NULL;
	char from[SF_TEXT_MAX];
	const char *aors[SF_PARTS_MAX];
	struct rsmeta *meta = NULL;
	struct msdp *sdp = NULL;
	struct rsess *rs = NULL;
	struct body b;
	enum rec_media allow;
	bool on[SF_STREAMS_MAX] = {false};
	bool no_require = false;
	size_t naors;
	uint16_t scode;
	int err;

	++rd->st.invites;
	if (!has_siprec(msg)) {
		bool lax = !rd->conf.strict_siprec && src_contact(msg) &&
			!body_split(msg, &b, &why) && pl_isset(&b.meta);

		if (!lax) {
			refuse(rd, msg, 421, "Extension Required (siprec)");
			return;
		}
		if (!lax_warned(rd, &msg->src))
			log_re(LOG_LVL_WARN, "srs: [%H] SRC %j sends SIPREC "
			       "INVITEs without Require: siprec (+sip.src "
			       "and metadata): recorded anyway "
			       "(strict-siprec = yes refuses them)",
			       log_safe, &msg->callid, &msg->src);
		no_require = true;
	}
	if (rd->nsess >= rd->conf.max_sessions) {
		refuse(rd, msg, 503, "Service Unavailable (session limit)");
		return;
	}
	if (disk_low(rd)) {
		refuse(rd, msg, 503, "Service Unavailable (disk space low)");
		return;
	}
	scode = body_split(msg, &b, &why);
	if (scode) {
		refuse(rd, msg, scode, why);
		return;
	}
	if (!pl_isset(&b.sdp)) {
		refuse(rd, msg, 400, "Bad Request (no SDP offer)");
		return;
	}
	if (msdp_parse(&sdp, &b.sdp, &why)) {
		bool many = why && strstr(why, "m= lines");

		(void)snprintf(reason, sizeof(reason), "%s (SDP: %s)",
			       many ? "Not Acceptable Here" : "Bad Request",
			       why ? why : "does not parse");
		refuse(rd, msg, many ? 488 : 400, reason);
		return;
	}
	meta = mem_zalloc(sizeof(*meta), NULL);
	if (!meta) {
		refuse(rd, msg, 500, "Server Internal Error");
		goto out;
	}
	scode = meta_apply(meta, &b, sdp, &why);
	if (scode) {
		(void)snprintf(reason, sizeof(reason), "Bad Request (%s)", why);
		refuse(rd, msg, scode, reason);
		goto out;
	}
	policy_aors(meta, aors, &naors);
	(void)pl_strcpy(&msg->from.auri, from, sizeof(from));
	allow = policy_decide(rd->policy, aors, naors, from, &rule);
	if (allow == REC_NONE) {
		(void)snprintf(reason, sizeof(reason),
			       "Not Acceptable Here (policy: not recorded)");
		refuse(rd, msg, 488, reason);
		goto out;
	}

	err = rsess_alloc(&rs, rd, msg);
	if (err) {
		refuse(rd, msg, 500, "Server Internal Error (storage)");
		goto out;
	}
	rs->allow = allow;
	*rs->meta = *meta;
	rs->sf.has_metadata = pl_isset(&b.meta);
	if (pl_isset(&b.meta)) {
		rsmeta_to_sessfile(rs->meta, &rs->sf);
		if (rs->meta->session_id[0])
			(void)snprintf(rs->sf.session_id,
				       sizeof(rs->sf.session_id), "%s",
				       rs->meta->session_id);
		rsess_keep(rs, "metadata", "xml", &rs->nmeta, &b.meta);
	}
	rsess_keep(rs, "offer", "sdp", &rs->nsdp, &b.sdp);
	err = answer_make(rs, sdp, allow, rs->answer);
	if (err == ENOSPC) {
		refuse(rd, msg, 503, "Service Unavailable (no media ports)");
		goto fail;
	}
	if (!err)
		err = rsess_apply(rs, NULL, on, 0);
	if (err) {
		refuse(rd, msg, 500, "Server Internal Error (media)");
		goto fail;
	}
	{
		struct pl ans = {(const char *)rs->answer->buf, rs->answer->end};
		unsigned n = rs->nsdp - 1;
		rsess_keep(rs, "answer", "sdp", &n, &ans);
	}
	(void)rsess_save(rs);      /* the catalog row exists from here on */
	err = reply_ok(rs, msg);
	if (err) {
		log_err("srs: [%s] cannot send 200: %s", rs->sf.id,
			strerror(err));
		rsess_end(rs, "reply failed");
		goto out;
	}
	++rd->st.accepted;
	if (no_require)
		++rd->st.no_require;
	log_info("srs: [%s] recording %.*s from %s: %zu streams, policy %s "
		 "(%s), %zu participants", rs->sf.id, (int)msg->callid.l,
		 msg->callid.p, rs->sf.src, rs->sf.nstreams,
		 rec_media_name(allow), rule, rs->sf.nparts);
	goto out;

 fail:
	rs->sf.state = SF_FAILED;
	(void)snprintf(rs->sf.reason, sizeof(rs->sf.reason), "%s",
		       "could not set up media");
	rs->ending = true;
	--rd->nsess;
	if (rs->rxf)
		rxworker_file_close(rd->rx, rs->rxf, NULL, NULL);
	rs->rxf = NULL;
	(void)rsess_save(rs);
	mem_deref(rs);
 out:
	mem_deref(meta);
	mem_deref(sdp);
}

/* re-INVITE or UPDATE: a new offer and/or metadata. */
static void modify(struct rsess *rs, const struct sip_msg *msg)
{
	struct recd *rd = rs->rd;
	struct rstream old[SF_STREAMS_MAX];
	bool on[SF_STREAMS_MAX];
	char reason[160];
	const char *why = NULL;
	struct msdp *sdp = NULL;
	struct body b;
	size_t i, nold = rs->sf.nstreams;
	uint16_t scode;
	int err;

	++rd->st.reinvites;
	scode = body_split(msg, &b, &why);
	if (scode) {
		refuse(rd, msg, scode, why);
		return;
	}
	if (pl_isset(&b.sdp) && msdp_parse(&sdp, &b.sdp, &why)) {
		(void)snprintf(reason, sizeof(reason), "Bad Request (SDP: %s)",
			       why ? why : "does not parse");
		refuse(rd, msg, 400, reason);
		return;
	}
	if (sdp && sdp->nmedia < nold) {
		refuse(rd, msg, 488, "Not Acceptable Here (m= lines removed)");
		goto out;
	}
	scode = meta_apply(rs->meta, &b, sdp, &why);
	if (scode) {
		(void)snprintf(reason, sizeof(reason), "Bad Request (%s)", why);
		refuse(rd, msg, scode, reason);
		goto out;
	}
	if (pl_isset(&b.meta)) {
		rs->sf.has_metadata = true;
		rsmeta_to_sessfile(rs->meta, &rs->sf);
		rsess_keep(rs, "metadata", "xml", &rs->nmeta, &b.meta);
	}
	if (sdp) {
		memcpy(old, rs->rs, sizeof(old));
		for (i = 0; i < nold; i++)
			on[i] = rs->sf.streams[i].accepted;
		rsess_keep(rs, "offer", "sdp", &rs->nsdp, &b.sdp);
		mbuf_reset(rs->answer);
		err = answer_make(rs, sdp, rs->allow, rs->answer);
		if (!err)
			err = rsess_apply(rs, old, on, nold);
		if (err) {
			refuse(rd, msg, err == ENOSPC ? 503 : 500,
			       err == ENOSPC ? "Service Unavailable (no media "
			       "ports)" : "Server Internal Error (media)");
			goto out;
		}
		{
			struct pl ans = {(const char *)rs->answer->buf,
					 rs->answer->end};
			unsigned n = rs->nsdp - 1;
			rsess_keep(rs, "answer", "sdp", &n, &ans);
		}
	}
	(void)rsess_save(rs);
	(void)sip_dialog_update(rs->dlg, msg);
	if (reply_ok(rs, msg))
		log_warn("srs: [%s] cannot answer %.*s", rs->sf.id,
			 (int)msg->met.l, msg->met.p);
 out:
	mem_deref(sdp);
}

static void in_dialog(struct recd *rd, const struct sip_msg *msg)
{
	struct rsess *rs = rsess_find(rd, msg);

	if (!rs) {
		if (pl_strcmp(&msg->met, "ACK"))
			(void)sip_reply(rd->sip, msg, 481,
					"Call/Transaction Does Not Exist");
		return;
	}
	if (!pl_strcmp(&msg->met, "ACK")) {
		if (rs->ok_mb && msg->cseq.num == rs->ok_cseq)
			srs_acked(rs);
		return;
	}
	if (!sip_dialog_rseq_valid(rs->dlg, msg) &&
	    pl_strcmp(&msg->met, "CANCEL")) {
		(void)sip_reply(rd->sip, msg, 500,
				"Server Internal Error (CSeq out of order)");
		return;
	}
	if (!pl_strcmp(&msg->met, "BYE")) {
		++rd->st.byes;
		(void)sip_reply(rd->sip, msg, 200, "OK");
		rsess_end(rs, "BYE");
	}
	else if (!pl_strcmp(&msg->met, "INVITE") ||
		 !pl_strcmp(&msg->met, "UPDATE")) {
		if (rs->ok_mb && !pl_strcmp(&msg->met, "INVITE")) {
			/* our 2xx is not ACKed yet (RFC 3261 14.2) */
			(void)sip_treplyf(NULL, NULL, rd->sip, msg, false,
					  500, "Server Internal Error",
					  "Retry-After: 1\r\n"
					  "Content-Length: 0\r\n\r\n");
			return;
		}
		modify(rs, msg);
	}
	else if (!pl_strcmp(&msg->met, "OPTIONS") ||
		 !pl_strcmp(&msg->met, "INFO") ||
		 !pl_strcmp(&msg->met, "NOTIFY")) {
		(void)sip_reply(rd->sip, msg, 200, "OK");
	}
	else {
		(void)sip_replyf(rd->sip, msg, 405, "Method Not Allowed",
				 "Allow: INVITE, ACK, BYE, UPDATE, OPTIONS, "
				 "INFO, CANCEL\r\nContent-Length: 0\r\n\r\n");
	}
}

/* True if MSG was handled (in-dialog, or a new INVITE). */
bool srs_request(struct recd *rd, const struct sip_msg *msg)
{
	if (pl_isset(&msg->to.tag)) {
		in_dialog(rd, msg);
		return true;
	}
	if (!pl_strcmp(&msg->met, "INVITE")) {
		struct rsess *rs = rsess_find_initial(rd, msg);

		if (rs) {
			/* a retransmission of the INVITE we answered: libre
			 * ended that transaction with our 2xx */
			if (rs->ok_mb) {
				rs->ok_mb->pos = 0;
				(void)sip_send(rd->sip, rs->ok_sock, rs->ok_tp,
					       &rs->ok_dst, rs->ok_mb);
			}
			return true;
		}
		new_invite(rd, msg);
		return true;
	}
	return false;
}
