"""The official Durable Functions Python client (azure-functions-durable) against durable-emu's
HTTP management API: a DurableOrchestrationClient built from a binding whose rpcBaseUrl points at
the emulator, every client call the issue names, each checked. Exits 0 and prints a PASS line
when every check held; otherwise an AssertionError says which.

Usage: azure_functions_client.py HOST:PORT   (serve runs with the built-in samples, a real
clock, and the fault rule
activity=SayHello,instance=broken-py,error=Boom:first call fails)
"""
import asyncio
import datetime
import json
import sys

import azure.functions as func
from azure.durable_functions import DurableOrchestrationClient
from azure.durable_functions.models.OrchestrationRuntimeStatus import (
    OrchestrationRuntimeStatus as Status,
)

WAIT_SECONDS = 60


def binding(addr):
    """The client binding the Functions host would hand a Python function."""
    base = f"http://{addr}/runtime/webhooks/durabletask"
    instance = f"{base}/instances/INSTANCEID"
    return json.dumps({
        "taskHubName": "durable-emu",
        "creationUrls": {
            "createNewInstancePostUri": f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]",
            "createAndWaitOnNewInstancePostUri":
                f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]?timeout={{timeoutInSeconds}}",
        },
        "managementUrls": {
            "id": "INSTANCEID",
            "statusQueryGetUri": instance,
            "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}",
            "terminatePostUri": f"{instance}/terminate?reason={{text}}",
            "rewindPostUri": f"{instance}/rewind?reason={{text}}",
            "purgeHistoryDeleteUri": instance,
            "restartPostUri": f"{instance}/restart",
            "suspendPostUri": f"{instance}/suspend?reason={{text}}",
            "resumePostUri": f"{instance}/resume?reason={{text}}",
        },
        "baseUrl": base,
        "requiredQueryStringParameters": "",
        "rpcBaseUrl": f"http://{addr}/durabletask/",
    })


async def until(client, instance_id, done, what):
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        status = await client.get_status(instance_id, show_history=True, show_history_output=True)
        if done(status):
            return status
        assert asyncio.get_running_loop().time() < deadline, \
            f"{instance_id} never {what}: {status.to_json()}"
        await asyncio.sleep(0.02)


def ended(status):
    return status.runtime_status in (Status.Completed, Status.Failed, Status.Terminated)


def waiting(status):
    return status.custom_status is not None


APPROVAL = {"request": "laptop", "timeout_hours": 24}


async def main(addr):
    client = DurableOrchestrationClient(binding(addr))

    # start_new + get_status with history; the first SayHello fails (the fault rule).
    failed_id = await client.start_new("HelloSequence", "broken-py", None)
    failed = await until(client, failed_id, ended, "ended")
    assert failed.runtime_status == Status.Failed, failed.to_json()
    kinds = [event["EventType"] for event in failed.history]
    assert kinds[0] == "ExecutionStarted" and "TaskFailed" in kinds, kinds
    assert "TaskScheduled" not in kinds and "OrchestratorStarted" not in kinds, kinds

    # rewind: the failed call is taken out of the history and runs again (the fault rule
    # counts attempts per call, so it fails again: what matters here is the client's call).
    await client.rewind(failed_id, "try again")
    rewound = await until(
        client, failed_id,
        lambda s: ended(s) and any(e["EventType"] == "ExecutionRewound" for e in s.history),
        "ended after the rewind")
    failed_call = [e for e in rewound.history if e["EventType"] == "TaskFailed"][0]
    assert failed_call["FunctionName"] == "SayHello", failed_call
    assert failed_call["Input"] == "Tokyo" and "ScheduledTime" in failed_call, failed_call
    assert rewound.history[-1]["OrchestrationStatus"] == "Failed", rewound.history[-1]

    # The input as the client sends it (JSON inside a JSON string) arrives as the object.
    ask = await client.start_new("ApprovalWorkflow", "ask-py", APPROVAL)
    assert ask == "ask-py", ask
    status = await until(client, ask, waiting, "waited for its approval")
    assert status.input_ == APPROVAL, status.input_

    # suspend / resume / raise_event.
    await client.suspend(ask, "hold on")
    status = await client.get_status(ask)
    assert status.runtime_status == Status.Suspended, status.to_json()
    await client.resume(ask, "go on")
    await client.raise_event(ask, "Approval", True)
    approved = await until(client, ask, ended, "ended after its approval")
    assert approved.runtime_status == Status.Completed and approved.output == "Approved", \
        approved.to_json()

    # terminate, then restart (a new id, with the management payload).
    doomed = await client.start_new("ApprovalWorkflow", None, APPROVAL)
    await until(client, doomed, waiting, "waited")
    await client.terminate(doomed, "enough")
    terminated = await until(client, doomed, ended, "ended after terminate")
    assert terminated.runtime_status == Status.Terminated, terminated.to_json()
    restarted = await client.restart(doomed)
    new_id = restarted["id"] if isinstance(restarted, dict) else restarted
    assert new_id and new_id != doomed, restarted
    await until(client, new_id, waiting, "waited after the restart")

    # wait_for_completion_or_create_check_status_response: the output once it completes...
    request = func.HttpRequest("GET", f"http://{addr}/api/start", body=b"")
    quick = await client.start_new("HelloSequence", None, None)
    response = await client.wait_for_completion_or_create_check_status_response(
        request, quick, timeout_in_milliseconds=30000, retry_interval_in_milliseconds=50)
    assert response.status_code == 200, (response.status_code, response.get_body())
    assert json.loads(response.get_body()) == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    # ... and the check-status links (202) when it does not end in time.
    response = await client.wait_for_completion_or_create_check_status_response(
        request, new_id, timeout_in_milliseconds=200, retry_interval_in_milliseconds=50)
    assert response.status_code == 202, (response.status_code, response.get_body())
    assert json.loads(response.get_body())["id"] == new_id, response.get_body()

    # get_status_all / get_status_by.
    every = await client.get_status_all()
    ids = {status.instance_id for status in every}
    assert {failed_id, ask, doomed, new_id, quick} <= ids, ids
    running = await client.get_status_by(runtime_status=[Status.Running])
    assert [status.instance_id for status in running] == [new_id], [s.to_json() for s in running]
    since = await client.get_status_by(
        created_time_from=datetime.datetime(2000, 1, 1),
        runtime_status=[Status.Completed, Status.Terminated])
    assert {status.instance_id for status in since} == {ask, doomed, quick}, \
        [s.instance_id for s in since]

    # purge_instance_history / purge_instance_history_by.
    purged = await client.purge_instance_history(failed_id)
    assert purged.instances_deleted == 1, purged.instances_deleted
    gone = await client.get_status(failed_id)
    assert gone.instance_id is None, gone.to_json()
    purged = await client.purge_instance_history_by(
        created_time_from=datetime.datetime(2000, 1, 1),
        runtime_status=[Status.Completed, Status.Terminated])
    assert purged.instances_deleted == 3, purged.instances_deleted
    left = await client.get_status_all()
    assert [status.instance_id for status in left] == [new_id], [s.instance_id for s in left]

    print("PASS azure-functions-durable client: start_new, get_status (history), rewind, "
          "suspend, resume, raise_event, terminate, restart, wait_for_completion_or_create_"
          "check_status_response, get_status_all, get_status_by, purge_instance_history(_by)")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
