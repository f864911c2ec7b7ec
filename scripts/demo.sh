#!/usr/bin/env bash
# The cipherpulse demonstration on its embedded defaults (SQLite, loopback).
#
# What runs today: a decryptor key and identity; a server with a fresh database and tokens;
# the decryptor's signed key published; three simulated patients (a scripted tachycardia,
# a bradycardia, a healthy one) whose edges encrypt 5 s micro-windows and upload them;
# the server sums them into 30 s windows it cannot read; the decryptor fetches the sealed
# windows, checks and decrypts them, and prints a table of statistics per patient; finally
# a check that the server's database holds no plaintext value.
# Still to come (the end-to-end issue): TLS with a throwaway CA, a patient replaying a real
# recording, the decryptor watching with alert rules, e-mail through a local SMTP server.
#
# Usage: scripts/demo.sh [--duration SECONDS] [--keep]
#   --duration  how long the edges measure (default 40; windows are 30 s long)
#   --keep      leave the server running at the end and print how to query it
set -euo pipefail

duration=40
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
cipherpulse_install_deps
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc 2>/dev/null || echo 2)" \
  --target cipherpulse-edge cipherpulse-server cipherpulse-decryptor >/dev/null
bin="$repo/build/release/apps"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"

echo "==> decryptor: 2048-bit Paillier key and Ed25519 identity"
"$bin/cipherpulse-decryptor" keygen --bits 2048 --out "$work/keys" >/dev/null

echo "==> server: database, tokens, 30 s windows"
cat > "$work/server.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
[storage]
database = "server.db"
[ingest]
granularities = ["30s", "1h"]
[keys]
identity_public_key = "keys/identity.pub.pem"
[logging]
level = "warn"
EOF
"$bin/cipherpulse-server" --config "$work/server.toml" init > "$work/admin.token" 2>/dev/null
chmod 600 "$work/admin.token"
"$bin/cipherpulse-server" --config "$work/server.toml" token create --role decryptor \
  > "$work/decryptor.token" 2>/dev/null
chmod 600 "$work/decryptor.token"
"$bin/cipherpulse-server" --config "$work/server.toml" serve &
pids+=($!)
for _ in $(seq 100); do
  curl -sf "$url/v1/health" >/dev/null 2>&1 && break
  sleep 0.1
done

echo "==> decryptor: publishing the signed key document"
"$bin/cipherpulse-decryptor" publish --keys "$work/keys" --server "$url" \
  --token-file "$work/decryptor.token"

declare -A episodes=(
  [alice]="tachycardia@10s+40s:150"
  [bob]="bradycardia@10s+40s:42"
  [carol]=""
)
for patient in alice bob carol; do
  "$bin/cipherpulse-edge" init --device-id "edge-$patient" --server "$url" \
    --identity "$work/keys/identity.pub.pem" --dir "$work/edge-$patient" >/dev/null
  "$bin/cipherpulse-server" --config "$work/server.toml" device add --id "edge-$patient" \
    --patient "$patient" --public-key "$work/edge-$patient/device.pub.pem" >/dev/null
  cat >> "$work/edge-$patient/edge.toml" <<EOF
[upload]
batch_size = 10
[logging]
level = "warn"
EOF
  sed -i "s/^profile = .*/profile = \"healthy\"\nepisodes = \"${episodes[$patient]}\"\nduration_s = $duration/" \
    "$work/edge-$patient/edge.toml"
  sed -i "s/^seed = 1/seed = $RANDOM/" "$work/edge-$patient/edge.toml"
done

echo "==> edges: three simulated patients measuring for ${duration} s (alice: tachycardia, bob: bradycardia, carol: healthy)"
edge_pids=()
for patient in alice bob carol; do
  "$bin/cipherpulse-edge" run --config "$work/edge-$patient/edge.toml" &
  edge_pids+=($!)
  pids+=($!)
done
start=$SECONDS
while (( SECONDS - start < duration )); do
  sleep 5
  metrics="$(curl -s "$url/metrics")"
  accepted="$(grep '^cipherpulse_records_total{outcome="accepted"}' <<<"$metrics" | awk '{print $2}')"
  sealed="$(grep '^cipherpulse_windows_sealed_total' <<<"$metrics" | awk '{print $2}')"
  printf '    %3ds: %s records stored, %s windows sealed\n' "$((SECONDS - start))" "${accepted:-0}" "${sealed:-0}"
done
for pid in "${edge_pids[@]}"; do
  wait "$pid" || true
done
# The last window seals 5 s after its end: wait for it.
now_s="$(date +%s)"
seal_at=$(( (now_s / 30 + 1) * 30 + 6 ))
while (( $(date +%s) < seal_at )); do
  sleep 5
  sealed="$(curl -s "$url/metrics" | grep '^cipherpulse_windows_sealed_total' | awk '{print $2}')"
  printf '    waiting for the last windows to seal: %s sealed\n' "${sealed:-0}"
done
sleep 1

echo
echo "==> decryptor: sealed 30 s windows, checked and decrypted"
"$bin/cipherpulse-decryptor" windows --key "$work/keys/paillier.key" --server "$url" \
  --token-file "$work/decryptor.token" --granularity 30s |
  /usr/bin/python3 -c 'import sys
rows = [l.rstrip("\n").split("\t") for l in sys.stdin]
widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for r in rows:
    print("    " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))'

echo
echo "==> the server's database holds no plaintext value"
/usr/bin/python3 - "$work/server.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
print("    tables:", ", ".join(tables))
cols = {t: [c[1] for c in db.execute(f"PRAGMA table_info({t})")] for t in tables}
suspicious = [f"{t}.{c}" for t, cs in cols.items() for c in cs
              if any(w in c.lower() for w in ("bpm", "rate", "value", "plain", "rr"))]
print("    columns that could hold a vital value:", suspicious or "none")
sizes = {len(ct) for (ct,) in db.execute("SELECT ct FROM records")}
print("    record ciphertexts: %d records, all %s bytes" % (
    db.execute("SELECT COUNT(*) FROM records").fetchone()[0], sorted(sizes)))
sys.exit(1 if suspicious else 0)
PY

echo
if (( keep )); then
  echo "The server keeps running at $url (database $work/server.db)."
  echo "  curl -s $url/metrics"
  echo "  curl -s -H \"Authorization: Bearer \$(cat $work/decryptor.token)\" '$url/v1/windows?granularity=30s'"
  echo "Press Ctrl-C to stop it."
  wait "${pids[0]}"
fi
echo "Not in this demo yet: TLS, a replayed real recording, alert rules and e-mail alerts."
