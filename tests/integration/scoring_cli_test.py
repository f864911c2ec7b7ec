#!/usr/bin/env python3
"""Risk scoring as its users run it: real processes over TLS on loopback.

The model owner trains with `cipherpulse-server model train`, the operator stores the model,
the server serves it over HTTPS, and the hospital scores the Cleveland table with
`cipherpulse-decryptor score`. Every encrypted result must equal the owner's plaintext
fixed-point prediction (`model predict`) to the last printed digit; bad input must be refused
naming its row and column before anything is sent.
"""

import argparse
import csv
import json
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import ssl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proc_support import free_port, run_program  # noqa: E402

BIN_DIR = None
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLEVELAND = os.path.join(REPO, "..", "shared", "data", "real", "heart_cleveland.csv")


def run(program, args, expect=0, timeout=300):
    return run_program(BIN_DIR, program, args, expect=expect, timeout=timeout)


class ScoringCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="cipherpulse-scoring-")
        d = cls.dir = cls.tmp.name
        cls.model = os.path.join(d, "model.json")
        cls.train = run("cipherpulse-server", ["model", "train", "--data", CLEVELAND,
                                               "--out", cls.model])
        # The rows the model can score: the table without its 6 rows with a missing value.
        with open(CLEVELAND) as f:
            rows = list(csv.reader(f))
        cls.header, cls.rows = rows[0], [r for r in rows[1:] if "?" not in r]
        cls.patients = cls.write_csv("patients.csv", cls.rows)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
                        "-keyout", os.path.join(d, "tls.key"), "-out",
                        os.path.join(d, "tls.crt")], check=True, capture_output=True)
        cls.port = free_port()
        with open(os.path.join(d, "server.toml"), "w") as f:
            f.write(f'[server]\nlisten = "127.0.0.1:{cls.port}"\ntls_cert = "tls.crt"\n'
                    f'tls_key = "tls.key"\n[storage]\ndatabase = "server.db"\n'
                    f'[scoring]\nrows_per_day = 700\n')
        cls.server_config = ["--config", os.path.join(d, "server.toml")]
        run("cipherpulse-server", cls.server_config + ["init"])
        token = run("cipherpulse-server",
                    cls.server_config + ["token", "create", "--role", "clinician"]).stdout.strip()
        token_file = os.path.join(d, "clinician.token")
        with open(os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(token + "\n")
        run("cipherpulse-server", cls.server_config + ["model", "add", "--file", cls.model])
        cls.server = subprocess.Popen(
            [os.path.join(BIN_DIR, "cipherpulse-server")] + cls.server_config + ["serve"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        context = ssl.create_default_context(cafile=os.path.join(d, "tls.crt"))
        for _ in range(200):
            try:
                urllib.request.urlopen(f"https://127.0.0.1:{cls.port}/v1/health", timeout=1,
                                       context=context)
                break
            except OSError:
                time.sleep(0.05)
        with open(os.path.join(d, "decryptor.toml"), "w") as f:
            f.write(f'[server]\nurl = "https://127.0.0.1:{cls.port}"\nca_file = "tls.crt"\n'
                    f'token_file = "clinician.token"\n[scoring]\nkey = "keys/scoring.key"\n')
        cls.decryptor_config = ["--config", os.path.join(d, "decryptor.toml")]

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        code = cls.server.wait(timeout=30)
        cls.tmp.cleanup()
        assert code == 0, f"server exited {code}"

    @classmethod
    def write_csv(cls, name, rows, header=None):
        path = os.path.join(cls.dir, name)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header or cls.header)
            w.writerows(rows)
        return path

    def audit_count(self, action):
        db = sqlite3.connect(f"file:{os.path.join(self.dir, 'server.db')}?mode=ro", uri=True)
        try:
            return db.execute("SELECT COUNT(*) FROM audit WHERE action = ?", (action,)).fetchone()[0]
        finally:
            db.close()

    def test_1_training_prints_the_metrics_it_stores(self):
        with open(self.model) as f:
            model = json.load(f)
        cv = model["metrics"]["cross_validation"]
        self.assertIn(f"accuracy {cv['accuracy']:.3f}  AUC {cv['auc']:.3f}", self.train.stdout)
        self.assertEqual(model["training"]["rows_used"], 297)
        self.assertEqual(len(model["fixed_point"]["weights"]), 20)

    def test_2_encrypted_scores_equal_the_plaintext_model_on_every_row(self):
        expected = run("cipherpulse-server", ["model", "predict", "--model", self.model,
                                              "--input", self.patients, "--format", "csv"])
        before = self.audit_count("model.score")
        packed = run("cipherpulse-decryptor", ["score"] + self.decryptor_config +
                     ["--model", "heart-cleveland-lr", "--input", self.patients,
                      "--format", "csv"])
        self.assertEqual(packed.stdout, expected.stdout)
        self.assertEqual(len(packed.stdout.splitlines()), 298)
        self.assertIn("scored 297 row(s)", packed.stderr)
        self.assertIn("(packed)", packed.stderr)
        self.assertIn("generating a 2048-bit Paillier key", packed.stderr)
        key = os.path.join(self.dir, "keys", "scoring.key")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        # One at a time, JSON: the same probabilities, and a second run reuses the key.
        few = self.write_csv("few.csv", self.rows[:12])
        one_by_one = run("cipherpulse-decryptor", ["score"] + self.decryptor_config +
                         ["--model", "heart-cleveland-lr", "--input", few, "--pack", "never",
                          "--format", "json"])
        self.assertNotIn("generating", one_by_one.stderr)
        doc = json.loads(one_by_one.stdout)
        self.assertFalse(doc["packed"])
        want = [line.split(",") for line in expected.stdout.splitlines()[1:13]]
        for got, row in zip(doc["rows"], want):
            self.assertAlmostEqual(got["probability"], float(row[1]), places=6)
            self.assertEqual(got["risk"], row[2])
        self.assertEqual(self.audit_count("model.score"), before + 2)

    def test_3_bad_input_is_refused_naming_row_and_column_and_nothing_is_sent(self):
        before = self.audit_count("model.score")
        rows = [list(r) for r in self.rows[:4]]
        rows[2][self.header.index("chol")] = "900"
        bad = self.write_csv("bad.csv", rows)
        proc = run("cipherpulse-decryptor", ["score"] + self.decryptor_config +
                   ["--model", "heart-cleveland-lr", "--input", bad], expect=2)
        self.assertIn("row 3", proc.stderr)
        self.assertIn("'chol'", proc.stderr)
        self.assertIn("nothing was sent", proc.stderr)
        missing = self.write_csv("missing.csv", [r[:4] for r in self.rows[:2]],
                                 header=self.header[:4])
        proc = run("cipherpulse-decryptor", ["score"] + self.decryptor_config +
                   ["--model", "heart-cleveland-lr", "--input", missing], expect=2)
        self.assertIn("missing value", proc.stderr)
        proc = run("cipherpulse-decryptor", ["score"] + self.decryptor_config +
                   ["--model", "nope", "--input", self.patients], expect=2)
        self.assertIn("no model 'nope'", proc.stderr)
        self.assertEqual(self.audit_count("model.score"), before)

    def test_4_budget_exhausted_is_a_clear_refusal(self):
        # 700 rows a day: the runs above used 309; two full tables more exceed it.
        run("cipherpulse-decryptor", ["score"] + self.decryptor_config +
            ["--model", "heart-cleveland-lr", "--input", self.patients])
        proc = run("cipherpulse-decryptor", ["score"] + self.decryptor_config +
                   ["--model", "heart-cleveland-lr", "--input", self.patients], expect=1)
        self.assertIn("429", proc.stderr)
        self.assertIn("left today", proc.stderr)
        self.assertGreaterEqual(self.audit_count("model.score-refused"), 1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    args, rest = parser.parse_known_args()
    BIN_DIR = os.path.abspath(args.bin_dir)
    unittest.main(argv=[sys.argv[0], "-v"] + rest)
