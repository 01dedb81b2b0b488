#!/usr/bin/python3
"""Measure XGBoost's own per-row cost on the v4.1.0-shaped test model.

The scorer's figures come from `go test -bench . ./scoring/`; this gives the
baseline they replace: XGBoost 1.7's Python API scoring one row at a time
(inplace_predict, and DMatrix + predict), the same for pred_contribs, and a
batch, all on one thread unless --threads says otherwise.

Run from the repository root: scripts/bench_xgboost.py [--threads N]
"""
import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd
import xgboost as xgb

MODEL = os.path.join("scoring", "testdata", "xgboost", "v41like")


def per_call(fn, calls, repeats=5):
    """Median over repeats of the mean seconds per call."""
    means = []
    fn()  # warm up
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        means.append((time.perf_counter() - t0) / calls)
    return statistics.median(means)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()

    bst = xgb.Booster()
    bst.load_model(MODEL + ".json")
    bst.set_param({"nthread": args.threads})
    names = bst.feature_names
    rows = pd.read_csv(MODEL + ".csv")[names].to_numpy(dtype=np.float64)
    one = rows[:1]
    batch = np.tile(rows, (100, 1))  # 10,000 rows
    print(f"xgboost {xgb.__version__}, {len(bst.get_dump())} trees, {len(names)} features, nthread={args.threads}")

    res = [
        ("inplace_predict, 1 row", per_call(lambda: bst.inplace_predict(one), args.calls), 1),
        ("DMatrix + predict, 1 row", per_call(lambda: bst.predict(xgb.DMatrix(one, feature_names=names)), args.calls), 1),
        ("DMatrix + predict(pred_contribs), 1 row",
         per_call(lambda: bst.predict(xgb.DMatrix(one, feature_names=names), pred_contribs=True), args.calls // 4), 1),
        ("inplace_predict, 10,000-row batch", per_call(lambda: bst.inplace_predict(batch), 10), len(batch)),
        ("DMatrix + predict(pred_contribs), 10,000-row batch",
         per_call(lambda: bst.predict(xgb.DMatrix(batch, feature_names=names), pred_contribs=True), 3), len(batch)),
    ]
    for name, sec, n in res:
        print(f"{name:55s} {sec / n * 1e6:10.2f} us/row")


if __name__ == "__main__":
    main()
