#!/usr/bin/env python3
"""ng offer/answer and relaying through the real daemon on loopback:
every leg of an audio+video call, latching, rtcp-mux, re-offers, query,
list, statistics, delete and unknown call-ids."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tallytest import (Call, Daemon, IS_RTPENGINE, collect, find_stream, in_order,  # noqa: E402
                       port_free, recv, relay_all, relay_leg, require, run,
                       udp_socket, wait_until)

N = 50


def test_ping(d):
    r = d.ng.request({"command": "ping"})
    require(r.get("result") == "pong", "ping: %r" % r)


def test_offer_answer_sdp(d):
    c = Call(d.ng)
    try:
        off = c.offer()
        ans = c.answer()
        for name, sdp, party in (("offer", off, c.b), ("answer", ans, c.a)):
            require(len(sdp["media"]) == 2, "%s: %d m= lines" % (name, len(sdp["media"])))
            require([m["kind"] for m in sdp["media"]] == ["audio", "video"],
                    "%s: m= kinds %r" % (name, [m["kind"] for m in sdp["media"]]))
            for m in sdp["media"]:
                require(m["addr"] == "127.0.0.1", "%s: c= %s" % (name, m["addr"]))
                require(d.port_min <= m["port"] <= d.port_max,
                        "%s: port %d outside %d..%d" % (name, m["port"], d.port_min, d.port_max))
                require(m["port"] % 2 == 0, "%s: odd RTP port %d" % (name, m["port"]))
                require(any(a.startswith("rtcp:") for a in m["attrs"]),
                        "%s: no a=rtcp: on %s" % (name, m["kind"]))
                require(m["rtcp_port"] == m["port"] + 1,
                        "%s: a=rtcp %d != port+1" % (name, m["rtcp_port"]))
            v = sdp["media"][1]
            require("H264/90000" in " ".join(v["attrs"]), "%s: video rtpmap lost" % name)
            require("rtcp-fb:96 nack pli" in v["attrs"], "%s: rtcp-fb lost" % name)
            require("fmtp:101 0-16" in sdp["media"][0]["attrs"], "%s: fmtp lost" % name)
        ports = [m["port"] for m in off["media"]] + [m["port"] for m in ans["media"]]
        require(len(set(ports)) == 4, "ports not distinct: %r" % ports)
    finally:
        c.delete()
        c.close()


def test_relay_all_legs(d):
    """A->B and B->A, audio and video, RTP and RTCP: all packets arrive in
    order, byte-identical, from the port advertised to the receiver."""
    c = Call(d.ng).setup()
    try:
        relay_all(c, N)
    finally:
        c.delete()
        c.close()


def test_query_counts(d):
    c = Call(d.ng).setup()
    try:
        sent = {}
        for kind, n in (("audio", 30), ("video", 40)):
            relay_leg(c.a.peers[kind], c.b.peers[kind], n, kind=kind)
            relay_leg(c.a.peers[kind], c.b.peers[kind], n // 2, rtcp=True, kind=kind)
            relay_leg(c.b.peers[kind], c.a.peers[kind], n + 3, kind=kind)
            sent[(c.a.tag, kind)] = (n, n // 2)
            sent[(c.b.tag, kind)] = (n + 3, 0)
        q = c.query()
        for party in (c.a, c.b):
            for kind in party.kinds:
                p = party.peers[kind]
                rtp_n, rtcp_n = sent[(party.tag, kind)]
                s = find_stream(q, party.tag, p.remote_rtp[1])
                got = int(s.get("stats", {}).get("packets", -1))
                require(got == rtp_n, "%s %s RTP packets %d, sent %d" % (party.name, kind, got, rtp_n))
                s = find_stream(q, party.tag, p.remote_rtcp[1])
                got = int(s.get("stats", {}).get("packets", -1))
                require(got == rtcp_n, "%s %s RTCP packets %d, sent %d" % (party.name, kind, got, rtcp_n))
        require("created" in q and "totals" in q, "query lacks created/totals: %r" % list(q))
        rtp_total = int(q["totals"]["RTP"]["packets"])
        want = sum(v[0] for v in sent.values())
        require(rtp_total == want, "totals RTP packets %d, sent %d" % (rtp_total, want))
        if not IS_RTPENGINE:
            # ng.md: per-stream lost (from sequence gaps), dropped, unexpected, last packet
            s = find_stream(q, c.a.tag, c.a.peers["audio"].remote_rtp[1])
            for key in ("lost", "dropped", "unexpected", "last packet", "endpoint", "advertised endpoint"):
                require(key in s, "query stream lacks %r: %r" % (key, sorted(s)))
            require(int(s["lost"]) == 0, "lost = %s without gaps" % s["lost"])
            pv = c.b.peers["video"]
            pv.seq = (pv.seq + 5) & 0xFFFF           # a gap of 5 packets
            relay_leg(pv, c.a.peers["video"], 5, kind="video")
            q = c.query()
            s = find_stream(q, c.b.tag, pv.remote_rtp[1])
            require(int(s.get("lost", -1)) == 5, "lost = %r after a gap of 5 sequence numbers" % s.get("lost"))
    finally:
        c.delete()
        c.close()


def test_latching_real_source(d):
    """A advertises one port but sends from another: B's traffic goes to
    where A really sends from (RTP and RTCP latch separately)."""
    c = Call(d.ng).setup()
    other = udp_socket(0)
    other_rtcp = udp_socket(0)
    try:
        pa, pb = c.a.peers["audio"], c.b.peers["audio"]
        relay_leg(pa, pb, 10, src_sock=other)          # A really sends from `other`
        relay_leg(pa, pb, 10, rtcp=True, src_sock=other_rtcp)
        sent = [pb.next_rtp() for _ in range(10)]
        for pkt in sent:
            pb.send_rtp(pkt)
        got = collect(other, 10, 2.0, match=lambda dd, a: dd in sent)
        require(len(got) == 10, "B->A RTP: %d/10 at A's real source port" % len(got))
        require(in_order([g[0] for g in got], sent, "B->A RTP"), "B->A RTP reordered/modified")
        require(all(a == pa.remote_rtp for _, a in got),
                "B->A RTP from %s, advertised %s" % (got[0][1], pa.remote_rtp))
        require(recv(pa.rtp, 0.2) is None, "B->A RTP also arrived at A's advertised port")
        relay_leg(pb, pa, 10, rtcp=True, dst_sock=other_rtcp)
        require(recv(pa.rtcp, 0.1) is None, "B->A RTCP also arrived at A's advertised port")
    finally:
        other.close()
        other_rtcp.close()
        c.delete()
        c.close()


def test_latching_third_source_dropped(d):
    """After latching, packets from a third, unexpected source are not
    relayed (and are counted as unexpected or errors)."""
    c = Call(d.ng, flags=["strict source"] if IS_RTPENGINE else None).setup()
    intruder = udp_socket(0)
    try:
        pa, pb = c.a.peers["audio"], c.b.peers["audio"]
        relay_leg(pa, pb, 10)
        relay_leg(pb, pa, 10)
        bad = [pa.next_rtp() for _ in range(10)]
        for pkt in bad:
            intruder.sendto(pkt, pa.remote_rtp)
        got = collect(pb.rtp, 10, 0.5, match=lambda dd, a: dd in bad)
        require(not got, "%d packets from a third source were relayed to B" % len(got))
        # legitimate traffic still flows, and return traffic does not go to the intruder
        relay_leg(pa, pb, 10)
        relay_leg(pb, pa, 10)
        require(recv(intruder, 0.2) is None, "the intruder received return traffic")
        if not IS_RTPENGINE:
            s = find_stream(c.query(), c.a.tag, pa.remote_rtp[1])
            require(int(s.get("unexpected", 0)) >= 10, "query unexpected = %r after 10 intruder packets"
                    % s.get("unexpected"))
            require(int(s["stats"]["packets"]) == 20, "intruder packets counted as received: %r" % s["stats"])
    finally:
        intruder.close()
        c.delete()
        c.close()


def test_rtcp_mux(d):
    c = Call(d.ng, mux=True)
    try:
        off = c.offer()
        require(all(m["mux"] for m in off["media"]), "offer to B lost a=rtcp-mux")
        ans = c.answer()
        require(all(m["mux"] for m in ans["media"]), "answer to A lost a=rtcp-mux")
        for party in (c.a, c.b):
            for p in party.peers.values():
                require(p.remote_rtcp == p.remote_rtp,
                        "muxed RTCP endpoint %s != RTP %s" % (p.remote_rtcp, p.remote_rtp))
        relay_all(c, 30)
    finally:
        c.delete()
        c.close()


def test_reoffer_hold_remove_add_video(d):
    c = Call(d.ng).setup()
    try:
        relay_all(c, 10, rtcp=False)
        ports_b = {k: c.b.peers[k].remote_rtp for k in c.b.kinds}
        ports_a = {k: c.a.peers[k].remote_rtp for k in c.a.kinds}

        # hold: A sendonly on both lines
        off = c.offer(c.a.sdp(directions={"audio": "sendonly", "video": "sendonly"}))
        require([m["direction"] for m in off["media"]] == ["sendonly", "sendonly"],
                "hold offer directions %r" % [m["direction"] for m in off["media"]])
        ans = c.answer(c.b.sdp(directions={"audio": "recvonly", "video": "recvonly"}))
        require([m["direction"] for m in ans["media"]] == ["recvonly", "recvonly"],
                "hold answer directions %r" % [m["direction"] for m in ans["media"]])
        for k in c.a.kinds:
            require(c.b.peers[k].remote_rtp == ports_b[k], "hold: B's %s port changed" % k)
            require(c.a.peers[k].remote_rtp == ports_a[k], "hold: A's %s port changed" % k)
        relay_leg(c.a.peers["audio"], c.b.peers["audio"], 10)
        relay_leg(c.a.peers["video"], c.b.peers["video"], 10, kind="video")

        # resume without video (port 0)
        off = c.offer(c.a.sdp(zero=("video",)))
        require(len(off["media"]) == 2 and off["media"][1]["port"] == 0,
                "video removal: m=video not port 0: %r" % [m["port"] for m in off["media"]])
        ans = c.answer(c.b.sdp(zero=("video",)))
        require(ans["media"][1]["port"] == 0, "video removal: answer m=video port %d" % ans["media"][1]["port"])
        require(c.b.peers["audio"].remote_rtp == ports_b["audio"], "video removal: B's audio port changed")
        require(c.a.peers["audio"].remote_rtp == ports_a["audio"], "video removal: A's audio port changed")
        old_video = [ports_a["video"][1], ports_a["video"][1] + 1, ports_b["video"][1], ports_b["video"][1] + 1]
        # ng.md: lines turned to port 0 release theirs (rtpengine keeps them)
        freed = IS_RTPENGINE or wait_until(lambda: all(port_free(p) for p in old_video), 3.0)
        require(freed, "video removal: ports %r not released" % [p for p in old_video if not port_free(p)])
        relay_leg(c.a.peers["audio"], c.b.peers["audio"], 10)
        relay_leg(c.b.peers["audio"], c.a.peers["audio"], 10)

        # video back
        off = c.offer(c.a.sdp())
        require(off["media"][1]["port"] != 0, "video re-add: still port 0")
        c.answer(c.b.sdp())
        require(c.b.peers["audio"].remote_rtp == ports_b["audio"], "video re-add: B's audio port changed")
        require(c.a.peers["audio"].remote_rtp == ports_a["audio"], "video re-add: A's audio port changed")
        relay_all(c, 20)
        q = c.query()
        require(c.a.tag in q.get("tags", {}) and c.b.tag in q.get("tags", {}),
                "query after re-offers lacks a tag: %r" % list(q.get("tags", {})))
    finally:
        c.delete()
        c.close()


def test_sdp_ice_removed_rest_kept(d):
    """ICE attributes are removed (ICE: remove); other attributes are kept."""
    c = Call(d.ng)
    try:
        pa = c.a.peers["audio"]
        sdp = c.a.sdp()
        ice = ("a=ice-ufrag:Fo0b\r\na=ice-pwd:0123456789abcdef01234567\r\n"
               "a=candidate:1 1 UDP 2130706431 127.0.0.1 %d typ host\r\n"
               "a=candidate:1 2 UDP 2130706430 127.0.0.1 %d typ host\r\n"
               "a=x-tally-test:keep me\r\n" % (pa.port, pa.rtcp_port))
        i = sdp.index("m=video")
        sdp = sdp[:i] + ice + sdp[i:]
        c.offer(sdp)
        text = c.offer_reply["sdp"]
        for bad in ("a=candidate", "a=ice-ufrag", "a=ice-pwd"):
            require(bad not in text, "%s still in the rewritten offer" % bad)
        require("a=x-tally-test:keep me" in text, "unknown attribute dropped")
        c.answer()
        relay_leg(c.a.peers["audio"], c.b.peers["audio"], 5)
    finally:
        c.delete()
        c.close()


def test_retransmitted_request_cached(d):
    """Same cookie again: the cached reply, not a second execution."""
    c = Call(d.ng)
    try:
        msg = {"command": "offer", "call-id": c.call_id, "from-tag": c.a.tag,
               "sdp": c.a.sdp(), "replace": ["origin", "session-connection"], "ICE": "remove"}
        cookie = d.ng.new_cookie()
        r1 = d.ng.request(msg, cookie=cookie)
        r2 = d.ng.request(msg, cookie=cookie)
        require(r1.get("result") == "ok", "offer: %r" % r1)
        require(r1 == r2, "retransmitted offer got a different reply")
        c.b.learn(r1["sdp"])
        c.answer()
        relay_all(c, 5, rtcp=False)
        dmsg = {"command": "delete", "call-id": c.call_id, "from-tag": c.a.tag}
        cookie = d.ng.new_cookie()
        r1 = d.ng.request(dmsg, cookie=cookie)
        r2 = d.ng.request(dmsg, cookie=cookie)
        require(r1.get("result") == "ok" and r2 == r1,
                "retransmitted delete: %r then %r" % (r1.get("result"), r2.get("result")))
    finally:
        c.close()


def test_reoffer_from_callee(d):
    """B re-INVITEs (hold): offer from-tag B / to-tag A, answer from A; the
    ports of the call stay and media keeps flowing."""
    c = Call(d.ng).setup()
    try:
        relay_all(c, 5, rtcp=False)
        before_a = {k: c.a.peers[k].remote_rtp for k in c.a.kinds}
        before_b = {k: c.b.peers[k].remote_rtp for k in c.b.kinds}
        r = d.ng.ok(dict({"command": "offer", "call-id": c.call_id, "from-tag": c.b.tag,
                          "to-tag": c.a.tag,
                          "sdp": c.b.sdp(directions={"audio": "sendonly", "video": "sendonly"})},
                         replace=["origin", "session-connection"], ICE="remove"))
        sa = c.a.learn(r["sdp"])
        require([m["direction"] for m in sa["media"]] == ["sendonly", "sendonly"],
                "callee hold offer directions %r" % [m["direction"] for m in sa["media"]])
        r = d.ng.ok(dict({"command": "answer", "call-id": c.call_id, "from-tag": c.b.tag,
                          "to-tag": c.a.tag,
                          "sdp": c.a.sdp(directions={"audio": "recvonly", "video": "recvonly"})},
                         replace=["origin", "session-connection"], ICE="remove"))
        c.b.learn(r["sdp"])
        for k in c.a.kinds:
            require(c.a.peers[k].remote_rtp == before_a[k], "callee re-offer moved A's %s port" % k)
            require(c.b.peers[k].remote_rtp == before_b[k], "callee re-offer moved B's %s port" % k)
        relay_leg(c.b.peers["audio"], c.a.peers["audio"], 10)
        relay_leg(c.b.peers["video"], c.a.peers["video"], 10, kind="video")
    finally:
        c.delete()
        c.close()


def test_address_rewritten(d):
    """Parties on 127.0.0.5 / 127.0.0.6 (other loopback addresses): the
    daemon's SDP carries its interface address (c= and o=) and the media
    reach the parties' real addresses."""
    c = Call(d.ng, hosts=("127.0.0.5", "127.0.0.6"))
    try:
        off = c.offer()
        ans = c.answer()
        for name, sdp in (("offer", off), ("answer", ans)):
            require(all(m["addr"] == "127.0.0.1" for m in sdp["media"]),
                    "%s: c= %r" % (name, [m["addr"] for m in sdp["media"]]))
            require(sdp["origin"].split()[-1] == "127.0.0.1", "%s: o= %s (replace origin)" % (name, sdp["origin"]))
            require("127.0.0.5" not in c.offer_reply["sdp"] + c.answer_reply["sdp"] and
                    "127.0.0.6" not in c.offer_reply["sdp"] + c.answer_reply["sdp"],
                    "a party address leaked into the rewritten SDP")
        relay_all(c, 10)
    finally:
        c.delete()
        c.close()


