#include "cipherpulse/codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

namespace cipherpulse {
namespace {

static_assert(sizeof(unsigned long) == 8, "the helpers below pass 64-bit halves to mpz_*_ui");

using Slots = std::vector<SlotSpec>;
constexpr double kInf = std::numeric_limits<double>::infinity();

// ---- independent helpers: plaintexts built with mpz shifts, not with the codec ------------

BigInt big(SlotValue value) {
    BigInt out = BigInt::from_u64(static_cast<std::uint64_t>(value >> 64));
    mpz_mul_2exp(out.get(), out.get(), 64);
    mpz_add_ui(out.get(), out.get(), static_cast<unsigned long>(static_cast<std::uint64_t>(value)));
    return out;
}

BigInt shifted(const BigInt& value, std::size_t bits) {
    BigInt out;
    mpz_mul_2exp(out.get(), value.get(), bits);
    return out;
}

BigInt power_of_two(std::size_t bits) {
    return shifted(BigInt(1), bits);
}

// place returns sum_i values[i] << (widths[0] + ... + widths[i-1]).
BigInt place(const std::vector<SlotValue>& values, const std::vector<std::size_t>& widths) {
    EXPECT_EQ(values.size(), widths.size());
    BigInt acc;
    std::size_t offset = 0;
    for (std::size_t i = 0; i < values.size(); ++i) {
        BigInt term = shifted(big(values[i]), offset);
        mpz_add(acc.get(), acc.get(), term.get());
        offset += widths[i];
    }
    return acc;
}

std::size_t sum_of(const std::vector<std::size_t>& widths) {
    std::size_t total = 0;
    for (std::size_t w : widths) {
        total += w;
    }
    return total;
}

// hr_widths: bit lengths of the per-record maxima worked out by hand, plus a:
// 1 -> 1; 63 -> 6; 63*3000 = 189000 in [2^17, 2^18) -> 18; 63*3000^2 = 567000000 in
// [2^29, 2^30) -> 30; 63*4000 = 252000 -> 18; 63*4000^2 = 1008000000 in [2^29, 2^30) -> 30.
std::vector<std::size_t> hr_widths(unsigned a) {
    std::vector<std::size_t> widths = {1, 6, 18, 30};
    widths.insert(widths.end(), kHeartRateBins, 6);
    widths.insert(widths.end(), {6, 18, 30, 6, 30, 6});
    for (std::size_t& w : widths) {
        w += a;
    }
    return widths;
}

// spo2: 6300 in [2^12, 2^13) -> 13; 630000 in [2^19, 2^20) -> 20.
std::vector<std::size_t> spo2_widths(unsigned a) {
    std::vector<std::size_t> widths = {1, 6, 13, 20, 6, 6};
    for (std::size_t& w : widths) {
        w += a;
    }
    return widths;
}

// skintemp: 315000 in [2^18, 2^19) -> 19; 1575000000 in [2^30, 2^31) -> 31.
std::vector<std::size_t> skin_temp_widths(unsigned a) {
    std::vector<std::size_t> widths = {1, 6, 19, 31, 6};
    for (std::size_t& w : widths) {
        w += a;
    }
    return widths;
}

// The slot values of a HeartRateStats in the order the spec lists them.
std::vector<SlotValue> hr_values(const HeartRateStats& s) {
    std::vector<SlotValue> v = {s.records, s.samples, s.sum_bpm_deci, s.sum_bpm_deci_sq};
    v.insert(v.end(), s.hist.begin(), s.hist.end());
    v.insert(v.end(), {s.rr_count, s.sum_rr_ms, s.sum_rr_ms_sq, s.rr_diff_count, s.sum_rr_diff_sq,
                       s.contact_lost});
    return v;
}

HeartRateStats hr_max_record() {
    HeartRateStats s;
    s.records = 1;
    s.samples = 63;
    s.sum_bpm_deci = 63 * 3000;
    s.sum_bpm_deci_sq = 63ULL * 3000 * 3000;
    s.hist.fill(63);
    s.rr_count = 63;
    s.sum_rr_ms = 63 * 4000;
    s.sum_rr_ms_sq = 63ULL * 4000 * 4000;
    s.rr_diff_count = 63;
    s.sum_rr_diff_sq = 63ULL * 4000 * 4000;
    s.contact_lost = 63;
    return s;
}

// A realistic record: 60, 70, 80 bpm; RR 1000, 900, 1100, 1000 ms; one contact lost.
HeartRateStats hr_example_record() {
    HeartRateRecordBuilder builder;
    for (double bpm : {60.0, 70.0, 80.0}) {
        EXPECT_TRUE(builder.add_sample(bpm).ok());
    }
    for (std::uint32_t rr : {1000u, 900u, 1100u, 1000u}) {
        EXPECT_TRUE(builder.add_rr(rr).ok());
    }
    EXPECT_TRUE(builder.add_contact_lost().ok());
    return builder.finish();
}

// expect_every_slot_survives_bound: for every slot, 2^a records with that slot at its
// per-record maximum (and all others 0) unpack to exactly max * 2^a there, 2^a records,
// and zeros everywhere else; one more such record is refused.
void expect_every_slot_survives_bound(const Layout& layout) {
    unsigned a = layout.max_records_log2();
    for (std::size_t i = 0; i < layout.slot_count(); ++i) {
        SCOPED_TRACE(layout.slot(i).name);
        std::vector<SlotValue> record(layout.slot_count(), 0);
        record[0] = 1;
        record[i] = layout.slot(i).per_record_max;
        BigInt aggregate = shifted(layout.pack(record), a);  // 2^a copies of the record
        auto values = layout.unpack(aggregate);
        ASSERT_TRUE(values.ok()) << values.error().message;
        for (std::size_t j = 0; j < layout.slot_count(); ++j) {
            SlotValue expected = 0;
            if (j == 0) {
                expected = SlotValue{1} << a;
            }
            if (j == i) {
                expected = SlotValue{layout.slot(i).per_record_max} << a;
            }
            EXPECT_EQ(values.value()[j], expected) << "slot " << layout.slot(j).name;
        }
        // The width is tight: the largest sum needs every bit of its slot.
        EXPECT_EQ(big(SlotValue{layout.slot(i).per_record_max} << a).bit_length(), layout.width(i));
        if (i > 0) {
            // One more unit in slot i alone: above per_record_max * records, refused.
            BigInt plus_one = aggregate;
            mpz_add(plus_one.get(), plus_one.get(), power_of_two(layout.offset(i)).get());
            auto above = layout.unpack(plus_one);
            ASSERT_FALSE(above.ok());
            EXPECT_EQ(above.error().code, ErrorCode::kOutOfRange);
            EXPECT_NE(above.error().message.find("'" + layout.slot(i).name + "'"),
                      std::string::npos);
            // The same with 3 records: 3 * max is accepted, 3 * max + 1 is not.
            std::vector<SlotValue> three(layout.slot_count(), 0);
            three[0] = 3;
            three[i] = SlotValue{3} * layout.slot(i).per_record_max;
            BigInt three_packed = layout.pack_aggregate(three);
            EXPECT_TRUE(layout.unpack(three_packed).ok());
            mpz_add(three_packed.get(), three_packed.get(), power_of_two(layout.offset(i)).get());
            EXPECT_FALSE(layout.unpack(three_packed).ok());
        }
        BigInt one_more = layout.pack(record);
        mpz_add(one_more.get(), one_more.get(), aggregate.get());
        auto refused = layout.unpack(one_more);
        ASSERT_FALSE(refused.ok());
        // Too many records; or, when the last slot overflows, a plaintext too wide.
        if (i + 1 < layout.slot_count() || refused.error().code != ErrorCode::kOutOfRange) {
            EXPECT_EQ(refused.error().code, ErrorCode::kLimitExceeded);
        }
    }
}

// ---- generic layout ----------------------------------------------------------------------

TEST(CodecTest, LayoutRejectsBadConfiguration) {
    Slots ok = {{"records", 1}, {"x", 5}};
    EXPECT_THROW(Layout(ok, 31), std::invalid_argument);
    EXPECT_THROW(Layout(ok, 49), std::invalid_argument);
    EXPECT_NO_THROW(Layout(ok, 32));
    EXPECT_NO_THROW(Layout(ok, 48));
    EXPECT_THROW(Layout(Slots{}), std::invalid_argument);
    EXPECT_THROW(Layout(Slots{{"x", 5}}), std::invalid_argument);
    EXPECT_THROW(Layout(Slots{{"records", 2}}), std::invalid_argument);
    EXPECT_THROW(Layout(Slots{{"records", 1}, {"x", 0}}), std::invalid_argument);
    EXPECT_THROW(Layout(Slots{{"records", 1}, {"", 3}}), std::invalid_argument);
}

TEST(CodecTest, LayoutWidthsOffsetsAndModulusFit) {
    // 5 -> 3 bits, 2^64 - 1 -> 64 bits.
    Layout layout(Slots{{"records", 1}, {"x", 5}, {"big", UINT64_MAX}}, 32);
    EXPECT_EQ(layout.width(0), 33u);
    EXPECT_EQ(layout.width(1), 35u);
    EXPECT_EQ(layout.width(2), 96u);
    EXPECT_EQ(layout.offset(0), 0u);
    EXPECT_EQ(layout.offset(1), 33u);
    EXPECT_EQ(layout.offset(2), 68u);
    EXPECT_EQ(layout.total_bits(), 164u);
    EXPECT_EQ(layout.max_records(), std::uint64_t{1} << 32);
    EXPECT_TRUE(layout.fits_modulus(165));
    EXPECT_FALSE(layout.fits_modulus(164));
    EXPECT_FALSE(layout.fits_modulus(0));
    EXPECT_THROW((void)layout.width(3), std::out_of_range);
    expect_every_slot_survives_bound(layout);
}

TEST(CodecTest, LayoutPackPlacesSlotsAcrossLimbBoundaries) {
    // A 96-bit slot starting at bit 68 spans three limbs at a = 32; at a = 48 the last slot
    // is 112 bits wide.
    for (unsigned a : {32u, 48u}) {
        Layout layout(Slots{{"records", 1}, {"x", 5}, {"big", UINT64_MAX}}, a);
        std::vector<SlotValue> record = {1, 5, UINT64_MAX};
        std::vector<std::size_t> widths = {1 + a, 3 + a, 64 + a};
        EXPECT_EQ(layout.pack(record), place(record, widths));
        std::vector<SlotValue> sum = {SlotValue{1} << a, SlotValue{5} << a,
                                      SlotValue{UINT64_MAX} << a};
        BigInt packed = layout.pack_aggregate(sum);
        EXPECT_EQ(packed, place(sum, widths));
        auto back = layout.unpack(packed);
        ASSERT_TRUE(back.ok());
        EXPECT_EQ(back.value(), sum);
    }
}

TEST(CodecTest, LayoutPackIsForOneRecord) {
    Layout layout(Slots{{"records", 1}, {"x", 5}});
    EXPECT_THROW(layout.pack(std::vector<SlotValue>{1}), std::invalid_argument);
    EXPECT_THROW(layout.pack(std::vector<SlotValue>{1, 6}), std::invalid_argument);
    EXPECT_THROW(layout.pack(std::vector<SlotValue>{2, 2}), std::invalid_argument);
    EXPECT_THROW(layout.pack(std::vector<SlotValue>{0, 1}), std::invalid_argument);
    EXPECT_EQ(layout.pack(std::vector<SlotValue>{0, 0}), BigInt(0));
    EXPECT_NO_THROW(layout.pack_aggregate(std::vector<SlotValue>{2, 10}));
    EXPECT_THROW(layout.pack_aggregate(std::vector<SlotValue>{2, 11}), std::invalid_argument);
    EXPECT_THROW(layout.pack_aggregate(std::vector<SlotValue>{(SlotValue{1} << 32) + 1, 0}),
                 std::invalid_argument);
    std::vector<SlotValue> out(3);
    EXPECT_THROW((void)layout.unpack_into(BigInt(1), out), std::invalid_argument);
}

TEST(CodecTest, SlotValueToDecimal) {
    EXPECT_EQ(slot_value_to_decimal(0), "0");
    EXPECT_EQ(slot_value_to_decimal(SlotValue{1} << 64), "18446744073709551616");
    EXPECT_EQ(slot_value_to_decimal(~SlotValue{0}), "340282366920938463463374607431768211455");
}

// ---- schema ids --------------------------------------------------------------------------

TEST(CodecTest, SchemaIdRoundTrip) {
    for (const char* text : {"hr-v1-a32", "hr-v1-a40", "hr-v1-a48", "spo2-v1-a32",
                             "skintemp-v1-a32", "skintemp-v1-a47"}) {
        auto id = parse_schema_id(text);
        ASSERT_TRUE(id.ok()) << text;
        EXPECT_EQ(format_schema_id(id.value()), text);
    }
    EXPECT_EQ(parse_schema_id("hr-v1-a40").value(), (SchemaId{Metric::kHeartRate, 40}));
    EXPECT_EQ(parse_schema_id("spo2-v1-a33").value(), (SchemaId{Metric::kSpO2, 33}));
    EXPECT_EQ(parse_schema_id("skintemp-v1-a32").value(), (SchemaId{Metric::kSkinTemp, 32}));
    EXPECT_EQ(HeartRateCodec().schema_id(), "hr-v1-a32");
    EXPECT_EQ(HeartRateCodec(40).schema_id(), "hr-v1-a40");
    EXPECT_EQ(SpO2Codec().schema_id(), "spo2-v1-a32");
    EXPECT_EQ(SkinTempCodec(36).schema_id(), "skintemp-v1-a36");
    EXPECT_EQ(make_layout(parse_schema_id("hr-v1-a40").value()).total_bits(),
              HeartRateCodec(40).layout().total_bits());
    EXPECT_THROW(format_schema_id(SchemaId{Metric::kHeartRate, 31}), std::invalid_argument);
}

TEST(CodecTest, UnknownSchemaIdRefused) {
    for (const char* text :
         {"", "hr", "hr-v1", "hr-v1-a", "hr-v1-a3", "hr-v1-a31", "hr-v1-a49", "hr-v1-a032",
          "hr-v1-a320", "hr-v2-a32", "HR-v1-a32", "hr-v1-a32 ", " hr-v1-a32", "hr-v1-a3x",
          "ecg-v1-a32", "hrx-v1-a32", "spo2-v1-a64", "skintemp-v1-a+32"}) {
        auto id = parse_schema_id(text);
        ASSERT_FALSE(id.ok()) << text;
        EXPECT_EQ(id.error().code, ErrorCode::kUnsupported) << text;
    }
}

// ---- heart rate: layout --------------------------------------------------------------------

TEST(HeartRateCodecTest, LayoutMatchesSpec) {
    HeartRateCodec codec;
    const Layout& layout = codec.layout();
    std::vector<std::size_t> widths = hr_widths(32);
    ASSERT_EQ(layout.slot_count(), widths.size());
    std::size_t offset = 0;
    for (std::size_t i = 0; i < widths.size(); ++i) {
        EXPECT_EQ(layout.width(i), widths[i]) << layout.slot(i).name;
        EXPECT_EQ(layout.offset(i), offset) << layout.slot(i).name;
        offset += widths[i];
    }
    EXPECT_EQ(layout.slot(0).name, "records");
    EXPECT_EQ(layout.slot(4).name, "hist_00");
    EXPECT_EQ(layout.slot(43).name, "hist_39");
    EXPECT_EQ(layout.slot(49).name, "contact_lost");
    // hr-v1 at a = 32: 33 + 38 + 50 + 62 + 40 * 38 + 38 + 50 + 62 + 38 + 62 + 38 = 1991 bits,
    // which fits a 2048-bit modulus (needs <= 2047).
    EXPECT_EQ(layout.total_bits(), 1991u);
    EXPECT_TRUE(layout.fits_modulus(2048));
    EXPECT_EQ(codec.max_records(), std::uint64_t{1} << 32);
}

TEST(HeartRateCodecTest, OtherBoundsChangeWidths) {
    // Every one of the 50 slots grows by one bit per extra power of two.
    EXPECT_EQ(HeartRateCodec(33).layout().total_bits(), 1991u + 50);
    EXPECT_EQ(HeartRateCodec(40).layout().total_bits(), 1991u + 8 * 50);
    EXPECT_EQ(HeartRateCodec(48).layout().total_bits(), 1991u + 16 * 50);
    EXPECT_FALSE(HeartRateCodec(48).layout().fits_modulus(2048));
    EXPECT_TRUE(HeartRateCodec(48).layout().fits_modulus(3072));
    Layout a33 = HeartRateCodec(33).layout();
    for (std::size_t i = 0; i < a33.slot_count(); ++i) {
        EXPECT_EQ(a33.width(i), hr_widths(33)[i]);
        EXPECT_EQ(a33.width(i), HeartRateCodec(32).layout().width(i) + 1);
    }
    EXPECT_THROW(HeartRateCodec(31), std::invalid_argument);
    EXPECT_THROW(HeartRateCodec(49), std::invalid_argument);

    // A record packed at a = 32 differs from the same record at a = 33, and the a = 33
    // codec refuses the a = 32 plaintext: 1 + 5 * 2^33 reads as records = 1 + 2^33.
    HeartRateStats record;
    record.records = 1;
    record.samples = 5;
    BigInt packed32 = HeartRateCodec(32).pack(record);
    EXPECT_EQ(packed32, BigInt::from_u64(1 + (std::uint64_t{5} << 33)));
    EXPECT_NE(packed32, HeartRateCodec(33).pack(record));
    auto wrong = HeartRateCodec(33).unpack(packed32);
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.error().code, ErrorCode::kLimitExceeded);
}

// ---- heart rate: packing -----------------------------------------------------------------

TEST(HeartRateCodecTest, PackPlacesEverySlot) {
    HeartRateStats record = hr_example_record();
    // Hand-checked contents: 600 + 700 + 800 deci-bpm; squares 360000 + 490000 + 640000.
    EXPECT_EQ(record.sum_bpm_deci, 2100u);
    EXPECT_EQ(record.sum_bpm_deci_sq, 1490000u);
    EXPECT_EQ(record.sum_rr_ms, 4000u);
    EXPECT_EQ(record.sum_rr_ms_sq, 4020000u);
    HeartRateCodec codec;
    EXPECT_EQ(codec.pack(record), place(hr_values(record), hr_widths(32)));
    HeartRateCodec codec40(40);
    EXPECT_EQ(codec40.pack(record), place(hr_values(record), hr_widths(40)));

    // Distinct values in every slot, so a slot shifted into the wrong place shows.
    HeartRateStats distinct;
    distinct.records = 1;
    distinct.samples = 2;
    distinct.sum_bpm_deci = 3;
    distinct.sum_bpm_deci_sq = 4;
    for (std::size_t k = 0; k < kHeartRateBins; ++k) {
        distinct.hist[k] = 5 + k % 50;
    }
    distinct.rr_count = 45;
    distinct.sum_rr_ms = 46;
    distinct.sum_rr_ms_sq = 47;
    distinct.rr_diff_count = 48;
    distinct.sum_rr_diff_sq = 49;
    distinct.contact_lost = 50;
    EXPECT_EQ(codec.pack(distinct), place(hr_values(distinct), hr_widths(32)));
    auto back = codec.unpack(codec.pack(distinct));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back.value(), distinct);
}

