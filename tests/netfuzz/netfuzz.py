#!/usr/bin/env python3
"""netfuzz.py: whole-daemon network fuzzing of tally-media, tally-sip and
tally-recorder (python3 stdlib only).

    netfuzz.py --target media|sip|recorder [--seconds N] [--seed S] [--out DIR]
    netfuzz.py --target T --replay RECORD.json
    netfuzz.py --target T --minimize RECORD.json [--minimize-seconds N]

The harness starts the daemon under test itself (from $TALLY_MEDIA,
$TALLY_SIP, $TALLY_RECORDER, else the newest build-asan*/ or build*/
binary), on 127.0.0.1 with ports picked at run time, with ASan/UBSan
reports going to files in OUT/san/ (log_path, abort_on_error=1,
detect_leaks=1, halt_on_error=1). Then, until the time is up:

    scenario = target.generate(rng)       a grammar of well-formed steps,
                                          then mutated (nf<target>.py)
    target.run_step(step) for each step   sent to the daemon's real sockets
    check: process alive, no new sanitizer report, liveness probe answered
           (ng ping / SIP OPTIONS / HTTP GET), target oracles

Every scenario is kept as JSON; state carries over from one scenario to
the next, so a finding saves the last --keep scenarios as a record
(OUT/finding-<n>/record.json with the sanitizer report and the log tail),
the daemon is restarted and fuzzing goes on. --minimize replays a record
against fresh daemons and delta-debugs it (scenarios, then steps) down to
a smallest record that still gives the same finding (same sanitizer
signature, or the same kind: death, liveness loss, oracle).

At the end (and at SIGTERM of the daemons, which is checked too: shutdown
paths have their own bugs) it prints the inputs sent per kind, the
scenarios, the findings with their record paths, and the restarts. The
exit status is 1 when anything was found, 2 on a harness error.
Everything is bounded: run time, scenario length, packet rates; only
processes started here are signalled, by PID; loopback only.
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nfcommon import Stats, ddmin, log, signature, stack_top  # noqa: E402


def make_target(name, stats, sandir, logdir):
    if name == "media":
        from nfmedia import MediaTarget
        return MediaTarget(stats, sandir, logdir)
    if name == "sip":
        from nfsip import SipTarget
        return SipTarget(stats, sandir, logdir)
    if name == "recorder":
        from nfrec import RecorderTarget
        return RecorderTarget(stats, sandir, logdir)
    raise SystemExit("unknown target %r" % name)


class Finding(Exception):
    def __init__(self, kind, detail, sig, reports=()):
        super().__init__("%s: %s" % (kind, detail))
        self.kind, self.detail, self.sig, self.reports = kind, detail, sig, list(reports)

    def key(self):
        return self.sig or self.kind


class Session:
    """One daemon set under test, its checks and its findings."""

    def __init__(self, target_name, out, quiet=False):
        self.out = out
        self.sandir = os.path.join(out, "san")
        self.logdir = os.path.join(out, "logs")
        os.makedirs(self.sandir, exist_ok=True)
        os.makedirs(self.logdir, exist_ok=True)
        self.stats = Stats()
        self.target = make_target(target_name, self.stats, self.sandir, self.logdir)
        self.quiet = quiet

    def start(self):
        why = self.target.start()
        if why:
            f = self.check(after="start")
            if f:
                raise f
            raise RuntimeError("%s did not start: %s\n%s" % (
                self.target.name, why, "\n".join(v.log_tail(20) for v in self.target.victims())))

    def check(self, after="scenario", probe=True):
        """A Finding, or None: reports first (they say most), then death,
        then the target's liveness probe and oracles."""
        for v in self.target.victims():
            reps = v.reports()
            if reps:
                time.sleep(0.3)          # let the report be written in full
                text = "".join(open(p, errors="replace").read() for p in reps)
                return Finding("sanitizer", "%s report after %s" % (v.name, after),
                               "%s: %s" % (v.name, signature(text)), reps)
        for v in self.target.victims():
            if not v.alive():
                rc = v.exitcode()
                return Finding("died", "%s exited with %s after %s" % (v.name, rc, after),
                               "%s: died rc %s" % (v.name, rc))
        if probe:
            why = self.target.live()
            if why:
                time.sleep(0.5)
                f = self.check(after=after, probe=False)
                if f:
                    return f
                return Finding("liveness", why, "%s: liveness: %s" % (self.target.name, why))
        oracle = getattr(self.target, "oracle", lambda: None)()
        if oracle:
            return Finding("oracle", oracle, "%s: oracle: %s" % (self.target.name, oracle.split(":")[0]))
        return None

    def stop(self):
        """Stop the daemons; a report written at shutdown is a finding."""
        self.target.stop()
        return self.check(after="SIGTERM", probe=False) if any(
            v.reports() for v in self.target.victims()) else None

    def run_scenario(self, steps):
        try:
            for st in steps:
                self.target.run_step(st)
                self.stats.steps += 1
                if any(not v.alive() for v in self.target.victims()):
                    break
        finally:
            try:
                self.target.end_scenario()
            except Exception:  # noqa: BLE001 - a broken socket after a crash
                pass
        self.stats.scenarios += 1

    def take_reports(self, dest):
        os.makedirs(dest, exist_ok=True)
        for v in self.target.victims():
            for p in v.reports():
                shutil.move(p, os.path.join(dest, os.path.basename(p)))
        for p in os.listdir(self.sandir):       # empty ones
            try:
                os.remove(os.path.join(self.sandir, p))
            except OSError:
                pass


