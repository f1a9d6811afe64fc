#!/bin/sh
# packaging/npm-offline-build.sh CACHE_DIR — the build of the Debian and RPM packages (debian/rules,
# the spec's %build), with no network: the npm packages come from CACHE_DIR (the tarball of
# scripts/vendor-npm.sh, unpacked), the native addons are compiled from their sources against the
# installed node's headers with the caller's CFLAGS/CXXFLAGS/LDFLAGS, then the JavaScript is built
# and the development packages are removed. Leaves node_modules/ and dist/ in the current directory.
set -eu
here=$(dirname "$0")
# Only these settings: nothing of the builder's ~/.npmrc or the machine's npmrc (a registry, a
# proxy, a nodedir) changes what is built.
no_npmrc=$(mktemp)
# Only the tarballs, each found by the digest the lockfile gives: nothing else the tarball may hold
# (an index that names a package by its URL, a registry document) reaches npm.
cache=$(mktemp -d)
trap 'rm -rf "$no_npmrc" "$cache"' EXIT
mkdir "$cache/_cacache"
cp -R "$1/_cacache/content-v2" "$cache/_cacache/"
export npm_config_userconfig="$no_npmrc" npm_config_globalconfig=/dev/null
export npm_config_offline=true npm_config_cache="$cache" npm_config_logs_max=0
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
# Addons from source (better-sqlite3's prebuild-install would download a binary) against the headers
# of the node that builds (node-gyp would download them): /usr/include/node.
export npm_config_build_from_source=true npm_config_nodedir="${NODEDIR:-/usr}"

# The lockfile with each tarball's URL, so npm takes the tarballs from the cache by their integrity
# instead of asking the registry (scripts/npm-lockfile.mjs). npm prefers npm-shrinkwrap.json to
# package-lock.json: the upstream file stays as it is.
node "$here/../scripts/npm-lockfile.mjs" resolved package-lock.json >npm-shrinkwrap.json
# No install script runs here: esbuild's (a development tool of the tests, not of this build) would
# fetch its binary for an architecture the cache does not hold. The two addons the package ships
# are built next, from source.
npm ci --ignore-scripts
npm rebuild better-sqlite3 unix-dgram
npm run build
npm prune --omit=dev
rm -f npm-shrinkwrap.json
