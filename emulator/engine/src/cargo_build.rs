//! Building a function crate with cargo and finding the plugin library it produced.
//!
//! Runs `cargo build --message-format=json` in the crate directory, takes the cdylib path from the
//! crate's `compiler-artifact` message and succeeds on a successful `build-finished`. Progress
//! names only the crates cargo compiled in this build (artifacts it did not find `fresh`).
//! Compiler errors are collected with the `file:line:column` of their primary span and as rustc
//! renders them, so a front end can put the first located error on top of the full output.
//!
//! Owns the cargo invocation and its message parsing. Knows nothing of loading (see `plugin`) or
//! of watching for changes.

use cargo_metadata::diagnostic::{Diagnostic, DiagnosticLevel};
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
    /// The build failed; `errors` holds the compiler's errors.
    #[error("cargo build failed in {dir}:\n{}", errors.iter().map(|error| error.rendered.as_str()).collect::<Vec<_>>().join("\n"))]
    Failed {
        /// The crate directory.
        dir: PathBuf,
        /// The compiler's errors in the order it reported them (or cargo's stderr as one
        /// unlocated error when the compiler reported none, e.g. a broken Cargo.toml).
        errors: Vec<CompilerError>,
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

/// One error the compiler reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompilerError {
    /// `file:line:column` of its primary span (the file as cargo names it, relative to the
    /// workspace root), when it points into the source.
    pub location: Option<String>,
    /// The one-line message, e.g. `error[E0308]: mismatched types`.
    pub headline: String,
    /// As rustc renders it: several lines with the source excerpt.
    pub rendered: String,
}

impl CompilerError {
    /// `src/lib.rs:1:21: error[E0308]: mismatched types`, or the headline alone.
    pub fn summary(&self) -> String {
        match &self.location {
            Some(location) => format!("{location}: {}", self.headline),
            None => self.headline.clone(),
        }
    }
}

impl BuildError {
    /// The compiler's errors, when this is a failed build.
    pub fn compiler_errors(&self) -> &[CompilerError] {
        match self {
            BuildError::Failed { errors, .. } => errors,
            _ => &[],
        }
    }

    /// The first compiler error that has a source location: the one to look at first.
    pub fn first_located_error(&self) -> Option<&CompilerError> {
        self.compiler_errors()
            .iter()
            .find(|error| error.location.is_some())
    }
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

/// Like [`build_cdylib`], calling `progress` with a short line for each crate cargo compiles
/// (`compiled serde`), as it happens; crates cargo found up to date are not named.
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
        // Plain `json`: compiler messages arrive on stdout with their spans and rendering (with
        // `json-render-diagnostics` cargo would print them to stderr as text instead).
        .args(["build", "--message-format=json"])
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

