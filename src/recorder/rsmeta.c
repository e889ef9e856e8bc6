/*
 * rsmeta.c: SIPREC recording metadata (RFC 7865) applied document by
 * document to one recording session's model (see rsmeta.h for the
 * contract). libxml2 builds a tree of each document; the tree is walked
 * into a working copy of the model, which replaces the caller's model only
 * when the whole document was understood, so a bad document changes
 * nothing.
 *
 * What is read: <datamode>, <session session_id> (its first sipSessionID),
 * <participant participant_id> (first nameID: aor, <name>), <stream
 * stream_id session_id> (<label>), <participantsessionassoc> and
 * <participantstreamassoc>. Elements must be in the recording namespace
 * (urn:ietf:params:xml:ns:recording:1) or in none (sloppy SRCs); elements
 * in other namespaces (call-center, vendor data) and unknown elements are
 * skipped. <group>, <sessionrecordingassoc>, times other than
 * disassociate-time, and a session's stop-time are not modelled.
 *
 * How documents combine (RFC 7865 datamode, RFC 8068 call flows):
 * - No <datamode> means "complete"; another value than complete/partial
 *   (any case) is EBADMSG.
 * - A complete document replaces the model: participants and streams it
 *   does not mention are forgotten (a REFER transfer's new snapshot has only
 *   Bob and Carol). Only the count of applied documents carries over.
 *   session.json has no time axis, so earlier mappings are kept only in the
 *   metadata-NNN.xml files the daemon stores.
 * - A partial document updates by id: a <participant> or <stream> with a
 *   known id overwrites the fields it carries, an unknown id is added.
 * - <participantsessionassoc> with <disassociate-time> removes that session
 *   from the participant; when it is in no session any more it has left
 *   (left, left_time). Without it, the participant is (re)associated and
 *   left is cleared. A turret participant in two sessions leaving one of
 *   them has not left.
 * - <participantstreamassoc> WITHOUT <disassociate-time> is the
 *   participant's whole current stream association: its send and recv
 *   lists are both replaced by the <send> and <recv> it lists, and a kind
 *   it does not list becomes empty. Why: in the RFC 8068 s3.2.2 hold
 *   re-INVITE Alice's element lists only <recv> (on hold she sends
 *   nothing) and Bob's only <send>; the resume re-INVITE lists all of them
 *   again. Were an absent <send> "unchanged", the hold update would change
 *   nothing. Participants without such an element keep their lists.
 * - <participantstreamassoc> WITH <disassociate-time> removes the streams
 *   it lists from the participant's lists.
 * - A participant named only in an association (no <participant> yet) is
 *   created with empty AOR and name, so the association is not lost.
 * - Objects (session, participant, stream) are read before associations,
 *   so a document out of schema order applies the same.
 * - A partial document before any document at all is applied as complete
 *   and reported as a warning in *why (RFC 7866 s9.2: the SRS could also
 *   ask for a snapshot).
 * - A send/recv stream_id that names no stream is kept (a later document
 *   may declare it); rsmeta_check refuses it and rsmeta_to_sessfile leaves
 *   it out. The RFC 8068 s3.2.3 re-INVITE-based transfer is such a case.
 *
 * Worked example: RFC 7865 s8.1 (complete) gives Bob send=[i1Pz.., UAAM..]
 * recv=[8zc6.., EiXG..] and Paul the reverse; as labels Bob send=[97,96]
 * recv=[98,99], Paul send=[98,99] recv=[96,97]. s8.2 (partial) restates Bob
 * and disassociates him from session hVpd..: Bob left at
 * 2010-12-16T23:41:07Z, his stream lists and Paul unchanged.
 *
 * The draft form (draft-ietf-siprec-metadata before RFC 7865, still sent
 * by AudioCodes Mediant, Oracle/Acme Packet and BroadWorks SRCs) is read
 * too: namespace urn:ietf:params:xml:ns:recording (no ":1"), ids in an `id`
 * attribute (session, participant, stream), a stream's session in
 * `session`, and a participant's <send>/<recv> inside <participant> (each
 * the stream id as text, or in an <id> child) with its session in a
 * `session` attribute. For example (AudioCodes 7.40A, abridged):
 *
 *   <recording xmlns="urn:ietf:params:xml:ns:recording">
 *     <session id="0000-0000-0000-0000-f5be9a848c0c5be5">...</session>
 *     <participant id="+14158536006" session="0000-...-f5be9a848c0c5be5">
 *       <nameID aor="+14158536006@10.0.0.1"><name>+14158536006</name>
 *       </nameID><send>1000000000000001</send><recv>...</recv>
 *     </participant>
 *     <stream id="1000000000000001" session="0000-..."><label>1</label>
 *     </stream> ...
 *
 * reads as participant "+14158536006" associated with that session,
 * sending the stream labelled 1. The RFC names win where both are given.
 *
 * Limits (EBADMSG with a reason): 256 KiB per document; no DTD (this also
 * rules out entity expansion); ids under SF_ID_MAX bytes without blanks or
 * control characters; at most SF_PARTS_MAX participants, 2*SF_STREAMS_MAX
 * streams, SF_REFS_MAX send or recv references and SF_REFS_MAX sessions
 * per participant. AOR, name and sipSessionID are cut at SF_TEXT_MAX-1
 * bytes on a UTF-8 character boundary, control characters in them become
 * spaces. Applying the same document twice gives the same model but for
 * the count of documents (the fuzz harness checks it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include "rsmeta.h"

enum {
	RSM_MAX_SIZE = 256 * 1024,
	RSM_STREAMS_MAX = SF_STREAMS_MAX * 2,
};

static const char rec_ns[] = "urn:ietf:params:xml:ns:recording:1";
/* the draft form's namespace (see the top of this file) */
static const char rec_ns_draft[] = "urn:ietf:params:xml:ns:recording";

