#include "unit/test_support.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace cipherpulse::testing {

const PrivateKey& test_key(std::size_t bits) {
    static std::mutex mutex;
    static std::map<std::size_t, std::unique_ptr<PrivateKey>> keys;
    std::lock_guard lock(mutex);
    auto& slot = keys[bits];
    if (!slot) {
        slot = std::make_unique<PrivateKey>(PrivateKey::generate_insecure_for_tests(bits));
    }
    return *slot;
}

std::filesystem::path repo_root() {
    if (const char* root = std::getenv("CIPHERPULSE_REPO_ROOT")) {
        return root;
    }
    return std::filesystem::current_path();
}

std::string last_line(const std::string& text) {
    std::istringstream in(text);
    std::string line, last;
    while (std::getline(in, line)) {
        if (!line.empty()) {
            last = line;
        }
    }
    return last;
}

TempDir::TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "cipherpulse-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::optional<TlsFiles> make_self_signed(const std::filesystem::path& dir,
                                         const std::string& name) {
    TlsFiles files{(dir / (name + ".pem")).string(), (dir / (name + ".key")).string()};
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout '" +
        files.key + "' -out '" + files.cert + "' 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) {
        return std::nullopt;
    }
    return files;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe failed");
    }
    pid_ = ::fork();
    if (pid_ < 0) {
        throw std::runtime_error("fork failed");
    }
    if (pid_ == 0) {
        ::dup2(fds[1], 1);
        std::vector<char*> args;
        for (const auto& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    out_fd_ = fds[0];
}

ChildProcess::~ChildProcess() {
    if (!reaped_ && pid_ > 0) {
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 100; ++i) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                reaped_ = true;
                break;
            }
            ::usleep(20000);
        }
        if (!reaped_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    if (out_fd_ >= 0) {
        ::close(out_fd_);
    }
}

std::optional<std::string> ChildProcess::read_line(int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            return line;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        if (left <= 0) {
            return std::nullopt;
        }
        pollfd p{out_fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) {
            continue;
        }
        char chunk[512];
        ssize_t n = ::read(out_fd_, chunk, sizeof chunk);
        if (n <= 0) {
            return std::nullopt;
        }
        buffer_.append(chunk, static_cast<std::size_t>(n));
    }
}

int ChildProcess::ready_port(int timeout_ms) {
    while (auto line = read_line(timeout_ms)) {
        if (line->rfind("READY ", 0) == 0) {
            return std::atoi(line->c_str() + 6);
        }
    }
    return 0;
}

int ChildProcess::stop(int signal) {
    int status = 0;
    if (!reaped_) {
        ::kill(pid_, signal);
        ::waitpid(pid_, &status, 0);
        reaped_ = true;
    }
    return status;
}

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

double chi_square_p_value(double statistic, int df) {
    return regularized_gamma_q(df / 2.0, statistic / 2.0);
}

std::size_t IntegerBins::index(Int128 x) const {
    return static_cast<std::size_t>(std::lower_bound(upper.begin(), upper.end(), x) -
                                    upper.begin());
}

Int128 integer_quantile(const IntegerCdf& cdf, long double u, Int128 lo, Int128 hi) {
    while (hi - lo > 1) {
        const Int128 mid = lo + (hi - lo) / 2;
        (cdf(mid) >= u ? hi : lo) = mid;
    }
    return hi;
}

IntegerBins quantile_bins(const IntegerCdf& cdf, Int128 lo, Int128 hi, std::size_t samples) {
    std::vector<long double> cuts = {5e-5L, 1e-4L, 2e-4L, 5e-4L, 1e-3L, 2e-3L, 5e-3L};
    for (std::size_t i = 0, n = cuts.size(); i < n; ++i) {
        cuts.push_back(1 - cuts[i]);
    }
    for (int k = 1; k < 100; ++k) {
        cuts.push_back(k / 100.0L);
    }
    std::vector<Int128> edges;
    for (long double u : cuts) {
        edges.push_back(integer_quantile(cdf, u, lo, hi));
    }
    std::sort(edges.begin(), edges.end());
    edges.erase(std::unique(edges.begin(), edges.end()), edges.end());

    IntegerBins bins;
    const double minimum = 5.0 / static_cast<double>(samples);
    long double below = 0;  // cdf at the previous kept edge
    for (Int128 edge : edges) {
        const long double p = cdf(edge) - below;
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

ChiSquareFit chi_square_fit(const std::vector<Int128>& samples, const IntegerBins& bins) {
    std::vector<double> observed(bins.probability.size(), 0.0);
    for (Int128 x : samples) {
        observed[bins.index(x)] += 1;
    }
    ChiSquareFit fit;
    const auto n = static_cast<double>(samples.size());
    for (std::size_t i = 0; i < observed.size(); ++i) {
        const double expected = n * bins.probability[i];
        fit.statistic += (observed[i] - expected) * (observed[i] - expected) / expected;
    }
    fit.df = static_cast<int>(observed.size()) - 1;
    fit.p_value = chi_square_p_value(fit.statistic, fit.df);
    return fit;
}

MomentCheck check_moments(const std::vector<Int128>& samples, long double mean,
                          long double variance, long double fourth_central_moment) {
    const auto n = static_cast<long double>(samples.size());
    long double sum = 0;
    for (Int128 x : samples) {
        sum += static_cast<long double>(x);
    }
    const long double sample_mean = sum / n;
    long double squares = 0;
    for (Int128 x : samples) {
        const long double d = static_cast<long double>(x) - sample_mean;
        squares += d * d;
    }
    const long double sample_variance = squares / (n - 1);
    MomentCheck check;
    check.mean_z = static_cast<double>((sample_mean - mean) / std::sqrt(variance / n));
    check.variance_z =
        static_cast<double>((sample_variance - variance) /
                            std::sqrt((fourth_central_moment - variance * variance) / n));
    return check;
}

}  // namespace cipherpulse::testing
