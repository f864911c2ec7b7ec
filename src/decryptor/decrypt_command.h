// `cipherpulse-decryptor decrypt`: base64url ciphertexts in, decimal plaintexts out.
#pragma once

#include <iosfwd>

#include "cipherpulse/paillier.h"

namespace cipherpulse::decryptor {

// run_decrypt reads one base64url ciphertext per line from `in`, validates it and writes
// its plaintext in decimal to `out` (in [0, n), or signed in [-(n-1)/2, (n-1)/2] with
// `signed_output`). The first invalid line stops it with a message naming the line on
// `err`. Returns a process exit code.
int run_decrypt(const PrivateKey& key, bool signed_output, std::istream& in, std::ostream& out,
                std::ostream& err);

}  // namespace cipherpulse::decryptor
