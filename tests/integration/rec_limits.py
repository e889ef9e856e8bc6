#!/usr/bin/env python3
"""tally-recorder limits and the media side's manners, with a python SRC.

  session_limit     --max-sessions=1: a second INVITE gets 503 with a
                    reason naming the limit and a Retry-After; after the
                    first session's BYE a new one is accepted
  disk_floor        --min-free-mb above the disk's free space: 503 with a
                    reason naming the disk, and no recording row
  keyframe_request  the first video packet of a stream makes the recorder
                    send RTCP PLI and FIR to the sender (RTP port + 1, no
                    RTCP seen yet), naming the sender's SSRC; a sequence gap
                    on video asks again; audio never does
  update_pause      an in-dialog UPDATE with a=inactive is answered 200 with
                    a=inactive on the same port; an UPDATE back to sendonly
                    with recvonly
Fails (never skips) when tally-recorder is missing.
"""

import os
import re
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rectest as rt  # noqa: E402

LOCAL = "127.0.0.1"


def rtp(pt, seq, ts, ssrc, payload, marker=False):
    return struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq & 0xffff,
                       ts & 0xffffffff, ssrc) + payload


def feedback(data):
    """(PLI target SSRCs, FIR target SSRCs) in a compound RTCP packet."""
    pli, fir, i = [], [], 0
    while i + 8 <= len(data):
        v, pt = data[i] >> 6, data[i + 1]
        ln = (struct.unpack("!H", data[i + 2:i + 4])[0] + 1) * 4
        if v != 2 or i + ln > len(data):
            break
        fmt = data[i] & 0x1f
        if pt == 206 and fmt == 1 and ln >= 12:
            pli.append(struct.unpack("!I", data[i + 8:i + 12])[0])
        if pt == 206 and fmt == 4 and ln >= 20:
            fir.append(struct.unpack("!I", data[i + 12:i + 16])[0])
        i += ln
    return pli, fir


