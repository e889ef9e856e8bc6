"""SIP-side helpers for tally-recorder's black-box tests (python3 stdlib only):
rec_conformance.py, rec_torture.py, rec_badinput.py.

  recorder_binary()   rectest's lookup, None when there is no binary
  Recorder            rectest.Recorder (free loopback ports, start/stop by PID, the
                      API with its bearer token) in a folder of its own, plus the
                      calls used here (recordings, recording_of, status, grep)
  SipTcp              one TCP connection to the recorder: send, read responses
                      framed by Content-Length, answer requests the recorder sends
  Dialog              our UAC side of one recording session: INVITE, ACK,
                      re-INVITE, BYE, with the recorder's To tag and Contact
  rewrite()           the header rewrites an RFC example needs to reach the daemon
  siprec_body()       a multipart/mixed SDP + rs-metadata body
  check_answer()      the SRS answer's shape (RFC 7866 s7.2, RFC 3264)
  parse_mapping()     "Alice send=[97,96] recv=[98,99] left; Bob ..." (index.tsv,
                      rfc8068-expected.tsv) -> [{key, send, recv, left}]
  compare_mapping()   the API's participants against an expected mapping
  Checks / Runner     soft assertions per subtest, "ok NAME" / "FAIL NAME: why"

Everything is on 127.0.0.1, every port is picked at run time, only processes
started here are stopped, by PID. The daemon is started by rectest.py (shared
with the other recorder tests); --min-free-mb=1 keeps the host's disk out of
the tests.
"""

import os
import random
import re
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from tallytest import parse_sdp  # noqa: E402
import rectest  # noqa: E402  (the recorder harness: Recorder, Api, read_pcap)

SRC = os.environ.get("TALLY_SRC", os.path.normpath(os.path.join(HERE, "..", "..")))
DATA = os.environ.get("TALLY_DATA") or os.path.join(SRC, "tests", "data")
SIPREC = os.path.join(DATA, "siprec")
LOCAL = "127.0.0.1"
KEEP = os.environ.get("TALLY_KEEP") == "1"


def log(msg=""):
    print(msg, flush=True)


# ---------------------------------------------------------------- the daemon

def recorder_binary():
    """rectest's lookup ($TALLY_RECORDER, else the newest build*/...); None if absent."""
    try:
        return rectest.recorder_binary()
    except rectest.Fail:
        return None


class Recorder(rectest.Recorder):
    """rectest.Recorder (free ports, start/stop by PID, Api) in its own folder
    WORKDIR/NAME (log, pidfile, storage), with the calls these tests use."""

    def __init__(self, workdir, name="rec", **kw):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        kw.setdefault("min_free_mb", 1)
        kw.setdefault("default_media", "audio+video")
        kw.setdefault("nports", 64)
        super().__init__(self.dir, name=name, **kw)
        self.pidfile = os.path.join(self.dir, name + ".pid")
        self.rc = None

    @property
    def logpath(self):
        return self.proc.logpath if self.proc else os.path.join(self.dir, self.name + ".log")

    @property
    def returncode(self):
        return self.proc.p.returncode if self.proc else None

    def alive(self):
        """The process we started still runs (poll() and kill(pid, 0))."""
        if not super().alive():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, grace=15.0):
        if self.proc is None:
            return None
        self.rc = super().stop(grace)
        return self.rc

    def tail(self, n=40):
        return self.log_tail(n)

    def grep(self, word, n=12):
        hits = [ln for ln in self.log_text().splitlines() if word in ln]
        return "\n".join("  | " + ln for ln in hits[-n:]) or "  | (no log line with %r)" % word

    # --- API (recapi.h), through rectest.Api ------------------------------

    def status(self):
        j = self.api.status()
        if not isinstance(j, dict):
            raise AssertionError("GET /api/v1/status: not an object: %r" % (j,))
        return j

    def recordings(self, call_id=None):
        return self.api.recordings(call_id=call_id) if call_id is not None else self.api.recordings()

    def recording(self, rid):
        j = self.api.recording(rid)
        if not isinstance(j, dict):
            raise AssertionError("GET /api/v1/recordings/%s: not an object: %r" % (rid, j))
        return j

    def recording_of(self, call_id, timeout=3.0):
        """The (newest) recording of CALL_ID: its details; AssertionError if none."""
        end = time.monotonic() + timeout
        while True:
            rows = self.recordings(call_id)
            if rows:
                break
            if time.monotonic() > end:
                raise AssertionError("no recording with call_id %r in the API (GET "
                                     "/api/v1/recordings?call_id=...: [])" % call_id)
            time.sleep(0.1)
        rid = rec_id(rows[0])
        if not rid:
            raise AssertionError("recording row without an id: %r" % rows[0])
        return self.recording(rid)

    def folder(self, details):
        """The session folder of a recording (storage/<id>)."""
        for k in ("dir", "folder", "path"):
            v = details.get(k)
            if isinstance(v, str) and os.path.isdir(v):
                return v
        return self.session_dir(rec_id(details) or "?")


