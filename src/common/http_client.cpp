#include "common/http_client.h"

#include <nlohmann/json.hpp>

namespace cipherpulse::common {

std::unique_ptr<httplib::Client> make_http_client(const std::string& url,
                                                  const std::string& ca_file, int timeout_s) {
    std::string base = url;
    if (!base.empty() && base.back() == '/') {
        base.pop_back();
    }
    auto client = std::make_unique<httplib::Client>(base);
    if (!client->is_valid()) {
        return nullptr;
    }
    if (base.rfind("https://", 0) == 0) {
        if (!ca_file.empty()) {
            client->set_ca_cert_path(ca_file.c_str());
        }
        client->enable_server_certificate_verification(true);
    }
    // Small requests go out in two writes (headers, body): without TCP_NODELAY each one waits
    // for the peer's delayed ACK (about 40 ms).
    client->set_tcp_nodelay(true);
    client->set_connection_timeout(timeout_s, 0);
    client->set_read_timeout(timeout_s, 0);
    client->set_write_timeout(timeout_s, 0);
    return client;
}

JsonClient::JsonClient(const std::string& url, const std::string& ca_file, int timeout_s,
                       std::string token)
    : client_(make_http_client(url, ca_file, timeout_s)), url_(url), token_(std::move(token)) {}

JsonClient::~JsonClient() = default;

Result<std::pair<int, nlohmann::json>> JsonClient::request(const std::string& method,
                                                           const std::string& path,
                                                           const nlohmann::json* body) {
    if (!client_) {
        return make_error(ErrorCode::kInvalidEncoding, "invalid server URL '" + url_ + "'");
    }
    const httplib::Headers headers{{"Authorization", "Bearer " + token_}};
    auto res = body == nullptr ? client_->Get(path, headers)
                               : client_->Post(path, headers, body->dump(), "application/json");
    if (!res) {
        return make_error(ErrorCode::kIo,
                          "cannot reach " + url_ + ": " + httplib::to_string(res.error()));
    }
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    if (j.is_discarded()) {
        return make_error(ErrorCode::kIo, method + " " + path + " answered " +
                                              std::to_string(res->status) + " without JSON");
    }
    return std::pair{res->status, std::move(j)};
}

std::string problem_text(int status, const nlohmann::json& body) {
    std::string text = "the server answered " + std::to_string(status);
    if (!body.is_object()) {
        return text;
    }
    std::string slug;
    if (auto t = body.find("type"); t != body.end() && t->is_string()) {
        slug = t->get<std::string>();
        if (auto slash = slug.find_last_of(":/"); slash != std::string::npos) {
            slug = slug.substr(slash + 1);
        }
    }
    if (auto f = body.find("field"); f != body.end() && f->is_string()) {
        slug += (slug.empty() ? "field " : ", field ") + f->get<std::string>();
    }
    if (!slug.empty()) {
        text += " (" + slug + ")";
    }
    if (auto d = body.find("detail"); d != body.end() && d->is_string()) {
        text += ": " + d->get<std::string>();
    }
    return text;
}

std::string problem_text(int status, const std::string& body) {
    return problem_text(status, nlohmann::json::parse(body, nullptr, false));
}

}  // namespace cipherpulse::common
