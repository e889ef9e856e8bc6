#!/usr/bin/env python3
"""tally-sip as the SIPREC recording client (issue 11, first slice), black
box: the real tally-sip ($TALLY_SIP), tally-media ($TALLY_MEDIA) and two
tally-recorders ($TALLY_RECORDER: one recording audio+video, one whose
policy is audio only), a caller and a callee played by python UAs over UDP
with an audio+video SDP and RTP both ways (the 4-stream clip of
tests/tools/mkrtp.py: each party's PCMU tone and H264 / VP8 video), and a
WebSocket client collecting the events.

Cases (each on its own call):
  a  audio+video to the configured recorders, whose first one is a dead
     TCP port (failover to the second): 201, recording.audio.started and
     recording.video.started; GET shows both media started, the SIPREC
     Call-ID, the media server's to-tag and 4 labels; a second start with
     the same media is 200 with the same id, with other media 409; the
     recorder shows one session with 4 accepted streams and both parties'
     AORs from the metadata; after the caller's BYE .stopped for audio and
     video before call.ended, and the recorder finalizes files holding
     both parties' audio and video (ffprobe)
  b  audio only on the video call, to a recorder URI with transport=udp:
     the recorder got 2 m= lines, both audio; only audio events
  c  audio+video to the audio-only recorder: video.rejected (with the
     recorder's reason if any) and audio.started; the recorder refused both
     video streams
  d  bad input: unknown call 404, unknown DN 404, a DN with two calls 409,
     bad media 400, no token 401, bad recorder URI 400, DELETE of an
     unknown recording 404; start by DN; a recorder URI where nothing
     listens (TCP: refused; UDP: no answer within recorder-timeout-ms):
     .failed for each medium, and both parties' RTP keeps flowing
  e  the recorder ends the session (a python SRS over UDP answers, then
     sends BYE): .failed "session ended by the recorder"; the call goes
     on (RTP both ways, still listed); the INVITE it got had Require:
     siprec, +sip.src, multipart with the metadata (recording-session)
     naming both AORs and the recorded Call-ID
Every daemon log is checked for sanitizer reports; tally-sip must exit 0
on SIGTERM. Ports are free ones picked at run time; only processes started
here are stopped, by PID. python3 stdlib + ffprobe.
"""

import json
import os
import queue
import random
import re
import select
import signal
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tallytest as tt  # noqa: E402
import rectest as rt  # noqa: E402
from api_events import (Proc, WsClient, api_request, binary,  # noqa: E402
                        Fail, check, wait_until)

LO = "127.0.0.1"
TOKEN = "rec-%016x" % random.getrandbits(64)
SANITIZER = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def ok(msg):
    print("ok - " + msg, flush=True)


# --------------------------------------------------------------------------
# a minimal UDP SIP user agent: many dialogs on one socket, both roles

def parse(data):
    from siptest import sip_parse
    return sip_parse(data)


class Party:
    """A party's media: audio and video RTP/RTCP sockets, its SDP."""

    def __init__(self, video_codec):
        self.socks = {}
        for k in ("a", "ar", "v", "vr"):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((LO, 0))
            s.setblocking(False)
            self.socks[k] = s
        self.codec = video_codec
        self.remote = {}            # "a"/"ar"/"v"/"vr" -> (host, port)
        self.rx = {k: 0 for k in self.socks}

    def port(self, k):
        return self.socks[k].getsockname()[1]

    def sdp(self):
        pt, rtpmap, fmtp = ((96, "H264/90000", "packetization-mode=1;profile-level-id=42c01e")
                            if self.codec == "H264" else (97, "VP8/90000", None))
        lines = ["v=0", "o=- %d 1 IN IP4 %s" % (random.getrandbits(31), LO), "s=-",
                 "c=IN IP4 %s" % LO, "t=0 0",
                 "m=audio %d RTP/AVP 0" % self.port("a"), "a=rtpmap:0 PCMU/8000",
                 "a=rtcp:%d" % self.port("ar"), "a=sendrecv",
                 "m=video %d RTP/AVP %d" % (self.port("v"), pt), "a=rtpmap:%d %s" % (pt, rtpmap)]
        if fmtp:
            lines.append("a=fmtp:%d %s" % (pt, fmtp))
        lines += ["a=rtcp:%d" % self.port("vr"), "a=sendrecv"]
        return "\r\n".join(lines) + "\r\n"

    def learn(self, sdp):
        """Where to send: the media server's addresses in the peer SDP."""
        conn, kind = LO, None
        for ln in sdp.replace("\r\n", "\n").split("\n"):
            if ln.startswith("c=IN IP4 "):
                conn = ln.split()[2]
            elif ln.startswith("m="):
                f = ln[2:].split()
                kind = "a" if f[0] == "audio" else "v"
                self.remote[kind] = (conn, int(f[1]))
                self.remote[kind + "r"] = (conn, int(f[1]) + 1)
            elif ln.startswith("a=rtcp:") and kind:
                self.remote[kind + "r"] = (conn, int(ln[7:].split()[0]))

    def close(self):
        for s in self.socks.values():
            s.close()


