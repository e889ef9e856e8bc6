"""Shared helpers for tally's ng-driven integration tests (python3 stdlib only).

The daemon under test is tally-media ($TALLY_MEDIA) unless
TALLY_NG_TARGET=rtpengine, which runs the same script against
/usr/bin/rtpengine (or $RTPENGINE) so the harness and the assertions can be
checked against the reference implementation.

Pieces: bencode, NgClient (ng over UDP), free ports, Daemon (start, wait for
pong, log capture, stop by pid), RtpPeer/Party (RTP+RTCP sockets, RTP/RTCP
builders and parsers incl. PLI/FIR), SDP builder/parser, Call (offer/answer
between two parties) and a tiny test runner.
"""

import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

LOOPBACK = "127.0.0.1"
TARGET = os.environ.get("TALLY_NG_TARGET", "tally-media")
IS_RTPENGINE = TARGET == "rtpengine"


# --------------------------------------------------------------------------
# bencode

def bencode(obj):
    if isinstance(obj, bool):
        obj = int(obj)
    if isinstance(obj, int):
        return b"i%de" % obj
    if isinstance(obj, str):
        obj = obj.encode("utf-8", "surrogateescape")
    if isinstance(obj, (bytes, bytearray)):
        return b"%d:%s" % (len(obj), bytes(obj))
    if isinstance(obj, (list, tuple)):
        return b"l" + b"".join(bencode(x) for x in obj) + b"e"
    if isinstance(obj, dict):
        items = sorted(((k.encode() if isinstance(k, str) else bytes(k)), v)
                       for k, v in obj.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError("cannot bencode %r" % type(obj))


class BencodeError(ValueError):
    pass


def _bdecode(data, i):
    if i >= len(data):
        raise BencodeError("truncated")
    c = data[i:i + 1]
    if c == b"i":
        j = data.index(b"e", i)
        return int(data[i + 1:j]), j + 1
    if c == b"l":
        i += 1
        out = []
        while data[i:i + 1] != b"e":
            if i >= len(data):
                raise BencodeError("truncated list")
            v, i = _bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while data[i:i + 1] != b"e":
            if i >= len(data):
                raise BencodeError("truncated dict")
            k, i = _bdecode(data, i)
            v, i = _bdecode(data, i)
            out[k if isinstance(k, str) else str(k)] = v
        return out, i + 1
    if c.isdigit():
        j = data.index(b":", i)
        n = int(data[i:j])
        s = data[j + 1:j + 1 + n]
        if len(s) != n:
            raise BencodeError("truncated string")
        return s.decode("utf-8", "surrogateescape"), j + 1 + n
    raise BencodeError("bad bencode byte %r at %d" % (c, i))


def bdecode(data):
    try:
        v, i = _bdecode(bytes(data), 0)
    except (ValueError, IndexError) as e:
        raise BencodeError(str(e))
    return v


# --------------------------------------------------------------------------
# ng client

class NgError(AssertionError):
    pass


class NgClient:
    def __init__(self, port, host=LOOPBACK, timeout=1.0, retries=3):
        self.addr = (host, port)
        self.timeout = timeout
        self.retries = retries
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))

    def close(self):
        self.sock.close()

    def new_cookie(self):
        return "%08x%04x" % (random.getrandbits(32), random.getrandbits(16))

    def raw(self, payload, timeout=None, cookie=None):
        """Send a raw datagram; return the raw reply datagram that starts with
        `cookie` (if given) or the first datagram received, or None."""
        self.sock.sendto(payload, self.addr)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return None
            data, _ = self.sock.recvfrom(65535)
            if cookie is None or data.startswith(cookie.encode() + b" "):
                return data

    def request(self, msg, timeout=None, retries=None, cookie=None):
        """Send a dict; return the decoded reply dict (retransmits with the
        same cookie; raises NgError when there is no answer)."""
        cookie = cookie or self.new_cookie()
        payload = cookie.encode() + b" " + bencode(msg)
        tries = (self.retries if retries is None else retries) + 1
        for _ in range(tries):
            data = self.raw(payload, timeout=timeout, cookie=cookie)
            if data is not None:
                body = data[len(cookie) + 1:]
                reply = bdecode(body)
                if not isinstance(reply, dict):
                    raise NgError("reply is not a dict: %r" % body[:200])
                return reply
        raise NgError("no ng reply to %s" % msg.get("command"))

    def ok(self, msg, **kw):
        """request() and assert result ok (or pong)."""
        reply = self.request(msg, **kw)
        if reply.get("result") not in ("ok", "pong"):
            raise NgError("%s failed: %r" % (msg.get("command"), short(reply)))
        return reply


