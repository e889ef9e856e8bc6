#!/usr/bin/env python3
"""tally-sip as the SIPREC recording client (issue 11, second slice), black
box: changes of a running recording. The real tally-sip ($TALLY_SIP),
tally-media and tally-recorder ($TALLY_RECORDER), python UAs (those of
sip_record.py) with an audio+video SDP, a PCMU tone both ways and, for a
while, both parties' video; a WebSocket client collecting the events.

One call, recorded "audio" to the configured recorder:
  p  pause: 200 with "change":"pause"; recording.audio.paused; GET shows
     paused and audio "paused"; a second pause 409 (with the recording);
     the recorder logs the stream paused; resume: recording.audio.resumed
     after .paused; resume again 409
  m  media audio+video: 200, recording.video.started (the recorder gets
     the video lines after the audio ones in the same session: same
     SIPREC Call-ID, 4 streams, labels 1..4); the clip's video flows;
     media audio: recording.video.stopped; media audio again: 200, no event
  x  bad input: unknown recording 404 for pause/resume/media, GET on
     .../pause 405, media with a bad body 400, an unknown action 404, no
     token 401; after the hang-up pause 409 ("ended")
  f  the call ends: audio.stopped; the recorder finalizes one session:
     every event in order (started, paused, resumed, video started,
     video stopped, stopped); metadata-*.xml with datamode partial were
     stored; its stereo.wav has one silent run, of the pause's length
     (the time between .paused and .resumed) within 0.35 s; its capture
     holds both parties' video RTP
A second call, recorded "audio+video" with "mode":"per-party":
  pp two sessions at the recorder, each with one party's audio and video,
     its metadata naming that party as sender and the other as receiver;
     events carry the party; GET lists both (twin ids); the same start
     again is 200, another mode 409, a bad mode 400; pause on one id
     pauses both, DELETE stops both
tally-sip runs with record=9xx1 audio+video per-party and record=20x1
audio:
  pol the first call (to 2000) matches no rule: nothing recorded until the
     POST; a call to 2001 is recorded audio, one session, at its answer:
     audio.started, the recorder's session, GET lists it, a POST for it is
     200 with it; the hang-up gives audio.stopped
tally-sip probes its recorders with OPTIONS every second; the first one
configured answers 503 with Retry-After: 30:
  h  it is found down before the first call, gets no second OPTIONS and
     no INVITE; every recording goes straight to the real recorder
Every daemon log is checked for sanitizer reports; tally-sip exits 0 on
SIGTERM. Ports are picked at run time; only processes started here are
stopped, by PID.
"""

import glob
import json
import math
import os
import random
import re
import signal
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tallytest as tt  # noqa: E402
import rectest as rt  # noqa: E402
from api_events import Proc, api_request, binary, Fail, check, wait_until  # noqa: E402
import sip_record as sr  # noqa: E402
from sip_record import (LO, TOKEN, SANITIZER, ok, Ua, Pump, Events,  # noqa: E402
                        disjoint_ports, post, get_rec, find_call, expect_error, clip_flows)


def ulaw(x):
    """One linear sample (-1..1) as G.711 u-law."""
    s = max(-32635, min(32635, int(x * 32767)))
    sign = 0x80 if s < 0 else 0
    s = abs(s) + 0x84
    exp, m = 7, 0x4000
    while exp > 0 and not s & m:
        exp -= 1
        m >>= 1
    mant = (s >> (exp + 3)) & 0x0F
    return ~(sign | (exp << 4) | mant) & 0xFF


def tone(seconds, ssrc, freq):
    """PCMU packets of a FREQ Hz tone, 20 ms each: [(t, packet)]."""
    out, seq, ts = [], random.getrandbits(16), random.getrandbits(32)
    for i in range(int(seconds * 50)):
        pl = bytes(ulaw(0.4 * math.sin(2 * math.pi * freq * (i * 160 + k) / 8000.0))
                   for k in range(160))
        out.append((i * 0.02, tt.rtp_packet((seq + i) & 0xFFFF, (ts + 160 * i) & 0xFFFFFFFF,
                                            ssrc, pl)))
    return out


