#include "server/metrics.h"

#include <sstream>

#include "server/ingest.h"

namespace cipherpulse::server {

std::string route_label(const std::string& path) {
    static const char* kFixed[] = {"/v1/health",   "/v1/ready",       "/metrics",
                                   "/v1/keys",     "/v1/keys/active", "/v1/devices",
                                   "/v1/readings", "/v1/windows",     "/v1/audit",
                                   "/v1/models",   "/v1/scoring-keys"};
    for (const char* fixed : kFixed) {
        if (path == fixed) {
            return path;
        }
    }
    auto starts = [&](const char* prefix) { return path.rfind(prefix, 0) == 0; };
    auto ends = [&](const std::string& suffix) {
        return path.size() > suffix.size() &&
               path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (starts("/v1/devices/")) {
        return ends("/revoke") ? "/v1/devices/{id}/revoke" : "/v1/devices/{id}";
    }
    if (starts("/v1/windows/") && ends("/records")) {
        return "/v1/windows/{id}/records";
    }
    if (starts("/v1/models/")) {
        return ends("/score") ? "/v1/models/{id}/score" : "/v1/models/{id}";
    }
    if (starts("/v1/patients/") && ends("/windows")) {
        return "/v1/patients/{id}/windows";
    }
    return "other";
}

void Metrics::count_request(const std::string& method, const std::string& route, int status) {
    std::lock_guard lock(mutex_);
    ++requests_[{method, route, status}];
}

void Metrics::observe_ingest_seconds(double seconds) {
    std::lock_guard lock(mutex_);
    std::size_t i = 0;
    while (i < kBuckets.size() && seconds > kBuckets[i]) {
        ++i;
    }
    ++latency_counts_[i];
    latency_sum_ += seconds;
    ++latency_count_;
}

std::string Metrics::render(const IngestCounters& c, std::size_t queue_depth,
                            std::int64_t db_bytes) const {
    std::ostringstream out;
    std::lock_guard lock(mutex_);
    out << "# HELP cipherpulse_http_requests_total HTTP requests by method, route and status.\n"
        << "# TYPE cipherpulse_http_requests_total counter\n";
    for (const auto& [key, count] : requests_) {
        const auto& [method, route, status] = key;
        out << "cipherpulse_http_requests_total{method=\"" << method << "\",route=\"" << route
            << "\",status=\"" << status << "\"} " << count << "\n";
    }
    out << "# HELP cipherpulse_records_total Uploaded records by outcome.\n"
        << "# TYPE cipherpulse_records_total counter\n"
        << "cipherpulse_records_total{outcome=\"accepted\"} " << c.accepted << "\n"
        << "cipherpulse_records_total{outcome=\"duplicate\"} " << c.duplicate << "\n"
        << "cipherpulse_records_total{outcome=\"rejected\"} " << rejected_ << "\n"
        << "# HELP cipherpulse_records_late_total Accepted records that arrived after one of "
           "their windows sealed (stored, not folded into it).\n"
        << "# TYPE cipherpulse_records_late_total counter\n"
        << "cipherpulse_records_late_total " << c.late << "\n"
        << "# HELP cipherpulse_windows_sealed_total Windows sealed.\n"
        << "# TYPE cipherpulse_windows_sealed_total counter\n"
        << "cipherpulse_windows_sealed_total " << c.sealed << "\n"
        << "# HELP cipherpulse_ingest_seconds Time to validate and commit an upload.\n"
        << "# TYPE cipherpulse_ingest_seconds histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
        cumulative += latency_counts_[i];
        out << "cipherpulse_ingest_seconds_bucket{le=\"" << kBuckets[i] << "\"} " << cumulative
            << "\n";
    }
    cumulative += latency_counts_[kBuckets.size()];
    out << "cipherpulse_ingest_seconds_bucket{le=\"+Inf\"} " << cumulative << "\n"
        << "cipherpulse_ingest_seconds_sum " << latency_sum_ << "\n"
        << "cipherpulse_ingest_seconds_count " << latency_count_ << "\n"
        << "# HELP cipherpulse_write_queue_depth Jobs waiting for the database writer.\n"
        << "# TYPE cipherpulse_write_queue_depth gauge\n"
        << "cipherpulse_write_queue_depth " << queue_depth << "\n"
        << "# HELP cipherpulse_database_bytes Size of the database file.\n"
        << "# TYPE cipherpulse_database_bytes gauge\n"
        << "cipherpulse_database_bytes " << db_bytes << "\n";
    return out.str();
}

}  // namespace cipherpulse::server
