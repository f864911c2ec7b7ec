#include "edge/simulator.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <deque>
#include <numbers>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

namespace cipherpulse::edge {
namespace {

using Kind = Episode::Kind;

constexpr std::int64_t kSecondMs = 1000;
constexpr std::int64_t kMinuteMs = 60 * kSecondMs;
constexpr std::int64_t kHourMs = 60 * kMinuteMs;
constexpr std::int64_t kDayMs = 24 * kHourMs;
constexpr std::int64_t kMaxSpanMs = 3660 * kDayMs;  // about ten years

constexpr double kMinBpm = 30;
constexpr double kMaxBpm = 220;
constexpr std::uint32_t kMinRrMs = 273;   // ceil(60000 / 220)
constexpr std::uint32_t kMaxRrMs = 2000;  // 60000 / 30

constexpr double kTransitionMs = 30 * kSecondMs;
constexpr double kDefaultTachycardiaBpm = 150;
constexpr double kDefaultBradycardiaBpm = 40;
constexpr double kAfLogSigma = 0.22;  // AF-like RR: lognormal, CV about 0.22

constexpr double kRespirationHz = 0.25;
constexpr double kRsaShare = 0.6;  // RSA and AR(1) noise split hrv_sd_ms: 0.6^2 + 0.8^2 = 1
constexpr double kNoiseShare = 0.8;
constexpr double kNoisePhi = 0.5;
constexpr double kDriftTauMs = 60 * kSecondMs;

constexpr double kActivityRampMs = 60 * kSecondMs;
constexpr double kRecoveryTauMs = 90 * kSecondMs;
constexpr double kMinBurstMs = 60 * kSecondMs;
constexpr std::int64_t kCircadianPeakMs = 16 * kHourMs;
constexpr std::int64_t kWakeMs = 7 * kHourMs;
constexpr std::int64_t kSleepMs = 23 * kHourMs;

constexpr std::int64_t kWatchBpmWindowMs = 5 * kSecondMs;

constexpr std::array<std::string_view, 3> kProfileNames{"healthy", "athlete", "elderly"};
constexpr std::array<Kind, 5> kKinds{Kind::kTachycardia, Kind::kBradycardia, Kind::kIrregular,
                                     Kind::kContactLoss, Kind::kDropout};

// Random draws from std::mt19937_64 (whose output the standard fixes) through our own
// distributions: the standard library's distributions differ between implementations.
class Random {
  public:
    explicit Random(std::uint64_t seed) : engine_(seed) {}

    double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)

    double normal() {  // Box-Muller
        if (spare_) {
            return *std::exchange(spare_, std::nullopt);
        }
        double radius = std::sqrt(-2.0 * std::log(1.0 - uniform()));
        double angle = 2.0 * std::numbers::pi * uniform();
        spare_ = radius * std::sin(angle);
        return radius * std::cos(angle);
    }

    double exponential(double mean) { return -mean * std::log(1.0 - uniform()); }

  private:
    std::mt19937_64 engine_;
    std::optional<double> spare_;
};

// splitmix64 derives independent stream seeds from one user seed.
std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double smoothstep(double x) {
    x = std::clamp(x, 0.0, 1.0);
    return x * x * (3.0 - 2.0 * x);
}

std::int64_t local_time_of_day_ms(const PatientProfile& profile, std::int64_t t_ms) {
    std::int64_t local = t_ms + std::int64_t{profile.utc_offset_minutes} * kMinuteMs;
    return ((local % kDayMs) + kDayMs) % kDayMs;
}

bool is_rhythm(Kind kind) {
    return kind == Kind::kTachycardia || kind == Kind::kBradycardia || kind == Kind::kIrregular;
}

// An episode placed on the absolute time line, with its default target resolved.
struct Span {
    Kind kind;
    std::int64_t start_ms;
    std::int64_t end_ms;
    double target_bpm;

