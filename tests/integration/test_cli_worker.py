"""API §7: the ``onward worker`` command (also ``python -m onward worker``), run as a real process."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import waiting
from jobs_core import (
    Echo,
    Mailer,
    MeetAtBarrier,
    Parent,
    ReportsSwitchInterval,
    StepUntilFile,
    WaitsForFile,
    unique_names,
)
from onward import Store
from onward.cli.worker import WORKER_SWITCH_INTERVAL
from onward.testing import drain

ONWARD = Path(sys.executable).parent / "onward"


poll = functools.partial(waiting.poll, timeout=30.0, interval=0.01)


def run_worker(
    args: list[str], env: dict[str, str], *, cwd: Path | None = None, module: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m onward worker ARGS`` (or the ``onward`` script) to its end."""
    command = [sys.executable, "-m", "onward"] if module else [str(ONWARD)]
    return subprocess.run(
        [*command, "worker", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def spawn(tmp_path: Path, subprocess_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start a long-running worker process (output to a file); killed after the test if still alive."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        out = open(tmp_path / f"worker-{len(procs)}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "onward", "worker", *args], env=subprocess_env, stdout=out, stderr=subprocess.STDOUT
        )
        out.close()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def output_of(tmp_path: Path, index: int = 0) -> str:
    return (tmp_path / f"worker-{index}.log").read_text(errors="replace")


# -- running jobs ----------------------------------------------------------------------------


def test_python_m_onward_worker_burst_runs_jobs_and_their_continuations(
    store: Store, store_url: str, subprocess_env: dict[str, str]
) -> None:
    handle = Parent.perform_later(4)
    done = run_worker(["--burst", "--import", "jobs_core", "--database-url", store_url], subprocess_env)
    assert done.returncode == 0, done.stderr
    parent = handle.refresh()
    assert parent.state == "succeeded"
    assert [store.get(c).state for c in parent.children] == ["succeeded", "succeeded"]


def test_the_onward_command_is_the_same_command(store: Store, store_url: str, subprocess_env: dict[str, str]) -> None:
    handle = Echo.perform_later("via script")
    done = run_worker(["--burst", "--database-url", store_url], subprocess_env, module=False)
    assert done.returncode == 0, done.stderr
    assert handle.refresh().result["args"] == ["via script"]


def test_the_database_url_comes_from_the_environment_variable(
    store: Store, store_url: str, subprocess_env: dict[str, str]
) -> None:
    handle = Echo.perform_later()
    env = {**subprocess_env, "ONWARD_DATABASE_URL": store_url}
    done = run_worker(["--burst"], env)
    assert done.returncode == 0, done.stderr
    assert handle.refresh().state == "succeeded"


def test_queues_option_filters_queues(store: Store, store_url: str, subprocess_env: dict[str, str]) -> None:
    mail, report, other = Mailer.perform_later(), Echo.set(queue="reports").perform_later(), Echo.perform_later()
    done = run_worker(["--burst", "--queues", "mailers,reports", "--database-url", store_url], subprocess_env)
    assert done.returncode == 0, done.stderr
    assert [h.refresh().state for h in (mail, report, other)] == ["succeeded", "succeeded", "enqueued"]


def test_concurrency_option_runs_jobs_at_once(store: Store, store_url: str, subprocess_env: dict[str, str]) -> None:
    [name] = unique_names("cli-barrier")
    handles = [MeetAtBarrier.perform_later(name, 3) for _ in range(3)]
    done = run_worker(["--burst", "--concurrency", "3", "--database-url", store_url], subprocess_env)
    assert done.returncode == 0, done.stderr
    assert [h.refresh().state for h in handles] == ["succeeded"] * 3, [h.refresh().error for h in handles]


def test_import_finds_modules_in_the_current_directory(
    sqlite_store: Store, tmp_path: Path, subprocess_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "myjobs_cli.py").write_text(
        "from onward import Job\n\nclass Hello(Job):\n    def perform(self, name):\n        return f'hello {name}'\n"
    )
    monkeypatch.syspath_prepend(str(project))
    from myjobs_cli import Hello  # type: ignore[import-not-found]

    handle = Hello.perform_later("world")
    url = f"sqlite:///{tmp_path / 'onward.sqlite3'}"
    parent = Parent.perform_later(1)
    done = run_worker(
        ["--burst", "--import", "myjobs_cli", "--import", "jobs_core", "--database-url", url],
        subprocess_env,
        cwd=project,
    )
    assert done.returncode == 0, done.stderr
    assert handle.refresh().result == "hello world"
    assert parent.refresh().state == "succeeded"


def test_a_relative_sqlite_url_is_relative_to_the_worker_s_directory(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    from onward import stores

    store = stores.open_store(f"sqlite:///{tmp_path / 'rel.db'}")
    previous = stores.set_default(store)
    try:
        handle = Echo.perform_later()
        done = run_worker(["--burst", "--database-url", "sqlite:///rel.db"], subprocess_env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert handle.refresh().state == "succeeded"
    finally:
        stores.set_default(previous)
        store.close()


def test_an_import_that_fails_is_reported_and_the_worker_does_not_start(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    done = run_worker(["--burst", "--import", "no_such_module_here", "--database-url", url], subprocess_env)
    assert done.returncode != 0
    assert "no_such_module_here" in done.stderr


def test_a_bad_database_url_is_reported_with_the_password_masked(subprocess_env: dict[str, str]) -> None:
    done = run_worker(["--burst", "--database-url", "mysql://bob:hunter2@db/jobs"], subprocess_env)
    assert done.returncode != 0
    assert "unknown scheme" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


def test_help_lists_the_documented_options(subprocess_env: dict[str, str]) -> None:
    done = run_worker(["--help"], subprocess_env)
    assert done.returncode == 0
    for option in (
        "--queues",
        "--concurrency",
        "--burst",
        "--lease-timeout",
        "--shutdown-timeout",
        "--import",
        "--database-url",
    ):
        assert option in done.stdout


# -- leases and graceful stop ----------------------------------------------------------------


def test_lease_timeout_option_sets_the_lease_of_claimed_jobs(
    store: Store, store_url: str, tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    handle = WaitsForFile.perform_later(str(tmp_path))
    proc = spawn("--lease-timeout", "6", "--database-url", store_url, "--shutdown-timeout", "30")
    poll(lambda: (tmp_path / "started-1").exists(), what="the job to start")
    expires = handle.refresh().lease_expires_at
    assert expires is not None
    assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(seconds=6.5)
    (tmp_path / "go").touch()
    poll(lambda: handle.refresh().state == "succeeded", what="the job to finish")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_worker_after_its_running_job_finishes(
    store: Store,
    store_url: str,
    tmp_path: Path,
    spawn: Callable[..., subprocess.Popen[bytes]],
    signum: int,
) -> None:
    running = WaitsForFile.perform_later(str(tmp_path))
    waiting = Echo.set(priority=10).perform_later("not claimed")
    proc = spawn("--database-url", store_url, "--shutdown-timeout", "30")
    poll(lambda: (tmp_path / "started-1").exists(), what="the job to start")
    proc.send_signal(signum)
    (tmp_path / "go").touch()
    assert proc.wait(30) == 0, output_of(tmp_path)
    assert running.refresh().state == "succeeded"
    assert waiting.refresh().state == "enqueued"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_interrupts_a_stepped_job_at_its_next_checkpoint(
    store: Store,
    store_url: str,
    tmp_path: Path,
    spawn: Callable[..., subprocess.Popen[bytes]],
    signum: int,
) -> None:
    handle = StepUntilFile.perform_later(str(tmp_path))  # advances until stopped
    proc = spawn("--database-url", store_url, "--shutdown-timeout", "30")
    poll(lambda: (tmp_path / "started").exists(), what="the job to start")
    proc.send_signal(signum)
    assert proc.wait(30) == 0, output_of(tmp_path)
    record = handle.refresh()
    assert (record.state, record.attempts, record.resumptions) == ("enqueued", 1, 1)
    assert record.steps[0].status == "interrupted"
    saved = record.steps[0].cursor
    assert saved >= 1
    assert record.steps[0].advanced == saved  # every advance was saved: a graceful stop repeats nothing
    drain()
    assert handle.refresh().result == saved


def test_after_the_shutdown_timeout_the_process_exits_and_the_job_is_released(
    store: Store, store_url: str, tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    handle = WaitsForFile.perform_later(str(tmp_path), 600)  # "go" never comes
    proc = spawn("--database-url", store_url, "--shutdown-timeout", "0.3")
    poll(lambda: (tmp_path / "started-1").exists(), what="the job to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, output_of(tmp_path)  # the stuck job thread does not keep it alive
    record = handle.refresh()
    assert (record.state, record.attempts, record.resumptions) == ("enqueued", 1, 0)
    assert "released" in output_of(tmp_path)


def test_the_process_exits_quickly_on_a_signal_when_idle(
    store_url: str, store: Store, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    proc = spawn("--database-url", store_url)
    poll(lambda: "started" in output_of(tmp_path), what="the worker to start")
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(30) == 0


@pytest.mark.parametrize(("concurrency", "expected"), [("1", None), ("2", WORKER_SWITCH_INTERVAL)])
def test_a_worker_with_several_threads_switches_between_them_more_often(
    store: Store, store_url: str, subprocess_env: dict[str, str], concurrency: str, expected: float | None
) -> None:
    handle = ReportsSwitchInterval.perform_later()
    done = run_worker(
        ["--burst", "--import", "jobs_core", "--concurrency", concurrency, "--database-url", store_url], subprocess_env
    )
    assert done.returncode == 0, done.stderr
    assert handle.refresh().result == (expected if expected is not None else sys.getswitchinterval())
