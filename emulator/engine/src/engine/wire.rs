//! How an [`EngineError`] travels over a wire: each variant belongs to exactly one
//! [`WireKind`], and each kind has one HTTP status and one gRPC status code.
//!
//! Owns the mapping and nothing else: it knows no HTTP or gRPC library (the codes are plain
//! numbers, as `google.rpc.Code` numbers them), so a front end converts a kind into its own
//! status type in one place. The match in [`EngineError::kind`] is exhaustive on purpose: a new
//! variant does not compile until someone decides what a client should see. The table in
//! docs/architecture.md ("Errors at the wire") is checked against this file by a unit test.

use super::EngineError;

/// What kind of failure a client is told about; one HTTP status and one gRPC code each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireKind {
    /// The request itself is wrong; sending it again cannot succeed.
    InvalidArgument,
    /// A value in the request is over the configured size limit.
    PayloadTooLarge,
    /// What the request names does not exist.
    NotFound,
    /// What the request would create exists already.
    AlreadyExists,
    /// The request is well formed but the state it meets does not allow it (terminal, still
    /// running, nothing loaded, a clock that cannot move); changing that state first helps.
    FailedPrecondition,
    /// The engine did not answer before the caller's deadline (busy in a plugin call).
    DeadlineExceeded,
    /// The engine has stopped or its store is failing; trying again later may succeed.
    Unavailable,
    /// Something broke inside the emulator or its database.
    Internal,
}

/// Every kind, in the order of the table in the docs.
pub const WIRE_KINDS: [WireKind; 8] = [
    WireKind::InvalidArgument,
    WireKind::PayloadTooLarge,
    WireKind::NotFound,
    WireKind::AlreadyExists,
    WireKind::FailedPrecondition,
    WireKind::DeadlineExceeded,
    WireKind::Unavailable,
    WireKind::Internal,
];

impl WireKind {
    /// The HTTP status a REST front end answers with.
    ///
    /// `FailedPrecondition` is 409 rather than the 400 of Google's table so that an HTTP client
    /// can tell "fix your request" (400) from "fix the instance first" (409); `PayloadTooLarge`
    /// is 413, the status HTTP has for exactly this.
    pub fn http_status(self) -> u16 {
        match self {
            WireKind::InvalidArgument => 400,
            WireKind::PayloadTooLarge => 413,
            WireKind::NotFound => 404,
            WireKind::AlreadyExists => 409,
            WireKind::FailedPrecondition => 409,
            WireKind::DeadlineExceeded => 504,
            WireKind::Unavailable => 503,
            WireKind::Internal => 500,
        }
    }

    /// The gRPC status code (its number in `google.rpc.Code`).
    ///
    /// `PayloadTooLarge` is `INVALID_ARGUMENT`, not `RESOURCE_EXHAUSTED`: the same request will
    /// always be refused, and `RESOURCE_EXHAUSTED` invites a retry after back-off.
    pub fn grpc_code(self) -> i32 {
        match self {
            WireKind::InvalidArgument | WireKind::PayloadTooLarge => 3,
            WireKind::NotFound => 5,
            WireKind::AlreadyExists => 6,
            WireKind::FailedPrecondition => 9,
            WireKind::DeadlineExceeded => 4,
            WireKind::Unavailable => 14,
            WireKind::Internal => 13,
        }
    }

    /// The gRPC code's name, as gRPC spells it.
    pub fn grpc_name(self) -> &'static str {
        match self.grpc_code() {
            3 => "INVALID_ARGUMENT",
            4 => "DEADLINE_EXCEEDED",
            5 => "NOT_FOUND",
            6 => "ALREADY_EXISTS",
            9 => "FAILED_PRECONDITION",
            14 => "UNAVAILABLE",
            // 13; the codes above are the only ones grpc_code gives.
            _ => "INTERNAL",
        }
    }
}

impl EngineError {
    /// What kind of failure this is for a client across a wire.
    pub fn kind(&self) -> WireKind {
        match self {
            EngineError::InvalidArgument(_) | EngineError::Import(_) => WireKind::InvalidArgument,
            EngineError::PayloadTooLarge(_) => WireKind::PayloadTooLarge,
            EngineError::InstanceNotFound(_)
            | EngineError::UnknownOrchestration { .. }
            | EngineError::FaultRuleNotFound(_) => WireKind::NotFound,
            EngineError::InstanceExists(_)
            | EngineError::InstanceEnded { .. }
            | EngineError::AlreadyExists { .. } => WireKind::AlreadyExists,
            EngineError::InstanceTerminal { .. }
            | EngineError::NotEnded { .. }
            | EngineError::NotFailed { .. }
            | EngineError::InstanceRunning(_)
            | EngineError::BuildNotLoaded { .. }
            | EngineError::NoPlugin
            | EngineError::Clock(_) => WireKind::FailedPrecondition,
            EngineError::Unresponsive { .. } => WireKind::DeadlineExceeded,
            EngineError::Stopped | EngineError::StoreFailed(_) => WireKind::Unavailable,
            EngineError::Store(_) | EngineError::StoredTime(_) | EngineError::EngineThread(_) => {
                WireKind::Internal
            }
        }
    }

    /// The HTTP status for this error (see [`WireKind::http_status`]).
    pub fn http_status(&self) -> u16 {
        self.kind().http_status()
    }