    bool contains(std::int64_t t) const { return start_ms <= t && t < end_ms; }
    // weight: how far the episode has taken over at `t`, 0..1, ramping at both ends.
    double weight(std::int64_t t) const {
        if (!contains(t)) {
            return 0;
        }
        double ramp = std::min(kTransitionMs, static_cast<double>(end_ms - start_ms) / 3.0);
        return std::min(smoothstep(static_cast<double>(t - start_ms) / ramp),
                        smoothstep(static_cast<double>(end_ms - t) / ramp));
    }
};

// ActivitySchedule draws activity bursts lazily; `extra_bpm` must see non-decreasing times.
class ActivitySchedule {
  public:
    ActivitySchedule(const PatientProfile& profile, std::uint64_t seed, std::int64_t start_ms)
        : profile_(profile), random_(seed), next_candidate_ms_(start_ms) {
        if (profile_.activity_bursts_per_hour > 0) {
            mean_gap_ms_ = static_cast<double>(kHourMs) / profile_.activity_bursts_per_hour;
            advance_candidate();
        }
    }

    double extra_bpm(std::int64_t t) {
        if (mean_gap_ms_ <= 0) {
            return 0;
        }
        while (next_candidate_ms_ <= t) {
            std::int64_t time_of_day = local_time_of_day_ms(profile_, next_candidate_ms_);
            if (time_of_day >= kWakeMs && time_of_day < kSleepMs) {
                add_burst(next_candidate_ms_);
            }
            advance_candidate();
        }
        std::erase_if(bursts_, [t](const Burst& b) {
            return static_cast<double>(t - b.end_ms) > 8 * kRecoveryTauMs;
        });
        double extra = 0;
        for (const Burst& b : bursts_) {
            extra += level(b, t);
        }
        return extra;
    }

  private:
    struct Burst {
        std::int64_t start_ms;
        std::int64_t end_ms;
        double bpm;
    };

    void advance_candidate() {
        next_candidate_ms_ +=
            std::max<std::int64_t>(1, std::llround(random_.exponential(mean_gap_ms_)));
    }

    void add_burst(std::int64_t start_ms) {
        double mean = profile_.activity_mean_duration_s * 1000.0;
        double duration = std::max(random_.exponential(mean), kMinBurstMs);
        duration = std::min(duration, std::max(4 * mean, kMinBurstMs));
        double bpm = profile_.activity_extra_bpm * (0.5 + 0.5 * random_.uniform());
        bursts_.push_back({start_ms, start_ms + std::llround(duration), bpm});
    }

    static double level(const Burst& b, std::int64_t t) {
        if (t < b.start_ms) {
            return 0;
        }
        if (t < b.end_ms) {
            return b.bpm * smoothstep(static_cast<double>(t - b.start_ms) / kActivityRampMs);
        }
        double reached = smoothstep(static_cast<double>(b.end_ms - b.start_ms) / kActivityRampMs);
        return b.bpm * reached * std::exp(-static_cast<double>(t - b.end_ms) / kRecoveryTauMs);
    }

    PatientProfile profile_;
    Random random_;
    double mean_gap_ms_ = 0;
    std::int64_t next_candidate_ms_;
    std::vector<Burst> bursts_;
};

struct Beat {
    std::int64_t t_ms;       // when the beat happened
    std::int64_t prev_t_ms;  // when the beat before it happened
    std::uint32_t rr_ms;     // t_ms - prev_t_ms
};

// Heart produces the underlying beats, observed or not.
class Heart {
  public:
    Heart(const PatientProfile& profile, std::vector<Span> rhythm_episodes, std::uint64_t seed,
          std::int64_t start_ms)
        // Members initialise in declaration order, so the two streams are drawn in this order.
        : profile_(profile),
          episodes_(std::move(rhythm_episodes)),
          random_(splitmix64(seed)),
          activity_(profile, splitmix64(seed), start_ms),
          rest_rr_ms_(60000.0 / profile.resting_bpm) {
        // Start in the stationary state, with the last beat somewhere in the interval before.
        last_beat_ms_ = start_ms - std::llround(random_.uniform() * rest_rr_ms_);
        rsa_phase_ = 2 * std::numbers::pi * random_.uniform();
        noise_ms_ = kNoiseShare * profile_.hrv_sd_ms * random_.normal();
        drift_bpm_ = profile_.drift_sd_bpm * random_.normal();
    }

