// The hospital's side of risk scoring: encode patients' features per the model's published
// spec, encrypt them under the hospital's own scoring key, have the provider (the server)
// score them, decrypt and check the logits. The provider sees ciphertexts only; the hospital
// learns the logit and nothing else of the model per row.
#pragma once

#include <httplib.h>

#include <chrono>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cipherpulse/paillier.h"
#include "cipherpulse/randomness_pool.h"
#include "cipherpulse/result.h"
#include <nlohmann/json_fwd.hpp>

#include "scoring/model.h"

namespace cipherpulse::decryptor {

// ScoreError says why scoring failed, with the exit code the command maps it to:
// 1 the server was unreachable or refused (budget, role), 2 bad input, 4 the server's answer
// is not a valid score for the model (nothing of it is used).
struct ScoreError {
    int exit_code = 1;
    std::string message;
};

template <class T>
struct ScoreResult {
    std::optional<T> value;
    ScoreError error;
    bool ok() const { return value.has_value(); }
};

class ScoringClient {
  public:
    // `key` must outlive the client. With `warm_pool` > 0 a RandomnessPool of that size
    // keeps encryption at one multiplication per value (a service scoring one patient at a
    // time); without, encryption runs on every core (a batch from the command line).
    ScoringClient(httplib::Client& http, std::string token, const PrivateKey& key,
                  std::size_t warm_pool = 0);
    ~ScoringClient();

    // wait_until_warm blocks until the randomness pool is full (at most `timeout`); true
    // at once without a pool.
    bool wait_until_warm(std::chrono::milliseconds timeout);

    // fetch_spec reads GET /v1/models/{id}.
    ScoreResult<scoring::PublicSpec> fetch_spec(const std::string& model_id);

    // score sends the encoded rows (scoring::encode_row) and returns each row's z, packed
    // when `packed` (the model's layout for this key), in requests of at most `batch_rows`.
    // Every z is checked to lie within the spec's score range.
    ScoreResult<std::vector<std::int64_t>> score(const scoring::PublicSpec& spec,
                                                 const std::vector<std::vector<std::int64_t>>& rows,
                                                 bool packed, std::size_t batch_rows);

  private:
    std::vector<Ciphertext> encrypt_all(const std::vector<BigInt>& plaintexts);
    std::vector<BigInt> decrypt_all(const std::vector<Ciphertext>& ciphertexts);
    ScoreResult<nlohmann::json> post(const std::string& path, const std::string& body);

    httplib::Client& http_;
    std::string token_;
    const PrivateKey& key_;
    std::string key_json_;
    std::unique_ptr<RandomnessPool> pool_;
};

// load_or_create_scoring_key loads the scoring key file, or makes one of `bits` bits (mode
// 0600, its directory 0700) when there is none, saying so on `err`.
Result<PrivateKey> load_or_create_scoring_key(const std::string& path, std::size_t bits,
                                              std::ostream& err);

}  // namespace cipherpulse::decryptor
