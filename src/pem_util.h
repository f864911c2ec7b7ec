// Private to the core library (not installed, not an API): the PEM key files and the
// OpenSSL key plumbing that Ed25519 keys (src/ed25519.cpp) and X25519 keys (src/x25519.cpp)
// share, so both key types accept exactly the same files, write them the same way and
// refuse bad ones with the same errors.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "cipherpulse/files.h"
#include "cipherpulse/result.h"
#include "cipherpulse/secure.h"

namespace cipherpulse::detail {

// OpenSslPtr owns an OpenSSL object of type T and frees it with Free (EVP_PKEY_free, ...).
template <auto Free>
struct OpenSslFree {
    template <class T>
    void operator()(T* object) const noexcept {
        Free(object);
    }
};
template <class T, auto Free>
using OpenSslPtr = std::unique_ptr<T, OpenSslFree<Free>>;

using UniqueEvpPkey = OpenSslPtr<EVP_PKEY, EVP_PKEY_free>;
using UniqueEvpPkeyCtx = OpenSslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;

// kRawKeyBytes is the size of every raw Ed25519 and X25519 key, public or private.
inline constexpr std::size_t kRawKeyBytes = 32;
// RawKey is a raw 32-byte key.
using RawKey = std::array<std::uint8_t, kRawKeyBytes>;

// KeyType names the one OpenSSL key type a reader accepts.
struct KeyType {
    int evp_id;                 // EVP_PKEY_ED25519 or EVP_PKEY_X25519
    const char* name;           // "Ed25519" or "X25519", for error messages
    std::size_t max_pem_bytes;  // the largest PEM text (or key file) accepted
};

// openssl_refusal returns an Error for untrusted input after clearing OpenSSL's
// thread-local error queue, so the refusal cannot surface later as the reason for an
// unrelated failure.
Error openssl_refusal(ErrorCode code, std::string message);

// throw_openssl clears OpenSSL's error queue and throws std::runtime_error naming `what`:
// for OpenSSL failures that no input can cause (out of memory).
[[noreturn]] void throw_openssl(std::string_view what);

// as_text views wiping storage as text (no copy).
std::string_view as_text(const SecretBytes& bytes) noexcept;

// raw_key copies `raw` into a RawKey. Fails with kInvalidLength ("<what> must be 32 bytes,
// got N") for any other size.
Result<RawKey> raw_key(std::span<const std::uint8_t> raw, std::string_view what);

// read_public_pem parses untrusted text as exactly one SubjectPublicKeyInfo PEM block
// ("PUBLIC KEY", RFC 8410), with nothing around it but white space, holding a key of
// `type`. Fails with kInvalidLength for text over type.max_pem_bytes, kInvalidEncoding for
// text that is not one such block, and kInvalidKey for a block with another label or a key
// of another type. Never throws for bad input.
Result<UniqueEvpPkey> read_public_pem(std::string_view pem, const KeyType& type);

// read_private_pem is read_public_pem for an unencrypted PKCS#8 block ("PRIVATE KEY").
// An "ENCRYPTED PRIVATE KEY" block fails with kUnsupported; OpenSSL never prompts for a
// passphrase. Error messages never contain key material.
Result<UniqueEvpPkey> read_private_pem(std::string_view pem, const KeyType& type);

// public_pkey returns an OpenSSL key of `type` for the raw public key, or null if OpenSSL
// fails. Never throws.
UniqueEvpPkey public_pkey(std::span<const std::uint8_t, kRawKeyBytes> raw,
                          const KeyType& type) noexcept;

// raw_public_key returns the raw public key of `pkey` (an Ed25519 or X25519 key). Throws
// std::runtime_error if OpenSSL fails.
RawKey raw_public_key(const EVP_PKEY* pkey);

// generate_private_key returns a fresh key of `type` from OpenSSL's CSPRNG. Throws
// std::runtime_error if OpenSSL fails.
UniqueEvpPkey generate_private_key(const KeyType& type);

// private_key_from_raw returns the key of `type` whose raw private key is `raw`. Fails as
// raw_key; throws std::runtime_error if OpenSSL fails.
Result<UniqueEvpPkey> private_key_from_raw(std::span<const std::uint8_t> raw, const KeyType& type,
                                           std::string_view what);

// public_pem returns the SubjectPublicKeyInfo PEM block of the raw public key, byte for
// byte what `openssl pkey -pubout` writes. Throws std::runtime_error if OpenSSL fails.
std::string public_pem(std::span<const std::uint8_t, kRawKeyBytes> raw, const KeyType& type);

// private_pem returns the unencrypted PKCS#8 PEM block of `pkey` in wiping storage (no copy
// of it is left behind). Throws std::runtime_error if OpenSSL fails.
SecretBytes private_pem(const EVP_PKEY* pkey);

// save_public_pem writes public_pem(raw, type) to `path` atomically with mode 0644;
// save_private_pem writes private_pem(pkey) with mode 0600, whatever the umask. With
// `overwrite` false an existing file is an error (kIo) and is left untouched.
Status save_public_pem(const std::filesystem::path& path,
                       std::span<const std::uint8_t, kRawKeyBytes> raw, const KeyType& type,
                       bool overwrite);
Status save_private_pem(const std::filesystem::path& path, const EVP_PKEY* pkey, bool overwrite);

// key_from_file parses the PEM text read from `path` with Key::from_pem, naming the file in
// the error.
template <class Key, class Text>
Result<Key> key_from_file(Result<Text> text, const std::filesystem::path& path) {
    if (!text) {
        return text.error();
    }
    auto key = Key::from_pem(text.value());
    if (!key) {
        return make_error(key.error().code, path.string() + ": " + key.error().message);
    }
    return key;
}

// load_public_key reads a public key file of at most type.max_pem_bytes (kIo or
// kPermission when it cannot be read) and parses it with Key::from_pem.
template <class Key>
Result<Key> load_public_key(const std::filesystem::path& path, const KeyType& type) {
    return key_from_file<Key>(read_file(path, type.max_pem_bytes), path);
}

// load_private_key is load_public_key through read_private_file: a file that group or
// others may access, or a symbolic link, is refused with kPermission.
template <class Key>
Result<Key> load_private_key(const std::filesystem::path& path, const KeyType& type) {
    return key_from_file<Key>(read_private_file(path, type.max_pem_bytes), path);
}

}  // namespace cipherpulse::detail
