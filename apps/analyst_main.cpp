// cipherpulse-analyst: asks for cohort statistics and opens the sealed releases. Holds the
// analyst's X25519 result key; never sees a patient's values.
#include <iostream>
#include <optional>

#include "analyst/commands.h"
#include "analyst/config.h"
#include "app_common.h"
#include "common/cli.h"
#include "common/logging.h"

int main(int argc, char** argv) {
    CLI::App app{
        "cipherpulse-analyst: cohort statistics, released only after approval and "
        "sealed to the analyst's key",
        "cipherpulse-analyst"};
    std::string log_level = "warn";
    cipherpulse::apps::configure_app(app, "cipherpulse-analyst", log_level);
    std::string config_path = "analyst.toml";
    app.add_option("--config", config_path,
                   "configuration file (see config/analyst.toml); the defaults apply when "
                   "the default file is absent")
        ->capture_default_str();

    std::string identity_path;
    bool force = false;
    auto* init_cmd = app.add_subcommand(
        "init", "make the analyst's X25519 result key pair and pin the decryptor identity");
    init_cmd
        ->add_option("--decryptor-identity", identity_path,
                     "the decryptor's Ed25519 identity public key (identity.pub.pem)")
        ->required();
    init_cmd->add_flag("--force", force, "replace existing keys");

    namespace an = cipherpulse::analyst;
    an::RequestOptions request;
    auto* request_cmd = app.add_subcommand("request", "ask for cohort statistics");
    auto* cohort_opt = request_cmd->add_option("--cohort", request.cohort, "a named cohort");
    auto* patient_opt = request_cmd->add_option("--patient", request.patients,
                                                "a patient id (repeat for an explicit list)");
    cohort_opt->excludes(patient_opt);
    request_cmd->add_option("--metric", request.metric, "the vital sign")->capture_default_str();
    request_cmd
        ->add_option("--from", request.from, "start: Unix ms, 2026-12-01, 2026-12-01T06:00Z or -7d")
        ->required();
    request_cmd->add_option("--to", request.to, "end (exclusive), same forms")->required();
    request_cmd
        ->add_option("--statistic", request.statistics,
                     "count, mean, sd, histogram, share_above:B, share_below:B, "
                     "minutes_above:B, minutes_below:B, mean_rr, rmssd, contact_lost "
                     "(repeat; B a multiple of 5 in 30..220)")
        ->required();
    auto* eps_opt = request_cmd->add_option("--epsilon", request.epsilon,
                                            "privacy cost (differential privacy), e.g. 1 or 0.5");
    auto* no_noise_opt = request_cmd->add_flag(
        "--no-noise", request.no_noise, "exact figures (only where the decryptor allows it)");
    eps_opt->excludes(no_noise_opt);
    request_cmd->add_option("--purpose", request.purpose, "why you ask (shown to the approver)");
    request_cmd->add_option("--format", request.format, "table or json")
        ->check(CLI::IsMember({"table", "json"}))
        ->capture_default_str();

    std::string id, format = "table";
    auto* status_cmd = app.add_subcommand("status", "list your queries, or show one");
    status_cmd->add_option("id", id, "query id (q_...)");
    status_cmd->add_option("--format", format, "table or json")
        ->check(CLI::IsMember({"table", "json"}))
        ->capture_default_str();

    double timeout_s = 600, interval_s = 2;
    auto* wait_cmd = app.add_subcommand(
        "wait", "wait for a decision: exit 0 released, 3 rejected or refused, 4 timed out");
    wait_cmd->add_option("id", id, "query id (q_...)")->required();
    wait_cmd->add_option("--timeout", timeout_s, "seconds to wait at most")->capture_default_str();
    wait_cmd->add_option("--interval", interval_s, "seconds between polls")->capture_default_str();

    std::optional<std::string> out_file;
    auto* result_cmd = app.add_subcommand(
        "result", "open the sealed release: verify, decrypt and print its figures");
    result_cmd->add_option("id", id, "query id (q_...)")->required();
    result_cmd->add_option("--format", format, "table, csv or json")
        ->check(CLI::IsMember({"table", "csv", "json"}))
        ->capture_default_str();
    result_cmd->add_option("--out", out_file, "write to this file (mode 0600) instead of stdout");

    auto* budget_cmd =
        app.add_subcommand("budget", "the privacy budget your releases spent in the window");
    budget_cmd->add_option("--format", format, "table or json")
        ->check(CLI::IsMember({"table", "json"}))
        ->capture_default_str();

    if (int rc = cipherpulse::apps::parse_command_line(app, argc, argv); rc >= 0) {
        return rc;
    }
    return cipherpulse::common::run_guarded("cipherpulse-analyst", [&]() -> int {
        const bool default_config = app.get_option("--config")->count() == 0;
        auto config = an::load_analyst_config(config_path, default_config);
        if (!config) {
            std::cerr << "cipherpulse-analyst: error: " << config.error().message << "\n";
            return cipherpulse::common::kExitBadInput;
        }
        const auto& c = config.value();
        const bool level_given = app.get_option("--log-level")->count() > 0;
        auto logger =
            cipherpulse::common::init_logging("analyst", level_given ? log_level : c.log_level);
        if (*init_cmd) {
            return an::run_init(c, identity_path, force, std::cout, std::cerr);
        }
        auto token = an::read_analyst_token(c);
        if (!token) {
            std::cerr << "cipherpulse-analyst: error: " << token.error().message << "\n";
            return cipherpulse::common::kExitBadInput;
        }
        if (*request_cmd) {
            return an::run_request(c, token.value(), request, std::cout, std::cerr);
        }
        if (*status_cmd) {
            return an::run_status(c, token.value(), id, format, std::cout, std::cerr);
        }
        if (*wait_cmd) {
            return an::run_wait(c, token.value(), id, timeout_s, interval_s, std::cout, std::cerr);
        }
        if (*result_cmd) {
            std::optional<std::filesystem::path> out;
            if (out_file) {
                out = *out_file;
            }
            return an::run_result(c, token.value(), id, format, out, std::cout, std::cerr);
        }
        return an::run_budget(c, token.value(), format, std::cout, std::cerr);
    });
}
