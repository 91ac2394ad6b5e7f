//! An orchestrator's replay-safe log lines (`ctx.log_*`) reach the process's log with their
//! instance, once each (not again when history is replayed). Its own test binary: it installs
//! the process-wide tracing subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_testing::engine::{run, samples_engine};
use serde_json::json;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Every event of the orchestration target, as `instance | level | message`.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<String>>>);

#[derive(Default)]
struct Fields {
    instance: String,
    message: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "instance" {
            self.instance = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "instance" => self.instance = format!("{value:?}").trim_matches('"').to_string(),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Collected {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != "durable_emu::orchestration" {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.0.lock().unwrap().push(format!(
            "{} | {} | {}",
            fields.instance,
            event.metadata().level(),
            fields.message
        ));
    }
}

#[test]
fn log_lines_reach_the_log_with_their_instance_once_each() {
    let collected = Collected::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(collected.clone()))
        .unwrap();
    let engine = samples_engine();
    let handle = engine.handle();
    run(&handle, "HelloSequence", json!(null), Some("hello-logs"));
    let lines = collected.0.lock().unwrap().clone();
    assert_eq!(
        lines,
        [
            "hello-logs | INFO | Tokyo greeted",
            "hello-logs | INFO | Seattle greeted",
            "hello-logs | INFO | London greeted",
        ],
        "each line once, in order, with its instance"
    );
}
