#!/usr/bin/env python3
"""Black-box tests of the three programs' key and ciphertext CLIs, run as real processes.

The Paillier arithmetic here is an independent textbook implementation with Python's big
integers (g = n + 1), so the programs are checked for interoperability with "any other
correct Paillier implementation", not against themselves.
"""

import argparse
import base64
import json
import math
import os
import secrets
import stat
import subprocess
import sys
import tempfile
import unittest

BIN_DIR = None


def b64u_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64u_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_int(text):
    return int.from_bytes(b64u_decode(text), "big")


class TextbookPaillier:
    """Paillier from p and q alone, as docs/formats.md tells another implementation to do."""

    def __init__(self, p, q):
        self.p, self.q = p, q
        self.n = p * q
        self.n2 = self.n * self.n
        self.lam = math.lcm(p - 1, q - 1)
        self.mu = pow(self.lam, -1, self.n)  # with g = n + 1, L(g^lambda) = lambda mod n
        self.ct_len = (self.n2.bit_length() + 7) // 8

    def encrypt(self, m):
        while True:
            r = secrets.randbelow(self.n)
            if r > 0 and math.gcd(r, self.n) == 1:
                break
        return (1 + (m % self.n) * self.n) * pow(r, self.n, self.n2) % self.n2

    def decrypt(self, c):
        return (pow(c, self.lam, self.n2) - 1) // self.n * self.mu % self.n

    def to_wire(self, c):
        return b64u_encode(c.to_bytes(self.ct_len, "big"))

    def from_wire(self, text):
        raw = b64u_decode(text)
        assert len(raw) == self.ct_len, (len(raw), self.ct_len)
        return int.from_bytes(raw, "big")


