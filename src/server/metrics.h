// Prometheus metrics of the server (text exposition format 0.0.4).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace cipherpulse::server {

struct IngestCounters;

// route_label maps a request path to its route template ("/v1/devices/{id}"), so metrics
// never carry identifiers and stay bounded in cardinality.
std::string route_label(const std::string& path);

// Metrics collects request counts and the ingest latency histogram. Thread-safe.
class Metrics {
  public:
    void count_request(const std::string& method, const std::string& route, int status);
    void observe_ingest_seconds(double seconds);
    void count_rejected(std::uint64_t records) { rejected_ += records; }
    std::string render(const IngestCounters& counters, std::size_t queue_depth,
                       std::int64_t db_bytes) const;

  private:
    static constexpr std::array<double, 12> kBuckets = {0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
                                                        0.1,   0.25,  0.5,   1.0,  2.5,   5.0};
    mutable std::mutex mutex_;
    std::map<std::tuple<std::string, std::string, int>, std::uint64_t> requests_;
    std::array<std::uint64_t, kBuckets.size() + 1> latency_counts_{};
    double latency_sum_ = 0;
    std::uint64_t latency_count_ = 0;
    std::atomic<std::uint64_t> rejected_{0};
};

}  // namespace cipherpulse::server
