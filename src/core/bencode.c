/*
 * bencode.c: strict bencode decoder and a token writer for the ng protocol.
 *
 * Grammar (BitTorrent BEP 3, as rtpengine speaks it):
 *   value := "i" int "e" | len ":" bytes | "l" value* "e" | "d" (str value)* "e"
 *   int   := "0" | ["-"] [1-9][0-9]*         (no "-0", no leading zeros)
 *   len   := "0" | [1-9][0-9]*
 *
 * Decoding runs the same recursive descent twice: a counting pass that
 * validates the whole input and counts its nodes, then a building pass that
 * fills an arena of exactly that many nodes. One allocation for all nodes,
 * no pointer fix-ups, and a malformed document never allocates an arena.
 * Depth is bounded by BENC_MAX_DEPTH, so recursion cannot exhaust the stack.
 *
 * Worked example: "d3:foold1:xi-7eee" (the first pass counts 6 nodes)
 *   nodes[0] DICT count=1 child=&nodes[1]
 *   nodes[1] STR "foo"    next=&nodes[2]
 *   nodes[2] LIST count=1 child=&nodes[3]
 *   nodes[3] DICT count=1 child=&nodes[4]
 *   nodes[4] STR "x"      next=&nodes[5]
 *   nodes[5] INT -7
 */
#include <string.h>
#include <ctype.h>
#include "bencode.h"

struct benc {
	uint8_t *buf;              /* private copy of the decoded bytes */
	struct benc_node *nodes;   /* arena, nnodes entries */
	size_t nnodes;
};

/* Decoder state shared by both passes; nodes == NULL means "count only". */
struct bdec {
	const uint8_t *p;
	const uint8_t *end;
	struct benc_node *nodes;
	size_t n;                  /* nodes used (or counted) so far */
	size_t max;                /* arena size in the building pass */
};

static void benc_destructor(void *arg)
{
	struct benc *doc = arg;

	mem_deref(doc->buf);
	mem_deref(doc->nodes);
}

static struct benc_node *node_new(struct bdec *d, int *err)
{
	struct benc_node *n;

	if (d->n >= BENC_MAX_NODES) {
		*err = E2BIG;
		return NULL;
	}

	if (!d->nodes) {
		++d->n;
		return NULL;
	}

	/* cannot happen: the first pass counted exactly this many */
	if (d->n >= d->max) {
		*err = EBADMSG;
		return NULL;
	}

	n = &d->nodes[d->n++];
	memset(n, 0, sizeof(*n));
	return n;
}

/* Parse an unsigned decimal up to TERM; strict about leading zeros. */
static int dec_uint(struct bdec *d, uint8_t term, uint64_t limit,
		    uint64_t *vp)
{
	const uint8_t *start = d->p;
	uint64_t v = 0;

	while (d->p < d->end && isdigit(*d->p)) {
		unsigned digit = *d->p - '0';

		if (v > (limit - digit) / 10)
			return EBADMSG;   /* overflow */

		v = v * 10 + digit;
		++d->p;
	}

	if (d->p == start)
		return EBADMSG;
	if (d->p - start > 1 && *start == '0')
		return EBADMSG;
	if (d->p >= d->end || *d->p != term)
		return EBADMSG;

	++d->p;   /* the terminator */
	*vp = v;
	return 0;
}

static int dec_int(struct bdec *d, struct benc_node *n)
{
	bool neg = false;
	uint64_t v;
	int err;

	++d->p;   /* 'i' */

	if (d->p < d->end && *d->p == '-') {
		neg = true;
		++d->p;
	}

	err = dec_uint(d, 'e', neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX, &v);
	if (err)
		return err;

	if (neg && v == 0)
		return EBADMSG;   /* "-0" */

	if (n) {
		n->type = BENC_INT;
		if (neg)
			n->i = (v == (uint64_t)INT64_MAX + 1) ?
				INT64_MIN : -(int64_t)v;
		else
			n->i = (int64_t)v;
	}

	return 0;
}

