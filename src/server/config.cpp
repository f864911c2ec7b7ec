#include "server/config.h"

#include <toml++/toml.h>

#include "common/config_file.h"
#include "common/toml_file.h"

#include <algorithm>
#include <set>
#include <sstream>

namespace cipherpulse::server {
namespace {

constexpr std::int64_t kDayMs = 86400000;

using common::config_error;

std::string resolve(const std::filesystem::path& base, const std::string& value) {
    return common::resolve_config_path(base, value);
}

}  // namespace

Result<Granularity> parse_granularity(const std::string& text) {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
        ++digits;
    }
    if (digits == 0 || digits > 6 || digits + 1 != text.size()) {
        return config_error("granularity '" + text + "' must look like 30s, 1m, 1h or 1d");
    }
    std::int64_t count = std::stoll(text.substr(0, digits));
    std::int64_t unit = 0;
    switch (text.back()) {
        case 's':
            unit = 1000;
            break;
        case 'm':
            unit = 60000;
            break;
        case 'h':
            unit = 3600000;
            break;
        case 'd':
            unit = kDayMs;
            break;
        default:
            return config_error("granularity '" + text + "' has an unknown unit");
    }
    std::int64_t length = count * unit;
    if (length <= 0 || (length < kDayMs && kDayMs % length != 0) ||
        (length >= kDayMs && length % kDayMs != 0)) {
        return config_error("granularity '" + text + "' must divide a day or be whole days");
    }
    Granularity g;
    g.name = text;
    g.length_ms = length;
    // Defaults: a tenth of the window, between 5 s and 10 min, to let stragglers in.
    g.seal_grace_ms = std::clamp<std::int64_t>(length / 10, 5000, 600000);
    g.min_records = 1;
    return g;
}

ServerConfig ServerConfig::defaults() {
    ServerConfig c;
    for (const char* name : {"1m", "1h", "1d"}) {
        c.granularities.push_back(parse_granularity(name).value());
    }
    return c;
}

