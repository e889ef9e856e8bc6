/*
 * registrar.c: the SIP registrar (RFC 3261 section 10) and the location
 * service it fills: address-of-record -> the contacts of its devices.
 *
 * Only configured accounts ("name password" lines) may register, only for
 * themselves, and only with HTTP digest (RFC 2617 MD5, qop=auth). The lead's
 * request handler hands every REGISTER to registrar_handle(); the B2BUA asks
 * registrar_lookup() where a call for a user goes.
 *
 * Worked example (alice has a desk phone and a softphone):
 *
 *   REGISTER sip:tally To:<sip:alice@tally> Contact:<sip:a@10.0.0.5>;q=0.5
 *     <- 401  WWW-Authenticate: Digest realm="tally", nonce="<ts><mac>",
 *             qop="auth", algorithm=MD5
 *   REGISTER ... Authorization: Digest username="alice", ... (CSeq + 1)
 *     <- 200  Contact: <sip:a@10.0.0.5>;expires=3600;q=0.5
 *   (softphone, another Call-ID)  Contact: <sip:b@10.0.0.9>;expires=600
 *     <- 200  Contact: <sip:a@10.0.0.5>;expires=3598;q=0.5
 *             Contact: <sip:b@10.0.0.9>;expires=600
 *   registrar_lookup("alice") -> "sip:b@10.0.0.9": no q counts as 1.0, the
 *   highest q wins, then the most recently (re)registered contact.
 *   REGISTER ... Contact:<sip:b@10.0.0.9>;expires=0 removes the softphone;
 *   "Contact: *" with "Expires: 0" removes both; no Contact only asks.
 *
 * Order of checks, so that a malformed request costs no crypto and the
 * reply says what is wrong: syntax (400 with a reason naming the header),
 * account (404), authentication (401 / 403), intervals (423), Call-ID/CSeq
 * ordering (500, nothing changed), then the bindings are updated atomically
 * and 200 lists them all with their remaining lifetimes.
 *
 * Nonces are stateless: "<8 hex digits unix time><32 hex digits of
 * HMAC-SHA1(secret, time ':' realm)>", the secret random per process. A
 * nonce older than REG_NONCE_TTL or not ours (bad MAC, e.g. issued before a
 * restart) gets a fresh challenge, with stale=true if the digest over it was
 * right anyway (clients then retry without asking the user).
 * Nonce counts are not tracked: a captured Authorization can be replayed
 * within the TTL (but not to roll a binding back: see the CSeq rule).
 *
 * Contacts are kept as their URI text, exactly as sent: that is the target
 * for calls and what clients look for in the 200 (libre's sipreg compares
 * it as a string). The source address and transport are stored next to it
 * (for a NAT-aware target later) but not used as the target.
 *
 * Ownership: registrar -> accounts (hash by user) -> bindings, each with its
 * own expiry timer; freeing the registrar frees all, no callbacks after.
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include "log.h"
#include "sipd.h"

enum {
	REG_DEFAULT_EXPIRES = 3600,   /* neither ;expires= nor Expires: */
	REG_NONCE_TTL = 300,          /* s a nonce is accepted */
	REG_MAX_CONTACTS = 10,        /* per AOR and per request */
	REG_HASH_BUCKETS = 64,
	REG_SECRET_LEN = 20,
	REG_MAC_LEN = 16,             /* bytes of the HMAC in a nonce */
	REG_NONCE_LEN = 8 + 2 * REG_MAC_LEN,
	Q_UNSET = 1000,               /* no q: as good as q=1.0 */
};

struct registrar_stats {
	uint64_t requests;       /* REGISTERs handled */
	uint64_t ok;             /* 200 */
	uint64_t challenged;     /* 401 */
	uint64_t forbidden;      /* 403 */
	uint64_t not_found;      /* 404 */
	uint64_t bad;            /* 400 */
	uint64_t too_brief;      /* 423 */
	uint64_t out_of_order;   /* 500: old CSeq */
	uint64_t expired;        /* bindings purged by their timer */
	uint64_t bindings;       /* current, all AORs */
};

