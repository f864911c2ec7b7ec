#include "cipherpulse/base64url.h"

#include <array>

namespace cipherpulse {
namespace {

constexpr char kUrlAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kStdAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

using DecodeTable = std::array<std::int8_t, 256>;

constexpr DecodeTable make_decode_table(const char* alphabet) {
    DecodeTable table{};
    for (auto& v : table) {
        v = -1;
    }
    for (int i = 0; i < 64; ++i) {
        table[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    }
    return table;
}
constexpr DecodeTable kUrlDecode = make_decode_table(kUrlAlphabet);
constexpr DecodeTable kStdDecode = make_decode_table(kStdAlphabet);

// encode writes groups of four characters; a final partial group is padded with '=' when
// `pad` is set and left short otherwise.
std::string encode(std::span<const std::uint8_t> data, const char* alphabet, bool pad) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < data.size(); i += 3) {
        std::size_t n = std::min<std::size_t>(3, data.size() - i);
        std::uint32_t v = std::uint32_t{data[i]} << 16;
        if (n > 1) {
            v |= std::uint32_t{data[i + 1]} << 8;
        }
        if (n > 2) {
            v |= data[i + 2];
        }
        out.push_back(alphabet[(v >> 18) & 63]);
        out.push_back(alphabet[(v >> 12) & 63]);
        if (n > 1) {
            out.push_back(alphabet[(v >> 6) & 63]);
        } else if (pad) {
            out.push_back('=');
        }
        if (n > 2) {
            out.push_back(alphabet[v & 63]);
        } else if (pad) {
            out.push_back('=');
        }
    }
    return out;
}

// decode_digits decodes unpadded digits strictly: unknown characters and non-canonical
// final characters (unused bits set) are refused, so each byte string has one text.
Result<std::vector<std::uint8_t>> decode_digits(std::string_view digits, const DecodeTable& table,
                                                const char* name) {
    if (digits.size() % 4 == 1) {
        return make_error(ErrorCode::kInvalidEncoding, std::string(name) + ": impossible length " +
                                                           std::to_string(digits.size()));
    }
    std::vector<std::uint8_t> out;
    out.reserve(digits.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        std::int8_t d = table[static_cast<unsigned char>(digits[i])];
        if (d < 0) {
            return make_error(ErrorCode::kInvalidEncoding,
                              std::string(name) + ": invalid character at offset " +
                                  std::to_string(i) + (digits[i] == '=' ? " (misplaced '=')" : ""));
        }
        acc = (acc << 6) | static_cast<std::uint32_t>(d);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<std::uint8_t>((acc >> bits) & 0xff));
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        return make_error(ErrorCode::kInvalidEncoding,
                          std::string(name) + ": non-canonical final character");
    }
    return out;
}

}  // namespace

std::string base64url_encode(std::span<const std::uint8_t> data) {
    return encode(data, kUrlAlphabet, false);
}

std::string base64url_encode(std::string_view data) {
    return base64url_encode(std::span<const std::uint8_t>(
        reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
}

Result<std::vector<std::uint8_t>> base64url_decode(std::string_view text) {
    return decode_digits(text, kUrlDecode, "base64url");
}

std::string base64_encode(std::span<const std::uint8_t> data) {
    return encode(data, kStdAlphabet, true);
}

Result<std::vector<std::uint8_t>> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "base64: length " + std::to_string(text.size()) +
                              " is not a multiple of 4 (padding is required)");
    }
    std::size_t padding = 0;
    while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') {
        ++padding;
    }
    std::string_view digits = text.substr(0, text.size() - padding);
    // Padding must be exactly what the digit count needs.
    if ((digits.size() + padding) % 4 != 0 || (padding > 0 && digits.size() % 4 == 0)) {
        return make_error(ErrorCode::kInvalidEncoding, "base64: wrong padding");
    }
    return decode_digits(digits, kStdDecode, "base64");
}

}  // namespace cipherpulse
