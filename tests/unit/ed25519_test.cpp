#include "cipherpulse/ed25519.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>

#include "cipherpulse/base64url.h"
#include "cipherpulse/files.h"
#include "unit/test_support.h"

namespace cipherpulse {
namespace {

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

// The PEM of the RFC 8032 TEST 1 key: the fixed DER prefixes of RFC 8410 (SPKI
// 302a300506032b6570032100, PKCS#8 302e020100300506032b657004220420) followed by the raw
// key, base64-encoded by Python's base64 module, not by this code.
constexpr char kTest1PublicPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
    "-----END PUBLIC KEY-----\n";
// private_pem_by_openssl returns the unencrypted (or, with `cipher`, passphrase-encrypted)
// PKCS#8 PEM of `key` as OpenSSL writes it: an independent implementation, at test time.
std::string private_pem_by_openssl(EVP_PKEY* key, const EVP_CIPHER* cipher = nullptr) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    if (key == nullptr || !bio) {
        throw std::runtime_error("OpenSSL key or BIO missing");
    }
    char pass[] = "secret";
    int ok = cipher != nullptr
                 ? PEM_write_bio_PKCS8PrivateKey(bio.get(), key, cipher, pass, 6, nullptr, nullptr)
                 : PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
    if (ok != 1) {
        throw std::runtime_error("PEM_write failed");
    }
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

// test1_private_pem is the PKCS#8 PEM of the RFC 8032 TEST 1 key, written by OpenSSL from
// the RFC's seed when the test runs: no private key is stored in the repository.
std::string test1_private_pem() {
    auto seed = from_hex(kRfc8032Vectors[0].secret_key);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()),
        EVP_PKEY_free);
    return private_pem_by_openssl(key.get());
}

// generated_private_pem makes a fresh key of another type with OpenSSL and returns its
// PKCS#8 PEM (encrypted with a passphrase when `cipher` is set).
std::string generated_private_pem(const char* type, const char* curve = nullptr,
                                  const EVP_CIPHER* cipher = nullptr) {
    EVP_PKEY* raw = curve != nullptr ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, curve)
                                     : EVP_PKEY_Q_keygen(nullptr, nullptr, type);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(raw, EVP_PKEY_free);
    if (!key) {
        throw std::runtime_error("OpenSSL key generation failed");
    }
    return private_pem_by_openssl(key.get(), cipher);
}

// Keys of other types, written by `openssl genpkey` / `openssl pkey -pubout`.
constexpr char kRsaPublicPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC1xxCc8RrPFImvNFO0BIQz5vUR\n"
    "mzcxhY0bqSNJZVFlc9CZJTZ6rkAjwjjdQQkLFE4WHa/VhQMnRc/FEhsaQd04zmZt\n"
    "gs4Zr5VuQFcAvyDeBNTgnRB7ORsziOHYlvBnpdzipaQYbFM06++Wjl+MiyZPXIk6\n"
    "wdcGRxMeFWLTTbwkjwIDAQAB\n"
    "-----END PUBLIC KEY-----\n";
constexpr char kX25519PublicPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VuAyEAxFFQ1jZTgd6yyU7s6Vz1T7eCRE0msz0ZZi+xDM+xgl4=\n"
    "-----END PUBLIC KEY-----\n";
constexpr char kEd448PublicPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MEMwBQYDK2VxAzoA4/+ZXpUQMHQC/WhNLy3xQC4VNy5cZLHffMTu0NCxiD7ZGvgf\n"
    "Myid78GHVtXyYQllkvqU+OQDZIeA\n"
    "-----END PUBLIC KEY-----\n";

using testing::TempDir;

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

std::string quote(const std::filesystem::path& path) {
    return "'" + path.string() + "'";
}

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

