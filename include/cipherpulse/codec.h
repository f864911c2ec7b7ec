// Packing codec: the statistics of one micro-window of readings as fixed-width slots of ONE
// Paillier plaintext, so that multiplying ciphertexts (adding plaintexts) sums every
// statistic at once and one decryption yields them all.
//
// Format, version 1 (a data format: changing it needs a new schema id)
// ----------------------------------------------------------------------
// A Layout is an ordered list of slots {name, per_record_max} and a = max_records_log2
// (default 32, allowed 32..48): one aggregate may hold at most 2^a records.
//
//   width_i   = bit_length(per_record_max_i * 2^a)       (= bit_length(per_record_max_i) + a)
//   offset_0  = 0, offset_i = offset_{i-1} + width_{i-1}  (slot 0 is the least significant)
//   total_bits = sum of width_i
//   plaintext = sum_i value_i * 2^offset_i
//
// Slot 0 is always "records" with per_record_max 1: a single record carries 1, so in an
// aggregate it counts the records summed. Because every slot can hold the largest possible
// sum of 2^a records, no sum of at most 2^a records carries into its neighbour. A layout
// fits a Paillier modulus n of k bits when total_bits <= k - 1 (then every aggregate < n).
//
// A plaintext is accepted by unpack only when it is >= 0, at most total_bits wide,
// records <= 2^a, and every slot i <= per_record_max_i * records (so records == 0 means all
// slots are 0). Anything else did not come from summing well-formed records.
//
// Schema ids, stored with every record: "<metric>-v1-a<a>", a in decimal without leading
// zeros, e.g. "hr-v1-a32", "hr-v1-a40", "spo2-v1-a32", "skintemp-v1-a32".
//
// hr-v1 slots, least significant first (per-record maximum in brackets):
//   records [1], samples [63], sum_bpm_deci [63*3000], sum_bpm_deci_sq [63*3000^2],
//   hist_00 .. hist_39 [63 each], rr_count [63], sum_rr_ms [63*4000],
//   sum_rr_ms_sq [63*4000^2], rr_diff_count [63], sum_rr_diff_sq [63*4000^2],
//   contact_lost [63].
//   bpm in tenths (deci-bpm, 0..3000 = 0-300 bpm); RR intervals in whole ms, 1..4000.
//   Histogram on the (rounded) bpm: bin 0 = bpm < 30; bin k in 1..38 = [30+5(k-1), 30+5k);
//   bin 39 = bpm >= 220. A contact-lost sample counts only in contact_lost. rr_diff are
//   squared successive differences of RR intervals (RMSSD); the chain of RR intervals
//   continues across consecutive records. total_bits at a=32 is 1991.
// spo2-v1 slots: records [1], samples [63], sum_pct [63*100], sum_pct_sq [63*100^2],
//   below_90 [63], contact_lost [63]; whole percent 0..100, below_90 counts pct < 90.
// skintemp-v1 slots: records [1], samples [63], sum_centi [63*5000],
//   sum_centi_sq [63*5000^2], contact_lost [63]; hundredths of a degree Celsius, 0..5000.
//
// Thread safety: Layout and the codecs are immutable after construction and safe to share
// between threads; builders are not.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cipherpulse/bigint.h"
#include "cipherpulse/result.h"

namespace cipherpulse {

// SlotValue is an unsigned 128-bit integer: the value of one slot. At a = 48 a slot holds up
// to 112 bits (per-record maxima < 2^64 times 2^48), more than 64.
__extension__ typedef unsigned __int128 SlotValue;

// slot_value_to_decimal returns the decimal text of `value` (for logs and JSON).
std::string slot_value_to_decimal(SlotValue value);

// kDefaultMaxRecordsLog2 is the default a: at most 2^32 records per aggregate.
inline constexpr unsigned kDefaultMaxRecordsLog2 = 32;
// kMinMaxRecordsLog2 and kMaxMaxRecordsLog2 bound the a a layout may use.
inline constexpr unsigned kMinMaxRecordsLog2 = 32;
inline constexpr unsigned kMaxMaxRecordsLog2 = 48;

// kMaxSamplesPerRecord is the most samples, RR intervals or contact-lost events one record
// of any schema may count (per counter).
inline constexpr std::uint32_t kMaxSamplesPerRecord = 63;

// SlotSpec describes one slot: its name and the largest value one record may put in it.
struct SlotSpec {
    std::string name;
    std::uint64_t per_record_max;
};

// Layout is the generic slot layout described at the top of this file.
class Layout {
  public:
    // Layout computes widths and offsets. Throws std::invalid_argument if `slots` is empty,
    // slot 0 is not {"records", 1}, a name is empty, a per_record_max is 0, or
    // `max_records_log2` is outside [kMinMaxRecordsLog2, kMaxMaxRecordsLog2].
    explicit Layout(std::vector<SlotSpec> slots,
                    unsigned max_records_log2 = kDefaultMaxRecordsLog2);