def short(obj, n=600):
    s = repr(obj)
    return s if len(s) <= n else s[:n] + "..."


# --------------------------------------------------------------------------
# ports

def port_free(port, kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind((LOOPBACK, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A free UDP port (also free for TCP) from the ephemeral range."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((LOOPBACK, 0))
        p = s.getsockname()[1]
        s.close()
        if port_free(p, socket.SOCK_STREAM):
            return p
    raise RuntimeError("no free port")


def udp_ports_in_use():
    """Local UDP ports bound on this host (from /proc/net/udp{,6})."""
    used = set()
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    local = line.split()[1]
                    used.add(int(local.rsplit(":", 1)[1], 16))
        except (OSError, ValueError, IndexError, StopIteration):
            pass
    return used


def free_port_block(n=200, lo=10000, hi=30000):
    """An even base port with n contiguous free UDP ports, preferably below
    the ephemeral range (so the test's own port-0 sockets never collide);
    the host may be crowded (benchmarks), so look at what is bound instead
    of guessing. Returns (port_min, port_max)."""
    used = udp_ports_in_use()
    for want, (a, b) in ((n, (lo, hi)), (n, (1024, 65535)), (max(40, n // 4), (1024, 65535))):
        starts = []
        run_start = None
        for p in range(a, b + 1):
            if p in used:
                run_start = None
                continue
            if run_start is None:
                run_start = p + (p & 1)
            if p - run_start + 1 >= want and (p - run_start + 1 - want) % 64 == 0:
                starts.append(p - want + 1)
        random.shuffle(starts)
        for base in starts[:50]:
            if all(port_free(p) for p in range(base, base + want)):
                return base, base + want - 1
    raise RuntimeError("no free block of %d UDP ports (%d ports in use)" % (n, len(used)))


# --------------------------------------------------------------------------
# daemon

def default_tally_media():
    """Without $TALLY_MEDIA (running a script by hand): the newest
    <repo>/build*/src/media/tally-media."""
    import glob
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    found = [p for p in glob.glob(os.path.join(root, "build*", "src", "media", "tally-media"))
             if os.access(p, os.X_OK)]
    return max(found, key=os.path.getmtime) if found else None


class Daemon:
    """Starts tally-media (or rtpengine) with rtpengine-style options on
    loopback and free ports; stop() kills exactly the process it started."""

    def __init__(self, timeout=60, nports=200, extra=None, log_level=None,
                 name="daemon"):
        self.ng_port = free_port()
        self.port_min, self.port_max = free_port_block(nports)
        self.timeout = timeout
        self.extra = list(extra or [])
        self.logdir = tempfile.mkdtemp(prefix="tally-it-")
        self.logpath = os.path.join(self.logdir, name + ".log")
        self.proc = None
        if IS_RTPENGINE:
            self.binary = os.environ.get("RTPENGINE", "/usr/bin/rtpengine")
            self.log_level = log_level or 6
        else:
            self.binary = os.environ.get("TALLY_MEDIA") or default_tally_media()
            if not self.binary:
                raise RuntimeError("TALLY_MEDIA is not set and no build*/src/media/tally-media found")
            self.log_level = log_level or 7

    def argv(self):
        a = [self.binary, "--config-file=none", "--interface=" + LOOPBACK,
             "--listen-ng=%s:%d" % (LOOPBACK, self.ng_port),
             "--port-min=%d" % self.port_min, "--port-max=%d" % self.port_max,
             "--foreground", "--log-level=%d" % self.log_level,
             "--timeout=%d" % self.timeout]
        if IS_RTPENGINE:
            a += ["--table=-1", "--delete-delay=0", "--log-stderr",
                  "--num-threads=2", "--endpoint-learning=immediate"]
        else:
            # e.g. TALLY_MEDIA_ARGS=--io-uring=yes: same tests, other variant
            a += os.environ.get("TALLY_MEDIA_ARGS", "").split()
        return a + self.extra

    def start(self, wait=10.0):
        self.logf = open(self.logpath, "ab")
        print("# started: %s" % " ".join(self.argv()), flush=True)
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        self.ng = NgClient(self.ng_port, timeout=0.3, retries=0)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s at start\n%s" % (
                    self.binary, self.proc.returncode, self.log_tail()))
            try:
                if self.ng.request({"command": "ping"}).get("result") == "pong":
                    self.ng.timeout, self.ng.retries = 1.0, 3
                    return self
            except (NgError, BencodeError):
                pass
        self.stop()
        raise RuntimeError("%s did not answer ping within %.0fs\n%s" % (
            self.binary, wait, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        rc = self.proc.returncode
        self.proc = None
        try:
            self.ng.close()
        except Exception:
            pass
        self.logf.close()
        return rc

    def log_tail(self, n=40):
        try:
            with open(self.logpath, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("  | " + l for l in lines[-n:])

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, *exc):
        self.stop()
        if exc_type is None:
            self.remove_log()

    def remove_log(self):
        """Drop the log directory (kept when something failed)."""
        import shutil
        shutil.rmtree(self.logdir, ignore_errors=True)


# --------------------------------------------------------------------------
# RTP / RTCP

def rtp_packet(seq, ts, ssrc, payload, pt=0, marker=False):
    b0 = 0x80
    b1 = (0x80 if marker else 0) | (pt & 0x7F)
    return struct.pack("!BBHII", b0, b1, seq & 0xFFFF, ts & 0xFFFFFFFF,
                       ssrc & 0xFFFFFFFF) + payload


def parse_rtp(data):
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
    return {"pt": b1 & 0x7F, "marker": bool(b1 & 0x80), "seq": seq, "ts": ts,
            "ssrc": ssrc, "payload": data[12 + 4 * (b0 & 0x0F):]}


def rtcp_sr(ssrc, count, rtp_ts=0, packets=0, octets=0):
    """A sender report whose NTP timestamp carries `count` (so every packet
    is distinct)."""
    body = struct.pack("!IIIIII", ssrc, 0x83AA7E80 + count, count * 1000,
                       rtp_ts & 0xFFFFFFFF, packets, octets)
    return struct.pack("!BBH", 0x80, 200, len(body) // 4) + body


def rtcp_rr(ssrc, report_ssrc=None, count=0):
    if report_ssrc is None:
        body = struct.pack("!I", ssrc)
        return struct.pack("!BBH", 0x80, 201, 1) + body
    block = struct.pack("!IIIIII", report_ssrc, count & 0xFFFFFF, count, 0, 0, 0)
    body = struct.pack("!I", ssrc) + block
    return struct.pack("!BBH", 0x81, 201, len(body) // 4) + body


def rtcp_pli(sender_ssrc, media_ssrc):
    return struct.pack("!BBHII", 0x80 | 1, 206, 2, sender_ssrc, media_ssrc)


def rtcp_fir(sender_ssrc, media_ssrc, seqnr=1):
    # RFC 5104: media source SSRC in the common header is 0, FCI carries it
    return struct.pack("!BBHIIIBBH", 0x80 | 4, 206, 4, sender_ssrc, 0,
                       media_ssrc, seqnr & 0xFF, 0, 0)


def parse_rtcp(data):
    """Split a (compound) RTCP datagram: list of dicts with pt, fmt, ssrc
    (sender), media_ssrc (PSFB/RTPFB) and fir_ssrcs (FIR FCI entries)."""
    out = []
    i = 0
    while i + 4 <= len(data):
        b0, pt, length = struct.unpack("!BBH", data[i:i + 4])
        if b0 >> 6 != 2:
            return None
        end = i + 4 * (length + 1)
        if end > len(data):
            return None
        pkt = {"pt": pt, "fmt": b0 & 0x1F, "raw": data[i:end]}
        if end - i >= 8:
            pkt["ssrc"] = struct.unpack("!I", data[i + 4:i + 8])[0]
        if pt in (205, 206) and end - i >= 12:
            pkt["media_ssrc"] = struct.unpack("!I", data[i + 8:i + 12])[0]
            if pt == 206 and pkt["fmt"] == 4:
                pkt["fir_ssrcs"] = [struct.unpack("!I", data[j:j + 4])[0]
                                    for j in range(i + 12, end - 7, 8)]
        out.append(pkt)
        i = end
    return out if i == len(data) and out else None


def is_keyframe_request(data, ssrc):
    """True if datagram is RTCP containing a PLI for ssrc or a FIR naming it."""
    pkts = parse_rtcp(data)
    if not pkts:
        return False
    for p in pkts:
        if p["pt"] == 206 and p["fmt"] == 1 and p.get("media_ssrc") == ssrc:
            return True
        if p["pt"] == 206 and p["fmt"] == 4 and ssrc in p.get("fir_ssrcs", []):
            return True
    return False


def udp_socket(port=0, host=LOOPBACK):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((host, port))
    return s


def recv(sock, timeout):
    """One datagram (data, addr) or None after timeout seconds."""
    r, _, _ = select.select([sock], [], [], max(0.0, timeout))
    if not r:
        return None
    return sock.recvfrom(65535)


def drain(sock):
    n = 0
    while recv(sock, 0) is not None:
        n += 1
    return n


def collect(sock, want, timeout, match=None):
    """Receive until `want` datagrams (matching `match(data, addr)` if given)
    arrived or timeout; return the list of (data, addr)."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < want:
        got = recv(sock, deadline - time.monotonic())
        if got is None:
            break
        if match is None or match(*got):
            out.append(got)
    return out


class RtpPeer:
    """One media endpoint of a party: an RTP socket and (unless muxed) an
    RTCP socket on port + 1 (even/odd pair)."""

    def __init__(self, mux=False, split=False, host=LOOPBACK):
        """split: RTCP on an unrelated port (not RTP + 1), for a=rtcp:.
        host: another loopback address (127.0.0.0/8) to check c= rewriting."""
        self.mux = mux
        self.host = host
        for _ in range(100):
            rtp = udp_socket(0, host)
            port = rtp.getsockname()[1]
            if split and not mux:
                rtcp = udp_socket(0, host)
                if rtcp.getsockname()[1] == port + 1:
                    rtcp.close()
                    rtp.close()
                    continue
                self.rtp, self.rtcp = rtp, rtcp
                break
            if port % 2 or mux:
                if mux:
                    self.rtp, self.rtcp = rtp, rtp
                    break
                rtp.close()
                continue
            try:
                rtcp = udp_socket(port + 1, host)
            except OSError:
                rtp.close()
                continue
            self.rtp, self.rtcp = rtp, rtcp
            break
        else:
            raise RuntimeError("no free RTP/RTCP pair")
        self.port = self.rtp.getsockname()[1]
        self.rtcp_port = self.rtcp.getsockname()[1]
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts = random.getrandbits(32)
        # where this peer sends to (the daemon's ports advertised to it)
        self.remote_rtp = None
        self.remote_rtcp = None

    def close(self):
        self.rtp.close()
        if self.rtcp is not self.rtp:
            self.rtcp.close()

    def next_rtp(self, pt=0, payload=None, ts_step=160, marker=False):
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + ts_step) & 0xFFFFFFFF
        if payload is None:
            payload = struct.pack("!IH", self.ssrc, self.seq) + os.urandom(20)
        return rtp_packet(self.seq, self.ts, self.ssrc, payload, pt, marker)

    def send_rtp(self, data, dest=None, sock=None):
        (sock or self.rtp).sendto(data, dest or self.remote_rtp)

    def send_rtcp(self, data, dest=None, sock=None):
        (sock or self.rtcp).sendto(data, dest or self.remote_rtcp)

    def drain(self):
        drain(self.rtp)
        if self.rtcp is not self.rtp:
            drain(self.rtcp)


# --------------------------------------------------------------------------
# SDP

AUDIO_FMT = ["a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000",
             "a=fmtp:101 0-16"]
VIDEO_FMT = ["a=rtpmap:96 H264/90000",
             "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1",
             "a=rtcp-fb:96 nack", "a=rtcp-fb:96 nack pli",
             "a=rtcp-fb:96 ccm fir"]


def media_lines(kind, port, rtcp_port=None, mux=False, direction="sendrecv",
                extra=()):
    if kind == "audio":
        lines = ["m=audio %d RTP/AVP 0 101" % port] + AUDIO_FMT
    elif kind == "video":
        lines = ["m=video %d RTP/AVP 96" % port] + VIDEO_FMT
    else:
        raise ValueError(kind)
    if port == 0:
        return lines
    if mux:
        lines.append("a=rtcp-mux")
    elif rtcp_port is not None:
        lines.append("a=rtcp:%d" % rtcp_port)
    if direction:
        lines.append("a=" + direction)
    lines += list(extra)
    return lines


def build_sdp(media, version=1, sess_id=None, addr=LOOPBACK):
    """media: list of (kind, RtpPeer or None (=port 0), direction) or
    (kind, port, rtcp_port, mux, direction)."""
    sess_id = sess_id or random.randrange(1, 1 << 31)
    lines = ["v=0", "o=- %d %d IN IP4 %s" % (sess_id, version, addr),
             "s=tally-test", "c=IN IP4 %s" % addr, "t=0 0"]
    for m in media:
        if len(m) == 3:
            kind, peer, direction = m
            if peer is None:
                lines += media_lines(kind, 0)
            else:
                lines += media_lines(kind, peer.port, peer.rtcp_port, peer.mux,
                                     direction)
        else:
            lines += media_lines(*m)
    return "\r\n".join(lines) + "\r\n"


def parse_sdp(text):
    """Returns {'c': addr, 'origin': line, 'media': [ {kind, port, proto, fmts,
    addr, rtcp_port, mux, direction, label, attrs} ]}."""
    sess = {"c": None, "origin": None, "media": [], "attrs": []}
    cur = None
    for line in text.replace("\r\n", "\n").split("\n"):
        line = line.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        k, v = line[0], line[2:]
        if k == "o":
            sess["origin"] = v
        elif k == "m":
            parts = v.split()
            cur = {"kind": parts[0], "port": int(parts[1]), "proto": parts[2],
                   "fmts": parts[3:], "addr": None, "rtcp_port": None,
                   "rtcp_addr": None, "mux": False, "direction": "sendrecv",
                   "label": None, "attrs": []}
            sess["media"].append(cur)
        elif k == "c":
            addr = v.split()[-1].split("/")[0]
            if cur is None:
                sess["c"] = addr
            else:
                cur["addr"] = addr
        elif k == "a":
            (cur["attrs"] if cur else sess["attrs"]).append(v)
            if cur is None:
                continue
            name, _, val = v.partition(":")
            if name == "rtcp":
                p = val.split()
                cur["rtcp_port"] = int(p[0])
                if len(p) >= 4:
                    cur["rtcp_addr"] = p[3]
            elif name == "rtcp-mux":
                cur["mux"] = True
            elif name in ("sendrecv", "sendonly", "recvonly", "inactive"):
                cur["direction"] = name
            elif name == "label":
                cur["label"] = val
    for m in sess["media"]:
        if m["addr"] is None:
            m["addr"] = sess["c"]
        if m["rtcp_port"] is None:
            m["rtcp_port"] = m["port"] + 1
        if m["rtcp_addr"] is None:
            m["rtcp_addr"] = m["addr"]
    return sess


def endpoints(m):
    """(rtp addr, rtcp addr) tuples of a parsed m= line."""
    return (m["addr"], m["port"]), (m["rtcp_addr"], m["rtcp_port"])


# --------------------------------------------------------------------------
# a party and a call

class Party:
    """A SIP party: a tag and one RtpPeer per medium."""

    def __init__(self, name, kinds=("audio", "video"), mux=False, host=LOOPBACK):
        self.name = name
        self.host = host
        self.tag = "%s-%08x" % (name, random.getrandbits(32))
        self.kinds = list(kinds)
        self.peers = {k: RtpPeer(mux=mux, host=host) for k in kinds}
        self.version = 1
        self.sess_id = random.randrange(1, 1 << 31)

    def sdp(self, directions=None, zero=(), version=None):
        directions = directions or {}
        media = []
        for k in self.kinds:
            media.append((k, None if k in zero else self.peers[k],
                          directions.get(k, "sendrecv")))
        if version is None:
            self.version += 1
            version = self.version
        return build_sdp(media, version=version, sess_id=self.sess_id, addr=self.host)

    def learn(self, sdp_text):
        """Take the daemon's rewritten SDP that is given to this party: the
        ports to send to."""
        parsed = parse_sdp(sdp_text)
        for k, m in zip(self.kinds, parsed["media"]):
            if m["kind"] != k:
                raise AssertionError("m= line order changed: %s vs %s" % (m["kind"], k))
            p = self.peers[k]
            if m["port"] == 0:
                p.remote_rtp = p.remote_rtcp = None
            else:
                p.remote_rtp, p.remote_rtcp = endpoints(m)
                if m["mux"] and p.mux:
                    p.remote_rtcp = p.remote_rtp
        return parsed

    def close(self):
        for p in self.peers.values():
            p.close()


OFFER_OPTS = {"replace": ["origin", "session-connection"], "ICE": "remove"}


class Call:
    """Call-id with caller A and callee B, set up with offer + answer."""

    def __init__(self, ng, kinds=("audio", "video"), mux=False, flags=None,
                 call_id=None, hosts=(LOOPBACK, LOOPBACK)):
        self.ng = ng
        self.call_id = call_id or "call-%016x@tally-test" % random.getrandbits(64)
        mux_a, mux_b = mux if isinstance(mux, tuple) else (mux, mux)
        self.a = Party("A", kinds, mux_a, hosts[0])
        self.b = Party("B", kinds, mux_b, hosts[1])
        self.flags = list(flags or [])
        self.offer_reply = self.answer_reply = None

    def offer(self, sdp=None, **opts):
        msg = {"command": "offer", "call-id": self.call_id,
               "from-tag": self.a.tag, "sdp": sdp or self.a.sdp()}
        msg.update(OFFER_OPTS)
        if self.flags:
            msg["flags"] = self.flags
        msg.update(opts)
        r = self.ng.ok(msg)
        self.offer_reply = r
        self.offer_sdp = self.b.learn(r["sdp"])
        return self.offer_sdp

    def answer(self, sdp=None, **opts):
        msg = {"command": "answer", "call-id": self.call_id,
               "from-tag": self.a.tag, "to-tag": self.b.tag,
               "sdp": sdp or self.b.sdp()}
        msg.update(OFFER_OPTS)
        if self.flags:
            msg["flags"] = self.flags
        msg.update(opts)
        r = self.ng.ok(msg)
        self.answer_reply = r
        self.answer_sdp = self.a.learn(r["sdp"])
        return self.answer_sdp

    def setup(self):
        self.offer()
        self.answer()
        return self

    def query(self):
        return self.ng.ok({"command": "query", "call-id": self.call_id})

    def delete(self):
        return self.ng.request({"command": "delete", "call-id": self.call_id,
                                "from-tag": self.a.tag})

    def daemon_ports(self):
        ports = set()
        for party in (self.a, self.b):
            for p in party.peers.values():
                for ep in (p.remote_rtp, p.remote_rtcp):
                    if ep:
                        ports.add(ep[1])
        return ports

    def close(self):
        self.a.close()
        self.b.close()


REORDER_NOTED = set()


def in_order(got, sent, what=""):
    """got == sent. Against rtpengine (2 threads reading one socket, observed
    to reorder back-to-back packets) the same packets in any order pass, with
    a note; tally-media must keep the order."""
    if got == sent:
        return True
    if IS_RTPENGINE and sorted(got) == sorted(sent):
        if what not in REORDER_NOTED:
            REORDER_NOTED.add(what)
            print("  note: rtpengine reordered %s (tolerated for rtpengine only)" % what, flush=True)
        return True
    return False


def relay_leg(src, dst, n=50, rtcp=False, kind="audio", gap=0.0005,
              timeout=2.0, src_sock=None, expect_from=None, dst_sock=None):
    """Send n RTP (or RTCP) packets from RtpPeer src to its daemon port and
    assert that dst receives all of them, in order and byte-identical, from
    the daemon port advertised to dst. Returns the list of sent datagrams."""
    pt = 0 if kind == "audio" else 96
    step = 160 if kind == "audio" else 3000
    sent = []
    if dst_sock is None:
        dst_sock = dst.rtcp if rtcp else dst.rtp
    if expect_from is None:
        expect_from = dst.remote_rtcp if rtcp else dst.remote_rtp
    for i in range(n):
        if rtcp:
            d = rtcp_sr(src.ssrc, i + 1, src.ts, i, i * 100)
            src.send_rtcp(d, sock=src_sock)
        else:
            d = src.next_rtp(pt=pt, ts_step=step, marker=(i == 0))
            src.send_rtp(d, sock=src_sock)
        sent.append(d)
        if gap:
            time.sleep(gap)
    sent_set = set(sent)
    got = collect(dst_sock, n, timeout, match=lambda d, a: d in sent_set)
    what = "%s %s" % (kind, "RTCP" if rtcp else "RTP")
    if len(got) != n:
        raise AssertionError("%s: %d of %d packets arrived" % (what, len(got), n))
    data = [d for d, a in got]
    if not in_order(data, sent, what):
        i = next(k for k in range(n) if data[k] != sent[k])
        raise AssertionError("%s: reordered: packet %d of %d is sent #%d (seq %s, expected seq %s)"
                             % (what, i, n, sent.index(data[i]),
                                (parse_rtp(data[i]) or {}).get("seq"),
                                (parse_rtp(sent[i]) or {}).get("seq")))
    bad = [a for d, a in got if a != expect_from]
    if bad:
        raise AssertionError("%s: arrived from %s, advertised %s" % (what, bad[0], expect_from))
    return sent


def relay_all(call, n=50, rtcp=True, kinds=None):
    """Every leg of the call: A->B and B->A, each medium, RTP and RTCP."""
    for kind in kinds or call.a.kinds:
        for src, dst in ((call.a, call.b), (call.b, call.a)):
            relay_leg(src.peers[kind], dst.peers[kind], n, kind=kind)
            if rtcp:
                relay_leg(src.peers[kind], dst.peers[kind], n, rtcp=True, kind=kind)


def wait_until(cond, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(step)


def find_stream(query_reply, tag, local_port):
    """The query 'streams' entry of `tag` whose local port is local_port."""
    tags = query_reply.get("tags", {})
    if tag not in tags:
        raise AssertionError("tag %s not in query tags %s" % (tag, list(tags)))
    for m in tags[tag].get("medias", []):
        for s in m.get("streams", []):
            if int(s.get("local port", -1)) == local_port:
                return s
    raise AssertionError("no stream with local port %d for tag %s" % (local_port, tag))


# --------------------------------------------------------------------------
# runner

class Skip(Exception):
    pass


def skip_on_rtpengine(why="tally extension"):
    if IS_RTPENGINE:
        raise Skip(why + " (target rtpengine)")


def require(cond, msg):
    if not cond:
        raise AssertionError(msg)


def run(tests, daemon_factory=None, argv=None):
    """tests: list of functions f(daemon) (or f() when daemon_factory is None).
    One daemon is shared by the script; it is restarted if a test killed it.
    Prints ok/FAIL/skip per test and 'N passed, M failed'; exits 1 on failure."""
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        tests = [t for t in tests if t.__name__ in argv or t.__name__[5:] in argv]
    passed = failed = skipped = 0
    daemon = None
    start_error = None
    print("# target: %s" % TARGET, flush=True)
    try:
        for t in tests:
            if start_error:
                failed += 1
                print("FAIL %s: daemon not started: %s" % (t.__name__, start_error), flush=True)
                continue
            name = t.__name__
            t0 = time.monotonic()
            try:
                if daemon_factory is not None and (daemon is None or not daemon.alive()):
                    if daemon is not None:
                        daemon.stop()
                    daemon = None
                    try:
                        daemon = daemon_factory().start()
                    except Exception as e:
                        start_error = str(e).splitlines()[0]
                        raise
                t(daemon) if daemon_factory is not None else t()
                if daemon is not None and not daemon.alive():
                    raise AssertionError("daemon died (rc %s)" % daemon.proc.returncode)
                passed += 1
                print("ok %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
            except Skip as e:
                skipped += 1
                print("skip %s: %s" % (name, e), flush=True)
            except Exception as e:
                why = getattr(t, "rtpengine_xfail", None)
                if IS_RTPENGINE and why:
                    skipped += 1
                    print("xfail %s: known rtpengine behaviour (%s): %s" % (name, why, e),
                          flush=True)
                    continue
                failed += 1
                print("FAIL %s: %s" % (name, e), flush=True)
                if not isinstance(e, (AssertionError, NgError)):
                    traceback.print_exc(file=sys.stdout)
                if daemon is not None:
                    print("  log tail (%s):\n%s" % (daemon.logpath, daemon.log_tail(25)),
                          flush=True)
    finally:
        if daemon is not None:
            daemon.stop()
            if not failed:
                daemon.remove_log()
            else:
                print("# daemon log kept: %s" % daemon.logpath, flush=True)
    print("%d passed, %d failed%s" % (passed, failed,
          ", %d skipped" % skipped if skipped else ""), flush=True)
    sys.exit(1 if failed else 0)
