#!/usr/bin/env python3
"""Robustness: garbage on the ng port, runts/non-RTP on media ports, call
timeout, and recovery after an overload burst."""

import os
import random
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tallytest import (Call, Daemon, IS_RTPENGINE, bencode, bdecode,  # noqa: E402
                       BencodeError, collect, find_stream, parse_rtp, relay_all,
                       port_free, relay_leg, require, rtp_packet, run, short, wait_until)


def ng_raw(d, body, cookie="c%07x" % random.getrandbits(28), timeout=0.5):
    payload = body if cookie is None else cookie.encode() + b" " + body
    return d.ng.raw(payload, timeout=timeout, cookie=cookie)


GOOD_SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def garbage_cases():
    rnd = random.Random(4711)
    offer = {"command": "offer", "call-id": "garbage-%x" % random.getrandbits(32), "from-tag": "g1"}
    return [
        ("random bytes", bytes(rnd.getrandbits(8) for _ in range(200))),
        ("truncated bencode", b"d7:command4:pi"),
        ("truncated string length", b"d7:command99:ping"),
        ("bencode list", b"l4:pinge"),
        ("bencode int", b"i42e"),
        ("bencode string", b"4:ping"),
        ("empty body", b""),
        ("dict without command", bencode({"call-id": "x", "from-tag": "y"})),
        ("command not a string", bencode({"command": ["ping"]})),
        ("unknown command", bencode({"command": "frobnicate"})),
        ("offer without sdp", bencode(offer)),
        ("offer without call-id", bencode({"command": "offer", "from-tag": "g", "sdp": GOOD_SDP})),
        ("offer with malformed sdp", bencode(dict(offer, sdp="this is not an SDP at all"))),
        ("offer with bad m= line", bencode(dict(offer, sdp="v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio notaport RTP/AVP 0\r\n"))),
        ("offer with huge port", bencode(dict(offer, sdp=GOOD_SDP.replace("40000", "99999999999")))),
        ("answer without to-tag call", bencode({"command": "answer", "call-id": "nope", "sdp": GOOD_SDP})),
        ("nested garbage", b"d7:command5:offer3:sdpd1:ai1eee"),
    ]


def test_garbage_on_ng_port(d):
    problems = []
    observed = []
    for name, body in garbage_cases():
        cookie = "g%07x" % random.getrandbits(28)
        raw = ng_raw(d, body, cookie=cookie)
        if raw is None:
            problems.append("%s: no reply" % name)
            observed.append("%s: no reply" % name)
            continue
        try:
            r = bdecode(raw[len(cookie) + 1:])
        except BencodeError:
            problems.append("%s: reply is not bencode: %r" % (name, raw[:80]))
            continue
        observed.append("%s: %s" % (name, r.get("result")))
        if not isinstance(r, dict) or r.get("result") != "error":
            problems.append("%s: result %r" % (name, r.get("result") if isinstance(r, dict) else r))
        elif not r.get("error-reason"):
            problems.append("%s: no error-reason" % name)
    # datagrams without cookie + space: a reply is optional, survival is not
    for body in (b"", b"x", b"nospace", os.urandom(64), b"\x00" * 1400, b"a" * 9000):
        ng_raw(d, body, cookie=None, timeout=0.05)
    require(d.alive(), "daemon died")
    require(d.ng.request({"command": "ping"}).get("result") == "pong", "no pong after garbage")
    c = Call(d.ng).setup()
    try:
        relay_all(c, 20)
    finally:
        c.delete()
        c.close()
    if problems:
        raise AssertionError("; ".join(problems))


def test_runts_dropped_and_counted(d):
    c = Call(d.ng).setup()
    try:
        pa, pb = c.a.peers["audio"], c.b.peers["audio"]
        relay_leg(pa, pb, 10)
        relay_leg(pb, pa, 10)
        junk = [b"\x80", b"\x80\x00\x00\x01\x00", b"\x80" * 11, b"\x00" * 40,
                b"hello, this is not RTP at all....", b"\x40" + os.urandom(30)]
        for j in junk:
            pa.send_rtp(j)
        got = collect(pb.rtp, 1, 0.5, match=lambda dd, a: dd in junk)
        require(not got, "non-RTP datagram relayed to B: %r" % (got[0][0][:16] if got else b""))
        relay_leg(pa, pb, 10)
        # junk on the RTCP port: not a valid RTCP header
        rjunk = [b"\x80", b"\x81\xc9\x00", b"\x00" * 8, b"not RTCP either, just text"]
        for j in rjunk:
            pa.send_rtcp(j)
        got = collect(pb.rtcp, 1, 0.5, match=lambda dd, a: dd in rjunk)
        require(not got, "non-RTCP datagram relayed to B: %r" % (got[0][0][:16] if got else b""))
        relay_leg(pa, pb, 5, rtcp=True)
        q = c.query()
        s = find_stream(q, c.a.tag, pa.remote_rtp[1])
        errors = int(s.get("stats", {}).get("errors", 0))
        pkts = int(s.get("stats", {}).get("packets", 0))
        require(errors >= len(junk), "query errors = %d after %d junk datagrams (packets %d)" % (errors, len(junk), pkts))
        require(pkts == 20, "RTP packets = %d, 20 valid sent (junk counted as packets?)" % pkts)
        s = find_stream(q, c.a.tag, pa.remote_rtcp[1])
        errors = int(s.get("stats", {}).get("errors", 0))
        require(errors >= len(rjunk), "RTCP stream errors = %d after %d junk datagrams" % (errors, len(rjunk)))
    finally:
        c.delete()
        c.close()


