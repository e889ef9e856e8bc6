#!/usr/bin/env python3
"""SIPREC conformance of tally-recorder with the RFC examples (black box).

Every SIP request in tests/data/siprec (*.sip: RFC 7866 Figures 12/13, RFC 8068
call flows) is sent to a fresh tally-recorder over TCP (the examples' Vias say
TCP), then: accepted or rejected as index.tsv / rfc8068-expected.tsv say, the
answer's shape (one m= line per offered one, in order, same media type,
a=recvonly, a=label echoed, every stream accepted under --default-media=
audio+video incl. RFC 8068's "H.264/90000", +sip.srs in the Contact), and the
participant -> stream mapping read back from the API
(GET /api/v1/recordings?call_id= then /api/v1/recordings/ID) equals the
expected one. Every session ends with a BYE (200, recording leaves state
"recording").

What is rewritten in an example, and why (nothing else; the body is sent byte
for byte, so its Content-Length stays right):
  - Request-URI host[:port] -> 127.0.0.1:<recorder port> (to reach the daemon;
    the user part is kept). In-dialog requests (RFC 8068 re-INVITEs, the BYE of
    s3.2.4) go to the recorder's Contact from its 200 OK, as RFC 3261 12.2.1.1
    asks of any UAC.
  - top Via: sent-by src.example.com -> 127.0.0.1:<our TCP port> (responses
    must come back to us); transport UDP -> TCP for the two RFC 8068 messages
    printed with a UDP Via (s3.2.4 BYE, s3.4.1 re-INVITE), since they travel on
    the TCP connection (RFC 3261 18.1.1).
  - RFC 8068 re-INVITEs and the BYE were printed out of dialog context (no To
    tag, CSeq 101 and the branch of the initial INVITE): they are sent after
    the flow's earlier steps (rfc8068-expected.tsv "applies_after", followed
    back to the flow's initial INVITE) with the To tag of the recorder's 200 OK,
    the next CSeq and a fresh branch.
The examples share one Call-ID and From tag, so each run gets its own daemon.

Expected behaviour:
  - index.tsv (RFC 7866): fig12-completed 200 + mapping; fig12 placeholder
    ('[metadata content]', not XML) -> 4xx (400 preferred) with a reason, no
    recording; fig13 is an UPDATE the SRS itself would send to the SRC: sent to
    the recorder it names a dialog the recorder does not have -> 4xx (481 per
    RFC 3261 12.2.2 preferred) and nothing recorded.
  - rfc8068-expected.tsv: "check=0" -> 2xx and the row's mapping after the
    step; "check=EBADMSG" (metadata naming stream ids that no <stream> declares)
    -> 4xx (400 preferred) whose reason names the stream, and the session keeps
    the mapping of the step before (a failed re-INVITE changes nothing, RFC
    3261 14.2). Labels compare as sets; "left" only if the API reports it.
  - s3.4.1 re-INVITE carries metadata but no SDP: the recorder's 2xx must carry
    an offer (RFC 3261 14.2/13.3.1); our ACK answers it with the flow's SDP.
Constructed extras (not RFC messages): the bare fig05 SDP in a SIPREC INVITE
without metadata (application/sdp, and multipart with only the SDP part) ->
200 with 4 accepted m= lines, mapping unknown (no participants); RFC 7865 s8.1
metadata with s3.2.1's SDP (labels 96-99) -> index.tsv's s8.1 mapping, then the
s8.2 partial update by re-INVITE (Bob disassociated, lists kept).

Arguments: substrings of subtest names to run only those.
"""

import glob
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recsip as rs  # noqa: E402
from recsip import log  # noqa: E402

SIPREC = rs.SIPREC


def example(rel):
    with open(os.path.join(SIPREC, rel), "rb") as f:
        return f.read()


def ruri_to_daemon(raw, rec):
    """Request-URI host[:port] -> 127.0.0.1:PORT, user part and params kept."""
    first = raw.split(b"\r\n", 1)[0].decode()
    uri = first.split(" ")[1]
    mm = re.match(r"^(sips?:)(?:([^@]*)@)?([^;?]+)(.*)$", uri)
    if not mm:
        raise ValueError("Request-URI %r" % uri)
    return "%s%s%s:%d%s" % (mm.group(1), (mm.group(2) + "@") if mm.group(2) else "", rs.LOCAL,
                            rec.sip_port, mm.group(4))


