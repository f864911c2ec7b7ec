#include "cohort/release.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace cipherpulse::cohort {
namespace {

using json = nlohmann::json;

constexpr std::uint32_t kLevel95 = 950'000;

// Noised is one noised sum: its value and its noise scale.
struct Noised {
    long double value = 0;
    std::optional<Scale> scale;  // nullopt: exact
};

long double to_ld(SignedWide v) {
    return static_cast<long double>(v);
}

// half_width is the interval half-width of one noised sum at `level_ppm` (0 when exact).
long double half_width(const Noised& n, std::uint32_t level_ppm) {
    return n.scale ? static_cast<long double>(laplace_interval(*n.scale, level_ppm)) : 0.0L;
}

std::string scale_text(const Scale& s) {
    const long double t = static_cast<long double>(s.num) / static_cast<long double>(s.den);
    char text[48];
    std::snprintf(text, sizeof text, t >= 1e6L ? "%.4Le" : "%.3Lf", t);
    return text;
}

// A derived figure is clamped to the values it can take (0 to the codec's largest heart
// rate or RR interval): noise may push a ratio of noised sums outside, and clamping is
// post-processing, so it costs no privacy and an interval that covered the exact figure
// still does.
constexpr long double kMaxBpm = kMaxBpmDeci / 10.0L;
constexpr long double kMaxRr = kMaxRrMs;

long double in_domain(long double v, long double max) {
    return std::clamp(v, 0.0L, max);
}

// Input is one input of a derived figure: its noised value, its interval half-width and
// the least its true value can be (e.g. 1 for a count in a denominator: with no data the
// figure does not exist).
struct Input {
    long double value;
    long double half;
    long double floor;
};

// box_range evaluates `f` over a grid of the inputs' box (corners included) and returns the
// range of finite values; nullopt when no point of the box gives one.
std::optional<std::pair<long double, long double>> box_range(
    const std::vector<Input>& in, const std::function<std::optional<long double>(
                                      const std::vector<long double>&)>& f) {
    // The figures are monotone in each input except the variance in the sample count:
    // 9 points an axis find its extremes to well within the rounding of the release.
    constexpr int kSteps = 8;
    std::vector<long double> point(in.size());
    std::optional<std::pair<long double, long double>> out;
    std::vector<int> index(in.size(), 0);
    while (true) {
        for (std::size_t i = 0; i < in.size(); ++i) {
            const long double lo = std::max(in[i].value - in[i].half, in[i].floor);
            const long double hi = std::max(in[i].value + in[i].half, in[i].floor);
            point[i] = lo + (hi - lo) * index[i] / kSteps;
        }
        if (auto v = f(point); v && std::isfinite(static_cast<double>(*v))) {
            if (!out) {
                out = std::pair{*v, *v};
            } else {
                out->first = std::min(out->first, *v);
                out->second = std::max(out->second, *v);
            }
        }
        std::size_t i = 0;
        while (i < in.size() && ++index[i] > kSteps) {
            index[i] = 0;
            ++i;
        }
        if (i == in.size()) {
            break;
        }
    }
    return out;
}

double rounded(long double v, int decimals) {
    const long double f = std::pow(10.0L, decimals);
    return static_cast<double>(std::round(v * f) / f);
}

const char* kind_unit(Sum s) {
    switch (s) {
        case Sum::kRecords:
            return "records";
        case Sum::kSamples:
        case Sum::kHistogram:
            return "samples";
        case Sum::kContactLost:
            return "readings";
        default:
            return "";
    }
}

std::string bin_name(std::size_t i) {
    if (i == 0) {
        return "bin_lt_30";
    }
    if (i == kHeartRateBins - 1) {
        return "bin_ge_220";
    }
    const int lo = 30 + 5 * static_cast<int>(i - 1);
    return "bin_" + std::to_string(lo) + "_" + std::to_string(lo + 5);
}

// first_bin_at_or_above is the index of the first bin whose lower edge is >= bpm (a bin
// edge 30..220).
std::size_t first_bin_at_or_above(int bpm) {
    return static_cast<std::size_t>((bpm - 30) / 5 + 1);
}

// Sums holds the noised value of every sum, the histogram bin by bin.
struct Sums {
    std::map<Sum, Noised> scalar;
    std::array<Noised, kHeartRateBins> hist{};
};

long double exact_of(const HeartRateStats& s, Sum sum) {
    switch (sum) {
        case Sum::kRecords:
            return static_cast<long double>(s.records);
        case Sum::kSamples:
            return static_cast<long double>(s.samples);
        case Sum::kSumBpm:
            return static_cast<long double>(s.sum_bpm_deci);
        case Sum::kSumBpmSq:
            return static_cast<long double>(s.sum_bpm_deci_sq);
        case Sum::kRrCount:
            return static_cast<long double>(s.rr_count);
        case Sum::kSumRr:
            return static_cast<long double>(s.sum_rr_ms);
        case Sum::kRrDiffCount:
            return static_cast<long double>(s.rr_diff_count);
        case Sum::kSumRrDiffSq:
            return static_cast<long double>(s.sum_rr_diff_sq);
        case Sum::kContactLost:
            return static_cast<long double>(s.contact_lost);
        case Sum::kHistogram:
            break;
    }
    throw std::logic_error("exact_of: the histogram has no single value");
}

// Slot values are unsigned; a noised sum can be negative, so `noised` clamps at 0 (a
// post-processing of the released value, for the log only).
SlotValue clamp_slot(long double v) {
    return v <= 0 ? SlotValue{0} : static_cast<SlotValue>(std::llround(static_cast<double>(v)));
}

void set_noised(HeartRateStats& s, Sum sum, long double v) {
    const SlotValue c = clamp_slot(v);
    switch (sum) {
        case Sum::kRecords:
            s.records = static_cast<std::uint64_t>(c);
            break;
        case Sum::kSamples:
            s.samples = static_cast<std::uint64_t>(c);
            break;
        case Sum::kSumBpm:
            s.sum_bpm_deci = c;
            break;
        case Sum::kSumBpmSq:
            s.sum_bpm_deci_sq = c;
            break;
        case Sum::kRrCount:
            s.rr_count = static_cast<std::uint64_t>(c);
            break;
        case Sum::kSumRr:
            s.sum_rr_ms = c;
            break;
        case Sum::kRrDiffCount:
            s.rr_diff_count = static_cast<std::uint64_t>(c);
            break;
        case Sum::kSumRrDiffSq:
            s.sum_rr_diff_sq = c;
            break;
        case Sum::kContactLost:
            s.contact_lost = static_cast<std::uint64_t>(c);
            break;
        case Sum::kHistogram:
            break;
    }
}

class Builder {
  public:
    Builder(const QueryDocument& doc, const Sums& sums, std::size_t patients)
        : doc_(doc), sums_(sums), patients_(patients) {}

