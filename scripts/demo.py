#!/usr/bin/env python3
"""make demo: one real audio+video call through tally, recorded.

    baresip alice (440 Hz, testsrc video) --SIP--> tally-sip --SIP--> baresip bob
        (registered, auto-answer, 880 Hz, smptebars video)
    all RTP: phone <-> tally-media <-> phone
    recording client (this script, standing in for tally-sip's SIPREC client):
        ng `subscribe request` -> SIPREC INVITE (SDP + RFC 7865 metadata, TCP)
        -> tally-recorder -> 200 (SDP answer) -> ACK -> ng `subscribe answer`
        ... ~10 s ... BYE to the recorder, alice hangs up
    tally-recorder writes <party>.mp4, tracks.mkv, stereo.wav

Everything runs on 127.0.0.1 on ports picked at run time, with the built-in
defaults (no config files). The output folder (logs, phone configs, the
recorder's storage) is printed; it is ./demo-out/<time>/ unless --out says
otherwise. Every process started here is stopped by its PID at the end.
Exit status 0 only if the call was set up, recorded, finalized and every
expected file is there and playable.  Python 3 stdlib only.
"""

import argparse
import base64
import os
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import interop_kamailio as ik          # noqa: E402  pick_block (free UDP+TCP port block)
import interop_kamailio_baresip as ikb  # noqa: E402  write_tone, Ctrl (baresip ctrl_tcp)
import sip_baresip as sb               # noqa: E402  baresip_conf, make_video, sip_ready, reg_ok
import recsip                          # noqa: E402  SipTcp/Dialog (SIPREC over TCP), siprec_body
import rectest                         # noqa: E402  Api, siprec_metadata, ffprobe, read_wav
from siptest import Proc               # noqa: E402  a started process, stopped by PID
from tallytest import NgClient         # noqa: E402  ng over UDP

LOCAL = "127.0.0.1"
USERS = sb.USERS                       # {"a": ("alice", pw), "b": ("bob", pw)}
TONES = sb.TONES                       # alice 440 Hz, bob 880 Hz
TOTAL_SECS = 420                       # hard limit for the whole demo


class DemoError(Exception):
    pass


def say(msg=""):
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


# ---------------------------------------------------------------- the recording client

