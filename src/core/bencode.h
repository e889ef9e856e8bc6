/*
 * bencode.h: decode and encode bencode, the framing of rtpengine's ng protocol.
 *
 * Decoding builds a tree of nodes in one arena owned by a struct benc (a libre
 * mem object); strings are not copied: they point into the document's private
 * copy of the input, so the caller may free its buffer right after decoding.
 * A document is bounded (depth 32, 16384 nodes) so garbage cannot exhaust memory
 * or the stack.
 *
 * Worked example: "d7:command4:pinge" decodes to
 *   DICT(count=1) -> STR "command" -> STR "ping"
 * In a DICT the children alternate key, value, key, value (count = pairs).
 *
 * Encoding appends to a libre mbuf; the writer is a handful of functions that
 * emit tokens, so a reply is written top-down with begin/end pairs.
 */
#ifndef TALLY_BENCODE_H
#define TALLY_BENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <re.h>

enum benc_type { BENC_STR, BENC_INT, BENC_LIST, BENC_DICT };

enum { BENC_MAX_DEPTH = 32, BENC_MAX_NODES = 16384 };

struct benc_node {
	enum benc_type type;
	struct pl s;              /* BENC_STR: the bytes (not NUL-terminated) */
	int64_t i;                /* BENC_INT */
	struct benc_node *child;  /* LIST/DICT: first element */
	struct benc_node *next;   /* next sibling */
	size_t count;             /* LIST: elements; DICT: key/value pairs */
};

struct benc;

/*
 * Decode one bencoded value from buf[0..len).
 * docp: receives a new document (mem object, caller derefs) on success.
 * used: if not NULL, receives the bytes consumed (trailing bytes are allowed
 *       and left to the caller to judge).
 * Returns 0, EINVAL (bad args), EBADMSG (malformed: bad token, leading zero
 * or "-0" integer, integer overflow, odd dict, non-string dict key, truncated),
 * E2BIG (deeper than BENC_MAX_DEPTH or more than BENC_MAX_NODES nodes),
 * ENOMEM.
 */
int benc_decode(struct benc **docp, const uint8_t *buf, size_t len,
		size_t *used);

/* Root node of a decoded document (never NULL for a decoded doc). */
const struct benc_node *benc_root(const struct benc *doc);

/* Value for KEY in DICT, or NULL if absent or DICT is not a dict. */
const struct benc_node *benc_dict_get(const struct benc_node *dict,
				      const char *key);
/* String value for KEY: 0 and *pl set, ENOENT if absent, EPROTO if not a string. */
int benc_dict_pl(const struct benc_node *dict, const char *key, struct pl *pl);
/* Integer value for KEY; a decimal string value is accepted too (Kamailio
 * sends some numbers as strings). 0, ENOENT, EPROTO. */
int benc_dict_int(const struct benc_node *dict, const char *key, int64_t *v);
/* True if node N is a string equal to S (case-sensitive). */
bool benc_str_eq(const struct benc_node *n, const char *s);
/* True if LIST (a list node) holds a string equal to S (case-insensitive,
 * '-' and ' ' treated as equal: rtpengine flags are spelled both ways). */
bool benc_list_has(const struct benc_node *list, const char *s);

/* Writer: append tokens to MB. All return 0 or ENOMEM. */
int benc_dict_begin(struct mbuf *mb);
int benc_list_begin(struct mbuf *mb);
int benc_end(struct mbuf *mb);
int benc_str(struct mbuf *mb, const char *s);
int benc_strn(struct mbuf *mb, const char *s, size_t len);
int benc_pl(struct mbuf *mb, const struct pl *pl);
int benc_int(struct mbuf *mb, int64_t v);
/* key + value shorthands for dict members */
int benc_kv_str(struct mbuf *mb, const char *key, const char *val);
int benc_kv_pl(struct mbuf *mb, const char *key, const struct pl *val);
int benc_kv_int(struct mbuf *mb, const char *key, int64_t val);

#endif
