complete -c npgcore -s o -d 'Name each core PREFIX.PID (default: core.PID in the current directory)' -r
complete -c npgcore -l all -d 'Add file-backed mappings (executable and library text, mapped files), as gdb\'s gcore does: a larger core that needs no files to be read'
complete -c npgcore -l json -d 'One JSON object per process, one per line: path, pid, sizes, segments, notes, threads and how long the process was held'
complete -c npgcore -s h -l help -d 'Print help (see more with \'--help\')'
complete -c npgcore -s V -l version -d 'Print version'
