#!/usr/bin/env python3
"""Cohort statistics as their users run them: real processes over TLS on loopback.

Six edges replay recordings of a constant heart rate each (62, 72, ..., 112 bpm, one sample
a second) into a server with 10 s windows; the decryptor's `watch` runs beside it. An
analyst asks with `cipherpulse-analyst request`, an approver signs with
`cipherpulse-decryptor queries approve`, `watch` releases, and `cipherpulse-analyst result`
opens the sealed release. Because every patient's rate is constant and the edges ran through
the whole range, the exact figures are known in advance: each patient's histogram bin holds
one sample per second of the range, and mean, sd and shares follow. The test then checks
noised releases, refusals, roles and a result the server swapped.
"""

import argparse
import json
import math
import os
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proc_support import free_port, run_program  # noqa: E402

BIN_DIR = None
RATES = [62, 72, 82, 92, 102, 112]
RUN_S = 42  # seconds of recording each edge replays in real time


def run(program, args, expect=0, timeout=120):
    return run_program(BIN_DIR, program, args, expect=expect, timeout=timeout)


def write_secret(path, text):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(text + "\n")


class CohortCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="cipherpulse-cohort-")
        d = cls.dir = cls.tmp.name
        cls.procs = []
        try:
            cls._set_up(d)
        except BaseException:
            cls._stop_all()
            cls.tmp.cleanup()
            raise

    @classmethod
    def _set_up(cls, d):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
                        "-keyout", os.path.join(d, "tls.key"), "-out",
                        os.path.join(d, "tls.crt")], check=True, capture_output=True)
        ca = os.path.join(d, "tls.crt")
        run("cipherpulse-decryptor", ["keygen", "--bits", "2048", "--out",
                                      os.path.join(d, "keys")])
        cls.port = free_port()
        url = f"https://127.0.0.1:{cls.port}"
        with open(os.path.join(d, "server.toml"), "w") as f:
            f.write(f'[server]\nlisten = "127.0.0.1:{cls.port}"\ntls_cert = "tls.crt"\n'
                    f'tls_key = "tls.key"\n[storage]\ndatabase = "server.db"\n'
                    f'[ingest]\ngranularities = ["10s"]\nseal_grace_s = {{ "10s" = 3 }}\n'
                    f'[keys]\nidentity_public_key = "keys/identity.pub.pem"\n')
        cls.server_config = ["--config", os.path.join(d, "server.toml")]
        write_secret(os.path.join(d, "admin.token"),
                     run("cipherpulse-server", cls.server_config + ["init"]).stdout.strip())
        for role, label in [("decryptor", "decryptor"), ("analyst", "alice"),
                            ("analyst", "bob")]:
            token = run("cipherpulse-server", cls.server_config +
                        ["token", "create", "--role", role, "--label", label]).stdout.strip()
            write_secret(os.path.join(d, f"{label}.token"), token)
        ids = {}
        for line in run("cipherpulse-server",
                        cls.server_config + ["token", "list"]).stdout.splitlines()[1:]:
            cols = line.split("\t")
            ids[cols[5]] = cols[0]
        cls.server = cls._start("server", ["cipherpulse-server"] + cls.server_config + ["serve"])
        context = ssl.create_default_context(cafile=ca)
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/v1/health", timeout=1, context=context)
                break
            except OSError:
                time.sleep(0.05)
        run("cipherpulse-decryptor", ["publish", "--keys", os.path.join(d, "keys"), "--server",
                                      url, "--ca-file", ca, "--token-file",
                                      os.path.join(d, "decryptor.token")])
        # Analysts: a result key each, registered with their token.
        cls.analyst = {}
        for label in ["alice", "bob"]:
            adir = os.path.join(d, label)
            os.makedirs(adir)
            with open(os.path.join(adir, "analyst.toml"), "w") as f:
                f.write(f'[server]\nurl = "{url}"\nca_file = "{ca}"\n'
                        f'token_file = "../{label}.token"\ntimeout_s = 10\n')
            cls.analyst[label] = ["--config", os.path.join(adir, "analyst.toml")]
            out = run("cipherpulse-analyst", cls.analyst[label] +
                      ["init", "--decryptor-identity",
                       os.path.join(d, "keys", "identity.pub.pem")]).stdout
            assert "cipherpulse-server analyst key" in out, out
            run("cipherpulse-server", cls.server_config +
                ["analyst", "key", "--token-id", ids[label], "--public-key",
                 os.path.join(adir, "keys", "analyst.pub.pem")])
        # Patients: six edges replaying a constant rate each.
        cls.patients = [f"p-{i + 1}" for i in range(len(RATES))]
        for p, bpm in zip(cls.patients, RATES):
            edir = os.path.join(d, "edges", p)
            run("cipherpulse-edge", ["init", "--device-id", f"edge-{p}", "--server", url,
                                     "--ca-file", ca, "--identity",
                                     os.path.join(d, "keys", "identity.pub.pem"), "--dir", edir])
            run("cipherpulse-server", cls.server_config +
                ["device", "add", "--id", f"edge-{p}", "--patient", p, "--public-key",
                 os.path.join(edir, "device.pub.pem")])
            with open(os.path.join(edir, "rate.csv"), "w") as f:
                f.write("t_seconds,bpm\n")
                for t in range(RUN_S):
                    f.write(f"{t},{bpm}\n")
            with open(os.path.join(edir, "edge.toml")) as f:
                conf = f.read().split("[source]")[0]
            with open(os.path.join(edir, "edge.toml"), "w") as f:
                f.write(conf + '[source]\nkind = "replay"\npath = "rate.csv"\nspeed = 1.0\n'
                        '[upload]\nbatch_size = 2\n[logging]\nlevel = "warn"\n')
        run("cipherpulse-server", cls.server_config +
            ["cohort", "add", "ward"] + sum((["--patient", p] for p in cls.patients), []))
        run("cipherpulse-server", cls.server_config +
            ["cohort", "add", "small", "--patient", "p-1", "--patient", "p-2", "--patient", "p-3"])
        # The decryptor: k = 5 (the floor), exact releases allowed for the test.
        with open(os.path.join(d, "decryptor.toml"), "w") as f:
            f.write(f'[key]\nprivate_key = "keys/paillier.key"\n'
                    f'[server]\nurl = "{url}"\nca_file = "tls.crt"\n'
                    f'token_file = "decryptor.token"\n'
                    f'[watch]\ndatabase = "decryptor.db"\ngranularity = "10s"\n'
                    f'poll_interval_s = 0.5\n'
                    f'[cohort]\nidentity_key = "keys/identity.pem"\nmin_patients = 5\n'
                    f'budget_epsilon = "3"\nallow_without_noise = true\n')
        cls.decryptor_config = ["--config", os.path.join(d, "decryptor.toml")]
        cls.approver = os.path.join(d, "approver.pem")
        run("cipherpulse-decryptor", ["approver", "keygen", "--out", cls.approver])
        run("cipherpulse-decryptor", ["approver", "add"] + cls.decryptor_config +
            ["--name", "data-admin", "--public-key", os.path.join(d, "approver.pub.pem")])
        cls.watch = cls._start("watch", ["cipherpulse-decryptor", "watch"] +
                               cls.decryptor_config)
        start = time.time()
        edges = [cls._start(f"edge-{p}", ["cipherpulse-edge", "run", "--config",
                                          os.path.join(d, "edges", p, "edge.toml")])
                 for p in cls.patients]
        for e in edges:
            assert e.wait(timeout=RUN_S + 60) == 0, f"an edge exited {e.returncode}"
        end = time.time()
        # The range: whole 10 s windows during which every edge was replaying, with a
        # margin for process start-up.
        cls.from_ms = (int((start + 4) * 1000) // 10000 + 1) * 10000
        cls.to_ms = (int((end - 2) * 1000) // 10000) * 10000
        assert cls.to_ms - cls.from_ms >= 10000, (cls.from_ms, cls.to_ms)
        time.sleep(max(0.0, cls.to_ms / 1000 + 4 - time.time()))  # sealed after the grace

    @classmethod
    def _start(cls, name, argv):
        log = open(os.path.join(cls.dir, f"{name}.log"), "w")
        proc = subprocess.Popen([os.path.join(BIN_DIR, argv[0])] + argv[1:],
                                stdout=log, stderr=subprocess.STDOUT)
        cls.procs.append((proc, log))
        return proc

    @classmethod
    def _stop_all(cls):
        for proc, log in reversed(cls.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()

    @classmethod
    def tearDownClass(cls):
        cls._stop_all()
        codes = {proc.args[0]: proc.returncode for proc, _ in cls.procs}
        cls.tmp.cleanup()
        assert all(c == 0 for c in codes.values()), f"exit codes {codes}"

    # -----------------------------------------------------------------------------------
    def request(self, who, *args, expect=0):
        out = run("cipherpulse-analyst", self.analyst[who] +
                  ["request", "--from", str(self.from_ms), "--to", str(self.to_ms),
                   "--format", "json"] + list(args), expect=expect)
        return json.loads(out.stdout) if expect == 0 else out

    def approve(self, query_id):
        run("cipherpulse-decryptor", ["queries", "approve", query_id] + self.decryptor_config +
            ["--key", self.approver, "--reason", "test"])

    def release(self, who, query_id, expect=0):
        run("cipherpulse-analyst", self.analyst[who] +
            ["wait", query_id, "--timeout", "60", "--interval", "0.2"], expect=expect)

    def result(self, who, query_id, fmt="json", expect=0):
        out = run("cipherpulse-analyst", self.analyst[who] +
                  ["result", query_id, "--format", fmt], expect=expect)
        return json.loads(out.stdout) if fmt == "json" and expect == 0 else out

    def queries_in_db(self):
        db = sqlite3.connect(f"file:{os.path.join(self.dir, 'server.db')}?mode=ro", uri=True)
        try:
            return db.execute("SELECT COUNT(*) FROM queries").fetchone()[0]
        finally:
            db.close()

    # -----------------------------------------------------------------------------------
    def test_1_exact_release_equals_the_figures_computed_in_clear(self):
        asked = self.request("alice", "--cohort", "ward", "--no-noise", "--statistic", "count",
                             "--statistic", "mean", "--statistic", "sd",
                             "--statistic", "histogram", "--statistic", "share_above:100",
                             "--purpose", "exactness check")
        self.assertEqual(asked["status"], "pending")
        self.assertEqual(asked["cohort_size"], 6)
        self.assertEqual(asked["patients_with_data"], 6)
        self.approve(asked["id"])
        self.release("alice", asked["id"])
        r = self.result("alice", asked["id"])
        figures = {f["name"]: f for f in r["figures"]}
        seconds = (self.to_ms - self.from_ms) // 1000
        # One sample per second per patient, each patient in the bin of its rate.
        for bpm in RATES:
            lo = bpm // 5 * 5
            self.assertEqual(figures[f"bin_{lo}_{lo + 5}"]["value"], seconds, bpm)
        self.assertEqual(sum(f["value"] for n, f in figures.items() if n.startswith("bin_")),
                         seconds * len(RATES))
        self.assertEqual(figures["samples"]["value"], seconds * len(RATES))
        self.assertEqual(figures["records"]["value"], seconds // 5 * len(RATES))
        self.assertEqual(figures["patients_with_data"]["value"], 6)
        mean = sum(RATES) / len(RATES)
        n = seconds * len(RATES)  # the sample standard deviation over all samples
        sd = math.sqrt(sum((b - mean) ** 2 for b in RATES) * seconds / (n - 1))
        # Released to 2 decimals (bpm) and 4 (shares).
        self.assertAlmostEqual(figures["mean_bpm"]["value"], mean, delta=0.005)
        self.assertAlmostEqual(figures["sd_bpm"]["value"], sd, delta=0.005)
        self.assertAlmostEqual(figures["share_at_or_above_100"]["value"], 2 / 6, delta=0.00005)
        self.assertEqual(r["noise"], "none")
        self.assertIsNone(figures["mean_bpm"]["interval95"])
        # The same release as csv and as a table.
        csv = self.result("alice", asked["id"], fmt="csv").stdout.splitlines()
        self.assertEqual(csv[0], "figure,statistic,value,unit,interval95_low,interval95_high,"
                                 "scale")
        self.assertIn(f"samples,count,{seconds * len(RATES)},samples,,,", csv)
        table = self.result("alice", asked["id"], fmt="table").stdout
        self.assertIn("no noise: the figures are exact", table)
        self.assertIn("cohort 'ward', 6 members, 6 with data", table)

    def test_2_noised_release_states_scales_and_intervals_and_spends_budget(self):
        asked = self.request("alice", "--cohort", "ward", "--epsilon", "1",
                             "--statistic", "count", "--statistic", "mean")
        self.assertEqual(asked["epsilon"], "1")
        self.approve(asked["id"])
        self.release("alice", asked["id"])
        r = self.result("alice", asked["id"])
        self.assertEqual(r["noise"], "discrete-laplace")
        self.assertEqual(r["epsilon"], "1")
        figures = {f["name"]: f for f in r["figures"]}
        samples = figures["samples"]
        self.assertIsNotNone(samples["scale"])
        lo, hi = samples["interval95"]
        self.assertLessEqual(lo, samples["value"])
        self.assertLessEqual(samples["value"], hi)
        self.assertEqual(samples["value"], int(samples["value"]))  # integer noise
        table = self.result("alice", asked["id"], fmt="table").stdout
        self.assertIn("epsilon 1, discrete Laplace noise", table)
        budget = json.loads(run("cipherpulse-analyst", self.analyst["alice"] +
                                ["budget", "--format", "json"]).stdout)
        self.assertEqual(budget["spent"], "1")
        # The decryptor's budget here is 3: a request for 2.5 more is refused at release.
        over = self.request("alice", "--cohort", "ward", "--epsilon", "2.5",
                            "--statistic", "mean")
        self.approve(over["id"])
        self.release("alice", over["id"], expect=3)
        out = self.result("alice", over["id"], expect=3)
        self.assertIn("privacy budget does not allow it", out.stderr)

    def test_3_a_cohort_below_k_is_refused_with_its_reason(self):
        asked = self.request("alice", "--cohort", "small", "--no-noise", "--statistic", "mean")
        self.approve(asked["id"])
        out = run("cipherpulse-analyst", self.analyst["alice"] +
                  ["wait", asked["id"], "--timeout", "60", "--interval", "0.2"], expect=3)
        self.assertIn("refused", out.stdout)
        self.assertIn("only 3 patients", out.stdout)

    def test_4_another_analyst_cannot_read_a_query_or_its_result(self):
        asked = self.request("alice", "--cohort", "ward", "--no-noise", "--statistic", "count")
        out = run("cipherpulse-analyst", self.analyst["bob"] + ["status", asked["id"]], expect=2)
        self.assertIn("403", out.stderr)
        out = self.result("bob", asked["id"], expect=2)
        self.assertIn("403", out.stderr)

    def test_5_bad_requests_are_refused_and_store_nothing(self):
        before = self.queries_in_db()
        out = self.request("alice", "--cohort", "ward", "--epsilon", "1", "--statistic",
                           "median", expect=2)
        self.assertIn("unknown-statistic", out.stderr)
        out = self.request("alice", "--cohort", "nobody", "--epsilon", "1", "--statistic",
                           "mean", expect=2)
        self.assertIn("404", out.stderr)
        out = run("cipherpulse-analyst", self.analyst["alice"] +
                  ["request", "--cohort", "ward", "--from", "2026-02-30", "--to", "now",
                   "--statistic", "mean", "--epsilon", "1"], expect=2)
        self.assertIn("is not a time", out.stderr)
        self.assertEqual(self.queries_in_db(), before)

    def test_6_a_result_swapped_by_the_server_does_not_open_as_another_query(self):
        a = self.request("alice", "--cohort", "ward", "--no-noise", "--statistic", "count")
        b = self.request("alice", "--cohort", "ward", "--no-noise", "--statistic", "mean")
        self.approve(a["id"])
        self.release("alice", a["id"])
        # A curious server hands query a's sealed release out as the release of b.
        db = sqlite3.connect(os.path.join(self.dir, "server.db"), timeout=10)
        try:
            with db:
                db.execute("UPDATE queries SET status = 'released', result = "
                           "(SELECT result FROM queries WHERE id = ?) WHERE id = ?",
                           (a["id"], b["id"]))
        finally:
            db.close()
        out = self.result("alice", b["id"], expect=1)
        self.assertIn("INTEGRITY", out.stderr)
        self.assertIn("not the result of query " + b["id"], out.stderr)

    def test_7_every_transition_is_in_the_audit_chain_and_the_chain_verifies(self):
        db = sqlite3.connect(f"file:{os.path.join(self.dir, 'server.db')}?mode=ro", uri=True)
        try:
            actions = dict(db.execute("SELECT action, COUNT(*) FROM audit WHERE action LIKE "
                                      "'query.%' GROUP BY action").fetchall())
            queries = db.execute("SELECT COUNT(*) FROM queries").fetchone()[0]
        finally:
            db.close()
        self.assertEqual(actions.get("query.request"), queries)
        self.assertGreaterEqual(actions.get("query.decision", 0), 5)
        self.assertGreaterEqual(actions.get("query.release", 0), 3)
        self.assertGreaterEqual(actions.get("query.refuse", 0), 2)  # over budget, too small
        run("cipherpulse-server", self.server_config + ["audit", "verify"])

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    args, rest = parser.parse_known_args()
    BIN_DIR = args.bin_dir
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
