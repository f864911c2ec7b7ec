// Tests of the replay sources and the WFDB reader. The reference values come from the CSVs
// in shared/data/real, which were derived from the raw .atr files by an independent reader.
#include "edge/replay.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace cipherpulse::edge {
namespace {

namespace fs = std::filesystem;

fs::path repo_root() {
    if (const char* root = std::getenv("CIPHERPULSE_REPO_ROOT")) {
        return root;
    }
    return fs::current_path();
}

// The shared data folder sits beside the repository root.
fs::path data_dir() {
    return repo_root() / ".." / "shared" / "data" / "real";
}

#define REQUIRE_DATA()                                                         \
    if (!fs::is_directory(data_dir() / "raw")) {                               \
        GTEST_SKIP() << "real data folder missing: " << data_dir().string()    \
                     << " (set CIPHERPULSE_REPO_ROOT to the repository root)"; \
    }

class TempDir {
  public:
    TempDir() {
        static int counter = 0;
        path_ =
            fs::temp_directory_path() / ("cipherpulse_replay_test_" + std::to_string(::getpid()) +
                                         "_" + std::to_string(counter++));
        fs::create_directories(path_);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    fs::path operator/(const std::string& name) const { return path_ / name; }

  private:
    fs::path path_;
};

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

void write_bytes(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    return lines;
}

std::vector<std::string> split_commas(const std::string& line) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    while (true) {
        const std::size_t end = line.find(',', start);
        fields.push_back(line.substr(start, end - start));
        if (end == std::string::npos) {
            return fields;
        }
        start = end + 1;
    }
}

// A little-endian 16-bit MIT word.
std::string word(int code, int data) {
    const unsigned value = (static_cast<unsigned>(code) << 10) | static_cast<unsigned>(data);
    return std::string{static_cast<char>(value & 0xFF), static_cast<char>(value >> 8)};
}

std::string skip(std::int32_t interval) {
    const auto raw = static_cast<std::uint32_t>(interval);
    const unsigned high = raw >> 16;
    const unsigned low = raw & 0xFFFF;
    return word(59, 0) + std::string{static_cast<char>(high & 0xFF), static_cast<char>(high >> 8),
                                     static_cast<char>(low & 0xFF), static_cast<char>(low >> 8)};
}

std::string aux(const std::string& text) {
    std::string out = word(63, static_cast<int>(text.size())) + text;
    if (text.size() % 2 == 1) {
        out += '\0';
    }
    return out;
}

const std::string kEnd = word(0, 0);

Result<std::vector<Annotation>> decode(const std::string& bytes) {
    return decode_mit_annotations(
        std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

// ---------------------------------------------------------------------------------------
// The committed CSVs, row by row

struct Record {
    const char* number;
    const char* prefix;
};

void PrintTo(const Record& record, std::ostream* os) {
    *os << record.prefix;
}

class RealRecordTest : public ::testing::TestWithParam<Record> {};

std::vector<Beat> read_beats(const Record& record) {
    const fs::path raw = data_dir() / "raw";
    Result<std::vector<Beat>> beats = read_wfdb_annotations(
        raw / (std::string(record.number) + ".atr"), raw / (std::string(record.number) + ".hea"));
    EXPECT_TRUE(beats.ok()) << (beats.ok() ? "" : beats.error().message);
    return beats.ok() ? beats.value() : std::vector<Beat>{};
}

// Compares our text with the committed file line by line; returns the rows compared.
std::size_t expect_same_lines(const std::string& ours, const fs::path& file) {
    const std::vector<std::string> expected = lines_of(read_text(file));
    const std::vector<std::string> actual = lines_of(ours);
    EXPECT_GT(expected.size(), 1u) << file;
    EXPECT_EQ(actual.size(), expected.size()) << file;
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < std::min(actual.size(), expected.size()); ++i) {
        if (actual[i] != expected[i] && mismatches++ < 5) {
            ADD_FAILURE() << file.filename() << " line " << i + 1 << ": ours '" << actual[i]
                          << "', committed '" << expected[i] << "'";
        }
    }
    EXPECT_EQ(mismatches, 0u) << file;
    return expected.empty() ? 0 : expected.size() - 1;
}

TEST_P(RealRecordTest, RrRowsMatchCommittedCsvInEveryColumn) {
    REQUIRE_DATA();
    const Record record = GetParam();
    const std::vector<RrRow> rows = derive_rr(read_beats(record));
    const fs::path file = data_dir() / (std::string(record.prefix) + "_rr_ms.csv");
    const std::vector<std::string> expected = lines_of(read_text(file));
    ASSERT_FALSE(expected.empty());
    EXPECT_EQ(expected[0], "t_seconds,rr_ms,beat,rhythm");
    ASSERT_EQ(rows.size(), expected.size() - 1);
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        std::vector<std::string> fields = split_commas(expected[i + 1]);
        ASSERT_EQ(fields.size(), 4u) << "line " << i + 2;
        const bool same = std::strtod(fields[0].c_str(), nullptr) == rows[i].t_seconds &&
                          std::strtod(fields[1].c_str(), nullptr) == rows[i].rr_ms &&
                          fields[2] == std::string(1, rows[i].label) && fields[3] == rows[i].rhythm;
        if (!same && mismatches++ < 5) {
            ADD_FAILURE() << file.filename() << " line " << i + 2 << ": committed '"
                          << expected[i + 1] << "', ours " << rows[i].t_seconds << ","
                          << rows[i].rr_ms << "," << rows[i].label << "," << rows[i].rhythm;
        }
    }
    EXPECT_EQ(mismatches, 0u);
    const std::size_t compared = expect_same_lines(format_rr_csv(rows), file);
    std::cout << "[ compared ] " << file.filename().string() << ": " << compared << " rows\n";
}

TEST_P(RealRecordTest, BpmPerBeatMatchesCommittedCsv) {
    REQUIRE_DATA();
    const Record record = GetParam();
    const std::vector<BpmRow> rows = derive_bpm_beat(read_beats(record));
    const fs::path file = data_dir() / (std::string(record.prefix) + "_bpm_beat.csv");
    const std::size_t compared = expect_same_lines(format_bpm_csv(rows, false), file);
    EXPECT_EQ(compared, rows.size());
    std::cout << "[ compared ] " << file.filename().string() << ": " << compared << " rows\n";
}

TEST_P(RealRecordTest, BpmAt1HzMatchesCommittedCsv) {
    REQUIRE_DATA();
    const Record record = GetParam();
    const std::vector<BpmRow> rows = derive_bpm_1hz(read_beats(record));
    const fs::path file = data_dir() / (std::string(record.prefix) + "_bpm_1hz.csv");
    const std::size_t compared = expect_same_lines(format_bpm_csv(rows, true), file);
    EXPECT_EQ(compared, rows.size());
    std::cout << "[ compared ] " << file.filename().string() << ": " << compared << " rows\n";
}

TEST_P(RealRecordTest, WfdbSourceAgreesWithPerBeatCsv) {
    REQUIRE_DATA();
    const Record record = GetParam();
    const std::int64_t start_ms = 1'700'000'000'000;
    Result<std::unique_ptr<WfdbReplaySource>> source = WfdbReplaySource::open(
        data_dir() / "raw" / (std::string(record.number) + ".atr"), start_ms);
    ASSERT_TRUE(source.ok()) << source.error().message;
    const std::vector<std::string> expected =
        lines_of(read_text(data_dir() / (std::string(record.prefix) + "_bpm_beat.csv")));
    std::optional<Reading> first = source.value()->next();
    ASSERT_TRUE(first.has_value());
    EXPECT_FALSE(first->bpm.has_value());
    EXPECT_TRUE(first->rr_ms.empty());
    std::size_t row = 1;
    std::int64_t previous = first->t_ms;
    while (std::optional<Reading> reading = source.value()->next()) {
        ASSERT_LT(row, expected.size());
        const std::vector<std::string> fields = split_commas(expected[row]);
        const double t = std::strtod(fields[0].c_str(), nullptr);
        // The CSV rounded t to 3 decimals with ties to even, llround breaks ties away from 0.
        EXPECT_LE(std::abs(reading->t_ms - (start_ms + std::llround(t * 1000))), 1)
            << "row " << row;
        ASSERT_TRUE(reading->bpm.has_value());
        EXPECT_EQ(round_decimals(*reading->bpm, 1), std::strtod(fields[1].c_str(), nullptr))
            << "row " << row;
        ASSERT_EQ(reading->rr_ms.size(), 1u);
        EXPECT_NEAR(reading->rr_ms[0], 60000.0 / *reading->bpm, 0.5 + 1e-9);
        EXPECT_TRUE(reading->contact);
        EXPECT_GT(reading->t_ms, previous);
        previous = reading->t_ms;
        ++row;
    }
    EXPECT_EQ(row, expected.size());
}

INSTANTIATE_TEST_SUITE_P(PhysioNet, RealRecordTest,
                         ::testing::Values(Record{"100", "mitdb_100"}, Record{"105", "mitdb_105"},
                                           Record{"208", "mitdb_208"}, Record{"800", "svdb_800"}),
                         [](const ::testing::TestParamInfo<Record>& param_info) {
                             return std::string(param_info.param.prefix);
                         });

TEST(WfdbRealTest, Record100HasThePublishedBeatCounts) {
    REQUIRE_DATA();
    const std::vector<Beat> beats = read_beats({"100", "mitdb_100"});
    std::map<char, int> counts;
    for (const Beat& beat : beats) {
        ++counts[beat.label];
        EXPECT_EQ(beat.rhythm, "(N");
    }
    EXPECT_EQ(beats.size(), 2273u);
    EXPECT_EQ(counts['N'], 2239);
    EXPECT_EQ(counts['A'], 33);
    EXPECT_EQ(counts['V'], 1);
    ASSERT_FALSE(beats.empty());
    EXPECT_DOUBLE_EQ(beats.front().t_seconds, 77.0 / 360.0);  // 18 + 59 samples
}

TEST(WfdbRealTest, Record208SwitchesBetweenSinusAndTrigeminy) {
    REQUIRE_DATA();
    std::map<std::string, int> rhythms;
    for (const Beat& beat : read_beats({"208", "mitdb_208"})) {
        ++rhythms[beat.rhythm];
    }
    EXPECT_GT(rhythms["(N"], 0);
    EXPECT_GT(rhythms["(T"], 0);
    EXPECT_EQ(rhythms.size(), 2u);
}

TEST(WfdbRealTest, HeadersOfTheRealRecords) {
    REQUIRE_DATA();
    Result<WfdbHeader> h100 = read_wfdb_header(data_dir() / "raw" / "100.hea");
    ASSERT_TRUE(h100.ok()) << h100.error().message;  // has a leading comment and a blank line
    EXPECT_EQ(h100.value().record_name, "100");
    EXPECT_EQ(h100.value().num_signals, 2);
    EXPECT_EQ(h100.value().sampling_frequency, 360.0);
    EXPECT_EQ(h100.value().num_samples, 650000);
    Result<WfdbHeader> h800 = read_wfdb_header(data_dir() / "raw" / "800.hea");
    ASSERT_TRUE(h800.ok()) << h800.error().message;
    EXPECT_EQ(h800.value().sampling_frequency, 128.0);
    EXPECT_EQ(h800.value().num_samples, 230400);
}

TEST(WfdbRealTest, TruncatedCopiesAreRefused) {
    REQUIRE_DATA();
    TempDir dir;
    const std::string atr = read_text(data_dir() / "raw" / "100.atr");
    ASSERT_GT(atr.size(), 100u);
    // The first AUX ("(N") starts at byte 2 and declares 3 bytes: cut inside it.
    write_bytes(dir / "aux.atr", atr.substr(0, 6));
    write_bytes(dir / "half.atr", atr.substr(0, 1000));
    write_bytes(dir / "odd.atr", atr.substr(0, 1001));
    const std::string hea = read_text(data_dir() / "raw" / "100.hea");
    for (const char* name : {"aux", "half", "odd"}) {
        write_bytes(dir / (std::string(name) + ".hea"), hea);
        Result<std::vector<Beat>> beats = read_wfdb_annotations(dir / (std::string(name) + ".atr"),
                                                                dir / (std::string(name) + ".hea"));
        ASSERT_FALSE(beats.ok()) << name;
        EXPECT_EQ(beats.error().code, ErrorCode::kInvalidLength) << name;
        EXPECT_NE(beats.error().message.find("truncated"), std::string::npos)
            << beats.error().message;
    }
}

TEST(WfdbRealTest, MissingHeaderIsAnIoError) {
    REQUIRE_DATA();
    TempDir dir;
    write_bytes(dir / "100.atr", read_text(data_dir() / "raw" / "100.atr"));
    Result<std::unique_ptr<WfdbReplaySource>> source = WfdbReplaySource::open(dir / "100.atr", 0);
    ASSERT_FALSE(source.ok());
    EXPECT_EQ(source.error().code, ErrorCode::kIo);
    EXPECT_NE(source.error().message.find("100.hea"), std::string::npos) << source.error().message;
}

// ---------------------------------------------------------------------------------------
// Header parsing

TEST(WfdbHeaderTest, FrequencyFieldForms) {
    Result<WfdbHeader> plain = parse_wfdb_header("rec 0 360\n");
    ASSERT_TRUE(plain.ok()) << plain.error().message;
    EXPECT_EQ(plain.value().sampling_frequency, 360.0);
    EXPECT_EQ(plain.value().counter_frequency, 360.0);
    EXPECT_FALSE(plain.value().num_samples.has_value());

    Result<WfdbHeader> counter = parse_wfdb_header("rec 0 250/1000(-12.5) 900\n");
    ASSERT_TRUE(counter.ok()) << counter.error().message;
    EXPECT_EQ(counter.value().sampling_frequency, 250.0);
    EXPECT_EQ(counter.value().counter_frequency, 1000.0);
    EXPECT_EQ(counter.value().base_counter, -12.5);
    EXPECT_EQ(counter.value().num_samples, 900);

    Result<WfdbHeader> no_base = parse_wfdb_header("rec 0 128.5/64");
    ASSERT_TRUE(no_base.ok()) << no_base.error().message;
    EXPECT_EQ(no_base.value().sampling_frequency, 128.5);
    EXPECT_EQ(no_base.value().counter_frequency, 64.0);

    Result<WfdbHeader> omitted = parse_wfdb_header("# comment\n\nrec 0\n");
    ASSERT_TRUE(omitted.ok()) << omitted.error().message;
    EXPECT_EQ(omitted.value().sampling_frequency, 250.0);
}

TEST(WfdbHeaderTest, SignalLinesAndSegments) {
    Result<WfdbHeader> ok = parse_wfdb_header("r_1 2 360\r\nr_1.dat 212\r\n# x\r\nr_1.dat 212\r\n");
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    EXPECT_EQ(ok.value().record_name, "r_1");
    Result<WfdbHeader> missing = parse_wfdb_header("rec 2 360\nrec.dat 212\n");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, ErrorCode::kInvalidLength);
    Result<WfdbHeader> segments = parse_wfdb_header("multi/3 2 360 1000\nseg1 500\n");
    ASSERT_TRUE(segments.ok()) << segments.error().message;
    EXPECT_EQ(segments.value().num_segments, 3);
}

