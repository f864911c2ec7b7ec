#include "cipherpulse/codec.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "cipherpulse/secure.h"

namespace cipherpulse {
namespace {

constexpr std::size_t kLimbBits = 64;
// Slots are at most 64 + 48 bits wide and may start anywhere in a limb, so one slot touches
// at most three limbs; two zero limbs past the end let put_bits/get_bits skip bounds checks.
constexpr std::size_t kLimbPadding = 2;

constexpr std::size_t kHeartRateSlots = 4 + kHeartRateBins + 6;
constexpr std::size_t kSpO2Slots = 6;
constexpr std::size_t kSkinTempSlots = 5;

// LimbBuffer is zeroed scratch space for the limbs of one plaintext: on the stack for every
// built-in schema, on the heap for larger custom layouts. Wiped on destruction because it
// holds a record's readings.
class LimbBuffer {
  public:
    explicit LimbBuffer(std::size_t count) : count_(count) {
        if (count > small_.size()) {
            heap_.assign(count, 0);
            data_ = heap_.data();
        } else {
            std::fill_n(small_.begin(), count, 0);
            data_ = small_.data();
        }
    }
    LimbBuffer(const LimbBuffer&) = delete;
    LimbBuffer& operator=(const LimbBuffer&) = delete;
    ~LimbBuffer() { secure_wipe(data_, count_ * sizeof(std::uint64_t)); }

    std::uint64_t* data() noexcept { return data_; }

