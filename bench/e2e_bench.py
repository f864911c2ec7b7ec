#!/usr/bin/python3
"""End-to-end benchmark of cipherpulse: N simulated patients through edge -> server ->
decryptor -> e-mail, on this machine, in real time.

Runs the real programs as processes on loopback (plain HTTP and plain SMTP: loopback
only) in a temporary directory:

  cipherpulse-server serve      SQLite, granularities [W, 1m, 1h, 1d] (W the alerting
                                window, default 10s, seal grace default 2 s)
  cipherpulse-decryptor watch   the W windows, poll default 1 s, e-mail to the SMTP server;
                                rules tuned for short windows (tachycardia sustained 1,
                                clear_after 1, cooldown 0s; baseline_deviation and
                                missing_data off), re-verification of 5% of windows
  tests/fixtures/smtp_server.py --mode plain; records received_ms per message
  bench e2e_load                N patients' edges in one process (build/release/bench):
                                1 Hz watch-like simulated hearts, 5 s micro-windows, hr-v1
                                packing, fast-mode encryption, signed uploads over a few
                                keep-alive connections; a share of the patients gets
                                tachycardia episodes (a step to 150 bpm) at known times

Measured: records/s ingested (acknowledged), windows decrypted/s (the decryptor's
ledger), the latency from an abnormal onset (the first abnormal reading) to the alert
e-mail at the SMTP server (p50/p99/max) with its parts, server and decryptor peak RSS
(VmHWM) and CPU, the load generator's and other processes' CPU (is the machine
saturated?), database bytes per patient-day. Checked: every acknowledged record is in the
server's database, every full window holds every micro-window's record, every window was
released by the decryptor, one raised (and one cleared) tachycardia alert per scripted
episode and no other alert.

Target (issue): onset -> e-mail <= micro-window + seal grace + poll interval + 2 s.

Usage: /usr/bin/python3 bench/e2e_bench.py [--patients 1000] [--duration 300] [--window 10s]
           [--grace 2] [--poll 1] [--bits 2048] [--keep] [--json FILE]
Build first (bench/run_e2e_bench.sh does): cmake --build --preset release --target e2e_load
cipherpulse-server cipherpulse-decryptor. Needs python3-aiosmtpd for the SMTP fixture.
"""

import argparse
import email.parser
import email.policy
import json
import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time

from bench_common import (PYTHON, REPO, dist, free_port, http_get, machine_busy_s, metric,
                          now_ms, proc_cpu_s, proc_status_kib, run, run_in_workdir, say,
                          tail, write_private)

MICRO_WINDOW_MS = 5000


def parse_window(text):
    m = re.fullmatch(r"(\d+)([sm])", text)
    if not m:
        raise argparse.ArgumentTypeError("window must look like 5s, 10s, 30s or 1m")
    ms = int(m.group(1)) * {"s": 1000, "m": 60000}[m.group(2)]
    if ms <= 0 or 86400000 % ms != 0 or ms % MICRO_WINDOW_MS != 0:
        raise argparse.ArgumentTypeError("window must divide a day and be a multiple of the "
                                         "edges' 5 s micro-windows")
    return text, ms


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="N simulated patients through edge -> server -> decryptor -> e-mail, "
                    "in real time, on loopback.")
    p.add_argument("--patients", type=int, default=1000, help="simulated patients (1000)")
    p.add_argument("--duration", type=float, default=300.0,
                   help="seconds of data, real time (300)")
    p.add_argument("--window", type=parse_window, default=parse_window("10s"),
                   help="the window the decryptor alerts on (10s)")
    p.add_argument("--grace", type=float, default=2.0, help="seal grace of that window, s (2)")
    p.add_argument("--poll", type=float, default=1.0, help="decryptor poll interval, s (1)")
    p.add_argument("--bits", type=int, choices=[2048, 3072], default=2048,
                   help="Paillier modulus (2048)")
    p.add_argument("--connections", type=int, default=4,
                   help="upload connections of the load generator (4)")
    p.add_argument("--abnormal-share", type=float, default=0.05,
                   help="share of patients with tachycardia episodes (0.05)")
    p.add_argument("--episode", type=int, default=30, help="episode length, s (30)")
    p.add_argument("--period", type=int, default=90,
                   help="seconds between a patient's episode onsets (90)")
    p.add_argument("--bpm", type=float, default=150.0, help="rate during an episode (150)")
    p.add_argument("--verify-rate", type=float, default=0.05,
                   help="decryptor watch.verify_sample_rate (0.05)")
    p.add_argument("--page-size", type=int, default=1000,
                   help="decryptor watch.page_size (1000)")
    p.add_argument("--threads", type=int, default=0,
                   help="decryptor watch.threads (0: one per core)")
    p.add_argument("--no-long-poll", dest="long_poll", action="store_false",
                   help="decryptor watch.long_poll = false: poll on the interval only")
    p.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment variable for the server process (repeatable), e.g. "
                        "MALLOC_ARENA_MAX=2")
    p.add_argument("--only-window", action="store_true",
                   help="the server keeps only the alerting window (no 1m, 1h, 1d rollups)")
    p.add_argument("--bin", default=os.path.join(REPO, "build", "release", "apps"),
                   help="directory of the cipherpulse binaries")
    p.add_argument("--load-bin", default=os.path.join(REPO, "build", "release", "bench",
                                                      "e2e_load"),
                   help="the e2e_load binary")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory (logs, databases, mail)")
    args = p.parse_args(argv)
    if args.patients < 1 or args.duration < 60 or args.poll < 0.05 or args.grace < 0:
        p.error("need --patients >= 1, --duration >= 60, --poll >= 0.05, --grace >= 0")
    if args.episode < 2 * args.window[1] // 1000:
        p.error("--episode must cover at least two windows")
    if args.period < args.episode + 2 * args.window[1] // 1000:
        p.error("--period must leave two normal windows between episodes")
    for item in args.server_env:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", item):
            p.error(f"--server-env {item!r}: expected NAME=VALUE")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    bins = {n: os.path.join(args.bin, "cipherpulse-" + n) for n in ("server", "decryptor")}
    bins["load"] = args.load_bin
    for path in bins.values():
        if not os.access(path, os.X_OK):
            sys.exit(f"e2e_bench: {path} is missing: build the release preset first "
                     f"(bench/run_e2e_bench.sh does)")
    fixture = os.path.join(REPO, "tests", "fixtures", "smtp_server.py")

    return run_in_workdir(
        "e2e_bench", "cp-e2e-", 30, args.keep, args.json,
        lambda work, orch, logs: measure(args, bins, fixture, work, orch, logs),
        lambda result: report(args, result), lambda result: result["ok"],
        signals=(signal.SIGTERM, signal.SIGHUP))


