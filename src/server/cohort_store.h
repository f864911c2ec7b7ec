// Storage of the analyst's party on the server: cohorts (named patient sets), analysts'
// X25519 result keys, and queries with their lifecycle
// (pending -> approved | rejected, approved -> released | refused). Each function runs in
// the caller's transaction.
//
// What the server holds: cohort membership (metadata it may know), the canonical query
// documents and their encrypted aggregates, the approver's signed decisions and the sealed
// results. It never holds a decrypted figure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/sqlite.h"

namespace cipherpulse::server {

struct CohortInfo {
    std::string name;
    std::string description;
    std::int64_t created_ms = 0;
    std::int64_t members = 0;
};

// valid_cohort_name accepts 1-64 characters of A-Z a-z 0-9 . _ -
bool valid_cohort_name(const std::string& name);

// add_cohort_members creates the cohort when needed (with `description` when given) and
// adds the patients not yet in it; returns how many were added.
std::int64_t add_cohort_members(store::Database& db, const std::string& name,
                                const std::vector<std::string>& patients,
                                const std::optional<std::string>& description, std::int64_t now);
// remove_cohort_members removes patients from a cohort (all of it, with the cohort itself,
// when `patients` is empty); returns the number of members removed, or nullopt when there
// is no such cohort.
std::optional<std::int64_t> remove_cohort_members(store::Database& db, const std::string& name,
                                                  const std::vector<std::string>& patients);
std::vector<CohortInfo> list_cohorts(store::Database& db);
std::optional<CohortInfo> find_cohort(store::Database& db, const std::string& name);
// cohort_members returns the sorted members of a cohort.
std::vector<std::string> cohort_members(store::Database& db, const std::string& name);

struct AnalystKey {
    std::int64_t token_id = 0;
    std::string public_key_pem;
    std::string fingerprint;
    std::int64_t created_ms = 0;
};
// set_analyst_key registers (or replaces) the X25519 result key of an analyst token.
void set_analyst_key(store::Database& db, const AnalystKey& key);
std::optional<AnalystKey> find_analyst_key(store::Database& db, std::int64_t token_id);

enum class QueryStatus { kPending, kApproved, kRejected, kReleased, kRefused };
const char* query_status_name(QueryStatus s);
std::optional<QueryStatus> parse_query_status(const std::string& text);

struct StoredQuery {
    std::string id;
    std::int64_t token_id = 0;
    QueryStatus status = QueryStatus::kPending;
    std::string document;  // canonical query document (compact JSON)
    std::string hash;      // its canonical hash
    std::vector<std::uint8_t> aggregate;
    std::string decision;                        // the approver's JWS, once decided
    std::string result;                          // the sealed release, once released
    std::string reason;                          // why rejected or refused
    std::optional<std::uint32_t> epsilon_milli;  // the document's, null for no noise
    std::int64_t created_ms = 0;
    std::optional<std::int64_t> decided_ms;
    std::optional<std::int64_t> finished_ms;
};

void insert_query(store::Database& db, const StoredQuery& q);
// find_query reads one query; `with_aggregate` false leaves the aggregate empty.
std::optional<StoredQuery> find_query(store::Database& db, const std::string& id,
                                      bool with_aggregate);
// list_queries returns queries newest first: of one token when `token_id` is set, of one
// status when `status` is set; at most `limit`. Documents and aggregates are left empty.
std::vector<StoredQuery> list_queries(store::Database& db, std::optional<std::int64_t> token_id,
                                      std::optional<QueryStatus> status, std::int64_t limit);
// decide_query moves a pending query to approved or rejected with the decision; false when
// it is not pending.
bool decide_query(store::Database& db, const std::string& id, bool approved,
                  const std::string& decision, const std::string& reason, std::int64_t now);
// finish_query moves an approved query to released (with the sealed result) or refused
// (with the reason); false when it is not approved. A released query given the same result
// again is left as it is and counts as done (the decryptor re-posts after a lost answer).
bool finish_query(store::Database& db, const std::string& id, bool released,
                  const std::string& result, const std::string& reason, std::int64_t now);

}  // namespace cipherpulse::server
