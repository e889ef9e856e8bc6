/*
 * recbody.c: the body of a recording session's INVITE and re-INVITEs
 * (RFC 7866 s8): multipart/mixed with the SDP offer and the RFC 7865
 * metadata, both kept for the life of the session so that every
 * re-INVITE is the same session seen again.
 *
 * The SDP is the media server's latest offer (rec->offer: one m= line per
 * subscribed stream, a=sendonly, labels), rewritten as the recording
 * stands now:
 *   o=   our first offer's user and session id, version +1 per offer
 *        (RFC 3264 s8; a flag-add reply comes with a new session id)
 *   m=   port 0 for a video line while the recording is audio-only
 *        (video dropped or never asked for: lines are never removed)
 *   a=   the direction: a=inactive while paused, else a=sendonly
 * Worked example (audio+video recording, paused, second re-INVITE):
 *   o=- 1765000000 1 IN IP4 10.0.0.5   ->  o=- 1765000000 3 IN IP4 10.0.0.5
 *   m=audio 30000 RTP/AVP 0 ...             m=audio 30000 RTP/AVP 0 ...
 *   a=sendonly                              a=inactive
 *   m=video 30002 RTP/AVP 96 ...            m=video 30002 RTP/AVP 96 ...
 *   a=sendonly                              a=inactive
 *
 * The metadata (rsmw.h) is made once with the session: group, session,
 * both participants, one stream per m= line, each stream sent by its
 * party and received by the other; streams added later (video added)
 * get their ids when they first appear. A re-INVITE carries the whole
 * document as datamode partial: the recorder updates by id
 * (src/recorder/rsmeta.c), and a document that restates every
 * association keeps it right even when an earlier one was lost.
 */
#include <errno.h>
#include <string.h>
#include "log.h"
#include "sdp.h"
#include "multipart.h"
#include "rsmw.h"
#include "rec.h"

/* The fields of an o= line value ("user sess ver nettype atype addr"). */
static int origin_split(const struct pl *val, struct pl f[6])
{
	return re_regex(val->p, val->l, "[^ ]+ [^ ]+ [^ ]+ [^ ]+ [^ ]+ [^ ]+",
			&f[0], &f[1], &f[2], &f[3], &f[4], &f[5]);
}

static bool is_dir(const struct pl *l)
{
	return !pl_strcmp(l, "a=sendonly") || !pl_strcmp(l, "a=recvonly") ||
	       !pl_strcmp(l, "a=sendrecv") || !pl_strcmp(l, "a=inactive");
}

/* Write rec->offer rewritten (see the banner) to OUT. */
static int sdp_write(struct mbuf *out, struct recording *rec)
{
	struct msdp *d = NULL;
	const char *why = NULL;
	struct pl text, f[6];
	size_t i, k = 0;
	int err;

	text.p = (const char *)rec->offer->buf;
	text.l = rec->offer->end;
	err = msdp_parse(&d, &text, &why);
	if (err) {
		log_warn("rec: [%s] the media server's offer does not parse: "
			 "%s", rec->id, why ? why : "?");
		return err;
	}
	for (i = 0; i < d->nlines && !err; i++) {
		const struct pl *l = &d->lines[i];
		const struct msdp_media *m;
		struct pl val;

		while (k < d->nmedia &&
		       i >= d->media[k].line_first + d->media[k].line_count)
			++k;
		m = k < d->nmedia && i >= d->media[k].line_first ?
			&d->media[k] : NULL;
		if (!m && l->l > 2 && !memcmp(l->p, "o=", 2)) {
			val.p = l->p + 2;
			val.l = l->l - 2;
			if (origin_split(&val, f)) {
				err = EBADMSG;
				break;
			}
			if (!rec->origin[0])
				re_snprintf(rec->origin, sizeof(rec->origin),
					    "%r %r", &f[0], &f[1]);
			err = mbuf_printf(out, "o=%s %u %r %r %r\r\n",
					  rec->origin, rec->sdp_ver, &f[3],
					  &f[4], &f[5]);
		}
		else if (m && i == m->line_first && m->kind == MSDP_VIDEO &&
			 !rec->video) {
			/* "m=video 30002 RTP/AVP 96" -> port 0 */
			const char *sp = memchr(l->p + 2, ' ', l->l - 2);
			const char *sp2 = sp ? memchr(sp + 1, ' ',
					l->l - (size_t)(sp + 1 - l->p)) : NULL;
			if (!sp2) {
				err = EBADMSG;
				break;
			}
			err = mbuf_printf(out, "%b 0%b\r\n", l->p,
					  (size_t)(sp - l->p), sp2,
					  l->l - (size_t)(sp2 - l->p));
		}
		else if (m && is_dir(l)) {
			err = mbuf_printf(out, "a=%s\r\n", rec->paused ?
					  "inactive" : "sendonly");
		}
		else {
			err = mbuf_printf(out, "%r\r\n", l);
		}
	}
	mem_deref(d);
	return err;
}

