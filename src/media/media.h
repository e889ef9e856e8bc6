/*
 * media.h: tally-media's private object model.
 *
 * Object graph (parents own children; "borrowed" pointers do not own):
 *
 *   struct media (one per process)
 *     +- struct ng        control socket (libre UDP), reply cache
 *     +- struct portpool  the --port-min..--port-max range
 *     +- struct worker[]  packet threads, each an epoll loop
 *     +- hash of struct mcall (by call-id)
 *          +- struct party[]        one per tag (caller, callee)
 *          |    +- struct mstream[] one per m= line: the sockets THIS party
 *          |         |              sends to, its advertised/learned address,
 *          |         |              counters; peer = other party's mstream
 *          |         +- struct msock rtp, rtcp (fd + port; epoll data)
 *          +- struct subscr[]        one per subscription (recorder leg)
 *               +- struct sink[]     one per replicated stream: sockets we
 *                                    send the copies from, recorder address;
 *                                    src = the party's mstream (borrowed)
 *
 * Threads: the control thread (libre main loop: ng, timers) owns every
 * object above and their "control" fields. Each call is placed on one worker;
 * the worker alone touches the call's packet-path fields (struct mstream's
 * "worker" part and its sinks) while the call is live. Control changes them
 * only by running a function on that worker (worker_exec(), a message that
 * waits for completion), so the packet path needs no lock at all. The only
 * field control reads directly is mstream.last_rx (relaxed atomic).
 *
 * Packet path: packet arrives on party A's msock -> relay_recv() on A's
 * worker -> checks, latching, counters -> sent from peer B's msock to B's
 * learned (else advertised) address -> the same bytes sent from each
 * accepted sink's msock to its recorder. Nothing is copied or allocated.
 */
#ifndef TALLY_MEDIA_H
#define TALLY_MEDIA_H

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <re.h>
#include "sdp.h"
#include "bencode.h"

struct worker;
struct mstream;
struct sink;

/* ---- configuration (options.c) ---- */
struct media_conf {
	char interface[64];     /* address advertised and bound */
	char listen_ng[64];     /* ng control address:port */
	uint32_t port_min, port_max;
	bool foreground;
	char config_file[256];
	uint32_t timeout;       /* s without media before a call is deleted */
	uint32_t log_level;
	char log_file[256];
	char pidfile[256];
	uint32_t workers;       /* packet threads; 0 = one per core */
	uint32_t max_sessions;  /* 0 = unlimited */
	uint32_t rcvbuf_kb;     /* per-socket receive buffer */
	uint32_t relatch_ms;    /* accept a new source after this silence */
	uint32_t coalesce_us;   /* under load, let packets gather this long (epoll path) */
	bool io_uring;          /* workers use an io_uring loop (uring.c) */
	bool gso;               /* UDP_SEGMENT for runs to one destination (relay.c) */
};

int  media_conf_load(struct media_conf *cf, int argc, char *argv[],
		     bool *exitp);
void media_conf_dump(const struct media_conf *cf);

/* ---- sockets (msock in relay.c) ---- */
enum msock_role { MSOCK_RTP, MSOCK_RTCP };

struct msock {
	int fd;
	uint16_t port;
	enum msock_role role;
	struct mstream *st;     /* borrowed: the stream that receives here, or */
	struct sink *sink;      /* borrowed: the sink whose recorder talks back here */
	struct worker *w;       /* borrowed: set when registered */
	bool registered;
	struct portpool *pool;  /* borrowed: set on the RTP socket of a pair */
	int pair_idx;           /* pair held in the pool, -1 if none */
	uint32_t ovfl;          /* last SO_RXQ_OVFL count (worker) */
	uint32_t uslot;         /* its slot in the worker's ring (uring.c) */
};

/* ---- counters ---- */
struct mcount {
	uint64_t packets, bytes, errors;
};

