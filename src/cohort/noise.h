// Exact differential-privacy noise for cohort statistics releases.
//
// Every sampling decision here is made with integer arithmetic on exact rationals, never
// with floating point, so the released noise follows the stated distribution exactly (no
// rounding artefacts of the kind Mironov 2012 exploited in floating-point Laplace noise).
// The algorithms are those of
//
//   C. L. Canonne, G. Kamath, T. Steinke, "The Discrete Gaussian for Differential
//   Privacy", NeurIPS 2020 (arXiv:2004.00010): Algorithm 1 (Bernoulli(exp(-gamma)) for
//   rational gamma) and Algorithm 2 (discrete Laplace with rational scale).
//
// Randomness comes from a UniformSource: OpenSslSource (RAND_bytes) in production,
// SplitMix64Source in deterministic tests only.
//
// Timing: the samplers use rejection, so their running time depends on the value drawn.
// They are not constant-time; do not expose per-release timing to an adversary who also
// sees the release.
//
// Floating point appears only in the reported figures (laplace_interval,
// discrete_laplace_pmf), never in a value that is released.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cipherpulse::cohort {

// Wide is the unsigned 128-bit integer all exact arithmetic is done in (a GCC/Clang
// extension; `__extension__` keeps -Wpedantic quiet).
__extension__ using Wide = unsigned __int128;

// SignedWide is the signed 128-bit integer a noise sample is returned in.
__extension__ using SignedWide = __int128;

// UniformSource produces independent, uniformly distributed 64-bit words. Implementations
// are not required to be thread-safe: use one source per thread.
class UniformSource {
  public:
    virtual ~UniformSource() = default;

    // next_u64 returns the next uniform 64-bit word. May throw (see the implementation).
    virtual std::uint64_t next_u64() = 0;
};

// OpenSslSource draws from OpenSSL's CSPRNG (RAND_bytes), kOpenSslBufferSize bytes at a
// time. Bytes are wiped as soon as they are handed out, and the unused rest of the buffer
// when the source is destroyed. Not thread-safe; not copyable or movable. Do not keep an
// instance across fork(): parent and child would hand out the same buffered bytes.
inline constexpr std::size_t kOpenSslBufferSize = 4096;

class OpenSslSource final : public UniformSource {
  public:
    OpenSslSource() = default;
    ~OpenSslSource() override;
    OpenSslSource(const OpenSslSource&) = delete;
    OpenSslSource& operator=(const OpenSslSource&) = delete;

    // next_u64 returns 64 fresh bits from RAND_bytes.
    // @throws std::runtime_error if RAND_bytes fails (the buffer is then left empty).
    std::uint64_t next_u64() override;

  private:
    void refill();

    std::array<unsigned char, kOpenSslBufferSize> buffer_{};
    std::size_t position_ = kOpenSslBufferSize;  // next unread byte; size = empty
};

// SplitMix64Source is Vigna's SplitMix64 generator: fast, statistically good and fully
// determined by its seed. For deterministic tests ONLY: it is predictable, so noise drawn
// from it gives no privacy at all. Never throws.
class SplitMix64Source final : public UniformSource {
  public:
    explicit SplitMix64Source(std::uint64_t seed) noexcept : state_(seed) {}
    std::uint64_t next_u64() noexcept override;

  private:
    std::uint64_t state_;
};

// uniform_below returns an exactly uniform integer in [0, n), by drawing the bit length of
// n - 1 in fresh bits and rejecting values >= n (fewer than two tries on average). n = 1
// returns 0 without drawing.
// @throws std::invalid_argument if n == 0; whatever `source` throws.
Wide uniform_below(Wide n, UniformSource& source);

// bernoulli_rational returns true with probability exactly num / den, as
// uniform_below(den) < num.
// @throws std::invalid_argument if den == 0 or num > den; whatever `source` throws.
bool bernoulli_rational(Wide num, Wide den, UniformSource& source);

