// The approver's commands: `approver keygen|add|list|remove` (the Ed25519 keys whose
// decisions the decryptor accepts) and `queries list|show|approve|reject` (pending cohort
// queries in plain words, and the signed decision over a query's canonical hash). They take
// the configuration of `watch` (config/decryptor.toml): the server, the token and the
// database where approvers are pinned.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>

#include "decryptor/config.h"

namespace cipherpulse::decryptor {

// run_approver_keygen writes a new Ed25519 approver key pair: the private key at
// `out_path` (PKCS#8, 0600) and the public key beside it (approver.pem ->
// approver.pub.pem; a name without .pem gets .pub.pem appended). Prints both paths and
// the fingerprint. The private key stays with the approver; only the public key goes to
// `approver add`.
int run_approver_keygen(const std::filesystem::path& out_path, bool force, std::ostream& out,
                        std::ostream& err);

// run_approver_add pins the public key in `public_key_file` under `name`.
int run_approver_add(const DecryptorConfig& config, const std::string& name,
                     const std::filesystem::path& public_key_file, std::ostream& out,
                     std::ostream& err);
int run_approver_list(const DecryptorConfig& config, const std::string& format,
                      std::ostream& out, std::ostream& err);
int run_approver_remove(const DecryptorConfig& config, const std::string& name,
                        std::ostream& out, std::ostream& err);

// run_queries_list lists the server's queries (one status or all) with, for those this
// decryptor decided, its own verdict.
int run_queries_list(const DecryptorConfig& config, const std::string& token,
                     const std::string& status, const std::string& format, std::ostream& out,
                     std::ostream& err);

// run_queries_show prints one query in plain words: who asks and why, which patients,
// range and statistics, what it costs in epsilon and against the analyst's budget, whether
// the policy would let it through, the windows it uses and its canonical hash, recomputed
// here from the document (a mismatch is reported and exits 4).
int run_queries_show(const DecryptorConfig& config, const std::string& token,
                     const std::string& id, const std::string& format, std::ostream& out,
                     std::ostream& err);

// run_queries_decide signs the decision (approve or reject) with the approver's private
// key and posts it: a JWS of typ cipherpulse-decision/1 over {"query", "hash" (recomputed
// here), "decision", "reason", "ts"} with the key's fingerprint as kid. The key must be
// pinned (`approver add`), so the decryptor will accept it. Refuses a query whose hash does
// not match its document (exit 4) and a query that is not pending.
int run_queries_decide(const DecryptorConfig& config, const std::string& token,
                       const std::string& id, bool approve,
                       const std::filesystem::path& key_file, const std::string& reason,
                       std::ostream& out, std::ostream& err);

}  // namespace cipherpulse::decryptor
