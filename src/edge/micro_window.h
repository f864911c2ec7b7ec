// Micro-windows: readings accumulate into fixed, epoch-aligned windows (default 5 s), and
// every window yields exactly one record, also when no valid sample arrived, so the server
// cannot read vitals from timing or counts.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "cipherpulse/codec.h"
#include "edge/reading.h"

namespace cipherpulse::edge {

// FilterRules are the plausibility rules applied before anything is counted (documented
// in config/edge.toml).
struct FilterRules {
    double min_bpm = 20;  // heart rate outside [min_bpm, max_bpm] is discarded
    double max_bpm = 250;
    std::uint32_t min_rr_ms = 240;  // RR outside [min_rr_ms, max_rr_ms] is an artefact
    std::uint32_t max_rr_ms = 3000;
    // An RR whose ratio to the last accepted one (larger over smaller) exceeds
    // 1 + max_rr_change is an artefact (a missed or an extra beat gives about 2) and restarts
    // the succession. Generous on purpose: atrial fibrillation changes RR by tens of percent
    // and must stay visible.
    double max_rr_change = 0.8;
};

// WindowRecord is one micro-window's statistics, ready to pack.
struct WindowRecord {
    std::int64_t start_ms = 0;
    HeartRateStats stats;
};

// FilterCounters count what the rules discarded (for status and logs; never sent).
struct FilterCounters {
    std::uint64_t implausible_bpm = 0;
    std::uint64_t rr_artefacts = 0;
    std::uint64_t over_capacity = 0;  // beyond the codec's 63 samples or RR per record
    std::uint64_t out_of_order = 0;   // readings older than the current window
};

// MicroWindows turns a time-ordered stream of readings into one WindowRecord per window.
// Not thread-safe.
class MicroWindows {
  public:
    // Throws std::invalid_argument for a window under 1 s or over 15 s (63 samples must
    // hold a window's beats).
    MicroWindows(std::int64_t window_ms, FilterRules rules);

    // add feeds one reading; returns the records of every window that ended before it
    // (including empty ones for gaps).
    std::vector<WindowRecord> add(const Reading& reading);
    // flush_until closes every window ending at or before `now_ms` (call it on a clock tick
    // so windows without readings are still emitted on time).
    std::vector<WindowRecord> flush_until(std::int64_t now_ms);

    const FilterCounters& counters() const { return counters_; }
    std::int64_t window_ms() const { return window_ms_; }

  private:
    void start_at(std::int64_t start_ms);
    std::vector<WindowRecord> close_until(std::int64_t t_ms);

    std::int64_t window_ms_;
    FilterRules rules_;
    std::optional<std::int64_t> current_start_;
    HeartRateRecordBuilder builder_;
    std::optional<std::uint32_t> last_rr_;
    FilterCounters counters_;
};

}  // namespace cipherpulse::edge
