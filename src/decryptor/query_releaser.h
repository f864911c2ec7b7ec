// The decryptor's side of cohort queries inside `watch`: after each poll it fetches the
// queries the server lists as approved, decides each (queries.h: decide) and posts the
// sealed release or the refusal. Every verdict is logged before it is posted, and an
// unposted one is posted again on the next round, so a crash or an unreachable server
// neither loses a release nor decrypts a query twice.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "decryptor/config.h"
#include "decryptor/release.h"
#include "decryptor/state.h"

namespace httplib {
class Client;
}

namespace cipherpulse::decryptor {

// QueryRoundStats counts what one round did.
struct QueryRoundStats {
    int released = 0;
    int refused = 0;
    int integrity = 0;
    int posted = 0;
};

class QueryReleaser {
  public:
    // OnIntegrity is called for a query whose server data failed a check (query id, what).
    using OnIntegrity = std::function<void(const std::string&, const std::string&)>;

    // The releaser uses the watcher's client, token, store and keys; the identity key is
    // loaded from policy.identity_key on first need.
    QueryReleaser(httplib::Client& client, std::string token, StateStore& store,
                  const KeyRing& keys, CohortPolicy policy, OnIntegrity on_integrity,
                  std::function<std::int64_t()> clock);
    ~QueryReleaser();
    QueryReleaser(const QueryReleaser&) = delete;
    QueryReleaser& operator=(const QueryReleaser&) = delete;

    // round posts what is logged but unposted, then decides every approved query not in
    // the log. Server errors are logged and end the round early (the next one retries).
    QueryRoundStats round();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace cipherpulse::decryptor