class Flow:
    """One recording session driven from RFC example files over one connection."""

    def __init__(self, rec):
        self.rec = rec
        self.conn = rs.SipTcp(rec.sip_port)
        self.dlg = None
        self.last_sdp = None          # the last SDP offer we sent (bytes)
        self.rewrites = []

    def send(self, rel, timeout=8.0):
        """Sends example REL (first one: as the dialog-creating request, later ones
        in dialog). Returns (final response or None, the bytes sent, parsed request)."""
        raw = example(rel)
        req = rs.parse(raw)
        method = req["first"].split(" ")[0]
        if self.dlg is None:
            out, notes = rs.rewrite(raw, ruri=ruri_to_daemon(raw, self.rec),
                                    via_sentby=self.conn.sentby(), via_transport="TCP")
            n, _ = rs.cseq_of(req)
            self.dlg = rs.Dialog(self.rec, self.conn, call_id=req["hdr"]["call-id"],
                                 from_uri=rs.uri_of(req["hdr"]["from"]),
                                 from_tag=rs.tag_of(req["hdr"]["from"]),
                                 to_uri=rs.uri_of(req["hdr"]["to"]))
            cseq = n
        else:
            cseq = self.dlg.cseq + 1
            out, notes = rs.rewrite(raw, ruri=self.dlg.target, via_sentby=self.conn.sentby(),
                                    via_transport="TCP", branch=rs.new_branch(),
                                    to_tag=self.dlg.to_tag, cseq=cseq)
        self.rewrites.append("%s: %s" % (os.path.basename(rel), "; ".join(notes)))
        sdp = rs.body_part(rs.parse(out), "application/sdp")
        if sdp is not None:
            self.last_sdp = sdp
        if method == "INVITE":
            self.dlg.late_answer = self.last_sdp
            r = self.dlg.send_invite(out, cseq, timeout)
        else:
            self.conn.send(out)
            self.dlg.cseq = max(self.dlg.cseq, cseq)
            r = self.conn.wait_final(self.dlg.call_id, cseq, method, timeout)
        return r, out, rs.parse(out)

    def close(self):
        self.conn.close()


def desc(r):
    if r is None:
        return "no final response (timeout or connection closed)"
    return "%d %s" % (r["code"], r["reason"])


def check_2xx_invite(c, step, req, r, rec, accept_all=True):
    """Answer shape of a 2xx to an INVITE REQ (with or without an SDP offer)."""
    contact = r["hdr"].get("contact", "")
    c("+sip.srs" in contact, "%s: 200 Contact %r lacks +sip.srs (RFC 7866 s6.1.1)" % (step, contact))
    offer = rs.body_part(req, "application/sdp")
    ans = rs.body_part(r, "application/sdp")
    if offer is None:
        return ans
    if not c(ans is not None, "%s: 2xx without an SDP answer (Content-Type %r)"
             % (step, r["hdr"].get("content-type"))):
        return None
    om = rs.parse_sdp(rs.sdp_text(offer))["media"]
    acc = [True if m["port"] else False for m in om] if accept_all else None
    for p in rs.check_answer(offer, ans, acc):
        c(False, "%s: answer: %s" % (step, p))
    return ans


def wait_mapping(rec, call_id, expected, timeout=3.0):
    """Polls the API until the participants match EXPECTED; returns (problems, details)."""
    end = time.monotonic() + timeout
    while True:
        try:
            d = rec.recording_of(call_id, timeout=0.5)
            probs = rs.compare_mapping(rs.participants_of(d), expected)
        except AssertionError as e:
            d, probs = None, [str(e)]
        if not probs or time.monotonic() > end:
            return probs, d
        time.sleep(0.15)


def wait_state(rec, call_id, pred, timeout=10.0):
    end = time.monotonic() + timeout
    st = None
    while time.monotonic() < end:
        try:
            st = rs.state_of(rec.recording_of(call_id, timeout=0.5))
        except AssertionError:
            st = None
        if pred(st):
            return st
        time.sleep(0.2)
    return st


