// The server as a real process, killed with SIGKILL again and again while an edge-like
// client uploads: after the restarts every acknowledged record is stored exactly once and
// every window equals the product of its records. Also: SIGTERM shuts down cleanly.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "cipherpulse/codec.h"
#include "cipherpulse/ed25519.h"
#include "cipherpulse/jws.h"
#include "cipherpulse/paillier.h"
#include "common/upload.h"
#include "server/admin_commands.h"
#include "server/app.h"
#include "store/sqlite.h"
#include "unit/test_support.h"

namespace cipherpulse::server {
namespace {

using json = nlohmann::json;
using testing::last_line;
using testing::TempDir;

int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    int port = ntohs(addr.sin_port);
    ::close(fd);
    return port;
}

class ServerProcessTest : public ::testing::Test {
  protected:
    void SetUp() override {
        port_ = free_port();
        config_path_ = dir_ / "server.toml";
        ASSERT_TRUE(identity_.public_key().save(dir_ / "identity.pub.pem", false).ok());
        std::ofstream(config_path_) << "[server]\nlisten = \"127.0.0.1:" << port_
                                    << "\"\ndevice_rate_per_second = 10000.0\n"
                                    << "[storage]\ndatabase = \"server.db\"\n"
                                    << "[keys]\nidentity_public_key = \"identity.pub.pem\"\n"
                                    << "[logging]\nlevel = \"warn\"\n";
        config_ = load_server_config(config_path_).value();
        std::ostringstream out, err;
        ASSERT_EQ(run_init(config_, out, err), 0) << err.str();
        admin_ = last_line(out.str());
        std::ostringstream out2;
        ASSERT_EQ(run_token_create(config_, "decryptor", "", std::nullopt, out2, err), 0);
        decryptor_ = last_line(out2.str());
    }

    void TearDown() override {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }

    void start_server() {
        pid_ = ::fork();
        ASSERT_GE(pid_, 0);
        if (pid_ == 0) {
            ::execl(CIPHERPULSE_SERVER_BIN, "cipherpulse-server", "--config", config_path_.c_str(),
                    "serve", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
        client_->set_connection_timeout(1, 0);
        client_->set_read_timeout(10, 0);
        for (int i = 0; i < 3000; ++i) {
            if (auto res = client_->Get("/v1/health"); res && res->status == 200) {
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        FAIL() << "server did not start";
    }

    int stop_server(int signal) {
        ::kill(pid_, signal);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return status;
    }

    void publish_and_register() {
        std::string jws =
            jws_sign(key().public_key().to_json(), identity_, {}, "paillier-key+json");
        auto res = client_->Post("/v1/keys", {{"Authorization", "Bearer " + decryptor_}},
                                 json{{"jws", jws}}.dump(), "application/json");
        ASSERT_TRUE(res);
        ASSERT_EQ(res->status, 201) << res->body;
        json device = {{"id", "dev-1"},
                       {"patient", "p-1"},
                       {"public_key_pem", device_key_.public_key().to_pem()}};
        res = client_->Post("/v1/devices", {{"Authorization", "Bearer " + admin_}}, device.dump(),
                            "application/json");
        ASSERT_TRUE(res);
        ASSERT_EQ(res->status, 201) << res->body;
    }

    static const PrivateKey& key() {
        static PrivateKey k = PrivateKey::generate(2048);
        return k;
    }

    std::vector<common::UploadRecord> batch(std::int64_t first_seq, int count) {
        const PublicKey& pk = key().public_key();
        HeartRateCodec codec;
        std::vector<common::UploadRecord> out;
        std::int64_t base = (now_unix_ms() / 60000) * 60000 - 60000;
        for (int i = 0; i < count; ++i) {
            std::int64_t seq = first_seq + i;
            HeartRateRecordBuilder b;
            EXPECT_TRUE(b.add_sample(60.0 + static_cast<double>(seq % 50)).ok());
            Ciphertext c = pk.encrypt(codec.pack(b.finish()));
            out.push_back({seq, base + (seq % 24) * 5000, "hr", codec.schema_id(), pk.kid(),
                           pk.serialize_base64url(c)});
        }
        return out;
    }

    // send posts one batch; true when the server acknowledged it (200).
    bool send(const std::vector<common::UploadRecord>& records) {
        auto u = common::sign_upload(common::batch_json("dev-1", records), common::kReadingsPath,
                                     "dev-1", device_key_, now_unix_ms() / 1000);
        auto res = client_->Post(common::kReadingsPath,
                                 {{"Content-Digest", u.content_digest},
                                  {"Signature-Input", u.signature_input},
                                  {"Signature", u.signature}},
                                 u.body, "application/json");
        return res && res->status == 200;
    }

    TempDir dir_;
    std::filesystem::path config_path_;
    ServerConfig config_;
    int port_ = 0;
    pid_t pid_ = -1;
    std::string admin_, decryptor_;
    Ed25519PrivateKey identity_ = Ed25519PrivateKey::generate();
    Ed25519PrivateKey device_key_ = Ed25519PrivateKey::generate();
    std::unique_ptr<httplib::Client> client_;
};

TEST_F(ServerProcessTest, KillNineLosesNothingAcknowledged) {
    start_server();
    publish_and_register();
    constexpr int kBatch = 10;
    std::map<std::int64_t, std::vector<common::UploadRecord>> batches;  // first seq -> batch
    std::set<std::int64_t> acknowledged;                                // first seqs
    std::int64_t next_seq = 1;
    std::mt19937 rng(7);
    for (int round = 0; round < 5; ++round) {
        if (round > 0) {
            start_server();
        }
        // Resend what was never acknowledged, as an edge does from its spool.
        for (auto& [first, records] : batches) {
            if (acknowledged.count(first) == 0 && send(records)) {
                acknowledged.insert(first);
            }
        }
        std::atomic<bool> stop{false};
        std::thread uploader([&] {
            while (!stop) {
                std::int64_t first = next_seq;
                next_seq += kBatch;
                batches[first] = batch(first, kBatch);
                if (send(batches[first])) {
                    acknowledged.insert(first);
                }
            }
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 250));
        stop_server(SIGKILL);
        stop = true;
        uploader.join();
    }
    start_server();
    for (auto& [first, records] : batches) {
        if (acknowledged.count(first) == 0) {
            ASSERT_TRUE(send(records)) << "resend of batch " << first;
            acknowledged.insert(first);
        }
    }
    EXPECT_EQ(WEXITSTATUS(stop_server(SIGTERM)), 0);
    ASSERT_GT(batches.size(), 5u);

    auto db = store::Database::open(config_.database, {});
    auto count = db.prepare("SELECT COUNT(*), COUNT(DISTINCT seq) FROM records");
    ASSERT_TRUE(count.step());
    EXPECT_EQ(count.column_int64(0), static_cast<std::int64_t>(batches.size()) * kBatch);
    EXPECT_EQ(count.column_int64(1), count.column_int64(0));
    // Every window equals the product of its records.
    const PublicKey& pk = key().public_key();
    auto windows = db.prepare("SELECT id, record_count, aggregate FROM windows");
    int checked = 0;
    while (windows.step()) {
        auto records = db.prepare(
            "SELECT r.ct FROM window_members wr JOIN records r ON r.device_id = wr.device_id AND "
            "r.seq = wr.seq WHERE wr.window_id = ?");
        records.bind(1, windows.column_int64(0));
        std::vector<Ciphertext> cs;
        while (records.step()) {
            cs.push_back(pk.parse_ciphertext(records.column_blob(0)).value());
        }
        EXPECT_EQ(static_cast<std::int64_t>(cs.size()), windows.column_int64(1));
        EXPECT_EQ(pk.serialize(pk.sum(cs)), windows.column_blob(2));
        ++checked;
    }
    EXPECT_GT(checked, 0);
}

TEST_F(ServerProcessTest, SigtermFinishesAndExitsCleanly) {
    start_server();
    publish_and_register();
    ASSERT_TRUE(send(batch(1, 5)));
    int status = stop_server(SIGTERM);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    auto db = store::Database::open(config_.database, {});
    auto count = db.prepare("SELECT COUNT(*) FROM records");
    ASSERT_TRUE(count.step());
    EXPECT_EQ(count.column_int64(0), 5);
}

}  // namespace
}  // namespace cipherpulse::server
