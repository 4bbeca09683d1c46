#!/usr/bin/env bash
# System libraries Control Room needs on Debian/Ubuntu (why each one):
# PortAudio for sounddevice; GL/EGL, xkbcommon, fontconfig, glib and dbus for Qt even
# offscreen; the xcb set, Xvfb and xauth for a real window on a virtual screen; systemd
# to check service units; binutils (strip), patchelf, lintian and desktop-file-utils to
# build and check the bundle and the packages (`make package` and the packaging tests).
# As root it installs what is missing with apt-get; otherwise it names what to install.
# `system-deps.sh benchmark` installs the peer tools the benchmarks compare against
# instead (sox and ffmpeg: `make benchmark-deps`); the product and its tests need neither.
set -euo pipefail

if [ "${1:-}" = "benchmark" ]; then
  PACKAGES=(sox ffmpeg)
else
  PACKAGES=(
    libportaudio2
    libgl1 libegl1 libxkbcommon0 libfontconfig1 libglib2.0-0 libdbus-1-3
    libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0
    libxcb-render0 libxcb-shape0 libxcb-util1 libxcb-xkb1 libxkbcommon-x11-0
    xvfb xauth
    systemd
    binutils patchelf lintian desktop-file-utils
  )
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "system-deps: not a Debian-like system; install the equivalents of: ${PACKAGES[*]}" >&2
  exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  echo "system-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "system-deps: these Debian packages are missing: ${missing[*]}" >&2
  echo "system-deps: install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
