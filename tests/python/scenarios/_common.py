"""Shared by every scenario script: where the backend is, the official SDK's worker and client,
and assertions that fail with a message saying what was expected and what happened.

A scenario runs against durable-emu (``--address HOST:PORT`` or ``DURABLE_EMU_ADDRESS``) or, to
check the script itself, against the SDK's own in-memory backend (``--in-memory``:
``durabletask.testing``, started in this process on a free port). It exits 0 and prints
``PASS <scenario>`` when every check held, and exits 1 with ``FAIL <scenario>: <why>`` otherwise.
The scripts use only the SDK's public API, unmodified.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from durabletask import client as dt_client  # noqa: F401  (scenarios use c.dt_client)
from durabletask import task  # noqa: F401  (re-exported: scenarios use c.task)
from durabletask import worker as dt_worker

# How long a scenario waits (real time) for an instance to reach a state. Generous: CI has two
# cores; a wait that runs out is a failure with a message, never a pass.
PATIENCE = float(os.environ.get("DURABLE_EMU_PATIENCE", "60"))


class ScenarioFailed(Exception):
    """A check did not hold; the message says what was expected and what happened."""


@dataclass
class Backend:
    """Where the scenario's workers and clients connect, and what kind of backend it is."""

    address: str
    in_memory: bool
    args: argparse.Namespace

    @property
    def kind(self) -> str:
        return "in-memory" if self.in_memory else "durable-emu"

    @property
    def worker_metadata(self) -> list[tuple[str, str]] | None:
        """The metadata a worker sends: with ``--entity-requests v1`` it asks durable-emu for the
        older ``entityRequest`` work items (the SDK's worker reads both kinds)."""
        if self.args.entity_requests:
            return [("durable-emu-entity-requests", self.args.entity_requests)]
        return None


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioFailed(message)


