#!/usr/bin/env python3
"""RFC 4475 torture messages against tally-recorder (a SIPREC SRS = a UAS).

tests/data/sip/rfc4475/ holds the 49 messages byte-exact (+ archive-extra/
test.dat) and index.tsv with what a UAS must do. The mechanics are
sip_torture.py's (imported, not copied): the messages are sent unchanged,
every one over UDP, then every one over TCP (one connection each), to a fresh
tally-recorder per group of messages without a repeated transaction key
(sip_torture.groups_of). UDP responses go where the message's Via says (the
source address with the Via port, 5060 mostly), not to our socket: they are
seen with a dumpcap capture of the recorder's source port and matched by
Call-ID. TCP responses are read from the connection.

Checks:
  - after every message the recorder process (the PID we started) is alive;
  - its answer is one the index allows for a UAS (EXPECT below: acceptable
    statuses, None = no response; an acceptable but not preferred one prints
    "warn");
  - after every group it answers OPTIONS over UDP and TCP with 200, lists no
    recording (no torture message may create one), and exits 0 on SIGTERM.

Recorder-specific readings of the index (documented deviations from the
generic UAS row):
  - 421 Extension Required (with Require: siprec) where the index expects a
    normal UA to process an INVITE (2xx): none of the torture INVITEs has
    Require: siprec, and an SRS requires it (RFC 7866 s6.1.1). 421 is also
    accepted, not preferred, where the index asks for a content check (invut
    415, sdp01 406/400).
  - wsinv carries a To tag (a re-INVITE of an unknown dialog): 481 preferred.
  - REGISTER: the recorder is no registrar: 405 (RFC 4475 3.3.7 'endpoint not
    acting as registrar'), 501 and 403/404 accepted.
  - MESSAGE (mpart01): 405/501 preferred (not a method an SRS takes).
  - longreq and a few TCP cases are libre decoder limits already known from
    tally-sip (sip_torture.KNOWN): they print "known" and do not fail, as long
    as the recorder stays alive and answers exactly what is named there.
Arguments: names of messages (wsinv ...) to run only those; --udp / --tcp.
"""

import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import recsip as rs  # noqa: E402
import siptest as st  # noqa: E402
import sip_torture as stt  # noqa: E402
from recsip import log, LOCAL  # noqa: E402

RFC_DIR = stt.RFC_DIR
WINDOW = 0.45

X421 = 421                     # an INVITE without Require: siprec
REG = {405, 501, 403, 404}     # REGISTER at a non-registrar
REG_PREF = {405}

