// `cipherpulse-decryptor score`: risk scores of patients from a CSV or JSON file, computed
// by the server on encrypted features and read here alone.
#pragma once

#include <iosfwd>
#include <string>

#include "decryptor/config.h"

namespace cipherpulse::decryptor {

struct ScoreOptions {
    std::string model;
    std::string input;             // CSV with a header, or a JSON array of objects
    std::string format = "table";  // table | csv | json
    std::string pack = "auto";     // auto (packed for two rows or more) | always | never
};

// run_score encodes every row per the model's published spec (a missing, out-of-range or
// malformed value is refused naming its row and column, before anything is sent), encrypts
// under the scoring key ([scoring] key, made on first use), has the server score them, and
// prints probability, risk class and logit per row. Exit 0, 1 (server unreachable or
// refusing: budget, role), 2 (bad input or unknown model), 4 (the server's answer is not a
// score of the model).
int run_score(const DecryptorConfig& config, const std::string& token, const ScoreOptions& options,
              std::ostream& out, std::ostream& err);

}  // namespace cipherpulse::decryptor
