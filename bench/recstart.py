#!/usr/bin/env python3
"""
tally-recorder start-up with many session folders (issue 10): how long until
it answers SIP OPTIONS and GET /api/v1/status, and how long until the
recovery of unfinished sessions is over.

  1. one real session on a recorder of its own gives a finalized folder to
     clone (rectest.make_session_template);
  2. FOLDERS - UNFINISHED folders are cloned complete (session.json only);
     a first start restores their catalog rows from the folders (timed too:
     a lost catalog);
  3. UNFINISHED folders are added in state "recording" with a media.pcap, as
     a crash leaves them; the restart is timed: first SIP answer, first HTTP
     answer, recovery over (scan done, nothing left to finalize, every
     unfinished one complete or failed); the catalog is checked.

Loopback, free ports, only the processes started here are stopped (by PID).
Run:  python3 bench/recstart.py --recorder build-rec-release/src/recorder/tally-recorder
      [--folders 50000] [--unfinished 200] [--keep]
Prints a table and a final JSON line.
"""

import argparse
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import rectest as rt  # noqa: E402


def scan_over(st):
    rcv = st.get("recovery")
    return not (rcv and rcv.get("running"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--recorder", help="tally-recorder binary (default: TALLY_RECORDER "
                    "or the newest build*/src/recorder/tally-recorder)")
    ap.add_argument("--folders", type=int, default=50000)
    ap.add_argument("--unfinished", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="keep the storage")
    a = ap.parse_args()
    if a.recorder:
        os.environ["TALLY_RECORDER"] = os.path.abspath(a.recorder)
    tmp = rt.make_tmp("recstart")
    res = {"recorder": rt.recorder_binary(), "folders": a.folders,
           "unfinished": a.unfinished}
    try:
        t = time.monotonic()
        template = rt.make_session_template(tmp)
        storage = os.path.join(tmp, "storage")
        os.mkdir(storage)
        rt.populate_storage(storage, template, a.folders - a.unfinished)
        res["populate_s"] = round(time.monotonic() - t, 1)

        rec = rt.Recorder(tmp, name="first", storage=storage, log_level=5)
        first = rt.start_timed(rec, timeout=900, until_recovered=scan_over)
        rec.stop()
        res["first_start"] = first
        res["rows_after_first"] = rt.catalog_states(storage)

        rt.populate_storage(storage, template, a.unfinished, unfinished=True,
                            prefix="20261202T000000Z")
        want = a.unfinished

        def over(st):
            done = st["recordings"]["complete"] + st["recordings"]["failed"]
            return scan_over(st) and st["finalize_pending"] == 0 and done >= want

        rec = rt.Recorder(tmp, name="restart", storage=storage, log_level=5)
        again = rt.start_timed(rec, timeout=900, until_recovered=over)
        st = rec.api.status()["daemon"]
        rec.stop()
        res["restart"] = again
        res["restart_recovery"] = st.get("recovery")
        res["rows_after_restart"] = rt.catalog_states(storage)
    finally:
        if a.keep:
            print("# kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    def f(x):
        return "-" if x is None else "%.2f s" % x
    print("%-34s %10s %10s %12s" % ("", "SIP", "HTTP", "recovered"))
    print("%-34s %10s %10s %12s" % ("first start (rows from folders)",
                                     f(first["sip"]), f(first["http"]), f(first["recovered"])))
    print("%-34s %10s %10s %12s" % ("restart, %d unfinished" % a.unfinished,
                                     f(again["sip"]), f(again["http"]), f(again["recovered"])))
    print("catalog after restart: %s" % res["rows_after_restart"])
    print(json.dumps(res))
    ok = again["sip"] is not None and again["sip"] < 5 and again["http"] < 5
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
