//! A native load generator for the sidecar: a tonic client acting as a Durable Task worker that
//! runs a fan-out orchestration and completes its activity work items as fast as it can, so the
//! sidecar's own cost per work item (gRPC, mapping, hub, engine, store) can be measured without
//! any SDK's overhead. `durable-emu bench sidecar` runs it.
//!
//! The workload: `orchestrations` instances of [`FAN_OUT`], each scheduling
//! `activities_per_orchestration` activities [`ECHO`] in its first episode and completing when all
//! results are in. The figure reported is activity work items completed per second, from the
//! first start to the last instance's completion.
//!
//! Knows nothing of the CLI; the engine it drives is whatever the client is connected to
//! ([`run_local`] starts an in-memory one on a loopback port).

use crate::mapping;
use crate::proto;
use crate::proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use durable_emu_engine::{ClockKind, DbLocation, Engine, EngineConfig, Limits, StoreFailurePolicy};
use durable_sdk::history::RuntimeStatus;
use durable_sdk::protocol::{Action, ActionKind, OrchestratorResponse};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// The orchestration the generator runs.
pub const FAN_OUT: &str = "LoadgenFanOut";
/// The activity it schedules (returns its input).
pub const ECHO: &str = "LoadgenEcho";

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadgenOptions {
    /// Instances started at once.
    pub orchestrations: usize,
    /// Activities each schedules.
    pub activities_per_orchestration: usize,
    /// How long to wait for everything to finish before giving up.
    pub timeout: Duration,
    /// The database of the engine [`run_local`] starts.
    pub db: DbLocation,
    /// How often the progress callback hears how far the run is.
    pub progress_every: Duration,
}