  private:
    std::array<std::uint64_t, 64> small_;
    std::vector<std::uint64_t> heap_;
    std::size_t count_;
    std::uint64_t* data_;
};

// put_bits ORs `value` (< 2^width, width <= 112) into the limbs at bit `offset`.
void put_bits(std::uint64_t* limbs, std::size_t offset, std::size_t width, SlotValue value) {
    std::size_t index = offset / kLimbBits;
    unsigned shift = static_cast<unsigned>(offset % kLimbBits);
    SlotValue low = value << shift;
    limbs[index] |= static_cast<std::uint64_t>(low);
    limbs[index + 1] |= static_cast<std::uint64_t>(low >> 64);
    if (shift + width > 128) {
        limbs[index + 2] |= static_cast<std::uint64_t>(value >> (128 - shift));
    }
}

// get_bits reads `width` (<= 112) bits at bit `offset`.
SlotValue get_bits(const std::uint64_t* limbs, std::size_t offset, std::size_t width) {
    std::size_t index = offset / kLimbBits;
    unsigned shift = static_cast<unsigned>(offset % kLimbBits);
    SlotValue value = (SlotValue{limbs[index]} | (SlotValue{limbs[index + 1]} << 64)) >> shift;
    if (shift + width > 128) {
        value |= SlotValue{limbs[index + 2]} << (128 - shift);
    }
    return value & ((SlotValue{1} << width) - 1);
}

std::size_t limbs_for(std::size_t bits) {
    return (bits + kLimbBits - 1) / kLimbBits;
}

std::optional<double> ratio(long double numerator, long double denominator) {
    if (denominator == 0) {
        return std::nullopt;
    }
    return static_cast<double>(numerator / denominator);
}

// sample_variance of n values given their sum and sum of squares, divided by scale^2.
std::optional<double> sample_variance(std::uint64_t n, SlotValue sum, SlotValue sum_sq,
                                      long double scale) {
    if (n < 2) {
        return std::nullopt;
    }
    long double count = static_cast<long double>(n);
    long double s = static_cast<long double>(sum);
    long double variance = (static_cast<long double>(sum_sq) - s * s / count) / (count - 1);
    // Rounding can push a zero variance slightly negative.
    return static_cast<double>(std::max(variance, 0.0L) / (scale * scale));
}

std::optional<double> sqrt_of(std::optional<double> value) {
    if (!value) {
        return std::nullopt;
    }
    return std::sqrt(*value);
}

Status counter_full(const char* what) {
    return make_error(
        ErrorCode::kLimitExceeded,
        std::string("record already holds ") + std::to_string(kMaxSamplesPerRecord) + " " + what);
}

// ---- slot lists --------------------------------------------------------------------------

std::vector<SlotSpec> heart_rate_slots() {
    constexpr std::uint64_t n = kMaxSamplesPerRecord;
    constexpr std::uint64_t bpm = kMaxBpmDeci;
    constexpr std::uint64_t rr = kMaxRrMs;
    std::vector<SlotSpec> slots = {{"records", 1},
                                   {"samples", n},
                                   {"sum_bpm_deci", n * bpm},
                                   {"sum_bpm_deci_sq", n * bpm * bpm}};
    for (std::size_t k = 0; k < kHeartRateBins; ++k) {
        char name[16];
        std::snprintf(name, sizeof(name), "hist_%02zu", k);
        slots.push_back({name, n});
    }
    slots.insert(slots.end(), {{"rr_count", n},
                               {"sum_rr_ms", n * rr},
                               {"sum_rr_ms_sq", n * rr * rr},
                               {"rr_diff_count", n},
                               {"sum_rr_diff_sq", n * rr * rr},
                               {"contact_lost", n}});
    return slots;
}

std::vector<SlotSpec> spo2_slots() {
    constexpr std::uint64_t n = kMaxSamplesPerRecord;
    return {{"records", 1},       {"samples", n},
            {"sum_pct", n * 100}, {"sum_pct_sq", n * 100 * 100},
            {"below_90", n},      {"contact_lost", n}};
}

std::vector<SlotSpec> skin_temp_slots() {
    constexpr std::uint64_t n = kMaxSamplesPerRecord;
    return {{"records", 1},
            {"samples", n},
            {"sum_centi", n * 5000},
            {"sum_centi_sq", n * 5000 * 5000},
            {"contact_lost", n}};
}

// ---- stats <-> slot values ---------------------------------------------------------------

std::array<SlotValue, kHeartRateSlots> to_slots(const HeartRateStats& s) {
    std::array<SlotValue, kHeartRateSlots> v{};
    v[0] = s.records;
    v[1] = s.samples;
    v[2] = s.sum_bpm_deci;
    v[3] = s.sum_bpm_deci_sq;
    std::copy(s.hist.begin(), s.hist.end(), v.begin() + 4);
    std::size_t i = 4 + kHeartRateBins;
    v[i] = s.rr_count;
    v[i + 1] = s.sum_rr_ms;
    v[i + 2] = s.sum_rr_ms_sq;
    v[i + 3] = s.rr_diff_count;
    v[i + 4] = s.sum_rr_diff_sq;
    v[i + 5] = s.contact_lost;
    return v;
}

// The from_slots functions run after Layout validation: counts are then below 63 * 2^48.
void from_slots(const std::array<SlotValue, kHeartRateSlots>& v, HeartRateStats& s) {
    s.records = static_cast<std::uint64_t>(v[0]);
    s.samples = static_cast<std::uint64_t>(v[1]);
    s.sum_bpm_deci = v[2];
    s.sum_bpm_deci_sq = v[3];
    for (std::size_t k = 0; k < kHeartRateBins; ++k) {
        s.hist[k] = static_cast<std::uint64_t>(v[4 + k]);
    }
    std::size_t i = 4 + kHeartRateBins;
    s.rr_count = static_cast<std::uint64_t>(v[i]);
    s.sum_rr_ms = v[i + 1];
    s.sum_rr_ms_sq = v[i + 2];
    s.rr_diff_count = static_cast<std::uint64_t>(v[i + 3]);
    s.sum_rr_diff_sq = v[i + 4];
    s.contact_lost = static_cast<std::uint64_t>(v[i + 5]);
}

std::array<SlotValue, kSpO2Slots> to_slots(const SpO2Stats& s) {
    return {s.records, s.samples, s.sum_pct, s.sum_pct_sq, s.below_90, s.contact_lost};
}

void from_slots(const std::array<SlotValue, kSpO2Slots>& v, SpO2Stats& s) {
    s.records = static_cast<std::uint64_t>(v[0]);
    s.samples = static_cast<std::uint64_t>(v[1]);
    s.sum_pct = v[2];
    s.sum_pct_sq = v[3];
    s.below_90 = static_cast<std::uint64_t>(v[4]);
    s.contact_lost = static_cast<std::uint64_t>(v[5]);
}

std::array<SlotValue, kSkinTempSlots> to_slots(const SkinTempStats& s) {
    return {s.records, s.samples, s.sum_centi, s.sum_centi_sq, s.contact_lost};
}

void from_slots(const std::array<SlotValue, kSkinTempSlots>& v, SkinTempStats& s) {
    s.records = static_cast<std::uint64_t>(v[0]);
    s.samples = static_cast<std::uint64_t>(v[1]);
    s.sum_centi = v[2];
    s.sum_centi_sq = v[3];
    s.contact_lost = static_cast<std::uint64_t>(v[4]);
}

template <class Stats, std::size_t N>
Result<Stats> unpack_stats(const Layout& layout, const SchemaId& schema, const BigInt& plaintext) {
    std::array<SlotValue, N> values;
    Status status = layout.unpack_into(plaintext, values);
    if (!status) {
        return make_error(status.error().code,
                          format_schema_id(schema) + ": " + status.error().message);
    }
    Stats stats;
    from_slots(values, stats);
    return stats;
}

Layout checked_layout(const SchemaId& id, std::size_t expected_slots) {
    Layout layout = make_layout(id);
    if (layout.slot_count() != expected_slots) {
        throw std::logic_error("codec: slot list does not match its stats struct");
    }
    return layout;
}

struct MetricName {
    Metric metric;
    std::string_view prefix;
};
constexpr std::array<MetricName, 3> kMetricNames = {{
    {Metric::kHeartRate, "hr"},
    {Metric::kSpO2, "spo2"},
    {Metric::kSkinTemp, "skintemp"},
}};
constexpr std::string_view kVersionInfix = "-v1-a";

}  // namespace

std::string slot_value_to_decimal(SlotValue value) {
    std::string digits;
    do {
        digits.push_back(static_cast<char>('0' + static_cast<int>(value % 10)));
        value /= 10;
    } while (value != 0);
    std::reverse(digits.begin(), digits.end());
    return digits;
}

// ---- Layout ------------------------------------------------------------------------------

Layout::Layout(std::vector<SlotSpec> slots, unsigned max_records_log2)
    : slots_(std::move(slots)), max_records_log2_(max_records_log2) {
    if (max_records_log2 < kMinMaxRecordsLog2 || max_records_log2 > kMaxMaxRecordsLog2) {
        throw std::invalid_argument("Layout: max_records_log2 must be in " +
                                    std::to_string(kMinMaxRecordsLog2) + ".." +
                                    std::to_string(kMaxMaxRecordsLog2));
    }
    if (slots_.empty() || slots_[0].name != "records" || slots_[0].per_record_max != 1) {
        throw std::invalid_argument("Layout: slot 0 must be {\"records\", 1}");
    }
    offsets_.reserve(slots_.size());
    widths_.reserve(slots_.size());
    for (const SlotSpec& slot : slots_) {
        if (slot.name.empty() || slot.per_record_max == 0) {
            throw std::invalid_argument("Layout: every slot needs a name and a per_record_max > 0");
        }
        std::size_t width =
            static_cast<std::size_t>(std::bit_width(slot.per_record_max)) + max_records_log2;
        offsets_.push_back(total_bits_);
        widths_.push_back(width);
        total_bits_ += width;
    }
}

const SlotSpec& Layout::slot(std::size_t i) const {
    return slots_.at(i);
}
std::size_t Layout::offset(std::size_t i) const {
    return offsets_.at(i);
}
std::size_t Layout::width(std::size_t i) const {
    return widths_.at(i);
}

bool Layout::fits_modulus(std::size_t modulus_bits) const noexcept {
    return modulus_bits >= 1 && total_bits_ <= modulus_bits - 1;
}

std::optional<Error> Layout::check_sums(std::span<const SlotValue> values) const {
    SlotValue records = values[0];
    if (records > max_records()) {
        return make_error(ErrorCode::kLimitExceeded, "slot 'records' exceeds the bound of 2^" +
                                                         std::to_string(max_records_log2_) +
                                                         " records per aggregate");
    }
    for (std::size_t i = 1; i < slots_.size(); ++i) {
        // per_record_max < 2^64 and records <= 2^48: the product fits in 128 bits.
        if (values[i] > SlotValue{slots_[i].per_record_max} * records) {
            return make_error(ErrorCode::kOutOfRange, "slot '" + slots_[i].name +
                                                          "' exceeds its per-record maximum (" +
                                                          std::to_string(slots_[i].per_record_max) +
                                                          ") times the number of records");
        }
    }
    return std::nullopt;
}

BigInt Layout::pack_checked(std::span<const SlotValue> values) const {
    std::size_t count = limbs_for(total_bits_);
    LimbBuffer limbs(count + kLimbPadding);
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        put_bits(limbs.data(), offsets_[i], widths_[i], values[i]);
    }
    BigInt out;
    mpz_import(out.get(), count, -1, sizeof(std::uint64_t), 0, 0, limbs.data());
    return out;
}

