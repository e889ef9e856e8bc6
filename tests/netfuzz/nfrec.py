"""nfrec.py: the netfuzz target for tally-recorder (SIPREC server + HTTP API).

    SRC (the harness, UDP or TCP) --SIPREC--> tally-recorder --> storage
    flood thread --RTP/RTCP/junk--> the ports the recorder answered
    HTTP client --> /api/v1/recordings (search, details, download with
                    Range, DELETE), /api/v1/status

Scenario shapes, then mutated (steps dropped, duplicated, moved; bytes of
SIP messages mutated):
  session    INVITE (multipart SDP + RFC 7865 metadata, 1-4 m= lines,
             complete or partial metadata, sometimes SDP alone or the
             metadata of tests/data/siprec/), ACK, media on, re-INVITEs
             (inactive = pause, sendonly = resume, fewer lines), UPDATE,
             OPTIONS, BYE while the media flows, CANCEL before the answer
  api        searches with odd parameters, details, downloads with Range
             (normal, suffix, open, several, huge numbers), DELETE
Sessions run over UDP or TCP (one connection per session, framed by
Content-Length). The flood thread sends PCMU, H.264 (single NAL, FU-A),
VP8, RTCP SR/RR, junk and truncated headers to every answered port of the
sessions whose media is on, at 200..5000 packets per second.

Oracle: a Range whose numbers are too long to parse answered 200 with
the whole file (the issue asks for 416, or 206 for the satisfiable part).
"""

import glob
import json
import os
import random
import re
import select
import socket
import struct
import time
import zlib

import nfcommon  # noqa: E402
from nfcommon import LOCAL, SRC, Mutator, Victim, binary, mutate_steps
from rectest import siprec_sdp, siprec_metadata, multipart, PART_A, PART_B, AV4
from siptest import sip_parse
from tallytest import free_port, free_port_block, rtp_packet, rtcp_sr, rtcp_rr

DEBUG = os.environ.get("NETFUZZ_DEBUG") == "1"
DATA = os.environ.get("TALLY_DATA") or os.path.join(SRC, "tests", "data")


def data_metadata():
    out = []
    for p in sorted(glob.glob(os.path.join(DATA, "siprec", "**", "*.xml"), recursive=True))[:20]:
        try:
            with open(p, errors="replace") as f:
                out.append(f.read())
        except OSError:
            pass
    return out


class Flood(nfcommon.Flood):
    """Media of the answered streams (audio, H.264, VP8, RTCP, broken RTP)
    to the recorder's ports; dests are (address, kind)."""

    def send_one(self, r, seq, dest):
        d, kind = dest
        self.t.media.sendto(self.packet(r, seq, d, kind), d)

    @staticmethod
    def packet(r, seq, d, kind):
        c = r.randrange(24)
        ssrc = 0x5000 + d[1]
        s = seq[d] = (seq.get(d, 1000) + 1) & 0xffff
        if c < 14:
            if kind == "audio":
                return rtp_packet(s, s * 160, ssrc, bytes([0xff]) * 160, pt=0)
            if r.random() < 0.5:         # H.264: single NAL or FU-A
                if r.random() < 0.5:
                    nal = bytes([r.choice((0x65, 0x41, 0x67, 0x68, 0x06))]) + bytes(r.randrange(256) for _ in range(r.choice((1, 30, 900))))
                else:
                    nal = bytes([0x7c, r.choice((0x85, 0x05, 0x45))]) + bytes(r.randrange(256) for _ in range(r.choice((0, 30, 1100))))
                return rtp_packet(s, s * 3000, ssrc, nal, pt=96, marker=r.random() < 0.3)
            desc = bytes([r.choice((0x10, 0x90, 0x00, 0x80)), r.choice((0x80, 0xe0, 0))])
            return rtp_packet(s, s * 3000, ssrc, desc + bytes(r.randrange(256) for _ in range(r.choice((0, 10, 1000)))),
                              pt=97, marker=r.random() < 0.3)
        if c < 16:
            return rtp_packet(s, r.randrange(1 << 32), ssrc, bytes(r.randrange(40)), pt=r.randrange(128))
        if c == 16:
            return rtcp_sr(ssrc, s)
        if c == 17:
            return rtcp_rr(ssrc, ssrc + 1, s)
        if c == 18:
            return bytes([0x9f, 96, 0, 1]) + struct.pack("!II", 1, ssrc)
        if c == 19:
            return bytes([0x90, 96]) + struct.pack("!HII", s, s, ssrc) + struct.pack("!HH", 0xbede, 0xffff)
        return bytes(r.randrange(256) for _ in range(r.choice((0, 1, 11, 12, 13, 100))))


