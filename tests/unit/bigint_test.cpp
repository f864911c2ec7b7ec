#include "cipherpulse/bigint.h"

#include <gtest/gtest.h>

#include "cipherpulse/paillier.h"
#include "cipherpulse/secure.h"

namespace cipherpulse {
namespace {

TEST(BigIntTest, DecimalRoundTripAndErrors) {
    auto v = BigInt::from_decimal("-123456789012345678901234567890");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v.value().to_decimal(), "-123456789012345678901234567890");
    EXPECT_EQ(v.value().sign(), -1);
    for (const char* bad : {"", "-", "+5", "12a", " 1", "1 ", "0x10", "1e5"}) {
        EXPECT_FALSE(BigInt::from_decimal(bad).ok()) << bad;
    }
}

TEST(BigIntTest, BytesAreUnsignedBigEndian) {
    BigInt v = BigInt::from_u64(0x0102030405ull);
    EXPECT_EQ(v.to_bytes(), (std::vector<std::uint8_t>{1, 2, 3, 4, 5}));
    EXPECT_EQ(v.to_fixed_bytes(7), (std::vector<std::uint8_t>{0, 0, 1, 2, 3, 4, 5}));
    EXPECT_THROW((void)v.to_fixed_bytes(4), std::length_error);
    EXPECT_TRUE(BigInt(0).to_bytes().empty());
    EXPECT_EQ(BigInt(0).to_fixed_bytes(3), (std::vector<std::uint8_t>{0, 0, 0}));
    EXPECT_THROW((void)BigInt(-1).to_bytes(), std::domain_error);
    const std::uint8_t leading_zero[] = {0, 0, 9};
    EXPECT_EQ(BigInt::from_bytes(leading_zero), BigInt(9));
}

TEST(BigIntTest, Base64UrlMatchesJwkConvention) {
    // 65537 is "AQAB" in every RSA JWK.
    EXPECT_EQ(BigInt(65537).to_base64url(), "AQAB");
    auto back = BigInt::from_base64url("AQAB");
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back.value(), BigInt(65537));
    EXPECT_FALSE(BigInt::from_base64url("AQAB=").ok());
}

TEST(BigIntTest, U64Limits) {
    BigInt max = BigInt::from_u64(~0ull);
    EXPECT_TRUE(max.fits_u64());
    EXPECT_EQ(max.to_u64(), ~0ull);
    BigInt over;
    mpz_add_ui(over.get(), max.get(), 1);
    EXPECT_FALSE(over.fits_u64());
    EXPECT_THROW((void)over.to_u64(), std::out_of_range);
    EXPECT_EQ(over.bit_length(), 65u);
}

TEST(BigIntTest, MovedFromIsZeroAndUsable) {
    BigInt a(42);
    BigInt b(std::move(a));
    EXPECT_EQ(b, BigInt(42));
    EXPECT_EQ(a, BigInt(0));  // NOLINT: a moved-from BigInt is a valid zero
    a = BigInt(7);
    EXPECT_EQ(a, BigInt(7));
}

TEST(SecureTest, ConstantTimeEqual) {
    EXPECT_TRUE(constant_time_equal(std::string_view("token-a"), std::string_view("token-a")));
    EXPECT_FALSE(constant_time_equal(std::string_view("token-a"), std::string_view("token-b")));
    EXPECT_FALSE(constant_time_equal(std::string_view("token"), std::string_view("token-a")));
    EXPECT_TRUE(constant_time_equal(std::string_view(""), std::string_view("")));
}

TEST(SecureTest, Sha256KnownAnswer) {
    // FIPS 180-2 example "abc".
    const std::uint8_t abc[] = {'a', 'b', 'c'};
    auto d = sha256(abc);
    EXPECT_EQ(d[0], 0xba);
    EXPECT_EQ(d[1], 0x78);
    EXPECT_EQ(d[31], 0xad);
}

TEST(SecureTest, SecretBytesWipesOnMove) {
    SecretBytes a(std::string_view("secret"));
    SecretBytes b = std::move(a);
    EXPECT_EQ(b.size(), 6u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data()), b.size()), "secret");
    static_assert(!std::is_copy_constructible_v<SecretBytes>);
}

TEST(SecureTest, GmpUsesWipingAllocator) {
    // Loading the library installs it; a key operation makes sure of it.
    (void)PrivateKey::generate_insecure_for_tests(256);
    EXPECT_TRUE(secure_gmp_allocator_installed());
}

}  // namespace
}  // namespace cipherpulse
