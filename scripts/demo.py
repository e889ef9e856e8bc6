#!/usr/bin/env python3
"""make demo: two real audio+video calls through tally, recorded by tally-sip.

    baresip alice (440 Hz, testsrc video) --SIP--> tally-sip --SIP--> baresip bob
        (registered, auto-answer, 880 Hz, smptebars video)
    all RTP: phone <-> tally-media <-> phone
    tally-sip is the recording client (SRC): `tallyctl record start` asks it
    to record; it subscribes to the streams on tally-media and sends the
    SIPREC INVITE (SDP + RFC 7865 metadata) to tally-recorder
    `tallyctl events` runs all along and every event it prints is shown

    call 1: alice -> bob, recorded audio+video (4 streams), paused and
            resumed (when tally-sip has that API), alice hangs up
    call 2: alice -> "support" (routed to bob), recorded with audio+video
            asked for, but the recorder's policy for "support" is audio
            only: recording.video.rejected + recording.audio.started
    then: each recording's files with a one-line ffprobe summary, the
    stereo.wav tones, and a still (PNG) of each party's recorded video

Everything runs on 127.0.0.1 on ports picked at run time, with the built-in
defaults (no config files). The output folder (logs, phone configs, the
recorder's storage, the stills) is printed; it is ./demo-out/<time>/ unless
--out says otherwise. Every process started here is stopped by its PID at
the end. Exit status 0 only if every step worked and every expected file is
there and playable. Python 3 stdlib only (+ ffmpeg/ffprobe, baresip).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import interop_kamailio as ik          # noqa: E402  pick_block (free UDP+TCP port block)
import interop_kamailio_baresip as ikb  # noqa: E402  write_tone, Ctrl (baresip ctrl_tcp)
import sip_baresip as sb               # noqa: E402  baresip_conf, make_video, sip_ready, reg_ok
import recsip                          # noqa: E402  options_tcp (recorder up?)
import rectest                         # noqa: E402  Api, ffprobe, read_wav
from siptest import Proc               # noqa: E402  a started process, stopped by PID
from tallytest import NgClient         # noqa: E402  ng over UDP

LOCAL = "127.0.0.1"
USERS = sb.USERS                       # {"a": ("alice", pw), "b": ("bob", pw)}
TONES = sb.TONES                       # alice 440 Hz, bob 880 Hz
TOTAL_SECS = 300                       # hard limit for the whole demo
SUPPORT = "support"                    # the number recorded audio-only by policy
SAY_LOCK = threading.Lock()


class DemoError(Exception):
    pass


def say(msg=""):
    with SAY_LOCK:
        print(msg, flush=True)


def step(msg):
    say("[%5.1fs] %s" % (time.monotonic() - T0, msg))


def need(cond, msg):
    if not cond:
        raise DemoError(msg)


def wait_for(fn, secs, step_s=0.2):
    end = time.monotonic() + secs
    while True:
        r = fn()
        if r or time.monotonic() >= end:
            return r
        time.sleep(step_s)


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0


# ---------------------------------------------------------------- helpers

def probe_line(path):
    """'video h264 352x288 10.0 s, audio aac 10.0 s' (ffprobe), or raises."""
    pj = rectest.ffprobe(path)
    out = []
    for s in pj.get("streams", []):
        try:
            dur = "%.1f s" % rectest.stream_duration(pj, s)
        except (KeyError, ValueError, TypeError):
            dur = "? s"
        if s.get("codec_type") == "video":
            fps = ""
            try:
                n, d = (int(x) for x in str(s.get("avg_frame_rate", "0/0")).split("/"))
                fps = " %.0f fps" % (n / d) if d else ""
            except ValueError:
                pass
            out.append("video %s %sx%s%s %s" % (s.get("codec_name"), s.get("width"), s.get("height"),
                                                fps, dur))
        else:
            out.append("%s %s %s Hz %s ch %s" % (s.get("codec_type"), s.get("codec_name"),
                                                  s.get("sample_rate"), s.get("channels"), dur))
    return pj, ", ".join(out)


def tone_of(samples, rate):
    """The stronger of 440/880 Hz over the loudest whole second (not the
    middle one: the recording was paused for a while around there), with
    its share of the power."""
    secs = len(samples) // rate
    loud = [rectest.rms(samples[k * rate:(k + 1) * rate]) for k in range(secs)]
    k = max(range(secs), key=lambda j: loud[j]) if secs else 0
    p = rectest.tone_powers(samples, rate, (440, 880), start=k, secs=1.0)
    total = rectest.rms(samples[k * rate:(k + 1) * rate]) ** 2
    f = max(p, key=p.get)
    return f, (p[f] / total if total > 0 else 0.0)


def make_video(folder, lavfi_src, secs):
    """A moving 352x288 H.264 mp4 (video only: baresip's avformat crashes on mp4 with
    PCM audio) of SECS seconds from an ffmpeg test source."""
    path = os.path.join(folder, "%s.mp4" % lavfi_src)
    r = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", "%s=size=352x288:rate=25" % lavfi_src, "-t", "%d" % secs,
                        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                        "-g", "25", path], capture_output=True, text=True, timeout=120)
    need(r.returncode == 0 and os.path.getsize(path) > 0,
         "ffmpeg could not make the test video %s: %s" % (path, r.stderr.strip()[-300:]))
    return path


def pick_ports(n, tcp=()):
    """A block of N free UDP ports (even base), above the kernel's ephemeral
    range when there is room: tally-media and the recorder bind their ports
    only when a call needs them, so a block amid other programs' sockets (a
    benchmark on the same machine holds thousands below it) can be taken
    meanwhile. Else anywhere (interop_kamailio.pick_block)."""
    import random
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            hi = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        hi = 60999
    if 65535 - n - (hi + 1) >= 2 * n:
        for _ in range(100):
            base = random.randrange(hi + 1, 65535 - n) & ~1
            if all(ik.udp_free(p) for p in range(base, base + n)) and \
                    all(ik.tcp_free(base + o) for o in tcp):
                return base
    return ik.pick_block(n, tcp=tcp)


def api_get(port, token, path):
    return rectest.Api(port, token, timeout=5.0).get(path)


KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


class EventTail(threading.Thread):
    """Follows the file `tallyctl events` writes: prints every line as it
    arrives ("event | ...") and keeps them parsed for the waits below."""

    def __init__(self, path):
        threading.Thread.__init__(self, daemon=True)
        self.path = path
        self.events = []
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.start()

    def run(self):
        pos, pending = 0, ""
        while not self.halt.is_set():
            try:
                with open(self.path, "r", encoding="utf-8", errors="replace") as f:
                    f.seek(pos)
                    data = f.read()
                    pos = f.tell()
            except OSError:
                data = ""
            pending += data
            while "\n" in pending:
                line, pending = pending.split("\n", 1)
                self._line(line)
            self.halt.wait(0.1)

    def _line(self, line):
        f = line.split(" ", 2)
        if len(f) < 2:
            return
        ev = {"time": f[0], "event": f[1], "line": line}
        for k, v in KV.findall(f[2] if len(f) > 2 else ""):
            ev[k] = json.loads(v) if v.startswith('"') else v
        with self.lock:
            self.events.append(ev)
        say("   event | " + line)

    def of(self, rid):
        with self.lock:
            return [e for e in self.events if e.get("recording") == rid]

    def names(self, rid):
        return [e["event"] for e in self.of(rid)]

    def wait(self, rid, names, secs=15):
        got = wait_for(lambda: all(n in self.names(rid) for n in names), secs, 0.1)
        need(got, "events %s of recording %s not seen (got %s)" % (names, rid, self.names(rid)))

    def count(self):
        with self.lock:
            return len(self.events)


class Ctl:
    """tallyctl against tally-sip's API, as a user would type it."""

    def __init__(self, binary, api, token):
        self.argv = [binary, "--api", api, "--token", token]

    def __call__(self, *args):
        r = subprocess.run(self.argv + list(args), capture_output=True, text=True, timeout=20)
        return r.returncode, r.stdout, r.stderr

    def show(self, *args):
        """Run it, print the command and its output; returns (rc, out, err)."""
        rc, out, err = self(*args)
        say("  $ tallyctl %s" % " ".join(args))
        for ln in (out + err).rstrip().splitlines():
            say("    " + ln)
        return rc, out, err


