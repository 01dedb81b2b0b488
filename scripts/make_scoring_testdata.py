#!/usr/bin/python3
"""Train small XGBoost models and record XGBoost's own outputs for them.

Writes into scoring/testdata/xgboost/:
  <name>.json   the model, saved by XGBoost's save_model (JSON)
  <name>.csv    rows to score: one column per model feature (empty = missing),
                then margin, prediction (after the objective) and one
                contrib_<feature> column per feature plus contrib_bias
                (XGBoost's pred_contribs), all as XGBoost computed them.
  refuse_<what>.json  models the scorer must refuse at load.

The rows include edge cases the evaluator must get exactly right: missing
values, binary features equal to a split condition (x == 1.0 with split
1.0), and values that only fall on the split after rounding to float32.

Run from the repository root: scripts/make_scoring_testdata.py
"""
import csv
import os
import sys

import numpy as np
import pandas as pd
import xgboost as xgb

OUT = os.path.join("scoring", "testdata", "xgboost")
RNG = np.random.default_rng(20251230)

SMALL_FEATURES = [
    "tenure_months", "mobility_3yr", "is_wirehouse", "has_email",
    "firm_net_change_12mo", "days_since_last_move", "experience_years",
]

V41_FEATURES = [
    "tenure_months", "mobility_3yr", "firm_rep_count_at_contact",
    "firm_net_change_12mo", "is_wirehouse", "is_broker_protocol", "has_email",
    "has_linkedin", "has_firm_data", "mobility_x_heavy_bleeding",
    "short_tenure_x_high_mobility", "experience_years", "tenure_bucket_encoded",
    "mobility_tier_encoded", "firm_stability_tier_encoded", "is_recent_mover",
    "days_since_last_move", "firm_departures_corrected",
    "bleeding_velocity_encoded", "is_independent_ria", "is_ia_rep_type",
    "is_dual_registered",
]


def with_missing(col, share):
    col = col.astype(np.float64)
    col[RNG.random(len(col)) < share] = np.nan
    return col


def small_data(n):
    X = np.column_stack([
        with_missing(RNG.integers(0, 300, n), 0.10),
        RNG.integers(0, 5, n),
        RNG.integers(0, 2, n),
        RNG.integers(0, 2, n),
        with_missing(RNG.integers(-50, 50, n), 0.15),
        np.where(RNG.random(n) < 0.1, 9999, RNG.integers(0, 4000, n)),
        with_missing(RNG.gamma(3.0, 5.0, n), 0.05),
    ]).astype(np.float64)
    t = np.nan_to_num(X[:, 0], nan=60.0)
    f = np.nan_to_num(X[:, 4], nan=0.0)
    z = (-0.01 * t + 0.6 * X[:, 1] - 0.8 * X[:, 2] + 0.7 * X[:, 3]
         - 0.03 * f - 0.0003 * X[:, 5] + RNG.normal(0, 1, n))
    return X, z


def v41_data(n):
    cols = {}
    cols["tenure_months"] = RNG.integers(0, 360, n)
    cols["mobility_3yr"] = RNG.poisson(0.6, n)
    cols["firm_rep_count_at_contact"] = RNG.integers(1, 20000, n)
    cols["firm_net_change_12mo"] = RNG.integers(-80, 60, n)
    for name in ["is_wirehouse", "is_broker_protocol", "has_email", "has_linkedin",
                 "has_firm_data", "is_recent_mover", "is_independent_ria",
                 "is_ia_rep_type", "is_dual_registered"]:
        cols[name] = RNG.integers(0, 2, n)
    cols["mobility_x_heavy_bleeding"] = ((cols["mobility_3yr"] >= 2) & (cols["firm_net_change_12mo"] < -10)).astype(int)
    cols["short_tenure_x_high_mobility"] = ((cols["tenure_months"] < 24) & (cols["mobility_3yr"] >= 2)).astype(int)
    cols["experience_years"] = RNG.gamma(3.0, 5.0, n)
    cols["tenure_bucket_encoded"] = RNG.integers(0, 6, n)
    cols["mobility_tier_encoded"] = RNG.integers(0, 3, n)
    cols["firm_stability_tier_encoded"] = RNG.integers(0, 5, n)
    cols["days_since_last_move"] = np.where(RNG.random(n) < 0.1, 9999, RNG.integers(0, 6000, n))
    cols["firm_departures_corrected"] = RNG.poisson(4, n)
    cols["bleeding_velocity_encoded"] = RNG.integers(0, 4, n)
    X = np.column_stack([cols[f].astype(np.float64) for f in V41_FEATURES])
    X[:, V41_FEATURES.index("experience_years")] = with_missing(X[:, V41_FEATURES.index("experience_years")], 0.05)
    z = (-3.8 + 0.5 * cols["mobility_3yr"] - 0.004 * cols["tenure_months"]
         + 0.4 * cols["has_linkedin"] - 0.5 * cols["is_wirehouse"]
         + 0.02 * np.maximum(-cols["firm_net_change_12mo"], 0) + RNG.normal(0, 1, n))
    return X, z


def split_edge_rows(bst, base_rows):
    """Rows that put a feature exactly on, or just under, a split condition."""
    df = bst.trees_to_dataframe()
    splits = df[df["Feature"] != "Leaf"][["Feature", "Split"]].drop_duplicates()
    names = bst.feature_names
    rows = []
    for i, (feat, split) in enumerate(splits.itertuples(index=False)):
        if i >= 40:
            break
        j = names.index(feat)
        s32 = np.float32(split)
        ulp = float(np.spacing(s32))
        for v in (float(s32), float(s32) - ulp / 4, float(np.nextafter(s32, np.float32(-np.inf)))):
            r = base_rows[i % len(base_rows)].copy()
            r[j] = v
            rows.append(r)
    return np.array(rows)


