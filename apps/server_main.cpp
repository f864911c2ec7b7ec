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
#include "server/cohort_commands.h"
#include "server/config.h"
#include "server/model_commands.h"

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

    auto* model_cmd =
        app.add_subcommand("model", "risk models: train (owner), add|list|remove (operator), "
                                    "predict (in the clear)")
            ->require_subcommand(1);
    std::string model_data, model_out = "model.json", model_file, model_id, model_input,
                                model_format = "table";
    bool model_replace = false;
    scoring::TrainOptions train_options;
    auto* model_train = model_cmd->add_subcommand(
        "train", "fit L2-regularised logistic regression on the Cleveland table");
    model_train->add_option("--data", model_data, "training table (CSV, label column 'target')")
        ->required();
    model_train->add_option("--out", model_out, "model file to write")->capture_default_str();
    model_train->add_option("--id", train_options.id, "model id")->capture_default_str();
    model_train->add_option("--lambda", train_options.lambda, "L2 penalty")->capture_default_str();
    model_train->add_option("--seed", train_options.seed, "seed of the stratified split")
        ->capture_default_str();
    model_train->add_option("--folds", train_options.folds, "cross-validation folds")
        ->capture_default_str();
    model_train->add_option("--test-fraction", train_options.test_fraction,
                            "share of each class held out for testing")
        ->capture_default_str();
    model_train->add_option("--scale-bits", train_options.scale_bits,
                            "fixed point: logit = z / 2^bits (4..40)")
        ->capture_default_str();
    auto* model_add = model_cmd->add_subcommand("add", "validate and store a model file");
    model_add->add_option("--file", model_file, "model file (from 'model train')")->required();
    model_add->add_flag("--replace", model_replace, "replace a stored model with the same id");
    auto* model_list = model_cmd->add_subcommand("list", "list stored models");
    auto* model_remove = model_cmd->add_subcommand("remove", "remove a stored model");
    model_remove->add_option("id", model_id, "model id")->required();
    auto* model_predict =
        model_cmd->add_subcommand("predict", "score a table in the clear with a model file");
    model_predict->add_option("--model", model_file, "model file")->required();
    model_predict->add_option("--input", model_input, "patients (CSV or JSON)")->required();
    model_predict->add_option("--format", model_format, "table, csv or json")
        ->capture_default_str();

    auto* cohort_cmd = app.add_subcommand("cohort", "cohorts: named sets of patients analysts "
                                                    "may query")
                           ->require_subcommand(1);
    std::string cohort_name;
    std::vector<std::string> cohort_patients;
    std::string cohort_patients_file;
    std::optional<std::string> cohort_description;
    auto* cohort_add = cohort_cmd->add_subcommand("add", "create a cohort or add patients to it");
    cohort_add->add_option("name", cohort_name, "cohort name")->required();
    cohort_add->add_option("--patient", cohort_patients, "patient id (repeatable)");
    cohort_add->add_option("--patients-file", cohort_patients_file,
                           "file of patient ids, one per line ('#' comments)");
    cohort_add->add_option("--description", cohort_description, "what the cohort is");
    auto* cohort_remove = cohort_cmd->add_subcommand(
        "remove", "remove patients from a cohort, or the whole cohort without --patient");
    cohort_remove->add_option("name", cohort_name, "cohort name")->required();
    cohort_remove->add_option("--patient", cohort_patients, "patient id (repeatable)");
    auto* cohort_list = cohort_cmd->add_subcommand("list", "list cohorts and their sizes");
    auto* cohort_show = cohort_cmd->add_subcommand("show", "list a cohort's members");
    cohort_show->add_option("name", cohort_name, "cohort name")->required();

    auto* analyst_cmd = app.add_subcommand("analyst", "analysts' result keys")
                            ->require_subcommand(1);
    std::int64_t analyst_token = 0;
    std::string analyst_key_path;
    auto* analyst_key = analyst_cmd->add_subcommand(
        "key", "register the X25519 public key results are sealed to for an analyst token");
    analyst_key->add_option("--token-id", analyst_token, "analyst token id (from 'token list')")
        ->required();
    analyst_key->add_option("--public-key", analyst_key_path,
                            "the analyst's X25519 public key (PEM, from 'cipherpulse-analyst "
                            "init')")
        ->required();

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
        if (*model_train) {
            common::init_logging("server", log_level);
            return server::run_model_train(model_data, model_out, train_options, std::cout,
                                           std::cerr);
        }
        if (*model_predict) {
            common::init_logging("server", log_level);
            return server::run_model_predict(model_file, model_input, model_format, std::cout,
                                             std::cerr);
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
        if (*model_add) {
            return server::run_model_add(config, model_file, model_replace, std::cout, std::cerr);
        }
        if (*model_list) {
            return server::run_model_list(config, std::cout, std::cerr);
        }
        if (*model_remove) {
            return server::run_model_remove(config, model_id, std::cout, std::cerr);
        }
        if (*cohort_add) {
            return server::run_cohort_add(config, cohort_name, cohort_patients,
                                          cohort_patients_file, cohort_description, std::cout,
                                          std::cerr);
        }
        if (*cohort_remove) {
            return server::run_cohort_remove(config, cohort_name, cohort_patients, std::cout,
                                             std::cerr);
        }
        if (*cohort_list) {
            return server::run_cohort_list(config, std::cout, std::cerr);
        }
        if (*cohort_show) {
            return server::run_cohort_show(config, cohort_name, std::cout, std::cerr);
        }
        if (*analyst_key) {
            return server::run_analyst_key(config, analyst_token, analyst_key_path, std::cout,
                                           std::cerr);
        }
        if (*audit_verify) {
            return server::run_audit_verify(config, std::cout, std::cerr);
        }
        return common::kExitBadInput;
    });
}
