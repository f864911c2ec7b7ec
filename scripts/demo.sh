#!/usr/bin/env bash
# The cipherpulse demonstration: the whole system, end to end, on loopback with TLS.
#
# It installs the Debian packages that are missing (scripts/deps.sh), builds, and runs in a
# scratch directory: a throwaway CA with a certificate for 127.0.0.1/localhost; the
# decryptor's Paillier key and Ed25519 identity; a server with a fresh database and tokens,
# serving HTTPS, holding the decryptor's signed key; simulated patients, each measured by
# its own edge (a scripted tachycardia, a bradycardia, an irregular rhythm, a healthy one,
# more with --patients) and one edge replaying a real recording (MIT-BIH record 208, from
# ../shared/data/real/); a local SMTP server (STARTTLS and AUTH) that receives the alerts;
# the decryptor watching the sealed windows, decrypting them and running its alert rules.
# It prints progress while the edges measure, then a per-patient table of decrypted
# statistics, the e-mails the SMTP server received and a check that the server's database
# holds no plaintext value; then risk scoring on encrypted features, and cohort statistics:
# an analyst asks for the ward's figures, a data administrator approves with a key the
# decryptor pins, and only the analyst opens the noised release; a request over too few
# patients is refused. Demo settings: 10 s windows and alert rules tuned for them (the
# defaults are meant for 1-minute windows), a 2048-bit key to start fast.
#
# Usage: scripts/demo.sh [--duration SECONDS] [--patients N] [--keep]
#   --duration  how long the edges measure (default 60, at least 30)
#   --patients  simulated patients (default 4: tachycardia, bradycardia, irregular,
#               healthy; a 5th is an athlete with a per-patient rule, more are healthy
#               or elderly); one more replays the real recording when it is there
#   --keep      leave everything running at the end (edges keep measuring) and print how
#               to query and stop it
# Exit status 0 when every process ran, the tachycardia and bradycardia patients' alerts
# arrived by e-mail and the plaintext check passed; 1 otherwise. Every process it started
# is stopped (by pid) and its scratch directory removed, unless --keep.
set -euo pipefail

duration=60
npatients=4
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) duration="${2:-}"; shift 2 || { echo "--duration needs a value" >&2; exit 2; } ;;
    --patients) npatients="${2:-}"; shift 2 || { echo "--patients needs a value" >&2; exit 2; } ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$duration" =~ ^[0-9]+$ ]] || (( duration < 30 || duration > 86400 )); then
  echo "--duration must be a whole number of seconds, 30 to 86400" >&2
  exit 2
fi
if ! [[ "$npatients" =~ ^[0-9]+$ ]] || (( npatients < 1 || npatients > 20 )); then
  echo "--patients must be 1 to 20" >&2
  exit 2
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
cipherpulse_install_deps
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc 2>/dev/null || echo 2)" \
  --target cipherpulse-edge cipherpulse-server cipherpulse-decryptor cipherpulse-analyst >/dev/null
bin="$repo/build/release/apps"
helper=(/usr/bin/python3 "$repo/scripts/demo_progress.py")
recordings="$(cd "$repo/.." && pwd)/shared/data/real"
recording="mitdb_208_rr_ms.csv"

work="$(mktemp -d "${TMPDIR:-/tmp}/cipherpulse-demo.XXXXXX")"
chmod 700 "$work"
mkdir -p "$work"/{tls,decryptor,server,edges,smtp/mail,logs}
umask 077
names=()  # what each started process is, by index
pids=()
leave_running=0
started_at=$SECONDS

