#include "edge/simulator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace cipherpulse::edge {
namespace {

using Kind = Episode::Kind;

constexpr std::int64_t kSecond = 1000;
constexpr std::int64_t kMinute = 60 * kSecond;
constexpr std::int64_t kHour = 60 * kMinute;
constexpr std::int64_t kStart = 1704067200000;  // 2024-01-01T00:00:00Z

// A patient without activity bursts, so that episode windows compare against a calm rhythm.
PatientProfile calm_profile() {
    PatientProfile profile;
    profile.activity_bursts_per_hour = 0;
    return profile;
}

std::vector<Episode> script(std::string_view text) {
    auto episodes = parse_episodes(text);
    EXPECT_TRUE(episodes.ok()) << text << ": " << (episodes.ok() ? "" : episodes.error().message);
    return episodes.ok() ? episodes.value() : std::vector<Episode>{};
}

std::vector<Reading> drain(Simulator& sim) {
    std::vector<Reading> readings;
    while (auto reading = sim.next()) {
        readings.push_back(std::move(*reading));
    }
    return readings;
}

std::vector<Reading> simulate(const PatientProfile& profile, std::string_view episodes,
                              std::uint64_t seed, std::int64_t start_ms, std::int64_t duration_ms,
                              SampleMode mode = SampleMode::kBeat) {
    auto sim =
        Simulator::for_duration(profile, script(episodes), seed, start_ms, duration_ms, mode);
    return drain(sim);
}

auto as_tuples(const std::vector<Reading>& readings) {
    std::vector<std::tuple<std::int64_t, std::optional<double>, std::vector<std::uint32_t>, bool>>
        tuples;
    for (const Reading& r : readings) {
        tuples.emplace_back(r.t_ms, r.bpm, r.rr_ms, r.contact);
    }
    return tuples;
}

// Window statistics over readings with from <= t < to.
struct Stats {
    std::size_t readings = 0;
    double mean_bpm = 0;
    double mean_rr = 0;
    double cv = 0;             // SD(RR) / mean(RR)
    double rmssd_over_rr = 0;  // RMSSD / mean(RR)
};

Stats window(const std::vector<Reading>& readings, std::int64_t from, std::int64_t to) {
    Stats s;
    double sum_bpm = 0;
    std::vector<double> rr;
    for (const Reading& r : readings) {
        if (r.t_ms < from || r.t_ms >= to || !r.bpm) {
            continue;
        }
        ++s.readings;
        sum_bpm += *r.bpm;
        rr.insert(rr.end(), r.rr_ms.begin(), r.rr_ms.end());
    }
    if (s.readings == 0 || rr.size() < 2) {
        return s;
    }
    s.mean_bpm = sum_bpm / static_cast<double>(s.readings);
    double sum = 0;
    double sum_sq = 0;
    double sum_sq_diff = 0;
    for (std::size_t i = 0; i < rr.size(); ++i) {
        sum += rr[i];
        sum_sq += rr[i] * rr[i];
        if (i > 0) {
            sum_sq_diff += (rr[i] - rr[i - 1]) * (rr[i] - rr[i - 1]);
        }
    }
    auto n = static_cast<double>(rr.size());
    s.mean_rr = sum / n;
    s.cv = std::sqrt(std::max(0.0, sum_sq / n - s.mean_rr * s.mean_rr)) / s.mean_rr;
    s.rmssd_over_rr = std::sqrt(sum_sq_diff / (n - 1)) / s.mean_rr;
    return s;
}

// minute_means returns the mean bpm of each of `minutes` minutes from `from` (0 if none).
std::vector<double> minute_means(const std::vector<Reading>& readings, std::int64_t from,
                                 std::size_t minutes) {
    std::vector<double> sum(minutes, 0.0);
    std::vector<double> count(minutes, 0.0);
    for (const Reading& r : readings) {
        if (r.bpm && r.t_ms >= from &&
            r.t_ms < from + static_cast<std::int64_t>(minutes) * kMinute) {
            auto m = static_cast<std::size_t>((r.t_ms - from) / kMinute);
            sum[m] += *r.bpm;
            count[m] += 1;
        }
    }
    for (std::size_t m = 0; m < minutes; ++m) {
        sum[m] = count[m] > 0 ? sum[m] / count[m] : 0.0;
    }
    return sum;
}

// --- Script parser --------------------------------------------------------------------------

TEST(EpisodeScriptTest, ParsesTheExampleScript) {
    auto episodes = parse_episodes(
        "tachycardia@10m+5m:150, bradycardia@30m+10m:42, irregular@1h+20m, "
        "contact-loss@2h+1m, dropout@3h+30s");
    ASSERT_TRUE(episodes.ok()) << episodes.error().message;
    std::vector<Episode> expected{
        {Kind::kTachycardia, 10 * kMinute, 5 * kMinute, 150},
        {Kind::kBradycardia, 30 * kMinute, 10 * kMinute, 42},
        {Kind::kIrregular, kHour, 20 * kMinute, 0},
        {Kind::kContactLoss, 2 * kHour, kMinute, 0},
        {Kind::kDropout, 3 * kHour, 30 * kSecond, 0},
    };
    EXPECT_EQ(episodes.value(), expected);
}

TEST(EpisodeScriptTest, CompoundAndFractionalUnitsAndBlankInput) {
    auto episodes = parse_episodes("  irregular @ 1h30m + 1.5m : 110 ,dropout@0s+90s");
    ASSERT_TRUE(episodes.ok()) << episodes.error().message;
    ASSERT_EQ(episodes.value().size(), 2u);
    EXPECT_EQ(episodes.value()[0], (Episode{Kind::kIrregular, 90 * kMinute, 90 * kSecond, 110}));
    EXPECT_EQ(episodes.value()[1], (Episode{Kind::kDropout, 0, 90 * kSecond, 0}));
    ASSERT_TRUE(parse_episodes("").ok());
    EXPECT_TRUE(parse_episodes(" \t").value().empty());
    // A sensor episode may fall inside a rhythm episode.
    EXPECT_TRUE(parse_episodes("tachycardia@10m+10m, contact-loss@12m+1m").ok());
}

TEST(EpisodeScriptTest, RefusesBadInputWithAClearMessage) {
    struct Case {
        const char* script;
        ErrorCode code;
        const char* says;
    };
    const Case cases[] = {
        {"tachy@x", ErrorCode::kUnsupported, "unknown episode kind \"tachy\""},
        {"tachycardia@x+5m", ErrorCode::kInvalidEncoding, "offset \"x\""},
        {"tachycardia@10m+-5m", ErrorCode::kOutOfRange, "must not be negative"},
        {"tachycardia@-1m+5m", ErrorCode::kOutOfRange, "offset \"-1m\" must not be negative"},
        {"dropout@1m+0s", ErrorCode::kOutOfRange, "duration must be positive"},
        {"tachycardia@10m", ErrorCode::kInvalidEncoding, "missing +duration"},
        {"tachycardia 10m+5m", ErrorCode::kInvalidEncoding, "expected kind@offset+duration"},
        {"tachycardia@10+5m", ErrorCode::kInvalidEncoding, "needs a unit"},
        {"tachycardia@10x+5m", ErrorCode::kInvalidEncoding, "unknown unit 'x'"},
        {"tachycardia@1.2.3m+5m", ErrorCode::kInvalidEncoding, "expected a number"},
        {"tachycardia@10m+5m:abc", ErrorCode::kInvalidEncoding, "target rate"},
        {"tachycardia@10m+5m:250", ErrorCode::kOutOfRange, "tachycardia target must be 100-220"},
        {"tachycardia@10m+5m:80", ErrorCode::kOutOfRange, "tachycardia target"},
        {"bradycardia@10m+5m:70", ErrorCode::kOutOfRange, "bradycardia target must be 30-60"},
        {"contact-loss@1m+1m:40", ErrorCode::kOutOfRange, "contact-loss takes no target"},
        {"dropout@1m+99999h", ErrorCode::kOutOfRange, "too long"},
        {"tachycardia@10m+5m,,dropout@1h+1m", ErrorCode::kInvalidEncoding, "episode 2 is empty"},
        {"tachycardia@10m+5m,", ErrorCode::kInvalidEncoding, "episode 2 is empty"},
        {"tachycardia@10m+10m, bradycardia@15m+5m:40", ErrorCode::kOutOfRange,
         "episodes 1 (tachycardia@10m+10m) and 2 (bradycardia@15m+5m) overlap"},
        {"dropout@1m+1m, contact-loss@1m30s+1m", ErrorCode::kOutOfRange,
         "sensor episodes must not overlap"},
    };
    for (const Case& c : cases) {
        auto result = parse_episodes(c.script);
        ASSERT_FALSE(result.ok()) << c.script;
        EXPECT_EQ(result.error().code, c.code) << c.script << ": " << result.error().message;
        EXPECT_NE(result.error().message.find(c.says), std::string::npos)
            << c.script << ": " << result.error().message;
    }
    // The message names the item it refers to.
    auto bad = parse_episodes("dropout@1m+1m, tachycardia@5m+1m:300");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("episode 2 \"tachycardia@5m+1m:300\""), std::string::npos)
        << bad.error().message;
}

