/*
 * recmod.c: changes of a running recording, each a re-INVITE of its
 * SIPREC session (RFC 7866 s8.1.2, RFC 3264 s8): pause, resume, video
 * added or dropped. One change at a time (rec->mod); the API answers a
 * second one 409.
 *
 * Worked example (audio+video recording r1 of call c1, both started):
 *   POST /api/v1/recordings/r1/pause             -> 200, "change":"pause"
 *   re-INVITE: every m= line a=inactive, o= version 2, metadata partial
 *   200 OK (a=inactive on the recorder's ports)  -> ACK
 *   ng "subscribe answer" (the recorder's SDP)   -> inactive [1,2,3,4]:
 *      tally-media stops copying, keeps the ports
 *   events recording.audio.paused, recording.video.paused
 *   POST /api/v1/recordings/r1/resume: the same with a=sendonly,
 *   ng "inactive" [] (copying again), .resumed for both.
 *   POST /api/v1/recordings/r1/media {"media":"audio"}: the video lines go
 *   port 0 in the re-INVITE, ng detaches them, recording.video.stopped.
 *   {"media":"audio+video"} again (or for a recording made audio-only):
 *   ng "subscribe request" with flag add first (the offer gains the video
 *   lines after the old ones, or has them still), re-INVITE with them,
 *   then recording.video.started or .rejected (port 0 from the recorder).
 *
 * Failures: the recorder not answering the re-INVITE (timeout_ms),
 * unreachable, or answering 481 or 408 (RFC 5057: the dialog is gone)
 * ends the recording with .failed. Any other refusal (488, 500, 491...)
 * leaves the session as it was (RFC 3261 s14.1): the change is dropped,
 * its reason is "change_error" in the recording's JSON, and video that
 * was to be added gets .failed. The media server failing the subscribe
 * answer ends the recording (what it copies is unknown then).
 */
#include <errno.h>
#include <string.h>
#include "log.h"
#include "rec.h"

const char *rec_mod_name(enum rec_mod mod)
{
	switch (mod) {
	case RMOD_NONE:       return NULL;
	case RMOD_PAUSE:      return "pause";
	case RMOD_RESUME:     return "resume";
	case RMOD_VIDEO_ADD:  return "add video";
	case RMOD_VIDEO_DROP: return "drop video";
	}
	return NULL;
}

static bool label_in(const unsigned *l, size_t n, unsigned label)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (l[i] == label)
			return true;
	return false;
}

/* The change could not be made; the session is as it was. */
static void mod_drop(struct recording *rec, const char *why)
{
	enum rec_mod mod = rec->mod;

	log_info("rec: [%s] %s refused: %s", rec->id, rec_mod_name(mod), why);
	str_ncpy(rec->moderr, why, sizeof(rec->moderr));
	rec->mod = RMOD_NONE;
	if (mod == RMOD_VIDEO_ADD) {
		rec->video = false;
		if (rec_mlive(rec->mst[REC_VIDEO]))
			rec_mset(rec, REC_VIDEO, RM_FAILED, NULL, why);
	}
	else if (mod == RMOD_VIDEO_DROP) {
		rec->video = true;
	}
	else if (mod == RMOD_PAUSE || mod == RMOD_RESUME) {
		rec->paused = mod == RMOD_RESUME;
	}
}

/* The media server copies what the recorder's answer says: events. */
static void mod_ans_resp(int err, const struct benc_node *reply, void *arg)
{
	struct recording *rec = arg;
	enum rec_mod mod = rec->mod;
	struct ngsub_result r;
	char why[REC_REASON_MAX];
	bool any_video = false;
	size_t i;
	int m;

	rec->ng = mem_deref(rec->ng);
	err = ngsub_answer_reply(err, reply, &r, why, sizeof(why));
	if (err) {
		rec_fail(rec, why);
		return;
	}
	for (i = 0; i < rec->nstreams; i++) {
		struct rec_stream *s = &rec->streams[i];

		s->st = label_in(r.accepted, r.naccepted, s->label) ?
			RS_ACCEPTED : RS_REJECTED;
		if (s->st == RS_ACCEPTED && !strcmp(s->type, "video"))
			any_video = true;
	}
	rec->mod = RMOD_NONE;
	rec->moderr[0] = '\0';
	switch (mod) {
	case RMOD_PAUSE:
		for (m = 0; m < REC_NMEDIA; m++)
			if (rec->mst[m] == RM_STARTED)
				rec_mset(rec, m, RM_PAUSED, NULL, NULL);
		break;
	case RMOD_RESUME:
		for (m = 0; m < REC_NMEDIA; m++)
			if (rec->mst[m] == RM_PAUSED)
				rec_mset(rec, m, RM_STARTED, "resumed", NULL);
		break;
	case RMOD_VIDEO_ADD:
		if (!any_video) {
			str_ncpy(why, rec->mreason[REC_VIDEO], sizeof(why));
			rec_mset(rec, REC_VIDEO, RM_REJECTED, NULL, why[0] ?
				 why : "the recorder answered port 0");
			break;
		}
		rec_mset(rec, REC_VIDEO, RM_STARTED, NULL, NULL);
		if (rec->paused)
			rec_mset(rec, REC_VIDEO, RM_PAUSED, NULL, NULL);
		break;
	case RMOD_VIDEO_DROP:
		if (rec_mlive(rec->mst[REC_VIDEO]))
			rec_mset(rec, REC_VIDEO, RM_STOPPED, NULL,
				 "video dropped");
		break;
	default:
		break;
	}
}