TEST(Ed25519Test, RawConstructorsRefuseWrongLengths) {
    for (std::size_t size : {0, 31, 33, 64}) {
        std::vector<std::uint8_t> bytes(size, 7);
        auto public_key = Ed25519PublicKey::from_raw(bytes);
        ASSERT_FALSE(public_key.ok());
        EXPECT_EQ(public_key.error().code, ErrorCode::kInvalidLength);
        auto private_key = Ed25519PrivateKey::from_raw_seed(bytes);
        ASSERT_FALSE(private_key.ok());
        EXPECT_EQ(private_key.error().code, ErrorCode::kInvalidLength);
    }
}

TEST(Ed25519Test, PemKnownAnswers) {
    auto key = test1_key();
    EXPECT_EQ(key.public_key().to_pem(), kTest1PublicPem);
    SecretBytes private_pem = key.to_pem();
    EXPECT_EQ(std::string(private_pem.span().begin(), private_pem.span().end()),
              test1_private_pem());

    auto public_key = Ed25519PublicKey::from_pem(kTest1PublicPem);
    ASSERT_TRUE(public_key.ok()) << public_key.error().message;
    EXPECT_EQ(to_vector(public_key.value().raw()), from_hex(kRfc8032Vectors[0].public_key));

    auto private_key = Ed25519PrivateKey::from_pem(test1_private_pem());
    ASSERT_TRUE(private_key.ok()) << private_key.error().message;
    EXPECT_EQ(to_vector(private_key.value().sign(std::string_view())),
              from_hex(kRfc8032Vectors[0].signature));
}

TEST(Ed25519Test, GeneratedKeysRoundTripThroughPem) {
    auto key = Ed25519PrivateKey::generate();
    auto other = Ed25519PrivateKey::generate();
    EXPECT_FALSE(key.public_key() == other.public_key());

    auto reloaded = Ed25519PrivateKey::from_pem(key.to_pem());
    ASSERT_TRUE(reloaded.ok()) << reloaded.error().message;
    EXPECT_TRUE(reloaded.value().public_key() == key.public_key());
    EXPECT_EQ(reloaded.value().sign(std::string_view("reading")),
              key.sign(std::string_view("reading")));

    auto public_key = Ed25519PublicKey::from_pem(key.public_key().to_pem());
    ASSERT_TRUE(public_key.ok()) << public_key.error().message;
    EXPECT_TRUE(public_key.value() == key.public_key());
    EXPECT_TRUE(public_key.value().verify(std::string_view("reading"),
                                          key.sign(std::string_view("reading"))));
    EXPECT_FALSE(other.public_key().verify(std::string_view("reading"),
                                           key.sign(std::string_view("reading"))));
}

TEST(Ed25519Test, PemWithSurroundingWhiteSpaceIsAccepted) {
    EXPECT_TRUE(Ed25519PublicKey::from_pem(std::string("\n  ") + kTest1PublicPem + "\n\n").ok());
    std::string crlf;
    for (char c : test1_private_pem()) {
        crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    }
    auto key = Ed25519PrivateKey::from_pem(crlf);
    ASSERT_TRUE(key.ok()) << key.error().message;
    EXPECT_TRUE(key.value().public_key() == test1_key().public_key());
}

TEST(Ed25519Test, FromPemRefusesOtherKeyTypes) {
    for (const char* pem : {kRsaPublicPem, kX25519PublicPem, kEd448PublicPem}) {
        auto key = Ed25519PublicKey::from_pem(pem);
        ASSERT_FALSE(key.ok()) << pem;
        EXPECT_EQ(key.error().code, ErrorCode::kInvalidKey) << key.error().message;
    }
    for (const std::string& pem :
         {generated_private_pem("EC", "P-256"), generated_private_pem("X25519"),
          generated_private_pem("ED448")}) {
        auto key = Ed25519PrivateKey::from_pem(pem);
        ASSERT_FALSE(key.ok()) << pem;
        EXPECT_EQ(key.error().code, ErrorCode::kInvalidKey) << key.error().message;
    }
}