    void add(const Statistic& st, std::vector<ReleaseFigure>& out) const {
        const std::string text = statistic_text(st);
        switch (st.kind) {
            case Statistic::Kind::kCount: {
                ReleaseFigure p{text, "patients_with_data", "patients",
                                static_cast<double>(patients_), std::nullopt, ""};
                out.push_back(p);
                out.push_back(direct(text, "records", Sum::kRecords));
                out.push_back(direct(text, "samples", Sum::kSamples));
                const long double per_minute = doc_.record_seconds / 60.0L;
                out.push_back(derived(text, "minutes_of_data", "minutes", 1,
                                      {scalar(Sum::kRecords, 0)}, {Sum::kRecords},
                                      [per_minute](const auto& x) -> std::optional<long double> {
                                          return std::max(x[0], 0.0L) * per_minute;
                                      }));
                break;
            }
            case Statistic::Kind::kMean:
                out.push_back(derived(
                    text, "mean_bpm", "bpm", 2, {scalar(Sum::kSumBpm, 0), scalar(Sum::kSamples, 1)},
                    {Sum::kSumBpm, Sum::kSamples}, [](const auto& x) -> std::optional<long double> {
                        if (x[1] < 1) {
                            return std::nullopt;
                        }
                        return in_domain(x[0] / x[1] / 10.0L, kMaxBpm);
                    }));
                break;
            case Statistic::Kind::kSd:
                out.push_back(derived(text, "sd_bpm", "bpm", 2,
                                      {scalar(Sum::kSumBpm, 0), scalar(Sum::kSumBpmSq, 0),
                                       scalar(Sum::kSamples, 2)},
                                      {Sum::kSumBpm, Sum::kSumBpmSq, Sum::kSamples},
                                      [](const auto& x) -> std::optional<long double> {
                                          const long double n = x[2];
                                          if (n < 2) {
                                              return std::nullopt;
                                          }
                                          long double var = (x[1] - x[0] * x[0] / n) / (n - 1);
                                          return in_domain(std::sqrt(std::max(var, 0.0L)) / 10.0L,
                                                           kMaxBpm);
                                      }));
                break;
            case Statistic::Kind::kHistogram: {
                for (std::size_t i = 0; i < kHeartRateBins; ++i) {
                    const Noised& b = sums_.hist[i];
                    ReleaseFigure f{text, bin_name(i), "samples",
                                    static_cast<double>(std::llround(static_cast<double>(b.value))),
                                    std::nullopt, ""};
                    if (b.scale) {
                        const long double w = half_width(b, kLevel95);
                        f.interval95 = std::pair{static_cast<double>(b.value - w),
                                                 static_cast<double>(b.value + w)};
                        f.scale = scale_text(*b.scale);
                    }
                    out.push_back(f);
                }
                break;
            }
            case Statistic::Kind::kShareAbove:
            case Statistic::Kind::kShareBelow:
                out.push_back(share(st, text, false));
                break;
            case Statistic::Kind::kMinutesAbove:
            case Statistic::Kind::kMinutesBelow:
                out.push_back(share(st, text, true));
                break;
            case Statistic::Kind::kMeanRr:
                out.push_back(derived(text, "mean_rr_ms", "ms", 1,
                                      {scalar(Sum::kSumRr, 0), scalar(Sum::kRrCount, 1)},
                                      {Sum::kSumRr, Sum::kRrCount},
                                      [](const auto& x) -> std::optional<long double> {
                                          if (x[1] < 1) {
                                              return std::nullopt;
                                          }
                                          return in_domain(x[0] / x[1], kMaxRr);
                                      }));
                break;
            case Statistic::Kind::kRmssd:
                out.push_back(derived(text, "rmssd_ms", "ms", 1,
                                      {scalar(Sum::kSumRrDiffSq, 0), scalar(Sum::kRrDiffCount, 1)},
                                      {Sum::kSumRrDiffSq, Sum::kRrDiffCount},
                                      [](const auto& x) -> std::optional<long double> {
                                          if (x[1] < 1) {
                                              return std::nullopt;
                                          }
                                          return in_domain(std::sqrt(std::max(x[0], 0.0L) / x[1]),
                                                           kMaxRr);
                                      }));
                break;
            case Statistic::Kind::kContactLost:
                out.push_back(direct(text, "contact_lost", Sum::kContactLost));
                break;
        }
    }

