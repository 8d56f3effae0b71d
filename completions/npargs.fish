complete -c npargs -l sysroot -d 'Look for the target\'s files (executable, libraries) under DIR too: for a core, before this machine\'s (a core from another machine, with that machine\'s files copied under DIR); for a process, after its own root. A file is used only if its build-id is the one the process had' -r -F
complete -c npargs -l debug-dir -d 'Look for debug files in DIR too (as DIR/.build-id/xx/rest.debug, or by the binary\'s .gnu_debuglink name), after /usr/lib/debug under the target\'s root, the sysroot and this machine. May be repeated' -r -F
complete -c npargs -s a -d 'Print the argument vector (the default)'
complete -c npargs -s e -d 'Print the environment: the current one, read through the C library\'s `environ` (as npenv does)'
complete -c npargs -s x -d 'Print the auxiliary vector, one `AT_NAME 0xVALUE decoded` line per entry'
complete -c npargs -s l -d 'Print the command line as one line a POSIX.1-2024 shell (bash, zsh, ksh) runs as the same argv; unprintable bytes are written as $\'\\ooo\' (octal)'
complete -c npargs -l raw -d 'Write the target\'s bytes unescaped (for programs that want the bytes)'
complete -c npargs -l json -d 'One JSON object per operand, one per line. Strings that are not valid UTF-8 are arrays of byte values'
complete -c npargs -s h -l help -d 'Print help (see more with \'--help\')'
complete -c npargs -s V -l version -d 'Print version'
