#!/usr/bin/env python3
"""Regression tests for the tally-sip defects found by network fuzzing
(issue 10, ../shared/findings/2026-12-netfuzz.md), each driving the real
tally-sip ($TALLY_SIP) with the finding's trigger.

Peers are played here with raw sockets: a caller and a callee on UDP, a
stand-in media server answering ng (ping, offer and answer echo the SDP,
delete) that can hold its replies, and a WebSocket client of the API.

Cases (one tally-sip each; every case asserts no sanitizer report in the
daemon's log and the daemon still answering OPTIONS and the API afterwards):
  late_answer       defect 3: INFO (then re-INVITE, then UPDATE) forwarded,
                    the callee answers 100 only, the caller hangs up, then
                    the callee's 200 arrives; the caller's pending request
                    got 487 when the call ended
  ng_after_end      a re-INVITE whose ng offer is still unanswered when the
                    caller hangs up; the media server's reply comes after
  shutdown          defect 4: SIGTERM with a ringing call and with an
                    answered call, an event client connected: exit status
                    0, call.ended (cause shutdown) delivered, no report
  no_user           defect 5: route '* sip:${user}@...' and INVITEs to
                    sip:HOST, sip:[::ffff:127.0.0.1]: 484 (no user to put
                    in the target); tel:+1 is routed by its number
  ws_frames         defect 6: masked frames with 64-bit lengths 2^64-1 ..
                    2^64-4 and 2^63, and a 70 KiB frame, on /api/v1/events:
                    the client gets close 1009 (or 1002) and is cut off;
                    a well-formed ping still gets its pong
  bad_status        status codes outside 100-699 (1, 70, 700, 999, 28564,
                    65535, and 65736 which a 16-bit parse reads as 200)
                    from the callee: the caller gets 502, call.ended says
                    why; an INFO answered 700 gets 502

python3 stdlib only; ports are picked at run time; every process is started
here and stopped by its pid.
"""

import base64
import os
import select
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import json

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tallytest as tt          # noqa: E402
import siptest as st            # noqa: E402
import api_events as ae         # noqa: E402

LO = "127.0.0.1"
TOKEN = ae.TOKEN
SAN_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
               "ERROR: UndefinedBehaviorSanitizer")
SDP_A = ("v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
         "t=0 0\r\nm=audio 40000 RTP/AVP 0\r\n")
SDP_B = ("v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
         "t=0 0\r\nm=audio 40002 RTP/AVP 0\r\n")


