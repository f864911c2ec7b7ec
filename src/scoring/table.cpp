#include "scoring/table.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace cipherpulse::scoring {
namespace {

std::vector<std::string> split_line(std::string_view line) {
    std::vector<std::string> cells;
    std::size_t start = 0;
    while (true) {
        std::size_t comma = line.find(',', start);
        std::string_view cell = line.substr(start, comma == std::string_view::npos
                                                       ? std::string_view::npos
                                                       : comma - start);
        while (!cell.empty() && (cell.front() == ' ' || cell.front() == '\t')) {
            cell.remove_prefix(1);
        }
        while (!cell.empty() && (cell.back() == ' ' || cell.back() == '\t')) {
            cell.remove_suffix(1);
        }
        cells.emplace_back(cell);
        if (comma == std::string_view::npos) {
            return cells;
        }
        start = comma + 1;
    }
}

}  // namespace

RowValues Table::row_values(std::size_t i) const {
    RowValues values;
    for (std::size_t c = 0; c < header.size(); ++c) {
        values.emplace(header[c], rows.at(i)[c]);
    }
    return values;
}

Result<Table> parse_csv(std::string_view text, std::size_t max_rows) {
    Table table;
    std::size_t line_no = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        std::size_t end = text.find('\n', pos);
        std::string_view line = text.substr(pos, end == std::string_view::npos ? end : end - pos);
        pos = end == std::string_view::npos ? text.size() + 1 : end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        if (line.find_first_not_of(" \t") == std::string_view::npos) {
            continue;
        }
        auto cells = split_line(line);
        if (table.header.empty()) {
            std::set<std::string> seen;
            for (const auto& h : cells) {
                if (h.empty() || !seen.insert(h).second) {
                    return Error{ErrorCode::kInvalidEncoding,
                                 "line " + std::to_string(line_no) +
                                     ": header names must be non-empty and distinct"};
                }
            }
            table.header = std::move(cells);
            continue;
        }
        if (cells.size() != table.header.size()) {
            return Error{ErrorCode::kInvalidEncoding,
                         "line " + std::to_string(line_no) + ": " + std::to_string(cells.size()) +
                             " cells, the header has " + std::to_string(table.header.size())};
        }
        if (table.rows.size() == max_rows) {
            return Error{ErrorCode::kLimitExceeded,
                         "more than " + std::to_string(max_rows) + " rows"};
        }
        table.rows.push_back(std::move(cells));
    }
    if (table.header.empty()) {
        return Error{ErrorCode::kInvalidEncoding, "no header line"};
    }
    return table;
}

Result<Table> parse_json_rows(std::string_view text, std::size_t max_rows) {
    auto doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_array()) {
        return Error{ErrorCode::kInvalidEncoding, "expected a JSON array of objects"};
    }
    if (doc.size() > max_rows) {
        return Error{ErrorCode::kLimitExceeded, "more than " + std::to_string(max_rows) + " rows"};
    }
    Table table;
    std::map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < doc.size(); ++i) {
        if (!doc[i].is_object()) {
            return Error{ErrorCode::kInvalidEncoding,
                         "row " + std::to_string(i + 1) + ": not an object"};
        }
        for (auto it = doc[i].begin(); it != doc[i].end(); ++it) {
            if (index.emplace(it.key(), table.header.size()).second) {
                table.header.push_back(it.key());
            }
        }
    }
    for (std::size_t i = 0; i < doc.size(); ++i) {
        std::vector<std::string> cells(table.header.size());
        for (auto it = doc[i].begin(); it != doc[i].end(); ++it) {
            const auto& v = it.value();
            std::string cell;
            if (v.is_number()) {
                cell = v.dump();
            } else if (v.is_string()) {
                cell = v.get<std::string>();
            } else if (!v.is_null()) {
                return Error{ErrorCode::kInvalidEncoding, "row " + std::to_string(i + 1) +
                                                              ", column '" + it.key() +
                                                              "': a number or a string expected"};
            }
            cells[index[it.key()]] = std::move(cell);
        }
        table.rows.push_back(std::move(cells));
    }
    return table;
}

Result<Table> read_table(const std::filesystem::path& path, std::size_t max_rows) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return Error{ErrorCode::kIo, "cannot read " + path.string()};
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    const std::size_t first = text.find_first_not_of(" \t\r\n");
    const bool json = path.extension() == ".json" ||
                      (first != std::string::npos && text[first] == '[');
    auto table = json ? parse_json_rows(text, max_rows) : parse_csv(text, max_rows);
    if (!table) {
        return Error{table.error().code, path.string() + ": " + table.error().message};
    }
    return table;
}

}  // namespace cipherpulse::scoring
