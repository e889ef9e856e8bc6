/*
 * recd.h: tally-recorder's private structs, shared by the daemon's files.
 *
 * Object graph (the main thread owns everything but what a worker holds):
 *
 *   struct recd (main.c, one per process)
 *     +- struct sip, sip_lsnr            libre SIP stack, UDP + TCP
 *     +- struct catalog                  SQLite (catalog.c)
 *     +- struct recapi                   HTTP API (recapi.c)
 *     +- struct rxports                  port blocks (rxports.c)
 *     +- struct rxworker                 receive thread (rxworker.c)
 *     |    +- struct rxfile, per session: the media.pcap descriptor
 *     |    +- struct rxstream, per accepted stream: its two sockets
 *     +- struct finq                     finalize thread (finq.c)
 *     +- hash of struct rsess            by Call-ID (rsess.c)
 *          +- struct sip_dialog          our UAS dialog
 *          +- struct sessfile            what session.json says
 *          +- struct rsmeta              metadata, as updated
 *          +- ok_mb                      our 2xx, resent until ACK (UDP)
 *
 * A session's life: INVITE -> srs.c checks it, answer.c decides every m=
 * line (policy, codecs), rsess.c makes the folder, session.json and the
 * catalog row, rxworker.c opens the sockets, then 200 OK. re-INVITE/UPDATE
 * change streams and metadata. BYE (or no media for media-timeout) ->
 * rxworker drains and closes the capture -> finq.c finalizes in its own
 * thread -> the main thread records complete/failed in session.json and
 * the catalog. At start-up recover.c finalizes folders left unfinished.
 */
#ifndef TALLY_REC_RECD_H
#define TALLY_REC_RECD_H

#include <sys/time.h>
#include <re.h>
#include "sessfile.h"
#include "rsmeta.h"

/* --- configuration (options.c) --- */
struct recd_conf {
	char sip_listen[64];
	char interface[64];       /* media address */
	uint32_t port_min, port_max;
	char storage[256];
	char catalog[256];        /* "" = <storage>/catalog.sqlite */
	char listen_http[64];     /* "" = no API */
	char api_token[128];
	char policies[4096];      /* MULTI: "pattern=media" lines */
	char default_media[16];   /* audio+video | audio | none */
	uint32_t max_sessions;
	uint32_t min_free_mb;
	uint32_t media_timeout;   /* s without packets on any stream -> end */
	uint32_t inactive_timeout; /* s with every stream paused (or none
				    * accepted) -> end */
	uint32_t log_level;
	char log_file[256];
	char pidfile[256];
	bool foreground;
	bool strict_siprec;       /* 421 without Require: siprec, always */
	char config_file[256];
};

int recd_conf_load(struct recd_conf *cf, int argc, char *argv[], bool *exitp);

/* --- policy (policy.c) --- */
enum rec_media { REC_NONE = 0, REC_AUDIO = 1, REC_AUDIO_VIDEO = 3 };

struct policy;
int policy_alloc(struct policy **pp, const char *lines, const char *def);
/* What to record for a session whose participants' AORs are AORS (N) and
 * whose SRC is FROM (may be NULL): the first rule matching an AOR, else the
 * first matching FROM, else the default. *RULE names the rule that
 * matched (or "default"). */
enum rec_media policy_decide(const struct policy *p, const char *const *aors,
			     size_t n, const char *from, const char **rule);
const char *rec_media_name(enum rec_media m);

/* --- port blocks (rxports.c) --- */
struct rxports;
int  rxports_alloc(struct rxports **pp, uint16_t min, uint16_t max);
/* Reserve N consecutive even-aligned ports; *BASE is the first. ENOSPC. */
int  rxports_get(struct rxports *p, unsigned n, uint16_t *base);
/* Streams bind on ADDR: rxports_get() passes over blocks with a port
 * another program holds (probed by bind). */
void rxports_probe(struct rxports *p, const struct sa *addr);
/* Blocks passed over so far because a port was in use. */
uint64_t rxports_busy(const struct rxports *p);
void rxports_put(struct rxports *p, uint16_t base, unsigned n);
unsigned rxports_free(const struct rxports *p);

