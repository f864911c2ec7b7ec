#include "cipherpulse/keyfile.h"

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "cipherpulse/base64url.h"
#include "cipherpulse/files.h"

namespace cipherpulse {
namespace {

constexpr const char* kSealedType = "Paillier-sealed";
constexpr const char* kSealedAlg = "scrypt+A256GCM";
constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kIvBytes = 12;
constexpr std::size_t kTagBytes = 16;
constexpr std::size_t kKeyBytes = 32;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

Status check_scrypt_params(const ScryptParams& p) {
    bool power_of_two = p.n >= 2 && (p.n & (p.n - 1)) == 0;
    if (!power_of_two || p.n > (1u << 20) || p.r == 0 || p.r > 32 || p.p == 0 || p.p > 16) {
        return make_error(ErrorCode::kUnsupported,
                          "scrypt parameters out of bounds (N power of two <= 2^20, r <= 32, "
                          "p <= 16)");
    }
    return Ok{};
}

SecretBytes derive_key(const SecretBytes& passphrase, std::span<const std::uint8_t> salt,
                       const ScryptParams& params) {
    SecretBytes key(kKeyBytes);
    // 128 * r * N bytes for V, plus headroom for B and XY.
    std::uint64_t maxmem = 128ull * params.r * (params.n + params.p + 2) + (1u << 20);
    if (EVP_PBE_scrypt(reinterpret_cast<const char*>(passphrase.data()), passphrase.size(),
                       salt.data(), salt.size(), params.n, params.r, params.p, maxmem, key.data(),
                       key.size()) != 1) {
        throw std::runtime_error("scrypt key derivation failed");
    }
    return key;
}

// The associated data binds every header field to the ciphertext, so changing the kid or
// weakening the KDF parameters breaks authentication.
std::string associated_data(const std::string& kid, const ScryptParams& params,
                            const std::string& salt_b64) {
    return std::string("cipherpulse-sealed-key-v1|") + kid + "|" + std::to_string(params.n) + "|" +
           std::to_string(params.r) + "|" + std::to_string(params.p) + "|" + salt_b64;
}

}  // namespace

std::string seal_private_key(const PrivateKey& key, const SecretBytes& passphrase,
                             const ScryptParams& params) {
    if (passphrase.empty()) {
        throw std::invalid_argument("passphrase must not be empty");
    }
    if (auto status = check_scrypt_params(params); !status) {
        throw std::invalid_argument(status.error().message);
    }
    std::vector<std::uint8_t> salt(kSaltBytes), iv(kIvBytes), tag(kTagBytes);
    random_bytes(salt);
    random_bytes(iv);
    SecretBytes derived = derive_key(passphrase, salt, params);
    SecretBytes plain = key.to_json();
    std::string salt_b64 = base64url_encode(salt);
    std::string aad = associated_data(key.public_key().kid(), params, salt_b64);

    CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
    std::vector<std::uint8_t> sealed(plain.size());
    int len = 0;
    int total = 0;
    if (!ctx ||
        EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, derived.data(), iv.data()) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                          reinterpret_cast<const unsigned char*>(aad.data()),
                          static_cast<int>(aad.size())) != 1 ||
        EVP_EncryptUpdate(ctx.get(), sealed.data(), &len, plain.data(),
                          static_cast<int>(plain.size())) != 1) {
        throw std::runtime_error("AES-256-GCM encryption failed");
    }
    total = len;
    if (EVP_EncryptFinal_ex(ctx.get(), sealed.data() + total, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, tag.data()) != 1) {
        throw std::runtime_error("AES-256-GCM encryption failed");
    }
    total += len;
    sealed.resize(static_cast<std::size_t>(total));

    nlohmann::ordered_json doc;
    doc["kty"] = kSealedType;
    doc["kid"] = key.public_key().kid();
    doc["alg"] = kSealedAlg;
    doc["scrypt"] = {{"N", params.n}, {"r", params.r}, {"p", params.p}, {"salt", salt_b64}};
    doc["iv"] = base64url_encode(iv);
    doc["ciphertext"] = base64url_encode(sealed);
    doc["tag"] = base64url_encode(tag);
    return doc.dump(2) + "\n";
}

bool is_sealed_key_document(std::span<const std::uint8_t> text) {
    auto doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    return doc.is_object() && doc.contains("kty") && doc["kty"].is_string() &&
           doc["kty"].get<std::string>() == kSealedType;
}

