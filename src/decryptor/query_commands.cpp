#include "decryptor/query_commands.h"

#include <httplib.h>

#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cipherpulse/ed25519.h"
#include "cipherpulse/jws.h"
#include "cohort/noise.h"
#include "cohort/query.h"
#include "common/cli.h"
#include "common/http_client.h"
#include "decryptor/queries.h"
#include "decryptor/watch.h"

namespace cipherpulse::decryptor {
namespace {

using json = nlohmann::json;

constexpr int kExitIntegrity = 4;
constexpr const char* kProgram = "cipherpulse-decryptor: ";
constexpr std::int64_t kDayMs = 86'400'000;

int fail(std::ostream& err, const std::string& message, int code = common::kExitBadInput) {
    err << kProgram << "error: " << message << "\n";
    return code;
}

using common::JsonClient;
using common::problem_text;

// Fetched is a query as the server shows it, with its document parsed and its hash
// recomputed.
struct Fetched {
    json raw;
    cohort::QueryDocument doc;
    std::string status;
    std::string server_hash;
    std::string hash;  // recomputed
};

Result<Fetched> fetch_query(JsonClient& server, const std::string& id) {
    if (id.empty() || id.size() > 64 ||
        id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
            std::string::npos) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "'" + id.substr(0, 64) + "' is not a query id (q_...)");
    }
    auto got = server.request("GET", "/v1/queries/" + id);
    if (!got) {
        return got.error();
    }
    auto& [status, j] = got.value();
    if (status != 200) {
        return make_error(ErrorCode::kIo, problem_text(status, j));
    }
    Fetched f;
    f.status = j.value("status", "");
    f.server_hash = j.value("hash", "");
    if (!j.contains("document")) {
        return make_error(ErrorCode::kInvalidEncoding, "the server sent no query document");
    }
    auto doc = cohort::parse_document(j["document"]);
    if (!doc) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "the server's query document does not parse: " + doc.error().message);
    }
    f.doc = std::move(doc).value();
    f.hash = cohort::canonical_hash(f.doc);
    f.raw = std::move(j);
    return f;
}

std::string epsilon_text(const std::optional<std::uint32_t>& e) {
    return e ? cohort::format_epsilon(*e) : std::string("none (exact figures, no noise)");
}

// length_text says how long a range is, in the largest unit that reads well: "30 days",
// "1.50 days", "6 h", "90 s".
std::string length_text(std::int64_t ms) {
    std::ostringstream s;
    auto in = [&](std::int64_t unit, const char* name) {
        s << std::fixed << std::setprecision(ms % unit == 0 ? 0 : 2)
          << static_cast<double>(ms) / static_cast<double>(unit) << " " << name;
    };
    if (ms >= kDayMs) {
        in(kDayMs, "days");
    } else if (ms >= 3'600'000) {
        in(3'600'000, "h");
    } else if (ms >= 60'000) {
        in(60'000, "min");
    } else {
        in(1000, "s");
    }
    return s.str();
}

// PolicyView is what the policy would say of a query today (the decision of record is the
// one `watch` makes when it releases).
struct PolicyView {
    std::size_t with_data = 0;
    int k = 0;
    std::uint64_t spent_milli = 0;
    bool noise_ok = true;
    bool budget_ok = true;
};

PolicyView policy_view(const DecryptorConfig& config, StateStore& store,
                       const cohort::QueryDocument& doc, std::int64_t now_ms) {
    PolicyView v;
    v.with_data = cohort::patients_with_data(doc.windows);
    v.k = std::max(config.cohort.min_patients, kMinPatientsFloor);
    v.spent_milli =
        epsilon_spent_milli(store, doc.analyst_token, now_ms - config.cohort.budget_days * kDayMs);
    const auto& eps = doc.request.epsilon_milli;
    v.noise_ok = eps.has_value() || config.cohort.allow_without_noise;
    v.budget_ok = !eps || v.spent_milli + *eps <= config.cohort.budget_milli;
    return v;
}

void print_plain(const DecryptorConfig& config, const Fetched& f, const PolicyView& p,
                 std::ostream& out) {
    const auto& d = f.doc;
    const auto& r = d.request;
    out << "query " << d.id << " (" << f.status << "), asked " << utc_text(d.requested_ms) << "\n";
    out << "  analyst:    " << d.analyst_label << " (token " << d.analyst_token << "), result key "
        << d.analyst_key << "\n";
    out << "  purpose:    " << (r.purpose.empty() ? "(none given)" : r.purpose) << "\n";
    if (r.cohort) {
        out << "  patients:   cohort '" << *r.cohort << "': " << d.members.size() << " members, "
            << p.with_data << " with data\n";
    } else {
        out << "  patients:   a list of " << d.members.size() << " patients, " << p.with_data
            << " with data\n";
    }
    out << "  range:      " << utc_text(r.from_ms) << " to " << utc_text(r.to_ms) << " ("
        << length_text(r.to_ms - r.from_ms) << "), metric " << r.metric << "\n";
    out << "  statistics:";
    for (const auto& s : r.statistics) {
        out << " " << cohort::statistic_text(s);
    }
    out << "\n";
    out << "  privacy:    epsilon " << epsilon_text(r.epsilon_milli);
    if (r.epsilon_milli) {
        out << "; discrete Laplace noise, each patient capped at " << d.cap_records << " records";
    }
    out << "\n";
    std::map<std::string, std::size_t> by_granularity;
    std::int64_t records = 0;
    for (const auto& w : d.windows) {
        ++by_granularity[w.granularity];
        records += w.record_count;
    }
    out << "  windows:    " << d.windows.size() << " sealed windows (";
    bool first = true;
    for (const auto& [g, n] : by_granularity) {
        out << (first ? "" : ", ") << g << ": " << n;
        first = false;
    }
    out << "), " << records << " records\n";
    out << "  policy:     " << p.with_data << " patients with data, at least " << p.k << ": "
        << (p.with_data >= static_cast<std::size_t>(p.k) ? "ok" : "REFUSED") << "\n";
    out << "              budget: "
        << cohort::format_epsilon(static_cast<std::uint32_t>(p.spent_milli)) << " of "
        << cohort::format_epsilon(config.cohort.budget_milli) << " spent in "
        << config.cohort.budget_days << " days: " << (p.budget_ok ? "ok" : "REFUSED (over budget)")
        << "\n";
    if (!p.noise_ok) {
        out << "              noise: none asked, and exact releases are not allowed here: "
               "REFUSED\n";
    }
    out << "  hash:       " << f.hash << " ("
        << (f.hash == f.server_hash ? "recomputed here: matches the server's"
                                    : "DOES NOT MATCH the server's " + f.server_hash)
        << ")\n";
}

std::filesystem::path public_path_for(const std::filesystem::path& key) {
    std::string s = key.string();
    if (s.size() > 4 && s.compare(s.size() - 4, 4, ".pem") == 0) {
        s.resize(s.size() - 4);
    }
    return s + ".pub.pem";
}

}  // namespace