/* one document being applied to a working copy of the model */
struct apply {
	struct rsmeta *w;
	const char *why;
};

/* a bounded, trimmed string being collected */
struct sbuf {
	char *buf;
	size_t size;
	size_t len;       /* bytes written */
	size_t keep;      /* length up to the last non-blank */
	bool trunc;
};

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void sb_add(struct sbuf *sb, const xmlChar *s)
{
	for (; s && *s; s++) {
		unsigned char c = *s;

		if (!sb->len && is_space(c))
			continue;
		if (sb->len + 1 >= sb->size) {
			if (!is_space(c))
				sb->trunc = true;
			continue;
		}
		sb->buf[sb->len++] = (char)c;
		if (!is_space(c))
			sb->keep = sb->len;
	}
}

/* The length of BUF[0..K) without a UTF-8 sequence cut short at its end. */
static size_t utf8_cut(const char *buf, size_t k)
{
	size_t i = k, need;
	unsigned char lead;

	while (i > 0 && ((unsigned char)buf[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0)
		return 0;
	lead = (unsigned char)buf[i - 1];
	if (lead < 0xc0)
		return k;
	need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
	return k - (i - 1) < need ? i - 1 : k;
}

/* Terminate; TEXT: free text (cut on a character, controls blanked).
 * 0, or ENAMETOOLONG if it did not fit. */
static int sb_end(struct sbuf *sb, bool text)
{
	size_t k = sb->keep, i;

	if (sb->trunc && text)
		k = utf8_cut(sb->buf, k);
	sb->buf[k] = '\0';

	if (text) {
		for (i = 0; i < k; i++) {
			unsigned char c = (unsigned char)sb->buf[i];

			if (c < 0x20 || c == 0x7f)
				sb->buf[i] = ' ';
		}
	}

	return sb->trunc ? ENAMETOOLONG : 0;
}

/* The text and CDATA children of N (not deeper), trimmed, into BUF. */
static int node_text(const xmlNode *n, char *buf, size_t size, bool text)
{
	struct sbuf sb = {.buf = buf, .size = size};
	const xmlNode *c;

	for (c = n->children; c; c = c->next) {
		if (c->type == XML_TEXT_NODE ||
		    c->type == XML_CDATA_SECTION_NODE)
			sb_add(&sb, c->content);
	}

	return sb_end(&sb, text);
}

static bool rec_elem(const xmlNode *n, const char *name)
{
	if (!n || n->type != XML_ELEMENT_NODE || !n->name)
		return false;
	if (n->ns && (!n->ns->href ||
		      (strcmp((const char *)n->ns->href, rec_ns) &&
		       strcmp((const char *)n->ns->href, rec_ns_draft))))
		return false;

	return strcmp((const char *)n->name, name) == 0;
}

static const xmlNode *rec_child(const xmlNode *n, const char *name)
{
	const xmlNode *c;

	for (c = n->children; c; c = c->next) {
		if (rec_elem(c, name))
			return c;
	}

	return NULL;
}

/* An id: 0, ENOENT (absent or empty), ENAMETOOLONG or EINVAL (blanks or
 * control characters inside). */
static int id_check(const char *id)
{
	const unsigned char *s;

	if (!id[0])
		return ENOENT;
	for (s = (const unsigned char *)id; *s; s++) {
		if (*s <= 0x20 || *s == 0x7f)
			return EINVAL;
	}

	return 0;
}

/* Attribute NAME (no namespace) of N into SB, without allocating (so an
 * allocation failure cannot pass for a missing attribute). */
static bool attr_text(const xmlNode *n, const char *name, struct sbuf *sb)
{
	const xmlAttr *at;
	const xmlNode *c;

	for (at = n->properties; at; at = at->next) {
		if (at->ns || !at->name ||
		    strcmp((const char *)at->name, name))
			continue;
		for (c = at->children; c; c = c->next) {
			if (c->type == XML_TEXT_NODE)
				sb_add(sb, c->content);
		}
		return true;
	}

	return false;
}

static int id_attr(const xmlNode *n, const char *attr, char *buf)
{
	struct sbuf sb = {.buf = buf, .size = SF_ID_MAX};
	int err;

	buf[0] = '\0';
	if (!attr_text(n, attr, &sb))
		return ENOENT;
	err = sb_end(&sb, false);

	return err ? err : id_check(buf);
}

/* ATTR, else the draft form's name DRAFT for it (see the top). */
static int id_attr2(const xmlNode *n, const char *attr, const char *draft,
		    char *buf)
{
	int err = id_attr(n, attr, buf);

	return err == ENOENT ? id_attr(n, draft, buf) : err;
}

/* A required id attribute (ATTR, or the draft form's "id"); MISSING is
 * the reason if it is absent. */
static int need_id(struct apply *a, const xmlNode *n, const char *attr,
		   char *buf, const char *missing)
{
	int err = id_attr2(n, attr, "id", buf);

	if (err == ENOENT)
		a->why = missing;
	else if (err == ENAMETOOLONG)
		a->why = "metadata: id too long";
	else if (err)
		a->why = "metadata: bad id";

	return err ? EBADMSG : 0;
}

static void str_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static struct rsm_participant *part_find(const struct rsmeta *m,
					 const char *id)
{
	size_t i;

	for (i = 0; i < m->nparts; i++) {
		if (!strcmp(m->parts[i].id, id))
			return (struct rsm_participant *)&m->parts[i];
	}

	return NULL;
}

/* The participant ID, added if new; NULL if there is no room. */
static struct rsm_participant *part_get(struct apply *a, const char *id)
{
	struct rsm_participant *p = part_find(a->w, id);

	if (p)
		return p;

	if (a->w->nparts >= SF_PARTS_MAX) {
		a->why = "metadata: too many participants";
		return NULL;
	}

	p = &a->w->parts[a->w->nparts++];
	memset(p, 0, sizeof(*p));
	str_copy(p->id, sizeof(p->id), id);
	return p;
}

static struct rsm_stream *stream_find(const struct rsmeta *m, const char *id)
{
	size_t i;

	for (i = 0; i < m->nstreams; i++) {
		if (!strcmp(m->streams[i].id, id))
			return (struct rsm_stream *)&m->streams[i];
	}

	return NULL;
}

static int do_session(struct apply *a, const xmlNode *n)
{
	struct rsmeta *w = a->w;
	char sid[SF_ID_MAX];
	const xmlNode *c;

	if (need_id(a, n, "session_id", sid,
		    "metadata: session without session_id"))
		return EBADMSG;

	/* the first CS is the one the model describes; a turret RS
	 * records more, and their ids are not kept */
	if (!w->session_id[0])
		str_copy(w->session_id, sizeof(w->session_id), sid);
	if (strcmp(w->session_id, sid))
		return 0;

	c = rec_child(n, "sipSessionID");
	if (c)
		(void)node_text(c, w->sip_session_id,
				sizeof(w->sip_session_id), true);

	return 0;
}

/* P is (again) in session SESS: associated, not left. */
static int part_join(struct apply *a, struct rsm_participant *p,
		     const char *sess)
{
	size_t i;

	for (i = 0; i < p->nsessions; i++) {
		if (!strcmp(p->sessions[i], sess))
			break;
	}
	if (i == p->nsessions) {
		if (p->nsessions >= SF_REFS_MAX) {
			a->why = "metadata: too many sessions for a "
				"participant";
			return EBADMSG;
		}
		str_copy(p->sessions[p->nsessions], SF_ID_MAX, sess);
		p->nsessions++;
	}
	p->left = false;
	p->left_time[0] = '\0';
	return 0;
}

static bool ref_has(char (*refs)[SF_ID_MAX], size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!strcmp(refs[i], id))
			return true;
	}

	return false;
}

