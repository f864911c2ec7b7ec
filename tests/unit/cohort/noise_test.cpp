// Exact DP noise: uniform and Bernoulli primitives, discrete Laplace goodness of fit, the
// reported 95 % interval and the epsilon text format.
//
// The statistical tests use fixed SplitMix64 seeds, so they are deterministic; the one
// OpenSSL run fails by chance with probability about 1e-6. Each statistical check is
// also shown to reject a slightly wrong distribution, so it can fail.
#include "cohort/noise.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace cipherpulse::cohort {
namespace {

std::string str(Wide value) {
    if (value == 0) {
        return "0";
    }
    std::string out;
    while (value != 0) {
        out.insert(out.begin(), static_cast<char>('0' + static_cast<int>(value % 10)));
        value /= 10;
    }
    return out;
}

std::string str(SignedWide value) {
    return value < 0 ? "-" + str(Wide{0} - static_cast<Wide>(value))
                     : str(static_cast<Wide>(value));
}

Wide pow2(unsigned bits) {
    return Wide{1} << bits;
}

// ScriptedSource replays fixed words, to check exactly which draws are accepted.
class ScriptedSource final : public UniformSource {
  public:
    explicit ScriptedSource(std::vector<std::uint64_t> words) : words_(std::move(words)) {}
    std::uint64_t next_u64() override {
        if (next_ >= words_.size()) {
            throw std::logic_error("ScriptedSource exhausted");
        }
        return words_[next_++];
    }
    std::size_t used() const { return next_; }

  private:
    std::vector<std::uint64_t> words_;
    std::size_t next_ = 0;
};

// CountingSource counts the words drawn from SplitMix64.
class CountingSource final : public UniformSource {
  public:
    explicit CountingSource(std::uint64_t seed) : inner_(seed) {}
    std::uint64_t next_u64() override {
        ++count_;
        return inner_.next_u64();
    }
    std::size_t count() const { return count_; }

  private:
    SplitMix64Source inner_;
    std::size_t count_ = 0;
};

// ---- chi-square distribution ------------------------------------------------------------

// regularized_gamma_q is Q(a, x) = Gamma(a, x) / Gamma(a): the power series for P when
// x < a + 1, Lentz's continued fraction for Q otherwise (Numerical Recipes, 6.2). Checked
// below against closed forms.
double regularized_gamma_q(double a, double x) {
    if (x <= 0) {
        return 1.0;
    }
    const double log_prefix = -x + a * std::log(x) - std::lgamma(a);
    if (x < a + 1) {
        double term = 1.0 / a;
        double sum = term;
        for (int n = 1; n < 100000; ++n) {
            term *= x / (a + n);
            sum += term;
            if (std::fabs(term) < std::fabs(sum) * 1e-17) {
                break;
            }
        }
        return 1.0 - sum * std::exp(log_prefix);
    }
    constexpr double kTiny = 1e-300;
    double b = x + 1 - a;
    double c = 1 / kTiny;
    double d = 1 / b;
    double h = d;
    for (int i = 1; i < 100000; ++i) {
        const double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        d = std::fabs(d) < kTiny ? kTiny : d;
        c = b + an / c;
        c = std::fabs(c) < kTiny ? kTiny : c;
        d = 1 / d;
        const double delta = d * c;
        h *= delta;
        if (std::fabs(delta - 1) < 1e-16) {
            break;
        }
    }
    return std::exp(log_prefix) * h;
}

// chi_square_p_value is P(chi^2_df >= statistic).
double chi_square_p_value(double statistic, int df) {
    return regularized_gamma_q(df / 2.0, statistic / 2.0);
}

TEST(ChiSquareTest, PValueMatchesClosedForms) {
    // Even df: Q(k, y) = e^-y sum_{i<k} y^i / i!.
    for (int df : {2, 4, 10, 40, 120}) {
        for (double x : {0.5, 3.0, 10.0, 45.0, 100.0, 190.0}) {
            const double y = x / 2;
            double term = 1;
            double sum = 0;
            for (int i = 0; i < df / 2; ++i) {
                sum += term;
                term *= y / (i + 1);
            }
            const double expected = std::exp(-y) * sum;
            EXPECT_NEAR(chi_square_p_value(x, df), expected, 1e-12 + 1e-9 * expected)
                << "df=" << df << " x=" << x;
        }
    }
    // df = 1: Q(1/2, x/2) = erfc(sqrt(x/2)); 3.8415 is the textbook 5 % point.
    for (double x : {0.1, 1.0, 3.841458820694124, 12.0, 30.0}) {
        EXPECT_NEAR(chi_square_p_value(x, 1), std::erfc(std::sqrt(x / 2)), 1e-12);
    }
    EXPECT_NEAR(chi_square_p_value(3.841458820694124, 1), 0.05, 1e-12);
    EXPECT_NEAR(chi_square_p_value(18.307038053275146, 10), 0.05, 1e-12);
}

// ---- discrete Laplace reference -----------------------------------------------------------

// cdf is P(X <= x) for the discrete Laplace of scale t, from the closed forms
// P(X <= -k) = q^k / (1 + q) and P(X > k) = q^(k+1) / (1 + q).
long double cdf(std::int64_t x, long double t) {
    const long double one_plus_q = 1 + std::exp(-1 / t);
    if (x < 0) {
        return std::exp(static_cast<long double>(x) / t) / one_plus_q;
    }
    return 1 - std::exp(-static_cast<long double>(x + 1) / t) / one_plus_q;
}

// quantile is the smallest integer x with cdf(x) >= u.
std::int64_t quantile(long double u, long double t) {
    auto lo = static_cast<std::int64_t>(-std::ceil(80 * t)) - 2;  // cdf(lo) < u
    auto hi = -lo;                                                // cdf(hi) >= u
    while (hi - lo > 1) {
        const std::int64_t mid = lo + (hi - lo) / 2;
        (cdf(mid, t) >= u ? hi : lo) = mid;
    }
    return hi;
}

struct Fit {
    double statistic = 0;
    int df = 0;
    double p_value = 0;
};

// Bins is a partition of the integers for a chi-square test: bin i holds the x with
// upper[i-1] < x <= upper[i] (upper[-1] = -inf, the last bin is unbounded above).
struct Bins {
    std::vector<std::int64_t> upper;
    std::vector<double> probability;

