#!/usr/bin/env python3
"""tally-recorder with sipp as the SIPREC client (SRC), real audio+video RTP.

sipp plays tests/data/recorder/siprec_src.xml: INVITE (Require: siprec,
multipart SDP + RFC 7865 metadata, four m= lines: A audio PCMU 440 Hz
label 1, A video H.264 label 2, B audio PCMU 880 Hz label 3, B video VP8
label 4), then ONE pcap with all four streams (tests/tools/mkrtp.py; sipp
3.6.1 maps pcap port offsets onto the answered block, see the scenario's
header), optional pause/resume re-INVITEs, BYE. Then the recording is
checked through the API, on disk and with ffprobe/ffmpeg.

Subtests:
  av_two_parties   4 accepted m= lines (recvonly, labels, +sip.srs, the
                   contiguous port block); recording complete; every file:
                   codecs and tracks, durations within 1 s, video decodes,
                   sha256 = API = download; stereo.wav: 440 Hz left, 880 Hz
                   right; catalog row (API search, tallyctl if it has
                   "recordings"); media.pcap holds what was sent
  audio_only       policy '*@audio.example.com=audio': both video m= lines
                   answered with port 0, only audio recorded, video listed
                   as refused
  pause_resume     re-INVITE a=inactive at 3 s, a=sendonly at 5 s (the pcap
                   has the same gap): stereo.wav has 2 s (+-0.3) of silence
                   at 3 s (+-0.3) and lasts as long as the call
  av_tcp           the A/V call with SIP over TCP (3 s)
Needs root (sipp pcap play), sipp, ffprobe/ffmpeg, mkrtp.py: FAILS without
them. Run a subset: rec_sipp.py audio_only
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rectest as rt  # noqa: E402

SECONDS = 6              # media in av_two_parties / audio_only
TAIL_MS = 400            # BYE this long after the pcap ends
PAUSE_SECONDS = 8        # media timeline of pause_resume
PAUSE = (3.0, 5.0)       # the gap (s), also the re-INVITE times
DUR_TOL = 1.0            # file durations vs. the media timeline
AUDIO_DOMAIN = "audio.example.com"


class Suite:
    def __init__(self):
        self.tmp = rt.make_tmp("rec-sipp")
        self.rec = None

    def recorder(self):
        rt.need_tools("sipp", "ffprobe", "ffmpeg")
        rt.need_root()
        if self.rec is None or not self.rec.alive():
            self.rec = rt.Recorder(self.tmp, policies=["*@%s=audio" % AUDIO_DOMAIN]).start()
        return self.rec

    def recorders(self):
        return [self.rec]

    # ------------------------------------------------------------ one call

    def call(self, c, name, aor_a, aor_b, seconds, pause=None, transport="u1"):
        """Runs one sipp SRC call; returns (sipp, call_id, details of the
        final recording, the pcap's packets)."""
        rec = self.recorder()
        pcap, self.desc = rt.make_pcap(self.tmp, seconds, pause=pause)
        pkts, _ = rt.read_pcap(pcap)
        if pause:
            at = int(pause[0] * 1000)
            ln = int((pause[1] - pause[0]) * 1000)
            sp = rt.SippSrc(self.tmp, rec, pcap, name=name, aor_a=aor_a, aor_b=aor_b,
                            pause=(at, ln, int(seconds * 1000) - at - ln + TAIL_MS),
                            transport=transport)
        else:
            sp = rt.SippSrc(self.tmp, rec, pcap, name=name, aor_a=aor_a, aor_b=aor_b,
                            call_ms=int(seconds * 1000) + TAIL_MS, transport=transport)
        rc = sp.wait(seconds + 40)
        if not c(rc == 0, "sipp exit %s" % rc):
            c.diag(sp.diag())
        call_id = sp.call_id()
        if not call_id:
            raise AssertionError("sipp sent no INVITE\n" + sp.diag())
        c(rec.alive(), "tally-recorder died during the call")
        details = rec.wait_final(call_id, timeout=90)
        return sp, call_id, details, pkts

    # ------------------------------------------------------------ checks

    def check_answer(self, c, sp, accepted, cseq=1, direction="recvonly", first=None):
        """The 2xx to the INVITE with CSeq CSEQ: one m= line per offered one,
        in order, labels echoed, DIRECTION on accepted lines, port 0 on
        refused ones, accepted line i on port0 + 2i (one block).
        Returns the m= ports."""
        oks = sp.responses(200, cseq)
        if not c(oks, "no 200 to the INVITE with CSeq %d (flow: %s)" % (cseq, sp.flow())):
            return None
        ok = oks[0]
        contact = ok["hdr"].get("contact", "")
        c("+sip.srs" in contact, "200 (CSeq %d) Contact lacks +sip.srs: %r" % (cseq, contact))
        sdp = rt.sdp_of(ok)
        if not c(sdp, "200 (CSeq %d) has no SDP (Content-Type %r)" % (
                cseq, ok["hdr"].get("content-type"))):
            return None
        media = rt.answer_media(sdp)
        kinds = [m["kind"] for m in media]
        c(kinds == [k for k, _c, _l in rt.AV4],
          "answer m= lines %s, want %s" % (kinds, [k for k, _c, _l in rt.AV4]))
        ports = [m["port"] for m in media]
        rec = self.rec
        base = None
        for i, m in enumerate(media[:4]):
            want_label = rt.AV4[i][2]
            c(m["label"] == want_label, "m= line %d: label %r, want %r" % (i, m["label"], want_label))
            if accepted[i]:
                if not c(m["port"] != 0, "m= line %d (%s) refused (port 0), want accepted"
                         % (i, m["kind"])):
                    continue
                c(m["direction"] == direction, "m= line %d: a=%s, want a=%s" % (
                    i, m["direction"], direction))
                offered_pt = {"audio": "0", "video": ("96" if i == 1 else "97")}[m["kind"]]
                c(offered_pt in m["fmts"], "m= line %d: answered formats %s lack the offered %s"
                  % (i, m["fmts"], offered_pt))
                c(rec.port_min <= m["port"] <= rec.port_max,
                  "m= line %d: port %d outside --port-min/max %d-%d" % (
                      i, m["port"], rec.port_min, rec.port_max))
                if base is None:
                    base = m["port"] - 2 * i
                    c(base % 2 == 0, "port block base %d is odd" % base)
                c(m["port"] == base + 2 * i, "m= line %d on port %d, want %d (block base %d + 2i)"
                  % (i, m["port"], base + 2 * i, base))
            else:
                c(m["port"] == 0, "m= line %d (%s) on port %d, want refused (port 0)"
                  % (i, m["kind"], m["port"]))
        if first is not None:
            c(ports == first, "CSeq %d answer moved the ports: %s, first answer %s"
              % (cseq, ports, first))
        return ports

    def check_details(self, c, rec, details, call_id, accepted, aor_a, aor_b):
        c(details.get("state") == "complete", "recording state %r, reason %r" % (
            details.get("state"), details.get("reason")))
        c(details.get("call_id") == call_id, "details call_id %r" % details.get("call_id"))
        # participants with send/recv labels
        parts = {p.get("id"): p for p in details.get("participants") or []}
        c(set(parts) == {rt.PART_A, rt.PART_B}, "participants %s, want A and B" % sorted(parts))
        for pid, aor, send, recv in ((rt.PART_A, aor_a, ["1", "2"], ["3", "4"]),
                                     (rt.PART_B, aor_b, ["3", "4"], ["1", "2"])):
            p = parts.get(pid)
            if not p:
                continue
            c(p.get("aor") == aor, "participant %s aor %r, want %r" % (pid, p.get("aor"), aor))
            c(sorted(p.get("send") or []) == send, "participant %s send %s, want %s"
              % (aor, p.get("send"), send))
            c(sorted(p.get("recv") or []) == recv, "participant %s recv %s, want %s"
              % (aor, p.get("recv"), recv))
        # streams accepted / refused
        streams = sorted(details.get("streams") or [], key=lambda s: s.get("index", 0))
        c(len(streams) == 4, "details list %d streams, want 4" % len(streams))
        for i, s in enumerate(streams[:4]):
            c(s.get("label") == rt.AV4[i][2], "stream %d label %r" % (i, s.get("label")))
            c(s.get("media") == rt.AV4[i][0], "stream %d media %r" % (i, s.get("media")))
            c(bool(s.get("accepted")) == accepted[i], "stream %d (%s) accepted=%r, want %r"
              % (i, s.get("media"), s.get("accepted"), accepted[i]))
            if not accepted[i]:
                c(s.get("refused"), "stream %d refused without a reason" % i)
        want_rec = sorted({rt.AV4[i][0] for i in range(4) if accepted[i]})
        want_ref = sorted({rt.AV4[i][0] for i in range(4) if not accepted[i]})
        c(sorted(details.get("media_recorded") or []) == want_rec,
          "media_recorded %r, want %r" % (details.get("media_recorded"), want_rec))
        c(sorted(details.get("media_refused") or []) == want_ref,
          "media_refused %r, want %r" % (details.get("media_refused"), want_ref))
        # the catalog row via search
        rows = rec.api.by_call_id(call_id)
        if c(len(rows) == 1, "search call_id=%s: %d rows" % (call_id, len(rows))):
            row = rows[0]
            c(row.get("id") == details.get("id"), "search row id %r != %r" % (row.get("id"), details.get("id")))
            aors = sorted(p.get("aor") for p in row.get("participants") or [])
            c(aors == sorted([aor_a, aor_b]), "catalog row participants %s" % aors)
            c(sorted(row.get("media_recorded") or []) == want_rec,
              "catalog row media_recorded %r" % row.get("media_recorded"))
        hits = rec.api.recordings(participant=aor_a.split(":", 1)[1].split("@")[0])
        c(details.get("id") in [r.get("id") for r in hits],
          "search participant=%s does not find the recording" % aor_a)

    def check_files(self, c, rec, details, seconds, accepted, video_secs=None):
        """Files listed = files on disk (size, sha256, download); returns
        {kind or participant id: path}."""
        rid = details.get("id", "")
        d = rec.session_dir(rid)
        files = details.get("files") or []
        out = {}
        for f in files:
            name = f.get("name", "")
            path = os.path.join(d, name)
            if not c(os.path.isfile(path), "file %s listed but not in %s" % (name, d)):
                continue
            c(os.path.getsize(path) == f.get("size"), "%s: size %d on disk, API %r" % (
                name, os.path.getsize(path), f.get("size")))
            sha = rt.sha256_file(path)
            c(sha == f.get("sha256"), "%s: sha256 %s on disk, API %r" % (name, sha, f.get("sha256")))
            try:
                body = rec.api.download(rid, name)
                c(rt.hashlib.sha256(body).hexdigest() == sha, "%s: downloaded bytes differ" % name)
            except AssertionError as e:
                c(False, str(e))
            key = f.get("participant") if f.get("kind") == "participant" else f.get("kind")
            c(key not in out, "two files for %r" % key)
            out[key] = path
        want = {rt.PART_A, rt.PART_B, "tracks", "stereo"}
        c(set(out) == want, "files by kind/participant %s, want %s (listed: %s)" % (
            sorted(out), sorted(want), [f.get("name") for f in files]))
        video = accepted[1] or accepted[3]
        # participant files: A H.264 -> .mp4, B VP8 -> .webm, audio only -> .webm
        for pid, vcodec, ext, vi in ((rt.PART_A, "h264", ".mp4", 1), (rt.PART_B, "vp8", ".webm", 3)):
            path = out.get(pid)
            if not path:
                continue
            has_v = accepted[vi]
            want_ext = ext if has_v else ".webm"
            c(path.endswith(want_ext), "participant file %s, want %s" % (os.path.basename(path), want_ext))
            pj = rt.ffprobe(path)
            kinds = rt.probe_summary(pj)
            vids = [k for k in kinds if k[0] == "video"]
            auds = [k for k in kinds if k[0] == "audio"]
            c(len(auds) == 1, "%s: %d audio streams (%s)" % (os.path.basename(path), len(auds), kinds))
            if has_v:
                c(vids == [("video", vcodec)], "%s: video %s, want one %s" % (
                    os.path.basename(path), vids, vcodec))
            else:
                c(not vids, "%s: has video %s in an audio-only recording" % (os.path.basename(path), vids))
            self.check_durations(c, path, pj, seconds)
            if has_v and vids:
                self.check_video(c, path, "v:0", video_secs or seconds)
        path = out.get("tracks")
        if path:
            c(path.endswith(".mkv"), "tracks file %s is not .mkv" % os.path.basename(path))
            pj = rt.ffprobe(path)
            kinds = rt.probe_summary(pj)
            want_types = sorted(["audio", "audio"] + (["video"] * (accepted[1] + accepted[3])))
            c(sorted(k[0] for k in kinds) == want_types, "tracks.mkv streams %s, want types %s"
              % (kinds, want_types))
            vc = sorted(k[1] for k in kinds if k[0] == "video")
            want_vc = sorted((["h264"] if accepted[1] else []) + (["vp8"] if accepted[3] else []))
            c(vc == want_vc, "tracks.mkv video codecs %s, want %s (never transcoded)" % (vc, want_vc))
            self.check_durations(c, path, pj, seconds)
            for k, s in enumerate(s for s in pj.get("streams", []) if s.get("codec_type") == "video"):
                self.check_video(c, path, "v:%d" % k, video_secs or seconds)
        if not video:
            for key, path in out.items():
                if path and path.endswith((".mp4", ".webm", ".mkv")):
                    kinds = rt.probe_summary(rt.ffprobe(path))
                    c(not [k for k in kinds if k[0] == "video"], "%s has video" % os.path.basename(path))
        return out

    def check_durations(self, c, path, pj, seconds):
        name = os.path.basename(path)
        fd = float(pj.get("format", {}).get("duration", 0) or 0)
        c(abs(fd - seconds) <= DUR_TOL, "%s: duration %.2fs, media %.1fs (tolerance %.1fs)"
          % (name, fd, seconds, DUR_TOL))
        for s in pj.get("streams", []):
            try:
                sd = rt.stream_duration(pj, s)
            except (ValueError, KeyError):
                continue
            c(abs(sd - seconds) <= DUR_TOL, "%s: %s stream %d lasts %.2fs, media %.1fs"
              % (name, s.get("codec_name"), s.get("index", -1), sd, seconds))

    def check_video(self, c, path, sel, seconds):
        """SECONDS: how long video was sent; at least 3/4 of the frames sent
        must decode (after a pause the first keyframe may be ~1 s away)."""
        name = os.path.basename(path)
        n = rt.count_frames(path, sel)
        fps = max([s.get("fps", 0) for s in self.desc.get("streams", [])] + [0]) or 25
        want = int(0.75 * fps * seconds)
        c(n >= want and n > 0, "%s %s: %d frames decode, %.0f fps x %.1f s were sent (want >= %d)"
          % (name, sel, n, fps, seconds, want))
        errs = rt.decode_errors(path, sel)
        if not c(not errs, "%s %s: %d decoder error line(s): %s" % (name, sel, len(errs), errs[:3])):
            c.diag("\n".join("  | " + e for e in errs[:20]))

    def check_stereo(self, c, path, seconds):
        rate, chans = rt.read_wav(path)
        if not c(len(chans) == 2, "stereo.wav has %d channel(s)" % len(chans)):
            return None
        dur = len(chans[0]) / rate
        c(abs(dur - seconds) <= DUR_TOL, "stereo.wav lasts %.2fs, media %.1fs" % (dur, seconds))
        for ch, name, want, other in ((0, "left", 440, 880), (1, "right", 880, 440)):
            p = rt.tone_powers(chans[ch], rate, (440, 880), start=1.0, secs=1.0)
            # PCMU tone from mkrtp: amplitude well above 0.05 (power 1.25e-3)
            c(p[want] > 1.25e-3, "stereo.wav %s: %d Hz power %.2g (too weak or absent)"
              % (name, want, p[want]))
            c(p[want] > 20 * p[other], "stereo.wav %s: %d Hz power %.2g not dominant over "
              "%d Hz %.2g" % (name, want, p[want], other, p[other]))
        return rate, chans

    def check_capture(self, c, rec, details, pkts, accepted):
        """media.pcap holds (nearly) every packet sent to an accepted port,
        nothing sent to a refused one."""
        d = rec.session_dir(details.get("id", ""))
        path = os.path.join(d, "media.pcap")
        if not c(os.path.isfile(path), "no media.pcap in %s" % d):
            return
        got, info = rt.read_pcap(path)
        c(info["linktype"] == 1 and info["magic"] in ("d4c3b2a1", "a1b2c3d4"),
          "media.pcap header: magic %s linktype %s" % (info["magic"], info["linktype"]))
        c(info["truncated"] == 0, "media.pcap ends with a truncated record (%d bytes) after a clean BYE"
          % info["truncated"])
        base_in = min(p.dport for p in pkts)
        ports = {s.get("index"): (s.get("port"), s.get("rtcp_port"))
                 for s in details.get("streams") or []}
        for i in range(4):
            sent = [p.payload for p in pkts if p.dport - base_in in (2 * i, 2 * i + 1)]
            port, rport = ports.get(i, (0, 0))
            have = [p.payload for p in got if port and p.dport in (port, rport)]
            if accepted[i]:
                missing = len(set(sent) - set(have))
                c(missing <= max(2, len(sent) // 200), "media.pcap stream %d: %d of %d sent "
                  "packets missing" % (i, missing, len(sent)))
                c(len(have) <= len(sent), "media.pcap stream %d: %d packets, only %d sent"
                  % (i, len(have), len(sent)))
            else:
                c(not have, "media.pcap has %d packets of refused stream %d" % (len(have), i))

    def check_folder(self, c, rec, details):
        d = rec.session_dir(details.get("id", ""))
        try:
            with open(os.path.join(d, "session.json")) as f:
                sj = rt.json.load(f)
        except (OSError, ValueError) as e:
            c(False, "session.json: %s" % e)
            return
        c(sj.get("state") == "complete", "session.json state %r" % sj.get("state"))
        c(sj.get("id") == details.get("id"), "session.json id %r" % sj.get("id"))
        c(os.path.isfile(os.path.join(d, "metadata-001.xml")), "no metadata-001.xml in the folder")
        c(os.path.isfile(os.path.join(d, "offer-001.sdp")), "no offer-001.sdp in the folder")
        c(os.path.isfile(os.path.join(d, "answer-001.sdp")), "no answer-001.sdp in the folder")

    def check_tallyctl(self, c, rec, det, call_id):
        """tallyctl's recorder commands, if this tallyctl has them: the
        search finds the row, 'recording ID --download' fetches every file
        with the API's sha256."""
        if not rt.tallyctl_has("recordings"):
            c.note("tallyctl has no 'recordings' command: catalog checked through the API only")
            return
        rid = det.get("id", "")
        base = [rt.tallyctl_binary(), "--recorder", "http://%s:%d" % (rt.LOCAL, rec.http_port),
                "--token", rec.token]

        def run(*args):
            r = subprocess.run(base + list(args), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30)
            return (r.returncode, r.stdout.decode("utf-8", "replace"),
                    r.stderr.decode("utf-8", "replace"))

        rc, out, err = run("recordings", "--call-id", call_id, "--json")
        if c(rc == 0, "tallyctl recordings --call-id --json: rc %d: %s" % (rc, err.strip()[:300])):
            try:
                j = rt.json.loads(out)
            except ValueError:
                j = None
            rows = j.get("recordings") if isinstance(j, dict) else j
            if c(isinstance(rows, list), "tallyctl recordings --json: not a list: %r" % out[:200]):
                c([r.get("id") for r in rows] == [rid], "tallyctl recordings --call-id: ids %s, want [%s]"
                  % ([r.get("id") for r in rows], rid))
        rc, out, err = run("recordings", "--call-id", call_id)
        c(rc == 0 and rid in out, "tallyctl recordings (table, rc %d) does not show %s: %s"
          % (rc, rid, (out + err)[-300:]))
        dl = os.path.join(self.tmp, "tallyctl-" + rid)
        rc, out, err = run("recording", rid, "--download", dl)
        if c(rc == 0, "tallyctl recording ID --download: rc %d: %s" % (rc, err.strip()[:300])):
            for f in det.get("files") or []:
                p = os.path.join(dl, f.get("name", ""))
                c(os.path.isfile(p) and rt.sha256_file(p) == f.get("sha256"),
                  "tallyctl --download: %s missing or sha256 differs" % f.get("name"))

    # ------------------------------------------------------------ subtests

    def av_two_parties(self, c):
        aor_a, aor_b = "sip:alice@example.com", "sip:bob@example.com"
        acc = (True, True, True, True)
        sp, call_id, det, pkts = self.call(c, "src_av", aor_a, aor_b, SECONDS)
        self.check_answer(c, sp, acc)
        self.check_details(c, self.rec, det, call_id, acc, aor_a, aor_b)
        dur = det.get("duration")
        want = SECONDS + TAIL_MS / 1000.0
        c(isinstance(dur, (int, float)) and abs(dur - want) <= DUR_TOL,
          "API duration %r, the call lasted ~%.1fs" % (dur, want))
        self.check_folder(c, self.rec, det)
        self.check_capture(c, self.rec, det, pkts, acc)
        if det.get("state") == "complete":
            files = self.check_files(c, self.rec, det, SECONDS, acc)
            if files.get("stereo"):
                self.check_stereo(c, files["stereo"], SECONDS)
            self.check_tallyctl(c, self.rec, det, call_id)

    def audio_only(self, c):
        aor_a, aor_b = "sip:alice@%s" % AUDIO_DOMAIN, "sip:bob@example.com"
        acc = (True, False, True, False)
        sp, call_id, det, pkts = self.call(c, "src_audio", aor_a, aor_b, SECONDS)
        self.check_answer(c, sp, acc)
        self.check_details(c, self.rec, det, call_id, acc, aor_a, aor_b)
        self.check_folder(c, self.rec, det)
        self.check_capture(c, self.rec, det, pkts, acc)
        if det.get("state") == "complete":
            files = self.check_files(c, self.rec, det, SECONDS, acc)
            if files.get("stereo"):
                self.check_stereo(c, files["stereo"], SECONDS)

    def av_tcp(self, c):
        """The same SRC over SIP/TCP (one connection, sipp -t t1), 3 s."""
        aor_a, aor_b = "sip:alice@example.com", "sip:bob@example.com"
        acc = (True, True, True, True)
        sp, call_id, det, pkts = self.call(c, "src_tcp", aor_a, aor_b, 3, transport="t1")
        inv = [m for m in sp.messages("sent") if m["kind"] == "INVITE"]
        c(inv and "SIP/2.0/TCP" in inv[0]["hdr"].get("via", ""), "sipp did not use TCP")
        self.check_answer(c, sp, acc)
        self.check_details(c, self.rec, det, call_id, acc, aor_a, aor_b)
        self.check_capture(c, self.rec, det, pkts, acc)
        if det.get("state") == "complete":
            files = self.check_files(c, self.rec, det, 3, acc)
            if files.get("stereo"):
                self.check_stereo(c, files["stereo"], 3)

    def pause_resume(self, c):
        aor_a, aor_b = "sip:alice@example.com", "sip:bob@example.com"
        acc = (True, True, True, True)
        sp, call_id, det, pkts = self.call(c, "src_pause", aor_a, aor_b, PAUSE_SECONDS, pause=PAUSE)
        first = self.check_answer(c, sp, acc)
        self.check_answer(c, sp, acc, cseq=2, direction="inactive", first=first)
        self.check_answer(c, sp, acc, cseq=3, direction="recvonly", first=first)
        self.check_details(c, self.rec, det, call_id, acc, aor_a, aor_b)
        dur = det.get("duration")
        want = PAUSE_SECONDS + TAIL_MS / 1000.0
        c(isinstance(dur, (int, float)) and abs(dur - want) <= DUR_TOL,
          "API duration %r, the call lasted ~%.1fs" % (dur, want))
        d = self.rec.session_dir(det.get("id", ""))
        c(os.path.isfile(os.path.join(d, "metadata-003.xml")),
          "no metadata-003.xml: the re-INVITEs' partial metadata was not kept")
        self.check_capture(c, self.rec, det, pkts, acc)
        if det.get("state") != "complete":
            return
        files = self.check_files(c, self.rec, det, PAUSE_SECONDS, acc,
                                 video_secs=PAUSE_SECONDS - (PAUSE[1] - PAUSE[0]))
        if not files.get("stereo"):
            return
        r = self.check_stereo(c, files["stereo"], PAUSE_SECONDS)
        if not r:
            return
        rate, chans = r
        gap = PAUSE[1] - PAUSE[0]
        for ch, name in ((0, "left"), (1, "right")):
            runs = [x for x in rt.silent_runs(chans[ch], rate) if x[1] - x[0] >= 0.5]
            c.note("stereo.wav %s silent runs: %s" % (name, ["%.2f-%.2f" % x for x in runs]))
            if not c(len(runs) == 1, "stereo.wav %s: %d silent runs >= 0.5 s %s, want one at "
                     "%.1f-%.1f s" % (name, len(runs), ["%.2f-%.2f" % x for x in runs], *PAUSE)):
                continue
            s, e = runs[0]
            c(abs((e - s) - gap) <= 0.3, "stereo.wav %s: silence lasts %.2fs, the pause %.1fs"
              % (name, e - s, gap))
            c(abs(s - PAUSE[0]) <= 0.3, "stereo.wav %s: silence starts at %.2fs, the pause at %.1fs"
              % (name, s, PAUSE[0]))
            # the tone is back after the pause
            p = rt.tone_powers(chans[ch], rate, (440, 880), start=PAUSE[1] + 0.5, secs=1.0)
            want = 440 if ch == 0 else 880
            c(p[want] > 1.25e-3, "stereo.wav %s: no %d Hz after the resume" % (name, want))


def main():
    s = Suite()
    tests = [("av_two_parties", s.av_two_parties), ("audio_only", s.audio_only),
             ("pause_resume", s.pause_resume), ("av_tcp", s.av_tcp)]
    status = 1
    try:
        status = rt.run_subtests(tests, s.tmp, recorders=s.recorders, cleanup=False)
    finally:
        if s.rec is not None:
            rc = s.rec.stop()
            if rc != 0:
                print("FAIL shutdown: tally-recorder exited with %s on SIGTERM (PID %d)\n%s"
                      % (rc, s.rec.pid, s.rec.log_tail(15)), flush=True)
                status = 1
        rt.cleanup_tmp(s.tmp, status)
    return status


if __name__ == "__main__":
    sys.exit(main())
