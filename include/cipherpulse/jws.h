// JSON Web Signature (RFC 7515) in compact serialization with alg EdDSA over Ed25519
// (RFC 8037): how the decryptor signs its Paillier public-key document and how the edge
// checks it against the identity key it pinned. Only this one algorithm is accepted.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "cipherpulse/ed25519.h"
#include "cipherpulse/result.h"

namespace cipherpulse {

// kJwsMaxCompactBytes bounds the compact JWS text jws_verify accepts (1 MiB).
inline constexpr std::size_t kJwsMaxCompactBytes = 1u << 20;
// kJwsMaxHeaderBytes bounds the decoded protected header jws_verify accepts.
inline constexpr std::size_t kJwsMaxHeaderBytes = 4096;

// jws_sign returns the compact JWS (header.payload.signature, each base64url without
// padding) of `payload` (any bytes) signed with `key`. The protected header is
// {"alg":"EdDSA"} plus "kid" and "typ" when not empty, serialized without white space with
// the members in lexicographic order, so the output is deterministic. Throws
// std::invalid_argument if `kid` or `typ` is not valid UTF-8, std::logic_error for a
// moved-from key, std::runtime_error if OpenSSL fails.
std::string jws_sign(std::string_view payload, const Ed25519PrivateKey& key,
                     std::string_view kid = {}, std::string_view typ = {});

// JwsVerified is what a verified JWS carries. `header_json` is the protected header exactly
// as signed; `kid` and `typ` are its members of those names, empty when absent. The caller
// decides whether the kid and typ are the ones it expects.
struct JwsVerified {
    std::string header_json;
    std::string payload;
    std::string kid;
    std::string typ;
};

// jws_verify checks a compact JWS against `key` and returns its content only if the
// signature verifies. Refused, with a message that says why:
//  - kInvalidLength: text over kJwsMaxCompactBytes, header over kJwsMaxHeaderBytes, or a
//    signature that is not 64 bytes;
//  - kInvalidEncoding: not exactly three '.'-separated parts; a part that is not strict
//    base64url (padding, white space or characters outside the alphabet); a header that is
//    not a JSON object, repeats a member name, lacks "alg", or has a non-string "alg",
//    "kid" or "typ";
//  - kUnsupported: "alg" other than exactly "EdDSA" (e.g. "none", "HS256", "ES256"), any
//    "crit" member (no extension is supported), or "b64" other than true (RFC 7797);
//  - kBadSignature: the signature does not verify against `key`.
// Never throws for bad input. Header members such as "jwk", "jku" or "x5c" are ignored:
// the key is always the one passed in.
[[nodiscard]] Result<JwsVerified> jws_verify(std::string_view compact, const Ed25519PublicKey& key);

}  // namespace cipherpulse
