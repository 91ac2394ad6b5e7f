//! Builds that instances need survive an emulator restart: the library of every adopted build is
//! kept beside the database (`builds/<content hash>.<ext>`), loaded again on start for the
//! instances still on it, and removed once none is. Restarting on unchanged code keeps the build
//! number. The functions are a real crate in a temporary directory, built by cargo in two versions
//! (as `hot_reload.rs` does); each test copies a version over one library path, as cargo does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::DbLocation;
use durable_emu_engine::engine::{Engine, EngineConfig, EngineError, WireKind};
use durable_emu_engine::plugin::LoadedPlugin;
use durable_emu_testing::functions_crate::{
    FunctionsCrate, TIMER_BEFORE_FIRST_CALL, finish, wait_until_waiting_for_continue,
};
use durable_sdk::history::RuntimeStatus;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// The two versions' library bytes: `OLD`, and `NEW` with a timer before the first call.
struct Versions {
    old: Vec<u8>,
    new: Vec<u8>,
}

/// Built once for every test of this file (one crate, rebuilt: its library path is the same).
fn versions() -> &'static Versions {
    static VERSIONS: OnceLock<Versions> = OnceLock::new();
    VERSIONS.get_or_init(|| {
        let functions = FunctionsCrate::new("pinned-builds");
        functions.write("OLD", "");
        let old = functions.build_bytes();
        functions.write("NEW", TIMER_BEFORE_FIRST_CALL);
        let new = functions.build_bytes();
        Versions { old, new }
    })
}

/// A database and the one library path the versions are written to, in a temporary directory.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Self {
        let place = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(place.dir.path().join("lib")).unwrap();
        place
    }

    fn library(&self) -> PathBuf {
        self.dir
            .path()
            .join("lib")
            .join(format!("libfunctions.{}", std::env::consts::DLL_EXTENSION))
    }

    /// Writes a version over the library path and loads it.
    fn load(&self, bytes: &[u8]) -> LoadedPlugin {
        std::fs::write(self.library(), bytes).unwrap();
        LoadedPlugin::load(&self.library()).unwrap()
    }

    fn db(&self) -> DbLocation {
        DbLocation::File(self.dir.path().join("state").join("state.db"))
    }

    fn kept_dir(&self) -> PathBuf {
        self.dir.path().join("state").join("builds")
    }

    /// The content hashes of the kept library copies.
    fn kept(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.kept_dir()) else {
            return Vec::new();
        };
        let mut hashes: Vec<String> = entries
            .map(|entry| {
                let path = entry.unwrap().path();
                path.file_stem().unwrap().to_str().unwrap().to_string()
            })
            .collect();
        hashes.sort();
        hashes
    }

    fn start(&self, plugin: LoadedPlugin) -> Engine {
        Engine::start(EngineConfig {
            db: self.db(),
            auto_skip: true,
            ..EngineConfig::in_memory(plugin)
        })
        .unwrap()
    }
}

