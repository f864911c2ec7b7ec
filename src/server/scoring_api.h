// The server as model provider: /v1/models (publish feature specs, manage models) and
// /v1/models/{id}/score (score encrypted feature vectors under the requester's key).
//
// What the server learns: which token scored how many rows with which model and key, when;
// never a feature or a score (every result is rerandomised before it is sent).
#pragma once

#include <httplib.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>

#include "server/auth.h"
#include "server/config.h"
#include "store/sqlite.h"

namespace cipherpulse::server {

class Writer;

class ScoringApi {
  public:
    // RequireFn authenticates a request and checks its role, answering 401/403 itself.
    using RequireFn = std::function<std::optional<TokenInfo>(
        const httplib::Request&, httplib::Response&, std::initializer_list<Role>)>;
    // ReadFn runs a function on a read-only connection.
    using ReadFn = std::function<void(const std::function<void(store::Database&)>&)>;

    ScoringApi(const ServerConfig& config, Writer& writer, ReadFn read,
               std::function<std::int64_t()> clock, RequireFn require);
    ScoringApi(const ScoringApi&) = delete;
    ScoringApi& operator=(const ScoringApi&) = delete;
    ~ScoringApi();

    // register_routes adds GET/POST /v1/models, GET/DELETE /v1/models/{id},
    // POST /v1/models/{id}/score and POST /v1/scoring-keys.
    void register_routes(httplib::Server& server);

  private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace cipherpulse::server
