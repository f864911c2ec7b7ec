// X25519 key agreement keys (RFC 7748) for sealed envelopes (cipherpulse/envelope.h), with
// PEM key files as `openssl genpkey -algorithm x25519` and `openssl pkey -pubout` write
// them. Both key types accept exactly the PEM files the Ed25519 keys of
// cipherpulse/ed25519.h accept, and refuse bad ones with the same errors.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "cipherpulse/result.h"
#include "cipherpulse/secure.h"

namespace cipherpulse {

class X25519PrivateKey;

namespace detail {
// X25519KeyAccess is the envelope implementation's way to the key agreement, which the
// public API does not offer (defined at the end of this header; not an API).
struct X25519KeyAccess;
}  // namespace detail

// kX25519PublicKeyBytes is the size of a raw X25519 public key (RFC 7748 section 5).
inline constexpr std::size_t kX25519PublicKeyBytes = 32;
// kX25519PrivateKeyBytes is the size of a raw X25519 private key (RFC 7748 section 5).
inline constexpr std::size_t kX25519PrivateKeyBytes = 32;
// kX25519MaxPemBytes bounds the PEM text the parsers accept (also when read from a file).
inline constexpr std::size_t kX25519MaxPemBytes = 64u << 10;

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
    // A private key's own public key is a multiple of the base point, never of small
    // order: X25519PrivateKey builds it without the check.
    friend class X25519PrivateKey;
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

    // X25519PrivateKey::from_pem parses an unencrypted PKCS#8 PEM block (label PRIVATE
    // KEY, RFC 8410) as `openssl genpkey -algorithm x25519` writes it. Leading and
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

    // The key agreement reaches the OpenSSL key through this.
    friend struct detail::X25519KeyAccess;

    std::unique_ptr<Impl> impl_;
};

// x25519_shared_for_test returns the raw X25519 shared secret of RFC 7748 section 6.1
// (32 bytes, wiping storage), for known-answer tests only: protocols use seal_envelope and
// open_envelope, which never expose it. Never all zero (public keys of small order cannot
// be constructed). Throws std::logic_error for a moved-from key and std::runtime_error if
// OpenSSL fails.
SecretBytes x25519_shared_for_test(const X25519PrivateKey& own, const X25519PublicKey& peer);

namespace detail {

// X25519KeyAccess is for src/envelope.cpp only.
struct X25519KeyAccess {
    // X25519KeyAccess::agree returns the X25519 shared secret of `own` and the raw public
    // key `peer` (32 bytes, wiping storage). Fails with kInvalidKey when `peer` has small
    // order (the secret would be all zero), which only a raw key read from untrusted input
    // can have. Throws std::logic_error for a moved-from key, std::runtime_error if OpenSSL
    // fails.
    static Result<SecretBytes> agree(const X25519PrivateKey& own,
                                     std::span<const std::uint8_t, kX25519PublicKeyBytes> peer);
};

}  // namespace detail

}  // namespace cipherpulse
