// System tests: the three programs as separate processes over TLS on loopback, with real
// SQLite files and a real SMTP server (STARTTLS + AUTH). Edges stream simulated patients in
// real time into 10-second windows; the server is killed and restarted mid-stream, the
// decryptor too, a signed batch is replayed; at the end every released window's decrypted
// statistics must equal those computed directly from the same simulated readings, nothing
// acknowledged may be lost, and the tachycardia must have reached the SMTP server once.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "cipherpulse/ed25519.h"
#include "cipherpulse/jws.h"
#include "edge/micro_window.h"
#include "edge/simulator.h"
#include "edge/spool.h"
#include "server/admin_commands.h"
#include "server/config.h"
#include "store/sqlite.h"
#include "unit/test_support.h"

namespace cipherpulse {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
using testing::ChildProcess;
using testing::TempDir;

constexpr std::int64_t kWindowMs = 10'000;

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void write_file(const fs::path& p, const std::string& text, mode_t mode = 0644) {
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
}

// free_port asks the kernel for a free loopback port (closed again before the server binds).
int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
        port = ntohs(addr.sin_port);
    }
    ::close(fd);
    return port;
}

// Process runs one of the programs; the destructor stops it (SIGTERM, then SIGKILL).
std::unique_ptr<ChildProcess> start(const std::string& bin, std::vector<std::string> args) {
    args.insert(args.begin(), bin);
    return std::make_unique<ChildProcess>(args);
}

