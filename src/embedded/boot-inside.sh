#!/bin/sh
# PID 1 of a new pid+mount namespace (unshare --pid --mount --fork --mount-proc): gives systemd a
# root of its own — an overlay whose lower layer is the machine's / and whose upper layer is a tmpfs —
# so nothing it or the tests write (units, /etc, /var, packages installed with dpkg) reaches the
# machine; masks every unit that would touch the machine; then execs systemd.
# Usage: boot-inside.sh APP_DIR [JOURNALD_NAMESPACE_DROPIN_DIR [COVERAGE_DIR]]
set -eu
app_dir=$1
dropins=${2:-}
coverage=${3:-}

mount --make-rprivate /
# Held open before the scratch space hides /tmp: a clone (or its coverage) under /tmp stays reachable
# through /proc/self/fd.
exec 3<"$app_dir"
if [ -n "$coverage" ]; then exec 4<"$coverage"; fi
# Scratch space of our own (this hides the machine's /tmp from this namespace only).
mount -t tmpfs -o mode=0755 tessia-scratch /tmp
mkdir -p /tmp/upper /tmp/work /tmp/root
mount -t overlay tessia-root -o lowerdir=/,upperdir=/tmp/upper,workdir=/tmp/work /tmp/root
new=/tmp/root
mount --rbind /dev "$new/dev"
mount --rbind /sys "$new/sys"
mount --rbind /proc "$new/proc"
mount -t tmpfs -o mode=0755 tessia-run "$new/run"
for dir in /tmp /var/tmp; do mount -t tmpfs -o mode=1777 tessia-tmp "$new$dir"; done
# The app where any user (a task's dynamic one too) can read it, whatever the clone's parents allow.
mkdir -p "$new/run/tessia-app"
mount --bind /proc/self/fd/3 "$new/run/tessia-app"
mount -o remount,bind,ro "$new/run/tessia-app"
# Package builds and other hand-overs between the tests and this system.
mkdir -p "$new/run/tessia-test"
# Coverage (npm test): the directory where the tests write theirs, for every user (a task's too).
if [ -n "$coverage" ]; then mkdir -p "$new/run/tessia-coverage" && mount --bind /proc/self/fd/4 "$new/run/tessia-coverage"; fi
exec 3<&- 4<&-
# The drop-ins of the task journal namespace are the app's own (units/journald@NAMESPACE.conf.d):
# installed where the package installs them, read through the app's mount.
case "$dropins" in "$app_dir"/*) dropins="$new/run/tessia-app/${dropins#"$app_dir"/}" ;; esac
if [ -n "$dropins" ] && [ -d "$dropins" ]; then
  vendor="$new/usr/lib/systemd/$(basename "$dropins")"
  mkdir -p "$vendor" && cp "$dropins"/*.conf "$vendor/"
fi

cd "$new"
mkdir -p .tessia-old-root
pivot_root . .tessia-old-root
cd /
umount -l /.tessia-old-root
rmdir /.tessia-old-root 2>/dev/null || true

# A container image's policy-rc.d forbids starting services from package scripts; this system has a
# real init, so package scripts may start services, as on a host.
rm -f /usr/sbin/policy-rc.d

# The machine's enablement links and generators (fstab, getty, …) are not part of this system.
rm -rf /etc/systemd/system/*.wants /etc/systemd/system/*.requires
for dir in /usr/lib/systemd/system-generators /lib/systemd/system-generators /etc/systemd/system-generators; do
  if [ -d "$dir" ]; then mount -t tmpfs -o mode=0755,ro tessia-none "$dir"; fi
done

mkdir -p /run/systemd/system /run/systemd/journald.conf.d
# What tmpfiles.d (masked here) does on a host: the journal readable by the systemd-journal group.
mkdir -p /run/log/journal
chgrp systemd-journal /run/log/journal && chmod 2755 /run/log/journal
for unit in \
  systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service systemd-tmpfiles-clean.service \
  systemd-tmpfiles-clean.timer systemd-sysusers.service systemd-sysctl.service systemd-remount-fs.service \
  systemd-modules-load.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
  proc-sys-fs-binfmt_misc.mount systemd-update-utmp.service systemd-update-utmp-runlevel.service \
  systemd-random-seed.service systemd-journal-flush.service systemd-timesyncd.service systemd-udevd.service \
  systemd-udev-trigger.service systemd-udev-settle.service systemd-udevd-control.socket \
  systemd-udevd-kernel.socket systemd-pstore.service systemd-firstboot.service \
  systemd-machine-id-commit.service systemd-hwdb-update.service systemd-journal-catalog-update.service \
  systemd-update-done.service ldconfig.service kmod-static-nodes.service systemd-logind.service \
  getty.target console-getty.service systemd-fsck-root.service systemd-repart.service systemd-boot-update.service \
  dev-hugepages.mount dev-mqueue.mount sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
  sys-fs-fuse-connections.mount systemd-ask-password-console.path systemd-ask-password-wall.path \
  systemd-networkd.service systemd-resolved.service systemd-homed.service systemd-userdbd.socket \
  systemd-pcrphase-sysinit.service systemd-pcrphase.service systemd-journald-audit.socket \
  e2scrub_reap.service e2scrub_all.timer apt-daily.timer apt-daily-upgrade.timer man-db.timer fstrim.timer \
  dpkg-db-backup.timer logrotate.timer postgresql.service cron.service ssh.service; do
  ln -sf /dev/null "/run/systemd/system/$unit"
done

cat > /run/systemd/system/tessia-test.target <<'UNIT'
[Unit]
Description=tessia-task-runner test system
Requires=dbus.socket systemd-journald.socket
After=dbus.socket systemd-journald.socket
AllowIsolate=yes
UNIT

# The default namespace's journald as the machine's, but in memory; task output has a journald of
# its own, set up by the package's drop-in installed above (on this overlay, in memory too).
cat > /run/systemd/journald.conf.d/10-tessia-test.conf <<'CONF'
[Journal]
Storage=volatile
CONF

# Every node process of the runners under test (tessia-test-*), the tasks and the packaged service
# (tessia-task-*) writes V8 coverage there; the sandbox of tasks and package lets them.
if [ -n "$coverage" ]; then
  for prefix in tessia-test- tessia-task-; do
    mkdir -p "/run/systemd/system/$prefix.service.d"
    printf '[Service]\nEnvironment=NODE_V8_COVERAGE=/run/tessia-coverage\n' > "/run/systemd/system/$prefix.service.d/50-coverage.conf"
  done
  echo 'ReadWritePaths=-/run/tessia-coverage' >> /run/systemd/system/tessia-task-.service.d/50-coverage.conf
  # The files service sees an empty /run of its own (TemporaryFileSystem=): the directory is bound in.
  mkdir -p /run/systemd/system/tessia-task-runner-files.service.d
  printf '[Service]\nBindPaths=/run/tessia-coverage\n' > /run/systemd/system/tessia-task-runner-files.service.d/50-coverage.conf
fi

# Without a shared / systemd's credentials (and other per-unit mounts) never reach the units.
mount --make-rshared /
exec env container=tessia-test /lib/systemd/systemd --system --unit=tessia-test.target