impl Default for LoadgenOptions {
    fn default() -> Self {
        Self {
            orchestrations: 20,
            activities_per_orchestration: 1_000,
            timeout: Duration::from_secs(300),
            db: DbLocation::Memory,
            progress_every: Duration::from_secs(1),
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// Activity work items completed.
    pub activities: u64,
    /// Orchestrator work items (episodes) answered.
    pub episodes: u64,
    /// From the first start to the last completion.
    pub elapsed: Duration,
}

impl LoadReport {
    /// Activity work items per second.
    pub fn activities_per_second(&self) -> f64 {
        self.activities as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// How far a run is, as the progress callback hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Activity work items completed so far.
    pub activities: u64,
    /// Activity work items the run makes in all.
    pub activities_total: u64,
    /// Orchestrator work items answered so far.
    pub episodes: u64,
    /// Since the first start.
    pub elapsed: Duration,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// A call to the sidecar failed.
    #[error("the sidecar refused a call: {0}")]
    Rpc(#[from] tonic::Status),
    /// Could not connect or serve.
    #[error("cannot reach the sidecar: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Could not start the engine or the server.
    #[error("{0}")]
    Setup(String),
    /// An instance did not complete as the workload expects.
    #[error("instance '{instance_id}' ended {status}, not Completed: {detail}")]
    WrongOutcome {
        /// The instance.
        instance_id: String,
        /// Its status.
        status: String,
        /// Its failure or output.
        detail: String,
    },
    /// Work was still unfinished at the timeout.
    #[error("the run did not finish within {0:?}")]
    TimedOut(Duration),
}

/// Runs the workload against a sidecar the client is connected to (its engine must accept
/// remote workers).
pub async fn run(
    client: TaskHubSidecarServiceClient<Channel>,
    options: &LoadgenOptions,
    progress: impl Fn(Progress) + Send + 'static,
) -> Result<LoadReport, LoadgenError> {
    let mut worker_client = client.clone();
    let mut stream = worker_client
        .get_work_items(proto::GetWorkItemsRequest {
            work_item_filters: Some(proto::WorkItemFilters {
                orchestrations: vec![proto::OrchestrationFilter {
                    name: FAN_OUT.into(),
                    versions: vec![],
                }],
                activities: vec![proto::ActivityFilter {
                    name: ECHO.into(),
                    versions: vec![],
                }],
                entities: vec![],
            }),
            ..Default::default()
        })
        .await?
        .into_inner();

    let counts = std::sync::Arc::new(Counts::default());
    let _worker = AbortOnDrop({
        let client = client.clone();
        let counts = counts.clone();
        tokio::spawn(async move {
            while let Some(item) = stream.message().await? {
                let token = item.completion_token;
                match item.request {
                    Some(proto::work_item::Request::ActivityRequest(activity)) => {
                        let mut client = client.clone();
                        let counts = counts.clone();
                        // Each completion is its own call, so many are in flight at once over the
                        // one HTTP/2 connection, as a real worker with concurrency does.
                        tokio::spawn(async move {
                            let instance_id = activity
                                .orchestration_instance
                                .map(|instance| instance.instance_id)
                                .unwrap_or_default();
                            let response = proto::ActivityResponse {
                                instance_id,
                                task_id: activity.task_id,
                                result: activity.input,
                                failure_details: None,
                                completion_token: token,
                            };
                            if client.complete_activity_task(response).await.is_ok() {
                                counts.activities.fetch_add(1, Ordering::Relaxed);
                            }
                        });
                    }
                    Some(proto::work_item::Request::OrchestratorRequest(request)) => {
                        let mut client = client.clone();
                        let counts = counts.clone();
                        tokio::spawn(async move {
                            let response = fan_out_episode(&request, &token);
                            if client.complete_orchestrator_task(response).await.is_ok() {
                                counts.episodes.fetch_add(1, Ordering::Relaxed);
                            }
                        });
                    }
                    _ => {}
                }
            }
            Ok::<(), tonic::Status>(())
        })
    });

    let started = Instant::now();
    let _reporter = AbortOnDrop({
        let counts = counts.clone();
        let every = options.progress_every.max(Duration::from_millis(10));
        let activities_total = (options.orchestrations as u64)
            .saturating_mul(options.activities_per_orchestration as u64);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticks.tick().await;
                progress(Progress {
                    activities: counts.activities.load(Ordering::Relaxed),
                    activities_total,
                    episodes: counts.episodes.load(Ordering::Relaxed),
                    elapsed: started.elapsed(),
                });
            }
        })
    });
    let mut ids = Vec::with_capacity(options.orchestrations);
    let mut starter = client.clone();
    for _ in 0..options.orchestrations {
        let response = starter
            .start_instance(proto::CreateInstanceRequest {
                name: FAN_OUT.into(),
                input: Some(options.activities_per_orchestration.to_string()),
                ..Default::default()
            })
            .await?
            .into_inner();
        ids.push(response.instance_id);
    }
    let waiting = async {
        for id in &ids {
            let state = starter
                .wait_for_instance_completion(proto::GetInstanceRequest {
                    instance_id: id.clone(),
                    get_inputs_and_outputs: true,
                })
                .await?
                .into_inner()
                .orchestration_state
                .unwrap_or_default();
            if state.orchestration_status != proto::OrchestrationStatus::Completed as i32 {
                return Err(LoadgenError::WrongOutcome {
                    instance_id: id.clone(),
                    status: format!("{:?}", state.orchestration_status()),
                    detail: state
                        .failure_details
                        .map(|failure| failure.error_message)
                        .or(state.output)
                        .unwrap_or_default(),
                });
            }
        }
        Ok(())
    };
    let outcome = tokio::time::timeout(options.timeout, waiting).await;
    let elapsed = started.elapsed();
    outcome.map_err(|_| LoadgenError::TimedOut(options.timeout))??;
    Ok(LoadReport {
        activities: counts.activities.load(Ordering::Relaxed),
        episodes: counts.episodes.load(Ordering::Relaxed),
        elapsed,
    })
}

use std::sync::atomic::{AtomicU64, Ordering};

/// A task that ends with the run, however the run ends (an early error included).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug, Default)]
struct Counts {
    activities: AtomicU64,
    episodes: AtomicU64,
}

/// The fan-out orchestrator as a worker runs it: the first episode schedules `n` echoes (ids
/// 0..n); the episode that sees all `n` results completes with their count.
fn fan_out_episode(
    request: &proto::OrchestratorRequest,
    token: &str,
) -> proto::OrchestratorResponse {
    use proto::history_event::EventType;
    // Read straight off the wire (no mapping, no JSON but the input's): the generator stands in
    // for a worker so that the sidecar's own cost is what gets measured, and each episode of a
    // large fan-out carries its whole history.
    let (mut n, mut scheduled, mut done) = (0u64, false, 0u64);
    for event in request.past_events.iter().chain(&request.new_events) {
        match &event.event_type {
            Some(EventType::ExecutionStarted(started)) => {
                n = started
                    .input
                    .as_deref()
                    .and_then(|input| input.trim().parse().ok())
                    .unwrap_or(0);
            }
            Some(EventType::TaskScheduled(_)) => scheduled = true,
            Some(EventType::TaskCompleted(_)) => done += 1,
            _ => {}
        }
    }
    let n_i32 = i32::try_from(n).unwrap_or(i32::MAX);
    let actions = if !scheduled && n > 0 {
        (0..n_i32)
            .map(|id| Action {
                id,
                kind: ActionKind::ScheduleTask {
                    name: ECHO.into(),
                    input: json!(id),
                },
            })
            .collect()
    } else if done >= n {
        vec![Action {
            id: n_i32,
            kind: ActionKind::CompleteOrchestration {
                status: RuntimeStatus::Completed,
                result: Value::from(done),
                failure: None,
                carryover_events: vec![],
            },
        }]
    } else {
        Vec::new()
    };
    mapping::orchestrator_response_to_wire(
        &request.instance_id,
        token,
        &OrchestratorResponse {
            actions,
            ..Default::default()
        },
    )
}

/// Runs the workload against a fresh in-memory engine served on a loopback port (the real
/// network stack, as an SDK would use it).
pub async fn run_local(
    options: &LoadgenOptions,
    progress: impl Fn(Progress) + Send + 'static,
) -> Result<LoadReport, LoadgenError> {
    let engine = Engine::start(EngineConfig {
        db: options.db.clone(),
        clock: ClockKind::Virtual,
        auto_skip: true,
        playing: false,
        workers: 1,
        plugin: None,
        faults: Vec::new(),
        on_store_failure: StoreFailurePolicy::Stop,
        limits: Limits::default(),
        remote_workers: true,
        isolated: false,
    })
    .map_err(|error| LoadgenError::Setup(format!("cannot start the engine: {error}")))?;
    let handle = engine.handle().asynchronous();
    let bound = crate::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|error| LoadgenError::Setup(error.to_string()))?;
    let addr = bound.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve(handle, async {
        let _ = stopped.await;
    }));
    let client = TaskHubSidecarServiceClient::connect(format!("http://{addr}"))
        .await?
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    let report = run(client, options, progress).await;
    let _ = stop.send(());
    let _ = server.await;
    // The engine's core is a thread; its shutdown waits for it.
    tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .map_err(|error| LoadgenError::Setup(format!("engine shutdown: {error}")))?;
    report
}
