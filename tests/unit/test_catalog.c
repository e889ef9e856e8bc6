/*
 * test_catalog.c: the recordings catalog (src/recorder/catalog.c) on a
 * real SQLite file in a temporary folder. The sessions are struct sessfile
 * values built by hand, so the test needs neither sessfile.c nor the
 * daemon; every answer is parsed back with libre's JSON decoder.
 *
 * Covered: open (WAL mode: the -wal file exists while open), sync of a
 * full session and its JSON shape (search rows and details), every state
 * transition (recording -> finalizing -> complete, recording -> failed,
 * finalizing -> failed) with catalog_dir() agreeing, a re-sync replacing
 * participants and files instead of adding to them, search by each filter
 * alone and combined, order and paging, strings that are not valid JSON
 * as they are, wildcard characters taken literally, delete, reopen after
 * close, and argument checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "catalog.h"

struct fix {
	char dir[64];
	char path[128];
	struct catalog *cat;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/tally-catalog-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/catalog.sqlite", f->dir);
	assert_int_equal(catalog_open(&f->cat, f->path), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char p[160];

	mem_deref(f->cat);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	unlink(f->path);
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* ---- building sessions by hand ---- */

static struct sf_stream *add_stream(struct sessfile *sf, const char *label,
				    const char *media, bool accepted)
{
	struct sf_stream *s = &sf->streams[sf->nstreams];
	struct sf_codec *c = &s->codecs[0];

	s->index = (int)sf->nstreams++;
	strcpy(s->label, label);
	strcpy(s->media, media);
	s->accepted = accepted;
	if (!accepted)
		strcpy(s->refused, "policy: audio only");
	s->port = accepted ? (uint16_t)(40000 + 2 * s->index) : 0;
	s->rtcp_port = accepted ? (uint16_t)(s->port + 1) : 0;
	s->ncodecs = 1;
	if (!strcmp(media, "audio")) {
		c->pt = 0;
		strcpy(c->name, "PCMU");
		c->clock = 8000;
	}
	else {
		c->pt = 96;
		strcpy(c->name, "H264");
		c->clock = 90000;
		strcpy(c->fmtp, "packetization-mode=1");
	}
	c->channels = 1;
	s->opened = 1764109800.120;
	return s;
}

static struct sf_participant *add_part(struct sessfile *sf, const char *id,
				       const char *aor, const char *name)
{
	struct sf_participant *p = &sf->parts[sf->nparts++];

	strcpy(p->id, id);
	strcpy(p->aor, aor);
	strcpy(p->name, name);
	return p;
}

static void add_file(struct sessfile *sf, const char *name, const char *kind,
		     const char *part, uint64_t size)
{
	struct sf_file *f = &sf->files[sf->nfiles++];

	strcpy(f->name, name);
	strcpy(f->kind, kind);
	strcpy(f->participant, part);
	f->size = size;
	memset(f->sha256, 'a', 64);
	f->sha256[64] = '\0';
}

/* A two-party session: Alice and Bob, audio from both, their video
 * refused (or accepted with VIDEO). */
static void make_sf(struct sessfile *sf, const char *id, const char *callid,
		    double started, bool video)
{
	struct sf_participant *p;

	memset(sf, 0, sizeof(*sf));
	sf->version = 1;
	strcpy(sf->id, id);
	strcpy(sf->call_id, callid);
	strcpy(sf->session_id, "hVpd7YQgRW2nD22h7q60JQ==");
	strcpy(sf->src, "sip:2000@example.com");
	sf->state = SF_RECORDING;
	sf->started = started;
	sf->has_metadata = true;
	add_stream(sf, "96", "audio", true);
	add_stream(sf, "97", "video", video);
	add_stream(sf, "98", "audio", true);
	add_stream(sf, "99", "video", video);
	p = add_part(sf, "srfBElmCRp2QB23b7Mpk0w==", "sip:alice@atlanta.com",
		     "Alice");
	strcpy(p->send[p->nsend++], "96");
	strcpy(p->send[p->nsend++], "97");
	strcpy(p->recv[p->nrecv++], "98");
	strcpy(p->recv[p->nrecv++], "99");
	p = add_part(sf, "zSfPoSvdSDCmU3A3TRDxAw==", "sip:bob@biloxi.com",
		     "Bob");
	strcpy(p->send[p->nsend++], "98");
	strcpy(p->send[p->nsend++], "99");
	strcpy(p->recv[p->nrecv++], "96");
	strcpy(p->recv[p->nrecv++], "97");
}

