/*
 * offer.c: the ng "offer" and "answer" commands: SDP in, SDP out, and the
 * call's streams set up so that media flows through tally-media.
 *
 * Who sends to which port (A offers, B answers):
 *   offer  from A: A's SDP -> A's streams learn A's addresses; B's streams
 *          get ports; the SDP returned (for B) carries B's stream ports.
 *   answer from B: B's SDP -> B's streams learn B's addresses; the SDP
 *          returned (for A) carries A's stream ports.
 *   Then A sends to its ports, tally-media forwards from B's ports to B, and
 *   back. A re-offer from either side updates the same streams: ports of
 *   kept m= lines stay, new lines get ports, port-0 lines release theirs.
 *
 * The socket and address changes run as one mcall_exec() on the call's
 * worker; SDP parsing and writing stay on the control thread.
 */
#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include "log.h"
#include "media.h"

/* ng "rtcp-mux" flags (rtpengine semantics) */
enum muxflag {
	MUX_DEFAULT = 0,  /* pass a=rtcp-mux through as the party sent it */
	MUX_OFFER,        /* offer: add a=rtcp-mux towards the other party */
	MUX_DEMUX,        /* offer: remove it, tally-media demuxes */
	MUX_ACCEPT,       /* answer: accept the offerer's mux ourselves */
	MUX_REJECT,       /* answer: refuse the offerer's mux */
};

struct apply {
	struct party *from;      /* whose SDP this is */
	struct party *to;        /* who receives the rewritten SDP */
	const struct msdp *sdp;
	bool is_answer;
	enum muxflag mux;
	int err;
};

static enum muxflag parse_mux(const struct benc_node *req)
{
	const struct benc_node *l = benc_dict_get(req, "rtcp-mux");

	if (!l || l->type != BENC_LIST)
		return MUX_DEFAULT;
	if (benc_list_has(l, "demux"))
		return MUX_DEMUX;
	if (benc_list_has(l, "reject"))
		return MUX_REJECT;
	if (benc_list_has(l, "offer"))
		return MUX_OFFER;
	if (benc_list_has(l, "accept"))
		return MUX_ACCEPT;
	return MUX_DEFAULT;
}

static void set_addr(struct sa *sa, const struct pl *addr, uint16_t port)
{
	char buf[64];

	sa_init(sa, AF_UNSPEC);
	if (!pl_isset(addr) || !port || addr->l >= sizeof(buf))
		return;
	pl_strcpy(addr, buf, sizeof(buf));
	if (sa_set_str(sa, buf, port))
		sa_init(sa, AF_UNSPEC);
	else if (!sa_isset(sa, SA_ADDR))     /* 0.0.0.0 = hold (RFC 2543) */
		sa_init(sa, AF_UNSPEC);
}

static void stream_learn(struct mstream *st, const struct msdp_media *m)
{
	struct sa rtp, rtcp;

	set_addr(&rtp, &m->addr, m->port);
	/* a=rtcp:PORT IN IP4 ADDR may name another address (RFC 3605) */
	set_addr(&rtcp, pl_isset(&m->rtcp_addr) ? &m->rtcp_addr : &m->addr,
		 m->rtcp_port ? m->rtcp_port : (uint16_t)(m->port + 1));
	/* a new address in a re-offer means the old source is stale */
	if (!sa_cmp(&rtp, &st->adv_rtp, SA_ALL))
		st->latched_rtp = st->latched_rtcp = false;
	st->adv_rtp = rtp;
	st->adv_rtcp = rtcp;
	st->kind = m->kind;
	pl_strcpy(&m->media, st->type, sizeof(st->type));
	pl_strcpy(&m->proto, st->proto, sizeof(st->proto));
}

/* The answer's rtcp-mux handling: its own flag, else the offer's. With
 * offer/demux/accept tally-media terminates mux per side, so the offerer
 * muxes exactly when it offered to. */
static enum muxflag answer_mux(const struct apply *a)
{
	if (a->mux != MUX_DEFAULT)
		return a->mux;
	return (enum muxflag)a->to->offer_mux;
}

/* worker: close P's streams past the first N m= lines */
static void drop_lines(struct party *p, size_t n)
{
	struct le *le;

	for (le = list_head(&p->streams); le; le = le->next) {
		struct mstream *st = le->data;
		if (st->index > n)
			mstream_close(st);
	}
}

