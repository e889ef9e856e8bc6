#!/usr/bin/env python3
"""mkrtp.py: test media for tally-recorder, as one pcap of RTP + RTCP.

    python3 tests/tools/mkrtp.py --out F.pcap --seconds N [--base-port P]
        [--src-port S] [--dst-ip 127.0.0.1] [--pause START:END]
        [--delay I:MS] stream...

    stream:  audio:CODEC:HZ          CODEC pcmu|pcma|g722|opus, a HZ sine tone
             video:h264[:WxH[,WxH2]] libx264 baseline, testsrc, 25 fps
             video:vp8[:WxH[,WxH2]]  libvpx, testsrc, 25 fps
             (a second size switches the resolution halfway)

Stream i goes to DST-IP port P+2i (RTP) and P+2i+1 (RTCP), from port S+2i
and S+2i+1 (defaults: P 20000, S 30000). Writes F.pcap (classic pcap,
Ethernet linktype, what sipp's play_pcap wants) with every stream's packets
in arrival order, and F.json describing each stream (media, codec, pt,
clock, channels, fmtp, ssrc, ports, packets, tone, sizes, first/last
arrival) so a test can write the matching SDP or session.json.

How: for every stream (every half of a stream that changes size) ffmpeg's
RTP muxer encodes a lavfi source and sends RTP and RTCP to UDP sockets this
script listens on (127.0.0.1, ports picked by the kernel). ffmpeg runs
faster than real time, so the capture is then re-timed from the RTP
timestamps: a packet arrives at start + (ts - first ts) / clock (+ 0.1 ms
per packet within one video frame, + the stream's --delay), i.e. the pcap
is paced in real time. RTCP sender reports are re-timed the same way: the
first (sent before the first RTP packet) and the last (with the BYE) get an
NTP time and an RTP timestamp that agree with the RTP packets, and one SR
is added every 5 s in between, as ffmpeg sends them when it runs in real
time. NTP times are the sender's clock: without --delay, audio and video
captured at the same moment arrive at the same moment, and with --delay
the SRs still tell the true capture time (for A/V sync tests).

--pause START:END drops every packet (RTP and RTCP) sent between START and
END seconds, as an SRC does for a=inactive; RTP timestamps keep running
(--pause-rtp run, the default) or stand still during the pause, so the
first packet after it has the timestamp the first one of the pause would
have had (--pause-rtp stop: senders that stop their clock on hold).
--delay I:MS delays stream I's packets by MS milliseconds (network delay;
repeatable).

Payload types: PCMU 0, PCMA 8, G722 9, opus 111, H264 96, VP8 97. PCMU and
PCMA packets carry 160 samples (20 ms), G722 320 (20 ms), opus 20 ms.
Needs python3 (stdlib only) and the ffmpeg program (libx264, libvpx,
libopus).
"""

import argparse
import json
import os
import random
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import time

FPS = 25
SR_INTERVAL = 5.0          # seconds between sender reports
RCVBUF = 16 << 20

AUDIO = {
    # codec: (rtpmap name, pt, rtp clock, sample rate, channels in rtpmap,
    #         ffmpeg encoder, samples per packet at sample rate)
    "pcmu": ("PCMU", 0, 8000, 8000, 1, "pcm_mulaw", 160),
    "pcma": ("PCMA", 8, 8000, 8000, 1, "pcm_alaw", 160),
    "g722": ("G722", 9, 8000, 16000, 1, "g722", 320),
    "opus": ("opus", 111, 48000, 48000, 2, "libopus", 960),
}
VIDEO = {
    "h264": ("H264", 96),
    "vp8": ("VP8", 97),
}


def die(msg):
    sys.stderr.write("mkrtp: %s\n" % msg)
    sys.exit(2)


