// RandomnessPool: randomizers r^n mod n^2 precomputed by a background thread, so that
// online encryption costs one multiplication.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

#include "cipherpulse/paillier.h"

namespace cipherpulse {

// RandomnessPool keeps up to `capacity` fresh randomizers for one public key, refilled by
// its own background thread whenever it falls below capacity. Each randomizer is handed
// out once. All methods are thread-safe. When the pool is empty, take() computes a
// randomizer inline rather than block (counted in misses()), so callers never stall on the
// refill thread. The destructor stops and joins the thread.
class RandomnessPool {
  public:
    struct Options {
        std::size_t capacity = 1024;  // randomizers kept ready
        EncryptionMode mode = EncryptionMode::kFast;
    };

    // Starts the refill thread. Throws std::invalid_argument for capacity 0.
    RandomnessPool(PublicKey key, Options options);
    explicit RandomnessPool(PublicKey key) : RandomnessPool(std::move(key), Options{}) {}
    RandomnessPool(const RandomnessPool&) = delete;
    RandomnessPool& operator=(const RandomnessPool&) = delete;
    ~RandomnessPool();

    // take removes and returns one randomizer (computed inline when the pool is empty).
    BigInt take();
    // encrypt encrypts 0 <= m < n with a pooled randomizer (throws std::out_of_range
    // otherwise, like PublicKey::encrypt).
    Ciphertext encrypt(const BigInt& m);

    const PublicKey& public_key() const { return key_; }
    std::size_t size() const;
    std::size_t capacity() const { return options_.capacity; }
    // misses counts take() calls that found the pool empty.
    std::uint64_t misses() const;
    // produced counts randomizers made by the refill thread.
    std::uint64_t produced() const;
    // wait_until_full blocks until the pool holds `capacity` randomizers or `timeout`
    // passes; returns whether it is full.
    bool wait_until_full(std::chrono::milliseconds timeout = std::chrono::hours(1));

  private:
    void refill_loop();

    PublicKey key_;
    Options options_;
    mutable std::mutex mutex_;
    std::condition_variable need_more_;
    std::condition_variable changed_;
    std::deque<BigInt> ready_;
    std::uint64_t misses_ = 0;
    std::uint64_t produced_ = 0;
    bool stopping_ = false;
    std::thread worker_;
};

}  // namespace cipherpulse
