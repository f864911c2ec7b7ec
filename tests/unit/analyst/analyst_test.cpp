// The analyst tool below its commands: configuration, times typed on a command line, and
// opening a sealed release. The end-to-end path is tests/integration/cohort_cli_test.py.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analyst/config.h"
#include "analyst/release_view.h"
#include "cipherpulse/envelope.h"
#include "common/time_text.h"
#include "unit/test_support.h"

namespace cipherpulse::analyst {
namespace {

using json = nlohmann::json;
using cipherpulse::testing::TempDir;

TEST(AnalystTimes, IsoDatesTimesMillisecondsAndRelativeTimes) {
    // 2026-12-01T00:00:00Z is 1796083200 s after the epoch (date -u -d 2026-12-01 +%s).
    EXPECT_EQ(common::parse_time_arg("2026-12-01", 0).value(), 1796083200000);
    EXPECT_EQ(common::parse_time_arg("2026-12-01T06:30", 0).value(), 1796106600000);
    EXPECT_EQ(common::parse_time_arg("2026-12-01T06:30Z", 0).value(), 1796106600000);
    EXPECT_EQ(common::parse_time_arg("2026-12-01T06:30:15Z", 0).value(), 1796106615000);
    EXPECT_EQ(common::parse_time_arg("2024-02-29", 0).value(), 1709164800000);
    EXPECT_EQ(common::parse_time_arg("1796083200000", 0).value(), 1796083200000);
    EXPECT_EQ(common::parse_time_arg("now", 42).value(), 42);
    EXPECT_EQ(common::parse_time_arg("-2h", 10'000'000).value(), 10'000'000 - 7'200'000);
    for (const char* bad :
         {"", "2026-02-30", "2025-02-29", "2026-13-01", "2026-12-01T24:00",
          "2026-12-01T06:30+01:00", "2026-12-1", "yesterday", "-2x", "1234567890123456"}) {
        auto r = common::parse_time_arg(bad, 0);
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.error().message.find("is not a time"), std::string::npos) << bad;
    }
}

TEST(AnalystConfig, DefaultsResolveAgainstTheFileAndUnknownKeysAreErrors) {
    TempDir dir;
    {
        std::ofstream(dir / "analyst.toml") << "[server]\nurl = \"https://h:1\"\n"
                                               "[keys]\nprivate_key = \"k/a.pem\"\n"
                                               "[budget]\nepsilon = \"2.5\"\ndays = 7\n";
    }
    auto c = load_analyst_config(dir / "analyst.toml", false);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c.value().server_url, "https://h:1");
    EXPECT_EQ(c.value().private_key, (dir.path() / "k/a.pem").string());
    EXPECT_EQ(c.value().token_file, (dir.path() / "analyst.token").string());
    EXPECT_EQ(c.value().budget_milli, 2500u);
    EXPECT_EQ(c.value().budget_days, 7);

    { std::ofstream(dir / "bad.toml") << "[keys]\nprivat_key = \"x\"\n"; }
    auto bad = load_analyst_config(dir / "bad.toml", false);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("unknown key 'privat_key' in [keys]"), std::string::npos);
    { std::ofstream(dir / "eps.toml") << "[budget]\nepsilon = \"0\"\n"; }
    EXPECT_FALSE(load_analyst_config(dir / "eps.toml", false));
    EXPECT_FALSE(load_analyst_config(dir / "missing.toml", false));
    EXPECT_TRUE(load_analyst_config(dir / "missing.toml", true));
}

json sample_release(const std::string& id, const std::string& hash) {
    return {{"v", "cipherpulse-release/1"},
            {"query", id},
            {"hash", hash},
            {"released_ms", 1796083200000},
            {"cohort", "ward, 3"},
            {"metric", "hr"},
            {"from_ms", 1764460800000},
            {"to_ms", 1796083200000},
            {"cohort_size", 12},
            {"patients_with_data", 11},
            {"epsilon", "1"},
            {"noise", "discrete-laplace"},
            {"cap_records", 17280},
            {"record_seconds", 5},
            {"figures", json::array({{{"statistic", "count"},
                                      {"name", "samples"},
                                      {"unit", "samples"},
                                      {"value", 950400},
                                      {"interval95", {950000, 950800}},
                                      {"scale", "t=172800"}},
                                     {{"statistic", "mean"},
                                      {"name", "mean_bpm"},
                                      {"unit", "bpm"},
                                      {"value", 71.25},
                                      {"interval95", {70.5, 72.0}},
                                      {"scale", "t=1, t=2"}},
                                     {{"statistic", "sd"},
                                      {"name", "sd_bpm"},
                                      {"unit", "bpm"},
                                      {"value", nullptr},
                                      {"interval95", nullptr},
                                      {"scale", nullptr}}})}};
}

