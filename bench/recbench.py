#!/usr/bin/env python3
"""
tally recorder bench: how many concurrent SIPREC audio+video sessions
tally-recorder takes with 0 packets lost between socket and disk, its CPU and
memory per session, and how fast it finalizes a recording; rtpengine
recording the same load (pcap recording method) in the same run as the
reference point.

What it does (bench/README.md, section "Recorder bench", explains every
figure):
  1. compiles bench/loadgen.c into build-recbench/ if needed and starts two
     loadgens on CPU 0 (one for the audio legs, one for the video legs: all
     legs of one loadgen run share a rate);
  2. per ladder step N and repetition: a fresh tally-recorder pinned to CPU 1
     (own storage, free SIP/HTTP ports, a free media port window), N SIPREC
     sessions set up over one TCP connection (INVITE with 4 m= lines +
     RFC 7865 metadata, ACK), then the load: 2N audio legs (172 B, 50 pps)
     and 2N video legs (1200 B, 1 Mbit/s) for --seconds; packets sent (the
     loadgens' reports) against media.written of GET /api/v1/status, kernel
     drops, write errors, bytes on disk; CPU from /proc, RSS;
  3. the same N sessions on rtpengine (--table=-1, --recording-method=pcap,
     `record call: yes`, `block media` so it records without relaying),
     interleaved with tally's repetitions: its CPU per packet recorded;
  4. finalize speed: a 60 s two-party A/V recording made with
     tests/tools/mkrtp.py, timed through `tally-recorder --finalize DIR`;
  5. a table, the verdicts against the targets, a JSON file and a final
     JSON line on stdout.

Loopback only; every port is picked at run time; every load is bounded in
time and stops by itself; only processes this script started are stopped,
by PID. Python 3 stdlib only; reuses bench/run.py's helpers.
"""

import argparse
import glob
import hashlib
import http.client
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import run  # noqa: E402  (the media bench: spawn bookkeeping, /proc, ng)
from run import log, cpu_ns, rss_kb, core_busy_ns, median  # noqa: E402

OUT = os.path.join(ROOT, "build-recbench")
MKRTP = os.environ.get("TALLY_MKRTP") or \
    os.path.join(ROOT, "tests", "tools", "mkrtp.py")
AUDIO_PPS, AUDIO_SIZE = 50.0, 172
VIDEO_SIZE = 1200
VIDEO_PPS = 1e6 / 8 / VIDEO_SIZE          # 1 Mbit/s of 1200-byte packets
PCAP_REC_OVERHEAD = 16 + 14 + 20 + 8      # record header, eth, IPv4, UDP
PORTS_PER_SESSION = 8                     # 4 streams x (RTP, RTCP)
TOKEN = "recbench-%d" % os.getpid()
LOADGEN_BOUND_PCT = 90.0
TARGETS = {"sessions": 300, "mem_per_session_kib": 2048, "finalize_x": 50}


# ------------------------------------------------------------ processes --

def spawn(argv, cpus, **kw):
    """Start argv (pinned to `cpus` with taskset, which execs: the pid is
    the program's), lifting its fd limit and applying --nice (run.py's
    preexec). Recorded in run.STARTED, which run.stop_all() ends by PID."""
    if cpus is not None:
        argv = ["taskset", "-c", str(cpus)] + argv
    p = subprocess.Popen(argv, preexec_fn=run.raise_nofile, **kw)
    run.STARTED.append(p)
    return p


