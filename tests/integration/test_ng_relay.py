#!/usr/bin/env python3
"""ng offer/answer and relaying through the real daemon on loopback:
every leg of an audio+video call, latching, rtcp-mux, re-offers, query,
list, statistics, delete and unknown call-ids."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tallytest import (Call, Daemon, IS_RTPENGINE, collect, find_stream,  # noqa: E402
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
        require([g[0] for g in got] == sent, "B->A RTP reordered/modified")
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


def test_delete_frees_ports(d):
    c = Call(d.ng).setup()
    try:
        relay_all(c, 5, rtcp=False)
        ports = sorted(c.daemon_ports())
        require(len(ports) == 8, "expected 8 daemon ports, got %r" % ports)
        r = c.delete()
        require(r.get("result") == "ok", "delete: %r" % r)
        require("created" in r, "delete reply lacks created: %r" % list(r))
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
         test_rtcp_mux, test_reoffer_hold_remove_add_video,
         test_list_and_statistics, test_delete_frees_ports, test_unknown_call_id],
        daemon_factory=lambda: Daemon())
