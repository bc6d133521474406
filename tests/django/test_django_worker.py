"""``manage.py onward_worker``: its options, Django's connections around each job,
``--processes``, and (PostgreSQL) a worker whose connections the server cuts."""

from __future__ import annotations

import os
import signal
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django_helpers import Project, make_project, unique

import pg


def test_help_lists_the_worker_options(project: Project) -> None:
    text = project.manage("onward_worker", "--help").stdout
    for option in (
        "--queues",
        "--concurrency",
        "--processes",
        "--burst",
        "--lease-timeout",
        "--shutdown-timeout",
        "--import",
        "--log-level",
        "--log-format",
        "--metrics-port",
        "--metrics-host",
        "--database-url",
    ):
        assert option in text


def test_connections_are_closed_between_jobs(project: Project) -> None:
    queue = unique("fresh")
    ids = project.run(
        "out = [on_fresh_connection.using(queue_name=queue).enqueue(f'{queue}:{i}').id for i in range(3)]",
        queue=queue,
    )
    project.burst("--queues", queue, "--concurrency", "1")
    results = project.run("out = [describe(default_backend.get_result(i)) for i in ids]", ids=ids)
    assert [r["return_value"] for r in results] == [True, True, True]


def test_processes(project: Project) -> None:
    queue = unique("processes")
    ids = project.run(
        "out = [record_pid.using(queue_name=queue).enqueue(f'{queue}:{i}').id for i in range(6)]", queue=queue
    )
    proc = project.burst("--queues", queue, "--processes", "2", "--log-level", "INFO")
    assert proc.stderr.count("worker process") >= 2  # the supervisor's lines
    results = project.run("out = [describe(default_backend.get_result(i)) for i in ids]", ids=ids)
    assert [r["status"] for r in results] == ["SUCCESSFUL"] * 6
    pids = {label.rsplit(":", 1)[1] for label in project.run("out = labels(queue)", queue=queue)}
    assert str(os.getpid()) not in pids


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_metrics_port(project: Project) -> None:
    pytest.importorskip("prometheus_client")
    queue, port = unique("metrics"), _free_port()
    proc = project.start("onward_worker", "--queues", queue, "--metrics-port", str(port), "--metrics-host", "127.0.0.1")
    try:
        ids = project.run("out = [add.using(queue_name=queue).enqueue(1, i).id for i in range(3)]", queue=queue)
        assert [r["status"] for r in project.wait(ids)] == ["SUCCESSFUL"] * 3
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        labels = f'job_class="onward.contrib.django.jobs:RunTask",outcome="succeeded",queue="{queue}"'
        assert f"onward_jobs_finished_total{{{labels}}} 3.0" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, project.log_of(proc)


def test_a_bad_import_is_a_command_error(project: Project) -> None:
    proc = project.start("onward_worker", "--burst", "--import", "no_such_module")
    assert proc.wait(timeout=90) != 0
    assert "--import no_such_module: ModuleNotFoundError" in project.log_of(proc)


# -- PostgreSQL cutting the worker's connections ------------------------------------------


@pytest.fixture(scope="module")
def pg_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    yield from make_project("postgres", tmp_path_factory.mktemp("restart"))


def _terminate(project: Project, application_name: str) -> int:
    with pg.admin_connect() as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (application_name,)
        ).fetchall()
    return len(rows)


@pytest.mark.slow
@pytest.mark.parametrize("conn_max_age", ["0", "600"])
def test_worker_survives_its_connections_being_cut(pg_project: Project, conn_max_age: str, tmp_path: Path) -> None:
    """Every connection of the worker (Onward's pool, its LISTEN connection, Django's) is
    terminated by the server between jobs; the next jobs still run, with Django's
    connection reopened (persistent connections with health checks, or one per job)."""
    project = pg_project
    name = f"worker-{uuid.uuid4().hex[:8]}"
    queue = unique("restart")
    proc = project.start(
        "onward_worker",
        "--queues",
        queue,
        "--lease-timeout",
        "10",
        env={"PGAPPNAME": name, "SHOP_CONN_MAX_AGE": conn_max_age},
    )
    try:
        for round_ in range(3):
            labels = [f"{queue}:{round_}:{i}" for i in range(3)]
            ids = project.run(
                "out = [record.using(queue_name=queue).enqueue(label).id for label in labels]",
                queue=queue,
                labels=labels,
            )
            results = project.wait(ids, timeout=60)
            assert [r["status"] for r in results] == ["SUCCESSFUL"] * 3, project.log_of(proc)
            assert _terminate(project, name) >= 2  # at least Onward's and Django's connections
            time.sleep(0.2)
        assert proc.poll() is None
        assert project.run("out = labels(queue)", queue=queue) == [
            f"{queue}:{r}:{i}" for r in range(3) for i in range(3)
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, project.log_of(proc)


def test_the_projects_own_tests_run_on_djangos_test_database(project: Project) -> None:
    proc = project.manage("test", "shop", "--noinput", "-v", "2")
    assert "Ran 1 test" in proc.stderr
    assert "OK" in proc.stderr
