#!/usr/bin/env bash
# The release workflow's first step: find the successful CI run (workflow ci.yml) of the commit
# being released, and whether it exported a validated model (the `model` artifact exists only
# when the run promoted one and the validate job passed on it).
#
#   .github/scripts/validated-run.sh SHA
#
# Writes `run_id=<id>` to $GITHUB_OUTPUT. Needs the GitHub CLI (`gh`, on GitHub's runners) with
# GH_TOKEN; LEADFLOW_GH overrides the command (the workflow test uses a fake one).
set -euo pipefail
sha="${1:?usage: validated-run.sh COMMIT_SHA}"
gh="${LEADFLOW_GH:-gh}"
out="${GITHUB_OUTPUT:-/dev/stdout}"

run_id="$($gh run list --workflow ci.yml --commit "$sha" --status success --limit 1 --json databaseId --jq '.[0].databaseId // empty')"
if [ -z "$run_id" ]; then
  echo "error: no successful CI run of $sha (workflow ci.yml); release a commit whose CI passed" >&2
  exit 1
fi
artifacts="$($gh api "repos/{owner}/{repo}/actions/runs/$run_id/artifacts" --jq '[.artifacts[].name] | join(" ")')"
case " $artifacts " in
  *" model "*) ;;
  *)
    echo "error: CI run $run_id of $sha promoted no model (no \`model\` artifact; its report says why): nothing to release" >&2
    exit 1 ;;
esac
echo "run_id=$run_id" >> "$out"
echo "CI run $run_id validated the model of $sha"
