// Micro benchmarks of the Paillier core at 2048 and 3072 bits. Run through
// bench/run_core_bench.sh, which prints medians and the same-run ratios that the targets in
// bench/RESULTS.md are stated in.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <mutex>

#include "cipherpulse/paillier.h"
#include "cipherpulse/randomness_pool.h"

namespace cipherpulse {
namespace {

// Keys are generated once per size (keygen itself is measured by BM_Keygen).
const PrivateKey& bench_key(std::size_t bits) {
    static std::mutex mutex;
    static std::map<std::size_t, std::unique_ptr<PrivateKey>> keys;
    std::lock_guard lock(mutex);
    auto& slot = keys[bits];
    if (!slot) {
        slot = std::make_unique<PrivateKey>(PrivateKey::generate(bits));
    }
    return *slot;
}

BigInt sample_plaintext() {
    return BigInt::from_decimal("123456789012345678901234567890").value();
}

void BM_Keygen(benchmark::State& state) {
    for (auto _ : state) {
        PrivateKey key = PrivateKey::generate(static_cast<std::size_t>(state.range(0)));
        benchmark::DoNotOptimize(&key);
    }
}

void BM_EncryptTextbook(benchmark::State& state) {
    const PublicKey& pk = bench_key(static_cast<std::size_t>(state.range(0))).public_key();
    BigInt m = sample_plaintext();
    for (auto _ : state) {
        benchmark::DoNotOptimize(pk.encrypt(m, EncryptionMode::kTextbook));
    }
}

void BM_EncryptFast(benchmark::State& state) {
    const PublicKey& pk = bench_key(static_cast<std::size_t>(state.range(0))).public_key();
    BigInt m = sample_plaintext();
    (void)pk.encrypt(m, EncryptionMode::kFast);  // builds the fixed-base table
    for (auto _ : state) {
        benchmark::DoNotOptimize(pk.encrypt(m, EncryptionMode::kFast));
    }
}

// Online encryption with randomizers from a full pool: each repetition drains one full pool
// (a fixed 2000 of its 2048 randomizers), so the figure is the online cost alone; the refill
// happens before timing starts.
void BM_EncryptOnlineFromPool(benchmark::State& state) {
    const PublicKey& pk = bench_key(static_cast<std::size_t>(state.range(0))).public_key();
    BigInt m = sample_plaintext();
    RandomnessPool pool(pk, {2048, EncryptionMode::kFast});
    pool.wait_until_full();
    for (auto _ : state) {
        benchmark::DoNotOptimize(pool.encrypt(m));
    }
    state.counters["pool_misses"] = static_cast<double>(pool.misses());
}

void BM_DecryptCrtConstantTime(benchmark::State& state) {
    const PrivateKey& key = bench_key(static_cast<std::size_t>(state.range(0)));
    Ciphertext c = key.public_key().encrypt(sample_plaintext());
    for (auto _ : state) {
        benchmark::DoNotOptimize(key.decrypt(c));
    }
}

void BM_DecryptTextbook(benchmark::State& state) {
    const PrivateKey& key = bench_key(static_cast<std::size_t>(state.range(0)));
    Ciphertext c = key.public_key().encrypt(sample_plaintext());
    for (auto _ : state) {
        benchmark::DoNotOptimize(key.decrypt_textbook(c));
    }
}

void BM_Add(benchmark::State& state) {
    const PublicKey& pk = bench_key(static_cast<std::size_t>(state.range(0))).public_key();
    Ciphertext acc = pk.encrypt(BigInt(1));
    Ciphertext c = pk.encrypt(BigInt(2));
    for (auto _ : state) {
        pk.add_in_place(acc, c);
        benchmark::DoNotOptimize(acc);
    }
}

// The floor add is compared against: a bare mpz_mul and mpz_mod modulo n^2.
void BM_BareMulMod(benchmark::State& state) {
    const PublicKey& pk = bench_key(static_cast<std::size_t>(state.range(0))).public_key();
    BigInt acc = pk.encrypt(BigInt(1)).value();
    BigInt c = pk.encrypt(BigInt(2)).value();
    BigInt t;
    for (auto _ : state) {
        mpz_mul(t.get(), acc.get(), c.get());
        mpz_mod(acc.get(), t.get(), pk.n_squared().get());
        benchmark::DoNotOptimize(acc);
    }
}

void BM_ScalarMultiply72(benchmark::State& state) {
    const PublicKey& pk = bench_key(static_cast<std::size_t>(state.range(0))).public_key();
    Ciphertext c = pk.encrypt(sample_plaintext());
    BigInt k(72);
    for (auto _ : state) {
        benchmark::DoNotOptimize(pk.multiply(c, k));
    }
}

void BM_Sum100k(benchmark::State& state) {
    const PublicKey& pk = bench_key(static_cast<std::size_t>(state.range(0))).public_key();
    std::vector<Ciphertext> cs;
    cs.reserve(100000);
    Ciphertext base = pk.encrypt(BigInt(3));
    BigInt r = pk.make_randomizer(EncryptionMode::kFast);
    for (long i = 0; i < 100000; ++i) {
        cs.push_back(pk.encrypt_with_randomizer(BigInt(i % 97), r));
    }
    for (auto _ : state) {
        benchmark::DoNotOptimize(pk.sum(cs));
    }
    state.SetItemsProcessed(state.iterations() * 100000);
}

void BM_ParseCiphertext(benchmark::State& state) {
    const PublicKey& pk = bench_key(static_cast<std::size_t>(state.range(0))).public_key();
    std::string wire = pk.serialize_base64url(pk.encrypt(sample_plaintext()));
    for (auto _ : state) {
        benchmark::DoNotOptimize(pk.parse_ciphertext_base64url(wire));
    }
}

BENCHMARK(BM_Keygen)->Arg(2048)->Arg(3072)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_EncryptTextbook)->Arg(2048)->Arg(3072)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EncryptFast)->Arg(2048)->Arg(3072)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EncryptOnlineFromPool)
    ->Arg(2048)
    ->Arg(3072)
    ->Unit(benchmark::kMicrosecond)
    ->Iterations(2000);
BENCHMARK(BM_DecryptCrtConstantTime)->Arg(2048)->Arg(3072)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DecryptTextbook)->Arg(2048)->Arg(3072)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Add)->Arg(2048)->Arg(3072)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BareMulMod)->Arg(2048)->Arg(3072)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ScalarMultiply72)->Arg(2048)->Arg(3072)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Sum100k)->Arg(2048)->Arg(3072)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_ParseCiphertext)->Arg(2048)->Arg(3072)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace cipherpulse