class Dialog:
    def __init__(self, callid, party):
        self.callid = callid
        self.party = party
        self.local_tag = "%x" % random.getrandbits(40)
        self.remote_tag = None
        self.remote_uri = None      # the peer's Contact
        self.from_hdr = self.to_hdr = None
        self.cseq = 1
        self.byed = False
        self.invite = None          # the INVITE received (UAS)
        self.answered = threading.Event()
        self.final = None


class Ua(threading.Thread):
    """One UDP SIP socket; answers INVITEs (as callee) with a new Party,
    BYE/OPTIONS/re-INVITE with 200; places calls (as caller)."""

    def __init__(self, user, video_codec):
        threading.Thread.__init__(self, daemon=True)
        self.user = user
        self.codec = video_codec
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LO, 0))
        self.port = self.sock.getsockname()[1]
        self.dialogs = {}
        self.resp = queue.Queue()
        self.halt = False
        self.lock = threading.Lock()
        self.start()

    def send(self, text, dst):
        self.sock.sendto(text.encode(), dst)

    def run(self):
        while not self.halt:
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            try:
                data, src = self.sock.recvfrom(65535)
            except OSError:
                return
            m = parse(data)
            if not m:
                continue
            if m["code"] is None:
                self.on_request(m, src)
            else:
                self.on_response(m, src)

    def reply(self, m, src, code, reason, d=None, body=None):
        h = ["SIP/2.0 %d %s" % (code, reason)]
        for k, v in m["hdrs"]:
            if k == "via":
                h.append("Via: " + v)
        to = m["hdr"]["to"]
        if d and "tag=" not in to:
            to += ";tag=" + d.local_tag
        h += ["From: " + m["hdr"]["from"], "To: " + to, "Call-ID: " + m["hdr"]["call-id"],
              "CSeq: " + m["hdr"]["cseq"], "Contact: <sip:%s@%s:%d>" % (self.user, LO, self.port)]
        if body:
            h += ["Content-Type: application/sdp", "Content-Length: %d" % len(body), "", body]
        else:
            h += ["Content-Length: 0", "", ""]
        self.send("\r\n".join(h), src)

    def on_request(self, m, src):
        cid = m["hdr"].get("call-id")
        meth = m["method"]
        with self.lock:
            d = self.dialogs.get(cid)
            if meth == "INVITE" and d is None:
                d = Dialog(cid, Party(self.codec))
                d.invite = m
                d.remote_tag = re.search(r"tag=([^;>\s]+)", m["hdr"]["from"]).group(1)
                d.remote_uri = re.search(r"<([^>]+)>", m["hdr"]["contact"]).group(1)
                d.party.learn(m["body"])
                self.dialogs[cid] = d
        if meth == "ACK":
            return
        if meth == "INVITE":
            if "tag=" in m["hdr"]["to"]:
                d.party.learn(m["body"]) if m["body"].strip() else None
            self.reply(m, src, 200, "OK", d, d.party.sdp())
            d.answered.set()
            return
        if meth == "BYE" and d:
            d.byed = True
        self.reply(m, src, 200, "OK", d)

    def on_response(self, m, src):
        cid = m["hdr"].get("call-id")
        d = self.dialogs.get(cid)
        if d and m["method"] == "INVITE" and m["code"] >= 200:
            if m["code"] < 300:
                d.remote_tag = re.search(r"tag=([^;>\s]+)", m["hdr"]["to"]).group(1)
                d.remote_uri = re.search(r"<([^>]+)>", m["hdr"]["contact"]).group(1)
                d.to_hdr = m["hdr"]["to"]
                if m["body"].strip():
                    d.party.learn(m["body"])
            self.ack(d, m, src)
            if d.final is None:
                d.final = m["code"]
                d.answered.set()
            return
        self.resp.put(m)

    def ack(self, d, m, src):
        uri = d.remote_uri if m["code"] < 300 else "sip:x@%s:%d" % src
        h = ["ACK %s SIP/2.0" % uri,
             "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%x;rport" % (LO, self.port, random.getrandbits(48)),
             "Max-Forwards: 70", "From: " + d.from_hdr, "To: " + m["hdr"]["to"],
             "Call-ID: " + d.callid, "CSeq: %d ACK" % d.cseq, "Content-Length: 0", "", ""]
        self.send("\r\n".join(h), src)

    def call(self, sip_port, to_user, timeout=10):
        """INVITE to_user through tally-sip; returns the Dialog once 200."""
        cid = "%x@python-ua" % random.getrandbits(64)
        d = Dialog(cid, Party(self.codec))
        d.from_hdr = "\"Caller %s\" <sip:%s@%s:%d>;tag=%s" % (self.user, self.user, LO, self.port,
                                                             d.local_tag)
        with self.lock:
            self.dialogs[cid] = d
        body = d.party.sdp()
        h = ["INVITE sip:%s@%s:%d SIP/2.0" % (to_user, LO, sip_port),
             "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%x;rport" % (LO, self.port, random.getrandbits(48)),
             "Max-Forwards: 70", "From: " + d.from_hdr, "To: <sip:%s@%s:%d>" % (to_user, LO, sip_port),
             "Call-ID: " + cid, "CSeq: 1 INVITE", "Contact: <sip:%s@%s:%d>" % (self.user, LO, self.port),
             "Content-Type: application/sdp", "Content-Length: %d" % len(body), "", body]
        self.send("\r\n".join(h), (LO, sip_port))
        check(d.answered.wait(timeout), "no final answer to the INVITE to %s" % to_user)
        check(d.final == 200, "INVITE to %s answered %s" % (to_user, d.final))
        return d

    def bye(self, d, sip_port, timeout=5):
        d.cseq += 1
        h = ["BYE %s SIP/2.0" % d.remote_uri,
             "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%x;rport" % (LO, self.port, random.getrandbits(48)),
             "Max-Forwards: 70", "From: " + d.from_hdr, "To: " + d.to_hdr, "Call-ID: " + d.callid,
             "CSeq: %d BYE" % d.cseq, "Content-Length: 0", "", ""]
        self.send("\r\n".join(h), (LO, sip_port))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                m = self.resp.get(timeout=0.2)
            except queue.Empty:
                continue
            if m["method"] == "BYE" and m["hdr"].get("call-id") == d.callid:
                return m["code"]
        raise Fail("no answer to BYE")

    def wait_dialog(self, seen, timeout=10):
        """The first dialog an INVITE created that is not in SEEN (callee
        side)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                for cid, d in self.dialogs.items():
                    if cid not in seen and d.invite is not None and d.answered.is_set():
                        return d
            time.sleep(0.02)
        raise Fail("the callee got no INVITE")

    def close(self):
        self.halt = True
        self.join(2)
        self.sock.close()
        for d in self.dialogs.values():
            d.party.close()


# --------------------------------------------------------------------------
# media: the 4-stream clip, or a plain PCMU tick, both ways; counts received

class Pump(threading.Thread):
    """FLOWS: [(party, key, [(t, payload)])]; sends each payload at t from
    party.socks[key] to party.remote[key]. Counts what every party's
    sockets receive (party.rx)."""

    def __init__(self, flows, parties):
        threading.Thread.__init__(self, daemon=True)
        self.items = sorted(((t, p, k, pl) for p, k, pk in flows for t, pl in pk),
                            key=lambda x: x[0])
        self.parties = parties
        self.done = threading.Event()
        self.sent = 0

    def _drain(self):
        for p in self.parties:
            for k, s in p.socks.items():
                while True:
                    try:
                        s.recv(65535)
                        p.rx[k] += 1
                    except (BlockingIOError, OSError):
                        break

    def run(self):
        t0 = time.monotonic()
        for t, p, k, pl in self.items:
            while time.monotonic() < t0 + t:
                self._drain()
                time.sleep(0.003)
            try:
                p.socks[k].sendto(pl, p.remote[k])
                self.sent += 1
            except OSError:
                pass
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            self._drain()
            time.sleep(0.01)
        self.done.set()


def tick(seconds, ssrc):
    out, seq, ts = [], random.getrandbits(16), random.getrandbits(32)
    for i in range(int(seconds * 50)):
        out.append((i * 0.02, tt.rtp_packet((seq + i) & 0xFFFF, (ts + 160 * i) & 0xFFFFFFFF,
                                            ssrc, b"\xff" * 160)))
    return out


def check_flow(caller, callee, secs=1.5):
    """Both parties' audio reaches the other one through tally-media."""
    for p in (caller, callee):
        p.rx = {k: 0 for k in p.socks}
    pump = Pump([(caller, "a", tick(secs, 0x1111)), (callee, "a", tick(secs, 0x2222))],
                [caller, callee])
    pump.start()
    pump.done.wait(secs + 5)
    want = int(secs * 50 * 0.8)
    check(caller.rx["a"] >= want and callee.rx["a"] >= want,
          "RTP both ways: caller received %d, callee %d of %d" % (
              caller.rx["a"], callee.rx["a"], int(secs * 50)))
    return caller.rx["a"], callee.rx["a"]


