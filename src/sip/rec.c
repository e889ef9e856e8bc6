/*
 * rec.c: recordings (tally-sip as SRC): the object, its state per medium,
 * its events, and the steps from an API request to a running SIPREC
 * session. rec.h has the object graph, the signalling path with a worked
 * example and the per-medium state machine; srcsess.c the SIP dialog;
 * ngsub.c the ng requests.
 *
 * A recording ends in exactly one place, rec_end(): after a stop (API),
 * the call's end (the b2bua's end hook, recs_call_end), a failure, or the
 * recorder's BYE. rec_end() lets go of the pending ng step and the SIPREC
 * dialog, so no callback reaches an ended recording; the object stays in
 * recs.ended (the newest REC_ENDED_KEEP) for GET /api/v1/recordings/{id}.
 *
 * Failover: the recorders (the request's one, else the configured list)
 * are tried in order; a recorder that does not answer in timeout_ms, is
 * unreachable, or answers 408 or 5xx makes the next one be tried with the
 * same body; any other final answer, or the last recorder failing, is
 * .failed for every medium not yet ended.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include "log.h"
#include "sdp.h"
#include "multipart.h"
#include "rsmw.h"
#include "api.h"
#include "rec.h"

struct recs {
	struct sip *sip;              /* borrowed */
	struct recpolicy *policy;     /* the record key's rules */
	struct recprobe *probe;       /* OPTIONS health, NULL: off */
	struct b2bua *b2bua;          /* borrowed */
	char recorders[REC_MAX_RECORDERS][REC_URI_MAX];
	unsigned nrecorders;
	uint32_t timeout_ms;
	struct list active;           /* struct recording */
	struct list ended;            /* struct recording, oldest first */
	rec_event_h *eh;
	void *arg;
	uint64_t seq;
	/* counters */
	uint64_t n_started, n_failed, n_failover;
};

static const char *const medium_name[REC_NMEDIA] = {"audio", "video"};

const char *rec_mstate_name(enum rec_mstate st)
{
	switch (st) {
	case RM_NONE:      return "none";
	case RM_REQUESTED: return "requested";
	case RM_OFFERED:   return "offered";
	case RM_STARTED:   return "started";
	case RM_PAUSED:    return "paused";
	case RM_REJECTED:  return "rejected";
	case RM_STOPPED:   return "stopped";
	case RM_FAILED:    return "failed";
	}
	return "?";
}

const char *rec_state_name(enum rec_state st)
{
	switch (st) {
	case REC_SUBSCRIBING: return "subscribing";
	case REC_INVITING:    return "inviting";
	case REC_ANSWERING:   return "answering";
	case REC_ACTIVE:      return "active";
	case REC_ENDED:       return "ended";
	}
	return "?";
}

bool rec_uri_valid(const char *uri)
{
	struct pl pl;
	struct uri u;
	size_t i, n;

	if (!uri)
		return false;
	n = strlen(uri);
	if (n < 5 || n >= REC_URI_MAX || strncasecmp(uri, "sip:", 4))
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)uri[i];
		if (c <= ' ' || c >= 0x7f || c == '<' || c == '>' ||
		    c == '"' || c == ',' || c == '?')
			return false;
	}
	pl_set_str(&pl, uri);
	return uri_decode(&u, &pl) == 0 && u.host.l > 0;
}

/* ---- events and endings ---- */

/* Medium M of REC goes to ST; an event "recording.<medium>.<EVENT>" (NULL:
 * the state's name) for every state but requested and offered. */
void rec_mset(struct recording *rec, enum rec_medium m, enum rec_mstate st,
	      const char *event, const char *reason)
{
	char type[48];

	rec->mst[m] = st;
	str_ncpy(rec->mreason[m], reason ? reason : "",
		 sizeof(rec->mreason[m]));
	if (st == RM_NONE || st == RM_REQUESTED || st == RM_OFFERED)
		return;
	if (!event)
		event = rec_mstate_name(st);
	log_info("rec: [%s] call %s: %s %s%s%s", rec->id, rec->call,
		 medium_name[m], event, reason ? ": " : "",
		 reason ? reason : "");
	re_snprintf(type, sizeof(type), "recording.%s.%s", medium_name[m],
		    event);
	if (rec->recs->eh)
		rec->recs->eh(type, rec, m, reason, rec->recs->arg);
}

