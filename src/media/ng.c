/*
 * ng.c: the ng control socket: rtpengine's protocol, one UDP datagram per
 * request, on the control thread (libre main loop).
 *
 * Wire format, worked example:
 *   request  "5323_1 d7:command4:pinge"
 *   reply    "5323_1 d6:result4:ponge"
 *   error    "5323_2 d6:result5:error12:error-reason15:Unknown call-ide"
 * The cookie (everything before the first space) is echoed. A request whose
 * cookie was seen in the last 30 s from the same address is a retransmission:
 * it gets the cached reply and is not executed again (an offer must not
 * allocate ports twice). A datagram without a cookie cannot be answered: it
 * is counted as garbage and dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "media.h"

enum { NG_CACHE_SECS = 30, NG_CACHE_MAX = 65536, NG_COOKIE_MAX = 128 };

struct ng {
	struct udp_sock *us;
	struct hash *cache;
	struct list cacheq;       /* oldest first */
	unsigned ncache;
	struct tmr tmr;
};

struct ngcache {
	struct le he, le;
	char cookie[NG_COOKIE_MAX];
	struct sa src;
	struct mbuf *reply;
	uint64_t t;
};

typedef int (ng_cmd_h)(struct mbuf *reply, const struct benc_node *req,
		       const char **why);

static int cmd_ping(struct mbuf *reply, const struct benc_node *req,
		    const char **why)
{
	(void)reply; (void)req; (void)why;
	return 0;
}

static int cmd_offer(struct mbuf *reply, const struct benc_node *req,
		     const char **why)
{
	return offer_handle(reply, req, false, why);
}

static int cmd_answer(struct mbuf *reply, const struct benc_node *req,
		      const char **why)
{
	return offer_handle(reply, req, true, why);
}

static const struct {
	const char *name;
	ng_cmd_h *h;
} cmds[] = {
	{"ping",              cmd_ping},
	{"offer",             cmd_offer},
	{"answer",            cmd_answer},
	{"delete",            ngq_delete},
	{"query",             ngq_query},
	{"list",              ngq_list},
	{"statistics",        ngq_statistics},
	{"subscribe request", subscribe_request},
	{"subscribe answer",  subscribe_answer},
	{"unsubscribe",       unsubscribe},
};

static void cache_destructor(void *arg)
{
	struct ngcache *c = arg;

	hash_unlink(&c->he);
	list_unlink(&c->le);
	mem_deref(c->reply);
}

static bool cookie_cmp(struct le *le, void *arg)
{
	const struct ngcache *c = le->data;
	return 0 == pl_strcmp(arg, c->cookie);
}

static void cache_put(struct ng *ng, const struct pl *cookie,
		      const struct sa *src, struct mbuf *reply)
{
	struct ngcache *c;

	if (cookie->l >= NG_COOKIE_MAX)
		return;
	if (ng->ncache >= NG_CACHE_MAX) {
		mem_deref(list_ledata(list_head(&ng->cacheq)));
		--ng->ncache;
	}
	c = mem_zalloc(sizeof(*c), cache_destructor);
	if (!c)
		return;
	pl_strcpy(cookie, c->cookie, sizeof(c->cookie));
	c->src = *src;
	c->reply = mem_ref(reply);
	c->t = media_unixtime();
	hash_append(ng->cache, hash_joaat_pl(cookie), &c->he, c);
	list_append(&ng->cacheq, &c->le, c);
	++ng->ncache;
}

static void cache_sweep(void *arg)
{
	struct ng *ng = arg;
	uint64_t now = media_unixtime();
	struct le *le;

	while ((le = list_head(&ng->cacheq))) {
		struct ngcache *c = le->data;
		if (now - c->t < NG_CACHE_SECS)
			break;
		mem_deref(c);
		--ng->ncache;
	}
	tmr_start(&ng->tmr, 1000, cache_sweep, ng);
}

static int reply_error(struct mbuf *mb, size_t start, const char *why)
{
	mb->pos = mb->end = start;
	return benc_dict_begin(mb) || benc_kv_str(mb, "result", "error") ||
	       benc_kv_str(mb, "error-reason", why) || benc_end(mb) ? ENOMEM : 0;
}

