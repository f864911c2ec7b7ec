// Helpers shared by the unit tests: cached test keys, temporary directories, repo paths.
#pragma once

#include <filesystem>
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

}  // namespace cipherpulse::testing