def report_text(paths):
    out = []
    for p in paths:
        try:
            out.append(open(p, errors="replace").read())
        except OSError:
            pass
    return "".join(out)


# ---------------------------------------------------------------- fuzzing

def fuzz(args):
    seed = args.seed if args.seed is not None else int(time.time() * 1000) % (1 << 31)
    rng = random.Random(seed)
    # one folder per run: a fixed --out (CTest, make netfuzz) keeps earlier runs
    args.out = tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-") + "%d-" % seed, dir=args.out)
    log("# netfuzz %s: seed %d, %d s (repeat with --seed %d)" % (args.target, seed, args.seconds, seed))
    s = Session(args.target, args.out)
    log("# out: %s" % args.out)
    s.start()
    log("# started: " + " | ".join(" ".join(v.argv) for v in s.target.victims()))
    history = []
    findings = {}        # key -> list of finding dirs
    nfind = 0
    deadline = time.monotonic() + args.seconds
    last_note = time.monotonic()
    sid = 0
    fds0 = {v.name: v.fd_count() for v in s.target.victims()}
    fdmax = dict(fds0)

    def record(f, scenarios):
        nonlocal nfind
        nfind += 1
        d = os.path.join(args.out, "finding-%d" % nfind)
        s.take_reports(d)
        rec = {"target": args.target, "seed": seed, "finding": {
            "kind": f.kind, "detail": f.detail, "signature": f.sig},
            "scenarios": scenarios}
        with open(os.path.join(d, "record.json"), "w") as fh:
            json.dump(rec, fh, indent=1)
        with open(os.path.join(d, "log-tail.txt"), "w") as fh:
            for v in s.target.victims():
                fh.write("==== %s\n%s\n" % (v.name, v.log_tail(80)))
        first = f.key() not in findings
        findings.setdefault(f.key(), []).append(d)
        text = report_text([os.path.join(d, x) for x in os.listdir(d)
                            if x.split(".")[0] in [v.name for v in s.target.victims()]])
        log("FINDING %d (%s%s): %s\n  signature: %s\n  record: %s" % (
            nfind, f.kind, "" if first else ", seen before", f.detail, f.sig,
            os.path.join(d, "record.json")))
        if first:
            for line in stack_top(text, 8):
                log("    " + line)

    while time.monotonic() < deadline:
        sid += 1
        steps = s.target.generate(rng, sid)
        scen = {"id": sid, "steps": steps}
        history = (history + [scen])[-args.keep:]
        f = None
        try:
            s.run_scenario(steps)
        except Exception as e:    # noqa: BLE001 - harness trouble is reported, not hidden
            if all(v.alive() for v in s.target.victims()):
                log("# harness error in scenario %d: %s" % (sid, e))
                traceback.print_exc(file=sys.stdout)
        f = s.check()
        for v in s.target.victims():
            n = v.fd_count()
            if n is not None:
                fdmax[v.name] = max(fdmax.get(v.name) or 0, n)
        if f:
            record(f, history)
            s.stop()
            s.take_reports(os.path.join(args.out, "finding-%d" % nfind))
            s.stats.restarts += 1
            history = []
            s.start()
        if time.monotonic() - last_note > 15:
            last_note = time.monotonic()
            log("# %.0f s: %d scenarios, %d inputs, %d findings" % (
                args.seconds - (deadline - time.monotonic()), s.stats.scenarios,
                s.stats.total(), nfind))
    fds1 = {v.name: v.fd_count() for v in s.target.victims()}
    f = s.stop()
    if f:
        record(f, history)
    log("\n==== netfuzz %s summary (seed %d)" % (args.target, seed))
    log(s.stats.table())
    log("daemon restarts: %d" % s.stats.restarts)
    log("open descriptors (start / end / max): " + ", ".join(
        "%s %s/%s/%s" % (k, fds0.get(k), fds1.get(k), fdmax.get(k)) for k in fds0))
    extra = getattr(s.target, "summary", lambda: "")()
    if extra:
        log(extra)
    log("findings: %d (%d distinct)" % (nfind, len(findings)))
    for k, dirs in findings.items():
        log("  %dx %s\n     first record: %s" % (len(dirs), k, os.path.join(dirs[0], "record.json")))
    if nfind:
        log("minimize: %s --target %s --minimize %s" % (
            os.path.relpath(__file__), args.target, os.path.join(list(findings.values())[0][0], "record.json")))
    s.target.close()
    return 1 if nfind else 0