TEST(Ed25519Test, FromPemRefusesTheOtherHalf) {
    auto as_public = Ed25519PublicKey::from_pem(test1_private_pem());
    ASSERT_FALSE(as_public.ok());
    EXPECT_EQ(as_public.error().code, ErrorCode::kInvalidKey);
    auto as_private = Ed25519PrivateKey::from_pem(kTest1PublicPem);
    ASSERT_FALSE(as_private.ok());
    EXPECT_EQ(as_private.error().code, ErrorCode::kInvalidKey);
}

TEST(Ed25519Test, FromPemRefusesEncryptedKeyWithoutPrompting) {
    auto key =
        Ed25519PrivateKey::from_pem(generated_private_pem("ED25519", nullptr, EVP_aes_256_cbc()));
    ASSERT_FALSE(key.ok());
    EXPECT_EQ(key.error().code, ErrorCode::kUnsupported);
}

TEST(Ed25519Test, FromPemRefusesMalformedText) {
    const std::string pub = kTest1PublicPem;
    const std::string body_only = "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    const std::vector<std::string> bad = {
        "",
        "   \n",
        "not a key",
        body_only,
        "-----BEGIN PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg\n-----END PUBLIC "
        "KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo\n"
        "-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\n!!!!" + body_only + "\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\n" + body_only + "\n-----END PUBLIC KEY",
        "-----BEGIN PUBLIC KEY\n" + body_only + "\n-----END PUBLIC KEY-----\n",
        "comment before\n" + pub,
        pub + "trailing text\n",
        pub + pub,
        pub + std::string(kRsaPublicPem),
    };
    for (const auto& text : bad) {
        auto key = Ed25519PublicKey::from_pem(text);
        EXPECT_FALSE(key.ok()) << text;
        if (!key.ok()) {
            EXPECT_NE(key.error().code, ErrorCode::kInvalidLength) << text;
        }
    }
}

TEST(Ed25519Test, FromPemRefusesOversizedText) {
    std::string huge = std::string(kEd25519MaxPemBytes, ' ') + kTest1PublicPem;
    auto public_key = Ed25519PublicKey::from_pem(huge);
    ASSERT_FALSE(public_key.ok());
    EXPECT_EQ(public_key.error().code, ErrorCode::kInvalidLength);
    auto private_key =
        Ed25519PrivateKey::from_pem(std::string(kEd25519MaxPemBytes, ' ') + test1_private_pem());
    ASSERT_FALSE(private_key.ok());
    EXPECT_EQ(private_key.error().code, ErrorCode::kInvalidLength);
}

TEST(Ed25519Test, PrivateKeyFileIsWrittenMode0600AndLoads) {
    TempDir dir;
    auto path = dir.path() / "identity.pem";
    auto key = test1_key();
    mode_t old_umask = ::umask(0);  // the mode must not depend on the umask
    auto saved = key.save(path, false);
    ::umask(old_umask);
    ASSERT_TRUE(saved.ok()) << saved.error().message;
    EXPECT_EQ(file_mode(path), 0600u);
    auto loaded = Ed25519PrivateKey::load(path);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    EXPECT_TRUE(loaded.value().public_key() == key.public_key());
    EXPECT_EQ(to_vector(loaded.value().sign(std::string_view())),
              from_hex(kRfc8032Vectors[0].signature));
}

TEST(Ed25519Test, SaveRefusesToOverwriteUnlessAsked) {
    TempDir dir;
    auto path = dir.path() / "identity.pem";
    ASSERT_TRUE(test1_key().save(path, false).ok());
    auto other = Ed25519PrivateKey::generate();
    auto again = other.save(path, false);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, ErrorCode::kIo);
    EXPECT_TRUE(Ed25519PrivateKey::load(path).value().public_key() == test1_key().public_key());

    ASSERT_TRUE(other.save(path, true).ok());
    EXPECT_TRUE(Ed25519PrivateKey::load(path).value().public_key() == other.public_key());
    EXPECT_EQ(file_mode(path), 0600u);
}

