#include "server/aggregate_command.h"

#include <ostream>
#include <vector>

#include "cipherpulse/keyfile.h"
#include "common/cli.h"

namespace cipherpulse::server {

int run_aggregate(const std::string& public_key_path, std::istream& in, std::ostream& out,
                  std::ostream& err) {
    auto key = load_public_key(public_key_path);
    if (!key) {
        err << "cipherpulse-server: error: " << key.error().message << "\n";
        return common::kExitBadInput;
    }
    const PublicKey& pk = key.value();
    std::vector<Ciphertext> all;
    bool ok = common::for_each_line(in, [&](std::size_t number, const std::string& line) {
        auto c = pk.parse_ciphertext_base64url(line);
        if (!c) {
            err << "cipherpulse-server: error: line " << number << ": " << c.error().message
                << "\n";
            return false;
        }
        all.push_back(std::move(c).value());
        return true;
    });
    if (!ok) {
        return common::kExitBadInput;
    }
    if (all.empty()) {
        err << "cipherpulse-server: error: no ciphertexts on standard input\n";
        return common::kExitBadInput;
    }
    out << pk.serialize_base64url(pk.sum(all)) << "\n";
    return common::kExitOk;
}

}  // namespace cipherpulse::server