    Beat next_beat() {
        std::int64_t t = last_beat_ms_;
        double rate = profile_.resting_bpm + circadian_bpm(t) + activity_.extra_bpm(t) + drift_bpm_;
        double irregular = 0;
        for (const Span& e : episodes_) {
            double w = e.weight(t);
            if (w <= 0) {
                continue;
            }
            if (e.target_bpm > 0) {
                rate = (1 - w) * rate + w * e.target_bpm;
            }
            if (e.kind == Kind::kIrregular) {
                irregular = w;
            }
        }
        double mean_rr = 60000.0 / std::clamp(rate, kMinBpm, kMaxBpm);

        // The same draws every beat, so the stream never depends on which branch ran.
        double z_noise = random_.normal();
        double z_drift = random_.normal();
        double z_af = random_.normal();

        // Variability shrinks as the rate rises above rest (and grows a little below it).
        double scale = std::clamp(mean_rr / rest_rr_ms_, 0.3, 1.5);
        noise_ms_ = kNoisePhi * noise_ms_ + std::sqrt(1 - kNoisePhi * kNoisePhi) * kNoiseShare *
                                                profile_.hrv_sd_ms * z_noise;
        double rsa_ms = kRsaShare * std::numbers::sqrt2 * profile_.hrv_sd_ms * std::sin(rsa_phase_);
        double sinus_rr = mean_rr + scale * (rsa_ms + noise_ms_);
        double af_rr = mean_rr * std::exp(kAfLogSigma * z_af - kAfLogSigma * kAfLogSigma / 2);
        double rr = (1 - irregular) * sinus_rr + irregular * af_rr;
        auto rr_ms =
            static_cast<std::uint32_t>(std::clamp<long long>(std::llround(rr), kMinRrMs, kMaxRrMs));

        double decay = std::exp(-static_cast<double>(rr_ms) / kDriftTauMs);
        drift_bpm_ =
            decay * drift_bpm_ + std::sqrt(1 - decay * decay) * profile_.drift_sd_bpm * z_drift;
        rsa_phase_ = std::fmod(rsa_phase_ + 2 * std::numbers::pi * kRespirationHz * rr_ms / 1000.0,
                               2 * std::numbers::pi);

        Beat beat{last_beat_ms_ + rr_ms, last_beat_ms_, rr_ms};
        last_beat_ms_ = beat.t_ms;
        return beat;
    }

  private:
    double circadian_bpm(std::int64_t t) const {
        auto since_peak = static_cast<double>(local_time_of_day_ms(profile_, t) - kCircadianPeakMs);
        return profile_.circadian_amplitude_bpm *
               std::cos(2 * std::numbers::pi * since_peak / static_cast<double>(kDayMs));
    }

