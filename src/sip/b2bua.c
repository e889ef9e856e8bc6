/*
 * b2bua.c: the call registry and a call's end.
 *
 * A call (struct bcall_priv, with its public view struct bcall) lives from
 * the caller's INVITE until bcall_end(): whatever ends it (either party's
 * BYE, a rejection, CANCEL, the no-answer or session timer, a missing ACK,
 * a media server failure) goes through bcall_end(), which closes what is
 * still open on each leg, deletes the media session, emits call.ended with
 * the cause, and frees the call. Nothing else frees a call.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include "log.h"
#include "b2bua.h"
#include "rec.h"

uint64_t sipd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *bcall_state_name(enum bcall_state st)
{
	switch (st) {
	case BCALL_INIT:     return "init";
	case BCALL_CALLING:  return "calling";
	case BCALL_EARLY:    return "early";
	case BCALL_ANSWERED: return "answered";
	case BCALL_ENDED:    return "ended";
	}
	return "?";
}

const struct list *b2bua_calls(const struct b2bua *b)
{
	return b ? &b->calls : NULL;
}

struct bcall *b2bua_call_find(const struct b2bua *b, const char *id)
{
	struct le *le;

	for (le = list_head(&b->calls); le; le = le->next) {
		struct bcall *c = le->data;
		if (!strcmp(c->id, id))
			return c;
	}
	return NULL;
}

void bcall_event(struct bcall_priv *cp, const char *type)
{
	if (cp->b->eventh)
		cp->b->eventh(type, cp->pub, cp->b->arg);
	if (cp->b->answerh && !strcmp(type, "call.answered"))
		cp->b->answerh(cp->pub, cp->b->answerarg);
}

static bool leg_cmp(struct le *le, void *arg)
{
	const struct bleg *leg = le->data;
	const struct sip_msg *msg = arg;

	if (!leg->dlg || (!leg->uas && !sip_dialog_established(leg->dlg)))
		return false;
	return sip_dialog_cmp(leg->dlg, msg);
}

struct bleg *b2bua_leg_find(struct b2bua *b, const struct sip_msg *msg)
{
	return list_ledata(hash_lookup(b->legs, hash_joaat_pl(&msg->callid),
				       leg_cmp, (void *)msg));
}

static bool callee_leg_cmp(struct le *le, void *arg)
{
	const struct bleg *leg = le->data;
	const struct sip_msg *msg = arg;

	return !leg->uas && leg->dlg &&
		!pl_strcmp(&msg->callid, sip_dialog_callid(leg->dlg));
}

/* A response no client transaction took (libre's listener for those): a
 * 2xx to a callee leg's INVITE, retransmitted after libre ended the
 * transaction or sent by another UA behind a forking proxy (RFC 3261
 * 13.2.2.4). true: it was one of ours. */
bool b2bua_response(struct b2bua *b, const struct sip_msg *msg);
bool b2bua_response(struct b2bua *b, const struct sip_msg *msg)
{
	struct bleg *leg;

	if (msg->scode < 200 || msg->scode >= 300 ||
	    pl_strcmp(&msg->cseq.met, "INVITE"))
		return false;
	leg = list_ledata(hash_lookup(b->legs, hash_joaat_pl(&msg->callid),
				      callee_leg_cmp, (void *)msg));
	if (!leg || !leg->cp)
		return false;
	invite_stray_2xx(leg->cp, msg);
	return true;
}

void b2bua_leg_index(struct b2bua *b, struct bleg *leg, const char *callid)
{
	hash_unlink(&leg->he);
	hash_append(b->legs, hash_joaat_str(callid), &leg->he, leg);
}

static void bye_resp(int err, const struct sip_msg *msg, void *arg)
{
	(void)err; (void)msg; (void)arg;
}

static void send_bye(struct b2bua *b, struct bleg *leg, const char *reason)
{
	enum sip_transp tp = leg->tp;

	/* an early dialog (18x only) is ended by CANCEL or the final
	 * response, never by BYE (RFC 3261 15) */
	if (leg->gone || !leg->confirmed || !leg->dlg ||
	    !sip_dialog_established(leg->dlg))
		return;
	(void)sip_drequestf(NULL, b->sip, true, "BYE", leg->dlg, 0, NULL,
			    NULL, bye_resp, NULL,
			    "%H"
			    "Reason: SIP;cause=200;text=\"%s\"\r\n"
			    "Content-Length: 0\r\n\r\n",
			    sipmsg_contact, &tp, reason);
}

