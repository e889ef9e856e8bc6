/*
 * frames.c: a stream's frames, out of its ordered packets (timeline.c)
 * through the depacketizers (depack.h), each with its presentation time.
 *
 * Each group (SSRC) has a depacketizer of its own (a new SSRC is a new
 * encoder: video waits for its keyframe); the groups' frames are merged
 * by presentation time, so SSRCs that follow each other play one after
 * the other and a late straggler of an old one lands where it belongs.
 * Within a group, packets come in sequence order; a hole in the sequence
 * numbers is a loss and is told to the depacketizer, which drops what it
 * broke. Telephone events, comfort noise and unknown payload types are
 * skipped without counting as a loss. A change of codec within a group
 * (an SRC may switch between the payload types it offered) flushes the
 * depacketizer and starts one for the new codec.
 *
 * A frame's time is that of the first packet of its timestamp:
 * pts = ext_ts / clock + off. The depacketizer returns a frame one push
 * late (when the timestamp changes), so the last few frame starts are
 * remembered in a small ring to map the frame's 32-bit timestamp back.
 */
#include <errno.h>
#include <string.h>
#include <re.h>
#include "fin_priv.h"

enum { RING = 8 };

/* One SSRC group's cursor: its depacketizer and its next frame. */
struct gcur {
	size_t next, end;                /* packets left: [next, end) */
	struct depack *dp;
	struct depack *old;              /* flushed, its frame still out */
	enum dp_codec codec;
	int64_t last_seq;                /* -1: none yet */
	bool loss;                       /* a hole not yet told to depack */
	struct {
		uint32_t ts;
		int64_t ext_ts;
		double off;
		uint32_t clock;
	} ring[RING];
	unsigned rn;                     /* entries written so far */
	bool flushed;                    /* no more packets: flush done */
	bool have;                       /* f is this group's next frame */
	struct fin_frame f;
};

struct fin_src {
	struct fin_stream *fs;           /* borrowed; outlives the source */
	struct gcur *g;
	size_t ng;
};

static const char *fmtp_of(const struct fin_stream *fs, uint8_t pt)
{
	size_t i;

	for (i = 0; i < fs->sfs->ncodecs; i++)
		if (fs->sfs->codecs[i].pt == pt)
			return fs->sfs->codecs[i].fmtp;

	return NULL;
}

static void dp_close(struct fin_stream *fs, struct depack **dpp)
{
	const struct dp_stats *ds;

	if (!*dpp)
		return;

	ds = depack_stats(*dpp);
	fs->dp_bad += ds->bad;
	fs->dp_lost_frames += ds->lost_frames;
	depack_free(*dpp);
	*dpp = NULL;
}

static void destructor(void *arg)
{
	struct fin_src *src = arg;
	size_t i;

	for (i = 0; i < src->ng; i++) {
		dp_close(src->fs, &src->g[i].dp);
		dp_close(src->fs, &src->g[i].old);
	}
	mem_deref(src->g);
}

int fin_src_alloc(struct fin_src **srcp, struct fin_stream *fs)
{
	struct fin_src *src;
	size_t i;

	src = mem_zalloc(sizeof(*src), destructor);
	if (!src)
		return ENOMEM;

	src->fs = fs;
	if (fs->ngrps) {
		src->g = mem_zalloc(fs->ngrps * sizeof(*src->g), NULL);
		if (!src->g) {
			mem_deref(src);
			return ENOMEM;
		}
	}
	src->ng = fs->ngrps;
	for (i = 0; i < src->ng; i++) {
		src->g[i].next = fs->grps[i].first;
		src->g[i].end = fs->grps[i].first + fs->grps[i].n;
		src->g[i].last_seq = -1;
	}

	*srcp = src;
	return 0;
}

/* Fill F from a depacketized frame; false if its start is unknown. */
static bool frame_out(const struct gcur *g, const struct dp_frame *df,
		      struct fin_frame *f)
{
	unsigned i;

