//! The `emsp` binary.

fn main() -> std::process::ExitCode {
    emsp_server::cli::main()
}
