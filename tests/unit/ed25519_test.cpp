#include "cipherpulse/ed25519.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cipherpulse/base64url.h"
#include "cipherpulse/files.h"
#include "cipherpulse/x25519.h"
#include "unit/test_support.h"

namespace cipherpulse {
namespace {

// pem_line is a PEM boundary line ("-----BEGIN <label>-----\n"). The labels are assembled
// here so that no complete private-key header stands in the source: every key these tests
// use is generated at test time.
std::string pem_line(const std::string& kind, const std::string& label) {
    return "-----" + kind + " " + label + "-----\n";
}
const std::string kPrivateLabel = std::string("PRIVATE") + " KEY";

std::vector<std::uint8_t> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) {
        throw std::invalid_argument("odd hex length");
    }
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        out.push_back(
            static_cast<std::uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    }
    return out;
}

std::vector<std::uint8_t> to_vector(const Ed25519Signature& signature) {
    return {signature.begin(), signature.end()};
}

std::vector<std::uint8_t> to_vector(const std::array<std::uint8_t, 32>& bytes) {
    return {bytes.begin(), bytes.end()};
}

// RFC 8032 section 7.1, TEST 1 to TEST 3. The values were checked against two independent
// copies of the RFC vectors (pyca/cryptography's ed25519 vector loader test and the AVP
// vector file citing RFC 8032 section 7.1); none of them comes from this code.
struct Rfc8032Vector {
    const char* name;
    const char* secret_key;
    const char* public_key;
    const char* message;
    const char* signature;
};

constexpr Rfc8032Vector kRfc8032Vectors[] = {
    {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701c"
     "f9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0"
     "f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f76098"
     "4dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

Ed25519PrivateKey test1_key() {
    return Ed25519PrivateKey::from_raw_seed(from_hex(kRfc8032Vectors[0].secret_key)).value();
}

// The PEM of the RFC 8032 TEST 1 public key: the fixed DER prefix of RFC 8410 (SPKI
// 302a300506032b6570032100) followed by the raw key, base64-encoded by Python's base64
// module, not by this code.
constexpr char kTest1PublicPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
    "-----END PUBLIC KEY-----\n";

// An RSA public key, as `openssl pkey -pubout` writes it.
constexpr char kRsaPublicPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC1xxCc8RrPFImvNFO0BIQz5vUR\n"
    "mzcxhY0bqSNJZVFlc9CZJTZ6rkAjwjjdQQkLFE4WHa/VhQMnRc/FEhsaQd04zmZt\n"
    "gs4Zr5VuQFcAvyDeBNTgnRB7ORsziOHYlvBnpdzipaQYbFM06++Wjl+MiyZPXIk6\n"
    "wdcGRxMeFWLTTbwkjwIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

using UniqueEvpPkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

// pem_by_openssl returns the PEM OpenSSL writes for `key` (an independent implementation, at
// test time): the public SPKI block, or the PKCS#8 private block, passphrase-encrypted when
// `cipher` is set.
std::string pem_by_openssl(EVP_PKEY* key, bool private_half, const EVP_CIPHER* cipher = nullptr) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    if (key == nullptr || !bio) {
        throw std::runtime_error("OpenSSL key or BIO missing");
    }
    char pass[] = "secret";
    int ok = !private_half ? PEM_write_bio_PUBKEY(bio.get(), key)
             : cipher != nullptr
                 ? PEM_write_bio_PKCS8PrivateKey(bio.get(), key, cipher, pass, 6, nullptr, nullptr)
                 : PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
    if (ok != 1) {
        throw std::runtime_error("PEM_write failed");
    }
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

// generated_pem is pem_by_openssl for a fresh OpenSSL key of `type` ("EC" is P-256).
std::string generated_pem(const char* type, bool private_half, const EVP_CIPHER* cipher = nullptr) {
    UniqueEvpPkey key(std::string_view(type) == "EC"
                          ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, "P-256")
                          : EVP_PKEY_Q_keygen(nullptr, nullptr, type),
                      EVP_PKEY_free);
    if (!key) {
        throw std::runtime_error("OpenSSL key generation failed");
    }
    return pem_by_openssl(key.get(), private_half, cipher);
}

// test1_private_pem is the PKCS#8 PEM of the RFC 8032 TEST 1 key, written by OpenSSL from
// the RFC's seed when the test runs: no private key is stored in the repository.
std::string test1_private_pem() {
    auto seed = from_hex(kRfc8032Vectors[0].secret_key);
    UniqueEvpPkey key(
        EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()),
        EVP_PKEY_free);
    return pem_by_openssl(key.get(), true);
}

