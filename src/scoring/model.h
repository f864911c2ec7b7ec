// Risk models scored on encrypted features: the model file (docs/formats.md "Model file"),
// the feature spec a client encodes with, and the exact fixed-point form the server
// evaluates under Paillier.
//
// A model is a linear logit over integer inputs: z = B + sum W_i x_i, logit = z / 2^S.
// Clients encode raw columns (age in years, oldpeak in 0.1 mm, categories one-hot) into the
// integer inputs x_i, so encrypted and plaintext scoring compute the same integer z.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cipherpulse/result.h"

namespace cipherpulse::scoring {

// kModelFormat names the model file format this build reads and writes.
inline constexpr const char* kModelFormat = "cipherpulse-model/1";

enum class ColumnKind { kNumeric, kBinary, kCategorical };

// Column is one raw feature as a client holds it (a CSV column).
struct Column {
    std::string name;
    std::string unit;         // "years", "mm Hg", "" for codes
    std::string description;  // what the value means (codes explained)
    ColumnKind kind = ColumnKind::kNumeric;
    double min = 0;           // numeric: allowed range, inclusive
    double max = 0;
    unsigned decimals = 0;    // numeric: resolution 10^-decimals; finer values are refused
    std::vector<std::int64_t> levels;  // categorical: allowed codes
};

enum class InputKind { kValue, kIndicator };

// Input is one integer component of the encoded feature vector.
struct Input {
    std::string name;    // "age", "cp=2"
    std::size_t column = 0;  // index into Model::columns
    InputKind kind = InputKind::kValue;
    std::int64_t level = 0;  // kIndicator: 1 when the column equals this code
    std::int64_t lo = 0;     // the input's range in integer units
    std::int64_t hi = 0;
    // The float model's standardisation of this input, in column units (mean 0, sd 1 when
    // the input is used as it is).
    double mean = 0;
    double sd = 1;
};

// RiskClass: probabilities below `below` (the last class has none) fall in this class.
struct RiskClass {
    std::string name;
    std::optional<double> below;
};

// FixedPoint is the exact integer model the server evaluates.
struct FixedPoint {
    unsigned scale_bits = 20;  // S: logit = z / 2^S
    std::int64_t intercept = 0;             // B
    std::vector<std::int64_t> weights;      // W_i per integer input unit
    double max_logit_error = 0;  // |z / 2^S - float logit| <= this for inputs in range
};

// Model is a parsed, validated model file.
struct Model {
    std::string id;
    std::string description;
    std::string label;  // what a positive prediction means
    std::vector<Column> columns;
    std::vector<Input> inputs;
    double intercept = 0;               // float model, standardised space
    std::vector<double> coefficients;   // one per input
    FixedPoint fixed;
    std::vector<RiskClass> risk_classes;
    std::string training_json = "{}";  // free-form documents kept verbatim
    std::string metrics_json = "{}";

    // score_min / score_max bound z over every input vector in range (exact).
    std::int64_t score_min() const;
    std::int64_t score_max() const;
};

// parse_model reads and validates a model file: known format, consistent columns and
// inputs, ranges that fit, weights matching the inputs, |z| below 2^62 for every input in
// range, risk classes increasing. Never throws for bad input.
Result<Model> parse_model(std::string_view json);

// model_to_json writes the whole model file (weights included): the owner's document.
std::string model_to_json(const Model& model);

// public_spec_json is what GET /v1/models/{id} publishes: id, description, label, columns,
// inputs (names, ranges), the fixed-point scale and error bound, the score range, risk
// classes and metrics; never the weights, intercept or standardisation.
std::string public_spec_json(const Model& model);

// parse_public_spec reads what public_spec_json wrote (the client's view): the result has
// no weights (fixed.weights empty) but the score range is kept in `score_range`.
struct PublicSpec {
    Model model;  // weights, intercept and standardisation absent
    std::int64_t score_min = 0;
    std::int64_t score_max = 0;
};
Result<PublicSpec> parse_public_spec(std::string_view json);

// compute_fixed_point derives B, W and the error bound from the float model with scale
// 2^scale_bits: W_i = round(2^S * beta_i / (sd_i * 10^decimals)), B = round(2^S * (b -
// sum beta_i mean_i / sd_i)). Throws std::invalid_argument for scale_bits outside 4..40 or a
// model whose integers would not fit.
FixedPoint compute_fixed_point(const Model& model, unsigned scale_bits);

// RowValues maps column names to the text of their values (CSV cells, JSON numbers).
using RowValues = std::map<std::string, std::string, std::less<>>;

// encode_row turns one row of raw values into the integer inputs. Fails naming the column:
// a missing or empty value, not a number, outside the allowed range, finer than the
// resolution, a binary value not 0/1, a code not among the levels.
Result<std::vector<std::int64_t>> encode_row(const Model& model, const RowValues& values);

// fixed_score is z = B + sum W_i x_i (the integer the encrypted path decrypts to).
std::int64_t fixed_score(const Model& model, std::span<const std::int64_t> inputs);

// float_logit is the floating-point model's logit for the same inputs.
double float_logit(const Model& model, std::span<const std::int64_t> inputs);

// logit_of converts z to the logit z / 2^S.
double logit_of(const Model& model, std::int64_t z);

// sigmoid is 1 / (1 + e^-t), computed without overflow.
double sigmoid(double t);

// risk_class names the class of probability p.
const std::string& risk_class(const Model& model, double p);

}  // namespace cipherpulse::scoring
