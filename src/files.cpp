#include "cipherpulse/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace cipherpulse {
namespace {

Error io_error(const std::string& what, const std::filesystem::path& path, int err) {
    return make_error(ErrorCode::kIo, what + " " + path.string() + ": " + std::strerror(err));
}

// FileDescriptor closes on scope exit.
class FileDescriptor {
  public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    int get() const { return fd_; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }

  private:
    int fd_;
};

bool write_all(int fd, const std::uint8_t* data, std::size_t size) {
    while (size > 0) {
        ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

Status write_file_atomic(const std::filesystem::path& path, std::span<const std::uint8_t> data,
                         unsigned mode, bool overwrite) {
    if (!overwrite && ::access(path.c_str(), F_OK) == 0) {
        return make_error(ErrorCode::kIo, "refusing to overwrite existing file " + path.string());
    }
    std::filesystem::path dir = path.parent_path().empty() ? "." : path.parent_path();
    std::string tmp_template = (dir / ("." + path.filename().string() + ".tmpXXXXXX")).string();
    int raw_fd = ::mkstemp(tmp_template.data());
    if (raw_fd < 0) {
        return io_error("cannot create temporary file for", path, errno);
    }
    FileDescriptor fd(raw_fd);
    std::filesystem::path tmp_path(tmp_template);
    auto fail = [&](const std::string& what) -> Status {
        int err = errno;
        ::unlink(tmp_path.c_str());
        return io_error(what, path, err);
    };
    // mkstemp creates 0600; fchmod sets the exact mode requested regardless of umask.
    if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
        return fail("cannot set mode of");
    }
    if (!write_all(fd.get(), data.data(), data.size())) {
        return fail("cannot write");
    }
    if (::fsync(fd.get()) != 0) {
        return fail("cannot sync");
    }
    if (::close(fd.release()) != 0) {
        return fail("cannot close");
    }
    if (!overwrite) {
        // link() fails if the target appeared meanwhile: no silent overwrite.
        if (::link(tmp_path.c_str(), path.c_str()) != 0) {
            return fail("cannot create");
        }
        ::unlink(tmp_path.c_str());
    } else if (::rename(tmp_path.c_str(), path.c_str()) != 0) {
        return fail("cannot replace");
    }
    int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        ::fsync(dir_fd);
        ::close(dir_fd);
    }
    return Ok{};
}

Status write_file_atomic(const std::filesystem::path& path, std::string_view data, unsigned mode,
                         bool overwrite) {
    return write_file_atomic(path,
                             std::span<const std::uint8_t>(
                                 reinterpret_cast<const std::uint8_t*>(data.data()), data.size()),
                             mode, overwrite);
}

namespace {

template <class Buffer>
Status read_fd_into(int fd, const std::filesystem::path& path, std::size_t size, Buffer& out) {
    std::size_t done = 0;
    while (done < size) {
        ssize_t n = ::read(fd, out.data() + done, size - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return io_error("cannot read", path, errno);
        }
        if (n == 0) {
            return make_error(ErrorCode::kIo, "file shrank while reading " + path.string());
        }
        done += static_cast<std::size_t>(n);
    }
    return Ok{};
}

Result<int> open_checked(const std::filesystem::path& path, std::size_t max_bytes,
                         bool private_file, struct stat& st) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP && !private_file) {
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        if (errno == ELOOP) {
            return make_error(ErrorCode::kPermission,
                              "refusing private file behind a symbolic link: " + path.string());
        }
        return io_error("cannot open", path, errno);
    }
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        return io_error("cannot stat", path, err);
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return make_error(ErrorCode::kIo, "not a regular file: " + path.string());
    }
    if (private_file && (st.st_mode & 077) != 0) {
        ::close(fd);
        char mode_text[8];
        std::snprintf(mode_text, sizeof mode_text, "%04o",
                      static_cast<unsigned>(st.st_mode & 07777));
        return make_error(ErrorCode::kPermission, "private file " + path.string() +
                                                      " is accessible by group or others (mode " +
                                                      mode_text + "); run: chmod 600 " +
                                                      path.string());
    }
    if (static_cast<std::size_t>(st.st_size) > max_bytes) {
        ::close(fd);
        return make_error(ErrorCode::kInvalidLength,
                          "file too large: " + path.string() + " (" + std::to_string(st.st_size) +
                              " bytes, limit " + std::to_string(max_bytes) + ")");
    }
    return fd;
}

}  // namespace

Result<std::string> read_file(const std::filesystem::path& path, std::size_t max_bytes) {
    struct stat st {};
    auto opened = open_checked(path, max_bytes, false, st);
    if (!opened) {
        return opened.error();
    }
    FileDescriptor fd(opened.value());
    std::string out(static_cast<std::size_t>(st.st_size), '\0');
    auto status = read_fd_into(fd.get(), path, out.size(), out);
    if (!status) {
        return status.error();
    }
    return out;
}

Result<SecretBytes> read_private_file(const std::filesystem::path& path, std::size_t max_bytes) {
    struct stat st {};
    auto opened = open_checked(path, max_bytes, true, st);
    if (!opened) {
        return opened.error();
    }
    FileDescriptor fd(opened.value());
    SecretBytes out(static_cast<std::size_t>(st.st_size));
    auto status = read_fd_into(fd.get(), path, out.size(), out);
    if (!status) {
        return status.error();
    }
    return out;
}

}  // namespace cipherpulse
