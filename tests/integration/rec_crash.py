#!/usr/bin/env python3
"""tally-recorder crash safety: kill -9 mid-session, restart, recover.

A python SIPREC client (rectest.SipUac) opens a four-stream session (A: PCMU
440 Hz + H.264, B: PCMU 880 Hz + VP8, RFC 7865 metadata); rectest.Replayer
sends the mkrtp.py pcap with its real timing, noting every packet and when
it left. After ~3 s the recorder we started is killed with SIGKILL (its PID
only) while the media is still flowing.

  capture_survives   media.pcap in the session folder holds every packet
                     sent more than INFLIGHT s before the kill (only packets
                     in flight may be missing), each one byte-identical and
                     once, nothing we did not send; a torn last record is
                     tolerated
  recovered          a new tally-recorder on the same storage finalizes the
                     folder: the recording ends complete (or failed with a
                     reason, never missing or stuck), files hold the pre-kill
                     media (durations ~3 s, video decodes, tones on the right
                     channels), the duration ends with the media, not
                     with the restart DOWNTIME s later, catalog row and
                     session.json agree; a BYE for
                     the dead dialog gets 481
Fails (never skips) when tally-recorder, mkrtp.py or ffprobe are missing.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rectest as rt  # noqa: E402

SEND_SECONDS = 3.0     # media before the kill
PCAP_SECONDS = 6       # the pcap is longer: media is still flowing at the kill
INFLIGHT = 0.1         # packets sent this close to the kill may be lost
DOWNTIME = 2.0         # the recorder stays dead this long before the restart
DUR_TOL = 0.5


class Crash:
    def __init__(self):
        self.tmp = rt.make_tmp("rec-crash")
        self.rec = self.rec2 = None
        self.state = {}

    def recorders(self):
        return [self.rec, self.rec2]

    def capture_survives(self, c):
        rt.need_tools("ffprobe", "ffmpeg")
        self.rec = rec = rt.Recorder(self.tmp, name="recorder").start()
        pcap, _desc = rt.make_pcap(self.tmp, PCAP_SECONDS)
        pkts, _ = rt.read_pcap(pcap)
        if not pkts:
            raise AssertionError("mkrtp pcap %s has no UDP packets" % pcap)
        src_base = rt.free_port_block(8)[0]
        uac = self.uac = rt.SipUac(rec.sip_port)
        ctype, body = rt.siprec_body([src_base + 2 * i for i in range(4)])
        r = uac.invite(ctype, body)
        if r is None or r["code"] != 200:
            raise AssertionError("INVITE: %s\n%s" % (r["first"] if r else "no answer",
                                                     rec.log_tail(20)))
        media = rt.answer_media(rt.sdp_of(r))
        ports = [m["port"] for m in media]
        if len(ports) != 4 or 0 in ports:
            raise AssertionError("answer ports %s: want four accepted m= lines" % ports)
        base = ports[0]
        c(ports == [base + 2 * i for i in range(4)], "answer ports %s are not one block" % ports)

        rp = rt.Replayer(pkts, base, src_base)
        rp.start()
        time.sleep(SEND_SECONDS)
        rows = rec.api.by_call_id(uac.call_id)
        if len(rows) != 1:
            rp.stop()
            raise AssertionError("API search call_id=%s mid-call: %d rows" % (uac.call_id, len(rows)))
        self.dir = d = rec.session_dir(rows[0].get("id", ""))
        c(rows[0].get("state") == "recording", "API state %r mid-call" % rows[0].get("state"))
        c(rec.find_session_dirs(uac.call_id) == [d], "session.json with call_id %s: %s, want %s"
          % (uac.call_id, rec.find_session_dirs(uac.call_id), [d]))
        try:
            with open(os.path.join(d, "session.json")) as f:
                c(json.load(f).get("state") == "recording", "session.json not 'recording' mid-call")
        except (OSError, ValueError) as e:
            c(False, "session.json mid-call: %s" % e)
        t_kill = time.monotonic()
        rec.kill9()
        t_dead = time.monotonic()
        rp.stop()
        rp.close()
        c(not rp.errors, "sending failed before the kill: %s" % rp.errors[:3])
        sent = [x for x in rp.sent if x[0] <= t_dead]
        must = [x for x in sent if x[0] < t_kill - INFLIGHT]
        self.state.update(sent=sent, t0=rp.started_at, base=base, t_dead=t_dead)

        path = os.path.join(d, "media.pcap")
        if not c(os.path.isfile(path), "no media.pcap in %s after the kill" % d):
            return
        got, info = rt.read_pcap(path)
        if info["truncated"]:
            c.note("media.pcap ends with a torn record of %d bytes (tolerated)" % info["truncated"])
        have = {}
        for p in got:
            k = (p.dport - base, p.payload)
            have[k] = have.get(k, 0) + 1
        sent_keys = {(off, pl) for _t, off, pl in sent}
        missing = [(t - t_kill, off) for t, off, pl in must if (off, pl) not in have]
        strange = [k for k in have if k not in sent_keys]
        dups = [k for k, n in have.items() if n > 1]
        c.note("sent %d packets in %.2fs before the kill, %d of them > %.0f ms before it; "
               "media.pcap has %d" % (len(sent), (sent[-1][0] - sent[0][0]) if sent else 0,
                                      len(must), INFLIGHT * 1000, len(got)))
        c(len(must) > 100, "only %d packets sent before the kill (harness problem)" % len(must))
        c(not missing, "media.pcap lacks %d of the %d packets sent before the kill (first: %s "
          "s before the kill, stream offset %s)" % (
              len(missing), len(must), "%.3f" % -missing[0][0] if missing else "",
              missing[0][1] if missing else ""))
        c(not strange, "media.pcap has %d packets that were never sent (wrong port or bytes)"
          % len(strange))
        c(not dups, "media.pcap has %d packets twice" % len(dups))
        c(all(p.src == rt.LOCAL for p in got), "media.pcap source address not 127.0.0.1")
        ts = [p.ts for p in got]
        c(ts == sorted(ts), "media.pcap timestamps go backwards")

    def recovered(self, c):
        if not self.state.get("sent"):
            raise AssertionError("capture_survives did not get to the kill")
        rec, uac = self.rec, self.uac
        # a real outage lasts: the recording must still end when its media
        # ended, not when the recorder came back
        time.sleep(max(0.0, self.state["t_dead"] + DOWNTIME - time.monotonic()))
        self.rec2 = rec2 = rt.Recorder(self.tmp, name="recorder2", storage=rec.storage).start()
        det = rec2.wait_final(uac.call_id, timeout=60)
        st = det.get("state")
        c(st == "complete" or (st == "failed" and det.get("reason")),
          "recovered recording: state %r reason %r" % (st, det.get("reason")))
        c(st == "complete", "recovered recording failed: %r" % det.get("reason"))
        with open(os.path.join(self.dir, "session.json")) as f:
            sj = json.load(f)
        c(sj.get("state") == st, "session.json state %r, API %r" % (sj.get("state"), st))
        c(os.path.basename(self.dir) == det.get("id"), "folder %s, recording id %r" % (
            os.path.basename(self.dir), det.get("id")))
        rows = rec2.api.by_call_id(uac.call_id)
        c(len(rows) == 1, "catalog: %d rows for the call_id" % len(rows))
        parts = sorted(p.get("aor") for p in det.get("participants") or [])
        c(parts == ["sip:alice@example.com", "sip:bob@example.com"], "participants %s" % parts)

        sent = self.state["sent"]
        # media seconds sent before the kill (the pcap's own timeline)
        media_s = sent[-1][0] - sent[0][0]
        dur = det.get("duration")
        c(isinstance(dur, (int, float)) and abs(dur - media_s) <= DUR_TOL,
          "API duration %r s: the media ended %.2f s after the start (the recorder was down "
          "%.1f s before the restart; 'stopped' must not be the restart time)"
          % (dur, media_s, DOWNTIME))
        files = {(f.get("participant") if f.get("kind") == "participant" else f.get("kind")): f
                 for f in det.get("files") or []}
        c(set(files) == {rt.PART_A, rt.PART_B, "tracks", "stereo"},
          "files %s" % [f.get("name") for f in det.get("files") or []])
        for key, f in files.items():
            path = os.path.join(self.dir, f.get("name", ""))
            if not c(os.path.isfile(path), "%s listed, not on disk" % f.get("name")):
                continue
            c(rt.sha256_file(path) == f.get("sha256"), "%s: sha256 differs from the API" % f.get("name"))
            pj = rt.ffprobe(path)
            dur = float(pj.get("format", {}).get("duration", 0) or 0)
            c(abs(dur - media_s) <= DUR_TOL, "%s lasts %.2fs, %.2fs of media were sent before "
              "the kill" % (f.get("name"), dur, media_s))
            vids = [s for s in pj.get("streams", []) if s.get("codec_type") == "video"]
            for k in range(len(vids)):
                n = rt.count_frames(path, "v:%d" % k)
                c(n >= 5, "%s v:%d: %d frames decode" % (f.get("name"), k, n))
            if key == "stereo":
                rate, chans = rt.read_wav(path)
                if c(len(chans) == 2, "stereo.wav: %d channels" % len(chans)):
                    for ch, want, other in ((0, 440, 880), (1, 880, 440)):
                        p = rt.tone_powers(chans[ch], rate, (440, 880), start=0.5, secs=1.0)
                        c(p[want] > 1.25e-3 and p[want] > 20 * p[other],
                          "stereo.wav channel %d: %d Hz %.2g vs %d Hz %.2g" % (
                              ch, want, p[want], other, p[other]))
        # the dialog died with the first process
        uac.rport = rec2.sip_port
        r = uac.bye(timeout=5)
        c(r is not None and r["code"] == 481, "BYE for the dialog of the killed recorder: %s, want 481"
          % (r["first"] if r else "no answer"))
        uac.close()
        c(rec2.alive(), "the restarted recorder died")


def main():
    s = Crash()
    tests = [("capture_survives", s.capture_survives), ("recovered", s.recovered)]
    status = 1
    try:
        status = rt.run_subtests(tests, s.tmp, recorders=s.recorders, cleanup=False)
    finally:
        for r in (s.rec2, s.rec):
            if r is not None and r.alive():
                rc = r.stop()
                if rc != 0:
                    print("FAIL shutdown: %s exited with %s on SIGTERM" % (r.name, rc), flush=True)
                    status = 1
        rt.cleanup_tmp(s.tmp, status)
    return status


if __name__ == "__main__":
    sys.exit(main())
