#!/usr/bin/env python3
"""tally-sip end to end with two real phones: baresip alice and baresip bob
register at tally-sip (digest auth), alice calls bob (auto-answer) with audio
+ video, once with H.264 and once with VP8. tally-sip anchors all media on
tally-media over ng.

    baresip alice (440 Hz tone, testsrc video) --SIP--> tally-sip --SIP--> baresip bob
        (registered, auto-answer, 880 Hz tone, smptebars video)
    all RTP/RTCP: phone <-> tally-media <-> phone

Asserts, per codec, like a user would:
  * both phones registered (REGISTER -> 401 -> REGISTER with credentials -> 200
    from tally-sip in the capture, baresip's reginfo says OK), and un-register
    on quit is answered 200;
  * the call is established on both phones, closed on both after alice hangs up;
  * all SIP went through tally-sip, nothing phone to phone;
  * each phone heard the other's tone (baresip's sndfile dec.wav: 880 Hz at
    alice, 440 Hz at bob) and saw the other's video (snapshot_recv PNG,
    352x288 by ffprobe, not a uniform picture);
  * the SDPs the phones got point at tally-media, the negotiated video codec is
    the one asked for, every RTP stream (audio and video, both directions) went
    phone -> tally-media -> other phone with >= 97 % of the packets and
    identical payloads, and each phone sent only to tally-media's ports and
    received only from them (capture of the test's port block);
  * ng list/query while the call is up show the call and packets on all four
    streams; after the BYE the call is gone (list, query -> error), and
    tally-sip's offer/answer/delete were answered ok.

Environment: TALLY_SIP, TALLY_MEDIA (binaries), TALLY_DATA, TALLY_KEEP=1 (keep
the temporary directory), TALLY_NG_TARGET=rtpengine (media by rtpengine),
TALLY_BARESIP_CODECS (default "h264,vp8"), TALLY_BARESIP_STATIC=1 (no
registration: bob reached by a static route; for debugging only).
Exit codes: 0 pass, 1 fail, 77 skipped (baresip/dumpcap/ffprobe missing or not root).
Stdlib only.
"""

import glob
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interop_kamailio as ik  # noqa: E402
import interop_kamailio_baresip as ikb  # noqa: E402
from interop_kamailio import check, log, LOCAL  # noqa: E402

BARESIP_MODULES = "/usr/lib/baresip/modules"
TEMPLATES = os.path.join(ik.DATA, "baresip")
CALL_SECS = 6.0
USERS = {"a": ("alice", "secretA"), "b": ("bob", "secretB")}
TONES = {"a": 440, "b": 880}
VIDEO_SRC = {"a": "testsrc", "b": "smptebars"}      # lavfi sources, different per phone
CODEC_NAME = {"h264": "H264", "vp8": "VP8"}
STATIC = os.environ.get("TALLY_BARESIP_STATIC") == "1"
NPORTS = 128


def tally_sip_binary():
    p = os.environ.get("TALLY_SIP") or os.path.join(ik.SRC, "build", "src", "sip", "tally-sip")
    return p if os.access(p, os.X_OK) else None


def fill(template, values):
    with open(os.path.join(TEMPLATES, template)) as f:
        text = f.read()
    for k, v in values:
        text = text.replace("@%s@" % k, str(v))
    return text


def make_video(tmp, who):
    """A short moving H.264 mp4 (video only) for baresip's avformat source, or None."""
    path = os.path.join(tmp, "video_%s.mp4" % who)
    if not os.path.exists(path):
        try:
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                            "-i", "%s=size=352x288:rate=25" % VIDEO_SRC[who], "-t", "4",
                            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                            "-g", "25", path], check=True, timeout=60,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None
    return path


def first_frame(video):
    """Frame 0 of a test video as PNG (reference for the snapshots), or None."""
    png = video[:-4] + "_f0.png"
    try:
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", video, "-frames:v", "1", png],
                       check=True, timeout=30, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return png