def test_rtcp_mux_demux(d):
    """rtcp-mux: [demux]: A muxes, B gets a plain offer (RTCP on port+1)."""
    c = Call(d.ng, mux=(True, False))
    try:
        off = c.offer(**{"rtcp-mux": ["demux"]})
        require(not any(m["mux"] for m in off["media"]), "demux: B was offered a=rtcp-mux")
        ans = c.answer()
        require(all(m["mux"] for m in ans["media"]), "demux: A's answer lacks a=rtcp-mux")
        relay_all(c, 10)
    finally:
        c.delete()
        c.close()


def test_rtcp_mux_offer(d):
    """rtcp-mux: [offer]: A does not mux, B is offered mux and accepts."""
    c = Call(d.ng, mux=(False, True))
    try:
        off = c.offer(**{"rtcp-mux": ["offer"]})
        require(all(m["mux"] for m in off["media"]), "rtcp-mux offer: B was not offered a=rtcp-mux")
        ans = c.answer()
        require(not any(m["mux"] for m in ans["media"]), "rtcp-mux offer: A got a=rtcp-mux")
        for p in c.b.peers.values():
            p.remote_rtcp = p.remote_rtp
        relay_all(c, 10)
    finally:
        c.delete()
        c.close()


def test_offer_with_port0_line(d):
    """An m= line with port 0 in the first offer stays 0 and gets no port."""
    c = Call(d.ng)
    try:
        off = c.offer(c.a.sdp(zero=("video",)))
        require(off["media"][1]["port"] == 0, "offer: port-0 video got port %d" % off["media"][1]["port"])
        ans = c.answer(c.b.sdp(zero=("video",)))
        require(ans["media"][1]["port"] == 0, "answer: port-0 video got port %d" % ans["media"][1]["port"])
        relay_all(c, 10, kinds=["audio"])
    finally:
        c.delete()
        c.close()


