// Ed25519 signatures (RFC 8032) for identity and device keys, with PEM key files as
// `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` write them.
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

// kEd25519PublicKeyBytes is the size of a raw Ed25519 public key.
inline constexpr std::size_t kEd25519PublicKeyBytes = 32;
// kEd25519SeedBytes is the size of a raw Ed25519 private key (the RFC 8032 seed).
inline constexpr std::size_t kEd25519SeedBytes = 32;
// kEd25519SignatureBytes is the size of an Ed25519 signature.
inline constexpr std::size_t kEd25519SignatureBytes = 64;
// kEd25519MaxPemBytes bounds the PEM text the parsers accept (also when read from a file).
inline constexpr std::size_t kEd25519MaxPemBytes = 64u << 10;

// Ed25519Signature is a detached Ed25519 signature (R || S, RFC 8032 section 5.1.6).
using Ed25519Signature = std::array<std::uint8_t, kEd25519SignatureBytes>;

// Ed25519PublicKey is an Ed25519 verification key: a plain, copyable value holding the 32
// raw bytes. Every instance holds exactly 32 bytes; there is no empty state. All methods
// are const and safe to call from several threads at once.
class Ed25519PublicKey {
  public:
    // Ed25519PublicKey::from_pem parses a SubjectPublicKeyInfo PEM block ("-----BEGIN PUBLIC
    // KEY-----", RFC 8410) as `openssl pkey -pubout` writes it. Leading and trailing white
    // space is allowed, any other text around the block is not. Fails with kInvalidLength
    // for text over kEd25519MaxPemBytes, kInvalidEncoding for text that is not such a PEM
    // block, and kInvalidKey for a key of another type (RSA, EC, X25519, Ed448, ...).
    static Result<Ed25519PublicKey> from_pem(std::string_view pem);

    // Ed25519PublicKey::from_raw takes the 32-byte encoding of RFC 8032 section 5.1.2.
    // Fails with kInvalidLength for any other size. The bytes are not checked to encode a
    // curve point; a key that does not simply never verifies a signature.
    static Result<Ed25519PublicKey> from_raw(std::span<const std::uint8_t> raw);

    // Ed25519PublicKey::load reads a PEM file (see from_pem). Fails with kIo or kPermission
    // when the file cannot be read, and as from_pem on its content.
    static Result<Ed25519PublicKey> load(const std::filesystem::path& path);

    // Ed25519PublicKey::to_pem returns the SubjectPublicKeyInfo PEM block, byte for byte what
    // `openssl pkey -pubout` writes for the same key. Throws std::runtime_error only if
    // OpenSSL fails (out of memory).
    std::string to_pem() const;

    // Ed25519PublicKey::save writes to_pem() to `path` atomically with mode 0644. With
    // `overwrite` false an existing file is an error (kIo); other failures are kIo.
    Status save(const std::filesystem::path& path, bool overwrite) const;

    // Ed25519PublicKey::raw returns the 32 raw bytes.
    std::array<std::uint8_t, kEd25519PublicKeyBytes> raw() const noexcept { return raw_; }

    // Ed25519PublicKey::verify checks a detached signature over `message` (pure Ed25519, no
    // prehash). Returns false for a signature that is not exactly 64 bytes, that does not
    // verify, or whose S is not reduced (S >= L, a malleated signature). Never throws.
    [[nodiscard]] bool verify(std::span<const std::uint8_t> message,
                              std::span<const std::uint8_t> signature) const noexcept;
    [[nodiscard]] bool verify(std::string_view message,
                              std::span<const std::uint8_t> signature) const noexcept;

    // Ed25519PublicKey::fingerprint returns base64url(SHA-256(raw())), 43 characters, to name
    // the key in logs and configuration.
    std::string fingerprint() const;

    // Ed25519PublicKey::jwk_thumbprint returns the RFC 7638 JWK thumbprint (SHA-256,
    // base64url) of the key as an OKP JWK (RFC 8037 section 2), 43 characters: the standard
    // `kid` for a JOSE key, which any JOSE library computes the same way.
    std::string jwk_thumbprint() const;

