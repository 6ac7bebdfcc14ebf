//! The `quiver` binary: see `quiver --help`.

fn main() -> std::process::ExitCode {
    quiver_engine::cli::main()
}
