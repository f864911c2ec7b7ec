#include "decryptor/commands.h"

#include <httplib.h>

#include <cmath>
#include <ctime>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "cipherpulse/secure.h"
#include "common/cli.h"
#include "common/http_client.h"
#include "decryptor/state.h"
#include "decryptor/verify.h"
#include "decryptor/watch.h"

namespace cipherpulse::decryptor {
namespace {

constexpr int kExitIntegrity = 4;
constexpr const char* kProgram = "cipherpulse-decryptor: ";

std::string fixed(const std::optional<double>& v, int decimals) {
    if (!v || !std::isfinite(*v)) {
        return "-";
    }
    std::ostringstream s;
    s << std::fixed << std::setprecision(decimals) << *v;
    return s.str();
}

nlohmann::json json_number(const std::optional<double>& v, int decimals) {
    if (!v || !std::isfinite(*v)) {
        return nullptr;
    }
    const double scale = std::pow(10.0, decimals);
    return std::round(*v * scale) / scale;
}

// bin_range returns the lower edge of the lowest and the upper edge of the highest
// non-empty histogram bin.
std::pair<std::optional<double>, std::optional<double>> bin_range(const HeartRateStats& s) {
    std::optional<double> lo, hi;
    for (std::size_t i = 0; i < kHeartRateBins; ++i) {
        if (s.hist[i] == 0) {
            continue;
        }
        const double low = i == 0 ? 0.0 : 30.0 + 5.0 * static_cast<double>(i - 1);
        const double high = i == kHeartRateBins - 1 ? 300.0 : 30.0 + 5.0 * static_cast<double>(i);
        if (!lo) {
            lo = low;
        }
        hi = high;
    }
    return {lo, hi};
}

struct Row {
    std::string label;  // window start, or "total"
    HeartRateStats s;
};

std::unique_ptr<httplib::Client> client_for(const DecryptorConfig& config, std::ostream& err) {
    auto client = common::make_http_client(config.server_url, config.ca_file, config.timeout_s);
    if (!client) {
        err << kProgram << "error: invalid server URL '" << config.server_url << "'\n";
    }
    return client;
}

int http_failure(const httplib::Result& res, const DecryptorConfig& config, std::ostream& err) {
    if (!res) {
        err << kProgram << "failed: cannot reach " << config.server_url << ": "
            << httplib::to_string(res.error()) << "\n";
        return common::kExitFailure;
    }
    err << kProgram << "error: " << common::problem_text(res->status, res->body) << "\n";
    return res->status >= 500 ? common::kExitFailure : common::kExitBadInput;
}

std::string url_encode(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            static const char* digits = "0123456789ABCDEF";
            out.push_back('%');
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 15]);
        }
    }
    return out;
}

}  // namespace