static void ref_remove(char (*refs)[SF_ID_MAX], size_t *n, const char *id)
{
	size_t i;

	for (i = 0; i < *n; i++) {
		if (strcmp(refs[i], id))
			continue;
		if (i + 1 < *n)
			memmove(refs[i], refs[i + 1],
				(*n - i - 1) * SF_ID_MAX);
		memset(refs[--(*n)], 0, SF_ID_MAX);
		return;
	}
}

/* The stream ids in N's <send> and <recv> children (the text, or the
 * draft form's <id> child), each list without repeats. SEND and RECV are
 * zeroed first (no stack garbage in the model: two equal histories give
 * byte-equal models). */
struct refs {
	char send[SF_REFS_MAX][SF_ID_MAX], recv[SF_REFS_MAX][SF_ID_MAX];
	size_t nsend, nrecv;
};

static int read_refs(struct apply *a, const xmlNode *n, struct refs *r)
{
	char ref[SF_ID_MAX];
	const xmlNode *c, *id;

	memset(r, 0, sizeof(*r));
	for (c = n->children; c; c = c->next) {
		bool is_send = rec_elem(c, "send");
		char (*refs)[SF_ID_MAX] = is_send ? r->send : r->recv;
		size_t *nrefs = is_send ? &r->nsend : &r->nrecv;

		if (!is_send && !rec_elem(c, "recv"))
			continue;

		id = rec_child(c, "id");
		if (node_text(id ? id : c, ref, sizeof(ref), false) ||
		    id_check(ref)) {
			a->why = "metadata: bad stream reference";
			return EBADMSG;
		}
		if (ref_has(refs, *nrefs, ref))
			continue;
		if (*nrefs >= SF_REFS_MAX) {
			a->why = "metadata: too many streams for a "
				"participant";
			return EBADMSG;
		}
		str_copy(refs[(*nrefs)++], SF_ID_MAX, ref);
	}

	return 0;
}

