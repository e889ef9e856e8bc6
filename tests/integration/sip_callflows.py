#!/usr/bin/env python3
"""tally-sip call flows with real SIP peers (sipp UAC -> server -> sipp UAS),
media anchored on the media daemon (tally-media). Scenarios: tests/data/sip/.

Subtests (each prints "ok NAME" or "FAIL NAME: why"):
  basic_call       audio+video call, RTP both ways through the media daemon
                   (capture), callee's SDP points at the daemon, caller BYE
  callee_bye       the callee hangs up; the caller gets the BYE
  busy             callee 486 -> caller 486
  cancel           callee rings, caller CANCELs -> caller 487, callee CANCEL
  no_answer        --no-answer-secs=2: caller 408/480, callee CANCEL
  hold_resume      re-INVITE a=sendonly / a=sendrecv forwarded and answered
  early_media      183 with SDP + early RTP through the daemon, then 200
  midcall          INFO (DTMF), re-INVITE video off / on, UPDATE to PCMA
  forked_answer    a forking proxy downstream: two callee UAs answer
  session_too_small  Session-Expires: 30 -> 422 with Min-SE: 90 (RFC 4028)
  not_found        unrouted user -> 404
  options          OPTIONS to the server -> 200
After every call subtest the media daemon must have no call left (ng list).

TALLY_SIP_TARGET=kamailio runs the same flows against Kamailio + rtpengine
(validates the harness). Exit 0 pass, 1 fail, 77 skipped (peer missing).
Run a subset: sip_callflows.py basic_call busy
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import siptest as st  # noqa: E402
from siptest import sdp_media, LOCAL  # noqa: E402


def sipp_ok(c, run, timeout, what=None):
    rc = run.wait(timeout)
    if not c(rc == 0, "sipp %s exit %s" % (what or run.name, rc)):
        c.diag(run.diag())
    return rc == 0


def first(msgs, pred):
    for m in msgs:
        if pred(m):
            return m
    return None


def check_relay_sdp(c, env, m, who):
    """The SDP `who` got must point at the media daemon: c=127.0.0.1, every
    active m= port in the daemon's range; returns {type: port}."""
    if not c(m is not None and "m=" in m["body"], "%s got no SDP" % who):
        return {}
    media, _ = sdp_media(m["body"])
    types = [x[0] for x in media]
    c(types == ["audio", "video"], "%s: SDP media %s, want audio+video" % (who, types))
    out = {}
    for typ, port, pts, _d, conn in media:
        out[typ] = port
        c(conn == LOCAL, "%s: %s c= %s" % (who, typ, conn))
        c(env.in_media_range(port), "%s: m=%s port %d not in the media daemon's range %d-%d"
          % (who, typ, port, env.media.port_min, env.media.port_max))
    return out


def rtp_flows(pkts):
    flows = {}
    for t, proto, sp, dp, p in pkts:
        if proto != "udp":
            continue
        r = st.rtp_parse(p)
        if r:
            flows.setdefault((sp, dp), []).append((t, r))
    return flows


def no_bye_to_callee(c, env, cap, what, uas):
    """The callee's dialog was never confirmed: the server must not send it
    a BYE (CANCEL or nothing ends an early/rejected dialog)."""
    time.sleep(1.0)            # a late BYE (or its retransmission) shows up here
    byes = [st.sip_parse(p) for t, proto, sp, dp, p in cap.stop()
            if proto == "udp" and dp == env.uas_port]
    inv = first(uas.received(), lambda m: m["kind"] == "INVITE")
    cid = inv["hdr"].get("call-id") if inv else None
    byes = [m for m in byes if m and m["kind"] == "BYE" and m["hdr"].get("call-id") == cid]
    if not c(not byes, "%s: the server sent %d BYE(s) to the callee on an unconfirmed dialog"
             % (what, len(byes))):
        m = byes[0]
        c.diag("  first BYE: %s / Reason: %s" % (m["first"], m["hdr"].get("reason")))


def no_calls_left(c, env):
    calls = env.wait_no_calls(3.0)
    c(not calls, "media daemon still has call(s) after the call: %s" % calls)