    // operator== compares the raw bytes (public data: not constant time).
    friend bool operator==(const Ed25519PublicKey&, const Ed25519PublicKey&) = default;

  private:
    explicit Ed25519PublicKey(const std::array<std::uint8_t, kEd25519PublicKeyBytes>& raw)
        : raw_(raw) {}

    std::array<std::uint8_t, kEd25519PublicKeyBytes> raw_;
};

// Ed25519PrivateKey is an Ed25519 signing key. Move-only; the key material lives in
// OpenSSL's key object, which wipes it when freed. It is never printed: there is no stream
// operator, and to_pem() returns wiping storage. A moved-from key holds nothing; calling any
// method other than assignment or destruction on it throws std::logic_error. Const methods
// are safe to call from several threads at once.
class Ed25519PrivateKey {
  public:
    // Ed25519PrivateKey::generate creates a fresh key from OpenSSL's CSPRNG. Throws
    // std::runtime_error if OpenSSL fails.
    static Ed25519PrivateKey generate();

    // Ed25519PrivateKey::from_pem parses an unencrypted PKCS#8 PEM block (label PRIVATE
    // KEY, RFC 8410) as `openssl genpkey -algorithm ed25519` writes it. Leading and
    // trailing white space is allowed, any other text around the block is not. Fails with
    // kInvalidLength for text over kEd25519MaxPemBytes, kUnsupported for an encrypted key
    // ("ENCRYPTED PRIVATE KEY"; never prompts for a passphrase), kInvalidEncoding for text
    // that is not such a PEM block, and kInvalidKey for a key of another type. Error messages
    // never contain key material.
    static Result<Ed25519PrivateKey> from_pem(std::string_view pem);
    static Result<Ed25519PrivateKey> from_pem(const SecretBytes& pem);

    // Ed25519PrivateKey::from_raw_seed takes the 32-byte private key of RFC 8032 section
    // 5.1.5 (known-answer tests, interoperability). Fails with kInvalidLength for any other
    // size.
    static Result<Ed25519PrivateKey> from_raw_seed(std::span<const std::uint8_t> seed);

    // Ed25519PrivateKey::load reads a PEM file through read_private_file: a file that group
    // or others may access, or a symbolic link, is refused with kPermission. Other read
    // failures are kIo; the content fails as in from_pem.
    static Result<Ed25519PrivateKey> load(const std::filesystem::path& path);

    Ed25519PrivateKey(const Ed25519PrivateKey&) = delete;
    Ed25519PrivateKey& operator=(const Ed25519PrivateKey&) = delete;
    Ed25519PrivateKey(Ed25519PrivateKey&& other) noexcept;
    Ed25519PrivateKey& operator=(Ed25519PrivateKey&& other) noexcept;
    ~Ed25519PrivateKey();

    // Ed25519PrivateKey::to_pem returns the unencrypted PKCS#8 PEM block that `openssl pkey`
    // reads, in wiping storage owned by the caller. Throws std::runtime_error only if OpenSSL
    // fails.
    SecretBytes to_pem() const;

    // Ed25519PrivateKey::save writes to_pem() to `path` atomically with mode 0600 (whatever
    // the umask). With `overwrite` false an existing file is an error (kIo) and is left
    // untouched; other failures are kIo.
    Status save(const std::filesystem::path& path, bool overwrite) const;

    // Ed25519PrivateKey::public_key returns the matching public key.
    Ed25519PublicKey public_key() const;

    // Ed25519PrivateKey::sign returns the deterministic Ed25519 signature of `message` (pure
    // Ed25519, no prehash). Throws std::runtime_error only if OpenSSL fails.
    Ed25519Signature sign(std::span<const std::uint8_t> message) const;
    Ed25519Signature sign(std::string_view message) const;

  private:
    struct Impl;
    explicit Ed25519PrivateKey(std::unique_ptr<Impl> impl);
    const Impl& impl() const;

    std::unique_ptr<Impl> impl_;
};

}  // namespace cipherpulse
