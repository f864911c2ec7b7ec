#include "server/scoring_api.h"

#include <spdlog/spdlog.h>

#include <list>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "cipherpulse/paillier.h"
#include "cipherpulse/randomness_pool.h"
#include "scoring/model.h"
#include "scoring/packing.h"
#include "scoring/scorer.h"
#include "server/audit.h"
#include "server/http_util.h"
#include "server/model_store.h"
#include "server/writer.h"

namespace cipherpulse::server {

using json = nlohmann::json;

namespace {

constexpr const char* kModelPath = R"(/v1/models/([A-Za-z0-9._-]{1,64}))";
constexpr const char* kScorePath = R"(/v1/models/([A-Za-z0-9._-]{1,64})/score)";

// A requester's key with its own pool of rerandomisers, kept while it is in use.
struct KeyEntry {
    explicit KeyEntry(const PublicKey& k, std::size_t pool_size)
        : key(k),
          // A 6-bit fixed-base table: 12 MB instead of 50 MB at 3072 bits, for a pool that
          // is refilled in the background anyway.
          pool(k.with_fast_table_window(6),
               RandomnessPool::Options{pool_size, EncryptionMode::kFast}) {}
    PublicKey key;
    RandomnessPool pool;
};

// KeyCache keeps the most recently used keys (LRU) by their JSON document, each parsed and
// validated once and with a warm randomness pool.
class KeyCache {
  public:
    KeyCache(std::size_t capacity, std::size_t pool_size)
        : capacity_(capacity), pool_size_(pool_size) {}
    // get returns the entry for `document`, parsing it (kProduction policy) on a miss.
    Result<std::shared_ptr<KeyEntry>> get(const std::string& document) {
        {
            std::lock_guard lock(mutex_);
            auto it = entries_.find(document);
            if (it != entries_.end()) {
                order_.splice(order_.begin(), order_, it->second.second);
                return it->second.first;
            }
        }
        // Parsing checks n (size, small factors, kid): done outside the lock.
        auto key = PublicKey::from_json(document, KeyPolicy::kProduction);
        if (!key) {
            return key.error();
        }
        auto entry = std::make_shared<KeyEntry>(key.value(), pool_size_);
        std::lock_guard lock(mutex_);
        auto it = entries_.find(document);
        if (it != entries_.end()) {
            return it->second.first;
        }
        order_.push_front(document);
        entries_.emplace(document, std::make_pair(entry, order_.begin()));
        while (entries_.size() > capacity_) {
            entries_.erase(order_.back());
            order_.pop_back();
        }
        return entry;
    }

  private:
    std::size_t capacity_;
    std::size_t pool_size_;
    std::mutex mutex_;
    std::list<std::string> order_;
    std::map<std::string, std::pair<std::shared_ptr<KeyEntry>, std::list<std::string>::iterator>>
        entries_;
};

// ScoringProblem is a refusal with its HTTP status and problem type.
struct ScoringProblem {
    int status;
    std::string type;
    std::string title;
    std::string detail;
};

void answer(httplib::Response& res, const ScoringProblem& p) {
    problem(res, p.status, p.type, p.title, p.detail);
}

json model_summary(const scoring::Model& m, std::int64_t created_ms) {
    return {{"id", m.id},
            {"description", m.description},
            {"label", m.label},
            {"inputs", m.inputs.size()},
            {"created_ms", created_ms}};
}

}  // namespace

struct ScoringApi::State {
    State(const ServerConfig& c, Writer& w, ReadFn r, std::function<std::int64_t()> k,
          RequireFn q)
        : config(c), writer(w), read(std::move(r)), clock(std::move(k)), require(std::move(q)) {}
    const ServerConfig& config;
    Writer& writer;
    ReadFn read;
    std::function<std::int64_t()> clock;
    RequireFn require;
    KeyCache keys{config.scoring_key_cache, config.scoring_pool_size};
    // Parsed models by id, checked against the stored created_ms on every use so a model
    // replaced or removed with the command line is never served stale.
    std::mutex models_mutex;
    std::map<std::string, std::pair<std::int64_t, std::shared_ptr<const scoring::Model>>> models;

