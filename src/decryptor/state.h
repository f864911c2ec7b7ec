// The decryptor's own database (SQLite, WAL): the feed cursor, the ledger of released
// windows, each patient's rule state, alert history, the outbox of deliveries with every
// attempt, and the device keys pinned on first use. Nothing here ever goes to the server.
//
// Exactly-once effect: a window's ledger entry, the patient state it changes and the alerts
// it raises with their pending deliveries are written in one transaction (with the cursor
// move when it ends a page), so a kill at any point either did all of it or none of it; a
// window fetched again finds its ledger entry and changes nothing.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "decryptor/rules.h"
#include "store/sqlite.h"

namespace cipherpulse::decryptor {

// Ledger entry statuses.
inline constexpr const char* kReleased = "released";    // decrypted, checked, evaluated
inline constexpr const char* kIntegrity = "integrity";  // failed a check; data not used
inline constexpr const char* kSkipped = "skipped";      // not for us (unknown key, metric)

// LedgerEntry is one window the decryptor has seen.
struct LedgerEntry {
    std::int64_t window_id = 0;
    std::string patient;
    std::string granularity;
    std::int64_t start_ms = 0;
    std::int64_t length_ms = 0;
    std::string kid;
    std::string schema;
    std::int64_t record_count = 0;
    std::string aggregate_sha256;  // hex of SHA-256 of the canonical ciphertext bytes
    std::string status;
    std::string detail;      // why (integrity/skipped), or empty
    std::string stats_json;  // decrypted statistics (released only)
    std::int64_t seen_ms = 0;
};

// StoredAlert is one alert event as kept in the history.
struct StoredAlert {
    std::int64_t id = 0;
    std::string key;   // deterministic: the same event always gets the same key
    std::string kind;  // raised | cleared | integrity
    std::string patient;
    std::string rule;
    Severity severity = Severity::kWarning;
    std::int64_t window_id = 0;
    std::int64_t window_start_ms = 0;
    std::int64_t window_length_ms = 0;
    std::string summary;
    std::vector<Figure> figures;
    std::int64_t created_ms = 0;
    std::optional<std::int64_t> acked_ms;
    std::string acked_by;
    std::string ack_note;
};

// Delivery is one alert to send over one channel.
struct Delivery {
    std::int64_t alert_id = 0;
    std::string channel;
    std::string status;  // pending | sent | failed
    int attempts = 0;
    std::int64_t next_attempt_ms = 0;
    std::string last_detail;
};

class StateStore {
  public:
    // open creates or migrates the database at `path` (created 0600).
    // @throws store::SqliteError
    static StateStore open(const std::string& path);

    store::Database& db() noexcept { return db_; }

    // cursor returns the stored cursor of `granularity` ("0" when none).
    std::string cursor(const std::string& granularity);
    void set_cursor(const std::string& granularity, const std::string& cursor, std::int64_t now_ms);

    std::optional<LedgerEntry> ledger_entry(std::int64_t window_id);
    // ledger_entries returns the entries of those of `window_ids` the ledger has.
    std::map<std::int64_t, LedgerEntry> ledger_entries(const std::vector<std::int64_t>& window_ids);
    void add_ledger_entry(const LedgerEntry& entry);

    // patient_state returns the stored rule state (empty for a new patient); a corrupt
    // stored state throws std::runtime_error.
    PatientState patient_state(const std::string& patient);
    void save_patient_state(const std::string& patient, const PatientState& state);
    std::vector<std::string> patients();

    // add_alert stores an alert (ignored when its key exists: returns nullopt) and queues a
    // pending delivery on each of `channels` due at `now_ms`; returns the new alert id.
    std::optional<std::int64_t> add_alert(const StoredAlert& alert,
                                          const std::vector<std::string>& channels,
                                          std::int64_t now_ms);
    std::optional<StoredAlert> alert(std::int64_t id);
    // alerts lists the history, newest first: all, or one patient's; only unacknowledged
    // ones with `open_only`.
    std::vector<StoredAlert> alerts(const std::string& patient, bool open_only, int limit);
    // acknowledge marks an alert acknowledged; false if there is no such alert or it was
    // already acknowledged.
    bool acknowledge(std::int64_t id, const std::string& by, const std::string& note,
                     std::int64_t now_ms);

    // due_deliveries returns pending deliveries with next_attempt_ms <= now_ms, oldest first.
    std::vector<Delivery> due_deliveries(std::int64_t now_ms, int limit);
    // next_due_ms is the earliest next_attempt_ms of a pending delivery.
    std::optional<std::int64_t> next_due_ms();
    // record_attempt logs one attempt and moves the delivery on: sent, failed (permanent or
    // out of attempts), or pending again at `retry_at_ms`.
    void record_attempt(const Delivery& d, std::int64_t at_ms, bool ok, bool final_failure,
                        const std::string& detail, std::int64_t retry_at_ms);
    std::vector<Delivery> deliveries(std::int64_t alert_id);

    // pinned_device_key returns the device key pinned on first use; pin_device_key pins one.
    std::optional<std::string> pinned_device_key(const std::string& device);
    void pin_device_key(const std::string& device, const std::string& pem, std::int64_t now_ms);

  private:
    explicit StateStore(store::Database db) : db_(std::move(db)) {}
    store::Database db_;
};

// figures_json / figures_from_json store the figures of an alert as JSON text.
std::string figures_json(const std::vector<Figure>& figures);
std::vector<Figure> figures_from_json(const std::string& text);

}  // namespace cipherpulse::decryptor
