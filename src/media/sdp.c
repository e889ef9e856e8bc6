/*
 * sdp.c: tally-media's transparent SDP model (see sdp.h for the contract).
 *
 * The text is split into lines once; parsing only records where things are
 * (ports, addresses, attributes of interest) and never changes a line, so the
 * writer can copy every line it does not own byte for byte. Lines end in LF or
 * CRLF on input and always in CRLF on output. Empty lines are dropped.
 *
 * Which m= sections are relayed (msdp_media_relayed): active (port != 0) and
 * either audio/video or a proto containing "RTP". The rewrite gives a relayed
 * section our port and address; a=rtcp becomes "a=rtcp:<port>" WITHOUT an
 * address (RFC 3605: the address is then the c= address, which is ours).
 * Any other active section (m=application 5000 UDP/BFCP, m=image ... udptl)
 * is NOT relayed: its lines are kept, and if it relied on the session c=
 * (which now names us) the original address is pinned with a media-level c=
 * so that stream keeps flowing end to end. A port-0 section keeps its port;
 * only its c= (if any) is rewritten so no peer address leaks.
 * "m=audio 4000/2" is relayed as one port pair: the rewrite writes no "/2".
 *
 * Worked example (rw: addr 192.0.2.1, port 30000, rtcp 30001, mux off):
 *   v=0                                 v=0
 *   o=- 1 2 IN IP4 10.0.0.5             o=- 1 2 IN IP4 192.0.2.1 (replace_origin)
 *   s=-                                 s=-
 *   t=0 0                               t=0 0
 *   m=audio 4000 RTP/AVP 0              m=audio 30000 RTP/AVP 0
 *   c=IN IP4 10.0.0.5                   c=IN IP4 192.0.2.1
 *   a=rtcp-mux                          (dropped: mux off)
 *   a=candidate:1 1 UDP 1 10.0.0.5 ...  (dropped: ice_remove)
 *   a=sendrecv                          a=sendrecv
 *                                       a=rtcp:30001 (added)
 */
#include <string.h>
#include <ctype.h>
#include <sys/socket.h>
#include "sdp.h"

/* The parsed document; struct msdp is its first member, so the pointer the
 * caller holds is the mem object itself. */
struct msdp_doc {
	struct msdp pub;
	char *buf;                          /* private copy of the text */
	struct pl o_prefix;                 /* "o=<user> <id> <version>" */
	int sess_af;                        /* session c= address family */
	bool media_c[MSDP_MAX_MEDIA];       /* the section has its own c= */
};

static const char *ice_attrs[] = {
	"candidate", "ice-ufrag", "ice-pwd", "ice-options", "ice-lite",
	"ice-mismatch", "end-of-candidates", "remote-candidates",
};

/* Attributes msdp_compose_offer copies from the source section. */
static const char *codec_attrs[] = {
	"rtpmap", "fmtp", "rtcp-fb", "ptime", "maxptime", "framerate",
	"imageattr", "ssrc", "extmap",
};

static const char *dir_names[] = {
	[MSDP_DIR_SENDRECV] = "sendrecv",
	[MSDP_DIR_SENDONLY] = "sendonly",
	[MSDP_DIR_RECVONLY] = "recvonly",
	[MSDP_DIR_INACTIVE] = "inactive",
};

static void doc_destructor(void *arg)
{
	struct msdp_doc *doc = arg;

	mem_deref(doc->pub.lines);
	mem_deref(doc->buf);
}

const char *msdp_dir_name(enum msdp_dir dir)
{
	if (dir <= MSDP_DIR_NONE || dir > MSDP_DIR_INACTIVE)
		return NULL;

	return dir_names[dir];
}

static enum msdp_dir dir_from_name(const struct pl *name)
{
	int d;

	for (d = MSDP_DIR_SENDRECV; d <= MSDP_DIR_INACTIVE; d++) {
		if (!pl_strcmp(name, dir_names[d]))
			return (enum msdp_dir)d;
	}

	return MSDP_DIR_NONE;
}

/* Split "a=<name>[:<value>]"; false if LINE is not an attribute line. */
static bool attr_split(const struct pl *line, struct pl *name, struct pl *val)
{
	const char *colon;

	if (line->l < 3 || line->p[0] != 'a' || line->p[1] != '=')
		return false;

	name->p = line->p + 2;
	name->l = line->l - 2;
	val->p  = line->p + line->l;
	val->l  = 0;

	colon = memchr(name->p, ':', name->l);
	if (colon) {
		val->p  = colon + 1;
		val->l  = name->l - (size_t)(val->p - name->p);
		name->l = (size_t)(colon - name->p);
	}

	return true;
}