test_runts_dropped_and_counted.rtpengine_xfail = "relays non-RTP datagrams, errors stay 0"


def test_out_of_ports(_d):
    """A range too small for an offer: error 'Ran out of ports', no call
    left behind, every port given back; a smaller call still works."""
    with Daemon(nports=6, name="ports") as d:
        c = Call(d.ng)
        try:
            r = d.ng.request({"command": "offer", "call-id": c.call_id,
                              "from-tag": c.a.tag, "sdp": c.a.sdp(),
                              "replace": ["origin", "session-connection"]})
            require(r.get("result") == "error", "offer needing 8 ports of 6 answered %s" % short(r))
            reason = r.get("error-reason", "")
            if not IS_RTPENGINE:
                require("port" in reason.lower(), "error-reason %r does not say ports" % reason)
            calls = d.ng.ok({"command": "list"}).get("calls", [])
            require(c.call_id not in calls, "failed offer left its call: %r" % calls)
            free = wait_until(lambda: all(port_free(p) for p in range(d.port_min, d.port_max + 1)), 2.0)
            require(free, "ports of the failed offer still bound")
        finally:
            c.close()
        small = Call(d.ng, kinds=("audio",))
        try:
            small.setup()
            relay_all(small, 5, kinds=["audio"])
        finally:
            small.delete()
            small.close()


def test_timeout(_d):
    with Daemon(timeout=2, name="timeout") as d:
        idle = Call(d.ng).setup()
        busy = Call(d.ng).setup()
        t0 = time.monotonic()
        try:
            pa, pb = busy.a.peers["audio"], busy.b.peers["audio"]
            gone_at = None
            while time.monotonic() - t0 < 6.0:
                for _ in range(5):
                    pa.send_rtp(pa.next_rtp())
                    pb.send_rtp(pb.next_rtp())
                    time.sleep(0.02)
                if gone_at is None:
                    r = d.ng.request({"command": "query", "call-id": idle.call_id})
                    if r.get("result") == "error":
                        gone_at = time.monotonic() - t0
                if gone_at is not None and time.monotonic() - t0 > 4.5:
                    break
            require(gone_at is not None, "call without media still there after 6 s (--timeout=2)")
            print("  idle call deleted %.1f s after setup (--timeout=2)" % gone_at, flush=True)
            # whole-second clocks may delete up to 1 s early
            require(gone_at >= 1.0, "call without media deleted after %.1f s (timeout 2 s)" % gone_at)
            require(gone_at <= 4.5, "call without media deleted only after %.1f s" % gone_at)
            calls = d.ng.ok({"command": "list"}).get("calls", [])
            require(idle.call_id not in calls, "timed-out call still listed")
            ports = sorted(idle.daemon_ports())
            # observed: rtpengine sometimes keeps them a while longer
            freed = wait_until(lambda: all(port_free(p) for p in ports), 3.0) or IS_RTPENGINE
            require(freed, "ports of the timed-out call still bound: %r" % [p for p in ports if not port_free(p)])
            require(busy.call_id in calls, "call with media flowing not listed after %.1f s" % (time.monotonic() - t0))
            r = d.ng.request({"command": "query", "call-id": busy.call_id})
            require(r.get("result") == "ok", "call with media flowing was deleted: %r" % r.get("error-reason"))
            pb.drain()
            relay_leg(pa, pb, 10)
        except AssertionError:
            print("  log tail (%s):\n%s" % (d.logpath, d.log_tail(15)))
            raise
        finally:
            idle.close()
            busy.close()


# ---------------------------------------------------------------------------
# overload

BURST_S = 3.0
NORMAL_S = 3.0
GRACE_S = 1.0
PPS = 50


def _blast(sock_fd, dest, pt, seconds):
    """Child process: send as fast as possible from an inherited socket."""
    try:
        s = socket.socket(fileno=os.dup(sock_fd))
        pkt = rtp_packet(1, 1, 0xB0B0B0B0, b"\xAA" * 160, pt)
        end = time.monotonic() + seconds
        n = 0
        while True:
            for _ in range(200):
                try:
                    s.sendto(pkt, dest)
                except OSError:
                    pass
            n += 200
            if time.monotonic() >= end:
                break
    finally:
        os._exit(0)


