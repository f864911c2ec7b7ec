// The server's side of cohort statistics: cohorts (/v1/cohorts), analysts' result keys
// (/v1/analysts/{token}/key) and queries (/v1/queries): validated, tiled with the coarsest
// sealed windows, multiplied into one encrypted aggregate, stored pending, then carried
// through the approver's signed decision to the decryptor's sealed result.
//
// What the server learns: cohort membership, who asked for which statistics over which
// range, how many records each patient contributed, the decision and whether a result was
// released. Never a figure: the aggregate is encrypted under the decryptor's Paillier key
// and the release under the analyst's X25519 key.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "cipherpulse/paillier.h"
#include "server/auth.h"
#include "server/config.h"
#include "store/sqlite.h"

namespace cipherpulse::server {

class Writer;

class CohortApi {
  public:
    using RequireFn = std::function<std::optional<TokenInfo>(
        const httplib::Request&, httplib::Response&, std::initializer_list<Role>)>;
    using ReadFn = std::function<void(const std::function<void(store::Database&)>&)>;
    // ActiveKeyFn returns the active Paillier key (kid and key), if any.
    using ActiveKeyFn = std::function<std::optional<std::pair<std::string, PublicKey>>()>;

    CohortApi(const ServerConfig& config, Writer& writer, ReadFn read,
              std::function<std::int64_t()> clock, RequireFn require, ActiveKeyFn active_key);
    CohortApi(const CohortApi&) = delete;
    CohortApi& operator=(const CohortApi&) = delete;
    ~CohortApi();

    // register_routes adds GET /v1/cohorts, GET/PUT/DELETE /v1/cohorts/{name},
    // PUT /v1/analysts/{token}/key, GET/POST /v1/queries, GET /v1/queries/{id},
    // GET /v1/queries/{id}/windows, POST /v1/queries/{id}/decision and
    // GET/POST /v1/queries/{id}/result.
    void register_routes(httplib::Server& server);

  private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace cipherpulse::server
