//! The `sipd` binary: a thin wrapper around [`sipd::cli`].

fn main() -> std::process::ExitCode {
    sipd::cli::main()
}
