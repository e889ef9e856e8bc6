"""nfmedia.py: the netfuzz target for tally-media (ng over UDP + RTP).

Scenarios are ng command sequences on one or two calls, drawn from three
shapes and then mutated:
  call       offer A -> answer A/B -> media flows -> re-offer -> delete
  replicate  a call, then subscribe request / subscribe answer / unsubscribe
             (to a to-tag the daemon chose, or a guessed one) while packets
             flow, re-offers with fewer m= lines, delete
  random     3-12 commands of any kind with tags from a small pool
Mutations: tags permuted (equal from-tag/to-tag, swapped, a third tag,
reused call-ids of earlier scenarios), steps dropped/duplicated/moved,
one field replaced by an odd value, bencode bytes mutated.

Media: a flood thread sends RTP (audio/video), RTCP (SR, RR, PLI, FIR) and
junk from the harness's own sockets (the ones its SDP names) to every port
the daemon answered with, while the commands go on.

Steps (JSON):
  {"op": "ng", "cmd": {...}, "mut": seed|null}  "$S<n>" in strings is the
      port of sink socket n; "$SUB" the to-tag of the last subscribe
      request; sdp "$SUBANS" an answer to the last subscription's SDP
  {"op": "flow", "on": bool, "pps": n}
  {"op": "burst", "n": n}          n packets at once, synchronously
  {"op": "raw", "hex": "..."}      a datagram to the ng port
  {"op": "sleep", "ms": n}
"""

import random
import re
import select
import socket
import struct
import time

import nfcommon  # noqa: E402
from nfcommon import LOCAL, Mutator, Victim, binary, mutate_steps
from tallytest import bencode, bdecode, free_port, free_port_block, rtp_packet, rtcp_sr, \
    rtcp_rr, rtcp_pli, rtcp_fir

TAGS = ["A", "B", "C", "X"]
NSINK = 8
COMMANDS = ["offer", "answer", "delete", "query", "list", "statistics", "ping",
            "subscribe request", "subscribe answer", "unsubscribe"]


def sdp_text(r, sinks, kinds=None, direction=None):
    """An SDP offer/answer whose ports are placeholders of sink sockets."""
    kinds = kinds or r.choice((["audio"], ["audio", "video"], ["audio", "video"],
                               ["video"], ["audio", "audio", "video"]))
    mux = r.random() < 0.3
    lines = ["v=0", "o=- %d %d IN IP4 127.0.0.1" % (r.randrange(1 << 30), r.randrange(1, 9)),
             "s=-", "c=IN IP4 127.0.0.1", "t=0 0"]
    for k in kinds:
        s = r.choice(sinks)
        port = "$S%d" % s
        if r.random() < 0.05:
            port = str(r.choice((0, 1, 65535, 70000)))
        if k == "audio":
            lines += ["m=audio %s RTP/AVP 0 8 101" % port, "a=rtpmap:0 PCMU/8000",
                      "a=rtpmap:101 telephone-event/8000"]
        else:
            lines += ["m=video %s RTP/AVP 96 97" % port, "a=rtpmap:96 H264/90000",
                      "a=rtpmap:97 VP8/90000", "a=rtcp-fb:96 nack pli"]
        if mux:
            lines.append("a=rtcp-mux")
        lines.append("a=" + (direction or r.choice(("sendrecv", "sendrecv", "sendonly",
                                                     "recvonly", "inactive"))))
    return "\r\n".join(lines) + "\r\n"


class Flood(nfcommon.Flood):
    """RTP, RTCP and junk to the daemon ports known so far, from the sinks
    (which are drained after each batch)."""

    def send_one(self, r, seq, dest):
        self.t.sinks[r.randrange(NSINK)].sendto(self.packet(r, seq), dest)

    def idle(self):
        self.t.drain_sinks()

    @staticmethod
    def packet(r, seq):
        c = r.randrange(20)
        ssrc = r.choice((0x1111, 0x2222, 0x3333, 0))
        if c < 12:
            s = seq[ssrc] = (seq.get(ssrc, r.randrange(65536)) + 1) & 0xffff
            pt = r.choice((0, 0, 8, 96, 97, 101, 127))
            return rtp_packet(s, s * 160, ssrc, bytes(r.randrange(256) for _ in range(r.choice((0, 1, 20, 160, 1200)))),
                              pt=pt, marker=r.random() < 0.1)
        if c == 12:
            return rtcp_sr(ssrc, r.randrange(100))
        if c == 13:
            return rtcp_rr(ssrc, 0x1111, 3)
        if c == 14:
            return rtcp_pli(ssrc, r.choice((0x1111, 0x2222)))
        if c == 15:
            return rtcp_fir(ssrc, 0x2222, r.randrange(256))
        if c == 16:   # RTP header claiming CSRCs/extension beyond the datagram
            return bytes([0x9f, 0, 0, 1]) + struct.pack("!II", 1, ssrc)
        if c == 17:   # a STUN binding request
            return struct.pack("!HHI", 1, 0, 0x2112A442) + bytes(12)
        return bytes(r.randrange(256) for _ in range(r.choice((0, 1, 3, 12, 64))))


