// The server on loopback with a real database file: the HTTP API driven by a client that
// signs its uploads as an edge does, with the decryption done here with the private key.
#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "cipherpulse/base64url.h"
#include "cipherpulse/codec.h"
#include "cipherpulse/ed25519.h"
#include "cipherpulse/http_signature.h"
#include "cipherpulse/jws.h"
#include "cipherpulse/paillier.h"
#include "common/upload.h"
#include "server/admin_commands.h"
#include "server/app.h"
#include "server/audit.h"
#include "server/ingest.h"
#include "store/sqlite.h"
#include "unit/test_support.h"

namespace cipherpulse::server {
namespace {

using json = nlohmann::json;
using testing::last_line;
using testing::TempDir;

// 2025-11-21T05:20:00Z, on a minute, hour and day boundary-friendly value.
constexpr std::int64_t kStartMs = 1763702400000;

const PrivateKey& paillier_key() {
    static PrivateKey key = PrivateKey::generate(2048);
    return key;
}

class ServerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        spdlog::set_level(spdlog::level::warn);
        config_ = ServerConfig::defaults();
        config_.database = (dir_ / "server.db").string();
        config_.listen_port = 0;
        config_.identity_public_key = (dir_ / "identity.pub.pem").string();
        ASSERT_TRUE(identity_.public_key().save(config_.identity_public_key, false).ok());
        std::ostringstream out, err;
        ASSERT_EQ(run_init(config_, out, err), 0) << err.str();
        admin_ = last_line(out.str());
        decryptor_ = make_token("decryptor");
        clinician_ = make_token("clinician");
        start();
        publish_key();
        add_device("dev-1", "patient-1", device_key_);
    }

    void TearDown() override { stop(); }

