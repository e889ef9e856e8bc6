/*
 * test_sessfile.c: session.json (src/recorder/sessfile.c) in a temporary
 * folder.
 *
 * Covered: a full struct (every field, the maximum counts of streams,
 * codecs, participants, labels and files) saved and loaded back equal;
 * the example document of docs/recording-format.md read as written there
 * (unknown keys tolerated); hostile strings (quotes, backslashes, control
 * characters, invalid UTF-8) written as valid JSON and read back; a save
 * replacing the old file with no .tmp left behind; missing file (ENOENT),
 * garbage and a truncated document (EBADMSG); state names.
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
#include "sessfile.h"

struct fix {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/tally-sessfile-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/session.json", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char p[160];

	unlink(f->path);
	snprintf(p, sizeof(p), "%s.tmp", f->path);
	unlink(p);
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

static void fill(struct sessfile *sf)
{
	size_t i, j;

	memset(sf, 0, sizeof(*sf));
	sf->version = 1;
	strcpy(sf->id, "20261125T223000Z-3fa2b9c1");
	strcpy(sf->call_id, "d253c800-b0d1ea39-4a7dd-3f0e20a@10.0.0.1");
	strcpy(sf->session_id, "hVpd7YQgRW2nD22h7q60JQ==");
	strcpy(sf->src, "sip:2000@example.com;transport=tcp");
	sf->state = SF_FAILED;
	strcpy(sf->reason, "no media received");
	sf->started = 1764109800.123;
	sf->stopped = 1764109860.456;
	sf->has_metadata = true;

	sf->nstreams = SF_STREAMS_MAX;
	for (i = 0; i < sf->nstreams; i++) {
		struct sf_stream *s = &sf->streams[i];

		s->index = (int)i;
		snprintf(s->label, sizeof(s->label), "label-%zu", i);
		strcpy(s->media, i % 2 ? "video" : "audio");
		s->accepted = i != 3;
		if (!s->accepted)
			strcpy(s->refused, "policy: audio only");
		s->port = (uint16_t)(40000 + 2 * i);
		s->rtcp_port = (uint16_t)(i == 5 ? s->port : s->port + 1);
		s->ncodecs = i == 0 ? SF_CODECS_MAX : 1 + i % 3;
		for (j = 0; j < s->ncodecs; j++) {
			struct sf_codec *c = &s->codecs[j];

			c->pt = (int)(96 + j);
			snprintf(c->name, sizeof(c->name), "codec%zu", j);
			c->clock = j ? 90000 : 48000;
			c->channels = j ? 1 : 2;
			if (j == 1)
				strcpy(c->fmtp, "packetization-mode=1;"
				       "profile-level-id=42e01f;"
				       "sprop-parameter-sets=Z0LAHtkDxWhAAAADAEAAAAwDxYuS,aMuMsg==");
		}
		s->opened = 1764109800.120 + (double)i;
		s->closed = i % 2 ? 1764109861.5 : 0;
	}

	sf->nparts = SF_PARTS_MAX;
	for (i = 0; i < sf->nparts; i++) {
		struct sf_participant *p = &sf->parts[i];

		snprintf(p->id, sizeof(p->id), "part%02zu==", i);
		snprintf(p->aor, sizeof(p->aor), "sip:user%zu@atlanta.com", i);
		if (i % 3)
			snprintf(p->name, sizeof(p->name), "User %zu", i);
		p->nsend = i == 0 ? SF_REFS_MAX : i % 3;
		for (j = 0; j < p->nsend; j++)
			snprintf(p->send[j], SF_ID_MAX, "s%zu-%zu", i, j);
		p->nrecv = i == 1 ? SF_REFS_MAX : (i + 1) % 3;
		for (j = 0; j < p->nrecv; j++)
			snprintf(p->recv[j], SF_ID_MAX, "r%zu-%zu", i, j);
		p->left = i % 4 == 1;
		if (p->left)
			snprintf(p->left_time, sizeof(p->left_time),
				 "2010-12-16T23:41:%02zuZ", i);
	}

	sf->nfiles = SF_STREAMS_MAX;
	for (i = 0; i < sf->nfiles; i++) {
		struct sf_file *fl = &sf->files[i];

		snprintf(fl->name, sizeof(fl->name), "file%zu.webm", i);
		strcpy(fl->kind, i ? "participant" : "tracks");
		if (i)
			snprintf(fl->participant, sizeof(fl->participant),
				 "part%02zu==", i);
		fl->size = 5000000000ULL + i;
		for (j = 0; j < 64; j++)
			fl->sha256[j] = "0123456789abcdef"[(i + j) % 16];
	}
}

static void assert_same(const struct sessfile *a, const struct sessfile *b)
{
	size_t i, j;

	assert_int_equal(a->version, b->version);
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->call_id, b->call_id);
	assert_string_equal(a->session_id, b->session_id);
	assert_string_equal(a->src, b->src);
	assert_int_equal(a->state, b->state);
	assert_string_equal(a->reason, b->reason);
	assert_true(a->started - b->started < 0.0005 &&
		    b->started - a->started < 0.0005);
	assert_true(a->stopped - b->stopped < 0.0005 &&
		    b->stopped - a->stopped < 0.0005);
	assert_int_equal(a->has_metadata, b->has_metadata);

	assert_int_equal(a->nstreams, b->nstreams);
	for (i = 0; i < a->nstreams; i++) {
		const struct sf_stream *x = &a->streams[i], *y = &b->streams[i];

		assert_int_equal(x->index, y->index);
		assert_string_equal(x->label, y->label);
		assert_string_equal(x->media, y->media);
		assert_int_equal(x->accepted, y->accepted);
		assert_string_equal(x->refused, y->refused);
		assert_int_equal(x->port, y->port);
		assert_int_equal(x->rtcp_port, y->rtcp_port);
		assert_true(x->opened - y->opened < 0.0005 &&
			    y->opened - x->opened < 0.0005);
		assert_true(x->closed - y->closed < 0.0005 &&
			    y->closed - x->closed < 0.0005);
		assert_int_equal(x->ncodecs, y->ncodecs);
		for (j = 0; j < x->ncodecs; j++) {
			assert_int_equal(x->codecs[j].pt, y->codecs[j].pt);
			assert_string_equal(x->codecs[j].name,
					    y->codecs[j].name);
			assert_int_equal(x->codecs[j].clock,
					 y->codecs[j].clock);
			assert_int_equal(x->codecs[j].channels,
					 y->codecs[j].channels);
			assert_string_equal(x->codecs[j].fmtp,
					    y->codecs[j].fmtp);
		}
	}

	assert_int_equal(a->nparts, b->nparts);
	for (i = 0; i < a->nparts; i++) {
		const struct sf_participant *x = &a->parts[i], *y = &b->parts[i];

		assert_string_equal(x->id, y->id);
		assert_string_equal(x->aor, y->aor);
		assert_string_equal(x->name, y->name);
		assert_int_equal(x->nsend, y->nsend);
		for (j = 0; j < x->nsend; j++)
			assert_string_equal(x->send[j], y->send[j]);
		assert_int_equal(x->nrecv, y->nrecv);
		for (j = 0; j < x->nrecv; j++)
			assert_string_equal(x->recv[j], y->recv[j]);
		assert_int_equal(x->left, y->left);
		assert_string_equal(x->left_time, y->left_time);
	}

	assert_int_equal(a->nfiles, b->nfiles);
	for (i = 0; i < a->nfiles; i++) {
		const struct sf_file *x = &a->files[i], *y = &b->files[i];

		assert_string_equal(x->name, y->name);
		assert_string_equal(x->kind, y->kind);
		assert_string_equal(x->participant, y->participant);
		assert_int_equal(x->size, y->size);
		assert_string_equal(x->sha256, y->sha256);
	}
}

static void test_roundtrip_full(void **state)
{
	struct fix *f = *state;
	struct sessfile *a = calloc(1, sizeof(*a));
	struct sessfile *b = calloc(1, sizeof(*b));
	char tmp[160];
	enum sf_state st;

	assert_non_null(a);
	assert_non_null(b);
	fill(a);
	assert_int_equal(sessfile_save(f->dir, a), 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(sessfile_load(f->dir, b), 0);
	assert_same(a, b);

	/* every state, and a second save replaces the first */
	for (st = SF_RECORDING; st <= SF_FAILED; st++) {
		a->state = st;
		a->nfiles = st;
		assert_int_equal(sessfile_save(f->dir, a), 0);
		assert_int_equal(sessfile_load(f->dir, b), 0);
		assert_same(a, b);
	}
	assert_non_null(sessfile_stream(b, "label-7"));
	assert_int_equal(sessfile_stream(b, "label-7")->port, 40014);
	assert_null(sessfile_stream(b, "nope"));
	assert_null(sessfile_stream(b, NULL));
	free(a);
	free(b);
}

