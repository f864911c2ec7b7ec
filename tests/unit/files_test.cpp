#include "cipherpulse/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit/test_support.h"

namespace cipherpulse {
namespace {

using testing::TempDir;

TEST(FilesTest, AtomicWriteSetsExactModeAndLeavesNoTemporary) {
    TempDir dir;
    ::umask(077);
    ASSERT_TRUE(write_file_atomic(dir / "pub", std::string_view("hello"), 0644, false).ok());
    ::umask(022);
    struct stat st {};
    ASSERT_EQ(::stat((dir / "pub").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
    EXPECT_EQ(read_file(dir / "pub").value(), "hello");
    int entries = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) {
        ++entries;
    }
    EXPECT_EQ(entries, 1);
}

TEST(FilesTest, OverwriteOnlyWhenAsked) {
    TempDir dir;
    ASSERT_TRUE(write_file_atomic(dir / "f", std::string_view("one"), 0600, false).ok());
    EXPECT_FALSE(write_file_atomic(dir / "f", std::string_view("two"), 0600, false).ok());
    EXPECT_EQ(read_file(dir / "f").value(), "one");
    ASSERT_TRUE(write_file_atomic(dir / "f", std::string_view("two"), 0600, true).ok());
    EXPECT_EQ(read_file(dir / "f").value(), "two");
}

TEST(FilesTest, PrivateFileChecks) {
    TempDir dir;
    ASSERT_TRUE(write_file_atomic(dir / "secret", std::string_view("s3cret"), 0600, false).ok());
    auto ok = read_private_file(dir / "secret");
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(ok.value().size(), 6u);
    ::chmod((dir / "secret").c_str(), 0660);
    EXPECT_EQ(read_private_file(dir / "secret").error().code, ErrorCode::kPermission);
    ::chmod((dir / "secret").c_str(), 0600);
    // A symbolic link to a private file is refused (it could be swapped).
    std::filesystem::create_symlink(dir / "secret", dir / "link");
    EXPECT_EQ(read_private_file(dir / "link").error().code, ErrorCode::kPermission);
    EXPECT_EQ(read_private_file(dir / "absent").error().code, ErrorCode::kIo);
    EXPECT_EQ(read_private_file(dir.path()).error().code, ErrorCode::kIo);
    EXPECT_EQ(read_file(dir / "secret", 3).error().code, ErrorCode::kInvalidLength);
}

}  // namespace
}  // namespace cipherpulse
