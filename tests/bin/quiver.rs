//! The `quiver` CLI, built inside the test package so integration tests can spawn
//! (and SIGKILL) a real process through `CARGO_BIN_EXE_quiver-under-test`.

fn main() -> std::process::ExitCode {
    quiver_engine::cli::main()
}