static bool name_in(const struct pl *name, const char **list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!pl_strcmp(name, list[i]))
			return true;
	}

	return false;
}

static bool is_ice_line(const struct pl *line)
{
	struct pl name, val;

	return attr_split(line, &name, &val) &&
		name_in(&name, ice_attrs, ARRAY_SIZE(ice_attrs));
}

/* Next space-separated token of *REST; false at the end. */
static bool next_tok(struct pl *rest, struct pl *tok)
{
	while (rest->l && rest->p[0] == ' ') {
		++rest->p;
		--rest->l;
	}

	if (!rest->l)
		return false;

	tok->p = rest->p;
	while (rest->l && rest->p[0] != ' ') {
		++rest->p;
		--rest->l;
	}
	tok->l = (size_t)(rest->p - tok->p);

	return true;
}

/* Strict decimal: digits only, at most 19 of them. */
static bool pl_to_u64(const struct pl *s, uint64_t *vp)
{
	uint64_t v = 0;
	size_t i;

	if (!s->l || s->l > 19)
		return false;

	for (i = 0; i < s->l; i++) {
		if (!isdigit((unsigned char)s->p[i]))
			return false;
		v = v * 10 + (uint64_t)(s->p[i] - '0');
	}

	*vp = v;
	return true;
}

static int parse_port(const struct pl *s, uint16_t *port, const char **why,
		      const char *bad)
{
	uint64_t v;

	if (!pl_to_u64(s, &v)) {
		*why = bad;
		return EBADMSG;
	}

	if (v > 65535) {
		*why = "port > 65535";
		return EBADMSG;
	}

	*port = (uint16_t)v;
	return 0;
}

/* "c=IN IP4 <addr>[/ttl[/n]]" */
static int parse_c(const struct pl *line, struct pl *addr, int *af,
		   const char **why)
{
	struct pl rest = {line->p + 2, line->l - 2};
	struct pl net, type, a, extra;
	const char *slash;

	if (!next_tok(&rest, &net) || !next_tok(&rest, &type) ||
	    !next_tok(&rest, &a) || next_tok(&rest, &extra) ||
	    pl_strcmp(&net, "IN")) {
		*why = "malformed c= line";
		return EBADMSG;
	}

	if (!pl_strcmp(&type, "IP4")) {
		*af = AF_INET;
	}
	else if (!pl_strcmp(&type, "IP6")) {
		*af = AF_INET6;
	}
	else {
		*why = "c= line with unknown address type";
		return EBADMSG;
	}

	slash = memchr(a.p, '/', a.l);
	if (slash)
		a.l = (size_t)(slash - a.p);

	if (!a.l) {
		*why = "malformed c= line";
		return EBADMSG;
	}

	*addr = a;
	return 0;
}

/* "o=<user> <sess-id> <sess-version> IN IP4|IP6 <addr>" */
static int parse_o(struct msdp_doc *doc, const struct pl *line,
		   const char **why)
{
	struct pl rest = {line->p + 2, line->l - 2};
	struct pl user, id, ver, net, type, addr, extra;

	if (!next_tok(&rest, &user) || !next_tok(&rest, &id) ||
	    !next_tok(&rest, &ver) || !next_tok(&rest, &net) ||
	    !next_tok(&rest, &type) || !next_tok(&rest, &addr) ||
	    next_tok(&rest, &extra) ||
	    !pl_to_u64(&ver, &doc->pub.sess_version)) {
		*why = "malformed o= line";
		return EBADMSG;
	}

	doc->o_prefix.p = line->p;
	doc->o_prefix.l = (size_t)(ver.p + ver.l - line->p);
	doc->pub.origin_addr = addr;
	return 0;
}

