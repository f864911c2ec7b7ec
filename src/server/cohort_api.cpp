#include "server/cohort_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <variant>

#include "cipherpulse/base64url.h"
#include "cipherpulse/envelope.h"
#include "cipherpulse/secure.h"
#include "cohort/noise.h"
#include "cohort/query.h"
#include "server/audit.h"
#include "server/cohort_store.h"
#include "server/http_util.h"
#include "server/ingest.h"
#include "server/writer.h"

namespace cipherpulse::server {

using json = nlohmann::json;

namespace {

constexpr const char* kCohortPath = R"(/v1/cohorts/([A-Za-z0-9._-]{1,64}))";
constexpr const char* kAnalystKeyPath = R"(/v1/analysts/(\d{1,18})/key)";
constexpr const char* kQueryPath = R"(/v1/queries/(q_[A-Za-z0-9_-]{1,64}))";
constexpr std::int64_t kMaxListLimit = 500;
constexpr std::size_t kMaxReasonBytes = 500;
// Most windows one query multiplies: 200,000 aggregates hold about 100 MB at 2048 bits
// (1,000 patients x 92 days of day windows with hour and minute edges fit).
constexpr std::size_t kMaxQueryWindows = 200000;

std::string bytes_sha256_hex(const std::vector<std::uint8_t>& bytes) {
    return sha256_hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::string actor_of(const TokenInfo& t) {
    return "token:" + std::to_string(t.id);
}

// only_members answers 400 when `body` has a member not in `allowed`.
bool only_members(const json& body, std::initializer_list<std::string_view> allowed,
                  httplib::Response& res) {
    for (auto it = body.begin(); it != body.end(); ++it) {
        if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
            problem(res, 400, "unknown-field", "Unknown field",
                    "unknown field '" + it.key().substr(0, 64) + "'");
            return false;
        }
    }
    return true;
}

json query_summary(const StoredQuery& q) {
    json j = {{"id", q.id},
              {"token", q.token_id},
              {"status", query_status_name(q.status)},
              {"hash", q.hash},
              {"created_ms", q.created_ms}};
    j["decided_ms"] = q.decided_ms ? json(*q.decided_ms) : json(nullptr);
    j["finished_ms"] = q.finished_ms ? json(*q.finished_ms) : json(nullptr);
    j["epsilon"] = q.epsilon_milli ? json(cohort::format_epsilon(*q.epsilon_milli)) : json(nullptr);
    if (!q.reason.empty()) {
        j["reason"] = q.reason;
    }
    return j;
}

// jws_payload reads the payload of a compact JWS without verifying it: the server cannot
// verify an approver's signature (it does not pin approvers), only check that the decision
// names this query and hash. The decryptor verifies.
std::optional<json> jws_payload(const std::string& jws) {
    const auto first = jws.find('.');
    const auto second = first == std::string::npos ? first : jws.find('.', first + 1);
    if (second == std::string::npos || jws.find('.', second + 1) != std::string::npos) {
        return std::nullopt;
    }
    auto bytes = base64url_decode(std::string_view(jws).substr(first + 1, second - first - 1));
    if (!bytes) {
        return std::nullopt;
    }
    const std::vector<std::uint8_t> raw = std::move(bytes).value();
    json j = json::parse(raw.begin(), raw.end(), nullptr, false);
    if (!j.is_object()) {
        return std::nullopt;
    }
    return j;
}

}  // namespace

struct CohortApi::State {
    State(const ServerConfig& c, Writer& w, ReadFn r, std::function<std::int64_t()> k,
          RequireFn q, ActiveKeyFn a)
        : config(c),
          writer(w),
          read(std::move(r)),
          clock(std::move(k)),
          require(std::move(q)),
          active_key(std::move(a)) {}
    const ServerConfig& config;
    Writer& writer;
    ReadFn read;
    std::function<std::int64_t()> clock;
    RequireFn require;
    ActiveKeyFn active_key;

