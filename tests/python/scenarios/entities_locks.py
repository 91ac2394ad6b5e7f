"""Critical sections (`ctx.lock_entities`): a transfer between two accounts locks both, reads and
moves the money with calls, and releases the locks when the section ends. Two transfers over the
same accounts contend: the second waits for the first's section to end (first come, first
served) and then sees the first's result. A transfer that fails inside its section releases the
locks (the next transfer gets them). Against durable-emu a client's signal to a locked account
also waits until the section ends (the in-memory backend does not hold signals back)."""

import time

from durabletask import entities

import _common as c


class Purse(entities.DurableEntity):
    def deposit(self, amount: int) -> int:
        self.set_state(self.get_state(int, 0) + amount)
        return self.get_state(int, 0)

    def withdraw(self, amount: int) -> int:
        balance = self.get_state(int, 0)
        if amount > balance:
            raise ValueError(f"insufficient funds: {balance} < {amount}")
        self.set_state(balance - amount)
        return balance - amount

    def balance(self) -> int:
        return self.get_state(int, 0)


def transfer(ctx, args: dict):
    source = entities.EntityInstanceId("purse", args["from"])
    target = entities.EntityInstanceId("purse", args["to"])
    ctx.set_custom_status("requesting")
    with (yield ctx.lock_entities([source, target])):
        ctx.set_custom_status("locked")
        if args.get("hold"):
            yield ctx.wait_for_external_event("go")
        seen = yield ctx.call_entity(source, "balance")
        if seen < args["amount"]:
            raise ValueError(f"cannot move {args['amount']}: the source holds {seen}")
        yield ctx.call_entity(source, "withdraw", args["amount"])
        yield ctx.call_entity(target, "deposit", args["amount"])
    return {"source_balance_seen": seen}


def status_of(client, instance_id: str):
    state = client.get_orchestration_state(instance_id)
    return None if state is None else state.serialized_custom_status


def scenario(b: c.Backend) -> None:
    with c.running_worker(b.address, [transfer], entities=[Purse], metadata=b.worker_metadata):
        client = c.new_client(b.address)
        a = entities.EntityInstanceId("purse", "a")
        bb = entities.EntityInstanceId("purse", "b")
        client.signal_entity(a, "deposit", 100)
        client.signal_entity(bb, "deposit", 50)
        c.wait_entity_state(client, a, 100)
        c.wait_entity_state(client, bb, 50)

        # The first transfer takes both locks and holds them until it is told to go on.
        first = client.schedule_new_orchestration(
            transfer, input={"from": "a", "to": "b", "amount": 30, "hold": True},
            instance_id="py-transfer-1")
        c.wait_until("the first transfer to hold its locks",
                     lambda: status_of(client, first) == '"locked"')
        # The second asks for the same locks (sorted, so no deadlock) and must wait.
        second = client.schedule_new_orchestration(
            transfer, input={"from": "b", "to": "a", "amount": 10}, instance_id="py-transfer-2")
        c.wait_until("the second transfer to ask for its locks",
                     lambda: status_of(client, second) == '"requesting"')
        if not b.in_memory:
            # (The holder is not read back here: durabletask 1.12.0's
            # EntityMetadata.get_locked_by parses it as an entity id, which an orchestration's
            # id is not.)
            client.signal_entity(a, "deposit", 1)
        time.sleep(1.0)
        c.check_eq(status_of(client, second), '"requesting"',
                   "the second transfer's status while the first holds the locks")
        if not b.in_memory:
            c.check_eq(c.entity_state(client, a), 100,
                       "account a while locked: a client's deposit waits for the section to end")

        client.raise_orchestration_event(first, "go")
        c.completed_output(client, first)
        second_output = c.completed_output(client, second)
        c.check_eq(second_output["source_balance_seen"], 80,
                   "what the second transfer saw of account b (after the first moved 30 in)")
        deposit = 0 if b.in_memory else 1
        c.wait_entity_state(client, a, 100 - 30 + 10 + deposit)
        c.wait_entity_state(client, bb, 50 + 30 - 10)

        # A transfer that fails inside its section releases the locks.
        failing = client.schedule_new_orchestration(
            transfer, input={"from": "a", "to": "b", "amount": 10_000},
            instance_id="py-transfer-fails")
        state = c.wait_done(client, failing)
        c.check(state.runtime_status == c.dt_client.OrchestrationStatus.FAILED
                and "cannot move" in (state.failure_details.message or ""),
                f"the oversized transfer should fail with its own message: {c.describe(state)}")
        after = client.schedule_new_orchestration(
            transfer, input={"from": "a", "to": "b", "amount": 1}, instance_id="py-transfer-after")
        c.completed_output(client, after)
        c.wait_entity_state(client, bb, 50 + 30 - 10 + 1)


if __name__ == "__main__":
    c.run("entities_locks", scenario)
