#include "edge/config.h"

#include <toml++/toml.h>

#include "common/config_file.h"
#include "common/toml_file.h"

#include <map>
#include <set>
#include <sstream>

namespace cipherpulse::edge {
namespace {

using common::config_error;

std::string resolve(const std::filesystem::path& base, const std::string& value) {
    return common::resolve_config_path(base, value);
}

template <class T>
bool read(const toml::table& t, const char* key, T& out) {
    return common::read_toml_value(t, key, out);
}

}  // namespace

Result<EdgeConfig> load_edge_config(const std::filesystem::path& path) {
    auto parsed = common::parse_toml_file(path);
    if (!parsed) {
        return parsed.error();
    }
    const toml::table& doc = parsed.value();
    const std::map<std::string, std::set<std::string>> known = {
        {"device", {"id", "key"}},
        {"trust", {"identity", "key_check_interval_s"}},
        {"server", {"url", "ca_file", "timeout_s"}},
        {"spool", {"path", "max_records", "on_full", "synchronous"}},
        {"upload", {"batch_size", "backoff_initial_ms", "backoff_max_ms"}},
        {"windows", {"micro_window_s"}},
        {"encryption", {"table_window_bits"}},
        {"filter", {"min_bpm", "max_bpm", "min_rr_ms", "max_rr_ms", "max_rr_change"}},
        {"source",
         {"kind", "path", "speed", "profile", "episodes", "seed", "duration_s", "ble_address",
          "ble_name"}},
        {"logging", {"level"}},
    };
    for (const auto& [section, value] : doc) {
        auto it = known.find(std::string(section.str()));
        if (it == known.end() || !value.is_table()) {
            return config_error("unknown section [" + std::string(section.str()) + "]");
        }
        for (const auto& [key, v] : *value.as_table()) {
            if (it->second.count(std::string(key.str())) == 0) {
                return config_error("unknown key '" + std::string(key.str()) + "' in [" +
                                    it->first + "]");
            }
        }
    }
    EdgeConfig c;
    const auto base = path.parent_path();
    auto table = [&](const char* name) -> const toml::table& {
        static const toml::table empty;
        const auto* t = doc[name].as_table();
        return t != nullptr ? *t : empty;
    };
    std::int64_t key_check = c.key_check_interval_s, timeout = c.server.timeout_s,
                 max_records = c.spool.max_records, batch = static_cast<std::int64_t>(c.batch_size),
                 backoff_initial = c.backoff_initial_ms, backoff_max = c.backoff_max_ms,
                 min_rr = c.filter.min_rr_ms, max_rr = c.filter.max_rr_ms,
                 seed = static_cast<std::int64_t>(c.seed);
    double window_s = static_cast<double>(c.micro_window_ms) / 1000.0;
    std::int64_t table_window = c.table_window_bits;
    std::string on_full = "drop-oldest";
    bool ok =
        read(table("device"), "id", c.device_id) && read(table("device"), "key", c.device_key) &&
        read(table("trust"), "identity", c.identity) &&
        read(table("trust"), "key_check_interval_s", key_check) &&
        read(table("server"), "url", c.server.url) &&
        read(table("server"), "ca_file", c.server.ca_file) &&
        read(table("server"), "timeout_s", timeout) && read(table("spool"), "path", c.spool.path) &&
        read(table("spool"), "max_records", max_records) &&
        read(table("spool"), "on_full", on_full) &&
        read(table("spool"), "synchronous", c.spool.synchronous) &&
        read(table("upload"), "batch_size", batch) &&
        read(table("upload"), "backoff_initial_ms", backoff_initial) &&
        read(table("upload"), "backoff_max_ms", backoff_max) &&
        read(table("windows"), "micro_window_s", window_s) &&
        read(table("encryption"), "table_window_bits", table_window) &&
        read(table("filter"), "min_bpm", c.filter.min_bpm) &&
        read(table("filter"), "max_bpm", c.filter.max_bpm) &&
        read(table("filter"), "min_rr_ms", min_rr) && read(table("filter"), "max_rr_ms", max_rr) &&
        read(table("filter"), "max_rr_change", c.filter.max_rr_change) &&
        read(table("source"), "kind", c.source) && read(table("source"), "path", c.replay_path) &&
        read(table("source"), "speed", c.speed) && read(table("source"), "profile", c.profile) &&
        read(table("source"), "episodes", c.episodes) && read(table("source"), "seed", seed) &&
        read(table("source"), "duration_s", c.duration_s) &&
        read(table("logging"), "level", c.log_level);
    if (!ok) {
        return config_error(path.string() + ": a value has the wrong type");
    }
    if (c.device_id.empty() || c.server.url.empty()) {
        return config_error("[device] id and [server] url are required");
    }
    if (on_full != "drop-oldest" && on_full != "drop-newest") {
        return config_error("spool.on_full must be drop-oldest or drop-newest");
    }
    if (key_check < 10 || timeout < 1 || max_records < 1 || batch < 1 || batch > 1000 ||
        backoff_initial < 10 || backoff_max < backoff_initial || window_s < 1 || window_s > 15 ||
        min_rr < 1 || max_rr <= min_rr || c.speed < 0 || c.duration_s < 0 || table_window < 4 ||
        table_window > 10 || (c.source != "sim" && c.source != "replay" && c.source != "ble")) {
        return config_error("a value is out of range (see config/edge.toml)");
    }
    c.key_check_interval_s = static_cast<int>(key_check);
    c.server.timeout_s = static_cast<int>(timeout);
    c.spool.max_records = max_records;
    c.spool.on_full = on_full == "drop-newest" ? SpoolOptions::OnFull::kDropNewest
                                               : SpoolOptions::OnFull::kDropOldest;
    c.batch_size = static_cast<std::size_t>(batch);
    c.backoff_initial_ms = static_cast<int>(backoff_initial);
    c.backoff_max_ms = static_cast<int>(backoff_max);
    c.micro_window_ms = static_cast<std::int64_t>(window_s * 1000);
    c.table_window_bits = static_cast<unsigned>(table_window);
    c.filter.min_rr_ms = static_cast<std::uint32_t>(min_rr);
    c.filter.max_rr_ms = static_cast<std::uint32_t>(max_rr);
    c.seed = static_cast<std::uint64_t>(seed);
    c.device_key = resolve(base, c.device_key);
    c.identity = resolve(base, c.identity);
    c.server.ca_file = resolve(base, c.server.ca_file);
    c.spool.path = resolve(base, c.spool.path);
    c.replay_path = resolve(base, c.replay_path);
    return c;
}

std::string edge_config_text(const EdgeConfig& c) {
    std::ostringstream out;
    out << "# cipherpulse-edge configuration, written by `cipherpulse-edge init`.\n"
        << "# config/edge.toml in the source tree explains every key.\n\n"
        << "[device]\nid = \"" << c.device_id << "\"\nkey = \"" << c.device_key << "\"\n\n"
        << "[trust]\n# The decryptor's identity, pinned at enrolment: encryption keys must be "
           "signed by it.\nidentity = \""
        << c.identity << "\"\nkey_check_interval_s = " << c.key_check_interval_s << "\n\n"
        << "[server]\nurl = \"" << c.server.url << "\"\nca_file = \"" << c.server.ca_file
        << "\"\n\n"
        << "[spool]\npath = \"" << c.spool.path << "\"\nmax_records = " << c.spool.max_records
        << "\non_full = \"drop-oldest\"\n\n"
        << "[source]\nkind = \"sim\"\nprofile = \"healthy\"\nseed = 1\n";
    return out.str();
}

}  // namespace cipherpulse::edge
