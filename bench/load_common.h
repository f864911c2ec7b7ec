// What the load generators (ingest_load.cpp, e2e_load.cpp) share: the interrupt flag set by
// SIGINT/SIGTERM/SIGHUP, the wall clock in Unix ms and the process's own CPU time.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <cstdint>

namespace cipherpulse::bench {

inline volatile sig_atomic_t g_interrupted = 0;

extern "C" inline void on_interrupt_signal(int) {
    g_interrupted = 1;
}

// interrupted: SIGINT, SIGTERM or SIGHUP arrived; stop the load and clean up.
inline bool interrupted() {
    return g_interrupted != 0;
}

// install_interrupt_handlers makes SIGINT, SIGTERM and SIGHUP set the flag above and
// ignores SIGPIPE (a peer closing a connection is an error to handle, not a death).
inline void install_interrupt_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_interrupt_signal;
    sigemptyset(&sa.sa_mask);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) {
        ::sigaction(s, &sa, nullptr);
    }
    ::signal(SIGPIPE, SIG_IGN);
}

inline std::int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// self_cpu_seconds is the user + system CPU time of this process.
inline double self_cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return tv(ru.ru_utime) + tv(ru.ru_stime);
}

}  // namespace cipherpulse::bench