    // slot_count returns the number of slots.
    std::size_t slot_count() const noexcept { return slots_.size(); }
    // slot, offset and width describe slot `i`. Throw std::out_of_range if i >= slot_count().
    const SlotSpec& slot(std::size_t i) const;
    std::size_t offset(std::size_t i) const;
    std::size_t width(std::size_t i) const;
    // total_bits returns the sum of all widths: every accepted plaintext is below 2^total_bits.
    std::size_t total_bits() const noexcept { return total_bits_; }
    // max_records_log2 returns a.
    unsigned max_records_log2() const noexcept { return max_records_log2_; }
    // max_records returns 2^a, the most records one aggregate may hold (the bound).
    std::uint64_t max_records() const noexcept { return std::uint64_t{1} << max_records_log2_; }
    // fits_modulus is true iff total_bits() <= modulus_bits - 1, i.e. every aggregate is
    // smaller than a modulus n of `modulus_bits` bits.
    bool fits_modulus(std::size_t modulus_bits) const noexcept;

    // pack packs the slot values of ONE record: records (values[0]) must be 1, or 0 with all
    // other values 0, and every value at most its per_record_max. Throws
    // std::invalid_argument if values.size() != slot_count() or a value breaks these rules.
    BigInt pack(std::span<const SlotValue> values) const;
    // pack_aggregate packs the slot values of a sum of records: it accepts exactly what
    // unpack accepts (records <= 2^a, every slot <= per_record_max * records). Throws
    // std::invalid_argument otherwise or if values.size() != slot_count().
    BigInt pack_aggregate(std::span<const SlotValue> values) const;

    // unpack splits an (untrusted) decrypted plaintext into slot values. Refuses with
    // kOutOfRange a negative plaintext, one wider than total_bits, or a slot above
    // per_record_max * records, and with kLimitExceeded records > 2^a; the message names the
    // slot but never contains a value read from the plaintext.
    [[nodiscard]] Result<std::vector<SlotValue>> unpack(const BigInt& plaintext) const;
    // unpack_into is unpack writing into `out` (no allocation). On error `out` holds
    // unspecified values. Throws std::invalid_argument if out.size() != slot_count().
    [[nodiscard]] Status unpack_into(const BigInt& plaintext, std::span<SlotValue> out) const;

  private:
    // check_sums returns why `values` cannot be a sum of at most 2^a records, if it cannot.
    std::optional<Error> check_sums(std::span<const SlotValue> values) const;
    BigInt pack_checked(std::span<const SlotValue> values) const;