static void ng_recv(const struct sa *src, struct mbuf *mb, void *arg)
{
	struct ng *ng = arg;
	const char *why = NULL;
	struct pl cookie, cmdname;
	const struct benc_node *root;
	struct benc *doc = NULL;
	struct mbuf *reply = NULL;
	const uint8_t *p = mbuf_buf(mb);
	size_t len = mbuf_get_left(mb), i, start;
	struct le *le;
	int err;

	++g_media->ng_requests;
	for (i = 0; i < len && i < NG_COOKIE_MAX && p[i] != ' '; i++)
		;
	if (i == 0 || i >= len || p[i] != ' ') {
		++g_media->ng_garbage;
		log_debug("ng: datagram without cookie from port %u dropped",
			  sa_port(src));
		return;
	}
	cookie.p = (const char *)p;
	cookie.l = i;

	le = hash_lookup(ng->cache, hash_joaat_pl(&cookie), cookie_cmp, &cookie);
	if (le) {
		struct ngcache *c = le->data;
		if (sa_cmp(&c->src, src, SA_ALL)) {
			c->reply->pos = 0;
			(void)udp_send(ng->us, src, c->reply);
			return;
		}
	}

	reply = mbuf_alloc(512);
	if (!reply)
		return;
	(void)mbuf_write_mem(reply, p, i + 1);
	start = reply->end;

	err = benc_decode(&doc, p + i + 1, len - i - 1, NULL);
	if (err) {
		why = err == E2BIG ? "Message too complex" :
		      "Failed to decode bencode message";
		goto fail;
	}
	root = benc_root(doc);
	if (root->type != BENC_DICT) {
		why = "Message is not a dictionary";
		goto fail;
	}
	if (benc_dict_pl(root, "command", &cmdname)) {
		why = "No command in message";
		goto fail;
	}
	for (i = 0; i < (sizeof(cmds) / sizeof(cmds[0])); i++) {
		if (!pl_strcasecmp(&cmdname, cmds[i].name))
			break;
	}
	if (i == (sizeof(cmds) / sizeof(cmds[0]))) {
		why = "Unrecognized command";
		goto fail;
	}
	if (benc_dict_begin(reply))
		goto fail;
	err = cmds[i].h(reply, root, &why);
	if (err) {
		if (!why)
			why = "Internal error";
		goto fail;
	}
	if (cmds[i].h == cmd_ping)
		err = benc_kv_str(reply, "result", "pong");
	else
		err = benc_kv_str(reply, "result", "ok");
	err |= benc_end(reply);
	if (err) {
		why = "Reply too large";
		goto fail;
	}
	goto send;

 fail:
	++g_media->ng_errors;
	log_info("ng: request '%.*s' from port %u failed: %s",
		 (int)cookie.l, cookie.p, sa_port(src), why);
	(void)reply_error(reply, start, why ? why : "Internal error");
 send:
	reply->pos = 0;
	(void)udp_send(ng->us, src, reply);
	cache_put(ng, &cookie, src, reply);
	mem_deref(reply);
	mem_deref(doc);
}

static void ng_destructor(void *arg)
{
	struct ng *ng = arg;

	tmr_cancel(&ng->tmr);
	mem_deref(ng->us);
	hash_flush(ng->cache);
	mem_deref(ng->cache);
}

int ng_alloc(struct ng **ngp, const char *listen)
{
	struct ng *ng;
	struct sa laddr;
	int err;

	err = sa_decode(&laddr, listen, strlen(listen));
	if (err) {
		/* rtpengine also takes a bare port: loopback */
		unsigned port = (unsigned)atoi(listen);
		if (!port || port > 65535)
			return EINVAL;
		sa_set_str(&laddr, "127.0.0.1", (uint16_t)port);
	}
	ng = mem_zalloc(sizeof(*ng), ng_destructor);
	if (!ng)
		return ENOMEM;
	err = hash_alloc(&ng->cache, 1024);
	if (!err)
		err = udp_listen(&ng->us, &laddr, ng_recv, ng);
	if (err) {
		mem_deref(ng);
		return err;
	}
	(void)udp_sockbuf_set(ng->us, 1 << 20);
	tmr_init(&ng->tmr);
	tmr_start(&ng->tmr, 1000, cache_sweep, ng);
	*ngp = ng;
	return 0;
}