def psnr(a, b):
    """Average PSNR (dB) between two pictures of the same size (ffmpeg psnr filter), or None."""
    try:
        err = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", a, "-i", b, "-lavfi", "psnr",
                              "-f", "null", "-"], capture_output=True, text=True, timeout=20).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    for ln in err.splitlines():
        if "PSNR" in ln and "average:" in ln:
            v = ln.split("average:")[1].split()[0]
            return 100.0 if v == "inf" else float(v)
    return None


def baresip_conf(d, who, P, wav, video, codec):
    os.makedirs(d)
    out = os.path.join(d, "out")
    os.makedirs(out)
    user, password = USERS[who]
    conf = fill("config.in", [
        ("IP", LOCAL), ("SIP_PORT", P[who]), ("CTRL_PORT", P[who + "_ctrl"]),
        ("RTP_MIN", P[who + "_rtp"][0]), ("RTP_MAX", P[who + "_rtp"][1]), ("WAV", wav),
        ("VIDEO_SOURCE", ("avformat," + video) if video else "fakevideo,nil"),
        ("MODULES", BARESIP_MODULES), ("OUT", out)])
    acc = fill("accounts.in", [
        ("USER", user), ("IP", LOCAL), ("REGISTRAR_PORT", P["sip"]), ("PASSWORD", password),
        ("REGINT", 0 if STATIC else 60), ("ANSWERMODE", "answermode=auto;" if who == "b" else ""),
        ("VIDEO_CODEC", codec)])
    if STATIC:                          # bob's AOR is his own address, no registrar
        acc = acc.replace("@%s:%d>" % (LOCAL, P["sip"]), "@%s:%d>" % (LOCAL, P[who]))
    for name, text in (("config", conf), ("accounts", acc), ("contacts", "")):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return out


