#include "server/cohort_store.h"

#include <algorithm>

namespace cipherpulse::server {

bool valid_cohort_name(const std::string& name) {
    if (name.empty() || name.size() > 64) {
        return false;
    }
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    });
}

std::int64_t add_cohort_members(store::Database& db, const std::string& name,
                                const std::vector<std::string>& patients,
                                const std::optional<std::string>& description, std::int64_t now) {
    db.prepare_cached(
          "INSERT INTO cohorts (name, description, created_ms) VALUES (?, ?, ?) "
          "ON CONFLICT (name) DO NOTHING")
        .bind_all(name, description.value_or(""), now)
        .execute();
    if (description) {
        db.prepare_cached("UPDATE cohorts SET description = ? WHERE name = ?")
            .bind_all(*description, name)
            .execute();
    }
    std::int64_t added = 0;
    auto& st = db.prepare_cached(
        "INSERT OR IGNORE INTO cohort_members (cohort, patient, added_ms) VALUES (?, ?, ?)");
    for (const auto& p : patients) {
        added += st.bind_all(name, p, now).execute();
    }
    return added;
}

std::optional<std::int64_t> remove_cohort_members(store::Database& db, const std::string& name,
                                                  const std::vector<std::string>& patients) {
    if (!find_cohort(db, name)) {
        return std::nullopt;
    }
    std::int64_t removed = 0;
    if (patients.empty()) {
        removed = db.prepare_cached("DELETE FROM cohort_members WHERE cohort = ?")
                      .bind_all(name)
                      .execute();
        db.prepare_cached("DELETE FROM cohorts WHERE name = ?").bind_all(name).execute();
        return removed;
    }
    auto& st = db.prepare_cached("DELETE FROM cohort_members WHERE cohort = ? AND patient = ?");
    for (const auto& p : patients) {
        removed += st.bind_all(name, p).execute();
    }
    return removed;
}

namespace {

constexpr const char* kCohortSelect =
    "SELECT c.name, c.description, c.created_ms, "
    "(SELECT COUNT(*) FROM cohort_members m WHERE m.cohort = c.name) FROM cohorts c ";

CohortInfo cohort_row(store::Statement& st) {
    return CohortInfo{st.column_text(0), st.column_text(1), st.column_int64(2), st.column_int64(3)};
}

constexpr const char* kQueryColumns =
    "id, token_id, status, hash, decision, result, reason, created_ms, decided_ms, "
    "finished_ms, epsilon_milli";

StoredQuery query_row(store::Statement& st) {
    StoredQuery q;
    q.id = st.column_text(0);
    q.token_id = st.column_int64(1);
    q.status = parse_query_status(st.column_text(2)).value_or(QueryStatus::kPending);
    q.hash = st.column_text(3);
    q.decision = st.column_text(4);
    q.result = st.column_text(5);
    q.reason = st.column_text(6);
    q.created_ms = st.column_int64(7);
    if (!st.column_is_null(8)) {
        q.decided_ms = st.column_int64(8);
    }
    if (!st.column_is_null(9)) {
        q.finished_ms = st.column_int64(9);
    }
    if (!st.column_is_null(10)) {
        q.epsilon_milli = static_cast<std::uint32_t>(st.column_int64(10));
    }
    return q;
}

}  // namespace

std::vector<CohortInfo> list_cohorts(store::Database& db) {
    std::vector<CohortInfo> out;
    auto& st = db.prepare_cached(std::string(kCohortSelect) + "ORDER BY c.name");
    while (st.step()) {
        out.push_back(cohort_row(st));
    }
    st.reset();
    return out;
}

std::optional<CohortInfo> find_cohort(store::Database& db, const std::string& name) {
    auto& st = db.prepare_cached(std::string(kCohortSelect) + "WHERE c.name = ?");
    st.bind_all(name);
    std::optional<CohortInfo> out;
    if (st.step()) {
        out = cohort_row(st);
    }
    st.reset();
    return out;
}

std::vector<std::string> cohort_members(store::Database& db, const std::string& name) {
    std::vector<std::string> out;
    auto& st =
        db.prepare_cached("SELECT patient FROM cohort_members WHERE cohort = ? ORDER BY patient");
    st.bind_all(name);
    while (st.step()) {
        out.push_back(st.column_text(0));
    }
    st.reset();
    return out;
}

void set_analyst_key(store::Database& db, const AnalystKey& key) {
    db.prepare_cached(
          "INSERT INTO analyst_keys (token_id, public_key_pem, fingerprint, created_ms) "
          "VALUES (?, ?, ?, ?) ON CONFLICT (token_id) DO UPDATE SET "
          "public_key_pem = excluded.public_key_pem, fingerprint = excluded.fingerprint, "
          "created_ms = excluded.created_ms")
        .bind_all(key.token_id, key.public_key_pem, key.fingerprint, key.created_ms)
        .execute();
}

