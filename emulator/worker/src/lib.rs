//! `durable-emu worker`: runs a `durable-sdk` function library for any backend that serves the
//! Durable Task sidecar protocol (`TaskHubSidecarService`): durable-emu's own sidecar, Azure's
//! Durable Task Scheduler and its emulator, Dapr Workflow.
//!
//! The worker connects (TLS for `https://`), opens a `GetWorkItems` stream with its filters (the
//! names in the library's manifest) and serves what comes: orchestrator episodes, activities and
//! entity batches through the plugin boundary (activities and entities on blocking threads,
//! episodes on per-instance lanes, see `lanes.rs`), translated between the
//! proto and the SDK's protocol by `durable_emu_grpc::mapping`. A new build (hot reload) replaces
//! the old one between work items; when its names differ, the stream is reopened with the new
//! filters. When the backend goes away the worker reconnects with backoff; what it held is the
//! backend's to redeliver. Asked to stop, it takes no new work (items that still arrive are
//! abandoned), finishes what it holds within the drain timeout, abandons the rest and returns.
//!
//! Owns the connection, the concurrency limits and the item lifecycle. Knows nothing of the
//! command line, of how the library was built or loaded, or of how events are shown: it reports
//! [`WorkerEvent`]s to whoever runs it.

mod answers;
mod items;
mod lanes;

use durable_emu_engine::LoadedPlugin;
use durable_emu_grpc::proto;
use durable_emu_grpc::proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// The client type every call goes through: a channel whose requests carry the worker's
/// metadata (task hub, authorization, ...).
pub(crate) type Client = TaskHubSidecarServiceClient<InterceptedService<Channel, Metadata>>;

/// How the worker connects and how much it runs at once.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The backend, `http://host:port` or `https://host:port`.
    pub url: String,
    /// Sent as the `taskhub` metadata on every call (what Azure's scheduler routes by).
    pub taskhub: Option<String>,
    /// More metadata for every call (`authorization: Bearer ...`, `dapr-app-id`, ...). Values
    /// are secrets: they are never printed or reported.
    pub metadata: Vec<(String, String)>,
    /// Most items of each kind running at once.
    pub limits: ConcurrencyLimits,
    /// How long a stop waits for held items before abandoning them.
    pub drain_timeout: Duration,
    /// The first wait before reconnecting; it doubles up to `max_backoff`.
    pub first_backoff: Duration,
    /// The longest wait between reconnection attempts.
    pub max_backoff: Duration,
}

impl WorkerConfig {
    /// A worker for `url` with the default limits, no task hub and no extra metadata.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            taskhub: None,
            metadata: Vec::new(),
            limits: ConcurrencyLimits::default(),
            drain_timeout: Duration::from_secs(30),
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(15),
        }
    }
}

/// Most work items of each kind in progress at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcurrencyLimits {
    pub orchestrations: usize,
    pub activities: usize,
    pub entities: usize,
}

impl Default for ConcurrencyLimits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            orchestrations: 10 * cores,
            activities: 10 * cores,
            entities: 10 * cores,
        }
    }
}

/// Why the worker could not run at all (connection trouble is retried, not an error).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The URL is not one a channel can be made for.
    #[error(
        "'{url}' is not a backend address: {reason} (give http://host:port or https://host:port)"
    )]
    BadUrl { url: String, reason: String },
    /// A metadata name or value that gRPC cannot carry.
    #[error("metadata '{name}' cannot be sent: {reason}")]
    BadMetadata { name: String, reason: String },
}

/// What a work item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Orchestration,
    Activity,
    Entity,
}

impl std::fmt::Display for ItemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ItemKind::Orchestration => "orchestration",
            ItemKind::Activity => "activity",
            ItemKind::Entity => "entity",
        })
    }
}

/// What the worker reports as it runs (the CLI prints them as a status line or JSON lines).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WorkerEvent {
    /// Opening a connection.
    Connecting { url: String },
    /// The work-item stream is open; the worker takes these names.
    Connected {
        url: String,
        orchestrators: usize,
        activities: usize,
        entities: usize,
    },
    /// The connection failed or ended; the next attempt is after `retry_in_ms`.
    Reconnecting { reason: String, retry_in_ms: u64 },
    /// A work item began running (`task_id`: an activity's).
    Started {
        kind: ItemKind,
        name: String,
        instance_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        task_id: Option<i32>,
    },
    /// A work item ran and its answer is being sent (`failed`: the function failed, which is
    /// an answer too); a `NotDelivered` follows if the backend did not take it.
    Finished {
        kind: ItemKind,
        name: String,
        instance_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        task_id: Option<i32>,
        failed: bool,
        ms: f64,
    },
    /// A work item's answer did not reach the backend (it will redeliver the item).
    NotDelivered {
        kind: ItemKind,
        name: String,
        instance_id: String,
        reason: String,
    },
    /// A work item was handed back without an answer (stopping, or it could not be read).
    Abandoned {
        kind: ItemKind,
        name: String,
        instance_id: String,
        reason: String,
    },
    /// A new build of the functions is active.
    Reloaded { build: u32, names_changed: bool },
    /// A new build failed; the previous one stays active.
    BuildFailed { reason: String },
    /// Stopping: no new work; waiting for these many held items.
    Draining { in_flight: u64 },
    /// Stopped.
    Stopped { done: u64, abandoned: u64 },
}

