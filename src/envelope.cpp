#include "cipherpulse/envelope.h"

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include <algorithm>
#include <limits>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cipherpulse/base64url.h"
#include "cipherpulse/files.h"

namespace cipherpulse {
namespace {

struct EvpPkeyDeleter {
    void operator()(EVP_PKEY* pkey) const noexcept { EVP_PKEY_free(pkey); }
};
struct EvpPkeyCtxDeleter {
    void operator()(EVP_PKEY_CTX* ctx) const noexcept { EVP_PKEY_CTX_free(ctx); }
};
struct EvpCipherCtxDeleter {
    void operator()(EVP_CIPHER_CTX* ctx) const noexcept { EVP_CIPHER_CTX_free(ctx); }
};
struct EvpKdfDeleter {
    void operator()(EVP_KDF* kdf) const noexcept { EVP_KDF_free(kdf); }
};
struct EvpKdfCtxDeleter {
    void operator()(EVP_KDF_CTX* ctx) const noexcept { EVP_KDF_CTX_free(ctx); }
};
struct BioDeleter {
    void operator()(BIO* bio) const noexcept { BIO_free(bio); }
};
using UniqueEvpPkey = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;
using UniqueEvpPkeyCtx = std::unique_ptr<EVP_PKEY_CTX, EvpPkeyCtxDeleter>;
using UniqueEvpCipherCtx = std::unique_ptr<EVP_CIPHER_CTX, EvpCipherCtxDeleter>;
using UniqueEvpKdf = std::unique_ptr<EVP_KDF, EvpKdfDeleter>;
using UniqueEvpKdfCtx = std::unique_ptr<EVP_KDF_CTX, EvpKdfCtxDeleter>;
using UniqueBio = std::unique_ptr<BIO, BioDeleter>;
using Json = nlohmann::json;

using X25519Raw = std::array<std::uint8_t, kX25519PublicKeyBytes>;
using EnvelopeIv = std::array<std::uint8_t, kEnvelopeIvBytes>;

constexpr std::string_view kPublicLabel = "PUBLIC KEY";
constexpr std::string_view kPrivateLabel = "PRIVATE KEY";
constexpr std::string_view kEncryptedPrivateLabel = "ENCRYPTED PRIVATE KEY";

constexpr std::string_view kKdfInfo = "cipherpulse-envelope/1 aes-256-gcm";
constexpr std::size_t kKeyBytes = 32;

// The envelope text, piece by piece: serialize() and envelope_size() share these so the
// size can never drift from what is written.
constexpr std::string_view kOpenV = R"({"v":")";
constexpr std::string_view kThenHdr = R"(","hdr":")";
constexpr std::string_view kThenRcpt = R"(","rcpt":")";
constexpr std::string_view kThenEpk = R"(","epk":")";
constexpr std::string_view kThenIv = R"(","iv":")";
constexpr std::string_view kThenCt = R"(","ct":")";
constexpr std::string_view kThenSig = R"(","sig":")";
constexpr std::string_view kClose = R"("})";
constexpr const char* kMemberNames[] = {"v", "hdr", "rcpt", "epk", "iv", "ct", "sig"};

// ---------------------------------------------------------------------------------------
// OpenSSL and PEM plumbing. The PEM framing rules are those of ed25519.cpp, so both key
// types accept exactly the same files.

// Errors from untrusted input leave OpenSSL's thread-local error queue clean, so they do not
// surface later as a confusing reason for an unrelated failure.
Error refuse(ErrorCode code, std::string message) {
    ERR_clear_error();
    return make_error(code, std::move(message));
}

[[noreturn]] void throw_openssl(const char* what) {
    ERR_clear_error();
    throw std::runtime_error(std::string("OpenSSL failure: ") + what);
}

