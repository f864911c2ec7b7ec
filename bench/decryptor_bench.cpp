// Decryptor throughput: sealed windows decrypted, checked, evaluated by the alert rules and
// committed (ledger, rule state, cursor) per second, on one thread and on two (the second
// argument, `[watch] threads`; wall-clock time), beside the bare constant-time CRT
// decryption of the same run. The target: the whole per-window path on one thread
// within 10% of the decryption alone. HTTP is left out (Watcher::process_page takes
// the page as the server would send it); the database is a real SQLite file.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cipherpulse/codec.h"
#include "cipherpulse/paillier.h"
#include "decryptor/watch.h"

namespace {

using namespace cipherpulse;

const PrivateKey& key(std::size_t bits) {
    static std::map<std::size_t, std::unique_ptr<PrivateKey>> keys;
    auto& k = keys[bits];
    if (!k) {
        k = std::make_unique<PrivateKey>(PrivateKey::generate(bits));
    }
    return *k;
}

// minute_aggregate is the encrypted sum of 12 five-second records of a steady heart rate.
Ciphertext minute_aggregate(const PrivateKey& k, double bpm) {
    HeartRateCodec codec;
    HeartRateStats sum;
    for (int r = 0; r < 12; ++r) {
        HeartRateRecordBuilder b;
        for (int i = 0; i < 5; ++i) {
            (void)b.add_sample(bpm + (i % 3));
            (void)b.add_rr(static_cast<std::uint32_t>(60000 / (bpm + (i % 3))));
        }
        sum += b.finish();
    }
    return k.public_key().encrypt(codec.pack_aggregate(sum));
}

void BM_DecryptCrtConstantTime(benchmark::State& state) {
    const PrivateKey& k = key(static_cast<std::size_t>(state.range(0)));
    Ciphertext c = minute_aggregate(k, 72);
    for (auto _ : state) {
        benchmark::DoNotOptimize(k.decrypt(c));
    }
    state.SetItemsProcessed(state.iterations());
}

// The checks of one window without the bookkeeping: parse, decrypt, unpack, plausibility.
void BM_OpenWindow(benchmark::State& state) {
    const PrivateKey& k = key(static_cast<std::size_t>(state.range(0)));
    decryptor::KeyRing ring;
    ring.add_shared(std::shared_ptr<const PrivateKey>(&k, [](const PrivateKey*) {}));
    decryptor::ServerWindow w;
    w.id = 1;
    w.kid = k.public_key().kid();
    w.patient = "patient-1";
    w.metric = "hr";
    w.schema = "hr-v1-a32";
    w.granularity = "1m";
    w.length_ms = 60'000;
    w.record_count = 12;
    w.aggregate = k.public_key().serialize_base64url(minute_aggregate(k, 72));
    for (auto _ : state) {
        auto opened = decryptor::open_window(w, ring);
        benchmark::DoNotOptimize(opened);
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_WindowDecryptEvaluateCommit(benchmark::State& state) {
    const PrivateKey& k = key(static_cast<std::size_t>(state.range(0)));
    const std::string dir = std::filesystem::temp_directory_path() /
                            ("cipherpulse-bench-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    decryptor::DecryptorConfig config;
    config.database = dir + "/decryptor.db";
    config.server_url = "http://127.0.0.1:9";
    config.verify_sample_rate = 0;
    config.threads = static_cast<int>(state.range(1));
    decryptor::KeyRing ring;
    ring.add_shared(std::shared_ptr<const PrivateKey>(&k, [](const PrivateKey*) {}));
    decryptor::Watcher watcher(config, std::move(ring), "unused", {});
    const std::string aggregate = k.public_key().serialize_base64url(minute_aggregate(k, 72));
    constexpr int kPage = 100;  // windows per page, 100 patients in one minute
    std::int64_t id = 0;
    for (auto _ : state) {
        state.PauseTiming();
        nlohmann::json windows = nlohmann::json::array();
        for (int i = 0; i < kPage; ++i) {
            ++id;
            windows.push_back({{"id", id},
                               {"kid", k.public_key().kid()},
                               {"patient", "patient-" + std::to_string(i)},
                               {"metric", "hr"},
                               {"schema", "hr-v1-a32"},
                               {"granularity", "1m"},
                               {"start_ms", 1'767'225'600'000 + (id / kPage) * 60'000},
                               {"length_ms", 60'000},
                               {"record_count", 12},
                               {"aggregate", aggregate},
                               {"cursor", std::to_string(id)},
                               {"sealed_ms", 1'767'225'600'000 + (id / kPage + 1) * 60'000}});
        }
        const std::string body = nlohmann::json{
            {"windows", windows},
            {"next_cursor", std::to_string(id)},
            {"more", false}}.dump();
        state.ResumeTiming();
        auto stats = watcher.process_page(body);
        if (!stats || stats.value().released != kPage) {
            state.SkipWithError("windows were not released");
            break;
        }
    }
    state.SetItemsProcessed(state.iterations() * kPage);
    std::filesystem::remove_all(dir);
}

}  // namespace

BENCHMARK(BM_DecryptCrtConstantTime)->Arg(2048)->Arg(3072)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_OpenWindow)->Arg(2048)->Arg(3072)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_WindowDecryptEvaluateCommit)
    ->Args({2048, 1})
    ->Args({2048, 2})
    ->Args({3072, 1})
    ->Args({3072, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);
