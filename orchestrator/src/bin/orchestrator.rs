//! The pre-`leadflow` name of the command, kept for one release.
fn main() -> std::process::ExitCode {
    orchestrator::commands::main_old_spelling()
}
