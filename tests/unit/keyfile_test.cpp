#include "cipherpulse/keyfile.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cipherpulse/files.h"
#include "unit/test_support.h"

namespace cipherpulse {
namespace {

using testing::TempDir;
using testing::test_key;

constexpr auto kTest = KeyPolicy::kAllowInsecureTestKeys;
// Cheap scrypt costs keep the tests fast; the format is the same.
constexpr ScryptParams kFastScrypt{1u << 10, 8, 1};

unsigned mode_of(const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return st.st_mode & 07777;
}

TEST(KeyFileTest, PrivateKeyWrittenOwnerOnlyAndLoads) {
    TempDir dir;
    const PrivateKey& key = test_key(512);
    ::umask(0);  // the file mode must not depend on the umask
    ASSERT_TRUE(save_private_key(dir / "k.key", key, false).ok());
    ::umask(022);
    EXPECT_EQ(mode_of(dir / "k.key"), 0600u);
    auto loaded = load_private_key(dir / "k.key", nullptr, kTest);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    EXPECT_EQ(loaded.value().public_key(), key.public_key());
    Ciphertext c = key.public_key().encrypt(BigInt(31337));
    EXPECT_EQ(loaded.value().decrypt(c), BigInt(31337));
}

TEST(KeyFileTest, RefusesToOverwriteWithoutPermission) {
    TempDir dir;
    ASSERT_TRUE(save_private_key(dir / "k.key", test_key(512), false).ok());
    auto again = save_private_key(dir / "k.key", test_key(256), false);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, ErrorCode::kIo);
    // Still the first key.
    auto loaded = load_private_key(dir / "k.key", nullptr, kTest);
    ASSERT_TRUE(loaded.ok());
    EXPECT_EQ(loaded.value().public_key(), test_key(512).public_key());
    ASSERT_TRUE(save_private_key(dir / "k.key", test_key(256), true).ok());
    EXPECT_EQ(load_private_key(dir / "k.key", nullptr, kTest).value().public_key(),
              test_key(256).public_key());
}

TEST(KeyFileTest, GroupOrWorldReadableKeyIsRefused) {
    TempDir dir;
    ASSERT_TRUE(save_private_key(dir / "k.key", test_key(512), false).ok());
    for (unsigned mode : {0640u, 0604u, 0620u, 0644u}) {
        ASSERT_EQ(::chmod((dir / "k.key").c_str(), mode), 0);
        auto loaded = load_private_key(dir / "k.key", nullptr, kTest);
        ASSERT_FALSE(loaded.ok()) << std::oct << mode;
        EXPECT_EQ(loaded.error().code, ErrorCode::kPermission);
        EXPECT_NE(loaded.error().message.find("chmod 600"), std::string::npos);
    }
    ASSERT_EQ(::chmod((dir / "k.key").c_str(), 0400), 0);
    EXPECT_TRUE(load_private_key(dir / "k.key", nullptr, kTest).ok());
}

TEST(KeyFileTest, PassphraseSealRoundTrip) {
    TempDir dir;
    const PrivateKey& key = test_key(512);
    SecretBytes pass(std::string_view("correct horse battery staple"));
    ASSERT_TRUE(save_private_key(dir / "sealed.key", key, false, &pass, kFastScrypt).ok());
    EXPECT_EQ(mode_of(dir / "sealed.key"), 0600u);
    // Nothing of the key in clear: neither p nor q appears in the file.
    std::string text = read_file(dir / "sealed.key").value();
    auto doc = nlohmann::json::parse(text);
    EXPECT_EQ(doc["kty"], "Paillier-sealed");
    EXPECT_EQ(doc["kid"], key.public_key().kid());
    auto plain = nlohmann::json::parse(
        std::string(reinterpret_cast<const char*>(key.to_json().data()), key.to_json().size()));
    EXPECT_EQ(text.find(plain["p"].get<std::string>()), std::string::npos);
    EXPECT_EQ(text.find(plain["q"].get<std::string>()), std::string::npos);

    auto loaded = load_private_key(dir / "sealed.key", &pass, kTest);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    EXPECT_EQ(loaded.value().decrypt(key.public_key().encrypt(BigInt(77))), BigInt(77));
}

TEST(KeyFileTest, WrongPassphraseOrTamperingFails) {
    TempDir dir;
    const PrivateKey& key = test_key(512);
    SecretBytes pass(std::string_view("right"));
    std::string sealed = seal_private_key(key, pass, kFastScrypt);
    SecretBytes wrong(std::string_view("wrong"));
    auto r = unseal_private_key(sealed, wrong, kTest);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadSignature);
    // Changing a header field (the kid, the KDF cost) breaks the authentication tag.
    auto doc = nlohmann::json::parse(sealed);
    auto weakened = doc;
    weakened["scrypt"]["N"] = 512;
    EXPECT_EQ(unseal_private_key(weakened.dump(), pass, kTest).error().code,
              ErrorCode::kBadSignature);
    auto renamed = doc;
    renamed["kid"] = "someone-else";
    EXPECT_FALSE(unseal_private_key(renamed.dump(), pass, kTest).ok());
    // Excessive KDF cost is refused before any work.
    auto expensive = doc;
    expensive["scrypt"]["N"] = 1u << 30;
    EXPECT_EQ(unseal_private_key(expensive.dump(), pass, kTest).error().code,
              ErrorCode::kUnsupported);
    EXPECT_FALSE(unseal_private_key("{}", pass, kTest).ok());
    EXPECT_FALSE(unseal_private_key("garbage", pass, kTest).ok());
    // A sealed file without a passphrase is a clear error.
    ASSERT_TRUE(write_file_atomic(dir / "s.key", sealed, kPrivateFileMode, false).ok());
    auto no_pass = load_private_key(dir / "s.key", nullptr, kTest);
    ASSERT_FALSE(no_pass.ok());
    EXPECT_NE(no_pass.error().message.find("passphrase"), std::string::npos);
    EXPECT_THROW((void)seal_private_key(key, SecretBytes(), kFastScrypt), std::invalid_argument);
}

TEST(KeyFileTest, PublicKeyFile) {
    TempDir dir;
    const PublicKey& pk = test_key(512).public_key();
    ASSERT_TRUE(save_public_key(dir / "k.pub.json", pk, false).ok());
    EXPECT_EQ(mode_of(dir / "k.pub.json"), 0644u);
    auto loaded = load_public_key(dir / "k.pub.json", kTest);
    ASSERT_TRUE(loaded.ok());
    EXPECT_EQ(loaded.value(), pk);
    EXPECT_FALSE(load_public_key(dir / "k.pub.json").ok());  // 512 bits: not for production
    EXPECT_EQ(load_public_key(dir / "missing.json", kTest).error().code, ErrorCode::kIo);
}

TEST(KeyFileTest, CorruptPrivateKeyFileIsAClearError) {
    TempDir dir;
    ASSERT_TRUE(write_file_atomic(dir / "bad.key",
                                  std::string_view("{\"kty\":\"Paillier\",\"p\":\"AQ\"}"),
                                  kPrivateFileMode, false)
                    .ok());
    auto r = load_private_key(dir / "bad.key", nullptr, kTest);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("bad.key"), std::string::npos);
}

}  // namespace
}  // namespace cipherpulse