/* P's whole current stream association is R. */
static void refs_set(struct rsm_participant *p, const struct refs *r)
{
	memcpy(p->send, r->send, sizeof(r->send));
	p->nsend = r->nsend;
	memcpy(p->recv, r->recv, sizeof(r->recv));
	p->nrecv = r->nrecv;
}

/* The draft form's associations inside <participant>: its `session`
 * attribute joins it to that session; <send>/<recv> children, if any, are
 * its whole stream association (as a participantstreamassoc would be). */
static int draft_assocs(struct apply *a, const xmlNode *n,
			struct rsm_participant *p)
{
	char sess[SF_ID_MAX];
	struct refs r;
	int err;

	err = id_attr(n, "session", sess);
	if (err != ENOENT) {
		if (err) {
			a->why = "metadata: bad id";
			return EBADMSG;
		}
		if (part_join(a, p, sess))
			return EBADMSG;
	}
	if (!rec_child(n, "send") && !rec_child(n, "recv"))
		return 0;
	if (read_refs(a, n, &r))
		return EBADMSG;
	refs_set(p, &r);
	return 0;
}

static int do_participant(struct apply *a, const xmlNode *n)
{
	struct rsm_participant *p;
	char pid[SF_ID_MAX];
	const xmlNode *nid, *name;
	struct sbuf sb;

	if (need_id(a, n, "participant_id", pid,
		    "metadata: participant without participant_id"))
		return EBADMSG;

	p = part_get(a, pid);
	if (!p)
		return EBADMSG;

	if (draft_assocs(a, n, p))
		return EBADMSG;

	nid = rec_child(n, "nameID");
	if (!nid)
		return 0;

	memset(&sb, 0, sizeof(sb));
	sb.buf = p->aor;
	sb.size = sizeof(p->aor);
	if (attr_text(nid, "aor", &sb))
		(void)sb_end(&sb, true);

	name = rec_child(nid, "name");
	if (name)
		(void)node_text(name, p->name, sizeof(p->name), true);

	return 0;
}