std::optional<AnalystKey> find_analyst_key(store::Database& db, std::int64_t token_id) {
    auto& st = db.prepare_cached(
        "SELECT public_key_pem, fingerprint, created_ms FROM analyst_keys WHERE token_id = ?");
    st.bind_all(token_id);
    std::optional<AnalystKey> out;
    if (st.step()) {
        out = AnalystKey{token_id, st.column_text(0), st.column_text(1), st.column_int64(2)};
    }
    st.reset();
    return out;
}

const char* query_status_name(QueryStatus s) {
    switch (s) {
        case QueryStatus::kPending:
            return "pending";
        case QueryStatus::kApproved:
            return "approved";
        case QueryStatus::kRejected:
            return "rejected";
        case QueryStatus::kReleased:
            return "released";
        case QueryStatus::kRefused:
            return "refused";
    }
    return "pending";
}

std::optional<QueryStatus> parse_query_status(const std::string& text) {
    for (auto s : {QueryStatus::kPending, QueryStatus::kApproved, QueryStatus::kRejected,
                   QueryStatus::kReleased, QueryStatus::kRefused}) {
        if (text == query_status_name(s)) {
            return s;
        }
    }
    return std::nullopt;
}

void insert_query(store::Database& db, const StoredQuery& q) {
    auto& st = db.prepare_cached(
        "INSERT INTO queries (id, token_id, status, document, hash, aggregate, created_ms, "
        "epsilon_milli) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    st.bind_all(q.id, q.token_id, query_status_name(q.status), q.document, q.hash, q.aggregate,
                q.created_ms, nullptr);
    if (q.epsilon_milli) {
        st.bind(8, static_cast<std::int64_t>(*q.epsilon_milli));
    }
    st.execute();
}

std::optional<StoredQuery> find_query(store::Database& db, const std::string& id,
                                      bool with_aggregate) {
    auto& st = db.prepare_cached(std::string("SELECT ") + kQueryColumns +
                                 ", document, CASE WHEN ? THEN aggregate END FROM queries "
                                 "WHERE id = ?");
    st.bind_all(with_aggregate ? 1 : 0, id);
    std::optional<StoredQuery> out;
    if (st.step()) {
        out = query_row(st);
        out->document = st.column_text(11);
        out->aggregate = st.column_blob(12);
    }
    st.reset();
    return out;
}

std::vector<StoredQuery> list_queries(store::Database& db, std::optional<std::int64_t> token_id,
                                      std::optional<QueryStatus> status, std::int64_t limit) {
    auto& st = db.prepare_cached(std::string("SELECT ") + kQueryColumns +
                                 " FROM queries WHERE (? IS NULL OR token_id = ?) AND "
                                 "(? IS NULL OR status = ?) ORDER BY created_ms DESC, id LIMIT ?");
    if (token_id) {
        st.bind(1, *token_id);
        st.bind(2, *token_id);
    } else {
        st.bind_null(1);
        st.bind_null(2);
    }
    if (status) {
        st.bind(3, std::string_view(query_status_name(*status)));
        st.bind(4, std::string_view(query_status_name(*status)));
    } else {
        st.bind_null(3);
        st.bind_null(4);
    }
    st.bind(5, limit);
    std::vector<StoredQuery> out;
    while (st.step()) {
        out.push_back(query_row(st));
    }
    st.reset();
    return out;
}

bool decide_query(store::Database& db, const std::string& id, bool approved,
                  const std::string& decision, const std::string& reason, std::int64_t now) {
    return db.prepare_cached(
                 "UPDATE queries SET status = ?, decision = ?, reason = ?, decided_ms = ? "
                 "WHERE id = ? AND status = 'pending'")
               .bind_all(approved ? "approved" : "rejected", decision, reason, now, id)
               .execute() == 1;
}

bool finish_query(store::Database& db, const std::string& id, bool released,
                  const std::string& result, const std::string& reason, std::int64_t now) {
    if (db.prepare_cached("UPDATE queries SET status = ?, result = ?, reason = ?, finished_ms = ? "
                          "WHERE id = ? AND status = 'approved'")
            .bind_all(released ? "released" : "refused", result, reason, now, id)
            .execute() == 1) {
        return true;
    }
    auto& st = db.prepare_cached("SELECT status, result, reason FROM queries WHERE id = ?");
    st.bind_all(id);
    bool same = false;
    if (st.step()) {
        same = released ? (st.column_text(0) == "released" && st.column_text(1) == result)
                        : (st.column_text(0) == "refused" && st.column_text(2) == reason);
    }
    st.reset();
    return same;
}

}  // namespace cipherpulse::server
