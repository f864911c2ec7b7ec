// Reading the alert rules from the decryptor's TOML configuration. Included only by the
// configuration loader (it pulls in toml++).
#pragma once

#include <toml++/toml.h>

#include "cipherpulse/result.h"
#include "decryptor/rules.h"

namespace cipherpulse::decryptor {

// read_alerting_config reads the [rules.<rule>] tables (overriding the built-in defaults)
// and the [patients.<id>] tables (`alias`, and [patients.<id>.rules.<rule>] overriding the
// defaults for that patient) of `root`; other top-level tables are ignored. Unknown rules,
// unknown keys, wrong types and out-of-range values fail (common::config_error) naming the
// key, e.g. "rules.tachycardia.sustained: must be >= 1". Keys are the field names of the rule
// structs in rules.h; the `_ms` fields drop the suffix and take a duration string:
// cooldown, expected_sample_interval, silent_after. A duration is one or more groups of a
// whole number and a unit, ms, s, m, h or d ("90s", "15m", "1h30m", "1d"); a bare number
// is refused, since "15" could mean seconds or minutes. Patient overrides apply on top of
// the [rules.*] defaults whatever the order of the tables in the file. Never throws.
Result<AlertingConfig> read_alerting_config(const toml::table& root);

}  // namespace cipherpulse::decryptor
