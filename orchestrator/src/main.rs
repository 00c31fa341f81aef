fn main() -> std::process::ExitCode {
    orchestrator::commands::main()
}
