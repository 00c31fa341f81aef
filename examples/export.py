"""Export a table that scikit-learn ships inside its wheel to examples/<name>/<name>.csv in
leadflow's raw-table form: one header row, snake_case feature names, a `sample_id`, the target
last. Nothing is downloaded: the loaders read the files from the installed package.

    target/py/bin/python examples/export.py breast_cancer|wine|digits [OUT_DIR]

breast_cancer and wine write the target as its class name (malignant/benign, class_0..class_2),
digits as the digit (0..9). Values are printed with Python's repr, which round-trips floats.
"""

import csv
import pathlib
import sys

import sklearn
from sklearn import datasets

LOADERS = {
    "breast_cancer": (datasets.load_breast_cancer, "diagnosis", True),
    "wine": (datasets.load_wine, "cultivar", True),
    "digits": (datasets.load_digits, "digit", False),
}

name = sys.argv[1]
load, target, as_name = LOADERS[name]
out_dir = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else pathlib.Path(__file__).parent / name
out = out_dir / f"{name}.csv"
data = load()
names = [n.replace(" ", "_") for n in data.feature_names]
with out.open("w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["sample_id", *names, target])
    for i, (row, y) in enumerate(zip(data.data, data.target)):
        label = data.target_names[y] if as_name else int(y)
        w.writerow([f"S{i:04d}" if name == "digits" else f"S{i:03d}", *(repr(float(v)) for v in row), label])
print(f"wrote {len(data.target)} rows to {out} (scikit-learn {sklearn.__version__})")