Result<PrivateKey> unseal_private_key(std::string_view sealed, const SecretBytes& passphrase,
                                      KeyPolicy policy) {
    auto doc = nlohmann::json::parse(sealed, nullptr, false);
    auto malformed = [](const std::string& what) {
        return make_error(ErrorCode::kInvalidEncoding, "sealed key document: " + what);
    };
    if (doc.is_discarded() || !doc.is_object()) {
        return malformed("not a JSON object");
    }
    auto string_field = [](const nlohmann::json& obj, const char* name) -> const std::string* {
        auto it = obj.find(name);
        return it != obj.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
    };
    auto number_field = [](const nlohmann::json& obj,
                           const char* name) -> std::optional<std::uint64_t> {
        auto it = obj.find(name);
        if (it == obj.end() || !it->is_number_unsigned()) {
            return std::nullopt;
        }
        return it->get<std::uint64_t>();
    };
    const std::string* kty = string_field(doc, "kty");
    const std::string* alg = string_field(doc, "alg");
    if (kty == nullptr || *kty != kSealedType || alg == nullptr || *alg != kSealedAlg) {
        return make_error(ErrorCode::kUnsupported, "sealed key document: unknown kty or alg");
    }
    auto kdf_it = doc.find("scrypt");
    if (kdf_it == doc.end() || !kdf_it->is_object()) {
        return malformed("missing \"scrypt\" parameters");
    }
    const nlohmann::json& kdf = *kdf_it;
    auto n = number_field(kdf, "N");
    auto r = number_field(kdf, "r");
    auto p = number_field(kdf, "p");
    if (!n || !r || !p || string_field(kdf, "salt") == nullptr ||
        string_field(doc, "kid") == nullptr || string_field(doc, "iv") == nullptr ||
        string_field(doc, "ciphertext") == nullptr || string_field(doc, "tag") == nullptr) {
        return malformed("missing or mistyped field");
    }
    if (*r > 32 || *p > 16) {
        return make_error(ErrorCode::kUnsupported, "sealed key document: scrypt r or p too large");
    }
    ScryptParams params{*n, static_cast<std::uint32_t>(*r), static_cast<std::uint32_t>(*p)};
    if (auto status = check_scrypt_params(params); !status) {
        return status.error();
    }
    std::string salt_b64 = kdf["salt"].get<std::string>();
    auto salt = base64url_decode(salt_b64);
    auto iv = base64url_decode(doc["iv"].get<std::string>());
    auto body = base64url_decode(doc["ciphertext"].get<std::string>());
    auto tag = base64url_decode(doc["tag"].get<std::string>());
    if (!salt || !iv || !body || !tag || iv.value().size() != kIvBytes ||
        tag.value().size() != kTagBytes || salt.value().size() < 8) {
        return malformed("bad salt, iv, ciphertext or tag");
    }
    std::string kid = doc["kid"].get<std::string>();
    std::string aad = associated_data(kid, params, salt_b64);
    SecretBytes derived = derive_key(passphrase, salt.value(), params);

    CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
    SecretBytes plain(body.value().size());
    int len = 0;
    if (!ctx ||
        EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, derived.data(),
                           iv.value().data()) != 1 ||
        EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                          reinterpret_cast<const unsigned char*>(aad.data()),
                          static_cast<int>(aad.size())) != 1 ||
        EVP_DecryptUpdate(ctx.get(), plain.data(), &len, body.value().data(),
                          static_cast<int>(body.value().size())) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.value().data()) != 1 ||
        EVP_DecryptFinal_ex(ctx.get(), plain.data() + len, &len) != 1) {
        return make_error(ErrorCode::kBadSignature,
                          "cannot unseal private key: wrong passphrase or altered file");
    }
    auto key = PrivateKey::from_json(plain.span(), policy);
    if (!key) {
        return key.error();
    }
    if (key.value().public_key().kid() != kid) {
        return make_error(ErrorCode::kInvalidKey, "sealed key: kid does not match the key inside");
    }
    return key;
}

Status save_private_key(const std::filesystem::path& path, const PrivateKey& key, bool overwrite,
                        const SecretBytes* passphrase, const ScryptParams& params) {
    if (passphrase != nullptr) {
        return write_file_atomic(path, seal_private_key(key, *passphrase, params), kPrivateFileMode,
                                 overwrite);
    }
    SecretBytes text = key.to_json();
    return write_file_atomic(path, text.span(), kPrivateFileMode, overwrite);
}

Result<PrivateKey> load_private_key(const std::filesystem::path& path,
                                    const SecretBytes* passphrase, KeyPolicy policy) {
    auto bytes = read_private_file(path);
    if (!bytes) {
        return bytes.error();
    }
    const SecretBytes& text = bytes.value();
    if (is_sealed_key_document(text.span())) {
        if (passphrase == nullptr) {
            return make_error(ErrorCode::kInvalidKey,
                              path.string() + " is sealed with a passphrase; provide it");
        }
        return unseal_private_key(
            std::string_view(reinterpret_cast<const char*>(text.data()), text.size()), *passphrase,
            policy);
    }
    auto key = PrivateKey::from_json(text.span(), policy);
    if (!key) {
        return make_error(key.error().code, path.string() + ": " + key.error().message);
    }
    return key;
}

Status save_public_key(const std::filesystem::path& path, const PublicKey& key, bool overwrite) {
    return write_file_atomic(path, key.to_json() + "\n", kPublicFileMode, overwrite);
}

Result<PublicKey> load_public_key(const std::filesystem::path& path, KeyPolicy policy) {
    auto text = read_file(path, 1u << 20);
    if (!text) {
        return text.error();
    }
    auto key = PublicKey::from_json(text.value(), policy);
    if (!key) {
        return make_error(key.error().code, path.string() + ": " + key.error().message);
    }
    return key;
}

}  // namespace cipherpulse