int run_stats(const DecryptorConfig& config, const KeyRing& keys, const std::string& token,
              const StatsOptions& o, std::ostream& out, std::ostream& err) {
    if (o.to_ms < o.from_ms) {
        err << kProgram << "error: --to is before --from\n";
        return common::kExitBadInput;
    }
    auto client = client_for(config, err);
    if (!client) {
        return common::kExitBadInput;
    }
    const std::string granularity = o.granularity.empty() ? config.granularity : o.granularity;
    auto store = StateStore::open(config.database);
    const RuleSet& rules = config.alerting.rules_for(o.patient);
    const double high = rules.tachycardia.share_threshold_bpm;
    const double low = rules.bradycardia.share_threshold_bpm;
    std::vector<Row> rows;
    Row total{"total", {}};
    int integrity = 0;
    std::int64_t from = o.from_ms;
    for (;;) {
        auto res =
            client->Get("/v1/patients/" + url_encode(o.patient) +
                            "/windows?metric=hr&granularity=" + url_encode(granularity) +
                            "&from=" + std::to_string(from) + "&to=" + std::to_string(o.to_ms),
                        {{"Authorization", "Bearer " + token}});
        if (!res || res->status != 200) {
            return http_failure(res, config, err);
        }
        auto page = nlohmann::json::parse(res->body, nullptr, false);
        if (!page.is_object() || !page.contains("windows") || !page["windows"].is_array()) {
            err << kProgram << "failed: malformed answer from the server\n";
            return common::kExitFailure;
        }
        std::int64_t last_start = from;
        for (const auto& item : page["windows"]) {
            auto w = parse_server_window(item);
            if (!w) {
                err << kProgram << "failed: malformed window from the server\n";
                return common::kExitFailure;
            }
            last_start = w->start_ms;
            OpenedWindow opened = open_window(*w, keys);
            if (auto seen = store.ledger_entry(w->id);
                seen && seen->aggregate_sha256 != opened.aggregate_sha256) {
                opened.verdict = OpenedWindow::Verdict::kIntegrity;
                opened.detail = "the server served another aggregate for this window before";
            }
            if (opened.verdict == OpenedWindow::Verdict::kSkipped) {
                err << "window " << w->id << ": skipped: " << opened.detail << "\n";
                continue;
            }
            if (opened.verdict == OpenedWindow::Verdict::kIntegrity) {
                err << "window " << w->id << " (" << utc_text(w->start_ms)
                    << "): INTEGRITY: " << opened.detail << "; not used\n";
                ++integrity;
                continue;
            }
            rows.push_back({utc_text(w->start_ms), opened.stats});
            total.s += opened.stats;
        }
        if (!page.value("truncated", false) || page["windows"].empty()) {
            break;
        }
        // Truncated: continue after the last start seen (windows of one start never exceed
        // a page in practice: one per kid and schema).
        if (last_start + 1 <= from) {
            break;
        }
        from = last_start + 1;
    }
    const std::int64_t sample_ms = rules.missing_data.expected_sample_interval_ms;
    auto minutes = [&](const HeartRateStats& s, const std::optional<double>& share) {
        if (!share) {
            return std::optional<double>();
        }
        return std::optional<double>(*share * static_cast<double>(s.samples) *
                                     static_cast<double>(sample_ms) / 60000.0);
    };
    auto row_json = [&](const Row& r) {
        auto [lo, hi] = bin_range(r.s);
        auto above = r.s.share_at_or_above(high);
        auto below = r.s.share_below(low);
        return nlohmann::json{{"start", r.label},
                              {"records", r.s.records},
                              {"samples", r.s.samples},
                              {"mean_bpm", json_number(r.s.mean_bpm(), 1)},
                              {"sd_bpm", json_number(r.s.sd_bpm(), 1)},
                              {"min_bin_bpm", json_number(lo, 0)},
                              {"max_bin_bpm", json_number(hi, 0)},
                              {"share_above", json_number(above, 3)},
                              {"minutes_above", json_number(minutes(r.s, above), 1)},
                              {"share_below", json_number(below, 3)},
                              {"minutes_below", json_number(minutes(r.s, below), 1)},
                              {"mean_rr_ms", json_number(r.s.mean_rr_ms(), 0)},
                              {"rmssd_ms", json_number(r.s.rmssd_ms(), 0)},
                              {"contact_lost", r.s.contact_lost}};
    };
    if (o.format == "json") {
        nlohmann::json doc{{"patient", o.patient},
                           {"granularity", granularity},
                           {"from", utc_text(o.from_ms)},
                           {"to", utc_text(o.to_ms)},
                           {"above_bpm", high},
                           {"below_bpm", low},
                           {"windows", nlohmann::json::array()},
                           {"total", row_json(total)},
                           {"integrity_failures", integrity}};
        for (const auto& r : rows) {
            doc["windows"].push_back(row_json(r));
        }
        out << doc.dump(2) << "\n";
    } else {
        const bool csv = o.format == "csv";
        const char* sep = csv ? "," : "\t";
        const std::string above_label = "above_" + fixed(high, 0);
        const std::string below_label = "below_" + fixed(low, 0);
        out << "start" << sep << "records" << sep << "samples" << sep << "mean_bpm" << sep
            << "sd_bpm" << sep << "min_bin" << sep << "max_bin" << sep << above_label << sep
            << "min_" << above_label << sep << below_label << sep << "min_" << below_label << sep
            << "mean_rr_ms" << sep << "rmssd_ms" << sep << "contact_lost\n";
        auto print = [&](const Row& r) {
            auto [lo, hi] = bin_range(r.s);
            auto above = r.s.share_at_or_above(high);
            auto below = r.s.share_below(low);
            out << r.label << sep << r.s.records << sep << r.s.samples << sep
                << fixed(r.s.mean_bpm(), 1) << sep << fixed(r.s.sd_bpm(), 1) << sep << fixed(lo, 0)
                << sep << fixed(hi, 0) << sep << fixed(above, 3) << sep
                << fixed(minutes(r.s, above), 1) << sep << fixed(below, 3) << sep
                << fixed(minutes(r.s, below), 1) << sep << fixed(r.s.mean_rr_ms(), 0) << sep
                << fixed(r.s.rmssd_ms(), 0) << sep << r.s.contact_lost << "\n";
        };
        for (const auto& r : rows) {
            print(r);
        }
        if (!rows.empty()) {
            print(total);
        }
    }
    if (integrity > 0) {
        err << integrity << " window(s) failed the integrity checks\n";
        return kExitIntegrity;
    }
    return common::kExitOk;
}

