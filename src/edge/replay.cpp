#include "edge/replay.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <system_error>
#include <utility>

namespace cipherpulse::edge {

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxHeaderBytes = 1u << 20;
// Beyond this a CSV time is nonsense (about 317 years) and could overflow Unix milliseconds.
constexpr double kMaxSeconds = 1e10;
constexpr std::int64_t kMaxAnnotationTime = std::int64_t{1} << 62;
constexpr int kSkip = 59;
constexpr int kNum = 60;
constexpr int kSub = 61;
constexpr int kChn = 62;
constexpr int kAux = 63;
constexpr int kMaxAnnotationCode = 49;  // WFDB ACMAX
constexpr std::string_view kTimeResolution = "## time resolution: ";

Error prefixed(const std::string& where, const Error& error) {
    return make_error(error.code, where + ": " + error.message);
}

Result<std::string> read_bounded(const fs::path& path, std::size_t max_bytes) {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
        return make_error(ErrorCode::kIo, path.string() + ": no such file");
    }
    if (!fs::is_regular_file(status)) {
        return make_error(ErrorCode::kIo, path.string() + ": not a regular file");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return make_error(ErrorCode::kIo, path.string() + ": cannot open for reading");
    }
    std::string data;
    std::array<char, 1 << 16> buffer{};
    while (in) {
        in.read(buffer.data(), buffer.size());
        data.append(buffer.data(), static_cast<std::size_t>(in.gcount()));
        if (data.size() > max_bytes) {
            return make_error(ErrorCode::kLimitExceeded, path.string() + ": larger than " +
                                                             std::to_string(max_bytes) + " bytes");
        }
    }
    if (in.bad()) {
        return make_error(ErrorCode::kIo, path.string() + ": read error");
    }
    return data;
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && is_space(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && is_space(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

// split_lines splits at '\n'; a final empty piece after a trailing newline is dropped.
std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        const std::size_t end = text.find('\n');
        if (end == std::string_view::npos) {
            lines.push_back(text);
            break;
        }
        lines.push_back(text.substr(0, end));
        text.remove_prefix(end + 1);
    }
    return lines;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> fields;
    while (true) {
        const std::size_t end = text.find(separator);
        fields.push_back(text.substr(0, end));
        if (end == std::string_view::npos) {
            return fields;
        }
        text.remove_prefix(end + 1);
    }
}

std::vector<std::string_view> split_whitespace(std::string_view text) {
    std::vector<std::string_view> fields;
    while (true) {
        text = trim(text);
        if (text.empty()) {
            return fields;
        }
        std::size_t end = 0;
        while (end < text.size() && !is_space(text[end])) {
            ++end;
        }
        fields.push_back(text.substr(0, end));
        text.remove_prefix(end);
    }
}

// parse_number accepts a whole decimal number (no sign '+', no surrounding text); nullopt
// otherwise. The value may be infinite or NaN ("inf", "nan"): callers check.
std::optional<double> parse_number(std::string_view text) {
    double value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end) {
        return std::nullopt;
    }
    return value;
}

template <class Int>
std::optional<Int> parse_integer(std::string_view text) {
    Int value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end) {
        return std::nullopt;
    }
    return value;
}

std::string format_fixed(double value, int decimals) {
    std::array<char, 512> buffer{};
    const auto [ptr, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value,
                                         std::chars_format::fixed, decimals);
    if (ec != std::errc()) {
        return "nan";
    }
    return std::string(buffer.data(), ptr);
}

// parse_frequency parses one frequency of the record line: positive and finite.
Result<double> parse_frequency(std::string_view text, const char* what) {
    const std::optional<double> value = parse_number(text);
    if (!value) {
        return make_error(ErrorCode::kInvalidEncoding,
                          std::string(what) + " '" + std::string(text) + "' is not a number");
    }
    if (!std::isfinite(*value) || *value <= 0) {
        return make_error(ErrorCode::kOutOfRange, std::string(what) + " '" + std::string(text) +
                                                      "' must be a positive finite number");
    }
    return *value;
}