static const char *folder(const struct sessfile *sf)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "/var/lib/tally/recordings/%s", sf->id);
	return buf;
}

/* ---- reading answers ---- */

static struct odict *decode(struct mbuf *mb)
{
	struct odict *od = NULL;

	assert_int_equal(json_decode_odict(&od, 32, (const char *)mb->buf,
					   mb->end, 32), 0);
	return od;
}

static const struct odict *sub(const struct odict *o, enum odict_type t,
			       const char *key)
{
	const struct odict_entry *e = odict_get_type(o, t, key);

	assert_non_null(e);
	return e->u.odict;
}

static const struct odict *nth(const struct odict *arr, unsigned n)
{
	struct le *le = list_head(&arr->lst);
	const struct odict_entry *e;

	while (le && n--)
		le = le->next;
	assert_non_null(le);
	e = le->data;
	assert_int_equal(e->type, ODICT_OBJECT);
	return e->u.odict;
}

static const char *nth_str(const struct odict *arr, unsigned n)
{
	struct le *le = list_head(&arr->lst);
	const struct odict_entry *e;

	while (le && n--)
		le = le->next;
	assert_non_null(le);
	e = le->data;
	assert_int_equal(e->type, ODICT_STRING);
	return e->u.str;
}

static double num(const struct odict *o, const char *key)
{
	const struct odict_entry *e = odict_lookup(o, key);

	assert_non_null(e);
	if (e->type == ODICT_INT)
		return (double)e->u.integer;
	assert_int_equal(e->type, ODICT_DOUBLE);
	return e->u.dbl;
}

static bool is_null(const struct odict *o, const char *key)
{
	const struct odict_entry *e = odict_lookup(o, key);

	assert_non_null(e);
	return e->type == ODICT_NULL;
}

static const char *str(const struct odict *o, const char *key)
{
	const char *s = odict_string(o, key);

	assert_non_null(s);
	return s;
}

/* Search with Q; returns the ids, newest first, as "a b c". */
static void search_ids(struct catalog *cat, const struct cat_query *q,
		       char *out, size_t size)
{
	struct mbuf *mb = mbuf_alloc(1024);
	struct odict *od;
	const struct odict *recs;
	struct le *le;

	assert_non_null(mb);
	assert_int_equal(catalog_search(cat, q, mb), 0);
	od = decode(mb);
	recs = sub(od, ODICT_ARRAY, "recordings");
	out[0] = '\0';
	for (le = list_head(&recs->lst); le; le = le->next) {
		const struct odict_entry *e = le->data;

		if (out[0])
			strncat(out, " ", size - strlen(out) - 1);
		strncat(out, str(e->u.odict, "id"), size - strlen(out) - 1);
	}
	mem_deref(od);
	mem_deref(mb);
}

static enum sf_state state_of(struct catalog *cat, const char *id)
{
	char dir[256];
	enum sf_state st = SF_RECORDING;

	assert_int_equal(catalog_dir(cat, id, dir, sizeof(dir), &st), 0);
	return st;
}

/* ---- tests ---- */

static void test_open_wal(void **state)
{
	struct fix *f = *state;
	struct sessfile sf;
	char wal[160];
	struct stat st;

	make_sf(&sf, "20261125T223000Z-00000001", "call-1", 1764109800.123,
		false);
	assert_int_equal(catalog_sync(f->cat, &sf, folder(&sf)), 0);
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_int_equal(stat(wal, &st), 0);
	assert_true(S_ISREG(st.st_mode));
}