class Sampler:
    """CPU and RSS of the processes over time, sampled about once a second."""

    def __init__(self, procs):
        self.procs = procs  # name -> Popen
        self.samples = []  # (unix ms, machine busy s, {name: (cpu s, rss kib)})

    def sample(self):
        row = {}
        for name, proc in self.procs.items():
            if proc.poll() is None:
                try:
                    row[name] = (proc_cpu_s(proc.pid), proc_status_kib(proc.pid, "VmRSS"))
                except OSError:
                    pass
        self.samples.append((now_ms(), machine_busy_s(), row))

    def cores(self, start_ms, end_ms):
        """Average cores each process (and the whole machine) used in [start, end]."""
        inside = [s for s in self.samples if start_ms <= s[0] <= end_ms]
        if len(inside) < 2:
            return {}
        a, b = inside[0], inside[-1]
        secs = (b[0] - a[0]) / 1000.0
        out = {"machine": (b[1] - a[1]) / secs, "seconds": secs}
        for name in self.procs:
            if name in a[2] and name in b[2]:
                out[name] = (b[2][name][0] - a[2][name][0]) / secs
        out["other"] = max(0.0, out["machine"] - sum(v for k, v in out.items()
                                                     if k in self.procs))
        return out

    def rss(self, name, start_ms, end_ms):
        """VmRSS (KiB) of `name`: the first sample at or after start, the last at or before
        end, and the largest between."""
        inside = [s[2][name][1] for s in self.samples
                  if start_ms <= s[0] <= end_ms and name in s[2]]
        if not inside:
            return None
        return {"start": inside[0], "end": inside[-1], "max": max(inside)}


