// The server's stored risk models, registered scoring keys and scoring budget (schema v4).
// Every function runs on the caller's connection, inside the caller's transaction if any.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/sqlite.h"

namespace cipherpulse::server {

struct StoredModel {
    std::string id;
    std::string document;  // the owner's model file, weights included
    std::int64_t created_ms = 0;
};

enum class ModelAdd { kCreated, kSame, kReplaced, kConflict };

// store_model inserts a validated model document under `id`. The same document again is
// kSame; another document under an existing id is kConflict unless `replace`.
ModelAdd store_model(store::Database& db, const std::string& id, const std::string& document,
                     std::int64_t now_ms, bool replace);
std::optional<StoredModel> find_model(store::Database& db, const std::string& id);
// model_created_ms is find_model without the document (for cache checks).
std::optional<std::int64_t> model_created_ms(store::Database& db, const std::string& id);
std::vector<StoredModel> list_models(store::Database& db);
// remove_model deletes a model; false when there is none.
bool remove_model(store::Database& db, const std::string& id);

// store_scoring_key registers a requester's Paillier public key (idempotent by kid).
void store_scoring_key(store::Database& db, const std::string& kid, const std::string& document,
                       std::int64_t token_id, std::int64_t now_ms);
std::optional<std::string> find_scoring_key(store::Database& db, const std::string& kid);

// charge_scoring_budget adds `rows` to the token's count for the UTC day of `now_ms` if the
// total stays within `rows_per_day`; returns the rows left after the charge, or nullopt
// (nothing charged) when it would exceed the budget. `left_before` receives the rows left.
std::optional<std::int64_t> charge_scoring_budget(store::Database& db, std::int64_t token_id,
                                                  std::int64_t rows, std::int64_t rows_per_day,
                                                  std::int64_t now_ms, std::int64_t& left_before);

}  // namespace cipherpulse::server