class MediaTarget:
    name = "media"

    def __init__(self, stats, sandir, logdir):
        self.stats = stats
        self.bin = binary("TALLY_MEDIA", "media", "tally-media")
        self.sandir, self.logdir = sandir, logdir
        self.victim = None
        self.sinks = []
        self.prev_calls = []

    # ---------------------------------------------------------- lifecycle

    def victims(self):
        return [self.victim] if self.victim else []

    def start(self):
        self.ng_port = free_port()
        lo, hi = free_port_block(300)
        argv = [self.bin, "--config-file=none", "--interface=" + LOCAL,
                "--listen-ng=%s:%d" % (LOCAL, self.ng_port),
                "--port-min=%d" % lo, "--port-max=%d" % hi, "--foreground",
                "--log-level=6", "--timeout=%d" % random.choice((5, 20)),
                "--workers=2"]
        self.victim = Victim("tally-media", argv, self.sandir, self.logdir).start()
        if not self.sinks:
            self.sinks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(NSINK)]
            for s in self.sinks:
                s.bind((LOCAL, 0))
                s.setblocking(False)
            self.sink_ports = [s.getsockname()[1] for s in self.sinks]
            self.ng = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.ng.bind((LOCAL, 0))
        self.reset_state()
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if not self.victim.alive():
                return "exited at start (rc %s)" % self.victim.exitcode()
            if self.ping(0.3):
                return None
        return "no pong within 20 s"

    def reset_state(self):
        self.dests = []
        self.sub_tag = None
        self.sub_sdp = None
        self.cookie = 0
        self.flood = None

    def stop(self):
        self.flow(False)
        if self.victim:
            self.victim.stop()

    def close(self):
        for s in self.sinks:
            s.close()

    # ---------------------------------------------------------- ng

    def request(self, payload, timeout=0.4):
        self.cookie += 1
        ck = b"nf%x" % self.cookie
        try:
            self.ng.sendto(ck + b" " + payload, (LOCAL, self.ng_port))
        except OSError:
            return None
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            rd, _, _ = select.select([self.ng], [], [], left)
            if not rd:
                return None
            data = self.ng.recv(65535)
            if data.startswith(ck + b" "):
                try:
                    v = bdecode(data[len(ck) + 1:])
                except ValueError:
                    return {"result": "<undecodable>"}
                return v if isinstance(v, dict) else {"result": "<not a dict>"}

    def ping(self, timeout=1.0):
        rep = self.request(bencode({"command": "ping"}), timeout)
        return rep is not None and rep.get("result") == "pong"

    def live(self):
        for _ in range(3):
            if self.ping(1.0):
                return None
            if not self.victim.alive():
                return None
        return "ng ping unanswered (3 x 1 s)"

    def drain_sinks(self):
        for s in self.sinks:
            for _ in range(64):
                try:
                    s.recv(65535)
                except (BlockingIOError, OSError):
                    break

    # ---------------------------------------------------------- steps

    def subst(self, v):
        if isinstance(v, str):
            if v == "$SUB":
                return self.sub_tag or "tally-sub-1-1"
            if v == "$SUBANS":
                return self.sub_answer()
            if "$S" in v:
                return re.sub(r"\$S(\d)", lambda m: str(self.sink_ports[int(m.group(1)) % NSINK]), v)
            return v
        if isinstance(v, list):
            return [self.subst(x) for x in v]
        if isinstance(v, dict):
            return {k: self.subst(x) for k, x in v.items()}
        return v

    def sub_answer(self):
        n = len(re.findall(r"^m=", self.sub_sdp or "", re.M)) or 1
        kinds = re.findall(r"^m=(\w+)", self.sub_sdp or "m=audio", re.M) or ["audio"]
        lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0"]
        for i in range(n):
            lines += ["m=%s %d RTP/AVP 0 96" % (kinds[i % len(kinds)], self.sink_ports[i % NSINK]),
                      "a=recvonly"]
        return "\r\n".join(lines) + "\r\n"

    def learn(self, rep):
        sdp = rep.get("sdp")
        if not isinstance(sdp, str):
            return
        addr = LOCAL
        for m in re.finditer(r"^m=\w+ (\d+)", sdp, re.M):
            p = int(m.group(1))
            if 0 < p < 65535:
                for d in ((addr, p), (addr, p + 1)):
                    if d not in self.dests:
                        self.dests.append(d)
        del self.dests[:-64]

    def flow(self, on, pps=500):
        nfcommon.flood_switch(self, Flood, on, pps)

    def run_step(self, st):
        op = st["op"]
        if op == "ng":
            cmd = self.subst(st["cmd"])
            payload = bencode(cmd)
            if st.get("mut") is not None:
                payload = Mutator.bytes_mut(payload, st["mut"])
            name = cmd.get("command") if isinstance(cmd, dict) else None
            if st.get("mut") is not None:
                self.stats.count("ng (bytes mutated)")
            else:
                self.stats.count("ng " + (name if name in COMMANDS else "(odd command)"))
            rep = self.request(payload)
            if rep is None:
                self.stats.reply("ng no reply")
                return
            res = rep.get("result")
            self.stats.reply("ng %s" % (res if res in ("ok", "pong", "error") else "other"))
            if res == "ok":
                self.learn(rep)
                if isinstance(cmd, dict) and cmd.get("command") == "subscribe request":
                    self.sub_tag = rep.get("to-tag") if isinstance(rep.get("to-tag"), str) else None
                    self.sub_sdp = rep.get("sdp") if isinstance(rep.get("sdp"), str) else None
        elif op == "flow":
            self.flow(st["on"], st.get("pps", 500))
        elif op == "burst":
            r = random.Random(st["n"])
            seq = {}
            for _ in range(st["n"]):
                if not self.dests:
                    break
                d = self.dests[r.randrange(len(self.dests))]
                try:
                    self.sinks[r.randrange(NSINK)].sendto(Flood.packet(r, seq), d)
                except OSError:
                    pass
            self.stats.count("rtp/rtcp/junk", st["n"])
            self.drain_sinks()
        elif op == "raw":
            self.ng.sendto(bytes.fromhex(st["hex"]), (LOCAL, self.ng_port))
            self.stats.count("ng raw")
        elif op == "sleep":
            time.sleep(st["ms"] / 1000.0)

    def end_scenario(self):
        self.flow(False)

    # ---------------------------------------------------------- generation

    def generate(self, r, sid):
        calls = ["s%d-c%d" % (sid, k) for k in range(r.choice((1, 1, 1, 2)))]
        if self.prev_calls and r.random() < 0.25:
            calls[0] = r.choice(self.prev_calls)
        self.prev_calls = (self.prev_calls + calls)[-16:]
        shape = r.choice(("call", "call", "replicate", "replicate", "random"))
        steps = getattr(self, "gen_" + shape)(r, calls)
        steps = self.permute_tags(r, steps)
        steps = mutate_steps(r, steps)
        for st in steps:
            if st["op"] != "ng":
                continue
            if r.random() < 0.08:
                self.field_mut(r, st)
            if r.random() < 0.04:
                st["mut"] = r.randrange(1 << 30)
        if r.random() < 0.05:
            steps.insert(r.randrange(len(steps) + 1),
                         {"op": "raw", "hex": bytes(r.randrange(256) for _ in range(r.randrange(1, 60))).hex()})
        return steps

    def sinks_of(self, r):
        return r.sample(range(NSINK), 2)

    def offer(self, r, call, ftag, ttag=None, kinds=None, direction=None, answer=False):
        cmd = {"command": "answer" if answer else "offer", "call-id": call, "from-tag": ftag,
               "sdp": sdp_text(r, self.sinks_of(r), kinds, direction)}
        if ttag is not None:
            cmd["to-tag"] = ttag
        if r.random() < 0.3:
            cmd["replace"] = ["origin", "session-connection"]
        if r.random() < 0.2:
            cmd["ICE"] = "remove"
        if r.random() < 0.2:
            cmd["rtcp-mux"] = [r.choice(("demux", "offer", "accept", "reject"))]
        if r.random() < 0.1:
            cmd["flags"] = [r.choice(("trust-address", "SIP-source-address", "all", "port-latching"))]
        return {"op": "ng", "cmd": cmd}

    def sub_req(self, r, call):
        cmd = {"command": "subscribe request", "call-id": call}
        c = r.randrange(5)
        if c == 0:
            cmd["flags"] = ["all"]
        elif c == 1:
            cmd["from-tags"] = r.sample(TAGS, r.randrange(1, 3))
        elif c == 2:
            cmd["from-tag"] = r.choice(TAGS)
        elif c == 3:
            cmd["from-tag"] = r.choice(TAGS)
            cmd["to-tag"] = r.choice(TAGS + ["$SUB", "sub-x"])
        if r.random() < 0.3:
            cmd["media"] = r.choice(("audio", "video", "all", "none"))
        return {"op": "ng", "cmd": cmd}

    def sub_ans(self, r, call):
        return {"op": "ng", "cmd": {"command": "subscribe answer", "call-id": call,
                                    "to-tag": r.choice(("$SUB", "$SUB", "$SUB", "tally-sub-1-1", "A", "B")),
                                    "sdp": "$SUBANS"}}

    def simple(self, r, call, command):
        cmd = {"command": command, "call-id": call}
        if command in ("delete", "query", "unsubscribe") and r.random() < 0.5:
            cmd["from-tag"] = r.choice(TAGS)
        if command == "unsubscribe":
            cmd["to-tag"] = r.choice(("$SUB", "$SUB", "A", "B"))
        if command in ("list", "statistics", "ping"):
            del cmd["call-id"]
        return {"op": "ng", "cmd": cmd}

    def gen_call(self, r, calls):
        out = []
        for call in calls:
            out.append(self.offer(r, call, "A"))
            out.append(self.offer(r, call, "A", "B", answer=True))
        out.append({"op": "flow", "on": True, "pps": r.choice((200, 1000, 3000))})
        for call in calls:
            if r.random() < 0.5:
                out.append({"op": "sleep", "ms": r.choice((10, 50, 200))})
            if r.random() < 0.5:      # re-offer, either side
                a, b = r.choice((("A", "B"), ("B", "A")))
                out.append(self.offer(r, call, a, b))
                out.append(self.offer(r, call, a, b, answer=True))
            if r.random() < 0.3:
                out.append(self.offer(r, call, "X", "A"))
            out.append(self.simple(r, call, "query"))
            out.append({"op": "burst", "n": r.choice((10, 100))})
            out.append(self.simple(r, call, "delete"))
        out.append({"op": "flow", "on": False})
        return out

    def gen_replicate(self, r, calls):
        call = calls[0]
        out = [self.offer(r, call, "A"), self.offer(r, call, "A", "B", answer=True),
               {"op": "flow", "on": True, "pps": r.choice((300, 2000))}]
        if r.random() < 0.3:      # the subscription before the answer
            out.insert(1, self.sub_req(r, call))
        for _ in range(r.choice((1, 1, 2, 3))):
            out.append(self.sub_req(r, call))
            out.append(self.sub_ans(r, call))
            out.append({"op": "sleep", "ms": r.choice((20, 100))})
            if r.random() < 0.4:
                out.append(self.offer(r, call, "A", "B", kinds=["audio"]))
                out.append(self.offer(r, call, "A", "B", kinds=["audio"], answer=True))
            if r.random() < 0.6:
                out.append(self.simple(r, call, "unsubscribe"))
        if r.random() < 0.8:
            out.append(self.simple(r, call, "delete"))
        out.append({"op": "flow", "on": False})
        return out

    def gen_random(self, r, calls):
        out = [{"op": "flow", "on": True, "pps": 500}]
        for _ in range(r.randrange(3, 13)):
            call = r.choice(calls)
            c = r.choice(COMMANDS)
            if c in ("offer", "answer"):
                out.append(self.offer(r, call, r.choice(TAGS),
                                      r.choice(TAGS + [None]) if c == "offer" else r.choice(TAGS),
                                      answer=(c == "answer")))
            elif c == "subscribe request":
                out.append(self.sub_req(r, call))
            elif c == "subscribe answer":
                out.append(self.sub_ans(r, call))
            else:
                out.append(self.simple(r, call, c))
        out.append({"op": "flow", "on": False})
        return out

    def permute_tags(self, r, steps):
        """Equal tags, swapped tags, third tags: rewrite some tag fields."""
        if r.random() < 0.5:
            return steps
        out = []
        for st in steps:
            st = dict(st)
            if st["op"] == "ng" and r.random() < 0.3:
                cmd = dict(st["cmd"])
                c = r.randrange(4)
                if c == 0 and "from-tag" in cmd:
                    cmd["to-tag"] = cmd["from-tag"]          # equal tags
                elif c == 1 and "to-tag" in cmd and "from-tag" in cmd:
                    cmd["from-tag"], cmd["to-tag"] = cmd["to-tag"], cmd["from-tag"]
                elif c == 2 and "from-tag" in cmd:
                    cmd["from-tag"] = r.choice(TAGS)
                elif "to-tag" in cmd:
                    cmd["to-tag"] = r.choice(TAGS)
                st["cmd"] = cmd
            out.append(st)
        return out

    def field_mut(self, r, st):
        cmd = dict(st["cmd"])
        keys = list(cmd) + ["sdp", "to-tag", "from-tags", "media", "flags", "label"]
        k = r.choice(keys)
        cmd[k] = Mutator.odd_value(r, cmd.get(k, "x"))
        if k == "sdp" and isinstance(cmd[k], str) and r.random() < 0.5:
            cmd[k] = sdp_text(r, [0, 1]) * r.choice((2, 40))
        st["cmd"] = cmd
