/*
 * test_finalize.c: the finalizer (src/recorder/finalize.c and its parts)
 * on real media. Each scenario runs tests/tools/mkrtp.py (ffmpeg's RTP
 * muxer, real H.264/VP8/PCMU/PCMA/G.722/Opus, RTCP sender reports) into
 * a temporary session folder as media.pcap, writes session.json from
 * mkrtp's description, runs finalize_session() and checks the files with
 * ffprobe/ffmpeg (subprocesses, JSON output) and by reading stereo.wav.
 *
 * Scenarios:
 *   av_two_parties  PCMU 440 + H.264 (Alice), PCMU 880 + VP8 (Bob), with
 *                   metadata; Alice's video arrives 150 ms late (network
 *                   delay): alice.mp4 (opus+h264), bob.webm (opus+vp8),
 *                   tracks.mkv (4 tracks), stereo.wav (440 left, 880
 *                   right); durations within 1 s of the capture; video
 *                   decodes without errors; A/V start within 40 ms (the
 *                   sender reports undo the delay); the Opus audio in the
 *                   mp4 carries the tone; sizes and sha256 as listed;
 *                   each party's video-minus-audio start the same in its
 *                   own file and in tracks.mkv within 2 ms (decoded
 *                   frames, and first packets + Opus pre-skip); every
 *                   track titled "<name> (<aor>) audio|video"
 *   resolution      H.264 320x240 -> 640x360 and VP8 320x240 -> 640x360
 *                   halfway, no metadata (a .mp4 and a .webm party file):
 *                   both sizes decoded from the party files and tracks.mkv
 *   pause           3 s pause (a=inactive: no packets) with the RTP clock
 *                   running, Opus on the right: stereo.wav silent
 *                   3.0-6.0 s (+-0.3) on both sides, tone elsewhere, as
 *                   long as the capture; video has a gap, no jump
 *   pause_frozen    the same with the RTP clock standing still during the
 *                   pause (timeline re-anchored from arrival times)
 *   audio_only      PCMA 440 + G.722 880, no video: two .webm (opus only)
 *   hostile         the A/V capture with packets reordered, duplicated,
 *                   lost, and Alice's audio changing SSRC halfway: counted,
 *                   sorted out, the tone goes on without a hole
 *   truncated       the capture cut in the middle of its last record
 *   no_media        an empty capture, and one with packets for other
 *                   ports only: ENODATA, "no media received"
 *   rtcp_mux        RTCP on the RTP ports (rtcp_port == port): the sender
 *                   reports are still found (A/V sync holds)
 * and, without media files, the timeline on hand-made packets:
 *   rtp_parse       CSRCs, header extension, padding, malformed packets,
 *                   sequence wrap, duplicates and reordering, sender
 *                   reports (NTP time)
 *   segments        steady 20-ms packets with jitter and one late burst:
 *                   one segment; a pause with the RTP clock stopped, and
 *                   a jump of the RTP clock: a new segment each, placed
 *                   by arrival
 * Needs python3 and ffmpeg/ffprobe (with libx264, libvpx, libopus): the
 * test fails, never skips, without them.
 *
 * TALLY_KEEP=1 keeps each scenario's session folder (the path is
 * printed); TALLY_FIN_BENCH=SECONDS runs only the speed measurement
 * (test_bench below).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <re.h>
#include "finalize.h"
#include "fin_priv.h"

#ifndef TALLY_MKRTP
#define TALLY_MKRTP "tests/tools/mkrtp.py"
#endif

enum { OUT_MAX = 4 << 20 };

struct fix {
	char dir[64];
	struct sessfile sf;
	struct odict *desc;              /* mkrtp's media.json */
	double span;                     /* seconds of capture */
};

/* --- helpers: processes, JSON, files --- */

/* Run CMD (a shell line), its stdout into a new buffer (NUL-ended);
 * returns the exit status. */