/* docs/recording-format.md's example, with keys this version does not know */
static const char doc_example[] =
	"{\n"
	"  \"version\": 1,\n"
	"  \"id\": \"20261125T223000Z-3fa2b9c1\",\n"
	"  \"call_id\": \"d253c800-b0d1ea39-4a7dd-3f0e20a\",\n"
	"  \"session_id\": \"hVpd7YQgRW2nD22h7q60JQ==\",\n"
	"  \"src\": \"sip:2000@example.com\",\n"
	"  \"state\": \"recording\",\n"
	"  \"reason\": \"\",\n"
	"  \"future_key\": {\"a\": [1, 2, {\"b\": null}]},\n"
	"  \"started\": 1764109800.123,\n"
	"  \"stopped\": 0,\n"
	"  \"has_metadata\": true,\n"
	"  \"streams\": [\n"
	"    {\"index\": 0, \"label\": \"96\", \"media\": \"audio\", \"accepted\": true,\n"
	"     \"refused\": \"\", \"port\": 40000, \"rtcp_port\": 40001,\n"
	"     \"codecs\": [{\"pt\": 0, \"name\": \"PCMU\", \"clock\": 8000, \"channels\": 1,\n"
	"                 \"fmtp\": \"\", \"x\": 1}],\n"
	"     \"opened\": 1764109800.120, \"closed\": 0, \"extra\": \"y\"},\n"
	"    {\"index\": 1, \"label\": \"97\", \"media\": \"video\", \"accepted\": false,\n"
	"     \"refused\": \"policy: audio only\", \"port\": 0, \"rtcp_port\": 0,\n"
	"     \"codecs\": [{\"pt\": 96, \"name\": \"H264\", \"clock\": 90000, \"channels\": 1,\n"
	"                 \"fmtp\": \"packetization-mode=1\"}],\n"
	"     \"opened\": 1764109800.120, \"closed\": 0}\n"
	"  ],\n"
	"  \"participants\": [\n"
	"    {\"id\": \"srfBElmCRp2QB23b7Mpk0w==\", \"aor\": \"sip:alice@atlanta.com\",\n"
	"     \"name\": \"Alice\", \"send\": [\"96\", \"97\"], \"recv\": [\"98\", \"99\"]}\n"
	"  ],\n"
	"  \"files\": [\n"
	"    {\"name\": \"alice.mp4\", \"kind\": \"participant\",\n"
	"     \"participant\": \"srfBElmCRp2QB23b7Mpk0w==\", \"size\": 123456,\n"
	"     \"sha256\": \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}\n"
	"  ]\n"
	"}\n";

