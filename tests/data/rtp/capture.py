#!/usr/bin/env python3
"""capture.py: make the RTP fixtures in this folder (see README.md).

Runs ffmpeg's RTP muxer against a UDP socket on loopback (a free port picked
at run time), keeps every datagram, and writes them as [u16 BE length][RTP
packet] records. A clip with a resolution change is two encodes whose second
half is rewritten (SSRC, sequence numbers, timestamps) to continue the first,
so the stream stays one RTP stream whose SPS / key frame header changes.

    python3 capture.py            # writes the *.rtp files next to itself
    python3 capture.py --fuzz-seeds ../../fuzz/corpus/depack
                                  # seeds for fuzz_depack from those files
"""
import base64
import os
import socket
import struct
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))


def encode(args, seconds, size, pt=96):
    """Run one ffmpeg encode to a loopback port; return the RTP packets."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.settimeout(0.5)
    pkts = []
    done = threading.Event()

    def rx():
        while True:
            try:
                pkts.append(sock.recv(65536))
            except socket.timeout:
                if done.is_set():
                    return

    t = threading.Thread(target=rx)
    t.start()
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
           "-f", "lavfi", "-i", "testsrc=size=%s:rate=25" % size,
           "-t", str(seconds)] + args + [
           "-f", "rtp", "-payload_type", str(pt), "-rtpflags", "skip_rtcp",
           "rtp://127.0.0.1:%d?pkt_size=1200" % port]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    done.set()
    t.join()
    sock.close()
    seqs = [struct.unpack("!H", p[2:4])[0] for p in pkts]
    for a, b in zip(seqs, seqs[1:]):
        if (a + 1) & 0xffff != b:
            sys.exit("capture lost or reordered packets: %d -> %d" % (a, b))
    return pkts


def continue_stream(first, second, frame_ticks):
    """Rewrite SECOND so it continues FIRST: same SSRC, next sequence
    numbers, timestamps one frame after FIRST's last."""
    ssrc = first[0][8:12]
    seq = struct.unpack("!H", first[-1][2:4])[0]
    ts_last = struct.unpack("!I", first[-1][4:8])[0]
    ts0 = struct.unpack("!I", second[0][4:8])[0]
    out = []
    for p in second:
        seq = (seq + 1) & 0xffff
        ts = struct.unpack("!I", p[4:8])[0]
        ts = (ts - ts0 + ts_last + frame_ticks) & 0xffffffff
        out.append(p[:2] + struct.pack("!HI", seq, ts) + ssrc + p[12:])
    return out


def write(name, pkts):
    with open(os.path.join(HERE, name), "wb") as f:
        for p in pkts:
            f.write(struct.pack("!H", len(p)) + p)
    print("%s: %d packets, %d bytes" % (name, len(pkts),
                                        sum(len(p) + 2 for p in pkts)))


X264 = ["-c:v", "libx264", "-tune", "zerolatency", "-g", "10",
        "-pix_fmt", "yuv420p"]
VPX = ["-c:v", "libvpx", "-deadline", "realtime", "-g", "10", "-b:v", "300k"]


def read(name):
    with open(os.path.join(HERE, name), "rb") as f:
        d = f.read()
    pkts, i = [], 0
    while i + 2 <= len(d):
        n = struct.unpack("!H", d[i:i + 2])[0]
        pkts.append(d[i + 2:i + 2 + n])
        i += 2 + n
    return pkts


def fuzz_input(codec, pkts, lose=(), fmtp=None):
    """fuzz_depack's input (tests/fuzz/fuzz_depack.c): codec byte, optional
    fmtp, then [u16 len][flags][payload] per RTP packet."""
    out = bytes([codec | (8 if fmtp is not None else 0)])
    if fmtp is not None:
        out += struct.pack("!H", len(fmtp)) + fmtp.encode()
    last = None
    for i, p in enumerate(pkts):
        if i in lose:
            continue
        ts = struct.unpack("!I", p[4:8])[0]
        flags = (p[1] >> 7) | (2 if i - 1 in lose else 0)
        if last is not None and ts != last:
            flags |= 4
        last = ts
        pl = p[12:]
        out += struct.pack("!HB", len(pl), flags) + pl
    return out


def fuzz_seeds(outdir):
    os.makedirs(outdir, exist_ok=True)
    seeds = {}
    for name, codec in (("h264_320x240", 6), ("h264_resize", 6),
                        ("vp8_320x240", 7), ("vp8_resize", 7)):
        pkts = read(name + ".rtp")
        seeds[name] = fuzz_input(codec, pkts)
        seeds[name + "-head"] = fuzz_input(codec, pkts[:8])
        seeds[name + "-loss"] = fuzz_input(codec, pkts[:24], lose=(2, 9))
    h = read("h264_320x240.rtp")
    # an IDR whose SPS/PPS come from sprop-parameter-sets (taken from the
    # first packet, an STAP-A of SPS, PPS, SEI)
    stap, i, nals = h[0][12:], 1, []
    while i < len(stap):
        n = struct.unpack("!H", stap[i:i + 2])[0]
        nals.append(base64.b64encode(stap[i + 2:i + 2 + n]).decode())
        i += 2 + n
    seeds["h264-sprop"] = fuzz_input(
        6, h[1:6], fmtp="packetization-mode=1;sprop-parameter-sets=" +
        ",".join(nals[:2]))
    for codec, pl in ((1, b"\xff" * 160), (2, b"\xd5" * 160),
                      (3, b"\x11" * 80), (4, b"\x78\x01\x02"),
                      (5, b"\x05\x8a\x03\x20")):
        seeds["audio-%d" % codec] = bytes([codec]) + \
            struct.pack("!HB", len(pl), 5) + pl
    for name, data in seeds.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(seeds), outdir))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--fuzz-seeds":
        fuzz_seeds(sys.argv[2])
        return
    # 25 frames, keyframes at 0, 10, 20
    write("h264_320x240.rtp",
          encode(X264 + ["-profile:v", "baseline"], 1, "320x240"))
    # 12 frames at 320x240 baseline, then 12 at 640x360 high profile with
    # custom scaling matrices (cqm=jvt): the second SPS has the high-profile
    # branch, scaling lists and frame cropping (360 = 23 MB rows - 8)
    a = encode(X264 + ["-profile:v", "baseline"], 0.48, "320x240")
    b = encode(X264 + ["-profile:v", "high", "-x264-params", "cqm=jvt"],
               0.48, "640x360")
    write("h264_resize.rtp", a + continue_stream(a, b, 3600))
    write("vp8_320x240.rtp", encode(VPX, 1, "320x240"))
    a = encode(VPX, 0.48, "320x240")
    b = encode(VPX, 0.48, "640x360")
    write("vp8_resize.rtp", a + continue_stream(a, b, 3600))


if __name__ == "__main__":
    main()
