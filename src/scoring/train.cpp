#include "scoring/train.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace cipherpulse::scoring {
namespace {

using nlohmann::json;

// SplitMix64 (Steele, Lea, Flood 2014): a tiny generator both implementations can share.
class SplitMix64 {
  public:
    explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        state_ += 0x9E3779B97F4A7C15ull;
        std::uint64_t z = state_;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

  private:
    std::uint64_t state_;
};

void shuffle(std::vector<std::size_t>& a, SplitMix64& rng) {
    for (std::size_t i = a.size(); i-- > 1;) {
        std::swap(a[i], a[rng.next() % (i + 1)]);
    }
}

Column numeric(const char* name, const char* unit, const char* description, double lo,
               double hi, unsigned decimals) {
    Column c;
    c.name = name;
    c.unit = unit;
    c.description = description;
    c.kind = ColumnKind::kNumeric;
    c.min = lo;
    c.max = hi;
    c.decimals = decimals;
    return c;
}

Column binary(const char* name, const char* description) {
    Column c;
    c.name = name;
    c.description = description;
    c.kind = ColumnKind::kBinary;
    c.max = 1;
    return c;
}

Column categorical(const char* name, const char* description, std::vector<std::int64_t> levels) {
    Column c;
    c.name = name;
    c.description = description;
    c.kind = ColumnKind::kCategorical;
    c.levels = std::move(levels);
    return c;
}

// The training design: rows of inputs in column units, standardised where the spec says.
struct Design {
    std::vector<std::vector<double>> x;  // per row: inputs in column units
    std::vector<int> y;
};

bool standardised(const Model& spec, std::size_t input) {
    const Input& in = spec.inputs[input];
    return in.kind == InputKind::kValue && spec.columns[in.column].kind == ColumnKind::kNumeric;
}

struct Fit {
    double intercept = 0;
    std::vector<double> coefficients;
    std::vector<double> mean, sd;
    unsigned iterations = 0;
};

double mean_of(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) {
        s += x;
    }
    return s / static_cast<double>(v.size());
}

// fit standardises on `rows` and runs Newton's method from zero.
Fit fit(const Model& spec, const Design& d, const std::vector<std::size_t>& rows,
        const TrainOptions& options) {
    const std::size_t p = spec.inputs.size();
    Fit f;
    f.mean.assign(p, 0.0);
    f.sd.assign(p, 1.0);
    for (std::size_t j = 0; j < p; ++j) {
        if (!standardised(spec, j)) {
            continue;
        }
        std::vector<double> col;
        for (auto r : rows) {
            col.push_back(d.x[r][j]);
        }
        f.mean[j] = mean_of(col);
        double ss = 0;
        for (double v : col) {
            ss += (v - f.mean[j]) * (v - f.mean[j]);
        }
        f.sd[j] = std::sqrt(ss / static_cast<double>(col.size() - 1));
        if (!(f.sd[j] > 0)) {
            f.sd[j] = 1.0;  // a constant column: leave it unscaled
        }
    }
    const auto n = static_cast<Eigen::Index>(rows.size());
    Eigen::MatrixXd X(n, static_cast<Eigen::Index>(p + 1));
    Eigen::VectorXd y(n);
    for (Eigen::Index i = 0; i < n; ++i) {
        const auto r = rows[static_cast<std::size_t>(i)];
        X(i, 0) = 1.0;
        for (std::size_t j = 0; j < p; ++j) {
            X(i, static_cast<Eigen::Index>(j + 1)) = (d.x[r][j] - f.mean[j]) / f.sd[j];
        }
        y(i) = d.y[r];
    }
    Eigen::VectorXd beta = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(p + 1));
    Eigen::VectorXd penalty = Eigen::VectorXd::Constant(static_cast<Eigen::Index>(p + 1),
                                                        options.lambda);
    penalty(0) = 0.0;
    for (f.iterations = 1; f.iterations <= options.max_iterations; ++f.iterations) {
        Eigen::VectorXd eta = X * beta;
        Eigen::VectorXd prob(n), w(n);
        for (Eigen::Index i = 0; i < n; ++i) {
            prob(i) = sigmoid(eta(i));
            w(i) = prob(i) * (1.0 - prob(i));
        }
        Eigen::VectorXd g = X.transpose() * (y - prob) - penalty.cwiseProduct(beta);
        Eigen::MatrixXd H = X.transpose() * w.asDiagonal() * X;
        H.diagonal() += penalty;
        Eigen::VectorXd step = H.partialPivLu().solve(g);
        beta += step;
        if (step.cwiseAbs().maxCoeff() < 1e-12) {
            break;
        }
    }
    f.iterations = std::min(f.iterations, options.max_iterations);
    f.intercept = beta(0);
    f.coefficients.assign(beta.data() + 1, beta.data() + beta.size());
    return f;
}

