"""Load leadflow models with the real MLflow client and print what they predict, as JSON.

usage: mlflow_load.py TRACKING_URI RAW_CSV ENCODED_CSV URI [URI ...]

For each URI: mlflow.pyfunc.load_model(URI).predict(raw rows read by pandas), the flavours and
the signature's input columns; for a model with the xgboost flavour also
mlflow.xgboost.load_model(URI) on the encoded features (the shape of X_test.csv).
"""
import json
import sys
import warnings

warnings.filterwarnings("ignore")

import mlflow  # noqa: E402
import pandas as pd  # noqa: E402

tracking, raw_csv, encoded_csv, *uris = sys.argv[1:]
mlflow.set_tracking_uri(tracking)
mlflow.set_registry_uri(tracking)
raw = pd.read_csv(raw_csv)
out = {}
for uri in uris:
    model = mlflow.pyfunc.load_model(uri)
    # As a user would: MLflow refuses int64 data for a `double` column, so cast those.
    doubles = [c.name for c in model.metadata.get_input_schema().inputs if getattr(c.type, "name", None) == "double"]
    pred = model.predict(raw.astype({c: "float64" for c in doubles if c in raw}))
    got = {
        "flavors": sorted(model.metadata.flavors),
        "inputs": [c.name for c in model.metadata.get_input_schema().inputs],
        "columns": list(pred.columns),
        "predictions": {c: pred[c].tolist() for c in pred.columns},
    }
    if "xgboost" in model.metadata.flavors:
        import xgboost

        booster = mlflow.xgboost.load_model(uri)
        x = pd.read_csv(encoded_csv)
        got["xgboost_flavor"] = booster.predict(xgboost.DMatrix(x.to_numpy())).tolist()
    out[uri] = got
print(json.dumps(out))
