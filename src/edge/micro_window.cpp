#include "edge/micro_window.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace cipherpulse::edge {

namespace {

std::int64_t align(std::int64_t t_ms, std::int64_t window_ms) {
    return t_ms - ((t_ms % window_ms) + window_ms) % window_ms;
}

}  // namespace

MicroWindows::MicroWindows(std::int64_t window_ms, FilterRules rules)
    : window_ms_(window_ms), rules_(rules) {
    if (window_ms < 1000 || window_ms > 15000) {
        throw std::invalid_argument("micro-window must be between 1 and 15 seconds");
    }
}

void MicroWindows::start_at(std::int64_t start_ms) {
    current_start_ = start_ms;
}

std::vector<WindowRecord> MicroWindows::close_until(std::int64_t t_ms) {
    std::vector<WindowRecord> out;
    if (!current_start_) {
        return out;
    }
    while (*current_start_ + window_ms_ <= t_ms) {
        out.push_back(WindowRecord{*current_start_, builder_.finish()});
        *current_start_ += window_ms_;
        if (out.size() > 1) {
            // A whole window without readings: the RR chain cannot continue across it.
            builder_.reset_rr_chain();
            last_rr_.reset();
        }
    }
    return out;
}

std::vector<WindowRecord> MicroWindows::flush_until(std::int64_t now_ms) {
    if (!current_start_) {
        start_at(align(now_ms, window_ms_));
        return {};
    }
    return close_until(now_ms);
}

std::vector<WindowRecord> MicroWindows::add(const Reading& reading) {
    if (!current_start_) {
        start_at(align(reading.t_ms, window_ms_));
    }
    if (reading.t_ms < *current_start_) {
        ++counters_.out_of_order;
        return {};
    }
    std::vector<WindowRecord> out = close_until(reading.t_ms);
    if (!reading.contact) {
        if (!builder_.add_contact_lost().ok()) {
            ++counters_.over_capacity;
        }
        return out;
    }
    if (reading.bpm) {
        double bpm = *reading.bpm;
        if (!std::isfinite(bpm) || bpm < rules_.min_bpm || bpm > rules_.max_bpm) {
            ++counters_.implausible_bpm;
        } else if (!builder_.add_sample(bpm).ok()) {
            ++counters_.over_capacity;
        }
    }
    for (std::uint32_t rr : reading.rr_ms) {
        bool plausible = rr >= rules_.min_rr_ms && rr <= rules_.max_rr_ms;
        bool steady = true;
        if (last_rr_) {
            double a = static_cast<double>(rr), b = static_cast<double>(*last_rr_);
            steady = std::max(a, b) / std::min(a, b) <= 1.0 + rules_.max_rr_change;
        }
        if (!plausible || !steady) {
            ++counters_.rr_artefacts;
            // An artefact breaks the succession: the next interval starts a new one and is
            // accepted on its own (so a true change of rhythm is not rejected for ever).
            builder_.reset_rr_chain();
            last_rr_.reset();
            continue;
        }
        if (!builder_.add_rr(rr).ok()) {
            ++counters_.over_capacity;
            continue;
        }
        last_rr_ = rr;
    }
    return out;
}

}  // namespace cipherpulse::edge