class Fail(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


# ------------------------------------------------------------ media server

class FakeNg:
    """ng on UDP: ping -> pong, offer/answer -> ok with the SDP unchanged,
    delete -> ok. hold() parks offer/answer requests (retransmissions of a
    parked cookie are ignored) until release()."""

    def __init__(self):
        self.sock = tt.udp_socket(0)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.holding = False
        self.seen = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _reply(self, cookie, src, d):
        self.sock.sendto(cookie + b" " + tt.bencode(d), src)

    def _run(self):
        while not self.stop_ev.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            try:
                data, src = self.sock.recvfrom(65536)
            except OSError:
                return
            cookie, _, body = data.partition(b" ")
            try:
                req = tt.bdecode(body)
            except Exception:
                continue
            cmd = req.get("command", "")
            with self.lock:
                self.seen.append(cmd)
                if cmd in ("offer", "answer"):
                    if self.holding:
                        if all(c != cookie for c, _, _ in self.held):
                            self.held.append((cookie, src, req))
                        continue
                    self._reply(cookie, src, {"result": "ok", "sdp": req["sdp"]})
                elif cmd == "ping":
                    self._reply(cookie, src, {"result": "pong"})
                else:
                    self._reply(cookie, src, {"result": "ok"})

    def hold(self):
        with self.lock:
            self.holding = True

    def release(self):
        with self.lock:
            self.holding = False
            for cookie, src, req in self.held:
                self._reply(cookie, src, {"result": "ok", "sdp": req["sdp"]})
            n = len(self.held)
            self.held = []
        return n

    def close(self):
        self.stop_ev.set()
        self.th.join(2)
        self.sock.close()


# ------------------------------------------------------------ tally-sip

class Sipd:
    def __init__(self, tmp, name, ng_port, route_user="x.", extra=()):
        self.tmp = tmp
        self.name = name
        self.port = tt.free_port()
        self.uas_port = tt.free_port()
        self.api_port = tt.free_port()
        self.argv = [st.tally_sip_binary(), "--config-file=none", "--foreground",
                     "--log-level=7", "--sip-listen=%s:%d" % (LO, self.port),
                     "--media-servers=%s:%d" % (LO, ng_port), "--media-ping-ms=500",
                     "--api-listen=%s:%d" % (LO, self.api_port),
                     "--api-token=%s" % TOKEN, "--rate-limit=0",
                     "--route=%s sip:${user}@%s:%d" % (route_user, LO, self.uas_port)]
        self.argv += list(extra)
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        self.logpath = os.path.join(tmp, name + ".log")
        self.logf = open(self.logpath, "ab")
        print("# %s: %s" % (name, " ".join(self.argv)), flush=True)
        import subprocess
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf, env=env,
                                     cwd=tmp)
        end = time.monotonic() + 15
        while time.monotonic() < end:
            check(self.proc.poll() is None, "%s exited at start\n%s" % (name, self.tail()))
            if st.options_ping(self.port, timeout=0.3) is not None and self.api_ok():
                break
            time.sleep(0.1)
        else:
            raise Fail("%s not ready\n%s" % (name, self.tail()))
        # the media server is up once pinged (the first call needs it)
        time.sleep(0.2)

    def api_ok(self):
        try:
            status, _, body = ae.api_request(self.api_port, "/api/v1/health")
        except (OSError, ValueError):
            return False
        return status == 200 and isinstance(body, dict) and body.get("status") == "ok"

    def health(self):
        return ae.api_request(self.api_port, "/api/v1/health")[2]

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, n=40):
        return "\n".join("  | " + ln for ln in self.log().splitlines()[-n:])

    def sanitizer_report(self):
        text = self.log()
        for m in SAN_MARKERS:
            i = text.find(m)
            if i >= 0:
                return text[max(0, i - 200):i + 3000]
        return None

    def check_serving(self):
        check(self.proc.poll() is None, "tally-sip died (rc %s)\n%s" %
              (self.proc.returncode, self.sanitizer_report() or self.tail()))
        check(st.options_ping(self.port, timeout=1.0) is not None,
              "tally-sip does not answer OPTIONS\n" + self.tail())
        check(self.api_ok(), "tally-sip's API does not answer /health")
        rep = self.sanitizer_report()
        check(rep is None, "sanitizer report:\n%s" % rep)

    def stop(self, timeout=15):
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except Exception:
                self.proc.kill()
                rc = self.proc.wait(5)
                rc = "killed after %ds" % timeout if rc is not None else rc
        self.logf.close()
        return rc


# ------------------------------------------------------------ SIP peers

