// `cipherpulse-server aggregate`: the server's homomorphic sum, from the command line.
#pragma once

#include <iosfwd>
#include <string>

namespace cipherpulse::server {

// run_aggregate validates every base64url ciphertext read from `in` (one per line) against
// the public key at `public_key_path` and writes the base64url ciphertext of their sum. It
// never sees a plaintext. The first invalid line stops it with a message naming the line on
// `err`. Returns a process exit code.
int run_aggregate(const std::string& public_key_path, std::istream& in, std::ostream& out,
                  std::ostream& err);

}  // namespace cipherpulse::server
