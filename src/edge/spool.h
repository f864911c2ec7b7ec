// The edge's durable spool: every encrypted record is stored (SQLite, WAL) with its
// per-device sequence number before any upload, and leaves only once the server has
// acknowledged it. A full spool drops explicitly (counted, logged), never silently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/upload.h"
#include "store/sqlite.h"

namespace cipherpulse::edge {

// SpoolRecord is a record exactly as it will be uploaded.
using SpoolRecord = common::UploadRecord;

struct SpoolOptions {
    std::string path = "edge-spool.db";
    std::int64_t max_records = 1000000;  // about 2 months of 5 s records
    enum class OnFull { kDropOldest, kDropNewest } on_full = OnFull::kDropOldest;
    std::string synchronous = "FULL";  // an edge writes little: survive power loss too
};

struct SpoolStats {
    std::int64_t depth = 0;
    std::int64_t last_seq = 0;
    std::int64_t dropped_oldest = 0;
    std::int64_t dropped_newest = 0;
    std::int64_t dead_lettered = 0;
    std::optional<std::int64_t> last_upload_ms;
    std::string last_error;
    std::string active_kid;
};

// Spool is used from one thread at a time per instance; open one instance per thread
// (SQLite serialises them).
class Spool {
  public:
    // Opens or creates the spool database (schema migrations, mode 0600 for a new file).
    static Spool open(const SpoolOptions& options);

    // append stores a record under the next sequence number (durable when it returns).
    // When the spool is full it drops per `on_full`: the oldest record (and returns the new
    // seq) or this record (and returns nullopt); either is counted.
    std::optional<std::int64_t> append(std::int64_t t_ms, const std::string& metric,
                                       const std::string& schema, const std::string& kid,
                                       const std::string& ct);
    // oldest returns up to `limit` records in sequence order.
    std::vector<SpoolRecord> oldest(std::size_t limit);
    // depth is the number of records waiting (kept as a counter: no table scan).
    std::int64_t depth();
    // acknowledge removes records the server acknowledged (accepted or duplicate).
    void acknowledge(const std::vector<std::int64_t>& seqs);
    // dead_letter moves records the server refused for good (e.g. a retired key) out of the
    // way, with the reason, so they do not block the spool; counted.
    void dead_letter(const std::vector<std::int64_t>& seqs, const std::string& reason);

    void set_state(const std::string& key, const std::string& value);
    std::optional<std::string> state(const std::string& key);
    SpoolStats stats();

  private:
    Spool(store::Database db, SpoolOptions options);
    void bump(const char* counter, std::int64_t delta = 1);

    store::Database db_;
    SpoolOptions options_;
};

}  // namespace cipherpulse::edge