def end_session(c, flow, step="BYE"):
    """BYE in the dialog: 200, and the recording leaves state recording."""
    dlg = flow.dlg
    if dlg is None or dlg.to_tag is None:
        return
    r = dlg.bye()
    if not c(r is not None and r["code"] == 200, "%s: BYE -> %s" % (step, desc(r))):
        return
    st = wait_state(flow.rec, dlg.call_id, lambda s: s in ("finalizing", "complete", "failed"))
    c(st in ("finalizing", "complete", "failed"),
      "%s: after BYE the recording is in state %r (want finalizing/complete/failed)" % (step, st))


def check_streams(c, step, details, offer):
    """The API's streams: one per offered m= line, labels in order."""
    if details is None or offer is None:
        return
    st = rs.streams_of(details)
    om = rs.parse_sdp(rs.sdp_text(offer))["media"]
    if not c(isinstance(st, list), "%s: details have no streams list" % step):
        return
    c(len(st) == len(om), "%s: API lists %d streams, %d m= lines were offered" % (step, len(st), len(om)))
    labels = [str(s.get("label")) for s in st if isinstance(s, dict)]
    want = [m["label"] for m in om]
    c(labels == want, "%s: API stream labels %s, offered %s" % (step, labels, want))


# ---------------------------------------------------------------- plans

def load_plans():
    """[(name, kind, data)] for every *.sip example; a .sip without an expectation
    is itself a failure (nothing is silently left out)."""
    index = {r["file"]: r for r in rs.read_tsv(os.path.join(SIPREC, "index.tsv"))}
    p8068 = os.path.join(SIPREC, "rfc8068-expected.tsv")
    exp8068 = {r["file"]: r for r in rs.read_tsv(p8068)} if os.path.exists(p8068) else None
    files = sorted(os.path.relpath(p, SIPREC) for p in glob.glob(os.path.join(SIPREC, "**", "*.sip"),
                                                                   recursive=True))
    plans, missing = [], []
    for f in files:
        if f.startswith("rfc8068/"):
            if exp8068 is None or f not in exp8068:
                missing.append(f + " (not in rfc8068-expected.tsv)")
                continue
            row = exp8068[f]
            chain = [f]
            seen = {f}
            while exp8068[chain[0]]["applies_after"].strip() not in ("", "-"):
                prev = exp8068[chain[0]]["applies_after"].strip()
                if prev not in exp8068 or prev in seen:
                    missing.append("%s: applies_after %s unknown or circular" % (f, prev))
                    chain = None
                    break
                seen.add(prev)
                chain.insert(0, prev)
            if chain is None:
                continue
            beh = row["expected_behaviour"]
            mm = re.search(r"check=(\S+)", beh)
            reject = bool(mm and mm.group(1) != "0")
            prev_map = None
            if reject:
                prev_map = rs.parse_mapping(exp8068[chain[-2]]["expected_participant_stream_mapping"])
            plans.append((f, "rfc8068", {"chain": chain, "reject": reject, "why": beh,
                                         "mapping": rs.parse_mapping(row["expected_participant_stream_mapping"]),
                                         "prev_mapping": prev_map, "note": row.get("note", "")}))
        elif f in index:
            plans.append((f, "rfc7866", index[f]))
        else:
            missing.append(f + " (not in index.tsv)")
    return plans, missing


# ---------------------------------------------------------------- subtests