    std::size_t index(std::int64_t x) const {
        return static_cast<std::size_t>(std::lower_bound(upper.begin(), upper.end(), x) -
                                        upper.begin());
    }
};

// make_bins cuts at quantiles: every percentile, plus finer cuts in both tails (down to
// 5e-5), then pools neighbours until each bin expects at least 5 of `samples`.
Bins make_bins(long double t, std::size_t samples) {
    std::vector<long double> cuts = {5e-5L, 1e-4L, 2e-4L, 5e-4L, 1e-3L, 2e-3L, 5e-3L};
    for (std::size_t i = 0, n = cuts.size(); i < n; ++i) {
        cuts.push_back(1 - cuts[i]);
    }
    for (int k = 1; k < 100; ++k) {
        cuts.push_back(k / 100.0L);
    }
    std::vector<std::int64_t> edges;
    for (long double u : cuts) {
        edges.push_back(quantile(u, t));
    }
    std::sort(edges.begin(), edges.end());
    edges.erase(std::unique(edges.begin(), edges.end()), edges.end());

    Bins bins;
    const double minimum = 5.0 / static_cast<double>(samples);
    long double below = 0;  // cdf at the previous kept edge
    for (std::int64_t edge : edges) {
        const long double p = cdf(edge, t) - below;
        if (p >= minimum) {
            bins.upper.push_back(edge);
            bins.probability.push_back(static_cast<double>(p));
            below += p;
        }
    }
    const long double rest = 1 - below;
    if (rest >= minimum || bins.upper.empty()) {
        bins.probability.push_back(static_cast<double>(rest));
    } else {  // pool a thin upper tail into the last bin
        bins.upper.pop_back();
        bins.probability.back() += static_cast<double>(rest);
    }
    return bins;
}

Fit chi_square_fit(const std::vector<std::int64_t>& samples, const Bins& bins) {
    std::vector<double> observed(bins.probability.size(), 0.0);
    for (std::int64_t x : samples) {
        observed[bins.index(x)] += 1;
    }
    Fit fit;
    const auto n = static_cast<double>(samples.size());
    for (std::size_t i = 0; i < observed.size(); ++i) {
        const double expected = n * bins.probability[i];
        fit.statistic += (observed[i] - expected) * (observed[i] - expected) / expected;
    }
    fit.df = static_cast<int>(observed.size()) - 1;
    fit.p_value = chi_square_p_value(fit.statistic, fit.df);
    return fit;
}

std::vector<std::int64_t> draw(Scale scale, std::size_t count, UniformSource& source) {
    std::vector<std::int64_t> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        const SignedWide x = sample_discrete_laplace(scale, source);
        if (x > std::numeric_limits<std::int64_t>::max() ||
            x < std::numeric_limits<std::int64_t>::min()) {
            ADD_FAILURE() << "sample out of int64 range: " << str(x);
            return out;
        }
        out.push_back(static_cast<std::int64_t>(x));
    }
    return out;
}

