// Command-line plumbing shared by the three programs: exit codes, passphrases, line input.
#pragma once

#include <functional>
#include <istream>
#include <optional>
#include <string>

#include "cipherpulse/result.h"
#include "cipherpulse/secure.h"

namespace cipherpulse::common {

// Exit codes of every cipherpulse program.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;   // the operation failed (I/O, network, crypto)
inline constexpr int kExitBadInput = 2;  // bad input or configuration, reported clearly
inline constexpr int kExitInterrupted = 130;

// PassphraseSource says where a passphrase comes from; at most one field is set.
struct PassphraseSource {
    std::optional<std::string> file;     // read the first line of this file
    std::optional<std::string> env_var;  // read this environment variable
    bool prompt = false;                 // ask on the terminal without echo
    bool any() const { return file.has_value() || env_var.has_value() || prompt; }
};

// read_passphrase obtains the passphrase from `source`. Fails (kInvalidEncoding) for an
// empty passphrase, a missing variable or an unreadable file. With `confirm` the prompt asks
// twice and fails when the answers differ.
Result<SecretBytes> read_passphrase(const PassphraseSource& source, bool confirm = false);

// for_each_line calls `fn(line_number, line)` for every line of `in`, with a trailing '\r'
// and surrounding blanks removed; stops at the first false return. Returns false if `fn`
// stopped it.
bool for_each_line(std::istream& in,
                   const std::function<bool(std::size_t, const std::string&)>& fn);

// exit_code_for maps a failed operation to an exit code: an I/O or network failure
// (kIo) is kExitFailure, anything else (the input was refused) kExitBadInput.
inline int exit_code_for(const Error& e) {
    return e.code == ErrorCode::kIo ? kExitFailure : kExitBadInput;
}

// run_guarded runs `body`, turning exceptions into a message on stderr and an exit code
// (BadInput and std::invalid_argument -> kExitBadInput, anything else -> kExitFailure).
int run_guarded(const std::string& program, const std::function<int()>& body);

}  // namespace cipherpulse::common
