#!/bin/sh
# npm run package:rpm [-- --out DIR] — builds packaging/out/tessia-task-runner-<version>-1.<arch>.rpm with rpmbuild,
# from two sources: the checkout's files, and the npm packages of its lockfile (scripts/vendor-npm.sh,
# the same tarball as the Debian source package's orig-npm-cache; the build itself needs no network).
# On a Debian machine rpmbuild cannot see the build dependencies (they are Debian packages), so
# they are not checked (--nodeps); on an RPM distribution drop that flag.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
version=$(node -p "require('$repo/package.json').version")
out="$repo/packaging/out"
if [ "${1:-}" = --out ] && [ -n "${2:-}" ]; then out=$(realpath -m "$2"); fi
mkdir -p "$out"
top="$out/rpmbuild"
rm -rf "$top"
mkdir -p "$top/SOURCES" "$top/SPECS"
cd "$repo"
git ls-files -z --cached --others --exclude-standard \
  | tar --null --files-from=- --ignore-failed-read --transform "s,^,tessia-task-runner-$version/," -czf "$top/SOURCES/tessia-task-runner-$version.tar.gz" 2>/dev/null
sh scripts/vendor-npm.sh "$out/tessia-task-runner_$version.orig-npm-cache.tar.xz"
cp "$out/tessia-task-runner_$version.orig-npm-cache.tar.xz" "$top/SOURCES/tessia-task-runner-$version-npm-cache.tar.xz"
cp packaging/rpm/tessia-task-runner.spec "$top/SPECS/"
rpmbuild --nodeps --define "_topdir $top" --define "version_from_package $version" -bb "$top/SPECS/tessia-task-runner.spec"
find "$top/RPMS" -name '*.rpm' -exec mv {} "$out/" \;
rm -rf "$top"
ls "$out"/*.rpm
