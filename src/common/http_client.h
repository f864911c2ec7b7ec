// HTTP clients of the programs (edge and decryptor talking to the server).
#pragma once

#include <httplib.h>

#include <memory>
#include <string>

namespace cipherpulse::common {

// make_http_client returns a client for `url` (http://host:port or https://host:port). For
// https the server's certificate is verified, against `ca_file` when given. Returns nullptr
// for a URL cpp-httplib cannot use.
std::unique_ptr<httplib::Client> make_http_client(const std::string& url,
                                                  const std::string& ca_file, int timeout_s);

}  // namespace cipherpulse::common