def still(video_file, png, at):
    """One frame of VIDEO_FILE at AT seconds as PNG (ffmpeg); True if written."""
    r = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-ss", "%.1f" % at,
                        "-i", video_file, "-frames:v", "1", png], capture_output=True, text=True,
                       timeout=60)
    return r.returncode == 0 and os.path.exists(png) and os.path.getsize(png) > 0


def dial(ctrl, target, what):
    for w in ("a", "b"):
        ctrl[w].events.clear()         # Ctrl keeps every event: forget the last call's
    r = ctrl["a"].cmd("dial", target)
    need(r is not None and r.get("ok"), "alice: dial %s refused: %r" % (target, r))
    est = {w: ctrl[w].wait_event("CALL_ESTABLISHED", 15) for w in ("a", "b")}
    need(all(est.values()), "%s not established (alice %s, bob %s)"
         % (what, bool(est["a"]), bool(est["b"])))


def hangup(ctrl, what):
    r = ctrl["a"].cmd("hangup")
    need(r is not None and r.get("ok"), "alice: hangup refused: %r" % (r,))
    closed = {w: ctrl[w].wait_event("CALL_CLOSED", 10) for w in ("a", "b")}
    need(all(closed.values()), "%s not closed on both phones" % what)


def answered_call(port, token, skip=()):
    calls = api_get(port, token, "/api/v1/calls").get("calls") or []
    live = [c for c in calls if c.get("state") == "answered" and c["id"] not in skip]
    need(len(live) == 1, "tally-sip's API: want one new answered call, got %r" % (calls,))
    return live[0]


