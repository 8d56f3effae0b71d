fn main() -> std::process::ExitCode {
    npenv::main()
}
