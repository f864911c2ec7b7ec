#include "cohort/noise.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace cipherpulse::cohort {
namespace {

// bit_length is the number of significant bits of `value` (0 for 0). std::bit_width does
// not take __int128 in strict ISO mode, so the two halves are measured separately.
unsigned bit_length(Wide value) {
    const auto high = static_cast<std::uint64_t>(value >> 64);
    if (high != 0) {
        return 64 + static_cast<unsigned>(std::bit_width(high));
    }
    return static_cast<unsigned>(std::bit_width(static_cast<std::uint64_t>(value)));
}

Wide gcd(Wide a, Wide b) {
    while (b != 0) {
        const Wide r = a % b;
        a = b;
        b = r;
    }
    return a;
}

// Wide2 is a 256-bit unsigned integer high * 2^128 + low, for the fixed-point logarithm.
struct Wide2 {
    Wide high;
    Wide low;
};

constexpr Wide kLow64 = ~std::uint64_t{0};

// multiply returns the full 256-bit product a * b, from four 64 x 64 -> 128 products.
Wide2 multiply(Wide a, Wide b) {
    const Wide a0 = a & kLow64;
    const Wide a1 = a >> 64;
    const Wide b0 = b & kLow64;
    const Wide b1 = b >> 64;
    const Wide p00 = a0 * b0;
    const Wide p01 = a0 * b1;
    const Wide p10 = a1 * b0;
    const Wide p11 = a1 * b1;
    const Wide middle = (p00 >> 64) + (p01 & kLow64) + (p10 & kLow64);  // < 3 * 2^64
    return Wide2{p11 + (p01 >> 64) + (p10 >> 64) + (middle >> 64), (middle << 64) | (p00 & kLow64)};
}

// divide returns floor(n / d) for n.high < d (so the quotient fits 128 bits), by binary
// long division: slow, but only the reported interval uses it.
Wide divide(Wide2 n, Wide d) {
    Wide remainder = n.high;
    Wide quotient = 0;
    for (int i = 127; i >= 0; --i) {
        // remainder < d before the shift, so (remainder << 1 | bit) - d < d: one
        // subtraction, done modulo 2^128 when the shift carried out of the top bit.
        const bool carry = (remainder >> 127) != 0;
        remainder = (remainder << 1) | ((n.low >> i) & 1);
        if (carry || remainder >= d) {
            remainder -= d;
            quotient |= Wide{1} << i;
        }
    }
    return quotient;
}

// Fixed is a non-negative real whole + fraction / 2^128.
struct Fixed {
    Wide whole;
    Wide fraction;
};

// kLn2 is ln 2 * 2^128 rounded down (ln 2 = 0.6931471805599453094172321214581765680755...).
constexpr Wide kLn2 = (Wide{0xb17217f7d1cf79abULL} << 64) | 0xc9e3b39803f2f6afULL;

// atanh_fixed returns atanh(p / r) * 2^128, rounded down within a few units, for
// 0 <= p / r <= 1/3 and r < 2^32: the series sum of z^(2k+1) / (2k+1), each power from
// the last times p^2 / r^2 (a 256-bit product, so no precision is lost beforehand). Every
// term loses less than two units, and the terms shrink ninefold, so some 40 of them
// suffice.
Wide atanh_fixed(std::uint64_t p, std::uint64_t r) {
    Wide power = divide(Wide2{p, 0}, r);  // z * 2^128; p < r
    const Wide p2 = Wide{p} * p;
    const Wide r2 = Wide{r} * r;
    Wide sum = 0;
    for (Wide k = 1; power != 0; k += 2) {
        sum += power / k;
        power = divide(multiply(power, p2), r2);  // high part < p2 <= r2
    }
    return sum;
}

// log_fixed returns ln(a / b) for 1 <= b <= a < 2^31, as k ln 2 + 2 atanh(z) with 2^k b
// <= a < 2^(k+1) b and z = (a - 2^k b) / (a + 2^k b) <= 1/3. Absolute error below
// 2^-121 (at most 55 units of 2^-128 over all 999,999 levels laplace_interval takes,
// checked against an independent 60-digit evaluation); always an underestimate.
Fixed log_fixed(std::uint64_t a, std::uint64_t b) {
    unsigned k = 0;
    while ((b << (k + 1)) <= a) {
        ++k;
    }
    const std::uint64_t shifted = b << k;
    const Wide2 log2_part = multiply(k, kLn2);  // k < 31: whole part in high
    const Wide atanh_part = 2 * atanh_fixed(a - shifted, a + shifted);  // < 0.7 * 2^128
    Fixed out{log2_part.high, log2_part.low + atanh_part};
    if (out.fraction < atanh_part) {
        ++out.whole;  // the fraction carried
    }
    return out;
}

// trial_over returns true with probability num / (den * k), for num <= den and k >= 1.
// When den * k overflows 128 bits, Bernoulli(num / den) and Bernoulli(1 / k) drawn
// independently have the same law and need no wider integer.
bool trial_over(Wide num, Wide den, Wide k, UniformSource& source) {
    if (den <= ~Wide{0} / k) {
        return uniform_below(den * k, source) < num;
    }
    return uniform_below(den, source) < num && uniform_below(k, source) == 0;
}

// bernoulli_exp_unit is Algorithm 1 for gamma = num / den in [0, 1], arguments already
// validated (den >= 1, num <= den). P(the series stops at K = k) = gamma^(k-1) / (k-1)!
// * (1 - gamma / k), and the odd k sum to exp(-gamma).
bool bernoulli_exp_unit(Wide num, Wide den, UniformSource& source) {
    if (num == 0) {
        return true;
    }
    Wide k = 1;  // every increment costs a draw, so k never wraps
    while (trial_over(num, den, k, source)) {
        ++k;
    }
    return (k & 1) == 1;
}

// bernoulli_exp_minus_one is Bernoulli(exp(-1)).
bool bernoulli_exp_minus_one(UniformSource& source) {
    return bernoulli_exp_unit(1, 1, source);
}

void check_scale_terms(Wide num, Wide den, const char* function) {
    if (num == 0 || den == 0) {
        throw std::invalid_argument(std::string(function) + ": scale terms must be positive");
    }
    if (num > kMaxScaleTerm || den > kMaxScaleTerm) {
        throw std::invalid_argument(std::string(function) +
                                    ": scale terms must be at most kMaxScaleTerm = 2^100");
    }
}

// U < 2^100 plus scale_num * V with V < kMaxGeometricCount stays below 2^127, the
// SignedWide range a sample is returned in.
static_assert(kMaxScaleTerm * (Wide{kMaxGeometricCount} + 1) < (Wide{1} << 127));

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool all_digits(std::string_view text) {
    for (char c : text) {
        if (!is_digit(c)) {
            return false;
        }
    }
    return true;
}

}  // namespace

