#include "cipherpulse/envelope.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cipherpulse/base64url.h"
#include "cipherpulse/ed25519.h"
#include "cipherpulse/x25519.h"
#include "unit/test_support.h"

namespace cipherpulse {
namespace {

using OrderedJson = nlohmann::ordered_json;
using Bytes = std::vector<std::uint8_t>;

Bytes from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) {
        throw std::invalid_argument("odd hex length");
    }
    Bytes out;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        out.push_back(
            static_cast<std::uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    }
    return out;
}

Bytes to_vector(const std::array<std::uint8_t, 32>& bytes) {
    return {bytes.begin(), bytes.end()};
}

Bytes to_vector(const SecretBytes& bytes) {
    return {bytes.span().begin(), bytes.span().end()};
}

std::string to_string(const SecretBytes& bytes) {
    return {bytes.span().begin(), bytes.span().end()};
}

std::string to_string(const Bytes& bytes) {
    return {bytes.begin(), bytes.end()};
}

// RFC 7748 section 6.1, checked against several independent copies of the RFC's values.
constexpr char kAlicePrivate[] = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
constexpr char kAlicePublic[] = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
constexpr char kBobPrivate[] = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
constexpr char kBobPublic[] = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
constexpr char kShared[] = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

// The encodings of the points of order 1, 2, 4 and 8 (and values >= p that reduce to them),
// as libsodium's blocklist has them; the order-8 ones were checked with a Python Montgomery
// ladder (8P is the identity, 4P is not).
constexpr const char* kSmallOrderPoints[] = {
    "0000000000000000000000000000000000000000000000000000000000000000",  // 0, order 2
    "0100000000000000000000000000000000000000000000000000000000000000",  // 1, order 4
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",  // order 8
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",  // order 8
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p - 1, order 4
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p = 0
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p + 1 = 1
};

X25519PrivateKey x25519_key(const char* hex) {
    return X25519PrivateKey::from_raw(from_hex(hex)).value();
}

// ---------------------------------------------------------------------------------------
// X25519 keys. What they share with Ed25519 keys (PEM parsing, key files, their modes, the
// openssl command line) is the typed suite PemKeyFileTest in ed25519_test.cpp, run for both.

TEST(X25519Test, Rfc7748KnownAnswers) {
    auto alice = x25519_key(kAlicePrivate);
    auto bob = x25519_key(kBobPrivate);
    EXPECT_EQ(to_vector(alice.public_key().raw()), from_hex(kAlicePublic));
    EXPECT_EQ(to_vector(bob.public_key().raw()), from_hex(kBobPublic));
    auto bob_public = X25519PublicKey::from_raw(from_hex(kBobPublic));
    auto alice_public = X25519PublicKey::from_raw(from_hex(kAlicePublic));
    ASSERT_TRUE(bob_public.ok()) << bob_public.error().message;
    ASSERT_TRUE(alice_public.ok()) << alice_public.error().message;
    EXPECT_TRUE(alice_public.value() == alice.public_key());
    // Both directions: a shared secret that only works one way is not one.
    EXPECT_EQ(to_vector(x25519_shared_for_test(alice, bob_public.value())), from_hex(kShared));
    EXPECT_EQ(to_vector(x25519_shared_for_test(bob, alice_public.value())), from_hex(kShared));
}

TEST(X25519Test, FromRawRefusesSmallOrderPoints) {
    for (const char* hex : kSmallOrderPoints) {
        for (bool top_bit : {false, true}) {
            Bytes raw = from_hex(hex);
            // RFC 7748 section 5: the top bit is ignored, so it must not smuggle a point in.
            raw[31] = static_cast<std::uint8_t>(top_bit ? raw[31] | 0x80 : raw[31]);
            auto key = X25519PublicKey::from_raw(raw);
            ASSERT_FALSE(key.ok()) << hex << " top bit " << top_bit;
            EXPECT_EQ(key.error().code, ErrorCode::kInvalidKey);
        }
    }
    Bytes base_point(32, 0);
    base_point[0] = 9;
    EXPECT_TRUE(X25519PublicKey::from_raw(base_point).ok());
}