class Busy503(threading.Thread):
    """A recorder that is away: every OPTIONS and INVITE gets 503 with
    Retry-After: 30. Counts what it got."""

    def __init__(self):
        threading.Thread.__init__(self, daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LO, 0))
        self.port = self.sock.getsockname()[1]
        self.got = {}
        self.start()

    def run(self):
        while True:
            try:
                data, src = self.sock.recvfrom(65535)
            except OSError:
                return
            m = sr.parse(data)
            if not m or m["code"] is not None:
                continue
            self.got[m["method"]] = self.got.get(m["method"], 0) + 1
            if m["method"] == "ACK":
                continue
            h = ["SIP/2.0 503 Service Unavailable"] + ["Via: " + v for k, v in m["hdrs"]
                                                      if k == "via"]
            h += ["From: " + m["hdr"]["from"], "To: %s;tag=busy" % m["hdr"]["to"],
                  "Call-ID: " + m["hdr"]["call-id"], "CSeq: " + m["hdr"]["cseq"],
                  "Retry-After: 30", "Content-Length: 0", "", ""]
            self.sock.sendto("\r\n".join(h).encode(), src)

    def close(self):
        self.sock.close()


def action(api_port, rid, what, body=None, token=TOKEN, method="POST"):
    return api_request(api_port, "/api/v1/recordings/%s/%s" % (rid, what), token=token,
                       method=method, body=json.dumps(body) if body is not None else None)