	for (i = 0; i < RING && i < g->rn; i++) {
		unsigned r = (g->rn - 1 - i) % RING;

		if (g->ring[r].ts != df->rtp_ts)
			continue;

		f->data = df->data;
		f->len = df->len;
		f->codec = g->codec;
		f->clock = g->ring[r].clock;
		f->ext_ts = g->ring[r].ext_ts;
		f->pts = (double)f->ext_ts / f->clock + g->ring[r].off;
		f->keyframe = df->keyframe;
		f->width = df->width;
		f->height = df->height;
		return true;
	}

	return false;
}

/* The depacketizer's last frame, if any; the depacketizer is retired
 * (it holds that frame's bytes until the next fill). */
static bool flush(struct gcur *g)
{
	struct dp_frame df;
	bool have = false;

	if (g->dp && depack_flush(g->dp, &df) == 0)
		have = frame_out(g, &df, &g->f);
	g->old = g->dp;
	g->dp = NULL;
	return have;
}

/* The group's next frame into g->f (g->have), unless it has no more. */
static int fill(struct fin_stream *fs, struct gcur *g)
{
	struct dp_frame df;
	int err;

	dp_close(fs, &g->old);

	while (g->next < g->end) {
		const struct fin_pkt *k = &fs->pkts[g->next];
		enum dp_codec codec;
		bool lost;

		/* a new codec (the SRC switched payload types): the frame
		 * of the old one ends here */
		(void)fin_clock_of(fs, k->pt, &codec);
		if (k->kind == FIN_MEDIA && codec != g->codec) {
			bool have = flush(g);

			err = depack_alloc(&g->dp, codec, fmtp_of(fs, k->pt));
			if (err)
				return err;
			g->codec = codec;
			if (have) {
				g->have = true;
				return 0;
			}
		}

		++g->next;
		/* events and the like are part of the sequence: a hole
		 * before one is still a loss for the next media packet */
		if (g->last_seq >= 0 && k->ext_seq != g->last_seq + 1)
			g->loss = true;
		g->last_seq = k->ext_seq;

		if (k->kind != FIN_MEDIA || !g->dp)
			continue;

		lost = g->loss;
		g->loss = false;

		/* remember where frames start */
		if (!g->rn || g->ring[(g->rn - 1) % RING].ts != k->ts) {
			unsigned r = g->rn++ % RING;

			g->ring[r].ts = k->ts;
			g->ring[r].ext_ts = k->ext_ts;
			g->ring[r].off = k->off;
			g->ring[r].clock = k->clock;
		}

		err = depack_push(g->dp, k->payload, k->len, k->ts, k->marker,
				  lost, &df);
		if (err == 0 && frame_out(g, &df, &g->f)) {
			g->have = true;
			return 0;
		}
		if (err == ENOMEM)
			return err;
	}

	if (!g->flushed) {
		g->flushed = true;
		g->have = flush(g);
	}

	return 0;
}

/*
 * Groups are merged by presentation time: normally one SSRC follows the
 * other, but a straggler of an old SSRC (or two SSRCs at once) must not
 * drag the timeline back to it; the audio track cuts what overlaps.
 */
int fin_src_next(struct fin_src *src, struct fin_frame *f)
{
	struct gcur *best = NULL;
	size_t i;
	int err;

	for (i = 0; i < src->ng; i++) {
		struct gcur *g = &src->g[i];

		/* refill the group whose frame went out last time (its
		 * buffer was valid until now), or every group at first */
		/* only the group whose frame went out last time lacks one
		 * (and at first, all): that frame's buffer may go now */
		if (!g->have && !g->flushed) {
			err = fill(src->fs, g);
			if (err)
				return err;
		}
		if (g->have && (!best || g->f.pts < best->f.pts))
			best = g;
	}
	if (!best)
		return ENOENT;

	*f = best->f;
	best->have = false;
	return 0;
}
