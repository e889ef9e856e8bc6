#!/usr/bin/env python3
"""Interop test: Kamailio (rtpengine module) -> media daemon, one real
audio+video call between two sipp endpoints.

    sipp UAC --SIP--> kamailio --SIP--> sipp UAS
        \\                 | ng (rtpengine_offer/answer/delete)     /
         `--RTP--> media daemon (tally-media or rtpengine) --RTP--'

The UAC sends a 440 Hz PCMU tone (rtp_stream) and an H.264 CIF pcap (play_pcap_video),
the UAS answers and sends its own 880 Hz tone and another H.264 pcap, so the
four streams are all different. Everything runs on 127.0.0.1 with ports
picked at run time; a dumpcap capture limited to the test's port block is
checked afterwards like a user would:

  * sipp UAC and UAS exit 0, one successful call each;
  * all SIP (INVITE/180/200/ACK/BYE/200) went through kamailio and kamailio
    called offer/answer/delete successfully;
  * the SDPs the endpoints got point at the daemon (127.0.0.1, ports in its range);
  * every RTP stream (audio and video, both directions) went
    endpoint -> daemon -> other endpoint, nothing endpoint -> endpoint,
    payload types as offered (0 / 96), the second hop carries >= 97 % of the
    first hop's packets, byte-identical payloads (the callee gets the caller's
    tone and video frames and vice versa);
  * ng `query` during the call shows packets on every stream of both parties,
    the `delete` reply kamailio got reports the call's packets, and after the
    BYE the call is gone (`list` without it, `query` -> error).

Environment:
  TALLY_MEDIA      tally-media binary (default: build/src/media/tally-media)
  TALLY_NG_TARGET  "rtpengine" = run /usr/bin/rtpengine instead (validates the test)
  TALLY_DATA       tests/data directory (default: next to this script)
  TALLY_KEEP=1     keep the temporary directory (logs, capture) and print its path
Exit codes: 0 pass, 1 fail, 77 skipped (a peer program missing or not root).
Stdlib only.
"""

import hashlib
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("TALLY_SRC", os.path.normpath(os.path.join(HERE, "..", "..")))
DATA = os.environ.get("TALLY_DATA", os.path.join(SRC, "tests", "data"))
MEDIA_DIR = os.path.join(DATA, "interop")
LOCAL = "127.0.0.1"

TARGET = os.environ.get("TALLY_NG_TARGET", "tally-media")
AUDIO_PT, VIDEO_PT = 0, 96
MIN_RATIO = 0.97          # relay->endpoint packets / endpoint->relay packets
CALL_TIMEOUT = 45         # s, upper bound for the whole sipp call

failures = []
started = []              # (name, Popen) of every process this test started


def log(msg):
    print(msg, flush=True)


def check(cond, msg):
    log(("ok    " if cond else "FAIL  ") + msg)
    if not cond:
        failures.append(msg)
    return cond


def skip(msg):
    log("SKIP: " + msg)
    sys.exit(77)


# ---------------------------------------------------------------- bencode

def benc(v):
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, (bytes, bytearray)):
        return b"%d:%s" % (len(v), bytes(v))
    if isinstance(v, (list, tuple)):
        return b"l" + b"".join(benc(x) for x in v) + b"e"
    if isinstance(v, dict):
        out = b"d"
        for k in sorted(v, key=lambda k: k.encode() if isinstance(k, str) else k):
            out += benc(k) + benc(v[k])
        return out + b"e"
    raise TypeError(type(v))


