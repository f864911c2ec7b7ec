#include "edge/encrypt_command.h"

#include <ostream>

#include "cipherpulse/keyfile.h"
#include "cipherpulse/randomness_pool.h"
#include "common/cli.h"

namespace cipherpulse::edge {

Result<EncryptionMode> parse_mode(const std::string& text) {
    if (text == "textbook") {
        return EncryptionMode::kTextbook;
    }
    if (text == "fast") {
        return EncryptionMode::kFast;
    }
    return make_error(ErrorCode::kInvalidEncoding,
                      "unknown encryption mode '" + text + "' (textbook or fast)");
}

int run_encrypt(const EncryptOptions& options, std::istream& in, std::ostream& out,
                std::ostream& err) {
    auto key = load_public_key(options.public_key_path);
    if (!key) {
        err << "cipherpulse-edge: error: " << key.error().message << "\n";
        return common::kExitBadInput;
    }
    const PublicKey& pk = key.value();
    // In fast mode a background thread keeps randomizers ready while this one reads input.
    std::unique_ptr<RandomnessPool> pool;
    if (options.mode == EncryptionMode::kFast) {
        pool = std::make_unique<RandomnessPool>(pk, RandomnessPool::Options{256, options.mode});
    }
    bool ok = common::for_each_line(in, [&](std::size_t number, const std::string& line) {
        auto value = BigInt::from_decimal(line);
        if (!value) {
            err << "cipherpulse-edge: error: line " << number << ": " << value.error().message
                << "\n";
            return false;
        }
        Result<BigInt> m = value.value().sign() < 0 ? pk.encode_signed(value.value())
                                                    : pk.check_plaintext(value.value());
        if (!m) {
            err << "cipherpulse-edge: error: line " << number << ": " << m.error().message
                << " (accepted: -(n-1)/2 <= v < n)\n";
            return false;
        }
        Ciphertext c = pool ? pool->encrypt(m.value()) : pk.encrypt(m.value(), options.mode);
        out << pk.serialize_base64url(c) << "\n";
        return true;
    });
    out.flush();
    return ok ? common::kExitOk : common::kExitBadInput;
}

}  // namespace cipherpulse::edge