TEST(HeartRateCodecTest, RoundTrip) {
    HeartRateCodec codec;
    HeartRateStats record = hr_example_record();
    auto back = codec.unpack(codec.pack(record));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back.value(), record);
    auto zero = codec.unpack(BigInt(0));
    ASSERT_TRUE(zero.ok());
    EXPECT_EQ(zero.value(), HeartRateStats{});
}

TEST(HeartRateCodecTest, SumOfPackedRecordsIsPackOfSummedStats) {
    HeartRateCodec codec;
    std::mt19937 rng(20240611);
    std::uniform_real_distribution<double> bpm(20.0, 250.0);
    std::uniform_int_distribution<std::uint32_t> rr(300, 2000);
    std::uniform_int_distribution<int> count(0, 12);
    HeartRateRecordBuilder builder;
    HeartRateStats expected;
    BigInt sum;
    for (int r = 0; r < 500; ++r) {
        for (int i = count(rng); i > 0; --i) {
            ASSERT_TRUE(builder.add_sample(bpm(rng)).ok());
        }
        for (int i = count(rng); i > 0; --i) {
            ASSERT_TRUE(builder.add_rr(rr(rng)).ok());
        }
        for (int i = count(rng) / 6; i > 0; --i) {
            ASSERT_TRUE(builder.add_contact_lost().ok());
        }
        if (r % 50 == 0) {
            builder.reset_rr_chain();
        }
        HeartRateStats record = builder.finish();
        expected += record;
        BigInt packed = codec.pack(record);
        mpz_add(sum.get(), sum.get(), packed.get());
    }
    EXPECT_EQ(expected.records, 500u);
    EXPECT_EQ(expected.hist_total(), expected.samples);
    EXPECT_EQ(sum, codec.pack_aggregate(expected));
    auto back = codec.unpack(sum);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back.value(), expected);
}