struct mstats {
	struct mcount rtp, rtcp;
	uint64_t lost;          /* from RTP sequence gaps */
	uint64_t dropped;       /* kernel receive-queue overflow + tally drops */
	uint64_t unexpected;    /* wrong source after latching */
	uint64_t forwarded;     /* packets sent to the peer */
	uint64_t replicated;    /* copies sent to sinks */
	uint64_t send_errors;
};

enum { MSTREAM_MAX_SINKS = 4 };

/* One m= line of one party: the ports that party sends to. */
struct mstream {
	/* control fields */
	struct le le;                 /* in party->streams */
	struct party *party;          /* borrowed: owner */
	unsigned index;               /* 1-based m= line */
	enum msdp_kind kind;
	char type[16];                /* "audio", "video", ... */
	char proto[24];
	struct msock *rtp, *rtcp;     /* owned; NULL while the line has port 0 */
	struct sa adv_rtp, adv_rtcp;  /* what the party's SDP says */
	bool mux;                     /* party sends and receives RTCP on the RTP port */
	bool disabled;                /* m= port 0 */

	/* worker fields: only the owning worker touches these once live */
	struct mstream *peer;         /* borrowed: other party's stream, same index */
	struct sa lrtp, lrtcp;        /* learned (latched) source */
	bool latched_rtp, latched_rtcp;
	uint64_t last_rtp_ns, last_rtcp_ns;
	uint32_t ssrc;
	bool have_seq;
	uint16_t max_seq;
	uint32_t cycles, base_seq;
	uint64_t received;
	uint64_t lost_prev;           /* loss folded in at SSRC changes */
	struct mstats st;
	struct sink *sinks[MSTREAM_MAX_SINKS];
	unsigned nsinks;
	bool kf_pending;              /* keyframe request owed once SSRC known */
	uint32_t fir_seq;

	/* control's copy of the counters, taken by mcall_sync_stats() */
	struct mstats snap;
	struct sa snap_ep_rtp, snap_ep_rtcp;  /* learned sources, if any */

	/* read by control without a message */
	uint64_t last_rx;             /* unix seconds, relaxed atomic */
};

struct party {
	struct le le;                 /* in call->parties */
	struct mcall *call;           /* borrowed */
	char tag[128];
	char label[64];
	uint64_t created;
	struct list streams;          /* struct mstream, by index */
	struct party *other;          /* borrowed: in dialogue with */
	struct msdp *sdp;             /* last SDP from this party (owned) */
	int offer_mux;                /* ng rtcp-mux flag of its last offer */
};

/* A replicated stream going to a recorder. */
struct sink {
	struct le le;                 /* in subscr->sinks */
	struct subscr *sub;           /* borrowed */
	struct mstream *src;          /* borrowed: the party stream copied */
	unsigned label;
	struct msock *rtp, *rtcp;     /* owned: we send from these */
	struct sa dst_rtp, dst_rtcp;  /* recorder's addresses (worker reads) */
	bool accepted;                /* answered with port != 0 */
	bool paused;                  /* accepted, but answered a=inactive
				       * (or sendonly): ports kept, detached */
	bool mux;                     /* recorder takes RTCP on its RTP port */
	bool active;                  /* attached to src on the worker */
	struct mcount sent;           /* worker */
	uint64_t feedback;            /* PLI/FIR from the recorder passed on */
	struct mcount sent_snap;      /* control's copy */
};

struct subscr {
	struct le le;                 /* in call->subscrs */
	struct mcall *call;           /* borrowed */
	char tag[128];
	struct list sinks;
	bool answered;
};

struct mcall {
	struct le he;                 /* in media.calls hash */
	struct le le;                 /* in media.callq: oldest first */
	char callid[256];
	struct worker *w;             /* borrowed: the worker that runs this call */
	uint64_t created;             /* unix s */
	uint64_t last_signal;         /* unix s */
	struct list parties;
	struct list subscrs;
	unsigned nsockets;
};

