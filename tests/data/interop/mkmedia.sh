#!/bin/sh
# Regenerates the interop test's media files (committed; run once, as root,
# with ffmpeg (libx264), dumpcap and python3 installed):
#   tone440.ulaw  6 s 440 Hz sine, raw G.711 u-law 8 kHz mono (UAC audio, sipp rtp_stream)
#   tone880.ulaw  6 s 880 Hz sine, raw G.711 u-law 8 kHz mono (UAS audio, sipp rtp_stream)
#   h264_uac.pcap 6 s CIF H.264 (testsrc), RTP PT 96, packetization-mode=1 (UAC video, play_pcap_video)
#   h264_uas.pcap 6 s CIF H.264 (testsrc2), RTP PT 96, packetization-mode=1 (UAS video)
# The pcaps are classic pcap, Ethernet link type (what sipp 3.6 reads), captured
# on lo while ffmpeg's RTP muxer sends to a throw-away UDP receiver.
# Usage: tests/data/interop/mkmedia.sh [OUTDIR]   (default: this script's directory)
set -eu
OUT=${1:-$(dirname "$0")}
SECS=6
PORT=${MKMEDIA_PORT:-47990}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

ffmpeg -nostdin -loglevel error -y -f lavfi -i "sine=frequency=440:sample_rate=8000:duration=$SECS" \
  -f mulaw -ar 8000 -ac 1 "$OUT/tone440.ulaw"
ffmpeg -nostdin -loglevel error -y -f lavfi -i "sine=frequency=880:sample_rate=8000:duration=$SECS" \
  -f mulaw -ar 8000 -ac 1 "$OUT/tone880.ulaw"

mkpcap() { # SOURCE OUTFILE
  # UDP sink so the kernel sends no ICMP port-unreachable back to ffmpeg
  python3 -c "
import socket,time
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('127.0.0.1',$PORT)); s.settimeout(1)
end=time.time()+$SECS+20
while time.time()<end:
    try: s.recv(65536)
    except OSError: pass
" &
  sink=$!
  dumpcap -q -P -i lo -f "udp dst port $PORT" -w "$TMP/cap.pcap" 2>/dev/null &
  cap=$!
  sleep 2
  # -re: real time, so the pcap's timestamps pace sipp's playback at 25 fps
  ffmpeg -nostdin -loglevel error -re -f lavfi -i "$1=size=352x288:rate=25:duration=$SECS" \
    -c:v libx264 -profile:v baseline -preset veryfast -tune zerolatency -g 50 -b:v 250k \
    -maxrate 300k -bufsize 300k -pix_fmt yuv420p -an \
    -f rtp -payload_type 96 "rtp://127.0.0.1:$PORT?pkt_size=1200"
  sleep 1
  kill "$cap"; wait "$cap" || true
  kill "$sink"; wait "$sink" 2>/dev/null || true
  cp "$TMP/cap.pcap" "$2"
}
mkpcap testsrc "$OUT/h264_uac.pcap"
PORT=$((PORT + 2)) mkpcap testsrc2 "$OUT/h264_uas.pcap"
chmod 644 "$OUT"/tone440.ulaw "$OUT"/tone880.ulaw "$OUT"/h264_uac.pcap "$OUT"/h264_uas.pcap
ls -l "$OUT"/tone440.ulaw "$OUT"/tone880.ulaw "$OUT"/h264_uac.pcap "$OUT"/h264_uas.pcap