    std::shared_ptr<const scoring::Model> model(const std::string& id,
                                                std::int64_t* created = nullptr);
    void get_models(const httplib::Request& req, httplib::Response& res);
    void get_model(const httplib::Request& req, httplib::Response& res);
    void post_model(const httplib::Request& req, httplib::Response& res);
    void delete_model(const httplib::Request& req, httplib::Response& res);
    void post_scoring_key(const httplib::Request& req, httplib::Response& res);
    void post_score(const httplib::Request& req, httplib::Response& res);
    std::shared_ptr<KeyEntry> requester_key(const json& body, ScoringProblem& refusal);
    static std::string serialize_fresh(KeyEntry& entry, const Ciphertext& c);
};

std::shared_ptr<const scoring::Model> ScoringApi::State::model(const std::string& id,
                                                               std::int64_t* created) {
    std::optional<std::int64_t> stamp;
    read([&](store::Database& db) { stamp = model_created_ms(db, id); });
    if (!stamp) {
        std::lock_guard lock(models_mutex);
        models.erase(id);
        return nullptr;
    }
    if (created != nullptr) {
        *created = *stamp;
    }
    {
        std::lock_guard lock(models_mutex);
        auto it = models.find(id);
        if (it != models.end() && it->second.first == *stamp) {
            return it->second.second;
        }
    }
    std::optional<StoredModel> stored;
    read([&](store::Database& db) { stored = find_model(db, id); });
    if (!stored) {
        return nullptr;
    }
    auto parsed = scoring::parse_model(stored->document);
    if (!parsed) {
        spdlog::error("stored model {} no longer parses: {}", id, parsed.error().message);
        return nullptr;
    }
    auto shared = std::make_shared<const scoring::Model>(std::move(parsed).value());
    std::lock_guard lock(models_mutex);
    models[id] = {stored->created_ms, shared};
    return shared;
}

void ScoringApi::State::get_models(const httplib::Request& req, httplib::Response& res) {
    if (!require(req, res, {Role::kAdmin, Role::kClinician, Role::kDecryptor, Role::kAnalyst})) {
        return;
    }
    std::vector<StoredModel> stored;
    read([&](store::Database& db) { stored = list_models(db); });
    json list = json::array();
    for (const auto& s : stored) {
        auto m = scoring::parse_model(s.document);
        if (m) {
            list.push_back(model_summary(m.value(), s.created_ms));
        }
    }
    send_json(res, 200, {{"models", list}});
}

void ScoringApi::State::get_model(const httplib::Request& req, httplib::Response& res) {
    if (!require(req, res, {Role::kAdmin, Role::kClinician, Role::kDecryptor, Role::kAnalyst})) {
        return;
    }
    std::int64_t created = 0;
    auto m = model(req.matches[1], &created);
    if (!m) {
        problem(res, 404, "unknown-model", "Unknown model", "no model '" +
                                                                std::string(req.matches[1]) + "'");
        return;
    }
    json spec = json::parse(scoring::public_spec_json(*m));
    spec["created_ms"] = created;
    send_json(res, 200, spec);
}

void ScoringApi::State::post_model(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kAdmin});
    if (!token) {
        return;
    }
    auto body = json_body(req, res);
    if (!body) {
        return;
    }
    auto parsed = scoring::parse_model(req.body);
    if (!parsed) {
        problem(res, 422, "invalid-model", "Invalid model file", parsed.error().message);
        return;
    }
    const scoring::Model& m = parsed.value();
    // Stored in the canonical form, so the same model posted twice is recognised.
    const std::string document = scoring::model_to_json(m);
    const bool replace = req.has_param("replace") && req.get_param_value("replace") == "true";
    const std::int64_t now = clock();
    const std::string actor = "token:" + std::to_string(token->id);
    ModelAdd outcome = run_write<ModelAdd>(writer, [&](store::Database& db) {
        ModelAdd r = store_model(db, m.id, document, now, replace);
        if (r == ModelAdd::kCreated || r == ModelAdd::kReplaced) {
            append_audit(db, now, actor, r == ModelAdd::kCreated ? "model.add" : "model.replace",
                         m.id, json{{"inputs", m.inputs.size()}}.dump());
        }
        return r;
    });
    if (outcome == ModelAdd::kConflict) {
        problem(res, 409, "model-conflict", "Another model has this id",
                "remove it first, or post with ?replace=true");
        return;
    }
    send_json(res, outcome == ModelAdd::kSame ? 200 : 201,
              {{"id", m.id}, {"replaced", outcome == ModelAdd::kReplaced}});
}

