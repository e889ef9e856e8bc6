/*
 * sdp.h: tally-media's SDP model: parse an offer or answer into lines and m=
 * sections, rewrite it so every stream flows through tally-media while every
 * other line (codecs, fmtp, rtcp-fb, direction, labels, bandwidth...) stays
 * as it was, and compose the sendonly offer a recorder receives.
 *
 * Why not libre's sdp_session: it decodes into its own negotiation model and
 * re-encodes only what it understands, so unknown attributes, ordering and
 * the peer's exact codec lines would be lost. A relay must be transparent.
 *
 * Worked example (offer from a phone, our address 127.0.0.1, ports 30000/30002):
 *   c=IN IP4 10.0.0.5          ->  c=IN IP4 127.0.0.1
 *   m=audio 4000 RTP/AVP 0 101 ->  m=audio 30000 RTP/AVP 0 101
 *   a=rtcp:4001                ->  a=rtcp:30001
 *   m=video 4002 RTP/AVP 96    ->  m=video 30002 RTP/AVP 96
 *   (no a=rtcp)                ->  a=rtcp:30003 added
 *   m=video 0 RTP/AVP 97       ->  m=video 0 RTP/AVP 97 (rejected stays 0)
 */
#ifndef TALLY_MEDIA_SDP_H
#define TALLY_MEDIA_SDP_H

#include <stdbool.h>
#include <stdint.h>
#include <re.h>

enum msdp_kind { MSDP_AUDIO, MSDP_VIDEO, MSDP_OTHER };

enum msdp_dir {
	MSDP_DIR_NONE = 0,   /* not stated */
	MSDP_DIR_SENDRECV,
	MSDP_DIR_SENDONLY,
	MSDP_DIR_RECVONLY,
	MSDP_DIR_INACTIVE,
};

enum { MSDP_MAX_MEDIA = 16, MSDP_MAX_LINES = 1024, MSDP_MAX_SIZE = 65536 };

struct msdp_media {
	enum msdp_kind kind;
	struct pl media;        /* "audio", "video", "application", ... */
	uint16_t port;          /* 0: disabled/rejected */
	unsigned nports;        /* "m=audio 4000/2" -> 2; default 1 */
	struct pl proto;        /* "RTP/AVP", "RTP/SAVPF", ... */
	struct pl fmts;         /* "0 8 101" */
	struct pl addr;         /* effective connection address: media c=, else session c= */
	int af;                 /* AF_INET, AF_INET6, or 0 if none */
	uint16_t rtcp_port;     /* from a=rtcp:, 0 if absent */
	bool rtcp_mux;          /* a=rtcp-mux present */
	enum msdp_dir dir;      /* effective: media level, else session level, else SENDRECV */
	struct pl label;        /* a=label: value, empty if absent */
	struct pl mid;          /* a=mid: value, empty if absent */
	size_t line_first;      /* index of the m= line in msdp.lines */
	size_t line_count;      /* the m= line and every line up to the next m= */
	struct pl rtcp_addr;    /* a=rtcp:<port> IN IP4|IP6 <addr>: the address,
				   empty if absent (then RTCP goes to addr) */
};

struct msdp {
	struct pl *lines;       /* every line, without its line ending; point into a private copy */
	size_t nlines;
	size_t session_count;   /* lines before the first m= */
	struct pl origin_addr;  /* o= unicast address */
	uint64_t sess_version;  /* o= session version */
	struct pl sess_addr;    /* session-level c= address, empty if absent */
	enum msdp_dir sess_dir; /* session-level direction attribute, NONE if absent */
	struct msdp_media media[MSDP_MAX_MEDIA];
	size_t nmedia;
};

/*
 * Parse TEXT (CRLF or LF line endings). On success *sdpp is a new mem object
 * (caller derefs) holding its own copy of the text.
 * Returns 0, EINVAL (bad args), EBADMSG with *why (static string) set:
 * missing v=/o=/s=, a line not "<letter>=...", a malformed m= or c= line,
 * a port > 65535, no connection address for an active m= line, more than
 * MSDP_MAX_MEDIA m= lines or MSDP_MAX_LINES lines, input > MSDP_MAX_SIZE.
 */
int msdp_parse(struct msdp **sdpp, const struct pl *text, const char **why);

/* How one m= section is rewritten; one per sdp->media[], same order. */
struct msdp_rw_media {
	uint16_t port;          /* our RTP port; ignored (kept 0) if the line has port 0 */
	uint16_t rtcp_port;     /* our RTCP port, written as a=rtcp:<port> (added if absent) */
	bool mux;               /* keep a=rtcp-mux if present; false removes it */
	enum msdp_dir dir;      /* MSDP_DIR_NONE keeps the line's direction; else replaces/adds it */
	bool add_mux;           /* with mux: write a=rtcp-mux if absent (ng rtcp-mux offer/accept) */
};

struct msdp_rw {
	const char *addr;       /* our address, e.g. "127.0.0.1" or "::1" */
	int af;                 /* AF_INET or AF_INET6: IP4/IP6 in c= and o= */
	bool ice_remove;        /* drop a=candidate, a=ice-ufrag/pwd/options/lite/mismatch,
				   a=end-of-candidates, a=remote-candidates */
	bool replace_origin;    /* o= address := addr */
	const struct msdp_rw_media *media;
	size_t nmedia;          /* must equal sdp->nmedia */
};

/*
 * Write SDP rewritten by RW to OUT (CRLF line endings). Session and media c=
 * lines get RW's address (a media section without a c= keeps relying on the
 * rewritten session c=; if the session has none, one is added to each active
 * media section). Every line not named above is copied unchanged.
 * Returns 0, EINVAL (nmedia mismatch), ENOMEM.
 */
int msdp_rewrite(struct mbuf *out, const struct msdp *sdp,
		 const struct msdp_rw *rw);

/* One stream offered to a recorder: m= section INDEX of SDP. */
struct msdp_pick {
	const struct msdp *sdp;
	size_t index;
	uint16_t port;          /* our sending port for this copy; RTCP on port+1 */
	const char *label;      /* a=label value */
};

struct msdp_offer {
	const char *addr;
	int af;
	uint64_t sess_id;
	uint64_t sess_version;
	const struct msdp_pick *picks;
	size_t npicks;
};

/*
 * Compose a new SDP offer, one m= line per pick in order: the source line's
 * media, proto and formats with our port, and the source's codec attributes
 * (rtpmap, fmtp, rtcp-fb, ptime, maxptime, framerate, imageattr, ssrc,
 * extmap) copied; then c=, a=rtcp:<port+1>, a=label:<label>, a=sendonly.
 * Direction, ICE, DTLS/SDES crypto, rtcp-mux, mid and old labels are not copied.
 * Returns 0, EINVAL, ENOMEM.
 */
int msdp_compose_offer(struct mbuf *out, const struct msdp_offer *offer);

/*
 * True if msdp_rewrite relays section M through us: active (port != 0) and
 * audio, video, or a proto containing "RTP". Other active sections (BFCP,
 * T.38 udptl...) keep their port and address; port-0 sections stay 0.
 */
bool msdp_media_relayed(const struct msdp_media *m);

const char *msdp_dir_name(enum msdp_dir dir);   /* "sendrecv", ... ; NULL for NONE */

#endif
