//! `durable-emu bench`: the standard workloads, timed. Each prints progress lines, then one last
//! line in the shape the peer benchmarks in `../shared/peers` print:
//! `RESULT workload=fanout n=10000 secs=0.812 activities_per_sec=12315.2`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use durable_emu_engine::DbLocation;
use durable_emu_engine::clock::ClockKind;
use durable_emu_engine::engine::{
    Engine, EngineConfig, Limits, StoreFailurePolicy, default_workers,
};
use durable_emu_engine::plugin::LoadedPlugin;
use durable_sdk::history::RuntimeStatus;
use durable_sdk::protocol::OrchestratorRequest;
use serde_json::json;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// One orchestration fans out N no-op `Echo` activities, joins them, checks every result.
    Fanout(BenchArgs),
    /// N instances started at once, each calling `Echo` 5 times in sequence.
    Chain(BenchArgs),
    /// Replays a recorded history of about N events (made by a fan-out of N/2) through the plugin.
    Replay(BenchArgs),
    /// Durable entities: N `add 1` signals to one `Counter` entity, then N spread over many
    /// (round robin); time from the first signal sent to the last operation run, every count
    /// checked.
    Entities(EntityBenchArgs),
    /// Reload latency: a library file changes N times; time from the change settling to the new
    /// build being active (cargo build excluded), with waiting instances to check on each reload.
    Reload(ReloadArgs),
    /// The gRPC sidecar's own cost per work item: a native load generator acting as a Durable
    /// Task worker over loopback runs fan-outs of no-op activities through `TaskHubSidecarService`.
    Sidecar(SidecarArgs),
    /// The Durable Functions HTTP API: clients start `BenchChain` orchestrations over HTTP and
    /// poll their status URLs to completion (requests per second), then status requests are
    /// timed with the store holding `--instances` instances (p50/p99).
    Http(HttpBenchArgs),
    /// `--isolate`'s cost: a fan-out of N `Echo` activities in process, then with the functions
    /// in a child `durable-emu worker` (over the private loopback sidecar), in one run; prints
    /// both and their ratio.
    Isolate(BenchArgs),
    /// Terminal UI frame time: a key, a tick and a redraw of each view, with 10,000 instances and
    /// a 100,000-event history selected (drawn off-screen).
    Ui(UiArgs),
}

#[derive(Debug, Args)]
pub struct UiArgs {
    /// Instances in the list.
    #[arg(long, default_value_t = 10_000)]
    instances: usize,
    /// Events in the selected instance's history.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Frames timed per view.
    #[arg(long, default_value_t = 200)]
    frames: usize,
    /// Terminal size, columns x rows.
    #[arg(long, default_value = "200x50")]
    size: String,
    /// Also time keys and frames while a real `BenchFanOut` of N activities runs (0: skip).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    live_fanout: u64,
}

#[derive(Debug, Args)]
pub struct HttpBenchArgs {
    /// Orchestrations the clients start and poll to completion.
    #[arg(long, short = 'n', default_value_t = 2_000)]
    n: u64,
    /// Clients at once, each on its own thread and connection.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// A client's pause between two polls of a running instance (the API's `Retry-After` says
    /// 1 s; a benchmark that waited that long would measure the pause).
    #[arg(long, value_name = "MS", default_value_t = 10)]
    poll_interval_ms: u64,
    /// Instances in the store while status requests are timed (topped up directly through
    /// the engine, untimed).
    #[arg(long, default_value_t = 10_000)]
    instances: u64,
    /// Status requests timed, by one client and again spread over `--clients` clients.
    #[arg(long, default_value_t = 10_000)]
    requests: usize,
    /// The database: a file (default: a fresh one in a temporary directory) or `:memory:`.
    #[arg(long, value_name = "PATH")]
    db: Option<String>,
    /// Activity worker threads, 1 to 256; default: the number of cores.
    #[arg(long, value_name = "N", value_parser = super::workers_in_range())]
    workers: Option<u16>,
}

