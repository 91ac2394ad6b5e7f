"""Class-based entities (`durabletask.entities.DurableEntity`): each operation is a method; state
survives between batches; `delete` (the SDK's built-in) removes the state; an operation that
raises leaves the state as it was before it (the failed operation is rolled back) while later
operations still run."""

from durabletask import entities

import _common as c


class Wallet(entities.DurableEntity):
    def deposit(self, amount: int) -> int:
        balance = self.get_state(int, 0) + amount
        self.set_state(balance)
        return balance

    def withdraw(self, amount: int) -> int:
        balance = self.get_state(int, 0)
        # Change the state first, then fail: the change must not survive.
        self.set_state(balance - amount)
        if amount > balance:
            raise ValueError(f"insufficient funds: balance {balance}, asked {amount}")
        return balance - amount

    def balance(self) -> int:
        return self.get_state(int, 0)


def wallet_orchestrator(ctx, key: str):
    wallet = entities.EntityInstanceId("Wallet", key)
    yield ctx.call_entity(wallet, "deposit", 100)
    after = yield ctx.call_entity(wallet, "withdraw", 30)
    try:
        yield ctx.call_entity(wallet, "withdraw", 500)
        refused = None
    except c.task.TaskFailedError as error:
        refused = error.details.message
    balance = yield ctx.call_entity(wallet, "balance")
    return {"after_withdraw": after, "refused": refused, "balance": balance}


def scenario(b: c.Backend) -> None:
    with c.running_worker(b.address, [wallet_orchestrator], entities=[Wallet],
                          metadata=b.worker_metadata):
        client = c.new_client(b.address)
        instance_id = client.schedule_new_orchestration(wallet_orchestrator, input="alice",
                                                        instance_id="py-entity-class")
        output = c.completed_output(client, instance_id)
        c.check_eq(output["after_withdraw"], 70, "the balance after withdrawing 30 of 100")
        c.check(output["refused"] is not None and "insufficient funds" in output["refused"],
                f"withdrawing 500 should fail with the entity's message, got {output['refused']!r}")
        c.check_eq(output["balance"], 70, "the balance after the refused withdrawal (rolled back)")

        alice = entities.EntityInstanceId("wallet", "alice")
        # A failed signal changes nothing either, and the next signal still runs.
        client.signal_entity(alice, "withdraw", 1000)
        client.signal_entity(alice, "deposit", 5)
        c.wait_entity_state(client, alice, 75)

        # The SDK's built-in delete removes the state.
        client.signal_entity(alice, "delete")
        c.wait_until("alice's state to be deleted", lambda: c.entity_state(client, alice) is None)


if __name__ == "__main__":
    c.run("entities_class", scenario)
