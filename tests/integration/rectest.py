"""Harness for tally-recorder's black-box tests (python3 stdlib only).

    sipp (tests/data/recorder/siprec_src.xml) or SipUac (python) --SIP-->
        tally-recorder --files--> <storage>/<id>/  --API--> /api/v1/...
    the 4-stream pcap (tests/tools/mkrtp.py) --RTP--> the recorder's ports

Stable pieces for every recorder test (rec_sipp.py, rec_crash.py, the
conformance and torture tests):

  Fail, need_tools(), need_root()      a missing prerequisite FAILS the test
  recorder_binary(), tallyctl_binary()
  Recorder      tally-recorder on free loopback ports with its own storage;
                start()/stop()/kill9() by PID, log_text(), session_dir(),
                api (an Api), wait_final(call_id)
  Api           the HTTP/JSON API with the bearer token: get(), recordings(),
                recording(), download()
  make_pcap()   runs tests/tools/mkrtp.py (cached by arguments)
  SippSrc       one sipp SRC run of siprec_src.xml: rc, messages, answer SDP
  SipUac        a minimal SIPREC client over UDP (INVITE/ACK/re-INVITE/BYE)
  siprec_sdp(), siprec_metadata(), multipart()   SIPREC bodies
  read_pcap()   classic pcap -> Pkt records (truncated last record tolerated)
  Replayer      replays a pcap's UDP payloads to the recorder with the
                original timing, recording what was sent and when
  ffprobe(), count_frames(), decode_errors()
  read_wav(), goertzel(), tone_powers(), silent_runs(), rms()
  Checks, run_subtests()               soft assertions, "ok"/"FAIL" lines

Every port is picked at run time, everything is on 127.0.0.1, only
processes started here are stopped, by PID. TALLY_KEEP=1 keeps the
temporary directory; it is also kept when a subtest fails.
Environment: TALLY_RECORDER, TALLYCTL, TALLY_SRC, TALLY_DATA, TALLY_MKRTP
(another generator with mkrtp.py's command line),
TALLY_REC_CACHE (folder for generated pcaps, default: a folder beside
the tally-recorder binary).
"""

import glob
import hashlib
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from tallytest import free_port, free_port_block, port_free, parse_sdp  # noqa: E402,F401
from siptest import Proc, sip_parse, read_sipp_messages, options_ping  # noqa: E402

SRC = os.environ.get("TALLY_SRC") or os.path.normpath(os.path.join(HERE, "..", ".."))
DATA = os.environ.get("TALLY_DATA") or os.path.join(SRC, "tests", "data")
RECDATA = os.path.join(DATA, "recorder")
MKRTP = os.environ.get("TALLY_MKRTP") or os.path.join(SRC, "tests", "tools", "mkrtp.py")
LOCAL = "127.0.0.1"
KEEP = os.environ.get("TALLY_KEEP") == "1"

# the participants of siprec_src.xml (participant_id -> role)
PART_A = "cGFydHktYQ=="
PART_B = "cGFydHktQg=="
# the m= lines of siprec_src.xml / siprec_sdp() default
AV4 = (("audio", "PCMU", "1"), ("video", "H264", "2"),
       ("audio", "PCMU", "3"), ("video", "VP8", "4"))
# what mkrtp.py is asked to put on each of those lines (same order)
AV4_MKRTP = ("audio:pcmu:440", "video:h264:320x240", "audio:pcmu:880",
             "video:vp8:320x240")


def log(msg):
    print(msg, flush=True)


class Fail(Exception):
    """A prerequisite is missing: the test fails (never skips)."""


# ---------------------------------------------------------------- prerequisites

def need_tools(*names):
    missing = [n for n in names if not shutil.which(n)]
    if missing:
        raise Fail("required program(s) not installed: %s (apt-get install "
                   "sip-tester ffmpeg)" % ", ".join(missing))


def need_root(why="sipp pcap play uses raw sockets"):
    if os.geteuid() != 0:
        raise Fail("must run as root: %s" % why)


def _newest(pattern):
    found = [p for p in glob.glob(pattern) if os.access(p, os.X_OK)]
    return max(found, key=os.path.getmtime) if found else None


def recorder_binary():
    b = os.environ.get("TALLY_RECORDER")
    if b:
        if not os.access(b, os.X_OK):
            raise Fail("TALLY_RECORDER=%s is not an executable (is the "
                       "tally-recorder target built?)" % b)
        return b
    b = _newest(os.path.join(SRC, "build*", "src", "recorder", "tally-recorder"))
    if not b:
        raise Fail("tally-recorder not found: TALLY_RECORDER unset and no "
                   "build*/src/recorder/tally-recorder")
    return b


def tallyctl_binary():
    b = os.environ.get("TALLYCTL")
    if b and os.access(b, os.X_OK):
        return b
    return _newest(os.path.join(SRC, "build*", "src", "ctl", "tallyctl"))


