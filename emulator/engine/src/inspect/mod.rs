//! Inspection: pure derivations from a history, shared by every front end that shows or steps
//! through one (the terminal UI today; an HTTP history projection, gRPC rewind and history
//! streaming, or a remote stepper tomorrow).
//!
//! Owns: one line per event and the small text forms views share ([`rows`]), HTTP requests and
//! their answers as HTTP ([`http`]), entity calls and
//! their answers paired by request id ([`entities`]), bars over virtual
//! time ([`timeline`]), `when_all` groups and their throughput ([`fanout`]), the
//! failure-propagation tree ([`errors`]), which calls are attempts of one retried call
//! ([`retries`]), the replay stepper's requests and calls and the fork
//! plan ([`replay`]), and what an instance waits for ([`waiting`]). Each is a function of events (and, where a bar or a fork needs it, the
//! clock's now) in and plain data out, unit-tested on small tables.
//!
//! Must not know: terminals or any UI toolkit (no ratatui: [`Tone`] names a line's meaning, the
//! front end picks its colour), the store, threads or the core. Whoever calls the plugin or the
//! store (the engine's `fork`, the UI's replay lane) does so outside this module.

pub mod entities;
pub mod errors;
pub mod fanout;
pub mod http;
pub mod replay;
pub mod retries;
pub mod rows;
pub mod timeline;
pub mod waiting;

/// What a derived line means, for the front end to show it as it likes (a colour, a marker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Normal.
    Info,
    /// Good news.
    Ok,
    /// Worth a look.
    Warn,
    /// Something failed.
    Error,
    /// De-emphasised.
    Dim,
}
