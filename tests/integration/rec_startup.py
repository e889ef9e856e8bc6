#!/usr/bin/env python3
"""tally-recorder serves at once with many session folders; recovery of
unfinished sessions goes on in the background (issue 10).

A recorder with about 44,600 folders used to read every session.json
before it answered SIP or HTTP (77-88 s in an ASan build). The scan now
runs in slices of the main loop after serving began (src/recorder/recover.c).

  serves_before_recovery  FOLDERS complete folders (rows restored by a first
                          start) plus UNFINISHED left "recording" with a
                          capture; on the restart SIP OPTIONS and GET
                          /api/v1/status answer within 5 s, while the status
                          still says the recovery runs; a SIPREC session
                          made during the scan is recorded, and not taken
                          for an unfinished one; recovery ends with every
                          unfinished folder complete, no row left
                          "recording" or "finalizing", one row per folder;
                          a SIGTERM in the middle of the scan (before the
                          timed restart) exits cleanly, nothing leaked
The bench with 50,000 folders is bench/recstart.py. Ports are picked at run
time; only the daemons started here are stopped, by PID.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rectest as rt  # noqa: E402

FOLDERS = int(os.environ.get("TALLY_RECSTART_FOLDERS", "5000"))
UNFINISHED = int(os.environ.get("TALLY_RECSTART_UNFINISHED", "20"))
SERVE_WITHIN = 5.0


class Startup:
    def __init__(self):
        self.tmp = rt.make_tmp("rec-startup")
        self.recs = []

    def recorders(self):
        return self.recs

    def serves_before_recovery(self, c):
        template = rt.make_session_template(self.tmp)
        storage = os.path.join(self.tmp, "storage")
        os.mkdir(storage)
        rt.populate_storage(storage, template, FOLDERS)
        rec = rt.Recorder(self.tmp, name="first", storage=storage, log_level=5)
        self.recs.append(rec)
        first = rt.start_timed(rec, timeout=300, until_recovered=lambda st: not st[
            "recovery"]["running"])
        c.note("first start (rows from %d folders): SIP %.2f s, HTTP %.2f s, scan over %.2f s"
               % (FOLDERS, first["sip"], first["http"], first["recovered"]))
        c(rec.stop() == 0, "first recorder: bad exit status on SIGTERM")
        c(rt.catalog_states(storage) == {"complete": FOLDERS}, "rows after the first start: %s"
          % rt.catalog_states(storage))
        ids = rt.populate_storage(storage, template, UNFINISHED, unfinished=True,
                                  prefix="20261202T000000Z")

        # SIGTERM while the scan and its finalize jobs run: a clean exit
        # (no leak of the jobs dropped), and the next start picks up
        cut = rt.Recorder(self.tmp, name="cut", storage=storage, log_level=5)
        self.recs.append(cut)
        rt.start_timed(cut, timeout=60)
        end = time.monotonic() + 60
        while time.monotonic() < end and cut.api.status()["daemon"]["recovery"]["queued"] < 1:
            time.sleep(0.05)
        c(cut.stop() == 0, "SIGTERM during the recovery: bad exit status")
        bad = [ln for ln in cut.log_text().splitlines()
               if "Sanitizer" in ln or "runtime error:" in ln]
        c(not bad, "sanitizer report after SIGTERM during the recovery: %s" % bad[:3])

        left = 0
        for rid in ids:
            with open(os.path.join(storage, rid, "session.json")) as f:
                left += json.load(f)["state"] in ("recording", "finalizing")
        c(left > 0, "the cut recorder finished the whole recovery before SIGTERM")

        rec = rt.Recorder(self.tmp, name="restart", storage=storage, log_level=5)
        self.recs.append(rec)
        t = rt.start_timed(rec, timeout=60)
        c.note("restart with %d folders, %d unfinished: SIP %.2f s, HTTP %.2f s" % (
            FOLDERS + UNFINISHED, UNFINISHED, t["sip"], t["http"]))
        c(t["sip"] < SERVE_WITHIN, "first SIP answer after %.2f s" % t["sip"])
        c(t["http"] < SERVE_WITHIN, "first HTTP answer after %.2f s" % t["http"])
        c(t["recovery_running_at_first_answer"],
          "the recovery was over before the first HTTP answer: serving waited for it")

        # a session made during the scan is ours, not one to recover
        uac = rt.SipUac(rec.sip_port)
        ctype, body = rt.siprec_body([30000, 30002, 30004, 30006])
        r = uac.invite(ctype, body)
        c(r is not None and r["code"] == 200, "INVITE during recovery: %s" % (r and r["first"]))
        end = time.monotonic() + 120
        while time.monotonic() < end:
            st = rec.api.status()["daemon"]
            if not st["recovery"]["running"] and st["finalize_pending"] == 0:
                break
            time.sleep(0.2)
        c.note("recovery: %s" % st["recovery"])
        c(not st["recovery"]["running"], "recovery still running after 120 s")
        c(st["recovery"]["queued"] == left, "recovery queued %d, want the %d left unfinished"
          % (st["recovery"]["queued"], left))
        if r is not None and r["code"] == 200:
            rows = rec.api.by_call_id(uac.call_id)
            c(rows and rows[0]["state"] == "recording", "the live session is %r during the "
              "recovery, want recording" % (rows and rows[0]["state"]))
            uac.bye()
            rec.wait_final(uac.call_id, timeout=60)
        uac.close()
        for rid in ids:
            det = rec.api.recording(rid)
            c(det.get("state") == "complete", "recovered %s: %r (%r)" % (
                rid, det.get("state"), det.get("reason")))
        states = rt.catalog_states(storage)
        c(sum(states.values()) == FOLDERS + UNFINISHED + 1,
          "catalog rows %s, want %d" % (states, FOLDERS + UNFINISHED + 1))
        c(not states.get("recording") and not states.get("finalizing"),
          "rows left unfinished: %s" % states)
        c(rec.stop() == 0, "restart recorder: bad exit status on SIGTERM")


def main():
    s = Startup()
    tests = [("serves_before_recovery", s.serves_before_recovery)]
    status = 1
    try:
        status = rt.run_subtests(tests, s.tmp, recorders=s.recorders, cleanup=False)
    finally:
        for r in s.recs:
            if r.alive():
                r.stop()
        rt.cleanup_tmp(s.tmp, status)
    return status


if __name__ == "__main__":
    sys.exit(main())