int run_approver_keygen(const std::filesystem::path& out_path, bool force, std::ostream& out,
                        std::ostream& err) {
    const auto pub = public_path_for(out_path);
    const auto key = Ed25519PrivateKey::generate();
    if (auto s = key.save(out_path, force); !s) {
        return fail(err, s.error().message);
    }
    if (auto s = key.public_key().save(pub, force); !s) {
        return fail(err, s.error().message);
    }
    out << "approver key: " << out_path.string() << " (keep it; mode 0600)\n"
        << "public key:   " << pub.string() << "\n"
        << "fingerprint:  " << key.public_key().fingerprint() << "\n"
        << "pin it on the decryptor: cipherpulse-decryptor approver add --name NAME "
           "--public-key "
        << pub.string() << "\n";
    return common::kExitOk;
}

int run_approver_add(const DecryptorConfig& config, const std::string& name,
                     const std::filesystem::path& public_key_file, std::ostream& out,
                     std::ostream& err) {
    auto key = Ed25519PublicKey::load(public_key_file);
    if (!key) {
        return fail(err, key.error().message);
    }
    auto store = StateStore::open(config.database);
    if (auto s = add_approver(store, name, key.value(), system_clock_ms()); !s) {
        return fail(err, s.error().message);
    }
    out << "approver '" << name << "' pinned, fingerprint " << key.value().fingerprint() << "\n";
    return common::kExitOk;
}

int run_approver_list(const DecryptorConfig& config, const std::string& format, std::ostream& out,
                      std::ostream&) {
    auto store = StateStore::open(config.database);
    const auto approvers = list_approvers(store);
    if (format == "json") {
        json list = json::array();
        for (const auto& a : approvers) {
            list.push_back({{"name", a.name},
                            {"fingerprint", a.fingerprint},
                            {"added", utc_text(a.added_ms)}});
        }
        out << json{{"approvers", list}}.dump(2) << "\n";
        return common::kExitOk;
    }
    if (approvers.empty()) {
        out << "no approver pinned: add one with `approver add --name NAME --public-key FILE`\n";
    }
    for (const auto& a : approvers) {
        out << std::left << std::setw(24) << a.name << " " << a.fingerprint << "  added "
            << utc_text(a.added_ms) << "\n";
    }
    return common::kExitOk;
}

int run_approver_remove(const DecryptorConfig& config, const std::string& name, std::ostream& out,
                        std::ostream& err) {
    auto store = StateStore::open(config.database);
    if (!remove_approver(store, name)) {
        return fail(err, "no approver named '" + name + "'");
    }
    out << "approver '" << name << "' removed: decisions signed with that key are refused\n";
    return common::kExitOk;
}

