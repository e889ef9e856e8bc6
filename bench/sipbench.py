#!/usr/bin/env python3
"""
tally SIP bench: calls per second through tally-sip (B2BUA) + tally-media
against kamailio (stateful proxy, record-routing) + rtpengine (userspace),
sipp at both ends, on the same machine, in the same run, interleaved.

What it does (bench/README.md, section "SIP bench", explains every figure):
  1. builds a Release tally-sip + tally-media into build-sipbench/build
     (incremental; --tally-sip/--tally-media/--no-build to use others);
  2. starts tally-media + tally-sip, and rtpengine (--table=-1) + kamailio
     (tests/data/interop/kamailio.cfg with debug=0), each media server on its
     own port window chosen at run time, and one sipp UAS per system (answers
     with an SDP, copies Record-Route);
  3. per system: a warm-up (20 calls), then memory per established call:
     RSS with --hold-calls calls up at once minus idle RSS;
  4. the rate ladder: at each rate, each system still in the race gets
     rate x --step-secs calls of --call-ms (sipp UAC following Record-Route),
     order alternating per step; CPU of every process from /proc/PID/stat;
     a system leaves the ladder at its first step with a failed/unfinished
     call or a sipp call rate < 95% of the target;
  5. prints the tables and the verdict, writes JSON.

Loopback only; free ports chosen at run time; every load is bounded (-m)
and stops by itself; only processes this script started are stopped, by
PID. Python 3 stdlib only.
"""

import argparse
import json
import math
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "build-sipbench")
KAM_TEMPLATE = os.path.join(ROOT, "tests", "data", "interop", "kamailio.cfg")
HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
STARTED = []           # Popen objects started by this script (stopped by pid)
RATE_MIN_FRACTION = 0.95
# sipp's socket buffers (its default, 64 KiB, overflows when the single
# threaded sipp is preempted on a busy 2-core box: the load generator must
# not be what drops); the kernel caps this at net.core.rmem_max/wmem_max
SIPP_BUF = 4 * 1024 * 1024

UAC_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- sipbench caller: audio offer, follows Record-Route (rrs, [next_url],
     [routes]) so it works behind a record-routing proxy as well as against
     a B2BUA. RTD "setup" = first INVITE sent -> 200 received. -->
