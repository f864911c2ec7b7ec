#include "cipherpulse/envelope.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <algorithm>
#include <limits>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cipherpulse/base64url.h"
#include "pem_util.h"

namespace cipherpulse {
namespace {

using detail::throw_openssl;

using UniqueEvpCipherCtx = detail::OpenSslPtr<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using UniqueEvpKdf = detail::OpenSslPtr<EVP_KDF, EVP_KDF_free>;
using UniqueEvpKdfCtx = detail::OpenSslPtr<EVP_KDF_CTX, EVP_KDF_CTX_free>;
using Json = nlohmann::json;

using X25519Raw = std::array<std::uint8_t, kX25519PublicKeyBytes>;
using EnvelopeIv = std::array<std::uint8_t, kEnvelopeIvBytes>;

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

std::span<const std::uint8_t> as_bytes(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

template <std::size_t N>
std::array<std::uint8_t, N> to_array(std::span<const std::uint8_t> bytes) {
    std::array<std::uint8_t, N> out{};
    std::copy(bytes.begin(), bytes.end(), out.begin());
    return out;
}

// agree is X25519 key agreement with a constructed public key, which has large order.
SecretBytes agree(const X25519PrivateKey& own, const X25519Raw& peer) {
    auto shared = detail::X25519KeyAccess::agree(own, peer);
    if (!shared) {
        throw_openssl("X25519 key agreement");
    }
    return std::move(shared).value();
}

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

// GcmDirection says which way gcm_run goes.
enum class GcmDirection { kSeal, kOpen };

// gcm_run runs AES-256-GCM over the associated data `aad` and `in`, writing in.size() bytes
// at `out`. Sealing writes the tag to `tag`; opening checks `tag`. False when OpenSSL fails
// or, opening, when the tag does not verify. Sizes are bounded by kEnvelopeMaxBytes, so they
// fit OpenSSL's int lengths.
bool gcm_run(GcmDirection direction, const SecretBytes& key, const EnvelopeIv& iv,
             std::span<const std::uint8_t> aad, std::span<const std::uint8_t> in, std::uint8_t* out,
             std::span<std::uint8_t, kEnvelopeTagBytes> tag) {
    const bool seal = direction == GcmDirection::kSeal;
    constexpr int kTagBytes = static_cast<int>(kEnvelopeTagBytes);
    UniqueEvpCipherCtx ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    bool ok = ctx && EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), iv.data(),
                                       seal ? 1 : 0) == 1;
    if (ok && !aad.empty()) {
        ok = EVP_CipherUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) ==
             1;
    }
    if (ok && !in.empty()) {
        ok = EVP_CipherUpdate(ctx.get(), out, &len, in.data(), static_cast<int>(in.size())) == 1 &&
             static_cast<std::size_t>(len) == in.size();
    }
    if (ok && !seal) {
        ok = EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1;
    }
    ok = ok && EVP_CipherFinal_ex(ctx.get(), out + in.size(), &len) == 1 && len == 0;
    if (ok && seal) {
        ok = EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, tag.data()) == 1;
    }
    return ok;
}

// gcm_seal returns the AES-256-GCM ciphertext of `plaintext` followed by the tag.
std::vector<std::uint8_t> gcm_seal(const SecretBytes& key, const EnvelopeIv& iv,
                                   std::span<const std::uint8_t> aad,
                                   std::span<const std::uint8_t> plaintext) {
    std::vector<std::uint8_t> out(plaintext.size() + kEnvelopeTagBytes);
    std::span<std::uint8_t, kEnvelopeTagBytes> tag(out.data() + plaintext.size(),
                                                   kEnvelopeTagBytes);
    if (!gcm_run(GcmDirection::kSeal, key, iv, aad, plaintext, out.data(), tag)) {
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
    if (!gcm_run(GcmDirection::kOpen, key, iv, aad, body, out.data(), tag)) {
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
    SecretBytes shared = agree(ephemeral, recipient_raw);
    SecretBytes key = envelope_key(shared, epk, recipient_raw, sender.public_key());
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
    auto shared = detail::X25519KeyAccess::agree(recipient, f.epk);
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
