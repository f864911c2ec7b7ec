// Packing codec: one hr-v1 record (5 s at 1 Hz: 5 samples, 5 RR intervals) packed and
// unpacked, and the plaintext sum of two records' stats.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <stdexcept>

#include "cipherpulse/codec.h"

namespace {

using cipherpulse::BigInt;
using cipherpulse::HeartRateCodec;
using cipherpulse::HeartRateRecordBuilder;
using cipherpulse::HeartRateStats;

HeartRateStats realistic_record() {
    HeartRateRecordBuilder builder;
    const double bpms[] = {71.3, 72.8, 74.1, 73.6, 72.2};
    const std::uint32_t rrs[] = {842, 824, 810, 815, 831};
    for (double bpm : bpms) {
        if (!builder.add_sample(bpm).ok()) {
            throw std::logic_error("codec_bench: sample refused");
        }
    }
    for (std::uint32_t rr : rrs) {
        if (!builder.add_rr(rr).ok()) {
            throw std::logic_error("codec_bench: RR interval refused");
        }
    }
    return builder.finish();
}

void BM_HeartRatePack(benchmark::State& state) {
    HeartRateCodec codec;
    HeartRateStats record = realistic_record();
    for (auto _ : state) {
        BigInt packed = codec.pack(record);
        benchmark::DoNotOptimize(packed.get());
    }
}
BENCHMARK(BM_HeartRatePack);

void BM_HeartRateUnpack(benchmark::State& state) {
    HeartRateCodec codec;
    BigInt packed = codec.pack(realistic_record());
    for (auto _ : state) {
        auto stats = codec.unpack(packed);
        benchmark::DoNotOptimize(stats.ok());
    }
}
BENCHMARK(BM_HeartRateUnpack);

void BM_HeartRateStatsSum(benchmark::State& state) {
    HeartRateStats record = realistic_record();
    HeartRateStats sum;
    for (auto _ : state) {
        sum += record;
        benchmark::DoNotOptimize(sum);
    }
}
BENCHMARK(BM_HeartRateStatsSum);

}  // namespace
