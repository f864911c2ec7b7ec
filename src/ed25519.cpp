#include "cipherpulse/ed25519.h"

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <utility>

#include "cipherpulse/base64url.h"
#include "cipherpulse/files.h"

namespace cipherpulse {
namespace {

struct EvpPkeyDeleter {
    void operator()(EVP_PKEY* pkey) const noexcept { EVP_PKEY_free(pkey); }
};
struct EvpMdCtxDeleter {
    void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};
struct EvpPkeyCtxDeleter {
    void operator()(EVP_PKEY_CTX* ctx) const noexcept { EVP_PKEY_CTX_free(ctx); }
};
struct BioDeleter {
    void operator()(BIO* bio) const noexcept { BIO_free(bio); }
};
using UniqueEvpPkey = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;
using UniqueEvpMdCtx = std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter>;
using UniqueEvpPkeyCtx = std::unique_ptr<EVP_PKEY_CTX, EvpPkeyCtxDeleter>;
using UniqueBio = std::unique_ptr<BIO, BioDeleter>;

constexpr std::string_view kPublicLabel = "PUBLIC KEY";
constexpr std::string_view kPrivateLabel = "PRIVATE KEY";
constexpr std::string_view kEncryptedPrivateLabel = "ENCRYPTED PRIVATE KEY";

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

// Some OpenSSL functions reject a null pointer even with a zero length.
const unsigned char* non_null(const std::uint8_t* data) {
    static const unsigned char kEmpty = 0;
    return data != nullptr ? data : &kEmpty;
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
    if (text.size() > kEd25519MaxPemBytes) {
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

// read_ed25519_pem parses untrusted PEM text labelled `label` with `reader`
// (PEM_read_bio_PUBKEY or PEM_read_bio_PrivateKey) and accepts only an Ed25519 key;
// `what` names the expected form in the refusal.
template <class Reader>
Result<UniqueEvpPkey> read_ed25519_pem(std::string_view pem, std::string_view label, Reader reader,
                                       const char* what) {
    auto bio = pem_bio(pem, label);
    if (!bio) {
        return bio.error();
    }
    UniqueEvpPkey pkey(reader(bio.value().get(), nullptr, no_passphrase, nullptr));
    if (!pkey) {
        return refuse(ErrorCode::kInvalidEncoding, std::string("invalid ") + what);
    }
    if (EVP_PKEY_id(pkey.get()) != EVP_PKEY_ED25519) {
        return refuse(ErrorCode::kInvalidKey, "not an Ed25519 key");
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

std::array<std::uint8_t, kEd25519PublicKeyBytes> raw_public_of(const EVP_PKEY* pkey) {
    std::array<std::uint8_t, kEd25519PublicKeyBytes> raw{};
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

}  // namespace

// ---------------------------------------------------------------------------------------
// Ed25519PublicKey

Result<Ed25519PublicKey> Ed25519PublicKey::from_pem(std::string_view pem) {
    auto pkey =
        read_ed25519_pem(pem, kPublicLabel, PEM_read_bio_PUBKEY, "SubjectPublicKeyInfo PEM");
    if (!pkey) {
        return pkey.error();
    }
    return Ed25519PublicKey(raw_public_of(pkey.value().get()));
}

Result<Ed25519PublicKey> Ed25519PublicKey::from_raw(std::span<const std::uint8_t> raw) {
    if (raw.size() != kEd25519PublicKeyBytes) {
        return make_error(ErrorCode::kInvalidLength,
                          "Ed25519 public key must be 32 bytes, got " + std::to_string(raw.size()));
    }
    std::array<std::uint8_t, kEd25519PublicKeyBytes> bytes{};
    std::copy(raw.begin(), raw.end(), bytes.begin());
    return Ed25519PublicKey(bytes);
}

Result<Ed25519PublicKey> Ed25519PublicKey::load(const std::filesystem::path& path) {
    return key_from_file<Ed25519PublicKey>(read_file(path, kEd25519MaxPemBytes), path);
}

std::string Ed25519PublicKey::to_pem() const {
    UniqueEvpPkey pkey(
        EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw_.data(), raw_.size()));
    if (!pkey) {
        throw_openssl("EVP_PKEY_new_raw_public_key");
    }
    UniqueBio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey.get()) != 1) {
        throw_openssl("PEM_write_bio_PUBKEY");
    }
    return bio_contents(bio.get());
}

Status Ed25519PublicKey::save(const std::filesystem::path& path, bool overwrite) const {
    return write_file_atomic(path, to_pem(), kPublicFileMode, overwrite);
}

bool Ed25519PublicKey::verify(std::span<const std::uint8_t> message,
                              std::span<const std::uint8_t> signature) const noexcept {
    if (signature.size() != kEd25519SignatureBytes) {
        return false;
    }
    UniqueEvpPkey pkey(
        EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw_.data(), raw_.size()));
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
          public_key(Ed25519PublicKey::from_raw(raw_public_of(pkey.get())).value()) {}

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
    UniqueEvpPkeyCtx ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
    EVP_PKEY* raw_pkey = nullptr;
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
        EVP_PKEY_keygen(ctx.get(), &raw_pkey) != 1) {
        throw_openssl("Ed25519 key generation");
    }
    return Ed25519PrivateKey(std::make_unique<Impl>(UniqueEvpPkey(raw_pkey)));
}

Result<Ed25519PrivateKey> Ed25519PrivateKey::from_pem(std::string_view pem) {
    auto pkey =
        read_ed25519_pem(pem, kPrivateLabel, PEM_read_bio_PrivateKey, "PKCS#8 private key PEM");
    if (!pkey) {
        return pkey.error();
    }
    return Ed25519PrivateKey(std::make_unique<Impl>(std::move(pkey).value()));
}

Result<Ed25519PrivateKey> Ed25519PrivateKey::from_pem(const SecretBytes& pem) {
    return from_pem(std::string_view(reinterpret_cast<const char*>(pem.data()), pem.size()));
}

Result<Ed25519PrivateKey> Ed25519PrivateKey::from_raw_seed(std::span<const std::uint8_t> seed) {
    if (seed.size() != kEd25519SeedBytes) {
        return make_error(
            ErrorCode::kInvalidLength,
            "Ed25519 private key seed must be 32 bytes, got " + std::to_string(seed.size()));
    }
    UniqueEvpPkey pkey(
        EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
    if (!pkey) {
        throw_openssl("EVP_PKEY_new_raw_private_key");
    }
    return Ed25519PrivateKey(std::make_unique<Impl>(std::move(pkey)));
}

Result<Ed25519PrivateKey> Ed25519PrivateKey::load(const std::filesystem::path& path) {
    return key_from_file<Ed25519PrivateKey>(read_private_file(path, kEd25519MaxPemBytes), path);
}

SecretBytes Ed25519PrivateKey::to_pem() const {
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

Status Ed25519PrivateKey::save(const std::filesystem::path& path, bool overwrite) const {
    SecretBytes pem = to_pem();
    return write_file_atomic(path, pem.span(), kPrivateFileMode, overwrite);
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
        throw_openssl("Ed25519 signing");
    }
    return signature;
}

Ed25519Signature Ed25519PrivateKey::sign(std::string_view message) const {
    return sign(as_bytes(message));
}

}  // namespace cipherpulse
