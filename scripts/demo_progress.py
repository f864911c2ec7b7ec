#!/usr/bin/python3
"""Helpers of scripts/demo.sh: progress lines while the demo runs, and its final report.

Standard library only (run it with /usr/bin/python3). Subcommands:

  trim SRC DST SECONDS      copy the rows of a t_seconds CSV recording with t < SECONDS
                            (0: all rows) to DST
  progress ...              every few seconds one line: records the server stored, windows
                            it sealed, alerts the decryptor raised, e-mails the SMTP server
                            received; and one line per new alert. Fails (exit 1) when a
                            process the demo needs dies.
  table ...                 per-patient decrypted statistics over the run (decryptor `stats`)
  mail ...                  the e-mails the SMTP server received, decoded; fails when a
                            patient that must have alerted got no e-mail
  dbcheck DB                the server's database holds no plaintext value

The patients file (--patients) is tab-separated: id, alias, scenario, required (1: the demo
fails unless this patient's alerts reached the SMTP server).
"""

import argparse
import base64
import csv
import email
import email.policy
import json
import os
import re
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.request


def read_patients(path):
    patients = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            pid, alias, scenario, required = line.split("\t")
            patients.append({"id": pid, "alias": alias, "scenario": scenario,
                             "required": required == "1"})
    return patients