class Peer:
    """One UDP SIP endpoint; keeps what it received but did not consume."""

    def __init__(self, port=0):
        self.sock = tt.udp_socket(port)
        self.port = self.sock.getsockname()[1]
        self.backlog = []
        self.n = 0

    def send(self, text, dst):
        self.sock.sendto(text.encode(), dst)

    def branch(self):
        self.n += 1
        return "z9hG4bK-%s-%d" % (os.urandom(5).hex(), self.n)

    def wait(self, pred, timeout=5.0, what="a message"):
        for i, (m, src) in enumerate(self.backlog):
            if pred(m):
                del self.backlog[i]
                return m, src
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise Fail("peer %d: timed out waiting for %s; have %s" % (
                    self.port, what, [m["first"] for m, _ in self.backlog]))
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                continue
            data, src = self.sock.recvfrom(65536)
            m = st.sip_parse(data)
            if m is None:
                continue
            m["raw"] = data.decode("utf-8", "replace")
            if pred(m):
                return m, src
            self.backlog.append((m, src))

    def wait_request(self, method, timeout=5.0):
        return self.wait(lambda m: m["method"] == method, timeout, method)

    def wait_response(self, method, code=None, final=True, timeout=5.0):
        def pred(m):
            if m["code"] is None or not m["hdr"].get("cseq", "").endswith(method):
                return False
            if code is not None:
                return m["code"] == code
            return m["code"] >= 200 if final else True
        return self.wait(pred, timeout, "%s response %s" % (method, code or ""))[0]

    def reply(self, req, src, code, reason, to_tag=None, body="", extra=""):
        out = ["SIP/2.0 %d %s" % (code, reason)]
        for k, v in req["hdrs"]:
            if k == "via":
                out.append("Via: " + v)
        to = req["hdr"]["to"]
        if to_tag and ";tag=" not in to:
            to += ";tag=" + to_tag
        out += ["From: " + req["hdr"]["from"], "To: " + to,
                "Call-ID: " + req["hdr"]["call-id"], "CSeq: " + req["hdr"]["cseq"],
                "Contact: <sip:peer@%s:%d>" % (LO, self.port)]
        if extra:
            out.append(extra.rstrip("\r\n"))
        if body:
            out.append("Content-Type: application/sdp")
        out.append("Content-Length: %d" % len(body.encode()))
        self.send("\r\n".join(out) + "\r\n\r\n" + body, src)

    def close(self):
        self.sock.close()


def tag_of(v):
    for p in v.split(";")[1:]:
        k, _, val = p.strip().partition("=")
        if k.lower() == "tag":
            return val
    return ""


def contact_uri(v):
    v = v.strip()
    if "<" in v:
        return v[v.index("<") + 1:v.index(">")]
    return v.split(";")[0]


class Call:
    """A caller (A) and a callee (B) through tally-sip, A's dialog state."""

    def __init__(self, sipd, a, b, ruri=None, sdp=SDP_A):
        self.s = sipd
        self.a, self.b = a, b
        self.dst = (LO, sipd.port)
        self.callid = "rg-" + os.urandom(6).hex()
        self.ftag = "a" + os.urandom(4).hex()
        self.ttag = None
        self.cseq = 1
        self.ruri = ruri or "sip:1000@%s:%d" % (LO, sipd.port)
        self.remote = "sip:tally@%s:%d" % (LO, sipd.port)
        self.inv_sdp = sdp
        self.binv = None         # the INVITE B received, and where from
        self.bsrc = None

    def request(self, method, body="", cseq=None, branch=None, uri=None, ctype="application/sdp"):
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        lines = ["%s %s SIP/2.0" % (method, uri or (self.remote if self.ttag else self.ruri)),
                 "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (LO, self.a.port, branch or self.a.branch()),
                 "Max-Forwards: 70",
                 "From: <sip:alice@%s>;tag=%s" % (LO, self.ftag),
                 "To: <%s>%s" % (self.ruri, ";tag=" + self.ttag if self.ttag else ""),
                 "Call-ID: " + self.callid,
                 "CSeq: %d %s" % (cseq, method),
                 "Contact: <sip:alice@%s:%d>" % (LO, self.a.port)]
        if body:
            lines.append("Content-Type: " + ctype)
        lines.append("Content-Length: %d" % len(body.encode()))
        self.a.send("\r\n".join(lines) + "\r\n\r\n" + body, self.dst)
        return cseq

    def invite(self):
        self.request("INVITE", self.inv_sdp, cseq=1)

    def b_gets_invite(self, timeout=5.0):
        self.binv, self.bsrc = self.b.wait_request("INVITE", timeout)
        return self.binv

    def establish(self):
        self.invite()
        self.b_gets_invite()
        self.b.reply(self.binv, self.bsrc, 180, "Ringing", to_tag="btag")
        self.b.reply(self.binv, self.bsrc, 200, "OK", to_tag="btag", body=SDP_B)
        self.b.wait_request("ACK")
        ok = self.a.wait_response("INVITE", 200)
        self.ack(ok)

    def ack(self, ok):
        self.ttag = tag_of(ok["hdr"]["to"])
        if "contact" in ok["hdr"]:
            self.remote = contact_uri(ok["hdr"]["contact"])
        self.request("ACK", cseq=1)

    def bye(self):
        self.request("BYE")


