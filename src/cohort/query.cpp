#include "cohort/query.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cipherpulse/secure.h"
#include "cohort/noise.h"

namespace cipherpulse::cohort {

using json = nlohmann::json;

namespace {

struct KindName {
    Statistic::Kind kind;
    const char* name;
    bool threshold;
};

constexpr KindName kKinds[] = {
    {Statistic::Kind::kCount, "count", false},
    {Statistic::Kind::kMean, "mean", false},
    {Statistic::Kind::kSd, "sd", false},
    {Statistic::Kind::kHistogram, "histogram", false},
    {Statistic::Kind::kShareAbove, "share_above", true},
    {Statistic::Kind::kShareBelow, "share_below", true},
    {Statistic::Kind::kMinutesAbove, "minutes_above", true},
    {Statistic::Kind::kMinutesBelow, "minutes_below", true},
    {Statistic::Kind::kMeanRr, "mean_rr", false},
    {Statistic::Kind::kRmssd, "rmssd", false},
    {Statistic::Kind::kContactLost, "contact_lost", false},
};

constexpr const char* kAllowed =
    "count, mean, sd, histogram, share_above:T, share_below:T, minutes_above:T, "
    "minutes_below:T, mean_rr, rmssd, contact_lost";

bool valid_patient_id(const std::string& id) {
    if (id.empty() || id.size() > 128) {
        return false;
    }
    return std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' ||
               c == '-';
    });
}

QueryError bad(int status, std::string type, std::string field, std::string message) {
    return QueryError{status, std::move(type), std::move(field), std::move(message)};
}

const json* member(const json& body, const char* name) {
    auto it = body.find(name);
    return it == body.end() ? nullptr : &*it;
}

}  // namespace

bool is_bin_edge(int bpm) {
    return bpm >= 30 && bpm <= 220 && bpm % 5 == 0;
}

Result<Statistic> parse_statistic(std::string_view text) {
    std::string_view name = text;
    std::optional<std::string_view> arg;
    if (auto colon = text.find(':'); colon != std::string_view::npos) {
        name = text.substr(0, colon);
        arg = text.substr(colon + 1);
    }
    for (const auto& k : kKinds) {
        if (name != k.name) {
            continue;
        }
        if (k.threshold != arg.has_value()) {
            return Error{ErrorCode::kInvalidEncoding,
                         std::string(k.name) +
                             (k.threshold ? " needs a threshold, e.g. " + std::string(k.name) + ":100"
                                          : " takes no threshold")};
        }
        Statistic s{k.kind, 0};
        if (arg) {
            if (arg->empty() || arg->size() > 3 ||
                arg->find_first_not_of("0123456789") != std::string_view::npos) {
                return Error{ErrorCode::kInvalidEncoding,
                             "threshold of " + std::string(k.name) + " must be whole bpm"};
            }
            s.threshold_bpm = std::stoi(std::string(*arg));
            if (!is_bin_edge(s.threshold_bpm)) {
                return Error{ErrorCode::kOutOfRange,
                             "threshold " + std::string(*arg) +
                                 " bpm is not a histogram bin edge (30, 35, ..., 220)"};
            }
        }
        return s;
    }
    return Error{ErrorCode::kInvalidEncoding,
                 "unknown statistic '" + std::string(text.substr(0, 40)) + "' (allowed: " +
                     kAllowed + ")"};
}

std::string statistic_text(const Statistic& s) {
    for (const auto& k : kKinds) {
        if (k.kind == s.kind) {
            return k.threshold ? std::string(k.name) + ":" + std::to_string(s.threshold_bpm)
                               : std::string(k.name);
        }
    }
    return "?";
}

const char* sum_name(Sum s) {
    switch (s) {
        case Sum::kRecords: return "records";
        case Sum::kSamples: return "samples";
        case Sum::kSumBpm: return "sum_bpm_deci";
        case Sum::kSumBpmSq: return "sum_bpm_deci_sq";
        case Sum::kHistogram: return "histogram";
        case Sum::kRrCount: return "rr_count";
        case Sum::kSumRr: return "sum_rr_ms";
        case Sum::kRrDiffCount: return "rr_diff_count";
        case Sum::kSumRrDiffSq: return "sum_rr_diff_sq";
        case Sum::kContactLost: return "contact_lost";
    }
    return "?";
}

