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
#include "decryptor/release.h"

namespace cipherpulse::decryptor {
namespace {

constexpr int kExitIntegrity = 4;

std::string fixed(const std::optional<double>& v, int decimals) {
    if (!v) {
        return "-";
    }
    std::ostringstream s;
    s << std::fixed << std::setprecision(decimals) << *v;
    return s.str();
}

}  // namespace

int run_windows(const KeyRing& keys, const WindowsOptions& o, std::ostream& out,
                std::ostream& err) {
    auto client_ptr = common::make_http_client(o.server_url, o.ca_file, 30);
    if (!client_ptr) {
        err << "cipherpulse-decryptor: error: invalid server URL '" << o.server_url << "'\n";
        return common::kExitBadInput;
    }
    httplib::Client& client = *client_ptr;
    const bool csv = o.format == "csv";
    const char* sep = csv ? "," : "\t";
    out << "patient" << sep << "metric" << sep << "start" << sep << "records" << sep << "samples"
        << sep << "mean_bpm" << sep << "sd_bpm" << sep << "mean_rr_ms" << sep << "rmssd_ms" << sep
        << "share_ge_100" << sep << "share_lt_50" << sep << "contact_lost\n";
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
            err << "cipherpulse-decryptor: error: GET /v1/windows: "
                << common::problem_text(res->status, res->body) << "\n";
            return res->status >= 500 ? common::kExitFailure : common::kExitBadInput;
        }
        auto page = nlohmann::json::parse(res->body, nullptr, false);
        if (!page.is_object() || !page["windows"].is_array()) {
            err << "cipherpulse-decryptor: error: malformed window page\n";
            return common::kExitFailure;
        }
        for (const auto& item : page["windows"]) {
            auto w = parse_server_window(item);
            if (!w) {
                err << "cipherpulse-decryptor: error: malformed window in the page\n";
                return common::kExitFailure;
            }
            OpenedWindow opened = open_window(*w, keys);
            if (opened.verdict == OpenedWindow::Verdict::kSkipped) {
                err << "window " << w->id << ": skipped: " << opened.detail << "\n";
                continue;
            }
            if (opened.verdict == OpenedWindow::Verdict::kIntegrity) {
                err << "window " << w->id << ": INTEGRITY: " << opened.detail << "\n";
                ++integrity_failures;
                continue;
            }
            const HeartRateStats& s = opened.stats;
            out << w->patient << sep << w->metric << sep << utc_text(w->start_ms) << sep
                << s.records << sep << s.samples << sep << fixed(s.mean_bpm(), 1) << sep
                << fixed(s.sd_bpm(), 1) << sep << fixed(s.mean_rr_ms(), 0) << sep
                << fixed(s.rmssd_ms(), 0) << sep << fixed(s.share_at_or_above(100), 2) << sep
                << fixed(s.share_below(50), 2) << sep << s.contact_lost << "\n";
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