def clip_flows(pcap, caller, callee):
    pkts, _info = rt.read_pcap(pcap)
    base = min(p.dport for p in pkts)
    t0 = min(p.ts for p in pkts)
    keys = {0: (caller, "a"), 1: (caller, "ar"), 2: (caller, "v"), 3: (caller, "vr"),
            4: (callee, "a"), 5: (callee, "ar"), 6: (callee, "v"), 7: (callee, "vr")}
    flows = {}
    for p in pkts:
        off = p.dport - base
        if off in keys:
            flows.setdefault(off, []).append((p.ts - t0, p.payload))
    return [(keys[o][0], keys[o][1], f) for o, f in flows.items()]


# --------------------------------------------------------------------------
# events

class Events(threading.Thread):
    def __init__(self, port):
        threading.Thread.__init__(self, daemon=True)
        self.ws = WsClient(port, "/api/v1/events", TOKEN)
        self.events = []
        self.arrival = []
        self.lock = threading.Lock()
        self.start()

    def run(self):
        while True:
            try:
                m = self.ws.recv(3600)
            except Exception:
                return
            if m is None:
                return
            with self.lock:
                self.events.append(json.loads(m))
                self.arrival.append(time.time())

    def of(self, rid):
        with self.lock:
            return [e for e in self.events if e.get("recording_id") == rid]

    def names(self, rid):
        return [e["event"] for e in self.of(rid)]

    def wait(self, rid, names, timeout=15):
        def have():
            got = self.names(rid)
            return all(n in got for n in names)
        wait_until(have, timeout, "events %s of %s (got %s)" % (names, rid, self.names(rid)))

    def call_events(self, cid):
        with self.lock:
            return [e for e in self.events if e.get("call", {}).get("id") == cid or
                    e.get("call_id") == cid]