struct registrar {
	struct sip *sip;                 /* borrowed */
	char realm[64];
	struct hash *accounts;           /* struct account by user */
	uint32_t min_expires, max_expires;
	uint8_t secret[REG_SECRET_LEN];  /* nonce MAC key */
	uint64_t seq;                    /* registration order */
	struct registrar_stats st;
};

struct account {
	struct le he;                    /* in registrar.accounts */
	struct registrar *r;             /* borrowed: the owner */
	char *user;
	uint8_t ha1[MD5_SIZE];           /* MD5(user:realm:password) */
	struct list bindings;            /* struct binding */
};

struct binding {
	struct le le;                    /* in account.bindings */
	struct account *acc;             /* borrowed: the owner */
	char *uri;                       /* Contact URI as sent: the target */
	char *callid;
	uint32_t cseq;
	uint16_t q;                      /* q * 1000 */
	bool q_set;                      /* echo q only if the client gave it */
	uint64_t expires_at;             /* tmr_jiffies() ms */
	uint64_t seq;                    /* newer registration = larger */
	struct sa received;              /* source of the REGISTER (NAT) */
	enum sip_transp tp;
	struct tmr tmr;                  /* purges at expires_at */
};

/* One Contact of a request, validated but not applied yet. */
struct reg_contact {
	struct pl uri;
	uint32_t expires;
	uint16_t q;
	bool q_set;
	struct binding *b;               /* existing binding, if any */
};

struct reg_req {
	const struct sip_msg *msg;
	struct account *acc;
	struct reg_contact cv[REG_MAX_CONTACTS];
	unsigned cc;
	bool star;
	bool has_expires;                /* Expires header */
	uint32_t expires;
	int err;                         /* first parse problem */
	const char *why;                 /* its reason phrase */
};

/* ---- small parsers ---- */

/* delta-seconds; RFC 3261: too large means 2^32-1. */
static int delta_parse(const struct pl *v, uint32_t *out)
{
	uint64_t n = 0;
	size_t i;

	if (!v->l)
		return EINVAL;
	for (i = 0; i < v->l; i++) {
		if (!isdigit((unsigned char)v->p[i]))
			return EINVAL;
		if (n <= UINT32_MAX)
			n = n * 10 + (uint64_t)(v->p[i] - '0');
	}
	*out = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	return 0;
}

/* qvalue = "0" [ "." 0*3DIGIT ] / "1" [ "." 0*3("0") ], times 1000. */
static int qvalue_parse(const struct pl *v, uint16_t *q)
{
	unsigned val, scale = 100;
	size_t i;

	if (!v->l || v->l > 5 || (v->p[0] != '0' && v->p[0] != '1'))
		return EINVAL;
	val = (unsigned)(v->p[0] - '0') * 1000;
	if (v->l > 1 && v->p[1] != '.')
		return EINVAL;
	for (i = 2; i < v->l; i++, scale /= 10) {
		if (!isdigit((unsigned char)v->p[i]))
			return EINVAL;
		val += (unsigned)(v->p[i] - '0') * scale;
	}
	if (val > 1000)
		return EINVAL;
	*q = (uint16_t)val;
	return 0;
}

static bool hex_decode(const char *p, size_t n, uint8_t *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)p[i]))
			return false;
		if (i & 1)
			out[i / 2] |= (uint8_t)ch_hex(p[i]);
		else
			out[i / 2] = (uint8_t)(ch_hex(p[i]) << 4);
	}
	return true;
}

/* ---- nonces ---- */

static void nonce_mac(const struct registrar *r, uint32_t ts,
		      uint8_t mac[REG_MAC_LEN])
{
	char data[128];
	uint8_t full[20];
	int n;

	n = re_snprintf(data, sizeof(data), "%08x:%s", ts, r->realm);
	hmac_sha1(r->secret, sizeof(r->secret), (const uint8_t *)data,
		  n > 0 ? (size_t)n : 0, full, sizeof(full));
	memcpy(mac, full, REG_MAC_LEN);
}

static int nonce_print(struct re_printf *pf, void *arg)
{
	const struct registrar *r = arg;
	uint32_t ts = (uint32_t)time(NULL);
	uint8_t mac[REG_MAC_LEN];

	nonce_mac(r, ts, mac);
	return re_hprintf(pf, "%08x%w", ts, mac, sizeof(mac));
}

