/*
 * fuzz_bencode.c: libFuzzer harness for the ng protocol's bencode decoder.
 *
 * Decodes the input, walks the whole tree through the public accessors the
 * daemon uses (dict lookups, int-or-string, flag lists), and re-encodes it
 * with the writer; a re-encoded document must decode to the same shape.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "bencode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int encode(struct mbuf *mb, const struct benc_node *n)
{
	const struct benc_node *c;
	int err;

	switch (n->type) {

	case BENC_STR:
		return benc_pl(mb, &n->s);

	case BENC_INT:
		return benc_int(mb, n->i);

	default:
		err = n->type == BENC_DICT ? benc_dict_begin(mb) :
			benc_list_begin(mb);
		for (c = n->child; c && !err; c = c->next)
			err = encode(mb, c);
		return err ? err : benc_end(mb);
	}
}

static size_t walk(const struct benc_node *n)
{
	const struct benc_node *c;
	size_t count = 1;
	struct pl pl;
	int64_t v;

	if (n->type == BENC_DICT) {
		for (c = n->child; c && c->next; c = c->next->next) {
			char key[32];
			size_t l = c->s.l < sizeof(key) - 1 ? c->s.l :
				sizeof(key) - 1;

			memcpy(key, c->s.p, l);
			key[l] = '\0';
			(void)benc_dict_get(n, key);
			(void)benc_dict_pl(n, key, &pl);
			(void)benc_dict_int(n, key, &v);
			(void)benc_list_has(c->next, key);
			(void)benc_str_eq(c, key);
		}
	}

	if (n->type == BENC_DICT || n->type == BENC_LIST) {
		for (c = n->child; c; c = c->next)
			count += walk(c);
	}

	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct benc *doc = NULL, *doc2 = NULL;
	struct mbuf *mb = NULL;
	size_t used = 0, n1, n2;

	if (benc_decode(&doc, data, size, &used))
		return 0;

	if (used > size)
		abort();

	n1 = walk(benc_root(doc));

	mb = mbuf_alloc(size + 16);
	if (!mb || encode(mb, benc_root(doc)))
		goto out;

	/* canonical re-encoding: same bytes as consumed, same tree */
	if (mb->end != used || memcmp(mb->buf, data, used))
		abort();
	if (benc_decode(&doc2, mb->buf, mb->end, NULL))
		abort();
	n2 = walk(benc_root(doc2));
	if (n1 != n2)
		abort();

 out:
	mem_deref(doc2);
	mem_deref(mb);
	mem_deref(doc);
	return 0;
}
