# syntax=docker/dockerfile:1
# The `leadflow` command in a slim runtime image. Built by the Dagger engine
# (`cargo run -p orchestrator -- --engine dagger`) or by hand: `docker build -t leadflow .`

# --- toolchain + cargo-chef -------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS chef
# XGBoost's C++ library is built by xgboost-rs-sys with cmake; bindgen needs libclang.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libclang-dev clang g++ make git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# --- dependency recipe ------------------------------------------------------------------------
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# --- build: dependencies first (cached layer), then the workspace -----------------------------
FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --recipe-path recipe.json -p orchestrator
COPY . .
RUN cargo build --release --locked -p orchestrator --bin leadflow \
 && mkdir -p /out \
 && cp target/release/leadflow /out/

# --- runtime base: the stage binaries, nothing else -------------------------------------------
FROM debian:bookworm-slim AS base
# libgomp1: XGBoost's OpenMP runtime. Nothing else is needed at run time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 leadflow \
 && useradd --create-home --uid 10001 --gid 10001 leadflow
COPY --from=builder /out/ /usr/local/bin/
WORKDIR /app
COPY params.toml /app/params.toml
COPY data/sample/ /app/data/sample/
ARG GIT_COMMIT=""
# The orchestrator passes its code identity so stage fingerprints agree inside and outside.
ARG LEADFLOW_CODE_ID=""
ENV LEADFLOW_GIT_COMMIT=${GIT_COMMIT} \
    LEADFLOW_CODE_ID=${LEADFLOW_CODE_ID} \
    MLFLOW_TRACKING_URI=sqlite:////app/mlruns/mlflow.db \
    RUST_BACKTRACE=0
RUN mkdir -p /app/artifacts /app/mlruns && chown -R leadflow:leadflow /app
USER 10001:10001

# --- serve: one released model, served (the release workflow builds this target with the
# validated model directory at ./model; `docker build --target serve .`) ------------------------
FROM base AS serve
COPY --chown=10001:10001 model/ /app/model/
EXPOSE 5001
CMD ["leadflow", "model", "serve", "--model-dir", "/app/model", "--host", "0.0.0.0", "--port", "5001"]

# --- runtime (the default target): what the pipeline's stages run in --------------------------
FROM base AS runtime
# The Dagger engine runs each stage as `leadflow stage <name>`; by default show the commands.
CMD ["leadflow", "--help"]
