#!/usr/bin/env python3
"""Interop test, second variant: two baresip phones call each other through
Kamailio (rtpengine module) with the media daemon under test anchoring media.

    baresip A (caller, 440 Hz tone, VP8 fakevideo) --SIP--> kamailio --SIP--> baresip B
        (auto-answer, 880 Hz tone, VP8 fakevideo); all RTP via the media daemon.

Driven over ctrl_tcp (netstring JSON). Asserts like a user would:
  * the call is established on both phones and closed on both after A hangs up;
  * SIP went only through kamailio; kamailio's offer/answer/delete succeeded;
  * all four RTP streams (PCMU + VP8, both directions) went endpoint -> daemon
    -> other endpoint, payload types as negotiated, >= 97 % of the packets
    arrive on the second hop with identical payloads;
  * each phone *heard* the other's tone (sndfile dec.wav: 880 Hz at A, 440 Hz at B)
    and *saw* video (snapshot_recv PNG, 352x288);
  * ng query during the call shows packets on every stream; the call is gone after BYE.
Same environment and exit codes as interop_kamailio.py (shared helpers).
"""

import glob
import json
import math
import os
import socket
import struct
import sys
import time
import wave

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_kamailio as ik  # noqa: E402
from interop_kamailio import check, log, LOCAL  # noqa: E402

BARESIP_MODULES = "/usr/lib/baresip/modules"
CALL_SECS = 6.0
TONES = {"a": 440, "b": 880}


def write_tone(path, freq, secs=30, rate=8000):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * i / rate)))
                               for i in range(secs * rate)))


