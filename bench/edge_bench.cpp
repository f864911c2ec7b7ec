// Edge costs: CPU time per record (micro-window -> pack -> fast encryption from the pool ->
// durable spool), what one strap at 1 Hz costs in steady state, peak RSS, and how fast a
// 24-hour backlog drains into a real server on loopback.
//
// Usage: edge_bench [--bits 2048|3072] [--hours-backlog 24]
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cipherpulse/codec.h"
#include "cipherpulse/jws.h"
#include "cipherpulse/randomness_pool.h"
#include "edge/commands.h"
#include "edge/config.h"
#include "edge/micro_window.h"
#include "edge/runner.h"
#include "edge/simulator.h"
#include "edge/spool.h"
#include "server/admin_commands.h"
#include "server/app.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

using namespace cipherpulse;

namespace {

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

long peak_rss_kib() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

std::string last_line(const std::string& text) {
    std::istringstream in(text);
    std::string line, last;
    while (std::getline(in, line)) {
        if (!line.empty()) {
            last = line;
        }
    }
    return last;
}

class EmptySource final : public edge::Source {
  public:
    std::optional<edge::Reading> next() override { return std::nullopt; }
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"edge_bench: the edge's cost per record, steady-state CPU, RSS, backlog drain"};
    std::size_t bits = 3072;
    double hours = 24;
    app.add_option("--bits", bits, "Paillier modulus size")->check(CLI::IsMember({2048, 3072}));
    app.add_option("--hours-backlog", hours, "hours of 5 s records to spool and drain");
    CLI11_PARSE(app, argc, argv);
    spdlog::set_level(spdlog::level::warn);

    char dir_template[] = "/tmp/cipherpulse-edge-bench-XXXXXX";
    const std::filesystem::path dir = ::mkdtemp(dir_template);
    struct Cleanup {
        std::filesystem::path dir;
        ~Cleanup() {
            std::error_code ec;
            std::filesystem::remove_all(dir, ec);
        }
    } cleanup{dir};

    PrivateKey key = PrivateKey::generate(bits);
    // The edge's default table (config/edge.toml [encryption] table_window_bits = 6).
    const PublicKey pk = key.public_key().with_fast_table_window(6);
    const long rss_before_table = peak_rss_kib();
    (void)pk.encrypt(BigInt(1));  // builds the fixed-base table

    // 1. Steady-state cost per record: one hour of a simulated strap (beat level).
    RandomnessPool pool(pk, {64, EncryptionMode::kFast});
    edge::SpoolOptions spool_options;
    spool_options.path = (dir / "spool.db").string();
    spool_options.synchronous = "FULL";
    edge::Spool spool = edge::Spool::open(spool_options);
    const std::int64_t now = server::now_unix_ms();
    const std::int64_t hour_ms = 3600000;
    edge::Simulator sim(edge::patient_profile("healthy").value(), {}, 3, now - hour_ms, now);
    edge::MicroWindows windows(5000, edge::FilterRules{});
    HeartRateCodec codec;
    std::size_t records = 0;
    const double cpu0 = cpu_seconds();
    const auto wall0 = std::chrono::steady_clock::now();
    auto emit = [&](const std::vector<edge::WindowRecord>& closed) {
        for (const auto& w : closed) {
            Ciphertext c = pool.encrypt(codec.pack(w.stats));
            (void)spool.append(w.start_ms, "hr", codec.schema_id(), pk.kid(),
                               pk.serialize_base64url(c));
            ++records;
        }
    };
    while (auto r = sim.next()) {
        emit(windows.add(*r));
    }
    const double cpu = cpu_seconds() - cpu0;
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    const double cpu_per_record_ms = cpu / static_cast<double>(records) * 1000;
    // One strap at 1 Hz in real time makes one record per 5 s.
    const double core_share = cpu_per_record_ms / 5000.0;
    const long rss_edge_kib = peak_rss_kib();  // before the server joins this process

