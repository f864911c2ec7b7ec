#!/usr/bin/env python3
"""Independent reference trainer for the Cleveland heart-disease scoring model.

This script is a known-answer reference: it was written from the written
specification only, without looking at the C++ trainer, and the C++ training
code is checked against the JSON it produces (cleveland_reference.json in this
directory).  Because the two implementations share nothing but the spec, an
agreement between them is evidence that both follow it.

It uses the Python 3 standard library only, so that it runs on a stock
interpreter (/usr/bin/python3 on Debian 12) with no numerical packages whose
own behaviour could leak into the reference.

What it does:
  * reads the UCI Cleveland table, drops rows with a missing `ca` or `thal`,
    and builds 20 inputs (8 plain columns plus 12 one-hot indicators);
  * makes a stratified train/test split and assigns cross-validation folds
    using a SplitMix64 generator, so that the C++ side can reproduce the
    exact same partition from the same seed;
  * fits an L2-regularised logistic regression (intercept not penalised) by
    Newton / IRLS steps;
  * reports cross-validated and held-out accuracy, AUC, Brier score, a
    calibration table and the final model's parameters.

Usage:
  python3 -B tests/unit/scoring/kat/train_reference.py \
      --data ../shared/data/real/heart_cleveland.csv \
      --out tests/unit/scoring/kat/cleveland_reference.json
"""

import argparse
import csv
import json
import math
import sys

MASK64 = (1 << 64) - 1

# Columns used as they are (after optional standardisation), in input order.
PLAIN_COLUMNS = ["age", "sex", "trestbps", "chol", "fbs", "thalach", "exang",
                 "oldpeak"]

# One-hot indicators (column, level).  The first level of each categorical
# column is the reference level and is deliberately absent, so the intercept
# stands for it and the design matrix stays full rank.
INDICATORS = [("cp", 2), ("cp", 3), ("cp", 4),
              ("restecg", 1), ("restecg", 2),
              ("slope", 2), ("slope", 3),
              ("ca", 1), ("ca", 2), ("ca", 3),
              ("thal", 6), ("thal", 7)]

INPUT_NAMES = PLAIN_COLUMNS + ["%s=%d" % (c, lvl) for c, lvl in INDICATORS]

# Only continuous measurements are standardised; binary inputs keep their 0/1
# meaning so that their coefficients remain directly interpretable.
STANDARDISED = ["age", "trestbps", "chol", "thalach", "oldpeak"]

MISSING_CHECK = ["ca", "thal"]

MAX_ITERATIONS = 100
STEP_TOLERANCE = 1e-12


# --------------------------------------------------------------------------
# Deterministic random numbers
# --------------------------------------------------------------------------

class SplitMix64:
    """SplitMix64, chosen because it is tiny and trivially portable to C++,
    so both sides can draw the identical stream from the same seed."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)


def shuffle(values, rng):
    """In-place Fisher-Yates shuffle.  The plain modulo (rather than a
    bias-free rejection scheme) is part of the spec: matching the C++ draw for
    draw matters more here than perfect uniformity."""
    for i in range(len(values) - 1, 0, -1):
        j = rng.next() % (i + 1)
        values[i], values[j] = values[j], values[i]


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def load_rows(path):
    """Return (rows_total, kept_rows) where each kept row is a dict of floats.
    File order is preserved because row indices in the output refer to the
    position among kept rows."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        total = 0
        kept = []
        for record in reader:
            total += 1
            if any(record[col].strip() == "?" for col in MISSING_CHECK):
                continue
            kept.append({key: float(value) for key, value in record.items()})
    return total, kept


def raw_features(row):
    """Unstandardised input vector for one row, in INPUT_NAMES order."""
    values = [row[col] for col in PLAIN_COLUMNS]
    # Exact comparison is intended: the table stores levels as e.g. "3.0",
    # which parses to an exact float.
    values += [1.0 if row[col] == float(level) else 0.0
               for col, level in INDICATORS]
    return values


# --------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------

def round_half_up(value):
    return int(math.floor(value + 0.5))