std::vector<Sum> sums_needed(const std::vector<Statistic>& statistics) {
    std::set<Sum> out;
    for (const auto& s : statistics) {
        switch (s.kind) {
            case Statistic::Kind::kCount:
                out.insert({Sum::kRecords, Sum::kSamples});
                break;
            case Statistic::Kind::kMean:
                out.insert({Sum::kSamples, Sum::kSumBpm});
                break;
            case Statistic::Kind::kSd:
                out.insert({Sum::kSamples, Sum::kSumBpm, Sum::kSumBpmSq});
                break;
            case Statistic::Kind::kHistogram:
            case Statistic::Kind::kShareAbove:
            case Statistic::Kind::kShareBelow:
                out.insert(Sum::kHistogram);
                break;
            case Statistic::Kind::kMinutesAbove:
            case Statistic::Kind::kMinutesBelow:
                out.insert({Sum::kHistogram, Sum::kRecords});
                break;
            case Statistic::Kind::kMeanRr:
                out.insert({Sum::kRrCount, Sum::kSumRr});
                break;
            case Statistic::Kind::kRmssd:
                out.insert({Sum::kRrDiffCount, Sum::kSumRrDiffSq});
                break;
            case Statistic::Kind::kContactLost:
                out.insert(Sum::kContactLost);
                break;
        }
    }
    return {out.begin(), out.end()};
}

std::variant<QueryRequest, QueryError> parse_query_request(const json& body,
                                                           const QueryLimits& limits) {
    if (!body.is_object()) {
        return bad(400, "invalid-query", "", "the body must be a JSON object");
    }
    static const std::set<std::string> kKnown = {"cohort",  "patients", "metric",  "from_ms",
                                                 "to_ms",   "statistics", "epsilon", "purpose"};
    for (const auto& [key, value] : body.items()) {
        if (!kKnown.count(key)) {
            return bad(400, "invalid-query", key.substr(0, 64),
                       "unknown member '" + key.substr(0, 64) + "'");
        }
    }
    QueryRequest q;
    const json* cohort = member(body, "cohort");
    const json* patients = member(body, "patients");
    if ((cohort != nullptr) == (patients != nullptr)) {
        return bad(400, "invalid-query", "cohort", "give exactly one of 'cohort' or 'patients'");
    }
    if (cohort) {
        if (!cohort->is_string() || !valid_patient_id(cohort->get<std::string>())) {
            return bad(400, "invalid-query", "cohort",
                       "cohort must be a name of 1-128 letters, digits or . _ : -");
        }
        q.cohort = cohort->get<std::string>();
    } else {
        if (!patients->is_array() || patients->empty()) {
            return bad(400, "invalid-query", "patients", "patients must be a non-empty array");
        }
        if (patients->size() > limits.max_patients) {
            return bad(422, "query-too-large", "patients",
                       "at most " + std::to_string(limits.max_patients) + " patients");
        }
        std::set<std::string> unique;
        for (const auto& p : *patients) {
            if (!p.is_string() || !valid_patient_id(p.get<std::string>())) {
                return bad(400, "invalid-query", "patients",
                           "each patient must be an id of 1-128 letters, digits or . _ : -");
            }
            if (!unique.insert(p.get<std::string>()).second) {
                return bad(400, "invalid-query", "patients",
                           "patient '" + p.get<std::string>() + "' is listed twice");
            }
        }
        q.patients.assign(unique.begin(), unique.end());
    }
    if (const json* metric = member(body, "metric")) {
        if (!metric->is_string()) {
            return bad(400, "invalid-query", "metric", "metric must be a string");
        }
        q.metric = metric->get<std::string>();
        if (q.metric != "hr") {
            return bad(422, "unsupported-metric", "metric",
                       "cohort statistics are available for metric 'hr' only");
        }
    }
    for (const char* name : {"from_ms", "to_ms"}) {
        const json* t = member(body, name);
        if (!t || !t->is_number_integer()) {
            return bad(400, "invalid-query", name, std::string(name) + " must be an integer (Unix ms)");
        }
        (std::string(name) == "from_ms" ? q.from_ms : q.to_ms) = t->get<std::int64_t>();
    }
    if (q.from_ms < 0 || q.to_ms <= q.from_ms) {
        return bad(422, "invalid-range", "to_ms", "the range is empty: to_ms must be after from_ms");
    }
    if (q.to_ms - q.from_ms > limits.max_range_ms) {
        return bad(422, "invalid-range", "to_ms",
                   "the range is longer than " + std::to_string(limits.max_range_ms / 86400000) +
                       " days");
    }
    if (q.from_ms % limits.align_ms != 0 || q.to_ms % limits.align_ms != 0) {
        return bad(422, "invalid-range", "from_ms",
                   "from_ms and to_ms must be multiples of " + std::to_string(limits.align_ms) +
                       " ms (whole minutes)");
    }
    const json* stats = member(body, "statistics");
    if (!stats || !stats->is_array() || stats->empty() || stats->size() > 32) {
        return bad(400, "invalid-query", "statistics",
                   "statistics must be an array of 1 to 32 names");
    }
    for (const auto& s : *stats) {
        if (!s.is_string()) {
            return bad(400, "invalid-query", "statistics", "each statistic must be a string");
        }
        auto parsed = parse_statistic(s.get<std::string>());
        if (!parsed) {
            return bad(422, "unknown-statistic", "statistics", parsed.error().message);
        }
        if (std::find(q.statistics.begin(), q.statistics.end(), parsed.value()) !=
            q.statistics.end()) {
            return bad(400, "invalid-query", "statistics",
                       "statistic '" + s.get<std::string>() + "' is listed twice");
        }
        q.statistics.push_back(parsed.value());
    }
    std::sort(q.statistics.begin(), q.statistics.end(), [](const Statistic& a, const Statistic& b) {
        return std::pair(static_cast<int>(a.kind), a.threshold_bpm) <
               std::pair(static_cast<int>(b.kind), b.threshold_bpm);
    });
    const json* eps = member(body, "epsilon");
    if (!eps) {
        return bad(400, "invalid-query", "epsilon",
                   "epsilon is required: a number such as 1 or 0.5, or null for no noise");
    }
    if (!eps->is_null()) {
        std::string text;
        if (eps->is_string()) {
            text = eps->get<std::string>();
        } else if (eps->is_number_integer()) {
            text = std::to_string(eps->get<std::int64_t>());
        } else if (eps->is_number_float()) {
            // A JSON number such as 0.5 prints back exactly with at most 3 decimals.
            text = eps->dump();
        } else {
            return bad(400, "invalid-query", "epsilon", "epsilon must be a number, a string or null");
        }
        q.epsilon_milli = parse_epsilon_milli(text);
        if (!q.epsilon_milli) {
            return bad(422, "invalid-epsilon", "epsilon",
                       "epsilon must be in (0, 100] with at most three decimals");
        }
    }
    if (const json* purpose = member(body, "purpose")) {
        if (!purpose->is_string() || purpose->get<std::string>().size() > limits.max_purpose_bytes) {
            return bad(400, "invalid-query", "purpose",
                       "purpose must be a text of at most " +
                           std::to_string(limits.max_purpose_bytes) + " bytes");
        }
        q.purpose = purpose->get<std::string>();
    }
    return q;
}