static void apply_h(struct worker *w, void *arg)
{
	struct apply *a = arg;
	enum muxflag amux = a->is_answer ? answer_mux(a) : a->mux;
	size_t i;

	(void)w;
	/* this offer/answer says who is in dialogue: pair first, so that
	 * every stream peering below is between partners */
	if ((a->err = party_pair(a->from, a->to)))
		return;
	if (!a->is_answer)
		a->from->offer_mux = a->mux;
	for (i = 0; i < a->sdp->nmedia && !a->err; i++) {
		const struct msdp_media *m = &a->sdp->media[i];
		unsigned idx = (unsigned)i + 1;
		struct mstream *sf = party_stream(a->from, idx);
		struct mstream *st = party_stream(a->to, idx);

		if (!sf && (a->err = mstream_alloc(&sf, a->from, idx)))
			break;
		if (!st) {
			if (a->is_answer) {
				a->err = EPROTO;
				break;
			}
			if ((a->err = mstream_alloc(&st, a->to, idx)))
				break;
		}
		if (m->port == 0 || !msdp_media_relayed(m)) {
			stream_learn(sf, m);
			mstream_close(sf);
			mstream_close(st);
			continue;
		}
		if ((a->err = mstream_open(sf)) || (a->err = mstream_open(st)))
			break;
		stream_learn(sf, m);
		if (!st->type[0]) {
			st->kind = sf->kind;
			memcpy(st->type, sf->type, sizeof(st->type));
			memcpy(st->proto, sf->proto, sizeof(st->proto));
		}
		sf->mux = m->rtcp_mux;
		if (a->is_answer) {
			/* the offerer muxes if the answer (or we) accepted it */
			if (amux == MUX_REJECT)
				st->mux = false;
			else if (amux == MUX_DEFAULT)
				st->mux = st->mux && m->rtcp_mux;
		}
		mstream_pair(sf, st);
	}
	if (a->err)
		return;
	/* m= lines the new SDP no longer has (RFC 3264 8 forbids it, peers
	 * do it): their ports and recorder copies go, as for port 0 */
	drop_lines(a->from, a->sdp->nmedia);
	drop_lines(a->to, a->sdp->nmedia);
}

/*
 * After a pairing: a callee the first offer created without a tag that has
 * lost its partner (an answer named an existing party instead) can never be
 * named or reached again; its ports go now rather than at the call's end.
 */
static void release_orphans(struct mcall *call)
{
	struct le *le = list_head(&call->parties);

	while (le) {
		struct party *p = le->data;

		le = le->next;
		if (!p->tag[0] && !p->other)
			mcall_release(call, p);
	}
}

static int write_sdp(struct mbuf *reply, const struct msdp *sdp,
		     const struct party *to, const struct apply *a)
{
	struct msdp_rw_media rwm[MSDP_MAX_MEDIA];
	struct msdp_rw rw;
	struct mbuf *mb;
	char addr[64];
	size_t i;
	int err;

	memset(rwm, 0, sizeof(rwm));
	for (i = 0; i < sdp->nmedia; i++) {
		const struct mstream *st = party_stream((struct party *)to,
							(unsigned)i + 1);
		if (st && st->rtp) {
			rwm[i].port = st->rtp->port;
			rwm[i].rtcp_port = st->rtcp->port;
		}
		rwm[i].mux = sdp->media[i].rtcp_mux;
		switch (a->is_answer ? answer_mux(a) : a->mux) {
		case MUX_OFFER:
		case MUX_DEMUX:
		case MUX_ACCEPT:
			if (!a->is_answer) {
				rwm[i].mux = rwm[i].add_mux = a->mux == MUX_OFFER;
				if (a->mux == MUX_ACCEPT)
					rwm[i].mux = sdp->media[i].rtcp_mux;
			}
			else {
				/* the offerer muxes iff it offered to */
				rwm[i].mux = rwm[i].add_mux = st && st->mux;
			}
			break;
		case MUX_REJECT:
			if (a->is_answer)
				rwm[i].mux = false;
			break;
		default:
			break;
		}
	}
	sa_ntop(&g_media->iface, addr, sizeof(addr));
	rw.addr = addr;
	rw.af = sa_af(&g_media->iface);
	rw.ice_remove = true;
	rw.replace_origin = true;
	rw.media = rwm;
	rw.nmedia = sdp->nmedia;

	mb = mbuf_alloc(1024);
	if (!mb)
		return ENOMEM;
	err = msdp_rewrite(mb, sdp, &rw);
	if (!err)
		err = benc_strn(reply, "sdp", 3) ||
		      benc_strn(reply, (char *)mb->buf, mb->end) ? ENOMEM : 0;
	mem_deref(mb);
	return err;
}

