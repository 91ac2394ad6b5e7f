//! Measures the sidecar's activity work items per second with the native load generator:
//! `cargo run --release -p durable-emu-grpc --example loadgen -- [orchestrations] [activities each]`.
//! (`durable-emu bench sidecar` is the user-facing form.)

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut options = durable_emu_grpc::loadgen::LoadgenOptions::default();
    if let Some(n) = args.next() {
        options.orchestrations = n.parse()?;
    }
    if let Some(n) = args.next() {
        options.activities_per_orchestration = n.parse()?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = runtime.block_on(durable_emu_grpc::loadgen::run_local(&options, |_| {}))?;
    println!(
        "{} activity work items, {} episodes in {:.3}s: {:.0} activity items/s",
        report.activities,
        report.episodes,
        report.elapsed.as_secs_f64(),
        report.activities_per_second()
    );
    Ok(())
}