    void start() {
        app_ = std::make_unique<ServerApp>(config_, [this] { return now_.load(); });
        port_ = app_->bind();
        thread_ = std::thread([this] { app_->serve(); });
        client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
        client_->set_read_timeout(30, 0);
        for (int i = 0; i < 200 && !client_->Get("/v1/health"); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    void stop() {
        if (app_) {
            app_->stop();
            thread_.join();
            app_.reset();
        }
    }

    std::string make_token(const std::string& role) {
        std::ostringstream out, err;
        EXPECT_EQ(run_token_create(config_, role, "test", std::nullopt, out, err), 0);
        return last_line(out.str());
    }

    httplib::Headers auth(const std::string& token) {
        return {{"Authorization", "Bearer " + token}};
    }

    void publish_key() {
        std::string jws =
            jws_sign(paillier_key().public_key().to_json(), identity_, {}, "paillier-key+json");
        auto res = client_->Post("/v1/keys", auth(decryptor_), json{{"jws", jws}}.dump(),
                                 "application/json");
        ASSERT_TRUE(res);
        ASSERT_EQ(res->status, 201) << res->body;
    }

    void add_device(const std::string& id, const std::string& patient,
                    const Ed25519PrivateKey& key) {
        json body = {
            {"id", id}, {"patient", patient}, {"public_key_pem", key.public_key().to_pem()}};
        auto res = client_->Post("/v1/devices", auth(admin_), body.dump(), "application/json");
        ASSERT_TRUE(res);
        ASSERT_EQ(res->status, 201) << res->body;
    }

    // A heart-rate record for micro-window `i` (5 s each) with a few samples.
    std::pair<common::UploadRecord, HeartRateStats> record(std::int64_t seq, std::int64_t t_ms,
                                                           double bpm) {
        HeartRateRecordBuilder builder;
        for (int s = 0; s < 5; ++s) {
            EXPECT_TRUE(builder.add_sample(bpm + s).ok());
            EXPECT_TRUE(builder.add_rr(static_cast<std::uint32_t>(60000 / (bpm + s))).ok());
        }
        HeartRateStats stats = builder.finish();
        BigInt plain = codec_.pack(stats);
        Ciphertext c = paillier_key().public_key().encrypt(plain);
        common::UploadRecord r{seq,
                               t_ms,
                               "hr",
                               codec_.schema_id(),
                               paillier_key().public_key().kid(),
                               paillier_key().public_key().serialize_base64url(c)};
        return {r, stats};
    }

    httplib::Result upload(const std::vector<common::UploadRecord>& records,
                           const std::string& device = "dev-1",
                           const Ed25519PrivateKey* key = nullptr) {
        auto signed_upload =
            common::sign_upload(common::batch_json(device, records), common::kReadingsPath, device,
                                key ? *key : device_key_, now_.load() / 1000);
        return post_signed(signed_upload);
    }

    httplib::Result post_signed(const common::SignedUpload& u) {
        httplib::Headers h = {{"Content-Digest", u.content_digest},
                              {"Signature-Input", u.signature_input},
                              {"Signature", u.signature}};
        return client_->Post(common::kReadingsPath, h, u.body, "application/json");
    }

    // raw_request sends `text` on a fresh connection and returns what comes back until the
    // server closes it (or 5 s pass).
    std::string raw_request(const std::string& text) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(port_));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            ::close(fd);
            return {};
        }
        timeval tv{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void)!::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
        std::string out;
        char buf[4096];
        for (;;) {
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) {
                break;
            }
            out.append(buf, static_cast<std::size_t>(n));
            if (out.find("\r\n\r\n") != std::string::npos && out.find("}") != std::string::npos) {
                break;
            }
        }
        ::close(fd);
        return out;
    }

    // Counts that must not move when a request is refused.
    std::string snapshot() {
        auto db = store::Database::open(config_.database, {});
        std::string out;
        for (const char* sql :
             {"SELECT COUNT(*) FROM records", "SELECT COUNT(*) FROM batches",
              "SELECT COUNT(*) FROM windows", "SELECT COALESCE(SUM(record_count), 0) FROM windows",
              "SELECT COUNT(*) FROM devices WHERE status = 'active'"}) {
            auto st = db.prepare(sql);
            st.step();
            out += std::to_string(st.column_int64(0)) + ",";
        }
        return out;
    }

    json sealed_windows(const std::string& granularity) {
        json all = json::array();
        std::string cursor = "0";
        for (int page = 0; page < 100; ++page) {
            auto res = client_->Get(
                "/v1/windows?granularity=" + granularity + "&after=" + cursor + "&limit=2",
                auth(decryptor_));
            EXPECT_TRUE(res);
            EXPECT_EQ(res->status, 200) << res->body;
            json doc = json::parse(res->body);
            for (auto& w : doc["windows"]) {
                all.push_back(w);
            }
            cursor = doc["next_cursor"].get<std::string>();
            if (!doc["more"].get<bool>()) {
                break;
            }
        }
        return all;
    }

    // advance moves the test clock and waits until the sealer has sealed `expected`
    // windows of `granularity`.
    json advance_and_wait(std::int64_t to_ms, const std::string& granularity,
                          std::size_t expected) {
        now_ = to_ms;
        json windows;
        for (int i = 0; i < 600; ++i) {
            windows = sealed_windows(granularity);
            if (windows.size() >= expected) {
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return windows;
    }

    HeartRateStats decrypt_window(const json& w) {
        const PublicKey& pk = paillier_key().public_key();
        auto c = pk.parse_ciphertext_base64url(w["aggregate"].get<std::string>());
        EXPECT_TRUE(c.ok());
        auto stats = codec_.unpack(paillier_key().decrypt(c.value()));
        EXPECT_TRUE(stats.ok()) << stats.error().message;
        return stats.value();
    }

    TempDir dir_;
    ServerConfig config_;
    std::atomic<std::int64_t> now_{kStartMs + 1000};
    Ed25519PrivateKey identity_ = Ed25519PrivateKey::generate();
    Ed25519PrivateKey device_key_ = Ed25519PrivateKey::generate();
    HeartRateCodec codec_;
    std::string admin_, decryptor_, clinician_;
    std::unique_ptr<ServerApp> app_;
    std::thread thread_;
    std::unique_ptr<httplib::Client> client_;
    int port_ = 0;
};

TEST_F(ServerTest, HealthReadyAndActiveKey) {
    auto res = client_->Get("/v1/health");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    std::string first_id = res->get_header_value("X-Request-Id");
    EXPECT_FALSE(first_id.empty());
    EXPECT_NE(client_->Get("/v1/health")->get_header_value("X-Request-Id"), first_id);
    res = client_->Get("/v1/ready");
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(json::parse(res->body)["active_kid"], paillier_key().public_key().kid());
    res = client_->Get("/v1/keys/active");
    ASSERT_EQ(res->status, 200);
    // Returned unchanged: it verifies against the identity the edge pinned.
    auto verified =
        jws_verify(json::parse(res->body)["jws"].get<std::string>(), identity_.public_key());
    ASSERT_TRUE(verified.ok());
    EXPECT_EQ(verified.value().payload, paillier_key().public_key().to_json());
}

TEST_F(ServerTest, IngestSealDecryptMatchesPlaintextSums) {
    // Two minutes of 5 s micro-windows: 12 records per 1m window, in batches of 4.
    HeartRateStats minute[2];
    std::int64_t seq = 0;
    for (int batch = 0; batch < 6; ++batch) {
        std::vector<common::UploadRecord> records;
        for (int i = 0; i < 4; ++i) {
            std::int64_t t = kStartMs + (batch * 4 + i) * 5000;
            ++seq;
            auto [r, stats] = record(seq, t, 60 + static_cast<double>(seq));
            minute[(t - kStartMs) / 60000] += stats;
            records.push_back(r);
        }
        now_ = kStartMs + (batch * 4 + 4) * 5000;
        auto res = upload(records);
        ASSERT_TRUE(res);
        ASSERT_EQ(res->status, 200) << res->body;
        json doc = json::parse(res->body);
        EXPECT_EQ(doc["accepted"], 4);
        EXPECT_EQ(doc["duplicate"], 0);
    }
    // Not sealed yet: nothing is released.
    EXPECT_TRUE(sealed_windows("1m").empty());
    json windows = advance_and_wait(kStartMs + 2 * 60000 + 60000, "1m", 2);
    ASSERT_EQ(windows.size(), 2u);
    for (const auto& w : windows) {
        EXPECT_EQ(w["record_count"], 12);
        EXPECT_EQ(w["patient"], "patient-1");
        int index = static_cast<int>((w["start_ms"].get<std::int64_t>() - kStartMs) / 60000);
        ASSERT_GE(index, 0);
        ASSERT_LT(index, 2);
        HeartRateStats got = decrypt_window(w);
        EXPECT_EQ(got, minute[index]);
        EXPECT_EQ(got.records, 12u);
        EXPECT_EQ(got.samples, 60u);
    }
    // The hour window seals later and holds all 24 records.
    json hours = advance_and_wait(kStartMs + 3600000 + 600000, "1h", 1);
    ASSERT_EQ(hours.size(), 1u);
    HeartRateStats both = minute[0];
    both += minute[1];
    EXPECT_EQ(decrypt_window(hours[0]), both);
}

TEST_F(ServerTest, ResentBatchIsAcknowledgedNotStoredTwice) {
    auto [r1, s1] = record(1, kStartMs, 70);
    auto [r2, s2] = record(2, kStartMs + 5000, 71);
    auto res = upload({r1, r2});
    ASSERT_EQ(res->status, 200) << res->body;
    std::string before = snapshot();
    res = upload({r1, r2});
    ASSERT_EQ(res->status, 200) << res->body;
    json doc = json::parse(res->body);
    EXPECT_EQ(doc["duplicate"], 2);
    EXPECT_EQ(doc["accepted"], 0);
    EXPECT_EQ(snapshot(), before);
    // Same seq, other content: a conflict, nothing stored.
    auto [other, s3] = record(2, kStartMs + 5000, 90);
    res = upload({other});
    EXPECT_EQ(res->status, 409);
    EXPECT_EQ(snapshot(), before);
}

TEST_F(ServerTest, BatchMixingDuplicatesAndNewRecordsFoldsOnlyTheNewOnes) {
    auto [r1, s1] = record(1, kStartMs, 70);
    auto [r2, s2] = record(2, kStartMs + 5000, 80);
    auto [r3, s3] = record(3, kStartMs + 70000, 90);  // the next minute
    ASSERT_EQ(upload({r1})->status, 200);
    auto res = upload({r1, r2, r3});
    ASSERT_EQ(res->status, 200) << res->body;
    json doc = json::parse(res->body);
    EXPECT_EQ(doc["accepted"], 2);
    EXPECT_EQ(doc["duplicate"], 1);
    json windows = advance_and_wait(kStartMs + 180000, "1m", 2);
    ASSERT_EQ(windows.size(), 2u);
    HeartRateStats first = s1;
    first += s2;
    EXPECT_EQ(windows[0]["record_count"], 2);
    EXPECT_EQ(decrypt_window(windows[0]), first);
    EXPECT_EQ(windows[1]["record_count"], 1);
    EXPECT_EQ(decrypt_window(windows[1]), s3);
    auto db = store::Database::open(config_.database, {});
    auto st = db.prepare("SELECT COUNT(*) FROM window_members WHERE window_id = ?");
    st.bind(1, windows[0]["id"].get<std::int64_t>());
    ASSERT_TRUE(st.step());
    EXPECT_EQ(st.column_int64(0), 2);
}

TEST_F(ServerTest, LateRecordIsStoredCountedAndNotFolded) {
    auto [r1, s1] = record(1, kStartMs, 70);
    ASSERT_EQ(upload({r1})->status, 200);
    json windows = advance_and_wait(kStartMs + 120000, "1m", 1);
    ASSERT_EQ(windows.size(), 1u);
    std::string aggregate = windows[0]["aggregate"];
    auto [late, s2] = record(2, kStartMs + 10000, 75);
    auto res = upload({late});
    ASSERT_EQ(res->status, 200) << res->body;
    json doc = json::parse(res->body);
    EXPECT_EQ(doc["late"], 1);
    EXPECT_EQ(doc["records"][0]["late"], true);
    json again = sealed_windows("1m");
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0]["aggregate"], aggregate);  // a sealed window never changes
    EXPECT_EQ(again[0]["record_count"], 1);
    auto metrics = client_->Get("/metrics");
    EXPECT_NE(metrics->body.find("cipherpulse_records_late_total 1"), std::string::npos);
}

