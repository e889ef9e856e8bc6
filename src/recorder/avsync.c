/*
 * avsync.c: lip sync from RTCP sender reports (RFC 3550 6.4.1).
 *
 * timeline.c places every stream by its own arrival times, so a party's
 * video lands as late as its packets came: an encoder that takes 100 ms
 * longer than the audio one, or a network path with more delay, shifts the
 * picture against the sound. A sender report pairs an RTP timestamp with
 * the sender's wall clock (NTP), and audio and video of one sender share
 * that wall clock. For each report of a stream:
 *     s = ntp - ext_ts / clock     (sender time of RTP time 0)
 *     o = offset timeline.c gave the packet nearest the report
 *     d = o - s                    (our clock minus the sender's: clock
 *                                   difference + that stream's delay)
 * d differs between audio and video only by the difference in delay, so
 * moving the video by  delta = d_audio - d_video  puts each picture where
 * the sound captured at the same moment is. The sender's clock may be
 * hours off, which cancels in delta; it is never compared with ours.
 *
 * Audio is the reference (it is what people notice, and stereo.wav must
 * follow the wall clock). Per video segment, delta is the median over its
 * reports, each paired with the audio report that arrived nearest; a
 * segment without reports uses the stream's median. A delta beyond
 * FIN_SYNC_MAX is not believed (reports from another clock, or bogus):
 * the stream keeps its arrival timing.
 *
 * Example: audio and video captured together; video arrives 100 ms later.
 * Audio report: ntp 1000.00 <-> ts 8000 (8 kHz, s = 999.00), the audio
 * packet of ts 8000 came at session time 5.00 (o = 4.00): d_a = -995.00.
 * Video report: ntp 1000.00 <-> ts 90000 (s = 999.00), its packet came at
 * 5.10 (o = 4.10): d_v = -994.90. delta = -0.10: the video moves 100 ms
 * earlier, back in sync.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <re.h>
#include "log.h"
#include "fin_priv.h"

static const double FIN_SYNC_MAX  = 1.5;   /* s: larger deltas are bogus */
static const double FIN_SYNC_PAIR = 30.0;  /* s: audio report this near */

struct sr_d {
	double arr;
	double d;
	uint32_t seg;
};

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), dbl_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* d for every sender report of FS whose SSRC has media packets; returns
 * how many were filled into OUT (at most fs->nsrs). */
static size_t sr_delays(const struct fin_stream *fs, struct sr_d *out)
{
	size_t i, n = 0;

	for (i = 0; i < fs->nsrs; i++) {
		const struct fin_sr *r = &fs->srs[i];
		const struct fin_pkt *best = NULL;
		size_t j, g, lo, hi;
		int64_t ext;

		/* the media packet of the SSRC that arrived nearest the
		 * report: arrival is nearly sorted in sequence order, so a
		 * binary search per group and a look at the neighbours */
		for (g = 0; g < fs->ngrps; g++) {
			const struct fin_grp *gr = &fs->grps[g];

			if (gr->ssrc != r->ssrc || !gr->n)
				continue;
			lo = gr->first;
			hi = gr->first + gr->n;
			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;

				if (fs->pkts[mid].arr < r->arr)
					lo = mid + 1;
				else
					hi = mid;
			}
			lo = lo > gr->first + 32 ? lo - 32 : gr->first;
			hi = hi + 32 < gr->first + gr->n ? hi + 32 :
				gr->first + gr->n;
			for (j = lo; j < hi; j++) {
				const struct fin_pkt *k = &fs->pkts[j];

				if (k->kind != FIN_MEDIA)
					continue;
				if (!best || fabs(k->arr - r->arr) <
				    fabs(best->arr - r->arr))
					best = k;
			}
		}
		if (!best)
			continue;

		ext = best->ext_ts + (int32_t)(r->rtp_ts - best->ts);
		out[n].arr = r->arr;
		out[n].d = best->off - (r->ntp - (double)ext / best->clock);
		out[n].seg = best->seg;
		++n;
	}

	return n;
}

static void sync_one(const struct sr_d *ad, size_t na, struct fin_stream *v,
		     const char *id)
{
	struct sr_d *vd = NULL;
	double *deltas = NULL, *segd = NULL, all;
	bool *have = NULL;
	size_t nv, i, j, n, k;
	uint32_t seg;

	if (!v->nsrs || !v->nsegs)
		return;

	vd = mem_alloc(v->nsrs * sizeof(*vd), NULL);
	deltas = mem_alloc(v->nsrs * sizeof(*deltas), NULL);
	segd = mem_zalloc(v->nsegs * sizeof(*segd), NULL);
	have = mem_zalloc(v->nsegs * sizeof(*have), NULL);
	if (!vd || !deltas || !segd || !have)
		goto out;

	nv = sr_delays(v, vd);

	/* pair each video report with the nearest audio report */
	for (i = 0; i < nv; i++) {
		const struct sr_d *best = NULL;

		for (j = 0; j < na; j++)
			if (!best || fabs(ad[j].arr - vd[i].arr) <
			    fabs(best->arr - vd[i].arr))
				best = &ad[j];
		if (!best || fabs(best->arr - vd[i].arr) > FIN_SYNC_PAIR) {
			vd[i].seg = UINT32_MAX;
			continue;
		}
		vd[i].d = best->d - vd[i].d;    /* now: delta */
	}

	/* the stream's median, then one per segment */
	for (i = n = 0; i < nv; i++)
		if (vd[i].seg != UINT32_MAX)
			deltas[n++] = vd[i].d;
	if (!n)
		goto out;
	all = median(deltas, n);
	if (fabs(all) > FIN_SYNC_MAX) {
		log_warn("finalize: [%s] stream %zu: sender reports put the "
			 "video %.0f ms off the audio: not believed, arrival "
			 "timing kept", id, v->sidx, all * 1000);
		goto out;
	}

	for (seg = 0; seg < v->nsegs; seg++) {
		for (i = k = 0; i < nv; i++)
			if (vd[i].seg == seg)
				deltas[k++] = vd[i].d;
		if (!k)
			continue;
		segd[seg] = median(deltas, k);
		have[seg] = fabs(segd[seg]) <= FIN_SYNC_MAX;
	}

	for (i = 0; i < v->npkts; i++) {
		struct fin_pkt *p = &v->pkts[i];

		p->off += have[p->seg] ? segd[p->seg] : all;
	}
	v->sync_shift = all;

	LOG(fabs(all) >= 0.005 ? LOG_LVL_INFO : LOG_LVL_DEBUG,
	    "finalize: [%s] stream %zu: video moved %+.0f ms to the audio's "
	    "clock (%zu sender reports)", id, v->sidx, all * 1000, n);

 out:
	mem_deref(vd);
	mem_deref(deltas);
	mem_deref(segd);
	mem_deref(have);
}

void fin_avsync(struct fin_stream *audio, struct fin_stream **video,
		size_t nvideo, const char *id)
{
	struct sr_d *ad;
	size_t na, i;

	if (!audio || !audio->nsrs || !nvideo)
		return;

	ad = mem_alloc(audio->nsrs * sizeof(*ad), NULL);
	if (!ad)
		return;

	na = sr_delays(audio, ad);
	for (i = 0; na && i < nvideo; i++)
		sync_one(ad, na, video[i], id);

	mem_deref(ad);
}
