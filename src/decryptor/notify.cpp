// Notifiers (see notify.h). Two halves: composing the messages (pure and deterministic apart
// from the Date the caller passes) and delivering them over libcurl, one attempt per call,
// with the outcome classified for the caller's retry loop.
//
// Configuration problems (a bad URL, tls = "none" to a remote host, a malformed address)
// are not thrown: they come back from every deliver() as a permanent failure that says
// what is wrong, so the watch service records them in the delivery log like any other
// refused delivery and keeps running the other channel.
#include "decryptor/notify.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "cipherpulse/secure.h"

namespace cipherpulse::decryptor {
namespace {

// ------------------------------------------------------------------------------------------
// Text helpers

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// utf8_sequence_length returns the length of the valid UTF-8 sequence starting at `i`, or 0
// when the bytes there are not valid UTF-8 (overlong forms and surrogates included).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = byte(i);
    std::size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (i + len > s.size() || byte(i + 1) < lo || byte(i + 1) > hi) {
        return 0;
    }
    for (std::size_t k = 2; k < len; ++k) {
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) {
            return 0;
        }
    }
    return len;
}

// clean_text makes text from configuration or data safe to place in a message: invalid UTF-8
// becomes U+FFFD and every control character (C0, DEL, C1, line and paragraph separators)
// a space, so nothing can break a header line or smuggle in one of its own.
std::string clean_text(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    std::size_t i = 0;
    while (i < in.size()) {
        const auto c = static_cast<unsigned char>(in[i]);
        if (c < 0x80) {
            out.push_back(c < 0x20 || c == 0x7F ? ' ' : static_cast<char>(c));
            ++i;
            continue;
        }
        const std::size_t len = utf8_sequence_length(in, i);
        if (len == 0) {
            out += kReplacementChar;
            ++i;
            continue;
        }
        const std::string_view seq = in.substr(i, len);
        const bool c1 = len == 2 && c == 0xC2 && static_cast<unsigned char>(seq[1]) < 0xA0;
        const bool separator = seq == "\xE2\x80\xA8" || seq == "\xE2\x80\xA9";
        if (c1 || separator) {
            out.push_back(' ');
        } else {
            out += seq;
        }
        i += len;
    }
    return out;
}

// utf8_prefix returns the longest prefix of valid UTF-8 `s` of at most `max_bytes` bytes
// that does not cut a character in two.
std::string_view utf8_prefix(std::string_view s, std::size_t max_bytes) {
    if (s.size() <= max_bytes) {
        return s;
    }
    std::size_t n = max_bytes;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
        --n;
    }
    return s.substr(0, n);
}

// truncate_utf8 shortens clean text to at most `max_bytes`, marking a cut with "...".
std::string truncate_utf8(std::string_view s, std::size_t max_bytes) {
    if (s.size() <= max_bytes) {
        return std::string(s);
    }
    if (max_bytes < 3) {
        return std::string(utf8_prefix(s, max_bytes));
    }
    return std::string(utf8_prefix(s, max_bytes - 3)) + "...";
}

bool is_ascii_alnum(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_printable_ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7E; });
}

std::string trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = s.find_last_not_of(" \t");
    return std::string(s.substr(first, last - first + 1));
}

std::string to_upper_ascii(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
    }
    return out;
}

std::string to_lower_ascii(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

std::string hex(std::span<const std::uint8_t> bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (std::uint8_t b : bytes) {
        out.push_back(kDigits[b >> 4]);
        out.push_back(kDigits[b & 0x0F]);
    }
    return out;
}

// short_hash is the first `chars` hex digits of SHA-256(`text`): deterministic names, not
// security.
std::string short_hash(std::string_view text, std::size_t chars) {
    const auto digest =
        sha256(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    return hex(digest).substr(0, chars);
}

std::string base64(std::string_view in) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        const std::uint32_t v = static_cast<std::uint8_t>(in[i]) << 16 |
                                static_cast<std::uint8_t>(in[i + 1]) << 8 |
                                static_cast<std::uint8_t>(in[i + 2]);
        out.push_back(kAlphabet[(v >> 18) & 63]);
        out.push_back(kAlphabet[(v >> 12) & 63]);
        out.push_back(kAlphabet[(v >> 6) & 63]);
        out.push_back(kAlphabet[v & 63]);
    }
    if (const std::size_t rest = in.size() - i; rest > 0) {
        std::uint32_t v = static_cast<std::uint8_t>(in[i]) << 16;
        if (rest == 2) {
            v |= static_cast<std::uint8_t>(in[i + 1]) << 8;
        }
        out.push_back(kAlphabet[(v >> 18) & 63]);
        out.push_back(kAlphabet[(v >> 12) & 63]);
        out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
        out.push_back('=');
    }
    return out;
}

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out.push_back(c);
        }
    }
    return out;
}

// ------------------------------------------------------------------------------------------
// Time formatting (UTC, locale-independent: RFC 5322 wants English names whatever the
// process locale is)

constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::tm utc_tm(std::int64_t ms) {
    std::int64_t secs = ms / 1000;
    if (ms % 1000 < 0) {
        --secs;  // floor, for times before 1970
    }
    const auto t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    return tm;
}

// format is snprintf into a std::string (the texts here are short and bounded).
__attribute__((format(printf, 1, 2))) std::string format(const char* fmt, ...) {
    std::array<char, 96> buffer{};
    va_list args;
    va_start(args, fmt);
    const int n = std::vsnprintf(buffer.data(), buffer.size(), fmt, args);
    va_end(args);
    return std::string(buffer.data(), n > 0 ? std::min<std::size_t>(n, buffer.size() - 1) : 0);
}

std::string rfc5322_date(std::int64_t ms) {
    const std::tm tm = utc_tm(ms);
    return format("%s, %02d %s %04d %02d:%02d:%02d +0000", kDays.at(tm.tm_wday % 7), tm.tm_mday,
                  kMonths.at(tm.tm_mon % 12), tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string iso_date(const std::tm& tm) {
    return format("%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

std::string clock_time(const std::tm& tm, bool seconds) {
    return seconds ? format("%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec)
                   : format("%02d:%02d", tm.tm_hour, tm.tm_min);
}

std::string rfc3339(std::int64_t ms) {
    const std::tm tm = utc_tm(ms);
    return iso_date(tm) + "T" + clock_time(tm, true) + "Z";
}

bool same_day(const std::tm& a, const std::tm& b) {
    return a.tm_year == b.tm_year && a.tm_yday == b.tm_yday;
}

// window_long: "2025-02-13 14:03:00 – 14:04:00 UTC" (both dates when the days differ).
std::string window_long(std::int64_t start_ms, std::int64_t length_ms) {
    const std::tm start = utc_tm(start_ms);
    std::string out = iso_date(start) + " " + clock_time(start, true);
    if (length_ms > 0) {
        const std::tm end = utc_tm(start_ms + length_ms);
        out += " \xE2\x80\x93 ";  // en dash
        if (!same_day(start, end)) {
            out += iso_date(end) + " ";
        }
        out += clock_time(end, true);
    }
    return out + " UTC";
}

// window_short: "14:03-14:04 UTC" for SMS; seconds only when they are not zero, day and
// month when the window spans a day or more.
std::string window_short(std::int64_t start_ms, std::int64_t length_ms) {
    const std::tm start = utc_tm(start_ms);
    const std::tm end = utc_tm(start_ms + std::max<std::int64_t>(length_ms, 0));
    const bool seconds = start.tm_sec != 0 || end.tm_sec != 0;
    const bool dates = length_ms >= 24 * 3600'000LL;
    const auto point = [&](const std::tm& tm) {
        std::string out;
        if (dates) {
            out = format("%d %s ", tm.tm_mday, kMonths.at(tm.tm_mon % 12));
        }
        return out + clock_time(tm, seconds);
    };
    std::string out = point(start);
    if (length_ms > 0) {
        out += "-" + point(end);
    }
    return out + " UTC";
}

// ------------------------------------------------------------------------------------------
// MIME encodings

// encoded_words encodes clean UTF-8 text as RFC 2047 "B" encoded-words of at most 42 octets
// each (a 68-character word), never splitting a character, folded onto continuation lines.
std::string encoded_words(std::string_view text) {
    constexpr std::size_t kChunk = 42;
    std::string out;
    while (!text.empty()) {
        std::string_view chunk = utf8_prefix(text, kChunk);
        if (chunk.empty()) {
            chunk = text.substr(0, 1);  // cannot happen with clean text; never loop forever
        }
        if (!out.empty()) {
            out += "\r\n ";
        }
        out += "=?UTF-8?B?" + base64(chunk) + "?=";
        text.remove_prefix(chunk.size());
    }
    return out;
}

// unstructured_header returns a header value for free text: as is when it is printable
// ASCII that cannot be mistaken for an encoded-word, else encoded-words.
std::string unstructured_header(std::string_view raw, std::size_t max_bytes) {
    const std::string text = truncate_utf8(clean_text(raw), max_bytes);
    if (is_printable_ascii(text) && text.find("=?") == std::string::npos) {
        return text;
    }
    return encoded_words(text);
}

// quoted_printable encodes text whose lines end in '\n' (RFC 2045 §6.7): CRLF line ends,
// encoded lines of at most 76 characters, trailing white space and every octet outside
// printable ASCII encoded, and a '.' that would start a line encoded too.
std::string quoted_printable(std::string_view text) {
    static constexpr char kDigits[] = "0123456789ABCDEF";
    std::string out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        std::string_view line = text.substr(pos, end - pos);
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        std::size_t column = 0;
        for (std::size_t i = 0; i < line.size(); ++i) {
            const auto c = static_cast<unsigned char>(line[i]);
            const bool last = i + 1 == line.size();
            const auto literal_at = [&](std::size_t col) {
                return ((c == ' ' || c == '\t') && !last) ||
                       (c >= 33 && c <= 126 && c != '=' && !(c == '.' && col == 0));
            };
            bool literal = literal_at(column);
            if (column + (literal ? 1 : 3) > 75) {
                out += "=\r\n";  // soft line break: the encoded line ends in '='
                column = 0;
                literal = literal_at(column);
            }
            if (literal) {
                out.push_back(static_cast<char>(c));
                column += 1;
            } else {
                out.push_back('=');
                out.push_back(kDigits[c >> 4]);
                out.push_back(kDigits[c & 0x0F]);
                column += 3;
            }
        }
        out += "\r\n";
        pos = end + 1;
    }
    return out;
}

// ------------------------------------------------------------------------------------------
// Addresses

// Mailbox is one "Display Name <local@domain>" (or a bare address) from the configuration.
struct Mailbox {
    std::string display;
    std::string address;
};

Mailbox parse_mailbox(std::string_view text) {
    Mailbox box;
    const auto open = text.rfind('<');
    const auto close = text.rfind('>');
    if (open != std::string_view::npos && close != std::string_view::npos && close > open) {
        box.display = trim(text.substr(0, open));
        if (box.display.size() >= 2 && box.display.front() == '"' && box.display.back() == '"') {
            box.display = box.display.substr(1, box.display.size() - 2);
        }
        box.address = trim(text.substr(open + 1, close - open - 1));
    } else {
        box.address = trim(text);
    }
    return box;
}

// valid_address accepts the plain addresses a hospital configures (local@domain in
// printable ASCII, nothing that could close the SMTP command or split a header).
bool valid_address(std::string_view a) {
    const auto at = a.rfind('@');
    if (a.empty() || a.size() > 254 || at == std::string_view::npos || at == 0 ||
        at + 1 == a.size()) {
        return false;
    }
    return std::all_of(a.begin(), a.end(), [](char c) {
        return c > 0x20 && c < 0x7F && std::strchr("<>()[]\\,;:\"", c) == nullptr;
    });
}

std::string domain_of(std::string_view address) {
    const auto at = address.rfind('@');
    return at == std::string_view::npos ? std::string() : to_lower_ascii(address.substr(at + 1));
}

// display_phrase renders a display name: plain words as they are, other printable ASCII as a
// quoted-string, anything else as encoded-words.
std::string display_phrase(std::string_view raw) {
    const std::string text = truncate_utf8(clean_text(raw), 120);
    if (!is_printable_ascii(text) || text.find("=?") != std::string::npos) {
        return encoded_words(text);
    }
    const bool atoms = std::all_of(text.begin(), text.end(), [](char c) {
        return is_ascii_alnum(c) || c == ' ' || std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr;
    });
    if (atoms) {
        return text;
    }
    std::string quoted = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') {
            quoted.push_back('\\');
        }
        quoted.push_back(c);
    }
    return quoted + "\"";
}

std::string format_mailbox(const Mailbox& box) {
    const std::string address = clean_text(box.address);
    if (box.display.empty()) {
        return address;
    }
    return display_phrase(box.display) + " <" + address + ">";
}

// address_list joins mailboxes with ", ", folding before a mailbox that would take the line
// past 78 characters (`used` is what the line already holds, e.g. "To: ").
std::string address_list(const std::vector<std::string>& entries, std::size_t used) {
    std::string out;
    std::size_t column = used;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        std::string item = format_mailbox(parse_mailbox(entries[i]));
        if (i + 1 < entries.size()) {
            item += ",";
        }
        if (i > 0) {
            if (column + 1 + item.size() > 78) {
                out += "\r\n";
                column = 0;
            }
            out += " ";
            column += 1;
        }
        out += item;
        const auto newline = item.rfind('\n');
        column = newline == std::string::npos ? column + item.size() : item.size() - newline - 1;
    }
    return out;
}

// ------------------------------------------------------------------------------------------
// Message content

std::string kind_name(AlertEvent::Kind kind) {
    return kind == AlertEvent::Kind::kCleared ? "cleared" : "raised";
}

bool is_cleared(const AlertMessage& m) {
    return m.kind == AlertEvent::Kind::kCleared;
}

std::string subject_text(const AlertMessage& m) {
    const std::string rule = clean_text(m.rule);
    const std::string patient = truncate_utf8(clean_text(m.patient), 120);
    if (is_cleared(m)) {
        return "[cipherpulse] cleared: " + rule + " \xE2\x80\x94 " + patient;
    }
    return "[cipherpulse] " + to_upper_ascii(to_string(m.severity)) + " " + rule +
           " \xE2\x80\x94 " + patient;
}

std::string heading_text(const AlertMessage& m) {
    if (is_cleared(m)) {
        return "Alert cleared: " + clean_text(m.rule);
    }
    return to_upper_ascii(to_string(m.severity)) + " alert raised: " + clean_text(m.rule);
}

// Field is one labelled line of the message (label, clean value).
using Field = std::pair<std::string, std::string>;

std::vector<Field> message_fields(const AlertMessage& m) {
    return {
        {"Patient", clean_text(m.patient)},
        {"Rule", clean_text(m.rule)},
        {"Severity", std::string(to_string(m.severity))},
        {"Status", kind_name(m.kind)},
        {"Window", window_long(m.window_start_ms, m.window_length_ms)},
        {"Summary", clean_text(m.summary)},
    };
}

std::string text_body(const AlertMessage& m) {
    std::string out = heading_text(m) + "\n\n";
    for (const auto& [label, value] : message_fields(m)) {
        out += label + ":" + std::string(10 - std::min<std::size_t>(label.size(), 9), ' ') + value +
               "\n";
    }
    if (!m.figures.empty()) {
        out += "\nFigures:\n";
        for (const Figure& f : m.figures) {
            out += "  " + clean_text(f.name) + ": " + clean_text(f.value) + "\n";
        }
    }
    return out;
}

std::string html_body(const AlertMessage& m) {
    std::string out = "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>" +
                      html_escape(subject_text(m)) + "</title>\n</head>\n<body>\n<h2>" +
                      html_escape(heading_text(m)) + "</h2>\n<table>\n";
    for (const auto& [label, value] : message_fields(m)) {
        out += "<tr><th align=\"left\">" + html_escape(label) + "</th><td>" + html_escape(value) +
               "</td></tr>\n";
    }
    out += "</table>\n";
    if (!m.figures.empty()) {
        out +=
            "<h3>Figures</h3>\n<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\n"
            "<tr><th align=\"left\">Figure</th><th align=\"left\">Value</th></tr>\n";
        for (const Figure& f : m.figures) {
            out += "<tr><td>" + html_escape(clean_text(f.name)) + "</td><td>" +
                   html_escape(clean_text(f.value)) + "</td></tr>\n";
        }
        out += "</table>\n";
    }
    return out + "</body>\n</html>\n";
}

// id_token makes the alert id usable as the left part of a Message-ID (dot-atom text).
std::string id_token(std::string_view id) {
    std::string out;
    for (char c : id.substr(0, 64)) {
        const bool keep = is_ascii_alnum(c) || c == '-' || c == '_';
        out.push_back(keep ? c : '-');
    }
    return out.empty() ? "alert" : out;
}

std::string message_id(const SmtpConfig& config, const AlertMessage& m) {
    const std::string domain = domain_of(parse_mailbox(config.from).address);
    return "<" + id_token(m.id) + "." + short_hash(m.id + "\n" + domain, 16) + "@cipherpulse>";
}

void add_header(std::string& out, std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append("\r\n");
}

// ------------------------------------------------------------------------------------------
// SMS text

std::string sms_text_impl(const AlertMessage& m) {
    constexpr std::size_t kLimit = 160;
    std::string head = is_cleared(m)
                           ? "CLEARED " + clean_text(m.rule)
                           : to_upper_ascii(to_string(m.severity)) + " " + clean_text(m.rule);
    head += ": " + clean_text(m.patient);
    const std::string tail = ", " + window_short(m.window_start_ms, m.window_length_ms);
    if (head.size() + tail.size() > kLimit) {
        // Only a very long alias or rule gets here: keep the window, shorten the rest.
        return truncate_utf8(head, kLimit > tail.size() ? kLimit - tail.size() : 0) + tail;
    }
    std::vector<std::string> details;
    for (const Figure& f : m.figures) {
        details.push_back(clean_text(f.name) + " " + clean_text(f.value));
    }
    if (details.empty() && !m.summary.empty()) {
        details.push_back(clean_text(m.summary));
    }
    std::string text = head;
    for (const std::string& d : details) {
        if (text.size() + 2 + d.size() + tail.size() > kLimit) {
            break;  // figures in the rule's order: keep the first ones whole
        }
        text += ", " + d;
    }
    return text + tail;
}

// ------------------------------------------------------------------------------------------
// libcurl plumbing

CURLcode curl_global_status() {
    static std::once_flag once;
    static CURLcode status = CURLE_OK;
    std::call_once(once, [] { status = curl_global_init(CURL_GLOBAL_DEFAULT); });
    return status;
}

struct CurlDeleter {
    void operator()(CURL* handle) const noexcept { curl_easy_cleanup(handle); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;

struct SlistDeleter {
    void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

struct CurlUrlDeleter {
    void operator()(CURLU* url) const noexcept { curl_url_cleanup(url); }
};

struct CurlStringDeleter {
    void operator()(char* s) const noexcept { curl_free(s); }
};

// append adds `entry` to `list`; false when libcurl could not allocate.
bool append(Slist& list, const std::string& entry) {
    curl_slist* grown = curl_slist_append(list.get(), entry.c_str());
    if (grown == nullptr) {
        return false;
    }
    static_cast<void>(list.release());
    list.reset(grown);
    return true;
}

// UrlParts is what the policy checks need from a configured URL.
struct UrlParts {
    std::string scheme;
    std::string host;
};

std::optional<UrlParts> parse_url(const std::string& url) {
    std::unique_ptr<CURLU, CurlUrlDeleter> handle(curl_url());
    if (!handle || curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
        return std::nullopt;
    }
    UrlParts parts;
    for (auto [part, target] :
         {std::pair{CURLUPART_SCHEME, &parts.scheme}, std::pair{CURLUPART_HOST, &parts.host}}) {
        char* raw = nullptr;
        if (curl_url_get(handle.get(), part, &raw, 0) != CURLUE_OK || raw == nullptr) {
            return std::nullopt;
        }
        std::unique_ptr<char, CurlStringDeleter> owned(raw);
        *target = to_lower_ascii(owned.get());
    }
    return parts;
}

// is_loopback_host: "localhost" (libcurl resolves it to loopback itself, without DNS),
// 127.0.0.0/8 and ::1. Anything else, including unusual spellings of those, is not.
bool is_loopback_host(std::string host) {
    if (!host.empty() && host.back() == '.') {
        host.pop_back();
    }
    if (host == "localhost") {
        return true;
    }
    in_addr v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
        return (ntohl(v4.s_addr) >> 24) == 127;
    }
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    in6_addr v6{};
    return inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

DeliveryResult ok_result(std::string detail) {
    return {true, false, std::move(detail)};
}
DeliveryResult retryable(std::string detail) {
    return {false, false, std::move(detail)};
}
DeliveryResult permanent(std::string detail) {
    return {false, true, std::move(detail)};
}

// redact removes a secret from a detail text, should libcurl ever echo one back.
std::string redact(std::string text, const std::string& secret) {
    if (secret.size() >= 4) {
        for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
            text.replace(at, secret.size(), "***");
        }
    }
    return text;
}

// permanent_transport_error: failures that no retry can fix without someone changing the
// configuration, the certificates or the peer.
bool permanent_transport_error(CURLcode code) {
    switch (code) {
        case CURLE_PEER_FAILED_VERIFICATION:  // also CURLE_SSL_CACERT
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_USE_SSL_FAILED:
        case CURLE_LOGIN_DENIED:
        case CURLE_AUTH_ERROR:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
        case CURLE_NOT_BUILT_IN:
        case CURLE_FILESIZE_EXCEEDED:
        case CURLE_TOO_MANY_REDIRECTS:
            return true;
        default:
            return false;
    }
}

std::string transport_text(CURLcode code) {
    switch (code) {
        case CURLE_COULDNT_CONNECT:
            return "connection failed";
        case CURLE_OPERATION_TIMEDOUT:
            return "timed out";
        case CURLE_COULDNT_RESOLVE_HOST:
            return "host name not resolved";
        case CURLE_PEER_FAILED_VERIFICATION:
            return "server certificate not accepted";
        case CURLE_SSL_CACERT_BADFILE:
            return "ca_file not usable";
        case CURLE_LOGIN_DENIED:
            return "login denied";
        case CURLE_USE_SSL_FAILED:
            return "server does not offer STARTTLS";
        default:
            return curl_easy_strerror(code);
    }
}

// failure_detail: our short text, libcurl's more specific message when it has one, at most
// 200 bytes.
std::string failure_detail(CURLcode code, const char* error_buffer, std::string prefix) {
    std::string detail = std::move(prefix) + transport_text(code);
    if (error_buffer != nullptr && error_buffer[0] != '\0') {
        detail += ": " + clean_text(error_buffer);
    }
    return truncate_utf8(detail, 200);
}

// Options gathers setopt calls and keeps the first failure, so setup reads as a list.
class Options {
  public:
    explicit Options(CURL* handle) : handle_(handle) {}
    template <class T>
    Options& set(CURLoption option, T value) {
        if (status_ == CURLE_OK) {
            status_ = curl_easy_setopt(handle_, option, value);
        }
        return *this;
    }
    CURLcode status() const noexcept { return status_; }

  private:
    CURL* handle_;
    CURLcode status_ = CURLE_OK;
};

// Settings every transfer gets: bounded time, no signals (we run in threads), verified TLS.
void common_options(Options& opt, const std::string& ca_file, int connect_timeout_s, int timeout_s,
                    char* error_buffer) {
    opt.set(CURLOPT_NOSIGNAL, 1L)
        .set(CURLOPT_ERRORBUFFER, error_buffer)
        .set(CURLOPT_CONNECTTIMEOUT, static_cast<long>(std::max(connect_timeout_s, 1)))
        .set(CURLOPT_TIMEOUT, static_cast<long>(std::max(timeout_s, 1)))
        .set(CURLOPT_SSL_VERIFYPEER, 1L)
        .set(CURLOPT_SSL_VERIFYHOST, 2L);
    if (!ca_file.empty()) {
        opt.set(CURLOPT_CAINFO, ca_file.c_str());
    }
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// ------------------------------------------------------------------------------------------
// E-mail

// smtp_config_problem returns why `config` cannot be used, or nothing when it can.
std::optional<std::string> smtp_config_problem(const SmtpConfig& config) {
    const auto url = parse_url(config.url);
    if (!url) {
        return "notify.email: url is not a valid URL";
    }
    if (config.tls == "starttls" || config.tls == "none") {
        if (url->scheme != "smtp") {
            return "notify.email: tls = \"" + config.tls + "\" needs an smtp:// url";
        }
    } else if (config.tls == "implicit") {
        if (url->scheme != "smtps") {
            return std::string("notify.email: tls = \"implicit\" needs an smtps:// url");
        }
    } else {
        return std::string("notify.email: tls must be starttls, implicit or none");
    }
    if (config.tls == "none" && !is_loopback_host(url->host)) {
        return std::string(
            "notify.email: tls = \"none\" refused for a host that is not loopback (mail "
            "would cross the network in clear); use starttls or implicit");
    }
    if (!valid_address(parse_mailbox(config.from).address)) {
        return std::string("notify.email: from has no valid address");
    }
    if (config.to.empty()) {
        return std::string("notify.email: no recipients (to)");
    }
    for (const std::string& to : config.to) {
        if (!valid_address(parse_mailbox(to).address)) {
            return "notify.email: invalid recipient \"" + truncate_utf8(clean_text(to), 80) + "\"";
        }
    }
    return std::nullopt;
}

// Upload feeds the composed message to libcurl's read callback.
struct Upload {
    std::string_view data;
    std::size_t offset = 0;
};

std::size_t read_upload(char* buffer, std::size_t size, std::size_t count, void* user) {
    auto* upload = static_cast<Upload*>(user);
    const std::size_t n = std::min(size * count, upload->data.size() - upload->offset);
    std::memcpy(buffer, upload->data.data() + upload->offset, n);
    upload->offset += n;
    return n;
}

// smtp_result maps libcurl's outcome and the server's last reply code. 5xx replies (a
// recipient or the message refused for good) are permanent, 4xx ones (try later) are not.
DeliveryResult smtp_result(CURLcode code, long reply, const char* error_buffer) {
    if (code == CURLE_OK) {
        return ok_result(reply > 0 ? "accepted (SMTP " + std::to_string(reply) + ")" : "accepted");
    }
    const std::string prefix = reply >= 400 ? "SMTP " + std::to_string(reply) + ": " : "";
    std::string detail = failure_detail(code, error_buffer, prefix);
    if (permanent_transport_error(code) || (reply >= 500 && reply <= 599)) {
        return permanent(std::move(detail));
    }
    return retryable(std::move(detail));
}

class EmailNotifier final : public Notifier {
  public:
    explicit EmailNotifier(SmtpConfig config) : config_(std::move(config)) {}
    EmailNotifier(const EmailNotifier&) = delete;
    EmailNotifier& operator=(const EmailNotifier&) = delete;
    ~EmailNotifier() override { secure_wipe(config_.password.data(), config_.password.size()); }

    const std::string& channel() const override { return channel_; }

    DeliveryResult deliver(const AlertMessage& message) override {
        if (auto problem = smtp_config_problem(config_)) {
            return permanent(std::move(*problem));
        }
        if (curl_global_status() != CURLE_OK) {
            return retryable("libcurl initialisation failed");
        }
        CurlHandle curl(curl_easy_init());
        if (!curl) {
            return retryable("libcurl handle not created");
        }
        const std::string mail = compose_email(config_, message, now_ms());
        Upload upload{mail, 0};
        const std::string mail_from = "<" + parse_mailbox(config_.from).address + ">";
        Slist recipients;
        for (const std::string& to : config_.to) {
            if (!append(recipients, "<" + parse_mailbox(to).address + ">")) {
                return retryable("out of memory");
            }
        }
        std::array<char, CURL_ERROR_SIZE> error{};
        Options opt(curl.get());
        common_options(opt, config_.ca_file, config_.connect_timeout_s, config_.timeout_s,
                       error.data());
        opt.set(CURLOPT_URL, config_.url.c_str())
            .set(CURLOPT_PROTOCOLS_STR, "smtp,smtps")
            .set(CURLOPT_PROXY, "")  // never through a proxy from the environment
            .set(CURLOPT_USE_SSL,
                 static_cast<long>(config_.tls == "none" ? CURLUSESSL_NONE : CURLUSESSL_ALL))
            .set(CURLOPT_MAIL_FROM, mail_from.c_str())
            .set(CURLOPT_MAIL_RCPT, recipients.get())
            .set(CURLOPT_UPLOAD, 1L)
            .set(CURLOPT_READFUNCTION, &read_upload)
            .set(CURLOPT_READDATA, &upload)
            .set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(mail.size()));
        if (!config_.username.empty()) {
            opt.set(CURLOPT_USERNAME, config_.username.c_str())
                .set(CURLOPT_PASSWORD, config_.password.c_str());
        }
        if (opt.status() != CURLE_OK) {
            return permanent(std::string("libcurl refused an option: ") +
                             curl_easy_strerror(opt.status()));
        }
        const CURLcode code = curl_easy_perform(curl.get());
        long reply = 0;
        curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &reply);
        DeliveryResult result = smtp_result(code, reply, error.data());
        result.detail = redact(std::move(result.detail), config_.password);
        return result;
    }

  private:
    SmtpConfig config_;
    std::string channel_ = "email";
};

// ------------------------------------------------------------------------------------------
// SMS webhook

// is_token reports whether `name` is an HTTP field name (RFC 9110 token).
bool is_token(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return is_ascii_alnum(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
    });
}

bool is_field_value(std::string_view value) {
    return std::all_of(value.begin(), value.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u == '\t' || (u >= 0x20 && u != 0x7F);
    });
}