#[derive(Debug, Args)]
pub struct SidecarArgs {
    /// Orchestrations started at once, each fanning out to its activities.
    #[arg(long, default_value_t = 20)]
    orchestrations: usize,
    /// Activities each orchestration schedules (all in its first episode).
    #[arg(long, default_value_t = 1_000)]
    activities: usize,
    /// The database: a file (default: a fresh one in a temporary directory) or `:memory:`.
    #[arg(long, value_name = "PATH")]
    db: Option<String>,
    /// Threads of the runtime that runs both the sidecar and the load generator.
    #[arg(long, value_name = "N", default_value_t = 2)]
    threads: usize,
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// How many reloads to time.
    #[arg(long, short = 'n', default_value_t = 20)]
    n: usize,
    /// The plugin library to reload; default: build `sample-functions` in the working directory.
    #[arg(long, value_name = "PATH")]
    library: Option<std::path::PathBuf>,
    /// Waiting `ApprovalWorkflow` instances each reload replays (if the library has it).
    #[arg(long, default_value_t = 100)]
    instances: usize,
}

#[derive(Debug, Args)]
pub struct EntityBenchArgs {
    /// Signals sent in each workload.
    #[arg(long, short = 'n', default_value_t = 1_000)]
    n: u64,
    /// Entities the second workload spreads its signals over.
    #[arg(long, default_value_t = 100)]
    entities: u64,
    /// The database: a file (default: a fresh one in a temporary directory) or `:memory:`.
    #[arg(long, value_name = "PATH")]
    db: Option<String>,
    /// Worker threads (entity batches run on them), 1 to 256; default: the number of cores.
    #[arg(long, value_name = "N", value_parser = super::workers_in_range())]
    workers: Option<u16>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Size of the workload.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    n: u64,
    /// The database: a file (default: a fresh one in a temporary directory) or `:memory:`.
    #[arg(long, value_name = "PATH")]
    db: Option<String>,
    /// Activity worker threads, 1 to 256; default: the number of cores.
    #[arg(long, value_name = "N", value_parser = super::workers_in_range())]
    workers: Option<u16>,
    #[command(flatten)]
    faults: super::FaultArgs,
}

impl BenchArgs {
    fn without_faults(n: u64, db: &Option<String>, workers: Option<u16>) -> Self {
        BenchArgs {
            n,
            db: db.clone(),
            workers,
            faults: super::FaultArgs::default(),
        }
    }
}

pub fn bench(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Fanout(args) => fanout(&args),
        BenchCommand::Isolate(args) => isolate(&args),
        BenchCommand::Http(args) => http(&args),
        BenchCommand::Chain(args) => chain(&args),
        BenchCommand::Replay(args) => replay(&args),
        BenchCommand::Entities(args) => entities(&args),
        BenchCommand::Reload(args) => reload(&args),
        BenchCommand::Sidecar(args) => sidecar(&args),
        BenchCommand::Ui(args) => ui(&args),
    }
    .map(|()| ExitCode::SUCCESS)
}

/// A started engine and the temporary directory its database lives in (if any).
struct BenchEngine {
    engine: Engine,
    _dir: Option<tempfile::TempDir>,
    db: String,
}

fn start_engine(args: &BenchArgs) -> anyhow::Result<BenchEngine> {
    start_engine_isolated(args, false).map(|(bench, _)| bench)
}