TEST_F(ServerTest, LongPollAnswersWithTheWindowThatSealsDuringTheWait) {
    auto [r1, s1] = record(1, kStartMs + 5000, 70);
    ASSERT_EQ(upload({r1})->status, 200);
    // Nothing sealed: a short long poll answers the empty page with the cursor unchanged.
    auto res =
        client_->Get("/v1/windows?granularity=1m&after=0&limit=10&wait_ms=200", auth(decryptor_));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    json doc = json::parse(res->body);
    EXPECT_TRUE(doc["windows"].empty());
    EXPECT_EQ(doc["next_cursor"], "0");
    // The clock passes the minute's seal time while a long poll waits: it answers with it.
    std::thread clock_mover([this] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        now_ = kStartMs + 120000;
    });
    res =
        client_->Get("/v1/windows?granularity=1m&after=0&limit=10&wait_ms=25000", auth(decryptor_));
    clock_mover.join();
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    doc = json::parse(res->body);
    ASSERT_EQ(doc["windows"].size(), 1u);
    EXPECT_EQ(doc["windows"][0]["record_count"], 1);
    EXPECT_EQ(decrypt_window(doc["windows"][0]), s1);
    for (const char* bad : {"-1", "30001", "soon"}) {
        res = client_->Get(std::string("/v1/windows?granularity=1m&wait_ms=") + bad,
                           auth(decryptor_));
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 400) << bad;
    }
}

