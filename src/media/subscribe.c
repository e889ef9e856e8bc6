/*
 * subscribe.c: replication to recorders: ng "subscribe request",
 * "subscribe answer" and "unsubscribe".
 *
 * Worked example (call with A: audio+video, B: audio+video):
 *   subscribe request  from-tags [A, B]  media "audio+video"
 *     -> subscription "rec-1" with sinks 1..4 (A audio, A video, B audio,
 *        B video), each with its own port pair; reply: an SDP offer with 4
 *        m= lines, a=label:1..4, a=sendonly, and `streams` mapping labels.
 *   subscribe answer   to-tag rec-1, SDP with m=video 0 on lines 2 and 4
 *     -> sinks 1 and 3 attached to A's and B's audio streams: every packet
 *        received from A or B is also sent to the recorder; sinks 2 and 4
 *        stay detached and are reported in `rejected`.
 *   unsubscribe        to-tag rec-1 -> sinks detached, ports freed.
 * When a video sink is attached, the video's sender is asked for a keyframe
 * (PLI + FIR) so the recording starts decodable.
 *
 * A subscription follows its recording session's re-INVITEs (RFC 7866
 * pause/resume, media added or dropped) without losing its ports or labels:
 *   subscribe answer   again, with a=inactive on lines 1 and 3 (the
 *                      recorder's answer to a pause offer)
 *     -> sinks 1 and 3 paused: detached, ports and destination kept,
 *        listed in `accepted` and in `inactive`; the next answer with
 *        a=recvonly attaches them again (and asks for a keyframe).
 *   subscribe request  to-tag rec-1, flags [add], media "audio+video" on a
 *                      subscription that had audio only (labels 1, 2)
 *     -> sinks 3 and 4 for the videos appended; the reply's offer holds
 *        every sink of the subscription, old ones on their old ports, so
 *        its m= lines stay those of the recording session, in order
 *        (RFC 3264: lines are never removed or reordered).
 */
#include <errno.h>
#include <string.h>
#include "log.h"
#include "media.h"

static void sink_destructor(void *arg)
{
	struct sink *sk = arg;
	struct mcall *call = sk->sub ? sk->sub->call : NULL;

	sink_detach(sk);
	list_unlink(&sk->le);
	if (sk->rtp && call)
		call->nsockets -= 2;
	if (sk->rtp && sk->rtp->registered) {
		worker_load_add(sk->rtp->w, -1);
		worker_sock_del(sk->rtp->w, sk->rtp);
	}
	if (sk->rtcp && sk->rtcp->registered) {
		worker_load_add(sk->rtcp->w, -1);
		worker_sock_del(sk->rtcp->w, sk->rtcp);
	}
	mem_deref(sk->rtp);
	mem_deref(sk->rtcp);
}

static void subscr_destructor(void *arg)
{
	struct subscr *sub = arg;

	list_flush(&sub->sinks);
	list_unlink(&sub->le);
	--g_media->nsubs;
}

static struct subscr *subscr_find(struct mcall *call, const struct pl *tag)
{
	struct le *le;

	for (le = list_head(&call->subscrs); le; le = le->next) {
		struct subscr *sub = le->data;
		if (!pl_strcmp(tag, sub->tag))
			return sub;
	}
	return NULL;
}

/* A to-tag nobody can guess or has used in this call: a subscription is
 * only ever reached by a tag its requester was told. */
static void subscr_newtag(struct mcall *call, struct subscr *sub)
{
	struct pl pl;

	do {
		snprintf(sub->tag, sizeof(sub->tag), "tally-sub-%016llx",
			 (unsigned long long)rand_u64());
		pl_set_str(&pl, sub->tag);
	} while (subscr_find(call, &pl));
}

enum kinds { KIND_ALL, KIND_AUDIO, KIND_AV };

static bool kind_wanted(enum kinds k, enum msdp_kind kind)
{
	switch (k) {
	case KIND_AUDIO: return kind == MSDP_AUDIO;
	case KIND_AV:    return kind == MSDP_AUDIO || kind == MSDP_VIDEO;
	default:         return true;
	}
}