double predict(const Fit& f, const std::vector<double>& x) {
    double t = f.intercept;
    for (std::size_t j = 0; j < x.size(); ++j) {
        t += f.coefficients[j] * (x[j] - f.mean[j]) / f.sd[j];
    }
    return sigmoid(t);
}

json metrics_json(const Metrics& m) {
    return {{"accuracy", m.accuracy}, {"auc", m.auc}, {"brier", m.brier}};
}

}  // namespace

Model cleveland_spec() {
    Model m;
    m.id = "heart-cleveland-lr";
    m.description =
        "Logistic regression for angiographic coronary artery disease on the UCI Cleveland "
        "heart-disease table";
    m.label = "target > 0: more than 50% narrowing of a major vessel (UCI 'num' 1-4)";
    m.columns = {
        numeric("age", "years", "age", 18, 100, 0),
        binary("sex", "1 = male, 0 = female"),
        categorical("cp", "chest pain: 1 typical angina, 2 atypical angina, 3 non-anginal, "
                          "4 asymptomatic", {1, 2, 3, 4}),
        numeric("trestbps", "mm Hg", "resting blood pressure on admission", 70, 250, 0),
        numeric("chol", "mg/dl", "serum cholesterol", 80, 700, 0),
        binary("fbs", "fasting blood sugar > 120 mg/dl"),
        categorical("restecg", "resting ECG: 0 normal, 1 ST-T wave abnormality, 2 left "
                               "ventricular hypertrophy", {0, 1, 2}),
        numeric("thalach", "bpm", "maximum heart rate achieved", 50, 250, 0),
        binary("exang", "exercise-induced angina"),
        numeric("oldpeak", "mm", "ST depression induced by exercise relative to rest", 0, 10, 1),
        categorical("slope", "peak exercise ST segment: 1 upsloping, 2 flat, 3 downsloping",
                    {1, 2, 3}),
        categorical("ca", "major vessels coloured by fluoroscopy (0-3)", {0, 1, 2, 3}),
        categorical("thal", "thallium scan: 3 normal, 6 fixed defect, 7 reversible defect",
                    {3, 6, 7}),
    };
    auto column_index = [&](const std::string& name) {
        for (std::size_t i = 0; i < m.columns.size(); ++i) {
            if (m.columns[i].name == name) {
                return i;
            }
        }
        throw std::logic_error("no column " + name);
    };
    for (const char* name :
         {"age", "sex", "trestbps", "chol", "fbs", "thalach", "exang", "oldpeak"}) {
        Input in;
        in.name = name;
        in.column = column_index(name);
        const Column& c = m.columns[in.column];
        in.kind = InputKind::kValue;
        in.lo = static_cast<std::int64_t>(std::llround(c.min * std::pow(10.0, c.decimals)));
        in.hi = static_cast<std::int64_t>(std::llround(c.max * std::pow(10.0, c.decimals)));
        m.inputs.push_back(in);
    }
    for (const char* name : {"cp", "restecg", "slope", "ca", "thal"}) {
        const std::size_t ci = column_index(name);
        const auto& levels = m.columns[ci].levels;
        for (std::size_t l = 1; l < levels.size(); ++l) {  // the first level is the reference
            Input in;
            in.name = std::string(name) + "=" + std::to_string(levels[l]);
            in.column = ci;
            in.kind = InputKind::kIndicator;
            in.level = levels[l];
            in.lo = 0;
            in.hi = 1;
            m.inputs.push_back(in);
        }
    }
    m.risk_classes = {{"low", 0.2}, {"intermediate", 0.5}, {"high", std::nullopt}};
    return m;
}