/* The metadata document of REC: made with the session, streams added as
 * rec->streams grows. */
static int doc_sync(struct recording *rec)
{
	const struct bcall *bc = rec->bc;
	struct rsmw_doc *doc = rec->doc;
	size_t i;

	if (!doc) {
		if (!bc)
			return EINVAL;
		doc = mem_zalloc(sizeof(*doc), NULL);
		if (!doc)
			return ENOMEM;
		rsmw_newid(doc->group_id);
		rsmw_newid(doc->session_id);
		str_ncpy(doc->callid, rec->callid, sizeof(doc->callid));
		doc->start = rec->created / 1000;
		doc->nparts = 2;
		for (i = 0; i < 2; i++) {
			const struct bparty *bp = i ? &bc->callee : &bc->caller;
			struct rsmw_party *rp = &doc->parts[i];

			rsmw_newid(rp->id);
			str_ncpy(rp->aor, bp->uri[0] ? bp->uri :
				 "sip:unknown@invalid", sizeof(rp->aor));
			str_ncpy(rp->name, bp->name, sizeof(rp->name));
			str_ncpy(rp->dn, bp->user, sizeof(rp->dn));
			rp->assoc = doc->start;
		}
		rec->doc = doc;
	}
	for (i = doc->nstreams; i < rec->nstreams && i < RSMW_MAX_STREAMS;
	     i++) {
		struct rsmw_party *snd = &doc->parts[rec->streams[i].caller ?
						     0 : 1];
		struct rsmw_party *rcv = &doc->parts[rec->streams[i].caller ?
						     1 : 0];

		rsmw_newid(doc->streams[i].id);
		re_snprintf(doc->streams[i].label,
			    sizeof(doc->streams[i].label), "%u",
			    rec->streams[i].label);
		snd->send[snd->nsend++] = (uint8_t)i;
		rcv->recv[rcv->nrecv++] = (uint8_t)i;
		doc->nstreams = i + 1;
	}
	return 0;
}

/*
 * Write the next body of REC's session into rec->body (replacing the
 * last one): the offer as rec->paused and rec->video say, with the next
 * o= version, and the metadata, datamode PARTIAL (a re-INVITE) or
 * complete. rec->offer must be set. 0, EINVAL, EBADMSG (the media
 * server's offer does not parse), ENOMEM.
 */
int rec_body(struct recording *rec, bool partial)
{
	struct mbuf *sdp = NULL, *meta = NULL, *body = NULL;
	struct mpart_out parts[2];
	struct pl sdppl, metapl;
	int err;

	if (!rec || !rec->offer)
		return EINVAL;
	err = doc_sync(rec);
	if (err)
		return err;
	sdp = mbuf_alloc(rec->offer->end + 256);
	meta = mbuf_alloc(4096);
	body = mbuf_alloc(rec->offer->end + 8192);
	if (!sdp || !meta || !body) {
		err = ENOMEM;
		goto out;
	}
	++rec->sdp_ver;
	err = sdp_write(sdp, rec);
	if (err)
		goto out;
	rec->doc->partial = partial;
	err = rsmw_write(meta, rec->doc);
	if (err)
		goto out;
	sdppl.p = (const char *)sdp->buf;
	sdppl.l = sdp->end;
	metapl.p = (const char *)meta->buf;
	metapl.l = meta->end;
	parts[0].ctype = "application/sdp";
	parts[0].disp = NULL;
	parts[0].body = &sdppl;
	parts[1].ctype = "application/rs-metadata+xml";
	parts[1].disp = "recording-session";
	parts[1].body = &metapl;
	if (!rec->boundary[0])
		multipart_boundary(rec->boundary, sizeof(rec->boundary));
	err = multipart_write(body, rec->boundary, parts, 2);
	if (err)
		goto out;
	mem_deref(rec->body);
	rec->body = body;
	body = NULL;
 out:
	mem_deref(sdp);
	mem_deref(meta);
	mem_deref(body);
	return err;
}