TEST(HeartRateCodecTest, EverySlotSurvivesSumAtBound) {
    for (unsigned a : {32u, 40u, 48u}) {
        SCOPED_TRACE(a);
        HeartRateCodec codec(a);
        expect_every_slot_survives_bound(codec.layout());

        // All slots at their maximum at once: 2^a maximal records.
        BigInt aggregate = shifted(codec.pack(hr_max_record()), a);
        std::vector<SlotValue> expected_values = hr_values(hr_max_record());
        for (SlotValue& v : expected_values) {
            v <<= a;
        }
        EXPECT_EQ(aggregate, place(expected_values, hr_widths(a)));
        auto back = codec.unpack(aggregate);
        ASSERT_TRUE(back.ok()) << back.error().message;
        EXPECT_EQ(hr_values(back.value()), expected_values);
        EXPECT_EQ(back.value().records, std::uint64_t{1} << a);
        EXPECT_EQ(back.value().sum_rr_ms_sq, SlotValue{1008000000} << a);
        // The all-maximal aggregate is the largest accepted plaintext's neighbourhood: it
        // still fits in total_bits.
        EXPECT_LE(aggregate.bit_length(), codec.layout().total_bits());
    }
}

TEST(HeartRateCodecTest, ExceedingTheBoundIsRefused) {
    HeartRateCodec codec;
    // records = 2^32 + 1, nothing else.
    auto too_many = codec.unpack(big((SlotValue{1} << 32) + 1));
    ASSERT_FALSE(too_many.ok());
    EXPECT_EQ(too_many.error().code, ErrorCode::kLimitExceeded);
    EXPECT_NE(too_many.error().message.find("records"), std::string::npos);
    EXPECT_NE(too_many.error().message.find("hr-v1-a32"), std::string::npos);

    // records = 2, samples = 127 > 2 * 63 (samples at bit 33).
    BigInt samples = big(2);
    mpz_add(samples.get(), samples.get(), shifted(big(127), 33).get());
    auto bad_samples = codec.unpack(samples);
    ASSERT_FALSE(bad_samples.ok());
    EXPECT_EQ(bad_samples.error().code, ErrorCode::kOutOfRange);
    EXPECT_NE(bad_samples.error().message.find("'samples'"), std::string::npos);
    EXPECT_EQ(bad_samples.error().message.find("127"), std::string::npos);  // no plaintext
    // records = 2, samples = 126 is fine.
    mpz_sub(samples.get(), samples.get(), power_of_two(33).get());
    EXPECT_TRUE(codec.unpack(samples).ok());

    // records = 0 but contact_lost = 1 (contact_lost is the last slot, 38 bits wide).
    auto orphan = codec.unpack(power_of_two(1991 - 38));
    ASSERT_FALSE(orphan.ok());
    EXPECT_EQ(orphan.error().code, ErrorCode::kOutOfRange);
    EXPECT_NE(orphan.error().message.find("'contact_lost'"), std::string::npos);

    // A histogram bin above 63 * records.
    HeartRateStats one;
    one.records = 1;
    BigInt bin = codec.pack(one);
    mpz_add(bin.get(), bin.get(), shifted(big(64), 33 + 38 + 50 + 62 + 7 * 38).get());
    auto bad_bin = codec.unpack(bin);
    ASSERT_FALSE(bad_bin.ok());
    EXPECT_NE(bad_bin.error().message.find("'hist_07'"), std::string::npos);

    // Wider than total_bits, and negative.
    BigInt wide = power_of_two(1991);
    mpz_add_ui(wide.get(), wide.get(), 1);
    auto too_wide = codec.unpack(wide);
    ASSERT_FALSE(too_wide.ok());
    EXPECT_EQ(too_wide.error().code, ErrorCode::kOutOfRange);
    auto negative = codec.unpack(BigInt(-1));
    ASSERT_FALSE(negative.ok());
    EXPECT_EQ(negative.error().code, ErrorCode::kOutOfRange);
}

