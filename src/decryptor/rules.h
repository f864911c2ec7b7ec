// The alert engine: rules over decrypted window statistics, with per-patient state
// (consecutive hits, hysteresis, cooldown, rolling baseline) that the caller stores durably
// in the same transaction as the window it came from.
//
// Everything here is a pure function of its inputs (configuration, state, window): no
// clock, no I/O. Time is window time (start_ms of the windows), so a replay of the same
// windows raises the same alerts. Rules are evaluated per patient on windows of one
// granularity, in the order the windows arrive.
//
// Semantics shared by every rule fed by windows (all but device_silent):
// - Each window either shows the rule's condition (a hit), does not show it (a miss), or
//   cannot be judged (neutral): a window without samples (samples == 0) is neutral for
//   tachycardia, bradycardia and baseline_deviation, and a window with fewer than `min_rr`
//   RR intervals is neutral for irregular_rhythm. A neutral window changes nothing: it
//   neither counts towards `sustained` nor clears an active alert, because "no data" is
//   not evidence that the heart rate is normal (a slipping sensor must not announce that a
//   tachycardia resolved); missing_data reports the lack of data itself.
// - A window that does not follow the previous one in time (its start is after the end of
//   the latest window seen: the device was off or nothing reached the server) restarts
//   every rule's count of consecutive hits: "sustained" means contiguous in time.
// - Not active: a hit counts; `sustained` consecutive hits raise (kRaised) unless the
//   cooldown blocks it; a miss restarts the count.
// - Cooldown: no raise while the window's start is less than `cooldown_ms` after the
//   start of the window that last raised the rule for this patient, even if the alert
//   cleared in between. A blocked rule stays not active and keeps counting hits, so it
//   raises on the first window starting at least `cooldown_ms` after that raise while the
//   condition still holds.
// - Active: no further raise (de-duplication); `clear_after` consecutive misses clear it
//   (kCleared); a hit restarts the count of misses.
// - A disabled rule forgets its state (without an event).
// - Events are emitted at the rule's configured severity, except that tachycardia and
//   bradycardia raise at kCritical when the raising window's mean is beyond their critical
//   threshold. A cleared event carries the configured severity. An active alert is not
//   raised again when it worsens (de-duplication).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cipherpulse/codec.h"
#include "cipherpulse/result.h"
#include "common/time_text.h"

