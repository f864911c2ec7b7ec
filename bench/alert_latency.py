#!/usr/bin/python3
"""Alert latency of cipherpulse: from a window's seal to the alert e-mail reaching SMTP.

Runs the whole system on loopback in a temporary directory, in real time: a 2048-bit
decryptor key, a server with short windows (default 10 s, seal grace 2 s), the decryptor's
`watch` service with e-mail to a local SMTP server (tests/fixtures/smtp_server.py, plain
SMTP on loopback), and K simulated patients whose edges play scripted tachycardia episodes
(default 30 s long, one every 50 s per patient, staggered between patients). The alert
rules are tuned for short windows (tachycardia: sustained 1, clear_after 1, cooldown 0s;
baseline_deviation and missing_data off), so each episode raises at its first abnormal
window and clears at the first normal one after it.

Every e-mail is matched to its alert (X-Cipherpulse-Alert header, then the decryptor's
database) and to the window that caused it (the server's database, read-only after the
run). Measured:

  seal -> SMTP     received_ms (the SMTP server's clock when it accepted the DATA) minus
                   the window's sealed_ms (the server's clock when its sealer sealed it),
                   for every e-mail (raised and cleared). Target (issue): <= poll interval
                   + 1 s.
  onset -> e-mail  for raised alerts: received_ms minus the wall-clock start of the
                   scripted episode (the edge's data start + the episode offset; at speed
                   1 the simulator's data starts at the edge's wall clock when it starts,
                   see src/edge/runner.cpp make_source). A preview for the end-to-end issue.

It also reports the decryptor's peak RSS (VmHWM) and CPU time over the run (the server's
too, for context). All clocks are the same machine's system clock.

Usage: /usr/bin/python3 bench/alert_latency.py [--duration 180] [--poll 1.0] [--patients 8]
           [--window 10s] [--grace 2] [--keep] [--json FILE]
Build first: cmake --preset release && cmake --build --preset release (or use
bench/run_alert_latency.sh, which does both). Standard library only; the SMTP fixture
needs python3-aiosmtpd.
"""

import argparse
import email.parser
import email.policy
import json
import os
import re
import select
import sqlite3
import subprocess
import sys
import time

import bench_common
from bench_common import (PYTHON, REPO, free_port, http_get, metric, now_ms,
                          percentile, proc_cpu_s, proc_status_kib, say, write_private)


def parse_window(text):
    m = re.fullmatch(r"(\d+)([smh])", text)
    if not m:
        raise argparse.ArgumentTypeError("window must look like 10s, 30s or 1m")
    ms = int(m.group(1)) * {"s": 1000, "m": 60000, "h": 3600000}[m.group(2)]
    if ms <= 0 or 86400000 % ms != 0:
        raise argparse.ArgumentTypeError("window must divide a day")
    return text, ms


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Measure the latency from a window's seal (and from the onset of an "
                    "abnormal episode) to the alert e-mail reaching a local SMTP server.")
    p.add_argument("--duration", type=float, default=180.0,
                   help="seconds the edges measure (default 180)")
    p.add_argument("--poll", type=float, default=1.0,
                   help="decryptor watch.poll_interval_s (default 1.0)")
    p.add_argument("--no-long-poll", dest="long_poll", action="store_false",
                   help="decryptor watch.long_poll = false: poll on the interval only")
    p.add_argument("--patients", type=int, default=8, help="simulated patients (default 8)")
    p.add_argument("--window", type=parse_window, default=parse_window("10s"),
                   help="window granularity the server seals and the decryptor watches "
                        "(default 10s)")
    p.add_argument("--grace", type=int, default=2,
                   help="server seal grace for that window, seconds (default 2; the "
                        "server's own default for 10 s windows is 5)")
    p.add_argument("--episode", type=int, default=30,
                   help="length of each tachycardia episode, seconds (default 30)")
    p.add_argument("--period", type=int, default=50,
                   help="seconds from one episode's start to the next, per patient "
                        "(default 50)")
    p.add_argument("--bpm", type=int, default=150, help="episode target rate (default 150)")
    p.add_argument("--verify-rate", type=float, default=0.05,
                   help="decryptor watch.verify_sample_rate (default 0.05)")
    p.add_argument("--bin", default=os.path.join(REPO, "build", "release", "apps"),
                   help="directory of the cipherpulse binaries (default build/release/apps)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory (logs, databases, mail)")
    args = p.parse_args(argv)
    if args.patients < 1 or args.duration < 30 or args.poll < 0.05:
        p.error("need --patients >= 1, --duration >= 30 and --poll >= 0.05")
    if args.episode < 10 or args.period < args.episode + 2 * args.window[1] // 1000:
        p.error("need --episode >= 10 and --period >= episode + two windows (so each "
                "episode clears before the next)")
    if 20 + args.episode + 2 * args.window[1] // 1000 > args.duration:
        p.error("--duration is too short for a single episode (20 s of normal rhythm, the "
                "episode, two windows)")
    if args.window[1] % 5000 != 0 and args.grace < 5:
        p.error("a window that is not a multiple of the edges' 5 s micro-windows ends inside "
                "one, whose record comes up to 5 s after the window's end: use --grace 5 or "
                "more, or its records arrive late")
    return args


