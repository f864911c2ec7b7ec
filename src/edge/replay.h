// Replay of recorded heart-rate data for `cipherpulse-edge run --source replay`:
//
// - CSV series `t_seconds,bpm` or `t_seconds,rr_ms` (CsvReplaySource);
// - PhysioNet WFDB beat annotations in MIT format (`.atr`, `.qrs`, ... with the record's
//   `.hea` beside it), read natively (WfdbReplaySource), and the derivation of RR and heart
//   rate series from them exactly as shared/data/real/README.md describes.
//
// Every reader here takes untrusted files: it returns a Result naming what was wrong (file,
// line or byte offset) and never crashes or returns partial data. Sources are not
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cipherpulse/result.h"
#include "edge/reading.h"

namespace cipherpulse::edge {

// ---------------------------------------------------------------------------------------
// WFDB header (.hea)

// kWfdbDefaultFrequency is the sampling frequency WFDB assumes when a header omits it.
inline constexpr double kWfdbDefaultFrequency = 250.0;

// WfdbHeader is the record line of a WFDB header file.
struct WfdbHeader {
    std::string record_name;
    int num_segments = 0;  // 0 for an ordinary record, else the "/n" of a multi-segment one
    int num_signals = 0;
    double sampling_frequency = kWfdbDefaultFrequency;  // samples per second per signal
    double counter_frequency = kWfdbDefaultFrequency;   // = sampling_frequency if omitted
    double base_counter = 0;
    std::optional<std::int64_t> num_samples;  // per signal, when the header says
};

// parse_wfdb_header parses the text of a header file (WFDB header(5)): comment lines ('#')
// and blank lines are skipped anywhere; the record line is
// `name[/nseg] nsig [fs[/counterfreq[(basecounter)]] [nsamp [basetime [basedate]]]]`, and
// an ordinary record must then list `nsig` signal lines. Fails with kInvalidEncoding for a
// malformed field, kOutOfRange for a non-positive or non-finite frequency, kInvalidLength
// when signal lines are missing.
[[nodiscard]] Result<WfdbHeader> parse_wfdb_header(std::string_view text);

// read_wfdb_header reads and parses a header file (kIo if it cannot be read).
[[nodiscard]] Result<WfdbHeader> read_wfdb_header(const std::filesystem::path& hea);

// ---------------------------------------------------------------------------------------
// WFDB annotations (MIT format)

// Annotation is one decoded annotation with its absolute time in annotation ticks (samples
// unless the file declares its own time resolution, see read_wfdb_annotations).
struct Annotation {
    std::int64_t time = 0;
    int code = 0;     // WFDB anntyp, 0..49 (1 = N, 5 = V, 28 = rhythm change, ...)
    int subtype = 0;  // SUB, -512..511
    int chan = 0;     // CHN, persists until changed as in WFDB
    int num = 0;      // NUM, -512..511, persists until changed as in WFDB
    std::string aux;  // AUX bytes (may hold a trailing NUL as written by WFDB)
};

// Codes of the MIT format the readers treat specially.
inline constexpr int kWfdbRhythmCode = 28;  // RHYTHM: aux holds e.g. "(N"
inline constexpr int kWfdbNoteCode = 22;    // NOTE: aux may declare "## time resolution: R"

// decode_mit_annotations decodes an MIT-format annotation file: 16-bit little-endian words
// of 6-bit code and 10-bit time delta; SKIP (59) followed by a 32-bit PDP-11 (middle-endian)
// signed interval; NUM (60), SUB (61), CHN (62) and AUX (63, length then bytes padded to an
// even count) modifying the annotation before them; the word 0 ends the file (bytes after
// it are ignored). Codes 50-58 are skipped as WFDB does. Fails with kInvalidLength when the
// data stops inside a SKIP or AUX or before the end word, kInvalidEncoding for a modifier
// before any annotation or an AUX longer than 255 bytes, kOutOfRange when times go
// negative or backwards. Each error names the byte offset.
[[nodiscard]] Result<std::vector<Annotation>> decode_mit_annotations(
    std::span<const std::uint8_t> bytes);

// wfdb_mnemonic returns WFDB's one-character mnemonic for annotation `code` ('N', 'V',
// '+', ...), or '\0' for codes without one.
char wfdb_mnemonic(int code);

// wfdb_is_qrs says whether `code` is a beat as WFDB isqrs() counts it:
// N L R a V F J A S E j / Q B ? ! e n f r.
bool wfdb_is_qrs(int code);

// Beat is one beat annotation.
struct Beat {
    double t_seconds = 0;  // from the start of the record: time / ticks per second
    char label = 'N';      // WFDB mnemonic
    std::string rhythm;    // aux of the last rhythm annotation before it ("(N"), or ""
};

// kMaxWfdbRecordSeconds bounds beat times (31 days), which also bounds derive_bpm_1hz.
inline constexpr double kMaxWfdbRecordSeconds = 31.0 * 86400.0;

// read_wfdb_annotations reads the beats of an MIT-format annotation file `atr` whose record
// header is `hea`. Times are sample / sampling frequency, or, when the file starts with
// WFDB's "## time resolution: R" note, ticks / R. Rhythm labels come from the aux strings of
// RHYTHM annotations (NUL and what follows dropped; controls, commas and non-ASCII bytes
// become '?'). A beat beyond kMaxWfdbRecordSeconds is refused (kOutOfRange). Fails as
// read_wfdb_header and decode_mit_annotations do, with the file name in the message; kIo when a
// file is missing.
[[nodiscard]] Result<std::vector<Beat>> read_wfdb_annotations(const std::filesystem::path& atr,
                                                              const std::filesystem::path& hea);

// wfdb_header_path returns the header beside an annotation file: `dir/100.atr` ->
// `dir/100.hea` (any annotator extension).
std::filesystem::path wfdb_header_path(const std::filesystem::path& atr);

// ---------------------------------------------------------------------------------------
// Derived series (shared/data/real/README.md), rounded as the committed CSVs are: times to
// 3 decimals, rr and bpm to 1 (decimal rounding of the binary value, ties to even). An RR
// interval is (t2 - t1) * 1000 from the beats' times; intervals that are not positive
// (two beats at the same time) are skipped.

// RrRow is a row of `*_rr_ms.csv`.
struct RrRow {
    double t_seconds = 0;  // time of the second beat
    double rr_ms = 0;
    char label = 'N';  // the second beat's label
    std::string rhythm;
};

// BpmRow is a row of `*_bpm_beat.csv` or `*_bpm_1hz.csv`.
struct BpmRow {
    double t_seconds = 0;
    double bpm = 0;
};

// derive_rr returns one row per interval between consecutive beats.
std::vector<RrRow> derive_rr(const std::vector<Beat>& beats);

// derive_bpm_beat returns 60000 / rr for each row of derive_rr, at the second beat's time.
std::vector<BpmRow> derive_bpm_beat(const std::vector<Beat>& beats);

// derive_bpm_1hz returns, for each whole second s from the first one that has a value to
// the last beat (one row per second of the record: beats must be in time order and span a
// bounded time, as read_wfdb_annotations guarantees), 60000 * n / ΣRR over the n intervals that
// ended in (s-5, s], holding the previous value when none did.
std::vector<BpmRow> derive_bpm_1hz(const std::vector<Beat>& beats);

// format_rr_csv / format_bpm_csv write rows as the committed CSVs are written (header line,
// "\n" line ends). `one_hz` writes whole-second times without decimals.
std::string format_rr_csv(const std::vector<RrRow>& rows);
std::string format_bpm_csv(const std::vector<BpmRow>& rows, bool one_hz);

// round_decimals rounds `value` to `decimals` places as printf("%.*f") does.
double round_decimals(double value, int decimals);

// ---------------------------------------------------------------------------------------
// Sources

// kMaxReplayFileBytes bounds every file the replay readers load.
inline constexpr std::size_t kMaxReplayFileBytes = 256u << 20;

// CsvReplaySource replays a CSV whose header names a `t_seconds` column and an `rr_ms` or
// `bpm` column (anywhere; other columns are ignored; rr_ms wins if both are present). Each
// row becomes one Reading at start_ms + round(t_seconds * 1000): an rr row carries
// rr_ms {round(rr)} and bpm 60000 / rr, a bpm row carries bpm only. Blank lines are skipped.
class CsvReplaySource final : public Source {
  public:
    // open reads and checks the whole file. Refused with the line number: a missing column,
    // a value that is not a finite decimal number, t_seconds going backwards, bpm outside
    // (0, 1000], rr_ms outside [1, 600000] (kInvalidEncoding / kOutOfRange); a header
    // without the columns (kInvalidEncoding); an unreadable or too large file (kIo,
    // kLimitExceeded).
    [[nodiscard]] static Result<std::unique_ptr<CsvReplaySource>> open(
        const std::filesystem::path& path, std::int64_t start_ms);

