// ServerApp: the running cipherpulse-server — database, writer, sealer and the HTTP API.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "server/config.h"

namespace cipherpulse::server {

class ServerState;

// now_unix_ms is the system clock in Unix milliseconds.
std::int64_t now_unix_ms();

// ServerApp opens (and migrates) the database, loads keys and open windows, and starts the
// writer and the sealer. serve() listens until stop() is called from another thread;
// stop() stops accepting, lets in-flight requests finish and commits the write queue.
class ServerApp {
  public:
    // Throws std::runtime_error for a configuration it cannot run with (missing TLS files,
    // plain HTTP on a non-loopback address without `insecure`, unreadable database).
    // `clock` gives Unix ms; tests pass their own to move time.
    explicit ServerApp(ServerConfig config, std::function<std::int64_t()> clock = now_unix_ms);
    ServerApp(const ServerApp&) = delete;
    ServerApp& operator=(const ServerApp&) = delete;
    ~ServerApp();

    // bind opens the listening socket (port 0 picks a free port); returns the port.
    int bind();
    // serve runs the HTTP server until stop(). Call bind() first.
    void serve();
    void stop();

  private:
    std::unique_ptr<ServerState> state_;
};

}  // namespace cipherpulse::server
