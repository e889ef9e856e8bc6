"""Harness for tally-sip's black-box tests with real SIP peers (stdlib only).

    sipp UAC --SIP--> server under test --SIP--> sipp UAS
          \\                 | ng offer/answer/delete              /
           `--RTP--> media daemon (tally-media / rtpengine) --RTP-'

The server under test is tally-sip ($TALLY_SIP, default: newest
build*/src/sip/tally-sip) unless TALLY_SIP_TARGET=kamailio: then Kamailio with
the rtpengine module (tests/data/sip/kamailio_b2b.cfg) plays the server, which
validates the scenarios and the assertions against a known-good stack. The
media daemon is tally-media ($TALLY_MEDIA) or, with TALLY_NG_TARGET=rtpengine
(the default when TALLY_SIP_TARGET=kamailio), /usr/bin/rtpengine.

Pieces:
  Proc          a started process: log file, stop by PID, log tail
  SipServer     tally-sip or kamailio on free loopback ports, ready = answers OPTIONS
  Env           temp dir, the media daemon, servers, sipp UAS/UAC runs, capture
  SippRun       one sipp process: exit code, the messages it sent/received
  Capture       dumpcap on lo with a port filter; read_pcap() -> packets
  sip_parse     a SIP message -> dict; sdp_media(body)
  SubtestRunner "ok NAME" / "FAIL NAME: why" and "N passed, M failed"

Environment: TALLY_SIP, TALLY_MEDIA, TALLY_SIP_TARGET, TALLY_NG_TARGET,
TALLY_DATA (tests/data), TALLY_KEEP=1 (keep the temp directory).
Every port is picked at run time; everything is on 127.0.0.1; only processes
started here are stopped, by PID.
"""

import glob
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

SIP_TARGET = os.environ.get("TALLY_SIP_TARGET", "tally-sip")
IS_KAMAILIO = SIP_TARGET == "kamailio"
if IS_KAMAILIO:
    os.environ.setdefault("TALLY_NG_TARGET", "rtpengine")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tallytest  # noqa: E402
from tallytest import free_port, free_port_block, port_free, NgClient  # noqa: E402,F401

SRC = os.environ.get("TALLY_SRC", os.path.normpath(os.path.join(HERE, "..", "..")))
DATA = os.environ.get("TALLY_DATA") or os.path.join(SRC, "tests", "data")
SIPDATA = os.path.join(DATA, "sip")
MEDIADATA = os.path.join(DATA, "interop")      # tone*.ulaw, h264_*.pcap
LOCAL = "127.0.0.1"
KEEP = os.environ.get("TALLY_KEEP") == "1"

SKIP_RC = 77


def log(msg):
    print(msg, flush=True)


class Skip(Exception):
    pass


def preflight(need=("sipp",), root=False):
    """Raises Skip when a peer program is missing (exit 77)."""
    progs = list(need)
    if IS_KAMAILIO:
        progs.append("kamailio")
    if os.environ.get("TALLY_NG_TARGET") == "rtpengine":
        progs.append("rtpengine")
    for p in progs:
        if not (shutil.which(p) or os.path.exists("/usr/sbin/" + p)):
            raise Skip("%s not installed" % p)
    if root and os.geteuid() != 0:
        raise Skip("needs root (sipp pcap play / dumpcap)")
    if not IS_KAMAILIO and not tally_sip_binary():
        raise Skip("tally-sip binary not found (TALLY_SIP unset and no build*/src/sip/tally-sip)")


def tally_sip_binary():
    b = os.environ.get("TALLY_SIP")
    if b and os.access(b, os.X_OK):
        return b
    found = [p for p in glob.glob(os.path.join(SRC, "build*", "src", "sip", "tally-sip"))
             if os.access(p, os.X_OK)]
    return max(found, key=os.path.getmtime) if found else None


# ---------------------------------------------------------------- processes

class Proc:
    """A process started by the harness; stop() signals exactly its PID."""

    def __init__(self, name, argv, logdir, cwd=None, env=None):
        self.name = name
        self.argv = argv
        self.logpath = os.path.join(logdir, name + ".log")
        with open(self.logpath, "ab") as out:
            self.p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=cwd or logdir, env=env)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, grace=5.0):
        if self.p.poll() is not None:
            return self.p.returncode
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass
        rc = self.wait(grace)
        if rc is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            rc = self.wait(5)
        return rc

    def tail(self, n=30):
        return tail(self.logpath, n)


def tail(path, n=30):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return "  | (no %s)" % path
    return "\n".join("  | " + ln for ln in lines[-n:])


