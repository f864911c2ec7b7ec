// cipherpulse-decryptor: holds the Paillier private key; the only party that decrypts.
#include <iostream>

#include <optional>
#include "app_common.h"

#include "cipherpulse/files.h"
#include "cipherpulse/keyfile.h"
#include "common/cli.h"
#include "common/logging.h"
#include "decryptor/decrypt_command.h"
#include "decryptor/keygen_command.h"
#include "decryptor/publish_command.h"
#include "decryptor/windows_command.h"

namespace {

using cipherpulse::common::PassphraseSource;

// Adds the --passphrase-file / --passphrase-env / --passphrase-prompt options.
void add_passphrase_options(CLI::App* cmd, PassphraseSource& source, const std::string& what) {
    auto* file = cmd->add_option_function<std::string>(
        "--passphrase-file", [&source](const std::string& v) { source.file = v; },
        "read the passphrase " + what + " from the first line of this file (mode 0600)");
    auto* env = cmd->add_option_function<std::string>(
        "--passphrase-env", [&source](const std::string& v) { source.env_var = v; },
        "read the passphrase " + what + " from this environment variable");
    auto* prompt = cmd->add_flag("--passphrase-prompt", source.prompt,
                                 "ask for the passphrase " + what + " on the terminal");
    file->excludes(env)->excludes(prompt);
    env->excludes(prompt);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"cipherpulse-decryptor: key custody and decryption of sealed aggregates",
                 "cipherpulse-decryptor"};
    std::string log_level = "info";
    cipherpulse::apps::configure_app(app, "cipherpulse-decryptor", log_level);

    cipherpulse::decryptor::KeygenOptions keygen;
    std::string out_dir;
    PassphraseSource keygen_pass;
    auto* keygen_cmd = app.add_subcommand(
        "keygen", "generate a Paillier key pair and the decryptor's Ed25519 identity key");
    keygen_cmd->add_option("--bits", keygen.bits, "size of the modulus n (>= 2048)")
        ->capture_default_str();
    keygen_cmd->add_option("--out", out_dir, "directory for the key files")->required();
    keygen_cmd->add_flag("--force", keygen.force, "replace existing key files");
    add_passphrase_options(keygen_cmd, keygen_pass, "sealing the private key");

    std::string key_path;
    bool signed_output = false;
    PassphraseSource decrypt_pass;
    auto* decrypt_cmd = app.add_subcommand(
        "decrypt", "decrypt base64url ciphertexts from stdin, one per line, to decimal");
    decrypt_cmd->add_option("--key", key_path, "private key file (mode 0600)")->required();
    decrypt_cmd->add_flag("--signed", signed_output,
                          "print values above (n-1)/2 as negative numbers");
    add_passphrase_options(decrypt_cmd, decrypt_pass, "of a sealed key");

    cipherpulse::decryptor::PublishOptions publish;
    std::string keys_dir = ".", token_file, token_env;
    auto* publish_cmd = app.add_subcommand(
        "publish", "sign the public key document with the identity key and upload it");
    publish_cmd->add_option("--keys", keys_dir, "directory written by keygen")
        ->capture_default_str();
    publish_cmd->add_option("--server", publish.server_url, "server URL, e.g. https://host:8443")
        ->required();
    publish_cmd->add_option("--ca-file", publish.ca_file, "CA certificate(s) of the server");
    auto* token_file_opt = publish_cmd->add_option(
        "--token-file", token_file, "file holding a decryptor bearer token (mode 0600)");
    auto* token_env_opt = publish_cmd->add_option(
        "--token-env", token_env, "environment variable holding a decryptor bearer token");
    token_file_opt->excludes(token_env_opt);

    cipherpulse::decryptor::WindowsOptions windows;
    std::string windows_key, windows_token_file, windows_token_env;
    PassphraseSource windows_pass;
    auto* windows_cmd = app.add_subcommand(
        "windows", "fetch sealed windows, decrypt and check them, print their statistics");
    windows_cmd->add_option("--key", windows_key, "private key file (mode 0600)")->required();
    windows_cmd->add_option("--server", windows.server_url, "server URL")->required();
    windows_cmd->add_option("--ca-file", windows.ca_file, "CA certificate(s) of the server");
    windows_cmd->add_option("--granularity", windows.granularity, "window length, e.g. 1m")
        ->capture_default_str();
    windows_cmd->add_option("--after", windows.after, "cursor to start after")
        ->capture_default_str();
    windows_cmd->add_option("--format", windows.format, "table or csv")
        ->check(CLI::IsMember({"table", "csv"}))
        ->capture_default_str();
    auto* w_token_file = windows_cmd->add_option("--token-file", windows_token_file,
                                                 "file holding a decryptor token (mode 0600)");
    auto* w_token_env = windows_cmd->add_option("--token-env", windows_token_env,
                                                "environment variable holding a decryptor token");
    w_token_file->excludes(w_token_env);
    add_passphrase_options(windows_cmd, windows_pass, "of a sealed key");

    if (int rc = cipherpulse::apps::parse_command_line(app, argc, argv); rc >= 0) {
        return rc;
    }

    return cipherpulse::common::run_guarded("cipherpulse-decryptor", [&]() -> int {
        auto logger = cipherpulse::common::init_logging("decryptor", log_level);
        auto read_token = [](const std::string& file, const std::string& env) -> std::string {
            std::string token;
            if (!file.empty()) {
                auto secret = cipherpulse::read_private_file(file).value();
                token.assign(reinterpret_cast<const char*>(secret.data()), secret.size());
                while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) {
                    token.pop_back();
                }
            } else if (!env.empty()) {
                const char* value = std::getenv(env.c_str());
                token = value != nullptr ? value : "";
            }
            return token;
        };
        if (*windows_cmd) {
            std::optional<cipherpulse::SecretBytes> pass;
            if (windows_pass.any()) {
                pass = cipherpulse::common::read_passphrase(windows_pass).value();
            }
            auto key = cipherpulse::load_private_key(windows_key, pass ? &*pass : nullptr);
            if (!key) {
                std::cerr << "cipherpulse-decryptor: error: " << key.error().message << "\n";
                return cipherpulse::common::kExitBadInput;
            }
            windows.token = read_token(windows_token_file, windows_token_env);
            return cipherpulse::decryptor::run_windows(key.value(), windows, std::cout, std::cerr);
        }
        if (*publish_cmd) {
            publish.token = read_token(token_file, token_env);
            publish.keys_dir = keys_dir;
            return cipherpulse::decryptor::run_publish(publish, std::cout, std::cerr);
        }
        if (*keygen_cmd) {
            std::optional<cipherpulse::SecretBytes> pass;
            if (keygen_pass.any()) {
                pass = cipherpulse::common::read_passphrase(keygen_pass, true).value();
                keygen.passphrase = &*pass;
            }
            keygen.out_dir = out_dir;
            return cipherpulse::decryptor::run_keygen(keygen, std::cout, std::cerr);
        }
        std::optional<cipherpulse::SecretBytes> pass;
        if (decrypt_pass.any()) {
            pass = cipherpulse::common::read_passphrase(decrypt_pass).value();
        }
        auto key = cipherpulse::load_private_key(key_path, pass ? &*pass : nullptr);
        if (!key) {
            std::cerr << "cipherpulse-decryptor: error: " << key.error().message << "\n";
            return key.error().code == cipherpulse::ErrorCode::kIo
                       ? cipherpulse::common::kExitFailure
                       : cipherpulse::common::kExitBadInput;
        }
        return cipherpulse::decryptor::run_decrypt(key.value(), signed_output, std::cin, std::cout,
                                                   std::cerr);
    });
}