class Sess:
    def __init__(self, key, transport):
        self.key = key
        self.callid = key + "@netfuzz-src"
        self.ftag = "src" + key
        self.cseq = 0
        self.totag = None
        self.rtarget = None
        self.inv = None
        self.ports = []            # (port, kind) the recorder answered
        self.transport = transport
        self.conn = None
        self.buf = b""
        self.media = False


class RecorderTarget:
    name = "recorder"

    def __init__(self, stats, sandir, logdir):
        self.stats = stats
        self.bin = binary("TALLY_RECORDER", "recorder", "tally-recorder")
        self.sandir, self.logdir = sandir, logdir
        self.storage = os.path.join(os.path.dirname(sandir), "storage")
        self.victim = None
        self.udp = []
        self.metas = data_metadata()
        self.range_oddities = []
        self.ids = []

    def victims(self):
        return [self.victim] if self.victim else []

    def start(self):
        os.makedirs(self.storage, exist_ok=True)
        self.sip_port = free_port()
        self.http_port = free_port()
        lo, hi = free_port_block(400)
        self.token = "nf-%08x" % random.getrandbits(32)
        if not self.udp:
            self.udp = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
            for s in self.udp:
                s.bind((LOCAL, 0))
            self.media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.media.bind((LOCAL, 0))
        argv = [self.bin, "--config-file=none", "--foreground",
                "--listen-sip=%s:%d" % (LOCAL, self.sip_port), "--interface=" + LOCAL,
                "--port-min=%d" % lo, "--port-max=%d" % hi, "--storage=" + self.storage,
                "--listen-http=%s:%d" % (LOCAL, self.http_port), "--api-token=" + self.token,
                "--log-level=6", "--min-free-mb=0", "--media-timeout=8", "--max-sessions=60"]
        self.victim = Victim("tally-recorder", argv, self.sandir, self.logdir).start()
        self.sess = {}
        self.dests = []
        self.flood = None
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if not self.victim.alive():
                return "exited at start (rc %s)" % self.victim.exitcode()
            if self.http("GET", "/api/v1/status", timeout=0.5)[0] == 200 and self.options(0.5):
                return None
            time.sleep(0.1)
        return "no answer to HTTP status and SIP OPTIONS within 60 s"

    def stop(self):
        self.flow(False)
        for s in self.sess.values():
            if s.conn:
                s.conn.close()
        if self.victim:
            self.victim.stop(grace=15)

    def close(self):
        for s in self.udp + [getattr(self, "media", None)]:
            if s:
                s.close()

    # ---------------------------------------------------------- probes

    def http(self, method, path, headers=(), token=True, timeout=3.0, want_body=True):
        try:
            c = socket.create_connection((LOCAL, self.http_port), timeout=timeout)
        except OSError:
            return None, {}, b""
        data = b""
        try:
            h = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method, path)
            if token:
                h += "Authorization: Bearer %s\r\n" % (self.token if token is True else token)
            h += "".join(x + "\r\n" for x in headers) + "Connection: close\r\n\r\n"
            c.sendall(h.encode("latin-1"))
            while True:
                d = c.recv(65536)
                if not d:
                    break
                data += d
                head, sep, rest = data.partition(b"\r\n\r\n")
                cl = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if sep and (not cl or len(rest) >= int(cl.group(1)) or not want_body) or len(data) > 8 << 20:
                    break
        except OSError:
            pass
        finally:
            c.close()
        head, _, body = data.partition(b"\r\n\r\n")
        m = re.match(rb"HTTP/1\.[01] (\d+)", head)
        hdrs = {}
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            hdrs[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        return (int(m.group(1)) if m else None), hdrs, body

    def options(self, timeout=1.0):
        s = self.udp[0]
        cid = "probe-%x@netfuzz" % random.getrandbits(48)
        msg = ("OPTIONS sip:srs@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKp%x;rport\r\n"
               "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:srs@127.0.0.1>\r\n"
               "Call-ID: %s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n") % (
                   self.sip_port, s.getsockname()[1], random.getrandbits(48), cid)
        s.sendto(msg.encode(), (LOCAL, self.sip_port))
        got = []
        self.pump(timeout, until=lambda: bool(got), probe=(cid, got))
        return bool(got)

    def live(self):
        for _ in range(3):
            if self.options(1.5):
                break
        else:
            return "SIP OPTIONS unanswered (3 x 1.5 s)"
        st = self.http("GET", "/api/v1/status")[0]
        if st != 200:
            return "GET /api/v1/status: %s" % st
        return None

    def oracle(self):
        if self.range_oddities:
            o, self.range_oddities = self.range_oddities[0], []
            return o
        return None

    # ---------------------------------------------------------- SIP wire

    def sock_of(self, s):
        return self.udp[zlib.crc32(s.key.encode()) % len(self.udp)]

    def send(self, s, data, mut=None):
        if mut is not None:
            data = Mutator.bytes_mut(data, mut)
        if s.transport == "tcp":
            if s.conn is None:
                try:
                    s.conn = socket.create_connection((LOCAL, self.sip_port), timeout=2)
                    s.conn.setblocking(False)
                except OSError:
                    return
            try:
                s.conn.sendall(data)
            except OSError:
                s.conn.close()
                s.conn = None
        else:
            self.sock_of(s).sendto(data, (LOCAL, self.sip_port))

    def req(self, s, method, body="", ctype=None, cseq=None, branch=None, extra=()):
        if s.transport == "tcp" and s.conn is not None:
            lp, tp = s.conn.getsockname()[1], "TCP"
        else:
            lp, tp = self.sock_of(s).getsockname()[1], "UDP"
        if cseq is None:
            s.cseq += 1
            cseq = s.cseq
        branch = branch or "z9hG4bK%x" % random.getrandbits(48)
        to = "<sip:srs@127.0.0.1:%d>" % self.sip_port + (";tag=" + s.totag if s.totag else "")
        ruri = s.rtarget if s.totag and s.rtarget else "sip:srs@127.0.0.1:%d" % self.sip_port
        h = ["%s %s SIP/2.0" % (method, ruri),
             "Via: SIP/2.0/%s 127.0.0.1:%d;branch=%s;rport" % (tp, lp, branch),
             "Max-Forwards: 70", "From: <sip:src@127.0.0.1:%d>;tag=%s" % (lp, s.ftag),
             "To: " + to, "Call-ID: " + s.callid, "CSeq: %d %s" % (cseq, method),
             "Contact: <sip:src@127.0.0.1:%d;transport=%s>;+sip.src" % (lp, tp.lower())] + list(extra)
        if ctype:
            h.append("Content-Type: " + ctype)
        h.append("Content-Length: %d" % len(body.encode()))
        return ("\r\n".join(h) + "\r\n\r\n" + body).encode()

    def pump(self, secs, until=None, probe=None):
        end = time.monotonic() + secs
        while True:
            left = end - time.monotonic()
            if left <= 0 or (until and until()):
                return
            conns = [s.conn for s in self.sess.values() if s.conn]
            rd, _, _ = select.select(self.udp + conns, [], [], left)
            for sock in rd:
                if sock in self.udp:
                    try:
                        data = sock.recv(65535)
                    except OSError:
                        continue
                    self.handle(data, sock, probe)
                    continue
                s = next((x for x in self.sess.values() if x.conn is sock), None)
                try:
                    d = sock.recv(65536)
                except OSError:
                    d = b""
                if s is None:
                    continue
                if not d:
                    sock.close()
                    s.conn = None
                    continue
                s.buf += d
                while True:
                    head, sep, rest = s.buf.partition(b"\r\n\r\n")
                    if not sep:
                        break
                    cl = re.search(rb"(?im)^(?:content-length|l):\s*(\d+)", head)
                    n = int(cl.group(1)) if cl else 0
                    if len(rest) < n:
                        break
                    self.handle(head + b"\r\n\r\n" + rest[:n], None, probe, s)
                    s.buf = rest[n:].lstrip(b"\r\n")

    def handle(self, data, udp, probe, tcp_sess=None):
        m = sip_parse(data)
        if m is None:
            return
        cid = m["hdr"].get("call-id")
        if probe and cid == probe[0]:
            probe[1].append(m)
            return
        s = tcp_sess or next((x for x in self.sess.values() if x.callid == cid), None)
        if s is None:
            return
        self.rx += 1
        if m["code"] is None:           # a request from the recorder: BYE, say
            self.stats.reply("SRS sent %s" % m["method"])
            if m["method"] != "ACK":
                h = ["SIP/2.0 200 OK"] + ["Via: " + v for k, v in m["hdrs"] if k == "via"]
                h += ["From: " + m["hdr"].get("from", ""), "To: " + m["hdr"].get("to", ""),
                      "Call-ID: " + cid, "CSeq: " + m["cseq"], "Content-Length: 0"]
                self.send(s, ("\r\n".join(h) + "\r\n\r\n").encode())
            if m["method"] == "BYE":
                self.media_off(s)
            return
        self.stats.reply("SRS answered %d" % (m["code"] // 100 * 100))
        if DEBUG and m["code"] >= 400:
            print("  SRS: %s (%s)" % (m["first"], m["cseq"]))
        if m["method"] == "INVITE":
            if 200 <= m["code"] < 300:
                t = re.search(r";\s*tag=([^;>\s]+)", m["hdr"].get("to", ""))
                if t:
                    s.totag = t.group(1)
                ct = re.search(r"<([^>]+)>", m["hdr"].get("contact", ""))
                if ct:
                    s.rtarget = ct.group(1)
                ports = [(int(p), k) for k, p in re.findall(r"^m=(\w+) (\d+)", m["body"], re.M)]
                s.ports = [(p, k) for p, k in ports if 0 < p < 65535]
                if s.media:
                    self.media_on(s)
            elif m["code"] >= 300 and s.inv:
                self.send(s, self.req(s, "ACK", cseq=s.inv[1], branch=s.inv[0]))
        if m["method"] == "BYE" and m["code"] >= 200:
            self.media_off(s)

    # ---------------------------------------------------------- media

    def media_on(self, s):
        s.media = True
        for p, k in s.ports:
            for d in (((LOCAL, p), k), ((LOCAL, p + 1), "rtcp")):
                if d not in self.dests:
                    self.dests.append(d)
        del self.dests[:-64]

    def media_off(self, s):
        s.media = False
        gone = set((LOCAL, p) for p, _ in s.ports) | set((LOCAL, p + 1) for p, _ in s.ports)
        self.dests = [d for d in self.dests if d[0] not in gone]

    def flow(self, on, pps=1000):
        nfcommon.flood_switch(self, Flood, on, pps)

    # ---------------------------------------------------------- steps

    def body(self, st, s):
        r = random.Random(st.get("seed", 0))
        port = self.media.getsockname()[1]
        n = st.get("lines", 4)
        streams = AV4[:n]
        dirn = st.get("dir", "sendonly")
        sdp = siprec_sdp([port] * n, streams=streams, direction=dirn, version=s.cseq + 1)
        kind = st.get("body", "multipart")
        if kind == "sdp":
            return "application/sdp", sdp
        if kind == "datafile" and self.metas:
            meta = r.choice(self.metas)
        else:
            parts = [(PART_A, "sip:alice@example.com", "Alice", [str(i + 1) for i in range(n)][:2], []),
                     (PART_B, "sip:bob@example.com", "Bob", [str(i + 1) for i in range(n)][2:], [])]
            meta = siprec_metadata(parts, datamode="partial" if kind == "partial" else "complete")
        if kind == "meta-only":
            return multipart([("application/rs-metadata", meta, ["Content-Disposition: recording-session"])])
        return multipart([("application/sdp", sdp, []),
                          ("application/rs-metadata", meta, ["Content-Disposition: recording-session"])])

    def sess_of(self, st):
        s = self.sess.get(st["s"])
        if s is None:
            s = self.sess[st["s"]] = Sess(st["s"], st.get("tp", "udp"))
            while len(self.sess) > 80:
                old = self.sess.pop(next(iter(self.sess)))
                self.media_off(old)
                if old.conn:
                    old.conn.close()
        return s

    def run_step(self, st):
        op = st["op"]
        rx0 = self.rx
        wait = 0.01
        if op in ("inv", "ack", "bye", "cancel", "req", "media"):
            s = self.sess_of(st)
            if s.transport == "tcp" and s.conn is None and op != "media":
                try:
                    s.conn = socket.create_connection((LOCAL, self.sip_port), timeout=2)
                    s.conn.setblocking(False)
                except OSError:
                    pass
        if op == "inv":
            ctype, body = self.body(st, s)
            branch = "z9hG4bK%x" % random.getrandbits(48)
            s.cseq += 1
            extra = ["Require: siprec", "Accept: application/sdp, application/rs-metadata"]
            data = self.req(s, "INVITE", body, ctype, cseq=s.cseq, branch=branch, extra=extra)
            s.inv = (branch, s.cseq)
            self.send(s, data, st.get("mut"))
            self.stats.count("sip INVITE (%s)" % s.transport + (" mutated" if st.get("mut") is not None else ""))
            wait = -1.0
        elif op == "ack":
            if not s.inv:
                return
            self.send(s, self.req(s, "ACK", cseq=s.inv[1]))
            self.stats.count("sip ACK")
        elif op == "bye":
            self.send(s, self.req(s, "BYE"), st.get("mut"))
            self.stats.count("sip BYE")
            wait = -0.5
        elif op == "cancel":
            if not s.inv:
                return
            totag, s.totag = s.totag, None
            self.send(s, self.req(s, "CANCEL", cseq=s.inv[1], branch=s.inv[0]))
            s.totag = totag
            self.stats.count("sip CANCEL")
            wait = -0.3
        elif op == "req":
            body, ctype = "", None
            if st["m"] == "UPDATE":
                ctype, body = self.body(st, s)
            elif st["m"] == "INFO":
                ctype, body = "application/dtmf-relay", "Signal=5\r\n"
            self.send(s, self.req(s, st["m"], body, ctype), st.get("mut"))
            self.stats.count("sip " + st["m"])
            wait = -0.3
        elif op == "media":
            if st["on"]:
                self.media_on(s)
            else:
                self.media_off(s)
        elif op == "flow":
            self.flow(st["on"], st.get("pps", 1000))
        elif op == "api":
            self.api_step(st)
        elif op == "raw":
            self.udp[0].sendto(bytes.fromhex(st["hex"]), (LOCAL, self.sip_port))
            self.stats.count("sip raw")
        elif op == "wait":
            wait = st["ms"] / 1000.0
        if wait < 0:
            self.pump(-wait, until=lambda: self.rx > rx0)
            wait = 0.005
        self.pump(wait)

    def api_step(self, st):
        kind = st["kind"]
        r = random.Random(st.get("seed", 0))
        if kind == "search":
            st_, _, body = self.http("GET", "/api/v1/recordings" + st.get("q", ""))
            self.stats.count("http search")
            if st_ == 200:
                try:
                    recs = json.loads(body.decode()).get("recordings") or []
                    self.ids = [(x.get("id"), [f.get("name") for f in x.get("files") or []])
                                for x in recs if isinstance(x, dict)][:50] or self.ids
                except (ValueError, AttributeError):
                    pass
            return
        if kind == "status":
            self.http("GET", "/api/v1/status", token=st.get("token", True))
            self.stats.count("http status")
            return
        if not self.ids:
            return
        rid, files = r.choice(self.ids)
        if not rid:
            return
        if kind == "details":
            self.http("GET", "/api/v1/recordings/" + rid)
            self.stats.count("http details")
        elif kind == "delete":
            self.http("DELETE", "/api/v1/recordings/" + rid)
            self.stats.count("http delete")
        elif kind == "download" and files:
            name = r.choice(files)
            rng = st.get("range")
            hdrs = ["Range: " + rng] if rng else []
            code, h, body = self.http("GET", "/api/v1/recordings/%s/files/%s" % (rid, name), headers=hdrs,
                                      want_body=r.random() < 0.5)
            self.stats.count("http download" + (" (Range)" if rng else ""))
            self.stats.reply("download %s" % code)
            nums = re.findall(r"\d+", rng or "")
            if code == 200 and rng and re.fullmatch(r"bytes=\d*-\d*", rng) and any(len(x) > 18 for x in nums):
                self.range_oddities.append("long Range ignored: %s answered 200 with the whole file (want 416 or 206)" % rng[:40])

    def end_scenario(self):
        self.pump(0.02)

    # ---------------------------------------------------------- generation

    rx = 0

    def generate(self, r, sid):
        steps = []
        for k in range(r.choice((1, 1, 2, 3))):
            key = "s%dk%d" % (sid, k)
            steps += self.gen_session(r, key) if r.random() < 0.85 else self.gen_cancel(r, key)
        if r.random() < 0.4:
            steps += self.gen_api(r)
        if any(st["op"] == "media" for st in steps):
            steps.insert(0, {"op": "flow", "on": True, "pps": r.choice((300, 1000, 3000, 5000))})
            steps.append({"op": "flow", "on": False})
        steps = mutate_steps(r, steps, movable=lambda s: s["op"] != "flow")
        for st in steps:
            if st["op"] in ("inv", "req", "bye") and r.random() < 0.04:
                st["mut"] = r.randrange(1 << 30)
        if r.random() < 0.04:
            steps.insert(r.randrange(len(steps) + 1),
                         {"op": "raw", "hex": bytes(r.randrange(256) for _ in range(r.randrange(1, 300))).hex()})
        return steps

    def inv(self, r, key, tp, **kw):
        st = {"op": "inv", "s": key, "tp": tp, "lines": r.choice((1, 2, 4, 4, 4)),
              "body": r.choice(("multipart",) * 6 + ("sdp", "partial", "datafile", "meta-only")),
              "seed": r.randrange(1 << 20)}
        st.update(kw)
        return st

    def gen_session(self, r, key):
        tp = "tcp" if r.random() < 0.3 else "udp"
        first = self.inv(r, key, tp)
        n = first["lines"]
        out = [first, {"op": "ack", "s": key}, {"op": "media", "s": key, "on": True},
               {"op": "wait", "ms": r.choice((30, 100, 300, 600))}]
        for _ in range(r.randrange(4)):
            c = r.randrange(5)
            if c == 0:      # pause and resume
                out += [self.inv(r, key, tp, dir="inactive", body="partial", lines=n), {"op": "ack", "s": key},
                        {"op": "wait", "ms": r.choice((20, 200))},
                        self.inv(r, key, tp, dir="sendonly", body="partial", lines=n), {"op": "ack", "s": key}]
            elif c == 1:    # fewer (or more) lines
                out += [self.inv(r, key, tp, dir=r.choice(("sendonly", "recvonly", "inactive"))),
                        {"op": "ack", "s": key}]
            elif c == 2:
                out.append({"op": "req", "s": key, "m": r.choice(("UPDATE", "OPTIONS", "INFO", "MESSAGE")),
                            "lines": r.choice((1, 4)), "body": "partial"})
            elif c == 3:
                out.append({"op": "wait", "ms": r.choice((50, 300))})
            else:
                out.append({"op": "media", "s": key, "on": r.random() < 0.5})
        if r.random() < 0.9:
            out.append({"op": "bye", "s": key})     # while the media still flows
        if r.random() < 0.3:
            out.append({"op": "media", "s": key, "on": False})
        return out

    def gen_cancel(self, r, key):
        tp = "tcp" if r.random() < 0.3 else "udp"
        out = [self.inv(r, key, tp), {"op": "cancel", "s": key}, {"op": "media", "s": key, "on": True},
               {"op": "ack", "s": key}, {"op": "bye", "s": key}]
        r.shuffle(out[1:])
        return out

    def gen_api(self, r):
        out = [{"op": "api", "kind": "search",
                "q": r.choice(("", "?limit=5", "?state=complete", "?media=video", "?participant=alice",
                               "?limit=0", "?limit=99999999999999999999", "?offset=-1",
                               "?from=1e308&to=nan", "?call_id=%00", "?x=1", "?limit=1&limit=2",
                               "?participant=" + "%41" * 500))}]
        for _ in range(r.randrange(1, 4)):
            k = r.choice(("download", "download", "download", "details", "status", "delete"))
            st = {"op": "api", "kind": k, "seed": r.randrange(1 << 20)}
            if k == "download" and r.random() < 0.7:
                st["range"] = r.choice(("bytes=0-99", "bytes=-10", "bytes=100-", "bytes=0-0,5-9",
                                        "bytes=5-1", "bytes=0-99999999999999999999999",
                                        "bytes=123456789012345678901-", "bytes=-1234567890123456789012",
                                        "bytes=%d-" % r.randrange(1 << 20), "bytes=abc", "items=0-1"))
            if k == "status":
                st["token"] = r.choice((True, False, "bad"))
            out.append(st)
        return out
