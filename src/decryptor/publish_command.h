// `cipherpulse-decryptor publish`: sign the public key document with the identity key
// (JWS, EdDSA) and upload it to the server, where edges fetch and verify it.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>

namespace cipherpulse::decryptor {

struct PublishOptions {
    std::filesystem::path keys_dir;  // holds paillier.pub.json and identity.pem (keygen)
    std::string server_url;          // http(s)://host:port
    std::string ca_file;             // to verify the server's certificate (https)
    std::string token;               // a bearer token with the decryptor role
};

// run_publish signs keys_dir/paillier.pub.json with keys_dir/identity.pem and posts it to
// POST /v1/keys. Prints the kid and whether the server stored it as new or already had it.
int run_publish(const PublishOptions& options, std::ostream& out, std::ostream& err);

// sign_key_document returns the compact JWS the server stores and edges verify.
std::string sign_key_document(const std::filesystem::path& keys_dir);

}  // namespace cipherpulse::decryptor
