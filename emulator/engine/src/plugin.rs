//! The plugin host: turns a function library into a [`LoadedPlugin`] the engine can call.
//!
//! Loading follows docs/architecture.md#the-plugin-boundary: copy the artifact to a unique
//! temporary path (dlopen caches by path, so a rebuilt file at the same path would not load again),
//! open it with
//! `RTLD_NOW` (missing symbols fail here, not mid-run), read the ABI version before touching
//! anything else, then read the manifest. Libraries are never unloaded: thread-local destructors
//! make `dlclose` unsound on Linux, and keeping old builds mapped lets an instance stay pinned to
//! the build it started on.
//!
//! Owns loading and identity (content hash) of builds. Knows nothing of watching, building, the
//! store or any front end.

use durable_sdk::ffi::{
    ABI_VERSION, ABI_VERSION_SYMBOL, BoundaryError, PluginHandle, PluginVTable, VTABLE_SYMBOL,
};
use durable_sdk::protocol::Manifest;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a library could not become the active build. The previous build (if any) stays active.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The path does not exist or cannot be read.
    #[error("cannot read function library {path}: {source}")]
    Unreadable {
        /// The library path given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The private copy could not be made.
    #[error("cannot copy {path} to {copy} for loading: {source}")]
    Copy {
        /// The library path given.
        path: PathBuf,
        /// Where the copy was to go.
        copy: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The dynamic loader refused the file (not a shared library, wrong architecture, missing
    /// dependency or symbol).
    #[error("{path} is not a loadable library: {reason}")]
    NotALibrary {
        /// The library path given.
        path: PathBuf,
        /// What the loader said.
        reason: String,
    },
    /// The library loads but was not built with `durable_sdk::export_plugin!`.
    #[error(
        "{path} is not a durable-emu plugin: it has no `{symbol}` symbol (build it from a crate that calls durable_sdk::export_plugin!)"
    )]
    NotAPlugin {
        /// The library path given.
        path: PathBuf,
        /// The missing symbol.
        symbol: &'static str,
    },
    /// The plugin speaks another version of the C ABI.
    #[error(
        "{path} uses plugin ABI version {found}, but this durable-emu speaks version {expected}; rebuild it against a matching durable-sdk"
    )]
    AbiMismatch {
        /// The library path given.
        path: PathBuf,
        /// The plugin's ABI version.
        found: u32,
        /// This host's ABI version.
        expected: u32,
    },
    /// The plugin's manifest could not be read (it panicked or answered garbage).
    #[error("the manifest of {origin} could not be read: {source}")]
    Manifest {
        /// Where the plugin came from.
        origin: PluginOrigin,
        /// What went wrong at the boundary.
        source: BoundaryError,
    },
}

/// Where a loaded plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginOrigin {
    /// Linked into this binary (the sample functions).
    BuiltIn,
    /// Linked into this process under another name (tests, embedders).
    InProcess(String),
    /// Loaded from a library file.
    Library {
        /// The path the user gave (or cargo produced).
        path: PathBuf,
    },
}

impl fmt::Display for PluginOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginOrigin::BuiltIn => f.write_str("the built-in sample functions"),
            PluginOrigin::InProcess(name) => write!(f, "in-process plugin {name}"),
            PluginOrigin::Library { path } => write!(f, "{}", path.display()),
        }
    }
}

/// A plugin ready to run episodes and activities.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    /// Calls through the plugin's vtable.
    pub handle: PluginHandle,
    /// What the plugin contains.
    pub manifest: Manifest,
    /// Where it came from.
    pub origin: PluginOrigin,
    /// BLAKE3 hash of the library file (hex), or of the manifest's build id for the built-in
    /// plugin: two loads with the same hash run the same code.
    pub content_hash: String,
}

impl LoadedPlugin {
    /// The sample functions linked into this binary, through the same entry points a library has.
    pub fn builtin() -> Result<Self, PluginError> {
        Self::in_process(
            sample_functions::durable_plugin_handle(),
            PluginOrigin::BuiltIn,
        )
    }

    /// A plugin linked into this process (its `durable_plugin_handle()`), e.g. in tests.
    pub fn in_process(handle: PluginHandle, origin: PluginOrigin) -> Result<Self, PluginError> {
        let manifest = handle.manifest().map_err(|source| PluginError::Manifest {
            origin: origin.clone(),
            source,
        })?;
        let content_hash = content_hash(manifest.build_id.as_bytes());
        Ok(Self {
            handle,
            manifest,
            origin,
            content_hash,
        })
    }