def test_list_and_statistics(d):
    c = Call(d.ng).setup()
    try:
        r = d.ng.ok({"command": "list"})
        require(c.call_id in r.get("calls", []), "list lacks the call: %r" % r.get("calls"))
        r = d.ng.ok({"command": "statistics"})
        require("statistics" in r, "statistics reply lacks 'statistics': %r" % list(r))
    finally:
        c.delete()
        c.close()
    r = d.ng.ok({"command": "list"})
    require(c.call_id not in r.get("calls", []), "deleted call still listed")


def gso_datagrams(d):
    r = d.ng.ok({"command": "statistics"})
    return r["statistics"]["tally"]["gso datagrams"]


def test_video_frame_bursts(d):
    """Video as encoders send it: a frame's packets back to back, all of one
    size but the last. Every datagram arrives on its own at the far end, in
    order and byte-identical, both ways. tally-media sends such runs with
    segmentation offload (UDP_SEGMENT) on its epoll path: its statistics
    must show datagrams carried that way, so this test fails if the offload
    path is never taken (20 frames of 16 packets: the relay wakes up once a
    frame has started, and reads what has queued meanwhile). The io_uring
    path sends datagram by datagram: there only the delivery is checked."""
    frames, per_frame = 20, 16
    check_gso = not IS_RTPENGINE and \
        "--io-uring=yes" not in os.environ.get("TALLY_MEDIA_ARGS", "")
    c = Call(d.ng).setup()
    try:
        before = gso_datagrams(d) if check_gso else 0
        for src, dst in ((c.a.peers["video"], c.b.peers["video"]),
                         (c.b.peers["video"], c.a.peers["video"])):
            sent = []
            for f in range(frames):
                burst = []
                for k in range(per_frame):
                    size = 1100 if k < per_frame - 1 else 333
                    payload = bytes([f, k]) + os.urandom(size - 2)
                    burst.append(src.next_rtp(pt=96, payload=payload,
                                              ts_step=3000 if k == 0 else 0,
                                              marker=k == per_frame - 1))
                for pkt in burst:
                    src.send_rtp(pkt)
                sent += burst
                time.sleep(0.005)
            sent_set = set(sent)
            got = collect(dst.rtp, len(sent), 3.0,
                          match=lambda data, a: data in sent_set)
            require(len(got) == len(sent), "%d of %d burst datagrams arrived"
                    % (len(got), len(sent)))
            require(all(a == dst.remote_rtp for _, a in got),
                    "burst datagrams from another port than advertised")
            require(in_order([g for g, _ in got], sent, "video bursts"),
                    "burst datagrams reordered")
        if check_gso:
            after = gso_datagrams(d)
            require(after - before >= 2,
                    "no datagram went out by segmentation offload (%d -> %d)"
                    % (before, after))
    finally:
        c.delete()
        c.close()


