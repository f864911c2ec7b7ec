// The decryptor's configuration file: the documented example loads and equals the
// defaults, secrets come from files or the environment (never from the TOML), and mistakes
// are refused with the key named.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "decryptor/config.h"
#include "unit/test_support.h"

namespace cipherpulse::decryptor {
namespace {

using cipherpulse::testing::TempDir;

class DecryptorConfigTest : public ::testing::Test {
  protected:
    std::filesystem::path write(const std::string& text) {
        const auto path = dir_ / "decryptor.toml";
        std::ofstream(path) << text;
        return path;
    }
    void secret(const std::string& name, const std::string& value, mode_t mode = 0600) {
        std::ofstream(dir_ / name) << value << "\n";
        ::chmod((dir_ / name).c_str(), mode);
    }
    std::string error_of(const std::string& text) {
        auto c = load_decryptor_config(write(text));
        return c.ok() ? std::string("(loaded)") : c.error().message;
    }
    TempDir dir_;
};

TEST_F(DecryptorConfigTest, ExampleFileLoadsWithTheDefaults) {
    auto c = load_decryptor_config(cipherpulse::testing::repo_root() / "config" / "decryptor.toml");
    ASSERT_TRUE(c.ok()) << c.error().message;
    const DecryptorConfig defaults;
    EXPECT_EQ(c.value().server_url, defaults.server_url);
    EXPECT_EQ(c.value().granularity, "1m");
    EXPECT_EQ(c.value().poll_interval_ms, 5000);
    EXPECT_EQ(c.value().page_size, defaults.page_size);
    EXPECT_DOUBLE_EQ(c.value().verify_sample_rate, defaults.verify_sample_rate);
    EXPECT_EQ(c.value().threads, 0);
    EXPECT_TRUE(c.value().long_poll);
    EXPECT_EQ(c.value().retry.max_attempts, 8);
    EXPECT_EQ(c.value().retry.initial_backoff_ms, 2000);
    EXPECT_EQ(c.value().retry.max_backoff_ms, 300000);
    EXPECT_FALSE(c.value().email_enabled);
    EXPECT_FALSE(c.value().sms_enabled);
    // Relative paths resolve against the file's directory.
    EXPECT_EQ(std::filesystem::path(c.value().database).filename(), "decryptor.db");
    EXPECT_TRUE(std::filesystem::path(c.value().database).is_absolute() ||
                c.value().database.find("config") != std::string::npos);
}

TEST_F(DecryptorConfigTest, SecretsComeFromFilesOrTheEnvironment) {
    secret("smtp.password", "from-a-file");
    auto c = load_decryptor_config(write(R"(
[watch]
poll_interval_s = 0.5
threads = 3
long_poll = false
[notify.email]
enabled = true
url = "smtps://mail.example:465"
tls = "implicit"
username = "alerts"
password_file = "smtp.password"
from = "cipherpulse <alerts@example.org>"
to = ["a@example.org", "b@example.org"]
[notify.sms]
enabled = true
url = "https://sms.example/send"
token_env = "CP_TEST_SMS_TOKEN"
to = ["+15550100"]
[notify.sms.headers]
X-Account = "ward-7"
)"));
    EXPECT_FALSE(c.ok()) << "the token variable is not set yet";
    ::setenv("CP_TEST_SMS_TOKEN", "from-the-environment", 1);
    c = load_decryptor_config(dir_ / "decryptor.toml");
    ::unsetenv("CP_TEST_SMS_TOKEN");
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c.value().poll_interval_ms, 500);
    EXPECT_EQ(c.value().threads, 3);
    EXPECT_FALSE(c.value().long_poll);
    EXPECT_EQ(c.value().email.password, "from-a-file");
    EXPECT_EQ(c.value().email.tls, "implicit");
    EXPECT_EQ(c.value().email.to.size(), 2u);
    EXPECT_EQ(c.value().sms.bearer_token, "from-the-environment");
    ASSERT_EQ(c.value().sms.headers.size(), 1u);
    EXPECT_EQ(c.value().sms.headers[0].first, "X-Account");
}

TEST_F(DecryptorConfigTest, SecretFileReadableByOthersIsRefused) {
    secret("smtp.password", "x", 0644);
    const std::string error = error_of(R"(
[notify.email]
enabled = true
url = "smtp://127.0.0.1:25"
username = "u"
password_file = "smtp.password"
from = "a@b"
to = ["c@d"]
)");
    EXPECT_NE(error.find("notify.email password"), std::string::npos) << error;
    EXPECT_EQ(error.find("x\n"), std::string::npos);
}

TEST_F(DecryptorConfigTest, MistakesAreRefusedWithTheKeyNamed) {
    EXPECT_NE(error_of("[watch]\npoll_intervall_s = 1\n").find("poll_intervall_s"),
              std::string::npos);
    EXPECT_NE(error_of("[surver]\n").find("surver"), std::string::npos);
    EXPECT_NE(error_of("[watch]\nverify_sample_rate = 1.5\n").find("verify_sample_rate"),
              std::string::npos);
    EXPECT_NE(error_of("[watch]\npage_size = 0\n").find("page_size"), std::string::npos);
    EXPECT_NE(error_of("[watch]\nthreads = -1\n").find("watch.threads"), std::string::npos);
    EXPECT_NE(error_of("[watch]\nthreads = 65\n").find("watch.threads"), std::string::npos);
    EXPECT_NE(error_of("[watch]\nlong_poll = \"yes\"\n").find("watch.long_poll"),
              std::string::npos);
    EXPECT_NE(error_of("[server]\nurl = \"ftp://x\"\n").find("server.url"), std::string::npos);
    EXPECT_NE(error_of("[notify.email]\ntls = \"maybe\"\n").find("tls"), std::string::npos);
    EXPECT_NE(error_of("[notify.email]\nenabled = true\n").find("notify.email needs"),
              std::string::npos);
    EXPECT_NE(error_of("[notify]\nretry_max_attempts = 0\n").find("retry"), std::string::npos);
    EXPECT_NE(error_of("[notify.sms.headers]\n\"Bad Header\" = \"v\"\n").find("headers"),
              std::string::npos);
    EXPECT_NE(error_of("[rules.tachycardia]\nsustained = 0\n").find("rules.tachycardia.sustained"),
              std::string::npos);
    EXPECT_NE(error_of("[key]\npassphrase_file = \"a\"\npassphrase_env = \"B\"\n")
                  .find("exclude each other"),
              std::string::npos);
    EXPECT_NE(error_of("[watch\n").find("decryptor.toml"), std::string::npos)
        << "a syntax error names the file";
    EXPECT_NE(error_of("[cohort]\nmin_patients = 4\n").find("cohort.min_patients"),
              std::string::npos);
    EXPECT_NE(error_of("[cohort]\nbudget_epsilon = \"0.0001\"\n").find("cohort.budget_epsilon"),
              std::string::npos);
    EXPECT_NE(error_of("[cohort]\nbudget_epsilon = 10\n").find("budget_epsilon"),
              std::string::npos);
    EXPECT_NE(error_of("[cohort]\nbudget_days = 0\n").find("cohort.budget_days"),
              std::string::npos);
    EXPECT_NE(error_of("[cohort]\nk = 10\n").find("k"), std::string::npos);
}

TEST_F(DecryptorConfigTest, CohortPolicyIsRead) {
    auto c = load_decryptor_config(write(R"(
[cohort]
identity_key = "ids/identity.pem"
min_patients = 20
budget_epsilon = "2.5"
budget_days = 7
allow_without_noise = true
)"));
    ASSERT_TRUE(c.ok()) << c.error().message;
    const CohortPolicy& p = c.value().cohort;
    EXPECT_EQ(p.identity_key, (dir_ / "ids" / "identity.pem").string());
    EXPECT_EQ(p.min_patients, 20);
    EXPECT_EQ(p.budget_milli, 2500u);
    EXPECT_EQ(p.budget_days, 7);
    EXPECT_TRUE(p.allow_without_noise);
    // Without the section: the defaults, the identity key beside the Paillier key.
    c = load_decryptor_config(write(""));
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c.value().cohort.identity_key, (dir_ / "keys" / "identity.pem").string());
    EXPECT_EQ(c.value().cohort.min_patients, 10);
    EXPECT_EQ(c.value().cohort.budget_milli, 10000u);
    EXPECT_FALSE(c.value().cohort.allow_without_noise);
}

}  // namespace
}  // namespace cipherpulse::decryptor