def bye_callee(call):
    """B gets the BYE tally-sip sends when the call ends: 200 it."""
    bye, src = call.b.wait_request("BYE")
    call.b.reply(bye, src, 200, "OK")


# ------------------------------------------------------------ the cases

def case_late_answer(tmp, ng):
    s = Sipd(tmp, "late_answer", ng.port)
    a, b = Peer(), Peer(s.uas_port)
    try:
        for method, body, ctype in (("INFO", "Signal=1\r\nDuration=100\r\n", "application/dtmf-relay"),
                                    ("INVITE", SDP_A.replace("1 1 IN", "1 2 IN"), "application/sdp"),
                                    ("UPDATE", SDP_A.replace("1 1 IN", "1 3 IN"), "application/sdp")):
            call = Call(s, a, b)
            call.establish()
            cseq = call.request(method, body, ctype=ctype)
            req, src = b.wait_request(method)
            b.reply(req, src, 100, "Trying")
            time.sleep(0.2)
            call.bye()
            a.wait_response("BYE", 200)
            bye_callee(call)
            # the caller's pending request is answered when the call ends
            r = a.wait_response(method)
            # the callee's late answer
            b.reply(req, src, 200, "OK", body=SDP_B if method != "INFO" else "")
            time.sleep(0.5)
            s.check_serving()
            check(r["code"] == 487, "%s pending at BYE answered %s, want 487" % (method, r["first"]))
            check(r["hdr"]["cseq"].startswith(str(cseq)), "487 to the wrong request")
            print("#   %s: late 200 after BYE: ok" % method, flush=True)
        # and at shutdown (sip_close) with a forwarded INFO still pending
        call = Call(s, a, b)
        call.establish()
        call.request("INFO", "x", ctype="text/plain")
        req, src = b.wait_request("INFO")
        b.reply(req, src, 100, "Trying")
        time.sleep(0.2)
    finally:
        rc = s.stop()
        a.close()
        b.close()
    check(rc == 0, "exit status %s at SIGTERM with a pending INFO\n%s" % (rc, s.tail()))
    rep = s.sanitizer_report()
    check(rep is None, "sanitizer report:\n%s" % rep)


def case_ng_after_end(tmp, ng):
    s = Sipd(tmp, "ng_after_end", ng.port)
    a, b = Peer(), Peer(s.uas_port)
    try:
        call = Call(s, a, b)
        call.establish()
        ng.hold()
        call.request("INVITE", SDP_A.replace("1 1 IN", "1 2 IN"))
        a.wait_response("INVITE", 100, final=False)
        time.sleep(0.3)            # the ng offer is out, unanswered
        call.bye()
        a.wait_response("BYE", 200)
        bye_callee(call)
        r = a.wait_response("INVITE")
        check(ng.release() >= 1, "the media server never saw the re-INVITE's offer")
        time.sleep(0.5)
        s.check_serving()
        check(r["code"] == 487, "re-INVITE pending at BYE answered %s" % r["first"])
        # the same with the initial INVITE's offer unanswered: caller CANCELs
        ng.hold()
        call = Call(s, a, b)
        inv_branch = a.branch()
        call.request("INVITE", SDP_A, cseq=1, branch=inv_branch)
        a.wait_response("INVITE", 100, final=False)
        time.sleep(0.3)
        call.request("CANCEL", cseq=1, branch=inv_branch)
        a.wait_response("CANCEL", 200)
        r = a.wait_response("INVITE")
        check(r["code"] == 487, "cancelled INVITE answered %s" % r["first"])
        call.request("ACK", cseq=1, branch=inv_branch)
        ng.release()
        time.sleep(0.5)
        s.check_serving()
    finally:
        ng.release()
        rc = s.stop()
        a.close()
        b.close()
    check(rc == 0, "exit status %s\n%s" % (rc, s.tail()))
    check(s.sanitizer_report() is None, "sanitizer report:\n%s" % s.sanitizer_report())


