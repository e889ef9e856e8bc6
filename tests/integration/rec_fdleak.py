#!/usr/bin/env python3
"""tally-recorder's descriptors come back to their baseline after sessions
that end in odd ways, and a paused session still ends (issue 10).

Under SIPREC fuzzing the recorder's open descriptors grew from 16 to 1196 in
6 minutes. Every session holds a capture descriptor and two sockets per
accepted stream until it ends; a session that never ends holds them for
ever. This test runs ROUNDS rounds of sessions that end (or fail) in every
way we know, with short timeouts (--media-timeout=4 --inactive-timeout=3),
then counts /proc/PID/fd:

  descriptors_return   baseline (after a warm-up session and API calls) vs
                       after: a normal session with media and BYE; BYE while
                       RTP floods; INVITE answered then CANCELed and never
                       ACKed; INVITE never ACKed; re-INVITE to a=inactive then
                       nothing; an offer whose every m= line is refused (no
                       stream: nothing to time out on media); media then
                       silence without BYE; SIP over TCP whose connection is
                       dropped mid-session; INVITEs refused before (421, 400)
                       and after the session was made (500: a media port
                       taken by someone else); a download cut mid-way. When
                       every recording is complete or failed, no stream or
                       capture is open and nothing waits to be finalized,
                       the count must equal the baseline (the extra
                       descriptors are listed if not).
  paused_session_ends  a session paused by re-INVITE (a=inactive) is still
                       recording 1.5 s into a 3 s inactive-timeout and ends
                       complete, with its media, soon after the 3 s, logged
                       "inactive timeout"

The no-ACK sessions take 32 s (64*T1) to give up; they run while the rest
goes on. Ports are picked at run time; only the daemon started here is
stopped, by PID. Fails (never skips) when tally-recorder is missing.
"""

import os
import random
import re
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rectest as rt  # noqa: E402

ROUNDS = int(os.environ.get("TALLY_FDLEAK_ROUNDS", "2"))
MEDIA_TIMEOUT = 4
INACTIVE_TIMEOUT = 3
SRC_PORTS = [30000, 30002, 30004, 30006]


def fd_list(pid):
    out = {}
    d = "/proc/%d/fd" % pid
    for n in os.listdir(d):
        try:
            out[int(n)] = os.readlink(os.path.join(d, n))
        except OSError:
            pass
    return out


def rtp(seq, ssrc, pt=0):
    return struct.pack("!BBHII", 0x80, pt, seq & 0xffff, (seq * 160) & 0xffffffff,
                       ssrc) + bytes(160)