def run(tmp):
    tally_sip = binary("TALLY_SIP", "src/sip/tally-sip")
    rt.need_tools("ffprobe")
    procs, uas, recs, others = [], [], [], []
    media = None
    try:
        media = tt.Daemon(nports=200, name="tally-media")
        media.start()
        taken = [(media.port_min, media.port_max)]
        rec = disjoint_ports(rt.Recorder(tmp, name="recorder", log_level=6,
                                         storage=os.path.join(tmp, "storage")), taken).start()
        recs.append(rec)
        pcap, _desc = rt.make_pcap(tmp, 5)
        callee = Ua("2000", "VP8")
        caller = Ua("1000", "H264")
        uas += [callee, caller]
        sip_port, api_port = tt.free_port(), tt.free_port()
        rec_uri = "sip:srs@%s:%d;transport=tcp" % (LO, rec.sip_port)
        busy = Busy503()
        others.append(busy)
        busy_uri = "sip:srs@%s:%d;transport=udp" % (LO, busy.port)
        sip = Proc("tally-sip", [
            tally_sip, "--config-file=none", "--foreground", "--log-level=7",
            "--sip-listen=%s:%d" % (LO, sip_port),
            "--media-servers=%s:%d" % (LO, media.ng_port),
            "--api-listen=%s:%d" % (LO, api_port), "--api-token=" + TOKEN,
            "--recorders=%s, %s" % (busy_uri, rec_uri), "--recorder-timeout-ms=3000",
            "--recorder-options-secs=1",
            "--record=9xx1 audio+video per-party", "--record=20x1 audio",
            "--route=2xxx sip:${user}@%s:%d" % (LO, callee.port)], tmp)
        procs.append(sip)

        def api_up():
            if not sip.alive():
                raise Fail("tally-sip exited with %s\n%s" % (sip.proc.returncode, sip.log()))
            try:
                return api_request(api_port, "/api/v1/health", token=TOKEN)[0] == 200
            except OSError:
                return False
        wait_until(api_up, 10, "tally-sip's API")
        wait_until(lambda: re.search(r"recorder \S+ down: 503, Retry-After", sip.log(400)), 10,
                   "the OPTIONS health check to find the first recorder down")
        ev = Events(api_port)
        time.sleep(0.2)

        seen = set(callee.dialogs)
        d = caller.call(sip_port, "2000")
        dd = callee.wait_dialog(seen)
        call = find_call(api_port, "1000", d.callid)
        time.sleep(0.3)
        st, _, lst = api_request(api_port, "/api/v1/recordings", token=TOKEN)
        check(not lst["recordings"], "a call to 2000 recorded by no rule: %r" % lst)
        st, _, r = post(api_port, {"call": call["id"], "media": "audio"})
        check(st == 201, "start: %d %r" % (st, r))
        rid = r["id"]
        ev.wait(rid, ["recording.audio.started"])
        g0 = get_rec(api_port, rid)

        tones = Pump([(d.party, "a", tone(10, 0x1111, 440)),
                      (dd.party, "a", tone(10, 0x2222, 880))], [d.party, dd.party])
        tones.start()
        time.sleep(1.2)

        # ---------------- (p) pause / resume ----------------
        st, _, r = action(api_port, rid, "pause")
        check(st == 200 and r["id"] == rid and r.get("change") == "pause", "pause: %d %r" % (st, r))
        ev.wait(rid, ["recording.audio.paused"])
        g = get_rec(api_port, rid)
        check(g["paused"] is True and g["audio"]["state"] == "paused" and g["change"] is None and
              g["video"] is None, "GET while paused %r" % g)
        st, _, r = action(api_port, rid, "pause")
        check(st == 409 and r.get("error") and r.get("recording", {}).get("id") == rid,
              "second pause: want 409 with the recording, %d %r" % (st, r))
        time.sleep(1.5)
        st, _, r = action(api_port, rid, "resume")
        check(st == 200 and r.get("change") == "resume", "resume: %d %r" % (st, r))
        ev.wait(rid, ["recording.audio.resumed"])
        g = get_rec(api_port, rid)
        check(g["paused"] is False and g["audio"]["state"] == "started", "GET resumed %r" % g)
        st, _, r = action(api_port, rid, "resume")
        expect_error(st, r, 409, "resume when not paused")
        evs = {e["event"]: e for e in ev.of(rid)}
        pause_s = (evs["recording.audio.resumed"]["time_ms"] -
                   evs["recording.audio.paused"]["time_ms"]) / 1000.0
        wait_until(lambda: rec.log_lines(r"stream \S+ resumed"), 5, "the recorder's resume log")
        check(rec.log_lines(r"stream \S+ paused"), "the recorder did not pause a stream")
        ok("(p) pause 200, .paused, GET paused, second pause 409; resume 200, .resumed "
           "(%.2f s apart), resume again 409; the recorder paused and resumed" % pause_s)

        # ---------------- (m) add and drop video ----------------
        st, _, r = action(api_port, rid, "media", {"media": "audio+video"})
        check(st == 200 and r["media"] == "audio+video" and r.get("change") == "add video",
              "media audio+video: %d %r" % (st, r))
        ev.wait(rid, ["recording.video.started"])
        g = get_rec(api_port, rid)
        check(g["siprec_call_id"] == g0["siprec_call_id"] and len(g["streams"]) == 4 and
              [s["type"] for s in g["streams"]] == ["audio", "audio", "video", "video"] and
              [s["label"] for s in g["streams"]] == [1, 2, 3, 4] and
              g["video"]["state"] == "started", "GET after video added %r" % g)
        vflows = [f for f in clip_flows(pcap, d.party, dd.party) if f[1] in ("v", "vr")]
        vpump = Pump(vflows, [])
        vpump.start()
        check(vpump.done.wait(30), "the video pump did not finish")
        rows = rec.api.by_call_id(g["siprec_call_id"])
        check(len(rows) == 1, "recorder sessions %r" % rows)
        sj = rec.api.recording(rows[0]["id"])
        sj = sj.get("session", sj)
        kinds = [(s.get("media"), bool(s.get("accepted"))) for s in sj.get("streams", [])]
        check(kinds == [("audio", True), ("audio", True), ("video", True), ("video", True)],
              "recorder streams after video added %r" % kinds)
        st, _, r = action(api_port, rid, "media", {"media": "audio"})
        check(st == 200 and r["media"] == "audio" and r.get("change") == "drop video",
              "media audio: %d %r" % (st, r))
        ev.wait(rid, ["recording.video.stopped"])
        st, _, r = action(api_port, rid, "media", {"media": "audio"})
        check(st == 200 and r.get("change") is None, "media audio again %d %r" % (st, r))
        sj = rec.api.recording(rows[0]["id"])
        sj = sj.get("session", sj)
        kinds = [(s.get("media"), bool(s.get("accepted"))) for s in sj.get("streams", [])]
        check(kinds == [("audio", True), ("audio", True), ("video", False), ("video", False)],
              "recorder streams after video dropped %r" % kinds)
        ok("(m) video added in the same session (labels 3, 4 after the audio; recorder "
           "accepted them), dropped again (port 0): %r" % ev.names(rid))

        # ---------------- (x) bad input ----------------
        for what in ("pause", "resume"):
            st, _, r = action(api_port, "r9-nope", what)
            expect_error(st, r, 404, "%s unknown" % what)
        st, _, r = action(api_port, "r9-nope", "media", {"media": "audio"})
        expect_error(st, r, 404, "media unknown")
        st, _, r = action(api_port, rid, "pause", method="GET")
        expect_error(st, r, 405, "GET pause")
        for body in ({"media": "video"}, {"media": 3}, {}, "nope"):
            st, _, r = api_request(api_port, "/api/v1/recordings/%s/media" % rid, token=TOKEN,
                                   method="POST", body=json.dumps(body) if body != "nope" else body)
            expect_error(st, r, 400, "media body %r" % (body,))
        st, _, r = action(api_port, rid, "explode")
        expect_error(st, r, 404, "unknown action")
        st, _, r = action(api_port, rid, "pause", token=None)
        expect_error(st, r, 401, "pause without token")
        ok("(x) 404 unknown recording, 405 GET, 400 bad media bodies, 404 unknown action, "
           "401 no token")

        # ---------------- (f) hang-up, files ----------------
        check(tones.done.wait(20), "the tone pump did not finish")
        caller.bye(d, sip_port)
        ev.wait(rid, ["recording.audio.stopped"])
        st, _, r = action(api_port, rid, "pause")
        expect_error(st, r, 409, "pause after the end")
        names = ev.names(rid)
        want = ["recording.audio.started", "recording.audio.paused", "recording.audio.resumed",
                "recording.video.started", "recording.video.stopped", "recording.audio.stopped"]
        check(names == want, "event order %r" % names)
        fin = rec.wait_final(g0["siprec_call_id"], timeout=60)
        check(fin.get("state") == "complete", "recorder state %r" % fin.get("state"))
        folder = rec.find_session_dirs(g0["siprec_call_id"])
        check(len(folder) == 1, "session folder %r" % folder)
        metas = sorted(glob.glob(os.path.join(folder[0], "metadata*.xml")))
        partial = [m for m in metas if "<datamode>partial</datamode>" in open(m).read()]
        check(len(metas) >= 4 and len(partial) >= 3,
              "metadata documents %r, partial %r" % (metas, partial))
        with open(os.path.join(folder[0], "session.json")) as f:
            sj = json.load(f)
        wav = [x["name"] for x in sj["files"] if x["name"] == "stereo.wav"]
        check(wav, "no stereo.wav in %r" % sj["files"])
        rate, chans = rt.read_wav(os.path.join(folder[0], "stereo.wav"))
        for i, ch in enumerate(chans):
            runs = rt.silent_runs(ch, rate, min_len=0.3)
            long_runs = [(a, b) for a, b in runs if b - a >= 0.5]
            check(len(long_runs) == 1 and abs((long_runs[0][1] - long_runs[0][0]) - pause_s) <= 0.35,
                  "channel %d: silent runs %r, pause %.2f s" % (i, runs, pause_s))
        # the recorder's capture holds both videos while they were recorded
        # (its outputs leave out streams that ended refused: its choice)
        pkts, _ = rt.read_pcap(os.path.join(folder[0], "media.pcap"))
        audio_ports = {s["port"] for s in sj["streams"] if s["media"] == "audio"}
        per_port = {}
        for p in pkts:
            if p.dport not in audio_ports and p.dport % 2 == 0:
                per_port[p.dport] = per_port.get(p.dport, 0) + 1
        check(len([n for n in per_port.values() if n >= 50]) == 2,
              "video RTP at the recorder per port %r" % per_port)
        ok("(f) events in order %r; %d metadata documents (%d partial); stereo.wav: one "
           "silence per channel of the pause's %.2f s; video packets captured %r" % (
               names, len(metas), len(partial), pause_s, sorted(per_port.values())))

        # ---------------- (pp) one session per party ----------------
        seen = set(callee.dialogs)
        d = caller.call(sip_port, "2000")
        dd = callee.wait_dialog(seen)
        call = find_call(api_port, "1000", d.callid)
        st, _, r = post(api_port, {"call": call["id"], "media": "audio+video", "mode": "per-party"})
        check(st == 201 and r["mode"] == "per-party" and r["party"] == "caller" and r["twin"],
              "per-party start %d %r" % (st, r))
        ra, rb = r["id"], r["twin"]
        for x in (ra, rb):
            ev.wait(x, ["recording.audio.started", "recording.video.started"])
        check({e["party"] for e in ev.of(ra)} == {"caller"} and
              {e["party"] for e in ev.of(rb)} == {"callee"},
              "events' party %r %r" % ([e["party"] for e in ev.of(ra)],
                                       [e["party"] for e in ev.of(rb)]))
        st, _, lst = api_request(api_port, "/api/v1/recordings", token=TOKEN)
        mine = {x["id"]: x for x in lst["recordings"] if x["call"] == call["id"]}
        check(sorted(mine) == sorted([ra, rb]) and mine[rb]["party"] == "callee" and
              mine[rb]["twin"] == ra and mine[ra]["siprec_call_id"] != mine[rb]["siprec_call_id"],
              "GET lists %r" % mine)
        st, _, r2 = post(api_port, {"call": call["id"], "media": "audio+video", "mode": "per-party"})
        check(st == 200 and r2["id"] == ra, "per-party again: %d %r" % (st, r2))
        st, _, r2 = post(api_port, {"call": call["id"], "media": "audio+video"})
        check(st == 409 and r2["recording"]["id"] == ra, "other mode: %d %r" % (st, r2))
        st, _, r2 = post(api_port, {"call": call["id"], "media": "audio", "mode": "solo"})
        expect_error(st, r2, 400, "bad mode")
        aor = {"caller": "sip:1000@%s:%d" % (LO, caller.port), "callee": "sip:2000@"}
        for x, who, other in ((ra, "caller", "callee"), (rb, "callee", "caller")):
            g = mine[x]
            check(all(s["party"] == who for s in g["streams"]) and len(g["streams"]) == 2,
                  "%s session streams %r" % (who, g["streams"]))
            rows = rec.api.by_call_id(g["siprec_call_id"])
            check(len(rows) == 1, "recorder sessions for %s: %r" % (who, rows))
            sj = rec.api.recording(rows[0]["id"])
            sj = sj.get("session", sj)
            labels = sorted(str(s.get("label")) for s in sj.get("streams", []))
            check(len(labels) == 2 and all(s.get("accepted") for s in sj["streams"]),
                  "%s: recorder streams %r" % (who, sj.get("streams")))
            ps = sj.get("participants", [])
            snd = [p for p in ps if p.get("aor", "").startswith(aor[who])]
            rcv = [p for p in ps if p.get("aor", "").startswith(aor[other])]
            check(len(ps) == 2 and len(snd) == 1 and len(rcv) == 1 and
                  sorted(map(str, snd[0].get("send", []))) == labels and not snd[0].get("recv") and
                  sorted(map(str, rcv[0].get("recv", []))) == labels and not rcv[0].get("send"),
                  "%s session metadata: participants %r, labels %r" % (who, ps, labels))
        st, _, r = action(api_port, ra, "pause")
        check(st == 200, "per-party pause %d %r" % (st, r))
        for x in (ra, rb):
            ev.wait(x, ["recording.audio.paused", "recording.video.paused"])
        st, _, r = api_request(api_port, "/api/v1/recordings/" + ra, token=TOKEN, method="DELETE")
        check(st == 200, "per-party DELETE %d %r" % (st, r))
        for x in (ra, rb):
            ev.wait(x, ["recording.audio.stopped", "recording.video.stopped"])
        ok("(pp) per-party: two SIPREC sessions (events with party caller/callee, GET lists "
           "both), each with its party's 2 streams, the metadata naming it sender and the "
           "other receiver; pause and DELETE act on both")
        caller.bye(d, sip_port)

        # ---------------- (pol) the static record policy ----------------
        seen = set(callee.dialogs)
        d = caller.call(sip_port, "2001")
        dd = callee.wait_dialog(seen)
        call = find_call(api_port, "1000", d.callid)

        def policy_rec():
            st, _, lst = api_request(api_port, "/api/v1/recordings", token=TOKEN)
            mine = [x for x in lst["recordings"] if x["call"] == call["id"]]
            return mine[0] if mine else None
        wait_until(policy_rec, 5, "the policy's recording of the call to 2001")
        rp = policy_rec()
        check(rp["media"] == "audio" and rp["mode"] == "both", "policy recording %r" % rp)
        ev.wait(rp["id"], ["recording.audio.started"])
        rows = rec.api.by_call_id(get_rec(api_port, rp["id"])["siprec_call_id"])
        check(len(rows) == 1, "recorder session of the policy's recording %r" % rows)
        st, _, r = post(api_port, {"call": call["id"], "media": "audio"})
        check(st == 200 and r["id"] == rp["id"], "POST on a policy recording %d %r" % (st, r))
        caller.bye(d, sip_port)
        ev.wait(rp["id"], ["recording.audio.stopped"])
        check(ev.names(rp["id"]) == ["recording.audio.started", "recording.audio.stopped"],
              "policy events %r" % ev.names(rp["id"]))
        ok("(pol) record=20x1 audio: the call to 2001 recorded at its answer (audio.started, "
           "the recorder's session, GET; POST answers 200 with it); the call to 2000 matched "
           "no rule and was not recorded")

        # ---------------- (h) OPTIONS health ----------------
        time.sleep(1.5)
        check(busy.got.get("OPTIONS") == 1 and not busy.got.get("INVITE"),
              "the recorder answering 503 Retry-After: 30 got %r (want one OPTIONS in 30 s, "
              "no INVITE)" % busy.got)
        check(re.search(r"passing over 1 recorder", sip.log(4000)) and
              not re.search(r"trying the next recorder", sip.log(4000)),
              "recordings did not pass over the recorder found down")
        ok("(h) OPTIONS every 1 s: the first recorder answered 503 Retry-After: 30, got no "
           "further OPTIONS and no INVITE; every recording went to the second at once")

        rc = sip.stop(signal.SIGTERM, timeout=10)
        check(rc == 0, "tally-sip exited %s on SIGTERM\n%s" % (rc, sip.log(40)))
        for name, text in [("tally-sip", open(sip.logpath, "rb").read().decode("utf-8", "replace")),
                           ("tally-media", open(media.logpath, "rb").read().decode("utf-8", "replace")),
                           ("recorder", rec.log_text())]:
            for s in SANITIZER:
                check(s not in text, "%s: sanitizer report (%s)" % (name, s))
        ok("tally-sip exited 0; no sanitizer reports in any log")
    except Exception:
        sr.dump_logs(procs, recs)
        raise
    finally:
        sr.stop_all(procs, uas, others, recs, media)


if __name__ == "__main__":
    sys.exit(sr.script_main(run, "tally-sip-record2-"))
