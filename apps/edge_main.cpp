// cipherpulse-edge: encrypts readings beside the wearable; plaintext never leaves it.
#include <iostream>

#include "app_common.h"

#include "common/cli.h"
#include "common/logging.h"
#include "edge/encrypt_command.h"

int main(int argc, char** argv) {
    CLI::App app{"cipherpulse-edge: encrypts heart-rate statistics on the device",
                 "cipherpulse-edge"};
    std::string log_level = "info";
    cipherpulse::apps::configure_app(app, "cipherpulse-edge", log_level);

    cipherpulse::edge::EncryptOptions encrypt;
    std::string mode = "fast";
    auto* encrypt_cmd = app.add_subcommand(
        "encrypt", "encrypt decimal integers from stdin, one per line, to base64url ciphertexts");
    encrypt_cmd->add_option("--public-key", encrypt.public_key_path, "Paillier public key file")
        ->required();
    encrypt_cmd->add_option("--mode", mode, "textbook (fresh r^n) or fast (DJN, precomputed)")
        ->check(CLI::IsMember({"textbook", "fast"}))
        ->capture_default_str();

    if (int rc = cipherpulse::apps::parse_command_line(app, argc, argv); rc >= 0) {
        return rc;
    }

    return cipherpulse::common::run_guarded("cipherpulse-edge", [&]() -> int {
        auto logger = cipherpulse::common::init_logging("edge", log_level);
        encrypt.mode = cipherpulse::edge::parse_mode(mode).value();
        return cipherpulse::edge::run_encrypt(encrypt, std::cin, std::cout, std::cerr);
    });
}