std::string to_string(const SecretBytes& bytes) {
    return {bytes.span().begin(), bytes.span().end()};
}

unsigned file_mode(const std::filesystem::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        throw std::runtime_error("stat failed");
    }
    return static_cast<unsigned>(st.st_mode & 07777);
}

void write_plain_file(const std::filesystem::path& path, std::string_view text, unsigned mode) {
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << text;
    }
    std::filesystem::permissions(path, static_cast<std::filesystem::perms>(mode));
}

bool have_openssl_cli() {
    return std::system("openssl version >/dev/null 2>&1") == 0;
}

// run_command returns the standard output of `command`, or throws if it exits non-zero.
std::string run_command(const std::string& command) {
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) {
        throw std::runtime_error("popen failed: " + command);
    }
    std::string out;
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
        out.append(buffer, n);
    }
    if (::pclose(pipe) != 0) {
        throw std::runtime_error("command failed: " + command);
    }
    return out;
}

// quote single-quotes a path for the shell (test paths hold no quote).
std::string quote(const std::filesystem::path& path) {
    std::string out(1, '\'');
    out += path.string();
    out += '\'';
    return out;
}

// ---------------------------------------------------------------------------------------
// Ed25519 signatures and the RFC 8032 keys

TEST(Ed25519Test, Rfc8032KnownAnswers) {
    for (const auto& v : kRfc8032Vectors) {
        SCOPED_TRACE(v.name);
        auto key = Ed25519PrivateKey::from_raw_seed(from_hex(v.secret_key));
        ASSERT_TRUE(key.ok()) << key.error().message;
        EXPECT_EQ(to_vector(key.value().public_key().raw()), from_hex(v.public_key));
        auto message = from_hex(v.message);
        EXPECT_EQ(to_vector(key.value().sign(message)), from_hex(v.signature));

        auto public_key = Ed25519PublicKey::from_raw(from_hex(v.public_key));
        ASSERT_TRUE(public_key.ok());
        EXPECT_TRUE(public_key.value().verify(message, from_hex(v.signature)));
        EXPECT_TRUE(public_key.value() == key.value().public_key());
    }
}

// RFC 8032 TEST 2 signs the single byte 0x72, which is the text "r".
TEST(Ed25519Test, StringViewOverloadsSignTheSameBytes) {
    const auto& v = kRfc8032Vectors[1];
    auto key = Ed25519PrivateKey::from_raw_seed(from_hex(v.secret_key)).value();
    EXPECT_EQ(to_vector(key.sign(std::string_view("r"))), from_hex(v.signature));
    EXPECT_TRUE(key.public_key().verify(std::string_view("r"), from_hex(v.signature)));
    EXPECT_FALSE(key.public_key().verify(std::string_view("s"), from_hex(v.signature)));
}

TEST(Ed25519Test, VerifyRejectsTamperedMessageAndSignature) {
    const auto& v = kRfc8032Vectors[2];
    auto public_key = Ed25519PublicKey::from_raw(from_hex(v.public_key)).value();
    auto message = from_hex(v.message);
    auto signature = from_hex(v.signature);
    ASSERT_TRUE(public_key.verify(message, signature));

    auto other_message = message;
    other_message[0] ^= 0x01;
    EXPECT_FALSE(public_key.verify(other_message, signature));
    EXPECT_FALSE(public_key.verify(std::span<const std::uint8_t>(message).first(1), signature));

    for (std::size_t i = 0; i < signature.size(); ++i) {
        auto bad = signature;
        bad[i] ^= 0x40;
        EXPECT_FALSE(public_key.verify(message, bad)) << "byte " << i;
    }
}

TEST(Ed25519Test, VerifyRejectsWrongLengthSignatures) {
    const auto& v = kRfc8032Vectors[0];
    auto public_key = Ed25519PublicKey::from_raw(from_hex(v.public_key)).value();
    auto signature = from_hex(v.signature);
    std::vector<std::uint8_t> empty;
    EXPECT_FALSE(public_key.verify(empty, empty));
    EXPECT_FALSE(public_key.verify(empty, std::span<const std::uint8_t>(signature).first(63)));
    auto longer = signature;
    longer.push_back(0);
    EXPECT_FALSE(public_key.verify(empty, longer));
    auto doubled = signature;
    doubled.insert(doubled.end(), signature.begin(), signature.end());
    EXPECT_FALSE(public_key.verify(empty, doubled));
}