static void mset(struct recording *rec, enum rec_medium m,
		 enum rec_mstate st, const char *reason)
{
	rec_mset(rec, m, st, NULL, reason);
}

bool rec_mlive(enum rec_mstate st)
{
	return st == RM_REQUESTED || st == RM_OFFERED || st == RM_STARTED ||
	       st == RM_PAUSED;
}


/* Every medium still live gets .failed with REASON, audio first. */
static void fail_all(struct recording *rec, const char *reason)
{
	int m;

	for (m = 0; m < REC_NMEDIA; m++)
		if (rec_mlive(rec->mst[m]))
			mset(rec, m, RM_FAILED, reason);
}

const char *rec_party_name(enum rec_party party)
{
	return party == REC_CALLER ? "caller" : party == REC_CALLEE ?
		"callee" : "both";
}

static void rec_destructor(void *arg)
{
	struct recording *rec = arg;

	if (rec->twin)
		rec->twin->twin = NULL;
	list_unlink(&rec->le);
	mem_deref(rec->ng);
	mem_deref(rec->ss);
	mem_deref(rec->body);
	mem_deref(rec->offer);
	mem_deref(rec->doc);
}

/* The one place a recording ends (see the banner). */
static void rec_end(struct recording *rec, const char *reason)
{
	struct recs *rs = rec->recs;

	if (rec->state == REC_ENDED)
		return;
	if (rec->to_tag[0] && rec->ms)
		(void)ngsub_unsubscribe(rec->ms, rec->callid, rec->to_tag);
	rec->state = REC_ENDED;
	rec->ended = sipd_now_ms();
	str_ncpy(rec->reason, reason, sizeof(rec->reason));
	rec->ng = mem_deref(rec->ng);
	rec->ss = mem_deref(rec->ss);
	rec->body = mem_deref(rec->body);
	rec->offer = mem_deref(rec->offer);
	rec->doc = mem_deref(rec->doc);
	rec->mod = RMOD_NONE;
	rec->bc = NULL;
	log_info("rec: [%s] recording of call %s ended: %s", rec->id,
		 rec->call, reason);
	list_unlink(&rec->le);
	list_append(&rs->ended, &rec->le, rec);
	while (list_count(&rs->ended) > REC_ENDED_KEEP)
		mem_deref(list_head(&rs->ended)->data);
}

void rec_fail(struct recording *rec, const char *reason)
{
	++rec->recs->n_failed;
	srcsess_bye(rec->ss, reason);
	fail_all(rec, reason);
	rec_end(rec, reason);
}

/* ---- the recorder's answer, the media server's answer ---- */

static bool stream_accepted(const struct ngsub_result *r, unsigned label)
{
	size_t i;

	for (i = 0; i < r->naccepted; i++)
		if (r->accepted[i] == label)
			return true;
	return false;
}


static void ans_resp(int err, const struct benc_node *reply, void *arg)
{
	struct recording *rec = arg;
	struct ngsub_result r;
	char why[REC_REASON_MAX];
	bool any[REC_NMEDIA] = {false, false};
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

		s->st = stream_accepted(&r, s->label) ? RS_ACCEPTED :
			RS_REJECTED;
		if (s->st == RS_ACCEPTED)
			any[strcmp(s->type, "video") ? REC_AUDIO : REC_VIDEO] =
				true;
	}
	rec->state = REC_ACTIVE;
	for (m = 0; m < REC_NMEDIA; m++) {
		if (rec->mst[m] != RM_OFFERED)
			continue;
		if (any[m]) {
			mset(rec, m, RM_STARTED, NULL);
		}
		else {
			char reason[REC_REASON_MAX];
			str_ncpy(reason, rec->mreason[m], sizeof(reason));
			mset(rec, m, RM_REJECTED, reason[0] ? reason :
			     "the recorder answered port 0");
		}
	}
	if (rec->mst[REC_AUDIO] != RM_STARTED &&
	    rec->mst[REC_VIDEO] != RM_STARTED) {
		srcsess_bye(rec->ss, "nothing to record");
		rec_end(rec, "the recorder refused every stream");
		return;
	}
	++rec->recs->n_started;
}