def parse_stream(text, seconds):
    f = text.split(":")
    if f[0] == "audio":
        if len(f) != 3 or f[1] not in AUDIO:
            die("bad audio stream %r (audio:pcmu|pcma|g722|opus:HZ)" % text)
        try:
            tone = float(f[2])
        except ValueError:
            die("bad tone in %r" % text)
        name, pt, clock, rate, ch, enc, nsamp = AUDIO[f[1]]
        return {"media": "audio", "codec": name, "pt": pt, "clock": clock,
                "channels": ch, "rate": rate, "encoder": enc,
                "samples": nsamp, "tone": tone, "key": f[1]}
    if f[0] == "video":
        if len(f) not in (2, 3) or f[1] not in VIDEO:
            die("bad video stream %r (video:h264|vp8[:WxH[,WxH2]])" % text)
        sizes = (f[2] if len(f) == 3 else "320x240").split(",")
        for s in sizes:
            try:
                w, h = (int(x) for x in s.split("x"))
            except ValueError:
                die("bad size %r in %r" % (s, text))
            if w <= 0 or h <= 0 or w % 2 or h % 2:
                die("bad size %r in %r (even, positive)" % (s, text))
        if len(sizes) > 2:
            die("at most two sizes in %r" % text)
        name, pt = VIDEO[f[1]]
        return {"media": "video", "codec": name, "pt": pt, "clock": 90000,
                "channels": 1, "sizes": sizes, "key": f[1]}
    die("bad stream %r (audio:... or video:...)" % text)
    return None


def udp_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:    # root may go past rmem_max (SO_RCVBUFFORCE)
        s.setsockopt(socket.SOL_SOCKET, 33, RCVBUF)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


class Job:
    """One ffmpeg run: one stream, or one half of a stream that changes
    size; captures what it sends."""

    def __init__(self, st, seconds, size, tmpdir, n, readrate):
        self.st = st
        self.seconds = seconds
        self.rtp = udp_socket()
        self.rtcp = udp_socket()
        self.got_rtp = []
        self.got_rtcp = []
        self.sdp = os.path.join(tmpdir, "job%d.sdp" % n)
        rport = self.rtp.getsockname()[1]
        cport = self.rtcp.getsockname()[1]
        url = "rtp://127.0.0.1:%d?rtcpport=%d&pkt_size=1200" % (rport, cport)
        cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error"]
        if readrate:
            cmd += ["-readrate", str(readrate)]
        if st["media"] == "audio":
            cmd += ["-f", "lavfi", "-i", "sine=frequency=%g:sample_rate=%d:duration=%g"
                    % (st["tone"], st["rate"], seconds),
                    "-af", "asetnsamples=n=%d:p=0" % st["samples"],
                    "-c:a", st["encoder"], "-ar", str(st["rate"]), "-ac", "1"]
            if st["key"] == "opus":
                cmd += ["-b:a", "32k", "-frame_duration", "20",
                        "-application", "voip"]
        else:
            cmd += ["-f", "lavfi", "-i", "testsrc=size=%s:rate=%d:duration=%g"
                    % (size, FPS, seconds), "-pix_fmt", "yuv420p"]
            if st["key"] == "h264":
                cmd += ["-c:v", "libx264", "-profile:v", "baseline",
                        "-preset", "veryfast", "-tune", "zerolatency",
                        "-g", str(2 * FPS), "-bf", "0", "-b:v", "400k"]
            else:
                cmd += ["-c:v", "libvpx", "-deadline", "realtime",
                        "-cpu-used", "8", "-g", str(2 * FPS), "-b:v", "400k",
                        "-auto-alt-ref", "0", "-lag-in-frames", "0"]
        cmd += ["-payload_type", str(st["pt"]),
                "-f", "rtp", "-sdp_file", self.sdp, url]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)

    def fmtp(self):
        try:
            with open(self.sdp) as f:
                for line in f:
                    line = line.strip()
                    if line.startswith("a=fmtp:"):
                        return line.split(" ", 1)[1] if " " in line else ""
        except OSError:
            pass
        return ""

    def close(self):
        self.rtp.close()
        self.rtcp.close()


def capture(jobs):
    """Reads every socket until all ffmpeg runs have exited and the sockets
    are drained."""
    sel = selectors.DefaultSelector()
    for j in jobs:
        sel.register(j.rtp, selectors.EVENT_READ, (j, False))
        sel.register(j.rtcp, selectors.EVENT_READ, (j, True))
    quiet_since = None
    while True:
        events = sel.select(timeout=0.05)
        for key, _ in events:
            j, is_rtcp = key.data
            while True:
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    break
                (j.got_rtcp if is_rtcp else j.got_rtp).append(data)
        if all(j.proc.poll() is not None for j in jobs):
            if events:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 0.2:
                break
    sel.close()
    for j in jobs:
        err = j.proc.stderr.read().decode("utf-8", "replace")
        if j.proc.returncode != 0:
            die("ffmpeg failed (rc %d): %s\n%s" % (j.proc.returncode,
                                                  " ".join(j.cmd), err[-2000:]))