/* "m=<media> <port>[/<n>] <proto> [<fmt> ...]" */
static int parse_m(struct msdp_media *m, const struct pl *line,
		   const char **why)
{
	struct pl rest = {line->p + 2, line->l - 2};
	struct pl port, nports = PL_INIT;
	const char *slash;
	uint64_t n;
	int err;

	if (!next_tok(&rest, &m->media)) {
		*why = "malformed m= line";
		return EBADMSG;
	}

	if (!next_tok(&rest, &port)) {
		*why = "m= line without port";
		return EBADMSG;
	}

	slash = memchr(port.p, '/', port.l);
	if (slash) {
		nports.p = slash + 1;
		nports.l = port.l - (size_t)(nports.p - port.p);
		port.l   = (size_t)(slash - port.p);
	}

	err = parse_port(&port, &m->port, why, "malformed m= port");
	if (err)
		return err;

	m->nports = 1;
	if (slash) {
		if (!pl_to_u64(&nports, &n) || n == 0 || n > 65535) {
			*why = "malformed m= port count";
			return EBADMSG;
		}
		m->nports = (unsigned)n;
	}

	if (!next_tok(&rest, &m->proto)) {
		*why = "m= line without proto";
		return EBADMSG;
	}

	/* the formats: everything after the proto, spaces trimmed */
	while (rest.l && rest.p[0] == ' ') {
		++rest.p;
		--rest.l;
	}
	while (rest.l && rest.p[rest.l - 1] == ' ')
		--rest.l;
	m->fmts = rest;

	if (!pl_strcmp(&m->media, "audio"))
		m->kind = MSDP_AUDIO;
	else if (!pl_strcmp(&m->media, "video"))
		m->kind = MSDP_VIDEO;
	else
		m->kind = MSDP_OTHER;

	return 0;
}

/* A media-level line other than m=. */
static int parse_media_line(struct msdp_doc *doc, struct msdp_media *m,
			    const struct pl *line, const char **why)
{
	struct pl name, val, tok;
	enum msdp_dir dir;

	if (line->p[0] == 'c') {
		doc->media_c[doc->pub.nmedia - 1] = true;
		return parse_c(line, &m->addr, &m->af, why);
	}

	if (!attr_split(line, &name, &val))
		return 0;

	if (!pl_strcmp(&name, "rtcp")) {
		struct pl rest = val;

		struct pl net, type, addr;
		int err;

		if (!next_tok(&rest, &tok)) {
			*why = "malformed a=rtcp line";
			return EBADMSG;
		}
		err = parse_port(&tok, &m->rtcp_port, why,
				 "malformed a=rtcp line");
		if (err)
			return err;

		/* optional "IN IP4 <addr>" (RFC 3605) */
		if (next_tok(&rest, &net) && next_tok(&rest, &type) &&
		    next_tok(&rest, &addr))
			m->rtcp_addr = addr;
		return 0;
	}

	if (!pl_strcmp(&name, "rtcp-mux")) {
		m->rtcp_mux = true;
		return 0;
	}

	if (!pl_strcmp(&name, "label")) {
		m->label = val;
		return 0;
	}

	if (!pl_strcmp(&name, "mid")) {
		m->mid = val;
		return 0;
	}

	dir = dir_from_name(&name);
	if (dir != MSDP_DIR_NONE && !val.l)
		m->dir = dir;

	return 0;
}

static int parse_session_line(struct msdp_doc *doc, const struct pl *line,
			      bool *have_o, bool *have_s, const char **why)
{
	struct pl name, val;
	enum msdp_dir dir;

	switch (line->p[0]) {

	case 'o':
		if (*have_o) {
			*why = "more than one o= line";
			return EBADMSG;
		}
		*have_o = true;
		return parse_o(doc, line, why);

	case 's':
		*have_s = true;
		return 0;

	case 'c':
		return parse_c(line, &doc->pub.sess_addr, &doc->sess_af, why);

	case 'a':
		if (attr_split(line, &name, &val) && !val.l) {
			dir = dir_from_name(&name);
			if (dir != MSDP_DIR_NONE)
				doc->pub.sess_dir = dir;
		}
		return 0;

	default:
		return 0;
	}
}

/* Split the private copy into lines; empty lines are skipped. */
static int split_lines(struct msdp_doc *doc, size_t len, const char **why)
{
	struct msdp *sdp = &doc->pub;
	const char *p = doc->buf, *end = doc->buf + len;
	size_t n = 0;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		p = doc->buf;
		n = 0;

		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;
			size_t l = (size_t)(le - p);

			if (l && p[l - 1] == '\r')
				--l;

			if (l) {
				if (n >= MSDP_MAX_LINES) {
					*why = "more than MSDP_MAX_LINES lines";
					return EBADMSG;
				}
				if (pass == 1) {
					sdp->lines[n].p = p;
					sdp->lines[n].l = l;
				}
				++n;
			}

			p = nl ? nl + 1 : end;
		}

		if (pass == 0) {
			if (!n) {
				*why = "empty SDP";
				return EBADMSG;
			}
			sdp->lines = mem_zalloc(n * sizeof(*sdp->lines), NULL);
			if (!sdp->lines)
				return ENOMEM;
		}
	}

	sdp->nlines = n;
	return 0;
}

