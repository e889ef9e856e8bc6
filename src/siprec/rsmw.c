/*
 * rsmw.c: RFC 7865 recording metadata, written (see rsmw.h for the model
 * and a worked example).
 *
 * libxml2's text writer does the escaping and the namespaces; this file
 * only decides the order, which RFC 7865's schema fixes (one xs:sequence):
 * datamode, group, session, participant*, stream*, sessionrecordingassoc,
 * participantsessionassoc*, participantstreamassoc*. Extension elements of
 * our own namespace go last inside <session> and <participant>, where the
 * schema's xs:any allows them.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <libxml/xmlwriter.h>
#include "rsmw.h"

#define NS_REC "urn:ietf:params:xml:ns:recording:1"

void rsmw_newid(char id[RSMW_ID_LEN])
{
	uint8_t raw[16];
	size_t len = RSMW_ID_LEN;

	rand_bytes(raw, sizeof(raw));
	if (base64_encode(raw, sizeof(raw), id, &len))
		len = 0;
	id[len < RSMW_ID_LEN ? len : RSMW_ID_LEN - 1] = '\0';
}

static bool utf8_ok(const char *s)
{
	return xmlCheckUTF8((const xmlChar *)s) != 0;
}

/* the doc's strings are what a peer sent (names, AORs): check them all */
static int check(const struct rsmw_doc *d)
{
	size_t i, k;

	if (!d->session_id[0] || d->nparts > RSMW_MAX_PARTS ||
	    d->nstreams > RSMW_MAX_STREAMS)
		return EINVAL;
	if (!utf8_ok(d->sip_session_id) || !utf8_ok(d->callid))
		return EINVAL;
	for (i = 0; i < d->nparts; i++) {
		const struct rsmw_party *p = &d->parts[i];
		if (!p->id[0] || !p->aor[0] || !utf8_ok(p->aor) ||
		    !utf8_ok(p->name) || !utf8_ok(p->dn) ||
		    p->nsend > RSMW_MAX_STREAMS || p->nrecv > RSMW_MAX_STREAMS)
			return EINVAL;
		for (k = 0; k < p->nsend; k++)
			if (p->send[k] >= d->nstreams)
				return EINVAL;
		for (k = 0; k < p->nrecv; k++)
			if (p->recv[k] >= d->nstreams)
				return EINVAL;
	}
	for (i = 0; i < d->nstreams; i++)
		if (!d->streams[i].id[0] || !utf8_ok(d->streams[i].label))
			return EINVAL;
	return 0;
}