def run_rfc8068(runner, name, plan):
    state = {}

    def body(c):
        rec = runner.recorder(re.sub(r"[^A-Za-z0-9.]+", "_", os.path.basename(name))[:40])
        state["rec"] = rec
        flow = Flow(rec)
        try:
            chain = plan["chain"]
            r = req = None
            for i, step in enumerate(chain):
                r, out, req = flow.send(step)
                last = i == len(chain) - 1
                if not last:
                    if not c(r is not None and 200 <= r["code"] < 300,
                             "earlier step %s -> %s (the flow cannot go on)" % (step, desc(r))):
                        return
                    continue
            c.note("rewrites: " + " | ".join(flow.rewrites))
            method = req["method"]
            cid = flow.dlg.call_id
            if plan["reject"]:
                c(r is not None and 400 <= r["code"] < 500,
                  "%s must be refused with a 4xx (%s), got %s" % (name, plan["why"], desc(r)))
                if r is not None and 400 <= r["code"] < 500:
                    if r["code"] != 400:
                        c.note("%s answered %d (400 preferred)" % (name, r["code"]))
                    c("stream" in r["reason"].lower(),
                      "reason phrase %r does not name the unknown stream" % r["reason"])
                probs, d = wait_mapping(rec, cid, plan["prev_mapping"])
                c(not probs, "after the refused re-INVITE the mapping must stay the previous "
                  "step's: %s (API: %s)" % ("; ".join(probs), rs.fmt_parts(rs.participants_of(d or {}))))
                st = rs.state_of(d or {})
                c(st == "recording", "after the refused re-INVITE the recording is %r, want recording" % st)
                end_session(c, flow)
                return
            if not c(r is not None and 200 <= r["code"] < 300,
                     "%s -> %s, want 2xx; recorder log for the call:\n%s"
                     % (name, desc(r), rec.grep(cid[:16]))):
                return
            if method == "INVITE":
                ans = check_2xx_invite(c, name, req, r, rec)
                if rs.body_part(req, "application/sdp") is None:
                    # metadata-only re-INVITE: the 2xx carries the recorder's offer
                    c(ans is not None, "%s has no SDP: the 2xx must carry an offer "
                      "(RFC 3261 14.2 / 13.3.1), it has none" % name)
                    if ans is not None:
                        n_ans = len(rs.parse_sdp(rs.sdp_text(ans))["media"])
                        n_off = len(rs.parse_sdp(rs.sdp_text(flow.last_sdp))["media"])
                        c(n_ans == n_off, "the recorder's offer in the 2xx has %d m= lines, "
                          "the session %d" % (n_ans, n_off))
            probs, d = wait_mapping(rec, cid, plan["mapping"])
            c(not probs, "mapping: %s (API: %s)" % ("; ".join(probs),
                                                    rs.fmt_parts(rs.participants_of(d or {}))))
            check_streams(c, name, d, flow.last_sdp)
            if method == "BYE":
                c(r["code"] == 200, "BYE -> %s" % desc(r))
                st = wait_state(rec, cid, lambda s: s in ("finalizing", "complete", "failed"))
                c(st in ("finalizing", "complete", "failed"),
                  "after the BYE the recording is %r (want finalizing/complete/failed)" % st)
            else:
                st = rs.state_of(d or {})
                c(st == "recording", "during the session the recording is %r, want recording" % st)
                end_session(c, flow)
        finally:
            flow.close()
    runner.run(name, body, rec=lambda: state.get("rec"), stop=True)


def run_fig12_completed(runner, name, row):
    state = {}

    def body(c):
        rec = runner.recorder("fig12c")
        state["rec"] = rec
        flow = Flow(rec)
        try:
            r, out, req = flow.send(name)
            c.note("rewrites: " + " | ".join(flow.rewrites))
            if not c(r is not None and r["code"] == 200, "%s -> %s, want 200 (%s)"
                     % (name, desc(r), row["expected_behaviour"])):
                return
            ans = check_2xx_invite(c, name, req, r, rec)
            if ans is not None:
                n = len(rs.parse_sdp(rs.sdp_text(ans))["media"])
                c(n == 1, "answer has %d m= lines, want 1" % n)
            want = rs.parse_mapping(row["expected_participant_stream_mapping"])
            c(len(want) == 2, "harness: index mapping not parsed: %r" % row["expected_participant_stream_mapping"])
            probs, d = wait_mapping(rec, flow.dlg.call_id, want)
            c(not probs, "mapping: %s (API: %s)" % ("; ".join(probs),
                                                    rs.fmt_parts(rs.participants_of(d or {}))))
            check_streams(c, name, d, flow.last_sdp)
            end_session(c, flow)
        finally:
            flow.close()
    runner.run(name, body, rec=lambda: state.get("rec"), stop=True)