# --------------------------------------------------------------------------
# a fake recorder (SRS) over UDP that answers and then sends BYE

class FakeSrs(threading.Thread):
    def __init__(self):
        threading.Thread.__init__(self, daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LO, 0))
        self.port = self.sock.getsockname()[1]
        self.media = []
        self.invite = None
        self.acked = threading.Event()
        self.bye_answer = queue.Queue()
        self.start()

    def run(self):
        while True:
            try:
                data, src = self.sock.recvfrom(65535)
            except OSError:
                return
            m = parse(data)
            if not m:
                continue
            if m["method"] == "INVITE" and m["code"] is None:
                self.invite, self.src = m, src
                self.tag = "srs%x" % random.getrandbits(32)
                n = len(re.findall(r"^m=", self.sdp_part(m), re.M))
                lines = ["v=0", "o=srs 1 1 IN IP4 %s" % LO, "s=-", "c=IN IP4 %s" % LO, "t=0 0"]
                for i, kind in enumerate(re.findall(r"^m=(\w+)", self.sdp_part(m), re.M)):
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    s.bind((LO, 0))
                    self.media.append(s)
                    lines += ["m=%s %d RTP/AVP %s" % (kind, s.getsockname()[1],
                                                      "0" if kind == "audio" else "96"),
                              "a=recvonly"]
                assert n == len(self.media)
                body = "\r\n".join(lines) + "\r\n"
                h = ["SIP/2.0 200 OK"] + ["Via: " + v for k, v in m["hdrs"] if k == "via"]
                h += ["From: " + m["hdr"]["from"], "To: %s;tag=%s" % (m["hdr"]["to"], self.tag),
                      "Call-ID: " + m["hdr"]["call-id"], "CSeq: " + m["hdr"]["cseq"],
                      "Contact: <sip:srs@%s:%d>" % (LO, self.port),
                      "Content-Type: application/sdp", "Content-Length: %d" % len(body), "", body]
                self.sock.sendto("\r\n".join(h).encode(), src)
            elif m["method"] == "ACK":
                self.acked.set()
            elif m["code"] is not None and m["method"] == "BYE":
                self.bye_answer.put(m["code"])

    @staticmethod
    def sdp_part(m):
        body = m["body"]
        i = body.find("v=0")
        j = body.find("\r\n--", i)
        return body[i:j if j > 0 else None]

    def send_bye(self):
        m = self.invite
        contact = re.search(r"<([^>]+)>", m["hdr"]["contact"]).group(1)
        h = ["BYE %s SIP/2.0" % contact,
             "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%x;rport" % (LO, self.port, random.getrandbits(48)),
             "Max-Forwards: 70", "From: %s;tag=%s" % (m["hdr"]["to"], self.tag),
             "To: " + m["hdr"]["from"], "Call-ID: " + m["hdr"]["call-id"], "CSeq: 1 BYE",
             "Reason: SIP;cause=200;text=\"recorder going away\"",
             "Content-Length: 0", "", ""]
        self.sock.sendto("\r\n".join(h).encode(), self.src)

    def close(self):
        self.sock.close()
        for s in self.media:
            s.close()


# --------------------------------------------------------------------------