TEST(HeartRateCodecTest, PackRefusesWhatIsNotOneRecord) {
    HeartRateCodec codec;
    HeartRateStats record = hr_max_record();
    EXPECT_NO_THROW(codec.pack(record));
    record.samples = 64;
    EXPECT_THROW(codec.pack(record), std::invalid_argument);
    record = hr_max_record();
    record.sum_rr_diff_sq += 1;
    EXPECT_THROW(codec.pack(record), std::invalid_argument);
    record = hr_max_record();
    record.records = 2;
    EXPECT_THROW(codec.pack(record), std::invalid_argument);
    EXPECT_NO_THROW(codec.pack_aggregate(record));
    HeartRateStats empty;
    empty.samples = 1;  // records = 0
    EXPECT_THROW(codec.pack(empty), std::invalid_argument);
}

// ---- heart rate: builder -----------------------------------------------------------------

TEST(HeartRateCodecTest, BuilderRoundsAndBins) {
    HeartRateRecordBuilder builder;
    // bpm -> deci -> bin: 0 -> 0 -> 0; 29.9 -> 299 -> 0; 29.96 -> 300 -> 1; 30 -> 1;
    // 34.9 -> 349 -> 1; 35 -> 350 -> 2; 72.34 -> 723 -> 9 ([70, 75)); 72.36 -> 724 -> 9;
    // 219.9 -> 2199 -> 38; 220 -> 2200 -> 39; 300 -> 3000 -> 39.
    const double bpms[] = {0, 29.9, 29.96, 30, 34.9, 35, 72.34, 72.36, 219.9, 220, 300};
    std::uint64_t sum = 0 + 299 + 300 + 300 + 349 + 350 + 723 + 724 + 2199 + 2200 + 3000;
    for (double bpm : bpms) {
        ASSERT_TRUE(builder.add_sample(bpm).ok()) << bpm;
    }
    HeartRateStats record = builder.finish();
    std::array<std::uint64_t, kHeartRateBins> hist{};
    hist[0] = 2;
    hist[1] = 3;
    hist[2] = 1;
    hist[9] = 2;
    hist[38] = 1;
    hist[39] = 2;
    EXPECT_EQ(record.hist, hist);
    EXPECT_EQ(record.samples, 11u);
    EXPECT_EQ(record.sum_bpm_deci, sum);
    EXPECT_EQ(record.sum_bpm_deci_sq, SlotValue{299} * 299 + 300 * 300 * 2 + 349 * 349 + 350 * 350 +
                                          723 * 723 + 724 * 724 + 2199 * 2199 + 2200 * 2200 +
                                          3000 * 3000);
    EXPECT_EQ(record.records, 1u);
    EXPECT_EQ(builder.current(), HeartRateStats{});
}

