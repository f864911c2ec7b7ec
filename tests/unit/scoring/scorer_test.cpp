// Model files, the feature codec, slot packing and the encrypted scorer.
#include "scoring/scorer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "scoring/model.h"
#include "scoring/packing.h"
#include "scoring/train.h"
#include "unit/test_support.h"

namespace cipherpulse::scoring {
namespace {

using nlohmann::json;

const Model& cleveland_model() {
    static Model model = [] {
        auto table = read_table(testing::repo_root() / ".." / "shared" / "data" / "real" /
                                "heart_cleveland.csv");
        return train_logistic(cleveland_spec(), table.value(), "target", TrainOptions{})
            .value()
            .model;
    }();
    return model;
}

const Table& cleveland_table() {
    static Table table =
        read_table(testing::repo_root() / ".." / "shared" / "data" / "real" / "heart_cleveland.csv")
            .value();
    return table;
}

// The rows the model can score (those without a missing value).
std::vector<std::vector<std::int64_t>> cleveland_inputs() {
    std::vector<std::vector<std::int64_t>> rows;
    for (std::size_t r = 0; r < cleveland_table().rows.size(); ++r) {
        auto x = encode_row(cleveland_model(), cleveland_table().row_values(r));
        if (x) {
            rows.push_back(x.value());
        }
    }
    return rows;
}

RowValues first_row() {
    return cleveland_table().row_values(0);  // 63,1,1,145,233,1,2,150,0,2.3,3,0,6
}

TEST(ModelTest, EncodesARowIntoIntegerInputs) {
    auto x = encode_row(cleveland_model(), first_row());
    ASSERT_TRUE(x.ok()) << x.error().message;
    // age, sex, trestbps, chol, fbs, thalach, exang, oldpeak (0.1 mm), then cp=2..thal=7.
    const std::vector<std::int64_t> expected = {63, 1, 145, 233, 1, 150, 0, 23, 0, 0,
                                                0,  0, 1,   0,   1, 0,   0, 0,  1, 0};
    EXPECT_EQ(x.value(), expected);
}

TEST(ModelTest, RefusesBadValuesNamingTheColumn) {
    struct Case {
        const char* column;
        const char* value;
        const char* says;
    } cases[] = {{"age", "", "missing"},          {"age", "?", "missing"},
                 {"age", "abc", "not a number"},  {"age", "150", "outside the allowed range"},
                 {"oldpeak", "2.35", "finer"},    {"sex", "2", "not 0 or 1"},
                 {"cp", "5", "not one of the codes"}, {"thal", "6.5", "not one of the codes"},
                 {"chol", "nan", "not a number"}, {"chol", "1e999", "not a number"}};
    for (const auto& c : cases) {
        RowValues row = first_row();
        row[c.column] = c.value;
        auto x = encode_row(cleveland_model(), row);
        ASSERT_FALSE(x.ok()) << c.column << "=" << c.value;
        EXPECT_NE(x.error().message.find(std::string("'") + c.column + "'"), std::string::npos)
            << x.error().message;
        EXPECT_NE(x.error().message.find(c.says), std::string::npos) << x.error().message;
    }
    RowValues row = first_row();
    row.erase("thalach");
    auto x = encode_row(cleveland_model(), row);
    ASSERT_FALSE(x.ok());
    EXPECT_NE(x.error().message.find("'thalach': missing"), std::string::npos);
}

TEST(ModelTest, FixedPointStaysWithinItsBoundOfTheFloatModel) {
    const Model& m = cleveland_model();
    EXPECT_EQ(m.fixed.scale_bits, 20u);
    EXPECT_GT(m.fixed.max_logit_error, 0.0);
    EXPECT_LT(m.fixed.max_logit_error, 0.001);
    double worst = 0;
    for (const auto& x : cleveland_inputs()) {
        const double diff = std::fabs(logit_of(m, fixed_score(m, x)) - float_logit(m, x));
        worst = std::max(worst, diff);
        EXPECT_LE(diff, m.fixed.max_logit_error);
        const std::int64_t z = fixed_score(m, x);
        EXPECT_GE(z, m.score_min());
        EXPECT_LE(z, m.score_max());
    }
    EXPECT_GT(worst, 0.0);  // the comparison is not vacuous
}

TEST(ModelTest, PublicSpecHasNoWeights) {
    const Model& m = cleveland_model();
    const std::string spec = public_spec_json(m);
    const json doc = json::parse(spec);
    EXPECT_FALSE(doc.contains("float_model"));
    EXPECT_FALSE(doc["fixed_point"].contains("weights"));
    EXPECT_FALSE(doc["fixed_point"].contains("intercept"));
    EXPECT_FALSE(doc["inputs"][0].contains("mean"));
    auto parsed = parse_public_spec(spec);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed.value().score_min, m.score_min());
    EXPECT_EQ(parsed.value().score_max, m.score_max());
    // The client encodes with the spec alone, to the same integers.
    EXPECT_EQ(encode_row(parsed.value().model, first_row()).value(),
              encode_row(m, first_row()).value());
}

TEST(ModelTest, ParseRefusesInconsistentModels) {
    const json good = json::parse(model_to_json(cleveland_model()));
    struct Case {
        const char* what;
        std::function<void(json&)> change;
    } cases[] = {
        {"format", [](json& d) { d["format"] = "other/2"; }},
        {"weights", [](json& d) { d["fixed_point"]["weights"].erase(0); }},
        {"column", [](json& d) { d["inputs"][0]["column"] = "nope"; }},
        {"level", [](json& d) { d["inputs"][8]["level"] = 9; }},
        {"scale_bits", [](json& d) { d["fixed_point"]["scale_bits"] = 60; }},
        {"weight", [](json& d) { d["fixed_point"]["weights"][3] = std::int64_t{1} << 49; }},
        {"fit",
         [](json& d) {
             d["columns"][4]["max"] = 1e9;  // chol, input 3
             d["fixed_point"]["weights"][3] = std::int64_t{1} << 40;
         }},
        {"id", [](json& d) { d["id"] = "has space"; }},
        {"classes", [](json& d) { d["risk_classes"][1]["below"] = 0.1; }},
        {"sd", [](json& d) { d["inputs"][0]["sd"] = 0; }},
    };
    for (const auto& c : cases) {
        json doc = good;
        c.change(doc);
        EXPECT_FALSE(parse_model(doc.dump()).ok()) << c.what;
    }
    EXPECT_FALSE(parse_model("{").ok());
    EXPECT_TRUE(parse_model(good.dump()).ok());
}

class ScorerTest : public ::testing::Test {
  protected:
    const PrivateKey& key_ = testing::test_key(1024);
    const PublicKey& pk_ = key_.public_key();
    const Model& model_ = cleveland_model();

