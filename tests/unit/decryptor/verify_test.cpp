// verify_window_records against genuine `GET /v1/windows/{id}/records` documents, built here
// the way the server builds them (src/server/app.cpp, get_window_records) from batches that
// device keys generated at test time really signed, then tampered with one way at a time.
#include "decryptor/verify.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cipherpulse/base64url.h"
#include "cipherpulse/ed25519.h"
#include "cipherpulse/http_signature.h"
#include "cipherpulse/paillier.h"
#include "common/upload.h"
#include "unit/test_support.h"

namespace cipherpulse::decryptor {
namespace {

using json = nlohmann::json;

// A 1-minute window of 2025-11-21 (long past: verification must not depend on the clock),
// sealed 6 s (the 1m grace) after its end, as the server does.
constexpr std::int64_t kWindowId = 42;
constexpr std::int64_t kStartMs = 1763702400000;
constexpr std::int64_t kLengthMs = 60000;
constexpr std::int64_t kSealedMs = kStartMs + kLengthMs + 6317;
// Batches are signed a few seconds after their micro-windows, before the seal.
constexpr std::int64_t kCreatedS = kStartMs / 1000 + 40;

const PublicKey& pk() {
    return testing::test_key(512).public_key();
}

std::string encrypt(long value) {
    return pk().serialize_base64url(pk().encrypt(BigInt(value)));
}

common::UploadRecord record(std::int64_t seq, std::int64_t t_ms, long value) {
    return {seq, t_ms, "hr", "hr-v1-a32", pk().kid(), encrypt(value)};
}

// Document assembles a WindowRecords response. add_batch signs a real upload and lists, as
// the server does, those of its records that fall into the window; finish() computes the
// aggregate and count from the listed records (a consistent server, honest or not).
struct Document {
    json records = json::array();
    json batches = json::array();
    json devices = json::object();
    json window;

    void add_batch(std::int64_t id, const std::string& device, const Ed25519PrivateKey& key,
                   const std::vector<common::UploadRecord>& uploaded,
                   std::int64_t created_s = kCreatedS) {
        auto signed_upload = common::sign_upload(common::batch_json(device, uploaded),
                                                 common::kReadingsPath, device, key, created_s);
        batches.push_back({{"id", id},
                           {"device", device},
                           {"method", "POST"},
                           {"path", common::kReadingsPath},
                           {"content_digest", signed_upload.content_digest},
                           {"signature_input", signed_upload.signature_input},
                           {"signature", signed_upload.signature},
                           {"body", base64url_encode(signed_upload.body)}});
        devices[device] = key.public_key().to_pem();
        for (const auto& r : uploaded) {
            if (r.t_ms >= kStartMs && r.t_ms < kStartMs + kLengthMs) {
                records.push_back(stored(device, r, id));
            }
        }
    }

    static json stored(const std::string& device, const common::UploadRecord& r,
                       std::int64_t batch) {
        return {{"device", device},   {"seq", r.seq}, {"t", r.t_ms}, {"metric", r.metric},
                {"schema", r.schema}, {"kid", r.kid}, {"ct", r.ct},  {"batch", batch}};
    }

    Document& finish() {
        std::sort(records.begin(), records.end(), [](const json& a, const json& b) {
            return std::make_pair(a["device"].get<std::string>(), a["seq"].get<std::int64_t>()) <
                   std::make_pair(b["device"].get<std::string>(), b["seq"].get<std::int64_t>());
        });
        std::vector<Ciphertext> cts;
        for (const auto& r : records) {
            cts.push_back(pk().parse_ciphertext_base64url(r["ct"].get<std::string>()).value());
        }
        window = {{"id", kWindowId},
                  {"kid", pk().kid()},
                  {"patient", "patient-1"},
                  {"metric", "hr"},
                  {"schema", "hr-v1-a32"},
                  {"granularity", "1m"},
                  {"start_ms", kStartMs},
                  {"length_ms", kLengthMs},
                  {"record_count", records.size()},
                  {"aggregate", pk().serialize_base64url(pk().sum(cts))},
                  {"cursor", "7"},
                  {"sealed_ms", kSealedMs}};
        return *this;
    }