def disjoint_ports(rec, taken):
    """Make REC pick a media port block apart from every (lo, hi) in TAKEN
    (tally-media and other recorders bind their ports only when a call
    needs them, so the free-port check alone can hand out one block
    twice)."""
    orig = rec._pick_ports

    def pick():
        orig()
        for _ in range(100):
            if all(rec.port_max < lo or rec.port_min > hi for lo, hi in taken):
                break
            rec.port_min, rec.port_max = tt.free_port_block(rec.nports)
        else:
            raise Fail("no media port block apart from %r" % taken)
        taken.append((rec.port_min, rec.port_max))
    rec._pick_ports = pick
    return rec


def post(api_port, body, token=TOKEN):
    return api_request(api_port, "/api/v1/recordings", token=token, method="POST",
                       body=json.dumps(body) if not isinstance(body, (bytes, str)) else body)


def get_rec(api_port, rid):
    st, _, data = api_request(api_port, "/api/v1/recordings/" + rid, token=TOKEN)
    check(st == 200, "GET recording %s: %d %r" % (rid, st, data))
    return data


def find_call(api_port, caller_user, callid):
    st, _, data = api_request(api_port, "/api/v1/calls", token=TOKEN)
    for c in data["calls"]:
        if c["call_id"] == callid:
            return c
    raise Fail("call %s not listed: %r" % (callid, data))


def expect_error(st, data, want, what):
    check(st == want and isinstance(data, dict) and data.get("status") == want and
          data.get("error"), "%s: want %d JSON error, got %d %r" % (what, want, st, data))


