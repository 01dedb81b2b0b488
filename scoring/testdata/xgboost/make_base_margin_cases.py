#!/usr/bin/env python3
"""Writes base_margin.csv: the margin XGBoost starts every row from for a
binary:logistic base_score p, ProbToMargin(p) = -logf(1/p - 1).

XGBoost 1.7.4 (Debian's python3-xgboost) on x86-64 Linux with FMA. For each
p, a booster trained with base_score p and learning rate 0 predicts, with
output_margin, exactly that margin (its one tree adds zero). Rows: base
scores in (0, 1) where -log(1/p - 1) with a correctly rounded log (Python's
math.log, rounded to float32) differs from XGBoost, and as many where it
does not. Columns are the float32 bits in hex, then the decimal values.
"""
import math
import os
import sys

import numpy as np
import xgboost as xgb

if not xgb.__version__.startswith("1.7."):
    sys.exit(f"xgboost {xgb.__version__}: need 1.7")

rng = np.random.default_rng(7)
X = np.zeros((2, 1), dtype=np.float32)
train = xgb.DMatrix(X, label=np.array([0.0, 1.0]))
probe = xgb.DMatrix(np.zeros((1, 1), dtype=np.float32))


def naive(p):
    q = np.float32(1) / p - np.float32(1)
    return np.float32(-math.log(float(q)))


differ, same = [], []
while len(differ) < 150 or len(same) < 150:
    p = np.float32(rng.uniform(0.001, 0.999))
    b = xgb.train({"objective": "binary:logistic", "eta": 0.0, "base_score": float(p),
                   "max_depth": 1, "nthread": 1}, train, num_boost_round=1)
    margin = b.predict(probe, output_margin=True)[0]
    row = (p, margin)
    if naive(p).view(np.uint32) != margin.view(np.uint32):
        if len(differ) < 150:
            differ.append(row)
    elif len(same) < 150:
        same.append(row)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "base_margin.csv")
with open(out, "w") as f:
    f.write("base_score_bits,margin_bits,base_score,margin\n")
    for p, m in differ + same:
        f.write(f"{int(p.view(np.uint32)):08x},{int(m.view(np.uint32)):08x},{p!r},{m!r}\n")
print(f"{len(differ)} base scores where a correctly rounded log differs, {len(same)} where not", file=sys.stderr)