def rec_id(row):
    for k in ("id", "recording_id", "rec_id"):
        if isinstance(row.get(k), str) and row.get(k):
            return row[k]
    return None


def participants_of(details):
    p = details.get("participants")
    if p is None and isinstance(details.get("recording"), dict):
        p = details["recording"].get("participants")
    return p


def streams_of(details):
    s = details.get("streams")
    if s is None and isinstance(details.get("recording"), dict):
        s = details["recording"].get("streams")
    return s


def state_of(details):
    s = details.get("state")
    if s is None and isinstance(details.get("recording"), dict):
        s = details["recording"].get("state")
    return s


def find_counter(obj, word, path=""):
    """[(json path, value)] of every numeric key containing WORD."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = path + "." + k if path else k
            if isinstance(v, (int, float)) and not isinstance(v, bool) and word in k.lower():
                out.append((p, v))
            elif isinstance(v, (dict, list)):
                out += find_counter(v, word, p)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += find_counter(v, word, "%s[%d]" % (path, i))
    return out


# ---------------------------------------------------------------- SIP messages

SHORT = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact",
         "l": "content-length", "c": "content-type", "k": "supported", "s": "subject",
         "e": "content-encoding", "o": "event", "r": "refer-to", "x": "session-expires"}


def parse(data):
    """bytes -> {first, code, reason, method, hdrs [(lname, value)], hdr {lname: first},
    body (bytes), raw}; None if not a SIP message."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("utf-8", "replace").split("\r\n")
    first = lines[0]
    code = reason = method = None
    if first.startswith("SIP/2.0 "):
        f = first.split(" ", 2)
        try:
            code = int(f[1])
        except (ValueError, IndexError):
            return None
        reason = f[2] if len(f) > 2 else ""
    else:
        method = first.split(" ", 1)[0]
    hdrs = []
    for ln in lines[1:]:
        if ln[:1] in (" ", "\t") and hdrs:
            hdrs[-1] = (hdrs[-1][0], hdrs[-1][1] + " " + ln.strip())
            continue
        k, _, v = ln.partition(":")
        k = k.strip().lower()
        hdrs.append((SHORT.get(k, k), v.strip()))
    hdr = {}
    for k, v in hdrs:
        hdr.setdefault(k, v)
    if method is None:
        cs = hdr.get("cseq", "").split()
        method = cs[-1] if cs else None
    return {"first": first, "code": code, "reason": reason, "method": method,
            "hdrs": hdrs, "hdr": hdr, "body": body, "raw": data}


def hdr_all(m, name):
    return [v for k, v in m["hdrs"] if k == name.lower()]


def cseq_of(m):
    cs = m["hdr"].get("cseq", "").split()
    try:
        return int(cs[0]), cs[1] if len(cs) > 1 else ""
    except (ValueError, IndexError):
        return None, None


def tag_of(value):
    mm = re.search(r";\s*tag\s*=\s*([^;,\s>]+)", value or "")
    return mm.group(1) if mm else None


