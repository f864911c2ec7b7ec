// HTTP Message Signatures (RFC 9421) with Ed25519, and the Content-Digest field (RFC 9530),
// independent of any HTTP library: how an edge device signs `POST /v1/readings`, how the
// server verifies it, and how the decryptor re-verifies a stored batch.
//
// Only the profile cipherpulse needs is supported: the derived components @method, @path,
// @query and @authority plus plain header fields (no component parameters such as ;sf,
// ;key, ;bs, ;req), and the signature parameters created, expires, keyid, alg, nonce and
// tag. Structured fields (RFC 8941) are parsed strictly: only their canonical
// serialization is accepted inside a member (no extra spaces in inner lists or after ';',
// no leading zeros, padded canonical base64), which is what every RFC 8941 serializer
// writes. Members of a dictionary may be separated by "," with optional spaces or tabs.
//
// Every function here is stateless and may be called from several threads at once; the
// only callback, HttpRequestView::header, runs on the calling thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cipherpulse/ed25519.h"
#include "cipherpulse/result.h"

namespace cipherpulse {

// kHttpSignatureMaxFieldBytes bounds every header value the parsers here accept
// (Signature-Input, Signature, Content-Digest) and every component value that goes into a
// signature base (8 KiB).
inline constexpr std::size_t kHttpSignatureMaxFieldBytes = 8u << 10;

// kHttpSignatureMaxComponents bounds the number of covered components of one signature.
inline constexpr std::size_t kHttpSignatureMaxComponents = 32;

// kHttpSignatureMaxInteger is the largest integer a structured field can carry (15 digits,
// RFC 8941 section 3.3.1); `created` and `expires` must lie in [0, kHttpSignatureMaxInteger].
inline constexpr std::int64_t kHttpSignatureMaxInteger = 999'999'999'999'999;

// content_digest_sha256 returns the RFC 9530 Content-Digest value for `body` with the
// sha-256 algorithm: `sha-256=:<standard base64 with padding>:`. Never fails.
std::string content_digest_sha256(std::span<const std::uint8_t> body);
std::string content_digest_sha256(std::string_view body);

// verify_content_digest checks a Content-Digest value (an RFC 8941 dictionary whose members
// are byte sequences) against `body`. The sha-256 member decides; members for other
// algorithms are parsed and ignored. Fails with:
//  - kInvalidLength: a value over kHttpSignatureMaxFieldBytes;
//  - kInvalidEncoding: not such a dictionary, a repeated key, a value that is not a byte
//    sequence, or a sha-256 digest that is not 32 bytes;
//  - kUnsupported: no sha-256 member;
//  - kBadSignature: the digest does not match the body (compared in constant time).
[[nodiscard]] Status verify_content_digest(std::string_view header_value,
                                           std::span<const std::uint8_t> body);
[[nodiscard]] Status verify_content_digest(std::string_view header_value, std::string_view body);

// HttpRequestView is the part of a request a signature can cover, borrowed from the caller
// (nothing is copied; every view must outlive the calls it is passed to).
//  - `method` as sent (case-sensitive, e.g. "POST");
//  - `path` the absolute path of the target URI, without query; empty means "/";
//  - `query` the query without its leading '?', empty when there is none;
//  - `authority` host[:port] as the request targets it; it is lower-cased here, and the
//    caller must already have dropped a default port;
//  - `header` returns the value of a header field given its lower-case name, or nullopt
//    when the request has none. A field sent on several lines must come back as the
//    lines joined with ", " (RFC 9110 section 5.3). It may be called several times for the
//    same name and must answer the same each time. An empty function means "no headers".
struct HttpRequestView {
    std::string_view method;
    std::string_view path;
    std::string_view query;
    std::string_view authority;
    std::function<std::optional<std::string>(std::string_view lowercase_name)> header;
};

// SignatureParams describes one signature: its dictionary `label`, the covered
// `components` in order (derived components "@method", "@path", "@query", "@authority",
// or lower-case header field names), and the signature parameters. Parameters that are
// nullopt are absent. When serialized for signing the parameters always appear in the
// order created, expires, keyid, alg, nonce, tag (RFC 9421 leaves the order to the signer;
// this one reproduces the RFC's examples). A verifier never re-serializes received
// parameters: it signs over the text as received (ParsedSignature::raw_params).
struct SignatureParams {
    std::string label = "sig1";
    std::vector<std::string> components;
    std::optional<std::int64_t> created;
    std::optional<std::int64_t> expires;
    std::optional<std::string> keyid;
    std::optional<std::string> alg;
    std::optional<std::string> nonce;
    std::optional<std::string> tag;
};

// serialize_signature_params returns the @signature-params value of `params` (RFC 9421
// section 2.3): the inner list of quoted component names followed by the parameters, e.g.
// `("@method" "@path" "content-digest");created=1618884473;keyid="dev-1";alg="ed25519"`.
// The label is not part of it. Throws std::invalid_argument for a component that is not a
// valid name (see signature_base), a string parameter with characters outside printable
// ASCII (0x20-0x7e), or created/expires outside [0, kHttpSignatureMaxInteger].
std::string serialize_signature_params(const SignatureParams& params);

// signature_base returns the RFC 9421 section 2.5 signature base for `params` over
// `request`: one line `"<name>": <value>` per covered component, then
// `"@signature-params": <serialize_signature_params(params)>`, joined with "\n", without a
// trailing newline. Header values have leading and trailing spaces and tabs removed.
// Fails with:
//  - kUnsupported: a derived component other than @method, @path, @query, @authority;
//  - kInvalidEncoding: a component name that is not a lower-case field name, a component
//    listed twice, more than kHttpSignatureMaxComponents components, a covered header the
//    request does not have ("component X missing"), or a component value holding a control
//    character (CR, LF, NUL, ...) or non-ASCII bytes where the RFC needs ASCII;
//  - kInvalidLength: a component value over kHttpSignatureMaxFieldBytes.
// Throws std::invalid_argument as serialize_signature_params for invalid parameters.
Result<std::string> signature_base(const HttpRequestView& request, const SignatureParams& params);

// SignatureHeaders are the two header VALUES a signed request carries:
// `Signature-Input: <signature_input>` and `Signature: <signature>`, e.g.
// signature_input `sig1=("@method" ...);created=...` and signature `sig1=:<base64>:`.
struct SignatureHeaders {
    std::string signature_input;
    std::string signature;
};

// sign_request signs `request` with `key` as `params` describe (deterministic: Ed25519).
// The caller puts the Content-Digest header (content_digest_sha256) on the request before
// signing when it covers "content-digest". Throws std::invalid_argument when the request
// or the parameters cannot be signed (any signature_base failure, or a label that is not
// an RFC 8941 key: lower-case letter or '*', then lower-case letters, digits, "_-.*"),
// std::logic_error for a moved-from key, std::runtime_error if OpenSSL fails.
SignatureHeaders sign_request(const HttpRequestView& request, const SignatureParams& params,
                              const Ed25519PrivateKey& key);

// ParsedSignature is one signature taken from a request's Signature-Input and Signature
// fields. `params` holds the label and the parsed parameters; `raw_params` is the received
// member value (from "(" to the end of its parameters) that the signature base uses;
// `signature` is the signature bytes (64 for Ed25519).
struct ParsedSignature {
    SignatureParams params;
    std::string raw_params;
    std::vector<std::uint8_t> signature;
};

// parse_signature extracts the signature labelled `label` from the Signature-Input and
// Signature header values; with an empty `label` each field must hold exactly one
// signature, under the same label. Both fields are parsed in full (all members must be
// well-formed structured fields); only the selected member is checked against the profile.
// Nothing is verified here. Fails with:
//  - kInvalidLength: a field over kHttpSignatureMaxFieldBytes, or a signature that is not
//    kEd25519SignatureBytes long;
//  - kInvalidEncoding: a malformed dictionary (syntax, non-canonical form, a repeated
//    label), no member `label`, several members while `label` is empty, labels that differ
//    between the two fields, a Signature-Input member that is not an inner list of strings,
//    a component name that is not a lower-case field name or is listed twice, a parameter
//    of the wrong type or repeated, a string with a character outside printable ASCII, a
//    Signature member that is not a byte sequence or not padded canonical base64;
//  - kOutOfRange: created or expires negative or over 15 digits;
//  - kUnsupported: a derived component other than @method, @path, @query, @authority,
//    component parameters (;sf, ;key, ;bs, ;req, ...), or an unknown signature parameter.
[[nodiscard]] Result<ParsedSignature> parse_signature(std::string_view signature_input,
                                                      std::string_view signature,
                                                      std::string_view label = {});

// signature_base (received signature) returns the base a verifier checks `parsed` over:
// as above, but ending with `parsed.raw_params` exactly as received. Fails as the other
// overload (the parameters of a parsed signature are already valid).
Result<std::string> signature_base(const HttpRequestView& request, const ParsedSignature& parsed);

// VerifyPolicy is what a verifier demands beyond a valid signature. `now_seconds` is the
// verifier's clock (Unix seconds) and must be set: with the default 0 every current
// signature is refused as from the future.
struct VerifyPolicy {
    std::vector<std::string> required_components = {"@method", "@path", "content-digest"};
    std::int64_t now_seconds = 0;
    std::int64_t max_skew_seconds = 300;
};

// verify_request checks `parsed` against `request` and `key` (the caller picks the key from
// parsed.params.keyid beforehand; the keyid is not checked here). It does NOT check that a
// covered Content-Digest matches the body: use verify_signed_request for that. Fails with:
//  - kUnsupported: an `alg` parameter other than "ed25519";
//  - kBadSignature: a required component not covered ("required component X not
//    covered"), no `created`, `created` more than max_skew_seconds away from now ("stale or
//    future created"), `expires` before now ("expired"), or a signature that does not
//    verify;
//  - as signature_base for the request (e.g. a covered header missing from the request).
// Throws std::invalid_argument for a negative policy.max_skew_seconds.
[[nodiscard]] Status verify_request(const HttpRequestView& request, const ParsedSignature& parsed,
                                    const Ed25519PublicKey& key, const VerifyPolicy& policy);

// verify_signed_request is verify_request followed by verify_content_digest of the
// request's Content-Digest header against `body`, and requires "content-digest" to be
// covered whatever the policy says: the one call a receiver of a signed body needs. Fails
// as those two (a missing Content-Digest header is kInvalidEncoding).
[[nodiscard]] Status verify_signed_request(const HttpRequestView& request,
                                           const ParsedSignature& parsed,
                                           const Ed25519PublicKey& key, const VerifyPolicy& policy,
                                           std::span<const std::uint8_t> body);

}  // namespace cipherpulse
