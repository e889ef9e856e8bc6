#!/usr/bin/env python3
"""tally-recorder: BYE (and stream removal) while RTP floods the session.

Regression test for defect 2 of issue 10 (../shared/findings/2026-12-netfuzz.md):
the receive thread freed a stream in a command handled early in an epoll
round (the session's close, from its BYE) while the same round's events
array still pointed at the stream's sockets, and then read them
(heap-use-after-free in sock_read). The trigger is ordinary traffic:

  SIPREC INVITE, 200, ACK; RTP flooded to every offered port (RTP and RTCP)
  from a sender thread; BYE while the flood runs; repeat.

  bye_during_flood     SESSIONS sessions of the trigger, every one answered
                       200 to its INVITE and its BYE; one in three also
                       takes a re-INVITE that removes a stream (port 0)
                       mid-flood, the other command that frees a stream
  still_serving        afterwards the daemon is alive, answers SIP OPTIONS
                       and GET /api/v1/status, and its output has no
                       sanitizer report ("ERROR: AddressSanitizer",
                       "runtime error:", "LeakSanitizer")

The unfixed code crashed (ASan build) within the first 15 sessions in every
run tried; the default of 40 sessions is the margin. TALLY_BYEFLOOD_SESSIONS
overrides it. Ports are picked at run time; only the daemon started here is
stopped, by PID. Fails (never skips) when tally-recorder is missing.
"""

import os
import random
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rectest as rt  # noqa: E402

SESSIONS = int(os.environ.get("TALLY_BYEFLOOD_SESSIONS", "40"))
FLOOD_BEFORE_BYE = 0.15     # s of flood before the BYE goes out
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                   "AddressSanitizer:DEADLYSIGNAL")


def sanitizer_lines(text):
    return [ln for ln in text.splitlines() if any(m in ln for m in SANITIZER_MARKS)]


class Flood(threading.Thread):
    """Sends RTP (PCMU-sized, valid version 2) round-robin to every port in
    DSTS until stop(); several source sockets so every receive socket sees
    more than one peer."""

    def __init__(self, dsts):
        super().__init__(daemon=True)
        self.dsts = list(dsts)
        self.halt = threading.Event()
        self.sent = 0
        self.socks = []
        for _ in range(3):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((rt.LOCAL, 0))
            s.setblocking(False)
            self.socks.append(s)

    def run(self):
        seq, ssrc = random.getrandbits(16), random.getrandbits(32)
        payload = bytes(160)
        while not self.halt.is_set():
            for i, d in enumerate(self.dsts):
                pkt = struct.pack("!BBHII", 0x80, 0, seq & 0xffff, seq * 160 & 0xffffffff,
                                  ssrc) + payload
                try:
                    self.socks[i % len(self.socks)].sendto(pkt, d)
                    self.sent += 1
                except (BlockingIOError, ConnectionRefusedError):
                    pass
            seq += 1

    def stop(self):
        self.halt.set()
        self.join(5)
        for s in self.socks:
            s.close()


class ByeFlood:
    def __init__(self):
        self.tmp = rt.make_tmp("rec-byeflood")
        self.rec = None

    def recorders(self):
        return [self.rec]

    def bye_during_flood(self, c):
        # media-timeout off: only the BYE (or the re-INVITE) ends a session
        self.rec = rec = rt.Recorder(self.tmp, nports=400, log_level=6,
                                     extra=["--media-timeout=0"]).start()
        sent = 0
        src_ports = [30000, 30002, 30004, 30006]
        for n in range(SESSIONS):
            uac = rt.SipUac(rec.sip_port)
            try:
                ctype, body = rt.siprec_body(src_ports)
                r = uac.invite(ctype, body)
                if r is None or r["code"] != 200:
                    c(False, "session %d: INVITE: %s" % (n, r["first"] if r else "no answer"))
                    break
                ports = [m["port"] for m in rt.answer_media(rt.sdp_of(r))]
                dsts = [(rt.LOCAL, p + k) for p in ports if p for k in (0, 1)]
                fl = Flood(dsts)
                fl.start()
                try:
                    time.sleep(FLOOD_BEFORE_BYE)
                    if n % 3 == 2:
                        # the other command that frees a stream: remove the
                        # last m= line (port 0) while its packets flow
                        ctype2, body2 = rt.siprec_body(src_ports[:3] + [0],
                                                       sdp_kw={"version": 2})
                        r2 = uac.invite(ctype2, body2)
                        c(r2 is not None and r2["code"] == 200,
                          "session %d: re-INVITE removing a stream: %s"
                          % (n, r2["first"] if r2 else "no answer"))
                        time.sleep(0.05)
                    rb = uac.bye()
                finally:
                    fl.stop()
                sent += fl.sent
                if not rec.alive():
                    c(False, "tally-recorder died during session %d (rc %s)"
                      % (n, rec.proc.p.returncode))
                    break
                c(rb is not None and rb["code"] == 200, "session %d: BYE: %s"
                  % (n, rb["first"] if rb else "no answer"))
            finally:
                uac.close()
        c.note("%d sessions, %d RTP packets flooded" % (SESSIONS, sent))
        bad = sanitizer_lines(rec.log_text())
        c(not bad, "sanitizer report in the daemon's output: %s" % bad[:3])

    def still_serving(self, c):
        rec = self.rec
        if rec is None or not rec.alive():
            raise AssertionError("tally-recorder is not running")
        c(rt.options_ping(rec.sip_port, timeout=2.0) is not None, "no answer to SIP OPTIONS")
        st = rec.api.status()
        c(isinstance(st, dict), "GET /api/v1/status: %r" % (st,))
        # every session ended: no stream is left in the receive thread
        end = time.monotonic() + 10
        while time.monotonic() < end:
            media = rec.api.status()["daemon"]["media"]
            if media["streams"] == 0 and media["captures"] == 0:
                break
            time.sleep(0.2)
        c(media["streams"] == 0 and media["captures"] == 0,
          "after every BYE the receive thread still holds %d streams, %d captures"
          % (media["streams"], media["captures"]))
        rc = rec.stop()
        c(rc == 0, "tally-recorder exited with %s on SIGTERM" % rc)
        bad = sanitizer_lines(rec.log_text())
        c(not bad, "sanitizer report in the daemon's output: %s" % bad[:3])


def main():
    t = ByeFlood()
    tests = [("bye_during_flood", t.bye_during_flood), ("still_serving", t.still_serving)]
    status = 1
    try:
        status = rt.run_subtests(tests, t.tmp, recorders=t.recorders, cleanup=False)
    finally:
        if t.rec is not None and t.rec.alive():
            t.rec.stop()
        rt.cleanup_tmp(t.tmp, status)
    return status


if __name__ == "__main__":
    sys.exit(main())
