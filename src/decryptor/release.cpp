#include "decryptor/release.h"

#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>

#include "cipherpulse/secure.h"
#include "common/time_text.h"

namespace cipherpulse::decryptor {
namespace {

long double ld(SlotValue v) {
    return static_cast<long double>(v);
}

// implausible returns why `s` cannot be a sum of honest records, or empty.
std::string implausible(const HeartRateStats& s) {
    if (s.hist_total() != s.samples) {
        return "histogram total differs from the sample count";
    }
    if (s.sum_bpm_deci > static_cast<SlotValue>(s.samples) * kMaxBpmDeci ||
        ld(s.sum_bpm_deci_sq) > ld(s.samples) * kMaxBpmDeci * kMaxBpmDeci) {
        return "heart-rate sums exceed what the sample count allows";
    }
    if (s.samples > 0 &&
        ld(s.sum_bpm_deci_sq) * ld(s.samples) + 1 < ld(s.sum_bpm_deci) * ld(s.sum_bpm_deci)) {
        return "heart-rate sums imply a negative variance";
    }
    if (s.samples > 0) {
        // The mean must lie within the span of the non-empty histogram bins.
        std::size_t lo = 0, hi = kHeartRateBins - 1;
        while (s.hist[lo] == 0) {
            ++lo;
        }
        while (s.hist[hi] == 0) {
            --hi;
        }
        const double low_edge = lo == 0 ? 0.0 : 30.0 + 5.0 * static_cast<double>(lo - 1);
        const double high_edge =
            hi == kHeartRateBins - 1 ? 300.0 : 30.0 + 5.0 * static_cast<double>(hi);
        const double mean = s.mean_bpm().value_or(0);
        if (mean < low_edge - 0.05 || mean > high_edge + 0.05) {
            return "mean heart rate outside the histogram's range";
        }
    }
    if (s.sum_rr_ms > static_cast<SlotValue>(s.rr_count) * kMaxRrMs ||
        s.sum_rr_ms < static_cast<SlotValue>(s.rr_count) ||
        ld(s.sum_rr_ms_sq) > ld(s.rr_count) * kMaxRrMs * kMaxRrMs) {
        return "RR sums exceed what the RR count allows";
    }
    if (s.rr_count > 0 &&
        ld(s.sum_rr_ms_sq) * ld(s.rr_count) + 1 < ld(s.sum_rr_ms) * ld(s.sum_rr_ms)) {
        return "RR sums imply a negative variance";
    }
    if (s.rr_diff_count > s.rr_count ||
        ld(s.sum_rr_diff_sq) > ld(s.rr_diff_count) * (kMaxRrMs - 1) * (kMaxRrMs - 1)) {
        return "RR differences exceed what the RR count allows";
    }
    return {};
}

}  // namespace

std::optional<ServerWindow> parse_server_window(const nlohmann::json& w) {
    if (!w.is_object()) {
        return std::nullopt;
    }
    try {
        ServerWindow s;
        s.id = w.at("id").get<std::int64_t>();
        s.kid = w.at("kid").get<std::string>();
        s.patient = w.at("patient").get<std::string>();
        s.metric = w.at("metric").get<std::string>();
        s.schema = w.at("schema").get<std::string>();
        s.granularity = w.at("granularity").get<std::string>();
        s.start_ms = w.at("start_ms").get<std::int64_t>();
        s.length_ms = w.at("length_ms").get<std::int64_t>();
        s.record_count = w.at("record_count").get<std::int64_t>();
        s.aggregate = w.at("aggregate").get<std::string>();
        s.sealed_ms = w.at("sealed_ms").get<std::int64_t>();
        if (w.contains("cursor")) {
            s.cursor = w.at("cursor").get<std::string>();
        } else if (w.contains("seal_seq")) {
            s.cursor = w.at("seal_seq").get<std::string>();
        }
        return s;
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;
    }
}

const PrivateKey* KeyRing::find(const std::string& kid) const {
    for (const auto& k : keys_) {
        if (k->public_key().kid() == kid) {
            return k.get();
        }
    }
    return nullptr;
}

OpenedWindow open_window(const ServerWindow& w, const KeyRing& keys) {
    OpenedWindow out;
    out.aggregate_sha256 = sha256_hex(w.aggregate);
    const PrivateKey* key = keys.find(w.kid);
    if (key == nullptr) {
        out.detail = "no private key for kid " + w.kid;
        return out;
    }
    auto schema = parse_schema_id(w.schema);
    if (w.metric != "hr") {
        out.detail = "metric " + w.metric + " is not evaluated";
        return out;
    }
    out.verdict = OpenedWindow::Verdict::kIntegrity;
    if (!schema || schema.value().metric != Metric::kHeartRate) {
        out.detail = "schema " + w.schema + " does not fit metric hr";
        return out;
    }
    auto c = key->public_key().parse_ciphertext_base64url(w.aggregate);
    if (!c) {
        out.detail = "aggregate is not a valid ciphertext: " + c.error().message;
        return out;
    }
    HeartRateCodec codec(schema.value().max_records_log2);
    auto stats = codec.unpack(key->decrypt(c.value()));
    if (!stats) {
        out.detail = "decrypted aggregate is out of the codec's bounds: " + stats.error().message;
        return out;
    }
    const HeartRateStats& s = stats.value();
    if (w.record_count < 0 || s.records != static_cast<std::uint64_t>(w.record_count)) {
        out.detail = "the server claims " + std::to_string(w.record_count) +
                     " records, the aggregate holds " + std::to_string(s.records);
        return out;
    }
    if (auto why = implausible(s); !why.empty()) {
        out.detail = why;
        return out;
    }
    out.verdict = OpenedWindow::Verdict::kReleased;
    out.stats = s;
    return out;
}

std::string utc_text(std::int64_t ms) {
    return common::iso_utc(ms);
}

nlohmann::json stats_to_json(const HeartRateStats& s) {
    auto opt = [](const std::optional<double>& v) -> nlohmann::json {
        if (!v || !std::isfinite(*v)) {
            return nullptr;
        }
        return std::round(*v * 100) / 100;
    };
    nlohmann::json hist = nlohmann::json::array();
    for (auto h : s.hist) {
        hist.push_back(h);
    }
    return {{"records", s.records},
            {"samples", s.samples},
            {"mean_bpm", opt(s.mean_bpm())},
            {"sd_bpm", opt(s.sd_bpm())},
            {"rr_count", s.rr_count},
            {"mean_rr_ms", opt(s.mean_rr_ms())},
            {"rmssd_ms", opt(s.rmssd_ms())},
            {"contact_lost", s.contact_lost},
            {"hist", hist}};
}

}  // namespace cipherpulse::decryptor
