#!/usr/bin/env python3
"""Writes sigmoid.csv: XGBoost's own binary:logistic probabilities for margins
where the transformation is easy to get one ulp wrong.

XGBoost 1.7.4 (Debian's python3-xgboost) on x86-64 Linux with FMA. A booster
whose only tree adds zero (learning rate 0) predicts sigmoid(base_margin), so
each row's base_margin is the margin. Rows: a float32 grid over [-20, 20]
keeping every margin where 1/(1+exp(-m)) computed with a correctly rounded
exp (numpy's float64 exp, rounded to float32) differs from XGBoost, one in
500 of the others, and the edges of the 88.7 clamp (not -0: adding the
zero leaf makes it +0). Columns are the float32
bits in hex, then the decimal values for reading.
"""
import os
import sys

import numpy as np
import xgboost as xgb

if not xgb.__version__.startswith("1.7."):
    sys.exit(f"xgboost {xgb.__version__}: need 1.7")

grid = np.linspace(-20, 20, 2_000_001, dtype=np.float64).astype(np.float32)
edges = np.array([-1e30, -1000, -100, -88.76635, -88.72, -88.71, -88.7, -88.69, -88, -87,
                  -30, -17, -16.6, 0.0, 1e-30, 16.6, 17, 30, 87, 88, 88.7, 88.72,
                  100, 1000, 1e30], dtype=np.float32)
margins = np.concatenate([grid, edges])

X = np.zeros((2, 1), dtype=np.float32)
train = xgb.DMatrix(X, label=np.array([0.0, 1.0]))
booster = xgb.train({"objective": "binary:logistic", "eta": 0.0, "base_score": 0.5,
                     "max_depth": 1, "nthread": 1}, train, num_boost_round=1)
rows = np.zeros((len(margins), 1), dtype=np.float32)
got_margin = booster.predict(xgb.DMatrix(rows, base_margin=margins), output_margin=True)
if not np.array_equal(got_margin.view(np.uint32), margins.view(np.uint32)):
    sys.exit("the zero tree changed a margin")
prob = booster.predict(xgb.DMatrix(rows, base_margin=margins))

with np.errstate(over="ignore"):
    e = np.exp(-margins.astype(np.float64)).astype(np.float32)
naive = (np.float32(1) / (np.float32(1) + e)).astype(np.float32)
differs = naive.view(np.uint32) != prob.view(np.uint32)
keep = differs | (np.arange(len(margins)) % 500 == 0)
keep[len(grid):] = True

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sigmoid.csv")
with open(out, "w") as f:
    f.write("margin_bits,prob_bits,margin,prob\n")
    for m, p in zip(margins[keep], prob[keep]):
        f.write(f"{int(m.view(np.uint32)):08x},{int(p.view(np.uint32)):08x},{m!r},{p!r}\n")
print(f"{keep.sum()} rows, {differs[:len(grid)].sum()} of {len(grid)} grid margins where a correctly rounded exp differs", file=sys.stderr)
