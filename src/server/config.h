// Server configuration, read from TOML (config/server.toml documents every key).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cipherpulse/result.h"

namespace cipherpulse::server {

// Granularity of a rollup window: a name ("1m") and its length.
struct Granularity {
    std::string name;
    std::int64_t length_ms = 0;
    std::int64_t seal_grace_ms = 0;  // a window seals at start + length + grace
    std::int64_t min_records = 1;    // fewer records: withheld from the decryptor
};

// parse_granularity reads "<number><unit>" with unit s, m, h or d ("30s", "1m", "1h", "1d").
// The length must divide a day evenly so windows align across days. Grace and min_records
// keep their defaults.
Result<Granularity> parse_granularity(const std::string& text);

struct ServerConfig {
    // [server]
    std::string listen_host = "127.0.0.1";
    int listen_port = 8443;
    std::string tls_cert;   // PEM file; empty = plain HTTP
    std::string tls_key;    // PEM file (0600)
    bool insecure = false;  // allow plain HTTP on a non-loopback address
    int threads = 32;       // each keep-alive connection holds one while open
    std::size_t max_body_bytes = 4u << 20;
    std::size_t max_records_per_batch = 1000;
    std::size_t request_queue = 64;      // requests waiting for the writer; beyond: 503
    double device_rate_per_second = 20;  // uploads per device; beyond: 429
    int read_timeout_s = 10;
    int write_timeout_s = 10;
    // [storage]
    std::string database = "cipherpulse-server.db";
    std::string synchronous = "NORMAL";
    int retention_days = 30;
    // [ingest]
    std::int64_t max_clock_skew_s = 300;  // signature `created` and record times
    std::int64_t max_record_age_s = 7 * 86400;
    // Records under a key retired by a newer one are accepted this long after the rotation.
    std::int64_t key_rotation_grace_s = 86400;
    std::vector<Granularity> granularities;
    // [keys]
    std::string identity_public_key;  // decryptor identity (PEM): key documents must verify
    // [scoring]
    std::int64_t scoring_rows_per_day = 10000;     // per token and UTC day; beyond: 429
    std::size_t scoring_max_rows_per_request = 10000;
    std::size_t scoring_key_cache = 8;              // requesters' keys kept with a warm pool
    std::size_t scoring_pool_size = 256;            // rerandomizers kept ready per key
    // [cohort]
    std::int64_t cohort_record_seconds = 5;  // the edges' micro-window: caps records per patient
    std::int64_t cohort_max_range_days = 92;
    std::size_t cohort_max_patients = 10000;
    // [logging]
    std::string log_level = "info";

    // defaults returns the configuration used without a file: 1m, 1h and 1d windows.
    static ServerConfig defaults();
};

// load_server_config reads and validates a TOML file on top of the defaults. Unknown keys
// are errors (a typo must not silently fall back to a default). Relative paths in the
// file are resolved against the file's directory.
Result<ServerConfig> load_server_config(const std::filesystem::path& path);

}  // namespace cipherpulse::server
