#include "server/audit.h"

#include "cipherpulse/secure.h"

namespace cipherpulse::server {
namespace {

void put_u64(std::vector<std::uint8_t>& out, std::uint64_t v) {
    for (int i = 7; i >= 0; --i) {
        out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
}

void put_text(std::vector<std::uint8_t>& out, std::string_view text) {
    put_u64(out, text.size());
    out.insert(out.end(), text.begin(), text.end());
}

AuditEntry read_entry(store::Statement& st) {
    AuditEntry e;
    e.id = st.column_int64(0);
    e.ts_ms = st.column_int64(1);
    e.actor = st.column_text(2);
    e.action = st.column_text(3);
    e.subject = st.column_text(4);
    e.detail = st.column_text(5);
    e.prev_hash = st.column_blob(6);
    e.hash = st.column_blob(7);
    return e;
}

constexpr std::string_view kSelect =
    "SELECT id, ts_ms, actor, action, subject, detail, prev_hash, hash FROM audit ";

}  // namespace

std::vector<std::uint8_t> audit_hash(const AuditEntry& e) {
    std::vector<std::uint8_t> buf;
    buf.reserve(128 + e.detail.size());
    std::string_view domain = "cipherpulse-audit-v1";
    buf.insert(buf.end(), domain.begin(), domain.end());
    buf.insert(buf.end(), e.prev_hash.begin(), e.prev_hash.end());
    put_u64(buf, static_cast<std::uint64_t>(e.id));
    put_u64(buf, static_cast<std::uint64_t>(e.ts_ms));
    put_text(buf, e.actor);
    put_text(buf, e.action);
    put_text(buf, e.subject);
    put_text(buf, e.detail);
    return sha256(buf);
}

std::int64_t append_audit(store::Database& db, std::int64_t ts_ms, std::string_view actor,
                          std::string_view action, std::string_view subject,
                          std::string_view detail_json) {
    AuditEntry e;
    auto& last = db.prepare_cached("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1");
    if (last.step()) {
        e.id = last.column_int64(0) + 1;
        e.prev_hash = last.column_blob(1);
    } else {
        e.id = 1;
        e.prev_hash.assign(32, 0);
    }
    last.reset();
    e.ts_ms = ts_ms;
    e.actor = actor;
    e.action = action;
    e.subject = subject;
    e.detail = detail_json;
    e.hash = audit_hash(e);
    auto& insert = db.prepare_cached(
        "INSERT INTO audit (id, ts_ms, actor, action, subject, detail, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    insert.bind(1, e.id);
    insert.bind(2, e.ts_ms);
    insert.bind(3, actor);
    insert.bind(4, action);
    insert.bind(5, subject);
    insert.bind(6, detail_json);
    insert.bind_blob(7, e.prev_hash);
    insert.bind_blob(8, e.hash);
    insert.execute();
    return e.id;
}

std::vector<AuditEntry> list_audit(store::Database& db, std::int64_t after, std::int64_t limit) {
    auto& st = db.prepare_cached(std::string(kSelect) + "WHERE id > ? ORDER BY id LIMIT ?");
    st.bind_all(after, limit);
    std::vector<AuditEntry> out;
    while (st.step()) {
        out.push_back(read_entry(st));
    }
    return out;
}

AuditVerification verify_audit(store::Database& db) {
    AuditVerification v;
    auto st = db.prepare(std::string(kSelect) + "ORDER BY id");
    std::vector<std::uint8_t> prev(32, 0);
    std::int64_t expected_id = 1;
    while (st.step()) {
        AuditEntry e = read_entry(st);
        ++v.entries;
        std::string problem;
        if (e.id != expected_id) {
            problem = "entry " + std::to_string(expected_id) + " is missing";
        } else if (!constant_time_equal(e.prev_hash, prev)) {
            problem = "previous-hash link broken (entry deleted, inserted or reordered)";
        } else if (!constant_time_equal(audit_hash(e), e.hash)) {
            problem = "content does not match its hash (entry edited)";
        }
        if (!problem.empty()) {
            v.ok = false;
            v.first_bad_id = e.id;
            v.problem = problem;
            return v;
        }
        prev = e.hash;
        ++expected_id;
    }
    v.head_hash = prev;
    return v;
}

}  // namespace cipherpulse::server