static void test_sync_get(void **state)
{
	struct fix *f = *state;
	struct sessfile sf;
	struct mbuf *mb = mbuf_alloc(1024);
	struct odict *od;
	const struct odict *a, *o;
	char dir[256];
	enum sf_state st;

	make_sf(&sf, "20261125T223000Z-3fa2b9c1", "d253c800-b0d1ea39",
		1764109800.123, false);
	add_file(&sf, "media.pcap", "capture", "", 4242);
	assert_int_equal(catalog_sync(f->cat, &sf, folder(&sf)), 0);

	assert_int_equal(catalog_dir(f->cat, sf.id, dir, sizeof(dir), &st), 0);
	assert_string_equal(dir, folder(&sf));
	assert_int_equal(st, SF_RECORDING);
	assert_int_equal(catalog_dir(f->cat, sf.id, dir, 8, &st),
			 ENAMETOOLONG);

	assert_int_equal(catalog_get(f->cat, sf.id, mb), 0);
	/* times keep their milliseconds, rounded (not cut to .122) */
	{
		static const char want[] = "\"started\":1764109800.123,";

		assert_non_null(memmem(mb->buf, mb->end, want,
				       sizeof(want) - 1));
	}
	od = decode(mb);
	assert_string_equal(str(od, "id"), sf.id);
	assert_string_equal(str(od, "call_id"), "d253c800-b0d1ea39");
	assert_string_equal(str(od, "session_id"), sf.session_id);
	assert_string_equal(str(od, "src"), "sip:2000@example.com");
	assert_string_equal(str(od, "state"), "recording");
	assert_string_equal(str(od, "reason"), "");
	assert_true(num(od, "started") > 1764109800.12 &&
		    num(od, "started") < 1764109800.13);
	assert_true(is_null(od, "stopped"));
	assert_true(is_null(od, "duration"));

	a = sub(od, ODICT_ARRAY, "media_recorded");
	assert_int_equal(odict_count(a, false), 1);
	assert_string_equal(nth_str(a, 0), "audio");
	a = sub(od, ODICT_ARRAY, "media_refused");
	assert_int_equal(odict_count(a, false), 1);
	assert_string_equal(nth_str(a, 0), "video");

	/* details: participants with their labels */
	a = sub(od, ODICT_ARRAY, "participants");
	assert_int_equal(odict_count(a, false), 2);
	o = nth(a, 0);
	assert_string_equal(str(o, "id"), "srfBElmCRp2QB23b7Mpk0w==");
	assert_string_equal(str(o, "aor"), "sip:alice@atlanta.com");
	assert_string_equal(str(o, "name"), "Alice");
	assert_string_equal(nth_str(sub(o, ODICT_ARRAY, "send"), 1), "97");
	assert_string_equal(nth_str(sub(o, ODICT_ARRAY, "recv"), 0), "98");

	/* streams: label, media, accepted, refused, codecs */
	a = sub(od, ODICT_ARRAY, "streams");
	assert_int_equal(odict_count(a, false), 4);
	o = nth(a, 1);
	assert_string_equal(str(o, "label"), "97");
	assert_string_equal(str(o, "media"), "video");
	assert_non_null(odict_get_type(o, ODICT_BOOL, "accepted"));
	assert_false(odict_get_type(o, ODICT_BOOL, "accepted")->u.boolean);
	assert_string_equal(str(o, "refused"), "policy: audio only");
	o = nth(sub(o, ODICT_ARRAY, "codecs"), 0);
	assert_string_equal(str(o, "name"), "H264");
	assert_int_equal((int)num(o, "clock"), 90000);
	assert_string_equal(str(o, "fmtp"), "packetization-mode=1");

	a = sub(od, ODICT_ARRAY, "files");
	o = nth(a, 0);
	assert_string_equal(str(o, "name"), "media.pcap");
	assert_int_equal((int)num(o, "size"), 4242);
	assert_int_equal(strlen(str(o, "sha256")), 64);
	mem_deref(od);

	/* unknown id */
	mbuf_reset(mb);
	assert_int_equal(catalog_get(f->cat, "nope", mb), ENOENT);
	assert_int_equal(mb->end, 0);
	assert_int_equal(catalog_dir(f->cat, "nope", dir, sizeof(dir), &st),
			 ENOENT);
	mem_deref(mb);
}