# file -> (acceptable, preferred[, tcp override (acceptable, preferred)])
EXPECT = {
    "wsinv.dat": ({481, X421}, {481}),
    "intmeth.dat": ({501}, {501}),
    "esc01.dat": ({X421}, {X421}),
    "escnull.dat": (REG, REG_PREF),
    "esc02.dat": ({501}, {501}),
    "lwsdisp.dat": ({200}, {200}),
    "longreq.dat": ({X421}, {X421}),
    "dblreq.dat": (REG, REG_PREF),              # + no answer to the trailing INVITE
    "semiuri.dat": ({200}, {200}),
    "transports.dat": ({200}, {200}),
    "mpart01.dat": ({405, 501, 403, 404, 415, 488}, {405, 501}),
    "unreason.dat": ({None}, {None}),
    "noreason.dat": ({None}, {None}),
    "badinv01.dat": ({400}, {400}),
    "clerr.dat": ({400}, {400}, ({None}, {None})),
    "ncl.dat": ({400}, {400}, ({400, None}, {400, None})),
    "scalar02.dat": ({400}, {400}),
    "scalarlg.dat": ({None}, {None}),
    "quotbal.dat": ({400}, {400}),
    "ltgtruri.dat": ({400, X421}, {400}),
    "lwsruri.dat": ({400, 481, 505, X421}, {400}),
    "lwsstart.dat": ({400, X421}, {400}),
    "trws.dat": ({400, 200}, {400, 200}),
    "escruri.dat": ({400, X421}, {400}),
    "baddate.dat": ({400, X421}, {400, X421}),
    "regbadct.dat": ({400} | REG, {400, 405}),
    "badaspec.dat": ({400, 200}, {400, 200}),
    "baddn.dat": ({400, None}, {400}, ({None, 400}, {None})),
    "badvers.dat": ({505}, {505}),
    "mismatch01.dat": ({400}, {400}),
    "mismatch02.dat": ({501, 400}, {501}),
    "bigcode.dat": ({None}, {None}),
    "badbranch.dat": ({400, 200}, {400, 200}),
    "insuf.dat": ({400, None}, {400}),
    "unkscm.dat": ({416}, {416}),
    "novelsc.dat": ({416, 404}, {416, 404}),
    "unksm2.dat": ({400} | REG, {400, 405}),
    "bext01.dat": ({420}, {420}),
    "invut.dat": ({415, X421}, {415}),
    "regaut01.dat": (REG | {401}, REG_PREF),
    "multi01.dat": ({400}, {400}),
    "mcl01.dat": ({400}, {400}, ({400, None}, {400, None})),
    "bcast.dat": ({None}, {None}),
    "zeromf.dat": ({200}, {200}),
    "cparam01.dat": (REG, REG_PREF),
    "cparam02.dat": (REG, REG_PREF),
    "regescrt.dat": (REG, REG_PREF),
    "sdp01.dat": ({406, 400, X421}, {406, 400}),
    "inv2543.dat": ({X421, 400}, {X421}, ({X421, 400, None}, {X421, 400, None})),
    "archive-extra/test.dat": ({400, None}, {400}),
}

# libre decoder limits known from tally-sip (the same stack): see sip_torture.KNOWN;
# the 486 there (forwarded) reads 421 here.
KNOWN = {k: ({421 if x == stt.FORWARDED else x for x in v[0]}, v[1]) for k, v in stt.KNOWN.items()}


