fn main() -> std::process::ExitCode {
    npgcore::main()
}