/* Why the recorder refused the port-0 m= lines of medium M: the line's
 * i= (media title) if it has one, else MSG's Reason or Warning text. */
void rec_reject_reasons(struct recording *rec, const struct pl *sdp,
			const struct sip_msg *msg)
{
	const struct sip_hdr *h;
	struct msdp *d = NULL;
	const char *why;
	char hdrtext[REC_REASON_MAX] = "";
	size_t i, j;

	h = sip_msg_xhdr(msg, "Reason");
	if (!h)
		h = sip_msg_hdr(msg, SIP_HDR_WARNING);
	if (h)
		re_snprintf(hdrtext, sizeof(hdrtext), "recorder: %r", &h->val);
	for (i = 0; i < REC_NMEDIA; i++)
		str_ncpy(rec->mreason[i], hdrtext, sizeof(rec->mreason[i]));
	if (msdp_parse(&d, sdp, &why))
		return;
	for (i = 0; i < d->nmedia; i++) {
		const struct msdp_media *mm = &d->media[i];
		int m = mm->kind == MSDP_VIDEO ? REC_VIDEO : REC_AUDIO;

		if (mm->port)
			continue;
		for (j = mm->line_first + 1;
		     j < mm->line_first + mm->line_count; j++) {
			const struct pl *l = &d->lines[j];
			if (l->l > 2 && !memcmp(l->p, "i=", 2)) {
				re_snprintf(rec->mreason[m],
					    sizeof(rec->mreason[m]),
					    "recorder: %b", l->p + 2,
					    l->l - 2);
				break;
			}
		}
	}
	mem_deref(d);
}

static int try_recorder(struct recording *rec);

static void answer_h(int err, const struct sip_msg *msg, const struct pl *sdp,
		     void *arg)
{
	struct recording *rec = arg;
	const char *uri = rec->recorders[rec->cur];
	char why[REC_REASON_MAX];
	bool next = false;

	if (err || !msg || msg->scode >= 300) {
		if (err == ETIMEDOUT)
			re_snprintf(why, sizeof(why), "recorder %s did not "
				    "answer", uri);
		else if (err)
			re_snprintf(why, sizeof(why), "recorder %s "
				    "unreachable: %s", uri, strerror(err));
		else
			re_snprintf(why, sizeof(why), "recorder %s answered "
				    "%u %r", uri, msg->scode, &msg->reason);
		next = err || msg->scode == 408 || msg->scode >= 500;
		if (next)
			recprobe_failed(rec->recs->probe, uri, err, msg);
		rec->ss = mem_deref(rec->ss);
		if (next && rec->cur + 1 < rec->nrecorders) {
			log_info("rec: [%s] %s: trying the next recorder",
				 rec->id, why);
			++rec->recs->n_failover;
			++rec->cur;
			if (!try_recorder(rec))
				return;
		}
		rec_fail(rec, why);
		return;
	}
	rec->answered = sipd_now_ms();
	if (!sdp) {
		rec_fail(rec, "the recorder answered without SDP");
		return;
	}
	rec_reject_reasons(rec, sdp, msg);
	rec->state = REC_ANSWERING;
	err = ngsub_answer(rec->ms, &rec->ng, rec->callid, rec->to_tag, sdp,
			   ans_resp, rec);
	if (err)
		rec_fail(rec, "cannot send subscribe answer to the media "
			 "server");
}

static void close_h(const char *reason, void *arg)
{
	struct recording *rec = arg;

	++rec->recs->n_failed;
	fail_all(rec, reason);
	rec_end(rec, reason);
}