/// Where events go.
pub type EventSink = Arc<dyn Fn(WorkerEvent) + Send + Sync>;

/// The functions the worker runs: the active build, replaced by hot reload between work items.
#[derive(Clone)]
pub struct Functions {
    active: Arc<Mutex<(u32, Arc<LoadedPlugin>)>>,
    changed: watch::Sender<u32>,
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (build, plugin) = self.current_with_build();
        f.debug_struct("Functions")
            .field("build", &build)
            .field("origin", &plugin.origin.to_string())
            .finish()
    }
}

impl Functions {
    /// Starts with `plugin` as build 1.
    pub fn new(plugin: LoadedPlugin) -> Self {
        Self {
            active: Arc::new(Mutex::new((1, Arc::new(plugin)))),
            changed: watch::channel(1).0,
        }
    }

    /// The active build.
    pub fn current(&self) -> Arc<LoadedPlugin> {
        self.current_with_build().1
    }

    fn current_with_build(&self) -> (u32, Arc<LoadedPlugin>) {
        let active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        (active.0, Arc::clone(&active.1))
    }

    /// Makes `plugin` the active build for the items that start from now on; returns its number
    /// and whether its names differ from the previous build's (the stream is then reopened
    /// with the new filters).
    pub fn replace(&self, plugin: LoadedPlugin) -> (u32, bool) {
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        let before = &active.1.manifest;
        let names_changed = before.orchestrators != plugin.manifest.orchestrators
            || before.activities != plugin.manifest.activities
            || before.entities != plugin.manifest.entities;
        let build = active.0 + 1;
        *active = (build, Arc::new(plugin));
        drop(active);
        if names_changed {
            self.changed.send_replace(build);
        }
        (build, names_changed)
    }

    fn names_changed(&self) -> watch::Receiver<u32> {
        self.changed.subscribe()
    }
}

/// The metadata every call carries.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    entries: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
}

impl Metadata {
    fn from_config(config: &WorkerConfig) -> Result<Self, WorkerError> {
        let taskhub = config
            .taskhub
            .iter()
            .map(|hub| ("taskhub".to_string(), hub.clone()));
        let mut entries = Vec::new();
        for (name, value) in taskhub.chain(config.metadata.iter().cloned()) {
            let key = AsciiMetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(
                |error| WorkerError::BadMetadata {
                    name: name.clone(),
                    reason: error.to_string(),
                },
            )?;
            let mut value = AsciiMetadataValue::try_from(value.as_str()).map_err(|_| {
                WorkerError::BadMetadata {
                    name: name.clone(),
                    reason: "the value must be visible ASCII".to_string(),
                }
            })?;
            value.set_sensitive(true);
            entries.push((key, value));
        }
        Ok(Self { entries })
    }

    fn apply(&self, map: &mut MetadataMap) {
        for (key, value) in &self.entries {
            map.insert(key.clone(), value.clone());
        }
    }
}

impl Interceptor for Metadata {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        self.apply(request.metadata_mut());
        Ok(request)
    }
}

/// Counts kept while the worker runs.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub done: AtomicU64,
    pub abandoned: AtomicU64,
    pub in_flight: AtomicU64,
}

/// Shared by every item task of a run.
pub(crate) struct Shared {
    pub functions: Functions,
    pub events: EventSink,
    pub counters: Counters,
    pub orchestrations: Arc<Semaphore>,
    pub activities: Arc<Semaphore>,
    pub entities: Arc<Semaphore>,
    /// Where episodes run (each instance on one thread, for the plugin's session cache).
    pub episode_lanes: lanes::EpisodeLanes,
    /// Flips to true when the worker stops taking work.
    pub stopping: watch::Receiver<bool>,
}

