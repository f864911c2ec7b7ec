// Slot packing for batch scoring (docs/formats.md "Packed scoring"): the same input of up to
// `slots` patients in one plaintext, so one exponentiation per input scores them all.
//
// Patient j's value sits at bit offset j * slot_bits. The server raises each packed input
// to its weight and adds (B + offset) to every occupied slot, so slot j ends up holding
// z_j + offset, which the layout proves lies in [0, 2^slot_bits) for every input in range:
// no slot can carry into its neighbour, and the whole plaintext stays below n.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "cipherpulse/bigint.h"
#include "cipherpulse/result.h"

namespace cipherpulse::scoring {

struct Model;

// PackedLayout is derived from a model's score range and a key size alone, so the server
// and the client compute the same one.
struct PackedLayout {
    unsigned slot_bits = 0;   // bits per patient
    std::size_t slots = 0;    // patients per ciphertext
    std::int64_t offset = 0;  // added to every score: -score_min
    std::int64_t score_min = 0;
    std::int64_t score_max = 0;
    std::vector<std::int64_t> input_max;  // per input: largest value allowed in a slot
};

// packed_layout proves the bounds: slot_bits = bit length of (score_max - score_min), each
// input's largest value below 2^slot_bits, and slots * slot_bits <= modulus_bits - 2 so the
// plaintext is below n. Fails (kLimitExceeded) for a model whose slot would not fit one
// ciphertext twice (packing would gain nothing) or with inputs of negative range.
Result<PackedLayout> packed_layout(std::int64_t score_min, std::int64_t score_max,
                                   std::span<const std::int64_t> input_lo,
                                   std::span<const std::int64_t> input_hi,
                                   std::size_t modulus_bits);
// packed_layout for a full model (the server's view).
Result<PackedLayout> packed_layout(const Model& model, std::size_t modulus_bits);

// pack_input packs one input's values of up to `slots` patients: sum_j v_j 2^(j slot_bits).
// Fails (kOutOfRange) for a value outside [0, input_max] or too many values: the codec
// refuses what could overflow a slot.
Result<BigInt> pack_input(const PackedLayout& layout, std::size_t input,
                          std::span<const std::int64_t> values);

// occupied_bias is (B + offset) in each of the first `count` slots: what the server adds
// (signed: encode it with PublicKey::encode_signed). Throws std::logic_error for count > slots.
BigInt occupied_bias(const PackedLayout& layout, std::int64_t intercept, std::size_t count);

// unpack_scores reads `count` scores z_j = slot_j - offset from a decrypted plaintext.
// Fails (kOutOfRange) when a slot lies outside the score range, a slot beyond `count` is
// not zero, or the plaintext has bits beyond the slots: then the result is not a packed
// score of this model and nothing of it may be trusted.
Result<std::vector<std::int64_t>> unpack_scores(const PackedLayout& layout, const BigInt& m,
                                                std::size_t count);

}  // namespace cipherpulse::scoring
