"""nfsip.py: the netfuzz target for tally-sip (SIP B2BUA + HTTP/WebSocket API).

    caller sockets --SIP--> tally-sip --SIP--> callee socket (the harness)
                               | ng
                           tally-media (also under ASan, also checked)
    WebSocket / HTTP client --> tally-sip's API (/api/v1/events, /health)

tally-sip runs with --route='* sip:${user}@127.0.0.1:<callee port>', so
every INVITE reaches the harness's own callee socket, which answers as
the scenario says: 100/180/183/200, odd status codes, duplicate and late
responses, in-dialog requests of its own (BYE, INFO, re-INVITE), answers
to forwarded in-dialog requests only when the script says so (after the
caller's BYE, say). The caller side sends INVITE/ACK/CANCEL/BYE/INFO/
re-INVITE/UPDATE/OPTIONS in the scenario's order. Unscripted: the caller
answers requests from tally-sip with 200, ACKs non-2xx finals, and the
callee answers BYE and CANCEL (200, 487) unless the scenario is "silent".

Scenario shapes: a call (answered, then in-dialog requests whose final
responses may come late), a CANCEL race (CANCEL crossing the 200), a
rejected call (odd codes, duplicates), each with odd Request-URIs now and
then; WebSocket clients on /api/v1/events sending random frames (bad
opcodes, lengths up to 2^64-1); HTTP requests with and without the token.

Oracle: a response outside 100-699 reaching the caller (tally-sip must not
relay a malformed status line).
"""

import os
import random
import re
import select
import socket
import struct
import time
import zlib

from nfcommon import LOCAL, Mutator, Victim, binary, mutate_steps
from nfmedia import MediaTarget
from siptest import sip_parse
from tallytest import free_port

DEBUG = os.environ.get("NETFUZZ_DEBUG") == "1"
ODD_CODES = [1, 70, 99, 700, 999, 28564, 65535, 0]
CODES = [100, 180, 181, 183, 200, 200, 200, 202, 299, 300, 302, 380, 400, 403, 404, 407,
         408, 422, 480, 481, 486, 487, 488, 491, 500, 503, 600, 603, 699]
RURIS = ["sip:%(u)s@127.0.0.1:%(p)d", "sip:%(u)s@127.0.0.1:%(p)d", "sip:%(u)s@127.0.0.1:%(p)d",
         "sip:127.0.0.1:%(p)d", "tel:+1", "sip:[::ffff:127.0.0.1]", "sips:%(u)s@127.0.0.1:%(p)d",
         "sip:%(u)s@127.0.0.1:%(p)d;transport=udp;lr", "sip:%%00%(u)s@127.0.0.1",
         "sip:%(u)s%(u)s%(u)s%(u)s%(u)s%(u)s%(u)s%(u)s@127.0.0.1"]
WS_LENS = [0, 1, 125, 126, 127, 65535, 65536, (1 << 63) - 1, 1 << 63,
           (1 << 64) - 5, (1 << 64) - 4, (1 << 64) - 3, (1 << 64) - 2, (1 << 64) - 1]
HTTP_PATHS = ["/api/v1/health", "/api/v1/calls", "/api/v1/calls/", "/api/v1/calls/x",
              "/api/v1/calls/%00", "/api/v1/calls/" + "a" * 3000, "/api/v1/events", "/",
              "/api/v1/", "/api/v1/health?x=1", "/../../etc/passwd"]


def sdp_body(port, version=1, direction="sendrecv"):
    return ("v=0\r\no=- 42 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            "a=%s\r\nm=video %d RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=%s\r\n") % (
                version, port, direction, port + 2, direction)


def hdrs_of(m, name):
    return [v for k, v in m["hdrs"] if k == name]


def tag_of(value):
    t = re.search(r";\s*tag=([^;>\s]+)", value or "")
    return t.group(1) if t else None


class Call:
    def __init__(self, key):
        self.key = key
        self.user = "nf" + key
        self.callid = key + "@netfuzz"
        self.ftag = "f" + key
        self.cseq = 0
        self.inv = None            # (branch, cseq, bytes) of the last INVITE sent
        self.totag = None
        self.rtarget = None
        self.a_reqs = {}           # requests from tally-sip to the caller, by method
        self.b = None              # b-leg: {'reqs': {method: msg}, 'addr', 'callid', 'cseq'}
        self.sock = None


