#include "cipherpulse/http_signature.h"

#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cipherpulse/ed25519.h"

namespace cipherpulse {
namespace {

// RFC 9421 Appendix B.1.4, the key "test-key-ed25519": its 32-byte seed (the tail of the
// RFC's PKCS#8 document) and its public key. The private key is rebuilt from the seed at
// test time; the RFC's public key below checks it.
constexpr const char* kRfcSeedHex =
    "9f8362f87a484a954e6e740c5b4c0e84229139a20aa8ab56ff66586f6a7d29c5";
constexpr const char* kRfcPublicPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n"
    "-----END PUBLIC KEY-----\n";

// RFC 9421 Appendix B.2.6 (RFC 8792 line wrapping undone): the signature base, the
// Signature-Input and Signature values under the label sig-b26.
constexpr const char* kB26Base =
    "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n"
    "\"@method\": POST\n"
    "\"@path\": /foo\n"
    "\"@authority\": example.com\n"
    "\"content-type\": application/json\n"
    "\"content-length\": 18\n"
    "\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" "
    "\"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
constexpr const char* kB26SignatureInput =
    "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" "
    "\"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
constexpr const char* kB26Signature =
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKR"
    "Cw==:";
constexpr std::int64_t kB26Created = 1618884473;

// The body of the RFC 9421 B.2 test request (18 bytes). Its SHA-256 in base64 was computed
// with Python's hashlib, its SHA-512 digest is the one in the RFC's test request.
constexpr const char* kHelloBody = "{\"hello\": \"world\"}";
constexpr const char* kHelloSha256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:";
constexpr const char* kHelloSha512 =
    "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwe"
    "w==:";

// TestRequest owns what an HttpRequestView borrows.
struct TestRequest {
    std::string method = "POST";
    std::string path = "/v1/readings";
    std::string query;
    std::string authority = "api.example.org";
    std::map<std::string, std::string> headers;
    std::string body;

