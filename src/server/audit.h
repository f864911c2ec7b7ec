// The audit log: every state-changing request and every window the decryptor reads, in a
// hash chain (each entry's hash covers the previous one) so edits, deletions and
// reorderings are detected.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/sqlite.h"

namespace cipherpulse::server {

struct AuditEntry {
    std::int64_t id = 0;
    std::int64_t ts_ms = 0;
    std::string actor;    // "token:<id>", "device:<id>", "cli", "server"
    std::string action;   // "readings.ingest", "device.add", ...
    std::string subject;  // what it acted on
    std::string detail;   // JSON object
    std::vector<std::uint8_t> prev_hash;
    std::vector<std::uint8_t> hash;
};

// audit_hash is SHA-256 over the previous hash and the entry's id, time and
// length-prefixed text fields.
std::vector<std::uint8_t> audit_hash(const AuditEntry& entry);

// append_audit adds an entry after the current last one (inside the caller's transaction).
std::int64_t append_audit(store::Database& db, std::int64_t ts_ms, std::string_view actor,
                          std::string_view action, std::string_view subject,
                          std::string_view detail_json);

// list_audit returns entries with id > after, at most `limit`, in order.
std::vector<AuditEntry> list_audit(store::Database& db, std::int64_t after, std::int64_t limit);

struct AuditVerification {
    bool ok = true;
    std::int64_t entries = 0;
    std::int64_t first_bad_id = 0;  // 0 when ok
    std::string problem;
    std::vector<std::uint8_t> head_hash;  // hash of the last entry: record it to detect truncation
};

// verify_audit walks the whole chain: ids consecutive from 1, each prev_hash equal to the
// previous entry's hash (zeros for the first) and each hash recomputed.
AuditVerification verify_audit(store::Database& db);

}  // namespace cipherpulse::server