  private:
    // An input made of one scalar sum; `floor` is what its true value is known to reach.
    struct Part {
        Noised n;
        long double floor;
    };
    Part scalar(Sum s, long double floor) const { return {sums_.scalar.at(s), floor}; }

    ReleaseFigure direct(const std::string& text, const std::string& name, Sum s) const {
        const Noised& n = sums_.scalar.at(s);
        ReleaseFigure f{text, name, kind_unit(s),
                        static_cast<double>(std::llround(static_cast<double>(n.value))),
                        std::nullopt, ""};
        if (n.scale) {
            const long double w = half_width(n, kLevel95);
            f.interval95 = std::pair{static_cast<double>(n.value - w), static_cast<double>(n.value + w)};
            f.scale = scale_text(*n.scale);
        }
        return f;
    }

    std::string scales_text(const std::vector<Sum>& sums) const {
        std::string out;
        for (Sum s : sums) {
            const Noised& n = s == Sum::kHistogram ? sums_.hist[0] : sums_.scalar.at(s);
            if (!n.scale) {
                return "";
            }
            out += (out.empty() ? "" : " ") + std::string(sum_name(s)) + ":" + scale_text(*n.scale);
        }
        return out;
    }

    template <typename F>
    ReleaseFigure derived(const std::string& text, const std::string& name, const std::string& unit,
                          int decimals, const std::vector<Part>& parts,
                          const std::vector<Sum>& sums, F f) const {
        std::vector<long double> centre;
        for (const auto& p : parts) {
            centre.push_back(p.n.value);
        }
        ReleaseFigure out{text, name, unit, std::nullopt, std::nullopt, scales_text(sums)};
        if (auto v = f(centre)) {
            out.value = rounded(*v, decimals);
        }
        if (!out.scale.empty()) {
            const auto m = static_cast<std::uint32_t>(parts.size());
            const std::uint32_t level = kPartsPerMillion - (kPartsPerMillion - kLevel95) / m;
            std::vector<Input> in;
            for (const auto& p : parts) {
                in.push_back({p.n.value, half_width(p.n, level), p.floor});
            }
            if (auto r = box_range(in, f)) {
                out.interval95 = std::pair{rounded(r->first, decimals), rounded(r->second, decimals)};
            }
        }
        return out;
    }

