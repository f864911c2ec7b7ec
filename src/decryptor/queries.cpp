#include "decryptor/queries.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "cipherpulse/base64url.h"
#include "cipherpulse/envelope.h"
#include "cipherpulse/jws.h"
#include "cipherpulse/paillier.h"
#include "cipherpulse/secure.h"
#include "cipherpulse/x25519.h"
#include "cohort/release.h"

namespace cipherpulse::decryptor {
namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxApproverName = 64;
constexpr std::int64_t kDayMs = 86'400'000;

QueryLogEntry read_entry(const store::Statement& st) {
    QueryLogEntry e;
    e.query_id = st.column_text(0);
    e.hash = st.column_text(1);
    e.analyst_token = st.column_int64(2);
    e.analyst_label = st.column_text(3);
    e.approver = st.column_text(4);
    e.from_ms = st.column_int64(5);
    e.to_ms = st.column_int64(6);
    const json patients = json::parse(st.column_text(7), nullptr, false);
    if (patients.is_array()) {
        for (const auto& p : patients) {
            if (p.is_string()) {
                e.patients.push_back(p.get<std::string>());
            }
        }
    }
    if (!st.column_is_null(8)) {
        e.epsilon_milli = static_cast<std::uint32_t>(st.column_int64(8));
    }
    e.status = st.column_text(9);
    e.reason = st.column_text(10);
    e.result = st.column_text(11);
    e.posted = st.column_int64(12) != 0;
    e.decided_ms = st.column_int64(13);
    return e;
}

constexpr const char* kEntryColumns =
    "query_id, hash, analyst_token, analyst_label, approver, from_ms, to_ms, patients, "
    "epsilon_milli, status, reason, result, posted, decided_ms";

std::vector<QueryLogEntry> select_entries(StateStore& store, const std::string& where,
                                          const std::function<void(store::Statement&)>& bind) {
    auto st =
        store.db().prepare(std::string("SELECT ") + kEntryColumns + " FROM query_log " + where);
    bind(st);
    std::vector<QueryLogEntry> out;
    while (st.step()) {
        out.push_back(read_entry(st));
    }
    return out;
}

// jws_kid reads the "kid" of a compact JWS's protected header WITHOUT verifying anything:
// only to choose which pinned key to verify it with.
std::string jws_kid(const std::string& jws) {
    const auto dot = jws.find('.');
    if (dot == std::string::npos) {
        return {};
    }
    auto header = base64url_decode(std::string_view(jws).substr(0, dot));
    if (!header) {
        return {};
    }
    const json h = json::parse(header.value().begin(), header.value().end(), nullptr, false);
    return h.is_object() && h.contains("kid") && h["kid"].is_string() ? h["kid"].get<std::string>()
                                                                      : std::string();
}

// Checker runs decide()'s checks; each failing one sets the verdict and returns false.
class Checker {
  public:
    Checker(const QueryMaterial& m, StateStore& store, const CohortPolicy& policy)
        : m_(m), store_(store), policy_(policy) {}

    Verdict& verdict() { return verdict_; }

    bool refuse(std::string reason) {
        verdict_.kind = Verdict::Kind::kRefuse;
        verdict_.reason = std::move(reason);
        return false;
    }
    bool integrity(std::string reason) {
        verdict_.kind = Verdict::Kind::kIntegrityFailure;
        verdict_.reason = "integrity: " + std::move(reason);
        return false;
    }