def wait_udp_bound(port, proc=None, secs=10.0):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if proc is not None and not proc.alive():
            return False
        if not port_free(port):
            # the port may still be held by an earlier process: only a
            # process that is still alive a moment later has bound it
            if proc is None:
                return True
            time.sleep(0.3)
            return proc.alive()
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------- SIP messages

def sip_parse(data):
    """bytes/str -> {first, kind ('INVITE' or '200'), code (int|None), method,
    hdrs: [(lname, value)], hdr: {lname: first value}, body}; None if not SIP."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    data = data.lstrip("\r\n")
    if "\r\n\r\n" in data:
        head, _, body = data.partition("\r\n\r\n")
        lines = head.split("\r\n")
    else:
        head, _, body = data.partition("\n\n")
        lines = head.split("\n")
    first = lines[0].strip()
    if first.startswith("SIP/2.0 "):
        f = first.split(None, 2)
        try:
            code = int(f[1])
        except (ValueError, IndexError):
            return None
        kind, method = f[1], None
    elif first.endswith("SIP/2.0"):
        code, kind = None, first.split()[0]
        method = kind
    else:
        return None
    short = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact",
             "l": "content-length", "c": "content-type", "k": "supported", "s": "subject"}
    hdrs = []
    for ln in lines[1:]:
        if ln[:1] in (" ", "\t") and hdrs:
            hdrs[-1] = (hdrs[-1][0], hdrs[-1][1] + " " + ln.strip())
            continue
        k, _, v = ln.partition(":")
        k = k.strip().lower()
        hdrs.append((short.get(k, k), v.strip()))
    hdr = {}
    for k, v in hdrs:
        hdr.setdefault(k, v)
    cseq = hdr.get("cseq", "")
    if method is None and cseq:
        method = cseq.split()[-1]
    return {"first": first, "kind": kind, "code": code, "method": method, "hdrs": hdrs,
            "hdr": hdr, "body": body, "cseq": cseq}


def hdr_all(m, name):
    return [v for k, v in m["hdrs"] if k == name.lower()]


def sdp_media(body):
    """[(type, port, [pts], direction or None, conn)], session conn."""
    media, sess_conn = [], None
    cur = None
    for ln in body.replace("\r\n", "\n").split("\n"):
        ln = ln.strip()
        if ln.startswith("c=IN IP4 "):
            if cur is None:
                sess_conn = ln.split()[2]
            else:
                cur[4] = ln.split()[2]
        elif ln.startswith("m="):
            f = ln[2:].split()
            cur = [f[0], int(f[1]), [int(x) for x in f[3:] if x.isdigit()], None, None]
            media.append(cur)
        elif cur is not None and ln in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            cur[3] = ln[2:]
    out = []
    for t, p, pts, d, c in media:
        out.append((t, p, pts, d, c or sess_conn))
    return out, sess_conn


def read_sipp_messages(path):
    """Parses a sipp -trace_msg file into [(direction 'sent'|'recv', msg)]."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    out = []
    # entries: "----...---- <date>\nUDP message received [N] bytes :\n\n<msg>\n"
    parts = re.split(r"\n?-{20,}[^\n]*\n", text)
    for part in parts:
        mm = re.match(r"\s*(UDP|TCP|TLS|SCTP) message (sent|received) [\[(]\d+(?: bytes)?[\])](?: bytes)? ?:?[^\n]*\n\n?",
                      part)
        if not mm:
            continue
        raw = part[mm.end():]
        raw = raw.replace("\r\n", "\n").replace("\n", "\r\n")
        m = sip_parse(raw)
        if m:
            out.append(("sent" if mm.group(2) == "sent" else "recv", m))
    return out


# ---------------------------------------------------------------- pcap