/* INVITE the recorder rec->cur, or the ones after it if it cannot even
 * be tried. 0, or an errno once none is left (the caller fails REC). */
static int try_recorder(struct recording *rec)
{
	struct srcsess_params p = {rec->recs->sip, NULL, rec->boundary,
				   rec->body, rec->recs->timeout_ms, rec->id};
	int err = ENOENT;
	unsigned i;

	/* pass over recorders the health checks say are down, unless all
	 * that are left are (recprobe.c) */
	for (i = rec->cur; i < rec->nrecorders; i++)
		if (!recprobe_down(rec->recs->probe, rec->recorders[i]))
			break;
	if (i < rec->nrecorders && i > rec->cur) {
		log_info("rec: [%s] passing over %u recorder(s) found down",
			 rec->id, i - rec->cur);
		rec->cur = i;
	}
	for (; rec->cur < rec->nrecorders; rec->cur++) {
		p.uri = rec->recorders[rec->cur];
		err = srcsess_connect(&rec->ss, &p, answer_h, close_h, rec);
		if (!err) {
			rec->state = REC_INVITING;
			str_ncpy(rec->siprec_callid, srcsess_callid(rec->ss),
				 sizeof(rec->siprec_callid));
			return 0;
		}
		log_warn("rec: [%s] cannot INVITE %s: %s", rec->id, p.uri,
			 strerror(err));
	}
	rec->cur = rec->nrecorders ? rec->nrecorders - 1 : 0;
	return err;
}

/* ---- the media server's offer ---- */

/*
 * Take the streams of a subscribe reply into REC: every label not known
 * yet is appended (a flag-add reply repeats the old ones first), the
 * party of each from its from-tag. 0, EPROTO (a stream of neither
 * party), E2BIG.
 */
int rec_streams_take(struct recording *rec, const struct rec_stream *st,
		     size_t n)
{
	size_t i, j;

	if (!rec->bc)
		return EPROTO;
	for (i = 0; i < n; i++) {
		struct rec_stream s = st[i];

		s.caller = !strcmp(s.from_tag, rec->bc->caller.tag);
		if (!s.caller && strcmp(s.from_tag, rec->bc->callee.tag))
			return EPROTO;
		for (j = 0; j < rec->nstreams; j++)
			if (rec->streams[j].label == s.label)
				break;
		if (j < rec->nstreams)
			continue;
		if (rec->nstreams >= REC_MAX_STREAMS)
			return E2BIG;
		s.st = RS_OFFERED;
		rec->streams[rec->nstreams++] = s;
	}
	return 0;
}

/* Keep the media server's offer SDP for the re-INVITEs. */
static int offer_keep(struct recording *rec, const struct pl *sdp)
{
	struct mbuf *mb = mbuf_alloc(sdp->l + 1);

	if (!mb || mbuf_write_pl(mb, sdp)) {
		mem_deref(mb);
		return ENOMEM;
	}
	mem_deref(rec->offer);
	rec->offer = mb;
	return 0;
}

static void sub_resp(int err, const struct benc_node *reply, void *arg)
{
	struct recording *rec = arg;
	struct ngsub_offer o;
	char why[REC_REASON_MAX];
	unsigned n[REC_NMEDIA] = {0, 0};
	size_t i;
	int m;

	rec->ng = mem_deref(rec->ng);
	err = ngsub_request_reply(err, reply, &o, why, sizeof(why));
	if (err) {
		rec_fail(rec, why);
		return;
	}
	/* from here on the subscription exists: rec_end unsubscribes */
	(void)pl_strcpy(&o.to_tag, rec->to_tag, sizeof(rec->to_tag));
	if (!rec->bc) {
		rec_fail(rec, "the call ended");
		return;
	}
	if (rec_streams_take(rec, o.streams, o.nstreams)) {
		rec_fail(rec, "media server: a stream of an unknown party");
		return;
	}
	for (i = 0; i < rec->nstreams; i++)
		++n[strcmp(rec->streams[i].type, "video") ? REC_AUDIO :
		    REC_VIDEO];
	for (m = 0; m < REC_NMEDIA; m++) {
		if (rec->mst[m] != RM_REQUESTED)
			continue;
		if (n[m])
			rec->mst[m] = RM_OFFERED;
		else
			mset(rec, m, RM_FAILED, m == REC_VIDEO ?
			     "the call has no video" : "the call has no audio");
	}
	if (offer_keep(rec, &o.sdp) || rec_body(rec, false)) {
		rec_fail(rec, "cannot write the SIPREC body");
		return;
	}
	if (try_recorder(rec)) {
		char w[REC_REASON_MAX];
		re_snprintf(w, sizeof(w), "cannot send the INVITE to %s",
			    rec->recorders[rec->cur]);
		rec_fail(rec, w);
	}
}