def tone_freq(path):
    """Frequency estimated from zero crossings over the 20 ms windows that carry sound."""
    with wave.open(path, "rb") as w:
        rate, ch, sw, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
        raw = w.readframes(n)
    if sw != 2 or n == 0:
        return 0.0, 0.0
    s = struct.unpack("<%dh" % (len(raw) // 2), raw)[::ch]
    win = rate // 50
    crossings, kept = 0, 0
    for i in range(0, len(s) - win, win):
        x = s[i:i + win]
        if math.sqrt(sum(v * v for v in x) / win) < 500:
            continue
        kept += win
        crossings += sum(1 for j in range(1, win) if (x[j - 1] < 0) != (x[j] < 0))
    return (crossings / 2.0 / (kept / rate) if kept else 0.0), kept / rate


def png_size(path):
    try:
        with open(path, "rb") as f:
            h = f.read(24)
    except OSError:
        return None
    if len(h) < 24 or h[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack("!II", h[16:24])


class Ctrl:
    """baresip ctrl_tcp client: netstring-framed JSON commands and events."""

    def __init__(self, port, name):
        self.name = name
        self.sock = socket.create_connection((LOCAL, port), timeout=2)
        self.buf = b""
        self.events = []
        self.n = 0

    def _read(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return
        if not data:
            raise ConnectionError("%s: ctrl_tcp closed" % self.name)
        self.buf += data
        while True:
            c = self.buf.find(b":")
            if c < 0:
                return
            n = int(self.buf[:c])
            if len(self.buf) < c + 1 + n + 1:
                return
            msg = json.loads(self.buf[c + 1:c + 1 + n])
            self.buf = self.buf[c + 2 + n:]
            self.events.append(msg)

    def cmd(self, command, params="", timeout=5):
        self.n += 1
        tok = "t%d" % self.n
        body = json.dumps({"command": command, "params": params, "token": tok}).encode()
        self.sock.sendall(b"%d:%s," % (len(body), body))
        end = time.time() + timeout
        while time.time() < end:
            for m in self.events:
                if m.get("response") and m.get("token") == tok:
                    self.events.remove(m)
                    return m
            self._read(0.2)
        return None

    def wait_event(self, etype, timeout):
        end = time.time() + timeout
        while time.time() < end:
            for m in self.events:
                if m.get("event") and m.get("type") == etype:
                    return m
            self._read(0.2)
        return None


def baresip_conf(d, sip_port, ctrl_port, rtp_lo, rtp_hi, wav, user, auto):
    os.makedirs(d)
    out = os.path.join(d, "out")
    os.makedirs(out)
    conf = """poll_method\t\tepoll
sip_listen\t\t{ip}:{sip}
net_interface\t\t{ip}
audio_player\t\taubridge,nil
audio_source\t\taufile,{wav}
audio_alert\t\taubridge,nil
video_source\t\tfakevideo,nil
video_display\t\tfakevideo,nil
video_size\t\t352x288
video_bitrate\t\t500000
video_fps\t\t25.00
rtp_ports\t\t{lo}-{hi}
rtcp_mux\t\tno
rtp_stats\t\tyes
module_path\t\t{mods}
module\t\t\tg711.so
module\t\t\taufile.so
module\t\t\taubridge.so
module\t\t\tsndfile.so
module\t\t\tvp8.so
module\t\t\tfakevideo.so
module\t\t\tsnapshot.so
module_tmp\t\tuuid.so
module_tmp\t\taccount.so
module_app\t\tcontact.so
module_app\t\tmenu.so
module_app\t\tctrl_tcp.so
ctrl_tcp_listen\t\t{ip}:{ctrl}
snd_path\t\t{out}
""".format(ip=LOCAL, sip=sip_port, ctrl=ctrl_port, lo=rtp_lo, hi=rtp_hi, wav=wav,
           mods=BARESIP_MODULES, out=out)
    with open(os.path.join(d, "config"), "w") as f:
        f.write(conf)
    with open(os.path.join(d, "accounts"), "w") as f:
        f.write('"%s" <sip:%s@%s:%d>;regint=0;%saudio_codecs=pcmu;video_codecs=vp8\n'
                % (user, user, LOCAL, sip_port, "answermode=auto;" if auto else ""))
    with open(os.path.join(d, "contacts"), "w") as f:
        f.write("")
    return out


def main():
    pf = ik.preflight(("kamailio", "baresip", "dumpcap"), ("kamailio.cfg",), True)
    if not pf:
        return 1
    if not os.path.exists(os.path.join(BARESIP_MODULES, "vp8.so")):
        ik.skip("baresip modules not installed")
    daemon, kamailio = pf
    NPORTS = 96
    base = ik.pick_block(NPORTS, tcp=range(2, 8))     # baresip SIP TCP/TLS, ctrl_tcp
    P = {"kam": base, "a": base + 2, "b": base + 4,         # baresip: TLS on sip+1
         "a_ctrl": base + 6, "b_ctrl": base + 7, "ng": base + 8,
         "a_rtp": (base + 16, base + 31), "b_rtp": (base + 32, base + 47),
         "rtp_min": base + 48, "rtp_max": base + NPORTS - 1}
    log("target %s (%s); ports %d-%d: %s" % (ik.TARGET, daemon, base, base + NPORTS - 1, P))
    return ik.harness(lambda tmp: run(tmp, P, daemon, kamailio, base, NPORTS),
                      ("daemon", "kamailio", "baresip_a", "baresip_b"))


def tcp_open(port, proc, secs=10):
    end = time.time() + secs
    while time.time() < end and proc.poll() is None:
        try:
            socket.create_connection((LOCAL, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def run(tmp, P, daemon, kamailio, base, nports):
    in_range = lambda port: P["rtp_min"] <= port <= P["rtp_max"]
    ng = ik.start_daemon(tmp, P, daemon)
    if not ng:
        return 1
    r = ik.start_capture(tmp, base, base + nports - 1)
    if not r:
        return 1
    dc, cap = r
    k = ik.start_kamailio(tmp, P, kamailio, "sip:%s:%d" % (LOCAL, P["b"]))
    if not k:
        return 1

    procs, ctrl, outs = {}, {}, {}
    for who in ("b", "a"):
        wav = os.path.join(tmp, "tone%d.wav" % TONES[who])
        write_tone(wav, TONES[who])
        d = os.path.join(tmp, "baresip_" + who)
        outs[who] = baresip_conf(d, P[who], P[who + "_ctrl"], P[who + "_rtp"][0], P[who + "_rtp"][1],
                                 wav, who, who == "b")
        procs[who] = ik.start("baresip_" + who, ["baresip", "-f", d], tmp, cwd=d)
        if not check(tcp_open(P[who + "_ctrl"], procs[who]), "baresip %s up (ctrl_tcp %d)"
                     % (who.upper(), P[who + "_ctrl"])):
            return 1
        ctrl[who] = Ctrl(P[who + "_ctrl"], who)

    try:
        r = ctrl["a"].cmd("dial", "sip:b@%s:%d" % (LOCAL, P["kam"]))
        check(r is not None and r.get("ok"), "A: dial accepted (%r)" % (r,))
        est = {w: ctrl[w].wait_event("CALL_ESTABLISHED", 10) for w in ("a", "b")}
        check(all(est.values()), "call established on A and B")
        t_est = time.time()
        callid = None
        lr = ng.req("list")
        if lr and lr.get("calls"):
            callid = lr["calls"][0]
        check(callid is not None, "ng list shows the call (%r)" % (callid,))
        time.sleep(2.0)
        for w in ("a", "b"):
            r = ctrl[w].cmd("snapshot_recv", os.path.join(outs[w], "recv.png"))
            check(r is not None and r.get("ok"), "%s: snapshot_recv accepted" % w.upper())
        time.sleep(max(0.0, CALL_SECS - 1.5 - (time.time() - t_est)))
        query = ng.req("query", **{"call-id": callid}) if callid else None
        check(query is not None and query.get("result") == "ok", "ng query during the call ok")
        time.sleep(max(0.0, CALL_SECS - (time.time() - t_est)))
        r = ctrl["a"].cmd("hangup")
        check(r is not None and r.get("ok"), "A: hangup accepted")
        closed = {w: ctrl[w].wait_event("CALL_CLOSED", 10) for w in ("a", "b")}
        check(all(closed.values()), "call closed on A and B")
        time.sleep(0.5)
        for w in ("a", "b"):
            ctrl[w].cmd("quit", timeout=2)
    except (OSError, ConnectionError, ValueError) as e:
        check(False, "baresip control: %s" % e)
        callid, query = locals().get("callid"), None
    for w in ("a", "b"):
        check(ik.stop(procs[w], wait=8) is not None, "baresip %s stopped" % w.upper())

    lr = ng.req("list")
    check(lr is not None and callid not in (lr.get("calls") or []), "ng list after BYE does not show the call")
    if callid:
        qr = ng.req("query", **{"call-id": callid})
        check(qr is not None and qr.get("result") == "error", "ng query after BYE: error")
    ik.finish_kamailio(tmp, k, dc)

    # ---- what the users heard and saw
    for w, other in (("a", "b"), ("b", "a")):
        decs = sorted(glob.glob(os.path.join(outs[w], "*-dec.wav")))
        if check(len(decs) >= 1, "%s: received audio recorded (%s)" % (w.upper(), decs)):
            f, secs = tone_freq(decs[-1])
            want = TONES[other]
            check(abs(f - want) < 0.1 * want and secs > 0.6 * CALL_SECS,
                  "%s hears %d Hz from %s: %.0f Hz over %.1f s of sound" % (w.upper(), want, other.upper(), f, secs))
        sz = png_size(os.path.join(outs[w], "recv.png"))
        check(sz == (352, 288), "%s sees %s's video: snapshot %s" % (w.upper(), other.upper(), sz))

    analyse(cap, P, in_range, callid, query)
    if ik.failures:
        log("RESULT: FAIL (%d): %s" % (len(ik.failures), "; ".join(ik.failures)))
        return 1
    log("RESULT: PASS")
    return 0


def analyse(cap, P, in_range, callid, query):
    name = {P["kam"]: "kamailio", P["a"]: "a", P["b"]: "b"}
    sip, rtp, rtcp = [], {}, {}
    for t, sp, dp, p in ik.read_pcap(cap):
        if sp in name or dp in name:
            m = ik.sip_parse(p)
            if m and "probe-" not in m["hdr"].get("call-id", ""):
                m.update(sp=sp, dp=dp)
                sip.append(m)
            continue
        if sp == P["ng"] or dp == P["ng"]:
            continue
        r = ik.rtp_parse(p)
        if r:
            rtp.setdefault((sp, dp), []).append((t,) + r)
        elif len(p) >= 8 and p[0] >> 6 == 2 and 200 <= p[1] <= 204:
            rtcp[(sp, dp)] = rtcp.get((sp, dp), 0) + 1
    flows = {(name.get(m["sp"]), name.get(m["dp"]), m["kind"], m["cseq"].split()[-1]) for m in sip}
    for a, b, kind, meth in [("a", "kamailio", "INVITE", "INVITE"), ("kamailio", "b", "INVITE", "INVITE"),
                             ("b", "kamailio", "200", "INVITE"), ("kamailio", "a", "200", "INVITE"),
                             ("a", "kamailio", "ACK", "ACK"), ("kamailio", "b", "ACK", "ACK"),
                             ("a", "kamailio", "BYE", "BYE"), ("kamailio", "b", "BYE", "BYE"),
                             ("b", "kamailio", "200", "BYE"), ("kamailio", "a", "200", "BYE")]:
        check((a, b, kind, meth) in flows, "SIP %s (%s) %s -> %s" % (kind, meth, a, b))
    check(not any({f[0], f[1]} == {"a", "b"} for f in flows), "no SIP directly between A and B")

    def sdp(a, b, kind):
        for m in sip:
            if name.get(m["sp"]) == a and name.get(m["dp"]) == b and m["kind"] == kind \
                    and m["cseq"].endswith("INVITE") and "m=" in m["body"]:
                return m["body"]
        return ""
    own = {"a": ik.sdp_media(sdp("a", "kamailio", "INVITE"))[0],
           "b": ik.sdp_media(sdp("b", "kamailio", "200"))[0]}
    told = {"b": ik.sdp_media(sdp("kamailio", "b", "INVITE")), "a": ik.sdp_media(sdp("kamailio", "a", "200"))}
    for w in ("a", "b"):
        media, conn = told[w]
        check(conn == LOCAL and [m[0] for m in media] == ["audio", "video"]
              and all(in_range(m[1]) for m in media),
              "SDP to %s points at the daemon: c=%s %s" % (w.upper(), conn, [(m[0], m[1]) for m in media]))
    check(len(own["a"]) == 2 and len(own["b"]) == 2 and all(m[1] for m in own["a"] + own["b"]),
          "both phones offered/answered audio + video (%s / %s)" % (own["a"], own["b"]))
    for (sp, dp), pk in sorted(rtp.items()):
        log("      rtp %5d -> %5d  %4d pkts  pt %s" % (sp, dp, len(pk), sorted({x[1] for x in pk})))
    if len(own["a"]) != 2 or len(own["b"]) != 2:
        return
    ep = {m[1] for m in own["a"] + own["b"]}
    check(sum(len(v) for (sp, dp), v in rtp.items() if sp in ep and dp in ep) == 0,
          "no RTP directly between the phones")
    vpt = own["b"][1][2][0] if own["b"][1][2] else None
    for snd, rcv in (("a", "b"), ("b", "a")):
        for idx, typ in ((0, "audio"), (1, "video")):
            src, dst = own[snd][idx][1], own[rcv][idx][1]
            what = "%s %s -> %s" % (typ, snd.upper(), rcv.upper())
            h1 = [v for k, v in rtp.items() if k[0] == src and in_range(k[1])]
            h2 = [v for k, v in rtp.items() if in_range(k[0]) and k[1] == dst]
            if not check(len(h1) == 1 and len(h2) == 1, "%s: one leg each way via the daemon (%d/%d)"
                         % (what, len(h1), len(h2))):
                continue
            p1, p2 = h1[0], h2[0]
            ratio = len(p2) / len(p1)
            check(len(p1) >= (5 if typ == "video" else 200), "%s: hop 1 carries %d pkts" % (what, len(p1)))
            check(ik.MIN_RATIO <= ratio <= 1.0, "%s: hop 2 %d / hop 1 %d pkts (%.3f)" % (what, len(p2), len(p1), ratio))
            want_pt = 0 if typ == "audio" else vpt
            pts = {x[1] for x in p1} | {x[1] for x in p2}
            check(pts == {want_pt}, "%s: payload type %s (negotiated %s)" % (what, sorted(pts), want_pt))
            s1 = {x[4] for x in p1}
            check(all(x[4] in s1 for x in p2), "%s: hop-2 payloads identical to hop-1 payloads" % what)
            # RTCP (baresip: rtcp_mux no, RTP port + 1, first report after ~1-5 s)
            c1 = sum(n for k, n in rtcp.items() if k[0] == src + 1 and in_range(k[1]))
            c2 = sum(n for k, n in rtcp.items() if in_range(k[0]) and k[1] == dst + 1)
            check(c1 >= 1 and c2 >= 1, "%s: RTCP relayed (%d sent, %d delivered)" % (what, c1, c2))

    if query and query.get("result") == "ok":
        seen = []
        for td in (query.get("tags") or {}).values():
            for m in td.get("medias", []) if isinstance(td, dict) else []:
                seen.append((m.get("type"), (m.get("streams") or [{}])[0].get("stats", {}).get("packets", 0)))
        log("      query during call: %s" % seen)
        check(len(seen) == 4 and all(n > 0 for _, n in seen),
              "query: packets on every stream of both parties")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        ik.stop_all()
        sys.exit(1)
