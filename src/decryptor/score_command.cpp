#include "decryptor/score_command.h"

#include <ostream>

#include "common/cli.h"
#include "common/http_client.h"
#include "decryptor/scoring_client.h"
#include "scoring/report.h"
#include "scoring/table.h"

namespace cipherpulse::decryptor {
namespace {

constexpr const char* kProgram = "cipherpulse-decryptor: ";

}  // namespace

int run_score(const DecryptorConfig& config, const std::string& token, const ScoreOptions& options,
              std::ostream& out, std::ostream& err) {
    if (options.format != "table" && options.format != "csv" && options.format != "json") {
        err << kProgram << "error: --format must be table, csv or json\n";
        return common::kExitBadInput;
    }
    if (options.pack != "auto" && options.pack != "always" && options.pack != "never") {
        err << kProgram << "error: --pack must be auto, always or never\n";
        return common::kExitBadInput;
    }
    auto table = scoring::read_table(options.input);
    if (!table) {
        err << kProgram << "error: " << table.error().message << "\n";
        return common::kExitBadInput;
    }
    if (table.value().rows.empty()) {
        err << kProgram << "error: " << options.input << " has no rows\n";
        return common::kExitBadInput;
    }
    auto http = common::make_http_client(config.server_url, config.ca_file, config.timeout_s);
    if (!http) {
        err << kProgram << "error: invalid server URL '" << config.server_url << "'\n";
        return common::kExitBadInput;
    }
    auto key = load_or_create_scoring_key(config.scoring_key, config.scoring_key_bits, err);
    if (!key) {
        err << kProgram << "error: scoring key " << config.scoring_key << ": "
            << key.error().message << "\n";
        return common::kExitBadInput;
    }
    ScoringClient client(*http, token, key.value());
    auto spec = client.fetch_spec(options.model);
    if (!spec.ok()) {
        err << kProgram << "error: " << spec.error.message << "\n";
        return spec.error.exit_code;
    }
    const scoring::Model& model = spec.value->model;
    std::vector<std::vector<std::int64_t>> rows;
    for (std::size_t i = 0; i < table.value().rows.size(); ++i) {
        auto x = scoring::encode_row(model, table.value().row_values(i));
        if (!x) {
            err << kProgram << "error: " << options.input << ": row " << i + 1 << ": "
                << x.error().message << " (nothing was sent)\n";
            return common::kExitBadInput;
        }
        rows.push_back(std::move(x).value());
    }
    const bool packed =
        options.pack == "always" || (options.pack == "auto" && rows.size() >= 2);
    auto scores = client.score(*spec.value, rows, packed, config.scoring_batch_rows);
    if (!scores.ok()) {
        err << kProgram << (scores.error.exit_code == 4 ? "integrity failure: " : "error: ")
            << scores.error.message << "\n";
        return scores.error.exit_code;
    }
    scoring::write_scores(out, model, *scores.value, options.format, &packed);
    err << "scored " << rows.size() << " row(s) with model " << model.id
        << (packed ? " (packed)" : "") << "; the server saw ciphertexts only\n";
    return common::kExitOk;
}

}  // namespace cipherpulse::decryptor
