#!/bin/sh
# The countdown machine in shell: its parameters are a whole number of seconds (JSON), on stdin.
#   run:   countdown.sh           (exec: [/path/countdown.sh])
#   check: countdown.sh --check   (check: [/path/countdown.sh, --check])
seconds=$(tr -d ' \n')

if [ "$1" = --check ]; then
  case "$seconds" in
    '' | *[!0-9]*) echo "parameters must be a whole number of seconds, like 5" >&2; exit 1 ;;
  esac
  # Longer than 4 digits is out of range, and would overflow the shell's arithmetic below.
  if [ "${#seconds}" -gt 4 ]; then
    echo "the countdown must last from 1 to 3600 seconds" >&2
    exit 1
  fi
  if [ "$seconds" -lt 1 ] || [ "$seconds" -gt 3600 ]; then
    echo "the countdown must last from 1 to 3600 seconds" >&2
    exit 1
  fi
  exit 0
fi

left=$seconds
# A stop (or the runtime limit) sends SIGTERM: clean up, say so, and end; systemd waits for the
# machine's stopGraceSec, then sends SIGKILL.
trap 'echo "<4>stopped with $left seconds left: cleaning up"; printf "{\"completed\": false, \"left\": %s}\n" "$left" > result.json; exit 143' TERM

echo "<6>counting down from $seconds"
while [ "$left" -gt 0 ]; do
  echo "<6>T-minus $left"
  # In the background, so that the trap runs at once instead of after the sleep.
  sleep 1 &
  wait $!
  left=$((left - 1))
done
echo "<5>liftoff"
printf '{"completed": true, "left": 0}\n' > result.json