struct build {
	struct subscr *sub;
	struct party *parties[8];
	unsigned nparties;
	enum kinds kinds;
	unsigned added;               /* sinks made by this request */
	int err;
};

/* Does SUB copy ST already? */
static bool subscr_has(const struct subscr *sub, const struct mstream *st)
{
	struct le *le;

	for (le = list_head(&sub->sinks); le; le = le->next) {
		const struct sink *sk = le->data;
		if (sk->src == st)
			return true;
	}
	return false;
}

/* worker: one sink per selected stream the subscription does not copy
 * yet, labels after its last one, sockets registered (recorder RTCP can
 * arrive before the answer) but not attached to the stream yet */
static void build_h(struct worker *w, void *arg)
{
	struct build *b = arg;
	unsigned i, label = 0;
	struct le *le;

	(void)w;
	for (le = list_head(&b->sub->sinks); le; le = le->next) {
		const struct sink *sk = le->data;
		if (sk->label > label)
			label = sk->label;
	}
	for (i = 0; i < b->nparties && !b->err; i++) {
		for (le = list_head(&b->parties[i]->streams); le; le = le->next) {
			struct mstream *st = le->data;
			struct sink *sk;

			if (st->disabled || !st->rtp ||
			    !kind_wanted(b->kinds, st->kind) ||
			    !b->parties[i]->sdp ||
			    st->index > b->parties[i]->sdp->nmedia ||
			    subscr_has(b->sub, st))
				continue;
			sk = mem_zalloc(sizeof(*sk), sink_destructor);
			if (!sk) {
				b->err = ENOMEM;
				break;
			}
			sk->sub = b->sub;
			sk->src = st;
			sk->label = ++label;
			++b->added;
			list_append(&b->sub->sinks, &sk->le, sk);
			b->err = portpool_pair(g_media->ports, &sk->rtp, &sk->rtcp);
			if (b->err)
				break;
			sk->rtp->sink = sk;
			sk->rtcp->sink = sk;
			b->sub->call->nsockets += 2;
			b->err = msock_register(b->sub->call, sk->rtp);
			if (!b->err)
				b->err = msock_register(b->sub->call, sk->rtcp);
		}
	}
}

static int parse_kinds(const struct benc_node *req, enum kinds *k,
		       const char **why)
{
	struct pl v;

	*k = KIND_ALL;
	if (benc_dict_pl(req, "media", &v))
		return 0;
	if (!pl_strcasecmp(&v, "audio"))
		*k = KIND_AUDIO;
	else if (!pl_strcasecmp(&v, "audio+video") ||
		 !pl_strcasecmp(&v, "audio video") ||
		 !pl_strcasecmp(&v, "all"))
		*k = KIND_AV;
	else {
		*why = "Unknown media selection (use audio or audio+video)";
		return EINVAL;
	}
	return 0;
}

static int select_parties(struct build *b, struct mcall *call,
			  const struct benc_node *req, const char **why)
{
	const struct benc_node *tags = benc_dict_get(req, "from-tags");
	const struct benc_node *flags = benc_dict_get(req, "flags");
	struct pl one;
	struct le *le;
	unsigned i;

	if (flags && benc_list_has(flags, "all")) {
		/* every party that has media to copy: a callee that has not
		 * answered yet has no SDP to offer the recorder */
		for (le = list_head(&call->parties); le; le = le->next) {
			struct party *p = le->data;
			if (p->tag[0] && p->sdp && b->nparties < 8)
				b->parties[b->nparties++] = p;
		}
	}
	else if (tags && tags->type == BENC_LIST) {
		const struct benc_node *n;
		for (n = tags->child; n; n = n->next) {
			struct party *p;
			if (n->type != BENC_STR || !(p = party_find(call, &n->s))) {
				*why = "Unknown from-tag in from-tags";
				return ENOENT;
			}
			if (b->nparties < 8)
				b->parties[b->nparties++] = p;
		}
	}
	else if (!benc_dict_pl(req, "from-tag", &one)) {
		struct party *p = party_find(call, &one);
		if (!p) {
			*why = "Unknown from-tag";
			return ENOENT;
		}
		b->parties[b->nparties++] = p;
	}
	if (!b->nparties) {
		*why = flags && benc_list_has(flags, "all") ?
			"No party has sent SDP yet" :
			"No from-tag, from-tags or 'all' flag in message";
		return flags && benc_list_has(flags, "all") ? ENODATA : EINVAL;
	}
	for (i = 0; i < b->nparties; i++) {
		if (!b->parties[i]->sdp) {
			*why = "Party has not sent SDP yet (no answer)";
			return ENODATA;
		}
	}
	return 0;
}

