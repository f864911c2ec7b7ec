// The analyst's commands (cipherpulse-analyst): make the result key and pin the decryptor
// identity, ask for cohort statistics, follow a query, open its sealed result, and show
// the privacy budget spent. Each returns the program's exit code and writes what the user
// reads to `out`, problems to `err`.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "analyst/config.h"

namespace cipherpulse::analyst {

// Exit codes beyond common/cli.h's.
inline constexpr int kExitRefused = 3;  // the query was rejected or refused
inline constexpr int kExitTimeout = 4;  // `wait` gave up before a decision

// run_init writes a new X25519 key pair at config.private_key (0600) and
// config.public_key, and pins the decryptor's Ed25519 identity (the identity.pub.pem its
// operator hands over) at config.decryptor_identity. Refuses to replace existing files
// unless `force`. Prints the fingerprints and the command the server's admin runs to
// register the public key.
int run_init(const AnalystConfig& config, const std::filesystem::path& decryptor_identity,
             bool force, std::ostream& out, std::ostream& err);

// RequestOptions is what `request` asks for (see POST /v1/queries).
struct RequestOptions {
    std::string cohort;
    std::vector<std::string> patients;
    std::string metric = "hr";
    std::string from;  // Unix ms or an ISO 8601 UTC date/time
    std::string to;
    std::vector<std::string> statistics;
    std::string epsilon;  // empty with no_noise
    bool no_noise = false;
    std::string purpose;
    std::string format = "table";
};

// run_request posts the query and prints its id, cohort size, patients with data, the
// windows used and the epsilon it will cost once approved. The server's refusal (unknown
// cohort, bad range, unknown statistic...) is printed and exits 2.
int run_request(const AnalystConfig& config, const std::string& token,
                const RequestOptions& options, std::ostream& out, std::ostream& err);

// run_status lists the analyst's queries (`id` empty) or shows one.
int run_status(const AnalystConfig& config, const std::string& token, const std::string& id,
               const std::string& format, std::ostream& out, std::ostream& err);

// run_wait polls the query every `interval_s` until it is released (0), rejected or
// refused (3, with the reason) or `timeout_s` passes (4).
int run_wait(const AnalystConfig& config, const std::string& token, const std::string& id,
             double timeout_s, double interval_s, std::ostream& out, std::ostream& err);

// run_result fetches the query's document and its sealed result, recomputes the document's
// canonical hash, opens the result with the analyst's key from the pinned identity, checks
// that it is the release of exactly that document, and prints it (table, csv or json) to
// `out` or, with `out_file`, into that file (0600). Exits 3 for a rejected or refused
// query, 1 when the result fails a check.
int run_result(const AnalystConfig& config, const std::string& token, const std::string& id,
               const std::string& format, const std::optional<std::filesystem::path>& out_file,
               std::ostream& out, std::ostream& err);

// run_budget adds up the epsilon of the analyst's releases in the last budget.days, as the
// server lists them, against budget.epsilon. The decryptor keeps the ledger of record and
// refuses what would exceed it; this is the analyst's view.
int run_budget(const AnalystConfig& config, const std::string& token, const std::string& format,
               std::ostream& out, std::ostream& err);

}  // namespace cipherpulse::analyst