def tallyctl_has(cmd):
    """True if tallyctl's usage mentions COMMAND (e.g. 'recordings')."""
    b = tallyctl_binary()
    if not b:
        return False
    r = subprocess.run([b, "--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    return re.search(r"^\s+%s\b" % re.escape(cmd),
                     r.stdout.decode("utf-8", "replace"), re.M) is not None


# ---------------------------------------------------------------- the API

class ApiError(AssertionError):
    pass


class Api:
    """tally-recorder's HTTP/JSON API (recapi.h) with a bearer token."""

    def __init__(self, port, token, host=LOCAL, timeout=10.0):
        self.host, self.port, self.token, self.timeout = host, port, token, timeout

    def request(self, method, path, headers=None, token=True):
        """(status, headers dict (lower-case names), body bytes)."""
        c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        h = dict(headers or {})
        if token and self.token is not None:
            h["Authorization"] = "Bearer %s" % (self.token if token is True else token)
        try:
            c.request(method, path, headers=h)
            r = c.getresponse()
            body = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body
        finally:
            c.close()

    def get(self, path, params=None, expect=200):
        """GET a JSON path; returns the decoded body. expect=None returns
        (status, body) without checking."""
        if params:
            path += "?" + urllib.parse.urlencode(params)
        st, _h, body = self.request("GET", path)
        try:
            obj = json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            raise ApiError("GET %s: %d, body is not JSON: %r" % (path, st, body[:300]))
        if expect is None:
            return st, obj
        if st != expect:
            raise ApiError("GET %s: status %d (want %d): %r" % (path, st, expect, body[:300]))
        return obj

    def status(self):
        return self.get("/api/v1/status")

    def recordings(self, **query):
        r = self.get("/api/v1/recordings", query)
        if not isinstance(r, dict) or not isinstance(r.get("recordings"), list):
            raise ApiError("search answer has no 'recordings' list: %r" % (r,))
        return r["recordings"]

    def recording(self, rec_id):
        return self.get("/api/v1/recordings/" + urllib.parse.quote(rec_id, safe=""))

    def download(self, rec_id, name):
        st, _h, body = self.request("GET", "/api/v1/recordings/%s/files/%s" % (
            urllib.parse.quote(rec_id, safe=""), urllib.parse.quote(name, safe="")))
        if st != 200:
            raise ApiError("download %s/%s: status %d: %r" % (rec_id, name, st, body[:200]))
        return body

    def by_call_id(self, call_id):
        """The recordings whose call_id is CALL_ID (search)."""
        return self.recordings(call_id=call_id)


# ---------------------------------------------------------------- the daemon

class Recorder:
    """tally-recorder on free loopback ports. storage: a folder (kept across
    restarts: pass the same one to a new Recorder); created under tmp if
    None. policies: list of 'PATTERN=MEDIA'."""

    def __init__(self, tmp, name="recorder", storage=None, policies=(),
                 default_media=None, extra=(), token=None, nports=200,
                 log_level=7, max_sessions=None, min_free_mb=0):
        self.tmp = tmp
        self.name = name
        self.binary = recorder_binary()
        self.storage = storage or os.path.join(tmp, "storage")
        os.makedirs(self.storage, exist_ok=True)
        self.policies = list(policies)
        self.default_media = default_media
        self.extra = list(extra)
        self.token = token or "tok-%016x" % random.getrandbits(64)
        self.nports = nports
        self.log_level = log_level
        self.max_sessions = max_sessions
        self.min_free_mb = min_free_mb
        self.proc = None
        self.starts = 0

    def _pick_ports(self):
        self.sip_port = free_port()
        self.http_port = free_port()
        while self.http_port == self.sip_port:
            self.http_port = free_port()
        self.port_min, self.port_max = free_port_block(self.nports)
        self.api = Api(self.http_port, self.token)

    def argv(self):
        a = [self.binary, "--config-file=none", "--foreground",
             "--listen-sip=%s:%d" % (LOCAL, self.sip_port),
             "--interface=" + LOCAL,
             "--port-min=%d" % self.port_min, "--port-max=%d" % self.port_max,
             "--storage=" + self.storage,
             "--listen-http=%s:%d" % (LOCAL, self.http_port),
             "--api-token=" + self.token,
             "--log-level=%d" % self.log_level,
             "--pidfile=" + os.path.join(self.tmp, self.name + ".pid"),
             "--min-free-mb=%d" % self.min_free_mb]
        for p in self.policies:
            a.append("--policy=" + p)
        if self.default_media:
            a.append("--default-media=" + self.default_media)
        if self.max_sessions is not None:
            a.append("--max-sessions=%d" % self.max_sessions)
        return a + self.extra

    def start(self, wait=15.0):
        """Start and wait until the API answers /api/v1/status and SIP
        answers OPTIONS. Raises Fail with the log tail otherwise."""
        self._pick_ports()
        self.starts += 1
        logname = self.name if self.starts == 1 else "%s.%d" % (self.name, self.starts)
        argv = self.argv()
        log("# started: %s" % " ".join(argv))
        self.proc = Proc(logname, argv, self.tmp)
        self.pid = self.proc.pid
        end = time.monotonic() + wait
        api_ok = sip_ok = False
        while time.monotonic() < end:
            if not self.proc.alive():
                raise Fail("tally-recorder exited with %s at start\n%s" % (
                    self.proc.p.returncode, self.proc.tail(30)))
            if not api_ok:
                try:
                    api_ok = self.api.request("GET", "/api/v1/status")[0] == 200
                except OSError:
                    pass
            if api_ok and not sip_ok:
                sip_ok = options_ping(self.sip_port, timeout=0.5) is not None
            if api_ok and sip_ok:
                return self
            time.sleep(0.1)
        tailtxt = self.proc.tail(30)
        self.stop()
        raise Fail("tally-recorder not ready within %.0fs (API %s, SIP OPTIONS %s)\n%s" % (
            wait, "ok" if api_ok else "no answer", "ok" if sip_ok else "no answer", tailtxt))

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def stop(self, grace=10.0):
        """SIGTERM the PID we started (SIGKILL after GRACE); the exit code."""
        if self.proc is None:
            return None
        return self.proc.stop(signal.SIGTERM, grace)

    def kill9(self):
        """SIGKILL exactly the process we started; returns when it is gone."""
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(10)
        return self.proc.p.returncode

    def log_text(self):
        try:
            with open(self.proc.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    def log_tail(self, n=40):
        return self.proc.tail(n) if self.proc else "  | (not started)"

    def log_lines(self, regex):
        r = re.compile(regex)
        return [ln for ln in self.log_text().splitlines() if r.search(ln)]

    def session_dir(self, rec_id):
        return os.path.join(self.storage, rec_id)

    def find_session_dirs(self, call_id):
        """Folders under the storage whose session.json has CALL_ID (works
        without the daemon)."""
        out = []
        for d in sorted(glob.glob(os.path.join(self.storage, "*", "session.json"))):
            try:
                with open(d) as f:
                    sj = json.load(f)
            except (OSError, ValueError):
                continue
            if sj.get("call_id") == call_id:
                out.append(os.path.dirname(d))
        return out

    def wait_final(self, call_id, timeout=60.0, states=("complete", "failed")):
        """Poll the API until the recording of CALL_ID is in one of STATES;
        returns its details. Raises AssertionError saying what was seen."""
        end = time.monotonic() + timeout
        seen = "no recording with that call_id"
        while True:
            try:
                rows = self.api.by_call_id(call_id)
            except (OSError, ApiError) as e:
                rows, seen = [], "API error: %s" % e
            if len(rows) > 1:
                raise AssertionError("%d recordings for call_id %s: %s" % (
                    len(rows), call_id, [r.get("id") for r in rows]))
            if rows:
                seen = "state %r" % rows[0].get("state")
                if rows[0].get("state") in states:
                    return self.api.recording(rows[0]["id"])
            if time.monotonic() >= end:
                raise AssertionError("recording of %s not %s within %.0fs (last: %s)" % (
                    call_id, "/".join(states), timeout, seen))
            if not self.alive():
                raise AssertionError("tally-recorder died (rc %s) while waiting for %s" % (
                    self.proc.p.returncode, call_id))
            time.sleep(0.2)


# ---------------------------------------------------------------- media files

def make_pcap(out_dir, seconds, streams=AV4_MKRTP, base_port=20000,
              src_port=None, pause=None, cache=True):
    """Runs tests/tools/mkrtp.py; returns (pcap path, description dict from
    its .json). pause=(start, end) seconds. Results are cached by argument
    list in $TALLY_REC_CACHE (or beside the recorder binary) because the
    encoders are slow on a shared machine."""
    if not os.path.exists(MKRTP):
        raise Fail("the media generator %s does not exist" % MKRTP)
    args = ["--seconds", str(seconds), "--base-port", str(base_port)]
    if src_port:
        args += ["--src-port", str(src_port)]
    if pause:
        args += ["--pause", "%g:%g" % pause]
    args += list(streams)
    key = hashlib.sha256(json.dumps(args).encode() + _file_sha(MKRTP).encode()).hexdigest()[:16]
    cdir = None
    if cache:
        cdir = os.environ.get("TALLY_REC_CACHE")
        if not cdir:
            try:
                cdir = os.path.join(os.path.dirname(recorder_binary()), "test-media")
            except Fail:
                cdir = None
    if cdir:
        os.makedirs(cdir, exist_ok=True)
        pcap = os.path.join(cdir, "av-%s.pcap" % key)
    else:
        pcap = os.path.join(out_dir, "av-%s.pcap" % key)
    desc = os.path.splitext(pcap)[0] + ".json"
    if not (os.path.exists(pcap) and os.path.exists(desc)):
        tmp_pcap = pcap + ".%d.tmp.pcap" % os.getpid()
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, MKRTP, "--out", tmp_pcap] + args,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        if r.returncode != 0:
            raise Fail("mkrtp.py %s failed (rc %d):\n%s" % (
                " ".join(args), r.returncode, r.stdout.decode("utf-8", "replace")[-2000:]))
        tmp_desc = os.path.splitext(tmp_pcap)[0] + ".json"
        if not os.path.exists(tmp_desc):
            raise Fail("mkrtp.py did not write %s" % tmp_desc)
        with open(tmp_desc) as f:
            d = json.load(f)
        d["pcap"] = os.path.basename(pcap)
        with open(tmp_desc, "w") as f:
            json.dump(d, f, indent=1)
        os.replace(tmp_pcap, pcap)
        os.replace(tmp_desc, desc)
        log("# mkrtp %s: %.1fs" % (" ".join(args), time.monotonic() - t0))
    with open(desc) as f:
        return pcap, json.load(f)


def _file_sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Pkt:
    __slots__ = ("ts", "src", "sport", "dst", "dport", "payload")

    def __init__(self, ts, src, sport, dst, dport, payload):
        self.ts, self.src, self.sport = ts, src, sport
        self.dst, self.dport, self.payload = dst, dport, payload

    def __repr__(self):
        return "Pkt(%.6f %s:%d->%s:%d %dB)" % (self.ts, self.src, self.sport,
                                              self.dst, self.dport, len(self.payload))


def read_pcap(path):
    """(list of Pkt (UDP over IPv4/IPv6), info dict: linktype, records,
    truncated (bytes of an incomplete last record), skipped)."""
    with open(path, "rb") as f:
        data = f.read()
    info = {"linktype": None, "records": 0, "truncated": 0, "skipped": 0,
            "magic": data[:4].hex()}
    if len(data) < 24:
        info["truncated"] = len(data)
        return [], info
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError("%s: not a classic pcap (magic %s)" % (path, magic.hex()))
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    link = struct.unpack(e + "I", data[20:24])[0]
    info["linktype"] = link
    out = []
    i = 24
    while i < len(data):
        if i + 16 > len(data):
            info["truncated"] = len(data) - i
            break
        sec, frac, incl, _orig = struct.unpack(e + "IIII", data[i:i + 16])
        if i + 16 + incl > len(data):
            info["truncated"] = len(data) - i
            break
        pkt = data[i + 16:i + 16 + incl]
        i += 16 + incl
        info["records"] += 1
        ts = sec + frac / (1e9 if nano else 1e6)
        if link == 1:
            et, ip = pkt[12:14], pkt[14:]
        elif link == 113:
            et, ip = pkt[14:16], pkt[16:]
        elif link == 276:
            et, ip = pkt[0:2], pkt[20:]
        elif link == 0:
            fam = struct.unpack("<I", pkt[:4])[0]
            et, ip = (b"\x08\x00" if fam == 2 else b"\x86\xdd"), pkt[4:]
        elif link in (101, 228, 229, 12, 14):
            ip = pkt
            et = b"\x08\x00" if ip[:1] and ip[0] >> 4 == 4 else b"\x86\xdd"
        else:
            info["skipped"] += 1
            continue
        if et == b"\x08\x00" and len(ip) >= 20 and ip[0] >> 4 == 4:
            ihl = (ip[0] & 15) * 4
            if ip[9] != 17:
                info["skipped"] += 1
                continue
            src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
            l4 = ip[ihl:]
        elif et == b"\x86\xdd" and len(ip) >= 40:
            if ip[6] != 17:
                info["skipped"] += 1
                continue
            src = socket.inet_ntop(socket.AF_INET6, ip[8:24])
            dst = socket.inet_ntop(socket.AF_INET6, ip[24:40])
            l4 = ip[40:]
        else:
            info["skipped"] += 1
            continue
        if len(l4) < 8:
            info["skipped"] += 1
            continue
        sp, dp, ulen = struct.unpack("!HHH", l4[:6])
        out.append(Pkt(ts, src, sp, dst, dp, bytes(l4[8:ulen])))
    return out, info


def rtp_info(payload):
    """{'pt','seq','ts','ssrc','marker'} for RTP, {'rtcp': pt} for RTCP,
    None otherwise."""
    if len(payload) < 8 or payload[0] >> 6 != 2:
        return None
    if 200 <= payload[1] <= 211:
        return {"rtcp": payload[1]}
    if len(payload) < 12:
        return None
    seq, ts, ssrc = struct.unpack("!HII", payload[2:12])
    return {"pt": payload[1] & 0x7f, "marker": bool(payload[1] & 0x80),
            "seq": seq, "ts": ts, "ssrc": ssrc}


class Replayer(threading.Thread):
    """Sends the UDP payloads of PKTS (from read_pcap) with their original
    timing: a packet to pcap port P goes to DST_BASE + (P - lowest pcap
    destination port), from SRC_BASE + the same offset (sipp's
    play_pcap rule, see siprec_src.xml). self.sent: [(monotonic time of
    the send, offset, payload)]. stop() ends it early."""

    def __init__(self, pkts, dst_base, src_base, dst_host=LOCAL, offsets=None):
        threading.Thread.__init__(self, daemon=True)
        self.pkts = sorted(pkts, key=lambda p: p.ts)
        self.base = min(p.dport for p in self.pkts)
        self.dst_base, self.src_base, self.host = dst_base, src_base, dst_host
        self.only = set(offsets) if offsets is not None else None
        self.sent = []
        self.errors = []
        self._halt = threading.Event()
        self.socks = {}
        for p in self.pkts:
            off = p.dport - self.base
            if off not in self.socks:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((LOCAL, src_base + off))
                self.socks[off] = s
        self.started_at = None

    def run(self):
        t0 = time.monotonic()
        self.started_at = t0
        p0 = self.pkts[0].ts
        for p in self.pkts:
            if self._halt.is_set():
                break
            due = t0 + (p.ts - p0)
            while True:
                d = due - time.monotonic()
                if d <= 0 or self._halt.is_set():
                    break
                self._halt.wait(min(d, 0.05))
            if self._halt.is_set():
                break
            off = p.dport - self.base
            if self.only is not None and off not in self.only:
                continue
            try:
                self.socks[off].sendto(p.payload, (self.host, self.dst_base + off))
                self.sent.append((time.monotonic(), off, p.payload))
            except OSError as e:
                self.errors.append((off, str(e)))

    def stop(self):
        self._halt.set()
        self.join(5)

    def close(self):
        for s in self.socks.values():
            s.close()


# ---------------------------------------------------------------- SIPREC bodies

def siprec_sdp(ports, streams=AV4, direction="sendonly", version=1,
               addr=LOCAL, fmtp=None):
    """The SRC's offer: one m= line per (media, codec, label) of STREAMS on
    PORTS[i]. Codecs: PCMU (PT 0), H264 (96, packetization-mode=1), VP8
    (97). DIRECTION: one for all or a list."""
    pts = {"PCMU": (0, "PCMU/8000", None),
           "PCMA": (8, "PCMA/8000", None),
           "H264": (96, "H264/90000", "packetization-mode=1;profile-level-id=42c01e"),
           "VP8": (97, "VP8/90000", None)}
    lines = ["v=0", "o=tally-src 1000 %d IN IP4 %s" % (version, addr), "s=-",
             "c=IN IP4 %s" % addr, "t=0 0"]
    for i, (media, codec, label) in enumerate(streams):
        pt, rtpmap, fm = pts[codec]
        if fmtp and codec in fmtp:
            fm = fmtp[codec]
        d = direction if isinstance(direction, str) else direction[i]
        lines += ["m=%s %d RTP/AVP %d" % (media, ports[i], pt),
                  "a=rtpmap:%d %s" % (pt, rtpmap)]
        if fm:
            lines.append("a=fmtp:%d %s" % (pt, fm))
        lines += ["a=label:%s" % label, "a=%s" % d]
    return "\r\n".join(lines) + "\r\n"


def siprec_metadata(participants=None, session_id="dGFsbHktc2Vzc2lvbi0x",
                    datamode="complete"):
    """RFC 7865 metadata. participants: [(participant_id, aor, name,
    [send labels], [recv labels])]; default: siprec_src.xml's A and B.
    Stream ids are 'stream-<label>'; partial mode writes only the
    participantstreamassoc elements."""
    if participants is None:
        participants = [(PART_A, "sip:alice@example.com", "Alice", ["1", "2"], ["3", "4"]),
                        (PART_B, "sip:bob@example.com", "Bob", ["3", "4"], ["1", "2"])]
    labels = []
    for p in participants:
        for lab in list(p[3]) + list(p[4]):
            if lab not in labels:
                labels.append(lab)
    x = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
         "<recording xmlns='urn:ietf:params:xml:ns:recording:1'>",
         "<datamode>%s</datamode>" % datamode]
    if datamode == "complete":
        x.append("<session session_id=\"%s\"></session>" % session_id)
        for pid, aor, name, _s, _r in participants:
            x += ["<participant participant_id=\"%s\">" % pid,
                  "<nameID aor=\"%s\"><name xml:lang=\"en\">%s</name></nameID>" % (aor, name),
                  "</participant>"]
        for lab in labels:
            x.append("<stream stream_id=\"stream-%s\" session_id=\"%s\"><label>%s</label></stream>"
                     % (lab, session_id, lab))
        for pid, _a, _n, _s, _r in participants:
            x.append("<participantsessionassoc participant_id=\"%s\" session_id=\"%s\">"
                     "<associate-time>2024-01-01T00:00:00Z</associate-time>"
                     "</participantsessionassoc>" % (pid, session_id))
    for pid, _a, _n, send, recv in participants:
        x.append("<participantstreamassoc participant_id=\"%s\">" % pid)
        x += ["<send>stream-%s</send>" % lab for lab in send]
        x += ["<recv>stream-%s</recv>" % lab for lab in recv]
        x.append("</participantstreamassoc>")
    x.append("</recording>")
    return "\r\n".join(x) + "\r\n"