std::optional<std::string> webhook_config_problem(const WebhookConfig& config,
                                                  const AlertMessage& message) {
    const auto url = parse_url(config.url);
    if (!url) {
        return "notify.sms: url is not a valid URL";
    }
    if (url->scheme != "https" && !(url->scheme == "http" && is_loopback_host(url->host))) {
        return std::string(
            "notify.sms: url must be https:// (http:// is allowed only to a loopback host)");
    }
    for (const auto& [name, value] : config.headers) {
        const std::string lower = to_lower_ascii(name);
        if (!is_token(name) || !is_field_value(value)) {
            return "notify.sms: header \"" + truncate_utf8(clean_text(name), 60) +
                   "\" is not a valid HTTP header";
        }
        const bool reserved = lower == "content-type" || lower == "content-length" ||
                              lower == "idempotency-key" || lower == "host" ||
                              (lower == "authorization" && !config.bearer_token.empty());
        if (reserved) {
            return "notify.sms: header \"" + name + "\" is set by the notifier";
        }
    }
    if (!is_field_value(config.bearer_token) ||
        config.bearer_token.find_first_of(" \t") != std::string::npos) {
        return std::string("notify.sms: bearer token has invalid characters");
    }
    if (message.id.empty() || !is_printable_ascii(message.id) || message.id.size() > 255) {
        return std::string("alert id unusable as an Idempotency-Key");
    }
    return std::nullopt;
}

