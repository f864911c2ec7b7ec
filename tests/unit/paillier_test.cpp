#include "cipherpulse/paillier.h"

#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <ostream>
#include <thread>
#include <type_traits>

#include "cipherpulse/base64url.h"
#include "unit/test_support.h"

namespace cipherpulse {
namespace {

using testing::test_key;

BigInt big(const char* decimal) {
    return BigInt::from_decimal(decimal).value();
}

BigInt mod_n(const BigInt& v, const PublicKey& pk) {
    BigInt out;
    mpz_mod(out.get(), v.get(), pk.n().get());
    return out;
}

// A stream operator for PrivateKey must not exist: secrets are never printable.
template <class T, class = void>
struct IsStreamable : std::false_type {};
template <class T>
struct IsStreamable<T, std::void_t<decltype(std::declval<std::ostream&>() << std::declval<T>())>>
    : std::true_type {};

static_assert(!std::is_copy_constructible_v<PrivateKey>);
static_assert(!std::is_copy_assignable_v<PrivateKey>);
static_assert(std::is_nothrow_move_constructible_v<PrivateKey>);
static_assert(!IsStreamable<const PrivateKey&>::value);

class PaillierSizes : public ::testing::TestWithParam<std::size_t> {};

TEST_P(PaillierSizes, RoundTripEveryMode) {
    const PrivateKey& key = test_key(GetParam());
    const PublicKey& pk = key.public_key();
    BigInt n_minus_1;
    mpz_sub_ui(n_minus_1.get(), pk.n().get(), 1);
    for (const BigInt& m : {BigInt(0), BigInt(1), BigInt(72), BigInt::from_u64(~0ull), n_minus_1}) {
        for (auto mode : {EncryptionMode::kTextbook, EncryptionMode::kFast}) {
            Ciphertext c = pk.encrypt(m, mode);
            EXPECT_EQ(key.decrypt(c), m);
            EXPECT_EQ(key.decrypt_textbook(c), m);
            // Wire round trip keeps the fixed length.
            auto bytes = pk.serialize(c);
            EXPECT_EQ(bytes.size(), pk.ciphertext_bytes());
            auto parsed = pk.parse_ciphertext(bytes);
            ASSERT_TRUE(parsed.ok());
            EXPECT_EQ(parsed.value(), c);
        }
    }
}

TEST_P(PaillierSizes, EncryptionIsRandomized) {
    const PublicKey& pk = test_key(GetParam()).public_key();
    EXPECT_FALSE(pk.encrypt(BigInt(5), EncryptionMode::kFast) ==
                 pk.encrypt(BigInt(5), EncryptionMode::kFast));
    EXPECT_FALSE(pk.encrypt(BigInt(5), EncryptionMode::kTextbook) ==
                 pk.encrypt(BigInt(5), EncryptionMode::kTextbook));
}

TEST_P(PaillierSizes, HomomorphicIdentities) {
    const PrivateKey& key = test_key(GetParam());
    const PublicKey& pk = key.public_key();
    BigInt a = big("123456789"), b = big("987654321");
    Ciphertext ca = pk.encrypt(a), cb = pk.encrypt(b);
    EXPECT_EQ(key.decrypt(pk.add(ca, cb)), big("1111111110"));
    EXPECT_EQ(key.decrypt(pk.add_plain(ca, b)), big("1111111110"));
    EXPECT_EQ(key.decrypt(pk.multiply(ca, BigInt(72))), big("8888888808"));
    EXPECT_EQ(key.decrypt(pk.multiply(ca, BigInt(0))), BigInt(0));
    // Negative scalar: -3 * a is n - 3a.
    EXPECT_EQ(pk.decode_signed(key.decrypt(pk.multiply(ca, BigInt(-3)))), big("-370370367"));
    Ciphertext acc = ca;
    pk.add_in_place(acc, cb);
    EXPECT_EQ(key.decrypt(acc), big("1111111110"));
    Ciphertext fresh = pk.rerandomize(ca);
    EXPECT_FALSE(fresh == ca);
    EXPECT_EQ(key.decrypt(fresh), a);
    // Wrap-around modulo n.
    BigInt n_minus_1;
    mpz_sub_ui(n_minus_1.get(), pk.n().get(), 1);
    EXPECT_EQ(key.decrypt(pk.add(pk.encrypt(n_minus_1), pk.encrypt(BigInt(2)))), BigInt(1));
}

TEST_P(PaillierSizes, SumOfManyMatchesSequentialAdds) {
    const PrivateKey& key = test_key(GetParam());
    const PublicKey& pk = key.public_key();
    // Above the parallel threshold, so the threaded path is exercised.
    std::vector<Ciphertext> cs;
    BigInt expected(0);
    BigInt r = pk.make_randomizer(EncryptionMode::kFast);
    for (long i = 0; i < 2500; ++i) {
        BigInt m(i * 7919 % 100003);
        cs.push_back(pk.encrypt_with_randomizer(m, r));  // randomizer reuse is fine for a test
        mpz_add(expected.get(), expected.get(), m.get());
    }
    Ciphertext total = pk.sum(cs);
    EXPECT_EQ(key.decrypt(total), mod_n(expected, pk));
    Ciphertext seq = cs[0];
    for (std::size_t i = 1; i < cs.size(); ++i) {
        pk.add_in_place(seq, cs[i]);
    }
    EXPECT_EQ(total, seq);
    EXPECT_EQ(key.decrypt(pk.sum({})), BigInt(0));
    EXPECT_EQ(pk.sum({}).value(), BigInt(1));
}

TEST_P(PaillierSizes, LinearCombinationMatchesPlainArithmetic) {
    const PrivateKey& key = test_key(GetParam());
    const PublicKey& pk = key.public_key();
    // Weights of both signs, zero, one, and different bit lengths (the shared squarings
    // must line up the shorter exponents); plaintexts include 0 and n - 1 (i.e. -1).
    BigInt n_minus_1;
    mpz_sub_ui(n_minus_1.get(), pk.n().get(), 1);
    const std::vector<BigInt> ms = {BigInt(7),       BigInt(0),  BigInt(123456), n_minus_1,
                                    BigInt(1),       BigInt(99), BigInt(65535),  BigInt(3)};
    const std::vector<BigInt> ws = {BigInt(131071), BigInt(-5), BigInt(-70000), BigInt(3),
                                    BigInt(0),      BigInt(1),  BigInt(-1),     BigInt(1) };
    std::vector<Ciphertext> cs;
    BigInt expected(0);
    for (std::size_t i = 0; i < ms.size(); ++i) {
        cs.push_back(pk.encrypt(ms[i]));
        BigInt term;
        mpz_mul(term.get(), pk.decode_signed(ms[i]).get(), ws[i].get());
        mpz_add(expected.get(), expected.get(), term.get());
    }
    // 7*131071 + 123456*(-70000) + (-1)*3 + 99 - 65535 + 3 (worked out independently):
    EXPECT_EQ(expected, big("-8641067939"));
    Ciphertext combined = pk.linear_combination(cs, ws);
    EXPECT_EQ(pk.decode_signed(key.decrypt(combined)), expected);
    // The same ciphertext as the term-by-term product (no randomness is added).
    Ciphertext stepwise = pk.multiply(cs[0], ws[0]);
    for (std::size_t i = 1; i < cs.size(); ++i) {
        stepwise = pk.add(stepwise, pk.multiply(cs[i], ws[i]));
    }
    EXPECT_EQ(combined, stepwise);
    // All-zero weights: the trivial encryption of 0; no terms at all: the same.
    EXPECT_EQ(pk.linear_combination(cs, std::vector<BigInt>(cs.size())).value(), BigInt(1));
    EXPECT_EQ(pk.linear_combination({}, {}).value(), BigInt(1));
    EXPECT_THROW(pk.linear_combination(cs, std::vector<BigInt>(2)), std::invalid_argument);
}

TEST_P(PaillierSizes, SmallSignedDecryptionFromOneCrtHalf) {
    const PrivateKey& key = test_key(GetParam());
    const PublicKey& pk = key.public_key();
    const BigInt bound(1 << 25);
    for (long v : {0L, 1L, -1L, 33554432L, -33554432L, 14050258L, -7101894L}) {
        Ciphertext c = pk.encrypt(pk.encode_signed(BigInt(v)).value());
        auto small = key.decrypt_small_signed(c, bound);
        ASSERT_TRUE(small.has_value()) << v;
        EXPECT_EQ(*small, BigInt(v));
        EXPECT_EQ(pk.decode_signed(key.decrypt(c)), *small);
    }
    // Just beyond the bound either side, and a large plaintext: not a small value.
    for (long v : {33554433L, -33554433L}) {
        Ciphertext c = pk.encrypt(pk.encode_signed(BigInt(v)).value());
        EXPECT_FALSE(key.decrypt_small_signed(c, bound).has_value()) << v;
    }
    BigInt large;
    mpz_fdiv_q_2exp(large.get(), pk.n().get(), 3);
    EXPECT_FALSE(key.decrypt_small_signed(pk.encrypt(large), bound).has_value());
    EXPECT_THROW((void)key.decrypt_small_signed(pk.encrypt(BigInt(1)), pk.n()),
                 std::invalid_argument);
    EXPECT_THROW((void)key.decrypt_small_signed(pk.encrypt(BigInt(1)), BigInt(-1)),
                 std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Sizes, PaillierSizes, ::testing::Values(256u, 512u, 1024u),
                         [](const ::testing::TestParamInfo<std::size_t>& p) {
                             return "n" + std::to_string(p.param);
                         });

TEST(PaillierTest, ProductionSizeRoundTrip) {
    PrivateKey key = PrivateKey::generate(2048);
    const PublicKey& pk = key.public_key();
    EXPECT_EQ(pk.modulus_bits(), 2048u);
    EXPECT_EQ(pk.ciphertext_bytes(), 512u);
    BigInt m = big("98765432109876543210");
    EXPECT_EQ(key.decrypt(pk.encrypt(m, EncryptionMode::kFast)), m);
    EXPECT_EQ(key.decrypt(pk.encrypt(m, EncryptionMode::kTextbook)), m);
}

TEST(PaillierTest, KeygenRefusesSmallOrOddSizes) {
    EXPECT_THROW((void)PrivateKey::generate(1024), std::invalid_argument);
    EXPECT_THROW((void)PrivateKey::generate(2049), std::invalid_argument);
    EXPECT_THROW((void)PrivateKey::generate_insecure_for_tests(64), std::invalid_argument);
}

TEST(PaillierTest, KeygenReportsProgress) {
    int primes_found = 0;
    int candidates = 0;
    bool checked = false;
    // 2048 is the smallest size the progress-reporting API accepts.
    PrivateKey key = PrivateKey::generate(2048, [&](const KeygenEvent& e) {
        primes_found += e.kind == KeygenEvent::Kind::kPrimeFound;
        candidates += e.kind == KeygenEvent::Kind::kCandidate;
        checked |= e.kind == KeygenEvent::Kind::kKeyChecked;
    });
    EXPECT_GE(primes_found, 2);
    EXPECT_GE(candidates, 2);
    EXPECT_TRUE(checked);
}

TEST(PaillierTest, GeneratedPrimesHaveEqualLengthAndLargeGap) {
    const PrivateKey& key = test_key(1024);
    auto doc = key.to_json();
    auto again = PrivateKey::from_json(doc.span(), KeyPolicy::kAllowInsecureTestKeys);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again.value().public_key(), key.public_key());
    EXPECT_EQ(key.public_key().n().bit_length(), 1024u);
}

TEST(PaillierTest, RejectsInvalidCiphertexts) {
    const PrivateKey& key = test_key(512);
    const PublicKey& pk = key.public_key();
    auto expect_refused = [&](const BigInt& c, ErrorCode code) {
        auto r = pk.validate_ciphertext(c);
        ASSERT_FALSE(r.ok()) << c.to_decimal();
        EXPECT_EQ(r.error().code, code);
    };
    expect_refused(BigInt(0), ErrorCode::kOutOfRange);
    expect_refused(BigInt(-5), ErrorCode::kOutOfRange);
    expect_refused(pk.n_squared(), ErrorCode::kOutOfRange);
    BigInt above;
    mpz_add_ui(above.get(), pk.n_squared().get(), 1);
    expect_refused(above, ErrorCode::kOutOfRange);
    expect_refused(pk.n(), ErrorCode::kOutOfRange);  // shares every factor with n
    BigInt multiple_of_n;
    mpz_mul_ui(multiple_of_n.get(), pk.n().get(), 7);
    expect_refused(multiple_of_n, ErrorCode::kOutOfRange);

    // Wire forms: wrong length, bad base64url, padding.
    auto good = pk.serialize_base64url(pk.encrypt(BigInt(3)));
    EXPECT_TRUE(pk.parse_ciphertext_base64url(good).ok());
    auto short_bytes = std::vector<std::uint8_t>(pk.ciphertext_bytes() - 1, 1);
    auto r = pk.parse_ciphertext(short_bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidLength);
    auto long_bytes = std::vector<std::uint8_t>(pk.ciphertext_bytes() + 1, 1);
    EXPECT_FALSE(pk.parse_ciphertext(long_bytes).ok());
    auto bad = pk.parse_ciphertext_base64url(good.substr(0, good.size() - 1) + "=");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, ErrorCode::kInvalidEncoding);
    EXPECT_FALSE(pk.parse_ciphertext_base64url(good.substr(1)).ok());
    EXPECT_FALSE(pk.parse_ciphertext_base64url("not base64!").ok());
    EXPECT_FALSE(pk.parse_ciphertext_base64url(std::string(100000, 'A')).ok());
    // All-zero bytes of the right length are the integer 0.
    EXPECT_FALSE(pk.parse_ciphertext(std::vector<std::uint8_t>(pk.ciphertext_bytes(), 0)).ok());
}

TEST(PaillierTest, BatchParsingMatchesSingleParsing) {
    const PrivateKey& key = test_key(512);
    const PublicKey& pk = key.public_key();
    std::vector<std::string> texts;
    for (long m = 0; m < 5; ++m) {
        texts.push_back(pk.serialize_base64url(pk.encrypt(BigInt(m))));
    }
    texts.push_back(base64url_encode(pk.n().to_fixed_bytes(pk.ciphertext_bytes())));  // not a unit
    texts.push_back("AA=");                                                           // encoding
    texts.push_back(base64url_encode(std::vector<std::uint8_t>(7, 1)));               // length
    texts.push_back(base64url_encode(pk.n_squared().to_fixed_bytes(pk.ciphertext_bytes())));
    std::vector<std::string_view> views(texts.begin(), texts.end());
    std::vector<std::vector<std::uint8_t>> bytes;
    auto parsed = pk.parse_ciphertexts_base64url(views, &bytes);
    ASSERT_EQ(parsed.size(), texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
        auto single = pk.parse_ciphertext_base64url(texts[i]);
        ASSERT_EQ(parsed[i].ok(), single.ok()) << i;
        if (single.ok()) {
            EXPECT_EQ(parsed[i].value(), single.value());
            EXPECT_EQ(bytes[i], pk.serialize(single.value()));
            EXPECT_EQ(key.decrypt(parsed[i].value()), BigInt(static_cast<long>(i)));
        } else {
            EXPECT_EQ(parsed[i].error().code, single.error().code) << i;
            EXPECT_TRUE(bytes[i].empty());
        }
    }
    // All valid: the single product gcd path.
    std::vector<std::string_view> good(views.begin(), views.begin() + 5);
    for (const auto& r : pk.parse_ciphertexts_base64url(good)) {
        EXPECT_TRUE(r.ok());
    }
}

TEST(PaillierTest, MixingKeysIsRefused) {
    const PrivateKey& a = test_key(512);
    const PrivateKey& b = test_key(1024);
    Ciphertext ca = a.public_key().encrypt(BigInt(1));
    Ciphertext cb = b.public_key().encrypt(BigInt(1));
    EXPECT_THROW((void)a.public_key().add(ca, cb), std::invalid_argument);
    EXPECT_THROW((void)b.decrypt(ca), std::invalid_argument);
    EXPECT_THROW((void)b.public_key().serialize(ca), std::invalid_argument);
}

TEST(PaillierTest, PlaintextRangeIsEnforced) {
    const PublicKey& pk = test_key(256).public_key();
    EXPECT_THROW((void)pk.encrypt(BigInt(-1)), std::out_of_range);
    EXPECT_THROW((void)pk.encrypt(pk.n()), std::out_of_range);
    EXPECT_FALSE(pk.check_plaintext(pk.n()).ok());
    EXPECT_TRUE(pk.check_plaintext(BigInt(0)).ok());
}

TEST(PaillierTest, SignedEncoding) {
    const PrivateKey& key = test_key(512);
    const PublicKey& pk = key.public_key();
    BigInt minus_five = pk.encode_signed(BigInt(-5)).value();
    BigInt expected;
    mpz_sub_ui(expected.get(), pk.n().get(), 5);
    EXPECT_EQ(minus_five, expected);
    EXPECT_EQ(pk.decode_signed(key.decrypt(pk.encrypt(minus_five))), BigInt(-5));
    // -5 + 12 = 7 homomorphically.
    Ciphertext sum = pk.add(pk.encrypt(minus_five), pk.encrypt(BigInt(12)));
    EXPECT_EQ(pk.decode_signed(key.decrypt(sum)), BigInt(7));
    BigInt too_big = pk.n();
    EXPECT_FALSE(pk.encode_signed(too_big).ok());
    BigInt half;
    mpz_sub_ui(half.get(), pk.n().get(), 1);
    mpz_fdiv_q_2exp(half.get(), half.get(), 1);
    EXPECT_TRUE(pk.encode_signed(half).ok());
    BigInt neg_half;
    mpz_neg(neg_half.get(), half.get());
    EXPECT_TRUE(pk.encode_signed(neg_half).ok());
    mpz_sub_ui(neg_half.get(), neg_half.get(), 1);
    EXPECT_FALSE(pk.encode_signed(neg_half).ok());
}

TEST(PaillierTest, FixedPointHelpers) {
    EXPECT_EQ(to_fixed_point(36.57, 2), BigInt(3657));
    EXPECT_EQ(to_fixed_point(-1.255, 1), BigInt(-13));
    EXPECT_EQ(to_fixed_point(0.0, 3), BigInt(0));
    EXPECT_DOUBLE_EQ(from_fixed_point(BigInt(3657), 2), 36.57);
    EXPECT_DOUBLE_EQ(from_fixed_point(BigInt(-125), 1), -12.5);
    EXPECT_THROW((void)to_fixed_point(std::nan(""), 2), std::domain_error);
    // Through encryption: 36.57 + (-1.2) = 35.37.
    const PrivateKey& key = test_key(512);
    const PublicKey& pk = key.public_key();
    auto a = pk.encode_signed(to_fixed_point(36.57, 2)).value();
    auto b = pk.encode_signed(to_fixed_point(-1.2, 2)).value();
    BigInt m = pk.decode_signed(key.decrypt(pk.add(pk.encrypt(a), pk.encrypt(b))));
    EXPECT_DOUBLE_EQ(from_fixed_point(m, 2), 35.37);
}

TEST(PaillierTest, PublicKeyJsonRoundTripAndChecks) {
    const PublicKey& pk = test_key(512).public_key();
    std::string doc = pk.to_json();
    EXPECT_NE(doc.find("\"kty\":\"Paillier\""), std::string::npos);
    EXPECT_EQ(doc.find("\"p\""), std::string::npos);
    auto back = PublicKey::from_json(doc, KeyPolicy::kAllowInsecureTestKeys);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back.value(), pk);
    EXPECT_EQ(back.value().kid(), pk.kid());
    // A 512-bit key is refused by the production policy.
    auto strict = PublicKey::from_json(doc);
    ASSERT_FALSE(strict.ok());
    EXPECT_EQ(strict.error().code, ErrorCode::kInvalidKey);
    // kid that does not match n.
    std::string wrong_kid = doc;
    wrong_kid.replace(wrong_kid.find(pk.kid()), 4, "AAAA");
    EXPECT_FALSE(PublicKey::from_json(wrong_kid, KeyPolicy::kAllowInsecureTestKeys).ok());
    // Not Paillier, not JSON, missing n, even n.
    EXPECT_FALSE(PublicKey::from_json(R"({"kty":"RSA","n":"AQAB"})").ok());
    EXPECT_FALSE(PublicKey::from_json("not json").ok());
    EXPECT_FALSE(PublicKey::from_json(R"({"kty":"Paillier"})").ok());
    BigInt even;
    mpz_add_ui(even.get(), pk.n().get(), 1);
    EXPECT_FALSE(
        PublicKey::from_modulus(even, std::nullopt, KeyPolicy::kAllowInsecureTestKeys).ok());
    // Without "hs" a key still encrypts in fast mode, with a locally derived base.
    auto plain = PublicKey::from_modulus(pk.n(), std::nullopt, KeyPolicy::kAllowInsecureTestKeys);
    ASSERT_TRUE(plain.ok());
    Ciphertext c = plain.value().encrypt(BigInt(99), EncryptionMode::kFast);
    auto same_key_c = pk.validate_ciphertext(c.value());
    ASSERT_TRUE(same_key_c.ok());
    EXPECT_EQ(test_key(512).decrypt(same_key_c.value()), BigInt(99));
}

