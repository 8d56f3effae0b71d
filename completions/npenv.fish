complete -c npenv -l sysroot -d 'Look for the target\'s files (executable, libraries) under DIR too: for a core, before this machine\'s (a core from another machine, with that machine\'s files copied under DIR); for a process, after its own root. A file is used only if its build-id is the one the process had' -r -F
complete -c npenv -l debug-dir -d 'Look for debug files in DIR too (as DIR/.build-id/xx/rest.debug, or by the binary\'s .gnu_debuglink name), after /usr/lib/debug under the target\'s root, the sysroot and this machine. May be repeated' -r -F
complete -c npenv -l initial -d 'Show the environment the process started with (/proc/PID/environ, or the initial stack in a core) instead of the current one'
complete -c npenv -l raw -d 'Write the target\'s bytes unescaped (for programs that want the bytes)'
complete -c npenv -l json -d 'One JSON object per operand, one per line. Strings that are not valid UTF-8 are arrays of byte values'
complete -c npenv -s h -l help -d 'Print help (see more with \'--help\')'
complete -c npenv -s V -l version -d 'Print version'
