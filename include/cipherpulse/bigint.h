// BigInt: an owning RAII wrapper around a GMP integer, plus the byte and text encodings
// cipherpulse uses for big integers.
#pragma once

#include <gmp.h>

#include <compare>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cipherpulse/result.h"

namespace cipherpulse {

// BigInt owns an mpz_t. Copyable and cheaply movable. Not thread-safe for concurrent
// mutation; concurrent reads are fine. Values that are secret live inside secret types
// (PrivateKey), which wipe on destruction through the secure GMP allocator.
class BigInt {
  public:
    BigInt() { mpz_init(v_); }
    BigInt(long value) { mpz_init_set_si(v_, value); }  // NOLINT: implicit by design
    static BigInt from_u64(std::uint64_t value);
    BigInt(const BigInt& other) { mpz_init_set(v_, other.v_); }
    BigInt(BigInt&& other) noexcept {
        mpz_init(v_);
        mpz_swap(v_, other.v_);
    }
    BigInt& operator=(const BigInt& other) {
        if (this != &other) {
            mpz_set(v_, other.v_);
        }
        return *this;
    }
    BigInt& operator=(BigInt&& other) noexcept {
        mpz_swap(v_, other.v_);
        return *this;
    }
    ~BigInt() { mpz_clear(v_); }

    // from_decimal parses an optionally signed decimal integer (no white space, no '+').
    static Result<BigInt> from_decimal(std::string_view text);
    // from_bytes reads unsigned big-endian bytes (empty -> 0).
    static BigInt from_bytes(std::span<const std::uint8_t> bytes);
    // from_base64url decodes base64url (no padding) of unsigned big-endian bytes.
    static Result<BigInt> from_base64url(std::string_view text);

    // to_decimal returns the signed decimal text.
    std::string to_decimal() const;
    // to_bytes returns the minimal unsigned big-endian bytes (0 -> empty). Requires >= 0.
    std::vector<std::uint8_t> to_bytes() const;
    // to_fixed_bytes returns exactly `length` big-endian bytes, left-padded with zeros.
    // Throws std::length_error if the value needs more bytes, std::domain_error if < 0.
    std::vector<std::uint8_t> to_fixed_bytes(std::size_t length) const;
    // to_base64url is base64url of to_bytes() (the JWK convention).
    std::string to_base64url() const;

    std::size_t bit_length() const;  // 0 for 0
    int sign() const { return mpz_sgn(v_); }
    bool is_zero() const { return sign() == 0; }
    // fits_u64 / to_u64: for values in [0, 2^64).
    bool fits_u64() const;
    std::uint64_t to_u64() const;

    mpz_ptr get() { return v_; }
    mpz_srcptr get() const { return v_; }

    friend bool operator==(const BigInt& a, const BigInt& b) { return mpz_cmp(a.v_, b.v_) == 0; }
    friend auto operator<=>(const BigInt& a, const BigInt& b) {
        int c = mpz_cmp(a.v_, b.v_);
        return c < 0 ? std::strong_ordering::less
                     : (c > 0 ? std::strong_ordering::greater : std::strong_ordering::equal);
    }

  private:
    mpz_t v_;
};

}  // namespace cipherpulse