/* Effective address, direction and sanity of every m= section. */
static int finish_media(struct msdp_doc *doc, const char **why)
{
	struct msdp *sdp = &doc->pub;
	size_t i;

	for (i = 0; i < sdp->nmedia; i++) {
		struct msdp_media *m = &sdp->media[i];

		if (!doc->media_c[i] && sdp->sess_addr.l) {
			m->addr = sdp->sess_addr;
			m->af   = doc->sess_af;
		}

		if (m->port && !m->addr.l) {
			*why = "no connection address for an active m= line";
			return EBADMSG;
		}

		if (m->dir == MSDP_DIR_NONE)
			m->dir = sdp->sess_dir != MSDP_DIR_NONE ?
				sdp->sess_dir : MSDP_DIR_SENDRECV;
	}

	return 0;
}

int msdp_parse(struct msdp **sdpp, const struct pl *text, const char **why)
{
	const char *dummy;
	struct msdp_doc *doc;
	struct msdp *sdp;
	struct msdp_media *m = NULL;
	bool have_o = false, have_s = false;
	size_t i;
	int err;

	if (!why)
		why = &dummy;
	*why = NULL;

	if (!sdpp || !text || (!text->p && text->l))
		return EINVAL;

	if (text->l > MSDP_MAX_SIZE) {
		*why = "SDP larger than MSDP_MAX_SIZE";
		return EBADMSG;
	}

	doc = mem_zalloc(sizeof(*doc), doc_destructor);
	if (!doc)
		return ENOMEM;
	sdp = &doc->pub;

	doc->buf = mem_alloc(text->l ? text->l : 1, NULL);
	if (!doc->buf) {
		err = ENOMEM;
		goto out;
	}
	if (text->l)
		memcpy(doc->buf, text->p, text->l);

	err = split_lines(doc, text->l, why);
	if (err)
		goto out;

	for (i = 0; i < sdp->nlines; i++) {
		const struct pl *line = &sdp->lines[i];

		if (line->l < 2 || !isalpha((unsigned char)line->p[0]) ||
		    line->p[1] != '=') {
			*why = "line not <letter>=<value>";
			err = EBADMSG;
			goto out;
		}

		if (i == 0 && line->p[0] != 'v') {
			*why = "missing v= line";
			err = EBADMSG;
			goto out;
		}

		if (line->p[0] == 'm') {
			if (sdp->nmedia >= MSDP_MAX_MEDIA) {
				*why = "more than 16 m= lines";
				err = EBADMSG;
				goto out;
			}

			if (m)
				m->line_count = i - m->line_first;
			else
				sdp->session_count = i;

			m = &sdp->media[sdp->nmedia++];
			m->line_first = i;

			err = parse_m(m, line, why);
		}
		else if (m) {
			err = parse_media_line(doc, m, line, why);
		}
		else {
			err = parse_session_line(doc, line, &have_o, &have_s,
						 why);
		}

		if (err)
			goto out;
	}

	if (m)
		m->line_count = sdp->nlines - m->line_first;
	else
		sdp->session_count = sdp->nlines;

	if (!have_o) {
		*why = "missing o= line";
		err = EBADMSG;
		goto out;
	}

	if (!have_s) {
		*why = "missing s= line";
		err = EBADMSG;
		goto out;
	}

	err = finish_media(doc, why);

 out:
	if (err)
		mem_deref(doc);
	else
		*sdpp = sdp;

	return err;
}

static bool pl_contains(const struct pl *pl, const char *s)
{
	size_t n = strlen(s), i;

	for (i = 0; n && i + n <= pl->l; i++) {
		if (!memcmp(pl->p + i, s, n))
			return true;
	}

	return false;
}

bool msdp_media_relayed(const struct msdp_media *m)
{
	if (!m || !m->port)
		return false;

	return m->kind != MSDP_OTHER || pl_contains(&m->proto, "RTP");
}