fn hash_of(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Starts `Flow` instances on the old version, waits for them to reach their wait, and loads the
/// new version over the same library path: every one of them diverges from build #2.
fn diverge_on_new_build(place: &Place, count: usize) -> (Engine, Vec<String>) {
    let engine = place.start(place.load(&versions().old));
    let handle = engine.handle();
    let ids: Vec<String> = (0..count)
        .map(|_| {
            handle
                .start_orchestration("Flow", Value::Null, None)
                .unwrap()
        })
        .collect();
    for id in &ids {
        wait_until_waiting_for_continue(&handle, id);
    }
    assert_eq!(handle.load_build(place.load(&versions().new)).unwrap(), 2);
    for id in &ids {
        let record = handle.instance(id).unwrap().unwrap();
        assert_eq!(record.status, RuntimeStatus::Suspended, "{record:?}");
        assert_eq!(record.build, Some(1));
        assert!(record.divergence.is_some(), "{record:?}");
    }
    (engine, ids)
}

#[test]
fn restarting_on_unchanged_code_keeps_the_build_number() {
    let dir = tempfile::tempdir().unwrap();
    let db = DbLocation::File(dir.path().join("state.db"));
    let start = || {
        Engine::start(EngineConfig {
            db: db.clone(),
            ..EngineConfig::in_memory(LoadedPlugin::builtin().unwrap())
        })
        .unwrap()
    };
    let first = start();
    assert_eq!(first.handle().active_build().unwrap(), Some(1));
    first.shutdown();
    let second = start();
    let handle = second.handle();
    assert_eq!(handle.active_build().unwrap(), Some(1));
    let builds = handle.builds().unwrap();
    assert_eq!(builds.len(), 1, "{builds:?}");
    // The built-in functions are part of the binary: there is nothing to keep a copy of.
    assert!(!dir.path().join("builds").exists());
}

#[test]
fn a_diverged_instance_resumed_pinned_survives_a_restart_and_completes_on_its_old_build() {
    let place = Place::new();
    let (engine, ids) = diverge_on_new_build(&place, 2);
    let (pinned, waiting) = (&ids[0], &ids[1]);
    engine.handle().resume(pinned, None).unwrap();
    assert!(engine.handle().instance(pinned).unwrap().unwrap().pinned);
    engine.shutdown();
    let (old, new) = (hash_of(&versions().old), hash_of(&versions().new));
    let mut both = vec![old.clone(), new.clone()];
    both.sort();
    assert_eq!(
        place.kept(),
        both,
        "both builds are kept while instances need the old one"
    );

    // The library path now holds the new version only; the old build comes from its kept copy.
    let engine = place.start(place.load(&versions().new));
    let handle = engine.handle();
    assert_eq!(handle.active_build().unwrap(), Some(2));
    assert_eq!(handle.builds().unwrap().len(), 2);
    assert!(handle.plugin(Some(1)).unwrap().is_some());
    assert_eq!(finish(&handle, pinned), json!(["OLD one", "OLD two"]));
    // Diverged before the restart and resumed after it: pinned to the reloaded old build.
    let record = handle.instance(waiting).unwrap().unwrap();
    assert!(record.divergence.is_some(), "{record:?}");
    handle.resume(waiting, None).unwrap();
    assert_eq!(finish(&handle, waiting), json!(["OLD one", "OLD two"]));
    for id in &ids {
        let record = handle.instance(id).unwrap().unwrap();
        assert_eq!((record.build, record.pinned), (Some(1), true), "{record:?}");
    }
    assert_eq!(
        place.kept(),
        vec![new],
        "once no instance is on the old build, its copy is removed"
    );
}

#[test]
fn resume_is_refused_when_the_pinned_build_is_gone_and_terminate_still_works() {
    let place = Place::new();
    let (engine, ids) = diverge_on_new_build(&place, 1);
    let id = &ids[0];
    engine.shutdown();
    std::fs::remove_file(place.kept_dir().join(format!(
        "{}.{}",
        hash_of(&versions().old),
        std::env::consts::DLL_EXTENSION
    )))
    .unwrap();

    let engine = place.start(place.load(&versions().new));
    let handle = engine.handle();
    assert!(handle.plugin(Some(1)).unwrap().is_none());
    let error = handle.resume(id, None).unwrap_err();
    assert!(
        matches!(error, EngineError::BuildNotLoaded { build: 1, .. }),
        "{error:?}"
    );
    assert_eq!(error.kind(), WireKind::FailedPrecondition);
    let message = error.to_string();
    assert!(
        message.contains("#1") && message.contains("restart") && message.contains("terminate"),
        "{message}"
    );
    // Refused means unchanged: still suspended, still diverged, not pinned.
    let record = handle.instance(id).unwrap().unwrap();
    assert_eq!(record.status, RuntimeStatus::Suspended);
    assert!(record.divergence.is_some() && !record.pinned, "{record:?}");
    handle.terminate(id, json!("gave up"), false).unwrap();
    let ended = handle
        .wait_until_terminal(id, Duration::from_secs(30))
        .unwrap()
        .unwrap();
    assert_eq!(ended.status, RuntimeStatus::Terminated);
}

#[test]
fn a_divergence_is_stored_with_both_builds_and_its_diff_and_reads_back_the_same_after_a_restart() {
    let place = Place::new();
    let (engine, ids) = diverge_on_new_build(&place, 1);
    let id = &ids[0];
    let before = engine.handle().instance(id).unwrap().unwrap();
    let divergence = before.divergence.clone().unwrap();
    // What a front end shows: the build that does not replay it, the one it stays on, the diff.
    assert_eq!((divergence.build, before.build), (2, Some(1)));
    let diff = divergence.diff.clone().expect("a structured diff");
    assert!(
        diff.expected.is_some() && diff.actual.is_some() && diff.expected != diff.actual,
        "{diff:?}"
    );
    assert!(
        divergence
            .reason
            .contains(&format!("#{}", diff.sequence_id))
    );
    engine.shutdown();

    let engine = place.start(place.load(&versions().new));
    let after = engine.handle().instance(id).unwrap().unwrap();
    assert_eq!(after.status, RuntimeStatus::Suspended);
    assert_eq!(after.build, Some(1));
    assert!(!after.pinned);
    assert_eq!(after.divergence, Some(divergence));
}