/* ---- the API side ---- */

/* A new recording of CALL's PARTY (one session), its subscribe request
 * on the way. 0 and *RECP (in rs->active), or an errno. */
static int rec_new(struct recs *rs, struct bcall *call,
		   const struct rec_req *req, enum rec_party party,
		   struct recording **recp)
{
	const char *tags[2];
	struct ngsub_req_params p;
	struct recording *rec;
	unsigned i;
	int err;

	rec = mem_zalloc(sizeof(*rec), rec_destructor);
	if (!rec)
		return ENOMEM;
	rec->recs = rs;
	rec->bc = call;
	rec->ms = bcall_mediasrv(call);
	rec->video = req->video;
	rec->party = party;
	rec->timeout_ms = rs->timeout_ms;
	rec->created = sipd_now_ms();
	re_snprintf(rec->id, sizeof(rec->id), "r%llu-%llx",
		    (unsigned long long)++rs->seq,
		    (unsigned long long)(rand_u64() & 0xffffff));
	str_ncpy(rec->call, call->id, sizeof(rec->call));
	str_ncpy(rec->callid, call->callid, sizeof(rec->callid));
	rec->mst[REC_AUDIO] = RM_REQUESTED;
	rec->mst[REC_VIDEO] = req->video ? RM_REQUESTED : RM_NONE;
	if (req->recorder) {
		str_ncpy(rec->recorders[0], req->recorder, REC_URI_MAX);
		rec->nrecorders = 1;
	}
	else {
		for (i = 0; i < rs->nrecorders; i++)
			str_ncpy(rec->recorders[i], rs->recorders[i],
				 REC_URI_MAX);
		rec->nrecorders = rs->nrecorders;
	}

	memset(&p, 0, sizeof(p));
	p.ntags = 0;
	if (party != REC_CALLEE)
		tags[p.ntags++] = call->caller.tag;
	if (party != REC_CALLER)
		tags[p.ntags++] = call->callee.tag;
	p.from_tags = tags;
	p.callid = call->callid;
	p.media = req->video ? "audio+video" : "audio";
	err = ngsub_request(rec->ms, &rec->ng, &p, sub_resp, rec);
	if (err) {
		mem_deref(rec);
		return err;
	}
	list_append(&rs->active, &rec->le, rec);
	log_info("rec: [%s] recording call %s (%s, %s) to %s%s", rec->id,
		 rec->call, p.media, rec_party_name(party), rec->recorders[0],
		 rec->nrecorders > 1 ? " (and failover)" : "");
	*recp = rec;
	return 0;
}

int rec_start(struct recs *rs, struct bcall *call, const struct rec_req *req,
	      struct recording **recp)
{
	struct recording *rec, *rec2;
	int err;

	if (!rs || !call || !req || !recp)
		return EINVAL;
	if ((rec = recs_find_call(rs, call->id))) {
		*recp = rec;
		return EEXIST;
	}
	if (req->recorder && !rec_uri_valid(req->recorder))
		return EINVAL;
	if (!req->recorder && !rs->nrecorders)
		return ENOENT;
	if (call->state != BCALL_ANSWERED || !bcall_mediasrv(call))
		return EAGAIN;
	err = rec_new(rs, call, req, req->per_party ? REC_CALLER : REC_BOTH,
		      &rec);
	if (err)
		return err;
	if (req->per_party) {
		err = rec_new(rs, call, req, REC_CALLEE, &rec2);
		if (err) {
			/* nothing was reported yet: no events */
			mem_deref(rec);
			return err;
		}
		rec->twin = rec2;
		rec2->twin = rec;
	}
	*recp = rec;
	return 0;
}

