#!/usr/bin/python3
"""Known-answer vectors for cipherpulse's sealed envelope ("cipherpulse-envelope/1").

An independent construction: pyca/cryptography (Debian's python3-cryptography,
version 38 was used) for X25519, AES-256-GCM and Ed25519, HKDF both from
cryptography and from the standard library's hmac (the two must agree), and
Python's json module for the envelope text. No code from the C++ project.
To regenerate (deterministic, no randomness at all):

    /usr/bin/python3 tests/unit/kat/envelope_vectors.py > tests/unit/kat/envelope_vectors.json

The C++ test tests/unit/envelope_test.cpp reads that JSON: it opens each
envelope and seals the same inputs with unsafe_seal_envelope_for_test, which
must give the same text byte for byte. If you change this script, commit it
together with its new output.

The format (docs: include/cipherpulse/envelope.h):

    shared = X25519(ephemeral_private, recipient_public)       (never all zero)
    key    = HKDF-SHA256(ikm = shared, salt = epk || recipient_public,
                         info = "cipherpulse-envelope/1 aes-256-gcm" || sender_public,
                         L = 32)              (sender_public: raw 32-byte Ed25519 key)
    ct     = AES-256-GCM(key, iv, plaintext, aad = header)     (ciphertext || tag)
    sig    = Ed25519(sender, "cipherpulse-envelope/1" || 0x00 || u32be(len(header))
                     || header || recipient_public || epk || iv || u32be(len(ct)) || ct)
    rcpt   = base64url(SHA-256(recipient_public))
    text   = {"v":"cipherpulse-envelope/1","hdr":b64u(header),"rcpt":rcpt,
              "epk":b64u(epk),"iv":b64u(iv),"ct":b64u(ct),"sig":b64u(sig)}
             members in that order, no white space, base64url without padding.

Every byte string in the JSON output is lower-case hex, except `envelope`,
`recipient_fingerprint` and `recipient_public_pem`, which are text. The keys
are test keys that protect nothing; no PEM private key is written out.
"""

import base64
import hashlib
import hmac
import json
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"cipherpulse-envelope/1"
KDF_INFO = b"cipherpulse-envelope/1 aes-256-gcm"
GENERATOR = "tests/unit/kat/envelope_vectors.py"

# RFC 7748 section 6.1.
RFC7748_ALICE_PRIVATE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
RFC7748_ALICE_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
RFC7748_BOB_PRIVATE = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
RFC7748_BOB_PUBLIC = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
RFC7748_SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
# RFC 8032 section 7.1, TEST 1.
RFC8032_TEST1_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def fixed(label, size=32):
    """Fixed test bytes: SHA-256 of a label (not secret, not random)."""
    return hashlib.sha256(label.encode("ascii")).digest()[:size]