TEST(X25519Test, FromPemRefusesSmallOrderPoint) {
    // SPKI of the all-zero X25519 key: the RFC 8410 prefix 302a300506032b656e032100 and 32
    // zero bytes, base64-encoded by Python's base64 module.
    constexpr char kZeroKeyPem[] =
        "-----BEGIN PUBLIC KEY-----\n"
        "MCowBQYDK2VuAyEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        "-----END PUBLIC KEY-----\n";
    auto key = X25519PublicKey::from_pem(kZeroKeyPem);
    ASSERT_FALSE(key.ok());
    EXPECT_EQ(key.error().code, ErrorCode::kInvalidKey) << key.error().message;
}

TEST(X25519Test, ReloadedKeyAgreesTheSame) {
    auto key = X25519PrivateKey::generate();
    auto other = X25519PrivateKey::generate();
    auto reloaded = X25519PrivateKey::from_pem(key.to_pem());
    ASSERT_TRUE(reloaded.ok()) << reloaded.error().message;
    EXPECT_EQ(to_vector(x25519_shared_for_test(reloaded.value(), other.public_key())),
              to_vector(x25519_shared_for_test(key, other.public_key())));
    EXPECT_EQ(to_vector(x25519_shared_for_test(other, key.public_key())),
              to_vector(x25519_shared_for_test(key, other.public_key())));
}

TEST(X25519Test, FingerprintIsBase64urlOfSha256) {
    auto key = x25519_key(kBobPrivate);
    std::string fingerprint = key.public_key().fingerprint();
    EXPECT_EQ(fingerprint.size(), 43u);
    // Computed with Python: base64url(hashlib.sha256(bytes.fromhex(kBobPublic)).digest()).
    EXPECT_EQ(fingerprint, "815WFhYKML88bnn6c8V21AIF6Pw7pOHG3Pk-a5joV7Q");
}

TEST(X25519Test, MovedFromKeyCannotAgree) {
    auto key = X25519PrivateKey::generate();
    X25519PrivateKey moved = std::move(key);
    // NOLINTNEXTLINE(bugprone-use-after-move)
    EXPECT_THROW((void)x25519_shared_for_test(key, moved.public_key()), std::logic_error);
    EXPECT_NO_THROW((void)x25519_shared_for_test(moved, moved.public_key()));
}

// ---------------------------------------------------------------------------------------
// Known answers: envelopes built by tests/unit/kat/envelope_vectors.py with pyca/cryptography.

const nlohmann::json& kat_vectors() {
    static const nlohmann::json vectors = [] {
        auto path = testing::repo_root() / "tests/unit/kat/envelope_vectors.json";
        std::ifstream in(path);
        if (!in) {
            throw std::runtime_error("cannot open " + path.string());
        }
        return nlohmann::json::parse(in).at("vectors");
    }();
    return vectors;
}

Bytes hex_member(const nlohmann::json& v, const char* name) {
    return from_hex(v.at(name).get<std::string>());
}

class EnvelopeKat : public ::testing::TestWithParam<std::size_t> {
  protected:
    void SetUp() override {
        ASSERT_EQ(kat_vectors().size(), 3u);
        v_ = kat_vectors().at(GetParam());
    }
    X25519PrivateKey recipient() const {
        return X25519PrivateKey::from_raw(hex_member(v_, "recipient_private")).value();
    }
    X25519PrivateKey ephemeral() const {
        return X25519PrivateKey::from_raw(hex_member(v_, "ephemeral_private")).value();
    }
    Ed25519PrivateKey sender() const {
        return Ed25519PrivateKey::from_raw_seed(hex_member(v_, "sender_seed")).value();
    }
    std::string envelope() const { return v_.at("envelope").get<std::string>(); }

    nlohmann::json v_;
};

