// Cohort queries: what an analyst asks for, how the server tiles the range with sealed
// windows, and the canonical query document whose hash the approver signs. Shared by the
// server (validates and computes), the decryptor (re-checks and releases) and the analyst
// tool (builds requests), so all three read the same rules.
//
// Format "cipherpulse-query/1" is described in docs/formats.md section 10.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cipherpulse/result.h"

namespace cipherpulse::cohort {

// Statistic is one figure an analyst may ask for. Thresholds are whole bpm at a histogram
// bin edge (30, 35, ..., 220), so shares and minutes are exact sums of bins.
struct Statistic {
    enum class Kind {
        kCount,         // patients with data, records, samples, minutes of data
        kMean,          // mean heart rate
        kSd,            // standard deviation of the heart rate
        kHistogram,     // samples per 5 bpm bin
        kShareAbove,    // share of samples at or above a threshold
        kShareBelow,    // share of samples below a threshold
        kMinutesAbove,  // minutes at or above a threshold (share x minutes of data)
        kMinutesBelow,
        kMeanRr,        // mean RR interval
        kRmssd,         // root mean square of successive RR differences
        kContactLost,   // readings without skin contact
    };
    Kind kind = Kind::kCount;
    int threshold_bpm = 0;  // the threshold kinds only
    friend bool operator==(const Statistic&, const Statistic&) = default;
};

// parse_statistic reads "count", "mean", "sd", "histogram", "share_above:100",
// "share_below:50", "minutes_above:100", "minutes_below:50", "mean_rr", "rmssd",
// "contact_lost". Refuses (kInvalidEncoding) anything else, naming the allowed values, and
// (kOutOfRange) a threshold that is not a bin edge.
[[nodiscard]] Result<Statistic> parse_statistic(std::string_view text);
// statistic_text is the inverse of parse_statistic.
std::string statistic_text(const Statistic& s);

// Sum names one encrypted sum a release draws on; each gets its own share of epsilon.
enum class Sum {
    kRecords,
    kSamples,
    kSumBpm,
    kSumBpmSq,
    kHistogram,  // the 40 bins together: one patient's samples fall in them at most once
    kRrCount,
    kSumRr,
    kRrDiffCount,
    kSumRrDiffSq,
    kContactLost,
};
const char* sum_name(Sum s);

// sums_needed returns the sums the statistics are derived from, without repeats, in enum
// order.
std::vector<Sum> sums_needed(const std::vector<Statistic>& statistics);

// QueryRequest is the body of POST /v1/queries once validated.
struct QueryRequest {
    std::optional<std::string> cohort;  // a named cohort, or
    std::vector<std::string> patients;  // an explicit list (sorted, unique)
    std::string metric = "hr";
    std::int64_t from_ms = 0;
    std::int64_t to_ms = 0;
    std::vector<Statistic> statistics;           // in canonical order, unique
    std::optional<std::uint32_t> epsilon_milli;  // nullopt: no noise requested
    std::string purpose;
};

// QueryLimits are the server's bounds on a request.
struct QueryLimits {
    std::int64_t max_range_ms = 92LL * 86400000;
    std::int64_t align_ms = 60000;  // the finest granularity
    std::size_t max_patients = 10000;
    std::size_t max_purpose_bytes = 500;
};

// QueryError says why a request was refused: `status` is the HTTP status it maps to (400
// for a malformed body, 422 for a well-formed but unacceptable one) and `field` names the
// member.
struct QueryError {
    int status = 400;
    std::string type;  // problem type slug
    std::string field;
    std::string message;
};

// parse_query_request validates a POST /v1/queries body: exactly one of "cohort" (a name)
// or "patients" (1..max_patients ids), "metric" ("hr"), "from_ms" < "to_ms", both aligned
// to align_ms, the range at most max_range_ms, "statistics" (1..32 distinct, see
// parse_statistic), "epsilon" (a decimal string or number with at most three decimals in
// (0, 100], or null for none) and an optional "purpose" text. Unknown members, wrong
// types, repeats and out-of-range values are refused; never throws for bad input.
std::variant<QueryRequest, QueryError> parse_query_request(const nlohmann::json& body,
                                                           const QueryLimits& limits);

// Piece is one run of aligned slots of a granularity that tiles part of a range.
struct Piece {
    std::string granularity;
    std::int64_t length_ms = 0;
    std::int64_t from_ms = 0;  // first slot's start
    std::int64_t to_ms = 0;    // last slot's end
};

// GranularityLength is a granularity a server keeps: name and window length.
struct GranularityLength {
    std::string name;
    std::int64_t length_ms = 0;
};

// tile_range covers [from_ms, to_ms) with the coarsest whole windows that fit: of the
// granularities (any order), the longest whose aligned slots fit inside the range, then the
// next finer one for the edges, and so on. Returns nullopt if the finest granularity cannot
// cover the edges exactly (the range is not aligned to it). The pieces do not overlap and
// their union is the range.
std::optional<std::vector<Piece>> tile_range(std::int64_t from_ms, std::int64_t to_ms,
                                             std::vector<GranularityLength> granularities);

// QueryWindow is one sealed window a query uses (its aggregate travels separately).
struct QueryWindow {
    std::int64_t id = 0;
    std::string patient;
    std::string granularity;
    std::int64_t start_ms = 0;
    std::int64_t length_ms = 0;
    std::int64_t record_count = 0;
    std::string aggregate_sha256;  // hex SHA-256 of the aggregate's ciphertext bytes
};

// QueryDocument is what the approver signs: who asks, for what, over which patients and
// windows, at what cost, and the digest of the encrypted aggregate.
struct QueryDocument {
    std::string id;
    std::int64_t analyst_token = 0;
    std::string analyst_label;
    std::string analyst_key;  // fingerprint of the analyst's X25519 result key
    std::int64_t requested_ms = 0;
    QueryRequest request;
    std::vector<std::string> members;  // sorted patient ids of the cohort or list
    std::int64_t record_seconds = 5;   // the edges' micro-window, for minutes
    std::int64_t cap_records = 0;      // most records one patient contributes
    std::string kid;
    std::string schema;
    std::vector<QueryWindow> windows;  // ordered by patient, then start
    std::string aggregate_sha256;
};

// document_json is the canonical JSON object of `doc` (members sorted, windows in full).
nlohmann::json document_json(const QueryDocument& doc);
// parse_document reads document_json's output back; refuses a malformed document.
[[nodiscard]] Result<QueryDocument> parse_document(const nlohmann::json& j);
// canonical_hash is the hex SHA-256 of "cipherpulse-query/1\n" followed by the compact
// serialisation of document_json(doc): any change to any field changes it.
std::string canonical_hash(const QueryDocument& doc);

// patients_with_data counts the distinct patients of `windows` with at least one record.
std::size_t patients_with_data(const std::vector<QueryWindow>& windows);
// records_per_patient sums record counts per patient.
std::vector<std::pair<std::string, std::int64_t>> records_per_patient(
    const std::vector<QueryWindow>& windows);

// is_bin_edge is true for the thresholds the histogram answers exactly (30, 35, ..., 220).
bool is_bin_edge(int bpm);

}  // namespace cipherpulse::cohort