// --- Profiles -------------------------------------------------------------------------------

TEST(PatientProfileTest, PresetsAndValidation) {
    std::vector<std::string_view> names(patient_profile_names().begin(),
                                        patient_profile_names().end());
    EXPECT_EQ(names, (std::vector<std::string_view>{"healthy", "athlete", "elderly"}));
    for (std::string_view name : names) {
        auto profile = patient_profile(name);
        ASSERT_TRUE(profile.ok()) << name;
        EXPECT_TRUE(validate_profile(profile.value()).ok()) << name;
    }
    EXPECT_EQ(patient_profile("healthy").value(), PatientProfile{});
    EXPECT_LT(patient_profile("athlete").value().resting_bpm, PatientProfile{}.resting_bpm);
    EXPECT_GT(patient_profile("athlete").value().hrv_sd_ms, PatientProfile{}.hrv_sd_ms);
    EXPECT_LT(patient_profile("elderly").value().hrv_sd_ms, PatientProfile{}.hrv_sd_ms);
    auto unknown = patient_profile("marathoner");
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.error().code, ErrorCode::kUnsupported);

    PatientProfile bad;
    bad.hrv_sd_ms = -1;
    EXPECT_FALSE(validate_profile(bad).ok());
    bad = PatientProfile{};
    bad.resting_bpm = std::nan("");
    EXPECT_FALSE(validate_profile(bad).ok());
    bad = PatientProfile{};
    bad.resting_bpm = 33;  // 33 - 6 would fall below 30 bpm at night
    EXPECT_FALSE(validate_profile(bad).ok());
}