# ---------------------------------------------------------------- replay / minimize

def replay_once(target, scenarios, out, want=None):
    """Run SCENARIOS against fresh daemons; the Finding (or None).
    WANT: a signature or kind the finding must match."""
    s = Session(target, out)
    try:
        s.start()
    except Finding as f:
        return f
    f = None
    try:
        for sc in scenarios:
            try:
                s.run_scenario(sc["steps"])
            except Exception:  # noqa: BLE001
                pass
            f = s.check()
            if f:
                break
    finally:
        f2 = s.stop()
        f = f or f2
        s.take_reports(os.path.join(out, "reports"))
        s.target.close()
    if f and want and want not in (f.sig, f.kind):
        return None
    return f


def load_record(path):
    with open(path) as fh:
        rec = json.load(fh)
    return rec


def replay(args):
    rec = load_record(args.replay)
    for i in range(args.tries):
        out = tempfile.mkdtemp(prefix="netfuzz-replay-", dir=args.out)
        f = replay_once(args.target, rec["scenarios"], out)
        if f:
            log("REPRODUCED (try %d): %s\n  signature: %s\n  reports: %s" % (
                i + 1, f, f.sig, os.path.join(out, "reports")))
            for line in stack_top(report_text(
                    [os.path.join(out, "reports", x) for x in os.listdir(os.path.join(out, "reports"))]), 8):
                log("    " + line)
            return 1
    log("not reproduced in %d tries (%d scenarios, %d steps)" % (
        args.tries, len(rec["scenarios"]), sum(len(s["steps"]) for s in rec["scenarios"])))
    return 0


def minimize(args):
    rec = load_record(args.minimize)
    want = rec.get("finding", {}).get("signature")
    if want and ": liveness" in want or want and ": oracle" in want:
        want = rec["finding"]["kind"]
    deadline = time.monotonic() + args.minimize_seconds
    runs = [0]

    def test(scenarios):
        runs[0] += 1
        for _ in range(args.tries):
            out = tempfile.mkdtemp(prefix="netfuzz-min-", dir=args.out)
            f = replay_once(args.target, scenarios, out, want)
            shutil.rmtree(out, ignore_errors=True)
            if f:
                return True
        return False

    scen = rec["scenarios"]
    nsteps = sum(len(s["steps"]) for s in scen)
    log("# minimizing %s: %d scenarios, %d steps, want %s" % (args.minimize, len(scen), nsteps, want))
    if not test(scen):
        log("the record does not reproduce (%d tries): nothing to minimize" % args.tries)
        return 0
    # 1: whole scenarios (state carries over; most are not needed)
    for i in range(len(scen)):          # the last scenario alone often does it
        if len(scen) > 1 and test([scen[-1 - i]]):
            scen = [scen[-1 - i]]
            break
    scen = ddmin(scen, test, deadline, lambda m: log("#  scenarios: " + m))
    # 2: steps, over all remaining scenarios at once
    flat = [(k, st) for k, sc in enumerate(scen) for st in sc["steps"]]

    def rebuild(items):
        out = []
        for k, sc in enumerate(scen):
            st = [x for kk, x in items if kk == k]
            if st:
                out.append({"id": sc["id"], "steps": st})
        return out

    flat = ddmin(flat, lambda items: test(rebuild(items)), deadline,
                 lambda m: log("#  steps: " + m))
    small = rebuild(flat)
    rec2 = dict(rec)
    rec2["scenarios"] = small
    rec2["minimized_from"] = os.path.abspath(args.minimize)
    path = args.save or os.path.join(os.path.dirname(os.path.abspath(args.minimize)), "minimized.json")
    with open(path, "w") as fh:
        json.dump(rec2, fh, indent=1)
    log("# minimized in %d replays: %d scenarios, %d steps -> %s" % (
        runs[0], len(small), len(flat), path))
    log(json.dumps(small, indent=1)[:4000])
    log("reproduce: python3 tests/netfuzz/netfuzz.py --target %s --replay %s" % (args.target, path))
    return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", required=True, choices=("media", "sip", "recorder"))
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--out", help="output folder (default: a new temp folder)")
    ap.add_argument("--keep", type=int, default=8, help="scenarios saved with a finding")
    ap.add_argument("--replay", metavar="RECORD")
    ap.add_argument("--minimize", metavar="RECORD")
    ap.add_argument("--minimize-seconds", type=int, default=600)
    ap.add_argument("--tries", type=int, default=2, help="replays per candidate (races)")
    ap.add_argument("--save", help="where --minimize writes the result")
    args = ap.parse_args()
    if not args.out:
        args.out = tempfile.mkdtemp(prefix="netfuzz-%s-" % args.target)
    os.makedirs(args.out, exist_ok=True)
    try:
        if args.replay:
            return replay(args)
        if args.minimize:
            return minimize(args)
        return fuzz(args)
    except Finding as f:
        log("FINDING at start: %s (%s)" % (f, f.sig))
        return 1
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        return 2


if __name__ == "__main__":
    sys.exit(main())