int run_verify(const DecryptorConfig& config, const KeyRing& keys, const std::string& token,
               std::int64_t window_id, std::ostream& out, std::ostream& err) {
    auto client = client_for(config, err);
    if (!client) {
        return common::kExitBadInput;
    }
    auto res = client->Get("/v1/windows/" + std::to_string(window_id) + "/records",
                           {{"Authorization", "Bearer " + token}});
    if (!res || res->status != 200) {
        return http_failure(res, config, err);
    }
    auto doc = nlohmann::json::parse(res->body, nullptr, false);
    std::optional<ServerWindow> w;
    if (doc.is_object() && doc.contains("window")) {
        w = parse_server_window(doc["window"]);
    }
    if (!w) {
        err << kProgram << "failed: malformed answer from the server\n";
        return common::kExitFailure;
    }
    const PrivateKey* key = keys.find(w->kid);
    if (key == nullptr) {
        err << kProgram << "error: window " << window_id << " is under key " << w->kid
            << ", which this decryptor does not hold\n";
        return common::kExitBadInput;
    }
    if (w->record_count > 0 && doc.contains("records") && doc["records"].is_array() &&
        doc["records"].empty()) {
        err << kProgram << "failed: the raw records of window " << window_id
            << " are no longer retained by the server; it cannot be re-verified\n";
        return common::kExitFailure;
    }
    auto store = StateStore::open(config.database);
    VerifyReport report = verify_window_records(
        res->body, key->public_key(),
        [&store](std::string_view d) { return store.pinned_device_key(std::string(d)); },
        std::nullopt);
    if (auto seen = store.ledger_entry(window_id);
        seen && seen->aggregate_sha256 != sha256_hex(w->aggregate)) {
        report.problems.push_back("the aggregate differs from the one released earlier");
        report.ok = false;
    }
    // The aggregate must also open: the counts inside must match what the server claims.
    OpenedWindow opened = open_window(*w, keys);
    if (opened.verdict == OpenedWindow::Verdict::kIntegrity) {
        report.problems.push_back(opened.detail);
        report.ok = false;
    }
    out << "window " << window_id << " (patient " << w->patient << ", " << w->granularity
        << " from " << utc_text(w->start_ms) << "): " << report.records << " record(s) in "
        << report.batches << " signed batch(es) from " << report.device_keys.size()
        << " device(s)\n";
    const std::int64_t now = system_clock_ms();
    if (report.problems.empty()) {
        for (const auto& [device, pem] : report.device_keys) {
            store.pin_device_key(device, pem, now);
        }
        out << "VERIFIED: every signature checks, the records multiply to the aggregate\n";
        return common::kExitOk;
    }
    for (const auto& p : report.problems) {
        out << "  problem: " << p << "\n";
    }
    out << "FAILED: " << report.problems.size() << " problem(s); the window must not be used\n";
    StoredAlert a;
    a.key = "verify." + std::to_string(window_id) + "." + sha256_hex(res->body).substr(0, 12);
    a.kind = "integrity";
    a.patient = w->patient;
    a.rule = "integrity";
    a.severity = Severity::kCritical;
    a.window_id = window_id;
    a.window_start_ms = w->start_ms;
    a.window_length_ms = w->length_ms;
    a.summary = "the server's data for this window failed verification and was not used";
    a.figures = {{"problem", report.problems.front()}};
    a.created_ms = now;
    std::vector<std::string> channels;
    for (const auto& n : make_notifiers(config)) {
        channels.push_back(n->channel());
    }
    store.add_alert(a, channels, now);
    return kExitIntegrity;
}