TEST_P(EnvelopeKat, KeysMatch) {
    auto recipient_key = recipient();
    auto ephemeral_key = ephemeral();
    EXPECT_EQ(to_vector(recipient_key.public_key().raw()), hex_member(v_, "recipient_public"));
    EXPECT_EQ(to_vector(ephemeral_key.public_key().raw()), hex_member(v_, "ephemeral_public"));
    EXPECT_EQ(to_vector(sender().public_key().raw()), hex_member(v_, "sender_public"));
    // The vectors bind the sender's key into the HKDF info as envelope.h documents.
    constexpr std::string_view kInfoLabel = "cipherpulse-envelope/1 aes-256-gcm";
    Bytes info(kInfoLabel.begin(), kInfoLabel.end());
    Bytes sender_raw = to_vector(sender().public_key().raw());
    info.insert(info.end(), sender_raw.begin(), sender_raw.end());
    EXPECT_EQ(hex_member(v_, "kdf_info"), info);
    EXPECT_EQ(recipient_key.public_key().fingerprint(),
              v_.at("recipient_fingerprint").get<std::string>());
    EXPECT_EQ(to_vector(x25519_shared_for_test(ephemeral_key, recipient_key.public_key())),
              hex_member(v_, "shared_secret"));

    // The PEM written by pyca/cryptography parses, and ours is byte-identical to it.
    const std::string pem = v_.at("recipient_public_pem").get<std::string>();
    auto parsed = X25519PublicKey::from_pem(pem);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_TRUE(parsed.value() == recipient_key.public_key());
    EXPECT_EQ(recipient_key.public_key().to_pem(), pem);
}

TEST_P(EnvelopeKat, OpensTheIndependentEnvelope) {
    auto sender_public = sender().public_key();
    auto opened = open_envelope(envelope(), recipient(), sender_public);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    EXPECT_EQ(opened.value().header, to_string(hex_member(v_, "header")));
    EXPECT_EQ(to_vector(opened.value().plaintext), hex_member(v_, "plaintext"));

    auto header = unsafe_envelope_header(envelope());
    ASSERT_TRUE(header.ok()) << header.error().message;
    EXPECT_EQ(header.value(), to_string(hex_member(v_, "header")));
}

TEST_P(EnvelopeKat, SealsByteIdenticalEnvelope) {
    Bytes iv_bytes = hex_member(v_, "iv");
    ASSERT_EQ(iv_bytes.size(), kEnvelopeIvBytes);
    std::span<const std::uint8_t, kEnvelopeIvBytes> iv(iv_bytes.data(), kEnvelopeIvBytes);
    Bytes plaintext = hex_member(v_, "plaintext");
    std::string header = to_string(hex_member(v_, "header"));
    std::string sealed = unsafe_seal_envelope_for_test(header, plaintext, recipient().public_key(),
                                                       sender(), ephemeral(), iv);
    EXPECT_EQ(sealed, envelope());
    EXPECT_EQ(sealed.size(), envelope_size(header.size(), plaintext.size()));
    EXPECT_EQ(unsafe_seal_envelope_for_test(header, to_string(plaintext), recipient().public_key(),
                                            sender(), ephemeral(), iv),
              envelope());
}

INSTANTIATE_TEST_SUITE_P(Vectors, EnvelopeKat, ::testing::Values(0, 1, 2));

// ---------------------------------------------------------------------------------------
// Envelopes

class EnvelopeTest : public ::testing::Test {
  protected:
    X25519PrivateKey recipient_ = X25519PrivateKey::generate();
    Ed25519PrivateKey sender_ = Ed25519PrivateKey::generate();

    std::string seal(std::string_view header = R"({"kind":"command","seq":7})",
                     std::string_view plaintext = "set-interval 30s") const {
        return seal_envelope(header, plaintext, recipient_.public_key(), sender_);
    }
    Result<OpenedEnvelope> open(std::string_view envelope) const {
        return open_envelope(envelope, recipient_, sender_.public_key());
    }
};

OrderedJson members(std::string_view envelope) {
    return OrderedJson::parse(envelope);
}

Bytes decoded(const OrderedJson& doc, const char* name) {
    return base64url_decode(doc.at(name).get<std::string>()).value();
}

void append_u32be(Bytes& out, std::size_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) {
        out.push_back(static_cast<std::uint8_t>((value >> shift) & 0xff));
    }
}