/* 0 valid, ETIMEDOUT genuine but too old, EINVAL not ours. */
static int nonce_check(const struct registrar *r, const struct pl *nonce)
{
	uint8_t want[REG_MAC_LEN], got[REG_MAC_LEN], ts_b[4], diff = 0;
	uint32_t ts, now = (uint32_t)time(NULL);
	size_t i;

	if (nonce->l != REG_NONCE_LEN || !hex_decode(nonce->p, 8, ts_b) ||
	    !hex_decode(nonce->p + 8, 2 * REG_MAC_LEN, got))
		return EINVAL;
	ts = (uint32_t)ts_b[0] << 24 | (uint32_t)ts_b[1] << 16 |
	     (uint32_t)ts_b[2] << 8 | ts_b[3];
	nonce_mac(r, ts, want);
	for (i = 0; i < REG_MAC_LEN; i++)          /* constant time */
		diff |= (uint8_t)(want[i] ^ got[i]);
	if (diff)
		return EINVAL;
	if (ts > now + 60)                          /* clock went back far */
		return EINVAL;
	return now - ts > REG_NONCE_TTL ? ETIMEDOUT : 0;
}

/* ---- accounts and bindings ---- */

static void binding_destructor(void *arg)
{
	struct binding *b = arg;

	tmr_cancel(&b->tmr);
	if (b->acc) {
		list_unlink(&b->le);
		--b->acc->r->st.bindings;
	}
	mem_deref(b->uri);
	mem_deref(b->callid);
}

static void account_destructor(void *arg)
{
	struct account *acc = arg;

	hash_unlink(&acc->he);
	list_flush(&acc->bindings);
	mem_deref(acc->user);
}

static void registrar_destructor(void *arg)
{
	struct registrar *r = arg;

	hash_flush(r->accounts);
	mem_deref(r->accounts);
}

static bool account_cmp(struct le *le, void *arg)
{
	const struct account *acc = le->data;

	return pl_strcmp(arg, acc->user) == 0;
}

static struct account *account_find(const struct registrar *r,
				    const struct pl *user)
{
	if (!r || !user || !user->l)
		return NULL;
	return list_ledata(hash_lookup(r->accounts, hash_joaat_pl(user),
				       account_cmp, (void *)user));
}

static struct binding *binding_find(const struct account *acc,
				    const struct pl *uri)
{
	struct le *le;

	for (le = acc->bindings.head; le; le = le->next) {
		struct binding *b = le->data;

		if (!pl_strcmp(uri, b->uri))
			return b;
	}
	return NULL;
}

static uint32_t binding_remaining(const struct binding *b, uint64_t now)
{
	return b->expires_at > now ?
		(uint32_t)((b->expires_at - now + 999) / 1000) : 0;
}

static void binding_expire_h(void *arg)
{
	struct binding *b = arg;

	++b->acc->r->st.expired;
	log_info("registrar: %s: contact %s expired", b->acc->user, b->uri);
	mem_deref(b);
}

/* "name password" */
static int account_add(struct registrar *r, const struct pl *line,
		       unsigned n)
{
	struct pl user, pass;
	struct account *acc;
	size_t i = 0;
	int err;

	while (i < line->l && (line->p[i] == ' ' || line->p[i] == '\t'))
		++i;
	user.p = line->p + i;
	while (i < line->l && line->p[i] != ' ' && line->p[i] != '\t')
		++i;
	user.l = (size_t)(line->p + i - user.p);
	while (i < line->l && (line->p[i] == ' ' || line->p[i] == '\t'))
		++i;
	pass.p = line->p + i;
	pass.l = line->l - i;
	if (!user.l || !pass.l) {
		log_err("registrar: users line %u: want 'name password'", n);
		return EINVAL;
	}
	if (account_find(r, &user)) {
		log_err("registrar: users line %u: user '%.*s' given twice",
			n, (int)user.l, user.p);
		return EINVAL;
	}
	acc = mem_zalloc(sizeof(*acc), account_destructor);
	if (!acc)
		return ENOMEM;
	acc->r = r;
	err = pl_strdup(&acc->user, &user);
	if (!err)
		err = md5_printf(acc->ha1, "%r:%s:%r", &user, r->realm, &pass);
	if (err) {
		mem_deref(acc);
		return err;
	}
	hash_append(r->accounts, hash_joaat_pl(&user), &acc->he, acc);
	return 0;
}

