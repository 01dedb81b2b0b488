#!/usr/bin/python3
"""Write labelled score files and scikit-learn's figures for them.

Writes into validation/testdata/:
  <name>.csv   a header, then one row per lead: lead_id, converted (0/1)
               and one or more score columns.
  <name>.json  for each score column: scikit-learn's roc_auc_score (null
               when one class only) and average_precision_score (null when
               no row converted), and the lift table and conversion figures
               computed here, independently of the Go code, from the
               definitions in docs/METRICS.md.

Files:
  realistic    5,000 leads, about 3% converted, two score columns rounded to
               two decimals (heavy ties), a weak one (v40) and a stronger one
               (v41), seeded.
  tiny         20 hand-written leads, worked through by hand in
               validation/stats_test.go.
  all_equal    60 leads that all score 0.5, 3 converted.

Run from the repository root: scripts/make_evaluate_testdata.py
"""
import csv
import json
import os

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

OUT = os.path.join("validation", "testdata")
RNG = np.random.default_rng(20251230)


def percentiles(scores):
    """ceil(100 x (rows with score <= s) / n), by brute force over sorted scores."""
    s = np.asarray(scores, dtype=float)
    n = len(s)
    at_or_below = np.searchsorted(np.sort(s), s, side="right")
    return [-(-100 * int(c) // n) for c in at_or_below]


def figures(y, scores):
    y = np.asarray(y, dtype=int)
    n, pos = len(y), int(y.sum())
    pct = percentiles(scores)
    deciles = [-(-p // 10) for p in pct]
    count = [0] * 10
    positives = [0] * 10
    for d, label in zip(deciles, y):
        count[d - 1] += 1
        positives[d - 1] += int(label)
    rate = pos / n
    conversion = [positives[d] / count[d] if count[d] else 0.0 for d in range(10)]
    if pos:
        lift = [conversion[d] / rate if count[d] else 0.0 for d in range(10)]
    else:
        lift = [None] * 10
    bottom = [label for p, label in zip(pct, y) if p <= 20]
    out = {
        "n": n,
        "positives": pos,
        "auc": float(roc_auc_score(y, scores)) if 0 < pos < n else None,
        "auc_pr": float(average_precision_score(y, scores)) if pos else None,
        "count_by_decile": count,
        "positives_by_decile": positives,
        "conversion_by_decile": conversion,
        "lift_by_decile": lift,
        "top_decile_conversion": conversion[9],
        "bottom20_count": len(bottom),
        "bottom20_conversion": sum(bottom) / len(bottom) if bottom else None,
        "deprioritization_efficiency": 100 * (len(bottom) / n - sum(bottom) / pos) if pos else None,
    }
    return out


def write(name, ids, y, score_columns):
    with open(os.path.join(OUT, name + ".csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["lead_id", "converted"] + list(score_columns))
        for i, row in enumerate(zip(ids, y)):
            w.writerow(list(row) + [repr(float(score_columns[c][i])) for c in score_columns])
    expected = {c: figures(y, list(score_columns[c])) for c in score_columns}
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


def realistic():
    n = 5000
    signal = RNG.normal(size=n)
    # About 3% convert, more often the higher the latent signal.
    p = 1 / (1 + np.exp(-(-3.8 + 0.7 * signal)))
    y = (RNG.random(n) < p).astype(int)
    v41 = 1 / (1 + np.exp(-(0.25 * signal + RNG.normal(scale=0.35, size=n))))
    v40 = 1 / (1 + np.exp(-(0.10 * signal + RNG.normal(scale=0.35, size=n))))
    write("realistic", [f"L{i:05d}" for i in range(n)], y,
          {"v40": np.round(v40, 2), "v41": np.round(v41, 2)})


def tiny():
    # (score, converted), see TestComputeTinyByHand.
    rows = [
        (0.10, 0), (0.10, 0), (0.20, 0), (0.25, 1),
        (0.30, 0), (0.30, 0), (0.30, 0), (0.40, 0),
        (0.45, 0), (0.50, 1), (0.55, 0), (0.60, 0),
        (0.65, 1), (0.65, 0), (0.70, 0), (0.75, 0),
        (0.80, 1), (0.85, 0), (0.90, 1), (0.90, 1),
    ]
    order = RNG.permutation(len(rows))  # the file is not sorted
    rows = [rows[i] for i in order]
    write("tiny", [f"T{i:02d}" for i in range(len(rows))], [r[1] for r in rows],
          {"score": [r[0] for r in rows]})


def all_equal():
    n = 60
    y = np.zeros(n, dtype=int)
    y[[5, 30, 59]] = 1
    write("all_equal", [f"E{i:02d}" for i in range(n)], y, {"score": np.full(n, 0.5)})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    realistic()
    tiny()
    all_equal()