static int dec_str(struct bdec *d, struct benc_node *n)
{
	uint64_t len;
	int err;

	err = dec_uint(d, ':', SIZE_MAX, &len);
	if (err)
		return err;

	if (len > (uint64_t)(d->end - d->p))
		return EBADMSG;   /* truncated */

	if (n) {
		n->type = BENC_STR;
		n->s.p  = (const char *)d->p;
		n->s.l  = (size_t)len;
	}

	d->p += len;
	return 0;
}

static int dec_value(struct bdec *d, struct benc_node *n, unsigned depth);

/* A list or dict body: values until 'e'. In a dict even positions must be
 * strings and the count of values must be even. */
static int dec_container(struct bdec *d, struct benc_node *n, bool dict,
			 unsigned depth)
{
	struct benc_node *last = NULL;
	size_t nvals = 0;
	int err = 0;

	if (depth > BENC_MAX_DEPTH)
		return E2BIG;

	++d->p;   /* 'l' or 'd' */

	for (;;) {
		struct benc_node *c;

		if (d->p >= d->end)
			return EBADMSG;   /* truncated */

		if (*d->p == 'e') {
			++d->p;
			break;
		}

		if (dict && (nvals % 2) == 0 && !isdigit(*d->p))
			return EBADMSG;   /* non-string key */

		c = node_new(d, &err);
		if (err)
			return err;

		err = dec_value(d, c, depth);
		if (err)
			return err;

		if (n) {
			if (last)
				last->next = c;
			else
				n->child = c;
			last = c;
		}
		++nvals;
	}

	if (dict && (nvals % 2) != 0)
		return EBADMSG;   /* key without a value */

	if (n) {
		n->type  = dict ? BENC_DICT : BENC_LIST;
		n->count = dict ? nvals / 2 : nvals;
	}

	return 0;
}

static int dec_value(struct bdec *d, struct benc_node *n, unsigned depth)
{
	if (d->p >= d->end)
		return EBADMSG;

	switch (*d->p) {

	case 'i':
		return dec_int(d, n);

	case 'l':
		return dec_container(d, n, false, depth + 1);

	case 'd':
		return dec_container(d, n, true, depth + 1);

	default:
		if (isdigit(*d->p))
			return dec_str(d, n);
		return EBADMSG;
	}
}

static int dec_root(struct bdec *d)
{
	struct benc_node *root;
	int err = 0;

	root = node_new(d, &err);
	if (err)
		return err;

	return dec_value(d, root, 0);
}

int benc_decode(struct benc **docp, const uint8_t *buf, size_t len,
		size_t *used)
{
	struct bdec d = {0};
	struct benc *doc;
	size_t consumed;
	int err;

	if (!docp || (!buf && len))
		return EINVAL;

	if (!len)
		return EBADMSG;

	/* pass 1: validate and count */
	d.p   = buf;
	d.end = buf + len;
	err = dec_root(&d);
	if (err)
		return err;

	consumed = (size_t)(d.p - buf);

	doc = mem_zalloc(sizeof(*doc), benc_destructor);
	if (!doc)
		return ENOMEM;

	doc->buf = mem_alloc(consumed ? consumed : 1, NULL);
	doc->nodes = mem_alloc(d.n * sizeof(*doc->nodes), NULL);
	if (!doc->buf || !doc->nodes) {
		err = ENOMEM;
		goto out;
	}
	memcpy(doc->buf, buf, consumed);
	doc->nnodes = d.n;

	/* pass 2: build over the private copy */
	d.p     = doc->buf;
	d.end   = doc->buf + consumed;
	d.nodes = doc->nodes;
	d.max   = doc->nnodes;
	d.n     = 0;
	err = dec_root(&d);
	if (err)
		goto out;

	if (used)
		*used = consumed;

 out:
	if (err)
		mem_deref(doc);
	else
		*docp = doc;

	return err;
}

const struct benc_node *benc_root(const struct benc *doc)
{
	return doc ? &doc->nodes[0] : NULL;
}

const struct benc_node *benc_dict_get(const struct benc_node *dict,
				      const char *key)
{
	const struct benc_node *k;

	if (!dict || dict->type != BENC_DICT || !key)
		return NULL;

	for (k = dict->child; k && k->next; k = k->next->next) {
		if (benc_str_eq(k, key))
			return k->next;
	}

	return NULL;
}

