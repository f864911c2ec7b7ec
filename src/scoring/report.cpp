#include "scoring/report.h"

#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <stdexcept>

namespace cipherpulse::scoring {
namespace {

std::string fixed(double v, int decimals) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(decimals) << v;
    return s.str();
}

}  // namespace

void write_scores(std::ostream& out, const Model& model, std::span<const std::int64_t> z,
                  const std::string& format, const bool* packed) {
    if (format != "table" && format != "csv" && format != "json") {
        throw std::invalid_argument("format must be table, csv or json");
    }
    nlohmann::json rows = nlohmann::json::array();
    if (format == "table") {
        out << std::left << std::setw(6) << "row" << std::setw(13) << "probability"
            << std::setw(14) << "risk" << "logit\n";
    } else if (format == "csv") {
        out << "row,probability,risk,logit\n";
    }
    for (std::size_t i = 0; i < z.size(); ++i) {
        const double logit = logit_of(model, z[i]);
        const double p = sigmoid(logit);
        const std::string& risk = risk_class(model, p);
        if (format == "table") {
            out << std::setw(6) << i + 1 << std::setw(13) << fixed(p, 4) << std::setw(14) << risk
                << fixed(logit, 4) << "\n";
        } else if (format == "csv") {
            out << i + 1 << "," << fixed(p, 6) << "," << risk << "," << fixed(logit, 6) << "\n";
        } else {
            rows.push_back({{"row", i + 1}, {"probability", p}, {"risk", risk}, {"logit", logit}});
        }
    }
    if (format == "json") {
        nlohmann::json doc = {{"model", model.id}, {"rows", rows}};
        if (packed != nullptr) {
            doc["packed"] = *packed;
        }
        out << doc.dump(1) << "\n";
    }
}

}  // namespace cipherpulse::scoring