static int run(const char *cmd, char **out, size_t *len)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	int st;

	assert_non_null(p);
	assert_non_null(buf);
	for (;;) {
		size_t k;

		if (cap - n < 4096) {
			cap *= 2;
			assert_true(cap <= OUT_MAX * 4);
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		k = fread(buf + n, 1, cap - n - 1, p);
		if (!k)
			break;
		n += k;
	}
	buf[n] = '\0';
	st = pclose(p);
	if (out)
		*out = buf;
	else
		free(buf);
	if (len)
		*len = n;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static struct odict *json_of(const char *text)
{
	struct odict *o = NULL;

	assert_int_equal(json_decode_odict(&o, 32, text, strlen(text), 16),
			 0);
	return o;
}

static struct odict *json_cmd(const char *cmd)
{
	struct odict *o;
	char *out;

	if (run(cmd, &out, NULL) != 0)
		fail_msg("command failed: %s\n%s", cmd, out);
	o = json_of(out);
	free(out);
	return o;
}

static double num(const struct odict *o, const char *key)
{
	const struct odict_entry *e = odict_lookup(o, key);

	if (!e)
		return NAN;
	if (e->type == ODICT_INT)
		return (double)e->u.integer;
	if (e->type == ODICT_DOUBLE)
		return e->u.dbl;
	if (e->type == ODICT_STRING)
		return atof(e->u.str);    /* ffprobe quotes its numbers */
	return NAN;
}

static const struct odict *arr(const struct odict *o, const char *key)
{
	const struct odict_entry *e = odict_lookup(o, key);

	assert_non_null(e);
	assert_true(e->type == ODICT_ARRAY || e->type == ODICT_OBJECT);
	return e->u.odict;
}

static const struct odict *nth(const struct odict *a, size_t n)
{
	struct le *le = list_head(&a->lst);

	while (le && n--)
		le = le->next;
	assert_non_null(le);
	return ((const struct odict_entry *)le->data)->u.odict;
}

static size_t count(const struct odict *a)
{
	return list_count(&a->lst);
}

static void tool_check(void)
{
	static bool done;

	if (done)
		return;
	if (run("python3 -c 'print(1)' >/dev/null 2>&1", NULL, NULL) ||
	    run("ffmpeg -hide_banner -encoders 2>/dev/null | grep -q libopus",
		NULL, NULL) ||
	    run("ffprobe -version >/dev/null 2>&1", NULL, NULL))
		fail_msg("python3, ffmpeg (with libopus) and ffprobe are "
			 "required");
	done = true;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	tool_check();
	strcpy(f->dir, "/tmp/tally-finalize-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char cmd[160];

	mem_deref(f->desc);
	if (!getenv("TALLY_KEEP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
		assert_int_equal(system(cmd), 0);
	}
	else {
		printf("kept %s\n", f->dir);
	}
	free(f);
	return 0;
}

/* mkrtp.py into DIR/media.pcap (+ media.json) with ARGS. */
static void mkrtp(struct fix *f, const char *args)
{
	char cmd[1024], path[128], *out, *txt;
	size_t n;
	FILE *fp;

	snprintf(cmd, sizeof(cmd), "python3 %s --out %s/media.pcap %s 2>&1",
		 TALLY_MKRTP, f->dir, args);
	if (run(cmd, &out, NULL) != 0)
		fail_msg("mkrtp failed: %s\n%s", cmd, out);
	free(out);

	snprintf(path, sizeof(path), "%s/media.json", f->dir);
	fp = fopen(path, "r");
	assert_non_null(fp);
	txt = calloc(1, 1 << 20);
	assert_non_null(txt);
	n = fread(txt, 1, (1 << 20) - 1, fp);
	fclose(fp);
	txt[n] = '\0';
	f->desc = json_of(txt);
	free(txt);
	f->span = num(f->desc, "end") - num(f->desc, "start");
}

/* session.json from mkrtp's description: stream i gets label "i+1"; with
 * METADATA Alice sends 1 and 2, Bob 3 and 4. Every stream also offers
 * telephone-event (PT 101), as SRCs do. */
static void session(struct fix *f, bool metadata)
{
	const struct odict *ss = arr(f->desc, "streams");
	struct sessfile *sf = &f->sf;
	size_t i;

	memset(sf, 0, sizeof(*sf));
	sf->version = 1;
	strcpy(sf->id, "20261125T223000Z-0000f1a1");
	strcpy(sf->call_id, "finalize-test");
	sf->state = SF_FINALIZING;
	sf->started = num(f->desc, "start");
	sf->stopped = num(f->desc, "end");
	sf->has_metadata = metadata;

	for (i = 0; i < count(ss); i++) {
		const struct odict *d = nth(ss, i);
		struct sf_stream *s = &sf->streams[sf->nstreams++];

		s->index = (int)i;
		snprintf(s->label, sizeof(s->label), "%zu", i + 1);
		snprintf(s->media, sizeof(s->media), "%s",
			 odict_string(d, "media"));
		s->accepted = true;
		s->port = (uint16_t)num(d, "port");
		s->rtcp_port = (uint16_t)num(d, "rtcp_port");
		s->codecs[0].pt = (int)num(d, "pt");
		snprintf(s->codecs[0].name, sizeof(s->codecs[0].name), "%s",
			 odict_string(d, "codec"));
		s->codecs[0].clock = (uint32_t)num(d, "clock");
		s->codecs[0].channels = (int)num(d, "channels");
		snprintf(s->codecs[0].fmtp, sizeof(s->codecs[0].fmtp), "%s",
			 odict_string(d, "fmtp"));
		s->codecs[1].pt = 101;
		strcpy(s->codecs[1].name, "telephone-event");
		s->codecs[1].clock = 8000;
		s->codecs[1].channels = 1;
		s->ncodecs = 2;
		s->opened = sf->started;
	}

	if (metadata) {
		struct sf_participant *a = &sf->parts[0], *b = &sf->parts[1];

		strcpy(a->id, "cGFydHktYQ==");
		strcpy(a->aor, "sip:alice@atlanta.example.com");
		strcpy(a->name, "Alice");
		strcpy(a->send[0], "1");
		strcpy(a->send[1], "2");
		a->nsend = 2;
		strcpy(b->id, "cGFydHktQg==");
		strcpy(b->aor, "sip:bob@biloxi.example.com");
		strcpy(b->send[0], "3");
		strcpy(b->send[1], "4");
		b->nsend = 2;
		sf->nparts = 2;
	}

	assert_int_equal(sessfile_save(f->dir, sf), 0);
}

static int finalize(struct fix *f, struct fin_stats *st, char *reason)
{
	struct sessfile loaded;

	/* what the daemon does: load, finalize, save */
	assert_int_equal(sessfile_load(f->dir, &loaded), 0);
	f->sf = loaded;
	return finalize_session(f->dir, &f->sf, st, reason, 256);
}

static const struct sf_file *file_of(const struct fix *f, const char *kind,
				     const char *participant)
{
	size_t i;

	for (i = 0; i < f->sf.nfiles; i++)
		if (!strcmp(f->sf.files[i].kind, kind) &&
		    (!participant ||
		     !strcmp(f->sf.files[i].participant, participant)))
			return &f->sf.files[i];
	return NULL;
}

/* The file is on disk, size and sha256 as listed, no .tmp beside it. */
static void check_listed(const struct fix *f, const struct sf_file *fl)
{
	char cmd[256], path[160], *out;
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", f->dir, fl->name);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, fl->size);
	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
	assert_int_equal(run(cmd, &out, NULL), 0);
	assert_int_equal(strncmp(out, fl->sha256, 64), 0);
	free(out);
	snprintf(path, sizeof(path), "%s/%s.tmp", f->dir, fl->name);
	assert_int_equal(access(path, F_OK), -1);
}

static struct odict *probe(const struct fix *f, const char *name)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "ffprobe -v error -show_format "
		 "-show_streams -of json '%s/%s'", f->dir, name);
	return json_cmd(cmd);
}

static int sort_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "audio:opus,video:h264" style summary of a probe's streams, sorted (the
 * order of the tracks in a file is not part of the contract). */
static void kinds(const struct odict *pj, char *buf, size_t size)
{
	const struct odict *ss = arr(pj, "streams");
	char item[16][32];
	const char *sorted[16];
	size_t i, n = 0, nk = count(ss);

	assert_true(nk <= 16);
	for (i = 0; i < nk; i++) {
		snprintf(item[i], sizeof(item[i]), "%s:%s",
			 odict_string(nth(ss, i), "codec_type"),
			 odict_string(nth(ss, i), "codec_name"));
		sorted[i] = item[i];
	}
	qsort(sorted, nk, sizeof(*sorted), sort_cmp);
	buf[0] = '\0';
	for (i = 0; i < nk; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? "," : "",
				      sorted[i]);
}

/* The N-th participant file listed; its name must end in EXT. */
static const char *party_file(const struct fix *f, size_t n, const char *ext)
{
	size_t i, len;

	for (i = 0; i < f->sf.nfiles; i++) {
		const char *name = f->sf.files[i].name;

		if (strcmp(f->sf.files[i].kind, "participant") || n--)
			continue;
		len = strlen(name);
		if (len < strlen(ext) || strcmp(name + len - strlen(ext), ext))
			fail_msg("participant file %s, want a %s", name, ext);
		return name;
	}
	fail_msg("no participant file %zu", n);
	return NULL;
}

/* Format duration (and each stream's, where the container has one)
 * within 1 s of the capture. */
static void check_durations(const struct fix *f, const struct odict *pj,
			    const char *name)
{
	const struct odict *ss = arr(pj, "streams");
	double d = num(arr(pj, "format"), "duration");
	size_t i;

	if (!(fabs(d - f->span) <= 1.0))
		fail_msg("%s: duration %.2f s, capture %.2f s", name, d,
			 f->span);
	for (i = 0; i < count(ss); i++) {
		double sd = num(nth(ss, i), "duration");

		if (!isnan(sd) && !(fabs(sd - f->span) <= 1.0))
			fail_msg("%s: stream %zu lasts %.2f s, capture %.2f s",
				 name, i, sd, f->span);
	}
}

/* Decode stream SEL of NAME: no decoder complaints; returns the frame
 * count and sets *SIZES to how many distinct picture sizes were seen
 * (WANT_W x WANT_H counted in *HAVE if non-NULL). */