long double as_real(Scale scale) {
    return static_cast<long double>(scale.num) / static_cast<long double>(scale.den);
}

constexpr double kSignificance = 1e-6;
constexpr std::size_t kFitSamples = 200'000;

// expect_fits checks one sample set against scale `t`: chi-square, symmetry, mean 0.
void expect_fits(const std::vector<std::int64_t>& samples, long double t) {
    const Bins bins = make_bins(t, samples.size());
    ASSERT_GE(bins.probability.size(), 2u);
    const Fit fit = chi_square_fit(samples, bins);
    EXPECT_GT(fit.p_value, kSignificance)
        << "t=" << static_cast<double>(t) << " chi2=" << fit.statistic << " df=" << fit.df;

    const auto n = static_cast<double>(samples.size());
    const long double q = std::exp(-1 / t);
    const double p_zero = static_cast<double>(-std::expm1(-1 / t) / (1 + q));
    double positive = 0;
    double negative = 0;
    SignedWide sum = 0;
    for (std::int64_t x : samples) {
        positive += x > 0 ? 1 : 0;
        negative += x < 0 ? 1 : 0;
        sum += x;
    }
    // positive - negative sums n terms of mean 0 and variance P(X != 0).
    EXPECT_LE(std::fabs(positive - negative), 5 * std::sqrt(n * (1 - p_zero)))
        << "t=" << static_cast<double>(t);
    // Var X = 2q / (1-q)^2.
    const double sd = static_cast<double>(std::sqrt(2 * q) / -std::expm1(-1 / t));
    EXPECT_LE(std::fabs(static_cast<double>(sum) / n), 5 * sd / std::sqrt(n))
        << "t=" << static_cast<double>(t);
}

// ---- uniform_below --------------------------------------------------------------------------

TEST(UniformBelowTest, RejectsInsteadOfReducing) {
    // n = 5 draws 3 bits: 7, 6 and 5 are rejected, 4 accepted (no modulo bias).
    ScriptedSource small({7, 6, 5, 4});
    EXPECT_TRUE(uniform_below(5, small) == 4);
    EXPECT_EQ(small.used(), 4u);
    // Bits above the bit length are masked off, not rejected.
    ScriptedSource masked({0xfffffffffffffff8ULL});
    EXPECT_TRUE(uniform_below(5, masked) == 0);
    // n = 2^64 takes a word as it is.
    ScriptedSource full({~std::uint64_t{0}});
    EXPECT_TRUE(uniform_below(pow2(64), full) == pow2(64) - 1);
    // n = 2^64 + 1 needs 65 bits: (1, 1) = 2^64 + 1 is rejected, (1, 0) = 2^64 accepted.
    ScriptedSource wide({3, 1, 1, 0});
    EXPECT_TRUE(uniform_below(pow2(64) + 1, wide) == pow2(64));
    EXPECT_EQ(wide.used(), 4u);
}

TEST(UniformBelowTest, OneIsAlwaysZeroWithoutDrawing) {
    CountingSource source(1);
    for (int i = 0; i < 100; ++i) {
        EXPECT_TRUE(uniform_below(1, source) == 0);
    }
    EXPECT_EQ(source.count(), 0u);
    EXPECT_THROW((void)uniform_below(0, source), std::invalid_argument);
}

