#include "decryptor/decrypt_command.h"

#include <ostream>

#include "common/cli.h"

namespace cipherpulse::decryptor {

int run_decrypt(const PrivateKey& key, bool signed_output, std::istream& in, std::ostream& out,
                std::ostream& err) {
    const PublicKey& pk = key.public_key();
    bool ok = common::for_each_line(in, [&](std::size_t number, const std::string& line) {
        auto c = pk.parse_ciphertext_base64url(line);
        if (!c) {
            err << "cipherpulse-decryptor: error: line " << number << ": " << c.error().message
                << "\n";
            return false;
        }
        BigInt m = key.decrypt(c.value());
        out << (signed_output ? pk.decode_signed(m) : m).to_decimal() << "\n";
        return true;
    });
    out.flush();
    return ok ? common::kExitOk : common::kExitBadInput;
}

}  // namespace cipherpulse::decryptor