Result<ServerConfig> load_server_config(const std::filesystem::path& path) {
    auto parsed = common::parse_toml_file(path);
    if (!parsed) {
        return parsed.error();
    }
    const toml::table& doc = parsed.value();
    ServerConfig c = ServerConfig::defaults();
    const std::filesystem::path base = path.parent_path();
    if (auto s = common::check_toml_keys(doc, {"server", "storage", "ingest", "keys", "scoring", "cohort", "logging"},
                                         "the file");
        !s) {
        return s.error();
    }
    std::vector<Status> results;
    if (const auto* t = doc["server"].as_table()) {
        results.push_back(
            common::check_toml_keys(*t,
                                    {"listen", "tls_cert", "tls_key", "insecure", "threads",
                                     "max_body_bytes", "max_records_per_batch", "request_queue",
                                     "device_rate_per_second", "read_timeout_s", "write_timeout_s"},
                                    "[server]"));
        std::string listen = c.listen_host + ":" + std::to_string(c.listen_port);
        std::int64_t threads = c.threads, body = static_cast<std::int64_t>(c.max_body_bytes),
                     batch = static_cast<std::int64_t>(c.max_records_per_batch),
                     queue = static_cast<std::int64_t>(c.request_queue), rt = c.read_timeout_s,
                     wt = c.write_timeout_s;
        results.push_back(common::read_toml(*t, "listen", listen, "server"));
        results.push_back(common::read_toml(*t, "tls_cert", c.tls_cert, "server"));
        results.push_back(common::read_toml(*t, "tls_key", c.tls_key, "server"));
        results.push_back(common::read_toml(*t, "insecure", c.insecure, "server"));
        results.push_back(common::read_toml(*t, "threads", threads, "server"));
        results.push_back(common::read_toml(*t, "max_body_bytes", body, "server"));
        results.push_back(common::read_toml(*t, "max_records_per_batch", batch, "server"));
        results.push_back(common::read_toml(*t, "request_queue", queue, "server"));
        results.push_back(
            common::read_toml(*t, "device_rate_per_second", c.device_rate_per_second, "server"));
        results.push_back(common::read_toml(*t, "read_timeout_s", rt, "server"));
        results.push_back(common::read_toml(*t, "write_timeout_s", wt, "server"));
        auto colon = listen.rfind(':');
        if (colon == std::string::npos) {
            return config_error("server.listen must be HOST:PORT");
        }
        c.listen_host = listen.substr(0, colon);
        if (c.listen_host.size() > 2 && c.listen_host.front() == '[') {
            c.listen_host = c.listen_host.substr(1, c.listen_host.size() - 2);
        }
        try {
            c.listen_port = std::stoi(listen.substr(colon + 1));
        } catch (...) {
            return config_error("server.listen has no valid port");
        }
        if (threads < 1 || threads > 256 || body < 1024 || batch < 1 || batch > 100000 ||
            queue < 1 || rt < 1 || wt < 1 || c.listen_port < 0 || c.listen_port > 65535 ||
            c.device_rate_per_second <= 0) {
            return config_error("a [server] value is out of range");
        }
        c.threads = static_cast<int>(threads);
        c.max_body_bytes = static_cast<std::size_t>(body);
        c.max_records_per_batch = static_cast<std::size_t>(batch);
        c.request_queue = static_cast<std::size_t>(queue);
        c.read_timeout_s = static_cast<int>(rt);
        c.write_timeout_s = static_cast<int>(wt);
        c.tls_cert = resolve(base, c.tls_cert);
        c.tls_key = resolve(base, c.tls_key);
    }
    if (const auto* t = doc["storage"].as_table()) {
        results.push_back(common::check_toml_keys(*t, {"database", "synchronous", "retention_days"},
                                                  "[storage]"));
        std::int64_t retention = c.retention_days;
        results.push_back(common::read_toml(*t, "database", c.database, "storage"));
        results.push_back(common::read_toml(*t, "synchronous", c.synchronous, "storage"));
        results.push_back(common::read_toml(*t, "retention_days", retention, "storage"));
        if (c.synchronous != "NORMAL" && c.synchronous != "FULL") {
            return config_error("storage.synchronous must be NORMAL or FULL");
        }
        if (retention < 1) {
            return config_error("storage.retention_days must be at least 1");
        }
        c.retention_days = static_cast<int>(retention);
        c.database = resolve(base, c.database);
    }
    if (const auto* t = doc["ingest"].as_table()) {
        results.push_back(
            common::check_toml_keys(*t,
                                    {"max_clock_skew_s", "max_record_age_s", "key_rotation_grace_s",
                                     "granularities", "seal_grace_s", "min_records"},
                                    "[ingest]"));
        results.push_back(common::read_toml(*t, "max_clock_skew_s", c.max_clock_skew_s, "ingest"));
        results.push_back(common::read_toml(*t, "max_record_age_s", c.max_record_age_s, "ingest"));
        results.push_back(
            common::read_toml(*t, "key_rotation_grace_s", c.key_rotation_grace_s, "ingest"));
        if (const auto* list = t->get_as<toml::array>("granularities")) {
            c.granularities.clear();
            for (const auto& item : *list) {
                auto name = item.value<std::string>();
                if (!name) {
                    return config_error("ingest.granularities must be a list of strings");
                }
                auto g = parse_granularity(*name);
                if (!g) {
                    return g.error();
                }
                c.granularities.push_back(std::move(g).value());
            }
            if (c.granularities.empty() || c.granularities.size() > 8) {
                return config_error("ingest.granularities needs 1 to 8 entries");
            }
        }
        for (const char* table_name : {"seal_grace_s", "min_records"}) {
            const auto* per = t->get_as<toml::table>(table_name);
            if (per == nullptr) {
                continue;
            }
            for (const auto& [key, value] : *per) {
                auto it = std::find_if(c.granularities.begin(), c.granularities.end(),
                                       [&](const Granularity& g) { return g.name == key.str(); });
                auto number = value.value<std::int64_t>();
                if (it == c.granularities.end() || !number || *number < 0) {
                    return config_error(std::string("ingest.") + table_name + "." +
                                        std::string(key.str()) +
                                        " must name a configured granularity and be >= 0");
                }
                if (std::string(table_name) == "seal_grace_s") {
                    it->seal_grace_ms = *number * 1000;
                } else {
                    it->min_records = std::max<std::int64_t>(1, *number);
                }
            }
        }
        if (c.max_clock_skew_s < 1 || c.max_record_age_s < 60 || c.key_rotation_grace_s < 0) {
            return config_error("an [ingest] value is out of range");
        }
    }
    if (const auto* t = doc["keys"].as_table()) {
        results.push_back(common::check_toml_keys(*t, {"identity_public_key"}, "[keys]"));
        results.push_back(
            common::read_toml(*t, "identity_public_key", c.identity_public_key, "keys"));
        c.identity_public_key = resolve(base, c.identity_public_key);
    }
    if (const auto* t = doc["scoring"].as_table()) {
        results.push_back(common::check_toml_keys(
            *t, {"rows_per_day", "max_rows_per_request", "key_cache", "pool_size"}, "[scoring]"));
        std::int64_t per_request = static_cast<std::int64_t>(c.scoring_max_rows_per_request),
                     cache = static_cast<std::int64_t>(c.scoring_key_cache),
                     pool = static_cast<std::int64_t>(c.scoring_pool_size);
        results.push_back(common::read_toml(*t, "rows_per_day", c.scoring_rows_per_day, "scoring"));
        results.push_back(common::read_toml(*t, "max_rows_per_request", per_request, "scoring"));
        results.push_back(common::read_toml(*t, "key_cache", cache, "scoring"));
        results.push_back(common::read_toml(*t, "pool_size", pool, "scoring"));
        if (c.scoring_rows_per_day < 0 || per_request < 1 || per_request > 1000000 ||
            cache < 1 || cache > 1024 || pool < 1 || pool > 65536) {
            return config_error("a [scoring] value is out of range");
        }
        c.scoring_max_rows_per_request = static_cast<std::size_t>(per_request);
        c.scoring_key_cache = static_cast<std::size_t>(cache);
        c.scoring_pool_size = static_cast<std::size_t>(pool);
    }
    if (const auto* t = doc["cohort"].as_table()) {
        results.push_back(common::check_toml_keys(
            *t, {"record_seconds", "max_range_days", "max_patients"}, "[cohort]"));
        std::int64_t patients = static_cast<std::int64_t>(c.cohort_max_patients);
        results.push_back(
            common::read_toml(*t, "record_seconds", c.cohort_record_seconds, "cohort"));
        results.push_back(
            common::read_toml(*t, "max_range_days", c.cohort_max_range_days, "cohort"));
        results.push_back(common::read_toml(*t, "max_patients", patients, "cohort"));
        if (c.cohort_record_seconds < 1 || c.cohort_record_seconds > 3600 ||
            c.cohort_max_range_days < 1 || c.cohort_max_range_days > 366 || patients < 1 ||
            patients > 100000) {
            return config_error("a [cohort] value is out of range");
        }
        c.cohort_max_patients = static_cast<std::size_t>(patients);
    }
    if (const auto* t = doc["logging"].as_table()) {
        results.push_back(common::check_toml_keys(*t, {"level"}, "[logging]"));
        results.push_back(common::read_toml(*t, "level", c.log_level, "logging"));
    }
    for (const auto& r : results) {
        if (!r) {
            return r.error();
        }
    }
    // A pruned record's sequence number is forgotten: records old enough to be pruned must
    // be too old to be accepted again, or a resend would be stored twice.
    if (std::int64_t{c.retention_days} * 86400 <= c.max_record_age_s + c.max_clock_skew_s) {
        return config_error(
            "storage.retention_days must exceed ingest.max_record_age_s plus "
            "ingest.max_clock_skew_s, so a resent record is always recognised");
    }
    return c;
}

}  // namespace cipherpulse::server