    void get_cohorts(const httplib::Request& req, httplib::Response& res);
    void get_cohort(const httplib::Request& req, httplib::Response& res);
    void put_cohort(const httplib::Request& req, httplib::Response& res);
    void delete_cohort(const httplib::Request& req, httplib::Response& res);
    void put_analyst_key(const httplib::Request& req, httplib::Response& res);
    void post_query(const httplib::Request& req, httplib::Response& res);
    void get_queries(const httplib::Request& req, httplib::Response& res);
    void get_query(const httplib::Request& req, httplib::Response& res);
    void get_query_windows(const httplib::Request& req, httplib::Response& res);
    void post_decision(const httplib::Request& req, httplib::Response& res);
    void post_result(const httplib::Request& req, httplib::Response& res);
    void get_result(const httplib::Request& req, httplib::Response& res);

    // visible_query reads a query the token may see (its own for an analyst), answering
    // 404 / 403 itself.
    std::optional<StoredQuery> visible_query(const TokenInfo& token, const std::string& id,
                                             bool with_aggregate, httplib::Response& res);
};

void CohortApi::State::get_cohorts(const httplib::Request& req, httplib::Response& res) {
    if (!require(req, res, {Role::kAdmin, Role::kAnalyst})) {
        return;
    }
    std::vector<CohortInfo> cohorts;
    read([&](store::Database& db) { cohorts = list_cohorts(db); });
    json list = json::array();
    for (const auto& c : cohorts) {
        list.push_back({{"name", c.name},
                        {"description", c.description},
                        {"members", c.members},
                        {"created_ms", c.created_ms}});
    }
    send_json(res, 200, {{"cohorts", list}});
}

void CohortApi::State::get_cohort(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kAdmin, Role::kAnalyst});
    if (!token) {
        return;
    }
    const std::string name = req.matches[1];
    std::optional<CohortInfo> info;
    std::vector<std::string> members;
    read([&](store::Database& db) {
        info = find_cohort(db, name);
        if (info && token->role == Role::kAdmin) {
            members = cohort_members(db, name);
        }
    });
    if (!info) {
        problem(res, 404, "unknown-cohort", "Unknown cohort", "no cohort '" + name + "'");
        return;
    }
    json doc = {{"name", info->name},
                {"description", info->description},
                {"members", info->members},
                {"created_ms", info->created_ms}};
    // Membership is metadata the server knows; who is in a cohort is the admin's to see.
    if (token->role == Role::kAdmin) {
        doc["patients"] = members;
    }
    send_json(res, 200, doc);
}

void CohortApi::State::put_cohort(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kAdmin});
    if (!token) {
        return;
    }
    auto body = json_body(req, res);
    if (!body || !only_members(*body, {"description", "patients"}, res)) {
        return;
    }
    const std::string name = req.matches[1];
    const json* patients = body->contains("patients") ? &(*body)["patients"] : nullptr;
    if (patients == nullptr || !patients->is_array() || patients->empty() ||
        patients->size() > config.cohort_max_patients) {
        problem(res, 400, "malformed-request", "Malformed request",
                "\"patients\" must be a list of 1.." +
                    std::to_string(config.cohort_max_patients) + " patient ids");
        return;
    }
    std::set<std::string> unique;
    for (const auto& p : *patients) {
        if (!p.is_string() || !valid_identifier(p.get<std::string>())) {
            problem(res, 400, "malformed-request", "Malformed request",
                    "every patient id is 1-128 characters of A-Z a-z 0-9 . _ : -");
            return;
        }
        unique.insert(p.get<std::string>());
    }
    std::optional<std::string> description;
    if (body->contains("description")) {
        if (!(*body)["description"].is_string() ||
            (*body)["description"].get<std::string>().size() > kMaxReasonBytes) {
            problem(res, 400, "malformed-request", "Malformed request",
                    "\"description\" must be a text of at most 500 bytes");
            return;
        }
        description = (*body)["description"].get<std::string>();
    }
    const std::vector<std::string> wanted(unique.begin(), unique.end());
    const std::int64_t now = clock();
    // PUT sets the whole membership: members not listed are removed.
    auto outcome = run_write<std::pair<bool, std::pair<std::int64_t, std::int64_t>>>(
        writer, [&](store::Database& db) {
            const bool existed = find_cohort(db, name).has_value();
            std::vector<std::string> gone;
            for (const auto& m : cohort_members(db, name)) {
                if (!unique.count(m)) {
                    gone.push_back(m);
                }
            }
            std::int64_t removed = gone.empty() ? 0 : *remove_cohort_members(db, name, gone);
            std::int64_t added = add_cohort_members(db, name, wanted, description, now);
            append_audit(db, now, actor_of(*token), existed ? "cohort.update" : "cohort.add", name,
                         json{{"added", added}, {"removed", removed},
                              {"members", wanted.size()}}
                             .dump());
            return std::make_pair(existed, std::make_pair(added, removed));
        });
    send_json(res, outcome.first ? 200 : 201,
              {{"name", name},
               {"members", wanted.size()},
               {"added", outcome.second.first},
               {"removed", outcome.second.second}});
}

