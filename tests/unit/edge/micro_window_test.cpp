#include "edge/micro_window.h"

#include <gtest/gtest.h>

namespace cipherpulse::edge {
namespace {

Reading beat(std::int64_t t_ms, std::uint32_t rr) {
    Reading r;
    r.t_ms = t_ms;
    r.rr_ms = {rr};
    r.bpm = 60000.0 / rr;
    return r;
}

TEST(MicroWindowTest, OneRecordPerWindowAlignedToTheEpoch) {
    MicroWindows w(5000, FilterRules{});
    EXPECT_TRUE(w.add(beat(1'000'002'500, 800)).empty());  // window [..000, ..005)
    EXPECT_TRUE(w.add(beat(1'000'003'300, 800)).empty());
    auto closed = w.add(beat(1'000'005'100, 800));
    ASSERT_EQ(closed.size(), 1u);
    EXPECT_EQ(closed[0].start_ms, 1'000'000'000);
    EXPECT_EQ(closed[0].stats.records, 1u);
    EXPECT_EQ(closed[0].stats.samples, 2u);
    EXPECT_EQ(closed[0].stats.rr_count, 2u);
    EXPECT_EQ(closed[0].stats.sum_bpm_deci, 1500u);  // 75.0 bpm twice, in tenths
    EXPECT_EQ(closed[0].stats.rr_diff_count, 1u);
}

TEST(MicroWindowTest, SilenceStillYieldsOneRecordPerWindow) {
    MicroWindows w(5000, FilterRules{});
    (void)w.add(beat(10'000, 800));
    // 20 s without readings: four windows close, three of them empty.
    auto closed = w.flush_until(30'000);
    ASSERT_EQ(closed.size(), 4u);
    EXPECT_EQ(closed[0].stats.samples, 1u);
    for (std::size_t i = 1; i < 4; ++i) {
        EXPECT_EQ(closed[i].start_ms, 10'000 + static_cast<std::int64_t>(i) * 5000);
        EXPECT_EQ(closed[i].stats.records, 1u);
        EXPECT_EQ(closed[i].stats.samples, 0u);
    }
}

TEST(MicroWindowTest, FilterRulesDiscardAndCount) {
    MicroWindows w(5000, FilterRules{});
    Reading implausible;
    implausible.t_ms = 1000;
    implausible.bpm = 300;
    (void)w.add(implausible);
    (void)w.add(beat(1100, 800));
    (void)w.add(beat(1900, 1700));  // missed beat: ratio 2.1 > 1.8, an artefact
    (void)w.add(beat(2700, 810));
    Reading lost;
    lost.t_ms = 3000;
    lost.contact = false;
    (void)w.add(lost);
    auto closed = w.flush_until(5000);
    ASSERT_EQ(closed.size(), 1u);
    const HeartRateStats& s = closed[0].stats;
    EXPECT_EQ(w.counters().implausible_bpm, 1u);
    EXPECT_EQ(w.counters().rr_artefacts, 1u);
    EXPECT_EQ(s.contact_lost, 1u);
    EXPECT_EQ(s.rr_count, 2u);       // 800 and 810; 1700 discarded
    EXPECT_EQ(s.rr_diff_count, 0u);  // the artefact broke the succession
    EXPECT_EQ(s.samples, 3u);        // bpm of the three plausible beats (35.3 bpm counts)
}

TEST(MicroWindowTest, IrregularRhythmIsKept) {
    MicroWindows w(5000, FilterRules{});
    const std::uint32_t rr[] = {600, 900, 550, 850, 650};  // AF-like: up to 64% changes
    std::int64_t t = 0;
    for (auto v : rr) {
        t += v;
        (void)w.add(beat(t, v));
    }
    auto closed = w.flush_until(5000);
    ASSERT_EQ(closed.size(), 1u);
    EXPECT_EQ(closed[0].stats.rr_count, 5u);
    EXPECT_EQ(w.counters().rr_artefacts, 0u);
}

TEST(MicroWindowTest, OutOfOrderReadingsAreCountedNotUsed) {
    MicroWindows w(5000, FilterRules{});
    (void)w.add(beat(12'000, 800));
    (void)w.flush_until(20'000);
    (void)w.add(beat(11'000, 800));
    EXPECT_EQ(w.counters().out_of_order, 1u);
    EXPECT_THROW(MicroWindows(500, FilterRules{}), std::invalid_argument);
}

}  // namespace
}  // namespace cipherpulse::edge
