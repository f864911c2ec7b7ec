// The upload wire format shared by the edge (which signs) and the server (which verifies):
// a JSON batch of encrypted records, signed per RFC 9421 with a Content-Digest (RFC 9530).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cipherpulse/ed25519.h"

namespace cipherpulse::common {

// kReadingsPath is the upload endpoint.
inline constexpr const char* kReadingsPath = "/v1/readings";

// UploadRecord is one encrypted record as sent: `t_ms` is the start of its micro-window
// (Unix ms), `ct` the base64url ciphertext.
struct UploadRecord {
    std::int64_t seq = 0;
    std::int64_t t_ms = 0;
    std::string metric;
    std::string schema;
    std::string kid;
    std::string ct;
};

// batch_json serializes {"device": ..., "records": [...]}.
std::string batch_json(const std::string& device, const std::vector<UploadRecord>& records);

// SignedUpload is a body with the three headers that authenticate it.
struct SignedUpload {
    std::string body;
    std::string content_digest;   // Content-Digest
    std::string signature_input;  // Signature-Input
    std::string signature;        // Signature
};

// sign_upload signs a POST of `body` to `path` by device `device_id` (the keyid), covering
// @method, @path and content-digest, with created = `created_s` and alg "ed25519".
SignedUpload sign_upload(std::string body, const std::string& path, const std::string& device_id,
                         const Ed25519PrivateKey& key, std::int64_t created_s);

}  // namespace cipherpulse::common
