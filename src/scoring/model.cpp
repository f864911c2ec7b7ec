#include "scoring/model.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

namespace cipherpulse::scoring {

// Exact bounds of sums of 64-bit products.
__extension__ using Wide = __int128;
namespace {

using nlohmann::json;

Error bad(std::string message) {
    return Error{ErrorCode::kInvalidEncoding, std::move(message)};
}

Error out_of_range(std::string message) {
    return Error{ErrorCode::kOutOfRange, std::move(message)};
}

double pow10(unsigned decimals) {
    return std::pow(10.0, static_cast<double>(decimals));
}

const char* kind_name(ColumnKind kind) {
    switch (kind) {
        case ColumnKind::kNumeric:
            return "numeric";
        case ColumnKind::kBinary:
            return "binary";
        case ColumnKind::kCategorical:
            return "categorical";
    }
    return "numeric";
}

bool valid_id(const std::string& id) {
    if (id.empty() || id.size() > 64) {
        return false;
    }
    return std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' ||
               c == '-';
    });
}

// Field readers for the model file: each says which field was wrong.
template <class T>
Result<T> field(const json& doc, const char* name, const std::string& where) {
    auto it = doc.find(name);
    if (it == doc.end()) {
        return bad(where + ": missing \"" + name + "\"");
    }
    try {
        return it->get<T>();
    } catch (const json::exception&) {
        return bad(where + ": \"" + name + "\" has the wrong type");
    }
}

Result<Column> parse_column(const json& doc, std::size_t index) {
    const std::string where = "columns[" + std::to_string(index) + "]";
    if (!doc.is_object()) {
        return bad(where + ": not an object");
    }
    Column c;
    auto name = field<std::string>(doc, "name", where);
    auto kind = field<std::string>(doc, "kind", where);
    if (!name) {
        return name.error();
    }
    if (!kind) {
        return kind.error();
    }
    c.name = name.value();
    if (!valid_id(c.name)) {
        return bad(where + ": invalid column name");
    }
    c.unit = doc.value("unit", "");
    c.description = doc.value("description", "");
    if (kind.value() == "numeric") {
        c.kind = ColumnKind::kNumeric;
        auto lo = field<double>(doc, "min", where);
        auto hi = field<double>(doc, "max", where);
        auto decimals = field<unsigned>(doc, "decimals", where);
        if (!lo || !hi || !decimals) {
            return !lo ? lo.error() : (!hi ? hi.error() : decimals.error());
        }
        c.min = lo.value();
        c.max = hi.value();
        c.decimals = decimals.value();
        if (!std::isfinite(c.min) || !std::isfinite(c.max) || c.min > c.max ||
            c.decimals > 6 || std::fabs(c.min) * pow10(c.decimals) > 1e12 ||
            std::fabs(c.max) * pow10(c.decimals) > 1e12) {
            return out_of_range(where + " (" + c.name + "): invalid range or resolution");
        }
    } else if (kind.value() == "binary") {
        c.kind = ColumnKind::kBinary;
        c.min = 0;
        c.max = 1;
    } else if (kind.value() == "categorical") {
        c.kind = ColumnKind::kCategorical;
        auto levels = field<std::vector<std::int64_t>>(doc, "levels", where);
        if (!levels) {
            return levels.error();
        }
        c.levels = levels.value();
        std::set<std::int64_t> unique(c.levels.begin(), c.levels.end());
        if (c.levels.empty() || unique.size() != c.levels.size() || c.levels.size() > 64) {
            return bad(where + " (" + c.name + "): levels must be 1..64 distinct codes");
        }
    } else {
        return bad(where + ": unknown kind '" + kind.value() + "'");
    }
    return c;
}

