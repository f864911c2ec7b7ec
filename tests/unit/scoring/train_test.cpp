// The owner's training checked against an independent reference: train_reference.py (pure
// Python, its own Gaussian elimination) run on the same table wrote cleveland_reference.json.
#include "scoring/train.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "unit/test_support.h"

namespace cipherpulse::scoring {
namespace {

using nlohmann::json;

std::filesystem::path cleveland_csv() {
    return testing::repo_root() / ".." / "shared" / "data" / "real" / "heart_cleveland.csv";
}

json reference() {
    std::ifstream in(testing::repo_root() / "tests/unit/scoring/kat/cleveland_reference.json");
    return json::parse(in);
}

const TrainResult& trained() {
    static TrainResult result = [] {
        auto table = read_table(cleveland_csv());
        EXPECT_TRUE(table.ok()) << table.error().message;
        return train_logistic(cleveland_spec(), table.value(), "target", TrainOptions{}).value();
    }();
    return result;
}

TEST(TrainTest, SplitAndFoldsMatchTheReference) {
    const json ref = reference();
    const TrainResult& r = trained();
    EXPECT_EQ(r.rows_total, 303u);
    EXPECT_EQ(r.rows_used, ref["rows_used"].get<std::size_t>());
    EXPECT_EQ(r.rows_used, 297u);
    EXPECT_EQ(r.train, ref["train"].get<std::vector<std::size_t>>());
    EXPECT_EQ(r.test, ref["test"].get<std::vector<std::size_t>>());
    EXPECT_EQ(r.fold_of_train, ref["fold_of_train"].get<std::vector<unsigned>>());
}

TEST(TrainTest, CoefficientsAndStandardisationMatchTheReference) {
    const json ref = reference();
    const TrainResult& r = trained();
    const Model& m = r.model;
    ASSERT_EQ(m.inputs.size(), ref["inputs"].size());
    for (std::size_t j = 0; j < m.inputs.size(); ++j) {
        EXPECT_EQ(m.inputs[j].name, ref["inputs"][j].get<std::string>());
        EXPECT_NEAR(m.coefficients[j], ref["coefficients"][j].get<double>(), 1e-9)
            << m.inputs[j].name;
        if (ref["standardization"].contains(m.inputs[j].name)) {
            const auto& s = ref["standardization"][m.inputs[j].name];
            EXPECT_NEAR(m.inputs[j].mean, s["mean"].get<double>(), 1e-9);
            EXPECT_NEAR(m.inputs[j].sd, s["sd"].get<double>(), 1e-9);
        } else {
            EXPECT_EQ(m.inputs[j].mean, 0.0);
            EXPECT_EQ(m.inputs[j].sd, 1.0);
        }
    }
    EXPECT_NEAR(m.intercept, ref["intercept"].get<double>(), 1e-9);
    EXPECT_EQ(r.iterations, ref["iterations"].get<unsigned>());
}

TEST(TrainTest, MetricsAndCalibrationMatchTheReference) {
    const json ref = reference();
    const TrainResult& r = trained();
    EXPECT_NEAR(r.cv.accuracy, ref["cv"]["accuracy"].get<double>(), 1e-12);
    EXPECT_NEAR(r.cv.auc, ref["cv"]["auc"].get<double>(), 1e-12);
    EXPECT_NEAR(r.cv.brier, ref["cv"]["brier"].get<double>(), 1e-9);
    EXPECT_NEAR(r.cv_fold_accuracy_mean, ref["cv"]["fold_accuracy_mean"].get<double>(), 1e-12);
    EXPECT_NEAR(r.test_metrics.accuracy, ref["test_metrics"]["accuracy"].get<double>(), 1e-12);
    EXPECT_NEAR(r.test_metrics.auc, ref["test_metrics"]["auc"].get<double>(), 1e-12);
    EXPECT_NEAR(r.test_metrics.brier, ref["test_metrics"]["brier"].get<double>(), 1e-9);
    ASSERT_EQ(r.calibration.size(), 10u);
    for (std::size_t b = 0; b < 10; ++b) {
        EXPECT_EQ(r.calibration[b].count, ref["calibration"][b]["count"].get<std::size_t>());
    }
    ASSERT_EQ(r.test_probabilities.size(), ref["test_probabilities"].size());
    for (std::size_t i = 0; i < r.test_probabilities.size(); ++i) {
        EXPECT_NEAR(r.test_probabilities[i], ref["test_probabilities"][i].get<double>(), 1e-9);
    }
}

TEST(TrainTest, ModelFileRoundTripsAndKeepsItsMetrics) {
    const Model& m = trained().model;
    auto parsed = parse_model(model_to_json(m));
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed.value().fixed.weights, m.fixed.weights);
    EXPECT_EQ(parsed.value().fixed.intercept, m.fixed.intercept);
    EXPECT_EQ(model_to_json(parsed.value()), model_to_json(m));
    const json metrics = json::parse(m.metrics_json);
    EXPECT_EQ(metrics["calibration"].size(), 10u);
    EXPECT_EQ(json::parse(m.training_json)["rows_dropped"].get<int>(), 6);
}

TEST(TrainTest, BadTablesAreRefusedNamingTheRow) {
    auto table = parse_csv("age,sex,cp,trestbps,chol,fbs,restecg,thalach,exang,oldpeak,slope,"
                           "ca,thal,target\n63,1,1,145,233,1,2,150,0,2.3,3,0,6,0\n"
                           "67,1,9,160,286,0,2,108,1,1.5,2,3,3,2\n");
    ASSERT_TRUE(table.ok());
    auto r = train_logistic(cleveland_spec(), table.value(), "target", TrainOptions{});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("row 2"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("'cp'"), std::string::npos) << r.error().message;
    auto no_label = train_logistic(cleveland_spec(), table.value(), "num", TrainOptions{});
    ASSERT_FALSE(no_label.ok());
    EXPECT_NE(no_label.error().message.find("num"), std::string::npos);
}

}  // namespace
}  // namespace cipherpulse::scoring
