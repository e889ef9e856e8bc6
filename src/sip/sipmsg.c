/*
 * sipmsg.c: small SIP message helpers for the B2BUA: the SDP body, our
 * Contact, header copying between legs, replies with bodies, and the 2xx
 * retransmission RFC 3261 17.2.1 leaves to the transaction user.
 */
#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include "log.h"
#include "sdp.h"
#include "b2bua.h"

/* Headers a request carries across the B2BUA (besides the body). */
const char *const sipmsg_req_hdrs[] = {
	"Session-Expires", "Min-SE", "Supported", "Allow", "Privacy",
	"P-Asserted-Identity", "Subject", "Priority", "Alert-Info",
	"Call-Info", "User-to-User", "Accept", "Event", "Info-Package",
	"Recv-Info", "Reason", NULL
};

/* Headers a response carries back. */
const char *const sipmsg_resp_hdrs[] = {
	"Session-Expires", "Require", "Supported", "Allow", "Warning",
	"Retry-After", "Reason", "Min-SE", "Accept", "Unsupported", NULL
};

struct bleg *bleg_other(struct bleg *leg)
{
	return leg == &leg->cp->a ? &leg->cp->b_ : &leg->cp->a;
}

bool sipmsg_sdp(const struct sip_msg *msg, struct pl *sdp)
{
	if (!msg || !msg->mb || !mbuf_get_left(msg->mb))
		return false;
	if (msg_ctype_cmp(&msg->ctyp, "application", "sdp")) {
		sdp->p = (const char *)mbuf_buf(msg->mb);
		sdp->l = mbuf_get_left(msg->mb);
		return true;
	}
	return false;
}

static struct sip *g_sip;
static struct sa g_laddr;

/* Set by main.c after the transports are up. */
void sipmsg_init(struct sip *sip, const struct sa *laddr);
void sipmsg_init(struct sip *sip, const struct sa *laddr)
{
	g_sip = sip;
	g_laddr = *laddr;
}

/* The address tally-sip's SIP transports listen on (sip-listen). */
const struct sa *sipmsg_laddr(void)
{
	return &g_laddr;
}

int sipmsg_contact(struct re_printf *pf, const enum sip_transp *tp)
{
	if (*tp == SIP_TRANSP_TCP)
		return re_hprintf(pf, "Contact: <sip:tally@%J;transport=tcp>\r\n",
				  &g_laddr);
	return re_hprintf(pf, "Contact: <sip:tally@%J>\r\n", &g_laddr);
}

static bool hdr_print(const struct sip_hdr *hdr, const struct sip_msg *msg,
		      void *arg)
{
	struct re_printf *pf = arg;
	(void)msg;

	return 0 != re_hprintf(pf, "%r: %r\r\n", &hdr->name, &hdr->val);
}

int sipmsg_copy_hdrs(struct re_printf *pf, const struct hdr_copy *hc)
{
	const char *const *n;

	if (!hc->msg)
		return 0;
	for (n = hc->names; *n; n++) {
		if (sip_msg_xhdr_apply(hc->msg, true, *n, hdr_print, pf))
			return ENOMEM;
	}
	return 0;
}

enum { OK_TICK_MS = 100, OK_TRIES = 10 };

static void ok_tick(void *arg);

static void ok_arm(struct b2bua *b, uint64_t ms)
{
	if (!list_isempty(&b->okq))
		tmr_start(&b->oktick, ms, ok_tick, b);
}

/* RFC 3261 13.3.1.4: resend each pending 2xx at T1, 2*T1, ... up to T2
 * until its ACK; after 64*T1 without one, the call ends. At most one call
 * ends per tick (ending frees legs this walk could reach next). */
static void ok_tick(void *arg)
{
	struct b2bua *b = arg;
	uint64_t now = tmr_jiffies();
	struct le *le = list_head(&b->okq);

	while (le) {
		struct bleg *leg = le->data;

		le = le->next;
		if (now < leg->ok_next)
			continue;
		if (++leg->ok_txc > OK_TRIES) {
			log_warn("b2bua: [%s] no ACK for our 2xx: ending the call",
				 bcall_logid(leg->cp));
			bleg_acked(leg);
			tmr_start(&b->oktick, 0, ok_tick, b);
			bcall_end(leg->cp, "no ACK");
			return;
		}
		leg->ok_mb->pos = 0;
		(void)sip_send(g_sip, leg->ok_sock, leg->tp, &leg->ok_dst,
			       leg->ok_mb);
		leg->ok_next = now + MIN(500u << leg->ok_txc, 4000u);
	}
	ok_arm(b, OK_TICK_MS);
}