<scenario name="sipbench uac">
  <send retrans="500" start_rtd="setup">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "bench" <sip:bench@[local_ip]:[local_port]>;tag=[pid]T[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:bench@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=uac 53655765 2353687637 IN IP[media_ip_type] [media_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 8
      a=rtpmap:0 PCMU/8000
      a=rtpmap:8 PCMA/8000
      a=sendrecv

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="setup" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "bench" <sip:bench@[local_ip]:[local_port]>;tag=[pid]T[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      [routes]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:bench@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause/>
  <send retrans="500" start_rtd="bye">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "bench" <sip:bench@[local_ip]:[local_port]>;tag=[pid]T[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      [routes]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:bench@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" rtd="bye" crlf="true"/>
  <ResponseTimeRepartition value="5, 10, 20, 50, 100, 200, 500, 1000"/>
  <CallLengthRepartition value="1000, 5000, 10000"/>
</scenario>
"""

UAS_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- sipbench callee: 180, then 200 with an audio answer (PCMU); copies
     Record-Route so in-dialog requests come back through a proxy. -->
<scenario name="sipbench uas">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]U[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:uas@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]U[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:uas@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=uas 53655765 2353687637 IN IP[media_ip_type] [media_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
      a=sendrecv

    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:uas@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
  <timewait milliseconds="500"/>
</scenario>
"""


# ------------------------------------------------------------ helpers --

# log, free_udp_port, used_udp_ports and port_window are the media bench's
# (bench/run.py); the SIP bench keeps its ports above 10000.
from run import log, free_udp_port, used_udp_ports  # noqa: E402
from run import port_window as _port_window  # noqa: E402


# Every port a process of the bench listens on (SIP, ng, sipp's SIP and
# media ports) stays outside every media server's port window: a media
# server that allocates a port another process holds (rtpengine's RTCP on
# Kamailio's SIP port, seen 2026-12-08) fails the calls and makes the
# comparison worthless. `taken` holds the windows and every port handed out
# (as one-port ranges), so a window chosen later avoids the ports chosen
# earlier and the other way round; check_apart() asserts it before use.
MEDIA_WINDOWS = []


def port_window(width, taken):
    lo, hi = _port_window(width, taken, start=10000)
    MEDIA_WINDOWS.append((lo, hi))
    return lo, hi


def check_apart(what, first, n=1):
    """Raise if ports first..first+n-1 touch a media window."""
    for lo, hi in MEDIA_WINDOWS:
        if not (first + n - 1 < lo or first > hi):
            raise RuntimeError("bench bug: %s port %d..%d is inside the media "
                               "window %d..%d" % (what, first, first + n - 1, lo, hi))


def free_port_outside(taken, what):
    """One free UDP port outside every range in `taken` (then added to it)."""
    for _ in range(500):
        p = free_udp_port()
        if all(p < a or p > b for a, b in taken):
            taken.append((p, p))
            check_apart(what, p)
            return p
    raise RuntimeError("no free UDP port outside the media windows for %s" % what)


def free_port_run(n, taken, what="sipp media"):
    """n consecutive free UDP ports (sipp's -mp uses mp..mp+3), outside
    the media windows (then added to `taken`); checked by binding them."""
    for _ in range(200):
        base = free_udp_port() & ~3
        if base < 1024 or base + n > 65535:
            continue
        if any(not (base + n - 1 < a or base > b) for a, b in taken):
            continue
        socks = []
        try:
            for i in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            taken.append((base, base + n - 1))
            check_apart(what, base, n)
            return base
        except OSError:
            pass
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no %d consecutive free UDP ports" % n)


def udp_drops():
    """{port: drops} for every UDP socket on 127.0.0.1/any (last column of
    /proc/net/udp: datagrams the kernel dropped, e.g. receive buffer full)."""
    d = {}
    try:
        for line in open("/proc/net/udp").read().splitlines()[1:]:
            v = line.split()
            port = int(v[1].rsplit(":", 1)[1], 16)
            d[port] = d.get(port, 0) + int(v[-1])
    except (OSError, ValueError, IndexError):
        pass
    return d


def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_ticks(pid):
    """utime + stime of the whole process (all threads), clock ticks."""
    try:
        f = proc_stat(pid)
        return int(f[11]) + int(f[12])
    except (OSError, IndexError, ValueError):
        return None


def children_of(pid):
    """All descendants of pid (kamailio forks its workers)."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                kids.setdefault(int(proc_stat(int(d))[1]), []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def status_kb(pid, key="VmRSS"):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


def machine_busy_ticks():
    """(busy, total) ticks over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    total = sum(v[:8])
    return total - v[3] - v[4], total


def pct(xs, q):
    """Nearest-rank percentile (q in 0..100) of a list."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return s[k]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def spawn(argv, logpath, cwd=None):
    lf = open(logpath, "ab")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf,
                         stderr=subprocess.STDOUT, cwd=cwd,
                         preexec_fn=raise_nofile)
    lf.close()
    p.logpath = logpath
    STARTED.append(p)
    return p


def stop(p):
    """SIGTERM our child by pid, SIGKILL after 5 s."""
    if p.returncode is None and p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGTERM)
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        except OSError:
            pass


def stop_all():
    for p in reversed(STARTED):
        try:
            stop(p)
        except (OSError, ValueError):
            pass


def tail(path, n=15, start=0, pattern=None):
    try:
        with open(path, "rb") as f:
            f.seek(start)
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    if pattern:
        lines = [l for l in lines if re.search(pattern, l)]
    return lines[-n:]


def fsize(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


# -------------------------------------------------------- SIP/ng probes --

def sip_options(port, timeout=0.5):
    """True when something answers an OPTIONS on 127.0.0.1:port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    lp = s.getsockname()[1]
    msg = ("OPTIONS sip:probe@127.0.0.1:%d SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%d\r\n"
           "From: <sip:probe@127.0.0.1:%d>;tag=%d\r\n"
           "To: <sip:probe@127.0.0.1:%d>\r\n"
           "Call-ID: probe-%d-%f@127.0.0.1\r\nCSeq: 1 OPTIONS\r\n"
           "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
           % (port, lp, os.getpid(), lp, os.getpid(), port, lp,
              time.time())).encode()
    s.settimeout(timeout)
    try:
        s.sendto(msg, ("127.0.0.1", port))
        data = s.recv(65535)
        return data.startswith(b"SIP/2.0")
    except OSError:
        return False
    finally:
        s.close()


def ng_ping(port, timeout=0.5):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(b"sb1 d7:command4:pinge", ("127.0.0.1", port))
        return b"pong" in s.recv(65535)
    except OSError:
        return False
    finally:
        s.close()


def wait_until(fn, secs):
    end = time.time() + secs
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.1)
    return False


# ------------------------------------------------------------- systems --

class System:
    """One SIP server + its media server + a sipp UAS behind it."""
    name = label = ""

    def __init__(self, args, work, taken):
        self.args = args
        self.work = os.path.join(work, self.name)
        os.makedirs(self.work, exist_ok=True)
        self.taken = taken
        # every system's window first (wide windows need contiguous room),
        # then the ports, outside all of them: pick_ports()
        self.media_lo, self.media_hi = port_window(args.media_ports, taken)
        self.sip_port = self.ng_port = self.uas_port = None
        self.sip = self.media = self.uas = None
        self.failed = None          # why this system cannot go on
        self.crash = None

    def pick_ports(self):
        """After every system's window is chosen."""
        self.sip_port = free_port_outside(self.taken, self.name + " SIP")
        self.ng_port = free_port_outside(self.taken, self.name + " ng")
        self.uas_port = free_port_outside(self.taken, self.name + " sipp UAS")

    # pids whose CPU/RSS count as "the SIP server" / "the media server"
    def sip_pids(self):
        return [self.sip.pid]

    def media_pids(self):
        return [self.media.pid]

    def start_uas(self):
        mp = free_port_run(4, self.taken)
        self.uas_mp = mp
        xml = os.path.join(self.work, "uas.xml")
        with open(xml, "w") as f:
            f.write(UAS_XML)
        self.uas = spawn(["sipp", "-sf", xml, "-i", "127.0.0.1",
                          "-p", str(self.uas_port), "-mp", str(mp),
                          "-nostdin", "-aa", "-buff_size", str(SIPP_BUF),
                          "-trace_err", "-error_file", os.path.join(self.work, "uas_errors.log")],
                         os.devnull, cwd=self.work)

    def alive(self):
        """None if all our processes run, else a description of the death."""
        for what, p in (("sip server", self.sip), ("media server", self.media),
                        ("sipp uas", self.uas)):
            if p is not None and p.poll() is not None:
                return "%s (pid %d) exited with %s" % (what, p.pid, p.returncode)
        return None

    def sip_log_pos(self):
        return fsize(self.sip.logpath)

    def cpu(self):
        """CPU ticks: (sip server, media server, uas)."""
        def s(pids):
            v = [cpu_ticks(p) for p in pids]
            return sum(x for x in v if x is not None)
        return s(self.sip_pids()), s(self.media_pids()), s([self.uas.pid])

    def mem(self):
        sp, mp = self.sip_pids(), self.media_pids()
        return {"sip_rss_kb": sum(status_kb(p) for p in sp),
                "sip_pss_kb": sum(pss_kb(p) for p in sp),
                "sip_nproc": len(sp),
                "media_rss_kb": sum(status_kb(p) for p in mp),
                "media_fds": sum(nfds(p) for p in mp)}


class Tally(System):
    name = "tally"
    label = "tally-sip+tally-media"

    def start(self):
        a = self.args
        self.media = spawn([a.tally_media, "--config-file=none",
                            "--interface=127.0.0.1",
                            "--listen-ng=127.0.0.1:%d" % self.ng_port,
                            "--port-min=%d" % self.media_lo,
                            "--port-max=%d" % self.media_hi,
                            "--foreground", "--log-level=4", "--timeout=60"]
                           + a.media_extra,
                           os.path.join(self.work, "tally-media.log"))
        if not wait_until(lambda: ng_ping(self.ng_port), 10):
            raise RuntimeError("tally-media does not answer ng ping: %s"
                               % tail(self.media.logpath, 5))
        self.sip = spawn([a.tally_sip, "--config-file=none", "--foreground",
                          "--log-level=4",
                          "--sip-listen=127.0.0.1:%d" % self.sip_port,
                          "--media-servers=127.0.0.1:%d" % self.ng_port,
                          "--api-listen=",
                          "--route=x. sip:${user}@127.0.0.1:%d" % self.uas_port,
                          "--rate-limit=0"] + a.sip_extra,
                         os.path.join(self.work, "tally-sip.log"))
        if not wait_until(lambda: sip_options(self.sip_port), 10):
            raise RuntimeError("tally-sip does not answer OPTIONS: %s"
                               % tail(self.sip.logpath, 5))
        self.start_uas()


class Kamailio(System):
    name = "kamailio"
    label = "kamailio+rtpengine"

    def start(self):
        a = self.args
        self.media = spawn(["rtpengine", "--config-file=none", "--table=-1",
                            "--interface=127.0.0.1",
                            "--listen-ng=127.0.0.1:%d" % self.ng_port,
                            "--port-min=%d" % self.media_lo,
                            "--port-max=%d" % self.media_hi,
                            "--foreground", "--log-stderr", "--log-level=4",
                            "--delete-delay=0"],
                           os.path.join(self.work, "rtpengine.log"))
        if not wait_until(lambda: ng_ping(self.ng_port), 10):
            raise RuntimeError("rtpengine does not answer ng ping: %s"
                               % tail(self.media.logpath, 5))
        cfg = open(KAM_TEMPLATE).read()
        cfg = (cfg.replace("@SIP_PORT@", str(self.sip_port))
                  .replace("@NG_PORT@", str(self.ng_port))
                  .replace("@CALLEE@", "sip:127.0.0.1:%d" % self.uas_port))
        # the template logs 4-6 NOTICE lines per call for the interop test;
        # a bench logs warnings and errors only (like tally-sip at 4)
        cfg = re.sub(r"(?m)^debug=\d+", "debug=0", cfg)
        cfg = re.sub(r"(?m)^children=\d+", "children=%d" % a.kam_children, cfg)
        path = os.path.join(self.work, "kamailio.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        rund = os.path.join(self.work, "run")
        os.makedirs(rund, exist_ok=True)
        chk = subprocess.run(["kamailio", "-c", "-f", path],
                             capture_output=True, text=True)
        if chk.returncode != 0:
            raise RuntimeError("kamailio -c: %s" % chk.stderr[-500:])
        self.sip = spawn(["kamailio", "-f", path, "-DD", "-E",
                          "-m", str(a.kam_shm_mb), "-M", str(a.kam_pkg_mb),
                          "-P", os.path.join(rund, "kamailio.pid"),
                          "-Y", rund, "-w", rund],
                         os.path.join(self.work, "kamailio.log"))
        if not wait_until(lambda: sip_options(self.sip_port), 10):
            raise RuntimeError("kamailio does not answer OPTIONS: %s"
                               % tail(self.sip.logpath, 5))
        time.sleep(0.5)
        self.kam_pids = [self.sip.pid] + children_of(self.sip.pid)
        self.start_uas()

    def sip_pids(self):
        return self.kam_pids


# ------------------------------------------------------------ one load --

def read_stat_csv(path):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return []
    if len(lines) < 2:
        return []
    hdr = lines[0].rstrip(";").split(";")
    rows = []
    for l in lines[1:]:
        v = l.split(";")
        if len(v) >= len(hdr):
            rows.append(dict(zip(hdr, v)))
    return rows


def epoch(v):
    return float(v.split("\t")[-1])


def ival(row, k):
    try:
        return int(row.get(k, "0") or 0)
    except ValueError:
        return 0


def read_rtt(workdir):
    setup, bye = [], []
    for fn in os.listdir(workdir):
        if fn.endswith("_rtt.csv"):
            for l in open(os.path.join(workdir, fn)).read().splitlines()[1:]:
                v = l.split(";")
                if len(v) >= 3:
                    try:
                        (setup if v[2] == "setup" else bye).append(float(v[1]))
                    except ValueError:
                        pass
    return setup, bye


def count_setup_lines(workdir):
    n = 0
    for fn in os.listdir(workdir):
        if fn.endswith("_rtt.csv"):
            with open(os.path.join(workdir, fn), "rb") as f:
                n += f.read().count(b";setup")
    return n


def run_calls(sysm, rate, ncalls, call_ms, tag, probe=None, check_rate=True):
    """One bounded sipp UAC load against sysm. Returns a dict of figures."""
    wd = os.path.join(sysm.work, tag)
    os.makedirs(wd, exist_ok=True)
    for fn in os.listdir(wd):
        os.unlink(os.path.join(wd, fn))
    xml = os.path.join(wd, "uac.xml")
    with open(xml, "w") as f:
        f.write(UAC_XML)
    port = free_port_outside(sysm.taken, "sipp UAC")
    mp = free_port_run(4, sysm.taken)
    for other in (sysm.sip_port, sysm.ng_port, sysm.uas_port):
        check_apart("%s server" % sysm.name, other)
    gen_s = ncalls / float(rate)
    limit_s = int(gen_s + call_ms / 1000.0 + 45)
    # -l: never throttle below the offered rate (calls of a slow server pile
    # up), but stay under the fd limit (sipp wants calls + sockets < nofile)
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    conc = min(max(int(rate * (call_ms / 1000.0 + 12)), 100), nofile - 200)
    argv = ["sipp", "127.0.0.1:%d" % sysm.sip_port, "-sf", xml, "-s", "1000",
            "-i", "127.0.0.1", "-p", str(port), "-mp", str(mp),
            "-r", str(rate), "-rp", "1000", "-m", str(ncalls),
            "-l", str(conc), "-d", str(call_ms), "-nostdin", "-aa",
            "-buff_size", str(SIPP_BUF),
            "-recv_timeout", "10000", "-timeout", str(limit_s),
            "-timeout_error", "-trace_stat", "-stf",
            os.path.join(wd, "stat.csv"), "-fd", "1", "-trace_rtt",
            "-rtt_freq", "1", "-trace_err",
            "-error_file", os.path.join(wd, "errors.log"),
            "-trace_screen", "-screen_file", os.path.join(wd, "screen.log")]
    ports = {"uac": port, "uas": sysm.uas_port, "sip": sysm.sip_port,
             "ng": sysm.ng_port}
    d0 = udp_drops()
    logpos = sysm.sip_log_pos()
    mlogpos = fsize(sysm.media.logpath)
    c0 = sysm.cpu()
    mb0 = machine_busy_ticks()
    t0 = time.time()
    p = spawn(argv, os.path.join(wd, "sipp.out"), cwd=wd)
    uac_ticks = 0
    rc = None
    crash = None
    probe_res = None
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            rc = os.waitstatus_to_exitcode(status)
            p.returncode = rc
            uac_ticks = int(round((ru.ru_utime + ru.ru_stime) * HZ))
            break
        if probe and probe_res is None:
            probe_res = probe(wd)
        dead = sysm.alive()
        if dead and not crash:
            crash = dead
        if time.time() - t0 > limit_s + 15:
            log("  sipp overran its own -timeout, killing pid %d" % p.pid)
            os.kill(p.pid, signal.SIGKILL)
        time.sleep(0.1)
    t1 = time.time()
    d1 = udp_drops()
    drops = {k: d1.get(v, 0) - d0.get(v, 0) for k, v in ports.items()
             if k != "uac"}
    drops["uac"] = d1.get(port, 0)    # a new socket: its drops are ours
    c1 = sysm.cpu()
    mb1 = machine_busy_ticks()
    rows = read_stat_csv(os.path.join(wd, "stat.csv"))
    last = rows[-1] if rows else {}
    ok = ival(last, "SuccessfulCall(C)")
    failed = ival(last, "FailedCall(C)")
    created = ival(last, "TotalCallCreated")
    retrans = ival(last, "Retransmissions(C)")
    # sipp's achieved call rate: the slope of TotalCallCreated over the
    # per-second rows written while calls were still being created
    meas = None
    if rows:
        ts = epoch(rows[0]["StartTime"])
        gen = [(epoch(r["CurrentTime"]), ival(r, "TotalCallCreated")) for r in rows]
        gen = [(t, n) for t, n in gen if 1 < n < created and t - ts > 0.5]
        if gen:
            t, n = gen[-1]
            meas = n / (t - ts)
    setup, bye = read_rtt(wd)
    dt = max(t1 - t0, 1e-3)
    ms_tick = 1000.0 / HZ
    sip_ms = (c1[0] - c0[0]) * ms_tick
    med_ms = (c1[1] - c0[1]) * ms_tick
    uas_ms = (c1[2] - c0[2]) * ms_tick
    uac_ms = uac_ticks * ms_tick
    busy_ms = (mb1[0] - mb0[0]) * ms_tick
    other_ms = max(0.0, busy_ms - sip_ms - med_ms - uas_ms - uac_ms)
    per = max(ok, 1)
    res = {
        "system": sysm.name, "rate": rate, "calls": ncalls, "call_ms": call_ms,
        "sipp_rc": rc, "created": created, "ok": ok, "failed": failed,
        "retransmissions": retrans,
        "udp_drops": drops,
        "failed_detail": {k.replace("(C)", ""): ival(last, k) for k in last
                          if k.startswith("Failed") and k.endswith("(C)")
                          and ival(last, k) and k != "FailedCall(C)"},
        "dead_call_msgs": ival(last, "DeadCallMsgs(C)"),
        "out_of_call_msgs": ival(last, "OutOfCallMsgs(C)"),
        "sipp_rate": round(meas, 1) if meas else None,
        "elapsed_s": round(dt, 2),
        "setup_n": len(setup),
        "setup_ms": {"p50": pct(setup, 50), "p90": pct(setup, 90),
                     "p99": pct(setup, 99), "max": max(setup) if setup else None,
                     "mean": round(sum(setup) / len(setup), 2) if setup else None},
        "bye_ms": {"p50": pct(bye, 50), "p99": pct(bye, 99),
                   "max": max(bye) if bye else None},
        "cpu_ms": {"sip": round(sip_ms), "media": round(med_ms),
                   "uac": round(uac_ms), "uas": round(uas_ms),
                   "other": round(other_ms), "machine_busy": round(busy_ms)},
        "cpu_ms_per_call": {"sip": round(sip_ms / per, 4),
                            "media": round(med_ms / per, 4)},
        "cpu_pct": {"sip": round(100 * sip_ms / 1000 / dt, 1),
                    "media": round(100 * med_ms / 1000 / dt, 1),
                    "uac": round(100 * uac_ms / 1000 / dt, 1),
                    "uas": round(100 * uas_ms / 1000 / dt, 1),
                    "other": round(100 * other_ms / 1000 / dt, 1),
                    "machine": round(100 * busy_ms / 1000 / dt, 1)},
        "crash": crash,
        "sip_log_warnings": tail(sysm.sip.logpath, 8, logpos,
                                 r"WARN|ERR|CRIT|BUG|ALERT"),
        "sip_log_warning_count": len(tail(sysm.sip.logpath, 10**9, logpos,
                                          r"WARN|ERR|CRIT|BUG|ALERT")),
        "media_log_warnings": tail(sysm.media.logpath, 5, mlogpos,
                                   r"WARN|ERR|CRIT|BUG|ALERT"),
        "sipp_errors": [l for l in tail(os.path.join(wd, "errors.log"), 6)
                        if l.strip() and "following events" not in l],
        "probe": probe_res,
        "setup_values": sorted(set(int(v) for v in setup if v == int(v))),
    }
    why = []
    if crash:
        why.append("crash: " + crash)
    if failed:
        why.append("%d failed" % failed)
    if ok + failed < ncalls:
        why.append("%d of %d calls did not finish" % (ncalls - ok - failed, ncalls))
    if rc not in (0,) and not failed:
        why.append("sipp rc %s" % rc)
    if check_rate and meas is not None and meas < RATE_MIN_FRACTION * rate:
        why.append("sipp reached only %.0f cps" % meas)
    if setup and len(setup) < ok:
        why.append("only %d setup times for %d calls" % (len(setup), ok))
    res["pass"] = not why
    res["why"] = "; ".join(why)
    return res


# ------------------------------------------------------------- phases --

def memory_phase(sysm, n, rate, quick):
    """RSS with n calls established at once minus RSS idle (after warm-up)."""
    time.sleep(1.0)
    idle = sysm.mem()
    ramp_ms = int(1000.0 * n / rate)
    hold_ms = ramp_ms + 4000
    snap = {}

    def probe(wd):
        # established = got their 200 (setup time written, -rtt_freq 1)
        if count_setup_lines(wd) >= n:
            time.sleep(0.5)
            samples = []
            for _ in range(3):
                samples.append(sysm.mem())
                time.sleep(0.2)
            snap["held"] = {k: max(s[k] for s in samples) for k in samples[0]}
            snap["established"] = count_setup_lines(wd)
            return True
        return None

    r = run_calls(sysm, rate, n, hold_ms, "hold", probe=probe, check_rate=False)
    time.sleep(2.0)
    after = sysm.mem()
    out = {"calls": n, "idle": idle, "after_release": after, "load": r}
    if "held" in snap:
        h = snap["held"]
        out["held"] = h
        out["established"] = snap["established"]
        out["sip_kib_per_call"] = round((h["sip_rss_kb"] - idle["sip_rss_kb"]) / float(n), 2)
        out["sip_pss_kib_per_call"] = round((h["sip_pss_kb"] - idle["sip_pss_kb"]) / float(n), 2)
        out["media_kib_per_call"] = round((h["media_rss_kb"] - idle["media_rss_kb"]) / float(n), 2)
        out["media_fds_per_call"] = round((h["media_fds"] - idle["media_fds"]) / float(n), 2)
    else:
        out["error"] = "the %d calls were never all established: %s" % (n, r["why"])
    return out


def fmt(v, nd=0):
    if v is None:
        return "-"
    if isinstance(v, float):
        return ("%." + str(nd) + "f") % v
    return str(v)


def report(res, systems):
    lines = []
    P = lines.append
    P("")
    P("== rate ladder (rate x %g s of calls per step, %d ms calls; setup = "
      "INVITE sent -> 200 received, from sipp -trace_rtt, whose clock ticks in "
      "steps of %s ms here) ==" % (res["config"]["step_secs"], res["config"]["call_ms"],
                                   fmt(res.get("rtt_granularity_ms"))))
    hdr = ("%-6s %-22s %7s %6s %6s %6s %5s %5s %5s %6s %6s %7s %7s %5s %5s %5s %5s  %s"
           % ("cps", "system", "sippcps", "ok", "fail", "retr", "drops", "p50", "p99",
              "max", "mean", "sipms", "medms", "sip%", "med%", "sipp%", "oth%", "verdict"))
    P(hdr)
    for st in res["ladder"]:
        for r in st["runs"]:
            lab = [s.label for s in systems if s.name == r["system"]][0]
            P("%-6d %-22s %7s %6d %6d %6d %5d %5s %5s %6s %6s %7.3f %7.3f %5.0f %5.0f %5.0f %5.0f  %s"
              % (r["rate"], lab, fmt(r["sipp_rate"]), r["ok"], r["failed"],
                 r["retransmissions"], sum(r["udp_drops"].values()),
                 fmt(r["setup_ms"]["p50"]),
                 fmt(r["setup_ms"]["p99"]), fmt(r["setup_ms"]["max"]),
                 fmt(r["setup_ms"]["mean"], 1),
                 r["cpu_ms_per_call"]["sip"], r["cpu_ms_per_call"]["media"],
                 r["cpu_pct"]["sip"], r["cpu_pct"]["media"],
                 r["cpu_pct"]["uac"] + r["cpu_pct"]["uas"], r["cpu_pct"]["other"],
                 "ok" if r["pass"] else "NO: " + r["why"]))
    P("(retr: retransmissions sipp sent; drops: datagrams the kernel dropped on the "
      "sockets of the SIP server, sipp UAC, sipp UAS (/proc/net/udp); mean in ms; "
      "p50/p99/max setup in ms)")
    P("(sipms/medms: CPU ms per completed call of the SIP server / media server "
      "(utime+stime, /proc/PID/stat, all threads/processes); sip%%/med%%/sipp%%: "
      "CPU of the step's wall time, 100 = one core; oth%%: CPU used by "
      "processes not part of the bench; %d cores)" % NCPU)
    P("")
    P("== memory per established call ==")
    for s in systems:
        m = res["memory"].get(s.name)
        if not m:
            continue
        if "error" in m:
            P("%-22s %s" % (s.label, m["error"]))
            continue
        i, h, a = m["idle"], m["held"], m["after_release"]
        P("%-22s %d calls up: SIP server RSS %d -> %d KiB = %.2f KiB/call%s; "
          "media server RSS %d -> %d KiB = %.2f KiB/call (%.1f fds/call); "
          "after release: SIP %d KiB, media %d KiB"
          % (s.label, m["established"], i["sip_rss_kb"], h["sip_rss_kb"],
             m["sip_kib_per_call"],
             (" (PSS %.2f, %d processes)" % (m["sip_pss_kib_per_call"], h["sip_nproc"])
              if h["sip_nproc"] > 1 else ""),
             i["media_rss_kb"], h["media_rss_kb"], m["media_kib_per_call"],
             m["media_fds_per_call"], a["sip_rss_kb"], a["media_rss_kb"]))
    for s in systems:
        e = res.get("end", {}).get(s.name)
        m = res["memory"].get(s.name, {})
        if e and e["mem"] and m.get("after_release"):
            P("%-22s end of run (%d calls in total): SIP server RSS %d KiB, media server "
              "RSS %d KiB (after the memory phase: %d / %d KiB)"
              % (s.label, e["total_calls"], e["mem"]["sip_rss_kb"], e["mem"]["media_rss_kb"],
                 m["after_release"]["sip_rss_kb"], m["after_release"]["media_rss_kb"]))
        elif e and not e["alive"]:
            P("%-22s DEAD at the end: %s" % (s.label, e["why_dead"]))
    P("")
    P("== summary ==")
    sm = res["summary"]
    for s in systems:
        v = sm["systems"].get(s.name, {})
        P("%-22s sustained %s cps (sipp measured %s cps), p99 setup %s ms at that step; "
          "first failing step: %s"
          % (s.label, fmt(v.get("sustained_cps")), fmt(v.get("sustained_sipp_cps")),
             fmt(v.get("p99_setup_ms")), v.get("first_fail") or "none (ladder ended)"))
    if sm.get("ratio") is not None:
        P("ratio tally/kamailio sustained cps: %.2f (target >= 0.70: %s)"
          % (sm["ratio"], "MET" if sm["ratio"] >= 0.70 else "NOT MET"))
    if sm.get("common_step"):
        c = sm["common_step"]
        P("at %d cps (highest step both sustained): p99 setup tally %s ms vs kamailio %s ms; "
          "CPU per call: tally-sip %.3f ms vs kamailio %.3f ms, tally-media %.3f ms vs rtpengine %.3f ms"
          % (c["rate"], fmt(c["tally_p99"]), fmt(c["kam_p99"]), c["tally_sip_ms"],
             c["kam_sip_ms"], c["tally_media_ms"], c["kam_media_ms"]))
    if sm.get("tally_sip_kib_per_call") is not None:
        P("tally-sip memory per established call: %.2f KiB (target < 32 KiB: %s); "
          "tally-media: %.2f KiB/call"
          % (sm["tally_sip_kib_per_call"],
             "MET" if sm["tally_sip_kib_per_call"] < 32 else "NOT MET",
             sm.get("tally_media_kib_per_call") or 0))
    for n in sm.get("notes", []):
        P("note: " + n)
    return "\n".join(lines)


def summarize(res, systems):
    sm = {"systems": {}, "notes": []}
    for s in systems:
        runs = [r for st in res["ladder"] for r in st["runs"] if r["system"] == s.name]
        good = [r for r in runs if r["pass"]]
        bad = [r for r in runs if not r["pass"]]
        best = max(good, key=lambda r: r["rate"]) if good else None
        sm["systems"][s.name] = {
            "label": s.label,
            "sustained_cps": best["rate"] if best else 0,
            "sustained_sipp_cps": best["sipp_rate"] if best else None,
            "p99_setup_ms": best["setup_ms"]["p99"] if best else None,
            "first_fail": ("%d cps: %s" % (bad[0]["rate"], bad[0]["why"])) if bad else None,
            "failed_reason": s.failed,
        }
        if not bad and runs:
            sm["notes"].append("%s passed every step: its sustained cps is only a lower "
                               "bound (raise --rates)" % s.label)
    t, k = sm["systems"].get("tally"), sm["systems"].get("kamailio")
    if t and k and k["sustained_cps"]:
        sm["ratio"] = round(t["sustained_cps"] / float(k["sustained_cps"]), 3)
    # highest step both sustained: p99 and CPU side by side
    both = None
    for st in res["ladder"]:
        rr = {r["system"]: r for r in st["runs"]}
        if "tally" in rr and "kamailio" in rr and rr["tally"]["pass"] and rr["kamailio"]["pass"]:
            both = rr
    if both:
        sm["common_step"] = {
            "rate": both["tally"]["rate"],
            "tally_p99": both["tally"]["setup_ms"]["p99"],
            "kam_p99": both["kamailio"]["setup_ms"]["p99"],
            "tally_sip_ms": both["tally"]["cpu_ms_per_call"]["sip"],
            "kam_sip_ms": both["kamailio"]["cpu_ms_per_call"]["sip"],
            "tally_media_ms": both["tally"]["cpu_ms_per_call"]["media"],
            "kam_media_ms": both["kamailio"]["cpu_ms_per_call"]["media"]}
    mt = res["memory"].get("tally", {})
    if "sip_kib_per_call" in mt:
        sm["tally_sip_kib_per_call"] = mt["sip_kib_per_call"]
        sm["tally_media_kib_per_call"] = mt["media_kib_per_call"]
    mk = res["memory"].get("kamailio", {})
    if "sip_kib_per_call" in mk:
        sm["kamailio_kib_per_call"] = mk["sip_kib_per_call"]
        sm["kamailio_pss_kib_per_call"] = mk["sip_pss_kib_per_call"]
        sm["rtpengine_kib_per_call"] = mk["media_kib_per_call"]
        sm["notes"].append("kamailio's per-call figure is not comparable: its shared memory "
                           "(-m %d MB) is preallocated and it keeps no dialog state (only "
                           "transactions, freed ~5 s after they end); RSS grows as "
                           "preallocated pages are first touched" % res["config"]["kam_shm_mb"])
    oth = [r["cpu_pct"]["other"] for st in res["ladder"] for r in st["runs"]]
    if oth and max(oth) > 15:
        sm["notes"].append("other processes used up to %.0f%% CPU during a step: the machine "
                           "was not quiet, compare systems only within a step" % max(oth))
    res["summary"] = sm


def find_or_build(args):
    if args.tally_sip and args.tally_media:
        return
    bdir = os.path.join(OUT, "build")
    if not args.no_build:
        log("building Release tally-sip + tally-media in %s" % bdir)
        if not os.path.exists(os.path.join(bdir, "CMakeCache.txt")):
            subprocess.run(["cmake", "-S", ROOT, "-B", bdir,
                            "-DCMAKE_BUILD_TYPE=Release"], check=True,
                           stdout=subprocess.DEVNULL)
        subprocess.run(["make", "-C", bdir, "-j%d" % NCPU, "tally-sip",
                        "tally-media"], check=True, stdout=subprocess.DEVNULL)
    args.tally_sip = args.tally_sip or os.path.join(bdir, "src", "sip", "tally-sip")
    args.tally_media = args.tally_media or os.path.join(bdir, "src", "media", "tally-media")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="~2-3 minutes")
    ap.add_argument("--rates", help="ladder, calls/s, comma separated")
    ap.add_argument("--step-secs", type=float, help="calls per step = rate x this")
    ap.add_argument("--call-ms", type=int, help="call duration (ACK -> BYE)")
    ap.add_argument("--hold-calls", type=int, help="calls held for memory/call")
    ap.add_argument("--hold-rate", type=int, default=250)
    ap.add_argument("--cooldown", type=float, default=2.0)
    ap.add_argument("--media-ports", type=int, default=16000,
                    help="media port window per media server")
    ap.add_argument("--tally-sip"), ap.add_argument("--tally-media")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--no-tally", action="store_true")
    ap.add_argument("--no-kamailio", action="store_true")
    ap.add_argument("--kam-children", type=int, default=NCPU)
    ap.add_argument("--kam-shm-mb", type=int, default=512)
    ap.add_argument("--kam-pkg-mb", type=int, default=16)
    ap.add_argument("--sip-extra", default="", help="extra tally-sip args")
    ap.add_argument("--media-extra", default="", help="extra tally-media args")
    ap.add_argument("--json", default=os.path.join(OUT, "sipbench-results.json"))
    args = ap.parse_args()
    q = args.quick
    rates = [int(x) for x in (args.rates or (
        "100,200,400,600,800,1000,1200,1500" if q else
        "50,100,200,300,400,500,600,700,800,1000,1200,1500,2000")).split(",")]
    args.step_secs = args.step_secs or (4.0 if q else 10.0)
    args.call_ms = args.call_ms or (2000 if q else 3000)
    args.hold_calls = args.hold_calls or (500 if q else 1000)
    args.sip_extra = args.sip_extra.split()
    args.media_extra = args.media_extra.split()
    for tool in ("sipp",) + (() if args.no_kamailio else ("kamailio", "rtpengine")):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            sys.exit("sipbench: %s not found" % tool)
    if not args.no_tally:
        find_or_build(args)
    os.makedirs(OUT, exist_ok=True)
    work = os.path.join(OUT, "work")
    os.makedirs(work, exist_ok=True)
    raise_nofile()
    taken = []
    systems = []
    if not args.no_tally:
        systems.append(Tally(args, work, taken))
    if not args.no_kamailio:
        systems.append(Kamailio(args, work, taken))
    for sysm in systems:
        sysm.pick_ports()
    res = {"config": {"quick": q, "rates": rates, "step_secs": args.step_secs,
                      "call_ms": args.call_ms, "hold_calls": args.hold_calls,
                      "hold_rate": args.hold_rate, "ncpu": NCPU,
                      "kam_children": args.kam_children, "kam_shm_mb": args.kam_shm_mb,
                      "tally_sip": args.tally_sip, "tally_media": args.tally_media,
                      "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
                      "started": time.strftime("%Y-%m-%d %H:%M:%S")},
           "memory": {}, "ladder": [], "warmup": {}}
    try:
        gitrev = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                capture_output=True, text=True).stdout.strip()
        res["config"]["git"] = gitrev
    except OSError:
        pass
    t_start = time.time()
    try:
        for s in systems:
            log("starting %s (SIP 127.0.0.1:%d, ng %d, media ports %d-%d)"
                % (s.label, s.sip_port, s.ng_port, s.media_lo, s.media_hi))
            s.start()
            res["config"][s.name] = {"sip_port": s.sip_port, "ng_port": s.ng_port,
                                     "media_ports": [s.media_lo, s.media_hi],
                                     "sip_pids": s.sip_pids(), "media_pid": s.media.pid}
        # warm-up + memory per established call, one system after the other
        for s in systems:
            w = run_calls(s, 20, 20, 500, "warmup", check_rate=False)
            res["warmup"][s.name] = w
            if not w["pass"]:
                s.failed = "warm-up failed: " + w["why"]
                log("%s: %s; log: %s" % (s.label, s.failed, w["sip_log_warnings"]))
                continue
            log("%s: memory with %d calls held" % (s.label, args.hold_calls))
            m = memory_phase(s, args.hold_calls, args.hold_rate, q)
            res["memory"][s.name] = m
            if "error" in m:
                log("  " + m["error"])
            else:
                log("  SIP server %.2f KiB/call, media server %.2f KiB/call"
                    % (m["sip_kib_per_call"], m["media_kib_per_call"]))
            time.sleep(args.cooldown)
        # the ladder, interleaved, order alternating per step
        active = [s for s in systems if not s.failed]
        for i, rate in enumerate(rates):
            if not active:
                break
            order = active if i % 2 == 0 else list(reversed(active))
            step = {"rate": rate, "runs": []}
            for s in order:
                n = int(rate * args.step_secs)
                log("%d cps x %d calls -> %s" % (rate, n, s.label))
                r = run_calls(s, rate, n, args.call_ms, "r%d" % rate)
                step["runs"].append(r)
                log("  ok %d failed %d sipp %s cps, setup p50/p99/max %s/%s/%s ms, "
                    "CPU ms/call sip %.3f media %.3f (sip %.0f%% media %.0f%% sipp %.0f%% "
                    "other %.0f%%) drops sip/uac/uas %d/%d/%d %s"
                    % (r["ok"], r["failed"], fmt(r["sipp_rate"]), fmt(r["setup_ms"]["p50"]),
                       fmt(r["setup_ms"]["p99"]), fmt(r["setup_ms"]["max"]),
                       r["cpu_ms_per_call"]["sip"], r["cpu_ms_per_call"]["media"],
                       r["cpu_pct"]["sip"], r["cpu_pct"]["media"],
                       r["cpu_pct"]["uac"] + r["cpu_pct"]["uas"], r["cpu_pct"]["other"],
                       r["udp_drops"]["sip"], r["udp_drops"]["uac"], r["udp_drops"]["uas"],
                       "" if r["pass"] else "FAIL: " + r["why"]))
                if not r["pass"]:
                    for l in r["sip_log_warnings"][-4:]:
                        log("    | " + l)
                    for l in r["sipp_errors"][-2:]:
                        log("    sipp: " + l[:200])
                    if r["crash"]:
                        s.failed = r["crash"]
                time.sleep(args.cooldown)
            res["ladder"].append(step)
            active = [s for s in active
                      if all(r["pass"] for r in step["runs"] if r["system"] == s.name)]
        # end state: leaks, log volume
        time.sleep(args.cooldown)
        res["end"] = {}
        for s in systems:
            e = {"alive": s.alive() is None, "why_dead": s.alive(),
                 "mem": s.mem() if s.alive() is None else None,
                 "sip_log_lines": len(tail(s.sip.logpath, 10**9)),
                 "sip_log_tail": tail(s.sip.logpath, 10),
                 "total_calls": sum(r["created"] for st in res["ladder"]
                                    for r in st["runs"] if r["system"] == s.name)
                 + sum(x["load"]["created"] for k, x in res["memory"].items()
                       if k == s.name)
                 + sum(x["created"] for k, x in res["warmup"].items() if k == s.name)}
            res["end"][s.name] = e
    finally:
        stop_all()
    res["duration_s"] = round(time.time() - t_start, 1)
    vals = [int(v) for st in res["ladder"] for r in st["runs"]
            for v in r.get("setup_values", [])]
    g = 0
    for v in vals:
        g = math.gcd(g, v)
    res["rtt_granularity_ms"] = g or None
    summarize(res, systems)
    txt = report(res, systems)
    print(txt)
    res["report"] = txt
    with open(args.json, "w") as f:
        json.dump(res, f, indent=1)
    log("results: %s (work dir %s, %.0f s)" % (args.json, work, res["duration_s"]))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