def test_overload_recovery(d):
    calls = [Call(d.ng).setup(), Call(d.ng).setup()]
    stop = threading.Event()
    try:
        for c in calls:
            relay_all(c, 5, rtcp=False)
        # streams: (label, sender peer, receiver peer)
        streams = []
        for ci, c in enumerate(calls):
            for kind in ("audio", "video"):
                streams.append(("call%d A->B %s" % (ci + 1, kind), c.a.peers[kind], c.b.peers[kind]))
                streams.append(("call%d B->A %s" % (ci + 1, kind), c.b.peers[kind], c.a.peers[kind]))
        by_ssrc = {s[1].ssrc: i for i, s in enumerate(streams)}
        c1 = calls[0]
        blasters = [(c1.a.peers["audio"], 0), (c1.a.peers["video"], 96),
                    (c1.b.peers["audio"], 0), (c1.b.peers["video"], 96)]
        # fork the blasters before any thread exists in this process
        pids = []
        for peer, pt in blasters:
            pid = os.fork()
            if pid == 0:
                _blast(peer.rtp.fileno(), peer.remote_rtp, pt, BURST_S)
            pids.append(pid)
        arrivals = {}              # (stream idx, seq) -> arrival time
        burst_seen = [0]
        rsocks = {s[2].rtp.fileno(): s[2].rtp for s in streams}

        def receiver():
            socks = list(rsocks.values())
            for s in socks:
                s.setblocking(False)
            while not stop.is_set():
                r, _, _ = select.select(socks, [], [], 0.05)
                for s in r:
                    for _ in range(256):
                        try:
                            data = s.recv(2048)
                        except (BlockingIOError, InterruptedError):
                            break
                        h = parse_rtp(data)
                        if h is None:
                            continue
                        i = by_ssrc.get(h["ssrc"])
                        if i is None:
                            burst_seen[0] += 1
                        elif (i, h["seq"]) not in arrivals:
                            arrivals[(i, h["seq"])] = time.monotonic()

        th = threading.Thread(target=receiver, daemon=True)
        th.start()
        t_burst = time.monotonic()
        deadline = t_burst + BURST_S + 5
        for pid in pids:
            while time.monotonic() < deadline:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.01)
            else:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
        burst_end = time.monotonic()
        # normal phase: PPS on every stream
        sent = {}                  # (stream idx, seq) -> send time
        tick = 1.0 / PPS
        nticks = int(NORMAL_S * PPS)
        for k in range(nticks):
            target = burst_end + k * tick
            now = time.monotonic()
            if target > now:
                time.sleep(target - now)
            for i, (_, src, _) in enumerate(streams):
                pkt = src.next_rtp(pt=0 if "audio" in streams[i][0] else 96)
                try:
                    src.send_rtp(pkt)
                except OSError:
                    pass
                sent[(i, src.seq)] = time.monotonic()
        time.sleep(0.5)
        stop.set()
        th.join(2)
        require(d.alive(), "daemon died under overload")
        pong = d.ng.request({"command": "ping"}).get("result")
        report = []
        bad = []
        for i, (label, _, _) in enumerate(streams):
            window = [key for key, t in sent.items() if key[0] == i and t >= burst_end + GRACE_S]
            got = sum(1 for key in window if key in arrivals)
            first = min((arrivals[key] for key in sent if key[0] == i and key in arrivals), default=None)
            first_s = "%.2fs" % (first - burst_end) if first else "never"
            report.append("%s %d/%d (first %s)" % (label, got, len(window), first_s))
            if got < 0.95 * len(window):
                bad.append(report[-1])
        q = d.ng.request({"command": "query", "call-id": c1.call_id})
        recv_n = dropped = 0
        for t in q.get("tags", {}).values():
            for m in t.get("medias", []):
                for st in m.get("streams", []):
                    recv_n += int(st.get("stats", {}).get("packets", 0))
                    dropped += int(st.get("dropped", 0) or 0)
        print("  overload: burst %.1fs, %d burst packets relayed to the parties; daemon counted %d "
              "received, %d dropped on the burst call; after burst: %s"
              % (burst_end - t_burst, burst_seen[0], recv_n, dropped, "; ".join(report)))
        require(pong == "pong", "no pong after overload")
        require(not bad, "streams not relaying >=95%% from %.0fs after the burst: %s"
                % (GRACE_S, "; ".join(bad)))
    finally:
        stop.set()
        for c in calls:
            try:
                c.delete()
            except Exception:
                pass
            c.close()


test_overload_recovery.rtpengine_xfail = "a stream's socket stops being read after a burst"


if __name__ == "__main__":
    run([test_garbage_on_ng_port, test_runts_dropped_and_counted, test_out_of_ports, test_timeout,
         test_overload_recovery],
        daemon_factory=lambda: Daemon())
