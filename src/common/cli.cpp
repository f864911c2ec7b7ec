#include "common/cli.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include "cipherpulse/files.h"

namespace cipherpulse::common {
namespace {

std::string trim(const std::string& s) {
    std::size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) {
        return {};
    }
    std::size_t e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

// prompt_once asks on the controlling terminal (not standard input, which may carry data
// such as ciphertexts) with echo off.
Result<SecretBytes> prompt_once(const char* text) {
    int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "cannot prompt for a passphrase: no terminal (use --passphrase-file "
                          "or --passphrase-env)");
    }
    (void)!::write(fd, text, std::strlen(text));
    termios old_mode{};
    bool is_term = ::tcgetattr(fd, &old_mode) == 0;
    if (is_term) {
        termios silent = old_mode;
        silent.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(fd, TCSANOW, &silent);
    }
    SecretBytes line(1024);
    std::size_t len = 0;
    char ch = 0;
    while (len < line.size() && ::read(fd, &ch, 1) == 1 && ch != '\n') {
        line.data()[len++] = static_cast<std::uint8_t>(ch);
    }
    if (is_term) {
        ::tcsetattr(fd, TCSANOW, &old_mode);
    }
    (void)!::write(fd, "\n", 1);
    ::close(fd);
    SecretBytes out(len);
    std::copy(line.data(), line.data() + len, out.data());
    return out;
}

}  // namespace

Result<SecretBytes> read_passphrase(const PassphraseSource& source, bool confirm) {
    SecretBytes pass;
    if (source.file) {
        auto bytes = read_private_file(*source.file);
        if (!bytes) {
            return bytes.error();
        }
        const SecretBytes& all = bytes.value();
        std::size_t len = 0;
        while (len < all.size() && all.data()[len] != '\n' && all.data()[len] != '\r') {
            ++len;
        }
        pass = SecretBytes(len);
        std::copy(all.data(), all.data() + len, pass.data());
    } else if (source.env_var) {
        const char* value = std::getenv(source.env_var->c_str());
        if (value == nullptr) {
            return make_error(ErrorCode::kInvalidEncoding,
                              "environment variable " + *source.env_var + " is not set");
        }
        pass = SecretBytes(std::string_view(value));
    } else if (source.prompt) {
        auto first = prompt_once("Passphrase: ");
        if (!first) {
            return first.error();
        }
        if (confirm) {
            auto second = prompt_once("Passphrase again: ");
            if (!second) {
                return second.error();
            }
            if (!constant_time_equal(first.value().span(), second.value().span())) {
                return make_error(ErrorCode::kInvalidEncoding, "the passphrases differ");
            }
        }
        pass = std::move(first).value();
    } else {
        return make_error(ErrorCode::kInvalidEncoding, "no passphrase source given");
    }
    if (pass.empty()) {
        return make_error(ErrorCode::kInvalidEncoding, "the passphrase is empty");
    }
    return pass;
}

bool for_each_line(std::istream& in,
                   const std::function<bool(std::size_t, const std::string&)>& fn) {
    std::string line;
    std::size_t number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (!fn(number, trim(line))) {
            return false;
        }
    }
    return true;
}

int run_guarded(const std::string& program, const std::function<int()>& body) {
    try {
        return body();
    } catch (const BadInput& e) {
        std::cerr << program << ": error: " << e.what() << "\n";
        return kExitBadInput;
    } catch (const std::invalid_argument& e) {
        std::cerr << program << ": error: " << e.what() << "\n";
        return kExitBadInput;
    } catch (const std::exception& e) {
        std::cerr << program << ": failed: " << e.what() << "\n";
        return kExitFailure;
    }
}

}  // namespace cipherpulse::common