/// [`start_engine`], with the functions in a child worker when `isolate` (returned with the
/// engine; the worker is connected when this returns).
fn start_engine_isolated(
    args: &BenchArgs,
    isolate: bool,
) -> anyhow::Result<(BenchEngine, Option<super::isolate::Isolation>)> {
    let (db, dir) = match &args.db {
        Some(db) => (DbLocation::parse(db), None),
        None => {
            let dir = tempfile::tempdir().context("creating a temporary directory")?;
            (DbLocation::File(dir.path().join("bench.db")), Some(dir))
        }
    };
    let plugin = LoadedPlugin::builtin()?;
    let listener = super::isolate::IsolateArgs { isolate }.bind(&plugin)?;
    let workers = super::workers_or_default(args.workers);
    let label = db.to_string();
    let engine = Engine::start(EngineConfig {
        db,
        clock: ClockKind::Virtual,
        auto_skip: true,
        playing: false,
        workers,
        plugin: Some(plugin),
        faults: args.faults.rules()?,
        on_store_failure: StoreFailurePolicy::Stop,
        limits: Limits {
            max_actions_per_episode: u32::MAX,
            ..Limits::default()
        },
        remote_workers: false,
        isolated: listener.is_some(),
    })?;
    let isolation = match listener {
        Some(listener) => {
            let isolation = listener.start(&engine.handle(), workers)?;
            let hub = engine.handle().remote_hub();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !hub
                .workers()
                .iter()
                .any(|worker| worker.disconnected_at.is_none())
            {
                if Instant::now() > deadline {
                    bail!("the isolated worker did not connect within 60 s");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Some(isolation)
        }
        None => None,
    };
    println!(
        "database: {label}; workers: {workers}{}",
        if isolate {
            "; functions in a worker process"
        } else {
            ""
        }
    );
    Ok((
        BenchEngine {
            engine,
            _dir: dir,
            db: label,
        },
        isolation,
    ))
}

/// A fan-out of `n` timed on `bench`'s engine, every result checked; seconds.
fn timed_fanout(bench: &BenchEngine, n: u64) -> anyhow::Result<f64> {
    let handle = bench.engine.handle();
    let started = Instant::now();
    let id = handle.start_orchestration("BenchFanOut", json!(n), None)?;
    let record = handle
        .wait_until_terminal(&id, Duration::from_secs(3600))?
        .context("the fan-out did not finish within an hour")?;
    let secs = started.elapsed().as_secs_f64();
    if record.status != RuntimeStatus::Completed || record.output != json!(n) {
        bail!("the fan-out ended {} with {}", record.status, record.output);
    }
    Ok(secs)
}

fn isolate(args: &BenchArgs) -> anyhow::Result<()> {
    let in_process = {
        let (bench, _) = start_engine_isolated(args, false)?;
        let secs = timed_fanout(&bench, args.n)?;
        println!("in process: fan-out of {} in {secs:.3} s", args.n);
        bench.engine.shutdown();
        secs
    };
    let isolated = {
        let (bench, isolation) = start_engine_isolated(args, true)?;
        let secs = timed_fanout(&bench, args.n)?;
        println!("isolated: fan-out of {} in {secs:.3} s", args.n);
        drop(isolation);
        bench.engine.shutdown();
        secs
    };
    println!(
        "RESULT workload=isolate n={} in_process_secs={in_process:.3} isolated_secs={isolated:.3} ratio={:.2}",
        args.n,
        isolated / in_process
    );
    Ok(())
}

/// The public status route of instance `id` under the API at `url`.
fn status_url(url: &str, id: &str) -> String {
    format!("{url}/runtime/webhooks/durabletask/instances/{id}")
}

/// One client's connection: keeps its socket alive between requests, reads every status.
fn http_agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    )
}

/// GETs `url`; its status and JSON body.
fn get_json(agent: &ureq::Agent, url: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string()?;
    let value = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&body).with_context(|| format!("GET {url} answered {body}"))?
    };
    Ok((status, value))
}

/// What one client of the first workload did.
#[derive(Default)]
struct HttpClientTally {
    requests: u64,
    orchestrations: u64,
}

