#!/bin/sh
# capture_linphone.sh OUTDIR: linphonec (linphone-cli 5.1) offer and answer on
# 127.0.0.1, against sipp (sipp -sn uas answers linphone's offer; sipp_uac_av.xml
# offers to an auto-answering linphonec). SIP captured with dumpcap on lo.
set -eu
OUT=$1; HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/tally-lp.XXXXXX)
freeport() {
	while :; do
		p=$(( (($(od -An -N2 -tu2 /dev/urandom) % 2000) * 4) + 41000 ))
		ss -lntu | grep -qE "[:.]($p|$((p+1))|$((p+2)))[[:space:]]" || { echo $p; return; }
	done
}
mkrc() { # file sipport audioport videoport
	cat >"$1" <<RC
[sip]
sip_port=$2
sip_tcp_port=0
sip_tls_port=0
bind_address=127.0.0.1
[rtp]
audio_rtp_port=$3
video_rtp_port=$4
bind_address=127.0.0.1
[net]
nat_address=127.0.0.1
firewall_policy=1
[video]
enabled=1
capture=1
display=1
automatically_accept=1
automatically_initiate=1
device=StaticImage: Static picture
displaytype=MSExtDisplay
size=cif
RC
}
LP=$(freeport); SP=$(freeport); SP2=$(freeport); M=$(freeport)
mkdir -p "$W/home/.local/share/linphone"
dumpcap -q -P -i lo -f "udp port $LP or udp port $SP" -w "$W/sip.pcap" >/dev/null 2>&1 & D=$!
sleep 1
# 1: linphonec offers, sipp uas answers
mkrc "$W/a.rc" $LP $(freeport) $(freeport)
sipp -sn uas -i 127.0.0.1 -p $SP -mp $M -nostdin -bg -m 1 >"$W/uas.out" 2>&1 || true
UAS=$(grep -o 'PID=\[[0-9]*\]' "$W/uas.out" | tr -dc 0-9)
(echo "soundcard use files"; sleep 1; echo "call sip:bob@127.0.0.1:$SP"; sleep 3; echo terminate; sleep 1; echo quit) |
	HOME="$W/home" timeout 20 linphonec -V -c "$W/a.rc" >"$W/a.log" 2>&1 || true
[ -n "$UAS" ] && kill "$UAS" 2>/dev/null || true
# 2: sipp offers audio+video, linphonec -a answers
mkrc "$W/b.rc" $LP $(freeport) $(freeport)
(echo "soundcard use files"; sleep 6; echo quit) |
	HOME="$W/home" timeout 20 linphonec -V -c "$W/b.rc" -a >"$W/b.log" 2>&1 & LPID=$!
sleep 2
timeout 10 sipp 127.0.0.1:$LP -sf "$HERE/sipp_uac_av.xml" -s lb -i 127.0.0.1 -p $SP -mi 127.0.0.1 -mp $M \
	-m 1 -l 1 -nostdin -timeout 8 >"$W/uac.out" 2>&1 || true
wait $LPID || true
kill $D; wait $D 2>/dev/null || true
python3 - "$W/sip.pcap" "$OUT" $LP <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read(); lp = int(sys.argv[3])
off, got = 24, {}
while off + 16 <= len(data):
    incl = struct.unpack('<I', data[off+8:off+12])[0]
    pkt = data[off+16:off+16+incl]; off += 16 + incl
    ip = pkt[14:]; h = (ip[0] & 15) * 4
    sport = struct.unpack('>H', ip[h:h+2])[0]
    sip = ip[h+8:]
    head, _, body = sip.partition(b'\r\n\r\n')
    first = head.split(b'\r\n')[0]
    if sport != lp or not body.startswith(b'v=0'): continue
    kind = 'offer' if first.startswith(b'INVITE') else 'answer' if b' 200 ' in first else None
    if kind and kind not in got: got[kind] = body
for k, b in got.items(): open('%s/linphone-%s.sdp' % (sys.argv[2], k), 'wb').write(b)
print(sorted(got))
PY
rm -rf "$W"