OpenSslSource::~OpenSslSource() {
    OPENSSL_cleanse(buffer_.data(), buffer_.size());
}

void OpenSslSource::refill() {
    if (RAND_bytes(buffer_.data(), static_cast<int>(buffer_.size())) != 1) {
        OPENSSL_cleanse(buffer_.data(), buffer_.size());
        position_ = buffer_.size();
        throw std::runtime_error("OpenSslSource: RAND_bytes failed");
    }
    position_ = 0;
}

std::uint64_t OpenSslSource::next_u64() {
    std::uint64_t word = 0;
    if (buffer_.size() - position_ < sizeof word) {
        refill();
    }
    std::memcpy(&word, buffer_.data() + position_, sizeof word);
    // Handed-out bytes must not linger: the noise derived from them is secret.
    OPENSSL_cleanse(buffer_.data() + position_, sizeof word);
    position_ += sizeof word;
    return word;
}

std::uint64_t SplitMix64Source::next_u64() noexcept {
    state_ += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

Wide uniform_below(Wide n, UniformSource& source) {
    if (n == 0) {
        throw std::invalid_argument("uniform_below: n must be positive");
    }
    if (n == 1) {
        return 0;
    }
    const unsigned bits = bit_length(n - 1);
    if (bits <= 64) {
        const std::uint64_t mask = bits == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1;
        for (;;) {
            const Wide candidate = source.next_u64() & mask;
            if (candidate < n) {
                return candidate;
            }
        }
    }
    const std::uint64_t high_mask =
        bits == 128 ? ~std::uint64_t{0} : (std::uint64_t{1} << (bits - 64)) - 1;
    for (;;) {
        const Wide high = source.next_u64() & high_mask;
        const Wide candidate = (high << 64) | source.next_u64();
        if (candidate < n) {
            return candidate;
        }
    }
}

bool bernoulli_rational(Wide num, Wide den, UniformSource& source) {
    if (den == 0 || num > den) {
        throw std::invalid_argument("bernoulli_rational: need 0 <= num <= den, den > 0");
    }
    if (num == 0 || num == den) {
        return num == den;
    }
    return uniform_below(den, source) < num;
}

bool bernoulli_exp(Wide num, Wide den, UniformSource& source) {
    if (den == 0) {
        throw std::invalid_argument("bernoulli_exp: den must be positive");
    }
    const Wide whole = num / den;
    for (Wide i = 0; i < whole; ++i) {
        if (!bernoulli_exp_minus_one(source)) {
            return false;
        }
    }
    return bernoulli_exp_unit(num % den, den, source);
}

SignedWide sample_discrete_laplace(Wide scale_num, Wide scale_den, UniformSource& source) {
    check_scale_terms(scale_num, scale_den, "sample_discrete_laplace");
    for (;;) {
        const Wide u = uniform_below(scale_num, source);
        if (!bernoulli_exp_unit(u, scale_num, source)) {
            continue;
        }
        std::uint64_t v = 0;
        while (v < kMaxGeometricCount && bernoulli_exp_minus_one(source)) {
            ++v;
        }
        if (v == kMaxGeometricCount) {
            continue;  // probability exp(-2^26): condition on V < kMaxGeometricCount
        }
        const Wide x = u + scale_num * v;  // < 2^127 (static_assert above)
        const Wide y = x / scale_den;
        const bool negative = uniform_below(2, source) == 1;
        if (negative && y == 0) {
            continue;  // otherwise 0 would be drawn with twice its probability
        }
        const auto magnitude = static_cast<SignedWide>(y);
        return negative ? -magnitude : magnitude;
    }
}

Scale laplace_scale(Wide sensitivity, std::uint32_t epsilon_milli, std::uint32_t shares) {
    if (sensitivity == 0 || epsilon_milli == 0 || shares == 0) {
        throw std::invalid_argument(
            "laplace_scale: sensitivity, epsilon_milli and shares must be positive");
    }
    // sensitivity * factor / epsilon_milli, reduced one factor at a time so that the only
    // product is formed after it is known to fit: gcd(factor, den) = 1 after the first
    // step, gcd(sensitivity / g, den / g) = 1 after the second, so the result is in lowest
    // terms.
    const Wide factor_full = Wide{1000} * shares;  // < 2^42
    const Wide g_factor = gcd(factor_full, epsilon_milli);
    const Wide factor = factor_full / g_factor;
    Wide den = epsilon_milli / g_factor;
    const Wide g_sensitivity = gcd(sensitivity, den);
    const Wide reduced = sensitivity / g_sensitivity;
    den /= g_sensitivity;
    if (reduced > kMaxScaleTerm / factor) {
        throw std::out_of_range(
            "laplace_scale: sensitivity * shares * 1000 / epsilon_milli has a numerator above "
            "kMaxScaleTerm = 2^100 in lowest terms");
    }
    return Scale{reduced * factor, den};
}

Wide laplace_interval(Scale scale, std::uint32_t level_ppm) {
    check_scale_terms(scale.num, scale.den, "laplace_interval");
    if (level_ppm == 0 || level_ppm >= kPartsPerMillion) {
        throw std::invalid_argument("laplace_interval: level_ppm must be in [1, 999999]");
    }
    // P(|X| > w) <= alpha  <=>  q^(w+1) <= alpha (1+q)/2  <=>  (w+1) * den >= num * (ln(1/alpha)
    // + delta), delta = -log1p(expm1(-1/t) / 2); expm1 keeps its precision when q is close
    // to 1. So w = (needed - 1) / den with needed = ceil(num * (ln(1/alpha) + delta)). A
    // floating ln(1/alpha) * num would be off by ~1e-19 * num, many steps of den when t is
    // large; in fixed point the product is exact up to the logarithm's own 2^-121, and the
    // floating-point part delta * num (at most den / 2) is off by far less than one step.
    const Fixed log_inverse_alpha = log_fixed(kPartsPerMillion, kPartsPerMillion - level_ppm);
    const Wide2 fraction_product = multiply(scale.num, log_inverse_alpha.fraction);
    const Wide whole = scale.num * log_inverse_alpha.whole + fraction_product.high;  // < 2^104
    const long double delta = -std::log1p(
        std::expm1(-static_cast<long double>(scale.den) / static_cast<long double>(scale.num)) / 2);
    const long double rest = std::ldexp(static_cast<long double>(fraction_product.low), -128) +
                             delta * static_cast<long double>(scale.num);  // in (0, 1 + 2^100 ln 2)
    const Wide needed = whole + static_cast<Wide>(std::ceil(rest));
    return (needed - 1) / scale.den;
}

double discrete_laplace_pmf(SignedWide x, double t) {
    if (!std::isfinite(t) || !(t > 0)) {
        throw std::invalid_argument("discrete_laplace_pmf: t must be finite and positive");
    }
    const long double inverse = 1.0L / static_cast<long double>(t);
    const long double at_zero = -std::expm1(-inverse) / (1 + std::exp(-inverse));
    const Wide magnitude = x < 0 ? Wide{0} - static_cast<Wide>(x) : static_cast<Wide>(x);
    return static_cast<double>(at_zero * std::exp(-static_cast<long double>(magnitude) * inverse));
}

std::optional<std::uint32_t> parse_epsilon_milli(std::string_view text) {
    const std::size_t dot = text.find('.');
    const std::string_view whole = text.substr(0, dot);
    // Three integer digits are enough for the maximum of 100 and keep the sum in range.
    if (whole.empty() || whole.size() > 3 || !all_digits(whole) ||
        (whole.size() > 1 && whole[0] == '0')) {
        return std::nullopt;
    }
    std::uint32_t milli = 0;
    for (char c : whole) {
        milli = milli * 10 + static_cast<std::uint32_t>(c - '0');
    }
    milli *= 1000;
    if (dot != std::string_view::npos) {
        const std::string_view fraction = text.substr(dot + 1);
        if (fraction.empty() || fraction.size() > 3 || !all_digits(fraction)) {
            return std::nullopt;
        }
        std::uint32_t place = 100;
        for (char c : fraction) {
            milli += place * static_cast<std::uint32_t>(c - '0');
            place /= 10;
        }
    }
    if (milli == 0 || milli > kMaxEpsilonMilli) {
        return std::nullopt;
    }
    return milli;
}

std::string format_epsilon(std::uint32_t milli) {
    std::string out = std::to_string(milli / 1000);
    const std::uint32_t fraction = milli % 1000;
    if (fraction == 0) {
        return out;
    }
    std::string digits = {static_cast<char>('0' + fraction / 100),
                          static_cast<char>('0' + fraction / 10 % 10),
                          static_cast<char>('0' + fraction % 10)};
    while (digits.back() == '0') {
        digits.pop_back();
    }
    return out + "." + digits;
}

}  // namespace cipherpulse::cohort
