"""Django tasks through OnwardTaskBackend: enqueue, run by ``manage.py onward_worker``, read
back with ``get_result``, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
from datetime import datetime

import pytest
from django_helpers import Project, ProjectError, unique


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_enqueue_then_burst_worker_then_get_result(project: Project) -> None:
    queue = unique("burst")
    enqueued = project.run(
        """
result = add.using(queue_name=queue).enqueue(2, 3)
out = {"result": describe(result), "read": describe(add.get_result(result.id))}
""",
        queue=queue,
    )
    for result in enqueued.values():
        assert result["status"] == "READY"
        assert result["attempts"] == 0
        assert result["worker_ids"] == []
        assert result["queue_name"] == queue
        assert result["args"] == [2, 3]
        assert result["enqueued_at"] is not None
    task_id = enqueued["result"]["id"]

    project.burst("--queues", queue)

    done = project.run(
        """
result = add.get_result(task_id)
result_async = asyncio.run(add.aget_result(task_id))
out = {"sync": describe(result), "async": describe(result_async)}
""",
        task_id=task_id,
        queue=queue,
    )
    for result in done.values():
        assert result["status"] == "SUCCESSFUL"
        assert result["return_value"] == 5
        assert result["attempts"] == 1
        assert len(result["worker_ids"]) == 1
        assert result["errors"] == []
        assert result["backend"] == "default"
        assert result["task"] == "shop.tasks.add"
        started, finished = when(result["started_at"]), when(result["finished_at"])
        assert when(result["enqueued_at"]) <= started <= finished
        assert result["last_attempted_at"] == result["started_at"]


def test_refresh_reads_the_store_again(project: Project, worker: subprocess.Popen[str]) -> None:
    out = project.run(
        """
result = add.enqueue(20, 22)
before = str(result.status)
wait([result.id])
result.refresh()
asyncio.run(result.arefresh())
out = [before, str(result.status), result.return_value]
"""
    )
    assert out == ["READY", "SUCCESSFUL", 42]


def test_failures_record_the_exception_class_and_traceback(project: Project, worker: subprocess.Popen[str]) -> None:
    ids = project.run("out = [fail.enqueue('boom').id, afail.enqueue('gone').id, unserializable.enqueue().id]")
    failed, async_failed, bad_return = project.wait(ids)
    for result, path, text in (
        (failed, "builtins.ValueError", "builtins.ValueError: boom"),
        (async_failed, "builtins.KeyError", "builtins.KeyError: 'gone'"),
        (bad_return, "builtins.TypeError", "Unsupported type"),
    ):
        assert result["status"] == "FAILED"
        assert result["attempts"] == 1  # tried once, as Django's tasks promise
        [(class_path, traceback)] = result["errors"]
        assert class_path == path
        assert traceback.startswith("Traceback (most recent call last):")
        assert text in traceback.splitlines()[-1]
        assert result["finished_at"] is not None
    assert failed["exception_classes"] == ["ValueError"]
    assert "shop/tasks.py" in failed["errors"][0][1]


def test_retry_option_tries_again_with_context(project: Project, worker: subprocess.Popen[str]) -> None:
    label = unique("flaky")
    task_id = project.run("out = flaky.using(backend='retrying').enqueue(label).id", label=label)
    [result] = project.wait([task_id])
    assert result["status"] == "SUCCESSFUL"
    assert result["return_value"] == 3  # context.attempt on the try that succeeded
    assert result["attempts"] == 3
    assert len(result["worker_ids"]) == 3
    assert result["backend"] == "retrying"
    [(class_path, _)] = result["errors"]  # the last failed try, kept for the record
    assert class_path == "builtins.ConnectionError"
    assert project.run("out = labels(label)", label=label) == [f"{label}:1", f"{label}:2", f"{label}:3"]
    job_class = project.run("out = onward.get_job(task_id).job_class", task_id=task_id)
    assert job_class == "onward.contrib.django.jobs:RunTaskWith3AttemptsEvery0s"


def test_priorities_run_higher_first(project: Project) -> None:
    queue = unique("priority")
    ids = project.run(
        """
out = [
    record.using(queue_name=queue, priority=priority).enqueue(f"{queue}:{priority}").id
    for priority in (-100, 0, 100, -5, 50)
]
""",
        queue=queue,
    )
    project.burst("--queues", queue)
    assert project.run("out = labels(queue)", queue=queue) == [f"{queue}:{p}" for p in (100, 50, 0, -5, -100)]
    results = project.run("out = [describe(default_backend.get_result(i)) for i in ids]", ids=ids)
    assert [r["priority"] for r in results] == [-100, 0, 100, -5, 50]
    onward_priorities = project.run("out = [onward.get_job(i).priority for i in ids]", ids=ids)
    assert onward_priorities == [100, 0, -100, 5, -50]


def test_run_after(project: Project, worker: subprocess.Popen[str]) -> None:
    out = project.run(
        """