def multipart(parts, boundary="tally-rectest-boundary"):
    """(content-type value, body) of a multipart/mixed body; parts:
    [(content type, body, extra header lines)]."""
    out = []
    for ctype, body, extra in parts:
        out.append("--%s\r\nContent-Type: %s\r\n%s\r\n%s" % (
            boundary, ctype, "".join(h + "\r\n" for h in extra), body))
    return ("multipart/mixed;boundary=%s" % boundary,
            "\r\n".join(out) + "\r\n--%s--\r\n" % boundary)


def siprec_body(ports, sdp_kw=None, meta_kw=None):
    """(content type, body): SDP + recording-session metadata."""
    return multipart([("application/sdp", siprec_sdp(ports, **(sdp_kw or {})), []),
                      ("application/rs-metadata", siprec_metadata(**(meta_kw or {})),
                       ["Content-Disposition: recording-session"])])


def answer_media(sdp_text):
    """tallytest.parse_sdp()'s media list of an SDP answer (kind, port,
    direction, label, fmts, ...)."""
    return parse_sdp(sdp_text)["media"]


def sdp_of(msg):
    """The SDP of a parsed SIP message (the application/sdp part of a
    multipart body too), '' if none."""
    body = msg["body"]
    ctype = msg["hdr"].get("content-type", "")
    if ctype.lower().startswith("multipart/"):
        m = re.search(r'boundary="?([^";]+)"?', ctype)
        if not m:
            return ""
        for part in body.split("--" + m.group(1)):
            head, _, pbody = part.partition("\r\n\r\n")
            if "application/sdp" in head.lower():
                return pbody
        return ""
    return body if "v=0" in body else ""