    // The document, its hash and the approver's decision.
    bool decision() {
        if (m_.document == nullptr) {
            return integrity("the server sent no query document");
        }
        auto parsed = cohort::parse_document(*m_.document);
        if (!parsed) {
            return integrity("the query document does not parse: " + parsed.error().message);
        }
        doc_ = std::move(parsed).value();
        hash_ = cohort::canonical_hash(doc_);
        fill_entry();
        if (doc_.id != m_.id) {
            return integrity("the document is of query " + doc_.id + ", not " + m_.id);
        }
        if (hash_ != m_.server_hash) {
            return integrity("the server's hash does not match the document");
        }
        const std::string kid = jws_kid(m_.decision);
        auto approver = kid.empty() ? std::nullopt : approver_by_fingerprint(store_, kid);
        if (!approver) {
            return integrity("the decision is not signed by a pinned approver");
        }
        auto key = Ed25519PublicKey::from_pem(approver->public_key_pem);
        if (!key) {
            throw std::runtime_error("pinned approver key of " + approver->name + " unreadable");
        }
        auto verified = jws_verify(m_.decision, key.value());
        if (!verified) {
            return integrity("the decision's signature does not verify (" +
                             verified.error().message + ")");
        }
        if (verified.value().typ != kDecisionType) {
            return integrity("the decision's typ is not " + std::string(kDecisionType));
        }
        const json payload = json::parse(verified.value().payload, nullptr, false);
        if (!payload.is_object() || payload.value("query", "") != m_.id ||
            payload.value("hash", "") != hash_) {
            return integrity("the approver signed another query or another version of it");
        }
        if (payload.value("decision", "") != "approve") {
            return integrity("the approver did not approve this query");
        }
        verdict_.entry.approver = approver->name;
        if (approver->name == doc_.analyst_label) {
            return refuse("the approver is the analyst who asked (" + approver->name + ")");
        }
        return true;
    }

    bool not_decided_before() {
        if (query_log_entry(store_, m_.id)) {
            verdict_.kind = Verdict::Kind::kDuplicate;
            verdict_.reason = "already decided";
            return false;
        }
        return true;
    }

    // The aggregate is the product of the windows' aggregates, each the one the document
    // names.
    bool aggregate(const KeyRing& keys) {
        auto bytes = base64url_decode(m_.aggregate);
        if (!bytes || bytes_hex(bytes.value()) != doc_.aggregate_sha256) {
            return integrity("the aggregate does not match the document's digest");
        }
        aggregate_bytes_ = std::move(bytes).value();
        key_ = keys.find(doc_.kid);
        if (key_ == nullptr) {
            return refuse("this decryptor holds no private key for kid " + doc_.kid);
        }
        if (m_.window_aggregates.size() != doc_.windows.size()) {
            return integrity("the server sent " + std::to_string(m_.window_aggregates.size()) +
                             " window aggregates for " + std::to_string(doc_.windows.size()) +
                             " windows");
        }
        // The core's batch parser decodes and validates every window's ciphertext with one
        // gcd for the whole batch; the bytes are the ones the document's digests name.
        std::vector<std::string_view> texts;
        texts.reserve(doc_.windows.size());
        for (std::size_t i = 0; i < doc_.windows.size(); ++i) {
            if (!m_.window_aggregates[i]) {
                return refuse("window " + std::to_string(doc_.windows[i].id) +
                              " of the query no longer exists on the server");
            }
            texts.push_back(*m_.window_aggregates[i]);
        }
        const PublicKey& pk = key_->public_key();
        std::vector<std::vector<std::uint8_t>> raw;
        auto parsed = pk.parse_ciphertexts_base64url(texts, &raw);
        std::vector<Ciphertext> cts;
        cts.reserve(parsed.size());
        for (std::size_t i = 0; i < parsed.size(); ++i) {
            if (!parsed[i] || bytes_hex(raw[i]) != doc_.windows[i].aggregate_sha256) {
                return integrity("window " + std::to_string(doc_.windows[i].id) +
                                 "'s aggregate does not match the document");
            }
            cts.push_back(std::move(parsed[i]).value());
        }
        if (pk.serialize(pk.sum(cts)) != aggregate_bytes_) {
            return integrity("the aggregate is not the product of the windows' aggregates");
        }
        return true;
    }