void ScoringApi::State::delete_model(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kAdmin});
    if (!token) {
        return;
    }
    const std::string id = req.matches[1];
    const std::int64_t now = clock();
    const std::string actor = "token:" + std::to_string(token->id);
    bool removed = run_write<bool>(writer, [&](store::Database& db) {
        bool r = remove_model(db, id);
        if (r) {
            append_audit(db, now, actor, "model.remove", id, "{}");
        }
        return r;
    });
    if (!removed) {
        problem(res, 404, "unknown-model", "Unknown model", "no model '" + id + "'");
        return;
    }
    res.status = 204;
}

std::shared_ptr<KeyEntry> ScoringApi::State::requester_key(const json& body,
                                                           ScoringProblem& refusal) {
    const bool inline_key = body.contains("key");
    const bool by_kid = body.contains("kid");
    if (inline_key == by_kid) {
        refusal = {400, "malformed-request", "Malformed request",
                   "give exactly one of \"key\" (a Paillier public key JWK) or \"kid\" (a "
                   "registered key)"};
        return nullptr;
    }
    std::string document;
    if (inline_key) {
        if (!body["key"].is_object()) {
            refusal = {400, "malformed-request", "Malformed request",
                       "\"key\" must be a Paillier public key object"};
            return nullptr;
        }
        document = body["key"].dump();
    } else {
        if (!body["kid"].is_string() || body["kid"].get<std::string>().size() > 128) {
            refusal = {400, "malformed-request", "Malformed request", "\"kid\" must be a string"};
            return nullptr;
        }
        std::optional<std::string> stored;
        read([&](store::Database& db) { stored = find_scoring_key(db, body["kid"]); });
        if (!stored) {
            refusal = {404, "unknown-key", "Unknown scoring key",
                       "register the key with POST /v1/scoring-keys first"};
            return nullptr;
        }
        document = *stored;
    }
    // kProduction: n of at least 2048 bits, no small factors, a kid that matches n.
    auto entry = keys.get(document);
    if (!entry) {
        refusal = {422, "invalid-key", "Invalid Paillier public key", entry.error().message};
        return nullptr;
    }
    return entry.value();
}

std::string ScoringApi::State::serialize_fresh(KeyEntry& entry, const Ciphertext& c) {
    const PublicKey& key = entry.key;
    // A fresh encryption of 0 from the pool: the result's randomness is then independent of
    // the requester's, so nothing but the plaintext (the logit) can be read from it.
    const Ciphertext zero = key.encrypt_with_randomizer(BigInt(0), entry.pool.take());
    return key.serialize_base64url(key.add(c, zero));
}

void ScoringApi::State::post_scoring_key(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kClinician, Role::kDecryptor});
    if (!token) {
        return;
    }
    auto body = json_body(req, res);
    if (!body) {
        return;
    }
    for (auto it = body->begin(); it != body->end(); ++it) {
        if (it.key() != "key") {
            problem(res, 400, "unknown-field", "Unknown field",
                    "unknown field '" + it.key().substr(0, 64) + "'");
            return;
        }
    }
    ScoringProblem refusal;
    if (!body->contains("key")) {
        problem(res, 400, "malformed-request", "Malformed request",
                "expected {\"key\": <Paillier public key>}");
        return;
    }
    auto entry = requester_key(*body, refusal);
    if (!entry) {
        answer(res, refusal);
        return;
    }
    const PublicKey* key = &entry->key;
    const std::int64_t now = clock();
    const std::string kid = key->kid();
    const std::string document = key->to_json();
    run_write<int>(writer, [&](store::Database& db) {
        if (!find_scoring_key(db, kid)) {
            store_scoring_key(db, kid, document, token->id, now);
            append_audit(db, now, "token:" + std::to_string(token->id), "scoring-key.register",
                         kid, json{{"bits", key->modulus_bits()}}.dump());
        }
        return 0;
    });
    // Under its stored form too, so that requests by kid find a warm pool.
    [[maybe_unused]] auto warm = keys.get(document);
    send_json(res, 201, {{"kid", kid}, {"bits", key->modulus_bits()}});
}