static int video_frames(const struct fix *f, const char *name,
			const char *sel, int *nsizes, const char *want,
			bool *have)
{
	char cmd[512], *out, *p, sizes[8][16];
	int n = 0, ns = 0, i;

	snprintf(cmd, sizeof(cmd), "ffmpeg -v error -nostdin -i '%s/%s' "
		 "-map 0:%s -f null - 2>&1", f->dir, name, sel);
	assert_int_equal(run(cmd, &out, NULL), 0);
	if (out[0])
		fail_msg("%s %s: decoder errors:\n%.2000s", name, sel, out);
	free(out);

	snprintf(cmd, sizeof(cmd), "ffprobe -v error -select_streams %s "
		 "-show_entries frame=width,height -of csv=p=0 '%s/%s'", sel,
		 f->dir, name);
	assert_int_equal(run(cmd, &out, NULL), 0);
	if (have)
		*have = false;
	for (p = strtok(out, "\n"); p; p = strtok(NULL, "\n")) {
		char sz[16];
		int w, h;

		if (sscanf(p, "%d,%d", &w, &h) != 2)
			continue;
		++n;
		snprintf(sz, sizeof(sz), "%dx%d", w, h);
		if (have && !strcmp(sz, want))
			*have = true;
		for (i = 0; i < ns; i++)
			if (!strcmp(sizes[i], sz))
				break;
		if (i == ns && ns < 8)
			strcpy(sizes[ns++], sz);
	}
	free(out);
	if (nsizes)
		*nsizes = ns;
	return n;
}

/* --- audio checks --- */

struct pcm {
	int rate, channels;
	int16_t *s;          /* interleaved */
	size_t frames;
};

static void wav_read(const struct fix *f, const char *name, struct pcm *w)
{
	char path[160];
	uint8_t h[44];
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(h, 1, 44, fp), 44);
	assert_memory_equal(h, "RIFF", 4);
	assert_memory_equal(h + 8, "WAVEfmt ", 8);
	assert_int_equal(h[20] | h[21] << 8, 1);             /* PCM */
	assert_int_equal(h[34] | h[35] << 8, 16);            /* bits */
	assert_memory_equal(h + 36, "data", 4);
	w->channels = h[22] | h[23] << 8;
	w->rate = h[24] | h[25] << 8 | h[26] << 16 | h[27] << 24;
	n = (size_t)(h[40] | h[41] << 8 | h[42] << 16 | (uint32_t)h[43] << 24);
	w->frames = n / 2 / (size_t)w->channels;
	w->s = malloc(n ? n : 1);
	assert_non_null(w->s);
	assert_int_equal(fread(w->s, 1, n, fp), n);      /* host is LE */
	fclose(fp);
}

/* Power of frequency HZ in channel CH from T0 for DUR seconds. */
static double goertzel(const struct pcm *w, int ch, double hz, double t0,
		       double dur)
{
	size_t a = (size_t)(t0 * w->rate), b = (size_t)((t0 + dur) * w->rate);
	double k = 2 * cos(2 * M_PI * hz / w->rate), s1 = 0, s2 = 0;
	size_t i;

	if (b > w->frames)
		b = w->frames;
	assert_true(b > a);
	for (i = a; i < b; i++) {
		double s0 = w->s[i * w->channels + ch] / 32768.0 + k * s1 - s2;

		s2 = s1;
		s1 = s0;
	}
	return (s1 * s1 + s2 * s2 - k * s1 * s2) * 2 /
		((double)(b - a) * (double)(b - a));
}

/* HZ clearly there (and OTHER not) in channel CH from T0, 1 s. */
static void tone(const struct pcm *w, int ch, double hz, double other,
		 double t0)
{
	double p = goertzel(w, ch, hz, t0, 1.0);
	double q = goertzel(w, ch, other, t0, 1.0);

	if (!(p > 1.25e-3 && p > 20 * q))
		fail_msg("channel %d at %.1f s: %.0f Hz power %.3g, %.0f Hz "
			 "%.3g", ch, t0, hz, p, other, q);
}

/* Silent runs of at least 0.3 s in channel CH (100-ms windows): up to 4
 * into RUNS (start, end); returns how many. */
static int silent_runs(const struct pcm *w, int ch, double runs[][2])
{
	size_t win = (size_t)w->rate / 10, i, j;
	double start = -1;
	int n = 0;

	for (i = 0; i + win <= w->frames; i += win) {
		double e = 0;

		for (j = i; j < i + win; j++) {
			double v = w->s[j * w->channels + ch] / 32768.0;

			e += v * v;
		}
		if (sqrt(e / (double)win) < 1e-3) {
			if (start < 0)
				start = (double)i / w->rate;
			continue;
		}
		if (start >= 0 && (double)i / w->rate - start >= 0.3 &&
		    n < 4) {
			runs[n][0] = start;
			runs[n++][1] = (double)i / w->rate;
		}
		start = -1;
	}
	if (start >= 0 && (double)w->frames / w->rate - start >= 0.3 && n < 4) {
		runs[n][0] = start;
		runs[n++][1] = (double)w->frames / w->rate;
	}
	return n;
}

static void check_stereo(const struct fix *f, struct pcm *w, double left,
			 double right)
{
	wav_read(f, "stereo.wav", w);
	assert_int_equal(w->channels, 2);
	if (!(fabs((double)w->frames / w->rate - f->span) <= 0.25))
		fail_msg("stereo.wav lasts %.2f s, capture %.2f s",
			 (double)w->frames / w->rate, f->span);
	tone(w, 0, left, right, 1.0);
	tone(w, 1, right, left, 1.0);
}

/* The audio of a party file, decoded by ffmpeg, mono 16 kHz. */
static void decoded_audio(const struct fix *f, const char *name,
			  struct pcm *w)
{
	char cmd[256];
	size_t n;

	snprintf(cmd, sizeof(cmd), "ffmpeg -v error -nostdin -i '%s/%s' "
		 "-map 0:a:0 -ac 1 -ar 16000 -f s16le -", f->dir, name);
	assert_int_equal(run(cmd, (char **)&w->s, &n), 0);
	w->rate = 16000;
	w->channels = 1;
	w->frames = n / 2;
}

/* --- pcap surgery (mkrtp writes Ethernet + IPv4 + UDP, no options) --- */

enum { REC_HDR = 16, RTP_OFF = 14 + 20 + 8 };

struct rec {
	uint8_t *p;          /* record header + frame */
	size_t len;
};

struct capfile {
	uint8_t ghdr[24];
	struct rec *r;
	size_t n;
};

static void cap_load(const struct fix *f, struct capfile *c)
{
	char path[160];
	uint8_t h[REC_HDR];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/media.pcap", f->dir);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(c->ghdr, 1, 24, fp), 24);
	c->r = NULL;
	c->n = 0;
	while (fread(h, 1, REC_HDR, fp) == REC_HDR) {
		uint32_t incl;

		memcpy(&incl, h + 8, 4);
		c->r = realloc(c->r, (c->n + 1) * sizeof(*c->r));
		assert_non_null(c->r);
		c->r[c->n].len = REC_HDR + incl;
		c->r[c->n].p = malloc(REC_HDR + incl);
		assert_non_null(c->r[c->n].p);
		memcpy(c->r[c->n].p, h, REC_HDR);
		assert_int_equal(fread(c->r[c->n].p + REC_HDR, 1, incl, fp),
				 incl);
		++c->n;
	}
	fclose(fp);
}

