/*
 * proc.h: what every tally daemon does between reading its configuration
 * and starting its work: log level and file, daemon(3) unless asked to
 * stay in the foreground, the pidfile, SIGPIPE ignored (peers hang up on
 * sockets), libre initialised with its output routed into tally's log.
 */
#ifndef TALLY_PROC_H
#define TALLY_PROC_H

#include <stdbool.h>

struct proc_opts {
	const char *prog;        /* "tally-sip": messages */
	int log_level;
	const char *log_file;    /* "" = stderr */
	bool foreground;
	const char *pidfile;     /* "" = none */
};

/* 0, or the exit status main() should return (the reason is printed). */
int proc_start(const struct proc_opts *o);

/* Remove the pidfile (after libre_close). */
void proc_stop(const struct proc_opts *o);

#endif
