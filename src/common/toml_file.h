// Reading the programs' TOML configuration files. Included only by the configuration
// loaders (it pulls in toml++).
#pragma once

#include <toml++/toml.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <string>

#include "common/config_file.h"

namespace cipherpulse::common {

// parse_toml_file parses `path`; a syntax error names the file and the position.
inline Result<toml::table> parse_toml_file(const std::filesystem::path& path) {
    try {
        return toml::parse_file(path.string());
    } catch (const toml::parse_error& e) {
        std::ostringstream where;
        where << e.source().begin;
        return config_error(path.string() + ": " + std::string(e.description()) + " at " +
                            where.str());
    }
}

// read_toml_value sets `out` from `table[key]` when present; false when it has the wrong
// type (`out` unchanged).
template <class T>
bool read_toml_value(const toml::table& table, const char* key, T& out) {
    const toml::node* node = table.get(key);
    if (node == nullptr) {
        return true;
    }
    auto value = node->value<T>();
    if (!value) {
        return false;
    }
    out = *value;
    return true;
}

// check_toml_keys refuses keys of `table` outside `known`, naming `where` ("[server]").
inline Status check_toml_keys(const toml::table& table, const std::set<std::string>& known,
                              const std::string& where) {
    for (const auto& [key, value] : table) {
        if (known.count(std::string(key.str())) == 0) {
            return config_error("unknown key '" + std::string(key.str()) + "' in " + where);
        }
    }
    return Ok{};
}

// read_toml sets `out` from `table[key]` when present; a wrong type is an error naming
// `where.key`.
template <class T>
Status read_toml(const toml::table& table, const char* key, T& out, const std::string& where) {
    if (!read_toml_value(table, key, out)) {
        return config_error("'" + where + "." + key + "' has the wrong type");
    }
    return Ok{};
}

}  // namespace cipherpulse::common