def check_eq(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise ScenarioFailed(f"{what}: expected {expected!r}, got {actual!r}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--address", default=os.environ.get("DURABLE_EMU_ADDRESS"),
                   help="durable-emu's gRPC address HOST:PORT (default: $DURABLE_EMU_ADDRESS)")
    p.add_argument("--in-memory", action="store_true",
                   help="run against the SDK's own in-memory backend (durabletask.testing) "
                        "started in this process, to check the script itself")
    p.add_argument("--entity-requests", choices=["v1", "v2"], default=None,
                   help="which entity work items the worker asks durable-emu for (default: "
                        "durable-emu's choice, entityRequestV2)")
    return p


@contextlib.contextmanager
def backend(args: argparse.Namespace) -> Iterator[Backend]:
    """The backend the arguments name; the in-memory one is started here and stopped after."""
    if args.in_memory:
        from durabletask.testing import create_test_backend

        port = free_port()
        server = create_test_backend(port=port)
        try:
            yield Backend(address=f"127.0.0.1:{port}", in_memory=True, args=args)
        finally:
            server.stop(grace=0)
        return
    if not args.address:
        raise SystemExit("give durable-emu's address with --address HOST:PORT or "
                         "DURABLE_EMU_ADDRESS, or check the script with --in-memory")
    yield Backend(address=args.address, in_memory=False, args=args)


@contextlib.contextmanager
def running_worker(address: str, orchestrators: list[Callable[..., Any]] = (),
                   activities: list[Callable[..., Any]] = (),
                   entities: list[Any] = (),
                   metadata: list[tuple[str, str]] | None = None,
                   ) -> Iterator[dt_worker.TaskHubGrpcWorker]:
    """The official worker with these functions (and entity functions or DurableEntity classes)
    registered under their Python names, started; stopped when the block ends."""
    w = dt_worker.TaskHubGrpcWorker(host_address=address, metadata=metadata,
                                    logger=sdk_logger("worker"))
    for fn in orchestrators:
        w.add_orchestrator(fn)
    for fn in activities:
        w.add_activity(fn)
    for entity in entities:
        w.add_entity(entity)
    w.start()
    try:
        yield w
    finally:
        w.stop()


def new_client(address: str) -> dt_client.TaskHubGrpcClient:
    return dt_client.TaskHubGrpcClient(host_address=address, logger=sdk_logger("client"))


def sdk_logger(role: str) -> logging.Logger:
    """The SDK logs every work item at INFO; scenarios show its warnings only, unless
    DURABLE_EMU_SDK_LOG=info asks for everything."""
    logger = logging.getLogger(f"scenario-sdk-{role}")
    logger.setLevel(os.environ.get("DURABLE_EMU_SDK_LOG", "warning").upper())
    return logger


def wait_done(c: dt_client.TaskHubGrpcClient, instance_id: str,
              timeout: float = PATIENCE) -> dt_client.OrchestrationState:
    """The instance's final state; a failure naming the instance if it does not end in time."""
    try:
        state = c.wait_for_orchestration_completion(instance_id, timeout=timeout)
    except TimeoutError:
        now = c.get_orchestration_state(instance_id)
        raise ScenarioFailed(
            f"instance {instance_id} did not end within {timeout:.0f} s of real time; "
            f"it is {describe(now)}") from None
    check(state is not None, f"instance {instance_id} does not exist after waiting for it")
    return state


def completed_output(c: dt_client.TaskHubGrpcClient, instance_id: str,
                     timeout: float = PATIENCE) -> Any:
    """The output of an instance that must complete; its failure in full otherwise."""
    state = wait_done(c, instance_id, timeout)
    check(state.runtime_status == dt_client.OrchestrationStatus.COMPLETED,
          f"instance {instance_id} should have completed but is {describe(state)}")
    return state.get_output()


def wait_until(what: str, predicate: Callable[[], Any], timeout: float = PATIENCE) -> Any:
    """Polls `predicate` until it returns something truthy, which is returned."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.05)
    raise ScenarioFailed(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def wait_status(c: dt_client.TaskHubGrpcClient, instance_id: str,
                status: dt_client.OrchestrationStatus,
                timeout: float = PATIENCE) -> dt_client.OrchestrationState:
    def reached() -> dt_client.OrchestrationState | None:
        state = c.get_orchestration_state(instance_id)
        return state if state is not None and state.runtime_status == status else None

    try:
        return wait_until(f"instance {instance_id} to be {status}", reached, timeout)
    except ScenarioFailed:
        raise ScenarioFailed(f"instance {instance_id} never became {status}; it is "
                             f"{describe(c.get_orchestration_state(instance_id))}") from None


def entity_state(c: dt_client.TaskHubGrpcClient, entity_id: Any) -> Any:
    """The entity's state (decoded JSON), or None when it has none or does not exist."""
    metadata = c.get_entity(entity_id, include_state=True)
    if metadata is None:
        return None
    # The SDK hands back the raw JSON text ("" when the entity has no state).
    raw = metadata.get_state()
    return json.loads(raw) if raw else None


def wait_entity_state(c: dt_client.TaskHubGrpcClient, entity_id: Any, expected: Any,
                      timeout: float = PATIENCE) -> Any:
    """Waits until the entity's state is `expected`; a failure naming the last state otherwise."""
    last: list[Any] = [None]

    def reached() -> bool:
        last[0] = entity_state(c, entity_id)
        return last[0] == expected

    try:
        wait_until(f"entity {entity_id} to hold {expected!r}", reached, timeout)
    except ScenarioFailed:
        raise ScenarioFailed(f"entity {entity_id} never held {expected!r}; it holds "
                             f"{last[0]!r}") from None
    return last[0]


def describe(state: dt_client.OrchestrationState | None) -> str:
    if state is None:
        return "missing"
    text = f"{state.runtime_status}"
    if state.failure_details is not None:
        text += (f" ({state.failure_details.error_type}: {state.failure_details.message})")
    if state.serialized_output:
        text += f", output {state.serialized_output}"
    if state.serialized_custom_status:
        text += f", custom status {state.serialized_custom_status}"
    return text


def run(name: str, scenario: Callable[[Backend], None], args: argparse.Namespace | None = None) -> None:
    """Runs `scenario` against the backend the command line names and exits with its verdict."""
    if args is None:
        args = parser(name).parse_args()
    # The SDK logs every work item at INFO; a failure's own message is what matters here.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    started = time.monotonic()
    try:
        with backend(args) as b:
            scenario(b)
            kind = b.kind
    except ScenarioFailed as failure:
        print(f"FAIL {name}: {failure}", file=sys.stderr, flush=True)
        os._exit(1)
    except Exception:
        print(f"FAIL {name}: unexpected error\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        os._exit(1)
    print(f"PASS {name} against {kind} in {time.monotonic() - started:.1f} s", flush=True)
    # The SDK's worker threads may linger on a closing channel; the verdict is printed, so leave
    # at once (in every branch) rather than wait on them.
    os._exit(0)
