/*
 * fuzz_rsmeta.c: libFuzzer harness for the SIPREC metadata model (rsmeta.c,
 * libxml2 underneath).
 *
 * Input: one metadata document. It is applied to an empty model, and as an
 * update to the model of a two-party audio/video recording (the RFC 7865
 * s8.1 shape, built in). The kept corpus holds every metadata document of
 * tests/data/siprec plus hand-made edge cases.
 *
 * Properties: a refusal names its reason ("metadata: ...") and leaves the
 * model byte for byte unchanged; an accepted document leaves every count
 * within its array and every string terminated inside its field, and
 * applying it a second time changes nothing but the document count;
 * rsmeta_check and rsmeta_to_sessfile then run on the result and give
 * labels that exist, at most SF_REFS_MAX per list.
 */
#include <errno.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "rsmeta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base_doc[] =
	"<recording xmlns='urn:ietf:params:xml:ns:recording:1'>"
	"<datamode>complete</datamode>"
	"<session session_id='hVpd7YQgRW2nD22h7q60JQ=='/>"
	"<participant participant_id='srfBElmCRp2QB23b7Mpk0w=='>"
	"<nameID aor='sip:bob@biloxi.com'><name>Bob</name></nameID>"
	"</participant>"
	"<participant participant_id='zSfPoSvdSDCmU3A3TRDxAw=='>"
	"<nameID aor='sip:Paul@biloxi.com'><name>Paul</name></nameID>"
	"</participant>"
	"<stream stream_id='UAAMm5GRQKSCMVvLyl4rFw=='><label>96</label>"
	"</stream>"
	"<stream stream_id='i1Pz3to5hGk8fuXl+PbwCw=='><label>97</label>"
	"</stream>"
	"<stream stream_id='8zc6e0lYTlWIINA6GR+3ag=='><label>98</label>"
	"</stream>"
	"<stream stream_id='EiXGlc+4TruqqoDaNE76ag=='><label>99</label>"
	"</stream>"
	"<participantsessionassoc participant_id='srfBElmCRp2QB23b7Mpk0w=='"
	" session_id='hVpd7YQgRW2nD22h7q60JQ=='/>"
	"<participantsessionassoc participant_id='zSfPoSvdSDCmU3A3TRDxAw=='"
	" session_id='hVpd7YQgRW2nD22h7q60JQ=='/>"
	"<participantstreamassoc participant_id='srfBElmCRp2QB23b7Mpk0w=='>"
	"<send>i1Pz3to5hGk8fuXl+PbwCw==</send>"
	"<send>UAAMm5GRQKSCMVvLyl4rFw==</send>"
	"<recv>8zc6e0lYTlWIINA6GR+3ag==</recv>"
	"<recv>EiXGlc+4TruqqoDaNE76ag==</recv></participantstreamassoc>"
	"<participantstreamassoc participant_id='zSfPoSvdSDCmU3A3TRDxAw=='>"
	"<send>8zc6e0lYTlWIINA6GR+3ag==</send>"
	"<send>EiXGlc+4TruqqoDaNE76ag==</send>"
	"<recv>UAAMm5GRQKSCMVvLyl4rFw==</recv>"
	"<recv>i1Pz3to5hGk8fuXl+PbwCw==</recv></participantstreamassoc>"
	"</recording>";

static const char *const sdp_labels[] = {"96", "97", "98", "99"};

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static void check_model(const struct rsmeta *m)
{
	size_t i, j;

	if (m->nparts > SF_PARTS_MAX || m->nstreams > SF_STREAMS_MAX * 2 ||
	    !terminated(m->session_id, sizeof(m->session_id)) ||
	    !terminated(m->sip_session_id, sizeof(m->sip_session_id)))
		abort();

	for (i = 0; i < m->nparts; i++) {
		const struct rsm_participant *p = &m->parts[i];

		if (!p->id[0] || p->nsend > SF_REFS_MAX ||
		    p->nrecv > SF_REFS_MAX || p->nsessions > SF_REFS_MAX ||
		    !terminated(p->id, sizeof(p->id)) ||
		    !terminated(p->aor, sizeof(p->aor)) ||
		    !terminated(p->name, sizeof(p->name)) ||
		    !terminated(p->left_time, sizeof(p->left_time)))
			abort();
		if (!p->left && p->left_time[0])
			abort();
		for (j = 0; j < p->nsend; j++) {
			if (!p->send[j][0] ||
			    !terminated(p->send[j], SF_ID_MAX))
				abort();
		}
		for (j = 0; j < p->nrecv; j++) {
			if (!p->recv[j][0] ||
			    !terminated(p->recv[j], SF_ID_MAX))
				abort();
		}
	}

	for (i = 0; i < m->nstreams; i++) {
		if (!m->streams[i].id[0] ||
		    !terminated(m->streams[i].label, SF_ID_MAX) ||
		    !terminated(m->streams[i].session, SF_ID_MAX))
			abort();
	}
}

static void check_outputs(const struct rsmeta *m)
{
	static struct sessfile sf;
	const char *why = NULL;
	size_t i, j;
	int err;

	err = rsmeta_check(m, sdp_labels, 4, &why);
	if (err && (err != EBADMSG || !why || strncmp(why, "metadata: ", 10)))
		abort();

	memset(&sf, 0, sizeof(sf));
	rsmeta_to_sessfile(m, &sf);
	if (!sf.has_metadata || sf.nparts != m->nparts)
		abort();
	for (i = 0; i < sf.nparts; i++) {
		const struct sf_participant *sp = &sf.parts[i];

		if (sp->nsend > SF_REFS_MAX || sp->nrecv > SF_REFS_MAX)
			abort();
		for (j = 0; j < sp->nsend + sp->nrecv; j++) {
			const char *label = j < sp->nsend ? sp->send[j] :
				sp->recv[j - sp->nsend];

			if (!label[0] || !terminated(label, SF_ID_MAX))
				abort();
		}
	}
}

/* Apply the input to M; check what must hold. */
static void run(struct rsmeta *m, const uint8_t *data, size_t size)
{
	static struct rsmeta before, once;
	const char *why = NULL;
	int err;

	before = *m;
	err = rsmeta_apply(m, (const char *)data, size, &why);
	if (err) {
		if (err != EBADMSG && err != ENOMEM)
			abort();
		if (!why || strncmp(why, "metadata: ", 10) ||
		    memcmp(&before, m, sizeof(before)))
			abort();
		return;
	}
	if (why && strncmp(why, "metadata: ", 10))
		abort();
	if (m->updates != before.updates + 1)
		abort();

	check_model(m);
	check_outputs(m);

	/* the same document again: nothing new */
	once = *m;
	if (rsmeta_apply(m, (const char *)data, size, &why))
		abort();
	once.updates++;
	if (memcmp(&once, m, sizeof(once)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rsmeta base, m;
	static bool ready;
	const char *why = NULL;

	if (!ready) {
		if (rsmeta_apply(&base, base_doc, sizeof(base_doc) - 1, &why))
			abort();
		ready = true;
	}

	memset(&m, 0, sizeof(m));
	run(&m, data, size);

	m = base;
	run(&m, data, size);
	return 0;
}
