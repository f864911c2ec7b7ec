// The edge service against a real server on loopback with a real database: simulated
// readings become packed, encrypted, spooled, signed uploads whose windows decrypt to the
// statistics computed directly from the same readings.
#include <gtest/gtest.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "cipherpulse/base64url.h"
#include "cipherpulse/jws.h"
#include "cipherpulse/paillier.h"
#include "decryptor/windows_command.h"
#include "edge/commands.h"
#include "edge/config.h"
#include "edge/runner.h"
#include "edge/simulator.h"
#include "edge/spool.h"
#include "edge/uplink.h"
#include "integration/loopback_server.h"
#include "server/admin_commands.h"
#include "server/app.h"
#include "store/sqlite.h"
#include "unit/test_support.h"

namespace cipherpulse::edge {
namespace {

using json = nlohmann::json;
using cipherpulse::testing::last_line;
using cipherpulse::testing::TempDir;

class EdgeTest : public LoopbackServerTest {};

TEST_F(EdgeTest, DeliveredWindowsDecryptToTheStatisticsOfTheReadings) {
    EdgeConfig c = enrol("dev-a", identity_.public_key());
    const std::int64_t start = (server::now_unix_ms() / 60000 - 10) * 60000;  // 10 min ago
    auto profile = patient_profile("healthy").value();
    auto episodes = parse_episodes("tachycardia@60s+60s:150").value();
    Simulator sim(profile, episodes, 42, start, start + 3 * 60000);
    std::atomic<bool> stop{false};
    RunStats stats;
    ASSERT_EQ(run_edge(c, sim, stop, &stats, 10000), 0);
    EXPECT_EQ(stats.records_spooled, 36u);  // 3 minutes of 5 s micro-windows
    EXPECT_EQ(stats.records_acknowledged, 36u);
    EXPECT_EQ(stored_records(), 36);

    Simulator again(profile, episodes, 42, start, start + 3 * 60000);
    auto expected = expected_minutes(again, c);
    json windows = sealed_minutes(3);
    ASSERT_EQ(windows.size(), 3u);
    HeartRateCodec codec;
    const PublicKey& pk = paillier_key().public_key();
    for (const auto& w : windows) {
        auto c_agg = pk.parse_ciphertext_base64url(w["aggregate"].get<std::string>()).value();
        auto stats_got = codec.unpack(paillier_key().decrypt(c_agg)).value();
        std::int64_t minute = w["start_ms"].get<std::int64_t>();
        ASSERT_EQ(expected.count(minute), 1u);
        EXPECT_EQ(stats_got, expected[minute]);
        EXPECT_EQ(stats_got.records, 12u);
    }
    // The tachycardia minute shows in the decrypted mean.
    auto mean = [&](std::int64_t minute) { return expected[minute].mean_bpm().value(); };
    EXPECT_GT(mean(start + 60000), mean(start) + 40);
    // The decryptor's `windows` command fetches, decrypts, checks and prints the same.
    decryptor::WindowsOptions wo;
    wo.server_url = "http://127.0.0.1:" + std::to_string(port_);
    wo.token = decryptor_;
    wo.format = "csv";
    std::ostringstream table, problems;
    decryptor::KeyRing keys;
    keys.add_shared(std::shared_ptr<const PrivateKey>(&paillier_key(), [](const PrivateKey*) {}));
    ASSERT_EQ(decryptor::run_windows(keys, wo, table, problems), 0) << problems.str();
    std::istringstream lines(table.str());
    std::string line;
    std::getline(lines, line);
    EXPECT_EQ(line.rfind("patient,metric,start,records,samples,mean_bpm", 0), 0u) << line;
    int rows = 0;
    while (std::getline(lines, line)) {
        ++rows;
        EXPECT_EQ(line.rfind("patient-dev-a,hr,", 0), 0u) << line;
    }
    EXPECT_EQ(rows, 3);
    {
        // A granularity the server does not keep: the server's own reason is passed on.
        decryptor::WindowsOptions bad = wo;
        bad.granularity = "7s";
        std::ostringstream none, why;
        EXPECT_EQ(decryptor::run_windows(keys, bad, none, why), 2);
        EXPECT_NE(why.str().find("the server answered 400 (invalid-query"), std::string::npos)
            << why.str();
        EXPECT_NE(why.str().find("granularit"), std::string::npos) << why.str();
    }
    {
        std::ostringstream mean_text;
        mean_text << std::fixed << std::setprecision(1) << mean(start + 60000);
        EXPECT_NE(table.str().find("," + mean_text.str() + ","), std::string::npos) << table.str();
    }
    // status reports an empty spool and the active key.
    std::ostringstream out, err;
    ASSERT_EQ(run_status(dir_ / "dev-a" / "edge.toml", out, err), 0);
    EXPECT_NE(out.str().find("spool depth: 0"), std::string::npos) << out.str();
    EXPECT_NE(out.str().find(pk.kid()), std::string::npos);
}

TEST_F(EdgeTest, KeyNotSignedByThePinnedIdentityIsRefusedAndNothingIsSent) {
    Ed25519PrivateKey stranger = Ed25519PrivateKey::generate();
    EdgeConfig c = enrol("dev-b", stranger.public_key());  // pinned the wrong identity
    const std::int64_t start = server::now_unix_ms() - 120000;
    Simulator sim(patient_profile("healthy").value(), {}, 7, start, start + 60000);
    std::atomic<bool> stop{false};
    RunStats stats;
    EXPECT_EQ(run_edge(c, sim, stop, &stats, 1000), kExitKeyRefused);
    EXPECT_EQ(stats.records_spooled, 0u);
    EXPECT_EQ(stored_records(), 0);
    std::ostringstream out, err;
    ASSERT_EQ(run_status(dir_ / "dev-b" / "edge.toml", out, err), 0);
    EXPECT_NE(out.str().find("NOT signed by the pinned decryptor identity"), std::string::npos)
        << out.str();
}

TEST_F(EdgeTest, ServerOutageIsBridgedByTheSpool) {
    EdgeConfig c = enrol("dev-c", identity_.public_key());
    const std::int64_t start = (server::now_unix_ms() / 60000 - 20) * 60000;
    auto profile = patient_profile("healthy").value();
    {
        Simulator sim(profile, {}, 1, start, start + 60000);
        std::atomic<bool> stop{false};
        ASSERT_EQ(run_edge(c, sim, stop, nullptr, 10000), 0);  // online: caches the key
    }
    ASSERT_EQ(stored_records(), 12);
    stop_server();
    {
        // Offline: measured and spooled under the cached, re-verified key.
        Simulator sim(profile, {}, 2, start + 60000, start + 3 * 60000);
        std::atomic<bool> stop{false};
        RunStats stats;
        ASSERT_EQ(run_edge(c, sim, stop, &stats, 300), 0);
        EXPECT_EQ(stats.records_spooled, 24u);
        EXPECT_EQ(stats.records_acknowledged, 0u);
        EXPECT_GE(stats.upload_failures, 1u);
    }
    Spool spool = Spool::open(c.spool);
    EXPECT_EQ(spool.stats().depth, 24);
    start_server();
    point_at_server(c);  // the server came back on another port
    EmptySource nothing;
    std::atomic<bool> stop{false};
    RunStats stats;
    ASSERT_EQ(run_edge(c, nothing, stop, &stats, 10000), 0);
    EXPECT_EQ(stats.records_acknowledged, 24u);
    EXPECT_EQ(stored_records(), 36);
    EXPECT_EQ(Spool::open(c.spool).stats().depth, 0);
}

// A server that answers the key request with a document of its choosing: unsigned (alg
// none), signed by a key other than the pinned identity, or a signed document whose payload
// was swapped. The edge refuses all of them.
TEST(EdgeKeyTrustTest, UnsignedWronglySignedOrSwappedKeysAreRefused) {
    Ed25519PrivateKey identity = Ed25519PrivateKey::generate();
    Ed25519PrivateKey intruder = Ed25519PrivateKey::generate();
    const PublicKey& pk = paillier_key().public_key();
    const std::string genuine = jws_sign(pk.to_json(), identity, {}, "paillier-key+json");
    auto b64 = [](const std::string& text) { return base64url_encode(std::string_view(text)); };
    const std::string dot = ".";
    const std::string unsigned_doc = b64(R"({"alg":"none"})") + dot + b64(pk.to_json()) + dot;
    const std::string wrongly_signed = jws_sign(pk.to_json(), intruder, {}, "paillier-key+json");
    PrivateKey other = PrivateKey::generate(2048);
    // The genuine header and signature around another key's document.
    const std::string swapped = genuine.substr(0, genuine.find('.')) + dot +
                                b64(other.public_key().to_json()) +
                                genuine.substr(genuine.rfind('.'));
    std::string served;
    httplib::Server fake;
    fake.Get("/v1/keys/active", [&served](const httplib::Request&, httplib::Response& res) {
        res.set_content(json{{"kid", "whatever"}, {"jws", served}}.dump(), "application/json");
    });
    int port = fake.bind_to_any_port("127.0.0.1");
    std::thread serving([&] { fake.listen_after_bind(); });
    Ed25519PrivateKey device = Ed25519PrivateKey::generate();
    Uplink uplink({"http://127.0.0.1:" + std::to_string(port), "", 5}, "dev", device,
                  identity.public_key());
    served = genuine;
    auto ok = uplink.fetch_active_key();
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    EXPECT_EQ(ok.value().kid(), pk.kid());
    for (const std::string& bad : {unsigned_doc, wrongly_signed, swapped}) {
        served = bad;
        auto refused = uplink.fetch_active_key();
        ASSERT_FALSE(refused.ok());
        EXPECT_EQ(refused.error().code, ErrorCode::kBadSignature) << refused.error().message;
    }
    fake.stop();
    serving.join();
}

// A newly published signed key is followed by a running edge: later records use it.
TEST_F(EdgeTest, RunningEdgeFollowsANewSignedKey) {
    EdgeConfig c = enrol("dev-r", identity_.public_key());
    c.speed = 1;  // real time, so the key check runs while records are produced
    c.key_check_interval_s = 1;
    const std::int64_t start = server::now_unix_ms();
    Simulator sim(patient_profile("healthy").value(), {}, 5, start, start + 14000);
    std::atomic<bool> stop{false};
    RunStats stats;
    int rc = -1;
    std::thread edge([&] { rc = run_edge(c, sim, stop, &stats, 10000); });
    // Publish the new key once the first record, under the first key, has arrived.
    for (int i = 0; i < 200 && stored_records() == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    PrivateKey next = PrivateKey::generate(2048);
    auto res = client_->Post(
        "/v1/keys", {{"Authorization", "Bearer " + decryptor_}},
        json{{"jws", jws_sign(next.public_key().to_json(), identity_, {}, "paillier-key+json")}}
            .dump(),
        "application/json");
    ASSERT_EQ(res->status, 201) << res->body;
    edge.join();
    ASSERT_EQ(rc, 0);
    EXPECT_EQ(Spool::open(c.spool).stats().active_kid, next.public_key().kid());
    auto db = store::Database::open(config_.database, {});
    auto st =
        db.prepare("SELECT kid, COUNT(*) FROM records WHERE device_id = 'dev-r' GROUP BY kid");
    std::map<std::string, std::int64_t> by_kid;
    while (st.step()) {
        by_kid[st.column_text(0)] = st.column_int64(1);
    }
    EXPECT_GT(by_kid[paillier_key().public_key().kid()], 0);
    EXPECT_GT(by_kid[next.public_key().kid()], 0);
}

// Over TLS the edge verifies the server's certificate against the configured CA file.
TEST_F(EdgeTest, TlsServerIsVerifiedAgainstTheConfiguredCa) {
    auto make_cert = [&](const std::string& name) {
        const std::string cert = (dir_ / (name + ".pem")).string();
        const std::string key = (dir_ / (name + ".key")).string();
        std::string cmd =
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
            "-nodes -keyout " +
            key + " -out " + cert +
            " -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 "
            ">/dev/null 2>&1";
        return std::system(cmd.c_str()) == 0 ? std::make_pair(cert, key)
                                             : std::make_pair(std::string(), std::string());
    };
    auto [cert, key] = make_cert("server");
    auto [other_cert, other_key] = make_cert("other");
    if (cert.empty() || other_cert.empty()) {
        GTEST_SKIP() << "openssl command not available";
    }
    stop_server();
    config_.tls_cert = cert;
    config_.tls_key = key;
    start_server();
    const std::string url = "https://127.0.0.1:" + std::to_string(port_);
    Ed25519PrivateKey device = Ed25519PrivateKey::generate();
    Uplink trusted({url, cert, 5}, "dev", device, identity_.public_key());
    auto fetched = trusted.fetch_active_key();
    ASSERT_TRUE(fetched.ok()) << fetched.error().message;
    EXPECT_EQ(fetched.value().kid(), paillier_key().public_key().kid());
    Uplink wrong_ca({url, other_cert, 5}, "dev", device, identity_.public_key());
    auto refused = wrong_ca.fetch_active_key();
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::kIo);
}

// The edge as a real process, killed with SIGKILL at random moments while it measures and
// uploads: after the last restart every record it ever spooled reaches the server exactly
// once (sequence numbers 1..last, no gap, no duplicate).
TEST_F(EdgeTest, KillNineLosesNothingSpooledAndDuplicatesNothing) {
    EdgeConfig c = enrol("dev-k", identity_.public_key());
    const auto config_path = dir_ / "dev-k" / "edge.toml";
    {
        std::ofstream out(config_path, std::ios::app);
        out << "\n[upload]\nbatch_size = 5\nbackoff_initial_ms = 50\nbackoff_max_ms = 500\n"
            << "[logging]\nlevel = \"warn\"\n";
    }
    std::mt19937 rng(11);
    for (int round = 0; round < 4; ++round) {
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::execl(CIPHERPULSE_EDGE_BIN, "cipherpulse-edge", "run", "--config",
                    config_path.c_str(), "--speed", "20", "--duration", "600",
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(600 + rng() % 900));
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFSIGNALED(status)) << "the edge exited on its own: " << status;
    }
    // Restart once more with nothing new to measure: it drains the spool.
    EmptySource nothing;
    std::atomic<bool> stop{false};
    ASSERT_EQ(run_edge(c, nothing, stop, nullptr, 15000), 0);
    SpoolStats spool = Spool::open(c.spool).stats();
    EXPECT_EQ(spool.depth, 0);
    ASSERT_GT(spool.last_seq, 4);
    EXPECT_EQ(spool.dropped_oldest + spool.dropped_newest + spool.dead_lettered, 0);
    auto db = store::Database::open(config_.database, {});
    auto st = db.prepare(
        "SELECT COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM records WHERE device_id = "
        "'dev-k'");
    ASSERT_TRUE(st.step());
    EXPECT_EQ(st.column_int64(0), spool.last_seq);
    EXPECT_EQ(st.column_int64(1), spool.last_seq);
    EXPECT_EQ(st.column_int64(2), 1);
    EXPECT_EQ(st.column_int64(3), spool.last_seq);
}

}  // namespace
}  // namespace cipherpulse::edge
