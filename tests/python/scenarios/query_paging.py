"""Query paging: QueryInstances by status and id prefix, page by page (the client follows the
continuation tokens), and ListInstanceIds page by page: every matching instance exactly once, no
page larger than asked, and the filters keep out what does not match."""

import _common as c

S = c.dt_client.OrchestrationStatus
COUNT = 12
PAGE = 5


def echo_orchestrator(ctx, n):
    return n


def broken_orchestrator(ctx, _):
    raise ValueError("broken on purpose")
    yield  # noqa


def idle_orchestrator(ctx, _):
    yield ctx.wait_for_external_event("never")


def scenario(b: c.Backend) -> None:
    with c.running_worker(b.address, [echo_orchestrator, broken_orchestrator, idle_orchestrator]):
        client = c.new_client(b.address)
        ids = [f"py-q-{n:02}" for n in range(COUNT)]
        for n, instance_id in enumerate(ids):
            client.schedule_new_orchestration(echo_orchestrator, input=n, instance_id=instance_id)
        client.schedule_new_orchestration(broken_orchestrator, instance_id="py-q-broken")
        client.schedule_new_orchestration(idle_orchestrator, instance_id="py-other-idle")
        for instance_id in ids:
            c.completed_output(client, instance_id)
        c.wait_status(client, "py-q-broken", S.FAILED)
        c.wait_status(client, "py-other-idle", S.RUNNING)

        completed = client.get_all_orchestration_states(c.dt_client.OrchestrationQuery(
            runtime_status=[S.COMPLETED], instance_id_prefix="py-q-", max_instance_count=PAGE,
            fetch_inputs_and_outputs=True))
        got = [s.instance_id for s in completed]
        c.check_eq(sorted(got), ids, "completed py-q-* instances across all pages")
        c.check_eq(len(got), len(set(got)), "instances repeated across pages")
        c.check_eq(sorted(s.get_output() for s in completed), list(range(COUNT)),
                   "their outputs (fetch_inputs_and_outputs)")

        failed = client.get_all_orchestration_states(c.dt_client.OrchestrationQuery(
            runtime_status=[S.FAILED]))
        c.check_eq([s.instance_id for s in failed], ["py-q-broken"], "failed instances")
        everything = client.get_all_orchestration_states(c.dt_client.OrchestrationQuery(
            instance_id_prefix="py-q-", max_instance_count=PAGE))
        c.check_eq(len(everything), COUNT + 1, "py-q-* instances of any status")

        pages: list[list[str]] = []
        token = None
        while True:
            page = client.list_instance_ids(page_size=PAGE, continuation_token=token)
            pages.append(page.items)
            c.check(len(page.items) <= PAGE,
                    f"a ListInstanceIds page has {len(page.items)} ids, more than the {PAGE} asked")
            token = page.continuation_token
            if not token:
                break
            c.check(len(pages) <= COUNT, f"ListInstanceIds never ended: {pages}")
        listed = [i for p in pages for i in p]
        c.check_eq(sorted(listed), sorted(ids + ["py-q-broken"]),
                   "ended instances listed across ListInstanceIds pages (the running one excluded)")
        c.check_eq(len(listed), len(set(listed)), "ids repeated across pages")
        c.check(len([p for p in pages if p]) >= 3,
                f"{COUNT + 1} ids in pages of {PAGE} should take at least 3 pages: {pages}")
        client.terminate_orchestration("py-other-idle")


if __name__ == "__main__":
    c.run("query_paging", scenario)
