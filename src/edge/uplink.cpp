#include "edge/uplink.h"

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

#include "cipherpulse/jws.h"
#include "common/http_client.h"
#include "common/upload.h"

namespace cipherpulse::edge {

struct Uplink::Impl {
    ServerEndpoint endpoint;
    std::string device_id;
    const Ed25519PrivateKey& key;
    Ed25519PublicKey identity;
    std::unique_ptr<httplib::Client> client;
    std::string last_jws;
};

Uplink::Uplink(ServerEndpoint endpoint, std::string device_id, const Ed25519PrivateKey& device_key,
               Ed25519PublicKey identity)
    : impl_(
          new Impl{std::move(endpoint), std::move(device_id), device_key, identity, nullptr, {}}) {
    static const std::regex kUrl(
        R"(^(https?)://([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\])(:[0-9]{1,5})?/?$)");
    if (!std::regex_match(impl_->endpoint.url, kUrl)) {
        throw std::invalid_argument("server URL must look like https://host:port, got '" +
                                    impl_->endpoint.url + "'");
    }
    impl_->client = common::make_http_client(impl_->endpoint.url, impl_->endpoint.ca_file,
                                             impl_->endpoint.timeout_s);
    if (!impl_->client) {
        throw std::invalid_argument("unusable server URL '" + impl_->endpoint.url + "'");
    }
    impl_->client->set_keep_alive(true);
}

Uplink::~Uplink() = default;

Result<PublicKey> Uplink::fetch_active_key() {
    auto res = impl_->client->Get("/v1/keys/active");
    if (!res) {
        return make_error(ErrorCode::kIo,
                          "cannot reach the server: " + httplib::to_string(res.error()));
    }
    if (res->status != 200) {
        return make_error(ErrorCode::kIo,
                          "GET /v1/keys/active answered " + std::to_string(res->status));
    }
    auto doc = nlohmann::json::parse(res->body, nullptr, false);
    if (!doc.is_object() || !doc.contains("jws") || !doc["jws"].is_string()) {
        return make_error(ErrorCode::kInvalidEncoding, "the server's key answer has no \"jws\"");
    }
    auto key = verify_key_document(doc["jws"].get<std::string>());
    if (key) {
        impl_->last_jws = doc["jws"].get<std::string>();
    }
    return key;
}

const std::string& Uplink::last_key_document() const {
    return impl_->last_jws;
}

Result<PublicKey> Uplink::verify_key_document(const std::string& jws) const {
    auto verified = jws_verify(jws, impl_->identity);
    if (!verified) {
        return make_error(ErrorCode::kBadSignature,
                          "the server's encryption key is NOT signed by the pinned decryptor "
                          "identity (" +
                              verified.error().message + "); refusing it");
    }
    auto key = PublicKey::from_json(verified.value().payload);
    if (!key) {
        return make_error(ErrorCode::kInvalidKey,
                          "signed key document is not a valid key: " + key.error().message);
    }
    return key;
}

UploadOutcome Uplink::upload(const std::vector<SpoolRecord>& records, std::int64_t now_s) {
    UploadOutcome out;
    auto signed_upload =
        common::sign_upload(common::batch_json(impl_->device_id, records), common::kReadingsPath,
                            impl_->device_id, impl_->key, now_s);
    auto post = [&] {
        return impl_->client->Post(common::kReadingsPath,
                                   {{"Content-Digest", signed_upload.content_digest},
                                    {"Signature-Input", signed_upload.signature_input},
                                    {"Signature", signed_upload.signature}},
                                   signed_upload.body, "application/json");
    };
    auto res = post();
    if (!res && (res.error() == httplib::Error::Write || res.error() == httplib::Error::Read)) {
        // Most likely a kept-alive connection the server closed meanwhile. An upload is
        // idempotent (same body, same seqs: a repeat is answered as duplicates), so one
        // immediate retry on a fresh connection is safe.
        res = post();
    }
    if (!res) {
        out.error = "no answer from the server: " + httplib::to_string(res.error());
        return out;
    }
    out.status = res->status;
    if (res->has_header("Retry-After")) {
        try {
            out.retry_after_s = std::stoi(res->get_header_value("Retry-After"));
        } catch (...) {
            out.retry_after_s = 0;
        }
    }
    auto doc = nlohmann::json::parse(res->body, nullptr, false);
    if (res->status == 200 && doc.is_object() && doc.contains("records")) {
        out.kind = UploadOutcome::Kind::kAcknowledged;
        for (const auto& r : doc["records"]) {
            out.acknowledged.push_back(r.value("seq", std::int64_t{0}));
            out.late += r.value("late", false) ? 1 : 0;
        }
        return out;
    }
    std::string type = doc.is_object() ? doc.value("type", std::string()) : std::string();
    std::string detail = doc.is_object() ? doc.value("detail", std::string()) : std::string();
    out.error =
        "HTTP " + std::to_string(res->status) + " " + type + (detail.empty() ? "" : ": ") + detail;
    if (res->status == 422 && doc.is_object() && doc.contains("records")) {
        // Records refused for good go to the dead letters; the others are resent.
        out.kind = UploadOutcome::Kind::kRefused;
        for (const auto& r : doc["records"]) {
            if (r.value("status", std::string()) == "rejected") {
                out.refused.emplace_back(
                    r.value("seq", std::int64_t{0}),
                    r.value("type", std::string()) + ": " + r.value("detail", std::string()));
            }
        }
    }
    return out;
}

}  // namespace cipherpulse::edge
