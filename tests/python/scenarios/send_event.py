"""Send-event: an orchestration sends an event to another instance, which receives it with its
payload, and one to an instance that does not exist, which is dropped silently (the sender
completes; no instance is created)."""

import _common as c


def receiver_orchestrator(ctx, _):
    return (yield ctx.wait_for_external_event("ping"))


def sender_orchestrator(ctx, targets):
    ctx.send_event(targets["missing"], "ping", data="into the void")
    ctx.send_event(targets["receiver"], "ping", data={"from": ctx.instance_id})
    return "sent"


def scenario(b: c.Backend) -> None:
    with c.running_worker(b.address, [receiver_orchestrator, sender_orchestrator]):
        client = c.new_client(b.address)
        receiver = client.schedule_new_orchestration(receiver_orchestrator, instance_id="py-receiver")
        c.wait_status(client, receiver, c.dt_client.OrchestrationStatus.RUNNING)
        sender = client.schedule_new_orchestration(
            sender_orchestrator, instance_id="py-sender",
            input={"receiver": receiver, "missing": "py-nobody-home"})
        c.check_eq(c.completed_output(client, sender), "sent", "the sender's output")
        c.check_eq(c.completed_output(client, receiver), {"from": "py-sender"},
                   "the event the receiver got")
        c.check(client.get_orchestration_state("py-nobody-home") is None,
                "sending an event to a missing instance created it")


if __name__ == "__main__":
    c.run("send_event", scenario)