std::size_t discard_body(char*, std::size_t size, std::size_t count, void*) {
    return size * count;
}

DeliveryResult http_result(CURLcode code, long status, const char* error_buffer) {
    if (code != CURLE_OK) {
        std::string detail = failure_detail(code, error_buffer, "");
        return permanent_transport_error(code) ? permanent(std::move(detail))
                                               : retryable(std::move(detail));
    }
    std::string detail = "HTTP " + std::to_string(status);
    if (status >= 200 && status <= 299) {
        return ok_result(std::move(detail));
    }
    if (status == 408 || status == 429 || status >= 500) {
        return retryable(std::move(detail));
    }
    return permanent(std::move(detail));  // other 4xx, and redirects we do not follow
}

class SmsNotifier final : public Notifier {
  public:
    explicit SmsNotifier(WebhookConfig config) : config_(std::move(config)) {}
    SmsNotifier(const SmsNotifier&) = delete;
    SmsNotifier& operator=(const SmsNotifier&) = delete;
    ~SmsNotifier() override {
        secure_wipe(config_.bearer_token.data(), config_.bearer_token.size());
    }

    const std::string& channel() const override { return channel_; }

    DeliveryResult deliver(const AlertMessage& message) override {
        if (auto problem = webhook_config_problem(config_, message)) {
            return permanent(std::move(*problem));
        }
        if (curl_global_status() != CURLE_OK) {
            return retryable("libcurl initialisation failed");
        }
        CurlHandle curl(curl_easy_init());
        if (!curl) {
            return retryable("libcurl handle not created");
        }
        const std::string body = sms_json(config_, message);
        std::string authorization;
        if (!config_.bearer_token.empty()) {
            authorization = "Authorization: Bearer " + config_.bearer_token;
        }
        DeliveryResult result = post(curl.get(), body, authorization, message.id);
        secure_wipe(authorization.data(), authorization.size());
        return result;
    }

