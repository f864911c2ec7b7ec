// Helpers shared by the unit tests: cached test keys, temporary directories, repo paths.
#pragma once

#include <filesystem>
#include <string>

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

}  // namespace cipherpulse::testing
