#include "common/config_file.h"

#include <cstdlib>

#include "cipherpulse/files.h"

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

Result<std::string> read_secret(const std::string& file, const std::string& env_var,
                                const std::string& what) {
    if (!file.empty() && !env_var.empty()) {
        return config_error(what + ": name a file or an environment variable, not both");
    }
    std::string value;
    if (!file.empty()) {
        auto bytes = read_private_file(file);
        if (!bytes) {
            return config_error(what + ": " + bytes.error().message);
        }
        value.assign(reinterpret_cast<const char*>(bytes.value().data()), bytes.value().size());
        if (auto nl = value.find_first_of("\r\n"); nl != std::string::npos) {
            value.resize(nl);
        }
    } else if (!env_var.empty()) {
        const char* v = std::getenv(env_var.c_str());
        if (v == nullptr) {
            return config_error(what + ": environment variable " + env_var + " is not set");
        }
        value = v;
    } else {
        return std::string();
    }
    if (value.empty()) {
        return config_error(what + " is empty");
    }
    return value;
}

}  // namespace cipherpulse::common