static int write_offer(struct mbuf *reply, struct subscr *sub)
{
	struct msdp_pick picks[MSDP_MAX_MEDIA];
	char labels[MSDP_MAX_MEDIA][12];
	struct msdp_offer off;
	struct mbuf *mb;
	char addr[64];
	size_t n = 0;
	struct le *le;
	int err = 0;

	for (le = list_head(&sub->sinks); le && n < MSDP_MAX_MEDIA; le = le->next) {
		struct sink *sk = le->data;
		snprintf(labels[n], sizeof(labels[n]), "%u", sk->label);
		picks[n].sdp = sk->src->party->sdp;
		picks[n].index = sk->src->index - 1;
		picks[n].port = sk->rtp->port;
		picks[n].label = labels[n];
		++n;
	}
	sa_ntop(&g_media->iface, addr, sizeof(addr));
	off.addr = addr;
	off.af = sa_af(&g_media->iface);
	off.sess_id = media_unixtime();
	off.sess_version = 1;
	off.picks = picks;
	off.npicks = n;
	mb = mbuf_alloc(2048);
	if (!mb)
		return ENOMEM;
	err = msdp_compose_offer(mb, &off);
	if (err) {
		mem_deref(mb);
		return err;
	}
	err |= benc_str(reply, "sdp");
	err |= benc_strn(reply, (char *)mb->buf, mb->end);
	mem_deref(mb);

	err |= benc_kv_str(reply, "to-tag", sub->tag);
	err |= benc_str(reply, "streams");
	err |= benc_list_begin(reply);
	for (le = list_head(&sub->sinks); le; le = le->next) {
		struct sink *sk = le->data;
		err |= benc_dict_begin(reply);
		err |= benc_kv_int(reply, "label", sk->label);
		err |= benc_kv_str(reply, "from-tag", sk->src->party->tag);
		err |= benc_kv_str(reply, "type", sk->src->type);
		err |= benc_kv_int(reply, "index", sk->src->index);
		err |= benc_end(reply);
	}
	err |= benc_end(reply);
	return err ? ENOMEM : 0;
}

/* Write the reply to a request: the offer of SUB, the from-tags of B. */
static int request_reply(struct mbuf *reply, const struct build *b,
			 struct subscr *sub)
{
	unsigned i;
	int err;

	err = write_offer(reply, sub);
	err |= benc_str(reply, "from-tags");
	err |= benc_list_begin(reply);
	for (i = 0; i < b->nparties; i++)
		err |= benc_str(reply, b->parties[i]->tag);
	err |= benc_end(reply);
	return err;
}

/*
 * Flag add: new sinks for the selected streams SUB does not copy yet.
 * Nothing to add is no error (the reply is SUB's offer as it is: the
 * recording session asks again for a medium it dropped). A failure
 * removes the sinks this request made and leaves SUB as it was.
 */
static int subscribe_add(struct mbuf *reply, struct build *b,
			 struct subscr *sub, const char **why)
{
	struct le *le;
	int err;

	b->sub = sub;
	mcall_exec(sub->call, build_h, b);
	if (!b->err) {
		err = request_reply(reply, b, sub);
		if (!err) {
			log_info("ng: [%s] subscription '%s': %u streams "
				 "added", sub->call->callid, sub->tag,
				 b->added);
			return 0;
		}
		b->err = err == EINVAL ? EINVAL : ENOMEM;
	}
	*why = b->err == EADDRINUSE ? "Ran out of ports" :
	       b->err == EINVAL ? "Cannot offer a party's stream" :
	       "Failed to add to the subscription";
	/* the new sinks are the last ones */
	while (b->added-- && (le = list_tail(&sub->sinks)))
		mcall_release(sub->call, le->data);
	return b->err;
}