    PatientProfile profile_;
    std::vector<Span> episodes_;
    Random random_;
    ActivitySchedule activity_;
    double rest_rr_ms_;
    std::int64_t last_beat_ms_ = 0;
    double rsa_phase_ = 0;
    double noise_ms_ = 0;
    double drift_bpm_ = 0;
};

// --- Script parsing -------------------------------------------------------------------------

std::string_view trim(std::string_view text) {
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!text.empty() && space(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && space(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

std::string quoted(std::string_view text) {
    return "\"" + std::string(text) + "\"";
}

std::string format_span(std::int64_t ms) {
    if (ms % kHourMs == 0) {
        return std::to_string(ms / kHourMs) + "h";
    }
    if (ms % kMinuteMs == 0) {
        return std::to_string(ms / kMinuteMs) + "m";
    }
    std::string text = std::to_string(ms / kSecondMs);
    if (ms % kSecondMs != 0) {
        std::string millis = std::to_string(1000 + std::abs(ms % kSecondMs)).substr(1);
        text += "." + millis.substr(0, millis.find_last_not_of('0') + 1);
    }
    return text + "s";
}

std::string describe(const Episode& e) {
    return std::string(episode_kind_name(e.kind)) + "@" + format_span(e.start_ms) + "+" +
           format_span(e.duration_ms);
}

Result<double> parse_number(std::string_view text) {
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
        !std::isfinite(value)) {
        return make_error(ErrorCode::kInvalidEncoding, "expected a number, got " + quoted(text));
    }
    return value;
}

// parse_span reads "90s", "1.5m", "1h30m" into milliseconds.
Result<std::int64_t> parse_span(std::string_view text, const char* what) {
    auto fail = [&](ErrorCode code, const std::string& detail) -> Result<std::int64_t> {
        return make_error(code, std::string(what) + " " + quoted(text) + detail);
    };
    if (text.empty()) {
        return make_error(ErrorCode::kInvalidEncoding, std::string(what) + " is missing");
    }
    if (text.front() == '-') {
        return fail(ErrorCode::kOutOfRange, " must not be negative");
    }
    double total = 0;
    for (std::size_t i = 0; i < text.size();) {
        std::size_t j = text.find_first_not_of("0123456789.", i);
        j = j == std::string_view::npos ? text.size() : j;
        auto number = parse_number(text.substr(i, j - i));
        if (!number) {
            return fail(ErrorCode::kInvalidEncoding, ": " + number.error().message);
        }
        if (j == text.size()) {
            return fail(ErrorCode::kInvalidEncoding, " needs a unit (s, m or h)");
        }
        std::int64_t unit_ms = text[j] == 's'   ? kSecondMs
                               : text[j] == 'm' ? kMinuteMs
                               : text[j] == 'h' ? kHourMs
                                                : 0;
        if (unit_ms == 0) {
            return fail(ErrorCode::kInvalidEncoding,
                        ": unknown unit '" + std::string(1, text[j]) + "' (s, m or h)");
        }
        total += number.value() * static_cast<double>(unit_ms);
        i = j + 1;
    }
    if (!(total <= static_cast<double>(kMaxSpanMs))) {
        return fail(ErrorCode::kOutOfRange,
                    " is too long (at most " + format_span(kMaxSpanMs) + ")");
    }
    return std::int64_t{std::llround(total)};
}

Result<Kind> parse_kind(std::string_view text) {
    for (Kind kind : kKinds) {
        if (text == episode_kind_name(kind)) {
            return kind;
        }
    }
    return make_error(ErrorCode::kUnsupported,
                      "unknown episode kind " + quoted(text) +
                          " (tachycardia, bradycardia, irregular, contact-loss or dropout)");
}

Result<Episode> parse_item(std::string_view item) {
    std::size_t at = item.find('@');
    if (at == std::string_view::npos) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "expected kind@offset+duration[:bpm], e.g. tachycardia@10m+5m:150");
    }
    auto kind = parse_kind(trim(item.substr(0, at)));
    if (!kind) {
        return kind.error();
    }
    std::string_view rest = item.substr(at + 1);
    std::size_t colon = rest.find(':');
    std::string_view times = rest.substr(0, colon);
    std::size_t plus = times.find('+');
    if (plus == std::string_view::npos) {
        return make_error(ErrorCode::kInvalidEncoding, "missing +duration after the offset");
    }
    auto offset = parse_span(trim(times.substr(0, plus)), "offset");
    if (!offset) {
        return offset.error();
    }
    auto duration = parse_span(trim(times.substr(plus + 1)), "duration");
    if (!duration) {
        return duration.error();
    }
    Episode episode{kind.value(), offset.value(), duration.value(), 0};
    if (colon != std::string_view::npos) {
        auto target = parse_number(trim(rest.substr(colon + 1)));
        if (!target) {
            return make_error(ErrorCode::kInvalidEncoding,
                              "target rate: " + target.error().message);
        }
        episode.target_bpm = target.value();
    }
    return episode;
}

// check_episode validates one episode on its own; empty if it is fine.
std::optional<Error> check_episode(const Episode& e) {
    auto out_of_range = [](std::string message) {
        return make_error(ErrorCode::kOutOfRange, std::move(message));
    };
    if (e.start_ms < 0) {
        return out_of_range("offset must not be negative");
    }
    if (e.duration_ms <= 0) {
        return out_of_range("duration must be positive");
    }
    if (e.start_ms > kMaxSpanMs || e.duration_ms > kMaxSpanMs) {
        return out_of_range("offset and duration must be at most " + format_span(kMaxSpanMs));
    }
    double t = e.target_bpm;
    auto require = [&](double lo, double hi, const char* message) -> std::optional<Error> {
        if (t == 0 || (t >= lo && t <= hi)) {
            return std::nullopt;
        }
        return out_of_range(message);
    };
    switch (e.kind) {
        case Kind::kTachycardia:
            return require(100, kMaxBpm, "tachycardia target must be 100-220 bpm");
        case Kind::kBradycardia:
            return require(kMinBpm, 60, "bradycardia target must be 30-60 bpm");
        case Kind::kIrregular:
            return require(kMinBpm, kMaxBpm, "irregular target must be 30-220 bpm");
        case Kind::kContactLoss:
        case Kind::kDropout:
            if (t == 0) {
                return std::nullopt;
            }
            return out_of_range(std::string(episode_kind_name(e.kind)) + " takes no target rate");
    }
    return out_of_range("unknown episode kind");
}

Status check_overlaps(std::span<const Episode> episodes) {
    for (std::size_t i = 0; i < episodes.size(); ++i) {
        for (std::size_t j = i + 1; j < episodes.size(); ++j) {
            const Episode& a = episodes[i];
            const Episode& b = episodes[j];
            if (is_rhythm(a.kind) != is_rhythm(b.kind)) {
                continue;
            }
            if (a.start_ms < b.start_ms + b.duration_ms &&
                b.start_ms < a.start_ms + a.duration_ms) {
                return make_error(ErrorCode::kOutOfRange,
                                  "episodes " + std::to_string(i + 1) + " (" + describe(a) +
                                      ") and " + std::to_string(j + 1) + " (" + describe(b) +
                                      ") overlap; " + (is_rhythm(a.kind) ? "rhythm" : "sensor") +
                                      " episodes must not overlap each other");
            }
        }
    }
    return Ok{};
}

// check_start keeps start + offsets + durations far from overflow.
void check_start(std::int64_t start_ms) {
    constexpr std::int64_t kLimit = std::numeric_limits<std::int64_t>::max() / 4;
    if (start_ms < -kLimit || start_ms > kLimit) {
        throw std::invalid_argument("simulator: start_ms out of range");
    }
}

}  // namespace