    std::string dump() const {
        return json{
            {"window", window}, {"records", records}, {"batches", batches}, {"devices", devices}}
            .dump();
    }
};

// Body of batch `index` as text, and a setter that re-encodes it (digest left alone).
std::string body_of(const Document& doc, std::size_t index) {
    auto bytes = base64url_decode(doc.batches[index]["body"].get<std::string>()).value();
    return std::string(bytes.begin(), bytes.end());
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
        text.replace(at, from.size(), to);
    }
}

std::string all_problems(const VerifyReport& report) {
    std::string out;
    for (const auto& p : report.problems) {
        out += "\n  " + p;
    }
    return out;
}

::testing::AssertionResult has_problem(const VerifyReport& report, std::string_view needle) {
    for (const auto& p : report.problems) {
        if (p.find(needle) != std::string::npos) {
            if (report.ok) {
                return ::testing::AssertionFailure() << "problem found but ok is true";
            }
            return ::testing::AssertionSuccess();
        }
    }
    return ::testing::AssertionFailure()
           << "no problem containing '" << needle << "' in:" << all_problems(report);
}

KnownDeviceKey no_pins() {
    return [](std::string_view) { return std::optional<std::string>(); };
}

KnownDeviceKey pins(std::map<std::string, std::string> pinned) {
    return [pinned = std::move(pinned)](std::string_view device) -> std::optional<std::string> {
        auto it = pinned.find(std::string(device));
        if (it == pinned.end()) {
            return std::nullopt;
        }
        return it->second;
    };
}

class VerifyTest : public ::testing::Test {
  protected:
    // dev-1 uploads seqs 1-3 in the window plus seq 4 of the next minute in batch 1 (the
    // next window's record is in the signed body but not listed); dev-2 seqs 7-8 in batch 2.
    Document honest() {
        Document doc;
        doc.add_batch(1, "dev-1", dev1_,
                      {record(1, kStartMs + 5000, 70), record(2, kStartMs + 10000, 71),
                       record(3, kStartMs + 55000, 72), record(4, kStartMs + kLengthMs, 73)});
        doc.add_batch(2, "dev-2", dev2_,
                      {record(7, kStartMs, 80), record(8, kStartMs + 59999, 81)});
        return doc.finish();
    }

    VerifyReport verify(const Document& doc, const KnownDeviceKey& known = no_pins(),
                        const std::optional<std::string>& expected = std::nullopt) {
        return verify_window_records(doc.dump(), pk(), known, expected);
    }

    std::map<std::string, std::string> genuine_pins() const {
        return {{"dev-1", dev1_.public_key().to_pem()}, {"dev-2", dev2_.public_key().to_pem()}};
    }

    Ed25519PrivateKey dev1_ = Ed25519PrivateKey::generate();
    Ed25519PrivateKey dev2_ = Ed25519PrivateKey::generate();
};

TEST_F(VerifyTest, HonestDocumentVerifies) {
    Document doc = honest();
    auto report = verify(doc);
    EXPECT_TRUE(report.ok) << all_problems(report);
    EXPECT_TRUE(report.problems.empty());
    EXPECT_EQ(report.window_id, kWindowId);
    EXPECT_EQ(report.batches, 2u);
    EXPECT_EQ(report.records, 5u);  // seq 4 of dev-1 belongs to the next window
    ASSERT_EQ(report.device_keys.size(), 2u);
    EXPECT_EQ(report.device_keys.at("dev-1"), dev1_.public_key().to_pem());
    EXPECT_EQ(report.device_keys.at("dev-2"), dev2_.public_key().to_pem());

    // The aggregate really is the sum of the five listed values.
    auto aggregate = pk().parse_ciphertext_base64url(doc.window["aggregate"].get<std::string>());
    ASSERT_TRUE(aggregate.ok());
    EXPECT_EQ(testing::test_key(512).decrypt(aggregate.value()), BigInt(70 + 71 + 72 + 80 + 81));

    // Pinned keys that match, and the aggregate the caller released, verify as well.
    auto pinned = verify(doc, pins(genuine_pins()), doc.window["aggregate"].get<std::string>());
    EXPECT_TRUE(pinned.ok) << all_problems(pinned);
}

TEST_F(VerifyTest, EmptyKnownKeyFunctionMeansNoPins) {
    auto report = verify_window_records(honest().dump(), pk(), KnownDeviceKey(), std::nullopt);
    EXPECT_TRUE(report.ok) << all_problems(report);
}

TEST_F(VerifyTest, AggregateReplacedByAnotherCiphertext) {
    Document doc = honest();
    doc.window["aggregate"] = encrypt(1000);
    EXPECT_TRUE(has_problem(verify(doc), "window 42: aggregate is not the product of the 5"));
}

TEST_F(VerifyTest, RecordCiphertextNotTheSignedOne) {
    Document doc = honest();
    doc.records[1]["ct"] = encrypt(200);
    doc.finish();  // the server even makes its aggregate match the forged record
    auto report = verify(doc);
    EXPECT_TRUE(
        has_problem(report, "record dev-1/2: differs from its signed copy in batch 1 (ct)"));
    EXPECT_EQ(report.problems.size(), 1u) << all_problems(report);
}

TEST_F(VerifyTest, RecordCiphertextAlteredWithoutNewAggregate) {
    Document doc = honest();
    doc.records[0]["ct"] = encrypt(200);
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report, "record dev-1/1: differs from its signed copy in batch 1"));
    EXPECT_TRUE(has_problem(report, "aggregate is not the product"));
}

TEST_F(VerifyTest, RecordDropped) {
    Document doc = honest();
    doc.records.erase(doc.records.begin() + 3);
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report, "window 42: record_count is 5 but 4 records are listed"));
    EXPECT_TRUE(has_problem(report, "window 42: aggregate is not the product of the 4"));
}