def run(program, args, stdin="", expect=0):
    proc = subprocess.run(
        [os.path.join(BIN_DIR, program)] + args,
        input=stdin, capture_output=True, text=True, timeout=300)
    if expect is not None and proc.returncode != expect:
        raise AssertionError(
            f"{program} {' '.join(args)} exited {proc.returncode}, expected {expect}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="cipherpulse-cli-")
        cls.keys = os.path.join(cls.tmp.name, "keys")
        out = run("cipherpulse-decryptor", ["keygen", "--bits", "2048", "--out", cls.keys])
        cls.keygen_stdout, cls.keygen_stderr = out.stdout, out.stderr
        with open(os.path.join(cls.keys, "paillier.key")) as f:
            priv = json.load(f)
        cls.ref = TextbookPaillier(b64u_int(priv["p"]), b64u_int(priv["q"]))
        cls.pub = os.path.join(cls.keys, "paillier.pub.json")
        cls.key = os.path.join(cls.keys, "paillier.key")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def mode(self, name):
        return stat.S_IMODE(os.stat(os.path.join(self.keys, name)).st_mode)

    def test_keygen_files_modes_and_progress(self):
        self.assertEqual(self.mode("paillier.key"), 0o600)
        self.assertEqual(self.mode("identity.pem"), 0o600)
        self.assertEqual(self.mode("paillier.pub.json"), 0o644)
        self.assertEqual(self.mode("identity.pub.pem"), 0o644)
        self.assertEqual(stat.S_IMODE(os.stat(self.keys).st_mode), 0o700)
        with open(self.pub) as f:
            pub = json.load(f)
        self.assertEqual(pub["kty"], "Paillier")
        self.assertNotIn("p", pub)
        self.assertEqual(b64u_int(pub["n"]), self.ref.n)
        self.assertEqual(self.ref.n.bit_length(), 2048)
        p, q = self.ref.p, self.ref.q
        self.assertEqual(p.bit_length(), q.bit_length())
        self.assertGreater(abs(p - q).bit_length(), 1024 - 100)
        # kid = base64url(SHA-256(n)), computed independently.
        import hashlib
        n_bytes = self.ref.n.to_bytes((self.ref.n.bit_length() + 7) // 8, "big")
        self.assertEqual(pub["kid"], b64u_encode(hashlib.sha256(n_bytes).digest()))
        self.assertIn("kid: " + pub["kid"], self.keygen_stdout)
        self.assertIn("generating 2048-bit Paillier key", self.keygen_stderr)
        self.assertIn("+", self.keygen_stderr)  # primes found
        # The identity is an unencrypted PKCS#8 Ed25519 key that OpenSSL reads on its own.
        identity = os.path.join(self.keys, "identity.pem")
        parsed = subprocess.run(["openssl", "pkey", "-in", identity, "-noout", "-text"],
                                capture_output=True, text=True, check=True)
        self.assertIn("ED25519 Private-Key", parsed.stdout)
        self.assertEqual(os.stat(identity).st_mode & 0o777, 0o600)

    def test_keygen_refuses_to_replace_and_small_sizes(self):
        out = run("cipherpulse-decryptor", ["keygen", "--bits", "2048", "--out", self.keys],
                  expect=2)
        self.assertIn("refusing to replace", out.stderr)
        out = run("cipherpulse-decryptor",
                  ["keygen", "--bits", "1024", "--out", os.path.join(self.tmp.name, "small")],
                  expect=2)
        self.assertIn("2048", out.stderr)

    def test_edge_ciphertexts_decrypt_with_independent_implementation(self):
        values = [0, 1, 72, 2**64 + 5, self.ref.n - 1]
        for mode in ("textbook", "fast"):
            out = run("cipherpulse-edge", ["encrypt", "--public-key", self.pub, "--mode", mode],
                      stdin="".join(f"{v}\n" for v in values))
            lines = out.stdout.split()
            self.assertEqual(len(lines), len(values))
            got = [self.ref.decrypt(self.ref.from_wire(x)) for x in lines]
            self.assertEqual(got, values, mode)
            # and with the decryptor
            out = run("cipherpulse-decryptor", ["decrypt", "--key", self.key], stdin=out.stdout)
            self.assertEqual([int(x) for x in out.stdout.split()], values)

    def test_independent_ciphertexts_decrypt_with_decryptor(self):
        values = [0, 5, 123456789, self.ref.n - 2]
        wire = "".join(self.ref.to_wire(self.ref.encrypt(v)) + "\n" for v in values)
        out = run("cipherpulse-decryptor", ["decrypt", "--key", self.key], stdin=wire)
        self.assertEqual([int(x) for x in out.stdout.split()], values)

    def test_signed_values(self):
        out = run("cipherpulse-edge", ["encrypt", "--public-key", self.pub], stdin="-5\n7\n")
        lines = out.stdout.split()
        self.assertEqual(self.ref.decrypt(self.ref.from_wire(lines[0])), self.ref.n - 5)
        dec = run("cipherpulse-decryptor", ["decrypt", "--key", self.key, "--signed"],
                  stdin=out.stdout)
        self.assertEqual(dec.stdout.split(), ["-5", "7"])

    def test_server_aggregate_is_the_homomorphic_sum(self):
        values = [70, 72, 75, 68, 90]
        enc = run("cipherpulse-edge", ["encrypt", "--public-key", self.pub],
                  stdin="".join(f"{v}\n" for v in values))
        # Program options may also follow the subcommand.
        agg = run("cipherpulse-server", ["aggregate", "--public-key", self.pub, "--log-level",
                                         "warn"], stdin=enc.stdout)
        self.assertEqual(len(agg.stdout.split()), 1)
        self.assertEqual(self.ref.decrypt(self.ref.from_wire(agg.stdout.strip())), sum(values))

    def test_invalid_ciphertexts_are_clear_errors(self):
        good = self.ref.to_wire(self.ref.encrypt(9))
        cases = {
            "zero": self.ref.to_wire(0),
            "n^2 - n (shares a factor)": self.ref.to_wire(self.ref.n2 - self.ref.n),
            "multiple of p": self.ref.to_wire(self.ref.p * 12345),
            "wrong length": b64u_encode(b"\x01" * 100),
            "padding": good[:-2] + "==",
            "not base64": "this is not a ciphertext",
        }
        for why, bad in cases.items():
            out = run("cipherpulse-decryptor", ["decrypt", "--key", self.key],
                      stdin=good + "\n" + bad + "\n", expect=2)
            self.assertIn("line 2", out.stderr, why)
            self.assertEqual(out.stdout.split(), ["9"], why)  # the good line was decrypted
            agg = run("cipherpulse-server", ["aggregate", "--public-key", self.pub],
                      stdin=bad + "\n", expect=2)
            self.assertIn("line 1", agg.stderr, why)
            self.assertEqual(agg.stdout, "")

    def test_bad_plaintexts_are_clear_errors(self):
        for bad in (str(self.ref.n), "12x", "", "-" + str(self.ref.n)):
            out = run("cipherpulse-edge", ["encrypt", "--public-key", self.pub],
                      stdin="1\n" + bad + "\n", expect=2)
            self.assertIn("line 2", out.stderr, bad)
            self.assertEqual(len(out.stdout.split()), 1)

    def test_readable_private_key_is_refused(self):
        copy = os.path.join(self.tmp.name, "loose.key")
        with open(self.key) as src, open(copy, "w") as dst:
            dst.write(src.read())
        os.chmod(copy, 0o644)
        out = run("cipherpulse-decryptor", ["decrypt", "--key", copy], stdin="", expect=2)
        self.assertIn("chmod 600", out.stderr)
        os.chmod(copy, 0o600)
        run("cipherpulse-decryptor", ["decrypt", "--key", copy], stdin="")

    def test_sealed_key_with_passphrase(self):
        keys = os.path.join(self.tmp.name, "sealed")
        passfile = os.path.join(self.tmp.name, "pass")
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"a long test passphrase\n")
        os.close(fd)
        run("cipherpulse-decryptor",
            ["keygen", "--bits", "2048", "--out", keys, "--passphrase-file", passfile])
        with open(os.path.join(keys, "paillier.key")) as f:
            doc = json.load(f)
        self.assertEqual(doc["kty"], "Paillier-sealed")
        self.assertNotIn("p", doc)
        pub = os.path.join(keys, "paillier.pub.json")
        key = os.path.join(keys, "paillier.key")
        enc = run("cipherpulse-edge", ["encrypt", "--public-key", pub], stdin="4242\n")
        out = run("cipherpulse-decryptor", ["decrypt", "--key", key], stdin=enc.stdout, expect=2)
        self.assertIn("passphrase", out.stderr)
        env = dict(os.environ, CP_TEST_PASS="wrong passphrase")
        wrong = subprocess.run(
            [os.path.join(BIN_DIR, "cipherpulse-decryptor"), "decrypt", "--key", key,
             "--passphrase-env", "CP_TEST_PASS"],
            input=enc.stdout, capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(wrong.returncode, 2)
        self.assertIn("wrong passphrase", wrong.stderr)
        out = run("cipherpulse-decryptor",
                  ["decrypt", "--key", key, "--passphrase-file", passfile], stdin=enc.stdout)
        self.assertEqual(out.stdout.split(), ["4242"])

    def test_usage_errors_exit_2(self):
        out = run("cipherpulse-decryptor", ["decrypt"], expect=2)
        self.assertIn("--key", out.stderr)
        run("cipherpulse-edge", ["encrypt", "--public-key", self.pub, "--mode", "slow"], expect=2)
        run("cipherpulse-decryptor", ["decrypt", "--key", self.key, "--passphrase-env", "A",
                                      "--passphrase-file", "B"], expect=2)
        out = run("cipherpulse-server", ["aggregate", "--public-key", self.pub], stdin="",
                  expect=2)
        self.assertIn("no ciphertexts", out.stderr)
        out = run("cipherpulse-decryptor", ["decrypt", "--key", "/nonexistent/key"], expect=1)
        self.assertIn("cannot open", out.stderr)

    def test_help_and_version(self):
        for program in ("cipherpulse-edge", "cipherpulse-server", "cipherpulse-decryptor"):
            out = run(program, ["--version"])
            self.assertRegex(out.stdout, r"^" + program + r" \d+\.\d+\.\d+")
            out = run(program, ["--help"])
            self.assertIn("Subcommands", out.stdout)
            run(program, [], expect=None)
            self.assertNotEqual(run(program, [], expect=None).returncode, 0)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PublishTest(unittest.TestCase):
    """keygen -> server init/serve -> publish: the server stores the signed key document and
    serves it unchanged, and it verifies against the identity."""

    def test_publish_signed_key(self):
        import time
        import urllib.request
        with tempfile.TemporaryDirectory(prefix="cipherpulse-publish-") as tmp:
            keys = os.path.join(tmp, "keys")
            run("cipherpulse-decryptor", ["keygen", "--bits", "2048", "--out", keys])
            port = free_port()
            config = os.path.join(tmp, "server.toml")
            with open(config, "w") as f:
                f.write(f'[server]\nlisten = "127.0.0.1:{port}"\n'
                        f'[storage]\ndatabase = "server.db"\n'
                        f'[keys]\nidentity_public_key = "{keys}/identity.pub.pem"\n')
            run("cipherpulse-server", ["--config", config, "init"])
            token = run("cipherpulse-server", ["--config", config, "token", "create", "--role",
                                               "decryptor"]).stdout.strip()
            token_file = os.path.join(tmp, "token")
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, (token + "\n").encode())
            os.close(fd)
            server = subprocess.Popen(
                [os.path.join(BIN_DIR, "cipherpulse-server"), "--config", config, "serve"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                url = f"http://127.0.0.1:{port}"
                for _ in range(300):
                    try:
                        urllib.request.urlopen(url + "/v1/health", timeout=1)
                        break
                    except OSError:
                        time.sleep(0.02)
                out = run("cipherpulse-decryptor", ["publish", "--keys", keys, "--server", url,
                                                    "--token-file", token_file])
                with open(os.path.join(keys, "paillier.pub.json")) as f:
                    kid = json.load(f)["kid"]
                self.assertIn(f"published key {kid} (new, now active)", out.stdout)
                again = run("cipherpulse-decryptor", ["publish", "--keys", keys, "--server", url,
                                                      "--token-file", token_file])
                self.assertIn("already active", again.stdout)
                active = json.load(urllib.request.urlopen(url + "/v1/keys/active", timeout=5))
                self.assertEqual(active["kid"], kid)
                header, payload, _ = active["jws"].split(".")
                self.assertEqual(json.loads(b64u_decode(header))["alg"], "EdDSA")
                self.assertEqual(json.loads(b64u_decode(payload))["kid"], kid)
                env = dict(os.environ, CP_BAD_TOKEN="cpt_" + "A" * 43)
                bad = subprocess.run(
                    [os.path.join(BIN_DIR, "cipherpulse-decryptor"), "publish", "--keys", keys,
                     "--server", url, "--token-env", "CP_BAD_TOKEN"],
                    capture_output=True, text=True, env=env, timeout=60)
                self.assertEqual(bad.returncode, 2, bad.stderr)
                self.assertIn("refused", bad.stderr)
            finally:
                server.terminate()
                self.assertEqual(server.wait(timeout=30), 0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    args, rest = parser.parse_known_args()
    BIN_DIR = os.path.abspath(args.bin_dir)
    unittest.main(argv=[sys.argv[0], "-v"] + rest)
