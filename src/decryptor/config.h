// Decryptor configuration, read from TOML (config/decryptor.toml documents every key).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cipherpulse/result.h"
#include "common/cli.h"
#include "decryptor/notify.h"
#include "decryptor/rules.h"

namespace cipherpulse::decryptor {

// CohortPolicy is the release policy of cohort queries ([cohort] in decryptor.toml).
struct CohortPolicy {
    std::string identity_key = "keys/identity.pem";  // Ed25519 (keygen), signs the releases
    int min_patients = 10;                           // k, never below kMinPatientsFloor
    std::uint32_t budget_milli = 10'000;             // epsilon per analyst per budget window
    int budget_days = 30;
    bool allow_without_noise = false;  // exact releases (epsilon null) are refused unless set
};
// kMinPatientsFloor is the least k a configuration may set.
inline constexpr int kMinPatientsFloor = 5;

struct DecryptorConfig {
    // [key]: the private key file (0600) and older keys still needed for windows sealed
    // under them; a sealed key's passphrase comes from passphrase_file or passphrase_env.
    std::string private_key = "keys/paillier.key";
    std::vector<std::string> previous_keys;
    common::PassphraseSource passphrase;
    // [server]
    std::string server_url = "https://127.0.0.1:8443";
    std::string ca_file;
    std::string token_file = "decryptor.token";  // decryptor role, mode 0600
    std::string token_env;                       // alternative to token_file
    int timeout_s = 30;
    // [watch]
    std::string database = "decryptor.db";
    std::string granularity = "1m";
    int poll_interval_ms = 5000;
    int page_size = 1000;
    double verify_sample_rate = 0.05;  // share of windows re-verified against raw records
    int threads = 0;                   // decryption threads; 0: one per core
    bool long_poll = true;             // wait at the server for the next seal (wait_ms)
    // [notify]
    RetryPolicy retry;
    bool email_enabled = false;
    SmtpConfig email;
    bool sms_enabled = false;
    WebhookConfig sms;
    // [scoring]: the hospital's own Paillier key for risk scoring (never the data key, so a
    // server answer can never make this process decrypt a patient's window), made on first use.
    std::string scoring_key = "keys/scoring.key";
    std::size_t scoring_key_bits = 2048;
    std::size_t scoring_batch_rows = 1000;  // rows per request; more are sent in several
    // [cohort]: analysts' cohort queries
    CohortPolicy cohort;
    // [rules.*], [patients.*]
    AlertingConfig alerting;
    // [logging]
    std::string log_level = "info";
};

// load_decryptor_config reads and validates a TOML file: unknown sections and keys are
// errors, relative paths resolve against the file's directory, and the secrets it names
// (SMTP password, webhook token) are read now from their files or environment variables —
// never from the TOML text itself.
Result<DecryptorConfig> load_decryptor_config(const std::filesystem::path& path);

}  // namespace cipherpulse::decryptor
