#!/usr/bin/env bash
# Builds the server and the ingest load generator, then measures ingest at several client
# concurrencies at 2048 bits and one run at 3072 bits. Each run starts a fresh server on a
# free loopback port with a fresh database, and checks afterwards that every acknowledged
# record was stored. Prints each run's report, then a summary of medians.
#
# Usage: bench/run_ingest_bench.sh [extra ingest_load options, e.g. --devices 200 --batch 50]
# Environment: SECONDS_PER_RUN (default 20), REPEATS (default 3; medians are reported),
#   CONCURRENCIES (default "1 4 16"), CONCURRENCY_3072 (default 4).
# Target (issue): >= 20,000 records/s at 2048 bits with p99 batch latency <= 100 ms, on the
# 2-core machine with the generator running beside the server.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
seconds="${SECONDS_PER_RUN:-20}"
repeats="${REPEATS:-3}"
concurrencies="${CONCURRENCIES:-1 4 16}"
concurrency_3072="${CONCURRENCY_3072:-4}"

cmake --preset release >/dev/null
cmake --build --preset release --target ingest_load cipherpulse-server >/dev/null
generator=build/release/bench/ingest_load
server=build/release/apps/cipherpulse-server

results="$(mktemp --suffix=.jsonl)"
trap 'rm -f "$results"' EXIT
status=0

run() {
  local i
  for ((i = 1; i <= repeats; i++)); do
    echo "== ingest_load $* (run $i of $repeats)" >&2
    # The report goes to stderr, the JSON line to the results file.
    if ! "$generator" --server-bin "$server" --seconds "$seconds" --json "$@" >>"$results"; then
      status=1
    fi
    echo >&2
  done
}

for c in $concurrencies; do
  run --bits 2048 --concurrency "$c" "$@"
done
run --bits 3072 --concurrency "$concurrency_3072" "$@"

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
groups = {}
for r in rows:
    groups.setdefault((r["bits"], r["concurrency"], r["batch"], r["devices"]), []).append(r)
med = lambda rs, f: statistics.median(f(r) for r in rs)
print("Medians per configuration (%d runs in all):" % len(rows))
print("| bits | conns | batch | devices | runs | records/s | batches/s | p50 ms | p99 ms | max ms "
      "| min batches/conn | 429 | 503 | other | server cores | other procs cores | RSS max MiB "
      "| checks | target |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for (bits, conns, batch, devices), rs in sorted(groups.items()):
    rps = med(rs, lambda r: r["records_per_s"])
    p99 = med(rs, lambda r: r["latency_ms"]["p99"])
    checks = "ok" if all(r["ok"] for r in rs) else "FAILED %d/%d" % (
        sum(not r["ok"] for r in rs), len(rs))
    target = ("met" if rps >= 20000 and p99 <= 100 else "not met") if bits == 2048 else "-"
    print("| %d | %d | %d | %d | %d | %.0f | %.1f | %.1f | %.1f | %.1f | %d | %d | %d | %d | %.2f | %.2f | %.0f | %s | %s |" % (
        bits, conns, batch, devices, len(rs), rps, med(rs, lambda r: r["batches_per_s"]),
        med(rs, lambda r: r["latency_ms"]["p50"]), p99, med(rs, lambda r: r["latency_ms"]["max"]),
        min(r["batches_per_connection"]["min"] for r in rs),
        sum(r["http_429"] for r in rs), sum(r["http_503"] for r in rs),
        sum(r["other_errors"] + r["no_answer"] for r in rs),
        med(rs, lambda r: r["server_cpu_cores"]), med(rs, lambda r: r["other_cpu_cores"]),
        med(rs, lambda r: r["server_rss_kib"]["max"]) / 1024, checks, target))
print("A connection with 0 batches was starved (more connections than server.threads: each "
      "keep-alive connection holds an HTTP worker). 'other procs cores' is CPU used by other "
      "processes during the run: high values mean a disturbed measurement.")
PY
exit "$status"
