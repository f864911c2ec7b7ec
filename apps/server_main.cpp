// cipherpulse-server: the untrusted store; sums ciphertexts without seeing a value.
#include <iostream>

#include "app_common.h"

#include "common/cli.h"
#include "common/logging.h"
#include "server/aggregate_command.h"

int main(int argc, char** argv) {
    CLI::App app{"cipherpulse-server: stores and aggregates encrypted readings",
                 "cipherpulse-server"};
    std::string log_level = "info";
    cipherpulse::apps::configure_app(app, "cipherpulse-server", log_level);

    std::string key_path;
    auto* aggregate_cmd = app.add_subcommand(
        "aggregate",
        "validate base64url ciphertexts from stdin and print the ciphertext of their sum");
    aggregate_cmd->add_option("--public-key", key_path, "Paillier public key file")->required();

    if (int rc = cipherpulse::apps::parse_command_line(app, argc, argv); rc >= 0) {
        return rc;
    }

    return cipherpulse::common::run_guarded("cipherpulse-server", [&]() -> int {
        auto logger = cipherpulse::common::init_logging("server", log_level);
        return cipherpulse::server::run_aggregate(key_path, std::cin, std::cout, std::cerr);
    });
}
