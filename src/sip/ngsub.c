/*
 * ngsub.c: the ng client side of replication to recorders: "subscribe
 * request", "subscribe answer" and "unsubscribe" (docs/ng.md, tally-media's
 * src/media/subscribe.c is the other end).
 *
 * Worked example (call X, caller tag A, callee tag B, audio+video):
 *   request  d7:call-id1:X7:command17:subscribe request
 *             9:from-tagsl1:A1:Be5:media11:audio+videoe
 *   reply    d6:result2:ok3:sdp...6:to-tag24:tally-sub-...
 *             7:streamsld5:labeli1e8:from-tag1:A4:type5:audio5:indexi1ee
 *             ...e9:from-tagsl1:A1:Bee
 *   request  d7:call-id1:X7:command16:subscribe answer3:sdp...6:to-tag...e
 *   reply    d6:result2:ok8:acceptedli1ei3ee8:rejectedli2ei4eee
 *   request  d7:call-id1:X7:command11:unsubscribe6:to-tag...e
 * A re-INVITE of the recording session (pause, video added) sends
 * "subscribe answer" again with the recorder's new answer (reply: also
 * "inactive", the paused labels); video added to an audio recording first
 * sends "subscribe request" with the subscription's to-tag and flags
 * [add] (the reply's offer: old lines first, then the new ones).
 *
 * No context of its own: the caller's ngc_resp_h gets the raw reply and
 * reads it with ngsub_request_reply() / ngsub_answer_reply(), so a caller
 * that cancels (derefs *reqp, see ngc.c) leaves nothing behind. Unsubscribe
 * is fire and forget (the ngc holds that request).
 */
#include <errno.h>
#include <string.h>
#include "log.h"
#include "rec.h"


/* "result": "ok", else an errno and a sentence in WHY. */
static int reply_check(int err, const struct benc_node *reply, char *why,
		       size_t size)
{
	struct pl result, reason;

	if (err == ETIMEDOUT) {
		re_snprintf(why, size, "no answer from the media server");
		return err;
	}
	if (err) {
		re_snprintf(why, size, "bad reply from the media server");
		return err;
	}
	if (benc_dict_pl(reply, "result", &result)) {
		re_snprintf(why, size, "reply from the media server without "
			    "result");
		return EBADMSG;
	}
	if (pl_strcmp(&result, "ok")) {
		if (benc_dict_pl(reply, "error-reason", &reason))
			pl_set_str(&reason, "error without reason");
		re_snprintf(why, size, "media server: %r", &reason);
		return EPROTO;
	}
	return 0;
}

static int streams_read(const struct benc_node *list, struct ngsub_offer *o)
{
	const struct benc_node *n;

	if (!list || list->type != BENC_LIST)
		return EBADMSG;
	for (n = list->child; n; n = n->next) {
		struct rec_stream *s;
		struct pl tag, type;
		int64_t label, index;

		if (o->nstreams >= REC_MAX_STREAMS)
			return E2BIG;
		s = &o->streams[o->nstreams];
		memset(s, 0, sizeof(*s));
		if (benc_dict_int(n, "label", &label) || label < 0 ||
		    label > 65535 || benc_dict_pl(n, "from-tag", &tag) ||
		    benc_dict_pl(n, "type", &type) ||
		    benc_dict_int(n, "index", &index) || index < 0 ||
		    index > 255 || tag.l >= sizeof(s->from_tag) ||
		    type.l >= sizeof(s->type))
			return EBADMSG;
		s->label = (unsigned)label;
		s->index = (unsigned)index;
		(void)pl_strcpy(&tag, s->from_tag, sizeof(s->from_tag));
		(void)pl_strcpy(&type, s->type, sizeof(s->type));
		++o->nstreams;
	}
	return o->nstreams ? 0 : EBADMSG;
}

/*
 * Read the reply to ngsub_request() (ERR and REPLY as an ngc_resp_h got
 * them) into O (pointing into REPLY: valid as long as it is). 0, or an
 * errno with a sentence in WHY (SIZE bytes).
 */
int ngsub_request_reply(int err, const struct benc_node *reply,
			struct ngsub_offer *o, char *why, size_t size)
{
	memset(o, 0, sizeof(*o));
	err = reply_check(err, reply, why, size);
	if (err)
		return err;
	if (benc_dict_pl(reply, "sdp", &o->sdp) || !o->sdp.l ||
	    benc_dict_pl(reply, "to-tag", &o->to_tag) ||
	    !o->to_tag.l || o->to_tag.l >= 64 ||
	    streams_read(benc_dict_get(reply, "streams"), o)) {
		re_snprintf(why, size, "media server: subscribe reply "
			    "without a usable sdp, to-tag or streams");
		return EBADMSG;
	}
	return 0;
}

static int labels_read(const struct benc_node *list, unsigned *out,
		       size_t *n)
{
	const struct benc_node *e;

	*n = 0;
	if (!list)
		return 0;
	if (list->type != BENC_LIST)
		return EBADMSG;
	for (e = list->child; e; e = e->next) {
		if (*n >= REC_MAX_STREAMS || e->type != BENC_INT || e->i < 0)
			return EBADMSG;
		out[(*n)++] = (unsigned)e->i;
	}
	return 0;
}