static void cap_save(const struct fix *f, struct capfile *c)
{
	char path[160];
	FILE *fp;
	size_t i;

	snprintf(path, sizeof(path), "%s/media.pcap", f->dir);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(c->ghdr, 1, 24, fp), 24);
	for (i = 0; i < c->n; i++) {
		assert_int_equal(fwrite(c->r[i].p, 1, c->r[i].len, fp),
				 c->r[i].len);
		free(c->r[i].p);
	}
	assert_int_equal(fclose(fp), 0);
	free(c->r);
}

static uint16_t rec_dport(const struct rec *r)
{
	const uint8_t *u = r->p + REC_HDR + 14 + 20;

	return (uint16_t)(u[2] << 8 | u[3]);
}

static uint8_t *rec_rtp(const struct rec *r)
{
	/* the UDP checksum no longer holds after an edit: 0 = none */
	r->p[REC_HDR + 14 + 20 + 6] = 0;
	r->p[REC_HDR + 14 + 20 + 7] = 0;
	return r->p + REC_HDR + RTP_OFF;
}

/* --- scenarios --- */


/* --- timing and names across the files of one recording --- */

/* First frame (decoded: mp4 edit lists, Opus pre-skip and Matroska
 * CodecDelay applied, as a player does) or first packet of stream SPEC of
 * NAME: its pts in s. */
static double first_ts(const struct fix *f, const char *name,
		       const char *spec, bool frame)
{
	char cmd[384];
	struct odict *j;
	double t;

	snprintf(cmd, sizeof(cmd), "ffprobe -v error -select_streams %s "
		 "-show_entries %s=pts_time -read_intervals %%+#1 -of json "
		 "'%s/%s'", spec, frame ? "frame" : "packet", f->dir, name);
	j = json_cmd(cmd);
	t = num(nth(arr(j, frame ? "frames" : "packets"), 0), "pts_time");
	mem_deref(j);
	assert_false(isnan(t));
	return t;
}

/* Video start minus audio start of one party in NAME (streams ASPEC,
 * VSPEC), measured twice: from decoded frames, and from first packets
 * with the Opus pre-skip (312 samples at 48 kHz, in OpusHead/dOps in
 * every container) added to the audio's first packet. */
static void av_offset(const struct fix *f, const char *name,
		      const char *aspec, const char *vspec, double *dec,
		      double *pkt)
{
	double v = first_ts(f, name, vspec, false);

	*dec = first_ts(f, name, vspec, true) - first_ts(f, name, aspec, true);
	*pkt = v - (first_ts(f, name, aspec, false) + 312.0 / 48000);
}

/* Party file PNAME and tracks.mkv (the party's streams MA, MV there) show
 * the party's audio and video at the same distance, within 2 ms. */
static void check_av_agree(const struct fix *f, const char *pname,
			   const char *ma, const char *mv)
{
	double pd, pp, md, mp;

	av_offset(f, pname, "a:0", "v:0", &pd, &pp);
	av_offset(f, "tracks.mkv", ma, mv, &md, &mp);
	printf("A/V offset (video - audio) %s: decoded %.2f ms, packets "
	       "%.2f ms; tracks.mkv: decoded %.2f ms, packets %.2f ms\n",
	       pname, pd * 1e3, pp * 1e3, md * 1e3, mp * 1e3);
	if (!(fabs(pd - md) <= 0.002) || !(fabs(pp - mp) <= 0.002))
		fail_msg("%s and tracks.mkv disagree on A/V timing: decoded "
			 "%.2f vs %.2f ms, packets %.2f vs %.2f ms", pname,
			 pd * 1e3, md * 1e3, pp * 1e3, mp * 1e3);
}

/* Every stream of NAME is named "<who> (<aor>) <medium>": Matroska/WebM
 * track title, mp4 handler name. WHO[i], AOR[i] per stream in order. */
static void check_titles(const struct fix *f, const char *name,
			 const char *const *who, const char *const *aor)
{
	struct odict *pj = probe(f, name);
	const struct odict *ss = arr(pj, "streams");
	size_t i;

	for (i = 0; i < count(ss); i++) {
		const struct odict *st = nth(ss, i);
		const struct odict_entry *te = odict_lookup(st, "tags");
		const char *type = odict_string(st, "codec_type");
		const char *t = NULL;
		char want[256];

		if (te && te->type == ODICT_OBJECT) {
			t = odict_string(te->u.odict, "title");
			if (!t)
				t = odict_string(te->u.odict, "handler_name");
		}
		snprintf(want, sizeof(want), "%s (%s) %s", who[i], aor[i],
			 type);
		if (!t || strcmp(t, want))
			fail_msg("%s stream %zu: title %s, want \"%s\"", name,
				 i, t ? t : "(none)", want);
	}
	mem_deref(pj);
}

static const char av_streams[] =
	"audio:pcmu:440 video:h264:320x240 audio:pcmu:880 video:vp8:320x240";