def events_until(ws, pred, timeout):
    got = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            t = ws.recv(max(0.05, end - time.monotonic()))
        except (TimeoutError, EOFError, OSError):
            break
        if t is None:
            break
        ev = json.loads(t)
        got.append(ev)
        if pred(ev):
            return got, True
    return got, False


def case_shutdown(tmp, ng):
    for answered in (False, True):
        name = "shutdown_%s" % ("answered" if answered else "ringing")
        s = Sipd(tmp, name, ng.port)
        a, b = Peer(), Peer(s.uas_port)
        ws = ae.WsClient(s.api_port, "/api/v1/events", TOKEN)
        try:
            call = Call(s, a, b)
            if answered:
                call.establish()
            else:
                call.invite()
                call.b_gets_invite()
                b.reply(call.binv, call.bsrc, 180, "Ringing", to_tag="btag")
                a.wait_response("INVITE", 180, final=False)
            time.sleep(0.2)
            rc = s.stop()
            got, ended = events_until(ws, lambda e: e.get("event") == "call.ended", 3)
        finally:
            ws.close()
            a.close()
            b.close()
        check(rc == 0, "%s: exit status %s at SIGTERM\n%s" % (name, rc, s.sanitizer_report() or s.tail()))
        check(s.sanitizer_report() is None, "sanitizer report:\n%s" % s.sanitizer_report())
        check(ended, "%s: no call.ended before the event stream closed (got %s)" %
              (name, [e.get("event") for e in got]))
        cause = got[-1]["call"].get("cause")
        check(cause == "shutdown", "%s: call.ended cause %r" % (name, cause))
        print("#   %s: exit 0, call.ended(shutdown) delivered" % name, flush=True)


def case_no_user(tmp, ng):
    s = Sipd(tmp, "no_user", ng.port, route_user="*")
    a, b = Peer(), Peer(s.uas_port)
    try:
        for ruri, want in (("sip:%s:%d" % (LO, s.port), 484),
                           ("sip:[::ffff:127.0.0.1]:%d" % s.port, 484),
                           ("sip:%s" % LO, 484),
                           ("tel:+1", 486)):
            call = Call(s, a, b, ruri=ruri)
            call.invite()
            if ruri.startswith("tel:"):
                # a tel URI is routed by its number: B gets sip:+1@...
                inv = call.b_gets_invite()
                check(inv["first"].startswith("INVITE sip:+1@"), "tel:+1 routed as %r" % inv["first"])
                b.reply(call.binv, call.bsrc, 486, "Busy Here", to_tag="btag")
            r = a.wait_response("INVITE")
            check(r["code"] == want, "INVITE %s answered %s, want %d" % (ruri, r["first"], want))
            if r["code"] >= 300:
                call.request("ACK", cseq=1)
            print("#   INVITE %s -> %s" % (ruri, r["first"]), flush=True)
        s.check_serving()
        # a call with a user still goes through
        call = Call(s, a, b)
        call.establish()
        call.bye()
        a.wait_response("BYE", 200)
        bye_callee(call)
        s.check_serving()
    finally:
        rc = s.stop()
        a.close()
        b.close()
    check(rc == 0, "exit status %s\n%s" % (rc, s.tail()))


def ws_raw_frame(ws, hdr_len_bytes, extra=b"ABCDEFGH"):
    """Send a masked binary frame header with the given length field and a
    few payload bytes; return (close code or None, closed)."""
    ws.sock.sendall(bytes([0x82]) + hdr_len_bytes + os.urandom(4) + extra)
    return read_close(ws)


