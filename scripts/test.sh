#!/usr/bin/env bash
# Builds cipherpulse and runs the whole test suite (ctest). Installs missing Debian
# packages first. Exits non-zero on any failure.
#
# Usage: scripts/test.sh [--asan] [--label LABEL] [-- extra ctest arguments]
#   --asan         build and test with AddressSanitizer + UndefinedBehaviorSanitizer
#   --label LABEL  run only the tests with this ctest label (unit, integration, ...)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# shellcheck source=scripts/deps.sh
source scripts/deps.sh

preset=release
ctest_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --asan) preset=asan; shift ;;
    --label) ctest_args+=(-L "$2"); shift 2 ;;
    --) shift; ctest_args+=("$@"); break ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

cipherpulse_install_deps

jobs="$(nproc 2>/dev/null || echo 2)"
echo "==> configuring ($preset)"
cmake --preset "$preset" >/dev/null
echo "==> building with $jobs jobs"
cmake --build --preset "$preset" -j "$jobs"
echo "==> testing"
ctest --preset "$preset" -j "$jobs" --timeout 900 "${ctest_args[@]}"
