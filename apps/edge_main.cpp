// cipherpulse-edge: beside the wearable; readings are encrypted here and never leave it in
// plaintext.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>

#include "app_common.h"
#include "common/cli.h"
#include "common/logging.h"
#include "edge/commands.h"
#include "edge/config.h"
#include "edge/encrypt_command.h"
#include "edge/runner.h"

namespace {

int run_service(const std::string& config_path, const std::string& cli_log_level, double speed,
                std::optional<double> duration_s, std::optional<std::int64_t> start_ms) {
    using namespace cipherpulse;
    auto config = edge::load_edge_config(config_path);
    if (!config) {
        std::cerr << "cipherpulse-edge: error: " << config.error().message << "\n";
        return common::kExitBadInput;
    }
    if (speed >= 0) {
        config.value().speed = speed;
    }
    if (duration_s) {
        config.value().duration_s = *duration_s;
    }
    if (start_ms) {
        config.value().start_ms = *start_ms;
    }
    common::init_logging("edge", cli_log_level.empty() ? config.value().log_level : cli_log_level);
    const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    auto source = edge::make_source(config.value(), now);
    if (!source) {
        std::cerr << "cipherpulse-edge: error: " << source.error().message << "\n";
        return common::kExitBadInput;
    }
    // SIGTERM and SIGINT stop the service: handled on a thread of their own.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::atomic<bool> stop{false};
    edge::Source* running = source.value().get();
    std::thread waiter([&stop, signals, running] {
        int received = 0;
        sigwait(&signals, &received);
        stop = true;
        running->interrupt();  // a BLE source may be waiting for the next notification
    });
    int rc = edge::run_edge(config.value(), *source.value(), stop);
    pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace cipherpulse;
    CLI::App app{"cipherpulse-edge: encrypts heart-rate statistics on the device",
                 "cipherpulse-edge"};
    std::string log_level = "info";
    apps::configure_app(app, "cipherpulse-edge", log_level);

    edge::InitOptions init;
    std::string identity, dir = ".";
    auto* init_cmd = app.add_subcommand(
        "init", "create the device key, pin the decryptor identity, write edge.toml");
    init_cmd->add_option("--device-id", init.device_id, "this device's id")->required();
    init_cmd->add_option("--server", init.server_url, "server URL, e.g. https://host:8443")
        ->required();
    init_cmd->add_option("--identity", identity, "the decryptor's identity public key (PEM)")
        ->required();
    init_cmd->add_option("--dir", dir, "directory for the key, the pinned identity and edge.toml")
        ->capture_default_str();
    init_cmd->add_option("--ca-file", init.ca_file, "CA certificate(s) to verify the server");
    init_cmd->add_flag("--force", init.force, "replace an existing device key");

    std::string config_path = "edge.toml";
    double speed = -1;
    std::optional<double> duration_s;
    auto* run_cmd = app.add_subcommand("run", "read the source, encrypt, spool and upload");
    run_cmd->add_option("--config", config_path, "edge configuration")->capture_default_str();
    run_cmd->add_option("--speed", speed,
                        "pace readings at this multiple of real time (0: no pacing)");
    run_cmd->add_option("--duration", duration_s, "seconds of simulated data (sim source)");
    std::optional<std::int64_t> start_ms;
    run_cmd->add_option("--start-ms", start_ms,
                        "Unix ms at which the data starts (sim, replay); default: now, or in "
                        "the past when accelerated. Gives reproducible runs");

    auto* status_cmd =
        app.add_subcommand("status", "spool depth, last upload, last error, active kid");
    status_cmd->add_option("--config", config_path, "edge configuration")->capture_default_str();

    edge::EncryptOptions encrypt;
    std::string mode = "fast";
    auto* encrypt_cmd = app.add_subcommand(
        "encrypt", "encrypt decimal integers from stdin, one per line, to base64url ciphertexts");
    encrypt_cmd->add_option("--public-key", encrypt.public_key_path, "Paillier public key file")
        ->required();
    encrypt_cmd->add_option("--mode", mode, "textbook (fresh r^n) or fast (DJN, precomputed)")
        ->check(CLI::IsMember({"textbook", "fast"}))
        ->capture_default_str();

    if (int rc = apps::parse_command_line(app, argc, argv); rc >= 0) {
        return rc;
    }
    const bool log_level_given = app.get_option("--log-level")->count() > 0;

    return common::run_guarded("cipherpulse-edge", [&]() -> int {
        if (*run_cmd) {
            return run_service(config_path, log_level_given ? log_level : "", speed, duration_s,
                               start_ms);
        }
        common::init_logging("edge", log_level);
        if (*init_cmd) {
            init.identity = identity;
            init.dir = dir;
            return edge::run_init(init, std::cout, std::cerr);
        }
        if (*status_cmd) {
            return edge::run_status(config_path, std::cout, std::cerr);
        }
        encrypt.mode = edge::parse_mode(mode).value();
        return edge::run_encrypt(encrypt, std::cin, std::cout, std::cerr);
    });
}
