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
    without_transparent_huge_pages();
    let parsed = cli::Cli::parse();
    match cli::run(parsed) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Transparent huge pages off for this process (and what it starts: the setting is inherited):
/// the allocator's arenas qualify for them, and the kernel then zeroes a whole 2 MiB page on
/// the first touch of any byte in it. That zeroing was 40% of an isolated worker's CPU in
/// `bench isolate` (docs/benchmarks.md); the processes here gain nothing from huge pages that
/// would make up for it.
#[cfg(target_os = "linux")]
fn without_transparent_huge_pages() {
    const PR_SET_THP_DISABLE: std::ffi::c_int = 41;
    unsafe extern "C" {
        fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
    }
    // SAFETY: `prctl` is the C library's; PR_SET_THP_DISABLE takes one unsigned long flag (the
    // rest must be zero) and changes only how the kernel backs this process's memory. A kernel
    // that does not know it refuses with EINVAL, which changes nothing.
    unsafe {
        prctl(
            PR_SET_THP_DISABLE,
            1 as std::ffi::c_ulong,
            0 as std::ffi::c_ulong,
            0 as std::ffi::c_ulong,
            0 as std::ffi::c_ulong,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn without_transparent_huge_pages() {}
