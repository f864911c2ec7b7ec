// cipherpulse-decryptor: holds the Paillier private key; the only party that decrypts.
#include <iostream>

#include <optional>
#include "app_common.h"

#include "cipherpulse/files.h"
#include "cipherpulse/keyfile.h"
#include "common/cli.h"
#include "common/logging.h"
#include "decryptor/commands.h"
#include "decryptor/config.h"
#include "decryptor/decrypt_command.h"
#include "decryptor/keygen_command.h"
#include "decryptor/publish_command.h"
#include "decryptor/query_commands.h"
#include "decryptor/score_command.h"
#include "decryptor/watch.h"
#include "decryptor/windows_command.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <thread>

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

    // Commands that work from the configuration file of the watch service.
    std::string config_path = "decryptor.toml";
    auto add_config = [&config_path](CLI::App* cmd) {
        cmd->add_option("--config", config_path, "configuration file (see config/decryptor.toml)")
            ->capture_default_str();
    };
    bool watch_once = false;
    auto* watch_cmd = app.add_subcommand(
        "watch", "decrypt sealed windows as they come, evaluate the alert rules, send alerts");
    add_config(watch_cmd);
    watch_cmd->add_flag("--once", watch_once,
                        "process what is there now, make one delivery attempt, and exit");

    cipherpulse::decryptor::StatsOptions stats;
    std::string stats_from = "-24h", stats_to = "now";
    auto* stats_cmd =
        app.add_subcommand("stats", "print a patient's decrypted statistics over a time range");
    add_config(stats_cmd);
    stats_cmd->add_option("--patient", stats.patient, "patient id")->required();
    stats_cmd->add_option("--from", stats_from, "start: Unix ms, 2026-11-21T10:00Z, now, -2h")
        ->capture_default_str();
    stats_cmd->add_option("--to", stats_to, "end (exclusive), same forms")->capture_default_str();
    stats_cmd->add_option("--granularity", stats.granularity,
                          "window length (default: the watch granularity)");
    stats_cmd->add_option("--format", stats.format, "table, csv or json")
        ->check(CLI::IsMember({"table", "csv", "json"}))
        ->capture_default_str();

    std::int64_t verify_window = 0;
    auto* verify_cmd = app.add_subcommand(
        "verify", "re-verify a sealed window against the raw records its devices signed");
    add_config(verify_cmd);
    verify_cmd->add_option("--window", verify_window, "window id")->required();

    auto* alerts_cmd = app.add_subcommand("alerts", "the alert history: list and acknowledge");
    alerts_cmd->require_subcommand(1);
    std::string alerts_patient, alerts_format = "table", ack_by, ack_note;
    bool alerts_open = false;
    int alerts_limit = 100;
    std::int64_t ack_id = 0;
    auto* alerts_list = alerts_cmd->add_subcommand("list", "list alerts, newest first");
    add_config(alerts_list);
    alerts_list->add_option("--patient", alerts_patient, "only this patient");
    alerts_list->add_flag("--open", alerts_open, "only alerts not yet acknowledged");
    alerts_list->add_option("--limit", alerts_limit, "at most this many")->capture_default_str();
    alerts_list->add_option("--format", alerts_format, "table or json")
        ->check(CLI::IsMember({"table", "json"}))
        ->capture_default_str();
    auto* alerts_ack = alerts_cmd->add_subcommand("ack", "acknowledge an alert");
    add_config(alerts_ack);
    alerts_ack->add_option("id", ack_id, "alert id")->required();
    alerts_ack->add_option("--by", ack_by, "who acknowledges (name or role)")->required();
    alerts_ack->add_option("--note", ack_note, "a note for the record");

    cipherpulse::decryptor::ScoreOptions score;
    auto* score_cmd = app.add_subcommand(
        "score", "risk scores of patients, computed by the server on encrypted features");
    add_config(score_cmd);
    score_cmd->add_option("--model", score.model, "model id (GET /v1/models lists them)")
        ->required();
    score_cmd->add_option("--input", score.input, "patients: CSV with a header, or JSON")
        ->required();
    score_cmd->add_option("--format", score.format, "table, csv or json")
        ->check(CLI::IsMember({"table", "csv", "json"}))
        ->capture_default_str();
    score_cmd->add_option("--pack", score.pack,
                          "slot packing: auto (two rows or more), always or never")
        ->check(CLI::IsMember({"auto", "always", "never"}))
        ->capture_default_str();

    // Cohort queries: the approvers' keys and their decisions.
    auto* approver_cmd =
        app.add_subcommand("approver", "approver keys whose signed decisions release queries");
    approver_cmd->require_subcommand(1);
    std::string approver_out, approver_name, approver_pub, list_format = "table";
    bool approver_force = false;
    auto* approver_keygen = approver_cmd->add_subcommand(
        "keygen", "make an approver's Ed25519 key pair (the private key stays with them)");
    approver_keygen->add_option("--out", approver_out, "private key file to write (0600)")
        ->required();
    approver_keygen->add_flag("--force", approver_force, "replace existing files");
    auto* approver_add = approver_cmd->add_subcommand("add", "pin an approver's public key");
    add_config(approver_add);
    approver_add->add_option("--name", approver_name, "who holds the key")->required();
    approver_add->add_option("--public-key", approver_pub, "Ed25519 public key (PEM)")
        ->required();
    auto* approver_list = approver_cmd->add_subcommand("list", "list the pinned approvers");
    add_config(approver_list);
    approver_list->add_option("--format", list_format, "table or json")
        ->check(CLI::IsMember({"table", "json"}))
        ->capture_default_str();
    auto* approver_remove = approver_cmd->add_subcommand("remove", "unpin an approver");
    add_config(approver_remove);
    approver_remove->add_option("--name", approver_name, "the approver")->required();

    auto* queries_cmd =
        app.add_subcommand("queries", "analysts' cohort queries: list, show, approve, reject");
    queries_cmd->require_subcommand(1);
    std::string query_id, query_status, query_key, query_reason;
    auto* queries_list = queries_cmd->add_subcommand("list", "list the server's queries");
    add_config(queries_list);
    queries_list->add_option("--status", query_status,
                             "pending, approved, rejected, released or refused")
        ->check(CLI::IsMember({"pending", "approved", "rejected", "released", "refused"}));
    queries_list->add_option("--format", list_format, "table or json")
        ->check(CLI::IsMember({"table", "json"}))
        ->capture_default_str();
    auto* queries_show = queries_cmd->add_subcommand("show", "one query in plain words");
    add_config(queries_show);
    queries_show->add_option("id", query_id, "query id")->required();
    queries_show->add_option("--format", list_format, "table or json")
        ->check(CLI::IsMember({"table", "json"}))
        ->capture_default_str();
    auto* queries_approve = queries_cmd->add_subcommand("approve", "sign an approval");
    auto* queries_reject = queries_cmd->add_subcommand("reject", "sign a rejection");
    for (auto* cmd : {queries_approve, queries_reject}) {
        add_config(cmd);
        cmd->add_option("id", query_id, "query id")->required();
        cmd->add_option("--key", query_key, "the approver's private key (approver keygen)")
            ->required();
    }
    queries_approve->add_option("--reason", query_reason, "a note for the record");
    queries_reject->add_option("--reason", query_reason, "why (the analyst reads it)")
        ->required();

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
        namespace dec = cipherpulse::decryptor;
        if (*approver_keygen) {
            return dec::run_approver_keygen(approver_out, approver_force, std::cout, std::cerr);
        }
        if (*watch_cmd || *stats_cmd || *verify_cmd || *alerts_cmd || *score_cmd ||
            *approver_cmd || *queries_cmd) {
            auto config = dec::load_decryptor_config(config_path);
            if (!config) {
                std::cerr << "cipherpulse-decryptor: error: " << config.error().message << "\n";
                return cipherpulse::common::kExitBadInput;
            }
            dec::DecryptorConfig& c = config.value();
            if (log_level == "info" && c.log_level != "info") {
                logger = cipherpulse::common::init_logging("decryptor", c.log_level);
            }
            if (*alerts_list) {
                return dec::run_alerts_list(c, alerts_patient, alerts_open, alerts_limit,
                                            alerts_format, std::cout, std::cerr);
            }
            if (*alerts_ack) {
                return dec::run_alerts_ack(c, ack_id, ack_by, ack_note, std::cout, std::cerr);
            }
            if (*approver_add) {
                return dec::run_approver_add(c, approver_name, approver_pub, std::cout, std::cerr);
            }
            if (*approver_list) {
                return dec::run_approver_list(c, list_format, std::cout, std::cerr);
            }
            if (*approver_remove) {
                return dec::run_approver_remove(c, approver_name, std::cout, std::cerr);
            }
            if (*queries_cmd) {
                auto token = dec::read_token(c);
                if (!token) {
                    std::cerr << "cipherpulse-decryptor: error: " << token.error().message
                              << "\n";
                    return cipherpulse::common::kExitBadInput;
                }
                if (*queries_list) {
                    return dec::run_queries_list(c, token.value(), query_status, list_format,
                                                 std::cout, std::cerr);
                }
                if (*queries_show) {
                    return dec::run_queries_show(c, token.value(), query_id, list_format,
                                                 std::cout, std::cerr);
                }
                return dec::run_queries_decide(c, token.value(), query_id, queries_approve->parsed(),
                                               query_key, query_reason, std::cout, std::cerr);
            }
            if (*score_cmd) {
                // Scoring uses its own key, never the data key: no window can be decrypted
                // through it.
                auto token = dec::read_token(c);
                if (!token) {
                    std::cerr << "cipherpulse-decryptor: error: " << token.error().message
                              << "\n";
                    return cipherpulse::common::kExitBadInput;
                }
                return dec::run_score(c, token.value(), score, std::cout, std::cerr);
            }
            auto keys = dec::load_key_ring(c);
            if (!keys) {
                std::cerr << "cipherpulse-decryptor: error: " << keys.error().message << "\n";
                return cipherpulse::common::kExitBadInput;
            }
            auto token = dec::read_token(c);
            if (!token) {
                std::cerr << "cipherpulse-decryptor: error: " << token.error().message << "\n";
                return cipherpulse::common::kExitBadInput;
            }
            if (*stats_cmd) {
                const std::int64_t now = dec::system_clock_ms();
                auto from = dec::parse_time_arg(stats_from, now);
                auto to = dec::parse_time_arg(stats_to, now);
                if (!from || !to) {
                    std::cerr << "cipherpulse-decryptor: error: "
                              << (!from ? from.error().message : to.error().message) << "\n";
                    return cipherpulse::common::kExitBadInput;
                }
                stats.from_ms = from.value();
                stats.to_ms = to.value();
                return dec::run_stats(c, keys.value(), token.value(), stats, std::cout, std::cerr);
            }
            if (*verify_cmd) {
                return dec::run_verify(c, keys.value(), token.value(), verify_window, std::cout,
                                       std::cerr);
            }
            dec::Watcher watcher(c, std::move(keys).value(), token.value(), dec::make_notifiers(c));
            if (watch_once) {
                return watcher.run_once();
            }
            // SIGTERM and SIGINT stop the service: handled on a thread of their own.
            sigset_t signals;
            sigemptyset(&signals);
            sigaddset(&signals, SIGTERM);
            sigaddset(&signals, SIGINT);
            pthread_sigmask(SIG_BLOCK, &signals, nullptr);
            std::atomic<bool> stop{false};
            std::thread waiter([&stop, signals] {
                int received = 0;
                sigwait(&signals, &received);
                spdlog::info("signal {} received: stopping", received);
                stop = true;
            });
            int rc = watcher.run(stop);
            if (!stop.exchange(true)) {
                pthread_kill(waiter.native_handle(), SIGTERM);
            }
            waiter.join();
            return rc;
        }
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
            cipherpulse::decryptor::KeyRing ring;
            ring.add(std::move(key).value());
            return cipherpulse::decryptor::run_windows(ring, windows, std::cout, std::cerr);
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
