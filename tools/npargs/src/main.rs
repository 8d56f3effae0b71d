fn main() -> std::process::ExitCode {
    npargs::main()
}
