// Cohort statistics on the server, on loopback with a real database file: cohorts and
// analysts' result keys, a query tiled with the coarsest sealed windows and multiplied into
// one encrypted aggregate (decrypted here, as the decryptor would, and compared with the
// sums of the windows' plaintexts), the contribution cap, the decision and result steps,
// and every bad request refused with a problem document and nothing stored.
#include <gtest/gtest.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "cipherpulse/base64url.h"
#include "cipherpulse/codec.h"
#include "cipherpulse/envelope.h"
#include "cipherpulse/paillier.h"
#include "cohort/query.h"
#include "server/admin_commands.h"
#include "server/app.h"
#include "server/cohort_commands.h"
#include "store/sqlite.h"
#include "unit/test_support.h"

namespace cipherpulse::server {
namespace {

using json = nlohmann::json;
using testing::last_line;
using testing::TempDir;

constexpr std::int64_t kMinute = 60000;
constexpr std::int64_t kHour = 60 * kMinute;
constexpr std::int64_t kDay = 24 * kHour;
// Three whole UTC days well in the past: every window of them is sealed.
constexpr std::int64_t kDay0 = 1'700'006'400'000;  // 2023-11-15T00:00Z
constexpr int kPatients = 12;

const PrivateKey& key() {
    return testing::test_key(2048);
}

// The plaintext of a window with `records` records of patient `p`: every record one sample
// at (60 + p) bpm.
std::vector<SlotValue> window_values(const Layout& layout, int p, std::int64_t records) {
    std::vector<SlotValue> v(layout.slot_count(), 0);
    const auto r = static_cast<SlotValue>(records);
    const SlotValue deci = static_cast<SlotValue>(600 + 10 * p);
    v[0] = r;
    v[1] = r;
    v[2] = r * deci;
    v[3] = r * deci * deci;
    return v;
}

class CohortApiTest : public ::testing::Test {
  protected:
    void SetUp() override {
        spdlog::set_level(spdlog::level::warn);
        config_ = ServerConfig::defaults();
        config_.database = (dir_ / "server.db").string();
        config_.listen_port = 0;
        std::ostringstream out, err;
        ASSERT_EQ(run_init(config_, out, err), 0) << err.str();
        admin_ = last_line(out.str());
        analyst_ = make_token("analyst", "alice");
        other_analyst_ = make_token("analyst", "bob");
        clinician_ = make_token("clinician", "ward");
        decryptor_ = make_token("decryptor", "decryptor");
        seed_windows();
        app_ = std::make_unique<ServerApp>(config_);
        const int port = app_->bind();
        thread_ = std::thread([this] { app_->serve(); });
        client_ = std::make_unique<httplib::Client>("127.0.0.1", port);
        for (int i = 0; i < 200 && !client_->Get("/v1/health"); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    void TearDown() override {
        app_->stop();
        thread_.join();
    }

    std::string make_token(const char* role, const char* label) {
        std::ostringstream out, err;
        EXPECT_EQ(run_token_create(config_, role, label, std::nullopt, out, err), 0);
        return last_line(out.str());
    }

    std::int64_t token_id(const std::string& label) {
        store::Database db = store::Database::open(config_.database);
        auto st = db.prepare("SELECT id FROM tokens WHERE label = ?");
        st.bind_all(label);
        EXPECT_TRUE(st.step());
        return st.column_int64(0);
    }

    // seed_windows stores the active key and, per patient, sealed windows in and around the
    // range [day0 + 23h, day2 + 30min): the 1h window of day0 23:00, the 1d window of day1,
    // the thirty 1m windows of day2 00:00-00:30; and windows a query must NOT use: the 1h
    // windows inside day1 (covered by its 1d window), day0 22:00, day2 00:30, an unsealed
    // window (the 1h of day2 00:00, not whole in the range anyway) and one under another key.
    void seed_windows() {
        store::Database db = store::Database::open(config_.database);
        const PublicKey& pk = key().public_key();
        db.prepare("INSERT INTO keys (kid, jws, document, active, created_ms) VALUES (?, '', ?, 1, 0)")
            .bind_all(pk.kid(), pk.to_json())
            .execute();
        const Layout layout = make_layout(SchemaId{});
        auto insert = db.prepare(
            "INSERT INTO windows (kid, patient, metric, schema, granularity, start_ms, "
            "length_ms, seal_ms, record_count, aggregate, sealed, seal_seq, sealed_ms) "
            "VALUES (?, ?, 'hr', 'hr-v1-a32', ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        std::int64_t seq = 0;
        auto add = [&](const std::string& kid, int p, const char* g, std::int64_t start,
                       std::int64_t length, std::int64_t records, bool sealed, bool used) {
            const std::string patient = "p" + std::to_string(10 + p);
            const BigInt m = layout.pack_aggregate(window_values(layout, p, records));
            const auto bytes = pk.serialize(pk.encrypt(m));
            const std::int64_t seal_seq = sealed ? ++seq : 0;
            const std::int64_t sealed_ms = sealed ? start + length : 0;
            insert.bind_all(kid, patient, g, start, length, start + length, records, bytes,
                            sealed ? 1 : 0, seal_seq, sealed_ms);
            if (!sealed) {
                insert.bind_null(10);
                insert.bind_null(11);
            }
            insert.execute();
            if (used) {
                expected_records_[patient] += records;
                expected_windows_.insert(db.last_insert_rowid());
            }
        };
        for (int p = 0; p < kPatients; ++p) {
            // Patient 11 has two devices: 18,000 records on day 1, over the cap with the rest.
            const std::int64_t day1 = p == 11 ? 18000 : 17000;
            add(pk.kid(), p, "1h", kDay0 + 23 * kHour, kHour, 700, true, true);
            add(pk.kid(), p, "1d", kDay0 + kDay, kDay, day1, true, p != 11);
            for (int m = 0; m < 30; ++m) {
                add(pk.kid(), p, "1m", kDay0 + 2 * kDay + m * kMinute, kMinute, 12, true,
                    p != 11);
            }
            add(pk.kid(), p, "1h", kDay0 + kDay + 3 * kHour, kHour, 700, true, false);
            add(pk.kid(), p, "1h", kDay0 + 22 * kHour, kHour, 700, true, false);
            add(pk.kid(), p, "1m", kDay0 + 2 * kDay + 30 * kMinute, kMinute, 12, true, false);
            add(pk.kid(), p, "1h", kDay0 + 2 * kDay, kHour, 30, false, false);
            add("other-kid", p, "1d", kDay0, kDay, 100, true, false);
        }
    }

    httplib::Result send(const char* method, const std::string& path, const std::string& token,
                         const json& body) {
        httplib::Headers h = {{"Authorization", "Bearer " + token}};
        if (std::string(method) == "PUT") {
            return client_->Put(path, h, body.dump(), "application/json");
        }
        return client_->Post(path, h, body.dump(), "application/json");
    }
    httplib::Result get(const std::string& path, const std::string& token) {
        return client_->Get(path, {{"Authorization", "Bearer " + token}});
    }

    void register_analyst_key(const std::string& label) {
        auto res = send("PUT", "/v1/analysts/" + std::to_string(token_id(label)) + "/key", admin_,
                        {{"public_key_pem", analyst_key_.public_key().to_pem()}});
        ASSERT_EQ(res->status, 200) << res->body;
    }

    void make_cohort(const std::string& name, int patients) {
        json list = json::array();
        for (int p = 0; p < patients; ++p) {
            list.push_back("p" + std::to_string(10 + p));
        }
        auto res = send("PUT", "/v1/cohorts/" + name, admin_,
                        {{"patients", list}, {"description", "test ward"}});
        ASSERT_TRUE(res->status == 201 || res->status == 200) << res->body;
    }

    json query_body() const {
        return {{"cohort", "ward"},
                {"metric", "hr"},
                {"from_ms", kDay0 + 23 * kHour},
                {"to_ms", kDay0 + 2 * kDay + 30 * kMinute},
                {"statistics", {"count", "mean", "sd"}},
                {"epsilon", "1"},
                {"purpose", "quality of care"}};
    }

    std::int64_t count_rows(const char* table) {
        store::Database db = store::Database::open(config_.database);
        auto st = db.prepare(std::string("SELECT COUNT(*) FROM ") + table);
        st.step();
        return st.column_int64(0);
    }

    TempDir dir_;
    ServerConfig config_;
    std::string admin_, analyst_, other_analyst_, clinician_, decryptor_;
    X25519PrivateKey analyst_key_ = X25519PrivateKey::generate();
    std::map<std::string, std::int64_t> expected_records_;
    std::set<std::int64_t> expected_windows_;
    std::unique_ptr<ServerApp> app_;
    std::thread thread_;
    std::unique_ptr<httplib::Client> client_;
};

TEST_F(CohortApiTest, CohortsAreManagedByAdminsAndSizesShownToAnalysts) {
    make_cohort("ward", 5);
    make_cohort("ward", 3);  // PUT sets the whole membership
    auto res = get("/v1/cohorts/ward", admin_);
    ASSERT_EQ(res->status, 200);
    json doc = json::parse(res->body);
    EXPECT_EQ(doc["members"], 3);
    EXPECT_EQ(doc["patients"], json({"p10", "p11", "p12"}));
    EXPECT_EQ(doc["description"], "test ward");
    res = get("/v1/cohorts/ward", analyst_);
    ASSERT_EQ(res->status, 200);
    EXPECT_EQ(json::parse(res->body)["members"], 3);
    EXPECT_FALSE(json::parse(res->body).contains("patients"));
    EXPECT_EQ(send("PUT", "/v1/cohorts/ward", analyst_, {{"patients", {"p1"}}})->status, 403);
    EXPECT_EQ(get("/v1/cohorts/ward", clinician_)->status, 403);
    EXPECT_EQ(send("PUT", "/v1/cohorts/ward", admin_, {{"patients", {"bad id"}}})->status, 400);
    EXPECT_EQ(send("PUT", "/v1/cohorts/ward", admin_, {{"patients", json::array()}})->status, 400);
    EXPECT_EQ(get("/v1/cohorts/none", admin_)->status, 404);
    res = get("/v1/cohorts", analyst_);
    ASSERT_EQ(res->status, 200);
    EXPECT_EQ(json::parse(res->body)["cohorts"].size(), 1u);
    EXPECT_EQ(client_->Delete("/v1/cohorts/ward", {{"Authorization", "Bearer " + admin_}})->status,
              204);
    EXPECT_EQ(get("/v1/cohorts/ward", admin_)->status, 404);
}

TEST_F(CohortApiTest, OperatorCommandsManageCohortsAndAnalystKeys) {
    std::ostringstream out, err;
    const std::filesystem::path list = dir_ / "patients.txt";
    std::ofstream(list) << "# ward 3\np10\n  p11  \n\np12 # bed 3\n";
    ASSERT_EQ(run_cohort_add(config_, "ward", {"p13"}, list.string(), std::string("ward 3"), out,
                             err),
              0)
        << err.str();
    EXPECT_EQ(out.str(), "cohort ward: 4 added, 4 members\n");
    out.str("");
    ASSERT_EQ(run_cohort_show(config_, "ward", out, err), 0);
    EXPECT_EQ(out.str(), "cohort ward (4 members): ward 3\n  p10\n  p11\n  p12\n  p13\n");
    out.str("");
    ASSERT_EQ(run_cohort_remove(config_, "ward", {"p13", "p99"}, out, err), 0);
    EXPECT_EQ(out.str(), "cohort ward: 1 removed\n");
    // The API sees what the command line wrote.
    EXPECT_EQ(json::parse(get("/v1/cohorts/ward", admin_)->body)["members"], 3);
    err.str("");
    EXPECT_EQ(run_cohort_add(config_, "bad name", {"p1"}, "", std::nullopt, out, err), 2);
    EXPECT_NE(err.str().find("cohort name"), std::string::npos);
    EXPECT_EQ(run_cohort_add(config_, "ward", {"bad id"}, "", std::nullopt, out, err), 2);
    EXPECT_EQ(run_cohort_show(config_, "nobody", out, err), 2);
    EXPECT_EQ(run_cohort_remove(config_, "nobody", {}, out, err), 2);
    out.str("");
    ASSERT_EQ(run_cohort_remove(config_, "ward", {}, out, err), 0);
    EXPECT_EQ(out.str(), "removed cohort ward (3 members)\n");

    const std::filesystem::path pem = dir_ / "analyst.pub";
    ASSERT_TRUE(analyst_key_.public_key().save(pem, false).ok());
    out.str("");
    ASSERT_EQ(run_analyst_key(config_, token_id("alice"), pem.string(), out, err), 0) << err.str();
    EXPECT_NE(out.str().find(analyst_key_.public_key().fingerprint()), std::string::npos);
    // Only analyst tokens have result keys; a file that is no X25519 key is refused.
    EXPECT_EQ(run_analyst_key(config_, token_id("ward"), pem.string(), out, err), 2);
    std::ofstream(dir_ / "junk.pem") << "not a key";
    EXPECT_EQ(run_analyst_key(config_, token_id("alice"), (dir_ / "junk.pem").string(), out, err),
              2);
}

TEST_F(CohortApiTest, QueryTilesSealedWindowsAndAggregatesThemUnderTheCap) {
    make_cohort("ward", kPatients);
    register_analyst_key("alice");
    auto res = send("POST", "/v1/queries", analyst_, query_body());
    ASSERT_EQ(res->status, 202) << res->body;
    json answer = json::parse(res->body);
    EXPECT_EQ(answer["cohort_size"], kPatients);
    EXPECT_EQ(answer["patients_with_data"], kPatients);
    EXPECT_EQ(answer["epsilon"], "1");
    EXPECT_EQ(answer["status"], "pending");
    // 25.5 h of 5 s records.
    EXPECT_EQ(answer["cap_records"], (kHour + kDay + 30 * kMinute) / 5000);
    const std::string id = answer["id"];

    // The analyst sees the query (without the aggregate), another analyst does not.
    res = get("/v1/queries/" + id, analyst_);
    ASSERT_EQ(res->status, 200);
    EXPECT_FALSE(json::parse(res->body).contains("aggregate"));
    EXPECT_EQ(get("/v1/queries/" + id, other_analyst_)->status, 403);
    EXPECT_EQ(get("/v1/queries/" + id, clinician_)->status, 403);
    EXPECT_EQ(get("/v1/queries/" + id, "cpt_not-a-token")->status, 401);

    res = get("/v1/queries/" + id, decryptor_);
    ASSERT_EQ(res->status, 200);
    json q = json::parse(res->body);
    auto doc = cohort::parse_document(q["document"]);
    ASSERT_TRUE(doc) << doc.error().message;
    EXPECT_EQ(cohort::canonical_hash(doc.value()), q["hash"]);
    EXPECT_EQ(doc.value().analyst_label, "alice");
    EXPECT_EQ(doc.value().analyst_key, analyst_key_.public_key().fingerprint());
    EXPECT_EQ(q["analyst_public_key_pem"], analyst_key_.public_key().to_pem());

    // Exactly the coarsest covering windows, and patient 11 cut at the cap.
    std::set<std::int64_t> used;
    std::map<std::string, std::int64_t> records;
    for (const auto& w : doc.value().windows) {
        used.insert(w.id);
        records[w.patient] += w.record_count;
    }
    EXPECT_EQ(used, expected_windows_);
    EXPECT_EQ(records, expected_records_);
    EXPECT_EQ(records["p21"], 700);

    // The aggregate decrypts to the sums of exactly those windows.
    const PublicKey& pk = key().public_key();
    auto ct = pk.parse_ciphertext_base64url(q["aggregate"].get<std::string>());
    ASSERT_TRUE(ct);
    const Layout layout = make_layout(SchemaId{});
    auto slots = layout.unpack(key().decrypt(ct.value()));
    ASSERT_TRUE(slots);
    SlotValue total_records = 0, total_deci = 0;
    for (int p = 0; p < kPatients; ++p) {
        const std::int64_t r = expected_records_["p" + std::to_string(10 + p)];
        total_records += static_cast<SlotValue>(r);
        total_deci += static_cast<SlotValue>(r) * static_cast<SlotValue>(600 + 10 * p);
    }
    EXPECT_TRUE(slots.value()[0] == total_records);
    EXPECT_TRUE(slots.value()[2] == total_deci);

    // The window aggregates come back in the document's order, for the decryptor's check.
    res = get("/v1/queries/" + id + "/windows", decryptor_);
    ASSERT_EQ(res->status, 200);
    json aggs = json::parse(res->body)["aggregates"];
    ASSERT_EQ(aggs.size(), doc.value().windows.size());
    std::vector<Ciphertext> cts;
    for (const auto& a : aggs) {
        cts.push_back(pk.parse_ciphertext_base64url(a.get<std::string>()).value());
    }
    EXPECT_EQ(pk.serialize_base64url(pk.sum(cts)), q["aggregate"]);
    EXPECT_EQ(get("/v1/queries/" + id + "/windows", analyst_)->status, 403);

    // Listing: the analyst sees its own queries only.
    EXPECT_EQ(json::parse(get("/v1/queries", analyst_)->body)["queries"].size(), 1u);
    // The list carries each query's epsilon (the analyst's budget reads it without the
    // documents), as the request asked it.
    EXPECT_EQ(json::parse(get("/v1/queries", analyst_)->body)["queries"][0]["epsilon"],
              query_body()["epsilon"]);
    EXPECT_EQ(json::parse(get("/v1/queries", other_analyst_)->body)["queries"].size(), 0u);
    EXPECT_EQ(
        json::parse(get("/v1/queries?status=pending", decryptor_)->body)["queries"].size(), 1u);
}

TEST_F(CohortApiTest, BadQueriesAreRefusedAndNothingIsStored) {
    make_cohort("ward", kPatients);
    const std::int64_t audit_before = count_rows("audit");
    // No result key registered yet.
    auto res = send("POST", "/v1/queries", analyst_, query_body());
    EXPECT_EQ(res->status, 409) << res->body;
    EXPECT_EQ(json::parse(res->body)["type"], "urn:cipherpulse:problem:no-analyst-key");
    register_analyst_key("alice");
    const std::int64_t audit_registered = count_rows("audit");
    EXPECT_EQ(audit_registered, audit_before + 1);

    struct Case {
        const char* what;
        json body;
        int status;
    };
    std::vector<Case> cases;
    json b = query_body();
    b["cohort"] = "nobody";
    cases.push_back({"unknown cohort", b, 404});
    b = query_body();
    b["colour"] = "blue";
    cases.push_back({"unknown field", b, 400});
    b = query_body();
    b["statistics"] = {"median"};
    cases.push_back({"unknown statistic", b, 422});
    b = query_body();
    b["to_ms"] = b["from_ms"];
    cases.push_back({"empty range", b, 422});
    b = query_body();
    b["to_ms"] = kDay0 + 200 * kDay;
    cases.push_back({"too long", b, 422});
    b = query_body();
    b["from_ms"] = kDay0 + 1234;
    cases.push_back({"unaligned", b, 422});
    b = query_body();
    b["patients"] = {"p10"};
    cases.push_back({"cohort and patients", b, 400});
    b = query_body();
    b["epsilon"] = "0.0001";
    cases.push_back({"epsilon too fine", b, 422});
    b = query_body();
    const std::int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count();
    b["from_ms"] = (now_ms / kDay) * kDay;
    b["to_ms"] = (now_ms / kDay) * kDay + kDay;
    cases.push_back({"not sealed yet", b, 422});
    for (const auto& c : cases) {
        res = send("POST", "/v1/queries", analyst_, c.body);
        EXPECT_EQ(res->status, c.status) << c.what << ": " << res->body;
        EXPECT_EQ(res->get_header_value("Content-Type"), "application/problem+json") << c.what;
    }
    res = client_->Post("/v1/queries", {{"Authorization", "Bearer " + analyst_}}, "{not json",
                        "application/json");
    EXPECT_EQ(res->status, 400);
    EXPECT_EQ(send("POST", "/v1/queries", clinician_, query_body())->status, 403);
    EXPECT_EQ(send("POST", "/v1/queries", decryptor_, query_body())->status, 403);
    EXPECT_EQ(count_rows("queries"), 0);
    EXPECT_EQ(count_rows("audit"), audit_registered);
}

TEST_F(CohortApiTest, DecisionAndResultMoveTheQueryOnceAndOnlyForTheDecryptor) {
    make_cohort("ward", kPatients);
    register_analyst_key("alice");
    auto res = send("POST", "/v1/queries", analyst_, query_body());
    ASSERT_EQ(res->status, 202) << res->body;
    const std::string id = json::parse(res->body)["id"];
    const std::string hash = json::parse(res->body)["hash"];
    // A decision is a compact JWS; the server reads its payload (the decryptor verifies it).
    auto jws = [](const json& payload) {
        return base64url_encode(std::string(R"({"alg":"EdDSA"})")) + "." +
               base64url_encode(payload.dump()) + "." + std::string(86, 'A');
    };
    EXPECT_EQ(send("POST", "/v1/queries/" + id + "/decision", decryptor_,
                   {{"decision", jws({{"query", id}, {"hash", "0"}, {"decision", "approve"}})}})
                  ->status,
              422);
    EXPECT_EQ(send("POST", "/v1/queries/" + id + "/decision", analyst_,
                   {{"decision", jws({{"query", id}, {"hash", hash}, {"decision", "approve"}})}})
                  ->status,
              403);
    const std::string decision = jws({{"query", id}, {"hash", hash}, {"decision", "approve"}});
    res = send("POST", "/v1/queries/" + id + "/decision", decryptor_, {{"decision", decision}});
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(send("POST", "/v1/queries/" + id + "/decision", decryptor_,
                   {{"decision", decision}})
                  ->status,
              409);
    res = get("/v1/queries/" + id, decryptor_);
    EXPECT_EQ(json::parse(res->body)["decision"], decision);
    EXPECT_EQ(json::parse(res->body)["status"], "approved");

    // Not released yet: the analyst sees the status only.
    res = get("/v1/queries/" + id + "/result", analyst_);
    ASSERT_EQ(res->status, 200);
    EXPECT_FALSE(json::parse(res->body).contains("envelope"));
    EXPECT_EQ(get("/v1/queries/" + id + "/result", other_analyst_)->status, 403);

    // An envelope must name the query in its header.
    Ed25519PrivateKey signer = Ed25519PrivateKey::generate();
    const std::string wrong =
        seal_envelope(json{{"query", "q_other"}}.dump(), "x", analyst_key_.public_key(), signer);
    EXPECT_EQ(send("POST", "/v1/queries/" + id + "/result", decryptor_, {{"envelope", wrong}})
                  ->status,
              422);
    const std::string envelope =
        seal_envelope(json{{"query", id}}.dump(), "figures", analyst_key_.public_key(), signer);
    res = send("POST", "/v1/queries/" + id + "/result", decryptor_, {{"envelope", envelope}});
    ASSERT_EQ(res->status, 200) << res->body;
    // Re-posting the same result (an answer lost on the way back) is accepted; another is not.
    EXPECT_EQ(send("POST", "/v1/queries/" + id + "/result", decryptor_, {{"envelope", envelope}})
                  ->status,
              200);
    EXPECT_EQ(send("POST", "/v1/queries/" + id + "/result", decryptor_, {{"refused", "late"}})
                  ->status,
              409);
    res = get("/v1/queries/" + id + "/result", analyst_);
    ASSERT_EQ(res->status, 200);
    json r = json::parse(res->body);
    EXPECT_EQ(r["status"], "released");
    ASSERT_EQ(r["envelope"], envelope);
    auto opened = open_envelope(r["envelope"].get<std::string>(), analyst_key_,
                                signer.public_key());
    ASSERT_TRUE(opened) << opened.error().message;
    const SecretBytes& plain = opened.value().plaintext;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(plain.data()), plain.size()), "figures");

    // Every transition is in the audit chain.
    store::Database db = store::Database::open(config_.database);
    auto st = db.prepare("SELECT action FROM audit WHERE subject = ? ORDER BY id");
    st.bind_all(id);
    std::vector<std::string> actions;
    while (st.step()) {
        actions.push_back(st.column_text(0));
    }
    EXPECT_EQ(actions, (std::vector<std::string>{"query.request", "query.decision",
                                                 "query.release"}));
}

}  // namespace
}  // namespace cipherpulse::server
