#!/bin/sh
# Checks a built RPM: every file the package must install is in it, its scriptlets are those of
# the systemd and sysusers macros (packaging/rpm/tessia-task-runner.spec) and keep the tasks slice
# out of them, and rpmlint finds nothing (packaging/rpm/rpmlint.toml and
# tessia-task-runner.rpmlintrc say what it is told to accept, and why).
# Without rpm (or rpmlint) it says so and skips; with TESSIA_REQUIRE_ALL_SUITES=1 (CI) it fails.
set -eu
rpm_file=$1
here=$(cd "$(dirname "$0")" && pwd)

missing_tool() {
  if [ "${TESSIA_REQUIRE_ALL_SUITES:-}" = 1 ]; then
    echo "check-files.sh: $1 is not installed (apt-get install $1), and TESSIA_REQUIRE_ALL_SUITES=1" >&2
    exit 1
  fi
  echo "check-files.sh: SKIPPED $2: $1 is not installed (apt-get install $1)" >&2
}

if ! command -v rpm >/dev/null; then
  missing_tool rpm "every check of $rpm_file"
  exit 0
fi

list=$(rpm -qlp "$rpm_file")
missing=0
fail() {
  echo "$rpm_file: $*" >&2
  missing=1
}
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
  /usr/share/doc/tessia-task-runner/admin.md \
  /etc/tessia-task-runner/config.yaml; do
  printf '%s\n' "$list" | grep -qx "$path" || fail "missing: $path"
done
# The tessia host is run as `python -I -B host.py`: a plain file, not a program.
rpm -qp --dump "$rpm_file" | awk '$1 == "/usr/lib/tessia-task-runner/dist/machines/tessia/host.py" { print $5 }' | grep -qx 0100644 \
  || fail "host.py is not mode 0644"
rpm -qp --configfiles "$rpm_file" | grep -qx /etc/tessia-task-runner/config.yaml || fail "config.yaml is not %config"
# The host's journald is left alone: no drop-in of ours for it.
if printf '%s\n' "$list" | grep -q '^/usr/lib/systemd/journald\.conf\.d/'; then fail "a drop-in for the host's journald"; fi
# The manual pages, compressed or not (brp-compress decides).
for page in man8/tessia-task-runner.8 man5/tessia-task-runner.yaml.5; do
  printf '%s\n' "$list" | grep -Eqx "/usr/share/man/$page(\.gz|\.xz|\.bz2|\.zst)?" || fail "missing: /usr/share/man/$page"
done
if printf '%s\n' "$list" | grep -q '/obj.target/\|/build/Release/obj/\|\.a$'; then fail "build leftovers in the package"; fi
# The Cockpit page: a package of its own, built with this one and beside it; none of it in this one.
if printf '%s\n' "$list" | grep -q '/dist/cockpit'; then fail "the Cockpit page is in the runner's package"; fi
cockpit_rpm="$(dirname "$rpm_file")/cockpit-tessia-task-runner-$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$rpm_file").noarch.rpm"
if [ ! -f "$cockpit_rpm" ]; then
  fail "no $cockpit_rpm beside it"
  cockpit_rpm=
else
  for file in manifest.json index.html main.js patternfly.css; do
    rpm -qlp "$cockpit_rpm" | grep -qx "/usr/share/cockpit/tessia-task-runner/$file" || fail "$cockpit_rpm lacks $file"
  done
  # With administrative access the page drives the runner as root: none of it writable but by root.
  rpm -qp --dump "$cockpit_rpm" | awk '$6 != "root" || $7 != "root" || substr($5, length($5) - 1) ~ /[2367]/ { print }' | grep -q . \
    && fail "$cockpit_rpm has files not owned by root, or writable by others"
fi

# Scriptlets. The units the macros get: the runner's, never the tasks slice. Each macro has two
# known expansions: systemd >= 249's (through systemd-update-helper, as Fedora and EL9 build) and
# the older direct systemctl calls (EL8).
units='tessia-task-runner-starter.socket tessia-task-runner-starter.service tessia-task-runner-files.socket tessia-task-runner-files.service tessia-task-runner.socket tessia-task-runner.service'
scriptlet() { rpm -qp --qf "%{$1}" "$rpm_file"; }
expect() { # tag, description, then the fixed strings of which one must be in the scriptlet
  tag=$1 what=$2
  shift 2
  body=$(scriptlet "$tag")
  for form in "$@"; do
    if printf '%s\n' "$body" | grep -qF -- "$form"; then return 0; fi
  done
  fail "$tag has no $what (expected one of: $*)"
}
expect PREIN 'runner user from the sysusers file' \
  "useradd -r -g 'tessia-task-runner' -d '/var/lib/tessia-task-runner' -s '/usr/sbin/nologin' -c 'tessia-mesh Task Runner' 'tessia-task-runner'"