void bleg_acked(struct bleg *leg)
{
	list_unlink(&leg->okle);
	leg->ok_mb = mem_deref(leg->ok_mb);
	leg->ok_txc = 0;
}

void bleg_reset(struct bleg *leg)
{
	hash_unlink(&leg->he);
	bleg_acked(leg);
	leg->dlg = mem_deref(leg->dlg);
	leg->dlg0 = mem_deref(leg->dlg0);
}

int sipmsg_reply(struct b2bua *b, struct sip_strans **stp,
		 const struct sip_msg *req, const struct reply_params *p)
{
	struct hdr_copy hc = {p->resp, sipmsg_resp_hdrs};
	struct mbuf *mb = NULL;
	bool with_contact = p->scode > 100 && p->scode < 300 &&
		(!pl_strcmp(&req->met, "INVITE") || !pl_strcmp(&req->met, "UPDATE") ||
		 !pl_strcmp(&req->met, "SUBSCRIBE"));
	bool is_inv_2xx = p->scode >= 200 && p->scode < 300 &&
		!pl_strcmp(&req->met, "INVITE");
	enum sip_transp tp = req->tp;
	int err;

	if (p->sdp) {
		err = sip_treplyf(stp, is_inv_2xx ? &mb : NULL, b->sip, req,
				  false, p->scode, p->reason,
				  "%H%H"
				  "Content-Type: application/sdp\r\n"
				  "Content-Length: %zu\r\n\r\n%r",
				  with_contact ? sipmsg_contact : NULL, &tp,
				  sipmsg_copy_hdrs, &hc, p->sdp->l, p->sdp);
	}
	else {
		err = sip_treplyf(stp, is_inv_2xx ? &mb : NULL, b->sip, req,
				  false, p->scode, p->reason,
				  "%H%H"
				  "Content-Length: 0\r\n\r\n",
				  with_contact ? sipmsg_contact : NULL, &tp,
				  sipmsg_copy_hdrs, &hc);
	}
	if (err || !mb)
		return err;

	/* the transport retransmits nothing after a 2xx to INVITE: we do,
	 * over UDP, until the ACK arrives (RFC 3261 13.3.1.4) */
	if (p->leg && req->tp == SIP_TRANSP_UDP) {
		struct bleg *leg = p->leg;
		mem_deref(leg->ok_mb);
		leg->ok_mb = mb;
		sip_reply_addr(&leg->ok_dst, req,
			       0 == msg_param_exists(&req->via.params, "rport",
						     &(struct pl){0}));
		leg->ok_sock = req->sock;
		leg->tp = req->tp;
		leg->ok_txc = 0;
		leg->ok_cseq = req->cseq.num;
		leg->ok_next = tmr_jiffies() + 500;
		list_unlink(&leg->okle);
		list_append(&b->okq, &leg->okle, leg);
		if (!tmr_isrunning(&b->oktick))
			ok_arm(b, OK_TICK_MS);
	}
	else {
		mem_deref(mb);
	}
	return 0;
}

void bparty_media(struct bparty *party, const struct pl *sdp)
{
	struct msdp *m = NULL;
	const char *why;
	size_t i;

	if (!sdp || msdp_parse(&m, sdp, &why))
		return;
	party->nmedia = 0;
	for (i = 0; i < m->nmedia && i < sizeof(party->media) / sizeof(party->media[0]); i++) {
		struct bmedia *bm = &party->media[party->nmedia++];
		const char *dir = msdp_dir_name(m->media[i].dir);

		pl_strcpy(&m->media[i].media, bm->type, sizeof(bm->type));
		bm->active = m->media[i].port != 0;
		snprintf(bm->dir, sizeof(bm->dir), "%s",
			 !bm->active ? "inactive" : dir ? dir : "sendrecv");
	}
	mem_deref(m);
}

bool sipmsg_scode_valid(const struct sip_msg *msg, char *text, size_t size)
{
	const char *p;
	size_t n = 0;

	if (size)
		text[0] = '\0';
	if (!msg || msg->req || !pl_isset(&msg->ver))
		return false;
	/* libre decoded "<ver> <digits> <reason>": the digits start one space
	 * after the version and end at the space before the reason */
	p = msg->ver.p + msg->ver.l + 1;
	while (p[n] >= '0' && p[n] <= '9' && n < 10)
		++n;
	if (size)
		(void)re_snprintf(text, size, "%b%s", p, n,
				  p[n] >= '0' && p[n] <= '9' ? "..." : "");
	return n == 3 && msg->scode >= 100 && msg->scode <= 699;
}

const char *bcall_logid(const struct bcall_priv *cp)
{
	return cp->pub->callid;
}
