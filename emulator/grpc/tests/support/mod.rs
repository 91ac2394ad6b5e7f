//! The sidecar under test: an engine (in-memory store, virtual clock, remote workers on) served
//! to a real tonic client over an in-memory transport (`tokio::io::duplex`, no port). Shared by
//! the sidecar test files.

use durable_emu_engine::{ClockKind, DbLocation, Engine, EngineConfig, Limits, StoreFailurePolicy};
use durable_emu_grpc::TaskHubSidecarServiceClient;
use tonic::transport::{Channel, Endpoint, Server, Uri};

pub struct Harness {
    pub client: TaskHubSidecarServiceClient<Channel>,
    /// The connection under `client`, for a test's other clients (durable-emu's own
    /// `WorkerBatches`).
    #[allow(dead_code)]
    pub channel: Channel,
    /// The engine behind the service (kept alive with the harness; some test files also read it,
    /// which each test binary compiling this module sees on its own).
    #[allow(dead_code)]
    pub engine: Engine,
}

/// A sidecar over a fresh engine; `auto_skip`: whether the virtual clock skips to the next
/// timer when the engine is idle.
pub async fn harness(auto_skip: bool) -> Harness {
    serving(auto_skip, false).await
}

/// [`harness`], with durable-emu's own `WorkerBatches` served beside the sidecar, as `serve`
/// and `--isolate` serve it.
#[allow(dead_code)]
pub async fn harness_with_batches() -> Harness {
    serving(true, true).await
}

async fn serving(auto_skip: bool, batches: bool) -> Harness {
    let engine = Engine::start(EngineConfig {
        db: DbLocation::Memory,
        clock: ClockKind::Virtual,
        auto_skip,
        playing: false,
        workers: 1,
        plugin: None,
        faults: Vec::new(),
        on_store_failure: StoreFailurePolicy::Stop,
        limits: Limits::default(),
        remote_workers: true,
        isolated: false,
    })
    .unwrap();
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let incoming = tokio_stream::once(Ok::<_, std::io::Error>(server_io));
    let asynchronous = engine.handle().asynchronous();
    tokio::spawn(async move {
        if batches {
            let (sidecar, batches) = durable_emu_grpc::services(asynchronous);
            Server::builder()
                .add_service(sidecar)
                .add_service(batches)
                .serve_with_incoming(incoming)
                .await
        } else {
            Server::builder()
                .add_service(durable_emu_grpc::service(asynchronous))
                .serve_with_incoming(incoming)
                .await
        }
    });
    let mut client_io = Some(client_io);
    let channel = Endpoint::try_from("http://in-memory")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let io = client_io.take();
            async move {
                io.map(hyper_util::rt::TokioIo::new)
                    .ok_or_else(|| std::io::Error::other("the in-memory transport connects once"))
            }
        }))
        .await
        .unwrap();
    Harness {
        client: TaskHubSidecarServiceClient::new(channel.clone()),
        channel,
        engine,
    }
}
