#include "cipherpulse/randomness_pool.h"

#include <stdexcept>

namespace cipherpulse {

RandomnessPool::RandomnessPool(PublicKey key, Options options)
    : key_(std::move(key)), options_(options) {
    if (options_.capacity == 0) {
        throw std::invalid_argument("RandomnessPool capacity must be positive");
    }
    worker_ = std::thread([this] { refill_loop(); });
}

RandomnessPool::~RandomnessPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    need_more_.notify_all();
    changed_.notify_all();
    worker_.join();
}

void RandomnessPool::refill_loop() {
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            need_more_.wait(lock,
                            [this] { return stopping_ || ready_.size() < options_.capacity; });
            if (stopping_) {
                return;
            }
        }
        // The exponentiation runs without the lock so take() never waits for it.
        BigInt randomizer = key_.make_randomizer(options_.mode);
        {
            std::lock_guard lock(mutex_);
            if (stopping_) {
                return;
            }
            ready_.push_back(std::move(randomizer));
            ++produced_;
        }
        changed_.notify_all();
    }
}

BigInt RandomnessPool::take() {
    {
        std::lock_guard lock(mutex_);
        if (!ready_.empty()) {
            BigInt out = std::move(ready_.front());
            ready_.pop_front();
            need_more_.notify_one();
            return out;
        }
        ++misses_;
    }
    need_more_.notify_one();
    return key_.make_randomizer(options_.mode);
}

Ciphertext RandomnessPool::encrypt(const BigInt& m) {
    if (!key_.check_plaintext(m)) {
        throw std::out_of_range("plaintext must satisfy 0 <= m < n");
    }
    BigInt randomizer = take();
    return key_.encrypt_with_randomizer(m, randomizer);
}

std::size_t RandomnessPool::size() const {
    std::lock_guard lock(mutex_);
    return ready_.size();
}

std::uint64_t RandomnessPool::misses() const {
    std::lock_guard lock(mutex_);
    return misses_;
}

std::uint64_t RandomnessPool::produced() const {
    std::lock_guard lock(mutex_);
    return produced_;
}

bool RandomnessPool::wait_until_full(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [this] {
        return stopping_ || ready_.size() >= options_.capacity;
    }) && ready_.size() >= options_.capacity;
}

}  // namespace cipherpulse
