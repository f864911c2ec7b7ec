// Tests of the alert engine: every rule at its boundaries, the shared state machine
// (sustained, hysteresis, de-duplication, cooldown, neutral windows, gaps), silence, the
// TOML configuration, the state's JSON, and the defaults on real PhysioNet recordings
// replayed through the edge's own replay source and micro-windows.
#include "decryptor/rules.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "decryptor/rules_toml.h"
#include "edge/micro_window.h"
#include "edge/replay.h"
#include "unit/test_support.h"

namespace cipherpulse::decryptor {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kMinute = 60'000;
constexpr std::int64_t kT0 = 1'700'000'040'000;  // 2023-11-14 22:14 UTC, a whole minute

// ---------------------------------------------------------------------------------------
// Building windows

// stats_of builds a window's statistics the way the edge does (records of at most 60
// samples / RR intervals each, the RR chain continuing across records).
HeartRateStats stats_of(const std::vector<double>& bpm, const std::vector<std::uint32_t>& rr = {},
                        std::uint64_t contact_lost = 0) {
    HeartRateStats total;
    HeartRateRecordBuilder builder;
    for (double b : bpm) {
        if (builder.current().samples == 60) {
            total += builder.finish();
        }
        EXPECT_TRUE(builder.add_sample(b).ok());
    }
    for (std::uint32_t ms : rr) {
        if (builder.current().rr_count == 60) {
            total += builder.finish();
        }
        EXPECT_TRUE(builder.add_rr(ms).ok());
    }
    for (std::uint64_t i = 0; i < contact_lost; ++i) {
        if (builder.current().contact_lost == 60) {
            total += builder.finish();
        }
        EXPECT_TRUE(builder.add_contact_lost().ok());
    }
    total += builder.finish();
    return total;
}

std::vector<double> repeat(double bpm, int n) {
    return std::vector<double>(static_cast<std::size_t>(n), bpm);
}

std::vector<double> concat(std::vector<double> a, const std::vector<double>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// constant is a full 1-minute window at one heart rate (one sample per second).
HeartRateStats constant(double bpm, int samples = 60) {
    return stats_of(repeat(bpm, samples));
}

// alternating_rr is a window of `n` RR intervals alternating a, b, a, b, ...
HeartRateStats alternating_rr(std::uint32_t a, std::uint32_t b, int n = 60) {
    std::vector<std::uint32_t> rr;
    std::vector<double> bpm;
    for (int i = 0; i < n; ++i) {
        rr.push_back(i % 2 == 0 ? a : b);
        bpm.push_back(60000.0 / rr.back());
    }
    return stats_of(bpm, rr);
}

WindowInput minute(int index, const HeartRateStats& stats, const std::string& patient = "p1") {
    return WindowInput{index + 1, patient, kT0 + index * kMinute, kMinute, stats};
}

// isolated returns the defaults with every rule but `keep` disabled.
RuleSet isolated(std::string_view keep) {
    RuleSet r = default_rules();
    r.tachycardia.common.enabled = keep == kRuleTachycardia;
    r.bradycardia.common.enabled = keep == kRuleBradycardia;
    r.baseline.common.enabled = keep == kRuleBaseline;
    r.irregular.common.enabled = keep == kRuleIrregular;
    r.missing_data.common.enabled = keep == kRuleMissingData;
    r.device_silent.common.enabled = keep == kRuleDeviceSilent;
    return r;
}

RuleEngine engine_with(const RuleSet& rules) {
    AlertingConfig config;
    config.defaults = rules;
    return RuleEngine(std::move(config));
}

// brief names an event as "R tachycardia 3" (raised/cleared, rule, minute index).
std::string brief(const AlertEvent& e) {
    return std::string(e.kind == AlertEvent::Kind::kRaised ? "R " : "C ") + e.rule + " " +
           std::to_string((e.window_start_ms - kT0) / kMinute);
}

std::vector<std::string> briefs(const std::vector<AlertEvent>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) {
        out.push_back(brief(e));
    }
    return out;
}

std::vector<AlertEvent> feed(const RuleEngine& engine, PatientState& state,
                             const std::vector<WindowInput>& windows) {
    std::vector<AlertEvent> all;
    for (const auto& w : windows) {
        for (auto& e : engine.evaluate(w, state)) {
            all.push_back(std::move(e));
        }
    }
    return all;
}

// run_minutes feeds one window per entry of `stats`, at minutes 0, 1, 2, ...
std::vector<AlertEvent> run_minutes(const RuleEngine& engine, PatientState& state,
                                    const std::vector<HeartRateStats>& stats) {
    std::vector<WindowInput> windows;
    for (std::size_t i = 0; i < stats.size(); ++i) {
        windows.push_back(minute(static_cast<int>(i), stats[i]));
    }
    return feed(engine, state, windows);
}

std::string figure(const AlertEvent& e, const std::string& name) {
    for (const auto& f : e.figures) {
        if (f.name == name) {
            return f.value;
        }
    }
    return "<no figure " + name + ">";
}

// ---------------------------------------------------------------------------------------
// Tachycardia and bradycardia

TEST(TachycardiaRuleTest, MeanMustBeAboveThreshold) {
    RuleSet rules = isolated(kRuleTachycardia);
    rules.tachycardia.common.sustained = 1;
    rules.tachycardia.min_share = 0;  // the mean half alone
    const RuleEngine engine = engine_with(rules);
    PatientState a, b;
    EXPECT_TRUE(run_minutes(engine, a, {constant(100.0)}).empty());
    auto events = run_minutes(engine, b, {constant(100.1)});
    ASSERT_EQ(briefs(events), std::vector<std::string>{"R tachycardia 0"});
    EXPECT_EQ(events[0].severity, Severity::kWarning);
    EXPECT_EQ(events[0].patient, "p1");
    EXPECT_EQ(events[0].window_id, 1);
    EXPECT_EQ(events[0].window_length_ms, kMinute);
    EXPECT_EQ(figure(events[0], "mean heart rate"), "100.1 bpm");
    EXPECT_EQ(events[0].summary, "Tachycardia for 1 min: mean heart rate 100.1 bpm");
}

TEST(TachycardiaRuleTest, ShareAtOrAboveThresholdCountsFromHalf) {
    RuleSet rules = isolated(kRuleTachycardia);
    rules.tachycardia.common.sustained = 1;
    rules.tachycardia.mean_above_bpm = 0;  // the share half alone
    const RuleEngine engine = engine_with(rules);
    PatientState below, at;
    // 29 of 60 samples at 100 bpm: 48%; the mean (95.8) is below 100 either way.
    EXPECT_TRUE(
        run_minutes(engine, below, {stats_of(concat(repeat(100, 29), repeat(90, 31)))}).empty());
    auto events = run_minutes(engine, at, {stats_of(concat(repeat(100, 30), repeat(90, 30)))});
    ASSERT_EQ(briefs(events), std::vector<std::string>{"R tachycardia 0"});
    EXPECT_EQ(figure(events[0], "share of samples >= 100 bpm"), "50%");
    EXPECT_EQ(figure(events[0], "mean heart rate"), "95.0 bpm");
}

TEST(TachycardiaRuleTest, CriticalAboveCriticalMean) {
    RuleSet rules = isolated(kRuleTachycardia);
    rules.tachycardia.common.sustained = 1;
    const RuleEngine engine = engine_with(rules);
    PatientState a, b;
    auto warning = run_minutes(engine, a, {constant(130.0)});
    auto critical = run_minutes(engine, b, {constant(130.1)});
    ASSERT_EQ(warning.size(), 1u);
    ASSERT_EQ(critical.size(), 1u);
    EXPECT_EQ(warning[0].severity, Severity::kWarning);
    EXPECT_EQ(critical[0].severity, Severity::kCritical);
    EXPECT_EQ(critical[0].summary.rfind("Severe tachycardia for 1 min: ", 0), 0u)
        << critical[0].summary;
}

TEST(BradycardiaRuleTest, MeanMustBeBelowThreshold) {
    RuleSet rules = isolated(kRuleBradycardia);
    rules.bradycardia.common.sustained = 1;
    rules.bradycardia.min_share = 0;
    const RuleEngine engine = engine_with(rules);
    PatientState a, b;
    EXPECT_TRUE(run_minutes(engine, a, {constant(50.0)}).empty());
    auto events = run_minutes(engine, b, {constant(49.9)});
    ASSERT_EQ(briefs(events), std::vector<std::string>{"R bradycardia 0"});
    EXPECT_EQ(events[0].severity, Severity::kWarning);
}

TEST(BradycardiaRuleTest, ShareBelowThresholdAndCritical) {
    RuleSet rules = isolated(kRuleBradycardia);
    rules.bradycardia.common.sustained = 1;
    const RuleEngine engine = engine_with(rules);
    PatientState below, at, critical;
    // Half the samples below 50 while the mean is exactly 50: the median half raises.
    auto events = run_minutes(engine, at, {stats_of(concat(repeat(45, 30), repeat(55, 30)))});
    ASSERT_EQ(briefs(events), std::vector<std::string>{"R bradycardia 0"});
    EXPECT_EQ(figure(events[0], "share of samples < 50 bpm"), "50%");
    EXPECT_TRUE(
        run_minutes(engine, below, {stats_of(concat(repeat(45, 29), repeat(55, 31)))}).empty());
    auto severe = run_minutes(engine, critical, {constant(39.9)});
    ASSERT_EQ(severe.size(), 1u);
    EXPECT_EQ(severe[0].severity, Severity::kCritical);
}

// ---------------------------------------------------------------------------------------
// The state machine shared by the window rules (tachycardia as the example)

TEST(RuleStateMachineTest, RaisesAfterSustainedConsecutiveWindows) {
    const RuleEngine engine = engine_with(isolated(kRuleTachycardia));  // sustained 3
    PatientState state;
    const HeartRateStats hit = constant(120), miss = constant(70);
    auto events = run_minutes(engine, state, {hit, hit, miss, hit, hit, hit});
    ASSERT_EQ(briefs(events), std::vector<std::string>{"R tachycardia 5"});
    EXPECT_EQ(figure(events[0], "windows"), "3");
    EXPECT_EQ(events[0].summary,
              "Tachycardia for 3 min: mean heart rate 120.0 bpm, 100% of readings at or above "
              "100 bpm");
    EXPECT_TRUE(state.rules.at("tachycardia").active);
    EXPECT_EQ(state.rules.at("tachycardia").last_raised_ms, kT0 + 5 * kMinute);
}

TEST(RuleStateMachineTest, DeduplicatesWhileActiveAndClearsAfterHysteresis) {
    const RuleEngine engine = engine_with(isolated(kRuleTachycardia));  // clear_after 2
    PatientState state;
    const HeartRateStats hit = constant(120), miss = constant(70);
    std::vector<HeartRateStats> windows(20, hit);
    // One miss alone does not clear; two in a row do.
    for (const auto& s : {miss, hit, miss, miss}) {
        windows.push_back(s);
    }
    auto events = run_minutes(engine, state, windows);
    ASSERT_EQ(briefs(events), (std::vector<std::string>{"R tachycardia 2", "C tachycardia 23"}));
    EXPECT_EQ(events[1].severity, Severity::kWarning);
    EXPECT_EQ(events[1].window_id, 24);
    EXPECT_EQ(events[1].summary,
              "Tachycardia resolved for 2 min: mean heart rate 70.0 bpm, 0% of readings at or "
              "above 100 bpm");
    EXPECT_FALSE(state.rules.at("tachycardia").active);
    EXPECT_EQ(state.rules.at("tachycardia").misses, 0);
}

TEST(RuleStateMachineTest, CooldownBlocksReRaiseThenRaisesWhenItEnds) {
    RuleSet rules = isolated(kRuleTachycardia);
    rules.tachycardia.common.sustained = 1;
    rules.tachycardia.common.clear_after = 1;
    rules.tachycardia.common.cooldown_ms = 10 * kMinute;
    const RuleEngine engine = engine_with(rules);
    PatientState state;
    const HeartRateStats hit = constant(120), miss = constant(70);
    std::vector<HeartRateStats> windows{hit, miss};
    for (int m = 2; m <= 9; ++m) {
        windows.push_back(hit);  // within 10 minutes of the raise at minute 0
    }
    auto events = run_minutes(engine, state, windows);
    EXPECT_EQ(briefs(events), (std::vector<std::string>{"R tachycardia 0", "C tachycardia 1"}));
    // Blocked: not active, but still counting.
    EXPECT_FALSE(state.rules.at("tachycardia").active);
    EXPECT_EQ(state.rules.at("tachycardia").hits, 8);
    // Minute 10 is exactly the cooldown after the raise: it raises, counting all 9 windows.
    auto later = engine.evaluate(minute(10, hit), state);
    ASSERT_EQ(briefs(later), std::vector<std::string>{"R tachycardia 10"});
    EXPECT_EQ(figure(later[0], "windows"), "9");
}

TEST(RuleStateMachineTest, NoRaiseAfterCooldownWhenConditionGone) {
    RuleSet rules = isolated(kRuleTachycardia);
    rules.tachycardia.common.sustained = 1;
    rules.tachycardia.common.clear_after = 1;
    rules.tachycardia.common.cooldown_ms = 10 * kMinute;
    const RuleEngine engine = engine_with(rules);
    PatientState state;
    std::vector<HeartRateStats> windows{constant(120), constant(70), constant(120)};
    for (int m = 3; m <= 12; ++m) {
        windows.push_back(constant(70));
    }
    auto events = run_minutes(engine, state, windows);
    EXPECT_EQ(briefs(events), (std::vector<std::string>{"R tachycardia 0", "C tachycardia 1"}));
}

TEST(RuleStateMachineTest, EmptyWindowsAreNeutralForHeartRateRules) {
    const RuleEngine engine{AlertingConfig{}};  // all defaults
    PatientState state;
    const HeartRateStats hit = constant(120), empty = stats_of({}), normal = constant(70);
    ASSERT_EQ(empty.samples, 0u);
    // hit, empty, hit, hit: the empty window neither resets the count nor counts.
    std::vector<HeartRateStats> windows{hit, empty, hit, hit};
    for (int i = 0; i < 5; ++i) {
        windows.push_back(empty);  // does not clear the tachycardia; is missing data
    }
    windows.push_back(normal);
    windows.push_back(normal);
    auto events = run_minutes(engine, state, windows);
    EXPECT_EQ(briefs(events), (std::vector<std::string>{"R tachycardia 3", "R missing_data 6",
                                                        "C tachycardia 10", "C missing_data 10"}));
    ASSERT_GE(events.size(), 2u);
    EXPECT_EQ(events[1].severity, Severity::kInfo);
    EXPECT_EQ(events[1].summary,
              "Too little data for 3 min: 0 of 60 expected readings in the latest window");
    // Empty windows never enter the baseline.
    EXPECT_EQ(state.baseline.size(), 5u);
}

TEST(RuleStateMachineTest, GapInWindowsRestartsTheCount) {
    const RuleEngine engine = engine_with(isolated(kRuleTachycardia));
    PatientState state;
    const HeartRateStats hit = constant(120);
    auto events =
        feed(engine, state,
             {minute(0, hit), minute(1, hit), minute(5, hit), minute(6, hit), minute(7, hit)});
    EXPECT_EQ(briefs(events), std::vector<std::string>{"R tachycardia 7"});
    EXPECT_EQ(state.last_window_end_ms, kT0 + 8 * kMinute);
}

TEST(RuleStateMachineTest, EventsFollowRuleOrder) {
    RuleSet rules = default_rules();
    rules.tachycardia.common.sustained = 1;
    rules.missing_data.common.sustained = 1;
    const RuleEngine engine = engine_with(rules);
    PatientState state;
    auto events = run_minutes(engine, state, {constant(120, 10)});
    EXPECT_EQ(briefs(events), (std::vector<std::string>{"R tachycardia 0", "R missing_data 0"}));
}

TEST(RuleStateMachineTest, DisabledRuleRaisesNothingAndForgetsItsState) {
    PatientState state;
    const RuleEngine on = engine_with(isolated(kRuleTachycardia));
    run_minutes(on, state, {constant(120), constant(120), constant(120)});
    ASSERT_TRUE(state.rules.at("tachycardia").active);
    RuleSet rules = isolated(kRuleTachycardia);
    rules.tachycardia.common.enabled = false;
    const RuleEngine off = engine_with(rules);
    EXPECT_TRUE(off.evaluate(minute(3, constant(120)), state).empty());
    EXPECT_EQ(state.rules.count("tachycardia"), 0u);
}

TEST(RuleStateMachineTest, PatientsHaveSeparateRulesAndNames) {
    AlertingConfig config;
    config.defaults = isolated(kRuleTachycardia);
    PatientConfig bed{"Bed 12", isolated(kRuleTachycardia)};
    bed.rules.tachycardia.common.sustained = 1;
    config.patients.emplace("p1", bed);
    const RuleEngine engine(config);
    EXPECT_EQ(engine.config().display_name("p1"), "Bed 12");
    EXPECT_EQ(engine.config().display_name("p2"), "p2");
    EXPECT_EQ(engine.config().rules_for("p2").tachycardia.common.sustained, 3);
    PatientState s1, s2;
    EXPECT_EQ(engine.evaluate(minute(0, constant(120), "p1"), s1).size(), 1u);
    EXPECT_TRUE(engine.evaluate(minute(0, constant(120), "p2"), s2).empty());
}

// ---------------------------------------------------------------------------------------
// Baseline deviation

// A baseline of three windows with samples {60, 70} each: n = 6, mean 65,
// sample variance (25500 - 390^2 / 6) / 5 = 30, sd = sqrt(30) = 5.477. A window at 80 bpm
// deviates by 15 bpm: z = 15 / 5.477 = 2.7386.
RuleSet baseline_rules(double z_above, double min_delta) {
    RuleSet rules = isolated(kRuleBaseline);
    rules.baseline.common.sustained = 1;
    rules.baseline.z_above = z_above;
    rules.baseline.min_delta_bpm = min_delta;
    rules.baseline.history_windows = 3;
    rules.baseline.min_history_windows = 3;
    return rules;
}

std::vector<HeartRateStats> baseline_windows() {
    const HeartRateStats history = stats_of({60, 70});
    return {history, history, history, stats_of({80, 80})};
}

TEST(BaselineRuleTest, HandComputedZScore) {
    const RuleEngine engine = engine_with(baseline_rules(2.7, 15));
    PatientState state;
    auto events = run_minutes(engine, state, baseline_windows());
    ASSERT_EQ(briefs(events), std::vector<std::string>{"R baseline_deviation 3"});
    EXPECT_EQ(events[0].severity, Severity::kInfo);
    EXPECT_EQ(figure(events[0], "baseline"), "65.0 bpm (sd 5.5, 3 windows)");
    EXPECT_EQ(figure(events[0], "difference"), "+15.0 bpm");
    EXPECT_EQ(figure(events[0], "z-score"), "2.7");
    EXPECT_EQ(events[0].summary,
              "Heart rate 15.0 bpm above this patient's baseline for 1 min: mean 80.0 bpm vs "
              "baseline 65.0 bpm, z 2.7");
    // The judged window joined the baseline afterwards; the oldest left it.
    ASSERT_EQ(state.baseline.size(), 3u);
    EXPECT_EQ(state.baseline.back(), (BaselineEntry{2, 160.0, 12800.0}));
    EXPECT_EQ(state.baseline.front(), (BaselineEntry{2, 130.0, 8500.0}));
}

TEST(BaselineRuleTest, ZAndDeltaBoundaries) {
    PatientState z_too_high, delta_too_small;
    EXPECT_TRUE(
        run_minutes(engine_with(baseline_rules(2.74, 15)), z_too_high, baseline_windows()).empty());
    EXPECT_TRUE(
        run_minutes(engine_with(baseline_rules(2.7, 15.1)), delta_too_small, baseline_windows())
            .empty());
    EXPECT_EQ(z_too_high.rules.at("baseline_deviation").hits, 0);
}

TEST(BaselineRuleTest, NotJudgedBeforeMinHistory) {
    const RuleEngine engine = engine_with(baseline_rules(0.1, 0));
    PatientState state;
    // Two history windows only (min 3): the third window is not judged, whatever it shows.
    auto events =
        run_minutes(engine, state, {stats_of({60, 70}), stats_of({60, 70}), stats_of({200, 200})});
    EXPECT_TRUE(events.empty());
    EXPECT_EQ(state.rules.at("baseline_deviation").hits, 0);
    EXPECT_EQ(state.baseline.size(), 3u);
}

// ---------------------------------------------------------------------------------------
// Irregular rhythm

TEST(IrregularRuleTest, RmssdRatioBoundary) {
    RuleSet rules = isolated(kRuleIrregular);
    rules.irregular.common.sustained = 1;
    rules.irregular.cv_above = 0;
    const RuleEngine engine = engine_with(rules);
    PatientState at, above;
    // Alternating 1075/925 ms: RMSSD 150 ms, mean 1000 ms: exactly 0.15, not above.
    EXPECT_TRUE(run_minutes(engine, at, {alternating_rr(1075, 925)}).empty());
    auto events = run_minutes(engine, above, {alternating_rr(1076, 924)});
    ASSERT_EQ(briefs(events), std::vector<std::string>{"R irregular_rhythm 0"});
    EXPECT_EQ(figure(events[0], "RMSSD"), "152 ms");
    EXPECT_EQ(figure(events[0], "RMSSD / mean RR"), "0.15");
    EXPECT_EQ(figure(events[0], "mean RR interval"), "1000 ms");
    EXPECT_EQ(figure(events[0], "RR intervals"), "60");
}

TEST(IrregularRuleTest, CoefficientOfVariationBoundary) {
    // RR rising 700, 710, ..., 1290 ms: successive differences of 10 ms (RMSSD / mean
    // 0.010) but a wide spread: mean 995, sample sd 10 * sqrt(60 * 61 / 12) = 174.64,
    // CV 0.17552.
    std::vector<std::uint32_t> rr;
    for (std::uint32_t ms = 700; ms < 1300; ms += 10) {
        rr.push_back(ms);
    }
    const HeartRateStats ramp = stats_of(repeat(60, 60), rr);
    RuleSet rules = isolated(kRuleIrregular);
    rules.irregular.common.sustained = 1;
    rules.irregular.cv_above = 0.1755;
    PatientState below, above;
    auto events = run_minutes(engine_with(rules), below, {ramp});
    ASSERT_EQ(briefs(events), std::vector<std::string>{"R irregular_rhythm 0"});
    EXPECT_EQ(figure(events[0], "CV of RR intervals"), "0.18");
    EXPECT_EQ(figure(events[0], "RMSSD / mean RR"), "0.01");
    rules.irregular.cv_above = 0.1756;
    EXPECT_TRUE(run_minutes(engine_with(rules), above, {ramp}).empty());
}

TEST(IrregularRuleTest, TooFewIntervalsIsNeutral) {
    RuleSet rules = isolated(kRuleIrregular);  // min_rr 30, sustained 3, clear_after 3
    const RuleEngine engine = engine_with(rules);
    PatientState state;
    const HeartRateStats af = alternating_rr(1300, 700), sparse = alternating_rr(1000, 1000, 29),
                         bpm_only = constant(80);
    auto events = run_minutes(engine, state, {af, sparse, af, af, sparse, bpm_only, sparse});
    // The sparse and bpm-only windows neither break the run nor clear the alert.
    EXPECT_EQ(briefs(events), std::vector<std::string>{"R irregular_rhythm 3"});
    EXPECT_TRUE(state.rules.at("irregular_rhythm").active);
    EXPECT_EQ(state.rules.at("irregular_rhythm").misses, 0);
}

// ---------------------------------------------------------------------------------------
// Missing data

TEST(MissingDataRuleTest, TooFewSamplesBoundary) {
    RuleSet rules = isolated(kRuleMissingData);
    rules.missing_data.common.sustained = 1;
    const RuleEngine engine = engine_with(rules);
    PatientState enough, too_few;
    EXPECT_TRUE(run_minutes(engine, enough, {constant(70, 30)}).empty());
    auto events = run_minutes(engine, too_few, {constant(70, 29)});
    ASSERT_EQ(briefs(events), std::vector<std::string>{"R missing_data 0"});
    EXPECT_EQ(figure(events[0], "samples"), "29 of 60 expected");
}

TEST(MissingDataRuleTest, ContactLostForMostOfTheWindow) {
    RuleSet rules = isolated(kRuleMissingData);
    rules.missing_data.common.sustained = 1;
    const RuleEngine engine = engine_with(rules);
    PatientState half, most;
    EXPECT_TRUE(run_minutes(engine, half, {stats_of(repeat(70, 40), {}, 40)}).empty());
    auto events = run_minutes(engine, most, {stats_of(repeat(70, 40), {}, 41)});
    ASSERT_EQ(briefs(events), std::vector<std::string>{"R missing_data 0"});
    EXPECT_EQ(figure(events[0], "contact lost"), "41 of 81 readings (51%)");
    EXPECT_EQ(events[0].summary,
              "Too little data for 1 min: 40 of 60 expected readings, sensor contact lost for "
              "51% of readings in the latest window");
}

// ---------------------------------------------------------------------------------------
// Device silent

TEST(DeviceSilentTest, RaisesAfterSilenceClearsOnDataAndHonoursCooldown) {
    const RuleEngine engine = engine_with(isolated(kRuleDeviceSilent));  // 10 min, cooldown 30
    PatientState state;
    EXPECT_TRUE(engine.check_silence("p1", kT0 + 3600'000, state).empty());  // never seen
    ASSERT_TRUE(engine.evaluate(minute(0, constant(70)), state).empty());
    const std::int64_t end = kT0 + kMinute;
    EXPECT_TRUE(engine.check_silence("p1", end + 10 * kMinute, state).empty());
    auto raised = engine.check_silence("p1", end + 10 * kMinute + 1, state);
    ASSERT_EQ(raised.size(), 1u);
    EXPECT_EQ(raised[0].kind, AlertEvent::Kind::kRaised);
    EXPECT_EQ(raised[0].rule, "device_silent");
    EXPECT_EQ(raised[0].severity, Severity::kWarning);
    EXPECT_EQ(raised[0].window_id, 0);
    EXPECT_EQ(raised[0].window_start_ms, end);
    EXPECT_EQ(raised[0].window_length_ms, 10 * kMinute + 1);
    EXPECT_EQ(raised[0].summary, "No data from the device for 10 min (alert after 10 min)");
    EXPECT_EQ(figure(raised[0], "last data"), "2023-11-14 22:15 UTC");
    EXPECT_TRUE(engine.check_silence("p1", end + 15 * kMinute, state).empty());  // active

    auto cleared = engine.evaluate(minute(20, constant(70)), state);
    ASSERT_EQ(cleared.size(), 1u);
    EXPECT_EQ(cleared[0].kind, AlertEvent::Kind::kCleared);
    EXPECT_EQ(cleared[0].window_id, 21);
    EXPECT_EQ(cleared[0].summary, "Device sending data again after 19 min without data");

    // Silent again 21 minutes after the raise: the 30-minute cooldown holds it back.
    const std::int64_t end2 = kT0 + 21 * kMinute;
    EXPECT_TRUE(engine.check_silence("p1", end2 + 11 * kMinute, state).empty());
    EXPECT_EQ(engine.check_silence("p1", end + 10 * kMinute + 1 + 30 * kMinute, state).size(), 1u);
}

TEST(DeviceSilentTest, OffByDefault) {
    EXPECT_FALSE(default_rules().device_silent.common.enabled);
    EXPECT_EQ(default_rules().device_silent.silent_after_ms, 10 * kMinute);
    const RuleEngine engine{AlertingConfig{}};
    PatientState state;
    ASSERT_TRUE(engine.evaluate(minute(0, constant(70)), state).empty());
    EXPECT_TRUE(engine.check_silence("p1", kT0 + 24 * 3600'000LL, state).empty());
}

// ---------------------------------------------------------------------------------------
// TOML

Result<AlertingConfig> parse_config(std::string_view text) {
    return read_alerting_config(toml::parse(text));
}

// describe writes every field of a rule set, for comparisons.
std::string describe(const RuleCommon& c) {
    return std::to_string(c.enabled) + "," + std::string(to_string(c.severity)) + "," +
           std::to_string(c.sustained) + "," + std::to_string(c.clear_after) + "," +
           std::to_string(c.cooldown_ms) + ";";
}

std::string describe(const RuleSet& r) {
    auto n = [](double v) { return std::to_string(v) + ","; };
    return describe(r.tachycardia.common) + n(r.tachycardia.mean_above_bpm) +
           n(r.tachycardia.share_threshold_bpm) + n(r.tachycardia.min_share) +
           n(r.tachycardia.critical_mean_above_bpm) + "|" + describe(r.bradycardia.common) +
           n(r.bradycardia.mean_below_bpm) + n(r.bradycardia.share_threshold_bpm) +
           n(r.bradycardia.min_share) + n(r.bradycardia.critical_mean_below_bpm) + "|" +
           describe(r.baseline.common) + n(r.baseline.z_above) +
           std::to_string(r.baseline.history_windows) + "," +
           std::to_string(r.baseline.min_history_windows) + "," + n(r.baseline.min_delta_bpm) +
           "|" + describe(r.irregular.common) + n(r.irregular.rmssd_ratio_above) +
           n(r.irregular.cv_above) + std::to_string(r.irregular.min_rr) + "|" +
           describe(r.missing_data.common) +
           std::to_string(r.missing_data.expected_sample_interval_ms) + "," +
           n(r.missing_data.min_sample_fraction) + n(r.missing_data.max_contact_lost_fraction) +
           "|" + describe(r.device_silent.common) + std::to_string(r.device_silent.silent_after_ms);
}

TEST(AlertingConfigTomlTest, ExampleFileDocumentsTheDefaults) {
    const fs::path example = cipherpulse::testing::repo_root() / "config" / "decryptor.toml";
    ASSERT_TRUE(fs::exists(example)) << example;
    auto config = read_alerting_config(toml::parse_file(example.string()));
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(describe(config.value().defaults), describe(default_rules()));
    EXPECT_TRUE(config.value().patients.empty());
}

TEST(AlertingConfigTomlTest, EmptyDocumentGivesDefaultsAndOtherTablesAreIgnored) {
    auto config = parse_config(R"(
[server]
url = "https://127.0.0.1:8443"
[notify.email]
to = ["ward@hospital.example"]
)");
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(describe(config.value().defaults), describe(default_rules()));
}

TEST(AlertingConfigTomlTest, PatientOverridesApplyOnTopOfOverriddenDefaults) {
    // The patient's tables come first in the text: the order does not matter.
    auto config = parse_config(R"(
[patients.p1]
alias = "Bed 12"

[patients.p1.rules.tachycardia]
sustained = 2

[patients.p1.rules.irregular_rhythm]
enabled = false

[patients.p3]

[rules.tachycardia]
mean_above_bpm = 110
sustained = 4
cooldown = "1h30m"
severity = "critical"

[rules.missing_data]
expected_sample_interval = "500ms"

[rules.device_silent]
silent_after = "1d"
)");
    ASSERT_TRUE(config.ok()) << config.error().message;
    const AlertingConfig& c = config.value();
    EXPECT_EQ(c.defaults.tachycardia.mean_above_bpm, 110);
    EXPECT_EQ(c.defaults.tachycardia.common.sustained, 4);
    EXPECT_EQ(c.defaults.tachycardia.common.cooldown_ms, 90 * kMinute);
    EXPECT_EQ(c.defaults.tachycardia.common.severity, Severity::kCritical);
    EXPECT_EQ(c.defaults.missing_data.expected_sample_interval_ms, 500);
    EXPECT_EQ(c.defaults.device_silent.silent_after_ms, 86'400'000);
    const RuleSet& p1 = c.rules_for("p1");
    EXPECT_EQ(p1.tachycardia.common.sustained, 2);
    EXPECT_EQ(p1.tachycardia.mean_above_bpm, 110);  // from [rules.tachycardia]
    EXPECT_EQ(p1.tachycardia.common.cooldown_ms, 90 * kMinute);
    EXPECT_FALSE(p1.irregular.common.enabled);
    EXPECT_TRUE(c.rules_for("p2").irregular.common.enabled);
    EXPECT_EQ(c.display_name("p1"), "Bed 12");
    EXPECT_EQ(c.display_name("p3"), "p3");
    EXPECT_EQ(describe(c.rules_for("p3")), describe(c.defaults));
    EXPECT_EQ(&c.rules_for("p2"), &c.defaults);

    // The engine uses them: p1 raises after 2 windows, p2 after 4.
    const RuleEngine engine(c);
    PatientState s1, s2;
    std::vector<WindowInput> w1, w2;
    for (int m = 0; m < 4; ++m) {
        w1.push_back(minute(m, constant(115), "p1"));
        w2.push_back(minute(m, constant(115), "p2"));
    }
    EXPECT_EQ(briefs(feed(engine, s1, w1)), std::vector<std::string>{"R tachycardia 1"});
    auto e2 = feed(engine, s2, w2);
    ASSERT_EQ(briefs(e2), std::vector<std::string>{"R tachycardia 3"});
    EXPECT_EQ(e2[0].severity, Severity::kCritical);
}

TEST(AlertingConfigTomlTest, ErrorsNameTheKey) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"[rules.tachycardia]\nsustained = 0", "rules.tachycardia.sustained: must be >= 1"},
        {"[rules.tachycardia]\nclear_after = -2", "rules.tachycardia.clear_after: must be >= 1"},
        {"[rules.tachycardia]\nsustained = \"3\"",
         "rules.tachycardia.sustained: must be an integer"},
        {"[rules.tachycardia]\nsustained = 2.0", "rules.tachycardia.sustained: must be an integer"},
        {"[rules.tachycardia]\nenabled = 1", "rules.tachycardia.enabled: must be true or false"},
        {"[rules.tachycardia]\nseverity = \"urgent\"",
         "rules.tachycardia.severity: must be \"info\", \"warning\" or \"critical\""},
        {"[rules.tachycardia]\nmean_above_bpm = -1",
         "rules.tachycardia.mean_above_bpm: must be between 0 and 300"},
        {"[rules.tachycardia]\nmean_above_bpm = nan",
         "rules.tachycardia.mean_above_bpm: must be between 0 and 300"},
        {"[rules.tachycardia]\nmean_above_bpm = \"100\"",
         "rules.tachycardia.mean_above_bpm: must be a number"},
        {"[rules.bradycardia]\nmin_share = 1.5",
         "rules.bradycardia.min_share: must be between 0 and 1"},
        {"[rules.tachycardia]\ncooldown = 900",
         "rules.tachycardia.cooldown: must be a duration string"},
        {"[rules.tachycardia]\ncooldown = \"15 min\"",
         "rules.tachycardia.cooldown: must be a duration string"},
        {"[rules.tachycardia]\ncooldown = \"m\"",
         "rules.tachycardia.cooldown: must be a duration string"},
        {"[rules.tachycardia]\ncooldown = \"400d\"",
         "rules.tachycardia.cooldown: must be a duration string"},
        {"[rules.missing_data]\nexpected_sample_interval = \"0s\"",
         "rules.missing_data.expected_sample_interval: must be longer than 0"},
        {"[rules.missing_data]\nmax_contact_lost_fraction = -0.1",
         "rules.missing_data.max_contact_lost_fraction: must be between 0 and 1"},
        {"[rules.irregular_rhythm]\nmin_rr = 1", "rules.irregular_rhythm.min_rr: must be >= 2"},
        {"[rules.baseline_deviation]\nhistory_windows = 20",
         "rules.baseline_deviation.min_history_windows: must be <= history_windows (20)"},
        {"[rules.baseline_deviation]\nhistory_windows = 100000",
         "rules.baseline_deviation.history_windows: must be <= 1440"},
        {"[rules.tachycardia]\nmean_abov_bpm = 100",
         "rules.tachycardia.mean_abov_bpm: unknown key (known: enabled, severity, sustained"},
        {"[rules.tachy]\nsustained = 2", "rules.tachy: unknown rule (known: tachycardia,"},
        {"rules = 3", "rules: must be a table"},
        {"[rules]\ntachycardia = 3", "rules.tachycardia: must be a table"},
        {"patients = []", "patients: must be a table"},
        {"[patients]\np1 = \"x\"", "patients.p1: must be a table"},
        {"[patients.p1]\nalias = 5", "patients.p1.alias: must be a non-empty string"},
        {"[patients.p1]\nbed = 5", "patients.p1.bed: unknown key (known: alias, rules)"},
        {"[patients.p1.rules.tachycardia]\nsustained = 0",
         "patients.p1.rules.tachycardia.sustained: must be >= 1"},
        {"[patients.p1.rules.sleep]\nenabled = true", "patients.p1.rules.sleep: unknown rule"},
    };
    for (const auto& [text, expected] : cases) {
        auto config = parse_config(text);
        ASSERT_FALSE(config.ok()) << text;
        EXPECT_EQ(config.error().code, ErrorCode::kInvalidEncoding) << text;
        EXPECT_EQ(config.error().message.rfind("configuration: " + expected, 0), 0u)
            << text << "\n  gave: " << config.error().message;
    }
}

TEST(AlertingConfigTomlTest, DurationsAndZeroes) {
    auto config = parse_config(R"(
[rules.tachycardia]
cooldown = "0s"
[rules.bradycardia]
cooldown = "2h"
[rules.baseline_deviation]
cooldown = "90s"
[rules.irregular_rhythm]
cooldown = "1d2h3m4s5ms"
[rules.device_silent]
silent_after = "0s"
)");
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config.value().defaults.tachycardia.common.cooldown_ms, 0);
    EXPECT_EQ(config.value().defaults.bradycardia.common.cooldown_ms, 7'200'000);
    EXPECT_EQ(config.value().defaults.baseline.common.cooldown_ms, 90'000);
    EXPECT_EQ(config.value().defaults.irregular.common.cooldown_ms,
              86'400'000 + 7'200'000 + 180'000 + 4'000 + 5);
    EXPECT_EQ(config.value().defaults.device_silent.silent_after_ms, 0);
}

// A window with a few samples beyond a threshold raises nothing but marks the patient for
// attention (the decryptor opens such patients' next windows first); a normal window, with
// no rule counting towards a raise, clears the mark.
TEST(RuleEngineTest, SignsWithoutARaiseMarkThePatientForAttention) {
    const RuleEngine engine = engine_with(default_rules());
    PatientState state;
    EXPECT_TRUE(engine.evaluate(minute(0, constant(70)), state).empty());
    EXPECT_FALSE(state.attention);
    // 2 of 60 samples at 150: far from a raise (mean 72.7, 3% at or above 100).
    EXPECT_TRUE(engine.evaluate(minute(1, stats_of(concat(repeat(70, 58), repeat(150, 2)))), state)
                    .empty());
    EXPECT_TRUE(state.attention);
    EXPECT_TRUE(engine.evaluate(minute(2, constant(70)), state).empty());
    EXPECT_FALSE(state.attention);
    // Below the bradycardia threshold too.
    EXPECT_TRUE(
        engine.evaluate(minute(3, stats_of(concat(repeat(70, 57), repeat(45, 3)))), state).empty());
    EXPECT_TRUE(state.attention);
    // A rule counting windows towards a raise (tachycardia needs 3) keeps the mark.
    EXPECT_TRUE(engine.evaluate(minute(4, constant(120)), state).empty());
    EXPECT_TRUE(state.attention);
    EXPECT_EQ(state.rules.at("tachycardia").hits, 1);
}

// ---------------------------------------------------------------------------------------
// PatientState JSON

TEST(PatientStateJsonTest, RoundTripsExactly) {
    PatientState state;
    state.rules["tachycardia"] = RuleState{3, 1, true, -5};
    state.rules["bradycardia"] = RuleState{0, 0, false, std::nullopt};
    state.rules["irregular_rhythm"] = RuleState{std::numeric_limits<int>::max(), 0, false, 0};
    state.baseline.push_back({60, 4512.3, 339876.45});
    state.baseline.push_back({1, 0.1 + 0.2, 1e-300});
    state.baseline.push_back(
        {std::numeric_limits<std::uint64_t>::max(), 1.7976931348623157e308, 0});
    state.last_window_end_ms = std::numeric_limits<std::int64_t>::max();
    state.attention = true;
    const std::string text = state.to_json();
    auto back = PatientState::from_json(text);
    ASSERT_TRUE(back.ok()) << back.error().message << "\n" << text;
    EXPECT_EQ(back.value(), state);
    EXPECT_EQ(back.value().to_json(), text);

    EXPECT_EQ(PatientState{}.to_json(), R"({"baseline":[],"rules":{},"v":1})");
    auto empty = PatientState::from_json(PatientState{}.to_json());
    ASSERT_TRUE(empty.ok());
    EXPECT_EQ(empty.value(), PatientState{});
}

TEST(PatientStateJsonTest, RefusesMalformedText) {
    const std::vector<std::string> bad = {
        "",
        "null",
        "[]",
        "{",
        R"({"baseline":[],"rules":{},"v":1} x)",
        R"({})",
        R"({"baseline":[],"rules":{}})",
        R"({"baseline":[],"rules":{},"v":2})",
        R"({"baseline":[],"rules":{},"v":"1"})",
        R"({"baseline":[],"rules":[],"v":1})",
        R"({"baseline":{},"rules":{},"v":1})",
        R"({"baseline":[],"rules":{},"v":1,"extra":0})",
        R"({"baseline":[],"rules":{},"v":1,"attention":1})",
        R"({"baseline":[],"rules":{"t":{"hits":-1,"misses":0,"active":false}},"v":1})",
        R"({"baseline":[],"rules":{"t":{"hits":2147483648,"misses":0,"active":false}},"v":1})",
        R"({"baseline":[],"rules":{"t":{"hits":1.5,"misses":0,"active":false}},"v":1})",
        R"({"baseline":[],"rules":{"t":{"hits":1,"misses":0,"active":"yes"}},"v":1})",
        R"({"baseline":[],"rules":{"t":{"hits":1,"active":false}},"v":1})",
        R"({"baseline":[],"rules":{"t":{"hits":1,"misses":0,"active":false,"x":1}},"v":1})",
        R"({"baseline":[],"rules":{"t":{"hits":1,"misses":0,"active":false,)"
        R"("last_raised_ms":1e3}},"v":1})",
        R"({"baseline":[],"rules":{"":{"hits":1,"misses":0,"active":false}},"v":1})",
        R"({"baseline":[],"rules":{"t":3},"v":1})",
        R"({"baseline":[[1,2]],"rules":{},"v":1})",
        R"({"baseline":[[1,2,3,4]],"rules":{},"v":1})",
        R"({"baseline":[["1",2,3]],"rules":{},"v":1})",
        R"({"baseline":[[-1,2,3]],"rules":{},"v":1})",
        R"({"baseline":[[1.5,2,3]],"rules":{},"v":1})",
        R"({"baseline":[[1,-2,3]],"rules":{},"v":1})",
        R"({"baseline":[[1,2,1e400]],"rules":{},"v":1})",
        R"({"baseline":[[1,2,null]],"rules":{},"v":1})",
        R"({"baseline":[],"rules":{},"v":1,"last_window_end_ms":"5"})",
        R"({"baseline":[],"rules":{},"v":1,"last_window_end_ms":9223372036854775808})",
    };
    for (const auto& text : bad) {
        Result<PatientState> parsed = Error{ErrorCode::kIo, "not run"};
        EXPECT_NO_THROW(parsed = PatientState::from_json(text)) << text;
        ASSERT_FALSE(parsed.ok()) << text;
        EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidEncoding) << text;
    }
}

// ---------------------------------------------------------------------------------------
// Real recordings (shared/data/real), replayed as the edge does: the replay source, 5 s
// micro-windows with the default filter, the recording's last micro-window flushed as
// `cipherpulse-edge run` does, and the micro-window records of each minute summed into one
// 1-minute window as the server's aggregate would be.

fs::path data_dir() {
    return cipherpulse::testing::repo_root() / ".." / "shared" / "data" / "real";
}

#define REQUIRE_DATA()                                                         \
    if (!fs::is_directory(data_dir())) {                                       \
        GTEST_SKIP() << "real data folder missing: " << data_dir().string()    \
                     << " (set CIPHERPULSE_REPO_ROOT to the repository root)"; \
    }

// replay_minutes returns the 1-minute windows of `file`, started at kT0: window i covers
// minute i of the recording's own time axis.
std::vector<WindowInput> replay_minutes(const std::string& file) {
    auto source = edge::open_replay_source(data_dir() / file, kT0);
    EXPECT_TRUE(source.ok()) << file << ": " << (source.ok() ? "" : source.error().message);
    if (!source.ok()) {
        return {};
    }
    edge::MicroWindows micro(5000, edge::FilterRules{});
    std::map<std::int64_t, HeartRateStats> minutes;
    auto add = [&](const std::vector<edge::WindowRecord>& records) {
        for (const auto& r : records) {
            minutes[r.start_ms - (r.start_ms - kT0) % kMinute] += r.stats;
        }
    };
    std::int64_t last = 0;
    while (auto reading = source.value()->next()) {
        last = reading->t_ms;
        add(micro.add(*reading));
    }
    add(micro.flush_until(last - last % 5000 + 5000));
    std::vector<WindowInput> windows;
    for (const auto& [start, stats] : minutes) {
        const std::int64_t index = (start - kT0) / kMinute;
        windows.push_back(WindowInput{index + 1, "rec", start, kMinute, stats});
    }
    return windows;
}

struct Replayed {
    std::vector<WindowInput> windows;
    std::vector<AlertEvent> events;
    PatientState state;
};

Replayed replay_with_defaults(const std::string& file) {
    Replayed r;
    r.windows = replay_minutes(file);
    const RuleEngine engine{AlertingConfig{}};
    r.events = feed(engine, r.state, r.windows);
    return r;
}

const AlertEvent& first_raise(const Replayed& r, std::string_view rule) {
    for (const auto& e : r.events) {
        if (e.rule == rule && e.kind == AlertEvent::Kind::kRaised) {
            return e;
        }
    }
    static const AlertEvent none;
    ADD_FAILURE() << "no " << rule << " raised";
    return none;
}

std::vector<std::string> raised_rules(const Replayed& r) {
    std::vector<std::string> rules;
    for (const auto& e : r.events) {
        if (e.kind == AlertEvent::Kind::kRaised &&
            std::find(rules.begin(), rules.end(), e.rule) == rules.end()) {
            rules.push_back(e.rule);
        }
    }
    std::sort(rules.begin(), rules.end());
    return rules;
}

TEST(RealRecordingTest, NormalSinusRhythm100RaisesNothing) {
    REQUIRE_DATA();
    for (const std::string file : {"mitdb_100_rr_ms.csv", "mitdb_100_bpm_1hz.csv"}) {
        Replayed r = replay_with_defaults(file);
        ASSERT_EQ(r.windows.size(), 31u) << file;  // 30 min + the recording's last 6-8 s
        EXPECT_TRUE(r.events.empty()) << file << ": " << ::testing::PrintToString(briefs(r.events));
        // The short last window is missing data once: below `sustained`, so no alert.
        EXPECT_LT(r.windows.back().stats.samples, 10u) << file;
        EXPECT_EQ(r.state.rules.at("missing_data").hits, 1) << file;
        // With 30 full windows behind it the baseline judged the last one, quietly.
        EXPECT_EQ(r.state.baseline.size(), 31u) << file;
    }
}

TEST(RealRecordingTest, Mitdb208RaisesTachycardia) {
    REQUIRE_DATA();
    Replayed rr = replay_with_defaults("mitdb_208_rr_ms.csv");
    // Per-beat replay: rate above 100 from the start; its frequent PVCs (ventricular
    // trigeminy) are an irregular rhythm too.
    EXPECT_EQ(briefs(rr.events), (std::vector<std::string>{
                                     "R tachycardia 2", "R irregular_rhythm 2", "C tachycardia 17",
                                     "R tachycardia 21", "C tachycardia 27"}));
    const AlertEvent& tachy = first_raise(rr, kRuleTachycardia);
    EXPECT_EQ(tachy.severity, Severity::kWarning);
    EXPECT_EQ(figure(tachy, "mean heart rate"), "104.4 bpm");
    EXPECT_EQ(figure(tachy, "share of samples >= 100 bpm"), "62%");
    EXPECT_EQ(figure(first_raise(rr, kRuleIrregular), "RMSSD / mean RR"), "0.32");

    // Watch-like 1 Hz replay of the same recording (no RR intervals: rhythm not judged).
    Replayed hz = replay_with_defaults("mitdb_208_bpm_1hz.csv");
    EXPECT_EQ(briefs(hz.events),
              (std::vector<std::string>{"R tachycardia 5", "C tachycardia 8", "R tachycardia 21",
                                        "C tachycardia 27"}));
    EXPECT_EQ(figure(first_raise(hz, kRuleTachycardia), "mean heart rate"), "105.7 bpm");
}

TEST(RealRecordingTest, Svdb800RaisesBradycardia) {
    REQUIRE_DATA();
    for (const std::string file : {"svdb_800_rr_ms.csv", "svdb_800_bpm_1hz.csv"}) {
        Replayed r = replay_with_defaults(file);
        EXPECT_EQ(briefs(r.events),
                  (std::vector<std::string>{"R bradycardia 18", "C bradycardia 20"}))
            << file;
        const AlertEvent& brady = first_raise(r, kRuleBradycardia);
        EXPECT_EQ(brady.severity, Severity::kWarning) << file;
        // The mean stays just above 50 (ectopic beats); most samples are below it.
        const double mean = *r.windows[18].stats.mean_bpm();
        EXPECT_GT(mean, 50.0) << file;
        EXPECT_LT(mean, 52.0) << file;
        EXPECT_GE(*r.windows[18].stats.share_below(50), 0.5) << file;
    }
}

TEST(RealRecordingTest, Afdb03665RaisesIrregularRhythmAtAtrialFibrillation) {
    REQUIRE_DATA();
    // The RR excerpt covers t = 9000-14400 s: sinus rhythm, then AF with a fast ventricular
    // response from about minute 194.
    Replayed r = replay_with_defaults("afdb_03665_rr_ms.csv");
    ASSERT_EQ(r.windows.size(), 90u);
    EXPECT_EQ(r.windows.front().start_ms, kT0 + 150 * kMinute);
    EXPECT_EQ(briefs(r.events),
              (std::vector<std::string>{"R tachycardia 196", "R irregular_rhythm 196"}));
    const AlertEvent& af = first_raise(r, kRuleIrregular);
    EXPECT_EQ(figure(af, "RMSSD / mean RR"), "0.25");
    EXPECT_EQ(figure(af, "CV of RR intervals"), "0.19");
    EXPECT_EQ(figure(af, "windows"), "3");
    EXPECT_TRUE(r.state.rules.at("irregular_rhythm").active);  // AF lasts to the end
}

TEST(RealRecordingTest, NormalSinusRhythmRecordsKeepRhythmQuiet) {
    REQUIRE_DATA();
    // RR excerpts of two 24 h Holter records of healthy adults: never an irregular rhythm
    // nor bradycardia. nsr004's excerpt holds a genuine rise above 100 bpm (activity).
    Replayed nsr004 = replay_with_defaults("nsr2db_nsr004_rr_ms.csv");
    EXPECT_EQ(briefs(nsr004.events),
              (std::vector<std::string>{"R tachycardia 993", "C tachycardia 997",
                                        "R tachycardia 1008", "C tachycardia 1012"}));
    Replayed nsr009 = replay_with_defaults("nsr2db_nsr009_rr_ms.csv");
    EXPECT_TRUE(nsr009.events.empty()) << ::testing::PrintToString(briefs(nsr009.events));

    // The whole days at 1 Hz: tachycardia during daytime activity (5 episodes of 3-19 min
    // above 100 bpm each), a baseline deviation with one of them, and in nsr009 one
    // 2-minute spell at night with most samples below 50 bpm: genuine episodes by the
    // definitions, not artefacts.
    Replayed day004 = replay_with_defaults("nsr2db_nsr004_bpm_1hz.csv");
    EXPECT_EQ(raised_rules(day004), std::vector<std::string>{"tachycardia"});
    Replayed day009 = replay_with_defaults("nsr2db_nsr009_bpm_1hz.csv");
    EXPECT_EQ(raised_rules(day009),
              (std::vector<std::string>{"baseline_deviation", "bradycardia", "tachycardia"}));
    const AlertEvent& night = first_raise(day009, kRuleBradycardia);
    EXPECT_EQ(brief(night), "R bradycardia 1152");
    EXPECT_EQ(figure(night, "mean heart rate"), "50.2 bpm");
}

TEST(RealRecordingTest, EvaluationIsDeterministicAndSurvivesStoredState) {
    REQUIRE_DATA();
    const std::vector<WindowInput> windows = replay_minutes("afdb_03665_rr_ms.csv");
    const RuleEngine engine{AlertingConfig{}};
    PatientState first, second;
    const auto a = feed(engine, first, windows);
    // Second run: the state goes through its JSON between every two windows, as the
    // decryptor stores it.
    std::vector<AlertEvent> b;
    std::string stored = second.to_json();
    for (const auto& w : windows) {
        auto loaded = PatientState::from_json(stored);
        ASSERT_TRUE(loaded.ok()) << loaded.error().message;
        PatientState state = std::move(loaded).value();
        for (auto& e : engine.evaluate(w, state)) {
            b.push_back(std::move(e));
        }
        stored = state.to_json();
    }
    ASSERT_EQ(a.size(), b.size());
    ASSERT_FALSE(a.empty());
    for (std::size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].kind, b[i].kind);
        EXPECT_EQ(a[i].rule, b[i].rule);
        EXPECT_EQ(a[i].severity, b[i].severity);
        EXPECT_EQ(a[i].window_id, b[i].window_id);
        EXPECT_EQ(a[i].summary, b[i].summary);
        ASSERT_EQ(a[i].figures.size(), b[i].figures.size());
        for (std::size_t k = 0; k < a[i].figures.size(); ++k) {
            EXPECT_EQ(a[i].figures[k].name, b[i].figures[k].name);
            EXPECT_EQ(a[i].figures[k].value, b[i].figures[k].value);
        }
    }
    EXPECT_EQ(stored, first.to_json());
    auto reloaded = PatientState::from_json(stored);
    ASSERT_TRUE(reloaded.ok());
    EXPECT_EQ(reloaded.value(), first);
}

}  // namespace
}  // namespace cipherpulse::decryptor