// resign replaces "sig" with a fresh signature over the members as they now are, built
// here from the documented layout, so a test can reach the checks after the signature.
std::string resign(OrderedJson doc, const X25519PublicKey& recipient,
                   const Ed25519PrivateKey& sender) {
    Bytes hdr = decoded(doc, "hdr");
    Bytes ct = decoded(doc, "ct");
    Bytes message(kEnvelopeVersion.begin(), kEnvelopeVersion.end());
    message.push_back(0);
    append_u32be(message, hdr.size());
    message.insert(message.end(), hdr.begin(), hdr.end());
    auto rcpt = recipient.raw();
    message.insert(message.end(), rcpt.begin(), rcpt.end());
    for (const char* name : {"epk", "iv"}) {
        Bytes part = decoded(doc, name);
        message.insert(message.end(), part.begin(), part.end());
    }
    append_u32be(message, ct.size());
    message.insert(message.end(), ct.begin(), ct.end());
    doc["sig"] = base64url_encode(sender.sign(message));
    return doc.dump();
}

TEST_F(EnvelopeTest, RoundTrip) {
    const std::string header("binary\0header\xff", 14);
    const Bytes plaintext = {0, 1, 2, 0xfe, 0xff};
    for (const auto& [h, p] : std::vector<std::pair<std::string, Bytes>>{
             {"", {}}, {header, {}}, {"", plaintext}, {header, plaintext}, {"h", Bytes(4096, 7)}}) {
        std::string envelope = seal_envelope(h, p, recipient_.public_key(), sender_);
        EXPECT_EQ(envelope.size(), envelope_size(h.size(), p.size()));
        auto opened = open(envelope);
        ASSERT_TRUE(opened.ok()) << opened.error().message;
        EXPECT_EQ(opened.value().header, h);
        EXPECT_EQ(to_vector(opened.value().plaintext), p);
    }
}

TEST_F(EnvelopeTest, EnvelopeTextIsCanonical) {
    std::string envelope = seal();
    auto doc = members(envelope);
    std::vector<std::string> names;
    for (const auto& item : doc.items()) {
        names.push_back(item.key());
    }
    EXPECT_EQ(names, (std::vector<std::string>{"v", "hdr", "rcpt", "epk", "iv", "ct", "sig"}));
    EXPECT_EQ(doc.dump(), envelope);  // no white space
    EXPECT_EQ(doc["v"], "cipherpulse-envelope/1");
    EXPECT_EQ(doc["rcpt"], recipient_.public_key().fingerprint());
    EXPECT_EQ(to_string(decoded(doc, "hdr")), R"({"kind":"command","seq":7})");
    EXPECT_EQ(decoded(doc, "epk").size(), 32u);
    EXPECT_EQ(decoded(doc, "iv").size(), 12u);
    EXPECT_EQ(decoded(doc, "ct").size(), std::string_view("set-interval 30s").size() + 16);
    EXPECT_EQ(decoded(doc, "sig").size(), 64u);
    EXPECT_EQ(envelope.find("set-interval"), std::string::npos);
}

TEST_F(EnvelopeTest, EverySealUsesAFreshEphemeralKeyAndIv) {
    auto first = members(seal());
    auto second = members(seal());
    EXPECT_NE(first["epk"], second["epk"]);
    EXPECT_NE(first["iv"], second["iv"]);
    EXPECT_NE(first["ct"], second["ct"]);
}

TEST_F(EnvelopeTest, TamperedMembersAreRefused) {
    const std::string envelope = seal();
    struct Case {
        const char* member;
        ErrorCode code;
        const char* says;
    };
    for (const Case& c : {Case{"hdr", ErrorCode::kBadSignature, "signature"},
                          Case{"ct", ErrorCode::kBadSignature, "signature"},
                          Case{"iv", ErrorCode::kBadSignature, "signature"},
                          Case{"epk", ErrorCode::kBadSignature, "signature"},
                          Case{"sig", ErrorCode::kBadSignature, "signature"},
                          Case{"rcpt", ErrorCode::kInvalidKey, "another recipient"}}) {
        for (std::size_t byte : {0, 5}) {
            auto doc = members(envelope);
            Bytes value = decoded(doc, c.member);
            value[byte] ^= 0x01;
            doc[c.member] = base64url_encode(value);
            auto opened = open(doc.dump());
            ASSERT_FALSE(opened.ok()) << c.member;
            EXPECT_EQ(opened.error().code, c.code) << c.member << ": " << opened.error().message;
            EXPECT_NE(opened.error().message.find(c.says), std::string::npos)
                << opened.error().message;
        }
    }
    // A header one byte longer or shorter is a different signed message too.
    for (std::string_view header : {std::string_view(R"({"kind":"command","seq":7} )"),
                                    std::string_view(R"({"kind":"command","seq":7)")}) {
        auto doc = members(envelope);
        doc["hdr"] = base64url_encode(header);
        auto opened = open(doc.dump());
        ASSERT_FALSE(opened.ok());
        EXPECT_EQ(opened.error().code, ErrorCode::kBadSignature);
    }
}

