#!/usr/bin/env python3
"""Who is in dialogue with whom, whatever tags a controller sends: the
triggers of the network-fuzzing findings (2026-12-netfuzz.md: 1, 1b, 7) as
regression tests, then every short sequence of offers, answers and
subscriptions over three tags. Each test ends with the daemon alive, its log
free of sanitizer reports, and (where it says so) its ports given back.

Run under the ASan/UBSan build by `make check`: a use-after-free aborts the
daemon, which fails the test that triggered it.
"""

import itertools
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tallytest import (Call, Daemon, IS_RTPENGINE, Party, build_sdp,  # noqa: E402
                       relay_leg, require, run, short, skip_on_rtpengine)

SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
       "t=0 0\r\nm=audio 20000 RTP/AVP 0\r\n")
SANITIZER_MARKS = (b"AddressSanitizer", b"runtime error:", b"LeakSanitizer",
                   b"UndefinedBehaviorSanitizer")


def sane(d):
    """The daemon is alive, answers ping, and has logged no sanitizer report."""
    require(d.alive(), "daemon died (rc %s)" % (d.proc.poll(),))
    require(d.ng.request({"command": "ping"}).get("result") == "pong",
            "no pong after the sequence")
    with open(d.logpath, "rb") as f:
        log = f.read()
    for mark in SANITIZER_MARKS:
        require(mark not in log, "sanitizer report in the log: %s" % mark.decode())


def ports_used(d):
    return d.ng.ok({"command": "statistics"})["statistics"]["tally"]["ports used"]


def ng(d, cmd, cid, **kw):
    msg = {"command": cmd, "call-id": cid}
    msg.update(kw)
    return d.ng.request(msg)


def cid():
    return "pair-%016x" % random.getrandbits(64)


def err_reason(r):
    return r.get("error-reason", "") if r.get("result") == "error" else ""


# -- finding 1: the two parties share a tag ---------------------------------

def test_answer_to_tag_equals_from_tag(d):
    """offer A; answer A/A; delete (crashed in mstream_close)."""
    c = cid()
    base = ports_used(d)
    require(ng(d, "offer", c, **{"from-tag": "A", "sdp": SDP})["result"] == "ok", "offer")
    r = ng(d, "answer", c, **{"from-tag": "A", "to-tag": "A", "sdp": SDP})
    if not IS_RTPENGINE:
        require("equal" in err_reason(r), "answer A/A must be refused: %s" % short(r))
    ng(d, "delete", c)
    sane(d)
    require(ports_used(d) == base, "ports not given back")


def test_offer_to_tag_equals_from_tag(d):
    c = cid()
    r = ng(d, "offer", c, **{"from-tag": "A", "to-tag": "A", "sdp": SDP})
    if not IS_RTPENGINE:
        require("equal" in err_reason(r), "offer A/A must be refused: %s" % short(r))
        require(ng(d, "query", c).get("result") == "error",
                "a refused first offer leaves no call")
    ng(d, "delete", c)
    sane(d)


def test_third_tag_offer_then_delete(d):
    """A/B audio+video call, then an offer from X naming A, then delete; and
    the same with another answer A/B in between."""
    for extra_answer in (False, True):
        call = Call(d.ng).setup()
        x = Party("X")
        ng(d, "offer", call.call_id, **{"from-tag": x.tag, "to-tag": call.a.tag,
                                          "sdp": x.sdp()})
        if extra_answer:
            ng(d, "answer", call.call_id, **{"from-tag": call.a.tag,
                                               "to-tag": call.b.tag, "sdp": call.b.sdp()})
        # media from every side while the pairing is whatever it is now
        for p in (call.a, call.b):
            for peer in p.peers.values():
                if peer.remote_rtp:
                    for _ in range(5):
                        peer.send_rtp(peer.next_rtp())
        call.delete()
        call.close()
        x.close()
        sane(d)


# -- finding 1b: an answer names a tag that is paired with someone else ------