/* ---- the process ---- */
struct media {
	struct media_conf conf;
	struct sa iface;              /* parsed interface address */
	struct ng *ng;
	struct portpool *ports;
	struct worker **workers;
	unsigned nworkers;
	struct hash *calls;
	struct list callq;            /* every call, creation order (list, sweep) */
	unsigned ncalls;
	unsigned nsubs;
	struct tmr tmr_sweep;
	/* totals since start */
	uint64_t calls_total, calls_timeout, calls_deleted;
	struct mstats gone;           /* counters of calls already deleted */
	uint64_t ng_requests, ng_errors, ng_garbage;
	uint64_t started;
};

extern struct media *g_media;   /* the one instance; control thread only */

/* ---- ports.c ---- */
int  portpool_alloc(struct portpool **pp, const struct sa *iface,
		    uint16_t min, uint16_t max, uint32_t rcvbuf_kb);
/* Allocate an RTP/RTCP pair (RTP even). *rtpp, *rtcpp are new msocks. */
int  portpool_pair(struct portpool *pp, struct msock **rtpp,
		   struct msock **rtcpp);
unsigned portpool_used(const struct portpool *pp);
unsigned portpool_size(const struct portpool *pp);

/* ---- worker.c ---- */
typedef void (worker_exec_h)(struct worker *w, void *arg);
int  worker_alloc(struct worker **wp, unsigned id);
int  worker_start(struct worker *w);
void worker_stop(struct worker *w);
/* Run H(w, ARG) on W's thread and wait for it to return. Control thread only. */
int  worker_exec(struct worker *w, worker_exec_h *h, void *arg);
/* Register/unregister MS with W's epoll; worker thread only (inside exec). */
int  worker_sock_add(struct worker *w, struct msock *ms);
void worker_sock_del(struct worker *w, struct msock *ms);
unsigned worker_id(const struct worker *w);
unsigned worker_load(const struct worker *w);
void worker_load_add(struct worker *w, int delta);
/* The time of the current wake-up: monotonic ns, and unix seconds. */
uint64_t worker_now_ns(const struct worker *w);
uint64_t worker_now_unix(const struct worker *w);
/* Worker thread: take the time of this wake-up (after waiting). */
void worker_tick(struct worker *w);
/* The eventfd control writes to when messages wait. */
int  worker_evfd(const struct worker *w);

/* ---- uring.c (worker thread: the io_uring packet loop) ---- */
struct uring;
/* Set up W's ring on the calling (worker) thread. ENOSYS/EPERM/EINVAL... when
 * the kernel cannot do it: the caller falls back to epoll. */
int  uring_alloc(struct uring **up, struct worker *w);
/* One iteration: submit, wait (<= 1 s) and handle completions. Returns true
 * when control messages wait (all SQEs are submitted then, so a message may
 * close sockets). */
bool uring_poll(struct uring *u);
/* Start/stop receiving on MS. Del cancels MS's receive; completions that
 * still arrive for it are recognised by generation and ignored, so MS may be
 * freed as soon as this returns. */
int  uring_sock_add(struct uring *u, struct msock *ms);
void uring_sock_del(struct uring *u, struct msock *ms);

/* ---- relay.c (worker thread) ---- */
/* Where one received datagram goes: sent from socket FD to TO. */
struct relay_dst {
	int fd;
	const struct sa *to;    /* borrowed: valid until the next message runs */
};
enum { RELAY_MAXDST = 1 + MSTREAM_MAX_SINKS };

/* epoll path: read MS's ready datagrams (bounded) and relay them. */
void relay_recv(struct worker *w, struct msock *ms);
/*
 * The per-datagram decision shared by both packet paths: checks, latching,
 * counters, sequence tracking, owed keyframe request, sink feedback. P/LEN
 * is the datagram received on MS from SRC/SLEN. Fills OUT (RELAY_MAXDST
 * entries) with where the same bytes must be sent and returns how many; the
 * caller sends them (P must stay valid until then). Counters already count
 * the sends as done.
 */