Result<Input> parse_input(const json& doc, std::size_t index, const std::vector<Column>& columns,
                          bool with_standardisation) {
    const std::string where = "inputs[" + std::to_string(index) + "]";
    if (!doc.is_object()) {
        return bad(where + ": not an object");
    }
    auto name = field<std::string>(doc, "name", where);
    auto column = field<std::string>(doc, "column", where);
    auto kind = field<std::string>(doc, "kind", where);
    if (!name || !column || !kind) {
        return !name ? name.error() : (!column ? column.error() : kind.error());
    }
    Input in;
    in.name = name.value();
    auto it = std::find_if(columns.begin(), columns.end(),
                           [&](const Column& c) { return c.name == column.value(); });
    if (it == columns.end()) {
        return bad(where + ": unknown column '" + column.value() + "'");
    }
    in.column = static_cast<std::size_t>(it - columns.begin());
    const Column& c = *it;
    if (kind.value() == "value") {
        if (c.kind == ColumnKind::kCategorical) {
            return bad(where + ": a categorical column is used through indicators");
        }
        in.kind = InputKind::kValue;
        in.lo = static_cast<std::int64_t>(std::llround(c.min * pow10(c.decimals)));
        in.hi = static_cast<std::int64_t>(std::llround(c.max * pow10(c.decimals)));
    } else if (kind.value() == "indicator") {
        if (c.kind != ColumnKind::kCategorical) {
            return bad(where + ": indicators need a categorical column");
        }
        auto level = field<std::int64_t>(doc, "level", where);
        if (!level) {
            return level.error();
        }
        in.kind = InputKind::kIndicator;
        in.level = level.value();
        if (std::find(c.levels.begin(), c.levels.end(), in.level) == c.levels.end()) {
            return bad(where + ": level " + std::to_string(in.level) + " is not a level of " +
                       c.name);
        }
        in.lo = 0;
        in.hi = 1;
    } else {
        return bad(where + ": unknown kind '" + kind.value() + "'");
    }
    if (with_standardisation) {
        in.mean = doc.value("mean", 0.0);
        in.sd = doc.value("sd", 1.0);
        if (!std::isfinite(in.mean) || !std::isfinite(in.sd) || !(in.sd > 0)) {
            return out_of_range(where + ": standardisation needs a finite mean and sd > 0");
        }
    }
    return in;
}

Result<std::vector<RiskClass>> parse_risk_classes(const json& doc) {
    if (!doc.is_array() || doc.empty() || doc.size() > 8) {
        return bad("risk_classes: 1..8 classes expected");
    }
    std::vector<RiskClass> classes;
    double previous = 0;
    for (std::size_t i = 0; i < doc.size(); ++i) {
        const json& c = doc[i];
        if (!c.is_object() || !c.contains("name") || !c["name"].is_string()) {
            return bad("risk_classes[" + std::to_string(i) + "]: needs a name");
        }
        RiskClass rc{c["name"].get<std::string>(), std::nullopt};
        const bool last = i + 1 == doc.size();
        if (!last) {
            if (!c.contains("below") || !c["below"].is_number()) {
                return bad("risk_classes[" + std::to_string(i) + "]: needs \"below\"");
            }
            rc.below = c["below"].get<double>();
            if (!(*rc.below > previous && *rc.below <= 1.0)) {
                return out_of_range("risk_classes: thresholds must increase within (0, 1]");
            }
            previous = *rc.below;
        } else if (c.contains("below")) {
            return bad("risk_classes: the last class has no upper threshold");
        }
        classes.push_back(std::move(rc));
    }
    return classes;
}

// bound_terms sums, over the inputs, the smallest and largest value of W_i x_i.
void bound_terms(const Model& m, Wide& lo, Wide& hi) {
    if (m.fixed.weights.size() != m.inputs.size()) {
        throw std::logic_error("score bounds need the model's weights");
    }
    lo = m.fixed.intercept;
    hi = m.fixed.intercept;
    for (std::size_t i = 0; i < m.inputs.size(); ++i) {
        const Wide a = static_cast<Wide>(m.fixed.weights[i]) * m.inputs[i].lo;
        const Wide b = static_cast<Wide>(m.fixed.weights[i]) * m.inputs[i].hi;
        lo += std::min(a, b);
        hi += std::max(a, b);
    }
}

