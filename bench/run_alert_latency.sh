#!/usr/bin/env bash
# Builds the release binaries, then measures the alert latency: from a window's seal on the
# server to the alert e-mail reaching a local SMTP server, and (a preview for the end-to-end
# issue) from the onset of a scripted tachycardia episode to that e-mail. Everything runs on
# loopback in a temporary directory, in real time (default 3 minutes of data plus about
# 20 s to settle); bench/alert_latency.py explains what is measured and how.
#
# Usage: bench/run_alert_latency.sh [alert_latency.py options, e.g. --poll 5 --duration 300
#                                    --patients 8 --window 10s --grace 2 --keep --json FILE]
# Target (issue): seal -> SMTP <= poll interval + 1 s for every alert. Exit status 0 when
# met, 1 when not or on error.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

cmake --preset release >/dev/null
cmake --build --preset release --target cipherpulse-edge cipherpulse-server \
  cipherpulse-decryptor >/dev/null
if ! /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then
  echo "run_alert_latency: the SMTP fixture needs python3-aiosmtpd (apt-get install -y python3-aiosmtpd)" >&2
  exit 2
fi
exec /usr/bin/python3 bench/alert_latency.py "$@"