BigInt Layout::pack(std::span<const SlotValue> values) const {
    if (values.size() != slots_.size()) {
        throw std::invalid_argument("Layout::pack: wrong number of slot values");
    }
    if (values[0] > 1) {
        throw std::invalid_argument(
            "Layout::pack: one record has records = 1 (use pack_aggregate for sums)");
    }
    if (auto error = check_sums(values)) {
        throw std::invalid_argument("Layout::pack: " + error->message);
    }
    return pack_checked(values);
}

BigInt Layout::pack_aggregate(std::span<const SlotValue> values) const {
    if (values.size() != slots_.size()) {
        throw std::invalid_argument("Layout::pack_aggregate: wrong number of slot values");
    }
    if (auto error = check_sums(values)) {
        throw std::invalid_argument("Layout::pack_aggregate: " + error->message);
    }
    return pack_checked(values);
}

Status Layout::unpack_into(const BigInt& plaintext, std::span<SlotValue> out) const {
    if (out.size() != slots_.size()) {
        throw std::invalid_argument("Layout::unpack_into: wrong number of output slots");
    }
    mpz_srcptr z = plaintext.get();
    if (mpz_sgn(z) < 0) {
        return make_error(ErrorCode::kOutOfRange, "negative plaintext");
    }
    if (mpz_sgn(z) != 0 && mpz_sizeinbase(z, 2) > total_bits_) {
        return make_error(ErrorCode::kOutOfRange, "plaintext wider than the layout's " +
                                                      std::to_string(total_bits_) + " bits");
    }
    std::size_t count = limbs_for(total_bits_);
    LimbBuffer limbs(count + kLimbPadding);
    std::size_t written = 0;
    mpz_export(limbs.data(), &written, -1, sizeof(std::uint64_t), 0, 0, z);
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        out[i] = get_bits(limbs.data(), offsets_[i], widths_[i]);
    }
    if (auto error = check_sums(out)) {
        return *error;
    }
    return Ok{};
}