TEST(WfdbHeaderTest, BadHeadersAreRefused) {
    struct Case {
        const char* text;
        ErrorCode code;
    };
    const Case cases[] = {
        {"", ErrorCode::kInvalidEncoding},
        {"# only a comment\n", ErrorCode::kInvalidEncoding},
        {"rec\n", ErrorCode::kInvalidEncoding},
        {"rec two 360\n", ErrorCode::kInvalidEncoding},
        {"rec -1 360\n", ErrorCode::kInvalidEncoding},
        {"re-c 0 360\n", ErrorCode::kInvalidEncoding},
        {"rec/0 0 360\n", ErrorCode::kInvalidEncoding},
        {"rec 0 abc\n", ErrorCode::kInvalidEncoding},
        {"rec 0 360Hz\n", ErrorCode::kInvalidEncoding},
        {"rec 0 0\n", ErrorCode::kOutOfRange},
        {"rec 0 -360\n", ErrorCode::kOutOfRange},
        {"rec 0 nan\n", ErrorCode::kOutOfRange},
        {"rec 0 inf\n", ErrorCode::kOutOfRange},
        {"rec 0 360/0\n", ErrorCode::kOutOfRange},
        {"rec 0 360/\n", ErrorCode::kInvalidEncoding},
        {"rec 0 360/1000(5\n", ErrorCode::kInvalidEncoding},
        {"rec 0 360/1000(x)\n", ErrorCode::kInvalidEncoding},
        {"rec 0 360 many\n", ErrorCode::kInvalidEncoding},
    };
    for (const Case& c : cases) {
        Result<WfdbHeader> header = parse_wfdb_header(c.text);
        ASSERT_FALSE(header.ok()) << "accepted: " << c.text;
        EXPECT_EQ(header.error().code, c.code) << c.text << " -> " << header.error().message;
    }
    Result<WfdbHeader> zero = parse_wfdb_header("rec 0 0\n");
    ASSERT_FALSE(zero.ok());
    EXPECT_NE(zero.error().message.find("sampling frequency"), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// MIT annotation format

TEST(MitAnnotationTest, DecodesSkipModifiersAndAux) {
    const std::string bytes = word(28, 18) + aux("(N") + word(1, 59) + word(62, 2) +
                              word(60, 1000) + skip(74565) + word(5, 3) + word(61, 7) +
                              word(50, 9) + word(8, 1) + aux("note") + word(1, 2) + kEnd +
                              "trailing bytes are ignored";
    Result<std::vector<Annotation>> anns = decode(bytes);
    ASSERT_TRUE(anns.ok()) << anns.error().message;
    ASSERT_EQ(anns.value().size(), 5u);
    const std::vector<Annotation>& a = anns.value();
    EXPECT_EQ(a[0].time, 18);
    EXPECT_EQ(a[0].code, 28);
    EXPECT_EQ(a[0].aux, std::string("(N\0", 3).substr(0, 2));
    EXPECT_EQ(a[1].time, 77);
    EXPECT_EQ(a[1].chan, 2);
    EXPECT_EQ(a[1].num, -24);  // 1000 as a signed 10-bit value
    EXPECT_EQ(a[2].time, 77 + 74565 + 3);
    EXPECT_EQ(a[2].code, 5);
    EXPECT_EQ(a[2].subtype, 7);
    EXPECT_EQ(a[2].chan, 2);  // CHN and NUM persist, as WFDB writes them only on change
    EXPECT_EQ(a[2].num, -24);
    EXPECT_EQ(a[3].time, a[2].time + 1);  // code 50 was skipped
    EXPECT_EQ(a[3].aux, "note");
    EXPECT_EQ(a[3].subtype, 0);
    EXPECT_EQ(a[4].time, a[3].time + 2);
    EXPECT_TRUE(a[4].aux.empty());
}

TEST(MitAnnotationTest, SkipIsMiddleEndianAndSigned) {
    // 0x00012345: the high word 0x0001 comes first.
    Result<std::vector<Annotation>> anns =
        decode(std::string("\x00\xec\x01\x00\x45\x23", 6) + word(1, 0) + kEnd);
    ASSERT_TRUE(anns.ok()) << anns.error().message;
    ASSERT_EQ(anns.value().size(), 1u);
    EXPECT_EQ(anns.value()[0].time, 0x12345);
    Result<std::vector<Annotation>> back = decode(word(1, 1000) + skip(-500) + word(1, 600) + kEnd);
    ASSERT_TRUE(back.ok()) << back.error().message;
    ASSERT_EQ(back.value().size(), 2u);
    EXPECT_EQ(back.value()[1].time, 1100);
}

TEST(MitAnnotationTest, MalformedDataIsRefused) {
    struct Case {
        const char* what;
        std::string bytes;
        ErrorCode code;
    };
    const Case cases[] = {
        {"empty", "", ErrorCode::kInvalidLength},
        {"no end word", word(1, 5), ErrorCode::kInvalidLength},
        {"odd byte", word(1, 5) + "x", ErrorCode::kInvalidLength},
        {"cut SKIP", word(59, 0) + std::string("\x01\x00", 2), ErrorCode::kInvalidLength},
        {"cut AUX", word(28, 1) + word(63, 10) + "(N", ErrorCode::kInvalidLength},
        {"AUX pad missing", word(28, 1) + word(63, 3) + std::string("(N\0", 3),
         ErrorCode::kInvalidLength},
        {"AUX too long", word(28, 1) + word(63, 300) + std::string(300, 'x') + kEnd,
         ErrorCode::kInvalidEncoding},
        {"modifier first", word(63, 2) + "(N" + kEnd, ErrorCode::kInvalidEncoding},
        {"negative time", skip(-10) + word(1, 0) + kEnd, ErrorCode::kOutOfRange},
        {"backwards", word(1, 100) + skip(-50) + word(1, 0) + kEnd, ErrorCode::kOutOfRange},
    };
    for (const Case& c : cases) {
        Result<std::vector<Annotation>> anns = decode(c.bytes);
        ASSERT_FALSE(anns.ok()) << c.what;
        EXPECT_EQ(anns.error().code, c.code) << c.what << ": " << anns.error().message;
        EXPECT_NE(anns.error().message.find("byte"), std::string::npos) << anns.error().message;
    }
}

TEST(MitAnnotationTest, MnemonicsAndQrsCodes) {
    const std::string qrs = "NLRaVFJASEj/QB?!enfr";
    int beats = 0;
    for (int code = 0; code < 64; ++code) {
        if (wfdb_is_qrs(code)) {
            ++beats;
            EXPECT_NE(qrs.find(wfdb_mnemonic(code)), std::string::npos) << code;
        }
    }
    EXPECT_EQ(beats, 20);
    EXPECT_EQ(wfdb_mnemonic(28), '+');
    EXPECT_EQ(wfdb_mnemonic(14), '~');
    EXPECT_EQ(wfdb_mnemonic(22), '"');
    EXPECT_EQ(wfdb_mnemonic(41), 'r');
    EXPECT_EQ(wfdb_mnemonic(15), '\0');
    EXPECT_EQ(wfdb_mnemonic(42), '\0');
    EXPECT_FALSE(wfdb_is_qrs(28));
    EXPECT_FALSE(wfdb_is_qrs(14));
}

TEST(MitAnnotationTest, TimeResolutionNoteAndRhythmSanitising) {
    TempDir dir;
    write_bytes(dir / "r.hea", "r 1 360\nr.dat 212\n");
    write_bytes(dir / "r.atr", word(22, 0) + aux("## time resolution: 1000") + word(28, 5) +
                                   aux(std::string("(AB,\n\0x", 7)) + word(1, 500) + word(5, 250) +
                                   kEnd);
    Result<std::vector<Beat>> beats = read_wfdb_annotations(dir / "r.atr", dir / "r.hea");
    ASSERT_TRUE(beats.ok()) << beats.error().message;
    ASSERT_EQ(beats.value().size(), 2u);
    EXPECT_DOUBLE_EQ(beats.value()[0].t_seconds, 0.505);  // ticks of 1 ms, not 1/360 s
    EXPECT_DOUBLE_EQ(beats.value()[1].t_seconds, 0.755);
    EXPECT_EQ(beats.value()[0].label, 'N');
    EXPECT_EQ(beats.value()[1].label, 'V');
    EXPECT_EQ(beats.value()[1].rhythm, "(AB??");

    write_bytes(dir / "bad.hea", "bad 1 0\nbad.dat 212\n");
    write_bytes(dir / "bad.atr", word(1, 5) + kEnd);
    Result<std::vector<Beat>> bad = read_wfdb_annotations(dir / "bad.atr", dir / "bad.hea");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, ErrorCode::kOutOfRange);
    EXPECT_NE(bad.error().message.find("bad.hea"), std::string::npos) << bad.error().message;
}

// ---------------------------------------------------------------------------------------
// Derivation on hand-computed beats

std::vector<Beat> beats_at(std::initializer_list<double> times) {
    std::vector<Beat> beats;
    for (double t : times) {
        beats.push_back(Beat{t, 'N', ""});
    }
    return beats;
}

TEST(DeriveTest, OneHertzHoldsThePreviousValueThroughGaps) {
    const std::vector<BpmRow> rows = derive_bpm_1hz(beats_at({0, 1, 2, 10, 10.5}));
    // s=1: one interval of 1000 ms; s=2: two; s=3..9 hold 60 (windows from s=7 are empty);
    // s=10: only the 8000 ms interval that ended at 10 -> 7.5 bpm.
    ASSERT_EQ(rows.size(), 10u);
    for (std::size_t i = 0; i < 9; ++i) {
        EXPECT_EQ(rows[i].t_seconds, static_cast<double>(i + 1));
        EXPECT_EQ(rows[i].bpm, 60.0) << i;
    }
    EXPECT_EQ(rows[9].t_seconds, 10.0);
    EXPECT_EQ(rows[9].bpm, 7.5);
    EXPECT_EQ(format_bpm_csv(rows, true).substr(0, 24), "t_seconds,bpm\n1,60.0\n2,6");
}

TEST(DeriveTest, WindowIsOpenOnTheLeftAndClosedOnTheRight) {
    // Intervals end at 1 (1000 ms), 6 (5000 ms): at s=6 the window (1, 6] holds only the
    // second one; at s=5 the window (0, 5] holds the first.
    const std::vector<BpmRow> rows = derive_bpm_1hz(beats_at({0, 1, 6}));
    ASSERT_EQ(rows.size(), 6u);
    EXPECT_EQ(rows[4].bpm, 60.0);
    EXPECT_EQ(rows[5].bpm, 12.0);
}

TEST(DeriveTest, EdgeCases) {
    EXPECT_TRUE(derive_rr({}).empty());
    EXPECT_TRUE(derive_rr(beats_at({3})).empty());
    EXPECT_TRUE(derive_bpm_1hz(beats_at({3})).empty());
    // A second annotation of the same beat gives no interval.
    const std::vector<RrRow> rr = derive_rr(beats_at({1, 1, 1.8}));
    ASSERT_EQ(rr.size(), 1u);
    EXPECT_EQ(rr[0].rr_ms, 800.0);
    EXPECT_EQ(format_rr_csv(rr), "t_seconds,rr_ms,beat,rhythm\n1.800,800.0,N,\n");
}

TEST(DeriveTest, RoundingIsPrintfRounding) {
    EXPECT_EQ(round_decimals(101.25, 1), 101.2);  // an exact tie goes to even
    EXPECT_EQ(round_decimals(101.35, 1), 101.3);  // 101.35 is below the tie in binary
    EXPECT_EQ(round_decimals(1281.75, 1), 1281.8);
    EXPECT_EQ(round_decimals(2.578125, 3), 2.578);
    EXPECT_EQ(round_decimals(1.0005, 3), 1.0);  // 1.0005 is below the tie in binary
    EXPECT_TRUE(std::isnan(round_decimals(std::nan(""), 1)));
}

// ---------------------------------------------------------------------------------------
// CSV source

TEST(CsvReplayTest, BpmFileWithExtraColumnsBomAndCrLf) {
    TempDir dir;
    write_bytes(dir / "bpm.csv",
                "\xEF\xBB\xBFnote,t_seconds,bpm\r\nx,0,72.5\r\n\r\ny,1.2345,80\r\n");
    Result<std::unique_ptr<CsvReplaySource>> source = CsvReplaySource::open(dir / "bpm.csv", 1000);
    ASSERT_TRUE(source.ok()) << source.error().message;
    EXPECT_EQ(source.value()->size(), 2u);
    std::optional<Reading> a = source.value()->next();
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->t_ms, 1000);
    EXPECT_EQ(a->bpm, 72.5);
    EXPECT_TRUE(a->rr_ms.empty());
    std::optional<Reading> b = source.value()->next();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->t_ms, 1000 + 1235);
    EXPECT_EQ(b->bpm, 80.0);
    EXPECT_FALSE(source.value()->next().has_value());
    EXPECT_FALSE(source.value()->next().has_value());
}