static void test_transitions(void **state)
{
	struct fix *f = *state;
	struct sessfile a, b, c;
	struct mbuf *mb = mbuf_alloc(1024);
	struct odict *od;
	const struct odict *files;

	/* recording -> finalizing -> complete */
	make_sf(&a, "20261125T100000Z-aaaaaaaa", "call-a", 1764064800, true);
	assert_int_equal(catalog_sync(f->cat, &a, folder(&a)), 0);
	assert_int_equal(state_of(f->cat, a.id), SF_RECORDING);
	a.state = SF_FINALIZING;
	a.stopped = 1764064860.5;
	assert_int_equal(catalog_sync(f->cat, &a, folder(&a)), 0);
	assert_int_equal(state_of(f->cat, a.id), SF_FINALIZING);
	a.state = SF_COMPLETE;
	add_file(&a, "alice.mp4", "participant", a.parts[0].id, 123456);
	add_file(&a, "bob.mp4", "participant", a.parts[1].id, 654321);
	add_file(&a, "tracks.mkv", "tracks", "", 777);
	add_file(&a, "stereo.wav", "stereo", "", 888);
	assert_int_equal(catalog_sync(f->cat, &a, folder(&a)), 0);
	assert_int_equal(state_of(f->cat, a.id), SF_COMPLETE);

	assert_int_equal(catalog_get(f->cat, a.id, mb), 0);
	od = decode(mb);
	assert_string_equal(str(od, "state"), "complete");
	assert_true(num(od, "stopped") > 1764064860.4);
	assert_true(num(od, "duration") > 60.4 && num(od, "duration") < 60.6);
	assert_int_equal(odict_count(sub(od, ODICT_ARRAY, "media_recorded"),
				     false), 2);
	assert_int_equal(odict_count(sub(od, ODICT_ARRAY, "media_refused"),
				     false), 0);
	files = sub(od, ODICT_ARRAY, "files");
	assert_int_equal(odict_count(files, false), 4);
	assert_string_equal(str(nth(files, 0), "participant"), a.parts[0].id);
	assert_string_equal(str(nth(files, 2), "kind"), "tracks");
	mem_deref(od);

	/* recording -> failed, with the reason */
	make_sf(&b, "20261125T110000Z-bbbbbbbb", "call-b", 1764068400, false);
	assert_int_equal(catalog_sync(f->cat, &b, folder(&b)), 0);
	b.state = SF_FAILED;
	strcpy(b.reason, "no media received");
	b.stopped = 1764068700;
	assert_int_equal(catalog_sync(f->cat, &b, folder(&b)), 0);
	assert_int_equal(state_of(f->cat, b.id), SF_FAILED);
	mbuf_reset(mb);
	assert_int_equal(catalog_get(f->cat, b.id, mb), 0);
	od = decode(mb);
	assert_string_equal(str(od, "reason"), "no media received");
	mem_deref(od);

	/* finalizing -> failed (the finalizer gave up) */
	make_sf(&c, "20261125T120000Z-cccccccc", "call-c", 1764072000, false);
	c.state = SF_FINALIZING;
	c.stopped = 1764072100;
	assert_int_equal(catalog_sync(f->cat, &c, folder(&c)), 0);
	assert_int_equal(state_of(f->cat, c.id), SF_FINALIZING);
	c.state = SF_FAILED;
	strcpy(c.reason, "finalize: no decodable stream");
	assert_int_equal(catalog_sync(f->cat, &c, folder(&c)), 0);
	assert_int_equal(state_of(f->cat, c.id), SF_FAILED);

	mem_deref(mb);
}

/* A second sync replaces the participant and file rows (no duplicates),
 * and what the session no longer has is no longer found. */