    // The windows are the members', aligned, inside the range, not overlapping, within the
    // cap, and agree with what this decryptor saw of them.
    bool windows() {
        const std::set<std::string> members(doc_.members.begin(), doc_.members.end());
        std::map<std::string, std::vector<const cohort::QueryWindow*>> by_patient;
        std::vector<std::int64_t> ids;
        ids.reserve(doc_.windows.size());
        for (const auto& w : doc_.windows) {
            ids.push_back(w.id);
        }
        const auto ledger = store_.ledger_entries(ids);
        for (std::size_t i = 0; i < doc_.windows.size(); ++i) {
            const auto& w = doc_.windows[i];
            const std::string name = "window " + std::to_string(w.id);
            if (!members.count(w.patient)) {
                return integrity(name + " is of a patient outside the query");
            }
            if (w.length_ms <= 0 || w.start_ms % w.length_ms != 0 || w.record_count < 0) {
                return integrity(name + " is not an aligned window");
            }
            if (w.start_ms < doc_.request.from_ms ||
                w.start_ms + w.length_ms > doc_.request.to_ms) {
                return integrity(name + " lies outside the query's range");
            }
            if (auto it = ledger.find(w.id); it != ledger.end()) {
                const LedgerEntry* seen = &it->second;
                if (seen->patient != w.patient || seen->start_ms != w.start_ms ||
                    seen->length_ms != w.length_ms || seen->record_count != w.record_count ||
                    (m_.window_aggregates.size() > i && m_.window_aggregates[i] &&
                     seen->aggregate_sha256 != sha256_hex(*m_.window_aggregates[i]))) {
                    return integrity(name + " differs from the window this decryptor released");
                }
            }
            by_patient[w.patient].push_back(&w);
        }
        for (auto& [patient, list] : by_patient) {
            std::sort(list.begin(), list.end(),
                      [](const auto* a, const auto* b) { return a->start_ms < b->start_ms; });
            std::int64_t end = 0;
            std::int64_t records = 0;
            for (const auto* w : list) {
                if (w->start_ms < end) {
                    return integrity("windows of one patient overlap (window " +
                                     std::to_string(w->id) + ")");
                }
                end = w->start_ms + w->length_ms;
                records += w->record_count;
            }
            if (records > doc_.cap_records) {
                return integrity("a patient contributes more records than the cap");
            }
            total_records_ += records;
        }
        return true;
    }

    // Decrypts the aggregate and checks it as any window.
    bool open() {
        ServerWindow w;
        w.kid = doc_.kid;
        w.metric = doc_.request.metric;
        w.schema = doc_.schema;
        w.record_count = total_records_;
        w.aggregate = m_.aggregate;
        KeyRing one;
        one.add_shared(std::shared_ptr<const PrivateKey>(key_, [](const PrivateKey*) {}));
        auto opened = open_window(w, one);
        if (opened.verdict != OpenedWindow::Verdict::kReleased) {
            return integrity("the aggregate fails its checks: " + opened.detail);
        }
        exact_ = opened.stats;
        return true;
    }

    // At least k patients with data, by the approved document (its hash is checked, so the
    // server cannot change the windows it lists). Checked before the aggregate, so a query
    // over too few patients (none, say: no windows, no schema) is a refusal, not an
    // integrity alarm; the aggregate's checks then prove the windows are the ones listed.
    bool enough_patients() {
        const auto with_data = cohort::patients_with_data(doc_.windows);
        const int k = std::max(policy_.min_patients, kMinPatientsFloor);
        if (with_data < static_cast<std::size_t>(k)) {
            return refuse("only " + std::to_string(with_data) +
                          " patients have data in the range; " + "a release needs at least " +
                          std::to_string(k));
        }
        return true;
    }

