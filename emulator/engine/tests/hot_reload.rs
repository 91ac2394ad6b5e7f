//! Hot reload end to end: a real function crate in a temporary directory, built by cargo, watched,
//! edited and rebuilt while instances run. Slow-ish: each edit is a real
//! cargo build (dependencies are shared with the other end-to-end builds in `target/e2e`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::cargo_build::BuildOptions;
use durable_emu_engine::engine::{Engine, EngineConfig, EngineEvent};
use durable_emu_engine::plugin::LoadedPlugin;
use durable_emu_engine::watch::{Target, WatchOptions, Watcher, load_once};
use durable_emu_testing::functions_crate::{
    FunctionsCrate, e2e_build_options, finish, wait_until_waiting_for_continue,
};
use durable_sdk::history::RuntimeStatus;
use durable_sdk::protocol::CallKind;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::TryRecvError;

fn build_options() -> BuildOptions {
    e2e_build_options()
}

/// The functions crate under edit, seen as a hot-reload target.
fn target(functions: &FunctionsCrate) -> Target {
    Target::Crate(functions.path().to_path_buf())
}

fn next_event(
    events: &mut Receiver<EngineEvent>,
    timeout: Duration,
    wanted: impl Fn(&EngineEvent) -> bool,
) -> Option<EngineEvent> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match events.try_recv() {
            Ok(event) if wanted(&event) => return Some(event),
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(10)),
            Err(TryRecvError::Closed) => return None,
        }
    }
    None
}

fn wait_for_load(events: &mut Receiver<EngineEvent>) -> u32 {
    let event = next_event(events, Duration::from_secs(300), |event| {
        matches!(
            event,
            EngineEvent::BuildLoaded { .. } | EngineEvent::BuildFailed { .. }
        )
    });
    match event {
        Some(EngineEvent::BuildLoaded { number, .. }) => number,
        other => panic!("expected a new build, got {other:?}"),
    }
}

#[test]
fn edits_reload_running_instances_or_suspend_them_with_a_diff() {
    let functions = FunctionsCrate::new("reload-edits");
    let first = load_once(&target(&functions), &build_options(), &mut |_| {}).unwrap();
    let first_hash = first.content_hash.clone();
    let engine = Engine::start(EngineConfig {
        auto_skip: true,
        ..EngineConfig::in_memory(first)
    })
    .unwrap();
    let handle = engine.handle();
    let mut events = handle.subscribe();
    let _watcher = Watcher::start(
        target(&functions),
        WatchOptions {
            build: build_options(),
            debounce: Duration::from_millis(300),
        },
        handle.clone(),
        Some(first_hash),
    )
    .unwrap();

    // A compatible edit: the running instance moves to the new build, and its next activity
    // runs the new code.
    let a = handle
        .start_orchestration("Flow", Value::Null, None)
        .unwrap();
    wait_until_waiting_for_continue(&handle, &a);
    functions.write("HELLO", "");
    assert_eq!(wait_for_load(&mut events), 2);
    assert_eq!(handle.instance(&a).unwrap().unwrap().build, Some(2));
    assert_eq!(finish(&handle, &a), json!(["GREETING one", "HELLO two"]));
    let recorded_by: Vec<Option<u32>> = handle.history(&a).unwrap()[0].builds.clone();
    assert_eq!(
        recorded_by.first(),
        Some(&Some(1)),
        "the first episode ran on build #1"
    );
    assert_eq!(
        recorded_by.last(),
        Some(&Some(2)),
        "the last episode ran on build #2"
    );

    // An incompatible edit: a timer now comes before the first activity. The instance started on
    // build #2 is suspended with the diff and stays on build #2.
    let b = handle
        .start_orchestration("Flow", Value::Null, None)
        .unwrap();
    let b2 = handle
        .start_orchestration("Flow", Value::Null, None)
        .unwrap();
    wait_until_waiting_for_continue(&handle, &b);
    wait_until_waiting_for_continue(&handle, &b2);
    functions.write(
        "HELLO",
        "ctx.create_timer_after(Duration::from_secs(60)).await?;",
    );
    assert_eq!(wait_for_load(&mut events), 3);
    let diverged = next_event(
        &mut events,
        Duration::from_secs(10),
        |event| matches!(event, EngineEvent::InstanceDiverged { instance_id, .. } if *instance_id == b),
    );
    let Some(EngineEvent::InstanceDiverged {
        instance_id,
        build,
        pinned_build,
        diff,
        ..
    }) = diverged
    else {
        panic!("expected a divergence, got {diverged:?}");
    };
    assert_eq!((instance_id.as_str(), build), (b.as_str(), 3));
    // The event names the build the instance stays on, so a front end can offer "resume on #2".
    assert_eq!(pinned_build, Some(2));
    let diff = diff.expect("a structured diff");
    assert_eq!(diff.sequence_id, 0);
    assert_eq!(diff.expected.as_ref().unwrap().kind, CallKind::Activity);
    assert_eq!(diff.expected.as_ref().unwrap().name, "Greet");
    assert_eq!(diff.actual.as_ref().unwrap().kind, CallKind::Timer);
    let record = handle.instance(&b).unwrap().unwrap();
    assert_eq!(record.status, RuntimeStatus::Suspended);
    assert_eq!(record.build, Some(2));
    assert_eq!(record.divergence.unwrap().diff.unwrap(), diff);

    // Resumed pinned to its old build, it completes with the old code.
    handle.resume(&b, None).unwrap();
    assert_eq!(finish(&handle, &b), json!(["HELLO one", "HELLO two"]));
    let record = handle.instance(&b).unwrap().unwrap();
    assert!(record.pinned);
    assert_eq!(record.build, Some(2));
    // Restarted instead, it runs again from the start on the new build; the old one ends.
    assert!(handle.instance(&b2).unwrap().unwrap().divergence.is_some());
    let again = handle.restart(&b2).unwrap();
    let ended = handle
        .wait_until_terminal(&b2, Duration::from_secs(30))
        .unwrap()
        .unwrap();
    assert_eq!(ended.status, RuntimeStatus::Terminated);
    assert_eq!(
        ended.output,
        json!(format!("restarted on build #3 as {again}"))
    );
    wait_until_waiting_for_continue(&handle, &again);
    assert_eq!(handle.instance(&again).unwrap().unwrap().build, Some(3));
    assert_eq!(finish(&handle, &again), json!(["HELLO one", "HELLO two"]));
    // Front ends can still reach every loaded build (the replay stepper uses it).
    assert!(handle.plugin(Some(2)).unwrap().is_some());
    assert!(handle.plugin(Some(99)).unwrap().is_none());
    // New instances run the new build.
    let c = handle
        .start_orchestration("Flow", Value::Null, None)
        .unwrap();
    wait_until_waiting_for_continue(&handle, &c);
    assert_eq!(handle.instance(&c).unwrap().unwrap().build, Some(3));

    // A broken edit keeps build #3 active, reports the compiler error and changes nothing.
    functions.write_raw("this is not rust");
    let failed = next_event(&mut events, Duration::from_secs(300), |event| {
        matches!(
            event,
            EngineEvent::BuildFailed { .. } | EngineEvent::BuildLoaded { .. }
        )
    });
    let Some(EngineEvent::BuildFailed {
        errors,
        first_error,
        reason,
        ..
    }) = failed
    else {
        panic!("expected a failed build, got {failed:?}");
    };
    assert!(
        errors.iter().any(|error| error.contains("error")),
        "{errors:?}"
    );
    // The first error is located in the broken file, and the reason stays one line.
    let first_error = first_error.expect("the compile error has a location");
    assert!(first_error.starts_with("src/lib.rs:1:"), "{first_error}");
    assert!(!reason.contains('\n'), "{reason}");
    assert_eq!(handle.active_build().unwrap(), Some(3));
    assert_eq!(handle.builds().unwrap().len(), 3);
    assert_eq!(finish(&handle, &c), json!(["HELLO one", "HELLO two"]));

    // Two quick saves give one reload.
    functions.write("HI", "");
    std::thread::sleep(Duration::from_millis(30));
    functions.write("HEY", "");
    assert_eq!(wait_for_load(&mut events), 4);
    let another = next_event(&mut events, Duration::from_secs(3), |event| {
        matches!(
            event,
            EngineEvent::BuildStarted { .. } | EngineEvent::BuildLoaded { .. }
        )
    });
    assert!(another.is_none(), "a second build followed: {another:?}");
    let d = handle
        .start_orchestration("Flow", Value::Null, None)
        .unwrap();
    wait_until_waiting_for_continue(&handle, &d);
    assert_eq!(finish(&handle, &d), json!(["HEY one", "HEY two"]));
}

