// cipherpulse-edge: encrypts readings beside the wearable; plaintext never leaves it.
#include <CLI/CLI.hpp>
#include <iostream>

#include "common/cli.h"
#include "common/logging.h"
#include "edge/encrypt_command.h"

int main(int argc, char** argv) {
    CLI::App app{"cipherpulse-edge: encrypts heart-rate statistics on the device",
                 "cipherpulse-edge"};
    app.set_version_flag("--version", std::string("cipherpulse-edge ") + CIPHERPULSE_VERSION);
    std::string log_level = "info";
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
        ->capture_default_str();
    app.require_subcommand(1);

    cipherpulse::edge::EncryptOptions encrypt;
    std::string mode = "fast";
    auto* encrypt_cmd = app.add_subcommand(
        "encrypt", "encrypt decimal integers from stdin, one per line, to base64url ciphertexts");
    encrypt_cmd->add_option("--public-key", encrypt.public_key_path, "Paillier public key file")
        ->required();
    encrypt_cmd->add_option("--mode", mode, "textbook (fresh r^n) or fast (DJN, precomputed)")
        ->check(CLI::IsMember({"textbook", "fast"}))
        ->capture_default_str();

    CLI11_PARSE(app, argc, argv);

    return cipherpulse::common::run_guarded("cipherpulse-edge", [&]() -> int {
        auto logger = cipherpulse::common::init_logging("edge", log_level);
        encrypt.mode = cipherpulse::edge::parse_mode(mode).value();
        return cipherpulse::edge::run_encrypt(encrypt, std::cin, std::cout, std::cerr);
    });
}
