#!/usr/bin/env bash
# leadflow's test command: installs what a fresh Debian machine lacks, then runs every test.
#
#   ./ci.sh               install prerequisites, lint the workflows, run `cargo test --workspace`
#   ./ci.sh --setup-only  only install the build prerequisites (before `cargo run -p orchestrator`)
#
# Build prerequisites (Debian packages): cmake, libclang-dev (XGBoost's C++ build and bindgen),
# g++. Test extras, from PyPI into virtualenvs under target/ (rebuilt when missing): the Python
# xgboost package (interop test) in target/py, and mlflow (live-server tests) in target/mlflow.
# The workflow files are parsed and checked by a test (actionlint's PyPI package only builds by
# downloading a binary from GitHub, which CI cannot reach).
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
[ "${1:-}" = "--setup-only" ] && exit 0

# Python test extras, pinned.
PY=target/py/bin/python
if ! "$PY" -c 'import xgboost' >/dev/null 2>&1; then
  say "creating target/py with xgboost-cpu (PyPI)"
  mkdir -p target
  python3 -m venv target/py
  if ! "$PY" -m pip install -q --disable-pip-version-check xgboost-cpu==3.2.0; then
    if [ "${CI:-}" = "true" ]; then echo "pip install failed" >&2; exit 1; fi
    echo "warning: could not install the Python test extras; the interop test will be skipped" >&2
  fi
fi
export LEADFLOW_PYTHON="$PWD/target/py/bin/python"

# A real MLflow server for the live-server tests (pinned; about a minute on first use).
if ! target/mlflow/bin/mlflow --version >/dev/null 2>&1; then
  say "creating target/mlflow with mlflow==3.5.1 (PyPI)"
  python3 -m venv target/mlflow
  if ! target/mlflow/bin/pip install -q --disable-pip-version-check mlflow==3.5.1 "sqlalchemy<2.1"; then
    if [ "${CI:-}" = "true" ]; then echo "pip install mlflow failed" >&2; exit 1; fi
    echo "warning: could not install mlflow; the live-server tests will try again or skip" >&2
  fi
fi
[ -x target/mlflow/bin/mlflow ] && export LEADFLOW_MLFLOW="$PWD/target/mlflow/bin/mlflow"

# The real public dataset, when it sits beside the project (as in CI).
if [ -z "${LEADFLOW_REAL_DATA:-}" ] && [ -f ../shared/data/raw_data.csv ]; then
  export LEADFLOW_REAL_DATA="$(cd ../shared/data && pwd)/raw_data.csv"
fi
echo "real dataset: ${LEADFLOW_REAL_DATA:-not found (real-data tests are skipped)}"

say "cargo test --workspace"
export RUST_BACKTRACE=0
cargo test --workspace --locked
