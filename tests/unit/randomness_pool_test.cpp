#include "cipherpulse/randomness_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "unit/test_support.h"

namespace cipherpulse {
namespace {

using testing::test_key;

TEST(RandomnessPoolTest, FillsInBackgroundAndEncryptsCorrectly) {
    const PrivateKey& key = test_key(512);
    RandomnessPool pool(key.public_key(), {64, EncryptionMode::kFast});
    ASSERT_TRUE(pool.wait_until_full(std::chrono::seconds(60)));
    EXPECT_EQ(pool.size(), 64u);
    for (long m = 0; m < 32; ++m) {
        EXPECT_EQ(key.decrypt(pool.encrypt(BigInt(m))), BigInt(m));
    }
    EXPECT_EQ(pool.misses(), 0u);
    EXPECT_THROW((void)pool.encrypt(key.public_key().n()), std::out_of_range);
}

TEST(RandomnessPoolTest, RandomizersAreNeverHandedOutTwice) {
    const PrivateKey& key = test_key(256);
    RandomnessPool pool(key.public_key(), {16, EncryptionMode::kFast});
    std::mutex mutex;
    std::set<std::string> seen;
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (long i = 0; i < 200; ++i) {
                BigInt r = pool.take();
                BigInt m(t * 10000 + i);
                Ciphertext c = key.public_key().encrypt_with_randomizer(m, r);
                if (key.decrypt(c) != m) {
                    ++wrong;
                }
                std::lock_guard lock(mutex);
                seen.insert(r.to_decimal());
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    EXPECT_EQ(wrong.load(), 0);
    EXPECT_EQ(seen.size(), 800u);  // 800 takes, 800 distinct randomizers
    // Whatever was not produced by the refill thread was computed inline and counted.
    EXPECT_GE(pool.produced() + pool.misses(), 800u);
}

TEST(RandomnessPoolTest, EmptyPoolComputesInlineAndCounts) {
    const PrivateKey& key = test_key(256);
    RandomnessPool pool(key.public_key(), {1, EncryptionMode::kTextbook});
    // Drain faster than one refill: at least one take finds it empty.
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(key.decrypt(pool.encrypt(BigInt(i))), BigInt(i));
    }
    EXPECT_GE(pool.misses() + pool.produced(), 20u);
    EXPECT_THROW(RandomnessPool(key.public_key(), {0, EncryptionMode::kFast}),
                 std::invalid_argument);
}

TEST(RandomnessPoolTest, DestructorDoesNotWaitForAFullPool) {
    const PrivateKey& key = test_key(1024);
    std::uint64_t produced = 0;
    {
        RandomnessPool pool(key.public_key(), {100000, EncryptionMode::kFast});
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        produced = pool.produced();
    }
    // Destruction stops the refill thread after at most the randomizer in flight; a pool of
    // 100000 at about 1 ms each would otherwise keep it alive for minutes (ctest's timeout).
    EXPECT_LT(produced, 100000u);
}

}  // namespace
}  // namespace cipherpulse
