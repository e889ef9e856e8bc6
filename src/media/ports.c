/*
 * ports.c: the media port range (--port-min..--port-max) and the sockets
 * bound on it.
 *
 * Ports are handed out in RTP/RTCP pairs, RTP even, RTCP = RTP + 1, round
 * robin through the range so a port just freed is not reused at once (late
 * packets of an old call must not land in a new one). A port another program
 * holds is skipped: bind() tells, and the pool moves on. Control thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "log.h"
#include "media.h"

struct portpool {
	struct sa iface;
	uint16_t min, max;        /* min even, max odd */
	uint32_t next;            /* next RTP port to try */
	uint8_t *used;            /* one byte per pair */
	unsigned npairs, nused;
	int rcvbuf;
};

static void pool_destructor(void *arg)
{
	struct portpool *pp = arg;

	mem_deref(pp->used);
}

static void msock_destructor(void *arg)
{
	struct msock *ms = arg;

	if (ms->fd >= 0)
		close(ms->fd);
	if (ms->pool && ms->pair_idx >= 0 && ms->pool->used[ms->pair_idx]) {
		ms->pool->used[ms->pair_idx] = 0;
		--ms->pool->nused;
	}
}

int portpool_alloc(struct portpool **ppp, const struct sa *iface,
		   uint16_t min, uint16_t max, uint32_t rcvbuf_kb)
{
	struct portpool *pp;

	if (!ppp || !iface)
		return EINVAL;
	if (min & 1)
		++min;
	if (!(max & 1))
		--max;
	if (min == 0 || max <= min)
		return EINVAL;

	pp = mem_zalloc(sizeof(*pp), pool_destructor);
	if (!pp)
		return ENOMEM;
	pp->iface = *iface;
	pp->min = min;
	pp->max = max;
	pp->next = min;
	pp->npairs = (unsigned)(max - min + 1) / 2;
	pp->rcvbuf = (int)rcvbuf_kb * 1024;
	pp->used = mem_zalloc(pp->npairs, NULL);
	if (!pp->used) {
		mem_deref(pp);
		return ENOMEM;
	}
	*ppp = pp;
	return 0;
}

static int sock_bind(struct portpool *pp, uint16_t port, int *fdp)
{
	struct sa local = pp->iface;
	int fd, one = 1, err = 0;

	fd = socket(sa_af(&local), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	sa_set_port(&local, port);
	if (bind(fd, &local.u.sa, local.len) < 0) {
		err = errno;
		close(fd);
		return err;
	}
	/* overload is counted, not hidden: the kernel reports its drops */
	(void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
	if (pp->rcvbuf > 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &pp->rcvbuf,
				 sizeof(pp->rcvbuf));
	*fdp = fd;
	return 0;
}

static int msock_new(struct msock **msp, int fd, uint16_t port,
		     enum msock_role role)
{
	struct msock *ms = mem_zalloc(sizeof(*ms), msock_destructor);

	if (!ms)
		return ENOMEM;
	ms->fd = fd;
	ms->port = port;
	ms->role = role;
	ms->pair_idx = -1;
	*msp = ms;
	return 0;
}

int portpool_pair(struct portpool *pp, struct msock **rtpp,
		  struct msock **rtcpp)
{
	unsigned tries;

	if (!pp || !rtpp || !rtcpp)
		return EINVAL;

	for (tries = 0; tries < pp->npairs; tries++) {
		uint16_t port = (uint16_t)pp->next;
		unsigned idx = (unsigned)(port - pp->min) / 2;
		struct msock *a = NULL, *b = NULL;
		int fa = -1, fb = -1;

		pp->next += 2;
		if (pp->next > pp->max)
			pp->next = pp->min;
		if (pp->used[idx])
			continue;
		if (sock_bind(pp, port, &fa))
			continue;
		if (sock_bind(pp, (uint16_t)(port + 1), &fb)) {
			close(fa);
			continue;
		}
		if (msock_new(&a, fa, port, MSOCK_RTP)) {
			close(fa);
			close(fb);
			return ENOMEM;
		}
		if (msock_new(&b, fb, (uint16_t)(port + 1), MSOCK_RTCP)) {
			close(fb);
			mem_deref(a);
			return ENOMEM;
		}
		/* the RTP socket holds the pair: it is free again when that goes */
		a->pool = pp;
		a->pair_idx = (int)idx;
		pp->used[idx] = 1;
		++pp->nused;
		*rtpp = a;
		*rtcpp = b;
		return 0;
	}
	return EADDRINUSE;
}

unsigned portpool_used(const struct portpool *pp)
{
	return pp ? pp->nused * 2 : 0;
}

unsigned portpool_size(const struct portpool *pp)
{
	return pp ? pp->npairs * 2 : 0;
}