std::span<const std::uint8_t> as_bytes(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && is_space(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && is_space(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

// A label comes from untrusted text and ends up in a log line: keep it short and printable.
std::string printable_label(std::string_view label) {
    std::string out;
    for (char c : label.substr(0, 40)) {
        out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
    }
    return out;
}

// check_pem_block makes sure `text` is exactly one PEM block with the `expected` label
// (plus surrounding white space) and returns the block without that white space. OpenSSL
// alone would skip any text before the block and ignore anything after it, so a file
// holding two keys would silently mean the first.
Result<std::string_view> check_pem_block(std::string_view text, std::string_view expected) {
    constexpr std::string_view kBegin = "-----BEGIN ";
    constexpr std::string_view kDashes = "-----";
    text = trim(text);
    if (text.substr(0, kBegin.size()) != kBegin) {
        return refuse(ErrorCode::kInvalidEncoding, "not a PEM block (no -----BEGIN line)");
    }
    std::string_view rest = text.substr(kBegin.size());
    std::size_t label_end = rest.find(kDashes);
    std::size_t line_end = rest.find('\n');
    if (label_end == std::string_view::npos || label_end > line_end) {
        return refuse(ErrorCode::kInvalidEncoding, "malformed PEM -----BEGIN line");
    }
    std::string_view label = rest.substr(0, label_end);
    if (label != expected) {
        if (label == kEncryptedPrivateLabel) {
            return refuse(ErrorCode::kUnsupported,
                          "encrypted private key PEM is not supported; store the key "
                          "unencrypted with mode 0600");
        }
        return refuse(ErrorCode::kInvalidKey, "expected a PEM '" + std::string(expected) +
                                                  "' block, found '" + printable_label(label) +
                                                  "'");
    }
    std::string end_line = "-----END " + std::string(expected) + "-----";
    if (text.size() < end_line.size() || text.substr(text.size() - end_line.size()) != end_line) {
        return refuse(ErrorCode::kInvalidEncoding,
                      "PEM text must end with " + end_line + " and hold nothing else");
    }
    if (text.find(kBegin, kBegin.size()) != std::string_view::npos) {
        return refuse(ErrorCode::kInvalidEncoding, "more than one PEM block");
    }
    return text;
}

// pem_bio checks the size and framing of untrusted PEM text and returns a BIO over the block.
Result<UniqueBio> pem_bio(std::string_view text, std::string_view expected_label) {
    if (text.size() > kX25519MaxPemBytes) {
        return refuse(ErrorCode::kInvalidLength,
                      "PEM text too large (" + std::to_string(text.size()) + " bytes)");
    }
    auto block = check_pem_block(text, expected_label);
    if (!block) {
        return block.error();
    }
    text = block.value();
    UniqueBio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    if (!bio) {
        throw_openssl("BIO_new_mem_buf");
    }
    return bio;
}

// An encrypted key must never make OpenSSL prompt on the terminal for a passphrase.
int no_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) {
    return -1;
}

// read_x25519_pem parses untrusted PEM text labelled `label` with `reader`
// (PEM_read_bio_PUBKEY or PEM_read_bio_PrivateKey) and accepts only an X25519 key; `what`
// names the expected form in the refusal.
template <class Reader>
Result<UniqueEvpPkey> read_x25519_pem(std::string_view pem, std::string_view label, Reader reader,
                                      const char* what) {
    auto bio = pem_bio(pem, label);
    if (!bio) {
        return bio.error();
    }
    UniqueEvpPkey pkey(reader(bio.value().get(), nullptr, no_passphrase, nullptr));
    if (!pkey) {
        return refuse(ErrorCode::kInvalidEncoding, std::string("invalid ") + what);
    }
    if (EVP_PKEY_id(pkey.get()) != EVP_PKEY_X25519) {
        return refuse(ErrorCode::kInvalidKey, "not an X25519 key");
    }
    return pkey;
}

// key_from_file parses the PEM text read from `path` as a Key, naming the file in errors.
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

X25519Raw raw_public_of(const EVP_PKEY* pkey) {
    X25519Raw raw{};
    std::size_t size = raw.size();
    if (EVP_PKEY_get_raw_public_key(pkey, raw.data(), &size) != 1 || size != raw.size()) {
        throw_openssl("EVP_PKEY_get_raw_public_key");
    }
    return raw;
}

std::string bio_contents(BIO* bio) {
    BUF_MEM* mem = nullptr;
    BIO_get_mem_ptr(bio, &mem);
    if (mem == nullptr) {
        throw_openssl("BIO_get_mem_ptr");
    }
    return std::string(mem->data, mem->length);
}

template <std::size_t N>
std::array<std::uint8_t, N> to_array(std::span<const std::uint8_t> bytes) {
    std::array<std::uint8_t, N> out{};
    std::copy(bytes.begin(), bytes.end(), out.begin());
    return out;
}

// x25519 computes the shared secret of `own` and the raw public key `peer`. A peer of small
// order gives the all-zero secret; OpenSSL refuses to return it, and the explicit check
// keeps that true whatever provider does the work.
Result<SecretBytes> x25519(EVP_PKEY* own,
                           std::span<const std::uint8_t, kX25519PublicKeyBytes> peer) {
    UniqueEvpPkey peer_key(
        EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer.data(), peer.size()));
    if (!peer_key) {
        throw_openssl("EVP_PKEY_new_raw_public_key");
    }
    UniqueEvpPkeyCtx ctx(EVP_PKEY_CTX_new(own, nullptr));
    if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
        EVP_PKEY_derive_set_peer(ctx.get(), peer_key.get()) != 1) {
        throw_openssl("X25519 key agreement setup");
    }
    SecretBytes shared(kX25519PublicKeyBytes);
    std::size_t size = shared.size();
    const std::array<std::uint8_t, kX25519PublicKeyBytes> zero{};
    if (EVP_PKEY_derive(ctx.get(), shared.data(), &size) != 1 || size != shared.size() ||
        constant_time_equal(shared.span(), zero)) {
        return refuse(ErrorCode::kInvalidKey,
                      "X25519 public key has small order (all-zero shared secret)");
    }
    return shared;
}