    /// Loads a plugin library file.
    pub fn load(path: &Path) -> Result<Self, PluginError> {
        if let Err(source) = std::fs::metadata(path) {
            return Err(PluginError::Unreadable {
                path: path.to_path_buf(),
                source,
            });
        }
        let copy = private_copy_path(path);
        // The kernel copies (copy_file_range) several times faster than writing the bytes out
        // ourselves; the hash is then taken of the copy, so it describes exactly what is loaded.
        std::fs::copy(path, &copy).map_err(|source| PluginError::Copy {
            path: path.to_path_buf(),
            copy: copy.clone(),
            source,
        })?;
        let content_hash = match std::fs::read(&copy) {
            Ok(bytes) => content_hash(&bytes),
            Err(source) => {
                let _ = std::fs::remove_file(&copy);
                return Err(PluginError::Unreadable {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let opened = open_library(&copy);
        // The mapping outlives the file on every platform we load on; the copy only existed so
        // the loader would see a path it has never cached.
        let _ = std::fs::remove_file(&copy);
        let library = opened.map_err(|error| PluginError::NotALibrary {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
        let vtable = read_vtable(&library, path)?;
        // Never unloaded (see the module doc): the vtable and every buffer function stay valid
        // for the life of the process.
        std::mem::forget(library);
        let handle = PluginHandle::new(vtable);
        let origin = PluginOrigin::Library {
            path: path.to_path_buf(),
        };
        let manifest = handle.manifest().map_err(|source| PluginError::Manifest {
            origin: origin.clone(),
            source,
        })?;
        Ok(Self {
            handle,
            manifest,
            origin,
            content_hash,
        })
    }
}

/// Checks the ABI version, then takes the vtable.
fn read_vtable(
    library: &libloading::Library,
    path: &Path,
) -> Result<&'static PluginVTable, PluginError> {
    let not_a_plugin = |symbol| PluginError::NotAPlugin {
        path: path.to_path_buf(),
        symbol,
    };
    // SAFETY: `durable_plugin_abi_version` is declared by every ABI version as
    // `extern "C" fn() -> u32`; that signature is the one thing all versions share.
    let abi_version = unsafe {
        library
            .get::<extern "C" fn() -> u32>(ABI_VERSION_SYMBOL.as_bytes())
            .map_err(|_| not_a_plugin(ABI_VERSION_SYMBOL))?
    };
    let found = abi_version();
    if found != ABI_VERSION {
        return Err(PluginError::AbiMismatch {
            path: path.to_path_buf(),
            found,
            expected: ABI_VERSION,
        });
    }
    // SAFETY: the ABI version matches ours, so `durable_plugin_vtable` has the signature of this
    // version: `extern "C" fn() -> &'static PluginVTable`. The library is never unloaded, so the
    // returned reference is valid for 'static.
    let vtable = unsafe {
        let vtable_fn = library
            .get::<extern "C" fn() -> &'static PluginVTable>(VTABLE_SYMBOL.as_bytes())
            .map_err(|_| not_a_plugin(VTABLE_SYMBOL))?;
        vtable_fn()
    };
    if vtable.abi_version != ABI_VERSION {
        return Err(PluginError::AbiMismatch {
            path: path.to_path_buf(),
            found: vtable.abi_version,
            expected: ABI_VERSION,
        });
    }
    Ok(vtable)
}

#[cfg(unix)]
fn open_library(path: &Path) -> Result<libloading::Library, libloading::Error> {
    use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
    // SAFETY: loading runs the library's initialisers. We accept that for a library the user
    // asked us to load; RTLD_NOW resolves every symbol now, so a broken build fails here.
    unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map(Into::into)
}

#[cfg(not(unix))]
fn open_library(path: &Path) -> Result<libloading::Library, libloading::Error> {
    // SAFETY: as above; Windows resolves imports at load time.
    unsafe { libloading::Library::new(path) }
}

fn private_copy_path(path: &Path) -> PathBuf {
    static LOADS: AtomicU64 = AtomicU64::new(0);
    let load = LOADS.fetch_add(1, Ordering::Relaxed);
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .unwrap_or("so");
    std::env::temp_dir().join(format!(
        "durable-emu-{}-{load}.{extension}",
        std::process::id()
    ))
}

/// BLAKE3 rather than SHA-256: it is several times faster on a 20 MB debug library, and reload
/// latency is measured in milliseconds (docs/benchmarks.md).
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_plugin_lists_the_samples() {
        let plugin = LoadedPlugin::builtin().unwrap();
        assert!(
            plugin
                .manifest
                .orchestrators
                .contains(&"HelloSequence".to_string())
        );
        assert_eq!(plugin.manifest.crate_name, "sample-functions");
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let error = LoadedPlugin::load(Path::new("/nonexistent/libnothing.so")).unwrap_err();
        assert!(matches!(error, PluginError::Unreadable { .. }), "{error}");
    }

    #[test]
    fn a_file_that_is_not_a_library_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libfake.so");
        std::fs::write(&path, b"this is not an ELF file").unwrap();
        let error = LoadedPlugin::load(&path).unwrap_err();
        assert!(matches!(error, PluginError::NotALibrary { .. }), "{error}");
        assert!(error.to_string().contains("libfake.so"));
    }
}
