// Cohort queries on the decryptor's side, against a real server on loopback: the approver's
// commands (keygen, add, show, approve), the release `watch` makes (exact figures checked
// against the windows' plaintexts, sealed to the analyst and opened with the analyst's key
// and the decryptor's pinned identity), once only; and every refusal: too few patients, the
// differencing guard, the epsilon budget, exact releases not allowed, self-approval; and
// the integrity failures a compromised server could try: a decision by an unpinned key, a
// decision replayed from another query, an altered aggregate, an altered member list, a
// swapped analyst key. Each refusal reaches the server as a refusal; each integrity
// failure also raises a critical alert.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "cipherpulse/codec.h"
#include "cipherpulse/envelope.h"
#include "cipherpulse/x25519.h"
#include "cohort/query.h"
#include "decryptor/queries.h"
#include "decryptor/query_commands.h"
#include "decryptor/query_releaser.h"
#include "decryptor/state.h"
#include "integration/loopback_server.h"

namespace cipherpulse::decryptor {
namespace {

using json = nlohmann::json;

constexpr std::int64_t kDay = 86'400'000;
constexpr std::int64_t kDay0 = 1'700'006'400'000;  // 2023-11-15T00:00Z, long sealed
constexpr int kPatients = 12;
constexpr std::int64_t kRecords = 10;  // per patient and day

std::string patient(int p) {
    return "p" + std::to_string(10 + p);
}

class QueryReleaseTest : public edge::LoopbackServerTest {
  protected:
    void SetUp() override {
        edge::LoopbackServerTest::SetUp();
        seed_windows();
        std::ostringstream out, err;
        ASSERT_EQ(server::run_token_create(config_, "analyst", "alice", std::nullopt, out, err), 0);
        analyst_ = testing::last_line(out.str());
        analyst_id_ = token_id("alice");
        auto res = send("/v1/analysts/" + std::to_string(analyst_id_) + "/key", admin_,
                        {{"public_key_pem", analyst_key_.public_key().to_pem()}}, "PUT");
        ASSERT_EQ(res->status, 200) << res->body;
        make_cohort("ward", kPatients);
        make_cohort("small", 4);

        dec_.server_url = "http://127.0.0.1:" + std::to_string(port_);
        dec_.database = (dir_ / "decryptor.db").string();
        dec_.cohort.identity_key = (dir_ / "identity.pem").string();
        ASSERT_TRUE(identity_.save(dec_.cohort.identity_key, false).ok());
        keys_.add_shared(
            std::shared_ptr<const PrivateKey>(&edge::paillier_key(), [](const PrivateKey*) {}));
        approver_key_ = (dir_ / "approver.pem").string();
        ASSERT_EQ(run_approver_keygen(approver_key_, false, out, err), 0) << err.str();
        ASSERT_EQ(run_approver_add(dec_, "dana", (dir_ / "approver.pub.pem"), out, err), 0)
            << err.str();
    }

    // One sealed 1d window per patient and day for days 0..3: patient p's records are one
    // sample each at (60 + p) bpm.
    void seed_windows() {
        auto db = store::Database::open(config_.database);
        const PublicKey& pk = edge::paillier_key().public_key();
        const Layout layout = make_layout(SchemaId{});
        auto insert = db.prepare(
            "INSERT INTO windows (kid, patient, metric, schema, granularity, start_ms, "
            "length_ms, seal_ms, record_count, aggregate, sealed, seal_seq, sealed_ms) "
            "VALUES (?, ?, 'hr', 'hr-v1-a32', '1d', ?, ?, ?, ?, ?, 1, ?, ?)");
        std::int64_t seq = 1000;
        for (int day = 0; day < 4; ++day) {
            for (int p = 0; p < kPatients; ++p) {
                std::vector<SlotValue> v(layout.slot_count(), 0);
                const SlotValue deci = static_cast<SlotValue>(600 + 10 * p);
                v[0] = kRecords;
                v[1] = kRecords;
                v[2] = kRecords * deci;
                v[3] = kRecords * deci * deci;
                v[4 + static_cast<std::size_t>((60 + p - 30) / 5 + 1)] = kRecords;  // histogram
                const std::int64_t start = kDay0 + day * kDay;
                insert
                    .bind_all(pk.kid(), patient(p), start, kDay, start + kDay, kRecords,
                              std::span<const std::uint8_t>(
                                  pk.serialize(pk.encrypt(layout.pack_aggregate(v)))),
                              ++seq, start + kDay)
                    .execute();
                insert.reset();
            }
        }
    }