def write_case(name, bst, X):
    names = bst.feature_names
    d = xgb.DMatrix(X, missing=np.nan, feature_names=names)
    pred = bst.predict(d)
    margin = bst.predict(d, output_margin=True)
    contribs = bst.predict(d, pred_contribs=True)
    inplace = bst.inplace_predict(X, missing=np.nan)
    assert np.array_equal(pred, inplace), name + ": DMatrix and inplace predictions differ"
    bst.save_model(os.path.join(OUT, name + ".json"))
    with open(os.path.join(OUT, name + ".csv"), "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(names + ["margin", "prediction"] + ["contrib_" + f for f in names] + ["contrib_bias"])
        for i in range(X.shape[0]):
            feats = ["" if np.isnan(v) else repr(float(v)) for v in X[i]]
            w.writerow(feats + [repr(float(margin[i])), repr(float(pred[i]))]
                       + [repr(float(c)) for c in contribs[i]])
    print(f"{name}: {len(bst.get_dump())} trees, {X.shape[0]} rows")


def train_small(objective, label, extra=None, rounds=25, base_score=None):
    X, z = small_data(3000)
    if label == "binary":
        y = (z > np.quantile(z, 0.7)).astype(np.float64)
    elif label == "fraction":
        y = 1.0 / (1.0 + np.exp(-z))
    else:
        y = 3.0 * z + 10.0
    params = {"objective": objective, "max_depth": 3, "eta": 0.3, "tree_method": "hist",
              "min_child_weight": 5, "seed": 7, "nthread": 1}
    if base_score is not None:
        params["base_score"] = base_score
    params.update(extra or {})
    d = xgb.DMatrix(X, label=y, missing=np.nan, feature_names=SMALL_FEATURES)
    bst = xgb.train(params, d, rounds)
    Xt, _ = small_data(80)
    rows = np.vstack([Xt, split_edge_rows(bst, Xt), np.full((1, X.shape[1]), np.nan)])
    return bst, rows


def assert_binary_split_on_one(bst):
    df = bst.trees_to_dataframe()
    hit = df[(df["Feature"].isin(["is_wirehouse", "has_email"])) & (df["Split"] == 1.0)]
    assert len(hit) > 0, "expected a binary feature split at exactly 1.0"


def refusals():
    X, z = small_data(600)
    names = SMALL_FEATURES
    y = (z > np.median(z)).astype(float)
    base = {"max_depth": 2, "tree_method": "hist", "seed": 1, "nthread": 1}

    def save(name, params, label, rounds=2, dm=None):
        d = dm if dm is not None else xgb.DMatrix(X, label=label, missing=np.nan, feature_names=names)
        bst = xgb.train({**base, **params}, d, rounds)
        bst.save_model(os.path.join(OUT, "refuse_" + name + ".json"))

    yc = np.digitize(z, np.quantile(z, [1 / 3, 2 / 3])).astype(float)
    save("multiclass", {"objective": "multi:softprob", "num_class": 3}, yc)
    save("dart", {"objective": "binary:logistic", "booster": "dart", "rate_drop": 0.1}, y)
    save("gblinear", {"objective": "binary:logistic", "booster": "gblinear"}, y)
    save("poisson", {"objective": "count:poisson"}, np.floor(np.abs(z)))
    save("multitarget", {"objective": "reg:squarederror"}, np.column_stack([z, -z]))
    df = pd.DataFrame(X[:, :2], columns=names[:2])
    df["firm_kind"] = pd.Categorical(RNG.integers(0, 10, len(df)).astype(str))
    dcat = xgb.DMatrix(df, label=(df["firm_kind"].astype(int) % 3 == 0).astype(float), enable_categorical=True)
    save("categorical", {"objective": "binary:logistic", "max_cat_to_onehot": 1}, None, dm=dcat)


def main():
    os.makedirs(OUT, exist_ok=True)
    bst, rows = train_small("binary:logistic", "binary")
    assert_binary_split_on_one(bst)
    write_case("logistic", bst, rows)
    bst, rows = train_small("binary:logitraw", "binary", base_score=0.3)
    write_case("logitraw", bst, rows)
    bst, rows = train_small("reg:logistic", "fraction", base_score=0.7)
    write_case("reg_logistic", bst, rows)
    bst, rows = train_small("reg:squarederror", "real", base_score=2.5, extra={"max_depth": 4})
    write_case("squarederror", bst, rows)

    # Shaped like v4.1.0: 22 features, depth 2, 223 trees, weighted positives.
    X, z = v41_data(20000)
    y = (RNG.random(len(z)) < 1.0 / (1.0 + np.exp(-z))).astype(float)
    spw = float((y == 0).sum() / max((y == 1).sum(), 1))
    params = {"objective": "binary:logistic", "max_depth": 2, "min_child_weight": 30,
              "reg_alpha": 1.0, "reg_lambda": 5.0, "gamma": 0.3, "learning_rate": 0.01,
              "subsample": 0.6, "colsample_bytree": 0.6, "base_score": 0.5, "seed": 42,
              "scale_pos_weight": spw, "tree_method": "hist", "nthread": 1}
    bst = xgb.train(params, xgb.DMatrix(X, label=y, missing=np.nan, feature_names=V41_FEATURES), 223)
    Xt, _ = v41_data(100)
    write_case("v41like", bst, Xt)

    refusals()


if __name__ == "__main__":
    sys.exit(main())