void ScoringApi::State::post_score(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kClinician, Role::kDecryptor});
    if (!token) {
        return;
    }
    const std::string model_id = req.matches[1];
    auto body = json_body(req, res);
    if (!body) {
        return;
    }
    static const std::set<std::string> kFields = {"key", "kid", "rows", "packed"};
    for (auto it = body->begin(); it != body->end(); ++it) {
        if (kFields.count(it.key()) == 0) {
            problem(res, 400, "unknown-field", "Unknown field",
                    "unknown field '" + it.key().substr(0, 64) + "'");
            return;
        }
    }
    if (body->contains("rows") == body->contains("packed")) {
        problem(res, 400, "malformed-request", "Malformed request",
                "give exactly one of \"rows\" or \"packed\"");
        return;
    }
    auto m = model(model_id);
    if (!m) {
        problem(res, 404, "unknown-model", "Unknown model", "no model '" + model_id + "'");
        return;
    }
    ScoringProblem refusal;
    auto entry = requester_key(*body, refusal);
    if (!entry) {
        answer(res, refusal);
        return;
    }
    const PublicKey* key = &entry->key;
    const std::size_t d = m->inputs.size();
    const bool packed = body->contains("packed");
    // Collect every ciphertext text with its place, then validate them in one batch.
    std::vector<std::string_view> texts;
    std::vector<std::size_t> counts;  // patients per group (1 per row unpacked)
    std::optional<scoring::PackedLayout> layout;
    auto malformed = [&](const std::string& detail) {
        problem(res, 400, "malformed-request", "Malformed request", detail);
    };
    const json* groups = nullptr;
    if (!packed) {
        groups = &(*body)["rows"];
        if (!groups->is_array() || groups->empty()) {
            malformed("\"rows\" must be a non-empty array of arrays of ciphertexts");
            return;
        }
    } else {
        const json& p = (*body)["packed"];
        if (!p.is_object() || !p.contains("slot_bits") || !p["slot_bits"].is_number_unsigned() ||
            !p.contains("groups") || !p["groups"].is_array() || p["groups"].empty() ||
            p.size() != 2) {
            malformed("\"packed\" must be {\"slot_bits\": N, \"groups\": [{\"count\": C, "
                      "\"inputs\": [...]}, ...]}");
            return;
        }
        auto l = scoring::packed_layout(*m, key->modulus_bits());
        if (!l) {
            problem(res, 422, "packing-unsupported", "This model cannot be packed for this key",
                    l.error().message);
            return;
        }
        if (p["slot_bits"].get<std::uint64_t>() != l.value().slot_bits) {
            problem(res, 422, "layout-mismatch", "Packed layout does not match the model",
                    "model '" + model_id + "' packs " + std::to_string(l.value().slot_bits) +
                        "-bit slots, " + std::to_string(l.value().slots) +
                        " patients per ciphertext for this key");
            return;
        }
        layout = l.value();
        groups = &p["groups"];
    }
    std::size_t rows = 0;
    for (std::size_t g = 0; g < groups->size(); ++g) {
        const json& group = (*groups)[g];
        const json* inputs = &group;
        std::size_t count = 1;
        if (packed) {
            if (!group.is_object() || group.size() != 2 || !group.contains("count") ||
                !group["count"].is_number_unsigned() || !group.contains("inputs")) {
                malformed("packed group " + std::to_string(g) +
                          ": expected {\"count\": C, \"inputs\": [...]}");
                return;
            }
            count = group["count"].get<std::size_t>();
            if (count == 0 || count > layout->slots) {
                problem(res, 422, "layout-mismatch", "Packed layout does not match the model",
                        "group " + std::to_string(g) + ": count must be 1.." +
                            std::to_string(layout->slots));
                return;
            }
            inputs = &group["inputs"];
        }
        if (!inputs->is_array()) {
            malformed((packed ? "group " : "row ") + std::to_string(g) +
                      ": an array of ciphertexts expected");
            return;
        }
        if (inputs->size() != d) {
            problem(res, 422, "wrong-feature-count", "Wrong number of features",
                    (packed ? "group " : "row ") + std::to_string(g) + " has " +
                        std::to_string(inputs->size()) + " values; model '" + model_id +
                        "' takes " + std::to_string(d));
            return;
        }
        for (const auto& ct : *inputs) {
            if (!ct.is_string()) {
                malformed((packed ? "group " : "row ") + std::to_string(g) +
                          ": ciphertexts are base64url strings");
                return;
            }
            texts.push_back(ct.get_ref<const std::string&>());
        }
        counts.push_back(count);
        rows += count;
        if (rows > config.scoring_max_rows_per_request) {
            problem(res, 413, "too-many-rows", "Too many rows in one request",
                    "at most " + std::to_string(config.scoring_max_rows_per_request) +
                        " rows per request");
            return;
        }
    }
    auto parsed = key->parse_ciphertexts_base64url(texts);
    for (std::size_t i = 0; i < parsed.size(); ++i) {
        if (!parsed[i]) {
            problem(res, 422, "invalid-ciphertext", "Invalid ciphertext",
                    std::string(packed ? "group " : "row ") + std::to_string(i / d) +
                        ", input '" + m->inputs[i % d].name + "': " + parsed[i].error().message);
            return;
        }
    }
    // The budget and the audit entry are committed before any result is computed.
    const std::int64_t now = clock();
    std::int64_t left_before = 0;
    const std::string actor = "token:" + std::to_string(token->id);
    const std::int64_t limit = config.scoring_rows_per_day;
    auto left = run_write<std::optional<std::int64_t>>(writer, [&](store::Database& db) {
        auto r = charge_scoring_budget(db, token->id, static_cast<std::int64_t>(rows), limit, now,
                                       left_before);
        append_audit(db, now, actor, r ? "model.score" : "model.score-refused", model_id,
                     json{{"rows", rows},
                          {"packed", packed},
                          {"kid", key->kid()},
                          {"budget_left", r ? *r : left_before}}
                         .dump());
        return r;
    });
    if (!left) {
        res.set_header("Retry-After", std::to_string(86400 - (now / 1000) % 86400));
        problem(res, 429, "budget-exceeded", "Scoring budget exceeded",
                std::to_string(rows) + " rows asked, " + std::to_string(left_before) +
                    " left today (" + std::to_string(limit) + " rows per token and UTC day)");
        return;
    }
    std::vector<Ciphertext> cts;
    cts.reserve(parsed.size());
    for (auto& p : parsed) {
        cts.push_back(std::move(p).value());
    }
    json out = {{"model", model_id}, {"kid", key->kid()}, {"budget_left", *left}};
    json results = json::array();
    for (std::size_t g = 0; g < counts.size(); ++g) {
        std::span<const Ciphertext> inputs(cts.data() + g * d, d);
        if (packed) {
            const Ciphertext z = scoring::score_packed(*key, *m, *layout, inputs, counts[g]);
            results.push_back({{"count", counts[g]}, {"score", serialize_fresh(*entry, z)}});
        } else {
            results.push_back(serialize_fresh(*entry, scoring::score_vector(*key, *m, inputs)));
        }
    }
    if (packed) {
        out["packed"] = {{"slot_bits", layout->slot_bits},
                         {"slots", layout->slots},
                         {"offset", layout->offset},
                         {"groups", results}};
    } else {
        out["scores"] = results;
    }
    send_json(res, 200, out);
}

ScoringApi::ScoringApi(const ServerConfig& config, Writer& writer, ReadFn read,
                       std::function<std::int64_t()> clock, RequireFn require)
    : state_(std::make_unique<State>(config, writer, std::move(read), std::move(clock),
                                     std::move(require))) {}

ScoringApi::~ScoringApi() = default;

void ScoringApi::register_routes(httplib::Server& s) {
    State* st = state_.get();
    s.Get("/v1/models", [st](const auto& req, auto& res) { st->get_models(req, res); });
    s.Post("/v1/models", [st](const auto& req, auto& res) { st->post_model(req, res); });
    s.Get(kModelPath, [st](const auto& req, auto& res) { st->get_model(req, res); });
    s.Delete(kModelPath, [st](const auto& req, auto& res) { st->delete_model(req, res); });
    s.Post(kScorePath, [st](const auto& req, auto& res) { st->post_score(req, res); });
    s.Post("/v1/scoring-keys",
           [st](const auto& req, auto& res) { st->post_scoring_key(req, res); });
}

}  // namespace cipherpulse::server