    std::int64_t token_id(const std::string& label) {
        auto db = store::Database::open(config_.database);
        auto st = db.prepare("SELECT id FROM tokens WHERE label = ?");
        st.bind_all(label);
        EXPECT_TRUE(st.step());
        return st.column_int64(0);
    }

    httplib::Result send(const std::string& path, const std::string& token, const json& body,
                         const char* method = "POST") {
        httplib::Headers h = {{"Authorization", "Bearer " + token}};
        return std::string(method) == "PUT"
                   ? client_->Put(path, h, body.dump(), "application/json")
                   : client_->Post(path, h, body.dump(), "application/json");
    }
    json get(const std::string& path, const std::string& token) {
        auto res = client_->Get(path, {{"Authorization", "Bearer " + token}});
        EXPECT_EQ(res->status, 200) << res->body;
        return json::parse(res->body);
    }

    void make_cohort(const std::string& name, int patients) {
        json list = json::array();
        for (int p = 0; p < patients; ++p) {
            list.push_back(patient(p));
        }
        auto res = send("/v1/cohorts/" + name, admin_, {{"patients", list}}, "PUT");
        ASSERT_TRUE(res->status == 201 || res->status == 200) << res->body;
    }

    // ask posts a query as the analyst and returns its id.
    std::string ask(json subject, int from_day, int to_day, json epsilon,
                    json statistics = {"count", "mean", "histogram"}) {
        json body = std::move(subject);
        body["metric"] = "hr";
        body["from_ms"] = kDay0 + from_day * kDay;
        body["to_ms"] = kDay0 + to_day * kDay;
        body["statistics"] = std::move(statistics);
        body["epsilon"] = std::move(epsilon);
        body["purpose"] = "ward quality review";
        auto res = send("/v1/queries", analyst_, body);
        EXPECT_EQ(res->status, 202) << res->body;
        return json::parse(res->body).value("id", "");
    }

    int approve(const std::string& id, const std::string& key = {}) {
        std::ostringstream out, err;
        int rc = run_queries_decide(dec_, decryptor_, id, true, key.empty() ? approver_key_ : key,
                                    "", out, err);
        last_err_ = err.str();
        return rc;
    }

    QueryRoundStats round() {
        auto store = StateStore::open(dec_.database);
        httplib::Client client("127.0.0.1", port_);
        QueryReleaser releaser(
            client, decryptor_, store, keys_, dec_.cohort,
            [this](const std::string& id, const std::string& what) { integrity_[id] = what; },
            [] { return server::now_unix_ms(); });
        return releaser.round();
    }

    // release opens the analyst's result and returns the release document.
    json release(const std::string& id) {
        json r = get("/v1/queries/" + id + "/result", analyst_);
        EXPECT_EQ(r.value("status", ""), "released");
        auto opened = open_envelope(r.value("envelope", ""), analyst_key_, identity_.public_key());
        EXPECT_TRUE(opened.ok()) << (opened.ok() ? "" : opened.error().message);
        if (!opened) {
            return {};
        }
        EXPECT_EQ(json::parse(opened.value().header), json({{"query", id}}));
        const auto& p = opened.value().plaintext;
        return json::parse(std::string(reinterpret_cast<const char*>(p.data()), p.size()));
    }

    json figure(const json& rel, const std::string& name) {
        for (const auto& f : rel["figures"]) {
            if (f["name"] == name) {
                return f;
            }
        }
        ADD_FAILURE() << "no figure " << name;
        return {};
    }

    // server_status is the query's status and reason as the analyst sees them.
    std::pair<std::string, std::string> server_status(const std::string& id) {
        json q = get("/v1/queries/" + id, analyst_);
        return {q.value("status", ""), q.value("reason", "")};
    }

    void tamper(const std::string& sql) {
        auto db = store::Database::open(config_.database);
        db.exec(sql);
    }