unsigned relay_packet(struct worker *w, struct msock *ms, uint8_t *p,
		      size_t len, const struct sockaddr *src, socklen_t slen,
		      struct relay_dst *out);
/* MS's kernel drop counter (SO_RXQ_OVFL) read as V: count the new drops. */
void relay_ovfl(struct msock *ms, uint32_t v);
/* A worker thread ends: free its receive buffers (epoll path). */
void relay_thread_end(void);

/* Segmentation offload on the epoll path (relay.c): GSO messages built,
 * the datagrams in them, and the messages the kernel refused (those went
 * out datagram by datagram). Counted per worker thread. */
struct relay_gso {
	uint64_t sends, datagrams, refused;
};
/* worker thread: add this thread's counts to *G (a worker_exec handler) */
void relay_gso_add(struct relay_gso *g);
/* Note media on MS now (mstream.last_rx for the timeout sweep). */
void relay_touch(struct worker *w, struct msock *ms);
void relay_keyframe_request(struct worker *w, struct mstream *st);
/* Loss so far from sequence numbers (RFC 3550 A.3). Worker thread. */
uint64_t relay_lost(const struct mstream *st);

/* ---- call.c ---- */
int  mcall_get(struct mcall **callp, const struct pl *callid, bool create);
void mcall_delete(struct mcall *call, const char *why);
struct party *party_find(struct mcall *call, const struct pl *tag);
int  party_add(struct party **pp, struct mcall *call, const struct pl *tag);
struct mstream *party_stream(struct party *p, unsigned index);
/* Worker (streams change): make A and B each other's one partner; their old
 * partners are left unpaired (party and streams). EINVAL for A == B. */
int  party_pair(struct party *a, struct party *b);
/* Worker: A and B become each other's peer stream; old peers lose theirs. */
void mstream_pair(struct mstream *a, struct mstream *b);
/* The following run on the call's worker (inside mcall_exec): */
int  mstream_alloc(struct mstream **stp, struct party *p, unsigned index);
int  mstream_open(struct mstream *st);
void mstream_close(struct mstream *st);
int  msock_register(struct mcall *call, struct msock *ms);
void sink_detach(struct sink *sk);
/* Snapshot the worker-owned counters of every stream of CALL. */
void mcall_sync_stats(struct mcall *call);
void mcall_sweep(uint64_t now, uint32_t timeout);
void mstats_add(struct mstats *to, const struct mstats *s);
/* Add CALL's snapshot counters (after mcall_sync_stats) to TO. */
void mstats_add_call(struct mstats *to, const struct mcall *call);
/* mem_deref OBJ (a part of CALL) on CALL's worker. */
void mcall_release(struct mcall *call, void *obj);
/* Run H on CALL's worker and wait (no-op wrapper naming the rule). */
int  mcall_exec(struct mcall *call, worker_exec_h *h, void *arg);

/* ---- offer.c ---- */
struct ng_req;
int  offer_handle(struct mbuf *reply, const struct benc_node *req,
		  bool is_answer, const char **why);

/* ---- subscribe.c ---- */
int  subscribe_request(struct mbuf *reply, const struct benc_node *req,
		       const char **why);
int  subscribe_answer(struct mbuf *reply, const struct benc_node *req,
		      const char **why);
int  unsubscribe(struct mbuf *reply, const struct benc_node *req,
		 const char **why);

/* ---- ng.c / ngquery.c ---- */
int  ng_alloc(struct ng **ngp, const char *listen);
int  ngq_query(struct mbuf *reply, const struct benc_node *req, const char **why);
int  ngq_list(struct mbuf *reply, const struct benc_node *req, const char **why);
int  ngq_statistics(struct mbuf *reply, const struct benc_node *req, const char **why);
int  ngq_delete(struct mbuf *reply, const struct benc_node *req, const char **why);
int  ngq_call_totals(struct mbuf *mb, struct mcall *call);

uint64_t media_unixtime(void);

#endif