TEST(PaillierTest, PrivateKeyFromPrimesAndJson) {
    const PrivateKey& key = test_key(512);
    SecretBytes doc = key.to_json();
    std::string text(reinterpret_cast<const char*>(doc.data()), doc.size());
    EXPECT_NE(text.find("\"p\""), std::string::npos);
    auto back = PrivateKey::from_json(doc.span(), KeyPolicy::kAllowInsecureTestKeys);
    ASSERT_TRUE(back.ok());
    Ciphertext c = key.public_key().encrypt(BigInt(4242));
    EXPECT_EQ(back.value().decrypt(c), BigInt(4242));
    // p and q alone (the way keys of other implementations are imported).
    auto parsed = nlohmann::json::parse(text);
    BigInt p = BigInt::from_base64url(parsed["p"].get<std::string>()).value();
    BigInt q = BigInt::from_base64url(parsed["q"].get<std::string>()).value();
    std::string minimal =
        R"({"kty":"Paillier","p":")" + p.to_base64url() + R"(","q":")" + q.to_base64url() + "\"}";
    auto imported = PrivateKey::from_json(
        std::span(reinterpret_cast<const std::uint8_t*>(minimal.data()), minimal.size()),
        KeyPolicy::kAllowInsecureTestKeys);
    ASSERT_TRUE(imported.ok());
    EXPECT_EQ(imported.value().public_key().n(), key.public_key().n());
    EXPECT_EQ(imported.value().public_key().kid(), key.public_key().kid());
    EXPECT_EQ(imported.value().decrypt(c), BigInt(4242));
    // Composite p, equal p and q are refused.
    BigInt composite;
    mpz_mul_ui(composite.get(), p.get(), 3);
    EXPECT_FALSE(
        PrivateKey::from_primes(composite, q, std::nullopt, KeyPolicy::kAllowInsecureTestKeys)
            .ok());
    EXPECT_FALSE(
        PrivateKey::from_primes(p, p, std::nullopt, KeyPolicy::kAllowInsecureTestKeys).ok());
    // Too small for production.
    EXPECT_FALSE(PrivateKey::from_primes(p, q).ok());
}