static void test_av_two_parties(void **state)
{
	struct fix *f = *state;
	const struct sf_file *alice, *bob, *tracks, *stereo;
	struct fin_stats st;
	struct odict *pj;
	struct pcm w, a;
	char reason[256], k[256], args[256];
	double sa = NAN, sv = NAN;
	uint64_t pkts = 0;
	size_t i;
	int n;

	snprintf(args, sizeof(args), "--seconds 6 --base-port 40000 "
		 "--delay 1:150 %s", av_streams);
	mkrtp(f, args);
	session(f, true);
	assert_int_equal(finalize(f, &st, reason), 0);
	assert_string_equal(reason, "");

	for (i = 0; i < 4; i++)
		pkts += (uint64_t)num(nth(arr(f->desc, "streams"), i),
				      "packets");
	assert_int_equal(st.packets, pkts);
	assert_true(st.rtcp >= 8);
	assert_int_equal(st.duplicates, 0);
	assert_int_equal(st.bad, 0);
	assert_true(st.frames_video >= 2 * 6 * 20);
	assert_true(fabs(st.media_seconds - f->span) < 0.2);
	assert_true(st.wall_seconds > 0);

	assert_int_equal(f->sf.nfiles, 4);
	alice = file_of(f, "participant", "cGFydHktYQ==");
	bob = file_of(f, "participant", "cGFydHktQg==");
	tracks = file_of(f, "tracks", NULL);
	stereo = file_of(f, "stereo", NULL);
	assert_non_null(alice);
	assert_non_null(bob);
	assert_non_null(tracks);
	assert_non_null(stereo);
	assert_string_equal(alice->name, "alice.mp4");
	assert_string_equal(bob->name, "bob.webm");    /* from the AOR */
	assert_string_equal(tracks->name, "tracks.mkv");
	assert_string_equal(stereo->name, "stereo.wav");
	for (i = 0; i < f->sf.nfiles; i++)
		check_listed(f, &f->sf.files[i]);

	/* the session saves and loads with its files */
	assert_int_equal(sessfile_save(f->dir, &f->sf), 0);

	pj = probe(f, "alice.mp4");
	kinds(pj, k, sizeof(k));
	assert_string_equal(k, "audio:opus,video:h264");
	check_durations(f, pj, "alice.mp4");
	for (i = 0; i < 2; i++) {
		const struct odict *s = nth(arr(pj, "streams"), i);

		if (!strcmp(odict_string(s, "codec_type"), "audio"))
			sa = num(s, "start_time");
		else
			sv = num(s, "start_time");
	}
	/* the video came 150 ms late; the sender reports put it back */
	if (!(fabs(sa - sv) <= 0.040))
		fail_msg("alice.mp4: audio starts at %.3f s, video at %.3f s",
			 sa, sv);
	mem_deref(pj);
	n = video_frames(f, "alice.mp4", "v:0", NULL, NULL, NULL);
	assert_true(n >= 6 * 25 * 9 / 10);

	pj = probe(f, "bob.webm");
	kinds(pj, k, sizeof(k));
	assert_string_equal(k, "audio:opus,video:vp8");
	check_durations(f, pj, "bob.webm");
	mem_deref(pj);
	n = video_frames(f, "bob.webm", "v:0", NULL, NULL, NULL);
	assert_true(n >= 6 * 25 * 9 / 10);

	pj = probe(f, "tracks.mkv");
	kinds(pj, k, sizeof(k));
	assert_string_equal(k, "audio:opus,audio:opus,video:h264,video:vp8");
	check_durations(f, pj, "tracks.mkv");
	mem_deref(pj);
	assert_true(video_frames(f, "tracks.mkv", "v:0", NULL, NULL, NULL) >
		    100);
	assert_true(video_frames(f, "tracks.mkv", "v:1", NULL, NULL, NULL) >
		    100);

	check_stereo(f, &w, 440, 880);
	free(w.s);

	/* one party's audio against its video: the same in every file (the
	 * Opus pre-skip once put tracks.mkv's audio 6.5 ms early) */
	check_av_agree(f, "alice.mp4", "a:0", "v:0");
	check_av_agree(f, "bob.webm", "a:1", "v:1");
	{
		static const char *const aw[] = {"Alice", "Alice"},
			*const aa[] = {"sip:alice@atlanta.example.com",
				       "sip:alice@atlanta.example.com"},
			*const bw[] = {"bob", "bob"},
			*const ba[] = {"sip:bob@biloxi.example.com",
				       "sip:bob@biloxi.example.com"},
			*const mw[] = {"Alice", "Alice", "bob", "bob"},
			*const ma[] = {"sip:alice@atlanta.example.com",
				       "sip:alice@atlanta.example.com",
				       "sip:bob@biloxi.example.com",
				       "sip:bob@biloxi.example.com"};

		check_titles(f, "alice.mp4", aw, aa);
		check_titles(f, "bob.webm", bw, ba);
		check_titles(f, "tracks.mkv", mw, ma);
	}

	/* the Opus in the party files is the party's voice */
	decoded_audio(f, "alice.mp4", &a);
	tone(&a, 0, 440, 880, 2.0);
	free(a.s);
	decoded_audio(f, "bob.webm", &a);
	tone(&a, 0, 880, 440, 2.0);
	free(a.s);
}

static void test_resolution(void **state)
{
	struct fix *f = *state;
	const char *p1, *p2;
	struct fin_stats st;
	char reason[256];
	bool big;
	int n, ns;

	mkrtp(f, "--seconds 6 --base-port 41000 audio:pcmu:440 "
	      "video:h264:320x240,640x360 audio:pcmu:880 "
	      "video:vp8:320x240,640x360");
	session(f, false);
	assert_int_equal(finalize(f, &st, reason), 0);

	assert_non_null(file_of(f, "participant", ""));
	p1 = party_file(f, 0, ".mp4");
	p2 = party_file(f, 1, ".webm");

	n = video_frames(f, p1, "v:0", &ns, "640x360", &big);
	assert_true(n >= 6 * 25 * 9 / 10);
	assert_int_equal(ns, 2);
	assert_true(big);
	n = video_frames(f, p2, "v:0", &ns, "640x360", &big);
	assert_true(n >= 6 * 25 * 9 / 10);
	assert_int_equal(ns, 2);
	assert_true(big);
	n = video_frames(f, "tracks.mkv", "v:0", &ns, "640x360", &big);
	assert_int_equal(ns, 2);
	n = video_frames(f, "tracks.mkv", "v:1", &ns, "640x360", &big);
	assert_int_equal(ns, 2);
}

static void pause_checks(struct fix *f)
{
	double runs[4][2];
	struct pcm w;
	int ch, n;

	check_stereo(f, &w, 440, 880);
	tone(&w, 0, 440, 880, 6.5);
	tone(&w, 1, 880, 440, 6.5);
	for (ch = 0; ch < 2; ch++) {
		n = silent_runs(&w, ch, runs);
		if (n != 1 || fabs(runs[0][0] - 3.0) > 0.3 ||
		    fabs(runs[0][1] - 6.0) > 0.3)
			fail_msg("stereo.wav channel %d: %d silent run(s), "
				 "first %.2f-%.2f s, want one 3.0-6.0 s", ch,
				 n, n ? runs[0][0] : 0, n ? runs[0][1] : 0);
	}
	free(w.s);
}

/* the video of a party file: one gap of about the pause, no jump */
static void video_gap(struct fix *f, const char *name)
{
	char cmd[256], *out, *p;
	double prev = -1, gap = 0, last = 0;

	snprintf(cmd, sizeof(cmd), "ffprobe -v error -select_streams v:0 "
		 "-show_entries packet=pts_time -of csv=p=0 '%s/%s'", f->dir,
		 name);
	assert_int_equal(run(cmd, &out, NULL), 0);
	for (p = strtok(out, "\n"); p; p = strtok(NULL, "\n")) {
		double t = atof(p);

		if (prev >= 0 && t - prev > gap)
			gap = t - prev;
		prev = t;
		last = t;
	}
	free(out);
	/* 3 s without packets, and up to 2 s more until the next keyframe */
	if (gap < 2.5 || gap > 5.5 || fabs(last - f->span) > 0.5)
		fail_msg("%s: largest video gap %.2f s, last frame at %.2f s",
			 name, gap, last);
}

static void test_pause(void **state)
{
	struct fix *f = *state;
	struct fin_stats st;
	char reason[256];

	mkrtp(f, "--seconds 9 --base-port 42000 --pause 3:6 audio:pcmu:440 "
	      "video:h264:320x240 audio:opus:880 video:vp8:320x240");
	session(f, true);
	assert_int_equal(finalize(f, &st, reason), 0);
	assert_true(fabs(st.media_seconds - 9.0) < 0.2);
	pause_checks(f);
	video_gap(f, "alice.mp4");
	video_gap(f, "bob.webm");
}

static void test_pause_frozen(void **state)
{
	struct fix *f = *state;
	struct fin_stats st;
	char reason[256];

	mkrtp(f, "--seconds 9 --base-port 43000 --pause 3:6 --pause-rtp stop "
	      "audio:pcmu:440 video:h264:320x240 audio:g722:880 "
	      "video:vp8:320x240");
	session(f, true);
	assert_int_equal(finalize(f, &st, reason), 0);
	assert_true(fabs(st.media_seconds - 9.0) < 0.2);
	pause_checks(f);
	video_gap(f, "alice.mp4");
}