// has_small_order tells whether `raw` is a point of order 1, 2, 4 or 8 (on the curve or its
// twist). Any clamped scalar k = 8m has 0 < m < 2^252, below the large prime factor of both
// group orders, so k * P is the identity exactly when the order of P divides 8: one scalar
// multiplication by a fixed key decides it.
bool has_small_order(const X25519Raw& raw) {
    static constexpr std::array<std::uint8_t, kX25519PrivateKeyBytes> kProbe = {
        0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
        0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
        0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a};
    UniqueEvpPkey probe(
        EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, kProbe.data(), kProbe.size()));
    if (!probe) {
        throw_openssl("EVP_PKEY_new_raw_private_key");
    }
    return !x25519(probe.get(), raw).ok();
}

}  // namespace

namespace detail {

// X25519KeyAccess is what the envelope code below needs from the key classes' internals.
struct X25519KeyAccess {
    static EVP_PKEY* pkey(const X25519PrivateKey& key);
    static X25519PublicKey trusted_public(const X25519Raw& raw) { return X25519PublicKey(raw); }
};

}  // namespace detail

// ---------------------------------------------------------------------------------------
// X25519PublicKey

Result<X25519PublicKey> X25519PublicKey::from_pem(std::string_view pem) {
    auto pkey = read_x25519_pem(pem, kPublicLabel, PEM_read_bio_PUBKEY, "SubjectPublicKeyInfo PEM");
    if (!pkey) {
        return pkey.error();
    }
    return from_raw(raw_public_of(pkey.value().get()));
}

Result<X25519PublicKey> X25519PublicKey::from_raw(std::span<const std::uint8_t> raw) {
    if (raw.size() != kX25519PublicKeyBytes) {
        return make_error(ErrorCode::kInvalidLength,
                          "X25519 public key must be 32 bytes, got " + std::to_string(raw.size()));
    }
    X25519Raw bytes = to_array<kX25519PublicKeyBytes>(raw);
    if (has_small_order(bytes)) {
        return make_error(ErrorCode::kInvalidKey,
                          "X25519 public key is a point of small order (unusable for key "
                          "agreement)");
    }
    return X25519PublicKey(bytes);
}

Result<X25519PublicKey> X25519PublicKey::load(const std::filesystem::path& path) {
    return key_from_file<X25519PublicKey>(read_file(path, kX25519MaxPemBytes), path);
}

std::string X25519PublicKey::to_pem() const {
    UniqueEvpPkey pkey(
        EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, raw_.data(), raw_.size()));
    if (!pkey) {
        throw_openssl("EVP_PKEY_new_raw_public_key");
    }
    UniqueBio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey.get()) != 1) {
        throw_openssl("PEM_write_bio_PUBKEY");
    }
    return bio_contents(bio.get());
}

Status X25519PublicKey::save(const std::filesystem::path& path, bool overwrite) const {
    return write_file_atomic(path, to_pem(), kPublicFileMode, overwrite);
}

std::string X25519PublicKey::fingerprint() const {
    return base64url_encode(sha256(raw_));
}

// ---------------------------------------------------------------------------------------
// X25519PrivateKey

