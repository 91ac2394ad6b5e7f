//! Fast-forward is the same as time passing: `advance_clock` and `advance_to_next_timer` under the
//! virtual clock with auto-skip off fire the timers due on the way in time order, and each woken
//! orchestration runs (with its activities) and schedules its next timer before the clock moves
//! on. On the built-in samples, in memory; assertions are on activity counts and the virtual
//! times their events carry, the clock, and the `ClockMoved` steps.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use durable_emu_engine::engine::{Engine, EngineConfig, EngineEvent, EngineHandle};
use durable_emu_testing::engine::{all_events, eventually, samples_config};
use durable_sdk::history::{EventKind, RuntimeStatus};
use durable_sdk::serde_json::json;
use std::time::Duration;
use tokio::sync::broadcast;

const HOUR: Duration = Duration::from_secs(3600);

fn engine() -> Engine {
    Engine::start(EngineConfig {
        auto_skip: false,
        ..samples_config()
    })
    .unwrap()
}

/// Waits until the instance waits on a timer: its first episode and activity are done.
fn waiting_on_a_timer(handle: &EngineHandle, id: &str) {
    eventually("the instance to wait on a timer", || {
        handle
            .pending_timers()
            .unwrap()
            .iter()
            .any(|timer| timer.instance_id == id)
    });
}

fn arrived(handle: &EngineHandle) {
    eventually("the advance to arrive", || {
        handle.advancing_to().unwrap().is_none()
    });
}

/// When each `activity` was scheduled, over all the instance's executions, in order.
fn scheduled_at(handle: &EngineHandle, id: &str, activity: &str) -> Vec<DateTime<Utc>> {
    all_events(handle, id)
        .iter()
        .filter(|event| matches!(&event.kind, EventKind::TaskScheduled { name, .. } if name == activity))
        .map(|event| event.timestamp)
        .collect()
}

/// The times of the `ClockMoved` events received so far.
fn clock_steps(events: &mut broadcast::Receiver<EngineEvent>) -> Vec<DateTime<Utc>> {
    std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|event| match event {
            EngineEvent::ClockMoved { now, .. } => Some(now),
            _ => None,
        })
        .collect()
}

fn every(start: DateTime<Utc>, step: Duration, count: u32) -> Vec<DateTime<Utc>> {
    (0..count)
        .map(|k| start + chrono::Duration::from_std(step * k).unwrap())
        .collect()
}

#[test]
fn advancing_three_days_runs_a_six_hourly_cleanup_twelve_times_each_at_its_own_time() {
    let engine = engine();
    let handle = engine.handle();
    handle
        .start_orchestration(
            "PeriodicCleanup",
            json!({"iterations": 20, "interval_hours": 6}),
            Some("cleanup".into()),
        )
        .unwrap();
    waiting_on_a_timer(&handle, "cleanup");
    let start = handle.now().unwrap();
    assert_eq!(scheduled_at(&handle, "cleanup", "Cleanup"), [start]);
    let mut events = handle.subscribe();

    let target = handle.advance_clock(72 * HOUR).unwrap();
    assert_eq!(target, start + chrono::Duration::days(3));
    arrived(&handle);

    assert_eq!(handle.now().unwrap(), target);
    // The one before the advance, then one every 6 hours up to and including the 72nd hour.
    assert_eq!(
        scheduled_at(&handle, "cleanup", "Cleanup"),
        every(start, 6 * HOUR, 13)
    );
    assert_eq!(
        clock_steps(&mut events),
        every(start, 6 * HOUR, 13)[1..],
        "one ClockMoved per step"
    );
    let record = handle.instance("cleanup").unwrap().unwrap();
    assert_eq!(record.status, RuntimeStatus::Running);
    let timers = handle.pending_timers().unwrap();
    assert_eq!(timers.len(), 1);
    assert_eq!(timers[0].fire_at, target + chrono::Duration::hours(6));
}

#[test]
fn advancing_an_hour_polls_a_ten_minute_monitor_six_times() {
    let engine = engine();
    let handle = engine.handle();
    handle
        .start_orchestration(
            "MonitorJob",
            json!({"job_id": "j1", "polls_needed": 100, "interval_minutes": 10, "deadline_hours": 24}),
            Some("monitor".into()),
        )
        .unwrap();
    waiting_on_a_timer(&handle, "monitor");
    let start = handle.now().unwrap();

    let target = handle.advance_clock(HOUR).unwrap();
    arrived(&handle);

    assert_eq!(handle.now().unwrap(), target);
    assert_eq!(target, start + chrono::Duration::hours(1));
    // The check at the start, then six in the hour (across a continue-as-new after the fifth).
    assert_eq!(
        scheduled_at(&handle, "monitor", "CheckJobStatus"),
        every(start, Duration::from_secs(600), 7)
    );
    assert_eq!(handle.history("monitor").unwrap().len(), 2);
}

#[test]
fn an_advance_with_nothing_due_moves_straight_to_its_end() {
    let engine = engine();
    let handle = engine.handle();
    handle
        .start_orchestration(
            "ApprovalWorkflow",
            json!({"request": "leave", "timeout_hours": 72}),
            Some("approval".into()),
        )
        .unwrap();
    waiting_on_a_timer(&handle, "approval");
    let start = handle.now().unwrap();
    let mut events = handle.subscribe();

    let target = handle.advance_clock(HOUR).unwrap();

    // Nothing runs on the way, so the advance is over by the time it is answered.
    assert_eq!(handle.advancing_to().unwrap(), None);
    assert_eq!(handle.now().unwrap(), start + chrono::Duration::hours(1));
    assert_eq!(clock_steps(&mut events), [target]);
    assert_eq!(
        handle.instance("approval").unwrap().unwrap().status,
        RuntimeStatus::Running
    );
    assert_eq!(handle.pending_timers().unwrap().len(), 1);
}

#[test]
fn next_timer_steps_to_the_first_timer_and_runs_what_it_wakes() {
    let engine = engine();
    let handle = engine.handle();
    handle
        .start_orchestration(
            "PeriodicCleanup",
            json!({"iterations": 20, "interval_hours": 6}),
            Some("cleanup".into()),
        )
        .unwrap();
    waiting_on_a_timer(&handle, "cleanup");
    let start = handle.now().unwrap();

    let fired_at = handle.advance_to_next_timer().unwrap();
    assert_eq!(fired_at, Some(start + chrono::Duration::hours(6)));
    arrived(&handle);

    assert_eq!(Some(handle.now().unwrap()), fired_at);
    assert_eq!(
        scheduled_at(&handle, "cleanup", "Cleanup"),
        every(start, 6 * HOUR, 2)
    );
    // The woken execution scheduled its next timer, which is the next "next timer".
    eventually("the next timer", || {
        handle.pending_timers().unwrap().len() == 1
    });
    assert_eq!(
        handle.advance_to_next_timer().unwrap(),
        Some(start + chrono::Duration::hours(12))
    );
}

#[test]
fn under_auto_skip_an_advance_jumps_at_once_as_before() {
    let engine = Engine::start(samples_config()).unwrap();
    let handle = engine.handle();
    let start = handle.now().unwrap();
    let now = handle.advance_clock(3 * HOUR).unwrap();
    assert_eq!(now, start + chrono::Duration::hours(3));
    assert_eq!(handle.now().unwrap(), now);
    assert_eq!(handle.advancing_to().unwrap(), None);
}