    std::vector<SlotSpec> slots_;
    std::vector<std::size_t> offsets_;
    std::vector<std::size_t> widths_;
    std::size_t total_bits_ = 0;
    unsigned max_records_log2_ = kDefaultMaxRecordsLog2;
};

// Metric names the kind of reading a schema carries.
enum class Metric { kHeartRate, kSpO2, kSkinTemp };

// SchemaId identifies a codec: metric and a. Version 1 is the only version.
struct SchemaId {
    Metric metric = Metric::kHeartRate;
    unsigned max_records_log2 = kDefaultMaxRecordsLog2;
    friend bool operator==(const SchemaId&, const SchemaId&) = default;
};

// parse_schema_id parses "hr-v1-a32" and the like (see the top of this file). Refuses with
// kUnsupported an unknown metric or version, an a outside 32..48, leading zeros, or any
// other text.
[[nodiscard]] Result<SchemaId> parse_schema_id(std::string_view id);

// format_schema_id returns the id text of `id`, e.g. "hr-v1-a32". Throws
// std::invalid_argument if id.max_records_log2 is outside 32..48 or the metric is invalid.
std::string format_schema_id(const SchemaId& id);

// make_layout returns the layout of schema `id`. Throws std::invalid_argument as
// format_schema_id does.
Layout make_layout(const SchemaId& id);

// ---------------------------------------------------------------------------------------
// Heart rate (hr-v1)

// kHeartRateBins is the number of histogram bins of hr-v1.
inline constexpr std::size_t kHeartRateBins = 40;
// kMaxBpmDeci is the largest heart rate, in tenths of a bpm (300.0 bpm).
inline constexpr std::uint32_t kMaxBpmDeci = 3000;
// kMaxRrMs is the longest RR interval in ms; the shortest is 1.
inline constexpr std::uint32_t kMaxRrMs = 4000;

// Derived figures below return std::nullopt when there is no data to derive them from
// (e.g. a mean of zero samples); they never return NaN.

// HeartRateStats holds every hr-v1 slot: one record's statistics, or the sum of many.
// Counts are 64-bit; sums are SlotValue because at a > 32 they may exceed 64 bits.
struct HeartRateStats {
    std::uint64_t records = 0;
    std::uint64_t samples = 0;
    SlotValue sum_bpm_deci = 0;
    SlotValue sum_bpm_deci_sq = 0;
    std::array<std::uint64_t, kHeartRateBins> hist{};
    std::uint64_t rr_count = 0;
    SlotValue sum_rr_ms = 0;
    SlotValue sum_rr_ms_sq = 0;
    std::uint64_t rr_diff_count = 0;
    SlotValue sum_rr_diff_sq = 0;
    std::uint64_t contact_lost = 0;

    // operator+= adds `other` slot by slot: the plaintext image of multiplying ciphertexts.
    // Plain unsigned arithmetic; it cannot overflow within the codec's bound.
    HeartRateStats& operator+=(const HeartRateStats& other);
    friend bool operator==(const HeartRateStats&, const HeartRateStats&) = default;

    // mean_bpm returns the mean heart rate in bpm; nullopt if samples == 0.
    std::optional<double> mean_bpm() const;
    // variance_bpm returns the sample variance (n - 1) in bpm^2, from the sums in long
    // double; nullopt if samples < 2.
    std::optional<double> variance_bpm() const;
    // sd_bpm returns sqrt(variance_bpm()); nullopt if samples < 2.
    std::optional<double> sd_bpm() const;
    // mean_rr_ms returns the mean RR interval in ms; nullopt if rr_count == 0.
    std::optional<double> mean_rr_ms() const;
    // rmssd_ms returns sqrt(sum_rr_diff_sq / rr_diff_count) in ms; nullopt if
    // rr_diff_count == 0.
    std::optional<double> rmssd_ms() const;
    // hist_total returns the sum of the histogram bins (equal to samples for honest data).
    std::uint64_t hist_total() const;
    // share_below returns the share (0..1) of histogram samples below `threshold_bpm`, and
    // share_at_or_above its complement. Exact only when the threshold is a bin edge
    // (30, 35, ..., 220, or <= 0); inside a bin it interpolates linearly, as if the bin's
    // samples were spread evenly over it (bin 0 spanning [0, 30), bin 39 [220, 300]).
    // nullopt if hist_total() == 0. Throws std::invalid_argument if the threshold is NaN.
    std::optional<double> share_below(double threshold_bpm) const;
    std::optional<double> share_at_or_above(double threshold_bpm) const;
};

// HeartRateRecordBuilder accumulates one micro-window of readings on the edge device.
class HeartRateRecordBuilder {
  public:
    // add_sample adds a heart rate in bpm, rounded to the nearest 0.1. Refuses with
    // kOutOfRange a bpm outside [0, 300] or not finite, and with kLimitExceeded a 64th sample
    // of the record; a refused sample changes nothing.
    [[nodiscard]] Status add_sample(double bpm);
    // add_contact_lost counts a reading without skin contact. Refuses with kLimitExceeded the
    // 64th of a record.
    [[nodiscard]] Status add_contact_lost();
    // add_rr adds an RR interval in ms and, if a previous interval is known, the squared
    // difference to it. Refuses with kOutOfRange ms outside 1..4000 and with kLimitExceeded
    // a 64th interval of the record; a refused interval changes nothing. The previous
    // interval is kept across finish(), so differences continue into the next record.
    [[nodiscard]] Status add_rr(std::uint32_t ms);
    // reset_rr_chain forgets the previous RR interval (call it after a gap in the data).
    void reset_rr_chain() noexcept { previous_rr_ms_.reset(); }
    // current returns the statistics accumulated so far (records still 0).
    const HeartRateStats& current() const noexcept { return current_; }
    // finish returns the record (records = 1) and starts an empty one; the RR chain is kept.
    HeartRateStats finish();