// Impl holds a key already checked to be X25519, and its public key computed once (the
// public key of a private key is a multiple of the base point: never of small order).
struct X25519PrivateKey::Impl {
    explicit Impl(UniqueEvpPkey key)
        : pkey(std::move(key)),
          public_key(detail::X25519KeyAccess::trusted_public(raw_public_of(pkey.get()))) {}

    UniqueEvpPkey pkey;
    X25519PublicKey public_key;
};

EVP_PKEY* detail::X25519KeyAccess::pkey(const X25519PrivateKey& key) {
    return key.impl().pkey.get();
}

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
    UniqueEvpPkeyCtx ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
    EVP_PKEY* raw_pkey = nullptr;
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
        EVP_PKEY_keygen(ctx.get(), &raw_pkey) != 1) {
        throw_openssl("X25519 key generation");
    }
    return X25519PrivateKey(std::make_unique<Impl>(UniqueEvpPkey(raw_pkey)));
}

Result<X25519PrivateKey> X25519PrivateKey::from_pem(std::string_view pem) {
    auto pkey =
        read_x25519_pem(pem, kPrivateLabel, PEM_read_bio_PrivateKey, "PKCS#8 private key PEM");
    if (!pkey) {
        return pkey.error();
    }
    return X25519PrivateKey(std::make_unique<Impl>(std::move(pkey).value()));
}

Result<X25519PrivateKey> X25519PrivateKey::from_pem(const SecretBytes& pem) {
    return from_pem(std::string_view(reinterpret_cast<const char*>(pem.data()), pem.size()));
}

Result<X25519PrivateKey> X25519PrivateKey::from_raw(std::span<const std::uint8_t> raw) {
    if (raw.size() != kX25519PrivateKeyBytes) {
        return make_error(ErrorCode::kInvalidLength,
                          "X25519 private key must be 32 bytes, got " + std::to_string(raw.size()));
    }
    UniqueEvpPkey pkey(
        EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, raw.data(), raw.size()));
    if (!pkey) {
        throw_openssl("EVP_PKEY_new_raw_private_key");
    }
    return X25519PrivateKey(std::make_unique<Impl>(std::move(pkey)));
}

Result<X25519PrivateKey> X25519PrivateKey::load(const std::filesystem::path& path) {
    return key_from_file<X25519PrivateKey>(read_private_file(path, kX25519MaxPemBytes), path);
}

SecretBytes X25519PrivateKey::to_pem() const {
    // BIO_s_mem frees (and grows) its buffer with OPENSSL_clear_free, so no copy lingers.
    UniqueBio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), impl().pkey.get(), nullptr, nullptr, 0, nullptr,
                                         nullptr) != 1) {
        throw_openssl("PEM_write_bio_PrivateKey");
    }
    BUF_MEM* mem = nullptr;
    BIO_get_mem_ptr(bio.get(), &mem);
    if (mem == nullptr) {
        throw_openssl("BIO_get_mem_ptr");
    }
    SecretBytes out(mem->length);
    std::copy(mem->data, mem->data + mem->length, out.data());
    return out;
}

Status X25519PrivateKey::save(const std::filesystem::path& path, bool overwrite) const {
    SecretBytes pem = to_pem();
    return write_file_atomic(path, pem.span(), kPrivateFileMode, overwrite);
}

X25519PublicKey X25519PrivateKey::public_key() const {
    return impl().public_key;
}

SecretBytes x25519_shared_for_test(const X25519PrivateKey& own, const X25519PublicKey& peer) {
    auto shared = x25519(detail::X25519KeyAccess::pkey(own), peer.raw());
    if (!shared) {
        throw_openssl("X25519 key agreement");  // a constructed public key has large order
    }
    return std::move(shared).value();
}

// ---------------------------------------------------------------------------------------
// Envelope

namespace {

std::size_t base64url_size(std::size_t bytes) {
    return (bytes * 4 + 2) / 3;
}

void append_u32be(std::vector<std::uint8_t>& out, std::size_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) {
        out.push_back(static_cast<std::uint8_t>((value >> shift) & 0xff));
    }
}

// append_bytes grows `out` and copies into the new tail. GCC 12 (-O2 and -O3) reports a false
// -Wstringop-overflow for vector::insert of a range here, on the reallocation path that
// reserve() makes unreachable; resize and copy keep it quiet.
void append_bytes(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> bytes) {
    const std::size_t at = out.size();
    out.resize(at + bytes.size());
    std::copy(bytes.begin(), bytes.end(), out.begin() + static_cast<std::ptrdiff_t>(at));
}

