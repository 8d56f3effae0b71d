#!/usr/bin/env bash
# make demo: start the demo server, run every tool on it live, then on a
# core of it, and clean up. Needs node; uses a kernel core when the kernel
# writes them to the working directory, gcore otherwise.
set -euo pipefail
BIN=${NPTOOLS_BIN_DIR:?set NPTOOLS_BIN_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nptools-demo.XXXXXX")
SERVER=
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v node >/dev/null || { echo "make demo: node is not installed" >&2; exit 1; }

show() {
    printf '\n$ %s\n' "$*"
    "$@"
}

cd "$WORK"
mkfifo ready
# A short, known environment keeps the output readable.
( ulimit -c unlimited 2>/dev/null || true
  exec env -i PATH="$PATH" HOME="${HOME:-/}" NODE_ENV=production node "$HERE/server.js" >ready ) &
SERVER=$!
read -r _ PID PORT <ready
echo "demo server: pid $PID, http://127.0.0.1:$PORT/"

echo; echo "=== live process ==="
show "$BIN/npargs" -a -x "$PID"
show "$BIN/npenv" "$PID"
show "$BIN/npfiles" "$PID"
show "$BIN/npfiles" --type sock "$PID"
printf '\n$ npfiles --type sock %s | wc -l; ls -l /proc/%s/fd | grep -c socket\n' "$PID" "$PID"
"$BIN/npfiles" --type sock "$PID" | wc -l
ls -l "/proc/$PID/fd" | grep -c socket
show "$BIN/npmap" --summary "$PID"
show "$BIN/npstack" --group "$PID"

# Make the event loop run JavaScript (GET /spin never returns): npstack names
# its frames from the V8 heap, here and in the core below.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /spin HTTP/1.1\r\nHost: demo\r\n\r\n' >&3
sleep 1
show "$BIN/npstack" "$PID/1"

echo; echo "=== npgcore core (the server runs on) ==="
show "$BIN/npgcore" --json -o "$WORK/npcore" "$PID"
NPCORE="$WORK/npcore.$PID"
ls -ls "$NPCORE"
show "$BIN/npstack" --group "$NPCORE"
show "$BIN/npmap" --summary "$NPCORE"
if command -v gdb >/dev/null; then
    printf '\n$ gdb -batch -ex "thread apply all bt" node %s | grep -c "^#"\n' "$NPCORE"
    gdb -batch -ex 'thread apply all bt' "$(command -v node)" "$NPCORE" 2>/dev/null | grep -c '^#'
fi
rm -f "$NPCORE"

pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null || echo '|')
if [[ $pattern != \|* && $pattern != */* && $(ulimit -Hc) != 0 ]]; then
    echo; echo "=== kernel core (SIGABRT) ==="
    kill -ABRT "$PID"
    wait "$SERVER" 2>/dev/null || true
    SERVER=
    CORE=$(ls "$WORK" | grep -v '^ready$' | head -n 1)
    CORE="$WORK/$CORE"
else
    echo; echo "=== gcore core ==="
    gcore -o "$WORK/core" "$PID" >/dev/null 2>&1
    CORE="$WORK/core.$PID"
fi
ls -l "$CORE"
show "$BIN/npargs" -a -x "$CORE"
show "$BIN/npenv" "$CORE"
# A core records no open files: npfiles says so and exits 1.
show "$BIN/npfiles" "$CORE" || echo "(exit status $?)"
show "$BIN/npmap" --summary "$CORE"
show "$BIN/npstack" --group "$CORE"
