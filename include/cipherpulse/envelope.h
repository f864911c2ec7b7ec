// Sealed envelopes between parties (results to analysts, commands to devices): X25519 key
// agreement with a fresh ephemeral key, HKDF-SHA256, AES-256-GCM, and an Ed25519 signature
// by the sender over everything, in the JSON format "cipherpulse-envelope/1". Also the
// X25519 key types, with PEM key files as `openssl genpkey -algorithm x25519` and
// `openssl pkey -pubout` write them.
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

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "cipherpulse/ed25519.h"
#include "cipherpulse/result.h"
#include "cipherpulse/secure.h"

namespace cipherpulse {

namespace detail {
// X25519KeyAccess is the envelope implementation's view of the key classes' internals
// (defined in src/envelope.cpp; not an API).
struct X25519KeyAccess;
}  // namespace detail

// kX25519PublicKeyBytes is the size of a raw X25519 public key (RFC 7748 section 5).
inline constexpr std::size_t kX25519PublicKeyBytes = 32;
// kX25519PrivateKeyBytes is the size of a raw X25519 private key (RFC 7748 section 5).
inline constexpr std::size_t kX25519PrivateKeyBytes = 32;
// kX25519MaxPemBytes bounds the PEM text the parsers accept (also when read from a file).
inline constexpr std::size_t kX25519MaxPemBytes = 64u << 10;

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

// X25519PublicKey is an X25519 key-agreement public key: a plain, copyable value holding
// the 32 raw bytes (the u-coordinate, little-endian). Every instance holds a key of large
// order: the constructors refuse the small-order points, with which key agreement would
// give an all-zero secret. All methods are const and safe to call from several threads at
// once.
class X25519PublicKey {
  public:
    // X25519PublicKey::from_pem parses a SubjectPublicKeyInfo PEM block ("-----BEGIN PUBLIC
    // KEY-----", RFC 8410) as `openssl pkey -pubout` writes it for an X25519 key. Leading and
    // trailing white space is allowed, any other text around the block is not. Fails with
    // kInvalidLength for text over kX25519MaxPemBytes, kInvalidEncoding for text that is not
    // such a PEM block, and kInvalidKey for a key of another type (Ed25519, RSA, EC, X448,
    // ...) or a small-order point (see from_raw).
    static Result<X25519PublicKey> from_pem(std::string_view pem);

    // X25519PublicKey::from_raw takes the 32-byte encoding of RFC 7748 section 5. Fails with
    // kInvalidLength for any other size and kInvalidKey for a point of small order (the
    // all-zero key and the other encodings of points of order 1, 2, 4 or 8).
    static Result<X25519PublicKey> from_raw(std::span<const std::uint8_t> raw);

    // X25519PublicKey::load reads a PEM file (see from_pem). Fails with kIo or kPermission
    // when the file cannot be read, and as from_pem on its content.
    static Result<X25519PublicKey> load(const std::filesystem::path& path);

    // X25519PublicKey::to_pem returns the SubjectPublicKeyInfo PEM block, byte for byte what
    // `openssl pkey -pubout` writes for the same key. Throws std::runtime_error only if
    // OpenSSL fails (out of memory).
    std::string to_pem() const;

    // X25519PublicKey::save writes to_pem() to `path` atomically with mode 0644. With
    // `overwrite` false an existing file is an error (kIo); other failures are kIo.
    Status save(const std::filesystem::path& path, bool overwrite) const;

    // X25519PublicKey::raw returns the 32 raw bytes.
    std::array<std::uint8_t, kX25519PublicKeyBytes> raw() const noexcept { return raw_; }

    // X25519PublicKey::fingerprint returns base64url(SHA-256(raw())), 43 characters: the
    // "rcpt" member of an envelope sealed to this key, and its name in logs and
    // configuration.
    std::string fingerprint() const;

    // operator== compares the raw bytes (public data: not constant time).
    friend bool operator==(const X25519PublicKey&, const X25519PublicKey&) = default;

