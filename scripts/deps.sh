#!/usr/bin/env bash
# deps.sh: install what tally builds and tests with, from Debian 12's archive.
# Idempotent and quiet: packages already installed cost one dpkg query.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libre-dev libcmocka-dev liburing-dev libxml2-dev libsqlite3-dev
  libavformat-dev libavcodec-dev libavutil-dev libswresample-dev
  # real peers and tools for the integration tests and the bench
  python3 sip-tester rtpengine-daemon kamailio baresip-core baresip-ffmpeg
  tshark ffmpeg iproute2 procps
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]} (run as root to install)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture: answer no, quietly
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
