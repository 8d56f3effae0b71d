complete -c npmap -l raw -d 'Write the target\'s bytes unescaped (for programs that want the bytes)'
complete -c npmap -l json -d 'One JSON object per operand, one per line. Strings that are not valid UTF-8 are arrays of byte values'
complete -c npmap -s h -l help -d 'Print help'
complete -c npmap -s V -l version -d 'Print version'
