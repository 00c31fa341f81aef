"""leadflow's MLflow python_function loader.

leadflow-deploy writes this file into every model it exports (``code/leadflow_pyfunc.py``), so
that ``mlflow.pyfunc.load_model(...)`` and ``mlflow models serve`` score a leadflow model with
nothing but numpy and pandas (and xgboost for an XGBoost model). It is a port of leadflow's
Rust scoring path (``Preprocessing::apply_raw``, ``FeatureSpec::encode``, ``Model::predict``)
for raw rows of the training schema; the test suite checks that it gives what
``leadflow-deploy predict`` gives, row for row.

Output: binary models give ``probability`` (of the positive class) and ``label`` (0/1 at the
saved threshold); multiclass models give ``label`` (the class name) and ``p_<class>`` per class.
"""

import json
import math
import os

import numpy as np
import pandas as pd

__all__ = ["LeadflowModel", "_load_pyfunc"]


def _load_pyfunc(path):
    """MLflow's entry point: ``path`` is the model directory."""
    return LeadflowModel(path)


def _read(path, name):
    with open(os.path.join(path, name), encoding="utf-8") as f:
        return json.load(f)


def _missing(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, (float, np.floating)):
        return math.isnan(v)
    return isinstance(v, str) and not v.strip()


def _text(v):
    """A cell as the CSV text leadflow would have read (None when missing)."""
    if _missing(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    return str(v).strip()


def _number(v, column, row):
    if _missing(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        raise ValueError(f"row {row}, column `{column}`: expected a number, found {v!r}")
    try:
        x = float(v.strip() if isinstance(v, str) else v)
    except (TypeError, ValueError):
        raise ValueError(f"row {row}, column `{column}`: expected a number, found {v!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"row {row}, column `{column}`: expected a number, found {v!r}")
    return x


_BOOL = {"true": True, "yes": True, "y": True, "t": True, "1": True, "1.0": True,
         "false": False, "no": False, "n": False, "f": False, "0": False, "0.0": False}


class _Continuous:
    def __init__(self, t):
        self.name = t["name"]
        self.lower = -math.inf if t["clip_lower"] is None else t["clip_lower"]
        self.upper = math.inf if t["clip_upper"] is None else t["clip_upper"]
        self.fill = t["fill"]
        self.scale = t["scale"]

    def apply(self, x):
        v = self.fill if x is None else min(max(x, self.lower), self.upper)
        s = self.scale
        if isinstance(s, dict) and "min_max" in s:
            lo, hi = s["min_max"]["min"], s["min_max"]["max"]
            return (v - lo) / (hi - lo) if hi - lo > 0 else 0.0
        if isinstance(s, dict) and "standard" in s:
            std = s["standard"]["std"]
            return (v - s["standard"]["mean"]) / (std if std > 0 else 1.0)
        return v


def _calibrate(m, p):
    """One calibration map of one probability column."""
    if m["method"] == "sigmoid":
        z = -(m["a"] * p + m["b"])
        with np.errstate(over="ignore"):
            e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    x, y = np.asarray(m["x"]), np.asarray(m["y"])
    return np.interp(np.clip(p, x[0], x[-1]), x, y)


class LeadflowModel:
    """A leadflow model directory, loaded once, applied to DataFrames of raw rows."""

    def __init__(self, path):
        self.spec = _read(path, "model.json")
        self.pre = _read(path, "preprocessing.json")
        self.features = _read(path, "feature_spec.json")
        self.target = self.pre["target"]
        self.k = len(self.target["classes"])
        self.threshold = self.spec["threshold"]
        self.continuous = [_Continuous(t) for t in self.pre["continuous"]]
        self.categorical = self.pre["categorical"]
        self.derive = self.pre["derive"]
        self.kind = self.spec["kind"]
        model_file = os.path.join(path, self.spec["file"])
        if self.kind in ("xgboost", "boosted"):
            import xgboost

            self.booster = xgboost.Booster()
            self.booster.load_model(model_file)
        else:
            with open(model_file, encoding="utf-8") as f:
                m = json.load(f)
            if "intercepts" in m:
                self.coef = np.array(m["coefficients"], dtype=np.float64)  # classes x features
                self.intercept = np.array(m["intercepts"], dtype=np.float64)
            else:
                self.coef = np.array([m["coefficients"]], dtype=np.float64)
                self.intercept = np.array([m["intercept"]], dtype=np.float64)

    def raw_inputs(self):
        """Raw columns a row must have (as ``Preprocessing::raw_inputs``)."""
        out = [c.name for c in self.continuous]
        for c in self.pre["encoded"]:
            d = next((d for d in self.derive if d["name"] == c), None)
            raw = d["from"] if d else c
            if raw not in out:
                out.append(raw)
        return out

    def _clean(self, row, i):
        out = {}
        for t in self.continuous:
            out[t.name] = t.apply(_number(row.get(t.name), t.name, i))
        for c in self.categorical:
            v = _text(row.get(c["name"]))
            if v is None:
                v = c["fill"] if c["fill"] is not None else c["mode"]
            if c["boolean"]:
                b = _BOOL.get(v.strip().lower())
                if b is None:
                    raise ValueError(f"row {i}, column `{c['name']}`: expected yes/no (true/false, 1/0), found {v!r}")
                v = "true" if b else "false"
            out[c["name"]] = v
        for d in self.derive:
            out[d["name"]] = d["map"].get(out.get(d["from"], ""), d["default"])
        return out

    def _encode(self, clean, i):
        fs = self.features
        x = [clean[n] for n in fs["numeric"]]
        for c in fs["categorical"]:
            v, levels = clean[c["name"]], c["levels"]
            if v not in levels and fs["unseen"] == "error":
                raise ValueError(
                    f"row {i}, column `{c['name']}`: {v!r} was never seen in training (known: {', '.join(levels)})"
                )
            if fs["encoding"] == "ordinal":
                x.append(float(levels.index(v)) if v in levels else -1.0)
            else:
                kept = levels[1:] if fs["drop_first"] else levels
                x.extend(1.0 if v == level else 0.0 for level in kept)
        return x

    def features_of(self, data):
        """The model's feature matrix for a DataFrame of raw rows."""
        missing = [c for c in self.raw_inputs() if c not in data.columns]
        if missing:
            raise ValueError(f"the input lacks column(s) {', '.join(missing)} of the training schema")
        records = data.to_dict(orient="records")
        rows = [self._encode(self._clean(r, i + 1), i + 1) for i, r in enumerate(records)]
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(self.spec["features"]))

    def predict_proba(self, data):
        """Probabilities: one per row (binary, of class 1) or rows x classes, calibrated as
        model.json says (leadflow-core's ``Calibration::apply``)."""
        x = self.features_of(data)
        if len(x) == 0:
            return np.zeros((0,) if self.k == 2 else (0, self.k))
        p = self._own_proba(x)
        calibration = self.spec.get("calibration")
        if not calibration:
            return p
        maps = calibration["maps"]
        if len(maps) == 1:
            return _calibrate(maps[0], p)
        p = np.column_stack([_calibrate(m, p[:, j]) for j, m in enumerate(maps)])
        total = p.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, p / total, 1.0 / len(maps))

    def _own_proba(self, x):
        if self.kind in ("xgboost", "boosted"):
            import xgboost

            p = self.booster.predict(xgboost.DMatrix(x))
            p = np.clip(p.astype(np.float64), 0.0, 1.0)
            return p if self.k == 2 else p.reshape(len(x), self.k)
        z = x @ self.coef.T + self.intercept
        if self.k == 2:
            z = z[:, 0]
            with np.errstate(over="ignore"):
                e = np.exp(-np.abs(z))
            return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, data, params=None):
        if not isinstance(data, pd.DataFrame):
            data = pd.DataFrame(data)
        p = self.predict_proba(data)
        if self.k == 2:
            return pd.DataFrame({"probability": p, "label": (p >= self.threshold).astype(np.int64)})
        labels = self.target["labels"]
        out = pd.DataFrame({"label": [labels[j] for j in p.argmax(axis=1)] if len(p) else []})
        for j, name in enumerate(labels):
            out[f"p_{name}"] = p[:, j] if len(p) else []
        return out
