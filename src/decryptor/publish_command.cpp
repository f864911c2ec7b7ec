#include "decryptor/publish_command.h"

#include <nlohmann/json.hpp>
#include <ostream>
#include <stdexcept>

#include "cipherpulse/ed25519.h"
#include "cipherpulse/files.h"
#include "cipherpulse/jws.h"
#include "cipherpulse/keyfile.h"
#include "common/cli.h"
#include "common/http_client.h"
#include "decryptor/keygen_command.h"

namespace cipherpulse::decryptor {

std::string sign_key_document(const std::filesystem::path& keys_dir) {
    PublicKey key = load_public_key(keys_dir / kPublicKeyFile).value();
    Ed25519PrivateKey identity = Ed25519PrivateKey::load(keys_dir / kIdentityKeyFile).value();
    return jws_sign(key.to_json(), identity, key.kid(), "paillier-key+json");
}

int run_publish(const PublishOptions& o, std::ostream& out, std::ostream& err) {
    if (o.token.empty()) {
        err << "cipherpulse-decryptor: error: a decryptor token is required\n";
        return common::kExitBadInput;
    }
    const std::string jws = sign_key_document(o.keys_dir);
    auto client_ptr = common::make_http_client(o.server_url, o.ca_file, 30);
    if (!client_ptr) {
        err << "cipherpulse-decryptor: error: invalid server URL '" << o.server_url << "'\n";
        return common::kExitBadInput;
    }
    httplib::Client& client = *client_ptr;
    auto res = client.Post("/v1/keys", {{"Authorization", "Bearer " + o.token}},
                           nlohmann::json{{"jws", jws}}.dump(), "application/json");
    if (!res) {
        err << "cipherpulse-decryptor: failed: cannot reach " << o.server_url << ": "
            << httplib::to_string(res.error()) << "\n";
        return common::kExitFailure;
    }
    auto doc = nlohmann::json::parse(res->body, nullptr, false);
    if (res->status != 200 && res->status != 201) {
        std::string detail = doc.is_object() ? doc.value("title", std::string()) + ": " +
                                                   doc.value("detail", std::string())
                                             : res->body.substr(0, 200);
        err << "cipherpulse-decryptor: error: the server refused the key (" << res->status << " "
            << detail << ")\n";
        return res->status >= 500 ? common::kExitFailure : common::kExitBadInput;
    }
    out << "published key " << doc.value("kid", std::string()) << " ("
        << (res->status == 201 ? "new, now active" : "already active") << ")\n";
    return common::kExitOk;
}

}  // namespace cipherpulse::decryptor
