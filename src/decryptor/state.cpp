#include "decryptor/state.h"

#include <array>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace cipherpulse::decryptor {
namespace {

constexpr std::array<store::Migration, 2> kMigrations{{
    {1, R"sql(
CREATE TABLE cursors (
    granularity TEXT PRIMARY KEY,
    after TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE ledger (
    window_id INTEGER PRIMARY KEY,
    patient TEXT NOT NULL,
    granularity TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    length_ms INTEGER NOT NULL,
    kid TEXT NOT NULL,
    schema TEXT NOT NULL,
    record_count INTEGER NOT NULL,
    aggregate_sha256 TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('released', 'integrity', 'skipped')),
    detail TEXT NOT NULL DEFAULT '',
    stats TEXT NOT NULL DEFAULT '',
    seen_ms INTEGER NOT NULL
);
CREATE INDEX ledger_patient ON ledger (patient, start_ms);
CREATE TABLE patient_state (
    patient TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('raised', 'cleared', 'integrity')),
    patient TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    window_id INTEGER NOT NULL,
    window_start_ms INTEGER NOT NULL,
    window_length_ms INTEGER NOT NULL,
    summary TEXT NOT NULL,
    figures TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    acked_ms INTEGER,
    acked_by TEXT NOT NULL DEFAULT '',
    ack_note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alerts_patient ON alerts (patient, id);
CREATE TABLE deliveries (
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    channel TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_detail TEXT NOT NULL DEFAULT '',
    done_ms INTEGER,
    PRIMARY KEY (alert_id, channel)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_ms);
CREATE TABLE delivery_attempts (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    channel TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE device_keys (
    device TEXT PRIMARY KEY,
    public_key_pem TEXT NOT NULL,
    pinned_ms INTEGER NOT NULL
);
)sql"},
    // Cohort statistics: the approvers whose signatures the decryptor accepts, and every
    // query it released or refused (the once-only rule, the differencing guard and the
    // epsilon ledger read it; a release is recorded before it is posted).
    {2, R"sql(
CREATE TABLE approvers (
    name TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    public_key_pem TEXT NOT NULL,
    added_ms INTEGER NOT NULL
);
CREATE TABLE query_log (
    query_id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    analyst_token INTEGER NOT NULL,
    analyst_label TEXT NOT NULL,
    approver TEXT NOT NULL DEFAULT '',
    from_ms INTEGER NOT NULL,
    to_ms INTEGER NOT NULL,
    patients TEXT NOT NULL,
    epsilon_milli INTEGER,
    status TEXT NOT NULL CHECK (status IN ('released', 'refused')),
    reason TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL DEFAULT '',
    posted INTEGER NOT NULL DEFAULT 0,
    decided_ms INTEGER NOT NULL
);
CREATE INDEX query_log_analyst ON query_log (analyst_token, decided_ms);
)sql"},
}};

StoredAlert read_alert(const store::Statement& st) {
    StoredAlert a;
    a.id = st.column_int64(0);
    a.key = st.column_text(1);
    a.kind = st.column_text(2);
    a.patient = st.column_text(3);
    a.rule = st.column_text(4);
    a.severity = parse_severity(st.column_text(5)).value_or(Severity::kWarning);
    a.window_id = st.column_int64(6);
    a.window_start_ms = st.column_int64(7);
    a.window_length_ms = st.column_int64(8);
    a.summary = st.column_text(9);
    a.figures = figures_from_json(st.column_text(10));
    a.created_ms = st.column_int64(11);
    if (!st.column_is_null(12)) {
        a.acked_ms = st.column_int64(12);
    }
    a.acked_by = st.column_text(13);
    a.ack_note = st.column_text(14);
    return a;
}

constexpr const char* kAlertColumns =
    "SELECT id, key, kind, patient, rule, severity, window_id, window_start_ms, "
    "window_length_ms, summary, figures, created_ms, acked_ms, acked_by, ack_note FROM alerts ";

Delivery read_delivery(const store::Statement& st) {
    Delivery d;
    d.alert_id = st.column_int64(0);
    d.channel = st.column_text(1);
    d.status = st.column_text(2);
    d.attempts = static_cast<int>(st.column_int64(3));
    d.next_attempt_ms = st.column_int64(4);
    d.last_detail = st.column_text(5);
    return d;
}

}  // namespace

std::string figures_json(const std::vector<Figure>& figures) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& f : figures) {
        list.push_back({f.name, f.value});
    }
    return list.dump();
}