def run(tmp):
    tally_sip = binary("TALLY_SIP", "src/sip/tally-sip")
    rt.need_tools("ffprobe")
    procs, uas, others = [], [], []
    media = None
    recs = []
    try:
        media = tt.Daemon(nports=200, name="tally-media")
        media.start()
        taken = [(media.port_min, media.port_max)]
        rec_av = disjoint_ports(rt.Recorder(tmp, name="recorder-av", log_level=6,
                                            storage=os.path.join(tmp, "storage-av")), taken).start()
        recs.append(rec_av)
        rec_audio = disjoint_ports(rt.Recorder(tmp, name="recorder-audio", default_media="audio",
                                               log_level=6,
                                               storage=os.path.join(tmp, "storage-audio")),
                                   taken).start()
        recs.append(rec_audio)
        pcap, _desc = rt.make_pcap(tmp, 5)

        callee = Ua("2000", "VP8")
        caller = Ua("1000", "H264")
        uas += [callee, caller]
        sip_port, api_port = tt.free_port(), tt.free_port()
        dead_tcp = tt.free_port()
        av_uri = "sip:srs@%s:%d" % (LO, rec_av.sip_port)
        sip = Proc("tally-sip", [
            tally_sip, "--config-file=none", "--foreground", "--log-level=7",
            "--sip-listen=%s:%d" % (LO, sip_port),
            "--media-servers=%s:%d" % (LO, media.ng_port),
            "--api-listen=%s:%d" % (LO, api_port), "--api-token=" + TOKEN,
            "--recorders=sip:srs@%s:%d;transport=tcp, %s" % (LO, dead_tcp, av_uri),
            "--recorder-timeout-ms=2000", "--recorder-options-secs=0",
            "--route=2xxx sip:${user}@%s:%d" % (LO, callee.port)], tmp)
        procs.append(sip)

        def api_up():
            if not sip.alive():
                raise Fail("tally-sip exited with %s\n%s" % (sip.proc.returncode, sip.log()))
            try:
                return api_request(api_port, "/api/v1/health", token=TOKEN)[0] == 200
            except OSError:
                return False
        wait_until(api_up, 10, "tally-sip's API")
        ev = Events(api_port)
        time.sleep(0.2)

        def new_call(to="2000"):
            seen = set(callee.dialogs)
            d = caller.call(sip_port, to)
            dd = callee.wait_dialog(seen)
            c = find_call(api_port, "1000", d.callid)
            return d, dd, c

        # ---------------- (a) audio+video, failover, files ----------------
        d, dd, call = new_call()
        t_post = time.time()
        st, hdrs, r = post(api_port, {"call": call["id"], "media": "audio+video"})
        check(st == 201, "start: want 201, got %d %r" % (st, r))
        rid = r["id"]
        check(r["call"] == call["id"] and r["media"] == "audio+video" and
              r["audio"]["state"] in ("requested", "offered") and
              r["video"]["state"] in ("requested", "offered"), "start reply %r" % r)
        ev.wait(rid, ["recording.audio.started", "recording.video.started"])
        evs = {e["event"]: e for e in ev.of(rid)}
        lat = [evs[n]["time_ms"] / 1000.0 - t_post for n in
               ("recording.audio.started", "recording.video.started")]
        for n in ("recording.audio.started", "recording.video.started"):
            e = evs[n]
            check(e["call_id"] == call["id"] and e["medium"] == n.split(".")[1] and
                  e["recorder"] == av_uri and isinstance(e["time_ms"], int) and
                  e["time"].endswith("Z"), "event fields %r" % e)
        g = get_rec(api_port, rid)
        check(g["audio"]["state"] == "started" and g["video"]["state"] == "started" and
              g["recorder"] == av_uri and g["siprec_call_id"] and g["to_tag"] and
              g["state"] == "active" and len(g["streams"]) == 4 and
              sorted(g["audio"]["labels"] + g["video"]["labels"]) == [1, 2, 3, 4] and
              g["media_server"], "GET recording %r" % g)
        check("tcp" in sip.log(400) and re.search(r"trying the next recorder", sip.log(400)),
              "no failover from the dead recorder in the log")
        ok("(a) 201, audio.started + video.started after failover to %s (POST -> started: "
           "%.0f / %.0f ms)" % (av_uri, lat[0] * 1000, lat[1] * 1000))
        st, _, r2 = post(api_port, {"call": call["id"], "media": "audio+video"})
        check(st == 200 and r2["id"] == rid, "same media again: want 200 same id, %d %r" % (st, r2))
        st, _, r3 = post(api_port, {"call": call["id"], "media": "audio"})
        check(st == 409 and r3.get("recording", {}).get("id") == rid and r3.get("error"),
              "other media: want 409 with the recording, %d %r" % (st, r3))
        st, _, lst = api_request(api_port, "/api/v1/recordings", token=TOKEN)
        check(st == 200 and [x["id"] for x in lst["recordings"]] == [rid], "list %r" % lst)
        ok("(a) second start: same media 200 same id, other media 409; list shows it")

        pump = Pump(clip_flows(pcap, d.party, dd.party), [d.party, dd.party])
        pump.start()
        check(pump.done.wait(30), "the media pump did not finish")
        check(d.party.rx["a"] > 100 and dd.party.rx["a"] > 100 and d.party.rx["v"] > 20 and
              dd.party.rx["v"] > 20, "media both ways: caller %r callee %r" % (d.party.rx, dd.party.rx))
        rows = rec_av.api.by_call_id(g["siprec_call_id"])
        check(len(rows) == 1, "recorder sessions for %s: %r" % (g["siprec_call_id"], rows))
        det = rec_av.api.recording(rows[0]["id"])
        sj = det.get("session", det)
        streams = sj.get("streams", [])
        check(len(streams) == 4 and all(s.get("accepted") for s in streams),
              "recorder streams: %r" % streams)
        aors = sorted(p.get("aor") for p in sj.get("participants", []))
        check(aors == sorted(["sip:1000@%s:%d" % (LO, caller.port),
                              "sip:2000@%s:%d" % (LO, sip_port)]),
              "recorder participants' AORs %r" % aors)
        ok("(a) recorder: one session, 4 accepted streams, participants %s" % aors)

        caller.bye(d, sip_port)
        ev.wait(rid, ["recording.audio.stopped", "recording.video.stopped"])
        # call.ended comes in the same main-loop turn, maybe a frame later
        wait_until(lambda: "call.ended" in [e["event"] for e in ev.call_events(call["id"])],
                   5, "call.ended of %s" % call["id"])
        names = [e["event"] for e in ev.call_events(call["id"])]
        check(names.index("recording.audio.started") < names.index("recording.audio.stopped") <
              names.index("call.ended") and
              names.index("recording.video.stopped") < names.index("call.ended"),
              "event order: %r" % names)
        fin = rec_av.wait_final(g["siprec_call_id"], timeout=60)
        check(fin.get("state") == "complete", "recorder state %r" % fin.get("state"))
        folder = rec_av.find_session_dirs(g["siprec_call_id"])
        check(len(folder) == 1, "session folder %r" % folder)
        with open(os.path.join(folder[0], "session.json")) as f:
            sj = json.load(f)
        parts = [x for x in sj["files"] if x.get("kind") == "participant"]
        check(len(parts) == 2, "participant files %r" % sj["files"])
        for x in parts:
            kinds = sorted(k for k, _ in rt.probe_summary(rt.ffprobe(os.path.join(folder[0], x["name"]))))
            check(kinds == ["audio", "video"], "%s holds %r" % (x["name"], kinds))
        ok("(a) hang-up: audio.stopped, video.stopped before call.ended; files %s each "
           "with audio and video" % [x["name"] for x in parts])

        # ---------------- (b) audio only, UDP ----------------
        d, dd, call = new_call()
        st, _, r = post(api_port, {"call": call["id"], "media": "audio",
                                   "recorder": av_uri + ";transport=udp"})
        check(st == 201 and r["video"] is None, "audio start %d %r" % (st, r))
        rid_b = r["id"]
        ev.wait(rid_b, ["recording.audio.started"])
        g = get_rec(api_port, rid_b)
        rows = rec_av.api.by_call_id(g["siprec_call_id"])
        check(len(rows) == 1, "recorder sessions (b): %r" % rows)
        sj = rec_av.api.recording(rows[0]["id"])
        sj = sj.get("session", sj)
        kinds = [s.get("media") for s in sj.get("streams", [])]
        check(kinds == ["audio", "audio"], "(b) recorder got m= lines %r" % kinds)
        caller.bye(d, sip_port)
        ev.wait(rid_b, ["recording.audio.stopped"])
        time.sleep(0.3)
        check(not [n for n in ev.names(rid_b) if ".video." in n], "(b) video events %r" % ev.names(rid_b))
        check(re.search(r"INVITE to sip:srs@[^ ]*transport=udp \(UDP", sip.log(2000)),
              "(b) the INVITE did not go over UDP")
        ok("(b) audio only over UDP: recorder got %r, events %r" % (kinds, ev.names(rid_b)))

        # ---------------- (c) recorder policy audio only ----------------
        d, dd, call = new_call()
        aud_uri = "sip:srs@%s:%d;transport=tcp" % (LO, rec_audio.sip_port)
        st, _, r = post(api_port, {"call": call["id"], "media": "audio+video", "recorder": aud_uri})
        check(st == 201, "(c) start %d %r" % (st, r))
        rid_c = r["id"]
        ev.wait(rid_c, ["recording.audio.started", "recording.video.rejected"])
        names = ev.names(rid_c)
        check(names == ["recording.video.rejected", "recording.audio.started"] or
              names == ["recording.audio.started", "recording.video.rejected"],
              "(c) events %r" % names)
        rej = [e for e in ev.of(rid_c) if e["event"] == "recording.video.rejected"][0]
        check(rej.get("reason"), "(c) video.rejected without a reason %r" % rej)
        g = get_rec(api_port, rid_c)
        check(g["video"]["state"] == "rejected" and g["audio"]["state"] == "started" and
              [s["state"] for s in g["streams"] if s["type"] == "video"] == ["rejected", "rejected"],
              "(c) GET %r" % g)
        caller.bye(d, sip_port)
        ev.wait(rid_c, ["recording.audio.stopped"])
        time.sleep(0.3)
        check("recording.video.stopped" not in ev.names(rid_c), "(c) %r" % ev.names(rid_c))
        ok("(c) audio-only recorder: %r (reason %r)" % (ev.names(rid_c), rej["reason"]))

        # ---------------- (d) bad input, unreachable recorders ----------------
        d1, dd1, call1 = new_call("2000")
        d2, dd2, call2 = new_call("2000")
        st, _, r = post(api_port, {"call": "c999-nope", "media": "audio"})
        expect_error(st, r, 404, "unknown call")
        st, _, r = post(api_port, {"dn": "7777", "media": "audio"})
        expect_error(st, r, 404, "unknown dn")
        st, _, r = post(api_port, {"dn": "2000", "media": "audio"})
        expect_error(st, r, 409, "dn with two calls")
        st, _, r = post(api_port, {"call": call1["id"], "media": "video"})
        expect_error(st, r, 400, "bad media")
        st, _, r = post(api_port, {"call": call1["id"]})
        expect_error(st, r, 400, "no media")
        st, _, r = post(api_port, "not json")
        expect_error(st, r, 400, "not JSON")
        st, _, r = post(api_port, {"call": call1["id"], "media": "audio", "recorder": "http://x"})
        expect_error(st, r, 400, "bad recorder")
        st, _, r = post(api_port, {"call": call1["id"], "media": "audio"}, token=None)
        expect_error(st, r, 401, "no token")
        st, _, r = api_request(api_port, "/api/v1/recordings/r9-nope", token=TOKEN, method="DELETE")
        expect_error(st, r, 404, "DELETE unknown")
        st, _, r = api_request(api_port, "/api/v1/recordings/r9-nope", token=TOKEN)
        expect_error(st, r, 404, "GET unknown")
        ok("(d) 404 unknown call/dn, 409 dn with two calls, 400 bad media/body/recorder, "
           "401 no token, 404 unknown recording")
        dead2 = tt.free_port()
        st, _, r = post(api_port, {"call": call1["id"], "media": "audio+video",
                                   "recorder": "sip:srs@%s:%d;transport=tcp" % (LO, dead2)})
        check(st == 201, "(d) start to a dead recorder %d %r" % (st, r))
        rid_d1 = r["id"]
        dead3 = tt.free_port()
        st, _, r = post(api_port, {"call": call2["id"], "media": "audio",
                                   "recorder": "sip:srs@%s:%d;transport=udp" % (LO, dead3)})
        check(st == 201, "(d) start to a silent recorder %d %r" % (st, r))
        rid_d2 = r["id"]
        ev.wait(rid_d1, ["recording.audio.failed", "recording.video.failed"], timeout=10)
        ev.wait(rid_d2, ["recording.audio.failed"], timeout=10)
        reasons = [e["reason"] for e in ev.of(rid_d1) + ev.of(rid_d2)]
        check(all(reasons), "(d) .failed without reasons %r" % reasons)
        check(get_rec(api_port, rid_d1)["state"] == "ended", "(d) recording not ended")
        rx = check_flow(d1.party, dd1.party)
        check_flow(d2.party, dd2.party)
        ok("(d) unreachable recorders: .failed (%s); the calls' RTP flows both ways %r" % (
            "; ".join(reasons), rx))
        st, _, r = post(api_port, {"dn": "1000", "media": "audio"})
        expect_error(st, r, 409, "dn 1000 with two calls")
        caller.bye(d2, sip_port)
        wait_until(lambda: len(api_request(api_port, "/api/v1/calls", token=TOKEN)[2]["calls"]) == 1,
                   5, "the second call to end")
        srs = FakeSrs()
        others.append(srs)
        st, _, r = post(api_port, {"dn": "2000", "media": "audio+video",
                                   "recorder": "sip:srs@%s:%d;transport=udp" % (LO, srs.port)})
        check(st == 201 and r["call"] == call1["id"], "(d) start by dn %d %r" % (st, r))
        rid_e = r["id"]
        ok("(d) start by DN found call %s" % call1["id"])

        # ---------------- (e) the recorder sends BYE ----------------
        ev.wait(rid_e, ["recording.audio.started", "recording.video.started"])
        inv = srs.invite
        check("siprec" in inv["hdr"].get("require", ""), "(e) Require %r" % inv["hdr"].get("require"))
        check("+sip.src" in inv["hdr"].get("contact", ""), "(e) Contact %r" % inv["hdr"].get("contact"))
        check(inv["hdr"].get("content-type", "").startswith("multipart/mixed"),
              "(e) Content-Type %r" % inv["hdr"].get("content-type"))
        body = inv["body"]
        check(re.search(r"Content-Type: application/rs-metadata\+xml\r\n"
                        r"Content-Disposition: recording-session", body),
              "(e) no metadata part with disposition recording-session")
        check("sip:1000@%s:%d" % (LO, caller.port) in body and "sip:2000@" in body and
              d1.callid in body and "<send>" in body and "<recv>" in body,
              "(e) metadata lacks AORs, the recorded Call-ID or send/recv:\n" + body[-1500:])
        srs.send_bye()
        check(srs.bye_answer.get(timeout=5) == 200, "(e) our BYE not answered 200")
        ev.wait(rid_e, ["recording.audio.failed", "recording.video.failed"])
        f = [e for e in ev.of(rid_e) if e["event"].endswith(".failed")]
        check(all(e["reason"] == "session ended by the recorder" for e in f), "(e) %r" % f)
        check(get_rec(api_port, rid_e)["state"] == "ended", "(e) state")
        rx = check_flow(d1.party, dd1.party)
        st, _, c = api_request(api_port, "/api/v1/calls/" + call1["id"], token=TOKEN)
        check(st == 200 and c["state"] == "answered", "(e) the call %d %r" % (st, c))
        ok("(e) recorder BYE: %r; the call is answered and its RTP flows %r" % (ev.names(rid_e), rx))
        caller.bye(d1, sip_port)

        # ---------------- shutdown and logs ----------------
        rc = sip.stop(signal.SIGTERM, timeout=10)
        check(rc == 0, "tally-sip exited %s on SIGTERM\n%s" % (rc, sip.log(40)))
        for name, text in [("tally-sip", open(sip.logpath, "rb").read().decode("utf-8", "replace")),
                           ("tally-media", open(media.logpath, "rb").read().decode("utf-8", "replace")),
                           ("recorder-av", rec_av.log_text()), ("recorder-audio", rec_audio.log_text())]:
            for s in SANITIZER:
                check(s not in text, "%s: sanitizer report (%s)" % (name, s))
        ok("tally-sip exited 0; no sanitizer reports in any log")
    except Exception:
        dump_logs(procs, recs)
        raise
    finally:
        stop_all(procs, uas, others, recs, media)


def dump_logs(procs, recs, n=60):
    """After a failure: the tail of every daemon's log."""
    for p in procs:
        print("# --- %s log:\n%s" % (p.name, p.log(n)), flush=True)
    for r in recs:
        print("# --- %s log:\n%s" % (r.name, r.log_tail(n // 2)), flush=True)


def stop_all(procs, uas=(), others=(), recs=(), media=None):
    """Stop what a test started (by PID, newest first) and close its sockets."""
    for p in reversed(procs):
        p.stop(timeout=5)
    for u in uas:
        u.close()
    for o in others:
        o.close()
    for r in recs:
        r.stop()
    if media is not None:
        media.stop()


def script_main(run, prefix):
    """Run RUN(tmp) in a new work folder; PASS removes it, FAIL keeps it."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        run(tmp)
    except (Fail, rt.Fail, AssertionError) as e:
        print("FAIL: %s (logs in %s)" % (e, tmp), flush=True)
        return 1
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    print("PASS", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(script_main(run, "tally-sip-record-"))
