// Rows of raw feature values read from CSV or JSON files (the owner's training table, the
// hospital's patients to score).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "cipherpulse/result.h"
#include "scoring/model.h"

namespace cipherpulse::scoring {

// Table is a header and rows of cells, every row as long as the header.
struct Table {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;

    // row_values maps the header to row `i`'s cells.
    RowValues row_values(std::size_t i) const;
};

// parse_csv reads comma-separated text with a header line (no quoting: the values are
// numbers and codes). Fails naming the line: a row with another number of cells, an empty
// or duplicated header name, more than `max_rows` rows.
Result<Table> parse_csv(std::string_view text, std::size_t max_rows = 1'000'000);

// parse_json_rows reads a JSON array of objects {"column": number or string, ...} into a
// table whose header is the union of the keys (a missing key is an empty cell).
Result<Table> parse_json_rows(std::string_view text, std::size_t max_rows = 1'000'000);

// read_table reads a file as JSON when it ends in ".json" or starts with '[', else as CSV.
Result<Table> read_table(const std::filesystem::path& path, std::size_t max_rows = 1'000'000);

}  // namespace cipherpulse::scoring