static void test_audio_only(void **state)
{
	struct fix *f = *state;
	const char *p1, *p2;
	struct fin_stats st;
	struct odict *pj;
	char reason[256], k[128];
	struct pcm w;

	mkrtp(f, "--seconds 5 --base-port 44000 audio:pcma:440 "
	      "audio:g722:880");
	session(f, false);
	assert_int_equal(finalize(f, &st, reason), 0);
	assert_int_equal(st.frames_video, 0);
	assert_int_equal(f->sf.nfiles, 4);
	p1 = party_file(f, 0, ".webm");
	p2 = party_file(f, 1, ".webm");

	pj = probe(f, p1);
	kinds(pj, k, sizeof(k));
	assert_string_equal(k, "audio:opus");
	check_durations(f, pj, p1);
	mem_deref(pj);
	pj = probe(f, "tracks.mkv");
	kinds(pj, k, sizeof(k));
	assert_string_equal(k, "audio:opus,audio:opus");
	mem_deref(pj);

	check_stereo(f, &w, 440, 880);
	free(w.s);
	decoded_audio(f, p2, &w);
	tone(&w, 0, 880, 440, 2.0);
	free(w.s);
}

/* Indexes of the records for PORT, in file order; returns how many. */
static size_t port_recs(const struct capfile *c, uint16_t port, size_t *idx)
{
	size_t i, n = 0;

	for (i = 0; i < c->n; i++)
		if (rec_dport(&c->r[i]) == port)
			idx[n++] = i;
	return n;
}

static void test_hostile(void **state)
{
	struct fix *f = *state;
	struct capfile c;
	struct fin_stats st;
	char reason[256];
	double runs[4][2];
	struct pcm w;
	size_t *idx, i, n, dups = 0, swaps = 0;

	mkrtp(f, "--seconds 8 --base-port 45000 audio:pcmu:440 "
	      "video:h264:320x240 audio:pcmu:880 video:vp8:320x240");
	session(f, true);
	cap_load(f, &c);
	idx = calloc(c.n * 2, sizeof(*idx));
	assert_non_null(idx);

	/* Alice's audio from its 200th packet on: a new SSRC, sequence
	 * numbers and timestamps (a new sender, as after a failover) */
	n = port_recs(&c, 45000, idx);
	assert_true(n > 300);
	for (i = 200; i < n; i++) {
		uint8_t *rtp = rec_rtp(&c.r[idx[i]]);
		uint16_t seq;
		uint32_t ts;

		rtp[8] ^= 0x5a;
		memcpy(&seq, rtp + 2, 2);
		seq = htons((uint16_t)(ntohs(seq) + 0x3456));
		memcpy(rtp + 2, &seq, 2);
		memcpy(&ts, rtp + 4, 4);
		ts = htonl(ntohl(ts) + 0x7654321);
		memcpy(rtp + 4, &ts, 4);
	}

	/* three lost in a row */
	for (i = 0; i < 3; i++) {
		size_t at = idx[100] ;

		free(c.r[at].p);
		memmove(&c.r[at], &c.r[at + 1], (c.n - at - 1) * sizeof(*c.r));
		--c.n;
		n = port_recs(&c, 45000, idx);
	}

	/* every 37th arrives twice */
	for (i = 37; i < n; i += 37) {
		size_t at = idx[i] + dups;
		struct rec *r;

		c.r = realloc(c.r, (c.n + 1) * sizeof(*c.r));
		assert_non_null(c.r);
		r = &c.r[at];
		memmove(r + 1, r, (c.n - at) * sizeof(*r));
		r[1].p = malloc(r->len);
		assert_non_null(r[1].p);
		memcpy(r[1].p, r->p, r->len);
		++c.n;
		++dups;
	}

	/* every 23rd trades places with the next one (the record times
	 * stay, so the capture is still in time order: the arrival order
	 * of the two changes) */
	n = port_recs(&c, 45000, idx);
	for (i = 23; i + 1 < n; i += 23) {
		struct rec *x = &c.r[idx[i]], *y = &c.r[idx[i + 1]], t;
		uint8_t tmp[8];

		if (x->len == y->len && !memcmp(x->p + REC_HDR,
						y->p + REC_HDR, x->len - REC_HDR))
			continue;    /* a duplicate pair */
		/* ts_sec and ts_usec only: the lengths go along */
		memcpy(tmp, x->p, 8);
		memcpy(x->p, y->p, 8);
		memcpy(y->p, tmp, 8);
		t = *x;
		*x = *y;
		*y = t;
		++swaps;
	}
	free(idx);
	cap_save(f, &c);

	assert_int_equal(finalize(f, &st, reason), 0);
	assert_int_equal(st.duplicates, dups);
	assert_int_equal(st.reordered, swaps);
	assert_int_equal(st.bad, 0);

	check_stereo(f, &w, 440, 880);
	tone(&w, 0, 440, 880, 5.5);     /* after the SSRC change */
	assert_int_equal(silent_runs(&w, 0, runs), 0);
	free(w.s);
}

static void test_truncated(void **state)
{
	struct fix *f = *state;
	struct fin_stats st, st2;
	char reason[256], path[160];
	struct stat sb;
	struct pcm w;
	int fd;

	mkrtp(f, "--seconds 4 --base-port 46000 audio:pcmu:440 "
	      "video:h264:320x240 audio:pcmu:880 video:vp8:320x240");
	session(f, true);
	assert_int_equal(finalize(f, &st, reason), 0);

	/* cut into the last record: a crash mid-write */
	snprintf(path, sizeof(path), "%s/media.pcap", f->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(truncate(path, sb.st_size - 30), 0);
	assert_int_equal(finalize(f, &st2, reason), 0);
	assert_int_equal(st2.packets + st2.rtcp + 1, st.packets + st.rtcp);
	assert_int_equal(f->sf.nfiles, 4);
	check_stereo(f, &w, 440, 880);
	free(w.s);

	/* and into the last record's header */
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, sb.st_size / 2), 0);
	close(fd);
	assert_int_equal(finalize(f, &st2, reason), 0);
	assert_true(st2.packets > 0 && st2.packets < st.packets);
	assert_int_equal(f->sf.nfiles, 4);
}