def stratified_split(labels, test_fraction, folds, seed):
    """Return (train, test, fold_of_train).  Stratifying by class keeps the
    disease prevalence the same in train, test and every fold, which matters
    with only ~300 rows."""
    rng = SplitMix64(seed)
    per_class = []
    for cls in (0, 1):
        members = [i for i, y in enumerate(labels) if y == cls]
        shuffle(members, rng)  # class 0 first, then class 1, one generator
        per_class.append(members)

    train, test, fold_of_train = [], [], []
    for members in per_class:
        n_test = round_half_up(test_fraction * len(members))
        test.extend(members[:n_test])
        for position, index in enumerate(members[n_test:]):
            train.append(index)
            fold_of_train.append(position % folds)
    return train, test, fold_of_train


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

def sigmoid(t):
    # Two branches so that exp() never overflows for large |t|.
    if t >= 0:
        return 1.0 / (1.0 + math.exp(-t))
    e = math.exp(t)
    return e / (1.0 + e)


def fit_standardisation(raw, rows):
    """Mean and sample sd (n-1) of each standardised input over `rows` only,
    so that no information from held-out rows reaches the fit."""
    stats = {}
    n = len(rows)
    for name in STANDARDISED:
        k = INPUT_NAMES.index(name)
        values = [raw[r][k] for r in rows]
        mean = sum(values) / n
        var = sum((v - mean) ** 2 for v in values) / (n - 1)
        sd = math.sqrt(var)
        if sd == 0.0:
            raise ValueError("input %r is constant on the fitting rows" % name)
        stats[name] = {"mean": mean, "sd": sd}
    return stats


def design_row(raw_row, stats):
    """Leading 1.0 for the intercept, then the inputs with the continuous
    ones standardised."""
    x = [1.0]
    for k, name in enumerate(INPUT_NAMES):
        value = raw_row[k]
        if name in stats:
            value = (value - stats[name]["mean"]) / stats[name]["sd"]
        x.append(value)
    return x


def solve(matrix, rhs):
    """Solve matrix * d = rhs by Gaussian elimination with partial pivoting.
    Works on copies so the caller's data is untouched."""
    n = len(rhs)
    a = [list(matrix[i]) + [rhs[i]] for i in range(n)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if a[pivot][col] == 0.0:
            raise ValueError("singular Hessian")
        if pivot != col:
            a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, n):
            factor = a[r][col] / a[col][col]
            if factor != 0.0:
                for c in range(col, n + 1):
                    a[r][c] -= factor * a[col][c]
    d = [0.0] * n
    for r in range(n - 1, -1, -1):
        acc = a[r][n]
        for c in range(r + 1, n):
            acc -= a[r][c] * d[c]
        d[r] = acc / a[r][r]
    return d


def fit_logistic(xs, ys, lam):
    """Penalised logistic regression by Newton's method.  The objective is
    strictly convex for lam > 0, so plain Newton from zero converges quickly
    without line search.  Returns (beta, iterations)."""
    m = len(xs[0])
    beta = [0.0] * m
    iterations = 0
    while iterations < MAX_ITERATIONS:
        grad = [0.0] * m
        hess = [[0.0] * m for _ in range(m)]
        for x, y in zip(xs, ys):
            p = sigmoid(sum(xj * bj for xj, bj in zip(x, beta)))
            resid = y - p
            w = p * (1.0 - p)
            for j in range(m):
                grad[j] += x[j] * resid
                wxj = w * x[j]
                row = hess[j]
                for k in range(m):
                    row[k] += wxj * x[k]
        # Penalty on every coefficient except the intercept (index 0): the
        # intercept only sets the base rate and shrinking it would bias it.
        for j in range(1, m):
            grad[j] -= lam * beta[j]
            hess[j][j] += lam
        step = solve(hess, grad)
        beta = [b + d for b, d in zip(beta, step)]
        iterations += 1
        if max(abs(d) for d in step) < STEP_TOLERANCE:
            break
    return beta, iterations


def train_model(raw, labels, rows, lam):
    stats = fit_standardisation(raw, rows)
    xs = [design_row(raw[r], stats) for r in rows]
    ys = [float(labels[r]) for r in rows]
    beta, iterations = fit_logistic(xs, ys, lam)
    return stats, beta, iterations


