//! A playing virtual clock runs at real speed: it moves without being told, fires a timer when
//! it comes due with no advance, stops where it is when paused, still steps through timers on an
//! advance, and a restart never takes it back. On the built-in samples (in memory, or in a
//! temporary database file for restarts); auto-skip off, as the UI runs it. Waits are polls with
//! a generous deadline, never assertions on how fast anything ran.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use durable_emu_engine::DbLocation;
use durable_emu_engine::engine::{Engine, EngineConfig, EngineEvent, EngineHandle};
use durable_emu_testing::engine::{all_events, eventually, samples_config};
use durable_sdk::history::EventKind;
use durable_sdk::serde_json::json;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

fn playing_engine() -> Engine {
    Engine::start(EngineConfig {
        auto_skip: false,
        playing: true,
        ..samples_config()
    })
    .unwrap()
}

/// A monitor that polls every `interval_minutes` and never finishes on its own.
fn start_monitor(handle: &EngineHandle, id: &str, interval_minutes: u64) {
    handle
        .start_orchestration(
            "MonitorJob",
            json!({"job_id": "j1", "polls_needed": 1000, "interval_minutes": interval_minutes, "deadline_hours": 24}),
            Some(id.into()),
        )
        .unwrap();
    eventually("the monitor to wait on a timer", || {
        handle
            .pending_timers()
            .unwrap()
            .iter()
            .any(|timer| timer.instance_id == id)
    });
}

/// When each status check was scheduled, in order.
fn polls(handle: &EngineHandle, id: &str) -> Vec<DateTime<Utc>> {
    all_events(handle, id)
        .iter()
        .filter(|event| matches!(&event.kind, EventKind::TaskScheduled { name, .. } if name == "CheckJobStatus"))
        .map(|event| event.timestamp)
        .collect()
}

#[test]
fn a_playing_virtual_clock_moves_without_being_told() {
    let engine = playing_engine();
    let handle = engine.handle();
    let clock = handle.clock().unwrap();
    assert!(clock.playing, "{clock:?}");
    let start = clock.now;
    eventually("virtual time to move by itself", || {
        handle.now().unwrap() > start
    });
}

#[test]
fn a_timer_due_in_a_second_fires_while_playing_without_any_advance() {
    let engine = Engine::start(EngineConfig {
        auto_skip: false,
        ..samples_config()
    })
    .unwrap();
    let handle = engine.handle();
    start_monitor(&handle, "monitor", 1);
    let fire_at = handle.pending_timers().unwrap()[0].fire_at;
    // Paused, the clock is taken to a second before the timer; nothing moves it after that but
    // real time.
    let short = (fire_at - handle.now().unwrap() - chrono::Duration::seconds(1))
        .to_std()
        .unwrap();
    handle.advance_clock(short).unwrap();
    eventually("the advance to arrive", || {
        handle.advancing_to().unwrap().is_none()
    });
    assert_eq!(polls(&handle, "monitor").len(), 1);
    let mut events = handle.subscribe();

    handle.set_clock_playing(true).unwrap();
    eventually("the timer to fire and the monitor to poll again", || {
        polls(&handle, "monitor").len() == 2
    });

    let second = polls(&handle, "monitor")[1];
    assert!(second >= fire_at, "polled at {second}, before {fire_at}");
    // The next timer is a minute on: time was not skipped to it.
    let next = handle.pending_timers().unwrap()[0].fire_at;
    assert!(handle.now().unwrap() < next);
    let heard: Vec<EngineEvent> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert!(
        heard.iter().any(
            |event| matches!(event, EngineEvent::ClockMoved { now, playing: true } if *now >= fire_at)
        ),
        "subscribers hear where the playing clock is when the timer fires: {heard:?}"
    );
}

#[test]
fn pausing_a_playing_clock_stops_it_where_it_is() {
    let engine = playing_engine();
    let handle = engine.handle();
    let start = handle.now().unwrap();
    eventually("virtual time to move", || handle.now().unwrap() > start);

    let paused = handle.set_clock_playing(false).unwrap();
    assert!(paused > start);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(handle.now().unwrap(), paused);
    let clock = handle.clock().unwrap();
    assert!(!clock.playing);
    assert_eq!(clock.now, paused);
    // Playing again goes on from where it stopped, never from before.
    let resumed = handle.set_clock_playing(true).unwrap();
    assert!(resumed >= paused);
    eventually("virtual time to move again", || {
        handle.now().unwrap() > resumed
    });
}

#[test]
fn advancing_while_playing_still_steps_through_every_timer_on_the_way() {
    let engine = playing_engine();
    let handle = engine.handle();
    start_monitor(&handle, "monitor", 10);
    let start = polls(&handle, "monitor")[0];

    // Each timer is set from the time its poll ran, which a playing clock puts a little after
    // the one before fired: 65 minutes holds six of them, not a seventh.
    let target = handle.advance_clock(65 * MINUTE).unwrap();
    assert!(target >= start + chrono::Duration::minutes(65));
    eventually("the advance to arrive", || {
        handle.advancing_to().unwrap().is_none()
    });

    assert!(handle.now().unwrap() >= target);
    let polled = polls(&handle, "monitor");
    assert_eq!(
        polled.len(),
        7,
        "the first poll and one per 10 minutes: {polled:?}"
    );
    // Each poll ran after its own timer and before the next one was due: a step per timer.
    for (k, at) in polled.iter().enumerate().skip(1) {
        let due = start + chrono::Duration::minutes(10 * k as i64);
        assert!(
            *at >= due && *at < due + chrono::Duration::minutes(10),
            "poll {k} at {at}, its timer due at {due}"
        );
    }
    assert!(handle.clock().unwrap().playing);
}

#[test]
fn virtual_time_never_goes_back_across_a_restart_after_playing() {
    let dir = tempfile::tempdir().unwrap();
    let config = |playing: bool| EngineConfig {
        db: DbLocation::File(dir.path().join("state.db")),
        auto_skip: false,
        playing,
        ..samples_config()
    };
    let engine = Engine::start(config(true)).unwrap();
    let handle = engine.handle();
    // A jump is stored by its batch; the time played after it, by every batch after (the
    // last one is the stop's).
    let jumped = handle.advance_clock(MINUTE).unwrap();
    eventually("virtual time to play on past the jump", || {
        handle.now().unwrap() > jumped
    });
    let last = handle.now().unwrap();
    engine.shutdown();

    let engine = Engine::start(config(false)).unwrap();
    let handle = engine.handle();
    let clock = handle.clock().unwrap();
    assert!(
        clock.now >= last,
        "restarted at {}, before {last}",
        clock.now
    );
    assert!(!clock.playing, "the configuration says paused");
    let reached = clock.now;
    engine.shutdown();

    let engine = Engine::start(config(true)).unwrap();
    let clock = engine.handle().clock().unwrap();
    assert!(clock.now >= reached);
    assert!(clock.playing);
    engine.shutdown();
}
