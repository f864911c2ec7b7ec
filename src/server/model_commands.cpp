#include "server/model_commands.h"

#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "common/cli.h"
#include "scoring/model.h"
#include "scoring/report.h"
#include "scoring/table.h"
#include "server/admin_commands.h"
#include "server/app.h"
#include "server/audit.h"
#include "server/model_store.h"

namespace cipherpulse::server {
namespace {

constexpr const char* kProgram = "cipherpulse-server: ";

std::string fixed(double v, int decimals) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(decimals) << v;
    return s.str();
}

Result<scoring::Model> load_model_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        return Error{ErrorCode::kIo, "cannot read " + file.string()};
    }
    std::ostringstream text;
    text << in.rdbuf();
    auto model = scoring::parse_model(text.str());
    if (!model) {
        return Error{model.error().code, file.string() + ": " + model.error().message};
    }
    return model;
}

}  // namespace

int run_model_train(const std::filesystem::path& data, const std::filesystem::path& out_path,
                    const scoring::TrainOptions& options, std::ostream& out, std::ostream& err) {
    auto table = scoring::read_table(data);
    if (!table) {
        err << kProgram << "error: " << table.error().message << "\n";
        return common::kExitBadInput;
    }
    auto result = scoring::train_logistic(scoring::cleveland_spec(), table.value(), "target",
                                          options);
    if (!result) {
        err << kProgram << "error: " << data.string() << ": " << result.error().message << "\n";
        return common::kExitBadInput;
    }
    const auto& r = result.value();
    const std::filesystem::path tmp = out_path.string() + ".tmp";
    {
        std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
        file << scoring::model_to_json(r.model) << "\n";
        if (!file.flush()) {
            err << kProgram << "error: cannot write " << tmp.string() << "\n";
            return common::kExitFailure;
        }
    }
    std::filesystem::rename(tmp, out_path);
    out << "model " << r.model.id << ": " << r.model.inputs.size() << " inputs, "
        << r.rows_used << " of " << r.rows_total << " rows used ("
        << r.rows_total - r.rows_used << " with a missing value dropped), " << r.train.size()
        << " training / " << r.test.size() << " test, " << r.iterations << " Newton steps\n";
    out << "cross-validation (" << options.folds << " folds, out-of-fold): accuracy "
        << fixed(r.cv.accuracy, 3) << "  AUC " << fixed(r.cv.auc, 3) << "  Brier "
        << fixed(r.cv.brier, 3) << "\n";
    out << "held-out test:                 accuracy " << fixed(r.test_metrics.accuracy, 3)
        << "  AUC " << fixed(r.test_metrics.auc, 3) << "  Brier "
        << fixed(r.test_metrics.brier, 3) << "\n";
    out << "fixed point: logit = z / 2^" << r.model.fixed.scale_bits
        << ", at most " << std::setprecision(3) << r.model.fixed.max_logit_error
        << " from the floating-point logit; score range [" << r.model.score_min() << ", "
        << r.model.score_max() << "]\n";
    out << "calibration (out-of-fold): predicted  observed  rows\n";
    for (std::size_t b = 0; b < r.calibration.size(); ++b) {
        const auto& bin = r.calibration[b];
        out << "  " << fixed(static_cast<double>(b) / 10, 1) << "-"
            << fixed(static_cast<double>(b + 1) / 10, 1) << "      "
            << (bin.mean_predicted ? fixed(*bin.mean_predicted, 3) : std::string("    -"))
            << "     " << (bin.observed ? fixed(*bin.observed, 3) : std::string("    -"))
            << "  " << std::setw(4) << bin.count << "\n";
    }
    err << "wrote " << out_path.string() << "\n";
    return common::kExitOk;
}

int run_model_add(const ServerConfig& config, const std::filesystem::path& file, bool replace,
                  std::ostream& out, std::ostream& err) {
    auto model = load_model_file(file);
    if (!model) {
        err << kProgram << "error: " << model.error().message << "\n";
        return common::kExitBadInput;
    }
    store::Database db = open_existing_database(config);
    store::Transaction tx(db);
    const std::int64_t now = now_unix_ms();
    const std::string document = scoring::model_to_json(model.value());
    ModelAdd outcome = store_model(db, model.value().id, document, now, replace);
    if (outcome == ModelAdd::kConflict) {
        err << kProgram << "error: another model has the id '" << model.value().id
            << "' (remove it first, or add --replace)\n";
        return common::kExitBadInput;
    }
    if (outcome != ModelAdd::kSame) {
        append_audit(db, now, "cli", outcome == ModelAdd::kCreated ? "model.add" : "model.replace",
                     model.value().id,
                     nlohmann::json{{"inputs", model.value().inputs.size()}}.dump());
    }
    tx.commit();
    out << model.value().id << "\n";
    err << (outcome == ModelAdd::kSame       ? "the same model is already stored\n"
            : outcome == ModelAdd::kReplaced ? "model replaced\n"
                                             : "model added\n");
    return common::kExitOk;
}

int run_model_list(const ServerConfig& config, std::ostream& out, std::ostream&) {
    store::Database db = open_existing_database(config);
    out << std::left << std::setw(28) << "id" << std::setw(8) << "inputs" << "description\n";
    for (const auto& s : list_models(db)) {
        auto m = scoring::parse_model(s.document);
        out << std::setw(28) << s.id << std::setw(8)
            << (m ? std::to_string(m.value().inputs.size()) : std::string("?"))
            << (m ? m.value().description : std::string("(does not parse)")) << "\n";
    }
    return common::kExitOk;
}

int run_model_remove(const ServerConfig& config, const std::string& id, std::ostream& out,
                     std::ostream& err) {
    store::Database db = open_existing_database(config);
    store::Transaction tx(db);
    if (!remove_model(db, id)) {
        err << kProgram << "error: no model '" << id << "'\n";
        return common::kExitBadInput;
    }
    append_audit(db, now_unix_ms(), "cli", "model.remove", id, "{}");
    tx.commit();
    out << "removed " << id << "\n";
    return common::kExitOk;
}

int run_model_predict(const std::filesystem::path& model_file,
                      const std::filesystem::path& input, const std::string& format,
                      std::ostream& out, std::ostream& err) {
    if (format != "table" && format != "csv" && format != "json") {
        err << kProgram << "error: --format must be table, csv or json\n";
        return common::kExitBadInput;
    }
    auto model = load_model_file(model_file);
    if (!model) {
        err << kProgram << "error: " << model.error().message << "\n";
        return common::kExitBadInput;
    }
    auto table = scoring::read_table(input);
    if (!table) {
        err << kProgram << "error: " << table.error().message << "\n";
        return common::kExitBadInput;
    }
    const scoring::Model& m = model.value();
    std::vector<std::int64_t> z;
    for (std::size_t i = 0; i < table.value().rows.size(); ++i) {
        auto x = scoring::encode_row(m, table.value().row_values(i));
        if (!x) {
            err << kProgram << "error: " << input.string() << ": row " << i + 1 << ": "
                << x.error().message << "\n";
            return common::kExitBadInput;
        }
        z.push_back(scoring::fixed_score(m, x.value()));
    }
    scoring::write_scores(out, m, z, format);
    return common::kExitOk;
}

}  // namespace cipherpulse::server