  private:
    DeliveryResult post(CURL* curl, const std::string& body, const std::string& authorization,
                        const std::string& id) {
        Slist headers;
        bool built = append(headers, "Content-Type: application/json") &&
                     append(headers, "Idempotency-Key: " + id) && append(headers, "Expect:");
        if (!authorization.empty()) {
            built = built && append(headers, authorization);
        }
        for (const auto& [name, value] : config_.headers) {
            // "Name;" is libcurl's spelling of a header with an empty value.
            built = built && append(headers, value.empty() ? name + ";" : name + ": " + value);
        }
        if (!built) {
            return retryable("out of memory");
        }
        std::array<char, CURL_ERROR_SIZE> error{};
        Options opt(curl);
        common_options(opt, config_.ca_file, config_.connect_timeout_s, config_.timeout_s,
                       error.data());
        opt.set(CURLOPT_URL, config_.url.c_str())
            .set(CURLOPT_PROTOCOLS_STR, "http,https")
            .set(CURLOPT_NOPROXY, "localhost,127.0.0.1,::1")
            .set(CURLOPT_FOLLOWLOCATION, 0L)
            .set(CURLOPT_USERAGENT, "cipherpulse-decryptor")
            .set(CURLOPT_POST, 1L)
            .set(CURLOPT_POSTFIELDS, body.c_str())
            .set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()))
            .set(CURLOPT_HTTPHEADER, headers.get())
            .set(CURLOPT_WRITEFUNCTION, &discard_body);
        if (opt.status() != CURLE_OK) {
            return permanent(std::string("libcurl refused an option: ") +
                             curl_easy_strerror(opt.status()));
        }
        const CURLcode code = curl_easy_perform(curl);
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        DeliveryResult result = http_result(code, status, error.data());
        result.detail = redact(std::move(result.detail), config_.bearer_token);
        return result;
    }

    WebhookConfig config_;
    std::string channel_ = "sms";
};

}  // namespace

