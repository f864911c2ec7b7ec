// `cipherpulse-decryptor keygen`: a Paillier key pair and the decryptor's Ed25519 identity.
#pragma once

#include <filesystem>
#include <iosfwd>

#include "cipherpulse/secure.h"

namespace cipherpulse::decryptor {

// File names written by run_keygen inside the output directory.
inline constexpr const char* kPrivateKeyFile = "paillier.key";
inline constexpr const char* kPublicKeyFile = "paillier.pub.json";
inline constexpr const char* kIdentityKeyFile = "identity.pem";
inline constexpr const char* kIdentityPublicFile = "identity.pub.pem";

struct KeygenOptions {
    std::size_t bits = 3072;
    std::filesystem::path out_dir;
    const SecretBytes* passphrase = nullptr;  // seal the Paillier private key when set
    bool force = false;                       // replace existing key files
    bool show_progress = true;
};

// run_keygen creates `out_dir` (mode 0700) if needed and writes the private key (0600,
// sealed when a passphrase is given), the public key document, and the identity key pair
// (private PEM 0600). Existing files are never replaced without `force`. Progress goes to
// `progress`, a summary (kid, paths) to `out`. Returns a process exit code.
int run_keygen(const KeygenOptions& options, std::ostream& out, std::ostream& progress);

}  // namespace cipherpulse::decryptor