TEST(Ed25519Test, VerifyRejectsWrongKey) {
    const auto& v = kRfc8032Vectors[0];
    auto other = Ed25519PublicKey::from_raw(from_hex(kRfc8032Vectors[1].public_key)).value();
    EXPECT_FALSE(other.verify(std::vector<std::uint8_t>{}, from_hex(v.signature)));
    // 32 bytes that are not a valid point encoding (y >= p) must simply fail, not crash.
    auto not_a_point = Ed25519PublicKey::from_raw(std::vector<std::uint8_t>(32, 0xff)).value();
    EXPECT_FALSE(not_a_point.verify(std::vector<std::uint8_t>{}, from_hex(v.signature)));
}

// S + L verifies under a check that reduces S mod L; RFC 8032 section 5.1.7 requires
// S < L, which is what makes signatures non-malleable.
TEST(Ed25519Test, VerifyRejectsNonCanonicalS) {
    const auto& v = kRfc8032Vectors[0];
    auto public_key = Ed25519PublicKey::from_raw(from_hex(v.public_key)).value();
    auto signature = from_hex(v.signature);
    // L = 2^252 + 27742317777372353535851937790883648493, little-endian (computed with Python).
    auto order = from_hex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    unsigned carry = 0;
    for (std::size_t i = 0; i < 32; ++i) {
        unsigned sum = signature[32 + i] + order[i] + carry;
        signature[32 + i] = static_cast<std::uint8_t>(sum & 0xff);
        carry = sum >> 8;
    }
    ASSERT_EQ(carry, 0u);
    EXPECT_FALSE(public_key.verify(std::vector<std::uint8_t>{}, signature));
}

TEST(Ed25519Test, PemKnownAnswers) {
    auto key = test1_key();
    EXPECT_EQ(key.public_key().to_pem(), kTest1PublicPem);
    EXPECT_EQ(to_string(key.to_pem()), test1_private_pem());

    auto public_key = Ed25519PublicKey::from_pem(kTest1PublicPem);
    ASSERT_TRUE(public_key.ok()) << public_key.error().message;
    EXPECT_EQ(to_vector(public_key.value().raw()), from_hex(kRfc8032Vectors[0].public_key));

    auto private_key = Ed25519PrivateKey::from_pem(test1_private_pem());
    ASSERT_TRUE(private_key.ok()) << private_key.error().message;
    EXPECT_EQ(to_vector(private_key.value().sign(std::string_view())),
              from_hex(kRfc8032Vectors[0].signature));
}

TEST(Ed25519Test, SavedKeyLoadsAndSignsTheSame) {
    testing::TempDir dir;
    ASSERT_TRUE(test1_key().save(dir / "identity.pem", false).ok());
    auto loaded = Ed25519PrivateKey::load(dir / "identity.pem");
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    EXPECT_EQ(to_vector(loaded.value().sign(std::string_view())),
              from_hex(kRfc8032Vectors[0].signature));

    auto key = Ed25519PrivateKey::generate();
    auto reloaded = Ed25519PrivateKey::from_pem(key.to_pem());
    ASSERT_TRUE(reloaded.ok()) << reloaded.error().message;
    EXPECT_EQ(reloaded.value().sign(std::string_view("reading")),
              key.sign(std::string_view("reading")));
    EXPECT_TRUE(key.public_key().verify(std::string_view("reading"),
                                        reloaded.value().sign(std::string_view("reading"))));
    EXPECT_FALSE(Ed25519PrivateKey::generate().public_key().verify(
        std::string_view("reading"), key.sign(std::string_view("reading"))));
}

