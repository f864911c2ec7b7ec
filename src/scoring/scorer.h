// The provider's side of risk scoring: the model's linear logit evaluated on ciphertexts.
// Neither function adds randomness: the caller rerandomises every result before it leaves
// the process (otherwise the key holder could relate the result's randomness to its own
// and recover the weights).
#pragma once

#include <cstddef>
#include <span>

#include "cipherpulse/paillier.h"

namespace cipherpulse::scoring {

struct Model;
struct PackedLayout;

// score_vector returns Enc(z), z = B + sum W_i x_i, from Enc(x_i) (one per input, in the
// model's input order). Throws std::invalid_argument for a wrong count or mixed keys.
Ciphertext score_vector(const PublicKey& key, const Model& model,
                        std::span<const Ciphertext> inputs);

// score_packed returns the encryption of sum_j (z_j + offset) 2^(j slot_bits) from one
// packed ciphertext per input holding `count` patients (pack_input). Throws
// std::invalid_argument for a wrong count.
Ciphertext score_packed(const PublicKey& key, const Model& model, const PackedLayout& layout,
                        std::span<const Ciphertext> packed_inputs, std::size_t count);

}  // namespace cipherpulse::scoring
