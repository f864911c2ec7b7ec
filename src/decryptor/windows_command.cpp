#include "decryptor/windows_command.h"

#include <cmath>
#include <ctime>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "cipherpulse/codec.h"
#include "common/cli.h"
#include "common/http_client.h"

namespace cipherpulse::decryptor {
namespace {

constexpr int kExitIntegrity = 4;

std::string utc(std::int64_t ms) {
    std::time_t t = static_cast<std::time_t>(ms / 1000);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return text;
}

std::string fixed(const std::optional<double>& v, int decimals) {
    if (!v) {
        return "-";
    }
    std::ostringstream s;
    s << std::fixed << std::setprecision(decimals) << *v;
    return s.str();
}

}  // namespace

int run_windows(const PrivateKey& key, const WindowsOptions& o, std::ostream& out,
                std::ostream& err) {
    auto client_ptr = common::make_http_client(o.server_url, o.ca_file, 30);
    if (!client_ptr) {
        err << "cipherpulse-decryptor: error: invalid server URL '" << o.server_url << "'\n";
        return common::kExitBadInput;
    }
    httplib::Client& client = *client_ptr;
    const PublicKey& pk = key.public_key();
    const bool csv = o.format == "csv";
    const char* sep = csv ? "," : "\t";
    out << "patient" << sep << "metric" << sep << "start" << sep << "records" << sep << "samples"
        << sep << "mean_bpm" << sep << "sd_bpm" << sep << "mean_rr_ms" << sep << "rmssd_ms" << sep
        << "share_ge_100" << sep << "share_lt_60" << sep << "contact_lost\n";
    std::string cursor = o.after;
    int integrity_failures = 0;
    for (;;) {
        auto res = client.Get(
            "/v1/windows?granularity=" + o.granularity + "&after=" + cursor + "&limit=500",
            {{"Authorization", "Bearer " + o.token}});
        if (!res) {
            err << "cipherpulse-decryptor: failed: cannot reach " << o.server_url << ": "
                << httplib::to_string(res.error()) << "\n";
            return common::kExitFailure;
        }
        if (res->status != 200) {
            err << "cipherpulse-decryptor: error: GET /v1/windows answered " << res->status << "\n";
            return res->status >= 500 ? common::kExitFailure : common::kExitBadInput;
        }
        auto page = nlohmann::json::parse(res->body, nullptr, false);
        if (!page.is_object() || !page["windows"].is_array()) {
            err << "cipherpulse-decryptor: error: malformed window page\n";
            return common::kExitFailure;
        }
        for (const auto& w : page["windows"]) {
            const std::string id = std::to_string(w.value("id", 0));
            if (w.value("kid", std::string()) != pk.kid()) {
                err << "window " << id << ": under key " << w.value("kid", std::string())
                    << ", not this key; skipped\n";
                continue;
            }
            auto schema = parse_schema_id(w.value("schema", std::string()));
            auto c = pk.parse_ciphertext_base64url(w.value("aggregate", std::string()));
            if (!schema || schema.value().metric != Metric::kHeartRate || !c) {
                err << "window " << id << ": INTEGRITY: unusable schema or aggregate\n";
                ++integrity_failures;
                continue;
            }
            HeartRateCodec codec(schema.value().max_records_log2);
            auto stats = codec.unpack(key.decrypt(c.value()));
            if (!stats) {
                err << "window " << id << ": INTEGRITY: " << stats.error().message << "\n";
                ++integrity_failures;
                continue;
            }
            const HeartRateStats& s = stats.value();
            if (static_cast<std::int64_t>(s.records) != w.value("record_count", std::int64_t{-1}) ||
                s.hist_total() != s.samples) {
                err << "window " << id << ": INTEGRITY: the server claims "
                    << w.value("record_count", 0) << " records, the aggregate holds " << s.records
                    << "\n";
                ++integrity_failures;
                continue;
            }
            out << w.value("patient", std::string()) << sep << w.value("metric", std::string())
                << sep << utc(w.value("start_ms", std::int64_t{0})) << sep << s.records << sep
                << s.samples << sep << fixed(s.mean_bpm(), 1) << sep << fixed(s.sd_bpm(), 1) << sep
                << fixed(s.mean_rr_ms(), 0) << sep << fixed(s.rmssd_ms(), 0) << sep
                << fixed(s.share_at_or_above(100), 2) << sep << fixed(s.share_below(60), 2) << sep
                << s.contact_lost << "\n";
        }
        cursor = page.value("next_cursor", cursor);
        if (!page.value("more", false)) {
            break;
        }
    }
    if (integrity_failures > 0) {
        err << integrity_failures << " window(s) failed the integrity checks\n";
        return kExitIntegrity;
    }
    return common::kExitOk;
}

}  // namespace cipherpulse::decryptor
