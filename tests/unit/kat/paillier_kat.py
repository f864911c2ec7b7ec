#!/usr/bin/env python3
"""Known-answer test vectors for cipherpulse's Paillier implementation.

An independent computation: Python 3 built-in integers and the standard library
only, no code from the C++ project. Output is JSON on stdout:

    python3 tests/unit/kat/paillier_kat.py > tests/unit/kat/paillier_kat.json

The C++ test tests/unit/paillier_kat_test.cpp reads that JSON. Every big integer
in it is a DECIMAL string (so the C++ side parses it with its own decimal
parser); the *_b64u and kid fields are base64url strings.

Formulas (the project design notes, sections "Crypto choices" and "Formats"):

Key generation
    p, q  primes of exactly bits/2 bits each, with the top two bits set (so
          n = p*q has exactly `bits` bits), odd, p != q. Primality: trial
          division by the primes below 2000, then 40 Miller-Rabin rounds with
          bases drawn from the seeded RNG. Also gcd(n, (p-1)(q-1)) == 1.
    n     p * q;  g = n + 1;  n2 = n^2.
    lambda = lcm(p-1, q-1)
    mu     = L(g^lambda mod n^2)^(-1) mod n,   L(u) = (u - 1) // n

Decryption (used to check every ciphertext written out)
    m = L(c^lambda mod n^2) * mu mod n

Textbook encryption
    r in [1, n) with gcd(r, n) = 1
    c = (1 + m*n) * r^n mod n^2

DJN fast-mode encryption (Damgard-Jurik-Nielsen randomness)
    x in [1, n) with gcd(x, n) = 1
    h  = -(x*x) mod n
    hs = h^n mod n^2
    a  an exponent of exactly ceil(bits/2) bits (top bit set)
    c  = (1 + m*n) * hs^a mod n^2

Homomorphic operations (results must decrypt to the stated plaintext)
    add        c1 * c2 mod n^2                         -> (m1 + m2) mod n
    add_plain  c1 * (1 + m2*n) mod n^2                 -> (m1 + m2) mod n
    scalar     k >= 0: c1^k mod n^2                    -> (k * m1) mod n
               k <  0: (c1^(-1) mod n^2)^|k| mod n^2   -> (k * m1) mod n

Signed encoding: a negative integer v is represented as the plaintext n - |v|.

Encodings (base64url WITHOUT padding, RFC 4648 section 5)
    n_b64u   base64url of the minimal unsigned big-endian bytes of n
    kid      base64url(SHA-256(minimal big-endian bytes of n)), 43 chars
    c_b64u   base64url of exactly Lc bytes, big-endian, left-padded with zeros,
             where Lc = ceil(bit_length(n^2) / 8)

Randomness: everything comes from random.Random(SEED). That is a Mersenne
Twister and NOT a cryptographically secure generator -- fine here because this
is deterministic test data, never real keys. Only getrandbits() is used (our
own rejection sampling on top), so the output does not depend on how a given
Python version implements randrange().
"""

import base64
import hashlib
import json
import math
import random
import sys

SEED = 20240917
SIZES = (512, 1024, 2048)
MR_ROUNDS = 40
GENERATOR = "tests/unit/kat/paillier_kat.py"

# random.Random: deterministic test data only, NOT a CSPRNG.
rng = random.Random(SEED)


# ---------------------------------------------------------------- helpers

def randbelow(limit):
    """Uniform integer in [0, limit) by rejection sampling on getrandbits."""
    assert limit > 0
    k = limit.bit_length()
    while True:
        v = rng.getrandbits(k)
        if v < limit:
            return v


def rand_range(lo, hi):
    """Uniform integer in [lo, hi)."""
    return lo + randbelow(hi - lo)


def rand_unit(n):
    """Uniform r in [1, n) with gcd(r, n) == 1."""
    while True:
        r = rand_range(1, n)
        if math.gcd(r, n) == 1:
            return r


SMALL_PRIMES = [p for p in range(3, 2000)
                if all(p % d for d in range(2, math.isqrt(p) + 1))]


