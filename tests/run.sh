#!/usr/bin/env bash
# Set up a fresh Debian machine for the test suite and run it: system packages, a virtualenv with
# ReelDB installed as a user would install it (not editable), then pytest. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# fonts-dejavu-core: the editor draws text with DejaVu Sans (else Pillow's own font)
# xvfb, pulseaudio, pulseaudio-utils (paplay, pactl), x11-xserver-utils (xrandr, xsetroot): the
# recorder's real-device tests run on a private Xvfb screen and PulseAudio daemon
# iproute2 (ip): the offline test brings loopback up in a network namespace of its own (unshare -n)
# systemd (systemd-analyze), caddy, nginx, openssl: tests/deploy checks the unit and the proxy examples
# (installed with services kept from starting: nothing listens on 80/443 afterwards)
# redis-server: the Celery job backend's tests start their own on a free port (tests/support/job_cluster.py)
apt_packages=(ffmpeg espeak-ng sox chromium fonts-dejavu-core xvfb pulseaudio pulseaudio-utils x11-xserver-utils
              iproute2 systemd caddy nginx openssl redis-server)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  apt-get update -qq
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then  # Debian's way to say "install, do not start"
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# (this machine's pip config names local package mirrors; the filter drops their noise, not errors)
.venv/bin/pip install -q --disable-pip-version-check ".[test]" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)

# The oldest SDK release ReelDB supports, beside the venv's newest (tests/e2e/test_sdk_table_oldest.py
# runs the SDK table test with it first on the path).
[ -d .venv/sdk-0.4.5/videodb ] || .venv/bin/pip install -q --disable-pip-version-check --no-deps \
  --target .venv/sdk-0.4.5 "videodb==0.4.5" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Most tests wait on real time (recordings, jobs, webhooks) more than they compute: 4 pytest-xdist
# workers on 2 cores, a file per worker at a time (its module fixtures shared). Not when the
# arguments name what to run (a file, a test) or choose -n.
workers=(-n 4 --dist loadfile --no-loadscope-reorder)  # conftest.py's order: the longest files first
for arg in "$@"; do
  case "$arg" in
    -n|-n*|--numprocesses*|tests/*) workers=() ;;
  esac
done
exec .venv/bin/python -m pytest "${workers[@]}" "$@"