// signed_message is what the sender signs. Every variable-length part carries its length,
// so no two different envelopes share a message. The caller's sizes are known up front, so
// the message is reserved once and every part appended as a byte span.
std::vector<std::uint8_t> signed_message(std::string_view header, const X25519Raw& recipient,
                                         const X25519Raw& epk, const EnvelopeIv& iv,
                                         std::span<const std::uint8_t> ct) {
    std::vector<std::uint8_t> out;
    out.reserve(kEnvelopeVersion.size() + 1 + 4 + header.size() + recipient.size() + epk.size() +
                iv.size() + 4 + ct.size());
    append_bytes(out, as_bytes(kEnvelopeVersion));
    out.push_back(0x00);
    append_u32be(out, header.size());
    append_bytes(out, as_bytes(header));
    append_bytes(out, recipient);
    append_bytes(out, epk);
    append_bytes(out, iv);
    append_u32be(out, ct.size());
    append_bytes(out, ct);
    return out;
}

// envelope_key binds the AES key to both X25519 public keys through the salt, so the same
// shared secret reached with other keys would give another key, and to the sender's
// Ed25519 key through the info: a ciphertext re-signed by anyone else no longer decrypts,
// so a valid envelope from S shows that S sealed the plaintext, not only that S signed it.
SecretBytes envelope_key(const SecretBytes& shared, const X25519Raw& epk,
                         const X25519Raw& recipient, const Ed25519PublicKey& sender) {
    std::array<std::uint8_t, 2 * kX25519PublicKeyBytes> salt{};
    std::copy(epk.begin(), epk.end(), salt.begin());
    std::copy(recipient.begin(), recipient.end(), salt.begin() + kX25519PublicKeyBytes);
    const std::array<std::uint8_t, kEd25519PublicKeyBytes> sender_raw = sender.raw();
    std::array<std::uint8_t, kKdfInfo.size() + kEd25519PublicKeyBytes> info{};
    std::copy(kKdfInfo.begin(), kKdfInfo.end(), info.begin());
    std::copy(sender_raw.begin(), sender_raw.end(), info.begin() + kKdfInfo.size());
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                          const_cast<std::uint8_t*>(shared.data()), shared.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt.data(), salt.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
        OSSL_PARAM_construct_end(),
    };
    UniqueEvpKdf kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
    UniqueEvpKdfCtx ctx(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr);
    SecretBytes key(kKeyBytes);
    if (!ctx || EVP_KDF_derive(ctx.get(), key.data(), key.size(), params) != 1) {
        throw_openssl("HKDF-SHA256");
    }
    return key;
}

// gcm_seal returns the AES-256-GCM ciphertext of `plaintext` followed by the tag. Sizes are
// bounded by kEnvelopeMaxBytes, so they fit OpenSSL's int lengths.
std::vector<std::uint8_t> gcm_seal(const SecretBytes& key, const EnvelopeIv& iv,
                                   std::span<const std::uint8_t> aad,
                                   std::span<const std::uint8_t> plaintext) {
    std::vector<std::uint8_t> out(plaintext.size() + kEnvelopeTagBytes);
    UniqueEvpCipherCtx ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    bool ok = ctx &&
              EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), iv.data()) == 1;
    if (ok && !aad.empty()) {
        ok = EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(),
                               static_cast<int>(aad.size())) == 1;
    }
    if (ok && !plaintext.empty()) {
        ok = EVP_EncryptUpdate(ctx.get(), out.data(), &len, plaintext.data(),
                               static_cast<int>(plaintext.size())) == 1 &&
             static_cast<std::size_t>(len) == plaintext.size();
    }
    ok = ok && EVP_EncryptFinal_ex(ctx.get(), out.data() + plaintext.size(), &len) == 1 &&
         len == 0 &&
         EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kEnvelopeTagBytes),
                             out.data() + plaintext.size()) == 1;
    if (!ok) {
        throw_openssl("AES-256-GCM encryption");
    }
    return out;
}