def test_delete_frees_ports(d):
    c = Call(d.ng).setup()
    try:
        relay_all(c, 5, rtcp=False)
        ports = sorted(c.daemon_ports())
        require(len(ports) == 8, "expected 8 daemon ports, got %r" % ports)
        r = c.delete()
        require(r.get("result") == "ok", "delete: %r" % r)
        require("created" in r and "totals" in r, "delete reply lacks created/totals: %r" % list(r))
        rtp = int(r["totals"].get("RTP", {}).get("packets", -1))
        require(rtp == 20, "delete totals RTP packets %d, relayed 20" % rtp)
        free = wait_until(lambda: all(port_free(p) for p in ports), 3.0)
        require(free, "ports still bound after delete: %r" % [p for p in ports if not port_free(p)])
        r = d.ng.request({"command": "query", "call-id": c.call_id})
        require(r.get("result") == "error", "query after delete: %r" % r.get("result"))
    finally:
        c.close()


def test_unknown_call_id(d):
    cid = "no-such-call-%d@tally-test" % time.time_ns()
    sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
    for msg in ({"command": "answer", "call-id": cid, "from-tag": "x", "to-tag": "y", "sdp": sdp},
                {"command": "query", "call-id": cid},
                # rtpengine answers ok + warning unless flag fatal; tally: error
                dict({"command": "delete", "call-id": cid, "from-tag": "x"},
                     **({"flags": ["fatal"]} if IS_RTPENGINE else {}))):
        r = d.ng.request(msg)
        require(r.get("result") == "error", "%s unknown call: result %r" % (msg["command"], r.get("result")))
        require(isinstance(r.get("error-reason"), str) and r["error-reason"],
                "%s unknown call: no error-reason" % msg["command"])


if __name__ == "__main__":
    run([test_ping, test_offer_answer_sdp, test_relay_all_legs, test_query_counts,
         test_latching_real_source, test_latching_third_source_dropped,
         test_rtcp_mux, test_reoffer_hold_remove_add_video, test_sdp_ice_removed_rest_kept,
         test_retransmitted_request_cached, test_reoffer_from_callee,
         test_address_rewritten, test_rtcp_mux_demux, test_rtcp_mux_offer, test_offer_with_port0_line,
         test_list_and_statistics, test_video_frame_bursts, test_delete_frees_ports,
         test_unknown_call_id],
        daemon_factory=lambda: Daemon())
