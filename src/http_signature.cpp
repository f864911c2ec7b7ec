#include "cipherpulse/http_signature.h"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <utility>

#include "cipherpulse/base64url.h"
#include "cipherpulse/secure.h"

namespace cipherpulse {
namespace {

std::span<const std::uint8_t> as_bytes(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// Names and labels come from untrusted text and end up in log lines: keep them short.
std::string shown(std::string_view name) {
    constexpr std::size_t kMax = 64;
    std::string out;
    for (char c : name.substr(0, kMax)) {
        out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
    }
    if (name.size() > kMax) {
        out += "...";
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// Character classes (RFC 8941 section 3, RFC 9110 section 5.6.2).

bool is_lcalpha(char c) {
    return c >= 'a' && c <= 'z';
}
bool is_alpha(char c) {
    return is_lcalpha(c) || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_tchar(char c) {
    return is_alpha(c) || is_digit(c) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
bool is_key_char(char c) {
    return is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '.' || c == '*';
}
bool is_key(std::string_view key) {
    return !key.empty() && (is_lcalpha(key[0]) || key[0] == '*') &&
           std::all_of(key.begin(), key.end(), is_key_char);
}
bool is_printable_ascii(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// ---------------------------------------------------------------------------------------
// A strict parser for the RFC 8941 Dictionary subset these fields use.

enum class ItemType { kInteger, kString, kToken, kBytes, kBoolean };

struct BareItem {
    ItemType type = ItemType::kBoolean;
    std::int64_t integer = 0;
    std::string text;  // string or token
    std::vector<std::uint8_t> bytes;
    bool boolean = true;
};

struct Parameter {
    std::string key;
    BareItem value;
};

struct Item {
    BareItem value;
    std::vector<Parameter> params;
};

// Member is one dictionary member: an Item, or an inner list of Items with its parameters.
// `raw` is the member value exactly as received (after "=").
struct Member {
    std::string key;
    bool inner_list = false;
    Item item;
    std::vector<Item> items;
    std::vector<Parameter> params;
    std::string_view raw;
};

// SfParser parses canonical structured-field text: RFC 8941 section 4.2 without the
// leniencies a serializer never produces (extra spaces inside an inner list or after ';',
// leading zeros, decimals, repeated keys).
class SfParser {
  public:
    explicit SfParser(std::string_view text) : text_(text) {}

    Result<std::vector<Member>> dictionary() {
        std::vector<Member> members;
        skip_ows();
        while (!at_end()) {
            Member member;
            if (!parse_key(member.key)) {
                return error();
            }
            for (const Member& seen : members) {
                if (seen.key == member.key) {
                    return make_error(ErrorCode::kInvalidEncoding,
                                      "repeated dictionary key '" + shown(member.key) + "'");
                }
            }
            std::size_t start = peek() == '=' ? pos_ + 1 : pos_;
            if (!parse_member_value(member)) {
                return error();
            }
            member.raw = text_.substr(start, pos_ - start);
            members.push_back(std::move(member));
            skip_ows();
            if (at_end()) {
                break;
            }
            if (!expect(',')) {
                return error();
            }
            skip_ows();
            if (at_end()) {
                fail("trailing comma");
                return error();
            }
        }
        return members;
    }

    // member_value parses the whole text as one member value (what follows "key=").
    Result<Member> member_value() {
        Member member;
        if (!parse_value(member)) {
            return error();
        }
        if (!at_end()) {
            fail("unexpected text after the value");
            return error();
        }
        member.raw = text_;
        return member;
    }

  private:
    bool at_end() const { return pos_ >= text_.size(); }
    char peek() const { return at_end() ? '\0' : text_[pos_]; }

    bool fail(std::string what, ErrorCode code = ErrorCode::kInvalidEncoding) {
        if (!failed_) {
            failed_ = true;
            code_ = code;
            message_ = "structured field: " + what + " at offset " + std::to_string(pos_);
        }
        return false;
    }
    Error error() const { return make_error(code_, message_); }

    bool expect(char c) {
        if (peek() != c) {
            return fail(std::string("expected '") + c + "'");
        }
        ++pos_;
        return true;
    }

    void skip_ows() {
        while (!at_end() && (peek() == ' ' || peek() == '\t')) {
            ++pos_;
        }
    }

    bool parse_key(std::string& out) {
        if (!is_lcalpha(peek()) && peek() != '*') {
            return fail("expected a key (lower-case letter or '*')");
        }
        std::size_t start = pos_;
        while (!at_end() && is_key_char(peek())) {
            ++pos_;
        }
        out.assign(text_.substr(start, pos_ - start));
        return true;
    }

    bool parse_member_value(Member& member) {
        if (peek() != '=') {
            // A bare key is the Boolean true (RFC 8941 section 3.2).
            member.item.value = BareItem{};
            return parse_parameters(member.item.params);
        }
        ++pos_;
        return parse_value(member);
    }

    // parse_value parses what follows "key=": an inner list or an item.
    bool parse_value(Member& member) {
        if (peek() == '(') {
            member.inner_list = true;
            return parse_inner_list(member.items) && parse_parameters(member.params);
        }
        return parse_item(member.item);
    }

    bool parse_inner_list(std::vector<Item>& items) {
        if (!expect('(')) {
            return false;
        }
        while (peek() != ')') {
            Item item;
            if (!parse_item(item)) {
                return false;
            }
            items.push_back(std::move(item));
            if (peek() == ' ') {
                ++pos_;
                if (peek() == ')' || peek() == ' ') {
                    return fail("non-canonical space in inner list");
                }
            } else if (peek() != ')') {
                return fail("expected ' ' or ')' in inner list");
            }
        }
        ++pos_;
        return true;
    }

    bool parse_item(Item& item) {
        return parse_bare_item(item.value) && parse_parameters(item.params);
    }

    bool parse_parameters(std::vector<Parameter>& params) {
        while (peek() == ';') {
            ++pos_;
            Parameter param;
            if (!parse_key(param.key)) {
                return false;
            }
            for (const Parameter& seen : params) {
                if (seen.key == param.key) {
                    return fail("repeated parameter '" + shown(param.key) + "'");
                }
            }
            if (peek() == '=') {
                ++pos_;
                if (!parse_bare_item(param.value)) {
                    return false;
                }
            }
            params.push_back(std::move(param));
        }
        return true;
    }

    bool parse_bare_item(BareItem& out) {
        char c = peek();
        if (c == '-' || is_digit(c)) {
            return parse_integer(out);
        }
        if (c == '"') {
            return parse_string(out);
        }
        if (c == ':') {
            return parse_bytes(out);
        }
        if (c == '?') {
            return parse_boolean(out);
        }
        if (is_alpha(c) || c == '*') {
            return parse_token(out);
        }
        return fail("expected a value");
    }

    bool parse_integer(BareItem& out) {
        bool negative = peek() == '-';
        if (negative) {
            ++pos_;
        }
        std::size_t start = pos_;
        std::int64_t value = 0;
        while (!at_end() && is_digit(peek())) {
            if (pos_ - start == 15) {
                return fail("integer longer than 15 digits", ErrorCode::kOutOfRange);
            }
            value = value * 10 + (peek() - '0');
            ++pos_;
        }
        std::size_t digits = pos_ - start;
        if (digits == 0) {
            return fail("expected a digit");
        }
        if (peek() == '.') {
            return fail("decimals are not supported");
        }
        if ((digits > 1 && text_[start] == '0') || (negative && value == 0)) {
            return fail("non-canonical integer");
        }
        out.type = ItemType::kInteger;
        out.integer = negative ? -value : value;
        return true;
    }

    bool parse_string(BareItem& out) {
        ++pos_;  // opening quote
        std::string value;
        while (!at_end()) {
            char c = text_[pos_++];
            if (c == '"') {
                out.type = ItemType::kString;
                out.text = std::move(value);
                return true;
            }
            if (c == '\\') {
                char next = peek();
                if (next != '"' && next != '\\') {
                    return fail("invalid escape in string");
                }
                value.push_back(next);
                ++pos_;
            } else if (c < 0x20 || c > 0x7e) {
                --pos_;
                return fail("invalid character in string");
            } else {
                value.push_back(c);
            }
        }
        return fail("unterminated string");
    }

    bool parse_token(BareItem& out) {
        std::size_t start = pos_;
        ++pos_;
        while (!at_end() && (is_tchar(peek()) || peek() == ':' || peek() == '/')) {
            ++pos_;
        }
        out.type = ItemType::kToken;
        out.text.assign(text_.substr(start, pos_ - start));
        return true;
    }

    bool parse_bytes(BareItem& out) {
        ++pos_;  // opening colon
        std::size_t end = text_.find(':', pos_);
        if (end == std::string_view::npos) {
            return fail("unterminated byte sequence");
        }
        auto bytes = base64_decode(text_.substr(pos_, end - pos_));
        if (!bytes) {
            return fail("byte sequence: " + bytes.error().message);
        }
        pos_ = end + 1;
        out.type = ItemType::kBytes;
        out.bytes = std::move(bytes).value();
        return true;
    }

    bool parse_boolean(BareItem& out) {
        ++pos_;  // '?'
        char c = peek();
        if (c != '0' && c != '1') {
            return fail("invalid boolean");
        }
        ++pos_;
        out.type = ItemType::kBoolean;
        out.boolean = c == '1';
        return true;
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    bool failed_ = false;
    ErrorCode code_ = ErrorCode::kInvalidEncoding;
    std::string message_;
};

Error with_context(std::string_view context, const Error& error) {
    return make_error(error.code, std::string(context) + ": " + error.message);
}

// ---------------------------------------------------------------------------------------
// Covered components (RFC 9421 section 2).

enum class Derived { kNone, kMethod, kPath, kQuery, kAuthority };

struct Component {
    std::string_view name;
    Derived derived = Derived::kNone;
};

Result<Component> classify_component(std::string_view name) {
    if (!name.empty() && name[0] == '@') {
        static constexpr std::pair<std::string_view, Derived> kSupported[] = {
            {"@method", Derived::kMethod},
            {"@path", Derived::kPath},
            {"@query", Derived::kQuery},
            {"@authority", Derived::kAuthority},
        };
        for (const auto& [known, derived] : kSupported) {
            if (name == known) {
                return Component{name, derived};
            }
        }
        return make_error(ErrorCode::kUnsupported,
                          "unsupported derived component '" + shown(name) + "'");
    }
    bool valid = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return is_tchar(c) && !(c >= 'A' && c <= 'Z');
    });
    if (!valid) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "component '" + shown(name) + "' is not a lower-case field name");
    }
    return Component{name, Derived::kNone};
}

bool is_http_token(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), is_tchar);
}

// A request-target part: visible ASCII only (no space, no control character).
bool is_visible_ascii(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// A field value (RFC 9110 section 5.5) may hold obs-text but no control character other
// than HTAB: a CR or LF could forge extra lines of the signature base.
bool is_field_value(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u == '\t' || (u >= 0x20 && u != 0x7f);
    });
}

std::string_view trim_ows(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

std::string ascii_lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

Error bad_value(const Component& component, std::string_view why) {
    return make_error(ErrorCode::kInvalidEncoding,
                      "component '" + shown(component.name) + "' " + std::string(why));
}

Result<std::string> component_value(const HttpRequestView& request, const Component& component) {
    std::string value;
    switch (component.derived) {
        case Derived::kMethod:
            if (!is_http_token(request.method)) {
                return bad_value(component, "is not an HTTP method token");
            }
            value = request.method;
            break;
        case Derived::kPath:
            value = request.path.empty() ? std::string("/") : std::string(request.path);
            if (value[0] != '/' || !is_visible_ascii(value)) {
                return bad_value(component, "must be an absolute path of visible ASCII");
            }
            break;
        case Derived::kQuery:
            if (!is_visible_ascii(request.query)) {
                return bad_value(component, "holds characters other than visible ASCII");
            }
            value = "?" + std::string(request.query);
            break;
        case Derived::kAuthority:
            if (request.authority.empty() || !is_visible_ascii(request.authority)) {
                return bad_value(component, "must be non-empty visible ASCII");
            }
            value = ascii_lower(request.authority);
            break;
        case Derived::kNone: {
            std::optional<std::string> header;
            if (request.header) {
                header = request.header(component.name);
            }
            if (!header) {
                return bad_value(component, "missing from the request");
            }
            if (!is_field_value(*header)) {
                return bad_value(component, "holds a control character");
            }
            value = trim_ows(*header);
            break;
        }
    }
    if (value.size() > kHttpSignatureMaxFieldBytes) {
        return make_error(ErrorCode::kInvalidLength,
                          "component '" + shown(component.name) + "' longer than " +
                              std::to_string(kHttpSignatureMaxFieldBytes) + " bytes");
    }
    return value;
}

// component_lines returns the base lines for `names`, each ending with "\n".
Result<std::string> component_lines(const HttpRequestView& request,
                                    const std::vector<std::string>& names) {
    if (names.size() > kHttpSignatureMaxComponents) {
        return make_error(
            ErrorCode::kInvalidEncoding,
            "more than " + std::to_string(kHttpSignatureMaxComponents) + " covered components");
    }
    std::string lines;
    for (std::size_t i = 0; i < names.size(); ++i) {
        auto component = classify_component(names[i]);
        if (!component) {
            return component.error();
        }
        if (std::find(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(i), names[i]) !=
            names.begin() + static_cast<std::ptrdiff_t>(i)) {
            return make_error(ErrorCode::kInvalidEncoding,
                              "component '" + shown(names[i]) + "' listed twice");
        }
        auto value = component_value(request, component.value());
        if (!value) {
            return value.error();
        }
        lines += '"' + names[i] + "\": " + value.value() + '\n';
    }
    return lines;
}

std::string make_base(std::string lines, std::string_view params_text) {
    lines += "\"@signature-params\": ";
    lines += params_text;
    return lines;
}

// ---------------------------------------------------------------------------------------
// Signature parameters.

std::string sf_string(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') {
            out.push_back('\\');
        }
        out.push_back(c);
    }
    out.push_back('"');
    return out;
}

void append_integer(std::string& out, std::string_view name, std::optional<std::int64_t> value) {
    if (!value) {
        return;
    }
    if (*value < 0 || *value > kHttpSignatureMaxInteger) {
        throw std::invalid_argument("signature parameter " + std::string(name) + " out of range");
    }
    out += ';' + std::string(name) + '=' + std::to_string(*value);
}

void append_string(std::string& out, std::string_view name,
                   const std::optional<std::string>& value) {
    if (!value) {
        return;
    }
    if (!is_printable_ascii(*value)) {
        throw std::invalid_argument("signature parameter " + std::string(name) +
                                    " must be printable ASCII");
    }
    out += ';' + std::string(name) + '=' + sf_string(*value);
}

// params_from_member checks a Signature-Input member against the profile and returns it.
Result<SignatureParams> params_from_member(const Member& member) {
    if (!member.inner_list) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "Signature-Input member is not an inner list");
    }
    if (member.items.size() > kHttpSignatureMaxComponents) {
        return make_error(
            ErrorCode::kInvalidEncoding,
            "more than " + std::to_string(kHttpSignatureMaxComponents) + " covered components");
    }
    SignatureParams params;
    for (const Item& item : member.items) {
        if (item.value.type != ItemType::kString) {
            return make_error(ErrorCode::kInvalidEncoding, "a covered component is not a string");
        }
        const std::string& name = item.value.text;
        if (!item.params.empty()) {
            return make_error(ErrorCode::kUnsupported,
                              "component parameters are not supported ('" + shown(name) + "')");
        }
        auto component = classify_component(name);
        if (!component) {
            return component.error();
        }
        if (std::find(params.components.begin(), params.components.end(), name) !=
            params.components.end()) {
            return make_error(ErrorCode::kInvalidEncoding,
                              "component '" + shown(name) + "' listed twice");
        }
        params.components.push_back(name);
    }
    for (const Parameter& param : member.params) {
        const std::string& key = param.key;
        const BareItem& value = param.value;
        if (key == "created" || key == "expires") {
            if (value.type != ItemType::kInteger) {
                return make_error(ErrorCode::kInvalidEncoding, key + " is not an integer");
            }
            if (value.integer < 0) {
                return make_error(ErrorCode::kOutOfRange, key + " is negative");
            }
            (key == "created" ? params.created : params.expires) = value.integer;
        } else if (key == "keyid" || key == "alg" || key == "nonce" || key == "tag") {
            if (value.type != ItemType::kString) {
                return make_error(ErrorCode::kInvalidEncoding, key + " is not a string");
            }
            std::optional<std::string>& slot = key == "keyid"   ? params.keyid
                                               : key == "alg"   ? params.alg
                                               : key == "nonce" ? params.nonce
                                                                : params.tag;
            slot = value.text;
        } else {
            return make_error(ErrorCode::kUnsupported,
                              "unknown signature parameter '" + shown(key) + "'");
        }
    }
    return params;
}

