#!/usr/bin/env python3
"""SIPREC INVITEs from the field that tally-recorder records (black box).

1. AudioCodes Mediant SBC 7.40A sends its recording INVITE without
   Require: siprec (trace in FreeSWITCH issue 2771: Contact
   <sip:...>;+sip.src, Supported: replaces,resource-priority,sdp-anat, no
   Require, multipart/mixed;boundary=boundary_ac173e, SDP o=AudiocodesGW
   s=SBC-Call with a session-level c=, two m=audio lines labelled 1 and 2,
   an application/rs-metadata part with Content-Disposition
   recording-session). tests/data/recorder/audiocodes-7.40a-invite.sip
   is that INVITE (addresses rewritten to 127.0.0.1; its metadata is in the
   pre-RFC 7865 draft form AudioCodes sends, as in the same firmware's
   trace in rtpengine issue 1779: namespace without ":1", ids in `id`,
   send/recv inside <participant>, ac: vendor elements). With the default
   strict-siprec = no: 200, a recording with both streams and the two
   participants, status daemon.sip.no_require_siprec counts it, and a second
   INVITE from the same source is recorded without a second warning line.
   Still 421 (with Require: siprec): no Require and no +sip.src in the
   Contact, and no Require with +sip.src but no metadata part.
2. strict-siprec = yes: the AudioCodes INVITE gets 421 with Require: siprec
   (RFC 7866 s6.1.1, RFC 3261 8.2.2.3), nothing is recorded.
3. Accepted today and kept so (each with Require: siprec, 200 and a
   recording with every stream accepted): a=label:0; c= only at media
   level; one mixed m= line without a=sendonly (RFC 7866 s8.1.1 allows a
   mixed stream; no direction attribute means sendrecv); a quoted boundary
   after a space (boundary= "foo").
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recsip as rs  # noqa: E402
from recsip import log, LOCAL  # noqa: E402

FIELD = os.path.join(rs.DATA, "recorder", "audiocodes-7.40a-invite.sip")
WARN = "without Require: siprec"

META = """<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <session session_id="U2Vzc2lvbkE=">
    <sipSessionID>call-a@127.0.0.1</sipSessionID>
  </session>
  <participant participant_id="QWxpY2U=">
    <nameID aor="sip:alice@example.com"><name>Alice</name></nameID>
  </participant>
  <participant participant_id="Qm9i">
    <nameID aor="sip:bob@example.com"/>
  </participant>
  <stream stream_id="czA=" session_id="U2Vzc2lvbkE="><label>%s</label></stream>
  <participantsessionassoc participant_id="QWxpY2U=" session_id="U2Vzc2lvbkE="/>
  <participantsessionassoc participant_id="Qm9i" session_id="U2Vzc2lvbkE="/>
  <participantstreamassoc participant_id="QWxpY2U="><send>czA=</send></participantstreamassoc>
  <participantstreamassoc participant_id="Qm9i"><recv>czA=</recv></participantstreamassoc>
