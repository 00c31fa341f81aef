"""Export the Breast Cancer Wisconsin (Diagnostic) table that scikit-learn ships inside its wheel
(sklearn/datasets/data/breast_cancer.csv) to breast_cancer.csv in leadflow's raw-table form:
one header row, snake_case feature names, a `sample_id` and the `diagnosis` as text.

Nothing is downloaded: load_breast_cancer reads the file from the installed package.
Run with the Python the tests install:  target/py/bin/python examples/breast_cancer/export.py
"""

import csv
import pathlib

import sklearn
from sklearn.datasets import load_breast_cancer

out = pathlib.Path(__file__).with_name("breast_cancer.csv")
data = load_breast_cancer()
names = [n.replace(" ", "_") for n in data.feature_names]
with out.open("w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["sample_id", *names, "diagnosis"])
    for i, (row, y) in enumerate(zip(data.data, data.target)):
        w.writerow([f"S{i:03d}", *(repr(float(v)) for v in row), data.target_names[y]])
print(f"wrote {len(data.target)} rows to {out} (scikit-learn {sklearn.__version__})")
