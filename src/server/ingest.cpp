#include "server/ingest.h"

#include <algorithm>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cipherpulse/base64url.h"
#include "cipherpulse/codec.h"
#include "server/audit.h"

namespace cipherpulse::server {

// ------------------------------------------------------------------------------ KeyRing

void KeyRing::load(store::Database& db) {
    std::unordered_map<std::string, Entry> fresh;
    auto st = db.prepare("SELECT kid, document, active, retired_ms FROM keys");
    while (st.step()) {
        auto key = PublicKey::from_json(st.column_text(1));
        if (!key) {
            throw std::runtime_error("stored key " + st.column_text(0) +
                                     " is invalid: " + key.error().message);
        }
        std::optional<std::int64_t> retired;
        if (!st.column_is_null(3)) {
            retired = st.column_int64(3);
        }
        fresh.emplace(st.column_text(0),
                      Entry{std::move(key).value(), st.column_int64(2) == 1, retired});
    }
    std::unique_lock lock(mutex_);
    keys_ = std::move(fresh);
}

std::optional<KeyRing::Entry> KeyRing::find(const std::string& kid) const {
    std::shared_lock lock(mutex_);
    auto it = keys_.find(kid);
    if (it == keys_.end()) {
        return std::nullopt;
    }
    return it->second;
}

std::optional<std::pair<std::string, PublicKey>> KeyRing::active() const {
    std::shared_lock lock(mutex_);
    for (const auto& [kid, entry] : keys_) {
        if (entry.active) {
            return std::make_pair(kid, entry.key);
        }
    }
    return std::nullopt;
}

// --------------------------------------------------------------------------- parse_batch

bool valid_identifier(const std::string& s) {
    if (s.empty() || s.size() > 128) {
        return false;
    }
    for (char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == ':';
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool ParsedBatch::ok() const {
    for (const auto& p : problems) {
        if (p) {
            return false;
        }
    }
    return true;
}

namespace {

Error malformed(const std::string& what) {
    return make_error(ErrorCode::kInvalidEncoding, what);
}

// schema_fits tells whether a schema's layout fits a modulus size; cached per thread, as
// building a layout costs more than the rest of a record's checks.
bool schema_fits(const std::string& schema_text, const SchemaId& schema, std::size_t bits) {
    thread_local std::map<std::pair<std::string, std::size_t>, bool> cache;
    auto key = std::make_pair(schema_text, bits);
    auto it = cache.find(key);
    if (it == cache.end()) {
        it = cache.emplace(key, make_layout(schema).fits_modulus(bits)).first;
    }
    return it->second;
}

const char* metric_name(Metric m) {
    switch (m) {
        case Metric::kHeartRate:
            return "hr";
        case Metric::kSpO2:
            return "spo2";
        case Metric::kSkinTemp:
            return "skintemp";
    }
    return "";
}

// check_record validates one record object; on success fills `out`.
std::optional<RecordProblem> check_record(const nlohmann::json& r, const KeyRing& keys,
                                          const ValidationLimits& limits, ValidRecord& out) {
    static const std::set<std::string> kFields = {"seq", "t", "metric", "schema", "kid", "ct"};
    for (const auto& [name, value] : r.items()) {
        if (kFields.count(name) == 0) {
            return RecordProblem{"unknown-field", "unknown field \"" + name.substr(0, 40) + "\""};
        }
    }
    const auto t = r.find("t");
    if (t == r.end() || !t->is_number_integer()) {
        return RecordProblem{"invalid-record", "\"t\" must be an integer (Unix ms)"};
    }
    out.t_ms = t->get<std::int64_t>();
    if (out.t_ms > limits.now_ms + limits.max_future_ms) {
        return RecordProblem{"invalid-time", "record time is in the future"};
    }
    if (out.t_ms < limits.now_ms - limits.max_age_ms) {
        return RecordProblem{"invalid-time", "record time is older than the server accepts"};
    }
    for (const char* field : {"metric", "schema", "kid", "ct"}) {
        auto it = r.find(field);
        if (it == r.end() || !it->is_string()) {
            return RecordProblem{"invalid-record",
                                 std::string("\"") + field + "\" must be a string"};
        }
    }
    out.metric = r["metric"].get<std::string>();
    out.schema = r["schema"].get<std::string>();
    out.kid = r["kid"].get<std::string>();
    auto schema = parse_schema_id(out.schema);
    if (!schema) {
        return RecordProblem{"unknown-schema", "unknown codec schema"};
    }
    if (out.metric != metric_name(schema.value().metric)) {
        return RecordProblem{"invalid-record", "metric does not match the schema"};
    }
    out.max_records = std::uint64_t{1} << schema.value().max_records_log2;
    auto key = keys.find(out.kid);
    if (!key) {
        return RecordProblem{"unknown-kid", "unknown encryption key id"};
    }
    if (!key->active &&
        (!key->retired_ms || limits.now_ms > *key->retired_ms + limits.key_rotation_grace_ms)) {
        return RecordProblem{"inactive-kid", "encryption key is no longer active"};
    }
    if (!schema_fits(out.schema, schema.value(), key->key.modulus_bits())) {
        return RecordProblem{"unknown-schema", "schema does not fit this key's plaintext space"};
    }
    // The ciphertext itself is checked for the whole batch at once (parse_batch).
    out.key = key->key;
    return std::nullopt;
}

// check_ciphertexts validates the ciphertexts of the records that passed check_record, one
// batch gcd per key; refused ones get their problem and leave `valid`.
void check_ciphertexts(const nlohmann::json& records,
                       std::vector<std::optional<RecordProblem>>& problems,
                       std::vector<std::size_t>& record_index, std::vector<ValidRecord>& valid) {
    std::map<std::string, std::vector<std::size_t>> by_kid;  // kid -> positions in `valid`
    for (std::size_t v = 0; v < valid.size(); ++v) {
        by_kid[valid[v].kid].push_back(v);
    }
    std::vector<bool> refused(valid.size(), false);
    for (const auto& [kid, positions] : by_kid) {
        const PublicKey& pk = *valid[positions.front()].key;
        std::vector<std::string_view> texts;
        for (std::size_t v : positions) {
            texts.push_back(records[record_index[v]]["ct"].get_ref<const std::string&>());
        }
        std::vector<std::vector<std::uint8_t>> bytes;
        auto parsed = pk.parse_ciphertexts_base64url(texts, &bytes);
        for (std::size_t k = 0; k < positions.size(); ++k) {
            ValidRecord& r = valid[positions[k]];
            if (!parsed[k]) {
                problems[record_index[positions[k]]] =
                    RecordProblem{"invalid-ciphertext", parsed[k].error().message};
                refused[positions[k]] = true;
                continue;
            }
            r.ciphertext = std::move(parsed[k]).value();
            r.ct = std::move(bytes[k]);
        }
    }
    std::vector<ValidRecord> kept;
    std::vector<std::size_t> kept_index;
    for (std::size_t v = 0; v < valid.size(); ++v) {
        if (!refused[v]) {
            kept.push_back(std::move(valid[v]));
            kept_index.push_back(record_index[v]);
        }
    }
    valid = std::move(kept);
    record_index = std::move(kept_index);
}

}  // namespace

Result<ParsedBatch> parse_batch(std::string_view body, const KeyRing& keys,
                                const ValidationLimits& limits) {
    auto doc = nlohmann::json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        return malformed("body is not a JSON object");
    }
    for (const auto& [name, value] : doc.items()) {
        if (name != "device" && name != "records") {
            return malformed("unknown field \"" + name.substr(0, 40) + "\"");
        }
    }
    auto device = doc.find("device");
    auto records = doc.find("records");
    if (device == doc.end() || !device->is_string() ||
        !valid_identifier(device->get<std::string>())) {
        return malformed("\"device\" must be a device id");
    }
    if (records == doc.end() || !records->is_array() || records->empty()) {
        return malformed("\"records\" must be a non-empty array");
    }
    if (records->size() > limits.max_records) {
        return make_error(ErrorCode::kLimitExceeded,
                          "batch holds " + std::to_string(records->size()) +
                              " records; the limit is " + std::to_string(limits.max_records));
    }
    ParsedBatch out;
    out.device = device->get<std::string>();
    std::set<std::int64_t> seen;
    std::vector<std::size_t> record_index;  // for each entry of out.records, its position
    for (const auto& r : *records) {
        if (!r.is_object()) {
            return malformed("every record must be a JSON object");
        }
        auto seq = r.find("seq");
        if (seq == r.end() || !seq->is_number_integer() || seq->get<std::int64_t>() < 1 ||
            seq->get<std::int64_t>() > (std::int64_t{1} << 53)) {
            return malformed("every record needs \"seq\", an integer from 1 to 2^53");
        }
        std::int64_t s = seq->get<std::int64_t>();
        out.seqs.push_back(s);
        ValidRecord valid;
        valid.seq = s;
        std::optional<RecordProblem> problem;
        if (!seen.insert(s).second) {
            problem = RecordProblem{"duplicate-seq", "sequence number repeated in the batch"};
        } else {
            problem = check_record(r, keys, limits, valid);
        }
        out.problems.push_back(problem);
        if (!problem) {
            record_index.push_back(out.seqs.size() - 1);
            out.records.push_back(std::move(valid));
        }
    }
    check_ciphertexts(*records, out.problems, record_index, out.records);
    return out;
}

// ------------------------------------------------------------------------------ Windows

std::size_t Windows::KeyHash::operator()(const Key& k) const {
    std::size_t h = std::hash<std::string>()(k.patient);
    for (const std::string* s : {&k.kid, &k.metric, &k.schema, &k.granularity}) {
        h = h * 1000003u ^ std::hash<std::string>()(*s);
    }
    return h * 1000003u ^ std::hash<std::int64_t>()(k.start_ms);
}

Windows::Windows(std::vector<Granularity> granularities, IngestCounters& counters)
    : granularities_(std::move(granularities)), counters_(counters) {}

void Windows::load(store::Database& db) {
    open_.clear();
    auto st = db.prepare(
        "SELECT id, kid, patient, metric, schema, granularity, start_ms, length_ms, seal_ms, "
        "record_count, aggregate FROM windows WHERE sealed = 0");
    while (st.step()) {
        Key key{st.column_text(1), st.column_text(2), st.column_text(3),
                st.column_text(4), st.column_text(5), st.column_int64(6)};
        Open w;
        w.id = st.column_int64(0);
        w.length_ms = st.column_int64(7);
        w.seal_ms = st.column_int64(8);
        w.record_count = st.column_int64(9);
        w.aggregate = BigInt::from_bytes(st.column_blob(10));
        open_.emplace(std::move(key), std::move(w));
    }
}

namespace {

std::int64_t window_start(std::int64_t t_ms, std::int64_t length_ms) {
    return t_ms - ((t_ms % length_ms) + length_ms) % length_ms;
}

}  // namespace

std::vector<Windows::Partial> Windows::compute_partials(std::vector<ValidRecord>& records,
                                                        const std::string& patient,
                                                        std::int64_t now_ms) const {
    // Granularities from finest to coarsest; a coarser one whose length is a multiple of a
    // finer one's is the product of that one's partials (before lateness is applied).
    std::vector<const Granularity*> order;
    for (const auto& g : granularities_) {
        order.push_back(&g);
    }
    std::sort(order.begin(), order.end(), [](const Granularity* a, const Granularity* b) {
        return a->length_ms < b->length_ms;
    });
    std::vector<Partial> all;
    std::vector<std::unordered_map<Key, std::size_t, KeyHash>> index(order.size());
    auto add = [&](std::size_t level, const Key& key, const Granularity& g, const BigInt& value,
                   std::int64_t count, const ValidRecord& like) {
        auto [it, fresh] = index[level].try_emplace(key, all.size());
        if (fresh) {
            Partial p;
            p.key = key;
            p.length_ms = g.length_ms;
            p.seal_ms = key.start_ms + g.length_ms + g.seal_grace_ms;
            p.product = value;
            p.count = count;
            p.max_records = like.max_records;
            p.public_key = like.key;
            all.push_back(std::move(p));
            return;
        }
        Partial& p = all[it->second];
        BigInt t;
        mpz_mul(t.get(), p.product.get(), value.get());
        mpz_tdiv_r(p.product.get(), t.get(), like.key->n_squared().get());
        p.count += count;
    };
    std::vector<std::vector<std::size_t>> members(order.size());  // level -> partial indexes
    for (std::size_t level = 0; level < order.size(); ++level) {
        const Granularity& g = *order[level];
        std::optional<std::size_t> finer;
        for (std::size_t f = level; f-- > 0;) {
            if (g.length_ms % order[f]->length_ms == 0) {
                finer = f;
                break;
            }
        }
        std::size_t before = all.size();
        if (finer) {
            for (std::size_t i : members[*finer]) {
                Partial source = all[i];  // copy: `all` may grow
                Key key = source.key;
                key.granularity = g.name;
                key.start_ms = window_start(key.start_ms, g.length_ms);
                ValidRecord like;
                like.max_records = source.max_records;
                like.key = source.public_key;
                add(level, key, g, source.product, source.count, like);
            }
        } else {
            for (const auto& r : records) {
                Key key{r.kid,    patient, r.metric,
                        r.schema, g.name,  window_start(r.t_ms, g.length_ms)};
                add(level, key, g, r.ciphertext->value(), 1, r);
            }
        }
        for (std::size_t i = before; i < all.size(); ++i) {
            members[level].push_back(i);
        }
    }
    for (auto& r : records) {
        r.late_granularities = 0;
        for (const auto& g : granularities_) {
            if (now_ms >= window_start(r.t_ms, g.length_ms) + g.length_ms + g.seal_grace_ms) {
                ++r.late_granularities;
            }
        }
    }
    std::vector<Partial> out;
    for (auto& p : all) {
        if (now_ms < p.seal_ms) {
            out.push_back(std::move(p));
        }
    }
    return out;
}

// IngestJob stores one batch. The undo log restores the open windows it touched if its
// savepoint or the group's commit is rolled back.
class IngestJob final : public WriteJob {
  public:
    IngestJob(Windows& windows, std::string device, std::string patient, SignedRequest request,
              std::vector<ValidRecord> records, std::vector<Windows::Partial> partials,
              std::int64_t now_ms, std::promise<BatchOutcome> done)
        : windows_(windows),
          device_(std::move(device)),
          patient_(std::move(patient)),
          request_(std::move(request)),
          records_(std::move(records)),
          partials_(std::move(partials)),
          now_ms_(now_ms),
          done_(std::move(done)) {}

    void run(store::Database& db) override {
        outcome_ = BatchOutcome{};
        bool any_duplicate = false;
        std::vector<bool> duplicate(records_.size(), false);
        for (std::size_t i = 0; i < records_.size(); ++i) {
            duplicate[i] = is_duplicate(db, records_[i]);
            any_duplicate = any_duplicate || duplicate[i];
        }
        for (std::size_t i = 0; i < records_.size(); ++i) {
            const auto& r = records_[i];
            RecordOutcome o;
            o.seq = r.seq;
            if (duplicate[i]) {
                o.status = RecordOutcome::Status::kDuplicate;
            } else {
                if (outcome_.batch_id == 0) {
                    outcome_.batch_id = insert_batch(db);
                }
                o.late_granularities = any_duplicate ? 0 : r.late_granularities;
                if (any_duplicate) {
                    // The partials include the duplicates: fold this record on its own.
                    for (const auto& g : windows_.granularities_) {
                        Windows::Partial one;
                        one.key =
                            Windows::Key{r.kid,    patient_, r.metric,
                                         r.schema, g.name,   window_start(r.t_ms, g.length_ms)};
                        one.length_ms = g.length_ms;
                        one.seal_ms = one.key.start_ms + g.length_ms + g.seal_grace_ms;
                        one.count = 1;
                        one.product = r.ciphertext->value();
                        one.max_records = r.max_records;
                        one.public_key = r.key;
                        if (!fold(db, one)) {
                            ++o.late_granularities;
                        }
                    }
                }
                insert_record(db, r, o.late_granularities);
            }
            outcome_.records.push_back(o);
        }
        if (!any_duplicate && outcome_.batch_id != 0) {
            for (const auto& p : partials_) {
                fold(db, p);
            }
        }
        write_dirty_windows(db);
        if (outcome_.batch_id != 0) {
            int accepted = 0, late = 0;
            for (const auto& o : outcome_.records) {
                accepted += o.status == RecordOutcome::Status::kAccepted;
                late += o.late_granularities > 0;
            }
            append_audit(db, now_ms_, "device:" + device_, "readings.ingest", device_,
                         "{\"batch\":" + std::to_string(outcome_.batch_id) + ",\"accepted\":" +
                             std::to_string(accepted) + ",\"late\":" + std::to_string(late) + "}");
        }
    }

    void rolled_back() override {
        for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
            if (it->second) {
                windows_.open_[it->first] = std::move(*it->second);
            } else {
                windows_.open_.erase(it->first);
            }
        }
        undo_.clear();
        dirty_.clear();
    }

    void committed() override {
        for (const auto& o : outcome_.records) {
            if (o.status == RecordOutcome::Status::kDuplicate) {
                ++windows_.counters_.duplicate;
            } else {
                ++windows_.counters_.accepted;
                if (o.late_granularities > 0) {
                    ++windows_.counters_.late;
                }
            }
        }
        done_.set_value(std::move(outcome_));
    }

    void failed(std::exception_ptr error) override { done_.set_exception(error); }

  private:
    bool is_duplicate(store::Database& db, const ValidRecord& r) {
        auto& st = db.prepare_cached(
            "SELECT t_ms, metric, schema, kid, ct FROM records WHERE device_id = ? AND seq = ?");
        st.bind(1, device_);
        st.bind(2, r.seq);
        if (!st.step()) {
            return false;
        }
        bool same = st.column_int64(0) == r.t_ms && st.column_text(1) == r.metric &&
                    st.column_text(2) == r.schema && st.column_text(3) == r.kid &&
                    st.column_blob(4) == r.ct;
        st.reset();
        if (!same) {
            throw SeqConflict(r.seq);
        }
        return true;
    }

    void insert_record(store::Database& db, const ValidRecord& r, int late) {
        auto& ins = db.prepare_cached(
            "INSERT INTO records (device_id, seq, t_ms, metric, schema, kid, ct, batch_id, "
            "received_ms, late) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        ins.bind(1, device_);
        ins.bind(2, r.seq);
        ins.bind(3, r.t_ms);
        ins.bind(4, r.metric);
        ins.bind(5, r.schema);
        ins.bind(6, r.kid);
        ins.bind_blob(7, r.ct);
        ins.bind(8, outcome_.batch_id);
        ins.bind(9, now_ms_);
        ins.bind(10, std::int64_t{late});
        ins.execute();
    }

    std::int64_t insert_batch(store::Database& db) {
        auto& st = db.prepare_cached(
            "INSERT INTO batches (device_id, received_ms, method, path, content_digest, "
            "signature_input, signature, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
        st.bind(1, device_);
        st.bind(2, now_ms_);
        st.bind(3, request_.method);
        st.bind(4, request_.path);
        st.bind(5, request_.content_digest);
        st.bind(6, request_.signature_input);
        st.bind(7, request_.signature);
        st.bind_blob(8, std::span<const std::uint8_t>(
                            reinterpret_cast<const std::uint8_t*>(request_.body.data()),
                            request_.body.size()));
        st.execute();
        return db.last_insert_rowid();
    }

    // fold multiplies a partial product into its window and links the batch to it; false
    // when the window's seal time has passed (its records are late there).
    bool fold(store::Database& db, const Windows::Partial& p) {
        if (now_ms_ >= p.seal_ms) {
            return false;
        }
        const Windows::Key& key = p.key;
        auto it = windows_.open_.find(key);
        if (it == windows_.open_.end()) {
            auto& st = db.prepare_cached(
                "SELECT id, sealed FROM windows WHERE kid = ? AND patient = ? AND metric = ? AND "
                "schema = ? AND granularity = ? AND start_ms = ?");
            st.bind_all(key.kid, key.patient, key.metric, key.schema, key.granularity,
                        key.start_ms);
            if (st.step()) {
                // Present in the database but not open in memory: sealed, so immutable.
                st.reset();
                return false;
            }
            remember(key, std::nullopt);
            auto& ins = db.prepare_cached(
                "INSERT INTO windows (kid, patient, metric, schema, granularity, start_ms, "
                "length_ms, seal_ms, record_count, aggregate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, "
                "x'01')");
            ins.bind_all(key.kid, key.patient, key.metric, key.schema, key.granularity,
                         key.start_ms, p.length_ms, p.seal_ms);
            ins.execute();
            Windows::Open w;
            w.id = db.last_insert_rowid();
            w.length_ms = p.length_ms;
            w.seal_ms = p.seal_ms;
            w.aggregate = BigInt(1);
            it = windows_.open_.emplace(key, std::move(w)).first;
        } else {
            remember(key, it->second);
        }
        Windows::Open& w = it->second;
        if (static_cast<std::uint64_t>(w.record_count + p.count) > p.max_records) {
            throw WindowFull("window " + std::to_string(w.id) +
                             " would exceed the most records the codec allows");
        }
        const PublicKey& pk = *p.public_key;
        BigInt& t = scratch_;
        mpz_mul(t.get(), w.aggregate.get(), p.product.get());
        mpz_tdiv_r(w.aggregate.get(), t.get(), pk.n_squared().get());
        w.record_count += p.count;
        dirty_.insert_or_assign(key, pk);
        auto& link = db.prepare_cached(
            "INSERT OR IGNORE INTO window_batches (window_id, batch_id) VALUES (?, ?)");
        link.bind_all(w.id, outcome_.batch_id);
        link.execute();
        return true;
    }

    void remember(const Windows::Key& key, const std::optional<Windows::Open>& before) {
        for (const auto& [k, v] : undo_) {
            if (k == key) {
                return;  // the first state is the one to restore
            }
        }
        undo_.emplace_back(key, before);
    }

    void write_dirty_windows(store::Database& db) {
        auto& st = db.prepare_cached(
            "UPDATE windows SET record_count = ?, aggregate = ? WHERE id = ? AND sealed = 0");
        for (const auto& [key, pk] : dirty_) {
            const Windows::Open& w = windows_.open_.at(key);
            st.bind(1, w.record_count);
            st.bind_blob(2, w.aggregate.to_fixed_bytes(pk.ciphertext_bytes()));
            st.bind(3, w.id);
            if (st.execute() != 1) {
                throw std::logic_error("open window " + std::to_string(w.id) + " is sealed");
            }
        }
    }

    Windows& windows_;
    std::string device_;
    std::string patient_;
    SignedRequest request_;
    std::vector<ValidRecord> records_;
    std::vector<Windows::Partial> partials_;
    std::int64_t now_ms_;
    std::promise<BatchOutcome> done_;
    BatchOutcome outcome_;
    std::vector<std::pair<Windows::Key, std::optional<Windows::Open>>> undo_;
    std::unordered_map<Windows::Key, PublicKey, Windows::KeyHash> dirty_;
    BigInt scratch_;
};

// SealJob seals the windows whose seal time has passed, in (seal time, id) order, giving
// each the next seal sequence number: the cursor the decryptor pages with.
class SealJob final : public WriteJob {
  public:
    SealJob(Windows& windows, std::int64_t now_ms, std::promise<int> done)
        : windows_(windows), now_ms_(now_ms), done_(std::move(done)) {}

    void run(store::Database& db) override {
        sealed_ = 0;
        auto& next = db.prepare_cached("SELECT COALESCE(MAX(seal_seq), 0) FROM windows");
        next.step();
        std::int64_t seq = next.column_int64(0);
        next.reset();
        auto& due = db.prepare_cached(
            "SELECT id, kid, patient, metric, schema, granularity, start_ms FROM windows "
            "WHERE sealed = 0 AND seal_ms <= ? ORDER BY seal_ms, id");
        due.bind(1, now_ms_);
        std::vector<std::pair<std::int64_t, Windows::Key>> rows;
        while (due.step()) {
            rows.emplace_back(
                due.column_int64(0),
                Windows::Key{due.column_text(1), due.column_text(2), due.column_text(3),
                             due.column_text(4), due.column_text(5), due.column_int64(6)});
        }
        auto& seal = db.prepare_cached(
            "UPDATE windows SET sealed = 1, seal_seq = ?, sealed_ms = ? WHERE id = ?");
        for (auto& [id, key] : rows) {
            seal.bind_all(++seq, now_ms_, id);
            seal.execute();
            auto it = windows_.open_.find(key);
            if (it != windows_.open_.end()) {
                removed_.emplace_back(key, std::move(it->second));
                windows_.open_.erase(it);
            }
            ++sealed_;
        }
    }
    void rolled_back() override {
        for (auto& [key, w] : removed_) {
            windows_.open_.emplace(key, std::move(w));
        }
        removed_.clear();
    }
    void committed() override {
        windows_.counters_.sealed += static_cast<std::uint64_t>(sealed_);
        done_.set_value(sealed_);
    }
    void failed(std::exception_ptr error) override { done_.set_exception(error); }

  private:
    Windows& windows_;
    std::int64_t now_ms_;
    std::promise<int> done_;
    int sealed_ = 0;
    std::vector<std::pair<Windows::Key, Windows::Open>> removed_;
};

std::shared_ptr<WriteJob> Windows::make_ingest_job(std::string device, std::string patient,
                                                   SignedRequest request,
                                                   std::vector<ValidRecord> records,
                                                   std::vector<Partial> partials,
                                                   std::int64_t now_ms,
                                                   std::promise<BatchOutcome> done) {
    return std::make_shared<IngestJob>(*this, std::move(device), std::move(patient),
                                       std::move(request), std::move(records), std::move(partials),
                                       now_ms, std::move(done));
}

std::shared_ptr<WriteJob> Windows::make_seal_job(std::int64_t now_ms, std::promise<int> done) {
    return std::make_shared<SealJob>(*this, now_ms, std::move(done));
}

std::int64_t next_seal_ms(const std::vector<Granularity>& granularities, std::int64_t now_ms) {
    std::int64_t next = std::numeric_limits<std::int64_t>::max();
    for (const auto& g : granularities) {
        if (g.length_ms <= 0) {
            continue;
        }
        // The last window end whose seal time is at or before now_ms, then the next one.
        std::int64_t t = now_ms - g.seal_grace_ms;
        std::int64_t end = t / g.length_ms * g.length_ms;
        if (end > t) {
            end -= g.length_ms;  // floor for negative t
        }
        next = std::min(next, end + g.length_ms + g.seal_grace_ms);
    }
    return next;
}

int prune_expired(store::Database& db, std::int64_t cutoff_ms) {
    auto& records = db.prepare_cached(
        "DELETE FROM records WHERE (device_id, seq) IN (SELECT device_id, seq FROM records "
        "WHERE received_ms < ? LIMIT 5000)");
    records.bind(1, cutoff_ms);
    int removed = records.execute();
    auto& links = db.prepare_cached(
        "DELETE FROM window_batches WHERE batch_id IN (SELECT id FROM batches WHERE received_ms "
        "< ? AND NOT EXISTS (SELECT 1 FROM records r WHERE r.batch_id = batches.id))");
    links.bind(1, cutoff_ms);
    links.execute();
    auto& batches = db.prepare_cached(
        "DELETE FROM batches WHERE received_ms < ? AND NOT EXISTS (SELECT 1 FROM records r "
        "WHERE r.batch_id = batches.id)");
    batches.bind(1, cutoff_ms);
    batches.execute();
    return removed;
}

}  // namespace cipherpulse::server