// The fixed-base table (8-bit windows below 3072 bits, 9-bit from 3072 on) must agree with a
// plain exponentiation for every exponent shape, including windows that straddle words.
TEST(PaillierTest, DjnTableMatchesPlainExponentiation) {
    PrivateKey big_key = PrivateKey::generate(3072);
    for (const PublicKey* pk : {&test_key(1024).public_key(), &big_key.public_key()}) {
        std::size_t e = (pk->modulus_bits() + 1) / 2;
        std::vector<BigInt> exponents = {BigInt(0),   BigInt(1),   BigInt(255),
                                         BigInt(256), BigInt(511), BigInt(512)};
        BigInt all_ones;
        mpz_setbit(all_ones.get(), e);
        mpz_sub_ui(all_ones.get(), all_ones.get(), 1);
        exponents.push_back(all_ones);
        BigInt top;
        mpz_setbit(top.get(), e - 1);
        exponents.push_back(top);
        BigInt word_edge;  // bits around 64 and 128, where 9-bit windows straddle words
        for (unsigned b : {62u, 63u, 64u, 65u, 126u, 127u, 128u, 129u}) {
            mpz_setbit(word_edge.get(), b);
        }
        exponents.push_back(word_edge);
        for (int i = 0; i < 4; ++i) {
            exponents.push_back(pk->make_randomizer(EncryptionMode::kTextbook));
            mpz_fdiv_r_2exp(exponents.back().get(), exponents.back().get(), e);
        }
        for (const BigInt& a : exponents) {
            BigInt expected;
            mpz_powm(expected.get(), pk->hs().get(), a.get(), pk->n_squared().get());
            EXPECT_EQ(pk->unsafe_djn_randomizer(a), expected)
                << pk->modulus_bits() << " bits, a=" << a.to_decimal();
        }
        BigInt too_long;
        mpz_setbit(too_long.get(), e);
        EXPECT_THROW((void)pk->unsafe_djn_randomizer(too_long), std::out_of_range);
    }
    BigInt m(987654321);
    EXPECT_EQ(big_key.decrypt(big_key.public_key().encrypt(m, EncryptionMode::kFast)), m);
    // Other table windows give the same randomizers for the same exponent.
    for (unsigned w : {4u, 6u, 10u}) {
        PublicKey small = test_key(1024).public_key().with_fast_table_window(w);
        BigInt a;
        mpz_setbit(a.get(), 300);
        mpz_setbit(a.get(), 7);
        BigInt expected;
        mpz_powm(expected.get(), small.hs().get(), a.get(), small.n_squared().get());
        EXPECT_EQ(small.unsafe_djn_randomizer(a), expected) << w;
        EXPECT_EQ(test_key(1024).decrypt(small.encrypt(m)), m);
    }
    EXPECT_THROW((void)big_key.public_key().with_fast_table_window(3), std::invalid_argument);
}

