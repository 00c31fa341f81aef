#!/usr/bin/env bash
# The pipeline job's data step, like the original pipeline's `dvc pull`: fetch the pinned public
# raw file (size and sha256 checked against data/raw/raw_data.csv.lock) and use it; when the
# pull fails, fall back to the committed synthetic sample and say so in the job summary.
#
# Writes `raw=<path>` and `source=pinned|sample` to $GITHUB_OUTPUT and one line to
# $GITHUB_STEP_SUMMARY. LEADFLOW_PULL overrides the pull command and LEADFLOW_CHECKOUT the folder
# it runs in (the workflow test uses both).
set -uo pipefail
cd "${LEADFLOW_CHECKOUT:-$(dirname "$0")/../..}" || exit 1

PULL="${LEADFLOW_PULL:-cargo run --quiet -p orchestrator -- pull}"
LOCK=data/raw/raw_data.csv.lock
PINNED=data/raw/raw_data.csv
SAMPLE=data/sample/raw_data.csv
out="${GITHUB_OUTPUT:-/dev/stdout}"
summary="${GITHUB_STEP_SUMMARY:-/dev/stderr}"

if $PULL --lock "$LOCK" && [ -f "$PINNED" ]; then
  echo "raw=$PINNED" >> "$out"
  echo "source=pinned" >> "$out"
  echo "**Raw data:** the pinned public file \`$PINNED\` (size and sha256 verified against \`$LOCK\`)." >> "$summary"
else
  echo "raw=$SAMPLE" >> "$out"
  echo "source=sample" >> "$out"
  echo "⚠️ **Raw data:** pulling the pinned public file failed (see the log of this step); this run used the committed synthetic sample \`$SAMPLE\`, so its metrics are not the real data's." >> "$summary"
fi
