#!/bin/sh
# Checks a built RPM: every file the package must install is in it, and its scriptlets are there.
set -eu
rpm_file=$1
list=$(rpm -qlp "$rpm_file")
missing=0
for path in \
  /usr/bin/tessia-task-runner \
  /usr/lib/tessia-task-runner/dist/cli/main.js \
  /usr/lib/tessia-task-runner/dist/machines/echo/main.js \
  /usr/lib/tessia-task-runner/dist/machines/tessia/host.py \
  /usr/lib/tessia-task-runner/node_modules/better-sqlite3/build/Release/better_sqlite3.node \
  /usr/lib/tessia-task-runner/package.json \
  /usr/lib/systemd/system/tessia-task-runner.service \
  /usr/lib/systemd/system/tessia-tasks.slice \
  /usr/lib/systemd/system/tessia-task-runner.socket \
  /usr/lib/systemd/system/tessia-task-runner-starter.socket \
  /usr/lib/systemd/system/tessia-task-runner-starter.service \
  /usr/lib/tessia-task-runner/dist/starter/main.js \
  /usr/lib/systemd/system/tessia-task-runner-files.socket \
  /usr/lib/systemd/system/tessia-task-runner-files.service \
  /usr/lib/tessia-task-runner/dist/files/main.js \
  /usr/lib/systemd/journald@tessia.conf.d/60-tessia-task-runner.conf \
  /usr/lib/sysusers.d/tessia-task-runner.conf \
  /usr/lib/tmpfiles.d/tessia-task-runner.conf \
  /usr/share/polkit-1/rules.d/60-tessia-task-runner.rules \
  /etc/tessia-task-runner/config.yaml; do
  if ! printf '%s\n' "$list" | grep -qx "$path"; then
    echo "missing from $rpm_file: $path" >&2
    missing=1
  fi
done
# The tessia host is run as `python -I -B host.py`: a plain file, not a program.
rpm -qp --dump "$rpm_file" | awk '$1 == "/usr/lib/tessia-task-runner/dist/machines/tessia/host.py" { print $5 }' | grep -qx 0100644 \
  || { echo "host.py is not mode 0644" >&2; missing=1; }
rpm -qp --configfiles "$rpm_file" | grep -qx /etc/tessia-task-runner/config.yaml || { echo "config.yaml is not %config" >&2; missing=1; }
scripts=$(rpm -qp --scripts "$rpm_file")
for scriptlet in 'postinstall scriptlet' 'preuninstall scriptlet' 'postuninstall scriptlet'; do
  printf '%s\n' "$scripts" | grep -q "$scriptlet" || { echo "no $scriptlet" >&2; missing=1; }
done
# The host's journald is left alone: no drop-in of ours for it.
if printf '%s\n' "$list" | grep -q '^/usr/lib/systemd/journald\.conf\.d/'; then echo "a drop-in for the host's journald" >&2; missing=1; fi
for scriptlet in 'preinstall scriptlet' 'posttrans scriptlet'; do
  printf '%s\n' "$scripts" | grep -q "$scriptlet" || { echo "no $scriptlet" >&2; missing=1; }
done
# The manual pages, compressed or not (brp-compress decides).
for page in man8/tessia-task-runner.8 man5/tessia-task-runner.yaml.5; do
  printf '%s\n' "$list" | grep -Eqx "/usr/share/man/$page(\.gz|\.xz|\.bz2|\.zst)?" || { echo "missing from $rpm_file: /usr/share/man/$page" >&2; missing=1; }
done
if printf '%s\n' "$list" | grep -q '/obj.target/'; then echo "build leftovers in the package" >&2; missing=1; fi
[ "$missing" -eq 0 ] && echo "rpm file list OK: $(printf '%s\n' "$list" | wc -l) files"
exit "$missing"