TEST(SimulatorTest, RefusesInvalidConfiguration) {
    PatientProfile bad;
    bad.activity_bursts_per_hour = -1;
    EXPECT_THROW(Simulator(bad, {}, 1, kStart, kStart + kHour), std::invalid_argument);
    EXPECT_THROW(Simulator(PatientProfile{}, {}, 1, kStart, kStart), std::invalid_argument);
    std::vector<Episode> overlapping{{Kind::kTachycardia, 0, kMinute, 150},
                                     {Kind::kIrregular, 30 * kSecond, kMinute, 0}};
    EXPECT_THROW(Simulator(PatientProfile{}, overlapping, 1, kStart, kStart + kHour),
                 std::invalid_argument);
    EXPECT_THROW(Simulator::for_duration(PatientProfile{}, {}, 1, kStart, 0),
                 std::invalid_argument);
}

// --- Determinism and shape of the stream ----------------------------------------------------

TEST(SimulatorTest, SameSeedSameSequenceDifferentSeedDifferent) {
    const char* episodes = "tachycardia@10m+5m, irregular@20m+5m, contact-loss@30m+1m";
    for (SampleMode mode : {SampleMode::kBeat, SampleMode::kWatch}) {
        auto a = simulate(PatientProfile{}, episodes, 42, kStart, kHour, mode);
        auto b = simulate(PatientProfile{}, episodes, 42, kStart, kHour, mode);
        auto c = simulate(PatientProfile{}, episodes, 43, kStart, kHour, mode);
        ASSERT_GT(a.size(), 3000u);
        EXPECT_EQ(as_tuples(a), as_tuples(b));
        EXPECT_NE(as_tuples(a), as_tuples(c));
    }
}