static void fmt_time(char *buf, size_t sz, uint64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, sz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* libxml2's writer returns < 0 on failure: fold them into one flag */
struct wr {
	xmlTextWriterPtr w;
	bool bad;
};

static void start(struct wr *x, const char *el)
{
	if (xmlTextWriterStartElement(x->w, (const xmlChar *)el) < 0)
		x->bad = true;
}

static void end(struct wr *x)
{
	if (xmlTextWriterEndElement(x->w) < 0)
		x->bad = true;
}

static void attr(struct wr *x, const char *name, const char *val)
{
	if (xmlTextWriterWriteAttribute(x->w, (const xmlChar *)name,
					(const xmlChar *)val) < 0)
		x->bad = true;
}

static void text_el(struct wr *x, const char *el, const char *val)
{
	if (xmlTextWriterWriteElement(x->w, (const xmlChar *)el,
				      (const xmlChar *)val) < 0)
		x->bad = true;
}

static void time_el(struct wr *x, const char *el, uint64_t t)
{
	char buf[32];

	if (!t)
		return;
	fmt_time(buf, sizeof(buf), t);
	text_el(x, el, buf);
}

/* <tally:NAME xmlns:tally="...">VAL</tally:NAME> */
static void tally_el(struct wr *x, const char *el, const char *val)
{
	if (!val[0])
		return;
	if (xmlTextWriterWriteElementNS(x->w, (const xmlChar *)"tally",
					(const xmlChar *)el,
					(const xmlChar *)RSMW_TALLY_NS,
					(const xmlChar *)val) < 0)
		x->bad = true;
}

static void write_session(struct wr *x, const struct rsmw_doc *d)
{
	start(x, "session");
	attr(x, "session_id", d->session_id);
	if (d->sip_session_id[0])
		text_el(x, "sipSessionID", d->sip_session_id);
	if (d->group_id[0])
		text_el(x, "group-ref", d->group_id);
	time_el(x, "start-time", d->start);
	time_el(x, "stop-time", d->stop);
	tally_el(x, "callid", d->callid);
	end(x);
}

static void write_party(struct wr *x, const struct rsmw_party *p)
{
	start(x, "participant");
	attr(x, "participant_id", p->id);
	start(x, "nameID");
	attr(x, "aor", p->aor);
	if (p->name[0])
		text_el(x, "name", p->name);
	end(x);
	tally_el(x, "dn", p->dn);
	end(x);
}

static void write_assocs(struct wr *x, const struct rsmw_doc *d)
{
	size_t i, k;

	start(x, "sessionrecordingassoc");
	attr(x, "session_id", d->session_id);
	time_el(x, "associate-time", d->start);
	time_el(x, "disassociate-time", d->stop);
	end(x);
	for (i = 0; i < d->nparts; i++) {
		const struct rsmw_party *p = &d->parts[i];
		start(x, "participantsessionassoc");
		attr(x, "participant_id", p->id);
		attr(x, "session_id", d->session_id);
		time_el(x, "associate-time", p->assoc);
		time_el(x, "disassociate-time", p->disassoc);
		end(x);
	}
	for (i = 0; i < d->nparts; i++) {
		const struct rsmw_party *p = &d->parts[i];
		start(x, "participantstreamassoc");
		attr(x, "participant_id", p->id);
		for (k = 0; k < p->nsend; k++)
			text_el(x, "send", d->streams[p->send[k]].id);
		for (k = 0; k < p->nrecv; k++)
			text_el(x, "recv", d->streams[p->recv[k]].id);
		end(x);
	}
}

int rsmw_write(struct mbuf *mb, const struct rsmw_doc *d)
{
	struct wr x = {NULL, false};
	xmlBufferPtr buf;
	char tbuf[32];
	size_t i;
	int err;

	if (!mb || !d)
		return EINVAL;
	if ((err = check(d)))
		return err;
	buf = xmlBufferCreate();
	if (!buf)
		return ENOMEM;
	x.w = xmlNewTextWriterMemory(buf, 0);
	if (!x.w) {
		xmlBufferFree(buf);
		return ENOMEM;
	}
	if (xmlTextWriterStartDocument(x.w, NULL, "UTF-8", NULL) < 0 ||
	    xmlTextWriterStartElementNS(x.w, NULL, (const xmlChar *)"recording",
					(const xmlChar *)NS_REC) < 0)
		x.bad = true;
	text_el(&x, "datamode", d->partial ? "partial" : "complete");
	if (d->group_id[0]) {
		start(&x, "group");
		attr(&x, "group_id", d->group_id);
		if (d->start) {
			fmt_time(tbuf, sizeof(tbuf), d->start);
			text_el(&x, "associate-time", tbuf);
		}
		end(&x);
	}
	write_session(&x, d);
	for (i = 0; i < d->nparts; i++)
		write_party(&x, &d->parts[i]);
	for (i = 0; i < d->nstreams; i++) {
		start(&x, "stream");
		attr(&x, "stream_id", d->streams[i].id);
		attr(&x, "session_id", d->session_id);
		if (d->streams[i].label[0])
			text_el(&x, "label", d->streams[i].label);
		end(&x);
	}
	write_assocs(&x, d);
	if (xmlTextWriterEndDocument(x.w) < 0)
		x.bad = true;
	xmlFreeTextWriter(x.w);       /* flushes into buf */

	err = x.bad ? ENOMEM : mbuf_write_mem(mb, xmlBufferContent(buf),
					      (size_t)xmlBufferLength(buf));
	xmlBufferFree(buf);
	return err;
}
