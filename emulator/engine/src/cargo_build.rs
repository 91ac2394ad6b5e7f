//! Building a function crate with cargo and finding the plugin library it produced.
//!
//! Runs `cargo build --message-format=json` in the crate directory, takes the cdylib path from the
//! crate's `compiler-artifact` message and succeeds on a successful `build-finished`. Compiler
//! errors are collected, rendered as cargo prints them, so a front end can show them.
//!
//! Owns the cargo invocation and its message parsing. Knows nothing of loading (see `plugin`) or
//! of watching for changes.

use cargo_metadata::{Message, TargetKind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why a build produced no loadable library.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// There is no Cargo.toml in the directory.
    #[error("{dir} is not a crate directory (no Cargo.toml)")]
    NotACrate {
        /// The directory given.
        dir: PathBuf,
    },
    /// cargo could not be started.
    #[error("cannot run cargo in {dir}: {source}")]
    Spawn {
        /// The crate directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The build failed; `errors` holds the compiler's rendered messages.
    #[error("cargo build failed in {dir}:\n{}", errors.join("\n"))]
    Failed {
        /// The crate directory.
        dir: PathBuf,
        /// Rendered compiler errors (or cargo's stderr when there were none).
        errors: Vec<String>,
    },
    /// The build succeeded but produced no cdylib.
    #[error(
        "cargo built {dir} but produced no cdylib; add `[lib] crate-type = [\"cdylib\", \"rlib\"]` to its Cargo.toml"
    )]
    NoCdylib {
        /// The crate directory.
        dir: PathBuf,
    },
}

/// How to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `--target-dir`; default: cargo's own choice for the crate.
    pub target_dir: Option<PathBuf>,
    /// `--release`.
    pub release: bool,
    /// Build only this package of a workspace (`-p`).
    pub package: Option<String>,
}

/// Builds the crate in `dir` and returns the path of its cdylib.
pub fn build_cdylib(dir: &Path, options: &BuildOptions) -> Result<PathBuf, BuildError> {
    build_cdylib_with_progress(dir, options, &mut |_| {})
}

/// Like [`build_cdylib`], calling `progress` with a short line for each crate cargo finishes
/// (`compiled serde`), as it happens.
pub fn build_cdylib_with_progress(
    dir: &Path,
    options: &BuildOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, BuildError> {
    // Absolute, because cargo runs with the crate as its working directory.
    let dir = &std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(BuildError::NotACrate {
            dir: dir.to_path_buf(),
        });
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(dir)
        .args(["build", "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&manifest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(target_dir) = &options.target_dir {
        command.arg("--target-dir").arg(target_dir);
    }
    if options.release {
        command.arg("--release");
    }
    if let Some(package) = &options.package {
        command.args(["-p", package]);
    }
    let mut child = command.spawn().map_err(|source| BuildError::Spawn {
        dir: dir.to_path_buf(),
        source,
    })?;
    // cargo's stderr (its human progress) is drained beside stdout so neither pipe fills up.
    let stderr = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        })
    });
    let stdout = child.stdout.take().ok_or_else(|| BuildError::Spawn {
        dir: dir.to_path_buf(),
        source: std::io::Error::other("cargo's output could not be captured"),
    })?;

    let mut cdylibs = Vec::new();
    let mut errors = Vec::new();
    let mut succeeded = false;
    for message in Message::parse_stream(std::io::BufReader::new(stdout)).flatten() {
        if let Message::CompilerArtifact(artifact) = &message {
            progress(&format!("compiled {}", artifact.target.name));
        }
        match message {
            Message::CompilerArtifact(artifact)
                if artifact.target.kind.contains(&TargetKind::CDyLib) =>
            {
                let is_library = |path: &&cargo_metadata::camino::Utf8PathBuf| {
                    matches!(path.extension(), Some("so" | "dylib" | "dll"))
                };
                if let Some(path) = artifact.filenames.iter().find(is_library) {
                    cdylibs.push((
                        artifact.manifest_path.clone(),
                        PathBuf::from(path.as_std_path()),
                    ));
                }
            }
            Message::CompilerMessage(message)
                if message.message.level == cargo_metadata::diagnostic::DiagnosticLevel::Error =>
            {
                errors.push(
                    message
                        .message
                        .rendered
                        .unwrap_or_else(|| message.message.message.clone()),
                );
            }
            Message::BuildFinished(finished) => succeeded = finished.success,
            _ => {}
        }
    }
    let status = child.wait().map_err(|source| BuildError::Spawn {
        dir: dir.to_path_buf(),
        source,
    })?;
    let stderr = stderr
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    if !succeeded || !status.success() {
        if errors.is_empty() {
            errors.push(stderr.trim().to_string());
        }
        return Err(BuildError::Failed {
            dir: dir.to_path_buf(),
            errors,
        });
    }
    // Prefer the crate in `dir` itself; in a workspace root, accept its only cdylib.
    let own = cdylibs
        .iter()
        .find(|(artifact_manifest, _)| artifact_manifest.as_std_path() == manifest)
        .or_else(|| (cdylibs.len() == 1).then(|| &cdylibs[0]));
    own.map(|(_, path)| path.clone())
        .ok_or_else(|| BuildError::NoCdylib {
            dir: dir.to_path_buf(),
        })
}
