//! durable-emu as a Durable Task backend: the `TaskHubSidecarService` gRPC server the official
//! SDKs (Python, .NET, JavaScript, Java, Go) talk to, over the engine's async handle and its
//! remote-worker hub.
//!
//! Owns the wire format (`proto/orchestrator_service.proto`, compiled at build time), the mapping
//! between it and the SDK's types, the server and a native load generator. Knows nothing of
//! terminals or command lines (the CLI binds and serves), and nothing of how the engine runs
//! work: it only talks to `AsyncEngineHandle` and `RemoteHub`.

// Every RPC answers with `tonic::Status` (176 bytes); boxing it in helpers only to unbox it at
// the trait boundary would cost an allocation per refusal for nothing.
#![allow(clippy::result_large_err)]

/// The generated wire types and the service's server/client stubs.
#[allow(
    missing_docs,
    clippy::all,
    missing_debug_implementations,
    rust_2018_idioms
)]
pub mod proto {
    tonic::include_proto!("_");
}

/// durable-emu's own batch extension, between its sidecar and `durable-emu worker` only
/// (`proto/durable_emu_worker.proto`).
#[allow(
    missing_docs,
    clippy::all,
    missing_debug_implementations,
    rust_2018_idioms
)]
pub mod batches {
    tonic::include_proto!("durable_emu.worker.v1");
}

/// The served contract as an encoded `google.protobuf.FileDescriptorSet` (our
/// `proto/orchestrator_service.proto` with the well-known types it imports), so a test can check
/// every message, field number, enum value and rpc against the official SDKs' own descriptors.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/orchestrator_service.bin"));

mod batch_service;
mod entities;
pub mod loadgen;
pub mod mapping;
mod server;
mod worker;

pub use batch_service::Batches;
pub use proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
pub use proto::task_hub_sidecar_service_server::TaskHubSidecarServiceServer;
pub use server::Sidecar;
pub use worker::{ENTITY_REQUEST_METADATA, HEALTH_PING_INTERVAL, WORKER_BATCHES_METADATA};

use durable_emu_engine::engine::AsyncEngineHandle;
use std::future::Future;
use std::net::SocketAddr;

/// The address the SDKs dial by default (`localhost:4001`).
pub const DEFAULT_PORT: u16 = 4001;

/// Why the sidecar could not listen or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// Another process listens on the address.
    #[error(
        "cannot serve gRPC on {addr}: the address is in use (another durable-emu or a Durable Task sidecar may be running there)"
    )]
    AddrInUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The operating system refused the address for another reason.
    #[error("cannot serve gRPC on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server failed while serving.
    #[error("the gRPC server on {addr} failed: {source}")]
    Serve {
        /// Where it served.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
}

/// A listening socket, bound but not yet serving (so the caller can report the address, or a
/// port in use, before it starts the engine's front ends).
#[derive(Debug)]
pub struct BoundSidecar {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
}

/// Binds `addr` (port 0: any free port). Must run inside a tokio runtime.
pub async fn bind(addr: SocketAddr) -> Result<BoundSidecar, SidecarError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AddrInUse => SidecarError::AddrInUse { addr },
            _ => SidecarError::Bind { addr, source },
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| SidecarError::Bind { addr, source })?;
    Ok(BoundSidecar { listener, addr })
}

impl BoundSidecar {
    /// The address it listens on (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves plaintext HTTP/2 gRPC until `shutdown` completes.
    pub async fn serve(
        self,
        engine: AsyncEngineHandle,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), SidecarError> {
        let addr = self.addr;
        let incoming = without_nagle(self.listener);
        let (sidecar, batches) = services(engine);
        tonic::transport::Server::builder()
            // Idle worker streams stay up through NATs and proxies; the SDKs do the same.
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
            .add_service(sidecar)
            .add_service(batches)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(|source| SidecarError::Serve { addr, source })
    }
}

/// The connections `listener` accepts, with Nagle's algorithm off. tonic's own `tcp_nodelay`
/// applies only to sockets it accepts itself; left on, a small frame (a work item to a waiting
/// worker) sat until the peer's delayed ACK, 40 ms later, for every one.
fn without_nagle(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |accepted| {
            accepted.inspect(|stream| {
                // A socket that refuses only delays its small frames.
                let _ = stream.set_nodelay(true);
            })
        },
    )
}

/// The service for `engine`, to mount on any tonic server or in-memory transport.
pub fn service(engine: AsyncEngineHandle) -> TaskHubSidecarServiceServer<Sidecar> {
    sidecar_server(Sidecar::new(engine))
}

fn sidecar_server(sidecar: Sidecar) -> TaskHubSidecarServiceServer<Sidecar> {
    TaskHubSidecarServiceServer::new(sidecar)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// The service for `engine` with durable-emu's own `WorkerBatches` beside it, sharing its
/// worker side (the sidecar then tells workers it serves the batches).
pub fn services(
    engine: AsyncEngineHandle,
) -> (
    TaskHubSidecarServiceServer<Sidecar>,
    batches::worker_batches_server::WorkerBatchesServer<Batches>,
) {
    let mut sidecar = Sidecar::new(engine);
    sidecar.worker.batches_served = true;
    let batches = Batches {
        worker: sidecar.worker.clone(),
    };
    (
        sidecar_server(sidecar),
        batches::worker_batches_server::WorkerBatchesServer::new(batches)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
}

/// Largest message either way: histories of big fan-outs exceed gRPC's 4 MB default, and the
/// engine's own payload limit (16 MB per payload by default) is what bounds a single value.
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_small_frames_at_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut incoming = std::pin::pin!(without_nagle(listener));
        let accepted = tokio_stream::StreamExt::next(&mut incoming)
            .await
            .unwrap()
            .unwrap();
        assert!(accepted.nodelay().unwrap());
    }
}
