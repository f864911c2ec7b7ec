#include "cipherpulse/secure.h"

#include <gmp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>

namespace cipherpulse {
namespace {

void* secure_alloc(std::size_t size) {
    void* p = std::malloc(size);
    if (p == nullptr) {
        throw std::bad_alloc();
    }
    return p;
}

// GMP reallocs grow limb arrays; a plain realloc could leave the old copy behind unwiped,
// so move by hand and wipe the old block.
void* secure_realloc(void* old_ptr, std::size_t old_size, std::size_t new_size) {
    void* p = secure_alloc(new_size);
    std::memcpy(p, old_ptr, old_size < new_size ? old_size : new_size);
    OPENSSL_cleanse(old_ptr, old_size);
    std::free(old_ptr);
    return p;
}

void secure_free(void* ptr, std::size_t size) {
    if (ptr == nullptr) {
        return;
    }
    OPENSSL_cleanse(ptr, size);
    std::free(ptr);
}

// Installed when the library is loaded so even integers created before any key exists are
// wiped; install_secure_gmp_allocator() repeats it for code that runs before static init.
struct InstallAtLoad {
    InstallAtLoad() { install_secure_gmp_allocator(); }
} install_at_load;

}  // namespace

void install_secure_gmp_allocator() {
    static std::once_flag once;
    std::call_once(once,
                   [] { mp_set_memory_functions(secure_alloc, secure_realloc, secure_free); });
}

bool secure_gmp_allocator_installed() {
    void* (*alloc_fn)(std::size_t) = nullptr;
    void* (*realloc_fn)(void*, std::size_t, std::size_t) = nullptr;
    void (*free_fn)(void*, std::size_t) = nullptr;
    mp_get_memory_functions(&alloc_fn, &realloc_fn, &free_fn);
    return alloc_fn == &secure_alloc && realloc_fn == &secure_realloc && free_fn == &secure_free;
}

void secure_wipe(void* data, std::size_t size) noexcept {
    if (data != nullptr && size > 0) {
        OPENSSL_cleanse(data, size);
    }
}

bool constant_time_equal(std::span<const std::uint8_t> a,
                         std::span<const std::uint8_t> b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    if (a.empty()) {
        return true;
    }
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    return constant_time_equal(
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(a.data()), a.size()),
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(b.data()), b.size()));
}

void random_bytes(std::span<std::uint8_t> out) {
    if (out.empty()) {
        return;
    }
    if (RAND_priv_bytes(out.data(), static_cast<int>(out.size())) != 1) {
        throw std::runtime_error("OpenSSL CSPRNG failed (RAND_priv_bytes)");
    }
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
    if (this != &other) {
        secure_wipe(bytes_.data(), bytes_.size());
        bytes_ = std::move(other.bytes_);
    }
    return *this;
}

SecretBytes::~SecretBytes() {
    secure_wipe(bytes_.data(), bytes_.size());
}

std::vector<std::uint8_t> sha256(std::span<const std::uint8_t> data) {
    std::vector<std::uint8_t> out(32);
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 ||
        len != 32) {
        throw std::runtime_error("SHA-256 failed");
    }
    return out;
}

std::string sha256_hex(std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    auto digest = sha256(std::span<const std::uint8_t>(
        reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    std::string out;
    out.reserve(64);
    for (std::uint8_t b : digest) {
        out.push_back(kHex[b >> 4]);
        out.push_back(kHex[b & 15]);
    }
    return out;
}

}  // namespace cipherpulse