def predict(raw, rows, stats, beta):
    return [sigmoid(sum(xj * bj for xj, bj in zip(design_row(raw[r], stats),
                                                  beta)))
            for r in rows]


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------

def accuracy(probs, ys):
    hits = sum(1 for p, y in zip(probs, ys) if (p >= 0.5) == (y == 1))
    return hits / len(ys)


def auc(probs, ys):
    """Mann-Whitney statistic by direct pair counting; quadratic, but the
    sets are small and the definition is then unambiguous about ties."""
    pos = [p for p, y in zip(probs, ys) if y == 1]
    neg = [p for p, y in zip(probs, ys) if y == 0]
    score = 0.0
    for pp in pos:
        for pn in neg:
            if pp > pn:
                score += 1.0
            elif pp == pn:
                score += 0.5
    return score / (len(pos) * len(neg))


def brier(probs, ys):
    return sum((p - y) ** 2 for p, y in zip(probs, ys)) / len(ys)


def calibration_table(probs, ys, bins=10):
    counts = [0] * bins
    pred_sum = [0.0] * bins
    pos_count = [0] * bins
    for p, y in zip(probs, ys):
        b = min(int(math.floor(p * bins)), bins - 1)  # p == 1.0 -> last bin
        counts[b] += 1
        pred_sum[b] += p
        pos_count[b] += 1 if y == 1 else 0
    table = []
    for b in range(bins):
        n = counts[b]
        table.append({
            "bin": b,
            "count": n,
            "mean_predicted": pred_sum[b] / n if n else None,
            "observed": pos_count[b] / n if n else None,
        })
    return table


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="heart_cleveland.csv")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--lambda", dest="lam", type=float, default=1.0,
                        help="L2 penalty (default 1.0)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    args = parser.parse_args(argv)

    rows_total, rows = load_rows(args.data)
    labels = [1 if row["target"] > 0 else 0 for row in rows]
    raw = [raw_features(row) for row in rows]

    train, test, fold_of_train = stratified_split(
        labels, args.test_fraction, args.folds, args.seed)

    # Cross-validation on the training part only; every fold re-derives its
    # own standardisation so the out-of-fold predictions are honest.
    oof = {}
    fold_accuracies = []
    for f in range(args.folds):
        fit_rows = [r for r, g in zip(train, fold_of_train) if g != f]
        held_rows = [r for r, g in zip(train, fold_of_train) if g == f]
        stats, beta, _ = train_model(raw, labels, fit_rows, args.lam)
        probs = predict(raw, held_rows, stats, beta)
        for r, p in zip(held_rows, probs):
            oof[r] = p
        fold_accuracies.append(accuracy(probs, [labels[r] for r in held_rows]))
    cv_probs = [oof[r] for r in train]
    cv_labels = [labels[r] for r in train]

    # Final model on all training rows, judged once on the untouched test rows.
    stats, beta, iterations = train_model(raw, labels, train, args.lam)
    test_probs = predict(raw, test, stats, beta)
    test_labels = [labels[r] for r in test]

    result = {
        "rows_total": rows_total,
        "rows_used": len(rows),
        "rows_dropped": rows_total - len(rows),
        "lambda": args.lam,
        "seed": args.seed,
        "folds": args.folds,
        "test_fraction": args.test_fraction,
        "inputs": INPUT_NAMES,
        "train": train,
        "test": test,
        "fold_of_train": fold_of_train,
        "standardization": stats,
        "intercept": beta[0],
        "coefficients": beta[1:],
        "iterations": iterations,
        "cv": {
            "accuracy": accuracy(cv_probs, cv_labels),
            "auc": auc(cv_probs, cv_labels),
            "brier": brier(cv_probs, cv_labels),
            "fold_accuracy_mean": sum(fold_accuracies) / len(fold_accuracies),
        },
        # The spec named both the test row list and these metrics "test";
        # a JSON object cannot hold one key twice, so the metrics are here.
        "test_metrics": {
            "accuracy": accuracy(test_probs, test_labels),
            "auc": auc(test_probs, test_labels),
            "brier": brier(test_probs, test_labels),
        },
        "calibration": calibration_table(cv_probs, cv_labels),
        "test_probabilities": test_probs,
    }

    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)
        handle.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
