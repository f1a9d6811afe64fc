#!/bin/sh
# scripts/build-release-deb.sh COMMIT [OUTDIR] — builds the .deb of an earlier release (e.g. 0.1.0,
# 9e836ac) from git history, with that commit's own scripts/package-deb.sh, and prints its path.
#
# The commit's tree is exported (git archive) into a temporary directory made a git repository of its
# own, because package-deb.sh lists the files to package with `git ls-files`; nothing is registered in
# this repository (no worktree to prune after an interrupted build). Its build runs `npm ci` from the
# registry, as that release's did.
#
# The result is kept in OUTDIR/<full commit id>/ (default: packaging/out/releases): a commit's tree
# never changes, so a second run returns the same file without building, and only another commit id
# builds again. A build lands there whole or not at all (renamed into place at the end).
set -eu
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 COMMIT [OUTDIR]" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$repo" rev-parse --verify --quiet "$1^{commit}") || { echo "$0: no commit $1 in $repo" >&2; exit 2; }
out=${2:-$repo/packaging/out/releases}
cache="$out/$commit"

find_deb() {
  # The binary package only (no -dbgsym); its name carries the version (and Debian revision, if any).
  find "$1" -maxdepth 1 -name 'tessia-task-runner_*.deb' 2>/dev/null | head -n 1
}

deb=$(find_deb "$cache")
if [ -n "$deb" ]; then
  echo "$deb"
  exit 0
fi

mkdir -p "$out"
work=$(mktemp -d "$out/.build-$commit.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
git -C "$repo" archive --format=tar --prefix=tree/ "$commit" | tar -xf - -C "$work"
(
  cd "$work/tree"
  git init --quiet
  git add --all
  sh scripts/package-deb.sh
) >&2
mkdir "$work/result"
built=$(find_deb "$work/tree/packaging/out")
[ -n "$built" ] || { echo "$0: the build of $commit made no tessia-task-runner_*.deb" >&2; exit 1; }
mv "$built" "$work/result/"
echo "$commit" > "$work/result/commit"
# Another run may have finished first: its result is the same tree's, keep it.
mv -T "$work/result" "$cache" 2>/dev/null || true
find_deb "$cache"