TEST_F(VerifyTest, RecordDroppedFromWindowToo) {
    // A server that drops a record and lowers the count and aggregate alike is not caught
    // here (it may withhold data; see openapi.yaml) — but the result stays a correct sum of
    // signed records.
    Document doc = honest();
    doc.records.erase(doc.records.begin() + 3);
    doc.finish();
    auto report = verify(doc);
    EXPECT_TRUE(report.ok) << all_problems(report);
    EXPECT_EQ(report.records, 4u);
}

TEST_F(VerifyTest, RecordOfAnotherWindow) {
    Document doc = honest();
    // seq 4 of dev-1 (next minute, signed in batch 1) slipped into this window.
    doc.records.push_back(Document::stored("dev-1", record(4, kStartMs + kLengthMs, 0), 1));
    auto body = body_of(doc, 0);
    auto original = json::parse(body)["records"][3];
    doc.records.back()["ct"] = original["ct"];
    doc.finish();
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report,
                            "record dev-1/4: t=1763702460000 is outside window 42 "
                            "[1763702400000, 1763702460000)"));
    EXPECT_EQ(report.problems.size(), 1u) << all_problems(report);
}

TEST_F(VerifyTest, RecordOfAnotherMetricSchemaOrKid) {
    Document doc;
    auto r = record(1, kStartMs, 70);
    r.metric = "spo2";
    r.schema = "spo2-v1-a32";
    r.kid = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    doc.add_batch(1, "dev-1", dev1_, {r});
    doc.finish();
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report, "record dev-1/1: metric spo2 is not the window's hr"));
    EXPECT_TRUE(has_problem(report, "record dev-1/1: schema spo2-v1-a32 is not the window's"));
    EXPECT_TRUE(has_problem(report, "record dev-1/1: kid AAAA"));
}

TEST_F(VerifyTest, BatchBodyAltered) {
    Document doc = honest();
    std::string body = body_of(doc, 1);
    auto batch = json::parse(body);
    batch["records"][0]["ct"] = encrypt(300);
    doc.batches[1]["body"] = base64url_encode(batch.dump());
    doc.records[3]["ct"] = batch["records"][0]["ct"];  // dev-2/7, consistent with the body
    doc.finish();
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report, "batch 2 (device dev-2): Content-Digest does not match"));
    EXPECT_EQ(report.problems.size(), 1u) << all_problems(report);
}

TEST_F(VerifyTest, BatchBodyAndDigestAltered) {
    Document doc = honest();
    std::string body = body_of(doc, 0);
    replace_all(body, "\"t\":1763702405000", "\"t\":1763702406000");
    doc.batches[0]["body"] = base64url_encode(body);
    doc.batches[0]["content_digest"] = content_digest_sha256(body);
    doc.records[0]["t"] = kStartMs + 6000;
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report,
                            "batch 1 (device dev-1): signature rejected: signature does "
                            "not verify"));
    EXPECT_EQ(report.problems.size(), 1u) << all_problems(report);
}

TEST_F(VerifyTest, SignatureAltered) {
    Document doc = honest();
    std::string sig = doc.batches[0]["signature"].get<std::string>();
    // sig1=:<base64>: — change one character of the base64 (keeping it canonical).
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    doc.batches[0]["signature"] = sig;
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report, "batch 1 (device dev-1): signature rejected"));
}

TEST_F(VerifyTest, SignatureMalformed) {
    Document doc = honest();
    doc.batches[0]["signature"] = "sig1=not-a-byte-sequence";
    EXPECT_TRUE(has_problem(verify(doc), "batch 1 (device dev-1): signature malformed"));
}

TEST_F(VerifyTest, MethodOrPathChanged) {
    Document doc = honest();
    doc.batches[0]["method"] = "PUT";
    doc.batches[1]["path"] = "/v1/other";
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report, "batch 1 (device dev-1): method PUT is not POST"));
    EXPECT_TRUE(has_problem(report, "batch 2 (device dev-2): path \"/v1/other\" is not"));
    // The signature covers both, so it fails too.
    EXPECT_TRUE(has_problem(report, "batch 1 (device dev-1): signature rejected"));
    EXPECT_TRUE(has_problem(report, "batch 2 (device dev-2): signature rejected"));
}