  private:
    // A private key's own public key needs no small-order check; src/envelope.cpp builds it
    // through this.
    friend struct detail::X25519KeyAccess;
    explicit X25519PublicKey(const std::array<std::uint8_t, kX25519PublicKeyBytes>& raw)
        : raw_(raw) {}

    std::array<std::uint8_t, kX25519PublicKeyBytes> raw_;
};

// X25519PrivateKey is an X25519 key-agreement private key: what a recipient opens
// envelopes with. Move-only; the key material lives in OpenSSL's key object, which wipes
// it when freed. It is never printed: there is no stream operator, and to_pem() returns
// wiping storage. A moved-from key holds nothing; calling any method other than assignment
// or destruction on it throws std::logic_error. Const methods are safe to call from several
// threads at once.
class X25519PrivateKey {
  public:
    // X25519PrivateKey::generate creates a fresh key from OpenSSL's CSPRNG. Throws
    // std::runtime_error if OpenSSL fails.
    static X25519PrivateKey generate();

    // X25519PrivateKey::from_pem parses an unencrypted PKCS#8 PEM block ("-----BEGIN PRIVATE
    // KEY-----", RFC 8410) as `openssl genpkey -algorithm x25519` writes it. Leading and
    // trailing white space is allowed, any other text around the block is not. Fails with
    // kInvalidLength for text over kX25519MaxPemBytes, kUnsupported for an encrypted key
    // ("ENCRYPTED PRIVATE KEY"; never prompts for a passphrase), kInvalidEncoding for text
    // that is not such a PEM block, and kInvalidKey for a key of another type. Error messages
    // never contain key material.
    static Result<X25519PrivateKey> from_pem(std::string_view pem);
    static Result<X25519PrivateKey> from_pem(const SecretBytes& pem);

    // X25519PrivateKey::from_raw takes the 32-byte private key of RFC 7748 section 5 (any 32
    // bytes; they are clamped when used), for known-answer tests and interoperability. Fails
    // with kInvalidLength for any other size.
    static Result<X25519PrivateKey> from_raw(std::span<const std::uint8_t> raw);

    // X25519PrivateKey::load reads a PEM file through read_private_file: a file that group
    // or others may access, or a symbolic link, is refused with kPermission. Other read
    // failures are kIo; the content fails as in from_pem.
    static Result<X25519PrivateKey> load(const std::filesystem::path& path);

    X25519PrivateKey(const X25519PrivateKey&) = delete;
    X25519PrivateKey& operator=(const X25519PrivateKey&) = delete;
    X25519PrivateKey(X25519PrivateKey&& other) noexcept;
    X25519PrivateKey& operator=(X25519PrivateKey&& other) noexcept;
    ~X25519PrivateKey();

    // X25519PrivateKey::to_pem returns the unencrypted PKCS#8 PEM block that `openssl pkey`
    // reads, in wiping storage owned by the caller. Throws std::runtime_error only if OpenSSL
    // fails.
    SecretBytes to_pem() const;

    // X25519PrivateKey::save writes to_pem() to `path` atomically with mode 0600 (whatever
    // the umask). With `overwrite` false an existing file is an error (kIo) and is left
    // untouched; other failures are kIo.
    Status save(const std::filesystem::path& path, bool overwrite) const;

    // X25519PrivateKey::public_key returns the matching public key.
    X25519PublicKey public_key() const;

  private:
    struct Impl;
    explicit X25519PrivateKey(std::unique_ptr<Impl> impl);
    const Impl& impl() const;

    // The envelope code in src/envelope.cpp reaches the OpenSSL key through this.
    friend struct detail::X25519KeyAccess;

    std::unique_ptr<Impl> impl_;
};

// x25519_shared_for_test returns the raw X25519 shared secret of RFC 7748 section 6.1
// (32 bytes, wiping storage), for known-answer tests only: protocols use seal_envelope and
// open_envelope, which never expose it. Never all zero (public keys of small order cannot
// be constructed). Throws std::logic_error for a moved-from key and std::runtime_error if
// OpenSSL fails.
SecretBytes x25519_shared_for_test(const X25519PrivateKey& own, const X25519PublicKey& peer);

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