def uri_of(value):
    """The URI inside a name-addr (<...>) or the addr-spec before ';'."""
    value = value or ""
    mm = re.search(r"<([^>]*)>", value)
    if mm:
        return mm.group(1)
    return value.split(";")[0].strip()


def body_part(m, ctype):
    """The body of part CTYPE of a (multipart) message body, or the whole body when
    the message's Content-Type is CTYPE; None if absent."""
    ct = m["hdr"].get("content-type", "")
    body = m["body"]
    if ct.split(";")[0].strip().lower() == ctype:
        return body
    mm = re.search(r'boundary\s*=\s*"?([^";]+)"?', ct, re.I)
    if not mm:
        return None
    delim = b"--" + mm.group(1).strip().encode()
    for part in body.split(delim)[1:]:
        if part.startswith(b"--"):
            break
        ph, sep, pb = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            continue
        for ln in ph.split(b"\r\n"):
            k, _, v = ln.partition(b":")
            if k.strip().lower() == b"content-type" and \
               v.split(b";")[0].strip().lower().decode() == ctype:
                return pb[:-2] if pb.endswith(b"\r\n") else pb
    return None


def new_branch():
    return "z9hG4bK-tally-%016x" % random.getrandbits(64)


def new_tag():
    return "tt%012x" % random.getrandbits(48)


def new_callid(what="rec"):
    return "%s-%016x@tally-test" % (what, random.getrandbits(64))


def build_request(method, ruri, headers, body=b""):
    """headers: [(name, value)]; Content-Length is added."""
    if isinstance(body, str):
        body = body.encode()
    out = ["%s %s SIP/2.0" % (method, ruri)]
    out += ["%s: %s" % (k, v) for k, v in headers]
    out.append("Content-Length: %d" % len(body))
    return ("\r\n".join(out) + "\r\n\r\n").encode() + body


VIA_RE = re.compile(r"^(?P<name>via|v)(?P<c>\s*:\s*)SIP\s*/\s*2\.0\s*/\s*(?P<tp>[A-Za-z]+)\s+"
                    r"(?P<sb>[^;,\s]+)(?P<rest>.*)$", re.I)