TEST_F(EnvelopeTest, WrongRecipientIsRefused) {
    auto other = X25519PrivateKey::generate();
    auto opened = open_envelope(seal(), other, sender_.public_key());
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.error().code, ErrorCode::kInvalidKey);
    EXPECT_NE(opened.error().message.find("envelope is for another recipient"), std::string::npos)
        << opened.error().message;

    // Rewriting rcpt for the other key does not help: the signature binds the recipient.
    auto doc = members(seal());
    doc["rcpt"] = other.public_key().fingerprint();
    auto retargeted = open_envelope(doc.dump(), other, sender_.public_key());
    ASSERT_FALSE(retargeted.ok());
    EXPECT_EQ(retargeted.error().code, ErrorCode::kBadSignature);
}

TEST_F(EnvelopeTest, WrongSenderKeyIsRefused) {
    auto impostor = Ed25519PrivateKey::generate();
    auto opened = open_envelope(seal(), recipient_, impostor.public_key());
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.error().code, ErrorCode::kBadSignature);

    // An envelope sealed by the impostor does not open as the expected sender's either.
    std::string forged = seal_envelope("h", "p", recipient_.public_key(), impostor);
    auto refused = open(forged);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::kBadSignature);
}

TEST_F(EnvelopeTest, ResignedByAnotherKeyDoesNotOpenForThatKey) {
    // A third party strips the signature and signs the same hdr, rcpt, epk, iv and ct with
    // its own key. The signature verifies with that key, but the AES key was derived for
    // the real sender's key, so the envelope must not open as the third party's.
    auto thief = Ed25519PrivateKey::generate();
    const std::string original = seal();
    const std::string stolen = resign(members(original), recipient_.public_key(), thief);
    auto before = members(original);
    auto after = members(stolen);
    for (const char* name : {"v", "hdr", "rcpt", "epk", "iv", "ct"}) {
        ASSERT_EQ(after[name], before[name]) << name;
    }
    ASSERT_NE(after["sig"], before["sig"]);

    auto opened = open_envelope(stolen, recipient_, thief.public_key());
    ASSERT_FALSE(opened.ok()) << "re-signed envelope opened as the thief's";
    EXPECT_EQ(opened.error().code, ErrorCode::kBadSignature);
    EXPECT_NE(opened.error().message.find("envelope does not decrypt"), std::string::npos)
        << opened.error().message;

    // Neither does it open as the real sender's (the signature is the thief's); the
    // original still does.
    auto as_sender = open(stolen);
    ASSERT_FALSE(as_sender.ok());
    EXPECT_EQ(as_sender.error().code, ErrorCode::kBadSignature);
    EXPECT_NE(as_sender.error().message.find("signature"), std::string::npos);
    auto control = open(original);
    ASSERT_TRUE(control.ok()) << control.error().message;
    EXPECT_EQ(to_string(control.value().plaintext), "set-interval 30s");
}