TEST_F(VerifyTest, SignatureMustCoverMethodPathAndDigest) {
    Document doc;
    auto r = record(1, kStartMs, 70);
    const std::string body = common::batch_json("dev-1", {r});
    const std::string digest = content_digest_sha256(body);
    HttpRequestView view;
    view.method = "POST";
    view.path = common::kReadingsPath;
    view.header = [&digest](std::string_view name) -> std::optional<std::string> {
        if (name == "content-digest") {
            return digest;
        }
        return std::nullopt;
    };
    SignatureParams params;
    params.components = {"@method", "content-digest"};  // no @path
    params.created = kCreatedS;
    params.keyid = "dev-1";
    params.alg = "ed25519";
    auto headers = sign_request(view, params, dev1_);
    doc.batches.push_back({{"id", 1},
                           {"device", "dev-1"},
                           {"method", "POST"},
                           {"path", common::kReadingsPath},
                           {"content_digest", digest},
                           {"signature_input", headers.signature_input},
                           {"signature", headers.signature},
                           {"body", base64url_encode(body)}});
    doc.devices["dev-1"] = dev1_.public_key().to_pem();
    doc.records.push_back(Document::stored("dev-1", r, 1));
    doc.finish();
    EXPECT_TRUE(has_problem(verify(doc), "required component '@path' not covered"));
}

TEST_F(VerifyTest, KeyidNotTheBatchDevice) {
    Document doc = honest();
    // The server claims dev-1's batch came from dev-2 (whose records it then names).
    doc.batches[0]["device"] = "dev-2";
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report,
                            "batch 1 (device dev-2): signature keyid dev-1 is not the "
                            "batch's device"));
    EXPECT_TRUE(has_problem(report, "batch 1 (device dev-2): body names device dev-1"));
    EXPECT_TRUE(has_problem(report, "record dev-1/1: batch 1 was uploaded by another device"));
}

TEST_F(VerifyTest, RecordAttributedToAnotherDevicesBatch) {
    Document doc = honest();
    doc.records[3]["batch"] = 1;  // dev-2/7 said to come from dev-1's batch
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report, "record dev-2/7: batch 1 was uploaded by another device"));
}

TEST_F(VerifyTest, RecordNotInItsBatch) {
    Document doc = honest();
    // dev-2 also sent seq 9 in batch 3, which the server lists as if batch 2 held it.
    doc.add_batch(3, "dev-2", dev2_, {record(9, kStartMs + 20000, 82)});
    doc.records.back()["batch"] = 2;
    doc.finish();
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report, "record dev-2/9: not in the body of batch 2"));
    EXPECT_EQ(report.problems.size(), 1u) << all_problems(report);
}

TEST_F(VerifyTest, RecordOfUnlistedBatch) {
    Document doc = honest();
    doc.records[0]["batch"] = 99;
    EXPECT_TRUE(has_problem(verify(doc), "record dev-1/1: batch 99 is not among the batches"));
}

TEST_F(VerifyTest, DuplicateRecordAndBatch) {
    Document doc = honest();
    doc.records.push_back(doc.records[0]);
    doc.batches.push_back(doc.batches[1]);
    doc.finish();
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report, "record dev-1/1: listed more than once"));
    EXPECT_TRUE(has_problem(report, "batch 2: listed twice"));
}

TEST_F(VerifyTest, DeviceKeySwappedByServer) {
    // The server registers its own key for dev-1, forges a batch with a record of its choice
    // and serves its PEM: everything is self-consistent.
    const Ed25519PrivateKey server_key = Ed25519PrivateKey::generate();
    Document doc;
    doc.add_batch(1, "dev-1", server_key, {record(1, kStartMs + 5000, 180)});
    doc.add_batch(2, "dev-2", dev2_, {record(7, kStartMs, 80)});
    doc.finish();

    // Without a pin (first contact) it verifies, and the key used is reported for pinning.
    auto tofu = verify(doc);
    EXPECT_TRUE(tofu.ok) << all_problems(tofu);
    EXPECT_EQ(tofu.device_keys.at("dev-1"), server_key.public_key().to_pem());

    // With the enrolled key pinned, the swap is caught.
    auto pinned = verify(doc, pins(genuine_pins()));
    EXPECT_TRUE(has_problem(pinned, "device dev-1: key differs from the pinned one"));
    EXPECT_TRUE(has_problem(pinned, "batch 1 (device dev-1): signature rejected"));
    EXPECT_EQ(pinned.problems.size(), 2u) << all_problems(pinned);
    EXPECT_EQ(pinned.device_keys.at("dev-1"), dev1_.public_key().to_pem());
}

TEST_F(VerifyTest, PinnedKeyComparedAsKeyNotText) {
    // The same key in a differently laid out PEM (CRLF, surrounding blank lines) matches.
    std::string pem = dev1_.public_key().to_pem();
    replace_all(pem, "\n", "\r\n");
    auto report = verify(honest(), pins({{"dev-1", "\n" + pem + "\n"}}));
    EXPECT_TRUE(report.ok) << all_problems(report);
}

TEST_F(VerifyTest, PinnedKeyUnreadable) {
    auto report = verify(honest(), pins({{"dev-2", "not a pem"}}));
    EXPECT_TRUE(has_problem(report, "device dev-2: the pinned key is not an Ed25519 public key"));
    EXPECT_TRUE(has_problem(report, "batch 2 (device dev-2): signature not verified"));
}