std::optional<std::vector<Piece>> tile_range(std::int64_t from_ms, std::int64_t to_ms,
                                             std::vector<GranularityLength> granularities) {
    std::sort(granularities.begin(), granularities.end(),
              [](const auto& a, const auto& b) { return a.length_ms > b.length_ms; });
    std::vector<Piece> out;
    // Intervals still to cover, each tiled by the next finer granularity.
    std::vector<std::pair<std::int64_t, std::int64_t>> todo = {{from_ms, to_ms}};
    for (const auto& g : granularities) {
        std::vector<std::pair<std::int64_t, std::int64_t>> rest;
        for (auto [a, b] : todo) {
            const std::int64_t first = (a + g.length_ms - 1) / g.length_ms * g.length_ms;
            const std::int64_t last = b / g.length_ms * g.length_ms;
            if (first >= last) {
                rest.emplace_back(a, b);
                continue;
            }
            out.push_back(Piece{g.name, g.length_ms, first, last});
            if (a < first) {
                rest.emplace_back(a, first);
            }
            if (last < b) {
                rest.emplace_back(last, b);
            }
        }
        todo = std::move(rest);
    }
    if (!todo.empty()) {
        return std::nullopt;
    }
    std::sort(out.begin(), out.end(), [](const Piece& x, const Piece& y) { return x.from_ms < y.from_ms; });
    return out;
}

