/*
 * multipart.h: multipart/mixed bodies (RFC 2046 s5.1) as SIPREC uses them
 * (RFC 7866 s9: application/sdp + application/rs-metadata[+xml]). Parsing is
 * zero-copy: parts point into the body. Tolerant where SRCs are sloppy
 * (LF-only line ends, a missing final CRLF, header case, a quoted boundary,
 * a preamble), strict where the structure is gone (no boundary, no closing
 * delimiter, a part without the blank line that ends its headers).
 */
#ifndef TALLY_SIPREC_MULTIPART_H
#define TALLY_SIPREC_MULTIPART_H

#include <re.h>

enum { MPART_MAX = 8 };

struct mpart {
	struct pl ctype;       /* media type, parameters cut: "application/sdp",
				* empty if the part had no Content-Type
				* (then text/plain per RFC 2046) */
	struct pl disp;        /* Content-Disposition value, parameters cut,
				* e.g. "recording-session"; empty if none */
	struct pl body;        /* the part's content */
};

struct multipart {
	struct mpart parts[MPART_MAX];
	size_t n;
};

/*
 * Parse BODY whose Content-Type header value is CTYPE (e.g.
 * "multipart/mixed;boundary=foobar"). Returns 0, or EBADMSG with *WHY set
 * to a static phrase fit for a SIP reason ("multipart: no boundary
 * parameter", ...). More than MPART_MAX parts: E2BIG.
 */
int multipart_parse(struct multipart *mp, const struct pl *ctype,
		    const struct pl *body, const char **why);

/* The first part whose media type is CTYPE (case-insensitive), or NULL. */
const struct mpart *multipart_find(const struct multipart *mp,
				   const char *ctype);

/* ---- writing (the recording client's INVITE body) ---- */

/* One part to write: its Content-Type, Content-Disposition (NULL: none)
 * and content. */
struct mpart_out {
	const char *ctype;     /* e.g. "application/sdp" */
	const char *disp;      /* e.g. "recording-session" */
	const struct pl *body;
};

/* A boundary for a new body: "tally-" + 24 random hex digits (RFC 2046's
 * bchars only, far below its 70 characters). */
void multipart_boundary(char *buf, size_t size);

/*
 * Append the multipart/mixed body of the N parts to MB, delimited by
 * BOUNDARY, CRLF line ends (RFC 2046 s5.1.1): what multipart_parse() reads
 * back as the same parts. The caller's Content-Type header is
 * "multipart/mixed;boundary=BOUNDARY". EINVAL if a part's content holds
 * the delimiter (it would cut the part short) or BOUNDARY is empty or has
 * characters outside bchars; ENOMEM. MB is unchanged on error.
 */
int multipart_write(struct mbuf *mb, const char *boundary,
		    const struct mpart_out *parts, size_t n);

#endif