def preexec_plain():
    """preexec for the finalizer and mkrtp.py: fd limit and --nice, never
    SCHED_FIFO (a long CPU-bound real-time process would starve the box)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if run.NICE[0]:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, run.NICE[0])
        except OSError:
            pass


def stop(p, grace=10.0):
    """SIGTERM by pid, SIGKILL after `grace`; -> seconds it took."""
    t0 = time.monotonic()
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            log("pid %d did not stop in %.0f s: SIGKILL" % (p.pid, grace))
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    if p in run.STARTED:
        run.STARTED.remove(p)
    return time.monotonic() - t0


def free_tcp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def free_port_both():
    """A port free for UDP and TCP (the recorder's SIP listens on both)."""
    for _ in range(100):
        p = free_tcp_port()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            u.close()
    raise RuntimeError("no port free for both UDP and TCP")


def media_window(width):
    """A 1000-aligned window of `width` ports for a daemon's media, chosen
    now: the one with the fewest UDP ports in use among those in 2000 ..
    the kernel's ephemeral range (where no bind(0) of another process can
    land later), else run.py's port_window over 2000-60999. A taken port makes
    the recorder refuse a session: say so when the window is not empty."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        eph_lo = 32768
    used = run.used_udp_ports()
    best = None
    # from 2000 up: the integration tests pick their blocks in 10000-30000
    for lo in range(2000, eph_lo - width + 1, 1000):
        n = sum(1 for p in used if lo <= p < lo + width)
        if best is None or n < best[0]:
            best = (n, lo, lo + width - 1)
    if best is None:
        best = (None,) + run.port_window(width, [], start=2000)
    lo, hi = best[1], best[2]
    n = sum(1 for p in run.used_udp_ports() if lo <= p <= hi)
    if n:
        log("warning: media window %d-%d has %d ports in use" % (lo, hi, n))
    return lo, hi


def thread_cpu(pid):
    """{thread name: ns on CPU} (schedstat) for every thread of pid."""
    out = {}
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                    name = f.read().strip()
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    ns = int(f.read().split()[0])
            except (OSError, ValueError):
                continue
            out["main" if int(tid) == pid else "%s/%s" % (name, tid)] = ns
    except OSError:
        pass
    return out


def proc_io(pid):
    """/proc/PID/io as a dict (syscw = write(2)-family calls, wchar =
    bytes they wrote); {} if unreadable."""
    try:
        with open("/proc/%d/io" % pid) as f:
            return {k: int(v) for k, v in
                    (line.split(":") for line in f if ":" in line)}
    except (OSError, ValueError):
        return {}


def du_pcaps(root, pattern):
    """(files, bytes) of the files matching root/pattern."""
    n = b = 0
    for p in glob.glob(os.path.join(root, pattern)):
        try:
            b += os.path.getsize(p)
            n += 1
        except OSError:
            pass
    return n, b


def pcap_count(path):
    """Records in a classic pcap (a truncated last record is not counted)
    -> (records, bytes of record payload incl. headers)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return 0, 0
    e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    i, n, unpack = 24, 0, struct.Struct(e + "8xI").unpack_from
    while i + 16 <= len(data):
        incl = unpack(data, i)[0]
        if i + 16 + incl > len(data):
            break
        i += 16 + incl
        n += 1
    return n, i - 24


# ------------------------------------------------------------- loadgens --

class Loadgen(run.Loadgen):
    """run.py's loadgen client (sock, leg, sync, run), started by our
    spawn() (pinning optional)."""

    def __init__(self, path, cpus):
        self.p = spawn([path], cpus, stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, text=True, bufsize=1)
        self.nsock = 0
        self.nleg = 0


class Loadgens:
    """Two loadgen processes (audio, video) on the generator CPU, a few
    source sockets each, one dummy receive socket each (nothing comes back;
    their loss figures are meaningless here), and for every video source
    socket a socket we own on its port + 1: the recorder sends RTCP
    PLI/FIR to the RTP source port + 1 of each video stream, and that must
    not land in somebody else's process."""

    def __init__(self, binary, cpus, nsrc=8):
        self.lg = {}
        self.src = {}
        self.rx = {}
        self.sinks = []
        self.pli = 0
        for kind in ("audio", "video"):
            lg = Loadgen(binary, cpus)
            self.lg[kind] = lg
            socks = lg.socks(4 * nsrc + 1)
            self.rx[kind] = socks[0][0]
            ours = {p for _, p in socks}
            good = []
            for idx, port in socks[1:]:
                if kind == "audio":
                    good.append(idx)
                elif port + 1 in ours:
                    good.append(idx)
                else:
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    try:
                        s.bind(("127.0.0.1", port + 1))
                        s.setblocking(False)
                        self.sinks.append(s)
                        good.append(idx)
                    except OSError:
                        s.close()
                if len(good) == nsrc:
                    break
            if not good:
                raise RuntimeError("no %s source socket whose port+1 we "
                                   "could hold" % kind)
            self.src[kind] = good

    def pid(self, kind):
        return self.lg[kind].p.pid

    def set_legs(self, kind, dst_ports, pt):
        """Replace this loadgen's legs by one per destination port."""
        lg = self.lg[kind]
        lg.send("clear")
        lg.nleg = 0
        src = self.src[kind]
        legs = [(src[i % len(src)], port, self.rx[kind], pt)
                for i, port in enumerate(dst_ports)]
        lg.add_legs(legs)
        return len(legs)

    def run(self, seconds, nlegs, sample=None):
        """Both loads at once for `seconds`; calls sample() about every
        0.5 s meanwhile; -> {kind: loadgen report}."""
        dur = int(seconds * 1000)
        todo = {}
        for kind, (pps, size) in (("audio", (AUDIO_PPS, AUDIO_SIZE)),
                                  ("video", (VIDEO_PPS, VIDEO_SIZE))):
            if not nlegs.get(kind):
                continue
            lg = self.lg[kind]
            lg.send("run 0 %d %.6f %d %d 0 0" % (nlegs[kind], pps, size,
                                                 dur))
            lg.p.stdin.flush()
            todo[lg.p.stdout] = kind
        out = {}
        deadline = time.monotonic() + seconds + 30
        while todo:
            if time.monotonic() > deadline:
                raise RuntimeError("loadgen did not report in time")
            r, _, _ = select.select(list(todo), [], [], 0.5)
            for f in r:
                line = f.readline()
                if not line:
                    raise RuntimeError("loadgen died")
                rep = json.loads(line)
                if "sent" not in rep:
                    raise RuntimeError("loadgen run: %s" % rep)
                out[todo.pop(f)] = rep
            if sample:
                sample()
        self.drain_sinks()
        return out

    def drain_sinks(self):
        """Read what arrived on the port+1 sockets (counted in self.pli)."""
        for s in self.sinks:
            try:
                while True:
                    s.recv(2048)
                    self.pli += 1
            except (BlockingIOError, OSError):
                pass

    def quit(self):
        for lg in self.lg.values():
            try:
                lg.send("quit")
                lg.p.stdin.flush()
            except OSError:
                pass
        for s in self.sinks:
            s.close()


# ------------------------------------------------------------------ SIP --

SDP_TMPL = ("v=0\r\no=recbench {sess} 1 IN IP4 127.0.0.1\r\ns=recbench\r\n"
            "c=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio {p} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:1\r\n"
            "a=sendonly\r\n"
            "m=video {p} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
            "a=fmtp:96 packetization-mode=1\r\na=label:2\r\na=sendonly\r\n"
            "m=audio {p} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:3\r\n"
            "a=sendonly\r\n"
            "m=video {p} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
            "a=fmtp:96 packetization-mode=1\r\na=label:4\r\na=sendonly\r\n")

META_TMPL = """<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
<datamode>complete</datamode>
<session session_id="{sid}"><sipSessionID>{cid}</sipSessionID></session>
<participant participant_id="cmJhLXtpfQ=="><nameID aor="sip:a{i}@example.com"><name>A {i}</name></nameID></participant>
<participant participant_id="cmJiLXtpfQ=="><nameID aor="sip:b{i}@example.com"><name>B {i}</name></nameID></participant>
<stream stream_id="c3QxLXtpfQ==" session_id="{sid}"><label>1</label></stream>
<stream stream_id="c3QyLXtpfQ==" session_id="{sid}"><label>2</label></stream>
<stream stream_id="c3QzLXtpfQ==" session_id="{sid}"><label>3</label></stream>
<stream stream_id="c3Q0LXtpfQ==" session_id="{sid}"><label>4</label></stream>
<participantstreamassoc participant_id="cmJhLXtpfQ=="><send>c3QxLXtpfQ==</send><send>c3QyLXtpfQ==</send><recv>c3QzLXtpfQ==</recv><recv>c3Q0LXtpfQ==</recv></participantstreamassoc>
<participantstreamassoc participant_id="cmJiLXtpfQ=="><send>c3QzLXtpfQ==</send><send>c3Q0LXtpfQ==</send><recv>c3QxLXtpfQ==</recv><recv>c3QyLXtpfQ==</recv></participantstreamassoc>
</recording>
"""
BOUNDARY = "recbench-boundary"
COMPACT = {"i": "call-id", "t": "to", "m": "contact", "l": "content-length",
           "f": "from", "v": "via", "c": "content-type"}


def sip_head(data):
    """One SIP message head -> (first line, {lower name: first value})."""
    lines = data.decode("utf-8", "replace").split("\r\n")
    hdr = {}
    for line in lines[1:]:
        if ":" not in line:
            continue
        k, v = line.split(":", 1)
        k = k.strip().lower()
        k = COMPACT.get(k, k)
        hdr.setdefault(k, v.strip())
    return lines[0], hdr


class SipSetup:
    """N SIPREC sessions over one TCP connection, INVITEs pipelined
    (`window` in flight), ACK on each 200."""

    def __init__(self, port, tag, timeout=60.0):
        self.port, self.tag, self.timeout = port, tag, timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.lport = self.sock.getsockname()[1]
        self.buf = b""

    def invite(self, i, sdp_port):
        cid = "recbench-%s-%d@127.0.0.1" % (self.tag, i)
        sid = "cmJzZXNz%08d" % i
        sdp = SDP_TMPL.format(sess=1000 + i, p=sdp_port)
        meta = META_TMPL.format(sid=sid, cid=cid, i=i)
        body = ("--%s\r\nContent-Type: application/sdp\r\n\r\n%s"
                "--%s\r\nContent-Type: application/rs-metadata+xml\r\n"
                "Content-Disposition: recording-session\r\n\r\n%s\r\n"
                "--%s--\r\n" % (BOUNDARY, sdp, BOUNDARY, meta, BOUNDARY)
                ).encode()
        head = (
            "INVITE sip:srs@127.0.0.1:%d;transport=tcp SIP/2.0\r\n"
            "Via: SIP/2.0/TCP 127.0.0.1:%d;branch=z9hG4bK-rb%s-%d\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:src@127.0.0.1>;tag=rbsrc%d\r\n"
            "To: <sip:srs@127.0.0.1:%d>\r\n"
            "Call-ID: %s\r\nCSeq: 1 INVITE\r\n"
            "Contact: <sip:src@127.0.0.1:%d;transport=tcp>;+sip.src\r\n"
            "Require: siprec\r\n"
            "Accept: application/sdp, application/rs-metadata\r\n"
            "Content-Type: multipart/mixed;boundary=%s\r\n"
            "Content-Length: %d\r\n\r\n" % (
                self.port, self.lport, self.tag, i, i, self.port, cid,
                self.lport, BOUNDARY, len(body)))
        return cid, head.encode() + body

    def ack(self, i, cid, hdr):
        m = re.search(r"<([^>]+)>", hdr.get("contact", ""))
        ruri = m.group(1) if m else \
            "sip:srs@127.0.0.1:%d;transport=tcp" % self.port
        return ("ACK %s SIP/2.0\r\n"
                "Via: SIP/2.0/TCP 127.0.0.1:%d;branch=z9hG4bK-rback%s-%d\r\n"
                "Max-Forwards: 70\r\n"
                "From: <sip:src@127.0.0.1>;tag=rbsrc%d\r\n"
                "To: %s\r\nCall-ID: %s\r\nCSeq: 1 ACK\r\n"
                "Content-Length: 0\r\n\r\n" % (
                    ruri, self.lport, self.tag, i, i, hdr.get("to", ""),
                    cid)).encode()

    def read_msgs(self, wait):
        """Messages read within `wait` s -> [(first line, hdr, body)]."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(1 << 20)
            if not data:
                raise RuntimeError("the recorder closed the SIP connection")
            self.buf += data
        except socket.timeout:
            pass
        out = []
        while True:
            k = self.buf.find(b"\r\n\r\n")
            if k < 0:
                break
            if self.buf[:k].strip() == b"":        # keep-alive CRLFs
                self.buf = self.buf[k + 4:]
                continue
            first, hdr = sip_head(self.buf[:k])
            clen = int(hdr.get("content-length", "0") or 0)
            if len(self.buf) < k + 4 + clen:
                break
            body = self.buf[k + 4:k + 4 + clen]
            self.buf = self.buf[k + 4 + clen:]
            out.append((first, hdr, body))
        return out

    def setup(self, n, sdp_port, window=64):
        """-> (sessions: [[4 ports]], failures: {reason: count})."""
        pending = {}           # call-id -> index
        ports = [None] * n
        fails = {}
        nxt = 0
        deadline = time.monotonic() + self.timeout
        while nxt < n or pending:
            if time.monotonic() > deadline:
                fails["no final response in %.0f s" % self.timeout] = \
                    len(pending) + (n - nxt)
                break
            out = b""
            while nxt < n and len(pending) < window:
                cid, msg = self.invite(nxt, sdp_port)
                pending[cid] = nxt
                out += msg
                nxt += 1
            if out:
                self.sock.sendall(out)
            acks = b""
            for first, hdr, body in self.read_msgs(0.2):
                if not first.startswith("SIP/2.0 "):
                    continue          # a request from the recorder: none
                code = int(first.split()[1])
                cid = hdr.get("call-id", "")
                if code < 200 or cid not in pending:
                    continue
                i = pending.pop(cid)
                if code >= 300:
                    why = first[8:]
                    fails[why] = fails.get(why, 0) + 1
                    continue
                acks += self.ack(i, cid, hdr)
                mports = [int(x) for x in re.findall(
                    rb"^m=\w+ (\d+) ", body, re.M)]
                if len(mports) != 4 or 0 in mports:
                    why = "200 with m= ports %s" % mports
                    fails[why] = fails.get(why, 0) + 1
                    continue
                ports[i] = mports
            if acks:
                self.sock.sendall(acks)
        return [p for p in ports if p], fails

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ------------------------------------------------------------- recorder --

class Recorder:
    """One tally-recorder process with its own storage, ports, log."""

    def __init__(self, binary, workdir, nmax, cpus):
        self.binary, self.workdir, self.cpus = binary, workdir, cpus
        self.storage = os.path.join(workdir, "storage")
        os.makedirs(self.storage, exist_ok=True)
        self.sip_port = free_port_both()
        self.http_port = free_tcp_port()
        width = max(1000, ((PORTS_PER_SESSION * nmax + 64) // 1000 + 1)
                    * 1000)
        self.port_lo, self.port_hi = media_window(width)
        self.argv = [binary, "--config-file=none", "--foreground",
                     "--storage=%s" % self.storage,
                     "--listen-sip=127.0.0.1:%d" % self.sip_port,
                     "--interface=127.0.0.1",
                     "--port-min=%d" % self.port_lo,
                     "--port-max=%d" % self.port_hi,
                     "--max-sessions=%d" % (nmax + 100),
                     "--min-free-mb=0",
                     "--listen-http=127.0.0.1:%d" % self.http_port,
                     "--api-token=%s" % TOKEN,
                     "--log-level=5", "--media-timeout=0"]
        self.logpath = os.path.join(workdir, "tally-recorder.log")
        self.logf = open(self.logpath, "w")
        self.proc = spawn(self.argv, cpus, stdout=self.logf,
                          stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self.api = None
        self.api_broke = None

    def _get_status(self, conn):
        conn.request("GET", "/api/v1/status",
                     headers={"Authorization": "Bearer " + TOKEN})
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError("status: HTTP %d %s" % (r.status, data[:200]))
        doc = json.loads(data)
        # the daemon's counters (recapi.h: "sessions", "media", ...) come
        # either at the top level or under "daemon" next to the API's own
        if "media" not in doc and isinstance(doc.get("daemon"), dict):
            doc = doc["daemon"]
        if "media" not in doc:
            raise RuntimeError("status without media counters: %s"
                               % str(doc)[:200])
        return doc

    def status(self, timeout=5.0, fresh=False):
        """GET /api/v1/status on the keep-alive connection opened at start
        (a new one when fresh=True or when it was closed)."""
        if fresh or self.api is None:
            c = http.client.HTTPConnection("127.0.0.1", self.http_port,
                                           timeout=timeout)
            try:
                doc = self._get_status(c)
            except (OSError, http.client.HTTPException):
                c.close()
                raise
            if self.api is None:
                self.api = c
            else:
                c.close()
            return doc
        try:
            return self._get_status(self.api)
        except (OSError, http.client.HTTPException) as e:
            self.api.close()
            self.api = None
            self.api_broke = "%s: %s" % (type(e).__name__, e)
            return self.status(timeout)

    def probe_new_connection(self):
        """Can a new TCP connection to the API still be served? -> None or
        why not (the daemon's fd numbers grow with the sessions)."""
        try:
            self.status(timeout=3.0, fresh=True)
            return None
        except (OSError, http.client.HTTPException, RuntimeError,
                ValueError) as e:
            return "%s: %s" % (type(e).__name__, e)

    def wait_ready(self, secs=15.0):
        end = time.monotonic() + secs
        last = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("tally-recorder exited with %s at start: "
                                   "%s" % (self.proc.returncode,
                                           self.log_tail()))
            try:
                return self.status(timeout=1.0)
            except (OSError, RuntimeError, ValueError,
                    http.client.HTTPException) as e:
                last = e
                time.sleep(0.1)
        raise RuntimeError("tally-recorder API not ready in %.0f s (%s): %s"
                           % (secs, last, self.log_tail()))

    def log_tail(self, n=8):
        try:
            with open(self.logpath, errors="replace") as f:
                return " | ".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.api:
            self.api.close()
        s = stop(self.proc)
        self.logf.close()
        return s


# ------------------------------------------------------------- rtpengine --

class Rtpengine:
    """rtpengine (userspace) recording every call to pcap; calls are set up
    over ng with `record call: yes`, then `block media` so it records what
    it receives without relaying it (recording happens at ingress, before
    the block; see README)."""

    def __init__(self, binary, workdir, nmax, cpus):
        self.workdir, self.cpus = workdir, cpus
        self.recdir = os.path.join(workdir, "rtpengine-rec")
        os.makedirs(self.recdir, exist_ok=True)
        self.ng_port = run.free_udp_port()
        width = max(1000, ((16 * nmax + 64) // 1000 + 1) * 1000)
        self.port_lo, self.port_hi = media_window(width)
        self.argv = [binary, "--config-file=none", "--table=-1",
                     "--interface=127.0.0.1",
                     "--listen-ng=127.0.0.1:%d" % self.ng_port,
                     "--port-min=%d" % self.port_lo,
                     "--port-max=%d" % self.port_hi,
                     "--foreground", "--log-stderr", "--log-level=4",
                     "--delete-delay=0", "--num-threads=1",
                     "--timeout=86400", "--silent-timeout=86400",
                     "--recording-dir=%s" % self.recdir,
                     "--recording-method=pcap", "--recording-format=eth"]
        self.logpath = os.path.join(workdir, "rtpengine.log")
        self.logf = open(self.logpath, "w")
        self.proc = spawn(self.argv, cpus, stdout=self.logf,
                          stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self.ng = run.Ng(self.ng_port)
        self.blocked = None

    def wait_ready(self, secs=10.0):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("rtpengine exited with %s at start"
                                   % self.proc.returncode)
            try:
                if self.ng.req({"command": "ping"}, timeout=0.3,
                               tries=1).get("result") == "pong":
                    return
            except (TimeoutError, OSError, ValueError):
                pass
        raise RuntimeError("rtpengine: no pong on ng port %d" % self.ng_port)

    def setup(self, n, sink_port):
        """N calls of 4 streams; -> [[4 ports the SRC sends to]]."""
        medias = [("audio", sink_port), ("video", sink_port),
                  ("audio", sink_port), ("video", sink_port)]
        out = []
        for i in range(n):
            cid = "recbench-rtpe-%d" % i
            common = {"call-id": cid, "from-tag": "A",
                      "replace": ["origin", "session-connection"],
                      "ICE": "remove"}
            a = run.sdp_make(medias, direction="sendonly", sess=1)
            r = self.ng.req(dict(common, command="offer", sdp=a,
                                 **{"record call": "yes"}))
            if r.get("result") != "ok":
                raise RuntimeError("offer: %s" % r.get("error-reason", r))
            b = run.sdp_make(medias, direction="recvonly", sess=2)
            r = self.ng.req(dict(common, command="answer", sdp=b,
                                 **{"to-tag": "B", "record call": "yes"}))
            if r.get("result") != "ok":
                raise RuntimeError("answer: %s" % r.get("error-reason", r))
            ports = [m["port"] for m in run.sdp_parse(r["sdp"])]
            if len(ports) != 4 or 0 in ports:
                raise RuntimeError("answer m= ports %s" % ports)
            if self.blocked is not False:
                r = self.ng.req({"command": "block media", "call-id": cid})
                self.blocked = r.get("result") == "ok"
                if not self.blocked:
                    log("rtpengine: block media refused (%s): it relays to"
                        " a discard socket" % r.get("error-reason", r))
            out.append(ports)
        return out

    def delete_all(self, n):
        for i in range(n):
            try:
                self.ng.req({"command": "delete",
                             "call-id": "recbench-rtpe-%d" % i}, timeout=2)
            except (TimeoutError, OSError):
                pass

    def recorded(self):
        """(pcap files, packets, bytes) in the recording dir."""
        files = glob.glob(os.path.join(self.recdir, "pcaps", "*.pcap")) or \
            glob.glob(os.path.join(self.recdir, "**", "*.pcap"),
                      recursive=True)
        pk = by = 0
        for p in files:
            a, b = pcap_count(p)
            pk += a
            by += b
        return len(files), pk, by

    def stop(self):
        s = stop(self.proc)
        self.logf.close()
        return s


# ------------------------------------------------------------ one step --

def legs_of(sessions):
    audio, video = [], []
    for p in sessions:
        audio += [p[0], p[2]]
        video += [p[1], p[3]]
    return audio, video


def load_window(lgs, pid, seconds, nlegs, pinned_cpu):
    """Run the load; CPU of pid and of the loadgens, max RSS sampled
    meanwhile. -> dict."""
    rss_max = [rss_kb(pid)]
    io0 = proc_io(pid)
    c0, th0 = cpu_ns(pid), thread_cpu(pid)
    l0 = {k: cpu_ns(lgs.pid(k)) for k in ("audio", "video")}
    k0 = core_busy_ns(pinned_cpu) if pinned_cpu is not None else None
    t0 = time.monotonic()

    def sample():
        try:
            rss_max[0] = max(rss_max[0], rss_kb(pid))
        except OSError:
            pass
    reps = lgs.run(seconds, nlegs, sample)
    t_load = time.monotonic() - t0
    return {"reports": reps, "c0": c0, "th0": th0, "l0": l0, "k0": k0,
            "io0": io0,
            "t0": t0, "t_load": t_load, "rss_max": rss_max}


def finish_window(lgs, pid, w, pinned_cpu):
    """CPU figures from the start of the load to now (after the drain)."""
    el = time.monotonic() - w["t0"]
    c1, th1 = cpu_ns(pid), thread_cpu(pid)
    io1 = proc_io(pid)
    out = {"elapsed_s": round(el, 3), "load_s": round(w["t_load"], 3),
           "cpu_ms": (c1 - w["c0"]) / 1e6,
           "cpu_pct": 100.0 * (c1 - w["c0"]) / 1e9 / el,
           "threads_cpu_ms": {k: round((v - w["th0"].get(k, 0)) / 1e6, 1)
                              for k, v in th1.items()}}
    if "syscw" in io1 and "syscw" in w["io0"]:
        out["write_calls"] = io1["syscw"] - w["io0"]["syscw"]
        out["write_bytes"] = io1["wchar"] - w["io0"]["wchar"]
    for k in ("audio", "video"):
        out["loadgen_%s_cpu_pct" % k] = round(
            100.0 * (cpu_ns(lgs.pid(k)) - w["l0"][k]) / 1e9 / el, 1)
    if w["k0"] is not None:
        busy = 100.0 * (core_busy_ns(pinned_cpu) - w["k0"]) / 1e9 / el
        out["other_pct"] = round(max(0.0, busy - out["cpu_pct"]), 1)
    return out


def sent_of(reps):
    sent = sum(r["sent_all"] for r in reps.values())
    exp_bytes = sum(r["sent_all"] * (size + PCAP_REC_OVERHEAD)
                    for k, r in reps.items()
                    for size in [AUDIO_SIZE if k == "audio" else VIDEO_SIZE])
    offered = sum(r["offered_pps"] for r in reps.values())
    sent_pps = sum(r["sent_pps"] for r in reps.values())
    errs = sum(r.get("send_err", 0) for r in reps.values())
    lag = max(r.get("send_lag_max_us", 0) for r in reps.values())
    return sent, exp_bytes, offered, sent_pps, errs, lag


def loadgen_bound(m):
    """The generator, not the daemon, may have been the limit: it sent
    less than 98% of the offered rate, could not send some packets, or its
    core was >= 90% busy."""
    return (m.get("sent_pps", 0) < 0.98 * m.get("offered_pps", 0) or
            m.get("send_err", 0) > 0 or
            max(m.get("loadgen_audio_cpu_pct", 0),
                m.get("loadgen_video_cpu_pct", 0)) >= LOADGEN_BOUND_PCT)


def check_space(n, seconds):
    """Refuse a step whose captures would not fit (with 20% to spare)."""
    need = n * seconds * (2 * AUDIO_PPS * (AUDIO_SIZE + PCAP_REC_OVERHEAD) +
                          2 * VIDEO_PPS * (VIDEO_SIZE + PCAP_REC_OVERHEAD))
    vfs = os.statvfs(OUT)
    free = vfs.f_bavail * vfs.f_frsize
    if free < 1.2 * need:
        raise RuntimeError("N=%d for %g s writes %.1f GB; %s has %.1f GB "
                           "free" % (n, seconds, need / 1e9, OUT, free / 1e9))


def tally_step(a, lgs, n, rep, sink_port):
    """One repetition of step N on a fresh tally-recorder -> dict."""
    wd = os.path.join(OUT, "work", "tally-n%d-r%d" % (n, rep))
    shutil.rmtree(wd, ignore_errors=True)
    os.makedirs(wd)
    m = {"system": "tally", "n": n, "rep": rep}
    rec = Recorder(a.recorder, wd, n, a.daemon_cpus)
    try:
        rec.wait_ready()
        time.sleep(0.3)
        rss0 = rss_kb(rec.pid)
        m["rss_idle_kb"] = rss0
        t0 = time.monotonic()
        sip = SipSetup(rec.sip_port, "%d-%d-%d" % (os.getpid(), n, rep))
        sessions, fails = sip.setup(n, sink_port)
        m["setup_s"] = round(time.monotonic() - t0, 3)
        m["setup_per_s"] = round(n / max(1e-6, m["setup_s"]), 1)
        m["sessions_ok"] = len(sessions)
        m["setup_failures"] = fails
        st0 = rec.status()
        m["status_sessions"] = st0.get("sessions")
        why = rec.probe_new_connection()
        if why:
            m["api_new_connection_fails"] = why
            log("tally N=%d: a NEW connection to the API fails after setup"
                " (%s); the bench goes on on its kept-alive one" % (n, why))
        time.sleep(0.2)
        rss1 = rss_kb(rec.pid)
        m["rss_setup_kb"] = rss1
        m["mem_setup_kib_per_session"] = round(
            (rss1 - rss0) / max(1, len(sessions)), 2)
        if len(sessions) < n:
            m["error"] = "only %d of %d sessions set up: %s; log: %s" % (
                len(sessions), n, fails, rec.log_tail(4))
            log("tally N=%d rep %d: %s" % (n, rep, m["error"]))
        if not sessions:
            return m
        audio, video = legs_of(sessions)
        nlegs = {"audio": lgs.set_legs("audio", audio, 0),
                 "video": lgs.set_legs("video", video, 96)}
        lgs.drain_sinks()
        pli0 = lgs.pli
        w = load_window(lgs, rec.pid, a.seconds, nlegs, a.daemon_cpu_one)
        sent, exp_bytes, offered, sent_pps, errs, lag = \
            sent_of(w["reports"])
        # drain: until the recorder has written everything sent, or its
        # counter stops moving (0.5 s), at most 3 s
        written = -1
        end = time.monotonic() + 3.0
        still = time.monotonic()
        while time.monotonic() < end:
            st = rec.status()
            wr = st["media"]["written"] - st0["media"]["written"]
            if wr >= sent:
                break
            if wr != written:
                written, still = wr, time.monotonic()
            elif time.monotonic() - still > 0.5:
                break
            time.sleep(0.1)
        m.update(finish_window(lgs, rec.pid, w, a.daemon_cpu_one))
        md0, md1 = st0["media"], st["media"]
        d = {k: md1.get(k, 0) - md0.get(k, 0) for k in md1}
        m.update({"sent": sent, "offered_pps": round(offered, 1),
                  "sent_pps": round(sent_pps, 1), "send_err": errs,
                  "send_lag_max_us": lag, "loadgen": w["reports"],
                  "packets": d.get("packets"), "written": d.get("written"),
                  "kernel_drops": d.get("kernel_drops"),
                  "write_errors": d.get("write_errors"),
                  "garbage": d.get("garbage"), "rtcp": d.get("rtcp"),
                  "pli_sent": d.get("pli_sent"),
                  "loss": sent - d.get("written", 0),
                  "rss_load_max_kb": w["rss_max"][0],
                  "rss_end_kb": rss_kb(rec.pid)})
        m["loss_pct"] = round(100.0 * m["loss"] / max(1, sent), 4)
        m["us_per_pkt"] = round(m["cpu_ms"] * 1e3 / max(1, m["written"]), 3)
        if "write_calls" in m:
            m["pkts_per_write"] = round(m["written"] /
                                        max(1, m["write_calls"]), 2)
        m["mem_load_kib_per_session"] = round(
            (m["rss_load_max_kb"] - rss0) / len(sessions), 2)
        files, disk = du_pcaps(rec.storage, "*/media.pcap")
        m["disk_bytes"] = disk
        # every capture starts with a 24-byte file header; each record is
        # 16 + 14 + 20 + 8 bytes of headers plus the datagram
        m["disk_missing_bytes"] = exp_bytes - (disk - 24 * files)
        m["disk_bytes_per_session_s"] = round(
            disk / len(sessions) / a.seconds, 1)
        lgs.drain_sinks()
        m["pli_received"] = lgs.pli - pli0
        m["loadgen_bound"] = loadgen_bound(m)
        if rec.api_broke:
            m["api_keepalive_broke"] = rec.api_broke
        m["ok"] = (m["loss"] == 0 and not m["kernel_drops"] and
                   not m["write_errors"] and len(sessions) == n and
                   m["disk_missing_bytes"] == 0)
        sip.close()
        if rec.proc.poll() is not None:
            m["ok"] = False
            m["error"] = "tally-recorder died (rc %s): %s" % (
                rec.proc.returncode, rec.log_tail())
        return m
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        m["ok"] = False
        m["error"] = "%s: %s" % (type(e).__name__, e)
        log("tally N=%d rep %d: %s" % (n, rep, m["error"]))
        return m
    finally:
        alive = rec.proc.poll() is None
        m["stop_s"] = round(rec.stop(), 2)
        if not alive and "error" not in m:
            m["ok"] = False
            m["error"] = "tally-recorder exited: %s" % rec.log_tail()
        shutil.rmtree(rec.storage, ignore_errors=True)


def rtpe_step(a, lgs, n, rep, sink_port):
    """One repetition of step N on a fresh rtpengine -> dict."""
    wd = os.path.join(OUT, "work", "rtpengine-n%d-r%d" % (n, rep))
    shutil.rmtree(wd, ignore_errors=True)
    os.makedirs(wd)
    m = {"system": "rtpengine", "n": n, "rep": rep}
    rt = Rtpengine(a.rtpengine, wd, n, a.daemon_cpus)
    try:
        rt.wait_ready()
        time.sleep(0.3)
        rss0 = rss_kb(rt.pid)
        t0 = time.monotonic()
        sessions = rt.setup(n, sink_port)
        m["setup_s"] = round(time.monotonic() - t0, 3)
        m["setup_per_s"] = round(n / max(1e-6, m["setup_s"]), 1)
        m["blocked"] = rt.blocked
        m["rss_idle_kb"] = rss0
        m["mem_setup_kib_per_session"] = round(
            (rss_kb(rt.pid) - rss0) / n, 2)
        audio, video = legs_of(sessions)
        nlegs = {"audio": lgs.set_legs("audio", audio, 0),
                 "video": lgs.set_legs("video", video, 96)}
        w = load_window(lgs, rt.pid, a.seconds, nlegs, a.daemon_cpu_one)
        sent, exp_bytes, offered, sent_pps, errs, lag = \
            sent_of(w["reports"])
        time.sleep(0.5)      # drain (its own socket buffers)
        m.update(finish_window(lgs, rt.pid, w, a.daemon_cpu_one))
        m["rss_load_max_kb"] = w["rss_max"][0]
        m["mem_load_kib_per_session"] = round(
            (m["rss_load_max_kb"] - rss0) / n, 2)
        rt.delete_all(n)     # closes (flushes) every pcap
        time.sleep(0.3)
        files, pk, by = rt.recorded()
        m.update({"sent": sent, "offered_pps": round(offered, 1),
                  "sent_pps": round(sent_pps, 1), "send_err": errs,
                  "send_lag_max_us": lag, "pcap_files": files,
                  "written": pk, "loss": sent - pk})
        m["loss_pct"] = round(100.0 * m["loss"] / max(1, sent), 4)
        m["us_per_pkt"] = round(m["cpu_ms"] * 1e3 / max(1, pk), 3)
        if "write_calls" in m:
            # stdio buffers its pcap writes: most are still in user space
            # at the end of the window (flushed by the delete)
            m["pkts_per_write"] = round(pk / max(1, m["write_calls"]), 2)
        m["loadgen_bound"] = loadgen_bound(m)
        m["ok"] = m["loss"] == 0
        if rt.proc.poll() is not None:
            m["ok"] = False
            m["error"] = "rtpengine died (rc %s)" % rt.proc.returncode
        return m
    except (RuntimeError, OSError, ValueError, KeyError,
            TimeoutError) as e:
        m["ok"] = False
        m["error"] = "%s: %s" % (type(e).__name__, e)
        log("rtpengine N=%d rep %d: %s" % (n, rep, m["error"]))
        return m
    finally:
        m["stop_s"] = round(rt.stop(), 2)
        shutil.rmtree(rt.recdir, ignore_errors=True)


KEYS = ("setup_s", "setup_per_s", "sent", "sent_pps", "offered_pps",
        "written", "loss", "loss_pct", "kernel_drops", "write_errors",
        "cpu_ms", "cpu_pct", "us_per_pkt", "other_pct",
        "loadgen_audio_cpu_pct", "loadgen_video_cpu_pct",
        "rss_idle_kb", "rss_setup_kb", "rss_load_max_kb",
        "mem_setup_kib_per_session", "mem_load_kib_per_session",
        "disk_bytes_per_session_s", "disk_missing_bytes", "pli_sent",
        "write_calls", "pkts_per_write",
        "send_lag_max_us")


def summarize(runs):
    s = {}
    for k in KEYS:
        v = median([r.get(k) for r in runs if isinstance(r.get(k),
                                                         (int, float))])
        if v is not None:
            s[k] = round(v, 3) if isinstance(v, float) else v
    s["reps"] = len(runs)
    s["ok_all"] = bool(runs) and all(r.get("ok") for r in runs)
    s["max_loss"] = max((r.get("loss") or 0) if "loss" in r else -1
                        for r in runs) if runs else None
    s["loadgen_bound_any"] = any(r.get("loadgen_bound") for r in runs)
    s["errors"] = [r["error"] for r in runs if r.get("error")]
    s["warnings"] = sorted({"new API connections fail after setup (%s)"
                            % r["api_new_connection_fails"]
                            for r in runs
                            if r.get("api_new_connection_fails")})
    return s


# ------------------------------------------------------------- finalize --

def read_pcap_udp(path):
    """Classic pcap -> (linktype, [(ts_sec, ts_usec, src, sport, dst, dport,
    payload)]) for UDP over IPv4."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError("%s: not a classic pcap" % path)
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    link = struct.unpack(e + "I", data[20:24])[0]
    out, i = [], 24
    while i + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack_from(e + "IIII", data, i)
        pkt = data[i + 16:i + 16 + incl]
        if len(pkt) < incl:
            break
        i += 16 + incl
        if link == 1:
            ip = pkt[14:] if pkt[12:14] == b"\x08\x00" else b""
        elif link == 113:
            ip = pkt[16:] if pkt[14:16] == b"\x08\x00" else b""
        elif link == 276:
            ip = pkt[20:] if pkt[0:2] == b"\x08\x00" else b""
        elif link == 0:
            ip = pkt[4:]
        elif link in (101, 228, 12, 14):
            ip = pkt
        else:
            raise ValueError("%s: linktype %d not handled" % (path, link))
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        sp, dp, ulen = struct.unpack_from("!HHH", ip, ihl)
        out.append((sec, frac // 1000 if nano else frac, ip[12:16], sp,
                    ip[16:20], dp, bytes(ip[ihl + 8:ihl + ulen])))
    return link, out


def write_eth_pcap(path, pkts):
    """Write records as docs/recording-format.md's media.pcap (Ethernet,
    IPv4, UDP, microseconds)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for sec, usec, src, sp, dst, dp, pl in pkts:
            udp = struct.pack("!HHHH", sp, dp, 8 + len(pl), 0) + pl
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0,
                             64, 17, 0, src, dst)
            frame = b"\0" * 12 + b"\x08\x00" + ip + udp
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
            f.write(frame)


FIN_STREAMS = (("audio", "PCMU", 8000, "", "audio:pcmu:440"),
               ("video", "H264", 90000, "packetization-mode=1",
                "video:h264:640x360"),
               ("audio", "PCMU", 8000, "", "audio:pcmu:880"),
               ("video", "VP8", 90000, "", "video:vp8:640x360"))


def make_media(mkrtp, seconds, base_port):
    """tests/tools/mkrtp.py's 4-stream pcap, cached by arguments and by
    mkrtp.py's content -> path."""
    args = ["--seconds", str(seconds), "--base-port", str(base_port)] + \
        [s[4] for s in FIN_STREAMS]
    with open(mkrtp, "rb") as f:
        key = hashlib.sha256(json.dumps(args).encode() + f.read()) \
            .hexdigest()[:16]
    cdir = os.path.join(OUT, "media")
    os.makedirs(cdir, exist_ok=True)
    pcap = os.path.join(cdir, "av-%s.pcap" % key)
    if not os.path.exists(pcap):
        tmp = os.path.join(cdir, "tmp-%d.pcap" % os.getpid())
        log("finalize: making %d s of A/V media with mkrtp.py ..." % seconds)
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, mkrtp, "--out", tmp] + args,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=1800, preexec_fn=preexec_plain)
        if r.returncode != 0 or not os.path.exists(tmp):
            raise RuntimeError("mkrtp.py failed (rc %d): %s" % (
                r.returncode, r.stdout.decode(errors="replace")[-500:]))
        for ext in (".json",):
            if os.path.exists(tmp[:-5] + ext):
                os.replace(tmp[:-5] + ext, pcap[:-5] + ext)
        os.replace(tmp, pcap)
        log("finalize: mkrtp.py took %.0f s" % (time.monotonic() - t0))
    return pcap


def session_folder(pcap, base_port, workdir):
    """A session folder (docs/recording-format.md) from the mkrtp pcap:
    media.pcap (Ethernet, as the recorder writes it) + session.json.
    -> (folder, {packets, seconds})."""
    link, pkts = read_pcap_udp(pcap)
    if not pkts:
        raise RuntimeError("%s has no UDP/IPv4 packets" % pcap)
    ports = [base_port + 2 * i for i in range(len(FIN_STREAMS))]
    pts = {}
    for p in pkts:
        pl = p[6]
        if p[5] in ports and len(pl) >= 12 and pl[0] >> 6 == 2 and \
                not 200 <= pl[1] <= 211:
            pts.setdefault(p[5], {}).setdefault(pl[1] & 0x7f, 0)
            pts[p[5]][pl[1] & 0x7f] += 1
    missing = [pt for pt in ports if pt not in pts]
    if missing:
        raise RuntimeError("mkrtp pcap has no RTP to ports %s (want %s)"
                           % (missing, ports))
    t_first = pkts[0][0] + pkts[0][1] / 1e6
    t_last = pkts[-1][0] + pkts[-1][1] / 1e6
    rid = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-0bec4ba5"
    folder = os.path.join(workdir, rid)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    if link == 1:
        shutil.copyfile(pcap, os.path.join(folder, "media.pcap"))
    else:
        write_eth_pcap(os.path.join(folder, "media.pcap"), pkts)
    # mkrtp.py's F.json says each stream's pt, clock, fmtp; without it,
    # the payload type seen most on the port, and FIN_STREAMS' codecs
    desc = {}
    try:
        with open(os.path.splitext(pcap)[0] + ".json") as f:
            desc = {d["index"]: d for d in json.load(f).get("streams", [])}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    streams = []
    for i, (media, name, clock, fmtp, _) in enumerate(FIN_STREAMS):
        d = desc.get(i, {})
        codec = {"pt": d.get("pt", max(pts[ports[i]], key=pts[ports[i]].get)),
                 "name": d.get("codec", name), "clock": d.get("clock", clock),
                 "channels": d.get("channels", 1),
                 "fmtp": d.get("fmtp", fmtp)}
        streams.append({"index": i, "label": str(i + 1), "media": media,
                        "accepted": True, "refused": "", "port": ports[i],
                        "rtcp_port": ports[i] + 1, "codecs": [codec],
                        "opened": t_first, "closed": t_last})
    sj = {"version": 1, "id": rid, "call_id": "recbench-finalize",
          "session_id": "cmJmaW4=", "src": "sip:src@127.0.0.1",
          "state": "finalizing", "reason": "", "started": t_first,
          "stopped": t_last, "has_metadata": True, "streams": streams,
          "participants": [
              {"id": "cGFydHktYQ==", "aor": "sip:alice@example.com",
               "name": "Alice", "send": ["1", "2"], "recv": ["3", "4"]},
              {"id": "cGFydHktQg==", "aor": "sip:bob@example.com",
               "name": "Bob", "send": ["3", "4"], "recv": ["1", "2"]}],
          "files": []}
    with open(os.path.join(folder, "session.json"), "w") as f:
        json.dump(sj, f, indent=1)
    return folder, {"packets": len(pkts), "pcap_seconds":
                    round(t_last - t_first, 3), "linktype": link}


def finalize_bench(a):
    res = {"seconds": a.finalize_seconds, "mkrtp": a.mkrtp}
    if not os.path.exists(a.mkrtp):
        res["status"] = "n/a: %s does not exist (yet)" % a.mkrtp
        return res
    base_port = 20000
    try:
        pcap = make_media(a.mkrtp, a.finalize_seconds, base_port)
        workdir = os.path.join(OUT, "work", "finalize")
        os.makedirs(workdir, exist_ok=True)
        folder, info = session_folder(pcap, base_port, workdir)
        res.update(info)
        keep = {"media.pcap", "session.json"}
        runs = []
        for i in range(a.reps):
            for name in os.listdir(folder):
                if name not in keep:
                    p = os.path.join(folder, name)
                    (shutil.rmtree if os.path.isdir(p) else os.remove)(p)
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            p = subprocess.Popen([a.recorder, "--finalize", folder],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE,
                                 preexec_fn=preexec_plain)
            run.STARTED.append(p)
            try:
                out, err = p.communicate(timeout=1800)
            finally:
                run.STARTED.remove(p)
            wall = time.monotonic() - t0
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
            if p.returncode != 0:
                res["status"] = "failed: rc %d: %s" % (
                    p.returncode, err.decode(errors="replace").strip()[-300:])
                return res
            doc = json.loads(out.decode().strip().splitlines()[-1])
            r = {"wall_s": round(wall, 3),
                 "media_seconds": doc.get("media_seconds"),
                 "internal_wall_s": doc.get("wall_seconds"),
                 "cpu_s": round(cpu, 3), "packets": doc.get("packets"),
                 "files": doc.get("files")}
            r["x_realtime"] = round(r["media_seconds"] / wall, 1) \
                if r["media_seconds"] else None
            runs.append(r)
            log("finalize %d: %.1f s media in %.2f s = x%s" % (
                i + 1, r["media_seconds"] or 0, wall, r["x_realtime"]))
        res["runs"] = runs
        res["x_realtime"] = median([r["x_realtime"] for r in runs])
        res["media_seconds"] = median([r["media_seconds"] for r in runs])
        res["wall_s"] = median([r["wall_s"] for r in runs])
        res["status"] = "ok"
    except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired,
            json.JSONDecodeError) as e:
        res["status"] = "failed: %s" % e
    return res