// --- Profiles and episodes ------------------------------------------------------------------

std::span<const std::string_view> patient_profile_names() {
    return kProfileNames;
}

Result<PatientProfile> patient_profile(std::string_view name) {
    if (name == "healthy") {
        return PatientProfile{};
    }
    if (name == "athlete") {
        return PatientProfile{.resting_bpm = 50,
                              .circadian_amplitude_bpm = 5,
                              .activity_bursts_per_hour = 0.25,
                              .activity_extra_bpm = 70,
                              .activity_mean_duration_s = 900,
                              .hrv_sd_ms = 60};
    }
    if (name == "elderly") {
        return PatientProfile{.resting_bpm = 72,
                              .circadian_amplitude_bpm = 4,
                              .activity_bursts_per_hour = 1,
                              .activity_extra_bpm = 20,
                              .activity_mean_duration_s = 240,
                              .hrv_sd_ms = 15,
                              .drift_sd_bpm = 1.5};
    }
    return make_error(ErrorCode::kUnsupported,
                      "unknown patient profile " + quoted(name) + " (healthy, athlete or elderly)");
}

Status validate_profile(const PatientProfile& p) {
    struct Field {
        const char* name;
        double value;
        double lo;
        double hi;
    };
    const Field fields[] = {
        {"resting_bpm", p.resting_bpm, kMinBpm, kMaxBpm},
        {"circadian_amplitude_bpm", p.circadian_amplitude_bpm, 0, 50},
        {"activity_bursts_per_hour", p.activity_bursts_per_hour, 0, 60},
        {"activity_extra_bpm", p.activity_extra_bpm, 0, 150},
        {"activity_mean_duration_s", p.activity_mean_duration_s, 10, 7200},
        {"hrv_sd_ms", p.hrv_sd_ms, 0, 300},
        {"drift_sd_bpm", p.drift_sd_bpm, 0, 30},
        {"utc_offset_minutes", static_cast<double>(p.utc_offset_minutes), -14 * 60, 14 * 60},
    };
    for (const Field& f : fields) {
        if (!(f.value >= f.lo && f.value <= f.hi)) {  // also refuses NaN
            return make_error(ErrorCode::kOutOfRange, std::string("profile ") + f.name + " = " +
                                                          std::to_string(f.value) + " is outside " +
                                                          std::to_string(f.lo) + " to " +
                                                          std::to_string(f.hi));
        }
    }
    if (p.resting_bpm - p.circadian_amplitude_bpm < kMinBpm ||
        p.resting_bpm + p.circadian_amplitude_bpm > kMaxBpm) {
        return make_error(ErrorCode::kOutOfRange,
                          "profile resting_bpm +/- circadian_amplitude_bpm leaves 30-220 bpm");
    }
    return Ok{};
}

const char* episode_kind_name(Episode::Kind kind) {
    switch (kind) {
        case Kind::kTachycardia:
            return "tachycardia";
        case Kind::kBradycardia:
            return "bradycardia";
        case Kind::kIrregular:
            return "irregular";
        case Kind::kContactLoss:
            return "contact-loss";
        case Kind::kDropout:
            return "dropout";
    }
    return "unknown";
}