def run(argv, cwd, what, **kw):
    return bench_common.run(argv, cwd, what, timeout=120, **kw)


def episodes_for(i, args):
    """Episode offsets (s) of patient i: staggered across patients by period / K, the first
    after 20 s of normal rhythm, each ending at least two windows before the data ends."""
    window_s = args.window[1] // 1000
    first = 20 + (i * args.period) // args.patients
    out = []
    t = first
    while t + args.episode + 2 * window_s <= args.duration:
        out.append(t)
        t += args.period
    return out


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    gname, window_ms = args.window
    bins = {n: os.path.join(args.bin, "cipherpulse-" + n) for n in ("server", "edge", "decryptor")}
    for path in bins.values():
        if not os.access(path, os.X_OK):
            sys.exit(f"alert_latency: {path} is missing: build the release preset first")
    fixture = os.path.join(REPO, "tests", "fixtures", "smtp_server.py")

    # SIGTERM (e.g. from a wrapper) unwinds like Ctrl-C, so everything started is stopped.
    return bench_common.run_in_workdir(
        "alert_latency", "cp-alert-latency-", 15, args.keep, args.json,
        lambda work, orch, logs: measure(args, bins, fixture, work, orch, logs, gname,
                                         window_ms),
        lambda result: report(args, result), lambda result: result["verdict"] == "PASS")


