#include "edge/spool.h"

#include <spdlog/spdlog.h>

namespace cipherpulse::edge {
namespace {

constexpr std::string_view kSpoolV1 = R"sql(
CREATE TABLE spool (
    seq         INTEGER PRIMARY KEY,
    t_ms        INTEGER NOT NULL,
    metric      TEXT NOT NULL,
    schema      TEXT NOT NULL,
    kid         TEXT NOT NULL,
    ct          TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
CREATE TABLE dead_letter (
    seq       INTEGER PRIMARY KEY,
    t_ms      INTEGER NOT NULL,
    metric    TEXT NOT NULL,
    schema    TEXT NOT NULL,
    kid       TEXT NOT NULL,
    ct        TEXT NOT NULL,
    reason    TEXT NOT NULL,
    moved_ms  INTEGER NOT NULL
);
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO counters (name, value) VALUES
    ('last_seq', 0), ('dropped_oldest', 0), ('dropped_newest', 0), ('dead_lettered', 0);
)sql";

// Version 2: the depth as a counter kept with every change, so reading it scans nothing.
constexpr std::string_view kSpoolV2 = R"sql(
INSERT INTO counters (name, value) SELECT 'depth', COUNT(*) FROM spool;
)sql";

constexpr store::Migration kMigrations[] = {{1, kSpoolV1}, {2, kSpoolV2}};

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::int64_t counter(store::Database& db, const char* name) {
    auto& st = db.prepare_cached("SELECT value FROM counters WHERE name = ?");
    st.bind(1, std::string_view(name));
    std::int64_t v = st.step() ? st.column_int64(0) : 0;
    st.reset();
    return v;
}

}  // namespace

Spool Spool::open(const SpoolOptions& options) {
    store::OpenOptions open_options;
    // A new file is owner-only: the spool holds ciphertexts and the device's sequence.
    open_options.private_file = true;
    open_options.synchronous = options.synchronous;
    store::Database db = store::Database::open(options.path, open_options);
    store::migrate(db, kMigrations);
    return Spool(std::move(db), options);
}

Spool::Spool(store::Database db, SpoolOptions options)
    : db_(std::move(db)), options_(std::move(options)) {}

void Spool::bump(const char* name, std::int64_t delta) {
    auto& st = db_.prepare_cached("UPDATE counters SET value = value + ? WHERE name = ?");
    st.bind(1, delta);
    st.bind(2, std::string_view(name));
    st.execute();
}

std::int64_t Spool::depth() {
    return counter(db_, "depth");
}

std::optional<std::int64_t> Spool::append(std::int64_t t_ms, const std::string& metric,
                                          const std::string& schema, const std::string& kid,
                                          const std::string& ct) {
    store::Transaction tx(db_);
    const std::int64_t depth = counter(db_, "depth");
    if (depth >= options_.max_records) {
        if (options_.on_full == SpoolOptions::OnFull::kDropNewest) {
            bump("dropped_newest");
            tx.commit();
            spdlog::warn("spool full ({} records): dropped the newest record", depth);
            return std::nullopt;
        }
        db_.prepare_cached("DELETE FROM spool WHERE seq = (SELECT MIN(seq) FROM spool)").execute();
        bump("dropped_oldest");
        bump("depth", -1);
        spdlog::warn("spool full ({} records): dropped the oldest record", depth);
    }
    // Sequence numbers never repeat, even after every record left the spool.
    db_.prepare_cached("UPDATE counters SET value = value + 1 WHERE name = 'last_seq'").execute();
    std::int64_t seq = counter(db_, "last_seq");
    auto& ins = db_.prepare_cached(
        "INSERT INTO spool (seq, t_ms, metric, schema, kid, ct, created_ms) VALUES (?, ?, ?, ?, "
        "?, ?, ?)");
    ins.bind_all(seq, t_ms, metric, schema, kid, ct, now_ms());
    ins.execute();
    bump("depth");
    tx.commit();
    return seq;
}

std::vector<SpoolRecord> Spool::oldest(std::size_t limit) {
    auto& st = db_.prepare_cached(
        "SELECT seq, t_ms, metric, schema, kid, ct FROM spool ORDER BY seq LIMIT ?");
    st.bind(1, static_cast<std::int64_t>(limit));
    std::vector<SpoolRecord> out;
    while (st.step()) {
        out.push_back({st.column_int64(0), st.column_int64(1), st.column_text(2), st.column_text(3),
                       st.column_text(4), st.column_text(5)});
    }
    return out;
}

void Spool::acknowledge(const std::vector<std::int64_t>& seqs) {
    store::Transaction tx(db_);
    auto& del = db_.prepare_cached("DELETE FROM spool WHERE seq = ?");
    std::int64_t removed = 0;
    for (auto seq : seqs) {
        del.bind(1, seq);
        removed += del.execute();
    }
    bump("depth", -removed);
    tx.commit();
}

void Spool::dead_letter(const std::vector<std::int64_t>& seqs, const std::string& reason) {
    store::Transaction tx(db_);
    auto& move = db_.prepare_cached(
        "INSERT OR REPLACE INTO dead_letter (seq, t_ms, metric, schema, kid, ct, reason, "
        "moved_ms) SELECT seq, t_ms, metric, schema, kid, ct, ?, ? FROM spool WHERE seq = ?");
    auto& del = db_.prepare_cached("DELETE FROM spool WHERE seq = ?");
    for (auto seq : seqs) {
        move.bind_all(reason, now_ms(), seq);
        move.execute();
        del.bind(1, seq);
        if (del.execute() == 1) {
            bump("dead_lettered");
            bump("depth", -1);
        }
    }
    tx.commit();
}

void Spool::set_state(const std::string& key, const std::string& value) {
    auto& st = db_.prepare_cached(
        "INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
        "excluded.value");
    st.bind_all(key, value);
    st.execute();
}

std::optional<std::string> Spool::state(const std::string& key) {
    auto& st = db_.prepare_cached("SELECT value FROM state WHERE key = ?");
    st.bind(1, key);
    if (!st.step()) {
        return std::nullopt;
    }
    std::string v = st.column_text(0);
    st.reset();
    return v;
}

SpoolStats Spool::stats() {
    SpoolStats s;
    s.depth = depth();
    s.last_seq = counter(db_, "last_seq");
    s.dropped_oldest = counter(db_, "dropped_oldest");
    s.dropped_newest = counter(db_, "dropped_newest");
    s.dead_lettered = counter(db_, "dead_lettered");
    if (auto v = state("last_upload_ms")) {
        s.last_upload_ms = std::stoll(*v);
    }
    s.last_error = state("last_error").value_or("");
    s.active_kid = state("active_kid").value_or("");
    return s;
}

}  // namespace cipherpulse::edge