def hkdf_sha256_stdlib(ikm, salt, info, length):
    """RFC 5869 with hmac/hashlib only, to cross-check cryptography's HKDF."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def check_hkdf_rfc5869():
    # RFC 5869 appendix A.1, test case 1.
    okm = hkdf_sha256_stdlib(
        bytes.fromhex("0b" * 22),
        bytes.fromhex("000102030405060708090a0b0c"),
        bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        42,
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        "34007208d5b887185865"
    ), "stdlib HKDF does not match RFC 5869 test case 1"


def raw_public(key):
    return key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def signed_message(header, recipient_public, epk, iv, ct):
    return (
        VERSION
        + b"\x00"
        + struct.pack(">I", len(header))
        + header
        + recipient_public
        + epk
        + iv
        + struct.pack(">I", len(ct))
        + ct
    )


def build(name, recipient_private, ephemeral_private, sender_seed, iv, header, plaintext):
    recipient = X25519PrivateKey.from_private_bytes(recipient_private)
    ephemeral = X25519PrivateKey.from_private_bytes(ephemeral_private)
    sender = Ed25519PrivateKey.from_private_bytes(sender_seed)
    recipient_public = raw_public(recipient)
    epk = raw_public(ephemeral)
    sender_public = raw_public(sender)

    shared = ephemeral.exchange(recipient.public_key())
    assert shared == recipient.exchange(ephemeral.public_key())
    assert shared != bytes(32)
    salt = epk + recipient_public
    info = KDF_INFO + sender_public
    assert len(info) == len(KDF_INFO) + 32
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(shared)
    assert key == hkdf_sha256_stdlib(shared, salt, info, 32), "HKDF implementations differ"

    ct = AESGCM(key).encrypt(iv, plaintext, header)
    assert len(ct) == len(plaintext) + 16
    assert AESGCM(key).decrypt(iv, ct, header) == plaintext
    message = signed_message(header, recipient_public, epk, iv, ct)
    sig = sender.sign(message)
    sender.public_key().verify(sig, message)  # raises if it does not verify

    rcpt = b64u(hashlib.sha256(recipient_public).digest())
    members = {
        "v": VERSION.decode("ascii"),
        "hdr": b64u(header),
        "rcpt": rcpt,
        "epk": b64u(epk),
        "iv": b64u(iv),
        "ct": b64u(ct),
        "sig": b64u(sig),
    }
    # dict keeps insertion order (Python >= 3.7): the canonical member order.
    envelope = json.dumps(members, separators=(",", ":"))

    public_pem = recipient.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "name": name,
        "recipient_private": recipient_private.hex(),
        "recipient_public": recipient_public.hex(),
        "recipient_fingerprint": rcpt,
        "recipient_public_pem": public_pem.decode("ascii"),
        "ephemeral_private": ephemeral_private.hex(),
        "ephemeral_public": epk.hex(),
        "shared_secret": shared.hex(),
        "aes_key": key.hex(),
        "sender_seed": sender_seed.hex(),
        "sender_public": sender_public.hex(),
        "kdf_info": info.hex(),
        "iv": iv.hex(),
        "header": header.hex(),
        "plaintext": plaintext.hex(),
        "ciphertext": ct.hex(),
        "signature": sig.hex(),
        "envelope": envelope,
    }


def main():
    check_hkdf_rfc5869()
    vectors = [
        # The RFC 7748 section 6.1 keys: Bob receives, Alice's key is the ephemeral one,
        # so the shared secret is the RFC's K.
        build(
            "rfc7748-keys",
            bytes.fromhex(RFC7748_BOB_PRIVATE),
            bytes.fromhex(RFC7748_ALICE_PRIVATE),
            bytes.fromhex(RFC8032_TEST1_SEED),
            bytes(range(12)),
            b'{"kind":"result","request":"r-0001"}',
            b'{"score":0.82,"band":"amber","model":"early-warning-1"}',
        ),
        build(
            "empty-header-and-plaintext",
            fixed("cipherpulse envelope kat 2 recipient"),
            fixed("cipherpulse envelope kat 2 ephemeral"),
            fixed("cipherpulse envelope kat 2 sender"),
            fixed("cipherpulse envelope kat 2 iv", 12),
            b"",
            b"",
        ),
        build(
            "binary-header-long-plaintext",
            fixed("cipherpulse envelope kat 3 recipient"),
            fixed("cipherpulse envelope kat 3 ephemeral"),
            fixed("cipherpulse envelope kat 3 sender"),
            fixed("cipherpulse envelope kat 3 iv", 12),
            bytes(range(256)),
            bytes((i * 7 + 3) % 256 for i in range(1000)),
        ),
    ]
    first = vectors[0]
    assert first["recipient_public"] == RFC7748_BOB_PUBLIC
    assert first["ephemeral_public"] == RFC7748_ALICE_PUBLIC
    assert first["shared_secret"] == RFC7748_SHARED, "X25519 does not match RFC 7748"
    doc = {"generator": GENERATOR, "format": VERSION.decode("ascii"), "vectors": vectors}
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