Result<std::vector<SlotValue>> Layout::unpack(const BigInt& plaintext) const {
    std::vector<SlotValue> values(slots_.size());
    Status status = unpack_into(plaintext, values);
    if (!status) {
        return status.error();
    }
    return values;
}

// ---- schema ids --------------------------------------------------------------------------

Result<SchemaId> parse_schema_id(std::string_view id) {
    const Error unsupported = make_error(
        ErrorCode::kUnsupported,
        "unsupported codec schema id (expected hr-v1-aNN, spo2-v1-aNN or skintemp-v1-aNN, "
        "NN in 32..48)");
    for (const MetricName& name : kMetricNames) {
        if (!id.starts_with(name.prefix) ||
            !id.substr(name.prefix.size()).starts_with(kVersionInfix)) {
            continue;
        }
        std::string_view digits = id.substr(name.prefix.size() + kVersionInfix.size());
        if (digits.size() != 2 || digits[0] < '1' || digits[0] > '9' || digits[1] < '0' ||
            digits[1] > '9') {
            return unsupported;
        }
        unsigned a = static_cast<unsigned>((digits[0] - '0') * 10 + (digits[1] - '0'));
        if (a < kMinMaxRecordsLog2 || a > kMaxMaxRecordsLog2) {
            return unsupported;
        }
        return SchemaId{name.metric, a};
    }
    return unsupported;
}