# ---------------------------------------------------------------- sipp SRC

class SippSrc:
    """One run of sipp with tests/data/recorder/siprec_src.xml against REC.
    pause: None or (at_ms, len_ms, rest_ms); else media for call_ms."""

    def __init__(self, tmp, rec, pcap, name="src", call_ms=6000, pause=None,
                 aor_a="sip:alice@example.com", aor_b="sip:bob@example.com",
                 scenario="siprec_src.xml", transport="u1", timeout=60, extra=()):
        self.tmp, self.rec, self.name = tmp, rec, name
        self.scenario = os.path.join(RECDATA, scenario)
        if not os.path.exists(self.scenario):
            raise Fail("scenario %s missing" % self.scenario)
        self.sip_port = free_port()
        self.mp = free_port_block(8)[0]
        self.msgfile = os.path.join(tmp, name + "_messages.log")
        self.errfile = os.path.join(tmp, name + "_errors.log")
        at, ln, rest = pause or (0, 0, 0)
        keys = {"pcap": pcap, "audio2_port": self.mp + 4, "aor_a": aor_a,
                "aor_b": aor_b, "call_ms": call_ms, "pause_at_ms": at,
                "pause_ms": ln, "rest_ms": rest}
        argv = ["sipp", "%s:%d" % (LOCAL, rec.sip_port), "-sf", self.scenario,
                "-s", "srs", "-t", transport, "-i", LOCAL, "-p", str(self.sip_port),
                "-mi", LOCAL, "-mp", str(self.mp), "-m", "1", "-l", "1",
                "-nostdin", "-timeout", str(timeout), "-timeout_error",
                "-trace_msg", "-message_file", self.msgfile,
                "-trace_err", "-error_file", self.errfile,
                "-max_recv_loops", "1000"]
        for k, v in keys.items():
            argv += ["-key", k, str(v)]
        argv += list(extra)
        self.t_start = time.time()
        self.proc = Proc(name, argv, tmp)
        self.rc = None

    def wait(self, timeout):
        rc = self.proc.wait(timeout)
        if rc is None:
            self.proc.stop(signal.SIGKILL)
            rc = "killed after %ss" % timeout
        self.rc = rc
        self.t_end = time.time()
        return rc

    def stop(self):
        if self.proc.alive():
            self.proc.stop(signal.SIGKILL)

    def messages(self, direction=None):
        return [m for d, m in read_sipp_messages(self.msgfile)
                if direction is None or d == direction]

    def flow(self):
        seq = []
        for d, m in read_sipp_messages(self.msgfile):
            seq.append(("> " if d == "sent" else "< ") +
                       (m["kind"] if m["code"] is None else "%s(%s)" % (m["kind"], m["method"])))
        return " ".join(seq)

    def call_id(self):
        for m in self.messages("sent"):
            if m["kind"] == "INVITE":
                return m["hdr"].get("call-id")
        return None

    def responses(self, code=None, cseq=None):
        return [m for m in self.messages("recv") if m["code"] is not None and
                (code is None or m["code"] == code) and
                (cseq is None or m["cseq"].split()[0] == str(cseq))]

    def diag(self):
        out = ["  sipp %s rc=%s flow: %s" % (self.name, self.rc, self.flow())]
        try:
            with open(self.errfile, "rb") as f:
                err = f.read().decode("utf-8", "replace").strip().splitlines()
            if err:
                out.append("\n".join("  | " + ln for ln in err[-12:]))
        except OSError:
            pass
        out.append(self.proc.tail(6))
        return "\n".join(out)