int offer_handle(struct mbuf *reply, const struct benc_node *req,
		 bool is_answer, const char **why)
{
	struct pl callid, ftag, ttag = PL_INIT, text;
	struct party *from, *to, *named = NULL;
	struct msdp *sdp = NULL;
	struct mcall *call = NULL;
	struct apply a;
	const char *perr = NULL;
	struct party *made[2];
	unsigned nmade = 0;
	bool fresh = false, rename = false;
	int err;

	if (benc_dict_pl(req, "call-id", &callid) || !pl_isset(&callid)) {
		*why = "No call-id in message";
		return EINVAL;
	}
	if (benc_dict_pl(req, "from-tag", &ftag) || !pl_isset(&ftag)) {
		*why = "No from-tag in message";
		return EINVAL;
	}
	if (benc_dict_pl(req, "sdp", &text) || !pl_isset(&text)) {
		*why = "No SDP body in message";
		return EINVAL;
	}
	(void)benc_dict_pl(req, "to-tag", &ttag);
	if (is_answer && !pl_isset(&ttag)) {
		*why = "No to-tag in message";
		return EINVAL;
	}
	/* parties are told apart by tag alone: two with one tag cannot be
	 * (a UA may pick its To-tag equal to the From-tag; RFC 3261 asks
	 * for randomness, not for difference) */
	if (pl_isset(&ttag) && !pl_cmp(&ftag, &ttag)) {
		*why = "from-tag and to-tag are equal";
		return EINVAL;
	}

	err = msdp_parse(&sdp, &text, &perr);
	if (err) {
		*why = perr ? perr : "Failed to parse SDP";
		log_warn("ng: [%.*s] %s: bad SDP: %s", (int)callid.l, callid.p,
			 is_answer ? "answer" : "offer", *why);
		return EINVAL;
	}

	/* a call this offer creates goes again if the offer fails */
	if (!is_answer && mcall_get(&call, &callid, false) == ENOENT)
		fresh = true;
	call = NULL;
	err = mcall_get(&call, &callid, !is_answer);
	if (err) {
		*why = err == ENOENT ? "Unknown call-id" :
		       err == EBUSY ? "Too many sessions" : "Cannot create call";
		goto out;
	}
	call->last_signal = media_unixtime();

	from = party_find(call, &ftag);
	if (is_answer) {
		if (!from) {
			*why = "Unknown from-tag";
			err = ENOENT;
			goto out;
		}
		/* the answer is the SDP of the party the offer was for: it
		 * was given that party's ports. The to-tag names it: the first
		 * answer, or another fork of a forking proxy winning over the
		 * one whose early answer came first (one callee per call: the
		 * newest tag is the party's). A different party holding the
		 * tag (in dialogue with someone else) is replaced by it. */
		to = from->other;
		named = party_find(call, &ttag);
		if (!to)
			to = named;
		else if (named != to)
			rename = true;   /* once the answer is applied */
		if (!to) {
			*why = "Unknown to-tag";
			err = ENOENT;
			goto out;
		}
		/* the answer's SDP is the to-tag party's */
		a.from = to;
		a.to = from;
	}
	else {
		if (!from) {
			if ((err = party_add(&from, call, &ftag)))
				goto out;
			made[nmade++] = from;
		}
		to = from->other;
		if (!to && pl_isset(&ttag))
			to = party_find(call, &ttag);
		if (!to) {
			if ((err = party_add(&to, call, pl_isset(&ttag) ?
					     &ttag : NULL)))
				goto out;
			made[nmade++] = to;
		}
		else if (!to->tag[0] && pl_isset(&ttag) &&
			 !party_find(call, &ttag)) {
			/* the callee, unnamed since the first offer, named
			 * by a re-offer before any answer */
			pl_strcpy(&ttag, to->tag, sizeof(to->tag));
		}
		a.from = from;
		a.to = to;
	}
	a.sdp = sdp;
	a.is_answer = is_answer;
	a.mux = parse_mux(req);
	a.err = 0;
	mcall_exec(call, apply_h, &a);
	if (a.err) {
		err = a.err;
		*why = err == EPROTO ? "Answer has more m= lines than the offer" :
		       err == EADDRINUSE ? "Ran out of ports" :
		       "Failed to set up media";
		goto out;
	}
	if (rename) {
		if (named)
			mcall_release(call, named);
		pl_strcpy(&ttag, a.from->tag, sizeof(a.from->tag));
	}
	release_orphans(call);

	err = write_sdp(reply, sdp, a.to, &a);
	mem_deref(a.from->sdp);
	a.from->sdp = mem_ref(sdp);
	log_info("ng: [%.*s] %s from '%s': %zu m= lines", (int)callid.l,
		 callid.p,
		 is_answer ? "answer" : "offer", a.from->tag, sdp->nmedia);
 out:
	if (err && call && fresh)
		mcall_delete(call, "failed offer");
	else if (err && call) {
		/* parties this failed offer added go with it */
		while (nmade)
			mcall_release(call, made[--nmade]);
	}
	mem_deref(sdp);
	return err;
}