std::vector<Figure> figures_from_json(const std::string& text) {
    std::vector<Figure> out;
    auto list = nlohmann::json::parse(text, nullptr, false);
    if (!list.is_array()) {
        return out;
    }
    for (const auto& item : list) {
        if (item.is_array() && item.size() == 2 && item[0].is_string() && item[1].is_string()) {
            out.push_back({item[0].get<std::string>(), item[1].get<std::string>()});
        }
    }
    return out;
}

StateStore StateStore::open(const std::string& path) {
    store::OpenOptions options;
    options.synchronous = "FULL";
    // Alert history and decrypted statistics are private: a new file is 0600.
    options.private_file = true;
    auto db = store::Database::open(path, options);
    store::migrate(db, kMigrations);
    return StateStore(std::move(db));
}

std::string StateStore::cursor(const std::string& granularity) {
    auto& st = db_.prepare_cached("SELECT after FROM cursors WHERE granularity = ?1");
    st.bind_all(granularity);
    std::string after = st.step() ? st.column_text(0) : std::string("0");
    st.reset();  // a SELECT left open would pin this connection's snapshot
    return after;
}

void StateStore::set_cursor(const std::string& granularity, const std::string& cursor,
                            std::int64_t now_ms) {
    db_.prepare_cached(
           "INSERT INTO cursors (granularity, after, updated_ms) VALUES (?1, ?2, ?3) "
           "ON CONFLICT (granularity) DO UPDATE SET after = excluded.after, "
           "updated_ms = excluded.updated_ms")
        .bind_all(granularity, cursor, now_ms)
        .execute();
}

namespace {

constexpr const char* kLedgerColumns =
    "SELECT window_id, patient, granularity, start_ms, length_ms, kid, schema, record_count, "
    "aggregate_sha256, status, detail, stats, seen_ms FROM ledger ";

LedgerEntry read_ledger_entry(const store::Statement& st) {
    LedgerEntry e;
    e.window_id = st.column_int64(0);
    e.patient = st.column_text(1);
    e.granularity = st.column_text(2);
    e.start_ms = st.column_int64(3);
    e.length_ms = st.column_int64(4);
    e.kid = st.column_text(5);
    e.schema = st.column_text(6);
    e.record_count = st.column_int64(7);
    e.aggregate_sha256 = st.column_text(8);
    e.status = st.column_text(9);
    e.detail = st.column_text(10);
    e.stats_json = st.column_text(11);
    e.seen_ms = st.column_int64(12);
    return e;
}

}  // namespace

std::optional<LedgerEntry> StateStore::ledger_entry(std::int64_t window_id) {
    auto& st = db_.prepare_cached(std::string(kLedgerColumns) + "WHERE window_id = ?1");
    st.bind_all(window_id);
    if (!st.step()) {
        return std::nullopt;
    }
    LedgerEntry e = read_ledger_entry(st);
    st.reset();
    return e;
}

