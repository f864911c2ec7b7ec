// Ingest: parsing and validating uploaded batches, and the writer job that stores records
// and multiplies them into their rollup windows in the same transaction.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cipherpulse/paillier.h"
#include "server/config.h"
#include "server/writer.h"

namespace cipherpulse::server {

// KeyRing holds the published Paillier public keys by kid; thread-safe.
class KeyRing {
  public:
    struct Entry {
        PublicKey key;
        bool active = false;
        std::optional<std::int64_t> retired_ms;  // when a newer key replaced it
    };
    // load replaces the contents with the keys table.
    void load(store::Database& db);
    std::optional<Entry> find(const std::string& kid) const;
    std::optional<std::pair<std::string, PublicKey>> active() const;

  private:
    mutable std::shared_mutex mutex_;
    std::unordered_map<std::string, Entry> keys_;
};

// valid_identifier accepts device and patient ids: 1-128 characters of A-Z a-z 0-9 . _ : -
bool valid_identifier(const std::string& s);

// RecordProblem says why one record of a batch was refused.
struct RecordProblem {
    std::string type;    // stable identifier, e.g. "invalid-ciphertext"
    std::string detail;  // human-readable, never contains the ciphertext
};

// ValidRecord is a record that passed every check.
struct ValidRecord {
    std::int64_t seq = 0;
    std::int64_t t_ms = 0;
    std::string metric;
    std::string schema;
    std::string kid;
    std::vector<std::uint8_t> ct;   // fixed-length bytes
    std::uint64_t max_records = 0;  // the codec's bound for one aggregate
    std::optional<Ciphertext> ciphertext;
    std::optional<PublicKey> key;  // the key of `kid`
    int late_granularities = 0;    // set by compute_partials
};

// ParsedBatch is an upload body with every record checked. `problems[i]` is set for each
// refused record (indexed like `seqs`); the batch is stored only when none is.
struct ParsedBatch {
    std::string device;
    std::vector<std::int64_t> seqs;
    std::vector<ValidRecord> records;
    std::vector<std::optional<RecordProblem>> problems;
    bool ok() const;
};

struct ValidationLimits {
    std::size_t max_records = 1000;
    std::int64_t now_ms = 0;
    std::int64_t max_future_ms = 300000;
    std::int64_t max_age_ms = 7 * 86400000LL;
    std::int64_t key_rotation_grace_ms = 86400000;  // retired keys stay usable this long
};

// parse_batch parses {"device": ID, "records": [{seq, t, metric, schema, kid, ct}, ...]}
// and validates every record against the key ring: known active kid, known schema matching
// the metric, ciphertext of the right length, in range and a unit, sane time, seq unique in
// the batch. A structurally invalid body is an Error (the whole request is malformed).
Result<ParsedBatch> parse_batch(std::string_view body, const KeyRing& keys,
                                const ValidationLimits& limits);

// RecordOutcome is what happened to one record of a stored batch.
struct RecordOutcome {
    std::int64_t seq = 0;
    enum class Status { kAccepted, kDuplicate } status = Status::kAccepted;
    int late_granularities = 0;  // windows it arrived too late for (stored, not folded)
};

struct BatchOutcome {
    std::int64_t batch_id = 0;  // 0 if nothing new was stored
    std::vector<RecordOutcome> records;
};

// SeqConflict: a record reuses a stored (device, seq) with different content.
class SeqConflict : public std::runtime_error {
  public:
    explicit SeqConflict(std::int64_t seq)
        : std::runtime_error("sequence number " + std::to_string(seq) +
                             " was already used for a different record"),
          seq_(seq) {}
    std::int64_t seq() const { return seq_; }

  private:
    std::int64_t seq_;
};

// WindowFull: a window already holds the codec's maximum number of records.
class WindowFull : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// SignedRequest is the part of an upload kept for later signature verification.
struct SignedRequest {
    std::string method, path, content_digest, signature_input, signature;
    std::string body;
};

// IngestCounters are the ingest metrics (monotonic).
struct IngestCounters {
    std::atomic<std::uint64_t> accepted{0}, duplicate{0}, rejected{0}, late{0}, sealed{0};
};

// Windows keeps the open (unsealed) windows in memory. It is touched only by jobs on the
// writer thread, so it needs no lock.
class Windows {
  public:
    Windows(std::vector<Granularity> granularities, IngestCounters& counters);
    // load reads every unsealed window of the database (at start-up).
    void load(store::Database& db);

    // Job factories. Both jobs apply their in-memory effects only as far as they commit.
    // `partials` come from compute_partials over the same records and now_ms; the job uses
    // them unless a record turns out to be a duplicate, then it folds record by record.
    struct Partial;
    std::shared_ptr<WriteJob> make_ingest_job(std::string device, std::string patient,
                                              SignedRequest request,
                                              std::vector<ValidRecord> records,
                                              std::vector<Partial> partials, std::int64_t now_ms,
                                              std::promise<BatchOutcome> done);
    // compute_partials multiplies, outside the writer, the records of one batch into one
    // partial product per window they fall in (coarser granularities from finer partials
    // where the lengths nest), leaving out windows already past their seal time at `now_ms`
    // (the records are late there) and setting each record's late count.
    std::vector<Partial> compute_partials(std::vector<ValidRecord>& records,
                                          const std::string& patient, std::int64_t now_ms) const;
    // make_seal_job seals every window whose seal time has passed; the future gives the
    // number sealed.
    std::shared_ptr<WriteJob> make_seal_job(std::int64_t now_ms, std::promise<int> done);

    struct Key {
        std::string kid, patient, metric, schema, granularity;
        std::int64_t start_ms = 0;
        bool operator==(const Key&) const = default;
    };
    struct KeyHash {
        std::size_t operator()(const Key& k) const;
    };
    struct Open {
        std::int64_t id = 0;
        std::int64_t length_ms = 0;
        std::int64_t seal_ms = 0;
        std::int64_t record_count = 0;
        BigInt aggregate;  // product of the records' ciphertexts mod n^2
    };
    struct Partial {
        Key key;
        std::int64_t length_ms = 0;
        std::int64_t seal_ms = 0;
        std::int64_t count = 0;
        BigInt product;
        std::uint64_t max_records = 0;
        std::optional<PublicKey> public_key;
    };

  private:
    friend class IngestJob;
    friend class SealJob;
    std::vector<Granularity> granularities_;
    IngestCounters& counters_;
    std::unordered_map<Key, Open, KeyHash> open_;
};

// next_seal_ms is the first instant after `now_ms` at which a window of one of
// `granularities` reaches its seal time (windows are epoch-aligned, so every window of a
// granularity seals on the same grid: a multiple of its length plus its grace). The sealer
// wakes then, so a window seals within milliseconds of its grace ending.
std::int64_t next_seal_ms(const std::vector<Granularity>& granularities, std::int64_t now_ms);

// prune_expired deletes up to 5000 raw records received before `cutoff_ms`, their window
// links and the signed batches left without records; returns the records deleted. Windows
// stay: a window older than the retention can no longer be re-verified record by record.
// Bounded so the writer is never held for long; call it repeatedly.
int prune_expired(store::Database& db, std::int64_t cutoff_ms);

}  // namespace cipherpulse::server