constexpr Wide kScoreLimit = static_cast<Wide>(1) << 62;

Result<Model> parse_common(const json& doc, bool full) {
    if (!doc.is_object()) {
        return bad("the model is not a JSON object");
    }
    if (doc.value("format", "") != kModelFormat) {
        return Error{ErrorCode::kUnsupported,
                     std::string("unknown model format (expected \"") + kModelFormat + "\")"};
    }
    Model m;
    auto id = field<std::string>(doc, "id", "model");
    if (!id) {
        return id.error();
    }
    m.id = id.value();
    if (!valid_id(m.id)) {
        return bad("model: id must be 1-64 letters, digits, '.', '_' or '-'");
    }
    m.description = doc.value("description", "");
    m.label = doc.value("label", "");
    if (!doc.contains("columns") || !doc["columns"].is_array() || doc["columns"].empty() ||
        doc["columns"].size() > 256) {
        return bad("model: \"columns\" must be an array of 1..256 columns");
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < doc["columns"].size(); ++i) {
        auto c = parse_column(doc["columns"][i], i);
        if (!c) {
            return c.error();
        }
        if (!names.insert(c.value().name).second) {
            return bad("columns: '" + c.value().name + "' appears twice");
        }
        m.columns.push_back(std::move(c).value());
    }
    if (!doc.contains("inputs") || !doc["inputs"].is_array() || doc["inputs"].empty() ||
        doc["inputs"].size() > 256) {
        return bad("model: \"inputs\" must be an array of 1..256 inputs");
    }
    names.clear();
    for (std::size_t i = 0; i < doc["inputs"].size(); ++i) {
        auto in = parse_input(doc["inputs"][i], i, m.columns, full);
        if (!in) {
            return in.error();
        }
        if (!names.insert(in.value().name).second) {
            return bad("inputs: '" + in.value().name + "' appears twice");
        }
        m.inputs.push_back(std::move(in).value());
    }
    if (!doc.contains("fixed_point") || !doc["fixed_point"].is_object()) {
        return bad("model: missing \"fixed_point\"");
    }
    const json& fp = doc["fixed_point"];
    auto scale = field<unsigned>(fp, "scale_bits", "fixed_point");
    if (!scale) {
        return scale.error();
    }
    m.fixed.scale_bits = scale.value();
    if (m.fixed.scale_bits < 4 || m.fixed.scale_bits > 40) {
        return out_of_range("fixed_point: scale_bits must be within 4..40");
    }
    m.fixed.max_logit_error = fp.value("max_logit_error", 0.0);
    auto classes = parse_risk_classes(doc.value("risk_classes", json::array()));
    if (!classes) {
        return classes.error();
    }
    m.risk_classes = std::move(classes).value();
    m.training_json = doc.value("training", json::object()).dump();
    m.metrics_json = doc.value("metrics", json::object()).dump();
    if (!full) {
        return m;
    }
    auto intercept = field<std::int64_t>(fp, "intercept", "fixed_point");
    auto weights = field<std::vector<std::int64_t>>(fp, "weights", "fixed_point");
    if (!intercept || !weights) {
        return !intercept ? intercept.error() : weights.error();
    }
    m.fixed.intercept = intercept.value();
    m.fixed.weights = weights.value();
    if (m.fixed.weights.size() != m.inputs.size()) {
        return bad("fixed_point: one weight per input expected");
    }
    if (!doc.contains("float_model") || !doc["float_model"].is_object()) {
        return bad("model: missing \"float_model\"");
    }
    auto b = field<double>(doc["float_model"], "intercept", "float_model");
    auto beta = field<std::vector<double>>(doc["float_model"], "coefficients", "float_model");
    if (!b || !beta) {
        return !b ? b.error() : beta.error();
    }
    m.intercept = b.value();
    m.coefficients = beta.value();
    if (m.coefficients.size() != m.inputs.size() || !std::isfinite(m.intercept) ||
        !std::all_of(m.coefficients.begin(), m.coefficients.end(),
                     [](double v) { return std::isfinite(v); })) {
        return bad("float_model: one finite coefficient per input expected");
    }
    Wide lo = 0, hi = 0;
    for (auto w : m.fixed.weights) {
        if (w > (std::int64_t{1} << 48) || w < -(std::int64_t{1} << 48)) {
            return out_of_range("fixed_point: a weight beyond 2^48");
        }
    }
    bound_terms(m, lo, hi);
    if (lo <= -kScoreLimit || hi >= kScoreLimit) {
        return out_of_range("fixed_point: scores of inputs in range would not fit in 62 bits");
    }
    return m;
}