def send_media(ports, seconds, rate=50):
    """RTP at RATE packets/s per port (a phone's pace) for SECONDS."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ssrc = random.getrandbits(32)
    n = int(seconds * rate)
    for i in range(n):
        for k, p in enumerate(ports):
            if p:
                s.sendto(rtp(i, ssrc + k), (rt.LOCAL, p))
        time.sleep(1.0 / rate)
    s.close()


def flood(ports, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    end, i = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        for p in ports:
            if p:
                for off in (0, 1):
                    try:
                        s.sendto(rtp(i, 0x1000 + p), (rt.LOCAL, p + off))
                    except OSError:
                        pass
        i += 1
    s.close()


def ports_of(r):
    return [m["port"] for m in rt.answer_media(rt.sdp_of(r))]


class FdLeak:
    def __init__(self):
        self.tmp = rt.make_tmp("rec-fdleak")
        self.rec = None
        self.errors = []
        self.call_ids = []

    def recorders(self):
        return [self.rec]

    def start(self):
        if self.rec is None:
            self.rec = rt.Recorder(self.tmp, nports=400, log_level=6, extra=[
                "--media-timeout=%d" % MEDIA_TIMEOUT,
                "--inactive-timeout=%d" % INACTIVE_TIMEOUT]).start()
        return self.rec

    def invite(self, uac, ports=SRC_PORTS, sdp_kw=None, ack=True):
        ctype, body = rt.siprec_body(ports, sdp_kw=sdp_kw)
        self.call_ids.append(uac.call_id)
        if ack:
            return uac.invite(ctype, body)
        return uac.transaction("INVITE", ("Require: siprec",), body, ctype)

    # ---- the odd ends, each one session ----

    def s_normal(self, c):
        u = rt.SipUac(self.rec.sip_port)
        r = self.invite(u)
        c(r is not None and r["code"] == 200, "normal: INVITE %s" % (r and r["first"]))
        if r is not None and r["code"] == 200:
            send_media(ports_of(r), 0.5)
            rb = u.bye()
            c(rb is not None and rb["code"] == 200, "normal: BYE %s" % (rb and rb["first"]))
        u.close()

    def s_bye_in_flood(self, c):
        u = rt.SipUac(self.rec.sip_port)
        r = self.invite(u)
        if c(r is not None and r["code"] == 200, "flood: INVITE %s" % (r and r["first"])):
            t = threading.Thread(target=flood, args=(ports_of(r), 0.6))
            t.start()
            time.sleep(0.2)
            u.bye()
            t.join()
        u.close()

    def s_cancel_no_ack(self, c):
        u = rt.SipUac(self.rec.sip_port)
        r = self.invite(u, ack=False)
        if c(r is not None and r["code"] == 200, "cancel: INVITE %s" % (r and r["first"])):
            m = re.search(r"branch=([^;\s,]+)", r["hdr"].get("via", ""))
            cseq = int(r["cseq"].split()[0])
            to_tag = u.to_tag
            data = u._msg("CANCEL", cseq, m.group(1) if m else "z9hG4bKx", ruri=u.ruri)
            u.to_tag = to_tag
            u.sock.sendto(data, (u.rhost, u.rport))
            u._recv(1.0)
        u.close()

    def s_no_ack(self, c):
        u = rt.SipUac(self.rec.sip_port)
        r = self.invite(u, ack=False)
        c(r is not None and r["code"] == 200, "no-ack: INVITE %s" % (r and r["first"]))
        u.close()

    def s_inactive(self, c):
        u = rt.SipUac(self.rec.sip_port)
        r = self.invite(u)
        if c(r is not None and r["code"] == 200, "inactive: INVITE %s" % (r and r["first"])):
            send_media(ports_of(r), 0.3)
            r2 = self.invite(u, sdp_kw={"direction": "inactive", "version": 2})
            c(r2 is not None and r2["code"] == 200, "inactive: re-INVITE %s"
              % (r2 and r2["first"]))
        u.close()

    def s_all_refused(self, c):
        # every m= line refused (no codec we store): the session exists with
        # no stream, so no packet can ever be late on it
        u = rt.SipUac(self.rec.sip_port)
        ctype, body = rt.siprec_body(SRC_PORTS)
        body = re.sub(r"RTP/AVP (\d+)", "RTP/AVP 18", body)
        body = re.sub(r"a=rtpmap:\d+ [^\r]+", "a=rtpmap:18 G729/8000", body)
        body = re.sub(r"a=fmtp:[^\r]+\r\n", "", body)
        self.call_ids.append(u.call_id)
        r = u.invite(ctype, body)
        c(r is not None and r["code"] in (200, 488), "all-refused: INVITE %s"
          % (r and r["first"]))
        u.close()

    def s_silence(self, c):
        u = rt.SipUac(self.rec.sip_port)
        r = self.invite(u)
        if c(r is not None and r["code"] == 200, "silence: INVITE %s" % (r and r["first"])):
            send_media(ports_of(r), 0.3)
        u.close()

    def s_tcp_dropped(self, c):
        u = rt.SipUac(self.rec.sip_port)
        ctype, body = rt.siprec_body(SRC_PORTS)
        data = u._msg("INVITE", 1, "z9hG4bK%016x" % random.getrandbits(64),
                      ("Require: siprec",), body, ctype)
        data = data.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP", 1)
        self.call_ids.append(u.call_id)
        t = socket.create_connection((rt.LOCAL, self.rec.sip_port), timeout=5)
        t.sendall(data)
        got = b""
        end = time.monotonic() + 5
        while b"SIP/2.0 200" not in got and time.monotonic() < end:
            try:
                chunk = t.recv(65535)
            except socket.timeout:
                break
            if not chunk:
                break
            got += chunk
        c(b"SIP/2.0 200" in got, "tcp: no 200 to the INVITE: %r" % got[:80])
        t.close()           # gone without ACK or BYE
        u.close()

    def s_refused(self, c):
        u = rt.SipUac(self.rec.sip_port)
        # no Require: siprec and no metadata part (with one, +sip.src would
        # make it a SIPREC INVITE all the same: rec_tolerance.py)
        ctype, body = "application/sdp", rt.siprec_sdp(SRC_PORTS)
        r = u.transaction("INVITE", (), body, ctype)
        c(r is not None and r["code"] == 421, "no siprec: %s" % (r and r["first"]))
        u.close()
        u = rt.SipUac(self.rec.sip_port)
        r = u.transaction("INVITE", ("Require: siprec",), "v=0\r\nbroken\r\n",
                          "application/sdp")
        c(r is not None and r["code"] == 400, "bad SDP: %s" % (r and r["first"]))
        u.close()

    def s_port_taken(self, c):
        """Every free port of the recorder's range taken by us: the recorder
        probes a block before it hands it out (rxports.c) and finds none, so
        the INVITE gets 503 (no media ports) and nothing is left open; its
        status counts the blocks passed over (ports_busy)."""
        rec = self.rec
        held = []
        for p in range(rec.port_min, rec.port_max + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((rt.LOCAL, p))
                held.append(s)
            except OSError:
                s.close()
        try:
            u = rt.SipUac(rec.sip_port)
            r = self.invite(u, ack=False)
            c(r is not None and r["code"] == 503, "ports taken: INVITE %s, want 503"
              % (r and r["first"]))
            busy = (rec.api.status().get("daemon") or {}).get("ports_busy")
            c(busy is not None and busy >= 1,
              "ports taken: status daemon.ports_busy %s, want >= 1" % busy)
            u.close()
        finally:
            for s in held:
                s.close()

    def s_download_cut(self, c):
        rows = self.rec.api.recordings(state="complete")
        for row in rows[:1]:
            det = self.rec.api.recording(row["id"])
            files = det.get("files") or []
            if not files:
                continue
            s = socket.create_connection((rt.LOCAL, self.rec.http_port), timeout=5)
            s.sendall(("GET /api/v1/recordings/%s/files/%s HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer %s\r\n\r\n" % (
                           row["id"], files[0]["name"], self.rec.token)).encode())
            s.recv(100)
            s.close()

    # ---- the tests ----

    def settle(self, timeout=60.0):
        """Wait until nothing is open or pending: no session, no stream,
        no capture, no finalize job. Returns the last status."""
        end = time.monotonic() + timeout
        while True:
            st = self.rec.api.status()["daemon"]
            m = st["media"]
            if (st["sessions"] == 0 and st["finalize_pending"] == 0 and
                    m["streams"] == 0 and m["captures"] == 0):
                return st
            if time.monotonic() > end:
                raise AssertionError("not settled after %.0fs: %s" % (timeout, st))
            if not self.rec.alive():
                raise AssertionError("tally-recorder died")
            time.sleep(0.25)

    def descriptors_return(self, c):
        rec = self.start()
        # warm-up: the first session, finalize and API calls open what
        # stays open (catalog WAL, libav's state)
        self.s_normal(c)
        self.settle()
        self.s_download_cut(c)
        rec.api.recordings()
        time.sleep(0.5)
        base = fd_list(rec.pid)
        c.note("baseline: %d descriptors" % len(base))

        slow = []
        for _ in range(ROUNDS):
            for fn in (self.s_no_ack, self.s_cancel_no_ack):
                t = threading.Thread(target=fn, args=(c,))
                t.start()
                slow.append(t)
        peak = len(base)
        for _ in range(ROUNDS):
            for fn in (self.s_normal, self.s_bye_in_flood, self.s_inactive,
                       self.s_all_refused, self.s_silence, self.s_tcp_dropped,
                       self.s_refused, self.s_port_taken, self.s_download_cut):
                fn(c)
                peak = max(peak, len(fd_list(rec.pid)))
        for t in slow:
            t.join(60)
        peak = max(peak, len(fd_list(rec.pid)))
        st = self.settle(90)
        c.note("peak %d descriptors; %d sessions accepted, %d refused" % (
            peak, st["sip"]["accepted"], st["sip"]["rejected"]))
        end = time.monotonic() + 5
        while time.monotonic() < end:
            now = fd_list(rec.pid)
            if len(now) <= len(base):
                break
            time.sleep(0.25)
        extra = sorted(set(now.values()) - set(base.values()))
        c(len(now) <= len(base), "%d descriptors after every session ended, baseline %d; "
          "new: %s" % (len(now), len(base), extra[:20]))
        # every session that was made ended complete or failed, none stuck
        for cid in self.call_ids:
            for row in rec.api.by_call_id(cid):
                c(row.get("state") in ("complete", "failed"), "recording of %s is %r"
                  % (cid, row.get("state")))
        rc = rec.stop()
        c(rc == 0, "exit status %s on SIGTERM" % rc)
        self.rec = None

    def paused_session_ends(self, c):
        rec = self.start()
        u = rt.SipUac(rec.sip_port)
        r = self.invite(u)
        if not c(r is not None and r["code"] == 200, "INVITE %s" % (r and r["first"])):
            return
        send_media(ports_of(r), 1.0)
        r2 = self.invite(u, sdp_kw={"direction": "inactive", "version": 2})
        if not c(r2 is not None and r2["code"] == 200, "re-INVITE inactive %s"
                 % (r2 and r2["first"])):
            return
        t_pause = time.monotonic()
        time.sleep(INACTIVE_TIMEOUT / 2.0)
        rows = rec.api.by_call_id(u.call_id)
        c(rows and rows[0].get("state") == "recording",
          "paused session is %r %.1fs into a %ds inactive-timeout, want recording"
          % (rows and rows[0].get("state"), INACTIVE_TIMEOUT / 2.0, INACTIVE_TIMEOUT))
        det = rec.wait_final(u.call_id, timeout=INACTIVE_TIMEOUT + 30)
        took = time.monotonic() - t_pause
        c(det.get("state") == "complete", "paused session ended %r (%r)"
          % (det.get("state"), det.get("reason")))
        c(det.get("files"), "paused session finalized without files")
        c(took >= INACTIVE_TIMEOUT, "ended %.1fs after the pause, before the %ds timeout"
          % (took, INACTIVE_TIMEOUT))
        c(rec.log_lines(r"ends \(inactive timeout\)"), "no 'ends (inactive timeout)' in the log")
        # a BYE now finds no dialog
        rb = u.bye()
        c(rb is not None and rb["code"] == 481, "BYE after the timeout: %s, want 481"
          % (rb and rb["first"]))
        u.close()
        rc = rec.stop()
        c(rc == 0, "exit status %s on SIGTERM" % rc)
        self.rec = None


def main():
    t = FdLeak()
    tests = [("paused_session_ends", t.paused_session_ends),
             ("descriptors_return", t.descriptors_return)]
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
