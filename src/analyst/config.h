// The analyst tool's configuration (config/analyst.toml): where the server is, the analyst's
// bearer token, the analyst's X25519 result key and the pinned decryptor identity.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "cipherpulse/result.h"

namespace cipherpulse::analyst {

struct AnalystConfig {
    // [server]
    std::string server_url = "https://127.0.0.1:8443";
    std::string ca_file;
    std::string token_file = "analyst.token";  // analyst role, mode 0600
    std::string token_env;
    int timeout_s = 30;
    // [keys]
    std::string private_key = "keys/analyst.pem";     // X25519, mode 0600 (init)
    std::string public_key = "keys/analyst.pub.pem";  // registered with the server
    std::string decryptor_identity = "keys/decryptor-identity.pub.pem";  // pinned by init
    // [budget] the decryptor's policy as the analyst knows it (the decryptor enforces it)
    std::uint32_t budget_milli = 10'000;
    int budget_days = 30;
    // [logging]
    std::string log_level = "warn";
};

// load_analyst_config reads `path`; unknown sections and keys are errors and relative
// paths resolve against the file's directory. A missing file is not an error when
// `optional` is set: the defaults apply, resolved against the current directory.
Result<AnalystConfig> load_analyst_config(const std::filesystem::path& path, bool optional);

// read_analyst_token reads the bearer token from server.token_env or server.token_file.
Result<std::string> read_analyst_token(const AnalystConfig& config);

}  // namespace cipherpulse::analyst