json document_json(const QueryDocument& doc) {
    json stats = json::array();
    for (const auto& s : doc.request.statistics) {
        stats.push_back(statistic_text(s));
    }
    json windows = json::array();
    for (const auto& w : doc.windows) {
        windows.push_back(json::array(
            {w.id, w.patient, w.granularity, w.start_ms, w.length_ms, w.record_count,
             w.aggregate_sha256}));
    }
    json j;
    j["v"] = "cipherpulse-query/1";
    j["id"] = doc.id;
    j["analyst"] = {{"token", doc.analyst_token}, {"label", doc.analyst_label},
                    {"key", doc.analyst_key}};
    j["requested_ms"] = doc.requested_ms;
    j["cohort"] = doc.request.cohort ? json(*doc.request.cohort) : json(nullptr);
    j["members"] = doc.members;
    j["metric"] = doc.request.metric;
    j["from_ms"] = doc.request.from_ms;
    j["to_ms"] = doc.request.to_ms;
    j["statistics"] = stats;
    j["epsilon_milli"] = doc.request.epsilon_milli ? json(*doc.request.epsilon_milli) : json(nullptr);
    j["purpose"] = doc.request.purpose;
    j["record_seconds"] = doc.record_seconds;
    j["cap_records"] = doc.cap_records;
    j["kid"] = doc.kid;
    j["schema"] = doc.schema;
    j["windows"] = windows;
    j["aggregate_sha256"] = doc.aggregate_sha256;
    return j;
}

Result<QueryDocument> parse_document(const json& j) {
    auto fail = [](const std::string& what) {
        return Error{ErrorCode::kInvalidEncoding, "query document: " + what};
    };
    try {
        if (!j.is_object() || j.value("v", "") != "cipherpulse-query/1") {
            return fail("not a cipherpulse-query/1 document");
        }
        QueryDocument d;
        d.id = j.at("id").get<std::string>();
        const json& a = j.at("analyst");
        d.analyst_token = a.at("token").get<std::int64_t>();
        d.analyst_label = a.at("label").get<std::string>();
        d.analyst_key = a.at("key").get<std::string>();
        d.requested_ms = j.at("requested_ms").get<std::int64_t>();
        if (!j.at("cohort").is_null()) {
            d.request.cohort = j.at("cohort").get<std::string>();
        }
        d.members = j.at("members").get<std::vector<std::string>>();
        d.request.metric = j.at("metric").get<std::string>();
        d.request.from_ms = j.at("from_ms").get<std::int64_t>();
        d.request.to_ms = j.at("to_ms").get<std::int64_t>();
        for (const auto& s : j.at("statistics")) {
            auto st = parse_statistic(s.get<std::string>());
            if (!st) {
                return fail(st.error().message);
            }
            d.request.statistics.push_back(st.value());
        }
        if (!j.at("epsilon_milli").is_null()) {
            d.request.epsilon_milli = j.at("epsilon_milli").get<std::uint32_t>();
        }
        d.request.purpose = j.at("purpose").get<std::string>();
        d.record_seconds = j.at("record_seconds").get<std::int64_t>();
        d.cap_records = j.at("cap_records").get<std::int64_t>();
        d.kid = j.at("kid").get<std::string>();
        d.schema = j.at("schema").get<std::string>();
        for (const auto& w : j.at("windows")) {
            if (!w.is_array() || w.size() != 7) {
                return fail("a window is not a 7-element array");
            }
            d.windows.push_back(QueryWindow{w[0].get<std::int64_t>(), w[1].get<std::string>(),
                                            w[2].get<std::string>(), w[3].get<std::int64_t>(),
                                            w[4].get<std::int64_t>(), w[5].get<std::int64_t>(),
                                            w[6].get<std::string>()});
        }
        d.aggregate_sha256 = j.at("aggregate_sha256").get<std::string>();
        if (d.record_seconds <= 0 || d.cap_records < 0) {
            return fail("record_seconds and cap_records must be positive");
        }
        return d;
    } catch (const json::exception& e) {
        return fail(std::string("missing or mistyped member (") + e.what() + ")");
    }
}

std::string canonical_hash(const QueryDocument& doc) {
    return sha256_hex("cipherpulse-query/1\n" + document_json(doc).dump());
}

std::vector<std::pair<std::string, std::int64_t>> records_per_patient(
    const std::vector<QueryWindow>& windows) {
    std::map<std::string, std::int64_t> per;
    for (const auto& w : windows) {
        per[w.patient] += w.record_count;
    }
    return {per.begin(), per.end()};
}

std::size_t patients_with_data(const std::vector<QueryWindow>& windows) {
    std::size_t n = 0;
    for (const auto& [patient, records] : records_per_patient(windows)) {
        n += records > 0 ? 1 : 0;
    }
    return n;
}

}  // namespace cipherpulse::cohort