Result<std::vector<Episode>> parse_episodes(std::string_view script) {
    std::vector<Episode> episodes;
    if (trim(script).empty()) {
        return episodes;
    }
    std::size_t begin = 0;
    while (begin <= script.size()) {
        std::size_t comma = std::min(script.find(',', begin), script.size());
        std::string_view item = trim(script.substr(begin, comma - begin));
        std::string where = "episode " + std::to_string(episodes.size() + 1);
        if (item.empty()) {
            return make_error(ErrorCode::kInvalidEncoding, where + " is empty (stray comma?)");
        }
        where += " " + quoted(item) + ": ";
        auto episode = parse_item(item);
        if (!episode) {
            return make_error(episode.error().code, where + episode.error().message);
        }
        if (auto error = check_episode(episode.value())) {
            return make_error(error->code, where + error->message);
        }
        episodes.push_back(episode.value());
        begin = comma + 1;
    }
    if (auto overlaps = check_overlaps(episodes); !overlaps) {
        return overlaps.error();
    }
    return episodes;
}

Status validate_episodes(std::span<const Episode> episodes) {
    for (std::size_t i = 0; i < episodes.size(); ++i) {
        if (auto error = check_episode(episodes[i])) {
            return make_error(error->code,
                              "episode " + std::to_string(i + 1) + ": " + error->message);
        }
    }
    return check_overlaps(episodes);
}

// --- Simulator ------------------------------------------------------------------------------

class Simulator::Impl {
  public:
    Impl(const PatientProfile& profile, const std::vector<Episode>& episodes, std::uint64_t seed,
         std::int64_t start_ms, std::int64_t end_ms, SampleMode mode)
        : heart_(profile, place(episodes, start_ms, true), seed, start_ms),
          gaps_(place(episodes, start_ms, false)),
          start_ms_(start_ms),
          end_ms_(end_ms),
          mode_(mode),
          loss_cursor_ms_(start_ms),
          watch_tick_ms_(start_ms + kSecondMs) {}

    std::optional<Reading> next() {
        if (done_) {
            return std::nullopt;
        }
        auto reading = mode_ == SampleMode::kBeat ? next_beat_reading() : next_watch_reading();
        done_ = !reading;
        return reading;
    }

  private:
    // place puts the rhythm (or the sensor) episodes on the absolute time line, in order.
    static std::vector<Span> place(const std::vector<Episode>& episodes, std::int64_t start_ms,
                                   bool rhythm) {
        std::vector<Span> spans;
        for (const Episode& e : episodes) {
            if (is_rhythm(e.kind) != rhythm) {
                continue;
            }
            double target = e.target_bpm;
            if (target == 0 && e.kind == Kind::kTachycardia) {
                target = kDefaultTachycardiaBpm;
            } else if (target == 0 && e.kind == Kind::kBradycardia) {
                target = kDefaultBradycardiaBpm;
            }
            spans.push_back(
                {e.kind, start_ms + e.start_ms, start_ms + e.start_ms + e.duration_ms, target});
        }
        std::sort(spans.begin(), spans.end(),
                  [](const Span& a, const Span& b) { return a.start_ms < b.start_ms; });
        return spans;
    }

    const Span* gap_at(std::int64_t t) const {
        for (const Span& g : gaps_) {
            if (g.contains(t)) {
                return &g;
            }
        }
        return nullptr;
    }

    // observed: the sensor saw both ends of the beat's RR interval and nothing in between.
    bool observed(const Beat& b) const {
        if (b.t_ms < start_ms_) {
            return false;
        }
        return std::none_of(gaps_.begin(), gaps_.end(), [&](const Span& g) {
            return g.start_ms <= b.t_ms && b.prev_t_ms < g.end_ms;
        });
    }

    const Beat& pending_beat() {
        if (!pending_) {
            pending_ = heart_.next_beat();
        }
        return *pending_;
    }