    // share and minutes above/below a bin edge: A = bins on the asked side, B = the others;
    // each bin its own Bonferroni term.
    ReleaseFigure share(const Statistic& st, const std::string& text, bool minutes) const {
        const bool above = st.kind == Statistic::Kind::kShareAbove ||
                           st.kind == Statistic::Kind::kMinutesAbove;
        const std::size_t edge = first_bin_at_or_above(st.threshold_bpm);
        long double a = 0, b = 0;
        std::size_t na = 0, nb = 0;
        for (std::size_t i = 0; i < kHeartRateBins; ++i) {
            const bool in_a = (i >= edge) == above;
            (in_a ? a : b) += sums_.hist[i].value;
            ++(in_a ? na : nb);
        }
        const std::uint32_t terms = static_cast<std::uint32_t>(kHeartRateBins) + (minutes ? 1 : 0);
        const std::uint32_t level = kPartsPerMillion - (kPartsPerMillion - kLevel95) / terms;
        const long double w = half_width(sums_.hist[0], level);
        std::vector<Input> in = {{a, w * na, 0}, {b, w * nb, 0}};
        std::vector<Sum> sums = {Sum::kHistogram};
        const long double per_minute = doc_.record_seconds / 60.0L;
        if (minutes) {
            const Noised& r = sums_.scalar.at(Sum::kRecords);
            in.push_back({r.value, half_width(r, level), 0});
            sums.push_back(Sum::kRecords);
        }
        auto f = [minutes, per_minute](const std::vector<long double>& x)
            -> std::optional<long double> {
            const long double on_side = std::max(x[0], 0.0L);
            const long double others = std::max(x[1], 0.0L);
            if (on_side + others <= 0) {
                return std::nullopt;
            }
            const long double share = on_side / (on_side + others);
            return minutes ? share * std::max(x[2], 0.0L) * per_minute : share;
        };
        const std::string name = std::string(minutes ? "minutes_" : "share_") +
                                 (above ? "at_or_above_" : "below_") +
                                 std::to_string(st.threshold_bpm);
        const int decimals = minutes ? 1 : 4;
        ReleaseFigure out{text, name, minutes ? "minutes" : "share", std::nullopt, std::nullopt,
                          scales_text(sums)};
        std::vector<long double> centre;
        for (const auto& i : in) {
            centre.push_back(i.value);
        }
        if (auto v = f(centre)) {
            out.value = rounded(*v, decimals);
        }
        if (!out.scale.empty()) {
            if (auto r = box_range(in, f)) {
                out.interval95 = std::pair{rounded(r->first, decimals), rounded(r->second, decimals)};
            }
        }
        return out;
    }

    const QueryDocument& doc_;
    const Sums& sums_;
    std::size_t patients_;
};

}  // namespace

