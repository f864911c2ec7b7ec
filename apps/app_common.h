// Command-line options every cipherpulse program shares. Only the apps include CLI11.
#pragma once

#include <CLI/CLI.hpp>
#include <csignal>
#include <string>

namespace cipherpulse::apps {

// configure_app adds --version and --log-level to `app`, requires one subcommand, and
// ignores SIGPIPE for the whole program.
// Call it before adding subcommands (they inherit the fallthrough).
inline void configure_app(CLI::App& app, const std::string& program, std::string& log_level) {
    // A peer that closed a (TLS) connection must give a write error, not kill the process.
    std::signal(SIGPIPE, SIG_IGN);
    app.set_version_flag("--version", program + " " + CIPHERPULSE_VERSION);
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
        ->capture_default_str();
    app.require_subcommand(1);
    // Options of the program (--log-level) may also follow the subcommand.
    app.fallthrough();
}

// parse_command_line parses argv; on --help/--version it prints and returns 0, on a usage
// error it prints the problem and returns 2 (cipherpulse's bad-input code). Returns -1 when
// the program should go on.
inline int parse_command_line(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    return -1;
}

}  // namespace cipherpulse::apps