TEST_F(EnvelopeTest, SignedButUndecryptableIsRefused) {
    // The sender's key signs altered members: the signature verifies, the GCM tag does not.
    const X25519PublicKey recipient = recipient_.public_key();
    auto control = open(resign(members(seal()), recipient, sender_));
    ASSERT_TRUE(control.ok()) << control.error().message;  // resign itself is right

    for (const char* member : {"ct", "hdr", "iv"}) {
        auto doc = members(seal());
        Bytes value = decoded(doc, member);
        value.back() ^= 0x80;
        doc[member] = base64url_encode(value);
        auto opened = open(resign(doc, recipient, sender_));
        ASSERT_FALSE(opened.ok()) << member;
        EXPECT_EQ(opened.error().code, ErrorCode::kBadSignature) << member;
        EXPECT_NE(opened.error().message.find("envelope does not decrypt"), std::string::npos)
            << opened.error().message;
    }
    // Another ephemeral key (of large order) gives another AES key.
    auto doc = members(seal());
    doc["epk"] = base64url_encode(X25519PrivateKey::generate().public_key().raw());
    auto opened = open(resign(doc, recipient, sender_));
    ASSERT_FALSE(opened.ok());
    EXPECT_NE(opened.error().message.find("envelope does not decrypt"), std::string::npos);
}

TEST_F(EnvelopeTest, SmallOrderEphemeralKeyIsRefused) {
    for (const char* hex : kSmallOrderPoints) {
        auto doc = members(seal());
        doc["epk"] = base64url_encode(from_hex(hex));
        auto opened = open(resign(doc, recipient_.public_key(), sender_));
        ASSERT_FALSE(opened.ok()) << hex;
        EXPECT_EQ(opened.error().code, ErrorCode::kInvalidKey) << opened.error().message;
    }
}

TEST_F(EnvelopeTest, CheckOrderPutsRecipientAndSignatureBeforeDecryption) {
    auto other = X25519PrivateKey::generate();
    auto doc = members(seal());
    Bytes sig = decoded(doc, "sig");
    sig[0] ^= 1;
    doc["sig"] = base64url_encode(sig);
    // Bad signature and another recipient: the recipient is reported.
    auto wrong_recipient = open_envelope(doc.dump(), other, sender_.public_key());
    ASSERT_FALSE(wrong_recipient.ok());
    EXPECT_EQ(wrong_recipient.error().code, ErrorCode::kInvalidKey);
    // Bad signature and altered ciphertext: the signature is reported, nothing is decrypted.
    Bytes ct = decoded(doc, "ct");
    ct[0] ^= 1;
    doc["ct"] = base64url_encode(ct);
    auto bad = open(doc.dump());
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, ErrorCode::kBadSignature);
    EXPECT_NE(bad.error().message.find("signature"), std::string::npos) << bad.error().message;
    EXPECT_EQ(bad.error().message.find("decrypt"), std::string::npos) << bad.error().message;
}