say() { printf '==> %s\n' "$*"; }
fail() {
  printf '\nDEMO FAILED: %s\n' "$*" >&2
  exit 1
}
start() {  # start NAME LOGFILE COMMAND...: runs COMMAND in the background, remembers it
  local name="$1" log="$2"
  shift 2
  "$@" >"$log" 2>&1 &
  names+=("$name")
  pids+=("$!")
}
reaped() {  # reaped PID: the demo waited for PID; never signal that number again
  local i
  for i in "${!pids[@]}"; do
    [[ "${pids[i]}" == "$1" ]] && pids[i]=""
  done
  return 0
}
status_text() {  # status_text RC: "status N" or "signal NAME"
  if (( $1 > 128 )); then
    echo "signal $(kill -l $(( $1 - 128 )) 2>/dev/null || echo $(( $1 - 128 )))"
  else
    echo "status $1"
  fi
}
show_logs() {  # the end of each log that says something, for a failed run
  local f
  for f in "$work"/logs/*.log; do
    [[ -s "$f" ]] || continue
    printf -- '--- %s (last lines) ---\n' "${f#"$work"/}" >&2
    tail -n 8 "$f" >&2
  done
}
cleanup() {
  local rc=$? i pid
  trap - EXIT INT TERM
  if (( leave_running )); then
    exit "$rc"
  fi
  (( rc == 0 || rc == 130 )) || show_logs || true
  # Stop in reverse order of start (edges, decryptor, SMTP, server), each by its pid.
  for (( i = ${#pids[@]} - 1; i >= 0; i-- )); do
    pid="${pids[i]}"
    [[ -n "$pid" ]] || continue
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "(${names[i]}, pid $pid, still running 5 s after SIGTERM: killing it)" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "interrupted" >&2; exit 130' INT TERM

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------------------------------
say "TLS: a throwaway CA and a certificate for 127.0.0.1 / localhost"
(
  cd "$work/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=cipherpulse demo CA (throwaway)" -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
  printf '%s\n' "subjectAltName = IP:127.0.0.1, DNS:localhost" \
    "basicConstraints = critical, CA:FALSE" \
    "keyUsage = critical, digitalSignature" "extendedKeyUsage = serverAuth" > server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile server.ext -out server.pem 2>/dev/null
  openssl verify -CAfile ca.pem server.pem >/dev/null
  rm -f ca.key server.csr ca.srl  # nothing else may be signed by this CA
) || fail "could not create the throwaway certificates with openssl"
ca="$work/tls/ca.pem"

say "decryptor: 2048-bit Paillier key and Ed25519 identity"
"$bin/cipherpulse-decryptor" keygen --bits 2048 --out "$work/decryptor/keys" \
  >"$work/logs/keygen.log" 2>&1 || fail "keygen failed"

# ---------------------------------------------------------------------------------------
port="$(free_port)"
url="https://127.0.0.1:$port"
say "server: database, tokens, 10 s windows, HTTPS on $url"
cat > "$work/server/server.toml" <<EOF
# Written by scripts/demo.sh (config/server.toml explains every key).
[server]
listen = "127.0.0.1:$port"
tls_cert = "../tls/server.pem"
tls_key = "../tls/server.key"
[storage]
database = "server.db"
[ingest]
# Demo setting: 10 s windows sealing 5 s after their end, so alerts come within a minute.
# The default windows are 1m, 1h and 1d.
granularities = ["10s"]
seal_grace_s = { "10s" = 5 }
[keys]
identity_public_key = "../decryptor/keys/identity.pub.pem"
[logging]
level = "info"
EOF
server=("$bin/cipherpulse-server" --config "$work/server/server.toml")
# Tokens go to 0600 files (umask 077) and are never printed.
"${server[@]}" init > "$work/server/admin.token" 2>>"$work/logs/server-admin.log" ||
  fail "server init failed"
"${server[@]}" token create --role decryptor --label demo-decryptor \
  > "$work/decryptor/decryptor.token" 2>>"$work/logs/server-admin.log" ||
  fail "could not create the decryptor token"
"${server[@]}" token create --role clinician --label demo-clinician \
  > "$work/server/clinician.token" 2>>"$work/logs/server-admin.log" ||
  fail "could not create the clinician token"
start server "$work/logs/server.log" "${server[@]}" serve
server_pid="${pids[-1]}"
for _ in $(seq 100); do
  curl -sf --cacert "$ca" "$url/v1/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || fail "the server did not start"
  sleep 0.1
done
curl -sf --cacert "$ca" "$url/v1/health" >/dev/null || fail "the server does not answer on $url"

say "decryptor: publishing its signed key document"
"$bin/cipherpulse-decryptor" publish --keys "$work/decryptor/keys" --server "$url" \
  --ca-file "$ca" --token-file "$work/decryptor/decryptor.token" \
  >"$work/logs/publish.log" 2>&1 || fail "publishing the key failed"

# ---------------------------------------------------------------------------------------
say "SMTP: a local server with STARTTLS and AUTH, receiving the alerts"
/usr/bin/python3 -c 'import secrets; print(secrets.token_urlsafe(24))' > "$work/smtp/password"
start smtp "$work/logs/smtp.log" /usr/bin/python3 "$repo/tests/fixtures/smtp_server.py" \
  --port 0 --mode starttls --cert "$work/tls/server.pem" --key "$work/tls/server.key" \
  --require-auth --user alerts --password-file "$work/smtp/password" --out "$work/smtp/mail"
smtp_pid="${pids[-1]}"
smtp_port=""
for _ in $(seq 100); do
  smtp_port="$(sed -n 's/^READY \([0-9]*\)$/\1/p' "$work/logs/smtp.log" 2>/dev/null)"
  [[ -n "$smtp_port" ]] && break
  kill -0 "$smtp_pid" 2>/dev/null || fail "the SMTP server did not start"
  sleep 0.1
done
[[ -n "$smtp_port" ]] || fail "the SMTP server did not report its port"
echo "    smtp://127.0.0.1:$smtp_port, user alerts, password in a 0600 file"

# ---------------------------------------------------------------------------------------
# Patients: id, alias (what clinicians see), what drives the edge. A rhythm episode blends in
# and out over a third of its length (at most 30 s): it covers the whole run.
offset=5
sustained=2  # windows with the condition before an alert
if (( duration < 45 )); then
  offset=3
  sustained=1
fi
length=$(( duration - offset ))
patients_file="$work/patients.tsv"
: > "$patients_file"
ids=() kinds=() episodes=() profiles=() scenarios=()
for (( i = 1; i <= npatients; i++ )); do
  ids+=("$(printf 'p-%02d' "$i")")
  case "$i" in
    1) kinds+=(sim) profiles+=(healthy) episodes+=("tachycardia@${offset}s+${length}s:160")
       scenarios+=("sim: tachycardia 160 bpm") ;;
    2) kinds+=(sim) profiles+=(healthy) episodes+=("bradycardia@${offset}s+${length}s:36")
       scenarios+=("sim: bradycardia 36 bpm") ;;
    3) kinds+=(sim) profiles+=(healthy) episodes+=("irregular@${offset}s+${length}s")
       scenarios+=("sim: irregular (AF-like)") ;;
    5) kinds+=(sim) profiles+=(athlete) episodes+=("")
       scenarios+=("sim: athlete, own rule") ;;
    *) kinds+=(sim) profiles+=("$( (( i % 2 )) && echo elderly || echo healthy)") episodes+=("")
       scenarios+=("sim: ${profiles[-1]}") ;;
  esac
done
if [[ -f "$recordings/$recording" ]]; then
  ids+=("$(printf 'p-%02d' $(( npatients + 1 )))")
  kinds+=(replay) profiles+=("") episodes+=("")
  scenarios+=("replay: MIT-BIH 208")
  rows="$("${helper[@]}" trim "$recordings/$recording" "$work/edges/$recording" \
    "$(( keep ? 0 : duration ))")"
else
  echo "    note: $recordings/$recording is missing: no patient replays a real recording"
fi
for (( i = 0; i < ${#ids[@]}; i++ )); do
  required=0
  [[ "${episodes[i]}" == tachycardia* || "${episodes[i]}" == bradycardia* ]] && required=1
  printf '%s\tWard 7, bed %d\t%s\t%s\n' "${ids[i]}" "$(( i + 1 ))" "${scenarios[i]}" "$required" \
    >> "$patients_file"
done

# ---------------------------------------------------------------------------------------
say "decryptor: watch configuration (10 s windows, demo alert rules, e-mail)"
cp "$work/smtp/password" "$work/decryptor/smtp.password"
dconf="$work/decryptor/decryptor.toml"
cat > "$dconf" <<EOF
# Written by scripts/demo.sh (config/decryptor.toml explains every key).
[key]
private_key = "keys/paillier.key"

[server]
url = "$url"
ca_file = "$ca"
token_file = "decryptor.token"

[watch]
database = "decryptor.db"
# Demo: the server's 10 s windows, asked for every second; a quarter of them re-verified
# against the records their devices signed.
granularity = "10s"
poll_interval_s = 1.0
verify_sample_rate = 0.25

[notify]
retry_initial_backoff_s = 1.0
retry_max_backoff_s = 10.0

[notify.email]
enabled = true
url = "smtp://127.0.0.1:$smtp_port"
tls = "starttls"
username = "alerts"
password_file = "smtp.password"
ca_file = "$ca"
from = "cipherpulse demo <alerts@cipherpulse.localhost>"
to = ["on-call@ward7.localhost"]

[logging]
level = "info"

[cohort]
# Demo: releases over at least 5 patients (the floor; the default is 10), and exact
# releases allowed so that the demo can show one beside a noised one (the default refuses
# a query without noise).
min_patients = 5
allow_without_noise = true

# DEMO RULES, tuned for 10 s windows so that alerts come within a minute. The built-in
# defaults (config/decryptor.toml) are meant for 1-minute windows: tachycardia over 3
# windows (3 minutes), bradycardia over 2, cool-downs of 15 minutes and more, at least 30
# RR intervals for a rhythm judgement. Do not copy these into a real deployment.
# Sustained: 2 windows (20 s); for tachycardia and bradycardia 1 in runs under 45 s.
[rules.tachycardia]
sustained = $sustained
clear_after = 2
cooldown = "1m"

[rules.bradycardia]
sustained = $sustained
clear_after = 2
cooldown = "1m"

[rules.irregular_rhythm]
sustained = 2          # 1 would take a rate ramping up or down within 10 s for irregular
clear_after = 2
cooldown = "1m"
min_rr = 8             # a 10 s window at 60 bpm holds about 10 RR intervals

[rules.missing_data]
cooldown = "1m"        # 1 sample/s expected: right for the simulator and per-beat replay

# baseline_deviation keeps its defaults: it needs 30 windows of history (5 minutes here).
EOF
for (( i = 0; i < ${#ids[@]}; i++ )); do
  printf '\n[patients.%s]\nalias = "Ward 7, bed %d"\n' "${ids[i]}" "$(( i + 1 ))" >> "$dconf"
  if [[ "${profiles[i]}" == athlete ]]; then
    cat >> "$dconf" <<EOF
# A trained athlete whose resting rate is near 50 bpm: a per-patient override.
[patients.${ids[i]}.rules.bradycardia]
mean_below_bpm = 40.0
share_threshold_bpm = 40.0
EOF
  fi
done

# ---------------------------------------------------------------------------------------
say "edges: enrolling ${#ids[@]} device(s), pinned to the decryptor's identity, trusting the CA"
for (( i = 0; i < ${#ids[@]}; i++ )); do
  p="${ids[i]}"
  dir="$work/edges/$p"
  "$bin/cipherpulse-edge" init --device-id "edge-$p" --server "$url" --ca-file "$ca" \
    --identity "$work/decryptor/keys/identity.pub.pem" --dir "$dir" \
    >"$work/logs/edge-init.log" 2>&1 || fail "edge init for $p failed"
  "${server[@]}" device add --id "edge-$p" --patient "$p" \
    --public-key "$dir/device.pub.pem" >>"$work/logs/server-admin.log" 2>&1 ||
    fail "could not register the device of $p"
  # init writes [source] last: replace it with this patient's source.
  sed -i '/^\[source\]/,$d' "$dir/edge.toml"
  if [[ "${kinds[i]}" == replay ]]; then
    cat >> "$dir/edge.toml" <<EOF
[source]
kind = "replay"
path = "../$recording"
speed = 1.0
EOF
  else
    cat >> "$dir/edge.toml" <<EOF
[source]
kind = "sim"
profile = "${profiles[i]}"
episodes = "${episodes[i]}"
seed = $(( 1000 + i * 7919 + RANDOM % 1000 ))
duration_s = $(( keep ? 0 : duration ))
EOF
  fi
  cat >> "$dir/edge.toml" <<EOF
[upload]
batch_size = 10
[logging]
level = "warn"
EOF
done

# ---------------------------------------------------------------------------------------
say "decryptor: watching the sealed windows"
start decryptor "$work/logs/decryptor.log" "$bin/cipherpulse-decryptor" watch --config "$dconf"
decryptor_pid="${pids[-1]}"
sleep 0.5
kill -0 "$decryptor_pid" 2>/dev/null || fail "the decryptor's watch did not start"

echo
printf '    %-5s %-14s %s\n' patient alias "what its edge measures"
while IFS=$'\t' read -r p alias _; do
  i=$(( 10#${p#p-} - 1 ))
  case "${kinds[i]}" in
    replay) what="MIT-BIH Arrhythmia DB record 208 (frequent PVCs, trigeminy), ${rows} beats in real time" ;;
    *) what="simulated ${profiles[i]} heart${episodes[i]:+, episode ${episodes[i]}}" ;;
  esac
  printf '    %-5s %-14s %s\n' "$p" "$alias" "$what"
done < "$patients_file"
echo
if (( keep )); then
  say "edges: measuring (they keep going with --keep); the report comes after ${duration} s"
else
  say "edges: measuring for ${duration} s; 5 s micro-windows, encrypted on the device"
fi
run_start_ms="$(date +%s%3N)"
run_start_ms=$(( run_start_ms - run_start_ms % 10000 ))  # the first window the edges write to
run_start="$(date +%s.%N)"
edge_pids=() edge_names=()
for (( i = 0; i < ${#ids[@]}; i++ )); do
  start "edge-${ids[i]}" "$work/logs/edge-${ids[i]}.log" \
    "$bin/cipherpulse-edge" run --config "$work/edges/${ids[i]}/edge.toml"
  edge_pids+=("${pids[-1]}")
  edge_names+=("edge-${ids[i]}")
done

progress=("${helper[@]}" progress --decryptor-log "$work/logs/decryptor.log"
  --patients "$patients_file" --metrics "$url/metrics" --ca "$ca" --mail "$work/smtp/mail"
  --start "$run_start" --until "$(/usr/bin/python3 -c "print($run_start + $duration)")"
  --window-s 10 --grace-s 5 --drain 60
  --process "server=$server_pid" --process "decryptor=$decryptor_pid" --process "smtp=$smtp_pid")
for (( i = 0; i < ${#edge_pids[@]}; i++ )); do
  if (( keep )); then
    progress+=(--process "${edge_names[i]}=${edge_pids[i]}")
  else
    progress+=(--edge "${edge_names[i]}=${edge_pids[i]}")
  fi
done
problems=()
# In the background, so that the shell's traps (Ctrl-C, SIGTERM) act at once.
"${progress[@]}" &
names+=(progress)
pids+=("$!")
rc=0
wait "${pids[-1]}" || rc=$?
reaped "${pids[-1]}"
(( rc == 0 )) || problems+=("a process stopped or the run did not settle (see above)")
if (( ! keep )); then
  for (( i = 0; i < ${#edge_pids[@]}; i++ )); do
    rc=0
    wait "${edge_pids[i]}" || rc=$?
    reaped "${edge_pids[i]}"
    (( rc == 0 )) || problems+=("${edge_names[i]} exited with $(status_text $rc)")
  done
fi
for (( i = 0; i < 3; i++ )); do  # the server, the SMTP server and the decryptor
  pid="${pids[i]}"
  if ! kill -0 "$pid" 2>/dev/null; then
    rc=0
    wait "$pid" || rc=$?
    reaped "$pid"
    problems+=("${names[i]} (pid $pid) stopped before the end ($(status_text $rc))")
  fi
done
# The report reads the decryptor's database (alert history, ledger): stop the watch first,
# so that it has committed and closed everything; it resumes from its durable cursor.
if kill -0 "$decryptor_pid" 2>/dev/null; then
  kill -TERM "$decryptor_pid"
  rc=0
  wait "$decryptor_pid" || rc=$?
  reaped "$decryptor_pid"
  (( rc == 0 )) || problems+=("the decryptor's watch ended with $(status_text $rc) on SIGTERM")
fi

# ---------------------------------------------------------------------------------------
echo
say "decrypted statistics per patient over the run (10 s windows, decryptor stats)"
"${helper[@]}" table --decryptor "$bin/cipherpulse-decryptor" --config "$dconf" \
  --patients "$patients_file" --start-ms "$run_start_ms" ||
  problems+=("the statistics could not all be decrypted and checked")

window_id="$("$bin/cipherpulse-decryptor" alerts list --config "$dconf" --format json \
  --log-level error 2>/dev/null | /usr/bin/python3 -c '
import json, sys
alerts = [a for a in json.load(sys.stdin) if a["kind"] == "raised"]
print(min(alerts, key=lambda a: a["id"])["window_id"] if alerts else "")' || true)"
if [[ -n "$window_id" ]]; then
  echo
  say "decryptor: re-verifying window $window_id (the first alert's) against the signed records"
  if ! "$bin/cipherpulse-decryptor" verify --config "$dconf" --window "$window_id" \
      --log-level error 2>&1 | sed 's/^/    /'; then
    problems+=("window $window_id failed re-verification")
  fi
fi

echo
say "e-mails the SMTP server received"
"${helper[@]}" mail --decryptor "$bin/cipherpulse-decryptor" --config "$dconf" \
  --patients "$patients_file" --mail "$work/smtp/mail" ||
  problems+=("an alert that must reach the on-call e-mail did not")

echo
say "the server's database holds no plaintext value"
"${helper[@]}" dbcheck "$work/server/server.db" ||
  problems+=("the plaintext check of the server's database failed")

echo
say "risk scoring: the model owner trains, the server scores encrypted features"
cleveland="$recordings/heart_cleveland.csv"
if [[ -f "$cleveland" ]]; then
  mkdir -p "$work/model"
  "$bin/cipherpulse-server" model train --data "$cleveland" --out "$work/model/model.json" \
    2>>"$work/logs/model.log" | sed -n '1,4p' | sed 's/^/    /' ||
    problems+=("training the risk model failed")
  "${server[@]}" model add --file "$work/model/model.json" \
    >/dev/null 2>>"$work/logs/model.log" || problems+=("the server did not take the model")
  head -4 "$cleveland" > "$work/model/three-patients.csv"
  echo "    three Cleveland rows, encrypted under the hospital's scoring key, scored by the server:"
  if "$bin/cipherpulse-decryptor" score --config "$dconf" --model heart-cleveland-lr \
      --input "$work/model/three-patients.csv" --format csv --log-level error \
      > "$work/model/encrypted.csv" 2>>"$work/logs/model.log" &&
     "$bin/cipherpulse-server" model predict --model "$work/model/model.json" \
      --input "$work/model/three-patients.csv" --format csv > "$work/model/plain.csv" \
      2>>"$work/logs/model.log"; then
    /usr/bin/python3 - "$work/model/encrypted.csv" "$work/model/plain.csv" <<'PY' ||
import csv, sys
enc = list(csv.DictReader(open(sys.argv[1])))
plain = list(csv.DictReader(open(sys.argv[2])))
print("    %-4s %-22s %-22s %s" % ("row", "encrypted (server)", "plaintext model", "risk"))
same = len(enc) == len(plain) == 3
for e, p in zip(enc, plain):
    same = same and e == p
    print("    %-4s %-22s %-22s %s" % (e["row"], e["probability"], p["probability"], e["risk"]))
print("    identical on every row: %s" % ("yes" if same else "NO"))
sys.exit(0 if same else 1)
PY
      problems+=("encrypted risk scores differ from the plaintext model's")
  else
    problems+=("encrypted risk scoring failed (see $work/logs/model.log)")
  fi
else
  echo "    note: $cleveland is missing: no risk scoring shown"
fi

echo
say "cohort statistics: an analyst asks, a data administrator approves, only the analyst reads"
if (( ${#ids[@]} >= 5 )); then
  adir="$work/analyst"
  mkdir -p "$adir" "$work/approver"
  cohort_log="$work/logs/cohort.log"
  "${server[@]}" token create --role analyst --label demo-analyst > "$adir/analyst.token" \
    2>>"$cohort_log" || problems+=("could not create the analyst token")
  analyst_token_id="$("${server[@]}" token list 2>>"$cohort_log" |
    awk -F'\t' '$2 == "analyst" && $6 == "demo-analyst" { id = $1 } END { print id }')"
  cat > "$adir/analyst.toml" <<EOF
# Written by scripts/demo.sh (config/analyst.toml explains every key).
[server]
url = "$url"
ca_file = "$ca"
token_file = "analyst.token"
EOF
  analyst=("$bin/cipherpulse-analyst" --config "$adir/analyst.toml")
  cohort_from=$(( run_start_ms + 10000 ))
  cohort_to="$(date +%s%3N)"
  cohort_to=$(( (cohort_to - 6000) / 10000 * 10000 ))  # whole 10 s windows, sealed
  stats=(--statistic count --statistic mean --statistic sd --statistic share_above:100
         --statistic minutes_above:100)
  if "${analyst[@]}" init --decryptor-identity "$work/decryptor/keys/identity.pub.pem" \
        >>"$cohort_log" 2>&1 &&
     "${server[@]}" analyst key --token-id "$analyst_token_id" \
        --public-key "$adir/keys/analyst.pub.pem" >>"$cohort_log" 2>&1 &&
     "${server[@]}" cohort add ward-7 --description "all of ward 7" \
        $(printf -- '--patient %s ' "${ids[@]}") >>"$cohort_log" 2>&1 &&
     "${server[@]}" cohort add beds-1-3 $(printf -- '--patient %s ' "${ids[@]:0:3}") \
        >>"$cohort_log" 2>&1 &&
     "$bin/cipherpulse-decryptor" approver keygen --out "$work/approver/approver.pem" \
        >>"$cohort_log" 2>&1 &&
     "$bin/cipherpulse-decryptor" approver add --config "$dconf" --name data-admin \
        --public-key "$work/approver/approver.pub.pem" >>"$cohort_log" 2>&1; then
    echo "    analyst: X25519 result key made and registered; decryptor identity pinned"
    echo "    data administrator: Ed25519 approver key pinned on the decryptor as 'data-admin'"
    ask() {  # ask COHORT PRIVACY...: prints the query id
      local cohort="$1"
      shift
      "${analyst[@]}" request --cohort "$cohort" --from "$cohort_from" --to "$cohort_to" \
        "${stats[@]}" "$@" --purpose "ward 7 demo report" --format json \
        2>>"$cohort_log" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
    }
    q0="$(ask ward-7 --no-noise || true)"
    q1="$(ask ward-7 --epsilon 5 || true)"
    q2="$(ask beds-1-3 --epsilon 5 || true)"
    if [[ -n "$q0" && -n "$q1" && -n "$q2" ]]; then
      echo "    the server tiled the range and multiplied the ciphertexts; the approver reads:"
      "$bin/cipherpulse-decryptor" queries show "$q1" --config "$dconf" --log-level error \
        2>>"$cohort_log" | sed 's/^/      /'
      for q in "$q0" "$q1" "$q2"; do
        "$bin/cipherpulse-decryptor" queries approve "$q" --config "$dconf" \
          --key "$work/approver/approver.pem" --reason "demo: approved" >>"$cohort_log" 2>&1 ||
          problems+=("the approver could not sign $q")
      done
      echo "    all three signed by the approver; the decryptor releases what its policy allows"
      "$bin/cipherpulse-decryptor" watch --once --config "$dconf" >>"$cohort_log" 2>&1 ||
        problems+=("the decryptor's release round failed (see $cohort_log)")
      for q in "$q0" "$q1"; do
        if "${analyst[@]}" wait "$q" --timeout 20 --interval 0.5 >>"$cohort_log" 2>&1; then
          if [[ "$q" == "$q0" ]]; then
            echo "    \$ cipherpulse-analyst result $q   (exact: the demo policy allows it)"
          else
            echo "    \$ cipherpulse-analyst result $q   (epsilon 5: one minute of five patients"
            echo "      is far too little data for useful private figures; the noise, sized to hide"
            echo "      any one patient, dominates; over a month of a ward it is negligible)"
          fi
          "${analyst[@]}" result "$q" --format table 2>>"$cohort_log" | sed 's/^/      /' ||
            problems+=("the analyst could not open the release of $q")
        else
          problems+=("the ward-7 query $q was not released (see $cohort_log)")
        fi
      done
      rc=0
      "${analyst[@]}" wait "$q2" --timeout 20 --interval 0.5 > "$adir/q2.txt" \
        2>>"$cohort_log" || rc=$?
      if (( rc == 3 )); then
        echo "    the request over beds 1-3 was refused, as it must be:"
        sed 's/^/      /' "$adir/q2.txt"
      else
        problems+=("the 3-patient query was not refused (wait exited $rc)")
      fi
    else
      problems+=("the analyst's requests were not accepted (see $cohort_log)")
    fi
  else
    problems+=("setting up the analyst and the approver failed (see $cohort_log)")
  fi
else
  echo "    note: cohort statistics need at least 5 patients (--patients 4 or more)"
fi

echo
elapsed=$(( SECONDS - started_at ))
status=0
if (( ${#problems[@]} )); then
  printf 'DEMO FAILED after %d s:\n' "$elapsed" >&2
  printf '  - %s\n' "${problems[@]}" >&2
  status=1
  (( keep )) || exit 1
else
  echo "DEMO PASSED in ${elapsed} s: every process ran, the alerts arrived by e-mail over STARTTLS,"
  echo "and the server never held a readable value."
fi

if (( keep )); then
  leave_running=1
  start decryptor "$work/logs/decryptor.log.2" "$bin/cipherpulse-decryptor" watch --config "$dconf"
  sleep 0.5
  kill -0 "${pids[-1]}" 2>/dev/null || echo "the decryptor's watch did not start again" >&2
  token_hdr="Authorization: Bearer \$(cat $work/server/admin.token)"
  clin_hdr="Authorization: Bearer \$(cat $work/server/clinician.token)"
  echo
  say "still running (--keep); everything lives in $work"
  running=()
  for (( i = 0; i < ${#pids[@]}; i++ )); do
    [[ -n "${pids[i]}" ]] || continue
    printf '    %-12s pid %s\n' "${names[i]}" "${pids[i]}"
    running+=("${pids[i]}")
  done
  cat <<EOF

  Query the server (HTTPS, verified against the throwaway CA; tokens stay in their files):
    curl --cacert $ca $url/v1/health
    curl --cacert $ca $url/metrics
    curl --cacert $ca -H "$token_hdr" '$url/v1/audit?after=0&limit=20'
    curl --cacert $ca -H "$token_hdr" $url/v1/devices/edge-p-01
    curl --cacert $ca -H "$clin_hdr" \\
      "$url/v1/patients/p-01/windows?metric=hr&granularity=10s&from=$run_start_ms&to=\$(date +%s%3N)"
  Decrypted, on the decryptor's side:
    $bin/cipherpulse-decryptor stats --config $dconf --patient p-01 --from -10m
    $bin/cipherpulse-decryptor alerts list --config $dconf
  E-mails: $work/smtp/mail/<n>.eml; logs: $work/logs/

  Stop everything, then remove the directory:
    kill ${running[*]}
    rm -rf $work
EOF
fi
exit "$status"
