//! The `pgvshift` binary: everything it does is in the library's [`pgvshift::cli`].

fn main() -> std::process::ExitCode {
    pgvshift::cli::main()
}
