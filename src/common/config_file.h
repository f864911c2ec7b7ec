// Helpers shared by the programs' TOML configuration loaders.
#pragma once

#include <filesystem>
#include <string>

#include "cipherpulse/result.h"

namespace cipherpulse::common {

// config_error is the error of a configuration mistake ("configuration: ...").
Error config_error(const std::string& message);

// resolve_config_path makes a relative path in a configuration file relative to the
// file's directory; empty and absolute values stay as they are.
std::string resolve_config_path(const std::filesystem::path& base, const std::string& value);

// read_secret reads a secret from a 0600 file (first line) or an environment variable;
// empty when neither is named. Fails when the named source is missing, empty or readable by
// others, and when both are named. `what` names the secret in the error.
Result<std::string> read_secret(const std::string& file, const std::string& env_var,
                                const std::string& what);

}  // namespace cipherpulse::common