TEST(SimulatorTest, TimestampsStrictlyIncreaseAndRatesStayPlausible) {
    auto profile = patient_profile("athlete").value();
    profile.activity_bursts_per_hour = 6;  // plenty of bursts on top of episodes
    const char* episodes =
        "tachycardia@10m+20m:210, bradycardia@40m+10m:30, irregular@1h+30m:180, "
        "contact-loss@15m+2m, dropout@1h10m+45s";
    auto readings = simulate(profile, episodes, 7, kStart + 8 * kHour, 2 * kHour);
    ASSERT_GT(readings.size(), 5000u);
    std::size_t contiguous = 0;
    std::size_t beats = 0;
    const Reading* previous_beat = nullptr;
    for (std::size_t i = 0; i < readings.size(); ++i) {
        const Reading& r = readings[i];
        if (i > 0) {
            ASSERT_GT(r.t_ms, readings[i - 1].t_ms) << i;
        }
        ASSERT_GE(r.t_ms, kStart + 8 * kHour);
        ASSERT_LT(r.t_ms, kStart + 10 * kHour);
        if (!r.contact) {
            continue;
        }
        ASSERT_TRUE(r.bpm.has_value());
        ASSERT_EQ(r.rr_ms.size(), 1u);
        EXPECT_GE(*r.bpm, 30.0);
        EXPECT_LE(*r.bpm, 220.0);
        EXPECT_DOUBLE_EQ(*r.bpm, 60000.0 / r.rr_ms[0]);
        if (previous_beat != nullptr) {
            // An RR interval starts no earlier than the previous reported beat.
            EXPECT_GE(r.t_ms - r.rr_ms[0], previous_beat->t_ms);
            contiguous += r.t_ms - r.rr_ms[0] == previous_beat->t_ms ? 1 : 0;
        }
        previous_beat = &r;
        ++beats;
    }
    // Apart from the two gaps, consecutive beats are one RR interval apart.
    EXPECT_GE(contiguous + 3, beats);
}

TEST(SimulatorTest, EndlessSourceKeepsGoing) {
    Simulator sim(PatientProfile{}, {}, 5, kStart, Simulator::kNoEnd, SampleMode::kWatch);
    for (int i = 1; i <= 20000; ++i) {
        auto reading = sim.next();
        ASSERT_TRUE(reading.has_value()) << i;
        ASSERT_EQ(reading->t_ms, kStart + i * kSecond);
    }
}

// --- Normal rhythm --------------------------------------------------------------------------

TEST(SimulatorTest, RestingMeanMatchesProfile) {
    for (std::uint64_t seed : {1, 2, 3}) {
        // 09:30-10:30 UTC: the circadian term averages to zero around 10:00.
        auto readings =
            simulate(calm_profile(), "", seed, kStart + 9 * kHour + 30 * kMinute, kHour);
        Stats s = window(readings, 0, std::numeric_limits<std::int64_t>::max());
        EXPECT_NEAR(s.mean_bpm, 65.0, 3.0) << "seed " << seed;
        EXPECT_GT(s.readings, 3500u);
        // Healthy sinus rhythm: some variability, far from AF-like.
        EXPECT_GT(s.rmssd_over_rr, 0.02) << "seed " << seed;
        EXPECT_LT(s.cv, 0.10) << "seed " << seed;
    }
}

TEST(SimulatorTest, CircadianSwingPeaksLateAfternoon) {
    auto readings = simulate(calm_profile(), "", 11, kStart, 24 * kHour);
    auto hour_mean = [&](std::int64_t centre) {
        return window(readings, kStart + centre - 30 * kMinute, kStart + centre + 30 * kMinute)
            .mean_bpm;
    };
    // 2 x 6 bpm, less 0.3 % for averaging the cosine over an hour.
    EXPECT_NEAR(hour_mean(16 * kHour) - hour_mean(4 * kHour), 12.0, 2.5);
    EXPECT_NEAR(hour_mean(10 * kHour) - hour_mean(22 * kHour), 0.0, 2.5);

    // Local time follows utc_offset_minutes: at UTC+6 the peak is at 10:00 UTC.
    PatientProfile shifted = calm_profile();
    shifted.utc_offset_minutes = 6 * 60;
    readings = simulate(shifted, "", 11, kStart, 24 * kHour);
    EXPECT_NEAR(hour_mean(10 * kHour) - hour_mean(22 * kHour), 12.0, 2.5);
    EXPECT_NEAR(hour_mean(16 * kHour) - hour_mean(4 * kHour), 0.0, 2.5);
}