def read_close(ws):
    """Read server frames until the connection ends: (close code, closed)."""
    code, closed = None, False
    end = time.monotonic() + 3
    try:
        while time.monotonic() < end:
            ws._need(2, end)
            b0, b1 = ws.buf[0], ws.buf[1]
            n = b1 & 0x7F
            hl = 2
            if n == 126:
                ws._need(4, end)
                n, hl = struct.unpack("!H", ws.buf[2:4])[0], 4
            ws._need(hl + n, end)
            payload, ws.buf = ws.buf[hl:hl + n], ws.buf[hl + n:]
            if b0 & 0x0F == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 0
    except (EOFError, ConnectionResetError, BrokenPipeError):
        closed = True
    except TimeoutError:
        pass
    return code, closed


def case_ws_frames(tmp, ng):
    s = Sipd(tmp, "ws_frames", ng.port)
    try:
        for name, lenf, want in (
                ("2^64-1", bytes([0x80 | 127]) + struct.pack("!Q", 2**64 - 1), (1009, 1002)),
                ("2^64-4", bytes([0x80 | 127]) + struct.pack("!Q", 2**64 - 4), (1009, 1002)),
                ("2^64-2", bytes([0x80 | 127]) + struct.pack("!Q", 2**64 - 2), (1009, 1002)),
                ("2^63", bytes([0x80 | 127]) + struct.pack("!Q", 2**63), (1009, 1002)),
                ("70 KiB", bytes([0x80 | 127]) + struct.pack("!Q", 70 * 1024), (1009,))):
            ws = ae.WsClient(s.api_port, "/api/v1/events", TOKEN)
            code, closed = ws_raw_frame(ws, lenf)
            ws.sock.close()
            check(closed and code in want, "frame length %s: close code %s, closed %s (want %s)"
                  % (name, code, closed, want))
            print("#   frame length %s: close %s, connection dropped" % (name, code), flush=True)
            s.check_serving()
        # the 70 KiB frame, sent whole in pieces, still refused
        ws = ae.WsClient(s.api_port, "/api/v1/events", TOKEN)
        try:
            ws._send(0x2, b"z" * (70 * 1024))
        except OSError:
            pass
        code, closed = read_close(ws)
        ws.sock.close()
        # the server closes with the rest of the frame unread: the kernel
        # may reset the connection before the close frame is read here
        check(closed and code in (1009, None), "70 KiB frame sent whole: close %s closed %s"
              % (code, closed))
        # a well-formed client still works: ping -> pong, frame under the cap
        ws = ae.WsClient(s.api_port, "/api/v1/events", TOKEN)
        ws._send(0x1, b"x" * 1000)
        ws._send(0x9, b"hello")
        end = time.monotonic() + 3
        ws._need(2, end)
        check(ws.buf[0] & 0x0F == 0xA and ws.buf[2:7] == b"hello", "no pong: %r" % ws.buf[:16])
        ws.close()
        h = s.health()
        refused = h.get("counters", {}).get("event_frames_refused")
        check(refused == 6, "event_frames_refused %r, want 6" % refused)
        s.check_serving()
    finally:
        rc = s.stop()
    check(rc == 0, "exit status %s\n%s" % (rc, s.tail()))


