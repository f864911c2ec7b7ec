// The decryptor's commands for people and scripts: `stats`, `verify`, `alerts list|ack`.
// Each takes the configuration of `watch` (config/decryptor.toml).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include "cipherpulse/result.h"
#include "common/time_text.h"
#include "decryptor/config.h"
#include "decryptor/release.h"

namespace cipherpulse::decryptor {

// parse_time_arg (common/time_text.h) reads --from/--to: Unix ms, an ISO 8601 UTC time,
// "now" or "-2h".
using common::parse_time_arg;

struct StatsOptions {
    std::string patient;
    std::int64_t from_ms = 0;
    std::int64_t to_ms = 0;
    std::string granularity;       // empty: the configured watch granularity
    std::string format = "table";  // table | csv | json
};

// run_stats fetches the patient's sealed windows in [from, to), opens each (the same checks
// as watch, plus the ledger: a window the decryptor released before with another aggregate
// is an integrity failure), and prints per-window statistics and the total over the range:
// records, samples, mean and sd, lowest and highest histogram bin, share and minutes above /
// below the patient's tachycardia / bradycardia thresholds, mean RR, RMSSD, contact lost.
// Exit 0, 1 (server unreachable), 2 (bad input), 4 (an integrity failure; those windows are
// reported on stderr and left out).
int run_stats(const DecryptorConfig& config, const KeyRing& keys, const std::string& token,
              const StatsOptions& options, std::ostream& out, std::ostream& err);

// run_verify fetches the raw signed records of window `window_id`, checks every device
// signature (against device keys pinned on first use), recomputes the product of the
// records and compares it with the aggregate (and with what the ledger released). Prints a
// report; a failure is also queued as an integrity alert. Exit 0 verified, 1 unreachable or
// records no longer retained, 2 unknown window, 4 verification failed.
int run_verify(const DecryptorConfig& config, const KeyRing& keys, const std::string& token,
               std::int64_t window_id, std::ostream& out, std::ostream& err);

// run_alerts_list prints the alert history (newest first), optionally one patient's, only
// open (unacknowledged raised/integrity) alerts with `open_only`; format table or json.
int run_alerts_list(const DecryptorConfig& config, const std::string& patient, bool open_only,
                    int limit, const std::string& format, std::ostream& out, std::ostream& err);

// run_alerts_ack acknowledges alert `id` by `by` with an optional note.
int run_alerts_ack(const DecryptorConfig& config, std::int64_t id, const std::string& by,
                   const std::string& note, std::ostream& out, std::ostream& err);

}  // namespace cipherpulse::decryptor