    // parse is open() on text already in memory; `name` is used in messages.
    [[nodiscard]] static Result<std::unique_ptr<CsvReplaySource>> parse(std::string_view text,
                                                                        std::string_view name,
                                                                        std::int64_t start_ms);

    std::optional<Reading> next() override;

    // size is the number of readings in the file.
    std::size_t size() const { return rows_.size(); }

  private:
    struct Row {
        std::int64_t t_ms;
        double value;
    };
    CsvReplaySource(std::vector<Row> rows, bool rr) : rows_(std::move(rows)), rr_(rr) {}

    std::vector<Row> rows_;
    bool rr_;
    std::size_t next_ = 0;
};

// WfdbReplaySource replays the beats of a WFDB annotation file: one Reading per beat at
// start_ms + round(t_seconds * 1000), carrying rr_ms {round(rr)} and bpm 60000 / rr with rr
// the interval to the previous beat. The first beat carries neither. A beat at the same time
// as the previous one yields no reading; an interval that does not fit in uint32 carries
// neither rr nor bpm.
class WfdbReplaySource final : public Source {
  public:
    // open reads `atr` and the header beside it (wfdb_header_path); fails as
    // read_wfdb_annotations does.
    [[nodiscard]] static Result<std::unique_ptr<WfdbReplaySource>> open(
        const std::filesystem::path& atr, std::int64_t start_ms);

    WfdbReplaySource(std::vector<Beat> beats, std::int64_t start_ms)
        : beats_(std::move(beats)), start_ms_(start_ms) {}

    std::optional<Reading> next() override;

    const std::vector<Beat>& beats() const { return beats_; }

  private:
    std::vector<Beat> beats_;
    std::int64_t start_ms_;
    std::size_t next_ = 0;
};

// open_replay_source opens `path` as CSV when its extension is ".csv" (any case), else as a
// WFDB annotation file.
[[nodiscard]] Result<std::unique_ptr<Source>> open_replay_source(const std::filesystem::path& path,
                                                                 std::int64_t start_ms);

}  // namespace cipherpulse::edge