int run_queries_list(const DecryptorConfig& config, const std::string& token,
                     const std::string& status, const std::string& format, std::ostream& out,
                     std::ostream& err) {
    JsonClient server(config.server_url, config.ca_file, config.timeout_s, token);
    auto got = server.request("GET", "/v1/queries" + (status.empty() ? "" : "?status=" + status));
    if (!got) {
        return fail(err, got.error().message, common::kExitFailure);
    }
    auto& [code, j] = got.value();
    if (code != 200 || !j.contains("queries") || !j["queries"].is_array()) {
        return fail(err, problem_text(code, j),
                    code == 400 ? common::kExitBadInput : common::kExitFailure);
    }
    auto store = StateStore::open(config.database);
    json list = json::array();
    for (const auto& q : j["queries"]) {
        json item = q;
        if (auto e = query_log_entry(store, q.value("id", ""))) {
            item["decryptor"] = {{"status", e->status}, {"reason", e->reason}};
        }
        list.push_back(item);
    }
    if (format == "json") {
        out << json{{"queries", list}}.dump(2) << "\n";
        return common::kExitOk;
    }
    if (list.empty()) {
        out << "no queries" << (status.empty() ? "" : " " + status) << "\n";
    }
    for (const auto& q : list) {
        out << std::left << std::setw(20) << q.value("id", "") << " " << std::setw(9)
            << q.value("status", "") << " analyst token " << q.value("token", 0) << ", asked "
            << utc_text(q.value("created_ms", std::int64_t{0}));
        if (q.contains("decryptor")) {
            out << ", decryptor: " << q["decryptor"].value("status", "");
        }
        out << "\n";
    }
    return common::kExitOk;
}

int run_queries_show(const DecryptorConfig& config, const std::string& token, const std::string& id,
                     const std::string& format, std::ostream& out, std::ostream& err) {
    JsonClient server(config.server_url, config.ca_file, config.timeout_s, token);
    auto f = fetch_query(server, id);
    if (!f) {
        return fail(err, f.error().message, common::exit_code_for(f.error()));
    }
    auto store = StateStore::open(config.database);
    const PolicyView p = policy_view(config, store, f.value().doc, system_clock_ms());
    const bool matches = f.value().hash == f.value().server_hash;
    if (format == "json") {
        json j = cohort::document_json(f.value().doc);
        out << json{{"id", id},
                    {"status", f.value().status},
                    {"hash", f.value().hash},
                    {"hash_matches", matches},
                    {"patients_with_data", p.with_data},
                    {"min_patients", p.k},
                    {"epsilon_spent",
                     cohort::format_epsilon(static_cast<std::uint32_t>(p.spent_milli))},
                    {"budget_ok", p.noise_ok && p.budget_ok},
                    {"document", j}}
                   .dump(2)
            << "\n";
    } else {
        print_plain(config, f.value(), p, out);
    }
    return matches ? common::kExitOk : kExitIntegrity;
}

int run_queries_decide(const DecryptorConfig& config, const std::string& token,
                       const std::string& id, bool approve, const std::filesystem::path& key_file,
                       const std::string& reason, std::ostream& out, std::ostream& err) {
    if (!approve && reason.empty()) {
        return fail(err, "a rejection needs --reason (the analyst reads it)");
    }
    if (reason.size() > 500) {
        return fail(err, "--reason is at most 500 bytes");
    }
    auto key = Ed25519PrivateKey::load(key_file);
    if (!key) {
        return fail(err, key.error().message);
    }
    const std::string fingerprint = key.value().public_key().fingerprint();
    auto store = StateStore::open(config.database);
    auto approver = approver_by_fingerprint(store, fingerprint);
    if (!approver) {
        return fail(err, "this key (" + fingerprint +
                             ") is not a pinned approver: pin it with `approver add` first");
    }
    JsonClient server(config.server_url, config.ca_file, config.timeout_s, token);
    auto f = fetch_query(server, id);
    if (!f) {
        return fail(err, f.error().message, common::exit_code_for(f.error()));
    }
    if (f.value().hash != f.value().server_hash) {
        return fail(err, "the query's hash does not match its document: nothing signed",
                    kExitIntegrity);
    }
    if (f.value().status != "pending") {
        return fail(err, "query " + id + " is " + f.value().status + ", not pending");
    }
    json payload = {{"query", id},
                    {"hash", f.value().hash},
                    {"decision", approve ? "approve" : "reject"},
                    {"ts", system_clock_ms()}};
    if (!reason.empty()) {
        payload["reason"] = reason;
    }
    const json body = {
        {"decision", jws_sign(payload.dump(), key.value(), fingerprint, kDecisionType)}};
    auto got = server.request("POST", "/v1/queries/" + id + "/decision", &body);
    if (!got) {
        return fail(err, got.error().message, common::kExitFailure);
    }
    auto& [code, j] = got.value();
    if (code != 200) {
        return fail(err, problem_text(code, j),
                    code == 409 ? common::kExitBadInput : common::kExitFailure);
    }
    out << "query " << id << (approve ? " approved" : " rejected") << " by " << approver->name
        << " (hash " << f.value().hash.substr(0, 16) << "...)";
    if (approve) {
        out << "; the decryptor releases it on its next round if its own checks pass";
    }
    out << "\n";
    return common::kExitOk;
}

}  // namespace cipherpulse::decryptor
