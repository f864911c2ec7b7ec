#include "decryptor/keygen_command.h"

#include <sys/stat.h>

#include <chrono>
#include <ostream>
#include <vector>

#include "cipherpulse/ed25519.h"
#include "cipherpulse/keyfile.h"
#include "cipherpulse/paillier.h"
#include "common/cli.h"

namespace cipherpulse::decryptor {
namespace {

// ProgressPrinter draws "p ....+ q ...+" style progress: a dot per candidate tried, '+' per
// prime found, so a 3072-bit keygen visibly moves.
class ProgressPrinter {
  public:
    explicit ProgressPrinter(std::ostream& out) : out_(out) {}
    void operator()(const KeygenEvent& e) {
        switch (e.kind) {
            case KeygenEvent::Kind::kCandidate:
                if (e.prime_index != current_) {
                    current_ = e.prime_index;
                    out_ << (current_ == 0 ? " p " : " q ");
                }
                if (++candidates_ % 8 == 0) {
                    out_ << '.' << std::flush;
                }
                break;
            case KeygenEvent::Kind::kTestRound:
                break;
            case KeygenEvent::Kind::kPrimeFound:
                out_ << '+' << std::flush;
                break;
            case KeygenEvent::Kind::kRetry:
                out_ << " (retry)" << std::flush;
                current_ = -1;
                break;
            case KeygenEvent::Kind::kKeyChecked:
                out_ << " checked" << std::flush;
                break;
        }
    }

  private:
    std::ostream& out_;
    int current_ = -1;
    long candidates_ = 0;
};

}  // namespace

int run_keygen(const KeygenOptions& options, std::ostream& out, std::ostream& progress) {
    namespace fs = std::filesystem;
    const fs::path& dir = options.out_dir;
    std::error_code ec;
    if (!fs::exists(dir)) {
        fs::create_directories(dir, ec);
        if (ec) {
            progress << "cipherpulse-decryptor: error: cannot create " << dir << ": "
                     << ec.message() << "\n";
            return common::kExitFailure;
        }
        ::chmod(dir.c_str(), 0700);
    }
    if (!options.force) {
        for (const char* name :
             {kPrivateKeyFile, kPublicKeyFile, kIdentityKeyFile, kIdentityPublicFile}) {
            if (fs::exists(dir / name)) {
                progress << "cipherpulse-decryptor: error: " << (dir / name).string()
                         << " exists; refusing to replace a key (use --force)\n";
                return common::kExitBadInput;
            }
        }
    }
    auto start = std::chrono::steady_clock::now();
    if (options.show_progress) {
        progress << "generating " << options.bits << "-bit Paillier key:" << std::flush;
    }
    ProgressPrinter printer(progress);
    KeygenProgress callback;
    if (options.show_progress) {
        callback = [&printer](const KeygenEvent& e) { printer(e); };
    }
    PrivateKey key = PrivateKey::generate(options.bits, callback);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (options.show_progress) {
        progress << " done in " << static_cast<int>(seconds * 10) / 10.0 << " s\n";
    }
    Ed25519PrivateKey identity = Ed25519PrivateKey::generate();

    std::vector<fs::path> written;
    auto check = [&](const Status& status, const char* name) {
        if (!status) {
            progress << "cipherpulse-decryptor: error: " << status.error().message << "\n";
            return false;
        }
        written.push_back(dir / name);
        return true;
    };
    if (!check(save_private_key(dir / kPrivateKeyFile, key, options.force, options.passphrase),
               kPrivateKeyFile) ||
        !check(save_public_key(dir / kPublicKeyFile, key.public_key(), options.force),
               kPublicKeyFile) ||
        !check(identity.save(dir / kIdentityKeyFile, options.force), kIdentityKeyFile) ||
        !check(identity.public_key().save(dir / kIdentityPublicFile, options.force),
               kIdentityPublicFile)) {
        // No half-written key set: remove what this run wrote.
        for (const auto& path : written) {
            fs::remove(path, ec);
        }
        return common::kExitFailure;
    }
    out << "kid: " << key.public_key().kid() << "\n"
        << "modulus bits: " << key.public_key().modulus_bits() << "\n"
        << "private key: " << (dir / kPrivateKeyFile).string()
        << (options.passphrase != nullptr ? " (sealed with passphrase)" : "") << "\n"
        << "public key: " << (dir / kPublicKeyFile).string() << "\n"
        << "identity key: " << (dir / kIdentityKeyFile).string() << "\n"
        << "identity public key: " << (dir / kIdentityPublicFile).string() << "\n";
    return common::kExitOk;
}

}  // namespace cipherpulse::decryptor
