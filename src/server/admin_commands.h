// Operator commands of cipherpulse-server: init, serve, token, device, audit.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include "server/config.h"
#include "store/sqlite.h"

namespace cipherpulse::server {

// open_existing_database opens the database for an operator command and applies pending
// migrations. Throws std::runtime_error when it was never initialised, SqliteError when it
// cannot be opened.
store::Database open_existing_database(const ServerConfig& config);

// run_init creates the database (schema migrations) if needed and, when no active admin
// token exists, creates one and prints it once on `out`.
int run_init(const ServerConfig& config, std::ostream& out, std::ostream& err);
// run_serve runs the server until SIGTERM or SIGINT, then shuts down gracefully.
int run_serve(const ServerConfig& config);

int run_token_create(const ServerConfig& config, const std::string& role, const std::string& label,
                     std::optional<int> expires_days, std::ostream& out, std::ostream& err);
int run_token_list(const ServerConfig& config, std::ostream& out, std::ostream& err);
int run_token_revoke(const ServerConfig& config, std::int64_t id, std::ostream& out,
                     std::ostream& err);
int run_device_add(const ServerConfig& config, const std::string& id, const std::string& patient,
                   const std::string& public_key_path, std::ostream& out, std::ostream& err);
int run_device_revoke(const ServerConfig& config, const std::string& id, std::ostream& out,
                      std::ostream& err);
// run_audit_verify checks the hash chain; exit 0 and the head hash when intact, 3 when not.
int run_audit_verify(const ServerConfig& config, std::ostream& out, std::ostream& err);

}  // namespace cipherpulse::server