// gcm_open decrypts ciphertext || tag into `plaintext`; false when the tag does not verify.
bool gcm_open(const SecretBytes& key, const EnvelopeIv& iv, std::span<const std::uint8_t> aad,
              std::span<const std::uint8_t> sealed, SecretBytes& plaintext) {
    std::span<const std::uint8_t> body = sealed.first(sealed.size() - kEnvelopeTagBytes);
    std::array<std::uint8_t, kEnvelopeTagBytes> tag =
        to_array<kEnvelopeTagBytes>(sealed.last(kEnvelopeTagBytes));
    SecretBytes out(body.size());
    UniqueEvpCipherCtx ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    bool ok = ctx &&
              EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), iv.data()) == 1;
    if (ok && !aad.empty()) {
        ok = EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(),
                               static_cast<int>(aad.size())) == 1;
    }
    if (ok && !body.empty()) {
        ok = EVP_DecryptUpdate(ctx.get(), out.data(), &len, body.data(),
                               static_cast<int>(body.size())) == 1 &&
             static_cast<std::size_t>(len) == body.size();
    }
    ok = ok &&
         EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag.size()),
                             tag.data()) == 1 &&
         EVP_DecryptFinal_ex(ctx.get(), out.data() + body.size(), &len) == 1;
    if (!ok) {
        ERR_clear_error();
        return false;
    }
    plaintext = std::move(out);
    return true;
}

// EnvelopeFields are the decoded members of an envelope, checked for form only.
struct EnvelopeFields {
    std::string header;
    std::string rcpt;  // as written: strict base64url of 32 bytes
    X25519Raw epk{};
    EnvelopeIv iv{};
    std::vector<std::uint8_t> ct;
    Ed25519Signature sig{};
};

Error malformed(std::string what) {
    return make_error(ErrorCode::kInvalidEncoding, "envelope: " + std::move(what));
}

// parse_object parses the envelope text as one JSON object whose member values are kept
// only when they are strings. The callback discards every nested array or object as it is
// parsed, so a deeply nested input costs a bit per level instead of a tree of values.
Result<Json> parse_object(std::string_view text, bool& nested) {
    // nlohmann's lexer takes a NUL byte for the end of input and would ignore what follows;
    // valid JSON never holds a raw NUL, so refuse it here.
    if (text.find('\0') != std::string_view::npos) {
        return malformed("not a JSON object (NUL byte)");
    }
    std::set<std::string> names;
    bool duplicate = false;
    auto on_event = [&](int depth, Json::parse_event_t event, Json& parsed) {
        if (event == Json::parse_event_t::key && depth == 1 &&
            !names.insert(parsed.get<std::string>()).second) {
            duplicate = true;
        }
        if (event == Json::parse_event_t::array_start ||
            (event == Json::parse_event_t::object_start && depth > 0)) {
            if (depth > 0) {
                nested = true;  // a top-level array is simply not an object
            }
            return false;
        }
        return true;
    };
    Json doc = Json::parse(text.begin(), text.end(), on_event, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
        return malformed("not a JSON object");
    }
    if (duplicate) {
        return malformed("repeats a member name");
    }
    return doc;
}

// check_members applies the version check first, so an envelope of a later version is
// reported as such even when its members differ.
Status check_members(const Json& doc, bool nested) {
    auto v = doc.find("v");
    if (v == doc.end() || !v->is_string()) {
        return malformed("no string member \"v\"");
    }
    if (v->get_ref<const std::string&>() != kEnvelopeVersion) {
        return make_error(ErrorCode::kUnsupported,
                          "envelope version is not \"" + std::string(kEnvelopeVersion) + "\"");
    }
    if (nested) {
        return malformed("every member must be a string");
    }
    for (const char* name : kMemberNames) {
        auto it = doc.find(name);
        if (it == doc.end()) {
            return malformed(std::string("missing member \"") + name + "\"");
        }
        if (!it->is_string()) {
            return malformed(std::string("member \"") + name + "\" must be a string");
        }
    }
    if (doc.size() != std::size(kMemberNames)) {
        return malformed("unknown member (expected exactly v, hdr, rcpt, epk, iv, ct, sig)");
    }
    return Ok{};
}

Result<std::vector<std::uint8_t>> decode_member(const Json& doc, const char* name) {
    auto bytes = base64url_decode(doc.at(name).get_ref<const std::string&>());
    if (!bytes) {
        return malformed(std::string("member \"") + name + "\": " + bytes.error().message);
    }
    return bytes;
}

Status check_size(const std::vector<std::uint8_t>& bytes, const char* name, std::size_t expected) {
    if (bytes.size() != expected) {
        return make_error(ErrorCode::kInvalidLength, std::string("envelope member \"") + name +
                                                         "\" must be " + std::to_string(expected) +
                                                         " bytes, got " +
                                                         std::to_string(bytes.size()));
    }
    return Ok{};
}