static void test_resync_replaces(void **state)
{
	struct fix *f = *state;
	struct sessfile sf;
	struct cat_query q;
	struct mbuf *mb = mbuf_alloc(1024);
	struct odict *od;
	const struct odict *row;
	char ids[256];

	make_sf(&sf, "20261125T130000Z-dddddddd", "call-d", 1764075600,
		false);
	add_file(&sf, "media.pcap", "capture", "", 1);
	assert_int_equal(catalog_sync(f->cat, &sf, folder(&sf)), 0);
	assert_int_equal(catalog_sync(f->cat, &sf, folder(&sf)), 0);
	memset(&q, 0, sizeof(q));
	assert_int_equal(catalog_search(f->cat, &q, mb), 0);
	od = decode(mb);
	row = nth(sub(od, ODICT_ARRAY, "recordings"), 0);
	assert_int_equal(odict_count(sub(row, ODICT_ARRAY, "participants"),
				     false), 2);
	assert_int_equal(odict_count(sub(row, ODICT_ARRAY, "files"), false),
			 1);
	mem_deref(od);

	/* new metadata: Bob left, Carol joined */
	strcpy(sf.parts[1].aor, "sip:carol@chicago.com");
	strcpy(sf.parts[1].name, "Carol");
	assert_int_equal(catalog_sync(f->cat, &sf, folder(&sf)), 0);
	q.participant = "bob";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "");
	q.participant = "carol";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, sf.id);
	mem_deref(mb);
}

/* Four sessions for the search tests:
 *   s1 10:00 complete  alice+bob     audio          call-1
 *   s2 11:00 failed    carol+dave    audio+video    call-2
 *   s3 12:00 recording alice+erin    audio+video    call-3
 *   s4 13:00 complete  frank+grace   audio          call-4 */
static void load_four(struct catalog *cat)
{
	struct sessfile sf;

	make_sf(&sf, "s1", "call-1", 1764064800, false);
	sf.state = SF_COMPLETE;
	sf.stopped = 1764064900;
	assert_int_equal(catalog_sync(cat, &sf, "/x/s1"), 0);

	make_sf(&sf, "s2", "call-2", 1764068400, true);
	strcpy(sf.parts[0].aor, "sip:carol@chicago.com");
	strcpy(sf.parts[0].name, "Carol");
	strcpy(sf.parts[1].aor, "sip:dave@denver.com");
	strcpy(sf.parts[1].name, "Dave Smith");
	sf.state = SF_FAILED;
	strcpy(sf.reason, "disk full");
	assert_int_equal(catalog_sync(cat, &sf, "/x/s2"), 0);

	make_sf(&sf, "s3", "call-3", 1764072000, true);
	strcpy(sf.parts[1].aor, "sip:erin@example.org");
	strcpy(sf.parts[1].name, "Erin");
	assert_int_equal(catalog_sync(cat, &sf, "/x/s3"), 0);

	make_sf(&sf, "s4", "call-4", 1764075600, false);
	strcpy(sf.parts[0].aor, "sip:frank@example.org");
	strcpy(sf.parts[0].name, "Frank");
	strcpy(sf.parts[1].aor, "sip:grace@example.org");
	strcpy(sf.parts[1].name, "Grace 100%");
	sf.state = SF_COMPLETE;
	assert_int_equal(catalog_sync(cat, &sf, "/x/s4"), 0);
}

static void test_search_filters(void **state)
{
	struct fix *f = *state;
	struct cat_query q;
	char ids[256];

	load_four(f->cat);
	memset(&q, 0, sizeof(q));
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s4 s3 s2 s1");           /* newest first */

	/* participant: substring of the AOR or the name, ASCII-insensitive */
	q.participant = "alice";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s3 s1");
	q.participant = "ALICE@atlanta";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s3 s1");
	q.participant = "smith";                           /* the name */
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s2");
	q.participant = "example.org";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s4 s3");
	/* LIKE wildcards are plain characters here */
	q.participant = "%";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s4");
	q.participant = "_";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "");
	q.participant = "";                                /* no filter */
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s4 s3 s2 s1");
	q.participant = NULL;

	/* call_id: exact */
	q.call_id = "call-2";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s2");
	q.call_id = "call-";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "");
	q.call_id = NULL;

	/* time range, inclusive */
	q.from = 1764068400;
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s4 s3 s2");
	q.to = 1764072000;
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s3 s2");
	q.from = 0;
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s3 s2 s1");
	q.to = 0;

	/* media recorded */
	q.media = "video";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s3 s2");
	q.media = "audio";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s4 s3 s2 s1");
	q.media = "aud";                                   /* whole names */
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "");
	q.media = NULL;

	/* state */
	q.state = "complete";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s4 s1");
	q.state = "recording";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s3");
	q.state = "failed";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s2");
	q.state = "finalizing";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "");
	q.state = NULL;

	/* combined */
	q.participant = "alice";
	q.media = "video";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s3");
	q.state = "complete";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "");
	memset(&q, 0, sizeof(q));

	/* paging */
	q.limit = 2;
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s4 s3");
	q.offset = 2;
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s2 s1");
	q.offset = 4;
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "");
}