// bernoulli_exp returns true with probability exactly exp(-num / den) (CKS 2020,
// Algorithm 1), for any num and any den >= 1. For gamma = num/den in [0, 1] it runs the
// series K = 1, 2, ... of Bernoulli(gamma / K) trials until one fails and returns whether
// the last K is odd; for gamma > 1 it needs floor(gamma) successes of Bernoulli(exp(-1))
// and then one of Bernoulli(exp(-(gamma - floor(gamma)))). A trial is one uniform draw
// below den * K when that product fits in 128 bits, and otherwise Bernoulli(num / den)
// and Bernoulli(1 / K) together, which has the same law. num = 0 returns true without
// drawing. Expected draws are O(1) whatever gamma and den are.
// @throws std::invalid_argument if den == 0; whatever `source` throws.
bool bernoulli_exp(Wide num, Wide den, UniformSource& source);

// kMaxScaleTerm is the largest numerator or denominator (inclusive) of a discrete Laplace
// scale: 2^100, about 1.27e30. It keeps U + scale_num * V (the sampler's geometric value)
// below 2^127 for every V below kMaxGeometricCount, so a sample always fits a SignedWide.
inline constexpr Wide kMaxScaleTerm = Wide{1} << 100;

// kMaxGeometricCount caps the sampler's count V of Bernoulli(exp(-1)) successes: reaching
// it has probability exp(-2^26) (a number with some 29 million zeros after the point), and
// the sampler then draws again.
inline constexpr std::uint64_t kMaxGeometricCount = std::uint64_t{1} << 26;

// sample_discrete_laplace returns X with P(X = x) proportional to exp(-|x| / t), where the
// scale t = scale_num / scale_den (CKS 2020, Algorithm 2, with the paper's t = scale_num
// and s = scale_den): draw U uniform in [0, scale_num) and keep it with probability
// exp(-U / scale_num); count V successes of Bernoulli(exp(-1)); X = U + scale_num * V is
// geometric with ratio exp(-1 / scale_num); Y = X / scale_den is geometric with ratio
// exp(-1 / t); attach a fair sign and reject (negative, 0) so 0 is not counted twice.
// Adding it to an integer statistic of sensitivity D with t = D / epsilon gives
// epsilon-differential privacy.
// Exactness: the law is exact except that V is conditioned on V < kMaxGeometricCount, a
// total-variation change below exp(-2^26) (formally an (epsilon, delta) guarantee with
// that delta). The terms need not be in lowest terms.
// Cost: O(1) expected draws for every accepted scale, from 2^-100 to 2^100: U is one
// uniform draw (two 64-bit words when scale_num > 2^64), it is kept with probability
// about 0.63, the Bernoulli(exp(-U / scale_num)) series needs at most e trials on
// average, and V averages 0.58; V never loops t times.
// @throws std::invalid_argument if scale_num or scale_den is 0 or > kMaxScaleTerm;
//         whatever `source` throws.
SignedWide sample_discrete_laplace(Wide scale_num, Wide scale_den, UniformSource& source);

// Scale is a rational discrete Laplace scale t = num / den.
struct Scale {
    Wide num;
    Wide den;
};

// sample_discrete_laplace(scale, source) is sample_discrete_laplace(scale.num, scale.den,
// source).
inline SignedWide sample_discrete_laplace(Scale scale, UniformSource& source) {
    return sample_discrete_laplace(scale.num, scale.den, source);
}

// laplace_scale returns the scale for releasing `shares` sums, each of the given
// sensitivity, under a total budget epsilon = epsilon_milli / 1000 split equally between
// them (epsilon / shares each, basic composition): t = sensitivity * shares * 1000 /
// epsilon_milli, reduced to lowest terms. The result is always accepted by
// sample_discrete_laplace and laplace_interval. Every sensitivity with sensitivity *
// shares * 1000 <= kMaxScaleTerm (sensitivity * shares up to about 1.27e27) is accepted
// for every epsilon; larger ones only when the reduction brings the numerator down to
// kMaxScaleTerm. No intermediate product can overflow.
// @throws std::invalid_argument if sensitivity, epsilon_milli or shares is 0.
// @throws std::out_of_range if the numerator in lowest terms exceeds kMaxScaleTerm (the
//         noise would not be representable); nothing is returned then.
Scale laplace_scale(Wide sensitivity, std::uint32_t epsilon_milli, std::uint32_t shares = 1);

