"""Timers: an orchestration sleeps on a durable timer. Against durable-emu (virtual clock,
auto-skip: serve's default `--clock virtual`) the timer is 3 days and fires at once in real time;
the orchestration's own clock (orchestratorStarted timestamps) shows the 3 days passed. The
in-memory backend has only real time, so it is checked with a 2-second timer."""

from datetime import timedelta

import _common as c


def note(ctx, what: str) -> str:
    return what


def timer_orchestrator(ctx, seconds: float):
    before = ctx.current_utc_datetime
    yield ctx.call_activity(note, input="before")
    yield ctx.create_timer(timedelta(seconds=seconds))
    after = ctx.current_utc_datetime
    return {"elapsed": (after - before).total_seconds(), "before": before.isoformat(),
            "after": after.isoformat()}


def scenario(b: c.Backend) -> None:
    seconds = 2.0 if b.in_memory else 3 * 24 * 3600.0
    with c.running_worker(b.address, [timer_orchestrator], [note]):
        client = c.new_client(b.address)
        instance_id = client.schedule_new_orchestration(timer_orchestrator, input=seconds,
                                                        instance_id="py-timer")
        # A 3-day timer that does not skip would outlast this wait: auto-skip must fire it.
        output = c.completed_output(client, instance_id)
        c.check(output["elapsed"] >= seconds,
                f"the orchestration's clock should have moved at least {seconds} s across the "
                f"timer; it moved {output['elapsed']} s ({output['before']} -> {output['after']})")


if __name__ == "__main__":
    c.run("timers", scenario)