// parse_envelope runs the checks of form, in the order open_envelope documents.
Result<EnvelopeFields> parse_envelope(std::string_view text) {
    if (text.size() > kEnvelopeMaxBytes) {
        return make_error(ErrorCode::kInvalidLength,
                          "envelope too large: " + std::to_string(text.size()) + " bytes, limit " +
                              std::to_string(kEnvelopeMaxBytes));
    }
    bool nested = false;
    auto doc = parse_object(text, nested);
    if (!doc) {
        return doc.error();
    }
    if (auto members = check_members(doc.value(), nested); !members) {
        return members.error();
    }
    const Json& d = doc.value();
    auto hdr = decode_member(d, "hdr");
    auto rcpt = decode_member(d, "rcpt");
    auto epk = decode_member(d, "epk");
    auto iv = decode_member(d, "iv");
    auto ct = decode_member(d, "ct");
    auto sig = decode_member(d, "sig");
    for (const auto* member : {&hdr, &rcpt, &epk, &iv, &ct, &sig}) {
        if (!*member) {
            return member->error();
        }
    }
    for (const Status& size : {check_size(rcpt.value(), "rcpt", kX25519PublicKeyBytes),
                               check_size(epk.value(), "epk", kX25519PublicKeyBytes),
                               check_size(iv.value(), "iv", kEnvelopeIvBytes),
                               check_size(sig.value(), "sig", kEd25519SignatureBytes)}) {
        if (!size) {
            return size.error();
        }
    }
    if (ct.value().size() < kEnvelopeTagBytes) {
        return make_error(ErrorCode::kInvalidLength,
                          "envelope member \"ct\" is shorter than the 16-byte GCM tag");
    }
    EnvelopeFields out;
    out.header.assign(hdr.value().begin(), hdr.value().end());
    out.rcpt = d.at("rcpt").get<std::string>();
    out.epk = to_array<kX25519PublicKeyBytes>(epk.value());
    out.iv = to_array<kEnvelopeIvBytes>(iv.value());
    out.ct = std::move(ct).value();
    out.sig = to_array<kEd25519SignatureBytes>(sig.value());
    return out;
}

// serialize writes the canonical form: members in the documented order, no white space.
// Every value is base64url, so nothing needs JSON escaping.
std::string serialize(std::string_view header, const X25519PublicKey& recipient,
                      const X25519Raw& epk, const EnvelopeIv& iv, std::span<const std::uint8_t> ct,
                      const Ed25519Signature& sig) {
    const std::string values[] = {base64url_encode(header), recipient.fingerprint(),
                                  base64url_encode(epk),    base64url_encode(iv),
                                  base64url_encode(ct),     base64url_encode(sig)};
    std::string out;
    out.reserve(envelope_size(header.size(), ct.size() - kEnvelopeTagBytes));
    out += kOpenV;
    out += kEnvelopeVersion;
    const std::string_view separators[] = {kThenHdr, kThenRcpt, kThenEpk,
                                           kThenIv,  kThenCt,   kThenSig};
    for (std::size_t i = 0; i < std::size(values); ++i) {
        out += separators[i];
        out += values[i];
    }
    out += kClose;
    return out;
}

std::string seal_with(std::string_view header, std::span<const std::uint8_t> plaintext,
                      const X25519PublicKey& recipient, const Ed25519PrivateKey& sender,
                      const X25519PrivateKey& ephemeral, const EnvelopeIv& iv) {
    if (envelope_size(header.size(), plaintext.size()) > kEnvelopeMaxBytes) {
        throw std::invalid_argument("seal_envelope: the envelope would exceed kEnvelopeMaxBytes");
    }
    X25519Raw epk = ephemeral.public_key().raw();
    X25519Raw recipient_raw = recipient.raw();
    auto shared = x25519(detail::X25519KeyAccess::pkey(ephemeral), recipient_raw);
    if (!shared) {
        throw_openssl("X25519 key agreement");  // a constructed public key has large order
    }
    SecretBytes key = envelope_key(shared.value(), epk, recipient_raw, sender.public_key());
    std::vector<std::uint8_t> ct = gcm_seal(key, iv, as_bytes(header), plaintext);
    Ed25519Signature sig = sender.sign(signed_message(header, recipient_raw, epk, iv, ct));
    return serialize(header, recipient, epk, iv, ct, sig);
}

}  // namespace

