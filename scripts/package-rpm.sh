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
cp units/tessia-task-runner.sysusers "$top/SOURCES/"
# The spec uses Fedora's systemd and sysusers macros (systemd-rpm-macros); a host without them
# (Debian) gets the equivalents in packaging/rpm/compat, so the scriptlets are the same.
set --
if [ -z "$(rpm --eval '%{?systemd_post:1}')" ]; then
  set -- --load "$repo/packaging/rpm/compat/macros.systemd" --define "_tessia_rpm_compat_dir $repo/packaging/rpm/compat"
fi
# rpm's brp-compress (man pages) is a bash script run as /bin/sh: where that is dash (Debian), it
# stops at `read -d` and leaves the pages uncompressed. Run it with bash.
brp_compress=$(rpm --eval '%{?__brp_compress}')
case $brp_compress in
  /*) set -- "$@" --define "__brp_compress bash $brp_compress" ;;
esac
rpmbuild --nodeps "$@" --define "_topdir $top" --define "version_from_package $version" -bb "$top/SPECS/tessia-task-runner.spec"
find "$top/RPMS" -name '*.rpm' -exec mv {} "$out/" \;
rm -rf "$top"
ls "$out"/*.rpm