    /// The gRPC status code for this error (see [`WireKind::grpc_code`]).
    pub fn grpc_code(&self) -> i32 {
        self.kind().grpc_code()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::clock::{ClockError, StoredTimeError};
    use crate::export::ImportError;
    use crate::store::StoreError;
    use std::time::Duration;

    /// One value of every variant. The match below has no wildcard, so adding a variant to
    /// `EngineError` fails to compile here until it is added to this list (and to the docs).
    fn every_variant() -> Vec<EngineError> {
        let all = vec![
            EngineError::Store(StoreError::Corrupt {
                what: "a history event".into(),
                detail: "not JSON".into(),
            }),
            EngineError::Clock(ClockError::NotVirtual),
            EngineError::StoredTime(StoredTimeError {
                text: "yesterday".into(),
                reason: "not RFC 3339".into(),
            }),
            EngineError::Import(ImportError {
                at: "executions[0]".into(),
                problem: "empty".into(),
            }),
            EngineError::InstanceEnded {
                id: "a".into(),
                status: "Completed".into(),
            },
            EngineError::UnknownOrchestration {
                name: "Nope".into(),
                known: "Hello".into(),
            },
            EngineError::NoPlugin,
            EngineError::InstanceExists("a".into()),
            EngineError::InstanceNotFound("a".into()),
            EngineError::InstanceTerminal {
                id: "a".into(),
                status: "Completed".into(),
                action: "be suspended",
            },
            EngineError::InstanceRunning("a".into()),
            EngineError::BuildNotLoaded {
                instance_id: "a".into(),
                build: 2,
            },
            EngineError::Stopped,
            EngineError::Unresponsive {
                waited: Duration::from_secs(1),
                running: None,
            },
            EngineError::InvalidArgument("an event name cannot be empty".into()),
            EngineError::PayloadTooLarge("the input is 9 bytes of JSON".into()),
            EngineError::FaultRuleNotFound(7),
            EngineError::EngineThread(std::io::Error::other("no threads left")),
            EngineError::StoreFailed("disk full".into()),
            EngineError::AlreadyExists {
                id: "a".into(),
                status: "Running".into(),
            },
            EngineError::NotEnded {
                id: "a".into(),
                status: "Running".into(),
                action: "be restarted with the same id",
            },
            EngineError::NotFailed {
                id: "a".into(),
                status: "Completed".into(),
            },
        ];
        for error in &all {
            match error {
                EngineError::Store(_)
                | EngineError::Clock(_)
                | EngineError::StoredTime(_)
                | EngineError::Import(_)
                | EngineError::InstanceEnded { .. }
                | EngineError::UnknownOrchestration { .. }
                | EngineError::NoPlugin
                | EngineError::InstanceExists(_)
                | EngineError::InstanceNotFound(_)
                | EngineError::InstanceTerminal { .. }
                | EngineError::InstanceRunning(_)
                | EngineError::BuildNotLoaded { .. }
                | EngineError::Stopped
                | EngineError::Unresponsive { .. }
                | EngineError::InvalidArgument(_)
                | EngineError::PayloadTooLarge(_)
                | EngineError::FaultRuleNotFound(_)
                | EngineError::EngineThread(_)
                | EngineError::StoreFailed(_)
                | EngineError::AlreadyExists { .. }
                | EngineError::NotEnded { .. }
                | EngineError::NotFailed { .. } => {}
            }
        }
        all
    }

    /// The variant's name as the docs table spells it (its Debug form up to the payload).
    fn variant_name(error: &EngineError) -> String {
        let debug = format!("{error:?}");
        debug.split(['(', ' ', '{']).next().unwrap().to_string()
    }

    /// The rows of the "Errors at the wire" table: variant -> (HTTP status, gRPC code name).
    fn documented_rows() -> Vec<(String, u16, String)> {
        let docs = include_str!("../../../../docs/architecture.md");
        let section = docs
            .split("## Errors at the wire")
            .nth(1)
            .expect("docs/architecture.md has a section \"Errors at the wire\"");
        section
            .lines()
            .take_while(|line| !line.starts_with("## "))
            .filter(|line| line.starts_with("| `"))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                (
                    cells[1].trim_matches('`').to_string(),
                    cells[2].parse().expect("an HTTP status number"),
                    cells[3].trim_matches('`').to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn every_variant_has_one_documented_http_status_and_grpc_code() {
        let rows = documented_rows();
        let variants = every_variant();
        assert_eq!(
            rows.len(),
            variants.len(),
            "the docs table has one row per variant"
        );
        for error in &variants {
            let name = variant_name(error);
            let row = rows
                .iter()
                .find(|(documented, _, _)| *documented == name)
                .unwrap_or_else(|| panic!("{name} is missing from the docs table"));
            assert_eq!(row.1, error.http_status(), "HTTP status of {name}");
            assert_eq!(row.2, error.kind().grpc_name(), "gRPC code of {name}");
        }
    }

    #[test]
    fn each_kind_names_the_grpc_code_it_returns() {
        let expected = [
            (3, "INVALID_ARGUMENT"),
            (3, "INVALID_ARGUMENT"),
            (5, "NOT_FOUND"),
            (6, "ALREADY_EXISTS"),
            (9, "FAILED_PRECONDITION"),
            (4, "DEADLINE_EXCEEDED"),
            (14, "UNAVAILABLE"),
            (13, "INTERNAL"),
        ];
        for (kind, (code, name)) in WIRE_KINDS.into_iter().zip(expected) {
            assert_eq!(
                (kind.grpc_code(), kind.grpc_name()),
                (code, name),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn split_variants_keep_their_messages() {
        assert_eq!(
            EngineError::FaultRuleNotFound(7).to_string(),
            "no fault rule 7"
        );
        assert_eq!(
            EngineError::EngineThread(std::io::Error::other("no threads left")).to_string(),
            "cannot start the engine thread: no threads left"
        );
        assert_eq!(
            EngineError::InvalidArgument("an instance id cannot be empty".into()).to_string(),
            "an instance id cannot be empty"
        );
    }
}
