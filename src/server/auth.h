// Bearer tokens for people: 256-bit random, stored only as SHA-256 hashes, each with a role.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cipherpulse/result.h"
#include "store/sqlite.h"

namespace cipherpulse::server {

enum class Role { kAdmin, kClinician, kAnalyst, kDecryptor };

// parse_role reads "admin", "clinician", "analyst" or "decryptor".
Result<Role> parse_role(std::string_view text);
const char* role_name(Role role);

struct TokenInfo {
    std::int64_t id = 0;
    Role role = Role::kAnalyst;
    std::string label;
    std::int64_t created_ms = 0;
    std::optional<std::int64_t> expires_ms;
    std::optional<std::int64_t> revoked_ms;
};

// NewToken is a token as created: `token` is shown once and never stored.
struct NewToken {
    std::int64_t id = 0;
    std::string token;
};

// create_token makes "cpt_" + base64url(32 random bytes) and stores only its hash.
NewToken create_token(store::Database& db, Role role, std::string_view label,
                      std::optional<std::int64_t> expires_ms, std::int64_t now_ms);
std::vector<TokenInfo> list_tokens(store::Database& db);
// revoke_token marks a token revoked; false if there is no such (unrevoked) token.
bool revoke_token(store::Database& db, std::int64_t id, std::int64_t now_ms);
// authenticate returns the token's record if `token` is known, unrevoked and unexpired.
// The lookup is by hash; the stored hash is then compared in constant time.
std::optional<TokenInfo> authenticate(store::Database& db, std::string_view token,
                                      std::int64_t now_ms);

}  // namespace cipherpulse::server
