#include "common/upload.h"

#include <nlohmann/json.hpp>

#include "cipherpulse/http_signature.h"

namespace cipherpulse::common {

std::string batch_json(const std::string& device, const std::vector<UploadRecord>& records) {
    nlohmann::json doc;
    doc["device"] = device;
    auto& list = doc["records"] = nlohmann::json::array();
    for (const auto& r : records) {
        list.push_back({{"seq", r.seq},
                        {"t", r.t_ms},
                        {"metric", r.metric},
                        {"schema", r.schema},
                        {"kid", r.kid},
                        {"ct", r.ct}});
    }
    return doc.dump();
}

SignedUpload sign_upload(std::string body, const std::string& path, const std::string& device_id,
                         const Ed25519PrivateKey& key, std::int64_t created_s) {
    SignedUpload out;
    out.content_digest = content_digest_sha256(std::string_view(body));
    out.body = std::move(body);
    HttpRequestView view;
    view.method = "POST";
    view.path = path;
    const std::string digest = out.content_digest;
    view.header = [digest](std::string_view name) -> std::optional<std::string> {
        if (name == "content-digest") {
            return digest;
        }
        return std::nullopt;
    };
    SignatureParams params;
    params.components = {"@method", "@path", "content-digest"};
    params.created = created_s;
    params.keyid = device_id;
    params.alg = "ed25519";
    SignatureHeaders headers = sign_request(view, params, key);
    out.signature_input = std::move(headers.signature_input);
    out.signature = std::move(headers.signature);
    return out;
}

}  // namespace cipherpulse::common