/// Runs the worker until `stop` turns true; returns how many items it finished.
pub async fn run(
    config: WorkerConfig,
    functions: Functions,
    events: EventSink,
    stop: watch::Receiver<bool>,
) -> Result<u64, WorkerError> {
    let endpoint = endpoint(&config.url)?;
    let metadata = Metadata::from_config(&config)?;
    let shared = Arc::new(Shared {
        functions: functions.clone(),
        events: Arc::clone(&events),
        counters: Counters::default(),
        orchestrations: Arc::new(Semaphore::new(config.limits.orchestrations.max(1))),
        activities: Arc::new(Semaphore::new(config.limits.activities.max(1))),
        entities: Arc::new(Semaphore::new(config.limits.entities.max(1))),
        episode_lanes: lanes::EpisodeLanes::new(
            std::thread::available_parallelism()
                .map_or(1, usize::from)
                .min(config.limits.orchestrations.max(1)),
        ),
        stopping: stop.clone(),
    });
    let mut held = tokio::task::JoinSet::new();
    let mut backoff = config.first_backoff;
    let mut names_changed = functions.names_changed();
    'connections: while !*stop.borrow() {
        events(WorkerEvent::Connecting {
            url: config.url.clone(),
        });
        let opened = async {
            let channel = endpoint.connect().await.map_err(|error| describe(&error))?;
            let client =
                TaskHubSidecarServiceClient::with_interceptor(channel.clone(), metadata.clone())
                    .max_decoding_message_size(usize::MAX)
                    .max_encoding_message_size(usize::MAX);
            let plugin = functions.current();
            let opened = client
                .clone()
                .get_work_items(work_items_request(&plugin, &config.limits))
                .await
                .map_err(|status| describe_status(&status))?;
            // A durable-emu sidecar takes activity answers in batches, over a stream of its own.
            let batches = opened
                .metadata()
                .get(durable_emu_grpc::WORKER_BATCHES_METADATA)
                .is_some_and(|version| version == "v1")
                .then(|| {
                    answers::AnswerBatches::open(InterceptedService::new(
                        channel.clone(),
                        metadata.clone(),
                    ))
                });
            Ok::<_, String>((client, batches, opened.into_inner(), plugin))
        };
        let (client, batches, mut stream, plugin) = tokio::select! {
            opened = opened => match opened {
                Ok(opened) => opened,
                Err(reason) => {
                    if !wait_before_retry(&events, reason, &mut backoff, &config, &stop).await {
                        break 'connections;
                    }
                    continue 'connections;
                }
            },
            _ = stopped(stop.clone()) => break 'connections,
        };
        backoff = config.first_backoff;
        names_changed.mark_unchanged();
        events(WorkerEvent::Connected {
            url: config.url.clone(),
            orchestrators: plugin.manifest.orchestrators.len(),
            activities: plugin.manifest.activities.len(),
            entities: plugin.manifest.entities.len(),
        });
        loop {
            tokio::select! {
                message = stream.message() => match message {
                    Ok(Some(item)) => {
                        items::accept(item, &client, batches.as_ref(), &shared, &mut held);
                    }
                    Ok(None) => {
                        let reason = "the backend closed the work-item stream".to_string();
                        if !wait_before_retry(&events, reason, &mut backoff, &config, &stop).await {
                            break 'connections;
                        }
                        continue 'connections;
                    }
                    Err(status) => {
                        let reason = describe_status(&status);
                        if !wait_before_retry(&events, reason, &mut backoff, &config, &stop).await {
                            break 'connections;
                        }
                        continue 'connections;
                    }
                },
                // Reap finished item tasks as they end, so the set does not grow.
                Some(_) = held.join_next(), if !held.is_empty() => {}
                _ = names_changed.changed() => {
                    // The new build takes other names: reopen with its filters (the backend
                    // hands back what this stream held and redelivers it).
                    continue 'connections;
                }
                _ = stopped(stop.clone()) => {
                    let backend = (&client, batches.as_ref());
                    drain(&shared, &mut held, &mut stream, backend, config.drain_timeout).await;
                    break 'connections;
                }
            }
        }
    }
    // Stopped while not connected: whatever is still held finishes or is abandoned as well.
    if !held.is_empty() {
        let counters = &shared.counters;
        events(WorkerEvent::Draining {
            in_flight: counters.in_flight.load(Ordering::Relaxed),
        });
        let _ = tokio::time::timeout(config.drain_timeout, async {
            while held.join_next().await.is_some() {}
        })
        .await;
        held.abort_all();
    }
    let done = shared.counters.done.load(Ordering::Relaxed);
    events(WorkerEvent::Stopped {
        done,
        abandoned: shared.counters.abandoned.load(Ordering::Relaxed),
    });
    Ok(done)
}