def bdec(data, i=0):
    """Returns (value, next index). Byte strings are decoded as UTF-8 when possible."""
    c = data[i:i + 1]
    if c == b"i":
        j = data.index(b"e", i)
        return int(data[i + 1:j]), j + 1
    if c == b"l":
        i += 1
        out = []
        while data[i:i + 1] != b"e":
            v, i = bdec(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while data[i:i + 1] != b"e":
            k, i = bdec(data, i)
            v, i = bdec(data, i)
            out[k] = v
        return out, i + 1
    j = data.index(b":", i)
    n = int(data[i:j])
    s = data[j + 1:j + 1 + n]
    try:
        s = s.decode()
    except UnicodeDecodeError:
        pass
    return s, j + 1 + n


def ng_parse(datagram):
    cookie, _, body = datagram.partition(b" ")
    return cookie.decode(errors="replace"), bdec(body)[0]


class Ng:
    def __init__(self, port):
        self.addr = (LOCAL, port)
        self.n = 0

    def req(self, cmd, timeout=2.0, tries=3, **kw):
        msg = {"command": cmd}
        msg.update(kw)
        self.n += 1
        cookie = "itest%d_%d" % (os.getpid(), self.n)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.settimeout(timeout)
            for _ in range(tries):
                s.sendto(cookie.encode() + b" " + benc(msg), self.addr)
                try:
                    while True:
                        data = s.recv(65535)
                        c, reply = ng_parse(data)
                        if c == cookie:
                            return reply
                except socket.timeout:
                    continue
                except ConnectionRefusedError:
                    time.sleep(timeout / 4)
                    continue
        finally:
            s.close()
        return None


# ---------------------------------------------------------------- ports

def udp_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((LOCAL, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def tcp_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((LOCAL, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_block(n, tcp=()):
    """n consecutive free UDP ports, even base. Taken above the kernel's
    ephemeral range (ip_local_port_range) when there is room, so no client
    socket of another program lands in the block while the test runs."""
    lo, hi = 32768, 60999
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        pass
    spans = [(a, b) for a, b in ((hi + 1, 65535 - n), (10000, lo - n)) if b - a >= 4 * n]
    if not spans:
        spans = [(1024, 65535 - n)]
    for _ in range(200):
        a, b = random.choice(spans)
        base = random.randrange(a, b) & ~1
        if all(udp_free(p) for p in range(base, base + n)) and all(tcp_free(base + o) for o in tcp):
            return base
    raise RuntimeError("no free block of %d UDP ports" % n)


# ---------------------------------------------------------------- pcap

def read_pcap(path):
    """Yields (time, src_port, dst_port, udp_payload) of IPv4/UDP packets of a
    classic pcap (Ethernet, Linux cooked or raw IP link types)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError("%s: not a classic pcap" % path)
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(e + "I", data[20:24])[0]
    i = 24
    while i + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(e + "IIII", data[i:i + 16])
        pkt = data[i + 16:i + 16 + incl]
        i += 16 + incl
        t = sec + frac / (1e9 if nano else 1e6)
        if linktype == 1:                       # Ethernet
            if len(pkt) < 14 or pkt[12:14] != b"\x08\x00":
                continue
            ip = pkt[14:]
        elif linktype == 113:                   # Linux cooked
            if len(pkt) < 16 or pkt[14:16] != b"\x08\x00":
                continue
            ip = pkt[16:]
        elif linktype in (101, 228):            # raw IPv4
            ip = pkt
        else:
            continue
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        if struct.unpack("!H", ip[6:8])[0] & 0x3fff:
            continue                            # fragments: not expected here
        ihl = (ip[0] & 15) * 4
        udp = ip[ihl:]
        if len(udp) < 8:
            continue
        sp, dp, ulen = struct.unpack("!HHH", udp[:6])
        yield t, sp, dp, udp[8:ulen]


def rtp_parse(p):
    """(pt, seq, ssrc, payload) or None for non-RTP / RTCP."""
    if len(p) < 12 or p[0] >> 6 != 2:
        return None
    if 200 <= p[1] <= 204:
        return None                             # RTCP
    cc = p[0] & 15
    off = 12 + 4 * cc
    if p[0] & 0x10:
        if len(p) < off + 4:
            return None
        off += 4 + 4 * struct.unpack("!H", p[off + 2:off + 4])[0]
    end = len(p)
    if p[0] & 0x20 and end > off:
        end -= p[-1]
    seq, _ts, ssrc = struct.unpack("!HII", p[2:12])
    return p[1] & 0x7f, seq, ssrc, bytes(p[off:end])


def pcap_payloads(path):
    out = []
    for _t, _sp, _dp, p in read_pcap(path):
        r = rtp_parse(p)
        if r:
            out.append(r[3])
    return out


def sip_parse(p):
    try:
        text = p.decode("utf-8", errors="replace")
    except Exception:
        return None
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    first = lines[0]
    if not (first.startswith("SIP/2.0 ") or first.endswith(" SIP/2.0")):
        return None
    hdr = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdr.setdefault(k.strip().lower(), v.strip())
    if first.startswith("SIP/2.0 "):
        kind = first.split()[1]                 # status code
    else:
        kind = first.split()[0]                 # method
    return {"kind": kind, "first": first, "hdr": hdr, "body": body,
            "cseq": hdr.get("cseq", "")}


def sdp_media(body):
    """[(type, port, [pts])], connection address."""
    media, conn = [], None
    for ln in body.splitlines():
        ln = ln.strip()
        if ln.startswith("c=IN IP4 "):
            conn = conn or ln.split()[2]
        elif ln.startswith("m="):
            f = ln[2:].split()
            media.append((f[0], int(f[1]), [int(x) for x in f[3:] if x.isdigit()]))
    return media, conn


# ---------------------------------------------------------------- processes

def start(name, argv, tmp, **kw):
    out = open(os.path.join(tmp, name + ".log"), "wb")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, **kw)
    out.close()
    started.append((name, p))
    return p


def stop(p, sig=signal.SIGTERM, wait=5.0):
    if p.poll() is not None:
        return p.returncode
    try:
        p.send_signal(sig)
        return p.wait(wait)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait(5)


def stop_all():
    for name, p in reversed(started):
        stop(p, signal.SIGINT if name == "dumpcap" else signal.SIGTERM)


def tail(path, n=25):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        return "\n".join("    | " + ln for ln in lines[-n:])
    except OSError:
        return "    | (no %s)" % path


def wait_udp_bound(port, proc, secs=10):
    end = time.time() + secs
    while time.time() < end:
        if proc.poll() is not None:
            return False
        if not udp_free(port):
            return True
        time.sleep(0.05)
    return False


def sipp_stat(csv_path):
    """Last line of a sipp -trace_stat CSV as {field: value}."""
    try:
        with open(csv_path) as f:
            rows = [r.rstrip("\n").split(";") for r in f if r.strip()]
    except OSError:
        return {}
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1]))


# ---------------------------------------------------------------- test

def preflight(progs, data_files, need_root):
    """Skips (77) when a peer program is missing; returns (daemon, kamailio) or None."""
    for prog in progs:
        if not shutil.which(prog) and not os.path.exists("/usr/sbin/" + prog):
            skip("%s not installed" % prog)
    if need_root and os.geteuid() != 0:
        skip("needs root (raw sockets: sipp pcap play, dumpcap on lo)")
    kamailio = shutil.which("kamailio") or "/usr/sbin/kamailio"
    if TARGET == "rtpengine":
        daemon = shutil.which("rtpengine") or "/usr/bin/rtpengine"
        if not os.path.exists(daemon):
            skip("rtpengine not installed")
    else:
        daemon = os.environ.get("TALLY_MEDIA") or os.path.join(SRC, "build", "src", "media", "tally-media")
        if not os.access(daemon, os.X_OK):
            log("FAIL  tally-media binary not found: %s (set TALLY_MEDIA)" % daemon)
            return None
    for f in data_files:
        if not os.path.exists(os.path.join(MEDIA_DIR, f)):
            log("FAIL  missing test data %s/%s" % (MEDIA_DIR, f))
            return None
    return daemon, kamailio


def harness(body, logs):
    """Runs body(tmp) in a temporary directory, stops every started process,
    prints log tails on failure and removes the directory unless kept."""
    tmp = tempfile.mkdtemp(prefix="tally-interop-")
    os.chmod(tmp, 0o755)
    t_start = time.time()
    rc = 1
    try:
        rc = body(tmp)
        return rc
    finally:
        stop_all()
        log("runtime %.1f s" % (time.time() - t_start))
        if rc or failures or os.environ.get("TALLY_KEEP") == "1":
            if rc or failures:
                for name in logs:
                    log("--- %s.log (tail)" % name)
                    log(tail(os.path.join(tmp, name + ".log")))
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    pf = preflight(("kamailio", "sipp", "dumpcap"),
                   ("kamailio.cfg", "uac_av.xml", "uas_av.xml", "tone440.ulaw", "tone880.ulaw",
                    "h264_uac.pcap", "h264_uas.pcap"), True)
    if not pf:
        return 1
    daemon, kamailio = pf
    # One block of ports for everything, so one capture filter covers the test.
    NPORTS = 48
    base = pick_block(NPORTS)
    P = {
        "kam": base, "uac": base + 1, "uas": base + 2, "ng": base + 3,
        "uac_mp": base + 4, "uas_mp": base + 8,         # +0 audio, +2 video (+1/+3 RTCP)
        "rtp_min": base + 16, "rtp_max": base + NPORTS - 1,
    }
    log("target %s (%s); ports %d-%d: %s" % (TARGET, daemon, base, base + NPORTS - 1, P))
    in_range = lambda port: P["rtp_min"] <= port <= P["rtp_max"]
    return harness(lambda tmp: run(tmp, P, daemon, kamailio, in_range, base, NPORTS),
                   ("daemon", "kamailio", "sipp_uas", "sipp_uac"))


def start_daemon(tmp, P, daemon):
    """Starts the media daemon (ng on P['ng'], media ports P['rtp_min'..'rtp_max']),
    waits for its ng pong. Returns the Ng client or None."""
    ng = Ng(P["ng"])
    if TARGET == "rtpengine":
        argv = [daemon, "--config-file=none", "--table=-1", "--delete-delay=0", "--log-stderr",
                "--interface=" + LOCAL, "--listen-ng=%s:%d" % (LOCAL, P["ng"]),
                "--port-min=%d" % P["rtp_min"], "--port-max=%d" % P["rtp_max"],
                "--foreground", "--log-level=6", "--timeout=60", "--num-threads=2"]
    else:
        argv = [daemon, "--config-file=none", "--interface=" + LOCAL,
                "--listen-ng=%s:%d" % (LOCAL, P["ng"]),
                "--port-min=%d" % P["rtp_min"], "--port-max=%d" % P["rtp_max"],
                "--foreground", "--log-level=6", "--timeout=60",
                # every packet is checked in a capture on lo, where a
                # segmentation-offload send shows as one large datagram
                # (test_ng_relay.py checks that path at the receiving sockets)
                "--gso=no"]
    d = start("daemon", argv, tmp)
    pong = None
    end = time.time() + 10
    while time.time() < end and d.poll() is None:
        pong = ng.req("ping", timeout=0.5, tries=1)
        if pong:
            break
    if not check(pong is not None and pong.get("result") == "pong",
                 "media daemon answers ng ping (%r)" % (pong,)):
        return None
    return ng


def start_capture(tmp, lo, hi):
    """dumpcap on lo, classic pcap, only UDP ports lo..hi. Returns (Popen, path) or None."""
    cap = os.path.join(tmp, "cap.pcap")
    dc = start("dumpcap", ["dumpcap", "-q", "-P", "-i", "lo", "-B", "16",
                           "-f", "udp portrange %d-%d" % (lo, hi), "-w", cap], tmp)
    end = time.time() + 10
    while time.time() < end and dc.poll() is None:
        if os.path.exists(cap) and os.path.getsize(cap) >= 24:
            break
        time.sleep(0.05)
    if not check(dc.poll() is None and os.path.exists(cap), "dumpcap capturing on lo"):
        return None
    time.sleep(0.3)
    return dc, cap


def start_kamailio(tmp, P, kamailio, callee):
    """kamailio from the template, SIP on P['kam'], ng to P['ng'], initial INVITEs
    to callee; waits until it answers an OPTIONS. Returns Popen or None."""
    kdir = os.path.join(tmp, "kamailio")
    os.mkdir(kdir)
    with open(os.path.join(MEDIA_DIR, "kamailio.cfg")) as f:
        cfg = f.read()
    cfg = (cfg.replace("@SIP_PORT@", str(P["kam"])).replace("@NG_PORT@", str(P["ng"]))
              .replace("@CALLEE@", callee))
    cfgp = os.path.join(kdir, "kamailio.cfg")
    with open(cfgp, "w") as f:
        f.write(cfg)
    k = start("kamailio", [kamailio, "-f", cfgp, "-DD", "-E", "-m", "64", "-M", "8",
                           "-P", os.path.join(kdir, "kamailio.pid"), "-Y", kdir, "-w", kdir], tmp)
    # ready = answers an OPTIONS (the config replies 405 to it)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((LOCAL, 0))
    s.settimeout(0.3)
    ready = False
    end = time.time() + 15
    while time.time() < end and k.poll() is None and not ready:
        lp = s.getsockname()[1]
        opt = ("OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK%d\r\n"
               "From: <sip:probe@%s>;tag=p\r\nTo: <sip:%s:%d>\r\nCall-ID: probe-%d\r\n"
               "CSeq: 1 OPTIONS\r\nMax-Forwards: 5\r\nContent-Length: 0\r\n\r\n"
               % (LOCAL, P["kam"], LOCAL, lp, random.randrange(1 << 30), LOCAL, LOCAL, P["kam"],
                  os.getpid()))
        s.sendto(opt.encode(), (LOCAL, P["kam"]))
        try:
            ready = s.recv(4096).startswith(b"SIP/2.0 ")
        except OSError:
            time.sleep(0.2)
    s.close()
    if not check(ready, "kamailio up on %s:%d" % (LOCAL, P["kam"])):
        return None
    return k


def finish_kamailio(tmp, k, dc):
    """Stops kamailio and the capture; checks kamailio's rtpengine calls."""
    check(k.poll() is None, "kamailio still running at the end")
    stop(k)
    time.sleep(0.3)
    stop(dc, signal.SIGINT)
    with open(os.path.join(tmp, "kamailio.log"), errors="replace") as f:
        klog = f.read()
    check("INTEROP offer ok" in klog and "INTEROP answer ok" in klog and "INTEROP delete ok" in klog,
          "kamailio: rtpengine_offer, rtpengine_answer, rtpengine_delete succeeded")
    check("FAILED" not in klog, "kamailio: no rtpengine call failed")


def run(tmp, P, daemon, kamailio, in_range, base, nports):
    ng = start_daemon(tmp, P, daemon)
    if not ng:
        return 1
    r = start_capture(tmp, base, base + nports - 1)
    if not r:
        return 1
    dc, cap = r
    k = start_kamailio(tmp, P, kamailio, "sip:%s:%d" % (LOCAL, P["uas"]))
    if not k:
        return 1

    # ---- sipp scenarios (media paths are loaded at parse time: substitute them)
    for sc in ("uac_av.xml", "uas_av.xml"):
        with open(os.path.join(MEDIA_DIR, sc)) as f:
            x = f.read().replace("@MEDIA@", MEDIA_DIR)
        with open(os.path.join(tmp, sc), "w") as f:
            f.write(x)
    common = ["-i", LOCAL, "-mi", LOCAL, "-m", "1", "-nostdin", "-timeout", str(CALL_TIMEOUT),
              "-timeout_error", "-trace_err", "-trace_msg", "-trace_stat", "-fd", "1"]
    uas = start("sipp_uas", ["sipp", "-sf", "uas_av.xml", "-p", str(P["uas"]), "-mp", str(P["uas_mp"]),
                             "-stf", "uas_stat.csv"] + common, tmp, cwd=tmp)
    if not check(wait_udp_bound(P["uas"], uas), "sipp UAS listening on %d" % P["uas"]):
        return 1
    uac = start("sipp_uac", ["sipp", "%s:%d" % (LOCAL, P["kam"]), "-sf", "uac_av.xml", "-s", "uas",
                             "-p", str(P["uac"]), "-mp", str(P["uac_mp"]), "-l", "1",
                             "-cid_str", "interop-%u-%p@%s", "-stf", "uac_stat.csv"] + common,
                tmp, cwd=tmp)

    # ---- during the call: list + query
    callid, query = None, None
    t0 = time.time()
    while time.time() - t0 < 10 and uac.poll() is None and callid is None:
        r = ng.req("list", timeout=0.5)
        if r and r.get("result") == "ok" and r.get("calls"):
            callid = r["calls"][0]
        else:
            time.sleep(0.1)
    check(callid is not None and str(callid).startswith("interop-"),
          "ng list shows the call during the call (%r)" % (callid,))
    if callid:
        time.sleep(4.5)                         # media started with the ACK, lasts 6 s
        query = ng.req("query", **{"call-id": callid})
        check(query is not None and query.get("result") == "ok",
              "ng query during the call: result ok (%s)" % (query and query.get("result"),))

    try:
        uac_rc = uac.wait(CALL_TIMEOUT + 10)
    except subprocess.TimeoutExpired:
        uac_rc = stop(uac, signal.SIGKILL)
    try:
        uas_rc = uas.wait(10)
    except subprocess.TimeoutExpired:
        uas_rc = stop(uas, signal.SIGKILL)
    call_dur = time.time() - t0
    st_uac, st_uas = sipp_stat(os.path.join(tmp, "uac_stat.csv")), sipp_stat(os.path.join(tmp, "uas_stat.csv"))
    check(uac_rc == 0, "sipp UAC exit code 0 (got %s)" % uac_rc)
    check(st_uac.get("SuccessfulCall(C)") == "1" and st_uac.get("FailedCall(C)") == "0",
          "sipp UAC: 1 successful call, 0 failed (%s/%s)"
          % (st_uac.get("SuccessfulCall(C)"), st_uac.get("FailedCall(C)")))
    check(uas_rc == 0, "sipp UAS exit code 0 (got %s)" % uas_rc)
    check(st_uas.get("SuccessfulCall(C)") == "1", "sipp UAS: 1 successful call (%s)"
          % st_uas.get("SuccessfulCall(C)"))
    log("      call took %.1f s" % call_dur)

    # ---- after BYE: the call must be gone from the daemon
    time.sleep(0.5)
    r = ng.req("list")
    calls = (r or {}).get("calls", [])
    check(r is not None and r.get("result") == "ok" and callid not in calls,
          "ng list after BYE does not show the call (%r)" % (calls,))
    if callid:
        r = ng.req("query", **{"call-id": callid})
        check(r is not None and r.get("result") == "error",
              "ng query after BYE: error (%r)" % ((r or {}).get("result"),))

    # ---- stop kamailio and the capture, then the daemon
    finish_kamailio(tmp, k, dc)
    analyse(cap, P, in_range, callid, query)
    if failures:
        log("RESULT: FAIL (%d): %s" % (len(failures), "; ".join(failures)))
        return 1
    log("RESULT: PASS")
    return 0


def analyse(cap, P, in_range, callid, query):
    sip, ngmsgs, rtp = [], [], {}
    sip_ports = {P["kam"], P["uac"], P["uas"]}
    ep_name = {P["uac_mp"]: "uac.audio", P["uac_mp"] + 2: "uac.video",
               P["uas_mp"]: "uas.audio", P["uas_mp"] + 2: "uas.video"}
    other = {}
    for t, sp, dp, p in read_pcap(cap):
        if sp in sip_ports and dp in sip_ports or (sp == P["kam"] or dp == P["kam"]):
            m = sip_parse(p)
            if m:
                m.update(t=t, sp=sp, dp=dp)
                sip.append(m)
            continue
        if sp == P["ng"] or dp == P["ng"]:
            try:
                c, body = ng_parse(p)
                ngmsgs.append((t, sp, dp, c, body))
            except Exception:
                pass
            continue
        r = rtp_parse(p)
        if r is None:
            other[(sp, dp)] = other.get((sp, dp), 0) + 1
            continue
        rtp.setdefault((sp, dp), []).append((t,) + r)

    # ---- SIP through kamailio
    name = {P["kam"]: "kamailio", P["uac"]: "uac", P["uas"]: "uas"}
    flows = [(name.get(m["sp"], m["sp"]), name.get(m["dp"], m["dp"]), m["kind"], m["cseq"])
             for m in sip if "probe-" not in m["hdr"].get("call-id", "")]
    cids = {m["hdr"].get("call-id") for m in sip if "probe-" not in m["hdr"].get("call-id", "")}
    check(len(cids) == 1 and callid in cids, "one SIP call in the capture, Call-ID %r" % (cids,))

    def saw(a, b, kind, meth):
        return any(f[0] == a and f[1] == b and f[2] == kind and f[3].endswith(meth) for f in flows)
    for a, b, kind, meth in [("uac", "kamailio", "INVITE", "INVITE"), ("kamailio", "uas", "INVITE", "INVITE"),
                             ("uas", "kamailio", "200", "INVITE"), ("kamailio", "uac", "200", "INVITE"),
                             ("uac", "kamailio", "ACK", "ACK"), ("kamailio", "uas", "ACK", "ACK"),
                             ("uac", "kamailio", "BYE", "BYE"), ("kamailio", "uas", "BYE", "BYE"),
                             ("uas", "kamailio", "200", "BYE"), ("kamailio", "uac", "200", "BYE")]:
        check(saw(a, b, kind, meth), "SIP %s %s -> %s" % (kind if kind == meth else kind + " (" + meth + ")", a, b))
    check(not any({f[0], f[1]} == {"uac", "uas"} for f in flows), "no SIP directly between UAC and UAS")

    # SDPs: what each endpoint was told
    def sdp_of(a, b, kind):
        for m in sip:
            if name.get(m["sp"]) == a and name.get(m["dp"]) == b and m["kind"] == kind \
                    and m["cseq"].endswith("INVITE") and "m=" in m["body"]:
                return sdp_media(m["body"])
        return [], None
    to_uas, c_uas = sdp_of("kamailio", "uas", "INVITE")
    to_uac, c_uac = sdp_of("kamailio", "uac", "200")
    relay = {}
    for who, (media, conn) in (("uas", (to_uas, c_uas)), ("uac", (to_uac, c_uac))):
        types = [m[0] for m in media]
        check(types == ["audio", "video"], "SDP to %s has m=audio + m=video (%s)" % (who, types))
        check(conn == LOCAL, "SDP to %s: c= %s" % (who, conn))
        for typ, port, pts in media:
            relay[(who, typ)] = port
            check(in_range(port), "SDP to %s: m=%s port %d in the daemon's range" % (who, typ, port))
            check(pts == [AUDIO_PT if typ == "audio" else VIDEO_PT],
                  "SDP to %s: m=%s payload types %s" % (who, typ, pts))

    # ---- RTP legs
    for (sp, dp), pk in sorted(rtp.items()):
        log("      rtp %5d -> %5d  %4d pkts  pt %s  ssrc %s" % (
            sp, dp, len(pk), sorted({x[1] for x in pk}), sorted("%08x" % x for x in {x[3] for x in pk})))
    for (sp, dp), n in sorted(other.items()):
        log("      other udp %5d -> %5d  %d pkts (non-RTP/RTCP)" % (sp, dp, n))
    ep_ports = set(ep_name)
    direct = sum(len(v) for (sp, dp), v in rtp.items() if sp in ep_ports and dp in ep_ports)
    check(direct == 0, "no RTP directly between the endpoints (%d pkts)" % direct)

    tones = {}
    for f in ("tone440.ulaw", "tone880.ulaw"):
        with open(os.path.join(MEDIA_DIR, f), "rb") as fh:
            raw = fh.read()
        tones[f] = {raw[i:i + 160] for i in range(0, len(raw) - 159, 160)}
    vids = {f: {hashlib.sha1(x).digest() for x in pcap_payloads(os.path.join(MEDIA_DIR, f))}
            for f in ("h264_uac.pcap", "h264_uas.pcap")}
    expect = {"audio": 48000 // 160,
              "video.uac": len(pcap_payloads(os.path.join(MEDIA_DIR, "h264_uac.pcap"))),
              "video.uas": len(pcap_payloads(os.path.join(MEDIA_DIR, "h264_uas.pcap")))}
    hop1_total = 0
    for sender, receiver in (("uac", "uas"), ("uas", "uac")):
        for typ, off in (("audio", 0), ("video", 2)):
            src = P[sender + "_mp"] + off
            dst = P[receiver + "_mp"] + off
            pt = AUDIO_PT if typ == "audio" else VIDEO_PT
            what = "%s %s -> %s" % (typ, sender, receiver)
            h1 = {k: v for k, v in rtp.items() if k[0] == src and in_range(k[1])}
            h2 = {k: v for k, v in rtp.items() if in_range(k[0]) and k[1] == dst}
            check(len(h1) == 1, "%s: hop 1 %s:%d -> one daemon port (%s)" % (what, sender, src, sorted(h1)))
            check(len(h2) == 1, "%s: hop 2 one daemon port -> %s:%d (%s)" % (what, receiver, dst, sorted(h2)))
            if len(h1) != 1 or len(h2) != 1:
                continue
            (k1, p1), = h1.items()
            (k2, p2), = h2.items()
            hop1_total += len(p1)
            check(k1[1] == relay.get((sender, typ)),
                  "%s: sender sends to the port its SDP named (%d vs %s)" % (what, k1[1], relay.get((sender, typ))))
            check(k2[0] == relay.get((receiver, typ)),
                  "%s: daemon sends from the port it offered the receiver (%d vs %s)"
                  % (what, k2[0], relay.get((receiver, typ))))
            n_exp = expect["audio"] if typ == "audio" else expect["video." + sender]
            check(len(p1) >= 0.95 * n_exp, "%s: hop 1 %d pkts (media file has %d)" % (what, len(p1), n_exp))
            ratio = len(p2) / len(p1) if p1 else 0
            check(MIN_RATIO <= ratio <= 1.0, "%s: hop 2 %d / hop 1 %d pkts (%.3f)" % (what, len(p2), len(p1), ratio))
            pts = {x[1] for x in p1} | {x[1] for x in p2}
            check(pts == {pt}, "%s: payload type %s on both hops (offered %d)" % (what, sorted(pts), pt))
            # byte-identical payloads, the sender's own media
            pl1 = [x[4] for x in p1]
            pl2 = [x[4] for x in p2]
            set1 = {hashlib.sha1(x).digest() for x in pl1}
            relayed = sum(1 for x in pl2 if hashlib.sha1(x).digest() in set1)
            check(relayed == len(pl2), "%s: every hop-2 payload is a hop-1 payload (%d/%d)" % (what, relayed, len(pl2)))
            if typ == "audio":
                mine = tones["tone440.ulaw" if sender == "uac" else "tone880.ulaw"]
                theirs = tones["tone880.ulaw" if sender == "uac" else "tone440.ulaw"]
                good = sum(1 for x in pl2 if x in mine and x not in theirs)
                check(good >= 0.95 * len(pl2) and pl2,
                      "%s: receiver gets the sender's %s tone (%d/%d frames)"
                      % (what, "440 Hz" if sender == "uac" else "880 Hz", good, len(pl2)))
            else:
                mine = vids["h264_%s.pcap" % sender]
                good = sum(1 for x in pl2 if hashlib.sha1(x).digest() in mine)
                check(good == len(pl2) and pl2, "%s: receiver gets the sender's H.264 packets (%d/%d)"
                      % (what, good, len(pl2)))
            s1, s2 = {x[3] for x in p1}, {x[3] for x in p2}
            log("      %s: ssrc %s" % (what, "kept" if s1 == s2 else "changed %s -> %s" % (s1, s2)))

    # ---- ng: mid-call query
    if query and query.get("result") == "ok":
        tags = query.get("tags") or {}
        seen = []
        for tag, td in tags.items():
            for m in td.get("medias", []) if isinstance(td, dict) else []:
                st = (m.get("streams") or [{}])[0].get("stats", {})
                seen.append((m.get("type"), st.get("packets", 0)))
        log("      query during call: %s" % seen)
        check(sorted(t for t, _ in seen) == ["audio", "audio", "video", "video"],
              "query: two parties x audio+video (%s)" % sorted(t for t, _ in seen))
        check(all(n > 0 for _, n in seen) and len(seen) == 4,
              "query: every RTP stream has received packets during the call")

    # ---- ng: the delete kamailio sent, and its reply
    reqs = {c: b for t, sp, dp, c, b in ngmsgs if dp == P["ng"] and isinstance(b, dict)}
    reps = {c: b for t, sp, dp, c, b in ngmsgs if sp == P["ng"] and isinstance(b, dict)}
    cmds = [(reqs[c].get("command"), reps.get(c, {}).get("result")) for c in reqs
            if reqs[c].get("call-id") == callid]
    log("      ng for the call: %s" % cmds)
    for cmd in ("offer", "answer", "delete"):
        check((cmd, "ok") in cmds, "ng %s from kamailio answered ok" % cmd)
    dels = [reps[c] for c in reqs if reqs[c].get("command") == "delete" and c in reps
            and reps[c].get("result") == "ok"]
    if dels:
        tot = ((dels[-1].get("totals") or {}).get("RTP") or {}).get("packets")
        check(isinstance(tot, int) and MIN_RATIO * hop1_total <= tot <= hop1_total * 1.01 + 2,
              "delete reply: totals.RTP.packets %s ~ %d packets sent by the endpoints" % (tot, hop1_total))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        stop_all()
        sys.exit(1)
