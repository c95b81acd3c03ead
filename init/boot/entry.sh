#!/bin/sh
# ENTRYPOINT, before tini: /init/boot/entry.sh /usr/bin/tini -g -- CMD...
#
# Docker starts PID 1 with the container's environment, and /proc/1/environ keeps it for
# the container's whole life. So the inputs of /init/boot/boot.sh are moved out of the
# environment here, into root-only files (dir 0700, files 0600) that boot.sh reads and
# deletes, and then the rest is exec'ed without them: no process of the container holds them.
# POSIX sh, no external command: a value never appears in any command line.

INPUTS=/run/llbgen-inputs   # read and removed by boot.sh (keep the two in step)

umask 077
rm -rf "$INPUTS"
mkdir -p "$INPUTS" || printf '[entry] ERROR: cannot create %s; the inputs below are dropped\n' "$INPUTS" >&2
for name in ROOT_PASSWORD ROOT_PASSWORD_FILE JUPYTER_TOKEN JUPYTER_TOKEN_FILE PUBLIC_KEY PUBLIC_KEY_FILE; do
    eval "given=\${$name+x}"
    [ -n "$given" ] || continue
    # $name is from the list above; the value is expanded by printf, never parsed by eval.
    eval "printf '%s' \"\$$name\"" > "$INPUTS/$name" ||
        printf '[entry] ERROR: cannot keep %s; it is dropped\n' "$name" >&2
    unset "$name"
done
unset name given
exec "$@"
