/*
 * log.h: tally's one logging path.
 *
 * Levels follow syslog numbering so rtpengine's --log-level values mean the
 * same here (3 = error ... 7 = debug). The level is checked before anything is
 * formatted, so a disabled DEBUG line costs one compare. Nothing on a per-packet
 * path logs above DEBUG: packets are counted, not logged.
 *
 * Format: "2026-11-25 20:01:02.123 [media] WARN  ng: [call-id] what: reason"
 * Thread-safe: one write(2) per line.
 */
#ifndef TALLY_LOG_H
#define TALLY_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOG_LVL_ERROR = 3,
	LOG_LVL_WARN  = 4,
	LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO  = 6,
	LOG_LVL_DEBUG = 7,
};

/* Set the program tag (e.g. "media") and the threshold; lines above it are
 * dropped. Output goes to stderr unless log_open_file() succeeded. */
void log_init(const char *tag, int level);
void log_level_set(int level);
int  log_level_get(void);
/* Append to FILE instead of stderr. Returns 0 or errno. */
int  log_open_file(const char *path);
/* Route libre's own dbg output into this log. */
void log_route_libre(void);

struct re_printf;
struct pl;
/* Format with libre's printf (%r, %J, %m, %H...), then log. */
void log_re(int level, const char *fmt, ...);
/* %H printer for network input in a log line: printable ASCII only, at
 * most 120 bytes, so a request cannot forge or garble log lines. */
int log_safe(struct re_printf *pf, const struct pl *pl);

void log_write(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vwrite(int level, const char *fmt, va_list ap);

#define log_enabled(lvl) ((lvl) <= log_level_get())
#define LOG(lvl, ...) do { if (log_enabled(lvl)) log_write((lvl), __VA_ARGS__); } while (0)
#define log_err(...)    LOG(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)   LOG(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) LOG(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...)   LOG(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)  LOG(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