    // next_loss_tick: the first 1 Hz contact-loss tick at or after `from`, before the end.
    std::optional<std::int64_t> next_loss_tick(std::int64_t from) const {
        for (const Span& g : gaps_) {
            if (g.kind != Kind::kContactLoss || g.end_ms <= from) {
                continue;
            }
            std::int64_t since = std::max<std::int64_t>(from - g.start_ms, 0);
            std::int64_t tick = g.start_ms + (since + kSecondMs - 1) / kSecondMs * kSecondMs;
            if (tick >= end_ms_) {
                return std::nullopt;
            }
            if (tick < g.end_ms) {
                return tick;
            }
        }
        return std::nullopt;
    }

    std::optional<Reading> next_beat_reading() {
        while (true) {
            const Beat& beat = pending_beat();
            if (auto tick = next_loss_tick(loss_cursor_ms_); tick && *tick <= beat.t_ms) {
                loss_cursor_ms_ = *tick + 1;
                return Reading{*tick, std::nullopt, {}, false};
            }
            if (beat.t_ms >= end_ms_) {
                return std::nullopt;
            }
            Beat b = *std::exchange(pending_, std::nullopt);
            if (observed(b)) {
                return Reading{b.t_ms, 60000.0 / b.rr_ms, {b.rr_ms}, true};
            }
        }
    }

    std::optional<Reading> next_watch_reading() {
        while (true) {
            std::int64_t tick = watch_tick_ms_;
            if (tick > end_ms_) {
                return std::nullopt;
            }
            watch_tick_ms_ += kSecondMs;
            while (pending_beat().t_ms < tick) {
                Beat b = *std::exchange(pending_, std::nullopt);
                if (observed(b)) {
                    recent_.push_back(b);
                }
            }
            while (!recent_.empty() && recent_.front().t_ms < tick - kWatchBpmWindowMs) {
                recent_.pop_front();
            }
            if (const Span* gap = gap_at(tick - kSecondMs / 2)) {
                if (gap->kind == Kind::kDropout) {
                    continue;
                }
                return Reading{tick, std::nullopt, {}, false};
            }
            Reading reading{tick, std::nullopt, {}, true};
            double sum_rr = 0;
            for (const Beat& b : recent_) {
                sum_rr += b.rr_ms;
                if (b.t_ms >= tick - kSecondMs) {
                    reading.rr_ms.push_back(b.rr_ms);
                }
            }
            if (!recent_.empty()) {
                reading.bpm = 60000.0 * static_cast<double>(recent_.size()) / sum_rr;
            }
            return reading;
        }
    }

    Heart heart_;
    std::vector<Span> gaps_;  // sensor episodes, sorted, non-overlapping
    std::int64_t start_ms_;
    std::int64_t end_ms_;
    SampleMode mode_;
    std::optional<Beat> pending_;  // the next beat, not yet consumed
    std::int64_t loss_cursor_ms_;  // kBeat: next contact-loss tick is at or after this
    std::int64_t watch_tick_ms_;   // kWatch: time of the next reading
    std::deque<Beat> recent_;      // kWatch: observed beats of the last 5 s
    bool done_ = false;
};

Simulator::Simulator(const PatientProfile& profile, std::vector<Episode> episodes,
                     std::uint64_t seed, std::int64_t start_ms, std::int64_t end_ms,
                     SampleMode mode) {
    if (auto status = validate_profile(profile); !status) {
        throw std::invalid_argument("simulator: " + status.error().message);
    }
    if (auto status = validate_episodes(episodes); !status) {
        throw std::invalid_argument("simulator: " + status.error().message);
    }
    check_start(start_ms);
    if (end_ms <= start_ms) {
        throw std::invalid_argument("simulator: end_ms must be after start_ms");
    }
    impl_ = std::make_unique<Impl>(profile, episodes, seed, start_ms, end_ms, mode);
}

Simulator Simulator::for_duration(const PatientProfile& profile, std::vector<Episode> episodes,
                                  std::uint64_t seed, std::int64_t start_ms,
                                  std::int64_t duration_ms, SampleMode mode) {
    check_start(start_ms);
    if (duration_ms <= 0 || duration_ms > kMaxSpanMs * 10) {
        throw std::invalid_argument(
            "simulator: duration_ms must be positive and at most 100 years");
    }
    return Simulator(profile, std::move(episodes), seed, start_ms, start_ms + duration_ms, mode);
}

Simulator::Simulator(Simulator&&) noexcept = default;
Simulator& Simulator::operator=(Simulator&&) noexcept = default;
Simulator::~Simulator() = default;

std::optional<Reading> Simulator::next() {
    return impl_->next();
}

}  // namespace cipherpulse::edge
