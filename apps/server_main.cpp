// cipherpulse-server: the untrusted store; validates, stores and sums ciphertexts without
// ever seeing a value.
#include <malloc.h>

#include <cstdlib>
#include <iostream>
#include <optional>

#include "app_common.h"
#include "common/cli.h"
#include "common/logging.h"
#include "server/admin_commands.h"
#include "server/aggregate_command.h"
#include "server/config.h"

int main(int argc, char** argv) {
    using namespace cipherpulse;
    // Each HTTP worker thread would get a malloc arena of its own (glibc allows 8 per core)
    // and keep the memory of the largest page of windows it built: 100 MiB of RSS at 1,000
    // patients. Two arenas hold it near 32 MiB at no measurable cost (bench/RESULTS.md).
    // MALLOC_ARENA_MAX in the environment still wins.
    if (std::getenv("MALLOC_ARENA_MAX") == nullptr) {
        mallopt(M_ARENA_MAX, 2);
    }
    CLI::App app{"cipherpulse-server: stores and aggregates encrypted readings",
                 "cipherpulse-server"};
    std::string log_level = "info";
    apps::configure_app(app, "cipherpulse-server", log_level);
    std::string config_path;
    std::string database;
    app.add_option("--config", config_path, "server configuration (TOML; see config/server.toml)");
    app.add_option("--database", database, "database file (overrides storage.database)");

    auto* init_cmd =
        app.add_subcommand("init", "create the database and print the first admin token (once)");
    auto* serve_cmd = app.add_subcommand("serve", "run the HTTP API until SIGTERM");

    auto* token_cmd = app.add_subcommand("token", "manage bearer tokens")->require_subcommand(1);
    std::string role, label;
    std::optional<int> expires_days;
    auto* token_create = token_cmd->add_subcommand("create", "create a token (printed once)");
    token_create->add_option("--role", role, "admin, clinician, analyst or decryptor")->required();
    token_create->add_option("--label", label, "who or what the token is for");
    token_create->add_option("--expires-days", expires_days, "expire after this many days");
    auto* token_list = token_cmd->add_subcommand("list", "list tokens (never their values)");
    std::int64_t token_id = 0;
    auto* token_revoke = token_cmd->add_subcommand("revoke", "revoke a token");
    token_revoke->add_option("id", token_id, "token id (from 'token list')")->required();

    auto* device_cmd = app.add_subcommand("device", "manage devices")->require_subcommand(1);
    std::string device_id, patient, key_path;
    auto* device_add = device_cmd->add_subcommand("add", "register a device");
    device_add->add_option("--id", device_id, "device id")->required();
    device_add->add_option("--patient", patient, "patient the device is bound to")->required();
    device_add->add_option("--public-key", key_path, "the device's Ed25519 public key (PEM)")
        ->required();
    auto* device_revoke = device_cmd->add_subcommand("revoke", "revoke a device");
    device_revoke->add_option("id", device_id, "device id")->required();

    auto* audit_cmd = app.add_subcommand("audit", "audit log")->require_subcommand(1);
    auto* audit_verify = audit_cmd->add_subcommand("verify", "check the audit hash chain");

    std::string aggregate_key;
    auto* aggregate_cmd = app.add_subcommand(
        "aggregate",
        "validate base64url ciphertexts from stdin and print the ciphertext of their sum");
    aggregate_cmd->add_option("--public-key", aggregate_key, "Paillier public key file")
        ->required();

    if (int rc = apps::parse_command_line(app, argc, argv); rc >= 0) {
        return rc;
    }

    return common::run_guarded("cipherpulse-server", [&]() -> int {
        if (*aggregate_cmd) {
            common::init_logging("server", log_level);
            return server::run_aggregate(aggregate_key, std::cin, std::cout, std::cerr);
        }
        server::ServerConfig config = server::ServerConfig::defaults();
        if (!config_path.empty()) {
            config = server::load_server_config(config_path).value();
        }
        if (!database.empty()) {
            config.database = database;
        }
        if (app.get_option("--log-level")->count() == 0) {
            log_level = config.log_level;
        }
        common::init_logging("server", log_level);
        if (*init_cmd) {
            return server::run_init(config, std::cout, std::cerr);
        }
        if (*serve_cmd) {
            return server::run_serve(config);
        }
        if (*token_create) {
            return server::run_token_create(config, role, label, expires_days, std::cout,
                                            std::cerr);
        }
        if (*token_list) {
            return server::run_token_list(config, std::cout, std::cerr);
        }
        if (*token_revoke) {
            return server::run_token_revoke(config, token_id, std::cout, std::cerr);
        }
        if (*device_add) {
            return server::run_device_add(config, device_id, patient, key_path, std::cout,
                                          std::cerr);
        }
        if (*device_revoke) {
            return server::run_device_revoke(config, device_id, std::cout, std::cerr);
        }
        if (*audit_verify) {
            return server::run_audit_verify(config, std::cout, std::cerr);
        }
        return common::kExitBadInput;
    });
}
