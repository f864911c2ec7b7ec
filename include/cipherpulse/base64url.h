// Base64url without padding (RFC 4648 section 5), as JOSE and every cipherpulse format use.
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

}  // namespace cipherpulse
