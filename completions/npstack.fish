complete -c npstack -l sample -d 'Sample the threads\' stacks for DURATION (`10s`, `500ms`, `2m`) and report the stacks that took the most samples (a live process only)' -r
complete -c npstack -l rate -d 'Samples a second with --sample' -r
complete -c npstack -l folded -d 'With --sample, write folded stacks (`thread;outer;...;inner COUNT`, one line per distinct stack) to FILE, as flamegraph.pl reads them' -r -F
complete -c npstack -l flamegraph -d 'With --sample, write an SVG flame graph to FILE: JavaScript frames green, V8\'s own (builtins, runtime, its frames) aqua, native code red to yellow' -r -F
complete -c npstack -l speedscope -d 'With --sample, write the samples in speedscope\'s file format (one sampled profile per kind of thread) to FILE' -r -F
complete -c npstack -l sysroot -d 'Look for the target\'s files (executable, libraries) under DIR too: for a core, before this machine\'s (a core from another machine, with that machine\'s files copied under DIR); for a process, after its own root. A file is used only if its build-id is the one the process had' -r -F
complete -c npstack -l debug-dir -d 'Look for debug files in DIR too (as DIR/.build-id/xx/rest.debug, or by the binary\'s .gnu_debuglink name), after /usr/lib/debug under the target\'s root, the sysroot and this machine. May be repeated' -r -F
complete -c npstack -s v -l verbose -d 'Add source file:line and inlined calls from DWARF debug information (the binary\'s own, or its debug file: see --debug-dir)'
complete -c npstack -l group -d 'Print each distinct stack once, with the threads that share it (a run of consecutive thread ids as FIRST-LAST; --json lists every id)'
complete -c npstack -l snapshot -d 'Stop all threads together for a consistent picture (longer stall)'
complete -c npstack -l no-heap-names -d 'Do not read the V8 heap: name JavaScript frames from node\'s perf map (--perf-basic-prof) only'
complete -c npstack -l idle -d 'With --sample, count threads that are blocked too (under their blocking frame), not only those on a CPU'
complete -c npstack -l raw -d 'Write the target\'s bytes unescaped (for programs that want the bytes)'
complete -c npstack -l json -d 'One JSON object per operand, one per line. Strings that are not valid UTF-8 are arrays of byte values'
complete -c npstack -s h -l help -d 'Print help (see more with \'--help\')'
complete -c npstack -s V -l version -d 'Print version'
