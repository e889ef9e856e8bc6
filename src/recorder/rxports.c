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
 *
 * The bitmap only knows our own sessions. Another program on the machine
 * may hold a port of the range (a softphone, a benchmark with thousands of
 * sockets), and the receive thread's bind would then fail after the
 * session was accepted: a 500. With a probe address set
 * (rxports_probe()), a candidate block is first bound port by port and
 * closed again; a block with a port in use is passed over (counted in
 * busy) for the next one. A program could still take a port between the
 * probe and the bind: that one session then fails as before.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "recd.h"

enum { PROBE_MAX = 64 };   /* blocks probed per request at the most */

struct rxports {
	uint16_t min;            /* even */
	unsigned npairs;
	unsigned cursor;
	unsigned nfree;
	uint8_t *used;           /* one byte per pair */
	struct sa probe;         /* where the streams bind; unset: no probe */
	uint64_t busy;           /* blocks passed over: a port was in use */
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

void rxports_probe(struct rxports *p, const struct sa *addr)
{
	if (p && addr)
		p->probe = *addr;
}

uint64_t rxports_busy(const struct rxports *p)
{
	return p ? p->busy : 0;
}

/* Can every port of pairs START..START+N-1 be bound now? */
static bool block_bindable(const struct rxports *p, unsigned start, unsigned n)
{
	unsigned k;

	for (k = 0; k < 2 * n; k++) {
		struct sa a = p->probe;
		int fd = socket(sa_af(&a), SOCK_DGRAM | SOCK_CLOEXEC, 0);
		bool ok;

		if (fd < 0)
			return true;     /* cannot tell: let the bind say */
		sa_set_port(&a, (uint16_t)(p->min + 2 * start + k));
		ok = bind(fd, &a.u.sa, a.len) == 0;
		close(fd);
		if (!ok)
			return false;
	}
	return true;
}

int rxports_get(struct rxports *p, unsigned n, uint16_t *base)
{
	unsigned tries, i, probed = 0;

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
		if (sa_isset(&p->probe, SA_ADDR) &&
		    !block_bindable(p, start, n)) {
			++p->busy;
			if (++probed >= PROBE_MAX)
				break;
			continue;
		}
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