TEST(UniformBelowTest, SmallRangesAreUniform) {
    SplitMix64Source source(11);
    for (std::uint64_t n : {2u, 3u, 5u, 7u, 10u, 33u}) {
        constexpr int kDraws = 60'000;
        std::vector<int> counts(n, 0);
        for (int i = 0; i < kDraws; ++i) {
            const Wide x = uniform_below(n, source);
            ASSERT_TRUE(x < n);
            ++counts[static_cast<std::size_t>(x)];
        }
        const double p = 1.0 / static_cast<double>(n);
        for (int c : counts) {
            EXPECT_LE(std::fabs(c - kDraws * p), 5 * std::sqrt(kDraws * p * (1 - p))) << n;
        }
    }
}

TEST(UniformBelowTest, WideRangesStayBelowAndUseTheHighWord) {
    SplitMix64Source source(12);
    for (Wide n : {pow2(64) - 1, pow2(64), pow2(64) + 1, pow2(100) + 3, ~Wide{0}}) {
        constexpr int kDraws = 20'000;
        int upper_half = 0;  // x >= n - n/2 has probability (n/2) / n, about 1/2
        for (int i = 0; i < kDraws; ++i) {
            const Wide x = uniform_below(n, source);
            ASSERT_TRUE(x < n) << str(x) << " >= " << str(n);
            upper_half += x >= n - n / 2 ? 1 : 0;
        }
        EXPECT_LE(std::fabs(upper_half - kDraws * 0.5), 5 * std::sqrt(kDraws * 0.25)) << str(n);
    }
}

// ---- Bernoulli --------------------------------------------------------------------------------

TEST(BernoulliRationalTest, ExtremesAndFrequency) {
    CountingSource source(3);
    EXPECT_FALSE(bernoulli_rational(0, 7, source));
    EXPECT_TRUE(bernoulli_rational(7, 7, source));
    EXPECT_EQ(source.count(), 0u);
    EXPECT_THROW((void)bernoulli_rational(1, 0, source), std::invalid_argument);
    EXPECT_THROW((void)bernoulli_rational(3, 2, source), std::invalid_argument);
    constexpr int kDraws = 100'000;
    int hits = 0;
    for (int i = 0; i < kDraws; ++i) {
        hits += bernoulli_rational(2, 7, source) ? 1 : 0;
    }
    const double p = 2.0 / 7;
    EXPECT_LE(std::fabs(hits - kDraws * p), 5 * std::sqrt(kDraws * p * (1 - p)));
}

struct Gamma {
    Wide num;
    Wide den;
};

// frequency is the share of `draws` calls of bernoulli_exp(gamma) that return true.
double frequency(Gamma gamma, int draws, UniformSource& source) {
    int hits = 0;
    for (int i = 0; i < draws; ++i) {
        hits += bernoulli_exp(gamma.num, gamma.den, source) ? 1 : 0;
    }
    return hits / static_cast<double>(draws);
}

TEST(BernoulliExpTest, FrequenciesMatchExpMinusGamma) {
    constexpr int kDraws = 200'000;
    // 1/3 also as 2^62 / (3 * 2^62): den * K then exceeds 64 bits.
    const std::vector<Gamma> gammas = {{0, 1}, {1, 3}, {pow2(62), 3 * pow2(62)}, {1, 1}, {5, 2},
                                       {7, 1}, {21, 3}};
    std::uint64_t seed = 100;
    for (const Gamma& gamma : gammas) {
        SplitMix64Source source(seed++);
        const double g = static_cast<double>(gamma.num) / static_cast<double>(gamma.den);
        const double p = std::exp(-g);
        const double share = frequency(gamma, kDraws, source);
        EXPECT_LE(std::fabs(share - p), 5 * std::sqrt(p * (1 - p) / kDraws) + 1e-12)
            << "gamma=" << g << " share=" << share << " expected=" << p;
    }
}

TEST(BernoulliExpTest, FrequencyCheckDetectsAWrongGamma) {
    // The 5-SE check above would reject exp(-0.3) as the law of gamma = 1/3.
    SplitMix64Source source(7);
    constexpr int kDraws = 200'000;
    const double share = frequency({1, 3}, kDraws, source);
    const double wrong = std::exp(-0.3);
    EXPECT_GT(std::fabs(share - wrong), 5 * std::sqrt(wrong * (1 - wrong) / kDraws));
}