def rtp_fields(p):
    if len(p) < 12 or p[0] >> 6 != 2:
        return None
    seq, ts, ssrc = struct.unpack("!HII", p[2:12])
    return seq, ts, ssrc


def lost_in(job):
    """Sequence gaps in a capture (socket overflow): count of missing."""
    seqs = [rtp_fields(p)[0] for p in job.got_rtp if rtp_fields(p)]
    missing = 0
    for a, b in zip(seqs, seqs[1:]):
        d = (b - a) & 0xffff
        if d != 1:
            missing += (d - 1) if d < 0x8000 else 1
    return missing


def rtp_time(st, t):
    """Media time T on the stream's RTP clock (seconds): stands still
    during a --pause-rtp stop pause."""
    p = st.get("pause")
    if p and st.get("pause_stop") and t >= p[0]:
        return t - (min(t, p[1]) - p[0])
    return t


def stream_packets(st, jobs, seconds):
    """Concatenates a stream's runs into one RTP stream (one SSRC, running
    sequence numbers and timestamps) and returns [(media time, pkt)]."""
    out = []
    seq = random.randrange(0x10000)
    base = random.randrange(1 << 32)
    offset = 0.0
    for j in jobs:
        first_ts = None
        for p in j.got_rtp:
            f = rtp_fields(p)
            if not f:
                continue
            ts = f[1]
            if first_ts is None:
                first_ts = ts
            rel = ((ts - first_ts) & 0xffffffff) / st["clock"]
            t = offset + rel
            nts = (base + round(rtp_time(st, t) * st["clock"])) & 0xffffffff
            q = bytearray(p)
            struct.pack_into("!HII", q, 2, seq, nts, st["ssrc"])
            seq = (seq + 1) & 0xffff
            out.append((t, bytes(q)))
        offset += j.seconds
    st["ts_base"] = base
    return out


def sr_packet(st, template, t, sent, octets, bye):
    """An RTCP SR (+ SDES CNAME from ffmpeg's own, + BYE) for media time t."""
    ntp = st["wall0"] + t
    sec = int(ntp) + 2208988800
    frac = int((ntp - int(ntp)) * (1 << 32)) & 0xffffffff
    rts = (st["ts_base"] + round(rtp_time(st, t) * st["clock"])) & 0xffffffff
    sr = struct.pack("!BBHIIIIII", 0x80, 200, 6, st["ssrc"], sec, frac, rts,
                     sent, octets)
    rest = b""
    # keep ffmpeg's SDES (and BYE) after its SR, with our SSRC
    off = 0
    while template and off + 4 <= len(template):
        ln = (struct.unpack("!H", template[off + 2:off + 4])[0] + 1) * 4
        pt = template[off + 1]
        chunk = bytearray(template[off:off + ln])
        if pt == 202 and len(chunk) >= 8:
            struct.pack_into("!I", chunk, 4, st["ssrc"])
            rest += bytes(chunk)
        off += ln
    if bye:
        rest += struct.pack("!BBHI", 0x81, 203, 1, st["ssrc"])
    return sr + rest


