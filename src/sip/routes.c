/*
 * routes.c: static routes, "where does a call to this number go when nobody
 * registered it": an ordered list of (pattern, target URI) pairs.
 *
 * One route per line, two fields separated by blanks:
 *
 *     9xxx      sip:${user}@127.0.0.1:5090
 *     0049.     sip:${user}@trunk.example.net
 *     *97       sip:voicemail@10.0.0.7
 *     *         sip:${user}@fallback.example.net
 *
 * Pattern language (the dial-plan notation of Asterisk, cut down):
 *   x or X   any digit 0-9
 *   N        2-9
 *   Z        1-9
 *   a final '.' or '*': one or more further characters, whatever they are
 *   "*" alone: any user at all
 *   anything else (letters, digits, '+', '#', '-', '_', '~', '!', a '.' or
 *   '*' that is not last) matches itself, case-sensitively as SIP user parts
 *   are compared.
 * The user must be consumed exactly: "9xxx" matches "9123", not "91234".
 *
 * Worked example with the table above: "9123" hits line 1 and becomes
 * "sip:9123@127.0.0.1:5090"; "004930123" hits line 2; "*97" is no digit
 * string but matches line 3 literally (its '*' is not last); "alice" falls
 * through to line 4. The first match wins, so order lines from the most to
 * the least specific.
 *
 * The target URI must be a sip: or sips: URI; "${user}" in it is replaced by
 * the user part as it came in the Request-URI (still escaped, so it can be
 * pasted into a URI unchanged). Any other "${" is a configuration error.
 * A request without a user part (INVITE sip:pbx.example.net) is matched
 * only by "*" lines, and a line whose target holds ${user} is passed over
 * for it: "sip:@fallback.example.net" is no address (with the table above,
 * an empty user finds no route; the caller gets 484 from invite.c).
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include "log.h"
#include "sipd.h"

#define USER_VAR "${user}"

struct route {
	struct le le;        /* in routes.l, configuration order */
	char *pattern;
	char *uri;           /* may hold ${user} */
	unsigned line;       /* for the log */
};

struct routes {
	struct list l;       /* struct route */
};

static void route_destructor(void *arg)
{
	struct route *rt = arg;

	list_unlink(&rt->le);
	mem_deref(rt->pattern);
	mem_deref(rt->uri);
}

static void routes_destructor(void *arg)
{
	struct routes *r = arg;

	list_flush(&r->l);
}

static bool pattern_char_ok(char c)
{
	return isalnum((unsigned char)c) || strchr("+*#-_.~!", c);
}

bool routes_pattern_valid(const struct pl *p)
{
	size_t i;

	if (!p->l)
		return false;
	for (i = 0; i < p->l; i++) {
		if (!p->p[i] || !pattern_char_ok(p->p[i]))
			return false;
	}
	return true;
}

/* A sip:/sips: URI whose only variable is ${user}, and which still decodes
 * as a URI once a user is put in. */
static bool target_valid(const struct pl *u)
{
	char buf[512], *o = buf;
	const char *p = u->p, *end = u->p + u->l;
	struct uri uri;
	struct pl pl;

	if (u->l < 5 || u->l > 256)
		return false;
	if (strncasecmp(u->p, "sip:", 4) && strncasecmp(u->p, "sips:", 5))
		return false;
	while (p < end) {
		if (*p == '$') {
			if ((size_t)(end - p) < strlen(USER_VAR) ||
			    strncmp(p, USER_VAR, strlen(USER_VAR)))
				return false;
			memcpy(o, "u1", 2);
			o += 2;
			p += strlen(USER_VAR);
			continue;
		}
		*o++ = *p++;
	}
	pl.p = buf;
	pl.l = (size_t)(o - buf);
	return uri_decode(&uri, &pl) == 0 && pl_isset(&uri.host);
}

bool routes_pattern_match(const char *pat, const struct pl *user)
{
	const char *p;
	size_t i = 0;
	char c;
	bool ok;

	if (!strcmp(pat, "*"))
		return true;
	for (p = pat; *p; p++) {
		if ((*p == '.' || *p == '*') && !p[1])
			return i < user->l;          /* one or more left */
		if (i >= user->l)
			return false;
		c = user->p[i++];
		switch (*p) {
		case 'x':
		case 'X':
			ok = c >= '0' && c <= '9';
			break;
		case 'N':
			ok = c >= '2' && c <= '9';
			break;
		case 'Z':
			ok = c >= '1' && c <= '9';
			break;
		default:
			ok = c == *p;
			break;
		}
		if (!ok)
			return false;
	}
	return i == user->l;
}

