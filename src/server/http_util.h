// Pieces every handler of the server's API shares: problem documents (RFC 9457), JSON
// answers and bodies, query parameters.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace cipherpulse::server {

// problem writes an RFC 9457 problem document. `type` is a stable slug documented in
// docs/api/openapi.yaml; `detail` never carries secrets or ciphertexts.
void problem(httplib::Response& res, int status, const std::string& type, const std::string& title,
             const std::string& detail, nlohmann::json extra = nlohmann::json::object());

// send_json answers `doc` with `status`.
void send_json(httplib::Response& res, int status, const nlohmann::json& doc);

// is_json_content_type accepts "application/json" with optional parameters (charset), in
// any letter case, and nothing else.
bool is_json_content_type(const httplib::Request& req);

// json_body parses the body as a JSON object, or answers 415 / 400 and returns nullopt.
std::optional<nlohmann::json> json_body(const httplib::Request& req, httplib::Response& res);

// query_int reads an optional integer query parameter; sets `bad` for one that is not.
std::optional<std::int64_t> query_int(const httplib::Request& req, const char* name,
                                      std::int64_t fallback, bool& bad);

}  // namespace cipherpulse::server
