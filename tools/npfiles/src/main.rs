fn main() -> std::process::ExitCode {
    npfiles::main()
}
