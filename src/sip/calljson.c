/*
 * calljson.c: the JSON view of a call, shared by the HTTP API (GET
 * /api/v1/calls) and the event stream (the "call" member of every event).
 *
 * Everything here is a re_printf handler, so a call is printed straight into
 * whatever buffer the caller writes (an HTTP body, a WebSocket frame) without
 * building a tree first. The strings come from SIP messages, i.e. from the
 * network: they are escaped for JSON, and bytes that are not valid UTF-8 are
 * replaced by U+FFFD so that every client's JSON parser accepts the result.
 *
 * Example (one line in reality):
 *   {"id":"c1-3f2a1b","call_id":"1-2345@127.0.0.1","state":"answered",
 *    "created":"2025-01-02T03:04:05.678Z","answered":"2025-...Z",
 *    "ended":null,
 *    "caller":{"uri":"sip:sipp@127.0.0.1:5070","user":"sipp","name":null,
 *              "tag":"1SIPpTag001","media":[{"type":"audio",
 *              "direction":"sendrecv","active":true}]},
 *    "callee":{...},"media_server":"127.0.0.1:2223","final_status":200,
 *    "cause":null}
 * Empty strings and zero times/statuses are printed as null: "not known
 * (yet)".
 */
#include <string.h>
#include <time.h>
#include "api.h"

/* Length of the valid UTF-8 sequence at P (N bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = p[0] & 0x1f;
	}
	else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = p[0] & 0x0f;
	}
	else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = p[0] & 0x07;
	}
	else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static int jstr_n(struct re_printf *pf, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;
	int err = 0;

	err |= re_hprintf(pf, "\"");
	while (i < n && !err) {
		unsigned char c = p[i];
		size_t len;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			++run;
			++i;
			continue;
		}
		/* flush the plain run before the special byte */
		if (run) {
			err |= re_hprintf(pf, "%b", p + i - run, run);
			run = 0;
		}
		if (c == '"' || c == '\\') {
			err |= re_hprintf(pf, "\\%c", c);
			++i;
		}
		else if (c < 0x20) {
			err |= re_hprintf(pf, "\\u%04x", c);
			++i;
		}
		else if ((len = utf8_seq(p + i, n - i))) {
			err |= re_hprintf(pf, "%b", p + i, len);
			i += len;
		}
		else {
			err |= re_hprintf(pf, "\\ufffd");
			++i;
		}
	}
	if (run)
		err |= re_hprintf(pf, "%b", p + i - run, run);
	err |= re_hprintf(pf, "\"");
	return err;
}

int api_jstr(struct re_printf *pf, const char *s)
{
	if (!s)
		return re_hprintf(pf, "null");
	return jstr_n(pf, s, strlen(s));
}

/* A fixed-size char array from struct bcall: "" -> null, never reads past
 * SIZE even if the array is not terminated. */
static int jfield(struct re_printf *pf, const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	if (!n)
		return re_hprintf(pf, "null");
	return jstr_n(pf, s, n);
}

#define JFIELD(pf, arr) jfield((pf), (arr), sizeof(arr))

int api_jtime(struct re_printf *pf, const uint64_t *ms)
{
	struct tm tm;
	time_t t;

	if (!ms || !*ms)
		return re_hprintf(pf, "null");
	t = (time_t)(*ms / 1000);
	if (!gmtime_r(&t, &tm))
		return re_hprintf(pf, "null");
	return re_hprintf(pf, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03uZ\"",
			  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			  tm.tm_hour, tm.tm_min, tm.tm_sec,
			  (unsigned)(*ms % 1000));
}

static int party_json(struct re_printf *pf, const struct bparty *p)
{
	unsigned i, n = p->nmedia;
	int err = 0;

	if (n > sizeof(p->media) / sizeof(p->media[0]))
		n = sizeof(p->media) / sizeof(p->media[0]);

	err |= re_hprintf(pf, "{\"uri\":");
	err |= JFIELD(pf, p->uri);
	err |= re_hprintf(pf, ",\"user\":");
	err |= JFIELD(pf, p->user);
	err |= re_hprintf(pf, ",\"name\":");
	err |= JFIELD(pf, p->name);
	err |= re_hprintf(pf, ",\"tag\":");
	err |= JFIELD(pf, p->tag);
	err |= re_hprintf(pf, ",\"media\":[");
	for (i = 0; i < n; i++) {
		const struct bmedia *m = &p->media[i];

		err |= re_hprintf(pf, "%s{\"type\":", i ? "," : "");
		err |= JFIELD(pf, m->type);
		err |= re_hprintf(pf, ",\"direction\":");
		err |= JFIELD(pf, m->dir);
		err |= re_hprintf(pf, ",\"active\":%s}",
				  m->active ? "true" : "false");
	}
	err |= re_hprintf(pf, "]}");
	return err;
}

/*
 * bcall_json: print CALL as one JSON object (see the example at the top).
 * Returns 0 or the printer's errno (ENOMEM); CALL is only read.
 */
int bcall_json(struct re_printf *pf, const struct bcall *call)
{
	int err = 0;

	if (!call)
		return re_hprintf(pf, "null");

	err |= re_hprintf(pf, "{\"id\":");
	err |= JFIELD(pf, call->id);
	err |= re_hprintf(pf, ",\"call_id\":");
	err |= JFIELD(pf, call->callid);
	err |= re_hprintf(pf, ",\"state\":%H", api_jstr,
			  bcall_state_name(call->state));
	err |= re_hprintf(pf, ",\"created\":%H", api_jtime, &call->created);
	err |= re_hprintf(pf, ",\"answered\":%H", api_jtime, &call->answered);
	err |= re_hprintf(pf, ",\"ended\":%H", api_jtime, &call->ended);
	err |= re_hprintf(pf, ",\"caller\":%H", party_json, &call->caller);
	err |= re_hprintf(pf, ",\"callee\":%H", party_json, &call->callee);
	err |= re_hprintf(pf, ",\"media_server\":");
	err |= JFIELD(pf, call->mediasrv);
	if (call->final_status)
		err |= re_hprintf(pf, ",\"final_status\":%u",
				  (unsigned)call->final_status);
	else
		err |= re_hprintf(pf, ",\"final_status\":null");
	err |= re_hprintf(pf, ",\"cause\":");
	err |= JFIELD(pf, call->cause);
	err |= re_hprintf(pf, "}");
	return err;
}