// kPartsPerMillion is the unit of laplace_interval's level: 950'000 is 95 %.
inline constexpr std::uint32_t kPartsPerMillion = 1'000'000;

// laplace_interval returns the smallest integer w >= 0 with P(|X| <= w) >= level for the
// discrete Laplace X of scale t, where level = level_ppm / 10^6, using the closed form
// P(|X| > w) = 2 q^(w+1) / (1 + q), q = exp(-1/t): w + 1 = ceil(t * (ln(1 / alpha) +
// delta)), alpha = 1 - level, delta = -ln((1 + q) / 2) in (0, min(ln 2, 1 / (2t))]. So
// t ln(1/alpha) - 1 <= w < t ln(1/alpha) + 1/2 for every t. For a Bonferroni combination
// of m intervals with overall level L (ppm), pass 10^6 - floor((10^6 - L) / m), which
// rounds towards more coverage: 995'834 for m = 12 at 95 % (m above 10^6 - L leaves no
// valid level).
// Precision: a reported figure, not a sampling decision. ln(1/alpha) is computed in
// 128-bit fixed point (absolute error below 2^-121) and multiplied by scale.num exactly;
// only delta, whose contribution t * delta is at most 1/2, is taken in long double. The
// result is the exact minimum unless t * (ln(1/alpha) + delta) lies within about t *
// 2^-120 + 2^-60 of an integer (below 5e-18 for t up to 2^62, about 1e-6 at t = 2^100),
// in which case it can be one off. Because X is integer, the coverage at w can be well above the
// level for small t (0.973 at t = 1 for 95 %).
// @throws std::invalid_argument if scale.num or scale.den is 0 or > kMaxScaleTerm, or
//         level_ppm is 0 or >= kPartsPerMillion.
Wide laplace_interval(Scale scale, std::uint32_t level_ppm);

// laplace_interval_95 is laplace_interval(scale, 950'000), the 95 % half-width.
// @throws std::invalid_argument as laplace_interval does.
inline Wide laplace_interval_95(Scale scale) {
    return laplace_interval(scale, 950'000);
}

// discrete_laplace_pmf returns P(X = x) = (1 - q) / (1 + q) * q^|x|, q = exp(-1/t), in
// floating point, for tests and documentation.
// @throws std::invalid_argument unless t is finite and > 0.
double discrete_laplace_pmf(SignedWide x, double t);

// kMaxEpsilonMilli is the largest epsilon parse_epsilon_milli accepts (100), in
// thousandths.
inline constexpr std::uint32_t kMaxEpsilonMilli = 100'000;

// parse_epsilon_milli reads a privacy budget written as a plain decimal and returns it in
// thousandths: "1" -> 1000, "0.5" -> 500, "0.125" -> 125, "2.25" -> 2250, "1.500" -> 1500.
// Accepted: an integer part that is "0" or has no leading zero, then optionally "." and
// one to three digits; the value must be in (0, 100]. Refused (nullopt): empty text, any
// sign, whitespace, exponent or other character, "1." and ".5", leading zeros ("01"),
// more than three decimals ("0.0001", even "0.1000"), zero ("0", "0.000") and
// anything above 100. Meant for untrusted configuration text; never throws.
[[nodiscard]] std::optional<std::uint32_t> parse_epsilon_milli(std::string_view text);

// format_epsilon prints milli / 1000 as the shortest decimal that parse_epsilon_milli
// reads back to the same value: 500 -> "0.5", 1000 -> "1", 125 -> "0.125", 0 -> "0".
std::string format_epsilon(std::uint32_t milli);

}  // namespace cipherpulse::cohort
