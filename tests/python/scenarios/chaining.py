"""Chaining: one orchestration calls three activities in sequence, each with the previous one's
output; the result and the recorded history (StreamInstanceHistory) show all three, in order."""

from durabletask import history

import _common as c


def greet(ctx, name: str) -> str:
    return f"Hello, {name}!"


def chain_orchestrator(ctx, names: list[str]):
    results = []
    for name in names:
        results.append((yield ctx.call_activity(greet, input=name)))
    return results


def scenario(b: c.Backend) -> None:
    names = ["Tokyo", "Seattle", "London"]
    with c.running_worker(b.address, [chain_orchestrator], [greet]):
        client = c.new_client(b.address)
        instance_id = client.schedule_new_orchestration(chain_orchestrator, input=names,
                                                        instance_id="py-chain")
        c.check_eq(instance_id, "py-chain", "the instance id the backend accepted")
        output = c.completed_output(client, instance_id)
        c.check_eq(output, ["Hello, Tokyo!", "Hello, Seattle!", "Hello, London!"],
                   "the chain's output")
        state = client.get_orchestration_state(instance_id)
        c.check_eq(state.name, "chain_orchestrator", "the instance's orchestration name")
        c.check_eq(state.get_input(), names, "the instance's input")

        events = client.get_orchestration_history(instance_id)
        scheduled = [e for e in events if isinstance(e, history.TaskScheduledEvent)]
        completed = [e for e in events if isinstance(e, history.TaskCompletedEvent)]
        c.check_eq([e.name for e in scheduled], ["greet"] * 3, "the activities scheduled, in order")
        c.check_eq(len(completed), 3, "TaskCompleted events in the history")
        c.check(isinstance(events[0], history.OrchestratorStartedEvent)
                or isinstance(events[0], history.ExecutionStartedEvent),
                f"history should start with OrchestratorStarted/ExecutionStarted, starts with "
                f"{type(events[0]).__name__}")
        c.check(any(isinstance(e, history.ExecutionCompletedEvent) for e in events),
                "the history has no ExecutionCompleted event")


if __name__ == "__main__":
    c.run("chaining", scenario)
