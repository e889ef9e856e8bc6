#!/usr/bin/env python3
"""sip_flood.py: a scanner flooding tally-sip from one address must not
starve real calls from another.

Starts tally-media and tally-sip (rate-limit 20/s, burst 40) on free loopback
ports, a sipp UAS behind a static route, then for ~4 s a flood of INVITE and
OPTIONS requests from 127.0.0.2 (a "scanner", ~2000 requests/s) while a sipp
UAC on 127.0.0.1 places 10 real calls. Asserts what a user would see:
  - every real call succeeds (sipp: 10 successful, 0 failed),
  - the scanner got at most burst + rate x duration (+ margin) non-503 answers
    and at least one 503 "Rate Limit Exceeded" with Retry-After,
  - tally-sip still answers OPTIONS afterwards and is still running,
  - tally-media has no call left over (every anchored call was deleted).
Exit code 0 = pass; prints "N passed, M failed".
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tallytest as tt  # noqa: E402

RATE, BURST = 20, 40
FLOOD_SECS = 4.0
CALLS = 10

results = []


def check(name, ok, detail=""):
    results.append((name, ok))
    print("%s %s%s" % ("ok" if ok else "FAIL", name, (": " + detail) if detail else ""),
          flush=True)


def tally_sip_binary():
    b = os.environ.get("TALLY_SIP")
    if b:
        return b
    src = os.environ.get("TALLY_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
    cands = [os.path.join(src, d, "src/sip/tally-sip") for d in os.listdir(src)
             if d.startswith("build")]
    cands = [c for c in cands if os.access(c, os.X_OK)]
    if not cands:
        raise RuntimeError("TALLY_SIP not set and no build*/src/sip/tally-sip")
    return max(cands, key=os.path.getmtime)


def options(port, src="127.0.0.1", branch="z9hG4bKflood", callid="c", timeout=1.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    lport = s.getsockname()[1]
    msg = ("OPTIONS sip:probe@127.0.0.1:%d SIP/2.0\r\n"
           "Via: SIP/2.0/UDP %s:%d;branch=%s;rport\r\n"
           "Max-Forwards: 70\r\nTo: <sip:probe@127.0.0.1>\r\n"
           "From: <sip:scan@%s>;tag=1\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\n"
           "Content-Length: 0\r\n\r\n" % (port, src, lport, branch, src, callid))
    s.sendto(msg.encode(), ("127.0.0.1", port))
    s.settimeout(timeout)
    try:
        return s.recv(4000).decode(errors="replace")
    except socket.timeout:
        return None
    finally:
        s.close()


def flood(port, secs):
    """Send INVITE/OPTIONS from 127.0.0.2 as fast as ~2000/s; count answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.2", 0))
    s.setblocking(False)
    lport = s.getsockname()[1]
    sent = limited = retry_after = 0
    answered_ids = set()    # final answers to a request, retransmissions once
    end = time.monotonic() + secs
    i = 0
    while time.monotonic() < end and sent < 20000:
        i += 1
        met = "INVITE" if i % 2 else "OPTIONS"
        # a scanner probes extensions nobody routes (404 when answered):
        # calls it could complete would be real calls, not a flood
        msg = ("%s sip:scan%d@127.0.0.1:%d SIP/2.0\r\n"
               "Via: SIP/2.0/UDP 127.0.0.2:%d;branch=z9hG4bKscan%d;rport\r\n"
               "Max-Forwards: 70\r\nTo: <sip:scan%d@127.0.0.1>\r\n"
               "From: <sip:scanner@127.0.0.2>;tag=s%d\r\nCall-ID: scan-%d\r\n"
               "CSeq: 1 %s\r\nContact: <sip:scanner@127.0.0.2:%d>\r\n"
               "Content-Length: 0\r\n\r\n" % (met, 1000 + i % 9000, port, lport, i,
                                              1000 + i % 9000, i, i, met, lport))
        try:
            s.sendto(msg.encode(), ("127.0.0.1", port))
            sent += 1
        except BlockingIOError:
            pass
        while True:
            try:
                data = s.recv(4000).decode(errors="replace")
            except BlockingIOError:
                break
            first = data.split("\r\n", 1)[0]
            if " 100 " in first:
                continue
            if " 503 " in first and "Rate Limit" in first:
                limited += 1
                if re.search(r"(?im)^Retry-After:", data):
                    retry_after += 1
            else:
                m = re.search(r"(?im)^Call-ID:\s*(\S+)", data)
                answered_ids.add(m.group(1) if m else data)
        time.sleep(0.0005)
    # late answers
    t = time.monotonic() + 1.0
    s.settimeout(0.2)
    while time.monotonic() < t:
        try:
            data = s.recv(4000).decode(errors="replace")
        except socket.timeout:
            break
        first = data.split("\r\n", 1)[0]
        if " 503 " in first and "Rate Limit" in first:
            limited += 1
        elif " 100 " not in first:
            m = re.search(r"(?im)^Call-ID:\s*(\S+)", data)
            answered_ids.add(m.group(1) if m else data)
    s.close()
    return sent, len(answered_ids), limited, retry_after


