// Sealed envelopes between parties (results to analysts, commands to devices): X25519 key
// agreement with a fresh ephemeral key, HKDF-SHA256, AES-256-GCM, and an Ed25519 signature
// by the sender over everything, in the JSON format "cipherpulse-envelope/1". The X25519
// key types are in cipherpulse/x25519.h.
//
// Only the holder of the recipient's private key can read the plaintext; the recipient
// knows that the holder of the sender's Ed25519 key signed it, for that recipient, with
// that header. The header travels in the clear (it is authenticated, not encrypted).
// The sender's Ed25519 public key is part of the key derivation, so a ciphertext stripped
// of its signature and re-signed by another key does not decrypt for anyone expecting
// that other key: an envelope that opens as from S was sealed as from S. One limit:
// nothing stops a replay, so put a sequence number or an expiry in the header and check it
// after open_envelope.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "cipherpulse/ed25519.h"
#include "cipherpulse/result.h"
#include "cipherpulse/secure.h"
#include "cipherpulse/x25519.h"

namespace cipherpulse {

// kEnvelopeVersion is the value of the "v" member of every envelope this code writes and
// the only one it opens.
inline constexpr std::string_view kEnvelopeVersion = "cipherpulse-envelope/1";
// kEnvelopeMaxBytes bounds the envelope text open_envelope accepts and seal_envelope
// writes (64 MiB).
inline constexpr std::size_t kEnvelopeMaxBytes = 64u << 20;
// kEnvelopeIvBytes is the size of the AES-256-GCM nonce of an envelope.
inline constexpr std::size_t kEnvelopeIvBytes = 12;
// kEnvelopeTagBytes is the size of the AES-256-GCM tag appended to the ciphertext.
inline constexpr std::size_t kEnvelopeTagBytes = 16;

// envelope_size returns the exact length of the text seal_envelope writes for a header of
// `header_bytes` bytes and a plaintext of `plaintext_bytes` bytes, so a caller can check
// the kEnvelopeMaxBytes bound before sealing. Saturates: sizes that cannot fit give a
// value over kEnvelopeMaxBytes.
std::size_t envelope_size(std::size_t header_bytes, std::size_t plaintext_bytes) noexcept;

// seal_envelope encrypts `plaintext` to `recipient` and signs the result with `sender`,
// returning the envelope: one JSON object without white space, members in the order
//   {"v":"cipherpulse-envelope/1","hdr":...,"rcpt":...,"epk":...,"iv":...,"ct":...,
//    "sig":...}
// where hdr is base64url(header), rcpt is recipient.fingerprint(), epk the fresh ephemeral
// X25519 public key, iv the 12-byte GCM nonce, ct the AES-256-GCM ciphertext followed by
// its 16-byte tag, sig the sender's Ed25519 signature (all base64url without padding).
// The key is HKDF-SHA256(ikm = X25519(ephemeral, recipient), salt = epk || recipient raw,
// info = "cipherpulse-envelope/1 aes-256-gcm" || sender raw (the 32-byte Ed25519 public
// key of `sender`), L = 32), the GCM associated data the header bytes, and the signed
// message
//   "cipherpulse-envelope/1" || 0x00 || u32be(len(hdr)) || hdr || recipient raw (32) ||
//   epk (32) || iv (12) || u32be(len(ct)) || ct.
// `header` is any bytes; it travels in the clear. The ephemeral key and the IV come from
// OpenSSL's CSPRNG and are never reused. Throws std::invalid_argument when
// envelope_size(header.size(), plaintext.size()) exceeds kEnvelopeMaxBytes (the recipient
// would refuse it), std::logic_error for a moved-from sender key, and std::runtime_error
// only if OpenSSL fails. Safe to call from several threads at once.
std::string seal_envelope(std::string_view header, std::span<const std::uint8_t> plaintext,
                          const X25519PublicKey& recipient, const Ed25519PrivateKey& sender);
std::string seal_envelope(std::string_view header, std::string_view plaintext,
                          const X25519PublicKey& recipient, const Ed25519PrivateKey& sender);

// unsafe_seal_envelope_for_test is seal_envelope with the ephemeral key and the IV given
// by the caller, for known-answer tests only. Reusing an ephemeral key and IV for two
// plaintexts to the same recipient reuses the GCM key and nonce, which reveals the XOR of
// the plaintexts and GCM's authentication key. Throws as seal_envelope, and
// std::logic_error for a moved-from ephemeral key.
std::string unsafe_seal_envelope_for_test(std::string_view header,
                                          std::span<const std::uint8_t> plaintext,
                                          const X25519PublicKey& recipient,
                                          const Ed25519PrivateKey& sender,
                                          const X25519PrivateKey& ephemeral,
                                          std::span<const std::uint8_t, kEnvelopeIvBytes> iv);
std::string unsafe_seal_envelope_for_test(std::string_view header, std::string_view plaintext,
                                          const X25519PublicKey& recipient,
                                          const Ed25519PrivateKey& sender,
                                          const X25519PrivateKey& ephemeral,
                                          std::span<const std::uint8_t, kEnvelopeIvBytes> iv);

// OpenedEnvelope is what an envelope that opened carries: the header exactly as signed
// and the plaintext, in wiping storage owned by the caller.
struct OpenedEnvelope {
    std::string header;
    SecretBytes plaintext;
};

// open_envelope checks an envelope from `sender` to `recipient` and decrypts it. The
// checks run in this order, and the first that fails says why:
//  - kInvalidLength: text over kEnvelopeMaxBytes;
//  - kInvalidEncoding: not one JSON object; a repeated member name; "v" missing or not a
//    string;
//  - kUnsupported: "v" other than kEnvelopeVersion;
//  - kInvalidEncoding: members other than exactly v, hdr, rcpt, epk, iv, ct and sig; a
//    member that is not a string, or not strict base64url without padding;
//  - kInvalidLength: rcpt or epk not 32 bytes, iv not 12, sig not 64, ct under 16;
//  - kInvalidKey: rcpt is not recipient.public_key().fingerprint() ("envelope is for
//    another recipient");
//  - kBadSignature: the signature does not verify with `sender` (checked before any use of
//    the recipient's private key);
//  - kInvalidKey: epk is a point of small order (all-zero shared secret);
//  - kBadSignature: the GCM tag does not verify ("envelope does not decrypt"), also when
//    the signature verifies but the envelope was sealed with another sender key.
// Any JSON white space and member order is accepted; the signature covers the decoded
// values, not the JSON text. Never throws for bad input (std::logic_error for a moved-from
// key). Safe to call from several threads at once.
[[nodiscard]] Result<OpenedEnvelope> open_envelope(std::string_view envelope_json,
                                                   const X25519PrivateKey& recipient,
                                                   const Ed25519PublicKey& sender);

// unsafe_envelope_header returns the header of an envelope WITHOUT verifying anything
// about it: anyone can write an envelope with any header. Use it only to choose which keys
// to open the envelope with, and act only on the header open_envelope returns. Fails as
// open_envelope's checks up to and including the base64url and length checks; never
// throws for bad input.
[[nodiscard]] Result<std::string> unsafe_envelope_header(std::string_view envelope_json);

}  // namespace cipherpulse