static int do_stream(struct apply *a, const xmlNode *n)
{
	struct rsmeta *w = a->w;
	struct rsm_stream *s;
	char sid[SF_ID_MAX], sess[SF_ID_MAX];
	const xmlNode *label;
	int err;

	if (need_id(a, n, "stream_id", sid,
		    "metadata: stream without stream_id"))
		return EBADMSG;

	s = stream_find(w, sid);
	if (!s) {
		if (w->nstreams >= RSM_STREAMS_MAX) {
			a->why = "metadata: too many streams";
			return EBADMSG;
		}
		s = &w->streams[w->nstreams++];
		memset(s, 0, sizeof(*s));
		str_copy(s->id, sizeof(s->id), sid);
	}

	err = id_attr2(n, "session_id", "session", sess);
	if (!err) {
		str_copy(s->session, sizeof(s->session), sess);
	}
	else if (err != ENOENT) {
		a->why = "metadata: bad id";
		return EBADMSG;
	}

	label = rec_child(n, "label");
	if (label && node_text(label, s->label, sizeof(s->label), false)) {
		a->why = "metadata: label too long";
		return EBADMSG;
	}

	return 0;
}

static int do_sessassoc(struct apply *a, const xmlNode *n)
{
	struct rsm_participant *p;
	char pid[SF_ID_MAX], sess[SF_ID_MAX];
	const xmlNode *dis;
	size_t i;
	int err;

	if (need_id(a, n, "participant_id", pid,
		    "metadata: participantsessionassoc without "
		    "participant_id"))
		return EBADMSG;

	/* session_id is required by the schema; without one the
	 * association is with "the" session */
	err = id_attr(n, "session_id", sess);
	if (err && err != ENOENT) {
		a->why = "metadata: bad id";
		return EBADMSG;
	}

	p = part_get(a, pid);
	if (!p)
		return EBADMSG;

	dis = rec_child(n, "disassociate-time");
	if (!dis)
		return part_join(a, p, sess);

	for (i = 0; i < p->nsessions; i++) {
		if (!strcmp(p->sessions[i], sess))
			break;
	}
	if (i + 1 < p->nsessions)
		memmove(p->sessions[i], p->sessions[i + 1],
			(p->nsessions - i - 1) * SF_ID_MAX);
	if (i < p->nsessions)
		memset(p->sessions[--p->nsessions], 0, SF_ID_MAX);
	if (!p->nsessions) {
		p->left = true;
		(void)node_text(dis, p->left_time, sizeof(p->left_time), true);
	}
	return 0;
}