void CohortApi::State::delete_cohort(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kAdmin});
    if (!token) {
        return;
    }
    const std::string name = req.matches[1];
    const std::int64_t now = clock();
    auto removed = run_write<std::optional<std::int64_t>>(writer, [&](store::Database& db) {
        auto r = remove_cohort_members(db, name, {});
        if (r) {
            append_audit(db, now, actor_of(*token), "cohort.remove", name,
                         json{{"members", *r}}.dump());
        }
        return r;
    });
    if (!removed) {
        problem(res, 404, "unknown-cohort", "Unknown cohort", "no cohort '" + name + "'");
        return;
    }
    res.status = 204;
}

void CohortApi::State::put_analyst_key(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kAdmin});
    if (!token) {
        return;
    }
    auto body = json_body(req, res);
    if (!body || !only_members(*body, {"public_key_pem"}, res)) {
        return;
    }
    if (!body->contains("public_key_pem") || !(*body)["public_key_pem"].is_string() ||
        (*body)["public_key_pem"].get<std::string>().size() > 4096) {
        problem(res, 400, "malformed-request", "Malformed request",
                "\"public_key_pem\" must be the analyst's X25519 public key in PEM");
        return;
    }
    auto key = X25519PublicKey::from_pem((*body)["public_key_pem"].get<std::string>());
    if (!key) {
        problem(res, 422, "invalid-key", "Invalid X25519 public key", key.error().message);
        return;
    }
    const std::int64_t analyst = std::stoll(req.matches[1]);
    std::optional<TokenInfo> target;
    read([&](store::Database& db) {
        for (const auto& t : list_tokens(db)) {
            if (t.id == analyst) {
                target = t;
            }
        }
    });
    if (!target || target->role != Role::kAnalyst || target->revoked_ms) {
        problem(res, 404, "unknown-analyst", "Unknown analyst",
                "no active analyst token with id " + std::to_string(analyst));
        return;
    }
    const std::int64_t now = clock();
    AnalystKey stored{analyst, key.value().to_pem(), key.value().fingerprint(), now};
    run_write<bool>(writer, [&](store::Database& db) {
        set_analyst_key(db, stored);
        append_audit(db, now, actor_of(*token), "analyst.key", std::to_string(analyst),
                     json{{"fingerprint", stored.fingerprint}}.dump());
        return true;
    });
    send_json(res, 200, {{"token", analyst}, {"fingerprint", stored.fingerprint}});
}