  private:
    HeartRateStats current_;
    std::optional<std::uint32_t> previous_rr_ms_;
};

// HeartRateCodec packs and unpacks hr-v1 plaintexts.
class HeartRateCodec {
  public:
    // HeartRateCodec builds the hr-v1 layout for a = max_records_log2. Throws
    // std::invalid_argument if it is outside 32..48.
    explicit HeartRateCodec(unsigned max_records_log2 = kDefaultMaxRecordsLog2);
    // layout returns the slot layout; schema_id its id text, e.g. "hr-v1-a32".
    const Layout& layout() const noexcept { return layout_; }
    std::string schema_id() const;
    // max_records returns 2^a, the most records one aggregate may hold.
    std::uint64_t max_records() const noexcept { return layout_.max_records(); }
    // pack packs one record (records == 1, or an all-zero record); throws
    // std::invalid_argument as Layout::pack does.
    BigInt pack(const HeartRateStats& record) const;
    // pack_aggregate packs a sum of records; throws std::invalid_argument as
    // Layout::pack_aggregate does.
    BigInt pack_aggregate(const HeartRateStats& sum) const;
    // unpack reads a decrypted (untrusted) plaintext; refuses as Layout::unpack does.
    [[nodiscard]] Result<HeartRateStats> unpack(const BigInt& plaintext) const;

  private:
    Layout layout_;
};

// ---------------------------------------------------------------------------------------
// Blood oxygen saturation (spo2-v1)

// SpO2Stats holds every spo2-v1 slot.
struct SpO2Stats {
    std::uint64_t records = 0;
    std::uint64_t samples = 0;
    SlotValue sum_pct = 0;
    SlotValue sum_pct_sq = 0;
    std::uint64_t below_90 = 0;
    std::uint64_t contact_lost = 0;

    // operator+= adds `other` slot by slot.
    SpO2Stats& operator+=(const SpO2Stats& other);
    friend bool operator==(const SpO2Stats&, const SpO2Stats&) = default;

    // mean_pct returns the mean SpO2 in percent; nullopt if samples == 0.
    std::optional<double> mean_pct() const;
    // variance_pct returns the sample variance (n - 1); nullopt if samples < 2.
    std::optional<double> variance_pct() const;
    // sd_pct returns sqrt(variance_pct()); nullopt if samples < 2.
    std::optional<double> sd_pct() const;
    // share_below_90 returns below_90 / samples; nullopt if samples == 0.
    std::optional<double> share_below_90() const;
};

// SpO2RecordBuilder accumulates one micro-window of SpO2 readings.
class SpO2RecordBuilder {
  public:
    // add_sample adds a whole percent. Refuses with kOutOfRange a value outside 0..100 and
    // with kLimitExceeded a 64th sample of the record.
    [[nodiscard]] Status add_sample(int percent);
    // add_contact_lost counts a reading without contact; kLimitExceeded for the 64th.
    [[nodiscard]] Status add_contact_lost();
    // current returns the statistics so far; finish returns the record (records = 1) and
    // starts an empty one.
    const SpO2Stats& current() const noexcept { return current_; }
    SpO2Stats finish();