</recording>
"""


def field_invite(conn, rec):
    """The AudioCodes INVITE, sent on CONN: (Dialog, raw bytes)."""
    with open(FIELD, "rb") as f:
        raw = f.read().replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    head = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % len(body), head)
    raw = head + b"\r\n\r\n" + body
    dlg = rs.Dialog(rec, conn, call_id=rs.new_callid("audiocodes"))
    raw = re.sub(rb"Call-ID: [^\r]+", b"Call-ID: " + dlg.call_id.encode(), raw, count=1)
    raw = re.sub(rb";tag=[^\r;]+", b";tag=" + dlg.from_tag.encode(), raw, count=1)
    raw, _ = rs.rewrite(raw, ruri="sip:7021@%s:%d;user=phone" % (LOCAL, rec.sip_port),
                        via_sentby=conn.sentby(), via_transport="TCP", branch=rs.new_branch())
    raw = re.sub(rb"Contact: <sip:[^>]*>", b"Contact: <sip:" + conn.sentby().encode() +
                 b";transport=tcp>", raw, count=1)
    return dlg, raw


def send_field(rec, mutate=None):
    conn = rs.SipTcp(rec.sip_port)
    dlg, raw = field_invite(conn, rec)
    if mutate:
        raw = mutate(raw)
    return dlg, dlg.send_invite(raw, 1, timeout=8)


def desc(r):
    return "no final response" if r is None else "%d %s" % (r["code"], r["reason"])


def check_421(c, r, what):
    c(r is not None and r["code"] == 421, "%s: %s, want 421" % (what, desc(r)))
    if r is not None and r["code"] == 421:
        c("siprec" in " ".join(rs.hdr_all(r, "require")).lower(),
          "%s: 421 without Require: siprec" % what)


def no_recording(c, rec, dlg, what):
    c(not rec.recordings(dlg.call_id), "%s: a recording was made" % what)


def counter(rec):
    return (rec.status().get("daemon") or {}).get("sip", {}).get("no_require_siprec")


def sdp(media_lines, session_c=True):
    lines = ["v=0", "o=SRC 1 1 IN IP4 127.0.0.1", "s=-"]
    if session_c:
        lines.append("c=IN IP4 127.0.0.1")
    lines.append("t=0 0")
    return ("\r\n".join(lines + media_lines) + "\r\n").encode()


def accepted(c, rec, ctype, body, what, nstreams):
    dlg = rs.Dialog(rec)
    r = dlg.invite(body, ctype)
    ok = c(r is not None and r["code"] == 200, "%s: %s, want 200" % (what, desc(r)))
    if not ok:
        return
    d = rec.recording_of(dlg.call_id)
    st = rs.streams_of(d) or []
    c(len(st) == nstreams and all(s.get("accepted") for s in st),
      "%s: streams %r, want %d accepted" % (what, st, nstreams))
    r = dlg.bye()
    c(r is not None and r["code"] == 200, "%s: BYE %s" % (what, desc(r)))
    dlg.close()


def main():
    if rs.recorder_binary() is None:
        log("FAIL: no tally-recorder binary")
        return 1
    run = rs.Runner("rec_tolerance")
    rec = run.recorder("lax")

    def audiocodes(c):
        dlg, r = send_field(rec)
        if not c(r is not None and r["code"] == 200, "AudioCodes INVITE: %s, want 200"
                 % desc(r)):
            return
        d = rec.recording_of(dlg.call_id)
        st = rs.streams_of(d) or []
        c(len(st) == 2 and all(s.get("accepted") for s in st),
          "streams %r, want 2 accepted" % st)
        probs = rs.compare_mapping(rs.participants_of(d), rs.parse_mapping(
            "sip:alice@example.com send=[1] recv=[2]; sip:bob@example.com send=[2] recv=[1]"))
        for p in probs:
            c(False, "mapping: " + p)
        c(counter(rec) == 1, "status daemon.sip.no_require_siprec = %r, want 1" % counter(rec))
        dlg2, r2 = send_field(rec)
        c(r2 is not None and r2["code"] == 200, "second AudioCodes INVITE: %s" % desc(r2))
        c(counter(rec) == 2, "status daemon.sip.no_require_siprec = %r, want 2" % counter(rec))
        n = rec.log_text().count(WARN)
        c(n == 1, "%d warning lines about the missing Require, want 1 per source" % n)
        for dl in (dlg, dlg2):
            if dl.to_tag:
                rb = dl.bye()
                c(rb is not None and rb["code"] == 200, "BYE: %s" % desc(rb))

    def no_src_tag(c):
        dlg, r = send_field(rec, lambda raw: raw.replace(b">;+sip.src", b">", 1))
        check_421(c, r, "no Require, no +sip.src")
        no_recording(c, rec, dlg, "no +sip.src")

    def no_metadata(c):
        def strip(raw):
            head, _, body = raw.partition(b"\r\n\r\n")
            sdp_part = rs.body_part(rs.parse(raw), "application/sdp")
            head = re.sub(rb"Content-Type: [^\r]+", b"Content-Type: application/sdp", head,
                          count=1)
            head = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % len(sdp_part), head)
            return head + b"\r\n\r\n" + sdp_part
        dlg, r = send_field(rec, strip)
        check_421(c, r, "no Require, +sip.src, SDP only")
        no_recording(c, rec, dlg, "SDP only")

    def label0(c):
        ct, body = rs.siprec_body(sdp(["m=audio 30000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000",
                                       "a=label:0", "a=sendonly"]), META % "0")
        accepted(c, rec, ct, body, "a=label:0", 1)

    def media_c(c):
        ct, body = rs.siprec_body(sdp(["m=audio 30000 RTP/AVP 0", "c=IN IP4 127.0.0.1",
                                       "a=label:1", "a=sendonly",
                                       "m=audio 30002 RTP/AVP 0", "c=IN IP4 127.0.0.1",
                                       "a=label:2", "a=sendonly"], session_c=False))
        accepted(c, rec, ct, body, "c= only at media level", 2)

    def mixed(c):
        ct, body = rs.siprec_body(sdp(["m=audio 30000 RTP/AVP 0 8", "a=rtpmap:0 PCMU/8000",
                                       "a=label:1"]), META % "1")
        accepted(c, rec, ct, body, "one mixed m= line without a=sendonly", 1)

    def quoted_boundary(c):
        _, body = rs.siprec_body(sdp(["m=audio 30000 RTP/AVP 0", "a=label:1", "a=sendonly"]),
                                 META % "1", boundary="foo")
        accepted(c, rec, 'multipart/mixed; boundary= "foo"', body, 'boundary= "foo"', 1)

    for name, fn in (("audiocodes_no_require_recorded", audiocodes),
                     ("no_require_without_src_tag_421", no_src_tag),
                     ("no_require_without_metadata_421", no_metadata),
                     ("label_0", label0), ("c_only_at_media_level", media_c),
                     ("mixed_stream_no_direction", mixed),
                     ("quoted_boundary_after_space", quoted_boundary)):
        run.run(name, fn, rec)

    strict = run.recorder("strict", extra=["--strict-siprec=yes"])

    def strict_421(c):
        dlg, r = send_field(strict)
        check_421(c, r, "strict-siprec=yes, AudioCodes INVITE")
        no_recording(c, strict, dlg, "strict-siprec=yes")
        c(not counter(strict), "strict: no_require_siprec = %r" % counter(strict))

    run.run("strict_siprec_421", strict_421, strict)
    return run.finish()


if __name__ == "__main__":
    sys.exit(main())
