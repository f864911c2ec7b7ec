#include "cipherpulse/jws.h"

#include <cstdint>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cipherpulse/base64url.h"

namespace cipherpulse {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kAlgorithm = "EdDSA";

struct CompactParts {
    std::string_view header;
    std::string_view payload;
    std::string_view signature;
    std::string_view signing_input;  // header "." payload, exactly as received
};

Result<CompactParts> split_compact(std::string_view compact) {
    std::size_t first = compact.find('.');
    std::size_t second = first == std::string_view::npos ? first : compact.find('.', first + 1);
    if (second == std::string_view::npos) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "JWS compact serialization needs three parts separated by '.', found " +
                              std::string(first == std::string_view::npos ? "one" : "two"));
    }
    if (compact.find('.', second + 1) != std::string_view::npos) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "JWS compact serialization needs exactly three parts separated by "
                          "'.', found more (a JWE has five)");
    }
    return CompactParts{compact.substr(0, first), compact.substr(first + 1, second - first - 1),
                        compact.substr(second + 1), compact.substr(0, second)};
}

Result<std::vector<std::uint8_t>> decode_part(std::string_view part, const char* name) {
    auto bytes = base64url_decode(part);
    if (!bytes) {
        return make_error(ErrorCode::kInvalidEncoding,
                          std::string("JWS ") + name + ": " + bytes.error().message);
    }
    return bytes;
}

// Values quoted from an untrusted header go into log lines: printable ASCII only, short.
std::string log_safe_quote(std::string_view value) {
    std::string out = "\"";
    for (char c : value.substr(0, 32)) {
        out.push_back(c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? c : '?');
    }
    out += value.size() > 32 ? "...\"" : "\"";
    return out;
}

// parse_header parses the protected header as one JSON object. Duplicate member names are
// refused (RFC 7515 section 4 allows that), so no other parser can read a different "alg"
// out of the same bytes.
Result<Json> parse_header(std::string_view text) {
    // nlohmann's lexer takes a NUL byte for the end of input and would ignore what follows;
    // valid JSON never holds a raw NUL, so refuse it here.
    if (text.find('\0') != std::string_view::npos) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "JWS protected header is not a JSON object (NUL byte)");
    }
    std::set<std::string> names;
    bool duplicate = false;
    auto on_event = [&](int depth, Json::parse_event_t event, Json& parsed) {
        if (event == Json::parse_event_t::key && depth == 1 &&
            !names.insert(parsed.get<std::string>()).second) {
            duplicate = true;
        }
        return true;
    };
    Json header = Json::parse(text.begin(), text.end(), on_event, /*allow_exceptions=*/false);
    if (header.is_discarded() || !header.is_object()) {
        return make_error(ErrorCode::kInvalidEncoding, "JWS protected header is not a JSON object");
    }
    if (duplicate) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "JWS protected header repeats a member name");
    }
    return header;
}

// optional_string reads a member that, when present, must be a string.
Result<std::string> optional_string(const Json& header, const char* name) {
    auto it = header.find(name);
    if (it == header.end()) {
        return std::string();
    }
    if (!it->is_string()) {
        return make_error(ErrorCode::kInvalidEncoding,
                          std::string("JWS header member \"") + name + "\" must be a string");
    }
    return it->get<std::string>();
}

Status check_algorithm(const Json& header) {
    auto alg = header.find("alg");
    if (alg == header.end()) {
        return make_error(ErrorCode::kInvalidEncoding, "JWS protected header has no \"alg\"");
    }
    if (!alg->is_string()) {
        return make_error(ErrorCode::kInvalidEncoding, "JWS \"alg\" must be a string");
    }
    const auto& name = alg->get_ref<const std::string&>();
    if (name != kAlgorithm) {
        return make_error(ErrorCode::kUnsupported, "JWS alg " + log_safe_quote(name) +
                                                       " is not accepted; only \"EdDSA\" is");
    }
    if (header.contains("crit")) {
        return make_error(ErrorCode::kUnsupported,
                          "JWS \"crit\" header is not supported: no extension is understood");
    }
    auto b64 = header.find("b64");
    if (b64 != header.end() && !(b64->is_boolean() && b64->get<bool>())) {
        return make_error(ErrorCode::kUnsupported,
                          "JWS \"b64\" other than true (unencoded payload, RFC 7797) is not "
                          "supported");
    }
    return Ok{};
}

}  // namespace

std::string jws_sign(std::string_view payload, const Ed25519PrivateKey& key, std::string_view kid,
                     std::string_view typ) {
    // nlohmann::json keeps object members in a std::map: dump() writes them sorted and
    // without white space, so the header is deterministic.
    Json header = Json::object();
    header["alg"] = std::string(kAlgorithm);
    if (!kid.empty()) {
        header["kid"] = std::string(kid);
    }
    if (!typ.empty()) {
        header["typ"] = std::string(typ);
    }
    std::string header_json;
    try {
        header_json = header.dump();
    } catch (const Json::type_error&) {
        throw std::invalid_argument("jws_sign: kid and typ must be valid UTF-8");
    }
    std::string signing_input = base64url_encode(header_json) + "." + base64url_encode(payload);
    Ed25519Signature signature = key.sign(signing_input);
    return signing_input + "." + base64url_encode(signature);
}

Result<JwsVerified> jws_verify(std::string_view compact, const Ed25519PublicKey& key) {
    if (compact.size() > kJwsMaxCompactBytes) {
        return make_error(ErrorCode::kInvalidLength,
                          "JWS too large: " + std::to_string(compact.size()) + " bytes, limit " +
                              std::to_string(kJwsMaxCompactBytes));
    }
    auto parts = split_compact(compact);
    if (!parts) {
        return parts.error();
    }
    const CompactParts& p = parts.value();
    // Checked on the encoded length so an oversized header is never decoded or parsed.
    if (p.header.size() > (kJwsMaxHeaderBytes * 4 + 2) / 3) {
        return make_error(ErrorCode::kInvalidLength, "JWS protected header too large");
    }
    auto header_bytes = decode_part(p.header, "protected header");
    if (!header_bytes) {
        return header_bytes.error();
    }
    JwsVerified out;
    out.header_json.assign(header_bytes.value().begin(), header_bytes.value().end());
    auto header = parse_header(out.header_json);
    if (!header) {
        return header.error();
    }
    if (auto alg = check_algorithm(header.value()); !alg) {
        return alg.error();
    }
    auto kid = optional_string(header.value(), "kid");
    if (!kid) {
        return kid.error();
    }
    auto typ = optional_string(header.value(), "typ");
    if (!typ) {
        return typ.error();
    }
    auto payload = decode_part(p.payload, "payload");
    if (!payload) {
        return payload.error();
    }
    auto signature = decode_part(p.signature, "signature");
    if (!signature) {
        return signature.error();
    }
    if (signature.value().size() != kEd25519SignatureBytes) {
        return make_error(ErrorCode::kInvalidLength, "JWS EdDSA signature must be 64 bytes, got " +
                                                         std::to_string(signature.value().size()));
    }
    if (!key.verify(p.signing_input, signature.value())) {
        return make_error(ErrorCode::kBadSignature,
                          "JWS signature does not verify with key " + key.fingerprint());
    }
    out.payload.assign(payload.value().begin(), payload.value().end());
    out.kid = std::move(kid).value();
    out.typ = std::move(typ).value();
    return out;
}

}  // namespace cipherpulse