def read_pcap(path):
    """(time, proto 'udp'|'tcp', sport, dport, payload) of IPv4 packets of a
    classic pcap (Ethernet / cooked / raw)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError("%s: not a classic pcap" % path)
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(e + "I", data[20:24])[0]
    i = 24
    while i + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(e + "IIII", data[i:i + 16])
        pkt = data[i + 16:i + 16 + incl]
        i += 16 + incl
        t = sec + frac / (1e9 if nano else 1e6)
        if linktype == 1:
            if pkt[12:14] != b"\x08\x00":
                continue
            ip = pkt[14:]
        elif linktype == 113:
            if pkt[14:16] != b"\x08\x00":
                continue
            ip = pkt[16:]
        elif linktype in (101, 228):
            ip = pkt
        else:
            continue
        if len(ip) < 20 or ip[0] >> 4 != 4:
            continue
        ihl = (ip[0] & 15) * 4
        tot = struct.unpack("!H", ip[2:4])[0]
        l4 = ip[ihl:tot]
        if ip[9] == 17 and len(l4) >= 8:
            sp, dp, ulen = struct.unpack("!HHH", l4[:6])
            yield t, "udp", sp, dp, l4[8:ulen]
        elif ip[9] == 6 and len(l4) >= 20:
            sp, dp = struct.unpack("!HH", l4[:4])
            off = (l4[12] >> 4) * 4
            yield t, "tcp", sp, dp, l4[off:]


def rtp_parse(p):
    """(pt, seq, ssrc, payload) or None (RTCP / not RTP)."""
    if len(p) < 12 or p[0] >> 6 != 2 or 200 <= p[1] <= 204:
        return None
    seq, _ts, ssrc = struct.unpack("!HII", p[2:12])
    return p[1] & 0x7f, seq, ssrc, bytes(p[12 + 4 * (p[0] & 15):])


class Capture:
    """dumpcap -i lo with a BPF filter into a classic pcap; stop() by PID."""

    def __init__(self, env, name, bpf):
        self.path = os.path.join(env.tmp, name + ".pcap")
        self.proc = Proc("dumpcap-" + name, ["dumpcap", "-q", "-P", "-i", "lo", "-f", bpf,
                                              "-w", self.path], env.tmp)
        env.procs.append(self.proc)
        end = time.monotonic() + 8
        while time.monotonic() < end and self.proc.alive():
            if os.path.exists(self.path) and os.path.getsize(self.path) >= 24:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        if not self.proc.alive():
            raise RuntimeError("dumpcap failed\n" + self.proc.tail())

    def stop(self):
        time.sleep(0.3)
        self.proc.stop(signal.SIGINT)
        return list(read_pcap(self.path))


# ---------------------------------------------------------------- servers

class SipServer:
    """The server under test on 127.0.0.1:port (UDP, and TCP for tally-sip).
    routes all-digit users to sip:${user}@127.0.0.1:uas_port."""

    def __init__(self, env, name, uas_port, no_answer_secs=30, catch_all=False):
        self.env = env
        self.name = name
        self.port = free_port()
        self.uas_port = uas_port
        self.no_answer_secs = no_answer_secs
        self.catch_all = catch_all
        self.proc = None

    def start(self):
        if IS_KAMAILIO:
            self._start_kamailio()
        else:
            self._start_tally_sip()
        self.env.procs.append(self.proc)
        if not wait_udp_bound(self.port, self.proc, 10):
            raise RuntimeError("%s not listening on %d\n%s" % (self.name, self.port, self.proc.tail()))
        end = time.monotonic() + 10
        while time.monotonic() < end and self.proc.alive():
            if options_ping(self.port, timeout=0.5) is not None:
                return self
        raise RuntimeError("%s does not answer OPTIONS on %d\n%s" % (self.name, self.port, self.proc.tail()))

    def _start_tally_sip(self):
        route = "* " if self.catch_all else "x. "
        argv = [tally_sip_binary(), "--config-file=none", "--foreground", "--log-level=7",
                "--sip-listen=%s:%d" % (LOCAL, self.port),
                "--media-servers=%s:%d" % (LOCAL, self.env.media.ng_port),
                "--api-listen=",
                "--route=%ssip:${user}@%s:%d" % (route, LOCAL, self.uas_port),
                "--no-answer-secs=%d" % self.no_answer_secs]
        log("# started: %s" % " ".join(argv))
        self.proc = Proc(self.name, argv, self.env.tmp)

    def _start_kamailio(self):
        with open(os.path.join(SIPDATA, "kamailio_b2b.cfg")) as f:
            cfg = f.read()
        cfg = (cfg.replace("@SIP_PORT@", str(self.port))
                  .replace("@NG_PORT@", str(self.env.media.ng_port))
                  .replace("@UAS_PORT@", str(self.uas_port))
                  .replace("@NOANSWER_MS@", str(self.no_answer_secs * 1000))
                  .replace("@USER_RE@", "." if self.catch_all else "^[0-9]+$"))
        rundir = os.path.join(self.env.tmp, self.name + ".run")
        os.makedirs(rundir, exist_ok=True)
        path = os.path.join(self.env.tmp, self.name + ".cfg")
        with open(path, "w") as f:
            f.write(cfg)
        kam = shutil.which("kamailio") or "/usr/sbin/kamailio"
        argv = [kam, "-f", path, "-DD", "-E", "-m", "64", "-M", "8",
                "-P", os.path.join(rundir, "pid"), "-Y", rundir, "-w", rundir]
        log("# started: %s" % " ".join(argv))
        self.proc = Proc(self.name, argv, self.env.tmp)

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def stop(self):
        if self.proc:
            return self.proc.stop()

    def tail(self, n=40):
        return self.proc.tail(n) if self.proc else "  | (not started)"


def options_ping(port, timeout=1.0, transport="udp"):
    """Sends an OPTIONS to 127.0.0.1:port; returns the status code or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((LOCAL, 0))
    lp = s.getsockname()[1]
    cid = "probe-%d-%d@%s" % (os.getpid(), int(time.time() * 1e6), LOCAL)
    msg = ("OPTIONS sip:%s:%d SIP/2.0\r\n"
           "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%x;rport\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:probe@%s:%d>;tag=p%d\r\n"
           "To: <sip:%s:%d>\r\n"
           "Call-ID: %s\r\nCSeq: 1 OPTIONS\r\nAccept: application/sdp\r\n"
           "Content-Length: 0\r\n\r\n") % (LOCAL, port, LOCAL, lp, int(time.time() * 1e6),
                                           LOCAL, lp, os.getpid(), LOCAL, port, cid)
    try:
        s.settimeout(timeout)
        s.sendto(msg.encode(), (LOCAL, port))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                data = s.recv(65535)
            except (socket.timeout, ConnectionRefusedError):
                return None
            m = sip_parse(data)
            if m and m["code"] and m["code"] >= 200 and m["hdr"].get("call-id") == cid:
                return m["code"]
        return None
    finally:
        s.close()