# ---------------------------------------------------------------- python SRC

class SipUac:
    """A minimal SIPREC client over UDP for one dialog: invite() (with
    retransmissions), ack(), reinvite(), bye(), request(). Responses are
    siptest.sip_parse() dicts."""

    def __init__(self, rec_port, host=LOCAL, user="src", ruri_user="srs"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOCAL, 0))
        self.lport = self.sock.getsockname()[1]
        self.rhost, self.rport = host, rec_port
        self.call_id = "rectest-%016x@%s" % (random.getrandbits(64), LOCAL)
        self.tag = "src%08x" % random.getrandbits(32)
        self.user = user
        self.ruri = "sip:%s@%s:%d" % (ruri_user, host, rec_port)
        self.to = "<sip:%s@%s:%d>" % (ruri_user, host, rec_port)
        self.remote_target = self.ruri
        self.to_tag = None
        self.cseq = 0
        self.received = []

    def close(self):
        self.sock.close()

    def _msg(self, method, cseq, branch, extra=(), body="", ctype=None, ruri=None):
        to = self.to + (";tag=%s" % self.to_tag if self.to_tag else "")
        h = ["%s %s SIP/2.0" % (method, ruri or self.remote_target),
             "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (LOCAL, self.lport, branch),
             "Max-Forwards: 70",
             "From: <sip:%s@%s:%d>;tag=%s" % (self.user, LOCAL, self.lport, self.tag),
             "To: %s" % to, "Call-ID: %s" % self.call_id,
             "CSeq: %d %s" % (cseq, method),
             "Contact: <sip:%s@%s:%d>;+sip.src" % (self.user, LOCAL, self.lport)]
        h += list(extra)
        if ctype:
            h.append("Content-Type: %s" % ctype)
        h.append("Content-Length: %d" % len(body.encode()))
        return ("\r\n".join(h) + "\r\n\r\n" + body).encode()

    def _recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, _ = self.sock.recvfrom(65535)
        except (socket.timeout, ConnectionRefusedError):
            return None
        m = sip_parse(data)
        if m:
            self.received.append(m)
        return m

    def transaction(self, method, extra=(), body="", ctype=None, timeout=8.0,
                    ruri=None, cseq=None):
        """Send a request and wait for its final response (retransmitting
        every 0.5 s..4 s until a provisional one). Returns the final
        response dict or None on timeout."""
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        branch = "z9hG4bK%016x" % random.getrandbits(64)
        data = self._msg(method, cseq, branch, extra, body, ctype, ruri)
        end = time.monotonic() + timeout
        t1, nxt, provisional = 0.5, time.monotonic(), False
        while time.monotonic() < end:
            if not provisional and time.monotonic() >= nxt:
                self.sock.sendto(data, (self.rhost, self.rport))
                nxt = time.monotonic() + t1
                t1 = min(t1 * 2, 4.0)
            m = self._recv(min(nxt, end) - time.monotonic() if not provisional
                           else end - time.monotonic())
            if not m or m["code"] is None:
                if m and m["kind"] != "ACK":
                    self._answer_request(m)
                continue
            if m["hdr"].get("call-id") != self.call_id or \
               m["cseq"] != "%d %s" % (cseq, method):
                continue
            if m["code"] < 200:
                provisional = True
                continue
            return m
        return None

    def _answer_request(self, m):
        """In-dialog requests from the recorder (none expected): 200 to a
        BYE, 501 otherwise; they stay in self.received."""
        code = "200 OK" if m["kind"] == "BYE" else "501 Not Implemented"
        hdrs = ["SIP/2.0 " + code] + ["Via: " + v for k, v in m["hdrs"] if k == "via"]
        for k in ("from", "to", "call-id", "cseq"):
            hdrs.append("%s: %s" % (k.title() if k != "call-id" else "Call-ID", m["hdr"].get(k, "")))
        hdrs.append("Content-Length: 0")
        self.sock.sendto(("\r\n".join(hdrs) + "\r\n\r\n").encode(), (self.rhost, self.rport))

    def _learn(self, resp):
        if resp and 200 <= resp["code"] < 300:
            m = re.search(r";\s*tag=([^;>\s]+)", resp["hdr"].get("to", ""))
            if m:
                self.to_tag = m.group(1)
            c = re.search(r"<([^>]+)>", resp["hdr"].get("contact", ""))
            if c:
                self.remote_target = c.group(1)

    def invite(self, ctype, body, extra=("Require: siprec",
                                          "Accept: application/sdp, application/rs-metadata"),
               timeout=8.0):
        """INVITE (initial or re-INVITE); a 2xx is ACKed. Returns the final
        response (or None)."""
        r = self.transaction("INVITE", extra, body, ctype, timeout)
        self._learn(r)
        if r is not None:
            self.ack(r)
        return r

    def ack(self, resp):
        cseq = int(resp["cseq"].split()[0])
        if resp["code"] >= 300:
            return     # non-2xx ACK is hop-by-hop: the recorder stops resending on its own
        data = self._msg("ACK", cseq, "z9hG4bK%016x" % random.getrandbits(64))
        self.sock.sendto(data, (self.rhost, self.rport))

    def bye(self, timeout=8.0):
        return self.transaction("BYE", timeout=timeout)