json column_json(const Column& c) {
    json j = {{"name", c.name}, {"kind", kind_name(c.kind)}};
    if (!c.unit.empty()) {
        j["unit"] = c.unit;
    }
    if (!c.description.empty()) {
        j["description"] = c.description;
    }
    if (c.kind == ColumnKind::kNumeric) {
        j["min"] = c.min;
        j["max"] = c.max;
        j["decimals"] = c.decimals;
    }
    if (c.kind == ColumnKind::kCategorical) {
        j["levels"] = c.levels;
    }
    return j;
}

json input_json(const Model& m, const Input& in, bool with_standardisation) {
    json j = {{"name", in.name},
              {"column", m.columns[in.column].name},
              {"kind", in.kind == InputKind::kValue ? "value" : "indicator"}};
    if (in.kind == InputKind::kIndicator) {
        j["level"] = in.level;
    }
    j["min"] = in.lo;
    j["max"] = in.hi;
    if (with_standardisation) {
        j["mean"] = in.mean;
        j["sd"] = in.sd;
    }
    return j;
}

json common_json(const Model& m, bool full) {
    json doc = {{"format", kModelFormat},
                {"id", m.id},
                {"kind", "logistic-regression"},
                {"description", m.description},
                {"label", m.label}};
    doc["columns"] = json::array();
    for (const auto& c : m.columns) {
        doc["columns"].push_back(column_json(c));
    }
    doc["inputs"] = json::array();
    for (const auto& in : m.inputs) {
        doc["inputs"].push_back(input_json(m, in, full));
    }
    doc["fixed_point"] = {{"scale_bits", m.fixed.scale_bits},
                          {"max_logit_error", m.fixed.max_logit_error}};
    doc["risk_classes"] = json::array();
    for (const auto& rc : m.risk_classes) {
        json c = {{"name", rc.name}};
        if (rc.below) {
            c["below"] = *rc.below;
        }
        doc["risk_classes"].push_back(c);
    }
    doc["training"] = json::parse(m.training_json, nullptr, false);
    doc["metrics"] = json::parse(m.metrics_json, nullptr, false);
    return doc;
}

// parse_decimal reads a plain decimal number (no NaN, no infinity, no hex).
std::optional<double> parse_decimal(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
        text.remove_suffix(1);
    }
    if (text.empty() || text.size() > 32 ||
        text.find_first_not_of("0123456789+-.eE") != std::string_view::npos) {
        return std::nullopt;
    }
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
        return std::nullopt;
    }
    return value;
}

}  // namespace

std::int64_t Model::score_min() const {
    Wide lo = 0, hi = 0;
    bound_terms(*this, lo, hi);
    return static_cast<std::int64_t>(lo);
}

std::int64_t Model::score_max() const {
    Wide lo = 0, hi = 0;
    bound_terms(*this, lo, hi);
    return static_cast<std::int64_t>(hi);
}