TEST_F(EnvelopeTest, MalformedEnvelopesAreRefused) {
    const std::string good = seal();
    auto with = [&](const char* name, const OrderedJson& value) {
        auto doc = members(good);
        doc[name] = value;
        return doc.dump();
    };
    auto without = [&](const char* name) {
        auto doc = members(good);
        doc.erase(name);
        return doc.dump();
    };
    auto b64 = [](std::size_t size) { return base64url_encode(Bytes(size, 0x42)); };
    const std::string duplicate_v = good.substr(0, good.size() - 1) + R"(,"v":"x"})";
    const std::string nul_inside = good.substr(0, 10) + std::string(1, '\0') + good.substr(10);
    std::string deep = R"({"v":"cipherpulse-envelope/1","x":)" + std::string(100000, '[') +
                       std::string(100000, ']') + "}";
    std::string deep_objects = R"({"v":"cipherpulse-envelope/1","x":)";
    for (int i = 0; i < 100000; ++i) {
        deep_objects += R"({"a":)";
    }
    deep_objects += "1" + std::string(100000, '}') + "}";
    const std::string bad_utf8 = good.substr(0, good.size() - 2) + "\xff\"}";

    const std::vector<std::pair<std::string, ErrorCode>> cases = {
        {"", ErrorCode::kInvalidEncoding},
        {"not json", ErrorCode::kInvalidEncoding},
        {"[]", ErrorCode::kInvalidEncoding},
        {"\"text\"", ErrorCode::kInvalidEncoding},
        {good.substr(0, good.size() - 1), ErrorCode::kInvalidEncoding},
        {good + "{}", ErrorCode::kInvalidEncoding},
        {nul_inside, ErrorCode::kInvalidEncoding},
        {duplicate_v, ErrorCode::kInvalidEncoding},
        {without("v"), ErrorCode::kInvalidEncoding},
        {with("v", 1), ErrorCode::kInvalidEncoding},
        {with("v", "cipherpulse-envelope/2"), ErrorCode::kUnsupported},
        {with("v", "cipherpulse-envelope/1 "), ErrorCode::kUnsupported},
        {deep, ErrorCode::kInvalidEncoding},
        {deep_objects, ErrorCode::kInvalidEncoding},
        {R"({"v":1e999})", ErrorCode::kInvalidEncoding},
        {bad_utf8, ErrorCode::kInvalidEncoding},
        {without("sig"), ErrorCode::kInvalidEncoding},
        {without("hdr"), ErrorCode::kInvalidEncoding},
        {with("extra", "x"), ErrorCode::kInvalidEncoding},
        {with("ct", OrderedJson::array()), ErrorCode::kInvalidEncoding},
        {with("iv", OrderedJson::object()), ErrorCode::kInvalidEncoding},
        {with("epk", nullptr), ErrorCode::kInvalidEncoding},
        {with("hdr", 12), ErrorCode::kInvalidEncoding},
        {with("ct", members(good)["ct"].get<std::string>() + "="), ErrorCode::kInvalidEncoding},
        {with("ct", " " + members(good)["ct"].get<std::string>()), ErrorCode::kInvalidEncoding},
        {with("sig", base64_encode(Bytes(64, 0xfb))), ErrorCode::kInvalidEncoding},
        {with("epk", std::string(42, 'A') + "B"), ErrorCode::kInvalidEncoding},  // not canonical
        {with("hdr", "A"), ErrorCode::kInvalidEncoding},
        {with("rcpt", b64(31)), ErrorCode::kInvalidLength},
        {with("rcpt", b64(33)), ErrorCode::kInvalidLength},
        {with("epk", b64(31)), ErrorCode::kInvalidLength},
        {with("iv", b64(11)), ErrorCode::kInvalidLength},
        {with("iv", b64(16)), ErrorCode::kInvalidLength},
        {with("sig", b64(63)), ErrorCode::kInvalidLength},
        {with("ct", b64(15)), ErrorCode::kInvalidLength},
        {with("ct", ""), ErrorCode::kInvalidLength},
    };
    for (const auto& [text, code] : cases) {
        auto opened = open(text);
        ASSERT_FALSE(opened.ok()) << text.substr(0, 200);
        EXPECT_EQ(opened.error().code, code)
            << text.substr(0, 200) << " -> " << opened.error().message;
        auto header = unsafe_envelope_header(text);
        ASSERT_FALSE(header.ok()) << text.substr(0, 200);
        EXPECT_EQ(header.error().code, code) << text.substr(0, 200);
    }
}

TEST_F(EnvelopeTest, AcceptsAnyJsonSpellingOfTheSameMembers) {
    auto doc = members(seal());
    OrderedJson reordered;
    for (const char* name : {"sig", "ct", "iv", "epk", "rcpt", "hdr", "v"}) {
        reordered[name] = doc[name];
    }
    auto opened = open(reordered.dump(2) + "\n");
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    EXPECT_EQ(to_string(opened.value().plaintext), "set-interval 30s");
}

TEST_F(EnvelopeTest, OversizedEnvelopeIsRefusedBeforeParsing) {
    std::string huge(kEnvelopeMaxBytes + 1, ' ');
    auto opened = open(huge);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.error().code, ErrorCode::kInvalidLength);
    auto header = unsafe_envelope_header(huge);
    ASSERT_FALSE(header.ok());
    EXPECT_EQ(header.error().code, ErrorCode::kInvalidLength);
}

