#include "analyst/config.h"

#include "cohort/noise.h"
#include "common/config_file.h"
#include "common/toml_file.h"

namespace cipherpulse::analyst {
namespace {

using common::check_toml_keys;
using common::config_error;
using common::read_toml;

Status first_error(std::initializer_list<Status> results) {
    for (const auto& r : results) {
        if (!r) {
            return r.error();
        }
    }
    return Ok{};
}

Status read_server(const toml::table& t, AnalystConfig& c) {
    std::int64_t timeout = c.timeout_s;
    if (auto s = first_error(
            {check_toml_keys(t, {"url", "ca_file", "token_file", "token_env", "timeout_s"},
                             "[server]"),
             read_toml(t, "url", c.server_url, "server"),
             read_toml(t, "ca_file", c.ca_file, "server"),
             read_toml(t, "token_file", c.token_file, "server"),
             read_toml(t, "token_env", c.token_env, "server"),
             read_toml(t, "timeout_s", timeout, "server")});
        !s) {
        return s;
    }
    if (timeout < 1 || timeout > 600) {
        return config_error("server.timeout_s must be within 1..600");
    }
    c.timeout_s = static_cast<int>(timeout);
    return Ok{};
}

Status read_keys(const toml::table& t, AnalystConfig& c) {
    return first_error(
        {check_toml_keys(t, {"private_key", "public_key", "decryptor_identity"}, "[keys]"),
         read_toml(t, "private_key", c.private_key, "keys"),
         read_toml(t, "public_key", c.public_key, "keys"),
         read_toml(t, "decryptor_identity", c.decryptor_identity, "keys")});
}

Status read_budget(const toml::table& t, AnalystConfig& c) {
    std::string epsilon = cohort::format_epsilon(c.budget_milli);
    std::int64_t days = c.budget_days;
    if (auto s = first_error({check_toml_keys(t, {"epsilon", "days"}, "[budget]"),
                              read_toml(t, "epsilon", epsilon, "budget"),
                              read_toml(t, "days", days, "budget")});
        !s) {
        return s;
    }
    auto milli = cohort::parse_epsilon_milli(epsilon);
    if (!milli) {
        return config_error("budget.epsilon must be a decimal string in (0, 100], e.g. \"10\"");
    }
    if (days < 1 || days > 3660) {
        return config_error("budget.days must be within 1..3660");
    }
    c.budget_milli = *milli;
    c.budget_days = static_cast<int>(days);
    return Ok{};
}

void resolve(const std::filesystem::path& base, AnalystConfig& c) {
    for (std::string* p :
         {&c.ca_file, &c.token_file, &c.private_key, &c.public_key, &c.decryptor_identity}) {
        *p = common::resolve_config_path(base, *p);
    }
}

}  // namespace

Result<AnalystConfig> load_analyst_config(const std::filesystem::path& path, bool optional) {
    AnalystConfig c;
    std::error_code ec;
    if (optional && !std::filesystem::exists(path, ec)) {
        resolve(".", c);
        return c;
    }
    auto parsed = common::parse_toml_file(path);
    if (!parsed) {
        return parsed.error();
    }
    const toml::table& doc = parsed.value();
    if (auto s = check_toml_keys(doc, {"server", "keys", "budget", "logging"}, "the file"); !s) {
        return s.error();
    }
    auto section = [&doc](const char* name) -> const toml::table* {
        const toml::node* n = doc.get(name);
        return n == nullptr ? nullptr : n->as_table();
    };
    for (const char* name : {"server", "keys", "budget", "logging"}) {
        if (doc.get(name) != nullptr && section(name) == nullptr) {
            return config_error(std::string("[") + name + "] must be a table");
        }
    }
    if (const auto* t = section("server"); t != nullptr) {
        if (auto s = read_server(*t, c); !s) {
            return s.error();
        }
    }
    if (c.server_url.rfind("http://", 0) != 0 && c.server_url.rfind("https://", 0) != 0) {
        return config_error("server.url must start with https:// (or http:// on loopback)");
    }
    if (const auto* t = section("keys"); t != nullptr) {
        if (auto s = read_keys(*t, c); !s) {
            return s.error();
        }
    }
    if (const auto* t = section("budget"); t != nullptr) {
        if (auto s = read_budget(*t, c); !s) {
            return s.error();
        }
    }
    if (const auto* t = section("logging"); t != nullptr) {
        if (auto s = first_error({check_toml_keys(*t, {"level"}, "[logging]"),
                                  read_toml(*t, "level", c.log_level, "logging")});
            !s) {
            return s.error();
        }
    }
    resolve(path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path(), c);
    return c;
}

Result<std::string> read_analyst_token(const AnalystConfig& config) {
    auto token = common::read_secret(config.token_env.empty() ? config.token_file : std::string(),
                                     config.token_env, "the analyst token");
    if (token && token.value().empty()) {
        return common::config_error("server.token_file or server.token_env is required");
    }
    return token;
}

}  // namespace cipherpulse::analyst