Result<Model> parse_model(std::string_view text) {
    auto doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) {
        return bad("the model file is not valid JSON");
    }
    return parse_common(doc, true);
}

std::string model_to_json(const Model& m) {
    json doc = common_json(m, true);
    doc["float_model"] = {{"intercept", m.intercept}, {"coefficients", m.coefficients}};
    doc["fixed_point"]["intercept"] = m.fixed.intercept;
    doc["fixed_point"]["weights"] = m.fixed.weights;
    return doc.dump(1);
}

std::string public_spec_json(const Model& m) {
    json doc = common_json(m, false);
    doc["score_range"] = {{"min", m.score_min()}, {"max", m.score_max()}};
    return doc.dump();
}

Result<PublicSpec> parse_public_spec(std::string_view text) {
    auto doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) {
        return bad("the model spec is not valid JSON");
    }
    auto model = parse_common(doc, false);
    if (!model) {
        return model.error();
    }
    PublicSpec spec{std::move(model).value(), 0, 0};
    if (!doc.contains("score_range") || !doc["score_range"].is_object()) {
        return bad("model spec: missing \"score_range\"");
    }
    auto lo = field<std::int64_t>(doc["score_range"], "min", "score_range");
    auto hi = field<std::int64_t>(doc["score_range"], "max", "score_range");
    if (!lo || !hi) {
        return !lo ? lo.error() : hi.error();
    }
    spec.score_min = lo.value();
    spec.score_max = hi.value();
    if (spec.score_min > spec.score_max) {
        return out_of_range("score_range: min above max");
    }
    return spec;
}

FixedPoint compute_fixed_point(const Model& m, unsigned scale_bits) {
    if (scale_bits < 4 || scale_bits > 40) {
        throw std::invalid_argument("scale_bits must be within 4..40");
    }
    if (m.coefficients.size() != m.inputs.size()) {
        throw std::invalid_argument("one coefficient per input expected");
    }
    const double scale = std::ldexp(1.0, static_cast<int>(scale_bits));
    FixedPoint fp;
    fp.scale_bits = scale_bits;
    double intercept = m.intercept;
    double magnitude = 0;  // sum of the largest |x_i| over the inputs' ranges
    for (std::size_t i = 0; i < m.inputs.size(); ++i) {
        const Input& in = m.inputs[i];
        const Column& c = m.columns[in.column];
        const double unit = in.kind == InputKind::kValue ? pow10(c.decimals) : 1.0;
        const double per_unit = m.coefficients[i] / (in.sd * unit);
        intercept -= m.coefficients[i] * in.mean / in.sd;
        const double w = std::round(per_unit * scale);
        if (!(std::fabs(w) < std::ldexp(1.0, 48))) {
            throw std::invalid_argument("weight of '" + in.name + "' does not fit");
        }
        fp.weights.push_back(static_cast<std::int64_t>(w));
        magnitude += static_cast<double>(std::max(std::llabs(in.lo), std::llabs(in.hi)));
    }
    const double b = std::round(intercept * scale);
    if (!(std::fabs(b) < std::ldexp(1.0, 60))) {
        throw std::invalid_argument("the intercept does not fit");
    }
    fp.intercept = static_cast<std::int64_t>(b);
    // Each rounding is off by at most 1/2 unit of 2^-S, scaled by |x_i| for the weights.
    fp.max_logit_error = (0.5 + 0.5 * magnitude) / scale;
    return fp;
}

