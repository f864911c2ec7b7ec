// The server as model provider, on loopback with a real database file: the model API, the
// encrypted scoring of every Cleveland row through HTTP (decrypted here, as the hospital
// would), and each bad request refused with a problem document, nothing charged or stored.
#include <gtest/gtest.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cipherpulse/base64url.h"
#include "cipherpulse/paillier.h"
#include "scoring/model.h"
#include "scoring/packing.h"
#include "scoring/scorer.h"
#include "scoring/train.h"
#include "server/admin_commands.h"
#include "server/app.h"
#include "server/audit.h"
#include "store/sqlite.h"
#include "unit/test_support.h"

namespace cipherpulse::server {
namespace {

using json = nlohmann::json;
using testing::last_line;
using testing::TempDir;

const PrivateKey& scoring_key() {
    static PrivateKey key = PrivateKey::generate(2048);
    return key;
}

const scoring::TrainResult& trained() {
    static scoring::TrainResult r = [] {
        auto table = scoring::read_table(testing::repo_root() / ".." / "shared" / "data" /
                                         "real" / "heart_cleveland.csv");
        return scoring::train_logistic(scoring::cleveland_spec(), table.value(), "target", {})
            .value();
    }();
    return r;
}

std::vector<std::vector<std::int64_t>> cleveland_rows() {
    auto table = scoring::read_table(testing::repo_root() / ".." / "shared" / "data" / "real" /
                                     "heart_cleveland.csv")
                     .value();
    std::vector<std::vector<std::int64_t>> rows;
    for (std::size_t i = 0; i < table.rows.size(); ++i) {
        auto x = scoring::encode_row(trained().model, table.row_values(i));
        if (x) {
            rows.push_back(x.value());
        }
    }
    return rows;
}

class ScoringApiTest : public ::testing::Test {
  protected:
    void SetUp() override {
        spdlog::set_level(spdlog::level::warn);
        config_ = ServerConfig::defaults();
        config_.database = (dir_ / "server.db").string();
        config_.listen_port = 0;
        config_.scoring_rows_per_day = 400;
        std::ostringstream out, err;
        ASSERT_EQ(run_init(config_, out, err), 0) << err.str();
        admin_ = last_line(out.str());
        clinician_ = make_token("clinician");
        analyst_ = make_token("analyst");
        app_ = std::make_unique<ServerApp>(config_);
        const int port = app_->bind();
        thread_ = std::thread([this] { app_->serve(); });
        client_ = std::make_unique<httplib::Client>("127.0.0.1", port);
        for (int i = 0; i < 200 && !client_->Get("/v1/health"); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        auto res = post("/v1/models", admin_, scoring::model_to_json(trained().model));
        ASSERT_EQ(res->status, 201) << res->body;
    }

    void TearDown() override {
        app_->stop();
        thread_.join();
    }

    std::string make_token(const char* role) {
        std::ostringstream out, err;
        EXPECT_EQ(run_token_create(config_, role, "", std::nullopt, out, err), 0);
        return last_line(out.str());
    }

    httplib::Result post(const std::string& path, const std::string& token,
                         const std::string& body) {
        return client_->Post(path, {{"Authorization", "Bearer " + token}}, body,
                             "application/json");
    }

    httplib::Result get(const std::string& path, const std::string& token) {
        return client_->Get(path, {{"Authorization", "Bearer " + token}});
    }

    json key_doc() const { return json::parse(scoring_key().public_key().to_json()); }

    json row_body(const std::vector<std::vector<std::int64_t>>& rows) const {
        const PublicKey& pk = scoring_key().public_key();
        json list = json::array();
        for (const auto& x : rows) {
            json cts = json::array();
            for (auto v : x) {
                cts.push_back(pk.serialize_base64url(pk.encrypt(BigInt(static_cast<long>(v)))));
            }
            list.push_back(cts);
        }
        return {{"key", key_doc()}, {"rows", list}};
    }

    // counts returns (audit entries, rows charged today) to show that nothing was stored.
    std::pair<std::int64_t, std::int64_t> counts() {
        store::OpenOptions options;
        options.read_only = true;
        auto db = store::Database::open(config_.database, options);
        auto st = db.prepare("SELECT (SELECT COUNT(*) FROM audit), "
                             "(SELECT COALESCE(SUM(rows), 0) FROM scoring_usage)");
        st.step();
        return {st.column_int64(0), st.column_int64(1)};
    }

    std::int64_t decrypt_z(const std::string& text) {
        const PublicKey& pk = scoring_key().public_key();
        auto c = pk.parse_ciphertext_base64url(text);
        EXPECT_TRUE(c.ok());
        return mpz_get_si(pk.decode_signed(scoring_key().decrypt(c.value())).get());
    }

    TempDir dir_;
    ServerConfig config_;
    std::string admin_, clinician_, analyst_;
    std::unique_ptr<ServerApp> app_;
    std::thread thread_;
    std::unique_ptr<httplib::Client> client_;
};

TEST_F(ScoringApiTest, PublishesTheSpecWithoutWeights) {
    auto list = get("/v1/models", clinician_);
    ASSERT_EQ(list->status, 200);
    const json models = json::parse(list->body)["models"];
    ASSERT_EQ(models.size(), 1u);
    EXPECT_EQ(models[0]["id"], "heart-cleveland-lr");
    EXPECT_EQ(models[0]["inputs"], 20);
    auto spec = get("/v1/models/heart-cleveland-lr", clinician_);
    ASSERT_EQ(spec->status, 200);
    EXPECT_EQ(spec->body.find("weights"), std::string::npos);
    EXPECT_EQ(spec->body.find("coefficients"), std::string::npos);
    auto parsed = scoring::parse_public_spec(spec->body);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed.value().score_min, trained().model.score_min());
    EXPECT_EQ(get("/v1/models/nope", clinician_)->status, 404);
    EXPECT_EQ(get("/v1/models", "cpt_wrong")->status, 401);
}

TEST_F(ScoringApiTest, EveryClevelandRowScoresExactlyThroughTheApi) {
    const auto rows = cleveland_rows();
    ASSERT_EQ(rows.size(), 297u);
    config_.scoring_rows_per_day = 400;
    const PublicKey& pk = scoring_key().public_key();
    // Packed: the whole table in one request.
    auto layout = scoring::packed_layout(trained().model, pk.modulus_bits()).value();
    json groups = json::array();
    for (std::size_t g = 0; g < rows.size(); g += layout.slots) {
        const std::size_t count = std::min(layout.slots, rows.size() - g);
        json inputs = json::array();
        for (std::size_t i = 0; i < 20; ++i) {
            std::vector<std::int64_t> column;
            for (std::size_t j = g; j < g + count; ++j) {
                column.push_back(rows[j][i]);
            }
            inputs.push_back(pk.serialize_base64url(
                pk.encrypt(scoring::pack_input(layout, i, column).value())));
        }
        groups.push_back({{"count", count}, {"inputs", inputs}});
    }
    json body = {{"key", key_doc()}, {"packed", {{"slot_bits", layout.slot_bits}, {"groups", groups}}}};
    auto res = post("/v1/models/heart-cleveland-lr/score", clinician_, body.dump());
    ASSERT_EQ(res->status, 200) << res->body;
    const json answer = json::parse(res->body);
    EXPECT_EQ(answer["budget_left"], 400 - 297);
    std::vector<std::int64_t> scores;
    for (const auto& g : answer["packed"]["groups"]) {
        auto c = pk.parse_ciphertext_base64url(g["score"].get<std::string>()).value();
        auto z = scoring::unpack_scores(layout, scoring_key().decrypt(c), g["count"]);
        ASSERT_TRUE(z.ok()) << z.error().message;
        scores.insert(scores.end(), z.value().begin(), z.value().end());
    }
    ASSERT_EQ(scores.size(), rows.size());
    int prediction_differences = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const std::int64_t expected = scoring::fixed_score(trained().model, rows[i]);
        EXPECT_EQ(scores[i], expected) << "row " << i;
        prediction_differences += (scores[i] >= 0) != (expected >= 0);
        // Within the documented bound of the floating-point model.
        EXPECT_LE(std::fabs(scoring::logit_of(trained().model, scores[i]) -
                            scoring::float_logit(trained().model, rows[i])),
                  trained().model.fixed.max_logit_error);
    }
    EXPECT_EQ(prediction_differences, 0);
    // One at a time (unpacked), a few rows: the same integers, and rerandomised results.
    std::vector<std::vector<std::int64_t>> few(rows.begin(), rows.begin() + 5);
    json unpacked = row_body(few);
    auto res2 = post("/v1/models/heart-cleveland-lr/score", clinician_, unpacked.dump());
    ASSERT_EQ(res2->status, 200) << res2->body;
    const json answer2 = json::parse(res2->body);
    ASSERT_EQ(answer2["scores"].size(), 5u);
    for (std::size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(decrypt_z(answer2["scores"][i]), scores[i]);
        // The bare linear combination of the sent ciphertexts is not what came back.
        std::vector<Ciphertext> sent;
        for (const auto& t : unpacked["rows"][i]) {
            sent.push_back(pk.parse_ciphertext_base64url(t.get<std::string>()).value());
        }
        const Ciphertext bare = scoring::score_vector(pk, trained().model, sent);
        EXPECT_NE(pk.serialize_base64url(bare), answer2["scores"][i].get<std::string>());
    }
}

TEST_F(ScoringApiTest, BadRequestsAreRefusedAndNothingIsCharged) {
    const auto rows = cleveland_rows();
    const std::vector<std::vector<std::int64_t>> one(rows.begin(), rows.begin() + 1);
    const json good = row_body(one);
    const PublicKey& pk = scoring_key().public_key();
    auto with = [&](const std::function<void(json&)>& change) {
        json b = good;
        change(b);
        return b.dump();
    };
    // All bytes 0xff is above n^2; n itself is no unit modulo n^2.
    const std::string big_text = [&] {
        std::vector<std::uint8_t> bytes(pk.ciphertext_bytes(), 0xff);
        return base64url_encode(bytes);
    }();
    const std::string not_unit = base64url_encode(pk.n().to_fixed_bytes(pk.ciphertext_bytes()));
    const json small_key = json::parse(testing::test_key(1024).public_key().to_json());
    struct Case {
        const char* what;
        std::string token;
        std::string path;
        std::string body;
        int status;
        const char* type;
    } cases[] = {
        {"wrong feature count", clinician_, "/v1/models/heart-cleveland-lr/score",
         with([](json& b) { b["rows"][0].erase(0); }), 422, "wrong-feature-count"},
        {"ciphertext >= n^2", clinician_, "/v1/models/heart-cleveland-lr/score",
         with([&](json& b) { b["rows"][0][3] = big_text; }), 422, "invalid-ciphertext"},
        {"ciphertext not a unit", clinician_, "/v1/models/heart-cleveland-lr/score",
         with([&](json& b) { b["rows"][0][4] = not_unit; }), 422, "invalid-ciphertext"},
        {"key under 2048 bits", clinician_, "/v1/models/heart-cleveland-lr/score",
         with([&](json& b) { b["key"] = small_key; }), 422, "invalid-key"},
        {"malformed JWK", clinician_, "/v1/models/heart-cleveland-lr/score",
         with([](json& b) { b["key"]["n"] = "%%%"; }), 422, "invalid-key"},
        {"JWK with a kid of another n", clinician_, "/v1/models/heart-cleveland-lr/score",
         with([](json& b) { b["key"]["kid"] = "AAAA"; }), 422, "invalid-key"},
        {"unknown registered kid", clinician_, "/v1/models/heart-cleveland-lr/score",
         with([](json& b) {
             b.erase("key");
             b["kid"] = "nope";
         }),
         404, "unknown-key"},
        {"unknown model", clinician_, "/v1/models/nope/score", good.dump(), 404,
         "unknown-model"},
        {"unknown field", clinician_, "/v1/models/heart-cleveland-lr/score",
         with([](json& b) { b["debug"] = true; }), 400, "unknown-field"},
        {"rows and packed", clinician_, "/v1/models/heart-cleveland-lr/score",
         with([](json& b) { b["packed"] = json::object(); }), 400, "malformed-request"},
        {"not JSON", clinician_, "/v1/models/heart-cleveland-lr/score", "{rows:", 400,
         "malformed-json"},
        {"packed layout mismatch", clinician_, "/v1/models/heart-cleveland-lr/score",
         with([](json& b) {
             b.erase("rows");
             b["packed"] = {{"slot_bits", 7}, {"groups", json::array({{{"count", 1}, {"inputs", json::array()}}})}};
         }),
         422, "layout-mismatch"},
        {"analyst role", analyst_, "/v1/models/heart-cleveland-lr/score", good.dump(), 403,
         "forbidden"},
        {"admin role", admin_, "/v1/models/heart-cleveland-lr/score", good.dump(), 403,
         "forbidden"},
        {"clinician adding a model", clinician_, "/v1/models",
         scoring::model_to_json(trained().model), 403, "forbidden"},
        {"invalid model", admin_, "/v1/models", R"({"format":"cipherpulse-model/1","id":"x"})",
         422, "invalid-model"},
    };
    const auto before = counts();
    for (const auto& c : cases) {
        auto res = post(c.path, c.token, c.body);
        ASSERT_TRUE(res) << c.what;
        EXPECT_EQ(res->status, c.status) << c.what << ": " << res->body;
        EXPECT_EQ(res->get_header_value("Content-Type"), "application/problem+json") << c.what;
        const json problem = json::parse(res->body, nullptr, false);
        EXPECT_EQ(problem.value("type", ""), std::string("urn:cipherpulse:problem:") + c.type)
            << c.what << ": " << res->body;
    }
    EXPECT_EQ(counts(), before) << "a refused request left an audit entry or a charge";
    // The server still serves, and the good request then works and is charged once.
    auto res = post("/v1/models/heart-cleveland-lr/score", clinician_, good.dump());
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(decrypt_z(json::parse(res->body)["scores"][0]),
              scoring::fixed_score(trained().model, one[0]));
    EXPECT_EQ(counts().first, before.first + 1);
    EXPECT_EQ(counts().second, before.second + 1);
}

TEST_F(ScoringApiTest, BudgetIsPerTokenAndDayAndRefusalsAreAudited) {
    const auto rows = cleveland_rows();
    std::vector<std::vector<std::int64_t>> batch(rows.begin(), rows.begin() + 150);
    const std::string body = row_body(batch).dump();
    EXPECT_EQ(post("/v1/models/heart-cleveland-lr/score", clinician_, body)->status, 200);
    EXPECT_EQ(post("/v1/models/heart-cleveland-lr/score", clinician_, body)->status, 200);
    auto refused = post("/v1/models/heart-cleveland-lr/score", clinician_, body);
    ASSERT_EQ(refused->status, 429) << refused->body;
    EXPECT_NE(refused->body.find("100 left today"), std::string::npos) << refused->body;
    EXPECT_FALSE(refused->get_header_value("Retry-After").empty());
    // Another token has its own budget.
    const std::string other = make_token("decryptor");
    EXPECT_EQ(post("/v1/models/heart-cleveland-lr/score", other, body)->status, 200);
    // Every request, the refused one too, is in the audit chain, which still verifies.
    std::ostringstream out, err;
    EXPECT_EQ(run_audit_verify(config_, out, err), 0) << err.str();
    store::OpenOptions options;
    options.read_only = true;
    auto db = store::Database::open(config_.database, options);
    auto st = db.prepare("SELECT action, COUNT(*) FROM audit WHERE action LIKE 'model.score%' "
                         "GROUP BY action ORDER BY action");
    ASSERT_TRUE(st.step());
    EXPECT_EQ(st.column_text(0), "model.score");
    EXPECT_EQ(st.column_int64(1), 3);
    ASSERT_TRUE(st.step());
    EXPECT_EQ(st.column_text(0), "model.score-refused");
    EXPECT_EQ(st.column_int64(1), 1);
}

TEST_F(ScoringApiTest, RegisteredKeysAndModelManagement) {
    auto reg = post("/v1/scoring-keys", clinician_, json{{"key", key_doc()}}.dump());
    ASSERT_EQ(reg->status, 201) << reg->body;
    const std::string kid = json::parse(reg->body)["kid"];
    EXPECT_EQ(kid, scoring_key().public_key().kid());
    json body = row_body({cleveland_rows()[0]});
    body.erase("key");
    body["kid"] = kid;
    auto res = post("/v1/models/heart-cleveland-lr/score", clinician_, body.dump());
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(decrypt_z(json::parse(res->body)["scores"][0]),
              scoring::fixed_score(trained().model, cleveland_rows()[0]));
    // The same model again is fine; a different one under the id needs ?replace=true.
    const std::string doc = scoring::model_to_json(trained().model);
    EXPECT_EQ(post("/v1/models", admin_, doc)->status, 200);
    scoring::Model changed = trained().model;
    changed.fixed.intercept += 1;
    EXPECT_EQ(post("/v1/models", admin_, scoring::model_to_json(changed))->status, 409);
    EXPECT_EQ(post("/v1/models?replace=true", admin_, scoring::model_to_json(changed))->status,
              201);
    // Removed: gone for scoring at once.
    auto del = client_->Delete("/v1/models/heart-cleveland-lr",
                               {{"Authorization", "Bearer " + admin_}});
    EXPECT_EQ(del->status, 204);
    EXPECT_EQ(post("/v1/models/heart-cleveland-lr/score", clinician_, body.dump())->status, 404);
}

}  // namespace
}  // namespace cipherpulse::server