TEST_F(VerifyTest, ServerKeyMissingOrUnreadable) {
    Document doc = honest();
    doc.devices.erase("dev-1");
    doc.devices["dev-2"] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report, "device dev-1: no public key in \"devices\""));
    EXPECT_TRUE(has_problem(report, "device dev-2: the server's key is not an Ed25519 public"));
    EXPECT_TRUE(report.device_keys.empty());

    // A pinned key still verifies the batches; the missing entry stays a problem.
    auto pinned = verify(doc, pins(genuine_pins()));
    EXPECT_EQ(pinned.problems.size(), 2u) << all_problems(pinned);
    EXPECT_EQ(pinned.device_keys.size(), 2u);
}

TEST_F(VerifyTest, OldBatchesVerify) {
    // Signed an hour before the window (e.g. a spooled upload of earlier readings that the
    // window still took): no clock check rejects them.
    Document doc;
    doc.add_batch(1, "dev-1", dev1_, {record(1, kStartMs + 5000, 70)}, kStartMs / 1000 - 3600);
    doc.finish();
    auto report = verify(doc);
    EXPECT_TRUE(report.ok) << all_problems(report);
}

TEST_F(VerifyTest, CreatedAfterSealed) {
    Document doc;
    const std::int64_t late = kSealedMs / 1000 + 301;
    doc.add_batch(1, "dev-1", dev1_, {record(1, kStartMs + 5000, 70)}, late);
    doc.add_batch(2, "dev-2", dev2_, {record(7, kStartMs, 80)}, kSealedMs / 1000 + 300);
    doc.finish();
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report, "batch 1 (device dev-1): signed at created=" +
                                        std::to_string(late) + ", after the window sealed"));
    EXPECT_EQ(report.problems.size(), 1u) << all_problems(report);  // batch 2 within slack
}

TEST_F(VerifyTest, ExpectedAggregate) {
    Document doc = honest();
    const std::string aggregate = doc.window["aggregate"].get<std::string>();
    EXPECT_TRUE(verify(doc, no_pins(), aggregate).ok);

    auto other = verify(doc, no_pins(), encrypt(5));
    EXPECT_TRUE(has_problem(other, "window 42: aggregate differs from the expected"));
    EXPECT_EQ(other.problems.size(), 1u) << all_problems(other);

    auto garbage = verify(doc, no_pins(), std::string("!!"));
    EXPECT_TRUE(has_problem(garbage, "expected aggregate is not a valid ciphertext"));
}

TEST_F(VerifyTest, WindowOfAnotherKey) {
    Document doc = honest();
    doc.window["kid"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    EXPECT_TRUE(has_problem(verify(doc), "window 42: kid AAAA"));
}

TEST_F(VerifyTest, InvalidCiphertexts) {
    Document doc = honest();
    doc.records[2]["ct"] = "AAAA";
    doc.window["aggregate"] = "AAAA";
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report, "record dev-1/3: ct is not a valid ciphertext of the key"));
    EXPECT_TRUE(has_problem(report, "window 42: aggregate is not a valid ciphertext of the key"));
    EXPECT_TRUE(has_problem(report, "record dev-1/3: differs from its signed copy in batch 1"));
}

TEST_F(VerifyTest, MalformedDocumentsAreProblemsNotExceptions) {
    const std::vector<std::string> bodies = {
        "",
        "not json",
        "[]",
        "{}",
        R"({"window": 1, "records": {}, "batches": "x", "devices": []})",
        R"({"window": {}, "records": [1, null, {"device": 5, "seq": "1"}], "batches": [[]],
            "devices": {"dev-1": 7}})",
        R"({"window": {"id": 1.5, "start_ms": 18446744073709551615, "length_ms": -1},
            "records": [], "batches": [{"id": 1}], "devices": {}})",
        R"({"window": {"id": 1, "start_ms": 9223372036854775807, "length_ms": 1000},
            "records": [{"device": "d", "seq": 1, "t": 0, "batch": 1}], "batches": [],
            "devices": {}})",
    };
    for (const auto& body : bodies) {
        VerifyReport report;
        EXPECT_NO_THROW(report = verify_window_records(body, pk(), no_pins(), std::nullopt))
            << body;
        EXPECT_FALSE(report.ok) << body;
        EXPECT_FALSE(report.problems.empty()) << body;
    }
    EXPECT_TRUE(has_problem(verify_window_records("not json", pk(), no_pins(), std::nullopt),
                            "document: not a JSON object"));
    auto report = verify_window_records(bodies[5], pk(), no_pins(), std::nullopt);
    EXPECT_TRUE(has_problem(report, "window: \"id\" missing or not an integer"));
    EXPECT_TRUE(has_problem(report, "records[0]: not an object"));
    EXPECT_TRUE(has_problem(report, "records[2]: \"device\" missing or not a string"));
    EXPECT_TRUE(has_problem(report, "records[2]: \"seq\" missing or not an integer"));
    EXPECT_TRUE(has_problem(report, "batches[0]: not an object"));
    EXPECT_TRUE(has_problem(report, "device dev-1: key in \"devices\" is not a string"));
    auto overflow = verify_window_records(bodies[7], pk(), no_pins(), std::nullopt);
    EXPECT_TRUE(has_problem(overflow, "window 1: start_ms + length_ms overflows"));
}