TEST(CsvReplayTest, RrFileCarriesIntervalAndRate) {
    Result<std::unique_ptr<CsvReplaySource>> source =
        CsvReplaySource::parse("t_seconds,rr_ms,beat\n0.8,800.4,N\n1.6,799.5,V\n", "rr", -5);
    ASSERT_TRUE(source.ok()) << source.error().message;
    std::optional<Reading> a = source.value()->next();
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->t_ms, 795);
    EXPECT_EQ(a->rr_ms, std::vector<std::uint32_t>{800});
    EXPECT_DOUBLE_EQ(*a->bpm, 60000.0 / 800.4);
    std::optional<Reading> b = source.value()->next();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->rr_ms, std::vector<std::uint32_t>{800});  // 799.5 rounds away from zero
}

TEST(CsvReplayTest, MalformedFilesNameTheLine) {
    struct Case {
        const char* text;
        const char* where;
        ErrorCode code;
    };
    const Case cases[] = {
        {"", "empty", ErrorCode::kInvalidEncoding},
        {"1.0,72\n", ":1:", ErrorCode::kInvalidEncoding},
        {"t_seconds,heart\n1,72\n", ":1:", ErrorCode::kInvalidEncoding},
        {"t_seconds,bpm,bpm\n1,72,72\n", ":1:", ErrorCode::kInvalidEncoding},
        {"t_seconds,bpm\n1,72\n2,7x2\n", ":3:", ErrorCode::kInvalidEncoding},
        {"t_seconds,bpm\n1,72\n\n2\n", ":4:", ErrorCode::kInvalidEncoding},
        {"t_seconds,bpm\n1,nan\n", ":2:", ErrorCode::kInvalidEncoding},
        {"t_seconds,bpm\ninf,60\n", ":2:", ErrorCode::kInvalidEncoding},
        {"t_seconds,bpm\n 1 , +72\n", ":2:", ErrorCode::kInvalidEncoding},
        {"t_seconds,bpm\n2,72\n1,72\n", ":3:", ErrorCode::kOutOfRange},
        {"t_seconds,bpm\n1,0\n", ":2:", ErrorCode::kOutOfRange},
        {"t_seconds,bpm\n1,1200\n", ":2:", ErrorCode::kOutOfRange},
        {"t_seconds,rr_ms\n1,0.4\n", ":2:", ErrorCode::kOutOfRange},
        {"t_seconds,rr_ms\n1e300,800\n", ":2:", ErrorCode::kOutOfRange},
        {"t_seconds,rr_ms\n1,\x01\x02garbage\n", ":2:", ErrorCode::kInvalidEncoding},
    };
    for (const Case& c : cases) {
        Result<std::unique_ptr<CsvReplaySource>> source =
            CsvReplaySource::parse(c.text, "f.csv", 0);
        ASSERT_FALSE(source.ok()) << "accepted: " << c.text;
        EXPECT_EQ(source.error().code, c.code) << c.text << " -> " << source.error().message;
        EXPECT_NE(source.error().message.find(c.where), std::string::npos)
            << c.text << " -> " << source.error().message;
    }
    Result<std::unique_ptr<CsvReplaySource>> missing = CsvReplaySource::open("/nonexistent.csv", 0);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, ErrorCode::kIo);
}