# --------------------------------------------------------------- report --

def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.*f" % (nd, v)
    return str(v)


def report(a, steps, fin, rtpe_note):
    if steps:
        table(a, steps)
    best = None          # the last clean step before the first failure
    for st in steps:
        t = st.get("tally")
        if not (t and t["ok_all"]):
            break
        best = st
    return verdicts(a, steps, best, fin, rtpe_note)


def table(a, steps):
    print("\n== N SIPREC sessions x 4 streams (2 audio 50 pps 172 B, 2 video "
          "1 Mbit/s 1200 B), %g s load, median of %d reps ==" % (
              a.seconds, a.reps))
    cols = ("%-9s %4s %7s %8s %6s %5s %6s %7s %8s %5s %4s %7s %7s %6s "
            "%7s %s")
    print(cols % ("system", "N", "pps", "sent", "lost", "kdrop", "cpu%",
                  "us/pkt", "ms/s/ses", "oth%", "lg%", "KiB/ses", "KiB/ses",
                  "setup", "disk", "verdict"))
    print(cols % ("", "", "", "", "(max)", "", "", "", "", "", "",
                  "setup", "load", "/s", "KB/s/s", ""))
    for st in steps:
        for name in ("tally", "rtpengine"):
            s = st.get(name)
            if not s:
                continue
            lg = max(s.get("loadgen_audio_cpu_pct") or 0,
                     s.get("loadgen_video_cpu_pct") or 0)
            verdict = ("0 loss x%d" % s["reps"]) if s["ok_all"] else \
                "LOSS/FAIL"
            if s["loadgen_bound_any"]:
                verdict += " (loadgen-bound)"
            t = st.get("tally")
            if name == "rtpengine" and t and t.get("us_per_pkt") and \
                    s.get("us_per_pkt"):
                verdict += "; rtpengine/tally us/pkt x%.2f" % (
                    s["us_per_pkt"] / t["us_per_pkt"])
            if s["errors"]:
                verdict += " [%s]" % s["errors"][0][:70]
            per_ses = s["cpu_ms"] / st["n"] / a.seconds \
                if s.get("cpu_ms") else None
            print(cols % (name, st["n"], fmt(s.get("sent_pps"), 0),
                          fmt(s.get("sent"), 0), fmt(s.get("max_loss"), 0),
                          fmt(s.get("kernel_drops"), 0),
                          fmt(s.get("cpu_pct")),
                          fmt(s.get("us_per_pkt"), 2), fmt(per_ses, 2),
                          fmt(s.get("other_pct"), 0), fmt(lg, 0),
                          fmt(s.get("mem_setup_kib_per_session")),
                          fmt(s.get("mem_load_kib_per_session")),
                          fmt(s.get("setup_per_s"), 0),
                          fmt((s.get("disk_bytes_per_session_s") or 0) / 1000
                              if name == "tally" else None, 0),
                          verdict))