TEST(NextSealTest, IsTheEarliestSealInstantOfAnyGranularityAfterNow) {
    Granularity ten{"10s", 10000, 2000, 1};
    Granularity minute{"1m", 60000, 6000, 1};
    const std::vector<Granularity> both{ten, minute};
    // kStartMs is a whole minute. 5 s in: the minute before seals at +6 s, the 10 s
    // window at +12 s.
    EXPECT_EQ(next_seal_ms(both, kStartMs + 5000), kStartMs + 6000);
    // Exactly at a seal instant the next one is strictly later.
    EXPECT_EQ(next_seal_ms(both, kStartMs + 6000), kStartMs + 12000);
    EXPECT_EQ(next_seal_ms({ten}, kStartMs + 12000), kStartMs + 22000);
    EXPECT_EQ(next_seal_ms({ten}, kStartMs + 11999), kStartMs + 12000);
    EXPECT_EQ(next_seal_ms({minute}, kStartMs + 66001), kStartMs + 126000);
}

TEST_F(ServerTest, BadInputIsRefusedWithProblemAndStoresNothing) {
    auto [good, stats] = record(1, kStartMs, 70);
    ASSERT_EQ(upload({good})->status, 200);
    const std::string before = snapshot();
    const PublicKey& pk = paillier_key().public_key();
    auto expect_problem = [&](const httplib::Result& res, int status, const std::string& type) {
        ASSERT_TRUE(res) << type;
        EXPECT_EQ(res->status, status) << type << ": " << res->body;
        EXPECT_EQ(res->get_header_value("Content-Type"), "application/problem+json") << type;
        auto doc = json::parse(res->body, nullptr, false);
        ASSERT_TRUE(doc.is_object()) << type;
        EXPECT_EQ(doc["type"], "urn:cipherpulse:problem:" + type) << res->body;
        EXPECT_EQ(snapshot(), before) << type;
    };
    auto with_ct = [&](std::int64_t seq, const std::string& ct) {
        auto [r, s] = record(seq, kStartMs + seq * 5000, 70);
        r.ct = ct;
        return upload({r});
    };
    // Ciphertexts: n (not a unit), n^2 - 1 is fine... use out of range and wrong length.
    expect_problem(with_ct(2, base64url_encode(pk.n().to_fixed_bytes(pk.ciphertext_bytes()))), 422,
                   "invalid-records");
    BigInt above;
    mpz_add_ui(above.get(), pk.n_squared().get(), 5);
    std::vector<std::uint8_t> wide = above.to_bytes();
    expect_problem(with_ct(2, base64url_encode(wide)), 422, "invalid-records");
    expect_problem(with_ct(2, base64url_encode(std::vector<std::uint8_t>(100, 7))), 422,
                   "invalid-records");
    expect_problem(with_ct(2, "not*base64"), 422, "invalid-records");
    {
        auto [r, s] = record(2, kStartMs + 10000, 70);
        r.kid = "unknown-kid";
        expect_problem(upload({r}), 422, "invalid-records");
        r = record(2, kStartMs + 10000, 70).first;
        r.schema = "hr-v9-a32";
        expect_problem(upload({r}), 422, "invalid-records");
        r = record(2, kStartMs + 10000, 70).first;
        r.t_ms = now_.load() + 3600000;
        expect_problem(upload({r}), 422, "invalid-records");
        // A batch with one bad record stores none of them.
        auto [ok_record, s2] = record(3, kStartMs + 15000, 70);
        r = record(2, kStartMs + 10000, 70).first;
        r.ct = "AAAA";
        auto res = upload({ok_record, r});
        expect_problem(res, 422, "invalid-records");
        ASSERT_TRUE(res);
        json doc = json::parse(res->body);
        EXPECT_EQ(doc["records"][0]["status"], "not-stored");
        EXPECT_EQ(doc["records"][1]["status"], "rejected");
    }
    auto [next, s4] = record(5, kStartMs + 25000, 70);
    // Malformed JSON, signed correctly.
    expect_problem(post_signed(common::sign_upload("{not json", common::kReadingsPath, "dev-1",
                                                   device_key_, now_.load() / 1000)),
                   400, "malformed-batch");
    // Signed by another key, unsigned, modified body, stale, replayed.
    Ed25519PrivateKey stranger = Ed25519PrivateKey::generate();
    expect_problem(upload({next}, "dev-1", &stranger), 401, "bad-signature");
    expect_problem(client_->Post(common::kReadingsPath, common::batch_json("dev-1", {next}),
                                 "application/json"),
                   401, "signature-required");
    auto signed_upload =
        common::sign_upload(common::batch_json("dev-1", {next}), common::kReadingsPath, "dev-1",
                            device_key_, now_.load() / 1000);
    auto tampered = signed_upload;
    tampered.body[tampered.body.size() - 3] ^= 1;
    expect_problem(post_signed(tampered), 400, "digest-mismatch");
    auto replayed = signed_upload;  // another body with its own digest, old signature
    replayed.body = common::batch_json("dev-1", {record(6, kStartMs + 30000, 99).first});
    replayed.content_digest = content_digest_sha256(std::string_view(replayed.body));
    expect_problem(post_signed(replayed), 401, "bad-signature");
    auto stale = common::sign_upload(common::batch_json("dev-1", {next}), common::kReadingsPath,
                                     "dev-1", device_key_, now_.load() / 1000 - 3600);
    expect_problem(post_signed(stale), 401, "bad-signature");
    // Another device's name in the body.
    expect_problem(
        post_signed(common::sign_upload(common::batch_json("dev-2", {next}), common::kReadingsPath,
                                        "dev-1", device_key_, now_.load() / 1000)),
        403, "device-mismatch");
    // Chunked and compressed bodies are refused before they are read.
    httplib::Headers h = {{"Content-Digest", signed_upload.content_digest},
                          {"Signature-Input", signed_upload.signature_input},
                          {"Signature", signed_upload.signature}};
    const std::string body = signed_upload.body;
    // A chunked body is refused from its headers (raw socket: the client may still be
    // writing when the server answers and closes).
    std::string chunk_size = [&] {
        std::ostringstream hex;
        hex << std::hex << body.size();
        return hex.str();
    }();
    std::string chunked = raw_request(
        "POST /v1/readings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nContent-Digest: " +
        signed_upload.content_digest + "\r\nSignature-Input: " + signed_upload.signature_input +
        "\r\nSignature: " + signed_upload.signature + "\r\n\r\n" + chunk_size + "\r\n" + body +
        "\r\n0\r\n\r\n");
    EXPECT_EQ(chunked.substr(0, 12), "HTTP/1.1 411") << chunked;
    EXPECT_NE(chunked.find("urn:cipherpulse:problem:length-required"), std::string::npos);
    EXPECT_EQ(snapshot(), before);
    httplib::Headers gz = h;
    gz.emplace("Content-Encoding", "gzip");
    expect_problem(client_->Post(common::kReadingsPath, gz, body, "application/json"), 415,
                   "unsupported-encoding");
    // A POST without any length would be read until the connection closes: refused.
    std::string no_length = raw_request(
        "POST /v1/readings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\n\r\n{}");
    EXPECT_EQ(no_length.substr(0, 12), "HTTP/1.1 411") << no_length;
    // Announcing a body over the limit is answered before it is sent.
    std::string reply = raw_request(
        "POST /v1/readings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: " +
        std::to_string(config_.max_body_bytes + 1) + "\r\n\r\n");
    EXPECT_EQ(reply.substr(0, 12), "HTTP/1.1 413") << reply;
    EXPECT_NE(reply.find("urn:cipherpulse:problem:body-too-large"), std::string::npos);
    EXPECT_EQ(snapshot(), before);
    // Roles: a clinician cannot publish keys or add devices; no token, a wrong token.
    expect_problem(client_->Post("/v1/devices", auth(clinician_), "{}", "application/json"), 403,
                   "forbidden");
    expect_problem(client_->Get("/v1/windows?granularity=1m", auth(clinician_)), 403, "forbidden");
    expect_problem(client_->Get("/v1/windows?granularity=1m"), 401, "unauthenticated");
    expect_problem(client_->Get("/v1/windows?granularity=1m", auth("cpt_" + std::string(43, 'A'))),
                   401, "invalid-token");
    // A revoked device.
    ASSERT_EQ(client_->Post("/v1/devices/dev-1/revoke", auth(admin_), "", "text/plain")->status,
              200);
    const std::string revoked = snapshot();
    auto res = upload({next});
    EXPECT_EQ(res->status, 403);
    EXPECT_EQ(json::parse(res->body)["type"], "urn:cipherpulse:problem:device-revoked");
    EXPECT_EQ(snapshot(), revoked);
}