def test_answer_repairs_tag_of_another_dialogue(d):
    """offer X->B; offer A; answer A/B; delete (crashed: X's streams still
    pointed at B's). The answer is B's answer to A's offer, sent with the
    ports A's offer gave it: A and B are in dialogue and their media flows
    on those ports; the old holder of tag B goes, X is left alone."""
    skip_on_rtpengine("tally's pairing rule")
    base = ports_used(d)
    c = cid()
    a, b, x = Party("A", ("audio",)), Party("B", ("audio",)), Party("X", ("audio",))
    r = ng(d, "offer", c, **{"from-tag": x.tag, "to-tag": b.tag, "sdp": x.sdp()})
    require(r["result"] == "ok", "offer X->B: %s" % short(r))
    r = ng(d, "offer", c, **{"from-tag": a.tag, "sdp": a.sdp()})
    require(r["result"] == "ok", "offer A: %s" % short(r))
    b.learn(r["sdp"])
    r = ng(d, "answer", c, **{"from-tag": a.tag, "to-tag": b.tag, "sdp": b.sdp()})
    require(r["result"] == "ok", "answer A/B: %s" % short(r))
    a.learn(r["sdp"])

    q = ng(d, "query", c)
    tags = q.get("tags", {})
    require(tags.get(a.tag, {}).get("in dialogue with") == b.tag and
            tags.get(b.tag, {}).get("in dialogue with") == a.tag,
            "A and B must be in dialogue: %s" % short(q))
    require("in dialogue with" not in tags.get(x.tag, {}),
            "X must be left alone: %s" % short(tags.get(x.tag)))
    require(sum(1 for t in tags if t == b.tag) == 1, "one party per tag")

    relay_leg(a.peers["audio"], b.peers["audio"], n=20)
    relay_leg(b.peers["audio"], a.peers["audio"], n=20)
    ng(d, "delete", c)
    for p in (a, b, x):
        p.close()
    sane(d)
    require(ports_used(d) == base, "ports not given back: %d -> %d" % (base, ports_used(d)))


def test_replaced_party_ports_released(d):
    """An answer that moves tag B to the callee of A's offer: the party that
    held B before (in dialogue with X) goes with its ports at once, not at
    the call's end."""
    skip_on_rtpengine("tally's pairing rule")
    c = cid()
    a, b, x = Party("A", ("audio",)), Party("B", ("audio",)), Party("X", ("audio",))
    ng(d, "offer", c, **{"from-tag": x.tag, "to-tag": b.tag, "sdp": x.sdp()})
    before = ports_used(d)                     # X and B: 2 pairs
    ng(d, "offer", c, **{"from-tag": a.tag, "sdp": a.sdp()})
    require(ports_used(d) == before + 4, "A's offer adds A and an unnamed callee")
    ng(d, "answer", c, **{"from-tag": a.tag, "to-tag": b.tag, "sdp": b.sdp()})
    require(ports_used(d) == before + 2,
            "the replaced party's pair must be released: %d" % (ports_used(d) - before))
    ng(d, "delete", c)
    for p in (a, b, x):
        p.close()
    sane(d)


# -- finding 7: a failed subscribe request leaves nothing ---------------------

def test_failed_subscribe_leaves_nothing(d):
    skip_on_rtpengine("tally extension")
    call = Call(d.ng)
    call.offer(**{"to-tag": call.b.tag})   # B is named but has not answered
    base = ports_used(d)
    for _ in range(3):
        r = ng(d, "subscribe request", call.call_id, **{"from-tags": [call.b.tag]})
        if r.get("result") == "ok":
            break
    require(r.get("result") == "error" and "SDP" in err_reason(r),
            "subscribing to the unanswered callee must fail saying why: %s" % short(r))
    require(ports_used(d) == base, "ports leaked: %d -> %d" % (base, ports_used(d)))
    q = call.query()
    require(not q.get("subscriptions"), "a failed request left a subscription: %s"
            % short(q.get("subscriptions")))
    # the old guessable tag does not reach anything
    for n in (1, 2, 3):
        r = ng(d, "subscribe answer", call.call_id,
               **{"to-tag": "tally-sub-1-%d" % n, "sdp": SDP})
        require(r.get("result") == "error", "answer to a guessed tag accepted")
    call.delete()
    call.close()
    sane(d)


def test_subscription_outlives_replaced_party(d):
    """A subscription made while B is in dialogue with X; B is replaced by
    an answer to A's offer; the subscription is answered afterwards: the
    sinks of the gone party are reported, nothing reads freed memory."""
    skip_on_rtpengine("tally's pairing rule")
    c = cid()
    a, b, x = Party("A", ("audio",)), Party("B", ("audio",)), Party("X", ("audio",))
    ng(d, "offer", c, **{"from-tag": x.tag, "to-tag": b.tag, "sdp": x.sdp()})
    ng(d, "answer", c, **{"from-tag": x.tag, "to-tag": b.tag, "sdp": b.sdp()})
    sub = ng(d, "subscribe request", c, flags=["all"])
    require(sub["result"] == "ok", short(sub))
    ng(d, "offer", c, **{"from-tag": a.tag, "sdp": a.sdp()})
    ng(d, "answer", c, **{"from-tag": a.tag, "to-tag": b.tag, "sdp": b.sdp()})
    ans = build_sdp([("audio", x.peers["audio"], "recvonly"),
                     ("audio", b.peers["audio"], "recvonly")])
    r = ng(d, "subscribe answer", c, **{"to-tag": sub["to-tag"], "sdp": ans})
    require(r["result"] == "ok", short(r))
    states = {s["label"]: s["state"] for s in ng(d, "query", c)["subscriptions"][0]["streams"]}
    require(list(states.values()).count("source gone") == 1, "states: %s" % states)
    ng(d, "delete", c)
    for p in (a, b, x):
        p.close()
    sane(d)