/// Starts `BenchChain` for each of `inputs` over HTTP and polls its status URL until it ends,
/// checking the output.
fn http_client(
    url: &str,
    inputs: impl Iterator<Item = u64>,
    poll: Duration,
) -> anyhow::Result<HttpClientTally> {
    let agent = http_agent();
    let mut tally = HttpClientTally::default();
    let start = format!("{url}/runtime/webhooks/durabletask/orchestrators/BenchChain");
    for input in inputs {
        let mut response = agent
            .post(&start)
            .header("content-type", "application/json")
            .send(input.to_string())
            .with_context(|| format!("POST {start}"))?;
        tally.requests += 1;
        let body = response.body_mut().read_to_string()?;
        if response.status().as_u16() != 202 {
            bail!("starting BenchChain answered {}: {body}", response.status());
        }
        let payload: serde_json::Value = serde_json::from_str(&body)?;
        let status_uri = payload["statusQueryGetUri"]
            .as_str()
            .with_context(|| format!("no statusQueryGetUri in {body}"))?
            .to_owned();
        loop {
            let (code, status) = get_json(&agent, &status_uri)?;
            tally.requests += 1;
            match code {
                202 => std::thread::sleep(poll),
                200 => {
                    if status["runtimeStatus"] != "Completed"
                        || status["output"] != json!(input + 5)
                    {
                        bail!("chain {input} ended as {status}");
                    }
                    break;
                }
                other => bail!("polling {status_uri} answered {other}: {status}"),
            }
        }
        tally.orchestrations += 1;
    }
    Ok(tally)
}

/// Times `count` status requests of `ids` (a fixed pseudo-random walk over them) by one
/// client; every answer must be 200 for a completed instance. The latencies, sorted.
fn timed_status_requests(
    url: &str,
    ids: &[String],
    count: usize,
    seed: u64,
) -> anyhow::Result<Vec<Duration>> {
    let agent = http_agent();
    let mut state = seed | 1;
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        // xorshift: no dependency, and every run asks for the same instances.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let id = &ids[(state % ids.len() as u64) as usize];
        let url = status_url(url, id);
        let asked = Instant::now();
        let (code, status) = get_json(&agent, &url)?;
        times.push(asked.elapsed());
        if code != 200 || status["runtimeStatus"] != "Completed" {
            bail!("GET {url} answered {code}: {status}");
        }
    }
    times.sort();
    Ok(times)
}

/// Runs `client(0..clients)` on a thread each, all at once; their results in client order, or
/// the first error.
fn on_client_threads<T: Send>(
    clients: usize,
    client: impl Fn(u64) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients as u64)
            .map(|index| {
                let client = &client;
                scope.spawn(move || client(index))
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .map_err(|_| anyhow::anyhow!("a benchmark client panicked"))?
            })
            .collect()
    })
}