static int do_streamassoc(struct apply *a, const xmlNode *n)
{
	struct rsm_participant *p;
	struct refs r;
	char pid[SF_ID_MAX];
	size_t i;

	if (need_id(a, n, "participant_id", pid,
		    "metadata: participantstreamassoc without "
		    "participant_id"))
		return EBADMSG;
	if (read_refs(a, n, &r))
		return EBADMSG;

	p = part_get(a, pid);
	if (!p)
		return EBADMSG;

	if (rec_child(n, "disassociate-time")) {
		for (i = 0; i < r.nsend; i++)
			ref_remove(p->send, &p->nsend, r.send[i]);
		for (i = 0; i < r.nrecv; i++)
			ref_remove(p->recv, &p->nrecv, r.recv[i]);
		return 0;
	}

	refs_set(p, &r);
	return 0;
}

/* libxml2 calls this at <!DOCTYPE ...>, before any declaration in it is
 * read: stop there (no DTD, no entities, no amplification). */
static void refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *eid,
		       const xmlChar *sid)
{
	(void)name;
	(void)eid;
	(void)sid;
	xmlStopParser((xmlParserCtxtPtr)ctx);
}

static int walk(struct apply *a, const xmlNode *root)
{
	const xmlNode *c;
	int err = 0;

	for (c = root->children; c && !err; c = c->next) {
		if (rec_elem(c, "session"))
			err = do_session(a, c);
		else if (rec_elem(c, "participant"))
			err = do_participant(a, c);
		else if (rec_elem(c, "stream"))
			err = do_stream(a, c);
	}
	for (c = root->children; c && !err; c = c->next) {
		if (rec_elem(c, "participantsessionassoc"))
			err = do_sessassoc(a, c);
	}
	for (c = root->children; c && !err; c = c->next) {
		if (rec_elem(c, "participantstreamassoc"))
			err = do_streamassoc(a, c);
	}

	return err;
}

int rsmeta_apply(struct rsmeta *m, const char *xml, size_t len,
		 const char **why)
{
	const char *dummy, *warn = NULL;
	struct apply a = {0};
	xmlParserCtxtPtr ctxt;
	xmlDocPtr doc = NULL;
	const xmlNode *root, *mode;
	bool complete = true;
	int err = EBADMSG;

	if (!why)
		why = &dummy;
	*why = NULL;

	if (!m || (!xml && len))
		return EINVAL;
	if (!len) {
		*why = "metadata: empty document";
		return EBADMSG;
	}
	if (len > RSM_MAX_SIZE) {
		*why = "metadata: document too large";
		return EBADMSG;
	}

	xmlInitParser();
	ctxt = xmlNewParserCtxt();
	if (!ctxt)
		return ENOMEM;
	ctxt->sax->internalSubset = refuse_dtd;

	/* no XML_PARSE_NOENT, DTDLOAD, DTDATTR, XINCLUDE or HUGE */
	doc = xmlCtxtReadMemory(ctxt, xml, (int)len, NULL, NULL,
				XML_PARSE_NONET | XML_PARSE_NOERROR |
				XML_PARSE_NOWARNING);
	if (ctxt->errNo == XML_ERR_USER_STOP) {
		a.why = "metadata: DTD not allowed";
		goto out;
	}
	if (ctxt->errNo == XML_ERR_NO_MEMORY) {
		a.why = "metadata: out of memory";
		err = ENOMEM;
		goto out;
	}
	if (!doc) {
		a.why = "metadata: not well-formed XML";
		goto out;
	}

	root = xmlDocGetRootElement(doc);
	if (!rec_elem(root, "recording")) {
		a.why = "metadata: root is not <recording>";
		goto out;
	}

	mode = rec_child(root, "datamode");
	if (mode) {
		char val[16];

		if (node_text(mode, val, sizeof(val), false) ||
		    (strcasecmp(val, "complete") &&
		     strcasecmp(val, "partial"))) {
			a.why = "metadata: unknown datamode";
			goto out;
		}
		complete = !strcasecmp(val, "complete");
	}

	a.w = malloc(sizeof(*a.w));
	if (!a.w) {
		a.why = "metadata: out of memory";
		err = ENOMEM;
		goto out;
	}

	if (!complete && !m->updates) {
		warn = "metadata: partial update before any complete "
			"document";
		complete = true;
	}

	if (complete) {
		memset(a.w, 0, sizeof(*a.w));
		a.w->updates = m->updates;
	}
	else {
		*a.w = *m;
	}

	if (walk(&a, root))
		goto out;

	a.w->updates++;
	*m = *a.w;
	err = 0;

 out:
	*why = err ? a.why : warn;
	free(a.w);
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(ctxt);
	return err;
}

