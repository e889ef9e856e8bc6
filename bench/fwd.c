/*
 * fwd: the bench's bare UDP forwarder, the practical floor of a userspace
 * RTP relay.
 *
 * For every configured pair it owns two sockets, one facing party A and
 * one facing party B. Whatever arrives on A's socket is sent, from B's
 * socket, to B's address, and the other way round. One thread, one epoll
 * set (level-triggered), recvmmsg and sendmmsg with batches of 32, and no
 * per-packet work beyond filling the sendmmsg vector: no parsing, no
 * latching, no counters, no lookups. Anything a real relay does on top of
 * this (RTP parsing, stats, source checks, timers, control plane) is what
 * the bench's "relay - fwd" difference measures.
 *
 * Replication mode: a pair may name a recorder address per direction; then
 * every packet is also sent a second time, to that recorder, in the same
 * sendmmsg call (the floor of "relay plus one copy").
 *
 * Control: lines on stdin, one reply line per command on stdout.
 *   pair A_IP:A_PORT B_IP:B_PORT [RECA_IP:PORT RECB_IP:PORT]
 *        -> "PA PB" (the ports of the A-facing and B-facing sockets;
 *           RECA receives copies of what A sends, RECB of what B sends)
 *   go   -> "ok" (nothing else is read; forwarding runs until SIGTERM)
 *
 * Worked example: "pair 127.0.0.1:41000 127.0.0.1:41002" -> "35001 35002";
 * a packet from A to 127.0.0.1:35001 leaves 127.0.0.1:35002 for
 * 127.0.0.1:41002.
 */

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BATCH = 32, MAXPKT = 2048 };

struct side {
	int fd;                       /* the socket packets arrive on */
	struct side *peer;            /* borrowed: the socket they leave by */
	struct sockaddr_in dst;       /* where they go (the other party) */
	struct sockaddr_in rec;       /* copy destination if has_rec */
	bool has_rec;
};

static int epfd;

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char ip[64];
	unsigned port;

	if (sscanf(s, "%63[^:]:%u", ip, &port) != 2 || port > 65535)
		return EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : EINVAL;
}

/*
 * Open one side's socket on 127.0.0.1 (ephemeral port) and register it in
 * epoll with the side as cookie. *portp gets the port. Returns 0 or errno.
 */
static int side_open(struct side *sd, unsigned *portp)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = sd };
	int buf = 1 << 20, err;

	sd->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sd->fd < 0)
		return errno;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(sd->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (bind(sd->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(sd->fd, (struct sockaddr *)&sa, &sl) ||
	    epoll_ctl(epfd, EPOLL_CTL_ADD, sd->fd, &ev)) {
		err = errno;
		close(sd->fd);
		return err;
	}
	*portp = ntohs(sa.sin_port);
	return 0;
}

/* Parse one `pair` line and create both sides. Returns 0 or errno. */
static int pair_add(const char *args)
{
	char a[80], b[80], ra[80], rb[80];
	struct side *sa, *sb;
	unsigned pa, pb;
	int n, err;

	n = sscanf(args, "%79s %79s %79s %79s", a, b, ra, rb);
	if (n != 2 && n != 4)
		return EINVAL;
	sa = calloc(2, sizeof(*sa));
	if (!sa)
		return ENOMEM;
	sb = sa + 1;
	if ((err = parse_addr(b, &sa->dst)) || (err = parse_addr(a, &sb->dst)))
		goto out;
	if (n == 4) {
		if ((err = parse_addr(ra, &sa->rec)) ||
		    (err = parse_addr(rb, &sb->rec)))
			goto out;
		sa->has_rec = sb->has_rec = true;
	}
	sa->peer = sb;
	sb->peer = sa;
	if ((err = side_open(sa, &pa)))
		goto out;
	if ((err = side_open(sb, &pb))) {
		close(sa->fd);
		goto out;
	}
	printf("%u %u\n", pa, pb);
	fflush(stdout);
	return 0;
 out:
	free(sa);
	return err;
}

/* The whole data path: drain one socket in batches, forward each batch. */
static void side_forward(struct side *sd)
{
	static uint8_t bufs[BATCH][MAXPKT];
	static struct mmsghdr rm[BATCH], sm[2 * BATCH];
	static struct iovec riov[BATCH], siov[BATCH];
	int n, i, k;

	for (;;) {
		for (i = 0; i < BATCH; i++) {
			riov[i].iov_base = bufs[i];
			riov[i].iov_len = MAXPKT;
			rm[i].msg_hdr.msg_iov = &riov[i];
			rm[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(sd->fd, rm, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (i = 0, k = 0; i < n; i++) {
			siov[i].iov_base = bufs[i];
			siov[i].iov_len = rm[i].msg_len;
			memset(&sm[k].msg_hdr, 0, sizeof(sm[k].msg_hdr));
			sm[k].msg_hdr.msg_name = &sd->dst;
			sm[k].msg_hdr.msg_namelen = sizeof(sd->dst);
			sm[k].msg_hdr.msg_iov = &siov[i];
			sm[k].msg_hdr.msg_iovlen = 1;
			k++;
			if (sd->has_rec) {
				sm[k].msg_hdr = sm[k - 1].msg_hdr;
				sm[k].msg_hdr.msg_name = &sd->rec;
				k++;
			}
		}
		/* a datagram sendmmsg cannot send is dropped, as a relay would */
		for (i = 0; i < k;) {
			int s = sendmmsg(sd->peer->fd, sm + i, (unsigned)(k - i), 0);

			if (s <= 0) {
				if (s < 0 && errno == EINTR)
					continue;
				i++;
				continue;
			}
			i += s;
		}
		if (n < BATCH)
			return;
	}
}

int main(void)
{
	struct epoll_event ev[64];
	struct rlimit rl;
	char line[512];
	int n, i, err;

	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		perror("fwd: epoll_create1");
		return 1;
	}
	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "pair ", 5)) {
			err = pair_add(line + 5);
			if (err) {
				printf("error %s\n", strerror(err));
				fflush(stdout);
			}
		}
		else if (!strncmp(line, "go", 2)) {
			printf("ok\n");
			fflush(stdout);
			break;
		}
	}
	for (;;) {
		n = epoll_wait(epfd, ev, 64, -1);
		if (n < 0 && errno != EINTR)
			return 1;
		for (i = 0; i < n; i++)
			side_forward(ev[i].data.ptr);
	}
}