/*
 * Stop REC: BYE to the recorder (an unanswered INVITE is CANCELled), ng
 * unsubscribe, .stopped for every medium still live (REASON with those
 * not started yet). REC stays findable among the ended ones.
 */
void rec_stop(struct recording *rec, const char *reason)
{
	char why[REC_REASON_MAX];
	int m;

	if (!rec || rec->state == REC_ENDED)
		return;
	srcsess_bye(rec->ss, reason);
	for (m = 0; m < REC_NMEDIA; m++) {
		if (rec->mst[m] == RM_STARTED || rec->mst[m] == RM_PAUSED) {
			mset(rec, m, RM_STOPPED, reason);
		}
		else if (rec_mlive(rec->mst[m])) {
			re_snprintf(why, sizeof(why), "%s before the recorder "
				    "answered", reason);
			mset(rec, m, RM_STOPPED, why);
		}
	}
	rec_end(rec, reason);
}

struct recording *recs_find(const struct recs *rs, const char *id)
{
	const struct list *lists[2];
	struct le *le;
	int i;

	if (!rs || !id)
		return NULL;
	lists[0] = &rs->active;
	lists[1] = &rs->ended;
	for (i = 0; i < 2; i++)
		LIST_FOREACH(lists[i], le) {
			struct recording *rec = le->data;
			if (!strcmp(rec->id, id))
				return rec;
		}
	return NULL;
}

/* The active recording of tally call CALL, or NULL. */
struct recording *recs_find_call(const struct recs *rs, const char *call)
{
	struct le *le;

	if (!rs || !call)
		return NULL;
	LIST_FOREACH(&rs->active, le) {
		struct recording *rec = le->data;
		if (!strcmp(rec->call, call))
			return rec;
	}
	return NULL;
}

const struct list *recs_active(const struct recs *rs)
{
	return rs ? &rs->active : NULL;
}

void recs_call_end(struct bcall *call, void *arg)
{
	struct recs *rs = arg;
	struct le *le;

	if (!rs || !call)
		return;
	for (le = list_head(&rs->active); le;) {
		struct recording *rec = le->data;

		le = le->next;
		if (rec->bc == call)
			rec_stop(rec, "call ended");
	}
}

/* The b2bua's answer hook: the first record rule matching CALL starts
 * its recording, as POST /api/v1/recordings would. */
void recs_call_answered(struct bcall *call, void *arg)
{
	struct recs *rs = arg;
	struct recording *rec;
	struct rec_req req;
	int err;

	if (!rs || !call || !recpolicy_match(rs->policy, call, &req))
		return;
	err = rec_start(rs, call, &req, &rec);
	if (err && err != EEXIST)
		log_warn("rec: call %s: the record policy cannot start its "
			 "recording: %s", call->id, strerror(err));
	else if (!err)
		log_info("rec: [%s] call %s recorded by policy (%s%s)",
			 rec->id, call->id, req.video ? "audio+video" :
			 "audio", req.per_party ? ", per party" : "");
}

bool recs_request(struct recs *rs, const struct sip_msg *msg)
{
	struct le *le;

	if (!rs || !pl_isset(&msg->to.tag))
		return false;
	LIST_FOREACH(&rs->active, le) {
		struct recording *rec = le->data;

		if (rec->ss && srcsess_match(rec->ss, msg)) {
			srcsess_request(rec->ss, msg);
			return true;
		}
	}
	return false;
}

