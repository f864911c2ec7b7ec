// Known-answer tests: vectors computed independently by tests/unit/kat/paillier_kat.py with
// Python's big integers (see tests/unit/kat/README.md).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cipherpulse/base64url.h"
#include "cipherpulse/paillier.h"
#include "unit/test_support.h"

namespace cipherpulse {
namespace {

nlohmann::json load_vectors() {
    auto path = testing::repo_root() / "tests/unit/kat/paillier_kat.json";
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error("cannot open " + path.string());
    }
    return nlohmann::json::parse(in);
}

BigInt dec(const nlohmann::json& v) {
    return BigInt::from_decimal(v.get<std::string>()).value();
}

class PaillierKat : public ::testing::TestWithParam<std::size_t> {
  protected:
    void SetUp() override {
        static const nlohmann::json all = load_vectors();
        ASSERT_LT(GetParam(), all["vectors"].size());
        v_ = all["vectors"][GetParam()];
        auto key = PrivateKey::from_primes(dec(v_["p"]), dec(v_["q"]), dec(v_["djn"]["hs"]),
                                           KeyPolicy::kAllowInsecureTestKeys);
        ASSERT_TRUE(key.ok()) << key.error().message;
        key_ = std::make_unique<PrivateKey>(std::move(key).value());
    }
    const PublicKey& pk() const { return key_->public_key(); }
    Ciphertext ct(const nlohmann::json& v) const {
        auto c = pk().validate_ciphertext(dec(v));
        EXPECT_TRUE(c.ok());
        return std::move(c).value();
    }

    nlohmann::json v_;
    std::unique_ptr<PrivateKey> key_;
};

TEST_P(PaillierKat, KeyEncodings) {
    EXPECT_EQ(pk().n(), dec(v_["n"]));
    EXPECT_EQ(pk().modulus_bits(), v_["bits"].get<std::size_t>());
    EXPECT_EQ(pk().n().to_base64url(), v_["n_b64u"].get<std::string>());
    EXPECT_EQ(pk().kid(), v_["kid"].get<std::string>());
}

TEST_P(PaillierKat, TextbookEncryptionAndDecryption) {
    for (const auto& t : v_["textbook"]) {
        Ciphertext c = pk().unsafe_encrypt_with_r(dec(t["m"]), dec(t["r"]));
        EXPECT_EQ(c.value(), dec(t["c"])) << "m=" << t["m"];
        EXPECT_EQ(pk().serialize_base64url(c), t["c_b64u"].get<std::string>());
        auto parsed = pk().parse_ciphertext_base64url(t["c_b64u"].get<std::string>());
        ASSERT_TRUE(parsed.ok());
        EXPECT_EQ(key_->decrypt(parsed.value()), dec(t["m"]));
        EXPECT_EQ(key_->decrypt_textbook(parsed.value()), dec(t["m"]));
        if (t.contains("signed")) {
            EXPECT_EQ(pk().decode_signed(key_->decrypt(parsed.value())), dec(t["signed"]));
            EXPECT_EQ(pk().encode_signed(dec(t["signed"])).value(), dec(t["m"]));
        }
    }
}

TEST_P(PaillierKat, DjnFastModeEncryption) {
    EXPECT_EQ(pk().hs(), dec(v_["djn"]["hs"]));
    for (const auto& t : v_["djn"]["cases"]) {
        BigInt randomizer = pk().unsafe_djn_randomizer(dec(t["a"]));
        Ciphertext c = pk().encrypt_with_randomizer(dec(t["m"]), randomizer);
        EXPECT_EQ(c.value(), dec(t["c"])) << "m=" << t["m"];
        EXPECT_EQ(key_->decrypt(c), dec(t["m"]));
    }
}

TEST_P(PaillierKat, HomomorphicOperations) {
    for (const auto& t : v_["add"]) {
        Ciphertext c = pk().add(ct(t["c1"]), ct(t["c2"]));
        EXPECT_EQ(c.value(), dec(t["c"]));
        EXPECT_EQ(key_->decrypt(c), dec(t["m"]));
    }
    for (const auto& t : v_["add_plain"]) {
        Ciphertext c = pk().add_plain(ct(t["c1"]), dec(t["m2"]));
        EXPECT_EQ(c.value(), dec(t["c"]));
        EXPECT_EQ(key_->decrypt(c), dec(t["m"]));
    }
    for (const auto& t : v_["scalar"]) {
        Ciphertext c = pk().multiply(ct(t["c1"]), dec(t["k"]));
        EXPECT_EQ(c.value(), dec(t["c"])) << "k=" << t["k"];
        EXPECT_EQ(key_->decrypt(c), dec(t["m"]));
    }
}

TEST_P(PaillierKat, InvalidCiphertextsAreRefused) {
    for (const auto& t : v_["invalid_ciphertexts"]) {
        auto r = pk().validate_ciphertext(dec(t["c"]));
        EXPECT_FALSE(r.ok()) << t["why"];
        BigInt value = dec(t["c"]);
        if (value.bit_length() <= pk().ciphertext_bytes() * 8) {
            auto wire = base64url_encode(value.to_fixed_bytes(pk().ciphertext_bytes()));
            EXPECT_FALSE(pk().parse_ciphertext_base64url(wire).ok()) << t["why"];
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Vectors, PaillierKat, ::testing::Values(0u, 1u, 2u),
                         [](const ::testing::TestParamInfo<std::size_t>& p) {
                             return "vector" + std::to_string(p.param);
                         });

}  // namespace
}  // namespace cipherpulse
