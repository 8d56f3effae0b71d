#!/bin/sh
# Rebuild the checked-in core fixture: testdata/tiny.c compiled into
# testdata/sysroot/nptools-fixture/bin/tiny, run once, and the core the
# kernel writes when it crashes kept as testdata/core.tiny.
#
#   sudo testdata/make-tiny-core.sh
#
# Needs root (the program runs from /nptools-fixture/bin/tiny, the path
# the core records in NT_FILE; the tests find the binary again under
# testdata/sysroot with `npstack --sysroot`), cc, and a kernel that writes
# a file named `core` into the crashing process's working directory
# (/proc/sys/kernel/core_pattern is `core`).
#
# The new core has other addresses, and its expected outputs change with
# them: bless them again and review the diff,
#
#   NPTOOLS_BLESS=1 cargo test
#   git diff tools/*/tests/golden/
set -eu

here=$(cd "$(dirname "$0")" && pwd)
recorded=/nptools-fixture/bin/tiny
sysroot=$here/sysroot

[ "$(id -u)" = 0 ] || { echo "$0: must run as root (it creates ${recorded%/bin/tiny})" >&2; exit 1; }
pattern=$(cat /proc/sys/kernel/core_pattern)
[ "$pattern" = core ] || { echo "$0: core_pattern is '$pattern', not 'core'" >&2; exit 1; }
[ ! -e /nptools-fixture ] || { echo "$0: /nptools-fixture exists; remove it first" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work" /nptools-fixture' EXIT

# Static, no C library, no stack protector (it would read a canary from a
# TLS block nothing set up), unwind tables kept, frame pointers in all
# functions but the leaf: its caller is found only through .eh_frame.
${CC:-cc} -std=c11 -O1 -g0 -static -nostdlib -no-pie -fno-pie \
    -fno-stack-protector -fcf-protection=none -fno-omit-frame-pointer \
    -momit-leaf-frame-pointer -fno-optimize-sibling-calls \
    -fasynchronous-unwind-tables \
    -Wl,--build-id=sha1 -Wl,--eh-frame-hdr -Wall -Wextra -Werror \
    -o "$work/tiny" "$here/tiny.c"

mkdir -p /nptools-fixture/bin
install -m 755 "$work/tiny" "$recorded"

# Arguments and environment with bytes a terminal must not get raw: an
# escape sequence, a byte that is not UTF-8, a newline. The filter keeps
# private anonymous memory and the ELF headers (the build-id), as the
# kernel's default does, whatever this machine's default is.
(
    cd "$work"
    ulimit -c unlimited
    echo 0x33 > /proc/self/coredump_filter
    exec env -i HOME=/nowhere LANG=C "NPTOOLS_FIXTURE=$(printf 'title\033]0;pwned\007')" \
        "$recorded" "hello world" "$(printf 'esc\033[31mred')" \
        "$(printf 'bad\377utf8')" "$(printf 'new\nline')"
) && { echo "$0: tiny did not crash" >&2; exit 1; } || true

[ -f "$work/core" ] || { echo "$0: no core was written in $work" >&2; exit 1; }
install -m 644 "$work/core" "$here/core.tiny"
mkdir -p "$sysroot/nptools-fixture/bin"
install -m 755 "$work/tiny" "$sysroot$recorded"
ls -l "$here/core.tiny" "$sysroot$recorded"