const Member* find_member(const std::vector<Member>& members, std::string_view label) {
    for (const Member& member : members) {
        if (member.key == label) {
            return &member;
        }
    }
    return nullptr;
}

Status check_size(std::string_view field, std::string_view value) {
    if (value.size() > kHttpSignatureMaxFieldBytes) {
        return make_error(ErrorCode::kInvalidLength,
                          std::string(field) + " longer than " +
                              std::to_string(kHttpSignatureMaxFieldBytes) + " bytes");
    }
    return Ok{};
}

// The distance between two times as an unsigned number: no overflow whatever the inputs.
std::uint64_t distance(std::int64_t a, std::int64_t b) {
    auto ua = static_cast<std::uint64_t>(a);
    auto ub = static_cast<std::uint64_t>(b);
    return a > b ? ua - ub : ub - ua;
}

// signed_params parses a received @signature-params value (ParsedSignature::raw_params).
Result<SignatureParams> signed_params(std::string_view raw) {
    if (auto size = check_size("signature parameters", raw); !size) {
        return size.error();
    }
    auto member = SfParser(raw).member_value();
    if (!member) {
        return with_context("signature parameters", member.error());
    }
    return params_from_member(member.value());
}

// received_base builds the base over the received parameter text, not a re-serialization.
Result<std::string> received_base(const HttpRequestView& request, const SignatureParams& params,
                                  std::string_view raw) {
    auto lines = component_lines(request, params.components);
    if (!lines) {
        return lines.error();
    }
    return make_base(std::move(lines).value(), raw);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Content-Digest

std::string content_digest_sha256(std::span<const std::uint8_t> body) {
    return "sha-256=:" + base64_encode(sha256(body)) + ":";
}

std::string content_digest_sha256(std::string_view body) {
    return content_digest_sha256(as_bytes(body));
}

Status verify_content_digest(std::string_view header_value, std::span<const std::uint8_t> body) {
    if (auto size = check_size("Content-Digest", header_value); !size) {
        return size;
    }
    auto members = SfParser(header_value).dictionary();
    if (!members) {
        return with_context("Content-Digest", members.error());
    }
    const Member* sha = nullptr;
    for (const Member& member : members.value()) {
        if (member.inner_list || member.item.value.type != ItemType::kBytes) {
            return make_error(
                ErrorCode::kInvalidEncoding,
                "Content-Digest member '" + shown(member.key) + "' is not a byte sequence");
        }
        if (member.key == "sha-256") {
            sha = &member;
        }
    }
    if (sha == nullptr) {
        return make_error(ErrorCode::kUnsupported, "Content-Digest has no sha-256 digest");
    }
    const std::vector<std::uint8_t>& claimed = sha->item.value.bytes;
    if (claimed.size() != 32) {
        return make_error(ErrorCode::kInvalidEncoding, "Content-Digest sha-256 digest is " +
                                                           std::to_string(claimed.size()) +
                                                           " bytes, not 32");
    }
    if (!constant_time_equal(claimed, sha256(body))) {
        return make_error(ErrorCode::kBadSignature, "Content-Digest does not match the body");
    }
    return Ok{};
}

Status verify_content_digest(std::string_view header_value, std::string_view body) {
    return verify_content_digest(header_value, as_bytes(body));
}

// ---------------------------------------------------------------------------------------
// Signing

std::string serialize_signature_params(const SignatureParams& params) {
    std::string out = "(";
    for (std::size_t i = 0; i < params.components.size(); ++i) {
        auto component = classify_component(params.components[i]);
        if (!component) {
            throw std::invalid_argument(component.error().message);
        }
        if (i > 0) {
            out.push_back(' ');
        }
        out += sf_string(params.components[i]);
    }
    out.push_back(')');
    append_integer(out, "created", params.created);
    append_integer(out, "expires", params.expires);
    append_string(out, "keyid", params.keyid);
    append_string(out, "alg", params.alg);
    append_string(out, "nonce", params.nonce);
    append_string(out, "tag", params.tag);
    return out;
}

Result<std::string> signature_base(const HttpRequestView& request, const SignatureParams& params) {
    auto lines = component_lines(request, params.components);
    if (!lines) {
        return lines.error();
    }
    return make_base(std::move(lines).value(), serialize_signature_params(params));
}

SignatureHeaders sign_request(const HttpRequestView& request, const SignatureParams& params,
                              const Ed25519PrivateKey& key) {
    if (!is_key(params.label)) {
        throw std::invalid_argument("signature label '" + shown(params.label) +
                                    "' is not a structured-field key");
    }
    auto base = signature_base(request, params);
    if (!base) {
        throw std::invalid_argument("cannot sign request: " + base.error().message);
    }
    Ed25519Signature signature = key.sign(base.value());
    return SignatureHeaders{
        params.label + "=" + serialize_signature_params(params),
        params.label + "=:" + base64_encode(signature) + ":",
    };
}

// ---------------------------------------------------------------------------------------
// Parsing and verification

Result<ParsedSignature> parse_signature(std::string_view signature_input,
                                        std::string_view signature, std::string_view label) {
    if (auto size = check_size("Signature-Input", signature_input); !size) {
        return size.error();
    }
    if (auto size = check_size("Signature", signature); !size) {
        return size.error();
    }
    auto inputs = SfParser(signature_input).dictionary();
    if (!inputs) {
        return with_context("Signature-Input", inputs.error());
    }
    auto signatures = SfParser(signature).dictionary();
    if (!signatures) {
        return with_context("Signature", signatures.error());
    }
    if (label.empty()) {
        if (inputs.value().size() != 1 || signatures.value().size() != 1) {
            return make_error(ErrorCode::kInvalidEncoding,
                              "expected exactly one signature, found " +
                                  std::to_string(inputs.value().size()) +
                                  " in Signature-Input and " +
                                  std::to_string(signatures.value().size()) + " in Signature");
        }
        label = inputs.value().front().key;
    }
    const Member* input = find_member(inputs.value(), label);
    const Member* sig = find_member(signatures.value(), label);
    if (input == nullptr || sig == nullptr) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "no signature labelled '" + shown(label) + "' in " +
                              (input == nullptr ? "Signature-Input" : "Signature"));
    }
    auto params = params_from_member(*input);
    if (!params) {
        return params.error();
    }
    if (sig->inner_list || sig->item.value.type != ItemType::kBytes || !sig->item.params.empty()) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "Signature member is not a byte sequence without parameters");
    }
    if (sig->item.value.bytes.size() != kEd25519SignatureBytes) {
        return make_error(ErrorCode::kInvalidLength,
                          "signature is " + std::to_string(sig->item.value.bytes.size()) +
                              " bytes, not " + std::to_string(kEd25519SignatureBytes));
    }
    ParsedSignature parsed{std::move(params).value(), std::string(input->raw),
                           sig->item.value.bytes};
    parsed.params.label = std::string(label);
    return parsed;
}

