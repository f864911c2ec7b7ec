#include "scoring/scorer.h"

#include <stdexcept>
#include <vector>

#include "scoring/model.h"
#include "scoring/packing.h"

namespace cipherpulse::scoring {
namespace {

std::vector<BigInt> big_weights(const Model& model) {
    std::vector<BigInt> w;
    w.reserve(model.fixed.weights.size());
    for (std::int64_t v : model.fixed.weights) {
        w.emplace_back(static_cast<long>(v));
    }
    return w;
}

}  // namespace

Ciphertext score_vector(const PublicKey& key, const Model& model,
                        std::span<const Ciphertext> inputs) {
    if (inputs.size() != model.inputs.size()) {
        throw std::invalid_argument("score_vector: one ciphertext per input expected");
    }
    const std::vector<BigInt> weights = big_weights(model);
    Ciphertext z = key.linear_combination(inputs, weights);
    return key.add_plain(z, key.encode_signed(BigInt(static_cast<long>(model.fixed.intercept)))
                                .value());
}

Ciphertext score_packed(const PublicKey& key, const Model& model, const PackedLayout& layout,
                        std::span<const Ciphertext> packed_inputs, std::size_t count) {
    if (packed_inputs.size() != model.inputs.size()) {
        throw std::invalid_argument("score_packed: one ciphertext per input expected");
    }
    if (count == 0 || count > layout.slots) {
        throw std::invalid_argument("score_packed: 1..slots patients per ciphertext");
    }
    const std::vector<BigInt> weights = big_weights(model);
    Ciphertext z = key.linear_combination(packed_inputs, weights);
    BigInt bias = occupied_bias(layout, model.fixed.intercept, count);
    return key.add_plain(z, key.encode_signed(bias).value());
}

}  // namespace cipherpulse::scoring