Result<std::vector<std::int64_t>> encode_row(const Model& m, const RowValues& values) {
    // Each column is read once; the inputs then take their integer from it.
    std::vector<std::int64_t> column_values(m.columns.size());
    for (std::size_t ci = 0; ci < m.columns.size(); ++ci) {
        const Column& c = m.columns[ci];
        auto it = values.find(c.name);
        if (it == values.end() || it->second.empty() || it->second == "?") {
            return Error{ErrorCode::kOutOfRange, "column '" + c.name + "': missing value"};
        }
        auto v = parse_decimal(it->second);
        if (!v) {
            return bad("column '" + c.name + "': '" + it->second.substr(0, 32) +
                       "' is not a number");
        }
        switch (c.kind) {
            case ColumnKind::kNumeric: {
                if (*v < c.min || *v > c.max) {
                    return out_of_range("column '" + c.name + "': " + it->second.substr(0, 32) +
                                        " is outside the allowed range " +
                                        nlohmann::json(c.min).dump() + ".." +
                                        nlohmann::json(c.max).dump() +
                                        (c.unit.empty() ? "" : " " + c.unit));
                }
                const double scaled = *v * pow10(c.decimals);
                const double rounded = std::round(scaled);
                if (std::fabs(scaled - rounded) > 1e-6 * std::max(1.0, std::fabs(scaled))) {
                    return out_of_range("column '" + c.name + "': " + it->second.substr(0, 32) +
                                        " is finer than the model's resolution of " +
                                        std::to_string(c.decimals) + " decimal(s)");
                }
                column_values[ci] = static_cast<std::int64_t>(rounded);
                break;
            }
            case ColumnKind::kBinary:
                if (*v != 0.0 && *v != 1.0) {
                    return out_of_range("column '" + c.name + "': " + it->second.substr(0, 32) +
                                        " is not 0 or 1");
                }
                column_values[ci] = static_cast<std::int64_t>(*v);
                break;
            case ColumnKind::kCategorical: {
                const double r = std::round(*v);
                const bool known =
                    r == *v && std::find(c.levels.begin(), c.levels.end(),
                                         static_cast<std::int64_t>(r)) != c.levels.end();
                if (!known) {
                    return out_of_range("column '" + c.name + "': " + it->second.substr(0, 32) +
                                        " is not one of the codes " +
                                        nlohmann::json(c.levels).dump());
                }
                column_values[ci] = static_cast<std::int64_t>(r);
                break;
            }
        }
    }
    std::vector<std::int64_t> x;
    x.reserve(m.inputs.size());
    for (const auto& in : m.inputs) {
        const std::int64_t v = column_values[in.column];
        x.push_back(in.kind == InputKind::kValue ? v : (v == in.level ? 1 : 0));
    }
    return x;
}

std::int64_t fixed_score(const Model& m, std::span<const std::int64_t> x) {
    if (x.size() != m.fixed.weights.size()) {
        throw std::invalid_argument("fixed_score: one value per input expected");
    }
    Wide z = m.fixed.intercept;
    for (std::size_t i = 0; i < x.size(); ++i) {
        z += static_cast<Wide>(m.fixed.weights[i]) * x[i];
    }
    return static_cast<std::int64_t>(z);
}

double float_logit(const Model& m, std::span<const std::int64_t> x) {
    if (x.size() != m.coefficients.size()) {
        throw std::invalid_argument("float_logit: one value per input expected");
    }
    double t = m.intercept;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const Input& in = m.inputs[i];
        const double unit =
            in.kind == InputKind::kValue ? pow10(m.columns[in.column].decimals) : 1.0;
        t += m.coefficients[i] * ((static_cast<double>(x[i]) / unit) - in.mean) / in.sd;
    }
    return t;
}

double logit_of(const Model& m, std::int64_t z) {
    return std::ldexp(static_cast<double>(z), -static_cast<int>(m.fixed.scale_bits));
}

double sigmoid(double t) {
    if (t >= 0) {
        return 1.0 / (1.0 + std::exp(-t));
    }
    const double e = std::exp(t);
    return e / (1.0 + e);
}

const std::string& risk_class(const Model& m, double p) {
    for (const auto& rc : m.risk_classes) {
        if (!rc.below || p < *rc.below) {
            return rc.name;
        }
    }
    return m.risk_classes.back().name;
}

}  // namespace cipherpulse::scoring