def smaps_rollup_kib(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0].rstrip(":") in ("Rss", "Anonymous", "Shared_Clean",
                                                                "Private_Clean", "Private_Dirty"):
                    out[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return out


def measure(args, bins, fixture, work, orch, logs):
    gname, window_ms = args.window

    def log_file(name):
        f = open(os.path.join(work, name), "w")
        logs.append(f)
        return f

    say(f"==> working in {work}")
    t = time.time()
    run([bins["decryptor"], "keygen", "--bits", str(args.bits), "--out", "keys"], work, "keygen")
    say(f"    {args.bits}-bit key in {time.time() - t:.1f} s")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    grans = [gname] if args.only_window else [gname] + [g for g in ("1m", "1h", "1d")
                                                         if g != gname]
    grace = {g: (args.grace if g == gname else {"1m": 6, "1h": 360, "1d": 600}[g])
             for g in grans}
    with open(os.path.join(work, "server.toml"), "w") as f:
        f.write(f"""[server]
listen = "127.0.0.1:{port}"
[storage]
database = "server.db"
[ingest]
granularities = [{", ".join(f'"{g}"' for g in grans)}]
seal_grace_s = {{ {", ".join(f'"{g}" = {grace[g]:g}' for g in grans)} }}
[keys]
identity_public_key = "keys/identity.pub.pem"
[logging]
level = "info"
""")
    server_cmd = [bins["server"], "--config", os.path.join(work, "server.toml")]
    write_private(os.path.join(work, "admin.token"),
                  run(server_cmd + ["init"], work, "server init").strip().splitlines()[-1] + "\n")
    token = run(server_cmd + ["token", "create", "--role", "decryptor"], work,
                "token create").strip()
    write_private(os.path.join(work, "decryptor.token"), token + "\n")
    server_env = dict(os.environ)
    server_env.update(item.split("=", 1) for item in args.server_env)
    server = orch.start("server", server_cmd + ["serve"], cwd=work, env=server_env,
                        stdout=subprocess.DEVNULL, stderr=log_file("server.log"))
    deadline = time.time() + 15
    while True:
        try:
            http_get(url + "/v1/health", timeout=1)
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                raise RuntimeError("the server did not come up:\n" +
                                   tail(os.path.join(work, "server.log")))
            time.sleep(0.1)
    run([bins["decryptor"], "publish", "--keys", "keys", "--server", url,
         "--token-file", "decryptor.token"], work, "publish")

    mail = os.path.join(work, "mail")
    os.mkdir(mail)
    smtp = orch.start("smtp", [PYTHON, fixture, "--port", "0", "--mode", "plain", "--out", mail],
                      cwd=work, stdout=subprocess.PIPE, stderr=log_file("smtp.log"), text=True)
    ready, _, _ = select.select([smtp.stdout], [], [], 15)
    line = smtp.stdout.readline() if ready else ""
    m = re.fullmatch(r"READY (\d+)\s*", line)
    if not m:
        raise RuntimeError("the SMTP fixture did not start (python3-aiosmtpd installed?):\n" +
                           tail(os.path.join(work, "smtp.log")))
    smtp_port = int(m.group(1))

    with open(os.path.join(work, "decryptor.toml"), "w") as f:
        f.write(f"""[key]
private_key = "keys/paillier.key"
[server]
url = "{url}"
token_file = "decryptor.token"
[watch]
database = "decryptor.db"
granularity = "{gname}"
poll_interval_s = {args.poll}
page_size = {args.page_size}
verify_sample_rate = {args.verify_rate}
threads = {args.threads}
long_poll = {"true" if args.long_poll else "false"}
[notify.email]
enabled = true
url = "smtp://127.0.0.1:{smtp_port}"
tls = "none"
from = "cipherpulse <alerts@localhost>"
to = ["ward@localhost"]
[logging]
level = "info"
[rules.tachycardia]
sustained = 1
clear_after = 1
cooldown = "0s"
[rules.baseline_deviation]
enabled = false
[rules.missing_data]
enabled = false
""")
    watch = orch.start("watch", [bins["decryptor"], "watch", "--config",
                                 os.path.join(work, "decryptor.toml")],
                       cwd=work, stdout=subprocess.DEVNULL, stderr=log_file("watch.log"))

    load_json = os.path.join(work, "load.json")
    load_cmd = [bins["load"], "--server", url, "--admin-token-file",
                os.path.join(work, "admin.token"), "--public-key",
                os.path.join(work, "keys", "paillier.pub.json"), "--patients",
                str(args.patients), "--seconds", str(args.duration), "--abnormal-share",
                str(args.abnormal_share), "--episode-s", str(args.episode), "--period-s",
                str(args.period), "--bpm", str(args.bpm), "--connections",
                str(args.connections), "--micro-window-ms", str(MICRO_WINDOW_MS),
                "--out", load_json]
    say(f"==> {args.patients} patients for {args.duration:.0f} s of data; {gname} windows, seal "
        f"grace {args.grace:g} s, decryptor poll {args.poll:g} s; server granularities "
        f"{grans}")
    load = orch.start("e2e_load", load_cmd, cwd=work, stdout=subprocess.DEVNULL,
                      stderr=subprocess.PIPE, text=True)
    sampler = Sampler({"server": server, "watch": watch, "e2e_load": load, "smtp": smtp})
    load_err = []

    def pump_load_stderr(block=False):
        while True:
            ready, _, _ = select.select([load.stderr], [], [], 0 if not block else 0.2)
            if not ready:
                return
            line = load.stderr.readline()
            if not line:
                return
            load_err.append(line)
            say("    " + line.rstrip())

    def check_alive():
        for name, proc, log in (("server", server, "server.log"), ("watch", watch, "watch.log"),
                                ("smtp", smtp, "smtp.log")):
            if proc.poll() is not None:
                raise RuntimeError(f"{name} (pid {proc.pid}) exited early (exit "
                                   f"{proc.returncode}); the end of {log}:\n" +
                                   tail(os.path.join(work, log)))

    metrics = []  # (unix ms, records accepted, windows sealed)
    next_metrics = 0
    while load.poll() is None:
        pump_load_stderr()
        sampler.sample()
        if time.time() >= next_metrics:
            next_metrics = time.time() + 5
            try:
                text = http_get(url + "/metrics")
                metrics.append((now_ms(), metric(text, 'cipherpulse_records_total{outcome="accepted"}'),
                                metric(text, "cipherpulse_windows_sealed_total")))
            except OSError:
                pass
        check_alive()
        time.sleep(0.5)
    pump_load_stderr(block=True)
    rest = load.stderr.read()
    if rest:
        for line in rest.splitlines():
            say("    " + line)
    if load.returncode not in (0, 1) or not os.path.exists(load_json):
        raise RuntimeError(f"e2e_load failed (exit {load.returncode})")
    with open(load_json) as f:
        ld = json.load(f)
    data_start, data_end = ld["data_start_ms"], ld["data_end_ms"]

    # Settle: the last window seals one window + grace after the data end; then the
    # decryptor's poll, a burst of decryptions and the deliveries. Wait until the decryptor
    # has every sealed window of the server and no delivery is pending.
    last_seal = (data_end // window_ms + 1) * window_ms + int(args.grace * 1000) + 500
    settle_deadline = last_seal + 180000
    sdb_path = os.path.join(work, "server.db")
    ddb_path = os.path.join(work, "decryptor.db")
    caught_up = False
    while now_ms() < settle_deadline:
        sampler.sample()
        check_alive()
        time.sleep(1)
        if now_ms() < last_seal + int(args.poll * 1000) + 2000:
            continue
        try:
            with sqlite3.connect(f"file:{sdb_path}?mode=ro", uri=True, timeout=5) as s, \
                    sqlite3.connect(f"file:{ddb_path}?mode=ro", uri=True, timeout=5) as d:
                sealed = s.execute("SELECT COUNT(*) FROM windows WHERE granularity = ? AND "
                                   "sealed = 1", (gname,)).fetchone()[0]
                unsealed = s.execute("SELECT COUNT(*) FROM windows WHERE granularity = ? AND "
                                     "sealed = 0", (gname,)).fetchone()[0]
                seen = d.execute("SELECT COUNT(*) FROM ledger WHERE granularity = ?",
                                 (gname,)).fetchone()[0]
                pending = d.execute("SELECT COUNT(*) FROM deliveries WHERE status = "
                                    "'pending'").fetchone()[0]
        except sqlite3.Error:
            continue
        if unsealed == 0 and seen >= sealed and pending == 0:
            caught_up = True
            break
    time.sleep(2)  # the mail of the last deliveries is on disk before "sent" is committed
    sampler.sample()
    measured = sampler.cores(data_start + 30000, data_end)
    whole = sampler.cores(data_start, now_ms())
    hwm = {name: proc_status_kib(p.pid, "VmHWM") for name, p in
           (("server", server), ("watch", watch))}
    rss_end = {name: proc_status_kib(p.pid, "VmRSS") for name, p in
               (("server", server), ("watch", watch))}
    rss_data = {name: sampler.rss(name, data_start, data_end) for name in ("server", "watch")}
    smaps = {name: smaps_rollup_kib(p.pid) for name, p in (("server", server), ("watch", watch))}
    try:
        text = http_get(url + "/metrics")
        late = metric(text, "cipherpulse_records_late_total")
        db_bytes_metric = metric(text, "cipherpulse_database_bytes")
    except OSError:
        late = db_bytes_metric = float("nan")
    orch.stop(watch)
    orch.stop(smtp)
    t = time.time()
    orch.stop(server, timeout=120)
    server_stop_s = time.time() - t

    return analyse(args, work, mail, ld, {
        "cores_measured": measured, "cores_whole_run": whole, "vmhwm_kib": hwm,
        "vmrss_end_kib": rss_end, "vmrss_during_data_kib": rss_data,
        "smaps_rollup_kib": smaps, "late_metric": late, "db_bytes_metric": db_bytes_metric,
        "server_exit": server.returncode, "decryptor_exit": watch.returncode,
        "server_stop_s": server_stop_s, "caught_up": caught_up, "metrics": metrics,
        "load_exit": load.returncode, "grans": grans})


def analyse(args, work, mail, ld, procs):
    gname, window_ms = args.window
    mw = MICRO_WINDOW_MS
    data_start, data_end = ld["data_start_ms"], ld["data_end_ms"]
    data_days = (data_end - data_start) / 86400000.0
    problems = []

    sdb_path = os.path.join(work, "server.db")
    db_bytes = sum(os.path.getsize(p) for p in (sdb_path, sdb_path + "-wal")
                   if os.path.exists(p))
    sdb = sqlite3.connect(f"file:{sdb_path}?mode=ro", uri=True)
    ddb = sqlite3.connect(f"file:{os.path.join(work, 'decryptor.db')}?mode=ro", uri=True)

    # -- storage
    by_table = {}
    try:
        for name, size in sdb.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            by_table[name] = size
    except sqlite3.Error:
        pass
    groups = {"records (+ indexes)": ("records", "records_received", "records_batch"),
              "batches (signed bodies, + index)": ("batches", "batches_received"),
              "windows (+ indexes)": ("windows", "windows_open", "windows_patient",
                                      "sqlite_autoindex_windows_1", "sqlite_autoindex_windows_2"),
              "window_batches (+ index)": ("window_batches", "window_batches_batch")}
    storage = {k: sum(by_table.get(n, 0) for n in v) for k, v in groups.items()}
    storage["other"] = sum(by_table.values()) - sum(storage.values())
    records_in_db = sdb.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    windows_by_gran = dict(sdb.execute("SELECT granularity, COUNT(*) FROM windows "
                                       "GROUP BY granularity"))
    late_records = sdb.execute("SELECT COUNT(*) FROM records WHERE late <> 0").fetchone()[0]

    # -- every acknowledged record stored
    per_device = {r[0]: (r[1], r[2]) for r in sdb.execute(
        "SELECT device_id, COUNT(*), MAX(seq) FROM records GROUP BY device_id")}
    missing = 0
    for d in ld["devices"]:
        count, max_seq = per_device.get(d["device"], (0, 0))
        if count != d["acknowledged"] or (d["acknowledged"] and max_seq != d["max_acked_seq"]):
            missing += 1
    if missing:
        problems.append(f"{missing} devices whose stored records differ from those acknowledged")
    if ld["records_acknowledged"] != ld["records_emitted"] or ld["records_dropped"]:
        problems.append(f"records emitted {ld['records_emitted']}, acknowledged "
                        f"{ld['records_acknowledged']}, dropped {ld['records_dropped']}")
    if records_in_db != ld["records_acknowledged"]:
        problems.append(f"records in the database {records_in_db} != acknowledged "
                        f"{ld['records_acknowledged']}")
    if late_records:
        problems.append(f"{late_records} records arrived after their window sealed (late)")

    # -- full windows hold every micro-window's record
    first_full = -(-data_start // window_ms) * window_ms
    per_window = window_ms // mw
    full = sdb.execute(
        "SELECT COUNT(*), SUM(record_count <> ?) FROM windows WHERE granularity = ? AND "
        "start_ms >= ? AND start_ms + length_ms <= ?",
        (per_window, gname, first_full, data_end)).fetchone()
    full_windows, short_windows = full[0], full[1] or 0
    expected_full = args.patients * ((data_end - first_full) // window_ms)
    if full_windows != expected_full or short_windows:
        problems.append(f"{full_windows} full {gname} windows (expected {expected_full}), "
                        f"{short_windows} of them without all {per_window} records")

    # -- decryptor: every sealed window released; decryption rate and burst drain times
    sealed = {r[0]: r[1:] for r in sdb.execute(
        "SELECT id, start_ms, seal_ms, sealed_ms FROM windows WHERE granularity = ? AND "
        "sealed = 1", (gname,))}
    ledger = ddb.execute("SELECT window_id, start_ms, status, seen_ms FROM ledger WHERE "
                         "granularity = ?", (gname,)).fetchall()
    not_released = sum(1 for r in ledger if r[2] != "released")
    if len(ledger) != len(sealed):
        problems.append(f"decryptor ledger holds {len(ledger)} windows, the server sealed "
                        f"{len(sealed)}")
    if not_released:
        problems.append(f"{not_released} windows not released (integrity or skipped)")
    bursts = {}
    for wid, start, status, seen in ledger:
        bursts.setdefault(start, []).append((seen, sealed.get(wid, (None, None, None))[2]))
    burst_rows = []
    for start, rows in sorted(bursts.items()):
        seen = [r[0] for r in rows]
        sealed_at = [r[1] for r in rows if r[1] is not None]
        if len(rows) < max(10, args.patients // 2) or not sealed_at:
            continue  # the partial first and last windows
        burst_rows.append({"start_ms": start, "windows": len(rows),
                           "drain_ms": max(seen) - min(sealed_at),
                           "first_seen_after_seal_ms": min(seen) - min(sealed_at),
                           "spread_ms": max(seen) - min(seen)})
    window_rate = None
    if burst_rows:
        total_windows = sum(b["windows"] for b in burst_rows)
        span = (burst_rows[-1]["start_ms"] - burst_rows[0]["start_ms"]) + window_ms
        average = total_windows / (span / 1000.0)
        watch_cores = procs["cores_measured"].get("watch")
        window_rate = {
            "average_per_s": average,
            # Capacity: windows per second of the decryptor's CPU (everything it does:
            # polling, decryption, checks, re-verification, rules, commits, e-mail).
            "per_cpu_second": average / watch_cores if watch_cores else None,
            "burst_drain_ms": dist([b["drain_ms"] for b in burst_rows]),
            "first_seen_after_seal_ms": dist([b["first_seen_after_seal_ms"]
                                              for b in burst_rows]),
            "bursts": len(burst_rows),
        }

    # -- alerts and e-mails
    alerts = {row[0]: row for row in ddb.execute(
        "SELECT id, kind, patient, rule, window_id, window_start_ms, window_length_ms, "
        "created_ms FROM alerts")}
    undelivered = ddb.execute("SELECT COUNT(*) FROM deliveries WHERE status <> 'sent'"
                              ).fetchone()[0]
    parser = email.parser.BytesParser(policy=email.policy.default)
    mails = {}
    duplicates = 0
    for name in os.listdir(mail):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(mail, name)) as f:
            side = json.load(f)
        with open(os.path.join(mail, name[:-5] + ".eml"), "rb") as f:
            msg = parser.parse(f, headersonly=True)
        m = re.fullmatch(r"alert-(\d+)-[0-9a-f]+",
                         str(msg.get("X-Cipherpulse-Alert", "")).strip())
        if not m or int(m.group(1)) not in alerts:
            problems.append(f"e-mail {name}: no known X-Cipherpulse-Alert header")
            continue
        aid = int(m.group(1))
        if aid in mails:
            duplicates += 1
            mails[aid] = min(mails[aid], side["received_ms"])
        else:
            mails[aid] = side["received_ms"]
    if undelivered:
        problems.append(f"{undelivered} deliveries not sent")
    if duplicates:
        problems.append(f"{duplicates} duplicate e-mails")
    missing_mail = [a for a in alerts if a not in mails]
    if missing_mail:
        problems.append(f"{len(missing_mail)} alerts without an e-mail")

    onsets = ld["onsets"]
    by_patient = {}
    for o in onsets:
        by_patient.setdefault(o["patient"], []).append(o)
    matched = {}
    spurious = []
    cleared = 0
    for aid, a in sorted(alerts.items()):
        _, kind, patient, rule, wid, wstart, wlen, created = a
        eps = by_patient.get(patient, [])
        if rule != "tachycardia" or kind == "integrity" or not eps:
            spurious.append(f"alert {aid}: {kind} {rule} for {patient}")
            continue
        if kind == "cleared":
            # Clears after an episode: its window starts at or after the episode's end.
            if any(e["end_ms"] - window_ms <= wstart < e["end_ms"] + 2 * window_ms for e in eps):
                cleared += 1
            else:
                spurious.append(f"alert {aid}: cleared for {patient} outside an episode's end")
            continue
        hit = None
        for e in eps:
            if wstart < e["end_ms"] and wstart + wlen > e["onset_ms"]:
                hit = e
                break
        key = (patient, hit["onset_ms"]) if hit else None
        if hit is None or key in matched:
            spurious.append(f"alert {aid}: raised for {patient}, window {wstart}, no episode "
                            f"or a second raise")
            continue
        matched[key] = (aid, a)
    unmatched = [o for o in onsets if (o["patient"], o["onset_ms"]) not in matched]
    if spurious:
        problems.append(f"{len(spurious)} unexpected alerts: " + "; ".join(spurious[:5]))
    if unmatched:
        problems.append(f"{len(unmatched)} episodes without a raised alert")
    if cleared != len(onsets):
        problems.append(f"{cleared} cleared alerts for {len(onsets)} episodes")

    # -- onset -> e-mail, with its parts
    parts = {k: [] for k in ("total", "from_first_mw_end", "from_first_window_end",
                             "from_raising_window_end", "onset_to_first_window_end",
                             "extra_window", "grace_and_sealer", "sealed_to_queued",
                             "queued_to_smtp")}
    rows = []
    for (patient, onset), (aid, a) in matched.items():
        if aid not in mails:
            continue
        wid, wstart, wlen, created = a[4], a[5], a[6], a[7]
        received = mails[aid]
        first_mw_end = (onset // mw + 1) * mw
        first_w_end = (onset // window_ms + 1) * window_ms
        raise_end = wstart + wlen
        w = sealed.get(wid)
        sealed_ms = w[2] if w else None
        parts["total"].append(received - onset)
        parts["from_first_mw_end"].append(received - first_mw_end)
        parts["from_first_window_end"].append(received - first_w_end)
        parts["from_raising_window_end"].append(received - raise_end)
        parts["onset_to_first_window_end"].append(first_w_end - onset)
        parts["extra_window"].append(raise_end - first_w_end)
        if sealed_ms is not None:
            parts["grace_and_sealer"].append(sealed_ms - raise_end)
            parts["sealed_to_queued"].append(created - sealed_ms)
        parts["queued_to_smtp"].append(received - created)
        rows.append({"patient": patient, "onset_ms": onset, "alert": aid,
                     "raising_window_start_ms": wstart, "received_ms": received,
                     "total_ms": received - onset})
    target_ms = mw + int(args.grace * 1000) + int(args.poll * 1000) + 2000
    total = parts["total"]
    over = sum(1 for v in total if v > target_ms)
    # The formula without its micro-window term, against the time since the end of
    # the first window holding the onset (what the system adds once the data is complete).
    pipeline_target = int(args.grace * 1000) + int(args.poll * 1000) + 2000
    over_pipeline = sum(1 for v in parts["from_raising_window_end"] if v > pipeline_target)

    result = {
        "settings": {"patients": args.patients, "duration_s": args.duration,
                     "window": gname, "seal_grace_s": args.grace, "poll_interval_s": args.poll,
                     "bits": args.bits, "connections": args.connections,
                     "abnormal_share": args.abnormal_share, "episode_s": args.episode,
                     "period_s": args.period, "bpm": args.bpm,
                     "verify_sample_rate": args.verify_rate, "page_size": args.page_size,
                     "decryptor_threads": args.threads, "long_poll": args.long_poll,
                     "server_granularities": procs["grans"], "micro_window_ms": mw,
                     "server_env": args.server_env},
        "data_seconds": (data_end - data_start) / 1000.0,
        "load": {k: ld[k] for k in ("records_emitted", "records_acknowledged", "records_dropped",
                                    "accepted", "duplicate", "late", "requests_ok",
                                    "refused_by_status", "transport_errors", "records_per_s",
                                    "ack_after_window_end_ms", "request_ms", "tick_work_ms",
                                    "tick_lag_ms", "pool_misses", "cpu_cores_during_data",
                                    "vm_hwm_kib", "kept_up", "setup", "samples",
                                    "abnormal_patients")},
        "samples_per_s": ld["samples"] / ((data_end - data_start) / 1000.0),
        "records_in_db": records_in_db,
        "windows_by_granularity": windows_by_gran,
        "full_windows": full_windows, "short_windows": short_windows,
        "late_records": late_records,
        "decryptor_windows": len(ledger), "not_released": not_released,
        "window_rate": window_rate,
        "alerts": len(alerts), "emails": len(mails), "episodes": len(onsets),
        "raised_matched": len(matched), "cleared": cleared, "spurious": len(spurious),
        "latency_ms": {k: dist(v) for k, v in parts.items()},
        "target_ms": target_ms, "over_target": over,
        "pipeline_target_ms": pipeline_target, "over_pipeline_target": over_pipeline,
        "verdict_raw": "PASS" if total and over == 0 else "FAIL",
        "verdict_pipeline": "PASS" if total and over_pipeline == 0 else "FAIL",
        "db_bytes": db_bytes, "db_bytes_per_patient_day": db_bytes / (args.patients * data_days),
        "db_bytes_per_record": db_bytes / max(records_in_db, 1),
        "storage_by_table": storage, "storage_dbstat": by_table,
        "processes": {k: v for k, v in procs.items() if k != "metrics"},
        "problems": problems,
        "onset_rows": rows,
    }
    if not procs["caught_up"]:
        problems.append("the decryptor had not caught up with the server 180 s after the data")
    if procs["server_exit"] != 0:
        problems.append(f"server exit status {procs['server_exit']}")
    if not ld["kept_up"]:
        problems.append("the load generator fell behind real time")
    result["ok"] = not problems
    return result


def fmt_ms(v):
    return f"{v / 1000:.1f} s"


def report(args, r):
    s = r["settings"]
    ld = r["load"]
    c = r["processes"]["cores_measured"]
    say("")
    say(f"End to end: {s['patients']} patients at 1 Hz for {r['data_seconds']:.0f} s, "
        f"{s['bits']}-bit key, 5 s micro-windows, {s['window']} windows (seal grace "
        f"{s['seal_grace_s']:g} s), decryptor poll {s['poll_interval_s']:g} s"
        f"{' (long poll)' if s['long_poll'] else ''}, {s['decryptor_threads'] or 'all'} "
        f"decryption thread(s), server "
        f"granularities {s['server_granularities']}, {s['connections']} upload connections"
        + (f", server environment {' '.join(s['server_env'])}" if s["server_env"] else ""))
    say("")
    say("| measure | value |")
    say("|---|---|")
    say(f"| readings simulated | {r['samples_per_s']:.0f} /s |")
    say(f"| records ingested (acknowledged) | {ld['records_per_s']:.1f} /s "
        f"({ld['records_acknowledged']} records, {ld['requests_ok']} uploads) |")
    a = ld["ack_after_window_end_ms"]
    say(f"| micro-window end -> server ack | p50 {a['p50']:.0f} ms, p99 {a['p99']:.0f} ms, "
        f"max {a['max']:.0f} ms |")
    wr = r["window_rate"]
    if wr:
        d = wr["burst_drain_ms"]
        cap = wr["per_cpu_second"]
        say(f"| windows decrypted | {wr['average_per_s']:.1f} /s on average"
            + (f" ({cap:.0f} per second of decryptor CPU)" if cap else "")
            + f"; each burst of {s['patients']} windows done {d['p50']} ms (p50) / "
            f"{d['max']} ms (max) after its seal |")
    lat = r["latency_ms"]
    t = lat["total"]
    if t:
        say(f"| **onset -> e-mail** ({t['n']} episodes) | p50 {fmt_ms(t['p50'])}, p99 "
            f"{fmt_ms(t['p99'])}, max {fmt_ms(t['max'])} |")
        p = lat["from_raising_window_end"]
        say(f"| end of the raising window -> e-mail | p50 {fmt_ms(p['p50'])}, p99 "
            f"{fmt_ms(p['p99'])}, max {fmt_ms(p['max'])} |")
    hw = r["processes"]["vmhwm_kib"]
    rd = r["processes"]["vmrss_during_data_kib"]
    for label, name in (("server", "server"), ("decryptor", "watch")):
        x = rd.get(name) or {"start": 0, "end": 0}
        say(f"| {label} RSS | peak (VmHWM) {hw[name] / 1024:.1f} MiB; VmRSS {x['start'] / 1024:.1f} "
            f"MiB at the data start, {x['end'] / 1024:.1f} MiB at its end |")
    say(f"| load generator RSS peak | {ld['vm_hwm_kib'] / 1024:.1f} MiB |")
    if c:
        say(f"| CPU (cores, steady state) | server {c.get('server', 0):.2f}, decryptor "
            f"{c.get('watch', 0):.2f}, load generator {c.get('e2e_load', 0):.2f}, SMTP "
            f"{c.get('smtp', 0):.2f}, other processes {c['other']:.2f}; machine "
            f"{c['machine']:.2f} of 2 |")
    say(f"| database | {r['db_bytes'] / 1e6:.1f} MB for {r['records_in_db']} records: "
        f"{r['db_bytes_per_record']:.0f} B per record, "
        f"{r['db_bytes_per_patient_day'] / 1e6:.1f} MB per patient-day |")
    say("")
    if t:
        say("Onset -> e-mail, parts (ms):")
        say("")
        say("| part | p50 | p99 | max |")
        say("|---|---|---|---|")
        for label, key in (("**onset -> e-mail**", "total"),
                           ("  onset -> end of the first window holding it", "onset_to_first_window_end"),
                           ("  + a window more when the first is not yet abnormal enough",
                            "extra_window"),
                           ("  raising window end -> sealed (grace)", "grace_and_sealer"),
                           ("  sealed -> alert queued (long poll, fetch, decrypt the burst, rules)",
                            "sealed_to_queued"),
                           ("  alert queued -> SMTP accepted", "queued_to_smtp"),
                           ("end of the first micro-window holding the onset -> e-mail",
                            "from_first_mw_end"),
                           ("end of the first window holding the onset -> e-mail",
                            "from_first_window_end"),
                           ("end of the raising window -> e-mail", "from_raising_window_end")):
            v = lat[key]
            if v:
                say(f"| {label} | {v['p50']} | {v['p99']} | {v['max']} |")
        say("")
        say(f"target (issue): onset -> e-mail <= micro-window + grace + poll + 2 s = "
            f"{r['target_ms']} ms: {r['verdict_raw']} ({r['over_target']} of {t['n']} over; "
            f"p50 {t['p50']}, p99 {t['p99']}, max {t['max']} ms)")
        say(f"the same budget less the micro-window ({r['pipeline_target_ms']} ms) from the "
            f"end of the raising window: {r['verdict_pipeline']} ({r['over_pipeline_target']} "
            f"over)")
    say("")
    say(f"checks: {r['episodes']} episodes, {r['raised_matched']} raised and {r['cleared']} "
        f"cleared alerts matched, {r['spurious']} unexpected; {r['alerts']} alerts, "
        f"{r['emails']} e-mails; {r['records_in_db']} records stored of "
        f"{ld['records_acknowledged']} acknowledged; {r['full_windows']} full windows, "
        f"{r['short_windows']} short; late records {r['late_records']}; "
        f"{r['decryptor_windows']} windows in the decryptor's ledger, {r['not_released']} "
        f"not released")
    say("storage by table (bytes): " + ", ".join(f"{k} {v}" for k, v in
                                                 r["storage_by_table"].items()))
    if r["problems"]:
        say("PROBLEMS:")
        for p in r["problems"]:
            say(f"  - {p}")
    else:
        say("all checks passed")


if __name__ == "__main__":
    sys.exit(main())