def verdicts(a, steps, best, fin, rtpe_note):
    summ = {"max_sessions_0_loss": best["n"] if best else 0,
            "targets": TARGETS}
    if best:
        t = best["tally"]
        summ.update({
            "pps_at_max": t.get("sent_pps"),
            "us_per_pkt_at_max": t.get("us_per_pkt"),
            "cpu_pct_at_max": t.get("cpu_pct"),
            "cpu_ms_per_session_s_at_max": round(
                t["cpu_ms"] / best["n"] / a.seconds, 4)
            if t.get("cpu_ms") else None,
            "mem_kib_per_session_setup": t.get("mem_setup_kib_per_session"),
            "mem_kib_per_session_load": t.get("mem_load_kib_per_session"),
            "disk_bytes_per_session_s": t.get("disk_bytes_per_session_s"),
            "loadgen_bound_at_max": t.get("loadgen_bound_any")})
        r = best.get("rtpengine")
        if r and r.get("us_per_pkt") and t.get("us_per_pkt"):
            summ["rtpengine_us_per_pkt_at_max"] = r["us_per_pkt"]
            summ["rtpengine_over_tally_cpu_ratio"] = round(
                r["us_per_pkt"] / t["us_per_pkt"], 3)
            summ["rtpengine_loss_at_max"] = r.get("max_loss")
    first_fail = next((st for st in steps if st.get("tally") and
                       not st["tally"]["ok_all"]), None)
    if first_fail:
        summ["first_failing_n"] = first_fail["n"]
        summ["first_failing_loadgen_bound"] = \
            first_fail["tally"]["loadgen_bound_any"]
    summ["finalize_x_realtime"] = fin.get("x_realtime")
    summ["finalize_status"] = fin.get("status")
    summ["rtpengine"] = rtpe_note

    print("\n== finalize (tally-recorder --finalize, %s s two-party A/V "
          "from mkrtp.py) ==" % fin.get("seconds"))
    if fin.get("status") == "ok":
        print("  media %.1f s, wall %.2f s (median of %d): x%.1f realtime"
              " (target >= %dx)" % (fin["media_seconds"], fin["wall_s"],
                                    len(fin["runs"]), fin["x_realtime"],
                                    TARGETS["finalize_x"]))
    else:
        print("  %s" % fin.get("status"))

    print("\n== verdicts ==")
    n = summ["max_sessions_0_loss"]
    if not steps:
        print("  sessions: not measured")
        summ["max_sessions_0_loss"] = None
    else:
        print("  sessions with 0 loss in every rep: %d (target >= %d): %s%s"
              % (n, TARGETS["sessions"], "met" if n >= TARGETS["sessions"]
                 else "NOT met", " (ladder ended there; not the limit)"
                 if best and not first_fail else ""))
    if first_fail:
        print("  first failing step: N=%d%s" % (
            first_fail["n"], " - loadgen-bound: the generator, not the "
            "recorder, may be the limit" if
            first_fail["tally"]["loadgen_bound_any"] else ""))
    if best:
        mem = max(summ["mem_kib_per_session_setup"] or 0,
                  summ["mem_kib_per_session_load"] or 0)
        print("  memory per session at N=%d: %.1f KiB after setup, %.1f "
              "KiB under load (target < %d KiB): %s" % (
                  best["n"], summ["mem_kib_per_session_setup"] or 0,
                  summ["mem_kib_per_session_load"] or 0,
                  TARGETS["mem_per_session_kib"],
                  "met" if mem < TARGETS["mem_per_session_kib"]
                  else "NOT met"))
        print("  CPU at N=%d: %.2f us per packet, %.1f%% of one core "
              "(%.0f pps)" % (best["n"], summ["us_per_pkt_at_max"] or 0,
                              summ["cpu_pct_at_max"] or 0,
                              summ["pps_at_max"] or 0))
        if "rtpengine_over_tally_cpu_ratio" in summ:
            print("  rtpengine recording the same load: %.2f us per packet;"
                  " rtpengine/tally = x%.2f (> 1: tally is cheaper)" % (
                      summ["rtpengine_us_per_pkt_at_max"],
                      summ["rtpengine_over_tally_cpu_ratio"]))
    fx = summ["finalize_x_realtime"]
    print("  finalize: %s" % ("x%.1f realtime (target >= %dx): %s" % (
        fx, TARGETS["finalize_x"], "met" if fx >= TARGETS["finalize_x"]
        else "NOT met") if fx else fin.get("status")))
    if rtpe_note:
        print("  rtpengine: %s" % rtpe_note)
    if a.quick:
        print("  (--quick: a smoke run of the harness, not a measurement)")
    warns = []
    for st in steps:
        for w in (st.get("tally") or {}).get("warnings", []):
            w = "N=%d: %s" % (st["n"], w)
            if w not in warns:
                warns.append(w)
    for w in warns[:3]:
        print("  WARNING tally-recorder: %s" % w)
    summ["warnings"] = warns
    return summ