static const char *ipver(int af)
{
	return af == AF_INET6 ? "IP6" : "IP4";
}

static int write_line(struct mbuf *out, const struct pl *line)
{
	return mbuf_printf(out, "%r\r\n", line);
}

static int write_mline(struct mbuf *out, const struct msdp_media *m,
		       uint16_t port, const struct pl *proto)
{
	return mbuf_printf(out, "m=%r %u %r%s%r\r\n", &m->media, port, proto,
			   m->fmts.l ? " " : "", &m->fmts);
}

static int rewrite_session(struct mbuf *out, const struct msdp_doc *doc,
			   const struct msdp_rw *rw)
{
	const struct msdp *sdp = &doc->pub;
	size_t i;
	int err = 0;

	for (i = 0; i < sdp->session_count && !err; i++) {
		const struct pl *line = &sdp->lines[i];

		if (line->p[0] == 'o' && rw->replace_origin)
			err = mbuf_printf(out, "%r IN %s %s\r\n",
					  &doc->o_prefix, ipver(rw->af),
					  rw->addr);
		else if (line->p[0] == 'c')
			err = mbuf_printf(out, "c=IN %s %s\r\n",
					  ipver(rw->af), rw->addr);
		else if (rw->ice_remove && is_ice_line(line))
			continue;
		else
			err = write_line(out, line);
	}

	return err;
}

/* What a media section's rewrite still has to add. */
struct mwrite {
	bool relayed;
	bool add_c;           /* add our c= (no session c=, none of its own) */
	bool pin_c;           /* not relayed: pin the original session c= */
	bool keep_c;          /* not relayed but active: its c= is kept */
	bool rtcp_done;
	bool dir_done;
	bool mux_done;
};

static int rewrite_media_line(struct mbuf *out, const struct msdp_rw *rw,
			      const struct msdp_rw_media *rwm,
			      struct mwrite *w, const struct pl *line)
{
	struct pl name, val;
	bool attr;

	if (rw->ice_remove && is_ice_line(line))
		return 0;

	if (line->p[0] == 'c') {
		if (w->keep_c)
			return write_line(out, line);
		return mbuf_printf(out, "c=IN %s %s\r\n", ipver(rw->af),
				   rw->addr);
	}

	attr = attr_split(line, &name, &val);
	if (!w->relayed || !attr)
		return write_line(out, line);

	if (!pl_strcmp(&name, "rtcp")) {
		if (!rwm->rtcp_port || w->rtcp_done)
			return 0;
		w->rtcp_done = true;
		return mbuf_printf(out, "a=rtcp:%u\r\n", rwm->rtcp_port);
	}

	if (!pl_strcmp(&name, "rtcp-mux")) {
		if (!rwm->mux || w->mux_done)
			return 0;
		w->mux_done = true;
		return write_line(out, line);
	}

	if (rwm->dir != MSDP_DIR_NONE && !val.l &&
	    dir_from_name(&name) != MSDP_DIR_NONE) {
		if (w->dir_done)
			return 0;
		w->dir_done = true;
		return mbuf_printf(out, "a=%s\r\n", msdp_dir_name(rwm->dir));
	}

	return write_line(out, line);
}

static int rewrite_media(struct mbuf *out, const struct msdp_doc *doc,
			 size_t idx, const struct msdp_rw *rw)
{
	const struct msdp_media *m = &doc->pub.media[idx];
	const struct msdp_rw_media *rwm = &rw->media[idx];
	const struct pl *lines = &doc->pub.lines[m->line_first];
	struct mwrite w = {0};
	size_t i;
	int err;

	w.relayed = msdp_media_relayed(m);
	if (w.relayed)
		w.add_c = !doc->media_c[idx] && !doc->pub.sess_addr.l;
	else if (m->port) {
		w.keep_c = true;
		w.pin_c  = !doc->media_c[idx];  /* it used the session c= */
	}

	if (w.relayed)
		err = write_mline(out, m, rwm->port, &m->proto);
	else
		err = write_line(out, &lines[0]);

	/* a c= we add belongs after m= and i= (never rewritten) */
	for (i = 1; i < m->line_count && lines[i].p[0] == 'i' && !err; i++)
		err = write_line(out, &lines[i]);
	if (err)
		return err;

	if (w.add_c)
		err = mbuf_printf(out, "c=IN %s %s\r\n", ipver(rw->af),
				  rw->addr);
	else if (w.pin_c)
		err = mbuf_printf(out, "c=IN %s %r\r\n", ipver(doc->sess_af),
				  &doc->pub.sess_addr);

	for (; i < m->line_count && !err; i++)
		err = rewrite_media_line(out, rw, rwm, &w, &lines[i]);

	if (!err && w.relayed && rwm->rtcp_port && !w.rtcp_done)
		err = mbuf_printf(out, "a=rtcp:%u\r\n", rwm->rtcp_port);

	if (!err && w.relayed && rwm->mux && rwm->add_mux && !w.mux_done)
		err = mbuf_printf(out, "a=rtcp-mux\r\n");

	if (!err && w.relayed && rwm->dir != MSDP_DIR_NONE && !w.dir_done)
		err = mbuf_printf(out, "a=%s\r\n", msdp_dir_name(rwm->dir));

	return err;
}