TEST_F(VerifyTest, MalformedPartsOfAGenuineDocument) {
    Document doc = honest();
    doc.batches[0]["body"] = "not base64url!";
    doc.batches[1].erase("signature");
    doc.records[0]["t"] = "soon";
    doc.records[4]["seq"] = -1.5;
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report, "batch 1 (device dev-1): body is not base64url"));
    EXPECT_TRUE(has_problem(report,
                            "batch 2 (device dev-2): \"signature\" missing or not a "
                            "string"));
    EXPECT_TRUE(has_problem(report, "record dev-1/1: \"t\" missing or not an integer"));
    EXPECT_TRUE(has_problem(report, "records[4]: \"seq\" missing or not an integer"));
    EXPECT_EQ(report.batches, 2u);
    EXPECT_EQ(report.records, 5u);
}

TEST_F(VerifyTest, SignedBodyThatIsNotABatch) {
    // A device key signed something that is not a batch (the server could replay it): the
    // signature verifies, the body is refused.
    Document doc = honest();
    const std::string body = R"({"device":"dev-1","records":[{"seq":"1"}]})";
    auto signed_upload =
        common::sign_upload(body, common::kReadingsPath, "dev-1", dev1_, kCreatedS);
    doc.batches[0]["body"] = base64url_encode(body);
    doc.batches[0]["content_digest"] = signed_upload.content_digest;
    doc.batches[0]["signature_input"] = signed_upload.signature_input;
    doc.batches[0]["signature"] = signed_upload.signature;
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report, "batch 1 (device dev-1): body record 0 has no integer"));
    EXPECT_TRUE(has_problem(report, "record dev-1/1: not in the body of batch 1"));
}

TEST_F(VerifyTest, UntrustedStringsAreEscapedInMessages) {
    Document doc = honest();
    doc.records[0]["metric"] = "hr\n\x1b[31mFAKE";
    auto report = verify(doc);
    EXPECT_TRUE(has_problem(report, "metric \"hr\\x0a\\x1b[31mFAKE\" is not the window's hr"));
    for (const auto& p : report.problems) {
        EXPECT_EQ(p.find('\n'), std::string::npos) << p;
    }
}

// The example of `GET /v1/windows/{id}/records` in docs/api/openapi.yaml (one record of device
// dev-1, whose key is RFC 9421's test-key-ed25519) and the payload of the `POST /v1/keys`
// example JWS (the 2048-bit example Paillier key), copied verbatim: a document this test did
// not build, signed with a key the test does not hold.
constexpr const char* kExampleKeyJson =
    R"({"kty":"Paillier","kid":"lC1d3qORien68O8v8WPt3B0VmRP9vi9uGho_0PJxvqc","n":"o2H4NUZz6HVEM)"
    R"(adZU7eALNCNR7tgxcmbl1UGCTIAr5AwZQN_CvLhXledsf86LlrlFj2QowcZ99Cin0oO65ys4WztbZby1xwwFcYPt)"
    R"(h-md_hMJTorvajT3rSlbDORPkodBpG0REvbfftOkkLxBWSXBs0fGou_RPuCg9t-03tvz3MdqJdALBtvbuGa6BZ3K)"
    R"(3RSjA7nal5iyXvYVY5oyyM_pxZq1nXOQaCc-cCuyjUu44BIvowXp6kPZJpiXrU3UvQhtO3LgCYGAil7RsDrPabQT)"
    R"(NCkxOX49c14kNXvt1dbF4yVTuKDx9CV9SNOvTOH1nOK0Mw1s3yQE6aovhPXrj4AgQ","hs":"EL8CSkGbJ7Rnezb)"
    R"(8iekEyLzwQ22eQiaasVenpxuPsDLsWo1FBylYM-6OBxtoDJxl_X5nNwVt-mr1tad3o6_9d6FU7B2ToytUrLbUqSP)"
    R"(YHWKLoq5-6bILZROIl9LNmCRHng-KxC0jTxDVBAWXK5EY9iWFdc9fy_SJp_X8d-17RCK8jkjaSnQqKMabqsz16tO)"
    R"(9WyIoQ6dCCcSjnXo75DxVdvldFLQZNzOdchXPNA-XIqX-xQMtJ7LPTBAHsNAl7tusTOzfJlYGn3pkEteJS5pGnGg)"
    R"(U7gb6jXYfThejR9U9VQhSJmjLYI2yePmVd_JqYIrf0UemhKKhlQIwH57V_iaCuhgJfKCQb_IiPvYBU4-cBjtVCPU)"
    R"(v4b7I1nOrJ4p9vGSmlsZmcfZJp9DwlwSOqgh4c2qiaaZW6d059IM6L5_GOThV-2eQ-S5RIjkME5DkKxcfr30vYX7)"
    R"(E0LKmTekR_ofj2OF7q_JQP3H4gpOgIfgw49u_pzM1tS2m0JwL_SvR1jK1QOtiB1BO22lpeXgMu_pqJwOW7cRUhnK)"
    R"(fLKSFbF33aNSEDrw6KmXgwG8AGwnJkzQR858tCOiortGVG8UB26855y26agDxCB3v7Kq9OnRvLpNNge9TmYCz0F2)"
    R"(swh4zjN5fH3GL7LBbNx2vVRoDH1EBAEfAwEszoJyzyd6YHUC4RLY"})";
