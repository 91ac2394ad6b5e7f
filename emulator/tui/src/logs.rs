//! Logs: the terminal belongs to the UI, so tracing output goes to a rolling file under
//! `.durable-emu/logs/` (tracing-appender, one file per day) and, as [`LogEntry`] messages, to the
//! logs view's in-memory ring (bounded in the model). `DURABLE_EMU_LOG=debug` (or `trace`, `warn`)
//! changes the level; the default is `info`.

use crate::msg::Msg;
use crossbeam_channel::Sender;
use std::path::Path;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

/// How many log lines the logs view keeps.
pub const RING_CAPACITY: usize = 2_000;

/// One log line for the logs view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Severity.
    pub level: Level,
    /// Where it came from (the module path).
    pub target: String,
    /// The message and any fields.
    pub message: String,
}

/// Keeps the file writer flushing; drop it last.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// Installs the global subscriber: the rolling file in `dir` and the ring fed through `ring`.
/// Fails only if a subscriber is already installed (then logging stays as it was).
pub fn init(dir: &Path, ring: Sender<Msg>) -> Result<LogGuard, String> {
    let level = match std::env::var("DURABLE_EMU_LOG").as_deref() {
        Ok("trace") => LevelFilter::TRACE,
        Ok("debug") => LevelFilter::DEBUG,
        Ok("warn") => LevelFilter::WARN,
        Ok("error") => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    };
    std::fs::create_dir_all(dir)
        .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let appender = tracing_appender::rolling::daily(dir, "durable-emu.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let file = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_filter(level);
    let subscriber = Registry::default()
        .with(file)
        .with(RingLayer { ring }.with_filter(level));
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|error| format!("cannot install the log subscriber: {error}"))?;
    Ok(guard)
}

/// Sends every event to the UI as a [`Msg::Log`]; drops lines when the UI is far behind.
struct RingLayer {
    ring: Sender<Msg>,
}

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut message = MessageVisitor::default();
        event.record(&mut message);
        let _ = self.ring.try_send(Msg::Log(LogEntry {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            message: message.text,
        }));
    }
}

#[derive(Default)]
struct MessageVisitor {
    text: String,
}

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.text, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            self.text.push_str(&format!(" {}={value}", field.name()));
        }
    }
}