Metrics metrics_of(const std::vector<double>& p, const std::vector<int>& y) {
    Metrics m;
    double correct = 0, brier = 0, pairs = 0, wins = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
        correct += ((p[i] >= 0.5) == (y[i] == 1)) ? 1 : 0;
        brier += (p[i] - y[i]) * (p[i] - y[i]);
    }
    for (std::size_t i = 0; i < p.size(); ++i) {
        if (y[i] != 1) {
            continue;
        }
        for (std::size_t k = 0; k < p.size(); ++k) {
            if (y[k] != 0) {
                continue;
            }
            pairs += 1;
            wins += p[i] > p[k] ? 1.0 : (p[i] == p[k] ? 0.5 : 0.0);
        }
    }
    const double n = static_cast<double>(p.size());
    m.accuracy = correct / n;
    m.brier = brier / n;
    m.auc = pairs > 0 ? wins / pairs : 0.0;
    return m;
}

Result<TrainResult> train_logistic(const Model& spec, const Table& table,
                                   const std::string& label_column, const TrainOptions& options) {
    if (options.folds < 2 || !(options.test_fraction >= 0 && options.test_fraction < 1) ||
        !(options.lambda >= 0)) {
        return Error{ErrorCode::kOutOfRange,
                     "folds >= 2, 0 <= test fraction < 1 and lambda >= 0 expected"};
    }
    auto label_it = std::find(table.header.begin(), table.header.end(), label_column);
    if (label_it == table.header.end()) {
        return Error{ErrorCode::kInvalidEncoding, "no label column '" + label_column + "'"};
    }
    const auto label_index = static_cast<std::size_t>(label_it - table.header.begin());
    TrainResult result;
    result.rows_total = table.rows.size();
    Design d;
    for (std::size_t r = 0; r < table.rows.size(); ++r) {
        RowValues values = table.row_values(r);
        const bool missing = std::any_of(spec.columns.begin(), spec.columns.end(), [&](auto& c) {
            auto it = values.find(c.name);
            return it != values.end() && (it->second == "?" || it->second.empty());
        });
        if (missing) {
            continue;
        }
        auto x = encode_row(spec, values);
        if (!x) {
            return Error{x.error().code,
                         "row " + std::to_string(r + 1) + ": " + x.error().message};
        }
        double label = 0;
        try {
            std::size_t used = 0;
            label = std::stod(table.rows[r][label_index], &used);
        } catch (...) {
            return Error{ErrorCode::kInvalidEncoding,
                         "row " + std::to_string(r + 1) + ": label is not a number"};
        }
        std::vector<double> row;
        for (std::size_t j = 0; j < spec.inputs.size(); ++j) {
            const Input& in = spec.inputs[j];
            const double unit = in.kind == InputKind::kValue
                                    ? std::pow(10.0, spec.columns[in.column].decimals)
                                    : 1.0;
            row.push_back(static_cast<double>(x.value()[j]) / unit);
        }
        d.x.push_back(std::move(row));
        d.y.push_back(label > 0 ? 1 : 0);
    }
    result.rows_used = d.x.size();
    // Stratified split and folds, as docs/formats.md specifies.
    SplitMix64 rng(options.seed);
    std::vector<std::size_t> by_class[2];
    for (std::size_t i = 0; i < d.y.size(); ++i) {
        by_class[d.y[i]].push_back(i);
    }
    std::vector<std::size_t> train_part[2];
    for (int c = 0; c < 2; ++c) {
        if (by_class[c].size() < 2 * options.folds) {
            return Error{ErrorCode::kOutOfRange, "too few rows of one class for the folds"};
        }
        shuffle(by_class[c], rng);
    }
    for (int c = 0; c < 2; ++c) {
        const auto n_test = static_cast<std::size_t>(
            std::floor(options.test_fraction * static_cast<double>(by_class[c].size()) + 0.5));
        train_part[c].assign(by_class[c].begin() + static_cast<std::ptrdiff_t>(n_test),
                             by_class[c].end());
        result.test.insert(result.test.end(), by_class[c].begin(),
                           by_class[c].begin() + static_cast<std::ptrdiff_t>(n_test));
    }
    for (int c = 0; c < 2; ++c) {
        for (std::size_t pos = 0; pos < train_part[c].size(); ++pos) {
            result.train.push_back(train_part[c][pos]);
            result.fold_of_train.push_back(static_cast<unsigned>(pos % options.folds));
        }
    }
    // Cross-validation: pooled out-of-fold predictions.
    std::vector<double> oof(result.train.size());
    double fold_accuracy = 0;
    for (unsigned f = 0; f < options.folds; ++f) {
        std::vector<std::size_t> rows, held;
        for (std::size_t k = 0; k < result.train.size(); ++k) {
            (result.fold_of_train[k] == f ? held : rows).push_back(k);
        }
        std::vector<std::size_t> fit_rows;
        for (auto k : rows) {
            fit_rows.push_back(result.train[k]);
        }
        Fit model = fit(spec, d, fit_rows, options);
        std::vector<double> p;
        std::vector<int> y;
        for (auto k : held) {
            oof[k] = predict(model, d.x[result.train[k]]);
            p.push_back(oof[k]);
            y.push_back(d.y[result.train[k]]);
        }
        fold_accuracy += metrics_of(p, y).accuracy;
    }
    std::vector<int> train_y;
    for (auto r : result.train) {
        train_y.push_back(d.y[r]);
    }
    result.cv = metrics_of(oof, train_y);
    result.cv_fold_accuracy_mean = fold_accuracy / options.folds;
    result.calibration.assign(10, CalibrationBin{});
    std::vector<double> sum_p(10, 0.0), sum_y(10, 0.0);
    for (std::size_t k = 0; k < oof.size(); ++k) {
        const auto b = std::min<std::size_t>(static_cast<std::size_t>(oof[k] * 10), 9);
        result.calibration[b].count += 1;
        sum_p[b] += oof[k];
        sum_y[b] += train_y[k];
    }
    for (std::size_t b = 0; b < 10; ++b) {
        if (result.calibration[b].count > 0) {
            const auto n = static_cast<double>(result.calibration[b].count);
            result.calibration[b].mean_predicted = sum_p[b] / n;
            result.calibration[b].observed = sum_y[b] / n;
        }
    }
    // The final model: every training row.
    Fit final_fit = fit(spec, d, result.train, options);
    result.iterations = final_fit.iterations;
    std::vector<int> test_y;
    for (auto r : result.test) {
        result.test_probabilities.push_back(predict(final_fit, d.x[r]));
        test_y.push_back(d.y[r]);
    }
    result.test_metrics = metrics_of(result.test_probabilities, test_y);

    Model& m = result.model;
    m = spec;
    m.id = options.id;
    m.intercept = final_fit.intercept;
    m.coefficients = final_fit.coefficients;
    for (std::size_t j = 0; j < m.inputs.size(); ++j) {
        m.inputs[j].mean = final_fit.mean[j];
        m.inputs[j].sd = final_fit.sd[j];
    }
    m.fixed = compute_fixed_point(m, options.scale_bits);
    json calibration = json::array();
    for (std::size_t b = 0; b < 10; ++b) {
        const auto& bin = result.calibration[b];
        calibration.push_back({{"bin", b},
                               {"from", static_cast<double>(b) / 10},
                               {"to", static_cast<double>(b + 1) / 10},
                               {"count", bin.count},
                               {"mean_predicted", bin.mean_predicted ? json(*bin.mean_predicted)
                                                                     : json(nullptr)},
                               {"observed", bin.observed ? json(*bin.observed) : json(nullptr)}});
    }
    json cv = metrics_json(result.cv);
    cv["folds"] = options.folds;
    cv["fold_accuracy_mean"] = result.cv_fold_accuracy_mean;
    json test = metrics_json(result.test_metrics);
    test["rows"] = result.test.size();
    m.metrics_json = json{{"cross_validation", cv}, {"test", test}, {"calibration", calibration}}
                         .dump();
    m.training_json =
        json{{"method", "L2-regularised logistic regression, Newton's method (IRLS)"},
             {"lambda", options.lambda},
             {"seed", options.seed},
             {"test_fraction", options.test_fraction},
             {"rows_total", result.rows_total},
             {"rows_used", result.rows_used},
             {"rows_dropped", result.rows_total - result.rows_used},
             {"missing_values", "rows with a missing value (ca: 4, thal: 2) are dropped"},
             {"train_rows", result.train.size()},
             {"iterations", result.iterations}}
            .dump();
    return result;
}

}  // namespace cipherpulse::scoring
