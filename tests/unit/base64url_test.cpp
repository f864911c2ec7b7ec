#include "cipherpulse/base64url.h"

#include <gtest/gtest.h>

namespace cipherpulse {
namespace {

std::string decode_to_string(std::string_view text) {
    auto bytes = base64url_decode(text);
    EXPECT_TRUE(bytes.ok()) << text;
    return std::string(bytes.value().begin(), bytes.value().end());
}

// RFC 4648 section 10 vectors, with padding removed as base64url-without-padding requires.
TEST(Base64UrlTest, Rfc4648Vectors) {
    EXPECT_EQ(base64url_encode(std::string_view("")), "");
    EXPECT_EQ(base64url_encode(std::string_view("f")), "Zg");
    EXPECT_EQ(base64url_encode(std::string_view("fo")), "Zm8");
    EXPECT_EQ(base64url_encode(std::string_view("foo")), "Zm9v");
    EXPECT_EQ(base64url_encode(std::string_view("foob")), "Zm9vYg");
    EXPECT_EQ(base64url_encode(std::string_view("fooba")), "Zm9vYmE");
    EXPECT_EQ(base64url_encode(std::string_view("foobar")), "Zm9vYmFy");
    EXPECT_EQ(decode_to_string("Zm9vYmFy"), "foobar");
    EXPECT_EQ(decode_to_string("Zm9vYg"), "foob");
    EXPECT_EQ(decode_to_string(""), "");
}

TEST(Base64UrlTest, UsesUrlSafeAlphabet) {
    const std::uint8_t bytes[] = {0xfb, 0xff, 0xbf};
    EXPECT_EQ(base64url_encode(bytes), "-_-_");
    auto back = base64url_decode("-_-_");
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back.value(), std::vector<std::uint8_t>(std::begin(bytes), std::end(bytes)));
}

TEST(Base64UrlTest, RefusesMalformedInput) {
    // "Zh" and "Zm9" set unused trailing bits: "Zg" and "Zm8" are the canonical forms.
    for (const char* bad : {"Zg==", "Zm9v+", "Zm9v/", "Zm 9v", "Z", "Zm9vY", "Zh", "Zm9", "\n"}) {
        auto r = base64url_decode(bad);
        EXPECT_FALSE(r.ok()) << bad;
        if (!r.ok()) {
            EXPECT_EQ(r.error().code, ErrorCode::kInvalidEncoding);
        }
    }
}

TEST(Base64UrlTest, RoundTripsEveryLength) {
    std::vector<std::uint8_t> data;
    for (int i = 0; i < 70; ++i) {
        auto back = base64url_decode(base64url_encode(data));
        ASSERT_TRUE(back.ok());
        EXPECT_EQ(back.value(), data);
        data.push_back(static_cast<std::uint8_t>(i * 37 + 11));
    }
}

}  // namespace
}  // namespace cipherpulse

namespace cipherpulse {
namespace {

// RFC 4648 section 10, standard alphabet with padding.
TEST(Base64Test, Rfc4648VectorsWithPadding) {
    auto enc = [](std::string_view s) {
        return base64_encode(std::span<const std::uint8_t>(
            reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
    };
    EXPECT_EQ(enc(""), "");
    EXPECT_EQ(enc("f"), "Zg==");
    EXPECT_EQ(enc("fo"), "Zm8=");
    EXPECT_EQ(enc("foo"), "Zm9v");
    EXPECT_EQ(enc("foob"), "Zm9vYg==");
    EXPECT_EQ(enc("fooba"), "Zm9vYmE=");
    EXPECT_EQ(enc("foobar"), "Zm9vYmFy");
    const std::uint8_t bytes[] = {0xfb, 0xff, 0xbf};
    EXPECT_EQ(base64_encode(bytes), "+/+/");
    auto back = base64_decode("Zm9vYmE=");
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(std::string(back.value().begin(), back.value().end()), "fooba");
    for (const char* bad : {"Zg", "Zg=", "Zg===", "Zh==", "Zm9v-_==", "Z===", "Zm9v\n", "=Zm9"}) {
        EXPECT_FALSE(base64_decode(bad).ok()) << bad;
    }
}

}  // namespace
}  // namespace cipherpulse