TEST(BernoulliExpTest, ZeroDrawsNothingAndBadDenominatorsThrow) {
    CountingSource source(5);
    EXPECT_TRUE(bernoulli_exp(0, 12345, source));
    EXPECT_EQ(source.count(), 0u);
    EXPECT_THROW((void)bernoulli_exp(1, 0, source), std::invalid_argument);
    EXPECT_THROW((void)bernoulli_exp(1, kMaxBernoulliExpDen, source), std::invalid_argument);
    EXPECT_NO_THROW((void)bernoulli_exp(1, kMaxBernoulliExpDen - 1, source));
    // A huge gamma is refused quickly: the first failed exp(-1) trial ends it.
    EXPECT_FALSE(bernoulli_exp(~Wide{0}, 1, source));
}

// ---- discrete Laplace ------------------------------------------------------------------------

TEST(DiscreteLaplaceTest, FitsExactPmf) {
    const std::vector<Scale> scales = {{1, 2},  {1, 1},    {3, 1},
                                       {10, 1}, {1000, 3}, {1'000'000'000'000, 1}};
    std::uint64_t seed = 2024;
    for (const Scale& scale : scales) {
        SplitMix64Source source(seed++);
        SCOPED_TRACE("t=" + str(scale.num) + "/" + str(scale.den));
        expect_fits(draw(scale, kFitSamples, source), as_real(scale));
    }
}

TEST(DiscreteLaplaceTest, FitsExactPmfWithOpenSsl) {
    OpenSslSource source;
    const Scale scale{1000, 3};
    expect_fits(draw(scale, kFitSamples, source), as_real(scale));
}

TEST(DiscreteLaplaceTest, FitDetectsAWrongScale) {
    // Samples of scale 1.05 (and 1.05e12) must fail the test for 1 (and 1e12).
    SplitMix64Source source(99);
    const auto small = draw({21, 20}, kFitSamples, source);
    EXPECT_LT(chi_square_fit(small, make_bins(1, kFitSamples)).p_value, kSignificance);
    const auto big = draw({1'050'000'000'000, 1}, kFitSamples, source);
    EXPECT_LT(chi_square_fit(big, make_bins(1e12L, kFitSamples)).p_value, kSignificance);
}

TEST(DiscreteLaplaceTest, TinyScaleIsAlmostAlwaysZero) {
    SplitMix64Source source(8);
    for (int i = 0; i < 1000; ++i) {
        EXPECT_TRUE(sample_discrete_laplace(1, 1000, source) == 0);
    }
}

TEST(DiscreteLaplaceTest, InvalidScalesThrow) {
    SplitMix64Source source(9);
    EXPECT_THROW((void)sample_discrete_laplace(0, 1, source), std::invalid_argument);
    EXPECT_THROW((void)sample_discrete_laplace(1, 0, source), std::invalid_argument);
    EXPECT_THROW((void)sample_discrete_laplace(kMaxScaleTerm, 1, source), std::invalid_argument);
    EXPECT_THROW((void)sample_discrete_laplace(1, kMaxScaleTerm, source), std::invalid_argument);
    // The largest accepted terms work, and the sample is of the expected size (t ~ 4.6e18).
    const SignedWide x = sample_discrete_laplace(kMaxScaleTerm - 1, 1, source);
    EXPECT_TRUE(x < static_cast<SignedWide>(pow2(62)) * 100 &&
                x > -static_cast<SignedWide>(pow2(62)) * 100)
        << str(x);
    EXPECT_NO_THROW((void)sample_discrete_laplace(kMaxScaleTerm - 1, kMaxScaleTerm - 1, source));
}

TEST(DiscreteLaplaceTest, PmfSumsToOne) {
    for (double t : {0.001, 0.5, 1.0, 3.0, 1000.0 / 3}) {
        long double total = 0;
        for (int x = -20000; x <= 20000; ++x) {
            total += discrete_laplace_pmf(x, t);
        }
        EXPECT_NEAR(static_cast<double>(total), 1.0, 1e-12) << t;
    }
    EXPECT_DOUBLE_EQ(discrete_laplace_pmf(0, 1.0), std::tanh(0.5));
    EXPECT_DOUBLE_EQ(discrete_laplace_pmf(-3, 1.0), std::tanh(0.5) * std::exp(-3.0));
    EXPECT_THROW((void)discrete_laplace_pmf(0, 0.0), std::invalid_argument);
    EXPECT_THROW((void)discrete_laplace_pmf(0, -1.0), std::invalid_argument);
    EXPECT_THROW((void)discrete_laplace_pmf(0, std::nan("")), std::invalid_argument);
    EXPECT_THROW((void)discrete_laplace_pmf(0, INFINITY), std::invalid_argument);
}

