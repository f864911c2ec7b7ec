// EdgeRunner: the `cipherpulse-edge run` service — source to micro-windows to packed,
// encrypted records in the spool, and the spool drained to the server.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "edge/config.h"
#include "edge/reading.h"

namespace cipherpulse::edge {

// RunStats summarise a run (also logged as progress while it runs).
struct RunStats {
    std::uint64_t readings = 0;
    std::uint64_t records_spooled = 0;
    std::uint64_t records_acknowledged = 0;
    std::uint64_t records_dead_lettered = 0;
    std::uint64_t late_records = 0;
    std::uint64_t upload_failures = 0;
    FilterCounters filtered;
};

// Exit codes of `run` beyond the common ones.
inline constexpr int kExitKeyRefused = 3;  // the server's encryption key is not trusted

// run_edge runs until `stop` is set or the source ends; then it closes the last complete
// micro-window, tries for up to `drain_ms` to empty the spool, and returns. Before encrypting
// anything it fetches the active key and verifies it against the pinned identity; an
// unverifiable key makes it return kExitKeyRefused with nothing sent. Readings are paced by
// their timestamps divided by config.speed (0: no pacing).
int run_edge(const EdgeConfig& config, Source& source, std::atomic<bool>& stop,
             RunStats* stats = nullptr, std::int64_t drain_ms = 5000);

// make_source builds the configured source. In real time (speed 1) data starts at `now_ms`.
// Faster (speed > 1, or 0: unpaced) the data would run ahead of the clock and the server
// would refuse records from the future, so the data is placed in the past instead: it
// starts at data_start_ms(now_ms, length, speed) and its last reading falls when it is
// sent. That needs the data's length: a sim needs a duration; a recording is measured.
// config.start_ms, when set, is the start instead (the caller keeps it in the past).
Result<std::unique_ptr<Source>> make_source(const EdgeConfig& config, std::int64_t now_ms);

// data_start_ms is where data of `length_ms` starts when paced at `speed` (0: unpaced) so
// that no reading is ever ahead of the wall clock: now - length * (1 - 1/speed).
std::int64_t data_start_ms(std::int64_t now_ms, std::int64_t length_ms, double speed);

}  // namespace cipherpulse::edge
