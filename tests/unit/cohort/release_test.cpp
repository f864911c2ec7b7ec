// The release of a cohort query: exact figures without noise (values worked out by hand
// below, not by the code under test), per-record sensitivities from the codec's bounds,
// 95 % intervals that cover the exact figure at least 95 % of the time over many noised
// draws, and a scale too large to draw refused before any noise is drawn.
#include "cohort/release.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace cipherpulse::cohort {
namespace {

Statistic st(const char* text) {
    return parse_statistic(text).value();
}

QueryDocument document(std::optional<std::uint32_t> epsilon_milli, std::int64_t cap) {
    QueryDocument doc;
    doc.id = "q_test";
    doc.request.cohort = "ward-7";
    doc.request.from_ms = 1'700'000'000'000;
    doc.request.to_ms = doc.request.from_ms + 86'400'000;
    doc.request.statistics = {st("count"),           st("mean"),    st("sd"),
                              st("histogram"),       st("share_above:75"),
                              st("minutes_above:75"), st("mean_rr"), st("rmssd"),
                              st("contact_lost")};
    doc.request.epsilon_milli = epsilon_milli;
    doc.members = {"a", "b", "c"};
    doc.cap_records = cap;
    doc.record_seconds = 5;
    return doc;
}

// 100 records of 2 samples: 100 at 70.0 bpm, 100 at 80.0 bpm; 150 RR intervals of 800 ms;
// 100 successive differences of 50 ms; 3 readings without contact. Scaled by `k`.
HeartRateStats stats(std::uint64_t k = 1) {
    HeartRateStats s;
    s.records = 100 * k;
    s.samples = 200 * k;
    s.sum_bpm_deci = 100 * k * 700 + 100 * k * 800;
    s.sum_bpm_deci_sq = 100 * k * 700 * 700 + 100 * k * 800 * 800;
    s.hist[9] = 100 * k;   // 70 <= bpm < 75
    s.hist[11] = 100 * k;  // 80 <= bpm < 85
    s.rr_count = 150 * k;
    s.sum_rr_ms = 150 * k * 800;
    s.sum_rr_ms_sq = 150 * k * 800 * 800;
    s.rr_diff_count = 100 * k;
    s.sum_rr_diff_sq = 100 * k * 50 * 50;
    s.contact_lost = 3 * k;
    return s;
}

std::map<std::string, ReleaseFigure> by_name(const Release& r) {
    std::map<std::string, ReleaseFigure> out;
    for (const auto& f : r.figures) {
        out.emplace(f.name, f);
    }
    return out;
}

TEST(ReleaseTest, SensitivitiesAreTheCodecsPerRecordBounds) {
    EXPECT_TRUE(per_record_sensitivity(Sum::kRecords) == 1);
    EXPECT_TRUE(per_record_sensitivity(Sum::kSamples) == 63);
    EXPECT_TRUE(per_record_sensitivity(Sum::kHistogram) == 63);
    EXPECT_TRUE(per_record_sensitivity(Sum::kSumBpm) == Wide{63} * 3000);
    EXPECT_TRUE(per_record_sensitivity(Sum::kSumBpmSq) == Wide{63} * 3000 * 3000);
    EXPECT_TRUE(per_record_sensitivity(Sum::kSumRr) == Wide{63} * 4000);
    EXPECT_TRUE(per_record_sensitivity(Sum::kSumRrDiffSq) == Wide{63} * 4000 * 4000);
    EXPECT_TRUE(per_record_sensitivity(Sum::kContactLost) == 63);
}

TEST(ReleaseTest, WithoutNoiseTheFiguresAreExact) {
    const QueryDocument doc = document(std::nullopt, 17280);
    SplitMix64Source unused(1);
    const Release r = build_release(doc, stats(), 3, unused);
    auto f = by_name(r);
    // Worked out by hand: mean (70 + 80) / 2; variance of the tenths
    // (100 * 700^2 + 100 * 800^2 - 150000^2 / 200) / 199 = 500000 / 199, so
    // sd = sqrt(2512.5628...) / 10 = 5.0126 bpm; share at or above 75: 100 / 200; its minutes
    // 0.5 * 100 records * 5 s / 60 = 4.1667; minutes of data 100 * 5 / 60 = 8.3333.
    EXPECT_EQ(f.at("patients_with_data").value, 3.0);
    EXPECT_EQ(f.at("records").value, 100.0);
    EXPECT_EQ(f.at("samples").value, 200.0);
    EXPECT_EQ(f.at("minutes_of_data").value, 8.3);
    EXPECT_EQ(f.at("mean_bpm").value, 75.0);
    EXPECT_EQ(f.at("sd_bpm").value, 5.01);
    EXPECT_EQ(f.at("bin_70_75").value, 100.0);
    EXPECT_EQ(f.at("bin_80_85").value, 100.0);
    EXPECT_EQ(f.at("bin_75_80").value, 0.0);
    EXPECT_EQ(f.at("bin_lt_30").value, 0.0);
    EXPECT_EQ(f.at("bin_ge_220").value, 0.0);
    EXPECT_EQ(f.at("share_at_or_above_75").value, 0.5);
    EXPECT_EQ(f.at("minutes_at_or_above_75").value, 4.2);
    EXPECT_EQ(f.at("mean_rr_ms").value, 800.0);
    EXPECT_EQ(f.at("rmssd_ms").value, 50.0);
    EXPECT_EQ(f.at("contact_lost").value, 3.0);
    for (const auto& fig : r.figures) {
        EXPECT_FALSE(fig.interval95.has_value()) << fig.name;
        EXPECT_TRUE(fig.scale.empty()) << fig.name;
    }
    EXPECT_EQ(r.figures.size(), 4u + 1 + 1 + 40 + 1 + 1 + 1 + 1 + 1);

    const nlohmann::json j = release_json(doc, "abc", r, 3, 1234);
    EXPECT_EQ(j["v"], "cipherpulse-release/1");
    EXPECT_EQ(j["query"], "q_test");
    EXPECT_EQ(j["hash"], "abc");
    EXPECT_EQ(j["noise"], "none");
    EXPECT_TRUE(j["epsilon"].is_null());
    EXPECT_EQ(j["cohort"], "ward-7");
    EXPECT_EQ(j["cohort_size"], 3);
    EXPECT_EQ(j["patients_with_data"], 3);
    EXPECT_EQ(j["figures"].size(), r.figures.size());
    EXPECT_EQ(j["figures"][4]["name"], "mean_bpm");
    EXPECT_EQ(j["figures"][4]["value"], 75.0);
    EXPECT_TRUE(j["figures"][4]["interval95"].is_null());
}

TEST(ReleaseTest, FigureNamesFollowTheStatistic) {
    EXPECT_EQ(figure_names(st("count")),
              (std::vector<std::string>{"patients_with_data", "records", "samples",
                                        "minutes_of_data"}));
    EXPECT_EQ(figure_names(st("share_below:50")),
              (std::vector<std::string>{"share_below_50"}));
    const auto bins = figure_names(st("histogram"));
    ASSERT_EQ(bins.size(), 40u);
    EXPECT_EQ(bins[1], "bin_30_35");
    EXPECT_EQ(bins[38], "bin_215_220");
}

// Each 95 % interval must cover the exact figure in 95 % of draws (the derived intervals are
// Bonferroni boxes, so in practice more): over 400 draws at least 92 %, three standard
// deviations below 95 %. The check can fail: intervals of half the width cover a Laplace
// sum only about 78 % of the time, and that is seen. The noised values must differ from
// the exact ones (the noise is there).
TEST(ReleaseTest, IntervalsCoverTheExactFigures) {
    const QueryDocument doc = document(5000, 20);  // epsilon 5, 20 records a patient
    const HeartRateStats exact = stats(2000);
    SplitMix64Source none(0);
    QueryDocument exact_doc = doc;
    exact_doc.request.epsilon_milli.reset();
    const auto truth = by_name(build_release(exact_doc, exact, 12, none));
    constexpr int kRuns = 400;
    std::map<std::string, int> covered, moved, defined;
    int narrow_covered = 0;
    // One stream for every run (SplitMix64 streams seeded a constant apart overlap).
    SplitMix64Source source(20261207);
    for (int run = 0; run < kRuns; ++run) {
        const Release r = build_release(doc, exact, 12, source);
        for (const auto& f : r.figures) {
            if (!f.value || !f.interval95) {
                continue;
            }
            ++defined[f.name];
            const double t = *truth.at(f.name).value;
            if (f.interval95->first <= t + 1e-9 && t - 1e-9 <= f.interval95->second) {
                ++covered[f.name];
            }
            if (f.name == "records") {
                const double mid = (f.interval95->first + f.interval95->second) / 2;
                const double half = (f.interval95->second - f.interval95->first) / 4;
                narrow_covered += mid - half <= t && t <= mid + half ? 1 : 0;
            }
            if (*f.value != t) {
                ++moved[f.name];
            }
            EXPECT_FALSE(f.scale.empty()) << f.name;
        }
    }
    for (const char* name : {"records", "samples", "minutes_of_data", "mean_bpm", "sd_bpm",
                             "bin_70_75", "bin_100_105", "share_at_or_above_75",
                             "minutes_at_or_above_75", "mean_rr_ms", "rmssd_ms", "contact_lost"}) {
        ASSERT_GT(defined[name], kRuns * 9 / 10) << name;
        EXPECT_GE(covered[name], defined[name] * 92 / 100) << name;
        EXPECT_GT(moved[name], defined[name] / 2) << name;
    }
    EXPECT_LT(narrow_covered, kRuns * 88 / 100);
    EXPECT_GT(narrow_covered, kRuns * 65 / 100);
    // The count of patients is not noised (the server knows it): no interval.
    auto f = by_name(build_release(doc, exact, 12, source));
    EXPECT_EQ(f.at("patients_with_data").value, 12.0);
    EXPECT_FALSE(f.at("patients_with_data").interval95.has_value());
}

TEST(ReleaseTest, DerivedFiguresStayInTheirDomainWhenNoiseSwampsTheData) {
    // Epsilon 0.5 over 2,000 records a patient against 100 records of data: the noise is
    // far larger than the sums, and ratios of noised sums leave any sensible range.
    const QueryDocument doc = document(500, 2000);
    SplitMix64Source source(20261208);
    const std::map<std::string, double> max = {
        {"mean_bpm", 300.0}, {"sd_bpm", 300.0}, {"mean_rr_ms", 4000.0}, {"rmssd_ms", 4000.0}};
    int at_a_bound = 0;
    for (int run = 0; run < 200; ++run) {
        auto f = by_name(build_release(doc, stats(), 3, source));
        for (const auto& [name, hi] : max) {
            const auto& fig = f.at(name);
            if (fig.value) {
                EXPECT_GE(*fig.value, 0.0) << name;
                EXPECT_LE(*fig.value, hi) << name;
                at_a_bound += *fig.value == 0.0 || *fig.value == hi ? 1 : 0;
            }
            ASSERT_TRUE(fig.interval95) << name;
            EXPECT_GE(fig.interval95->first, 0.0) << name;
            EXPECT_LE(fig.interval95->second, hi) << name;
        }
        ASSERT_TRUE(f.at("minutes_of_data").value);
        EXPECT_GE(*f.at("minutes_of_data").value, 0.0);
    }
    EXPECT_GT(at_a_bound, 0);  // the clamp did act
}

TEST(ReleaseTest, AScaleTooLargeIsRefusedBeforeAnyDraw) {
    const QueryDocument doc = document(1, std::int64_t{1} << 60);  // epsilon 0.001
    class Counting final : public UniformSource {
      public:
        std::uint64_t next_u64() override {
            ++draws;
            return 0x5555555555555555ULL;
        }
        int draws = 0;
    } source;
    EXPECT_THROW(build_release(doc, stats(), 3, source), std::out_of_range);
    EXPECT_EQ(source.draws, 0);
}

}  // namespace
}  // namespace cipherpulse::cohort
