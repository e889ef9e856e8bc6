/*
 * sysio.h: the packet path's system calls, without glibc's wrappers.
 *
 * In a process with threads, glibc's recvmmsg, sendmmsg and epoll_wait are
 * cancellation points: each call switches asynchronous cancellation on and
 * off around the system call (about 1.5% of a worker's CPU under load,
 * measured with perf). tally never cancels a thread, so the workers make
 * the calls directly. Same arguments and results as the glibc functions
 * (-1 and errno on failure).
 */
#ifndef TALLY_SYSIO_H
#define TALLY_SYSIO_H

#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static inline int sys_recvmmsg(int fd, struct mmsghdr *m, unsigned n,
			       int flags)
{
	return (int)syscall(SYS_recvmmsg, fd, m, n, flags, NULL);
}

static inline int sys_sendmmsg(int fd, struct mmsghdr *m, unsigned n,
			       int flags)
{
	return (int)syscall(SYS_sendmmsg, fd, m, n, flags);
}

static inline int sys_epoll_wait(int epfd, struct epoll_event *ev, int n,
				 int timeout_ms)
{
	/* epoll_pwait: every architecture has it (arm64 has no epoll_wait) */
	return (int)syscall(SYS_epoll_pwait, epfd, ev, n, timeout_ms, NULL,
			    (size_t)8);
}

#endif
