#!/usr/bin/env python3
"""
tally media bench harness: tally-media vs rtpengine (userspace) vs the bare
forwarder (bench/fwd.c), on the same load, in the same run.

What it does (see bench/README.md for the meaning of every figure):
  1. builds bench/loadgen.c and bench/fwd.c into build-bench/ if needed;
  2. starts loadgen on CPU 0 and opens every "phone" socket (audio-only
     calls: A+B; A/V calls: A+B audio and video) plus a recorder pool;
  3. starts each relay pinned to CPU 1 (taskset -c 1): fwd, rtpengine
     (--table=-1, userspace), tally-media; sets up every call through it
     (ng offer/answer, ports taken from the rewritten SDP; fwd: `pair`);
     VmRSS before/after gives memory per call;
  4. steps the offered load up (streams x pps) for the audio scenario
     (172 B, 50 pps per stream) and the video scenario (1200 B, --video-pps
     per stream). At every step each relay still in the race is measured
     --reps times, interleaved (direct, fwd, rtpengine, tally, direct, ...)
     so machine noise hits all of them alike; the median is kept. A relay
     leaves the ladder at the first step with > 0.1% loss or p99 > 20 ms;
  5. ng relays get a `subscribe request`/`subscribe answer` per call (all
     parties, all media) to the recorder pool, fwd uses its replicating
     pairs, and the ladders run again ("+rep");
  6. prints a table per scenario and the ratios, writes JSON.

Only processes this script started are ended, by PID. Loopback only.
Python 3 stdlib only.
"""

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LOSS_MAX = 0.1          # percent
P99_MAX_US = 20000.0    # "latency explodes"
STARTED = []            # Popen objects we started; ended by pid at exit


# ---------------------------------------------------------------- bencode --

def benc(x):
    if isinstance(x, dict):
        out = b"d"
        for k in sorted(x):
            out += benc(k) + benc(x[k])
        return out + b"e"
    if isinstance(x, (list, tuple)):
        return b"l" + b"".join(benc(i) for i in x) + b"e"
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    return b"%d:" % len(x) + x


def bdec(data, i=0):
    """Decode one bencoded value at data[i:]; returns (value, next index).
    Strings come back as str (utf-8, replacement on error)."""
    c = data[i:i + 1]
    if c == b"d":
        i += 1
        d = {}
        while data[i:i + 1] != b"e":
            k, i = bdec(data, i)
            v, i = bdec(data, i)
            d[k] = v
        return d, i + 1
    if c == b"l":
        i += 1
        lst = []
        while data[i:i + 1] != b"e":
            v, i = bdec(data, i)
            lst.append(v)
        return lst, i + 1
    if c == b"i":
        j = data.index(b"e", i)
        return int(data[i + 1:j]), j + 1
    j = data.index(b":", i)
    n = int(data[i:j])
    return data[j + 1:j + 1 + n].decode("utf-8", "replace"), j + 1 + n


class Ng:
    """ng protocol client: one UDP socket, `<cookie> <bencode>`."""

    def __init__(self, port):
        self.addr = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.seq = 0

    def req(self, d, timeout=2.0, tries=3):
        self.seq += 1
        cookie = b"b%d_%d" % (os.getpid(), self.seq)
        msg = cookie + b" " + benc(d)
        for _ in range(tries):
            self.sock.sendto(msg, self.addr)
            self.sock.settimeout(timeout)
            try:
                while True:
                    data, _ = self.sock.recvfrom(65536)
                    if data.startswith(cookie + b" "):
                        return bdec(data, len(cookie) + 1)[0]
            except socket.timeout:
                continue
        raise TimeoutError("no ng reply to %s" % d.get("command"))


# ------------------------------------------------------------------ utils --

