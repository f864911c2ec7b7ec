// Training by the model's owner, in the clear on the owner's machine: L2-regularised
// logistic regression fitted by Newton's method (IRLS) on the UCI Cleveland heart-disease
// table, with a fixed-seed stratified split and k-fold cross-validation. The procedure is
// specified step by step in docs/formats.md ("Training") and re-implemented independently
// in tests/unit/scoring/kat/train_reference.py, whose output the tests compare with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cipherpulse/result.h"
#include "scoring/model.h"
#include "scoring/table.h"

namespace cipherpulse::scoring {

// cleveland_spec is the feature spec of the Cleveland table: 13 columns with units and
// allowed ranges, 20 inputs (8 values, 12 one-hot indicators with the first level of each
// categorical column as reference), and the risk classes. No weights.
Model cleveland_spec();

struct TrainOptions {
    std::string id = "heart-cleveland-lr";
    double lambda = 1.0;          // L2 penalty on the coefficients (not the intercept)
    std::uint64_t seed = 42;      // SplitMix64 seed of the split
    unsigned folds = 10;
    double test_fraction = 0.2;   // held out per class
    unsigned scale_bits = 20;     // fixed point: logit = z / 2^scale_bits
    unsigned max_iterations = 100;
};

struct Metrics {
    double accuracy = 0;  // threshold 0.5
    double auc = 0;       // Mann-Whitney, ties count one half
    double brier = 0;
};

struct CalibrationBin {
    std::size_t count = 0;
    std::optional<double> mean_predicted;
    std::optional<double> observed;
};

struct TrainResult {
    Model model;  // fitted on all training rows, with fixed point, metrics and training notes
    std::size_t rows_total = 0;
    std::size_t rows_used = 0;
    std::vector<std::size_t> train, test;   // indices among the rows used
    std::vector<unsigned> fold_of_train;
    unsigned iterations = 0;                // of the final fit
    Metrics cv;                             // pooled out-of-fold predictions
    double cv_fold_accuracy_mean = 0;
    Metrics test_metrics;
    std::vector<CalibrationBin> calibration;  // 10 bins of the out-of-fold predictions
    std::vector<double> test_probabilities;
};

// train_logistic fits `spec` (columns and inputs, no weights) to `table`, whose label
// column `label_column` is positive when > 0. Rows with a missing value ("?" or empty) in
// any model column are dropped (the Cleveland table: 4 in ca, 2 in thal); any other bad
// value fails naming its row and column. Fails for fewer than 2 * folds rows per class.
Result<TrainResult> train_logistic(const Model& spec, const Table& table,
                                   const std::string& label_column, const TrainOptions& options);

// metrics_of computes accuracy, AUC and Brier score of probabilities against labels.
Metrics metrics_of(const std::vector<double>& p, const std::vector<int>& y);

}  // namespace cipherpulse::scoring