TEST_F(EnvelopeTest, EnvelopeSizeIsExactAndBoundsSealing) {
    for (std::size_t h : {0, 1, 2, 3, 100}) {
        for (std::size_t p : {0, 1, 2, 3, 4, 5, 47, 48, 49}) {
            std::string envelope =
                seal_envelope(std::string(h, 'h'), Bytes(p, 1), recipient_.public_key(), sender_);
            EXPECT_EQ(envelope.size(), envelope_size(h, p)) << h << " " << p;
        }
    }
    EXPECT_GT(envelope_size(0, kEnvelopeMaxBytes), kEnvelopeMaxBytes);
    EXPECT_GT(envelope_size(SIZE_MAX, 0), kEnvelopeMaxBytes);
    EXPECT_GT(envelope_size(0, SIZE_MAX), kEnvelopeMaxBytes);

    // The largest plaintext that fits, and one byte more.
    std::size_t fits = kEnvelopeMaxBytes / 4 * 3;
    while (envelope_size(0, fits) > kEnvelopeMaxBytes) {
        --fits;
    }
    ASSERT_LE(envelope_size(0, fits), kEnvelopeMaxBytes);
    ASSERT_GT(envelope_size(0, fits + 1), kEnvelopeMaxBytes);
    Bytes too_big(fits + 1, 0);
    EXPECT_THROW((void)seal_envelope("", too_big, recipient_.public_key(), sender_),
                 std::invalid_argument);
    EXPECT_THROW((void)seal_envelope("x", Bytes(fits, 0), recipient_.public_key(), sender_),
                 std::invalid_argument);
}

TEST_F(EnvelopeTest, LargestEnvelopeRoundTrips) {
    std::size_t fits = kEnvelopeMaxBytes / 4 * 3;
    while (envelope_size(0, fits) > kEnvelopeMaxBytes) {
        --fits;
    }
    Bytes plaintext(fits, 0x5c);
    std::string envelope = seal_envelope("", plaintext, recipient_.public_key(), sender_);
    ASSERT_LE(envelope.size(), kEnvelopeMaxBytes);
    auto opened = open(envelope);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    EXPECT_EQ(opened.value().plaintext.size(), fits);
}

TEST_F(EnvelopeTest, UnsafeHeaderReadsWithoutAnyKey) {
    auto header = unsafe_envelope_header(seal("route:ward-3", "secret"));
    ASSERT_TRUE(header.ok()) << header.error().message;
    EXPECT_EQ(header.value(), "route:ward-3");
    // It checks nothing but form: an envelope for someone else, badly signed, still reads.
    auto doc = members(seal_envelope("forged", "x", X25519PrivateKey::generate().public_key(),
                                     Ed25519PrivateKey::generate()));
    doc["sig"] = base64url_encode(Bytes(64, 0));
    auto forged = unsafe_envelope_header(doc.dump());
    ASSERT_TRUE(forged.ok());
    EXPECT_EQ(forged.value(), "forged");
}

TEST_F(EnvelopeTest, MutatedEnvelopesNeverOpenAndNeverThrow) {
    const std::string envelope = seal();
    std::mt19937 rng(20240917);  // fixed seed: the same mutations every run
    for (int i = 0; i < 3000; ++i) {
        std::string mutated = envelope;
        std::size_t at = rng() % mutated.size();
        switch (rng() % 3) {
            case 0:
                mutated[at] = static_cast<char>(mutated[at] ^ (1u << (rng() % 8)));
                break;
            case 1:
                mutated.erase(at, 1);
                break;
            default:
                mutated.insert(at, 1, static_cast<char>(rng() % 256));
                break;
        }
        Result<OpenedEnvelope> opened = make_error(ErrorCode::kIo, "not run");
        ASSERT_NO_THROW(opened = open(mutated)) << mutated;
        if (opened.ok()) {
            // Only a change JSON ignores may open (white space between tokens).
            ASSERT_EQ(nlohmann::json::parse(mutated), nlohmann::json::parse(envelope)) << mutated;
        }
        ASSERT_NO_THROW((void)unsafe_envelope_header(mutated));
    }
}

TEST_F(EnvelopeTest, MovedFromKeysThrowLogicError) {
    const std::string envelope = seal();
    X25519PrivateKey recipient = std::move(recipient_);
    EXPECT_THROW((void)open_envelope(envelope, recipient_, sender_.public_key()),
                 std::logic_error);  // NOLINT(bugprone-use-after-move)
    Ed25519PrivateKey sender = std::move(sender_);
    EXPECT_THROW((void)seal_envelope("", "x", recipient.public_key(), sender_), std::logic_error);
    EXPECT_TRUE(open_envelope(envelope, recipient, sender.public_key()).ok());
}

}  // namespace
}  // namespace cipherpulse
