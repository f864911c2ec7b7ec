// cipherpulse-server: the untrusted store; sums ciphertexts without seeing a value.
#include <CLI/CLI.hpp>
#include <iostream>

#include "common/cli.h"
#include "common/logging.h"
#include "server/aggregate_command.h"

int main(int argc, char** argv) {
    CLI::App app{"cipherpulse-server: stores and aggregates encrypted readings",
                 "cipherpulse-server"};
    app.set_version_flag("--version", std::string("cipherpulse-server ") + CIPHERPULSE_VERSION);
    std::string log_level = "info";
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
        ->capture_default_str();
    app.require_subcommand(1);

    std::string key_path;
    auto* aggregate_cmd = app.add_subcommand(
        "aggregate",
        "validate base64url ciphertexts from stdin and print the ciphertext of their sum");
    aggregate_cmd->add_option("--public-key", key_path, "Paillier public key file")->required();

    CLI11_PARSE(app, argc, argv);

    return cipherpulse::common::run_guarded("cipherpulse-server", [&]() -> int {
        auto logger = cipherpulse::common::init_logging("server", log_level);
        return cipherpulse::server::run_aggregate(key_path, std::cin, std::cout, std::cerr);
    });
}
