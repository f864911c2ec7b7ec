// Times as people read and type them (UTC only, so a report means the same everywhere).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cipherpulse/result.h"

namespace cipherpulse::common {

// utc_text formats Unix ms as a UTC time to the minute, e.g. "2026-11-21 10:00 UTC".
std::string utc_text(std::int64_t ms);

// iso_utc formats Unix ms as an ISO 8601 UTC time to the second, e.g.
// "2026-11-21T10:00:05Z" (for ranges, where the minute is not enough).
std::string iso_utc(std::int64_t ms);

// parse_duration reads a duration such as "90s", "15m", "1h30m", "1d" or "500ms" into
// milliseconds; nullopt for anything else or beyond a year.
std::optional<std::int64_t> parse_duration(std::string_view text);

// parse_time_arg reads a time given on a command line (--from, --to): Unix milliseconds
// ("1764547200000"), an ISO 8601 UTC date or date-time ("2026-12-01", "2026-12-01T10:00",
// "2026-12-01T10:00:00", each with or without a trailing Z; other offsets are refused so
// a range never shifts silently), "now", or "-<duration>" before now_ms (e.g. "-2h").
// Refuses (kInvalidEncoding, naming the forms) anything else, an impossible date
// (2026-02-30) included.
Result<std::int64_t> parse_time_arg(std::string_view text, std::int64_t now_ms);

}  // namespace cipherpulse::common
