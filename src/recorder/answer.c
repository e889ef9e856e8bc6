/*
 * answer.c: the SRS's SDP answer (RFC 7866 s7.2, RFC 3264). One m= line per
 * offered m= line, in the same order; each one is either accepted (our
 * port, the offered payload types we can store, a=recvonly, the label
 * echoed) or refused with port 0 and the reason kept in session.json.
 *
 * Why a stream is refused, in the order checked:
 *   "offered with port 0"            the SRC removed it
 *   "not audio or video"             e.g. m=application
 *   "policy: audio only" / "policy"  what policy.c decided
 *   "no supported codec"             nothing in depack.h's list
 * An offer of a=inactive (pause) is answered a=inactive on the same port;
 * sendonly/sendrecv (resume) is answered a=recvonly.
 *
 * Worked example (offer stream 2 of 4, policy audio only):
 *   m=video 49174 RTP/AVPF 96      ->  m=video 0 RTP/AVPF 96
 *   a=rtpmap:96 H.264/90000            a=label:97
 *   a=label:97                         a=inactive
 *   a=sendonly
 *   (and for stream 1, accepted)
 *   m=audio 49170 RTP/AVP 0 8      ->  m=audio 40000 RTP/AVP 0 8
 *                                      a=rtpmap:0 PCMU/8000
 *                                      a=rtpmap:8 PCMA/8000
 *                                      a=rtcp:40001
 *                                      a=label:96
 *                                      a=recvonly
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "sdp.h"
#include "depack.h"
#include "recd.h"

/* Static payload types (RFC 3551) we may see without an rtpmap. */
static bool static_pt(int pt, struct sf_codec *c)
{
	const char *name = pt == 0 ? "PCMU" : pt == 8 ? "PCMA" :
		pt == 9 ? "G722" : NULL;

	if (!name)
		return false;
	(void)snprintf(c->name, sizeof(c->name), "%s", name);
	c->clock = 8000;
	c->channels = 1;
	return true;
}

/* The value of "a=<attr>:<pt> ..." for PT inside section M, or NULL. */
static const struct pl *pt_attr(const struct msdp *sdp,
				const struct msdp_media *m, const char *attr,
				int pt, struct pl *val)
{
	size_t i, alen = strlen(attr);

	for (i = m->line_first + 1; i < m->line_first + m->line_count; i++) {
		const struct pl *l = &sdp->lines[i];
		struct pl rest;
		char num[12];
		size_t nl;

		if (l->l < 2 + alen + 2 || strncmp(l->p, "a=", 2) ||
		    strncasecmp(l->p + 2, attr, alen) || l->p[2 + alen] != ':')
			continue;
		rest.p = l->p + 3 + alen;
		rest.l = l->l - 3 - alen;
		nl = (size_t)snprintf(num, sizeof(num), "%d", pt);
		if (rest.l <= nl || strncmp(rest.p, num, nl) ||
		    (rest.p[nl] != ' ' && rest.p[nl] != '\t'))
			continue;
		val->p = rest.p + nl;
		val->l = rest.l - nl;
		while (val->l && (*val->p == ' ' || *val->p == '\t'))
			++val->p, --val->l;
		return val;
	}
	return NULL;
}

static bool fmtp_param(const char *fmtp, const char *key, long *v)
{
	const char *p = fmtp;
	size_t kl = strlen(key);

	while (p && *p) {
		while (*p == ' ' || *p == ';')
			++p;
		if (!strncasecmp(p, key, kl) && p[kl] == '=') {
			*v = strtol(p + kl + 1, NULL, 10);
			return true;
		}
		p = strchr(p, ';');
	}
	return false;
}

/* The payload types of M we can store, into ST's codec list. */
static void pick_codecs(const struct msdp *sdp, const struct msdp_media *m,
			struct sf_stream *st)
{
	struct pl fmts = m->fmts, tok;