# ---------------------------------------------------------------- sipp

class SippRun:
    """One sipp process (UAS in the background or a UAC run)."""

    def __init__(self, env, name, scenario, argv_extra, sip_port, mp, keys=None,
                 remote=None, service=None, rtp_echo=False, timeout=30, calls=1):
        self.env = env
        self.name = name
        self.sip_port = sip_port
        self.mp = mp
        src = os.path.join(SIPDATA, scenario)
        with open(src) as f:
            x = f.read().replace("@MEDIA@", MEDIADATA)
        self.scenario = os.path.join(env.tmp, name + ".xml")
        with open(self.scenario, "w") as f:
            f.write(x)
        self.msgfile = os.path.join(env.tmp, name + "_messages.log")
        self.errfile = os.path.join(env.tmp, name + "_errors.log")
        argv = ["sipp"]
        if remote:
            argv.append(remote)
        argv += ["-sf", self.scenario, "-i", LOCAL, "-p", str(sip_port), "-mi", LOCAL,
                 "-mp", str(mp), "-m", str(calls), "-nostdin", "-timeout", str(timeout),
                 "-timeout_error", "-trace_msg", "-message_file", self.msgfile,
                 "-trace_err", "-error_file", self.errfile, "-max_recv_loops", "1000"]
        if service:
            argv += ["-s", service]
        if rtp_echo:
            argv.append("-rtp_echo")
        for k, v in (keys or {}).items():
            argv += ["-key", k, str(v)]
        argv += list(argv_extra)
        self.proc = Proc(name, argv, env.tmp)
        env.procs.append(self.proc)
        self.rc = None

    def wait_bound(self):
        return wait_udp_bound(self.sip_port, self.proc, 10)

    def wait(self, timeout):
        rc = self.proc.wait(timeout)
        if rc is None:
            self.proc.stop(signal.SIGKILL)
            rc = "killed after %ss" % timeout
        self.rc = rc
        return rc

    def messages(self, direction=None):
        ms = read_sipp_messages(self.msgfile)
        return [m for d, m in ms if direction is None or d == direction]

    def received(self, kind=None, method=None):
        return [m for m in self.messages("recv")
                if (kind is None or m["kind"] == str(kind)) and (method is None or m["method"] == method)]

    def summary(self):
        seq = []
        for d, m in read_sipp_messages(self.msgfile):
            seq.append(("> " if d == "sent" else "< ") + (m["kind"] if m["code"] is None
                                                         else "%s(%s)" % (m["kind"], m["method"])))
        return " ".join(seq)

    def diag(self):
        out = ["  sipp %s rc=%s, flow: %s" % (self.name, self.rc, self.summary())]
        try:
            with open(self.errfile, "rb") as f:
                err = f.read().decode("utf-8", "replace").strip().splitlines()
            if err:
                out.append("\n".join("  | " + ln for ln in err[-12:]))
        except OSError:
            pass
        lt = self.proc.tail(8)
        if lt.strip() not in ("|", "| (no"):
            out.append(lt)
        return "\n".join(out)


# ---------------------------------------------------------------- environment