TEST_F(ServerTest, WindowRecordsCarryWhatIsNeededToVerifySignatures) {
    std::vector<common::UploadRecord> records;
    for (int i = 0; i < 3; ++i) {
        records.push_back(record(i + 1, kStartMs + i * 5000, 70 + i).first);
    }
    ASSERT_EQ(upload(records)->status, 200);
    json windows = advance_and_wait(kStartMs + 120000, "1m", 1);
    ASSERT_EQ(windows.size(), 1u);
    auto res =
        client_->Get("/v1/windows/" + std::to_string(windows[0]["id"].get<int>()) + "/records",
                     auth(decryptor_));
    ASSERT_EQ(res->status, 200) << res->body;
    json doc = json::parse(res->body);
    ASSERT_EQ(doc["records"].size(), 3u);
    ASSERT_EQ(doc["batches"].size(), 1u);
    const json& b = doc["batches"][0];
    std::string body;
    {
        auto bytes = base64url_decode(b["body"].get<std::string>()).value();
        body.assign(bytes.begin(), bytes.end());
    }
    // Re-verify the device's signature over the stored batch.
    EXPECT_TRUE(
        verify_content_digest(b["content_digest"].get<std::string>(),
                              std::span<const std::uint8_t>(
                                  reinterpret_cast<const std::uint8_t*>(body.data()), body.size()))
            .ok());
    auto parsed =
        parse_signature(b["signature_input"].get<std::string>(), b["signature"].get<std::string>());
    ASSERT_TRUE(parsed.ok());
    HttpRequestView view;
    std::string method = b["method"].get<std::string>();
    view.method = method;
    std::string path = b["path"].get<std::string>();
    view.path = path;
    std::string digest = b["content_digest"].get<std::string>();
    view.header = [&](std::string_view name) -> std::optional<std::string> {
        return name == "content-digest" ? std::optional<std::string>(digest) : std::nullopt;
    };
    VerifyPolicy policy;
    policy.now_seconds = parsed.value().params.created.value();
    auto verified = verify_request(view, parsed.value(), device_key_.public_key(), policy);
    EXPECT_TRUE(verified.ok()) << verified.error().message;
    // The product of the records is the window's aggregate.
    const PublicKey& pk = paillier_key().public_key();
    std::vector<Ciphertext> cs;
    for (const auto& r : doc["records"]) {
        cs.push_back(pk.parse_ciphertext_base64url(r["ct"].get<std::string>()).value());
    }
    EXPECT_EQ(pk.serialize_base64url(pk.sum(cs)), windows[0]["aggregate"].get<std::string>());
}

