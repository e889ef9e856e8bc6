#!/usr/bin/env python3
"""tally-sip's client API, black box: the real tally-sip ($TALLY_SIP) with the
real tally-media ($TALLY_MEDIA), a sipp UAS behind a static route and a sipp
UAC calling through it; tallyctl ($TALLYCTL) as a second client.

Asserted:
  - every request needs the bearer token: 401 with a JSON error body, also
    for the WebSocket upgrade; unknown path 404 JSON; POST 405 JSON;
    malformed HTTP gets 400 or a closed connection, and the server lives on
  - while the call is up: GET /api/v1/calls shows it answered with both
    parties (caller and callee, with media), GET /api/v1/calls/{id} returns
    it, `tallyctl calls` and `tallyctl call ID` print it
  - the WebSocket stream (a hand-written client here) and `tallyctl events
    --json` both deliver call.created, call.answered, call.ended in that order, the
    last one with the cause, and between answered and ended a call.updated
    for each mid-call change (uac_midcall.xml: video off, video on, PCMA),
    one of them with the callee's video inactive, the last active again
  - tallyctl: wrong token -> non-zero exit with "401", no server ->
    non-zero exit with "refused"; `tallyctl events` exits 0 when tally-sip
    shuts down
  - tally-sip exits cleanly on SIGTERM.

python3 stdlib only. Ports are free ones on 127.0.0.1; every process is
started here and stopped by its pid.
"""

import base64
import glob
import hashlib
import http.client
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tallytest as tt  # noqa: E402

LO = "127.0.0.1"
TOKEN = "it-" + base64.b32encode(os.urandom(10)).decode().lower()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# the sipp scenarios, found as the other integration scripts find them
DATA = os.path.join(os.environ.get("TALLY_DATA") or os.path.join(ROOT, "tests", "data"), "sip")