TEST(HeartRateCodecTest, BuilderRefusesBadReadings) {
    HeartRateRecordBuilder builder;
    for (double bad : {-0.1, 300.1, std::nan(""), kInf, -kInf}) {
        Status status = builder.add_sample(bad);
        ASSERT_FALSE(status.ok()) << bad;
        EXPECT_EQ(status.error().code, ErrorCode::kOutOfRange);
    }
    for (std::uint32_t bad : {0u, 4001u, UINT32_MAX}) {
        Status status = builder.add_rr(bad);
        ASSERT_FALSE(status.ok()) << bad;
        EXPECT_EQ(status.error().code, ErrorCode::kOutOfRange);
    }
    EXPECT_EQ(builder.current(), HeartRateStats{});
    for (int i = 0; i < 63; ++i) {
        ASSERT_TRUE(builder.add_sample(70).ok());
        ASSERT_TRUE(builder.add_rr(850).ok());
        ASSERT_TRUE(builder.add_contact_lost().ok());
    }
    Status sample = builder.add_sample(70);
    ASSERT_FALSE(sample.ok());
    EXPECT_EQ(sample.error().code, ErrorCode::kLimitExceeded);
    Status rr = builder.add_rr(850);
    ASSERT_FALSE(rr.ok());
    EXPECT_EQ(rr.error().code, ErrorCode::kLimitExceeded);
    Status lost = builder.add_contact_lost();
    ASSERT_FALSE(lost.ok());
    EXPECT_EQ(lost.error().code, ErrorCode::kLimitExceeded);
    HeartRateStats full = builder.finish();
    EXPECT_EQ(full.samples, 63u);
    EXPECT_EQ(full.rr_count, 63u);
    EXPECT_EQ(full.rr_diff_count, 62u);
    EXPECT_EQ(full.contact_lost, 63u);
    EXPECT_EQ(full.hist_total(), 63u);
    EXPECT_TRUE(builder.add_sample(70).ok());  // the next record starts empty
}