fn percentile_ms(sorted: &[Duration], percent: f64) -> f64 {
    let index =
        ((sorted.len() as f64 * percent / 100.0).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted
        .get(index)
        .map_or(0.0, |time| time.as_secs_f64() * 1000.0)
}

fn http(args: &HttpBenchArgs) -> anyhow::Result<()> {
    if args.clients == 0 || args.n == 0 || args.requests == 0 {
        bail!("-n, --clients and --requests must be at least 1");
    }
    let bench = start_engine(&BenchArgs::without_faults(args.n, &args.db, args.workers))?;
    let handle = bench.engine.handle();
    let server = super::http::HttpArgs::at(std::net::SocketAddr::from((
        std::net::Ipv4Addr::LOCALHOST,
        0,
    )))
    .bind()?
    .serve(handle.asynchronous())?;
    let url = server
        .url()
        .context("the HTTP API did not start on a loopback port")?;
    println!("HTTP API on {url}");

    let poll = Duration::from_millis(args.poll_interval_ms);
    let clients = args.clients.min(args.n as usize);
    let started = Instant::now();
    let tallies = on_client_threads(clients, |client| {
        http_client(&url, (client..args.n).step_by(clients), poll)
    })?;
    let secs = started.elapsed().as_secs_f64();
    let requests: u64 = tallies.iter().map(|tally| tally.requests).sum();
    let orchestrations: u64 = tallies.iter().map(|tally| tally.orchestrations).sum();
    if orchestrations != args.n {
        bail!("{orchestrations} of {} orchestrations completed", args.n);
    }
    println!(
        "{clients} clients started {} BenchChain orchestrations over HTTP and polled them to completion every {} ms: {requests} requests in {secs:.3} s, every output checked",
        args.n, args.poll_interval_ms
    );

    let filling = Instant::now();
    let more: Vec<String> = (args.n..args.instances.max(args.n))
        .map(|i| handle.start_orchestration("BenchChain", json!(i), None))
        .collect::<Result<_, _>>()?;
    for id in &more {
        handle
            .wait_until_terminal(id, Duration::from_secs(3600))?
            .context("filling the store did not finish within an hour")?;
    }
    let ids: Vec<String> = handle
        .instances()?
        .into_iter()
        .map(|instance| instance.instance_id)
        .collect();
    println!(
        "store filled to {} instances in {:.1} s (untimed)",
        ids.len(),
        filling.elapsed().as_secs_f64()
    );

    let one = timed_status_requests(&url, &ids, args.requests, 0x9e37_79b9_7f4a_7c15)?;
    let share = args.requests.div_ceil(clients);
    let concurrent_started = Instant::now();
    let mut many = on_client_threads(clients, |client| {
        timed_status_requests(&url, &ids, share, client + 1)
    })?
    .concat();
    let concurrent_secs = concurrent_started.elapsed().as_secs_f64();
    many.sort();
    println!(
        "status of one of {} instances, one client: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} requests)",
        ids.len(),
        percentile_ms(&one, 50.0),
        percentile_ms(&one, 99.0),
        percentile_ms(&one, 100.0),
        one.len()
    );
    println!(
        "status, {clients} clients at once: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} requests, {:.1} requests/s)",
        percentile_ms(&many, 50.0),
        percentile_ms(&many, 99.0),
        percentile_ms(&many, 100.0),
        many.len(),
        many.len() as f64 / concurrent_secs
    );
    println!(
        "RESULT workload=http n={} clients={clients} secs={secs:.3} requests_per_sec={:.1} orchestrations_per_sec={:.1} instances={} status_p50_ms={:.3} status_p99_ms={:.3} concurrent_status_p50_ms={:.3} concurrent_status_p99_ms={:.3}",
        args.n,
        requests as f64 / secs,
        args.n as f64 / secs,
        ids.len(),
        percentile_ms(&one, 50.0),
        percentile_ms(&one, 99.0),
        percentile_ms(&many, 50.0),
        percentile_ms(&many, 99.0),
    );
    drop(server);
    Ok(())
}

fn fanout(args: &BenchArgs) -> anyhow::Result<()> {
    let bench = start_engine(args)?;
    let handle = bench.engine.handle();
    let resident_before = resident_kib("VmRSS");
    let started = Instant::now();
    let id = handle.start_orchestration("BenchFanOut", json!(args.n), None)?;
    let record = handle
        .wait_until_terminal(&id, Duration::from_secs(3600))?
        .context("the fan-out did not finish within an hour")?;
    let secs = started.elapsed().as_secs_f64();
    if record.status != RuntimeStatus::Completed || record.output != json!(args.n) {
        bail!("the fan-out ended {} with {}", record.status, record.output);
    }
    println!("fan-out of {} on {}: all results checked", args.n, bench.db);
    let memory = match (resident_before, resident_kib("VmHWM")) {
        (Some(before), Some(peak)) => format!(
            " peak_rss_mib={:.1} bytes_per_activity={:.0}",
            peak as f64 / 1024.0,
            (peak.saturating_sub(before) * 1024) as f64 / args.n.max(1) as f64
        ),
        _ => String::new(),
    };
    println!(
        "RESULT workload=fanout n={} secs={secs:.3} activities_per_sec={:.1}{memory}",
        args.n,
        args.n as f64 / secs
    );
    Ok(())
}

/// A line of `/proc/self/status` in KiB (`VmRSS` now, `VmHWM` the peak); none off Linux.
fn resident_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

fn chain(args: &BenchArgs) -> anyhow::Result<()> {
    let bench = start_engine(args)?;
    let handle = bench.engine.handle();
    let started = Instant::now();
    let ids = (0..args.n)
        .map(|i| handle.start_orchestration("BenchChain", json!(i), None))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, id) in ids.iter().enumerate() {
        let record = handle
            .wait_until_terminal(id, Duration::from_secs(3600))?
            .context("a chain did not finish within an hour")?;
        if record.status != RuntimeStatus::Completed || record.output != json!(i as u64 + 5) {
            bail!("chain {i} ended {} with {}", record.status, record.output);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let activities = args.n * 5;
    println!("{} chains x 5 on {}: all results checked", args.n, bench.db);
    println!(
        "RESULT workload=chain n={} secs={secs:.3} activities_per_sec={:.1}",
        args.n,
        activities as f64 / secs
    );
    Ok(())
}

fn entities(args: &EntityBenchArgs) -> anyhow::Result<()> {
    if args.n == 0 || args.entities == 0 {
        bail!("-n and --entities must be at least 1");
    }
    let bench = start_engine(&BenchArgs::without_faults(args.n, &args.db, args.workers))?;
    let handle = bench.engine.handle();
    let one = vec!["@counter@bench-one".to_string()];
    let spread: Vec<String> = (0..args.entities)
        .map(|i| format!("@counter@bench-{i}"))
        .collect();
    for (workload, ids) in [("entities-one", &one), ("entities-spread", &spread)] {
        let (sent, secs) = signal_and_wait(&handle, ids, args.n)?;
        println!(
            "{} signals to {} entit{} on {}: sent in {sent:.3} s, all run and every count checked",
            args.n,
            ids.len(),
            if ids.len() == 1 { "y" } else { "ies" },
            bench.db
        );
        println!(
            "RESULT workload={workload} n={} entities={} secs={secs:.3} operations_per_sec={:.1}",
            args.n,
            ids.len(),
            args.n as f64 / secs
        );
    }
    Ok(())
}

/// Sends `n` `add 1` signals round robin over `ids` (Counter entities), then waits until every
/// counter holds its share. Returns the seconds spent sending and in all.
fn signal_and_wait(
    handle: &durable_emu_engine::engine::EngineHandle,
    ids: &[String],
    n: u64,
) -> anyhow::Result<(f64, f64)> {
    let count = ids.len() as u64;
    let started = Instant::now();
    for i in 0..n {
        handle.signal_entity(&ids[(i % count) as usize], "add", json!(1), None)?;
    }
    let sent = started.elapsed().as_secs_f64();
    let expected = |index: usize| n / count + u64::from((index as u64) < n % count);
    let mut waiting: Vec<usize> = (0..ids.len()).collect();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for index in waiting {
            let state = handle
                .entity(&ids[index], true)?
                .and_then(|entity| entity.state);
            if state != Some(json!(expected(index))) {
                still.push(index);
            }
        }
        waiting = still;
        if waiting.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{} entities had not run all their signals after 10 minutes (first: {})",
                waiting.len(),
                ids[waiting[0]]
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok((sent, started.elapsed().as_secs_f64()))
}

fn replay(args: &BenchArgs) -> anyhow::Result<()> {
    let bench = start_engine(args)?;
    let handle = bench.engine.handle();
    let fan_out = (args.n / 2).max(1);
    let id = handle.start_orchestration("BenchFanOut", json!(fan_out), None)?;
    handle
        .wait_until_terminal(&id, Duration::from_secs(3600))?
        .context("recording the history did not finish within an hour")?;

    let loading = Instant::now();
    let mut executions = handle.history(&id)?;
    let load_secs = loading.elapsed().as_secs_f64();
    let execution = executions.pop().context("the instance has no history")?;
    let events = execution.events.len();
    let plugin = LoadedPlugin::builtin()?;
    let request = OrchestratorRequest {
        instance_id: format!("{id}-replay"),
        execution_id: execution.execution.execution_id.clone(),
        history_len: events,
        past_events: execution.events,
        new_events: Vec::new(),
        include_replay_logs: false,
        max_actions: None,
    };
    let replaying = Instant::now();
    let response = plugin.handle.orchestrate(&request)?;
    let replay_secs = replaying.elapsed().as_secs_f64();
    if let Some(diff) = response.nondeterminism {
        bail!("the replay diverged: {diff}");
    }
    println!(
        "history of {events} events: loaded from the store in {load_secs:.3} s, replayed through the plugin in {replay_secs:.3} s"
    );
    let secs = load_secs + replay_secs;
    println!(
        "RESULT workload=replay n={events} secs={secs:.3} events_per_sec={:.1}",
        events as f64 / secs
    );
    Ok(())
}

fn reload(args: &ReloadArgs) -> anyhow::Result<()> {
    use durable_emu_engine::engine::EngineEvent;
    use durable_emu_engine::watch::{Target, WatchOptions, Watcher};

    let source = match &args.library {
        Some(path) => path.clone(),
        None => {
            let dir = std::path::Path::new("sample-functions");
            println!("building {} (not timed) ...", dir.display());
            durable_emu_engine::cargo_build::build_cdylib(dir, &Default::default())
                .context("building sample-functions; pass --library PATH to use another library")?
        }
    };
    let original =
        std::fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let library = dir.path().join("libbench_functions.so");
    std::fs::write(&library, &original)?;
    let plugin = LoadedPlugin::load(&library)?;
    let waiting = plugin
        .manifest
        .orchestrators
        .iter()
        .any(|name| name == "ApprovalWorkflow");
    let active_hash = plugin.content_hash.clone();
    let engine = Engine::start(EngineConfig {
        db: DbLocation::Memory,
        clock: ClockKind::Virtual,
        auto_skip: false,
        playing: false,
        workers: default_workers(),
        plugin: Some(plugin),
        faults: Vec::new(),
        on_store_failure: StoreFailurePolicy::Stop,
        limits: Limits::default(),
        remote_workers: false,
        isolated: false,
    })?;
    let handle = engine.handle();
    let instances = if waiting { args.instances } else { 0 };
    for i in 0..instances {
        handle.start_orchestration(
            "ApprovalWorkflow",
            json!({"request": format!("bench {i}"), "timeout_hours": 24}),
            None,
        )?;
    }
    let mut events = handle.subscribe();
    let _watcher = Watcher::start(
        Target::Library(library.clone()),
        WatchOptions::default(),
        handle.clone(),
        Some(active_hash),
    )?;
    println!(
        "reloading {} ({} bytes) {} times with {instances} waiting instances",
        source.display(),
        original.len(),
        args.n
    );
    let mut settled_ms = Vec::new();
    let mut write_ms = Vec::new();
    for round in 0..args.n {
        // Trailing bytes change the file's hash without changing the code; written aside and
        // renamed into place, as cargo does.
        let mut bytes = original.clone();
        bytes.extend_from_slice(format!("durable-emu bench reload {round}").as_bytes());
        let staged = dir.path().join("staged.so");
        std::fs::write(&staged, &bytes)?;
        let written = Instant::now();
        std::fs::rename(&staged, &library)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                bail!("reload {round} did not happen within 30 s");
            }
            match events.try_recv() {
                Ok(EngineEvent::ReloadFinished {
                    settled_to_active_ms,
                    ..
                }) => {
                    settled_ms.push(settled_to_active_ms);
                    write_ms.push(written.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                Ok(EngineEvent::BuildFailed { reason, .. }) => {
                    bail!("reload {round} failed: {reason}")
                }
                Ok(EngineEvent::InstanceDiverged { reason, .. }) => {
                    bail!("reload {round} diverged: {reason}")
                }
                Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let max = settled_ms.iter().copied().fold(0.0, f64::max);
    let p50 = median(&mut settled_ms);
    let write_p50 = median(&mut write_ms);
    println!(
        "settled -> active: median {p50:.1} ms, max {max:.1} ms; file written -> active (includes the 200 ms debounce): median {write_p50:.1} ms"
    );
    println!(
        "RESULT workload=reload n={} instances={instances} secs={:.4} p50_ms={p50:.1} max_ms={max:.1}",
        args.n,
        p50 / 1000.0
    );
    Ok(())
}

fn sidecar(args: &SidecarArgs) -> anyhow::Result<()> {
    use durable_emu_grpc::loadgen::{LoadgenOptions, Progress, run_local};
    if args.orchestrations == 0 || args.activities == 0 {
        bail!("--orchestrations and --activities must be at least 1");
    }
    if i32::try_from(args.activities).is_err() {
        bail!(
            "--activities is at most {} (task ids are 32-bit)",
            i32::MAX - 1
        );
    }
    if args.threads == 0 || args.threads > 256 {
        bail!("--threads is 1 to 256");
    }
    let (db, _dir) = match &args.db {
        Some(db) => (DbLocation::parse(db), None),
        None => {
            let dir = tempfile::tempdir().context("creating a temporary directory")?;
            (DbLocation::File(dir.path().join("bench.db")), Some(dir))
        }
    };
    let label = db.to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .thread_name("durable-emu-bench-sidecar")
        .enable_all()
        .build()
        .context("starting the benchmark's runtime")?;
    let options = LoadgenOptions {
        orchestrations: args.orchestrations,
        activities_per_orchestration: args.activities,
        db,
        ..LoadgenOptions::default()
    };
    println!(
        "database: {label}; runtime threads: {}; {} orchestrations x {} activities through the sidecar on a loopback port",
        args.threads, args.orchestrations, args.activities
    );
    let report = runtime
        .block_on(run_local(&options, |progress: Progress| {
            println!(
                "  {:>6.1} s: {} of {} activities, {} episodes",
                progress.elapsed.as_secs_f64(),
                progress.activities,
                progress.activities_total,
                progress.episodes
            );
        }))
        .context("the sidecar benchmark failed")?;
    let expected = (args.orchestrations * args.activities) as u64;
    if report.activities != expected {
        bail!(
            "{} activity work items were completed, expected {expected}",
            report.activities
        );
    }
    let secs = report.elapsed.as_secs_f64();
    println!(
        "{} orchestrations x {} activities on {label}: all completed; {} episodes answered",
        args.orchestrations, args.activities, report.episodes
    );
    println!(
        "RESULT workload=sidecar n={expected} orchestrations={} secs={secs:.3} activities_per_sec={:.1} episodes={}",
        args.orchestrations,
        report.activities_per_second(),
        report.episodes
    );
    Ok(())
}

fn ui(args: &UiArgs) -> anyhow::Result<()> {
    use durable_emu_tui::bench::{frame_times, synthetic_model};
    let (width, height) = args
        .size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u16>().ok()?, h.parse::<u16>().ok()?)))
        .context("--size is COLUMNSxROWS, e.g. 200x50")?;
    let setup = std::time::Instant::now();
    let mut model = synthetic_model(args.instances, args.events, width, height);
    println!(
        "ui: {} instances, {} events in the selected history, {width}x{height}; model built in {:.0} ms",
        args.instances,
        args.events,
        setup.elapsed().as_secs_f64() * 1000.0
    );
    println!(
        "{:<10} {:>10} {:>10} {:>10}",
        "view", "median ms", "p99 ms", "max ms"
    );
    for times in frame_times(&mut model, args.frames.max(1))? {
        println!(
            "{:<10} {:>10.2} {:>10.2} {:>10.2}",
            times.view.title(),
            times.median.as_secs_f64() * 1000.0,
            times.p99.as_secs_f64() * 1000.0,
            times.max.as_secs_f64() * 1000.0
        );
    }
    if args.live_fanout > 0 {
        let live = durable_emu_tui::bench::live_fanout(args.live_fanout, width, height)?;
        let ms = |time: Duration| time.as_secs_f64() * 1000.0;
        println!(
            "live fan-out of {} activities: {:.2} s, {} engine events applied, {} keys fed",
            args.live_fanout,
            live.fan_out.as_secs_f64(),
            live.events,
            live.keys
        );
        println!(
            "  key -> model handled: p99 {:.3} ms, max {:.3} ms; frame (key + tick + render): p99 {:.2} ms, max {:.2} ms; slowest event batch between frames {:.2} ms",
            ms(live.key_p99),
            ms(live.key_max),
            ms(live.frame_p99),
            ms(live.frame_max),
            ms(live.batch_max)
        );
    }
    Ok(())
}
