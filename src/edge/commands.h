// `cipherpulse-edge init` and `cipherpulse-edge status`.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>

namespace cipherpulse::edge {

struct InitOptions {
    std::string device_id;
    std::string server_url;
    std::filesystem::path identity;  // the decryptor's identity public key to pin
    std::filesystem::path dir = ".";
    std::string ca_file;
    bool force = false;
};

// run_init creates the device key (device.pem 0600, device.pub.pem), pins the decryptor
// identity (decryptor-identity.pub.pem) and writes edge.toml in `dir`, then prints what an
// admin needs to register the device. Never replaces a key without `force`.
int run_init(const InitOptions& options, std::ostream& out, std::ostream& err);

// run_status prints spool depth, last upload, last error and active kid from the spool.
int run_status(const std::filesystem::path& config_path, std::ostream& out, std::ostream& err);

}  // namespace cipherpulse::edge
