#include "decryptor/config.h"

#include <cmath>
#include <cstdlib>

#include "cipherpulse/files.h"
#include "cohort/noise.h"
#include "common/config_file.h"
#include "common/toml_file.h"
#include "decryptor/rules_toml.h"

namespace cipherpulse::decryptor {
namespace {

using common::check_toml_keys;
using common::config_error;
using common::read_secret;
using common::read_toml;

// first_error returns the first failed status of `results`.
Status first_error(const std::vector<Status>& results) {
    for (const auto& r : results) {
        if (!r) {
            return r.error();
        }
    }
    return Ok{};
}

Status read_strings(const toml::table& t, const char* key, std::vector<std::string>& out,
                    const std::string& where) {
    const toml::node* node = t.get(key);
    if (node == nullptr) {
        return Ok{};
    }
    const auto* list = node->as_array();
    if (list == nullptr) {
        return config_error("'" + where + "." + key + "' must be a list of strings");
    }
    out.clear();
    for (const auto& item : *list) {
        auto s = item.value<std::string>();
        if (!s || s->empty()) {
            return config_error("'" + where + "." + key + "' must be a list of strings");
        }
        out.push_back(*s);
    }
    return Ok{};
}

Status read_seconds_ms(const toml::table& t, const char* key, int& out_ms, const std::string& where,
                       double min_s, double max_s) {
    const toml::node* node = t.get(key);
    if (node == nullptr) {
        return Ok{};
    }
    auto v = node->value<double>();
    if (!v || !std::isfinite(*v) || *v < min_s || *v > max_s) {
        return config_error("'" + where + "." + key + "' must be a number of seconds in [" +
                            std::to_string(min_s) + ", " + std::to_string(max_s) + "]");
    }
    out_ms = static_cast<int>(std::llround(*v * 1000));
    return Ok{};
}

Status read_server(const toml::table& t, const std::filesystem::path& base, DecryptorConfig& c) {
    std::vector<Status> r;
    r.push_back(
        check_toml_keys(t, {"url", "ca_file", "token_file", "token_env", "timeout_s"}, "[server]"));
    r.push_back(read_toml(t, "url", c.server_url, "server"));
    r.push_back(read_toml(t, "ca_file", c.ca_file, "server"));
    r.push_back(read_toml(t, "token_file", c.token_file, "server"));
    r.push_back(read_toml(t, "token_env", c.token_env, "server"));
    std::int64_t timeout = c.timeout_s;
    r.push_back(read_toml(t, "timeout_s", timeout, "server"));
    if (auto s = first_error(r); !s) {
        return s;
    }
    if (timeout < 1 || timeout > 600) {
        return config_error("server.timeout_s must be within 1..600");
    }
    if (c.server_url.rfind("http://", 0) != 0 && c.server_url.rfind("https://", 0) != 0) {
        return config_error("server.url must start with https:// (or http:// on loopback)");
    }
    c.timeout_s = static_cast<int>(timeout);
    c.ca_file = common::resolve_config_path(base, c.ca_file);
    c.token_file = common::resolve_config_path(base, c.token_file);
    return Ok{};
}

Status read_key(const toml::table& t, const std::filesystem::path& base, DecryptorConfig& c) {
    std::vector<Status> r;
    r.push_back(check_toml_keys(
        t, {"private_key", "previous_keys", "passphrase_file", "passphrase_env"}, "[key]"));
    r.push_back(read_toml(t, "private_key", c.private_key, "key"));
    r.push_back(read_strings(t, "previous_keys", c.previous_keys, "key"));
    std::string pass_file, pass_env;
    r.push_back(read_toml(t, "passphrase_file", pass_file, "key"));
    r.push_back(read_toml(t, "passphrase_env", pass_env, "key"));
    if (auto s = first_error(r); !s) {
        return s;
    }
    if (!pass_file.empty() && !pass_env.empty()) {
        return config_error("key.passphrase_file and key.passphrase_env exclude each other");
    }
    if (!pass_file.empty()) {
        c.passphrase.file = common::resolve_config_path(base, pass_file);
    }
    if (!pass_env.empty()) {
        c.passphrase.env_var = pass_env;
    }
    c.private_key = common::resolve_config_path(base, c.private_key);
    for (auto& k : c.previous_keys) {
        k = common::resolve_config_path(base, k);
    }
    return Ok{};
}

Status read_scoring(const toml::table& t, const std::filesystem::path&, DecryptorConfig& c) {
    std::vector<Status> r;
    r.push_back(check_toml_keys(t, {"key", "key_bits", "batch_rows"}, "[scoring]"));
    std::int64_t bits = static_cast<std::int64_t>(c.scoring_key_bits);
    std::int64_t batch = static_cast<std::int64_t>(c.scoring_batch_rows);
    r.push_back(read_toml(t, "key", c.scoring_key, "scoring"));
    r.push_back(read_toml(t, "key_bits", bits, "scoring"));
    r.push_back(read_toml(t, "batch_rows", batch, "scoring"));
    if (auto s = first_error(r); !s) {
        return s;
    }
    if (bits < 2048 || bits > 8192 || bits % 2 != 0) {
        return config_error("scoring.key_bits must be an even number within 2048..8192");
    }
    if (batch < 1 || batch > 100000) {
        return config_error("scoring.batch_rows must be within 1..100000");
    }
    c.scoring_key_bits = static_cast<std::size_t>(bits);
    c.scoring_batch_rows = static_cast<std::size_t>(batch);
    return Ok{};
}

Status read_cohort(const toml::table& t, const std::filesystem::path&, DecryptorConfig& c) {
    std::vector<Status> r;
    r.push_back(check_toml_keys(
        t, {"identity_key", "min_patients", "budget_epsilon", "budget_days", "allow_without_noise"},
        "[cohort]"));
    CohortPolicy& p = c.cohort;
    std::int64_t k = p.min_patients;
    std::int64_t days = p.budget_days;
    std::string budget = cohort::format_epsilon(p.budget_milli);
    r.push_back(read_toml(t, "identity_key", p.identity_key, "cohort"));
    r.push_back(read_toml(t, "min_patients", k, "cohort"));
    r.push_back(read_toml(t, "budget_epsilon", budget, "cohort"));
    r.push_back(read_toml(t, "budget_days", days, "cohort"));
    r.push_back(read_toml(t, "allow_without_noise", p.allow_without_noise, "cohort"));
    if (auto s = first_error(r); !s) {
        return s;
    }
    if (k < kMinPatientsFloor || k > 100000) {
        return config_error("cohort.min_patients must be within " +
                            std::to_string(kMinPatientsFloor) + "..100000");
    }
    if (days < 1 || days > 3660) {
        return config_error("cohort.budget_days must be within 1..3660");
    }
    auto milli = cohort::parse_epsilon_milli(budget);
    if (!milli) {
        return config_error(
            "cohort.budget_epsilon must be a decimal string in (0, 100] with at most three "
            "decimals, e.g. \"10\"");
    }
    p.min_patients = static_cast<int>(k);
    p.budget_days = static_cast<int>(days);
    p.budget_milli = *milli;
    return Ok{};
}

Status read_watch(const toml::table& t, const std::filesystem::path& base, DecryptorConfig& c) {
    std::vector<Status> r;
    r.push_back(check_toml_keys(t,
                                {"database", "granularity", "poll_interval_s", "page_size",
                                 "verify_sample_rate", "threads", "long_poll"},
                                "[watch]"));
    r.push_back(read_toml(t, "database", c.database, "watch"));
    r.push_back(read_toml(t, "granularity", c.granularity, "watch"));
    r.push_back(read_seconds_ms(t, "poll_interval_s", c.poll_interval_ms, "watch", 0.05, 3600));
    std::int64_t page = c.page_size;
    r.push_back(read_toml(t, "page_size", page, "watch"));
    r.push_back(read_toml(t, "verify_sample_rate", c.verify_sample_rate, "watch"));
    std::int64_t threads = c.threads;
    r.push_back(read_toml(t, "threads", threads, "watch"));
    r.push_back(read_toml(t, "long_poll", c.long_poll, "watch"));
    if (auto s = first_error(r); !s) {
        return s;
    }
    if (page < 1 || page > 1000) {
        return config_error("watch.page_size must be within 1..1000");
    }
    if (threads < 0 || threads > 64) {
        return config_error("watch.threads must be within 0..64 (0: one per core)");
    }
    c.threads = static_cast<int>(threads);
    if (!(c.verify_sample_rate >= 0 && c.verify_sample_rate <= 1)) {
        return config_error("watch.verify_sample_rate must be within 0..1");
    }
    if (c.granularity.empty()) {
        return config_error("watch.granularity must not be empty");
    }
    c.page_size = static_cast<int>(page);
    c.database = common::resolve_config_path(base, c.database);
    return Ok{};
}

Status read_email(const toml::table& t, const std::filesystem::path& base, DecryptorConfig& c) {
    std::vector<Status> r;
    r.push_back(
        check_toml_keys(t,
                        {"enabled", "url", "tls", "username", "password_file", "password_env",
                         "ca_file", "from", "to", "connect_timeout_s", "timeout_s"},
                        "[notify.email]"));
    SmtpConfig& e = c.email;
    std::string password_file, password_env;
    std::int64_t connect = e.connect_timeout_s, total = e.timeout_s;
    r.push_back(read_toml(t, "enabled", c.email_enabled, "notify.email"));
    r.push_back(read_toml(t, "url", e.url, "notify.email"));
    r.push_back(read_toml(t, "tls", e.tls, "notify.email"));
    r.push_back(read_toml(t, "username", e.username, "notify.email"));
    r.push_back(read_toml(t, "password_file", password_file, "notify.email"));
    r.push_back(read_toml(t, "password_env", password_env, "notify.email"));
    r.push_back(read_toml(t, "ca_file", e.ca_file, "notify.email"));
    r.push_back(read_toml(t, "from", e.from, "notify.email"));
    r.push_back(read_strings(t, "to", e.to, "notify.email"));
    r.push_back(read_toml(t, "connect_timeout_s", connect, "notify.email"));
    r.push_back(read_toml(t, "timeout_s", total, "notify.email"));
    if (auto s = first_error(r); !s) {
        return s;
    }
    if (e.tls != "starttls" && e.tls != "implicit" && e.tls != "none") {
        return config_error("notify.email.tls must be starttls, implicit or none");
    }
    if (connect < 1 || connect > 300 || total < 1 || total > 600) {
        return config_error("notify.email timeouts must be within 1..300 and 1..600 s");
    }
    e.connect_timeout_s = static_cast<int>(connect);
    e.timeout_s = static_cast<int>(total);
    e.ca_file = common::resolve_config_path(base, e.ca_file);
    if (c.email_enabled) {
        if (e.url.empty() || e.from.empty() || e.to.empty()) {
            return config_error("notify.email needs url, from and to when enabled");
        }
        auto password = read_secret(common::resolve_config_path(base, password_file), password_env,
                                    "notify.email password");
        if (!password) {
            return password.error();
        }
        e.password = std::move(password).value();
        if (!e.password.empty() && e.username.empty()) {
            return config_error("notify.email has a password but no username");
        }
    }
    return Ok{};
}

Status read_sms(const toml::table& t, const std::filesystem::path& base, DecryptorConfig& c) {
    std::vector<Status> r;
    r.push_back(check_toml_keys(t,
                                {"enabled", "url", "headers", "token_file", "token_env", "ca_file",
                                 "to", "connect_timeout_s", "timeout_s"},
                                "[notify.sms]"));
    WebhookConfig& w = c.sms;
    std::string token_file, token_env;
    std::int64_t connect = w.connect_timeout_s, total = w.timeout_s;
    r.push_back(read_toml(t, "enabled", c.sms_enabled, "notify.sms"));
    r.push_back(read_toml(t, "url", w.url, "notify.sms"));
    r.push_back(read_toml(t, "token_file", token_file, "notify.sms"));
    r.push_back(read_toml(t, "token_env", token_env, "notify.sms"));
    r.push_back(read_toml(t, "ca_file", w.ca_file, "notify.sms"));
    r.push_back(read_strings(t, "to", w.to, "notify.sms"));
    r.push_back(read_toml(t, "connect_timeout_s", connect, "notify.sms"));
    r.push_back(read_toml(t, "timeout_s", total, "notify.sms"));
    if (auto s = first_error(r); !s) {
        return s;
    }
    if (const toml::node* h = t.get("headers")) {
        const auto* table = h->as_table();
        if (table == nullptr) {
            return config_error("notify.sms.headers must be a table of strings");
        }
        for (const auto& [name, value] : *table) {
            auto text = value.value<std::string>();
            if (!text || name.str().empty() ||
                name.str().find_first_of(" :\r\n") != std::string_view::npos ||
                text->find_first_of("\r\n") != std::string::npos) {
                return config_error("notify.sms.headers." + std::string(name.str()) +
                                    " must be a single-line string");
            }
            w.headers.emplace_back(std::string(name.str()), *text);
        }
    }
    if (connect < 1 || connect > 300 || total < 1 || total > 600) {
        return config_error("notify.sms timeouts must be within 1..300 and 1..600 s");
    }
    w.connect_timeout_s = static_cast<int>(connect);
    w.timeout_s = static_cast<int>(total);
    w.ca_file = common::resolve_config_path(base, w.ca_file);
    if (c.sms_enabled) {
        if (w.url.empty()) {
            return config_error("notify.sms needs url when enabled");
        }
        auto token = read_secret(common::resolve_config_path(base, token_file), token_env,
                                 "notify.sms token");
        if (!token) {
            return token.error();
        }
        w.bearer_token = std::move(token).value();
    }
    return Ok{};
}

Status read_notify(const toml::table& t, const std::filesystem::path& base, DecryptorConfig& c) {
    std::vector<Status> r;
    r.push_back(check_toml_keys(
        t, {"retry_max_attempts", "retry_initial_backoff_s", "retry_max_backoff_s", "email", "sms"},
        "[notify]"));
    std::int64_t attempts = c.retry.max_attempts;
    double initial = static_cast<double>(c.retry.initial_backoff_ms) / 1000;
    double maximum = static_cast<double>(c.retry.max_backoff_ms) / 1000;
    r.push_back(read_toml(t, "retry_max_attempts", attempts, "notify"));
    r.push_back(read_toml(t, "retry_initial_backoff_s", initial, "notify"));
    r.push_back(read_toml(t, "retry_max_backoff_s", maximum, "notify"));
    if (auto s = first_error(r); !s) {
        return s;
    }
    if (attempts < 1 || attempts > 100 || !(initial > 0 && initial <= 3600) ||
        !(maximum >= initial && maximum <= 86400)) {
        return config_error("notify retry values are out of range");
    }
    c.retry.max_attempts = static_cast<int>(attempts);
    c.retry.initial_backoff_ms = std::llround(initial * 1000);
    c.retry.max_backoff_ms = std::llround(maximum * 1000);
    if (const toml::node* e = t.get("email")) {
        if (!e->is_table()) {
            return config_error("notify.email must be a table");
        }
        if (auto s = read_email(*e->as_table(), base, c); !s) {
            return s;
        }
    }
    if (const toml::node* s = t.get("sms")) {
        if (!s->is_table()) {
            return config_error("notify.sms must be a table");
        }
        if (auto st = read_sms(*s->as_table(), base, c); !st) {
            return st;
        }
    }
    return Ok{};
}

}  // namespace

Result<DecryptorConfig> load_decryptor_config(const std::filesystem::path& path) {
    auto parsed = common::parse_toml_file(path);
    if (!parsed) {
        return parsed.error();
    }
    const toml::table& doc = parsed.value();
    const std::filesystem::path base = path.parent_path();
    DecryptorConfig c;
    if (auto s = check_toml_keys(doc,
                                 {"key", "server", "watch", "notify", "scoring", "cohort", "rules",
                                  "patients", "logging"},
                                 "the file");
        !s) {
        return s.error();
    }
    auto section = [&](const char* name,
                       Status (*reader)(const toml::table&, const std::filesystem::path&,
                                        DecryptorConfig&)) -> Status {
        const toml::node* node = doc.get(name);
        if (node == nullptr) {
            return Ok{};
        }
        if (!node->is_table()) {
            return config_error(std::string(name) + " must be a table");
        }
        return reader(*node->as_table(), base, c);
    };
    for (auto [name, reader] : std::initializer_list<
             std::pair<const char*, Status (*)(const toml::table&, const std::filesystem::path&,
                                               DecryptorConfig&)>>{{"key", read_key},
                                                                   {"server", read_server},
                                                                   {"watch", read_watch},
                                                                   {"notify", read_notify},
                                                                   {"scoring", read_scoring},
                                                                   {"cohort", read_cohort}}) {
        if (auto s = section(name, reader); !s) {
            return s.error();
        }
    }
    c.scoring_key = common::resolve_config_path(base, c.scoring_key);
    c.cohort.identity_key = common::resolve_config_path(base, c.cohort.identity_key);
    if (const toml::node* node = doc.get("logging")) {
        const auto* t = node->as_table();
        if (t == nullptr) {
            return config_error("logging must be a table");
        }
        if (auto s = check_toml_keys(*t, {"level"}, "[logging]"); !s) {
            return s.error();
        }
        if (auto s = read_toml(*t, "level", c.log_level, "logging"); !s) {
            return s.error();
        }
    }
    auto alerting = read_alerting_config(doc);
    if (!alerting) {
        return alerting.error();
    }
    c.alerting = std::move(alerting).value();
    return c;
}

}  // namespace cipherpulse::decryptor