int subscribe_request(struct mbuf *reply, const struct benc_node *req,
		      const char **why)
{
	const struct benc_node *flags = benc_dict_get(req, "flags");
	struct build b;
	struct pl callid, tag = PL_INIT;
	struct mcall *call;
	struct subscr *sub;
	int err;

	memset(&b, 0, sizeof(b));
	if (benc_dict_pl(req, "call-id", &callid) ||
	    mcall_get(&call, &callid, false)) {
		*why = "Unknown call-id";
		return ENOENT;
	}
	if ((err = parse_kinds(req, &b.kinds, why)))
		return err;
	if ((err = select_parties(&b, call, req, why)))
		return err;

	if (!benc_dict_pl(req, "to-tag", &tag) && pl_isset(&tag)) {
		if (tag.l >= sizeof(sub->tag)) {
			*why = "Subscription to-tag too long";
			return EINVAL;
		}
		sub = subscr_find(call, &tag);
		if (sub && flags && benc_list_has(flags, "add"))
			return subscribe_add(reply, &b, sub, why);
		if (sub) {
			*why = "Subscription to-tag already exists";
			return EEXIST;
		}
	}
	if (flags && benc_list_has(flags, "add")) {
		*why = "Flag add needs the to-tag of a subscription";
		return ENOENT;
	}

	sub = mem_zalloc(sizeof(*sub), subscr_destructor);
	if (!sub)
		return ENOMEM;
	sub->call = call;
	++g_media->nsubs;
	if (pl_isset(&tag))
		pl_strcpy(&tag, sub->tag, sizeof(sub->tag));
	else
		subscr_newtag(call, sub);
	list_append(&call->subscrs, &sub->le, sub);

	b.sub = sub;
	mcall_exec(call, build_h, &b);
	if (!b.err && list_isempty(&sub->sinks))
		b.err = ENODATA;
	if (b.err) {
		*why = b.err == ENODATA ? "No streams match the subscription" :
		       b.err == EADDRINUSE ? "Ran out of ports" :
		       "Failed to set up subscription";
		goto fail;
	}

	err = request_reply(reply, &b, sub);
	if (err) {
		b.err = err == EINVAL ? EINVAL : ENOMEM;
		*why = b.err == EINVAL ? "Cannot offer a party's stream "
			"(its SDP has no such m= line)" :
			"Out of memory writing the subscription offer";
		goto fail;
	}
	log_info("ng: [%s] subscription '%s': %u streams", call->callid,
		 sub->tag, list_count(&sub->sinks));
	return 0;

 fail:
	/* a failed request leaves nothing: no subscription, sinks or ports */
	log_info("ng: [%s] subscription request failed: %s", call->callid,
		 *why);
	mcall_release(call, sub);
	return b.err;
}

struct attach {
	struct subscr *sub;
	const struct msdp *sdp;
};

static void set_dst(struct sa *sa, const struct pl *addr, uint16_t port)
{
	char buf[64];

	sa_init(sa, AF_UNSPEC);
	if (!pl_isset(addr) || addr->l >= sizeof(buf))
		return;
	pl_strcpy(addr, buf, sizeof(buf));
	if (sa_set_str(sa, buf, port))
		sa_init(sa, AF_UNSPEC);
}

