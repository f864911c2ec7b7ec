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

// bernoulli_exp_unit is Algorithm 1 for gamma = num / den in [0, 1], arguments already
// validated (den < 2^64, num <= den). P(the series stops at K = k) = gamma^(k-1) / (k-1)!
// * (1 - gamma / k), and the odd k sum to exp(-gamma).
bool bernoulli_exp_unit(Wide num, Wide den, UniformSource& source) {
    if (num == 0) {
        return true;
    }
    // k counts trials; reaching 2^64 would take 2^64 iterations, so den * k < 2^128.
    Wide k = 1;
    while (uniform_below(den * k, source) < num) {
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
    if (num >= kMaxScaleTerm || den >= kMaxScaleTerm) {
        throw std::invalid_argument(std::string(function) + ": scale terms must be below 2^62");
    }
}

// ln 20 in fixed point: kLn20High / 2^64 + kLn20Low / 2^128 (rounded down; from a
// 40-digit value, 2.995732273553990993435223576142540775677).
constexpr Wide kLn20High = (Wide{2} << 64) | 0xfee84f6e7c722a07ULL;
constexpr std::uint64_t kLn20Low = 0x733f0c460f3f1f52ULL;

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
    if (den == 0 || den >= kMaxBernoulliExpDen) {
        throw std::invalid_argument("bernoulli_exp: den must be in [1, 2^64)");
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
        // v < 2^64: every increment costs at least one draw.
        std::uint64_t v = 0;
        while (bernoulli_exp_minus_one(source)) {
            ++v;
        }
        const Wide x = u + scale_num * v;  // < 2^62 + 2^62 * 2^64 < 2^127
        const Wide y = x / scale_den;
        const bool negative = uniform_below(2, source) == 1;
        if (negative && y == 0) {
            continue;  // otherwise 0 would be drawn with twice its probability
        }
        const auto magnitude = static_cast<SignedWide>(y);
        return negative ? -magnitude : magnitude;
    }
}

Scale laplace_scale(Wide sensitivity, std::uint32_t epsilon_milli) {
    if (sensitivity == 0 || sensitivity >= kMaxSensitivity) {
        throw std::invalid_argument("laplace_scale: sensitivity must be in [1, 2^62 / 1000)");
    }
    if (epsilon_milli == 0) {
        throw std::invalid_argument("laplace_scale: epsilon must be positive");
    }
    const Wide num = sensitivity * 1000;
    const Wide den = epsilon_milli;
    const Wide divisor = gcd(num, den);
    return Scale{num / divisor, den / divisor};
}

Wide laplace_interval_95(Scale scale) {
    check_scale_terms(scale.num, scale.den, "laplace_interval_95");
    // P(|X| > w) <= 1/20  <=>  q^(w+1) <= (1+q)/40  <=>  (w+1) * den >= num * (ln 20 + delta)
    // with delta = -ln((1+q)/2) = -log1p(expm1(-1/t) / 2) in (0, ln 2]; expm1 keeps its
    // precision when q is close to 1. So w = (needed - 1) / den, needed = ceil(num * (ln 20
    // + delta)). A floating ln 20 * num would be off by ~1e-19 * num, many steps of den
    // when t is large; in fixed point it is exact to 2^-63, and the floating-point part
    // delta * num (~ den / 2 for large t) is off by far less than one step.
    const Wide ln20_num = kLn20High * scale.num + ((Wide{kLn20Low} * scale.num) >> 64);
    const long double delta = -std::log1p(
        std::expm1(-static_cast<long double>(scale.den) / static_cast<long double>(scale.num)) / 2);
    const long double rest =
        std::ldexp(static_cast<long double>(static_cast<std::uint64_t>(ln20_num)), -64) +
        delta * static_cast<long double>(scale.num);  // in [0, 1 + 2^62 ln 2)
    const Wide needed = (ln20_num >> 64) + static_cast<Wide>(std::ceil(rest));
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
