/*
 * log.c: leveled, timestamped, one-write-per-line logging shared by the
 * daemons and their worker threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <re.h>
#define DEBUG_MODULE "log"
#define DEBUG_LEVEL 5
#include <re_dbg.h>
#include "log.h"

static int log_fd = 2;
static int log_lvl = LOG_LVL_INFO;
static char log_tag[16] = "tally";

static const char *lvl_name(int level)
{
	switch (level) {
	case LOG_LVL_ERROR:  return "ERROR";
	case LOG_LVL_WARN:   return "WARN ";
	case LOG_LVL_NOTICE: return "NOTE ";
	case LOG_LVL_INFO:   return "INFO ";
	default:             return "DEBUG";
	}
}

void log_init(const char *tag, int level)
{
	if (tag)
		snprintf(log_tag, sizeof(log_tag), "%s", tag);
	log_level_set(level);
}

void log_level_set(int level)
{
	if (level < LOG_LVL_ERROR)
		level = LOG_LVL_ERROR;
	if (level > LOG_LVL_DEBUG)
		level = LOG_LVL_DEBUG;
	__atomic_store_n(&log_lvl, level, __ATOMIC_RELAXED);
}

int log_level_get(void)
{
	return __atomic_load_n(&log_lvl, __ATOMIC_RELAXED);
}

int log_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	log_fd = fd;
	return 0;
}

void log_vwrite(int level, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ld [%s] %s ",
		     ts.tv_nsec / 1000000, log_tag, lvl_name(level));
	if (r > 0)
		n += (size_t)r;
	if (n < sizeof(line)) {
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (r > 0)
			n += (size_t)r;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	while (n > 0 && line[n - 1] == '\n')
		--n;
	line[n++] = '\n';
	(void)!write(log_fd, line, n);
}

void log_write(int level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_vwrite(level, fmt, ap);
	va_end(ap);
}

static void libre_print(int level, const char *p, size_t len, void *arg)
{
	int lvl;
	(void)arg;

	switch (level) {
	case DBG_EMERG: case DBG_ALERT: case DBG_CRIT: case DBG_ERR:
		lvl = LOG_LVL_ERROR; break;
	case DBG_WARNING: lvl = LOG_LVL_WARN; break;
	case DBG_NOTICE:  lvl = LOG_LVL_NOTICE; break;
	case DBG_INFO:    lvl = LOG_LVL_INFO; break;
	default:          lvl = LOG_LVL_DEBUG; break;
	}
	if (log_enabled(lvl))
		log_write(lvl, "libre: %.*s", (int)len, p);
}

void log_route_libre(void)
{
	dbg_init(DBG_INFO, DBG_NONE);
	dbg_handler_set(libre_print, NULL);
}

void log_re(int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	(void)re_vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_write(level, "%s", line);
}

int log_safe(struct re_printf *pf, const struct pl *pl)
{
	size_t i, n = pl->l > 120 ? 120 : pl->l;
	int err = 0;

	for (i = 0; i < n && !err; i++) {
		char c = pl->p[i];

		err = re_hprintf(pf, "%c", (c >= 0x20 && c < 0x7f) ? c : '?');
	}
	if (!err && n < pl->l)
		err = re_hprintf(pf, "...");
	return err;
}