std::string format_schema_id(const SchemaId& id) {
    if (id.max_records_log2 < kMinMaxRecordsLog2 || id.max_records_log2 > kMaxMaxRecordsLog2) {
        throw std::invalid_argument("format_schema_id: max_records_log2 outside 32..48");
    }
    for (const MetricName& name : kMetricNames) {
        if (name.metric == id.metric) {
            return std::string(name.prefix) + std::string(kVersionInfix) +
                   std::to_string(id.max_records_log2);
        }
    }
    throw std::invalid_argument("format_schema_id: unknown metric");
}

Layout make_layout(const SchemaId& id) {
    switch (id.metric) {
        case Metric::kHeartRate:
            return Layout(heart_rate_slots(), id.max_records_log2);
        case Metric::kSpO2:
            return Layout(spo2_slots(), id.max_records_log2);
        case Metric::kSkinTemp:
            return Layout(skin_temp_slots(), id.max_records_log2);
    }
    throw std::invalid_argument("make_layout: unknown metric");
}

// ---- heart rate --------------------------------------------------------------------------

HeartRateStats& HeartRateStats::operator+=(const HeartRateStats& other) {
    records += other.records;
    samples += other.samples;
    sum_bpm_deci += other.sum_bpm_deci;
    sum_bpm_deci_sq += other.sum_bpm_deci_sq;
    for (std::size_t k = 0; k < kHeartRateBins; ++k) {
        hist[k] += other.hist[k];
    }
    rr_count += other.rr_count;
    sum_rr_ms += other.sum_rr_ms;
    sum_rr_ms_sq += other.sum_rr_ms_sq;
    rr_diff_count += other.rr_diff_count;
    sum_rr_diff_sq += other.sum_rr_diff_sq;
    contact_lost += other.contact_lost;
    return *this;
}

std::optional<double> HeartRateStats::mean_bpm() const {
    return ratio(static_cast<long double>(sum_bpm_deci) / 10, static_cast<long double>(samples));
}

std::optional<double> HeartRateStats::variance_bpm() const {
    return sample_variance(samples, sum_bpm_deci, sum_bpm_deci_sq, 10);
}

std::optional<double> HeartRateStats::sd_bpm() const {
    return sqrt_of(variance_bpm());
}

std::optional<double> HeartRateStats::mean_rr_ms() const {
    return ratio(static_cast<long double>(sum_rr_ms), static_cast<long double>(rr_count));
}

std::optional<double> HeartRateStats::rmssd_ms() const {
    return sqrt_of(
        ratio(static_cast<long double>(sum_rr_diff_sq), static_cast<long double>(rr_diff_count)));
}

std::uint64_t HeartRateStats::hist_total() const {
    std::uint64_t total = 0;
    for (std::uint64_t count : hist) {
        total += count;
    }
    return total;
}

std::optional<double> HeartRateStats::share_below(double threshold_bpm) const {
    if (std::isnan(threshold_bpm)) {
        throw std::invalid_argument("share_below: threshold is NaN");
    }
    long double below = 0;
    for (std::size_t k = 0; k < kHeartRateBins; ++k) {
        long double low = k == 0 ? 0.0L : 30.0L + 5.0L * static_cast<long double>(k - 1);
        long double high = k == 0 ? 30.0L : (k + 1 == kHeartRateBins ? 300.0L : low + 5.0L);
        if (threshold_bpm >= high) {
            below += static_cast<long double>(hist[k]);
        } else if (threshold_bpm > low) {
            below += static_cast<long double>(hist[k]) * (threshold_bpm - low) / (high - low);
        }
    }
    return ratio(below, static_cast<long double>(hist_total()));
}

std::optional<double> HeartRateStats::share_at_or_above(double threshold_bpm) const {
    std::optional<double> below = share_below(threshold_bpm);
    if (!below) {
        return std::nullopt;
    }
    return 1.0 - *below;
}