static void test_no_media(void **state)
{
	struct fix *f = *state;
	struct fin_stats st;
	char reason[256], path[160];
	size_t i;

	mkrtp(f, "--seconds 1 --base-port 47000 audio:pcmu:440 "
	      "video:vp8:320x240");

	/* packets, but for other ports */
	session(f, false);
	for (i = 0; i < f->sf.nstreams; i++) {
		f->sf.streams[i].port += 100;
		f->sf.streams[i].rtcp_port += 100;
	}
	assert_int_equal(sessfile_save(f->dir, &f->sf), 0);
	assert_int_equal(finalize(f, &st, reason), ENODATA);
	assert_string_equal(reason, "no media received");
	assert_int_equal(f->sf.nfiles, 0);
	assert_int_equal(st.packets, 0);

	/* the streams refused */
	session(f, false);
	for (i = 0; i < f->sf.nstreams; i++) {
		f->sf.streams[i].accepted = false;
		f->sf.streams[i].port = 0;
	}
	assert_int_equal(sessfile_save(f->dir, &f->sf), 0);
	assert_int_equal(finalize(f, &st, reason), ENODATA);

	/* a capture with its header only, and none at all */
	session(f, false);
	snprintf(path, sizeof(path), "%s/media.pcap", f->dir);
	assert_int_equal(truncate(path, 24), 0);
	assert_int_equal(finalize(f, &st, reason), ENODATA);
	assert_string_equal(reason, "no media received");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(finalize(f, &st, reason), ENODATA);

	/* nothing left behind */
	snprintf(path, sizeof(path), "%s/tracks.mkv.tmp", f->dir);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_rtcp_mux(void **state)
{
	struct fix *f = *state;
	struct capfile c;
	struct fin_stats st;
	struct odict *pj;
	char reason[256];
	double sa = NAN, sv = NAN;
	size_t i;

	mkrtp(f, "--seconds 4 --base-port 48000 --delay 1:150 "
	      "audio:pcmu:440 video:h264:320x240");
	session(f, true);
	for (i = 0; i < f->sf.nstreams; i++)
		f->sf.streams[i].rtcp_port = f->sf.streams[i].port;
	assert_int_equal(sessfile_save(f->dir, &f->sf), 0);

	/* every RTCP packet to its stream's RTP port */
	cap_load(f, &c);
	for (i = 0; i < c.n; i++) {
		uint8_t *u = c.r[i].p + REC_HDR + 14 + 20;
		uint16_t dp = (uint16_t)(u[2] << 8 | u[3]);

		if (dp % 2) {
			--dp;
			u[2] = (uint8_t)(dp >> 8);
			u[3] = (uint8_t)dp;
			u[6] = u[7] = 0;
		}
	}
	cap_save(f, &c);

	assert_int_equal(finalize(f, &st, reason), 0);
	assert_true(st.rtcp >= 4);
	assert_int_equal(st.bad, 0);
	pj = probe(f, "alice.mp4");
	for (i = 0; i < 2; i++) {
		const struct odict *s = nth(arr(pj, "streams"), i);

		if (!strcmp(odict_string(s, "codec_type"), "audio"))
			sa = num(s, "start_time");
		else
			sv = num(s, "start_time");
	}
	mem_deref(pj);
	if (!(fabs(sa - sv) <= 0.040))
		fail_msg("alice.mp4: audio starts at %.3f s, video at %.3f s",
			 sa, sv);
}

/* --- the timeline on hand-made packets --- */

static struct sf_stream pcmu_stream = {
	.label = "1", .media = "audio", .accepted = true, .port = 4000,
	.rtcp_port = 4001,
	.codecs = {{.pt = 0, .name = "PCMU", .clock = 8000, .channels = 1},
		   {.pt = 101, .name = "telephone-event", .clock = 8000,
		    .channels = 1}},
	.ncodecs = 2,
};

static size_t rtp_make(uint8_t *p, uint8_t pt, uint16_t seq, uint32_t ts,
		       uint32_t ssrc, size_t payload)
{
	p[0] = 0x80;
	p[1] = pt;
	p[2] = (uint8_t)(seq >> 8);
	p[3] = (uint8_t)seq;
	p[4] = (uint8_t)(ts >> 24);
	p[5] = (uint8_t)(ts >> 16);
	p[6] = (uint8_t)(ts >> 8);
	p[7] = (uint8_t)ts;
	p[8] = (uint8_t)(ssrc >> 24);
	p[9] = (uint8_t)(ssrc >> 16);
	p[10] = (uint8_t)(ssrc >> 8);
	p[11] = (uint8_t)ssrc;
	memset(p + 12, 0xd5, payload);
	return 12 + payload;
}

static void test_rtp_parse(void **state)
{
	static uint8_t pk[64][256];     /* the stream points into them */
	struct fin_stream fs;
	size_t n, i;
	uint8_t *p;
	(void)state;

	memset(&fs, 0, sizeof(fs));
	fs.sfs = &pcmu_stream;

	/* plain, then two CSRCs, then an extension, then padding */
	n = rtp_make(pk[0], 0, 65534, 1000, 7, 160);
	assert_int_equal(fin_stream_add_rtp(&fs, pk[0], n, 0.0), 0);
	n = rtp_make(pk[1], 0, 65535, 1160, 7, 168);
	pk[1][0] |= 2;                                  /* CC = 2 */
	assert_int_equal(fin_stream_add_rtp(&fs, pk[1], n, 0.02), 0);
	n = rtp_make(pk[2], 0x80, 0, 1320, 7, 172);     /* marker, wraps */
	pk[2][0] |= 0x10;                               /* X */
	pk[2][12] = 0xbe;
	pk[2][13] = 0xde;
	pk[2][14] = 0;
	pk[2][15] = 2;                                  /* 2 words */
	assert_int_equal(fin_stream_add_rtp(&fs, pk[2], n, 0.04), 0);
	n = rtp_make(pk[3], 0, 1, 1480, 7, 200);
	pk[3][0] |= 0x20;                               /* P */
	pk[3][n - 1] = 40;
	assert_int_equal(fin_stream_add_rtp(&fs, pk[3], n, 0.06), 0);
	/* reordered, a duplicate, an event, another payload type */
	n = rtp_make(pk[4], 0, 3, 1800, 7, 160);
	assert_int_equal(fin_stream_add_rtp(&fs, pk[4], n, 0.08), 0);
	n = rtp_make(pk[5], 0, 2, 1640, 7, 160);
	assert_int_equal(fin_stream_add_rtp(&fs, pk[5], n, 0.081), 0);
	assert_int_equal(fin_stream_add_rtp(&fs, pk[5], n, 0.082), 0);
	n = rtp_make(pk[6], 101, 4, 1800, 7, 4);
	assert_int_equal(fin_stream_add_rtp(&fs, pk[6], n, 0.09), 0);
	n = rtp_make(pk[7], 13, 5, 1960, 7, 1);
	assert_int_equal(fin_stream_add_rtp(&fs, pk[7], n, 0.1), 0);
	/* malformed: short, version 1, CSRCs past the end, padding past
	 * the payload, an extension past the end */
	assert_int_equal(fin_stream_add_rtp(&fs, pk[0], 11, 0.1), 0);
	memcpy(pk[8], pk[0], 172);
	pk[8][0] = 0x40;
	assert_int_equal(fin_stream_add_rtp(&fs, pk[8], 172, 0.1), 0);
	n = rtp_make(pk[9], 0, 9, 0, 7, 8);
	pk[9][0] |= 0x0f;
	assert_int_equal(fin_stream_add_rtp(&fs, pk[9], n, 0.1), 0);
	n = rtp_make(pk[10], 0, 9, 0, 7, 8);
	pk[10][0] |= 0x20;
	pk[10][n - 1] = 9;
	assert_int_equal(fin_stream_add_rtp(&fs, pk[10], n, 0.1), 0);
	n = rtp_make(pk[11], 0, 9, 0, 7, 8);
	pk[11][0] |= 0x10;
	pk[11][15] = 9;
	assert_int_equal(fin_stream_add_rtp(&fs, pk[11], n, 0.1), 0);
	assert_int_equal(fs.malformed, 5);
	assert_int_equal(fs.reordered, 2);   /* the late one and its copy */

	/* a sender report: NTP 2026-11-25 22:30:00.5 UTC, RTP 1320 */
	p = pk[12];
	memset(p, 0, 28);
	p[0] = 0x80;
	p[1] = 200;
	p[3] = 6;
	p[7] = 7;
	p[8] = 0xec; p[9] = 0xd0; p[10] = 0xac; p[11] = 0x68;
	p[12] = 0x80;
	p[18] = 0x05; p[19] = 0x28;
	assert_int_equal(fin_stream_add_rtcp(&fs, p, 28, 0.05), 0);
	assert_int_equal(fs.nsrs, 1);
	assert_int_equal(fs.srs[0].ssrc, 7);
	assert_int_equal(fs.srs[0].rtp_ts, 1320);
	assert_true(fabs(fs.srs[0].ntp - 1764109800.5) < 1e-6);
	assert_int_equal(fin_stream_add_rtcp(&fs, p, 20, 0.05), 0);
	assert_int_equal(fs.nsrs, 1);

	assert_int_equal(fin_stream_order(&fs), 0);
	assert_int_equal(fs.duplicates, 1);
	assert_int_equal(fs.npkts, 8);
	assert_int_equal(fs.ngrps, 1);
	assert_int_equal(fs.nmedia, 6);
	assert_int_equal(fs.televent, 1);
	assert_int_equal(fs.other, 1);
	for (i = 0; i < 6; i++) {
		static const size_t len[6] = {160, 160, 160, 160, 160, 160};

		assert_int_equal(fs.pkts[i].len, len[i]);
		assert_int_equal(fs.pkts[i].ext_seq, fs.pkts[0].ext_seq +
				 (int64_t)i);
		assert_int_equal(fs.pkts[i].ext_ts, 1000 + 160 * (int64_t)i);
		assert_int_equal(fs.pkts[i].payload[0], 0xd5);
		assert_int_equal(fs.pkts[i].payload[159], 0xd5);
	}
	assert_true(fs.pkts[2].marker);
	assert_int_equal(fs.pkts[6].kind, FIN_TELEVENT);
	assert_int_equal(fs.pkts[7].kind, FIN_OTHER);
	fin_stream_reset(&fs);
}

/* 20-ms PCMU packets for SECS seconds from arrival T0 and timestamp TS0;
 * JIT(k) is added to the arrival of packet k. */
static void feed(struct fin_stream *fs, uint8_t (*pk)[32], size_t *k,
		 double t0, uint32_t ts0, double secs,
		 double (*jit)(size_t))
{
	size_t i, n = (size_t)(secs * 50 + 0.5);

	for (i = 0; i < n; i++, (*k)++) {
		size_t len = rtp_make(pk[*k], 0, (uint16_t)*k,
				      ts0 + 160 * (uint32_t)i, 9, 16);

		assert_int_equal(fin_stream_add_rtp(fs, pk[*k], len,
			t0 + 0.02 * (double)i + (jit ? jit(*k) : 0)), 0);
	}
}

static double jitter(size_t k)
{
	/* up to 60 ms, and a 150-ms stall at packet 300 that the next
	 * ten packets come out of in a burst */
	if (k >= 300 && k < 310)
		return 0.150 - 0.015 * (double)(k - 300);
	return 0.003 * (double)((k * 7919) % 20);
}

static double pts_of(const struct fin_stream *fs, size_t i)
{
	const struct fin_pkt *k = &fs->pkts[i];

	return (double)k->ext_ts / k->clock + k->off;
}

static void test_segments(void **state)
{
	static uint8_t pk[2048][32];
	struct fin_stream fs;
	size_t k = 0, i;
	(void)state;

	/* 20 s with jitter: one segment, every packet where its send
	 * time is (the least delayed packets set the offset) */
	memset(&fs, 0, sizeof(fs));
	fs.sfs = &pcmu_stream;
	feed(&fs, pk, &k, 10.0, 5000, 20.0, jitter);
	assert_int_equal(fin_stream_order(&fs), 0);
	fin_stream_timing(&fs);
	assert_int_equal(fs.nsegs, 1);
	for (i = 0; i < fs.npkts; i++)
		assert_true(fabs(pts_of(&fs, i) - (10.0 + 0.02 * (double)i)) <
			    0.0011);
	fin_stream_reset(&fs);

	/* a 3-s pause with the RTP clock stopped, then the clock jumps
	 * 100 s ahead at 8 s: three segments, each placed by arrival */
	memset(&fs, 0, sizeof(fs));
	fs.sfs = &pcmu_stream;
	k = 0;
	feed(&fs, pk, &k, 10.0, 5000, 2.0, NULL);
	feed(&fs, pk, &k, 15.0, 5000 + 100 * 160, 3.0, NULL);
	feed(&fs, pk, &k, 18.0, 5000 + 250 * 160 + 800000, 2.0, NULL);
	assert_int_equal(fin_stream_order(&fs), 0);
	fin_stream_timing(&fs);
	assert_int_equal(fs.nsegs, 3);
	assert_true(fabs(pts_of(&fs, 99) - 11.98) < 0.0011);
	assert_true(fabs(pts_of(&fs, 100) - 15.0) < 0.0011);
	assert_true(fabs(pts_of(&fs, 249) - 17.98) < 0.0011);
	assert_true(fabs(pts_of(&fs, 250) - 18.0) < 0.0011);
	assert_true(fabs(pts_of(&fs, 349) - 19.98) < 0.0011);
	fin_stream_span(&fs);
	assert_true(fabs(fs.first_pts - 10.0) < 0.0011);
	assert_true(fabs(fs.end_pts - 20.0) < 0.0011);
	fin_stream_reset(&fs);
}

/*
 * TALLY_FIN_BENCH=SECONDS test_finalize: only this, a SECONDS-long
 * two-party A/V session (PCMU + H.264 640x360, PCMU + VP8 640x360, as
 * bench/recbench.py makes it) finalized three times; prints the speed.
 */
static void test_bench(void **state)
{
	struct fix *f = *state;
	struct fin_stats st;
	char reason[256], args[256];
	double best = INFINITY, sum = 0;
	int secs = atoi(getenv("TALLY_FIN_BENCH")), i;

	assert_true(secs > 0);
	snprintf(args, sizeof(args), "--seconds %d --base-port 49000 "
		 "audio:pcmu:440 video:h264:640x360 audio:pcmu:880 "
		 "video:vp8:640x360", secs);
	mkrtp(f, args);
	session(f, true);
	for (i = 0; i < 3; i++) {
		assert_int_equal(finalize(f, &st, reason), 0);
		best = fmin(best, st.wall_seconds);
		sum += st.wall_seconds;
		printf("finalize run %d: %.1f s of media in %.3f s = %.0fx "
		       "realtime (%llu packets, %llu video frames)\n", i + 1,
		       st.media_seconds, st.wall_seconds,
		       st.media_seconds / st.wall_seconds,
		       (unsigned long long)st.packets,
		       (unsigned long long)st.frames_video);
	}
	printf("finalize: best %.0fx, mean %.0fx realtime\n",
	       st.media_seconds / best, st.media_seconds / (sum / 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_av_two_parties, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_resolution, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pause, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_frozen, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_audio_only, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_media, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rtcp_mux, setup,
						teardown),
		cmocka_unit_test(test_rtp_parse),
		cmocka_unit_test(test_segments),
	};

	const struct CMUnitTest bench[] = {
		cmocka_unit_test_setup_teardown(test_bench, setup, teardown),
	};

	if (getenv("TALLY_FIN_BENCH"))
		return cmocka_run_group_tests(bench, NULL, NULL);

	return cmocka_run_group_tests(tests, NULL, NULL);
}