def is_probable_prime(w):
    """Trial division, then MR_ROUNDS Miller-Rabin rounds, bases from rng."""
    if w < 2:
        return False
    if w % 2 == 0:
        return w == 2
    for sp in SMALL_PRIMES:
        if w % sp == 0:
            return w == sp
    d, s = w - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(MR_ROUNDS):
        b = rand_range(2, w - 1)          # base in [2, w-2]
        y = pow(b, d, w)
        if y == 1 or y == w - 1:
            continue
        for _ in range(s - 1):
            y = y * y % w
            if y == w - 1:
                break
        else:
            return False
    return True


def gen_prime(k):
    """Probable prime of exactly k bits with the top two bits set, odd."""
    while True:
        c = rng.getrandbits(k) | (0b11 << (k - 2)) | 1
        if is_probable_prime(c):
            assert c.bit_length() == k
            return c


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def minimal_bytes(v):
    assert v > 0
    return v.to_bytes((v.bit_length() + 7) // 8, "big")


def s(v):
    """Big integer -> decimal string."""
    return str(v)


# ---------------------------------------------------------------- Paillier

class Key:
    def __init__(self, bits):
        half = bits // 2
        assert bits % 2 == 0
        while True:
            p = gen_prime(half)
            q = gen_prime(half)
            if p == q:
                continue
            n = p * q
            if math.gcd(n, (p - 1) * (q - 1)) != 1:
                continue
            break
        assert n.bit_length() == bits
        self.bits, self.p, self.q, self.n = bits, p, q, n
        self.n2 = n * n
        self.g = n + 1
        self.lam = (p - 1) * (q - 1) // math.gcd(p - 1, q - 1)
        self.mu = pow(self.L(pow(self.g, self.lam, self.n2)), -1, n)
        self.clen = (self.n2.bit_length() + 7) // 8

    def L(self, u):
        return (u - 1) // self.n

    def decrypt(self, c):
        assert 0 < c < self.n2 and math.gcd(c, self.n) == 1
        m = self.L(pow(c, self.lam, self.n2)) * self.mu % self.n
        # Second, independent path: CRT decryption mod p^2 and q^2 with
        # g = n+1, checking the first.
        assert m == self.decrypt_crt(c)
        return m

    def decrypt_crt(self, c):
        p, q, n = self.p, self.q, self.n
        mp = (pow(c, p - 1, p * p) - 1) // p * pow(q * (p - 1), -1, p) % p
        mq = (pow(c, q - 1, q * q) - 1) // q * pow(p * (q - 1), -1, q) % q
        return (mp + p * ((mq - mp) * pow(p, -1, q) % q)) % n

    def encode_ct(self, c):
        assert 0 <= c < self.n2
        return b64u(c.to_bytes(self.clen, "big"))

    def check(self, c, m):
        assert 0 <= m < self.n
        assert self.decrypt(c) == m, "ciphertext does not decrypt to expected m"


def textbook_case(key, m, signed=None):
    n, n2 = key.n, key.n2
    r = rand_unit(n)
    c = (1 + m * n) * pow(r, n, n2) % n2
    key.check(c, m)
    case = {"m": s(m), "r": s(r), "c": s(c), "c_b64u": key.encode_ct(c)}
    if signed is not None:
        case["signed"] = s(signed)
    return case, c, m


def build_vector(bits):
    key = Key(bits)
    n, n2 = key.n, key.n2

    # --- textbook encryption
    textbook = []
    ct = {}  # label -> (c, m)
    for label, m, signed in (("zero", 0, None),
                             ("one", 1, None),
                             ("max", n - 1, None),
                             ("rand", randbelow(n), None),
                             ("neg5", n - 5, -5)):
        case, c, mm = textbook_case(key, m, signed)
        textbook.append(case)
        ct[label] = (c, mm)

    # --- DJN fast mode
    x = rand_unit(n)
    h = (-(x * x)) % n
    hs = pow(h, n, n2)
    abits = (bits + 1) // 2            # ceil(bits(n) / 2)
    djn_cases = []
    for m in (0, 1, randbelow(n), n - 1):
        a = rng.getrandbits(abits - 1) | (1 << (abits - 1))
        assert a.bit_length() == abits
        c = (1 + m * n) * pow(hs, a, n2) % n2
        key.check(c, m)
        djn_cases.append({"m": s(m), "a": s(a), "c": s(c)})

    # --- homomorphic addition of two ciphertexts
    add = []
    for l1, l2 in (("one", "rand"), ("rand", "max"), ("neg5", "one"),
                   ("max", "one"), ("rand", "neg5")):
        (c1, m1), (c2, m2) = ct[l1], ct[l2]
        c = c1 * c2 % n2
        m = (m1 + m2) % n
        key.check(c, m)
        add.append({"c1": s(c1), "c2": s(c2), "c": s(c), "m": s(m)})

    # --- addition of a plaintext
    add_plain = []
    for l1, m2 in (("rand", 12345), ("one", n - 3), ("max", 1),
                   ("zero", randbelow(n))):
        c1, m1 = ct[l1]
        c = c1 * (1 + m2 * n) % n2
        m = (m1 + m2) % n
        key.check(c, m)
        add_plain.append({"c1": s(c1), "m2": s(m2), "c": s(c), "m": s(m)})

    # --- multiplication by a (signed) scalar
    scalar = []
    for l1, k in (("rand", 0), ("rand", 1), ("rand", 72), ("rand", -3),
                  ("neg5", -3), ("one", n - 7), ("rand", n - 7)):
        c1, m1 = ct[l1]
        if k >= 0:
            c = pow(c1, k, n2)
        else:
            c = pow(pow(c1, -1, n2), -k, n2)
        m = (k * m1) % n
        key.check(c, m)
        scalar.append({"c1": s(c1), "k": s(k), "c": s(c), "m": s(m)})

    # --- values a decryptor must reject (need 0 < c < n^2, gcd(c, n) == 1)
    while True:
        mp = key.p * rand_range(1, key.p * key.q * key.q)   # < n^2
        if math.gcd(mp, n) == key.p:
            break
    while True:
        mq = key.q * rand_range(1, key.p * key.p * key.q)   # < n^2
        if math.gcd(mq, n) == key.q:
            break
    invalid = [
        {"c": s(0), "why": "zero"},
        {"c": s(n2), "why": "equal to n^2"},
        {"c": s(mp), "why": "multiple of p"},
        {"c": s(mq), "why": "multiple of q"},
        {"c": s(n2 + 1), "why": "above n^2"},  # still fits in Lc bytes
    ]
    assert 0 < mp < n2 and 0 < mq < n2
    assert (n2 + 1).bit_length() <= 8 * key.clen

    n_bytes = minimal_bytes(n)
    return {
        "name": "n%d" % bits,
        "bits": bits,
        "p": s(key.p),
        "q": s(key.q),
        "n": s(n),
        "n_b64u": b64u(n_bytes),
        "kid": b64u(hashlib.sha256(n_bytes).digest()),
        "lambda": s(key.lam),
        "mu": s(key.mu),
        "textbook": textbook,
        "djn": {"x": s(x), "hs": s(hs), "cases": djn_cases},
        "add": add,
        "add_plain": add_plain,
        "scalar": scalar,
        "invalid_ciphertexts": invalid,
    }


def self_test_encodings():
    # RFC 4648 section 10 test vectors (base64 and base64url agree on these).
    for raw, enc in ((b"", ""), (b"f", "Zg"), (b"fo", "Zm8"), (b"foo", "Zm9v"),
                     (b"foob", "Zm9vYg"), (b"fooba", "Zm9vYmE"),
                     (b"foobar", "Zm9vYmFy")):
        assert b64u(raw) == enc
    assert b64u(b"\xfb\xff") == "-_8"      # url-safe alphabet
    assert len(b64u(hashlib.sha256(b"x").digest())) == 43


def main():
    self_test_encodings()
    doc = {
        "generator": GENERATOR,
        "seed": SEED,
        "vectors": [build_vector(bits) for bits in SIZES],
    }
    json.dump(doc, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
