//! durable-emu as a Durable Task backend: the `TaskHubSidecarService` gRPC server the official
//! SDKs (Python, .NET, JavaScript, Java, Go) talk to, over the engine's async handle and its
//! remote-worker hub.
//!
//! Owns the wire format (`proto/orchestrator_service.proto`, compiled at build time), the mapping
//! between it and the SDK's types, the server and a native load generator. Knows nothing of
//! terminals or command lines (the CLI binds and serves), and nothing of how the engine runs
//! work: it only talks to `AsyncEngineHandle` and `RemoteHub`.

/// The generated wire types and the service's server/client stubs.
#[allow(missing_docs, clippy::all, missing_debug_implementations, rust_2018_idioms)]
pub mod proto {
    tonic::include_proto!("_");
}

pub mod mapping;