TEST(Ed25519Test, FingerprintsKnownAnswers) {
    auto public_key = test1_key().public_key();
    // base64url(SHA-256(raw)) computed with Python's hashlib/base64.
    EXPECT_EQ(public_key.fingerprint(), "If4x36FUomFia_hUBG_SJxt77UtqvkWqWId-9H-XIbk");
    // RFC 8037 appendix A.3 (JWK thumbprint of the appendix A key).
    EXPECT_EQ(public_key.jwk_thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    auto other = Ed25519PublicKey::from_raw(from_hex(kRfc8032Vectors[1].public_key)).value();
    EXPECT_NE(other.fingerprint(), public_key.fingerprint());
    EXPECT_NE(other.jwk_thumbprint(), public_key.jwk_thumbprint());
}

TEST(Ed25519Test, PublicKeyIsACopyableValue) {
    auto a = test1_key().public_key();
    Ed25519PublicKey b = a;
    EXPECT_TRUE(a == b);
    b = Ed25519PublicKey::from_raw(from_hex(kRfc8032Vectors[1].public_key)).value();
    EXPECT_FALSE(a == b);
}

TEST(Ed25519Test, MovedFromPrivateKeyCannotSign) {
    auto key = test1_key();
    Ed25519PrivateKey moved = std::move(key);
    EXPECT_THROW((void)key.sign(std::string_view("x")), std::logic_error);  // NOLINT
    EXPECT_NO_THROW((void)moved.sign(std::string_view("x")));
}

// ---------------------------------------------------------------------------------------
// Key files, for both key kinds: Ed25519 (identity and device keys) and X25519 (envelope
// recipients) share one PEM and key-file implementation, so they must accept, write and
// refuse exactly the same things.

// A key kind: its classes, its OpenSSL name (EVP_PKEY_Q_keygen, `openssl genpkey
// -algorithm`), its PEM bound, and the key types its files must not be taken for.
struct Ed25519Keys {
    using Private = Ed25519PrivateKey;
    using Public = Ed25519PublicKey;
    static constexpr const char* kOpensslName = "ED25519";
    static constexpr std::size_t kMaxPemBytes = kEd25519MaxPemBytes;
    static constexpr std::array<const char*, 3> kOtherTypes = {"X25519", "ED448", "EC"};
    static Result<Private> private_from_raw(std::span<const std::uint8_t> raw) {
        return Private::from_raw_seed(raw);
    }
};

struct X25519Keys {
    using Private = X25519PrivateKey;
    using Public = X25519PublicKey;
    static constexpr const char* kOpensslName = "X25519";
    static constexpr std::size_t kMaxPemBytes = kX25519MaxPemBytes;
    static constexpr std::array<const char*, 3> kOtherTypes = {"ED25519", "X448", "EC"};
    static Result<Private> private_from_raw(std::span<const std::uint8_t> raw) {
        return Private::from_raw(raw);
    }
};

struct KeyKindNames {
    template <class Kind>
    static std::string GetName(int /*index*/) {
        return std::is_same_v<Kind, Ed25519Keys> ? "Ed25519" : "X25519";
    }
};

template <class Kind>
class PemKeyFileTest : public ::testing::Test {
  protected:
    testing::TempDir dir_;
};

using KeyKinds = ::testing::Types<Ed25519Keys, X25519Keys>;
TYPED_TEST_SUITE(PemKeyFileTest, KeyKinds, KeyKindNames);

TYPED_TEST(PemKeyFileTest, RawConstructorsRefuseWrongLengths) {
    using Public = typename TypeParam::Public;
    for (std::size_t size : {0, 31, 33, 64}) {
        SCOPED_TRACE(size);
        std::vector<std::uint8_t> bytes(size, 9);
        auto public_key = Public::from_raw(bytes);
        ASSERT_FALSE(public_key.ok());
        EXPECT_EQ(public_key.error().code, ErrorCode::kInvalidLength);
        auto private_key = TypeParam::private_from_raw(bytes);
        ASSERT_FALSE(private_key.ok());
        EXPECT_EQ(private_key.error().code, ErrorCode::kInvalidLength);
    }
    EXPECT_TRUE(TypeParam::private_from_raw(std::vector<std::uint8_t>(32, 9)).ok());
}

TYPED_TEST(PemKeyFileTest, GeneratedKeysRoundTripThroughPem) {
    using Private = typename TypeParam::Private;
    using Public = typename TypeParam::Public;
    auto key = Private::generate();
    EXPECT_FALSE(key.public_key() == Private::generate().public_key());

    const std::string private_pem = to_string(key.to_pem());
    EXPECT_EQ(private_pem.rfind(pem_line("BEGIN", kPrivateLabel), 0), 0u);
    auto reloaded = Private::from_pem(key.to_pem());
    ASSERT_TRUE(reloaded.ok()) << reloaded.error().message;
    EXPECT_TRUE(reloaded.value().public_key() == key.public_key());

    const std::string public_pem = key.public_key().to_pem();
    EXPECT_EQ(public_pem.rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u);
    auto public_key = Public::from_pem(public_pem);
    ASSERT_TRUE(public_key.ok()) << public_key.error().message;
    EXPECT_TRUE(public_key.value() == key.public_key());
}

TYPED_TEST(PemKeyFileTest, PemWithSurroundingWhiteSpaceIsAccepted) {
    using Private = typename TypeParam::Private;
    using Public = typename TypeParam::Public;
    auto key = Private::generate();
    auto spaced = Public::from_pem("\n \t" + key.public_key().to_pem() + "\n\n");
    ASSERT_TRUE(spaced.ok()) << spaced.error().message;
    EXPECT_TRUE(spaced.value() == key.public_key());
    std::string crlf;
    for (char c : to_string(key.to_pem())) {
        crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    }
    auto reloaded = Private::from_pem(crlf);
    ASSERT_TRUE(reloaded.ok()) << reloaded.error().message;
    EXPECT_TRUE(reloaded.value().public_key() == key.public_key());
}

TYPED_TEST(PemKeyFileTest, FromPemRefusesOtherKeyTypes) {
    using Private = typename TypeParam::Private;
    using Public = typename TypeParam::Public;
    auto rsa = Public::from_pem(kRsaPublicPem);
    ASSERT_FALSE(rsa.ok());
    EXPECT_EQ(rsa.error().code, ErrorCode::kInvalidKey) << rsa.error().message;
    for (const char* type : TypeParam::kOtherTypes) {
        SCOPED_TRACE(type);
        auto public_key = Public::from_pem(generated_pem(type, false));
        ASSERT_FALSE(public_key.ok());
        EXPECT_EQ(public_key.error().code, ErrorCode::kInvalidKey) << public_key.error().message;
        auto private_key = Private::from_pem(generated_pem(type, true));
        ASSERT_FALSE(private_key.ok());
        EXPECT_EQ(private_key.error().code, ErrorCode::kInvalidKey) << private_key.error().message;
    }
}

TYPED_TEST(PemKeyFileTest, FromPemRefusesTheOtherHalf) {
    using Private = typename TypeParam::Private;
    using Public = typename TypeParam::Public;
    auto key = Private::generate();
    auto as_public = Public::from_pem(to_string(key.to_pem()));
    ASSERT_FALSE(as_public.ok());
    EXPECT_EQ(as_public.error().code, ErrorCode::kInvalidKey);
    auto as_private = Private::from_pem(key.public_key().to_pem());
    ASSERT_FALSE(as_private.ok());
    EXPECT_EQ(as_private.error().code, ErrorCode::kInvalidKey);
}

TYPED_TEST(PemKeyFileTest, FromPemRefusesEncryptedKeyWithoutPrompting) {
    using Private = typename TypeParam::Private;
    auto key = Private::from_pem(generated_pem(TypeParam::kOpensslName, true, EVP_aes_256_cbc()));
    ASSERT_FALSE(key.ok());
    EXPECT_EQ(key.error().code, ErrorCode::kUnsupported);
}

TYPED_TEST(PemKeyFileTest, FromPemRefusesMalformedText) {
    using Private = typename TypeParam::Private;
    using Public = typename TypeParam::Public;
    const std::string begin = "-----BEGIN PUBLIC KEY-----\n";
    const std::string end = "-----END PUBLIC KEY-----\n";
    const std::string pub = Private::generate().public_key().to_pem();
    const std::string body = pub.substr(begin.size(), pub.find('\n', begin.size()) - begin.size());
    ASSERT_EQ(pub, begin + body + "\n" + end);
    const std::vector<std::string> bad = {
        "",
        "   \n",
        "not a key",
        body,
        begin,
        begin + end,
        begin + body.substr(0, 38) + "\n" + end,  // truncated DER
        begin + "!!!!" + body + "\n" + end,
        begin + body + "\n-----END PUBLIC KEY",
        "-----BEGIN PUBLIC KEY\n" + body + "\n" + end,
        "comment before\n" + pub,
        pub + "trailing text\n",
        pub + pub,
        pub + kRsaPublicPem,
    };
    for (const auto& text : bad) {
        auto key = Public::from_pem(text);
        ASSERT_FALSE(key.ok()) << text;
        EXPECT_EQ(key.error().code, ErrorCode::kInvalidEncoding) << text << key.error().message;
    }
    auto private_key = Private::from_pem(pem_line("BEGIN", kPrivateLabel) + body + "\n" +
                                         pem_line("END", kPrivateLabel));
    ASSERT_FALSE(private_key.ok());
    EXPECT_EQ(private_key.error().code, ErrorCode::kInvalidEncoding);
}

TYPED_TEST(PemKeyFileTest, FromPemRefusesOversizedText) {
    using Private = typename TypeParam::Private;
    using Public = typename TypeParam::Public;
    auto key = Private::generate();
    const std::string padding(TypeParam::kMaxPemBytes, ' ');
    auto public_key = Public::from_pem(padding + key.public_key().to_pem());
    ASSERT_FALSE(public_key.ok());
    EXPECT_EQ(public_key.error().code, ErrorCode::kInvalidLength);
    auto private_key = Private::from_pem(padding + to_string(key.to_pem()));
    ASSERT_FALSE(private_key.ok());
    EXPECT_EQ(private_key.error().code, ErrorCode::kInvalidLength);
}

TYPED_TEST(PemKeyFileTest, SaveSetsTheModesWhateverTheUmask) {
    using Private = typename TypeParam::Private;
    using Public = typename TypeParam::Public;
    const auto& dir = this->dir_;
    auto key = Private::generate();
    const mode_t old_umask = ::umask(0);
    Status saved_private = key.save(dir / "key.pem", false);
    ::umask(077);
    Status saved_public = key.public_key().save(dir / "key.pub", false);
    ::umask(old_umask);
    ASSERT_TRUE(saved_private.ok()) << saved_private.error().message;
    ASSERT_TRUE(saved_public.ok()) << saved_public.error().message;
    EXPECT_EQ(file_mode(dir / "key.pem"), 0600u);
    EXPECT_EQ(file_mode(dir / "key.pub"), 0644u);

    auto loaded = Private::load(dir / "key.pem");
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    EXPECT_TRUE(loaded.value().public_key() == key.public_key());
    auto loaded_public = Public::load(dir / "key.pub");
    ASSERT_TRUE(loaded_public.ok()) << loaded_public.error().message;
    EXPECT_TRUE(loaded_public.value() == key.public_key());
}

TYPED_TEST(PemKeyFileTest, SaveRefusesToOverwriteUnlessAsked) {
    using Private = typename TypeParam::Private;
    using Public = typename TypeParam::Public;
    const auto& dir = this->dir_;
    auto key = Private::generate();
    auto other = Private::generate();
    ASSERT_TRUE(key.save(dir / "key.pem", false).ok());
    ASSERT_TRUE(key.public_key().save(dir / "key.pub", false).ok());

    auto again = other.save(dir / "key.pem", false);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, ErrorCode::kIo);
    EXPECT_TRUE(Private::load(dir / "key.pem").value().public_key() == key.public_key());
    auto again_public = other.public_key().save(dir / "key.pub", false);
    ASSERT_FALSE(again_public.ok());
    EXPECT_EQ(again_public.error().code, ErrorCode::kIo);
    EXPECT_TRUE(Public::load(dir / "key.pub").value() == key.public_key());

    ASSERT_TRUE(other.save(dir / "key.pem", true).ok());
    ASSERT_TRUE(other.public_key().save(dir / "key.pub", true).ok());
    EXPECT_TRUE(Private::load(dir / "key.pem").value().public_key() == other.public_key());
    EXPECT_TRUE(Public::load(dir / "key.pub").value() == other.public_key());
    EXPECT_EQ(file_mode(dir / "key.pem"), 0600u);
}