/* worker: point each sink at the recorder, attach or detach it */
static void attach_h(struct worker *w, void *arg)
{
	struct attach *a = arg;
	struct le *le;
	size_t i = 0;

	for (le = list_head(&a->sub->sinks); le; le = le->next, i++) {
		struct sink *sk = le->data;
		const struct msdp_media *m = &a->sdp->media[i];
		struct mstream *src = sk->src;

		sk->accepted = m->port != 0 && src && !src->disabled;
		/* the recorder does not want to receive (the answer to a
		 * pause offer): stop copying, keep ports and labels */
		sk->paused = sk->accepted && (m->dir == MSDP_DIR_INACTIVE ||
					      m->dir == MSDP_DIR_SENDONLY);
		if (!sk->accepted || sk->paused) {
			sink_detach(sk);
			if (!sk->accepted)
				continue;
		}
		sk->mux = m->rtcp_mux;
		set_dst(&sk->dst_rtp, &m->addr, m->port);
		set_dst(&sk->dst_rtcp, &m->addr, m->rtcp_mux ? m->port :
			m->rtcp_port ? m->rtcp_port : (uint16_t)(m->port + 1));
		if (!sa_isset(&sk->dst_rtp, SA_ALL)) {
			sk->accepted = false;
			sk->paused = false;
			sink_detach(sk);
			continue;
		}
		if (sk->active || sk->paused)
			continue;
		if (src->nsinks >= MSTREAM_MAX_SINKS) {
			sk->accepted = false;
			continue;
		}
		src->sinks[src->nsinks++] = sk;
		sk->active = true;
		if (src->kind == MSDP_VIDEO)
			relay_keyframe_request(w, src);
	}
}

int subscribe_answer(struct mbuf *reply, const struct benc_node *req,
		     const char **why)
{
	struct pl callid, tag, text;
	struct msdp *sdp = NULL;
	const char *perr = NULL;
	struct attach a;
	struct mcall *call;
	struct subscr *sub;
	struct le *le;
	int err;

	if (benc_dict_pl(req, "call-id", &callid) ||
	    mcall_get(&call, &callid, false)) {
		*why = "Unknown call-id";
		return ENOENT;
	}
	if (benc_dict_pl(req, "to-tag", &tag) || !(sub = subscr_find(call, &tag))) {
		*why = "Unknown subscription to-tag";
		return ENOENT;
	}
	if (benc_dict_pl(req, "sdp", &text)) {
		*why = "No SDP body in message";
		return EINVAL;
	}
	err = msdp_parse(&sdp, &text, &perr);
	if (err) {
		*why = perr ? perr : "Failed to parse SDP";
		return EINVAL;
	}
	if (sdp->nmedia != list_count(&sub->sinks)) {
		*why = "Answer's m= lines do not match the subscription offer";
		mem_deref(sdp);
		return EPROTO;
	}
	a.sub = sub;
	a.sdp = sdp;
	mcall_exec(call, attach_h, &a);
	sub->answered = true;

	err = benc_str(reply, "accepted");
	err |= benc_list_begin(reply);
	for (le = list_head(&sub->sinks); le; le = le->next) {
		struct sink *sk = le->data;
		if (sk->accepted)
			err |= benc_int(reply, sk->label);
	}
	err |= benc_end(reply);
	err |= benc_str(reply, "rejected");
	err |= benc_list_begin(reply);
	for (le = list_head(&sub->sinks); le; le = le->next) {
		struct sink *sk = le->data;
		if (!sk->accepted)
			err |= benc_int(reply, sk->label);
	}
	err |= benc_end(reply);
	err |= benc_str(reply, "inactive");
	err |= benc_list_begin(reply);
	for (le = list_head(&sub->sinks); le; le = le->next) {
		struct sink *sk = le->data;
		if (sk->accepted && sk->paused)
			err |= benc_int(reply, sk->label);
	}
	err |= benc_end(reply);
	log_info("ng: [%s] subscription '%s' answered", call->callid, sub->tag);
	mem_deref(sdp);
	return err ? ENOMEM : 0;
}

int unsubscribe(struct mbuf *reply, const struct benc_node *req,
		const char **why)
{
	struct pl callid, tag;
	struct mcall *call;
	struct subscr *sub;

	(void)reply;
	if (benc_dict_pl(req, "call-id", &callid) ||
	    mcall_get(&call, &callid, false)) {
		*why = "Unknown call-id";
		return ENOENT;
	}
	if (benc_dict_pl(req, "to-tag", &tag) || !(sub = subscr_find(call, &tag))) {
		*why = "Unknown subscription to-tag";
		return ENOENT;
	}
	log_info("ng: [%s] subscription '%s' ended", call->callid, sub->tag);
	mcall_release(call, sub);
	return 0;
}