TEST(CsvReplayTest, CommittedCsvsReplay) {
    REQUIRE_DATA();
    const std::int64_t start = 1'600'000'000'000;
    Result<std::unique_ptr<Source>> rr =
        open_replay_source(data_dir() / "mitdb_100_rr_ms.csv", start);
    ASSERT_TRUE(rr.ok()) << rr.error().message;
    std::optional<Reading> first = rr.value()->next();  // 1.028,813.9,N,(N
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->t_ms, start + 1028);
    EXPECT_EQ(first->rr_ms, std::vector<std::uint32_t>{814});
    EXPECT_DOUBLE_EQ(*first->bpm, 60000.0 / 813.9);
    std::optional<Reading> second = rr.value()->next();  // 1.839,811.1,N,(N
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(second->t_ms, start + 1839);
    EXPECT_EQ(second->rr_ms, std::vector<std::uint32_t>{811});
    std::size_t count = 2;
    while (rr.value()->next()) {
        ++count;
    }
    EXPECT_EQ(count, 2272u);

    Result<std::unique_ptr<CsvReplaySource>> hz =
        CsvReplaySource::open(data_dir() / "svdb_800_bpm_1hz.csv", start);
    ASSERT_TRUE(hz.ok()) << hz.error().message;
    EXPECT_EQ(hz.value()->size(), 1797u);
    std::optional<Reading> row = hz.value()->next();  // 3,45.7
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(row->t_ms, start + 3000);
    EXPECT_EQ(row->bpm, 45.7);
    EXPECT_TRUE(row->rr_ms.empty());
    row = hz.value()->next();  // 4,45.9
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(row->t_ms, start + 4000);
    EXPECT_EQ(row->bpm, 45.9);

    Result<std::unique_ptr<Source>> wfdb =
        open_replay_source(data_dir() / "raw" / "208.atr", start);
    ASSERT_TRUE(wfdb.ok()) << wfdb.error().message;
    std::optional<Reading> beat = wfdb.value()->next();
    ASSERT_TRUE(beat.has_value());
    EXPECT_FALSE(beat->bpm.has_value());
}

}  // namespace
}  // namespace cipherpulse::edge
