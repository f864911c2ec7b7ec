#!/usr/bin/env bash
# Runs the core micro benchmarks with repetitions and prints medians and target ratios.
# Usage: bench/run_core_bench.sh [extra benchmark arguments, e.g. --benchmark_filter=Add]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
cmake --preset release >/dev/null
cmake --build --preset release --target core_bench >/dev/null
out="$(mktemp --suffix=.json)"
./build/release/bench/core_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_out="$out" --benchmark_out_format=json "$@" >&2
python3 bench/report.py "$out"
rm -f "$out"
