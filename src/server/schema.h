// The server database schema, as ordered migrations (PRAGMA user_version).
#pragma once

#include <span>

#include "store/sqlite.h"

namespace cipherpulse::server {

// server_migrations lists every schema version; append, never edit a released one.
std::span<const store::Migration> server_migrations();

}  // namespace cipherpulse::server