static void priv_destructor(void *arg)
{
	struct bcall_priv *cp = arg;

	tmr_cancel(&cp->tmr_noanswer);
	tmr_cancel(&cp->tmr_session);
	list_flush(&cp->xfers);
	list_flush(&cp->pending);
	mem_deref(cp->ng);
	mem_deref(cp->late_answer);
	mem_deref(cp->inv_out);
	mem_deref(cp->inv_st);
	mem_deref((void *)cp->inv);
	bleg_reset(&cp->a);
	bleg_reset(&cp->b_);
	if (cp->pub) {
		list_unlink(&cp->pub->le);
		cp->pub->priv = NULL;
		mem_deref(cp->pub);
	}
}

int bcall_alloc(struct bcall_priv **cpp, struct b2bua *b)
{
	struct bcall_priv *cp;

	cp = mem_zalloc(sizeof(*cp), priv_destructor);
	if (!cp)
		return ENOMEM;
	cp->pub = mem_zalloc(sizeof(*cp->pub), NULL);
	if (!cp->pub) {
		mem_deref(cp);
		return ENOMEM;
	}
	cp->b = b;
	cp->a.cp = cp;
	cp->a.uas = true;
	cp->b_.cp = cp;
	tmr_init(&cp->tmr_noanswer);
	tmr_init(&cp->tmr_session);
	cp->pub->priv = cp;
	cp->pub->created = sipd_now_ms();
	snprintf(cp->pub->id, sizeof(cp->pub->id), "c%llu-%llx",
		 (unsigned long long)++b->seq,
		 (unsigned long long)(rand_u64() & 0xffffff));
	list_append(&b->calls, &cp->pub->le, cp->pub);
	++b->n_calls;
	*cpp = cp;
	return 0;
}

void bcall_end(struct bcall_priv *cp, const char *cause)
{
	struct b2bua *b = cp->b;

	if (cp->ending)
		return;
	cp->ending = true;

	/* recordings of the call end first (BYE to the recorder, ng
	 * unsubscribe, .stopped events) while its media still exists */
	if (b->endh)
		b->endh(cp->pub, b->endarg);

	/* requests crossing the call (INFO, re-INVITE, ...) get 487 and
	 * let go of what they sent to the other leg: no late answer can
	 * reach them after this */
	indialog_end(cp);

	/* caller leg: a final answer if it never got one, else BYE */
	if (cp->inv_st) {
		struct reply_params rp = {cp->pub->final_status ?
					  cp->pub->final_status : 500,
					  "Call Ended", NULL, NULL, NULL};
		if (!cp->pub->final_status)
			cp->pub->final_status = rp.scode;
		(void)sipmsg_reply(b, &cp->inv_st, cp->inv, &rp);
	}
	else {
		send_bye(b, &cp->a, cause);
	}

	/* callee leg: CANCEL while ringing, BYE once answered */
	invite_late_abort(cp);
	/* letting go of a pending INVITE makes libre CANCEL it (once a
	 * provisional response arrived) and absorb the 487 on its own */
	cp->inv_out = mem_deref(cp->inv_out);
	send_bye(b, &cp->b_, cause);

	if (cp->media_created && cp->ms)
		(void)mediasrv_delete(cp->ms, cp->pub->callid);
	if (cp->ms)
		mediasrv_calls_add(cp->ms, -1);

	cp->pub->state = BCALL_ENDED;
	cp->pub->ended = sipd_now_ms();
	snprintf(cp->pub->cause, sizeof(cp->pub->cause), "%s", cause);
	if (!cp->pub->answered)
		++b->n_failed;
	log_info("b2bua: [%s] call %s ended: %s", cp->pub->callid, cp->pub->id,
		 cause);
	bcall_event(cp, "call.ended");
	mem_deref(cp);
}

/*
 * b2bua_shutdown: end every call (cause "shutdown"): each leg gets its BYE,
 * CANCEL or final answer, the media server its delete, and the event
 * handler its call.ended. Call it while everything a call's end reaches is
 * still there (SIP stack, media pool, the API the events go to): main.c
 * does, first thing in stop(). The b2bua stays usable.
 */
