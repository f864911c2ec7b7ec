// Edge configuration, read from TOML (config/edge.toml documents every key).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "cipherpulse/result.h"
#include "edge/micro_window.h"
#include "edge/spool.h"
#include "edge/uplink.h"

namespace cipherpulse::edge {

struct EdgeConfig {
    // [device]
    std::string device_id;
    std::string device_key = "device.pem";  // Ed25519 private key (0600)
    // [trust]
    std::string identity = "decryptor-identity.pub.pem";  // pinned at enrolment
    int key_check_interval_s = 600;
    // [server]
    ServerEndpoint server;
    // [spool]
    SpoolOptions spool;
    // [upload]
    std::size_t batch_size = 100;
    int backoff_initial_ms = 1000;
    int backoff_max_ms = 300000;
    // [encryption]
    unsigned table_window_bits = 6;  // fast-mode table: 12 MB at 3072 bits (see paillier.h)
    // [windows] and [filter]
    std::int64_t micro_window_ms = 5000;
    FilterRules filter;
    // [source]
    std::string source = "sim";  // sim | replay | ble
    std::string replay_path;
    double speed = 1.0;  // 0: as fast as possible
    std::string profile = "healthy";
    std::string episodes;
    std::uint64_t seed = 1;
    double duration_s = 0;  // 0: until the source ends (sim: forever)
    // When the data starts (Unix ms; `run --start-ms`); unset: now in real time, or placed
    // in the past when accelerated (see make_source). Makes a run reproducible.
    std::optional<std::int64_t> start_ms;
    std::string ble_address;  // ble: only this device address (empty: any)
    std::string ble_name;     // ble: only a device whose name contains this
    // [logging]
    std::string log_level = "info";
};

// load_edge_config reads and validates a TOML file; unknown keys are errors; relative paths
// resolve against the file's directory.
Result<EdgeConfig> load_edge_config(const std::filesystem::path& path);

// edge_config_text renders a commented configuration for `init`.
std::string edge_config_text(const EdgeConfig& config);

}  // namespace cipherpulse::edge
