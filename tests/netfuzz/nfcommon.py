"""nfcommon.py: the pieces every netfuzz target shares (python3 stdlib only).

  Victim      one daemon started by the harness under ASan/UBSan: argv, log
              file, sanitizer log prefix, start/stop by PID, new reports
  Stats       inputs sent per kind, replies, scenarios; printed as a table
  Mutator     byte-level and field-level mutations, seeded, replayable
  signature() the short name of a sanitizer report (kind + first frame in
              tally's own src/), used to tell findings apart

A scenario is a list of steps (JSON dicts). Whatever is random is decided
when the scenario is generated and stored in the step (a byte mutation
stores its own seed), so a saved scenario replays the same inputs against a
fresh daemon. Values only known at run time (ports the daemon picked, tags
it chose, Via branches) are filled in by the target's executor.
"""

import glob
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("TALLY_SRC") or os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))

LOCAL = "127.0.0.1"


def log(msg):
    print(msg, flush=True)


def binary(env_name, sub, prog):
    """$ENV_NAME, else the newest build*/src/SUB/PROG (build-asan* first:
    without sanitizers the harness finds only crashes and hangs)."""
    b = os.environ.get(env_name)
    if b:
        return b
    for pat in ("build-asan*", "build*"):
        found = [p for p in glob.glob(os.path.join(SRC, pat, "src", sub, prog))
                 if os.access(p, os.X_OK)]
        if found:
            return max(found, key=os.path.getmtime)
    raise SystemExit("netfuzz: %s not set and no build*/src/%s/%s" % (env_name, sub, prog))


# ---------------------------------------------------------------- daemons

class Victim:
    """A daemon under test. Its sanitizer reports go to SANDIR/NAME.<pid>
    (ASAN/UBSAN log_path), its output to LOGDIR/NAME.log; stop() signals
    exactly the PID it started."""

    def __init__(self, name, argv, sandir, logdir):
        self.name = name
        self.argv = argv
        self.sandir = sandir
        self.logpath = os.path.join(logdir, name + ".log")
        self.proc = None
        self.starts = 0
        self.rc = None

    def env(self):
        e = dict(os.environ)
        lp = os.path.join(self.sandir, self.name)
        e["ASAN_OPTIONS"] = ("log_path=%s:abort_on_error=1:detect_leaks=1:"
                             "halt_on_error=1:handle_abort=1" % lp)
        e["UBSAN_OPTIONS"] = "log_path=%s:halt_on_error=1:print_stacktrace=1" % lp
        e["LSAN_OPTIONS"] = "log_path=%s" % lp
        return e

    def start(self):
        os.makedirs(self.sandir, exist_ok=True)
        self.starts += 1
        self.rc = None
        with open(self.logpath, "ab") as out:
            out.write(("\n# netfuzz start %d: %s\n" % (self.starts, " ".join(self.argv))).encode())
            out.flush()
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env())
        self.pid = self.proc.pid
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def exitcode(self):
        return None if self.proc is None else self.proc.poll()

    def stop(self, grace=8.0):
        """SIGTERM, then SIGKILL after GRACE; returns the exit status."""
        if self.proc is None:
            return self.rc
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        self.rc = self.proc.returncode
        self.proc = None
        return self.rc

    def reports(self):
        """Sanitizer report files of this daemon (any start) not yet taken."""
        return sorted(p for p in glob.glob(os.path.join(self.sandir, self.name + ".*"))
                      if os.path.getsize(p) > 0)

    def fd_count(self):
        try:
            return len(os.listdir("/proc/%d/fd" % self.pid)) if self.alive() else None
        except OSError:
            return None

    def log_tail(self, n=30):
        try:
            with open(self.logpath, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - 16384))
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


_FRAME = re.compile(r"#\d+ 0x[0-9a-f]+ in (\S+) (\S+?):(\d+)")
_UB = re.compile(r"(\S+?):(\d+):\d+: runtime error: (.*)")