static void test_doc_example(void **state)
{
	struct fix *f = *state;
	struct sessfile *sf = calloc(1, sizeof(*sf));
	const struct sf_stream *s;

	assert_non_null(sf);
	write_text(f->path, doc_example);
	assert_int_equal(sessfile_load(f->dir, sf), 0);
	assert_int_equal(sf->version, 1);
	assert_string_equal(sf->id, "20261125T223000Z-3fa2b9c1");
	assert_int_equal(sf->state, SF_RECORDING);
	assert_true(sf->started > 1764109800.122 &&
		    sf->started < 1764109800.124);
	assert_true(sf->stopped == 0);
	assert_true(sf->has_metadata);
	assert_int_equal(sf->nstreams, 2);
	s = sessfile_stream(sf, "96");
	assert_non_null(s);
	assert_true(s->accepted);
	assert_int_equal(s->port, 40000);
	assert_int_equal(s->rtcp_port, 40001);
	assert_int_equal(s->ncodecs, 1);
	assert_int_equal(s->codecs[0].pt, 0);
	assert_string_equal(s->codecs[0].name, "PCMU");
	assert_int_equal(s->codecs[0].clock, 8000);
	s = sessfile_stream(sf, "97");
	assert_non_null(s);
	assert_false(s->accepted);
	assert_string_equal(s->refused, "policy: audio only");
	assert_string_equal(s->codecs[0].fmtp, "packetization-mode=1");
	assert_int_equal(sf->nparts, 1);
	assert_string_equal(sf->parts[0].name, "Alice");
	assert_int_equal(sf->parts[0].nsend, 2);
	assert_string_equal(sf->parts[0].send[1], "97");
	assert_int_equal(sf->parts[0].nrecv, 2);
	assert_int_equal(sf->nfiles, 1);
	assert_int_equal(sf->files[0].size, 123456);
	assert_string_equal(sf->files[0].kind, "participant");
	free(sf);
}