TEST(HeartRateCodecTest, ContactLostCountsOnlyThere) {
    HeartRateRecordBuilder builder;
    ASSERT_TRUE(builder.add_contact_lost().ok());
    ASSERT_TRUE(builder.add_contact_lost().ok());
    HeartRateStats record = builder.finish();
    HeartRateStats expected;
    expected.records = 1;
    expected.contact_lost = 2;
    EXPECT_EQ(record, expected);
}

TEST(HeartRateCodecTest, RrChainContinuesAcrossRecords) {
    HeartRateRecordBuilder builder;
    ASSERT_TRUE(builder.add_rr(800).ok());
    ASSERT_TRUE(builder.add_rr(850).ok());  // (850 - 800)^2 = 2500
    HeartRateStats first = builder.finish();
    EXPECT_EQ(first.rr_diff_count, 1u);
    EXPECT_EQ(first.sum_rr_diff_sq, 2500u);
    ASSERT_FALSE(builder.add_rr(0).ok());   // refused: the chain still ends at 850
    ASSERT_TRUE(builder.add_rr(830).ok());  // (830 - 850)^2 = 400, across finish()
    HeartRateStats second = builder.finish();
    EXPECT_EQ(second.rr_count, 1u);
    EXPECT_EQ(second.rr_diff_count, 1u);
    EXPECT_EQ(second.sum_rr_diff_sq, 400u);
    builder.reset_rr_chain();
    ASSERT_TRUE(builder.add_rr(900).ok());  // no predecessor after the reset
    HeartRateStats third = builder.finish();
    EXPECT_EQ(third.rr_count, 1u);
    EXPECT_EQ(third.rr_diff_count, 0u);
    EXPECT_EQ(third.sum_rr_diff_sq, 0u);
}