	st->ncodecs = 0;
	while (st->ncodecs < SF_CODECS_MAX &&
	       !re_regex(fmts.p, fmts.l, "[0-9]+", &tok)) {
		struct sf_codec c;
		struct pl val;
		int pt = pl_u32(&tok) > 127 ? -1 : (int)pl_u32(&tok);
		enum dp_codec dc;

		fmts.l -= (size_t)(tok.p + tok.l - fmts.p);
		fmts.p = tok.p + tok.l;
		if (pt < 0)
			continue;
		memset(&c, 0, sizeof(c));
		c.pt = pt;
		c.channels = 1;
		if (pt_attr(sdp, m, "rtpmap", pt, &val)) {
			struct pl name, clock, ch;

			if (re_regex(val.p, val.l, "[^/]+/[0-9]+[/]*[0-9]*",
				     &name, &clock, NULL, &ch))
				continue;
			(void)pl_strcpy(&name, c.name, sizeof(c.name));
			c.clock = pl_u32(&clock);
			if (pl_isset(&ch) && pl_u32(&ch))
				c.channels = (int)pl_u32(&ch);
		}
		else if (!static_pt(pt, &c)) {
			continue;
		}
		if (pt_attr(sdp, m, "fmtp", pt, &val))
			(void)pl_strcpy(&val, c.fmtp, sizeof(c.fmtp));
		dc = dp_codec_from_name(c.name);
		if (dc == DP_UNKNOWN || !c.clock)
			continue;
		if (dp_codec_is_video(dc) != (m->kind == MSDP_VIDEO))
			continue;
		if (dc == DP_H264) {
			long mode = 0;

			(void)fmtp_param(c.fmtp, "packetization-mode", &mode);
			if (mode > 1)
				continue;     /* interleaved: not supported */
		}
		st->codecs[st->ncodecs++] = c;
	}
}

static int print_stream(struct mbuf *out, const struct msdp_media *m,
			const struct sf_stream *st, bool inactive)
{
	int err = 0;
	size_t i;

	if (!st->accepted) {
		err |= mbuf_printf(out, "m=%r 0 %r %r\r\n", &m->media,
				   &m->proto, &m->fmts);
		if (st->label[0])
			err |= mbuf_printf(out, "a=label:%s\r\n", st->label);
		return err ? ENOMEM : 0;
	}
	err |= mbuf_printf(out, "m=%r %u %r", &m->media, st->port, &m->proto);
	for (i = 0; i < st->ncodecs; i++)
		err |= mbuf_printf(out, " %d", st->codecs[i].pt);
	err |= mbuf_printf(out, "\r\n");
	for (i = 0; i < st->ncodecs; i++) {
		const struct sf_codec *c = &st->codecs[i];

		if (c->channels > 1)
			err |= mbuf_printf(out, "a=rtpmap:%d %s/%u/%d\r\n",
					   c->pt, c->name, c->clock, c->channels);
		else
			err |= mbuf_printf(out, "a=rtpmap:%d %s/%u\r\n",
					   c->pt, c->name, c->clock);
		if (c->fmtp[0])
			err |= mbuf_printf(out, "a=fmtp:%d %s\r\n", c->pt,
					   c->fmtp);
	}
	if (m->rtcp_mux)
		err |= mbuf_printf(out, "a=rtcp-mux\r\n");
	err |= mbuf_printf(out, "a=rtcp:%u\r\n", st->rtcp_port);
	if (st->label[0])
		err |= mbuf_printf(out, "a=label:%s\r\n", st->label);
	err |= mbuf_printf(out, "%s\r\n", inactive ? "a=inactive" : "a=recvonly");
	return err ? ENOMEM : 0;
}

/*
 * Decide every m= line of OFFER for RS (its streams so far are
 * RS->sf.streams[0..nstreams)), give new accepted streams ports from a new
 * block, and write the answer to OUT. RS->sf.streams and RS->rs[] hold the
 * result; rsess_apply() makes the receive thread follow.
 * Returns 0, ENOSPC (no ports), ENOMEM.
 */
