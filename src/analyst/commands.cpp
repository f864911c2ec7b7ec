#include "analyst/commands.h"

#include <chrono>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <thread>

#include "analyst/release_view.h"
#include "cipherpulse/ed25519.h"
#include "cipherpulse/files.h"
#include "cipherpulse/x25519.h"
#include "cohort/noise.h"
#include "cohort/query.h"
#include "common/cli.h"
#include "common/http_client.h"
#include "common/time_text.h"

namespace cipherpulse::analyst {
namespace {

using common::JsonClient;
using common::problem_text;
using json = nlohmann::json;

constexpr const char* kProgram = "cipherpulse-analyst: ";
constexpr std::int64_t kDayMs = 86'400'000;

int fail(std::ostream& err, const std::string& message, int code = common::kExitBadInput) {
    err << kProgram << "error: " << message << "\n";
    return code;
}

JsonClient client_for(const AnalystConfig& c, const std::string& token) {
    return JsonClient(c.server_url, c.ca_file, c.timeout_s, token);
}

bool valid_query_id(const std::string& id) {
    return id.size() > 2 && id.size() <= 66 && id.rfind("q_", 0) == 0 &&
           id.find_first_not_of(
               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
               std::string::npos;
}

// call sends GET (body null) or POST and answers the JSON of the `expect`ed status, or an
// error naming what the server said (kIo when it could not be reached or failed itself,
// so that common::exit_code_for tells the two apart).
Result<json> call(JsonClient& server, const std::string& path, const json* body = nullptr,
                  int expect = 200) {
    auto got = server.request(body == nullptr ? "GET" : "POST", path, body);
    if (!got) {
        return got.error();
    }
    auto& [status, answer] = got.value();
    if (status != expect) {
        return make_error(status >= 500 ? ErrorCode::kIo : ErrorCode::kInvalidEncoding,
                          problem_text(status, answer));
    }
    return std::move(answer);
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// epsilon_text is a query summary's epsilon ("none": an exact release was asked).
std::string epsilon_text(const json& summary) {
    const auto it = summary.find("epsilon");
    return it != summary.end() && it->is_string() ? it->get<std::string>() : "none";
}

std::string time_or_dash(const json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? common::iso_utc(it->get<std::int64_t>())
                                                    : std::string("-");
}

}  // namespace

int run_init(const AnalystConfig& config, const std::filesystem::path& decryptor_identity,
             bool force, std::ostream& out, std::ostream& err) {
    auto identity = Ed25519PublicKey::load(decryptor_identity);
    if (!identity) {
        return fail(err, "the decryptor identity: " + identity.error().message);
    }
    for (const auto& p : {config.private_key, config.public_key, config.decryptor_identity}) {
        std::error_code ec;
        if (!force && std::filesystem::exists(p, ec)) {
            return fail(err, p + " exists; pass --force to replace the analyst's keys (results "
                                 "sealed to the old key can then no longer be opened)");
        }
        const auto dir = std::filesystem::path(p).parent_path();
        if (!dir.empty()) {
            std::filesystem::create_directories(dir, ec);
            if (ec) {
                return fail(err, "cannot create " + dir.string() + ": " + ec.message(),
                            common::kExitFailure);
            }
        }
    }
    const auto key = X25519PrivateKey::generate();
    if (auto s = key.save(config.private_key, force); !s) {
        return fail(err, s.error().message, common::kExitFailure);
    }
    if (auto s = key.public_key().save(config.public_key, force); !s) {
        return fail(err, s.error().message, common::kExitFailure);
    }
    if (auto s = identity.value().save(config.decryptor_identity, force); !s) {
        return fail(err, s.error().message, common::kExitFailure);
    }
    out << "result key:         " << config.private_key << " (keep it; mode 0600)\n"
        << "public key:         " << config.public_key << "\n"
        << "fingerprint:        " << key.public_key().fingerprint() << "\n"
        << "decryptor identity: " << config.decryptor_identity << " (pinned), fingerprint "
        << identity.value().fingerprint() << "\n"
        << "ask the server's admin to register the public key with your token:\n"
        << "  cipherpulse-server analyst key --token-id ID --public-key " << config.public_key
        << "\n";
    return common::kExitOk;
}

int run_request(const AnalystConfig& config, const std::string& token, const RequestOptions& o,
                std::ostream& out, std::ostream& err) {
    json body;
    if (o.cohort.empty() == o.patients.empty()) {
        return fail(err, "give exactly one of --cohort or --patient");
    }
    if (!o.cohort.empty()) {
        body["cohort"] = o.cohort;
    } else {
        body["patients"] = o.patients;
    }
    const auto from = common::parse_time_arg(o.from, now_ms());
    const auto to = common::parse_time_arg(o.to, now_ms());
    if (!from || !to) {
        return fail(err,
                    (from ? "--to: " + to.error().message : "--from: " + from.error().message));
    }
    body["metric"] = o.metric;
    body["from_ms"] = from.value();
    body["to_ms"] = to.value();
    body["statistics"] = o.statistics;
    if (o.no_noise == !o.epsilon.empty()) {
        return fail(err, "give exactly one of --epsilon (the privacy cost, e.g. 1) or --no-noise");
    }
    body["epsilon"] = o.no_noise ? json(nullptr) : json(o.epsilon);
    if (!o.purpose.empty()) {
        body["purpose"] = o.purpose;
    }
    auto server = client_for(config, token);
    auto posted = call(server, "/v1/queries", &body, 202);
    if (!posted) {
        return fail(err, posted.error().message, common::exit_code_for(posted.error()));
    }
    const json& answer = posted.value();
    if (o.format == "json") {
        out << answer.dump(2) << "\n";
        return common::kExitOk;
    }
    const std::string eps =
        answer.value("epsilon", json()).is_string() ? epsilon_text(answer) : "none (exact figures)";
    out << "query " << answer.value("id", "") << " is pending approval\n"
        << "  patients:   " << answer.value("cohort_size", 0) << " in the "
        << (o.cohort.empty() ? "list" : "cohort") << ", " << answer.value("patients_with_data", 0)
        << " with data\n"
        << "  windows:    " << answer.value("windows", 0) << " sealed windows, "
        << answer.value("records", 0) << " records (at most " << answer.value("cap_records", 0)
        << " per patient)\n"
        << "  privacy:    epsilon " << eps << "\n"
        << "  hash:       " << answer.value("hash", "") << "\n"
        << "next: cipherpulse-analyst wait " << answer.value("id", "") << "\n";
    return common::kExitOk;
}

int run_status(const AnalystConfig& config, const std::string& token, const std::string& id,
               const std::string& format, std::ostream& out, std::ostream& err) {
    auto server = client_for(config, token);
    if (id.empty()) {
        auto list = call(server, "/v1/queries?limit=500");
        if (!list) {
            return fail(err, list.error().message, common::exit_code_for(list.error()));
        }
        const json& queries = list.value()["queries"];
        if (format == "json") {
            out << queries.dump(2) << "\n";
            return common::kExitOk;
        }
        if (queries.empty()) {
            out << "no queries yet\n";
            return common::kExitOk;
        }
        out << std::left << std::setw(28) << "id" << std::setw(10) << "status" << std::setw(22)
            << "asked" << std::setw(9) << "epsilon"
            << "reason\n";
        for (const auto& q : queries) {
            out << std::left << std::setw(28) << q.value("id", "") << std::setw(10)
                << q.value("status", "") << std::setw(22) << time_or_dash(q, "created_ms")
                << std::setw(9) << epsilon_text(q) << q.value("reason", "") << "\n";
        }
        return common::kExitOk;
    }
    if (!valid_query_id(id)) {
        return fail(err, "'" + id.substr(0, 66) + "' is not a query id (q_...)");
    }
    auto q = call(server, "/v1/queries/" + id);
    if (!q) {
        return fail(err, q.error().message, common::exit_code_for(q.error()));
    }
    const json& j = q.value();
    if (format == "json") {
        json shown = j;
        out << shown.dump(2) << "\n";
        return common::kExitOk;
    }
    const json doc = j.value("document", json::object());
    out << "query " << id << ": " << j.value("status", "") << "\n"
        << "  asked:      " << time_or_dash(j, "created_ms") << "\n";
    if (doc.is_object() && doc.contains("from_ms")) {
        out << "  patients:   "
            << (doc["cohort"].is_string() ? "cohort '" + doc["cohort"].get<std::string>() + "'"
                                          : std::string("a list"))
            << ", " << doc.value("members", json::array()).size() << " members\n"
            << "  range:      " << time_or_dash(doc, "from_ms") << " to "
            << time_or_dash(doc, "to_ms") << ", metric " << doc.value("metric", "") << "\n"
            << "  statistics:";
        for (const auto& s : doc.value("statistics", json::array())) {
            out << " " << (s.is_string() ? s.get<std::string>() : "?");
        }
        out << "\n  privacy:    epsilon " << epsilon_text(j) << "\n";
    }
    out << "  decided:    " << time_or_dash(j, "decided_ms") << "\n"
        << "  finished:   " << time_or_dash(j, "finished_ms") << "\n";
    if (j.contains("reason")) {
        out << "  reason:     " << j.value("reason", "") << "\n";
    }
    return common::kExitOk;
}

int run_wait(const AnalystConfig& config, const std::string& token, const std::string& id,
             double timeout_s, double interval_s, std::ostream& out, std::ostream& err) {
    if (!valid_query_id(id)) {
        return fail(err, "'" + id.substr(0, 66) + "' is not a query id (q_...)");
    }
    if (!(interval_s >= 0.05) || !(timeout_s >= 0)) {
        return fail(err, "--interval must be at least 0.05 s and --timeout not negative");
    }
    auto server = client_for(config, token);
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
    std::string last;
    for (;;) {
        auto r = call(server, "/v1/queries/" + id + "/result");
        if (!r && r.error().code != ErrorCode::kIo) {
            return fail(err, r.error().message);  // unknown query, forbidden: no point waiting
        }
        if (r) {
            const std::string status = r.value().value("status", "");
            if (status != last) {
                err << kProgram << id << " is " << status << "\n";
                last = status;
            }
            if (status == "released") {
                out << id << " released: cipherpulse-analyst result " << id << "\n";
                return common::kExitOk;
            }
            if (status == "rejected" || status == "refused") {
                out << id << " " << status << ": " << r.value().value("reason", "(no reason given)")
                    << "\n";
                return kExitRefused;
            }
        } else {
            err << kProgram << "warning: " << r.error().message << " (retrying)\n";
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            out << id << " is still " << (last.empty() ? "unknown" : last) << " after " << timeout_s
                << " s\n";
            return kExitTimeout;
        }
        std::this_thread::sleep_for(
            std::chrono::milliseconds(static_cast<std::int64_t>(interval_s * 1000)));
    }
}

int run_result(const AnalystConfig& config, const std::string& token, const std::string& id,
               const std::string& format, const std::optional<std::filesystem::path>& out_file,
               std::ostream& out, std::ostream& err) {
    if (!valid_query_id(id)) {
        return fail(err, "'" + id.substr(0, 66) + "' is not a query id (q_...)");
    }
    auto key = X25519PrivateKey::load(config.private_key);
    if (!key) {
        return fail(err, "the result key: " + key.error().message + " (run init first)");
    }
    auto identity = Ed25519PublicKey::load(config.decryptor_identity);
    if (!identity) {
        return fail(err, "the pinned decryptor identity: " + identity.error().message);
    }
    auto server = client_for(config, token);
    auto r = call(server, "/v1/queries/" + id + "/result");
    if (!r) {
        return fail(err, r.error().message, common::exit_code_for(r.error()));
    }
    const std::string status = r.value().value("status", "");
    if (status == "rejected" || status == "refused") {
        err << kProgram << id << " was " << status << ": "
            << r.value().value("reason", "(no reason given)") << "\n";
        return kExitRefused;
    }
    if (status != "released" || !r.value().contains("envelope") ||
        !r.value()["envelope"].is_string()) {
        return fail(
            err, id + " is " + status + ", not released yet (cipherpulse-analyst wait " + id + ")");
    }
    auto q = call(server, "/v1/queries/" + id);
    if (!q) {
        return fail(err, q.error().message, common::exit_code_for(q.error()));
    }
    auto doc =
        q.value().contains("document")
            ? cohort::parse_document(q.value()["document"])
            : Result<cohort::QueryDocument>(make_error(ErrorCode::kInvalidEncoding, "no document"));
    if (!doc) {
        return fail(err, "the server's query document: " + doc.error().message,
                    common::kExitFailure);
    }
    const std::string hash = cohort::canonical_hash(doc.value());
    if (hash != q.value().value("hash", "") || doc.value().id != id) {
        return fail(err, "INTEGRITY: the server's query document does not match its hash",
                    common::kExitFailure);
    }
    auto release = open_release(r.value()["envelope"].get<std::string>(), id, hash, key.value(),
                                identity.value());
    if (!release) {
        return fail(err, "INTEGRITY: " + release.error().message, common::kExitFailure);
    }
    std::ostringstream text;
    render_release(release.value(), format, text);
    if (out_file) {
        if (auto s = write_file_atomic(*out_file, text.str(), 0600, true); !s) {
            return fail(err, s.error().message, common::kExitFailure);
        }
        out << "wrote " << out_file->string() << "\n";
        return common::kExitOk;
    }
    out << text.str();
    return common::kExitOk;
}

int run_budget(const AnalystConfig& config, const std::string& token, const std::string& format,
               std::ostream& out, std::ostream& err) {
    auto server = client_for(config, token);
    auto list = call(server, "/v1/queries?status=released&limit=500");
    if (!list) {
        return fail(err, list.error().message, common::exit_code_for(list.error()));
    }
    const std::int64_t since = now_ms() - config.budget_days * kDayMs;
    std::uint64_t spent = 0;
    json rows = json::array();
    for (const auto& s : list.value()["queries"]) {
        const auto finished = s.value("finished_ms", std::int64_t{0});
        if (finished < since) {
            continue;
        }
        const auto milli = cohort::parse_epsilon_milli(epsilon_text(s));
        spent += milli.value_or(0);
        rows.push_back({{"id", s.value("id", "")},
                        {"released_ms", finished},
                        {"epsilon", milli ? json(cohort::format_epsilon(*milli)) : json(nullptr)}});
    }
    const std::uint64_t left = spent >= config.budget_milli ? 0 : config.budget_milli - spent;
    auto eps = [](std::uint64_t m) {
        return cohort::format_epsilon(
            static_cast<std::uint32_t>(std::min<std::uint64_t>(m, 4'000'000'000u)));
    };
    if (format == "json") {
        out << json{{"budget", eps(config.budget_milli)},
                    {"days", config.budget_days},
                    {"spent", eps(spent)},
                    {"left", eps(left)},
                    {"releases", rows}}
                   .dump(2)
            << "\n";
        return common::kExitOk;
    }
    out << "epsilon spent in the last " << config.budget_days << " days: " << eps(spent) << " of "
        << eps(config.budget_milli) << " (" << eps(left) << " left)\n";
    for (const auto& row : rows) {
        out << "  " << std::left << std::setw(28) << row["id"].get<std::string>()
            << common::iso_utc(row["released_ms"].get<std::int64_t>()) << "  epsilon "
            << (row["epsilon"].is_string() ? row["epsilon"].get<std::string>() : "none") << "\n";
    }
    out << "(the decryptor keeps the ledger of record and refuses a query that would exceed "
           "its budget)\n";
    return common::kExitOk;
}

}  // namespace cipherpulse::analyst