const char *rsmeta_label(const struct rsmeta *m, const char *sid)
{
	const struct rsm_stream *s;

	if (!m || !sid)
		return NULL;

	s = stream_find(m, sid);
	return s && s->label[0] ? s->label : NULL;
}

int rsmeta_check(const struct rsmeta *m, const char *const *labels, size_t n,
		 const char **why)
{
	const char *dummy;
	size_t i, j;

	if (!why)
		why = &dummy;
	*why = NULL;

	if (!m || (!labels && n))
		return EINVAL;

	for (i = 0; i < m->nstreams; i++) {
		const char *label = m->streams[i].label;
		bool found = false;

		for (j = 0; j < n && label[0] && !found; j++)
			found = labels[j] && !strcmp(labels[j], label);
		if (!found) {
			*why = "metadata: stream label not in SDP";
			return EBADMSG;
		}
	}

	for (i = 0; i < m->nparts; i++) {
		const struct rsm_participant *p = &m->parts[i];

		for (j = 0; j < p->nsend + p->nrecv; j++) {
			const char *sid = j < p->nsend ? p->send[j] :
				p->recv[j - p->nsend];

			if (!stream_find(m, sid)) {
				*why = "metadata: unknown stream_id in "
					"participantstreamassoc";
				return EBADMSG;
			}
		}
	}

	return 0;
}

/* Add the label of stream SID to a label list, once. */
static void label_add(const struct rsmeta *m, const char *sid,
		      char (*labels)[SF_ID_MAX], size_t *n)
{
	const char *label = rsmeta_label(m, sid);

	if (!label || *n >= SF_REFS_MAX || ref_has(labels, *n, label))
		return;

	str_copy(labels[(*n)++], SF_ID_MAX, label);
}

void rsmeta_to_sessfile(const struct rsmeta *m, struct sessfile *sf)
{
	size_t i, j;

	if (!m || !sf)
		return;

	sf->nparts = 0;
	for (i = 0; i < m->nparts && i < SF_PARTS_MAX; i++) {
		const struct rsm_participant *p = &m->parts[i];
		struct sf_participant *sp = &sf->parts[sf->nparts++];

		memset(sp, 0, sizeof(*sp));
		str_copy(sp->id, sizeof(sp->id), p->id);
		str_copy(sp->aor, sizeof(sp->aor), p->aor);
		str_copy(sp->name, sizeof(sp->name), p->name);
		sp->left = p->left;
		str_copy(sp->left_time, sizeof(sp->left_time), p->left_time);

		for (j = 0; j < p->nsend; j++)
			label_add(m, p->send[j], sp->send, &sp->nsend);
		for (j = 0; j < p->nrecv; j++)
			label_add(m, p->recv[j], sp->recv, &sp->nrecv);
	}

	sf->has_metadata = true;
}