    HttpRequestView view() const {
        return HttpRequestView{method, path, query, authority,
                               [this](std::string_view name) -> std::optional<std::string> {
                                   auto it = headers.find(std::string(name));
                                   if (it == headers.end()) {
                                       return std::nullopt;
                                   }
                                   return it->second;
                               }};
    }
};

TestRequest rfc_test_request() {
    TestRequest request;
    request.method = "POST";
    request.path = "/foo";
    request.query = "param=Value&Pet=dog";
    request.authority = "example.com";
    request.headers = {
        {"host", "example.com"},
        {"date", "Tue, 20 Apr 2021 02:07:55 GMT"},
        {"content-type", "application/json"},
        {"content-digest", kHelloSha512},
        {"content-length", "18"},
    };
    request.body = kHelloBody;
    return request;
}

SignatureParams b26_params() {
    SignatureParams params;
    params.label = "sig-b26";
    params.components = {"date",       "@method",      "@path",
                         "@authority", "content-type", "content-length"};
    params.created = kB26Created;
    params.keyid = "test-key-ed25519";
    return params;
}

Ed25519PrivateKey rfc_private_key() {
    std::vector<std::uint8_t> seed;
    for (std::size_t i = 0; i < 64; i += 2) {
        seed.push_back(
            static_cast<std::uint8_t>(std::stoi(std::string(kRfcSeedHex + i, 2), nullptr, 16)));
    }
    return Ed25519PrivateKey::from_raw_seed(seed).value();
}

Ed25519PublicKey rfc_public_key() {
    return Ed25519PublicKey::from_pem(kRfcPublicPem).value();
}

constexpr std::int64_t kNow = 1'700'000'000;

// A request of the cipherpulse profile, with its Content-Digest set.
TestRequest readings_request(std::string body = "[{\"device\":\"dev-7\",\"seq\":42}]") {
    TestRequest request;
    request.body = std::move(body);
    request.headers["content-type"] = "application/json";
    request.headers["content-digest"] = content_digest_sha256(request.body);
    return request;
}

SignatureParams profile_params(std::int64_t created = kNow) {
    SignatureParams params;
    params.components = {"@method", "@path", "content-digest"};
    params.created = created;
    params.keyid = "device-7";
    params.alg = "ed25519";
    return params;
}

VerifyPolicy policy_at(std::int64_t now) {
    VerifyPolicy policy;
    policy.now_seconds = now;
    return policy;
}

ParsedSignature sign_and_parse(const TestRequest& request, const SignatureParams& params,
                               const Ed25519PrivateKey& key) {
    SignatureHeaders headers = sign_request(request.view(), params, key);
    return parse_signature(headers.signature_input, headers.signature).value();
}

Status verify_all(const TestRequest& request, const ParsedSignature& parsed,
                  const Ed25519PublicKey& key, std::int64_t now = kNow) {
    return verify_signed_request(
        request.view(), parsed, key, policy_at(now),
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(request.body.data()),
                                      request.body.size()));
}

void expect_error(const Status& status, ErrorCode code, const std::string& fragment = {}) {
    ASSERT_FALSE(status.ok()) << "expected " << error_code_name(code);
    EXPECT_EQ(status.error().code, code) << status.error().message;
    EXPECT_NE(status.error().message.find(fragment), std::string::npos) << status.error().message;
}

template <class T>
void expect_error(const Result<T>& result, ErrorCode code, const std::string& fragment = {}) {
    ASSERT_FALSE(result.ok()) << "expected " << error_code_name(code);
    EXPECT_EQ(result.error().code, code) << result.error().message;
    EXPECT_NE(result.error().message.find(fragment), std::string::npos) << result.error().message;
}

// HttpSignatureTest gives each test a fresh device key and a signed-to-be readings request.
class HttpSignatureTest : public ::testing::Test {
  protected:
    Ed25519PrivateKey key_ = Ed25519PrivateKey::generate();
    Ed25519PublicKey public_key_ = key_.public_key();
    TestRequest request_ = readings_request();
};

// ---------------------------------------------------------------------------------------
// Content-Digest (RFC 9530)

TEST(ContentDigestTest, HelloWorldMatchesIndependentSha256) {
    EXPECT_EQ(content_digest_sha256(std::string_view(kHelloBody)), kHelloSha256);
}

TEST(ContentDigestTest, EmptyBody) {
    // SHA-256 of the empty string, base64 (Python hashlib).
    EXPECT_EQ(content_digest_sha256(std::string_view()),
              "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
    EXPECT_TRUE(verify_content_digest("sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:",
                                      std::string_view())
                    .ok());
}

TEST(ContentDigestTest, AcceptsMatchingDigest) {
    EXPECT_TRUE(verify_content_digest(kHelloSha256, std::string_view(kHelloBody)).ok());
}

TEST(ContentDigestTest, IgnoresOtherAlgorithms) {
    std::string both = std::string(kHelloSha512) + ", " + kHelloSha256;
    EXPECT_TRUE(verify_content_digest(both, std::string_view(kHelloBody)).ok());
    std::string tabs = std::string(" ") + kHelloSha256 + "\t,\tmd5=:AAAAAAAAAAAAAAAAAAAAAA==: ";
    EXPECT_TRUE(verify_content_digest(tabs, std::string_view(kHelloBody)).ok());
    std::string compact = std::string(kHelloSha256) + "," + kHelloSha512;
    EXPECT_TRUE(verify_content_digest(compact, std::string_view(kHelloBody)).ok());
}

TEST(ContentDigestTest, RefusesModifiedBody) {
    expect_error(verify_content_digest(kHelloSha256, std::string_view("{\"hello\": \"World\"}")),
                 ErrorCode::kBadSignature);
    expect_error(verify_content_digest(kHelloSha256, std::string_view()), ErrorCode::kBadSignature);
}

TEST(ContentDigestTest, RequiresSha256) {
    expect_error(verify_content_digest(kHelloSha512, std::string_view(kHelloBody)),
                 ErrorCode::kUnsupported);
    expect_error(verify_content_digest("", std::string_view(kHelloBody)), ErrorCode::kUnsupported);
}

TEST(ContentDigestTest, RefusesMalformedValues) {
    const std::string_view body(kHelloBody);
    const std::vector<std::string> malformed = {
        "garbage!",
        "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",    // RFC 3230 style, no colons
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE:",   // padding missing
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPF=:",  // non-canonical last char
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",   // unterminated
        "SHA-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",  // keys are lower case
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:,",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, "
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OW"
        "DUoyWxBf7kbu9DBPE=:",                                       // repeated key
        "sha-256=\"X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\"",  // a string, not bytes
        "sha-256",                                                   // boolean
        "sha-256=:AAAA:",                                            // 3 bytes, not 32
        "sha-256=:X48E9qOok qrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",    // space inside
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=: sha-512=:AA==:",  // no comma
    };
    for (const std::string& value : malformed) {
        SCOPED_TRACE(value);
        expect_error(verify_content_digest(value, body), ErrorCode::kInvalidEncoding);
    }
}

TEST(ContentDigestTest, RefusesHugeValue) {
    std::string huge = std::string(kHelloSha256) + ", x=:" + std::string(12000, 'A') + ":";
    expect_error(verify_content_digest(huge, std::string_view(kHelloBody)),
                 ErrorCode::kInvalidLength);
}

// ---------------------------------------------------------------------------------------
// RFC 9421 Appendix B.2.6

TEST_F(HttpSignatureTest, RfcKeyPairIsConsistent) {
    EXPECT_EQ(rfc_private_key().public_key(), rfc_public_key());
}

TEST_F(HttpSignatureTest, RfcB26SignatureBase) {
    TestRequest request = rfc_test_request();
    auto base = signature_base(request.view(), b26_params());
    ASSERT_TRUE(base.ok()) << base.error().message;
    EXPECT_EQ(base.value(), kB26Base);
}

TEST_F(HttpSignatureTest, RfcB26SigningReproducesTheRfcSignature) {
    TestRequest request = rfc_test_request();
    SignatureHeaders headers = sign_request(request.view(), b26_params(), rfc_private_key());
    EXPECT_EQ(headers.signature_input, kB26SignatureInput);
    EXPECT_EQ(headers.signature, kB26Signature);
}

TEST_F(HttpSignatureTest, RfcB26ReceivedSignatureVerifies) {
    TestRequest request = rfc_test_request();
    auto parsed = parse_signature(kB26SignatureInput, kB26Signature);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    const SignatureParams& params = parsed.value().params;
    EXPECT_EQ(params.label, "sig-b26");
    EXPECT_EQ(params.components, b26_params().components);
    EXPECT_EQ(params.created, kB26Created);
    EXPECT_EQ(params.keyid, "test-key-ed25519");
    EXPECT_FALSE(params.alg.has_value());
    EXPECT_FALSE(params.expires.has_value());
    EXPECT_EQ(parsed.value().signature.size(), 64u);
    EXPECT_EQ("sig-b26=" + parsed.value().raw_params, kB26SignatureInput);
    EXPECT_EQ("sig-b26=" + serialize_signature_params(params), kB26SignatureInput);

    auto base = signature_base(request.view(), parsed.value());
    ASSERT_TRUE(base.ok()) << base.error().message;
    EXPECT_EQ(base.value(), kB26Base);

    VerifyPolicy policy = policy_at(kB26Created + 10);
    policy.required_components = {"@method", "@path", "@authority"};
    Status status = verify_request(request.view(), parsed.value(), rfc_public_key(), policy);
    EXPECT_TRUE(status.ok()) << status.error().message;

    // B.2.6 does not cover content-digest, so the cipherpulse default policy refuses it.
    expect_error(
        verify_request(request.view(), parsed.value(), rfc_public_key(), policy_at(kB26Created)),
        ErrorCode::kBadSignature, "content-digest");

    request.headers["date"] = "Tue, 20 Apr 2021 02:07:56 GMT";
    expect_error(verify_request(request.view(), parsed.value(), rfc_public_key(), policy),
                 ErrorCode::kBadSignature, "does not verify");
}

// The cipherpulse profile, signed independently with Python's `cryptography` (Ed25519 over
// the signature base written out by hand from RFC 9421 section 2.5) with the RFC test key.
TEST_F(HttpSignatureTest, ProfileMatchesIndependentSignature) {
    TestRequest request = readings_request("[{\"device\":\"dev-7\",\"seq\":42,\"ct\":\"AAAA\"}]");
    request.query = "batch=3";
    ASSERT_EQ(request.headers["content-digest"],
              "sha-256=:RdNNIBXu8RsW/xwd53zreQVwYGWg4Qcux4Xz91MTyfg=:");
    SignatureParams params = profile_params(1700000000);
    params.components = {"@method", "@path", "@query", "content-digest"};

    auto base = signature_base(request.view(), params);
    ASSERT_TRUE(base.ok()) << base.error().message;
    EXPECT_EQ(base.value(),
              "\"@method\": POST\n"
              "\"@path\": /v1/readings\n"
              "\"@query\": ?batch=3\n"
              "\"content-digest\": sha-256=:RdNNIBXu8RsW/xwd53zreQVwYGWg4Qcux4Xz91MTyfg=:\n"
              "\"@signature-params\": (\"@method\" \"@path\" \"@query\" "
              "\"content-digest\");created=1700000000;keyid=\"device-7\";alg=\"ed25519\"");

    SignatureHeaders headers = sign_request(request.view(), params, rfc_private_key());
    EXPECT_EQ(headers.signature_input,
              "sig1=(\"@method\" \"@path\" \"@query\" \"content-digest\");created=1700000000;"
              "keyid=\"device-7\";alg=\"ed25519\"");
    EXPECT_EQ(headers.signature,
              "sig1=:QwQZIhbpRJTgxJRIXBR6P3UaTgNPtNkyYxAoqEopO7FmfynhsiEsJJdATfDJcnujhODAyuIhs+"
              "KqCqd/Ec6+BQ==:");
}

// A signer may order the parameters as it likes; the verifier must sign over the received
// text, not over its own serialization. Signature by Python's `cryptography` with the RFC
// test key over the base written out by hand.
TEST_F(HttpSignatureTest, VerifiesParametersInTheSignersOrder) {
    TestRequest request = readings_request();
    ASSERT_EQ(request.headers["content-digest"],
              "sha-256=:lD8eGBYgUFEZDXTfgwNdx92wkAU9YlZ5N3VgT0mTORo=:");
    auto parsed = parse_signature(
        "sig1=(\"@method\" \"@path\" \"content-digest\");alg=\"ed25519\";"
        "keyid=\"test-key-ed25519\";created=1700000000",
        "sig1=:oNjXHpIBHvVHeUa8nnk0Sh7GoWTcC8+biMXLC/yvnMDRgb7A0/"
        "pZKDt5yyIATLBTMK2IndtuyeY8rJ5UBebkAA==:");
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed.value().params.created, 1700000000);
    Status status = verify_all(request, parsed.value(), rfc_public_key());
    EXPECT_TRUE(status.ok()) << status.error().message;
}

// ---------------------------------------------------------------------------------------
// Signature base details

TEST_F(HttpSignatureTest, DerivedComponentValues) {
    TestRequest request;
    request.method = "GET";
    request.path = "";
    request.query = "";
    request.authority = "API.Example.ORG:8443";
    request.headers["x-list"] = " \ta, b \t";
    SignatureParams params;
    params.components = {"@method", "@path", "@query", "@authority", "x-list"};
    auto base = signature_base(request.view(), params);
    ASSERT_TRUE(base.ok()) << base.error().message;
    EXPECT_EQ(base.value(),
              "\"@method\": GET\n\"@path\": /\n\"@query\": ?\n\"@authority\": "
              "api.example.org:8443\n\"x-list\": a, b\n\"@signature-params\": (\"@method\" "
              "\"@path\" \"@query\" \"@authority\" \"x-list\")");
}

TEST_F(HttpSignatureTest, SerializesParametersInFixedOrderWithEscapes) {
    SignatureParams params;
    params.components = {};
    params.tag = "t";
    params.nonce = "n\"x\\y";
    params.alg = "ed25519";
    params.keyid = "k";
    params.expires = 20;
    params.created = 10;
    EXPECT_EQ(
        serialize_signature_params(params),
        "();created=10;expires=20;keyid=\"k\";alg=\"ed25519\";nonce=\"n\\\"x\\\\y\";tag=\"t\"");
    auto parsed = parse_signature("a=" + serialize_signature_params(params),
                                  "a=:" + std::string(86, 'A') + "==:");
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed.value().params.nonce, "n\"x\\y");
    EXPECT_EQ(parsed.value().params.expires, 20);
}