soon = timezone.now() + timedelta(seconds=1.5)
later = timezone.now() + timedelta(hours=1)
first = record.using(run_after=soon).enqueue(unique + ":soon")
second = record.using(run_after=later).enqueue(unique + ":later")
out = {"soon": soon, "later": later, "ids": [first.id, second.id],
       "scheduled": [onward.get_job(first.id).scheduled_at, onward.get_job(second.id).scheduled_at],
       "read": describe(default_backend.get_result(second.id))}
""",
        unique=unique("after"),
    )
    assert [when(t) for t in out["scheduled"]] == [when(out["soon"]), when(out["later"])]
    assert out["read"]["status"] == "READY"
    assert when(out["read"]["run_after"]) == when(out["later"])
    soon_id, later_id = out["ids"]
    [ran] = project.wait([soon_id])
    assert ran["status"] == "SUCCESSFUL"
    assert when(ran["started_at"]) >= when(out["soon"])
    assert project.run("out = describe(default_backend.get_result(i))['status']", i=later_id) == "READY"


def test_naive_run_after_is_refused_with_use_tz(project: Project) -> None:
    with pytest.raises(ProjectError, match="run_after must be an aware datetime"):
        project.run("record.using(run_after=datetime.now()).enqueue('naive')")


def test_async_task_functions(project: Project, worker: subprocess.Popen[str]) -> None:
    label = unique("async")
    ids = project.run(
        "out = [arecord.enqueue(label).id, asyncio.run(arecord.aenqueue(label + ':aenqueue')).id]", label=label
    )
    results = project.wait(ids)
    assert [r["status"] for r in results] == ["SUCCESSFUL", "SUCCESSFUL"]
    assert [r["return_value"] for r in results] == [1, 1]
    assert sorted(project.run("out = labels(label)", label=label)) == [label, f"{label}:aenqueue"]  # run at once
    assert project.run("out = onward.get_job(i).job_class", i=ids[0]) == "onward.contrib.django.jobs:RunAsyncTask"


def test_takes_context(project: Project, worker: subprocess.Popen[str]) -> None:
    task_id = project.run("out = whoami.enqueue('me').id")
    [result] = project.wait([task_id])
    assert result["status"] == "SUCCESSFUL"
    context = result["return_value"]
    assert context["label"] == "me"
    assert context["id"] == task_id
    assert context["attempt"] == 1
    assert context["status"] == "RUNNING"
    [worker_id] = context["worker_ids"]
    assert worker_id != "unknown"


def test_arguments_that_are_not_plain_json_are_refused_before_anything_is_stored(project: Project) -> None:
    out = project.run(
        """
from decimal import Decimal
counted = lambda: sum(c.count for c in default_backend.store.count_jobs())
before = counted()
refused = []
for bad in (datetime.now(UTC), uuid.uuid4(), Decimal("1.5"), {1, 2}, object(), float("nan"), {1: "one"}):
    try:
        add.enqueue(bad, 1)
    except (TypeError, ValueError) as exc:
        refused.append(type(exc).__name__)
try:
    add.enqueue(1, b=timezone.now())
except TypeError as exc:
    refused.append(type(exc).__name__)
out = {"refused": refused, "stored": counted() - before}
"""
    )
    assert len(out["refused"]) == 8
    assert out["stored"] == 0


def test_unknown_ids_and_onward_jobs_are_not_task_results(project: Project) -> None:
    out = project.run(
        """
out = []
for i in ("no-such-id", ImportEvents.set(queue="not-served").perform_later(0).id):
    try:
        default_backend.get_result(i)
    except TaskResultDoesNotExist as exc:
        out.append(str(exc))
"""
    )
    assert len(out) == 2
    assert "no-such-id" in out[0]
    assert "shop.jobs:ImportEvents" in out[1]


def test_backend_capabilities_and_queue_validation(project: Project) -> None:
    out = project.run(
        """
from onward.contrib.django import OnwardTaskBackend, compat
flags = [default_backend.supports_defer, default_backend.supports_async_task,
         default_backend.supports_get_result, default_backend.supports_priority]
try:
    record.using(backend="checked", queue_name="nope")
except Exception as exc:
    refused = f"{type(exc).__name__}: {exc}"
try:
    import django.tasks
    framework = "django.tasks"
except ImportError:
    framework = "django_tasks"
out = {"flags": flags, "refused": refused, "class": type(default_backend) is OnwardTaskBackend,
       "checks": [m.id for m in default_backend.check()],
       "emails": record.using(backend="checked", queue_name="emails").queue_name,
       "framework": framework, "compat": compat.Task.__module__}
"""
    )
    assert out["flags"] == [True, True, True, True]
    assert out["checks"] == []
    assert out["class"]
    assert "Queue 'nope' is not valid for backend" in out["refused"]
    assert out["emails"] == "emails"
    assert out["compat"].startswith(out["framework"])
