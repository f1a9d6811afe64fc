#!/bin/sh
# scripts/vendor-npm.sh OUTPUT.tar.xz — the npm packages of package-lock.json as a tarball a build
# can install from with no network: the only step of a package build that reaches the registry.
#
# The tarball holds one directory, npm-cache/, which is an npm cache (`npm ci --offline --cache
# npm-cache`) reduced to the content of the lockfile's packages: each file is a package's tarball
# exactly as the registry served it, named by its digest, so npm checks every package against the
# lockfile's integrity when it installs from it. The cache's index (request URLs, dates) and the
# registry's package documents are left out: they change from one day to the next, the tarballs do
# not, so the same lockfile always gives the same tarball. packaging/npm-offline-build.sh installs
# from it. Packages for another platform only (esbuild's binaries, fsevents: optional, and needed
# by no package build) are left out too, so one tarball serves every architecture.
# npm-cache/package-lock.json.sha256 names the lockfile it was made from: an OUTPUT made from this
# lockfile is kept as it is. Its files are dated by the lockfile's last commit: the tarball changes
# only with the lockfile.
set -eu
output=$(realpath "$1")
repo=$(cd "$(dirname "$0")/.." && pwd)
digest=$(sha256sum "$repo/package-lock.json" | cut -d' ' -f1)
if [ -f "$output" ] && [ "$(tar -xJOf "$output" npm-cache/package-lock.json.sha256 2>/dev/null)" = "$digest" ]; then
  exit 0
fi
date=$(git -C "$repo" log -1 --format=%ct -- package-lock.json 2>/dev/null || true)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/project"
cp "$repo/package.json" "$repo/package-lock.json" "$work/project/"
# No install scripts: nothing is built here, only fetched.
(cd "$work/project" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error --cache "$work/fetched" >/dev/null)
node "$repo/scripts/npm-lockfile.mjs" cache-content "$work/project/package-lock.json" "$work/fetched" "$work/out/npm-cache"
echo "$digest" >"$work/out/npm-cache/package-lock.json.sha256"
tar --sort=name --mtime="@${date:-0}" --owner=0 --group=0 --numeric-owner --mode=u=rwX,go=rX \
  --format=gnu -C "$work/out" -cf - npm-cache | xz -T1 -6 >"$output"