void CohortApi::State::post_query(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kAnalyst});
    if (!token) {
        return;
    }
    auto body = json_body(req, res);
    if (!body) {
        return;
    }
    cohort::QueryLimits limits;
    limits.max_range_ms = config.cohort_max_range_days * 86400000;
    limits.max_patients = config.cohort_max_patients;
    std::int64_t finest = 0;
    std::vector<cohort::GranularityLength> granularities;
    for (const auto& g : config.granularities) {
        granularities.push_back({g.name, g.length_ms});
        finest = finest == 0 ? g.length_ms : std::min(finest, g.length_ms);
    }
    limits.align_ms = finest;
    auto parsed = cohort::parse_query_request(*body, limits);
    if (auto* e = std::get_if<cohort::QueryError>(&parsed)) {
        problem(res, e->status, e->type, "Invalid query", e->message, {{"field", e->field}});
        return;
    }
    const cohort::QueryRequest& request = std::get<cohort::QueryRequest>(parsed);
    const std::int64_t now = clock();

    // The range must be over: each piece's windows seal after their grace.
    auto pieces = cohort::tile_range(request.from_ms, request.to_ms, granularities);
    if (!pieces) {
        problem(res, 422, "invalid-range", "Invalid query",
                "the range is not aligned to the finest granularity", {{"field", "from_ms"}});
        return;
    }
    for (const auto& p : *pieces) {
        for (const auto& g : config.granularities) {
            if (g.name == p.granularity && p.to_ms + g.seal_grace_ms > now) {
                problem(res, 422, "range-not-sealed", "Range not sealed yet",
                        "the windows of this range seal at " +
                            std::to_string(p.to_ms + g.seal_grace_ms) +
                            " (Unix ms); ask again after that",
                        {{"field", "to_ms"}});
                return;
            }
        }
    }
    auto active = active_key();
    if (!active) {
        problem(res, 503, "no-active-key", "No active key",
                "the decryptor has not published a key yet");
        return;
    }
    const auto& [kid, key] = *active;

    cohort::QueryDocument doc;
    doc.request = request;
    doc.analyst_token = token->id;
    doc.analyst_label = token->label;
    doc.requested_ms = now;
    doc.record_seconds = config.cohort_record_seconds;
    doc.cap_records = (request.to_ms - request.from_ms) / (config.cohort_record_seconds * 1000);
    doc.kid = kid;
    std::optional<AnalystKey> analyst_key;
    bool unknown_cohort = false;
    bool too_many_windows = false;
    std::vector<std::vector<std::uint8_t>> aggregates;
    std::set<std::string> schemas;
    read([&](store::Database& db) {
        analyst_key = find_analyst_key(db, token->id);
        if (request.cohort) {
            unknown_cohort = !find_cohort(db, *request.cohort);
            doc.members = cohort_members(db, *request.cohort);
        } else {
            doc.members = request.patients;
        }
        if (!analyst_key || unknown_cohort) {
            return;
        }
        auto& st = db.prepare_cached(
            "SELECT id, schema, start_ms, length_ms, record_count, aggregate FROM windows "
            "WHERE patient = ? AND metric = ? AND granularity = ? AND start_ms >= ? AND "
            "start_ms < ? AND kid = ? AND sealed = 1 ORDER BY start_ms");
        for (const auto& patient : doc.members) {
            std::vector<std::pair<cohort::QueryWindow, std::vector<std::uint8_t>>> mine;
            for (const auto& p : *pieces) {
                st.bind_all(patient, request.metric, p.granularity, p.from_ms, p.to_ms, kid);
                while (st.step()) {
                    // A window must lie wholly inside its piece (a granularity's windows
                    // are aligned, so this holds unless the table was tampered with).
                    if (st.column_int64(2) + st.column_int64(3) > p.to_ms) {
                        continue;
                    }
                    cohort::QueryWindow w{st.column_int64(0), patient, p.granularity,
                                          st.column_int64(2), st.column_int64(3),
                                          st.column_int64(4), ""};
                    schemas.insert(st.column_text(1));
                    mine.emplace_back(std::move(w), st.column_blob(5));
                }
                st.reset();
            }
            std::sort(mine.begin(), mine.end(), [](const auto& a, const auto& b) {
                return a.first.start_ms < b.first.start_ms;
            });
            // The contribution cap: at most range / record_seconds records per patient.
            std::int64_t total = 0;
            for (auto& [w, bytes] : mine) {
                if (total + w.record_count > doc.cap_records) {
                    break;  // this and later windows are left out
                }
                total += w.record_count;
                w.aggregate_sha256 = bytes_sha256_hex(bytes);
                doc.windows.push_back(std::move(w));
                aggregates.push_back(std::move(bytes));
            }
            if (aggregates.size() > kMaxQueryWindows) {
                too_many_windows = true;
                return;
            }
        }
    });
    if (unknown_cohort) {
        problem(res, 404, "unknown-cohort", "Unknown cohort",
                "no cohort '" + *request.cohort + "'", {{"field", "cohort"}});
        return;
    }
    if (too_many_windows) {
        problem(res, 422, "query-too-large", "Query too large",
                "the query would multiply more than " + std::to_string(kMaxQueryWindows) +
                    " windows; align the range to whole days or narrow it",
                {{"field", "to_ms"}});
        return;
    }
    if (doc.members.empty()) {
        problem(res, 422, "empty-cohort", "Empty cohort", "the cohort has no members",
                {{"field", "cohort"}});
        return;
    }
    if (!analyst_key) {
        problem(res, 409, "no-analyst-key", "No result key registered",
                "an admin must register this analyst's X25519 public key first "
                "(PUT /v1/analysts/" +
                    std::to_string(token->id) + "/key)");
        return;
    }
    if (schemas.size() > 1) {
        problem(res, 409, "mixed-schemas", "Mixed schemas",
                "the range holds windows of more than one schema; split the range");
        return;
    }
    doc.analyst_key = analyst_key->fingerprint;
    doc.schema = schemas.empty() ? "" : *schemas.begin();
    std::int64_t records = 0;
    for (const auto& w : doc.windows) {
        records += w.record_count;
    }
    // One aggregate holds at most 2^a records (the codec's bound; a = 32 at least).
    if (records > (std::int64_t{1} << 32)) {
        problem(res, 422, "too-many-records", "Too many records",
                "the query would sum more than 2^32 records; narrow the range or cohort");
        return;
    }
    std::vector<Ciphertext> cts;
    cts.reserve(aggregates.size());
    for (const auto& a : aggregates) {
        cts.push_back(key.unsafe_ciphertext(BigInt::from_bytes(a)));
    }
    const std::vector<std::uint8_t> aggregate = key.serialize(key.sum(cts));
    doc.aggregate_sha256 = bytes_sha256_hex(aggregate);
    std::array<std::uint8_t, 12> raw{};
    random_bytes(raw);
    doc.id = "q_" + base64url_encode(raw);

    StoredQuery stored;
    stored.id = doc.id;
    stored.token_id = token->id;
    stored.document = cohort::document_json(doc).dump();
    stored.hash = cohort::canonical_hash(doc);
    stored.aggregate = aggregate;
    stored.created_ms = now;
    stored.epsilon_milli = request.epsilon_milli;
    const std::size_t with_data = cohort::patients_with_data(doc.windows);
    run_write<bool>(writer, [&](store::Database& db) {
        insert_query(db, stored);
        append_audit(db, now, actor_of(*token), "query.request", stored.id,
                     json{{"hash", stored.hash},
                          {"cohort", request.cohort ? json(*request.cohort) : json(nullptr)},
                          {"members", doc.members.size()},
                          {"patients_with_data", with_data},
                          {"windows", doc.windows.size()},
                          {"epsilon_milli", request.epsilon_milli ? json(*request.epsilon_milli)
                                                                  : json(nullptr)}}
                         .dump());
        return true;
    });
    spdlog::info("query {}: {} members, {} with data, {} windows", stored.id, doc.members.size(),
                 with_data, doc.windows.size());
    send_json(res, 202,
              {{"id", stored.id},
               {"status", "pending"},
               {"hash", stored.hash},
               {"cohort_size", doc.members.size()},
               {"patients_with_data", with_data},
               {"windows", doc.windows.size()},
               {"records", records},
               {"cap_records", doc.cap_records},
               {"epsilon", request.epsilon_milli
                               ? json(cohort::format_epsilon(*request.epsilon_milli))
                               : json(nullptr)}});
}