    bool policy(std::int64_t now_ms) {
        const int k = std::max(policy_.min_patients, kMinPatientsFloor);
        // The differencing guard: two releases to one analyst over overlapping ranges whose
        // patient sets differ by a few patients would tell those patients' share apart.
        const auto& mine = verdict_.entry.patients;
        for (const auto& earlier :
             select_entries(store_, "WHERE analyst_token = ?1 AND status = 'released'",
                            [&](store::Statement& st) { st.bind_all(doc_.analyst_token); })) {
            if (earlier.to_ms <= doc_.request.from_ms || earlier.from_ms >= doc_.request.to_ms) {
                continue;
            }
            std::vector<std::string> diff;
            std::set_symmetric_difference(mine.begin(), mine.end(), earlier.patients.begin(),
                                          earlier.patients.end(), std::back_inserter(diff));
            if (!diff.empty() && diff.size() < static_cast<std::size_t>(k)) {
                return refuse("the patients differ from those of release " + earlier.query_id +
                              " over an overlapping range by " + std::to_string(diff.size()) +
                              ", fewer than " + std::to_string(k) +
                              ": the two releases together would single them out");
            }
        }
        const auto& eps = doc_.request.epsilon_milli;
        if (!eps) {
            if (!policy_.allow_without_noise) {
                return refuse("releases without noise are not allowed here; ask with an epsilon");
            }
            return true;
        }
        const std::uint64_t spent =
            epsilon_spent_milli(store_, doc_.analyst_token,
                                now_ms - static_cast<std::int64_t>(policy_.budget_days) * kDayMs);
        if (spent + *eps > policy_.budget_milli) {
            return refuse("the analyst's privacy budget does not allow it: epsilon " +
                          cohort::format_epsilon(static_cast<std::uint32_t>(spent)) + " spent of " +
                          cohort::format_epsilon(policy_.budget_milli) + " in the last " +
                          std::to_string(policy_.budget_days) + " days, " +
                          cohort::format_epsilon(*eps) + " asked");
        }
        return true;
    }

    bool seal(const Ed25519PrivateKey& identity, cohort::UniformSource& source,
              std::int64_t now_ms) {
        auto recipient = X25519PublicKey::from_pem(m_.analyst_public_key_pem);
        if (!recipient || recipient.value().fingerprint() != doc_.analyst_key) {
            return integrity("the analyst's result key is not the one the approver saw");
        }
        cohort::Release release;
        try {
            release = cohort::build_release(doc_, exact_, verdict_.entry.patients.size(), source);
        } catch (const std::out_of_range& e) {
            return refuse(std::string("the noise this query needs cannot be drawn: ") + e.what() +
                          "; ask with a larger epsilon or fewer statistics");
        }
        const std::string text =
            cohort::release_json(doc_, hash_, release, verdict_.entry.patients.size(), now_ms)
                .dump();
        verdict_.envelope =
            seal_envelope(json{{"query", doc_.id}}.dump(), text, recipient.value(), identity);
        verdict_.kind = Verdict::Kind::kRelease;
        verdict_.reason.clear();
        return true;
    }

  private:
    static std::string bytes_hex(const std::vector<std::uint8_t>& b) {
        return sha256_hex(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
    }

    void fill_entry() {
        auto& e = verdict_.entry;
        e.query_id = m_.id;
        e.hash = hash_;
        e.analyst_token = doc_.analyst_token;
        e.analyst_label = doc_.analyst_label;
        e.from_ms = doc_.request.from_ms;
        e.to_ms = doc_.request.to_ms;
        e.epsilon_milli = doc_.request.epsilon_milli;
        std::set<std::string> with_data;
        for (const auto& w : doc_.windows) {
            if (w.record_count > 0) {
                with_data.insert(w.patient);
            }
        }
        e.patients.assign(with_data.begin(), with_data.end());
    }

    const QueryMaterial& m_;
    StateStore& store_;
    const CohortPolicy& policy_;
    Verdict verdict_;
    cohort::QueryDocument doc_;
    std::string hash_;
    std::vector<std::uint8_t> aggregate_bytes_;
    const PrivateKey* key_ = nullptr;
    std::int64_t total_records_ = 0;
    HeartRateStats exact_;
};

}  // namespace

Status add_approver(StateStore& store, const std::string& name, const Ed25519PublicKey& key,
                    std::int64_t now_ms) {
    if (name.empty() || name.size() > kMaxApproverName ||
        !std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return c >= 0x20 && c < 0x7f; })) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "an approver's name is 1 to 64 printable ASCII characters");
    }
    auto& db = store.db();
    store::Transaction tx(db);
    auto st = db.prepare("SELECT name FROM approvers WHERE name = ?1 OR fingerprint = ?2");
    st.bind_all(name, key.fingerprint());
    if (st.step()) {
        const std::string other = st.column_text(0);
        return make_error(ErrorCode::kInvalidKey,
                          other == name
                              ? "an approver named '" + name + "' is already pinned"
                              : "this key is already pinned for approver '" + other + "'");
    }
    db.prepare(
          "INSERT INTO approvers (name, fingerprint, public_key_pem, added_ms) VALUES (?1, ?2, "
          "?3, ?4)")
        .bind_all(name, key.fingerprint(), key.to_pem(), now_ms)
        .execute();
    tx.commit();
    return Ok{};
}