// parse_frequency_field parses `fs[/counterfreq[(basecounter)]]` into `header`.
Status parse_frequency_field(std::string_view field, WfdbHeader& header) {
    const std::size_t slash = field.find('/');
    Result<double> fs = parse_frequency(field.substr(0, slash), "sampling frequency");
    if (!fs) {
        return fs.error();
    }
    header.sampling_frequency = fs.value();
    header.counter_frequency = fs.value();
    if (slash == std::string_view::npos) {
        return Ok{};
    }
    std::string_view rest = field.substr(slash + 1);
    const std::size_t paren = rest.find('(');
    Result<double> counter = parse_frequency(rest.substr(0, paren), "counter frequency");
    if (!counter) {
        return counter.error();
    }
    header.counter_frequency = counter.value();
    if (paren == std::string_view::npos) {
        return Ok{};
    }
    rest.remove_prefix(paren + 1);
    const std::optional<double> base =
        rest.ends_with(')') ? parse_number(rest.substr(0, rest.size() - 1)) : std::nullopt;
    if (!base || !std::isfinite(*base)) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "base counter value in '" + std::string(field) + "' is malformed");
    }
    header.base_counter = *base;
    return Ok{};
}

bool valid_record_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
    });
}

// Parses the name field `name[/nseg]`.
Status parse_record_name(std::string_view field, WfdbHeader& header) {
    const std::size_t slash = field.find('/');
    const std::string_view name = field.substr(0, slash);
    if (!valid_record_name(name)) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "record name must be letters, digits and underscores");
    }
    header.record_name = std::string(name);
    if (slash != std::string_view::npos) {
        const std::optional<int> segments = parse_integer<int>(field.substr(slash + 1));
        if (!segments || *segments < 1) {
            return make_error(ErrorCode::kInvalidEncoding,
                              "number of segments must be a positive integer");
        }
        header.num_segments = *segments;
    }
    return Ok{};
}

std::int32_t sign_extend_10(int data) {
    return data >= 512 ? data - 1024 : data;
}

std::string at_byte(std::size_t offset) {
    return "at byte " + std::to_string(offset);
}

// rhythm_label keeps the aux text up to its first NUL; bytes that could break a CSV line or a
// terminal (controls, commas, non-ASCII) become '?'.
std::string rhythm_label(const std::string& aux) {
    std::string label = aux.substr(0, aux.find('\0'));
    for (char& c : label) {
        if (c < 0x20 || c > 0x7e || c == ',') {
            c = '?';
        }
    }
    return label;
}

// Finds the annotation time resolution WFDB declares with a NOTE at time 0.
Result<std::optional<double>> declared_time_resolution(const std::vector<Annotation>& anns) {
    if (anns.empty() || anns.front().time != 0 || anns.front().code != kWfdbNoteCode ||
        !anns.front().aux.starts_with(kTimeResolution)) {
        return std::optional<double>();
    }
    std::string_view text = anns.front().aux;
    text.remove_prefix(kTimeResolution.size());
    text = trim(text.substr(0, text.find('\0')));
    Result<double> resolution = parse_frequency(text, "annotation time resolution");
    if (!resolution) {
        return resolution.error();
    }
    return std::optional<double>(resolution.value());
}

// Interval is an RR interval in milliseconds that ended at t_seconds.
struct Interval {
    double t_seconds;
    double rr_ms;
    std::size_t beat;  // index of the second beat
};