int registrar_alloc(struct registrar **rp, struct sip *sip, const char *realm,
		    const char *users, uint32_t min_expires, uint32_t max_expires)
{
	struct registrar *r;
	const char *p, *nl;
	struct pl line;
	unsigned n = 0;
	int err;

	if (!rp || !sip || !realm || !realm[0] ||
	    strlen(realm) >= sizeof(r->realm) || strchr(realm, '"'))
		return EINVAL;
	if (!min_expires || !max_expires || min_expires > max_expires)
		return EINVAL;
	r = mem_zalloc(sizeof(*r), registrar_destructor);
	if (!r)
		return ENOMEM;
	r->sip = sip;
	r->min_expires = min_expires;
	r->max_expires = max_expires;
	str_ncpy(r->realm, realm, sizeof(r->realm));
	rand_bytes(r->secret, sizeof(r->secret));
	err = hash_alloc(&r->accounts, REG_HASH_BUCKETS);
	if (err)
		goto out;
	for (p = users ? users : ""; *p; p = nl ? nl + 1 : p + strlen(p)) {
		nl = strchr(p, '\n');
		line.p = p;
		line.l = nl ? (size_t)(nl - p) : strlen(p);
		++n;
		while (line.l && isspace((unsigned char)line.p[line.l - 1]))
			--line.l;
		if (!line.l || strspn(line.p, " \t") >= line.l)
			continue;
		err = account_add(r, &line, n);
		if (err)
			goto out;
	}
	log_debug("registrar: realm '%s', expires %u..%u s", r->realm,
		  min_expires, max_expires);
 out:
	if (err)
		mem_deref(r);
	else
		*rp = r;
	return err;
}

bool registrar_known(const struct registrar *r, const struct pl *user)
{
	return account_find(r, user) != NULL;
}

int registrar_lookup(const struct registrar *r, const struct pl *user,
		     char *uri, size_t size)
{
	const struct binding *best = NULL;
	const struct account *acc;
	uint64_t now = tmr_jiffies();
	struct le *le;

	if (!uri || !size)
		return EINVAL;
	acc = account_find(r, user);
	if (!acc)
		return ENOENT;
	for (le = acc->bindings.head; le; le = le->next) {
		const struct binding *b = le->data;

		if (b->expires_at <= now)    /* its timer is about to fire */
			continue;
		if (!best || b->q > best->q ||
		    (b->q == best->q && b->seq > best->seq))
			best = b;
	}
	if (!best)
		return ENOENT;
	if (strlen(best->uri) >= size)
		return ENOBUFS;
	str_ncpy(uri, best->uri, size);
	return 0;
}

/* ---- REGISTER processing ---- */

/* "1.2.3.4:5060" for the log (libre's %J is not printf). */
static const char *src_str(const struct sip_msg *msg, char *buf, size_t size)
{
	if (re_snprintf(buf, size, "%J", &msg->src) < 0)
		str_ncpy(buf, "?", size);
	return buf;
}

static int reply(struct registrar *r, const struct sip_msg *msg,
		 uint16_t scode, const char *reason)
{
	switch (scode) {
	case 400: ++r->st.bad; break;
	case 403: ++r->st.forbidden; break;
	case 404: ++r->st.not_found; break;
	case 500: ++r->st.out_of_order; break;
	default: break;
	}
	log_debug("registrar: [%.*s] %u %s", (int)msg->callid.l,
		  msg->callid.p, scode, reason);
	return sip_treplyf(NULL, NULL, r->sip, msg, false, scode, reason,
			   "Content-Length: 0\r\n\r\n");
}

/* 401 for REGISTER (WWW-Authenticate), 407 for other requests
 * (Proxy-Authenticate), RFC 3261 22.1 and 22.3. */