def run_fig12_placeholder(runner, name, row):
    state = {}

    def body(c):
        rec = runner.recorder("fig12p")
        state["rec"] = rec
        flow = Flow(rec)
        try:
            r, out, req = flow.send(name)
            c.note("rewrites: " + " | ".join(flow.rewrites))
            ok = c(r is not None and 400 <= r["code"] < 500,
                   "%s -> %s, want 4xx (%s)" % (name, desc(r), row["expected_behaviour"]))
            if ok:
                if r["code"] != 400:
                    c.note("answered %d (400 preferred)" % r["code"])
                reason = r["reason"].lower()
                c(any(w in reason for w in ("metadata", "xml", "well-formed", "well formed")),
                  "reason phrase %r does not say the metadata is not XML" % r["reason"])
            rows = rec.recordings(flow.dlg.call_id)
            c(not rows, "refused INVITE left a recording in the catalog: %r" % rows)
            c(not [d for d in os.listdir(rec.storage) if os.path.isdir(os.path.join(rec.storage, d))],
              "refused INVITE left a session folder: %s" % os.listdir(rec.storage))
            c(rs.options_udp(rec.sip_port, 2) == 200, "OPTIONS after the refused INVITE not answered 200")
        finally:
            flow.close()
    runner.run(name, body, rec=lambda: state.get("rec"), stop=True)


def run_fig13(runner, name, row):
    state = {}

    def body(c):
        rec = runner.recorder("fig13")
        state["rec"] = rec
        flow = Flow(rec)
        try:
            raw = example(name)
            out, notes = rs.rewrite(raw, ruri=ruri_to_daemon(raw, rec), via_sentby=flow.conn.sentby(),
                                    via_transport="TCP")
            c.note("rewrites: " + "; ".join(notes))
            req = rs.parse(out)
            flow.conn.send(out)
            n, _ = rs.cseq_of(req)
            r = flow.conn.wait_final(req["hdr"]["call-id"], n, "UPDATE", 5)
            c(r is not None and 400 <= r["code"] < 500,
              "out-of-dialog UPDATE (To tag of no dialog of ours) -> %s, want 4xx (481 preferred, "
              "RFC 3261 12.2.2)" % desc(r))
            if r is not None and r["code"] != 481:
                c.note("UPDATE answered %s (481 preferred)" % desc(r))
            rows = rec.recordings(req["hdr"]["call-id"])
            c(not rows, "an UPDATE created a recording: %r" % rows)
            c(rs.options_tcp(rec.sip_port) == 200, "OPTIONS (TCP) after the UPDATE not answered 200")
        finally:
            flow.close()
    runner.run(name, body, rec=lambda: state.get("rec"), stop=True)


def run_fig05(runner, rec_box, peek, multipart):
    name = "fig05 SDP in a SIPREC INVITE without metadata (%s)" % (
        "multipart, SDP part only" if multipart else "application/sdp")

    def body(c):
        rec = rec_box()
        sdp = example("rfc7866/fig05-src-sdp-offer-audio-video.sdp")
        dlg = rs.Dialog(rec, from_uri="sip:2000@example.com")
        try:
            if multipart:
                ct = "multipart/mixed;boundary=onlysdp"
                b = (b"--onlysdp\r\nContent-Type: application/sdp\r\n\r\n" + sdp + b"--onlysdp--\r\n")
            else:
                ct, b = rs.siprec_body(sdp)
            r = dlg.invite(b, ct)
            if not c(r is not None and r["code"] == 200, "INVITE -> %s, want 200" % desc(r)):
                return
            req = rs.parse(rs.build_request("INVITE", "x", [("Content-Type", ct)], b))
            ans = check_2xx_invite(c, "fig05", req, r, rec)
            if ans is not None:
                n = len(rs.parse_sdp(rs.sdp_text(ans))["media"])
                c(n == 4, "answer has %d m= lines, want 4" % n)
            d = rec.recording_of(dlg.call_id)
            parts = rs.participants_of(d)
            c(parts in ([], None), "no metadata, yet participants %s" % rs.fmt_parts(parts))
            if "has_metadata" in d:
                c(d["has_metadata"] in (False, 0), "has_metadata %r without metadata" % d["has_metadata"])
            check_streams(c, "fig05", d, sdp)
            c(rs.state_of(d) == "recording", "state %r, want recording" % rs.state_of(d))
            r = dlg.bye()
            c(r is not None and r["code"] == 200, "BYE -> %s" % desc(r))
        finally:
            dlg.close()
    runner.run(name, body, rec=peek)