class Flows:
    def __init__(self, env):
        self.env = env
        self.srv = None
        self.srv2 = None

    def server(self):
        if self.srv is None or not self.srv.alive():
            self.srv = self.env.server("server", no_answer_secs=30)
        return self.srv

    # (1)
    def basic_call(self, c):
        env, srv = self.env, self.server()
        cap = env.capture("basic", srv)
        uas = env.uas("uas_basic", "uas_answer.xml", rtp_echo=True)
        uac = env.uac("uac_basic", "uac_call.xml", srv)
        during = None
        time.sleep(2.5)
        try:
            during = env.ng_calls()
        except Exception as e:     # noqa: BLE001
            c(False, "ng list during the call: %s" % e)
        ok_uac = sipp_ok(c, uac, 30, "UAC")
        ok_uas = sipp_ok(c, uas, 10, "UAS")
        pkts = cap.stop()
        c(during, "ng list during the call shows no call (%r)" % (during,))
        inv = first(uas.received(), lambda m: m["kind"] == "INVITE")
        ok200 = first(uac.received(), lambda m: m["code"] == 200 and m["method"] == "INVITE")
        to_uas = check_relay_sdp(c, env, inv, "callee's INVITE")
        to_uac = check_relay_sdp(c, env, ok200, "caller's 200")
        c(first(uas.received(), lambda m: m["kind"] == "BYE") is not None, "callee got no BYE")
        if not st.IS_KAMAILIO and ok200 is not None and inv is not None:
            ct = ok200["hdr"].get("contact", "")
            c(str(env.uas_port) not in ct,
              "B2BUA's 200 to the caller carries the callee's Contact (%s)" % ct)
            c("uac@" not in inv["hdr"].get("contact", "x"),
              "INVITE to the callee carries the caller's Contact (%s)" % inv["hdr"].get("contact"))
        flows = rtp_flows(pkts)
        uac_a, uac_v, uas_a, uas_v = env.uac_mp, env.uac_mp + 2, env.uas_mp, env.uas_mp + 2
        summary = ", ".join("%d->%d:%d" % (k[0], k[1], len(v)) for k, v in sorted(flows.items()))
        direct = [k for k in flows if {k[0], k[1]} <= {uac_a, uac_v, uas_a, uas_v}]
        c(not direct, "RTP directly between the endpoints: %s" % direct)
        for typ, a, b in (("audio", uac_a, uas_a), ("video", uac_v, uas_v)):
            r_uac, r_uas = to_uac.get(typ), to_uas.get(typ)
            need = [("caller->relay", a, r_uac), ("relay->callee", r_uas, b),
                    ("callee->relay", b, r_uas), ("relay->caller", r_uac, a)]
            for what, sp, dp in need:
                n = len(flows.get((sp, dp), []))
                c(n >= 20, "%s %s %s->%s: %d RTP packets (want >= 20)" % (typ, what, sp, dp, n))
        if c.fails:
            c.diag("  rtp flows: " + summary)
        no_calls_left(c, env)

    # (2)
    def callee_bye(self, c):
        env, srv = self.env, self.server()
        uas = env.uas("uas_bye", "uas_bye.xml")
        uac = env.uac("uac_wait_bye", "uac_wait_bye.xml", srv)
        sipp_ok(c, uac, 30, "UAC")
        sipp_ok(c, uas, 10, "UAS")
        c(first(uac.received(), lambda m: m["kind"] == "BYE") is not None, "caller got no BYE")
        c(first(uas.received(), lambda m: m["code"] == 200 and m["method"] == "BYE") is not None,
          "callee got no 200 to its BYE")
        no_calls_left(c, env)

    # (3)
    def busy(self, c):
        env, srv = self.env, self.server()
        cap = env.capture("busy", srv)
        uas = env.uas("uas_busy", "uas_busy.xml")
        uac = env.uac("uac_busy", "uac_expect_486.xml", srv)
        sipp_ok(c, uac, 30, "UAC (expects 486)")
        sipp_ok(c, uas, 10, "UAS")
        no_bye_to_callee(c, env, cap, "after 486", uas)
        no_calls_left(c, env)

    # (4)
    def cancel(self, c):
        env, srv = self.env, self.server()
        cap = env.capture("cancel", srv)
        uas = env.uas("uas_cancel", "uas_ring.xml")
        uac = env.uac("uac_cancel", "uac_cancel.xml", srv)
        sipp_ok(c, uac, 30, "UAC (CANCEL -> 487)")
        sipp_ok(c, uas, 10, "UAS (expects CANCEL)")
        c(first(uac.received(), lambda m: m["code"] == 487) is not None, "caller got no 487")
        c(first(uas.received(), lambda m: m["kind"] == "CANCEL") is not None, "callee got no CANCEL")
        no_bye_to_callee(c, env, cap, "after CANCEL", uas)
        no_calls_left(c, env)

    # (5)
    def no_answer(self, c):
        env = self.env
        srv = self.srv2 = env.server("server_noanswer", no_answer_secs=2)
        try:
            cap = env.capture("noanswer", srv)
            uas = env.uas("uas_noanswer", "uas_ring.xml")
            t0 = time.monotonic()
            uac = env.uac("uac_noanswer", "uac_noanswer.xml", srv)
            sipp_ok(c, uac, 30, "UAC (expects 408/480)")
            took = time.monotonic() - t0
            sipp_ok(c, uas, 10, "UAS (expects CANCEL)")
            fin = first(uac.received(), lambda m: m["code"] in (408, 480))
            c(fin is not None, "caller got no 408/480")
            c(1.5 <= took <= 8, "no-answer timeout took %.1f s (no-answer-secs=2)" % took)
            c(first(uas.received(), lambda m: m["kind"] == "CANCEL") is not None, "callee got no CANCEL")
            no_bye_to_callee(c, env, cap, "after the no-answer CANCEL", uas)
            no_calls_left(c, env)
        finally:
            if not srv.alive():
                c(False, "server_noanswer died (rc %s)" % srv.proc.p.returncode)
                c.diag("  --- server_noanswer log tail:\n" + srv.tail(40))
            srv.stop()

    # (6)
    def hold_resume(self, c):
        env, srv = self.env, self.server()
        uas = env.uas("uas_hold", "uas_hold.xml")
        uac = env.uac("uac_hold", "uac_hold.xml", srv)
        sipp_ok(c, uac, 30, "UAC")
        sipp_ok(c, uas, 10, "UAS")
        invs = [m for m in uas.received() if m["kind"] == "INVITE"]
        oks = [m for m in uac.received() if m["code"] == 200 and m["method"] == "INVITE"]
        c(len(invs) == 3, "callee got %d INVITEs, want 3" % len(invs))
        c(len(oks) >= 3, "caller got %d 200s to INVITE, want 3" % len(oks))
        want = [(invs, 1, "sendonly", "callee's hold re-INVITE"),
                (invs, 2, "sendrecv", "callee's resume re-INVITE"),
                (oks, 1, "recvonly", "caller's 200 to hold"),
                (oks, 2, "sendrecv", "caller's 200 to resume")]
        for lst, i, d, what in want:
            if len(lst) > i:
                media, _ = sdp_media(lst[i]["body"])
                dirs = [(x[0], x[3]) for x in media]
                c(dirs and all(x[3] == d for x in media), "%s: directions %s, want a=%s" % (what, dirs, d))
                ports = [x[1] for x in media]
                c(all(env.in_media_range(p) for p in ports), "%s: ports %s not the relay's" % (what, ports))
        no_calls_left(c, env)

    # (7)
    def early_media(self, c):
        env, srv = self.env, self.server()
        cap = env.capture("early", srv)
        uas = env.uas("uas_early", "uas_early.xml")
        uac = env.uac("uac_early", "uac_early.xml", srv)
        sipp_ok(c, uac, 30, "UAC")
        sipp_ok(c, uas, 10, "UAS")
        pkts = cap.stop()
        m183 = first(uac.received(), lambda m: m["code"] == 183)
        to_uac = check_relay_sdp(c, env, m183, "caller's 183")
        inv = first(uas.received(), lambda m: m["kind"] == "INVITE")
        to_uas = check_relay_sdp(c, env, inv, "callee's INVITE")
        # when did the 200 reach the caller?
        t200 = None
        for t, proto, sp, dp, p in pkts:
            if dp == uac.sip_port:
                m = st.sip_parse(p)
                if m and m["code"] == 200 and m["method"] == "INVITE":
                    t200 = t
                    break
        c(t200 is not None, "capture: no 200 to the caller")
        flows = rtp_flows(pkts)
        a_uac, a_uas = to_uac.get("audio"), to_uas.get("audio")
        hop1 = flows.get((env.uas_mp, a_uas), [])
        hop2 = flows.get((a_uac, env.uac_mp), [])
        e1 = [x for x in hop1 if t200 is None or x[0] < t200]
        e2 = [x for x in hop2 if t200 is None or x[0] < t200]
        c(len(e1) >= 20, "early RTP callee->relay (%s->%s) before the 200: %d pkts"
          % (env.uas_mp, a_uas, len(e1)))
        c(len(e2) >= 20, "early RTP relay->caller (%s->%s) before the 200: %d pkts"
          % (a_uac, env.uac_mp, len(e2)))
        direct = flows.get((env.uas_mp, env.uac_mp), [])
        c(not direct, "early RTP went directly callee->caller: %d pkts" % len(direct))
        if c.fails:
            c.diag("  rtp flows: " + ", ".join("%d->%d:%d" % (k[0], k[1], len(v))
                                               for k, v in sorted(flows.items())))
        no_calls_left(c, env)

    # (8)
    # (10) late offer: INVITE without SDP, the callee offers in its 200,
    # the caller answers in its ACK; both SDPs must point at the relay
    def late_offer(self, c):
        env, srv = self.env, self.server()
        uas = env.uas("uas_late", "uas_late.xml")
        uac = env.uac("uac_late", "uac_late.xml", srv)
        sipp_ok(c, uac, 30, "UAC (INVITE without SDP)")
        sipp_ok(c, uas, 10, "UAS (offer in 200, answer in ACK)")
        ok = first(uac.received(), lambda m: m["code"] == 200 and m["method"] == "INVITE")
        check_relay_sdp(c, env, ok, "caller (offer in the 200)")
        ack = first(uas.received(), lambda m: m["kind"] == "ACK")
        check_relay_sdp(c, env, ack, "callee (answer in the ACK)")
        no_calls_left(c, env)

    # mid-call: INFO (DTMF), video removed and added back by re-INVITE,
    # the audio codec changed by UPDATE; both sides check every SDP
    def midcall(self, c):
        env, srv = self.env, self.server()
        uas = env.uas("uas_midcall", "uas_midcall.xml")
        uac = env.uac("uac_midcall", "uac_midcall.xml", srv)
        sipp_ok(c, uac, 30, "UAC (INFO, video off/on, PCMA by UPDATE)")
        sipp_ok(c, uas, 10, "UAS (each change arrives as sent)")
        upd = [m for m in uac.received() if m["code"] == 200 and m["method"] == "UPDATE"]
        if upd:
            check_relay_sdp(c, env, upd[-1], "caller's 200 to UPDATE")
        no_calls_left(c, env)

    # (11) a forking proxy downstream: 180 from fork A, 183 + 200 from
    # fork B, then a 200 from fork A as well; the caller sees one dialog
    def forked_answer(self, c):
        env, srv = self.env, self.server()
        uas = env.uas("uas_fork", "uas_fork.xml")
        uac = env.uac("uac_fork", "uac_call.xml", srv)
        sipp_ok(c, uac, 30, "UAC")
        sipp_ok(c, uas, 10, "UAS (ACK to fork B, ACK + BYE to fork A, "
                "the caller's BYE to fork B; To-tags checked)")
        oks = [m for m in uac.received() if m["code"] == 200 and m["method"] == "INVITE"]
        c(len(oks) >= 1, "caller got no 200")
        tags = {m["hdr"].get("to", "").split("tag=")[-1] for m in oks}
        c(len(tags) == 1, "caller saw more than one dialog: To-tags %s" % tags)
        if oks:
            check_relay_sdp(c, env, oks[0], "caller's 200 (fork B's answer)")
        no_calls_left(c, env)

    # RFC 4028 8.1: Session-Expires below 90 s -> 422 with Min-SE; the
    # callee never sees the INVITE
    def session_too_small(self, c):
        env, srv = self.env, self.server()
        uac = env.uac("uac_422", "uac_expect_422.xml", srv)
        sipp_ok(c, uac, 30, "UAC (Session-Expires: 30, expects 422 Min-SE: 90)")
        no_calls_left(c, env)

    def not_found(self, c):
        env, srv = self.env, self.server()
        uac = env.uac("uac_404", "uac_expect_404.xml", srv, service="nobody")
        sipp_ok(c, uac, 30, "UAC (expects 404)")
        no_calls_left(c, env)

    # (9)
    def options(self, c):
        env, srv = self.env, self.server()
        uac = env.uac("uac_options", "options.xml", srv)
        sipp_ok(c, uac, 15, "OPTIONS (expects 200)")


ORDER = ["basic_call", "callee_bye", "busy", "cancel", "no_answer", "hold_resume",
         "early_media", "late_offer", "midcall", "forked_answer", "session_too_small", "not_found",
         "options"]


def main():
    st.preflight(need=("sipp", "dumpcap"), root=True)
    env = st.Env("sip_callflows")
    runner = st.Runner(env)
    try:
        env.start_media()
        flows = Flows(env)
        names = [a for a in sys.argv[1:] if a in ORDER] or ORDER
        for name in names:
            runner.run(name, getattr(flows, name), servers=lambda: [flows.srv])
        return runner.finish()
    finally:
        env.close()


if __name__ == "__main__":
    sys.exit(st.main_wrapper(main))
