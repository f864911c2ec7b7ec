// ingest_load: a load generator for cipherpulse-server's upload endpoint (POST /v1/readings).
//
// It sets up everything a real deployment has -- a Paillier key published as a JWS signed by
// the decryptor identity, N registered devices with their own Ed25519 keys -- starts the
// built `cipherpulse-server` binary in a child process on a free loopback port, and then
// drives it from C client threads (one keep-alive connection each) with signed batches of B
// heart-rate records. Ciphertexts are encrypted before the timed phase (encryption is the
// edge's cost) from a pool of distinct valid ciphertexts that records reuse; every batch is
// signed when it is sent, as an edge does.
//
// After a warm-up it measures for a fixed time: records/s and batches/s acknowledged (200
// answers completed in the interval), client-side batch latency (p50/p99/max of the HTTP
// round trip of every answered request in flight during the interval, so a connection the
// server leaves waiting shows in the tail), refusals by status (429 and 503 apart), server
// RSS (VmRSS) and CPU, and the CPU other processes took (a disturbed run shows as such). Then it
// stops the server with SIGTERM and checks the database: every acknowledged record is stored, every
// window's record_count equals its window_members rows, and a few windows' aggregates equal the
// product of their records' ciphertexts and decrypt to the plaintext sums of what was sent.
//
// Record times: consecutive seq per device, t 5 s apart, cycling within [now - span, now - 5 s]
// (--span-s, default 600). So that those records fold into open windows at every granularity
// (as live edges' records do) the generated config raises each granularity's seal grace to at
// least span + 120 s; without that every 1m window would have sealed 6 s after its end and most
// records would be "late" (stored, not folded: less work than real traffic).
//
// Exit status: 0 when the run and the checks pass, 1 when a check fails, 2 on a setup error.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cipherpulse/codec.h"
#include "cipherpulse/ed25519.h"
#include "cipherpulse/jws.h"
#include "cipherpulse/paillier.h"
#include "common/upload.h"
#include "load_common.h"
#include "server/admin_commands.h"
#include "server/config.h"
#include "store/sqlite.h"

namespace {

using namespace cipherpulse;
using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr std::int64_t kRecordSpacingMs = 5000;

// ------------------------------------------------------------------------- small helpers

using bench::interrupted;
using bench::self_cpu_seconds;
using bench::unix_ms;

template <class F>
class ScopeExit {
  public:
    explicit ScopeExit(F f) : f_(std::move(f)) {}
    ScopeExit(const ScopeExit&) = delete;
    ScopeExit& operator=(const ScopeExit&) = delete;
    ~ScopeExit() {
        try {
            f_();
        } catch (...) {
        }
    }

  private:
    F f_;
};

double seconds_between(SteadyClock::time_point a, SteadyClock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
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

std::string tail_of_file(const fs::path& path, std::size_t max_bytes) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return {};
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > max_bytes) {
        text = "..." + text.substr(text.size() - max_bytes);
    }
    return text;
}

// free_loopback_port binds port 0 on 127.0.0.1 to learn a free port, then releases it.
int free_loopback_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    }
    ScopeExit close_fd([fd] { ::close(fd); });
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        throw std::runtime_error("bind: " + std::string(std::strerror(errno)));
    }
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        throw std::runtime_error("getsockname: " + std::string(std::strerror(errno)));
    }
    return ntohs(addr.sin_port);
}

// Fields of /proc/<pid>/status and /proc/<pid>/stat.
std::optional<std::int64_t> rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::strtoll(line.c_str() + 6, nullptr, 10);
        }
    }
    return std::nullopt;
}

// cpu_seconds returns utime + stime of `pid`.
std::optional<double> cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close = text.rfind(')');
    if (close == std::string::npos) {
        return std::nullopt;
    }
    std::istringstream fields(text.substr(close + 2));
    std::vector<std::string> f;
    std::string item;
    while (fields >> item) {
        f.push_back(item);
    }
    // After ")": state is field 3, utime field 14, stime field 15 (1-based in proc(5)).
    if (f.size() < 13) {
        return std::nullopt;
    }
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    return (std::stod(f[11]) + std::stod(f[12])) / ticks;
}