std::optional<StoredQuery> CohortApi::State::visible_query(const TokenInfo& token,
                                                           const std::string& id,
                                                           bool with_aggregate,
                                                           httplib::Response& res) {
    std::optional<StoredQuery> q;
    read([&](store::Database& db) { q = find_query(db, id, with_aggregate); });
    if (!q) {
        problem(res, 404, "unknown-query", "Unknown query", "no query '" + id + "'");
        return std::nullopt;
    }
    if (token.role == Role::kAnalyst && q->token_id != token.id) {
        problem(res, 403, "forbidden", "Forbidden", "this query belongs to another analyst");
        return std::nullopt;
    }
    return q;
}

void CohortApi::State::get_queries(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kAnalyst, Role::kAdmin, Role::kDecryptor});
    if (!token) {
        return;
    }
    std::optional<QueryStatus> status;
    if (req.has_param("status")) {
        status = parse_query_status(req.get_param_value("status"));
        if (!status) {
            problem(res, 400, "invalid-query", "Invalid query",
                    "status must be pending, approved, rejected, released or refused");
            return;
        }
    }
    bool bad = false;
    auto limit = query_int(req, "limit", 100, bad);
    if (bad || *limit < 1 || *limit > kMaxListLimit) {
        problem(res, 400, "invalid-query", "Invalid query", "limit must be 1..500");
        return;
    }
    std::optional<std::int64_t> owner;
    if (token->role == Role::kAnalyst) {
        owner = token->id;
    }
    std::vector<StoredQuery> rows;
    read([&](store::Database& db) { rows = list_queries(db, owner, status, *limit); });
    json list = json::array();
    for (const auto& q : rows) {
        list.push_back(query_summary(q));
    }
    send_json(res, 200, {{"queries", list}});
}

