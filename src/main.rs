fn main() -> std::process::ExitCode {
    callvault::cli::main()
}
