// Helpers shared by the unit tests: cached test keys, temporary directories, repo paths,
// and goodness-of-fit statistics for samplers.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cipherpulse/paillier.h"

namespace cipherpulse::testing {

// test_key returns a key of `bits` bits generated once per test process (insecure sizes
// allowed: these keys protect nothing).
const PrivateKey& test_key(std::size_t bits);

// repo_root is the repository root: $CIPHERPULSE_REPO_ROOT, else the working directory.
std::filesystem::path repo_root();

// last_line returns the last non-empty line of `text` (e.g. a token a command printed).
std::string last_line(const std::string& text);

// TempDir is a fresh directory removed with its contents on destruction.
class TempDir {
  public:
    TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir();
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

// TlsFiles is a self-signed certificate (its own CA) and its key, PEM files.
struct TlsFiles {
    std::string cert;
    std::string key;
};

// make_self_signed creates `name`.pem / `name`.key in `dir` with the openssl command: an
// EC P-256 certificate for 127.0.0.1 and localhost, valid for a day. nullopt when openssl
// failed.
std::optional<TlsFiles> make_self_signed(const std::filesystem::path& dir, const std::string& name);

// ChildProcess runs a program with its stdout on a pipe; the destructor kills it (SIGTERM,
// then SIGKILL) and reaps it, so a failing test leaves nothing running.
class ChildProcess {
  public:
    explicit ChildProcess(const std::vector<std::string>& argv);
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    ~ChildProcess();

    // read_line returns the next line of the child's stdout, or nullopt at EOF or after
    // `timeout_ms`.
    std::optional<std::string> read_line(int timeout_ms);
    // ready_port waits for a line "READY <port>" and returns the port (0 on timeout/EOF).
    int ready_port(int timeout_ms);
    // stop sends `signal` and waits; returns the wait status.
    int stop(int signal);
    int pid() const noexcept { return pid_; }

  private:
    int pid_ = -1;
    int out_fd_ = -1;
    std::string buffer_;
    bool reaped_ = false;
};

// ---- statistics -------------------------------------------------------------------------
//
// Generic checks of a sampler against a known distribution on the integers. Samples and
// bin edges are 128-bit so that very wide distributions fit; probabilities are long double.

// Int128 is the signed 128-bit integer samples are held in (a GCC/Clang extension).
__extension__ using Int128 = __int128;

// regularized_gamma_q is Q(a, x) = Gamma(a, x) / Gamma(a) for a > 0: the power series for
// P when x < a + 1, Lentz's continued fraction for Q otherwise (relative error ~1e-12).
double regularized_gamma_q(double a, double x);

// chi_square_p_value is P(chi^2 with df degrees of freedom >= statistic).
double chi_square_p_value(double statistic, int df);

// IntegerBins is a partition of the integers for a chi-square test: bin i holds the x with
// upper[i-1] < x <= upper[i] (upper[-1] = -inf; the last bin, one past upper, is unbounded
// above). probability[i] is the distribution's mass in bin i.
struct IntegerBins {
    std::vector<Int128> upper;
    std::vector<double> probability;

    std::size_t index(Int128 x) const;
};

// IntegerCdf is x -> P(X <= x) of a distribution on the integers.
using IntegerCdf = std::function<long double(Int128)>;

// integer_quantile returns the smallest x in (lo, hi] with cdf(x) >= u, by bisection;
// requires cdf(lo) < u <= cdf(hi).
Int128 integer_quantile(const IntegerCdf& cdf, long double u, Int128 lo, Int128 hi);

// quantile_bins cuts at the quantiles of every percentile and, finer, of both tails down
// to 5e-5, then pools neighbours until each bin expects at least 5 of `samples` draws.
// [lo, hi] must bracket those quantiles: cdf(lo) < 5e-5 and cdf(hi) >= 1 - 5e-5.
IntegerBins quantile_bins(const IntegerCdf& cdf, Int128 lo, Int128 hi, std::size_t samples);

// ChiSquareFit is Pearson's statistic, its degrees of freedom (bins - 1) and p-value.
struct ChiSquareFit {
    double statistic = 0;
    int df = 0;
    double p_value = 0;
};

// chi_square_fit tests `samples` against the bin probabilities.
ChiSquareFit chi_square_fit(const std::vector<Int128>& samples, const IntegerBins& bins);

// MomentCheck gives the sample mean and variance as deviations, in standard errors, from a
// distribution's mean and variance: mean_z = (mean - mu) / sqrt(var / n) and variance_z =
// (s^2 - var) / sqrt((mu4 - var^2) / n), mu4 the fourth central moment (large-sample
// standard errors; s^2 is taken about the sample mean).
struct MomentCheck {
    double mean_z = 0;
    double variance_z = 0;
};

// check_moments computes the MomentCheck of `samples` (at least 2) in long double.
MomentCheck check_moments(const std::vector<Int128>& samples, long double mean,
                          long double variance, long double fourth_central_moment);

}  // namespace cipherpulse::testing