/* --- the receive thread (rxworker.c) --- */
struct rxworker;
struct rxfile;

struct rx_stats {                 /* totals, updated by the worker */
	uint64_t packets, bytes, rtcp;
	uint64_t written;         /* packets written to captures */
	uint64_t write_errors;
	uint64_t kernel_drops;    /* SO_RXQ_OVFL */
	uint64_t paused;          /* arrived on a paused stream (kept) */
	uint64_t garbage;         /* not RTP/RTCP, counted and skipped */
	uint64_t pli_sent;
	uint64_t streams, files;  /* open now */
};

typedef void (rx_drained_h)(void *arg);

int  rxworker_alloc(struct rxworker **wp);
/* Open the capture PATH (append) for a session: the worker writes it. */
int  rxworker_file_open(struct rxworker *w, const char *path,
			struct rxfile **fp);
/* Bind RTP/RTCP sockets on ADDR:PORT, PORT+1 and give them to the worker,
 * writing into FILE. VIDEO: ask the sender for keyframes. */
int  rxworker_stream_add(struct rxworker *w, struct rxfile *f,
			 const struct sa *addr, uint16_t port, bool video);
void rxworker_stream_pause(struct rxworker *w, uint16_t port, bool paused);
void rxworker_stream_remove(struct rxworker *w, uint16_t port);
/* Close FILE's streams and the file; DRAINEDH runs in the main thread once
 * every packet read is on disk. */
void rxworker_file_close(struct rxworker *w, struct rxfile *f,
			 rx_drained_h *drainedh, void *arg);
/* Seconds since FILE last received a packet (since open if none). */
double rxworker_file_idle(struct rxworker *w, struct rxfile *f);
uint64_t rxworker_file_packets(struct rxworker *w, struct rxfile *f);
void rxworker_stats(struct rxworker *w, struct rx_stats *st);
/* Shutdown: stop the thread (what it read is written), then free each
 * file still open with rxworker_file_free. */
void rxworker_shutdown(struct rxworker *w);
void rxworker_file_free(struct rxfile *f);

/* --- pcap records (pcapw.c) --- */
enum { PCAPW_HDR = 24, PCAPW_REC_MAX = 16 + 14 + 40 + 8 };
/* The 24-byte file header. */
void pcapw_file_header(uint8_t hdr[PCAPW_HDR]);
/* The record header + Ethernet/IP/UDP headers for a datagram of LEN bytes
 * from SRC to DST received at TV; returns the header length. */
size_t pcapw_rec_header(uint8_t *buf, const struct sa *src,
			const struct sa *dst, size_t len,
			const struct timeval *tv);

/* --- finalize thread (finq.c) --- */
struct finq;
typedef void (finq_done_h)(int err, const struct sessfile *sf,
			   const char *reason, void *arg);
int finq_alloc(struct finq **fqp);
/* Finalize DIR in the finalize thread; DONEH runs in the main thread with
 * the session as finalized (files listed). ARG must stay valid until then
 * (rsess holds a reference). */
int finq_push(struct finq *fq, const char *dir, const struct sessfile *sf,
	      finq_done_h *doneh, void *arg);
unsigned finq_pending(const struct finq *fq);

/* --- sessions (rsess.c) --- */
struct rstream {
	uint16_t port;            /* 0: refused / removed */
	bool video;
	bool paused;
};