class Fail(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def binary(env, rel):
    """$ENV if set (CTest always sets it: empty means the target was not
    built, which fails the test), else the newest <repo>/build*/REL (running
    the script by hand)."""
    if env in os.environ:
        path = os.environ[env]
        if not path or not os.access(path, os.X_OK):
            raise Fail("%s=%r is not an executable (not built?)" % (env, path))
        return path
    found = [p for p in glob.glob(os.path.join(ROOT, "build*", rel)) if os.access(p, os.X_OK)]
    if not found:
        raise Fail("%s is not set and no build*/%s exists" % (env, rel))
    return max(found, key=os.path.getmtime)


# --------------------------------------------------------------------------
# processes

class Proc:
    """A process we started, its output in a log file, stopped by pid."""

    def __init__(self, name, argv, logdir, stdout_pipe=False):
        self.name = name
        self.argv = argv
        self.logpath = os.path.join(logdir, name + ".log")
        self.logf = open(self.logpath, "ab")
        print("# %s: %s" % (name, " ".join(argv)), flush=True)
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self.logf,
            stderr=self.logf, cwd=logdir)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=5):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.logf.close()
        return self.proc.returncode

    def log(self, n=40):
        try:
            with open(self.logpath, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("  | " + l for l in lines[-n:])


# --------------------------------------------------------------------------
# HTTP

def api_request(port, path, token=TOKEN, method="GET", body=None):
    """(status, headers dict lower-case, parsed JSON or raw text)."""
    c = http.client.HTTPConnection(LO, port, timeout=5)
    try:
        hdrs = {}
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        raw = r.read()
        headers = {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        data = raw
    return r.status, headers, data


def expect_json_error(port, path, status, token=TOKEN, method="GET"):
    st, hdrs, data = api_request(port, path, token=token, method=method)
    check(st == status, "%s %s: want %d, got %d %r" % (method, path, status, st, data))
    check(hdrs.get("content-type", "").startswith("application/json"),
          "%s %s: error is not JSON: %r" % (method, path, hdrs))
    check(isinstance(data, dict) and data.get("status") == status and
          isinstance(data.get("error"), str) and data["error"],
          "%s %s: bad error body %r" % (method, path, data))
    return hdrs


def raw_exchange(port, payload, timeout=3.0):
    """Send raw bytes; return what comes back until the server closes or
    stays silent for TIMEOUT."""
    s = socket.create_connection((LO, port), timeout=timeout)
    out = b""
    try:
        s.sendall(payload)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([s], [], [], deadline - time.monotonic())
            if not r:
                break
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                break
            if not d:
                break
            out += d
            if b"\r\n\r\n" in out and not out.startswith(b"HTTP/1.1 1"):
                break
    finally:
        s.close()
    return out


# --------------------------------------------------------------------------
# WebSocket client (RFC 6455), enough for a listener

class WsRefused(Exception):
    def __init__(self, status, body):
        Exception.__init__(self, "upgrade refused: %d %r" % (status, body))
        self.status = status
        self.body = body


class WsClient:
    def __init__(self, port, path, token):
        self.sock = socket.create_connection((LO, port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n" % (path, LO, port, key))
        if token is not None:
            req += "Authorization: Bearer %s\r\n" % token
        self.sock.sendall((req + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(4096)
            if not d:
                raise WsRefused(0, self.buf)
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if status != 101:
            n = int(hdrs.get("content-length", "0"))
            while len(self.buf) < n:
                d = self.sock.recv(4096)
                if not d:
                    break
                self.buf += d
            body = self.buf[:n]
            self.sock.close()
            try:
                body = json.loads(body.decode())
            except ValueError:
                pass
            raise WsRefused(status, body)
        want = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        check(hdrs.get("sec-websocket-accept") == want,
              "bad Sec-WebSocket-Accept %r" % hdrs.get("sec-websocket-accept"))
        self.closed = False

    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                raise TimeoutError()
            d = self.sock.recv(65536)
            if not d:
                raise EOFError()
            self.buf += d

    def _send(self, op, payload=b""):
        mask = os.urandom(4)
        n = len(payload)
        hdr = bytes([0x80 | op])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack("!Q", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(hdr + mask + body)

    def recv(self, timeout):
        """The next text message (str), or None when the server closed."""
        deadline = time.monotonic() + timeout
        msg = b""
        while True:
            self._need(2, deadline)
            b0, b1 = self.buf[0], self.buf[1]
            n, hl = b1 & 0x7F, 2
            if n == 126:
                self._need(4, deadline)
                n, hl = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                self._need(10, deadline)
                n, hl = struct.unpack("!Q", self.buf[2:10])[0], 10
            check(not b1 & 0x80, "server frame is masked")
            self._need(hl + n, deadline)
            payload, self.buf = self.buf[hl:hl + n], self.buf[hl + n:]
            op = b0 & 0x0F
            if op == 0x9:
                self._send(0xA, payload)
            elif op == 0xA:
                pass
            elif op == 0x8:
                if not self.closed:
                    self._send(0x8, payload[:2])
                self.closed = True
                return None
            elif op in (0x1, 0x0):
                msg += payload
                if b0 & 0x80:
                    return msg.decode("utf-8")
            else:
                raise Fail("unexpected opcode %d" % op)

    def close(self):
        try:
            if not self.closed:
                self._send(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


# --------------------------------------------------------------------------
# the test

def wait_until(pred, timeout, what, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise Fail("timed out waiting for " + what)


def check_event_order(events, call_id, who):
    mine = [e for e in events if e.get("call", {}).get("id") == call_id]
    names = [e["event"] for e in mine]
    for want in ("call.created", "call.answered", "call.ended"):
        check(want in names, "%s: no %s for %s in %r" % (who, want, call_id, names))
    ia, ib, ic = (names.index("call.created"), names.index("call.answered"),
                  names.index("call.ended"))
    check(ia < ib < ic, "%s: events out of order: %r" % (who, names))
    # the call (uac_midcall.xml) removes video, restores it and changes
    # the audio codec: each answered change is a call.updated, with the
    # callee's media as it is after the change
    upd = [e for e in mine[ib:ic] if e["event"] == "call.updated"]
    check(len(upd) >= 3, "%s: %d call.updated between answered and ended, want >= 3"
          " (video off, video on, PCMA): %r" % (who, len(upd), names))
    vactive = [m.get("active") for e in upd for m in e["call"].get("callee", {}).get("media", [])
               if m.get("type") == "video"]
    check(False in vactive and vactive[-1] is True,
          "%s: call.updated should show the callee's video off (active false),"
          " then back on: %r" % (who, vactive))
    check(names[-1] == "call.ended", "%s: events after call.ended: %r" % (who, names))
    ended = mine[ic]
    check(ended["call"].get("cause"), "%s: call.ended without a cause: %r" % (who, ended))
    check(ended["call"].get("state") == "ended", "%s: ended state %r" % (who, ended["call"].get("state")))
    check(ended["call"].get("ended"), "%s: no ended time" % who)
    for e in mine:
        check(isinstance(e.get("time"), str) and e["time"].endswith("Z"),
              "%s: bad event time %r" % (who, e.get("time")))
    return ended


def run(tmp):
    tally_sip = binary("TALLY_SIP", "src/sip/tally-sip")
    tallyctl = binary("TALLYCTL", "src/ctl/tallyctl")
    sipp = os.environ.get("SIPP", "/usr/bin/sipp")
    check(os.access(sipp, os.X_OK), "sipp (package sip-tester) is required: %s" % sipp)

    procs = []
    media = None
    try:
        media = tt.Daemon(nports=100, name="tally-media")
        media.start()

        sip_port = tt.free_port()
        api_port = tt.free_port()
        uas_port = tt.free_port()
        uac_port = tt.free_port()
        mp_lo, _ = tt.free_port_block(40)
        api = "http://%s:%d" % (LO, api_port)

        sip = Proc("tally-sip", [
            tally_sip, "--config-file=none", "--foreground", "--log-level=7",
            "--sip-listen=%s:%d" % (LO, sip_port),
            "--media-servers=%s:%d" % (LO, media.ng_port),
            "--api-listen=%s:%d" % (LO, api_port), "--api-token=" + TOKEN,
            "--route=x. sip:${user}@%s:%d" % (LO, uas_port)], tmp)
        procs.append(sip)

        def api_up():
            if not sip.alive():
                raise Fail("tally-sip exited with %s\n%s" % (sip.proc.returncode, sip.log()))
            try:
                st, _, data = api_request(api_port, "/api/v1/health")
                return st == 200 and data
            except OSError:
                return None
        health = wait_until(api_up, 10, "the API to answer")
        check(health.get("status") == "ok" and health.get("calls") == 0,
              "health: %r" % health)
        print("ok - health %r" % health, flush=True)

        # ---- token, routing, bad input ----
        hdrs = expect_json_error(api_port, "/api/v1/calls", 401, token=None)
        check("bearer" in hdrs.get("www-authenticate", "").lower(),
              "401 without WWW-Authenticate: Bearer")
        expect_json_error(api_port, "/api/v1/calls", 401, token="wrong")
        expect_json_error(api_port, "/api/v1/health", 401, token=TOKEN + "x")
        expect_json_error(api_port, "/api/v1/no/such/thing", 404)
        expect_json_error(api_port, "/%2e%2e/etc/passwd", 404)
        expect_json_error(api_port, "/api/v1/calls/nonexistent", 404)
        expect_json_error(api_port, "/api/v1/calls", 405, method="POST")
        expect_json_error(api_port, "/api/v1/events", 400)
        for junk in (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + os.urandom(64),
                     b"GARBAGE\r\n\r\n", b"GET\r\n\r\n",
                     b"GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                     b"GET /api/v1/calls HTTP/1.1\r\nAuthorization: Bearer " +
                     b"A" * 70000 + b"\r\n\r\n"):
            out = raw_exchange(api_port, junk)
            check(out == b"" or out.startswith(b"HTTP/1.1 4"),
                  "malformed request got %r" % out[:200])
        check(sip.alive(), "tally-sip died on malformed HTTP\n" + sip.log())
        st, _, _ = api_request(api_port, "/api/v1/health")
        check(st == 200, "health after junk: %d" % st)
        print("ok - 401/404/405/400 JSON, malformed HTTP survived", flush=True)

        # ---- tallyctl errors ----
        r = subprocess.run([tallyctl, "--api", api, "--token", "wrong", "calls"],
                           capture_output=True, text=True, timeout=10)
        check(r.returncode != 0 and "401" in r.stderr,
              "tallyctl with a wrong token: rc %d, %r" % (r.returncode, r.stderr))
        r = subprocess.run([tallyctl, "events"], capture_output=True, text=True, timeout=10,
                           env=dict(os.environ, TALLY_API=api, TALLY_TOKEN="wrong"))
        check(r.returncode != 0 and "401" in r.stderr,
              "tallyctl events with a wrong token: rc %d, %r" % (r.returncode, r.stderr))
        dead = tt.free_port()
        r = subprocess.run([tallyctl, "--api", "http://%s:%d" % (LO, dead),
                            "--token", TOKEN, "calls"],
                           capture_output=True, text=True, timeout=10)
        check(r.returncode != 0 and "refused" in r.stderr,
              "tallyctl without a server: rc %d, %r" % (r.returncode, r.stderr))
        print("ok - tallyctl: 401 and connection refused are reported", flush=True)

        # ---- event listeners ----
        try:
            WsClient(api_port, "/api/v1/events", "wrong")
            raise Fail("WebSocket upgrade with a wrong token was accepted")
        except WsRefused as e:
            check(e.status == 401 and isinstance(e.body, dict) and e.body.get("status") == 401,
                  "WebSocket with a wrong token: %s" % e)
        ws = WsClient(api_port, "/api/v1/events", TOKEN)
        ctl_ev = Proc("tallyctl-events", [tallyctl, "--api", api, "--token", TOKEN, "events",
                                          "--json"],
                      tmp, stdout_pipe=True)
        procs.append(ctl_ev)
        wait_until(lambda: api_request(api_port, "/api/v1/health")[2].get("event_clients") == 2,
                   5, "two event clients")
        print("ok - WebSocket refused with a wrong token; two listeners", flush=True)

        # ---- a call ----
        uas = Proc("sipp-uas", [sipp, "-sf", os.path.join(DATA, "uas_midcall.xml"),
                                "-i", LO, "-p", str(uas_port),
                                "-mp", str(mp_lo), "-m", "1", "-nostdin",
                                "-timeout", "40", "-trace_err"], tmp)
        procs.append(uas)
        # sipp binds its socket a moment after start-up (read from /proc:
        # probing by binding could steal the port)
        wait_until(lambda: uas_port in tt.udp_ports_in_use() or not uas.alive(), 5,
                   "sipp UAS to bind")
        check(uas.alive(), "sipp UAS exited at start\n" + uas.log())
        uac = Proc("sipp-uac", [sipp, "%s:%d" % (LO, sip_port),
                                "-sf", os.path.join(DATA, "uac_midcall.xml"), "-s", "1234",
                                "-i", LO, "-p", str(uac_port), "-mp", str(mp_lo + 20),
                                "-m", "1", "-nostdin", "-timeout", "30",
                                "-trace_err"], tmp)
        procs.append(uac)

        def answered_call():
            st, _, data = api_request(api_port, "/api/v1/calls")
            check(st == 200, "GET /calls: %d" % st)
            for c in data.get("calls", []):
                if c.get("state") == "answered":
                    return c
            if not uac.alive():
                raise Fail("sipp UAC ended before the call was answered (rc %s)\n%s\n%s"
                           % (uac.proc.returncode, uac.log(), sip.log()))
            return None
        call = wait_until(answered_call, 10, "an answered call in GET /calls")
        cid = call["id"]
        check(call["caller"].get("user") and call["callee"].get("user") == "1234",
              "parties: %r / %r" % (call["caller"], call["callee"]))
        check(call["caller"].get("tag") and call["callee"].get("tag"),
              "party tags missing: %r" % call)
        check(call["caller"].get("media") and call["callee"].get("media"),
              "party media missing: %r" % call)
        check(call["caller"]["media"][0].get("type") == "audio", "media: %r" % call["caller"])
        check(call.get("created") and call.get("answered") and call.get("ended") is None,
              "times: %r" % call)
        check(call.get("call_id"), "call_id missing")
        print("ok - GET /calls: %s answered, %s -> %s" % (
            cid, call["caller"]["user"], call["callee"]["user"]), flush=True)

        st, _, one = api_request(api_port, "/api/v1/calls/" + cid)
        check(st == 200 and one.get("id") == cid and one.get("state") == "answered",
              "GET /calls/%s: %d %r" % (cid, st, one))
        st, _, h = api_request(api_port, "/api/v1/health")
        check(h.get("calls") == 1, "health during the call: %r" % h)

        r = subprocess.run([tallyctl, "--api", api, "--token", TOKEN, "calls"],
                           capture_output=True, text=True, timeout=10)
        check(r.returncode == 0 and cid in r.stdout and "answered" in r.stdout,
              "tallyctl calls: rc %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
        print("ok - tallyctl calls:\n" + "\n".join("   " + l for l in r.stdout.splitlines()),
              flush=True)
        r = subprocess.run([tallyctl, "--api", api, "--token", TOKEN, "calls", "--json"],
                           capture_output=True, text=True, timeout=10)
        check(r.returncode == 0 and json.loads(r.stdout)["calls"][0]["id"] == cid,
              "tallyctl calls --json: %r" % r.stdout[:300])
        r = subprocess.run([tallyctl, "--api", api, "--token", TOKEN, "call", cid],
                           capture_output=True, text=True, timeout=10)
        check(r.returncode == 0 and json.loads(r.stdout)["id"] == cid,
              "tallyctl call: rc %d %r %r" % (r.returncode, r.stdout[:300], r.stderr))
        r = subprocess.run([tallyctl, "--api", api, "--token", TOKEN, "call", "nope"],
                           capture_output=True, text=True, timeout=10)
        check(r.returncode != 0 and "404" in r.stderr, "tallyctl call nope: %r" % r.stderr)
        print("ok - GET /calls/%s, tallyctl call" % cid, flush=True)

        # ---- the call ends: events ----
        rc = uac.wait(30)
        check(rc == 0, "sipp UAC: rc %s\n%s\n%s" % (rc, uac.log(), sip.log()))
        events = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            m = ws.recv(deadline - time.monotonic())
            check(m is not None, "event stream closed early")
            ev = json.loads(m)
            print("# ws event: %s %s %s" % (ev.get("event"), ev["call"].get("id"),
                                            ev["call"].get("state")), flush=True)
            events.append(ev)
            if ev.get("event") == "call.ended" and ev["call"].get("id") == cid:
                break
        ended = check_event_order(events, cid, "WebSocket")
        print("ok - WebSocket: call.created, call.answered, call.ended (cause %r)"
              % ended["call"]["cause"], flush=True)

        ctl_events = []
        fd = ctl_ev.proc.stdout.fileno()
        pending = b""
        done = False
        deadline = time.monotonic() + 10
        while not done and time.monotonic() < deadline:
            # raw reads: a buffered readline() would hide lines from select
            r, _, _ = select.select([fd], [], [], deadline - time.monotonic())
            if not r:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                ev = json.loads(line.decode())
                ctl_events.append(ev)
                if ev.get("event") == "call.ended" and ev["call"].get("id") == cid:
                    done = True
        check_event_order(ctl_events, cid, "tallyctl events")
        print("ok - tallyctl events --json: the same three events, one JSON per line", flush=True)

        wait_until(lambda: api_request(api_port, "/api/v1/calls")[2].get("calls") == [],
                   5, "the call to leave GET /calls")
        st, _, _ = api_request(api_port, "/api/v1/calls/" + cid)
        check(st == 404, "ended call still served: %d" % st)
        uas.wait(10)

        # ---- shutdown: listeners see the server close ----
        rc = sip.stop()
        check(rc == 0, "tally-sip exit status %s\n%s" % (rc, sip.log()))
        rc = ctl_ev.wait(10)
        check(rc == 0, "tallyctl events exit status %s after server close\n%s"
              % (rc, ctl_ev.log()))
        try:
            m = ws.recv(5)
        except EOFError:
            m = None
        check(m is None, "WebSocket got %r instead of the close" % m)
        ws.close()
        with open(sip.logpath, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        check("AddressSanitizer" not in log and "runtime error" not in log,
              "sanitizer report in tally-sip's log\n" + sip.log(80))
        check(" api: " in log, "no api lines in the DEBUG log")
        print("ok - tally-sip stopped cleanly, tallyctl events exited 0", flush=True)
    except Exception:
        for p in procs:
            print("# --- %s log:\n%s" % (p.name, p.log()), flush=True)
        raise
    finally:
        for p in reversed(procs):
            p.stop(timeout=3)
        if media is not None:
            media.stop()


def main():
    tmp = tempfile.mkdtemp(prefix="tally-api-")
    try:
        run(tmp)
    except Fail as e:
        print("FAIL: %s" % e, flush=True)
        return 1
    print("PASS (logs in %s)" % tmp, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