// Consecutive-beat intervals as the README derives them: (t2 - t1) * 1000 from the times in
// seconds (not from samples: the committed CSVs round this value).
std::vector<Interval> intervals(const std::vector<Beat>& beats) {
    std::vector<Interval> out;
    out.reserve(beats.size());
    for (std::size_t i = 1; i < beats.size(); ++i) {
        const double rr = (beats[i].t_seconds - beats[i - 1].t_seconds) * 1000.0;
        if (rr > 0) {
            out.push_back({beats[i].t_seconds, rr, i});
        }
    }
    return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Header

Result<WfdbHeader> parse_wfdb_header(std::string_view text) {
    std::vector<std::pair<std::size_t, std::string_view>> lines;  // (line number, text)
    const std::vector<std::string_view> raw = split_lines(text);
    for (std::size_t i = 0; i < raw.size(); ++i) {
        const std::string_view line = trim(raw[i]);
        if (!line.empty() && line.front() != '#') {
            lines.emplace_back(i + 1, line);
        }
    }
    if (lines.empty()) {
        return make_error(ErrorCode::kInvalidEncoding, "no record line");
    }
    const std::string line = "line " + std::to_string(lines.front().first);
    const std::string where = line + ": ";
    const std::vector<std::string_view> fields = split_whitespace(lines.front().second);
    WfdbHeader header;
    if (Status name = parse_record_name(fields[0], header); !name) {
        return prefixed(line, name.error());
    }
    if (fields.size() < 2) {
        return make_error(ErrorCode::kInvalidEncoding, where + "number of signals missing");
    }
    const std::optional<int> signals = parse_integer<int>(fields[1]);
    if (!signals || *signals < 0) {
        return make_error(ErrorCode::kInvalidEncoding,
                          where + "number of signals must be a non-negative integer");
    }
    header.num_signals = *signals;
    if (fields.size() >= 3) {
        if (Status frequency = parse_frequency_field(fields[2], header); !frequency) {
            return prefixed(line, frequency.error());
        }
    }
    if (fields.size() >= 4) {
        const std::optional<std::int64_t> samples = parse_integer<std::int64_t>(fields[3]);
        if (!samples || *samples < 0) {
            return make_error(ErrorCode::kInvalidEncoding,
                              where + "number of samples must be a non-negative integer");
        }
        header.num_samples = *samples;
    }
    // Base time and date (fields 5 and 6) are not needed to place annotations in a record.
    const std::size_t listed = lines.size() - 1;
    if (header.num_segments == 0 && listed < static_cast<std::size_t>(header.num_signals)) {
        return make_error(ErrorCode::kInvalidLength,
                          "header declares " + std::to_string(header.num_signals) +
                              " signals but lists " + std::to_string(listed));
    }
    return header;
}

Result<WfdbHeader> read_wfdb_header(const fs::path& hea) {
    Result<std::string> text = read_bounded(hea, kMaxHeaderBytes);
    if (!text) {
        return text.error();
    }
    Result<WfdbHeader> header = parse_wfdb_header(text.value());
    if (!header) {
        return prefixed(hea.string(), header.error());
    }
    return header;
}

// ---------------------------------------------------------------------------------------
// Annotations

Result<std::vector<Annotation>> decode_mit_annotations(std::span<const std::uint8_t> bytes) {
    std::vector<Annotation> out;
    std::int64_t time = 0;
    int chan = 0;
    int num = 0;
    std::size_t pos = 0;
    auto word_at = [&bytes](std::size_t offset) {
        return static_cast<unsigned>(bytes[offset]) |
               (static_cast<unsigned>(bytes[offset + 1]) << 8);
    };
    while (true) {
        if (bytes.size() - pos < 2) {
            return make_error(ErrorCode::kInvalidLength,
                              "annotations end " + at_byte(pos) +
                                  " without the end-of-file word (truncated file?)");
        }
        const std::size_t at = pos;
        const unsigned word = word_at(pos);
        pos += 2;
        if (word == 0) {
            return out;
        }
        const int code = static_cast<int>(word >> 10);
        const int data = static_cast<int>(word & 0x3FF);
        if (code == kSkip) {
            if (bytes.size() - pos < 4) {
                return make_error(ErrorCode::kInvalidLength,
                                  "SKIP " + at_byte(at) + " is cut short (truncated file?)");
            }
            // PDP-11 long: the high 16-bit word first, each word little-endian.
            const std::uint32_t raw = (std::uint32_t{word_at(pos)} << 16) | word_at(pos + 2);
            time += static_cast<std::int32_t>(raw);
            pos += 4;
            if (time < -kMaxAnnotationTime || time > kMaxAnnotationTime) {
                return make_error(ErrorCode::kOutOfRange,
                                  "SKIP " + at_byte(at) + " leaves the record");
            }
            continue;
        }
        if (code > kMaxAnnotationCode && code < kSkip) {
            continue;  // undefined pseudo-codes: WFDB's reader skips them too
        }
        if (code >= kNum) {
            if (out.empty()) {
                return make_error(ErrorCode::kInvalidEncoding,
                                  "modifier (code " + std::to_string(code) + ") " + at_byte(at) +
                                      " before any annotation");
            }
            Annotation& last = out.back();
            if (code == kNum) {
                num = last.num = sign_extend_10(data);
            } else if (code == kSub) {
                last.subtype = sign_extend_10(data);
            } else if (code == kChn) {
                chan = last.chan = data;
            } else {  // kAux
                if (data > 255) {
                    return make_error(ErrorCode::kInvalidEncoding,
                                      "AUX " + at_byte(at) + " declares " + std::to_string(data) +
                                          " bytes (at most 255)");
                }
                const std::size_t padded = (static_cast<std::size_t>(data) + 1) & ~std::size_t{1};
                if (bytes.size() - pos < padded) {
                    return make_error(ErrorCode::kInvalidLength,
                                      "AUX " + at_byte(at) + " declares " + std::to_string(data) +
                                          " bytes but only " + std::to_string(bytes.size() - pos) +
                                          " remain (truncated file?)");
                }
                last.aux.assign(reinterpret_cast<const char*>(bytes.data() + pos),
                                static_cast<std::size_t>(data));
                pos += padded;
            }
            continue;
        }
        time += data;
        if (time < 0 || time > kMaxAnnotationTime) {
            return make_error(ErrorCode::kOutOfRange, "annotation " + at_byte(at) + " has time " +
                                                          std::to_string(time) +
                                                          " outside the record");
        }
        if (!out.empty() && time < out.back().time) {
            return make_error(ErrorCode::kOutOfRange,
                              "annotation " + at_byte(at) + " goes back in time (file not sorted)");
        }
        out.push_back(Annotation{time, code, 0, chan, num, {}});
    }
}

char wfdb_mnemonic(int code) {
    // WFDB's annstr table (ecgcodes.h), codes 0..41; codes 15 and 17 are unassigned.
    static constexpr char kMnemonics[] = " NLRaVFJASEj/Q~\0|\0sT*D\"=pB^t+u?![]en@xf()r";
    if (code < 1 || code >= static_cast<int>(sizeof(kMnemonics) - 1)) {
        return '\0';
    }
    return kMnemonics[code];
}

bool wfdb_is_qrs(int code) {
    return (code >= 1 && code <= 13) || code == 25 || code == 30 || code == 31 || code == 34 ||
           code == 35 || code == 38 || code == 41;
}

fs::path wfdb_header_path(const fs::path& atr) {
    fs::path hea = atr;
    hea.replace_extension(".hea");
    return hea;
}

Result<std::vector<Beat>> read_wfdb_annotations(const fs::path& atr, const fs::path& hea) {
    Result<WfdbHeader> header = read_wfdb_header(hea);
    if (!header) {
        if (header.error().code == ErrorCode::kIo) {
            return make_error(ErrorCode::kIo, header.error().message +
                                                  " (annotation times need the record's header "
                                                  "for the sampling frequency)");
        }
        return header.error();
    }
    Result<std::string> data = read_bounded(atr, kMaxReplayFileBytes);
    if (!data) {
        return data.error();
    }
    const std::string& bytes = data.value();
    Result<std::vector<Annotation>> anns = decode_mit_annotations(
        std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    if (!anns) {
        return prefixed(atr.string(), anns.error());
    }
    Result<std::optional<double>> resolution = declared_time_resolution(anns.value());
    if (!resolution) {
        return prefixed(atr.string(), resolution.error());
    }
    const double ticks_per_second = resolution.value().value_or(header.value().sampling_frequency);
    std::vector<Beat> beats;
    std::string rhythm;
    for (const Annotation& ann : anns.value()) {
        if (ann.code == kWfdbRhythmCode && !ann.aux.empty()) {
            rhythm = rhythm_label(ann.aux);
        }
        if (!wfdb_is_qrs(ann.code)) {
            continue;
        }
        const double t = static_cast<double>(ann.time) / ticks_per_second;
        if (!(t <= kMaxWfdbRecordSeconds)) {
            return make_error(ErrorCode::kOutOfRange,
                              atr.string() + ": a beat lies more than 31 days into the record " +
                                  "(wrong sampling frequency?)");
        }
        beats.push_back(Beat{t, wfdb_mnemonic(ann.code), rhythm});
    }
    return beats;
}

// ---------------------------------------------------------------------------------------
// Derived series

double round_decimals(double value, int decimals) {
    if (!std::isfinite(value)) {
        return value;
    }
    const std::string text = format_fixed(value, decimals);
    return parse_number(text).value_or(value);
}

std::vector<RrRow> derive_rr(const std::vector<Beat>& beats) {
    std::vector<RrRow> rows;
    for (const Interval& in : intervals(beats)) {
        rows.push_back(RrRow{round_decimals(in.t_seconds, 3), round_decimals(in.rr_ms, 1),
                             beats[in.beat].label, beats[in.beat].rhythm});
    }
    return rows;
}

std::vector<BpmRow> derive_bpm_beat(const std::vector<Beat>& beats) {
    std::vector<BpmRow> rows;
    for (const Interval& in : intervals(beats)) {
        rows.push_back(
            BpmRow{round_decimals(in.t_seconds, 3), round_decimals(60000.0 / in.rr_ms, 1)});
    }
    return rows;
}

std::vector<BpmRow> derive_bpm_1hz(const std::vector<Beat>& beats) {
    const std::vector<Interval> all = intervals(beats);
    std::vector<BpmRow> rows;
    if (all.empty()) {
        return rows;
    }
    // Intervals are in time order, so the window (s-5, s] is a contiguous range [lo, hi).
    // Each window is summed afresh, in order, as the reference derivation does: a running
    // sum would round differently.
    const auto first = static_cast<std::int64_t>(std::ceil(all.front().t_seconds));
    const auto last = static_cast<std::int64_t>(std::floor(all.back().t_seconds));
    std::size_t lo = 0;
    std::size_t hi = 0;
    for (std::int64_t s = std::max<std::int64_t>(first, 0); s <= last; ++s) {
        const double end = static_cast<double>(s);
        while (hi < all.size() && all[hi].t_seconds <= end) {
            ++hi;
        }
        while (lo < hi && !(all[lo].t_seconds > end - 5)) {
            ++lo;
        }
        if (lo < hi) {
            double sum = 0;
            for (std::size_t i = lo; i < hi; ++i) {
                sum += all[i].rr_ms;
            }
            rows.push_back(
                BpmRow{end, round_decimals(60000.0 * static_cast<double>(hi - lo) / sum, 1)});
        } else if (!rows.empty()) {
            rows.push_back(BpmRow{end, rows.back().bpm});
        }
    }
    return rows;
}

std::string format_rr_csv(const std::vector<RrRow>& rows) {
    std::string out = "t_seconds,rr_ms,beat,rhythm\n";
    for (const RrRow& row : rows) {
        out += format_fixed(row.t_seconds, 3);
        out += ',';
        out += format_fixed(row.rr_ms, 1);
        out += ',';
        out += row.label;
        out += ',';
        out += row.rhythm;
        out += '\n';
    }
    return out;
}

std::string format_bpm_csv(const std::vector<BpmRow>& rows, bool one_hz) {
    std::string out = "t_seconds,bpm\n";
    for (const BpmRow& row : rows) {
        out += format_fixed(row.t_seconds, one_hz ? 0 : 3);
        out += ',';
        out += format_fixed(row.bpm, 1);
        out += '\n';
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// CSV source

Result<std::unique_ptr<CsvReplaySource>> CsvReplaySource::open(const fs::path& path,
                                                               std::int64_t start_ms) {
    Result<std::string> text = read_bounded(path, kMaxReplayFileBytes);
    if (!text) {
        return text.error();
    }
    return parse(text.value(), path.string(), start_ms);
}

Result<std::unique_ptr<CsvReplaySource>> CsvReplaySource::parse(std::string_view text,
                                                                std::string_view name,
                                                                std::int64_t start_ms) {
    const std::string file(name);
    auto fail = [&file](ErrorCode code, std::size_t line, const std::string& what) {
        return make_error(code, file + ":" + std::to_string(line) + ": " + what);
    };
    if (text.starts_with("\xEF\xBB\xBF")) {
        text.remove_prefix(3);  // UTF-8 byte order mark, as spreadsheets write it
    }
    const std::vector<std::string_view> lines = split_lines(text);
    std::size_t index = 0;
    while (index < lines.size() && trim(lines[index]).empty()) {
        ++index;
    }
    if (index == lines.size()) {
        return make_error(ErrorCode::kInvalidEncoding, file + ": empty file (no header line)");
    }
    // The header decides the kind: columns found by name, values never echoed in messages.
    std::optional<std::size_t> t_column;
    std::optional<std::size_t> rr_column;
    std::optional<std::size_t> bpm_column;
    const std::vector<std::string_view> names = split(lines[index], ',');
    for (std::size_t c = 0; c < names.size(); ++c) {
        const std::string_view column = trim(names[c]);
        std::optional<std::size_t>* slot = column == "t_seconds" ? &t_column
                                           : column == "rr_ms"   ? &rr_column
                                           : column == "bpm"     ? &bpm_column
                                                                 : nullptr;
        if (slot != nullptr) {
            if (slot->has_value()) {
                return fail(ErrorCode::kInvalidEncoding, index + 1,
                            "column '" + std::string(column) + "' appears twice");
            }
            *slot = c;
        }
    }
    const bool rr = rr_column.has_value();
    if (!t_column || (!rr && !bpm_column)) {
        return fail(ErrorCode::kInvalidEncoding, index + 1,
                    "header must name a t_seconds column and a bpm or rr_ms column");
    }
    const std::size_t value_column = rr ? *rr_column : *bpm_column;
    const char* value_name = rr ? "rr_ms" : "bpm";
    const std::size_t needed = std::max(*t_column, value_column) + 1;
    if (start_ms < -kMaxAnnotationTime || start_ms > kMaxAnnotationTime) {
        return make_error(ErrorCode::kOutOfRange, "start time out of range");
    }

    std::vector<Row> rows;
    double previous_t = -std::numeric_limits<double>::infinity();
    for (++index; index < lines.size(); ++index) {
        const std::size_t line = index + 1;
        if (trim(lines[index]).empty()) {
            continue;
        }
        const std::vector<std::string_view> fields = split(lines[index], ',');
        if (fields.size() < needed) {
            return fail(ErrorCode::kInvalidEncoding, line,
                        "expected at least " + std::to_string(needed) + " columns, got " +
                            std::to_string(fields.size()));
        }
        const std::optional<double> t = parse_number(trim(fields[*t_column]));
        if (!t || !std::isfinite(*t)) {
            return fail(ErrorCode::kInvalidEncoding, line, "t_seconds is not a finite number");
        }
        if (std::fabs(*t) > kMaxSeconds) {
            return fail(ErrorCode::kOutOfRange, line, "t_seconds beyond 1e10");
        }
        if (*t < previous_t) {
            return fail(ErrorCode::kOutOfRange, line, "t_seconds goes back in time");
        }
        previous_t = *t;
        const std::optional<double> value = parse_number(trim(fields[value_column]));
        if (!value || !std::isfinite(*value)) {
            return fail(ErrorCode::kInvalidEncoding, line,
                        std::string(value_name) + " is not a finite number");
        }
        if (rr ? (*value < 1 || *value > 600000) : (*value <= 0 || *value > 1000)) {
            return fail(ErrorCode::kOutOfRange, line,
                        rr ? "rr_ms outside [1, 600000]" : "bpm outside (0, 1000]");
        }
        rows.push_back(Row{start_ms + std::llround(*t * 1000.0), *value});
    }
    return std::unique_ptr<CsvReplaySource>(new CsvReplaySource(std::move(rows), rr));
}

std::optional<Reading> CsvReplaySource::next() {
    if (next_ >= rows_.size()) {
        return std::nullopt;
    }
    const Row& row = rows_[next_++];
    Reading reading;
    reading.t_ms = row.t_ms;
    if (rr_) {
        reading.rr_ms.push_back(static_cast<std::uint32_t>(std::llround(row.value)));
        reading.bpm = 60000.0 / row.value;
    } else {
        reading.bpm = row.value;
    }
    return reading;
}

// ---------------------------------------------------------------------------------------
// WFDB source

Result<std::unique_ptr<WfdbReplaySource>> WfdbReplaySource::open(const fs::path& atr,
                                                                 std::int64_t start_ms) {
    if (start_ms < -kMaxAnnotationTime || start_ms > kMaxAnnotationTime) {
        return make_error(ErrorCode::kOutOfRange, "start time out of range");
    }
    Result<std::vector<Beat>> beats = read_wfdb_annotations(atr, wfdb_header_path(atr));
    if (!beats) {
        return beats.error();
    }
    return std::make_unique<WfdbReplaySource>(std::move(beats).value(), start_ms);
}

std::optional<Reading> WfdbReplaySource::next() {
    while (next_ < beats_.size()) {
        const std::size_t i = next_++;
        Reading reading;
        reading.t_ms = start_ms_ + std::llround(beats_[i].t_seconds * 1000.0);
        if (i > 0) {
            const double rr = (beats_[i].t_seconds - beats_[i - 1].t_seconds) * 1000.0;
            if (!(rr > 0)) {
                continue;  // a second annotation of the same beat
            }
            const double rounded = std::round(rr);
            if (rounded >= 1 && rounded <= std::numeric_limits<std::uint32_t>::max()) {
                reading.rr_ms.push_back(static_cast<std::uint32_t>(rounded));
                reading.bpm = 60000.0 / rr;
            }
        }
        return reading;
    }
    return std::nullopt;
}

Result<std::unique_ptr<Source>> open_replay_source(const fs::path& path, std::int64_t start_ms) {
    std::string extension = path.extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (extension == ".csv") {
        Result<std::unique_ptr<CsvReplaySource>> csv = CsvReplaySource::open(path, start_ms);
        if (!csv) {
            return csv.error();
        }
        return std::unique_ptr<Source>(std::move(csv).value());
    }
    Result<std::unique_ptr<WfdbReplaySource>> wfdb = WfdbReplaySource::open(path, start_ms);
    if (!wfdb) {
        return wfdb.error();
    }
    return std::unique_ptr<Source>(std::move(wfdb).value());
}

}  // namespace cipherpulse::edge
