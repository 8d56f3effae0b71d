#!/usr/bin/env bash
# Seed the core-reader corpus with a real kernel core of a small static
# fixture (static, so the core is small and self-contained).
set -euo pipefail
out=${1:?corpus directory}
mkdir -p "$out"
out=$(cd "$out" && pwd)
mkdir -p "$out"
[ -n "$(ls -A "$out" 2>/dev/null)" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
here=$(cd "$(dirname "$0")/.." && pwd)
cc -static -O0 -pthread -o "$work/fixture" "$here/tests/fixtures/argsenv.c"
cd "$work"
( ulimit -c unlimited; exec env -i A=1 ./fixture seed >/dev/null ) &
pid=$!
sleep 0.5
kill -ABRT "$pid"
wait "$pid" 2>/dev/null || true
if [ -f core ]; then
    cp core "$out/kernel-static.core"
else
    echo "fuzz/seed.sh: no kernel core (core_pattern $(cat /proc/sys/kernel/core_pattern)); starting from an empty corpus" >&2
fi
ls -l "$out"
