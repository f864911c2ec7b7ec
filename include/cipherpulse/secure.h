// Secret hygiene: wiping memory, constant-time comparison, CSPRNG bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cipherpulse {

// install_secure_gmp_allocator makes GMP wipe every block it frees or moves (realloc), so
// limbs of secret integers do not linger in freed memory. Idempotent and thread-safe; the
// library calls it before it creates any secret, and it is also installed when the library
// is loaded. Blocks allocated before the switch are freed correctly (same malloc family).
void install_secure_gmp_allocator();
// secure_gmp_allocator_installed tells whether GMP currently uses the wiping allocator.
bool secure_gmp_allocator_installed();

// secure_wipe overwrites `size` bytes at `data` in a way the compiler cannot elide.
void secure_wipe(void* data, std::size_t size) noexcept;

// constant_time_equal compares two byte strings without data-dependent timing (the length
// is not secret: different lengths return false at once). Use it for secrets and tokens.
[[nodiscard]] bool constant_time_equal(std::span<const std::uint8_t> a,
                                       std::span<const std::uint8_t> b) noexcept;
[[nodiscard]] bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

// random_bytes fills `out` from OpenSSL's CSPRNG (RAND_priv_bytes: the generator OpenSSL
// reserves for private values). Throws std::runtime_error if the CSPRNG fails.
void random_bytes(std::span<std::uint8_t> out);

// SecretBytes is a move-only byte buffer wiped on destruction, for passphrases and keys.
class SecretBytes {
  public:
    SecretBytes() = default;
    explicit SecretBytes(std::size_t size) : bytes_(size) {}
    SecretBytes(std::string_view text) : bytes_(text.begin(), text.end()) {}  // NOLINT
    SecretBytes(const SecretBytes&) = delete;
    SecretBytes& operator=(const SecretBytes&) = delete;
    SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {}
    SecretBytes& operator=(SecretBytes&& other) noexcept;
    ~SecretBytes();

    std::uint8_t* data() noexcept { return bytes_.data(); }
    const std::uint8_t* data() const noexcept { return bytes_.data(); }
    std::size_t size() const noexcept { return bytes_.size(); }
    bool empty() const noexcept { return bytes_.empty(); }
    std::span<const std::uint8_t> span() const noexcept { return bytes_; }

  private:
    std::vector<std::uint8_t> bytes_;
};

// sha256 returns the SHA-256 digest of `data`.
std::vector<std::uint8_t> sha256(std::span<const std::uint8_t> data);
// sha256_hex returns the SHA-256 digest of `text` in lower-case hexadecimal (64 characters).
std::string sha256_hex(std::string_view text);

}  // namespace cipherpulse