TEST(PaillierTest, DegenerateDjnBaseIsRefused) {
    const PrivateKey& key = test_key(512);
    const PublicKey& pk = key.public_key();
    BigInt minus_one;
    mpz_sub_ui(minus_one.get(), pk.n_squared().get(), 1);
    for (const BigInt& hs : {BigInt(1), minus_one}) {
        auto r = PublicKey::from_modulus(pk.n(), hs, KeyPolicy::kAllowInsecureTestKeys);
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().code, ErrorCode::kInvalidKey);
    }
    // 1 + n is not an n-th residue: fast mode with it would not decrypt correctly, and the
    // private key, which can tell, refuses it.
    auto doc = nlohmann::json::parse(
        std::string(reinterpret_cast<const char*>(key.to_json().data()), key.to_json().size()));
    BigInt p = BigInt::from_base64url(doc["p"].get<std::string>()).value();
    BigInt q = BigInt::from_base64url(doc["q"].get<std::string>()).value();
    BigInt g;
    mpz_add_ui(g.get(), pk.n().get(), 1);
    auto r = PrivateKey::from_primes(p, q, g, KeyPolicy::kAllowInsecureTestKeys);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("n-th residue"), std::string::npos);
    EXPECT_TRUE(PrivateKey::from_primes(p, q, pk.hs(), KeyPolicy::kAllowInsecureTestKeys).ok());
}

TEST(PaillierTest, ClosePrimesAreRefusedForProduction) {
    // Two 1024-bit primes next to each other: n is factored by Fermat's method at once.
    BigInt p;
    mpz_setbit(p.get(), 1023);
    mpz_setbit(p.get(), 1022);
    mpz_nextprime(p.get(), p.get());
    BigInt q;
    mpz_nextprime(q.get(), p.get());
    auto r = PrivateKey::from_primes(p, q);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("too close"), std::string::npos);
}

TEST(PaillierTest, KidIsSha256OfModulus) {
    const PublicKey& pk = test_key(512).public_key();
    EXPECT_EQ(pk.kid(), base64url_encode(sha256(pk.n().to_bytes())));
    EXPECT_EQ(pk.kid().size(), 43u);
}

TEST(PaillierTest, ConcurrentEncryptionAndDecryption) {
    const PrivateKey& key = test_key(512);
    const PublicKey& pk = key.public_key();
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (long i = 0; i < 50; ++i) {
                BigInt m(t * 1000 + i);
                if (key.decrypt(pk.encrypt(m)) != m) {
                    ++failures;
                }
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace cipherpulse
