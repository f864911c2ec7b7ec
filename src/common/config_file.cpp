#include "common/config_file.h"

namespace cipherpulse::common {

Error config_error(const std::string& message) {
    return make_error(ErrorCode::kInvalidEncoding, "configuration: " + message);
}

std::string resolve_config_path(const std::filesystem::path& base, const std::string& value) {
    if (value.empty() || std::filesystem::path(value).is_absolute()) {
        return value;
    }
    return (base / value).lexically_normal().string();
}

}  // namespace cipherpulse::common
