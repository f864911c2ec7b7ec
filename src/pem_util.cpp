#include "pem_util.h"

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace cipherpulse::detail {
namespace {

using UniqueBio = OpenSslPtr<BIO, BIO_free>;

constexpr std::string_view kPublicLabel = "PUBLIC KEY";
constexpr std::string_view kPrivateLabel = "PRIVATE KEY";
constexpr std::string_view kEncryptedPrivateLabel = "ENCRYPTED PRIVATE KEY";
constexpr std::string_view kWhiteSpace = " \t\n\r\f\v";

std::string_view strip_white_space(std::string_view text) {
    const std::size_t first = text.find_first_not_of(kWhiteSpace);
    if (first == std::string_view::npos) {
        return {};
    }
    return text.substr(first, text.find_last_not_of(kWhiteSpace) - first + 1);
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
    text = strip_white_space(text);
    if (text.substr(0, kBegin.size()) != kBegin) {
        return openssl_refusal(ErrorCode::kInvalidEncoding, "not a PEM block (no -----BEGIN line)");
    }
    std::string_view rest = text.substr(kBegin.size());
    std::size_t label_end = rest.find(kDashes);
    std::size_t line_end = rest.find('\n');
    if (label_end == std::string_view::npos || label_end > line_end) {
        return openssl_refusal(ErrorCode::kInvalidEncoding, "malformed PEM -----BEGIN line");
    }
    std::string_view label = rest.substr(0, label_end);
    if (label != expected) {
        if (label == kEncryptedPrivateLabel) {
            return openssl_refusal(ErrorCode::kUnsupported,
                                   "encrypted private key PEM is not supported; store the key "
                                   "unencrypted with mode 0600");
        }
        return openssl_refusal(ErrorCode::kInvalidKey, "expected a PEM '" + std::string(expected) +
                                                           "' block, found '" +
                                                           printable_label(label) + "'");
    }
    std::string end_line = "-----END " + std::string(expected) + "-----";
    if (text.size() < end_line.size() || text.substr(text.size() - end_line.size()) != end_line) {
        return openssl_refusal(ErrorCode::kInvalidEncoding,
                               "PEM text must end with " + end_line + " and hold nothing else");
    }
    if (text.find(kBegin, kBegin.size()) != std::string_view::npos) {
        return openssl_refusal(ErrorCode::kInvalidEncoding, "more than one PEM block");
    }
    return text;
}

// An encrypted key must never make OpenSSL prompt on the terminal for a passphrase.
int no_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) {
    return -1;
}

// read_pem checks the size and framing of untrusted PEM text, parses the block labelled
// `label` with `reader` (PEM_read_bio_PUBKEY or PEM_read_bio_PrivateKey) and accepts only a
// key of `type`; `form` names the expected form in the refusal.
template <class Reader>
Result<UniqueEvpPkey> read_pem(std::string_view pem, std::string_view label, Reader reader,
                               const char* form, const KeyType& type) {
    if (pem.size() > type.max_pem_bytes) {
        return openssl_refusal(ErrorCode::kInvalidLength,
                               "PEM text too large (" + std::to_string(pem.size()) + " bytes)");
    }
    auto block = check_pem_block(pem, label);
    if (!block) {
        return block.error();
    }
    UniqueBio bio(BIO_new_mem_buf(block.value().data(), static_cast<int>(block.value().size())));
    if (!bio) {
        throw_openssl("BIO_new_mem_buf");
    }
    UniqueEvpPkey pkey(reader(bio.get(), nullptr, no_passphrase, nullptr));
    if (!pkey) {
        return openssl_refusal(ErrorCode::kInvalidEncoding, std::string("invalid ") + form);
    }
    if (EVP_PKEY_id(pkey.get()) != type.evp_id) {
        return openssl_refusal(ErrorCode::kInvalidKey, std::string("not an ") + type.name + " key");
    }
    return pkey;
}

// written_pem returns what a PEM writer put into a fresh memory BIO. BIO_s_mem frees (and
// grows) its buffer with OPENSSL_clear_free, so the only copy left is the wiping one.
template <class Writer>
SecretBytes written_pem(Writer writer, const char* what) {
    UniqueBio bio(BIO_new(BIO_s_mem()));
    if (!bio || writer(bio.get()) != 1) {
        throw_openssl(what);
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

}  // namespace

Error openssl_refusal(ErrorCode code, std::string message) {
    ERR_clear_error();
    return make_error(code, std::move(message));
}

void throw_openssl(std::string_view what) {
    ERR_clear_error();
    throw std::runtime_error("OpenSSL failure: " + std::string(what));
}

std::string_view as_text(const SecretBytes& bytes) noexcept {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

Result<RawKey> raw_key(std::span<const std::uint8_t> raw, std::string_view what) {
    if (raw.size() != kRawKeyBytes) {
        return make_error(ErrorCode::kInvalidLength, std::string(what) + " must be 32 bytes, got " +
                                                         std::to_string(raw.size()));
    }
    RawKey out{};
    std::copy(raw.begin(), raw.end(), out.begin());
    return out;
}

Result<UniqueEvpPkey> read_public_pem(std::string_view pem, const KeyType& type) {
    return read_pem(pem, kPublicLabel, PEM_read_bio_PUBKEY, "SubjectPublicKeyInfo PEM", type);
}

Result<UniqueEvpPkey> read_private_pem(std::string_view pem, const KeyType& type) {
    return read_pem(pem, kPrivateLabel, PEM_read_bio_PrivateKey, "PKCS#8 private key PEM", type);
}

UniqueEvpPkey public_pkey(std::span<const std::uint8_t, kRawKeyBytes> raw,
                          const KeyType& type) noexcept {
    return UniqueEvpPkey(EVP_PKEY_new_raw_public_key(type.evp_id, nullptr, raw.data(), raw.size()));
}

RawKey raw_public_key(const EVP_PKEY* pkey) {
    RawKey raw{};
    std::size_t size = raw.size();
    if (EVP_PKEY_get_raw_public_key(pkey, raw.data(), &size) != 1 || size != raw.size()) {
        throw_openssl("EVP_PKEY_get_raw_public_key");
    }
    return raw;
}

UniqueEvpPkey generate_private_key(const KeyType& type) {
    UniqueEvpPkeyCtx ctx(EVP_PKEY_CTX_new_id(type.evp_id, nullptr));
    EVP_PKEY* pkey = nullptr;
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &pkey) != 1) {
        throw_openssl(std::string(type.name) + " key generation");
    }
    return UniqueEvpPkey(pkey);
}

Result<UniqueEvpPkey> private_key_from_raw(std::span<const std::uint8_t> raw, const KeyType& type,
                                           std::string_view what) {
    auto checked = raw_key(raw, what);
    if (!checked) {
        return checked.error();
    }
    UniqueEvpPkey pkey(EVP_PKEY_new_raw_private_key(type.evp_id, nullptr, raw.data(), raw.size()));
    if (!pkey) {
        throw_openssl("EVP_PKEY_new_raw_private_key");
    }
    return pkey;
}

std::string public_pem(std::span<const std::uint8_t, kRawKeyBytes> raw, const KeyType& type) {
    UniqueEvpPkey pkey = public_pkey(raw, type);
    if (!pkey) {
        throw_openssl("EVP_PKEY_new_raw_public_key");
    }
    SecretBytes pem = written_pem([&](BIO* bio) { return PEM_write_bio_PUBKEY(bio, pkey.get()); },
                                  "PEM_write_bio_PUBKEY");
    return std::string(as_text(pem));
}

SecretBytes private_pem(const EVP_PKEY* pkey) {
    return written_pem(
        [&](BIO* bio) {
            return PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr);
        },
        "PEM_write_bio_PrivateKey");
}

Status save_public_pem(const std::filesystem::path& path,
                       std::span<const std::uint8_t, kRawKeyBytes> raw, const KeyType& type,
                       bool overwrite) {
    return write_file_atomic(path, public_pem(raw, type), kPublicFileMode, overwrite);
}

Status save_private_pem(const std::filesystem::path& path, const EVP_PKEY* pkey, bool overwrite) {
    SecretBytes pem = private_pem(pkey);
    return write_file_atomic(path, pem.span(), kPrivateFileMode, overwrite);
}

}  // namespace cipherpulse::detail