static void challenge(struct registrar *r, const struct sip_msg *msg,
		      bool stale, bool proxy)
{
	++r->st.challenged;
	(void)sip_treplyf(NULL, NULL, r->sip, msg, false,
			  proxy ? 407 : 401,
			  proxy ? "Proxy Authentication Required" : "Unauthorized",
			  "%s: Digest realm=\"%s\", nonce=\"%H\","
			  " qop=\"auth\", algorithm=MD5%s\r\n"
			  "Content-Length: 0\r\n\r\n",
			  proxy ? "Proxy-Authenticate" : "WWW-Authenticate",
			  r->realm, nonce_print, r, stale ? ", stale=true" : "");
}

static bool contact_h(const struct sip_hdr *hdr, const struct sip_msg *msg,
		      void *arg)
{
	struct reg_req *q = arg;
	struct reg_contact *c;
	struct sip_addr addr;
	struct pl v;
	(void)msg;

	if (!pl_strcmp(&hdr->val, "*")) {
		q->star = true;
		return false;
	}
	if (q->cc == REG_MAX_CONTACTS) {
		q->err = EOVERFLOW;
		q->why = "Too Many Contacts";
		return true;
	}
	c = &q->cv[q->cc];
	memset(c, 0, sizeof(*c));
	if (sip_addr_decode(&addr, &hdr->val) || !pl_isset(&addr.uri.host) ||
	    addr.auri.l > 255) {
		q->why = "Bad Contact header";
		goto bad;
	}
	c->uri = addr.auri;
	c->q = Q_UNSET;
	if (!msg_param_decode(&addr.params, "expires", &v)) {
		if (delta_parse(&v, &c->expires)) {
			q->why = "Bad expires parameter in Contact";
			goto bad;
		}
	}
	else if (q->has_expires) {
		c->expires = q->expires;
	}
	else {
		c->expires = REG_DEFAULT_EXPIRES;
	}
	if (!msg_param_decode(&addr.params, "q", &v)) {
		if (qvalue_parse(&v, &c->q)) {
			q->why = "Bad q parameter in Contact";
			goto bad;
		}
		c->q_set = true;
	}
	++q->cc;
	return false;
 bad:
	q->err = EBADMSG;
	return true;
}

/* Syntax only: 0, or q->err/q->why set. */
static int req_parse(struct reg_req *q, const struct sip_msg *msg)
{
	q->msg = msg;
	if (!sip_msg_hdr(msg, SIP_HDR_TO) || !pl_isset(&msg->to.auri))
		q->why = "Missing To header";
	else if (!sip_msg_hdr(msg, SIP_HDR_FROM) || !pl_isset(&msg->from.auri))
		q->why = "Missing From header";
	else if (!pl_isset(&msg->callid))
		q->why = "Missing Call-ID header";
	else if (!sip_msg_hdr(msg, SIP_HDR_CSEQ) ||
		 pl_strcmp(&msg->cseq.met, "REGISTER"))
		q->why = "Missing or bad CSeq header";
	else if (sip_msg_hdr_count(msg, SIP_HDR_EXPIRES) > 1)
		q->why = "More than one Expires header";
	if (q->why)
		return q->err = EBADMSG;

	if (pl_isset(&msg->expires) || sip_msg_hdr(msg, SIP_HDR_EXPIRES)) {
		if (delta_parse(&msg->expires, &q->expires)) {
			q->why = "Bad Expires header";
			return q->err = EBADMSG;
		}
		q->has_expires = true;
	}
	(void)sip_msg_hdr_apply(msg, true, SIP_HDR_CONTACT, contact_h, q);
	if (q->err)
		return q->err;
	if (q->star && (q->cc || !q->has_expires || q->expires)) {
		q->why = q->cc ? "Contact * combined with other contacts" :
			"Contact * needs Expires: 0";
		return q->err = EBADMSG;
	}
	return 0;
}

struct auth_find {
	const char *realm;
	struct httpauth_digest_resp resp;
	bool found, bad;
};

static bool auth_h(const struct sip_hdr *hdr, const struct sip_msg *msg,
		   void *arg)
{
	struct auth_find *af = arg;
	struct httpauth_digest_resp resp;
	(void)msg;

	if (httpauth_digest_response_decode(&resp, &hdr->val)) {
		af->bad = true;
		return false;
	}
	if (pl_strcmp(&resp.realm, af->realm))
		return false;          /* for another hop */
	af->resp = resp;
	af->found = true;
	return true;
}

