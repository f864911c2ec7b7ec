#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

namespace cipherpulse::common {

std::shared_ptr<spdlog::logger> init_logging(const std::string& program, const std::string& level) {
    auto parsed = spdlog::level::from_str(level);
    if (parsed == spdlog::level::off && level != "off") {
        throw std::invalid_argument("unknown log level '" + level + "'");
    }
    auto logger = spdlog::get(program);
    if (!logger) {
        logger = spdlog::stderr_color_mt(program);
    }
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %n %l %v");
    logger->set_level(parsed);
    spdlog::set_default_logger(logger);
    return logger;
}

}  // namespace cipherpulse::common