// machine_busy_seconds returns the CPU time all processes used (from /proc/stat), so that a
// run disturbed by other work on the machine shows as such.
double machine_busy_seconds() {
    std::ifstream in("/proc/stat");
    std::string cpu;
    in >> cpu;
    double total = 0, idle = 0;
    for (int i = 0; i < 8; ++i) {
        double v = 0;
        if (!(in >> v)) {
            break;
        }
        total += v;
        if (i == 3 || i == 4) {  // idle, iowait
            idle += v;
        }
    }
    return (total - idle) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// ------------------------------------------------------------------------ server process

// ServerProcess owns the child running `cipherpulse-server`. Its destructor never leaves
// the child running: SIGTERM, a grace period, then SIGKILL. The child also gets SIGKILL
// from the kernel should this process die first (PR_SET_PDEATHSIG).
class ServerProcess {
  public:
    ServerProcess() = default;
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;
    ~ServerProcess() {
        if (running()) {
            stop(std::chrono::seconds(10));
        }
    }

    void start(const std::string& binary, const fs::path& config, const fs::path& log) {
        // Everything the child needs is prepared before fork (no allocation after it).
        std::vector<std::string> args = {binary, "--config", config.string(), "serve"};
        std::vector<char*> argv;
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (log_fd < 0) {
            throw std::runtime_error("cannot create " + log.string() + ": " + std::strerror(errno));
        }
        const pid_t parent = ::getpid();
        pid_t pid = ::fork();
        if (pid < 0) {
            int e = errno;
            ::close(log_fd);
            throw std::runtime_error("fork: " + std::string(std::strerror(e)));
        }
        if (pid == 0) {
            // Child: own process group (a terminal's ^C reaches only the generator, which
            // then stops the server in order), killed if the generator dies.
            ::setpgid(0, 0);
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) {
                ::_exit(127);
            }
            ::signal(SIGPIPE, SIG_DFL);
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            int null_fd = ::open("/dev/null", O_RDONLY);
            if (null_fd >= 0) {
                ::dup2(null_fd, 0);
            }
            ::dup2(log_fd, 1);
            ::dup2(log_fd, 2);
            ::execv(argv[0], argv.data());
            const char msg[] = "ingest_load: exec of the server binary failed\n";
            (void)!::write(2, msg, sizeof msg - 1);
            ::_exit(127);
        }
        ::close(log_fd);
        pid_ = pid;
        reaped_ = false;
    }

    pid_t pid() const { return pid_; }
    bool running() const { return pid_ > 0 && !reaped_; }

    // poll reaps the child if it has exited; returns true while it is still running.
    bool poll() {
        if (!running()) {
            return false;
        }
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            reaped_ = true;
            status_ = status;
            return false;
        }
        return true;
    }

    // stop sends SIGTERM, waits up to `grace`, then SIGKILLs. Returns how long it took.
    double stop(std::chrono::milliseconds grace) {
        auto started = SteadyClock::now();
        if (!poll()) {
            return 0;
        }
        ::kill(pid_, SIGTERM);
        auto deadline = started + grace;
        while (poll()) {
            if (SteadyClock::now() >= deadline) {
                ::kill(pid_, SIGKILL);
                int status = 0;
                ::waitpid(pid_, &status, 0);
                reaped_ = true;
                status_ = status;
                killed_ = true;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return seconds_between(started, SteadyClock::now());
    }

    // describe_exit says how the child ended ("exit 0", "signal 9", "running").
    std::string describe_exit() const {
        if (running()) {
            return "running";
        }
        if (killed_) {
            return "killed (SIGKILL after the grace period)";
        }
        if (WIFEXITED(status_)) {
            return "exit " + std::to_string(WEXITSTATUS(status_));
        }
        if (WIFSIGNALED(status_)) {
            return "signal " + std::to_string(WTERMSIG(status_));
        }
        return "unknown";
    }
    bool exited_cleanly() const {
        return !running() && !killed_ && WIFEXITED(status_) && WEXITSTATUS(status_) == 0;
    }

  private:
    pid_t pid_ = -1;
    bool reaped_ = true;
    bool killed_ = false;
    int status_ = 0;
};

// ------------------------------------------------------------------------------ options

struct Options {
    int bits = 2048;
    int devices = 100;
    int concurrency = 4;
    int batch = 100;
    double seconds = 20;
    double warmup = 3;
    std::optional<double> rate;
    int pool = 2000;
    int span_s = 600;
    int server_threads = 32;  // the server default
    int request_queue = 64;
    std::string synchronous = "NORMAL";
    std::string server_log_level = "info";
#ifdef CIPHERPULSE_SERVER_BIN
    std::string server_bin = CIPHERPULSE_SERVER_BIN;  // set by the build: the built binary
#else
    std::string server_bin = "build/release/apps/cipherpulse-server";
#endif
    bool keep_dir = false;
    bool json_output = false;
};

// ------------------------------------------------------------------------------- fixture

// PoolEntry is one pre-encrypted record: its wire ciphertext and the plaintext statistics
// (for checking decrypted window aggregates at the end).
struct PoolEntry {
    std::string ct_b64;
    HeartRateStats stats;
};

std::vector<PoolEntry> make_pool(const PublicKey& pk, const HeartRateCodec& codec, int count) {
    std::vector<PoolEntry> pool(static_cast<std::size_t>(count));
    unsigned workers = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> threads;
    std::atomic<bool> failed{false};
    std::string error;
    std::mutex error_mutex;
    for (unsigned w = 0; w < workers; ++w) {
        threads.emplace_back([&, w] {
            try {
                std::mt19937_64 rng(0x5eed + w);
                std::uniform_real_distribution<double> bpm(45.0, 180.0);
                std::uniform_int_distribution<int> samples(3, 12);
                for (std::size_t i = w; i < pool.size(); i += workers) {
                    HeartRateRecordBuilder builder;
                    int n = samples(rng);
                    double base = bpm(rng);
                    for (int s = 0; s < n; ++s) {
                        double b = std::clamp(base + (s % 3) - 1.0, 30.0, 250.0);
                        if (!builder.add_sample(b).ok() ||
                            !builder.add_rr(static_cast<std::uint32_t>(60000.0 / b)).ok()) {
                            throw std::runtime_error("building a record failed");
                        }
                    }
                    if (i % 17 == 0 && !builder.add_contact_lost().ok()) {
                        throw std::runtime_error("building a record failed");
                    }
                    pool[i].stats = builder.finish();
                    Ciphertext c = pk.encrypt(codec.pack(pool[i].stats));
                    pool[i].ct_b64 = pk.serialize_base64url(c);
                }
            } catch (const std::exception& e) {
                std::lock_guard lock(error_mutex);
                error = e.what();
                failed = true;
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    if (failed) {
        throw std::runtime_error("pre-encryption failed: " + error);
    }
    return pool;
}

std::string toml_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "\"";
}

void write_config(const fs::path& path, const Options& o, int port) {
    const std::int64_t grace_floor = std::int64_t{o.span_s} + 120;
    const std::size_t body_limit =
        std::max<std::size_t>(4u << 20, static_cast<std::size_t>(o.batch) * 2200 + 65536);
    std::ofstream out(path);
    out << "# Generated by ingest_load.\n"
        << "[server]\n"
        << "listen = \"127.0.0.1:" << port << "\"\n"
        << "threads = " << o.server_threads << "\n"
        << "max_body_bytes = " << body_limit << "\n"
        << "max_records_per_batch = " << std::max(1000, o.batch) << "\n"
        << "request_queue = " << o.request_queue << "\n"
        << "device_rate_per_second = " << std::fixed << (o.rate ? *o.rate : 1e6) << "\n"
        << "read_timeout_s = 30\nwrite_timeout_s = 30\n"
        << "[storage]\n"
        << "database = \"server.db\"\n"
        << "synchronous = " << toml_string(o.synchronous) << "\n"
        << "[ingest]\n"
        << "granularities = [\"1m\", \"1h\", \"1d\"]\n"
        << "seal_grace_s = { \"1m\" = " << std::max<std::int64_t>(6, grace_floor)
        << ", \"1h\" = " << std::max<std::int64_t>(360, grace_floor)
        << ", \"1d\" = " << std::max<std::int64_t>(600, grace_floor) << " }\n"
        << "[keys]\n"
        << "identity_public_key = \"identity.pub.pem\"\n"
        << "[logging]\n"
        << "level = " << toml_string(o.server_log_level) << "\n";
    if (!out) {
        throw std::runtime_error("cannot write " + path.string());
    }
}

httplib::Headers bearer(const std::string& token) {
    return {{"Authorization", "Bearer " + token}};
}

// ------------------------------------------------------------------------------- the load

struct Device {
    std::string id;
    Ed25519PrivateKey key;
    std::int64_t next_seq = 1;
    std::int64_t next_t = 0;  // 0: not started
    SteadyClock::time_point not_before{};
};

struct ThreadStats {
    // Latency of every 200 answer to a request in flight at any time during the measured
    // interval (also when sent before or answered after it: a request left waiting must
    // show in the tail).
    std::vector<double> latency_ms;
    // Requests completed inside the measured interval.
    std::uint64_t batches_ok = 0;
    std::uint64_t records_ok = 0;
    std::uint64_t duplicate = 0;
    std::uint64_t late = 0;
    std::map<int, std::uint64_t> refused;  // non-200 status -> count
    std::uint64_t transport_errors = 0;
    // Whole run (warm-up, measured interval and requests still in flight at its end).
    std::uint64_t total_accepted = 0;
    std::uint64_t total_batches_ok = 0;
    std::uint64_t total_unknown_batches = 0;  // no response: outcome unknown
    std::map<int, std::uint64_t> total_refused;
    std::string fatal;
};

struct LoadPlan {
    std::string host = "127.0.0.1";
    int port = 0;
    int batch = 100;
    std::int64_t span_ms = 600000;
    SteadyClock::time_point measure_start;
    SteadyClock::time_point measure_end;
    const std::vector<PoolEntry>* pool = nullptr;
    std::string kid;
    std::string schema;
    bool fast_body = false;  // fast_batch_json gives batch_json's bytes
};

std::atomic<bool> g_stop_load{false};
// Records accepted per second of the measured interval (is the rate sustained?).
std::unique_ptr<std::atomic<std::uint64_t>[]> g_per_second;
std::size_t g_per_second_count = 0;
std::mutex g_log_mutex;
int g_logged_errors = 0;

void log_refusal(int status, const std::string& body) {
    std::lock_guard lock(g_log_mutex);
    if (g_logged_errors++ < 5) {
        std::cerr << "ingest_load: HTTP " << status << ": " << body.substr(0, 300) << "\n";
    }
}

// assign_times gives the records of device `d` their times: 5 s apart, inside
// [now - span, now - 5 s], wrapping back to the start of that range at its end.
void assign_times(Device& d, const LoadPlan& plan, std::vector<common::UploadRecord>& records) {
    const std::int64_t now = unix_ms();
    const std::int64_t lo = now - plan.span_ms;
    const std::int64_t hi = now - kRecordSpacingMs;
    for (auto& r : records) {
        if (d.next_t < lo || d.next_t > hi) {
            d.next_t = lo - (lo % kRecordSpacingMs) + kRecordSpacingMs;
        }
        r.t_ms = d.next_t;
        d.next_t += kRecordSpacingMs;
    }
}

// fast_batch_json returns exactly what common::batch_json returns (nlohmann's sorted keys,
// no white space) for records whose strings need no JSON escaping, at a fraction of the cost:
// the generator shares the machine with the server, so its own CPU is kept small. Whether the
// two agree is checked once before the load (see batch_body_is_exact), else batch_json is used.
std::string fast_batch_json(const std::string& device,
                            const std::vector<common::UploadRecord>& records) {
    std::size_t size = 32 + device.size();
    for (const auto& r : records) {
        size += 96 + r.ct.size() + r.kid.size() + r.metric.size() + r.schema.size();
    }
    std::string out;
    out.reserve(size);
    out += "{\"device\":\"";
    out += device;
    out += "\",\"records\":[";
    bool first = true;
    for (const auto& r : records) {
        out += first ? "{\"ct\":\"" : ",{\"ct\":\"";
        first = false;
        out += r.ct;
        out += "\",\"kid\":\"";
        out += r.kid;
        out += "\",\"metric\":\"";
        out += r.metric;
        out += "\",\"schema\":\"";
        out += r.schema;
        out += "\",\"seq\":";
        out += std::to_string(r.seq);
        out += ",\"t\":";
        out += std::to_string(r.t_ms);
        out += "}";
    }
    out += "]}";
    return out;
}

bool plain_json_text(const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.' || c == ':';
    });
}

// batch_body_is_exact checks fast_batch_json against common::batch_json on a sample batch.
bool batch_body_is_exact(const std::vector<Device>& devices, const std::vector<PoolEntry>& pool,
                         const std::string& kid, const std::string& schema) {
    if (!plain_json_text(kid) || !plain_json_text(schema)) {
        return false;
    }
    for (const auto& d : devices) {
        if (!plain_json_text(d.id)) {
            return false;
        }
    }
    for (const auto& e : pool) {
        if (!plain_json_text(e.ct_b64)) {
            return false;
        }
    }
    std::vector<common::UploadRecord> sample;
    for (std::size_t i = 0; i < std::min<std::size_t>(pool.size(), 3); ++i) {
        sample.push_back({static_cast<std::int64_t>(i) + 1,
                          unix_ms() - 5000 * static_cast<std::int64_t>(i), "hr", schema, kid,
                          pool[i].ct_b64});
    }
    const std::string& id = devices.empty() ? std::string("x") : devices.front().id;
    return fast_batch_json(id, sample) == common::batch_json(id, sample);
}

// read_outcome takes "accepted", "duplicate" and "late" from a 200 answer. The server writes
// them before "records" (sorted keys), so a scan of the part before "records" suffices; a
// body of any other shape is parsed in full.
void read_outcome(const std::string& body, std::uint64_t& accepted, std::uint64_t& duplicate,
                  std::uint64_t& late) {
    const std::size_t end = body.find("\"records\":");
    auto field = [&](const char* key, std::uint64_t& out) {
        const std::string pattern = std::string("\"") + key + "\":";
        std::size_t at = body.find(pattern);
        if (at == std::string::npos || at > end) {
            return false;
        }
        const char* p = body.c_str() + at + pattern.size();
        char* stop = nullptr;
        out = std::strtoull(p, &stop, 10);
        return stop != p;
    };
    if (end != std::string::npos && field("accepted", accepted) && field("duplicate", duplicate) &&
        field("late", late)) {
        return;
    }
    auto doc = json::parse(body, nullptr, false);
    accepted = duplicate = late = 0;
    if (doc.is_object()) {
        accepted = doc.value("accepted", std::uint64_t{0});
        duplicate = doc.value("duplicate", std::uint64_t{0});
        late = doc.value("late", std::uint64_t{0});
    }
}

void run_client(int index, std::vector<Device*> devices, const LoadPlan& plan, ThreadStats& st) {
    try {
        httplib::Client client(plan.host, plan.port);
        client.set_keep_alive(true);
        client.set_connection_timeout(5, 0);
        client.set_read_timeout(60, 0);
        client.set_write_timeout(60, 0);
        const auto& pool = *plan.pool;
        std::size_t pool_cursor = static_cast<std::size_t>(index) * 7919 % pool.size();
        std::size_t rr = 0;
        std::vector<common::UploadRecord> records(static_cast<std::size_t>(plan.batch));
        for (auto& r : records) {
            r.metric = "hr";
            r.schema = plan.schema;
            r.kid = plan.kid;
        }
        while (!g_stop_load.load(std::memory_order_relaxed) && !interrupted()) {
            auto now = SteadyClock::now();
            if (now >= plan.measure_end) {
                break;
            }
            // Next device of this thread's share that is not backing off.
            Device* d = nullptr;
            auto earliest = SteadyClock::time_point::max();
            for (std::size_t k = 0; k < devices.size(); ++k) {
                Device* c = devices[(rr + k) % devices.size()];
                if (c->not_before <= now) {
                    d = c;
                    rr = (rr + k + 1) % devices.size();
                    break;
                }
                earliest = std::min(earliest, c->not_before);
            }
            if (d == nullptr) {
                std::this_thread::sleep_until(std::min(earliest, plan.measure_end));
                continue;
            }
            const std::int64_t first_seq = d->next_seq;
            const std::int64_t first_t = d->next_t;
            for (auto& r : records) {
                r.seq = d->next_seq++;
                r.ct = pool[pool_cursor].ct_b64;
                pool_cursor = (pool_cursor + 1) % pool.size();
            }
            assign_times(*d, plan, records);
            std::string body = plan.fast_body ? fast_batch_json(d->id, records)
                                              : common::batch_json(d->id, records);
            auto upload = common::sign_upload(std::move(body), common::kReadingsPath, d->id, d->key,
                                              unix_ms() / 1000);
            httplib::Headers headers = {{"Content-Digest", upload.content_digest},
                                        {"Signature-Input", upload.signature_input},
                                        {"Signature", upload.signature}};
            const auto sent = SteadyClock::now();
            auto res = client.Post(common::kReadingsPath, headers, upload.body, "application/json");
            const auto done = SteadyClock::now();
            const bool measured = done >= plan.measure_start && done < plan.measure_end;
            const bool overlaps_window = sent < plan.measure_end && done >= plan.measure_start;
            if (!res) {
                // No answer: the server may or may not have stored the batch. Never reuse
                // these sequence numbers (a different body under a stored seq is a 409).
                ++st.total_unknown_batches;
                if (measured) {
                    ++st.transport_errors;
                }
                {
                    std::lock_guard lock(g_log_mutex);
                    if (g_logged_errors++ < 5) {
                        std::cerr << "ingest_load: request failed: "
                                  << httplib::to_string(res.error()) << "\n";
                    }
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                continue;
            }
            if (res->status == 200) {
                std::uint64_t accepted = 0, duplicate = 0, late = 0;
                read_outcome(res->body, accepted, duplicate, late);
                st.total_accepted += accepted;
                ++st.total_batches_ok;
                if (overlaps_window) {
                    st.latency_ms.push_back(
                        std::chrono::duration<double, std::milli>(done - sent).count());
                }
                if (measured) {
                    ++st.batches_ok;
                    st.records_ok += accepted;
                    auto second = static_cast<std::size_t>(
                        std::chrono::duration_cast<std::chrono::seconds>(done - plan.measure_start)
                            .count());
                    if (second < g_per_second_count) {
                        g_per_second[second].fetch_add(accepted, std::memory_order_relaxed);
                    }
                    st.duplicate += duplicate;
                    st.late += late;
                }
                continue;
            }
            ++st.total_refused[res->status];
            if (measured) {
                ++st.refused[res->status];
            }
            if (res->status == 429 || res->status == 503) {
                // Nothing was stored: resend these sequence numbers later, after Retry-After,
                // as an edge does; meanwhile serve the thread's other devices.
                d->next_seq = first_seq;
                d->next_t = first_t;
                double retry = 1;
                if (res->has_header("Retry-After")) {
                    retry = std::clamp(std::atof(res->get_header_value("Retry-After").c_str()), 0.0,
                                       10.0);
                }
                d->not_before =
                    SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                             std::chrono::duration<double>(retry));
            } else {
                log_refusal(res->status, res->body);
            }
        }
    } catch (const std::exception& e) {
        st.fatal = e.what();
        g_stop_load = true;
    }
}

// ---------------------------------------------------------------------------- verification

struct Verification {
    std::int64_t records_in_db = 0;
    std::int64_t database_bytes = 0;  // database file + WAL after the server stopped
    std::int64_t batches_in_db = 0;
    std::int64_t windows = 0;
    std::int64_t window_records = 0;
    std::int64_t late_records = 0;
    std::int64_t windows_count_mismatch = 0;
    int aggregates_checked = 0;
    int aggregates_bad = 0;
    std::vector<std::string> problems;
};

std::int64_t query_int(store::Database& db, const std::string& sql) {
    auto st = db.prepare(sql);
    if (!st.step()) {
        return 0;
    }
    return st.column_int64(0);
}

Verification verify_database(const std::string& path, const PrivateKey& sk,
                             const HeartRateCodec& codec, const std::vector<PoolEntry>& pool,
                             std::uint64_t accepted, std::uint64_t batches_ok,
                             std::uint64_t unknown_batches, int batch) {
    Verification v;
    for (const std::string& file : {path, path + "-wal"}) {
        std::error_code ec;
        auto size = fs::file_size(file, ec);
        if (!ec) {
            v.database_bytes += static_cast<std::int64_t>(size);
        }
    }
    store::OpenOptions options;
    options.create = false;
    auto db = store::Database::open(path, options);
    v.records_in_db = query_int(db, "SELECT COUNT(*) FROM records");
    v.batches_in_db = query_int(db, "SELECT COUNT(*) FROM batches");
    v.windows = query_int(db, "SELECT COUNT(*) FROM windows");
    v.window_records = query_int(db, "SELECT COUNT(*) FROM window_members");
    v.late_records = query_int(db, "SELECT COUNT(*) FROM records WHERE late <> 0");
    v.windows_count_mismatch =
        query_int(db,
                  "SELECT COUNT(*) FROM windows w WHERE w.record_count <> "
                  "(SELECT COUNT(*) FROM window_members r WHERE r.window_id = w.id)");
    const auto acc = static_cast<std::int64_t>(accepted);
    if (v.records_in_db != acc) {
        std::string why = "records in the database (" + std::to_string(v.records_in_db) +
                          ") != records acknowledged (" + std::to_string(acc) + ")";
        if (unknown_batches > 0) {
            why += "; " + std::to_string(unknown_batches) + " batches got no answer, so up to " +
                   std::to_string(unknown_batches * static_cast<std::uint64_t>(batch)) +
                   " more may legitimately be stored";
        }
        v.problems.push_back(why);
    }
    if (v.batches_in_db < static_cast<std::int64_t>(batches_ok)) {
        v.problems.push_back("batches in the database (" + std::to_string(v.batches_in_db) +
                             ") < batches acknowledged (" + std::to_string(batches_ok) + ")");
    }
    if (v.windows_count_mismatch != 0) {
        v.problems.push_back(std::to_string(v.windows_count_mismatch) +
                             " windows whose record_count differs from their window_members rows");
    }
    // Aggregates: the largest window of each granularity and a couple of 1m windows must be
    // the product of their records' ciphertexts, and decrypt to the sum of what was sent.
    const PublicKey& pk = sk.public_key();
    std::unordered_map<std::string, const PoolEntry*> by_ct;
    by_ct.reserve(pool.size());
    for (const auto& e : pool) {
        by_ct.emplace(e.ct_b64, &e);
    }
    std::vector<std::int64_t> ids;
    {
        auto st = db.prepare(
            "SELECT id FROM (SELECT id, granularity, ROW_NUMBER() OVER (PARTITION BY granularity "
            "ORDER BY record_count DESC, id) AS k FROM windows WHERE record_count > 0) "
            "WHERE k <= 2 ORDER BY granularity, k");
        while (st.step()) {
            ids.push_back(st.column_int64(0));
        }
    }
    for (std::int64_t id : ids) {
        auto w = db.prepare("SELECT record_count, aggregate FROM windows WHERE id = ?");
        w.bind(1, id);
        if (!w.step()) {
            continue;
        }
        const std::int64_t count = w.column_int64(0);
        const BigInt aggregate = BigInt::from_bytes(w.column_blob(1));
        w.reset();
        auto rs = db.prepare(
            "SELECT r.ct FROM window_members wr JOIN records r ON r.device_id = wr.device_id AND "
            "r.seq = wr.seq WHERE wr.window_id = ?");
        rs.bind(1, id);
        std::vector<Ciphertext> cts;
        HeartRateStats expected;
        bool known = true;
        while (rs.step()) {
            auto bytes = rs.column_blob(0);
            auto c = pk.parse_ciphertext(bytes);
            if (!c) {
                v.problems.push_back("window " + std::to_string(id) +
                                     " links a stored ciphertext that does not parse");
                known = false;
                break;
            }
            auto it = by_ct.find(pk.serialize_base64url(c.value()));
            if (it == by_ct.end()) {
                known = false;  // not one of ours: the plaintext comparison is skipped
            } else {
                expected += it->second->stats;
            }
            cts.push_back(std::move(c).value());
        }
        ++v.aggregates_checked;
        bool ok = static_cast<std::int64_t>(cts.size()) == count;
        Ciphertext product = pk.sum(cts);
        ok = ok && product.value() == aggregate;
        if (ok) {
            auto stats = codec.unpack(sk.decrypt(product));
            ok = stats.ok() && static_cast<std::int64_t>(stats.value().records) == count &&
                 (!known || stats.value() == expected);
        }
        if (!ok) {
            ++v.aggregates_bad;
            v.problems.push_back("window " + std::to_string(id) +
                                 ": aggregate is not the product of its records, or does not "
                                 "decrypt to their sum");
        }
    }
    return v;
}

// ------------------------------------------------------------------------------- results

double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) {
        return 0;
    }
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
    rank = std::clamp<std::size_t>(rank, 1, sorted.size());
    return sorted[rank - 1];
}

