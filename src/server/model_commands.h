// `cipherpulse-server model train|add|list|remove|predict`: the model owner's training (in
// the clear, on the owner's machine) and the operator's management of served models.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>

#include "scoring/train.h"
#include "server/config.h"

namespace cipherpulse::server {

// run_model_train trains on a CSV table (label column `target`, positive when > 0), writes
// the model file (0644: it holds no secret of the hospital, but it is the owner's model) and
// prints the metrics. Exit 0, 2 for a bad table or options.
int run_model_train(const std::filesystem::path& data, const std::filesystem::path& out_path,
                    const scoring::TrainOptions& options, std::ostream& out, std::ostream& err);

// run_model_add validates a model file and stores it (exit 2 if invalid or, without
// `replace`, when another model has its id).
int run_model_add(const ServerConfig& config, const std::filesystem::path& file, bool replace,
                  std::ostream& out, std::ostream& err);
int run_model_list(const ServerConfig& config, std::ostream& out, std::ostream& err);
int run_model_remove(const ServerConfig& config, const std::string& id, std::ostream& out,
                     std::ostream& err);

// run_model_predict scores a CSV or JSON table in the clear with a model file: the owner's
// reference for what encrypted scoring must print (`--format table|csv|json`).
int run_model_predict(const std::filesystem::path& model_file,
                      const std::filesystem::path& input, const std::string& format,
                      std::ostream& out, std::ostream& err);

}  // namespace cipherpulse::server
