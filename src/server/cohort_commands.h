// Operator commands for cohort statistics on the server's database: cohort add|remove|list|
// show and analyst key (register an analyst token's X25519 result key).
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "server/config.h"

namespace cipherpulse::server {

// run_cohort_add creates the cohort if needed and adds the patients (ids, or lines of
// `patients_file` when not empty; '#' starts a comment).
int run_cohort_add(const ServerConfig& config, const std::string& name,
                   std::vector<std::string> patients, const std::string& patients_file,
                   const std::optional<std::string>& description, std::ostream& out,
                   std::ostream& err);
// run_cohort_remove removes the patients, or the whole cohort when none are given.
int run_cohort_remove(const ServerConfig& config, const std::string& name,
                      const std::vector<std::string>& patients, std::ostream& out,
                      std::ostream& err);
int run_cohort_list(const ServerConfig& config, std::ostream& out, std::ostream& err);
int run_cohort_show(const ServerConfig& config, const std::string& name, std::ostream& out,
                    std::ostream& err);
// run_analyst_key registers the X25519 public key (PEM file) of analyst token `token_id`.
int run_analyst_key(const ServerConfig& config, std::int64_t token_id,
                    const std::string& public_key_path, std::ostream& out, std::ostream& err);

}  // namespace cipherpulse::server
