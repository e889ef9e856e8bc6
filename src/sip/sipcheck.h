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

#endif
