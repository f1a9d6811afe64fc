#!/bin/sh
# npm run package:deb [-- --source-only] [-- --out DIR] — builds the Debian source package of this
# checkout (its tracked files and uncommitted edits), then the binary package from that source
# package, as a distribution's builder would, and leaves in packaging/out/ (or DIR):
#   tessia-task-runner_<v>.orig.tar.xz            the sources (git ls-files)
#   tessia-task-runner_<v>.orig-npm-cache.tar.xz  the npm packages of the lockfile (scripts/vendor-npm.sh)
#   tessia-task-runner_<v>-1.debian.tar.xz, tessia-task-runner_<v>-1.dsc
#   tessia-task-runner_<v>-1_<arch>.deb (and its -dbgsym .deb)   unless --source-only
#   cockpit-tessia-task-runner_<v>-1_all.deb    the Cockpit page, likewise
# Making the npm tarball is the only step that uses the network; the binary build needs none.
# Every file is dated by the last commit (SOURCE_DATE_EPOCH; the changelog's date), so the same
# checkout gives the same source package, and the same source package the same .deb.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/packaging/out"
source_only=
while [ $# -gt 0 ]; do
  case $1 in
    --source-only) source_only=1 ;;
    --out) out=$(realpath -m "$2") && shift ;;
    *) echo "usage: $0 [--source-only] [--out DIR]" >&2 && exit 2 ;;
  esac
  shift
done
name=tessia-task-runner
version=$(node -p "require('$repo/package.json').version")
work="$out/build"
tree="$work/$name-$version"
SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct)
export SOURCE_DATE_EPOCH
component="${name}_$version.orig-npm-cache.tar.xz"
rm -rf "$work"
mkdir -p "$tree"
# The npm tarball of an earlier build, which vendor-npm.sh keeps if it was made from this lockfile.
[ ! -f "$out/$component" ] || mv "$out/$component" "$work/$component"
rm -f "$out/${name}_$version".orig*.tar.xz "$out/${name}_$version"-1.* "$out/${name}"*_"$version"-1_*.deb "$out/cockpit-${name}_$version"-1_*.deb

deterministic_tar() {
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --mode=u=rwX,go=rX --format=gnu "$@"
}
cd "$repo"
git ls-files -z --cached --others --exclude-standard \
  | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null \
  | tar -xf - -C "$tree"
deterministic_tar -C "$work" -cf - "$name-$version" | xz -T1 -6 >"$work/${name}_$version.orig.tar.xz"
sh scripts/vendor-npm.sh "$work/$component"
# The tree as dpkg-source -x makes it: a component's tarball is unpacked into a directory of its name.
tar -xJf "$work/$component" -C "$tree"

cp -r packaging/deb/debian "$tree/debian"
cp units/tessia-task-runner.sysusers "$tree/debian/tessia-task-runner.sysusers"
cp units/tessia-task-runner.tmpfiles "$tree/debian/tessia-task-runner.tmpfiles"
cat >"$tree/debian/changelog" <<CHANGES
$name ($version-1) unstable; urgency=medium

  * Release $version.

 -- tessia-task-runner developers <tessia-task-runner@lists.example.org>  $(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")
CHANGES
(cd "$work" && dpkg-source --build "$name-$version")
mv "$work/${name}_$version".orig*.tar.xz "$work/${name}_$version-1".debian.tar.xz "$work/${name}_$version-1.dsc" "$out/"

if [ -z "$source_only" ]; then
  binary="$work/binary"
  mkdir -p "$binary"
  dpkg-source --extract "$out/${name}_$version-1.dsc" "$binary/$name-$version"
  (cd "$binary/$name-$version" && dpkg-buildpackage --build=binary --no-sign)
  mv "$binary"/*.deb "$out/"
fi
rm -rf "$work"
ls "$out/${name}_$version"* "$out/$name"*"_$version"-1_*.deb "$out/cockpit-${name}_$version"-1_*.deb 2>/dev/null || true