    DecryptorConfig dec_;
    KeyRing keys_;
    std::string analyst_, approver_key_, last_err_;
    std::int64_t analyst_id_ = 0;
    X25519PrivateKey analyst_key_ = X25519PrivateKey::generate();
    std::map<std::string, std::string> integrity_;
};

TEST_F(QueryReleaseTest, ApprovedQueryIsReleasedExactlyOnceToTheAnalystOnly) {
    dec_.cohort.allow_without_noise = true;
    const std::string id = ask({{"cohort", "ward"}}, 0, 2, nullptr);
    ASSERT_FALSE(id.empty());

    // The approver reads it in plain words; the hash is recomputed and matches.
    std::ostringstream out, err;
    ASSERT_EQ(run_queries_show(dec_, decryptor_, id, "table", out, err), 0) << err.str();
    EXPECT_NE(out.str().find("analyst:    alice"), std::string::npos) << out.str();
    EXPECT_NE(out.str().find("cohort 'ward': 12 members, 12 with data"), std::string::npos);
    EXPECT_NE(out.str().find("purpose:    ward quality review"), std::string::npos);
    EXPECT_NE(out.str().find("epsilon none (exact figures, no noise)"), std::string::npos);
    EXPECT_NE(out.str().find("24 sealed windows (1d: 24), 240 records"), std::string::npos);
    EXPECT_NE(out.str().find("recomputed here: matches"), std::string::npos);

    // Nothing is released before the approval.
    EXPECT_EQ(round().released, 0);
    EXPECT_EQ(server_status(id).first, "pending");
    ASSERT_EQ(approve(id), 0) << last_err_;
    EXPECT_EQ(approve(id), 2);  // decided already
    const QueryRoundStats first = round();
    EXPECT_EQ(first.released, 1);
    EXPECT_EQ(first.posted, 1);

    const json rel = release(id);
    EXPECT_EQ(rel["v"], "cipherpulse-release/1");
    EXPECT_EQ(rel["query"], id);
    EXPECT_EQ(rel["hash"], get("/v1/queries/" + id, analyst_)["hash"]);
    EXPECT_EQ(rel["noise"], "none");
    EXPECT_EQ(rel["cohort_size"], kPatients);
    EXPECT_EQ(rel["patients_with_data"], kPatients);
    // 12 patients x 2 days x 10 records of one sample at 60..71 bpm: mean 65.5.
    EXPECT_EQ(figure(rel, "records")["value"], 240.0);
    EXPECT_EQ(figure(rel, "samples")["value"], 240.0);
    EXPECT_EQ(figure(rel, "mean_bpm")["value"], 65.5);
    EXPECT_EQ(figure(rel, "bin_60_65")["value"], 100.0);  // 60..64 bpm: 5 patients x 20
    EXPECT_EQ(figure(rel, "bin_65_70")["value"], 100.0);
    EXPECT_EQ(figure(rel, "bin_70_75")["value"], 40.0);

    // Once only: the next round changes nothing, and the log says released.
    const QueryRoundStats second = round();
    EXPECT_EQ(second.released + second.refused + second.posted, 0);
    auto store = StateStore::open(dec_.database);
    auto entry = query_log_entry(store, id);
    ASSERT_TRUE(entry.has_value());
    EXPECT_EQ(entry->status, "released");
    EXPECT_EQ(entry->approver, "dana");
    EXPECT_TRUE(entry->posted);
    EXPECT_EQ(entry->patients.size(), static_cast<std::size_t>(kPatients));

    // Another analyst's key cannot open it.
    json r = get("/v1/queries/" + id + "/result", analyst_);
    EXPECT_FALSE(open_envelope(r["envelope"].get<std::string>(), X25519PrivateKey::generate(),
                               identity_.public_key())
                     .ok());
}

TEST_F(QueryReleaseTest, NoisedReleaseSpendsTheBudgetAndTheBudgetRefusesMore) {
    const std::string a = ask({{"cohort", "ward"}}, 0, 1, "4");
    ASSERT_EQ(approve(a), 0) << last_err_;
    EXPECT_EQ(round().released, 1);
    const json rel = release(a);
    EXPECT_EQ(rel["noise"], "discrete-laplace");
    EXPECT_EQ(rel["epsilon"], "4");
    EXPECT_EQ(rel["cap_records"], 17280);
    const json mean = figure(rel, "mean_bpm");
    ASSERT_TRUE(mean["interval95"].is_array());
    EXPECT_FALSE(mean["scale"].is_null());
    {
        auto store = StateStore::open(dec_.database);
        EXPECT_EQ(epsilon_spent_milli(store, analyst_id_, 0), 4000u);
    }
    // 4 + 6.5 is over the budget of 10: refused, and nothing more is spent.
    const std::string b = ask({{"cohort", "ward"}}, 2, 3, "6.5");
    ASSERT_EQ(approve(b), 0);
    EXPECT_EQ(round().refused, 1);
    auto [status, reason] = server_status(b);
    EXPECT_EQ(status, "refused");
    EXPECT_NE(reason.find("privacy budget"), std::string::npos) << reason;
    auto store = StateStore::open(dec_.database);
    EXPECT_EQ(epsilon_spent_milli(store, analyst_id_, 0), 4000u);
}

TEST_F(QueryReleaseTest, PolicyRefusesSmallCohortsDifferencingExactReleasesAndSelfApproval) {
    // Too few patients with data.
    const std::string small = ask({{"cohort", "small"}}, 0, 1, "1");
    ASSERT_EQ(approve(small), 0);
    // No noise, not allowed by default.
    const std::string exact = ask({{"cohort", "ward"}}, 0, 1, nullptr);
    ASSERT_EQ(approve(exact), 0);
    EXPECT_EQ(round().refused, 2);
    EXPECT_NE(server_status(small).second.find("only 4 patients"), std::string::npos);
    EXPECT_NE(server_status(exact).second.find("without noise"), std::string::npos);

    // The differencing guard: the ward, then the ward without one patient, over an
    // overlapping range, would single that patient out.
    const std::string whole = ask({{"cohort", "ward"}}, 0, 2, "1");
    ASSERT_EQ(approve(whole), 0);
    EXPECT_EQ(round().released, 1);
    json eleven = json::array();
    for (int p = 1; p < kPatients; ++p) {
        eleven.push_back(patient(p));
    }
    const std::string minus_one = ask({{"patients", eleven}}, 1, 3, "1");
    ASSERT_EQ(approve(minus_one), 0);
    EXPECT_EQ(round().refused, 1);
    auto reason = server_status(minus_one).second;
    EXPECT_NE(reason.find("differ from those of release " + whole), std::string::npos) << reason;
    // A range that does not overlap is fine.
    const std::string later = ask({{"patients", eleven}}, 3, 4, "1");
    ASSERT_EQ(approve(later), 0);
    EXPECT_EQ(round().released, 1);

    // An approver named as the analyst is refused.
    std::ostringstream out, err;
    const auto self_key = (dir_ / "self.pem").string();
    ASSERT_EQ(run_approver_keygen(self_key, false, out, err), 0);
    ASSERT_EQ(run_approver_add(dec_, "alice", dir_ / "self.pub.pem", out, err), 0);
    const std::string self = ask({{"cohort", "ward"}}, 0, 2, "1");
    ASSERT_EQ(approve(self, self_key), 0);
    EXPECT_EQ(round().refused, 1);
    EXPECT_NE(server_status(self).second.find("approver is the analyst"), std::string::npos);
    EXPECT_TRUE(integrity_.empty());
}

TEST_F(QueryReleaseTest, ForgedReplayedAndAlteredServerDataIsAnIntegrityFailure) {
    // An unpinned key: refused by the command, and, posted by a compromised server, by watch.
    std::ostringstream out, err;
    const auto rogue = (dir_ / "rogue.pem").string();
    ASSERT_EQ(run_approver_keygen(rogue, false, out, err), 0);
    const std::string forged = ask({{"cohort", "ward"}}, 0, 1, "1");
    EXPECT_EQ(approve(forged, rogue), 2);
    EXPECT_NE(last_err_.find("not a pinned approver"), std::string::npos);
    const std::string hash = get("/v1/queries/" + forged, analyst_)["hash"];
    const auto rogue_key = Ed25519PrivateKey::load(rogue).value();
    const json payload = {{"query", forged}, {"hash", hash}, {"decision", "approve"}, {"ts", 1}};
    auto res = send("/v1/queries/" + forged + "/decision", decryptor_,
                    {{"decision", jws_sign(payload.dump(), rogue_key,
                                           rogue_key.public_key().fingerprint(), kDecisionType)}});
    ASSERT_EQ(res->status, 200) << res->body;

    // A genuine approval of one query replayed onto another.
    const std::string genuine = ask({{"cohort", "ward"}}, 1, 2, "1");
    const std::string replayed = ask({{"cohort", "ward"}}, 2, 3, "1");
    ASSERT_EQ(approve(genuine), 0);
    // An aggregate altered after approval; a member list altered after approval; the
    // analyst's result key swapped for the server's own.
    const std::string altered = ask({{"cohort", "ward"}}, 0, 2, "1");
    const std::string members = ask({{"cohort", "ward"}}, 1, 3, "1");
    const std::string swapped = ask({{"cohort", "ward"}}, 0, 3, "1");
    for (const auto& id : {altered, members, swapped}) {
        ASSERT_EQ(approve(id), 0);
    }
    tamper(
        "UPDATE queries SET status = 'approved', decision = (SELECT decision FROM queries "
        "WHERE id = '" +
        genuine + "') WHERE id = '" + replayed + "'");
    tamper("UPDATE queries SET status = 'pending' WHERE id = '" + genuine + "'");
    tamper("UPDATE queries SET aggregate = (SELECT aggregate FROM queries WHERE id = '" + genuine +
           "') WHERE id = '" + altered + "'");
    tamper(
        "UPDATE queries SET document = replace(document, '\"members\":[\"p10\",', "
        "'\"members\":[') WHERE id = '" +
        members + "'");
    tamper("UPDATE analyst_keys SET public_key_pem = '" +
           X25519PrivateKey::generate().public_key().to_pem() + "'");

    const QueryRoundStats r = round();
    EXPECT_EQ(r.released, 0);
    EXPECT_EQ(r.integrity, 5);
    EXPECT_NE(integrity_[forged].find("not signed by a pinned approver"), std::string::npos);
    EXPECT_NE(integrity_[replayed].find("another query"), std::string::npos)
        << integrity_[replayed];
    EXPECT_NE(integrity_[altered].find("digest"), std::string::npos) << integrity_[altered];
    EXPECT_NE(integrity_[members].find("hash does not match"), std::string::npos)
        << integrity_[members];
    EXPECT_NE(integrity_[swapped].find("result key"), std::string::npos) << integrity_[swapped];
    for (const auto& id : {forged, replayed, altered, members, swapped}) {
        EXPECT_EQ(server_status(id).first, "refused") << id;
    }
    auto store = StateStore::open(dec_.database);
    EXPECT_EQ(epsilon_spent_milli(store, analyst_id_, 0), 0u);
}

TEST_F(QueryReleaseTest, AWindowThatDiffersFromTheLedgerIsAnIntegrityFailure) {
    const std::string id = ask({{"cohort", "ward"}}, 0, 1, "1");
    ASSERT_EQ(approve(id), 0);
    // The decryptor saw one of the query's windows with another record count.
    const json doc = get("/v1/queries/" + id, analyst_)["document"];
    // A window is [id, patient, granularity, start_ms, length_ms, record_count, sha256].
    const json& w = doc["windows"][0];
    {
        auto store = StateStore::open(dec_.database);
        LedgerEntry e;
        e.window_id = w[0];
        e.patient = w[1];
        e.granularity = w[2];
        e.start_ms = w[3];
        e.length_ms = w[4];
        e.record_count = w[5].get<std::int64_t>() + 1;
        e.status = kReleased;
        store.add_ledger_entry(e);
    }
    const QueryRoundStats r = round();
    EXPECT_EQ(r.integrity, 1);
    EXPECT_NE(integrity_[id].find("differs from the window this decryptor released"),
              std::string::npos)
        << integrity_[id];
    EXPECT_EQ(server_status(id).first, "refused");
}

TEST_F(QueryReleaseTest, AWindowGoneFromTheServerIsRefusedNotReleased) {
    const std::string id = ask({{"cohort", "ward"}}, 0, 1, "1");
    ASSERT_EQ(approve(id), 0) << last_err_;
    const json doc = get("/v1/queries/" + id, analyst_)["document"];
    const std::int64_t window = doc["windows"][0][0];  // [id, patient, ...]
    tamper("DELETE FROM windows WHERE id = " + std::to_string(window));
    const QueryRoundStats r = round();
    EXPECT_EQ(r.released, 0);
    EXPECT_EQ(r.refused, 1);
    const auto [status, reason] = server_status(id);
    EXPECT_EQ(status, "refused");
    EXPECT_NE(reason.find("window " + std::to_string(window) + " of the query no longer exists"),
              std::string::npos)
        << reason;
}

TEST_F(QueryReleaseTest, ARangeWithoutDataIsRefusedByTheKRuleNotAnIntegrityAlarm) {
    // 100 days later: sealed long ago, no window of anyone.
    const std::string id = ask({{"cohort", "ward"}}, 100, 101, "1");
    ASSERT_EQ(approve(id), 0) << last_err_;
    const QueryRoundStats r = round();
    EXPECT_EQ(r.integrity, 0);
    EXPECT_EQ(r.refused, 1);
    EXPECT_TRUE(integrity_.empty());
    const auto [status, reason] = server_status(id);
    EXPECT_EQ(status, "refused");
    EXPECT_NE(reason.find("only 0 patients have data"), std::string::npos) << reason;
}

}  // namespace
}  // namespace cipherpulse::decryptor
