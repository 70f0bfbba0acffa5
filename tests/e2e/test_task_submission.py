"""How the flows hand one stage's result to the next (flows/tasks.submit_for): Prefect waits
for the upstream run and passes its result, records the dependency, and reads nothing from
the API to do so (a 100-ticker night had one stage start a minute late behind such reads)."""

from __future__ import annotations

import threading
import time


def test_a_stage_gets_its_upstream_result_and_dependency_without_api_reads(prefect_api,
                                                                          monkeypatch):
    from prefect import flow, task
    from prefect.client.orchestration import SyncPrefectClient, get_client

    from flows.tasks import submit_for

    reads: list[str] = []
    real_read = SyncPrefectClient.read_task_run

    def counted(self, task_run_id):
        reads.append(str(task_run_id))
        return real_read(self, task_run_id)

    monkeypatch.setattr(SyncPrefectClient, "read_task_run", counted)
    release = threading.Event()

    @task
    def upstream_stage() -> dict:
        assert release.wait(60)
        return {"rows": [1, 2, 3]}

    @task
    def downstream_stage(data: dict, extra: dict) -> tuple:
        return data, extra

    @flow
    def two_stages():
        first = submit_for(upstream_stage, "T")
        second = submit_for(downstream_stage, "T", first, extra={"again": first})
        time.sleep(1)  # the second stage's engine starts while the first still runs
        release.set()
        return second.result(), first.task_run_id, second.task_run_id

    (data, extra), first_id, second_id = two_stages()
    assert data == {"rows": [1, 2, 3]} and extra == {"again": data}
    assert reads == []  # no state read of an unfinished upstream run at submission
    monkeypatch.setattr(SyncPrefectClient, "read_task_run", real_read)
    deadline = time.monotonic() + 30  # the server records task runs from their events
    with get_client(sync_client=True) as client:
        while True:
            inputs = client.read_task_run(second_id).task_inputs
            if inputs.get("data") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert {i.id for i in inputs["data"]} == {first_id}
    assert {i.id for i in inputs["extra"]} == {first_id}