namespace cipherpulse::decryptor {

enum class Severity { kInfo = 0, kWarning = 1, kCritical = 2 };

// to_string gives "info", "warning", "critical"; parse_severity the inverse.
inline std::string_view to_string(Severity severity) noexcept {
    switch (severity) {
        case Severity::kInfo:
            return "info";
        case Severity::kWarning:
            return "warning";
        case Severity::kCritical:
            return "critical";
    }
    return "warning";
}
inline std::optional<Severity> parse_severity(std::string_view text) noexcept {
    for (Severity s : {Severity::kInfo, Severity::kWarning, Severity::kCritical}) {
        if (text == to_string(s)) {
            return s;
        }
    }
    return std::nullopt;
}

// RuleCommon holds what every rule has: whether it runs, how severe its alerts are, how
// many consecutive windows the condition must hold before an alert is raised
// (`sustained`, >= 1), how many consecutive windows without it before an active alert
// clears (`clear_after`, >= 1, hysteresis), and the least window time between two raises of
// the same rule for the same patient (`cooldown_ms`, measured on window starts; 0: none).
// The defaults below are only the struct's; default_rules() sets each rule's own.
struct RuleCommon {
    bool enabled = true;
    Severity severity = Severity::kWarning;
    int sustained = 1;
    int clear_after = 2;
    std::int64_t cooldown_ms = 15 * 60'000;
};

// Rule names, as used in TOML, the database, alerts and messages.
inline constexpr std::string_view kRuleTachycardia = "tachycardia";
inline constexpr std::string_view kRuleBradycardia = "bradycardia";
inline constexpr std::string_view kRuleBaseline = "baseline_deviation";
inline constexpr std::string_view kRuleIrregular = "irregular_rhythm";
inline constexpr std::string_view kRuleMissingData = "missing_data";
inline constexpr std::string_view kRuleDeviceSilent = "device_silent";

// High heart rate: the window's mean above `mean_above_bpm`, or the share of its samples
// at or above `share_threshold_bpm` (from the histogram) at least `min_share`. A zero
// `mean_above_bpm` or `min_share` disables that half. The raise is kCritical when the
// window's mean is above `critical_mean_above_bpm` (0: never).
//
// Defaults: mean > 100 bpm or at least half the samples >= 100 bpm (i.e. the median), for
// 3 consecutive 1-minute windows; critical above 130 bpm. 100 bpm is the standard adult
// definition of tachycardia (AHA/ACC); the median half keeps a minute whose mean is pulled
// below 100 by a few slow or missed beats. Three minutes, because ordinary exertion (stairs,
// a brisk walk) drives heart rate over 100 for a minute or two. 131 bpm and above is the
// highest-risk band of the NEWS2 early warning score (Royal College of Physicians, 2017).
struct TachycardiaRule {
    RuleCommon common;
    double mean_above_bpm = 0;
    double share_threshold_bpm = 0;
    double min_share = 0;
    double critical_mean_above_bpm = 0;
};

// Low heart rate: the mean below `mean_below_bpm`, or the share of samples below
// `share_threshold_bpm` at least `min_share`. A zero `mean_below_bpm` or `min_share`
// disables that half. The raise is kCritical when the window's mean is below
// `critical_mean_below_bpm` (0: never).
//
// Defaults: mean < 50 bpm or at least half the samples < 50 bpm (the median), for 2
// consecutive 1-minute windows; critical below 40 bpm. 50 bpm is the threshold of the 2018
// ACC/AHA/HRS bradycardia guideline (the older 60 bpm flags much of normal sleep); the
// median half matters because ectopic beats pull a slow minute's mean up. Two minutes
// rather than tachycardia's three: no everyday activity drives the rate below 50, and a
// slow rate can mean a conduction block. 40 bpm and below is NEWS2's highest-risk band.
// Fit patients who sleep below 50 need a per-patient override.
struct BradycardiaRule {
    RuleCommon common;
    double mean_below_bpm = 0;
    double share_threshold_bpm = 0;
    double min_share = 0;
    double critical_mean_below_bpm = 0;
};

// Deviation from the patient's own rolling baseline: |mean - baseline mean| / baseline sd
// above `z_above`, the baseline pooled (Σx, Σx², n) over the last `history_windows`
// windows before this one, used only once it holds at least `min_history_windows`; and the
// difference at least `min_delta_bpm` (0: no such floor), so that a very steady baseline
// (a small sd) does not turn a clinically trivial change into a large z. The baseline sd is
// the sample sd of every reading in the history (within and between windows). Only windows
// with samples enter the baseline, after their own evaluation; a window without samples is
// neutral. The rule is off when `z_above` is 0.
//
// Defaults: z > 3 and a difference of at least 20 bpm, for 5 consecutive windows, over the
// last 60 windows (an hour of 1-minute windows) once 30 are there; severity info. A rise of
// 20 bpm over a patient's resting rate is a common early sign of deterioration (fever,
// bleeding, sepsis) while still below the tachycardia threshold; 3 sd keeps ordinary
// fluctuation out; five minutes separates it from a short effort.
struct BaselineRule {
    RuleCommon common;
    double z_above = 0;
    int history_windows = 0;
    int min_history_windows = 0;
    double min_delta_bpm = 0;
};

// Irregular rhythm: RMSSD / mean RR above `rmssd_ratio_above`, or the coefficient of
// variation of RR (sample sd of the RR intervals / their mean) above `cv_above` (0 disables
// either half), with at least `min_rr` RR intervals in the window (and, for the RMSSD half,
// at least `min_rr` successive differences); fewer make the window neutral. A window of a
// source without RR intervals (a bpm-only recording) is therefore always neutral.
//
// Defaults: RMSSD / mean RR > 0.15 or CV > 0.25, with at least 30 intervals, for 3
// consecutive 1-minute windows. In sinus rhythm at rest RMSSD is about 20-60 ms at RR of
// 800-1000 ms (a ratio of 0.02-0.07); in atrial fibrillation successive intervals are
// nearly independent, which gives a ratio of about sqrt(2) x CV, typically 0.2-0.35. AF
// detectors on RR series use ratios of 0.1-0.12 on clean ECG beats (Dash et al. 2009,
// McManus et al. 2013); 0.15 leaves room for the isolated premature beats a wearable does
// not remove. Frequent ectopy (bigeminy, trigeminy) is genuinely irregular and does raise
// it. Three consecutive minutes echo the repeated confirmation of wrist AF screening
// (Apple Heart Study, Perez et al. 2019).
struct IrregularRule {
    RuleCommon common;
    double rmssd_ratio_above = 0;
    double cv_above = 0;
    std::uint64_t min_rr = 0;
};

// Missing data: fewer samples than `min_sample_fraction` of what the window should hold at
// one sample per `expected_sample_interval_ms`, or contact lost for more than
// `max_contact_lost_fraction` of (samples + contact lost). A zero fraction disables that
// half. A window without samples always counts (unless the first half is disabled).
//
// Defaults: fewer than half the samples of one per second, or contact lost for more than
// half the readings, for 3 consecutive windows; severity info. Watch-like sources report
// once a second; per-beat sources about once a beat, which stays above half of one per
// second down to 30 bpm. Three minutes, so a short slip of the strap stays quiet.
struct MissingDataRule {
    RuleCommon common;
    std::int64_t expected_sample_interval_ms = 1000;
    double min_sample_fraction = 0;
    double max_contact_lost_fraction = 0;
};

// A patient's device silent: no window for longer than `silent_after_ms` (checked with
// check_silence on the caller's clock; clears on the next window that arrives, whatever
// `clear_after` says; `sustained` is not used). 0 disables it. The cooldown is measured
// on the caller's clock from the last raise.
//
// Defaults: off; when enabled, 10 minutes, severity warning, cooldown 30 minutes. Off
// because whether a gap means trouble depends on the patient (a wearable taken off for the
// night or to charge is normal at home) and because the decryptor may start far behind the
// data (catching up on old windows would find every device "silent"). When enabled, 10
// minutes rides out a phone's brief loss of network (the edge spools and resends) yet
// notices an unmonitored patient within a ward round.
struct DeviceSilentRule {
    RuleCommon common;
    std::int64_t silent_after_ms = 0;
};

// RuleSet is the full set of rules for one patient.
struct RuleSet {
    TachycardiaRule tachycardia;
    BradycardiaRule bradycardia;
    BaselineRule baseline;
    IrregularRule irregular;
    MissingDataRule missing_data;
    DeviceSilentRule device_silent;
};

// parse_duration (common/time_text.h) reads "90s", "15m", "1h30m", "1d" or "500ms".
using common::parse_duration;

// default_rules returns the built-in defaults: each rule's comment above says which and
// why (documented also in config/decryptor.toml). They suit adults monitored at rest.
RuleSet default_rules();

// PatientConfig is what the configuration says of one patient: the name clinicians see
// (`alias`, empty: the patient id) and the rules with the patient's overrides applied.
struct PatientConfig {
    std::string alias;
    RuleSet rules;
};

// AlertingConfig holds the defaults (built-in, overridden by [rules.*]) and the patients
// named in [patients.*].
struct AlertingConfig {
    RuleSet defaults = default_rules();
    std::map<std::string, PatientConfig, std::less<>> patients;