def stream_rtcp(st, jobs, rtp, seconds):
    """Sender reports at 0, every SR_INTERVAL and at the end (with BYE)."""
    template = None
    for j in jobs:
        for p in j.got_rtcp:
            if len(p) >= 8 and p[1] == 200:
                template = p
                break
        if template:
            break
    times = [0.0]
    t = SR_INTERVAL
    while t < seconds:
        times.append(t)
        t += SR_INTERVAL
    end = rtp[-1][0] if rtp else 0.0
    out = []
    k = 0
    sent = octets = 0
    for n, t in enumerate(times + [end]):
        while k < len(rtp) and rtp[k][0] < t:
            sent += 1
            octets += len(rtp[k][1]) - 12
            k += 1
        bye = n == len(times)
        # the first SR leaves before the first packet, the last after
        t += 0.0005 if bye else -0.0005
        out.append((t, sr_packet(st, template, t, sent, octets, bye)))
    return out


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def frame(src, dst, sport, dport, payload, ipid):
    """Ethernet + IPv4/IPv6 + UDP around PAYLOAD."""
    ulen = 8 + len(payload)
    if ":" in dst:
        s6 = socket.inet_pton(socket.AF_INET6, src)
        d6 = socket.inet_pton(socket.AF_INET6, dst)
        pseudo = s6 + d6 + struct.pack("!I3xB", ulen, 17)
        udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
        c = csum(pseudo + udp) or 0xffff
        udp = udp[:6] + struct.pack("!H", c) + udp[8:]
        ip = struct.pack("!IHBB", 6 << 28, ulen, 17, 64) + s6 + d6
        return b"\0" * 12 + b"\x86\xdd" + ip + udp
    s4 = socket.inet_aton(src)
    d4 = socket.inet_aton(dst)
    pseudo = s4 + d4 + struct.pack("!BBH", 0, 17, ulen)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    c = csum(pseudo + udp) or 0xffff
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, ipid & 0xffff, 0x4000,
                     64, 17, 0, s4, d4)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\0" * 12 + b"\x08\x00" + ip + udp


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--base-port", type=int, default=20000)
    ap.add_argument("--src-port", type=int, default=30000)
    ap.add_argument("--dst-ip", default="127.0.0.1")
    ap.add_argument("--pause", default=None, help="START:END seconds")
    ap.add_argument("--pause-rtp", choices=("run", "stop"), default="run",
                    help="RTP clock during the pause")
    ap.add_argument("--delay", action="append", default=[],
                    help="I:MS network delay of stream I (repeatable)")
    ap.add_argument("streams", nargs="+")
    a = ap.parse_args()

    if a.seconds <= 0 or a.seconds > 3600:
        die("--seconds must be in (0, 3600]")
    nstreams = len(a.streams)
    for p in (a.base_port, a.src_port):
        if p <= 0 or p + 2 * nstreams > 65535:
            die("port %d out of range for %d streams" % (p, nstreams))
    pause = None
    if a.pause:
        try:
            pause = tuple(float(x) for x in a.pause.split(":"))
        except ValueError:
            pause = ()
        if len(pause) != 2 or not 0 <= pause[0] < pause[1]:
            die("bad --pause %r (START:END seconds, START < END)" % a.pause)
    delays = {}
    for d in a.delay:
        try:
            i, ms = d.split(":")
            delays[int(i)] = float(ms) / 1000.0
        except ValueError:
            die("bad --delay %r (I:MS)" % d)
    try:
        fam = socket.AF_INET6 if ":" in a.dst_ip else socket.AF_INET
        socket.inet_pton(fam, a.dst_ip)
    except OSError:
        die("bad --dst-ip %r" % a.dst_ip)
    src_ip = "::1" if ":" in a.dst_ip else "127.0.0.1"

    streams = [parse_stream(s, a.seconds) for s in a.streams]
    ssrcs = random.sample(range(1, 1 << 32), len(streams))
    for i, st in enumerate(streams):
        st["ssrc"] = ssrcs[i]
        st["pause"] = pause
        st["pause_stop"] = a.pause_rtp == "stop"

    t_start = time.monotonic()
    readrate = None
    for attempt in range(3):
        with tempfile.TemporaryDirectory(prefix="mkrtp-") as tmp:
            jobs = []
            n = 0
            for st in streams:
                st["jobs"] = []
                if st["media"] == "video" and len(st["sizes"]) == 2:
                    half = round(a.seconds / 2 * FPS) / FPS
                    parts = [(st["sizes"][0], half), (st["sizes"][1], a.seconds - half)]
                elif st["media"] == "video":
                    parts = [(st["sizes"][0], a.seconds)]
                else:
                    parts = [(None, a.seconds)]
                for size, secs in parts:
                    j = Job(st, secs, size, tmp, n, readrate)
                    n += 1
                    st["jobs"].append(j)
                    jobs.append(j)
            try:
                capture(jobs)
                for st in streams:
                    st["fmtp"] = st["jobs"][0].fmtp()
            finally:
                for j in jobs:
                    if j.proc.poll() is None:
                        j.proc.kill()
                        j.proc.wait()
                    j.close()
        lost = sum(lost_in(j) for j in jobs)
        empty = [j for j in jobs if not j.got_rtp]
        if not lost and not empty:
            break
        readrate = 4 if readrate is None else 1
        sys.stderr.write("mkrtp: %d packet(s) lost in the capture, again at "
                         "-readrate %d\n" % (lost, readrate))
    else:
        die("packets lost in the capture on every attempt")

    wall0 = time.time()
    records = []      # (arrival, order, stream index, is_rtcp, payload)
    order = 0
    for i, st in enumerate(streams):
        st["wall0"] = wall0 + 0.003 * i      # senders never start together
        rtp = stream_packets(st, st["jobs"], a.seconds)
        rtcp = stream_rtcp(st, st["jobs"], rtp, a.seconds)
        delay = delays.get(i, 0.0)
        st["packets"] = st["rtcp"] = 0
        st["first"] = st["last"] = None
        prev_ts = None
        burst = 0
        for t, p in rtp:
            ts = rtp_fields(p)[1]
            burst = burst + 1 if ts == prev_ts else 0
            prev_ts = ts
            if pause and pause[0] <= t < pause[1]:
                continue
            at = st["wall0"] + t + delay + 0.0001 * burst
            records.append((at, order, i, False, p))
            order += 1
            st["packets"] += 1
            st["first"] = at if st["first"] is None else st["first"]
            st["last"] = at
        for t, p in rtcp:
            if pause and pause[0] <= t < pause[1]:
                continue
            records.append((st["wall0"] + t + delay, order, i, True, p))
            order += 1
            st["rtcp"] += 1
    records.sort()

    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for n, (at, _, i, is_rtcp, p) in enumerate(records):
            dport = a.base_port + 2 * i + (1 if is_rtcp else 0)
            sport = a.src_port + 2 * i + (1 if is_rtcp else 0)
            fr = frame(src_ip, a.dst_ip, sport, dport, p, n)
            sec = int(at)
            usec = int(round((at - sec) * 1e6))
            if usec >= 1000000:
                sec, usec = sec + 1, usec - 1000000
            f.write(struct.pack("<IIII", sec, usec, len(fr), len(fr)))
            f.write(fr)

    desc = {
        "pcap": os.path.basename(a.out),
        "seconds": a.seconds,
        "start": records[0][0] if records else wall0,
        "end": records[-1][0] if records else wall0,
        "pause": list(pause) if pause else None,
        "pause_rtp": a.pause_rtp,
        "dst_ip": a.dst_ip,
        "src_ip": src_ip,
        "streams": [],
    }
    for i, st in enumerate(streams):
        d = {"index": i, "media": st["media"], "codec": st["codec"],
             "pt": st["pt"], "clock": st["clock"], "channels": st["channels"],
             "fmtp": st["fmtp"], "ssrc": st["ssrc"],
             "port": a.base_port + 2 * i, "rtcp_port": a.base_port + 2 * i + 1,
             "src_port": a.src_port + 2 * i, "packets": st["packets"],
             "rtcp": st["rtcp"], "first": st["first"], "last": st["last"],
             "delay_ms": delays.get(i, 0.0) * 1000.0,
             "spec": a.streams[i]}
        if st["media"] == "audio":
            d["tone"] = st["tone"]
        else:
            d["sizes"] = st["sizes"]
            d["fps"] = FPS
        desc["streams"].append(d)
    with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
        json.dump(desc, f, indent=1)
        f.write("\n")

    for d in desc["streams"]:
        print("stream %d: %s %s pt %d -> port %d/%d, ssrc %08x, %d RTP + %d RTCP%s"
              % (d["index"], d["media"], d["codec"], d["pt"], d["port"],
                 d["rtcp_port"], d["ssrc"], d["packets"], d["rtcp"],
                 (", %s" % ",".join(d["sizes"])) if "sizes" in d else
                 (", %g Hz" % d["tone"])))
    print("wrote %s (%d packets, %.1f s of media) in %.1f s"
          % (a.out, len(records), a.seconds, time.monotonic() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