/* Every search row has the documented members, with the right types. */
static void test_search_shape(void **state)
{
	static const char *const keys[] = {
		"id", "call_id", "session_id", "src", "state", "reason",
		"started", "stopped", "duration", "media_recorded",
		"media_refused", "participants", "files",
	};
	struct fix *f = *state;
	struct cat_query q;
	struct mbuf *mb = mbuf_alloc(1024);
	struct odict *od;
	const struct odict *row, *p;
	struct sessfile sf;
	size_t i;

	make_sf(&sf, "shape-1", "call-shape", 1764064800, true);
	sf.state = SF_COMPLETE;
	sf.stopped = 1764064830;
	add_file(&sf, "alice.webm", "participant", sf.parts[0].id, 99);
	assert_int_equal(catalog_sync(f->cat, &sf, "/x/shape-1"), 0);

	memset(&q, 0, sizeof(q));
	assert_int_equal(catalog_search(f->cat, &q, mb), 0);
	od = decode(mb);
	assert_int_equal(odict_count(od, false), 1);       /* "recordings" */
	row = nth(sub(od, ODICT_ARRAY, "recordings"), 0);
	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		if (!odict_lookup(row, keys[i]))
			fail_msg("search row without \"%s\"", keys[i]);
	}
	assert_int_equal((int)num(row, "duration"), 30);
	assert_string_equal(nth_str(sub(row, ODICT_ARRAY, "media_recorded"),
				    1), "video");
	p = nth(sub(row, ODICT_ARRAY, "participants"), 1);
	assert_string_equal(str(p, "id"), "zSfPoSvdSDCmU3A3TRDxAw==");
	assert_string_equal(str(p, "aor"), "sip:bob@biloxi.com");
	assert_string_equal(str(p, "name"), "Bob");
	/* the search row is the short form: no labels, no streams */
	assert_null(odict_lookup(p, "send"));
	assert_null(odict_lookup(row, "streams"));
	p = nth(sub(row, ODICT_ARRAY, "files"), 0);
	assert_string_equal(str(p, "name"), "alice.webm");
	assert_string_equal(str(p, "kind"), "participant");
	assert_string_equal(str(p, "participant"), sf.parts[0].id);
	assert_int_equal((int)num(p, "size"), 99);
	assert_int_equal(strlen(str(p, "sha256")), 64);
	mem_deref(od);
	mem_deref(mb);
}

/* Metadata is network input: quotes, backslashes, control bytes,
 * invalid UTF-8 and a field filling its whole array still give JSON. */
static void test_hostile_strings(void **state)
{
	struct fix *f = *state;
	struct sessfile sf;
	struct mbuf *mb = mbuf_alloc(1024);
	struct cat_query q;
	struct odict *od;
	const struct odict *p;

	make_sf(&sf, "hostile-1", "x\"y\\z", 1764064800, false);
	strcpy(sf.parts[0].name, "A\x01" "B\xff" "C\xc3\xa9\n");
	memset(sf.parts[1].name, 'n', sizeof(sf.parts[1].name));
	memset(sf.streams[0].label, 'l', sizeof(sf.streams[0].label));
	assert_int_equal(catalog_sync(f->cat, &sf, "/x/hostile-1"), 0);

	assert_int_equal(catalog_get(f->cat, sf.id, mb), 0);
	od = decode(mb);
	assert_string_equal(str(od, "call_id"), "x\"y\\z");
	p = nth(sub(od, ODICT_ARRAY, "participants"), 0);
	assert_string_equal(str(p, "name"),
			    "A\x01" "B\xef\xbf\xbd" "C\xc3\xa9\n");
	p = nth(sub(od, ODICT_ARRAY, "participants"), 1);
	assert_int_equal(strlen(str(p, "name")), SF_TEXT_MAX);
	p = nth(sub(od, ODICT_ARRAY, "streams"), 0);
	assert_int_equal(strlen(str(p, "label")), SF_ID_MAX);
	mem_deref(od);

	memset(&q, 0, sizeof(q));
	mbuf_reset(mb);
	assert_int_equal(catalog_search(f->cat, &q, mb), 0);
	od = decode(mb);
	mem_deref(od);
	mem_deref(mb);
}

