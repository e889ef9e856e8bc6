/*
 * recpolicy.c: the static record policy, "which calls are recorded
 * without anybody asking": an ordered list of rules from the config key
 * record (one rule a line, like route):
 *
 *     record = sup*  audio+video  per-party
 *     record = 1001  audio
 *     record = 9xxx  audio        both
 *
 * Fields, separated by blanks: a pattern in the language of routes.c
 * (x any digit, N 2-9, Z 1-9, a final '.' or '*' one or more further
 * characters, "*" alone any user), the media (audio or audio+video) and
 * optionally the mode (both, the default: one SIPREC session for the
 * call; per-party: one per party). The pattern is tried on the caller's
 * user, then the callee's (the DN each party is known by); the first rule
 * that matches either decides.
 *
 * Worked example with the rules above: alice (1001) calls support
 * (support): "support" matches rule 1 (sup*) on the callee, so the call
 * is recorded audio+video in two sessions. 1001 calling 2000: rule 1 does
 * not match, rule 2 matches the caller: audio, one session. 2000 calling
 * 2001: nothing matches, nothing is recorded.
 *
 * The recording starts when the call is answered (rec.c's answer hook)
 * and goes to the configured recorders, exactly as if a client had
 * POSTed it: same events, same JSON, stoppable through the API.
 */
#include <errno.h>
#include <string.h>
#include "log.h"
#include "rec.h"

enum { RECPOLICY_PAT_MAX = 64 };

struct rule {
	struct le le;                 /* in recpolicy.rules, config order */
	char pattern[RECPOLICY_PAT_MAX];
	bool video;
	bool per_party;
	unsigned line;
};

struct recpolicy {
	struct list rules;            /* struct rule */
};

static void rule_destructor(void *arg)
{
	struct rule *r = arg;

	list_unlink(&r->le);
}

static void recpolicy_destructor(void *arg)
{
	struct recpolicy *rp = arg;

	list_flush(&rp->rules);
}

/* One non-blank line: "pattern media [mode]". */
static int rule_parse(struct recpolicy *rp, const struct pl *line,
		      unsigned n)
{
	struct pl pat, media, mode = PL_INIT, extra;
	struct rule *r;
	size_t pos = 0;

	if (!sipd_field_next(line, &pos, &pat) ||
	    !sipd_field_next(line, &pos, &media) ||
	    (sipd_field_next(line, &pos, &mode) &&
	     sipd_field_next(line, &pos, &extra))) {
		log_err("record: line %u '%.*s': want 'pattern "
			"audio|audio+video [both|per-party]'", n, (int)line->l,
			line->p);
		return EINVAL;
	}
	if (!routes_pattern_valid(&pat) || pat.l >= RECPOLICY_PAT_MAX) {
		log_err("record: line %u '%.*s': bad pattern", n,
			(int)line->l, line->p);
		return EINVAL;
	}
	if (pl_strcmp(&media, "audio") && pl_strcmp(&media, "audio+video")) {
		log_err("record: line %u '%.*s': media is audio or "
			"audio+video", n, (int)line->l, line->p);
		return EINVAL;
	}
	if (pl_isset(&mode) && pl_strcmp(&mode, "both") &&
	    pl_strcmp(&mode, "per-party")) {
		log_err("record: line %u '%.*s': mode is both or "
			"per-party", n, (int)line->l, line->p);
		return EINVAL;
	}
	r = mem_zalloc(sizeof(*r), rule_destructor);
	if (!r)
		return ENOMEM;
	(void)pl_strcpy(&pat, r->pattern, sizeof(r->pattern));
	r->video = !pl_strcmp(&media, "audio+video");
	r->per_party = pl_isset(&mode) && !pl_strcmp(&mode, "per-party");
	r->line = n;
	list_append(&rp->rules, &r->le, r);
	return 0;
}

/*
 * recpolicy_alloc: the rules of LINES ('\n'-separated, blank lines
 * skipped; NULL or "" for none). 0 and *RPP (the caller's), EINVAL (a bad
 * line, logged), ENOMEM.
 */
int recpolicy_alloc(struct recpolicy **rpp, const char *lines)
{
	struct recpolicy *rp;
	struct pl rest, line;
	unsigned n = 0;
	int err = 0;

	if (!rpp)
		return EINVAL;
	rp = mem_zalloc(sizeof(*rp), recpolicy_destructor);
	if (!rp)
		return ENOMEM;
	list_init(&rp->rules);
	pl_set_str(&rest, lines ? lines : "");
	while (rest.l && !err) {
		const char *nl = pl_strchr(&rest, '\n');
		size_t i;

		line.p = rest.p;
		line.l = nl ? (size_t)(nl - rest.p) : rest.l;
		pl_advance(&rest, line.l + (nl ? 1 : 0));
		++n;
		for (i = 0; i < line.l && (line.p[i] == ' ' ||
					   line.p[i] == '\t' ||
					   line.p[i] == '\r'); i++)
			;
		if (i == line.l)
			continue;
		while (line.l && (line.p[line.l - 1] == '\r' ||
				  line.p[line.l - 1] == ' '))
			--line.l;
		err = rule_parse(rp, &line, n);
	}
	if (err) {
		mem_deref(rp);
		return err;
	}
	*rpp = rp;
	return 0;
}

bool recpolicy_match(const struct recpolicy *rp, const struct bcall *call,
		     struct rec_req *req)
{
	struct pl caller, callee;
	struct le *le;

	if (!rp || !call || !req)
		return false;
	pl_set_str(&caller, call->caller.user);
	pl_set_str(&callee, call->callee.user);
	LIST_FOREACH(&rp->rules, le) {
		const struct rule *r = le->data;

		if ((caller.l && routes_pattern_match(r->pattern, &caller)) ||
		    (callee.l && routes_pattern_match(r->pattern, &callee))) {
			memset(req, 0, sizeof(*req));
			req->video = r->video;
			req->per_party = r->per_party;
			log_debug("record: call %s matches line %u '%s'",
				  call->id, r->line, r->pattern);
			return true;
		}
	}
	return false;
}

unsigned recpolicy_count(const struct recpolicy *rp)
{
	return rp ? list_count(&rp->rules) : 0;
}