Wide per_record_sensitivity(Sum s) {
    const Wide n = kMaxSamplesPerRecord;
    switch (s) {
        case Sum::kRecords:
            return 1;
        case Sum::kSamples:
        case Sum::kHistogram:
        case Sum::kRrCount:
        case Sum::kRrDiffCount:
        case Sum::kContactLost:
            return n;
        case Sum::kSumBpm:
            return n * kMaxBpmDeci;
        case Sum::kSumBpmSq:
            return n * kMaxBpmDeci * kMaxBpmDeci;
        case Sum::kSumRr:
            return n * kMaxRrMs;
        case Sum::kSumRrDiffSq:
            return n * kMaxRrMs * kMaxRrMs;
    }
    throw std::logic_error("per_record_sensitivity: unknown sum");
}

Release build_release(const QueryDocument& doc, const HeartRateStats& exact,
                      std::size_t patients_with_data, UniformSource& source) {
    const std::vector<Sum> needed = sums_needed(doc.request.statistics);
    const auto shares = static_cast<std::uint32_t>(needed.size());
    const std::optional<std::uint32_t> eps = doc.request.epsilon_milli;
    if (eps && doc.cap_records <= 0) {
        throw std::invalid_argument("build_release: a noised release needs a positive cap");
    }
    Sums sums;
    Release release;
    release.noised = exact;
    auto scale_of = [&](Sum s) {
        return laplace_scale(per_record_sensitivity(s) * static_cast<Wide>(doc.cap_records), *eps,
                             shares);
    };
    // Every scale first, so an unrepresentable one throws before any noise is drawn.
    std::map<Sum, Scale> scales;
    if (eps) {
        for (Sum s : needed) {
            scales.emplace(s, scale_of(s));
        }
    }
    for (Sum s : needed) {
        auto noise = [&]() -> long double {
            return eps ? to_ld(sample_discrete_laplace(scales.at(s), source)) : 0.0L;
        };
        std::optional<Scale> scale;
        if (eps) {
            scale = scales.at(s);
        }
        if (s == Sum::kHistogram) {
            for (std::size_t i = 0; i < kHeartRateBins; ++i) {
                sums.hist[i] = {static_cast<long double>(exact.hist[i]) + noise(), scale};
                release.noised.hist[i] = clamp_slot(sums.hist[i].value);
            }
        } else {
            sums.scalar[s] = {exact_of(exact, s) + noise(), scale};
            set_noised(release.noised, s, sums.scalar[s].value);
        }
    }
    Builder builder(doc, sums, patients_with_data);
    for (const auto& st : doc.request.statistics) {
        builder.add(st, release.figures);
    }
    return release;
}

json release_json(const QueryDocument& doc, const std::string& hash, const Release& release,
                  std::size_t patients_with_data, std::int64_t released_ms) {
    json figures = json::array();
    for (const auto& f : release.figures) {
        figures.push_back({{"statistic", f.statistic},
                           {"name", f.name},
                           {"unit", f.unit},
                           {"value", f.value ? json(*f.value) : json(nullptr)},
                           {"interval95", f.interval95
                                              ? json::array({f.interval95->first, f.interval95->second})
                                              : json(nullptr)},
                           {"scale", f.scale.empty() ? json(nullptr) : json(f.scale)}});
    }
    const auto& r = doc.request;
    return {{"v", kReleaseVersion},
            {"query", doc.id},
            {"hash", hash},
            {"released_ms", released_ms},
            {"cohort", r.cohort ? json(*r.cohort) : json(nullptr)},
            {"metric", r.metric},
            {"from_ms", r.from_ms},
            {"to_ms", r.to_ms},
            {"cohort_size", doc.members.size()},
            {"patients_with_data", patients_with_data},
            {"epsilon", r.epsilon_milli ? json(format_epsilon(*r.epsilon_milli)) : json(nullptr)},
            {"noise", r.epsilon_milli ? "discrete-laplace" : "none"},
            {"cap_records", doc.cap_records},
            {"record_seconds", doc.record_seconds},
            {"figures", figures}};
}

std::vector<std::string> figure_names(const Statistic& s) {
    QueryDocument doc;
    doc.request.statistics = {s};
    doc.cap_records = 1;
    HeartRateStats zero;
    SplitMix64Source unused(0);
    std::vector<std::string> out;
    for (const auto& f : build_release(doc, zero, 0, unused).figures) {
        out.push_back(f.name);
    }
    return out;
}

}  // namespace cipherpulse::cohort