def keep_up(ctrl, procs, secs, what):
    """SECS seconds of call, checking that nothing hung up or died."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        for w in ("a", "b"):
            ev = ctrl[w].wait_event("CALL_CLOSED", 0.1)
            need(ev is None, "%s's call closed during %s: %r" % (USERS[w][0], what, ev))
        need(all(p.alive() for p in procs), "a process died during %s: %s"
             % (what, [p.name for p in procs if not p.alive()]))
        time.sleep(0.3)


def check_files(folder, det, video, min_secs):
    """[(line for the summary)], [problems] for a finalized recording."""
    files = det.get("files") or []
    problems, lines, parts = [], [], []
    for f in files:
        path = os.path.join(folder, f["name"])
        if not os.path.exists(path) or os.path.getsize(path) != f.get("size"):
            problems.append("%s: missing or size differs from the catalog" % f["name"])
            continue
        try:
            pj, desc = probe_line(path)
        except (AssertionError, OSError, ValueError, subprocess.SubprocessError) as e:
            problems.append("%s: %s" % (f["name"], e))
            continue
        kinds = sorted(s.get("codec_type") for s in pj.get("streams", []))
        durs = []
        for s in pj.get("streams", []):
            try:
                durs.append(rectest.stream_duration(pj, s))
            except (KeyError, ValueError, TypeError):
                durs.append(0.0)
        if f.get("kind") == "participant":
            parts.append((f["name"], path))
            want = ["audio", "video"] if video else ["audio"]
            if kinds != want:
                problems.append("%s: streams %s, want %s" % (f["name"], kinds, want))
        if f["name"] == "tracks.mkv":
            want = ["audio", "audio", "video", "video"] if video else ["audio", "audio"]
            if kinds != want:
                problems.append("tracks.mkv: streams %s, want %s" % (kinds, want))
        if not durs or min(durs) < min_secs:
            problems.append("%s: too short (%s s)" % (f["name"], ["%.1f" % d for d in durs]))
        lines.append("    %-14s %10s  %s" % (f["name"], human(f["size"]), desc))
    names = [f["name"] for f in files]
    for want in ("tracks.mkv", "stereo.wav"):
        if want not in names:
            problems.append("%s not written" % want)
    if len(parts) != 2:
        problems.append("want one file per participant: %s" % sorted(names))
    tones = ""
    if "stereo.wav" in names:
        rate, chans = rectest.read_wav(os.path.join(folder, "stereo.wav"))
        got = [tone_of(ch, rate) for ch in chans]
        tones = ", ".join("channel %d: %d Hz (%.0f %% of the power)" % (i + 1, fr, 100 * sh)
                          for i, (fr, sh) in enumerate(got))
        if sorted(fr for fr, sh in got if sh > 0.5) != [440, 880]:
            problems.append("stereo.wav: want 440 Hz in one channel and 880 Hz in the other: %s"
                            % tones)
    return lines, problems, parts, tones


def finalized(api, siprec_call_id, secs, rec_proc):
    end = time.monotonic() + secs
    row = None
    while time.monotonic() < end:
        rows = api.recordings(call_id=siprec_call_id)
        row = rows[0] if rows else None
        if row and row.get("state") in ("complete", "failed"):
            break
        need(rec_proc.alive(), "tally-recorder died (log %s)" % rec_proc.logpath)
        time.sleep(0.3)
    need(row is not None, "no recording for SIPREC Call-ID %s in the recorder's API"
         % siprec_call_id)
    need(row.get("state") == "complete", "recording %s is %r (%s)"
         % (row.get("id"), row.get("state"), row.get("reason")))
    return row["id"], api.recording(row["id"])


def record_start(ctl, ev, args, what):
    rc, out, err = ctl.show("record", "start", *args)
    need(rc == 0 and out.split(), "tallyctl record start (%s) failed: %s" % (what, err.strip()))
    return out.split()[0]


# ---------------------------------------------------------------- the demo

def run(args, out, procs, state):
    build = os.path.join(SRC, args.build) if not os.path.isabs(args.build) else args.build
    bins = {n: os.path.join(build, "src", d, n) for n, d in
            (("tally-media", "media"), ("tally-sip", "sip"), ("tally-recorder", "recorder"),
             ("tallyctl", "ctl"))}
    for n, p in bins.items():
        need(os.access(p, os.X_OK), "%s not built (%s): run make" % (n, p))
    for prog in ("baresip", "ffmpeg", "ffprobe"):
        need(shutil.which(prog), "%s not installed: run make deps" % prog)
    for mod in ("avcodec.so", "avformat.so", "ctrl_tcp.so", "aufile.so"):
        need(os.path.exists(os.path.join(sb.BARESIP_MODULES, mod)),
             "baresip module %s missing: run make deps" % mod)

    logs = os.path.join(out, "logs")
    phones = os.path.join(out, "phones")
    storage = os.path.join(out, "recordings")
    stills = os.path.join(out, "stills")
    for d in (logs, phones, storage, stills):
        os.makedirs(d, exist_ok=True)
    token = "demo-" + os.urandom(6).hex()

    # one block of free loopback ports: SIP (UDP+TCP; baresip also takes TLS on +1),
    # ctrl_tcp, ng, the API, the phones' RTP, tally-media's and the recorder's ranges
    base = pick_ports(256, tcp=(0, 2, 3, 4, 5, 6, 7, 9, 10, 12))
    P = {"sip": base, "a": base + 2, "b": base + 4, "a_ctrl": base + 6, "b_ctrl": base + 7,
         "ng": base + 8, "api": base + 9, "rec_sip": base + 10, "rec_http": base + 12,
         "a_rtp": (base + 16, base + 31), "b_rtp": (base + 32, base + 47),
         "media": (base + 64, base + 159), "rec": (base + 160, base + 255)}
    step("output folder %s, ports %d-%d" % (out, base, base + 255))

    # ---- test media for the phones
    wavs = {}
    for who in ("a", "b"):
        wavs[who] = os.path.join(phones, "tone%d.wav" % TONES[who])
        ikb.write_tone(wavs[who], TONES[who], secs=120)
    # baresip's avformat source plays its file once: make it longer than both calls
    videos = {w: make_video(phones, sb.VIDEO_SRC[w], 3 * args.seconds + 40) for w in ("a", "b")}

    # ---- the three daemons
    media = Proc("tally-media", [bins["tally-media"], "--config-file=none", "--foreground",
                                 "--interface=" + LOCAL, "--listen-ng=%s:%d" % (LOCAL, P["ng"]),
                                 "--port-min=%d" % P["media"][0], "--port-max=%d" % P["media"][1],
                                 "--timeout=60", "--log-level=6"], logs)
    procs.append(media)
    ng = NgClient(P["ng"], timeout=1.0, retries=2)
    pong = wait_for(lambda: media.alive() and _ping(ng), 10)
    need(pong, "tally-media does not answer ng ping (log %s)" % media.logpath)
    step("tally-media up: ng %s:%d, media ports %d-%d (pid %d)"
         % (LOCAL, P["ng"], P["media"][0], P["media"][1], media.pid))

    rec = Proc("tally-recorder", [bins["tally-recorder"], "--config-file=none", "--foreground",
                                  "--listen-sip=%s:%d" % (LOCAL, P["rec_sip"]),
                                  "--interface=" + LOCAL,
                                  "--port-min=%d" % P["rec"][0], "--port-max=%d" % P["rec"][1],
                                  "--storage=" + storage,
                                  "--listen-http=%s:%d" % (LOCAL, P["rec_http"]),
                                  "--policy=%s=audio" % SUPPORT,
                                  "--api-token=" + token, "--min-free-mb=64", "--log-level=6"], logs)
    procs.append(rec)
    need(wait_for(lambda: rec.alive() and _api_ok(P["rec_http"], token, "/api/v1/status"), 15),
         "tally-recorder's API does not answer (log %s)" % rec.logpath)
    need(wait_for(lambda: recsip.options_tcp(P["rec_sip"], 1.0) == 200, 10),
         "tally-recorder does not answer OPTIONS over TCP (log %s)" % rec.logpath)
    step("tally-recorder up: SIPREC %s:%d, web/API http://%s:%d, policy \"%s=audio\" "
         "(calls with %s: no video), storage %s (pid %d)"
         % (LOCAL, P["rec_sip"], LOCAL, P["rec_http"], SUPPORT, SUPPORT, storage, rec.pid))

    recorder_uri = "sip:srs@%s:%d;transport=tcp" % (LOCAL, P["rec_sip"])
    sip = Proc("tally-sip", [bins["tally-sip"], "--config-file=none", "--foreground",
                             "--sip-listen=%s:%d" % (LOCAL, P["sip"]),
                             "--media-servers=%s:%d" % (LOCAL, P["ng"]),
                             "--api-listen=%s:%d" % (LOCAL, P["api"]), "--api-token=" + token,
                             "--recorders=" + recorder_uri,
                             "--route=%s sip:bob@%s:%d" % (SUPPORT, LOCAL, P["b"]),
                             "--realm=tally", "--log-level=6"] +
               ["--user=%s %s" % USERS[w] for w in ("a", "b")], logs)
    procs.append(sip)
    need(sb.sip_ready(P["sip"], sip.p), "tally-sip does not answer OPTIONS (log %s)" % sip.logpath)
    need(wait_for(lambda: _api_ok(P["api"], token, "/api/v1/health"), 10),
         "tally-sip's API does not answer (log %s)" % sip.logpath)
    api = "http://%s:%d" % (LOCAL, P["api"])
    step("tally-sip up: SIP %s:%d, API %s, accounts alice, bob, route %s -> bob, "
         "recorder %s (pid %d)" % (LOCAL, P["sip"], api, SUPPORT, recorder_uri, sip.pid))

    # ---- tallyctl events, all along
    evp = Proc("ctl-events", [bins["tallyctl"], "--api", api, "--token", token, "events"], logs)
    procs.append(evp)
    state["events"] = ev = EventTail(evp.logpath)
    need(wait_for(lambda: api_get(P["api"], token, "/api/v1/health").get("event_clients") == 1,
                  5), "tallyctl events did not connect (log %s)" % evp.logpath)
    step("tallyctl events follows tally-sip's event stream; every line it prints is shown "
         "as \"event | ...\"")
    ctl = Ctl(bins["tallyctl"], api, token)

    # ---- the phones (bob first: he must be registered before alice calls)
    ctrl = {}
    for who in ("b", "a"):
        d = os.path.join(phones, USERS[who][0])
        sb.baresip_conf(d, who, P, wavs[who], videos[who], "h264")
        p = Proc("baresip-" + USERS[who][0], ["baresip", "-f", d], logs, cwd=d)
        procs.append(p)
        need(ikb.tcp_open(P[who + "_ctrl"], p.p),
             "baresip %s did not open ctrl_tcp (log %s)" % (USERS[who][0], p.logpath))
        ctrl[who] = ikb.Ctrl(P[who + "_ctrl"], USERS[who][0])
    regs = wait_for(lambda: all(sb.reg_ok(ctrl[w])[0] for w in ("a", "b")), 15, 0.3)
    need(regs, "phones not registered at tally-sip: alice %r, bob %r"
         % (sb.reg_ok(ctrl["a"])[1], sb.reg_ok(ctrl["b"])[1]))
    step("baresip alice (440 Hz, testsrc video) and bob (auto-answer, 880 Hz, smptebars video) "
         "registered at tally-sip")

    # ================= call 1: audio+video, pause/resume =================
    dial(ctrl, "sip:bob@%s:%d" % (LOCAL, P["sip"]), "call 1")
    call1 = answered_call(P["api"], token)
    step("call 1 %s established: %s -> %s, audio PCMU + video H.264 via tally-media %s"
         % (call1["id"], call1["caller"]["uri"], call1["callee"]["uri"], call1.get("media_server")))
    time.sleep(1.0)       # let both phones' video start before the recording asks for keyframes
    t_rec = time.monotonic()
    rid1 = record_start(ctl, ev, [call1["id"], "--media", "audio+video"], "call 1")
    ev.wait(rid1, ["recording.audio.started", "recording.video.started"])
    step("recording %s: audio and video started (%.0f ms after the command)"
         % (rid1, 1000 * (time.monotonic() - t_rec)))
    rc, _o, _e = ctl.show("recordings", "--active")
    need(rc == 0 and rid1 in _o, "tallyctl recordings --active does not list %s" % rid1)
    half = args.seconds / 2.0
    keep_up(ctrl, procs, half, "recording 1")
    paused = False
    rc, _o, err = ctl.show("record", "pause", rid1)
    if rc != 0 and re.search(r"\b40[45] [^:]*: (no such resource|method not allowed)", err):
        step("NOTE: this tally-sip has no pause/resume API yet (%s): pause and resume skipped"
             % err.strip())
    else:
        need(rc == 0, "tallyctl record pause failed: %s" % err.strip())
        ev.wait(rid1, ["recording.audio.paused", "recording.video.paused"])
        keep_up(ctrl, procs, 2.0, "the pause")
        rc, _o, err = ctl.show("record", "resume", rid1)
        need(rc == 0, "tallyctl record resume failed: %s" % err.strip())
        ev.wait(rid1, ["recording.audio.resumed", "recording.video.resumed"])
        paused = True
        step("paused for 2 s and resumed")
    keep_up(ctrl, procs, half, "recording 1")
    hangup(ctrl, "call 1")
    ev.wait(rid1, ["recording.audio.stopped", "recording.video.stopped"])
    step("alice hung up after %.1f s of recording: the recording stopped with the call"
         % (time.monotonic() - t_rec))
    state["recs"].append((rid1, call1, True, paused))

    # ================= call 2: the support line, audio only by policy =================
    dial(ctrl, "sip:%s@%s:%d" % (SUPPORT, LOCAL, P["sip"]), "call 2")
    call2 = answered_call(P["api"], token, skip=(call1["id"],))
    step("call 2 %s established: %s -> %s (routed to bob)"
         % (call2["id"], call2["caller"]["uri"], call2["callee"]["uri"]))
    time.sleep(0.5)
    rid2 = record_start(ctl, ev, ["--dn", "alice", "--media", "audio+video"], "call 2")
    ev.wait(rid2, ["recording.audio.started", "recording.video.rejected"])
    rej = [e for e in ev.of(rid2) if e["event"] == "recording.video.rejected"][0]
    step("recording %s: the recorder refused video (%s), audio goes on"
         % (rid2, rej.get("reason", "no reason given")))
    keep_up(ctrl, procs, max(3.0, half), "recording 2")
    hangup(ctrl, "call 2")
    ev.wait(rid2, ["recording.audio.stopped"])
    step("alice hung up; recording %s stopped" % rid2)
    state["recs"].append((rid2, call2, False, False))
    for w in ("a", "b"):
        ctrl[w].cmd("quit", timeout=2)

    # ---- the recorder's files, checked like a user would
    rapi = rectest.Api(P["rec_http"], token, timeout=10.0)
    results = []
    for rid, call, video, was_paused in state["recs"]:
        srec = api_get(P["api"], token, "/api/v1/recordings/" + rid)
        need(srec.get("siprec_call_id"), "tally-sip's recording %s has no SIPREC Call-ID" % rid)
        catalog_id, det = finalized(rapi, srec["siprec_call_id"], args.finalize_timeout, rec)
        folder = os.path.join(storage, catalog_id)
        secs = (args.seconds if video else max(3.0, half))
        lines, problems, parts, tones = check_files(folder, det, video, 0.6 * secs)
        need(not problems, "recording %s's files: %s" % (rid, "; ".join(problems)))
        shots = []
        if video:
            for name, path in parts:
                png = os.path.join(stills, "%s-%s.png" % (rid, os.path.splitext(name)[0]))
                need(still(path, png, min(2.0, secs / 2)), "no still from %s" % path)
                shots.append(png)
        results.append((rid, call, video, catalog_id, det, folder, lines, tones, shots))
        step("recording %s finalized by the recorder as %s" % (rid, catalog_id))
    r = subprocess.run([bins["tallyctl"], "--recorder", "http://%s:%d" % (LOCAL, P["rec_http"]),
                        "--token", token, "recordings"], capture_output=True, text=True, timeout=15)
    need(r.returncode == 0 and all(x[3] in r.stdout for x in results),
         "tallyctl recordings does not list the recordings: %s" % (r.stdout + r.stderr))

    # ---- summary
    say("")
    say("=" * 78)
    say("tally demo: PASS")
    for rid, call, video, catalog_id, det, folder, lines, tones, shots in results:
        say("")
        say("recording %s of call %s (%s -> %s), asked audio+video, recorded %s"
            % (rid, call["id"], call["caller"]["uri"], call["callee"]["uri"],
               "audio+video" if video else "audio only (recorder policy: video rejected)"))
        say("  events: " + ", ".join(e["event"].replace("recording.", "")
                                     for e in ev.of(rid)))
        say("  recorder's id %s, files in %s" % (catalog_id, folder))
        for ln in lines:
            say(ln)
        if tones:
            say("  stereo.wav: %s" % tones)
        for png in shots:
            say("  still: %s" % png)
    say("")
    say("events seen by tallyctl events: %d (all in %s)" % (ev.count(), evp.logpath))
    say("tallyctl recordings (the recorder's catalog):")
    for ln in r.stdout.rstrip().splitlines():
        say("  " + ln)
    say("")
    say("everything is in %s (logs/, phones/, recordings/, stills/)" % out)
    say("to browse the recordings, start the recorder on that storage:")
    say("  %s --config-file=none --foreground --storage=%s \\" % (nice(bins["tally-recorder"]),
                                                                 nice(storage)))
    say("      --listen-sip=127.0.0.1:5090 --listen-http=127.0.0.1:8090 --api-token=demo "
        "--min-free-mb=64")
    say("  web page: http://127.0.0.1:8090/?token=demo")
    say("  %s --recorder http://127.0.0.1:8090 --token demo recordings" % nice(bins["tallyctl"]))
    say("=" * 78)


def nice(path):
    """PATH relative to the current folder when it is below it, else absolute."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _ping(ng):
    try:
        return ng.request({"command": "ping"}, timeout=0.5, retries=0).get("result") == "pong"
    except Exception:                      # noqa: BLE001
        return False


