//! The benchmark workloads, the same ones `../shared/peers` runs on other engines:
//! `BenchFanOut` (one orchestration fans out N `Echo` calls, joins them and checks every result)
//! and `BenchChain` (calls `Echo` 5 times in sequence). `durable-emu bench` drives them.

use durable_sdk::serde_json::json;
use durable_sdk::{
    ActivityContext, FailureDetails, OrchestrationContext, OrchestratorInfo, Registry, when_all,
};
use serde_json::Value;

/// Activity `Echo`: returns its input unchanged (a no-op, so benchmarks measure the engine).
pub async fn echo(_ctx: ActivityContext, input: Value) -> Result<Value, FailureDetails> {
    Ok(input)
}

/// Orchestrator `BenchFanOut`, input N: runs `Echo(i)` for i in 0..N in parallel and checks that
/// every result came back in place; output N.
pub async fn bench_fan_out(ctx: OrchestrationContext, n: u64) -> Result<u64, FailureDetails> {
    let calls = (0..n).map(|i| ctx.call_activity::<u64>("Echo", i));
    let results = when_all(calls).await?;
    if let Some((index, wrong)) = results
        .iter()
        .enumerate()
        .find(|(index, result)| **result != *index as u64)
    {
        return Err(FailureDetails::new(
            "WrongResult",
            format!("Echo({index}) returned {wrong}"),
        ));
    }
    Ok(results.len() as u64)
}

/// Orchestrator `BenchChain`, input a number: calls `Echo` 5 times in sequence, each with the
/// previous result plus one; output the input plus 5.
pub async fn bench_chain(ctx: OrchestrationContext, start: u64) -> Result<u64, FailureDetails> {
    let mut value = start;
    for _ in 0..5 {
        value = ctx.call_activity::<u64>("Echo", value + 1).await?;
    }
    Ok(value)
}

/// Adds the benchmark functions to `registry`.
pub fn register(registry: Registry) -> Registry {
    registry
        .activity("Echo", echo)
        .orchestrator_with(
            "BenchFanOut",
            bench_fan_out,
            OrchestratorInfo::new("Benchmark workload (durable-emu bench): runs N Echo activities in parallel; input N")
                .example(json!(1000)),
        )
        .orchestrator_with(
            "BenchChain",
            bench_chain,
            OrchestratorInfo::new("Benchmark workload (durable-emu bench): calls Echo 5 times in sequence; input a number")
                .example(json!(1)),
        )
}