void CohortApi::State::get_query(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kAnalyst, Role::kAdmin, Role::kDecryptor});
    if (!token) {
        return;
    }
    const bool decryptor = token->role == Role::kDecryptor;
    auto q = visible_query(*token, req.matches[1], decryptor, res);
    if (!q) {
        return;
    }
    json doc = query_summary(*q);
    doc["document"] = json::parse(q->document);
    if (!q->decision.empty()) {
        doc["decision"] = q->decision;
    }
    if (decryptor) {
        doc["aggregate"] = base64url_encode(q->aggregate);
        std::optional<AnalystKey> key;
        read([&](store::Database& db) { key = find_analyst_key(db, q->token_id); });
        doc["analyst_public_key_pem"] = key ? json(key->public_key_pem) : json(nullptr);
    }
    send_json(res, 200, doc);
}

void CohortApi::State::get_query_windows(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kDecryptor});
    if (!token) {
        return;
    }
    auto q = visible_query(*token, req.matches[1], false, res);
    if (!q) {
        return;
    }
    auto parsed = cohort::parse_document(json::parse(q->document));
    if (!parsed) {
        problem(res, 500, "internal", "Stored query unreadable", parsed.error().message);
        return;
    }
    // The windows' aggregates in the document's order, for the decryptor to recompute the
    // query's aggregate; a window since removed (retention) comes back null.
    json list = json::array();
    read([&](store::Database& db) {
        auto& st = db.prepare_cached("SELECT aggregate FROM windows WHERE id = ?");
        for (const auto& w : parsed.value().windows) {
            st.bind_all(w.id);
            list.push_back(st.step() ? json(base64url_encode(st.column_blob(0))) : json(nullptr));
            st.reset();
        }
    });
    send_json(res, 200, {{"id", q->id}, {"aggregates", list}});
}

void CohortApi::State::post_decision(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kDecryptor});
    if (!token) {
        return;
    }
    auto body = json_body(req, res);
    if (!body || !only_members(*body, {"decision"}, res)) {
        return;
    }
    if (!body->contains("decision") || !(*body)["decision"].is_string() ||
        (*body)["decision"].get<std::string>().size() > 8192) {
        problem(res, 400, "malformed-request", "Malformed request",
                "\"decision\" must be the approver's compact JWS");
        return;
    }
    const std::string jws = (*body)["decision"];
    auto payload = jws_payload(jws);
    const std::string id = req.matches[1];
    auto q = visible_query(*token, id, false, res);
    if (!q) {
        return;
    }
    if (!payload || payload->value("query", "") != id || payload->value("hash", "") != q->hash ||
        !payload->contains("decision") || !(*payload)["decision"].is_string()) {
        problem(res, 422, "invalid-decision", "Invalid decision",
                "the decision must be a JWS whose payload names this query and its hash");
        return;
    }
    const std::string decision = (*payload)["decision"];
    if (decision != "approve" && decision != "reject") {
        problem(res, 422, "invalid-decision", "Invalid decision",
                "decision must be approve or reject");
        return;
    }
    std::string reason = payload->value("reason", "");
    reason = reason.substr(0, kMaxReasonBytes);
    const bool approved = decision == "approve";
    const std::int64_t now = clock();
    bool done = run_write<bool>(writer, [&](store::Database& db) {
        bool ok = decide_query(db, id, approved, jws, reason, now);
        if (ok) {
            append_audit(db, now, actor_of(*token), "query.decision", id,
                         json{{"decision", decision}, {"hash", q->hash}}.dump());
        }
        return ok;
    });
    if (!done) {
        problem(res, 409, "already-decided", "Already decided",
                std::string("the query is ") + query_status_name(q->status));
        return;
    }
    send_json(res, 200, {{"id", id}, {"status", approved ? "approved" : "rejected"}});
}