TEST_F(ServerTest, AuditChainRecordsChangesAndDetectsTampering) {
    ASSERT_EQ(upload({record(1, kStartMs, 70).first})->status, 200);
    advance_and_wait(kStartMs + 120000, "1m", 1);
    auto res = client_->Get("/v1/audit?limit=100", auth(admin_));
    ASSERT_EQ(res->status, 200);
    json entries = json::parse(res->body)["entries"];
    std::set<std::string> actions;
    for (const auto& e : entries) {
        actions.insert(e["action"].get<std::string>());
    }
    for (const char* a :
         {"token.create", "key.publish", "device.add", "readings.ingest", "windows.read"}) {
        EXPECT_EQ(actions.count(a), 1u) << a;
    }
    stop();
    std::ostringstream out, err;
    EXPECT_EQ(run_audit_verify(config_, out, err), 0) << err.str();
    {
        auto db = store::Database::open(config_.database, {});
        db.exec("UPDATE audit SET detail = '{\"edited\":true}' WHERE id = 3");
    }
    EXPECT_EQ(run_audit_verify(config_, out, err), 3);
    EXPECT_NE(err.str().find("entry 3"), std::string::npos);
}

TEST_F(ServerTest, RetentionRemovesOldRawRecordsButKeepsWindows) {
    ASSERT_EQ(upload({record(1, kStartMs, 70).first, record(2, kStartMs + 5000, 71).first})->status,
              200);
    advance_and_wait(kStartMs + 120000, "1m", 1);
    stop();
    auto db = store::Database::open(config_.database, {});
    EXPECT_EQ(prune_expired(db, kStartMs), 0);  // nothing received before the cutoff
    EXPECT_EQ(prune_expired(db, now_.load() + 1), 2);
    for (const char* sql : {"SELECT COUNT(*) FROM records", "SELECT COUNT(*) FROM batches",
                            "SELECT COUNT(*) FROM window_batches"}) {
        auto st = db.prepare(sql);
        st.step();
        EXPECT_EQ(st.column_int64(0), 0) << sql;
    }
    auto windows = db.prepare("SELECT COUNT(*), SUM(record_count) FROM windows");
    windows.step();
    EXPECT_EQ(windows.column_int64(0), 3);  // 1m, 1h, 1d
    EXPECT_EQ(windows.column_int64(1), 6);
}