  private:
    SpO2Stats current_;
};

// SpO2Codec packs and unpacks spo2-v1 plaintexts; see HeartRateCodec for the contract.
class SpO2Codec {
  public:
    // SpO2Codec builds the layout for a = max_records_log2. Throws std::invalid_argument if
    // it is outside 32..48.
    explicit SpO2Codec(unsigned max_records_log2 = kDefaultMaxRecordsLog2);
    // layout, schema_id and max_records: as for HeartRateCodec.
    const Layout& layout() const noexcept { return layout_; }
    std::string schema_id() const;
    std::uint64_t max_records() const noexcept { return layout_.max_records(); }
    // pack packs one record; throws std::invalid_argument as Layout::pack does.
    BigInt pack(const SpO2Stats& record) const;
    // pack_aggregate packs a sum; throws std::invalid_argument as Layout::pack_aggregate does.
    BigInt pack_aggregate(const SpO2Stats& sum) const;
    // unpack reads a decrypted (untrusted) plaintext; refuses as Layout::unpack does.
    [[nodiscard]] Result<SpO2Stats> unpack(const BigInt& plaintext) const;

  private:
    Layout layout_;
};

// ---------------------------------------------------------------------------------------
// Skin temperature (skintemp-v1)

// SkinTempStats holds every skintemp-v1 slot (temperatures in hundredths of a degree C).
struct SkinTempStats {
    std::uint64_t records = 0;
    std::uint64_t samples = 0;
    SlotValue sum_centi = 0;
    SlotValue sum_centi_sq = 0;
    std::uint64_t contact_lost = 0;

    // operator+= adds `other` slot by slot.
    SkinTempStats& operator+=(const SkinTempStats& other);
    friend bool operator==(const SkinTempStats&, const SkinTempStats&) = default;

    // mean_celsius returns the mean temperature in degrees C; nullopt if samples == 0.
    std::optional<double> mean_celsius() const;
    // variance_celsius returns the sample variance (n - 1) in C^2; nullopt if samples < 2.
    std::optional<double> variance_celsius() const;
    // sd_celsius returns sqrt(variance_celsius()); nullopt if samples < 2.
    std::optional<double> sd_celsius() const;
};

// SkinTempRecordBuilder accumulates one micro-window of skin temperature readings.
class SkinTempRecordBuilder {
  public:
    // add_sample adds a temperature in degrees C, rounded to the nearest 0.01. Refuses with
    // kOutOfRange a value outside [0, 50] or not finite, and with kLimitExceeded a 64th
    // sample of the record.
    [[nodiscard]] Status add_sample(double celsius);
    // add_contact_lost counts a reading without contact; kLimitExceeded for the 64th.
    [[nodiscard]] Status add_contact_lost();
    // current returns the statistics so far; finish returns the record (records = 1) and
    // starts an empty one.
    const SkinTempStats& current() const noexcept { return current_; }
    SkinTempStats finish();

  private:
    SkinTempStats current_;
};

// SkinTempCodec packs and unpacks skintemp-v1 plaintexts; see HeartRateCodec for the
// contract.
class SkinTempCodec {
  public:
    // SkinTempCodec builds the layout for a = max_records_log2. Throws std::invalid_argument if
    // it is outside 32..48.
    explicit SkinTempCodec(unsigned max_records_log2 = kDefaultMaxRecordsLog2);
    // layout, schema_id and max_records: as for HeartRateCodec.
    const Layout& layout() const noexcept { return layout_; }
    std::string schema_id() const;
    std::uint64_t max_records() const noexcept { return layout_.max_records(); }
    // pack packs one record; throws std::invalid_argument as Layout::pack does.
    BigInt pack(const SkinTempStats& record) const;
    // pack_aggregate packs a sum; throws std::invalid_argument as Layout::pack_aggregate does.
    BigInt pack_aggregate(const SkinTempStats& sum) const;
    // unpack reads a decrypted (untrusted) plaintext; refuses as Layout::unpack does.
    [[nodiscard]] Result<SkinTempStats> unpack(const BigInt& plaintext) const;

  private:
    Layout layout_;
};

}  // namespace cipherpulse