// ---- scale and interval -------------------------------------------------------------------------

TEST(LaplaceScaleTest, IsSensitivityOverEpsilonInLowestTerms) {
    const auto expect_scale = [](Wide sensitivity, std::uint32_t milli, Wide num, Wide den) {
        const Scale s = laplace_scale(sensitivity, milli);
        EXPECT_TRUE(s.num == num && s.den == den)
            << str(sensitivity) << "/" << milli << "e-3 gave " << str(s.num) << "/" << str(s.den);
    };
    expect_scale(1, 1000, 1, 1);
    expect_scale(1, 500, 2, 1);
    expect_scale(3, 125, 24, 1);
    expect_scale(1, 3, 1000, 3);
    expect_scale(2, 1500, 4, 3);
    expect_scale(7, 100'000, 7, 100);
    EXPECT_THROW((void)laplace_scale(0, 1000), std::invalid_argument);
    EXPECT_THROW((void)laplace_scale(1, 0), std::invalid_argument);
    EXPECT_THROW((void)laplace_scale(kMaxSensitivity, 1000), std::invalid_argument);
    const Scale largest = laplace_scale(kMaxSensitivity - 1, 1);
    SplitMix64Source source(1);
    EXPECT_NO_THROW((void)sample_discrete_laplace(largest, source));
}

// smallest_w_by_summing adds the pmf outwards from 0 until the mass reaches 0.95.
Wide smallest_w_by_summing(double t) {
    long double mass = discrete_laplace_pmf(0, t);
    Wide w = 0;
    while (mass < 0.95L) {
        ++w;
        mass += 2.0L * discrete_laplace_pmf(static_cast<SignedWide>(w), t);
    }
    return w;
}

TEST(LaplaceIntervalTest, IsTheSmallestCoveringIntegerForSmallScales) {
    const std::vector<Scale> scales = {{1, 1000}, {1, 10}, {1, 2},   {1, 1},    {3, 2},
                                       {3, 1},    {10, 1}, {100, 1}, {1000, 3}, {2000, 1}};
    for (const Scale& scale : scales) {
        const double t = static_cast<double>(as_real(scale));
        EXPECT_TRUE(laplace_interval_95(scale) == smallest_w_by_summing(t))
            << "t=" << t << " w=" << str(laplace_interval_95(scale))
            << " summed=" << str(smallest_w_by_summing(t));
    }
    // Hand-computed: t = 1 needs w = 3 (tail 0.0268; w = 2 leaves 0.0728), t = 10 needs 30.
    EXPECT_TRUE(laplace_interval_95({1, 1}) == 3);
    EXPECT_TRUE(laplace_interval_95({10, 1}) == 30);
    EXPECT_TRUE(laplace_interval_95({1, 1000}) == 0);
    EXPECT_TRUE(laplace_interval_95({1, kMaxScaleTerm - 1}) == 0);
    EXPECT_THROW((void)laplace_interval_95({0, 1}), std::invalid_argument);
    EXPECT_THROW((void)laplace_interval_95({1, 0}), std::invalid_argument);
    EXPECT_THROW((void)laplace_interval_95({kMaxScaleTerm, 1}), std::invalid_argument);
}

// tail is P(|X| > w) = 2 q^(w+1) / (1 + q), straight from the closed form.
long double tail(Wide w, long double t) {
    return 2 * std::exp(-static_cast<long double>(w + 1) / t) / (1 + std::exp(-1 / t));
}

TEST(LaplaceIntervalTest, LargeScalesAreCloseToTLn20) {
    for (Wide t : {Wide{100'000}, Wide{1'000'000}, Wide{123'456'789}}) {
        const Wide w = laplace_interval_95({t, 1});
        const auto real = static_cast<long double>(t);
        EXPECT_LE(tail(w, real), 0.05L) << str(t);
        EXPECT_GT(tail(w - 1, real), 0.05L) << str(t);
    }
    // w + 1 = ceil(t ln 20 + 1/2 + O(1/t)), so |w - t ln 20| < 1.
    Wide previous = 0;
    for (Wide t : {Wide{1'000'000'000'000}, Wide{1'000'000'000'000'000},
                   Wide{1'000'000'000'000'000'000}, kMaxScaleTerm - 1}) {
        const Wide w = laplace_interval_95({t, 1});
        const long double expected = static_cast<long double>(t) * std::log(20.0L);
        EXPECT_LE(std::fabs(static_cast<long double>(w) - expected), 2.0L) << str(t);
        EXPECT_TRUE(w > previous);
        previous = w;
    }
    // Rational scales: 10^18 / 3 lies between the integer neighbours.
    const Wide third = laplace_interval_95({1'000'000'000'000'000'000, 3});
    EXPECT_TRUE(third >= laplace_interval_95({333'333'333'333'333'333, 1}));
    EXPECT_TRUE(third <= laplace_interval_95({333'333'333'333'333'334, 1}));
}

TEST(LaplaceIntervalTest, MatchesHighPrecisionValuesForLargeScales) {
    // w + 1 = ceil(t ln(40 / (1 + exp(-1/t)))) evaluated with mpmath at 80 digits. At these
    // scales a long double t * ln 20 is off by several units; the last three were wrong by
    // one with the plain long double formula.
    struct Vector {
        std::uint64_t num;
        std::uint64_t den;
        std::uint64_t w;
    };
    const std::vector<Vector> vectors = {
        {1'000'000'000'000ULL, 1, 2'995'732'273'554ULL},
        {1'000'000'000'001ULL, 1, 2'995'732'273'557ULL},
        {123'456'789'012'345ULL, 1, 369'843'487'233'628ULL},
        {1'000'000'000'000'000ULL, 1, 2'995'732'273'553'991ULL},
        {100'000'000'000'000'003ULL, 1, 299'573'227'355'399'108ULL},
        {1'000'000'000'000'000'000ULL, 1, 2'995'732'273'553'990'993ULL},
        {1'000'000'000'000'000'000ULL, 3, 998'577'424'517'996'998ULL},
        {999'999'999'999'999'989ULL, 1, 2'995'732'273'553'990'960ULL},
        {4'611'686'018'427'387'903ULL, 1, 13'815'376'640'900'631'167ULL},
        {4'611'686'018'427'387'903ULL, 7, 1'973'625'234'414'375'881ULL},
        {4'611'686'018'427'387'903ULL, 4'611'686'018'427'387'901ULL, 3},
        {266'078'478'979'731'929ULL, 1, 797'099'886'777'740'133ULL},
        {958'519'559'184'420'708ULL, 1, 2'871'467'978'281'513'877ULL},
        {4'199'686'043'588'694'869ULL, 1, 12'581'135'019'572'926'200ULL},
        // These need the low word of the fixed-point ln 20.
        {4'469'795'240'460'705'705ULL, 1, 13'390'309'858'026'157'775ULL},
        {4'535'633'490'580'073'819ULL, 1, 13'587'543'628'743'068'734ULL},
        {4'043'301'330'976'426'929ULL, 1, 12'112'648'288'909'889'275ULL},
    };
    for (const Vector& v : vectors) {
        const Wide w = laplace_interval_95({v.num, v.den});
        EXPECT_TRUE(w == v.w) << v.num << "/" << v.den << ": " << str(w) << " != " << v.w;
    }
}

TEST(LaplaceIntervalTest, CoverageMatchesBySampling) {
    constexpr int kDraws = 100'000;
    std::uint64_t seed = 500;
    for (Scale scale : {Scale{1, 1}, Scale{10, 1}, Scale{1'000'000, 1}}) {
        SplitMix64Source source(seed++);
        const Wide w = laplace_interval_95(scale);
        const long double t = as_real(scale);
        const double exact = static_cast<double>(1 - tail(w, t));
        EXPECT_GE(exact, 0.95);
        EXPECT_LT(exact, 0.975);  // 0.973 at t = 1 is the discreteness, not slack
        int inside = 0;
        for (int i = 0; i < kDraws; ++i) {
            const SignedWide x = sample_discrete_laplace(scale, source);
            inside += (x < 0 ? Wide{0} - static_cast<Wide>(x) : static_cast<Wide>(x)) <= w;
        }
        const double share = inside / static_cast<double>(kDraws);
        EXPECT_LE(std::fabs(share - exact), 5 * std::sqrt(exact * (1 - exact) / kDraws))
            << "t=" << static_cast<double>(t) << " share=" << share << " exact=" << exact;
    }
}

// ---- sources --------------------------------------------------------------------------------

TEST(SourceTest, SplitMixIsDeterministicAndMatchesReference) {
    // First outputs of SplitMix64 seeded with 0 (Vigna's reference implementation).
    SplitMix64Source source(0);
    EXPECT_EQ(source.next_u64(), 0xe220a8397b1dcdafULL);
    EXPECT_EQ(source.next_u64(), 0x6e789e6aa1b965f4ULL);
    EXPECT_EQ(source.next_u64(), 0x06c45d188009454fULL);
    SplitMix64Source a(42);
    SplitMix64Source b(42);
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(a.next_u64(), b.next_u64());
    }
}

TEST(SourceTest, OpenSslCrossesBufferRefillsWithFreshWords) {
    OpenSslSource source;
    std::set<std::uint64_t> seen;
    int ones = 0;
    constexpr int kWords = 3 * static_cast<int>(kOpenSslBufferSize / 8) + 5;
    for (int i = 0; i < kWords; ++i) {
        const std::uint64_t word = source.next_u64();
        seen.insert(word);
        ones += std::popcount(word);
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(kWords));
    EXPECT_LE(std::fabs(ones - kWords * 32.0), 5 * std::sqrt(kWords * 16.0));
}

// ---- epsilon text ---------------------------------------------------------------------------

TEST(EpsilonTest, ParsesPlainDecimalsIntoThousandths) {
    const std::vector<std::pair<std::string_view, std::uint32_t>> good = {
        {"1", 1000},        {"0.5", 500}, {"0.125", 125},     {"2.25", 2250},
        {"100", 100'000},   {"0.001", 1}, {"1.500", 1500},    {"10", 10'000},
        {"99.999", 99'999}, {"0.05", 50}, {"100.0", 100'000}, {"7.0", 7000}};
    for (const auto& [text, milli] : good) {
        EXPECT_EQ(parse_epsilon_milli(text), std::optional<std::uint32_t>(milli)) << text;
    }
}

TEST(EpsilonTest, RefusesEverythingElse) {
    const std::vector<std::string_view> bad = {
        "",        "-1",      "+1",  "1e3",  "0",     "0.0",  "0.000",
        "0.0001",  "abc",     "1.",  ".5",   "01",    "00.5", " 1",
        "1 ",      "100.001", "101", "1000", "1.2.3", "1,5",  "0x1",
        "0.1000",  "inf",     "nan", ".",    "1..5",  "5.-1", std::string_view("1\0", 2),
        "\xd9\xa1" /* Arabic-Indic one */};
    for (std::string_view text : bad) {
        EXPECT_EQ(parse_epsilon_milli(text), std::nullopt) << "'" << text << "'";
    }
}

TEST(EpsilonTest, FormatsShortestAndRoundTrips) {
    EXPECT_EQ(format_epsilon(500), "0.5");
    EXPECT_EQ(format_epsilon(1000), "1");
    EXPECT_EQ(format_epsilon(125), "0.125");
    EXPECT_EQ(format_epsilon(2250), "2.25");
    EXPECT_EQ(format_epsilon(1), "0.001");
    EXPECT_EQ(format_epsilon(10), "0.01");
    EXPECT_EQ(format_epsilon(1010), "1.01");
    EXPECT_EQ(format_epsilon(100'000), "100");
    EXPECT_EQ(format_epsilon(0), "0");
    for (std::uint32_t milli = 1; milli <= kMaxEpsilonMilli; ++milli) {
        ASSERT_EQ(parse_epsilon_milli(format_epsilon(milli)), std::optional<std::uint32_t>(milli))
            << milli;
    }
}

}  // namespace
}  // namespace cipherpulse::cohort