int run(const std::string& bin, std::vector<std::string> args) {
    auto p = start(bin, std::move(args));
    int status = p->stop(0);  // signal 0: just wait
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class SystemTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto tls = testing::make_self_signed(dir_.path(), "server");
        ASSERT_TRUE(tls);
        tls_ = *tls;
        port_ = free_port();
        url_ = "https://127.0.0.1:" + std::to_string(port_);
        // The decryptor's keys (the real program).
        ASSERT_EQ(run(CIPHERPULSE_DECRYPTOR_BIN,
                      {"keygen", "--bits", "2048", "--out", (dir_ / "keys").string()}),
                  0);
        write_file(dir_ / "server.toml",
                   "[server]\nlisten = \"127.0.0.1:" + std::to_string(port_) + "\"\ntls_cert = \"" +
                       tls_.cert + "\"\ntls_key = \"" + tls_.key +
                       "\"\n[storage]\ndatabase = \"server.db\"\n"
                       "[ingest]\ngranularities = [\"10s\"]\nseal_grace_s = { \"10s\" = 5 }\n"
                       "[keys]\nidentity_public_key = \"keys/identity.pub.pem\"\n"
                       "[logging]\nlevel = \"warn\"\n");
        auto config = server::load_server_config(dir_ / "server.toml");
        ASSERT_TRUE(config.ok()) << config.error().message;
        server_config_ = config.value();
        std::ostringstream out, err;
        ASSERT_EQ(server::run_init(server_config_, out, err), 0) << err.str();
        admin_ = testing::last_line(out.str());
        std::ostringstream out2;
        ASSERT_EQ(
            server::run_token_create(server_config_, "decryptor", "", std::nullopt, out2, err), 0);
        write_file(dir_ / "decryptor.token", testing::last_line(out2.str()) + "\n", 0600);
        start_server();
        ASSERT_EQ(run(CIPHERPULSE_DECRYPTOR_BIN,
                      {"publish", "--keys", (dir_ / "keys").string(), "--server", url_, "--ca-file",
                       tls_.cert, "--token-file", (dir_ / "decryptor.token").string()}),
                  0);
    }

    void start_server() {
        server_ =
            start(CIPHERPULSE_SERVER_BIN, {"--config", (dir_ / "server.toml").string(), "serve"});
        auto client = this->client();
        for (int i = 0; i < 300; ++i) {
            if (auto res = client->Get("/v1/health"); res && res->status == 200) {
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        FAIL() << "the server did not come up";
    }

    std::unique_ptr<httplib::Client> client() {
        auto c = std::make_unique<httplib::Client>(url_);
        c->set_ca_cert_path(tls_.cert.c_str());
        c->set_connection_timeout(2);
        return c;
    }

    // enrol creates a device key with `cipherpulse-edge init`, registers it through the
    // admin API (with `register_key`, or the device's own key), and writes its config.
    fs::path enrol(const std::string& device, const std::string& episodes, std::int64_t start_ms,
                   double duration_s, const std::string& register_key = "") {
        const fs::path d = dir_ / device;
        EXPECT_EQ(
            run(CIPHERPULSE_EDGE_BIN, {"init", "--device-id", device, "--server", url_,
                                       "--identity", (dir_ / "keys/identity.pub.pem").string(),
                                       "--dir", d.string(), "--ca-file", tls_.cert}),
            0);
        std::string pem = register_key;
        if (pem.empty()) {
            std::ifstream in(d / "device.pub.pem");
            pem.assign(std::istreambuf_iterator<char>(in), {});
        }
        auto res = client()->Post(
            "/v1/devices", {{"Authorization", "Bearer " + admin_}},
            json{{"id", device}, {"patient", "patient-" + device}, {"public_key_pem", pem}}.dump(),
            "application/json");
        EXPECT_TRUE(res && res->status == 201);
        std::string text;
        {
            std::ifstream in(d / "edge.toml");
            text.assign(std::istreambuf_iterator<char>(in), {});
        }
        // The simulated patient, small batches and quick retries (outages are bridged
        // within the test).
        text = text.substr(0, text.find("[source]"));
        text += "[source]\nkind = \"sim\"\nprofile = \"healthy\"\nseed = 7\nepisodes = \"" +
                episodes + "\"\nduration_s = " + std::to_string(duration_s) +
                "\n[upload]\nbatch_size = 2\nbackoff_initial_ms = 200\nbackoff_max_ms = 1000\n"
                "[logging]\nlevel = \"warn\"\n";
        write_file(d / "edge.toml", text);
        starts_[device] = start_ms;
        episodes_[device] = episodes;
        durations_[device] = duration_s;
        return d / "edge.toml";
    }

    std::unique_ptr<ChildProcess> start_edge(const std::string& device) {
        return start(CIPHERPULSE_EDGE_BIN,
                     {"run", "--config", (dir_ / device / "edge.toml").string(), "--start-ms",
                      std::to_string(starts_[device])});
    }

    // expected recomputes a device's 10 s windows from the same simulated readings.
    std::map<std::int64_t, HeartRateStats> expected(const std::string& device) {
        auto profile = edge::patient_profile("healthy").value();
        auto script = edge::parse_episodes(episodes_[device]).value();
        const std::int64_t start = starts_[device];
        const std::int64_t end = start + static_cast<std::int64_t>(durations_[device] * 1000);
        edge::Simulator sim(profile, script, 7, start, end);
        edge::MicroWindows windows(5000, edge::FilterRules{});
        std::map<std::int64_t, HeartRateStats> out;
        auto add = [&](const std::vector<edge::WindowRecord>& records) {
            for (const auto& r : records) {
                out[r.start_ms - r.start_ms % kWindowMs] += r.stats;
            }
        };
        std::int64_t last = start;
        while (auto r = sim.next()) {
            last = r->t_ms;
            add(windows.add(*r));
        }
        add(windows.flush_until(last - last % 5000 + 5000));
        return out;
    }

    void write_decryptor_config(int smtp_port) {
        write_file(dir_ / "decryptor.toml",
                   "[key]\nprivate_key = \"keys/paillier.key\"\n"
                   "[server]\nurl = \"" +
                       url_ + "\"\nca_file = \"" + tls_.cert +
                       "\"\ntoken_file = \"decryptor.token\"\n"
                       "[watch]\ndatabase = \"decryptor.db\"\ngranularity = \"10s\"\n"
                       "poll_interval_s = 0.5\nverify_sample_rate = 0.5\n"
                       "[notify]\nretry_initial_backoff_s = 0.2\nretry_max_backoff_s = 1.0\n"
                       "[notify.email]\nenabled = true\nurl = \"smtp://127.0.0.1:" +
                       std::to_string(smtp_port) +
                       "\"\ntls = \"starttls\"\nusername = \"alerts\"\n"
                       "password_file = \"smtp.password\"\nca_file = \"" +
                       tls_.cert +
                       "\"\nfrom = \"cipherpulse <alerts@hospital.test>\"\n"
                       "to = [\"oncall@hospital.test\"]\n"
                       "[rules.tachycardia]\nsustained = 2\nclear_after = 1\ncooldown = \"0s\"\n"
                       "[rules.baseline_deviation]\nenabled = false\n"
                       "[rules.missing_data]\nenabled = false\n"
                       "[logging]\nlevel = \"warn\"\n");
    }

    std::int64_t query_int(const std::string& sql) {
        auto db = store::Database::open((dir_ / "server.db").string(), {});
        auto st = db.prepare(sql);
        return st.step() ? st.column_int64(0) : -1;
    }

    TempDir dir_;
    testing::TlsFiles tls_;
    int port_ = 0;
    std::string url_, admin_;
    server::ServerConfig server_config_;
    std::unique_ptr<ChildProcess> server_;
    std::map<std::string, std::int64_t> starts_;
    std::map<std::string, std::string> episodes_;
    std::map<std::string, double> durations_;
};

// The normal flow with restarts: edge -> server -> decryptor -> e-mail, values checked.
TEST_F(SystemTest, StreamingWithRestartsDeliversExactValuesAndOneAlert) {
    write_file(dir_ / "smtp.password", "system-test-password\n", 0600);
    fs::create_directories(dir_ / "mail");
    auto smtp = std::make_unique<ChildProcess>(std::vector<std::string>{
        "/usr/bin/python3", (testing::repo_root() / "tests/fixtures/smtp_server.py").string(),
        "--port", "0", "--mode", "starttls", "--cert", tls_.cert, "--key", tls_.key,
        "--require-auth", "--user", "alerts", "--password-file", (dir_ / "smtp.password").string(),
        "--out", (dir_ / "mail").string()});
    const int smtp_port = smtp->ready_port(20000);
    ASSERT_GT(smtp_port, 0);
    write_decryptor_config(smtp_port);

    // Data starts at the next window boundary; 50 s of readings in real time.
    const std::int64_t t0 = (now_ms() / kWindowMs + 1) * kWindowMs;
    enrol("dev-a", "tachycardia@10s+20s:150", t0, 50);
    enrol("dev-b", "", t0, 50);
    auto edge_a = start_edge("dev-a");
    auto edge_b = start_edge("dev-b");
    auto decryptor =
        start(CIPHERPULSE_DECRYPTOR_BIN, {"watch", "--config", (dir_ / "decryptor.toml").string()});
    auto sleep_until = [t0](std::int64_t offset_ms) {
        const std::int64_t wait = t0 + offset_ms - now_ms();
        if (wait > 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(wait));
        }
    };
    // The server dies mid-stream and comes back; the edges' spools bridge the gap.
    sleep_until(14'000);
    server_->stop(SIGKILL);
    sleep_until(17'000);
    start_server();
    // The decryptor dies and comes back.
    sleep_until(24'000);
    decryptor->stop(SIGKILL);
    sleep_until(26'000);
    decryptor =
        start(CIPHERPULSE_DECRYPTOR_BIN, {"watch", "--config", (dir_ / "decryptor.toml").string()});
    // A signed batch is replayed as it was sent: answered as duplicates, counted once.
    sleep_until(30'000);
    {
        auto db = store::Database::open((dir_ / "server.db").string(), {});
        auto st = db.prepare(
            "SELECT body, content_digest, signature_input, signature FROM batches "
            "ORDER BY id LIMIT 1");
        ASSERT_TRUE(st.step());
        auto body = st.column_blob(0);
        auto res = client()->Post("/v1/readings",
                                  {{"Content-Digest", st.column_text(1)},
                                   {"Signature-Input", st.column_text(2)},
                                   {"Signature", st.column_text(3)}},
                                  std::string(body.begin(), body.end()), "application/json");
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 200) << res->body;
        auto answer = json::parse(res->body);
        EXPECT_EQ(answer["accepted"], 0) << res->body;
        EXPECT_GE(answer["duplicate"].get<int>(), 1) << res->body;
    }
    // The edges end their 50 s of data and drain; the last window seals at t0 + 55 s.
    EXPECT_EQ(edge_a->stop(0), 0);
    EXPECT_EQ(edge_b->stop(0), 0);
    sleep_until(62'000);

    // Nothing the edges spooled is lost or doubled.
    for (const std::string device : {"dev-a", "dev-b"}) {
        auto spool = edge::Spool::open({(dir_ / device / "spool.db").string()}).stats();
        EXPECT_EQ(spool.depth, 0) << device;
        EXPECT_EQ(query_int("SELECT COUNT(*) FROM records WHERE device_id = '" + device + "'"),
                  spool.last_seq)
            << device;
        EXPECT_EQ(
            query_int("SELECT COUNT(DISTINCT seq) FROM records WHERE device_id = '" + device + "'"),
            spool.last_seq)
            << device;
    }

    // Every released window equals the statistics of the same readings.
    decryptor->stop(SIGTERM);
    auto ddb = store::Database::open((dir_ / "decryptor.db").string(), {});
    int compared = 0;
    for (const std::string device : {"dev-a", "dev-b"}) {
        auto want = expected(device);
        auto st = ddb.prepare(
            "SELECT start_ms, status, stats FROM ledger WHERE patient = ?1 ORDER BY start_ms");
        st.bind_all("patient-" + device);
        while (st.step()) {
            ASSERT_EQ(st.column_text(1), "released") << device << " " << st.column_int64(0);
            const std::int64_t start = st.column_int64(0);
            ASSERT_EQ(want.count(start), 1u) << device << " window " << start;
            json got = json::parse(st.column_text(2));
            const HeartRateStats& w = want[start];
            // Records that arrived after their window sealed are stored as late, not folded.
            const std::int64_t late =
                query_int("SELECT COUNT(*) FROM records WHERE device_id = '" + device +
                          "' AND late > 0 AND t_ms >= " + std::to_string(start) + " AND t_ms < " +
                          std::to_string(start + kWindowMs));
            if (late > 0) {
                continue;
            }
            EXPECT_EQ(got["records"].get<std::uint64_t>(), w.records) << device << " " << start;
            EXPECT_EQ(got["samples"].get<std::uint64_t>(), w.samples) << device << " " << start;
            EXPECT_NEAR(got["mean_bpm"].get<double>(), w.mean_bpm().value(), 0.006);
            ++compared;
        }
    }
    EXPECT_GE(compared, 8) << "most windows should have been compared";

    // The tachycardia reached the SMTP server once (raised, then cleared); the healthy
    // patient raised nothing.
    int raised = 0, cleared = 0;
    auto alerts = ddb.prepare("SELECT patient, rule, kind FROM alerts");
    while (alerts.step()) {
        EXPECT_EQ(alerts.column_text(0), "patient-dev-a");
        EXPECT_EQ(alerts.column_text(1), "tachycardia");
        raised += alerts.column_text(2) == "raised";
        cleared += alerts.column_text(2) == "cleared";
    }
    EXPECT_EQ(raised, 1);
    EXPECT_EQ(cleared, 1);
    int mails = 0;
    for (const auto& e : fs::directory_iterator(dir_ / "mail")) {
        mails += e.path().extension() == ".eml";
    }
    EXPECT_EQ(mails, raised + cleared);
}

// A device registered with another key is refused: nothing of it is stored.
TEST_F(SystemTest, DeviceWithAWrongKeyIsRefused) {
    const std::string other = Ed25519PrivateKey::generate().public_key().to_pem();
    enrol("dev-w", "", now_ms() - 20'000, 20, other);
    auto edge =
        start(CIPHERPULSE_EDGE_BIN, {"run", "--config", (dir_ / "dev-w" / "edge.toml").string(),
                                     "--speed", "0", "--duration", "20"});
    std::this_thread::sleep_for(std::chrono::seconds(4));
    edge->stop(SIGTERM);
    EXPECT_EQ(query_int("SELECT COUNT(*) FROM records WHERE device_id = 'dev-w'"), 0);
    auto spool = edge::Spool::open({(dir_ / "dev-w" / "spool.db").string()}).stats();
    EXPECT_GT(spool.depth, 0) << "records stay in the spool, not lost";
}

// A server that serves an encryption key not signed by the decryptor's identity (here: the
// key document swapped in its database) gets nothing: the edge refuses to encrypt (exit 3).
TEST_F(SystemTest, ForeignEncryptionKeyIsRefusedByTheEdge) {
    auto foreign = PrivateKey::generate(2048);
    const std::string jws = jws_sign(foreign.public_key().to_json(), Ed25519PrivateKey::generate(),
                                     {}, "paillier-key+json");
    {
        auto db = store::Database::open((dir_ / "server.db").string(), {});
        auto cols = db.prepare("SELECT name FROM pragma_table_info('keys')");
        std::set<std::string> names;
        while (cols.step()) {
            names.insert(cols.column_text(0));
        }
        ASSERT_TRUE(names.count("jws")) << "the keys table keeps the signed document";
        db.prepare("UPDATE keys SET jws = ?1").bind_all(jws).execute();
    }
    enrol("dev-f", "", now_ms() - 20'000, 20);
    EXPECT_EQ(run(CIPHERPULSE_EDGE_BIN, {"run", "--config", (dir_ / "dev-f" / "edge.toml").string(),
                                         "--speed", "0", "--duration", "20"}),
              3);
    EXPECT_EQ(query_int("SELECT COUNT(*) FROM records WHERE device_id = 'dev-f'"), 0);
}

}  // namespace
}  // namespace cipherpulse