TEST_F(HttpSignatureTest, SignatureBaseRefusesBadComponents) {
    TestRequest request = readings_request();
    SignatureParams params = profile_params();

    params.components = {"@method", "@target-uri"};
    expect_error(signature_base(request.view(), params), ErrorCode::kUnsupported, "@target-uri");
    params.components = {"@request-target"};
    expect_error(signature_base(request.view(), params), ErrorCode::kUnsupported);
    params.components = {"Content-Digest"};
    expect_error(signature_base(request.view(), params), ErrorCode::kInvalidEncoding);
    params.components = {"@method", "@method"};
    expect_error(signature_base(request.view(), params), ErrorCode::kInvalidEncoding, "twice");
    params.components = {"x-absent"};
    expect_error(signature_base(request.view(), params), ErrorCode::kInvalidEncoding, "missing");
    params.components = std::vector<std::string>(33, "@method");
    expect_error(signature_base(request.view(), params), ErrorCode::kInvalidEncoding);
}

TEST_F(HttpSignatureTest, SignatureBaseRefusesLineInjection) {
    TestRequest request = readings_request();
    request.headers["x-evil"] = "a\n\"@method\": GET";
    SignatureParams params = profile_params();
    params.components = {"x-evil"};
    expect_error(signature_base(request.view(), params), ErrorCode::kInvalidEncoding,
                 "control character");
    request.path = "/v1/readings\r\nx";
    params.components = {"@path"};
    expect_error(signature_base(request.view(), params), ErrorCode::kInvalidEncoding);
    request.path = "v1/readings";
    expect_error(signature_base(request.view(), params), ErrorCode::kInvalidEncoding);
    request.method = "PO ST";
    params.components = {"@method"};
    expect_error(signature_base(request.view(), params), ErrorCode::kInvalidEncoding);
}

