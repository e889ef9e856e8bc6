#!/bin/sh
# capture_baresip.sh OUTDIR NAME VIDEO_CODEC RTCP_MUX [MEDIANAT]
# Runs two headless baresip instances on 127.0.0.1 (A calls B, B auto-answers),
# captures their SIP with dumpcap on lo (port filter) and writes the INVITE's
# and the 200's SDP bodies byte-exact to OUTDIR/NAME-offer.sdp / -answer.sdp.
# Ports are random high ports checked free with ss. Only processes started
# here are stopped, by PID.
set -eu
OUT=$1; NAME=$2; VCODEC=$3; MUX=$4; NAT=${5:-}
W=$(mktemp -d /tmp/tally-cap.XXXXXX)

freeport() {
	while :; do
		p=$(( (($(od -An -N2 -tu2 /dev/urandom) % 2000) * 4) + 41000 ))
		ss -lntu | grep -qE "[:.]($p|$((p+1))|$((p+2)))[[:space:]]" || { echo $p; return; }
	done
}
SA=$(freeport); SB=$(freeport); CA=$(freeport); CB=$(freeport)
RA=$(freeport); RB=$(freeport)

mkconf() { # dir user sipport ctrlport rtpbase answermode
	mkdir -p "$1"
	cat >"$1/config" <<CONF
poll_method epoll
sip_listen 127.0.0.1:$3
net_interface 127.0.0.1
audio_player aubridge,nil
audio_source ausine,700
ausrc_srate 48000
ausrc_channels 2
audio_alert aubridge,nil
video_source fakevideo,nil
video_display fakevideo,nil
video_size 352x288
video_bitrate 500000
video_fps 25.00
rtp_ports $5-$(($5+40))
rtcp_mux $MUX
module_path /usr/lib/baresip/modules
module g711.so
module aubridge.so
module ausine.so
module avcodec.so
module vp8.so
module fakevideo.so
module ice.so
module_tmp uuid.so
module_tmp account.so
module_app contact.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:$4
avcodec_h264enc libx264
avcodec_h264dec h264
CONF
	NATP=""; [ -n "$NAT" ] && NATP=";medianat=$NAT"
	echo "\"$2\" <sip:$2@127.0.0.1:$3>;regint=0;answermode=$6;audio_codecs=pcmu;video_codecs=$VCODEC$NATP" >"$1/accounts"
	: >"$1/contacts"
}
mkconf "$W/a" alice $SA $CA $RA manual
mkconf "$W/b" bob $SB $CB $RB auto

dumpcap -q -P -i lo -f "udp port $SA or udp port $SB" -w "$W/sip.pcap" >"$W/dumpcap.log" 2>&1 & DPID=$!
sleep 1
(baresip -f "$W/b" -t 12 </dev/null >"$W/b.log" 2>&1 & echo $! >"$W/b.pid")
(baresip -f "$W/a" -t 10 -e "/dial sip:bob@127.0.0.1:$SB" </dev/null >"$W/a.log" 2>&1 & echo $! >"$W/a.pid")
sleep 5
for p in a b; do kill "$(cat $W/$p.pid)" 2>/dev/null || true; done
sleep 2
for p in a b; do kill -9 "$(cat $W/$p.pid)" 2>/dev/null || true; done
kill "$DPID"; wait "$DPID" 2>/dev/null || true

python3 - "$W/sip.pcap" "$OUT/$NAME" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
link = struct.unpack('<I', data[20:24])[0]
off, got = 24, {}
while off + 16 <= len(data):
    incl = struct.unpack('<I', data[off+8:off+12])[0]
    pkt = data[off+16:off+16+incl]; off += 16 + incl
    eth = 14 if link == 1 else 4 if link == 0 else 16
    ip = pkt[eth:]
    sip = ip[(ip[0] & 15) * 4 + 8:]
    head, _, body = sip.partition(b'\r\n\r\n')
    first = head.split(b'\r\n')[0]
    if not body.startswith(b'v=0'):
        continue
    kind = 'offer' if first.startswith(b'INVITE') else 'answer' if b' 200 ' in first else None
    if kind and kind not in got:
        got[kind] = body
for k, b in got.items():
    open('%s-%s.sdp' % (sys.argv[2], k), 'wb').write(b)
print(sorted(got))
PY
rm -rf "$W"