def measure(args, bins, fixture, work, orch, logs, gname, window_ms):

    def log_file(name):
        f = open(os.path.join(work, name), "w")
        logs.append(f)
        return f

    say(f"==> working in {work}")
    run([bins["decryptor"], "keygen", "--bits", "2048", "--out", "keys"], work, "keygen")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(os.path.join(work, "server.toml"), "w") as f:
        f.write(f"""[server]
listen = "127.0.0.1:{port}"
[storage]
database = "server.db"
[ingest]
granularities = ["{gname}"]
seal_grace_s = {{ "{gname}" = {args.grace} }}
[keys]
identity_public_key = "keys/identity.pub.pem"
[logging]
level = "info"
""")
    server_cmd = [bins["server"], "--config", os.path.join(work, "server.toml")]
    write_private(os.path.join(work, "admin.token"),
                  run(server_cmd + ["init"], work, "server init"))
    token = run(server_cmd + ["token", "create", "--role", "decryptor"], work,
                "token create").strip()
    write_private(os.path.join(work, "decryptor.token"), token + "\n")
    server = orch.start("server", server_cmd + ["serve"], cwd=work,
                        stdout=subprocess.DEVNULL, stderr=log_file("server.log"))
    deadline = time.time() + 15
    while True:
        try:
            http_get(url + "/v1/health", timeout=1)
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                raise RuntimeError("the server did not come up (see server.log)")
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
        raise RuntimeError("the SMTP fixture did not start (see smtp.log; python3-aiosmtpd "
                           "installed?)")
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
long_poll = {"true" if args.long_poll else "false"}
verify_sample_rate = {args.verify_rate}
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

    # Patients: enrol every edge before starting any, so their starts are close together.
    patients = []
    for i in range(args.patients):
        pid_name = f"p-{i + 1:02d}"
        edir = os.path.join(work, f"edge-{i + 1:02d}")
        run([bins["edge"], "init", "--device-id", f"dev-{i + 1:02d}", "--server", url,
             "--identity", os.path.join(work, "keys", "identity.pub.pem"), "--dir", edir],
            work, "edge init")
        run(server_cmd + ["device", "add", "--id", f"dev-{i + 1:02d}", "--patient", pid_name,
                          "--public-key", os.path.join(edir, "device.pub.pem")],
            work, "device add")
        offsets = episodes_for(i, args)
        script = ", ".join(f"tachycardia@{o}s+{args.episode}s:{args.bpm}" for o in offsets)
        cfg = os.path.join(edir, "edge.toml")
        with open(cfg) as f:
            text = f.read()
        text = text.split("[source]")[0]  # init writes [source] last; replace it
        text += f"""[source]
kind = "sim"
speed = 1.0
profile = "healthy"
episodes = "{script}"
seed = {1000 + i}
duration_s = {args.duration}
[upload]
batch_size = 10
[logging]
level = "warn"
"""
        with open(cfg, "w") as f:
            f.write(text)
        patients.append({"patient": pid_name, "config": cfg, "offsets_s": offsets})

    watch = orch.start("watch", [bins["decryptor"], "watch", "--config",
                                 os.path.join(work, "decryptor.toml")],
                       cwd=work, stdout=subprocess.DEVNULL, stderr=log_file("watch.log"))
    watch_cpu0 = proc_cpu_s(watch.pid)
    server_cpu0 = proc_cpu_s(server.pid)
    run_start = time.time()

    edges = []
    for i, p in enumerate(patients):
        p["launch_ms"] = now_ms()  # the edge's data starts at its own clock just after this
        edges.append(orch.start(f"edge-{i + 1}", [bins["edge"], "run", "--config", p["config"]],
                                cwd=work, stdout=subprocess.DEVNULL,
                                stderr=log_file(f"edge-{i + 1:02d}.log")))
    data_end_ms = max(p["launch_ms"] for p in patients) + int(args.duration * 1000)
    n_episodes = sum(len(p["offsets_s"]) for p in patients)
    say(f"==> {args.patients} edges measuring for {args.duration:.0f} s, {n_episodes} "
        f"tachycardia episodes of {args.episode} s; {gname} windows, seal grace "
        f"{args.grace} s, decryptor poll {args.poll} s")

    def progress():
        try:
            text = http_get(url + "/metrics")
        except OSError:
            text = ""
        mails = len([n for n in os.listdir(mail) if n.endswith(".json")])
        say(f"    {time.time() - run_start:5.0f} s: {metric(text, 'cipherpulse_windows_sealed_total'):.0f}"
            f" windows sealed, {mails} e-mails received")
        for name, proc, log in (("server", server, "server.log"), ("watch", watch, "watch.log"),
                                ("smtp", smtp, "smtp.log")):
            if proc.poll() is not None:
                with open(os.path.join(work, log), errors="replace") as f:
                    tail = "".join(f.readlines()[-5:])
                raise RuntimeError(f"{name} (pid {proc.pid}) exited early (exit "
                                   f"{proc.returncode}); the end of {log}:\n{tail}")

    next_report = time.time() + 15
    while now_ms() < data_end_ms:
        time.sleep(0.5)
        if time.time() >= next_report:
            progress()
            next_report += 15
    # The edges stop by themselves once their data ends (after draining their spools).
    for proc in edges:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            orch.stop(proc)
    # The last window ends at most one window after the data; then grace, 0.5 s of margin,
    # a poll and the delivery. Wait for that, then until the mail is quiet.
    last_seal_ms = (data_end_ms // window_ms + 1) * window_ms + args.grace * 1000 + 500
    settle_until = last_seal_ms + int(args.poll * 1000) + 5000
    while now_ms() < settle_until:
        time.sleep(0.5)
    progress()
    watch_cpu = proc_cpu_s(watch.pid) - watch_cpu0
    server_cpu = proc_cpu_s(server.pid) - server_cpu0
    wall = time.time() - run_start
    watch_hwm = proc_status_kib(watch.pid, "VmHWM")
    server_hwm = proc_status_kib(server.pid, "VmHWM")
    try:
        late = metric(http_get(url + "/metrics"), "cipherpulse_records_late_total")
    except OSError:
        late = float("nan")
    orch.stop(watch)
    orch.stop(smtp)
    orch.stop(server)

    return analyse(args, work, mail, patients, window_ms, {
        "wall_s": wall, "decryptor_cpu_s": watch_cpu, "decryptor_vmhwm_kib": watch_hwm,
        "server_cpu_s": server_cpu, "server_vmhwm_kib": server_hwm, "late_records": late,
        "decryptor_exit": watch.returncode})


def analyse(args, work, mail, patients, window_ms, procs):
    ddb = sqlite3.connect(f"file:{os.path.join(work, 'decryptor.db')}?mode=ro", uri=True)
    sdb = sqlite3.connect(f"file:{os.path.join(work, 'server.db')}?mode=ro", uri=True)
    alerts = {row[0]: row for row in ddb.execute(
        "SELECT id, kind, patient, rule, window_id, window_start_ms, window_length_ms, "
        "created_ms FROM alerts")}
    attempts = {}
    for alert_id, at_ms, ok in ddb.execute(
            "SELECT alert_id, at_ms, ok FROM delivery_attempts WHERE channel = 'email' "
            "ORDER BY id"):
        attempts.setdefault(alert_id, []).append((at_ms, ok))
    undelivered = [r[0] for r in ddb.execute(
        "SELECT alert_id FROM deliveries WHERE status <> 'sent'")]
    windows = {row[0]: row for row in sdb.execute(
        "SELECT id, start_ms, length_ms, seal_ms, sealed_ms FROM windows WHERE sealed = 1")}

    parser = email.parser.BytesParser(policy=email.policy.default)
    rows = []
    for name in sorted(os.listdir(mail), key=lambda n: (len(n), n)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(mail, name)) as f:
            side = json.load(f)
        with open(os.path.join(mail, name[:-5] + ".eml"), "rb") as f:
            msg = parser.parse(f, headersonly=True)
        m = re.fullmatch(r"alert-(\d+)-[0-9a-f]+", str(msg.get("X-Cipherpulse-Alert", "")).strip())
        if not m or int(m.group(1)) not in alerts:
            raise RuntimeError(f"e-mail {name}: no known X-Cipherpulse-Alert header")
        a = alerts[int(m.group(1))]
        w = windows.get(a[4])
        if w is None:
            raise RuntimeError(f"alert {a[0]}: window {a[4]} not sealed on the server")
        rows.append({
            "alert": a[0], "kind": a[1], "patient": a[2], "rule": a[3], "window": a[4],
            "window_start_ms": w[1], "window_end_ms": w[1] + w[2], "seal_ms": w[3],
            "sealed_ms": w[4], "created_ms": a[7],
            "attempt_ms": attempts.get(a[0], [(None, 0)])[-1][0],
            "attempts": len(attempts.get(a[0], [])),
            "received_ms": side["received_ms"]})
    if not rows:
        raise RuntimeError("no e-mail arrived (see watch.log)")
    ids = [r["alert"] for r in rows]
    duplicates = len(ids) - len(set(ids))

    # Onset: match each raised alert to the patient's episode that its window overlaps.
    by_patient = {p["patient"]: p for p in patients}
    episodes = {(p["patient"], o): None for p in patients for o in p["offsets_s"]}
    spurious = 0
    onset = []
    for r in rows:
        if r["kind"] != "raised":
            continue
        p = by_patient[r["patient"]]
        hit = None
        for o in p["offsets_s"]:
            start = p["launch_ms"] + o * 1000
            end = start + args.episode * 1000
            if r["window_start_ms"] < end and r["window_end_ms"] > start:
                hit = (o, start)
                break
        if hit is None or episodes[(r["patient"], hit[0])] is not None:
            spurious += 1
            continue
        episodes[(r["patient"], hit[0])] = r
        onset.append({"total": r["received_ms"] - hit[1],
                      "to_window_end": r["window_end_ms"] - hit[1],
                      "grace": r["seal_ms"] - r["window_end_ms"],
                      "sealer": r["sealed_ms"] - r["seal_ms"],
                      "seal_to_smtp": r["received_ms"] - r["sealed_ms"]})
    missed = sum(1 for v in episodes.values() if v is None)

    lat = [r["received_ms"] - r["sealed_ms"] for r in rows]
    poll_part = [r["created_ms"] - r["sealed_ms"] for r in rows]
    deliver_part = [r["received_ms"] - r["created_ms"] for r in rows]
    sealer_lag = [r["sealed_ms"] - r["seal_ms"] for r in rows]
    target = int(args.poll * 1000) + 1000
    over = sum(1 for v in lat if v > target)

    def stats(values):
        return {k: round(percentile(values, q)) for k, q in
                (("p50", 50), ("p90", 90), ("p99", 99))} | {"max": max(values),
                                                              "min": min(values)}

    return {
        "settings": {"duration_s": args.duration, "poll_interval_s": args.poll,
                     "long_poll": args.long_poll,
                     "patients": args.patients, "window": args.window[0],
                     "seal_grace_s": args.grace, "episode_s": args.episode,
                     "period_s": args.period, "bpm": args.bpm,
                     "verify_sample_rate": args.verify_rate},
        "emails": len(rows), "raised": sum(r["kind"] == "raised" for r in rows),
        "cleared": sum(r["kind"] == "cleared" for r in rows),
        "alerts_in_decryptor_db": len(alerts), "undelivered": len(undelivered),
        "duplicate_emails": duplicates,
        "retried": sum(1 for r in rows if r["attempts"] > 1),
        "episodes": len(episodes), "episodes_missed": missed, "spurious_raises": spurious,
        "seal_to_smtp_ms": stats(lat),
        "sealed_to_alert_queued_ms": stats(poll_part),
        "alert_queued_to_smtp_ms": stats(deliver_part),
        "scheduled_seal_to_sealed_ms": stats(sealer_lag),
        "target_ms": target, "over_target": over,
        "verdict": "PASS" if over == 0 else "FAIL",
        "onset_to_email_ms": {k: stats([o[k] for o in onset]) for k in
                              ("total", "to_window_end", "grace", "sealer", "seal_to_smtp")}
        if onset else None,
        "processes": procs,
    }


def report(args, r):
    s = r["seal_to_smtp_ms"]
    say("")
    say(f"Alert latency, {args.patients} patients, {args.window[0]} windows, seal grace "
        f"{args.grace} s, poll {args.poll} s, {args.duration:.0f} s run "
        f"(figures from a shared 2-core machine; other work on it shows up in the tails)")
    say("")
    say(f"e-mails: {r['emails']} ({r['raised']} raised, {r['cleared']} cleared); alerts in the "
        f"decryptor: {r['alerts_in_decryptor_db']}, undelivered {r['undelivered']}, "
        f"retried {r['retried']}, duplicate e-mails {r['duplicate_emails']}")
    say(f"episodes: {r['episodes']}, without a raise {r['episodes_missed']}; extra raises "
        f"(outside an episode, or a second one in it) {r['spurious_raises']}; records late "
        f"for their window on the server {r['processes']['late_records']:.0f}")
    say("")
    say("| latency (ms) | p50 | p90 | p99 | max |")
    say("|---|---|---|---|---|")
    for label, key in (("**seal -> SMTP accepted**", "seal_to_smtp_ms"),
                       ("  sealed -> alert queued (feed wait, fetch, decrypt, rules)",
                        "sealed_to_alert_queued_ms"),
                       ("  alert queued -> SMTP accepted (delivery thread, SMTP)",
                        "alert_queued_to_smtp_ms"),
                       ("scheduled seal -> sealed (server sealer, not in the above)",
                        "scheduled_seal_to_sealed_ms")):
        v = r[key]
        say(f"| {label} | {v['p50']} | {v['p90']} | {v['p99']} | {v['max']} |")
    say("")
    say(f"target: seal -> SMTP <= poll interval + 1 s = {r['target_ms']} ms for every alert: "
        f"{r['verdict']} (max {s['max']} ms, p99 {s['p99']} ms; {r['over_target']} of "
        f"{r['emails']} over)")
    q = r["sealed_to_alert_queued_ms"]
    spread = q["max"] - q["min"]
    poll_ms = int(args.poll * 1000)
    say(f"sealed -> queued spans {q['min']}..{q['max']} ms")
    if not args.long_poll and spread < poll_ms / 2:
        say(f"NOTE: every window seals on the same {args.window[0]} grid (+ grace + the sealer's "
            f"tick) and the poll period is P plus a little drift, so the poll's phase against "
            f"the seals moved little during this run: these figures show a narrow band of "
            f"phases, not the distribution over [0, P). The worst case is P + poll and "
            f"delivery time; for a spread, use a window that is not a multiple of P (e.g. "
            f"--window 12s --grace 5 --period 60 with --poll 5) or a longer --duration.")
    o = r["onset_to_email_ms"]
    if o:
        say("")
        say("Onset -> e-mail (raised alerts; episode start in wall-clock time, +-1 s: the "
            "edge's data start is taken as its launch time)")
        say("")
        say("| part (ms) | p50 | p99 | max |")
        say("|---|---|---|---|")
        for label, key in (("**onset -> e-mail**", "total"),
                           ("  onset -> end of the first abnormal window (ramp to the "
                            "threshold + window)", "to_window_end"),
                           ("  window end -> scheduled seal (seal grace)", "grace"),
                           ("  scheduled seal -> sealed (sealer)", "sealer"),
                           ("  sealed -> SMTP (feed, decrypt, delivery)", "seal_to_smtp")):
            v = o[key]
            say(f"| {label} | {v['p50']} | {v['p99']} | {v['max']} |")
        win = args.window[1]
        say("")
        say(f"composition: the episode blends in over min(30 s, length/3) = "
            f"{min(30, args.episode / 3):.0f} s, so the first window whose mean passes 100 bpm "
            f"ends up to one window ({win // 1000} s) after the rate crosses it; then the seal "
            f"grace ({args.grace} s), then "
            + ("the long poll's answer" if args.long_poll else f"the poll ({args.poll} s)")
            + " plus decryption and delivery. Bound without the ramp: window + grace"
            + ("" if args.long_poll else " + poll") + " + decryption and delivery = "
            f"{win + args.grace * 1000 + (0 if args.long_poll else int(args.poll * 1000))} ms "
            f"+ decryption and delivery.")
    p = r["processes"]
    say("")
    say(f"decryptor watch over {p['wall_s']:.0f} s: CPU {p['decryptor_cpu_s']:.2f} s "
        f"({100 * p['decryptor_cpu_s'] / p['wall_s']:.2f}% of a core), peak RSS (VmHWM) "
        f"{p['decryptor_vmhwm_kib'] / 1024:.1f} MiB; server: CPU {p['server_cpu_s']:.2f} s, "
        f"VmHWM {p['server_vmhwm_kib'] / 1024:.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