def rewrite(raw, ruri=None, via_sentby=None, via_transport=None, branch=None,
            to_tag=None, cseq=None):
    """Rewrites header fields of the request RAW (bytes); the body is kept byte for
    byte (so Content-Length stays right). Returns (bytes, [what was rewritten])."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("no end of headers")
    lines = head.decode("utf-8", "surrogateescape").split("\r\n")
    notes = []
    if ruri is not None:
        f = lines[0].split(" ")
        if len(f) != 3:
            raise ValueError("request line %r" % lines[0])
        notes.append("Request-URI %s -> %s" % (f[1], ruri))
        lines[0] = "%s %s %s" % (f[0], ruri, f[2])
    via_done = to_done = cseq_done = False
    for i in range(1, len(lines)):
        ln = lines[i]
        name = ln.split(":", 1)[0].strip().lower()
        if name in ("via", "v") and not via_done:
            via_done = True
            mm = VIA_RE.match(ln)
            if not mm:
                raise ValueError("top Via %r" % ln)
            tp, sb, rest = mm.group("tp"), mm.group("sb"), mm.group("rest")
            if via_transport and via_transport.upper() != tp.upper():
                notes.append("Via transport %s -> %s" % (tp, via_transport))
                tp = via_transport
            if via_sentby and via_sentby != sb:
                notes.append("Via sent-by %s -> %s" % (sb, via_sentby))
                sb = via_sentby
            if branch:
                rest2, n = re.subn(r"(;\s*branch\s*=\s*)[^;,\s]+", lambda x: x.group(1) + branch,
                                   rest, count=1, flags=re.I)
                if not n:
                    rest2 = ";branch=%s%s" % (branch, rest)
                notes.append("Via branch -> fresh")
                rest = rest2
            lines[i] = "%s%sSIP/2.0/%s %s%s" % (mm.group("name"), mm.group("c"), tp, sb, rest)
        elif name in ("to", "t") and to_tag and not to_done:
            to_done = True
            if tag_of(ln.split(":", 1)[1]) is None:
                lines[i] = ln + ";tag=" + to_tag
                notes.append("To tag added (the recorder's, from its 200 OK)")
        elif name == "cseq" and cseq is not None and not cseq_done:
            cseq_done = True
            k, _, v = ln.partition(":")
            f = v.split()
            notes.append("CSeq %s -> %d" % (f[0], cseq))
            lines[i] = "%s: %d %s" % (k, cseq, f[1] if len(f) > 1 else "")
    return ("\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n\r\n" + body), notes


def siprec_body(sdp, xml=None, boundary="tally-boundary-1", xml_ctype="application/rs-metadata+xml",
                disposition="recording-session"):
    """(Content-Type value, body bytes) of SDP (+ metadata XML) as SIPREC sends them
    (RFC 7866 s9.1). Without XML: plain application/sdp."""
    if isinstance(sdp, str):
        sdp = sdp.encode()
    if xml is None:
        return "application/sdp", sdp
    if isinstance(xml, str):
        xml = xml.encode()
    b = boundary.encode()
    body = (b"--" + b + b"\r\nContent-Type: application/sdp\r\n\r\n" + sdp +
            (b"" if sdp.endswith(b"\r\n") else b"\r\n") +
            b"--" + b + b"\r\nContent-Type: " + xml_ctype.encode() + b"\r\n" +
            (b"Content-Disposition: " + disposition.encode() + b"\r\n" if disposition else b"") +
            b"\r\n" + xml + (b"" if xml.endswith(b"\r\n") else b"\r\n") +
            b"--" + b + b"--\r\n")
    return "multipart/mixed;boundary=%s" % boundary, body


def options_udp(port, timeout=1.0):
    """OPTIONS over UDP to 127.0.0.1:PORT (rport, our own socket): status or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((LOCAL, 0))
    lp = s.getsockname()[1]
    cid = new_callid("probe")
    msg = build_request("OPTIONS", "sip:%s:%d" % (LOCAL, port), [
        ("Via", "SIP/2.0/UDP %s:%d;branch=%s;rport" % (LOCAL, lp, new_branch())),
        ("Max-Forwards", "70"), ("From", "<sip:probe@%s:%d>;tag=%s" % (LOCAL, lp, new_tag())),
        ("To", "<sip:%s:%d>" % (LOCAL, port)), ("Call-ID", cid), ("CSeq", "1 OPTIONS"),
        ("Accept", "application/sdp")])
    try:
        s.sendto(msg, (LOCAL, port))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s.settimeout(max(0.01, end - time.monotonic()))
            try:
                data = s.recv(65535)
            except (socket.timeout, ConnectionRefusedError):
                return None
            m = parse(data)
            if m and m["code"] and m["code"] >= 200 and m["hdr"].get("call-id") == cid:
                return m["code"]
        return None
    finally:
        s.close()


def options_tcp(port, timeout=2.0):
    """OPTIONS over a new TCP connection: status or None."""
    try:
        c = SipTcp(port, timeout=timeout)
    except OSError:
        return None
    try:
        cid = new_callid("probe")
        c.send(build_request("OPTIONS", "sip:%s:%d;transport=tcp" % (LOCAL, port), [
            ("Via", "SIP/2.0/TCP %s:%d;branch=%s" % (LOCAL, c.lport, new_branch())),
            ("Max-Forwards", "70"), ("From", "<sip:probe@%s>;tag=%s" % (LOCAL, new_tag())),
            ("To", "<sip:%s:%d>" % (LOCAL, port)), ("Call-ID", cid), ("CSeq", "1 OPTIONS")]))
        r = c.wait_final(cid, 1, "OPTIONS", timeout)
        return r["code"] if r else None
    except OSError:
        return None
    finally:
        c.close()


