"""Where jobs go and when they exist: the store beside Django's database, enqueues inside
``transaction.atomic()`` (joined on PostgreSQL, at once on SQLite), and a view enqueuing a
task through the test client."""

from __future__ import annotations

import subprocess
from pathlib import Path

from django_helpers import Project, unique


def test_the_store_follows_djangos_database(project: Project) -> None:
    out = project.run(
        """
store = default_backend.store
url = store.url  # opens it
with connection.cursor() as cursor:
    tables = connection.introspection.table_names(cursor)
out = {"url": url, "default": onward.connecting.default() is store,
       "same_for_every_backend": all(task_backends[a].store is store for a in ("default", "retrying", "checked")),
       "onward_tables_in_django_db": "onward_jobs" in tables,
       "django_name": connection.settings_dict["NAME"]}
"""
    )
    assert out["default"]  # plain Onward jobs use it too
    assert out["same_for_every_backend"]
    if project.vendor == "sqlite":
        assert out["url"] == f"sqlite:///{project.workdir / 'db.onward.sqlite3'}"
        assert Path(project.workdir / "db.onward.sqlite3").exists()
        assert not out["onward_tables_in_django_db"]
    else:
        assert out["url"].endswith("/" + out["django_name"])
        assert out["onward_tables_in_django_db"]


def test_enqueue_inside_atomic(project: Project) -> None:
    out = project.run(
        """
def exists(i):
    try:
        default_backend.get_result(i)
    except TaskResultDoesNotExist:
        return False
    return True

def job_exists(i):
    try:
        onward.get_job(i)
    except KeyError:
        return False
    return True

with transaction.atomic():
    committed = record.using(queue_name=queue).enqueue("committed").id
    visible_before_commit = exists(committed)   # read through the store's own connection
    job_committed = ImportEvents.set(queue=queue).perform_later(0).id
try:
    with transaction.atomic():
        rolled_back = record.using(queue_name=queue).enqueue("rolled back").id
        job_rolled_back = ImportEvents.set(queue=queue).perform_later(0).id
        raise RuntimeError("the block fails")
except RuntimeError:
    pass
with transaction.atomic():
    outer = record.using(queue_name=queue).enqueue("outer").id
    try:
        with transaction.atomic():
            inner = record.using(queue_name=queue).enqueue("savepoint").id
            raise RuntimeError("the savepoint rolls back")
    except RuntimeError:
        pass
autocommitted = record.using(queue_name=queue).enqueue("autocommit").id
out = {
    "visible_before_commit": visible_before_commit,
    "committed": [exists(committed), job_exists(job_committed), exists(outer), exists(autocommitted)],
    "rolled_back": [exists(rolled_back), job_exists(job_rolled_back), exists(inner)],
}
""",
        queue=unique("atomic"),
    )
    assert out["committed"] == [True, True, True, True]
    if project.vendor == "postgres":
        # Joined Django's transaction: invisible until it commits, gone if it rolls back.
        assert not out["visible_before_commit"]
        assert out["rolled_back"] == [False, False, False]
    else:
        # Onward's own SQLite file cannot share Django's transaction: enqueued at once.
        assert out["visible_before_commit"]
        assert out["rolled_back"] == [True, True, True]


def test_a_view_enqueues_a_task(project: Project, worker: subprocess.Popen[str]) -> None:
    out = project.run(
        """
client = Client()
response = client.post("/orders/", {"item": "book"})
placed = response.json()
receipts = lambda: sum(1 for j in default_backend.store.list_jobs(JobFilter(limit=1000))
                       if j.args and j.args[0] == "shop.tasks.send_receipt")
before = receipts()
try:
    client.post("/orders/", {"item": "out of stock"})
except RuntimeError as exc:
    failure = str(exc)
out = {"status": response.status_code, "placed": placed, "failure": failure,
       "receipts_added": receipts() - before,
       "orders": list(Order.objects.values_list("item", flat=True))}
"""
    )
    assert out["status"] == 200
    assert out["failure"] == "out of stock"
    assert out["orders"] == ["book"]  # the failed request's order rolled back
    # The failed request's task: gone with its transaction on PostgreSQL; stored at once on SQLite.
    assert out["receipts_added"] == (0 if project.vendor == "postgres" else 1)
    [result] = project.wait([out["placed"]["task"]])
    assert result["status"] == "SUCCESSFUL"
    assert result["return_value"] == out["placed"]["order"]
    assert project.run("out = Order.objects.get(pk=pk).receipt_sent", pk=out["placed"]["order"])


def test_onward_jobs_share_the_store_and_the_worker(project: Project, worker: subprocess.Popen[str]) -> None:
    job_id = project.run("out = ImportEvents.perform_later(3).id")
    out = project.run(
        """
job = onward.get_job(job_id)
deadline = time.monotonic() + 30
while not job.finished and time.monotonic() < deadline:
    time.sleep(0.05)
    job = job.refresh()
child = job.children[0]
out = {"state": job.state, "steps": [s.name for s in job.steps], "events": labels("import:"),
       "child": wait([child])[0]}
""",
        job_id=job_id,
    )
    assert out["state"] == "succeeded"
    assert out["steps"] == ["create"]
    assert out["events"] == ["import:0", "import:1", "import:2"]
    # Its continuation, a Django task, committed with its success and ran in the same worker.
    assert out["child"]["status"] == "SUCCESSFUL"
    assert out["child"]["return_value"] == "imported:3"


def test_a_batch_inside_atomic(project: Project) -> None:
    out = project.run(
        """
def batch_exists(i):
    try:
        onward.get_batch(i)
    except KeyError:
        return False
    return True

with transaction.atomic():
    kept = onward.batch("in atomic")
    with kept:
        ImportEvents.set(queue=queue).perform_later(0)
        kept.on_success(ImportEvents.set(queue=queue), 0)
    visible_before_commit = batch_exists(kept.id)
try:
    with transaction.atomic():
        gone = onward.batch("rolled back")
        with gone:
            ImportEvents.set(queue=queue).perform_later(0)
        raise RuntimeError("the block fails")
except RuntimeError:
    pass
out = {"visible_before_commit": visible_before_commit, "total": onward.get_batch(kept.id).total,
       "rolled_back_exists": batch_exists(gone.id)}
""",
        queue=unique("batch"),
    )
    assert out["total"] == 1
    if project.vendor == "postgres":  # joined Django's transaction
        assert (out["visible_before_commit"], out["rolled_back_exists"]) == (False, False)
    else:  # Onward's own SQLite file: stored at once
        assert (out["visible_before_commit"], out["rolled_back_exists"]) == (True, True)
