#include "unit/test_support.h"

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

}  // namespace cipherpulse::testing