int answer_make(struct rsess *rs, const struct msdp *offer,
		enum rec_media allow, struct mbuf *out)
{
	struct recd *rd = rs->rd;
	size_t old = rs->sf.nstreams, i;
	unsigned need = 0;
	uint16_t base = 0;
	bool v6 = sa_af(&rd->media_addr) == AF_INET6;
	int err = 0;

	/* a stream that existed keeps its port; new ones get one block */
	for (i = old; i < offer->nmedia; i++)
		++need;
	if (need) {
		err = rxports_get(rd->ports, need, &base);
		if (err)
			return err;
		rs->blocks[rs->nblocks].base = base;
		rs->blocks[rs->nblocks].n = need;
		++rs->nblocks;
	}

	for (i = 0; i < offer->nmedia; i++) {
		const struct msdp_media *m = &offer->media[i];
		struct sf_stream *st = &rs->sf.streams[i];
		bool isnew = i >= old;
		bool was = !isnew && st->accepted;

		if (isnew) {
			memset(st, 0, sizeof(*st));
			st->index = (int)i;
			st->opened = recd_now();
			/* reserved for the session's life, even if refused
			 * now: a later offer may reuse the m= line */
			rs->rs[i].port = (uint16_t)(base + 2 * (i - old));
		}
		(void)pl_strcpy(&m->label, st->label, sizeof(st->label));
		if (!pl_isset(&m->label))
			st->label[0] = '\0';
		(void)pl_strcpy(&m->media, st->media, sizeof(st->media));
		rs->rs[i].video = m->kind == MSDP_VIDEO;
		pick_codecs(offer, m, st);

		st->refused[0] = '\0';
		if (!m->port)
			(void)snprintf(st->refused, sizeof(st->refused),
				       "offered with port 0");
		else if (m->kind == MSDP_OTHER)
			(void)snprintf(st->refused, sizeof(st->refused),
				       "not audio or video");
		else if (m->kind == MSDP_VIDEO && allow != REC_AUDIO_VIDEO)
			(void)snprintf(st->refused, sizeof(st->refused),
				       "policy: %s", allow == REC_AUDIO ?
				       "audio only" : "not recorded");
		else if (m->kind == MSDP_AUDIO && allow == REC_NONE)
			(void)snprintf(st->refused, sizeof(st->refused),
				       "policy: not recorded");
		else if (!st->ncodecs)
			(void)snprintf(st->refused, sizeof(st->refused),
				       "no supported codec");
		st->accepted = !st->refused[0];
		st->port = st->accepted ? rs->rs[i].port : 0;
		st->rtcp_port = st->accepted ? (uint16_t)(st->port + 1) : 0;
		if (st->accepted && !was)
			st->closed = 0;
		if (!st->accepted && was)
			st->closed = recd_now();
		rs->rs[i].paused = st->accepted &&
			(m->dir == MSDP_DIR_INACTIVE ||
			 m->dir == MSDP_DIR_RECVONLY);
	}
	rs->sf.nstreams = offer->nmedia;

	++rs->sdp_version;
	err |= mbuf_printf(out, "v=0\r\no=tally-recorder %llu %llu IN %s %j\r\n"
			   "s=tally-recorder\r\nc=IN %s %j\r\nt=0 0\r\n",
			   (unsigned long long)rs->sdp_id,
			   (unsigned long long)rs->sdp_version,
			   v6 ? "IP6" : "IP4", &rd->media_addr,
			   v6 ? "IP6" : "IP4", &rd->media_addr);
	for (i = 0; i < offer->nmedia && !err; i++)
		err = print_stream(out, &offer->media[i], &rs->sf.streams[i],
				   rs->rs[i].paused);
	return err ? ENOMEM : 0;
}