std::vector<Approver> list_approvers(StateStore& store) {
    auto st = store.db().prepare(
        "SELECT name, fingerprint, public_key_pem, added_ms FROM approvers ORDER BY name");
    std::vector<Approver> out;
    while (st.step()) {
        out.push_back(
            {st.column_text(0), st.column_text(1), st.column_text(2), st.column_int64(3)});
    }
    return out;
}

bool remove_approver(StateStore& store, const std::string& name) {
    return store.db().prepare("DELETE FROM approvers WHERE name = ?1").bind_all(name).execute() > 0;
}

std::optional<Approver> approver_by_fingerprint(StateStore& store, const std::string& fingerprint) {
    auto st = store.db().prepare(
        "SELECT name, fingerprint, public_key_pem, added_ms FROM approvers WHERE fingerprint = ?1");
    st.bind_all(fingerprint);
    if (!st.step()) {
        return std::nullopt;
    }
    return Approver{st.column_text(0), st.column_text(1), st.column_text(2), st.column_int64(3)};
}

std::optional<QueryLogEntry> query_log_entry(StateStore& store, const std::string& id) {
    auto rows = select_entries(store, "WHERE query_id = ?1",
                               [&](store::Statement& st) { st.bind_all(id); });
    if (rows.empty()) {
        return std::nullopt;
    }
    return rows.front();
}

std::vector<QueryLogEntry> query_log(StateStore& store, int limit) {
    return select_entries(store, "ORDER BY decided_ms DESC, query_id LIMIT ?1",
                          [&](store::Statement& st) { st.bind_all(limit); });
}

Verdict decide(const QueryMaterial& m, const KeyRing& keys, StateStore& store,
               const CohortPolicy& policy, const Ed25519PrivateKey& identity,
               cohort::UniformSource& source, std::int64_t now_ms) {
    Checker c(m, store, policy);
    const bool released = c.decision() && c.not_decided_before() && c.enough_patients() &&
                          c.aggregate(keys) && c.windows() && c.open() && c.policy(now_ms) &&
                          c.seal(identity, source, now_ms);
    Verdict v = std::move(c.verdict());
    v.entry.query_id = m.id;
    v.entry.decided_ms = now_ms;
    v.entry.status = released ? "released" : "refused";
    v.entry.reason = v.reason;
    v.entry.result = released ? v.envelope : v.reason;
    return v;
}

void record_verdict(StateStore& store, const QueryLogEntry& e) {
    json patients = e.patients;
    auto st = store.db().prepare(std::string("INSERT INTO query_log (") + kEntryColumns +
                                 ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                                 "?13, ?14)");
    st.bind_all(e.query_id, e.hash, e.analyst_token, e.analyst_label, e.approver, e.from_ms,
                e.to_ms, patients.dump(), nullptr, e.status, e.reason, e.result, e.posted ? 1 : 0,
                e.decided_ms);
    if (e.epsilon_milli) {
        st.bind(9, static_cast<std::int64_t>(*e.epsilon_milli));
    }
    st.execute();
}

void mark_posted(StateStore& store, const std::string& id) {
    store.db()
        .prepare("UPDATE query_log SET posted = 1 WHERE query_id = ?1")
        .bind_all(id)
        .execute();
}

std::vector<QueryLogEntry> unposted(StateStore& store) {
    return select_entries(store, "WHERE posted = 0 ORDER BY decided_ms", [](store::Statement&) {});
}

std::uint64_t epsilon_spent_milli(StateStore& store, std::int64_t analyst_token,
                                  std::int64_t since_ms) {
    auto st = store.db().prepare(
        "SELECT COALESCE(SUM(epsilon_milli), 0) FROM query_log WHERE analyst_token = ?1 AND "
        "status = 'released' AND decided_ms >= ?2");
    st.bind_all(analyst_token, since_ms);
    return st.step() ? static_cast<std::uint64_t>(st.column_int64(0)) : 0;
}

}  // namespace cipherpulse::decryptor