def sip_ready(port, proc, secs=10):
    """True once tally-sip answers an OPTIONS with 200."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((LOCAL, 0))
    s.settimeout(0.3)
    end = time.time() + secs
    try:
        while time.time() < end and proc.poll() is None:
            lp = s.getsockname()[1]
            opt = ("OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK%d\r\n"
                   "From: <sip:probe@%s>;tag=p\r\nTo: <sip:%s:%d>\r\nCall-ID: probe-%d-%d\r\n"
                   "CSeq: 1 OPTIONS\r\nMax-Forwards: 5\r\nContent-Length: 0\r\n\r\n"
                   % (LOCAL, port, LOCAL, lp, random.randrange(1 << 30), LOCAL, LOCAL, port,
                      os.getpid(), random.randrange(1 << 30)))
            s.sendto(opt.encode(), (LOCAL, port))
            try:
                if s.recv(4096).startswith(b"SIP/2.0 200"):
                    return True
            except OSError:
                time.sleep(0.2)
    finally:
        s.close()
    return False


def ffprobe_size(path):
    try:
        out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                              "stream=width,height", "-of", "csv=p=0", path],
                             capture_output=True, text=True, timeout=20).stdout.strip()
        w, h = out.split(",")[:2]
        return int(w), int(h)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def picture_spread(path):
    """(min, max) luma of a PNG (ffmpeg signalstats) or None: a real picture is not uniform."""
    try:
        err = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", path, "-vf",
                              "signalstats,metadata=print", "-f", "null", "-"],
                             capture_output=True, text=True, timeout=20).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    vals = {}
    for ln in err.splitlines():
        for key in ("lavfi.signalstats.YMIN", "lavfi.signalstats.YMAX"):
            if key + "=" in ln:
                vals[key] = float(ln.split("=")[-1])
    if len(vals) != 2:
        return None
    return vals["lavfi.signalstats.YMIN"], vals["lavfi.signalstats.YMAX"]


def reg_ok(ctrl):
    r = ctrl.cmd("reginfo", timeout=2)
    data = (r or {}).get("data") or ""
    return "OK" in data, data.strip().replace("\x1b[32m", "").replace("\x1b[;m", "")


def main():
    for prog in ("baresip", "dumpcap", "ffprobe", "ffmpeg"):
        if not shutil.which(prog):
            ik.skip("%s not installed" % prog)
    if not os.path.exists(os.path.join(BARESIP_MODULES, "vp8.so")) or \
            not os.path.exists(os.path.join(BARESIP_MODULES, "avcodec.so")):
        ik.skip("baresip modules (baresip-core, baresip-ffmpeg) not installed")
    if os.geteuid() != 0:
        ik.skip("needs root (dumpcap on lo)")
    sipd = tally_sip_binary()
    if not sipd:
        log("FAIL  tally-sip binary not found (set TALLY_SIP)")
        return 1
    pf = ik.preflight(("baresip",), (), True)
    if not pf:
        return 1
    daemon = pf[0]
    codecs = [c for c in os.environ.get("TALLY_BARESIP_CODECS", "h264,vp8").split(",") if c]
    log("tally-sip %s, media %s (%s), codecs %s%s" % (sipd, ik.TARGET, daemon, codecs,
                                                      ", STATIC ROUTE MODE" if STATIC else ""))
    return ik.harness(lambda tmp: run_all(tmp, sipd, daemon, codecs),
                      ("daemon", "tally_sip", "baresip_a", "baresip_b"))


def run_all(tmp, sipd, daemon, codecs):
    t0 = time.time()
    videos = {w: make_video(tmp, w) for w in ("a", "b")}
    refs = {w: first_frame(v) if v else None for w, v in videos.items()}
    check(all(videos.values()) and all(refs.values()),
          "test videos generated with ffmpeg (%.1f s)" % (time.time() - t0))
    timing = []
    for codec in codecs:
        t1 = time.time()
        n0 = len(ik.failures)
        d = os.path.join(tmp, codec)
        os.mkdir(d)
        log("==== %s call" % CODEC_NAME[codec])
        run_case(d, sipd, daemon, codec, videos, refs)
        # logs of this case next to the harness' names, for the failure tail
        for name in ("daemon.log", "tally_sip.log", "baresip_a.log", "baresip_b.log", "dumpcap.log",
                     "cap.pcap"):
            src = os.path.join(tmp, name)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(d, name))
        timing.append("%s %.1f s%s" % (CODEC_NAME[codec], time.time() - t1,
                                        "" if len(ik.failures) == n0 else " (FAILED)"))
    log("      timing: %s" % ", ".join(timing))
    if ik.failures:
        log("RESULT: FAIL (%d): %s" % (len(ik.failures), "; ".join(ik.failures)))
        return 1
    log("RESULT: PASS")
    return 0


def run_case(tmp, sipd, daemon, codec, videos, refs):
    """One registration + call with the given video codec. Everything it starts is stopped
    before it returns (logs are written to the harness' directory, tmp's parent)."""
    top = os.path.dirname(tmp)
    base = ik.pick_block(NPORTS, tcp=(0, 2, 3, 4, 5, 6, 7))
    P = {"sip": base, "a": base + 2, "b": base + 4,          # baresip: TCP on sip, TLS on sip+1
         "a_ctrl": base + 6, "b_ctrl": base + 7, "ng": base + 8,
         "a_rtp": (base + 16, base + 31), "b_rtp": (base + 32, base + 47),
         "rtp_min": base + 48, "rtp_max": base + NPORTS - 1}
    log("ports %d-%d: %s" % (base, base + NPORTS - 1, P))
    mine = len(ik.started)

    def stop_case():
        for name, p in reversed(ik.started[mine:]):
            ik.stop(p, signal.SIGINT if name == "dumpcap" else signal.SIGTERM)
        del ik.started[mine:]
    try:
        res = call_case(top, tmp, P, sipd, daemon, codec, videos, refs, base)
    finally:
        stop_case()
    if res:
        analyse(*res)


def call_case(top, tmp, P, sipd, daemon, codec, videos, refs, base):
    ng = ik.start_daemon(top, P, daemon)
    if not ng:
        return None
    r = ik.start_capture(top, base, base + NPORTS - 1)
    if not r:
        return None
    dc, cap = r
    argv = [sipd, "--config-file=none", "--foreground", "--log-level=7",
            "--sip-listen=%s:%d" % (LOCAL, P["sip"]), "--media-servers=%s:%d" % (LOCAL, P["ng"]),
            "--api-listen=", "--realm=tally"]
    argv += ['--user=%s %s' % USERS[w] for w in ("a", "b")]
    if STATIC:
        argv.append("--route=bob sip:bob@%s:%d" % (LOCAL, P["b"]))
    sip = ik.start("tally_sip", argv, top)
    if not check(sip_ready(P["sip"], sip), "tally-sip answers OPTIONS on %s:%d" % (LOCAL, P["sip"])):
        return None

    procs, ctrl, outs = {}, {}, {}
    t_reg = time.time()
    for who in ("b", "a"):
        wav = os.path.join(tmp, "tone%d.wav" % TONES[who])
        ikb.write_tone(wav, TONES[who])
        d = os.path.join(tmp, "baresip_" + who)
        outs[who] = baresip_conf(d, who, P, wav, videos[who], codec)
        procs[who] = ik.start("baresip_" + who, ["baresip", "-f", d], top, cwd=d)
        if not check(ikb.tcp_open(P[who + "_ctrl"], procs[who]),
                     "baresip %s up (ctrl_tcp %d)" % (USERS[who][0], P[who + "_ctrl"])):
            return None
        ctrl[who] = ikb.Ctrl(P[who + "_ctrl"], USERS[who][0])

    callid, query, listed = None, None, None
    try:
        if not STATIC:
            regs = {}
            end = time.time() + 10
            while time.time() < end:
                regs = {w: reg_ok(ctrl[w]) for w in ("a", "b")}
                if all(ok for ok, _ in regs.values()):
                    break
                time.sleep(0.2)
            for w in ("a", "b"):
                check(regs[w][0], "%s registered at tally-sip (reginfo: %r)" % (USERS[w][0], regs[w][1]))
            log("      registration took %.2f s" % (time.time() - t_reg))
            if not all(ok for ok, _ in regs.values()):
                return None
        t_dial = time.time()
        r = ctrl["a"].cmd("dial", "sip:bob@%s:%d" % (LOCAL, P["sip"]))
        check(r is not None and r.get("ok"), "alice: dial sip:bob@tally-sip accepted (%r)" % (r,))
        est = {w: ctrl[w].wait_event("CALL_ESTABLISHED", 10) for w in ("a", "b")}
        if not check(all(est.values()), "call established on alice and bob (%.2f s after dial)"
                     % (time.time() - t_dial)):
            ctrl["a"].cmd("hangup")
            return None
        t_est = time.time()
        lr = ng.req("list")
        listed = (lr or {}).get("calls") or []
        callid = listed[0] if len(listed) == 1 else None
        check(callid is not None, "ng list during the call shows one call (%r)" % (listed,))
        time.sleep(2.0)
        for w in ("a", "b"):
            r = ctrl[w].cmd("snapshot_recv", os.path.join(outs[w], "recv.png"))
            check(r is not None and r.get("ok"), "%s: snapshot_recv accepted" % USERS[w][0])
        time.sleep(max(0.0, CALL_SECS - 1.5 - (time.time() - t_est)))
        query = ng.req("query", **{"call-id": callid}) if callid else None
        check(query is not None and query.get("result") == "ok",
              "ng query during the call: ok (%r)" % ((query or {}).get("result"),))
        time.sleep(max(0.0, CALL_SECS - (time.time() - t_est)))
        r = ctrl["a"].cmd("hangup")
        check(r is not None and r.get("ok"), "alice: hangup accepted")
        closed = {w: ctrl[w].wait_event("CALL_CLOSED", 10) for w in ("a", "b")}
        check(all(closed.values()), "call closed on alice and bob")
        time.sleep(0.5)
        lr = ng.req("list")
        check(lr is not None and lr.get("result") == "ok" and not lr.get("calls")
              and callid not in (lr.get("calls") or []),
              "ng list after BYE: no calls (%r)" % ((lr or {}).get("calls"),))
        if callid:
            qr = ng.req("query", **{"call-id": callid})
            check(qr is not None and qr.get("result") == "error",
                  "ng query after BYE: error (%r)" % ((qr or {}).get("result"),))
        for w in ("a", "b"):                     # quit = un-REGISTER, then exit
            ctrl[w].cmd("quit", timeout=2)
    except (OSError, ConnectionError, ValueError) as e:
        check(False, "baresip control: %s" % e)
    for w in ("a", "b"):
        rc = ik.stop(procs[w], wait=8)
        check(rc is not None, "baresip %s stopped (rc %s)" % (USERS[w][0], rc))
    check(sip.poll() is None, "tally-sip still running after the call")
    rc = ik.stop(sip, wait=8)
    check(rc == 0, "tally-sip exits 0 on SIGTERM (rc %s)" % rc)
    time.sleep(0.3)
    ik.stop(dc, signal.SIGINT)

    # ---- what the users heard and saw
    for w, other in (("a", "b"), ("b", "a")):
        me, them = USERS[w][0], USERS[other][0]
        decs = sorted(glob.glob(os.path.join(outs[w], "*-dec.wav")))
        if check(len(decs) >= 1, "%s: received audio recorded (%s)" % (me, [os.path.basename(x) for x in decs])):
            f, secs = ikb.tone_freq(decs[-1])
            want = TONES[other]
            check(abs(f - want) < 0.1 * want and secs > 0.6 * CALL_SECS,
                  "%s hears %s's %d Hz tone: %.0f Hz over %.1f s of sound" % (me, them, want, f, secs))
        png = os.path.join(outs[w], "recv.png")
        sz = ffprobe_size(png) if os.path.exists(png) else None
        check(sz == (352, 288), "%s sees %s's video: snapshot %s (ffprobe)" % (me, them, sz))
        spread = picture_spread(png) if sz else None
        check(spread is not None and spread[1] - spread[0] > 50,
              "%s's snapshot is a picture, not a flat frame (luma %s)" % (me, spread))
        if sz == (352, 288) and refs[other] and refs[w]:
            theirs, own = psnr(png, refs[other]), psnr(png, refs[w])
            check(theirs is not None and own is not None and theirs > own + 3,
                  "%s's snapshot shows %s's %s, not its own %s (PSNR %s vs %s dB)"
                  % (me, them, VIDEO_SRC[other], VIDEO_SRC[w], theirs, own))
    return cap, P, codec, callid, query


def analyse(cap, P, codec, callid, query):
    in_media = lambda port: P["rtp_min"] <= port <= P["rtp_max"]
    in_phone = {w: (lambda port, w=w: P[w + "_rtp"][0] <= port <= P[w + "_rtp"][1]) for w in ("a", "b")}
    name = {P["sip"]: "tally", P["a"]: "a", P["b"]: "b"}
    sip, rtp, rtcp, ngmsgs, stray = [], {}, {}, [], {}
    for t, sp, dp, p in ik.read_pcap(cap):
        if sp in name or dp in name:
            m = ik.sip_parse(p)
            if m and "probe-" not in m["hdr"].get("call-id", ""):
                m.update(sp=sp, dp=dp, t=t)
                sip.append(m)
            continue
        if sp == P["ng"] or dp == P["ng"]:
            try:
                c, body = ik.ng_parse(p)
                ngmsgs.append((sp, dp, c, body))
            except Exception:
                pass
            continue
        for w in ("a", "b"):          # phone media must only talk to tally-media
            if in_phone[w](sp) and not in_media(dp) or in_phone[w](dp) and not in_media(sp):
                stray[(sp, dp)] = stray.get((sp, dp), 0) + 1
        r = ik.rtp_parse(p)
        if r:
            rtp.setdefault((sp, dp), []).append((t,) + r)
        elif len(p) >= 8 and p[0] >> 6 == 2 and 200 <= p[1] <= 204:
            rtcp[(sp, dp)] = rtcp.get((sp, dp), 0) + 1

    # ---- SIP: registration and the call, all through tally-sip
    def n_of(a, b, kind, meth, pred=lambda m: True):
        return sum(1 for m in sip if name.get(m["sp"]) == a and name.get(m["dp"]) == b
                   and m["kind"] == kind and m["cseq"].split()[-1:] == [meth] and pred(m))
    if not STATIC:
        for w in ("a", "b"):
            u = USERS[w][0]
            authed = lambda m: "authorization" in m["hdr"]
            nonzero = lambda m: not (m["hdr"].get("expires") == "0" or "expires=0" in m["hdr"].get("contact", ""))
            check(n_of(w, "tally", "REGISTER", "REGISTER", lambda m: not authed(m)) >= 1
                  and n_of("tally", w, "401", "REGISTER") >= 1,
                  "%s: REGISTER without credentials -> 401 from tally-sip" % u)
            ok200 = [m for m in sip if name.get(m["sp"]) == "tally" and name.get(m["dp"]) == w
                     and m["kind"] == "200" and m["cseq"].endswith("REGISTER")]
            check(n_of(w, "tally", "REGISTER", "REGISTER", lambda m: authed(m) and nonzero(m)) >= 1
                  and len(ok200) >= 1 and "contact" in ok200[0]["hdr"],
                  "%s: REGISTER with digest credentials -> 200 with Contact (%s)"
                  % (u, ok200[0]["hdr"].get("contact") if ok200 else None))
            unreg = {(m["hdr"].get("call-id"), m["cseq"]) for m in sip if name.get(m["sp"]) == w
                     and m["kind"] == "REGISTER" and authed(m) and not nonzero(m)}
            check(any((m["hdr"].get("call-id"), m["cseq"]) in unreg for m in ok200),
                  "%s: un-REGISTER (expires 0) on quit answered 200" % u)
    flows = {(name.get(m["sp"]), name.get(m["dp"]), m["kind"], m["cseq"].split()[-1])
             for m in sip if not m["cseq"].endswith("REGISTER")}
    for a, b, kind, meth in [("a", "tally", "INVITE", "INVITE"), ("tally", "b", "INVITE", "INVITE"),
                             ("b", "tally", "200", "INVITE"), ("tally", "a", "200", "INVITE"),
                             ("a", "tally", "ACK", "ACK"), ("tally", "b", "ACK", "ACK"),
                             ("a", "tally", "BYE", "BYE"), ("tally", "b", "BYE", "BYE"),
                             ("b", "tally", "200", "BYE"), ("tally", "a", "200", "BYE")]:
        nice = {"a": "alice", "b": "bob", "tally": "tally-sip"}
        check((a, b, kind, meth) in flows, "SIP %s%s %s -> %s"
              % (kind, "" if kind == meth else " (" + meth + ")", nice[a], nice[b]))
    check(not any({f[0], f[1]} == {"a", "b"} for f in flows), "no SIP directly between the phones")
    invs = [m for m in sip if name.get(m["sp"]) == "tally" and name.get(m["dp"]) == "b" and m["kind"] == "INVITE"]
    if invs:
        ruri = invs[0]["first"].split()[1]
        check(ruri.startswith("sip:bob") and ("@%s:%d" % (LOCAL, P["b"])) in ruri,
              "tally-sip sent the INVITE to bob's %s contact (%s)"
              % ("routed" if STATIC else "registered", invs[0]["first"]))

    def sdp(a, b, kind):
        for m in sip:
            if name.get(m["sp"]) == a and name.get(m["dp"]) == b and m["kind"] == kind \
                    and m["cseq"].endswith("INVITE") and "m=" in m["body"]:
                return m["body"]
        return ""
    own_sdp = {"a": sdp("a", "tally", "INVITE"), "b": sdp("b", "tally", "200")}
    told_sdp = {"b": sdp("tally", "b", "INVITE"), "a": sdp("tally", "a", "200")}
    own = {w: ik.sdp_media(own_sdp[w])[0] for w in ("a", "b")}
    for w in ("a", "b"):
        media, conn = ik.sdp_media(told_sdp[w])
        check(conn == LOCAL and [m[0] for m in media] == ["audio", "video"]
              and all(in_media(m[1]) for m in media),
              "SDP to %s points at tally-media: c=%s %s" % (USERS[w][0], conn, [(m[0], m[1]) for m in media]))
        check("%s/90000" % CODEC_NAME[codec] in told_sdp[w] and "PCMU/8000" in told_sdp[w],
              "SDP to %s: PCMU + %s" % (USERS[w][0], CODEC_NAME[codec]))
    check(len(own["a"]) == 2 and len(own["b"]) == 2 and all(m[1] for m in own["a"] + own["b"]),
          "both phones offered/answered audio + video (%s / %s)" % (own["a"], own["b"]))
    for (sp, dp), pk in sorted(rtp.items()):
        log("      rtp %5d -> %5d  %4d pkts  pt %s" % (sp, dp, len(pk), sorted({x[1] for x in pk})))
    check(not stray, "phones sent only to tally-media's ports and received only from them "
          "(stray flows: %s)" % sorted(stray.items())[:6])
    if len(own["a"]) == 2 and len(own["b"]) == 2:
        ep = {m[1] for m in own["a"] + own["b"]}
        check(sum(len(v) for (sp, dp), v in rtp.items() if sp in ep and dp in ep) == 0,
              "no RTP directly between the phones")
        vpt = own["b"][1][2][0] if own["b"][1][2] else None
        for snd, rcv in (("a", "b"), ("b", "a")):
            for idx, typ in ((0, "audio"), (1, "video")):
                src, dst = own[snd][idx][1], own[rcv][idx][1]
                what = "%s %s -> %s" % (typ, USERS[snd][0], USERS[rcv][0])
                h1 = [v for k, v in rtp.items() if k[0] == src and in_media(k[1])]
                h2 = [v for k, v in rtp.items() if in_media(k[0]) and k[1] == dst]
                if not check(len(h1) == 1 and len(h2) == 1, "%s: one leg each way via tally-media (%d/%d)"
                             % (what, len(h1), len(h2))):
                    continue
                p1, p2 = h1[0], h2[0]
                ratio = len(p2) / len(p1)
                check(len(p1) >= (25 if typ == "video" else 200), "%s: hop 1 carries %d pkts" % (what, len(p1)))
                check(ik.MIN_RATIO <= ratio <= 1.0, "%s: hop 2 %d / hop 1 %d pkts (%.3f)"
                      % (what, len(p2), len(p1), ratio))
                want_pt = 0 if typ == "audio" else vpt
                pts = {x[1] for x in p1} | {x[1] for x in p2}
                check(pts == {want_pt}, "%s: payload type %s (negotiated %s)" % (what, sorted(pts), want_pt))
                s1 = {x[4] for x in p1}
                check(all(x[4] in s1 for x in p2), "%s: hop-2 payloads identical to hop-1 payloads" % what)
                c1 = sum(n for k, n in rtcp.items() if k[0] == src + 1 and in_media(k[1]))
                c2 = sum(n for k, n in rtcp.items() if in_media(k[0]) and k[1] == dst + 1)
                check(c1 >= 1 and c2 >= 1, "%s: RTCP relayed (%d sent, %d delivered)" % (what, c1, c2))

    # ---- ng: the call's commands, and the mid-call query
    reqs = {c: b for sp, dp, c, b in ngmsgs if dp == P["ng"] and isinstance(b, dict)}
    reps = {c: b for sp, dp, c, b in ngmsgs if sp == P["ng"] and isinstance(b, dict)}
    cmds = [(reqs[c].get("command"), reps.get(c, {}).get("result")) for c in reqs
            if callid and reqs[c].get("call-id") == callid]
    log("      ng for the call: %s" % cmds)
    for cmd in ("offer", "answer", "delete"):
        check((cmd, "ok") in cmds, "ng %s from tally-sip answered ok" % cmd)
    if query and query.get("result") == "ok":
        seen = []
        for td in (query.get("tags") or {}).values():
            for m in td.get("medias", []) if isinstance(td, dict) else []:
                seen.append((m.get("type"), (m.get("streams") or [{}])[0].get("stats", {}).get("packets", 0)))
        log("      query during call: %s" % seen)
        check(sorted(t for t, _ in seen) == ["audio", "audio", "video", "video"]
              and all(n > 0 for _, n in seen), "ng query: packets on all four streams")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        ik.stop_all()
        sys.exit(1)
