#include "decryptor/query_releaser.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "cipherpulse/ed25519.h"
#include "cohort/noise.h"
#include "decryptor/queries.h"

namespace cipherpulse::decryptor {
namespace {

using json = nlohmann::json;

// kMaxApprovedPerRound bounds the queries decided in one round, so a long queue does not
// hold back the window feed; the rest wait for the next round.
constexpr int kMaxApprovedPerRound = 20;

}  // namespace

struct QueryReleaser::Impl {
    httplib::Client& client;
    std::string token;
    StateStore& store;
    const KeyRing& keys;
    CohortPolicy policy;
    OnIntegrity on_integrity;
    std::function<std::int64_t()> clock;
    std::optional<Ed25519PrivateKey> identity;
    bool identity_missing_logged = false;
    cohort::OpenSslSource source;

    httplib::Headers auth() const { return {{"Authorization", "Bearer " + token}}; }

    std::optional<json> get_json(const std::string& path) {
        auto res = client.Get(path, auth());
        if (!res) {
            spdlog::warn("queries: GET {} failed: {}", path, httplib::to_string(res.error()));
            return std::nullopt;
        }
        if (res->status != 200) {
            spdlog::warn("queries: GET {} answered {}", path, res->status);
            return std::nullopt;
        }
        json j = json::parse(res->body, nullptr, false);
        if (j.is_discarded()) {
            spdlog::warn("queries: GET {} did not answer JSON", path);
            return std::nullopt;
        }
        return j;
    }

    // load_identity loads the signing key once; without it nothing is released.
    bool load_identity() {
        if (identity) {
            return true;
        }
        if (!std::filesystem::exists(policy.identity_key)) {
            if (!identity_missing_logged) {
                spdlog::warn("queries: no identity key at {}: approved cohort queries wait "
                             "(set [cohort] identity_key)",
                             policy.identity_key);
                identity_missing_logged = true;
            }
            return false;
        }
        auto key = Ed25519PrivateKey::load(policy.identity_key);
        if (!key) {
            spdlog::error("queries: identity key unusable: {}", key.error().message);
            return false;
        }
        identity = std::move(key).value();
        return true;
    }

    // post sends a logged verdict; true when the server has it (200, or 409: it already
    // finished the query, e.g. our earlier post went through but its answer was lost).
    bool post(const QueryLogEntry& e) {
        const json body = e.status == "released" ? json{{"envelope", e.result}}
                                                 : json{{"refused", e.reason}};
        auto res = client.Post("/v1/queries/" + e.query_id + "/result", auth(), body.dump(),
                               "application/json");
        if (!res) {
            spdlog::warn("queries: posting the result of {} failed: {} (retried next round)",
                         e.query_id, httplib::to_string(res.error()));
            return false;
        }
        if (res->status != 200 && res->status != 409) {
            spdlog::warn("queries: the server answered {} to the result of {} (retried next round)",
                         res->status, e.query_id);
            return false;
        }
        mark_posted(store, e.query_id);
        return true;
    }

    std::optional<QueryMaterial> fetch(const std::string& id, json& doc_holder) {
        auto q = get_json("/v1/queries/" + id);
        auto w = q ? get_json("/v1/queries/" + id + "/windows") : std::nullopt;
        if (!q || !w || !q->is_object() || !w->is_object()) {
            return std::nullopt;
        }
        QueryMaterial m;
        m.id = id;
        m.server_hash = q->value("hash", "");
        m.decision = q->value("decision", "");
        m.aggregate = q->value("aggregate", "");
        if (q->contains("analyst_public_key_pem") && (*q)["analyst_public_key_pem"].is_string()) {
            m.analyst_public_key_pem = (*q)["analyst_public_key_pem"];
        }
        if (q->contains("document")) {
            doc_holder = std::move((*q)["document"]);
            m.document = &doc_holder;
        }
        if (w->contains("aggregates") && (*w)["aggregates"].is_array()) {
            for (const auto& a : (*w)["aggregates"]) {
                m.window_aggregates.push_back(a.is_string() ? std::optional(a.get<std::string>())
                                                            : std::nullopt);
            }
        }
        return m;
    }

    QueryRoundStats round() {
        QueryRoundStats stats;
        for (const auto& e : unposted(store)) {
            if (post(e)) {
                ++stats.posted;
            }
        }
        auto list = get_json("/v1/queries?status=approved&limit=" +
                             std::to_string(kMaxApprovedPerRound));
        if (!list || !list->contains("queries") || !(*list)["queries"].is_array()) {
            return stats;
        }
        for (const auto& item : (*list)["queries"]) {
            const std::string id = item.is_object() ? item.value("id", "") : "";
            if (id.empty() || query_log_entry(store, id)) {
                continue;
            }
            if (!load_identity()) {
                return stats;
            }
            json doc;
            auto m = fetch(id, doc);
            if (!m) {
                return stats;
            }
            Verdict v = decide(*m, keys, store, policy, *identity, source, clock());
            if (v.kind == Verdict::Kind::kDuplicate) {
                continue;
            }
            record_verdict(store, v.entry);
            switch (v.kind) {
                case Verdict::Kind::kRelease:
                    ++stats.released;
                    spdlog::info("queries: {} released to analyst {} (approved by {})", id,
                                 v.entry.analyst_label, v.entry.approver);
                    break;
                case Verdict::Kind::kIntegrityFailure:
                    ++stats.integrity;
                    spdlog::error("INTEGRITY: cohort query {}: {}", id, v.reason);
                    on_integrity(id, v.reason);
                    break;
                default:
                    ++stats.refused;
                    spdlog::warn("queries: {} refused: {}", id, v.reason);
                    break;
            }
            if (post(v.entry)) {
                ++stats.posted;
            }
        }
        return stats;
    }
};

QueryReleaser::QueryReleaser(httplib::Client& client, std::string token, StateStore& store,
                             const KeyRing& keys, CohortPolicy policy, OnIntegrity on_integrity,
                             std::function<std::int64_t()> clock)
    : impl_(new Impl{client, std::move(token), store, keys, std::move(policy),
                     std::move(on_integrity), std::move(clock), std::nullopt, false, {}}) {}

QueryReleaser::~QueryReleaser() = default;

QueryRoundStats QueryReleaser::round() {
    return impl_->round();
}

}  // namespace cipherpulse::decryptor