class SipTcp:
    """One TCP connection to the recorder. Responses are framed by Content-Length;
    requests the recorder sends to us are answered 200 (OPTIONS/BYE/UPDATE/INFO)
    and kept in .requests."""

    def __init__(self, port, host=LOCAL, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.lport = self.sock.getsockname()[1]
        self.buf = b""
        self.responses = []
        self.requests = []
        self.closed = False

    def via(self, branch=None):
        return "SIP/2.0/TCP %s:%d;branch=%s" % (LOCAL, self.lport, branch or new_branch())

    def sentby(self):
        return "%s:%d" % (LOCAL, self.lport)

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _frames(self):
        while True:
            self.buf = self.buf.lstrip(b"\r\n")
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            m = parse(self.buf[:i + 4])
            if m is None:                      # garbage: drop up to the blank line
                self.buf = self.buf[i + 4:]
                continue
            try:
                n = int((m["hdr"].get("content-length") or "0").strip() or 0)
            except ValueError:
                n = 0
            if len(self.buf) < i + 4 + n:
                return
            m = parse(self.buf[:i + 4 + n])
            self.buf = self.buf[i + 4 + n:]
            if m["code"] is not None:
                self.responses.append(m)
            else:
                self.requests.append(m)
                self._answer(m)

    def _answer(self, req):
        if req["method"] == "ACK":
            return
        hs = [("Via", v) for v in hdr_all(req, "via")]
        to = req["hdr"].get("to", "")
        if tag_of(to) is None:
            to += ";tag=" + new_tag()
        hs += [("From", req["hdr"].get("from", "")), ("To", to),
               ("Call-ID", req["hdr"].get("call-id", "")), ("CSeq", req["hdr"].get("cseq", ""))]
        out = ["SIP/2.0 200 OK"] + ["%s: %s" % kv for kv in hs] + ["Content-Length: 0"]
        try:
            self.send(("\r\n".join(out) + "\r\n\r\n").encode())
        except OSError:
            pass

    def pump(self, timeout):
        """Reads for up to TIMEOUT s (returns early once data came)."""
        if self.closed:
            return
        self.sock.settimeout(max(0.01, timeout))
        try:
            chunk = self.sock.recv(262144)
        except socket.timeout:
            return
        except OSError:
            self.closed = True
            return
        if not chunk:
            self.closed = True
            return
        self.buf += chunk
        self._frames()

    def wait_final(self, call_id, cseq, method, timeout=5.0):
        """The final response to (CALL_ID, CSEQ, METHOD), or None (connection closed
        or timeout). Provisional ones stay in .responses."""
        end = time.monotonic() + timeout
        while True:
            for m in self.responses:
                n, meth = cseq_of(m)
                if m["code"] >= 200 and m["hdr"].get("call-id") == call_id and n == cseq \
                        and (meth or "").upper() == method:
                    self.responses.remove(m)
                    return m
            left = end - time.monotonic()
            if left <= 0 or self.closed:
                return None
            self.pump(min(left, 0.5))


class Dialog:
    """Our (SRC) side of one recording session over one SipTcp connection."""

    def __init__(self, rec, conn=None, call_id=None, from_uri="sip:src@tally-test.invalid",
                 to_uri=None, from_tag=None):
        self.rec = rec
        self.conn = conn or SipTcp(rec.sip_port)
        self.call_id = call_id or new_callid("siprec")
        self.from_uri = from_uri
        self.from_tag = from_tag or new_tag()
        self.to_uri = to_uri or "sip:recorder@%s:%d" % (LOCAL, rec.sip_port)
        self.to_tag = None
        self.target = "sip:%s:%d;transport=tcp" % (LOCAL, rec.sip_port)
        self.cseq = 0
        self.answer = None          # last 2xx to an INVITE
        self.contact = None

    def from_hdr(self):
        return "<%s>;tag=%s" % (self.from_uri, self.from_tag)

    def to_hdr(self):
        return "<%s>%s" % (self.to_uri, ";tag=" + self.to_tag if self.to_tag else "")

    def request(self, method, body=b"", ctype=None, extra=(), require="siprec", cseq=None,
                ruri=None, branch=None):
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        hs = [("Via", self.conn.via(branch)), ("Max-Forwards", "70"), ("From", self.from_hdr()),
              ("To", self.to_hdr()), ("Call-ID", self.call_id), ("CSeq", "%d %s" % (cseq, method))]
        if method in ("INVITE", "UPDATE"):
            hs.append(("Contact", "<sip:src@%s;transport=tcp>;+sip.src" % self.conn.sentby()))
        if require and method in ("INVITE", "UPDATE"):
            hs.append(("Require", require))
        if method == "INVITE":
            hs.append(("Accept", "application/sdp, application/rs-metadata, application/rs-metadata-request"))
        hs += list(extra)
        if ctype and body:
            hs.append(("Content-Type", ctype))
        return build_request(method, ruri or self.target, hs, body), cseq

    def send_invite(self, raw, cseq, timeout=8.0):
        """Sends an INVITE (bytes) with CSEQ, waits for the final answer, ACKs it
        (2xx: new transaction; non-2xx: same branch). Returns the final or None."""
        self.conn.send(raw)
        self.cseq = max(self.cseq, cseq)
        r = self.conn.wait_final(self.call_id, cseq, "INVITE", timeout)
        if r is None:
            return None
        if 200 <= r["code"] < 300:
            self.on_2xx(r)
            ack_body = b""
            ack_ct = None
            req = parse(raw)
            if req is not None and body_part(req, "application/sdp") is None \
                    and body_part(r, "application/sdp") is not None:
                # late offer: the recorder's 2xx carries the offer, the ACK the answer
                ack_body, ack_ct = self.late_answer or b"", "application/sdp"
            self.ack(cseq, ack_body, ack_ct)
        else:
            self.ack_non2xx(raw, r)
        return r

    late_answer = None

    def on_2xx(self, r):
        t = tag_of(r["hdr"].get("to"))
        if t and not self.to_tag:
            self.to_tag = t
        c = r["hdr"].get("contact")
        if c:
            self.contact = c
            self.target = uri_of(c)
        self.answer = r

    def ack(self, cseq, body=b"", ctype=None):
        hs = [("Via", self.conn.via()), ("Max-Forwards", "70"), ("From", self.from_hdr()),
              ("To", self.to_hdr()), ("Call-ID", self.call_id), ("CSeq", "%d ACK" % cseq)]
        if ctype and body:
            hs.append(("Content-Type", ctype))
        self.conn.send(build_request("ACK", self.target, hs, body))

    def ack_non2xx(self, raw, r):
        """RFC 3261 17.1.1.3: same R-URI and top Via as the INVITE, To of the response."""
        req = parse(raw)
        if req is None:
            return
        ruri = req["first"].split(" ")[1]
        n, _ = cseq_of(req)
        hs = [("Via", hdr_all(req, "via")[0]), ("Max-Forwards", "70"),
              ("From", req["hdr"].get("from", "")), ("To", r["hdr"].get("to", "")),
              ("Call-ID", req["hdr"].get("call-id", "")), ("CSeq", "%d ACK" % n)]
        try:
            self.conn.send(build_request("ACK", ruri, hs))
        except OSError:
            pass

    def invite(self, body=b"", ctype=None, extra=(), require="siprec", timeout=8.0):
        raw, cseq = self.request("INVITE", body, ctype, extra, require)
        return self.send_invite(raw, cseq, timeout)

    def bye(self, timeout=8.0):
        raw, cseq = self.request("BYE")
        self.conn.send(raw)
        return self.conn.wait_final(self.call_id, cseq, "BYE", timeout)

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------- SDP answers

def sdp_text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")


def check_answer(offer, answer, accept=None):
    """Problems (list of str) of the SRS answer ANSWER to OFFER (SDP texts):
    one m= line per offered one in order and of the same media type, a=label
    echoed, accepted streams a=recvonly (a=inactive where the offer is
    inactive/recvonly), a port 0 offer answered with port 0. ACCEPT: per m-line
    True (must be accepted), False (must be port 0) or None (either)."""
    o, a = parse_sdp(sdp_text(offer)), parse_sdp(sdp_text(answer))
    probs = []
    om, am = o["media"], a["media"]
    if len(om) != len(am):
        probs.append("%d m= lines answered to %d offered" % (len(am), len(om)))
    for i, (x, y) in enumerate(zip(om, am)):
        if x["kind"] != y["kind"]:
            probs.append("m-line %d: %s answered to %s" % (i, y["kind"], x["kind"]))
        if x["label"] is not None and y["label"] != x["label"]:
            probs.append("m-line %d: a=label %r, offered %r" % (i, y["label"], x["label"]))
        if x["port"] == 0 and y["port"] != 0:
            probs.append("m-line %d: offered port 0, answered port %d" % (i, y["port"]))
        if y["port"] != 0:
            want = ("inactive",) if x["direction"] in ("inactive", "recvonly") else ("recvonly",)
            if y["direction"] not in want:
                probs.append("m-line %d (label %s): direction a=%s, want a=%s"
                             % (i, x["label"], y["direction"], want[0]))
            if not y["addr"] or not y["addr"].startswith("127."):
                probs.append("m-line %d: connection address %r" % (i, y["addr"]))
            if not y["fmts"] or not set(y["fmts"]) <= set(x["fmts"]):
                probs.append("m-line %d: answered formats %s, offered %s"
                             % (i, y["fmts"], x["fmts"]))
        if accept is not None and i < len(accept) and accept[i] is not None:
            if accept[i] and y["port"] == 0:
                probs.append("m-line %d (%s, label %s) refused (port 0)" % (i, x["kind"], x["label"]))
            if not accept[i] and y["port"] != 0:
                probs.append("m-line %d (%s, label %s) accepted (port %d), must be refused"
                             % (i, x["kind"], x["label"], y["port"]))
    return probs


# ---------------------------------------------------------------- mappings

MAP_RE = re.compile(r"(?P<who>[^;\[\]=]+?)\s+send=\[(?P<send>[^\]]*)\]\s+recv=\[(?P<recv>[^\]]*)\]"
                    r"(?P<left>\s+left)?")


def parse_mapping(text):
    """'Alice send=[97,96] recv=[98,99] left; Bob ...' -> [{key, send, recv, left}]
    (labels as strings; '1/audio' -> '1'); [] for none/n-a."""
    out = []
    for part in (text or "").split(";"):
        mm = MAP_RE.search(part.strip())
        if not mm:
            continue

        def labels(s):
            return [x.strip().split("/")[0] for x in s.split(",") if x.strip()]
        out.append({"key": mm.group("who").strip(), "send": labels(mm.group("send")),
                    "recv": labels(mm.group("recv")), "left": bool(mm.group("left"))})
    return out


def part_matches(p, key):
    """Does API participant P match the expected KEY (a name, an AOR, or an id)?"""
    k = key.strip().lower()
    name = (p.get("name") or "").strip().lower()
    aor = (p.get("aor") or "").strip().lower()
    pid = (p.get("id") or "").strip().lower()
    if k.startswith(("sip:", "sips:", "tel:")):
        return aor == k
    return k in (name, pid)


def fmt_parts(parts):
    out = []
    for p in parts or []:
        out.append("%s<%s> send=%s recv=%s%s" % (p.get("name") or "", p.get("aor") or p.get("id"),
                                               p.get("send"), p.get("recv"),
                                               " left" if p.get("left") else ""))
    return "; ".join(out) or "(none)"


def compare_mapping(parts, expected):
    """Problems (list of str): API participants PARTS vs EXPECTED (parse_mapping).
    Label lists compare as sets (an association has no order); a participant
    the API does not list, or lists more than once, or an extra participant,
    is a problem. 'left' is compared only when the API reports it."""
    probs = []
    if not isinstance(parts, list):
        return ["participants is not a list: %r" % (parts,)]
    used = set()
    for e in expected:
        hits = [i for i, p in enumerate(parts) if isinstance(p, dict) and part_matches(p, e["key"])]
        if not hits:
            probs.append("participant %s missing" % e["key"])
            continue
        if len(hits) > 1:
            probs.append("participant %s listed %d times" % (e["key"], len(hits)))
        i = hits[0]
        used.add(i)
        p = parts[i]
        for k in ("send", "recv"):
            got = p.get(k)
            if not isinstance(got, list):
                probs.append("%s: %s is %r, not a list of labels" % (e["key"], k, got))
                continue
            got = [str(x) for x in got]
            if sorted(set(got)) != sorted(set(e[k])) or len(got) != len(set(got)):
                probs.append("%s %s=%s, want %s" % (e["key"], k, got, e[k]))
        if "left" in p and bool(p["left"]) != e["left"]:
            probs.append("%s left=%s, want %s" % (e["key"], p["left"], e["left"]))
    extra = [p for i, p in enumerate(parts) if i not in used]
    if extra:
        probs.append("unexpected participant(s): %s" % fmt_parts(extra))
    return probs


# ---------------------------------------------------------------- runner

class Checks:
    def __init__(self):
        self.fails = []
        self.notes = []

    def __call__(self, cond, msg):
        if not cond:
            self.fails.append(msg)
        return bool(cond)

    def note(self, msg):
        self.notes.append(msg)


class Runner:
    """Subtests with soft checks; the recorder's log tail is printed on failure."""

    def __init__(self, name):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix="tally-%s-" % name)
        os.chmod(self.tmp, 0o755)
        self.passed = self.failed = 0
        self.failures = []
        self.recs = []          # every Recorder started (stopped at the end)

    def recorder(self, name, **kw):
        r = Recorder(self.tmp, name, **kw)
        self.recs.append(r)
        r.start()
        return r

    def run(self, name, fn, rec=None, stop=False):
        """Runs fn(c); REC (a Recorder or a callable returning one) must be alive
        afterwards; STOP: then SIGTERM it, and it must exit 0."""
        c = Checks()
        t0 = time.monotonic()
        try:
            fn(c)
        except Exception as e:          # noqa: BLE001 - a harness error is a failure too
            import traceback
            c.fails.append("%s: %s" % (type(e).__name__, (str(e).splitlines() or [""])[0]))
            if not isinstance(e, AssertionError):
                c.notes.append(traceback.format_exc().rstrip())
            elif len(str(e).splitlines()) > 1:
                c.notes.append("\n".join(str(e).splitlines()[1:]))
        r = rec() if callable(rec) else rec
        if r is not None and r.proc is not None and r.rc is None and not r.alive():
            c.fails.append("tally-recorder %s died (rc %s)" % (r.name, r.returncode))
        elif r is not None and r.proc is not None and r.rc is None and stop:
            rc = r.stop()
            c(rc == 0, "tally-recorder %s exited %s after SIGTERM (want 0)" % (r.name, rc))
        for n in c.notes:
            log("  note: " + n.replace("\n", "\n  "))
        if c.fails:
            self.failed += 1
            self.failures.append(name)
            log("FAIL %s: %s" % (name, "; ".join(c.fails)))
            if r is not None:
                log("  --- %s log tail (%s):\n%s" % (r.name, r.logpath, r.tail(25)))
        else:
            self.passed += 1
            log("ok %s (%.1fs)" % (name, time.monotonic() - t0))
        return not c.fails

    def finish(self):
        for r in self.recs:
            if r.rc is not None or r.proc is None:
                continue                  # stopped (and judged) already
            rc = r.stop()
            if rc not in (0, None):
                self.failed += 1
                self.failures.append("exit:" + r.name)
                log("FAIL %s: tally-recorder exited %s after SIGTERM (want 0)\n%s"
                    % (r.name, rc, r.tail(15)))
        log("%d passed, %d failed%s" % (self.passed, self.failed,
                                        (": " + ", ".join(self.failures)) if self.failures else ""))
        if self.failed or KEEP:
            log("# logs and storage kept in %s" % self.tmp)
        else:
            import shutil
            shutil.rmtree(self.tmp, ignore_errors=True)
        return 1 if self.failed else 0


def read_tsv(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        head = f.readline().rstrip("\n").split("\t")
        for ln in f:
            if ln.strip() and not ln.startswith("#"):
                rows.append(dict(zip(head, ln.rstrip("\n").split("\t"))))
    return rows
