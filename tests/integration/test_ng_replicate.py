#!/usr/bin/env python3
"""Replication to a recorder via subscribe request / subscribe answer /
unsubscribe: SDP of the subscription, byte-identical copies of every RTP and
RTCP packet, media selection, rejected lines, keyframe requests, RTCP
feedback from the recorder, unsubscribe."""

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tallytest import (Call, Daemon, IS_RTPENGINE, RtpPeer, build_sdp,  # noqa: E402
                       collect, endpoints, in_order, is_keyframe_request, parse_rtcp,
                       parse_sdp, port_free, relay_all, relay_leg, require, rtcp_pli,
                       run, skip_on_rtpengine, Skip, wait_until)

N = 30


def norm_streams(st):
    """ng.md: `streams` maps each label to {label, from-tag, type, index}.
    Accept a dict keyed by label or a list of such entries; labels as str."""
    if not st:
        return None
    if isinstance(st, dict):
        return {str(k): v for k, v in st.items()}
    require(isinstance(st, list), "streams is neither dict nor list: %r" % st)
    return {str(e.get("label")): e for e in st}


def labels(lst):
    return sorted(str(x) for x in (lst or []))


class Sub:
    """A subscription of a recorder to a call."""

    def __init__(self, call, tags, media=None, flags=None, tag=None):
        self.call = call
        msg = {"command": "subscribe request", "call-id": call.call_id}
        if tag:
            msg["from-tag"] = tag
            tags = [tag]
        elif tags:
            msg["from-tags"] = list(tags)
        else:
            tags = [call.a.tag, call.b.tag]     # flag all
        if media:
            msg["media"] = media
        if flags:
            msg["flags"] = flags
        r = call.ng.ok(msg)
        require("sdp" in r and "to-tag" in r, "subscribe request reply lacks sdp/to-tag: %r" % list(r))
        self.reply = r
        self.to_tag = r["to-tag"]
        self.sdp = parse_sdp(r["sdp"])
        self.peers = []        # recorder RtpPeer per m= line (None = rejected)
        self.sources = []      # (party, kind) per m= line
        parties = {call.a.tag: call.a, call.b.tag: call.b}
        streams = norm_streams(r.get("streams"))
        self.streams = streams
        for i, m in enumerate(self.sdp["media"]):
            if streams:
                label = m["label"]
                s = streams.get(label)
                require(s is not None, "streams lacks label %r: %r" % (label, streams))
                party = parties[s["from-tag"]]
                kind = party.kinds[int(s["index"]) - 1]
                require(kind == s["type"] == m["kind"],
                        "label %s: streams says %s/%s, m= line is %s" % (label, s["type"], kind, m["kind"]))
            else:
                # rtpengine: parties in from-tags order, media in m= order
                per = len(self.sdp["media"]) // len(tags)
                party = parties[tags[i // per]]
                kind = m["kind"]
            self.sources.append((party, kind))

    def answer(self, reject=(), mux=False, split=False):
        """Answer with a recorder socket pair per m= line; m= indexes in
        `reject` get port 0."""
        media = []
        for i, m in enumerate(self.sdp["media"]):
            if i in reject:
                self.peers.append(None)
                media.append((m["kind"], None, "recvonly"))
            else:
                p = RtpPeer(mux=mux, split=split)
                p.remote_rtp, p.remote_rtcp = endpoints(m)
                if mux:
                    p.remote_rtcp = p.remote_rtp
                self.peers.append(p)
                media.append((m["kind"], p, "recvonly"))
        r = self.call.ng.ok({"command": "subscribe answer", "call-id": self.call.call_id,
                             "to-tag": self.to_tag, "sdp": build_sdp(media)})
        self.answer_reply = r
        return r

    def reanswer(self, directions):
        """Answer the subscription again (a re-INVITE's answer) with the
        recorder sockets it has, line i with directions[i] (None: port 0)."""
        media = []
        for m, p, dr in zip(self.sdp["media"], self.peers, directions):
            media.append((m["kind"], p if dr else None, dr or "recvonly"))
        return self.call.ng.ok({"command": "subscribe answer", "call-id": self.call.call_id,
                                "to-tag": self.to_tag, "sdp": build_sdp(media)})

    def unsubscribe(self):
        return self.call.ng.ok({"command": "unsubscribe", "call-id": self.call.call_id,
                                "to-tag": self.to_tag})

    def recorder_for(self, party, kind):
        for (pa, k), p in zip(self.sources, self.peers):
            if pa is party and k == kind:
                return p
        return None

    def close(self):
        for p in self.peers:
            if p:
                p.close()


def send_and_check_copies(call, sub, n=N, rtcp=True, kinds=("audio", "video")):
    """Every party sends n RTP (+ n RTCP) per medium; the other party gets
    them (relay_leg asserts) and the recorder gets identical copies, in
    order, from the subscription's port (the m= line's port)."""
    for party, other in ((call.a, call.b), (call.b, call.a)):
        for kind in kinds:
            for is_rtcp in ((False, True) if rtcp else (False,)):
                src = party.peers[kind]
                sent = relay_leg(src, other.peers[kind], n, rtcp=is_rtcp, kind=kind)
                rec = sub.recorder_for(party, kind)
                what = "%s %s %s copy" % (party.name, kind, "RTCP" if is_rtcp else "RTP")
                if rec is None:
                    continue
                sock = rec.rtcp if is_rtcp else rec.rtp
                sset = set(sent)
                got = collect(sock, n, 2.0, match=lambda d, a: d in sset)
                require(len(got) == n, "%s: %d of %d at the recorder" % (what, len(got), n))
                require(in_order([g[0] for g in got], sent, what), "%s: reordered or modified" % what)
                want_from = rec.remote_rtcp if is_rtcp else rec.remote_rtp
                if is_rtcp and rec.mux:
                    # recorder answered a=rtcp-mux to an offer without it: ng.md
                    # does not say which source port; accept RTP or RTCP port
                    rtcp_from = (rec.remote_rtp[0], rec.remote_rtp[1] + 1)
                    if all(a in (want_from, rtcp_from) for _, a in got):
                        want_from = got[0][1]
                require(all(a == want_from for _, a in got),
                        "%s: from %s, subscription offered %s" % (what, got[0][1], want_from))


def new_call(d, prime=True):
    c = Call(d.ng).setup()
    if prime:
        relay_all(c, 5)
    return c


def test_subscribe_offer_sdp(d):
    c = new_call(d, prime=False)
    try:
        s = Sub(c, [c.a.tag, c.b.tag], media="audio+video")
        ms = s.sdp["media"]
        require([m["kind"] for m in ms] == ["audio", "video", "audio", "video"],
                "m= kinds %r" % [m["kind"] for m in ms])
        for i, m in enumerate(ms):
            require(m["direction"] == "sendonly", "m= line %d is %s" % (i + 1, m["direction"]))
            require(m["port"] != 0 and d.port_min <= m["port"] <= d.port_max,
                    "m= line %d port %d" % (i + 1, m["port"]))
            require(m["addr"] == "127.0.0.1", "m= line %d c= %s" % (i + 1, m["addr"]))
        require("H264/90000" in " ".join(ms[1]["attrs"]), "video codec not copied")
        require("rtpmap:0 PCMU/8000" in ms[0]["attrs"], "audio codec not copied")
        require(sorted(s.reply.get("from-tags", [])) == sorted([c.a.tag, c.b.tag]),
                "from-tags %r" % s.reply.get("from-tags"))
        if not IS_RTPENGINE:
            labels = [m["label"] for m in ms]
            require(labels == ["1", "2", "3", "4"], "a=label values %r" % labels)
            st = s.streams
            require(st and sorted(st) == labels, "streams %r" % s.reply.get("streams"))
            want = [(c.a.tag, "audio", 1), (c.a.tag, "video", 2), (c.b.tag, "audio", 1), (c.b.tag, "video", 2)]
            for lab, w in zip(labels, want):
                e = st[lab]
                require((e.get("from-tag"), e.get("type"), int(e.get("index", 0))) == w,
                        "streams[%s] = %r, want %r" % (lab, e, w))
    finally:
        c.delete()
        c.close()


def test_subscribe_copies_everything(d):
    c = new_call(d)
    s = None
    try:
        s = Sub(c, [c.a.tag, c.b.tag], media="audio+video")
        r = s.answer()
        if not IS_RTPENGINE:
            require(labels(r.get("accepted")) == ["1", "2", "3", "4"], "accepted %r" % r.get("accepted"))
            require(not r.get("rejected"), "rejected %r" % r.get("rejected"))
        send_and_check_copies(c, s)
    finally:
        c.delete()
        c.close()
        if s:
            s.close()


def test_subscribe_audio_only(d):
    skip_on_rtpengine("media key")
    c = new_call(d)
    s = None
    try:
        s = Sub(c, [c.a.tag, c.b.tag], media="audio")
        kinds = [m["kind"] for m in s.sdp["media"]]
        require(kinds == ["audio", "audio"], "media=audio gave m= lines %r" % kinds)
        s.answer()
        send_and_check_copies(c, s)      # video still relays between the parties
        for p in s.peers:
            extra = collect(p.rtp, 1, 0.1) + collect(p.rtcp, 1, 0.1)
            require(not extra, "recorder got unexpected extra datagrams")
    finally:
        c.delete()
        c.close()
        if s:
            s.close()


def test_subscribe_video_rejected(d):
    skip_on_rtpengine("accepted/rejected")
    c = new_call(d)
    s = None
    try:
        s = Sub(c, [c.a.tag, c.b.tag], media="audio+video")
        r = s.answer(reject=(1, 3))
        require(labels(r.get("rejected")) == ["2", "4"], "rejected %r" % r.get("rejected"))
        require(labels(r.get("accepted")) == ["1", "3"], "accepted %r" % r.get("accepted"))
        send_and_check_copies(c, s)
        for p in s.peers:
            if p:
                extra = collect(p.rtp, 1, 0.1) + collect(p.rtcp, 1, 0.1)
                require(not extra, "audio recorder sockets got extra (video?) datagrams: %r" % extra[:1])
        # the parties' video still relays both ways, and no keyframe request
        # was needed for a rejected video line (not asserted: allowed)
    finally:
        c.delete()
        c.close()
        if s:
            s.close()


def test_subscribe_single_tag_and_all(d):
    c = new_call(d)
    subs = []
    try:
        s1 = Sub(c, None, tag=c.b.tag)
        subs.append(s1)
        require([m["kind"] for m in s1.sdp["media"]] == ["audio", "video"],
                "from-tag B: m= kinds %r" % [m["kind"] for m in s1.sdp["media"]])
        require(all(p is c.b for p, _ in s1.sources), "from-tag B: streams of A selected")
        s2 = Sub(c, None, flags=["all"])
        subs.append(s2)
        require(len(s2.sdp["media"]) == 4, "flag all: %d m= lines" % len(s2.sdp["media"]))
        # split RTCP port (a=rtcp: not port+1) for one recorder, rtcp-mux for the other
        s1.answer(split=True)
        s2.answer(mux=True)
        for p in s1.peers:
            require(p.rtcp_port != p.port + 1, "split RTCP socket is port+1")
        send_and_check_copies(c, s1, n=10)     # RTCP copies to a=rtcp:
        send_and_check_copies(c, s2, n=10)     # RTCP copies to the RTP port (mux)
    finally:
        c.delete()
        c.close()
        for s in subs:
            s.close()


def test_subscribe_answer_wrong_line_count(d):
    c = new_call(d)
    try:
        s = Sub(c, [c.a.tag, c.b.tag])
        p = RtpPeer()
        r = d.ng.request({"command": "subscribe answer", "call-id": c.call_id, "to-tag": s.to_tag,
                          "sdp": build_sdp([("audio", p, "recvonly")])})
        p.close()
        if IS_RTPENGINE and r.get("result") == "ok":
            raise Skip("rtpengine accepts a subscribe answer with fewer m= lines (observed)")
        require(r.get("result") == "error" and r.get("error-reason"),
                "1 m= line for a 4-line subscription: %r" % r)
        relay_all(c, 5, rtcp=False)
    finally:
        c.delete()
        c.close()


def wait_keyframe_request(peer, timeout=1.5, both=True):
    """First datagram carrying a PLI or FIR for peer's SSRC; with both=True
    (ng.md: tally sends PLI and FIR) keeps listening until both were seen
    (in one compound datagram or in two) and fails if one is missing."""
    seen = set()
    first = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and seen != {1, 4}:
        got = collect(peer.rtcp, 1, deadline - time.monotonic(),
                      match=lambda d, a: is_keyframe_request(d, peer.ssrc))
        if not got:
            break
        first = first or got[0]
        for p in parse_rtcp(got[0][0]):
            if p["pt"] == 206 and (p.get("media_ssrc") == peer.ssrc or peer.ssrc in p.get("fir_ssrcs", [])):
                seen.add(p["fmt"])
        if not both:
            break
    if first and both and seen != {1, 4}:
        raise AssertionError("keyframe request for %08x: got only %s, ng.md says PLI and FIR"
                             % (peer.ssrc, "PLI" if 1 in seen else "FIR"))
    return first


def test_keyframe_request_on_subscribe(d):
    skip_on_rtpengine("keyframe request on subscribe")
    c = new_call(d)          # both parties have sent video RTP
    s = None
    try:
        for p in (c.a.peers["video"], c.b.peers["video"]):
            p.drain()
        s = Sub(c, [c.a.tag, c.b.tag], media="audio+video")
        s.answer()
        for party in (c.a, c.b):
            v = party.peers["video"]
            got = wait_keyframe_request(v)
            require(got, "%s (video sender) got no PLI/FIR for SSRC %08x" % (party.name, v.ssrc))
            require(got[1] == v.remote_rtcp,
                    "%s: keyframe request from %s, not from its RTCP port %s" % (party.name, got[1], v.remote_rtcp))
        # audio senders get none
        for party in (c.a, c.b):
            a = party.peers["audio"]
            bad = collect(a.rtcp, 1, 0.2, match=lambda dd, aa: is_keyframe_request(dd, a.ssrc))
            require(not bad, "%s audio got a keyframe request" % party.name)
    finally:
        c.delete()
        c.close()
        if s:
            s.close()


def test_keyframe_request_after_first_packet(d):
    skip_on_rtpengine("keyframe request on subscribe")
    c = Call(d.ng).setup()
    s = None
    try:
        relay_all(c, 5, kinds=["audio"])     # audio flows, no video sent yet
        s = Sub(c, [c.a.tag, c.b.tag], media="audio+video")
        s.answer()
        va = c.a.peers["video"]
        time.sleep(0.3)
        va.drain()
        relay_leg(va, c.b.peers["video"], 3, kind="video")   # A's first video packets
        got = wait_keyframe_request(va)
        require(got, "A got no PLI/FIR for SSRC %08x after its first video packet" % va.ssrc)
    finally:
        c.delete()
        c.close()
        if s:
            s.close()


def test_recorder_pli_reaches_sender(d):
    # observed: rtpengine 10.5 counts the recorder's PLI but does not pass it on
    skip_on_rtpengine("recorder RTCP feedback to the sender")
    c = new_call(d)
    s = None
    try:
        s = Sub(c, [c.a.tag, c.b.tag], media="audio+video")
        s.answer()
        time.sleep(0.3)
        for party in (c.a, c.b):
            v = party.peers["video"]
            rec = s.recorder_for(party, "video")
            require(rec is not None, "no recorder line for %s video" % party.name)
            require(rec.remote_rtcp[1] == s.sdp["media"][s.peers.index(rec)]["port"] + 1,
                    "subscription RTCP port is not m= port + 1")
            v.drain()
            sender_ssrc = random.getrandbits(32)
            pli = rtcp_pli(sender_ssrc, v.ssrc)
            rec.send_rtcp(pli)
            got = collect(v.rtcp, 1, 1.5,
                          match=lambda dd, aa: is_keyframe_request(dd, v.ssrc) and
                          any(p.get("ssrc") == sender_ssrc for p in parse_rtcp(dd)))
            require(got, "recorder's PLI did not reach %s's video RTCP socket" % party.name)
            require(got[0][1] == v.remote_rtcp,
                    "%s: PLI from %s, not from its RTCP port %s" % (party.name, got[0][1], v.remote_rtcp))
    finally:
        c.delete()
        c.close()
        if s:
            s.close()


def test_unsubscribe(d):
    c = new_call(d)
    s = None
    try:
        s = Sub(c, [c.a.tag, c.b.tag], media="audio+video")
        s.answer()
        send_and_check_copies(c, s, n=10)
        ports = [m["port"] + k for m in s.sdp["media"] for k in (0, 1)]
        s.unsubscribe()
        # ng.md: unsubscribe frees its ports (observed: rtpengine keeps them)
        freed = IS_RTPENGINE or wait_until(lambda: all(port_free(pp) for pp in ports), 3.0)
        require(freed, "subscription ports %r not freed after unsubscribe"
                % [pp for pp in ports if not port_free(pp)])
        for p in s.peers:
            p.drain()
        relay_all(c, N)
        for p, (party, kind) in zip(s.peers, s.sources):
            got = collect(p.rtp, 1, 0.1) + collect(p.rtcp, 1, 0.1)
            require(not got, "recorder still got %s %s datagrams after unsubscribe" % (party.name, kind))
        # a second subscription works after the first is gone
        s2 = Sub(c, [c.a.tag], media="audio+video")
        try:
            s2.answer()
            send_and_check_copies(c, s2, n=10)
        finally:
            s2.close()
    finally:
        c.delete()
        c.close()
        if s:
            s.close()


def test_subscribe_pause_resume(d):
    """(tally) a second subscribe answer with a=inactive lines pauses those
    sinks (listed in accepted and inactive, nothing copied, ports kept);
    a=recvonly again resumes them on the same ports."""
    skip_on_rtpengine("inactive")
    c = new_call(d)
    s = None
    try:
        s = Sub(c, [c.a.tag, c.b.tag], media="audio")
        s.answer()
        send_and_check_copies(c, s, n=10, kinds=("audio",))
        ports = [m["port"] for m in s.sdp["media"]]
        r = s.reanswer(["inactive", "inactive"])
        require(labels(r.get("inactive")) == ["1", "2"] and labels(r.get("accepted")) == ["1", "2"]
                and not r.get("rejected"), "pause answer reply %r" % r)
        for p in s.peers:
            p.drain()
        relay_all(c, N, kinds=("audio",))
        for p in s.peers:
            got = collect(p.rtp, 1, 0.2) + collect(p.rtcp, 1, 0.1)
            require(not got, "a paused sink still copies: %r" % got[:1])
        q = c.ng.ok({"command": "query", "call-id": c.call_id})
        states = [x["state"] for sub in q.get("subscriptions", []) for x in sub["streams"]]
        require(states == ["paused", "paused"], "query states while paused %r" % states)
        require(not any(port_free(pp) for pp in ports), "a paused sink freed its port")
        r = s.reanswer(["recvonly", "recvonly"])
        require(not r.get("inactive") and labels(r.get("accepted")) == ["1", "2"],
                "resume answer reply %r" % r)
        send_and_check_copies(c, s, n=10, kinds=("audio",))
    finally:
        c.delete()
        c.close()
        if s:
            s.close()


def test_subscribe_add(d):
    """(tally) subscribe request with the to-tag of a subscription and flag
    add appends sinks for the streams it lacks (labels go on, old lines keep
    their ports and order); nothing to add is the same offer; add without a
    known to-tag is an error."""
    skip_on_rtpengine("flag add")
    c = new_call(d)
    s = None
    try:
        s = Sub(c, [c.a.tag, c.b.tag], media="audio")
        s.answer()
        old = [(m["kind"], m["port"], m["label"]) for m in s.sdp["media"]]
        r = c.ng.ok({"command": "subscribe request", "call-id": c.call_id,
                     "from-tags": [c.a.tag, c.b.tag], "to-tag": s.to_tag,
                     "flags": ["add"], "media": "audio+video"})
        new = [(m["kind"], m["port"], m["label"]) for m in parse_sdp(r["sdp"])["media"]]
        require(new[:2] == old and [k for k, _, _ in new[2:]] == ["video", "video"] and
                [lb for _, _, lb in new] == ["1", "2", "3", "4"] and r["to-tag"] == s.to_tag,
                "add: offer lines %r (before %r)" % (new, old))
        st = norm_streams(r.get("streams"))
        require(sorted(st) == ["1", "2", "3", "4"] and st["3"]["type"] == "video" and
                st["3"]["from-tag"] == c.a.tag and st["4"]["from-tag"] == c.b.tag,
                "add: streams %r" % st)
        again = c.ng.ok({"command": "subscribe request", "call-id": c.call_id,
                         "from-tags": [c.a.tag, c.b.tag], "to-tag": s.to_tag,
                         "flags": ["add"], "media": "audio+video"})
        require([m["port"] for m in parse_sdp(again["sdp"])["media"]] == [p for _, p, _ in new],
                "add with nothing to add changed the offer")
        s2 = Sub.__new__(Sub)
        s2.__dict__.update(s.__dict__)
        s2.sdp = parse_sdp(r["sdp"])
        s2.peers = []
        parties = {c.a.tag: c.a, c.b.tag: c.b}
        s2.sources = [(parties[st[m["label"]]["from-tag"]], m["kind"]) for m in s2.sdp["media"]]
        s.close()
        s = s2
        r = s.answer()
        require(labels(r.get("accepted")) == ["1", "2", "3", "4"], "answer after add %r" % r)
        send_and_check_copies(c, s, n=10)
        err = c.ng.request({"command": "subscribe request", "call-id": c.call_id,
                         "from-tags": [c.a.tag], "to-tag": "nope", "flags": ["add"]})
        require(err.get("result") == "error", "add to an unknown to-tag: %r" % err)
    finally:
        c.delete()
        c.close()
        if s:
            s.close()


if __name__ == "__main__":
    run([test_subscribe_offer_sdp, test_subscribe_copies_everything,
         test_subscribe_audio_only, test_subscribe_video_rejected,
         test_subscribe_single_tag_and_all, test_subscribe_answer_wrong_line_count,
         test_keyframe_request_on_subscribe, test_keyframe_request_after_first_packet,
         test_recorder_pli_reaches_sender, test_unsubscribe, test_subscribe_pause_resume,
         test_subscribe_add],
        daemon_factory=lambda: Daemon())
