#include "server/auth.h"

#include "cipherpulse/base64url.h"
#include "cipherpulse/secure.h"

namespace cipherpulse::server {
namespace {

constexpr std::string_view kPrefix = "cpt_";

std::vector<std::uint8_t> token_hash(std::string_view token) {
    return sha256(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(token.data()),
                                                token.size()));
}

TokenInfo read_token(store::Statement& st) {
    TokenInfo t;
    t.id = st.column_int64(0);
    t.role = parse_role(st.column_text(1)).value();
    t.label = st.column_text(2);
    t.created_ms = st.column_int64(3);
    if (!st.column_is_null(4)) {
        t.expires_ms = st.column_int64(4);
    }
    if (!st.column_is_null(5)) {
        t.revoked_ms = st.column_int64(5);
    }
    return t;
}

}  // namespace

Result<Role> parse_role(std::string_view text) {
    if (text == "admin") {
        return Role::kAdmin;
    }
    if (text == "clinician") {
        return Role::kClinician;
    }
    if (text == "analyst") {
        return Role::kAnalyst;
    }
    if (text == "decryptor") {
        return Role::kDecryptor;
    }
    return make_error(ErrorCode::kInvalidEncoding,
                      "unknown role (admin, clinician, analyst or decryptor)");
}

const char* role_name(Role role) {
    switch (role) {
        case Role::kAdmin:
            return "admin";
        case Role::kClinician:
            return "clinician";
        case Role::kAnalyst:
            return "analyst";
        case Role::kDecryptor:
            return "decryptor";
    }
    return "unknown";
}

NewToken create_token(store::Database& db, Role role, std::string_view label,
                      std::optional<std::int64_t> expires_ms, std::int64_t now_ms) {
    std::vector<std::uint8_t> raw(32);
    random_bytes(raw);
    NewToken out;
    out.token = std::string(kPrefix) + base64url_encode(raw);
    secure_wipe(raw.data(), raw.size());
    auto hash = token_hash(out.token);
    auto& st = db.prepare_cached(
        "INSERT INTO tokens (hash, role, label, created_ms, expires_ms) VALUES (?, ?, ?, ?, ?)");
    st.bind_blob(1, hash);
    st.bind(2, std::string_view(role_name(role)));
    st.bind(3, label);
    st.bind(4, now_ms);
    if (expires_ms) {
        st.bind(5, *expires_ms);
    } else {
        st.bind_null(5);
    }
    st.execute();
    out.id = db.last_insert_rowid();
    return out;
}

std::vector<TokenInfo> list_tokens(store::Database& db) {
    auto& st = db.prepare_cached(
        "SELECT id, role, label, created_ms, expires_ms, revoked_ms FROM tokens ORDER BY id");
    std::vector<TokenInfo> out;
    while (st.step()) {
        out.push_back(read_token(st));
    }
    return out;
}

bool revoke_token(store::Database& db, std::int64_t id, std::int64_t now_ms) {
    auto& st =
        db.prepare_cached("UPDATE tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL");
    st.bind_all(now_ms, id);
    return st.execute() == 1;
}

std::optional<TokenInfo> authenticate(store::Database& db, std::string_view token,
                                      std::int64_t now_ms) {
    if (token.size() < kPrefix.size() + 40 || token.size() > 100 ||
        token.substr(0, kPrefix.size()) != kPrefix) {
        return std::nullopt;
    }
    auto hash = token_hash(token);
    auto& st = db.prepare_cached(
        "SELECT id, role, label, created_ms, expires_ms, revoked_ms, hash FROM tokens "
        "WHERE hash = ?");
    st.bind_blob(1, hash);
    if (!st.step()) {
        return std::nullopt;
    }
    auto stored = st.column_blob(6);
    TokenInfo info = read_token(st);
    st.reset();
    if (!constant_time_equal(stored, hash) || info.revoked_ms ||
        (info.expires_ms && *info.expires_ms <= now_ms)) {
        return std::nullopt;
    }
    return info;
}

}  // namespace cipherpulse::server