/* Read the reply to ngsub_answer() into R; as ngsub_request_reply(). */
int ngsub_answer_reply(int err, const struct benc_node *reply,
		       struct ngsub_result *r, char *why, size_t size)
{
	memset(r, 0, sizeof(*r));
	err = reply_check(err, reply, why, size);
	if (err)
		return err;
	if (labels_read(benc_dict_get(reply, "accepted"), r->accepted,
			&r->naccepted) ||
	    labels_read(benc_dict_get(reply, "rejected"), r->rejected,
			&r->nrejected) ||
	    labels_read(benc_dict_get(reply, "inactive"), r->inactive,
			&r->ninactive)) {
		re_snprintf(why, size, "media server: subscribe answer reply "
			    "with bad label lists");
		return EBADMSG;
	}
	return 0;
}

static int send_req(struct mediasrv *ms, struct ngc_req **reqp,
		    struct mbuf *mb, ngc_resp_h *h, void *arg)
{
	struct ngc *ngc = mediasrv_ngc(ms);

	if (!ngc)
		return EINVAL;
	return ngc_request(ngc, reqp, mb, h, arg);
}

/*
 * Subscribe to P->from_tags' streams of P->callid, P->media ("audio" or
 * "audio+video") on MS. H(ARG) runs once, unless *REQP (the caller's) is
 * derefed first; it reads the reply with ngsub_request_reply(). Returns 0,
 * EINVAL, ENOMEM (H is then not called).
 */
int ngsub_request(struct mediasrv *ms, struct ngc_req **reqp,
		  const struct ngsub_req_params *p, ngc_resp_h *h, void *arg)
{
	struct mbuf *mb;
	size_t i;
	int err = 0;

	if (!ms || !reqp || !p || !p->callid || !p->ntags || !p->media || !h)
		return EINVAL;
	mb = mbuf_alloc(256);
	if (!mb)
		return ENOMEM;
	err |= benc_dict_begin(mb);
	err |= benc_kv_str(mb, "call-id", p->callid);
	err |= benc_kv_str(mb, "command", "subscribe request");
	err |= benc_str(mb, "from-tags");
	err |= benc_list_begin(mb);
	for (i = 0; i < p->ntags; i++)
		err |= benc_str(mb, p->from_tags[i]);
	err |= benc_end(mb);
	err |= benc_kv_str(mb, "media", p->media);
	if (p->to_tag) {
		err |= benc_kv_str(mb, "to-tag", p->to_tag);
		err |= benc_str(mb, "flags");
		err |= benc_list_begin(mb);
		err |= benc_str(mb, "add");
		err |= benc_end(mb);
	}
	err |= benc_end(mb);
	err = err ? ENOMEM : send_req(ms, reqp, mb, h, arg);
	mem_deref(mb);
	return err;
}

/* Hand the recorder's SDP to subscription TO_TAG of CALLID; H as for
 * ngsub_request(), reading with ngsub_answer_reply(). */
int ngsub_answer(struct mediasrv *ms, struct ngc_req **reqp,
		 const char *callid, const char *to_tag, const struct pl *sdp,
		 ngc_resp_h *h, void *arg)
{
	struct mbuf *mb;
	int err = 0;

	if (!ms || !reqp || !callid || !to_tag || !*to_tag || !sdp || !h)
		return EINVAL;
	mb = mbuf_alloc(256 + sdp->l);
	if (!mb)
		return ENOMEM;
	err |= benc_dict_begin(mb);
	err |= benc_kv_str(mb, "call-id", callid);
	err |= benc_kv_str(mb, "command", "subscribe answer");
	err |= benc_kv_pl(mb, "sdp", sdp);
	err |= benc_kv_str(mb, "to-tag", to_tag);
	err |= benc_end(mb);
	err = err ? ENOMEM : send_req(ms, reqp, mb, h, arg);
	mem_deref(mb);
	return err;
}

static void unsub_resp(int err, const struct benc_node *reply, void *arg)
{
	char why[128];
	(void)arg;

	if (reply_check(err, reply, why, sizeof(why)))
		log_info("rec: unsubscribe: %s", why);
}

/* Stop subscription TO_TAG of CALLID. Fire and forget: a failure is
 * logged (a call already deleted has no subscriptions left anyway). */
int ngsub_unsubscribe(struct mediasrv *ms, const char *callid,
		      const char *to_tag)
{
	struct mbuf *mb;
	int err = 0;

	if (!ms || !callid || !to_tag || !*to_tag)
		return EINVAL;
	mb = mbuf_alloc(128);
	if (!mb)
		return ENOMEM;
	err |= benc_dict_begin(mb);
	err |= benc_kv_str(mb, "call-id", callid);
	err |= benc_kv_str(mb, "command", "unsubscribe");
	err |= benc_kv_str(mb, "to-tag", to_tag);
	err |= benc_end(mb);
	err = err ? ENOMEM : send_req(ms, NULL, mb, unsub_resp, NULL);
	mem_deref(mb);
	return err;
}