int run(const Options& o) {
    if (o.bits != 2048 && o.bits != 3072) {
        throw std::invalid_argument("--bits must be 2048 or 3072");
    }
    if (o.devices < o.concurrency) {
        throw std::invalid_argument("--devices must be at least --concurrency");
    }
    if (!fs::exists(o.server_bin)) {
        throw std::invalid_argument("server binary not found: " + o.server_bin +
                                    " (build it, or pass --server-bin)");
    }
    const std::string server_bin = fs::absolute(o.server_bin).string();

    // Temporary directory, removed on every way out unless --keep-dir. Declared before the
    // server process so that the server is stopped first.
    std::string dir_template = (fs::temp_directory_path() / "cipherpulse-ingest-XXXXXX").string();
    if (::mkdtemp(dir_template.data()) == nullptr) {
        throw std::runtime_error("mkdtemp: " + std::string(std::strerror(errno)));
    }
    const fs::path dir = dir_template;
    ScopeExit remove_dir([&] {
        if (o.keep_dir) {
            std::cerr << "ingest_load: kept " << dir.string() << "\n";
        } else {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    });
    ServerProcess server;

    auto setup_started = SteadyClock::now();
    std::cerr << "ingest_load: " << o.bits << "-bit Paillier key, " << o.devices << " devices, "
              << o.concurrency << " connections, batches of " << o.batch << " (dir " << dir.string()
              << ")\n";
    PrivateKey sk = PrivateKey::generate(static_cast<std::size_t>(o.bits));
    const PublicKey& pk = sk.public_key();
    HeartRateCodec codec;
    Ed25519PrivateKey identity = Ed25519PrivateKey::generate();
    if (auto s = identity.public_key().save(dir / "identity.pub.pem", false); !s.ok()) {
        throw std::runtime_error("saving the identity key: " + s.error().message);
    }

    // Configuration, database and tokens, through the server library.
    const int port = free_loopback_port();
    const fs::path config_path = dir / "server.toml";
    write_config(config_path, o, port);
    auto loaded = server::load_server_config(config_path);
    if (!loaded) {
        throw std::runtime_error("generated config refused: " + loaded.error().message);
    }
    const server::ServerConfig config = loaded.value();
    std::string admin_token, decryptor_token;
    {
        std::ostringstream out, err;
        if (server::run_init(config, out, err) != 0) {
            throw std::runtime_error("run_init failed: " + err.str());
        }
        admin_token = last_line(out.str());
        std::ostringstream out2, err2;
        if (server::run_token_create(config, "decryptor", "ingest_load", std::nullopt, out2,
                                     err2) != 0) {
            throw std::runtime_error("token create failed: " + err2.str());
        }
        decryptor_token = last_line(out2.str());
    }
    if (admin_token.empty() || decryptor_token.empty()) {
        throw std::runtime_error("no token printed by run_init / run_token_create");
    }

    // Server in a child process.
    const fs::path log_path = dir / "server.log";
    server.start(server_bin, config_path, log_path);
    auto fail_with_log = [&](const std::string& what) -> std::runtime_error {
        return std::runtime_error(what + "\n--- server log (tail) ---\n" +
                                  tail_of_file(log_path, 2000));
    };
    httplib::Client admin("127.0.0.1", port);
    admin.set_connection_timeout(1, 0);
    admin.set_read_timeout(30, 0);
    {
        auto deadline = SteadyClock::now() + std::chrono::seconds(30);
        bool healthy = false;
        while (SteadyClock::now() < deadline && !interrupted()) {
            if (!server.poll()) {
                throw fail_with_log("the server exited during start-up (" + server.describe_exit() +
                                    ")");
            }
            auto res = admin.Get("/v1/health");
            if (res && res->status == 200) {
                healthy = true;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        if (!healthy) {
            throw fail_with_log(interrupted() ? "interrupted"
                                              : "the server did not answer /v1/health in 30 s");
        }
    }
    {
        std::string jws = jws_sign(pk.to_json(), identity, {}, "paillier-key+json");
        auto res = admin.Post("/v1/keys", bearer(decryptor_token), json{{"jws", jws}}.dump(),
                              "application/json");
        if (!res || res->status != 201) {
            throw fail_with_log("publishing the key failed: " +
                                (res ? std::to_string(res->status) + " " + res->body
                                     : httplib::to_string(res.error())));
        }
    }
    std::vector<Device> devices;
    devices.reserve(static_cast<std::size_t>(o.devices));
    for (int i = 0; i < o.devices && !interrupted(); ++i) {
        Device d{"bench-dev-" + std::to_string(i), Ed25519PrivateKey::generate()};
        json body = {{"id", d.id},
                     {"patient", "bench-patient-" + std::to_string(i)},
                     {"public_key_pem", d.key.public_key().to_pem()}};
        auto res = admin.Post("/v1/devices", bearer(admin_token), body.dump(), "application/json");
        if (!res || res->status != 201) {
            throw fail_with_log("registering " + d.id + " failed: " +
                                (res ? std::to_string(res->status) + " " + res->body
                                     : httplib::to_string(res.error())));
        }
        devices.push_back(std::move(d));
    }
    auto pool_started = SteadyClock::now();
    std::vector<PoolEntry> pool = make_pool(pk, codec, o.pool);
    const double pool_seconds = seconds_between(pool_started, SteadyClock::now());
    std::cerr << "ingest_load: setup " << std::fixed << std::setprecision(1)
              << seconds_between(setup_started, SteadyClock::now()) << " s (pre-encrypting "
              << o.pool << " ciphertexts: " << pool_seconds << " s)\n";
    if (interrupted()) {
        throw std::runtime_error("interrupted");
    }

    // Stagger the devices' starting times over the span.
    {
        const std::int64_t now = unix_ms();
        for (std::size_t i = 0; i < devices.size(); ++i) {
            std::int64_t offset =
                static_cast<std::int64_t>(i) * (o.span_s * 1000LL / 2) / std::max(1, o.devices);
            std::int64_t t = now - o.span_s * 1000LL + kRecordSpacingMs + offset;
            devices[i].next_t = t - t % kRecordSpacingMs;
        }
    }

    // The load.
    const std::int64_t rss_idle = rss_kib(server.pid()).value_or(0);
    LoadPlan plan;
    plan.port = port;
    plan.batch = o.batch;
    plan.span_ms = std::int64_t{o.span_s} * 1000;
    plan.pool = &pool;
    plan.kid = pk.kid();
    plan.schema = codec.schema_id();
    plan.fast_body = batch_body_is_exact(devices, pool, plan.kid, plan.schema);
    if (!plan.fast_body) {
        std::cerr << "ingest_load: note: bodies built with common::batch_json (slower)\n";
    }
    const auto load_start = SteadyClock::now();
    plan.measure_start = load_start + std::chrono::duration_cast<SteadyClock::duration>(
                                          std::chrono::duration<double>(o.warmup));
    plan.measure_end = plan.measure_start + std::chrono::duration_cast<SteadyClock::duration>(
                                                std::chrono::duration<double>(o.seconds));
    std::vector<ThreadStats> stats(static_cast<std::size_t>(o.concurrency));
    g_per_second_count = static_cast<std::size_t>(std::ceil(o.seconds));
    g_per_second = std::make_unique<std::atomic<std::uint64_t>[]>(g_per_second_count);
    std::vector<std::thread> clients;
    ScopeExit join_clients([&] {
        g_stop_load = true;
        for (auto& t : clients) {
            if (t.joinable()) {
                t.join();
            }
        }
    });
    for (int c = 0; c < o.concurrency; ++c) {
        std::vector<Device*> share;
        for (int i = c; i < o.devices; i += o.concurrency) {
            share.push_back(&devices[static_cast<std::size_t>(i)]);
        }
        clients.emplace_back(run_client, c, std::move(share), std::cref(plan),
                             std::ref(stats[static_cast<std::size_t>(c)]));
    }
    std::int64_t rss_start = 0, rss_end = 0, rss_max = rss_idle;
    double server_cpu_start = 0, server_cpu_end = 0, self_cpu_start = 0, self_cpu_end = 0;
    double machine_start = 0, machine_end = 0;
    bool started_measure = false, ended_measure = false;
    std::string abort_reason;
    while (!ended_measure) {
        if (interrupted()) {
            abort_reason = "interrupted";
            break;
        }
        if (!server.poll()) {
            abort_reason = "the server exited during the load (" + server.describe_exit() + ")";
            break;
        }
        if (g_stop_load) {
            abort_reason = "a client thread failed";
            break;
        }
        auto now = SteadyClock::now();
        std::int64_t rss = rss_kib(server.pid()).value_or(0);
        rss_max = std::max(rss_max, rss);
        if (!started_measure && now >= plan.measure_start) {
            started_measure = true;
            rss_start = rss;
            server_cpu_start = cpu_seconds(server.pid()).value_or(0);
            self_cpu_start = self_cpu_seconds();
            machine_start = machine_busy_seconds();
        }
        if (now >= plan.measure_end) {
            ended_measure = true;
            rss_end = rss;
            server_cpu_end = cpu_seconds(server.pid()).value_or(0);
            self_cpu_end = self_cpu_seconds();
            machine_end = machine_busy_seconds();
            break;
        }
        auto next = now + std::chrono::milliseconds(100);
        if (!started_measure) {
            next = std::min(next, plan.measure_start);
        }
        next = std::min(next, plan.measure_end);
        std::this_thread::sleep_until(next);
    }
    // An aborted run measures up to the abort.
    double measured_s = o.seconds;
    if (!ended_measure) {
        auto now = SteadyClock::now();
        measured_s = started_measure ? seconds_between(plan.measure_start, now) : 0.0;
        if (started_measure && server.running()) {
            rss_end = rss_kib(server.pid()).value_or(0);
            server_cpu_end = cpu_seconds(server.pid()).value_or(server_cpu_start);
            self_cpu_end = self_cpu_seconds();
            machine_end = machine_busy_seconds();
        }
    }
    // Let in-flight requests finish (their records count in the database check), then stop.
    g_stop_load = true;
    for (auto& t : clients) {
        t.join();
    }
    if (server.running()) {
        rss_max = std::max(rss_max, rss_kib(server.pid()).value_or(0));
    }
    const double shutdown_s = server.stop(std::chrono::seconds(60));

    ThreadStats total;
    std::vector<double> latencies;
    for (auto& s : stats) {
        if (!s.fatal.empty()) {
            abort_reason += (abort_reason.empty() ? "" : "; ") + ("client: " + s.fatal);
        }
        latencies.insert(latencies.end(), s.latency_ms.begin(), s.latency_ms.end());
        total.batches_ok += s.batches_ok;
        total.records_ok += s.records_ok;
        total.duplicate += s.duplicate;
        total.late += s.late;
        total.transport_errors += s.transport_errors;
        total.total_accepted += s.total_accepted;
        total.total_batches_ok += s.total_batches_ok;
        total.total_unknown_batches += s.total_unknown_batches;
        for (auto [k, v] : s.refused) {
            total.refused[k] += v;
        }
        for (auto [k, v] : s.total_refused) {
            total.total_refused[k] += v;
        }
    }
    std::sort(latencies.begin(), latencies.end());
    // Fairness: batches answered per connection in the interval (a starved one shows as 0).
    std::uint64_t per_conn_min = UINT64_MAX, per_conn_max = 0;
    for (auto& s : stats) {
        per_conn_min = std::min(per_conn_min, s.batches_ok);
        per_conn_max = std::max(per_conn_max, s.batches_ok);
    }
    double mean = 0;
    for (double l : latencies) {
        mean += l;
    }
    mean = latencies.empty() ? 0 : mean / static_cast<double>(latencies.size());
    const double secs = std::max(measured_s, 1e-9);
    const double records_per_s =
        measured_s > 0 ? static_cast<double>(total.records_ok) / secs : 0.0;
    const double batches_per_s =
        measured_s > 0 ? static_cast<double>(total.batches_ok) / secs : 0.0;
    const double server_cores = measured_s > 0 ? (server_cpu_end - server_cpu_start) / secs : 0.0;
    const double self_cores = measured_s > 0 ? (self_cpu_end - self_cpu_start) / secs : 0.0;
    const double machine_cores = measured_s > 0 ? (machine_end - machine_start) / secs : 0.0;
    const double other_cores = std::max(0.0, machine_cores - server_cores - self_cores);
    auto refused = [&](int status) {
        auto it = total.refused.find(status);
        return it == total.refused.end() ? std::uint64_t{0} : it->second;
    };
    std::uint64_t other_errors = 0;
    for (auto [k, v] : total.refused) {
        if (k != 429 && k != 503) {
            other_errors += v;
        }
    }

    Verification v;
    std::string verify_error;
    if (server.running()) {
        verify_error = "server still running";
    } else {
        try {
            v = verify_database(config.database, sk, codec, pool, total.total_accepted,
                                total.total_batches_ok, total.total_unknown_batches, o.batch);
        } catch (const std::exception& e) {
            verify_error = e.what();
        }
    }
    const bool verified = verify_error.empty() && v.problems.empty();
    const bool ok = verified && abort_reason.empty() && ended_measure && server.exited_cleanly();

    // Report.
    std::ostringstream r;
    std::vector<std::uint64_t> per_second_json;
    r << std::fixed << std::setprecision(1);
    r << "cipherpulse-server ingest: n=" << o.bits << " bits, " << o.devices << " devices, "
      << o.concurrency << " connections, batch " << o.batch << ", server threads "
      << o.server_threads << ", rate limit "
      << (o.rate ? (std::ostringstream() << std::defaultfloat << *o.rate << "/s per device").str()
                 : std::string("off (1e6/s)"))
      << ", " << measured_s << " s measured after " << o.warmup << " s warm-up\n";
    if (!abort_reason.empty()) {
        r << "  ABORTED: " << abort_reason << "\n";
    }
    r << "  accepted      " << std::setprecision(0) << records_per_s << " records/s, "
      << std::setprecision(1) << batches_per_s << " batches/s (" << total.records_ok
      << " records in " << total.batches_ok << " batches; per connection " << per_conn_min << ".."
      << per_conn_max << ")\n";
    {
        // Whole seconds only (a fractional last second would read low).
        const auto whole = static_cast<std::size_t>(std::floor(measured_s));
        std::vector<std::uint64_t> per_second;
        for (std::size_t i = 0; i < std::min(whole, g_per_second_count); ++i) {
            per_second.push_back(g_per_second[i].load());
        }
        if (per_second.size() >= 4) {
            const std::size_t q = per_second.size() / 4;
            auto avg = [&](std::size_t from, std::size_t to) {
                double sum = 0;
                for (std::size_t i = from; i < to; ++i) {
                    sum += static_cast<double>(per_second[i]);
                }
                return sum / static_cast<double>(to - from);
            };
            r << "  per second    min " << *std::min_element(per_second.begin(), per_second.end())
              << ", max " << *std::max_element(per_second.begin(), per_second.end())
              << " records; first quarter " << std::setprecision(0) << avg(0, q)
              << "/s, last quarter " << avg(per_second.size() - q, per_second.size()) << "/s\n"
              << std::setprecision(1);
        }
        per_second_json = per_second;
    }
    r << "  latency       p50 " << std::setprecision(1) << percentile(latencies, 0.50)
      << " ms, p99 " << percentile(latencies, 0.99) << " ms, max "
      << (latencies.empty() ? 0.0 : latencies.back()) << " ms, mean " << mean << " ms\n";
    r << "  refused       429: " << refused(429) << ", 503: " << refused(503)
      << ", other: " << other_errors;
    for (auto [k, n] : total.refused) {
        if (k != 429 && k != 503) {
            r << " [" << k << ": " << n << "]";
        }
    }
    r << ", no answer: " << total.transport_errors << "; late " << total.late << ", duplicate "
      << total.duplicate << "\n";
    r << "  server RSS    idle " << rss_idle / 1024 << " MiB, start " << rss_start / 1024
      << " MiB, end " << rss_end / 1024 << " MiB, max " << rss_max / 1024 << " MiB\n";
    r << std::setprecision(2) << "  CPU           server " << server_cores << " cores, generator "
      << self_cores << " cores, other processes " << other_cores << " cores (of "
      << std::thread::hardware_concurrency() << ")\n";
    r << std::setprecision(1) << "  shutdown      " << server.describe_exit() << " after "
      << shutdown_s << " s\n";
    if (!verify_error.empty()) {
        r << "  verify        FAILED: " << verify_error << "\n";
    } else {
        r << "  verify        " << (v.problems.empty() ? "ok" : "FAILED") << ": " << v.records_in_db
          << " records stored / " << total.total_accepted << " acknowledged (whole run), "
          << v.windows << " windows, " << v.windows_count_mismatch
          << " with record_count != window_members, " << v.aggregates_checked - v.aggregates_bad
          << "/" << v.aggregates_checked
          << " aggregates = product of records and decrypt to their sum\n";
        r << "  database      " << v.database_bytes / (1024 * 1024) << " MiB (with WAL), "
          << std::setprecision(0)
          << (v.records_in_db > 0
                  ? static_cast<double>(v.database_bytes) / static_cast<double>(v.records_in_db)
                  : 0.0)
          << " bytes per stored record\n"
          << std::setprecision(1);
        for (const auto& p : v.problems) {
            r << "                - " << p << "\n";
        }
    }
    if (!ok) {
        r << "  server log tail:\n" << tail_of_file(log_path, 1500) << "\n";
    }

    json j = {
        {"tool", "ingest_load"},
        {"bits", o.bits},
        {"devices", o.devices},
        {"concurrency", o.concurrency},
        {"batch", o.batch},
        {"seconds", measured_s},
        {"warmup", o.warmup},
        {"rate", o.rate ? json(*o.rate) : json(nullptr)},
        {"server_threads", o.server_threads},
        {"records_per_s", records_per_s},
        {"records_per_second_series", per_second_json},
        {"batches_per_s", batches_per_s},
        {"records", total.records_ok},
        {"batches", total.batches_ok},
        {"batches_per_connection", {{"min", per_conn_min}, {"max", per_conn_max}}},
        {"latency_ms",
         {{"p50", percentile(latencies, 0.5)},
          {"p99", percentile(latencies, 0.99)},
          {"max", latencies.empty() ? 0.0 : latencies.back()},
          {"mean", mean}}},
        {"http_429", refused(429)},
        {"http_503", refused(503)},
        {"other_errors", other_errors},
        {"no_answer", total.transport_errors},
        {"late", total.late},
        {"duplicate", total.duplicate},
        {"server_rss_kib",
         {{"idle", rss_idle}, {"start", rss_start}, {"end", rss_end}, {"max", rss_max}}},
        {"server_cpu_cores", server_cores},
        {"generator_cpu_cores", self_cores},
        {"other_cpu_cores", other_cores},
        {"shutdown_s", shutdown_s},
        {"server_exit", server.describe_exit()},
        {"accepted_total", total.total_accepted},
        {"records_in_db", v.records_in_db},
        {"database_bytes", v.database_bytes},
        {"window_count_mismatches", v.windows_count_mismatch},
        {"aggregates_checked", v.aggregates_checked},
        {"aggregates_bad", v.aggregates_bad},
        {"verified", verified},
        {"ok", ok},
        {"aborted", abort_reason.empty() ? json(nullptr) : json(abort_reason)},
    };
    json status_counts = json::object();
    for (auto [k, n] : total.refused) {
        status_counts[std::to_string(k)] = n;
    }
    j["refused_by_status"] = status_counts;

    if (o.json_output) {
        std::cerr << r.str();
        std::cout << j.dump() << std::endl;
    } else {
        std::cout << r.str() << std::flush;
    }
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    CLI::App app{"ingest_load: load generator for cipherpulse-server's POST /v1/readings",
                 "ingest_load"};
    app.add_option("--bits", o.bits, "Paillier modulus size")
        ->check(CLI::IsMember({2048, 3072}))
        ->capture_default_str();
    app.add_option("--devices", o.devices, "registered devices (one patient each)")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    app.add_option("--concurrency", o.concurrency, "client threads, one keep-alive connection each")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    app.add_option("--batch", o.batch, "records per upload")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    app.add_option("--seconds", o.seconds, "measured duration")
        ->check(CLI::Range(0.5, 86400.0))
        ->capture_default_str();
    app.add_option("--warmup", o.warmup, "seconds of load before measuring")
        ->check(CLI::Range(0.0, 3600.0))
        ->capture_default_str();
    app.add_option("--rate", o.rate,
                   "server's device_rate_per_second (default: so high the limiter never acts)")
        ->check(CLI::PositiveNumber);
    app.add_option("--pool", o.pool, "distinct pre-encrypted ciphertexts to reuse")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    app.add_option("--span-s", o.span_s,
                   "record times cycle within the last this many seconds (seal grace is raised "
                   "to cover it)")
        ->check(CLI::Range(60, 86400))
        ->capture_default_str();
    app.add_option("--server-threads", o.server_threads, "server.threads (HTTP workers)")
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
    app.add_option("--request-queue", o.request_queue, "server.request_queue")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    app.add_option("--synchronous", o.synchronous, "storage.synchronous")
        ->check(CLI::IsMember({"NORMAL", "FULL"}))
        ->capture_default_str();
    app.add_option("--server-log-level", o.server_log_level, "the server's logging.level")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
        ->capture_default_str();
    app.add_option("--server-bin", o.server_bin, "the built cipherpulse-server binary")
        ->capture_default_str();
    app.add_flag("--keep-dir", o.keep_dir, "keep the temporary directory (database, config, log)");
    app.add_flag("--json", o.json_output, "print one JSON line on stdout (the report on stderr)");
    CLI11_PARSE(app, argc, argv);

    bench::install_interrupt_handlers();

    try {
        return run(o);
    } catch (const std::exception& e) {
        std::cerr << "ingest_load: error: " << e.what() << "\n";
        return 2;
    } catch (...) {
        std::cerr << "ingest_load: error\n";
        return 2;
    }
}
