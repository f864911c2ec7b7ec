// `cipherpulse-edge encrypt`: decimal integers in, base64url ciphertexts out.
#pragma once

#include <iosfwd>
#include <string>

#include "cipherpulse/paillier.h"

namespace cipherpulse::edge {

struct EncryptOptions {
    std::string public_key_path;
    EncryptionMode mode = EncryptionMode::kFast;
};

// run_encrypt reads one decimal integer per line from `in` (negative values are encoded as
// n - |v|) and writes one base64url ciphertext per line to `out`. The first bad line stops
// it with a message naming the line on `err`. Returns a process exit code.
int run_encrypt(const EncryptOptions& options, std::istream& in, std::ostream& out,
                std::ostream& err);

// parse_mode reads "textbook" or "fast".
Result<EncryptionMode> parse_mode(const std::string& text);

}  // namespace cipherpulse::edge
