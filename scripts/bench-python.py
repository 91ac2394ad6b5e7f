#!/usr/bin/env python3
"""The official Durable Task Python SDK's worker (durabletask==1.12.0) on two backends, side by
side in one run: the SDK's own in-memory backend (durabletask.testing) and durable-emu (its
durable SQLite store, over gRPC). Same workloads, same worker settings, same process:

  fanout  one orchestration schedules N no-op activities at once and joins them (default 1,000)
  chain   M orchestrations started at once, each calling a no-op activity 5 times in sequence
          (default 100)
  entities  N client signals `add 1` to one counter entity (entities-one), then N spread round
          robin over 100 counters (entities-spread), from the first signal sent to the last
          counter holding its count (default 1,000; the peer of `durable-emu bench entities`)

Each measurement starts a fresh backend (the in-memory one in this process; durable-emu as
`durable-emu serve --grpc 127.0.0.1:<free port> --db <fresh temp file>` when --durable-emu names
the binary, or the already-running one at --address), connects a fresh worker, warms it up with
one small orchestration, then times from the first start request to the last completion as the
client sees it. One line per measurement:

  RESULT backend=in-memory workload=fanout n=1000 secs=2.345 activities_per_sec=426.4

With --separate-processes, the client, the worker and the backend each get their own process (the
in-memory backend too), so the Python worker does not share the client's GIL: the layout of a
deployed app, and the fair one for comparing servers.

Run it with the test harness's venv (made by `cargo test -p durable-emu-tests --test python_sdk`,
or by hand: python3 -m venv target/python-venv && target/python-venv/bin/pip install
--require-hashes -r tests/python/requirements.txt):

  target/python-venv/bin/python scripts/bench-python.py --durable-emu target/release/durable-emu
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from durabletask import client as dt_client
from durabletask import entities
from durabletask import task
from durabletask import worker as dt_worker

STEPS = 5
PATIENCE = 600.0


def echo(ctx, value):
    return value


def bench_fan_out(ctx, n: int):
    results = yield task.when_all([ctx.call_activity(echo, input=i) for i in range(n)])
    if results != list(range(n)):
        raise ValueError("fan-out results are wrong")
    return len(results)


def bench_chain(ctx, start: int):
    value = start
    for _ in range(STEPS):
        value = (yield ctx.call_activity(echo, input=value + 1))
    return value


def bench_counter(ctx: entities.EntityContext, input):
    if ctx.operation == "add":
        value = ctx.get_state(int, 0) + input
        ctx.set_state(value)
        return value
    raise ValueError(f"unknown operation '{ctx.operation}'")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quiet_logger(role: str) -> logging.Logger:
    logger = logging.getLogger(f"bench-{role}")
    logger.setLevel(logging.WARNING)
    return logger


@contextlib.contextmanager
def in_memory_backend(separate: bool = False) -> Iterator[str]:
    from durabletask.testing import create_test_backend

    port = free_port()
    if separate:
        with child_process(["--serve-in-memory", str(port)]):
            wait_listening("127.0.0.1", port)
            yield f"127.0.0.1:{port}"
        return
    backend = create_test_backend(port=port)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        backend.stop(grace=0)


@contextlib.contextmanager
def child_process(mode: list[str]) -> Iterator[None]:
    """This script in another process, in one of its hidden modes (a backend or a worker)."""
    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), *mode],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        child.kill()
        child.wait()


def wait_listening(host: str, port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        if time.monotonic() > deadline:
            sys.exit(f"nothing listened on {host}:{port}")
        time.sleep(0.05)


def new_worker(address: str) -> dt_worker.TaskHubGrpcWorker:
    worker = dt_worker.TaskHubGrpcWorker(host_address=address, logger=quiet_logger("worker"))
    worker.add_orchestrator(bench_fan_out)
    worker.add_orchestrator(bench_chain)
    worker.add_activity(echo)
    worker.add_entity(bench_counter)
    return worker


@contextlib.contextmanager
def durable_emu_backend(binary: str | None, address: str | None) -> Iterator[str]:
    if address:
        yield address
        return
    with tempfile.TemporaryDirectory(prefix="bench-python-") as scratch:
        addr = f"127.0.0.1:{free_port()}"
        log = open(os.path.join(scratch, "serve.log"), "w")
        serve = subprocess.Popen(
            [os.path.abspath(binary), "serve", "--grpc", addr, "--db", os.path.join(scratch, "state.db")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, cwd=scratch)
        try:
            host, port = addr.rsplit(":", 1)
            deadline = time.monotonic() + 60
            while True:
                if serve.poll() is not None:
                    log.flush()
                    sys.exit(f"durable-emu serve exited ({serve.returncode}):\n"
                             f"{open(os.path.join(scratch, 'serve.log')).read()}")
                with socket.socket() as s:
                    if s.connect_ex((host, int(port))) == 0:
                        break
                if time.monotonic() > deadline:
                    sys.exit(f"durable-emu serve never listened on {addr}")
                time.sleep(0.05)
            yield addr
        finally:
            serve.terminate()
            try:
                serve.wait(timeout=10)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
            log.close()


def wait_all(client: dt_client.TaskHubGrpcClient, ids: list[str]) -> None:
    for instance_id in ids:
        state = client.wait_for_orchestration_completion(instance_id, timeout=PATIENCE)
        if state is None or state.runtime_status != dt_client.OrchestrationStatus.COMPLETED:
            sys.exit(f"instance {instance_id} did not complete: {state}")


def wait_counts(client: dt_client.TaskHubGrpcClient, expected: dict[str, int]) -> None:
    """Polls every counter until each holds its count (a signal has no answer to wait for)."""
    deadline = time.monotonic() + PATIENCE
    waiting = dict(expected)
    while waiting:
        for key, count in list(waiting.items()):
            entity = client.get_entity(entities.EntityInstanceId("bench_counter", key))
            # The raw serialized state; empty while the entity has none yet.
            raw = entity.get_state() if entity is not None else None
            if raw and json.loads(raw) == count:
                del waiting[key]
        if waiting:
            if time.monotonic() > deadline:
                sys.exit(f"{len(waiting)} counters never reached their counts")
            time.sleep(0.001)


def measure_entities(backend: str, client: dt_client.TaskHubGrpcClient, n: int) -> None:
    client.signal_entity(entities.EntityInstanceId("bench_counter", "warm-up"), "add", 1)
    wait_counts(client, {"warm-up": 1})
    for workload, count in [("entities-one", 1), ("entities-spread", 100)]:
        keys = [f"{workload}-{i}" for i in range(count)]
        started = time.perf_counter()
        for i in range(n):
            client.signal_entity(entities.EntityInstanceId("bench_counter", keys[i % count]), "add", 1)
        sent = time.perf_counter() - started
        wait_counts(client, {key: n // count + (1 if i < n % count else 0)
                             for i, key in enumerate(keys)})
        secs = time.perf_counter() - started
        print(f"RESULT backend={backend} workload={workload} n={n} entities={count} "
              f"secs={secs:.3f} operations_per_sec={n / secs:.1f} sent_secs={sent:.3f}", flush=True)


def measure(backend: str, address: str, workload: str, n: int, separate: bool = False) -> None:
    with contextlib.ExitStack() as stack:
        if separate:
            stack.enter_context(child_process(["--worker", address]))
        else:
            worker = new_worker(address)
            worker.start()
            stack.callback(worker.stop)
        measure_with_worker(backend, address, workload, n)


def measure_with_worker(backend: str, address: str, workload: str, n: int) -> None:
    client = dt_client.TaskHubGrpcClient(host_address=address, logger=quiet_logger("client"))
    try:
        if workload == "entities":
            measure_entities(backend, client, n)
            return
        wait_all(client, [client.schedule_new_orchestration(bench_chain, input=0)])
        started = time.perf_counter()
        if workload == "fanout":
            wait_all(client, [client.schedule_new_orchestration(bench_fan_out, input=n)])
            activities = n
        else:
            ids = [client.schedule_new_orchestration(bench_chain, input=i) for i in range(n)]
            wait_all(client, ids)
            activities = n * STEPS
        secs = time.perf_counter() - started
        extra = f" steps={STEPS}" if workload == "chain" else ""
        print(f"RESULT backend={backend} workload={workload} n={n}{extra} secs={secs:.3f} "
              f"activities_per_sec={activities / secs:.1f}", flush=True)
    finally:
        client.close()


def main() -> None:
    # The hidden modes of --separate-processes: this script as a backend or as a worker.
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-in-memory":
        from durabletask.testing import create_test_backend
        logging.disable(logging.CRITICAL)
        create_test_backend(port=int(sys.argv[2]))
        while True:
            time.sleep(3600)
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        logging.disable(logging.CRITICAL)
        new_worker(sys.argv[2]).start()
        while True:
            time.sleep(3600)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--durable-emu", metavar="BINARY",
                   help="start this durable-emu binary's serve --grpc for each measurement")
    p.add_argument("--address", help="an already-running durable-emu's gRPC address instead")
    p.add_argument("--skip-in-memory", action="store_true",
                   help="measure durable-emu only")
    p.add_argument("--workload", choices=["fanout", "chain", "entities", "all"], default="all")
    p.add_argument("--fanout-n", type=int, default=1000)
    p.add_argument("--chains", type=int, default=100)
    p.add_argument("--signals", type=int, default=1000, help="signals per entities workload")
    p.add_argument("--runs", type=int, default=1, help="measurements of each, alternating backends")
    p.add_argument("--separate-processes", action="store_true",
                   help="run the worker (and the in-memory backend) in processes of their own")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    workloads = [("fanout", args.fanout_n), ("chain", args.chains), ("entities", args.signals)]
    if args.workload != "all":
        workloads = [w for w in workloads if w[0] == args.workload]
    backends = []
    if not args.skip_in_memory:
        backends.append(("in-memory", lambda: in_memory_backend(args.separate_processes)))
    if args.durable_emu or args.address:
        backends.append(("durable-emu", lambda: durable_emu_backend(args.durable_emu, args.address)))
    if not backends:
        sys.exit("nothing to measure: --skip-in-memory without --durable-emu or --address")
    for _ in range(args.runs):
        for workload, n in workloads:
            for name, backend in backends:
                with backend() as address:
                    measure(name, address, workload, n, args.separate_processes)
    os._exit(0)


if __name__ == "__main__":
    main()
