/*
 * ngquery.c: the ng commands that report and end calls: query, list,
 * statistics, delete. Counters are copied from the workers first
 * (mcall_sync_stats), then written here on the control thread.
 */
#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include "log.h"
#include "media.h"

static int enc_count(struct mbuf *mb, const char *key, const struct mcount *c)
{
	int err = benc_str(mb, key);
	err |= benc_dict_begin(mb);
	err |= benc_kv_int(mb, "packets", (int64_t)c->packets);
	err |= benc_kv_int(mb, "bytes", (int64_t)c->bytes);
	err |= benc_kv_int(mb, "errors", (int64_t)c->errors);
	err |= benc_end(mb);
	return err;
}

static int enc_endpoint(struct mbuf *mb, const char *key, const struct sa *sa)
{
	char addr[64] = "";
	int err = benc_str(mb, key);

	err |= benc_dict_begin(mb);
	if (sa_isset(sa, SA_ADDR)) {
		sa_ntop(sa, addr, sizeof(addr));
		err |= benc_kv_str(mb, "family",
				   sa_af(sa) == AF_INET6 ? "IPv6" : "IPv4");
		err |= benc_kv_str(mb, "address", addr);
		err |= benc_kv_int(mb, "port", sa_port(sa));
	}
	err |= benc_end(mb);
	return err;
}

static int enc_sock(struct mbuf *mb, const struct mstream *st, bool rtcp)
{
	const struct mcount *c = rtcp ? &st->snap.rtcp : &st->snap.rtp;
	int err = benc_dict_begin(mb);

	err |= benc_kv_int(mb, "local port",
			   rtcp ? st->rtcp->port : st->rtp->port);
	err |= benc_kv_str(mb, "type", rtcp ? "RTCP" : "RTP");
	err |= enc_endpoint(mb, "endpoint",
			    rtcp ? &st->snap_ep_rtcp : &st->snap_ep_rtp);
	err |= enc_endpoint(mb, "advertised endpoint",
			    rtcp ? &st->adv_rtcp : &st->adv_rtp);
	err |= benc_str(mb, "stats");
	err |= benc_dict_begin(mb);
	err |= benc_kv_int(mb, "packets", (int64_t)c->packets);
	err |= benc_kv_int(mb, "bytes", (int64_t)c->bytes);
	err |= benc_kv_int(mb, "errors", (int64_t)c->errors);
	err |= benc_end(mb);
	if (!rtcp) {
		err |= benc_kv_int(mb, "last packet",
				   (int64_t)__atomic_load_n(&st->last_rx,
							    __ATOMIC_RELAXED));
		err |= benc_kv_int(mb, "lost", (int64_t)st->snap.lost);
		err |= benc_kv_int(mb, "dropped", (int64_t)st->snap.dropped);
		err |= benc_kv_int(mb, "unexpected",
				   (int64_t)st->snap.unexpected);
		err |= benc_kv_int(mb, "forwarded", (int64_t)st->snap.forwarded);
		err |= benc_kv_int(mb, "replicated",
				   (int64_t)st->snap.replicated);
	}
	err |= benc_end(mb);
	return err;
}

static int enc_party(struct mbuf *mb, const struct party *p)
{
	struct le *le;
	int err = benc_str(mb, p->tag);

	err |= benc_dict_begin(mb);
	err |= benc_kv_str(mb, "tag", p->tag);
	err |= benc_kv_int(mb, "created", (int64_t)p->created);
	if (p->other && p->other->tag[0])
		err |= benc_kv_str(mb, "in dialogue with", p->other->tag);
	err |= benc_str(mb, "medias");
	err |= benc_list_begin(mb);
	for (le = list_head(&p->streams); le; le = le->next) {
		const struct mstream *st = le->data;
		err |= benc_dict_begin(mb);
		err |= benc_kv_int(mb, "index", st->index);
		err |= benc_kv_str(mb, "type", st->type);
		err |= benc_kv_str(mb, "protocol", st->proto);
		err |= benc_str(mb, "flags");
		err |= benc_list_begin(mb);
		if (st->mux)
			err |= benc_str(mb, "RTCP-mux");
		if (st->disabled)
			err |= benc_str(mb, "disabled");
		err |= benc_end(mb);
		err |= benc_str(mb, "streams");
		err |= benc_list_begin(mb);
		if (st->rtp) {
			err |= enc_sock(mb, st, false);
			err |= enc_sock(mb, st, true);
		}
		err |= benc_end(mb);
		err |= benc_end(mb);
	}
	err |= benc_end(mb);
	err |= benc_end(mb);
	return err;
}