std::map<std::int64_t, LedgerEntry> StateStore::ledger_entries(
    const std::vector<std::int64_t>& window_ids) {
    // One statement for the whole list: a lookup per id would take and drop SQLite's file
    // lock each time (30,000 ids: about a tenth of a second).
    std::string ids = "[";
    for (std::size_t i = 0; i < window_ids.size(); ++i) {
        ids += (i ? "," : "") + std::to_string(window_ids[i]);
    }
    ids += "]";
    auto st = db_.prepare(std::string(kLedgerColumns) +
                          "WHERE window_id IN (SELECT value FROM json_each(?1))");
    st.bind_all(ids);
    std::map<std::int64_t, LedgerEntry> out;
    while (st.step()) {
        LedgerEntry e = read_ledger_entry(st);
        out.emplace(e.window_id, std::move(e));
    }
    return out;
}

void StateStore::add_ledger_entry(const LedgerEntry& e) {
    db_.prepare_cached(
           "INSERT INTO ledger (window_id, patient, granularity, start_ms, length_ms, kid, "
           "schema, record_count, aggregate_sha256, status, detail, stats, seen_ms) "
           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)")
        .bind_all(e.window_id, e.patient, e.granularity, e.start_ms, e.length_ms, e.kid, e.schema,
                  e.record_count, e.aggregate_sha256, e.status, e.detail, e.stats_json, e.seen_ms)
        .execute();
}

PatientState StateStore::patient_state(const std::string& patient) {
    auto& st = db_.prepare_cached("SELECT state FROM patient_state WHERE patient = ?1");
    st.bind_all(patient);
    if (!st.step()) {
        return {};
    }
    const std::string text = st.column_text(0);
    st.reset();
    auto state = PatientState::from_json(text);
    if (!state) {
        throw std::runtime_error("stored rule state of a patient is corrupt: " +
                                 state.error().message);
    }
    return std::move(state).value();
}

void StateStore::save_patient_state(const std::string& patient, const PatientState& state) {
    db_.prepare_cached(
           "INSERT INTO patient_state (patient, state) VALUES (?1, ?2) "
           "ON CONFLICT (patient) DO UPDATE SET state = excluded.state")
        .bind_all(patient, state.to_json())
        .execute();
}

std::vector<std::string> StateStore::patients() {
    std::vector<std::string> out;
    auto& st = db_.prepare_cached("SELECT patient FROM patient_state ORDER BY patient");
    while (st.step()) {
        out.push_back(st.column_text(0));
    }
    return out;
}

std::optional<std::int64_t> StateStore::add_alert(const StoredAlert& a,
                                                  const std::vector<std::string>& channels,
                                                  std::int64_t now_ms) {
    auto& st = db_.prepare_cached(
        "INSERT INTO alerts (key, kind, patient, rule, severity, window_id, window_start_ms, "
        "window_length_ms, summary, figures, created_ms) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (key) DO NOTHING");
    st.bind_all(a.key, a.kind, a.patient, a.rule, std::string(to_string(a.severity)), a.window_id,
                a.window_start_ms, a.window_length_ms, a.summary, figures_json(a.figures),
                a.created_ms);
    st.execute();
    if (db_.changes() == 0) {
        return std::nullopt;
    }
    const std::int64_t id = db_.last_insert_rowid();
    for (const auto& channel : channels) {
        db_.prepare_cached(
               "INSERT INTO deliveries (alert_id, channel, status, next_attempt_ms) "
               "VALUES (?1, ?2, 'pending', ?3)")
            .bind_all(id, channel, now_ms)
            .execute();
    }
    return id;
}

std::optional<StoredAlert> StateStore::alert(std::int64_t id) {
    auto st = db_.prepare(std::string(kAlertColumns) + "WHERE id = ?1");
    st.bind_all(id);
    if (!st.step()) {
        return std::nullopt;
    }
    return read_alert(st);
}

std::vector<StoredAlert> StateStore::alerts(const std::string& patient, bool open_only, int limit) {
    std::string sql = kAlertColumns;
    sql +=
        "WHERE (?1 = '' OR patient = ?1) AND (?2 = 0 OR (acked_ms IS NULL AND kind <> "
        "'cleared')) ORDER BY id DESC LIMIT ?3";
    auto st = db_.prepare(sql);
    st.bind_all(patient, open_only ? 1 : 0, limit);
    std::vector<StoredAlert> out;
    while (st.step()) {
        out.push_back(read_alert(st));
    }
    return out;
}

