/*
 * sipcheck.h: request sanity checks beyond libre's parser (sipcheck.c).
 */
#ifndef TALLY_SIP_SIPCHECK_H
#define TALLY_SIP_SIPCHECK_H

#include <re.h>

/* 0 if MSG may be processed, else the status to answer with *REASON (a
 * static string). For 420, UNSUPPORTED (SIZE bytes) receives the option
 * tags for the Unsupported header. */
uint16_t sipcheck_request(const struct sip_msg *msg, char *unsupported,
			  size_t size, const char **reason);

/* The option tags a Require header may name (NULL-terminated, static);
 * default: "timer" (tally-sip). tally-recorder sets "siprec". */
void sipcheck_set_supported(const char *const *tags);

/* Answer a refusal of sipcheck_request() (SCODE, REASON, and for 420 the
 * UNSUPPORTED tags); an ACK gets nothing. */
void sipcheck_refuse(struct sip *sip, const struct sip_msg *msg,
		     uint16_t scode, const char *reason,
		     const char *unsupported);

/* A request no handler took: ACK dropped, CANCEL 481, a method of RFC
 * 3261 or its extensions 405, anything else 501; ALLOW is the Allow
 * header's value. */
void sipcheck_unhandled(struct sip *sip, const struct sip_msg *msg,
			const char *allow);

#endif