# ----------------------------------------------------------------- main --

def log_tally(n, rep, m):
    log("tally     N=%d rep %d: sent %s lost %s kdrop %s cpu %.1f%% %.2f "
        "us/pkt mem %.1f/%.1f KiB/sess setup %.1f s lg %.0f/%.0f%% %s" % (
            n, rep, m.get("sent"), m.get("loss"), m.get("kernel_drops"),
            m.get("cpu_pct") or 0, m.get("us_per_pkt") or 0,
            m.get("mem_setup_kib_per_session") or 0,
            m.get("mem_load_kib_per_session") or 0, m.get("setup_s") or 0,
            m.get("loadgen_audio_cpu_pct") or 0,
            m.get("loadgen_video_cpu_pct") or 0,
            "ok" if m.get("ok") else "FAIL"))


def log_rtpe(n, rep, m):
    log("rtpengine N=%d rep %d: sent %s recorded %s cpu %.1f%% %.2f us/pkt "
        "blocked=%s %s" % (n, rep, m.get("sent"), m.get("written"),
                           m.get("cpu_pct") or 0, m.get("us_per_pkt") or 0,
                           m.get("blocked"), m.get("error", "")))


def parse_cpus(text):
    """taskset-style list "0", "0,2", "0-1" -> set of ints."""
    out = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def build_loadgen():
    os.makedirs(OUT, exist_ok=True)
    src, exe = os.path.join(HERE, "loadgen.c"), os.path.join(OUT, "loadgen")
    if not os.path.exists(exe) or \
            os.path.getmtime(exe) < os.path.getmtime(src):
        subprocess.check_call(["gcc", "-O2", "-Wall", "-Wextra",
                               "-D_GNU_SOURCE", "-o", exe, src])
    return exe