bool StateStore::acknowledge(std::int64_t id, const std::string& by, const std::string& note,
                             std::int64_t now_ms) {
    db_.prepare_cached(
           "UPDATE alerts SET acked_ms = ?2, acked_by = ?3, ack_note = ?4 "
           "WHERE id = ?1 AND acked_ms IS NULL")
        .bind_all(id, now_ms, by, note)
        .execute();
    return db_.changes() == 1;
}

std::vector<Delivery> StateStore::due_deliveries(std::int64_t now_ms, int limit) {
    auto& st = db_.prepare_cached(
        "SELECT alert_id, channel, status, attempts, next_attempt_ms, last_detail FROM "
        "deliveries WHERE status = 'pending' AND next_attempt_ms <= ?1 "
        "ORDER BY next_attempt_ms, alert_id LIMIT ?2");
    st.bind_all(now_ms, limit);
    std::vector<Delivery> out;
    while (st.step()) {
        out.push_back(read_delivery(st));
    }
    return out;
}

std::optional<std::int64_t> StateStore::next_due_ms() {
    auto& st =
        db_.prepare_cached("SELECT MIN(next_attempt_ms) FROM deliveries WHERE status = 'pending'");
    std::optional<std::int64_t> due;
    if (st.step() && !st.column_is_null(0)) {
        due = st.column_int64(0);
    }
    st.reset();
    return due;
}

void StateStore::record_attempt(const Delivery& d, std::int64_t at_ms, bool ok, bool final_failure,
                                const std::string& detail, std::int64_t retry_at_ms) {
    store::Transaction tx(db_);
    db_.prepare_cached(
           "INSERT INTO delivery_attempts (alert_id, channel, attempt, at_ms, ok, detail) "
           "VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .bind_all(d.alert_id, d.channel, d.attempts + 1, at_ms, ok ? 1 : 0, detail)
        .execute();
    const char* status = ok ? "sent" : (final_failure ? "failed" : "pending");
    auto& st = db_.prepare_cached(
        "UPDATE deliveries SET status = ?3, attempts = attempts + 1, next_attempt_ms = ?4, "
        "last_detail = ?5, done_ms = CASE WHEN ?3 = 'pending' THEN NULL ELSE ?6 END "
        "WHERE alert_id = ?1 AND channel = ?2");
    st.bind_all(d.alert_id, d.channel, std::string(status),
                ok || final_failure ? at_ms : retry_at_ms, detail, at_ms);
    st.execute();
    tx.commit();
}

std::vector<Delivery> StateStore::deliveries(std::int64_t alert_id) {
    auto& st = db_.prepare_cached(
        "SELECT alert_id, channel, status, attempts, next_attempt_ms, last_detail FROM "
        "deliveries WHERE alert_id = ?1 ORDER BY channel");
    st.bind_all(alert_id);
    std::vector<Delivery> out;
    while (st.step()) {
        out.push_back(read_delivery(st));
    }
    return out;
}

std::optional<std::string> StateStore::pinned_device_key(const std::string& device) {
    auto& st = db_.prepare_cached("SELECT public_key_pem FROM device_keys WHERE device = ?1");
    st.bind_all(device);
    if (!st.step()) {
        return std::nullopt;
    }
    std::string pem = st.column_text(0);
    st.reset();
    return pem;
}

void StateStore::pin_device_key(const std::string& device, const std::string& pem,
                                std::int64_t now_ms) {
    db_.prepare_cached(
           "INSERT INTO device_keys (device, public_key_pem, pinned_ms) VALUES (?1, ?2, ?3) "
           "ON CONFLICT (device) DO NOTHING")
        .bind_all(device, pem, now_ms)
        .execute();
}

}  // namespace cipherpulse::decryptor