bool recs_response(struct recs *rs, const struct sip_msg *msg)
{
	struct le *le;

	if (!rs)
		return false;
	LIST_FOREACH(&rs->active, le) {
		struct recording *rec = le->data;

		if (rec->ss && !pl_strcmp(&msg->callid,
					   srcsess_callid(rec->ss))) {
			srcsess_response(rec->ss, msg);
			return true;
		}
	}
	return false;
}

/* ---- JSON ---- */

static int medium_json(struct re_printf *pf, const struct recording *rec,
		       enum rec_medium m)
{
	size_t i;
	int err;
	bool first = true;

	if (rec->mst[m] == RM_NONE)
		return re_hprintf(pf, "null");
	err = re_hprintf(pf, "{\"state\":\"%s\",\"reason\":%H,\"labels\":[",
			 rec_mstate_name(rec->mst[m]), api_jstr,
			 rec->mreason[m][0] ? rec->mreason[m] : NULL);
	for (i = 0; i < rec->nstreams; i++) {
		bool v = !strcmp(rec->streams[i].type, "video");
		if (v != (m == REC_VIDEO))
			continue;
		err |= re_hprintf(pf, "%s%u", first ? "" : ",",
				  rec->streams[i].label);
		first = false;
	}
	return err | re_hprintf(pf, "]}");
}

static int streams_json(struct re_printf *pf, const struct recording *rec)
{
	static const char *const sts[] = {"offered", "accepted", "rejected"};
	size_t i;
	int err = re_hprintf(pf, "[");

	for (i = 0; i < rec->nstreams; i++) {
		const struct rec_stream *s = &rec->streams[i];
		err |= re_hprintf(pf, "%s{\"label\":%u,\"party\":\"%s\","
				  "\"from_tag\":%H,\"type\":%H,\"index\":%u,"
				  "\"state\":\"%s\"}", i ? "," : "", s->label,
				  s->caller ? "caller" : "callee", api_jstr,
				  s->from_tag, api_jstr, s->type, s->index,
				  sts[s->st]);
	}
	return err | re_hprintf(pf, "]");
}

/*
 * The JSON of REC, e.g.
 *   {"id":"r1-9f3a2c","call":"c1-3f2a1b","call_id":"...","state":"active",
 *    "media":"audio+video","mode":"both","party":"both","twin":null,
 *    "recorder":"sip:srs@127.0.0.1:5090",
 *    "siprec_call_id":"...","media_server":"127.0.0.1:2223",
 *    "to_tag":"tally-sub-...","audio":{"state":"started","reason":null,
 *    "labels":[1,3]},"video":{"state":"rejected","reason":"...",
 *    "labels":[2,4]},"streams":[...],"paused":false,"change":null,
 *    "change_error":null,"created":"...","answered":"...",
 *    "ended":null,"reason":null}
 * "change" is the change in flight ("pause", "resume", "add video", "drop
 * video"), "change_error" why the last one was refused.
 */
int rec_json(struct re_printf *pf, const struct recording *rec)
{
	int err;

	err = re_hprintf(pf, "{\"id\":%H,\"call\":%H,\"call_id\":%H,"
			 "\"state\":\"%s\",\"media\":\"%s\",\"mode\":\"%s\","
			 "\"party\":\"%s\",\"twin\":%H,\"recorder\":%H,"
			 "\"siprec_call_id\":%H,\"media_server\":%H,"
			 "\"to_tag\":%H,",
			 api_jstr, rec->id, api_jstr, rec->call, api_jstr,
			 rec->callid, rec_state_name(rec->state),
			 rec->video ? "audio+video" : "audio",
			 rec->party == REC_BOTH ? "both" : "per-party",
			 rec_party_name(rec->party), api_jstr,
			 rec->twin ? rec->twin->id : NULL,
			 api_jstr, rec->recorders[rec->cur],
			 api_jstr, rec->siprec_callid[0] ?
			 rec->siprec_callid : NULL,
			 api_jstr, mediasrv_name(rec->ms),
			 api_jstr, rec->to_tag[0] ? rec->to_tag : NULL);
	err |= re_hprintf(pf, "\"audio\":");
	err |= medium_json(pf, rec, REC_AUDIO);
	err |= re_hprintf(pf, ",\"video\":");
	err |= medium_json(pf, rec, REC_VIDEO);
	err |= re_hprintf(pf, ",\"streams\":");
	err |= streams_json(pf, rec);
	err |= re_hprintf(pf, ",\"paused\":%s,\"change\":%H,"
			  "\"change_error\":%H", rec->paused ? "true" : "false",
			  api_jstr, rec_mod_name(rec->mod), api_jstr,
			  rec->moderr[0] ? rec->moderr : NULL);
	err |= re_hprintf(pf, ",\"created\":%H,\"answered\":%H,\"ended\":%H,"
			  "\"reason\":%H}", api_jtime, &rec->created,
			  api_jtime, &rec->answered, api_jtime, &rec->ended,
			  api_jstr, rec->reason[0] ? rec->reason : NULL);
	return err;
}