    const RuleSet& rules_for(std::string_view patient) const;
    // display_name returns the alias if one is configured, else the patient id.
    std::string display_name(std::string_view patient) const;
};

// Figure is one number that triggered (or cleared) an alert, already formatted, e.g.
// {"mean heart rate", "134.2 bpm"}.
struct Figure {
    std::string name;
    std::string value;
};

// AlertEvent is a change of an alert's state: raised, or cleared after the hysteresis.
struct AlertEvent {
    enum class Kind { kRaised, kCleared };
    Kind kind = Kind::kRaised;
    std::string patient;
    std::string rule;
    Severity severity = Severity::kWarning;
    std::int64_t window_id = 0;  // the window that completed the change (0 for silence)
    std::int64_t window_start_ms = 0;
    std::int64_t window_length_ms = 0;
    // summary is one line for a clinician, without identifiers (the notifier names the
    // patient): "<what> for <how long>: <figures>", e.g. "Tachycardia for 3 min: mean heart
    // rate 134.2 bpm, 82% of readings at or above 100 bpm" or "Tachycardia resolved for
    // 2 min: ...". How long is the number of windows times their length.
    std::string summary;
    // figures are the numbers behind it, ending with {"windows", "<count>"} for window rules.
    std::vector<Figure> figures;
};

// WindowInput is one decrypted, integrity-checked window of one patient.
struct WindowInput {
    std::int64_t window_id = 0;
    std::string patient;
    std::int64_t start_ms = 0;
    std::int64_t length_ms = 0;
    HeartRateStats stats;
};

// RuleState is the state of one rule for one patient (see the top of this file).
struct RuleState {
    int hits = 0;    // consecutive windows with the condition
    int misses = 0;  // consecutive windows without it while active
    bool active = false;
    std::optional<std::int64_t> last_raised_ms;  // window start of the last raise
    friend bool operator==(const RuleState&, const RuleState&) = default;
};

// BaselineEntry is one past window's contribution to the rolling baseline.
struct BaselineEntry {
    std::uint64_t samples = 0;
    double sum_bpm = 0;
    double sum_bpm_sq = 0;
    friend bool operator==(const BaselineEntry&, const BaselineEntry&) = default;
};

// PatientState is everything the engine remembers about one patient.
struct PatientState {
    std::map<std::string, RuleState, std::less<>> rules;
    std::deque<BaselineEntry> baseline;
    std::optional<std::int64_t> last_window_end_ms;  // end of the latest window seen
    // attention: the latest window showed signs without (yet) raising: samples beyond the
    // tachycardia or bradycardia threshold, or a rule counting windows towards a raise or
    // active. The decryptor opens such patients' next windows first in a burst.
    bool attention = false;
    friend bool operator==(const PatientState&, const PatientState&) = default;

