// Base64url without padding (RFC 4648 section 5), as JOSE and every cipherpulse format use,
// and standard padded base64 (section 4) for HTTP structured fields.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cipherpulse/result.h"

namespace cipherpulse {

// base64url_encode encodes bytes as base64url without padding.
std::string base64url_encode(std::span<const std::uint8_t> data);
std::string base64url_encode(std::string_view data);

// base64url_decode decodes strict base64url without padding. Refuses padding ('='),
// characters outside the URL-safe alphabet, white space, an impossible length (4k+1) and
// non-canonical encodings (unused trailing bits not zero).
Result<std::vector<std::uint8_t>> base64url_decode(std::string_view text);

// base64_encode encodes bytes as standard base64 with padding (RFC 4648 section 4), as
// HTTP structured-field byte sequences (RFC 8941) use.
std::string base64_encode(std::span<const std::uint8_t> data);

// base64_decode decodes strict padded standard base64: the length must be a multiple of 4
// with exactly the padding needed, and the encoding canonical (one text per byte string).
Result<std::vector<std::uint8_t>> base64_decode(std::string_view text);

}  // namespace cipherpulse