class SipTarget:
    name = "sip"

    def __init__(self, stats, sandir, logdir):
        self.stats = stats
        self.bin = binary("TALLY_SIP", "sip", "tally-sip")
        self.sandir, self.logdir = sandir, logdir
        self.media = MediaTarget(stats, sandir, logdir)
        self.victim = None
        self.callee = None
        self.callers = []
        self.oddities = []
        self.ws = []
        self.auto = True
        self.rx = 0

    def victims(self):
        return [v for v in (self.media.victim, self.victim) if v]

    def start(self):
        why = self.media.start()
        if why:
            return "tally-media: " + why
        self.sip_port = free_port()
        self.api_port = free_port()
        self.token = "nf-%08x" % random.getrandbits(32)
        if self.callee is None:
            self.callee = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.callee.bind((LOCAL, 0))
            self.callee_port = self.callee.getsockname()[1]
            self.callers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
            for s in self.callers:
                s.bind((LOCAL, 0))
            self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.rtp.bind((LOCAL, 0))
        argv = [self.bin, "--config-file=none", "--foreground", "--log-level=6",
                "--sip-listen=%s:%d" % (LOCAL, self.sip_port),
                "--media-servers=%s:%d" % (LOCAL, self.media.ng_port),
                "--api-listen=%s:%d" % (LOCAL, self.api_port), "--api-token=" + self.token,
                "--route=* sip:${user}@%s:%d" % (LOCAL, self.callee_port),
                "--no-answer-secs=4", "--rate-limit=100000", "--rate-burst=100000"]
        self.victim = Victim("tally-sip", argv, self.sandir, self.logdir).start()
        self.calls = {}
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if not self.victim.alive():
                return "tally-sip exited at start (rc %s)" % self.victim.exitcode()
            if self.options(0.3):
                return None
        return "tally-sip: no answer to OPTIONS within 20 s"

    def stop(self):
        self.close_ws()
        if self.victim:
            self.victim.stop()
        self.media.stop()

    def close(self):
        for s in self.callers + [self.callee, self.rtp]:
            if s:
                s.close()
        self.media.close()

    def close_ws(self):
        for s in self.ws:
            s.close()
        self.ws = []

    # ---------------------------------------------------------- probes

    def options(self, timeout=1.0):
        s = self.callers[0]
        cid = "probe-%x@netfuzz" % random.getrandbits(48)
        lp = s.getsockname()[1]
        msg = ("OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bKp%x;rport\r\n"
               "Max-Forwards: 70\r\nFrom: <sip:probe@%s>;tag=p1\r\nTo: <sip:%s:%d>\r\n"
               "Call-ID: %s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n") % (
                   LOCAL, self.sip_port, LOCAL, lp, random.getrandbits(48), LOCAL, LOCAL,
                   self.sip_port, cid)
        s.sendto(msg.encode(), (LOCAL, self.sip_port))
        got = [False]

        def seen():
            return got[0]
        self.pump(timeout, until=seen, probe=(cid, got))
        return got[0]

    def http(self, method, path, token=True, extra="", body=b"", timeout=2.0):
        """(status or None, body bytes) of one HTTP/1.1 request."""
        try:
            c = socket.create_connection((LOCAL, self.api_port), timeout=timeout)
        except OSError:
            return None, b""
        try:
            h = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method, path)
            if token:
                h += "Authorization: Bearer %s\r\n" % (self.token if token is True else token)
            h += extra + "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            c.sendall(h.encode("latin-1") + body)
            data = b""
            while True:
                d = c.recv(65536)
                if not d:
                    break
                data += d
                head, sep, rest = data.partition(b"\r\n\r\n")
                cl = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if sep and (not cl or len(rest) >= int(cl.group(1))) or len(data) > 1 << 20:
                    break
        except OSError:
            pass
        finally:
            c.close()
        m = re.match(rb"HTTP/1\.[01] (\d+)", data)
        return (int(m.group(1)) if m else None), data

    def live(self):
        why = self.media.live()
        if why:
            return "tally-media: " + why
        for _ in range(3):
            if self.options(1.0):
                break
        else:
            return "SIP OPTIONS unanswered (3 x 1 s)"
        st, _ = self.http("GET", "/api/v1/health")
        if st != 200:
            return "GET /api/v1/health: %s" % st
        return None

    def oracle(self):
        if self.oddities:
            o, self.oddities = self.oddities[0], []
            return o
        return None

    # ---------------------------------------------------------- the wire

    def send_caller(self, call, data, mut=None):
        if mut is not None:
            data = Mutator.bytes_mut(data, mut)
        if call.sock is None:
            call.sock = self.callers[zlib.crc32(call.key.encode()) % len(self.callers)]
        call.sock.sendto(data, (LOCAL, self.sip_port))

    def pump(self, secs, until=None, probe=None):
        """Read every socket for up to SECS (or until UNTIL() is true),
        handling what arrives."""
        end = time.monotonic() + secs
        socks = self.callers + [self.callee]
        while True:
            left = end - time.monotonic()
            if left <= 0 or (until and until()):
                return
            rd, _, _ = select.select(socks + self.ws, [], [], left)
            for s in rd:
                if s in self.ws:
                    try:
                        if not s.recv(65536):
                            self.ws.remove(s)
                            s.close()
                    except OSError:
                        self.ws.remove(s)
                        s.close()
                    continue
                try:
                    data, addr = s.recvfrom(65535)
                except OSError:
                    continue
                m = sip_parse(data)
                if m is None:
                    continue
                self.rx += 1
                if probe and m["hdr"].get("call-id") == probe[0]:
                    probe[1][0] = True
                    continue
                if s is self.callee:
                    self.at_callee(m, addr)
                else:
                    self.at_caller(m, s)

    def call_by_callid(self, cid):
        for c in self.calls.values():
            if c.callid == cid:
                return c
        return None

    def at_caller(self, m, sock):
        c = self.call_by_callid(m["hdr"].get("call-id"))
        if m["code"] is not None:
            self.stats.reply("caller got %s" % (m["code"] // 100 * 100 if 100 <= m["code"] <= 699 else "odd"))
            if DEBUG and m["code"] >= 400:
                print("  caller got: %s (%s)" % (m["first"], m["cseq"]))
            if not 100 <= m["code"] <= 699:
                self.oddities.append("out-of-range status relayed: %d reached the caller: %s" % (m["code"], m["first"][:60]))
            if c is None:
                return
            if m["method"] == "INVITE":
                t = tag_of(m["hdr"].get("to"))
                if 200 <= m["code"] < 300 and t:
                    c.totag = t
                    ct = re.search(r"<([^>]+)>", m["hdr"].get("contact", ""))
                    if ct:
                        c.rtarget = ct.group(1)
                    self.media_to(m["body"])
                elif m["code"] >= 300 and c.inv:
                    # the ACK of a non-2xx final is hop-by-hop: same branch
                    branch, cseq, _ = c.inv
                    self.send_caller(c, self.req(c, "ACK", branch=branch, cseq=cseq,
                                                 to=m["hdr"].get("to")))
            return
        if c is None:
            return
        c.a_reqs[m["method"]] = m
        if m["method"] != "ACK" and self.auto:
            body = sdp_body(self.rtp.getsockname()[1]) if m["method"] == "INVITE" else ""
            sock.sendto(self.resp(m, 200, totag=None, body=body), (LOCAL, self.sip_port))

    def at_callee(self, m, addr):
        cid = m["hdr"].get("call-id")
        c = None
        for x in self.calls.values():
            if x.b and x.b["callid"] == cid:
                c = x
        if c is None and m["method"] == "INVITE" and m["code"] is None:
            ru = m["first"].split()[1] if len(m["first"].split()) > 1 else ""
            for x in self.calls.values():
                if x.b is None and ("sip:%s@" % x.user) in ru:
                    c = x
            if c is None:   # no user part: the newest call without a b-leg
                for x in self.calls.values():
                    if x.b is None and x.inv:
                        c = x
            if c is None:
                return
            c.b = {"reqs": {}, "addr": addr, "callid": cid, "cseq": 100, "totag": "e" + c.key,
                   "invite": m}
            self.media_to(m["body"])
        if c is None:
            return
        if m["code"] is not None:
            self.stats.reply("callee got %d" % (m["code"] // 100 * 100))
            return
        c.b["reqs"][m["method"]] = m
        c.b["addr"] = addr
        self.stats.reply("callee got %s" % m["method"])
        if self.auto and m["method"] in ("BYE", "CANCEL"):
            self.callee.sendto(self.resp(m, 200, totag=c.b["totag"]), addr)
            inv = c.b["reqs"].get("INVITE")
            if m["method"] == "CANCEL" and inv:
                self.callee.sendto(self.resp(inv, 487, totag=c.b["totag"]), addr)

    def media_to(self, body):
        """A few RTP packets to the ports an SDP names (tally-media's)."""
        for p in re.findall(r"^m=\w+ (\d+)", body or "", re.M)[:2]:
            p = int(p)
            if 0 < p < 65535:
                for i in range(3):
                    try:
                        self.rtp.sendto(struct.pack("!BBHII", 0x80, 0, i, i * 160, 0x4242) + bytes(160),
                                        (LOCAL, p))
                    except OSError:
                        pass
                self.stats.count("rtp", 3)

    # ---------------------------------------------------------- messages

    def req(self, c, method, branch=None, cseq=None, to=None, body="", ruri=None, extra=()):
        lp = (c.sock or self.callers[zlib.crc32(c.key.encode()) % len(self.callers)]).getsockname()[1]
        if cseq is None:
            c.cseq += 1
            cseq = c.cseq
        branch = branch or "z9hG4bK%x" % random.getrandbits(48)
        if to is None:
            to = "<sip:%s@127.0.0.1:%d>" % (c.user, self.sip_port) + (
                ";tag=%s" % c.totag if c.totag else "")
        ruri = ruri or (c.rtarget if c.totag and c.rtarget else
                        "sip:%s@127.0.0.1:%d" % (c.user, self.sip_port))
        h = ["%s %s SIP/2.0" % (method, ruri),
             "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (lp, branch),
             "Max-Forwards: 70", "From: <sip:caller@127.0.0.1:%d>;tag=%s" % (lp, c.ftag),
             "To: " + to, "Call-ID: " + c.callid, "CSeq: %d %s" % (cseq, method),
             "Contact: <sip:caller@127.0.0.1:%d>" % lp] + list(extra)
        if body:
            h.append("Content-Type: " + ("application/sdp" if body.startswith("v=0") else
                                         "application/dtmf-relay"))
        h.append("Content-Length: %d" % len(body.encode()))
        return ("\r\n".join(h) + "\r\n\r\n" + body).encode()

    def resp(self, m, code, totag=None, body=""):
        to = m["hdr"].get("to", "")
        if totag and not tag_of(to):
            to += ";tag=" + totag
        h = ["SIP/2.0 %d %s" % (code, "OK" if code == 200 else "Fuzz")]
        h += ["Via: " + v for v in hdrs_of(m, "via")]
        h += ["From: " + m["hdr"].get("from", ""), "To: " + to,
              "Call-ID: " + m["hdr"].get("call-id", ""), "CSeq: " + m["cseq"],
              "Contact: <sip:callee@127.0.0.1:%d>" % self.callee_port]
        if body:
            h.append("Content-Type: application/sdp")
        h.append("Content-Length: %d" % len(body.encode()))
        return ("\r\n".join(h) + "\r\n\r\n" + body).encode()

    # ---------------------------------------------------------- steps

    def call(self, key):
        c = self.calls.get(key)
        if c is None:
            c = self.calls[key] = Call(key)
            while len(self.calls) > 64:
                del self.calls[next(iter(self.calls))]
        return c

    def run_step(self, st):
        op = st["op"]
        self.auto = not st.get("silent", False) if op == "mode" else getattr(self, "auto", True)
        c = self.call(st["c"]) if "c" in st else None
        wait = 0.01
        rx0 = self.rx
        if op == "mode":
            return
        if op == "inv":
            ruri = RURIS[st.get("ruri", 0) % len(RURIS)] % {"u": c.user, "p": self.sip_port}
            if c.inv:       # re-INVITE inside the dialog
                ruri = None
            body = sdp_body(self.rtp.getsockname()[1], version=c.cseq + 1,
                            direction=st.get("dir", "sendrecv")) if st.get("sdp", True) else ""
            branch = "z9hG4bK%x" % random.getrandbits(48)
            c.cseq += 1
            data = self.req(c, "INVITE", branch=branch, cseq=c.cseq, body=body, ruri=ruri,
                            extra=st.get("extra", ()))
            c.inv = (branch, c.cseq, data)
            self.send_caller(c, data, st.get("mut"))
            self.stats.count("sip INVITE" + (" (mutated)" if st.get("mut") is not None else ""))
            self.pump(0.3, until=lambda: self.rx > rx0)
            self.pump(0.005)
            return
        if op == "cancel":
            if not c.inv:
                return
            branch, cseq, _ = c.inv
            to = "<sip:%s@127.0.0.1:%d>" % (c.user, self.sip_port)
            self.send_caller(c, self.req(c, "CANCEL", branch=branch, cseq=cseq, to=to,
                                         ruri="sip:%s@127.0.0.1:%d" % (c.user, self.sip_port)))
            self.stats.count("sip CANCEL")
        elif op == "ack":
            if not c.inv:
                return
            self.send_caller(c, self.req(c, "ACK", cseq=c.inv[1]))
            self.stats.count("sip ACK")
        elif op == "creq":
            body = "Signal=5\r\nDuration=160\r\n" if st["m"] == "INFO" else (
                sdp_body(self.rtp.getsockname()[1], 9) if st["m"] == "UPDATE" else "")
            self.send_caller(c, self.req(c, st["m"], body=body), st.get("mut"))
            self.stats.count("sip " + st["m"] + (" (mutated)" if st.get("mut") is not None else ""))
            wait = -0.2
        elif op == "eresp":
            if not c.b or st["m"] not in c.b["reqs"]:
                self.stats.reply("skipped (nothing to answer)")
                return
            m = c.b["reqs"][st["m"]]
            body = sdp_body(self.rtp.getsockname()[1] + 10, 2) if st.get("sdp") else ""
            data = self.resp(m, st["code"], totag=c.b["totag"] if st["code"] > 100 else None,
                             body=body)
            if st.get("mut") is not None:
                data = Mutator.bytes_mut(data, st["mut"])
            for _ in range(st.get("dup", 1)):
                self.callee.sendto(data, c.b["addr"])
            self.stats.count("sip response %s" % (st["code"] if st["code"] in (100, 180, 183, 200)
                                                  else "other"), st.get("dup", 1))
            wait = -0.1
        elif op == "ereq":
            if not c.b or "INVITE" not in c.b["reqs"]:
                return
            inv = c.b["invite"]
            c.b["cseq"] += 1
            ct = re.search(r"<([^>]+)>", inv["hdr"].get("contact", ""))
            ruri = ct.group(1) if ct else "sip:127.0.0.1:%d" % self.sip_port
            frm = inv["hdr"].get("to", "")
            if not tag_of(frm):
                frm += ";tag=" + c.b["totag"]
            body = sdp_body(self.rtp.getsockname()[1] + 10, 3 + c.b["cseq"],
                            st.get("dir", "sendrecv")) if st["m"] == "INVITE" else (
                "Signal=1\r\n" if st["m"] == "INFO" else "")
            h = ["%s %s SIP/2.0" % (st["m"], ruri),
                 "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%x;rport" % (self.callee_port, random.getrandbits(48)),
                 "Max-Forwards: 70", "From: " + frm, "To: " + inv["hdr"].get("from", ""),
                 "Call-ID: " + c.b["callid"], "CSeq: %d %s" % (c.b["cseq"], st["m"]),
                 "Contact: <sip:callee@127.0.0.1:%d>" % self.callee_port]
            if body:
                h.append("Content-Type: " + ("application/sdp" if body.startswith("v=0") else "application/dtmf-relay"))
            h.append("Content-Length: %d" % len(body))
            data = ("\r\n".join(h) + "\r\n\r\n" + body).encode()
            if st.get("mut") is not None:
                data = Mutator.bytes_mut(data, st["mut"])
            self.callee.sendto(data, (LOCAL, self.sip_port))
            self.stats.count("sip callee " + st["m"])
            wait = -0.2
        elif op == "eack":
            if not c.b or "INVITE" not in c.b["reqs"]:
                return
            # ACK from tally-sip arrives at the callee; nothing to send
        elif op == "raw":
            self.callers[0].sendto(bytes.fromhex(st["hex"]), (LOCAL, self.sip_port))
            self.stats.count("sip raw")
        elif op == "ws":
            self.ws_step(st)
        elif op == "http":
            self.http(st["method"], st["path"], token=st.get("token", True), extra=st.get("extra", ""),
                      timeout=1.0)
            self.stats.count("http request")
        elif op == "wait":
            wait = st["ms"] / 1000.0
        if wait < 0:        # until something comes back, then a moment more
            self.pump(-wait, until=lambda: self.rx > rx0)
            wait = 0.005
        self.pump(wait)

    def ws_step(self, st):
        act = st["act"]
        if act == "open":
            try:
                s = socket.create_connection((LOCAL, self.api_port), timeout=2)
            except OSError:
                return
            tok = "Authorization: Bearer %s\r\n" % self.token if st.get("token", True) else ""
            s.sendall(("GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n%sUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n" % tok).encode())
            try:
                s.settimeout(1.0)
                s.recv(4096)
            except OSError:
                pass
            s.setblocking(False)
            self.ws.append(s)
            self.stats.count("ws upgrade")
            while len(self.ws) > 4:
                self.ws.pop(0).close()
        elif act == "frame" and self.ws:
            try:
                self.ws[-1].send(bytes.fromhex(st["hex"]))
            except OSError:
                pass
            self.stats.count("ws frame")
        elif act == "close" and self.ws:
            self.ws.pop().close()

    def end_scenario(self):
        self.pump(0.05)

    # ---------------------------------------------------------- generation

    def generate(self, r, sid):
        steps = []
        if r.random() < 0.15:
            steps.append({"op": "mode", "silent": True})
        for k in range(r.choice((1, 1, 1, 2))):
            key = "s%dk%d" % (sid, k)
            steps += getattr(self, "gen_" + r.choice(("call", "call", "call", "cancel", "reject")))(r, key)
        if r.random() < 0.25:
            steps += self.gen_ws(r)
        if r.random() < 0.1:
            m = r.choice(HTTP_PATHS)
            steps.append({"op": "http", "method": r.choice(("GET", "GET", "POST", "DELETE", "OPTIONS")),
                          "path": m, "token": r.choice((True, True, False, "wrong"))})
        steps = mutate_steps(r, steps, movable=lambda s: s["op"] != "mode")
        for st in steps:
            if st["op"] in ("inv", "creq", "eresp", "ereq") and r.random() < 0.04:
                st["mut"] = r.randrange(1 << 30)
        if r.random() < 0.05:
            steps.append({"op": "raw", "hex": bytes(r.randrange(256) for _ in range(r.randrange(1, 200))).hex()})
        if steps and steps[0]["op"] == "mode":
            steps.append({"op": "mode", "silent": False})
        return steps

    def code(self, r, final=True):
        if r.random() < 0.05:
            return r.choice(ODD_CODES)
        return r.choice([x for x in CODES if x >= 200] if final else CODES)

    def invite(self, r, key, **kw):
        st = {"op": "inv", "c": key, "ruri": 0 if r.random() < 0.85 else r.randrange(len(RURIS))}
        if r.random() < 0.1:
            st["sdp"] = False
        if r.random() < 0.1:
            st["extra"] = [r.choice(("Session-Expires: 90;refresher=uac", "Session-Expires: 1",
                                     "Require: 100rel", "Supported: timer", "Min-SE: 0",
                                     "Replaces: x;to-tag=a;from-tag=b", "Max-Forwards: 0"))]
        st.update(kw)
        return st

    def indialog(self, r, key, late):
        """Caller's in-dialog request and the callee's answers; the final
        answer goes to LATE (after the BYE) now and then."""
        m = r.choice(("INFO", "INFO", "INVITE", "UPDATE", "OPTIONS", "MESSAGE", "NOTIFY"))
        out = [{"op": "creq", "c": key, "m": m}] if m != "INVITE" else [
            {"op": "inv", "c": key, "dir": r.choice(("sendrecv", "sendonly", "inactive"))}]
        if r.random() < 0.5:
            out.append({"op": "eresp", "c": key, "m": m, "code": 100})
        fin = {"op": "eresp", "c": key, "m": m, "code": self.code(r), "sdp": m in ("INVITE", "UPDATE")}
        if r.random() < 0.35:
            late.append(fin)
        else:
            out.append(fin)
        if m == "INVITE":
            out.append({"op": "ack", "c": key})
        return out

    def gen_call(self, r, key):
        out = [self.invite(r, key), {"op": "eresp", "c": key, "m": "INVITE", "code": 100}]
        for code in r.sample((180, 183, 180), r.randrange(3)):
            out.append({"op": "eresp", "c": key, "m": "INVITE", "code": code, "sdp": code == 183})
        out.append({"op": "eresp", "c": key, "m": "INVITE", "code": 200, "sdp": True,
                    "dup": r.choice((1, 1, 1, 2, 3))})
        out.append({"op": "ack", "c": key})
        late = []
        for _ in range(r.randrange(4)):
            if r.random() < 0.7:
                out += self.indialog(r, key, late)
            else:
                m = r.choice(("INFO", "INVITE", "BYE"))
                out.append({"op": "ereq", "c": key, "m": m, "dir": r.choice(("sendrecv", "inactive"))})
                if r.random() < 0.5:
                    out.append({"op": "wait", "ms": r.choice((20, 100))})
                if m == "BYE":
                    break
        if r.random() < 0.9:
            out.append({"op": "creq", "c": key, "m": "BYE"} if r.random() < 0.7 else
                       {"op": "ereq", "c": key, "m": "BYE"})
        out += late
        if late and r.random() < 0.5:
            out.append({"op": "wait", "ms": r.choice((50, 300))})
        return out

    def gen_cancel(self, r, key):
        out = [self.invite(r, key), {"op": "eresp", "c": key, "m": "INVITE", "code": 180}]
        race = [{"op": "cancel", "c": key},
                {"op": "eresp", "c": key, "m": "INVITE", "code": r.choice((200, 200, 486, 487)), "sdp": True}]
        r.shuffle(race)
        out += race
        out += [{"op": "eresp", "c": key, "m": "CANCEL", "code": 200},
                {"op": "ack", "c": key}]
        if r.random() < 0.5:
            out.append({"op": "creq", "c": key, "m": "BYE"})
        return out

    def gen_reject(self, r, key):
        out = [self.invite(r, key)]
        for _ in range(r.randrange(1, 4)):
            out.append({"op": "eresp", "c": key, "m": "INVITE", "code": self.code(r, final=False),
                        "dup": r.choice((1, 1, 2))})
        if r.random() < 0.3:
            out.append({"op": "cancel", "c": key})
        if r.random() < 0.3:
            out.append({"op": "wait", "ms": 200})
        return out

    def gen_ws(self, r):
        out = [{"op": "ws", "act": "open", "token": r.random() < 0.9}]
        for _ in range(r.randrange(1, 6)):
            out.append({"op": "ws", "act": "frame", "hex": self.ws_frame(r).hex()})
        if r.random() < 0.5:
            out.append({"op": "ws", "act": "close"})
        return out

    @staticmethod
    def ws_frame(r):
        op = r.choice((1, 1, 2, 8, 9, 10, 0, 3, 7, 11, 15))
        fin = 0x80 if r.random() < 0.85 else 0
        rsv = r.choice((0, 0, 0, 0x40, 0x70))
        payload = bytes(r.randrange(256) for _ in range(r.choice((0, 2, 10, 125, 300))))
        if r.random() < 0.6:
            n = len(payload)
        else:
            n = r.choice(WS_LENS)
        mask = r.random() < 0.9
        hdr = bytes([fin | rsv | op])
        mbit = 0x80 if mask else 0
        if n < 126 and r.random() < 0.8:
            hdr += bytes([mbit | n])
        elif n < 65536 and r.random() < 0.7:
            hdr += bytes([mbit | 126]) + struct.pack("!H", n)
        else:
            hdr += bytes([mbit | 127]) + struct.pack("!Q", n & ((1 << 64) - 1))
        if mask:
            key = bytes(r.randrange(256) for _ in range(4))
            hdr += key
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return hdr + payload