TYPED_TEST(PemKeyFileTest, LoadRefusesPrivateKeyOthersCanAccess) {
    using Private = typename TypeParam::Private;
    const auto path = this->dir_ / "key.pem";
    auto key = Private::generate();
    const std::string pem = to_string(key.to_pem());
    for (unsigned mode : {0644u, 0640u, 0604u, 0660u, 0601u}) {
        SCOPED_TRACE(mode);
        write_plain_file(path, pem, mode);
        ASSERT_EQ(file_mode(path), mode);
        auto loaded = Private::load(path);
        ASSERT_FALSE(loaded.ok());
        EXPECT_EQ(loaded.error().code, ErrorCode::kPermission) << loaded.error().message;
    }
    std::filesystem::permissions(path, static_cast<std::filesystem::perms>(0600));
    auto loaded = Private::load(path);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    EXPECT_TRUE(loaded.value().public_key() == key.public_key());
}

TYPED_TEST(PemKeyFileTest, LoadReportsMissingFileAndBadContent) {
    using Private = typename TypeParam::Private;
    using Public = typename TypeParam::Public;
    const auto& dir = this->dir_;
    auto missing = Private::load(dir / "absent.pem");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, ErrorCode::kIo);
    auto missing_public = Public::load(dir / "absent.pub");
    ASSERT_FALSE(missing_public.ok());
    EXPECT_EQ(missing_public.error().code, ErrorCode::kIo);

    const auto path = dir / "public-in-private-slot.pem";
    write_plain_file(path, Private::generate().public_key().to_pem(), 0600);
    auto wrong = Private::load(path);
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.error().code, ErrorCode::kInvalidKey);
    EXPECT_NE(wrong.error().message.find(path.string()), std::string::npos)
        << wrong.error().message;
}