# ---------------------------------------------------------------- ffprobe / ffmpeg

def ffprobe(path):
    """ffprobe's JSON (format + streams) of PATH."""
    r = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json",
                        "-show_format", "-show_streams", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise AssertionError("ffprobe %s failed: %s" % (
            os.path.basename(path), r.stderr.decode("utf-8", "replace").strip()[:300]))
    return json.loads(r.stdout.decode("utf-8"))


def probe_summary(pj):
    """[(codec_type, codec_name)] of an ffprobe JSON."""
    return [(s.get("codec_type"), s.get("codec_name")) for s in pj.get("streams", [])]


def stream_duration(pj, s):
    """Seconds of stream S (its duration, else its DURATION tag (mkv),
    else the format's)."""
    d = s.get("duration")
    if d not in (None, "N/A"):
        return float(d)
    tag = (s.get("tags") or {}).get("DURATION")
    if tag:
        h, mi, sec = tag.split(":")
        return int(h) * 3600 + int(mi) * 60 + float(sec)
    return float(pj["format"]["duration"])


def count_frames(path, sel="v:0"):
    """Frames ffprobe decodes from stream SEL (a decode, not the header)."""
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", sel,
                        "-show_entries", "stream=nb_read_frames", "-print_format", "json", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if r.returncode != 0:
        raise AssertionError("ffprobe -count_frames %s: %s" % (
            os.path.basename(path), r.stderr.decode("utf-8", "replace")[:300]))
    st = json.loads(r.stdout.decode()).get("streams") or [{}]
    try:
        return int(st[0].get("nb_read_frames", 0))
    except ValueError:
        return 0


