#include "server/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "unit/test_support.h"

namespace cipherpulse::server {
namespace {

using testing::TempDir;

std::filesystem::path write(const TempDir& dir, const std::string& text) {
    auto path = dir / "server.toml";
    std::ofstream(path) << text;
    return path;
}

TEST(ServerConfigTest, Granularities) {
    EXPECT_EQ(parse_granularity("1m").value().length_ms, 60000);
    EXPECT_EQ(parse_granularity("30s").value().length_ms, 30000);
    EXPECT_EQ(parse_granularity("1h").value().length_ms, 3600000);
    EXPECT_EQ(parse_granularity("2d").value().length_ms, 2 * 86400000LL);
    for (const char* bad : {"", "m", "7m", "1x", "1.5h", "-1m", "0s", "1mm"}) {
        EXPECT_FALSE(parse_granularity(bad).ok()) << bad;
    }
    // Default grace: a tenth of the window, at least 5 s, at most 10 min.
    EXPECT_EQ(parse_granularity("1m").value().seal_grace_ms, 6000);
    EXPECT_EQ(parse_granularity("30s").value().seal_grace_ms, 5000);
    EXPECT_EQ(parse_granularity("1d").value().seal_grace_ms, 600000);
}

TEST(ServerConfigTest, ExampleConfigLoads) {
    auto config = load_server_config(testing::repo_root() / "config/server.toml");
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config.value().granularities.size(), 3u);
}

TEST(ServerConfigTest, ValuesAndRelativePaths) {
    TempDir dir;
    auto path = write(dir, R"(
[server]
listen = "127.0.0.1:9000"
max_records_per_batch = 500
[storage]
database = "data/cp.db"
synchronous = "FULL"
[ingest]
granularities = ["1m", "1h"]
seal_grace_s = { "1m" = 20 }
min_records = { "1h" = 30 }
)");
    auto c = load_server_config(path);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c.value().listen_port, 9000);
    EXPECT_EQ(c.value().max_records_per_batch, 500u);
    EXPECT_EQ(c.value().synchronous, "FULL");
    EXPECT_EQ(c.value().database, (dir / "data/cp.db").string());
    ASSERT_EQ(c.value().granularities.size(), 2u);
    EXPECT_EQ(c.value().granularities[0].seal_grace_ms, 20000);
    EXPECT_EQ(c.value().granularities[1].min_records, 30);
}

TEST(ServerConfigTest, MistakesAreErrors) {
    TempDir dir;
    for (const char* text :
         {"[server]\nlisen = \"x:1\"\n", "[server]\nthreads = \"many\"\n",
          "[storage]\nsynchronous = \"OFF\"\n", "[ingest]\ngranularities = [\"7m\"]\n",
          "[ingest]\nseal_grace_s = { \"5m\" = 1 }\n", "[nonsense]\n", "not toml [",
          // Retention shorter than the accepted record age would forget sequence numbers.
          "[storage]\nretention_days = 3\n"}) {
        auto c = load_server_config(write(dir, text));
        EXPECT_FALSE(c.ok()) << text;
    }
}

}  // namespace
}  // namespace cipherpulse::server
