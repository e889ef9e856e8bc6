/*
 * recprobe.c: the health of the configured recorders, so that a recording
 * does not wait recorder-timeout-ms on a recorder known to be away.
 *
 * Every recorder-options-secs each configured recorder gets an OPTIONS
 * (RFC 3261 s11; a SIPREC SRS answers it like any UA). Its answer decides:
 *   any final answer but 503 and 408     up
 *   503 with Retry-After: N              down for N s (RFC 3261 s21.5.4),
 *                                        no OPTIONS before that
 *   503 without, 408, no answer within   down until the next period
 *   recorder-timeout-ms, unreachable
 * An INVITE to a recorder that fails the same ways (rec.c) marks it down
 * the same way. try_recorder() passes over recorders that are down; when
 * every one is down it tries them all in order anyway (health is a guess,
 * a recording is not refused on it).
 *
 * Worked example (recorders = sip:a, sip:b; period 10 s): at t=0 a answers
 * 503 Retry-After: 30, b 200. A recording at t=5 INVITEs b at once. At
 * t=10 and t=20 a gets no OPTIONS; at t=40 it does again.
 */
#include <errno.h>
#include <string.h>
#include "log.h"
#include "b2bua.h"
#include "rec.h"

struct target {
	char uri[REC_URI_MAX];
	struct sip_request *req;      /* the OPTIONS in flight */
	struct recprobe *rp;          /* borrowed: owner */
	uint64_t down_until;          /* unix ms; 0: up */
	uint64_t retry_until;         /* no OPTIONS before (Retry-After) */
	struct tmr tmr;               /* the OPTIONS' own timeout */
};

struct recprobe {
	struct sip *sip;              /* borrowed */
	struct target t[REC_MAX_RECORDERS];
	unsigned n;
	uint32_t period_ms, timeout_ms;
	struct tmr tmr;
	uint64_t n_sent, n_down;
};

static void set_down(struct target *t, uint64_t until, const char *why)
{
	if (!t->down_until)
		log_info("rec: recorder %s down: %s", t->uri, why);
	t->down_until = until;
	++t->rp->n_down;
}

static void set_up(struct target *t)
{
	if (t->down_until)
		log_info("rec: recorder %s up", t->uri);
	t->down_until = 0;
	t->retry_until = 0;
}

/* Retry-After of MSG in seconds, 0 if none. */
static uint32_t retry_after(const struct sip_msg *msg)
{
	const struct sip_hdr *h = sip_msg_hdr(msg, SIP_HDR_RETRY_AFTER);
	struct pl v;

	if (!h || re_regex(h->val.p, h->val.l, "[0-9]+", &v))
		return 0;
	return pl_u32(&v);
}

static void judge(struct target *t, int err, const struct sip_msg *msg)
{
	uint64_t now = sipd_now_ms();
	struct recprobe *rp = t->rp;
	uint32_t ra;
	char why[64];

	if (err || !msg) {
		re_snprintf(why, sizeof(why), "%s", strerror(err ? err :
							      EPROTO));
		set_down(t, now + rp->period_ms, why);
		return;
	}
	if (msg->scode == 503 || msg->scode == 408) {
		ra = msg->scode == 503 ? retry_after(msg) : 0;
		re_snprintf(why, sizeof(why), "%u%s", msg->scode,
			    ra ? ", Retry-After" : "");
		set_down(t, now + (ra ? ra * 1000ULL : rp->period_ms), why);
		t->retry_until = ra ? now + ra * 1000ULL : 0;
		return;
	}
	set_up(t);
}

static void resp_h(int err, const struct sip_msg *msg, void *arg)
{
	struct target *t = arg;

	if (!err && msg && msg->scode < 200)
		return;
	tmr_cancel(&t->tmr);
	judge(t, err, msg);
}

static void timeout_h(void *arg)
{
	struct target *t = arg;

	t->req = mem_deref(t->req);
	judge(t, ETIMEDOUT, NULL);
}

static void probe(struct target *t)
{
	struct recprobe *rp = t->rp;
	int err;

	if (t->req || (t->retry_until && sipd_now_ms() < t->retry_until))
		return;
	err = sip_requestf(&t->req, rp->sip, true, "OPTIONS", t->uri, NULL,
			   NULL, NULL, resp_h, t,
			   "Max-Forwards: 70\r\n"
			   "From: <sip:tally@%J>;tag=%016llx\r\n"
			   "To: <%s>\r\n"
			   "Call-ID: %016llx@tally-probe\r\n"
			   "CSeq: 1 OPTIONS\r\n"
			   "Accept: application/sdp\r\n"
			   "Content-Length: 0\r\n\r\n",
			   sipmsg_laddr(), (unsigned long long)rand_u64(),
			   t->uri, (unsigned long long)rand_u64());
	if (err) {
		judge(t, err, NULL);
		return;
	}
	++rp->n_sent;
	tmr_start(&t->tmr, rp->timeout_ms, timeout_h, t);
}

static void tick(void *arg)
{
	struct recprobe *rp = arg;
	unsigned i;

	for (i = 0; i < rp->n; i++)
		probe(&rp->t[i]);
	tmr_start(&rp->tmr, rp->period_ms, tick, rp);
}

static void destructor(void *arg)
{
	struct recprobe *rp = arg;
	unsigned i;

	tmr_cancel(&rp->tmr);
	for (i = 0; i < rp->n; i++) {
		tmr_cancel(&rp->t[i].tmr);
		rp->t[i].req = mem_deref(rp->t[i].req);
	}
}

/*
 * recprobe_alloc: OPTIONS to the N recorders URIS every PERIOD_MS (the
 * first right away), an answer awaited TIMEOUT_MS. SIP is borrowed and
 * must outlive the probe. 0 and *RPP, EINVAL, ENOMEM.
 */
int recprobe_alloc(struct recprobe **rpp, struct sip *sip,
		   const char (*uris)[REC_URI_MAX], unsigned n,
		   uint32_t period_ms, uint32_t timeout_ms)
{
	struct recprobe *rp;
	unsigned i;

	if (!rpp || !sip || !uris || n > REC_MAX_RECORDERS || !period_ms)
		return EINVAL;
	rp = mem_zalloc(sizeof(*rp), destructor);
	if (!rp)
		return ENOMEM;
	rp->sip = sip;
	rp->n = n;
	rp->period_ms = period_ms;
	rp->timeout_ms = timeout_ms ? timeout_ms : 5000;
	tmr_init(&rp->tmr);
	for (i = 0; i < n; i++) {
		str_ncpy(rp->t[i].uri, uris[i], sizeof(rp->t[i].uri));
		rp->t[i].rp = rp;
		tmr_init(&rp->t[i].tmr);
	}
	tmr_start(&rp->tmr, 0, tick, rp);
	*rpp = rp;
	return 0;
}

static struct target *find(const struct recprobe *rp, const char *uri)
{
	unsigned i;

	for (i = 0; rp && i < rp->n; i++)
		if (!strcmp(rp->t[i].uri, uri))
			return (struct target *)&rp->t[i];
	return NULL;
}

/* Is URI (a configured recorder) down now? Unknown URIs are up. */
bool recprobe_down(const struct recprobe *rp, const char *uri)
{
	const struct target *t = find(rp, uri);

	return t && t->down_until && sipd_now_ms() < t->down_until;
}

/* An INVITE to URI failed: ERR, or MSG's final answer (rec.c). */
void recprobe_failed(struct recprobe *rp, const char *uri, int err,
		     const struct sip_msg *msg)
{
	struct target *t = find(rp, uri);

	if (t)
		judge(t, err, msg);
}
