complete -c npmap -l sysroot -d 'Look for the target\'s files (executable, libraries) under DIR too: for a core, before this machine\'s (a core from another machine, with that machine\'s files copied under DIR); for a process, after its own root. A file is used only if its build-id is the one the process had' -r -F
complete -c npmap -l debug-dir -d 'Look for debug files in DIR too (as DIR/.build-id/xx/rest.debug, or by the binary\'s .gnu_debuglink name), after /usr/lib/debug under the target\'s root, the sysroot and this machine. May be repeated' -r -F
complete -c npmap -s x -d 'Extended listing: RSS, Anon and Locked KiB per mapping (live), or Dumped KiB (core), with totals'
complete -c npmap -l summary -d 'One `NAME SIZE` line per category (heap, v8, v8-reserved, anon, stack, file, shared, other, total), SIZE in KiB, no header; with -x, RSS as a third column (- for a core) and, for a core, the dumped KiB as a fourth'
complete -c npmap -l no-v8 -d 'Do not look for V8\'s heap pages: they show as [ anon ], as before nptools knew them'
complete -c npmap -l raw -d 'Write the target\'s bytes unescaped (for programs that want the bytes)'
complete -c npmap -l json -d 'One JSON object per operand, one per line. Strings that are not valid UTF-8 are arrays of byte values'
complete -c npmap -s h -l help -d 'Print help (see more with \'--help\')'
complete -c npmap -s V -l version -d 'Print version'