TEST(Ed25519Test, LoadRefusesPrivateKeyReadableByOthers) {
    TempDir dir;
    for (unsigned mode : {0644u, 0640u, 0604u, 0660u}) {
        SCOPED_TRACE(mode);
        auto path = dir.path() / "key.pem";
        write_plain_file(path, test1_private_pem(), mode);
        ASSERT_EQ(file_mode(path), mode);
        auto loaded = Ed25519PrivateKey::load(path);
        ASSERT_FALSE(loaded.ok());
        EXPECT_EQ(loaded.error().code, ErrorCode::kPermission) << loaded.error().message;
    }
    auto path = dir.path() / "key.pem";
    std::filesystem::permissions(path, static_cast<std::filesystem::perms>(0600));
    EXPECT_TRUE(Ed25519PrivateKey::load(path).ok());
}

TEST(Ed25519Test, LoadReportsMissingFileAndBadContent) {
    TempDir dir;
    auto missing = Ed25519PrivateKey::load(dir.path() / "absent.pem");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, ErrorCode::kIo);

    auto path = dir.path() / "public-in-private-slot.pem";
    write_plain_file(path, kTest1PublicPem, 0600);
    auto wrong = Ed25519PrivateKey::load(path);
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.error().code, ErrorCode::kInvalidKey);
    EXPECT_NE(wrong.error().message.find(path.string()), std::string::npos);
}

TEST(Ed25519Test, PublicKeyFileIsWrittenMode0644AndLoads) {
    TempDir dir;
    auto path = dir.path() / "identity.pub.pem";
    auto public_key = test1_key().public_key();
    mode_t old_umask = ::umask(077);
    auto saved = public_key.save(path, false);
    ::umask(old_umask);
    ASSERT_TRUE(saved.ok()) << saved.error().message;
    EXPECT_EQ(file_mode(path), 0644u);
    auto loaded = Ed25519PublicKey::load(path);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    EXPECT_TRUE(loaded.value() == public_key);
    EXPECT_FALSE(public_key.save(path, false).ok());
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

TEST(Ed25519Test, MovedFromPrivateKeyThrows) {
    auto key = test1_key();
    Ed25519PrivateKey moved = std::move(key);
    EXPECT_TRUE(moved.public_key() == test1_key().public_key());
    EXPECT_THROW((void)key.sign(std::string_view("x")), std::logic_error);  // NOLINT
    EXPECT_THROW((void)key.public_key(), std::logic_error);                 // NOLINT
    EXPECT_THROW((void)key.to_pem(), std::logic_error);                     // NOLINT
    key = Ed25519PrivateKey::generate();
    EXPECT_NO_THROW((void)key.sign(std::string_view("x")));
}

// Interoperability with the openssl command-line tool, independent of this code's PEM.
TEST(Ed25519Test, LoadsKeyGeneratedByOpensslCli) {
    if (!have_openssl_cli()) {
        GTEST_SKIP() << "openssl not on PATH";
    }
    TempDir dir;
    auto path = dir.path() / "openssl.pem";
    run_command("openssl genpkey -algorithm ed25519 -out " + quote(path));
    std::filesystem::permissions(path, static_cast<std::filesystem::perms>(0600));
    auto key = Ed25519PrivateKey::load(path);
    ASSERT_TRUE(key.ok()) << key.error().message;
    std::string openssl_public = run_command("openssl pkey -in " + quote(path) + " -pubout");
    EXPECT_EQ(key.value().public_key().to_pem(), openssl_public);
    auto public_key = Ed25519PublicKey::from_pem(openssl_public);
    ASSERT_TRUE(public_key.ok()) << public_key.error().message;
    EXPECT_TRUE(public_key.value() == key.value().public_key());
}

TEST(Ed25519Test, OpensslCliReadsOurKeyFile) {
    if (!have_openssl_cli()) {
        GTEST_SKIP() << "openssl not on PATH";
    }
    TempDir dir;
    auto path = dir.path() / "ours.pem";
    auto key = Ed25519PrivateKey::generate();
    ASSERT_TRUE(key.save(path, false).ok());
    EXPECT_EQ(run_command("openssl pkey -in " + quote(path) + " -pubout"),
              key.public_key().to_pem());
}

}  // namespace
}  // namespace cipherpulse