/* One non-blank line: "pattern uri". */
static int route_parse(struct routes *r, const struct pl *line, unsigned n)
{
	struct pl pat, uri, extra;
	struct route *rt;
	size_t pos = 0;
	int err;

	if (!sipd_field_next(line, &pos, &pat) ||
	    !sipd_field_next(line, &pos, &uri) ||
	    sipd_field_next(line, &pos, &extra)) {
		log_err("routes: line %u '%.*s': want 'pattern sip:uri'", n,
			(int)line->l, line->p);
		return EINVAL;
	}
	if (!routes_pattern_valid(&pat)) {
		log_err("routes: line %u '%.*s': bad pattern", n,
			(int)line->l, line->p);
		return EINVAL;
	}
	if (!target_valid(&uri)) {
		log_err("routes: line %u '%.*s': bad target URI (want sip: or "
			"sips:, only ${user} as variable)", n, (int)line->l,
			line->p);
		return EINVAL;
	}
	rt = mem_zalloc(sizeof(*rt), route_destructor);
	if (!rt)
		return ENOMEM;
	rt->line = n;
	err = pl_strdup(&rt->pattern, &pat);
	err |= pl_strdup(&rt->uri, &uri);
	if (err) {
		mem_deref(rt);
		return ENOMEM;
	}
	list_append(&r->l, &rt->le, rt);
	return 0;
}

int routes_alloc(struct routes **rp, const char *lines)
{
	struct routes *r;
	const char *p, *nl;
	struct pl line;
	unsigned n = 0;
	int err = 0;

	if (!rp || !lines)
		return EINVAL;
	r = mem_zalloc(sizeof(*r), routes_destructor);
	if (!r)
		return ENOMEM;
	for (p = lines; *p; p = nl ? nl + 1 : p + strlen(p)) {
		nl = strchr(p, '\n');
		line.p = p;
		line.l = nl ? (size_t)(nl - p) : strlen(p);
		++n;
		while (line.l && isspace((unsigned char)line.p[line.l - 1]))
			--line.l;
		if (!line.l || strspn(line.p, " \t") == line.l)
			continue;
		err = route_parse(r, &line, n);
		if (err)
			goto out;
	}
	log_debug("routes: %u routes", list_count(&r->l));
 out:
	if (err)
		mem_deref(r);
	else
		*rp = r;
	return err;
}

/* URI of RT with ${user} replaced; 0 or ENOBUFS. */
static int route_expand(const struct route *rt, const struct pl *user,
			char *out, size_t size)
{
	const char *p = rt->uri, *var;
	size_t len = 0, n;

	while ((var = strstr(p, USER_VAR)) || *p) {
		n = var ? (size_t)(var - p) : strlen(p);
		if (len + n + (var ? user->l : 0) >= size)
			return ENOBUFS;
		memcpy(out + len, p, n);
		len += n;
		if (!var)
			break;
		if (user->l)            /* an empty pl may have p == NULL */
			memcpy(out + len, user->p, user->l);
		len += user->l;
		p = var + strlen(USER_VAR);
	}
	out[len] = '\0';
	return 0;
}

int routes_match(const struct routes *r, const struct pl *user, char *uri,
		 size_t size)
{
	struct pl empty = PL_INIT;
	struct le *le;

	if (!r || !uri || !size)
		return EINVAL;
	if (!user)
		user = &empty;
	for (le = r->l.head; le; le = le->next) {
		const struct route *rt = le->data;

		if (!routes_pattern_match(rt->pattern, user))
			continue;
		if (!user->l && strstr(rt->uri, USER_VAR)) {
			log_debug("routes: line %u '%s' needs a user, the "
				  "Request-URI has none", rt->line, rt->pattern);
			continue;
		}
		log_debug("routes: '%.*s' matches line %u '%s'", (int)user->l,
			  user->p, rt->line, rt->pattern);
		return route_expand(rt, user, uri, size);
	}
	return ENOENT;
}