#[test]
fn a_deleted_or_broken_library_file_is_reported_and_the_session_goes_on() {
    let functions = FunctionsCrate::new("reload-library-file");
    functions.write("SALUT", "");
    let built =
        durable_emu_engine::cargo_build::build_cdylib(functions.path(), &build_options()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("libfunctions.so");
    std::fs::copy(&built, &library).unwrap();
    let plugin = LoadedPlugin::load(&library).unwrap();
    let hash = plugin.content_hash.clone();
    let engine = Engine::start(EngineConfig::in_memory(plugin)).unwrap();
    let handle = engine.handle();
    let mut events = handle.subscribe();
    let _watcher = Watcher::start(
        Target::Library(library.clone()),
        WatchOptions {
            build: build_options(),
            debounce: Duration::from_millis(100),
        },
        handle.clone(),
        Some(hash),
    )
    .unwrap();

    // Rewriting the same bytes does not reload.
    std::fs::write(&library, std::fs::read(&built).unwrap()).unwrap();
    let reloaded = next_event(&mut events, Duration::from_secs(2), |event| {
        matches!(event, EngineEvent::BuildLoaded { .. })
    });
    assert!(reloaded.is_none(), "{reloaded:?}");

    std::fs::remove_file(&library).unwrap();
    let failed = next_event(&mut events, Duration::from_secs(10), |event| {
        matches!(event, EngineEvent::BuildFailed { .. })
    });
    let Some(EngineEvent::BuildFailed { reason, .. }) = failed else {
        panic!("expected the deletion to be reported, got {failed:?}");
    };
    assert!(reason.contains("was deleted"), "{reason}");

    // A file that is not a library is refused; the build in use keeps working.
    std::fs::write(&library, b"not a library").unwrap();
    let failed = next_event(&mut events, Duration::from_secs(10), |event| {
        matches!(event, EngineEvent::BuildFailed { .. })
    });
    assert!(failed.is_some());
    assert_eq!(handle.active_build().unwrap(), Some(1));
    let id = handle
        .start_orchestration("Flow", Value::Null, None)
        .unwrap();
    wait_until_waiting_for_continue(&handle, &id);
    assert_eq!(finish(&handle, &id), json!(["SALUT one", "SALUT two"]));

    // Putting a good library back loads it.
    let mut bytes = std::fs::read(&built).unwrap();
    bytes.extend_from_slice(b"trailing bytes: new content, same code");
    std::fs::write(&library, bytes).unwrap();
    assert_eq!(wait_for_load(&mut events), 2);
}