def signature(text):
    """'heap-use-after-free mstream_close call.c' from an ASan report,
    'ubsan routes.c: null pointer passed...' from UBSan, the first line
    otherwise. Line numbers are left out: they move with every commit."""
    m = _UB.search(text)
    if m:
        return "ubsan %s: %s" % (os.path.basename(m.group(1)), m.group(3)[:60])
    m = re.search(r"ERROR: (?:AddressSanitizer|LeakSanitizer): (\S+)(?: on address \S+ at pc \S+ bp \S+ sp \S+ (READ|WRITE))?", text)
    kind = m.group(1) if m else "report"
    if m and m.group(2):
        kind += " " + m.group(2)
    top = re.search(r"#0 0x[0-9a-f]+ +\((?:\S*/)?([^/\s+]+)\+0x", text)
    if top and "tally" not in top.group(1):
        kind += " in " + top.group(1) + " from"
    for fm in _FRAME.finditer(text):
        fn, path = fm.group(1), fm.group(2)
        if "/src/" in path and "sanitizer" not in path:
            return "%s %s %s" % (kind, fn, os.path.basename(path))
    for fm in _FRAME.finditer(text):
        if "sanitizer" not in fm.group(2) and "libc" not in fm.group(2):
            return "%s %s %s" % (kind, fm.group(1), os.path.basename(fm.group(2)))
    return kind


def stack_top(text, n=6):
    """The first N frames of the first stack of a report."""
    out = []
    for line in text.splitlines():
        if re.match(r"\s*#\d+ 0x", line):
            out.append(line.strip())
            if len(out) >= n:
                break
        elif out:
            break
    return out


# ---------------------------------------------------------------- counting