def case_bad_status(tmp, ng):
    s = Sipd(tmp, "bad_status", ng.port)
    a, b = Peer(), Peer(s.uas_port)
    ws = ae.WsClient(s.api_port, "/api/v1/events", TOKEN)
    try:
        for code in (1, 70, 700, 999, 28564, 65535, 65736):
            call = Call(s, a, b)
            call.invite()
            call.b_gets_invite()
            b.reply(call.binv, call.bsrc, code, "Weird", to_tag="btag")
            r = a.wait_response("INVITE")
            check(r["code"] == 502, "callee's %d relayed as %s, want 502" % (code, r["first"]))
            call.request("ACK", cseq=1)
            got, ended = events_until(ws, lambda e: e.get("event") == "call.ended", 3)
            check(ended, "no call.ended for status %d" % code)
            cause = got[-1]["call"].get("cause") or ""
            check("invalid status" in cause and str(code) in cause,
                  "call.ended cause %r does not say why (status %d)" % (cause, code))
            check(got[-1]["call"].get("final_status") == 502, "final_status %r" %
                  got[-1]["call"].get("final_status"))
            print("#   callee %d -> caller %s, cause %r" % (code, r["first"], cause), flush=True)
            # drain what B gets (ACK, CANCEL) and answer a CANCEL
            try:
                while True:
                    m, src = b.wait(lambda m: m["method"] in ("ACK", "CANCEL", "BYE"), 0.5)
                    if m["method"] in ("CANCEL", "BYE"):
                        b.reply(m, src, 200, "OK")
            except Fail:
                pass
        # a callee answering with the caller's From-tag as its To-tag
        # would make both one party on the media server: 502
        for code in (183, 200):
            call = Call(s, a, b)
            call.invite()
            call.b_gets_invite()
            b.reply(call.binv, call.bsrc, code, "OK", to_tag=call.ftag,
                    body=SDP_B)
            r = a.wait_response("INVITE")
            check(r["code"] == 502, "callee %d with the caller's tag relayed as %s"
                  % (code, r["first"]))
            call.request("ACK", cseq=1)
            got, ended = events_until(ws, lambda e: e.get("event") == "call.ended", 3)
            check(ended and "tag" in (got[-1]["call"].get("cause") or ""),
                  "equal tags: call.ended %r" % (got[-1] if got else None))
            try:
                while True:
                    m, src = b.wait(lambda m: m["method"] in ("ACK", "CANCEL", "BYE"), 0.5)
                    if m["method"] in ("CANCEL", "BYE"):
                        b.reply(m, src, 200, "OK")
            except Fail:
                pass
        print("#   callee To-tag == caller From-tag (183, 200) -> 502", flush=True)
        # in a call: an INFO answered 700
        call = Call(s, a, b)
        call.establish()
        call.request("INFO", "x", ctype="text/plain")
        req, src = b.wait_request("INFO")
        b.reply(req, src, 700, "Weird")
        r = a.wait_response("INFO")
        check(r["code"] == 502, "INFO answered 700 relayed as %s, want 502" % r["first"])
        call.bye()
        a.wait_response("BYE", 200)
        bye_callee(call)
        s.check_serving()
    finally:
        ws.close()
        rc = s.stop()
        a.close()
        b.close()
    check(rc == 0, "exit status %s\n%s" % (rc, s.tail()))


CASES = [("late_answer", case_late_answer), ("ng_after_end", case_ng_after_end),
         ("shutdown", case_shutdown), ("no_user", case_no_user),
         ("ws_frames", case_ws_frames), ("bad_status", case_bad_status)]


def main():
    if not st.tally_sip_binary():
        print("tally-sip not built (TALLY_SIP)")
        return 1
    only = sys.argv[1:]
    keep = os.environ.get("TALLY_KEEP") == "1"
    tmp = tempfile.mkdtemp(prefix="tally-regress-")
    ng = FakeNg()
    failed = 0
    t0 = time.monotonic()
    try:
        for name, fn in CASES:
            if only and name not in only:
                continue
            t = time.monotonic()
            try:
                fn(tmp, ng)
                print("ok %s (%.1f s)" % (name, time.monotonic() - t), flush=True)
            except (Fail, AssertionError, OSError, ae.Fail) as e:
                failed += 1
                print("FAIL %s: %s" % (name, e), flush=True)
            ng.release()
    finally:
        ng.close()
    print("%d failed, %.1f s; logs in %s" % (failed, time.monotonic() - t0, tmp), flush=True)
    if not failed and not keep:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
