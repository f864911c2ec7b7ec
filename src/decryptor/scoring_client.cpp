#include "decryptor/scoring_client.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>
#include <thread>

#include "cipherpulse/keyfile.h"
#include "scoring/packing.h"

namespace cipherpulse::decryptor {
namespace {

using nlohmann::json;

ScoreError failure(int code, std::string message) {
    return ScoreError{code, std::move(message)};
}

// parallel runs fn(i) for i in [0, n) on every core.
template <class Fn>
void parallel(std::size_t n, Fn fn) {
    const std::size_t threads =
        std::min<std::size_t>(std::max(1u, std::thread::hardware_concurrency()), (n + 3) / 4);
    if (threads <= 1) {
        for (std::size_t i = 0; i < n; ++i) {
            fn(i);
        }
        return;
    }
    std::vector<std::thread> workers;
    for (std::size_t t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            for (std::size_t i = t; i < n; i += threads) {
                fn(i);
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }
}

}  // namespace

ScoringClient::ScoringClient(httplib::Client& http, std::string token, const PrivateKey& key,
                             std::size_t warm_pool)
    : http_(http), token_(std::move(token)), key_(key), key_json_(key.public_key().to_json()) {
    if (warm_pool > 0) {
        pool_ = std::make_unique<RandomnessPool>(
            key.public_key(), RandomnessPool::Options{warm_pool, EncryptionMode::kFast});
    }
    http_.set_keep_alive(true);
}

ScoringClient::~ScoringClient() = default;

bool ScoringClient::wait_until_warm(std::chrono::milliseconds timeout) {
    return !pool_ || pool_->wait_until_full(timeout);
}

ScoreResult<json> ScoringClient::post(const std::string& path, const std::string& body) {
    auto res = http_.Post(path, {{"Authorization", "Bearer " + token_}}, body, "application/json");
    if (!res) {
        return {std::nullopt, failure(1, "cannot reach the server: " + httplib::to_string(res.error()))};
    }
    auto doc = json::parse(res->body, nullptr, false);
    if (res->status != 200) {
        std::string detail = doc.is_object() ? doc.value("detail", doc.value("title", "")) : "";
        return {std::nullopt, failure(res->status >= 500 ? 1 : (res->status == 422 ? 2 : 1),
                                      "the server answered " + std::to_string(res->status) +
                                          (detail.empty() ? "" : ": " + detail))};
    }
    if (!doc.is_object()) {
        return {std::nullopt, failure(4, "the server's answer is not JSON")};
    }
    return {doc, {}};
}

ScoreResult<scoring::PublicSpec> ScoringClient::fetch_spec(const std::string& model_id) {
    auto res = http_.Get("/v1/models/" + model_id, {{"Authorization", "Bearer " + token_}});
    if (!res) {
        return {std::nullopt, failure(1, "cannot reach the server: " + httplib::to_string(res.error()))};
    }
    if (res->status == 404) {
        return {std::nullopt, failure(2, "the server has no model '" + model_id + "'")};
    }
    if (res->status != 200) {
        auto doc = json::parse(res->body, nullptr, false);
        std::string detail = doc.is_object() ? doc.value("detail", doc.value("title", "")) : "";
        return {std::nullopt, failure(1, "the server answered " + std::to_string(res->status) +
                                             (detail.empty() ? "" : ": " + detail))};
    }
    auto spec = scoring::parse_public_spec(res->body);
    if (!spec) {
        return {std::nullopt, failure(4, "the model spec does not parse: " + spec.error().message)};
    }
    if (spec.value().model.id != model_id) {
        return {std::nullopt, failure(4, "the server sent the spec of another model")};
    }
    return {std::move(spec).value(), {}};
}

std::vector<Ciphertext> ScoringClient::encrypt_all(const std::vector<BigInt>& plaintexts) {
    const PublicKey& pk = key_.public_key();
    std::vector<std::optional<Ciphertext>> out(plaintexts.size());
    if (pool_) {
        for (std::size_t i = 0; i < plaintexts.size(); ++i) {
            out[i] = pk.encrypt_with_randomizer(plaintexts[i], pool_->take());
        }
    } else {
        parallel(plaintexts.size(), [&](std::size_t i) { out[i] = pk.encrypt(plaintexts[i]); });
    }
    std::vector<Ciphertext> cts;
    cts.reserve(out.size());
    for (auto& c : out) {
        cts.push_back(std::move(*c));
    }
    return cts;
}

std::vector<BigInt> ScoringClient::decrypt_all(const std::vector<Ciphertext>& ciphertexts) {
    std::vector<BigInt> out(ciphertexts.size());
    if (ciphertexts.size() <= 2) {
        for (std::size_t i = 0; i < ciphertexts.size(); ++i) {
            out[i] = key_.decrypt(ciphertexts[i]);
        }
    } else {
        parallel(ciphertexts.size(), [&](std::size_t i) { out[i] = key_.decrypt(ciphertexts[i]); });
    }
    return out;
}

ScoreResult<std::vector<std::int64_t>> ScoringClient::score(
    const scoring::PublicSpec& spec, const std::vector<std::vector<std::int64_t>>& rows,
    bool packed, std::size_t batch_rows) {
    const PublicKey& pk = key_.public_key();
    const std::size_t d = spec.model.inputs.size();
    std::optional<scoring::PackedLayout> layout;
    if (packed) {
        std::vector<std::int64_t> lo, hi;
        for (const auto& in : spec.model.inputs) {
            lo.push_back(in.lo);
            hi.push_back(in.hi);
        }
        auto l = scoring::packed_layout(spec.score_min, spec.score_max, lo, hi, pk.modulus_bits());
        if (!l) {
            return {std::nullopt, failure(2, "this model cannot be packed: " + l.error().message)};
        }
        layout = l.value();
    }
    const json key_doc = json::parse(key_json_);
    const BigInt score_bound(static_cast<long>(
        std::max(std::llabs(spec.score_min), std::llabs(spec.score_max))));
    const std::string path = "/v1/models/" + spec.model.id + "/score";
    std::vector<std::int64_t> scores;
    scores.reserve(rows.size());
    const std::size_t group = packed ? layout->slots : 1;
    const std::size_t per_request = std::max(group, batch_rows / group * group);
    for (std::size_t start = 0; start < rows.size(); start += per_request) {
        const std::size_t end = std::min(rows.size(), start + per_request);
        // Plaintexts: one per input per row, or one per input per group of patients.
        std::vector<BigInt> plaintexts;
        std::vector<std::size_t> counts;
        for (std::size_t g = start; g < end; g += group) {
            const std::size_t count = std::min(group, end - g);
            counts.push_back(count);
            for (std::size_t i = 0; i < d; ++i) {
                if (packed) {
                    std::vector<std::int64_t> column;
                    for (std::size_t j = g; j < g + count; ++j) {
                        column.push_back(rows[j][i]);
                    }
                    auto p = scoring::pack_input(*layout, i, column);
                    if (!p) {
                        return {std::nullopt, failure(2, "input '" + spec.model.inputs[i].name +
                                                             "': " + p.error().message)};
                    }
                    plaintexts.push_back(std::move(p).value());
                } else {
                    plaintexts.emplace_back(static_cast<long>(rows[g][i]));
                }
            }
        }
        const std::vector<Ciphertext> cts = encrypt_all(plaintexts);
        json body = {{"key", key_doc}};
        json groups = json::array();
        for (std::size_t g = 0; g < counts.size(); ++g) {
            json inputs = json::array();
            for (std::size_t i = 0; i < d; ++i) {
                inputs.push_back(pk.serialize_base64url(cts[g * d + i]));
            }
            if (packed) {
                groups.push_back({{"count", counts[g]}, {"inputs", std::move(inputs)}});
            } else {
                groups.push_back(std::move(inputs));
            }
        }
        if (packed) {
            body["packed"] = {{"slot_bits", layout->slot_bits}, {"groups", std::move(groups)}};
        } else {
            body["rows"] = std::move(groups);
        }
        auto answer = post(path, body.dump());
        if (!answer.ok()) {
            return {std::nullopt, answer.error};
        }
        const json& doc = *answer.value;
        const json* results = nullptr;
        if (packed && doc.contains("packed") && doc["packed"].is_object() &&
            doc["packed"].contains("groups") && doc["packed"]["groups"].is_array()) {
            results = &doc["packed"]["groups"];
        } else if (!packed && doc.contains("scores") && doc["scores"].is_array()) {
            results = &doc["scores"];
        }
        if (results == nullptr || results->size() != counts.size() ||
            doc.value("kid", "") != pk.kid()) {
            return {std::nullopt, failure(4, "the server's answer does not match the request")};
        }
        std::vector<Ciphertext> answers;
        for (std::size_t g = 0; g < counts.size(); ++g) {
            const json& r = (*results)[g];
            const json& text = packed ? r.value("score", json()) : r;
            if (!text.is_string() || (packed && r.value("count", std::size_t{0}) != counts[g])) {
                return {std::nullopt, failure(4, "the server's answer does not match the request")};
            }
            auto c = pk.parse_ciphertext_base64url(text.get<std::string>());
            if (!c) {
                return {std::nullopt,
                        failure(4, "the server returned an invalid ciphertext: " + c.error().message)};
            }
            answers.push_back(std::move(c).value());
        }
        // A packed result fills the plaintext; a single score is far below p, so half the CRT
        // decryption reads it (out of range there means: not a score).
        const std::vector<BigInt> plain = packed ? decrypt_all(answers) : std::vector<BigInt>{};
        for (std::size_t g = 0; g < counts.size(); ++g) {
            if (packed) {
                auto z = scoring::unpack_scores(*layout, plain[g], counts[g]);
                if (!z) {
                    return {std::nullopt, failure(4, "the server's answer is not a score of this "
                                                     "model: " + z.error().message)};
                }
                scores.insert(scores.end(), z.value().begin(), z.value().end());
            } else {
                const auto v = key_.decrypt_small_signed(answers[g], score_bound);
                const bool in_range = v && mpz_get_si(v->get()) >= spec.score_min &&
                                      mpz_get_si(v->get()) <= spec.score_max;
                if (!in_range) {
                    return {std::nullopt, failure(4, "the server's answer for row " +
                                                         std::to_string(start + g + 1) +
                                                         " is outside the model's score range: "
                                                         "not a score of this model")};
                }
                scores.push_back(mpz_get_si(v->get()));
            }
        }
    }
    return {std::move(scores), {}};
}

Result<PrivateKey> load_or_create_scoring_key(const std::string& path, std::size_t bits,
                                              std::ostream& err) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
        return load_private_key(path);
    }
    const auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
        std::filesystem::create_directories(dir, ec);
        std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
    }
    err << "cipherpulse-decryptor: no scoring key at " << path << ": generating a " << bits
        << "-bit Paillier key (once; a few seconds)\n";
    PrivateKey key = PrivateKey::generate(bits);
    if (auto s = save_private_key(path, key, false); !s) {
        return s.error();
    }
    return load_private_key(path);
}

}  // namespace cipherpulse::decryptor