TEST(SimulatorTest, ActivityBurstsRaiseTheRateOnlyWhileAwake) {
    PatientProfile active;
    active.activity_bursts_per_hour = 2;
    auto with = minute_means(simulate(active, "", 3, kStart, 24 * kHour), kStart, 24 * 60);
    auto without =
        minute_means(simulate(calm_profile(), "", 3, kStart, 24 * kHour), kStart, 24 * 60);
    std::size_t raised = 0;
    for (std::size_t m = 7 * 60; m < 23 * 60; ++m) {
        raised += with[m] - without[m] > 15 ? 1 : 0;
    }
    EXPECT_GT(raised, 16u * 60 / 10) << "fewer than 10 % of waking minutes were active";
    for (std::size_t m = 0; m < 7 * 60; ++m) {
        ASSERT_LT(std::abs(with[m] - without[m]), 8.0) << "minute " << m << " of the night";
    }
}

// --- Rhythm episodes ------------------------------------------------------------------------

TEST(SimulatorTest, TachycardiaEpisode) {
    const std::int64_t t0 = kStart + 10 * kHour;
    const std::int64_t s = t0 + 20 * kMinute;
    const std::int64_t e = s + 5 * kMinute;
    for (std::uint64_t seed : {1, 2, 3, 4, 5}) {
        auto readings = simulate(calm_profile(), "tachycardia@20m+5m:150", seed, t0, kHour);
        EXPECT_LT(window(readings, s - kMinute, s).mean_bpm, 100) << seed;
        double plateau = window(readings, s + 30 * kSecond, e - 30 * kSecond).mean_bpm;
        EXPECT_GE(plateau, 140) << seed;
        EXPECT_LE(plateau, 160) << seed;
        // The onset is gradual, not a step.
        EXPECT_LT(window(readings, s, s + 5 * kSecond).mean_bpm, 110) << seed;
        EXPECT_LT(window(readings, e, e + kMinute).mean_bpm, 100) << seed;
    }
}

TEST(SimulatorTest, BradycardiaEpisode) {
    const std::int64_t t0 = kStart + 10 * kHour;
    const std::int64_t s = t0 + 20 * kMinute;
    const std::int64_t e = s + 10 * kMinute;
    for (std::uint64_t seed : {1, 2, 3, 4, 5}) {
        auto readings = simulate(calm_profile(), "bradycardia@20m+10m:42", seed, t0, kHour);
        EXPECT_GT(window(readings, s - kMinute, s).mean_bpm, 55) << seed;
        double plateau = window(readings, s + 30 * kSecond, e - 30 * kSecond).mean_bpm;
        EXPECT_LE(plateau, 52) << seed;
        EXPECT_GE(plateau, 32) << seed;
        EXPECT_GT(window(readings, e, e + kMinute).mean_bpm, 55) << seed;
    }
}

TEST(SimulatorTest, IrregularEpisodeIsAfLike) {
    const std::int64_t t0 = kStart + 10 * kHour;
    const std::int64_t s = t0 + 20 * kMinute;
    const std::int64_t e = s + 10 * kMinute;
    for (std::uint64_t seed : {1, 2, 3, 4, 5}) {
        auto readings = simulate(calm_profile(), "irregular@20m+10m", seed, t0, kHour);
        Stats before = window(readings, s - 10 * kMinute, s);
        Stats inside = window(readings, s + 30 * kSecond, e - 30 * kSecond);
        Stats after = window(readings, e, e + 10 * kMinute);
        EXPECT_GT(inside.cv, 0.15) << seed;
        EXPECT_GT(inside.rmssd_over_rr, 0.15) << seed;
        for (const Stats& calm : {before, after}) {
            EXPECT_LT(calm.cv, 0.10) << seed;
            EXPECT_LT(calm.rmssd_over_rr, 0.10) << seed;
        }
        // Without a target the ventricular rate stays the underlying one.
        EXPECT_NEAR(60000 / inside.mean_rr, 65, 10) << seed;

        readings = simulate(calm_profile(), "irregular@20m+10m:110", seed, t0, kHour);
        inside = window(readings, s + 30 * kSecond, e - 30 * kSecond);
        EXPECT_NEAR(60000 / inside.mean_rr, 110, 8) << seed;
        EXPECT_GT(inside.cv, 0.15) << seed;
    }
}

// --- Sensor episodes ------------------------------------------------------------------------