class RecordingClient:
    """Does what tally-sip's SIPREC client will do: replicate one call's streams
    from tally-media to tally-recorder (ng subscribe + a SIPREC dialog over TCP)."""

    def __init__(self, ng, rec_sip_port, call):
        self.ng = ng
        self.call = call                 # tally-sip's JSON of the call
        self.rec_port = rec_sip_port
        self.to_tag = None
        self.dialog = None
        self.streams = []
        self.accepted = self.rejected = None
        self.siprec_call_id = None

    def start(self):
        c = self.call
        tags = [c["caller"]["tag"], c["callee"]["tag"]]
        r = self.ng.request({"command": "subscribe request", "call-id": c["call_id"],
                             "from-tags": tags}, timeout=2.0)
        need(r.get("result") == "ok" and r.get("sdp"),
             "ng subscribe request failed: %r" % (r,))
        self.to_tag = r["to-tag"]
        offer = r["sdp"]
        st = r.get("streams") or []
        if isinstance(st, dict):
            st = list(st.values())
        self.streams = [{"label": str(s["label"]), "from-tag": s["from-tag"], "type": s["type"]}
                        for s in st]
        need(len(self.streams) == 4, "subscribe request: %d streams, want 4 (audio+video of "
             "both parties): %r" % (len(self.streams), st))

        # RFC 7865 metadata: the two parties, each sending its own streams and
        # receiving the other's, associated by the offer's a=label values
        parts = []
        for role, tag in (("caller", tags[0]), ("callee", tags[1])):
            p = c[role]
            pid = base64.b64encode(os.urandom(12)).decode()
            send = [s["label"] for s in self.streams if s["from-tag"] == tag]
            recv = [s["label"] for s in self.streams if s["from-tag"] != tag]
            parts.append((pid, p["uri"], p.get("user") or p["uri"], send, recv))
        self.participants = parts
        session_id = base64.b64encode(os.urandom(16)).decode()
        xml = rectest.siprec_metadata(participants=parts, session_id=session_id)
        ctype, body = recsip.siprec_body(offer, xml)

        self.siprec_call_id = "rec-%s-%s" % (c["id"], os.urandom(4).hex())
        self.dialog = recsip.Dialog(
            type("R", (), {"sip_port": self.rec_port})(), call_id=self.siprec_call_id,
            from_uri="sip:tally-sip@%s" % LOCAL, to_uri="sip:recorder@%s:%d" % (LOCAL, self.rec_port))
        resp = self.dialog.invite(body, ctype, timeout=10.0)
        need(resp is not None, "SIPREC INVITE: no final response from tally-recorder")
        need(resp["code"] == 200, "SIPREC INVITE answered %s" % resp["first"])
        answer = recsip.body_part(resp, "application/sdp")
        need(answer, "the recorder's 200 OK has no SDP")
        answer = answer.decode() if isinstance(answer, bytes) else answer
        r = self.ng.request({"command": "subscribe answer", "call-id": c["call_id"],
                             "to-tag": self.to_tag, "sdp": answer}, timeout=2.0)
        need(r.get("result") == "ok", "ng subscribe answer failed: %r" % (r,))
        self.accepted, self.rejected = r.get("accepted"), r.get("rejected")
        return offer, answer

    def stop(self):
        """BYE to the recorder, then unsubscribe. Returns the BYE's status code."""
        code = None
        if self.dialog is not None:
            try:
                r = self.dialog.bye(timeout=8.0)
                code = r["code"] if r else None
            finally:
                self.dialog.close()
                self.dialog = None
        if self.to_tag:
            try:
                self.ng.request({"command": "unsubscribe", "call-id": self.call["call_id"],
                                 "to-tag": self.to_tag}, timeout=1.0, retries=1)
            except Exception:              # noqa: BLE001 - the call may be gone already
                pass
            self.to_tag = None
        return code


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
    """The stronger of 440/880 Hz over the middle second, with its share of the power."""
    p = rectest.tone_powers(samples, rate, (440, 880), secs=1.0)
    total = rectest.rms(samples[len(samples) // 2 - rate // 2: len(samples) // 2 + rate // 2]) ** 2
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


def api_get(port, token, path):
    return rectest.Api(port, token, timeout=5.0).get(path)


# ---------------------------------------------------------------- the demo

def run(args, out, procs):
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
    for d in (logs, phones, storage):
        os.makedirs(d, exist_ok=True)
    token = "demo-" + os.urandom(6).hex()

    # one block of free loopback ports: SIP (UDP+TCP; baresip also takes TLS on +1),
    # ctrl_tcp, ng, the API, the phones' RTP, tally-media's and the recorder's ranges
    base = ik.pick_block(256, tcp=(0, 2, 3, 4, 5, 6, 7, 9, 10, 12))
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
    # baresip's avformat source plays its file once: make it longer than the call
    videos = {w: make_video(phones, sb.VIDEO_SRC[w], args.seconds + 30) for w in ("a", "b")}

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

    sip = Proc("tally-sip", [bins["tally-sip"], "--config-file=none", "--foreground",
                             "--sip-listen=%s:%d" % (LOCAL, P["sip"]),
                             "--media-servers=%s:%d" % (LOCAL, P["ng"]),
                             "--api-listen=%s:%d" % (LOCAL, P["api"]), "--api-token=" + token,
                             "--realm=tally", "--log-level=6"] +
               ["--user=%s %s" % USERS[w] for w in ("a", "b")], logs)
    procs.append(sip)
    need(sb.sip_ready(P["sip"], sip.p), "tally-sip does not answer OPTIONS (log %s)" % sip.logpath)
    need(wait_for(lambda: _api_ok(P["api"], token, "/api/v1/health"), 10),
         "tally-sip's API does not answer (log %s)" % sip.logpath)
    step("tally-sip up: SIP %s:%d, API http://%s:%d, accounts alice, bob (pid %d)"
         % (LOCAL, P["sip"], LOCAL, P["api"], sip.pid))

    rec = Proc("tally-recorder", [bins["tally-recorder"], "--config-file=none", "--foreground",
                                  "--listen-sip=%s:%d" % (LOCAL, P["rec_sip"]),
                                  "--interface=" + LOCAL,
                                  "--port-min=%d" % P["rec"][0], "--port-max=%d" % P["rec"][1],
                                  "--storage=" + storage,
                                  "--listen-http=%s:%d" % (LOCAL, P["rec_http"]),
                                  "--api-token=" + token, "--min-free-mb=64", "--log-level=6"], logs)
    procs.append(rec)
    need(wait_for(lambda: rec.alive() and _api_ok(P["rec_http"], token, "/api/v1/status"), 15),
         "tally-recorder's API does not answer (log %s)" % rec.logpath)
    need(wait_for(lambda: recsip.options_tcp(P["rec_sip"], 1.0) == 200, 10),
         "tally-recorder does not answer OPTIONS over TCP (log %s)" % rec.logpath)
    step("tally-recorder up: SIPREC %s:%d (TCP), web/API http://%s:%d, storage %s (pid %d)"
         % (LOCAL, P["rec_sip"], LOCAL, P["rec_http"], storage, rec.pid))

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

    # ---- the call
    r = ctrl["a"].cmd("dial", "sip:bob@%s:%d" % (LOCAL, P["sip"]))
    need(r is not None and r.get("ok"), "alice: dial refused: %r" % (r,))
    est = {w: ctrl[w].wait_event("CALL_ESTABLISHED", 15) for w in ("a", "b")}
    need(all(est.values()), "call not established (alice %s, bob %s)"
         % (bool(est["a"]), bool(est["b"])))
    calls = api_get(P["api"], token, "/api/v1/calls").get("calls") or []
    live = [c for c in calls if c.get("state") == "answered"]
    need(len(live) == 1, "tally-sip's API: want one answered call, got %r" % (calls,))
    call = live[0]
    step("call %s established: %s -> %s, media via tally-media %s"
         % (call["id"], call["caller"]["uri"], call["callee"]["uri"], call.get("media_server")))
    time.sleep(1.0)       # let both phones' video start before the recording asks for keyframes

    # ---- recording
    rc = RecordingClient(ng, P["rec_sip"], call)
    rc.start()
    need(not rc.rejected, "tally-media reports rejected streams: %r" % (rc.rejected,))
    step("recording started: ng subscribe (4 streams, labels %s) -> SIPREC INVITE -> 200 -> "
         "subscribe answer (accepted %s)" % ([s["label"] for s in rc.streams], rc.accepted))
    t_rec = time.monotonic()
    while time.monotonic() - t_rec < args.seconds:
        for w in ("a", "b"):
            ev = ctrl[w].wait_event("CALL_CLOSED", 0.2)
            need(ev is None, "%s's call closed during the recording: %r" % (USERS[w][0], ev))
        need(all(p.alive() for p in procs), "a process died during the call: %s"
             % [p.name for p in procs if not p.alive()])
        time.sleep(0.5)
    code = rc.stop()
    need(code == 200, "BYE to the recorder answered %s" % code)
    step("recording stopped after %.1f s (BYE -> 200, ng unsubscribe)" % (time.monotonic() - t_rec))
    r = ctrl["a"].cmd("hangup")
    need(r is not None and r.get("ok"), "alice: hangup refused: %r" % (r,))
    closed = {w: ctrl[w].wait_event("CALL_CLOSED", 10) for w in ("a", "b")}
    need(all(closed.values()), "call not closed on both phones")
    step("alice hung up; call closed on both phones")
    for w in ("a", "b"):
        ctrl[w].cmd("quit", timeout=2)

    # ---- the recording: wait until the finalizer is done
    api = rectest.Api(P["rec_http"], token, timeout=10.0)
    end = time.monotonic() + args.finalize_timeout
    row = None
    while time.monotonic() < end:
        rows = api.recordings(call_id=rc.siprec_call_id)
        row = rows[0] if rows else None
        if row and row.get("state") in ("complete", "failed"):
            break
        need(rec.alive(), "tally-recorder died (log %s)" % rec.logpath)
        time.sleep(0.5)
    need(row is not None, "no recording for %s in the recorder's API" % rc.siprec_call_id)
    need(row.get("state") == "complete", "recording %s is %r (%s)"
         % (row.get("id"), row.get("state"), row.get("reason")))
    rid = row["id"]
    det = api.recording(rid)
    step("recording %s complete" % rid)
    tallyctl = subprocess.run([bins["tallyctl"], "--recorder", "http://%s:%d" % (LOCAL, P["rec_http"]),
                               "--token", token, "recordings"], capture_output=True, text=True,
                              timeout=15)
    need(tallyctl.returncode == 0 and rid in tallyctl.stdout,
         "tallyctl recordings does not list %s: %s" % (rid, tallyctl.stdout + tallyctl.stderr))

    # ---- check what was written, like a user would
    folder = os.path.join(storage, rid)
    need(os.path.isdir(folder), "no session folder %s" % folder)
    streams = det.get("streams") or []
    acc = [s for s in streams if s.get("accepted")]
    need(len(acc) == 4, "recorder accepted %d of %d streams" % (len(acc), len(streams)))
    parts = det.get("participants") or []
    need(len(parts) == 2, "recording has %d participants, want 2: %r" % (len(parts), parts))
    files = det.get("files") or []
    by_name = {f["name"]: f for f in files}
    problems, lines = [], []
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
        if f.get("kind") == "participant" and kinds != ["audio", "video"]:
            problems.append("%s: streams %s, want audio + video" % (f["name"], kinds))
        if f["name"] == "tracks.mkv" and kinds != ["audio", "audio", "video", "video"]:
            problems.append("tracks.mkv: streams %s, want 2 audio + 2 video" % kinds)
        if not durs or min(durs) < 0.7 * args.seconds:
            problems.append("%s: too short (%s s)" % (f["name"], ["%.1f" % d for d in durs]))
        lines.append("    %-14s %10s  %s" % (f["name"], human(f["size"]), desc))
    for want in ("tracks.mkv", "stereo.wav"):
        if want not in by_name:
            problems.append("%s not written" % want)
    if len([f for f in files if f.get("kind") == "participant"]) != 2:
        problems.append("want one file per participant: %s" % sorted(by_name))
    tones = ""
    if "stereo.wav" in by_name:
        rate, chans = rectest.read_wav(os.path.join(folder, "stereo.wav"))
        got = [tone_of(ch, rate) for ch in chans]
        tones = ", ".join("channel %d: %d Hz (%.0f %% of the power)" % (i + 1, f, 100 * s)
                          for i, (f, s) in enumerate(got))
        if sorted(f for f, s in got if s > 0.5) != [440, 880]:
            problems.append("stereo.wav: want 440 Hz in one channel and 880 Hz in the other: %s" % tones)
    need(not problems, "the recording's files: " + "; ".join(problems))

    # ---- summary
    sip_call = call
    say("")
    say("=" * 78)
    say("tally demo: PASS")
    say("")
    say("call      %s (Call-ID %s)" % (sip_call["id"], sip_call["call_id"]))
    say("          %s  ->  %s, through tally-sip %s:%d, media anchored on tally-media"
        % (sip_call["caller"]["uri"], sip_call["callee"]["uri"], LOCAL, P["sip"]))
    say("          audio PCMU + video H.264 both ways; alice sends 440 Hz + testsrc, bob 880 Hz + smptebars")
    say("recording %s (%.0f s requested), state %s" % (rid, args.seconds, det.get("state")))
    for p in parts:
        say("  participant %-8s %-32s sends labels %s, receives %s"
            % (p.get("name"), p.get("aor"), p.get("send"), p.get("recv")))
    say("  files in %s" % folder)
    for ln in lines:
        say(ln)
    say("    (+ media.pcap %s, session.json, metadata-001.xml, offer/answer SDPs)"
        % human(os.path.getsize(os.path.join(folder, "media.pcap"))))
    if tones:
        say("  stereo.wav: %s" % tones)
    say("")
    say("tallyctl recordings (while the recorder ran):")
    for ln in tallyctl.stdout.rstrip().splitlines():
        say("  " + ln)
    say("")
    say("everything is in %s (logs/, phones/, recordings/)" % out)
    say("to browse the recording, start the recorder on that storage:")
    say("  %s --config-file=none --foreground --storage=%s \\" % (nice(bins["tally-recorder"]), nice(storage)))
    say("      --listen-sip=127.0.0.1:5090 --listen-http=127.0.0.1:8090 --api-token=demo --min-free-mb=64")
    say("  web page: http://127.0.0.1:8090/?token=demo")
    say("  %s --recorder http://127.0.0.1:8090 --token demo recordings" % nice(bins["tallyctl"]))
    say("  %s --recorder http://127.0.0.1:8090 --token demo recording %s --download /tmp/rec"
        % (nice(bins["tallyctl"]), rid))
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
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the recording (default 10)")
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
    say("tally demo: a real audio+video call through tally-sip + tally-media, "
        "recorded by tally-recorder")
    try:
        run(args, out, procs)
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