std::size_t envelope_size(std::size_t header_bytes, std::size_t plaintext_bytes) noexcept {
    if (header_bytes > kEnvelopeMaxBytes || plaintext_bytes > kEnvelopeMaxBytes) {
        return std::numeric_limits<std::size_t>::max();
    }
    std::size_t fixed = 0;
    for (std::string_view part : {kOpenV, kEnvelopeVersion, kThenHdr, kThenRcpt, kThenEpk, kThenIv,
                                  kThenCt, kThenSig, kClose}) {
        fixed += part.size();
    }
    fixed += base64url_size(kX25519PublicKeyBytes) * 2 + base64url_size(kEnvelopeIvBytes) +
             base64url_size(kEd25519SignatureBytes);  // rcpt is a 32-byte digest too
    return fixed + base64url_size(header_bytes) +
           base64url_size(plaintext_bytes + kEnvelopeTagBytes);
}

std::string seal_envelope(std::string_view header, std::span<const std::uint8_t> plaintext,
                          const X25519PublicKey& recipient, const Ed25519PrivateKey& sender) {
    EnvelopeIv iv{};
    random_bytes(iv);
    return seal_with(header, plaintext, recipient, sender, X25519PrivateKey::generate(), iv);
}

std::string seal_envelope(std::string_view header, std::string_view plaintext,
                          const X25519PublicKey& recipient, const Ed25519PrivateKey& sender) {
    return seal_envelope(header, as_bytes(plaintext), recipient, sender);
}

std::string unsafe_seal_envelope_for_test(std::string_view header,
                                          std::span<const std::uint8_t> plaintext,
                                          const X25519PublicKey& recipient,
                                          const Ed25519PrivateKey& sender,
                                          const X25519PrivateKey& ephemeral,
                                          std::span<const std::uint8_t, kEnvelopeIvBytes> iv) {
    return seal_with(header, plaintext, recipient, sender, ephemeral,
                     to_array<kEnvelopeIvBytes>(iv));
}

std::string unsafe_seal_envelope_for_test(std::string_view header, std::string_view plaintext,
                                          const X25519PublicKey& recipient,
                                          const Ed25519PrivateKey& sender,
                                          const X25519PrivateKey& ephemeral,
                                          std::span<const std::uint8_t, kEnvelopeIvBytes> iv) {
    return unsafe_seal_envelope_for_test(header, as_bytes(plaintext), recipient, sender, ephemeral,
                                         iv);
}

Result<OpenedEnvelope> open_envelope(std::string_view envelope_json,
                                     const X25519PrivateKey& recipient,
                                     const Ed25519PublicKey& sender) {
    auto parsed = parse_envelope(envelope_json);
    if (!parsed) {
        return parsed.error();
    }
    EnvelopeFields& f = parsed.value();
    const X25519PublicKey own = recipient.public_key();
    const std::string own_fingerprint = own.fingerprint();
    if (f.rcpt != own_fingerprint) {
        return make_error(ErrorCode::kInvalidKey, "envelope is for another recipient (rcpt " +
                                                      f.rcpt + ", this key is " + own_fingerprint +
                                                      ")");
    }
    // The signature is checked before the private key touches anything from the envelope.
    if (!sender.verify(signed_message(f.header, own.raw(), f.epk, f.iv, f.ct), f.sig)) {
        return make_error(
            ErrorCode::kBadSignature,
            "envelope signature does not verify with sender key " + sender.fingerprint());
    }
    auto shared = x25519(detail::X25519KeyAccess::pkey(recipient), f.epk);
    if (!shared) {
        return make_error(ErrorCode::kInvalidKey,
                          "envelope ephemeral key is a point of small order");
    }
    SecretBytes key = envelope_key(shared.value(), f.epk, own.raw(), sender);
    OpenedEnvelope out;
    if (!gcm_open(key, f.iv, as_bytes(f.header), f.ct, out.plaintext)) {
        return make_error(ErrorCode::kBadSignature,
                          "envelope does not decrypt (GCM tag mismatch: altered, or sealed "
                          "with other keys)");
    }
    out.header = std::move(f.header);
    return out;
}

Result<std::string> unsafe_envelope_header(std::string_view envelope_json) {
    auto parsed = parse_envelope(envelope_json);
    if (!parsed) {
        return parsed.error();
    }
    return std::move(parsed.value().header);
}

}  // namespace cipherpulse