static void mod_answer_h(int err, const struct sip_msg *msg,
			 const struct pl *sdp, void *arg)
{
	struct recording *rec = arg;
	const char *uri = rec->recorders[rec->cur];
	char why[REC_REASON_MAX];

	if (err || !msg) {
		re_snprintf(why, sizeof(why), err == ETIMEDOUT ?
			    "recorder %s did not answer the re-INVITE" :
			    "recorder %s unreachable", uri);
		rec_fail(rec, why);
		return;
	}
	if (msg->scode >= 300) {
		re_snprintf(why, sizeof(why), "recorder %s answered the "
			    "re-INVITE %u %r", uri, msg->scode, &msg->reason);
		if (msg->scode == 481 || msg->scode == 408)
			rec_fail(rec, why);
		else
			mod_drop(rec, why);
		return;
	}
	if (!sdp) {
		rec_fail(rec, "the recorder answered the re-INVITE without "
			 "SDP");
		return;
	}
	if (rec->mod == RMOD_VIDEO_ADD)
		rec_reject_reasons(rec, sdp, msg);
	err = ngsub_answer(rec->ms, &rec->ng, rec->callid, rec->to_tag, sdp,
			   mod_ans_resp, rec);
	if (err)
		rec_fail(rec, "cannot send subscribe answer to the media "
			 "server");
}

/* The re-INVITE for the change in rec->mod (rec->paused and rec->video
 * already say what is wanted). */
static int reinvite(struct recording *rec)
{
	int err;

	err = rec_body(rec, true);
	if (!err)
		err = srcsess_modify(rec->ss, rec->boundary, rec->body,
				     rec->timeout_ms, mod_answer_h);
	return err;
}

/* Can REC take a change now? 0 or the errno of the banner in rec.h. */
static int mod_check(const struct recording *rec)
{
	if (rec->state == REC_ENDED)
		return ESRCH;
	if (rec->state != REC_ACTIVE || rec->mod != RMOD_NONE || rec->ng ||
	    !rec->ss || !rec->offer)
		return EBUSY;
	return 0;
}

static int mod_start(struct recording *rec, enum rec_mod mod)
{
	bool paused = rec->paused, video = rec->video;
	int err;

	rec->mod = mod;
	err = reinvite(rec);
	if (err) {
		rec->mod = RMOD_NONE;
		rec->paused = paused;
		rec->video = video;
		log_warn("rec: [%s] cannot send the re-INVITE (%s): %s",
			 rec->id, rec_mod_name(mod), strerror(err));
		return err;
	}
	log_info("rec: [%s] %s", rec->id, rec_mod_name(mod));
	return 0;
}

int rec_pause(struct recording *rec)
{
	int err;

	if (!rec)
		return EINVAL;
	if ((err = mod_check(rec)))
		return err;
	if (rec->paused)
		return EALREADY;
	rec->paused = true;
	return mod_start(rec, RMOD_PAUSE);
}

int rec_resume(struct recording *rec)
{
	int err;

	if (!rec)
		return EINVAL;
	if ((err = mod_check(rec)))
		return err;
	if (!rec->paused)
		return EALREADY;
	rec->paused = false;
	return mod_start(rec, RMOD_RESUME);
}

/* The reply to "subscribe request" with flag add: the offer with the
 * video lines, then the re-INVITE. */
static void add_resp(int err, const struct benc_node *reply, void *arg)
{
	struct recording *rec = arg;
	struct ngsub_offer o;
	struct mbuf *mb;
	char why[REC_REASON_MAX];
	size_t i;
	bool video = false;

	rec->ng = mem_deref(rec->ng);
	err = ngsub_request_reply(err, reply, &o, why, sizeof(why));
	if (!err && (err = rec_streams_take(rec, o.streams, o.nstreams)))
		re_snprintf(why, sizeof(why), "media server: the added "
			    "streams do not fit the recording");
	if (err) {
		/* the subscription is as it was */
		mod_drop(rec, why);
		return;
	}
	for (i = 0; i < rec->nstreams; i++)
		if (!strcmp(rec->streams[i].type, "video"))
			video = true;
	if (!video) {
		mod_drop(rec, "the call has no video");
		return;
	}
	mb = mbuf_alloc(o.sdp.l + 1);
	if (!mb || mbuf_write_pl(mb, &o.sdp)) {
		mem_deref(mb);
		mod_drop(rec, "out of memory");
		return;
	}
	mem_deref(rec->offer);
	rec->offer = mb;
	rec->mst[REC_VIDEO] = RM_OFFERED;
	err = reinvite(rec);
	if (err) {
		re_snprintf(why, sizeof(why), "cannot send the re-INVITE: %s",
			    strerror(err));
		mod_drop(rec, why);
	}
}

int rec_media(struct recording *rec, bool video)
{
	const char *tags[2];
	struct ngsub_req_params p;
	int err;

	if (!rec)
		return EINVAL;
	if ((err = mod_check(rec)))
		return err;
	if (video == rec->video)
		return 0;
	if (!video) {
		rec->video = false;
		if (!rec_mlive(rec->mst[REC_VIDEO]))
			return 0;     /* rejected or failed: nothing to drop */
		return mod_start(rec, RMOD_VIDEO_DROP);
	}
	if (!rec->bc)
		return ESRCH;
	tags[0] = rec->bc->caller.tag;
	tags[1] = rec->bc->callee.tag;
	memset(&p, 0, sizeof(p));
	p.callid = rec->callid;
	p.from_tags = tags;
	p.ntags = 2;
	p.media = "audio+video";
	p.to_tag = rec->to_tag;
	err = ngsub_request(rec->ms, &rec->ng, &p, add_resp, rec);
	if (err)
		return err;
	rec->video = true;
	rec->mod = RMOD_VIDEO_ADD;
	rec->mst[REC_VIDEO] = RM_REQUESTED;
	log_info("rec: [%s] add video", rec->id);
	return 0;
}