class Flood(threading.Thread):
    """Datagrams to the daemon ports known so far (target.dests, read anew
    every 10 ms), PPS per second in 10 ms batches, until halt is set or
    MAXSECS pass. A target's flood says what one datagram is and where it
    leaves from: send_one(r, seq, dest); idle() runs after each batch."""

    def __init__(self, target, pps, maxsecs=20.0):
        super().__init__(daemon=True)
        self.t = target
        self.pps = pps
        self.maxsecs = maxsecs
        self.halt = threading.Event()
        self.sent = 0
        self.r = random.Random(pps)

    def send_one(self, r, seq, dest):
        raise NotImplementedError

    def idle(self):
        pass

    def run(self):
        r = self.r
        end = time.monotonic() + self.maxsecs
        seq = {}
        batch = max(1, self.pps // 100)
        while not self.halt.is_set() and time.monotonic() < end:
            dests = self.t.dests
            if dests:
                for _ in range(batch):
                    try:
                        self.send_one(r, seq, dests[r.randrange(len(dests))])
                        self.sent += 1
                    except OSError:
                        pass
            self.idle()
            self.halt.wait(0.01)


def flood_switch(target, cls, on, pps):
    """Stop TARGET's flood (target.flood), counting what it sent, and start
    a new CLS flood of PPS when ON."""
    if target.flood:
        target.flood.halt.set()
        target.flood.join(2)
        target.stats.count("rtp/rtcp/junk", target.flood.sent)
        target.flood = None
    if on:
        target.flood = cls(target, pps)
        target.flood.start()


class Stats:
    def __init__(self):
        self.sent = {}
        self.replies = {}
        self.scenarios = 0
        self.steps = 0
        self.restarts = 0
        self.t0 = time.monotonic()

    def count(self, kind, n=1):
        self.sent[kind] = self.sent.get(kind, 0) + n

    def reply(self, kind, n=1):
        self.replies[kind] = self.replies.get(kind, 0) + n

    def total(self):
        return sum(self.sent.values())

    def table(self):
        secs = max(0.001, time.monotonic() - self.t0)
        lines = ["inputs sent: %d in %.0f s (%.0f/s), %d scenarios, %d steps" % (
            self.total(), secs, self.total() / secs, self.scenarios, self.steps)]
        for k in sorted(self.sent):
            lines.append("  %-26s %9d" % (k, self.sent[k]))
        if self.replies:
            lines.append("replies / outcomes:")
            for k in sorted(self.replies):
                lines.append("  %-26s %9d" % (k, self.replies[k]))
        return "\n".join(lines)


# ---------------------------------------------------------------- mutations

INTERESTING_INTS = [0, 1, -1, 2, 127, 128, 255, 256, 0x7fff, 0x8000, 0xffff, 0x10000,
                    0x7fffffff, 0x80000000, 0xffffffff, 1 << 32, (1 << 63) - 1,
                    1 << 63, (1 << 64) - 1, 1 << 64, 99999999999999999999]
INTERESTING_STRS = ["", "0", "-1", "%s", "%n%n", "\x00", "\xff" * 8, "A" * 257,
                    "A" * 4097, "..", "../../../etc/passwd", " ", "\r\n", ";", ",",
                    "<", "\"", "18446744073709551615", "99999999999999999999999"]


class Mutator:
    """Seeded mutations. bytes_mut(data, seed) is a pure function of its
    arguments (the seed is stored in the step, so replays send the same
    bytes when the unmutated message is the same)."""

    @staticmethod
    def bytes_mut(data, seed):
        r = random.Random(seed)
        b = bytearray(data)
        for _ in range(r.choice((1, 1, 2, 3, 8))):
            op = r.randrange(9)
            if not b:
                b = bytearray(b"x")
            i = r.randrange(len(b))
            if op == 0:                                   # flip a bit
                b[i] ^= 1 << r.randrange(8)
            elif op == 1:                                 # random byte
                b[i] = r.randrange(256)
            elif op == 2:                                 # delete a run
                del b[i:i + r.choice((1, 2, 4, 16, 64))]
            elif op == 3:                                 # duplicate a run
                n = r.choice((1, 4, 16, 200))
                b[i:i] = b[i:i + n] * r.choice((1, 2, 10))
            elif op == 4:                                 # truncate
                del b[i:]
            elif op == 5:                                 # insert an interesting token
                tok = r.choice(INTERESTING_STRS + ["%d" % x for x in INTERESTING_INTS])
                b[i:i] = tok.encode("latin-1")
            elif op == 6:                                 # replace a number by a big one
                m = list(re.finditer(rb"\d+", bytes(b)))
                if m:
                    mm = r.choice(m)
                    b[mm.start():mm.end()] = str(r.choice(INTERESTING_INTS)).encode()
            elif op == 7:                                 # swap two runs
                j = r.randrange(len(b))
                n = r.choice((1, 8, 32))
                a1, a2 = bytes(b[i:i + n]), bytes(b[j:j + n])
                if i + n <= j:
                    b[j:j + n] = a1
                    b[i:i + n] = a2
            else:                                         # line-level: drop or duplicate a line
                lines = bytes(b).split(b"\n")
                k = r.randrange(len(lines))
                if r.random() < 0.5:
                    del lines[k]
                else:
                    lines.insert(k, lines[k])
                b = bytearray(b"\n".join(lines))
        return bytes(b)

    @staticmethod
    def odd_value(r, v):
        """A replacement for one field value."""
        c = r.randrange(6)
        if c == 0:
            return r.choice(INTERESTING_INTS)
        if c == 1:
            return r.choice(INTERESTING_STRS)
        if c == 2 and isinstance(v, str) and v:
            return v * r.choice((2, 50))
        if c == 3:
            return [v] if not isinstance(v, list) else []
        if c == 4:
            return {"x": v}
        return ""


# ---------------------------------------------------------------- scenario edits

def mutate_steps(r, steps, movable=lambda s: True):
    """Structural mutations of a step list: drop, duplicate, swap
    neighbours, move one step later (a late message). Returns a new list."""
    steps = list(steps)
    for _ in range(r.choice((0, 1, 1, 2, 3))):
        if not steps:
            break
        op = r.randrange(4)
        i = r.randrange(len(steps))
        if not movable(steps[i]):
            continue
        if op == 0 and len(steps) > 1:
            del steps[i]
        elif op == 1:
            steps.insert(i, dict(steps[i]))
        elif op == 2 and i + 1 < len(steps):
            steps[i], steps[i + 1] = steps[i + 1], steps[i]
        else:
            j = r.randrange(i, len(steps))
            steps.insert(j, steps.pop(i))
    return steps


def ddmin(items, test, deadline, note=lambda s: None):
    """Zeller's delta debugging: a 1-minimal sublist of ITEMS for which
    TEST(sublist) is True (TEST(items) is assumed True). Stops at the
    DEADLINE (time.monotonic()) with the smallest list found so far."""
    n = 2
    while len(items) >= 2 and time.monotonic() < deadline:
        chunk = max(1, len(items) // n)
        subsets = [items[i:i + chunk] for i in range(0, len(items), chunk)]
        reduced = False
        for i, _ in enumerate(subsets):
            if time.monotonic() >= deadline:
                break
            complement = [x for j, s in enumerate(subsets) if j != i for x in s]
            if complement and test(complement):
                items = complement
                n = max(n - 1, 2)
                reduced = True
                note("%d left" % len(items))
                break
        if not reduced:
            if n >= len(items):
                break
            n = min(len(items), n * 2)
    return items
