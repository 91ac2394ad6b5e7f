"""Signals to entities from a client and from an orchestration, now and delayed. A delayed
signal runs only once its time has come: the entity's last-modified time (the backend's clock)
is at or after the time the signal was scheduled for. Against durable-emu (virtual clock,
auto-skip) the delay is a day and passes at once in real time; the in-memory backend has only
real time, so it is checked with a 2-second delay."""

from datetime import datetime, timedelta, timezone

from durabletask import entities

import _common as c


def mailbox(ctx: entities.EntityContext, input):
    if ctx.operation == "post":
        ctx.set_state(ctx.get_state(list, []) + [input])
    else:
        raise ValueError(f"unknown operation '{ctx.operation}'")


def signaller(ctx, delay_seconds: float):
    box = entities.EntityInstanceId("mailbox", "orch")
    ctx.signal_entity(box, "post", "now")
    due = ctx.current_utc_datetime + timedelta(seconds=delay_seconds)
    ctx.signal_entity(box, "post", "later", signal_time=due)
    return due.isoformat()


def scenario(b: c.Backend) -> None:
    delay = 2.0 if b.in_memory else 24 * 3600.0
    with c.running_worker(b.address, [signaller], entities=[mailbox], metadata=b.worker_metadata):
        client = c.new_client(b.address)

        # From a client: one now, one delayed.
        box = entities.EntityInstanceId("mailbox", "client")
        due = datetime.now(timezone.utc) + timedelta(seconds=delay)
        # "now" first: under auto-skip an idle emulator skips straight to the delayed one.
        client.signal_entity(box, "post", "now")
        client.signal_entity(box, "post", "later", signal_time=due)
        c.wait_entity_state(client, box, ["now", "later"])
        modified = client.get_entity(box).last_modified
        c.check(modified >= due,
                f"the delayed signal ran at {modified.isoformat()}, before it was due at "
                f"{due.isoformat()}")

        # From an orchestration: one now, one delayed on the orchestration's clock.
        instance_id = client.schedule_new_orchestration(signaller, input=delay,
                                                        instance_id="py-entity-signals")
        due = datetime.fromisoformat(c.completed_output(client, instance_id))
        # The SDK's orchestration clock is naive UTC.
        due = due if due.tzinfo else due.replace(tzinfo=timezone.utc)
        box = entities.EntityInstanceId("mailbox", "orch")
        c.wait_entity_state(client, box, ["now", "later"])
        modified = client.get_entity(box).last_modified
        c.check(modified >= due,
                f"the orchestration's delayed signal ran at {modified.isoformat()}, before it "
                f"was due at {due.isoformat()}")


if __name__ == "__main__":
    c.run("entities_signals", scenario)