class Limits:
    def __init__(self):
        self.tmp = rt.make_tmp("rec-limits")
        self.recs = []

    def recorders(self):
        return self.recs

    def start(self, name, **kw):
        rec = rt.Recorder(self.tmp, name=name, storage=os.path.join(self.tmp, name),
                          **kw).start()
        self.recs.append(rec)
        return rec

    def invite(self, rec, ports=None):
        uac = rt.SipUac(rec.sip_port)
        ctype, body = rt.siprec_body(ports or [30000, 30002, 30004, 30006])
        return uac, uac.invite(ctype, body)

    def session_limit(self, c):
        rec = self.start("limit", max_sessions=1)
        a, r = self.invite(rec)
        if not c(r is not None and r["code"] == 200, "first INVITE: %s" % (r and r["first"])):
            return
        b, r2 = self.invite(rec)
        c(r2 is not None and r2["code"] == 503, "second INVITE at max-sessions=1: %s, want 503"
          % (r2 and r2["first"]))
        if r2 is not None and r2["code"] == 503:
            c("limit" in r2["first"].lower(), "503 reason %r does not name the limit" % r2["first"])
            c(r2["hdr"].get("retry-after"), "503 without Retry-After")
        c(not rec.api.by_call_id(b.call_id), "the refused INVITE left a recording row")
        r = a.bye()
        c(r is not None and r["code"] == 200, "BYE: %s" % (r and r["first"]))
        d, r3 = self.invite(rec)
        c(r3 is not None and r3["code"] == 200, "INVITE after the BYE: %s, want 200"
          % (r3 and r3["first"]))
        if r3 is not None and r3["code"] == 200:
            d.bye()
        for u in (a, b, d):
            u.close()

    def disk_floor(self, c):
        st = os.statvfs(self.tmp)
        free_mb = st.f_bavail * st.f_frsize // (1024 * 1024)
        rec = self.start("disk", min_free_mb=free_mb + 1024 * 1024)
        u, r = self.invite(rec)
        c(r is not None and r["code"] == 503, "INVITE below the disk floor: %s, want 503"
          % (r and r["first"]))
        if r is not None:
            c("disk" in r["first"].lower(), "503 reason %r does not name the disk" % r["first"])
        c(not rec.api.by_call_id(u.call_id), "the refused INVITE left a recording row")
        u.close()

    def keyframe_request(self, c):
        rec = self.start("pli")
        # the sender's sockets: RTP and RTCP (port + 1) for audio and video
        socks = []
        base = rt.free_port_block(4)[0]
        for i in range(4):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((LOCAL, base + i))
            s.settimeout(0.05)
            socks.append(s)
        a_rtp, a_rtcp, v_rtp, v_rtcp = socks
        u, r = self.invite(rec, [base, base + 2, 40000, 40002])
        if not c(r is not None and r["code"] == 200, "INVITE: %s" % (r and r["first"])):
            return
        media = rt.answer_media(rt.sdp_of(r))
        ap, vp = media[0]["port"], media[1]["port"]
        vssrc, assrc = 0x1234abcd, 0x5678

        def drain(sock, t):
            got, end = [], time.monotonic() + t
            while time.monotonic() < end:
                try:
                    got.append(sock.recv(2048))
                except socket.timeout:
                    pass
            return got

        for i in range(5):
            a_rtp.sendto(rtp(0, i, i * 160, assrc, bytes(160)), (LOCAL, ap))
        v_rtp.sendto(rtp(96, 100, 0, vssrc, b"\x65" + bytes(50), True), (LOCAL, vp))
        fb = drain(v_rtcp, 1.0)
        plis = [x for d in fb for x in feedback(d)[0]]
        firs = [x for d in fb for x in feedback(d)[1]]
        c(vssrc in plis, "no PLI for SSRC %08x at the video sender's RTCP port after its "
          "first packet (got %d datagrams)" % (vssrc, len(fb)))
        c(vssrc in firs, "no FIR for SSRC %08x after the first video packet" % vssrc)
        c(not drain(a_rtcp, 0.2), "the audio sender got RTCP feedback")
        # a gap: seq 101..109 never sent; 1.1 s later (rate limit 1/s)
        time.sleep(1.1)
        v_rtp.sendto(rtp(96, 110, 3600, vssrc, b"\x41" + bytes(50), True), (LOCAL, vp))
        fb2 = drain(v_rtcp, 1.0)
        c(any(vssrc in feedback(d)[0] for d in fb2),
          "no PLI after a sequence gap on the video stream")
        st = rec.api.status()
        c(st["daemon"]["media"]["pli_sent"] >= 2, "status pli_sent %s, want >= 2"
          % st["daemon"]["media"]["pli_sent"])
        u.bye()
        u.close()
        for s in socks:
            s.close()

    def update_pause(self, c):
        rec = self.start("update")
        u, r = self.invite(rec)
        if not c(r is not None and r["code"] == 200, "INVITE: %s" % (r and r["first"])):
            return
        ports = [m["port"] for m in rt.answer_media(rt.sdp_of(r))]
        for direction, want in (("inactive", "inactive"), ("sendonly", "recvonly")):
            ctype, body = rt.siprec_body([30000, 30002, 30004, 30006],
                                         sdp_kw={"direction": direction, "version": 2})
            r2 = u.transaction("UPDATE", body=body, ctype=ctype)
            if not c(r2 is not None and r2["code"] == 200, "UPDATE %s: %s"
                     % (direction, r2 and r2["first"])):
                return
            media = rt.answer_media(rt.sdp_of(r2))
            c([m["port"] for m in media] == ports, "UPDATE %s moved the ports: %s -> %s"
              % (direction, ports, [m["port"] for m in media]))
            dirs = [m.get("direction") for m in media]
            c(all(d == want for d in dirs), "UPDATE %s answered %s, want all %s"
              % (direction, dirs, want))
        r = u.bye()
        c(r is not None and r["code"] == 200, "BYE: %s" % (r and r["first"]))
        u.close()


def main():
    s = Limits()
    tests = [("session_limit", s.session_limit), ("disk_floor", s.disk_floor),
             ("keyframe_request", s.keyframe_request), ("update_pause", s.update_pause)]
    status = 1
    try:
        status = rt.run_subtests(tests, s.tmp, recorders=s.recorders, cleanup=False)
    finally:
        for r in s.recs:
            if r.alive():
                rc = r.stop()
                if rc != 0:
                    print("FAIL shutdown: %s exited with %s on SIGTERM" % (r.name, rc),
                          flush=True)
                    status = 1
        rt.cleanup_tmp(s.tmp, status)
    return status


if __name__ == "__main__":
    sys.exit(main())