static void test_delete(void **state)
{
	struct fix *f = *state;
	struct cat_query q;
	struct mbuf *mb = mbuf_alloc(256);
	char ids[256], dir[64];

	load_four(f->cat);
	assert_int_equal(catalog_delete(f->cat, "s3"), 0);
	assert_int_equal(catalog_get(f->cat, "s3", mb), ENOENT);
	assert_int_equal(catalog_dir(f->cat, "s3", dir, sizeof(dir), NULL),
			 ENOENT);
	assert_int_equal(catalog_delete(f->cat, "s3"), ENOENT);
	assert_int_equal(catalog_delete(f->cat, "nope"), ENOENT);

	memset(&q, 0, sizeof(q));
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s4 s2 s1");
	/* its participant rows went with it */
	q.participant = "erin";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "");
	q.participant = "alice";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s1");
	mem_deref(mb);
}

static void test_reopen(void **state)
{
	struct fix *f = *state;
	struct cat_query q;
	char ids[256];

	load_four(f->cat);
	f->cat = mem_deref(f->cat);
	assert_int_equal(catalog_open(&f->cat, f->path), 0);
	memset(&q, 0, sizeof(q));
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s4 s3 s2 s1");
	q.participant = "grace";
	search_ids(f->cat, &q, ids, sizeof(ids));
	assert_string_equal(ids, "s4");
	assert_int_equal(state_of(f->cat, "s2"), SF_FAILED);

	/* a second handle on the same file sees the same rows (WAL) */
	{
		struct catalog *c2 = NULL;

		assert_int_equal(catalog_open(&c2, f->path), 0);
		memset(&q, 0, sizeof(q));
		search_ids(c2, &q, ids, sizeof(ids));
		assert_string_equal(ids, "s4 s3 s2 s1");
		mem_deref(c2);
	}
}

static void test_args(void **state)
{
	struct fix *f = *state;
	struct cat_query q;
	struct sessfile sf;
	struct mbuf *mb = mbuf_alloc(64);
	struct catalog *c = NULL;

	assert_int_equal(catalog_open(&c, ""), EINVAL);
	assert_int_equal(catalog_open(&c, "/nonexistent-dir/x/cat.sqlite"),
			 ENOENT);
	assert_null(c);

	make_sf(&sf, "args-1", "call", 1, false);
	sf.state = (enum sf_state)7;
	assert_int_equal(catalog_sync(f->cat, &sf, "/x"), EINVAL);
	sf.state = SF_RECORDING;
	sf.id[0] = '\0';
	assert_int_equal(catalog_sync(f->cat, &sf, "/x"), EINVAL);

	memset(&q, 0, sizeof(q));
	q.limit = 1001;
	assert_int_equal(catalog_search(f->cat, &q, mb), EINVAL);
	q.limit = 1000;
	q.state = "done";
	assert_int_equal(catalog_search(f->cat, &q, mb), EINVAL);
	q.state = NULL;
	q.from = -1;
	assert_int_equal(catalog_search(f->cat, &q, mb), EINVAL);
	assert_int_equal(mb->end, 0);

	assert_true(catalog_state_valid("finalizing"));
	assert_false(catalog_state_valid("Finalizing"));
	assert_false(catalog_state_valid(NULL));
	mem_deref(mb);
}

static int group_setup(void **state)
{
	(void)state;
	return libre_init();
}

static int group_teardown(void **state)
{
	(void)state;
	libre_close();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_wal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transitions, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_resync_replaces, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_search_filters, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_search_shape, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hostile_strings, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_args, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