static bool af_ok(int af)
{
	return af == AF_INET || af == AF_INET6;
}

int msdp_rewrite(struct mbuf *out, const struct msdp *sdp,
		 const struct msdp_rw *rw)
{
	const struct msdp_doc *doc = (const struct msdp_doc *)sdp;
	size_t i;
	int err;

	if (!out || !sdp || !rw || !rw->addr || !af_ok(rw->af) ||
	    rw->nmedia != sdp->nmedia || (sdp->nmedia && !rw->media))
		return EINVAL;

	err = rewrite_session(out, doc, rw);

	for (i = 0; i < sdp->nmedia && !err; i++)
		err = rewrite_media(out, doc, i, rw);

	return err;
}

/* The recorder gets plain RTP: DTLS/SDES are not copied, so a secure proto
 * becomes its plain equivalent (feedback profile kept). */
static struct pl plain_proto(const struct pl *proto)
{
	struct pl p;

	if (!pl_contains(proto, "SAVP") && !pl_contains(proto, "TLS"))
		return *proto;

	if (proto->l && proto->p[proto->l - 1] == 'F')
		pl_set_str(&p, "RTP/AVPF");
	else
		pl_set_str(&p, "RTP/AVP");

	return p;
}

static int compose_pick(struct mbuf *out, const struct msdp_offer *offer,
			const struct msdp_pick *pick)
{
	const struct msdp_media *m = &pick->sdp->media[pick->index];
	const struct pl *lines = &pick->sdp->lines[m->line_first];
	struct pl proto = plain_proto(&m->proto);
	size_t i;
	int err;

	err = write_mline(out, m, pick->port, &proto);
	err |= mbuf_printf(out, "c=IN %s %s\r\n", ipver(offer->af),
			   offer->addr);

	for (i = 1; i < m->line_count && !err; i++) {
		struct pl name, val;

		if (attr_split(&lines[i], &name, &val) &&
		    name_in(&name, codec_attrs, ARRAY_SIZE(codec_attrs)))
			err = write_line(out, &lines[i]);
	}
	if (err)
		return err;

	err = mbuf_printf(out, "a=rtcp:%u\r\n", pick->port + 1);
	if (pick->label)
		err |= mbuf_printf(out, "a=label:%s\r\n", pick->label);
	err |= mbuf_printf(out, "a=sendonly\r\n");

	return err ? ENOMEM : 0;
}

int msdp_compose_offer(struct mbuf *out, const struct msdp_offer *offer)
{
	size_t i;
	int err;

	if (!out || !offer || !offer->addr || !af_ok(offer->af) ||
	    !offer->picks || !offer->npicks)
		return EINVAL;

	for (i = 0; i < offer->npicks; i++) {
		const struct msdp_pick *pick = &offer->picks[i];

		if (!pick->sdp || pick->index >= pick->sdp->nmedia ||
		    pick->port == 0 || pick->port == 65535)
			return EINVAL;
	}

	err = mbuf_printf(out, "v=0\r\n"
			  "o=tally %llu %llu IN %s %s\r\n"
			  "s=tally\r\n"
			  "t=0 0\r\n",
			  (unsigned long long)offer->sess_id,
			  (unsigned long long)offer->sess_version,
			  ipver(offer->af), offer->addr);

	for (i = 0; i < offer->npicks && !err; i++)
		err = compose_pick(out, offer, &offer->picks[i]);

	return err;
}