def _api_ok(port, token, path):
    try:
        st = rectest.Api(port, token, timeout=2.0).request("GET", path)[0]
        return st == 200
    except OSError:
        return False


def stop_all(procs):
    """Stops every process started here, by PID, newest first (phones, then the
    recorder, tally-sip, tally-media). Returns [(name, rc)]."""
    out = []
    for p in reversed(procs):
        rc = p.stop(signal.SIGTERM, 15.0 if p.name == "tally-recorder" else 5.0)
        out.append((p.name, rc))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0,
                    help="length of the first call's recording (default 8)")
    ap.add_argument("--out", help="output folder (default ./demo-out/<time>)")
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"), help="build folder (default build)")
    ap.add_argument("--finalize-timeout", type=float, default=180.0,
                    help="seconds to wait for the recording's files (default 180)")
    args = ap.parse_args()
    out = os.path.abspath(args.out or os.path.join(
        "demo-out", time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(out, exist_ok=True)

    def alarm(_sig, _frm):
        raise DemoError("the demo took longer than %d s" % TOTAL_SECS)
    signal.signal(signal.SIGALRM, alarm)
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.alarm(TOTAL_SECS)

    procs, rc = [], 1
    state = {"recs": [], "events": None}
    say("tally demo: real audio+video calls through tally-sip + tally-media, recorded by "
        "tally-sip (the SIPREC client) to tally-recorder")
    try:
        run(args, out, procs, state)
        rc = 0
    except DemoError as e:
        say("")
        say("DEMO FAILED: %s" % e)
    except KeyboardInterrupt:
        say("")
        say("DEMO INTERRUPTED")
    except Exception as e:                 # noqa: BLE001 - any error is a failure, with its trace
        import traceback
        say("")
        say("DEMO FAILED: %s: %s" % (type(e).__name__, e))
        traceback.print_exc()
    finally:
        signal.alarm(60)                   # the clean-up is bounded too
        try:
            stopped = stop_all(procs)
        except DemoError:
            stopped = []
        signal.alarm(0)
        if state["events"] is not None:
            state["events"].halt.set()
    if rc:
        for p in procs:
            say("--- %s (pid %d, exit %s) log tail, %s" % (p.name, p.pid, p.p.returncode, p.logpath))
            # baresip's status line has no newlines: keep each line short
            say("\n".join(ln[-240:] for ln in p.tail(12).splitlines()))
        say("logs and files kept in %s" % out)
    bad = [(n, c) for n, c in stopped if n.startswith("tally") and c not in (0, None)]
    if bad and rc == 0:
        say("DEMO FAILED: daemons did not exit cleanly: %s" % bad)
        rc = 1
    return rc


T0 = time.monotonic()

if __name__ == "__main__":
    sys.exit(main())
