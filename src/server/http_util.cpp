#include "server/http_util.h"

#include <cctype>

namespace cipherpulse::server {

using json = nlohmann::json;

void problem(httplib::Response& res, int status, const std::string& type, const std::string& title,
             const std::string& detail, json extra) {
    json doc = extra.is_object() ? std::move(extra) : json::object();
    doc["type"] = "urn:cipherpulse:problem:" + type;
    doc["title"] = title;
    doc["status"] = status;
    if (!detail.empty()) {
        doc["detail"] = detail;
    }
    res.status = status;
    res.set_content(doc.dump(), "application/problem+json");
}

void send_json(httplib::Response& res, int status, const json& doc) {
    res.status = status;
    res.set_content(doc.dump(), "application/json");
}

std::optional<std::int64_t> query_int(const httplib::Request& req, const char* name,
                                      std::int64_t fallback, bool& bad) {
    if (!req.has_param(name)) {
        return fallback;
    }
    const std::string v = req.get_param_value(name);
    const std::size_t digits = (!v.empty() && v[0] == '-') ? 1 : 0;
    if (v.size() == digits || v.size() > 19 ||
        v.find_first_not_of("0123456789", digits) != std::string::npos) {
        bad = true;
        return std::nullopt;
    }
    try {
        return std::stoll(v);
    } catch (...) {
        bad = true;
        return std::nullopt;
    }
}

bool is_json_content_type(const httplib::Request& req) {
    std::string value = req.get_header_value("Content-Type");
    value = value.substr(0, value.find(';'));
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
        value.pop_back();
    }
    for (auto& c : value) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return value == "application/json";
}

std::optional<json> json_body(const httplib::Request& req, httplib::Response& res) {
    if (!is_json_content_type(req)) {
        problem(res, 415, "unsupported-media-type", "JSON expected",
                "send Content-Type: application/json");
        return std::nullopt;
    }
    auto doc = json::parse(req.body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        problem(res, 400, "malformed-json", "Malformed JSON", "the body is not a JSON object");
        return std::nullopt;
    }
    return doc;
}

}  // namespace cipherpulse::server