Status HeartRateRecordBuilder::add_sample(double bpm) {
    if (!(bpm >= 0.0 && bpm <= 300.0)) {  // also refuses NaN
        return make_error(ErrorCode::kOutOfRange, "heart rate outside 0..300 bpm");
    }
    if (current_.samples >= kMaxSamplesPerRecord) {
        return counter_full("heart-rate samples");
    }
    auto deci = static_cast<std::uint32_t>(std::lround(bpm * 10.0));
    std::size_t bin = deci < 300 ? 0 : (deci >= 2200 ? kHeartRateBins - 1 : 1 + (deci - 300) / 50);
    current_.samples += 1;
    current_.sum_bpm_deci += deci;
    current_.sum_bpm_deci_sq += SlotValue{deci} * deci;
    current_.hist[bin] += 1;
    return Ok{};
}

Status HeartRateRecordBuilder::add_contact_lost() {
    if (current_.contact_lost >= kMaxSamplesPerRecord) {
        return counter_full("contact-lost events");
    }
    current_.contact_lost += 1;
    return Ok{};
}

Status HeartRateRecordBuilder::add_rr(std::uint32_t ms) {
    if (ms < 1 || ms > kMaxRrMs) {
        return make_error(ErrorCode::kOutOfRange, "RR interval outside 1..4000 ms");
    }
    if (current_.rr_count >= kMaxSamplesPerRecord) {
        return counter_full("RR intervals");
    }
    current_.rr_count += 1;
    current_.sum_rr_ms += ms;
    current_.sum_rr_ms_sq += SlotValue{ms} * ms;
    if (previous_rr_ms_) {
        std::uint64_t diff = ms > *previous_rr_ms_ ? ms - *previous_rr_ms_ : *previous_rr_ms_ - ms;
        current_.rr_diff_count += 1;
        current_.sum_rr_diff_sq += SlotValue{diff} * diff;
    }
    previous_rr_ms_ = ms;
    return Ok{};
}

HeartRateStats HeartRateRecordBuilder::finish() {
    HeartRateStats record = current_;
    record.records = 1;
    current_ = HeartRateStats{};
    return record;
}

HeartRateCodec::HeartRateCodec(unsigned max_records_log2)
    : layout_(checked_layout(SchemaId{Metric::kHeartRate, max_records_log2}, kHeartRateSlots)) {}

std::string HeartRateCodec::schema_id() const {
    return format_schema_id(SchemaId{Metric::kHeartRate, layout_.max_records_log2()});
}

BigInt HeartRateCodec::pack(const HeartRateStats& record) const {
    return layout_.pack(to_slots(record));
}

BigInt HeartRateCodec::pack_aggregate(const HeartRateStats& sum) const {
    return layout_.pack_aggregate(to_slots(sum));
}

Result<HeartRateStats> HeartRateCodec::unpack(const BigInt& plaintext) const {
    return unpack_stats<HeartRateStats, kHeartRateSlots>(
        layout_, SchemaId{Metric::kHeartRate, layout_.max_records_log2()}, plaintext);
}

// ---- SpO2 --------------------------------------------------------------------------------

SpO2Stats& SpO2Stats::operator+=(const SpO2Stats& other) {
    records += other.records;
    samples += other.samples;
    sum_pct += other.sum_pct;
    sum_pct_sq += other.sum_pct_sq;
    below_90 += other.below_90;
    contact_lost += other.contact_lost;
    return *this;
}

std::optional<double> SpO2Stats::mean_pct() const {
    return ratio(static_cast<long double>(sum_pct), static_cast<long double>(samples));
}

std::optional<double> SpO2Stats::variance_pct() const {
    return sample_variance(samples, sum_pct, sum_pct_sq, 1);
}

std::optional<double> SpO2Stats::sd_pct() const {
    return sqrt_of(variance_pct());
}

std::optional<double> SpO2Stats::share_below_90() const {
    return ratio(static_cast<long double>(below_90), static_cast<long double>(samples));
}

Status SpO2RecordBuilder::add_sample(int percent) {
    if (percent < 0 || percent > 100) {
        return make_error(ErrorCode::kOutOfRange, "SpO2 outside 0..100 %");
    }
    if (current_.samples >= kMaxSamplesPerRecord) {
        return counter_full("SpO2 samples");
    }
    auto pct = static_cast<std::uint32_t>(percent);
    current_.samples += 1;
    current_.sum_pct += pct;
    current_.sum_pct_sq += SlotValue{pct} * pct;
    current_.below_90 += pct < 90 ? 1 : 0;
    return Ok{};
}

