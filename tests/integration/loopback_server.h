// A real server on loopback for integration tests (in-process ServerApp with a real
// database file and a controllable clock), with a decryptor key published and devices
// enrolled through `cipherpulse-edge init`. Shared by the edge and decryptor tests.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cipherpulse/jws.h"
#include "cipherpulse/paillier.h"
#include "edge/commands.h"
#include "edge/config.h"
#include "edge/micro_window.h"
#include "edge/simulator.h"
#include "server/admin_commands.h"
#include "server/app.h"
#include "store/sqlite.h"
#include "unit/test_support.h"

namespace cipherpulse::edge {

using cipherpulse::testing::last_line;
using cipherpulse::testing::TempDir;

// paillier_key is one 2048-bit key per test process (generating one takes a while).
inline const PrivateKey& paillier_key() {
    static PrivateKey key = PrivateKey::generate(2048);
    return key;
}

// EmptySource ends at once (a run that only drains the spool).
class EmptySource final : public Source {
  public:
    std::optional<Reading> next() override { return std::nullopt; }
};

class LoopbackServerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        spdlog::set_level(spdlog::level::warn);
        config_ = server::ServerConfig::defaults();
        config_.database = (dir_ / "server.db").string();
        config_.listen_port = 0;
        config_.identity_public_key = (dir_ / "identity.pub.pem").string();
        // Long grace: the simulated minutes lie in the recent past and must still fold.
        for (auto& g : config_.granularities) {
            g.seal_grace_ms = 3 * 3600 * 1000;
        }
        ASSERT_TRUE(identity_.public_key().save(config_.identity_public_key, false).ok());
        std::ostringstream out, err;
        ASSERT_EQ(server::run_init(config_, out, err), 0) << err.str();
        admin_ = last_line(out.str());
        std::ostringstream out2;
        ASSERT_EQ(server::run_token_create(config_, "decryptor", "", std::nullopt, out2, err), 0);
        decryptor_ = last_line(out2.str());
        start_server();
        std::string jws =
            jws_sign(paillier_key().public_key().to_json(), identity_, {}, "paillier-key+json");
        auto res = client_->Post("/v1/keys", {{"Authorization", "Bearer " + decryptor_}},
                                 nlohmann::json{{"jws", jws}}.dump(), "application/json");
        ASSERT_EQ(res->status, 201) << res->body;
    }

    void TearDown() override { stop_server(); }

    void start_server() {
        app_ = std::make_unique<server::ServerApp>(
            config_, [this] { return server::now_unix_ms() + offset_ms_.load(); });
        port_ = app_->bind();
        thread_ = std::thread([this] { app_->serve(); });
        if (config_.tls_cert.empty()) {
            client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
        } else {
            client_ =
                std::make_unique<httplib::Client>("https://127.0.0.1:" + std::to_string(port_));
            client_->set_ca_cert_path(config_.tls_cert.c_str());
        }
        for (int i = 0; i < 200 && !client_->Get("/v1/health"); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    void stop_server() {
        if (app_) {
            app_->stop();
            thread_.join();
            app_.reset();
        }
    }

    // enrol runs `cipherpulse-edge init` into a directory and registers the device.
    EdgeConfig enrol(const std::string& device, const Ed25519PublicKey& pinned) {
        const auto edge_dir = dir_ / device;
        const auto pinned_path = dir_ / (device + "-identity.pub.pem");
        EXPECT_TRUE(pinned.save(pinned_path, true).ok());
        InitOptions init;
        init.device_id = device;
        init.server_url = "http://127.0.0.1:" + std::to_string(port_);
        init.identity = pinned_path;
        init.dir = edge_dir;
        std::ostringstream out, err;
        EXPECT_EQ(run_init(init, out, err), 0) << err.str();
        EXPECT_NE(out.str().find("cipherpulse-server device add --id " + device),
                  std::string::npos);
        auto device_pub = Ed25519PublicKey::load(edge_dir / "device.pub.pem").value();
        nlohmann::json body = {{"id", device},
                               {"patient", "patient-" + device},
                               {"public_key_pem", device_pub.to_pem()}};
        auto res = client_->Post("/v1/devices", {{"Authorization", "Bearer " + admin_}},
                                 body.dump(), "application/json");
        EXPECT_EQ(res->status, 201) << res->body;
        auto config = load_edge_config(edge_dir / "edge.toml");
        EXPECT_TRUE(config.ok()) << config.error().message;
        EdgeConfig c = config.value();
        c.speed = 0;
        c.batch_size = 20;
        c.backoff_initial_ms = 50;
        c.backoff_max_ms = 200;
        return c;
    }

    void point_at_server(EdgeConfig& c) {
        c.server.url = "http://127.0.0.1:" + std::to_string(port_);
    }

    std::int64_t stored_records() {
        auto db = store::Database::open(config_.database, {});
        auto st = db.prepare("SELECT COUNT(*) FROM records");
        st.step();
        return st.column_int64(0);
    }

    // expected_minutes runs the same readings through the same micro-windows and sums
    // them per minute, as the server's 1m windows should.
    static std::map<std::int64_t, HeartRateStats> expected_minutes(Source& source,
                                                                   const EdgeConfig& c) {
        MicroWindows windows(c.micro_window_ms, c.filter);
        std::map<std::int64_t, HeartRateStats> minutes;
        std::int64_t last_t = 0;
        auto add = [&](const std::vector<WindowRecord>& records) {
            for (const auto& r : records) {
                minutes[r.start_ms - r.start_ms % 60000] += r.stats;
            }
        };
        while (auto r = source.next()) {
            last_t = r->t_ms;
            add(windows.add(*r));
        }
        add(windows.flush_until(last_t - last_t % c.micro_window_ms + c.micro_window_ms));
        return minutes;
    }

    nlohmann::json sealed_minutes(std::size_t expected) {
        offset_ms_ = 4 * 3600 * 1000;  // the server's clock moves past every seal time
        nlohmann::json windows;
        for (int i = 0; i < 600; ++i) {
            auto res = client_->Get("/v1/windows?granularity=1m&after=0&limit=1000",
                                    {{"Authorization", "Bearer " + decryptor_}});
            windows = nlohmann::json::parse(res->body)["windows"];
            if (windows.size() >= expected) {
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return windows;
    }

    TempDir dir_;
    server::ServerConfig config_;
    std::atomic<std::int64_t> offset_ms_{0};
    Ed25519PrivateKey identity_ = Ed25519PrivateKey::generate();
    std::string admin_, decryptor_;
    std::unique_ptr<server::ServerApp> app_;
    std::thread thread_;
    std::unique_ptr<httplib::Client> client_;
    int port_ = 0;
};

}  // namespace cipherpulse::edge
