#include "common/time_text.h"

#include <charconv>
#include <ctime>

namespace cipherpulse::common {
namespace {

// digits reads exactly `n` decimal digits of `s` at `pos`.
std::optional<int> digits(std::string_view s, std::size_t pos, std::size_t n) {
    if (pos + n > s.size()) {
        return std::nullopt;
    }
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') {
            return std::nullopt;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int days_in_month(int y, int m) {
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : kDays[m - 1];
}

// parse_iso reads the ISO 8601 forms of parse_time_arg.
std::optional<std::int64_t> parse_iso(std::string_view text) {
    if (!text.empty() && text.back() == 'Z') {
        text.remove_suffix(1);
    }
    auto year = digits(text, 0, 4);
    auto month = digits(text, 5, 2);
    auto day = digits(text, 8, 2);
    if (text.size() < 10 || !year || !month || !day || text[4] != '-' || text[7] != '-' ||
        *year < 1970 || *month < 1 || *month > 12 || *day < 1 ||
        *day > days_in_month(*year, *month)) {
        return std::nullopt;
    }
    std::tm parts{};
    if (text.size() > 10) {
        auto h = digits(text, 11, 2);
        auto m = digits(text, 14, 2);
        if (text[10] != 'T' || text.size() < 16 || text[13] != ':' || !h || !m || *h > 23 ||
            *m > 59) {
            return std::nullopt;
        }
        parts.tm_hour = *h;
        parts.tm_min = *m;
        if (text.size() > 16) {
            auto s = digits(text, 17, 2);
            if (text.size() != 19 || text[16] != ':' || !s || *s > 59) {
                return std::nullopt;
            }
            parts.tm_sec = *s;
        }
    }
    parts.tm_year = *year - 1900;
    parts.tm_mon = *month - 1;
    parts.tm_mday = *day;
    return static_cast<std::int64_t>(timegm(&parts)) * 1000;
}

}  // namespace

std::string utc_text(std::int64_t ms) {
    std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm parts{};
    if (gmtime_r(&seconds, &parts) == nullptr) {
        return std::to_string(ms) + " ms";
    }
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &parts);
    return buf;
}

std::string iso_utc(std::int64_t ms) {
    std::time_t t = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
    std::tm parts{};
    gmtime_r(&t, &parts);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
}

std::optional<std::int64_t> parse_duration(std::string_view text) {
    constexpr std::int64_t kMaxMs = 366LL * 86'400'000;
    std::int64_t total = 0;
    std::size_t i = 0;
    if (text.empty()) {
        return std::nullopt;
    }
    while (i < text.size()) {
        std::int64_t number = 0;
        const std::size_t digits_start = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            number = number * 10 + (text[i] - '0');
            if (number > kMaxMs) {
                return std::nullopt;
            }
            ++i;
        }
        if (i == digits_start) {
            return std::nullopt;
        }
        std::int64_t unit = 0;
        if (text.substr(i, 2) == "ms") {
            unit = 1;
            i += 2;
        } else if (i < text.size()) {
            switch (text[i]) {
                case 's':
                    unit = 1000;
                    break;
                case 'm':
                    unit = 60'000;
                    break;
                case 'h':
                    unit = 3'600'000;
                    break;
                case 'd':
                    unit = 86'400'000;
                    break;
                default:
                    return std::nullopt;
            }
            ++i;
        } else {
            return std::nullopt;
        }
        total += number * unit;
        if (total > kMaxMs) {
            return std::nullopt;
        }
    }
    return total;
}

Result<std::int64_t> parse_time_arg(std::string_view text, std::int64_t now_ms) {
    auto bad = [&] {
        return make_error(ErrorCode::kInvalidEncoding,
                          "'" + std::string(text.substr(0, 64)) +
                              "' is not a time: use Unix ms, 2026-11-21, 2026-11-21T10:00:00Z, "
                              "now or -2h");
    };
    if (text == "now") {
        return now_ms;
    }
    if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos) {
        std::int64_t ms = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
        if (ec != std::errc() || end != text.data() + text.size() || text.size() > 15) {
            return bad();
        }
        return ms;
    }
    if (text.size() >= 3 && text[0] == '-') {
        auto ago = parse_duration(text.substr(1));
        if (!ago) {
            return bad();
        }
        return now_ms - *ago;
    }
    auto t = parse_iso(text);
    if (!t) {
        return bad();
    }
    return *t;
}

}  // namespace cipherpulse::common