def run_s81(runner, rec_box, peek, index):
    name = "RFC 7865 s8.1 complete + s8.2 partial metadata (constructed INVITE, s3.2.1 SDP)"

    def body(c):
        rec = rec_box()
        sdp = rs.body_part(rs.parse(example("rfc8068/s3.2.1-basic-call-av-initial-invite.sip")),
                           "application/sdp")
        x81 = example("rfc7865/s8.1-complete-metadata.xml")
        x82 = example("rfc7865/s8.2-partial-update-metadata.xml")
        want = rs.parse_mapping(index["rfc7865/s8.1-complete-metadata.xml"]["expected_participant_stream_mapping"])
        c(len(want) == 2, "harness: s8.1 mapping not parsed")
        dlg = rs.Dialog(rec, from_uri="sip:2000@example.com")
        try:
            ct, b = rs.siprec_body(sdp, x81)
            r = dlg.invite(b, ct)
            if not c(r is not None and r["code"] == 200, "INVITE with s8.1 -> %s" % desc(r)):
                return
            req = rs.parse(rs.build_request("INVITE", "x", [("Content-Type", ct)], b))
            check_2xx_invite(c, "s8.1", req, r, rec)
            probs, d = wait_mapping(rec, dlg.call_id, want)
            c(not probs, "s8.1 mapping: %s (API: %s)" % ("; ".join(probs),
                                                         rs.fmt_parts(rs.participants_of(d or {}))))
            ct, b = rs.siprec_body(sdp, x82)
            r = dlg.invite(b, ct)
            if not c(r is not None and r["code"] == 200, "re-INVITE with s8.2 -> %s" % desc(r)):
                return
            for e in want:
                e["left"] = e["key"] == "Bob"
            probs, d = wait_mapping(rec, dlg.call_id, want)
            c(not probs, "after s8.2 (Bob disassociated, lists kept): %s (API: %s)"
              % ("; ".join(probs), rs.fmt_parts(rs.participants_of(d or {}))))
            r = dlg.bye()
            c(r is not None and r["code"] == 200, "BYE -> %s" % desc(r))
        finally:
            dlg.close()
    runner.run(name, body, rec=peek)


def main():
    want = sys.argv[1:]
    runner = rs.Runner("rec_conformance")
    if not rs.recorder_binary():
        log("FAIL setup: tally-recorder binary not found ($TALLY_RECORDER=%r, no build*/src/recorder/"
            "tally-recorder)" % os.environ.get("TALLY_RECORDER"))
        log("0 passed, 1 failed")
        return 1
    plans, missing = load_plans()
    for m in missing:
        runner.failed += 1
        runner.failures.append(m)
        log("FAIL expectation missing: %s" % m)
    n_sip = len(glob.glob(os.path.join(SIPREC, "**", "*.sip"), recursive=True))
    if n_sip < 16:
        runner.failed += 1
        log("FAIL only %d .sip examples under %s (16 expected): data missing" % (n_sip, SIPREC))
    log("# %d SIPREC requests, %d with an expectation" % (n_sip, len(plans)))

    def selected(name):
        return not want or any(w in name for w in want)

    index = {r["file"]: r for r in rs.read_tsv(os.path.join(SIPREC, "index.tsv"))}
    for name, kind, data in plans:
        if not selected(name):
            continue
        if kind == "rfc8068":
            run_rfc8068(runner, name, data)
        elif "placeholder" in name:
            run_fig12_placeholder(runner, name, data)
        elif "fig12" in name:
            run_fig12_completed(runner, name, data)
        elif "fig13" in name:
            run_fig13(runner, name, data)
        else:
            runner.failed += 1
            log("FAIL %s: no driver for this example" % name)

    box = {}

    def shared():
        if box.get("rec") is None or not box["rec"].alive():
            box["rec"] = runner.recorder("shared%d" % len(runner.recs))
        return box["rec"]
    def peek():
        return box.get("rec")
    for mp in (False, True):
        if selected("fig05"):
            run_fig05(runner, shared, peek, mp)
    if selected("s8.1") or selected("RFC 7865"):
        run_s81(runner, shared, peek, index)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