def decryptor_json(decryptor, config, *args):
    """Runs a decryptor command with --format json and returns the parsed output."""
    out = subprocess.run([decryptor, *args, "--config", config, "--format", "json",
                          "--log-level", "error"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"cipherpulse-decryptor {' '.join(args)} failed "
                           f"(exit {out.returncode}): {out.stderr.strip()}")
    return json.loads(out.stdout)


def list_alerts(decryptor, config):
    return decryptor_json(decryptor, config, "alerts", "list", "--limit", "10000")


ALERT_LINE = re.compile(r"alert (\d+): (\w+) (\S+) (raised|cleared) for patient (\S+) "
                        r"\(window (\d+)\)")
INTEGRITY_LINE = re.compile(r"INTEGRITY: window (\d+) of patient (\S+): .* \(alert (\d+)\)")
DELIVERY_LINE = re.compile(r"alert (\d+): (delivered by|delivery by \S+ FAILED for good)")


def alerts_from_log(path):
    """The alerts the running watch raised and which of them are delivered (or failed for
    good), from its log: the demo never opens the watch's database while it runs."""
    alerts, finished = {}, set()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if m := ALERT_LINE.search(line):
                    alerts[int(m[1])] = {"id": int(m[1]), "severity": m[2], "rule": m[3],
                                         "kind": m[4], "patient": m[5], "window": int(m[6])}
                elif m := INTEGRITY_LINE.search(line):
                    alerts[int(m[3])] = {"id": int(m[3]), "severity": "critical",
                                         "rule": "integrity", "kind": "integrity",
                                         "patient": m[2], "window": int(m[1])}
                elif m := DELIVERY_LINE.search(line):
                    finished.add(int(m[1]))
    except FileNotFoundError:
        pass
    return alerts, finished


def count_mails(mail_dir):
    return sum(1 for name in os.listdir(mail_dir) if name.endswith(".eml"))


def metrics(url, ca):
    context = ssl.create_default_context(cafile=ca)
    with urllib.request.urlopen(url, context=context, timeout=5) as res:
        text = res.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                pass
    return values


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by the demo's shell) counts as dead.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def cmd_trim(args):
    limit = float(args.seconds)
    rows = 0
    with open(args.src, newline="", encoding="utf-8") as src, \
            open(args.dst, "w", newline="", encoding="utf-8") as dst:
        reader = csv.reader(src)
        writer = csv.writer(dst, lineterminator="\n")
        header = next(reader)
        t_col = header.index("t_seconds")
        writer.writerow(header)
        for row in reader:
            if limit > 0 and float(row[t_col]) >= limit:
                break
            writer.writerow(row)
            rows += 1
    print(rows)
    return 0


def cmd_progress(args):
    patients = {p["id"]: p for p in read_patients(args.patients)}

    def pairs(items):
        return [(name, int(pid)) for name, _, pid in (i.rpartition("=") for i in items)]

    watched, edges = pairs(args.process), pairs(args.edge)
    seen = set()
    next_line = time.time()
    settle_at = None  # once measuring ended: when the last window has sealed and was read
    give_up = args.until + args.drain
    while True:
        now = time.time()
        for name, pid in watched:
            if not alive(pid):
                print(f"    !! {name} (pid {pid}) is no longer running", flush=True)
                return 1
        if settle_at is None and now >= args.until and not any(alive(p) for _, p in edges):
            # The last window an edge wrote to ends at the next multiple of its length.
            w = args.window_s
            settle_at = (now // w + 1) * w + args.grace_s + 2
        try:
            m = metrics(args.metrics, args.ca)
            records = int(m.get('cipherpulse_records_total{outcome="accepted"}', 0))
            sealed = int(m.get("cipherpulse_windows_sealed_total", 0))
            late = int(m.get("cipherpulse_records_late_total", 0))
        except Exception as e:  # noqa: BLE001 - report and keep going
            records = sealed = late = None
            print(f"    (metrics unavailable: {e})", flush=True)
        alerts, delivered = alerts_from_log(args.decryptor_log)
        mails = count_mails(args.mail)
        pending = len(set(alerts) - delivered) if args.channels else 0
        for a in sorted(alerts.values(), key=lambda a: a["id"]):
            if a["id"] in seen:
                continue
            seen.add(a["id"])
            p = patients.get(a["patient"], {})
            print(f"    alert {a['id']}: {p.get('alias', a['patient'])} "
                  f"({p.get('scenario', '?')}): {a['rule']} {a['kind']} ({a['severity']}), "
                  f"window {a['window']}", flush=True)
        done = settle_at is not None and now >= settle_at and pending == 0
        if now >= next_line or done or now >= give_up:
            phase = "" if now < args.until else "  (measuring done; last windows sealing)"
            late_text = f" ({late} late)" if late else ""
            print(f"    [{now - args.start:3.0f}s] records sent "
                  f"{records if records is not None else '?'}{late_text} | windows sealed "
                  f"{sealed if sealed is not None else '?'} | alerts {len(alerts)} | "
                  f"e-mails {mails}{phase}", flush=True)
            next_line = now + args.interval
        if done:
            return 0
        if now >= give_up:
            still = [name for name, pid in edges if alive(pid)]
            print(f"    !! gave up waiting {args.drain:.0f} s after the measuring: "
                  + (f"edges still running: {', '.join(still)}" if still else
                     f"{pending} alert delivery(ies) still pending"), flush=True)
            return 1
        time.sleep(1)


def cell(value, digits=1, suffix=""):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{suffix}"
    return f"{value}{suffix}"


def print_table(headers, rows, right=(), indent="    "):
    """Prints aligned columns; `right` holds the indexes of right-aligned columns. A row
    of one cell after the first column (a note) does not widen the columns."""
    full = [r for r in [headers, *rows] if not (len(r) == 2 and r[0] == "")]
    widths = [max(len(str(r[i])) for r in full) for i in range(len(headers))]
    for r in [headers, *rows]:
        if len(r) == 2 and r[0] == "":
            print(indent + " " * (widths[0] + 2) + r[1])
            continue
        print(indent + "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                                 for i, (c, w) in enumerate(zip(r, widths))).rstrip())


def cmd_table(args):
    patients = read_patients(args.patients)
    alerts = list_alerts(args.decryptor, args.config)
    rows, docs = [], []
    failures = 0
    for p in patients:
        try:
            doc = decryptor_json(args.decryptor, args.config, "stats", "--patient", p["id"],
                                 "--from", str(args.start_ms), "--to", "now")
        except Exception as e:  # noqa: BLE001
            print(f"    {p['id']}: {e}")
            failures += 1
            continue
        docs.append(doc)
        t = doc["total"]
        raised = sorted({a["rule"] for a in alerts
                         if a["patient"] == p["id"] and a["kind"] == "raised"})
        share_above = t.get("share_above")
        share_below = t.get("share_below")
        # A patient's own rule moves the thresholds the shares are counted against.
        above_note = "" if doc["above_bpm"] == 100 else f" (>={doc['above_bpm']:g})"
        below_note = "" if doc["below_bpm"] == 50 else f" (<{doc['below_bpm']:g})"
        rng = "-" if t.get("min_bin_bpm") is None else \
            f"{t['min_bin_bpm']:.0f}-{t['max_bin_bpm']:.0f}"
        rows.append([p["id"], p["alias"], p["scenario"], len(doc["windows"]), t["records"],
                     t["samples"], cell(t.get("mean_bpm")), cell(t.get("sd_bpm")), rng,
                     cell(None if share_above is None else 100 * share_above, 0, "%" + above_note),
                     cell(None if share_below is None else 100 * share_below, 0, "%" + below_note),
                     cell(t.get("rmssd_ms"), 0), ", ".join(raised) or "-"])
        if doc.get("integrity_failures"):
            print(f"    {p['id']}: {doc['integrity_failures']} window(s) FAILED the integrity "
                  f"checks")
            failures += 1
    print_table(["patient", "alias", "source", "windows", "records", "samples", "mean bpm",
                 "sd", "range", ">=100", "<50", "rmssd ms", "alerts raised"], rows,
                right=range(3, 12))
    return 1 if failures else 0


def cmd_mail(args):
    patients = read_patients(args.patients)
    alerts = {a["id"]: a for a in list_alerts(args.decryptor, args.config)}
    names = sorted((n for n in os.listdir(args.mail) if n.endswith(".eml")),
                   key=lambda n: int(n.split(".")[0]))
    mailed = set()
    rows = []
    transport = set()
    for name in names:
        with open(os.path.join(args.mail, name), "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        with open(os.path.join(args.mail, name[:-4] + ".json"), encoding="utf-8") as f:
            envelope = json.load(f)
        transport.add(f"{envelope.get('tls_version') or 'no TLS'}, "
                      f"{'AUTH as ' + str(envelope.get('auth_user')) if envelope.get('auth') else 'no AUTH'}")
        alert_header = str(msg.get("X-Cipherpulse-Alert", ""))
        match = re.match(r"alert-(\d+)-", alert_header)
        alert = alerts.get(int(match.group(1))) if match else None
        if alert:
            mailed.add(alert["patient"])
        date = msg["Date"].datetime.astimezone().strftime("%H:%M:%S") if msg["Date"] else "?"
        rows.append([name[:-4], date, str(msg["From"]), str(msg["Subject"])])
        body = msg.get_body(preferencelist=("plain",))
        if body is not None:
            summary = next((line.split(":", 1)[1].strip()
                            for line in body.get_content().splitlines()
                            if line.startswith("Summary:")), "")
            if summary:
                rows.append(["", summary])
    if names:
        print(f"    {len(names)} message(s), received over {'; '.join(sorted(transport))}")
    else:
        print("    no message received")
    if rows:
        print_table(["#", "date", "from", "subject"], rows, right=(0,))
    missing = [p for p in patients if p["required"] and p["id"] not in mailed]
    for p in missing:
        print(f"    MISSING: no e-mail for {p['id']} ({p['alias']}, {p['scenario']})")
    return 1 if missing else 0


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def cmd_dbcheck(args):
    db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    tables = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    print("    tables:", ", ".join(tables))
    cols = {t: [c[1] for c in db.execute(f"PRAGMA table_info({t})")] for t in tables}
    suspicious = [f"{t}.{c}" for t, cs in cols.items() for c in cs
                  if any(w in c.lower() for w in ("bpm", "rate", "value", "plain", "rr"))]
    print("    columns that could hold a vital value:", ", ".join(suspicious) or "none")
    ok = not suspicious
    moduli = {}
    for kid, document in db.execute("SELECT kid, document FROM keys"):
        n = int.from_bytes(b64url(json.loads(document)["n"]), "big")
        moduli[kid] = n
    sizes, unblinded, out_of_range, count = set(), 0, 0, 0
    for table, column in (("records", "ct"), ("windows", "aggregate")):
        where = " WHERE record_count > 0" if table == "windows" else ""
        for kid, blob in db.execute(f"SELECT kid, {column} FROM {table}{where}"):
            n = moduli[kid]
            c = int.from_bytes(blob, "big")
            count += 1
            sizes.add(len(blob))
            if not 0 < c < n * n:
                out_of_range += 1
            # (1 + m n) r^n with r = 1 would give away m: every value must be blinded.
            elif c % n == 1:
                unblinded += 1
    n_bytes = {(n.bit_length() * 2 + 7) // 8 for n in moduli.values()}
    print(f"    ciphertexts (records and window aggregates): {count}, sizes "
          f"{sorted(sizes)} bytes (n^2 is {sorted(n_bytes)} bytes), "
          f"{out_of_range} out of range, {unblinded} unblinded")
    ok = ok and count > 0 and sizes <= n_bytes and out_of_range == 0 and unblinded == 0
    fields = set()
    for (body,) in db.execute("SELECT body FROM batches"):
        doc = json.loads(body)
        for record in doc.get("records", []):
            fields.update(record.keys())
        fields.update(k for k in doc if k != "records")
    print("    fields of the uploads as received:", ", ".join(sorted(fields)))
    leaky = [f for f in fields if any(w in f.lower() for w in ("bpm", "rr", "rate", "value"))]
    if leaky:
        print("    upload fields that could hold a vital value:", ", ".join(leaky))
    ok = ok and not leaky
    print("    PASSED: the server holds ciphertexts and metadata only" if ok else
          "    FAILED: the server's database may hold plaintext")
    return 0 if ok else 1


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("trim")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("seconds")
    p.set_defaults(run=cmd_trim)

    def common(p):
        p.add_argument("--decryptor", required=True, help="cipherpulse-decryptor binary")
        p.add_argument("--config", required=True, help="decryptor.toml")
        p.add_argument("--patients", required=True, help="patients file (see the top)")

    p = sub.add_parser("progress")
    p.add_argument("--patients", required=True, help="patients file (see the top)")
    p.add_argument("--decryptor-log", required=True, help="the running watch's log")
    p.add_argument("--channels", type=int, default=1, help="notification channels (0: none)")
    p.add_argument("--metrics", required=True, help="the server's /metrics URL")
    p.add_argument("--ca", required=True, help="CA certificate of the server")
    p.add_argument("--mail", required=True, help="directory of received e-mails")
    p.add_argument("--start", type=float, required=True, help="run start (Unix seconds)")
    p.add_argument("--until", type=float, required=True, help="end of measuring (Unix s)")
    p.add_argument("--drain", type=float, default=60,
                   help="then at most this many seconds until the edges ended, the last "
                        "windows sealed and every alert was delivered")
    p.add_argument("--window-s", type=float, default=10, help="window length (s)")
    p.add_argument("--grace-s", type=float, default=5, help="seal grace (s)")
    p.add_argument("--interval", type=float, default=5)
    p.add_argument("--process", action="append", default=[], metavar="NAME=PID",
                   help="a process that must stay up (repeatable)")
    p.add_argument("--edge", action="append", default=[], metavar="NAME=PID",
                   help="an edge that ends by itself after the measuring (repeatable)")
    p.set_defaults(run=cmd_progress)
    p = sub.add_parser("table")
    common(p)
    p.add_argument("--start-ms", type=int, required=True)
    p.set_defaults(run=cmd_table)
    p = sub.add_parser("mail")
    common(p)
    p.add_argument("--mail", required=True)
    p.set_defaults(run=cmd_mail)
    p = sub.add_parser("dbcheck")
    p.add_argument("db")
    p.set_defaults(run=cmd_dbcheck)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
