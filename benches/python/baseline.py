"""The Python baseline of leadflow-bench: the work of the data and train stages with the stack a
user would otherwise pick (pandas + scikit-learn + xgboost `hist`), same cleaning, same split
sizes, same search budget, no tracking. Prints one JSON object of phase timings and test scores.

    python baseline.py RAW_CSV OUT_DIR [--xgb-candidates 10 --xgb-folds 10 --lr-candidates 10 --lr-folds 3 --jobs 2]
"""

import argparse
import resource
import json
import os
import pathlib
import time

import numpy as np
import pandas as pd
import sklearn
import xgboost as xgb
from scipy.stats import randint, uniform
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold, train_test_split

ap = argparse.ArgumentParser()
ap.add_argument("raw")
ap.add_argument("out")
ap.add_argument("--xgb-candidates", type=int, default=10)
ap.add_argument("--xgb-folds", type=int, default=10)
ap.add_argument("--lr-candidates", type=int, default=10)
ap.add_argument("--lr-folds", type=int, default=3)
ap.add_argument("--jobs", type=int, default=2)
a = ap.parse_args()
out = pathlib.Path(a.out)
out.mkdir(parents=True, exist_ok=True)
t = {}

# --- data: the lead notebook's cleaning ------------------------------------------------------
t0 = time.perf_counter()
df = pd.read_csv(a.raw, dtype=str)
df = df.drop(columns=["is_active", "marketing_consent", "first_booking", "existing_customer", "last_seen",
                      "domain", "country", "visited_learn_more_before_booking", "visited_faq"])
d = pd.to_datetime(df["date_part"], format="%Y-%m-%d", errors="raise")
df = df[(d >= "2024-01-01") & (d <= "2024-01-31")]
df = df[df["lead_indicator"].notna() & df["lead_id"].notna()]
df = df[df["source"].str.strip() == "signup"].copy()
cont = ["purchases", "time_spent", "n_visits"]
for c in cont:
    x = pd.to_numeric(df[c])
    m, s = x.mean(), x.std()
    x = x.clip(m - 2 * s, m + 2 * s)
    x = x.fillna(x.mean())
    df[c] = (x - x.min()) / (x.max() - x.min())
df["customer_code"] = df["customer_code"].fillna("None")
for c in ["lead_id", "customer_group", "onboarding", "source", "customer_code"]:
    df[c] = df[c].str.strip().fillna(df[c].mode()[0])
df["lead_indicator"] = pd.to_numeric(df["lead_indicator"]).astype(int)
df["bin_source"] = df["source"].map({"li": "socials", "fb": "socials", "organic": "group1", "signup": "group1"}).fillna("Others")
df.drop(columns=["bin_source"]).to_csv(out / "training_data.csv", index=False)
df.to_csv(out / "train_data_gold.csv", index=False)
t["data"] = time.perf_counter() - t0

# --- train: encode, split, two searches, refits, writes ----------------------------------------
t0 = time.perf_counter()
cats = ["customer_group", "onboarding", "bin_source", "source"]
X = pd.get_dummies(df[cont + cats], columns=cats, drop_first=True, dtype=float)
y = df["lead_indicator"].to_numpy()
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.15, stratify=y, random_state=42)
t["train_prepare"] = time.perf_counter() - t0

t0 = time.perf_counter()
rf = xgb.XGBRFClassifier(n_estimators=100, colsample_bynode=0.8, reg_lambda=1e-5, tree_method="hist", n_jobs=1, random_state=42)
space = {
    "learning_rate": uniform(0.01, 0.3),
    "min_split_loss": uniform(0, 10),
    "max_depth": randint(3, 10),
    "subsample": uniform(0.01, 0.99),
    "objective": ["reg:squarederror", "binary:logistic", "reg:logistic"],
}
xs = RandomizedSearchCV(rf, space, n_iter=a.xgb_candidates, cv=StratifiedKFold(a.xgb_folds, shuffle=True, random_state=42),
                        scoring="accuracy", n_jobs=a.jobs, random_state=42, refit=True)
xs.fit(X_train, y_train)
t["xgboost_search"] = time.perf_counter() - t0 - xs.refit_time_
t["xgboost_refit"] = xs.refit_time_

t0 = time.perf_counter()
ls = RandomizedSearchCV(LogisticRegression(max_iter=100), {"C": [100, 10, 1, 0.1, 0.01], "penalty": [None, "l2"]},
                        n_iter=a.lr_candidates, cv=StratifiedKFold(a.lr_folds, shuffle=True, random_state=42),
                        scoring="accuracy", n_jobs=a.jobs, random_state=42, refit=True)
ls.fit(X_train, y_train)
t["logistic_search"] = time.perf_counter() - t0 - ls.refit_time_
t["logistic_refit"] = ls.refit_time_

t0 = time.perf_counter()
X_train.to_csv(out / "X_train.csv", index=False)
X_test.to_csv(out / "X_test.csv", index=False)
pd.Series(y_train, name="lead_indicator").to_csv(out / "y_train.csv", index=False)
pd.Series(y_test, name="lead_indicator").to_csv(out / "y_test.csv", index=False)
xs.best_estimator_.get_booster().save_model(str(out / "model_xgboost.json"))
with open(out / "model_lr.json", "w") as f:
    json.dump({"coef": ls.best_estimator_.coef_.tolist(), "intercept": ls.best_estimator_.intercept_.tolist()}, f)
t["writes"] = time.perf_counter() - t0
t["train"] = sum(t[k] for k in ["train_prepare", "xgboost_search", "xgboost_refit", "logistic_search", "logistic_refit", "writes"])

scores = {
    "xgboost": f1_score(y_test, (xs.best_estimator_.predict_proba(X_test)[:, 1] >= 0.5).astype(int), average="weighted"),
    "logistic": f1_score(y_test, ls.best_estimator_.predict(X_test), average="weighted"),
}
kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"seconds": t, "peak_rss_mib": kib / 1024, "test_f1_weighted": scores, "gold_rows": int(len(df)),
                  "versions": {"pandas": pd.__version__, "scikit-learn": sklearn.__version__, "xgboost": xgb.__version__,
                               "numpy": np.__version__}, "cpus": os.cpu_count()}))