TEST(SimulatorTest, ContactLossEmitsContactFalseEverySecond) {
    const std::int64_t s = kStart + 10 * kMinute;
    const std::int64_t e = s + kMinute;
    auto readings = simulate(PatientProfile{}, "contact-loss@10m+1m", 9, kStart, 30 * kMinute);
    std::vector<std::int64_t> lost;
    for (const Reading& r : readings) {
        bool inside = r.t_ms >= s && r.t_ms < e;
        EXPECT_EQ(r.contact, !inside) << r.t_ms - kStart;
        EXPECT_EQ(r.bpm.has_value(), !inside) << r.t_ms - kStart;
        EXPECT_EQ(r.rr_ms.empty(), inside) << r.t_ms - kStart;
        if (inside) {
            lost.push_back(r.t_ms);
        } else {
            // No reported RR interval overlaps the gap.
            EXPECT_TRUE(r.t_ms - r.rr_ms[0] >= e || r.t_ms < s) << r.t_ms - kStart;
        }
    }
    ASSERT_EQ(lost.size(), 60u);
    for (std::size_t i = 0; i < lost.size(); ++i) {
        EXPECT_EQ(lost[i], s + static_cast<std::int64_t>(i) * kSecond);
    }
    // Beats resume within a few seconds of contact coming back.
    EXPECT_GT(window(readings, e, e + 5 * kSecond).readings, 0u);
}

TEST(SimulatorTest, DropoutEmitsNothing) {
    const std::int64_t s = kStart + 10 * kMinute;
    const std::int64_t e = s + 30 * kSecond;
    auto readings = simulate(PatientProfile{}, "dropout@10m+30s", 9, kStart, 30 * kMinute);
    for (const Reading& r : readings) {
        ASSERT_TRUE(r.t_ms < s || r.t_ms >= e) << r.t_ms - kStart;
        ASSERT_TRUE(r.contact);
        EXPECT_TRUE(r.t_ms - r.rr_ms[0] >= e || r.t_ms < s) << r.t_ms - kStart;
    }
    EXPECT_GT(window(readings, s - 5 * kSecond, s).readings, 0u);
    EXPECT_GT(window(readings, e, e + 5 * kSecond).readings, 0u);
}

// --- Watch-like output ----------------------------------------------------------------------

TEST(SimulatorTest, WatchModeObservesTheSameHeartOncePerSecond) {
    const char* episodes = "tachycardia@5m+5m, contact-loss@12m+1m, dropout@20m+30s";
    auto beats = simulate(PatientProfile{}, episodes, 21, kStart, 30 * kMinute);
    auto watch = simulate(PatientProfile{}, episodes, 21, kStart, 30 * kMinute, SampleMode::kWatch);
    // 1800 seconds, less the 30 readings of the dropout.
    ASSERT_EQ(watch.size(), 1800u - 30u);

    std::vector<std::uint32_t> beat_rr;
    for (const Reading& r : beats) {
        beat_rr.insert(beat_rr.end(), r.rr_ms.begin(), r.rr_ms.end());
    }
    std::vector<std::uint32_t> watch_rr;
    const std::int64_t loss_start = kStart + 12 * kMinute;
    const std::int64_t drop_start = kStart + 20 * kMinute;
    for (const Reading& r : watch) {
        ASSERT_EQ((r.t_ms - kStart) % kSecond, 0);
        ASSERT_FALSE(r.t_ms > drop_start && r.t_ms <= drop_start + 30 * kSecond);
        bool lost = r.t_ms > loss_start && r.t_ms <= loss_start + kMinute;
        EXPECT_EQ(r.contact, !lost) << r.t_ms - kStart;
        watch_rr.insert(watch_rr.end(), r.rr_ms.begin(), r.rr_ms.end());
        if (lost) {
            EXPECT_FALSE(r.bpm.has_value());
            continue;
        }
        // bpm is 60000 / mean RR of the beats that ended in the last 5 s.
        if (r.t_ms - kStart >= 10 * kSecond && r.t_ms - loss_start > 10 * kSecond &&
            r.t_ms - drop_start > 40 * kSecond) {
            ASSERT_TRUE(r.bpm.has_value()) << r.t_ms - kStart;
            double sum = 0;
            std::size_t n = 0;
            for (const Reading& b : beats) {
                if (b.t_ms >= r.t_ms - 5 * kSecond && b.t_ms < r.t_ms) {
                    sum += b.rr_ms[0];
                    ++n;
                }
            }
            ASSERT_GT(n, 0u);
            EXPECT_NEAR(*r.bpm, 60000.0 * static_cast<double>(n) / sum, 1e-9);
        }
    }
    EXPECT_EQ(watch_rr, beat_rr);
}

}  // namespace
}  // namespace cipherpulse::edge