// ------------------------------------------------------------------------------------------
// Public API

std::unique_ptr<Notifier> make_email_notifier(SmtpConfig config) {
    return std::make_unique<EmailNotifier>(std::move(config));
}

std::unique_ptr<Notifier> make_sms_notifier(WebhookConfig config) {
    return std::make_unique<SmsNotifier>(std::move(config));
}

std::string compose_email(const SmtpConfig& config, const AlertMessage& message,
                          std::int64_t now_ms) {
    const std::string text_part = quoted_printable(text_body(message));
    const std::string html_part = quoted_printable(html_body(message));
    // Quoted-printable output never holds "=_" (every '=' is encoded as "=3D" or ends a
    // line), so this boundary cannot occur in the parts; the loop is a second guard.
    std::string boundary;
    for (int salt = 0;; ++salt) {
        boundary = "=_cipherpulse_" + short_hash(message.id + "\n" + std::to_string(salt), 24);
        if (text_part.find(boundary) == std::string::npos &&
            html_part.find(boundary) == std::string::npos) {
            break;
        }
    }
    std::string out;
    add_header(out, "Date", rfc5322_date(now_ms));
    add_header(out, "From", format_mailbox(parse_mailbox(config.from)));
    add_header(out, "To", address_list(config.to, 4));
    add_header(out, "Subject", unstructured_header(subject_text(message), 400));
    add_header(out, "Message-ID", message_id(config, message));
    add_header(out, "MIME-Version", "1.0");
    add_header(out, "Auto-Submitted", "auto-generated");
    add_header(out, "X-Auto-Response-Suppress", "All");
    add_header(out, "X-Cipherpulse-Alert", unstructured_header(message.id, 200));
    add_header(out, "Content-Type", "multipart/alternative;\r\n boundary=\"" + boundary + "\"");
    out += "\r\nThis is a MIME message with a text and an HTML version.\r\n";
    for (const auto& [type, part] :
         {std::pair{"text/plain", &text_part}, std::pair{"text/html", &html_part}}) {
        out += "\r\n--" + boundary + "\r\n";
        add_header(out, "Content-Type", std::string(type) + "; charset=utf-8");
        add_header(out, "Content-Transfer-Encoding", "quoted-printable");
        out += "\r\n" + *part;
    }
    out += "\r\n--" + boundary + "--\r\n";
    return out;
}

std::string sms_text(const AlertMessage& message) {
    return sms_text_impl(message);
}

std::string sms_json(const WebhookConfig& config, const AlertMessage& message) {
    nlohmann::json body = {
        {"id", message.id},
        {"to", config.to},
        {"text", sms_text(message)},
        {"patient", clean_text(message.patient)},
        {"rule", clean_text(message.rule)},
        {"severity", std::string(to_string(message.severity))},
        {"kind", kind_name(message.kind)},
        {"window_start", rfc3339(message.window_start_ms)},
        {"window_length_s", message.window_length_ms / 1000},
    };
    // Ids and recipients come from our own configuration, but never let a stray byte
    // turn a delivery into an exception.
    return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::int64_t RetryPolicy::delay_after(int failed_attempts) const noexcept {
    const std::int64_t cap = std::max<std::int64_t>(max_backoff_ms, 0);
    const std::int64_t base = std::max<std::int64_t>(initial_backoff_ms, 0);
    if (failed_attempts < 1 || base == 0) {
        return 0;
    }
    const int shift = failed_attempts - 1;
    if (shift >= 63 || base > (cap >> shift)) {
        return cap;
    }
    return std::min(base << shift, cap);
}

}  // namespace cipherpulse::decryptor