class MiniEnv:
    """What siptest.Capture needs of an Env."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []


def evaluate(transport, f, got, resp, alive, data, cap_resp, closed):
    exp = EXPECT.get(f)
    if exp is None:
        return "FAIL", "no expectation in EXPECT"
    acc, pref = exp[0], exp[1]
    if transport == "tcp" and len(exp) > 2:
        acc, pref = exp[2]
    finals = [m["code"] for m in resp if m["code"] >= 200]
    v = stt.verdict(got, acc, pref)
    notes = []
    if not alive:
        v = "FAIL"
        notes.append("recorder died")
    if None in acc and got is None and resp:
        v = "FAIL"
        notes.append("provisional answer %s to something that must be dropped" % [m["code"] for m in resp])
    if len(set(finals)) > 1:
        notes.append("several different finals %s" % finals)
    if got is not None and got >= 200:
        m = resp[[x["code"] for x in resp].index(got)]
        reason = m["first"].split(" ", 2)[2] if m["first"].count(" ") >= 2 else ""
        notes.append("reason %r" % reason)
        if got == 421:
            req = " ".join(st.hdr_all(m, "require"))
            if "siprec" not in req.lower():
                v = "FAIL"
                notes.append("421 without Require: siprec (%r)" % req)
        if got == 420:
            uns = " ".join(st.hdr_all(m, "unsupported"))
            if f == "bext01.dat" and ("nothingSupportsThis" not in uns or "nothingSupportsThisEither" not in uns):
                v = "FAIL"
                notes.append("420 without Unsupported: nothingSupportsThis, nothingSupportsThisEither (%r)" % uns)
        if got == 501 and f == "intmeth.dat" and not st.hdr_all(m, "allow"):
            v = "warn" if v == "ok" else v
            notes.append("501 without Allow")
        if got == 405 and not st.hdr_all(m, "allow"):
            v = "warn" if v == "ok" else v
            notes.append("405 without Allow (RFC 3261 21.4.6 MUST)")
        if 200 <= got < 300 and m["method"] == "INVITE":
            v = "FAIL"
            notes.append("a torture INVITE was accepted as a recording session")
    if f == "dblreq.dat":
        tc = stt.trailing_callid(data)
        if transport == "udp":
            bad = [m["code"] for t, m in cap_resp if tc and m["hdr"].get("call-id") == tc]
            if bad:
                v = "FAIL"
                notes.append("answered the trailing INVITE of the datagram: %s" % bad)
        else:
            notes.append("tcp: responses %s" % [m["code"] for m in resp])
    if transport == "tcp" and closed:
        notes.append("connection closed by the recorder" if closed is True else str(closed))
    known = KNOWN.get((transport, f))
    if v == "FAIL" and known and alive and got in known[0]:
        v = "known"
        notes.append("known deviation: " + known[1])
    want = "want %s%s" % (stt.fmt(acc), "" if pref == acc else " (prefer %s)" % stt.fmt(pref))
    return v, want + ("; " + "; ".join(notes) if notes else "")


def run_group(runner, transport, gi, files, results):
    """One fresh recorder for FILES; returns False if it died."""
    rec = runner.recorder("%s%d" % (transport, gi))
    env = MiniEnv(rec.dir)
    try:
        with open(rec.pidfile) as fh:
            pid_in_file = int(fh.read().strip() or 0)
    except (OSError, ValueError):
        pid_in_file = None
    if pid_in_file != rec.pid:
        results.append(("FAIL", transport, "pidfile", None,
                        "--pidfile holds %r, the recorder's PID is %d" % (pid_in_file, rec.pid)))
    cap = st.Capture(env, "torture_%s%d" % (transport, gi), "udp src port %d" % rec.sip_port) \
        if transport == "udp" else None
    sent = []
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((LOCAL, 0))
    try:
        for f in files:
            with open(os.path.join(RFC_DIR, f), "rb") as fh:
                data = fh.read()
            t0 = time.time()
            tcp_resp, closed = None, None
            if transport == "udp":
                udp.sendto(data, (LOCAL, rec.sip_port))
                time.sleep(WINDOW)
            else:
                try:
                    tcp_resp, closed = stt.send_tcp(rec.sip_port, data, WINDOW * 2)
                except OSError as e:
                    tcp_resp, closed = [], "connect failed: %s" % e
            alive = rec.alive()
            sent.append((f, t0, stt.callid_of(data), tcp_resp, closed, alive, data))
            if not alive:
                log("FAIL %s/%s: the recorder died after this message (rc %s)\n%s"
                    % (transport, f, rec.returncode, rec.tail(30)))
                break
    finally:
        udp.close()
        pkts = cap.stop() if cap else []
        for p in env.procs:
            p.stop()
    cap_resp = []
    for t, proto, sp, dp, p in pkts:
        if proto == "udp" and sp == rec.sip_port:
            m = st.sip_parse(p)
            if m and m["code"] is not None:
                cap_resp.append((t, m))
    all_cids = {x[2] for x in sent if x[2]}
    for i, (f, t0, cid, tcp_resp, closed, alive, data) in enumerate(sent):
        t1 = sent[i + 1][1] if i + 1 < len(sent) else float("inf")
        if transport == "udp":
            if cid:
                resp = [m for t, m in cap_resp if t >= t0 and m["hdr"].get("call-id") == cid]
            else:
                resp = [m for t, m in cap_resp if t0 <= t < t1 and m["hdr"].get("call-id") not in all_cids]
        else:
            resp = tcp_resp or []
        finals = [m["code"] for m in resp if m["code"] >= 200]
        got = finals[0] if finals else None
        v, why = evaluate(transport, f, got, resp, alive, data, cap_resp, closed)
        results.append((v, transport, f, got, why))
    ok = rec.alive()
    if ok:
        u = rs.options_udp(rec.sip_port, 2.0)
        t = rs.options_tcp(rec.sip_port, 2.0)
        if u != 200 or t != 200:
            results.append(("FAIL", transport, "OPTIONS after group %d" % gi, u or t,
                            "want 200 over UDP and TCP, got UDP %s, TCP %s" % (u, t)))
        try:
            rows = rec.recordings()
            if rows:
                results.append(("FAIL", transport, "catalog after group %d" % gi, None,
                                "torture messages created recordings: %s" % rows))
        except (AssertionError, OSError) as e:
            results.append(("FAIL", transport, "API after group %d" % gi, None, str(e)))
        try:
            status = rec.status() if gi == 0 else {}
            bad = rs.find_counter(status, "bad")
            if gi == 0:
                log("# %s: status counters with 'bad' in the name: %s" % (transport, bad or "none exposed"))
        except (AssertionError, OSError) as e:
            results.append(("FAIL", transport, "status after group %d" % gi, None, str(e)))
    rc = rec.stop()
    if rc != 0:
        results.append(("FAIL", transport, "exit of %s" % rec.name, rc,
                        "exit status %s after SIGTERM (want 0)\n%s" % (rc, rec.tail(15))))
    return ok


def main():
    args = sys.argv[1:]
    transports = [t for t in ("udp", "tcp") if "--" + t in args] or ["udp", "tcp"]
    runner = rs.Runner("rec_torture")
    if not rs.recorder_binary():
        log("FAIL setup: tally-recorder binary not found ($TALLY_RECORDER=%r)" % os.environ.get("TALLY_RECORDER"))
        return 1
    if os.geteuid() != 0 or not (os.path.exists("/usr/bin/dumpcap") or st.shutil.which("dumpcap")):
        log("FAIL setup: the UDP pass needs root and dumpcap (responses go to the messages' Via "
            "addresses, seen only in a capture)")
        return 1
    index = stt.load_index()
    files = [r["file"] for r in index]
    want = [a for a in args if not a.startswith("--")]
    if want:
        files = [f for f in files if f in want or f[:-4] in want or os.path.basename(f)[:-4] in want]
    missing = [f for f in files if not os.path.exists(os.path.join(RFC_DIR, f))]
    if missing or (not want and len(files) < 50):
        log("FAIL torture data: %d messages in the index, missing files %s" % (len(files), missing))
        return 1
    for transport in transports:
        results = []

        def do_pass(c, transport=transport, results=results):
            for gi, group in enumerate(stt.groups_of(files)):
                if not run_group(runner, transport, gi, group, results):
                    break
            for v, tr, f, got, why in results:
                log("%s %s/%s: got %s, %s" % (v, tr, f, "none" if got is None else got, why))
            fails = [r for r in results if r[0] == "FAIL"]
            c(not fails, "%d check(s) not as the index says: %s"
              % (len(fails), ", ".join(r[2] for r in fails)))
            sent = [r for r in results if r[2] in EXPECT]
            c(len(sent) == len(files), "%d of %d messages were sent and judged" % (len(sent), len(files)))
            answered = sum(1 for r in sent if r[3] is not None)

            def acc_of(f):
                e = EXPECT[f]
                return e[2][0] if transport == "tcp" and len(e) > 2 else e[0]
            must = sum(1 for f in files if None not in acc_of(f) and (transport, f) not in KNOWN)
            c(answered >= must, "only %d answers to %d messages that must be answered" % (answered, must))
            n = {"ok": 0, "warn": 0, "FAIL": 0, "known": 0}
            for r in results:
                n[r[0]] = n.get(r[0], 0) + 1
            log("# %s: %d ok, %d warn, %d known, %d FAIL" % (transport, n["ok"], n["warn"], n["known"], n["FAIL"]))
        runner.run("torture_" + transport, do_pass)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
