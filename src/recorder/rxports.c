/*
 * rxports.c: media port blocks. A session's streams get one run of
 * consecutive ports, even-aligned: m= line i on base+2i (RTP) and
 * base+2i+1 (RTCP). Contiguity is what lets a capture-replaying SRC (sipp's
 * pcap play keeps each packet's port offset) reach every stream, and it
 * makes a session's traffic one range in a firewall or a capture filter.
 *
 * A bitmap of pairs; allocation is first-fit from a rotating cursor so
 * a port just released is not reused at once (late packets of the old
 * session would land in the new one).
 */
#include <errno.h>
#include <string.h>
#include "recd.h"

struct rxports {
	uint16_t min;            /* even */
	unsigned npairs;
	unsigned cursor;
	unsigned nfree;
	uint8_t *used;           /* one byte per pair */
};

static void destructor(void *arg)
{
	struct rxports *p = arg;

	mem_deref(p->used);
}

int rxports_alloc(struct rxports **pp, uint16_t min, uint16_t max)
{
	struct rxports *p;

	if (min & 1)
		++min;
	if (max <= min + 1)
		return EINVAL;
	p = mem_zalloc(sizeof(*p), destructor);
	if (!p)
		return ENOMEM;
	p->min = min;
	p->npairs = (unsigned)(max - min + 1) / 2;
	p->nfree = p->npairs;
	p->used = mem_zalloc(p->npairs, NULL);
	if (!p->used) {
		mem_deref(p);
		return ENOMEM;
	}
	*pp = p;
	return 0;
}

int rxports_get(struct rxports *p, unsigned n, uint16_t *base)
{
	unsigned tries, i;

	if (!n || n > p->npairs)
		return EINVAL;
	for (tries = 0; tries < p->npairs; tries++) {
		unsigned start = (p->cursor + tries) % p->npairs;

		if (start + n > p->npairs)
			continue;
		for (i = 0; i < n && !p->used[start + i]; i++)
			;
		if (i < n)
			continue;
		memset(p->used + start, 1, n);
		p->nfree -= n;
		p->cursor = (start + n) % p->npairs;
		*base = (uint16_t)(p->min + 2 * start);
		return 0;
	}
	return ENOSPC;
}

void rxports_put(struct rxports *p, uint16_t base, unsigned n)
{
	unsigned start, i;

	if (!p || base < p->min)
		return;
	start = (unsigned)(base - p->min) / 2;
	for (i = 0; i < n && start + i < p->npairs; i++) {
		if (p->used[start + i]) {
			p->used[start + i] = 0;
			++p->nfree;
		}
	}
}

unsigned rxports_free(const struct rxports *p)
{
	return p->nfree;
}
