#!/bin/sh
# npm run package:deb — builds packaging/out/tessia-task-runner_<version>_<arch>.deb from this
# checkout (its tracked files and uncommitted edits) with debhelper.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
version=$(node -p "require('$repo/package.json').version")
out="$repo/packaging/out"
build="$out/build/tessia-task-runner-$version"
rm -rf "$out/build"
mkdir -p "$build"
cd "$repo"
git ls-files -z --cached --others --exclude-standard \
  | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null \
  | tar -xf - -C "$build"
cp -r packaging/deb/debian "$build/debian"
cp units/tessia-task-runner.sysusers "$build/debian/tessia-task-runner.sysusers"
cp units/tessia-task-runner.tmpfiles "$build/debian/tessia-task-runner.tmpfiles"
cat > "$build/debian/changelog" <<CHANGES
tessia-task-runner ($version) unstable; urgency=medium

  * Release $version.

 -- tessia-task-runner developers <tessia-task-runner@lists.example.org>  $(date -R)
CHANGES
cd "$build"
dpkg-buildpackage --build=binary --no-sign
cd "$repo"
mv "$out"/build/*.deb "$out/"
rm -rf "$out/build"
ls "$out"/*.deb
