#!/usr/bin/env bash
# Check every `uses:` of the workflows against the action's own repository: each is pinned to a
# full 40-hex commit SHA with its release in a comment (`uses: owner/repo@<sha> # vX.Y.Z`), the
# commit exists upstream, and the commented tag (or branch) points at exactly that commit.
#
#   .github/scripts/verify-action-pins.sh [WORKFLOW...]   asks GitHub (git; the lint job)
#   LEADFLOW_ACTION_MIRRORS=DIR .github/scripts/...       reads local git mirrors instead, one
#                                                         per action at DIR/<owner>+<repo>/repo
# Default: every file in .github/workflows.
#
# Exit 1 with one line per problem. Needs git (and network access without mirrors).
set -euo pipefail
[ $# -gt 0 ] || cd "$(dirname "$0")/../.."

mirrors="${LEADFLOW_ACTION_MIRRORS:-}"
if [ $# -gt 0 ]; then files=("$@"); else files=(.github/workflows/*.yml); fi
status=0
checked=0
fail() { echo "error: $*" >&2; status=1; }

# The commit a ref (tag or branch) names upstream, empty if the ref does not exist.
ref_commit() {
  local repo=$1 ref=$2
  if [ -n "$mirrors" ]; then
    git --git-dir="$mirrors/${repo/\//+}/repo" rev-parse --verify --quiet "$ref^{commit}" 2>/dev/null || true
  else
    # Annotated tags list their commit as <tag>^{}; prefer it.
    local out
    out="$(git ls-remote "https://github.com/$repo" "refs/tags/$ref" "refs/tags/$ref^{}" "refs/heads/$ref")"
    { grep -F "refs/tags/$ref^{}" <<<"$out" || grep -F "refs/tags/$ref" <<<"$out" || grep -F "refs/heads/$ref" <<<"$out" || true; } | head -n1 | cut -f1
  fi
}

commit_exists() {
  local repo=$1 sha=$2
  if [ -n "$mirrors" ]; then
    git --git-dir="$mirrors/${repo/\//+}/repo" cat-file -e "$sha^{commit}" 2>/dev/null
  else
    # GitHub serves any reachable commit by SHA to a fetch of that SHA.
    local tmp
    tmp="$(mktemp -d)"
    git -C "$tmp" init -q
    local rc=0
    git -C "$tmp" fetch -q --depth=1 "https://github.com/$repo" "$sha" 2>/dev/null || rc=1
    rm -rf "$tmp"
    return $rc
  fi
}

while IFS= read -r line; do
  file=${line%%:*}
  rest=${line#*:}
  lineno=${rest%%:*}
  text=${rest#*:}
  ref=$(sed -E 's/^[[:space:]-]*uses:[[:space:]]*//; s/[[:space:]]+#.*$//' <<<"$text")
  comment=$(sed -nE 's/.*#[[:space:]]*([^[:space:]]+).*/\1/p' <<<"$text")
  where="$file:$lineno"
  case "$ref" in
    ./*|docker://*) continue ;;
  esac
  action=${ref%@*}
  sha=${ref#*@}
  repo=$(cut -d/ -f1-2 <<<"$action")
  if ! [[ "$sha" =~ ^[0-9a-f]{40}$ ]]; then
    fail "$where: $action@$sha is not pinned to a full commit SHA"
    continue
  fi
  if [ -z "$comment" ]; then
    fail "$where: $action@$sha has no release comment (# vX.Y.Z)"
    continue
  fi
  if ! commit_exists "$repo" "$sha"; then
    fail "$where: commit $sha does not exist in $repo"
    continue
  fi
  at=$(ref_commit "$repo" "$comment")
  if [ -z "$at" ]; then
    fail "$where: $repo has no tag or branch $comment"
  elif [ "$at" != "$sha" ]; then
    fail "$where: $repo $comment is $at, not the pinned $sha"
  else
    checked=$((checked + 1))
  fi
done < <(grep -HnE '^[[:space:]-]*uses:' "${files[@]}")

echo "$checked action pin(s) verified against their repositories"
exit $status
