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

/* The stateless answer to an undecodable request PKT (sipbad.c): *mbp gets
 * a new 400 (505 for another SIP version) with the request's Via, From, To,
 * Call-ID and CSeq lines. ENOENT: nothing can be answered; ENOMEM. */
int  sipbad_reply(struct mbuf **mbp, const uint8_t *pkt, size_t len);
/* In raw message text: is the header line LINE (LEN bytes, no line end)
 * named NAME (any case, blanks before ':' allowed) or its compact form C
 * (lower case; '\0': none)? *VALP (if given) gets the byte after ':'. */
bool sipbad_hdr_is(const char *line, size_t len, const char *name, char c,
		   const char **valp);

/* sipdecode.c, linked into the SIP executables only: it wraps libre's
 * sip_msg_decode() so undecodable messages reach the request handler as
 * stand-ins. The UDP receive helper marks each datagram before libre
 * decodes it; the request handler calls sipdecode_standin() first: true
 * when MSG was a stand-in (answered or dropped, and counted).
 * sipdecode_udp_attach(): from a request that came over UDP, put that
 * helper on libre's SIP socket (once: *UHP holds it) and enlarge the
 * socket's receive buffer. */
void     sipdecode_datagram(const struct mbuf *mb);
void     sipdecode_udp_attach(struct udp_helper **uhp,
			      const struct sip_msg *msg);
bool     sipdecode_standin(struct sip *sip, const struct sip_msg *msg);
uint64_t sipdecode_count(void);
/* false when libre's calls would not reach the wrapper (a libre linked
 * with -Bsymbolic): then undecodable TCP messages close the connection */
bool     sipdecode_active(void);

#endif