    // to_json / from_json store the state as compact JSON text in the database:
    // {"v":1,"rules":{"<rule>":{"hits":n,"misses":n,"active":b[,"last_raised_ms":t]}},
    //  "baseline":[[samples,sum_bpm,sum_bpm_sq],...][,"last_window_end_ms":t]
    //  [,"attention":true]}.
    // from_json(to_json()) == *this exactly (doubles are written in shortest round-trip
    // form). from_json refuses (kInvalidEncoding, never throws) text that is not this shape:
    // bad JSON, another version, missing or mistyped members, negative counts, counts beyond
    // int, non-finite or negative sums, unknown members.
    std::string to_json() const;
    static Result<PatientState> from_json(std::string_view text);
};

// RuleEngine evaluates the rules. Thread-safe (const after construction).
class RuleEngine {
  public:
    explicit RuleEngine(AlertingConfig config);

    // evaluate updates `state` with window `w` (of patient w.patient) and returns the alerts
    // it raises or clears, in a stable order (rule order of RuleSet). A window older than
    // the latest one seen is still evaluated (the server seals in order; the caller's
    // ledger refuses repeats). It also clears an active device_silent alert. Never throws
    // for any window content (an untrusted aggregate may be all zeros or inconsistent).
    std::vector<AlertEvent> evaluate(const WindowInput& w, PatientState& state) const;

    // check_silence raises device_silent for `patient` when `now_ms` is more than
    // silent_after_ms past the end of its latest window (nothing if no window was ever
    // seen, the rule is disabled, or the alert is already active or in cooldown). The
    // event has window_id 0, window_start_ms the end of the latest window and
    // window_length_ms the silent span up to now_ms.
    std::vector<AlertEvent> check_silence(std::string_view patient, std::int64_t now_ms,
                                          PatientState& state) const;

    const AlertingConfig& config() const noexcept { return config_; }

  private:
    AlertingConfig config_;
};

}  // namespace cipherpulse::decryptor