Result<std::string> signature_base(const HttpRequestView& request, const ParsedSignature& parsed) {
    auto params = signed_params(parsed.raw_params);
    if (!params) {
        return params.error();
    }
    return received_base(request, params.value(), parsed.raw_params);
}

Status verify_request(const HttpRequestView& request, const ParsedSignature& parsed,
                      const Ed25519PublicKey& key, const VerifyPolicy& policy) {
    if (policy.max_skew_seconds < 0) {
        throw std::invalid_argument("VerifyPolicy::max_skew_seconds must not be negative");
    }
    // The components and parameters are read back from the text that is signed, so the
    // policy always judges what was signed, even if `parsed.params` changed since parsing.
    auto received = signed_params(parsed.raw_params);
    if (!received) {
        return received.error();
    }
    const SignatureParams& params = received.value();
    if (params.alg && *params.alg != "ed25519") {
        return make_error(ErrorCode::kUnsupported,
                          "signature algorithm '" + shown(*params.alg) + "' is not supported");
    }
    for (const std::string& required : policy.required_components) {
        if (std::find(params.components.begin(), params.components.end(), required) ==
            params.components.end()) {
            return make_error(ErrorCode::kBadSignature,
                              "required component '" + shown(required) + "' not covered");
        }
    }
    if (!params.created) {
        return make_error(ErrorCode::kBadSignature, "signature has no created parameter");
    }
    if (distance(*params.created, policy.now_seconds) >
        static_cast<std::uint64_t>(policy.max_skew_seconds)) {
        return make_error(ErrorCode::kBadSignature, "stale or future created");
    }
    if (params.expires && policy.now_seconds > *params.expires) {
        return make_error(ErrorCode::kBadSignature, "signature expired");
    }
    auto base = received_base(request, params, parsed.raw_params);
    if (!base) {
        return base.error();
    }
    if (!key.verify(base.value(), parsed.signature)) {
        return make_error(ErrorCode::kBadSignature, "signature does not verify");
    }
    return Ok{};
}

Status verify_signed_request(const HttpRequestView& request, const ParsedSignature& parsed,
                             const Ed25519PublicKey& key, const VerifyPolicy& policy,
                             std::span<const std::uint8_t> body) {
    VerifyPolicy with_digest = policy;
    if (std::find(with_digest.required_components.begin(), with_digest.required_components.end(),
                  "content-digest") == with_digest.required_components.end()) {
        with_digest.required_components.emplace_back("content-digest");
    }
    if (auto verified = verify_request(request, parsed, key, with_digest); !verified) {
        return verified;
    }
    std::optional<std::string> digest;
    if (request.header) {
        digest = request.header("content-digest");
    }
    if (!digest) {
        return make_error(ErrorCode::kInvalidEncoding, "Content-Digest header missing");
    }
    return verify_content_digest(*digest, body);
}

}  // namespace cipherpulse