void b2bua_shutdown(struct b2bua *b)
{
	struct le *le;

	if (!b)
		return;
	while ((le = list_head(&b->calls))) {
		struct bcall *c = le->data;
		bcall_end(c->priv, "shutdown");
	}
}

/*
 * b2bua_events: send call events to EH(type, call, ARG) from now on; NULL
 * stops them. ARG is borrowed: set NULL before whatever it points to goes.
 */
void b2bua_events(struct b2bua *b, bcall_event_h *eh, void *arg)
{
	b->eventh = eh;
	b->arg = arg;
}

/* The media server CALL is anchored on (borrowed), or NULL. */
struct mediasrv *bcall_mediasrv(const struct bcall *call)
{
	const struct bcall_priv *cp = call ? call->priv : NULL;

	return cp && cp->media_created ? cp->ms : NULL;
}

/*
 * b2bua_end_hook: H(call, ARG) runs first thing in every bcall_end(), while
 * the call, its legs and its media are still there; NULL stops it. ARG is
 * borrowed: set NULL before whatever it points to goes.
 */
void b2bua_end_hook(struct b2bua *b, bcall_end_h *h, void *arg)
{
	b->endh = h;
	b->endarg = arg;
}

/*
 * b2bua_answer_hook: H(call, ARG) runs after every call.answered event,
 * the call answered and its media set up; NULL stops it. ARG as for
 * b2bua_end_hook.
 */
void b2bua_answer_hook(struct b2bua *b, bcall_end_h *h, void *arg)
{
	b->answerh = h;
	b->answerarg = arg;
}

static void b2bua_destructor(void *arg)
{
	struct b2bua *b = arg;

	/* A destructor reports nothing: its event sink (the API) may be
	 * gone already (issue 10, defect 4: stop() freed the API first and
	 * call.ended went to freed memory). Calls still here end quietly;
	 * the orderly way is b2bua_shutdown() before. */
	b->eventh = NULL;
	b->arg = NULL;
	b->endh = NULL;
	b->endarg = NULL;
	b->answerh = NULL;
	b->answerarg = NULL;
	b2bua_shutdown(b);
	tmr_cancel(&b->oktick);
	mem_deref(b->legs);
}

int b2bua_alloc(struct b2bua **bp, struct sip *sip, struct mediapool *pool,
		struct registrar *reg, struct routes *routes,
		const struct sipd_conf *cf, bcall_event_h *eh, void *arg);
int b2bua_alloc(struct b2bua **bp, struct sip *sip, struct mediapool *pool,
		struct registrar *reg, struct routes *routes,
		const struct sipd_conf *cf, bcall_event_h *eh, void *arg)
{
	struct b2bua *b = mem_zalloc(sizeof(*b), b2bua_destructor);

	if (!b)
		return ENOMEM;
	tmr_init(&b->oktick);
	if (hash_alloc(&b->legs, 4096)) {
		mem_deref(b);
		return ENOMEM;
	}
	b->sip = sip;
	b->pool = pool;
	b->reg = reg;
	b->routes = routes;
	b->eventh = eh;
	b->arg = arg;
	b->no_answer_ms = cf->no_answer_secs * 1000;
	b->session_expires = cf->session_expires;
	b->routes_need_auth = cf->routes_need_auth;
	*bp = b;
	return 0;
}

/* Entry point from main.c's request listener. True if handled. */
bool b2bua_request(struct b2bua *b, const struct sip_msg *msg);
bool b2bua_request(struct b2bua *b, const struct sip_msg *msg)
{
	struct bleg *leg;

	if (pl_isset(&msg->to.tag)) {
		leg = b2bua_leg_find(b, msg);
		if (!leg) {
			if (pl_strcmp(&msg->met, "ACK")) {
				++b->n_481;
				(void)sip_reply(b->sip, msg, 481,
						"Call/Transaction Does Not Exist");
			}
			return true;
		}
		indialog_handle(leg, msg);
		return true;
	}
	if (!pl_strcmp(&msg->met, "INVITE")) {
		(void)invite_handle(b, msg);
		return true;
	}
	return false;
}
