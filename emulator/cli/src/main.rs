//! The `durable-emu` binary: the command-line front end over the engine library.
//!
//! `durable-emu [TARGET]` loads a function library (a cdylib file, or a crate directory it builds
//! first; the built-in samples when omitted) and prints what it loaded. The subcommands run the
//! engine headless for scripts and CI (see `cli`). Exit codes: 0 success (or Completed), 1 an
//! instance ended Failed/Terminated/Canceled (or replay found nondeterminism, or `list` could not
//! read every instance), 2 usage or load errors, with the reason on stderr; output to a closed
//! pipe ends the process by `SIGPIPE` (141 in a shell), quietly.

mod cli;

/// A quarter of the sidecar's CPU went to the system allocator (docs/benchmarks.md, Sidecar);
/// plugins keep their own (each side frees what it allocated, across the C ABI).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let parsed = cli::Cli::parse();
    match cli::run(parsed) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
