#include "common/http_client.h"

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

}  // namespace cipherpulse::common