TEST_F(ServerTest, WindowsBelowMinRecordsAreWithheldButTheCursorMovesOn) {
    stop();
    config_.granularities[0].min_records = 2;  // 1m
    start();
    // Minute 0: one record (withheld); minute 1: two records (released).
    ASSERT_EQ(upload({record(1, kStartMs, 70).first, record(2, kStartMs + 60000, 71).first,
                      record(3, kStartMs + 65000, 72).first})
                  ->status,
              200);
    now_ = kStartMs + 180000;
    json page;
    for (int i = 0; i < 600; ++i) {
        auto res = client_->Get("/v1/windows?granularity=1m&after=0&limit=10", auth(decryptor_));
        page = json::parse(res->body);
        if (!page["windows"].empty()) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(page["windows"].size(), 1u);
    EXPECT_EQ(page["windows"][0]["record_count"], 2);
    EXPECT_EQ(page["windows"][0]["start_ms"], kStartMs + 60000);
    // The cursor is past both sealed windows: the withheld one never comes back.
    auto res = client_->Get(
        "/v1/windows?granularity=1m&after=" + page["next_cursor"].get<std::string>() + "&limit=10",
        auth(decryptor_));
    EXPECT_TRUE(json::parse(res->body)["windows"].empty());
    EXPECT_EQ(page["next_cursor"], "2");
    // Nor can its records be fetched.
    auto db = store::Database::open(config_.database, {});
    auto st = db.prepare("SELECT id FROM windows WHERE granularity = '1m' AND record_count = 1");
    ASSERT_TRUE(st.step());
    res = client_->Get("/v1/windows/" + std::to_string(st.column_int64(0)) + "/records",
                       auth(decryptor_));
    EXPECT_EQ(res->status, 404);
}

TEST_F(ServerTest, KeyRotationKeepsTheOldKeyForTheGracePeriodOnly) {
    auto [old_record, s1] = record(1, kStartMs, 70);
    std::string old_jws =
        jws_sign(paillier_key().public_key().to_json(), identity_, {}, "paillier-key+json");
    // Publish a new key: it becomes active, the old one is retired.
    PrivateKey next = PrivateKey::generate(2048);
    std::string jws = jws_sign(next.public_key().to_json(), identity_, {}, "paillier-key+json");
    auto res =
        client_->Post("/v1/keys", auth(decryptor_), json{{"jws", jws}}.dump(), "application/json");
    ASSERT_EQ(res->status, 201) << res->body;
    EXPECT_EQ(json::parse(client_->Get("/v1/ready")->body)["active_kid"], next.public_key().kid());
    // Within the grace period a record under the old key is still accepted.
    ASSERT_EQ(upload({old_record})->status, 200);
    // Replaying the old key's document cannot make it active again.
    res = client_->Post("/v1/keys", auth(decryptor_), json{{"jws", old_jws}}.dump(),
                        "application/json");
    EXPECT_EQ(res->status, 409);
    EXPECT_EQ(json::parse(res->body)["type"], "urn:cipherpulse:problem:key-retired");
    // After the grace period it is refused.
    now_ = now_.load() + (config_.key_rotation_grace_s + 1) * 1000;
    auto [late_record, s2] = record(2, now_.load() - 10000, 70);
    res = upload({late_record});
    EXPECT_EQ(res->status, 422);
    EXPECT_NE(res->body.find("inactive-kid"), std::string::npos);
}

TEST_F(ServerTest, AuditEntriesFromTheApiRecomputeToTheirHashes) {
    ASSERT_EQ(upload({record(1, kStartMs, 70).first})->status, 200);
    auto res = client_->Get("/v1/audit?limit=1000", auth(admin_));
    ASSERT_EQ(res->status, 200);
    json page = json::parse(res->body);
    EXPECT_FALSE(page["more"].get<bool>());
    std::vector<std::uint8_t> prev(32, 0);
    for (const auto& e : page["entries"]) {
        AuditEntry entry;
        entry.id = e["id"];
        entry.ts_ms = e["ts_ms"];
        entry.actor = e["actor"];
        entry.action = e["action"];
        entry.subject = e["subject"];
        entry.detail = e["detail"];
        entry.prev_hash = base64url_decode(e["prev_hash"].get<std::string>()).value();
        EXPECT_EQ(entry.prev_hash, prev);
        prev = audit_hash(entry);
        EXPECT_EQ(base64url_encode(prev), e["hash"].get<std::string>()) << e.dump();
    }
}

TEST_F(ServerTest, PlainHttpOnANonLoopbackAddressIsRefused) {
    ServerConfig exposed = config_;
    exposed.listen_host = "0.0.0.0";
    EXPECT_THROW(ServerApp app(exposed), std::runtime_error);
    exposed.insecure = true;
    stop();  // one writer per database at a time in this test
    EXPECT_NO_THROW(ServerApp app(exposed));
}

TEST_F(ServerTest, ServesTlsWithTheConfiguredCertificate) {
    stop();
    const std::string cert = (dir_ / "cert.pem").string();
    const std::string key = (dir_ / "key.pem").string();
    std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout " +
        key + " -out " + cert +
        " -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 "
        ">/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) {
        GTEST_SKIP() << "openssl command not available";
    }
    config_.tls_cert = cert;
    config_.tls_key = key;
    ServerApp app(config_, [this] { return now_.load(); });
    int port = app.bind();
    std::thread serving([&] { app.serve(); });
    httplib::SSLClient tls("127.0.0.1", port);
    tls.set_ca_cert_path(cert.c_str());
    tls.enable_server_certificate_verification(true);
    auto res = tls.Get("/v1/health");
    for (int i = 0; i < 600 && !res; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        res = tls.Get("/v1/health");
    }
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
    // Plain HTTP to the TLS port gets no answer.
    httplib::Client plain("127.0.0.1", port);
    plain.set_read_timeout(2, 0);
    auto bad = plain.Get("/v1/health");
    EXPECT_TRUE(!bad || bad->status != 200);
    app.stop();
    serving.join();
}

TEST_F(ServerTest, RestartKeepsOpenWindowsAndCursor) {
    ASSERT_EQ(upload({record(1, kStartMs, 70).first})->status, 200);
    stop();
    start();
    ASSERT_EQ(upload({record(2, kStartMs + 5000, 72).first})->status, 200);
    json windows = advance_and_wait(kStartMs + 120000, "1m", 1);
    ASSERT_EQ(windows.size(), 1u);
    EXPECT_EQ(windows[0]["record_count"], 2);
    HeartRateStats expected = record(1, kStartMs, 70).second;
    expected += record(2, kStartMs + 5000, 72).second;
    EXPECT_EQ(decrypt_window(windows[0]), expected);
}

}  // namespace
}  // namespace cipherpulse::server
