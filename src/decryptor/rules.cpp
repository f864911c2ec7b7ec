#include "decryptor/rules.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/config_file.h"
#include "common/time_text.h"
#include "decryptor/rules_toml.h"

namespace cipherpulse::decryptor {

namespace {

// Counts saturate here: a rule that holds for years must not overflow its int.
constexpr int kMaxCount = 1'000'000'000;

using common::utc_text;

// ---------------------------------------------------------------------------------------
// Formatting for summaries and figures.

std::string fixed(double value, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
    return buf;
}

std::string bpm_text(double bpm) {
    return fixed(bpm, 1) + " bpm";
}

// threshold_text writes a configured threshold without a needless ".0" (100 -> "100").
std::string threshold_text(double value) {
    return value == std::floor(value) ? fixed(value, 0) : fixed(value, 1);
}

std::string percent_text(double share) {
    return fixed(share * 100.0, 0) + "%";
}

std::string duration_text(std::int64_t ms) {
    if (ms < 60'000) {
        return std::to_string((ms + 500) / 1000) + " s";
    }
    const std::int64_t minutes = (ms + 30'000) / 60'000;
    if (minutes < 120) {
        return std::to_string(minutes) + " min";
    }
    const std::int64_t hours = minutes / 60, rest = minutes % 60;
    return std::to_string(hours) + " h" + (rest != 0 ? " " + std::to_string(rest) + " min" : "");
}

double to_double(SlotValue value) {
    return static_cast<double>(value);
}

// ---------------------------------------------------------------------------------------
// Findings: what one rule sees in one window.

// Finding is a rule's judgement of a window it could judge. An event's summary is
// "<raise or clear title> for <how long>: <detail>".
struct Finding {
    bool holds = false;
    bool critical = false;
    std::string raise;
    std::string clear;
    std::string detail;
    std::vector<Figure> figures;
};

std::optional<Finding> tachycardia_finding(const TachycardiaRule& rule, const HeartRateStats& s) {
    const auto mean = s.mean_bpm();
    if (!mean || !std::isfinite(*mean)) {
        return std::nullopt;
    }
    Finding f;
    f.figures.push_back({"mean heart rate", bpm_text(*mean)});
    std::string detail = "mean heart rate " + bpm_text(*mean);
    bool share_hit = false;
    if (rule.min_share > 0) {
        if (auto share = s.share_at_or_above(rule.share_threshold_bpm)) {
            const std::string th = threshold_text(rule.share_threshold_bpm);
            share_hit = *share >= rule.min_share;
            f.figures.push_back({"share of samples >= " + th + " bpm", percent_text(*share)});
            detail += ", " + percent_text(*share) + " of readings at or above " + th + " bpm";
        }
    }
    const bool mean_hit = rule.mean_above_bpm > 0 && *mean > rule.mean_above_bpm;
    f.holds = mean_hit || share_hit;
    f.critical = rule.critical_mean_above_bpm > 0 && *mean > rule.critical_mean_above_bpm;
    f.raise = f.critical ? "Severe tachycardia" : "Tachycardia";
    f.clear = "Tachycardia resolved";
    f.detail = std::move(detail);
    return f;
}

std::optional<Finding> bradycardia_finding(const BradycardiaRule& rule, const HeartRateStats& s) {
    const auto mean = s.mean_bpm();
    if (!mean || !std::isfinite(*mean)) {
        return std::nullopt;
    }
    Finding f;
    f.figures.push_back({"mean heart rate", bpm_text(*mean)});
    std::string detail = "mean heart rate " + bpm_text(*mean);
    bool share_hit = false;
    if (rule.min_share > 0) {
        if (auto share = s.share_below(rule.share_threshold_bpm)) {
            const std::string th = threshold_text(rule.share_threshold_bpm);
            share_hit = *share >= rule.min_share;
            f.figures.push_back({"share of samples < " + th + " bpm", percent_text(*share)});
            detail += ", " + percent_text(*share) + " of readings below " + th + " bpm";
        }
    }
    const bool mean_hit = *mean < rule.mean_below_bpm;
    f.holds = mean_hit || share_hit;
    f.critical = *mean < rule.critical_mean_below_bpm;
    f.raise = f.critical ? "Severe bradycardia" : "Bradycardia";
    f.clear = "Bradycardia resolved";
    f.detail = std::move(detail);
    return f;
}

// Pooled is the baseline: every reading of the history windows as one sample.
struct Pooled {
    double n = 0;
    double mean = 0;
    double sd = 0;
};

std::optional<Pooled> pool(const std::deque<BaselineEntry>& entries, std::size_t last) {
    double n = 0, sx = 0, sxx = 0;
    const std::size_t from = entries.size() > last ? entries.size() - last : 0;
    for (std::size_t i = from; i < entries.size(); ++i) {
        n += static_cast<double>(entries[i].samples);
        sx += entries[i].sum_bpm;
        sxx += entries[i].sum_bpm_sq;
    }
    if (n < 2) {
        return std::nullopt;
    }
    Pooled p;
    p.n = n;
    p.mean = sx / n;
    // Clamped: rounding (or an inconsistent aggregate) may leave it a hair below zero.
    p.sd = std::sqrt(std::max(0.0, (sxx - sx * sx / n) / (n - 1)));
    if (!std::isfinite(p.mean) || !std::isfinite(p.sd)) {
        return std::nullopt;
    }
    return p;
}

std::optional<Finding> baseline_finding(const BaselineRule& rule, const HeartRateStats& s,
                                        const std::deque<BaselineEntry>& history) {
    const auto mean = s.mean_bpm();
    const std::size_t window_count =
        std::min(history.size(), static_cast<std::size_t>(std::max(rule.history_windows, 0)));
    if (rule.z_above <= 0 || !mean || !std::isfinite(*mean) ||
        window_count < static_cast<std::size_t>(std::max(rule.min_history_windows, 1))) {
        return std::nullopt;
    }
    const auto base = pool(history, window_count);
    if (!base) {
        return std::nullopt;
    }
    const double delta = *mean - base->mean;
    const double z = base->sd > 0 ? std::fabs(delta) / base->sd
                                  : (delta != 0 ? std::numeric_limits<double>::infinity() : 0.0);
    Finding f;
    f.holds = z > rule.z_above && std::fabs(delta) >= rule.min_delta_bpm;
    const std::string z_text = std::isfinite(z) ? fixed(z, 1) : "unbounded (baseline sd 0)";
    f.figures = {
        {"mean heart rate", bpm_text(*mean)},
        {"baseline", bpm_text(base->mean) + " (sd " + fixed(base->sd, 1) + ", " +
                         std::to_string(window_count) + " windows)"},
        {"difference", (delta >= 0 ? "+" : "") + bpm_text(delta)},
        {"z-score", z_text},
    };
    f.raise = "Heart rate " + fixed(std::fabs(delta), 1) + " bpm " +
              (delta >= 0 ? "above" : "below") + " this patient's baseline";
    f.clear = "Heart rate back near this patient's baseline";
    f.detail = "mean " + bpm_text(*mean) + " vs baseline " + bpm_text(base->mean) + ", z " + z_text;
    return f;
}

std::optional<Finding> irregular_finding(const IrregularRule& rule, const HeartRateStats& s) {
    const auto mean_rr = s.mean_rr_ms();
    if (s.rr_count < std::max<std::uint64_t>(rule.min_rr, 1) || !mean_rr || *mean_rr <= 0) {
        return std::nullopt;
    }
    // Plain doubles with flags: GCC 12 warns falsely about optional<double> here.
    double ratio = 0, cv = 0;
    bool has_ratio = false, has_cv = false;
    const std::optional<double> rmssd = s.rmssd_ms();
    if (rule.rmssd_ratio_above > 0 && s.rr_diff_count >= rule.min_rr && rmssd) {
        ratio = *rmssd / *mean_rr;
        has_ratio = std::isfinite(ratio);
    }
    if (rule.cv_above > 0 && s.rr_count >= 2) {
        const double n = static_cast<double>(s.rr_count);
        const double sx = to_double(s.sum_rr_ms), sxx = to_double(s.sum_rr_ms_sq);
        cv = std::sqrt(std::max(0.0, (sxx - sx * sx / n) / (n - 1))) / *mean_rr;
        has_cv = std::isfinite(cv);
    }
    if (!has_ratio && !has_cv) {
        return std::nullopt;
    }
    Finding f;
    f.holds = (has_ratio && ratio > rule.rmssd_ratio_above) || (has_cv && cv > rule.cv_above);
    std::string detail;
    if (has_ratio) {
        f.figures.push_back({"RMSSD", fixed(*rmssd, 0) + " ms"});
        f.figures.push_back({"RMSSD / mean RR", fixed(ratio, 2)});
        detail = "RMSSD " + fixed(ratio * 100, 0) + "% of the mean RR interval";
    }
    if (has_cv) {
        f.figures.push_back({"CV of RR intervals", fixed(cv, 2)});
        detail += std::string(detail.empty() ? "" : ", ") + "CV of RR " + fixed(cv, 2);
    }
    f.figures.push_back({"mean RR interval", fixed(*mean_rr, 0) + " ms"});
    f.figures.push_back({"RR intervals", std::to_string(s.rr_count)});
    f.raise = "Irregular rhythm";
    f.clear = "Rhythm regular again";
    f.detail = detail +
               (f.holds ? " (consistent with atrial fibrillation or frequent ectopic beats)" : "");
    return f;
}

std::optional<Finding> missing_data_finding(const MissingDataRule& rule, const HeartRateStats& s,
                                            std::int64_t length_ms) {
    Finding f;
    const double samples = static_cast<double>(s.samples);
    std::string detail;
    if (rule.expected_sample_interval_ms > 0 && length_ms > 0) {
        const double expected =
            static_cast<double>(length_ms) / static_cast<double>(rule.expected_sample_interval_ms);
        const std::string counts = std::to_string(s.samples) + " of " + fixed(expected, 0);
        f.holds = rule.min_sample_fraction > 0 && samples < rule.min_sample_fraction * expected;
        f.figures.push_back({"samples", counts + " expected"});
        detail = counts + " expected readings";
    }
    const std::uint64_t readings = s.samples + s.contact_lost;
    if (readings > 0 && s.contact_lost > 0) {
        const double lost = static_cast<double>(s.contact_lost) / static_cast<double>(readings);
        f.holds = f.holds ||
                  (rule.max_contact_lost_fraction > 0 && lost > rule.max_contact_lost_fraction);
        f.figures.push_back({"contact lost", std::to_string(s.contact_lost) + " of " +
                                                 std::to_string(readings) + " readings (" +
                                                 percent_text(lost) + ")"});
        detail += std::string(detail.empty() ? "" : ", ") + "sensor contact lost for " +
                  percent_text(lost) + " of readings";
    }
    if (detail.empty()) {
        detail = "no readings";
    }
    f.raise = "Too little data";
    f.clear = "Data complete again";
    f.detail = detail + " in the latest window";
    return f;
}

// ---------------------------------------------------------------------------------------
// The state machine every window rule shares (see rules.h).

enum class Step { kNone, kRaise, kClear };

bool in_cooldown(const RuleCommon& common, const RuleState& s, std::int64_t t) {
    return s.last_raised_ms && t - *s.last_raised_ms < common.cooldown_ms;
}

Step advance(const RuleCommon& common, RuleState& s, const std::optional<Finding>& finding,
             std::int64_t t, bool gap) {
    if (gap) {
        s.hits = 0;
    }
    if (!finding) {
        return Step::kNone;
    }
    if (finding->holds) {
        s.hits = std::min(s.hits + 1, kMaxCount);
        s.misses = 0;
        if (!s.active && s.hits >= common.sustained && !in_cooldown(common, s, t)) {
            s.active = true;
            s.last_raised_ms = t;
            return Step::kRaise;
        }
        return Step::kNone;
    }
    s.hits = 0;
    if (!s.active) {
        return Step::kNone;
    }
    s.misses = std::min(s.misses + 1, kMaxCount);
    if (s.misses >= common.clear_after) {
        s.active = false;
        s.misses = 0;
        return Step::kClear;
    }
    return Step::kNone;
}

AlertEvent make_event(AlertEvent::Kind kind, std::string_view patient, std::string_view rule,
                      Severity severity, std::int64_t window_id, std::int64_t start_ms,
                      std::int64_t length_ms) {
    AlertEvent e;
    e.kind = kind;
    e.patient = std::string(patient);
    e.rule = std::string(rule);
    e.severity = severity;
    e.window_id = window_id;
    e.window_start_ms = start_ms;
    e.window_length_ms = length_ms;
    return e;
}

// span_text says how long `windows` windows of `length_ms` last ("3 min", or "3 windows").
std::string span_text(int windows, std::int64_t length_ms) {
    if (length_ms <= 0) {
        return std::to_string(windows) + (windows == 1 ? " window" : " windows");
    }
    return duration_text(static_cast<std::int64_t>(windows) * length_ms);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Defaults (each value is justified beside its rule in rules.h).

RuleSet default_rules() {
    RuleSet r;
    r.tachycardia.common = {true, Severity::kWarning, 3, 2, 15 * 60'000};
    r.tachycardia.mean_above_bpm = 100;
    r.tachycardia.share_threshold_bpm = 100;
    r.tachycardia.min_share = 0.5;
    r.tachycardia.critical_mean_above_bpm = 130;

    r.bradycardia.common = {true, Severity::kWarning, 2, 2, 15 * 60'000};
    r.bradycardia.mean_below_bpm = 50;
    r.bradycardia.share_threshold_bpm = 50;
    r.bradycardia.min_share = 0.5;
    r.bradycardia.critical_mean_below_bpm = 40;

    r.baseline.common = {true, Severity::kInfo, 5, 3, 60 * 60'000};
    r.baseline.z_above = 3;
    r.baseline.history_windows = 60;
    r.baseline.min_history_windows = 30;
    r.baseline.min_delta_bpm = 20;

    r.irregular.common = {true, Severity::kWarning, 3, 3, 60 * 60'000};
    r.irregular.rmssd_ratio_above = 0.15;
    r.irregular.cv_above = 0.25;
    r.irregular.min_rr = 30;

    r.missing_data.common = {true, Severity::kInfo, 3, 2, 30 * 60'000};
    r.missing_data.expected_sample_interval_ms = 1000;
    r.missing_data.min_sample_fraction = 0.5;
    r.missing_data.max_contact_lost_fraction = 0.5;

    r.device_silent.common = {false, Severity::kWarning, 1, 1, 30 * 60'000};
    r.device_silent.silent_after_ms = 10 * 60'000;
    return r;
}

const RuleSet& AlertingConfig::rules_for(std::string_view patient) const {
    auto it = patients.find(patient);
    return it != patients.end() ? it->second.rules : defaults;
}

std::string AlertingConfig::display_name(std::string_view patient) const {
    auto it = patients.find(patient);
    if (it != patients.end() && !it->second.alias.empty()) {
        return it->second.alias;
    }
    return std::string(patient);
}

// ---------------------------------------------------------------------------------------
// Engine

RuleEngine::RuleEngine(AlertingConfig config) : config_(std::move(config)) {}

std::vector<AlertEvent> RuleEngine::evaluate(const WindowInput& w, PatientState& state) const {
    const RuleSet& rules = config_.rules_for(w.patient);
    const std::optional<std::int64_t> previous_end = state.last_window_end_ms;
    const bool gap = previous_end && w.start_ms > *previous_end;
    std::vector<AlertEvent> events;

    auto run = [&](const RuleCommon& common, std::string_view name,
                   const std::function<std::optional<Finding>()>& judge) {
        if (!common.enabled) {
            if (auto it = state.rules.find(name); it != state.rules.end()) {
                state.rules.erase(it);
            }
            return;
        }
        RuleState& s = state.rules[std::string(name)];
        const std::optional<Finding> finding = judge();
        const Step step = advance(common, s, finding, w.start_ms, gap);
        if (step == Step::kNone) {
            return;
        }
        const bool raise = step == Step::kRaise;
        const int windows = raise ? s.hits : common.clear_after;
        Severity severity = common.severity;
        if (raise && finding->critical) {
            severity = Severity::kCritical;
        }
        AlertEvent e = make_event(raise ? AlertEvent::Kind::kRaised : AlertEvent::Kind::kCleared,
                                  w.patient, name, severity, w.window_id, w.start_ms, w.length_ms);
        e.summary = (raise ? finding->raise : finding->clear) + " for " +
                    span_text(windows, w.length_ms) + ": " + finding->detail;
        e.figures = finding->figures;
        e.figures.push_back({"windows", std::to_string(windows)});
        events.push_back(std::move(e));
    };

    const HeartRateStats& s = w.stats;
    // A window without samples is neutral for the heart-rate rules (see rules.h).
    const bool has_samples = s.samples > 0;
    run(rules.tachycardia.common, kRuleTachycardia, [&]() -> std::optional<Finding> {
        return has_samples ? tachycardia_finding(rules.tachycardia, s) : std::nullopt;
    });
    run(rules.bradycardia.common, kRuleBradycardia, [&]() -> std::optional<Finding> {
        return has_samples ? bradycardia_finding(rules.bradycardia, s) : std::nullopt;
    });
    run(rules.baseline.common, kRuleBaseline, [&]() -> std::optional<Finding> {
        return has_samples ? baseline_finding(rules.baseline, s, state.baseline) : std::nullopt;
    });
    run(rules.irregular.common, kRuleIrregular,
        [&]() { return irregular_finding(rules.irregular, s); });
    run(rules.missing_data.common, kRuleMissingData,
        [&]() { return missing_data_finding(rules.missing_data, s, w.length_ms); });

    if (!rules.device_silent.common.enabled) {
        if (auto it = state.rules.find(kRuleDeviceSilent); it != state.rules.end()) {
            state.rules.erase(it);
        }
    } else if (auto it = state.rules.find(kRuleDeviceSilent);
               it != state.rules.end() && it->second.active) {
        it->second.active = false;
        it->second.hits = 0;
        it->second.misses = 0;
        AlertEvent e =
            make_event(AlertEvent::Kind::kCleared, w.patient, kRuleDeviceSilent,
                       rules.device_silent.common.severity, w.window_id, w.start_ms, w.length_ms);
        const std::int64_t silent = previous_end ? w.start_ms - *previous_end : 0;
        if (silent > 0) {
            e.summary =
                "Device sending data again after " + duration_text(silent) + " without data";
            e.figures.push_back({"without data", duration_text(silent)});
        } else {
            e.summary = "Data arriving again (the windows were delayed, none is missing)";
        }
        events.push_back(std::move(e));
    }

    // The baseline learns from this window only after judging it.
    if (rules.baseline.common.enabled && has_samples) {
        state.baseline.push_back(BaselineEntry{s.samples, to_double(s.sum_bpm_deci) / 10.0,
                                               to_double(s.sum_bpm_deci_sq) / 100.0});
    }
    if (!rules.baseline.common.enabled) {
        state.baseline.clear();
    }
    const auto keep = static_cast<std::size_t>(std::max(rules.baseline.history_windows, 0));
    while (state.baseline.size() > keep) {
        state.baseline.pop_front();
    }
    const std::int64_t end = w.start_ms + w.length_ms;
    state.last_window_end_ms = previous_end ? std::max(*previous_end, end) : end;
    state.attention = false;
    for (const auto& [name, r] : state.rules) {
        state.attention = state.attention || r.active || r.hits > 0;
    }
    if (has_samples && rules.tachycardia.common.enabled) {
        state.attention =
            state.attention ||
            s.share_at_or_above(rules.tachycardia.share_threshold_bpm).value_or(0) > 0;
    }
    if (has_samples && rules.bradycardia.common.enabled) {
        state.attention =
            state.attention || s.share_below(rules.bradycardia.share_threshold_bpm).value_or(0) > 0;
    }
    return events;
}

std::vector<AlertEvent> RuleEngine::check_silence(std::string_view patient, std::int64_t now_ms,
                                                  PatientState& state) const {
    const DeviceSilentRule& rule = config_.rules_for(patient).device_silent;
    if (!rule.common.enabled || rule.silent_after_ms <= 0 || !state.last_window_end_ms) {
        return {};
    }
    const std::int64_t last_end = *state.last_window_end_ms;
    const std::int64_t silent = now_ms - last_end;
    if (silent <= rule.silent_after_ms) {
        return {};
    }
    auto it = state.rules.find(kRuleDeviceSilent);
    if (it != state.rules.end() &&
        (it->second.active || in_cooldown(rule.common, it->second, now_ms))) {
        return {};
    }
    RuleState& s = state.rules[std::string(kRuleDeviceSilent)];
    s.active = true;
    s.hits = 1;
    s.misses = 0;
    s.last_raised_ms = now_ms;
    AlertEvent e = make_event(AlertEvent::Kind::kRaised, patient, kRuleDeviceSilent,
                              rule.common.severity, 0, last_end, silent);
    e.summary = "No data from the device for " + duration_text(silent) + " (alert after " +
                duration_text(rule.silent_after_ms) + ")";
    e.figures = {{"without data", duration_text(silent)},
                 {"last data", utc_text(last_end)},
                 {"threshold", duration_text(rule.silent_after_ms)}};
    return {std::move(e)};
}

// ---------------------------------------------------------------------------------------
// PatientState JSON

namespace {

using nlohmann::json;

constexpr int kStateVersion = 1;

std::optional<std::int64_t> json_int(const json& j, std::int64_t lo, std::int64_t hi) {
    if (j.is_number_unsigned()) {
        const auto u = j.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
            static_cast<std::int64_t>(u) > hi || static_cast<std::int64_t>(u) < lo) {
            return std::nullopt;
        }
        return static_cast<std::int64_t>(u);
    }
    if (j.is_number_integer()) {
        const auto i = j.get<std::int64_t>();
        if (i < lo || i > hi) {
            return std::nullopt;
        }
        return i;
    }
    return std::nullopt;
}

std::optional<double> json_sum(const json& j) {
    if (!j.is_number()) {
        return std::nullopt;
    }
    const double v = j.get<double>();
    if (!std::isfinite(v) || v < 0) {
        return std::nullopt;
    }
    return v;
}

bool only_keys(const json& object, std::initializer_list<std::string_view> keys) {
    for (const auto& item : object.items()) {
        if (std::find(keys.begin(), keys.end(), item.key()) == keys.end()) {
            return false;
        }
    }
    return true;
}

std::optional<RuleState> rule_state_from(const json& j) {
    if (!j.is_object() || !only_keys(j, {"hits", "misses", "active", "last_raised_ms"}) ||
        !j.contains("hits") || !j.contains("misses") || !j.contains("active") ||
        !j["active"].is_boolean()) {
        return std::nullopt;
    }
    constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    const auto hits = json_int(j["hits"], 0, std::numeric_limits<int>::max());
    const auto misses = json_int(j["misses"], 0, std::numeric_limits<int>::max());
    if (!hits || !misses) {
        return std::nullopt;
    }
    RuleState s;
    s.hits = static_cast<int>(*hits);
    s.misses = static_cast<int>(*misses);
    s.active = j["active"].get<bool>();
    if (j.contains("last_raised_ms")) {
        auto t = json_int(j["last_raised_ms"], kMin, kMax);
        if (!t) {
            return std::nullopt;
        }
        s.last_raised_ms = *t;
    }
    return s;
}

std::optional<PatientState> state_from(const json& j) {
    if (!j.is_object() ||
        !only_keys(j, {"v", "rules", "baseline", "last_window_end_ms", "attention"}) ||
        !j.contains("v") || json_int(j["v"], kStateVersion, kStateVersion) != kStateVersion ||
        !j.contains("rules") || !j["rules"].is_object() || !j.contains("baseline") ||
        !j["baseline"].is_array()) {
        return std::nullopt;
    }
    PatientState state;
    for (const auto& item : j["rules"].items()) {
        auto s = rule_state_from(item.value());
        if (item.key().empty() || !s) {
            return std::nullopt;
        }
        state.rules.emplace(item.key(), *s);
    }
    for (const auto& entry : j["baseline"]) {
        if (!entry.is_array() || entry.size() != 3 || !entry[0].is_number_unsigned()) {
            return std::nullopt;
        }
        auto sum = json_sum(entry[1]);
        auto sum_sq = json_sum(entry[2]);
        if (!sum || !sum_sq) {
            return std::nullopt;
        }
        state.baseline.push_back({entry[0].get<std::uint64_t>(), *sum, *sum_sq});
    }
    if (j.contains("last_window_end_ms")) {
        auto t = json_int(j["last_window_end_ms"], std::numeric_limits<std::int64_t>::min(),
                          std::numeric_limits<std::int64_t>::max());
        if (!t) {
            return std::nullopt;
        }
        state.last_window_end_ms = *t;
    }
    if (j.contains("attention")) {
        if (!j["attention"].is_boolean()) {
            return std::nullopt;
        }
        state.attention = j["attention"].get<bool>();
    }
    return state;
}

}  // namespace

std::string PatientState::to_json() const {
    json j = json::object();
    j["v"] = kStateVersion;
    json rule_states = json::object();
    for (const auto& [name, s] : rules) {
        json r = {{"hits", s.hits}, {"misses", s.misses}, {"active", s.active}};
        if (s.last_raised_ms) {
            r["last_raised_ms"] = *s.last_raised_ms;
        }
        rule_states[name] = std::move(r);
    }
    j["rules"] = std::move(rule_states);
    json entries = json::array();
    for (const auto& e : baseline) {
        entries.push_back(json::array({e.samples, e.sum_bpm, e.sum_bpm_sq}));
    }
    j["baseline"] = std::move(entries);
    if (last_window_end_ms) {
        j["last_window_end_ms"] = *last_window_end_ms;
    }
    if (attention) {
        j["attention"] = true;
    }
    return j.dump();
}

Result<PatientState> PatientState::from_json(std::string_view text) {
    try {
        const json j = json::parse(text.begin(), text.end(), nullptr, false);
        if (j.is_discarded()) {
            return make_error(ErrorCode::kInvalidEncoding, "patient state: not valid JSON");
        }
        if (auto state = state_from(j)) {
            return std::move(*state);
        }
    } catch (const json::exception&) {
        // Falls through: every member is type-checked first, so this is only a safety net.
    }
    return make_error(ErrorCode::kInvalidEncoding, "patient state: malformed");
}

// ---------------------------------------------------------------------------------------
// TOML

namespace {

// TableReader reads the keys of one TOML table into fields, remembering the first error
// (named by `path` and key) and which keys it knows.
class TableReader {
  public:
    TableReader(const toml::table& table, std::string path)
        : table_(table), path_(std::move(path)) {}

    void boolean(const char* key, bool& out) {
        if (const toml::node* node = find(key)) {
            if (!node->is_boolean()) {
                return fail(key, "must be true or false");
            }
            out = *node->value<bool>();
        }
    }

    void integer(const char* key, std::int64_t& out, std::int64_t lo, std::int64_t hi) {
        if (const toml::node* node = find(key)) {
            if (!node->is_integer()) {
                return fail(key, "must be an integer");
            }
            const std::int64_t v = *node->value<std::int64_t>();
            if (v < lo) {
                return fail(key, "must be >= " + std::to_string(lo));
            }
            if (v > hi) {
                return fail(key, "must be <= " + std::to_string(hi));
            }
            out = v;
        }
    }

    void integer(const char* key, int& out, int lo, int hi) {
        std::int64_t v = out;
        integer(key, v, lo, hi);
        out = static_cast<int>(v);
    }

    void number(const char* key, double& out, double lo, double hi) {
        if (const toml::node* node = find(key)) {
            double v = 0;
            if (node->is_integer()) {
                v = static_cast<double>(*node->value<std::int64_t>());
            } else if (node->is_floating_point()) {
                v = *node->value<double>();
            } else {
                return fail(key, "must be a number");
            }
            if (!std::isfinite(v) || v < lo || v > hi) {
                return fail(key,
                            "must be between " + threshold_text(lo) + " and " + threshold_text(hi));
            }
            out = v;
        }
    }

    void duration(const char* key, std::int64_t& out_ms, std::int64_t min_ms) {
        if (const toml::node* node = find(key)) {
            const auto* text = node->as_string();
            std::optional<std::int64_t> ms;
            if (text != nullptr) {
                ms = parse_duration(text->get());
            }
            if (!ms) {
                return fail(key,
                            "must be a duration string such as \"90s\", \"15m\", \"2h\" or "
                            "\"1d\" (at most a year)");
            }
            if (*ms < min_ms) {
                return fail(key, min_ms == 1 ? "must be longer than 0" : "must not be negative");
            }
            out_ms = *ms;
        }
    }

    void severity(const char* key, Severity& out) {
        if (const toml::node* node = find(key)) {
            const auto* text = node->as_string();
            auto parsed = text != nullptr ? parse_severity(text->get()) : std::nullopt;
            if (!parsed) {
                return fail(key, "must be \"info\", \"warning\" or \"critical\"");
            }
            out = *parsed;
        }
    }

    // check adds a failure for `key` unless `ok` (for checks across keys).
    void check(bool ok, const char* key, const std::string& message) {
        if (!ok) {
            fail(key, message);
        }
    }

    // finish returns the first error, or an unknown key among the table's keys.
    std::optional<Error> finish() const {
        if (error_) {
            return error_;
        }
        for (const auto& [key, node] : table_) {
            if (std::find(known_.begin(), known_.end(), key.str()) == known_.end()) {
                std::string list;
                for (const auto& k : known_) {
                    list += (list.empty() ? "" : ", ") + std::string(k);
                }
                return common::config_error(path_ + "." + std::string(key.str()) +
                                            ": unknown key (known: " + list + ")");
            }
        }
        return std::nullopt;
    }

  private:
    const toml::node* find(const char* key) {
        known_.emplace_back(key);
        return error_ ? nullptr : table_.get(key);
    }

    void fail(const char* key, const std::string& message) {
        if (!error_) {
            error_ = common::config_error(path_ + "." + key + ": " + message);
        }
    }

    const toml::table& table_;
    std::string path_;
    std::vector<std::string_view> known_;
    std::optional<Error> error_;
};

constexpr double kMaxBpm = 300;
constexpr int kMaxWindows = 10'000;
constexpr int kMaxHistoryWindows = 1440;  // a day of 1-minute windows in every stored state

void read_common(TableReader& r, RuleCommon& c) {
    r.boolean("enabled", c.enabled);
    r.severity("severity", c.severity);
    r.integer("sustained", c.sustained, 1, kMaxWindows);
    r.integer("clear_after", c.clear_after, 1, kMaxWindows);
    r.duration("cooldown", c.cooldown_ms, 0);
}

void read_rule(TableReader& r, TachycardiaRule& rule) {
    read_common(r, rule.common);
    r.number("mean_above_bpm", rule.mean_above_bpm, 0, kMaxBpm);
    r.number("share_threshold_bpm", rule.share_threshold_bpm, 0, kMaxBpm);
    r.number("min_share", rule.min_share, 0, 1);
    r.number("critical_mean_above_bpm", rule.critical_mean_above_bpm, 0, kMaxBpm);
}

void read_rule(TableReader& r, BradycardiaRule& rule) {
    read_common(r, rule.common);
    r.number("mean_below_bpm", rule.mean_below_bpm, 0, kMaxBpm);
    r.number("share_threshold_bpm", rule.share_threshold_bpm, 0, kMaxBpm);
    r.number("min_share", rule.min_share, 0, 1);
    r.number("critical_mean_below_bpm", rule.critical_mean_below_bpm, 0, kMaxBpm);
}

void read_rule(TableReader& r, BaselineRule& rule) {
    read_common(r, rule.common);
    r.number("z_above", rule.z_above, 0, 100);
    r.integer("history_windows", rule.history_windows, 1, kMaxHistoryWindows);
    r.integer("min_history_windows", rule.min_history_windows, 1, kMaxHistoryWindows);
    r.number("min_delta_bpm", rule.min_delta_bpm, 0, kMaxBpm);
    r.check(rule.min_history_windows <= rule.history_windows, "min_history_windows",
            "must be <= history_windows (" + std::to_string(rule.history_windows) + ")");
}

void read_rule(TableReader& r, IrregularRule& rule) {
    read_common(r, rule.common);
    r.number("rmssd_ratio_above", rule.rmssd_ratio_above, 0, 10);
    r.number("cv_above", rule.cv_above, 0, 10);
    std::int64_t min_rr = static_cast<std::int64_t>(rule.min_rr);
    r.integer("min_rr", min_rr, 2, 100'000);
    rule.min_rr = static_cast<std::uint64_t>(min_rr);
}

void read_rule(TableReader& r, MissingDataRule& rule) {
    read_common(r, rule.common);
    r.duration("expected_sample_interval", rule.expected_sample_interval_ms, 1);
    r.number("min_sample_fraction", rule.min_sample_fraction, 0, 1);
    r.number("max_contact_lost_fraction", rule.max_contact_lost_fraction, 0, 1);
}

void read_rule(TableReader& r, DeviceSilentRule& rule) {
    read_common(r, rule.common);
    r.duration("silent_after", rule.silent_after_ms, 0);
}

template <class Rule>
std::optional<Error> apply_table(const toml::table& table, const std::string& path, Rule& rule) {
    Rule updated = rule;
    TableReader reader(table, path);
    read_rule(reader, updated);
    if (auto error = reader.finish()) {
        return error;
    }
    rule = updated;
    return std::nullopt;
}

constexpr std::string_view kRuleNames[] = {kRuleTachycardia, kRuleBradycardia, kRuleBaseline,
                                           kRuleIrregular,   kRuleMissingData, kRuleDeviceSilent};

// apply_rules reads the `[<path>.<rule>]` tables under `node` into `set`.
std::optional<Error> apply_rules(const toml::node& node, const std::string& path, RuleSet& set) {
    const toml::table* rules = node.as_table();
    if (rules == nullptr) {
        return common::config_error(path + ": must be a table");
    }
    for (const auto& [key, value] : *rules) {
        const std::string name(key.str());
        const std::string rule_path = path + "." + name;
        const toml::table* table = value.as_table();
        const bool known =
            std::find(std::begin(kRuleNames), std::end(kRuleNames), name) != std::end(kRuleNames);
        if (!known) {
            std::string list;
            for (auto n : kRuleNames) {
                list += (list.empty() ? "" : ", ") + std::string(n);
            }
            return common::config_error(rule_path + ": unknown rule (known: " + list + ")");
        }
        if (table == nullptr) {
            return common::config_error(rule_path + ": must be a table");
        }
        std::optional<Error> error;
        if (name == kRuleTachycardia) {
            error = apply_table(*table, rule_path, set.tachycardia);
        } else if (name == kRuleBradycardia) {
            error = apply_table(*table, rule_path, set.bradycardia);
        } else if (name == kRuleBaseline) {
            error = apply_table(*table, rule_path, set.baseline);
        } else if (name == kRuleIrregular) {
            error = apply_table(*table, rule_path, set.irregular);
        } else if (name == kRuleMissingData) {
            error = apply_table(*table, rule_path, set.missing_data);
        } else {
            error = apply_table(*table, rule_path, set.device_silent);
        }
        if (error) {
            return error;
        }
    }
    return std::nullopt;
}

std::optional<Error> read_patient(const std::string& id, const toml::node& node,
                                  const RuleSet& defaults, PatientConfig& out) {
    const std::string path = "patients." + id;
    const toml::table* table = node.as_table();
    if (table == nullptr) {
        return common::config_error(path + ": must be a table");
    }
    if (id.empty()) {
        return common::config_error("patients: a patient id must not be empty");
    }
    out.rules = defaults;
    for (const auto& [key, value] : *table) {
        if (key.str() == "alias") {
            const auto* alias = value.as_string();
            if (alias == nullptr || alias->get().empty()) {
                return common::config_error(path + ".alias: must be a non-empty string");
            }
            out.alias = alias->get();
        } else if (key.str() == "rules") {
            if (auto error = apply_rules(value, path + ".rules", out.rules)) {
                return error;
            }
        } else {
            return common::config_error(path + "." + std::string(key.str()) +
                                        ": unknown key (known: alias, rules)");
        }
    }
    return std::nullopt;
}

}  // namespace

Result<AlertingConfig> read_alerting_config(const toml::table& root) {
    AlertingConfig config;
    if (const toml::node* rules = root.get("rules")) {
        if (auto error = apply_rules(*rules, "rules", config.defaults)) {
            return *error;
        }
    }
    if (const toml::node* node = root.get("patients")) {
        const toml::table* patients = node->as_table();
        if (patients == nullptr) {
            return common::config_error("patients: must be a table");
        }
        for (const auto& [key, value] : *patients) {
            PatientConfig patient;
            const std::string id(key.str());
            if (auto error = read_patient(id, value, config.defaults, patient)) {
                return *error;
            }
            config.patients.emplace(id, std::move(patient));
        }
    }
    return config;
}

}  // namespace cipherpulse::decryptor
