//! The `durable-emu` binary: the command-line front end over the engine library.
//!
//! For now it loads a function library (a cdylib file or a crate directory, which it builds
//! first), or the built-in samples when no TARGET is given, and prints what it loaded. The engine,
//! headless subcommands and the terminal UI build on this (see the issues and docs/architecture.md).

use anyhow::Context;
use clap::Parser;
use durable_emu::cargo_build::{BuildOptions, build_cdylib};
use durable_emu::plugin::LoadedPlugin;
use std::path::PathBuf;
use std::process::ExitCode;

/// Run and debug durable orchestrations locally.
#[derive(Debug, Parser)]
#[command(name = "durable-emu", version, about)]
struct Cli {
    /// A plugin library (.so/.dylib/.dll) or a crate directory to build; default: the built-in
    /// sample functions.
    target: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let plugin = load_target(cli.target.as_deref())?;
    print_manifest(&plugin);
    Ok(())
}

fn load_target(target: Option<&std::path::Path>) -> anyhow::Result<LoadedPlugin> {
    let Some(target) = target else {
        return LoadedPlugin::builtin().context("loading the built-in sample functions");
    };
    let library = if target.is_dir() {
        eprintln!("building {} ...", target.display());
        build_cdylib(target, &BuildOptions::default())?
    } else {
        target.to_path_buf()
    };
    Ok(LoadedPlugin::load(&library)?)
}

fn print_manifest(plugin: &LoadedPlugin) {
    let manifest = &plugin.manifest;
    println!("loaded {}", plugin.origin);
    println!(
        "  crate {} {} (durable-sdk {}, build {})",
        manifest.crate_name, manifest.crate_version, manifest.sdk_version, manifest.build_id
    );
    println!("  orchestrators: {}", manifest.orchestrators.join(", "));
    println!("  activities:    {}", manifest.activities.join(", "));
}
