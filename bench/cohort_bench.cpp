// Cohort statistics at the scale: 1,000 patients x 30 days of sealed 1d windows at
// 2048 bits, in a real SQLite file behind a real server on loopback.
//  - BM_PostQuery: POST /v1/queries answered (validation, tiling, reading 30,000 windows,
//    multiplying them into one aggregate, the canonical document and its hash, storing).
//    Target: <= 0.5 s.
//  - BM_Decide: the decryptor's whole decision on the approved query (decision JWS, hash
//    recomputed, the product of the 30,000 window aggregates recomputed and compared, window
//    checks, decryption, policy, noise, release document, sealed envelope), the material
//    already fetched. Target: <= 50 ms; BM_ProductRecompute is the recompute alone, so the
//    rest is the difference, and BM_DecideOneDay the same decision over 1,000 windows.
#include <benchmark/benchmark.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cipherpulse/base64url.h"
#include "cipherpulse/codec.h"
#include "cipherpulse/jws.h"
#include "cipherpulse/paillier.h"
#include "cipherpulse/secure.h"
#include "cipherpulse/x25519.h"
#include "cohort/noise.h"
#include "cohort/query.h"
#include "decryptor/queries.h"
#include "server/admin_commands.h"
#include "server/app.h"
#include "store/sqlite.h"

namespace {

using namespace cipherpulse;
using json = nlohmann::json;

constexpr int kPatients = 1000;
constexpr int kDays = 30;
constexpr std::int64_t kDay = 86'400'000;
constexpr std::int64_t kDay0 = 1'700'006'400'000;  // 2023-11-15T00:00Z

std::string last_line(const std::string& text) {
    std::string t = text;
    while (!t.empty() && t.back() == '\n') {
        t.pop_back();
    }
    return t.substr(t.rfind('\n') == std::string::npos ? 0 : t.rfind('\n') + 1);
}

// World is the server with its data, started once for all benchmarks.
struct World {
    std::filesystem::path dir;
    server::ServerConfig config = server::ServerConfig::defaults();
    PrivateKey key = PrivateKey::generate(2048);
    std::string admin, analyst, decryptor;
    X25519PrivateKey analyst_key = X25519PrivateKey::generate();
    Ed25519PrivateKey approver = Ed25519PrivateKey::generate();
    Ed25519PrivateKey identity = Ed25519PrivateKey::generate();
    std::unique_ptr<server::ServerApp> app;
    std::thread thread;
    std::unique_ptr<httplib::Client> client;

