#include "cipherpulse/x25519.h"

#include <openssl/evp.h>

#include <stdexcept>
#include <utility>

#include "cipherpulse/base64url.h"
#include "pem_util.h"

namespace cipherpulse {
namespace {

using detail::UniqueEvpPkey;

constexpr detail::KeyType kX25519{EVP_PKEY_X25519, "X25519", kX25519MaxPemBytes};

// derive computes the shared secret of `own` and the raw public key `peer`. A peer of small
// order gives the all-zero secret; OpenSSL refuses to return it, and the explicit check
// keeps that true whatever provider does the work.
Result<SecretBytes> derive(EVP_PKEY* own,
                           std::span<const std::uint8_t, kX25519PublicKeyBytes> peer) {
    UniqueEvpPkey peer_key = detail::public_pkey(peer, kX25519);
    if (!peer_key) {
        detail::throw_openssl("EVP_PKEY_new_raw_public_key");
    }
    detail::UniqueEvpPkeyCtx ctx(EVP_PKEY_CTX_new(own, nullptr));
    if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
        EVP_PKEY_derive_set_peer(ctx.get(), peer_key.get()) != 1) {
        detail::throw_openssl("X25519 key agreement setup");
    }
    SecretBytes shared(kX25519PublicKeyBytes);
    std::size_t size = shared.size();
    const std::array<std::uint8_t, kX25519PublicKeyBytes> zero{};
    if (EVP_PKEY_derive(ctx.get(), shared.data(), &size) != 1 || size != shared.size() ||
        constant_time_equal(shared.span(), zero)) {
        return detail::openssl_refusal(
            ErrorCode::kInvalidKey, "X25519 public key has small order (all-zero shared secret)");
    }
    return shared;
}

// has_small_order tells whether `raw` is a point of order 1, 2, 4 or 8 (on the curve or its
// twist). Any clamped scalar k = 8m has 0 < m < 2^252, below the large prime factor of both
// group orders, so k * P is the identity exactly when the order of P divides 8: one scalar
// multiplication by a fixed key decides it.
bool has_small_order(const detail::RawKey& raw) {
    static constexpr std::array<std::uint8_t, kX25519PrivateKeyBytes> kProbe = {
        0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
        0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
        0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a};
    auto probe = detail::private_key_from_raw(kProbe, kX25519, "X25519 private key");
    return !derive(probe.value().get(), raw).ok();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// X25519PublicKey

Result<X25519PublicKey> X25519PublicKey::from_pem(std::string_view pem) {
    auto pkey = detail::read_public_pem(pem, kX25519);
    if (!pkey) {
        return pkey.error();
    }
    return from_raw(detail::raw_public_key(pkey.value().get()));
}

Result<X25519PublicKey> X25519PublicKey::from_raw(std::span<const std::uint8_t> raw) {
    auto bytes = detail::raw_key(raw, "X25519 public key");
    if (!bytes) {
        return bytes.error();
    }
    if (has_small_order(bytes.value())) {
        return make_error(ErrorCode::kInvalidKey,
                          "X25519 public key is a point of small order (unusable for key "
                          "agreement)");
    }
    return X25519PublicKey(bytes.value());
}

Result<X25519PublicKey> X25519PublicKey::load(const std::filesystem::path& path) {
    return detail::load_public_key<X25519PublicKey>(path, kX25519);
}

std::string X25519PublicKey::to_pem() const {
    return detail::public_pem(raw_, kX25519);
}

Status X25519PublicKey::save(const std::filesystem::path& path, bool overwrite) const {
    return detail::save_public_pem(path, raw_, kX25519, overwrite);
}

std::string X25519PublicKey::fingerprint() const {
    return base64url_encode(sha256(raw_));
}

// ---------------------------------------------------------------------------------------
// X25519PrivateKey

// Impl holds a key already checked to be X25519, and its public key computed once.
struct X25519PrivateKey::Impl {
    explicit Impl(UniqueEvpPkey key)
        : pkey(std::move(key)), public_key(detail::raw_public_key(pkey.get())) {}

    UniqueEvpPkey pkey;
    X25519PublicKey public_key;
};

X25519PrivateKey::X25519PrivateKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
X25519PrivateKey::X25519PrivateKey(X25519PrivateKey&& other) noexcept = default;
X25519PrivateKey& X25519PrivateKey::operator=(X25519PrivateKey&& other) noexcept = default;
X25519PrivateKey::~X25519PrivateKey() = default;

const X25519PrivateKey::Impl& X25519PrivateKey::impl() const {
    if (!impl_) {
        throw std::logic_error("use of a moved-from X25519PrivateKey");
    }
    return *impl_;
}

X25519PrivateKey X25519PrivateKey::generate() {
    return X25519PrivateKey(std::make_unique<Impl>(detail::generate_private_key(kX25519)));
}

Result<X25519PrivateKey> X25519PrivateKey::from_pem(std::string_view pem) {
    auto pkey = detail::read_private_pem(pem, kX25519);
    if (!pkey) {
        return pkey.error();
    }
    return X25519PrivateKey(std::make_unique<Impl>(std::move(pkey).value()));
}

Result<X25519PrivateKey> X25519PrivateKey::from_pem(const SecretBytes& pem) {
    return from_pem(detail::as_text(pem));
}

Result<X25519PrivateKey> X25519PrivateKey::from_raw(std::span<const std::uint8_t> raw) {
    auto pkey = detail::private_key_from_raw(raw, kX25519, "X25519 private key");
    if (!pkey) {
        return pkey.error();
    }
    return X25519PrivateKey(std::make_unique<Impl>(std::move(pkey).value()));
}

Result<X25519PrivateKey> X25519PrivateKey::load(const std::filesystem::path& path) {
    return detail::load_private_key<X25519PrivateKey>(path, kX25519);
}

SecretBytes X25519PrivateKey::to_pem() const {
    return detail::private_pem(impl().pkey.get());
}

Status X25519PrivateKey::save(const std::filesystem::path& path, bool overwrite) const {
    return detail::save_private_pem(path, impl().pkey.get(), overwrite);
}

X25519PublicKey X25519PrivateKey::public_key() const {
    return impl().public_key;
}

Result<SecretBytes> detail::X25519KeyAccess::agree(
    const X25519PrivateKey& own, std::span<const std::uint8_t, kX25519PublicKeyBytes> peer) {
    return derive(own.impl().pkey.get(), peer);
}

SecretBytes x25519_shared_for_test(const X25519PrivateKey& own, const X25519PublicKey& peer) {
    auto shared = detail::X25519KeyAccess::agree(own, peer.raw());
    if (!shared) {
        detail::throw_openssl("X25519 key agreement");  // a constructed public key has large order
    }
    return std::move(shared).value();
}

}  // namespace cipherpulse