TYPED_TEST(PemKeyFileTest, MovedFromPrivateKeyThrows) {
    using Private = typename TypeParam::Private;
    auto key = Private::generate();
    Private moved = std::move(key);
    EXPECT_THROW((void)key.public_key(), std::logic_error);  // NOLINT(bugprone-use-after-move)
    EXPECT_THROW((void)key.to_pem(), std::logic_error);
    EXPECT_THROW((void)key.save(this->dir_ / "key.pem", false), std::logic_error);
    EXPECT_FALSE(std::filesystem::exists(this->dir_ / "key.pem"));
    key = Private::generate();
    EXPECT_NO_THROW((void)key.public_key());
    EXPECT_NO_THROW((void)moved.to_pem());
}

// Interoperability with the openssl command-line tool, independent of this code's PEM.
TYPED_TEST(PemKeyFileTest, OpensslCliReadsOurKeyFiles) {
    using Private = typename TypeParam::Private;
    if (!have_openssl_cli()) {
        GTEST_SKIP() << "openssl not on PATH";
    }
    const auto& dir = this->dir_;
    auto key = Private::generate();
    ASSERT_TRUE(key.save(dir / "k.pem", false).ok());
    ASSERT_TRUE(key.public_key().save(dir / "k.pub", false).ok());
    const std::string expected = key.public_key().to_pem();
    EXPECT_EQ(run_command("openssl pkey -in " + quote(dir / "k.pem") + " -pubout 2>/dev/null"),
              expected);
    EXPECT_EQ(
        run_command("openssl pkey -pubin -in " + quote(dir / "k.pub") + " -pubout 2>/dev/null"),
        expected);
    EXPECT_NE(run_command("openssl pkey -in " + quote(dir / "k.pem") + " -noout -text")
                  .find(std::string(TypeParam::kOpensslName) + " Private-Key"),
              std::string::npos);
}

TYPED_TEST(PemKeyFileTest, LoadsKeysWrittenByOpensslCli) {
    using Private = typename TypeParam::Private;
    using Public = typename TypeParam::Public;
    if (!have_openssl_cli()) {
        GTEST_SKIP() << "openssl not on PATH";
    }
    const auto& dir = this->dir_;
    run_command(std::string("openssl genpkey -algorithm ") + TypeParam::kOpensslName + " -out " +
                quote(dir / "k.pem") + " 2>/dev/null");
    run_command("openssl pkey -in " + quote(dir / "k.pem") + " -pubout -out " +
                quote(dir / "k.pub") + " 2>/dev/null");
    std::filesystem::permissions(dir / "k.pem", static_cast<std::filesystem::perms>(0600));
    auto key = Private::load(dir / "k.pem");
    ASSERT_TRUE(key.ok()) << key.error().message;
    auto public_key = Public::load(dir / "k.pub");
    ASSERT_TRUE(public_key.ok()) << public_key.error().message;
    EXPECT_TRUE(key.value().public_key() == public_key.value());
    EXPECT_EQ(public_key.value().to_pem(), read_file(dir / "k.pub").value());
}

}  // namespace
}  // namespace cipherpulse
