#!/usr/bin/env python3
"""Reference values for the interval and test functions of package validation.

Prints Go literals that validation/intervals_test.go and validation/delong_test.go
hard-code. Each figure is computed here independently of the Go code:

- Wilson and Clopper-Pearson intervals: scipy.stats.binomtest(k, n).proportion_ci.
- Risk-ratio (Katz log) intervals: scipy.stats.contingency.relative_risk.
- ROC AUC: sklearn.metrics.roc_auc_score.
- DeLong's variance, covariance and paired test: straight from DeLong, DeLong &
  Clarke-Pearson (1988), with the O(m x n) matrix of pairwise comparisons
  psi(x, y) = 1, 1/2, 0 (the Go code uses Sun & Xu's midrank algorithm instead).

Run from the repository root:  python3 scripts/validation_reference.py
Needs numpy, scipy and scikit-learn (pip install numpy scipy scikit-learn).
"""
import csv

import numpy as np
from scipy import stats
from scipy.stats.contingency import relative_risk
from sklearn.metrics import roc_auc_score


def g(x):
    return repr(float(x))


def binomial_cases():
    print("// binomial intervals: {k, n, level, wilson lo, wilson hi, exact lo, exact hi}")
    for k, n, level in [(0, 37, 0.90), (1, 35, 0.95), (3, 37, 0.90), (12, 370, 0.95),
                        (37, 37, 0.95), (152, 3437, 0.95), (5, 111, 0.90)]:
        r = stats.binomtest(k, n)
        w = r.proportion_ci(confidence_level=level, method="wilson")
        e = r.proportion_ci(confidence_level=level, method="exact")
        print(f"{{{k}, {n}, {level}, {g(w.low)}, {g(w.high)}, {g(e.low)}, {g(e.high)}}},")


def risk_ratio_cases():
    print("// risk ratios: {x1, n1, x2, n2, level, rr, lo, hi}")
    for x1, n1, x2, n2, level in [(9, 37, 7, 333, 0.90), (30, 344, 122, 3093, 0.95),
                                  (4, 111, 45, 999, 0.90), (1, 35, 14, 335, 0.95)]:
        r = relative_risk(x1, n1, x2, n2)
        ci = r.confidence_interval(confidence_level=level)
        print(f"{{{x1}, {n1}, {x2}, {n2}, {level}, {g(r.relative_risk)}, {g(ci.low)}, {g(ci.high)}}},")


def delong_slow(scores, y):
    """DeLong et al. (1988) by definition: AUCs and their covariance matrix."""
    y = np.asarray(y, dtype=bool)
    k = len(scores)
    v10, v01, aucs = [], [], []
    for s in scores:
        s = np.asarray(s, dtype=float)
        x, z = s[y], s[~y]
        psi = (x[:, None] > z[None, :]).astype(float) + 0.5 * (x[:, None] == z[None, :])
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
        aucs.append(psi.mean())
    m, n = y.sum(), (~y).sum()
    s10 = np.cov(np.vstack(v10)) if k > 1 else np.array([[np.var(v10[0], ddof=1)]])
    s01 = np.cov(np.vstack(v01)) if k > 1 else np.array([[np.var(v01[0], ddof=1)]])
    return np.array(aucs), s10 / m + s01 / n


def delong_case(name, a, b, y, level):
    aucs, cov = delong_slow([a, b], y)
    for s, auc in zip((a, b), aucs):
        assert abs(roc_auc_score(y, s) - auc) < 1e-12
    diff = aucs[0] - aucs[1]
    se = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    z = diff / se
    zq = stats.norm.ppf(0.5 + level / 2)
    print(f"// {name}: level {level}")
    print(f"aucA: {g(aucs[0])}, seA: {g(np.sqrt(cov[0, 0]))}, aucB: {g(aucs[1])}, seB: {g(np.sqrt(cov[1, 1]))},")
    print(f"cov: {g(cov[0, 1])}, diff: {g(diff)}, se: {g(se)}, z: {g(z)},")
    print(f"p: {g(2 * stats.norm.sf(abs(z)))}, pLess: {g(stats.norm.cdf(z))},")
    print(f"lo: {g(diff - zq * se)}, hi: {g(diff + zq * se)},")
    print(f"aucLoA: {g(max(0, aucs[0] - zq * np.sqrt(cov[0, 0])))}, aucHiA: {g(min(1, aucs[0] + zq * np.sqrt(cov[0, 0])))},")


def main():
    binomial_cases()
    risk_ratio_cases()
    # A small case with ties within and across the classes.
    y = [1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0]
    a = [0.9, 0.3, 0.7, 0.7, 0.7, 0.1, 0.4, 0.5, 0.2, 0.3, 0.8, 0.6]
    b = [0.6, 0.6, 0.9, 0.2, 0.4, 0.3, 0.5, 0.1, 0.5, 0.7, 0.8, 0.2]
    delong_case("twelve leads with ties", a, b, y, 0.95)
    # The committed test set: v4.1.0 (A) against v4.0.0 (B).
    with open("validation/parallel_test_set.csv") as f:
        rows = list(csv.DictReader(f))
    y = [r["converted"] == "1" for r in rows]
    a = [float(r["score_v4.1.0"]) for r in rows]
    b = [float(r["score_v4.0.0"]) for r in rows]
    delong_case("validation/parallel_test_set.csv, v4.1.0 vs v4.0.0", a, b, y, 0.90)


if __name__ == "__main__":
    main()