struct rsess {
	struct le he;             /* recd.sessions, by Call-ID */
	struct le le;             /* recd.all */
	struct recd *rd;          /* borrowed */
	struct sip_dialog *dlg;
	char dir[512];
	struct sessfile sf;
	struct rsmeta *meta;      /* zeroed at first; has_metadata says */
	struct rstream rs[SF_STREAMS_MAX];
	struct rxfile *rxf;       /* owned by the worker */
	struct { uint16_t base; unsigned n; } blocks[SF_STREAMS_MAX];
	size_t nblocks;
	unsigned nmeta, nsdp;     /* counters for metadata-NNN / offer-NNN */
	uint64_t sdp_version;
	uint64_t sdp_id;
	struct mbuf *answer;      /* our current SDP answer */
	/* our 2xx to an INVITE, resent over UDP until its ACK */
	struct mbuf *ok_mb;
	struct sa ok_dst;
	struct udp_sock *ok_sock;
	enum sip_transp ok_tp;
	unsigned ok_txc;
	uint64_t ok_next;
	uint32_t ok_cseq;
	enum rec_media allow;     /* policy decision at the INVITE */
	bool ending;              /* BYE seen or timed out: draining */
	uint64_t inactive_since;  /* tmr_jiffies() when all streams went
				   * paused (or none was accepted); 0: active */
	char ftag[128];           /* From tag of the initial INVITE */
	uint32_t inv_cseq;
};

struct recd_stats {
	uint64_t invites, accepted, rejected, reinvites, byes;
	uint64_t no_require;      /* accepted without Require: siprec */
	uint64_t finalized, failed, recovered;
	uint64_t bad_requests;
};

struct recd {
	struct recd_conf conf;
	struct sip *sip;
	struct sip_lsnr *lsnr;
	struct catalog *cat;
	struct recapi *api;
	struct rxports *ports;
	struct rxworker *rx;
	struct finq *fq;
	struct policy *policy;
	struct recovery *rcv;     /* start-up scan (recover.c) */
	struct hash *sessions;
	struct list all;
	struct sa media_addr;
	struct sa sip_laddr;
	struct tmr tick;
	struct recd_stats st;
	struct sa lax_warned[32]; /* SRCs warned about Require (srs.c) */
	unsigned nlax_warned;
	unsigned nsess;           /* in state recording */
};

/* unix time, s */
static inline double recd_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* rsess.c */
int  rsess_alloc(struct rsess **rsp, struct recd *rd, const struct sip_msg *msg);
struct rsess *rsess_find(struct recd *rd, const struct sip_msg *msg);
/* The session an initial INVITE (retransmitted) already made, or NULL. */
struct rsess *rsess_find_initial(struct recd *rd, const struct sip_msg *msg);
/* Write SF to DIR/session.json and mirror it in the catalog: the one way
 * a session's state is stored. */
int  recd_store(struct recd *rd, const char *dir, const struct sessfile *sf);
/* The finalizer's verdict on SF (files listed): complete, or failed with
 * REASON; counted and stored. */
void recd_finalized(struct recd *rd, const char *dir, struct sessfile *sf,
		    int err, const char *reason);
int  rsess_save(struct rsess *rs);
/* Write BODY into the folder as PREFIX-NNN.EXT (counter in *N). */
void rsess_keep(struct rsess *rs, const char *prefix, const char *ext,
		unsigned *n, const struct pl *body);
/* End the session (BYE, timeout, shutdown): drain, then finalize. */
int  rsess_apply(struct rsess *rs, const struct rstream *old,
		 const bool *old_on, size_t nold);
void rsess_end(struct rsess *rs, const char *why);
void rsess_tick(struct recd *rd);
const char *rsess_new_id(char *buf, size_t size);

/* answer.c: decide every m= line of OFFER for RS and write the answer. */
struct msdp;
int answer_make(struct rsess *rs, const struct msdp *offer,
		enum rec_media allow, struct mbuf *out);

/* srs.c: the SIP side */
bool srs_request(struct recd *rd, const struct sip_msg *msg);
void srs_ok_tick(struct recd *rd);
void srs_acked(struct rsess *rs);

/* recover.c: the start-up scan, in main-loop slices after serving began.
 * recover_start: 0 and *RP (the caller owns it; freeing it stops the
 * scan), or the errno of opening the storage. */
struct recovery;
int  recover_start(struct recovery **rp, struct recd *rd);
bool recover_running(const struct recovery *r);
/* {"running":..,"scanned":..,"queued":..,"catalog_restored":..,
 * "seconds":..}; R may be NULL (no scan). */
int  recover_status_print(struct re_printf *pf, const struct recovery *r);

#endif
