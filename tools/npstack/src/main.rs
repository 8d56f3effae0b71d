fn main() -> std::process::ExitCode {
    npstack::main()
}