static void test_hostile_strings(void **state)
{
	struct fix *f = *state;
	struct sessfile *a = calloc(1, sizeof(*a));
	struct sessfile *b = calloc(1, sizeof(*b));

	assert_non_null(a);
	assert_non_null(b);
	fill(a);
	strcpy(a->call_id, "a\"b\\c\td\ne/f\x01g");
	strcpy(a->parts[0].name, "Jos\xc3\xa9 \xe2\x82\xac");   /* valid */
	strcpy(a->reason, "</script>{\"x\":1}");
	assert_int_equal(sessfile_save(f->dir, a), 0);
	assert_int_equal(sessfile_load(f->dir, b), 0);
	assert_same(a, b);

	/* invalid UTF-8 (a lone continuation byte, a cut sequence, an
	 * overlong slash) is replaced, the document still parses */
	strcpy(a->parts[1].name, "x\x80y\xe2\x82z\xc0\xaf");
	assert_int_equal(sessfile_save(f->dir, a), 0);
	assert_int_equal(sessfile_load(f->dir, b), 0);
	assert_string_equal(b->parts[1].name,
			    "x\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbdz"
			    "\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(b->call_id, a->call_id);
	free(a);
	free(b);
}

static void test_bad_files(void **state)
{
	struct fix *f = *state;
	struct sessfile *sf = calloc(1, sizeof(*sf));
	char full[4096];
	FILE *fp;
	size_t n;

	assert_non_null(sf);
	assert_int_equal(sessfile_load(f->dir, sf), ENOENT);
	write_text(f->path, "not json at all");
	assert_int_equal(sessfile_load(f->dir, sf), EBADMSG);
	write_text(f->path, "");
	assert_int_equal(sessfile_load(f->dir, sf), EBADMSG);
	write_text(f->path, "[1,2,3]");
	assert_int_equal(sessfile_load(f->dir, sf), EBADMSG);

	/* a document cut in half never loads as a shorter valid one */
	fp = fopen(f->path, "w");
	assert_non_null(fp);
	n = strlen(doc_example) / 2;
	memcpy(full, doc_example, n);
	assert_int_equal(fwrite(full, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(sessfile_load(f->dir, sf), EBADMSG);

	/* saving into a folder that does not exist */
	memset(sf, 0, sizeof(*sf));
	strcpy(sf->id, "x");
	assert_int_equal(sessfile_save("/nonexistent/tally", sf), ENOENT);
	free(sf);
}

static void test_state_names(void **state)
{
	(void)state;
	assert_string_equal(sf_state_name(SF_RECORDING), "recording");
	assert_string_equal(sf_state_name(SF_FINALIZING), "finalizing");
	assert_string_equal(sf_state_name(SF_COMPLETE), "complete");
	assert_string_equal(sf_state_name(SF_FAILED), "failed");
	assert_int_equal(sf_state_parse("recording"), SF_RECORDING);
	assert_int_equal(sf_state_parse("finalizing"), SF_FINALIZING);
	assert_int_equal(sf_state_parse("complete"), SF_COMPLETE);
	assert_int_equal(sf_state_parse("failed"), SF_FAILED);
	assert_int_equal(sf_state_parse("Complete"), -1);
	assert_int_equal(sf_state_parse(""), -1);
	assert_int_equal(sf_state_parse(NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip_full, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_doc_example, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hostile_strings, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_files, setup,
						teardown),
		cmocka_unit_test(test_state_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
