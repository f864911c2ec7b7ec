#include "cipherpulse/ed25519.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <stdexcept>
#include <utility>

#include "cipherpulse/base64url.h"
#include "pem_util.h"

namespace cipherpulse {
namespace {

using detail::UniqueEvpPkey;

using UniqueEvpMdCtx = detail::OpenSslPtr<EVP_MD_CTX, EVP_MD_CTX_free>;

constexpr detail::KeyType kEd25519{EVP_PKEY_ED25519, "Ed25519", kEd25519MaxPemBytes};

// Some OpenSSL functions reject a null pointer even with a zero length.
const unsigned char* non_null(const std::uint8_t* data) {
    static const unsigned char kEmpty = 0;
    return data != nullptr ? data : &kEmpty;
}

std::span<const std::uint8_t> as_bytes(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Ed25519PublicKey

Result<Ed25519PublicKey> Ed25519PublicKey::from_pem(std::string_view pem) {
    auto pkey = detail::read_public_pem(pem, kEd25519);
    if (!pkey) {
        return pkey.error();
    }
    return Ed25519PublicKey(detail::raw_public_key(pkey.value().get()));
}

Result<Ed25519PublicKey> Ed25519PublicKey::from_raw(std::span<const std::uint8_t> raw) {
    auto bytes = detail::raw_key(raw, "Ed25519 public key");
    if (!bytes) {
        return bytes.error();
    }
    return Ed25519PublicKey(bytes.value());
}

Result<Ed25519PublicKey> Ed25519PublicKey::load(const std::filesystem::path& path) {
    return detail::load_public_key<Ed25519PublicKey>(path, kEd25519);
}

std::string Ed25519PublicKey::to_pem() const {
    return detail::public_pem(raw_, kEd25519);
}

Status Ed25519PublicKey::save(const std::filesystem::path& path, bool overwrite) const {
    return detail::save_public_pem(path, raw_, kEd25519, overwrite);
}

bool Ed25519PublicKey::verify(std::span<const std::uint8_t> message,
                              std::span<const std::uint8_t> signature) const noexcept {
    if (signature.size() != kEd25519SignatureBytes) {
        return false;
    }
    UniqueEvpPkey pkey = detail::public_pkey(raw_, kEd25519);
    UniqueEvpMdCtx ctx(EVP_MD_CTX_new());
    bool ok = pkey && ctx &&
              EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) == 1 &&
              EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                               non_null(message.data()), message.size()) == 1;
    if (!ok) {
        ERR_clear_error();
    }
    return ok;
}

bool Ed25519PublicKey::verify(std::string_view message,
                              std::span<const std::uint8_t> signature) const noexcept {
    return verify(as_bytes(message), signature);
}

std::string Ed25519PublicKey::fingerprint() const {
    return base64url_encode(sha256(raw_));
}

std::string Ed25519PublicKey::jwk_thumbprint() const {
    // RFC 7638 section 3: the required members only, in lexicographic order, no white space.
    std::string canonical =
        R"({"crv":"Ed25519","kty":"OKP","x":")" + base64url_encode(raw_) + "\"}";
    return base64url_encode(sha256(as_bytes(canonical)));
}

// ---------------------------------------------------------------------------------------
// Ed25519PrivateKey

// Impl holds a key already checked to be Ed25519, and its public key computed once.
struct Ed25519PrivateKey::Impl {
    explicit Impl(UniqueEvpPkey key)
        : pkey(std::move(key)),
          public_key(Ed25519PublicKey::from_raw(detail::raw_public_key(pkey.get())).value()) {}

    UniqueEvpPkey pkey;
    Ed25519PublicKey public_key;
};

Ed25519PrivateKey::Ed25519PrivateKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Ed25519PrivateKey::Ed25519PrivateKey(Ed25519PrivateKey&& other) noexcept = default;
Ed25519PrivateKey& Ed25519PrivateKey::operator=(Ed25519PrivateKey&& other) noexcept = default;
Ed25519PrivateKey::~Ed25519PrivateKey() = default;

const Ed25519PrivateKey::Impl& Ed25519PrivateKey::impl() const {
    if (!impl_) {
        throw std::logic_error("use of a moved-from Ed25519PrivateKey");
    }
    return *impl_;
}

Ed25519PrivateKey Ed25519PrivateKey::generate() {
    return Ed25519PrivateKey(std::make_unique<Impl>(detail::generate_private_key(kEd25519)));
}

Result<Ed25519PrivateKey> Ed25519PrivateKey::from_pem(std::string_view pem) {
    auto pkey = detail::read_private_pem(pem, kEd25519);
    if (!pkey) {
        return pkey.error();
    }
    return Ed25519PrivateKey(std::make_unique<Impl>(std::move(pkey).value()));
}

Result<Ed25519PrivateKey> Ed25519PrivateKey::from_pem(const SecretBytes& pem) {
    return from_pem(detail::as_text(pem));
}

Result<Ed25519PrivateKey> Ed25519PrivateKey::from_raw_seed(std::span<const std::uint8_t> seed) {
    auto pkey = detail::private_key_from_raw(seed, kEd25519, "Ed25519 private key seed");
    if (!pkey) {
        return pkey.error();
    }
    return Ed25519PrivateKey(std::make_unique<Impl>(std::move(pkey).value()));
}

Result<Ed25519PrivateKey> Ed25519PrivateKey::load(const std::filesystem::path& path) {
    return detail::load_private_key<Ed25519PrivateKey>(path, kEd25519);
}

SecretBytes Ed25519PrivateKey::to_pem() const {
    return detail::private_pem(impl().pkey.get());
}

Status Ed25519PrivateKey::save(const std::filesystem::path& path, bool overwrite) const {
    return detail::save_private_pem(path, impl().pkey.get(), overwrite);
}

Ed25519PublicKey Ed25519PrivateKey::public_key() const {
    return impl().public_key;
}

Ed25519Signature Ed25519PrivateKey::sign(std::span<const std::uint8_t> message) const {
    const Impl& key = impl();
    Ed25519Signature signature{};
    std::size_t size = signature.size();
    UniqueEvpMdCtx ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.pkey.get()) != 1 ||
        EVP_DigestSign(ctx.get(), signature.data(), &size, non_null(message.data()),
                       message.size()) != 1 ||
        size != signature.size()) {
        detail::throw_openssl("Ed25519 signing");
    }
    return signature;
}

Ed25519Signature Ed25519PrivateKey::sign(std::string_view message) const {
    return sign(as_bytes(message));
}

}  // namespace cipherpulse
