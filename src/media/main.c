/*
 * main.c: tally-media's process: configuration, the control thread's libre
 * main loop (ng socket, sweep timer), the packet workers, signals, shutdown.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "media.h"

struct media *g_media;

static void sweep(void *arg)
{
	(void)arg;
	mcall_sweep(media_unixtime(), g_media->conf.timeout);
	tmr_start(&g_media->tmr_sweep, 1000, sweep, NULL);
}

static void on_signal(int sig)
{
	log_notice("media: signal %d, shutting down", sig);
	re_cancel();
}

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return errno;
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
	return 0;
}

static int media_start(struct media *m)
{
	long ncpu;
	unsigned i;
	int err;

	if (sa_set_str(&m->iface, m->conf.interface, 0)) {
		log_err("media: interface '%s' is not an IP address",
			m->conf.interface);
		return EINVAL;
	}
	err = portpool_alloc(&m->ports, &m->iface, (uint16_t)m->conf.port_min,
			     (uint16_t)m->conf.port_max, m->conf.rcvbuf_kb);
	if (err)
		return err;
	err = hash_alloc(&m->calls, 4096);
	if (err)
		return err;

	m->nworkers = m->conf.workers;
	if (!m->nworkers) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		m->nworkers = ncpu > 0 ? (unsigned)ncpu : 1;
	}
	m->workers = mem_zalloc(m->nworkers * sizeof(*m->workers), NULL);
	if (!m->workers)
		return ENOMEM;
	for (i = 0; i < m->nworkers; i++) {
		err = worker_alloc(&m->workers[i], i);
		if (!err)
			err = worker_start(m->workers[i]);
		if (err)
			return err;
	}
	err = ng_alloc(&m->ng, m->conf.listen_ng);
	if (err) {
		log_err("media: cannot listen for ng on %s: %s",
			m->conf.listen_ng, strerror(err));
		return err;
	}
	tmr_init(&m->tmr_sweep);
	tmr_start(&m->tmr_sweep, 1000, sweep, NULL);
	m->started = media_unixtime();
	log_notice("media: tally-media %s ready: ng on %s, media on %s ports "
		   "%u-%u, %u workers, timeout %u s", TALLY_VERSION,
		   m->conf.listen_ng, m->conf.interface, m->conf.port_min,
		   m->conf.port_max, m->nworkers, m->conf.timeout);
	return 0;
}

static void media_stop(struct media *m)
{
	struct le *le;
	unsigned i;

	tmr_cancel(&m->tmr_sweep);
	m->ng = mem_deref(m->ng);
	while ((le = list_head(&m->callq)))
		mcall_delete(le->data, "shutdown");
	for (i = 0; m->workers && i < m->nworkers; i++)
		mem_deref(m->workers[i]);
	m->workers = mem_deref(m->workers);
	m->calls = mem_deref(m->calls);
	m->ports = mem_deref(m->ports);
}

int main(int argc, char *argv[])
{
	static struct media media;
	bool exit_now = false;
	int err;

	log_init("media", LOG_LVL_INFO);
	err = media_conf_load(&media.conf, argc, argv, &exit_now);
	if (err)
		return 2;
	if (exit_now)
		return 0;
	log_level_set((int)media.conf.log_level);
	if (media.conf.log_file[0] && (err = log_open_file(media.conf.log_file))) {
		fprintf(stderr, "tally-media: cannot open log %s: %s\n",
			media.conf.log_file, strerror(err));
		return 2;
	}
	if (!media.conf.foreground && daemon(1, media.conf.log_file[0] ? 0 : 1)) {
		perror("tally-media: daemon");
		return 1;
	}
	if (media.conf.pidfile[0] && (err = write_pidfile(media.conf.pidfile)))
		log_warn("media: cannot write pidfile %s: %s",
			 media.conf.pidfile, strerror(err));
	signal(SIGPIPE, SIG_IGN);

	err = libre_init();
	if (err) {
		log_err("media: libre_init: %s", strerror(err));
		return 1;
	}
	log_route_libre();
	g_media = &media;

	err = media_start(&media);
	if (!err)
		err = re_main(on_signal);

	media_stop(&media);
	g_media = NULL;
	libre_close();
	if (media.conf.pidfile[0])
		unlink(media.conf.pidfile);
	return err ? 1 : 0;
}
