#include "cipherpulse/bigint.h"

#include <memory>
#include <stdexcept>

#include "cipherpulse/base64url.h"

namespace cipherpulse {

BigInt BigInt::from_u64(std::uint64_t value) {
    BigInt out;
    mpz_import(out.v_, 1, 1, sizeof(value), 0, 0, &value);
    return out;
}

Result<BigInt> BigInt::from_decimal(std::string_view text) {
    std::size_t start = (!text.empty() && text[0] == '-') ? 1 : 0;
    if (text.size() == start) {
        return make_error(ErrorCode::kInvalidEncoding, "not a decimal integer: empty");
    }
    for (std::size_t i = start; i < text.size(); ++i) {
        if (text[i] < '0' || text[i] > '9') {
            return make_error(
                ErrorCode::kInvalidEncoding,
                "not a decimal integer: unexpected character at offset " + std::to_string(i));
        }
    }
    BigInt out;
    std::string copy(text);
    if (mpz_set_str(out.v_, copy.c_str(), 10) != 0) {
        return make_error(ErrorCode::kInvalidEncoding, "not a decimal integer");
    }
    return out;
}

BigInt BigInt::from_bytes(std::span<const std::uint8_t> bytes) {
    BigInt out;
    if (!bytes.empty()) {
        mpz_import(out.v_, bytes.size(), 1, 1, 0, 0, bytes.data());
    }
    return out;
}

Result<BigInt> BigInt::from_base64url(std::string_view text) {
    auto bytes = base64url_decode(text);
    if (!bytes) {
        return bytes.error();
    }
    return from_bytes(bytes.value());
}

std::string BigInt::to_decimal() const {
    std::string out(mpz_sizeinbase(v_, 10) + 2, '\0');
    mpz_get_str(out.data(), 10, v_);
    out.resize(std::char_traits<char>::length(out.c_str()));
    return out;
}

std::vector<std::uint8_t> BigInt::to_bytes() const {
    if (sign() < 0) {
        throw std::domain_error("BigInt::to_bytes: negative value");
    }
    std::vector<std::uint8_t> out((bit_length() + 7) / 8);
    if (!out.empty()) {
        std::size_t written = 0;
        mpz_export(out.data(), &written, 1, 1, 0, 0, v_);
        out.resize(written);
    }
    return out;
}

std::vector<std::uint8_t> BigInt::to_fixed_bytes(std::size_t length) const {
    if (sign() < 0) {
        throw std::domain_error("BigInt::to_fixed_bytes: negative value");
    }
    std::size_t needed = (bit_length() + 7) / 8;
    if (needed > length) {
        throw std::length_error("BigInt::to_fixed_bytes: value needs " + std::to_string(needed) +
                                " bytes, only " + std::to_string(length) + " allowed");
    }
    std::vector<std::uint8_t> out(length, 0);
    if (needed > 0) {
        std::size_t written = 0;
        mpz_export(out.data() + (length - needed), &written, 1, 1, 0, 0, v_);
    }
    return out;
}

std::string BigInt::to_base64url() const {
    return base64url_encode(to_bytes());
}

std::size_t BigInt::bit_length() const {
    return is_zero() ? 0 : mpz_sizeinbase(v_, 2);
}

bool BigInt::fits_u64() const {
    return sign() >= 0 && bit_length() <= 64;
}

std::uint64_t BigInt::to_u64() const {
    if (!fits_u64()) {
        throw std::out_of_range("BigInt::to_u64: value does not fit 64 bits");
    }
    std::uint64_t out = 0;
    std::size_t count = 0;
    mpz_export(&out, &count, 1, sizeof(out), 0, 0, v_);
    return out;
}

}  // namespace cipherpulse
