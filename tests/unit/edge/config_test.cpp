#include "edge/config.h"
#include "edge/runner.h"

#include <gtest/gtest.h>

#include <fstream>

#include "unit/test_support.h"

namespace cipherpulse::edge {
namespace {

using cipherpulse::testing::TempDir;

TEST(EdgeConfigTest, ExampleConfigLoads) {
    auto config = load_edge_config(cipherpulse::testing::repo_root() / "config/edge.toml");
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config.value().micro_window_ms, 5000);
    EXPECT_EQ(config.value().spool.on_full, SpoolOptions::OnFull::kDropOldest);
    EXPECT_EQ(config.value().filter.max_rr_change, 0.8);
    EXPECT_EQ(config.value().table_window_bits, 6u);
}

TEST(EdgeConfigTest, InitOutputRoundTripsAndPathsResolve) {
    TempDir dir;
    EdgeConfig c;
    c.device_id = "dev-9";
    c.server.url = "https://example.invalid:8443";
    std::ofstream(dir / "edge.toml") << edge_config_text(c);
    auto loaded = load_edge_config(dir / "edge.toml");
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    EXPECT_EQ(loaded.value().device_id, "dev-9");
    EXPECT_EQ(loaded.value().device_key, (dir / "device.pem").string());
}

TEST(EdgeConfigTest, MistakesAreErrors) {
    TempDir dir;
    for (const char* text :
         {"[device]\nid = \"d\"\n",                                   // no server url
          "[device]\nid = \"d\"\n[server]\nurl = \"u\"\nport = 1\n",  // unknown key
          "[device]\nid = \"d\"\n[server]\nurl = \"u\"\n[windows]\nmicro_window_s = 60\n",
          "[device]\nid = \"d\"\n[server]\nurl = \"u\"\n[spool]\non_full = \"drop-all\"\n",
          "[device]\nid = \"d\"\n[server]\nurl = \"u\"\n[source]\nkind = \"camera\"\n",
          "[device]\nid = \"d\"\n[server]\nurl = \"u\"\n[encryption]\ntable_window_bits = 12\n",
          "[mystery]\n", "not toml ["}) {
        std::ofstream(dir / "edge.toml") << text;
        EXPECT_FALSE(load_edge_config(dir / "edge.toml").ok()) << text;
    }
}

TEST(EdgeSourceTest, AcceleratedDataIsPlacedInThePast) {
    const std::int64_t now = 1'000'000'000;
    EXPECT_EQ(data_start_ms(now, 600'000, 1.0), now);
    EXPECT_EQ(data_start_ms(now, 600'000, 0.0), now - 600'000);
    // 10 min at 10x take 1 min: start 9 min back, the last reading is due exactly at the end.
    EXPECT_EQ(data_start_ms(now, 600'000, 10.0), now - 540'000);
    EdgeConfig c;
    c.source = "sim";
    c.speed = 10;
    EXPECT_FALSE(make_source(c, now).ok());  // endless and accelerated: refused
    c.duration_s = 60;
    auto source = make_source(c, now);
    ASSERT_TRUE(source.ok()) << source.error().message;
    auto first = source.value()->next();
    ASSERT_TRUE(first.has_value());
    EXPECT_GE(first->t_ms, now - 54'000);
    EXPECT_LT(first->t_ms, now - 50'000);
}

}  // namespace
}  // namespace cipherpulse::edge