def main():
    work = tempfile.mkdtemp(prefix="tally-flood-")
    media = tt.Daemon(timeout=60, name="media").start()
    sip_port, uas_port, uac_port = tt.free_port(), tt.free_port(), tt.free_port()
    mp1, mp2 = tt.free_port_block(4)[0], tt.free_port_block(4)[0]
    sip_log = open(os.path.join(work, "sip.log"), "wb")
    sip = subprocess.Popen([tally_sip_binary(), "--config-file=none", "--foreground",
                            "--log-level=6", "--sip-listen=127.0.0.1:%d" % sip_port,
                            "--media-servers=127.0.0.1:%d" % media.ng_port,
                            "--api-listen=", "--rate-limit=%d" % RATE,
                            "--rate-burst=%d" % BURST,
                            "--route=x. sip:${user}@127.0.0.1:%d" % uas_port],
                           stdin=subprocess.DEVNULL, stdout=sip_log, stderr=subprocess.STDOUT)
    uas = uac = None
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not options(sip_port, timeout=0.2):
            pass
        uas = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port),
                                "-mp", str(mp1), "-nostdin"],
                               stdout=open(os.path.join(work, "uas.out"), "wb"),
                               stderr=subprocess.STDOUT, cwd=work)
        time.sleep(0.5)
        # real calls, paced well under the limit, from 127.0.0.1; sipp
        # exits 254 when a port it was given was taken in the meantime
        # (ports are picked free, then bound by sipp): new ports, again
        for attempt in range(3):
            uac = subprocess.Popen(["sipp", "127.0.0.1:%d" % sip_port, "-sn", "uac", "-s", "2000",
                                    "-i", "127.0.0.1", "-p", str(uac_port), "-mp", str(mp2),
                                    "-r", "5", "-m", str(CALLS), "-d", "1000", "-nostdin",
                                    "-timeout", "30", "-timeout_error", "-trace_stat",
                                    "-stf", os.path.join(work, "uac_stat.csv")],
                                   stdout=open(os.path.join(work, "uac.out"), "wb"),
                                   stderr=subprocess.STDOUT, cwd=work)
            time.sleep(0.5)
            if uac.poll() != 254:
                break
            print("# sipp UAC could not bind (port %d / media %d taken): new ports"
                  % (uac_port, mp2), flush=True)
            uac_port, mp2 = tt.free_port(), tt.free_port_block(4)[0]
        sent, answered, limited, retry_after = flood(sip_port, FLOOD_SECS)
        rc = uac.wait(timeout=60)
        uac = None
        out = open(os.path.join(work, "uac.out"), "rb").read().decode(errors="replace")
        ok_calls = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", out)
        failed = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", out)
        calls_ok = (rc == 0 and ok_calls and int(ok_calls[-1]) == CALLS and
                    failed and int(failed[-1]) == 0)
        check("real calls all succeed during the flood", calls_ok,
              "sipp rc %s, successful %s, failed %s" % (rc, ok_calls[-1:], failed[-1:]))
        if not calls_ok:
            print("--- sipp UAC output tail\n" + "\n".join(out.splitlines()[-15:]))
        allowed = BURST + RATE * (FLOOD_SECS + 1.5) + 20
        check("scanner limited to burst + rate", answered <= allowed,
              "sent %d, answered %d (allowed <= %d), 503 %d" % (sent, answered, allowed, limited))
        check("scanner told to back off (503 + Retry-After)",
              limited >= 1 and retry_after >= 1, "503s %d, with Retry-After %d" % (limited, retry_after))
        check("scanner flood mostly unanswered (silence after the 503)",
              sent > 1000 and answered + limited < sent / 4,
              "sent %d, answered %d, 503 %d" % (sent, answered, limited))
        time.sleep(1.5)   # let the limiter refill
        r = options(sip_port)
        check("tally-sip still answers OPTIONS", r is not None and " 200 " in r.split("\r\n")[0],
              (r or "no answer").split("\r\n")[0])
        check("tally-sip still running", sip.poll() is None)
        calls = media.ng.ok({"command": "list"}).get("calls", [])
        deadline = time.monotonic() + 5
        while calls and time.monotonic() < deadline:
            time.sleep(0.2)
            calls = media.ng.ok({"command": "list"}).get("calls", [])
        check("no media session left over", not calls, "left: %s" % calls)
    finally:
        for p in (uac, uas):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        if sip.poll() is None:
            sip.terminate()
            try:
                sip.wait(timeout=5)
            except subprocess.TimeoutExpired:
                sip.kill()
        media.stop()
    failed = [n for n, ok in results if not ok]
    if failed:
        print("--- tally-sip log tail (%s)" % work)
        print(open(os.path.join(work, "sip.log"), "rb").read().decode(errors="replace")[-3000:])
    print("%d passed, %d failed" % (len(results) - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
