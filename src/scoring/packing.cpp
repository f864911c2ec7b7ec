#include "scoring/packing.h"

#include <stdexcept>

#include "scoring/model.h"

namespace cipherpulse::scoring {

// Exact bounds of sums of 64-bit products.
__extension__ using Wide = __int128;
namespace {

std::size_t bit_length_u64(std::uint64_t v) {
    std::size_t bits = 0;
    while (v != 0) {
        ++bits;
        v >>= 1;
    }
    return bits;
}

}  // namespace

Result<PackedLayout> packed_layout(std::int64_t score_min, std::int64_t score_max,
                                   std::span<const std::int64_t> input_lo,
                                   std::span<const std::int64_t> input_hi,
                                   std::size_t modulus_bits) {
    if (score_min > score_max || input_lo.size() != input_hi.size()) {
        return Error{ErrorCode::kOutOfRange, "packing: inconsistent score range"};
    }
    PackedLayout layout;
    layout.score_min = score_min;
    layout.score_max = score_max;
    layout.offset = -score_min;
    // Slot values are z + offset in [0, score_max - score_min]; inputs must fit as well,
    // since each packed input is itself a plaintext of slots.
    std::uint64_t widest = static_cast<std::uint64_t>(score_max - score_min);
    for (std::size_t i = 0; i < input_lo.size(); ++i) {
        if (input_lo[i] < 0 || input_hi[i] < input_lo[i]) {
            return Error{ErrorCode::kLimitExceeded,
                         "packing: input " + std::to_string(i) +
                             " may be negative; the packed path needs inputs >= 0"};
        }
        widest = std::max(widest, static_cast<std::uint64_t>(input_hi[i]));
        layout.input_max.push_back(input_hi[i]);
    }
    layout.slot_bits = static_cast<unsigned>(std::max<std::size_t>(1, bit_length_u64(widest)));
    if (modulus_bits < 4) {
        return Error{ErrorCode::kLimitExceeded, "packing: key too small"};
    }
    layout.slots = (modulus_bits - 2) / layout.slot_bits;
    if (layout.slots < 2) {
        return Error{ErrorCode::kLimitExceeded,
                     "packing: a slot of " + std::to_string(layout.slot_bits) +
                         " bits leaves no room for two patients in one ciphertext"};
    }
    return layout;
}

Result<PackedLayout> packed_layout(const Model& model, std::size_t modulus_bits) {
    std::vector<std::int64_t> lo, hi;
    for (const auto& in : model.inputs) {
        lo.push_back(in.lo);
        hi.push_back(in.hi);
    }
    return packed_layout(model.score_min(), model.score_max(), lo, hi, modulus_bits);
}

Result<BigInt> pack_input(const PackedLayout& layout, std::size_t input,
                          std::span<const std::int64_t> values) {
    if (input >= layout.input_max.size()) {
        return Error{ErrorCode::kOutOfRange, "packing: no such input"};
    }
    if (values.size() > layout.slots || values.empty()) {
        return Error{ErrorCode::kOutOfRange, "packing: 1.." + std::to_string(layout.slots) +
                                                 " values per ciphertext"};
    }
    BigInt packed(0);
    BigInt slot;
    for (std::size_t j = values.size(); j-- > 0;) {
        if (values[j] < 0 || values[j] > layout.input_max[input]) {
            return Error{ErrorCode::kOutOfRange,
                         "packing: value " + std::to_string(values[j]) + " of patient " +
                             std::to_string(j) + " is outside the input's range"};
        }
        mpz_mul_2exp(packed.get(), packed.get(), layout.slot_bits);
        mpz_add_ui(packed.get(), packed.get(), static_cast<unsigned long>(values[j]));
    }
    return packed;
}

BigInt occupied_bias(const PackedLayout& layout, std::int64_t intercept, std::size_t count) {
    if (count > layout.slots) {
        throw std::logic_error("occupied_bias: more patients than slots");
    }
    // B + offset may be negative (inputs with a lower bound above 0 and positive weights):
    // the sum over all slots is still in [0, 2^(count slot_bits)), so a signed constant,
    // added modulo n, lands exactly.
    const Wide per_slot = static_cast<Wide>(intercept) + layout.offset;
    BigInt slot = BigInt::from_u64(static_cast<std::uint64_t>(per_slot < 0 ? -per_slot : per_slot));
    BigInt out(0);
    for (std::size_t j = 0; j < count; ++j) {
        mpz_mul_2exp(out.get(), out.get(), layout.slot_bits);
        mpz_add(out.get(), out.get(), slot.get());
    }
    if (per_slot < 0) {
        mpz_neg(out.get(), out.get());
    }
    return out;
}

Result<std::vector<std::int64_t>> unpack_scores(const PackedLayout& layout, const BigInt& m,
                                                std::size_t count) {
    if (count == 0 || count > layout.slots) {
        return Error{ErrorCode::kOutOfRange, "packing: bad slot count"};
    }
    if (m.sign() < 0 || mpz_sizeinbase(m.get(), 2) > count * layout.slot_bits) {
        if (!m.is_zero()) {
            return Error{ErrorCode::kOutOfRange,
                         "packed result has bits beyond its occupied slots: not a score"};
        }
    }
    std::vector<std::int64_t> scores;
    scores.reserve(count);
    BigInt rest = m;
    BigInt slot;
    const std::uint64_t widest = static_cast<std::uint64_t>(layout.score_max - layout.score_min);
    for (std::size_t j = 0; j < count; ++j) {
        mpz_fdiv_r_2exp(slot.get(), rest.get(), layout.slot_bits);
        mpz_fdiv_q_2exp(rest.get(), rest.get(), layout.slot_bits);
        const std::uint64_t v = slot.to_u64();
        if (v > widest) {
            return Error{ErrorCode::kOutOfRange, "packed slot " + std::to_string(j) +
                                                     " is outside the model's score range"};
        }
        scores.push_back(static_cast<std::int64_t>(v) - layout.offset);
    }
    return scores;
}

}  // namespace cipherpulse::scoring
