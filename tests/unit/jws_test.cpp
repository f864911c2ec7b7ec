#include "cipherpulse/jws.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "cipherpulse/base64url.h"

namespace cipherpulse {
namespace {

// RFC 8037 appendix A.1 (the key) and A.4 (the JWS). The values match the RFC 8032 TEST 1
// key in hex and were checked against several independent JOSE test suites (Go, Python
// jwskate, PHP web-token, Haskell jose-jwt, .NET), none of them derived from this code.
constexpr char kRfc8037D[] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
constexpr char kRfc8037X[] = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
constexpr char kRfc8037Payload[] = "Example of Ed25519 signing";
constexpr char kRfc8037Jws[] =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

Ed25519PrivateKey rfc_private_key() {
    return Ed25519PrivateKey::from_raw_seed(base64url_decode(kRfc8037D).value()).value();
}

Ed25519PublicKey rfc_public_key() {
    return Ed25519PublicKey::from_raw(base64url_decode(kRfc8037X).value()).value();
}

// sign_with_header builds a compact JWS with an arbitrary protected header and a valid
// signature, so a refusal can only come from the header check, not from the signature.
std::string sign_with_header(std::string_view header_json, std::string_view payload,
                             const Ed25519PrivateKey& key) {
    std::string input = base64url_encode(header_json) + "." + base64url_encode(payload);
    return input + "." + base64url_encode(key.sign(input));
}

std::vector<std::string> split(const std::string& compact) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (std::size_t dot; (dot = compact.find('.', start)) != std::string::npos; start = dot + 1) {
        parts.push_back(compact.substr(start, dot - start));
    }
    parts.push_back(compact.substr(start));
    return parts;
}

void expect_refused(const std::string& compact, ErrorCode code,
                    const Ed25519PublicKey& key = rfc_public_key()) {
    auto result = jws_verify(compact, key);
    ASSERT_FALSE(result.ok()) << "accepted: " << compact.substr(0, 200);
    EXPECT_EQ(result.error().code, code)
        << error_code_name(result.error().code) << ": " << result.error().message;
    EXPECT_FALSE(result.error().message.empty());
}

TEST(JwsTest, Rfc8037KeyMatchesRfc8032Test1) {
    EXPECT_EQ(base64url_encode(rfc_private_key().public_key().raw()), kRfc8037X);
}

TEST(JwsTest, Rfc8037SigningKnownAnswer) {
    EXPECT_EQ(jws_sign(kRfc8037Payload, rfc_private_key()), kRfc8037Jws);
}

TEST(JwsTest, Rfc8037VerificationKnownAnswer) {
    auto verified = jws_verify(kRfc8037Jws, rfc_public_key());
    ASSERT_TRUE(verified.ok()) << verified.error().message;
    EXPECT_EQ(verified.value().payload, kRfc8037Payload);
    EXPECT_EQ(verified.value().header_json, R"({"alg":"EdDSA"})");
    EXPECT_EQ(verified.value().kid, "");
    EXPECT_EQ(verified.value().typ, "");
}

TEST(JwsTest, KidAndTypGoIntoASortedCompactHeader) {
    auto key = rfc_private_key();
    std::string compact = jws_sign("{}", key, "k-1", "cipherpulse-key+json");
    EXPECT_EQ(split(compact)[0],
              base64url_encode(R"({"alg":"EdDSA","kid":"k-1","typ":"cipherpulse-key+json"})"));
    EXPECT_EQ(jws_sign("{}", key, "k-1", "cipherpulse-key+json"), compact);
    EXPECT_EQ(split(jws_sign("{}", key, "", "t"))[0],
              base64url_encode(R"({"alg":"EdDSA","typ":"t"})"));

    auto verified = jws_verify(compact, key.public_key());
    ASSERT_TRUE(verified.ok()) << verified.error().message;
    EXPECT_EQ(verified.value().payload, "{}");
    EXPECT_EQ(verified.value().kid, "k-1");
    EXPECT_EQ(verified.value().typ, "cipherpulse-key+json");
}

TEST(JwsTest, KidWithJsonSpecialCharactersRoundTrips) {
    auto key = rfc_private_key();
    std::string kid = "a\"b\\c\n\xc3\xa9";
    auto verified = jws_verify(jws_sign("x", key, kid), key.public_key());
    ASSERT_TRUE(verified.ok()) << verified.error().message;
    EXPECT_EQ(verified.value().kid, kid);
}

TEST(JwsTest, SignRefusesInvalidUtf8Kid) {
    auto key = rfc_private_key();
    EXPECT_THROW((void)jws_sign("x", key, "\xff\xfe"), std::invalid_argument);
    EXPECT_THROW((void)jws_sign("x", key, "", "\xc3"), std::invalid_argument);
}

TEST(JwsTest, BinaryAndEmptyPayloadsRoundTrip) {
    auto key = Ed25519PrivateKey::generate();
    std::string binary;
    for (int i = 0; i < 256; ++i) {
        binary.push_back(static_cast<char>(i));
    }
    for (const std::string& payload : {binary, std::string()}) {
        auto verified = jws_verify(jws_sign(payload, key), key.public_key());
        ASSERT_TRUE(verified.ok()) << verified.error().message;
        EXPECT_EQ(verified.value().payload, payload);
    }
}

TEST(JwsTest, TamperedPartsFailVerification) {
    auto parts = split(kRfc8037Jws);
    ASSERT_EQ(parts.size(), 3u);
    std::string other_payload = base64url_encode(std::string_view("Example of Ed25519 signinG"));
    expect_refused(parts[0] + "." + other_payload + "." + parts[2], ErrorCode::kBadSignature);
    std::string other_header = base64url_encode(std::string_view(R"({"alg":"EdDSA","kid":"x"})"));
    expect_refused(other_header + "." + parts[1] + "." + parts[2], ErrorCode::kBadSignature);
    auto signature = base64url_decode(parts[2]).value();
    for (std::size_t i = 0; i < signature.size(); i += 7) {
        auto bad = signature;
        bad[i] ^= 0x01;
        expect_refused(parts[0] + "." + parts[1] + "." + base64url_encode(bad),
                       ErrorCode::kBadSignature);
    }
}

TEST(JwsTest, WrongKeyFailsVerification) {
    auto other = Ed25519PrivateKey::generate().public_key();
    expect_refused(kRfc8037Jws, ErrorCode::kBadSignature, other);
}

// Whatever single character changes, the result never verifies and nothing crashes.
TEST(JwsTest, EverySingleCharacterChangeIsRefused) {
    const std::string original = kRfc8037Jws;
    auto key = rfc_public_key();
    for (std::size_t i = 0; i < original.size(); ++i) {
        for (char c : {'A', 'g', '_', '-', '.', '=', '+', '/', ' ', '\0', '\x80'}) {
            if (original[i] == c) {
                continue;
            }
            std::string mutated = original;
            mutated[i] = c;
            EXPECT_FALSE(jws_verify(mutated, key).ok()) << "position " << i << " char " << int(c);
        }
        std::string shorter = original;
        shorter.erase(i, 1);
        EXPECT_FALSE(jws_verify(shorter, key).ok()) << "deleted position " << i;
    }
}

TEST(JwsTest, RefusesAlgNoneWithEmptySignature) {
    std::string none = base64url_encode(std::string_view(R"({"alg":"none"})")) + "." +
                       base64url_encode(std::string_view(kRfc8037Payload)) + ".";
    expect_refused(none, ErrorCode::kUnsupported);
}

TEST(JwsTest, RefusesOtherAlgorithmsEvenWhenValidlySigned) {
    auto key = rfc_private_key();
    for (const char* header :
         {R"({"alg":"none"})", R"({"alg":"HS256"})", R"({"alg":"ES256"})", R"({"alg":"RS256"})",
          R"({"alg":"Ed25519"})", R"({"alg":"eddsa"})", R"({"alg":"EdDSA "})", R"({"alg":""})"}) {
        SCOPED_TRACE(header);
        expect_refused(sign_with_header(header, "p", key), ErrorCode::kUnsupported);
    }
    // HS256 with a 32-byte "MAC" made from the public key (the classic key-confusion attack).
    std::string hs256 = base64url_encode(std::string_view(R"({"alg":"HS256"})")) + ".cA." +
                        base64url_encode(rfc_public_key().raw());
    expect_refused(hs256, ErrorCode::kUnsupported);
}

TEST(JwsTest, RefusesMissingOrNonStringAlg) {
    auto key = rfc_private_key();
    for (const char* header : {R"({})", R"({"typ":"JWT"})", R"({"alg":null})", R"({"alg":1})",
                               R"({"alg":["EdDSA"]})", R"({"ALG":"EdDSA"})"}) {
        SCOPED_TRACE(header);
        expect_refused(sign_with_header(header, "p", key), ErrorCode::kInvalidEncoding);
    }
}

TEST(JwsTest, RefusesCritHeader) {
    auto key = rfc_private_key();
    expect_refused(sign_with_header(R"({"alg":"EdDSA","crit":["exp"],"exp":1})", "p", key),
                   ErrorCode::kUnsupported);
    expect_refused(sign_with_header(R"({"alg":"EdDSA","crit":[]})", "p", key),
                   ErrorCode::kUnsupported);
}

TEST(JwsTest, RefusesUnencodedPayloadOption) {
    auto key = rfc_private_key();
    expect_refused(sign_with_header(R"({"alg":"EdDSA","b64":false,"crit":["b64"]})", "p", key),
                   ErrorCode::kUnsupported);
    expect_refused(sign_with_header(R"({"alg":"EdDSA","b64":false})", "p", key),
                   ErrorCode::kUnsupported);
    expect_refused(sign_with_header(R"({"alg":"EdDSA","b64":"false"})", "p", key),
                   ErrorCode::kUnsupported);
    // b64 true is the default meaning and changes nothing.
    EXPECT_TRUE(
        jws_verify(sign_with_header(R"({"alg":"EdDSA","b64":true})", "p", key), key.public_key())
            .ok());
}

TEST(JwsTest, RefusesDuplicateHeaderMembers) {
    auto key = rfc_private_key();
    expect_refused(sign_with_header(R"({"alg":"none","alg":"EdDSA"})", "p", key),
                   ErrorCode::kInvalidEncoding);
    expect_refused(sign_with_header(R"({"alg":"EdDSA","kid":"a","kid":"b"})", "p", key),
                   ErrorCode::kInvalidEncoding);
    // The same name inside a nested object is not a duplicate.
    EXPECT_TRUE(jws_verify(sign_with_header(R"({"alg":"EdDSA","x":{"alg":"none"}})", "p", key),
                           key.public_key())
                    .ok());
}

TEST(JwsTest, RefusesHeadersThatAreNotJsonObjects) {
    auto key = rfc_private_key();
    for (std::string header :
         {std::string(""), std::string("[]"), std::string("\"EdDSA\""), std::string("null"),
          std::string("{"), std::string(R"({"alg":"EdDSA"} x)"), std::string(R"({"alg":"EdDSA",})"),
          std::string("{\"alg\":\"EdDSA\",\"kid\":\"\xff\"}"),
          std::string("{\"alg\":\"EdDSA\"}\0", 16), std::string("{\"alg\":\"EdDSA\"}\0junk", 20),
          std::string(R"({'alg':'EdDSA'})"), std::string("{\"alg\":\"EdDSA\"/*c*/}")}) {
        SCOPED_TRACE(header);
        expect_refused(sign_with_header(header, "p", key), ErrorCode::kInvalidEncoding);
    }
}

TEST(JwsTest, RefusesNonStringKidOrTyp) {
    auto key = rfc_private_key();
    expect_refused(sign_with_header(R"({"alg":"EdDSA","kid":7})", "p", key),
                   ErrorCode::kInvalidEncoding);
    expect_refused(sign_with_header(R"({"alg":"EdDSA","typ":{}})", "p", key),
                   ErrorCode::kInvalidEncoding);
}

TEST(JwsTest, RefusesMalformedCompactStrings) {
    auto parts = split(kRfc8037Jws);
    const std::string& h = parts[0];
    const std::string& p = parts[1];
    const std::string& s = parts[2];
    const std::vector<std::string> bad = {
        "",
        ".",
        "..",
        "...",
        h,
        h + "." + p,
        h + "." + p + "." + s + ".",
        h + "." + p + "." + s + "." + s,
        h + "." + p + "." + s + ".a.b",
        h + "==." + p + "." + s,
        h + "." + p + "=." + s,
        h + "." + p + "." + s + "==",
        h + "." + p + "." + s + "\n",
        " " + h + "." + p + "." + s,
        h + "." + p + " ." + s,
        h + "." + p + "." + s.substr(0, 10) + "+" + s.substr(11),
        h + "." + p + "." + s.substr(0, 10) + "/" + s.substr(11),
        h + "." + p + "." + s.substr(0, s.size() - 1),        // impossible base64 length
        h + "." + p + "." + s.substr(0, s.size() - 1) + "h",  // non-canonical final character
        base64url_encode(std::string_view(R"({"alg":"EdDSA"})")).substr(0, 19) + "." + p + "." + s,
    };
    for (const auto& compact : bad) {
        SCOPED_TRACE(compact);
        expect_refused(compact, ErrorCode::kInvalidEncoding);
    }
}

TEST(JwsTest, RefusesSignaturesOfWrongLength) {
    auto parts = split(kRfc8037Jws);
    auto signature = base64url_decode(parts[2]).value();
    std::string prefix = parts[0] + "." + parts[1] + ".";
    expect_refused(prefix, ErrorCode::kInvalidLength);
    expect_refused(prefix + base64url_encode(std::span(signature).first(63)),
                   ErrorCode::kInvalidLength);
    signature.push_back(0);
    expect_refused(prefix + base64url_encode(signature), ErrorCode::kInvalidLength);
}

TEST(JwsTest, EnforcesSizeLimits) {
    auto key = Ed25519PrivateKey::generate();
    std::string big_payload(kJwsMaxCompactBytes / 4 * 3 - 200, 'x');
    std::string near_limit = jws_sign(big_payload, key);
    ASSERT_LE(near_limit.size(), kJwsMaxCompactBytes);
    auto verified = jws_verify(near_limit, key.public_key());
    ASSERT_TRUE(verified.ok()) << verified.error().message;
    EXPECT_EQ(verified.value().payload.size(), big_payload.size());

    std::string too_big = jws_sign(std::string(kJwsMaxCompactBytes / 4 * 3 + 3, 'x'), key);
    ASSERT_GT(too_big.size(), kJwsMaxCompactBytes);
    expect_refused(too_big, ErrorCode::kInvalidLength, key.public_key());
    expect_refused(std::string(kJwsMaxCompactBytes + 1, '.'), ErrorCode::kInvalidLength);

    std::string long_kid(kJwsMaxHeaderBytes, 'k');
    expect_refused(jws_sign("p", key, long_kid), ErrorCode::kInvalidLength, key.public_key());
    std::string fitting_kid(kJwsMaxHeaderBytes - 40, 'k');
    EXPECT_TRUE(jws_verify(jws_sign("p", key, fitting_kid), key.public_key()).ok());
}

// A header may name any key it likes; only the pinned key counts.
TEST(JwsTest, EmbeddedKeyInHeaderIsIgnored) {
    auto attacker = Ed25519PrivateKey::generate();
    std::string header = R"({"alg":"EdDSA","jwk":{"crv":"Ed25519","kty":"OKP","x":")" +
                         base64url_encode(attacker.public_key().raw()) + R"("}})";
    std::string forged = sign_with_header(header, "evil key document", attacker);
    EXPECT_TRUE(jws_verify(forged, attacker.public_key()).ok());
    expect_refused(forged, ErrorCode::kBadSignature);
}

}  // namespace
}  // namespace cipherpulse