/* 0: MSG carries valid credentials of ACC (Authorization, or with PROXY
 * Proxy-Authorization); otherwise the reply has been sent. */
static int digest_auth(struct registrar *r, const struct sip_msg *msg,
		       const struct account *acc, bool proxy)
{
	struct auth_find af;
	char src[64];
	int err;

	memset(&af, 0, sizeof(af));
	af.realm = r->realm;
	(void)sip_msg_hdr_apply(msg, true, proxy ? SIP_HDR_PROXY_AUTHORIZATION :
				SIP_HDR_AUTHORIZATION, auth_h, &af);
	if (!af.found) {
		if (af.bad) {
			(void)reply(r, msg, 400, "Bad Authorization header");
			return EBADMSG;
		}
		challenge(r, msg, false, proxy);
		return EAUTH;
	}
	if (pl_strcmp(&af.resp.username, acc->user)) {
		log_info("registrar: [%.*s] %s: user '%.*s' may not register "
			 "'%s'", (int)msg->callid.l, msg->callid.p,
			 src_str(msg, src, sizeof(src)),
			 (int)af.resp.username.l, af.resp.username.p,
			 acc->user);
		(void)reply(r, msg, 403, proxy ?
			    "Username does not match From user" :
			    "Username does not match To user");
		return EPERM;
	}
	if (pl_isset(&af.resp.qop) && (pl_strcasecmp(&af.resp.qop, "auth") ||
				       !pl_isset(&af.resp.nc) ||
				       !pl_isset(&af.resp.cnonce))) {
		(void)reply(r, msg, 400, "Bad qop, nc or cnonce");
		return EBADMSG;
	}
	/* The digest is checked even with a nonce we do not accept: right
	 * credentials on an old or foreign (previous process) nonce earn
	 * stale=true, so the client retries on its own instead of failing. */
	err = httpauth_digest_response_auth(&af.resp, &msg->met, acc->ha1);
	if (nonce_check(r, &af.resp.nonce)) {
		challenge(r, msg, err == 0, proxy);
		return EAUTH;
	}
	if (err) {
		log_info("registrar: [%.*s] %s: wrong credentials for '%s'",
			 (int)msg->callid.l, msg->callid.p,
			 src_str(msg, src, sizeof(src)),
			 acc->user);
		(void)reply(r, msg, 403, "Wrong credentials");
		return EPERM;
	}
	return 0;
}

static int req_auth(struct registrar *r, struct reg_req *q)
{
	return digest_auth(r, q->msg, q->acc, false);
}

int registrar_authorize(struct registrar *r, const struct sip_msg *msg,
			const struct pl *user)
{
	const struct account *acc;

	if (!r || !msg || !user)
		return EINVAL;
	acc = account_find(r, user);
	if (!acc)
		return ENOENT;
	return digest_auth(r, msg, acc, true);
}

/* RFC 3261 10.3 step 7: a binding may only be changed by a newer request of
 * the same Call-ID, or by another Call-ID. */
static bool cseq_ok(const struct binding *b, const struct sip_msg *msg)
{
	return pl_strcmp(&msg->callid, b->callid) || msg->cseq.num > b->cseq;
}

static int binding_set(struct registrar *r, struct reg_req *q,
		       struct reg_contact *c, uint64_t now)
{
	const struct sip_msg *msg = q->msg;
	struct binding *b = c->b;
	char *callid = NULL, src[64];
	uint32_t exp = c->expires;
	int err;

	if (exp > r->max_expires)
		exp = r->max_expires;
	err = pl_strdup(&callid, &msg->callid);
	if (err)
		return err;
	if (!b) {
		b = mem_zalloc(sizeof(*b), binding_destructor);
		if (!b || pl_strdup(&b->uri, &c->uri)) {
			mem_deref(b);
			mem_deref(callid);
			return ENOMEM;
		}
		b->acc = q->acc;
		list_append(&q->acc->bindings, &b->le, b);
		++r->st.bindings;
		log_info("registrar: %s: contact %s from %s, %u s",
			 q->acc->user, b->uri, src_str(msg, src, sizeof(src)),
			 exp);
	}
	mem_deref(b->callid);
	b->callid = callid;
	b->cseq = msg->cseq.num;
	b->q = c->q;
	b->q_set = c->q_set;
	b->received = msg->src;
	b->tp = msg->tp;
	b->seq = ++r->seq;
	b->expires_at = now + (uint64_t)exp * 1000;
	tmr_start(&b->tmr, (uint64_t)exp * 1000, binding_expire_h, b);
	return 0;
}