class Env:
    def __init__(self, name):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix="tally-%s-" % name)
        os.chmod(self.tmp, 0o755)
        self.procs = []
        self.media = None
        self.failed = False
        self.uas_port = free_port()
        lo, _ = free_port_block(16)
        self.uac_mp, self.uas_mp = lo, lo + 8
        self.sipp_block = (lo, lo + 15)

    def start_media(self):
        self.media = tallytest.Daemon(name="media", nports=200)
        self.media.logdir = self.tmp
        self.media.logpath = os.path.join(self.tmp, "media.log")
        self.media.start()
        return self.media

    def in_media_range(self, port):
        return self.media.port_min <= port <= self.media.port_max

    def server(self, name="server", **kw):
        s = SipServer(self, name, self.uas_port, **kw)
        return s.start()

    def uas(self, name, scenario, rtp_echo=False, keys=None, timeout=30, calls=1):
        # every subtest's callee binds the same SIP port (tally-sip routes
        # there): the previous callee may still be letting go of it, so a
        # callee that fails to bind is tried again, a bounded number of times
        for attempt in range(4):
            r = SippRun(self, name, scenario, [], self.uas_port, self.uas_mp, keys=keys,
                        rtp_echo=rtp_echo, timeout=timeout, calls=calls)
            if r.wait_bound():
                return r
            tail = r.proc.tail()
            r.proc.stop()
            log("# sipp UAS %s did not start (attempt %d), retrying" % (name, attempt + 1))
            time.sleep(1.0)
        raise RuntimeError("sipp UAS %s did not start\n%s" % (name, tail))

    def uac(self, name, scenario, server, service="1000", keys=None, timeout=30, port=None):
        return SippRun(self, name, scenario, ["-l", "1"], port or free_port(), self.uac_mp,
                       keys=keys, remote="%s:%d" % (LOCAL, server.port), service=service,
                       timeout=timeout)

    def capture(self, name, server):
        bpf = "(udp portrange %d-%d) or (udp portrange %d-%d) or (udp port %d) or (udp port %d)" % (
            self.media.port_min, self.media.port_max, self.sipp_block[0], self.sipp_block[1],
            server.port, self.uas_port)
        return Capture(self, name, bpf)

    def ng_calls(self):
        r = self.media.ng.request({"command": "list"})
        return list(r.get("calls") or [])

    def wait_no_calls(self, secs=3.0):
        end = time.monotonic() + secs
        calls = None
        while time.monotonic() < end:
            calls = self.ng_calls()
            if not calls:
                return []
            time.sleep(0.1)
        return calls

    def close(self):
        for p in reversed(self.procs):
            p.stop(signal.SIGINT if p.name.startswith("dumpcap") else signal.SIGTERM)
        if self.media:
            self.media.stop()
        if KEEP or self.failed:
            log("# logs kept in %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- subtests

class Checks:
    """Soft assertions inside one subtest; all failures are reported."""

    def __init__(self):
        self.fails = []
        self.diags = []

    def __call__(self, cond, msg):
        if not cond:
            self.fails.append(msg)
        return cond

    def diag(self, text):
        self.diags.append(text)


class Runner:
    def __init__(self, env):
        self.env = env
        self.passed = 0
        self.failed = 0

    def run(self, name, fn, servers=()):
        c = Checks()
        t0 = time.monotonic()
        try:
            fn(c)
        except Exception as e:           # noqa: BLE001 - report any harness error
            import traceback
            c.fails.append("%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else ""))
            c.diag(traceback.format_exc())
        if callable(servers):
            servers = servers()
        servers = [s for s in servers if s is not None]
        for s in servers:
            if not s.alive():
                c.fails.append("%s died (rc %s)" % (s.name, s.proc.p.returncode))
        if self.env.media and not self.env.media.alive():
            c.fails.append("media daemon died")
        if c.fails:
            self.failed += 1
            self.env.failed = True
            log("FAIL %s: %s" % (name, "; ".join(c.fails)))
            for d in c.diags:
                log(d)
            for s in servers:
                if True:
                    log("  --- %s log tail:\n%s" % (s.name, s.tail(40)))
            if self.env.media:
                log("  --- media log tail:\n%s" % self.env.media.log_tail(15))
        else:
            self.passed += 1
            log("ok %s (%.1fs)" % (name, time.monotonic() - t0))

    def finish(self):
        log("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0


def main_wrapper(body):
    """Runs body(); Skip -> 77; prints the target."""
    log("# server under test: %s, media: %s" % (SIP_TARGET, tallytest.TARGET))
    try:
        return body()
    except Skip as e:
        log("SKIP: %s" % e)
        return SKIP_RC