expect PREIN 'admin group from the sysusers file' "groupadd -r 'tessia-task-runner-admin'"
expect POSTIN '%systemd_post (presets on a first install)' \
  "systemd-update-helper install-system-units $units" "systemctl --no-reload preset $units"
expect POSTIN '%tmpfiles_create' 'systemd-tmpfiles --create /usr/lib/tmpfiles.d/tessia-task-runner.conf'
expect PREUN '%systemd_preun (disable and stop on removal)' \
  "systemd-update-helper remove-system-units $units" "systemctl --no-reload disable --now $units"
expect PREUN 'stop of the tasks slice on removal' 'systemctl stop tessia-tasks.slice'
services='tessia-task-runner-starter.service tessia-task-runner-files.service tessia-task-runner.service'
expect POSTUN '%systemd_postun_with_restart of the services only (try-restart on upgrade)' \
  "systemd-update-helper mark-restart-system-units $services" "systemctl try-restart $services"
# A socket restarted with its service is refused by systemd and left down: never restarted.
if scriptlet POSTUN | grep -E 'mark-restart-system-units|try-restart' | grep -q '\.socket'; then fail "POSTUN restarts a socket"; fi
expect POSTTRANS "restart of the host's journald after an upgrade from 0.1.0" 'systemctl try-restart systemd-journald.service'
for tag in PREIN POSTIN PREUN POSTUN POSTTRANS; do
  body=$(scriptlet "$tag")
  [ "$(rpm -qp --qf "%{${tag}PROG}" "$rpm_file")" = /bin/sh ] || fail "$tag is not a /bin/sh scriptlet"
  printf '%s\n' "$body" | sh -n || fail "$tag does not parse"
  # Only the macros enable, start or reload the runner's units, the presets deciding; nothing
  # else starts or enables a unit, and a restart is a try-restart — but the upgrade from 0.1.0 in
  # %posttrans, between its two markers, which stops the runner and starts its sockets first.
  if [ "$tag" = POSTTRANS ]; then
    printf '%s\n' "$body" | grep -qx '# from 0.1.0: begin' || fail "POSTTRANS has no upgrade from 0.1.0"
    body=$(printf '%s\n' "$body" | sed '/^# from 0.1.0: begin$/,/^# from 0.1.0: end$/d')
  fi
  if printf '%s\n' "$body" | grep -Eq 'systemctl( --[a-z-]+)* (start|enable|restart|reload-or-restart|daemon-reload)\b'; then
    fail "$tag calls systemctl start/enable/restart/daemon-reload itself"
  fi
  # The slice is stopped on removal only (its own line above); no macro gets it.
  if printf '%s\n' "$body" | grep -E 'tessia-tasks\.slice' | grep -qv '^ *systemctl stop tessia-tasks\.slice '; then
    fail "$tag hands tessia-tasks.slice to something else than its stop on removal"
  fi
done

# rpmlint's BashismsCheck (Fedora's configuration) runs checkbashisms, from devscripts.
if ! command -v rpmlint >/dev/null; then
  missing_tool rpmlint "rpmlint of $rpm_file"
elif ! command -v checkbashisms >/dev/null; then
  missing_tool devscripts "rpmlint of $rpm_file (it needs checkbashisms)"
else
  if ! rpmlint -c "$here/rpmlint.toml" -r "$here/tessia-task-runner.rpmlintrc" "$rpm_file" ${cockpit_rpm:+"$cockpit_rpm"} >"${TMPDIR:-/tmp}/rpmlint.$$" 2>&1; then
    cat "${TMPDIR:-/tmp}/rpmlint.$$" >&2
    fail "rpmlint found errors"
  elif ! grep -q ' 0 errors, 0 warnings' "${TMPDIR:-/tmp}/rpmlint.$$"; then
    cat "${TMPDIR:-/tmp}/rpmlint.$$" >&2
    fail "rpmlint found warnings (fix them, or filter one in tessia-task-runner.rpmlintrc with its reason)"
  else
    echo "rpmlint OK: $(grep -o '[0-9]* errors, [0-9]* warnings.*badness' "${TMPDIR:-/tmp}/rpmlint.$$")"
  fi
  rm -f "${TMPDIR:-/tmp}/rpmlint.$$"
fi

[ "$missing" -eq 0 ] && echo "rpm file list and scriptlets OK: $(printf '%s\n' "$list" | wc -l) files"
exit "$missing"
