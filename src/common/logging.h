// Logging: one named spdlog logger per program, on standard error.
#pragma once

#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace cipherpulse::common {

// init_logging creates the logger named `program` writing to standard error, makes it the
// default logger and sets its level ("trace", "debug", "info", "warn", "error", "off").
// Throws std::invalid_argument for an unknown level. Never log plaintexts, keys or tokens.
std::shared_ptr<spdlog::logger> init_logging(const std::string& program, const std::string& level);

}  // namespace cipherpulse::common