// ---- heart rate: derived figures ---------------------------------------------------------

TEST(HeartRateCodecTest, DerivedFiguresByHand) {
    HeartRateStats s = hr_example_record();
    // bpm 60, 70, 80: mean 70; deviations -10, 0, 10 -> (100 + 0 + 100) / (3 - 1) = 100;
    // sd 10.
    EXPECT_DOUBLE_EQ(*s.mean_bpm(), 70.0);
    EXPECT_NEAR(*s.variance_bpm(), 100.0, 1e-9);
    EXPECT_NEAR(*s.sd_bpm(), 10.0, 1e-9);
    // RR 1000, 900, 1100, 1000: mean 1000; differences -100, 200, -100 -> squares
    // 10000 + 40000 + 10000 = 60000 over 3 -> RMSSD sqrt(20000) = 141.4213562373095.
    EXPECT_DOUBLE_EQ(*s.mean_rr_ms(), 1000.0);
    EXPECT_EQ(s.rr_diff_count, 3u);
    EXPECT_EQ(s.sum_rr_diff_sq, 60000u);
    EXPECT_NEAR(*s.rmssd_ms(), 141.4213562373095, 1e-9);
    // Bins: 60 -> 7 ([60, 65)), 70 -> 9, 80 -> 11.
    EXPECT_EQ(s.hist_total(), 3u);
    EXPECT_EQ(s.hist[7], 1u);
    EXPECT_EQ(s.hist[9], 1u);
    EXPECT_EQ(s.hist[11], 1u);
    EXPECT_NEAR(*s.share_at_or_above(70), 2.0 / 3, 1e-12);  // bin edge: exact
    EXPECT_NEAR(*s.share_below(70), 1.0 / 3, 1e-12);
    EXPECT_NEAR(*s.share_below(62.5), 0.5 / 3, 1e-12);  // half of bin 7, interpolated
    EXPECT_DOUBLE_EQ(*s.share_below(0), 0.0);
    EXPECT_DOUBLE_EQ(*s.share_at_or_above(0), 1.0);
    EXPECT_DOUBLE_EQ(*s.share_below(300), 1.0);
    EXPECT_THROW((void)s.share_below(std::nan("")), std::invalid_argument);

    // The sum of two copies has the same mean, and variance (2 * 200) / 5 = 80.
    HeartRateStats twice = s;
    twice += s;
    EXPECT_EQ(twice.records, 2u);
    EXPECT_DOUBLE_EQ(*twice.mean_bpm(), 70.0);
    EXPECT_NEAR(*twice.variance_bpm(), 80.0, 1e-9);
}

TEST(HeartRateCodecTest, DerivedFiguresWithoutDataAreNullopt) {
    HeartRateStats empty;
    EXPECT_FALSE(empty.mean_bpm());
    EXPECT_FALSE(empty.variance_bpm());
    EXPECT_FALSE(empty.sd_bpm());
    EXPECT_FALSE(empty.mean_rr_ms());
    EXPECT_FALSE(empty.rmssd_ms());
    EXPECT_FALSE(empty.share_below(100));
    EXPECT_FALSE(empty.share_at_or_above(100));
    HeartRateRecordBuilder builder;
    ASSERT_TRUE(builder.add_sample(65).ok());
    ASSERT_TRUE(builder.add_rr(900).ok());
    HeartRateStats one = builder.finish();
    EXPECT_DOUBLE_EQ(*one.mean_bpm(), 65.0);
    EXPECT_FALSE(one.variance_bpm());
    EXPECT_FALSE(one.rmssd_ms());
}

// ---- SpO2 --------------------------------------------------------------------------------

SpO2Stats spo2_example_record() {
    SpO2RecordBuilder builder;
    for (int pct : {95, 97, 88}) {
        EXPECT_TRUE(builder.add_sample(pct).ok());
    }
    EXPECT_TRUE(builder.add_contact_lost().ok());
    return builder.finish();
}

TEST(SpO2CodecTest, LayoutPackAndRoundTrip) {
    SpO2Codec codec;
    std::vector<std::size_t> widths = spo2_widths(32);  // 33 38 45 52 38 38
    EXPECT_EQ(codec.layout().total_bits(), 244u);
    EXPECT_EQ(codec.layout().total_bits(), sum_of(widths));
    SpO2Stats record = spo2_example_record();
    // 95 + 97 + 88 = 280; 9025 + 9409 + 7744 = 26178; one below 90.
    std::vector<SlotValue> values = {1, 3, 280, 26178, 1, 1};
    EXPECT_EQ(codec.pack(record), place(values, widths));
    auto back = codec.unpack(codec.pack(record));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back.value(), record);
    expect_every_slot_survives_bound(codec.layout());
    expect_every_slot_survives_bound(SpO2Codec(48).layout());
}

