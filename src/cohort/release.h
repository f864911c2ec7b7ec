// The release of a cohort query: the figures an approved query yields, computed from the
// decrypted sums of its aggregate after the discrete-Laplace noise of noise.h, each with its
// noise scale and a 95 % interval. Written by the decryptor, read by the analyst tool.
//
// Format "cipherpulse-release/1" is described in docs/formats.md section 10.4.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cipherpulse/codec.h"
#include "cohort/noise.h"
#include "cohort/query.h"

namespace cipherpulse::cohort {

inline constexpr std::string_view kReleaseVersion = "cipherpulse-release/1";

// per_record_sensitivity is the most one edge record can add to a sum (for the histogram,
// to the 40 bins together): the codec's per-record bounds. A patient capped at c records
// moves the sum by at most c times this.
Wide per_record_sensitivity(Sum s);

// ReleaseFigure is one released figure. Without noise, `value` is exact and the interval
// and scale are absent. `value` is absent when the figure is undefined (no samples after
// noise, say).
struct ReleaseFigure {
    std::string statistic;  // the statistic it answers (statistic_text)
    std::string name;       // e.g. mean_bpm, bin_100_105
    std::string unit;       // bpm, ms, records, samples, minutes, share, readings, patients
    std::optional<double> value;
    std::optional<std::pair<double, double>> interval95;
    std::string scale;  // noise scale(s) of the sums it is derived from, or empty
};

// Release is what build_release computes.
struct Release {
    std::vector<ReleaseFigure> figures;
    // The noised sums as released (for tests and the decryptor's log); the histogram is
    // reported bin by bin in the figures.
    HeartRateStats noised;
};

// build_release computes the figures of `doc`'s statistics from the decrypted `exact` sums.
// With an epsilon, every sum in sums_needed() receives discrete-Laplace noise of scale
// cap_records * per_record_sensitivity / (epsilon / number of sums) drawn from `source`,
// and every figure is derived from the noised sums only. Intervals: a sum's interval is
// exact (laplace_interval at 95 %); a derived figure's interval is the range of the figure
// over the box of its inputs' intervals, each taken at 1 - 5 % / inputs (Bonferroni), so
// it covers the exact figure at least 95 % of the time. `patients_with_data` is released
// as is: the server knows it (it answers it to the analyst) and the decryptor checked it
// against k. Throws std::out_of_range when a scale cannot be represented (see
// laplace_scale).
Release build_release(const QueryDocument& doc, const HeartRateStats& exact,
                      std::size_t patients_with_data, UniformSource& source);

// release_json is the release document: version, query id, canonical hash, time, the
// query's subject (cohort, metric, range), cohort size, patients with data, epsilon, noise,
// cap and the figures.
nlohmann::json release_json(const QueryDocument& doc, const std::string& hash,
                            const Release& release, std::size_t patients_with_data,
                            std::int64_t released_ms);

// figure_names lists, in release order, the figure names a statistic yields (the histogram
// its 40 bins).
std::vector<std::string> figure_names(const Statistic& s);

}  // namespace cipherpulse::cohort
