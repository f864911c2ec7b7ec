// Reading: what every edge source (simulator, replay, BLE) produces, and the Source
// interface they implement.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace cipherpulse::edge {

// Reading is one observation from a heart-rate source.
struct Reading {
    // t_ms is the time of the observation in Unix milliseconds (UTC).
    std::int64_t t_ms = 0;
    // bpm is the heart rate the source reported, if it reported one.
    std::optional<double> bpm;
    // rr_ms holds the RR intervals (milliseconds) that ended at this reading, oldest first.
    std::vector<std::uint32_t> rr_ms;
    // contact is false when the sensor reported that it lost skin contact.
    bool contact = true;
};

// Source yields readings in time order. Implementations are not thread-safe: one consumer
// calls next().
class Source {
  public:
    virtual ~Source() = default;
    // next returns the next reading in time order, or nullopt at the end.
    virtual std::optional<Reading> next() = 0;
    // interrupt makes a blocked next() return nullopt soon (from any thread). Sources whose
    // next() never blocks need not override it.
    virtual void interrupt() {}
};

}  // namespace cipherpulse::edge
