#include "analyst/release_view.h"

#include <cmath>
#include <cstdio>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "cipherpulse/envelope.h"
#include "cohort/release.h"
#include "common/time_text.h"

namespace cipherpulse::analyst {
namespace {

using json = nlohmann::json;

// member is o[key], or null when o has no such member (o may be const).
const json& member(const json& o, const char* key) {
    static const json kNull;
    auto it = o.find(key);
    return it == o.end() ? kNull : *it;
}

Error invalid(const std::string& what) {
    return Error{ErrorCode::kInvalidEncoding, "release: " + what};
}

// csv_cell quotes a cell that holds a comma, a quote or a line break (RFC 4180).
std::string csv_cell(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) {
        return s;
    }
    std::string q = "\"";
    for (char ch : s) {
        q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    }
    return q + "\"";
}

// exact_number is the round-trip decimal of a JSON number (for csv): a whole number without
// a fraction ("180", not "180.0"); empty for null.
std::string exact_number(const json& v) {
    if (!v.is_number()) {
        return std::string();
    }
    const double d = v.get<double>();
    if (v.is_number_float() && std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
        return json(static_cast<std::int64_t>(d)).dump();
    }
    return v.dump();
}

std::string text_or_empty(const json& v) {
    return v.is_string() ? v.get<std::string>() : std::string();
}

std::string interval_text(const json& iv) {
    if (!iv.is_array() || iv.size() != 2 || !iv[0].is_number() || !iv[1].is_number()) {
        return "-";
    }
    return "[" + number_text(iv[0].get<double>()) + ", " + number_text(iv[1].get<double>()) + "]";
}

void render_table(const json& r, std::ostream& out) {
    const bool noised = r.value("noise", "none") != "none";
    out << "query " << r.value("query", "") << ", released "
        << common::iso_utc(r.value("released_ms", std::int64_t{0})) << "\n";
    out << "  patients:   "
        << (member(r, "cohort").is_string()
                ? "cohort '" + member(r, "cohort").get<std::string>() + "'"
                : std::string("a list of patients"))
        << ", " << r.value("cohort_size", 0) << " members, " << r.value("patients_with_data", 0)
        << " with data\n";
    out << "  range:      " << common::iso_utc(r.value("from_ms", std::int64_t{0})) << " to "
        << common::iso_utc(r.value("to_ms", std::int64_t{0})) << ", metric "
        << r.value("metric", "") << "\n";
    if (noised) {
        out << "  privacy:    epsilon " << text_or_empty(member(r, "epsilon"))
            << ", discrete Laplace noise on every count and sum, each patient capped at "
            << r.value("cap_records", 0) << " records; intervals cover the exact figure "
            << "with 95 % probability\n";
    } else {
        out << "  privacy:    no noise: the figures are exact\n";
    }
    std::size_t name_w = 6, value_w = 5, unit_w = 4, iv_w = 12;
    for (const auto& f : member(r, "figures")) {
        name_w = std::max(name_w, text_or_empty(member(f, "name")).size());
        value_w = std::max(value_w, member(f, "value").is_number()
                                        ? number_text(member(f, "value").get<double>()).size()
                                        : std::size_t{1});
        unit_w = std::max(unit_w, text_or_empty(member(f, "unit")).size());
        iv_w = std::max(iv_w, interval_text(member(f, "interval95")).size());
    }
    out << "\n"
        << std::left << std::setw(static_cast<int>(name_w)) << "figure"
        << "  " << std::right << std::setw(static_cast<int>(value_w)) << "value"
        << "  " << std::left << std::setw(static_cast<int>(unit_w)) << "unit";
    if (noised) {
        out << "  " << std::setw(static_cast<int>(iv_w)) << "95% interval"
            << "  noise scale";
    }
    out << "\n";
    for (const auto& f : member(r, "figures")) {
        const std::string value =
            member(f, "value").is_number() ? number_text(member(f, "value").get<double>()) : "-";
        out << std::left << std::setw(static_cast<int>(name_w)) << text_or_empty(member(f, "name"))
            << "  " << std::right << std::setw(static_cast<int>(value_w)) << value << "  "
            << std::left << std::setw(static_cast<int>(unit_w)) << text_or_empty(member(f, "unit"));
        if (noised) {
            const std::string scale = text_or_empty(member(f, "scale"));
            out << "  " << std::setw(static_cast<int>(iv_w))
                << interval_text(member(f, "interval95")) << "  " << (scale.empty() ? "-" : scale);
        }
        out << "\n";
    }
}

void render_csv(const json& r, std::ostream& out) {
    out << "figure,statistic,value,unit,interval95_low,interval95_high,scale\n";
    for (const auto& f : member(r, "figures")) {
        const json& iv = member(f, "interval95");
        const bool has_iv = iv.is_array() && iv.size() == 2;
        out << csv_cell(text_or_empty(member(f, "name"))) << ','
            << csv_cell(text_or_empty(member(f, "statistic"))) << ','
            << exact_number(member(f, "value")) << ',' << csv_cell(text_or_empty(member(f, "unit")))
            << ',' << (has_iv ? exact_number(iv[0]) : "") << ','
            << (has_iv ? exact_number(iv[1]) : "") << ','
            << csv_cell(text_or_empty(member(f, "scale"))) << "\n";
    }
}

}  // namespace

std::string number_text(double value) {
    if (!std::isfinite(value)) {
        return "-";
    }
    if (value == std::floor(value) && std::fabs(value) < 1e15) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.0f", value);
        return buf;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", value);
    return buf;
}

Result<json> open_release(std::string_view envelope, const std::string& query_id,
                          const std::string& expected_hash, const X25519PrivateKey& analyst_key,
                          const Ed25519PublicKey& identity) {
    auto opened = open_envelope(envelope, analyst_key, identity);
    if (!opened) {
        return Error{opened.error().code,
                     "the sealed result does not open with your key from the pinned decryptor "
                     "identity: " +
                         opened.error().message};
    }
    const json header = json::parse(opened.value().header, nullptr, false);
    if (header != json{{"query", query_id}}) {
        return invalid("the envelope is not the result of query " + query_id + " (header " +
                       opened.value().header + ")");
    }
    const auto& pt = opened.value().plaintext;
    json r = json::parse(std::string_view(reinterpret_cast<const char*>(pt.data()), pt.size()),
                         nullptr, false);
    if (!r.is_object() || r.value("v", "") != cohort::kReleaseVersion) {
        return invalid("not a cipherpulse-release/1 document");
    }
    if (r.value("query", "") != query_id) {
        return invalid("the release names query " + r.value("query", "?") + ", not " + query_id);
    }
    if (r.value("hash", "") != expected_hash) {
        return invalid("the release was made for query hash " + r.value("hash", "?") +
                       ", not the hash of the query document the server shows (" + expected_hash +
                       ")");
    }
    if (!r.contains("figures") || !member(r, "figures").is_array()) {
        return invalid("no figures");
    }
    for (const auto& f : member(r, "figures")) {
        if (!f.is_object() || !f.contains("name") || !member(f, "name").is_string() ||
            !f.contains("value") ||
            !(member(f, "value").is_number() || member(f, "value").is_null())) {
            return invalid("a figure without a name or a value");
        }
    }
    return r;
}

void render_release(const json& release, const std::string& format, std::ostream& out) {
    if (format == "json") {
        out << release.dump(2) << "\n";
    } else if (format == "csv") {
        render_csv(release, out);
    } else {
        render_table(release, out);
    }
}

}  // namespace cipherpulse::analyst