    // 2. Backlog: `hours` of records spooled, then drained into a real server.
    edge::SpoolOptions backlog_options;
    backlog_options.path = (dir / "backlog.db").string();
    backlog_options.synchronous = "NORMAL";  // filling fast; the drain is what is measured
    const std::int64_t backlog = static_cast<std::int64_t>(hours * 3600 / 5);
    {
        edge::Spool backlog_spool = edge::Spool::open(backlog_options);
        const std::int64_t start = now - static_cast<std::int64_t>(hours * hour_ms);
        for (std::int64_t i = 0; i < backlog; ++i) {
            HeartRateRecordBuilder b;
            (void)b.add_sample(70);
            Ciphertext c = pool.encrypt(codec.pack(b.finish()));
            (void)backlog_spool.append(start + i * 5000, "hr", codec.schema_id(), pk.kid(),
                                       pk.serialize_base64url(c));
        }
    }
    server::ServerConfig config = server::ServerConfig::defaults();
    config.database = (dir / "server.db").string();
    config.listen_port = 0;
    config.identity_public_key = (dir / "identity.pub.pem").string();
    config.device_rate_per_second = 1000;
    Ed25519PrivateKey identity = Ed25519PrivateKey::generate();
    (void)identity.public_key().save(config.identity_public_key, false);
    std::ostringstream out, err;
    server::run_init(config, out, err);
    const std::string admin = last_line(out.str());
    std::ostringstream out2;
    server::run_token_create(config, "decryptor", "", std::nullopt, out2, err);
    const std::string decryptor = last_line(out2.str());
    server::ServerApp server_app(config);
    const int port = server_app.bind();
    std::thread serving([&] { server_app.serve(); });
    httplib::Client client("127.0.0.1", port);
    for (int i = 0; i < 500 && !client.Get("/v1/health"); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    client.Post(
        "/v1/keys", {{"Authorization", "Bearer " + decryptor}},
        nlohmann::json{{"jws", jws_sign(pk.to_json(), identity, {}, "paillier-key+json")}}.dump(),
        "application/json");
    edge::InitOptions init;
    init.device_id = "bench-edge";
    init.server_url = "http://127.0.0.1:" + std::to_string(port);
    init.identity = config.identity_public_key;
    init.dir = dir / "edge";
    std::ostringstream init_out;
    edge::run_init(init, init_out, err);
    auto device_pub = Ed25519PublicKey::load(dir / "edge" / "device.pub.pem").value();
    client.Post("/v1/devices", {{"Authorization", "Bearer " + admin}},
                nlohmann::json{{"id", "bench-edge"},
                               {"patient", "bench-patient"},
                               {"public_key_pem", device_pub.to_pem()}}
                    .dump(),
                "application/json");
    edge::EdgeConfig edge_config = edge::load_edge_config(dir / "edge" / "edge.toml").value();
    edge_config.spool = backlog_options;
    edge_config.batch_size = 100;
    EmptySource nothing;
    std::atomic<bool> stop{false};
    edge::RunStats stats;
    const auto drain0 = std::chrono::steady_clock::now();
    edge::run_edge(edge_config, nothing, stop, &stats, 3600 * 1000);
    const double drain_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - drain0).count();
    server_app.stop();
    serving.join();

    std::printf("edge, n = %zu bits\n", bits);
    std::printf(
        "  steady state: %zu records (1 h of beats) in %.2f s wall, %.3f ms CPU per "
        "record (pack + fast encryption incl. the pool's thread + FULL spool append)\n",
        records, wall, cpu_per_record_ms);
    std::printf("  one strap at 1 Hz: %.4f%% of one core (target < 1%%)\n", core_share * 100);
    std::printf("  peak RSS: %.1f MiB (%.1f MiB before the fast-mode table; target < 64 MiB)\n",
                static_cast<double>(rss_edge_kib) / 1024.0,
                static_cast<double>(rss_before_table) / 1024.0);
    std::printf(
        "  backlog: %lld records (%.0f h) drained in %.2f s = %.0fx real time "
        "(target >= 1000x); acknowledged %llu\n",
        static_cast<long long>(backlog), hours, drain_s, hours * 3600 / drain_s,
        static_cast<unsigned long long>(stats.records_acknowledged));
    return stats.records_acknowledged == static_cast<std::uint64_t>(backlog) ? 0 : 1;
}
