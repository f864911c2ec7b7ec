// `cipherpulse-decryptor watch`: the long-running service. It pages through the server's
// sealed windows from a cursor kept in the decryptor's own database, opens each window
// (decrypt + integrity checks, and for a sample of them a full re-verification against the
// raw signed records), evaluates the alert rules and queues alerts; a delivery thread sends
// them by e-mail and SMS with retries, recording every attempt.
//
// Exactly-once effect: everything a window changes is committed in one transaction (its
// chunk's); the cursor moves with the last chunk of a page, and windows fetched again after
// a kill are recognised by their ledger entries and change nothing (see state.h).
// Deliveries are at least once: a kill between the SMTP server's acceptance and the commit
// of "sent" resends the same message, with the same Message-ID (e-mail) and Idempotency-Key
// (SMS), on restart.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cipherpulse/result.h"
#include "decryptor/config.h"
#include "decryptor/notify.h"
#include "decryptor/release.h"
#include "decryptor/rules.h"
#include "decryptor/state.h"

namespace httplib {
class Client;
}

namespace cipherpulse::decryptor {

using Clock = std::function<std::int64_t()>;  // Unix ms

// system_clock_ms is the default Clock.
std::int64_t system_clock_ms();

// PollStats counts what one poll did.
struct PollStats {
    int windows = 0;    // windows examined
    int released = 0;   // decrypted, checked and evaluated
    int integrity = 0;  // integrity failures (alerts raised)
    int skipped = 0;    // not for this decryptor (unknown key, other metric)
    int repeated = 0;   // seen before with the same aggregate
    int alerts = 0;     // alert events queued
    int verified = 0;   // windows re-verified against raw records
    int queries_released = 0;  // approved cohort queries released to their analysts
    int queries_refused = 0;   // approved cohort queries refused (policy or integrity)
};

class Watcher {
  public:
    // The watcher uses `config` (server, watch, notify, rules), the private keys, the bearer
    // token of the decryptor role and one notifier per enabled channel.
    Watcher(DecryptorConfig config, KeyRing keys, std::string token,
            std::vector<std::unique_ptr<Notifier>> notifiers, Clock clock = system_clock_ms);
    ~Watcher();
    Watcher(const Watcher&) = delete;
    Watcher& operator=(const Watcher&) = delete;

    // poll_once fetches and processes every window sealed after the stored cursor, then
    // checks for silent devices. Fails (kIo) when the server cannot be reached or answers
    // with an error; windows processed before that stay processed.
    Result<PollStats> poll_once();

    // process_page processes one page of `GET /v1/windows` as received (for benchmarks and
    // tests: poll_once fetches pages itself).
    Result<PollStats> process_page(const std::string& body);

    // deliver_due makes one attempt at every delivery that is due; returns how many.
    int deliver_due();

    // run long-polls the server (`long_poll`; otherwise it polls every poll interval),
    // polls again at once after a poll that found windows, and delivers on a thread of its
    // own until `stop`; returns the exit code (0 on a requested stop).
    int run(const std::atomic<bool>& stop);

    // run_once polls until the feed is exhausted, then delivers until nothing is due now
    // (no waiting for backoffs); exit code 0, 1 when the server was unreachable, 4 when a
    // window failed its integrity checks.
    int run_once();

    StateStore& store() noexcept { return store_; }

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    StateStore& store_;
};

// make_notifiers builds the enabled notifiers of `config`.
std::vector<std::unique_ptr<Notifier>> make_notifiers(const DecryptorConfig& config);

// load_key_ring loads the private key and the previous keys of `config` (passphrase from
// the configured file or variable).
Result<KeyRing> load_key_ring(const DecryptorConfig& config);

// read_token reads the decryptor's bearer token as configured.
Result<std::string> read_token(const DecryptorConfig& config);

// alert_message turns a stored alert into what the notifiers send.
AlertMessage alert_message(const StoredAlert& alert, const AlertingConfig& alerting);

}  // namespace cipherpulse::decryptor