int run_alerts_list(const DecryptorConfig& config, const std::string& patient, bool open_only,
                    int limit, const std::string& format, std::ostream& out, std::ostream& err) {
    (void)err;
    auto store = StateStore::open(config.database);
    auto alerts = store.alerts(patient, open_only, limit);
    auto delivery_text = [&](std::int64_t id) {
        std::string text;
        for (const auto& d : store.deliveries(id)) {
            text += (text.empty() ? "" : " ") + d.channel + ":" + d.status;
        }
        return text.empty() ? std::string("-") : text;
    };
    if (format == "json") {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& a : alerts) {
            nlohmann::json figures = nlohmann::json::object();
            for (const auto& f : a.figures) {
                figures[f.name] = f.value;
            }
            nlohmann::json deliveries = nlohmann::json::array();
            for (const auto& d : store.deliveries(a.id)) {
                deliveries.push_back({{"channel", d.channel},
                                      {"status", d.status},
                                      {"attempts", d.attempts},
                                      {"detail", d.last_detail}});
            }
            list.push_back({{"id", a.id},
                            {"created", utc_text(a.created_ms)},
                            {"patient", a.patient},
                            {"display_name", config.alerting.display_name(a.patient)},
                            {"rule", a.rule},
                            {"severity", std::string(to_string(a.severity))},
                            {"kind", a.kind},
                            {"window_id", a.window_id},
                            {"window_start", utc_text(a.window_start_ms)},
                            {"summary", a.summary},
                            {"figures", figures},
                            {"acked", a.acked_ms ? nlohmann::json(utc_text(*a.acked_ms))
                                                 : nlohmann::json(nullptr)},
                            {"acked_by", a.acked_by},
                            {"ack_note", a.ack_note},
                            {"deliveries", deliveries}});
        }
        out << list.dump(2) << "\n";
        return common::kExitOk;
    }
    out << "id\tcreated\tpatient\trule\tseverity\tkind\twindow_start\tack\tdelivery\tsummary\n";
    for (const auto& a : alerts) {
        out << a.id << "\t" << utc_text(a.created_ms) << "\t"
            << config.alerting.display_name(a.patient) << "\t" << a.rule << "\t"
            << to_string(a.severity) << "\t" << a.kind << "\t" << utc_text(a.window_start_ms)
            << "\t" << (a.acked_ms ? "by " + a.acked_by : std::string("open")) << "\t"
            << delivery_text(a.id) << "\t" << a.summary << "\n";
    }
    return common::kExitOk;
}

int run_alerts_ack(const DecryptorConfig& config, std::int64_t id, const std::string& by,
                   const std::string& note, std::ostream& out, std::ostream& err) {
    if (by.empty()) {
        err << kProgram << "error: --by must name who acknowledges\n";
        return common::kExitBadInput;
    }
    auto store = StateStore::open(config.database);
    auto alert = store.alert(id);
    if (!alert) {
        err << kProgram << "error: no alert " << id << "\n";
        return common::kExitBadInput;
    }
    if (!store.acknowledge(id, by, note, system_clock_ms())) {
        err << kProgram << "error: alert " << id << " was already acknowledged by "
            << alert->acked_by << "\n";
        return common::kExitBadInput;
    }
    out << "alert " << id << " acknowledged by " << by << "\n";
    return common::kExitOk;
}

}  // namespace cipherpulse::decryptor
