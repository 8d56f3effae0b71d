complete -c npfiles -l raw -d 'Write the target\'s bytes unescaped (for programs that want the bytes)'
complete -c npfiles -l json -d 'One JSON object per operand, one per line. Strings that are not valid UTF-8 are arrays of byte values'
complete -c npfiles -s h -l help -d 'Print help'
complete -c npfiles -s V -l version -d 'Print version'