    std::vector<Ciphertext> encrypt(const std::vector<std::int64_t>& x) {
        std::vector<Ciphertext> cs;
        for (auto v : x) {
            cs.push_back(pk_.encrypt(BigInt(static_cast<long>(v))));
        }
        return cs;
    }
};

TEST_F(ScorerTest, EncryptedScoresEqualPlaintextFixedPointForEveryRow) {
    const auto rows = cleveland_inputs();
    ASSERT_EQ(rows.size(), 297u);
    int prediction_differences = 0;
    for (const auto& x : rows) {
        const Ciphertext z = score_vector(pk_, model_, encrypt(x));
        const std::int64_t decrypted =
            static_cast<std::int64_t>(mpz_get_si(pk_.decode_signed(key_.decrypt(z)).get()));
        ASSERT_EQ(decrypted, fixed_score(model_, x));
        prediction_differences += (decrypted >= 0) != (fixed_score(model_, x) >= 0);
    }
    EXPECT_EQ(prediction_differences, 0);
}

TEST_F(ScorerTest, PackedBatchesEqualTheUnpackedPath) {
    auto layout = packed_layout(model_, pk_.modulus_bits());
    ASSERT_TRUE(layout.ok()) << layout.error().message;
    const PackedLayout& l = layout.value();
    EXPECT_GE(l.slots, 20u);
    EXPECT_LE(l.slots * l.slot_bits, pk_.modulus_bits() - 2);
    // Extreme rows: every input at its lowest, at its highest, and each combination that
    // reaches the score range's ends, then real rows; batch sizes 1, a partial batch and
    // a full one.
    std::vector<std::vector<std::int64_t>> rows;
    std::vector<std::int64_t> lo, hi, zmin, zmax;
    for (std::size_t i = 0; i < model_.inputs.size(); ++i) {
        lo.push_back(model_.inputs[i].lo);
        hi.push_back(model_.inputs[i].hi);
        const bool positive = model_.fixed.weights[i] > 0;
        zmin.push_back(positive ? model_.inputs[i].lo : model_.inputs[i].hi);
        zmax.push_back(positive ? model_.inputs[i].hi : model_.inputs[i].lo);
    }
    rows = {lo, hi, zmin, zmax};
    EXPECT_EQ(fixed_score(model_, zmin), model_.score_min());
    EXPECT_EQ(fixed_score(model_, zmax), model_.score_max());
    for (const auto& x : cleveland_inputs()) {
        rows.push_back(x);
    }
    for (std::size_t batch : {std::size_t{1}, std::size_t{7}, l.slots}) {
        std::vector<std::vector<std::int64_t>> chunk(rows.begin(),
                                                     rows.begin() + static_cast<long>(batch));
        std::vector<Ciphertext> packed;
        for (std::size_t i = 0; i < model_.inputs.size(); ++i) {
            std::vector<std::int64_t> column;
            for (const auto& x : chunk) {
                column.push_back(x[i]);
            }
            packed.push_back(pk_.encrypt(pack_input(l, i, column).value()));
        }
        const Ciphertext result = score_packed(pk_, model_, l, packed, chunk.size());
        auto scores = unpack_scores(l, key_.decrypt(result), chunk.size());
        ASSERT_TRUE(scores.ok()) << scores.error().message;
        for (std::size_t j = 0; j < chunk.size(); ++j) {
            EXPECT_EQ(scores.value()[j], fixed_score(model_, chunk[j])) << "batch " << batch;
            const Ciphertext single = score_vector(pk_, model_, encrypt(chunk[j]));
            EXPECT_EQ(mpz_get_si(pk_.decode_signed(key_.decrypt(single)).get()),
                      scores.value()[j]);
        }
    }
}

TEST_F(ScorerTest, PackingRefusesWhatCouldOverflow) {
    const PackedLayout l = packed_layout(model_, pk_.modulus_bits()).value();
    // age above its range would carry into the next slot: refused.
    EXPECT_FALSE(pack_input(l, 0, std::vector<std::int64_t>{101}).ok());
    EXPECT_FALSE(pack_input(l, 0, std::vector<std::int64_t>{-1}).ok());
    EXPECT_FALSE(pack_input(l, 0, std::vector<std::int64_t>(l.slots + 1, 50)).ok());
    EXPECT_TRUE(pack_input(l, 0, std::vector<std::int64_t>(l.slots, 100)).ok());
    // A model whose slot cannot fit twice in the key is refused.
    EXPECT_FALSE(packed_layout(0, (std::int64_t{1} << 62) - 1, {}, {}, 100).ok());
    // A decrypted value that is not a score of this model is refused, not misread.
    BigInt junk;
    mpz_ui_pow_ui(junk.get(), 2, static_cast<unsigned long>(3 * l.slot_bits + 5));
    EXPECT_FALSE(unpack_scores(l, junk, 2).ok());
    BigInt over = BigInt::from_u64(static_cast<std::uint64_t>(l.score_max - l.score_min + 1));
    EXPECT_FALSE(unpack_scores(l, over, 1).ok());
}

TEST_F(ScorerTest, WrongInputCountThrows) {
    std::vector<Ciphertext> three = encrypt({1, 2, 3});
    EXPECT_THROW(score_vector(pk_, model_, three), std::invalid_argument);
}

}  // namespace
}  // namespace cipherpulse::scoring