def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def used_udp_ports():
    used = set()
    for f in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            for line in open(f).read().splitlines()[1:]:
                used.add(int(line.split()[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return used


def ephemeral_low():
    """First port of the kernel's ephemeral range (32768 by default)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def port_window(width, taken, start=2000):
    """Pick, at run time, the [lo, hi] window of `width` ports in
    start-60999 (1000-aligned) with the fewest ports in use now, not
    overlapping `taken` (which gets the window appended). Windows below the
    ephemeral range come first: loadgen's and fwd's sockets (thousands of
    ephemeral ports, some opened after the window is chosen) would take
    pairs from a relay's window there, and it would run out of ports."""
    used = used_udp_ports()
    eph = ephemeral_low()
    best = None
    for lo in range(start, 61000 - width, 1000):
        hi = lo + width - 1
        if any(not (hi < a or lo > b) for a, b in taken):
            continue
        n = (hi >= eph, sum(1 for p in used if lo <= p <= hi))
        if best is None or n < best[0]:
            best = (n, lo, hi)
    if best is None:
        raise RuntimeError("no free port window of %d" % width)
    taken.append((best[1], best[2]))
    return best[1], best[2]


def cpu_ns(pid):
    """CPU time (user+system, ns) of all threads of pid, from schedstat;
    falls back to /proc/PID/stat utime+stime (clock ticks)."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        return total
    except (OSError, ValueError):
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        hz = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) * 1000000000 // hz


def core_busy_ns(cpu):
    """Busy (non-idle, non-iowait) time of one CPU from /proc/stat, ns."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu%d " % cpu):
                v = [int(x) for x in line.split()[1:]]
                busy = sum(v[:8]) - v[3] - v[4]
                return busy * 1000000000 // os.sysconf("SC_CLK_TCK")
    return 0


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


NICE = [0]
RT = [0]


def raise_nofile(rt=True):
    """preexec for every child: lift the fd limit; apply --nice and, if RT,
    --rt (best effort: needs CAP_SYS_NICE)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if NICE[0]:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, NICE[0])
        except OSError:
            pass
    if RT[0] and rt:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT[0]))
        except OSError:
            pass


def spawn(argv, cpu, rt=True, **kw):
    """Start argv pinned to `cpu` (taskset execs: the pid is the program's);
    rt=False: never SCHED_FIFO (a spinning loadgen would run into the
    kernel's RT throttle: 50 ms off the CPU every second)."""
    p = subprocess.Popen(["taskset", "-c", str(cpu)] + argv,
                         preexec_fn=lambda: raise_nofile(rt), **kw)
    STARTED.append(p)
    return p


def stop(p):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def stop_all():
    for p in reversed(STARTED):
        try:
            stop(p)
        except (OSError, ValueError):
            pass


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# -------------------------------------------------------------------- SDP --

CODECS = {"audio": (0, "a=rtpmap:0 PCMU/8000"),
          "video": (96, "a=rtpmap:96 H264/90000\r\n"
                        "a=fmtp:96 packetization-mode=1")}


def sdp_make(medias, direction="sendrecv", sess=1):
    """medias: [(type, port)] -> SDP text on 127.0.0.1."""
    s = ("v=0\r\no=- %d 1 IN IP4 127.0.0.1\r\ns=tally-bench\r\n"
         "c=IN IP4 127.0.0.1\r\nt=0 0\r\n" % sess)
    for typ, port in medias:
        pt, attrs = CODECS[typ]
        s += "m=%s %d RTP/AVP %d\r\n%s\r\na=%s\r\n" % (
            typ, port, pt, attrs, direction)
    return s


def sdp_parse(sdp):
    """-> [{'type','ip','port'}] per m= line (media-level c= wins)."""
    sess_ip, out = None, []
    for line in sdp.replace("\r", "").split("\n"):
        if line.startswith("c=IN IP4 "):
            ip = line.split()[2].split("/")[0]
            if out:
                out[-1]["ip"] = ip
            else:
                sess_ip = ip
        elif line.startswith("m="):
            f = line[2:].split()
            out.append({"type": f[0], "port": int(f[1]), "ip": sess_ip})
    return out


# ---------------------------------------------------------------- loadgen --

class Loadgen:
    def __init__(self, path, cpu, spin=True):
        """spin: busy-poll between sends (every run), never SCHED_FIFO."""
        self.spin = spin
        self.p = spawn([path], cpu, rt=not spin, stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, text=True, bufsize=1)
        self.nsock = 0
        self.nleg = 0

    def send(self, line):
        self.p.stdin.write(line + "\n")

    def cmd(self, line):
        self.send(line)
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        if not out:
            raise RuntimeError("loadgen died")
        return json.loads(out)

    def socks(self, n):
        ports = []
        while n > 0:
            k = min(n, 500)
            r = self.cmd("sock %d" % k)
            if "ports" not in r:
                raise RuntimeError("loadgen sock: %s" % r)
            base = self.nsock
            ports += [(base + i, p) for i, p in enumerate(r["ports"])]
            self.nsock += k
            n -= k
        return ports

    def add_legs(self, legs):
        """legs: [(src_sock, dst_port, rx_sock, pt)] -> (first, count)."""
        first = self.nleg
        for src, dport, rx, pt in legs:
            self.send("leg %d 127.0.0.1 %d %d %d" % (src, dport, rx, pt))
        self.nleg += len(legs)
        r = self.cmd("sync")
        if r.get("errors") or r.get("legs") != self.nleg:
            raise RuntimeError("loadgen legs: %s" % r)
        return first, len(legs)

    def run(self, first, count, pps, size, dur, warm, drain, burst=1):
        return self.cmd("run %d %d %g %d %d %d %d %d %d" % (
            first, count, pps, size, dur, warm, drain, burst,
            int(self.spin)))


# ----------------------------------------------------------------- relays --

class Calls:
    """The phones: sockets for every call, shared by all relays (only one
    relay carries traffic at a time; each relay has its own legs)."""

    def __init__(self, lg, n_audio, n_av, n_rec):
        self.audio = []   # [{'A': {'audio': (sock, port)}, 'B': {...}}]
        self.av = []
        s = lg.socks(2 * n_audio)
        for i in range(n_audio):
            self.audio.append({"A": {"audio": s[2 * i]},
                               "B": {"audio": s[2 * i + 1]}})
        s = lg.socks(4 * n_av)
        for i in range(n_av):
            self.av.append({"A": {"audio": s[4 * i], "video": s[4 * i + 1]},
                            "B": {"audio": s[4 * i + 2],
                                  "video": s[4 * i + 3]}})
        self.rec = lg.socks(n_rec)
        for sock, _ in self.rec:
            lg.send("rec %d" % sock)
        lg.cmd("sync")
        self.rec_i = 0

    def rec_port(self):
        self.rec_i += 1
        return self.rec[self.rec_i % len(self.rec)][1]


def legs_for(call, media, a_dst, b_dst):
    """Two legs of one medium: A -> (relay port for A) -> B and back."""
    pt = CODECS[media][0]
    a, b = call["A"][media][0], call["B"][media][0]
    return [(a, a_dst, b, pt), (b, b_dst, a, pt)]


class Relay:
    """Base: name, status, pid (None for direct), legs per (scenario, rep)."""
    ng = False

    def __init__(self, name):
        self.name = name
        self.status = "ok"
        self.proc = None
        self.legs = {}
        self.info = {}

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def fail(self, why):
        log("%s: FAILED: %s" % (self.name, why))
        self.status = "failed: %s" % why

    def can(self, scen, rep):
        return self.status == "ok" and (scen, rep) in self.legs


class Direct(Relay):
    """No relay: loadgen -> loadgen, the latency baseline."""

    def setup(self, lg, calls):
        for scen, group, media in (("audio", calls.audio, "audio"),
                                   ("video", calls.av, "video")):
            legs = []
            for c in group:
                legs += legs_for(c, media, c["B"][media][1], c["A"][media][1])
            self.legs[(scen, False)] = lg.add_legs(legs)


class Fwd(Relay):
    def __init__(self, path, cpu):
        super().__init__("fwd")
        self.path, self.cpu = path, cpu

    def start(self):
        self.proc = spawn([self.path], self.cpu, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, bufsize=1)

    def pair(self, a_port, b_port, rec=None):
        line = "pair 127.0.0.1:%d 127.0.0.1:%d" % (a_port, b_port)
        if rec:
            line += " 127.0.0.1:%d 127.0.0.1:%d" % rec
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        r = self.proc.stdout.readline().split()
        if len(r) != 2 or not r[0].isdigit():
            raise RuntimeError("fwd pair: %s" % r)
        return int(r[0]), int(r[1])

    def setup(self, lg, calls):
        rss0 = rss_kb(self.pid)
        for rep in (False, True):
            for scen, group, medias in (("audio", calls.audio, ["audio"]),
                                        ("video", calls.av,
                                         ["audio", "video"])):
                legs = []
                for c in group:
                    for m in medias:
                        rec = (calls.rec_port(), calls.rec_port()) \
                            if rep else None
                        pa, pb = self.pair(c["A"][m][1], c["B"][m][1], rec)
                        if m == scen:
                            legs += legs_for(c, m, pa, pb)
                self.legs[(scen, rep)] = lg.add_legs(legs)
            if not rep:
                self.info["rss_calls_kb"] = rss_kb(self.pid) - rss0
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        self.proc.stdout.readline()


class NgRelay(Relay):
    """rtpengine or tally-media: started with argv, driven over ng."""
    ng = True

    def __init__(self, name, argv_fn, cpu, workdir):
        super().__init__(name)
        self.argv_fn, self.cpu, self.workdir = argv_fn, cpu, workdir
        self.subscribed = False

    def start(self, port_lo, port_hi):
        self.ng_port = free_udp_port()
        argv = self.argv_fn(self.ng_port, port_lo, port_hi)
        self.info["argv"] = argv
        self.logf = open(os.path.join(self.workdir, self.name + ".log"), "w")
        try:
            self.proc = spawn(argv, self.cpu, stdout=self.logf,
                              stderr=subprocess.STDOUT)
        except OSError as e:
            self.fail("cannot start: %s" % e)
            return
        self.ngc = Ng(self.ng_port)
        t_end = time.time() + 10
        while time.time() < t_end:
            if self.proc.poll() is not None:
                self.fail("exited with %s at start (see %s.log)"
                          % (self.proc.returncode, self.name))
                return
            try:
                if self.ngc.req({"command": "ping"}, timeout=0.3,
                                tries=1).get("result") == "pong":
                    return
            except (TimeoutError, OSError, ValueError):
                pass
        self.fail("no pong on ng port %d" % self.ng_port)

    def _call(self, cid, call, medias):
        """offer/answer one call; -> {media: (port A sends to, B sends to)}"""
        a = sdp_make([(m, call["A"][m][1]) for m in medias])
        b = sdp_make([(m, call["B"][m][1]) for m in medias], sess=2)
        common = {"call-id": cid, "replace": ["origin", "session-connection"],
                  "ICE": "remove"}
        r = self.ngc.req(dict(common, command="offer", **{"from-tag": "A"},
                              sdp=a))
        if r.get("result") != "ok":
            raise RuntimeError("offer: %s" % r.get("error-reason", r))
        to_b = sdp_parse(r["sdp"])
        r = self.ngc.req(dict(common, command="answer", sdp=b,
                              **{"from-tag": "A", "to-tag": "B"}))
        if r.get("result") != "ok":
            raise RuntimeError("answer: %s" % r.get("error-reason", r))
        to_a = sdp_parse(r["sdp"])
        if len(to_a) != len(medias) or len(to_b) != len(medias):
            raise RuntimeError("m= lines: offer %d answer %d, want %d"
                               % (len(to_b), len(to_a), len(medias)))
        out = {}
        for i, m in enumerate(medias):
            if to_a[i]["ip"] != "127.0.0.1" or to_b[i]["ip"] != "127.0.0.1":
                raise RuntimeError("relay address not 127.0.0.1")
            out[m] = (to_a[i]["port"], to_b[i]["port"])
        return out

    def setup(self, lg, calls):
        try:
            rss0 = rss_kb(self.pid)
            t0 = time.time()
            legs = []
            for i, c in enumerate(calls.av):
                p = self._call("av-%d" % i, c, ["audio", "video"])
                legs += legs_for(c, "video", *p["video"])
            self.info["setup_av_calls_per_s"] = round(
                len(calls.av) / (time.time() - t0), 1)
            rss1 = rss_kb(self.pid)
            self.info["mem_per_av_call_kib"] = round(
                (rss1 - rss0) / max(1, len(calls.av)), 2)
            av_legs = legs
            legs = []
            for i, c in enumerate(calls.audio):
                p = self._call("a-%d" % i, c, ["audio"])
                legs += legs_for(c, "audio", *p["audio"])
            rss2 = rss_kb(self.pid)
            self.info["mem_per_audio_call_kib"] = round(
                (rss2 - rss1) / max(1, len(calls.audio)), 2)
            self.info["rss_kb_idle"] = rss0
            self.info["rss_kb_calls"] = rss2
        except (RuntimeError, TimeoutError, KeyError, ValueError,
                OSError) as e:
            self.fail("call setup: %s" % e)
            return
        for rep in (False, True):
            self.legs[("audio", rep)] = lg.add_legs(legs)
            self.legs[("video", rep)] = lg.add_legs(av_legs)

    def _subscribe(self, cid, calls):
        r = self.ngc.req({"command": "subscribe request", "call-id": cid,
                          "flags": ["all"], "from-tags": ["A", "B"]})
        if r.get("result") != "ok":
            raise RuntimeError("subscribe request: %s"
                               % r.get("error-reason", r))
        offer = sdp_parse(r["sdp"])
        if not offer:
            raise RuntimeError("subscribe request: no m= lines")
        ans = sdp_make([(m["type"], calls.rec_port()) for m in offer],
                       direction="recvonly", sess=3)
        r2 = self.ngc.req({"command": "subscribe answer", "call-id": cid,
                           "to-tag": r["to-tag"], "sdp": ans})
        if r2.get("result") != "ok":
            raise RuntimeError("subscribe answer: %s"
                               % r2.get("error-reason", r2))
        return len(offer)

    def subscribe_all(self, calls):
        if self.status != "ok":
            return
        try:
            rss0 = rss_kb(self.pid)
            for i in range(len(calls.av)):
                n = self._subscribe("av-%d" % i, calls)
                if n != 4:
                    raise RuntimeError("A/V subscription has %d m= lines, "
                                       "want 4" % n)
            rss1 = rss_kb(self.pid)
            for i in range(len(calls.audio)):
                self._subscribe("a-%d" % i, calls)
            self.info["mem_per_av_subscription_kib"] = round(
                (rss1 - rss0) / max(1, len(calls.av)), 2)
            self.subscribed = True
        except (RuntimeError, TimeoutError, KeyError, ValueError,
                OSError) as e:
            log("%s: replication n/a: %s" % (self.name, e))
            self.info["replication"] = "n/a: %s" % e
            for s in ("audio", "video"):
                self.legs.pop((s, True), None)


# ---------------------------------------------------------------- measure --

def measure(lg, relay, scen, rep, streams, pps, size, burst, t):
    first, count = relay.legs[(scen, rep)]
    streams = min(streams, count)
    pid = relay.pid
    c0 = cpu_ns(pid) if pid else 0
    l0, k0 = cpu_ns(lg.p.pid), core_busy_ns(t["relay_cpu"])
    r = lg.run(first, streams, pps, size, t["dur"], t["warm"], t["drain"],
               burst)
    c1 = cpu_ns(pid) if pid else 0
    l1, k1 = cpu_ns(lg.p.pid), core_busy_ns(t["relay_cpu"])
    if "sent" not in r:
        raise RuntimeError("loadgen run: %s" % r)
    # loadgen's headroom: with a spinning sink its CPU is always ~100%, so
    # the share of time it was doing something is what it reports itself
    r["loadgen_proc_pct"] = 100.0 * (l1 - l0) / 1e9 / r["elapsed_s"]
    r["loadgen_cpu_pct"] = r["busy_pct"] if r.get("spin") else \
        r["loadgen_proc_pct"]
    r["core_busy_pct"] = 100.0 * (k1 - k0) / 1e9 / r["elapsed_s"]
    if pid:
        r["cpu_ms"] = (c1 - c0) / 1e6
        r["us_per_pkt"] = (c1 - c0) / 1e3 / max(1, r["recv_all"])
        r["cpu_pct"] = 100.0 * (c1 - c0) / 1e9 / r["elapsed_s"]
        # CPU time other processes took on the relay's core meanwhile
        r["other_pct"] = max(0.0, r["core_busy_pct"] - r["cpu_pct"])
    if rep:
        r["rec_loss_pct"] = 100.0 * max(0, r["sent"] - r["rec"]) / \
            max(1, r["sent"])
    r["relayed_pps"] = r["recv"] / (t["dur"] / 1000.0)
    if pid and relay.proc.poll() is not None:
        relay.fail("died during load")
    return r


KEYS = ("relayed_pps", "loss_pct", "rec_loss_pct", "p50_us", "p99_us",
        "max_us", "us_per_pkt", "cpu_pct", "sent_pps", "loadgen_cpu_pct",
        "core_busy_pct", "other_pct")
LOADGEN_BOUND_PCT = 90.0


def summarize(runs):
    return {k: median([r.get(k) for r in runs]) for k in KEYS
            if any(k in r for r in runs)}


def ladder(lg, relays, scen, rep, steps, per_stream_pps, size, burst, t,
           reps, results):
    """Run one scenario's load ladder over all relays, interleaved."""
    name = scen + ("+rep" if rep else "")
    active = [r for r in relays if r.can(scen, rep)]
    if rep:
        active = [r for r in active if not isinstance(r, Direct)]
    out = results.setdefault(name, [])
    for total in steps:
        streams = max(2, int(round(total / per_stream_pps / 2)) * 2)
        if not active:
            break
        if any(streams > r.legs[(scen, rep)][1] for r in active):
            log("%s: %d streams exceed the calls set up; ladder ends"
                % (name, streams))
            break
        row = {"offered_pps": streams * per_stream_pps, "streams": streams,
               "relays": {}}
        runs = {r.name: [] for r in active}
        for _ in range(reps):
            for r in active:
                if r.status != "ok":
                    continue
                m = measure(lg, r, scen, rep, streams, per_stream_pps, size,
                            burst, t)
                runs[r.name].append(m)
                if m["loss_pct"] > LOSS_MAX:
                    time.sleep(0.3)      # let a saturated relay drain
        for r in list(active):
            s = summarize(runs[r.name])
            s["runs"] = runs[r.name]
            row["relays"][r.name] = s
            loss = max(s.get("loss_pct") or 0, s.get("rec_loss_pct") or 0)
            ok = r.status == "ok" and loss <= LOSS_MAX and \
                (s.get("p99_us") or 0) <= P99_MAX_US
            s["sustained"] = ok
            if not ok:
                active.remove(r)
                # a relay that fails while loadgen's core is saturated has
                # not shown its own limit: say so instead of "saturated"
                lgb = (s.get("loadgen_cpu_pct") or 0) >= LOADGEN_BOUND_PCT \
                    or (s.get("sent_pps") or 0) < 0.98 * row["offered_pps"]
                s["limit"] = "loadgen-bound" if lgb else "relay"
        out.append(row)
        log("%-10s %7d pps: %s" % (name, row["offered_pps"], "  ".join(
            "%s %s%.1fus/p p99=%.0f loss=%.2f%% lg=%.0f%%" % (
                n, "" if v["sustained"] else "X(%s) " % v["limit"],
                v.get("us_per_pkt") or 0, v.get("p99_us") or 0,
                max(v.get("loss_pct") or 0, v.get("rec_loss_pct") or 0),
                v.get("loadgen_cpu_pct") or 0)
            for n, v in row["relays"].items())))


# ----------------------------------------------------------------- report --

def report(results, relays, names):
    direct = {}
    summary = {}
    for scen, rows in results.items():
        base = scen.split("+")[0]
        for row in rows:
            d = row["relays"].get("direct")
            if d and not scen.endswith("+rep"):
                direct[(base, row["offered_pps"])] = d
    for scen, rows in results.items():
        base = scen.split("+")[0]
        print("\n== %s ==" % scen)
        print("%-8s %8s | %-12s %9s %8s %8s %6s %6s %6s %9s %9s %s" % (
            "offered", "streams", "relay", "relayed", "loss%", "us/pkt",
            "cpu%", "lg%", "oth%", "+p50 us", "+p99 us", "ok"))
        best, limit = {}, {}
        for row in rows:
            d = direct.get((base, row["offered_pps"]))
            for n in names:
                v = row["relays"].get(n)
                if not v or n == "direct":
                    continue
                if d:
                    v["added_p50_us"] = v["p50_us"] - d["p50_us"]
                    v["added_p99_us"] = v["p99_us"] - d["p99_us"]
                loss = max(v.get("loss_pct") or 0, v.get("rec_loss_pct") or 0)
                print("%8d %8d | %-12s %9.0f %8.3f %8.2f %6.1f %6.1f %6.1f "
                      "%9s %9s %s"
                      % (row["offered_pps"], row["streams"], n,
                         v["relayed_pps"], loss, v.get("us_per_pkt") or 0,
                         v.get("cpu_pct") or 0,
                         v.get("loadgen_cpu_pct") or 0,
                         v.get("other_pct") or 0,
                         "%.1f" % v["added_p50_us"] if d else "-",
                         "%.1f" % v["added_p99_us"] if d else "-",
                         "yes" if v["sustained"] else
                         "NO (%s)" % v["limit"]))
                if v["sustained"]:
                    best[n] = v["relayed_pps"]
                else:
                    limit[n] = "%s at %d pps" % (v["limit"],
                                                 row["offered_pps"])
        s = summary[scen] = {"max_pps_sustained": best, "limit": {
            n: limit.get(n, "not reached (ladder end)") for n in best}}
        # CPU cost ratios at each load all three sustain; report the worst
        # (min) and the value at the highest common load.
        pairs = [("tally-media", "rtpengine"), ("tally-media", "fwd"),
                 ("fwd", "rtpengine")]
        for n in names:
            if n not in ("direct", "fwd", "rtpengine", "tally-media"):
                pairs += [(n, "rtpengine"), (n, "fwd"), (n, "tally-media")]
        for a, b in pairs:
            ratios, lat_ok = [], True
            for row in rows:
                va, vb = row["relays"].get(a), row["relays"].get(b)
                if va and vb and va["sustained"] and vb["sustained"] and \
                        va.get("us_per_pkt") and vb.get("us_per_pkt"):
                    ratios.append((row["offered_pps"],
                                   vb["us_per_pkt"] / va["us_per_pkt"]))
                    if "added_p99_us" in va and \
                            va["added_p99_us"] >= vb["added_p99_us"]:
                        lat_ok = False
            if ratios:
                key = "%s/%s" % (a, b)
                s[key] = {"pps_per_cpu_s_ratio_at_top": round(ratios[-1][1], 3),
                          "top_load_pps": ratios[-1][0],
                          "pps_per_cpu_s_ratio_min": round(
                              min(x[1] for x in ratios), 3),
                          "lower_p99_at_every_common_load": lat_ok}
                print("  %s: packets per CPU-second x%.2f at %d pps "
                      "(min x%.2f over %d common loads); lower p99 at every "
                      "common load: %s" % (key, ratios[-1][1], ratios[-1][0],
                                           min(x[1] for x in ratios),
                                           len(ratios), lat_ok))
        for n, v in best.items():
            print("  %s: max sustained %.0f pps (< %.1f%% loss); limit: %s"
                  % (n, v, LOSS_MAX, s["limit"][n]))
    print("\n== memory and status ==")
    for r in relays:
        if isinstance(r, Direct):
            continue
        print("  %-12s %s %s" % (r.name, r.status, json.dumps(
            {k: v for k, v in r.info.items() if k != "argv"})))
    return summary


# ------------------------------------------------------------------- main --

def build(out):
    os.makedirs(out, exist_ok=True)
    for name in ("loadgen", "fwd"):
        src, exe = os.path.join(HERE, name + ".c"), os.path.join(out, name)
        if not os.path.exists(exe) or \
                os.path.getmtime(exe) < os.path.getmtime(src):
            subprocess.check_call(["gcc", "-O2", "-Wall", "-Wextra",
                                   "-D_GNU_SOURCE", "-o", exe, src])
    return os.path.join(out, "loadgen"), os.path.join(out, "fwd")


def find_tally():
    """build-bench-tm/ (the bench's own Release build) if it exists, else
    the newest build*/src/media/tally-media under the repository."""
    own = os.path.join(ROOT, "build-bench-tm", "src", "media", "tally-media")
    if os.access(own, os.X_OK):
        return own
    found = []
    for d in os.listdir(ROOT):
        p = os.path.join(ROOT, d, "src", "media", "tally-media")
        if d.startswith("build") and os.access(p, os.X_OK):
            found.append((os.path.getmtime(p), p))
    return max(found)[1] if found else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--quick", action="store_true",
                    help="~2-3 minutes: fewer steps, reps and calls")
    ap.add_argument("--tally", default=None,
                    help="tally-media binary (default: build*/src/media/)")
    ap.add_argument("--tally-args", default=None,
                    help="tally-media argv template; {ng} {port_min} "
                         "{port_max} {threads} are substituted")
    ap.add_argument("--tally2", default=None,
                    help="a second tally-media variant measured side by side"
                         " (default binary: --tally's); enabled by --tally2"
                         " or --tally2-args")
    ap.add_argument("--tally2-args", default=None,
                    help="argv template of the second variant (same"
                         " placeholders as --tally-args)")
    ap.add_argument("--tally2-name", default="tally-uring",
                    help="label of the second variant")
    ap.add_argument("--no-tally", action="store_true")
    ap.add_argument("--no-rtpengine", action="store_true")
    ap.add_argument("--rtpengine", default="/usr/bin/rtpengine")
    ap.add_argument("--threads", type=int, default=1,
                    help="relay worker threads (rtpengine --num-threads)")
    ap.add_argument("--audio-calls", type=int, default=None)
    ap.add_argument("--av-calls", type=int, default=None)
    ap.add_argument("--video-pps", type=int, default=250,
                    help="packets/s per video stream (1200 B)")
    ap.add_argument("--video-fps", type=float, default=25,
                    help="video frames per second per stream: a frame's "
                    "packets (video-pps / fps) leave back to back, as an "
                    "encoder sends them; 0: evenly spaced packets")
    ap.add_argument("--sink-sleeps", action="store_true",
                    help="loadgen sleeps between sends instead of spinning: "
                    "every relay then also pays waking it up (see README)")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--dur-ms", type=int, default=None)
    ap.add_argument("--steps", default=None,
                    help="comma-separated total pps ladder")
    ap.add_argument("--scenarios", default="audio,video,audio+rep,video+rep")
    ap.add_argument("--relay-cpu", type=int, default=1)
    ap.add_argument("--rt", type=int, default=0, metavar="PRIO",
                    help="run relays and loadgen SCHED_FIFO at PRIO (opt-in:"
                         " on a busy shared machine it removes the ms-scale"
                         " preemption from p99; other work is starved to the"
                         " kernel's RT throttle while a load runs)")
    ap.add_argument("--nice", type=int, default=-20,
                    help="nice value for relays and loadgen (shared machine:"
                         " keeps other work from preempting them)")
    ap.add_argument("--loadgen-cpu", type=int, default=0)
    ap.add_argument("--json", default=os.path.join(ROOT, "build-bench",
                                                   "bench-results.json"))
    a = ap.parse_args()

    q = a.quick
    steps = [int(x) for x in a.steps.split(",")] if a.steps else (
        [5000, 20000, 40000, 60000, 80000] if q else
        [5000, 10000, 20000, 30000, 40000, 60000, 80000, 100000, 120000])
    reps = a.reps or (2 if q else 3)
    t = {"dur": a.dur_ms or (700 if q else 1000), "warm": 200, "drain": 200,
         "relay_cpu": a.relay_cpu}
    n_audio = a.audio_calls or max(steps) // 100
    # 250: 120k pps of video needs 240 A/V calls, and two relay windows
    # (below) fit under the ephemeral range with 1200 audio calls
    n_av = a.av_calls or (200 if q else 250)
    scen = a.scenarios.split(",")

    os.sched_setaffinity(0, {a.loadgen_cpu})   # the harness stays off CPU 1
    raise_nofile()
    NICE[0] = a.nice
    RT[0] = a.rt
    out_dir = os.path.dirname(os.path.abspath(a.json))
    workdir = os.path.join(out_dir, "bench-work")
    os.makedirs(workdir, exist_ok=True)
    loadgen_bin, fwd_bin = build(os.path.join(ROOT, "build-bench"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    t_start = time.time()
    try:
        lg = Loadgen(loadgen_bin, a.loadgen_cpu, spin=not a.sink_sleeps)
        calls = Calls(lg, n_audio, n_av, 16)
        relays = [Direct("direct"), Fwd(fwd_bin, a.relay_cpu)]
        taken = []
        # per call: a pair per stream (RTP+RTCP) and one per
        # replication sink; A/V 8 pairs, audio 4; plus some slack
        ports_needed = 16 * n_av + 8 * n_audio + 1000
        if not a.no_rtpengine:
            def rtpe_argv(ng, lo, hi):
                return [a.rtpengine, "--config-file=none", "--table=-1",
                        "--interface=127.0.0.1",
                        "--listen-ng=127.0.0.1:%d" % ng,
                        "--port-min=%d" % lo, "--port-max=%d" % hi,
                        "--foreground", "--log-stderr", "--log-level=4",
                        "--delete-delay=0", "--num-threads=%d" % a.threads,
                        # idle calls must survive the whole bench
                        "--timeout=86400", "--silent-timeout=86400"]
            relays.append(NgRelay("rtpengine", rtpe_argv, a.relay_cpu,
                                  workdir))
        tally = a.tally or find_tally()
        default_tmpl = (
            "{bin} --config-file=none --interface=127.0.0.1 "
            "--listen-ng=127.0.0.1:{ng} --port-min={port_min} "
            "--port-max={port_max} --foreground --num-threads={threads} "
            "--timeout=0 --log-level=4")

        def tally_relay(name, binary, tmpl):
            def tally_argv(ng, lo, hi):
                return tmpl.format(bin=binary, ng=ng, port_min=lo,
                                   port_max=hi, threads=a.threads).split()
            tr = NgRelay(name, tally_argv, a.relay_cpu, workdir)
            if not binary:
                tr.fail("no tally-media binary found (build*/src/media/)")
            return tr
        if not a.no_tally:
            relays.append(tally_relay("tally-media", tally,
                                      a.tally_args or default_tmpl))
        if a.tally2 or a.tally2_args:
            relays.append(tally_relay(a.tally2_name, a.tally2 or tally,
                                      a.tally2_args or default_tmpl))
        for r in relays:
            log("setting up %s ..." % r.name)
            if isinstance(r, Fwd):
                r.start()
            elif isinstance(r, NgRelay) and r.status == "ok":
                lo, hi = port_window(ports_needed, taken)
                r.info["ports"] = "%d-%d" % (lo, hi)
                r.start(lo, hi)
            if r.status == "ok":
                r.setup(lg, calls)
        vburst = max(1, int(round(a.video_pps / a.video_fps))) \
            if a.video_fps > 0 else 1
        sizes = {"audio": (50, 172, 1), "video": (a.video_pps, 1200, vburst)}
        results = {}
        for rep in (False, True):
            if rep and any(s.endswith("+rep") for s in scen):
                for r in relays:
                    if isinstance(r, NgRelay):
                        log("subscribing %s ..." % r.name)
                        r.subscribe_all(calls)
            for s in ("audio", "video"):
                if s + ("+rep" if rep else "") not in scen:
                    continue
                pps, size, burst = sizes[s]
                ladder(lg, relays, s, rep, steps, pps, size, burst, t, reps,
                       results)
        for r in relays:
            if r.pid and r.status == "ok":
                r.info["rss_kb_end"] = rss_kb(r.pid)
        names = [r.name for r in relays]
        summary = report(results, relays, names)
        doc = {"config": {"steps": steps, "reps": reps, "timing_ms": t,
                          "audio_calls": n_audio, "av_calls": n_av,
                          "video_pps": a.video_pps, "threads": a.threads,
                          "video_fps": a.video_fps, "video_burst": vburst,
                          "sink_spins": lg.spin,
                          "relay_cpu": a.relay_cpu,
                          "loadgen_cpu": a.loadgen_cpu, "quick": q,
                          "loss_max_pct": LOSS_MAX, "nice": a.nice, "rt": a.rt,
                          "tally_binary": tally,
                          "tally2_binary": (a.tally2 or tally)
                          if (a.tally2 or a.tally2_args) else None},
               "relays": {r.name: {"status": r.status, **r.info}
                          for r in relays},
               "results": results, "summary": summary,
               "wall_s": round(time.time() - t_start, 1)}
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)
        print("\nresults: %s (wall %.0f s)" % (a.json, time.time() - t_start))
        lg.send("quit")
        lg.p.stdin.flush()
    finally:
        stop_all()


if __name__ == "__main__":
    main()