static int enc_subscrs(struct mbuf *mb, const struct mcall *call)
{
	struct le *le, *le2;
	int err = benc_str(mb, "subscriptions");

	err |= benc_list_begin(mb);
	for (le = list_head(&call->subscrs); le; le = le->next) {
		const struct subscr *sub = le->data;
		err |= benc_dict_begin(mb);
		err |= benc_kv_str(mb, "to-tag", sub->tag);
		err |= benc_str(mb, "streams");
		err |= benc_list_begin(mb);
		for (le2 = list_head(&sub->sinks); le2; le2 = le2->next) {
			const struct sink *sk = le2->data;
			err |= benc_dict_begin(mb);
			err |= benc_kv_int(mb, "label", sk->label);
			err |= benc_kv_str(mb, "state", sk->active ? "active" :
					   !sk->src ? "source gone" :
					   sk->paused ? "paused" :
					   sk->accepted ? "accepted" :
					   sub->answered ? "rejected" : "offered");
			err |= benc_kv_int(mb, "local port", sk->rtp->port);
			err |= enc_endpoint(mb, "destination", &sk->dst_rtp);
			err |= benc_kv_int(mb, "packets",
					   (int64_t)sk->sent_snap.packets);
			err |= benc_kv_int(mb, "bytes",
					   (int64_t)sk->sent_snap.bytes);
			err |= benc_end(mb);
		}
		err |= benc_end(mb);
		err |= benc_end(mb);
	}
	err |= benc_end(mb);
	return err;
}

int ngq_call_totals(struct mbuf *mb, struct mcall *call)
{
	struct mstats t;
	int err;

	memset(&t, 0, sizeof(t));
	mstats_add_call(&t, call);
	err = benc_kv_int(mb, "created", (int64_t)call->created);
	err |= benc_kv_int(mb, "last signal", (int64_t)call->last_signal);
	err |= benc_str(mb, "totals");
	err |= benc_dict_begin(mb);
	err |= enc_count(mb, "RTP", &t.rtp);
	err |= enc_count(mb, "RTCP", &t.rtcp);
	err |= benc_end(mb);
	return err;
}

static int call_from_req(struct mcall **callp, const struct benc_node *req,
			 const char **why)
{
	struct pl callid;

	if (benc_dict_pl(req, "call-id", &callid) || !pl_isset(&callid)) {
		*why = "No call-id in message";
		return EINVAL;
	}
	if (mcall_get(callp, &callid, false)) {
		*why = "Unknown call-id";
		return ENOENT;
	}
	return 0;
}

int ngq_query(struct mbuf *reply, const struct benc_node *req,
	      const char **why)
{
	struct mcall *call;
	struct le *le;
	int err;

	if ((err = call_from_req(&call, req, why)))
		return err;
	mcall_sync_stats(call);
	err = ngq_call_totals(reply, call);
	err |= benc_str(reply, "tags");
	err |= benc_dict_begin(reply);
	for (le = list_head(&call->parties); le; le = le->next) {
		const struct party *p = le->data;
		if (p->tag[0])
			err |= enc_party(reply, p);
	}
	err |= benc_end(reply);
	err |= enc_subscrs(reply, call);
	return err ? ENOMEM : 0;
}

int ngq_delete(struct mbuf *reply, const struct benc_node *req,
	       const char **why)
{
	struct mcall *call;
	int err;

	if ((err = call_from_req(&call, req, why)))
		return err;
	mcall_sync_stats(call);
	err = ngq_call_totals(reply, call);
	++g_media->calls_deleted;
	mcall_delete(call, "ng delete");
	return err ? ENOMEM : 0;
}