void CohortApi::State::post_result(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kDecryptor});
    if (!token) {
        return;
    }
    auto body = json_body(req, res);
    if (!body || !only_members(*body, {"envelope", "refused"}, res)) {
        return;
    }
    const bool released = body->contains("envelope");
    if (released == body->contains("refused") ||
        (released && !(*body)["envelope"].is_string()) ||
        (!released && !(*body)["refused"].is_string())) {
        problem(res, 400, "malformed-request", "Malformed request",
                "give exactly one of \"envelope\" (the sealed release) or \"refused\" (why)");
        return;
    }
    const std::string id = req.matches[1];
    auto q = visible_query(*token, id, false, res);
    if (!q) {
        return;
    }
    std::string result;
    std::string reason;
    if (released) {
        result = (*body)["envelope"];
        // Only the header is readable here; it must name this query.
        auto header = unsafe_envelope_header(result);
        json h = header ? json::parse(header.value(), nullptr, false) : json();
        if (!h.is_object() || h.value("query", "") != id) {
            problem(res, 422, "invalid-envelope", "Invalid result envelope",
                    "the envelope's header must name this query");
            return;
        }
    } else {
        reason = (*body)["refused"].get<std::string>().substr(0, kMaxReasonBytes);
    }
    const std::int64_t now = clock();
    bool done = run_write<bool>(writer, [&](store::Database& db) {
        auto before = find_query(db, id, false);
        bool ok = finish_query(db, id, released, result, reason, now);
        if (ok && before && before->status == QueryStatus::kApproved) {
            append_audit(db, now, actor_of(*token), released ? "query.release" : "query.refuse",
                         id,
                         released ? json{{"bytes", result.size()}}.dump()
                                  : json{{"reason", reason}}.dump());
        }
        return ok;
    });
    if (!done) {
        problem(res, 409, "not-approved", "Query not awaiting a result",
                std::string("the query is ") + query_status_name(q->status));
        return;
    }
    send_json(res, 200, {{"id", id}, {"status", released ? "released" : "refused"}});
}

void CohortApi::State::get_result(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kAnalyst});
    if (!token) {
        return;
    }
    auto q = visible_query(*token, req.matches[1], false, res);
    if (!q) {
        return;
    }
    json doc = query_summary(*q);
    if (q->status == QueryStatus::kReleased) {
        doc["envelope"] = q->result;
    }
    send_json(res, 200, doc);
}

CohortApi::CohortApi(const ServerConfig& config, Writer& writer, ReadFn read,
                     std::function<std::int64_t()> clock, RequireFn require,
                     ActiveKeyFn active_key)
    : state_(std::make_unique<State>(config, writer, std::move(read), std::move(clock),
                                     std::move(require), std::move(active_key))) {}

CohortApi::~CohortApi() = default;

void CohortApi::register_routes(httplib::Server& s) {
    State* st = state_.get();
    s.Get("/v1/cohorts", [st](const auto& req, auto& res) { st->get_cohorts(req, res); });
    s.Get(kCohortPath, [st](const auto& req, auto& res) { st->get_cohort(req, res); });
    s.Put(kCohortPath, [st](const auto& req, auto& res) { st->put_cohort(req, res); });
    s.Delete(kCohortPath, [st](const auto& req, auto& res) { st->delete_cohort(req, res); });
    s.Put(kAnalystKeyPath, [st](const auto& req, auto& res) { st->put_analyst_key(req, res); });
    s.Get("/v1/queries", [st](const auto& req, auto& res) { st->get_queries(req, res); });
    s.Post("/v1/queries", [st](const auto& req, auto& res) { st->post_query(req, res); });
    s.Get(kQueryPath, [st](const auto& req, auto& res) { st->get_query(req, res); });
    s.Get(std::string(kQueryPath) + "/windows",
          [st](const auto& req, auto& res) { st->get_query_windows(req, res); });
    s.Post(std::string(kQueryPath) + "/decision",
           [st](const auto& req, auto& res) { st->post_decision(req, res); });
    s.Post(std::string(kQueryPath) + "/result",
           [st](const auto& req, auto& res) { st->post_result(req, res); });
    s.Get(std::string(kQueryPath) + "/result",
          [st](const auto& req, auto& res) { st->get_result(req, res); });
}

}  // namespace cipherpulse::server