Status SpO2RecordBuilder::add_contact_lost() {
    if (current_.contact_lost >= kMaxSamplesPerRecord) {
        return counter_full("contact-lost events");
    }
    current_.contact_lost += 1;
    return Ok{};
}

SpO2Stats SpO2RecordBuilder::finish() {
    SpO2Stats record = current_;
    record.records = 1;
    current_ = SpO2Stats{};
    return record;
}

SpO2Codec::SpO2Codec(unsigned max_records_log2)
    : layout_(checked_layout(SchemaId{Metric::kSpO2, max_records_log2}, kSpO2Slots)) {}

std::string SpO2Codec::schema_id() const {
    return format_schema_id(SchemaId{Metric::kSpO2, layout_.max_records_log2()});
}

BigInt SpO2Codec::pack(const SpO2Stats& record) const {
    return layout_.pack(to_slots(record));
}

BigInt SpO2Codec::pack_aggregate(const SpO2Stats& sum) const {
    return layout_.pack_aggregate(to_slots(sum));
}

Result<SpO2Stats> SpO2Codec::unpack(const BigInt& plaintext) const {
    return unpack_stats<SpO2Stats, kSpO2Slots>(
        layout_, SchemaId{Metric::kSpO2, layout_.max_records_log2()}, plaintext);
}

// ---- skin temperature --------------------------------------------------------------------

SkinTempStats& SkinTempStats::operator+=(const SkinTempStats& other) {
    records += other.records;
    samples += other.samples;
    sum_centi += other.sum_centi;
    sum_centi_sq += other.sum_centi_sq;
    contact_lost += other.contact_lost;
    return *this;
}

std::optional<double> SkinTempStats::mean_celsius() const {
    return ratio(static_cast<long double>(sum_centi) / 100, static_cast<long double>(samples));
}

std::optional<double> SkinTempStats::variance_celsius() const {
    return sample_variance(samples, sum_centi, sum_centi_sq, 100);
}

std::optional<double> SkinTempStats::sd_celsius() const {
    return sqrt_of(variance_celsius());
}

Status SkinTempRecordBuilder::add_sample(double celsius) {
    if (!(celsius >= 0.0 && celsius <= 50.0)) {  // also refuses NaN
        return make_error(ErrorCode::kOutOfRange, "skin temperature outside 0..50 C");
    }
    if (current_.samples >= kMaxSamplesPerRecord) {
        return counter_full("skin temperature samples");
    }
    auto centi = static_cast<std::uint32_t>(std::lround(celsius * 100.0));
    current_.samples += 1;
    current_.sum_centi += centi;
    current_.sum_centi_sq += SlotValue{centi} * centi;
    return Ok{};
}

Status SkinTempRecordBuilder::add_contact_lost() {
    if (current_.contact_lost >= kMaxSamplesPerRecord) {
        return counter_full("contact-lost events");
    }
    current_.contact_lost += 1;
    return Ok{};
}

SkinTempStats SkinTempRecordBuilder::finish() {
    SkinTempStats record = current_;
    record.records = 1;
    current_ = SkinTempStats{};
    return record;
}

SkinTempCodec::SkinTempCodec(unsigned max_records_log2)
    : layout_(checked_layout(SchemaId{Metric::kSkinTemp, max_records_log2}, kSkinTempSlots)) {}

std::string SkinTempCodec::schema_id() const {
    return format_schema_id(SchemaId{Metric::kSkinTemp, layout_.max_records_log2()});
}

BigInt SkinTempCodec::pack(const SkinTempStats& record) const {
    return layout_.pack(to_slots(record));
}

BigInt SkinTempCodec::pack_aggregate(const SkinTempStats& sum) const {
    return layout_.pack_aggregate(to_slots(sum));
}

Result<SkinTempStats> SkinTempCodec::unpack(const BigInt& plaintext) const {
    return unpack_stats<SkinTempStats, kSkinTempSlots>(
        layout_, SchemaId{Metric::kSkinTemp, layout_.max_records_log2()}, plaintext);
}

}  // namespace cipherpulse
