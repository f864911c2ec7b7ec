// Paillier key files: public key documents, private key files (mode 0600) and private
// keys sealed with a passphrase (scrypt + AES-256-GCM). Formats in docs/formats.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

#include "cipherpulse/paillier.h"
#include "cipherpulse/result.h"
#include "cipherpulse/secure.h"

namespace cipherpulse {

// ScryptParams are the key-derivation costs of a sealed key file. The defaults (N = 2^15,
// r = 8, p = 1: 32 MiB, about 0.1 s) follow RFC 7914's interactive figure; loading refuses
// N > 2^20, r > 32 or p > 16 so a crafted file cannot exhaust memory.
struct ScryptParams {
    std::uint64_t n = 1u << 15;
    std::uint32_t r = 8;
    std::uint32_t p = 1;
};

// seal_private_key encrypts the private key document under a key derived from
// `passphrase` and returns the sealed JSON document (it holds no secret in clear).
// Throws std::invalid_argument for an empty passphrase.
std::string seal_private_key(const PrivateKey& key, const SecretBytes& passphrase,
                             const ScryptParams& params = {});
// unseal_private_key reverses seal_private_key. A wrong passphrase or any tampering with
// the document fails with kBadSignature.
Result<PrivateKey> unseal_private_key(std::string_view sealed, const SecretBytes& passphrase,
                                      KeyPolicy policy = KeyPolicy::kProduction);
// is_sealed_key_document tells a sealed document from a plain private key document.
bool is_sealed_key_document(std::span<const std::uint8_t> text);

// save_private_key writes the key (sealed when `passphrase` is non-null) with mode 0600,
// atomically; refuses to replace an existing file unless `overwrite`.
Status save_private_key(const std::filesystem::path& path, const PrivateKey& key, bool overwrite,
                        const SecretBytes* passphrase = nullptr, const ScryptParams& params = {});
// load_private_key reads a private key file. Refused (kPermission) when group or others
// have access to it; a sealed file needs `passphrase` (kInvalidKey without one).
Result<PrivateKey> load_private_key(const std::filesystem::path& path,
                                    const SecretBytes* passphrase = nullptr,
                                    KeyPolicy policy = KeyPolicy::kProduction);

// save_public_key writes the public key document (mode 0644).
Status save_public_key(const std::filesystem::path& path, const PublicKey& key, bool overwrite);
// load_public_key reads and validates a public key document.
Result<PublicKey> load_public_key(const std::filesystem::path& path,
                                  KeyPolicy policy = KeyPolicy::kProduction);

}  // namespace cipherpulse
