"""Batch scoring the way a pandas user would write it: the Python side of leadflow-predict-bench.

Reads the exported model directory's own preprocessing.json, feature_spec.json and model file
(the same fitted objects leadflow applies), then, vectorised with pandas and numpy: reads the
input (CSV or Parquet) in chunks of --chunk-rows rows, cleans (clip, fill, scale, yes/no,
derived columns), one-hot encodes, scores with xgboost's Booster or the logistic coefficients,
and appends row,id,probability,label to the output CSV. Binary models without calibration (what
the bench trains). Prints JSON: rows, seconds, peak RSS (ru_maxrss).

usage: predict_baseline.py MODEL_DIR INPUT OUTPUT [--chunk-rows N]
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import pandas as pd
import pyarrow.parquet  # noqa: F401  (imported before the clock starts, as pandas is)
import xgboost

_BOOL = {"true": True, "yes": True, "y": True, "t": True, "1": True, "1.0": True,
         "false": False, "no": False, "n": False, "f": False, "0": False, "0.0": False}


def read(path, name):
    with open(os.path.join(path, name), encoding="utf-8") as f:
        return json.load(f)


def text(col):
    """A column as the CSV text leadflow reads (None when missing)."""
    if col.dtype == bool:
        return col.map({True: "True", False: "False"})
    if pd.api.types.is_float_dtype(col):
        out = col.map(lambda v: None if v != v else (str(int(v)) if float(v).is_integer() else repr(float(v))))
        return out
    s = col.astype("string").str.strip()
    return s.where(s != "", None)


class Model:
    def __init__(self, path):
        self.spec = read(path, "model.json")
        assert not self.spec.get("calibration"), "the bench scores uncalibrated models"
        self.pre = read(path, "preprocessing.json")
        self.fs = read(path, "feature_spec.json")
        self.id = self.pre.get("id")
        model_file = os.path.join(path, self.spec["file"])
        if self.spec["kind"] in ("xgboost", "boosted"):
            self.booster = xgboost.Booster()
            self.booster.load_model(model_file)
            self.xgboost = xgboost
        else:
            m = read(path, self.spec["file"])
            self.booster = None
            self.coef = np.array(m["coefficients"], dtype=np.float64)
            self.intercept = float(m["intercept"])

    def features(self, df):
        clean = {}
        for t in self.pre["continuous"]:
            x = pd.to_numeric(df[t["name"]], errors="raise").astype(np.float64)
            lo = -np.inf if t["clip_lower"] is None else t["clip_lower"]
            hi = np.inf if t["clip_upper"] is None else t["clip_upper"]
            v = x.clip(lo, hi).fillna(t["fill"]).to_numpy()
            s = t["scale"]
            if isinstance(s, dict) and "min_max" in s:
                a, b = s["min_max"]["min"], s["min_max"]["max"]
                v = (v - a) / (b - a) if b - a > 0 else np.zeros_like(v)
            elif isinstance(s, dict) and "standard" in s:
                sd = s["standard"]["std"]
                v = (v - s["standard"]["mean"]) / (sd if sd > 0 else 1.0)
            clean[t["name"]] = v
        for c in self.pre["categorical"]:
            v = text(df[c["name"]]).fillna(c["fill"] if c["fill"] is not None else c["mode"])
            if c["boolean"]:
                b = v.str.lower().map(_BOOL)
                if b.isna().any():
                    raise ValueError(f"column `{c['name']}`: expected yes/no")
                v = b.map({True: "true", False: "false"})
            clean[c["name"]] = v.to_numpy(dtype=object)
        for d in self.pre["derive"]:
            src = pd.Series(clean.get(d["from"], np.full(len(df), "", dtype=object)))
            clean[d["name"]] = src.map(d["map"]).fillna(d["default"]).to_numpy(dtype=object)
        cols = [np.asarray(clean[n], dtype=np.float64) for n in self.fs["numeric"]]
        for c in self.fs["categorical"]:
            v, levels = clean[c["name"]], c["levels"]
            if self.fs["unseen"] == "error" and not np.isin(v, levels).all():
                raise ValueError(f"column `{c['name']}`: a level never seen in training")
            kept = levels[1:] if self.fs["drop_first"] else levels
            cols.extend((v == level).astype(np.float64) for level in kept)
        return np.column_stack(cols)

    def proba(self, x):
        if self.booster is not None:
            return np.clip(self.booster.predict(self.xgboost.DMatrix(x)).astype(np.float64), 0.0, 1.0)
        z = x @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))


def chunks(path, n):
    if path.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        for b in pq.ParquetFile(path).iter_batches(batch_size=n):
            yield b.to_pandas()
    else:
        yield from pd.read_csv(path, chunksize=n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    a = ap.parse_args()
    start = time.perf_counter()
    m = Model(a.model_dir)
    threshold = m.spec["threshold"]
    rows = 0
    with open(a.output, "w", encoding="utf-8") as out:
        header = True
        for df in chunks(a.input, a.chunk_rows):
            p = m.proba(m.features(df))
            o = pd.DataFrame({"row": np.arange(rows + 1, rows + len(df) + 1)})
            if m.id and m.id in df.columns:
                o[m.id] = df[m.id].to_numpy()
            o["probability"] = p
            o["label"] = (p >= threshold).astype(np.int64)
            o.to_csv(out, index=False, header=header)
            header = False
            rows += len(df)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    json.dump({"rows": rows, "seconds": seconds, "peak_bytes": peak}, sys.stdout)


if __name__ == "__main__":
    main()
