// Printing scores for people and scripts: probability, risk class and logit per row, as the
// owner's plaintext `model predict` and the hospital's encrypted `score` both print them
// (identical output for identical scores, which the tests rely on).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <span>
#include <string>

#include "scoring/model.h"

namespace cipherpulse::scoring {

// write_scores prints one line per z in `format` table, csv or json (the JSON object holds
// "model", "rows" and, when `packed` is given, "packed"). Throws std::invalid_argument for
// another format.
void write_scores(std::ostream& out, const Model& model, std::span<const std::int64_t> z,
                  const std::string& format, const bool* packed = nullptr);

}  // namespace cipherpulse::scoring
