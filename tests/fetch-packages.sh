#!/bin/sh
# Install the real npm packages the debugger comparison
# (tests/tests/npstack_debugger.rs) runs hot, exactly as pinned by
# tests/fixtures/debugger/package-lock.json (versions and sha512
# integrity), into DEST/node_modules (default DEST: target/npm). Pure
# JavaScript, no dependencies, no install scripts run.
#
# Nothing is done when DEST already holds the pinned versions from the same
# lockfile. Fails loudly when npm does.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
FIXTURE=$HERE/fixtures/debugger
DEST=${1:-$HERE/../target/npm}
command -v npm >/dev/null || { echo "fetch-packages: npm is needed (apt-get install npm)" >&2; exit 1; }
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)

# Installed already: the same lockfile, and npm agrees every package in it is
# there at its pinned version.
if cmp -s "$FIXTURE/package-lock.json" "$DEST/package-lock.json" &&
    cmp -s "$FIXTURE/package.json" "$DEST/package.json" &&
    (cd "$DEST" && npm ls --all >/dev/null 2>&1); then
    echo "$DEST/node_modules"
    exit 0
fi

cp "$FIXTURE/package.json" "$FIXTURE/package-lock.json" "$DEST/"
(cd "$DEST" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) ||
    { echo "fetch-packages: npm ci failed in $DEST" >&2; exit 1; }
(cd "$DEST" && npm ls --all) >/dev/null ||
    { echo "fetch-packages: npm ls disagrees with the lockfile in $DEST" >&2; exit 1; }
echo "$DEST/node_modules"