TEST(SpO2CodecTest, SumAndDerivedFigures) {
    SpO2Codec codec;
    SpO2Stats record = spo2_example_record();
    // mean 280 / 3 = 93.333...; variance (26178 - 280^2 / 3) / 2 = (134 / 3) / 2 = 67 / 3.
    EXPECT_NEAR(*record.mean_pct(), 280.0 / 3, 1e-12);
    EXPECT_NEAR(*record.variance_pct(), 67.0 / 3, 1e-9);
    EXPECT_NEAR(*record.sd_pct(), std::sqrt(67.0 / 3), 1e-9);
    EXPECT_NEAR(*record.share_below_90(), 1.0 / 3, 1e-12);
    BigInt sum;
    SpO2Stats expected;
    for (int i = 0; i < 10; ++i) {
        mpz_add(sum.get(), sum.get(), codec.pack(record).get());
        expected += record;
    }
    EXPECT_EQ(sum, codec.pack_aggregate(expected));
    auto back = codec.unpack(sum);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back.value(), expected);
    EXPECT_FALSE(SpO2Stats{}.mean_pct());
    auto refused = codec.unpack(big((SlotValue{1} << 32) + 1));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::kLimitExceeded);
}

TEST(SpO2CodecTest, BuilderErrors) {
    SpO2RecordBuilder builder;
    for (int bad : {-1, 101, 1000}) {
        Status status = builder.add_sample(bad);
        ASSERT_FALSE(status.ok());
        EXPECT_EQ(status.error().code, ErrorCode::kOutOfRange);
    }
    for (int i = 0; i < 63; ++i) {
        ASSERT_TRUE(builder.add_sample(100).ok());
        ASSERT_TRUE(builder.add_contact_lost().ok());
    }
    EXPECT_EQ(builder.add_sample(100).error().code, ErrorCode::kLimitExceeded);
    EXPECT_EQ(builder.add_contact_lost().error().code, ErrorCode::kLimitExceeded);
    EXPECT_EQ(builder.finish().samples, 63u);
}

// ---- skin temperature --------------------------------------------------------------------

SkinTempStats skin_temp_example_record() {
    SkinTempRecordBuilder builder;
    EXPECT_TRUE(builder.add_sample(36.5).ok());
    EXPECT_TRUE(builder.add_sample(36.7).ok());
    return builder.finish();
}

TEST(SkinTempCodecTest, LayoutPackAndRoundTrip) {
    SkinTempCodec codec;
    std::vector<std::size_t> widths = skin_temp_widths(32);  // 33 38 51 63 38
    EXPECT_EQ(codec.layout().total_bits(), 223u);
    EXPECT_EQ(codec.layout().total_bits(), sum_of(widths));
    SkinTempStats record = skin_temp_example_record();
    // 3650 + 3670 = 7320; 13322500 + 13468900 = 26791400.
    std::vector<SlotValue> values = {1, 2, 7320, 26791400, 0};
    EXPECT_EQ(codec.pack(record), place(values, widths));
    auto back = codec.unpack(codec.pack(record));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back.value(), record);
    expect_every_slot_survives_bound(codec.layout());
    expect_every_slot_survives_bound(SkinTempCodec(48).layout());
}

TEST(SkinTempCodecTest, DerivedFiguresAndBuilderErrors) {
    SkinTempStats record = skin_temp_example_record();
    // mean 36.6; variance (26791400 - 7320^2 / 2) / 1 = 200 centi^2 = 0.02 C^2.
    EXPECT_NEAR(*record.mean_celsius(), 36.6, 1e-12);
    EXPECT_NEAR(*record.variance_celsius(), 0.02, 1e-12);
    EXPECT_NEAR(*record.sd_celsius(), std::sqrt(0.02), 1e-12);
    EXPECT_FALSE(SkinTempStats{}.mean_celsius());

    SkinTempRecordBuilder builder;
    for (double bad : {-0.01, 50.01, std::nan(""), kInf}) {
        Status status = builder.add_sample(bad);
        ASSERT_FALSE(status.ok()) << bad;
        EXPECT_EQ(status.error().code, ErrorCode::kOutOfRange);
    }
    ASSERT_TRUE(builder.add_sample(0).ok());
    ASSERT_TRUE(builder.add_sample(50).ok());
    ASSERT_TRUE(builder.add_contact_lost().ok());
    SkinTempStats edges = builder.finish();
    EXPECT_EQ(edges.sum_centi, 5000u);
    EXPECT_EQ(edges.contact_lost, 1u);
    for (int i = 0; i < 63; ++i) {
        ASSERT_TRUE(builder.add_sample(33.333).ok());  // rounds to 3333
    }
    EXPECT_EQ(builder.add_sample(33).error().code, ErrorCode::kLimitExceeded);
    EXPECT_EQ(builder.finish().sum_centi, 63u * 3333);
}

}  // namespace
}  // namespace cipherpulse