int ngq_list(struct mbuf *reply, const struct benc_node *req,
	     const char **why)
{
	int64_t limit = 32;
	struct le *le;
	int err;

	(void)why;
	(void)benc_dict_int(req, "limit", &limit);
	err = benc_str(reply, "calls");
	err |= benc_list_begin(reply);
	for (le = list_head(&g_media->callq); le && limit > 0;
	     le = le->next, --limit) {
		const struct mcall *call = le->data;
		err |= benc_str(reply, call->callid);
	}
	err |= benc_end(reply);
	return err ? ENOMEM : 0;
}

static void gso_h(struct worker *w, void *arg)
{
	(void)w;
	relay_gso_add(arg);
}

int ngq_statistics(struct mbuf *reply, const struct benc_node *req,
		   const char **why)
{
	struct mstats t = g_media->gone;
	struct relay_gso gso = {0};
	uint64_t now = media_unixtime();
	struct le *le;
	unsigned i;
	int err;

	(void)req; (void)why;
	for (i = 0; i < g_media->nworkers; i++)
		worker_exec(g_media->workers[i], gso_h, &gso);
	for (le = list_head(&g_media->callq); le; le = le->next) {
		struct mcall *call = le->data;
		mcall_sync_stats(call);
		mstats_add_call(&t, call);
	}
	err = benc_str(reply, "statistics");
	err |= benc_dict_begin(reply);

	err |= benc_str(reply, "currentstatistics");
	err |= benc_dict_begin(reply);
	err |= benc_kv_int(reply, "sessionsown", g_media->ncalls);
	err |= benc_kv_int(reply, "sessionsforeign", 0);
	err |= benc_kv_int(reply, "sessionstotal", g_media->ncalls);
	err |= benc_kv_int(reply, "transcodedmedia", 0);
	err |= benc_end(reply);

	err |= benc_str(reply, "totalstatistics");
	err |= benc_dict_begin(reply);
	err |= benc_kv_int(reply, "uptime", (int64_t)(now - g_media->started));
	err |= benc_kv_int(reply, "managedsessions",
			   (int64_t)g_media->calls_total);
	err |= benc_kv_int(reply, "timeoutsessions",
			   (int64_t)g_media->calls_timeout);
	err |= benc_kv_int(reply, "regularterminatedsessions",
			   (int64_t)g_media->calls_deleted);
	err |= benc_kv_int(reply, "relayedpackets", (int64_t)t.forwarded);
	err |= benc_kv_int(reply, "relayedbytes",
			   (int64_t)(t.rtp.bytes + t.rtcp.bytes));
	err |= benc_kv_int(reply, "errorpackets",
			   (int64_t)(t.rtp.errors + t.rtcp.errors));
	err |= benc_end(reply);

	err |= benc_str(reply, "tally");
	err |= benc_dict_begin(reply);
	err |= benc_kv_int(reply, "workers", g_media->nworkers);
	err |= benc_kv_int(reply, "ports used", portpool_used(g_media->ports));
	err |= benc_kv_int(reply, "ports total", portpool_size(g_media->ports));
	err |= benc_kv_int(reply, "subscriptions", g_media->nsubs);
	err |= benc_kv_int(reply, "replicated packets", (int64_t)t.replicated);
	err |= benc_kv_int(reply, "dropped packets", (int64_t)t.dropped);
	err |= benc_kv_int(reply, "unexpected packets", (int64_t)t.unexpected);
	err |= benc_kv_int(reply, "lost packets", (int64_t)t.lost);
	err |= benc_kv_int(reply, "gso sends", (int64_t)gso.sends);
	err |= benc_kv_int(reply, "gso datagrams", (int64_t)gso.datagrams);
	err |= benc_kv_int(reply, "gso refused", (int64_t)gso.refused);
	err |= benc_kv_int(reply, "ng requests", (int64_t)g_media->ng_requests);
	err |= benc_kv_int(reply, "ng errors", (int64_t)g_media->ng_errors);
	err |= benc_kv_int(reply, "ng garbage", (int64_t)g_media->ng_garbage);
	err |= benc_end(reply);

	err |= benc_end(reply);
	return err ? ENOMEM : 0;
}