    let parsed = parse_messages(std::io::BufReader::new(stdout), progress);
    let status = child.wait().map_err(|source| BuildError::Spawn {
        dir: dir.to_path_buf(),
        source,
    })?;
    let stderr = stderr
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    let Parsed {
        cdylibs,
        mut errors,
        succeeded,
    } = parsed;
    if !succeeded || !status.success() {
        if errors.is_empty() {
            let output = stderr.trim().to_string();
            errors.push(CompilerError {
                location: None,
                headline: output
                    .lines()
                    .find(|line| line.trim_start().starts_with("error"))
                    .unwrap_or("cargo build failed")
                    .trim()
                    .to_string(),
                rendered: output,
            });
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

/// What cargo's JSON messages of one build said.
#[derive(Debug, Default)]
struct Parsed {
    /// `(manifest of the crate, library path)` of every cdylib built or found fresh.
    cdylibs: Vec<(cargo_metadata::camino::Utf8PathBuf, PathBuf)>,
    /// Error-level compiler messages, in order.
    errors: Vec<CompilerError>,
    /// `build-finished` said so.
    succeeded: bool,
}

/// Reads cargo's `--message-format=json` stream, naming each crate compiled to `progress`.
fn parse_messages(reader: impl std::io::BufRead, progress: &mut dyn FnMut(&str)) -> Parsed {
    let mut parsed = Parsed::default();
    for message in Message::parse_stream(reader).flatten() {
        match message {
            Message::CompilerArtifact(artifact) => {
                // A fresh artifact was not compiled: cargo found it up to date.
                if !artifact.fresh {
                    progress(&format!("compiled {}", artifact.target.name));
                }
                if artifact.target.kind.contains(&TargetKind::CDyLib) {
                    let is_library = |path: &&cargo_metadata::camino::Utf8PathBuf| {
                        matches!(path.extension(), Some("so" | "dylib" | "dll"))
                    };
                    if let Some(path) = artifact.filenames.iter().find(is_library) {
                        parsed.cdylibs.push((
                            artifact.manifest_path.clone(),
                            PathBuf::from(path.as_std_path()),
                        ));
                    }
                }
            }
            Message::CompilerMessage(message)
                if message.message.level == DiagnosticLevel::Error
                    || message.message.level == DiagnosticLevel::Ice =>
            {
                parsed.errors.push(compiler_error(&message.message));
            }
            Message::BuildFinished(finished) => parsed.succeeded = finished.success,
            _ => {}
        }
    }
    parsed
}

fn compiler_error(diagnostic: &Diagnostic) -> CompilerError {
    let location = diagnostic
        .spans
        .iter()
        .find(|span| span.is_primary)
        .map(|span| {
            format!(
                "{}:{}:{}",
                span.file_name, span.line_start, span.column_start
            )
        });
    let level = match diagnostic.level {
        DiagnosticLevel::Ice => "error: internal compiler error",
        _ => "error",
    };
    let headline = match &diagnostic.code {
        Some(code) => format!("{level}[{}]: {}", code.code, diagnostic.message),
        None => format!("{level}: {}", diagnostic.message),
    };
    CompilerError {
        location,
        rendered: diagnostic
            .rendered
            .clone()
            .unwrap_or_else(|| headline.clone())
            .trim_end()
            .to_string(),
        headline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from `cargo build --message-format=json` of a crate `b` (with an error and a
    /// warning) depending on a crate `a`, both compiled for the first time.
    const FAILED: &str = include_str!("../tests/fixtures/cargo-json/failed.jsonl");
    /// The same crates after fixing `b`: `a` is fresh, only `b` is compiled.
    const REBUILT: &str = include_str!("../tests/fixtures/cargo-json/rebuilt.jsonl");

    fn parse(text: &str) -> (Parsed, Vec<String>) {
        let mut lines = Vec::new();
        let parsed = parse_messages(text.as_bytes(), &mut |line| lines.push(line.to_string()));
        (parsed, lines)
    }

    #[test]
    fn progress_names_only_the_crates_cargo_compiled() {
        let (parsed, progress) = parse(REBUILT);
        assert!(parsed.succeeded);
        assert!(parsed.errors.is_empty());
        assert_eq!(progress, ["compiled b"], "`a` was fresh");
        let (_, progress) = parse(FAILED);
        assert_eq!(
            progress,
            ["compiled a"],
            "`b` failed, so it produced nothing"
        );
    }

    #[test]
    fn errors_carry_their_file_line_and_column_and_warnings_are_not_errors() {
        let (parsed, _) = parse(FAILED);
        assert!(!parsed.succeeded);
        assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
        let error = &parsed.errors[0];
        assert_eq!(error.location.as_deref(), Some("src/lib.rs:1:21"));
        assert_eq!(error.headline, "error[E0308]: mismatched types");
        assert_eq!(
            error.summary(),
            "src/lib.rs:1:21: error[E0308]: mismatched types"
        );
        assert!(
            error.rendered.contains("expected `u32`, found `&str`"),
            "{}",
            error.rendered
        );
    }

    #[test]
    fn the_first_located_error_is_the_first_one_with_a_source_location() {
        let located = |location: Option<&str>, headline: &str| CompilerError {
            location: location.map(str::to_string),
            headline: headline.into(),
            rendered: headline.into(),
        };
        let error = BuildError::Failed {
            dir: PathBuf::from("functions"),
            errors: vec![
                located(None, "error: linking failed"),
                located(Some("src/lib.rs:3:1"), "error: expected item"),
                located(
                    Some("src/lib.rs:9:1"),
                    "error: unexpected closing delimiter",
                ),
            ],
        };
        assert_eq!(
            error.first_located_error().map(CompilerError::summary),
            Some("src/lib.rs:3:1: error: expected item".to_string())
        );
        assert!(
            error
                .to_string()
                .contains("linking failed\nerror: expected item"),
            "{error}"
        );
    }
}
