/*
 * proc.c: the daemons' shared start-up sequence (proc.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <re.h>
#include "log.h"
#include "proc.h"

int proc_start(const struct proc_opts *o)
{
	int err;

	log_level_set(o->log_level);
	if (o->log_file && o->log_file[0] && (err = log_open_file(o->log_file))) {
		fprintf(stderr, "%s: cannot open log %s: %s\n", o->prog,
			o->log_file, strerror(err));
		return 2;
	}
	if (!o->foreground &&
	    daemon(1, o->log_file && o->log_file[0] ? 0 : 1)) {
		fprintf(stderr, "%s: daemon: %s\n", o->prog, strerror(errno));
		return 1;
	}
	if (o->pidfile && o->pidfile[0]) {
		FILE *f = fopen(o->pidfile, "w");

		if (f) {
			fprintf(f, "%d\n", (int)getpid());
			fclose(f);
		}
		else {
			log_warn("%s: cannot write pidfile %s: %s", o->prog,
				 o->pidfile, strerror(errno));
		}
	}
	signal(SIGPIPE, SIG_IGN);
	err = libre_init();
	if (err) {
		log_err("%s: libre_init: %s", o->prog, strerror(err));
		return 1;
	}
	log_route_libre();
	return 0;
}

void proc_stop(const struct proc_opts *o)
{
	if (o->pidfile && o->pidfile[0])
		(void)unlink(o->pidfile);
}
