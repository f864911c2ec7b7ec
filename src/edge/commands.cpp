#include "edge/commands.h"

#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <ostream>

#include "cipherpulse/ed25519.h"
#include "cipherpulse/files.h"
#include "common/cli.h"
#include "edge/config.h"
#include "edge/spool.h"

namespace cipherpulse::edge {

int run_init(const InitOptions& o, std::ostream& out, std::ostream& err) {
    namespace fs = std::filesystem;
    if (o.device_id.empty() || o.device_id.size() > 128 ||
        o.device_id.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") !=
            std::string::npos) {
        err << "cipherpulse-edge: error: --device-id must be 1-128 characters of A-Z a-z 0-9 . _ : "
               "-\n";
        return common::kExitBadInput;
    }
    auto identity = Ed25519PublicKey::load(o.identity);
    if (!identity) {
        err << "cipherpulse-edge: error: decryptor identity: " << identity.error().message << "\n";
        return common::kExitBadInput;
    }
    std::error_code ec;
    fs::create_directories(o.dir, ec);
    ::chmod(o.dir.c_str(), 0700);
    const fs::path key_path = o.dir / "device.pem";
    if (fs::exists(key_path) && !o.force) {
        err << "cipherpulse-edge: error: " << key_path.string()
            << " exists; refusing to replace a device key (use --force)\n";
        return common::kExitBadInput;
    }
    Ed25519PrivateKey key = Ed25519PrivateKey::generate();
    EdgeConfig config;
    config.device_id = o.device_id;
    config.server.url = o.server_url;
    config.server.ca_file = o.ca_file;
    config.device_key = "device.pem";
    config.identity = "decryptor-identity.pub.pem";
    config.spool.path = "spool.db";
    for (const Status& s :
         {key.save(key_path, o.force), key.public_key().save(o.dir / "device.pub.pem", true),
          identity.value().save(o.dir / "decryptor-identity.pub.pem", true),
          write_file_atomic(o.dir / "edge.toml", edge_config_text(config), kPublicFileMode,
                            true)}) {
        if (!s) {
            err << "cipherpulse-edge: error: " << s.error().message << "\n";
            return common::kExitFailure;
        }
    }
    out << "device " << o.device_id << " initialised in " << o.dir.string() << "\n"
        << "pinned decryptor identity: " << identity.value().fingerprint() << "\n"
        << "device key fingerprint: " << key.public_key().fingerprint() << "\n\n"
        << "Register it (admin), either on the server host:\n"
        << "  cipherpulse-server device add --id " << o.device_id << " --patient PATIENT_ID "
        << "--public-key " << (o.dir / "device.pub.pem").string() << "\n"
        << "or through the API: POST " << o.server_url << "/v1/devices with\n"
        << "  {\"id\": \"" << o.device_id << "\", \"patient\": \"PATIENT_ID\", "
        << "\"public_key_pem\": <contents of device.pub.pem>}\n\n"
        << "Then: cipherpulse-edge run --config " << (o.dir / "edge.toml").string() << "\n";
    return common::kExitOk;
}

int run_status(const std::filesystem::path& config_path, std::ostream& out, std::ostream& err) {
    auto config = load_edge_config(config_path);
    if (!config) {
        err << "cipherpulse-edge: error: " << config.error().message << "\n";
        return common::kExitBadInput;
    }
    if (!std::filesystem::exists(config.value().spool.path)) {
        out << "spool: none yet (" << config.value().spool.path << ")\n";
        return common::kExitOk;
    }
    Spool spool = Spool::open(config.value().spool);
    SpoolStats s = spool.stats();
    out << "device: " << config.value().device_id << "\n"
        << "server: " << config.value().server.url << "\n"
        << "spool depth: " << s.depth << " records (last sequence number " << s.last_seq << ")\n";
    if (s.last_upload_ms) {
        std::time_t t = static_cast<std::time_t>(*s.last_upload_ms / 1000);
        char text[32];
        std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
        out << "last upload: " << text << "\n";
    } else {
        out << "last upload: never\n";
    }
    out << "last error: " << (s.last_error.empty() ? "none" : s.last_error) << "\n"
        << "active kid: " << (s.active_kid.empty() ? "none yet" : s.active_kid) << "\n"
        << "dropped (spool full): " << s.dropped_oldest << " oldest, " << s.dropped_newest
        << " newest\n"
        << "refused by the server: " << s.dead_lettered << "\n";
    return common::kExitOk;
}

}  // namespace cipherpulse::edge