/// Stopping with the stream open: items that still arrive are abandoned at once, held ones may
/// finish until `timeout`, then what is still held is abandoned from the ledger of held tokens
/// (an aborted task cannot say goodbye itself).
async fn drain(
    shared: &Arc<Shared>,
    held: &mut tokio::task::JoinSet<()>,
    stream: &mut tonic::Streaming<proto::WorkItem>,
    (client, batches): (&Client, Option<&answers::AnswerBatches>),
    timeout: Duration,
) {
    (shared.events)(WorkerEvent::Draining {
        in_flight: shared.counters.in_flight.load(Ordering::Relaxed),
    });
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        tokio::select! {
            message = stream.message() => match message {
                // `accept` sees `stopping` and abandons it.
                Ok(Some(item)) => items::accept(item, client, batches, shared, held),
                Ok(None) | Err(_) => break,
            },
            next = held.join_next() => if next.is_none() { break },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    // What still runs past the deadline is handed back; its thread may go on, but its answer
    // is never sent (the process is about to end).
    items::abandon_remaining(shared, client).await;
    held.abort_all();
}

/// Reports the failure and sleeps the backoff (doubling it); false when told to stop meanwhile.
async fn wait_before_retry(
    events: &EventSink,
    reason: String,
    backoff: &mut Duration,
    config: &WorkerConfig,
    stop: &watch::Receiver<bool>,
) -> bool {
    let wait = *backoff;
    events(WorkerEvent::Reconnecting {
        reason,
        retry_in_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
    });
    *backoff = (*backoff * 2).min(config.max_backoff);
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = stopped(stop.clone()) => false,
    }
}

/// Resolves once `stop` turns true (or its sender is gone, which means the same).
pub(crate) async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn endpoint(url: &str) -> Result<Endpoint, WorkerError> {
    let bad = |reason: String| WorkerError::BadUrl {
        url: url.to_string(),
        reason,
    };
    let lower = url.to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Err(bad("the scheme must be http or https".to_string()));
    }
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|error| bad(error.to_string()))?
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    if lower.starts_with("https://") {
        return endpoint
            .tls_config(ClientTlsConfig::new().with_webpki_roots())
            .map_err(|error| bad(format!("TLS: {error}")));
    }
    Ok(endpoint)
}

/// The stream request: the library's names as filters, history streaming supported.
fn work_items_request(
    plugin: &LoadedPlugin,
    limits: &ConcurrencyLimits,
) -> proto::GetWorkItemsRequest {
    let manifest = &plugin.manifest;
    let clamp = |limit: usize| i32::try_from(limit).unwrap_or(i32::MAX);
    proto::GetWorkItemsRequest {
        max_concurrent_orchestration_work_items: clamp(limits.orchestrations),
        max_concurrent_activity_work_items: clamp(limits.activities),
        max_concurrent_entity_work_items: clamp(limits.entities),
        capabilities: vec![proto::WorkerCapability::HistoryStreaming as i32],
        work_item_filters: Some(proto::WorkItemFilters {
            orchestrations: manifest
                .orchestrators
                .iter()
                .map(|name| proto::OrchestrationFilter {
                    name: name.clone(),
                    versions: vec![],
                })
                .collect(),
            activities: manifest
                .activities
                .iter()
                .map(|name| proto::ActivityFilter {
                    name: name.clone(),
                    versions: vec![],
                })
                .collect(),
            entities: manifest
                .entities
                .iter()
                .map(|name| proto::EntityFilter { name: name.clone() })
                .collect(),
        }),
    }
}

/// A transport error with its causes (tonic's own message is only "transport error").
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn describe_status(status: &tonic::Status) -> String {
    match status.code() {
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => format!(
            "the backend refused the worker ({:?}): {} (check --header / the token)",
            status.code(),
            status.message()
        ),
        code => format!("{code:?}: {}", status.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_make_an_endpoint() {
        assert!(endpoint("http://127.0.0.1:4001").is_ok());
        assert!(endpoint("https://example.com").is_ok());
        let error = endpoint("127.0.0.1:4001").unwrap_err().to_string();
        assert!(error.contains("http://host:port"), "{error}");
        assert!(endpoint("grpc://x:1").is_err());
    }

    #[test]
    fn metadata_names_and_values_are_checked_and_values_are_sensitive() {
        let mut config = WorkerConfig::new("http://127.0.0.1:1");
        config.taskhub = Some("hub".into());
        config.metadata = vec![("Authorization".into(), "Bearer secret".into())];
        let metadata = Metadata::from_config(&config).unwrap();
        let mut map = MetadataMap::new();
        metadata.apply(&mut map);
        assert_eq!(map.get("taskhub").unwrap(), "hub");
        let auth = map.get("authorization").unwrap();
        assert!(auth.is_sensitive());
        assert!(!format!("{metadata:?}").contains("secret"));

        config.metadata = vec![("bad name".into(), "v".into())];
        assert!(Metadata::from_config(&config).is_err());
        config.metadata = vec![("ok".into(), "line\nbreak".into())];
        let error = Metadata::from_config(&config).unwrap_err().to_string();
        assert!(error.contains("'ok'"), "{error}");
    }
}
