#include "unit/test_support.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
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

}  // namespace cipherpulse::testing