class ReleaseOpen : public ::testing::Test {
  protected:
    X25519PrivateKey analyst_ = X25519PrivateKey::generate();
    Ed25519PrivateKey identity_ = Ed25519PrivateKey::generate();
    std::string hash_ = std::string(64, 'a');

    std::string seal(const std::string& header, const json& release) {
        return seal_envelope(header, release.dump(), analyst_.public_key(), identity_);
    }
    // open_q1 opens q_1's release sealed by `sender` to `recipient` as this analyst.
    Result<json> open_q1(const Ed25519PrivateKey& sender, const X25519PublicKey& recipient) {
        return open_release(seal_envelope(R"({"query":"q_1"})", sample_release("q_1", hash_).dump(),
                                          recipient, sender),
                            "q_1", hash_, analyst_, identity_.public_key());
    }
};

TEST_F(ReleaseOpen, OpensTheReleaseOfExactlyThisQueryAndHash) {
    const auto env = seal(R"({"query":"q_1"})", sample_release("q_1", hash_));
    auto r = open_release(env, "q_1", hash_, analyst_, identity_.public_key());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r.value()["figures"][1]["value"], 71.25);
}

TEST_F(ReleaseOpen, RefusesAnotherQueryAnotherHashAnotherSenderOrAnotherRecipient) {
    // The server hands out q_1's release as q_2's: the header names q_1.
    auto swapped = open_release(seal(R"({"query":"q_1"})", sample_release("q_1", hash_)), "q_2",
                                hash_, analyst_, identity_.public_key());
    ASSERT_FALSE(swapped);
    EXPECT_NE(swapped.error().message.find("not the result of query q_2"), std::string::npos);
    // A header that names q_2 over a plaintext of q_1 (only the decryptor could seal it).
    auto inner = open_release(seal(R"({"query":"q_2"})", sample_release("q_1", hash_)), "q_2",
                              hash_, analyst_, identity_.public_key());
    ASSERT_FALSE(inner);
    EXPECT_NE(inner.error().message.find("names query q_1"), std::string::npos);
    // The document the server shows now is not the one the release was made for.
    auto rehashed = open_release(seal(R"({"query":"q_1"})", sample_release("q_1", hash_)), "q_1",
                                 std::string(64, 'b'), analyst_, identity_.public_key());
    ASSERT_FALSE(rehashed);
    EXPECT_NE(rehashed.error().message.find("not the hash of the query document"),
              std::string::npos);
    // Sealed by someone else (the server with its own key).
    const auto server = Ed25519PrivateKey::generate();
    auto forged = open_q1(server, analyst_.public_key());
    ASSERT_FALSE(forged);
    EXPECT_EQ(forged.error().code, ErrorCode::kBadSignature);
    // Sealed to another analyst.
    const auto other = X25519PrivateKey::generate();
    auto elsewhere = open_q1(identity_, other.public_key());
    ASSERT_FALSE(elsewhere);
    EXPECT_EQ(elsewhere.error().code, ErrorCode::kInvalidKey);
}

TEST(ReleaseRender, CsvHasOneRowPerFigureWithExactNumbersAndQuotedCells) {
    std::ostringstream csv;
    render_release(sample_release("q_1", "h"), "csv", csv);
    EXPECT_EQ(csv.str(),
              "figure,statistic,value,unit,interval95_low,interval95_high,scale\n"
              "samples,count,950400,samples,950000,950800,t=172800\n"
              "mean_bpm,mean,71.25,bpm,70.5,72,\"t=1, t=2\"\n"
              "sd_bpm,sd,,bpm,,,\n");
    std::ostringstream table;
    render_release(sample_release("q_1", "h"), "table", table);
    const std::string t = table.str();
    EXPECT_NE(t.find("cohort 'ward, 3', 12 members, 11 with data"), std::string::npos) << t;
    EXPECT_NE(t.find("epsilon 1, discrete Laplace noise"), std::string::npos) << t;
    EXPECT_NE(t.find("[70.5, 72]"), std::string::npos) << t;
    EXPECT_NE(t.find("capped at 17280 records"), std::string::npos) << t;
    EXPECT_EQ(number_text(950400), "950400");
    EXPECT_EQ(number_text(0.333333333), "0.333333");
}

}  // namespace
}  // namespace cipherpulse::analyst
