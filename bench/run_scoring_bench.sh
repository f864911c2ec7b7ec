#!/usr/bin/env bash
# End-to-end risk scoring on this machine: trains the Cleveland model, starts a real
# cipherpulse-server over TLS on a free loopback port with a fresh database, and runs
# bench/scoring_load against it (one patient per request with a warm client; 1,000 patients
# packed and one per row in the same run). Then the provider-side micro benchmarks
# (scoring_bench). Prints the reports; the JSON line of the load run goes to stdout last.
#
# Usage: bench/run_scoring_bench.sh [extra scoring_load options, e.g. --singles 500]
# Targets (issue): one patient end to end p50 <= 5 ms at 2048 bits with a warm client;
# server-side <= 1 ms per patient unpacked; 1,000 patients end to end <= 1 s packed.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
cmake --preset release >/dev/null
cmake --build --preset release --target scoring_load scoring_bench cipherpulse-server >/dev/null
bin=build/release/apps
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
data="$repo/../shared/data/real/heart_cleveland.csv"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -days 1 -keyout "$work/tls.key" -out "$work/tls.crt" \
  >/dev/null 2>&1
cat >"$work/server.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
tls_cert = "tls.crt"
tls_key = "tls.key"
[storage]
database = "server.db"
[scoring]
rows_per_day = 1000000000
max_rows_per_request = 10000
[logging]
level = "warn"
TOML
cfg=(--config "$work/server.toml")
"$bin/cipherpulse-server" model train --data "$data" --out "$work/model.json" >/dev/null 2>&1
"$bin/cipherpulse-server" "${cfg[@]}" init >/dev/null 2>&1
(umask 077; "$bin/cipherpulse-server" "${cfg[@]}" token create --role clinician >"$work/clinician.token" 2>/dev/null)
"$bin/cipherpulse-server" "${cfg[@]}" model add --file "$work/model.json" >/dev/null 2>&1
"$bin/cipherpulse-server" "${cfg[@]}" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  curl -sf --cacert "$work/tls.crt" "https://127.0.0.1:$port/v1/health" >/dev/null && break
  sleep 0.1
done
echo "== scoring_load (server pid $server_pid)" >&2
build/release/bench/scoring_load --url "https://127.0.0.1:$port" --ca "$work/tls.crt" \
  --token-file "$work/clinician.token" --model-file "$work/model.json" --data "$data" \
  --json "$@" >"$work/load.json"
echo "== server peak RSS: $(awk '/VmHWM/ {print $2 " kB"}' /proc/$server_pid/status)" >&2
# Stopped before the micro benchmarks: its pool refill would share the two cores with them.
kill "$server_pid"; wait "$server_pid" || true; server_pid=""
echo "== scoring_bench (provider side, one thread, medians of 5)" >&2
CIPHERPULSE_REPO_ROOT="$repo" build/release/bench/scoring_bench --benchmark_repetitions=5 \
  --benchmark_report_aggregates_only=true 2>/dev/null | grep -E "median|Benchmark" >&2
cat "$work/load.json"