TEST_F(HttpSignatureTest, NoHeaderFunctionMeansNoHeaders) {
    HttpRequestView view{"POST", "/v1/readings", "", "api.example.org", {}};
    SignatureParams params = profile_params();
    expect_error(signature_base(view, params), ErrorCode::kInvalidEncoding, "missing");
    params.components = {"@method", "@path"};
    EXPECT_TRUE(signature_base(view, params).ok());
}

TEST_F(HttpSignatureTest, SignRequestThrowsForProgrammerErrors) {
    Ed25519PrivateKey key = Ed25519PrivateKey::generate();
    TestRequest request = readings_request();
    request.headers.erase("content-digest");
    EXPECT_THROW(sign_request(request.view(), profile_params(), key), std::invalid_argument);

    request = readings_request();
    SignatureParams params = profile_params();
    params.label = "Sig1";
    EXPECT_THROW(sign_request(request.view(), params, key), std::invalid_argument);
    params = profile_params();
    params.keyid = "line\nbreak";
    EXPECT_THROW(sign_request(request.view(), params, key), std::invalid_argument);
    params = profile_params(-1);
    EXPECT_THROW(sign_request(request.view(), params, key), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------
// Round trip and refusals in the cipherpulse profile

TEST_F(HttpSignatureTest, RoundTrip) {
    ParsedSignature parsed = sign_and_parse(request_, profile_params(), key_);
    EXPECT_EQ(parsed.params.label, "sig1");
    EXPECT_EQ(parsed.params.keyid, "device-7");
    EXPECT_EQ(parsed.params.alg, "ed25519");
    Status status = verify_all(request_, parsed, public_key_);
    EXPECT_TRUE(status.ok()) << status.error().message;
    EXPECT_TRUE(verify_request(request_.view(), parsed, public_key_, policy_at(kNow)).ok());
}

TEST_F(HttpSignatureTest, ProfileRefusesModifiedBody) {
    ParsedSignature parsed = sign_and_parse(request_, profile_params(), key_);
    request_.body += " ";
    // The signature still covers the (unchanged) Content-Digest header...
    EXPECT_TRUE(verify_request(request_.view(), parsed, public_key_, policy_at(kNow)).ok());
    // ...which no longer matches the body.
    expect_error(verify_all(request_, parsed, public_key_), ErrorCode::kBadSignature,
                 "Content-Digest");
    // Updating the digest to the new body breaks the signature instead.
    request_.headers["content-digest"] = content_digest_sha256(request_.body);
    expect_error(verify_all(request_, parsed, public_key_), ErrorCode::kBadSignature,
                 "does not verify");
}

TEST_F(HttpSignatureTest, RefusesModifiedPathOrMethod) {
    ParsedSignature parsed = sign_and_parse(request_, profile_params(), key_);
    TestRequest other = request_;
    other.path = "/v1/readingz";
    expect_error(verify_all(other, parsed, public_key_), ErrorCode::kBadSignature);
    other = request_;
    other.method = "PUT";
    expect_error(verify_all(other, parsed, public_key_), ErrorCode::kBadSignature);
}

TEST_F(HttpSignatureTest, RefusesWrongKey) {
    ParsedSignature parsed = sign_and_parse(request_, profile_params(), key_);
    expect_error(verify_all(request_, parsed, rfc_public_key()), ErrorCode::kBadSignature);
}

TEST_F(HttpSignatureTest, RefusesTamperedSignatureBytes) {
    ParsedSignature parsed = sign_and_parse(request_, profile_params(), key_);
    parsed.signature[10] ^= 1;
    expect_error(verify_all(request_, parsed, public_key_), ErrorCode::kBadSignature);
    parsed.signature.pop_back();
    expect_error(verify_all(request_, parsed, public_key_), ErrorCode::kBadSignature);
}

TEST_F(HttpSignatureTest, CreatedWindow) {
    ParsedSignature parsed = sign_and_parse(request_, profile_params(kNow), key_);
    EXPECT_TRUE(verify_all(request_, parsed, public_key_, kNow + 300).ok());
    EXPECT_TRUE(verify_all(request_, parsed, public_key_, kNow - 300).ok());
    // Stale: created is now - 301.
    expect_error(verify_all(request_, parsed, public_key_, kNow + 301), ErrorCode::kBadSignature,
                 "stale or future created");
    // Future: created is now + 301.
    expect_error(verify_all(request_, parsed, public_key_, kNow - 301), ErrorCode::kBadSignature,
                 "stale or future created");
    // Extreme clocks must not overflow into acceptance.
    expect_error(verify_all(request_, parsed, public_key_, INT64_MIN), ErrorCode::kBadSignature);
    expect_error(verify_all(request_, parsed, public_key_, INT64_MAX), ErrorCode::kBadSignature);
}

TEST_F(HttpSignatureTest, PolicyJudgesTheSignedParametersNotTheStruct) {
    ParsedSignature parsed = sign_and_parse(request_, profile_params(kNow - 1000), key_);
    parsed.params.created = kNow;
    parsed.params.components.push_back("x-extra");
    expect_error(verify_all(request_, parsed, public_key_), ErrorCode::kBadSignature,
                 "stale or future created");
}

TEST_F(HttpSignatureTest, RefusesMissingCreated) {
    SignatureParams params = profile_params();
    params.created.reset();
    ParsedSignature parsed = sign_and_parse(request_, params, key_);
    expect_error(verify_all(request_, parsed, public_key_), ErrorCode::kBadSignature, "created");
}

TEST_F(HttpSignatureTest, RefusesExpired) {
    SignatureParams params = profile_params();
    params.expires = kNow + 60;
    ParsedSignature parsed = sign_and_parse(request_, params, key_);
    EXPECT_TRUE(verify_all(request_, parsed, public_key_, kNow + 60).ok());
    expect_error(verify_all(request_, parsed, public_key_, kNow + 61), ErrorCode::kBadSignature,
                 "expired");
}

TEST_F(HttpSignatureTest, RefusesMissingRequiredComponent) {
    SignatureParams params = profile_params();
    params.components = {"@method", "@path"};
    ParsedSignature parsed = sign_and_parse(request_, params, key_);
    expect_error(verify_request(request_.view(), parsed, public_key_, policy_at(kNow)),
                 ErrorCode::kBadSignature, "'content-digest' not covered");
    // verify_signed_request insists on content-digest even under a laxer policy.
    VerifyPolicy lax = policy_at(kNow);
    lax.required_components = {"@method"};
    EXPECT_TRUE(verify_request(request_.view(), parsed, public_key_, lax).ok());
    expect_error(
        verify_signed_request(
            request_.view(), parsed, public_key_, lax,
            std::span<const std::uint8_t>(
                reinterpret_cast<const std::uint8_t*>(request_.body.data()), request_.body.size())),
        ErrorCode::kBadSignature, "content-digest");

    params.components = {"@path", "content-digest"};
    parsed = sign_and_parse(request_, params, key_);
    expect_error(verify_all(request_, parsed, public_key_), ErrorCode::kBadSignature, "@method");
}

TEST_F(HttpSignatureTest, RefusesOtherAlgorithms) {
    SignatureParams params = profile_params();
    params.alg = "rsa-pss-sha512";
    ParsedSignature parsed = sign_and_parse(request_, params, key_);
    expect_error(verify_all(request_, parsed, public_key_), ErrorCode::kUnsupported,
                 "rsa-pss-sha512");
    params.alg.reset();
    parsed = sign_and_parse(request_, params, key_);
    EXPECT_TRUE(verify_all(request_, parsed, public_key_).ok());
}

TEST_F(HttpSignatureTest, RefusesReplayOverAnotherBody) {
    ParsedSignature parsed = sign_and_parse(request_, profile_params(), key_);
    TestRequest other = readings_request("[{\"device\":\"dev-7\",\"seq\":43}]");
    // The other batch with its own digest: the signature does not cover that digest.
    expect_error(verify_all(other, parsed, public_key_), ErrorCode::kBadSignature,
                 "does not verify");
    // The other batch under the first batch's digest: the digest does not match.
    other.headers["content-digest"] = request_.headers["content-digest"];
    expect_error(verify_all(other, parsed, public_key_), ErrorCode::kBadSignature,
                 "Content-Digest");
}

TEST_F(HttpSignatureTest, MissingCoveredHeaderAtVerification) {
    ParsedSignature parsed = sign_and_parse(request_, profile_params(), key_);
    request_.headers.erase("content-digest");
    expect_error(verify_all(request_, parsed, public_key_), ErrorCode::kInvalidEncoding, "missing");
}

TEST_F(HttpSignatureTest, NegativeSkewIsAProgrammerError) {
    ParsedSignature parsed = sign_and_parse(request_, profile_params(), key_);
    VerifyPolicy policy = policy_at(kNow);
    policy.max_skew_seconds = -1;
    EXPECT_THROW((void)verify_request(request_.view(), parsed, public_key_, policy),
                 std::invalid_argument);
}

// ---------------------------------------------------------------------------------------
// Parsing untrusted Signature-Input / Signature

constexpr const char* kInput =
    "sig1=(\"@method\" \"@path\" \"content-digest\");created=1700000000;keyid=\"device-7\";"
    "alg=\"ed25519\"";

std::string valid_signature(std::string_view label = "sig1") {
    return std::string(label) + "=:" + std::string(86, 'A') + "==:";
}

TEST_F(HttpSignatureTest, SelectsLabel) {
    std::string inputs = std::string(kInput) + ", proxy=(\"@authority\");created=1";
    std::string signatures = valid_signature() + ", " + valid_signature("proxy");
    expect_error(parse_signature(inputs, signatures), ErrorCode::kInvalidEncoding, "exactly one");
    auto chosen = parse_signature(inputs, signatures, "proxy");
    ASSERT_TRUE(chosen.ok()) << chosen.error().message;
    EXPECT_EQ(chosen.value().params.label, "proxy");
    EXPECT_EQ(chosen.value().params.components, std::vector<std::string>{"@authority"});
    EXPECT_EQ(chosen.value().raw_params, "(\"@authority\");created=1");
    auto first = parse_signature(inputs, signatures, "sig1");
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_EQ("sig1=" + first.value().raw_params, kInput);

    expect_error(parse_signature(inputs, signatures, "sig2"), ErrorCode::kInvalidEncoding,
                 "no signature labelled");
    expect_error(parse_signature(kInput, valid_signature("sig2")), ErrorCode::kInvalidEncoding);
    expect_error(parse_signature(kInput, valid_signature("sig2"), "sig1"),
                 ErrorCode::kInvalidEncoding, "in Signature");
    expect_error(parse_signature("", ""), ErrorCode::kInvalidEncoding);
}

TEST_F(HttpSignatureTest, OtherSignaturesMayUseFeaturesWeDoNotSupport) {
    std::string inputs =
        std::string(kInput) + ", proxy=(\"@target-uri\" \"x\";sf);created=1;foo=bar";
    std::string signatures = valid_signature() + ", proxy=:AAAA:";
    EXPECT_TRUE(parse_signature(inputs, signatures, "sig1").ok());
    expect_error(parse_signature(inputs, signatures, "proxy"), ErrorCode::kUnsupported);
}

TEST_F(HttpSignatureTest, RefusesBadSignatureBytes) {
    expect_error(parse_signature(kInput, "sig1=:" + std::string(84, 'A') + ":"),
                 ErrorCode::kInvalidLength, "63 bytes");
    expect_error(parse_signature(kInput, "sig1=:" + std::string(88, 'A') + ":"),
                 ErrorCode::kInvalidLength);
    expect_error(parse_signature(kInput, "sig1=:" + std::string(86, 'A') + ":"),
                 ErrorCode::kInvalidEncoding);  // padding missing
    expect_error(parse_signature(kInput, "sig1=:" + std::string(85, 'A') + "B==:"),
                 ErrorCode::kInvalidEncoding);  // non-canonical
    expect_error(parse_signature(kInput, "sig1=:" + std::string(85, 'A') + "-==:"),
                 ErrorCode::kInvalidEncoding);  // base64url alphabet
    expect_error(parse_signature(kInput, "sig1=\"" + std::string(88, 'A') + "\""),
                 ErrorCode::kInvalidEncoding);
    expect_error(parse_signature(kInput, valid_signature() + ";x=1"), ErrorCode::kInvalidEncoding);
    expect_error(parse_signature(kInput, "sig1=(:" + std::string(86, 'A') + "==:)"),
                 ErrorCode::kInvalidEncoding);
}

TEST_F(HttpSignatureTest, RefusesMalformedSignatureInput) {
    const std::string sig = valid_signature();
    struct Case {
        std::string input;
        ErrorCode code;
    };
    const std::vector<Case> cases = {
        {"garbage", ErrorCode::kInvalidEncoding},
        {"\x01\xff", ErrorCode::kInvalidEncoding},
        {"sig1=", ErrorCode::kInvalidEncoding},
        {"sig1=(\"@method\"", ErrorCode::kInvalidEncoding},
        {"sig1=(\"@method\");created=1,", ErrorCode::kInvalidEncoding},
        {"sig1=(\"@method\");created=1, sig1=(\"@path\");created=1", ErrorCode::kInvalidEncoding},
        {"Sig1=(\"@method\");created=1", ErrorCode::kInvalidEncoding},
        {"sig1=\"@method\";created=1", ErrorCode::kInvalidEncoding},
        {"sig1=(@method);created=1", ErrorCode::kInvalidEncoding},
        {"sig1=(\"@method\"  \"@path\");created=1", ErrorCode::kInvalidEncoding},
        {"sig1=( \"@method\");created=1", ErrorCode::kInvalidEncoding},
        {"sig1=(\"@method\" );created=1", ErrorCode::kInvalidEncoding},
        {"sig1=(\"@method\"); created=1", ErrorCode::kInvalidEncoding},
        {"sig1=(\"@method\" \"@method\");created=1", ErrorCode::kInvalidEncoding},
        {"sig1=(\"Content-Digest\");created=1", ErrorCode::kInvalidEncoding},
        {"sig1=(\"content digest\");created=1", ErrorCode::kInvalidEncoding},
        {"sig1=(\"x\x7f\");created=1", ErrorCode::kInvalidEncoding},
        {"sig1=(\"\xc3\xa9\");created=1", ErrorCode::kInvalidEncoding},
        {"sig1=(\"a\\n\");created=1", ErrorCode::kInvalidEncoding},
        {"sig1=(\"@method\");created=\"1\"", ErrorCode::kInvalidEncoding},
        {"sig1=(\"@method\");created", ErrorCode::kInvalidEncoding},
        {"sig1=(\"@method\");created=01", ErrorCode::kInvalidEncoding},
        {"sig1=(\"@method\");created=1.5", ErrorCode::kInvalidEncoding},
        {"sig1=(\"@method\");created=1;created=2", ErrorCode::kInvalidEncoding},
        {"sig1=(\"@method\");keyid=dev", ErrorCode::kInvalidEncoding},
        {"sig1=(\"@method\");keyid=\"unterminated", ErrorCode::kInvalidEncoding},
        {"sig1=(\"@method\");created=-1", ErrorCode::kOutOfRange},
        {"sig1=(\"@method\");expires=-5", ErrorCode::kOutOfRange},
        {"sig1=(\"@method\");created=1234567890123456", ErrorCode::kOutOfRange},
        {"sig1=(\"@method\");created=1;foo=\"bar\"", ErrorCode::kUnsupported},
        {"sig1=(\"@target-uri\");created=1", ErrorCode::kUnsupported},
        {"sig1=(\"@signature-params\");created=1", ErrorCode::kUnsupported},
        {"sig1=(\"content-digest\";sf);created=1", ErrorCode::kUnsupported},
        {"sig1=(\"@query-param\";name=\"a\");created=1", ErrorCode::kUnsupported},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.input);
        expect_error(parse_signature(c.input, sig), c.code);
    }
}

TEST_F(HttpSignatureTest, AcceptsOptionalWhiteSpaceBetweenMembers) {
    std::string inputs = std::string(" \t") + kInput + " ,\tother=();created=5 ";
    std::string signatures = valid_signature() + "  ,  " + valid_signature("other");
    auto parsed = parse_signature(inputs, signatures, "sig1");
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ("sig1=" + parsed.value().raw_params, kInput);
    auto other = parse_signature(inputs, signatures, "other");
    ASSERT_TRUE(other.ok()) << other.error().message;
    EXPECT_TRUE(other.value().params.components.empty());
    EXPECT_EQ(other.value().params.created, 5);
    EXPECT_EQ(parse_signature(kInput, valid_signature()).value().params.created, 1700000000);
}

TEST_F(HttpSignatureTest, RefusesHugeInput) {
    std::string huge = std::string(kInput) + ";nonce=\"" + std::string(9000, 'n') + "\"";
    expect_error(parse_signature(huge, valid_signature()), ErrorCode::kInvalidLength);
    expect_error(parse_signature(kInput, valid_signature() + std::string(9000, ' ')),
                 ErrorCode::kInvalidLength);
    std::string many = "sig1=(";
    for (int i = 0; i < 40; ++i) {
        many += (i > 0 ? " \"x-h" : "\"x-h") + std::to_string(i) + "\"";
    }
    many += ");created=1";
    expect_error(parse_signature(many, valid_signature()), ErrorCode::kInvalidEncoding,
                 "more than 32");
}

// Every prefix and every single-byte change of valid headers must come back as a value or
// an error, never a crash (run under ASan/UBSan in CI to make this bite harder).
TEST_F(HttpSignatureTest, MutationsNeverCrash) {
    const std::string input = std::string(kInput) + ";expires=1700000300;nonce=\"a\\\"b\"";
    const std::string sig = valid_signature();
    const char replacements[] = {'\0', ' ', '"', '\\',   ';',    ',',  '=',  ':', '(', ')',
                                 '-',  '9', 'A', '\x80', '\xff', '\t', '\n', '*', '?'};
    std::size_t accepted = 0;
    for (std::size_t i = 0; i <= input.size(); ++i) {
        accepted += parse_signature(input.substr(0, i), sig).ok() ? 1 : 0;
        accepted += parse_signature(kInput, sig.substr(0, i % (sig.size() + 1))).ok() ? 1 : 0;
    }
    for (std::size_t i = 0; i < input.size(); ++i) {
        for (char r : replacements) {
            std::string mutated = input;
            mutated[i] = r;
            auto parsed = parse_signature(mutated, sig);
            if (parsed.ok()) {
                ++accepted;
                // Whatever parses must also go through verification without crashing.
                TestRequest request = readings_request();
                (void)verify_request(request.view(), parsed.value(), rfc_public_key(),
                                     policy_at(kNow));
            }
        }
    }
    EXPECT_GT(accepted, 0u);
}

}  // namespace
}  // namespace cipherpulse
