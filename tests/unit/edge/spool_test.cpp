#include "edge/spool.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "unit/test_support.h"

namespace cipherpulse::edge {
namespace {

using cipherpulse::testing::TempDir;

SpoolOptions options(const TempDir& dir, std::int64_t max = 1000) {
    SpoolOptions o;
    o.path = (dir / "spool.db").string();
    o.max_records = max;
    return o;
}

TEST(SpoolTest, SequenceNumbersSurviveRestartAndNeverRepeat) {
    TempDir dir;
    {
        Spool spool = Spool::open(options(dir));
        EXPECT_EQ(spool.append(1000, "hr", "hr-v1-a32", "kid", "ct1"), 1);
        EXPECT_EQ(spool.append(2000, "hr", "hr-v1-a32", "kid", "ct2"), 2);
        spool.acknowledge({1, 2});
        EXPECT_EQ(spool.stats().depth, 0);
    }
    struct stat st {};
    ASSERT_EQ(::stat((dir / "spool.db").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 077, 0u);  // owner only
    Spool spool = Spool::open(options(dir));
    EXPECT_EQ(spool.append(3000, "hr", "hr-v1-a32", "kid", "ct3"), 3);
    auto oldest = spool.oldest(10);
    ASSERT_EQ(oldest.size(), 1u);
    EXPECT_EQ(oldest[0].seq, 3);
    EXPECT_EQ(oldest[0].ct, "ct3");
}

TEST(SpoolTest, FullSpoolDropsExplicitly) {
    TempDir dir;
    Spool spool = Spool::open(options(dir, 2));
    (void)spool.append(1, "hr", "s", "k", "a");
    (void)spool.append(2, "hr", "s", "k", "b");
    EXPECT_EQ(spool.append(3, "hr", "s", "k", "c"), 3);  // drops the oldest
    auto left = spool.oldest(10);
    ASSERT_EQ(left.size(), 2u);
    EXPECT_EQ(left[0].seq, 2);
    EXPECT_EQ(spool.stats().dropped_oldest, 1);
    EXPECT_EQ(spool.depth(), 2);

    TempDir other;
    auto o = options(other, 1);
    o.on_full = SpoolOptions::OnFull::kDropNewest;
    Spool newest = Spool::open(o);
    (void)newest.append(1, "hr", "s", "k", "a");
    EXPECT_FALSE(newest.append(2, "hr", "s", "k", "b").has_value());
    EXPECT_EQ(newest.stats().dropped_newest, 1);
    EXPECT_EQ(newest.oldest(10)[0].ct, "a");
}

TEST(SpoolTest, DeadLettersLeaveTheQueueAndAreCounted) {
    TempDir dir;
    Spool spool = Spool::open(options(dir));
    for (int i = 0; i < 3; ++i) {
        (void)spool.append(i, "hr", "s", "k", "c");
    }
    spool.dead_letter({2}, "inactive-kid");
    auto left = spool.oldest(10);
    ASSERT_EQ(left.size(), 2u);
    EXPECT_EQ(left[0].seq, 1);
    EXPECT_EQ(left[1].seq, 3);
    EXPECT_EQ(spool.stats().dead_lettered, 1);
    EXPECT_EQ(spool.depth(), 2);  // the counter follows appends and dead letters
    spool.set_state("last_error", "boom");
    EXPECT_EQ(spool.stats().last_error, "boom");
}

}  // namespace
}  // namespace cipherpulse::edge
