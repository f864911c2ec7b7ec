// Cohort queries on the decryptor's side: the approvers it pins, the log of every query it
// released or refused, and the release itself. The decryptor decrypts a query's aggregate
// only when a pinned approver's signature covers exactly that query (its canonical hash:
// analyst, members, range, windows, statistics, epsilon, aggregate digest), only once, and
// only after its own checks of the server's claims and of the release policy (k patients,
// differencing guard, epsilon budget). Nothing the server says is taken on trust: the
// document's hash is recomputed, the aggregate is recomputed from the windows', and the
// record counts are checked against the decrypted count slot.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cipherpulse/ed25519.h"
#include "cipherpulse/result.h"
#include "cohort/noise.h"
#include "cohort/query.h"
#include "decryptor/config.h"
#include "decryptor/release.h"
#include "decryptor/state.h"

namespace cipherpulse::decryptor {

// kDecisionType is the JWS "typ" of an approver's decision.
inline constexpr const char* kDecisionType = "cipherpulse-decision/1";

// Approver is a pinned approver key with the name of the person who holds it.
struct Approver {
    std::string name;
    std::string fingerprint;  // Ed25519PublicKey::fingerprint()
    std::string public_key_pem;
    std::int64_t added_ms = 0;
};

// add_approver pins a key under a name; refuses (kInvalidArgument) a name or a key already
// pinned, and an empty or over-long name.
Status add_approver(StateStore& store, const std::string& name, const Ed25519PublicKey& key,
                    std::int64_t now_ms);
std::vector<Approver> list_approvers(StateStore& store);
// remove_approver unpins; false when there is no approver of that name.
bool remove_approver(StateStore& store, const std::string& name);
std::optional<Approver> approver_by_fingerprint(StateStore& store, const std::string& fingerprint);

// QueryLogEntry is one query the decryptor decided on.
struct QueryLogEntry {
    std::string query_id;
    std::string hash;
    std::int64_t analyst_token = 0;
    std::string analyst_label;
    std::string approver;
    std::int64_t from_ms = 0;
    std::int64_t to_ms = 0;
    std::vector<std::string> patients;  // patients with data, sorted
    std::optional<std::uint32_t> epsilon_milli;
    std::string status;  // released | refused
    std::string reason;
    std::string result;  // the envelope (released) or the refusal text sent
    bool posted = false;
    std::int64_t decided_ms = 0;
};
std::optional<QueryLogEntry> query_log_entry(StateStore& store, const std::string& id);
std::vector<QueryLogEntry> query_log(StateStore& store, int limit);

// QueryMaterial is what the server hands the decryptor for one approved query.
struct QueryMaterial {
    std::string id;
    std::string server_hash;
    std::string decision;  // the approver's compact JWS as stored by the server
    const nlohmann::json* document = nullptr;  // the canonical query document
    std::string aggregate;  // base64url
    std::string analyst_public_key_pem;
    std::vector<std::optional<std::string>> window_aggregates;  // GET .../windows, in order
};

// Verdict says what became of a query.
struct Verdict {
    // kDuplicate: the log already has this query; nothing new is recorded or posted.
    enum class Kind { kRelease, kRefuse, kIntegrityFailure, kDuplicate };
    Kind kind = Kind::kRefuse;
    std::string reason;    // refusals: the reason given to the analyst and logged
    std::string envelope;  // release: the sealed result
    QueryLogEntry entry;   // what goes into the log
};

// decide checks an approved query and, when every check passes, builds and seals its
// release. In this order: the decision is a JWS by a pinned approver (typ, kid), over this
// query and the recomputed canonical hash, approving; the approver is not the analyst; the
// query was not decided before (the log); the aggregate's digest; each window's aggregate
// digest and their product equal to the aggregate; the windows are the members', aligned,
// inside the range, not overlapping, within the cap, and agree with the ledger where it
// knows them; the decrypted records slot equals the windows' record counts and the sums are
// plausible (open_window); at least k patients with data; no earlier release to the same
// analyst over an overlapping range whose patients differ by fewer than k; epsilon given
// (unless allowed) and within the budget. A failed integrity check is kIntegrityFailure, a policy
// refusal kRefuse. Never throws for bad server data.
Verdict decide(const QueryMaterial& m, const KeyRing& keys, StateStore& store,
               const CohortPolicy& policy, const Ed25519PrivateKey& identity,
               cohort::UniformSource& source, std::int64_t now_ms);

// record_verdict writes the verdict into the log (before anything is posted);
// mark_posted notes that the server took it.
void record_verdict(StateStore& store, const QueryLogEntry& entry);
void mark_posted(StateStore& store, const std::string& id);
std::vector<QueryLogEntry> unposted(StateStore& store);

// epsilon_spent_milli is what the analyst's releases since `since_ms` cost.
std::uint64_t epsilon_spent_milli(StateStore& store, std::int64_t analyst_token,
                                  std::int64_t since_ms);

}  // namespace cipherpulse::decryptor
