//! Kept builds: copies of function libraries, beside the database in `builds/`, named by their
//! content hash, so that a build an instance still needs (it is pinned to it, or diverged from a
//! newer one and waits for the user's choice) can be loaded again after the emulator restarts.
//!
//! The library is copied when its build is adopted, not when an instance becomes pinned: by then
//! the file it came from has usually been overwritten by the build that diverged (cargo writes
//! every build to the same path). Copies no instance needs are removed by [`KeptBuilds::sweep`].
//!
//! Owns only the files; knows nothing of instances, the store or when a copy is needed.

use crate::plugin::{LoadedPlugin, PluginOrigin};
use crate::store::DbLocation;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The directory of kept library copies of one database.
#[derive(Debug)]
pub(super) struct KeptBuilds {
    dir: PathBuf,
}

impl KeptBuilds {
    /// The kept builds of a database file: `<db dir>/builds/`. `None` for an in-memory store
    /// (nothing survives it, so nothing is worth keeping).
    pub(super) fn beside(location: &DbLocation) -> Option<Self> {
        let DbLocation::File(db) = location else {
            return None;
        };
        let parent = db
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(Self {
            dir: parent.join("builds"),
        })
    }

    /// Where the copy of the library with this content hash lives.
    pub(super) fn path_of(&self, content_hash: &str) -> PathBuf {
        self.dir.join(format!(
            "{content_hash}.{}",
            std::env::consts::DLL_EXTENSION
        ))
    }

    /// Keeps a copy of the library a plugin was loaded from (nothing for plugins linked into the
    /// process: they cannot go away). The copy is checked against the plugin's content hash, so
    /// a file rebuilt since it was loaded is never kept under the old build's name.
    pub(super) fn keep(&self, plugin: &LoadedPlugin) -> std::io::Result<()> {
        let PluginOrigin::Library { path } = &plugin.origin else {
            return Ok(());
        };
        let kept = self.path_of(&plugin.content_hash);
        if kept.is_file() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)?;
        // Written under another name and renamed, so a copy cut short is never taken for a build.
        let partial = self.dir.join(format!(
            "{}.part-{}",
            plugin.content_hash,
            std::process::id()
        ));
        let copied = std::fs::copy(path, &partial).and_then(|_| std::fs::read(&partial));
        let outcome = match copied {
            Ok(bytes) if crate::plugin::content_hash(&bytes) == plugin.content_hash => {
                std::fs::rename(&partial, &kept)
            }
            Ok(_) => Err(std::io::Error::other(format!(
                "{} has changed since it was loaded",
                path.display()
            ))),
            Err(error) => Err(error),
        };
        if outcome.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        outcome
    }

    /// Loads the kept copy of a build, with the checks of any library (ABI version, manifest);
    /// `None` when there is no copy. A copy whose content no longer has its name's hash is
    /// refused as not that build.
    pub(super) fn load(&self, content_hash: &str) -> Option<Result<LoadedPlugin, String>> {
        let path = self.path_of(content_hash);
        if !path.is_file() {
            return None;
        }
        Some(match LoadedPlugin::load(&path) {
            Ok(plugin) if plugin.content_hash == content_hash => Ok(plugin),
            Ok(plugin) => Err(format!(
                "{} is not the build it is named after (its content hash is {})",
                path.display(),
                plugin.content_hash
            )),
            Err(error) => Err(error.to_string()),
        })
    }

    /// Removes every kept copy whose hash is not in `needed`. Only files named like a copy are
    /// touched; returns the copies removed.
    pub(super) fn sweep(&self, needed: &HashSet<String>) -> std::io::Result<Vec<PathBuf>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut removed = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let Some(hash) = kept_hash(&path) else {
                continue;
            };
            if !needed.contains(hash) {
                std::fs::remove_file(&path)?;
                removed.push(path);
            }
        }
        Ok(removed)
    }
}

/// The content hash a kept copy is named after, if the path is named like one.
fn kept_hash(path: &Path) -> Option<&str> {
    if path.extension()? != std::env::consts::DLL_EXTENSION {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    (stem.len() == 64 && stem.bytes().all(|byte| byte.is_ascii_hexdigit())).then_some(stem)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_in_memory_database_keeps_nothing() {
        assert!(KeptBuilds::beside(&DbLocation::Memory).is_none());
    }

    #[test]
    fn copies_live_in_builds_beside_the_database() {
        let kept = KeptBuilds::beside(&DbLocation::File(PathBuf::from("a/state.db"))).unwrap();
        assert_eq!(kept.dir, Path::new("a/builds"));
        let kept = KeptBuilds::beside(&DbLocation::File(PathBuf::from("state.db"))).unwrap();
        assert_eq!(kept.dir, Path::new("./builds"));
    }

    #[test]
    fn a_sweep_removes_only_unneeded_copies_and_leaves_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let kept = KeptBuilds::beside(&DbLocation::File(dir.path().join("state.db"))).unwrap();
        std::fs::create_dir_all(&kept.dir).unwrap();
        let (needed, unneeded) = ("a".repeat(64), "b".repeat(64));
        for hash in [&needed, &unneeded] {
            std::fs::write(kept.path_of(hash), b"library").unwrap();
        }
        let other = kept.dir.join("notes.txt");
        std::fs::write(&other, b"mine").unwrap();
        let removed = kept.sweep(&HashSet::from([needed.clone()])).unwrap();
        assert_eq!(removed, vec![kept.path_of(&unneeded)]);
        assert!(kept.path_of(&needed).is_file());
        assert!(other.is_file());
    }

    #[test]
    fn a_missing_copy_is_none_and_a_renamed_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let kept = KeptBuilds::beside(&DbLocation::File(dir.path().join("state.db"))).unwrap();
        let hash = "c".repeat(64);
        assert!(kept.load(&hash).is_none());
        std::fs::create_dir_all(&kept.dir).unwrap();
        std::fs::write(kept.path_of(&hash), b"not a library").unwrap();
        let error = kept.load(&hash).unwrap().unwrap_err();
        assert!(error.contains("not a loadable library"), "{error}");
    }
}
