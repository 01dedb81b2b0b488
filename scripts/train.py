#!/usr/bin/python3
"""Train the V4 lead-scoring models from the population export.

Reads leads.csv written by `leadscorer population` (features computed by the
service's own Go feature code, so training and serving cannot skew), trains
v4.0.0 (14 features) and v4.1.0 (22 features) with XGBoost, and writes:

  <models>/<version>/model.json     XGBoost JSON model, best iteration only
  <models>/<version>/metrics.json   train/validation/test figures
  <models>/registry.json            the registry described in docs/REGISTRY.md
  <testdata>/<version>/features.csv, predictions.csv, contribs.csv
                                    XGBoost's own test-set outputs, for parity
  <holdout>                         the labelled test set: lead_id, contact_at,
                                    label and every feature of both versions,
                                    the rows of the parity files in their order;
                                    the pre-deployment gates' default holdout

Early stopping uses the last three months of the training period, never the
test set. Needs XGBoost 1.7 (Debian's python3-xgboost).
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import sys

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import average_precision_score, roc_auc_score

V41 = [
    "tenure_months", "mobility_3yr", "firm_rep_count_at_contact", "firm_net_change_12mo",
    "is_wirehouse", "is_broker_protocol", "has_email", "has_linkedin", "has_firm_data",
    "mobility_x_heavy_bleeding", "short_tenure_x_high_mobility", "experience_years",
    "tenure_bucket_encoded", "mobility_tier_encoded", "firm_stability_tier_encoded",
    "is_recent_mover", "days_since_last_move", "firm_departures_corrected",
    "bleeding_velocity_encoded", "is_independent_ria", "is_ia_rep_type", "is_dual_registered",
]
V40 = [
    "tenure_bucket", "experience_bucket", "is_experience_missing", "mobility_tier",
    "firm_rep_count_at_contact", "firm_net_change_12mo", "firm_stability_tier",
    "has_firm_data", "is_wirehouse", "is_broker_protocol", "has_email", "has_linkedin",
    "mobility_x_heavy_bleeding", "short_tenure_x_high_mobility",
]

# Explanation phrases: "phrase|phrase when the value is 0|phrase when it is
# missing", {value} replaced by the value (docs/REGISTRY.md).
DESCRIPTIONS = {
    "tenure_months": "{value} months at the current firm|under a month at the current firm or unknown",
    "mobility_3yr": "moved firms {value} times in 3 years|no firm moves in 3 years|firm history unknown",
    "firm_rep_count_at_contact": "firm has {value} reps|firm has no reps on record|firm size unknown",
    "firm_net_change_12mo": "firm head count changed by {value} in 12 months|firm head count steady over 12 months|firm head count trend unknown",
    "is_wirehouse": "works at a wirehouse|not at a wirehouse",
    "is_broker_protocol": "firm is in the Broker Protocol|firm is not in the Broker Protocol",
    "has_email": "has an email address on file|no email address on file",
    "has_linkedin": "has a LinkedIn profile|no LinkedIn profile",
    "has_firm_data": "firm data is available|no firm data",
    "mobility_x_heavy_bleeding": "moves often and the firm is losing many reps|not a frequent mover at a shrinking firm",
    "short_tenure_x_high_mobility": "new at the firm and moves often|not a new, frequent mover",
    "experience_years": "{value} years in the industry|new to the industry|industry experience unknown",
    "tenure_bucket_encoded": "time at the current firm (bucket {value})|under a year at the current firm",
    "mobility_tier_encoded": "changes firms rarely or never|changed firms 2+ times in 3 years",
    "firm_stability_tier_encoded": "firm is shrinking, stable or unknown (tier {value})|firm is growing",
    "is_recent_mover": "joined the current firm within the last year|at the current firm for over a year",
    "days_since_last_move": "{value} days since the last firm change|changed firms today",
    "firm_departures_corrected": "{value} reps left the firm in 12 months|no reps left the firm in 12 months|firm departures unknown",
    "bleeding_velocity_encoded": "reps leaving the firm at velocity {value} (1 slowing, 2 steady, 3 speeding up)|few reps leaving the firm|firm departures unknown",
    "is_independent_ria": "works at an independent RIA|not at an independent RIA",
    "is_ia_rep_type": "registered as an investment adviser rep|not an investment adviser rep",
    "is_dual_registered": "dual registered (broker and adviser)|not dual registered",
    "tenure_bucket": "time at the current firm (bucket {value})|under a year at the current firm",
    "experience_bucket": "in the industry for 5+ years (bucket {value})|under 5 years in the industry",
    "is_experience_missing": "industry experience is unknown|industry experience is known",
    "mobility_tier": "changes firms rarely or never|changed firms 2+ times in 3 years",
    "firm_stability_tier": "firm is shrinking, stable or unknown (tier {value})|firm is growing",
}

# The pre-deployment gates' limits written with each version
# (docs/REGISTRY.md): the checklist's lift and AUC-gap figures, and the
# project's tolerances for explanations, parity and score drift.
GATE_THRESHOLDS = {
    "min_auc_gain": 0,
    "min_top_decile_lift": 1.5,
    "max_auc_gap": 0.15,
    "max_shap_error": 1e-5,
    "max_parity_rows": 0,
    "max_psi": 0.1,
}

# Early stopping watches the last five months of the training period.
VALID_FROM = "2025-03-01"

VERSIONS = [
    # version, features, role
    ("v4.0.0", V40, "production"),
    ("v4.1.0", V41, "shadow"),
]


def params(scale_pos_weight):
    return {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "max_depth": 2,
        "min_child_weight": 30,
        "alpha": 1.0,
        "lambda": 5.0,
        "gamma": 0.3,
        "eta": 0.01,
        "subsample": 0.6,
        "colsample_bytree": 0.6,
        "base_score": 0.5,
        "seed": 42,
        "scale_pos_weight": scale_pos_weight,
        "tree_method": "exact",
        "nthread": 2,
    }


def percentiles(scores):
    """ceil(100 x (rows with score <= s) / n) for each s: ties share a percentile."""
    s = np.sort(scores)
    le = np.searchsorted(s, scores, side="right")
    return np.ceil(100.0 * le / len(scores)).astype(int)


def cut_points(scores):
    """99 ascending scores: cut_points[k-1] = sorted[floor(k*n/100)]."""
    s = np.sort(scores)
    n = len(s)
    return [float(s[(k * n) // 100]) for k in range(1, 100)]


def lift_metrics(y, scores):
    pct = percentiles(scores)
    rate = y.mean()
    deciles = np.ceil(pct / 10.0).astype(int)
    lifts = []
    for d in range(1, 11):
        m = deciles == d
        lifts.append(round(float(y[m].mean() / rate), 4) if m.any() else None)
    bottom = pct <= 20
    skipped = bottom.mean()
    lost = y[bottom].sum() / y.sum()
    top = deciles == 10
    return {
        "lift_by_decile": lifts,
        "top_decile_lift": lifts[-1],
        "top_decile_conversion": round(float(y[top].mean()), 5),
        "bottom20_conversion": round(float(y[bottom].mean()), 5),
        "deprioritization_efficiency": round(float(100 * (skipped - lost)), 2),
    }


def fmt32(x):
    """The float32 printed exactly: the shortest decimal that reads back as it."""
    return np.format_float_positional(np.float32(x), unique=True, trim="-")


def write_parity(path, names, raw_rows, booster, dm):
    os.makedirs(path, exist_ok=True)
    raw_rows[names].to_csv(os.path.join(path, "features.csv"), index=False)
    pred = booster.predict(dm)
    with open(os.path.join(path, "predictions.csv"), "w") as f:
        f.write("score\n")
        for p in pred:
            f.write(fmt32(p) + "\n")
    contribs = booster.predict(dm, pred_contribs=True)
    with open(os.path.join(path, "contribs.csv"), "w") as f:
        f.write(",".join(names + ["bias"]) + "\n")
        for row in contribs:
            f.write(",".join(fmt32(c) for c in row) + "\n")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def train_version(version, names, df, raw, models_dir, testdata_dir, log):
    labelled = df["label"].notna()
    train = df[(df["split"] == "train") & labelled]
    test = df[(df["split"] == "test") & labelled]
    fit = train[train["contact_at"] < VALID_FROM]
    valid = train[train["contact_at"] >= VALID_FROM]

    def dmat(rows, labelled=True):
        return xgb.DMatrix(rows[names].to_numpy(dtype=np.float32),
                           label=rows["label"].to_numpy() if labelled else None,
                           missing=np.nan, feature_names=names)

    d_fit, d_valid, d_test = dmat(fit), dmat(valid), dmat(test)
    y_fit = fit["label"].to_numpy()
    spw = float((y_fit == 0).sum()) / float((y_fit == 1).sum())
    full = xgb.train(params(spw), d_fit, num_boost_round=2000,
                     evals=[(d_fit, "fit"), (d_valid, "valid")],
                     early_stopping_rounds=150, verbose_eval=False)
    best = full.best_iteration
    booster = full[: best + 1]
    booster.feature_names = names

    vdir = os.path.join(models_dir, version)
    os.makedirs(vdir, exist_ok=True)
    model_path = os.path.join(vdir, "model.json")
    booster.save_model(model_path)
    saved = xgb.Booster(model_file=model_path)
    if saved.feature_names != names:
        sys.exit(f"{version}: saved model feature_names {saved.feature_names} != {names}")

    p_fit, p_valid, p_test = booster.predict(d_fit), booster.predict(d_valid), booster.predict(d_test)
    y_test = test["label"].to_numpy()
    y_train = train["label"].to_numpy()
    p_train = booster.predict(dmat(train))
    metrics = {
        "version": version,
        "features": len(names),
        "best_iteration": int(best),
        "scale_pos_weight": round(spw, 4),
        "train_auc": round(float(roc_auc_score(y_train, p_train)), 4),
        "fit_auc": round(float(roc_auc_score(y_fit, p_fit)), 4),
        "valid_auc": round(float(roc_auc_score(valid["label"], p_valid)), 4),
        "test_auc": round(float(roc_auc_score(y_test, p_test)), 4),
        "auc_pr": round(float(average_precision_score(y_test, p_test)), 4),
        "test_positive_rate": round(float(y_test.mean()), 5),
        "rows": {
            "train": int(len(train)), "train_positives": int(y_train.sum()),
            "fit": int(len(fit)), "valid": int(len(valid)),
            "test": int(len(test)), "test_positives": int(y_test.sum()),
            "gap": int((df["split"] == "gap").sum()), "pending": int((df["split"] == "pending").sum()),
        },
        "score_range_test": [float(p_test.min()), float(p_test.max())],
        "valid_from": VALID_FROM,
    }
    metrics["train_test_gap"] = round(metrics["train_auc"] - metrics["test_auc"], 4)
    metrics.update(lift_metrics(y_test, p_test))
    with open(os.path.join(vdir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")

    test_raw = raw.loc[test.index]
    write_parity(os.path.join(testdata_dir, version), names, test_raw, booster, d_test)

    # Reference population: every lead as of its contact time.
    p_all = booster.predict(dmat(df, labelled=False))
    log(f"{version}: best_iteration {best}, train AUC {metrics['train_auc']}, valid AUC "
        f"{metrics['valid_auc']}, test AUC {metrics['test_auc']}, AUC-PR {metrics['auc_pr']}, "
        f"top-decile lift {metrics['top_decile_lift']}, bottom-20% conversion "
        f"{metrics['bottom20_conversion']}, deprioritization efficiency "
        f"{metrics['deprioritization_efficiency']}, lift by decile {metrics['lift_by_decile']}")
    return model_path, metrics, cut_points(p_all)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="leads.csv from `leadscorer population`")
    ap.add_argument("--models", default="models", help="models directory (registry.json goes here)")
    ap.add_argument("--testdata", default="testdata/parity", help="parity test data directory")
    ap.add_argument("--holdout", default="testdata/holdout/test.csv", help="labelled holdout file to write")
    ap.add_argument("--registered-at", default=None,
                    help="registry history time, RFC 3339 (default: now, UTC)")
    args = ap.parse_args()

    if not xgb.__version__.startswith("1.7"):
        sys.exit(f"xgboost {xgb.__version__}: need 1.7 (the models' JSON format and parity files depend on it)")

    raw = pd.read_csv(args.data, dtype=str, keep_default_na=False)
    df = pd.read_csv(args.data, dtype={"lead_id": str, "split": str, "contact_at": str})
    missing = [n for n in V41 + V40 if n not in df.columns]
    if missing:
        sys.exit(f"{args.data}: missing feature columns {missing}")

    log = lambda s: print(s, flush=True)
    registered = args.registered_at or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    versions, history = [], []
    for version, names, role in VERSIONS:
        model_path, m, cuts = train_version(version, names, df, raw, args.models, args.testdata, log)
        versions.append({
            "version": version,
            "role": role,
            "format": "xgboost-json",
            "path": f"{version}/model.json",
            "sha256": sha256(model_path),
            "features": names,
            "feature_descriptions": {n: DESCRIPTIONS[n] for n in names},
            "metrics": {k: m[k] for k in ("train_auc", "test_auc", "auc_pr", "top_decile_lift",
                                           "bottom20_conversion", "deprioritization_efficiency",
                                           "best_iteration")},
            "thresholds": {"deprioritize_percentile": 20, "upgrade_percentile": 80},
            "reference": {"cut_points": cuts},
            "gate_thresholds": GATE_THRESHOLDS,
        })
        history.append({"time": registered, "action": "register", "version": version, "reason": "trained"})
    with open(os.path.join(args.models, "registry.json"), "w") as f:
        json.dump({"versions": versions, "history": history}, f, indent=2)
        f.write("\n")
    write_holdout(args.holdout, df, raw)


def write_holdout(path, df, raw):
    """The labelled test rows with every feature of both versions, as the
    population export wrote them (empty = missing), in the parity files' order."""
    test = df[(df["split"] == "test") & df["label"].notna()]
    cols = ["lead_id", "contact_at", "label"] + V41 + [n for n in V40 if n not in V41]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    raw.loc[test.index, cols].to_csv(path, index=False)


if __name__ == "__main__":
    main()