/* ---- lifetime ---- */

void recs_events(struct recs *rs, rec_event_h *eh, void *arg)
{
	if (!rs)
		return;
	rs->eh = eh;
	rs->arg = arg;
}

/* End every active recording ("shutdown"), events included: call it while
 * the SIP stack, the media pool and the event sink are still there. */
void recs_shutdown(struct recs *rs)
{
	struct le *le;

	if (!rs)
		return;
	while ((le = list_head(&rs->active)))
		rec_stop(le->data, "shutdown");
}

static void recs_destructor(void *arg)
{
	struct recs *rs = arg;

	/* a destructor reports nothing (its event sink may be gone) */
	rs->eh = NULL;
	recs_shutdown(rs);
	list_flush(&rs->ended);
	mem_deref(rs->policy);
	mem_deref(rs->probe);
}

static int recorders_parse(struct recs *rs, const char *list)
{
	struct pl rest, item;

	pl_set_str(&rest, list ? list : "");
	while (sipd_list_next(&rest, &item)) {
		if (rs->nrecorders >= REC_MAX_RECORDERS ||
		    item.l >= REC_URI_MAX)
			return E2BIG;
		(void)pl_strcpy(&item, rs->recorders[rs->nrecorders],
				REC_URI_MAX);
		if (!rec_uri_valid(rs->recorders[rs->nrecorders])) {
			log_err("rec: bad recorder URI '%s' (sip:user@host"
				"[:port][;transport=udp|tcp])",
				rs->recorders[rs->nrecorders]);
			return EINVAL;
		}
		++rs->nrecorders;
	}
	return 0;
}

/*
 * recs_alloc: the recordings of this process. P->sip and P->b2bua are
 * borrowed and must outlive the recs (main.c frees recs first).
 * Returns 0 and *RSP (the caller's), EINVAL (a bad recorder URI, logged),
 * E2BIG (more than REC_MAX_RECORDERS), ENOMEM.
 */
int recs_alloc(struct recs **rsp, const struct recs_params *p)
{
	struct recs *rs;
	int err;

	if (!rsp || !p || !p->sip)
		return EINVAL;
	rs = mem_zalloc(sizeof(*rs), recs_destructor);
	if (!rs)
		return ENOMEM;
	rs->sip = p->sip;
	rs->b2bua = p->b2bua;
	rs->timeout_ms = p->timeout_ms;
	list_init(&rs->active);
	list_init(&rs->ended);
	err = recorders_parse(rs, p->recorders);
	if (!err)
		err = recpolicy_alloc(&rs->policy, p->record);
	if (!err && recpolicy_count(rs->policy) && !rs->nrecorders) {
		log_err("record: a record policy needs recorders");
		err = EINVAL;
	}
	if (!err && p->probe_ms && rs->nrecorders)
		err = recprobe_alloc(&rs->probe, rs->sip,
				     (const char (*)[REC_URI_MAX])rs->recorders,
				     rs->nrecorders, p->probe_ms,
				     p->timeout_ms);
	if (err) {
		mem_deref(rs);
		return err;
	}
	*rsp = rs;
	return 0;
}
