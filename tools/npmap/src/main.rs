fn main() -> std::process::ExitCode {
    npmap::main()
}
