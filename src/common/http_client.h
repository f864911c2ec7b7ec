// HTTP clients of the programs (edge, decryptor and analyst talking to the server).
#pragma once

#include <httplib.h>

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>

#include "cipherpulse/result.h"

namespace cipherpulse::common {

// make_http_client returns a client for `url` (http://host:port or https://host:port). For
// https the server's certificate is verified, against `ca_file` when given. Returns nullptr
// for a URL cpp-httplib cannot use.
std::unique_ptr<httplib::Client> make_http_client(const std::string& url,
                                                  const std::string& ca_file, int timeout_s);

// JsonClient sends bearer-authenticated requests whose answers are JSON (the commands of
// the decryptor and the analyst tool).
class JsonClient {
  public:
    JsonClient(const std::string& url, const std::string& ca_file, int timeout_s,
               std::string token);
    ~JsonClient();
    JsonClient(const JsonClient&) = delete;
    JsonClient& operator=(const JsonClient&) = delete;

    // request sends GET (body null) or POST (a JSON body) and answers the status and the
    // JSON body. Fails (kIo) when the server cannot be reached or does not answer JSON, and
    // (kInvalidEncoding) for a URL the client cannot use.
    Result<std::pair<int, nlohmann::json>> request(const std::string& method,
                                                   const std::string& path,
                                                   const nlohmann::json* body = nullptr);

  private:
    std::unique_ptr<httplib::Client> client_;
    std::string url_;
    std::string token_;
};

// problem_text describes a non-2xx answer: "the server answered 422 (invalid-range, field
// from_ms): <detail>" from a problem+json body, or just the status.
std::string problem_text(int status, const nlohmann::json& body);
// problem_text of an answer's body text (JSON or not).
std::string problem_text(int status, const std::string& body);

}  // namespace cipherpulse::common