constexpr const char* kExampleDocument =
    R"({"window":{"id":1,"kid":"lC1d3qORien68O8v8WPt3B0VmRP9vi9uGho_0PJxvqc","patient":"patient)"
    R"(-1","metric":"hr","schema":"hr-v1-a32","granularity":"1m","start_ms":1767225540000,"leng)"
    R"(th_ms":60000,"record_count":1,"aggregate":"G3n8G-bV4hmCSN07dTojqWsCowiUXQjljQgM-cas6JkxB)"
    R"(3EtRF-t-yh_9g2wMo3i5DAK7ctDTHCbK3Gzvh_fZ_A9yhKeb1P-wItpeJo4LdJOu8LqSlhIfbkEEn_4HPEzHqykx)"
    R"(InV1_YvljMbT3bDcSud819W1ksC922zM3nMwktZ9_iZuKPGv42slAO7QM_kGuFVU3utGniP088U8kaVY_gTjLeaw)"
    R"(JxeI6m_IkFyEuKw9lx567OnYo6iKpbLoTnUPKaX93PDIrPjM4YgtJzep5Cnn4XDM9WVaU7BpOVz2dsA3n-s_0kaq)"
    R"(5ZFeiz9AlgSiGs2YhnSTaHKdjTJAt76Ph8N-1NdgkG_2BPm3mYUUatgOuf7Y5jExNVIXkb-r8bMvkoG9dazxr627)"
    R"(X5JPnnG4u9vkbxwnC8ESVYJUztEYrEKPYiD0pRaiBRZfcWpBnDmcLbgaufD0CQdxC8VQ4zHDKfSqrP9RVAqjCJ_y)"
    R"(T5JOR41DoxdAqKefgSUHcZSoxtCz8zK7ySumBBRwxiyKPHBnCTwWam5SnDEty2jEBAWh26ax1TjGHNQl3FiCeuLh)"
    R"(MXvwZuM2_bD9HkK2ZkBd0FN9dfikdvdkltfkcLCMigEJ1RlRY2MWt4ByK3MFAvAPKzkJNnCvRZg0gL0cJPuCIWjk)"
    R"(4ZWvNbuWeNF1dV0f0alMGQ","cursor":"1","sealed_ms":1767225606317},"records":[{"device":"de)"
    R"(v-1","seq":1,"t":1767225590000,"metric":"hr","schema":"hr-v1-a32","kid":"lC1d3qORien68O8)"
    R"(v8WPt3B0VmRP9vi9uGho_0PJxvqc","ct":"G3n8G-bV4hmCSN07dTojqWsCowiUXQjljQgM-cas6JkxB3EtRF-t)"
    R"(-yh_9g2wMo3i5DAK7ctDTHCbK3Gzvh_fZ_A9yhKeb1P-wItpeJo4LdJOu8LqSlhIfbkEEn_4HPEzHqykxInV1_Yv)"
    R"(ljMbT3bDcSud819W1ksC922zM3nMwktZ9_iZuKPGv42slAO7QM_kGuFVU3utGniP088U8kaVY_gTjLeawJxeI6m_)"
    R"(IkFyEuKw9lx567OnYo6iKpbLoTnUPKaX93PDIrPjM4YgtJzep5Cnn4XDM9WVaU7BpOVz2dsA3n-s_0kaq5ZFeiz9)"
    R"(AlgSiGs2YhnSTaHKdjTJAt76Ph8N-1NdgkG_2BPm3mYUUatgOuf7Y5jExNVIXkb-r8bMvkoG9dazxr627X5JPnnG)"
    R"(4u9vkbxwnC8ESVYJUztEYrEKPYiD0pRaiBRZfcWpBnDmcLbgaufD0CQdxC8VQ4zHDKfSqrP9RVAqjCJ_yT5JOR41)"
    R"(DoxdAqKefgSUHcZSoxtCz8zK7ySumBBRwxiyKPHBnCTwWam5SnDEty2jEBAWh26ax1TjGHNQl3FiCeuLhMXvwZuM)"
    R"(2_bD9HkK2ZkBd0FN9dfikdvdkltfkcLCMigEJ1RlRY2MWt4ByK3MFAvAPKzkJNnCvRZg0gL0cJPuCIWjk4ZWvNbu)"
    R"(WeNF1dV0f0alMGQ","batch":1}],"batches":[{"id":1,"device":"dev-1","method":"POST","path":)"
    R"("/v1/readings","content_digest":"sha-256=:QEMua7FJ3a8HC82V/J9mrLRg/do5RmA4YcwQNqLjww4=:")"
    R"(,"signature_input":"sig1=(\"@method\" \"@path\" \"content-digest\");created=1767225600;k)"
    R"(eyid=\"dev-1\";alg=\"ed25519\"","signature":"sig1=:VSmAix35yKZQIJjRBaYHddewqVW1jjtmCgDed)"
    R"(3ix3obfXP/0FdN7fKKsjQSTvF8n9ladsA3z3W8HGOwwzIMCAA==:","body":"eyJkZXZpY2UiOiJkZXYtMSIsIn)"
    R"(JlY29yZHMiOlt7ImN0IjoiRzNuOEctYlY0aG1DU04wN2RUb2pxV3NDb3dpVVhRamxqUWdNLWNhczZKa3hCM0V0Uk)"
    R"(YtdC15aF85ZzJ3TW8zaTVEQUs3Y3REVEhDYkszR3p2aF9mWl9BOXloS2ViMVAtd0l0cGVKbzRMZEpPdThMcVNsaE)"
    R"(lmYmtFRW5fNEhQRXpIcXlreEluVjFfWXZsak1iVDNiRGNTdWQ4MTlXMWtzQzkyMnpNM25Nd2t0WjlfaVp1S1BHdj)"
    R"(Qyc2xBTzdRTV9rR3VGVlUzdXRHbmlQMDg4VThrYVZZX2dUakxlYXdKeGVJNm1fSWtGeUV1S3c5bHg1NjdPbllvNm)"
    R"(lLcGJMb1RuVVBLYVg5M1BESXJQak00WWd0SnplcDVDbm40WERNOVdWYVU3QnBPVnoyZHNBM24tc18wa2FxNVpGZW)"
    R"(l6OUFsZ1NpR3MyWWhuU1RhSEtkalRKQXQ3NlBoOE4tMU5kZ2tHXzJCUG0zbVlVVWF0Z091ZjdZNWpFeE5WSVhrYi)"
    R"(1yOGJNdmtvRzlkYXp4cjYyN1g1SlBubkc0dTl2a2J4d25DOEVTVllKVXp0RVlyRUtQWWlEMHBSYWlCUlpmY1dwQm)"
    R"(5EbWNMYmdhdWZEMENRZHhDOFZRNHpIREtmU3FyUDlSVkFxakNKX3lUNUpPUjQxRG94ZEFxS2VmZ1NVSGNaU294dE)"
    R"(N6OHpLN3lTdW1CQlJ3eGl5S1BIQm5DVHdXYW01U25ERXR5MmpFQkFXaDI2YXgxVGpHSE5RbDNGaUNldUxoTVh2d1)"
    R"(p1TTJfYkQ5SGtLMlprQmQwRk45ZGZpa2R2ZGtsdGZrY0xDTWlnRUoxUmxSWTJNV3Q0QnlLM01GQXZBUEt6a0pObk)"
    R"(N2UlpnMGdMMGNKUHVDSVdqazRaV3ZOYnVXZU5GMWRWMGYwYWxNR1EiLCJraWQiOiJsQzFkM3FPUmllbjY4Tzh2OF)"
    R"(dQdDNCMFZtUlA5dmk5dUdob18wUEp4dnFjIiwibWV0cmljIjoiaHIiLCJzY2hlbWEiOiJoci12MS1hMzIiLCJzZX)"
    R"(EiOjEsInQiOjE3NjcyMjU1OTAwMDB9XX0"}],"devices":{"dev-1":"-----BEGIN PUBLIC KEY-----\nMCo)"
    R"(wBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n-----END PUBLIC KEY-----\n"}})";
constexpr const char* kRfcEd25519PublicPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n"
    "-----END PUBLIC KEY-----\n";

TEST(VerifyExampleTest, OpenApiExampleVerifies) {
    auto key = PublicKey::from_json(kExampleKeyJson);
    ASSERT_TRUE(key.ok()) << key.error().message;
    auto report = verify_window_records(kExampleDocument, key.value(),
                                        pins({{"dev-1", kRfcEd25519PublicPem}}), std::nullopt);
    EXPECT_TRUE(report.ok) << all_problems(report);
    EXPECT_EQ(report.window_id, 1);
    EXPECT_EQ(report.batches, 1u);
    EXPECT_EQ(report.records, 1u);

    // The same document, verified against another device key, fails.
    auto other = Ed25519PrivateKey::generate().public_key().to_pem();
    auto pinned = verify_window_records(kExampleDocument, key.value(), pins({{"dev-1", other}}),
                                        std::nullopt);
    EXPECT_TRUE(has_problem(pinned, "device dev-1: key differs from the pinned one"));
}

}  // namespace
}  // namespace cipherpulse::decryptor