def main():
    ap = argparse.ArgumentParser(
        description="tally recorder bench: SIPREC sessions with 0 loss, CPU "
        "and memory per session, finalize speed, rtpengine as reference "
        "(bench/README.md, \"Recorder bench\")")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: one step (N=20), one rep, 5 s load, "
                         "10 s finalize media")
    ap.add_argument("--sessions", default=None,
                    help="ladder of N, comma-separated (default "
                         "100,200,300,400,500)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="load duration per step (default 20)")
    ap.add_argument("--reps", type=int, default=None,
                    help="repetitions per step (default 3)")
    ap.add_argument("--recorder", default=os.path.join(
        ROOT, "build-rel", "src", "recorder", "tally-recorder"))
    ap.add_argument("--rtpengine", default="/usr/bin/rtpengine")
    ap.add_argument("--no-rtpengine", action="store_true")
    ap.add_argument("--no-finalize", action="store_true")
    ap.add_argument("--no-ladder", action="store_true",
                    help="finalize speed only")
    ap.add_argument("--finalize-seconds", type=int, default=None,
                    help="media length for the finalize test (default 60)")
    ap.add_argument("--all-steps", action="store_true",
                    help="do not stop the ladder at the first step with loss")
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin (default: loadgens on CPU 0, the "
                         "recorder / rtpengine on CPU 1)")
    ap.add_argument("--loadgen-cpus", default="0",
                    help="taskset CPU list of the loadgens (default 0)")
    ap.add_argument("--daemon-cpus", default="1",
                    help="taskset CPU list of tally-recorder and rtpengine "
                         "(default 1); oth%% is measured when it is one CPU")
    ap.add_argument("--nice", type=int, default=-20,
                    help="nice value of the daemons and loadgens")
    ap.add_argument("--rt", type=int, default=0, metavar="PRIO",
                    help="opt-in: daemons and loadgens SCHED_FIFO at PRIO "
                         "(as bench/run.py --rt; starves other work on a "
                         "busy box while a load runs)")
    ap.add_argument("--mkrtp", default=MKRTP,
                    help="media generator for the finalize test "
                         "(default $TALLY_MKRTP or tests/tools/mkrtp.py)")
    ap.add_argument("--json", default=os.path.join(OUT,
                                                   "recbench-results.json"))
    a = ap.parse_args()
    q = a.quick
    a.sessions = [int(x) for x in a.sessions.split(",")] if a.sessions \
        else ([20] if q else [100, 200, 300, 400, 500])
    a.seconds = a.seconds or (5.0 if q else 20.0)
    a.reps = a.reps or (1 if q else 3)
    a.finalize_seconds = a.finalize_seconds or (10 if q else 60)
    if a.no_pin or (os.cpu_count() or 1) < 2:
        a.daemon_cpus = a.lg_cpus = None
        a.daemon_cpu_one = None
    else:
        a.lg_cpus = a.loadgen_cpus
        a.daemon_cpu_one = int(a.daemon_cpus) if a.daemon_cpus.isdigit() \
            else None
        # the harness stays with the loadgens, off the daemon's CPU
        os.sched_setaffinity(0, parse_cpus(a.loadgen_cpus))
    run.NICE[0] = a.nice
    run.raise_nofile()        # the harness: fd limit and nice (not RT)
    run.RT[0] = a.rt
    if not os.access(a.recorder, os.X_OK):
        sys.exit("no tally-recorder at %s: build it (cmake -S . -B build-rel"
                 " -DCMAKE_BUILD_TYPE=Release -DTALLY_TESTS=OFF && cmake "
                 "--build build-rel --target tally-recorder) or pass "
                 "--recorder PATH" % a.recorder)
    use_rtpe = not a.no_rtpengine
    rtpe_note = None
    if use_rtpe and not os.access(a.rtpengine, os.X_OK):
        use_rtpe = False
        rtpe_note = "not measured: %s not found" % a.rtpengine
    elif not use_rtpe:
        rtpe_note = "not measured (--no-rtpengine)"
    os.makedirs(os.path.join(OUT, "work"), exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    t_start = time.time()
    steps = []
    fin = {"status": "skipped (--no-finalize)",
           "seconds": a.finalize_seconds}
    try:
        lgs = Loadgens(build_loadgen(), a.lg_cpus)
        # where SDP says the SRC receives / rtpengine's B side sends:
        # a socket of ours that nobody reads (small buffer: drops)
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sink.bind(("127.0.0.1", 0))
        sink_port = sink.getsockname()[1]
        log("recbench: N %s, %g s, %d reps, recorder %s%s" % (
            a.sessions, a.seconds, a.reps, a.recorder,
            ", rtpengine" if use_rtpe else ""))
        for n in ([] if a.no_ladder else a.sessions):
            try:
                check_space(n, a.seconds)
            except (RuntimeError, OSError) as e:
                log("ladder ends before N=%d: %s" % (n, e))
                break
            st = {"n": n, "runs": []}
            for rep in range(a.reps):
                # who goes first alternates, so drifting machine noise
                # hits both systems alike
                order = ["tally", "rtpengine"] if rep % 2 == 0 else \
                    ["rtpengine", "tally"]
                for system in order:
                    if system == "tally":
                        m = tally_step(a, lgs, n, rep, sink_port)
                        log_tally(n, rep, m)
                    elif use_rtpe:
                        m = rtpe_step(a, lgs, n, rep, sink_port)
                        log_rtpe(n, rep, m)
                        if m.get("blocked") is False:
                            rtpe_note = ("`block media` refused: rtpengine "
                                         "relayed to a discard socket as "
                                         "well")
                    else:
                        continue
                    st["runs"].append(m)
                    time.sleep(0.5)
            st["tally"] = summarize([r for r in st["runs"]
                                     if r["system"] == "tally"])
            if use_rtpe:
                st["rtpengine"] = summarize([r for r in st["runs"]
                                             if r["system"] == "rtpengine"])
            steps.append(st)
            if not st["tally"]["ok_all"] and not a.all_steps:
                log("tally lost packets or failed at N=%d: ladder ends" % n)
                break
        if use_rtpe and rtpe_note is None:
            rtpe_note = ("recording with --recording-method=pcap "
                         "--recording-format=eth, `record call: yes`, "
                         "`block media` (records, does not relay)")
        if not a.no_finalize:
            # the finalizer runs alone now: it gets every core (it is
            # timed by wall clock; its CPU time is reported as well)
            os.sched_setaffinity(0, range(os.cpu_count() or 1))
            fin = finalize_bench(a)
        summ = report(a, steps, fin, rtpe_note)
        doc = {"config": {"sessions": a.sessions, "seconds": a.seconds,
                          "reps": a.reps, "recorder": a.recorder,
                          "rtpengine": a.rtpengine if use_rtpe else None,
                          "pinned": a.daemon_cpus is not None,
                          "nice": a.nice, "rt": a.rt, "audio_pps": AUDIO_PPS,
                          "video_pps": VIDEO_PPS, "audio_size": AUDIO_SIZE,
                          "video_size": VIDEO_SIZE, "quick": q},
               "steps": steps, "finalize": fin, "summary": summ,
               "wall_s": round(time.time() - t_start, 1)}
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)
        print("\nresults: %s (wall %.0f s)" % (a.json,
                                               time.time() - t_start))
        print(json.dumps(summ, sort_keys=True))
        lgs.quit()
    finally:
        run.stop_all()


if __name__ == "__main__":
    main()