static int contacts_print(struct re_printf *pf, void *arg)
{
	const struct account *acc = arg;
	uint64_t now = tmr_jiffies();
	struct le *le;
	int err = 0;

	for (le = acc->bindings.head; le && !err; le = le->next) {
		const struct binding *b = le->data;

		err = re_hprintf(pf, "Contact: <%s>;expires=%u", b->uri,
				 binding_remaining(b, now));
		if (!err && b->q_set)
			err = re_hprintf(pf, ";q=%u.%03u", b->q / 1000,
					 b->q % 1000);
		if (!err)
			err = re_hprintf(pf, "\r\n");
	}
	return err;
}

/* Validate every change before doing any, so a refused request changes
 * nothing; then apply and answer 200. */
static void req_apply(struct registrar *r, struct reg_req *q)
{
	const struct sip_msg *msg = q->msg;
	struct account *acc = q->acc;
	uint64_t now = tmr_jiffies();
	unsigned i, adds = 0;
	struct le *le;

	for (i = 0; i < q->cc; i++) {
		struct reg_contact *c = &q->cv[i];

		if (c->expires && c->expires < r->min_expires) {
			++r->st.too_brief;
			(void)sip_treplyf(NULL, NULL, r->sip, msg, false, 423,
					  "Interval Too Brief",
					  "Min-Expires: %u\r\n"
					  "Content-Length: 0\r\n\r\n",
					  r->min_expires);
			return;
		}
		c->b = binding_find(acc, &c->uri);
		if (c->b && !cseq_ok(c->b, msg)) {
			(void)reply(r, msg, 500, "Out of order CSeq");
			return;
		}
		if (!c->b && c->expires)
			++adds;
	}
	if (q->star) {
		for (le = acc->bindings.head; le; le = le->next) {
			if (!cseq_ok(le->data, msg)) {
				(void)reply(r, msg, 500, "Out of order CSeq");
				return;
			}
		}
	}
	if (list_count(&acc->bindings) + adds > REG_MAX_CONTACTS) {
		(void)reply(r, msg, 403, "Too Many Contacts");
		return;
	}

	if (q->star) {
		log_info("registrar: %s: all contacts removed", acc->user);
		list_flush(&acc->bindings);
	}
	for (i = 0; i < q->cc; i++) {
		struct reg_contact *c = &q->cv[i];

		/* again: an earlier Contact of this request may have added or
		 * removed the same URI */
		c->b = binding_find(acc, &c->uri);
		if (!c->expires) {
			if (c->b) {
				log_info("registrar: %s: contact %s removed",
					 acc->user, c->b->uri);
				mem_deref(c->b);
			}
			continue;
		}
		if (binding_set(r, q, c, now)) {
			(void)reply(r, msg, 500, "Out of memory");
			return;
		}
	}
	++r->st.ok;
	(void)sip_treplyf(NULL, NULL, r->sip, msg, false, 200, "OK",
			  "%HContent-Length: 0\r\n\r\n", contacts_print, acc);
}

bool registrar_handle(struct registrar *r, const struct sip_msg *msg)
{
	struct reg_req *q;

	if (!r || !msg || pl_strcmp(&msg->met, "REGISTER"))
		return false;
	++r->st.requests;
	q = mem_zalloc(sizeof(*q), NULL);   /* ~500 bytes: not on the stack */
	if (!q) {
		(void)sip_reply(r->sip, msg, 500, "Out of memory");
		return true;
	}
	if (req_parse(q, msg)) {
		(void)reply(r, msg, q->err == EOVERFLOW ? 403 : 400, q->why);
		goto out;
	}
	q->acc = account_find(r, &msg->to.uri.user);
	if (!q->acc) {
		(void)reply(r, msg, 404, "Not Found");
		goto out;
	}
	if (req_auth(r, q))
		goto out;
	req_apply(r, q);
 out:
	mem_deref(q);
	return true;
}
