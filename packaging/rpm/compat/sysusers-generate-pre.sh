#!/bin/sh
# %sysusers_create_compat's generator for builds without Fedora's macros (see macros.systemd):
# prints the %pre lines that create the users and groups of the given sysusers.d files with
# getent/groupadd/useradd, as Fedora's sysusers.generate-pre.sh does. It knows the lines this
# package uses — `u NAME - "GECOS" HOME [SHELL]` and `g NAME -`, with ids allocated by the
# system — and stops the build on any other line rather than create a different account.
set -eu

quote_ok() {
  case $1 in
    *"'"*) echo "sysusers-generate-pre.sh: $file: a quote in '$1' is not supported" >&2; exit 1 ;;
  esac
}

for file in "$@"; do
  echo "# generated from $(basename "$file")"
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in '' | '#'* | ';'*) continue ;; esac
    # Our own file, read at build time: the shell splits its quoted fields.
    eval "set -- $line"
    type=$1 name=${2:-} id=${3:--}
    if [ "$id" != - ]; then
      echo "sysusers-generate-pre.sh: $file: fixed id in '$line' is not supported" >&2
      exit 1
    fi
    quote_ok "$name"
    case $type in
      g)
        echo "getent group '$name' >/dev/null || groupadd -r '$name' || :"
        ;;
      u)
        gecos=${4:--} home=${5:--} shell=${6:--}
        [ "$gecos" = - ] && gecos=
        [ "$home" = - ] && home=/
        [ "$shell" = - ] && shell=/usr/sbin/nologin
        quote_ok "$gecos"
        quote_ok "$home"
        quote_ok "$shell"
        echo "getent group '$name' >/dev/null || groupadd -r '$name' || :"
        echo "getent passwd '$name' >/dev/null || \\"
        echo "useradd -r -g '$name' -d '$home' -s '$shell' -c '$gecos' '$name' || :"
        ;;
      *)
        echo "sysusers-generate-pre.sh: $file: line type '$type' is not supported" >&2
        exit 1
        ;;
    esac
  done <"$file"
done