int benc_dict_pl(const struct benc_node *dict, const char *key, struct pl *pl)
{
	const struct benc_node *v = benc_dict_get(dict, key);

	if (!v)
		return ENOENT;
	if (v->type != BENC_STR)
		return EPROTO;

	if (pl)
		*pl = v->s;

	return 0;
}

/* Strict signed decimal from a string value: [-]digits, no overflow. */
static int str_to_int(const struct pl *s, int64_t *vp)
{
	bool neg = false;
	uint64_t v = 0, limit;
	size_t i = 0;

	if (s->l && s->p[0] == '-') {
		neg = true;
		i = 1;
	}

	if (i >= s->l)
		return EPROTO;

	limit = neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX;

	for (; i < s->l; i++) {
		unsigned digit;

		if (!isdigit((unsigned char)s->p[i]))
			return EPROTO;

		digit = s->p[i] - '0';
		if (v > (limit - digit) / 10)
			return EPROTO;

		v = v * 10 + digit;
	}

	if (neg)
		*vp = (v == (uint64_t)INT64_MAX + 1) ? INT64_MIN : -(int64_t)v;
	else
		*vp = (int64_t)v;

	return 0;
}

int benc_dict_int(const struct benc_node *dict, const char *key, int64_t *v)
{
	const struct benc_node *n = benc_dict_get(dict, key);
	int64_t x;
	int err;

	if (!n)
		return ENOENT;

	if (n->type == BENC_INT) {
		x = n->i;
	}
	else if (n->type == BENC_STR) {
		err = str_to_int(&n->s, &x);
		if (err)
			return err;
	}
	else {
		return EPROTO;
	}

	if (v)
		*v = x;

	return 0;
}

bool benc_str_eq(const struct benc_node *n, const char *s)
{
	size_t len;

	if (!n || n->type != BENC_STR || !s)
		return false;

	len = strlen(s);

	return n->s.l == len && (len == 0 || !memcmp(n->s.p, s, len));
}

static int flag_char(int c)
{
	if (c == '-')
		return ' ';

	return tolower(c);
}

bool benc_list_has(const struct benc_node *list, const char *s)
{
	const struct benc_node *e;
	size_t len;

	if (!list || list->type != BENC_LIST || !s)
		return false;

	len = strlen(s);

	for (e = list->child; e; e = e->next) {
		size_t i;

		if (e->type != BENC_STR || e->s.l != len)
			continue;

		for (i = 0; i < len; i++) {
			if (flag_char((unsigned char)e->s.p[i]) !=
			    flag_char((unsigned char)s[i]))
				break;
		}

		if (i == len)
			return true;
	}

	return false;
}

int benc_dict_begin(struct mbuf *mb)
{
	return mbuf_write_u8(mb, 'd');
}

int benc_list_begin(struct mbuf *mb)
{
	return mbuf_write_u8(mb, 'l');
}

int benc_end(struct mbuf *mb)
{
	return mbuf_write_u8(mb, 'e');
}

int benc_strn(struct mbuf *mb, const char *s, size_t len)
{
	int err;

	if (!mb)
		return EINVAL;

	err = mbuf_printf(mb, "%zu:", len);
	if (!err && len)
		err = mbuf_write_mem(mb, (const uint8_t *)s, len);

	return err;
}

int benc_str(struct mbuf *mb, const char *s)
{
	return benc_strn(mb, s, s ? strlen(s) : 0);
}

int benc_pl(struct mbuf *mb, const struct pl *pl)
{
	return benc_strn(mb, pl ? pl->p : NULL, pl ? pl->l : 0);
}

int benc_int(struct mbuf *mb, int64_t v)
{
	if (!mb)
		return EINVAL;

	return mbuf_printf(mb, "i%llie", (long long)v);
}

int benc_kv_str(struct mbuf *mb, const char *key, const char *val)
{
	int err = benc_str(mb, key);

	return err ? err : benc_str(mb, val);
}

int benc_kv_pl(struct mbuf *mb, const char *key, const struct pl *val)
{
	int err = benc_str(mb, key);

	return err ? err : benc_pl(mb, val);
}

int benc_kv_int(struct mbuf *mb, const char *key, int64_t val)
{
	int err = benc_str(mb, key);

	return err ? err : benc_int(mb, val);
}
