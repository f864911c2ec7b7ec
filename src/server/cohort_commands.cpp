#include "server/cohort_commands.h"

#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <set>

#include "cipherpulse/envelope.h"
#include "common/cli.h"
#include "server/admin_commands.h"
#include "server/audit.h"
#include "server/auth.h"
#include "server/cohort_store.h"
#include "server/app.h"
#include "server/ingest.h"

namespace cipherpulse::server {
namespace {

constexpr const char* kProgram = "cipherpulse-server: ";

bool check_name(const std::string& name, std::ostream& err) {
    if (!valid_cohort_name(name)) {
        err << kProgram << "error: a cohort name is 1-64 characters of A-Z a-z 0-9 . _ -\n";
        return false;
    }
    return true;
}

}  // namespace

int run_cohort_add(const ServerConfig& config, const std::string& name,
                   std::vector<std::string> patients, const std::string& patients_file,
                   const std::optional<std::string>& description, std::ostream& out,
                   std::ostream& err) {
    if (!check_name(name, err)) {
        return common::kExitBadInput;
    }
    if (!patients_file.empty()) {
        std::ifstream in(patients_file);
        if (!in) {
            err << kProgram << "error: cannot read " << patients_file << "\n";
            return common::kExitBadInput;
        }
        std::string line;
        while (std::getline(in, line)) {
            line = line.substr(0, line.find('#'));
            const auto b = line.find_first_not_of(" \t\r");
            const auto e = line.find_last_not_of(" \t\r");
            if (b != std::string::npos) {
                patients.push_back(line.substr(b, e - b + 1));
            }
        }
    }
    std::set<std::string> unique;
    for (const auto& p : patients) {
        if (!valid_identifier(p)) {
            err << kProgram << "error: invalid patient id '" << p.substr(0, 64)
                << "' (1-128 characters of A-Z a-z 0-9 . _ : -)\n";
            return common::kExitBadInput;
        }
        unique.insert(p);
    }
    if (unique.empty()) {
        err << kProgram << "error: give at least one patient (--patient or --patients-file)\n";
        return common::kExitBadInput;
    }
    if (unique.size() > config.cohort_max_patients) {
        err << kProgram << "error: more than " << config.cohort_max_patients
            << " patients ([cohort] max_patients)\n";
        return common::kExitBadInput;
    }
    store::Database db = open_existing_database(config);
    store::Transaction tx(db);
    const std::int64_t now = now_unix_ms();
    const std::int64_t added = add_cohort_members(
        db, name, std::vector<std::string>(unique.begin(), unique.end()), description, now);
    const auto info = find_cohort(db, name);
    if (info->members > static_cast<std::int64_t>(config.cohort_max_patients)) {
        err << kProgram << "error: the cohort would have " << info->members
            << " members, more than [cohort] max_patients\n";
        return common::kExitBadInput;  // rolled back
    }
    append_audit(db, now, "cli", "cohort.add", name,
                 nlohmann::json{{"added", added}, {"members", info->members}}.dump());
    tx.commit();
    out << "cohort " << name << ": " << added << " added, " << info->members << " members\n";
    return common::kExitOk;
}

int run_cohort_remove(const ServerConfig& config, const std::string& name,
                      const std::vector<std::string>& patients, std::ostream& out,
                      std::ostream& err) {
    if (!check_name(name, err)) {
        return common::kExitBadInput;
    }
    store::Database db = open_existing_database(config);
    store::Transaction tx(db);
    auto removed = remove_cohort_members(db, name, patients);
    if (!removed) {
        err << kProgram << "error: no cohort '" << name << "'\n";
        return common::kExitBadInput;
    }
    append_audit(db, now_unix_ms(), "cli", patients.empty() ? "cohort.remove" : "cohort.update",
                 name, nlohmann::json{{"removed", *removed}}.dump());
    tx.commit();
    if (patients.empty()) {
        out << "removed cohort " << name << " (" << *removed << " members)\n";
    } else {
        out << "cohort " << name << ": " << *removed << " removed\n";
    }
    return common::kExitOk;
}

int run_cohort_list(const ServerConfig& config, std::ostream& out, std::ostream&) {
    store::Database db = open_existing_database(config);
    out << std::left << std::setw(28) << "name" << std::setw(9) << "members" << "description\n";
    for (const auto& c : list_cohorts(db)) {
        out << std::setw(28) << c.name << std::setw(9) << c.members << c.description << "\n";
    }
    return common::kExitOk;
}

int run_cohort_show(const ServerConfig& config, const std::string& name, std::ostream& out,
                    std::ostream& err) {
    store::Database db = open_existing_database(config);
    auto info = find_cohort(db, name);
    if (!info) {
        err << kProgram << "error: no cohort '" << name << "'\n";
        return common::kExitBadInput;
    }
    out << "cohort " << info->name << " (" << info->members << " members)";
    if (!info->description.empty()) {
        out << ": " << info->description;
    }
    out << "\n";
    for (const auto& p : cohort_members(db, name)) {
        out << "  " << p << "\n";
    }
    return common::kExitOk;
}

int run_analyst_key(const ServerConfig& config, std::int64_t token_id,
                    const std::string& public_key_path, std::ostream& out, std::ostream& err) {
    auto key = X25519PublicKey::load(public_key_path);
    if (!key) {
        err << kProgram << "error: " << key.error().message << "\n";
        return common::kExitBadInput;
    }
    store::Database db = open_existing_database(config);
    store::Transaction tx(db);
    std::optional<TokenInfo> target;
    for (const auto& t : list_tokens(db)) {
        if (t.id == token_id) {
            target = t;
        }
    }
    if (!target || target->role != Role::kAnalyst || target->revoked_ms) {
        err << kProgram << "error: no active analyst token with id " << token_id
            << " (see 'token list')\n";
        return common::kExitBadInput;
    }
    const std::int64_t now = now_unix_ms();
    AnalystKey stored{token_id, key.value().to_pem(), key.value().fingerprint(), now};
    set_analyst_key(db, stored);
    append_audit(db, now, "cli", "analyst.key", std::to_string(token_id),
                 nlohmann::json{{"fingerprint", stored.fingerprint}}.dump());
    tx.commit();
    out << "analyst token " << token_id << " (" << target->label << "): result key "
        << stored.fingerprint << "\n";
    return common::kExitOk;
}

}  // namespace cipherpulse::server
