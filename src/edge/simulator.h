// Simulated heart for `cipherpulse-edge run --source sim`: a seeded, deterministic source of
// plausible heart rate and RR intervals for a patient profile, with scriptable episodes
// (tachycardia, bradycardia, AF-like irregular rhythm, contact loss, dropouts) so that the
// alert paths can be exercised on purpose.
//
// The simulator only produces timestamps; it never sleeps. Pacing (real time, or N times
// faster) is the caller's job.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "cipherpulse/result.h"
#include "edge/reading.h"

namespace cipherpulse::edge {

// PatientProfile describes a simulated patient's normal rhythm.
//
// The rate at rest is `resting_bpm` plus a circadian sinusoid (peak at 16:00, trough at
// 04:00 local time), plus a slow random drift. Activity bursts arrive as a Poisson process
// while the patient is awake (07:00 to 23:00 local time), ramp up over a minute, hold, and
// recover over a few minutes. Beat-to-beat variability is respiratory sinus arrhythmia
// (15 breaths per minute) plus correlated noise; it shrinks as the rate rises.
struct PatientProfile {
    double resting_bpm = 65;                // 24-hour mean of the resting rate
    double circadian_amplitude_bpm = 6;     // peak late afternoon, trough ~04:00
    double activity_bursts_per_hour = 1.5;  // per waking hour; 0 disables activity
    double activity_extra_bpm = 35;         // extra rate of the strongest burst
    double activity_mean_duration_s = 300;  // mean length of a burst (exponential)
    double hrv_sd_ms = 35;                  // beat-to-beat RR standard deviation at rest
    double drift_sd_bpm = 2;                // slow wander of the rate (about 1 min scale)
    int utc_offset_minutes = 0;             // the patient's local time is UTC plus this

    bool operator==(const PatientProfile&) const = default;
};

// patient_profile_names lists the presets `patient_profile` knows: "healthy", "athlete",
// "elderly".
std::span<const std::string_view> patient_profile_names();

// patient_profile returns the preset called `name`, or kUnsupported naming the presets.
[[nodiscard]] Result<PatientProfile> patient_profile(std::string_view name);

// validate_profile checks that every field is finite and plausible (e.g. the circadian
// swing keeps the resting rate inside 30-220 bpm). Fails with kOutOfRange naming the field.
[[nodiscard]] Status validate_profile(const PatientProfile& profile);

// Episode is a scripted event. `start_ms` is an offset from the simulation start.
//
// Rhythm episodes (tachycardia, bradycardia, irregular) blend into and out of the normal
// rhythm over the first and last 30 s of their span (a third of it if shorter), so the
// abnormal rhythm is fully present only inside. `target_bpm` is the rate they hold; 0 means
// the default (tachycardia 150, bradycardia 40, irregular: keep the underlying rate).
// Irregular is AF-like: independent RR intervals with a coefficient of variation of about
// 0.22 and no pattern.
//
// Sensor episodes start and end abruptly and leave the heart itself alone. During contact
// loss the source emits a reading with `contact = false` and neither bpm nor RR every
// second; during a dropout it emits nothing. An RR interval that overlaps either kind is
// never reported.
//
// Rhythm episodes must not overlap each other, nor sensor episodes each other; a sensor
// episode may overlap a rhythm episode (contact lost during tachycardia).
struct Episode {
    enum class Kind { kTachycardia, kBradycardia, kIrregular, kContactLoss, kDropout };
    Kind kind = Kind::kTachycardia;
    std::int64_t start_ms = 0;
    std::int64_t duration_ms = 0;
    double target_bpm = 0;  // for tachycardia, bradycardia, and optionally irregular

    bool operator==(const Episode&) const = default;
};

// episode_kind_name returns the script name of `kind`, e.g. "contact-loss".
const char* episode_kind_name(Episode::Kind kind);

// parse_episodes reads a comma-separated episode script such as
//   "tachycardia@10m+5m:150, bradycardia@30m+10m:42, irregular@1h+20m,
//    contact-loss@2h+1m, dropout@3h+30s"
// Each item is `kind@offset+duration[:target_bpm]`; offset and duration are one or more
// `<number><unit>` groups with units s, m, h (e.g. "90s", "1.5m", "1h30m"). Blank input is
// no episodes. Returns the episodes in script order, or an error naming the item and what
// was wrong with it (syntax: kInvalidEncoding; unknown kind: kUnsupported; values and
// overlaps: kOutOfRange). Never throws.
[[nodiscard]] Result<std::vector<Episode>> parse_episodes(std::string_view script);

// validate_episodes checks offsets (>= 0), durations (> 0), targets (tachycardia 100-220,
// bradycardia 30-60, irregular 0 or 30-220, none for sensor episodes) and overlaps.
[[nodiscard]] Status validate_episodes(std::span<const Episode> episodes);

// SampleMode chooses what one reading is.
enum class SampleMode {
    // One reading per observed beat at the beat's time: rr_ms = {rr}, bpm = 60000 / rr.
    // The first reading is the first beat at or after the start.
    kBeat,
    // Watch-like: one reading per second at start + k * 1000 (k >= 1, up to and including
    // the end), carrying the RR intervals that ended in the second before it and, as bpm,
    // 60000 / (mean RR that ended in the last 5 s) — no bpm if none did. A reading belongs
    // to a sensor episode if the middle of its second does.
    kWatch,
};

// Simulator is a deterministic simulated heart: the same profile, episodes, seed, span and
// mode give the identical sequence on every platform with IEEE-754 doubles (it uses
// std::mt19937_64 and its own distributions; only libm's last-ulp differences in exp, log,
// sin and cos could ever tell two builds apart). Both sample modes observe the same heart,
// so a seed's RR intervals are the same in either mode.
//
// Readings have strictly increasing timestamps inside [start_ms, end_ms) (kWatch: up to
// end_ms inclusive); bpm stays within 30-220. Not thread-safe; movable, not copyable.
class Simulator final : public Source {
  public:
    // kNoEnd as end_ms makes an endless source.
    static constexpr std::int64_t kNoEnd = std::numeric_limits<std::int64_t>::max();

    // Simulator simulates from `start_ms` (Unix ms) to `end_ms` (exclusive); episode
    // offsets count from `start_ms`.
    // @throws std::invalid_argument if the profile or episodes fail validation or
    //         end_ms <= start_ms (configuration errors; validate untrusted input first).
    Simulator(const PatientProfile& profile, std::vector<Episode> episodes, std::uint64_t seed,
              std::int64_t start_ms, std::int64_t end_ms, SampleMode mode = SampleMode::kBeat);

    // for_duration is the constructor with end_ms = start_ms + duration_ms.
    // @throws std::invalid_argument as the constructor, or if duration_ms <= 0.
    static Simulator for_duration(const PatientProfile& profile, std::vector<Episode> episodes,
                                  std::uint64_t seed, std::int64_t start_ms,
                                  std::int64_t duration_ms, SampleMode mode = SampleMode::kBeat);

    Simulator(Simulator&&) noexcept;
    Simulator& operator=(Simulator&&) noexcept;
    ~Simulator() override;

    // next returns the next reading, or nullopt once the span is over (and ever after).
    std::optional<Reading> next() override;

  private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace cipherpulse::edge