def decode_errors(path, sel=None):
    """Lines ffmpeg prints at -v error while decoding PATH (all streams or
    -map SEL) to the null muxer."""
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-i", path]
    if sel:
        argv += ["-map", "0:" + sel]
    argv += ["-f", "null", "-"]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    lines = [ln for ln in r.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    if r.returncode != 0:
        lines.append("ffmpeg exit %d" % r.returncode)
    return lines


# ---------------------------------------------------------------- WAV analysis

def read_wav(path):
    """(rate, [channel sample lists as floats in -1..1]). PCM 8/16/24/32,
    IEEE float 32/64, G.711 u-law/A-law, WAVE_FORMAT_EXTENSIBLE."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AssertionError("%s is not a RIFF/WAVE file" % path)
    i, fmt, pcm = 12, None, None
    while i + 8 <= len(data):
        cid, size = data[i:i + 4], struct.unpack("<I", data[i + 4:i + 8])[0]
        body = data[i + 8:i + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            pcm = body
        i += 8 + size + (size & 1)
    if fmt is None or pcm is None:
        raise AssertionError("%s: no fmt or data chunk" % path)
    tag, ch, rate, _br, align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == 0xFFFE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]
    width = align // ch if ch else 0
    n = len(pcm) // align if align else 0
    if tag == 1 and bits <= 8:
        vals = [(b - 128) / 128.0 for b in pcm[:n * align]]
    elif tag == 1 and width == 2:
        vals = [v / 32768.0 for v in struct.unpack("<%dh" % (n * ch), pcm[:n * align])]
    elif tag == 1 and width == 3:
        vals = [int.from_bytes(pcm[k:k + 3], "little", signed=True) / 8388608.0
                for k in range(0, n * align, 3)]
    elif tag == 1 and width == 4:
        vals = [v / 2147483648.0 for v in struct.unpack("<%di" % (n * ch), pcm[:n * align])]
    elif tag == 3 and width == 4:
        vals = list(struct.unpack("<%df" % (n * ch), pcm[:n * align]))
    elif tag == 3 and width == 8:
        vals = list(struct.unpack("<%dd" % (n * ch), pcm[:n * align]))
    elif tag in (6, 7) and width == 1:
        dec = _alaw if tag == 6 else _ulaw
        vals = [dec(b) / 32768.0 for b in pcm[:n * align]]
    else:
        raise AssertionError("%s: unsupported WAV format tag %d, %d bits" % (path, tag, bits))
    return rate, [vals[c::ch] for c in range(ch)]


def _ulaw(b):
    b = ~b & 0xff
    t = ((b & 0x0f) << 3) + 0x84
    t <<= (b & 0x70) >> 4
    return (0x84 - t) if b & 0x80 else (t - 0x84)


def _alaw(b):
    b ^= 0x55
    t = (b & 0x0f) << 4
    seg = (b & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if b & 0x80 else -t


def rms(x):
    return math.sqrt(sum(v * v for v in x) / len(x)) if x else 0.0


def goertzel(x, rate, freq):
    """Normalised power of FREQ in X (amplitude^2 / 2 for a pure tone)."""
    n = len(x)
    if n == 0:
        return 0.0
    k = 2.0 * math.cos(2.0 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for v in x:
        s0 = v + k * s1 - s2
        s2, s1 = s1, s0
    p = s1 * s1 + s2 * s2 - k * s1 * s2
    return 2.0 * p / (n * n)


def tone_powers(x, rate, freqs=(440, 880), start=None, secs=1.0):
    """{freq: goertzel power} over SECS seconds of X from START (default:
    the middle)."""
    n = int(secs * rate)
    if start is None:
        i = max(0, len(x) // 2 - n // 2)
    else:
        i = int(start * rate)
    seg = x[i:i + n]
    return {f: goertzel(seg, rate, f) for f in freqs}


def window_rms(x, rate, win=0.02):
    n = max(1, int(win * rate))
    return [rms(x[i:i + n]) for i in range(0, len(x) - n + 1, n)], n / rate


def silent_runs(x, rate, win=0.02, rel=0.05, min_len=0.1):
    """[(start s, end s)] of runs of windows whose RMS is below REL x the
    median RMS of the loud windows, at least MIN_LEN long."""
    w, step = window_rms(x, rate, win)
    loud = sorted(v for v in w if v > 1e-4)
    if not loud:
        return [(0.0, len(x) / rate)]
    thr = rel * loud[len(loud) // 2]
    out, start = [], None
    for i, v in enumerate(w + [float("inf")]):
        if v < thr and start is None:
            start = i
        elif v >= thr and start is not None:
            if (i - start) * step >= min_len:
                out.append((start * step, i * step))
            start = None
    return out


# ---------------------------------------------------------------- many folders

def make_session_template(tmp, seconds=0.5):
    """One real session (INVITE, 50 pps PCMU on the first m= line, BYE) on a
    recorder of its own, finalized: returns (session.json dict, media.pcap
    bytes) to clone folders from (populate_storage)."""
    rec = Recorder(tmp, name="template", storage=os.path.join(tmp, "template"))
    rec.start()
    try:
        uac = SipUac(rec.sip_port)
        ctype, body = siprec_body([30000, 30002, 30004, 30006])
        r = uac.invite(ctype, body)
        if r is None or r["code"] != 200:
            raise AssertionError("template INVITE: %s" % (r["first"] if r else "no answer"))
        port = answer_media(sdp_of(r))[0]["port"]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(int(seconds * 50)):
            s.sendto(struct.pack("!BBHII", 0x80, 0, i, i * 160, 0x5eed) + bytes(160),
                     (LOCAL, port))
            time.sleep(0.02)
        s.close()
        uac.bye()
        uac.close()
        det = rec.wait_final(uac.call_id, timeout=60, states=("complete",))
        d = rec.session_dir(det["id"])
        with open(os.path.join(d, "session.json")) as f:
            sj = json.load(f)
        with open(os.path.join(d, "media.pcap"), "rb") as f:
            pcap = f.read()
    finally:
        rec.stop()
    return sj, pcap


def populate_storage(storage, template, n, unfinished=False, prefix="20261201T000000Z"):
    """N session folders cloned from TEMPLATE ((session.json dict, pcap)):
    complete ones get only their session.json; UNFINISHED ones are left
    "recording" with the template's media.pcap, as a crash leaves them.
    Returns the ids made."""
    sj, pcap = template
    ids = []
    base = random.getrandbits(28) << 4
    for i in range(n):
        rid = "%s-%08x" % (prefix, (base + i) & 0xffffffff)
        d = os.path.join(storage, rid)
        os.mkdir(d, 0o750)
        one = dict(sj)
        one["id"] = rid
        one["call_id"] = "clone-%s@%s" % (rid, LOCAL)
        if unfinished:
            one["state"] = "recording"
            one["files"] = []
            one.pop("reason", None)
            one["stopped"] = 0
            with open(os.path.join(d, "media.pcap"), "wb") as f:
                f.write(pcap)
        with open(os.path.join(d, "session.json"), "w") as f:
            json.dump(one, f)
        ids.append(rid)
    return ids


def catalog_states(storage):
    """{state: rows} of <storage>/catalog.sqlite (read-only)."""
    import sqlite3
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(storage, "catalog.sqlite"),
                         uri=True, timeout=10)
    try:
        return dict(db.execute("SELECT state, count(*) FROM recordings GROUP BY state"))
    finally:
        db.close()


def start_timed(rec, timeout=120.0, until_recovered=None):
    """Start REC (a Recorder not yet started) and time, from the spawn:
    the first SIP OPTIONS answer, the first GET /api/v1/status answer, and
    (UNTIL_RECOVERED: callable(status dict) -> bool) when recovery is
    over. Returns {"sip": s, "http": s, "recovered": s or None,
    "recovery_running_at_first_answer": bool or None}."""
    rec._pick_ports()
    rec.starts += 1
    argv = rec.argv()
    log("# started: %s" % " ".join(argv))
    t0 = time.monotonic()
    rec.proc = Proc("%s.%d" % (rec.name, rec.starts), argv, rec.tmp)
    rec.pid = rec.proc.pid
    out = {"sip": None, "http": None, "recovered": None,
           "recovery_running_at_first_answer": None}
    end = t0 + timeout
    while time.monotonic() < end:
        if not rec.proc.alive():
            raise Fail("tally-recorder exited with %s at start\n%s" % (
                rec.proc.p.returncode, rec.proc.tail(30)))
        if out["sip"] is None and options_ping(rec.sip_port, timeout=0.05) is not None:
            out["sip"] = time.monotonic() - t0
        st = None
        try:
            code, _h, body = rec.api.request("GET", "/api/v1/status")
            if code == 200:
                st = json.loads(body.decode())["daemon"]
        except (OSError, ValueError):
            pass
        if st is not None and out["http"] is None:
            out["http"] = time.monotonic() - t0
            rcv = st.get("recovery")
            out["recovery_running_at_first_answer"] = bool(rcv and rcv.get("running"))
        if st is not None and out["sip"] is not None:
            if until_recovered is None:
                return out
            if until_recovered(st):
                out["recovered"] = time.monotonic() - t0
                return out
        time.sleep(0.02)
    raise AssertionError("not serving / not recovered within %.0fs: %s" % (timeout, out))


# ---------------------------------------------------------------- runner

class Checks:
    """Soft assertions in one subtest; all failures are reported."""

    def __init__(self):
        self.fails = []
        self.diags = []
        self.notes = []

    def __call__(self, cond, msg):
        if not cond:
            self.fails.append(msg)
        return bool(cond)

    def diag(self, text):
        self.diags.append(text)

    def note(self, text):
        self.notes.append(text)


def make_tmp(name):
    d = tempfile.mkdtemp(prefix="tally-%s-" % name)
    os.chmod(d, 0o755)
    return d


def run_subtests(tests, tmp, argv=None, recorders=(), cleanup=True):
    """tests: [(name, fn(c))]. Prints 'ok NAME' / 'FAIL NAME: why' (with
    diagnostics and the recorders' log tails), then 'N passed, M failed';
    returns the exit status (1 if anything failed or nothing ran). The temp
    directory is removed unless something failed or TALLY_KEEP=1 (or
    CLEANUP is False: then call cleanup_tmp() yourself).
    RECORDERS: callable returning the Recorder objects to show logs of."""
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        tests = [t for t in tests if t[0] in argv]
    passed = failed = 0
    for name, fn in tests:
        c = Checks()
        t0 = time.monotonic()
        try:
            fn(c)
        except Exception as e:       # noqa: BLE001 - every error is a failure
            first = str(e).splitlines()[0] if str(e) else ""
            c.fails.append("%s: %s" % (type(e).__name__, first))
            if not isinstance(e, (AssertionError, Fail)):
                c.diag(traceback.format_exc())
            elif len(str(e).splitlines()) > 1:
                c.diag("\n".join(str(e).splitlines()[1:]))
        for n in c.notes:
            log("  note: %s" % n)
        if c.fails:
            failed += 1
            log("FAIL %s: %s" % (name, "; ".join(c.fails)))
            for d in c.diags:
                log(d)
            recs = recorders() if callable(recorders) else recorders
            for r in recs or ():
                if r is not None and r.proc is not None:
                    log("  --- %s log tail (%s):\n%s" % (r.name, r.proc.logpath, r.log_tail(30)))
        else:
            passed += 1
            log("ok %s (%.1fs)" % (name, time.monotonic() - t0))
    log("%d passed, %d failed" % (passed, failed))
    status = 1 if failed or not (passed + failed) else 0
    if cleanup:
        cleanup_tmp(tmp, status)
    return status


def cleanup_tmp(tmp, status):
    """Remove TMP if STATUS is 0 and TALLY_KEEP is not set; else say where
    it is."""
    if status or KEEP:
        log("# files kept in %s" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