    World() {
        spdlog::set_level(spdlog::level::warn);
        char tmpl[] = "/tmp/cohort-bench-XXXXXX";
        dir = mkdtemp(tmpl);
        config.database = (dir / "server.db").string();
        config.listen_port = 0;
        std::ostringstream out, err;
        server::run_init(config, out, err);
        admin = last_line(out.str());
        out.str("");
        server::run_token_create(config, "analyst", "alice", std::nullopt, out, err);
        analyst = last_line(out.str());
        out.str("");
        server::run_token_create(config, "decryptor", "dec", std::nullopt, out, err);
        decryptor = last_line(out.str());
        seed();
        app = std::make_unique<server::ServerApp>(config);
        const int port = app->bind();
        thread = std::thread([this] { app->serve(); });
        client = std::make_unique<httplib::Client>("127.0.0.1", port);
        client->set_read_timeout(120, 0);
        for (int i = 0; i < 200 && !client->Get("/v1/health"); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        json members = json::array();
        for (int p = 0; p < kPatients; ++p) {
            members.push_back("p" + std::to_string(p));
        }
        const httplib::Headers h{{"Authorization", "Bearer " + admin}};
        client->Put("/v1/cohorts/all", h, json{{"patients", members}}.dump(), "application/json");
        client->Put("/v1/analysts/" + std::to_string(token_id("alice")) + "/key", h,
                    json{{"public_key_pem", analyst_key.public_key().to_pem()}}.dump(),
                    "application/json");
    }

    ~World() {
        app->stop();
        thread.join();
        std::filesystem::remove_all(dir);
    }

    std::int64_t token_id(const std::string& label) {
        auto db = store::Database::open(config.database);
        auto st = db.prepare("SELECT id FROM tokens WHERE label = ?");
        st.bind_all(label);
        st.step();
        return st.column_int64(0);
    }

    // seed stores the key and 30,000 sealed 1d windows (64 distinct ciphertexts in turn:
    // encrypting 30,000 would only slow the setup).
    void seed() {
        auto db = store::Database::open(config.database);
        const PublicKey& pk = key.public_key();
        db.prepare("INSERT INTO keys (kid, jws, document, active, created_ms) VALUES (?, '', ?, 1, 0)")
            .bind_all(pk.kid(), pk.to_json())
            .execute();
        const Layout layout = make_layout(SchemaId{});
        std::vector<SlotValue> v(layout.slot_count(), 0);
        v[0] = v[1] = 100;
        v[2] = 100 * 720;
        v[3] = 100 * 720 * 720;
        v[4 + 9] = 100;  // 70 <= bpm < 75
        std::vector<std::vector<std::uint8_t>> cts;
        for (int i = 0; i < 64; ++i) {
            cts.push_back(pk.serialize(pk.encrypt(layout.pack_aggregate(v))));
        }
        store::Transaction tx(db);
        auto insert = db.prepare(
            "INSERT INTO windows (kid, patient, metric, schema, granularity, start_ms, "
            "length_ms, seal_ms, record_count, aggregate, sealed, seal_seq, sealed_ms) "
            "VALUES (?, ?, 'hr', 'hr-v1-a32', '1d', ?, ?, ?, 100, ?, 1, ?, ?)");
        std::int64_t seq = 0;
        for (int p = 0; p < kPatients; ++p) {
            for (int d = 0; d < kDays; ++d) {
                const std::int64_t start = kDay0 + d * kDay;
                insert
                    .bind_all(pk.kid(), "p" + std::to_string(p), start, kDay, start + kDay,
                              std::span<const std::uint8_t>(cts[seq % 64]), seq + 1, start + kDay)
                    .execute();
                insert.reset();
                ++seq;
            }
        }
        tx.commit();
    }

    json post_query(int days) {
        const json body = {{"cohort", "all"},
                           {"metric", "hr"},
                           {"from_ms", kDay0},
                           {"to_ms", kDay0 + days * kDay},
                           {"statistics", {"count", "mean", "sd", "histogram", "share_above:100"}},
                           {"epsilon", "1"}};
        auto res = client->Post("/v1/queries", {{"Authorization", "Bearer " + analyst}},
                                body.dump(), "application/json");
        if (!res || res->status != 202) {
            throw std::runtime_error("POST /v1/queries failed: " + (res ? res->body : "no answer"));
        }
        return json::parse(res->body);
    }

    json get(const std::string& path) {
        auto res = client->Get(path, {{"Authorization", "Bearer " + decryptor}});
        return json::parse(res->body);
    }
};

World& world() {
    static World w;
    return w;
}

// Approved is an approved query's material as the decryptor fetches it.
struct Approved {
    json query, windows;
    decryptor::QueryMaterial material;
};

Approved approved(int days) {
    World& w = world();
    const std::string id = w.post_query(days)["id"];
    Approved a;
    a.query = w.get("/v1/queries/" + id);
    const json payload = {{"query", id}, {"hash", a.query["hash"]}, {"decision", "approve"}, {"ts", 1}};
    const std::string jws = jws_sign(payload.dump(), w.approver, w.approver.public_key().fingerprint(),
                                     decryptor::kDecisionType);
    w.client->Post("/v1/queries/" + id + "/decision", {{"Authorization", "Bearer " + w.decryptor}},
                   json{{"decision", jws}}.dump(), "application/json");
    a.query = w.get("/v1/queries/" + id);
    a.windows = w.get("/v1/queries/" + id + "/windows");
    auto& m = a.material;
    m.id = id;
    m.server_hash = a.query["hash"];
    m.decision = a.query["decision"];
    m.aggregate = a.query["aggregate"];
    m.analyst_public_key_pem = a.query["analyst_public_key_pem"];
    m.document = &a.query["document"];
    for (const auto& x : a.windows["aggregates"]) {
        m.window_aggregates.emplace_back(x.get<std::string>());
    }
    return a;
}

void BM_PostQuery(benchmark::State& state) {
    World& w = world();
    std::size_t windows = 0;
    for (auto _ : state) {
        json r = w.post_query(kDays);
        windows = r.value("windows", std::size_t{0});
        benchmark::DoNotOptimize(r);
    }
    state.counters["patients"] = kPatients;
    state.counters["days"] = kDays;
    if (windows > 0) {
        state.counters["windows"] = static_cast<double>(windows);
    }
}

void decide_bench(benchmark::State& state, int days) {
    World& w = world();
    Approved a = approved(days);
    a.material.document = &a.query["document"];
    const auto dir = w.dir / ("decryptor-" + std::to_string(days));
    std::filesystem::create_directories(dir);
    auto store = decryptor::StateStore::open((dir / "state.db").string());
    (void)decryptor::add_approver(store, "dana", w.approver.public_key(), 0);
    decryptor::KeyRing keys;
    keys.add_shared(std::shared_ptr<const PrivateKey>(&w.key, [](const PrivateKey*) {}));
    decryptor::CohortPolicy policy;
    cohort::OpenSslSource source;
    for (auto _ : state) {
        auto v = decryptor::decide(a.material, keys, store, policy, w.identity, source, 1);
        if (v.kind != decryptor::Verdict::Kind::kRelease) {
            state.SkipWithError(("not released: " + v.reason).c_str());
            break;
        }
        benchmark::DoNotOptimize(v);
    }
    state.counters["windows"] = static_cast<double>(a.material.window_aggregates.size());
}

void BM_Decide(benchmark::State& state) {
    decide_bench(state, kDays);
}

void BM_DecideOneDay(benchmark::State& state) {
    decide_bench(state, 1);
}

// The product of the windows' aggregates (decode, digest, multiply) with the decoding on one
// thread, alone: decide() splits the decoding over the cores as pk.sum splits the product.
void BM_ProductRecompute(benchmark::State& state) {
    World& w = world();
    Approved a = approved(kDays);
    const PublicKey& pk = w.key.public_key();
    for (auto _ : state) {
        std::vector<Ciphertext> cts;
        cts.reserve(a.material.window_aggregates.size());
        for (const auto& text : a.material.window_aggregates) {
            auto raw = base64url_decode(*text);
            benchmark::DoNotOptimize(sha256(raw.value()));
            cts.push_back(pk.unsafe_ciphertext(BigInt::from_bytes(raw.value())));
        }
        benchmark::DoNotOptimize(pk.serialize(pk.sum(cts)));
    }
    state.counters["windows"] = static_cast<double>(a.material.window_aggregates.size());
}

// The query document as the decryptor reads it: parsed, and its canonical hash recomputed.
void BM_DocumentHash(benchmark::State& state) {
    Approved a = approved(kDays);
    for (auto _ : state) {
        auto doc = cohort::parse_document(a.query["document"]);
        benchmark::DoNotOptimize(cohort::canonical_hash(doc.value()));
    }
}

BENCHMARK(BM_PostQuery)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK(BM_Decide)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ProductRecompute)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_DocumentHash)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_DecideOneDay)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