def test_subscription_tags_unique_after_unsubscribe(d):
    """Auto tags are never reused in a call (was: count + 1)."""
    skip_on_rtpengine("tally extension")
    call = Call(d.ng).setup()
    t1 = ng(d, "subscribe request", call.call_id, flags=["all"])["to-tag"]
    t2 = ng(d, "subscribe request", call.call_id, flags=["all"])["to-tag"]
    ng(d, "unsubscribe", call.call_id, **{"to-tag": t1})
    t3 = ng(d, "subscribe request", call.call_id, flags=["all"])["to-tag"]
    require(len({t1, t2, t3}) == 3, "subscription tags repeat: %s %s %s" % (t1, t2, t3))
    call.delete()
    call.close()
    sane(d)


def test_reoffer_fewer_lines_releases_ports(d):
    """A re-offer without the video line: the video streams' ports go, and
    a recorder's video copies stop (their sinks are detached)."""
    skip_on_rtpengine("tally's stream rule")
    call = Call(d.ng).setup()
    sub = ng(d, "subscribe request", call.call_id, flags=["all"])
    require(sub["result"] == "ok", short(sub))
    full = ports_used(d)
    audio_only = build_sdp([("audio", call.a.peers["audio"], "sendrecv")],
                           version=call.a.version + 1, sess_id=call.a.sess_id)
    r = ng(d, "offer", call.call_id, **{"from-tag": call.a.tag, "to-tag": call.b.tag,
                                          "sdp": audio_only})
    require(r["result"] == "ok", short(r))
    require(ports_used(d) == full - 4,
            "two video pairs (A's and B's) must be released: %d -> %d"
            % (full, ports_used(d)))
    q = call.query()
    states = [s["state"] for s in q["subscriptions"][0]["streams"]]
    require(states.count("source gone") == 2, "video sinks: %s" % states)
    call.delete()
    call.close()
    sane(d)


# -- every short sequence over three tags -------------------------------------

def _steps(sdp):
    tags = ("A", "B", "X")
    steps = []
    for f in tags:
        steps.append(("offer", {"from-tag": f, "sdp": sdp}))
        for t in tags:
            steps.append(("offer", {"from-tag": f, "to-tag": t, "sdp": sdp}))
            steps.append(("answer", {"from-tag": f, "to-tag": t, "sdp": sdp}))
    steps.append(("subscribe request", {"flags": ["all"]}))
    steps.append(("subscribe request", {"from-tags": ["B"]}))
    return steps


def test_tag_permutations(d):
    """Every pair of steps from 23 (offers and answers over tags A, B, X,
    equal ones included, and subscriptions), after a plain A/B call, then
    delete: 529 calls. No crash, every port given back."""
    skip_on_rtpengine("rtpengine takes minutes for this many calls")
    sdp2 = SDP + "m=video 20002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    steps = _steps(sdp2)
    base = ports_used(d)
    n = 0
    for seq in itertools.product(steps, repeat=2):
        c = "perm-%d-%x" % (n, random.getrandbits(24))
        ng(d, "offer", c, **{"from-tag": "A", "sdp": sdp2})
        ng(d, "answer", c, **{"from-tag": "A", "to-tag": "B", "sdp": sdp2})
        for cmd, args in seq:
            ng(d, cmd, c, **args)
        ng(d, "delete", c)
        n += 1
        if n % 100 == 0:
            sane(d)
    sane(d)
    require(ports_used(d) == base, "ports leaked over %d calls: %d -> %d"
            % (n, base, ports_used(d)))
    print("# %d sequences" % n)


if __name__ == "__main__":
    run([test_answer_to_tag_equals_from_tag, test_offer_to_tag_equals_from_tag,
         test_third_tag_offer_then_delete, test_answer_repairs_tag_of_another_dialogue,
         test_replaced_party_ports_released, test_failed_subscribe_leaves_nothing,
         test_subscription_outlives_replaced_party,
         test_subscription_tags_unique_after_unsubscribe,
         test_reoffer_fewer_lines_releases_ports, test_tag_permutations],
        daemon_factory=lambda: Daemon(nports=400, name="pairing"))
